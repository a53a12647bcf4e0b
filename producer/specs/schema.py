"""A spec stream's records as JSON and Arrow: the id, the time, every attribute and field
not starting with ``_``, the message id and the duplicate flag. JSON lines are written
column by column (``SpecSchema.jsonl``), the same bytes as orjson on the records' dicts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from producer.records import Kinds, RecordBatch, arrow_schema, timestamp_array, uuid_array
from producer.specs.expressions import Expression
from producer.specs.format import StreamSpec, ValueSpec, value_type

Values = npt.NDArray[Any]


class _Values(Protocol):
    """What the schema reads of one attribute's or field's draws (``specs.stream``)."""

    @property
    def spec(self) -> ValueSpec: ...
    @property
    def labels(self) -> list[Any]: ...
    @property
    def ref(self) -> tuple[str, str, int] | None: ...
    @property
    def numeric(self) -> bool: ...
    @property
    def expression(self) -> Expression | None: ...
    @property
    def target(self) -> _Values | None: ...


class SpecGenerator(Protocol):
    """What the schema reads of the stream's generator (``specs.stream``)."""

    @property
    def spec(self) -> StreamSpec: ...
    @property
    def stream(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, _Values]: ...
    @property
    def fields(self) -> Mapping[str, _Values]: ...


def _json_texts(texts: list[str]) -> list[bytes]:
    """Each text as a JSON string, each of its own size (orjson's output keeps a 4 KiB
    buffer: a million ids would hold 4 GB). Printable ASCII without quotes or backslashes,
    what ids almost always are, needs no escaping."""
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
        return [b'"' + t.encode() + b'"' for t in texts]
    return [json.dumps(t, ensure_ascii=False).encode() for t in texts]


def json_values(
    v: _Values, column: Values, labels: npt.NDArray[Any] | None = None,
    time_format: str = "iso",
) -> list[Any]:  # fmt: skip
    """A column of ``v`` as JSON-ready values, as written (null where NaN or a -1 code, its
    ``format`` applied; a time as ``time_format`` says): whole columns through numpy where
    they can go, element by element only where nulls are. ``labels``: ``v``'s labels and a
    None after them."""
    if v.spec.type is not None:
        return time_values(column, v.spec.type, time_format)
    out = _plain(v, column, labels)
    if v.spec.format is not None:  # (validated on load: it can write this type)
        fmt = v.spec.format
        return [None if value is None else fmt.format(value) for value in out]
    return out


