"""structlog setup: coloured console on a terminal, JSON lines otherwise, always on stderr."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from producer.settings import LogSettings

if TYPE_CHECKING:
    from tqdm import tqdm


def _json_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


REPEAT_INTERVAL_S = 10.0
# Fields that make two warnings "the same" (with the event's name and level).
_SAME = ("stream", "sink", "reason", "status", "logger")


class Repeats:
    """Warnings and errors that repeat: the first of a kind passes, the next ones within
    ``interval_s`` are counted, not printed, and the first one after that carries the count
    as ``repeated`` (``records_failed repeated=88 reason=...``). One per kind and interval,
    never a flood; the counters and the summary line still count every record."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S, clock: Any = time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[tuple[Any, ...], float] = {}
        self._held: dict[tuple[Any, ...], int] = {}

    def admit(self, key: tuple[Any, ...]) -> int | None:
        """None: drop this one; else how many were dropped before it (0: the first)."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor."""
        if method not in ("warning", "error", "critical", "exception"):
            return event
        key = (method, event.get("event"), *(str(event.get(k)) for k in _SAME))
        held = self.admit(key)
        if held is None:
            raise structlog.DropEvent
        if held:
            event["repeated"] = held
        return event


class _RepeatFilter(logging.Filter):
    """The same for libraries' records (aiokafka, botocore, httpx, uvicorn)."""

    def __init__(self, repeats: Repeats) -> None:
        super().__init__()
        self.repeats = repeats

    def filter(self, record: logging.LogRecord) -> bool:
        key = ("lib", record.name, record.levelno, str(record.msg)[:80])
        held = self.repeats.admit(key)
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} (repeated {held} times)"
        return True


def configure(settings: LogSettings) -> None:
    fmt = settings.format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Libraries (aiokafka, httpx, uvicorn) log through the standard library: render their
    # records the same way, so that stderr stays one format (JSON lines in production).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    repeats = Repeats()
    handler.addFilter(_RepeatFilter(repeats))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, getattr(logging, settings.level.upper())))
    structlog.configure(
        processors=[
            repeats,
            structlog.contextvars.merge_contextvars,  # a worker's index (--workers)
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, settings.level.upper())
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Libraries' own error lines while we probe: our one line says it all."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def progress_text(at: str, records: int, written: int) -> str:
    """A backfill's progress after the bar: the event time it is at (ISO), records, bytes
    written (when a sink counts them)."""
    size = ""
    if written:
        units = [("GB", 2**30), ("MB", 2**20), ("KB", 2**10)]
        unit, scale = next(((u, f) for u, f in units if written >= f), ("B", 1))
        size = f", {written / scale:,.1f} {unit}" if scale > 1 else f", {written} B"
    return f"{at[:16]}Z, {records:,} records{size}"


def progress_bar(total_ms: int, show: bool) -> tqdm[Any]:
    """A backfill's progress bar on standard error, over ``total_ms`` of event time (the same
    for one process and for the parent of ``--workers``)."""
    from tqdm import tqdm

    shape = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    return tqdm(total=max(total_ms, 1), desc="backfill", disable=not show, file=sys.stderr,
                dynamic_ncols=True, bar_format=shape)  # fmt: skip
