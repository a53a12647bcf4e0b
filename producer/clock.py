"""The only source of time: a ``Clock`` handed to the engine (and to the commands that need
"now"); live runs read wall time from it, backfills run on event time alone.

Event times are integer milliseconds since the Unix epoch (UTC). ``Stopper`` lets every wait
end early when the run is asked to stop, without a task per wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock(Protocol):
    """Where "now" comes from: wall time in ms since the epoch, and a monotonic second count
    for durations (deadlines, backoff, pacing)."""

    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...


class WallClock:
    """The real clock."""

    def now_ms(self) -> int:
        return wall_ms()

    def monotonic(self) -> float:
        return time.monotonic()


async def wait_first(
    waiter: asyncio.Future[None], *others: asyncio.Future[None], limit_s: float | None = None
) -> None:
    """Until ``waiter`` is done, or any of ``others`` is, or ``limit_s`` seconds passed
    (``asyncio.wait`` without its sets, tasks and copies: live ticks run this many times a
    second). ``waiter`` is the caller's own future; it is done (or cancelled) on return."""

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    loop = asyncio.get_running_loop()
    timer = loop.call_later(limit_s, wake) if limit_s is not None else None
    for other in others:
        other.add_done_callback(wake)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for other in others:
            other.remove_done_callback(wake)


class Stopper:
    """Set once by a signal, ``--duration`` or ``--max-records``; every wait watches it."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._forced: asyncio.Future[None] = loop.create_future()
        self.reason = ""

    @property
    def stopped(self) -> bool:
        return self._stopped.done()

    def stop(self, reason: str) -> None:
        if not self._stopped.done():
            self.reason = reason
            self._stopped.set_result(None)
        elif not self._forced.done() and reason.startswith("signal"):
            # A second Ctrl-C: stop waiting for the queues to drain.
            self._forced.set_result(None)

    async def sleep(self, seconds: float, *also: asyncio.Future[None]) -> None:
        """Sleep, or return as soon as the run is stopped (or any of ``also`` is done)."""
        if seconds <= 0 or self._stopped.done():
            await asyncio.sleep(0)
            return
        await wait_first(asyncio.get_running_loop().create_future(), self._stopped, *also,
                         limit_s=seconds)  # fmt: skip

    @property
    def forced(self) -> asyncio.Future[None]:
        return self._forced

    @property
    def requested(self) -> asyncio.Future[None]:
        """Done once the run is asked to stop: a wait can watch it."""
        return self._stopped
