"""S3 objects through aioboto3 (LocalStack locally): an object per send and event-time hour.

A send's records are grouped by the UTC hour of their event time; each group is one object,
``<prefix>/<stream>/dt=YYYY-MM-DD/hour=HH/part-<first event time>-<digest><suffix>.<ext>``,
in JSON lines, CSV or Parquet. The digest is of the records' keys, so a send that is retried
writes the same key again (an overwrite, not a second copy) and a backfill run again puts
the same objects in place. The records count as delivered when S3 acknowledged their object
(PutObject, or CompleteMultipartUpload above ``multipart_bytes``, in parts of that size);
objects of a send that were acknowledged before a failure are not sent again. A missing
bucket is created when ``create_bucket`` is on. Few, large objects live: raise
``SYNTHSTREAM_DELIVERY__LINGER_S`` (a send waits that long to fill).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from producer.encoding import encode_jsonl
from producer.plugins import SinkContext
from producer.records import RecordBatch, Schema
from producer.sink import (
    BaseSink,
    Interrupted,
    PartialFailure,
    Payload,
    RetryableError,
    Sink,
    SinkError,
    SinkLimits,
)
from producer.timeline import HOUR_MS
from sinks.aws import AwsFields, explained, open_client
from sinks.tables import flat

log = structlog.get_logger("synthstream.s3")

EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}


def object_key(prefix: str, stream: str, hour_ms: int, batch: RecordBatch, suffix: str,
               fmt: str) -> str:  # fmt: skip
    """Where a group of records of one event-time hour goes."""
    moment = datetime.fromtimestamp(hour_ms / 1000, UTC)
    digest = hashlib.blake2b(batch.key.tobytes() + batch.is_duplicate.tobytes(),
                             digest_size=8).hexdigest()  # fmt: skip
    first = int(batch.time_ms.min())
    head = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return (f"{head}{stream}/dt={moment:%Y-%m-%d}/hour={moment:%H}/"
            f"part-{first}-{digest}{suffix}.{EXTENSIONS[fmt]}")  # fmt: skip


def encode(schema: Schema, batch: RecordBatch, fmt: str,
           compression: Literal["snappy", "zstd", "gzip", "none"]) -> bytes:  # fmt: skip
    if fmt == "jsonl":
        return encode_jsonl(schema, batch)
    table = schema.table(batch)
    out = pa.BufferOutputStream()
    if fmt == "csv":
        pacsv.write_csv(flat(table), out)
    else:
        pq.write_table(table, out, compression=compression)
    return bytes(out.getvalue())


class S3SinkSettings(AwsFields):
    """S3 objects through aioboto3 (LocalStack locally): an object per send and event hour."""

    KIND: ClassVar[str] = "s3"
    DESCRIPTION: ClassVar[str] = "S3 objects (aioboto3) by stream, day and hour"
    NETWORK: ClassVar[bool] = True
    OVERRIDES: ClassVar[str] = "folders"

    bucket: str = Field("synthstream", min_length=3, description="The bucket.")
    prefix: str = Field("synthstream", description="Put before <channel>/dt=.../hour=.../.")
    destination: str = Field(
        "{channel}", description="Folder of each channel under PREFIX: a template over "
        "{stream} and {channel}.",
    )  # fmt: skip
    folders: dict[str, str] = Field(
        default_factory=dict, description="Folders per channel or stream, as JSON, e.g. "
        '{"air_quality": "aq/v1"}; they win over DESTINATION.',
    )  # fmt: skip
    create_bucket: bool = Field(False, description="Create the bucket if it is missing.")
    format: Literal["jsonl", "csv", "parquet"] = Field("jsonl", description="Object format.")
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field(
        "snappy", description="Parquet compression."
    )
    multipart_bytes: int = Field(
        16 * 2**20, ge=5 * 2**20, description="Objects above this go up in parts this big."
    )
    max_records: int = Field(100_000, ge=1, description="Records per send (objects per hour).")

    def build(self, context: SinkContext) -> Sink:
        return S3Sink(self, context.destinations, context.suffix)


class S3Sink(BaseSink):
    name = "s3"

    def __init__(self, settings: S3SinkSettings, paths: dict[str, str], suffix: str = "") -> None:
        self.settings = settings
        self.paths = paths  # channel -> its name under the prefix
        self.suffix = suffix
        self.limits = SinkLimits(max_records=settings.max_records)
        self._exit = contextlib.AsyncExitStack()
        self._client: Any = None
        self._bucket_ready = False

    @property
    def where(self) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.prefix.strip('/')}"

    async def _connect(self) -> Any:
        if self._client is None:
            self._client = await open_client(self.settings, "s3", self._exit)
        return self._client

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        client = await self._connect()
        bucket = self.settings.bucket
        try:
            await client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound") or not (
                self.settings.create_bucket
            ):  # fmt: skip
                raise
            options: dict[str, Any] = {}
            if self.settings.region != "us-east-1":
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                await client.create_bucket(Bucket=bucket, **options)
            log.info("s3_bucket_created", bucket=bucket)
        self._bucket_ready = True

    async def open(self) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):  # the start-up probe says it
            await self._ensure_bucket()

    async def check(self) -> str:
        """Whether the bucket is there (it only looks: a missing one is made by a run when
        ``create_bucket`` is on)."""
        made = ""
        try:
            if not self._bucket_ready:
                client = await self._connect()
                try:
                    await client.head_bucket(Bucket=self.settings.bucket)
                except ClientError as exc:
                    if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                        raise
                    if not self.settings.create_bucket:
                        raise SinkError(
                            f"{self.where}: no bucket {self.settings.bucket}",
                            waitable=False,
                            hint="create it, or let a run: "
                            "SYNTHSTREAM_SINKS__S3__CREATE_BUCKET=true",
                        ) from None
                    made = "; the bucket is missing: a run creates it"  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            raise explained(exc, "s3", self.where) from exc
        return f"{self.where} ({self.settings.endpoint_url or 'AWS'}{made})"

    async def send(self, payload: Payload) -> None:
        batch, schema = payload.batch, payload.schema
        s = self.settings
        try:
            await self._ensure_bucket()
        except (ClientError, BotoCoreError) as exc:
            raise RetryableError(f"s3: {exc}", reason="connect") from exc
        # Groups of one event-time hour each, in order (a batch is in time order but for
        # late records).
        hours = batch.time_ms // HOUR_MS
        order = np.argsort(hours, kind="stable")
        keyed = hours[order]
        bounds = [0, *(np.flatnonzero(np.diff(keyed)) + 1).tolist(), len(batch)]
        groups = [(order[lo:hi], int(keyed[lo]) * HOUR_MS)
                  for lo, hi in itertools.pairwise(bounds)]  # fmt: skip
        acked: list[np.ndarray] = []
        try:
            for index, hour_ms in groups:
                part = batch.take(index)
                key = object_key(s.prefix, self.paths[batch.stream], hour_ms, part,
                                 self.suffix, s.format)  # fmt: skip
                body = encode(schema, part, s.format, s.compression)
                await self._put(key, body)
                acked.append(index)
        except asyncio.CancelledError:  # the shutdown deadline: what S3 has is delivered
            raise Interrupted(_joined(acked)) from None
        except (ClientError, BotoCoreError) as exc:
            done = _joined(acked)
            failed = np.setdiff1d(np.arange(len(batch)), done)
            code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise PartialFailure(f"s3: {exc}", failed=failed, reason=f"s3_{code}") from exc

    async def _put(self, key: str, body: bytes) -> None:
        client = await self._connect()
        bucket, part_size = self.settings.bucket, self.settings.multipart_bytes
        if len(body) <= part_size:
            await client.put_object(Bucket=bucket, Key=key, Body=body)
            return
        upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(body), part_size), start=1):
                answer = await client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=body[start : start + part_size],
                )  # fmt: skip
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            await client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def aclose(self) -> None:
        await self._exit.aclose()
        self._client = None


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))
