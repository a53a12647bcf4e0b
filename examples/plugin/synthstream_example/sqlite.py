"""A SQLite sink: every record as a JSON document in a table per channel.

A sink kind is one module and one entry point: its settings model (``KIND``,
``DESCRIPTION``, ``build``; ``AddressedSinkSettings`` gives it a table per channel, a
``destination`` template over ``{stream}`` and ``{channel}`` and per-channel ``tables``) and a
small class around one acknowledged call: here a transaction. The engine batches, retries and
counts; ``send`` returns once the rows are committed, and only then do they count as
delivered.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from producer.api import (
    AddressedSinkSettings,
    BaseSink,
    ConfigError,
    FatalError,
    Payload,
    RetryableError,
    Sink,
    SinkContext,
    SinkLimits,
    json_documents,
)


class SqliteSinkSettings(AddressedSinkSettings):
    """SQLite: a table per channel of JSON documents, committed per send."""

    KIND: ClassVar[str] = "sqlite"
    DESCRIPTION: ClassVar[str] = "a SQLite database, a table per channel (a plugin)"
    OVERRIDES: ClassVar[str] = "tables"  # the field of per-channel addresses

    path: Path = Field(Path("data/synthstream.db"), description="The database file.")
    destination: str = Field("{channel}", description="Table of each channel (a template).")
    tables: dict[str, str] = Field(
        default_factory=dict, description='Tables per channel or stream, as JSON: {"ticks": "t"}.'
    )
    max_records: int = Field(5_000, ge=1, description="Records per transaction.")

    def build(self, context: SinkContext) -> Sink:
        return SqliteSink(self, context.destinations)


class SqliteSink(BaseSink):
    name = "sqlite"

    def __init__(self, settings: SqliteSinkSettings, tables: dict[str, str]) -> None:
        self.settings = settings
        self.tables = {channel: re.sub(r"\W", "_", t) for channel, t in tables.items()}
        self.limits = SinkLimits(max_records=settings.max_records, linger=False)
        self._db: sqlite3.Connection | None = None
        self._tables: set[str] = set()

    async def open(self) -> None:
        try:
            self.settings.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.settings.path, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"SYNTHSTREAM_SINKS__SQLITE__PATH: cannot open {self.settings.path}: {exc}"
            ) from None

    async def check(self) -> str:
        return f"{self.settings.path} is open"

    async def send(self, payload: Payload) -> None:
        assert self._db is not None
        table = self.tables[payload.batch.stream]
        rows = [(doc.decode(),) for doc in json_documents(payload.schema, payload.batch)]
        try:
            await asyncio.to_thread(self._insert, table, rows)
        except sqlite3.OperationalError as exc:  # locked, busy: may pass
            raise RetryableError(str(exc), reason="busy") from exc
        except sqlite3.Error as exc:
            raise FatalError(str(exc), reason="sqlite") from exc

    def _insert(self, table: str, rows: list[tuple[str]]) -> None:
        assert self._db is not None
        with self._db:  # one transaction: committed, or rolled back whole
            if table not in self._tables:
                self._db.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (doc TEXT NOT NULL)')
                self._tables.add(table)
            self._db.executemany(f'INSERT INTO "{table}" (doc) VALUES (?)', rows)

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