def _times_ms(column: Values) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Seconds since 1970 as whole ms, and which of them are times of years 1000 to 9999
    (the others, NaN among them, are null)."""
    ms = np.round(np.asarray(column, dtype=np.float64) * 1000)
    ok = np.isfinite(ms) & (ms >= _YEAR_1000_MS) & (ms < _YEAR_10000_MS)
    return np.where(ok, ms, 0).astype(np.int64), ok


def time_values(column: Values, kind: str, time_format: str) -> list[Any]:
    """A column of seconds since 1970 as written: a date ``YYYY-MM-DD``, a timestamp as ISO
    text (``...T00:00:00.000Z``), ms or s as the stream's ``time_format`` says; null outside
    the years 1000 to 9999."""
    ms, ok = _times_ms(column)
    out: list[Any]
    if kind == "date":
        out = np.datetime_as_string(ms.astype("datetime64[ms]").astype("datetime64[D]")).tolist()
    elif time_format == "epoch_ms":
        out = ms.tolist()
    elif time_format == "epoch_s":
        out = (ms / 1000).tolist()
    else:
        out = np.datetime_as_string(ms.astype("datetime64[ms]"), timezone="UTC").tolist()
    for i in np.flatnonzero(~ok).tolist():
        out[i] = None
    return out


def time_array(column: Values, kind: str) -> pa.Array:  # type: ignore[type-arg]
    """A column of seconds since 1970 as an Arrow timestamp (ms, UTC) or date array."""
    ms, ok = _times_ms(column)
    if kind == "date":
        return pa.array(np.floor_divide(ms, 86_400_000).astype(np.int32), pa.date32(), mask=~ok)
    return pa.array(ms, pa.timestamp("ms", tz="UTC"), mask=~ok)


def _plain(v: _Values, column: Values, labels: npt.NDArray[Any] | None) -> list[Any]:
    kind = _arrow_type(v)
    if v.ref is not None:
        stream, id_format, _ = v.ref
        return [None if i < 0 else id_format.format(stream=stream, index=i)
                for i in column.astype(np.int64).tolist()]  # fmt: skip
    if v.spec.faker is not None or v.spec.template is not None:
        return list(column)
    if v.spec.words is not None:
        if labels is None:
            labels = np.asarray([*v.labels, None], dtype=object)
        return list(labels[np.where(column < 0, len(v.labels), column).astype(np.int64)])
    missing = np.isnan(column)
    if kind == pa.bool_():
        out: list[Any] = (column != 0).tolist()
    elif kind == pa.int64():
        out = np.where(missing, 0, column).astype(np.int64).tolist()
    else:
        out = column.tolist()
    if missing.any():
        for i in np.flatnonzero(missing).tolist():
            out[i] = None
    return out


class SpecSchema:
    """The records as JSON rows and Arrow tables: the id, the time, every attribute and
    field not starting with ``_``, the message id and the duplicate flag."""

    def __init__(self, generator: SpecGenerator) -> None:
        spec = generator.spec
        self.stream = generator.stream
        self.id_field = spec.entities.id_field
        self.partition_key = spec.key or self.id_field  # the Kafka key, Kinesis partition key
        self.time_field = spec.time_field
        self.kinds: Kinds | None = None
        values = {**generator.attributes, **generator.fields}
        # A prev field's column is written as the field it follows is (type, words, format).
        self.values = {n: v.target or v for n, v in values.items() if not n.startswith("_")}
        self.optional_fields = tuple(n for n, v in self.values.items()
                                     if v.spec.nulls > 0 or values[n].target)  # fmt: skip
        self.measures: dict[str, tuple[float, float, float]] = {}
        for name, v in self.values.items():
            if (
                name in generator.fields
                and v.numeric
                and v.spec.type is None
                and (v.spec.kind not in ("choice", "sequence", "machine", "count"))
            ):  # fmt: skip  (numbers a sensor could misread: not text, codes or times)
                low, high = v.spec.range or ((v.spec.walk.min, v.spec.walk.max)
                                             if v.spec.walk else (-1e12, 1e12))  # fmt: skip
                scale = (high - low) / 20 if high - low < 1e12 else 1.0
                self.measures[name] = (scale, low, high)
        self.base_types = {n: _arrow_type(v) for n, v in self.values.items()}
        self.types = {n: pa.string() if v.spec.format is not None else self.base_types[n]
                      for n, v in self.values.items()}  # fmt: skip
        self.time_format = spec.time_format
        self.labels = {n: np.asarray([*v.labels, None], dtype=object)
                       for n, v in self.values.items() if v.labels}  # fmt: skip
        names = [self.id_field, self.time_field, *self.values, "message_id", "is_duplicate"]
        self._row = _row_maker(names)
        # For jsonl: each key with what precedes it, each id's and word's JSON text.
        self._keys = [(b"{" if i == 0 else b",") + orjson.dumps(name) + b":"
                      for i, name in enumerate(names)]  # fmt: skip
        self._label_texts = {n: np.array([orjson.dumps(label) for label in labels],
                                         dtype=object)  # (the last: None, null)
                             for n, labels in self.labels.items()}  # fmt: skip
        count = spec.entities.count
        self.ids = np.array([spec.entities.id.format(stream=self.stream, index=i)
                             for i in range(count)], dtype=object)  # fmt: skip
        self._id_texts = np.array(_json_texts(self.ids.tolist()), dtype=object)
        # For jsonl: each id with the keys around it (``{"id":"x-1","timestamp":"``) as a
        # row of bytes, when they all have one width; the message id's keys likewise.
        heads = [self._keys[0] + t + self._keys[1] + b'"' for t in self._id_texts.tolist()]
        self._id_block: npt.NDArray[np.uint8] | None = None
        if len({len(h) for h in heads}) == 1 and all(h[-1:] != b"\x00" for h in heads):
            self._id_block = np.frombuffer(b"".join(heads), dtype=np.uint8).reshape(
                len(heads), len(heads[0]))  # fmt: skip
        before, after = self._keys[-2] + b'"', b'"' + self._keys[-1]
        self._tail_at, self._tail_width = len(before), len(before) + 36 + len(after)
        self._tail_template = np.frombuffer(before + b"-" * 36 + after, dtype=np.uint8)
        self._dup_texts = np.array([b"false}\n", b"true}\n"], dtype=object)
        self.arrow = arrow_schema([
            (self.id_field, pa.string()), (self.time_field, pa.timestamp("ms", tz="UTC")),
            *[(n, self.types[n]) for n in self.values],
            ("message_id", pa.string()), ("is_duplicate", pa.bool_()),
        ])  # fmt: skip

    def _python(self, name: str, column: Values) -> list[Any]:
        return json_values(self.values[name], column, self.labels.get(name), self.time_format)

    def _times(self, batch: RecordBatch) -> list[Any]:
        if self.time_format == "epoch_ms":
            return batch.reported_ms.tolist()  # type: ignore[no-any-return]
        if self.time_format == "epoch_s":
            return (batch.reported_ms / 1000).tolist()  # type: ignore[no-any-return]
        return batch.iso_times()

    def jsonl(self, batch: RecordBatch) -> bytes:
        """The records as JSON lines, column by column, never making their dicts: each
        column's ``"key":value`` texts from one orjson call (numbers, and strings that hold
        no comma: times, message ids) or from texts made once (ids, words), spliced at a NUL
        (which no JSON text holds raw), then one join. The same bytes as orjson on ``rows``
        (a test checks)."""
        n = len(batch)
        if n == 0:
            return b""
        keys = self._keys
        head = self._head(batch)
        if head is not None:  # ids of one width, ISO times: one fixed-width block a record
            columns = [head]
        else:
            columns = [_keyed_texts(keys[0], self._id_texts[batch.entity].tolist()),
                       _keyed_values(keys[1], self._times(batch))]  # fmt: skip
        for key, name in zip(keys[2:], self.values, strict=False):
            columns.append(self._keyed(key, name, batch.columns[name]))
        # The message id (36 characters) with the keys around it, as a fixed-width block.
        uuids = batch.message_ids().view(np.uint8).reshape(n, 36)
        tail = np.empty((n, self._tail_width), dtype=np.uint8)
        tail[:] = self._tail_template
        tail[:, self._tail_at : self._tail_at + 36] = uuids
        columns.append(tail.view(f"S{self._tail_width}").ravel().tolist())
        columns.append(self._dup_texts[batch.is_duplicate.astype(np.int64)].tolist())
        stride = len(columns)
        pieces: list[bytes] = [b""] * (n * stride)
        for i, texts in enumerate(columns):
            pieces[i::stride] = texts
        return b"".join(pieces)

    def _head(self, batch: RecordBatch) -> list[bytes] | None:
        """``{"id":"...","timestamp":"..."`` of each record as one fixed-width block, when
        every id has one width and the times are ISO (24 characters in years 1000-9999)."""
        if self._id_block is None or self.time_format != "iso":
            return None
        ms = batch.reported_ms
        if ms.min() < _YEAR_1000_MS or ms.max() >= _YEAR_10000_MS:
            return None
        n, width = len(batch), self._id_block.shape[1]
        stamps = np.datetime_as_string(ms.astype("datetime64[ms]"), timezone="UTC")
        block = np.empty((n, width + 25), dtype=np.uint8)
        block[:, :width] = self._id_block[batch.entity]
        block[:, width : width + 24] = stamps.astype("S24").view(np.uint8).reshape(n, 24)
        block[:, width + 24] = ord('"')
        texts: list[bytes] = block.view(f"S{width + 25}").ravel().tolist()
        return texts

    def _keyed(self, key: bytes, name: str, column: Values) -> list[bytes]:
        """A column's ``"key":value`` JSON texts."""
        v = self.values[name]
        if v.spec.format is None and v.spec.words is not None:  # codes: texts made once
            codes = np.where(column < 0, len(v.labels), column).astype(np.int64)
            return _keyed_texts(key, self._label_texts[name][codes].tolist())
        kind = self.types[name]
        if v.spec.type is None and kind != pa.string() and column.dtype.kind in "fiub":
            # numbers: orjson reads numpy
            numbers = np.asarray(column)
            if kind == pa.float64():  # (NaN and inf are null, as for Python floats)
                return _keyed_array(key, numbers.astype(np.float64, copy=False))
            if numbers.dtype.kind != "f" or not np.isnan(numbers).any():  # no nulls
                whole = numbers.astype(np.int64) if kind == pa.int64() else numbers != 0
                return _keyed_array(key, whole)
        values = self._python(name, column)
        if kind == pa.string() or (v.spec.type is not None and (
            v.spec.type == "date" or self.time_format == "iso"
        )):  # any text: each its own (quotes, commas)  # fmt: skip
            return _keyed_texts(key, [orjson.dumps(value) for value in values])
        return _keyed_values(key, values)  # numbers, booleans, nulls

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        columns = [
            self.ids[batch.entity].tolist(), self._times(batch),
            *[self._python(n, batch.columns[n]) for n in self.values],
            batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
        ]  # fmt: skip
        return list(map(self._row, *columns))

    def table(self, batch: RecordBatch) -> pa.Table:
        arrays: list[pa.Array] = [  # type: ignore[type-arg]
            pa.array(self.ids[batch.entity], pa.string()),
            timestamp_array(batch.reported_ms),
        ]
        for name in self.values:
            kind = self.values[name].spec.type
            column = batch.columns[name]
            arrays.append(time_array(column, kind) if kind is not None else
                          pa.array(self._python(name, column), self.types[name]))  # fmt: skip
        arrays += [uuid_array(batch.key), pa.array(batch.is_duplicate)]
        return pa.Table.from_arrays(arrays, schema=self.arrow)


_YEAR_1000_MS = -30_610_224_000_000  # 1000-01-01T00:00:00Z
_YEAR_10000_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z


def _keyed_values(key: bytes, values: list[Any]) -> list[bytes]:
    """``key`` and the JSON text of each value, from one orjson call: for values whose text
    holds no comma (numbers, booleans, nulls, and strings such as times and UUIDs)."""
    return (key + orjson.dumps(values)[1:-1].replace(b",", b"\x00" + key)).split(b"\x00")


def _keyed_array(key: bytes, values: npt.NDArray[Any]) -> list[bytes]:
    """``_keyed_values`` of a numpy column (orjson writes numpy numbers as it writes Python's,
    2.5x as fast without the list)."""
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    return (key + text.replace(b",", b"\x00" + key)).split(b"\x00")


def _keyed_texts(key: bytes, texts: list[bytes]) -> list[bytes]:
    """``key`` and each JSON text."""
    return (key + (b"\x00" + key).join(texts)).split(b"\x00")


def _row_maker(names: list[str]) -> Any:
    """A function of one value per name that makes a record's dict: a dict display with the
    names as keys, twice as fast as ``dict(zip(names, values))`` a record. The keys are
    ``repr`` literals (any text stays text) and the parameters are ``v0, v1, ...``: nothing of
    the spec becomes code."""
    params = ", ".join(f"v{i}" for i in range(len(names)))
    body = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    return eval(f"lambda {params}: {{{body}}}")


def _arrow_type(values: _Values) -> pa.DataType:
    s = values.spec
    if s.choice is not None and values.numeric:  # numbers as written: whole or not
        return pa.int64() if {type(label) for label in values.labels} <= {int} else pa.float64()
    boolean = values.expression is not None and values.expression.boolean
    return _ARROW[value_type(s, boolean)]


_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(), "int": pa.int64(), "bool": pa.bool_(), "float": pa.float64(),
    "timestamp": pa.timestamp("ms", tz="UTC"), "date": pa.date32(),
}  # fmt: skip
