"""The composition root: what ``synthstream run`` puts together, for one process and for
``--workers`` alike.

One process builds the engine (``producer.app``) from the settings, with its stop signals,
live control and the metrics port. ``--workers N`` makes N such processes, each a shard, under
a parent (``producer.workers``) that serves the one metrics port and the progress bar and owns
the duration. Both go through the same steps here: the logs, the event loop (uvloop unless
turned off), the signals, the metrics port (a port that cannot be had is one line, status 2)
and the backfill bar.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from producer import early, runs
from producer.clock import Clock, Stopper
from producer.config import Settings
from producer.errors import ConfigError
from producer.server import MetricsServer


def run(settings: Settings, clock: Clock, argv: Sequence[str], worker_fd: int | None) -> int:
    """``synthstream run``: its exit status."""
    from producer import logs

    logs.configure(settings.log)
    main = _pool(settings, argv) if settings.worker_count > 1 else _one(settings, clock, worker_fd)
    if settings.use_uvloop:
        try:
            import uvloop

            return int(uvloop.run(main))
        except ImportError:  # pragma: no cover - platforms without uvloop
            pass
    return int(asyncio.run(main))


async def _serving(server: MetricsServer, settings: Settings) -> MetricsServer:
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port / SYNTHSTREAM_METRICS__PORT: cannot listen on "
            f"{settings.metrics.host}:{settings.metrics.port}: {exc.strerror or exc}"
        ) from None
    return server


def _on_signals(stop: Any) -> None:
    """SIGINT and SIGTERM call ``stop("signal NAME")``, each one (a second forces), those
    that came while the process started too."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, f"signal {sig.name}")
    for reason in early.caught():
        stop(reason)


def _one(settings: Settings, clock: Clock, worker_fd: int | None) -> Coroutine[Any, Any, int]:
    link = None
    if worker_fd is not None:  # a worker of --workers: its parent is at the other end
        import structlog

        from producer.workers import Link

        link = Link(worker_fd)
        structlog.contextvars.bind_contextvars(worker=settings.shard)
    return one_process(settings, clock, link)


async def one_process(settings: Settings, clock: Clock | None = None, link: Any = None) -> int:
    """Run until stopped; return the exit status. ``link`` (a ``workers.Link``) makes this a
    worker of ``--workers``: its parent is told the metrics port, the start of live mode,
    backfill progress and the summary, and owns the duration (SIGUSR1 ends the run as
    ``--duration``); the run stops if the parent goes."""
    from producer.app import Engine
    from producer.control import from_settings
    from producer.metrics import Metrics

    metrics = Metrics()
    if link is not None:
        settings = settings.model_copy(update={"duration_s": None})
    engine = Engine(settings, metrics, clock=clock)
    stopper = Stopper()
    _on_signals(stopper.stop)
    if link is not None:
        loop = asyncio.get_running_loop()
        engine.report = link.send
        loop.add_signal_handler(signal.SIGUSR1, stopper.stop, "duration")
        link.watch(loop, functools.partial(stopper.stop, "parent_gone"))
    control = from_settings(settings, engine.streams, metrics, engine.clock, engine.floor_ms,
                            engine.nudge)  # fmt: skip
    server = None
    if settings.metrics.enabled:
        server = await _serving(MetricsServer(metrics, settings.metrics.host,
                                              settings.metrics.port, control=control),
                                settings)  # fmt: skip
    engine.report({"port": server.port if server else None})
    # (a worker's port is its parent's to scrape: the parent's is the one to log and find)
    engine.worker = link is not None
    registered = None
    if server and not link and settings.control.enabled:  # `synthstream ctl` finds it
        registered = runs.register(settings.metrics.host, server.port)
    try:
        outcome = await engine.run(stopper, server)
    finally:
        runs.unregister(registered)
        if server:
            await server.stop()
    engine.report({"summary": engine.summary})
    return outcome.exit_code


async def _pool(settings: Settings, argv: Sequence[str]) -> int:
    """The workers until they end; one summary, the worst exit status."""
    from producer.app import iso
    from producer.logs import progress_bar, progress_text
    from producer.workers import Pool, check, finish

    check(settings)
    pool = Pool(settings, argv)
    _on_signals(pool.stop)
    server = None
    if settings.metrics.enabled:
        server = await _serving(MetricsServer(None, settings.metrics.host, settings.metrics.port,
                                              render=pool.render, healthy=pool.healthy),
                                settings)  # fmt: skip
    backfill = settings.backfill
    start_ms = round(backfill.start.timestamp() * 1000) if backfill.start else 0
    end_ms = round(backfill.end.timestamp() * 1000) if backfill.end else int(time.time() * 1000)
    bar = progress_bar(end_ms - start_ms, backfill.shows_progress(sys.stderr.isatty()))

    def progress() -> None:
        cursors = [w.cursor_ms for w in pool.workers if w.cursor_ms is not None]
        if cursors and not bar.disable:
            bar.n = max(0, min(min(cursors), end_ms) - start_ms)
            bar.set_postfix_str(progress_text(iso(min(cursors)),
                                              sum(w.records for w in pool.workers),
                                              sum(w.bytes for w in pool.workers)))  # fmt: skip

    try:
        with bar:
            await pool.start(server.port if server else None)
            await pool.wait(settings.duration_s, progress)
            progress()  # (the workers' last word: every byte their sinks wrote)
    finally:
        if server is not None:
            await server.stop()
    return finish(pool)
