"""Kafka topics through aiokafka: one producer per process.

Each record goes to its stream's topic with the stream's partition key as the message key
(so a device's readings stay in order on one partition), the JSON reading as the value, the
event time as the message timestamp, and ``message_id``, ``event_time`` and ``is_duplicate``
as headers; a change (``producer.cdc``) is keyed by its primary key and a delete is
followed by a tombstone (the key with no value), so a compacted topic forgets the row; the
delete counts as delivered when both are acknowledged. A ``send`` counts as delivered only
when every message's future has resolved; messages whose futures failed with a retriable
error are handed back to the engine's retry path, others fail for good with reason
``kafka_<ErrorName>``. A broker that is down at start is not a bad setting: the producer is
started again on the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import structlog
from pydantic import Field, SecretStr

from producer.cdc import DELETE, ChangeSchema
from producer.encoding import json_documents, record_keys
from producer.plugins import AddressedSinkSettings, SinkContext
from producer.records import RecordBatch
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

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

ACK_WAIT_S = 3.0  # at the deadline, for messages already handed to the producer


def retriable(exc: BaseException) -> bool:
    """Whether a message that failed with ``exc`` is sent again (the engine's retries are
    bounded). aiokafka marks only some errors retriable; a timeout is worth another try, and
    so is ``UnknownError`` (error code -1), which a broker answers while it restarts."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError, UnknownError

    return isinstance(exc, KafkaError) and (
        exc.retriable or isinstance(exc, KafkaTimeoutError | UnknownError)
    )


log = structlog.get_logger("synthstream.kafka")


class KafkaSinkSettings(AddressedSinkSettings):
    """Kafka topics through aiokafka: one producer per process, key = the stream's key."""

    KIND: ClassVar[str] = "kafka"
    DESCRIPTION: ClassVar[str] = "Kafka topics (aiokafka), keyed, idempotent"
    NETWORK: ClassVar[bool] = True
    OVERRIDES: ClassVar[str] = "topics"
    REPLACES: ClassVar[str | None] = "kafka_topic"

    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port...]")
    destination: str = Field(
        "{channel}", description="Topic of each channel: a template over {stream} and "
        "{channel} (a stream's own default topic comes before this default).",
    )  # fmt: skip
    topics: dict[str, str] = Field(
        default_factory=dict, description="Topics per channel or stream, as JSON, e.g. "
        '{"transactions": "shop.tx"}; they win over DESTINATION.',
    )  # fmt: skip
    acks: Literal["all", "1", "0"] = Field("all", description="Acknowledgements to wait for.")
    idempotence: Literal["auto", "on", "off"] = Field(
        "auto", description="Idempotent producer; auto: on, off if the broker lacks it."
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", description="Batch compression (snappy, lz4, zstd need their packages)."
    )
    linger_ms: int = Field(5, ge=0, description="aiokafka linger before sending a batch.")
    max_batch_bytes: int = Field(1_048_576, ge=1024, description="aiokafka batch size, bytes.")
    request_timeout_ms: int = Field(30_000, ge=1000, description="Request timeout.")
    create_topics: bool = Field(True, description="Create missing topics at start.")
    partitions: int = Field(3, ge=1, description="Partitions of a created topic.")
    replication_factor: int = Field(1, ge=1, description="Replication of a created topic.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Passed to aiokafka."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism."
    )
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: SecretStr | None = Field(None, description="SASL password; never logged.")
    ssl_cafile: Path | None = Field(None, description="CA bundle for SSL.")
    max_records: int = Field(5_000, ge=1, description="Records per send call.")

    def build(self, context: SinkContext) -> Sink:
        return KafkaSink(self, context.destinations)


