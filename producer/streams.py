"""A stream at run time: its source (entities of this shard, generator, rate model) and its
channels, each with its faults, ground truth and routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from producer import rng
from producer.delivery import Route
from producer.faults import Faults, Truth
from producer.generators import SingleChannel, Source, entity_keys, shard_entities
from producer.plugins import StreamContext
from producer.rates import FixedInterval, RateModel, TotalRate
from producer.settings import SensorStreamSettings, Settings, Shard


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


def build_stream(name: str, settings: Settings) -> Stream:
    stream_settings = settings.stream(name)
    shard = settings.shard_spec
    backfill = settings.backfill
    window = None
    if backfill.enabled and backfill.start is not None and backfill.end is not None:
        window = (round(backfill.start.timestamp() * 1000),
                  round(backfill.end.timestamp() * 1000))  # fmt: skip
    source = stream_settings.build(StreamContext(name, settings.seed, shard, window))
    channels = []
    for channel, schema in source.channels.items():
        ground_truth = None
        if stream_settings.faults.ground_truth:
            suffix = "" if shard.count == 1 else f"-shard{shard.index}of{shard.count}"
            ground_truth = settings.file_sink.dir / f"{channel}{suffix}.ground-truth.jsonl"
        key = rng.text_key(settings.seed, name, "faults")
        if channel != name:
            key = rng.text_key(settings.seed, name, channel, "faults")
        faults = Faults(stream_settings.faults, key, schema)
        channels.append(Channel(channel, faults, ground_truth))
    return Stream(name, source, channels)


def sensor_source(
    name: str, stream_settings: SensorStreamSettings, seed: int, shard: Shard
) -> SingleChannel:
    """The source of a stream of entities on a rate model: this shard's entities, their
    keys, the kind's generator, and a fixed interval or a total rate."""
    total = stream_settings.entities
    ids = shard_entities(name, total, shard)
    keys = entity_keys(seed, name, ids)
    generator = stream_settings.generator(ids, keys)
    rate_settings = stream_settings.rate
    rate: RateModel
    if rate_settings.total_per_s is not None:
        local = np.full(total, -1, dtype=np.int64)
        local[ids] = np.arange(ids.size, dtype=np.int64)
        rate = TotalRate(
            rng.text_key(seed, name, "arrivals"),
            total,
            local,
            rate_settings,
            ids.size / total,
        )
    else:
        offset = float(rng.uniform(rng.combine(rng.text_key(seed, name), 0), 7)[0])
        rate = FixedInterval(
            ids,
            keys,
            round(rate_settings.interval_s * 1000),
            round(rate_settings.jitter_s * 1000),
            offset,
            rate_settings.aligned,
        )
    return SingleChannel(generator, rate)
