"""Ticks made ahead of their hand-over: what a live run prepares in one burst.

A tick is two steps. *Preparing* it takes the records due in ``[t0, t1)`` from each stream's
source and passes them through each channel's faults; *handing it over* counts them, writes
their ground truth and queues them on the routes. Only the second has to happen at ``t1``.
A live run prepares the ticks of the next ``PLAN_MS`` in one go, or of about ``PLAN_RECORDS``
at high rates (the code is then warm: a wake after a 30 ms sleep runs the same Python three
to four times slower), and each wake only hands over what is due. A backfill prepares and
hands over each tick at once.

Preparing moves state only in the faults' holdings (late records, replayed outages): each
prepared tick keeps a reference to what the channels held before it, so that a run that
stops before a prepared tick is due puts back what the first tick not handed over found.
Nothing of a tick that was not handed over was counted, so nothing else is undone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from producer.delivery import Route
from producer.faults import FaultOutput
from producer.rates import NEVER
from producer.records import Kinds, RecordBatch
from producer.sink import Payload
from producer.streams import Channel, Stream

# A live run prepares the ticks due within this much of now, in bursts of about this many
# records at most (20,000/s: 250 ms of ticks; a burst holds the loop for a few ms). Longer
# plans cost less per tick (1 s was no cheaper than this within the noise), and a control
# action takes effect only after what was made ahead: half a second is the balance.
PLAN_MS = 500
PLAN_RECORDS = 5_000
# A run that is behind (asked for more than the machine makes) catches up in ticks and bursts
# of about this many records, so the loop serves /metrics and a stop between them.
CATCH_UP_RECORDS = 50_000
Holdings = list[tuple[Channel, RecordBatch | None, npt.NDArray[np.int64]]]


def holdings(streams: list[Stream]) -> Holdings:
    """What every channel's faults hold now (references: a holding is replaced, not changed)."""
    return [(channel, channel.faults.holding.batch, channel.faults.holding.release_ms)
            for stream in streams for channel in stream.channels]  # fmt: skip


def restore(held: Holdings) -> None:
    """Put every holding back as it was."""
    for channel, batch, release in held:
        channel.faults.holding.batch, channel.faults.holding.release_ms = batch, release


@dataclass
class Output:
    """One channel's part of a tick: what its source made (None: nothing new) and what its
    faults made of it."""

    channel: Channel
    made: RecordBatch | None
    result: FaultOutput
    kinds: Kinds | None  # what the records are counted by on /metrics
    ahead: dict[Route, Payload] = field(default_factory=dict)  # encoded for a route ahead


@dataclass
class Prepared:
    t1: int  # the tick's end: it is handed over at t1 - 1 or later
    before: Holdings  # every channel's holding before this tick: what a stop puts back
    outputs: list[Output] = field(default_factory=list)
    generated: int = 0  # records the sources made (what --max-records counts)


def prepare(streams: list[Stream], t0: int, t1: int, limit: int | None) -> Prepared:
    """Everything due in ``[t0, t1)``, through the faults; at most ``limit`` new records."""
    tick = Prepared(t1, holdings(streams))
    for stream in streams:
        remaining = None if limit is None else limit - tick.generated
        batches = stream.source.advance(t0, t1, remaining)
        for channel in stream.channels:
            batch = batches.get(channel.name)
            holding = channel.faults.holding
            if batch is not None or holding.batch is not None:
                if batch is not None:
                    tick.generated += len(batch)
                result = channel.faults.apply(batch, t1)
                ahead = {}
                if len(result.batch):  # encoded now, for a sink that takes it at once
                    for route in channel.routes:
                        if (payload := route.prepare(result.batch)) is not None:
                            ahead[route] = payload
                kinds = stream.source.channels[channel.name].kinds
                tick.outputs.append(Output(channel, batch, result, kinds, ahead))
    return tick


def plan_ticks(
    plan: deque[Prepared], streams: list[Stream], next_due: Callable[[int], int], cursor: int,
    last_wake: int, now: int, until_ms: int | None, limit: int | None, tick_ms: int,
    span_ms: int,
) -> int:  # fmt: skip
    """Prepare onto ``plan`` the ticks whose wake comes within ``PLAN_MS`` of ``now``, from
    ``cursor`` on (``limit``: the records still allowed); return the first wake not prepared.
    ``span_ms``: the most event time a tick takes (a run that is behind catches up in ticks
    of about ``CATCH_UP_RECORDS``), and a burst ends once it made ``PLAN_RECORDS``.

    Coalesced ticks: the first record due waits out the budget, and the records due meanwhile
    go out with it, with exact event times. At high rates this is a wake per tick; at low
    rates fewer wakes than records (33/s: 20 a second, not 33). A record due at d is taken by
    a wake at d or later (d + tick - 1 is a tick), and a wake that comes late takes everything
    due by then."""
    end = until_ms if until_ms is not None else NEVER
    made = 0
    wake = min(max(next_due(cursor) + tick_ms - 1, last_wake + tick_ms, now), end)
    while wake <= now + PLAN_MS:
        t1 = min(wake + 1, end)
        if t1 - cursor > span_ms:  # behind: a part of what is due
            t1, wake = cursor + span_ms, cursor + span_ms - 1
        if t1 <= cursor:
            break
        tick = prepare(streams, cursor, t1, None if limit is None else limit - made)
        plan.append(tick)
        made, cursor = made + tick.generated, t1
        if (limit is not None and made >= limit) or t1 >= end:
            break
        wake = min(max(next_due(cursor) + tick_ms - 1, wake + tick_ms), end)
        if made >= PLAN_RECORDS:  # the rest in another burst, after a turn of the loop
            break
    return wake
