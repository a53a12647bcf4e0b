"""The only source of time: wall time for live runs, virtual event time for backfills.

Event times are integer milliseconds since the Unix epoch (UTC). ``Stopper`` lets every wait
end early when the run is asked to stop, without a task per wait.
"""

from __future__ import annotations

import asyncio
import time


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


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

    async def sleep(self, seconds: float) -> None:
        """Sleep, or return as soon as the run is stopped."""
        if seconds <= 0 or self._stopped.done():
            await asyncio.sleep(0)
            return
        await asyncio.wait({self._stopped}, timeout=seconds)

    @property
    def forced(self) -> asyncio.Future[None]:
        return self._forced

    @property
    def requested(self) -> asyncio.Future[None]:
        """Done once the run is asked to stop: a wait can watch it."""
        return self._stopped
