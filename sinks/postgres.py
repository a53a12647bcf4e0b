"""PostgreSQL tables through psycopg 3: a table per channel, appended to with COPY.

Each channel's records go to a table of its name (in ``schema``, with ``table_prefix``),
created from the channel's Arrow schema when missing: text, bigint, double precision,
boolean, timestamptz; a struct's fields become columns of their own (``metadata_version``),
a list is jsonb. A ``send`` is one transaction: the batch's Arrow table written as CSV by
pyarrow (column by column, no row objects in Python) into ``COPY ... FROM STDIN``, then
COMMIT; the records count as delivered when the commit returns (the session asks for
``synchronous_commit`` on: a commit answered is a commit on disk, whatever the server's
default). A connection that fails
before the commit is retried with backoff; one that fails during it leaves the outcome
unknown (the batch may be there: sent again, counted as redelivered). A row PostgreSQL
refuses (a type it cannot read) fails the batch for good, with the server's message.

A change channel (``producer.cdc``) is applied, not appended: its table has the rows' columns
and a primary key, and a send upserts each key's last row (``INSERT ... ON CONFLICT DO
UPDATE``) and deletes the keys whose last change is a delete, in one transaction (changes
of a key come in order: the engine keeps a key's sends in sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import structlog
from pydantic import Field, SecretStr

from producer.cdc import DELETE, ChangeSchema
from producer.errors import ConfigError
from producer.plugins import AddressedSinkSettings, SinkContext
from producer.records import RecordBatch, Schema
from producer.sink import (
    BaseSink,
    FatalError,
    Interrupted,
    Payload,
    RetryableError,
    Sink,
    SinkError,
    SinkLimits,
)
from sinks.tables import flat as flat_table

log = structlog.get_logger("synthstream.postgres")

MAX_NAME_BYTES = 63  # NAMEDATALEN - 1


def sql_type(kind: pa.DataType) -> str:
    """The column type for an Arrow type."""
    if pa.types.is_dictionary(kind):
        return sql_type(kind.value_type)
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "bigint" if kind.bit_width > 32 else "integer" if kind.bit_width > 16 else "smallint"
    if pa.types.is_floating(kind):
        return "double precision" if kind.bit_width > 32 else "real"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz is not None else "timestamp"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_struct(kind):
        return "jsonb"
    return "text"


def column_type(field: pa.Field) -> str:  # type: ignore[type-arg]
    """A column's type: a list's JSON text (``flat``) is jsonb, the rest by Arrow type."""
    if field.metadata and field.metadata.get(b"json"):
        return "jsonb"
    return sql_type(field.type)


def flat(table: pa.Table) -> pa.Table:
    """What COPY's CSV can carry (``sinks.tables.flat``), with column names PostgreSQL need
    not quote: ``metadata.version`` is ``metadata_version``."""
    table = flat_table(table)
    return table.rename_columns([name.replace(".", "_") for name in table.column_names])


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def csv_bytes(table: pa.Table) -> bytes:
    """The table as CSV for ``COPY ... (FORMAT csv, HEADER true)``: nulls unquoted and empty,
    every value quoted (an empty string stays one), timestamps in ISO 8601 with their zone."""
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=True, quoting_style="all_valid")
    pacsv.write_csv(table, sink, options)
    return bytes(sink.getvalue())


async def _commit(connection: Any, records: int) -> None:
    """COMMIT, to its end even when the send is cancelled meanwhile (then ``Interrupted``
    says whether the server has the records)."""
    commit = asyncio.ensure_future(connection.commit())
    try:
        await asyncio.shield(commit)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await commit
        done = commit.done() and not commit.cancelled() and commit.exception() is None
        raise Interrupted(np.arange(records if done else 0, dtype=np.int64)) from None


async def _copy(cursor: Any, target: str, data: pa.Table) -> None:
    columns = ", ".join(quoted(c) for c in data.column_names)
    sql = f"COPY {target} ({columns}) FROM STDIN (FORMAT csv, HEADER true)"
    async with cursor.copy(sql) as copy:
        await copy.write(csv_bytes(data))


class PostgresSinkSettings(AddressedSinkSettings):
    """PostgreSQL through psycopg 3: a table per channel, appended to with COPY."""

    KIND: ClassVar[str] = "postgres"
    DESCRIPTION: ClassVar[str] = "PostgreSQL tables (psycopg 3), a table per channel, COPY"
    NETWORK: ClassVar[bool] = True
    OVERRIDES: ClassVar[str] = "tables"

    dsn: str = Field(
        "postgresql://127.0.0.1:5432/synthstream",
        description="libpq connection string or URL (a password here is never logged).",
    )
    password: SecretStr | None = Field(None, description="Unset: the DSN's, or PGPASSWORD.")
    schema_name: str = Field("public", description="The schema of the tables.")
    destination: str = Field(
        "{channel}", description="Table of each channel: a template over {stream} and "
        "{channel} (a change stream's table keeps its own name).",
    )  # fmt: skip
    tables: dict[str, str] = Field(
        default_factory=dict, description="Tables per channel or stream, as JSON, e.g. "
        '{"bme280": "readings"}; they win over DESTINATION.',
    )  # fmt: skip
    table_prefix: str = Field("", description="Put before each table's name.")
    create_database: bool = Field(True, description="Create the DSN's database if missing.")
    create_tables: bool = Field(True, description="Create a missing table from the schema.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    max_records: int = Field(10_000, ge=1, description="Records per COPY transaction.")

    def build(self, context: SinkContext) -> Sink:
        return PostgresSink(self, context.destinations)


class PostgresSink(BaseSink):
    name = "postgres"

    def __init__(self, settings: PostgresSinkSettings, tables: dict[str, str]) -> None:
        self.settings = settings
        self.tables = tables  # channel -> table name
        for table in tables.values():  # PostgreSQL would cut a longer name, silently
            name = settings.table_prefix + table
            if len(name.encode()) > MAX_NAME_BYTES:
                raise ConfigError(
                    f"SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX: the table {name!r} is longer "
                    f"than PostgreSQL's {MAX_NAME_BYTES} bytes; accepted: a shorter prefix"
                )
        self.limits = SinkLimits(max_records=settings.max_records)
        self._connection: Any = None
        self._lock = asyncio.Lock()  # one connection, one transaction at a time
        self._ready: dict[str, set[str]] = {}  # tables known to exist, and their columns

    @property
    def where(self) -> str:
        """The DSN without its password (for messages)."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            parts = conninfo_to_dict(self.settings.dsn)
        except Exception:  # (a bad DSN is reported by connect)
            return "postgresql"
        parts.pop("password", None)
        return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})

    async def _connect(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        if self._connection is None or self._connection.closed:
            s = self.settings
            extra = {"password": s.password.get_secret_value()} if s.password else {}
            conninfo = make_conninfo(s.dsn, connect_timeout=max(1, round(s.connect_timeout_s)),
                                     **extra)  # fmt: skip
            try:
                connection = await psycopg.AsyncConnection.connect(conninfo)
            except psycopg.OperationalError as exc:
                if not (s.create_database and "does not exist" in str(exc)
                        and "database" in str(exc)):  # fmt: skip
                    raise
                await self._create_database(conninfo)
                connection = await psycopg.AsyncConnection.connect(conninfo)
            # A COMMIT the server answers is on disk, whatever its default: with
            # synchronous_commit off, a crash loses commits it had already acknowledged.
            await connection.execute("SET synchronous_commit TO on")
            await connection.commit()
            self._connection = connection
        return self._connection

    async def _create_database(self, conninfo: str) -> None:
        """CREATE DATABASE for a DSN whose database is missing, from the server's
        ``postgres`` database (a database cannot be made inside a transaction)."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = str(conninfo_to_dict(conninfo).get("dbname") or "")
        admin = make_conninfo(conninfo, dbname="postgres")
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as connection:
            try:
                await connection.execute(f"CREATE DATABASE {quoted(name)}")
            except psycopg.errors.DuplicateDatabase:  # another process made it meanwhile
                return
        log.info("postgres_database_created", database=name)

    async def open(self) -> None:
        import psycopg

        with contextlib.suppress(psycopg.OperationalError):  # the start-up probe says it
            await self._connect()

    async def check(self) -> str:
        import psycopg

        try:
            connection = await self._connect()
            async with connection.cursor() as cursor:
                await cursor.execute("SELECT version()")
                row = await cursor.fetchone()
            await connection.commit()
        except psycopg.Error as exc:
            self._connection = None
            raise SinkError(f"{self.where}: {str(exc).strip().splitlines()[0]}") from exc
        version = str(row[0]).split(" on ")[0] if row else "PostgreSQL"
        return f"{self.where}: {version}"

    async def _ensure(
        self, cursor: Any, table: str, data: pa.Table, key: tuple[str, ...] = ()
    ) -> None:  # fmt: skip
        known = self._ready.get(table)
        if known is not None:
            added = [f for f in data.schema if f.name not in known]
            if added and self.settings.create_tables:  # a table's schema change mid-stream
                target = self._target(table)
                for f in added:
                    await cursor.execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS "
                                         f"{quoted(f.name)} {column_type(f)}")  # fmt: skip
                    log.info("postgres_column_added", table=table, column=f.name)
                known.update(f.name for f in added)
            return
        s = self.settings
        name = f"{quoted(s.schema_name)}.{quoted(table)}"
        columns = ", ".join(f"{quoted(f.name)} {column_type(f)}" for f in data.schema)
        if key:
            columns += f", PRIMARY KEY ({', '.join(quoted(k) for k in key)})"
        if s.create_tables:
            await cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(s.schema_name)}")
            await cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
        self._ready[table] = set(data.schema.names)

    async def _append(self, cursor: Any, table: str, batch: RecordBatch, schema: Schema) -> None:
        data = flat(schema.table(batch))
        await self._ensure(cursor, table, data)
        await _copy(cursor, self._target(table), data)

    async def _apply(self, cursor: Any, table: str, batch: RecordBatch,
                     schema: ChangeSchema) -> None:  # fmt: skip
        """Each key's last change: its row upserted, or the key deleted."""
        key = schema.table_spec.key
        last: dict[tuple[Any, ...], Any] = {}
        for op, before, after in zip(batch.columns["op"].tolist(), batch.columns["before"],
                                     batch.columns["after"], strict=True):  # fmt: skip
            row = after if op != DELETE else before
            pk = tuple(row[k] for k in key)
            last.pop(pk, None)  # (a key's place is its last change's)
            last[pk] = None if op == DELETE else after
        data = flat(schema.row_table([row for row in last.values() if row is not None]))
        await self._ensure(cursor, table, data, key)
        target = self._target(table)
        if data.num_rows:
            await cursor.execute(f"CREATE TEMP TABLE _synthstream_rows (LIKE {target}) "
                                 "ON COMMIT DROP")  # fmt: skip
            await _copy(cursor, "_synthstream_rows", data)
            columns = ", ".join(quoted(c) for c in data.column_names)
            update = ", ".join(f"{quoted(c)} = EXCLUDED.{quoted(c)}"
                               for c in data.column_names if c not in key)  # fmt: skip
            conflict = f"DO UPDATE SET {update}" if update else "DO NOTHING"
            keys = ", ".join(quoted(k) for k in key)
            await cursor.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM "
                                 f"_synthstream_rows ON CONFLICT ({keys}) {conflict}")  # fmt: skip
        gone = [pk for pk, row in last.items() if row is None]
        if gone:
            doomed = pa.table({k: pa.array([pk[i] for pk in gone], data.schema.field(k).type)
                               for i, k in enumerate(key)})  # fmt: skip
            await cursor.execute(f"CREATE TEMP TABLE _synthstream_gone AS SELECT "
                                 f"{', '.join(quoted(k) for k in key)} FROM {target} "
                                 "WITH NO DATA")  # fmt: skip
            await _copy(cursor, "_synthstream_gone", doomed)
            match = " AND ".join(f"t.{quoted(k)} = g.{quoted(k)}" for k in key)
            await cursor.execute(f"DELETE FROM {target} t USING _synthstream_gone g "
                                 f"WHERE {match}")  # fmt: skip
            await cursor.execute("DROP TABLE _synthstream_gone")

    def _target(self, table: str) -> str:
        return f"{quoted(self.settings.schema_name)}.{quoted(table)}"

    async def send(self, payload: Payload) -> None:
        import psycopg

        batch, schema = payload.batch, payload.schema
        name = (schema.table_spec.name if isinstance(schema, ChangeSchema)
                else self.tables[batch.stream])  # fmt: skip
        table = self.settings.table_prefix + name
        committing = False
        async with self._lock:
            try:
                connection = await self._connect()
                async with connection.cursor() as cursor:
                    if isinstance(schema, ChangeSchema):
                        await self._apply(cursor, table, batch, schema)
                    else:
                        await self._append(cursor, table, batch, schema)
                committing = True
                await _commit(connection, len(batch))
            except asyncio.CancelledError:  # the deadline before the commit: rolled back
                await self._forget()
                raise Interrupted(np.empty(0, dtype=np.int64)) from None
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError,
                    psycopg.errors.SyntaxError, psycopg.errors.UndefinedColumn,
                    psycopg.errors.InsufficientPrivilege) as exc:  # fmt: skip
                await self._rollback()
                message = str(exc).strip().splitlines()[0]
                raise FatalError(f"postgres {table}: {message}",
                                 reason=f"postgres_{type(exc).__name__}") from exc  # fmt: skip
            except psycopg.Error as exc:
                await self._forget()
                text = str(exc).strip()
                message = text.splitlines()[0] if text else type(exc).__name__
                raise RetryableError(f"postgres: {message}", reason="connect",
                                     unknown_outcome=committing) from exc  # fmt: skip

    async def _rollback(self) -> None:
        import psycopg

        try:
            await self._connection.rollback()
        except psycopg.Error:
            await self._forget()

    async def _forget(self) -> None:
        """Drop a connection that failed: the next send connects again (and makes sure of
        its tables again: what a rolled-back transaction created is gone)."""
        connection, self._connection = self._connection, None
        self._ready.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def aclose(self) -> None:
        await self._forget()