class KafkaSink(BaseSink):
    name = "kafka"

    def __init__(self, settings: KafkaSinkSettings, topics: dict[str, str]) -> None:
        self.settings = settings
        self.topics = topics
        self.limits = SinkLimits(max_records=settings.max_records)
        self._producer: AIOKafkaProducer | None = None
        self._idempotent: bool | None = None
        self._topics_made = False

    def _common(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {
            "bootstrap_servers": s.bootstrap_servers,
            "request_timeout_ms": s.request_timeout_ms,
            "security_protocol": s.security_protocol,
            "client_id": "synthstream",
        }
        if s.sasl_mechanism:
            options["sasl_mechanism"] = s.sasl_mechanism
            options["sasl_plain_username"] = s.sasl_username
            if s.sasl_password is not None:
                options["sasl_plain_password"] = s.sasl_password.get_secret_value()
        if s.ssl_cafile or s.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(s.ssl_cafile) if s.ssl_cafile else None
            )
        return options

    async def _start_producer(self, idempotent: bool) -> AIOKafkaProducer:
        from aiokafka import AIOKafkaProducer  # (the client loads when the sink is used)

        s = self.settings
        producer = AIOKafkaProducer(
            **self._common(),
            acks="all" if idempotent else (s.acks if s.acks == "all" else int(s.acks)),
            enable_idempotence=idempotent,
            compression_type=None if s.compression == "none" else s.compression,
            linger_ms=s.linger_ms,
            max_batch_size=s.max_batch_bytes,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _start(self, create_topics: bool = True) -> AIOKafkaProducer:
        """The producer, started once; the missing topics made once (``create_topics``)."""
        if self._producer is None:
            self._producer = await self._started()
        if create_topics and self.settings.create_topics and not self._topics_made:
            await self._create_topics()
            self._topics_made = True
        return self._producer

    async def _started(self) -> AIOKafkaProducer:
        from aiokafka.errors import KafkaError, KafkaTimeoutError

        mode = self.settings.idempotence
        try:
            producer = await self._start_producer(mode != "off")
            self._idempotent = mode != "off"
        except KafkaError as exc:
            if (
                mode != "auto"
                or isinstance(exc, KafkaTimeoutError)
                or "connect" in str(exc).lower()
            ):
                raise
            # A broker without InitProducerId: same producer, without idempotence.
            log.warning("kafka_idempotence_unsupported", error=str(exc))
            producer = await self._start_producer(False)
            self._idempotent = False
        return producer

    async def _create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        admin = AIOKafkaAdminClient(**self._common())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in dict.fromkeys(self.topics.values()) if t not in existing]
            if missing:
                new = [
                    NewTopic(t, self.settings.partitions, self.settings.replication_factor)
                    for t in missing
                ]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
                log.info("kafka_topics_created", topics=missing)
        finally:
            await admin.close()

    async def open(self) -> None:
        from aiokafka.errors import KafkaError

        try:
            await self._start()
        except KafkaError:  # the engine's probe at start says it once, or waits for it
            return

    async def check(self) -> str:
        """The brokers and the topics (it only looks: a missing topic is made by a run when
        ``create_topics`` is on)."""
        from aiokafka.errors import KafkaConnectionError, KafkaError

        servers = self.settings.bootstrap_servers
        try:
            producer = await self._start(create_topics=False)
            metadata = await producer.client.fetch_all_metadata()
        except KafkaConnectionError as exc:
            raise SinkError(
                f"{servers}: no broker answers",
                reason="connect",
                hint="start it, or wait for it with --wait-for-sinks SECONDS; the "
                "address is SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS",
            ) from exc
        except KafkaError as exc:
            raise SinkError(f"{servers}: {type(exc).__name__}: {exc}") from exc  # fmt: skip
        topics = list(dict.fromkeys(self.topics.values()))
        missing = [t for t in topics if t not in metadata.topics()]
        made = ("a run creates it" if self.settings.create_topics and not self._topics_made
                else "the broker must create it on the first send")  # fmt: skip
        return (
            f"{servers}: {len(metadata.brokers())} broker(s), idempotence "
            f"{'on' if self._idempotent else 'off'}, topics {', '.join(topics)}"
            + (f" ({', '.join(missing)}: missing, {made})" if missing else "")
        )

    async def send(self, payload: Payload) -> None:
        from aiokafka.errors import KafkaConnectionError, KafkaError

        batch, schema = payload.batch, payload.schema
        try:
            producer = await self._start()
        except KafkaError as exc:
            what = ("no broker answers" if isinstance(exc, KafkaConnectionError)
                    else f"{type(exc).__name__}: {exc}")  # fmt: skip
            raise RetryableError(f"kafka unreachable at {self.settings.bootstrap_servers}: "
                                 f"{what}", reason="connect") from exc  # fmt: skip
        topic = self.topics[batch.stream]
        rows = schema.rows(batch)
        keys = record_keys(schema, rows)
        values: list[bytes | None] = list(json_documents(schema, batch, rows))
        owner = list(range(len(values)))  # the record of each message
        if isinstance(schema, ChangeSchema):  # a tombstone after each delete, as Debezium's
            deletes = set(np.flatnonzero(batch.columns["op"] == DELETE).tolist())
            if deletes:
                owner = [m for i in range(len(values)) for m in ([i, i] if i in deletes else [i])]
                values = [None if k and owner[k - 1] == i else values[i]
                          for k, i in enumerate(owner)]  # fmt: skip
                keys = [keys[i] for i in owner]
        futures: list[asyncio.Future[Any] | BaseException] = []
        try:
            outcomes = await self._produce(producer, topic, values, keys, owner, batch, futures)
        except asyncio.CancelledError:  # the shutdown deadline: say what the broker took
            # Messages handed to the producer go out whatever we do (its close flushes them):
            # wait a little for their acknowledgements, so that they count.
            handed = [f for f in futures if not isinstance(f, BaseException)]
            if handed:
                await asyncio.wait(handed, timeout=ACK_WAIT_S)
            missed = {owner[m] for m, f in enumerate(futures) if isinstance(f, BaseException)
                      or not f.done() or f.cancelled() or f.exception() is not None}  # fmt: skip
            missed.update(owner[len(futures) :])  # (never handed over)
            acked = sorted(set(owner[: len(futures)]) - missed)
            raise Interrupted(np.asarray(acked, dtype=np.int64)) from None
        results = iter(outcomes)
        retry: dict[int, None] = {}
        rejected: dict[str, dict[int, None]] = {}
        last = ""
        for m, future in enumerate(futures):
            result = future if isinstance(future, BaseException) else next(results)
            if not isinstance(result, BaseException):
                continue
            last = f"{type(result).__name__}: {result}"
            if retriable(result):
                retry[owner[m]] = None
            else:
                rejected.setdefault(f"kafka_{type(result).__name__}", {})[owner[m]] = None
        if retry or rejected:
            given_up = {i for found in rejected.values() for i in found}
            raise PartialFailure(
                last, reason="kafka",
                failed=np.asarray([i for i in retry if i not in given_up], dtype=np.int64),
                rejected={k: np.asarray(list(v), dtype=np.int64) for k, v in rejected.items()},
            )  # fmt: skip

    async def _produce(
        self, producer: Any, topic: str, values: list[bytes | None], keys: list[bytes],
        owner: list[int], batch: RecordBatch,
        futures: list[asyncio.Future[Any] | BaseException],
    ) -> list[Any]:  # fmt: skip
        """Hand every message to the producer (``futures`` fills as it goes), then wait for
        the broker's acknowledgements. ``owner`` is each message's record."""
        from aiokafka.errors import KafkaError

        stamps = batch.iso_times()
        ids = batch.message_ids()
        times = batch.time_ms.tolist()
        duplicate = batch.is_duplicate.tolist()
        for m, value in enumerate(values):
            i = owner[m]
            headers = [
                ("message_id", bytes(ids[i])),
                ("event_time", stamps[i].encode()),
                ("is_duplicate", b"true" if duplicate[i] else b"false"),
            ]
            try:
                futures.append(
                    await producer.send(
                        topic, value=value, key=keys[m],
                        headers=headers, timestamp_ms=times[i],
                    )
                )  # fmt: skip
            except KafkaError as exc:  # too large, buffer timeout, producer closed
                futures.append(exc)
        return await asyncio.gather(
            *[f for f in futures if not isinstance(f, BaseException)], return_exceptions=True
        )

    async def aclose(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
