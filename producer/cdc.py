"""Change data capture: a channel whose records are changes of entity state.

A *table* is a channel of row states: each record is an entity's row after it changed (a
product's price and stock, an order's status), keyed by the table's primary key. A
``ChangeLog`` remembers each key's last row and turns those records into changes in the
Debezium envelope: ``before`` (the row as it was, or null), ``after`` (as it is now, or null
for a delete), ``op`` (``c`` create, ``u`` update, ``d`` delete, ``r`` the snapshot that
opens a run), ``ts_ms`` and ``source`` (stream, table, ``seq``: the change's number in its
key's history, 1 for the key's first row in the run; the same in any shard and chunking, so
``(key, seq)`` names a change: a replay repeats it, a reordering makes it go back).
``ChangeSource`` wraps a source whose channels include tables: at the first window it asks
for the rows that exist at its start (the snapshot), then turns every record of those
channels into a change, in time order. Sinks that know
tables apply them (PostgreSQL upserts and deletes by primary key; Kafka keys them by it and
writes a tombstone after each delete); every other sink writes the envelopes as records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa

from producer.generators import earliest
from producer.records import Kinds, RecordBatch, Schema, timestamp_array, uuid_array

OPS = ("c", "u", "d", "r")
CREATE, UPDATE, DELETE, READ = range(4)
CONNECTOR = "synthstream"
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Table:
    """A channel read as a table: its name, primary key and row fields.

    ``columns`` are the fields of the channel's JSON records that make the row (all but the
    message id and duplicate flag when empty); ``delete`` names a boolean column of the
    channel's batches whose records are deletes of their key. A record whose row equals
    the key's last one (but for ``stamp``) changes nothing and is left out.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...] = ()
    delete: str | None = None
    stamp: str | None = None  # the row's time of its last change: alone, it changes nothing


class TableSource(Protocol):
    """A source with tables among its channels (see ``ChangeSource``)."""

    stream: str
    channels: dict[str, Schema]

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]: ...

    def next_due(self, t: int) -> int: ...

    def target_rates(self, t: int) -> dict[str, float]: ...

    def entities(self) -> dict[str, int]: ...

    def snapshot(self, t: int) -> dict[str, RecordBatch]:
        """The rows of each table that exist at ``t``, one record each, stamped ``t``."""
        ...


_HIDDEN = ("message_id", "is_duplicate")


