"""JSON lines on standard output, one record per line (logs go to standard error)."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import BinaryIO

import numpy as np

from producer.encoding import encode_jsonl
from producer.records import RecordBatch, Schema
from sinks.base import SinkLimits, finish_in_thread
from sinks.errors import Interrupted, ReaderGone
from sinks.fields import StdoutSinkFields


class StdoutSink:
    name = "stdout"

    def __init__(self, settings: StdoutSinkFields, stream: BinaryIO | None = None) -> None:
        self.limits = SinkLimits(max_records=settings.max_records, linger=False)
        self._out = stream if stream is not None else sys.stdout.buffer
        # Routes of several streams write from their own threads: one write at a time, or a
        # pipe gets lines cut into each other (a buffered writer does not serialise them).
        self._lock = threading.Lock()

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "standard output"

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        data = encode_jsonl(schema, batch)
        whole = [False]  # this write reached the pipe (the sink may serve several routes)

        def write() -> None:
            with self._lock:
                self._out.write(data)
                self._out.flush()
            whole[0] = True

        try:  # in a thread: a slow reader blocks the write, never the loop (or a signal)
            cancelled = await finish_in_thread(write)
        except BrokenPipeError as exc:  # `synthstream run | head`: the reader is gone
            raise ReaderGone("standard output closed", reason="closed") from exc
        if cancelled:  # the shutdown deadline came while the reader was slow: it has them
            raise Interrupted(np.arange(len(batch) if whole[0] else 0, dtype=np.int64))

    async def aclose(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._out.flush()


class NullSink:
    """Accepts and forgets everything: for benchmarks and dry runs."""

    name = "null"

    def __init__(self) -> None:
        self.limits = SinkLimits(max_records=100_000, linger=False)

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "discards records"

    def send_now(self, batch: RecordBatch, schema: Schema) -> bool:
        return True

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        return None

    async def aclose(self) -> None:
        return None
