"""``--workers N``: N processes, each a shard of the entities, under one parent.

Worker ``j`` of ``N`` runs ``synthstream run`` with the user's own arguments and the shard
``i + j*M`` of ``M*N`` (``i/M`` being the run's own ``--shard``, ``0/1`` unless given): an
entity's shard is its hash modulo the count, so the workers of a replica split exactly that
replica's entities, and together they make the records one process would make. The parent

- forwards SIGINT and SIGTERM (each one, so a second Ctrl-C still forces a stop); the workers
  run in a session of their own so that a terminal's Ctrl-C reaches the parent alone;
- owns ``--duration``: it starts once every worker is live and ends them all at once
  (SIGUSR1, which a worker takes as its duration);
- splits ``--max-records`` between the workers (the first records of each shard);
- shows one backfill progress bar, from what the workers report;
- serves one ``/metrics``: the workers' own, gathered at each scrape and added up per series
  (start times and the event time reached are the earliest, build info is one);
- logs one ``synthstream_finished`` with the workers' summaries added up, and exits with the
  worst status among them. A worker that fails while the others run stops them.

A worker talks to its parent over a socket pair (``--worker-fd``): JSON lines out (its port,
live, progress, its summary); end of file in means the parent is gone, and the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tqdm import tqdm

from producer.config import Settings
from producer.errors import ConfigError

log = structlog.get_logger("synthstream")

SCRAPE_TIMEOUT_S = 5.0
_EARLIEST = ("_created", "process_start_time_seconds", "synthstream_event_time_seconds")
_ONE = ("_info", "process_max_fds", "synthstream_live_behind_seconds")  # (the most)


def worker_args(settings: Settings, argv: Sequence[str], index: int, fd: int) -> list[str]:
    """The command line of worker ``index``: the user's, then what makes it a worker (later
    flags win)."""
    count = settings.worker_count
    own = settings.shard_spec
    args = [sys.executable, "-m", "producer", *argv, "--workers", "1",
            "--shard", f"{own.index + index * own.count}/{own.count * count}",
            "--metrics-port", "0", "--progress", "off", "--worker-fd", str(fd)]  # fmt: skip
    if settings.log.format == "auto":  # its standard error is a pipe to this one's
        args += ["--log-format", "console" if sys.stderr.isatty() else "json"]
    if settings.max_records is not None:
        share = settings.max_records // count + (index < settings.max_records % count)
        args += ["--max-records", str(share)]
    return args


def check(settings: Settings) -> None:
    """What cannot be split between processes, as the one line of a bad setting."""
    count = settings.worker_count
    shared = sorted({n for s in settings.streams for n in settings.stream(s).sinks} & {"stdout"})
    if shared:
        raise ConfigError(
            f"--workers / SYNTHSTREAM_WORKERS: {count} processes cannot share one standard "
            "output; accepted with sinks that each worker writes on its own (file, kafka, "
            "kinesis, http, postgres, s3): set --sinks"
        )
    if settings.max_records is not None and settings.max_records < count:
        raise ConfigError(
            f"--max-records: {settings.max_records} is fewer than --workers {count}; "
            "accepted: at least one record per worker"
        )


def merge(texts: Sequence[str], extra: str = "") -> bytes:
    """The workers' expositions as one: each series added up over the workers (a start time
    or the event time reached: the earliest; an info series: one)."""
    families: dict[str, Any] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in (*texts, extra):
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, family)
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in series:
                    series[key] = sample.value
                elif sample.name.endswith(_EARLIEST):
                    series[key] = min(series[key], sample.value)
                elif sample.name.endswith(_ONE):
                    series[key] = max(series[key], sample.value)
                else:
                    series[key] += sample.value
    lines = []
    for name, family in families.items():
        shown = f"{name}_total" if family.type == "counter" else name
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines += [f"# HELP {shown} {doc}", f"# TYPE {shown} {family.type}"]
        for (sample_name, labels), value in values[name].items():
            lines.append(_line(Sample(sample_name, dict(labels), value)))
    return ("\n".join(lines) + "\n").encode()


def _line(sample: Sample) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")

    labels = ",".join(f'{k}="{escape(v)}"' for k, v in sample.labels.items())
    return f"{sample.name}{{{labels}}} {sample.value!r}" if labels else (
        f"{sample.name} {sample.value!r}")  # fmt: skip


def add_up(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The workers' summaries as one: counts added, the event time reached the earliest."""

    def add(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k))
                    for k in {**a, **b}}  # fmt: skip
        if isinstance(a, int) and isinstance(b, int):
            return a + b
        return a

    streams: dict[str, Any] = {}
    for summary in summaries:
        streams = add(streams, summary.get("streams", {}))
    reached = [s["event_time_reached"] for s in summaries if s.get("event_time_reached")]
    return {
        "streams": streams,
        "undelivered": sum(s.get("undelivered", 0) for s in summaries),
        "event_time_reached": min(reached) if reached else None,
    }


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process
    port: int | None = None
    live: bool = False
    cursor_ms: int | None = None
    records: int = 0
    bytes: int = 0  # written, by the sinks that count them
    summary: dict[str, Any] = field(default_factory=dict)
    reporting: asyncio.Task[None] | None = None
    relaying: asyncio.Task[None] | None = None