class ChangeSchema:
    """The envelope of one table's changes, as JSON rows and as an Arrow table.

    The batch of a change channel has the records' identity (entity, time, key) and four
    columns: ``op`` (a code of ``OPS``), ``seq``, ``before`` and ``after`` (the rows, as the
    table's JSON dicts, or None).
    """

    time_field = "ts_ms"
    optional_fields: tuple[str, ...] = ()
    kinds: Kinds | None = Kinds("op", OPS)

    def __init__(self, stream: str, channel: str, table: Table, rows: Schema) -> None:
        self.source_stream = stream
        self.stream = channel
        self.table_spec = table
        self.inner = rows
        self.partition_key = table.key[0]
        self.measures: dict[str, tuple[float, float, float]] = {}
        self.row_arrow: pa.Schema | None = None  # learnt from the first rows made
        self.added: dict[str, pa.DataType] = {}  # columns rows may gain (see may_add)

    # ---------------------------------------------------------------- rows of the table
    def learn(self, batch: RecordBatch, columns: tuple[str, ...]) -> None:
        if self.row_arrow is None:  # (from one record: a snapshot may be large)
            arrow = self.inner.table(batch.take(np.arange(min(len(batch), 1)))).schema
            self.row_arrow = pa.schema([arrow.field(name) for name in columns])

    def may_add(self, name: str, kind: pa.DataType) -> None:
        """A column rows may gain mid-stream (the ``cdc_schema_change`` fault says so)."""
        self.added[name] = kind

    def _arrow(self, rows: list[Row | None]) -> pa.Schema:
        """The row schema for these rows: once a row has a column that may be added, the
        table has it from then on (at the end; rows without it hold null). The rows are
        only looked at when a column may be added, and only for those columns."""
        assert self.row_arrow is not None
        for name in [n for n in self.added if n not in self.row_arrow.names]:
            if any(row is not None and name in row for row in rows):
                self.row_arrow = self.row_arrow.append(pa.field(name, self.added[name]))
        return self.row_arrow

    def row_table(self, rows: list[Row | None]) -> pa.Table:
        """Rows of the table (None for none) as an Arrow table of its typed columns."""
        arrow = self._arrow(rows)
        return pa.Table.from_arrays(_row_arrays(arrow, rows), schema=arrow)

    def keys_of(self, rows: list[Row]) -> list[bytes]:
        """Each change's primary key as its message key: the value for a one-column key
        (as the channel's records are keyed), a JSON object of the columns otherwise."""
        key = self.table_spec.key
        out = []
        for row in rows:
            values = row["after"] or row["before"]
            if len(key) == 1:
                out.append(str(values[key[0]]).encode())
            else:
                out.append(orjson.dumps({k: values[k] for k in key}))
        return out

    # ---------------------------------------------------------------- the envelope
    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        source = {"connector": CONNECTOR, "stream": self.source_stream,
                  "table": self.table_spec.name}  # fmt: skip
        return [
            {
                "before": before, "after": after, "op": OPS[op], "ts_ms": ts,
                "source": {**source, "seq": seq, "ts_ms": ts, "snapshot": op == READ},
                "message_id": mid, "is_duplicate": dup,
            }
            for before, after, op, seq, ts, mid, dup in zip(
                c["before"].tolist(), c["after"].tolist(), c["op"].tolist(), c["seq"].tolist(),
                batch.reported_ms.tolist(), batch.message_ids().astype("U36").tolist(),
                batch.is_duplicate.tolist(), strict=True,
            )
        ]  # fmt: skip

    def table(self, batch: RecordBatch) -> pa.Table:
        c = batch.columns
        arrow = self._arrow([*c["before"], *c["after"]]) if self.added else self.row_arrow
        assert arrow is not None
        rows = pa.struct(list(arrow))
        n = len(batch)
        source = pa.StructArray.from_arrays(
            [pa.array([CONNECTOR] * n, pa.string()),
             pa.array([self.source_stream] * n, pa.string()),
             pa.array([self.table_spec.name] * n, pa.string()),
             pa.array(c["seq"], pa.int64()), timestamp_array(batch.reported_ms),
             pa.array(c["op"] == READ, pa.bool_())],
            names=["connector", "stream", "table", "seq", "ts_ms", "snapshot"],
        )  # fmt: skip
        columns = {
            "before": _struct(rows, c["before"].tolist()),
            "after": _struct(rows, c["after"].tolist()),
            "op": pa.array(np.asarray(OPS, dtype=object)[c["op"]].tolist(), pa.string()),
            "ts_ms": timestamp_array(batch.reported_ms),
            "source": source,
            "message_id": uuid_array(batch.key),
            "is_duplicate": pa.array(batch.is_duplicate, pa.bool_()),
        }
        return pa.table(columns)


