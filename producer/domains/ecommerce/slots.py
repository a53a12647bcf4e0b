"""Changes made a slot at a time: a table's changes of a 90-day slot are made once, in time
order, and cut to each window (a live tick asks for a second of them; making them from
every seat's or product's draws at each tick cost more than the traffic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Columns = dict[str, npt.NDArray[Any]]


class BySlot:
    """``make(t0, t1)`` (the changes in [t0, t1), in time order, with ``time_ms``), a slot
    at a time; the slot last made is kept."""

    def __init__(self, slot_ms: int, make: Callable[[int, int], Columns | None]) -> None:
        self.slot_ms, self.make = slot_ms, make
        self.slot: int = -1
        self.cols: Columns | None = None

    def _of(self, slot: int) -> Columns | None:
        if slot != self.slot:
            self.slot, self.cols = slot, self.make(slot * self.slot_ms, (slot + 1) * self.slot_ms)
        return self.cols

    def between(self, t0: int, t1: int) -> Columns | None:
        """The changes in [t0, t1)."""
        parts = []
        for slot in range(t0 // self.slot_ms, (t1 - 1) // self.slot_ms + 1):
            cols = self._of(slot)
            if cols is None:
                continue
            times = cols["time_ms"]
            a, b = np.searchsorted(times, [t0, t1])
            if b > a:
                parts.append({k: v[a:b] for k, v in cols.items()})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {
            k: np.concatenate([p[k] for p in parts]) for k in parts[0]}  # fmt: skip

    def next_at(self, t: int, slots: int = 4) -> int:
        """The first change at or after ``t`` (looking ``slots`` ahead; none: their end)."""
        first = t // self.slot_ms
        for slot in range(first, first + slots):
            cols = self._of(slot)
            if cols is not None:
                times = cols["time_ms"]
                at = int(np.searchsorted(times, t))
                if at < times.size:
                    return int(times[at])
        return (first + slots) * self.slot_ms
