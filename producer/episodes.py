"""Episodes started now by live control: an outage of some entities (any stream), and each
domain's own (a weather event, a pollution episode, a fraud burst).

An episode has an event-time window and either drops the records of the entities it covers
(an outage) or changes what they say (``EpisodeKind.effect``); a kind may also change what
its domain generates (a fraud burst makes more sessions fraud: the domain reads
``Episodes.active``). One fault stage per channel applies them, so every record an episode
touched is in the ground truth (``episode_<kind>``) and counted under
``synthstream_faults_injected_total``, like an injected fault. Entities are chosen in time
order: the first ``entities`` distinct ones with a record from the start on (all when not
given), so a backfill given the same episodes picks the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from producer.faults.base import Step, Truth
from producer.records import RecordBatch
from producer.rng import F64, I64

# An effect changes the records at ``hit`` (indices into the batch) by ``shape`` (0-1: how
# far into the episode each is, ramped in and out) and returns the new batch.
Effect = Callable[[RecordBatch, I64, F64, "Episode"], RecordBatch]


@dataclass(frozen=True)
class Param:
    """A parameter of an episode kind, as the API accepts it."""

    default: float | str | None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    whole: bool = False  # a count: a whole number, kept as one (units=15, not 15.0)

    def accepts(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"a {'whole ' if self.whole else ''}number from {self.low:g} to {self.high:g}"


@dataclass(frozen=True)
class EpisodeKind:
    name: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)
    effect: Effect | None = None  # None: the records are lost (an outage)
    channels: tuple[str, ...] | None = None  # where it applies (None: every channel)
    default_seconds: float = 60.0
    all_entities: bool = False  # by default every entity (else ``entities`` is needed)
    # Which records it covers (a mask), beyond its window and entities.
    select: Callable[[RecordBatch, Episode], Any] | None = None
    open_ended: bool = False  # covers its records from its start on (what it started goes on)


def unchanged(batch: RecordBatch, hit: I64, shape: F64, episode: Episode) -> RecordBatch:
    """The effect of a kind that acts as its domain generates (a fraud burst, a major
    incident): the records are what it made; the stage writes their ground truth."""
    return batch


OUTAGE = EpisodeKind(
    "outage", "Some entities go silent: their records in the window are lost.",
    {"entities": Param(10, 1, 1e9, description="How many entities go dark.", whole=True)},
)  # fmt: skip


@dataclass(frozen=True)
class Episode:
    id: str
    kind: str
    start_ms: int
    end_ms: int
    entities: int | None  # how many (None: all)
    params: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "start_ms": self.start_ms,
                "end_ms": self.end_ms, "entities": self.entities, **self.params}  # fmt: skip

    def shape(self, t: I64) -> F64:
        """0-1 by event time: a ramp over the first and last tenth (at most a minute)."""
        ramp = max(1, min((self.end_ms - self.start_ms) // 10, 60_000))
        rise = np.clip((t - self.start_ms) / ramp, 0, 1)
        fall = np.clip((self.end_ms - t) / ramp, 0, 1)
        out: F64 = np.minimum(rise, fall)
        return out


class Episodes:
    """A stream's episodes, shared by its channels' stages and its domain."""

    def __init__(self, kinds: dict[str, EpisodeKind]) -> None:
        self.kinds = {OUTAGE.name: OUTAGE, **kinds}
        self.all: list[Episode] = []

    def add(self, episode: Episode) -> None:
        self.all.append(episode)

    def active(self, kind: str, t0: int, t1: int) -> list[Episode]:
        """Episodes of ``kind`` overlapping ``[t0, t1)``."""
        return [e for e in self.all if e.kind == kind and e.start_ms < t1 and e.end_ms > t0]


class EpisodeStage:
    """The fault stage of one channel for its stream's episodes (first in the pipeline: an
    episode is what happened, faults are how it was reported)."""

    order = 5

    def __init__(self, channel: str, episodes: Episodes) -> None:
        self.channel = channel
        self.episodes = episodes
        self.chosen: dict[str, I64] = {}  # episode id -> entities, in the order picked
        self.kinds = tuple(
            f"episode_{k.name}" for k in episodes.kinds.values()
            if k.channels is None or channel in k.channels
        )  # fmt: skip

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        if not self.episodes.all or not len(batch):
            return batch
        t = batch.time_ms
        t0, t1 = int(t[0]), int(t[-1]) + 1
        for episode in self.episodes.all:
            kind = self.episodes.kinds[episode.kind]
            if episode.start_ms >= t1 or (episode.end_ms <= t0 and not kind.open_ended):
                continue
            if kind.channels is not None and self.channel not in kind.channels:
                continue
            inside = (t >= episode.start_ms) & ((t < episode.end_ms) | kind.open_ended)
            if kind.select is not None:
                inside &= kind.select(batch, episode)
            if episode.entities is not None:
                inside &= np.isin(batch.entity, self._pick(episode, batch.entity[inside]))
            hit = np.flatnonzero(inside)
            if not hit.size:
                continue
            shape = episode.shape(t[hit])
            if kind.effect is not None:
                batch = kind.effect(batch, hit, shape, episode)
            params = {"episode": episode.id, "start_ms": episode.start_ms,
                      "end_ms": episode.end_ms, **episode.params}  # fmt: skip
            step.truth.append(Truth(f"episode_{kind.name}", batch.take(hit), params))
            if kind.effect is None:
                step.lost.append(batch.take(hit))
                batch = batch.take(np.flatnonzero(~inside))
                t = batch.time_ms
        return batch

    def _pick(self, episode: Episode, seen: I64) -> I64:
        """The episode's entities: the first ``entities`` distinct ones seen from its start."""
        chosen = self.chosen.get(episode.id, np.empty(0, np.int64))
        want = (episode.entities or 0) - chosen.size
        if want > 0 and seen.size:
            fresh = seen[~np.isin(seen, chosen)]
            if fresh.size:
                ids, first = np.unique(fresh, return_index=True)
                chosen = np.concatenate([chosen, ids[np.argsort(first)][:want]])
                self.chosen[episode.id] = chosen
        return chosen