def _row_arrays(arrow: pa.Schema, rows: list[Row | None]) -> list[pa.Array]:  # type: ignore[type-arg]
    arrays = []
    for field in arrow:
        values = [None if row is None else row.get(field.name) for row in rows]
        try:
            arrays.append(pa.array(values, field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a timestamp as its ISO text, say
            arrays.append(pa.array(values).cast(field.type))
    return arrays


def _struct(kind: pa.StructType, rows: list[Row | None]) -> pa.StructArray:
    arrow = pa.schema(list(kind))
    mask = pa.array([row is None for row in rows], pa.bool_())
    return pa.StructArray.from_arrays(_row_arrays(arrow, rows), fields=list(kind), mask=mask)


class ChangeLog:
    """One table's state in this process: each key's last row and number of changes."""

    def __init__(self, schema: ChangeSchema) -> None:
        self.schema = schema
        self.last: dict[tuple[Any, ...], Row] = {}
        self.seq: dict[tuple[Any, ...], int] = {}  # (kept after a delete: a key's seq grows)
        self.columns = schema.table_spec.columns  # the row's fields (from the first record)

    def changes(self, batch: RecordBatch, snapshot: bool = False) -> RecordBatch:
        """The changes the channel's records make, in their order (a delete of a key that
        does not exist, or a row as it was, changes nothing and is left out)."""
        schema, spec = self.schema, self.schema.table_spec
        made = schema.inner.rows(batch)
        if not self.columns:
            self.columns = tuple(name for name in made[0] if name not in _HIDDEN)
        columns = self.columns
        schema.learn(batch, columns)
        deletes = (batch.columns[spec.delete].tolist() if spec.delete is not None
                   else [False] * len(batch))  # fmt: skip
        n = len(batch)
        ops = np.empty(n, dtype=np.int8)
        seqs = np.empty(n, dtype=np.int64)
        befores = np.empty(n, dtype=object)
        afters = np.empty(n, dtype=object)
        keep = np.ones(n, dtype=np.bool_)
        last, key = self.last, spec.key
        same = [name for name in columns if name != spec.stamp]
        for i, record in enumerate(made):
            row = {name: record[name] for name in columns}
            pk = tuple(row[k] for k in key)
            before = last.get(pk)
            if before is not None and not deletes[i] and not snapshot and all(
                row[name] == before[name] for name in same
            ):  # fmt: skip
                keep[i] = False
                continue
            if deletes[i]:
                if before is None:
                    keep[i] = False
                    continue
                del last[pk]
                op, after = DELETE, None
            else:
                op = READ if snapshot else CREATE if before is None else UPDATE
                last[pk] = after = row
            seqs[i] = self.seq[pk] = self.seq.get(pk, 0) + 1
            ops[i], befores[i], afters[i] = op, before, after
        out = RecordBatch(batch.stream, batch.entity, batch.time_ms, batch.key,
                          {"op": ops, "seq": seqs, "before": befores, "after": afters})  # fmt: skip
        return out if keep.all() else out.take(np.flatnonzero(keep))


class ChangeSource:
    """A ``TableSource`` whose tables carry changes (see the module's docstring); its other
    channels pass through as they are."""

    def __init__(self, inner: TableSource, tables: Mapping[str, Table]) -> None:
        self.inner = inner
        self.stream = inner.stream
        self.logs = {
            channel: ChangeLog(ChangeSchema(inner.stream, channel, table, inner.channels[channel]))
            for channel, table in tables.items()
        }
        self.channels: dict[str, Schema] = {
            ch: self.logs[ch].schema if ch in self.logs else schema
            for ch, schema in inner.channels.items()
        }
        self.started = False

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        opening: dict[str, RecordBatch] = {}
        if not self.started:
            self.started = True
            opening = {ch: self.logs[ch].changes(b, snapshot=True)
                       for ch, b in self.inner.snapshot(t0).items() if len(b)}  # fmt: skip
        made = self.inner.advance(t0, t1, limit)
        out: dict[str, RecordBatch] = {}
        for channel in self.channels:
            batch = made.get(channel)
            if channel in self.logs and batch is not None and len(batch):
                batch = self.logs[channel].changes(batch)
            parts = [b for b in (opening.get(channel), batch) if b is not None and len(b)]
            if parts:
                out[channel] = RecordBatch.concat(parts)
        if limit is not None and sum(len(b) for b in out.values()) > limit:
            out = earliest(out, limit)
        return out

    def next_due(self, t: int) -> int:
        return t if not self.started else self.inner.next_due(t)

    def target_rates(self, t: int) -> dict[str, float]:
        return self.inner.target_rates(t)

    def entities(self) -> dict[str, int]:
        return self.inner.entities()

    def describe(self, report: dict[str, Any]) -> None:
        describe = getattr(self.inner, "describe", None)
        if describe is not None:
            describe(report)
