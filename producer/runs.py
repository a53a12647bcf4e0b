"""Where the runs on this machine listen, so that ``synthstream ctl`` finds one without a URL.

A run with a metrics port writes ``<pid>.json`` (its host and port, nothing secret) into
``$XDG_RUNTIME_DIR/synthstream/`` (else ``<tmp>/synthstream-<uid>/``, made private) and removes
it when it ends; a file whose process is gone (a SIGKILL) is ignored and cleared.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def folder() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "synthstream"
    return Path(tempfile.gettempdir()) / f"synthstream-{os.getuid()}"


def register(host: str, port: int) -> Path | None:
    """Say where this process listens; None when the folder cannot be written (then ``ctl``
    needs ``--url``, nothing else changes)."""
    path = folder() / f"{os.getpid()}.json"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}))
        temporary.replace(path)
    except OSError:
        return None
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def local() -> list[dict[str, Any]]:
    """The runs listening on this machine now, oldest first."""
    found = []
    try:
        paths = sorted(folder().glob("*.json"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    for path in paths:
        try:
            run = json.loads(path.read_text())
            pid, port = int(run["pid"]), int(run["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            found.append({"pid": pid, "host": str(run.get("host", "127.0.0.1")), "port": port})
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return found


def url_of_local_run() -> str:
    """The URL of the one run on this machine; the default port when there is none; one line
    naming ``--url`` when there are several."""
    runs = local()
    if not runs:
        return "http://127.0.0.1:9108"
    if len(runs) > 1:
        from producer.errors import ConfigError

        listed = ", ".join(f"pid {r['pid']} on port {r['port']}" for r in runs)
        raise ConfigError(f"ctl --url: {len(runs)} runs on this machine ({listed}); accepted: "
                          "--url http://127.0.0.1:PORT of one")  # fmt: skip
    host = runs[0]["host"]
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{runs[0]['port']}"
