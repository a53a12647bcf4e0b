"""Nothing: every record counts as delivered (benchmarks, dry runs)."""

from __future__ import annotations

from typing import ClassVar

from producer.plugins import SinkContext, SinkSettings
from producer.sink import BaseSink, Payload, Sink, SinkLimits


class NullSinkSettings(SinkSettings):
    """Nothing: every record counts as delivered (benchmarks, dry runs)."""

    KIND: ClassVar[str] = "null"
    DESCRIPTION: ClassVar[str] = "discard every record (counted as delivered)"

    def build(self, context: SinkContext) -> Sink:
        return NullSink()


class NullSink(BaseSink):
    """Accepts and forgets everything: for benchmarks and dry runs."""

    name = "null"

    def __init__(self) -> None:
        self.limits = SinkLimits(max_records=100_000, linger=False, at_once_records=100_000)

    async def check(self) -> str:
        return "discards records"

    def send_now(self, payload: Payload) -> None:
        return None

    async def send(self, payload: Payload) -> None:
        return None