class Pool:
    def __init__(self, settings: Settings, argv: Sequence[str]) -> None:
        self.settings = settings
        self.argv = list(argv)
        self.workers: list[Worker] = []
        self.reason = ""
        self.live = asyncio.Event()
        self.changed = asyncio.Event()
        self.started = time.monotonic()
        self.errors: dict[bytes, set[int]] = {}  # a bad setting's line: which workers said it

    async def start(self, metrics_port: int | None = None) -> None:
        for index in range(self.settings.worker_count):
            ours, theirs = socket.socketpair()
            try:
                process = await asyncio.create_subprocess_exec(
                    *worker_args(self.settings, self.argv, index, theirs.fileno()),
                    pass_fds=(theirs.fileno(),), start_new_session=True,
                    stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
            finally:
                theirs.close()
            worker = Worker(index, process)
            worker.reporting = asyncio.create_task(self._listen(worker, ours))
            worker.relaying = asyncio.create_task(self._relay(worker))
            self.workers.append(worker)
        log.info(
            "workers_started",
            workers=[w.process.pid for w in self.workers],
            metrics_port=metrics_port,
        )  # (the workers' own are for this process to scrape)

    async def _listen(self, worker: Worker, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        try:
            while line := await reader.readline():
                message = orjson.loads(line)
                if "port" in message:
                    worker.port = message["port"]
                if "live_ms" in message:
                    worker.live = True
                    if all(w.live for w in self.workers) and not self.live.is_set():
                        self.live.set()
                        log.info("workers_live", workers=len(self.workers))
                if "cursor_ms" in message:
                    worker.cursor_ms, worker.records = message["cursor_ms"], message["records"]
                    worker.bytes = message.get("bytes", 0)
                if "summary" in message:
                    worker.summary = message["summary"]
                self.changed.set()
        finally:
            writer.close()  # the worker's end of file: its parent is gone

    async def _relay(self, worker: Worker) -> None:
        """A worker's logs go on as they come; its error line (the last it writes) is held,
        so that the same error from every worker is one line with a count."""
        assert worker.process.stderr is not None
        while line := await worker.process.stderr.readline():
            if line.startswith(b"synthstream: error:"):
                self.errors.setdefault(line.rstrip(b"\n"), set()).add(worker.index)
                continue
            with tqdm.external_write_mode(file=sys.stderr):  # (above the progress bar)
                sys.stderr.buffer.write(line)
                sys.stderr.flush()

    def print_errors(self) -> None:
        for line, which in self.errors.items():
            count = f" ({len(which)} of {len(self.workers)} workers)".encode()
            sys.stderr.buffer.write(line + (count if len(which) > 1 else b"") + b"\n")
        sys.stderr.flush()

    def send(self, sig: int) -> None:
        for worker in self.workers:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    def stop(self, reason: str, sig: int = signal.SIGTERM) -> None:
        self.reason = self.reason or reason
        self.send(sig)

    async def render(self) -> bytes:
        async def scrape(worker: Worker) -> str:
            if worker.port is None or worker.process.returncode is not None:
                return ""
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                    return await _get(self.settings.metrics.host, worker.port, "/metrics")
            return ""

        texts = await asyncio.gather(*(scrape(w) for w in self.workers))
        alive = sum(w.process.returncode is None for w in self.workers)
        extra = ("# HELP synthstream_workers Worker processes running.\n"
                 f"# TYPE synthstream_workers gauge\nsynthstream_workers {alive}\n")  # fmt: skip
        return merge(texts, extra)

    def healthy(self) -> bool:
        return all(w.process.returncode in (None, 0) for w in self.workers)

    async def wait(self, duration_s: float | None, on_progress: Callable[[], None]) -> None:
        """Until every worker has ended: the duration once all are live, a failed worker
        stops the others."""
        waits = {asyncio.ensure_future(w.process.wait()) for w in self.workers}
        deadline: float | None = None
        while waits:
            if duration_s is not None and deadline is None and self.live.is_set():
                deadline = time.monotonic() + duration_s
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            changed = asyncio.ensure_future(self.changed.wait())
            done, _ = await asyncio.wait(
                waits | {changed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            changed.cancel()
            self.changed.clear()
            on_progress()
            if deadline is not None and time.monotonic() >= deadline and not self.reason:
                self.stop("duration", signal.SIGUSR1)
            for task in done - {changed}:
                waits.discard(task)
                failed = [w for w in self.workers if w.process.returncode not in (None, 0)]
                if failed and not self.reason:
                    worker = failed[0]
                    log.error("worker_failed", worker=worker.index,
                              exit_code=worker.process.returncode)  # fmt: skip
                    self.stop(f"worker {worker.index} failed")
        for worker in self.workers:
            for listening in (worker.reporting, worker.relaying):
                if listening is not None:
                    await listening
        self.print_errors()

    def exit_code(self) -> int:
        codes = [w.process.returncode or 0 for w in self.workers]
        if any(c == 2 for c in codes):
            return 2
        return 0 if all(c == 0 for c in codes) else 1


async def _get(host: str, port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return body.decode() if head.split(b" ", 2)[1:2] == [b"200"] else ""


def finish(pool: Pool) -> int:
    """The one ``synthstream_finished`` of the workers' summaries; the worst exit status."""
    summary = add_up([w.summary for w in pool.workers])
    reasons = {w.summary.get("reason") for w in pool.workers if w.summary}
    code = pool.exit_code()
    if code == 0 and summary["undelivered"]:
        code = 1
    log.info(
        "synthstream_finished",
        reason=pool.reason or (reasons.pop() if len(reasons) == 1 else "stopped"),
        elapsed_s=round(time.monotonic() - pool.started, 3),
        workers=len(pool.workers),
        event_time_reached=summary["event_time_reached"],
        streams=summary["streams"],
        undelivered=summary["undelivered"],
        exit_code=code,
    )
    return code


class Link:
    """A worker's end of the socket pair to its parent."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a parent gone: the watch below stops the run
            self.sock.sendall(orjson.dumps(message) + b"\n")

    def watch(self, loop: asyncio.AbstractEventLoop, gone: Callable[[], None]) -> None:
        """Call ``gone`` once the parent's end closes."""

        def readable() -> None:
            try:
                data = os.read(self.sock.fileno(), 1)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self.sock.fileno())
                gone()

        loop.add_reader(self.sock.fileno(), readable)
