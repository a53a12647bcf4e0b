from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SYNTHSTREAM_* variable or .env from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SYNTHSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``python -m producer`` as a user would, with JSON logs."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    full_env.update({"SYNTHSTREAM_LOG__FORMAT": "json", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )  # fmt: skip


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``python -m producer`` in the background with JSON logs on its stderr pipe (``env`` on
    top of a clean environment); killed if still running, and its pipe closed, at the end."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    full_env.update({"SYNTHSTREAM_LOG__FORMAT": "json", **(env or {})})
    proc = subprocess.Popen([sys.executable, "-m", "producer", *args], env=full_env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def next_event(pipe: IO[str], name: str) -> dict[str, Any]:
    """Read a running producer's JSON log until the event ``name``; fail if it ends first."""
    for line in pipe:
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            if event.get("event") == name:
                return event
    raise AssertionError(f"the producer ended before logging {name}")
