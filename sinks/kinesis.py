"""Kinesis Data Streams through aioboto3: PutRecords, resending only the failed entries.

One call carries at most 500 records and 5 MiB (the engine's batches are 500 records; a send
splits further by size); a record over 1 MiB can never be sent and fails for good (reason
``record_too_large``). Each entry's partition key is the stream's key (``city_id`` for air
quality); optionally an explicit hash key from it. Entries that come back with an
``ErrorCode`` (throttling, internal failure) go back to the engine's retry path, counted one
by one: ``FailedRecordCount`` is not trusted (LocalStack reports it wrongly). A missing
stream is created with ``shards`` shards when ``create_streams`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any, ClassVar

import numpy as np
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from producer.encoding import json_documents, record_keys
from producer.plugins import SinkContext
from producer.records import RecordBatch, Schema
from producer.sink import (
    BaseSink,
    FatalError,
    Interrupted,
    PartialFailure,
    Payload,
    RetryableError,
    Sink,
    SinkError,
    SinkLimits,
)
from sinks.aws import AwsFields, explained, open_client

log = structlog.get_logger("synthstream.kinesis")

MAX_CALL_BYTES = 5 * 2**20
MAX_RECORD_BYTES = 2**20
RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "InternalFailure",
    "ServiceUnavailable", "LimitExceededException", "KMSThrottlingException",
})  # fmt: skip


class KinesisSinkSettings(AwsFields):
    """Kinesis Data Streams through aioboto3 (LocalStack locally): PutRecords batches."""

    KIND: ClassVar[str] = "kinesis"
    DESCRIPTION: ClassVar[str] = "Kinesis Data Streams (aioboto3), PutRecords"
    NETWORK: ClassVar[bool] = True
    OVERRIDES: ClassVar[str] = "streams"
    REPLACES: ClassVar[str | None] = "kinesis_stream"

    destination: str = Field(
        "{channel}", description="Kinesis stream of each channel: a template over {stream} "
        "and {channel} (a stream's own default comes before this default).",
    )  # fmt: skip
    streams: dict[str, str] = Field(
        default_factory=dict, description="Kinesis streams per channel or stream, as JSON, "
        'e.g. {"air_quality": "aq"}; they win over DESTINATION.',
    )  # fmt: skip
    create_streams: bool = Field(True, description="Create a missing stream at start.")
    shards: int = Field(
        1, ge=1, description="Shards of a created stream (1 MB/s, 1,000 rec/s each)."
    )
    explicit_hash_key: bool = Field(
        False, description="Send an explicit hash key from the partition key's hash."
    )
    max_records: int = Field(500, ge=1, le=500, description="Records per PutRecords call.")

    def build(self, context: SinkContext) -> Sink:
        return KinesisSink(self, context.destinations)


class KinesisSink(BaseSink):
    name = "kinesis"

    def __init__(self, settings: KinesisSinkSettings, streams: dict[str, str]) -> None:
        self.settings = settings
        self.streams = streams
        self.limits = SinkLimits(max_records=settings.max_records, max_bytes=MAX_CALL_BYTES)
        self._exit = contextlib.AsyncExitStack()
        self._client: Any = None
        self._ready: set[str] = set()

    async def _connect(self) -> Any:
        if self._client is None:
            self._client = await open_client(self.settings, "kinesis", self._exit)
        return self._client

    async def _ensure(self, stream: str) -> None:
        if stream in self._ready:
            return
        client = await self._connect()
        try:
            await client.describe_stream_summary(StreamName=stream)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException" or not self.settings.create_streams:
                raise
            await client.create_stream(StreamName=stream, ShardCount=self.settings.shards)
            await client.get_waiter("stream_exists").wait(
                StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
            )
            log.info("kinesis_stream_created", stream=stream, shards=self.settings.shards)
        self._ready.add(stream)

    async def open(self) -> None:
        try:
            for stream in dict.fromkeys(self.streams.values()):
                await self._ensure(stream)
        except (ClientError, BotoCoreError):  # the engine's probe at start says it once
            return

    async def check(self) -> str:
        """Whether the streams are there (it only looks: a missing one is made by a run when
        ``create_streams`` is on)."""
        where = self.settings.endpoint_url or "AWS"
        found, missing = [], []
        try:
            client = await self._connect()
            for stream in dict.fromkeys(self.streams.values()):
                try:
                    await client.describe_stream_summary(StreamName=stream)
                    found.append(stream)
                except ClientError as exc:
                    if _code(exc) != "ResourceNotFoundException":
                        raise
                    missing.append(stream)
        except (ClientError, BotoCoreError) as exc:
            raise explained(exc, "kinesis", where) from exc
        if missing and not self.settings.create_streams:
            raise SinkError(f"{where}: no stream {', '.join(missing)}", waitable=False,
                            hint="create it, or let a run: "
                            "SYNTHSTREAM_SINKS__KINESIS__CREATE_STREAMS=true")  # fmt: skip
        made = f" ({', '.join(missing)}: a run creates it)" if missing else ""
        return f"{where}: streams {', '.join(found + missing)}{made}"

    def encode(self, batch: RecordBatch, schema: Schema) -> Payload:
        """Entries (document, partition key) and each one's size as Kinesis counts it: the
        engine forms sends of at most ``max_records`` entries and ``max_bytes``."""
        rows = schema.rows(batch)
        keys = [key.decode() for key in record_keys(schema, rows)]
        docs = json_documents(schema, batch, rows)
        entries = list(zip(docs, keys, strict=True))
        return Payload(batch, schema, entries, [len(doc) + len(key) for doc, key in entries])

    async def send(self, payload: Payload) -> None:
        """One PutRecords call; entries that come back with an ErrorCode are resent, and
        only they; a record over 1 MiB fails for good."""
        if payload.entries is None:
            payload = self.encode(payload.batch, payload.schema)
        assert payload.entries is not None
        entries = list(payload.entries)
        stream = self.streams[payload.batch.stream]
        try:
            await self._ensure(stream)
        except (ClientError, BotoCoreError) as exc:
            raise RetryableError(f"kinesis: {exc}", reason="connect") from exc
        too_large = [i for i, (doc, key) in enumerate(entries) if len(doc) + len(key)
                     > MAX_RECORD_BYTES]  # fmt: skip
        call = [i for i in range(len(entries)) if i not in set(too_large)]
        failed: list[int] = []
        acked: list[int] = []
        last = ""
        if call:
            try:
                last = await self._put(stream, entries, call, failed, acked)
            except asyncio.CancelledError:  # the shutdown deadline: say what Kinesis took
                raise Interrupted(np.asarray(acked, dtype=np.int64)) from None
        if failed or too_large:
            raise PartialFailure(
                last or "record over 1 MiB", failed=np.asarray(sorted(failed), dtype=np.int64),
                reason=last.split(":", 1)[0] or "kinesis",
                rejected={"record_too_large": np.asarray(too_large, dtype=np.int64)},
            )  # fmt: skip

    async def _put(
        self, stream: str, entries: list[Any], call: list[int], failed: list[int],
        acked: list[int],
    ) -> str:  # fmt: skip
        """The PutRecords call; positions go to ``failed`` or ``acked``; the last error."""
        records = []
        for i in call:
            doc, key = entries[i]
            entry: dict[str, Any] = {"Data": doc, "PartitionKey": key}
            if self.settings.explicit_hash_key:
                digest = hashlib.md5(key.encode(), usedforsecurity=False).digest()
                entry["ExplicitHashKey"] = str(int.from_bytes(digest, "big"))
            records.append(entry)
        try:
            response = await self._client.put_records(StreamName=stream, Records=records)
        except ClientError as exc:
            code = _code(exc)
            if code in RETRYABLE_CODES or code == "ResourceNotFoundException":
                failed += call
                return f"{code}: {exc}"
            raise FatalError(f"kinesis: {exc}", reason=f"kinesis_{code}") from exc
        except BotoCoreError as exc:  # connection refused, timeouts
            failed += call
            return f"connect: {exc}"
        last = ""
        for i, result in zip(call, response["Records"], strict=True):
            if result.get("ErrorCode"):
                failed.append(i)
                last = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
            else:
                acked.append(i)
        return last

    async def aclose(self) -> None:
        await self._exit.aclose()
        self._client = None
        self._ready.clear()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))
