"""A stream at run time: its source (entities of this shard, generator, rate model) and its
channels, each with its faults, ground truth and routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from producer import rng
from producer.config import Settings
from producer.delivery import Route
from producer.episodes import Episodes, EpisodeStage
from producer.errors import ConfigError
from producer.faults import Faults, Truth
from producer.generators import Source
from producer.plugins import StreamContext
from producer.rates import Pace


@dataclass
class Channel:
    """One record type of a stream: its faults, ground-truth file and routes to sinks."""

    name: str
    faults: Faults
    ground_truth: Path | None = None
    routes: list[Route] = field(default_factory=list)

    def record_ground_truth(self, truth: list[Truth]) -> None:
        """Append what faults did to ``<dir>/<stream>.ground-truth.jsonl``, one line a record:
        message_id, kind, stream, the timestamp it carries, its event time, parameters."""
        if self.ground_truth is None or not truth:
            return
        lines = []
        for entry in truth:
            records = entry.records
            ids = records.message_ids().astype("U36").tolist()
            event_times = records.time_ms.tolist()
            stamps = records.iso_times()
            params = {
                name: value.tolist() if isinstance(value, np.ndarray) else [value] * len(records)
                for name, value in entry.params.items()
            }
            for i, mid in enumerate(ids):
                row = {"message_id": mid, "kind": entry.kind, "stream": self.name,
                       "timestamp": stamps[i], "event_time_ms": event_times[i]}  # fmt: skip
                row.update({name: values[i] for name, values in params.items()})
                lines.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        with self.ground_truth.open("ab") as out:
            out.write(b"".join(lines))


@dataclass
class Stream:
    name: str
    source: Source
    channels: list[Channel]
    pace: Pace = field(default_factory=Pace)  # live control's rate multiplier
    episodes: Episodes = field(default_factory=lambda: Episodes({}))


def build_stream(name: str, settings: Settings, origin_ms: int | None = None) -> Stream:
    """The stream ``name`` as the settings say; ``origin_ms`` the event time it starts at (by
    default a backfill's start, else the wall clock's now)."""
    stream_settings = settings.stream(name)
    shard = settings.shard_spec
    backfill = settings.backfill
    window = None
    if backfill.enabled and backfill.start is not None and backfill.end is not None:
        window = (round(backfill.start.timestamp() * 1000),
                  round(backfill.end.timestamp() * 1000))  # fmt: skip
    if origin_ms is None and backfill.enabled and backfill.start is not None:
        origin_ms = round(backfill.start.timestamp() * 1000)
    pace, episodes = Pace(), Episodes(stream_settings.episode_kinds())
    source = stream_settings.build(
        StreamContext(name, settings.seed, shard, window, pace, episodes, origin_ms)
    )
    channels = []
    for channel, schema in source.channels.items():
        ground_truth = None
        if stream_settings.faults.ground_truth:
            suffix = "" if shard.count == 1 else f"-shard{shard.index}of{shard.count}"
            ground_truth = settings.out / f"{channel}{suffix}.ground-truth.jsonl"
            try:  # the run's folder, whichever sinks the stream has
                ground_truth.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"{name}: faults.ground_truth: cannot create {ground_truth.parent} "
                    f"({exc.strerror or exc}); accepted: a writable --out / SYNTHSTREAM_OUT"
                ) from None
        key = rng.text_key(settings.seed, name, "faults")
        if channel != name:
            key = rng.text_key(settings.seed, name, channel, "faults")
        stages = [EpisodeStage(channel, episodes), *stream_settings.fault_stages(key, schema)]
        faults = Faults(stream_settings.faults, key, schema, stages)
        channels.append(Channel(channel, faults, ground_truth))
    return Stream(name, source, channels, pace, episodes)
