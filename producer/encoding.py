"""Records as JSON documents: each schema's rows, and what fault stages marked rendered on
them (malformations, data-quality variants, sources). Columnar sinks never come here.

Marks are codes on the batch (``RecordBatch.marks``); their vocabularies live here, with
the code that renders them, and fault stages pick codes from these tuples.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import orjson

from producer import settings
from producer.records import RecordBatch, Schema

ENCODE_CHUNK = 4096
# The marks this module renders, and their codes.
MALFORMED, VARIANT, SOURCE = "malformed", "variant", "source"
MALFORMED_KINDS = settings.MALFORMED_KINDS
# Data-quality variants: the single-source issues, then the conflicts between sources.
VARIANTS = (*settings.QUALITY_KINDS, "name_conflict", "measure_conflict", "date_conflict",
            "other_conflict")  # fmt: skip
SOURCES = ("A", "B", "C")
_NAME = re.compile(r"^(?P<prefix>.*?)[_-]?(?P<digits>\d+)$")
_MISSING = (None, "", "N/A")


def _name_style(name: str, style: int) -> str:
    """0 as is, 1 ``BME280-0007``, 2 ``bme280 #7``, 3 ``bme280_7``: one entity, four names."""
    match = _NAME.match(name)
    if style == 0 or match is None:
        return name
    prefix, digits = match["prefix"], match["digits"]
    if style == 1:
        return f"{prefix.upper()}-{digits}"
    if style == 2:
        return f"{prefix} #{int(digits)}"
    return f"{prefix}_{int(digits)}"


