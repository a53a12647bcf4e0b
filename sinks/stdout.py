"""JSON lines on standard output, one record per line (logs go to standard error)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import BinaryIO

from producer.records import RecordBatch, Schema, encode_jsonl
from producer.settings import StdoutSinkSettings
from sinks.base import SinkLimits
from sinks.errors import ReaderGone


class StdoutSink:
    name = "stdout"

    def __init__(self, settings: StdoutSinkSettings, stream: BinaryIO | None = None) -> None:
        self.limits = SinkLimits(max_records=settings.max_records)
        self._out = stream if stream is not None else sys.stdout.buffer

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "standard output"

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        try:
            self._out.write(encode_jsonl(schema, batch))
            self._out.flush()
        except BrokenPipeError as exc:  # `synthstream run | head`: the reader is gone
            raise ReaderGone("standard output closed", reason="closed") from exc
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._out.flush()


class NullSink:
    """Accepts and forgets everything: for benchmarks and dry runs."""

    name = "null"

    def __init__(self) -> None:
        self.limits = SinkLimits(max_records=100_000)

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "discards records"

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        return None

    async def aclose(self) -> None:
        return None
