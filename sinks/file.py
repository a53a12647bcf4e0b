"""Files: JSON lines, CSV or Parquet, one file set per stream, rolled by size or event time.

Files are named ``<dir>/<stream>/<stream>-<window start>-<seq>.<ext>`` (plus the shard when
several processes share a folder). Windows are aligned on ``roll_interval_s`` of event time
(hourly files start on the hour), and a file also rolls past ``roll_bytes``. JSON lines
and CSV are written in place, so ``tail -f`` works; Parquet is written to ``<name>.partial``
and renamed when complete, since a Parquet file is unreadable before its footer. Parquet
receives Arrow tables, never per-record dicts, and writes row groups of ``row_group_rows``
as they fill, so memory stays bounded by one row group whatever the size of the data set.
Writes run in a worker thread so that a large row group does not stall the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import Field

from producer import errors
from producer.encoding import encode_jsonl, prepare_jsonl
from producer.plugins import SinkContext, SinkSettings
from producer.records import RecordBatch, Schema
from producer.sink import (
    BaseSink,
    FatalError,
    Interrupted,
    PartialFailure,
    Payload,
    Sink,
    SinkLimits,
    finish_in_thread,
)
from sinks.tables import flat

# Sends up to this size are written on the loop; larger ones (backfill) in a thread.
INLINE_RECORDS = 256
PARQUET_LINGER_S = 10.0  # a live run's row group: what came in this long (or a full one)


class FileSinkSettings(SinkSettings):
    """Files, one set per channel under <dir>/<channel>/, rolled by size or event time."""

    KIND: ClassVar[str] = "file"
    DESCRIPTION: ClassVar[str] = "JSON lines, CSV or Parquet files, rolled by event time"

    dir: Path | None = Field(None, description="Output folder; unset: the run's (--out, "
                             "SYNTHSTREAM_OUT).")  # fmt: skip
    format: Literal["jsonl", "csv", "parquet"] = Field("jsonl", description="File format.")
    roll_bytes: int = Field(256 * 2**20, ge=1024, description="Start a new file past this size.")
    roll_interval_s: float = Field(
        3600.0, gt=0, description="Start a new file past this much event time."
    )
    row_group_rows: int = Field(500_000, ge=1, description="Parquet rows per row group.")
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field(
        "snappy", description="Parquet compression."
    )
    max_records: int = Field(500_000, ge=1, description="Records per write.")
    name: str | None = Field(
        None,
        description="Write <dir>/<name>.<ext> instead of <dir>/<stream>/<stream>-<time>-<seq>.",
    )

    def build(self, context: SinkContext) -> Sink:
        return FileSink(self, context.suffix, context.out)


class TableFile:
    """A Parquet or CSV file written a table at a time under ``<name>.partial`` and renamed
    into place when closed, so a reader never sees half a file; ``discard`` removes it (a
    run that failed leaves nothing behind). The file sink's Parquet files and the incidents
    job's data sets are written by it."""

    def __init__(
        self, path: Path, schema: pa.Schema, fmt: str,
        compression: Literal["snappy", "zstd", "gzip", "none"] = "snappy",
        statistics: list[str] | bool = True,
    ) -> None:  # fmt: skip
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        if fmt == "parquet":
            self._parquet = pq.ParquetWriter(self.partial, schema, compression=compression,
                                             write_statistics=statistics)  # fmt: skip
        else:
            self._csv = pacsv.CSVWriter(self.partial, schema)

    def write(self, table: pa.Table, row_group_rows: int | None = None) -> None:
        """Append ``table`` (Parquet: as row groups of at most ``row_group_rows``)."""
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=row_group_rows)
        else:
            assert self._csv is not None
            self._csv.write_table(table)

    @property
    def size(self) -> int:
        return os.path.getsize(self.partial)

    def _close_writer(self) -> None:
        writer = self._parquet or self._csv
        if writer is not None:
            writer.close()
        self._parquet = self._csv = None

    def close(self) -> None:
        """Complete the file: it appears under its name."""
        self._close_writer()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._close_writer()
        self.partial.unlink(missing_ok=True)


@dataclass
class _Open:
    path: Path
    first_ms: int
    handle: IO[bytes] | None = None
    parquet: TableFile | None = None
    bytes_written: int = 0
    statistics: tuple[str, ...] = ()
    columns: list[str] | None = None  # CSV and Parquet: the file's columns


