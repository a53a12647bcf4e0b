"""What the built-in sinks that write tables share."""

from __future__ import annotations

import orjson
import pyarrow as pa


def flat(table: pa.Table) -> pa.Table:
    """A table CSV (and COPY) can carry: struct fields as columns of their own
    (``metadata.in_weather_event``), lists (a transaction's products) as JSON text in their
    cell (the field says so in its metadata: ``json``), dictionary columns decoded."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            text = [None if v is None else orjson.dumps(v).decode() for v in table[i].to_pylist()]
            field = pa.field(f.name, pa.string(), metadata={b"json": b"list"})
            table = table.set_column(i, field, pa.array(text, pa.string()))
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table
