"""Batches of records, kept as columns from the generator to the sink.

A ``RecordBatch`` is what moves through the engine: numpy columns for one stream, sorted by
event time. Sinks that need bytes per record ask the stream's ``Schema`` for JSON rows at the
edge; columnar sinks ask it for an Arrow table and never see per-record dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer.rng import I64, U64

# (hex start, output start, width) of the 8-4-4-4-12 groups
_UUID_GROUPS = ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12))
_FEW = 16


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one stream: identity columns plus the domain's own columns.

    ``key`` is each record's 64-bit random key (from seed, stream, entity and step): the
    message id and every fault decision derive from it, so a duplicate keeps its original's.
    """

    stream: str
    entity: I64  # global entity id
    time_ms: I64  # event time, ms since the Unix epoch (UTC)
    key: U64
    columns: dict[str, npt.NDArray[Any]]
    is_duplicate: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, np.bool_))
    # Clock skew injected by faults: the record *says* time_ms + skew_ms (see reported_ms).
    skew_ms: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    # What fault stages asked the encoders to do to a record: a small code per record for
    # each mark name (-1: nothing), e.g. which malformation (see producer.encoding). The
    # batch carries them and keeps them aligned; it does not know what they mean.
    marks: dict[str, npt.NDArray[np.int8]] = field(default_factory=dict)
    # Encodings of exactly these records made ahead of their send (producer.ticks), by
    # format, with the schema they were made with; a batch is not changed once its faults
    # are done, and take/concat start afresh.
    memo: dict[str, tuple[Any, bytes]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.is_duplicate.size != self.entity.size:
            object.__setattr__(self, "is_duplicate", np.zeros(self.entity.size, dtype=np.bool_))
        if self.skew_ms.size != self.entity.size:
            object.__setattr__(self, "skew_ms", np.zeros(self.entity.size, dtype=np.int64))

    @property
    def reported_ms(self) -> I64:
        """The timestamp the record carries: its event time plus any injected clock skew."""
        reported: I64 = self.time_ms + self.skew_ms
        return reported

    def __len__(self) -> int:
        return int(self.entity.size)

    def take(self, index: npt.NDArray[np.integer[Any]] | slice) -> RecordBatch:
        return RecordBatch(
            stream=self.stream,
            entity=self.entity[index],
            time_ms=self.time_ms[index],
            key=self.key[index],
            columns={name: col[index] for name, col in self.columns.items()},
            is_duplicate=self.is_duplicate[index],
            skew_ms=self.skew_ms[index],
            marks={name: codes[index] for name, codes in self.marks.items()},
        )

    @staticmethod
    def concat(batches: Sequence[RecordBatch]) -> RecordBatch:
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        return RecordBatch(
            stream=first.stream,
            entity=np.concatenate([b.entity for b in batches]),
            time_ms=np.concatenate([b.time_ms for b in batches]),
            key=np.concatenate([b.key for b in batches]),
            columns={
                name: np.concatenate([b.columns[name] for b in batches]) for name in first.columns
            },
            is_duplicate=np.concatenate([b.is_duplicate for b in batches]),
            skew_ms=np.concatenate([b.skew_ms for b in batches]),
            marks={
                name: np.concatenate([b.mark(name) for b in batches])
                for name in dict.fromkeys(n for b in batches for n in b.marks)
            },
        )

    def mark(self, name: str) -> npt.NDArray[np.int8]:
        """The codes of mark ``name`` (-1 for every record the mark was never set on)."""
        codes = self.marks.get(name)
        return codes if codes is not None else np.full(len(self), -1, dtype=np.int8)

    def marked(self, name: str, codes: npt.NDArray[np.int8]) -> RecordBatch:
        """This batch with mark ``name`` set to ``codes`` (one per record)."""
        marks = {**self.marks, name: codes}
        return RecordBatch(self.stream, self.entity, self.time_ms, self.key, self.columns,
                           self.is_duplicate, self.skew_ms, marks)  # fmt: skip

    def message_ids(self) -> npt.NDArray[np.bytes_]:
        """Deterministic UUIDs (version 4 layout) as 36-byte ASCII strings."""
        return uuid_strings(self.key)

    def iso_times(self) -> list[str]:
        """Event times as ISO 8601 UTC strings with milliseconds and a ``Z``."""
        stamps = np.datetime_as_string(self.reported_ms.astype("datetime64[ms]"), timezone="UTC")
        return stamps.tolist()  # type: ignore[no-any-return]


def uuid_strings(key: U64) -> npt.NDArray[np.bytes_]:
    """128 bits from two draws of each key, formatted as UUID strings, vectorised."""
    from producer import rng

    raw = np.ascontiguousarray(rng.draws(key, (60, 61)))
    octets = raw.view(np.uint8).reshape(key.size, 16)
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # version 4
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    if key.size <= _FEW:  # a live tick's record or two: string slicing beats array copies
        text = octets.tobytes().hex()
        ids = [text[i : i + 32] for i in range(0, 64 * key.size // 2, 32)]
        return np.array([f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in ids],
                        dtype="S36")  # fmt: skip
    # bytes.hex() runs in C at memory speed: (n, 32) ASCII hex digits.
    hexes = np.frombuffer(octets.tobytes().hex().encode(), dtype=np.uint8).reshape(key.size, 32)
    out = np.full((key.size, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in _UUID_GROUPS:
        out[:, dst : dst + width] = hexes[:, src : src + width]
    return out.view("S36").reshape(key.size)


def uuid_array(key: U64) -> pa.StringArray:
    """The message ids as an Arrow string column, built from one buffer without Python str."""
    data = uuid_strings(key)
    offsets = np.arange(0, 36 * (data.size + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(
        data.size, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())
    )


def timestamp_array(time_ms: I64) -> pa.Array:  # type: ignore[type-arg]
    return pa.array(time_ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


def arrow_schema(fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """``pa.schema`` for a list of (name, type) of mixed Arrow types (typed for mypy)."""
    return pa.schema(fields)


@dataclass(frozen=True, slots=True)
class Kinds:
    """What ``synthstream_records_by_kind_total`` counts for a channel: an integer column and
    the names of its codes (code ``c`` is ``names[c + offset]``)."""

    column: str
    names: tuple[str, ...]
    offset: int = 0


class KindCounts:
    """Records by (channel, kind): one ``bincount`` of an integer column per batch, not a
    string per record."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, channel: str, kinds: Kinds | None, batch: RecordBatch) -> None:
        if kinds is None or not len(batch):
            return
        codes = batch.columns[kinds.column].astype(np.int64) + kinds.offset
        found = np.bincount(codes, minlength=len(kinds.names))
        for name, n in zip(kinds.names, found.tolist(), strict=True):
            if n:
                self.counts[(channel, name)] = self.counts.get((channel, name), 0) + n


class Schema(Protocol):
    """How one stream's records look outside the engine."""

    stream: str
    partition_key: str  # the JSON field that keys a record (Kafka key, Kinesis partition key)
    # Numeric measurement columns sensor anomalies may touch: (typical scale, low, high).
    measures: dict[str, tuple[float, float, float]]
    time_field: str  # the JSON field with the record's timestamp
    optional_fields: tuple[str, ...]  # JSON fields a consumer must cope without
    kinds: Kinds | None  # the kinds its records are counted by, if any

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        """Records as JSON-ready dicts, in the stream's documented shape."""
        ...

    def table(self, batch: RecordBatch) -> pa.Table:
        """Records as an Arrow table (nested fields as structs)."""
        ...