class FileSink(BaseSink):
    name = "file"

    def __init__(
        self, settings: FileSinkSettings, suffix: str = "", out: Path = Path("data/out")
    ) -> None:
        self.settings = settings
        # Parquet: each send is a row group, written before it counts as delivered.
        per_send = settings.max_records
        if settings.format == "parquet":
            per_send = min(per_send, settings.row_group_rows)
        # Lines and CSV rows go out each tick; a Parquet send is a row group: worth filling
        # (live, for up to PARQUET_LINGER_S: nobody can read the file before it rolls).
        parquet = settings.format == "parquet"
        # A live tick's few lines or rows are written at once, on the loop.
        self.limits = SinkLimits(max_records=per_send, linger=parquet,
                                 linger_s=PARQUET_LINGER_S if parquet else None,
                                 at_once_records=0 if parquet else INLINE_RECORDS)  # fmt: skip
        self.dir = settings.dir or out
        self.setting = ("SYNTHSTREAM_SINKS__FILE__DIR" if settings.dir is not None
                        else "--out / SYNTHSTREAM_OUT")  # fmt: skip
        self.suffix = suffix
        self._open: dict[str, _Open] = {}
        self._seq: dict[str, int] = {}
        self.completed: list[Path] = []
        self._completed_bytes = 0

    async def open(self) -> None:
        check_writable(self.dir, self.setting)

    async def check(self) -> str:
        check_writable(self.dir, self.setting)
        return f"{self.dir} is writable"

    def encode(self, batch: RecordBatch, schema: Schema) -> Payload:
        """A live tick's lines are encoded here, while its tick is made ahead
        (producer.ticks): the write then only copies them (they ride on the batch)."""
        if self.settings.format == "jsonl" and len(batch) <= INLINE_RECORDS:
            prepare_jsonl(schema, batch)
        return Payload(batch, schema)

    def send_now(self, payload: Payload) -> None:
        """A live tick's few records, written at once on the loop: a write to the page cache
        takes microseconds, a hand-off to a thread and back several context switches. The
        same errors as ``send``."""
        batch = payload.batch
        written = [0]  # records of the batch on disk, in order
        try:
            self._write(batch, payload.schema, written)
        except OSError as exc:
            raise self._failure(exc, batch, written[0]) from exc

    async def send(self, payload: Payload) -> None:
        if len(payload) <= INLINE_RECORDS:
            self.send_now(payload)
            return
        batch, schema = payload.batch, payload.schema
        written = [0]
        try:
            cancelled = await finish_in_thread(lambda: self._write(batch, schema, written))
        except OSError as exc:
            raise self._failure(exc, batch, written[0]) from exc
        if cancelled:  # the shutdown deadline came during the write: it is on disk
            raise Interrupted(np.arange(written[0], dtype=np.int64))

    def _failure(self, exc: OSError, batch: RecordBatch, written: int) -> Exception:
        # A full disk may get room again (and an I/O error may pass): retried with backoff,
        # the records not yet on disk only (a short write was cut back).
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            reason = "disk_full" if exc.errno != errno.EIO else "io_error"
            message = f"cannot write {self.dir}: {exc.strerror}"
            rest = np.arange(written, len(batch), dtype=np.int64)
            return PartialFailure(message, failed=rest, reason=reason)
        return FatalError(f"cannot write {self.dir}: {exc}", reason="io")

    def _write(self, batch: RecordBatch, schema: Schema, written: list[int]) -> None:
        """Window by window (a file per roll interval); ``written`` counts what is on disk."""
        if not len(batch):
            return
        roll_ms = max(1, round(self.settings.roll_interval_s * 1000))
        if len(batch) <= INLINE_RECORDS:  # a live tick: one window, most likely
            times = batch.time_ms.tolist()  # (a live wake runs cold: plain min/max are cheapest)
            first = min(times) // roll_ms
            if first == max(times) // roll_ms:
                self._write_window(batch, schema, first * roll_ms)
                written[0] = len(batch)
                return
        window = batch.time_ms // roll_ms
        cuts = np.flatnonzero(window[1:] != window[:-1]) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(batch)], strict=True):
            piece = batch if (lo, hi) == (0, len(batch)) else batch.take(slice(lo, hi))
            self._write_window(piece, schema, int(window[lo]) * roll_ms)
            written[0] = hi

    def _write_window(self, batch: RecordBatch, schema: Schema, window_ms: int) -> None:
        stream = batch.stream
        current = self._open.get(stream)
        if current is not None and (
            current.bytes_written >= self.settings.roll_bytes or current.first_ms != window_ms
        ):
            self._finish(stream)
            current = None
        fmt = self.settings.format
        table = None if fmt == "jsonl" else schema.table(batch)
        if (
            current is not None
            and table is not None
            and current.columns is not None
            and current.columns != table.schema.names
        ):  # a table's schema change (cdc_schema_change): a new file with its columns
            self._finish(stream)
            current = None
        if current is None:
            current = self._start(stream, window_ms)
            current.statistics = (schema.time_field, schema.partition_key)
        if table is None:
            _append_whole(current, encode_jsonl(schema, batch))
            return
        current.columns = table.schema.names
        if fmt == "csv":
            data = flat(table)
            out = pa.BufferOutputStream()
            header = current.bytes_written == 0
            pacsv.write_csv(data, out, pacsv.WriteOptions(include_header=header))
            _append_whole(current, out.getvalue().to_pybytes())
        else:
            self._write_row_group(current, table)  # on disk before it counts

    def _start(self, stream: str, first_ms: int) -> _Open:
        seq = self._seq.get(stream, 0) + 1
        self._seq[stream] = seq
        stamp = datetime.fromtimestamp(first_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = self.dir / stream
        ext = self.settings.format
        path = folder / f"{stream}-{stamp}-{seq:05d}{self.suffix}.{ext}"
        if self.settings.name:  # one named file (a data set), numbered only if it rolls
            folder = self.dir
            more = "" if seq == 1 else f"-{seq:05d}"
            path = folder / f"{self.settings.name}{more}{self.suffix}.{ext}"
        folder.mkdir(parents=True, exist_ok=True)
        opened = _Open(path=path, first_ms=first_ms)
        if ext == "parquet":
            opened.path = path
        else:  # unbuffered: what write() returns is what reached the OS
            opened.handle = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in _finish
        self._open[stream] = opened
        return opened

    def _write_row_group(self, current: _Open, table: pa.Table) -> None:
        if current.parquet is None:
            compression = self.settings.compression
            # Statistics only where readers filter (time, key): they cost write time per column.
            wanted = [c for c in current.statistics if c in table.column_names]
            current.parquet = TableFile(current.path, table.schema, "parquet", compression,
                                        wanted or False)  # fmt: skip
        current.parquet.write(table, row_group_rows=max(table.num_rows, 1))
        current.bytes_written = current.parquet.size

    def _finish(self, stream: str) -> None:
        current = self._open.pop(stream)
        if self.settings.format == "parquet":
            if current.parquet is not None:
                current.parquet.close()
        elif current.handle is not None:
            current.handle.close()
        with contextlib.suppress(OSError):  # (a discarded file is not there)
            self._completed_bytes += current.path.stat().st_size
            self.completed.append(current.path)

    def written(self) -> dict[str, Any]:
        """The files completed so far, and the bytes of every file, open ones too (cheap:
        the backfill's progress bar asks twice a second)."""
        open_bytes = sum(current.bytes_written for current in self._open.values())
        return {"files": [str(p) for p in self.completed],
                "bytes": self._completed_bytes + open_bytes}  # fmt: skip

    async def aclose(self) -> None:
        def finish_all() -> None:
            for stream in list(self._open):
                self._finish(stream)

        await asyncio.to_thread(finish_all)


def _append_whole(current: _Open, data: bytes) -> None:
    """Append whole records or nothing: a write cut short (a full disk) is truncated back to
    where the batch began, so a file never ends in half a record; then the error is raised."""
    assert current.handle is not None
    start = current.bytes_written
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            written += current.handle.write(view[written:]) or 0
    except OSError:
        with contextlib.suppress(OSError):
            current.handle.truncate(start)
            current.handle.seek(start)
        raise
    current.bytes_written += len(data)


def check_writable(folder: Path, setting: str) -> None:
    """Create the folder if needed and prove a file can be written there, or ConfigError."""
    errors.check_writable(folder, setting)
