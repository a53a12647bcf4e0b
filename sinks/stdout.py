"""JSON lines on standard output, one record per line (logs go to standard error)."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import BinaryIO, ClassVar

import numpy as np
from pydantic import Field

from producer.encoding import encode_jsonl
from producer.plugins import SinkContext, SinkSettings
from producer.sink import (
    BaseSink,
    Interrupted,
    Payload,
    ReaderGone,
    Sink,
    SinkLimits,
    finish_in_thread,
)


class StdoutSinkSettings(SinkSettings):
    """JSON lines on standard output (logs go to standard error)."""

    KIND: ClassVar[str] = "stdout"
    DESCRIPTION: ClassVar[str] = "JSON lines on standard output"

    max_records: int = Field(1000, ge=1, description="Records per write.")

    def build(self, context: SinkContext) -> Sink:
        return StdoutSink(self)


class StdoutSink(BaseSink):
    name = "stdout"

    def __init__(self, settings: StdoutSinkSettings, stream: BinaryIO | None = None) -> None:
        self.limits = SinkLimits(max_records=settings.max_records, linger=False)
        self._out = stream if stream is not None else sys.stdout.buffer
        # Routes of several streams write from their own threads: one write at a time, or a
        # pipe gets lines cut into each other (a buffered writer does not serialise them).
        self._lock = threading.Lock()

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "standard output"

    async def send(self, payload: Payload) -> None:
        batch = payload.batch
        data = encode_jsonl(payload.schema, batch)
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