def _date_style(stamp: str, style: int, shift_ms: int = 0) -> object:
    """0 ISO 8601, 1 US ``11/23/2026 04:33:25 PM``, 2 EU ``23.11.2026 16:33:25``, 3 epoch ms."""
    if style == 0 and not shift_ms:
        return stamp
    moment = datetime.fromisoformat(stamp) + timedelta(milliseconds=shift_ms)
    if style == 1:
        return moment.strftime("%m/%d/%Y %I:%M:%S %p")
    if style == 2:
        return moment.strftime("%d.%m.%Y %H:%M:%S")
    if style == 3:
        return int(moment.timestamp() * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _apply_variants(
    schema: Schema, batch: RecordBatch, rows: list[dict[str, Any]], marked: Any
) -> None:
    """Each source's own formats, and the data-quality variants, on JSON rows."""
    variant_of, source_of = batch.mark(VARIANT), batch.mark(SOURCE)
    for i in marked.tolist():
        row = rows[i]
        source = int(source_of[i])
        variant = VARIANTS[int(variant_of[i])] if variant_of[i] >= 0 else ""
        pick = int(batch.key[i] % np.uint64(997))
        name_style = date_style = max(source, 0)
        if source >= 0:
            row["source"] = SOURCES[source]
        if variant in ("name_variant", "name_conflict"):
            name_style = (name_style + 1 + pick % 3) % 4
        if variant == "date_format":
            date_style = (date_style + 1 + pick % 3) % 4
        key = schema.partition_key
        if key in row:  # (a change's key is inside its before and after)
            row[key] = _name_style(str(row[key]), name_style)
        if schema.time_field in row:
            row[schema.time_field] = _date_style(row[schema.time_field], date_style)
        for optional in schema.optional_fields:
            if variant == "missing_optional" or (source == 2 and pick % 4 == 0):
                row[optional] = _MISSING[pick % 3]
            elif variant == "other_conflict":
                row.pop(optional, None)


class JsonLines(Protocol):
    """A schema that writes a batch's JSON lines itself, faster than one dict a record (the
    same bytes); used when no fault asked to change a document."""

    def jsonl(self, batch: RecordBatch) -> bytes: ...


class KeyedRows(Protocol):
    """A schema whose records' keys are not one field of their rows (a change's key is in
    its before or after)."""

    def keys_of(self, rows: list[dict[str, Any]]) -> list[bytes]: ...


def record_keys(schema: Schema, rows: list[dict[str, Any]]) -> list[bytes]:
    """Each record's key (the Kafka message key, the Kinesis partition key)."""
    keys_of = getattr(schema, "keys_of", None)  # (a KeyedRows; isinstance on a protocol is
    if keys_of is not None:  # slow enough to show in a live tick's profile)
        return keys_of(rows)  # type: ignore[no-any-return]
    key = schema.partition_key
    return [str(row[key]).encode() for row in rows]


def _unmarked(batch: RecordBatch) -> bool:
    """No fault asked for a changed document (malformed, a variant, another source's)."""
    return not (MALFORMED in batch.marks or VARIANT in batch.marks or SOURCE in batch.marks)


def json_documents(
    schema: Schema, batch: RecordBatch, rows: list[dict[str, Any]] | None = None
) -> list[bytes]:
    """Each record as one JSON document, malformed where faults asked for it.

    ``out_of_range`` is already in the columns (so columnar files show it too); the other
    kinds only exist in JSON: a measurement as a string with its unit (wrong type), a
    measurement left out (missing field), the document cut in half (truncated), a
    measurement renamed and a ``schema_version`` added (schema change).
    """
    jsonl = getattr(schema, "jsonl", None)  # (a JsonLines)
    if rows is None and jsonl is not None and _unmarked(batch):
        return jsonl(batch).split(b"\n")[:-1]  # type: ignore[no-any-return]
    rows = schema.rows(batch) if rows is None else rows
    cut: set[int] = set()
    if MALFORMED in batch.marks:
        malformed = batch.marks[MALFORMED]
        names = list(schema.measures)
        for i in np.flatnonzero(malformed >= 0).tolist():
            kind = MALFORMED_KINDS[int(malformed[i])]
            column = names[int(batch.key[i] % np.uint64(len(names)))]
            row = rows[i]
            if kind == "wrong_type":
                row[column] = f"{row[column]} units"
            elif kind == "missing_field":
                del row[column]
            elif kind == "schema_change":
                row[f"{column}_v2"] = row.pop(column)
                row["schema_version"] = 2
            elif kind == "truncated_json":
                cut.add(i)
    if VARIANT in batch.marks or SOURCE in batch.marks:
        marked = np.flatnonzero((batch.mark(VARIANT) >= 0) | (batch.mark(SOURCE) >= 0))
        _apply_variants(schema, batch, rows, marked)
    dumps = orjson.dumps
    docs = [dumps(row) for row in rows]
    for i in cut:
        docs[i] = docs[i][: len(docs[i]) // 2]
    return docs


def encode_jsonl(schema: Schema, batch: RecordBatch) -> bytes:
    """One JSON document per line, as one buffer sized to its content.

    Encoded in chunks: every ``orjson.dumps`` result holds about 4 KiB while alive whatever
    its length (see DESIGN), so a million of them at once would cost gigabytes.
    """
    made = batch.memo.get("jsonl")
    if made is not None and made[0] is schema:
        return made[1]
    parts = []
    jsonl = getattr(schema, "jsonl", None)  # (a JsonLines)
    for start in range(0, len(batch), ENCODE_CHUNK):
        chunk = batch if len(batch) <= ENCODE_CHUNK else batch.take(
            slice(start, start + ENCODE_CHUNK))  # fmt: skip
        if jsonl is not None and _unmarked(chunk):
            parts.append(jsonl(chunk))
            continue
        docs = json_documents(schema, chunk)
        docs.append(b"")
        parts.append(b"\n".join(docs))
    return b"".join(parts)


def prepare_jsonl(schema: Schema, batch: RecordBatch) -> None:
    """Encode a batch now, for ``encode_jsonl`` to find at its send (a live tick made ahead)."""
    batch.memo["jsonl"] = (schema, encode_jsonl(schema, batch))
