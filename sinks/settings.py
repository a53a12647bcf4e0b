"""The built-in sink kinds: each one's settings (the fields, from ``sinks/fields.py``) and how
it builds (the sink's module, and its client library, are imported only when it is used)."""

from __future__ import annotations

from typing import ClassVar

from producer.plugins import SinkContext
from sinks.base import Sink
from sinks.fields import (
    FileSinkFields,
    HttpSinkFields,
    KafkaSinkFields,
    KinesisSinkFields,
    NullSinkFields,
    PostgresSinkFields,
    S3SinkFields,
    StdoutSinkFields,
)


class StdoutSinkSettings(StdoutSinkFields):
    """JSON lines on standard output (logs go to standard error)."""

    KIND: ClassVar[str] = "stdout"
    DESCRIPTION: ClassVar[str] = "JSON lines on standard output"

    def build(self, context: SinkContext) -> Sink:
        from sinks.stdout import StdoutSink

        return StdoutSink(self)


class FileSinkSettings(FileSinkFields):
    """Files, one set per stream under <dir>/<stream>/, rolled by size or event time."""

    KIND: ClassVar[str] = "file"
    DESCRIPTION: ClassVar[str] = "JSON lines, CSV or Parquet files, rolled by event time"

    def build(self, context: SinkContext) -> Sink:
        from sinks.file import FileSink

        return FileSink(self, context.suffix)


class HttpSinkSettings(HttpSinkFields):
    """POST records to an HTTP ingest API, such as the BME280 ingest endpoint."""

    KIND: ClassVar[str] = "http"
    DESCRIPTION: ClassVar[str] = "POST to an HTTP ingest API, one record or a JSON array"
    DESTINATION: ClassVar[str | None] = "http_path"
    NETWORK: ClassVar[bool] = True

    def build(self, context: SinkContext) -> Sink:
        from sinks.http import HttpSink  # network clients are imported when used

        return HttpSink(self, context.destinations, context.metrics, context.clock)


class KafkaSinkSettings(KafkaSinkFields):
    """Kafka topics through aiokafka: one producer per process, key = the stream's key."""

    KIND: ClassVar[str] = "kafka"
    DESCRIPTION: ClassVar[str] = "Kafka topics (aiokafka), keyed, idempotent"
    DESTINATION: ClassVar[str | None] = "kafka_topic"
    NETWORK: ClassVar[bool] = True

    def build(self, context: SinkContext) -> Sink:
        from sinks.kafka import KafkaSink

        return KafkaSink(self, context.destinations)


class KinesisSinkSettings(KinesisSinkFields):
    """Kinesis Data Streams through aioboto3 (LocalStack locally): PutRecords batches."""

    KIND: ClassVar[str] = "kinesis"
    DESCRIPTION: ClassVar[str] = "Kinesis Data Streams (aioboto3), PutRecords"
    DESTINATION: ClassVar[str | None] = "kinesis_stream"
    NETWORK: ClassVar[bool] = True

    def build(self, context: SinkContext) -> Sink:
        from sinks.kinesis import KinesisSink  # aioboto3 alone takes 0.3 s to import

        return KinesisSink(self, context.destinations)


class PostgresSinkSettings(PostgresSinkFields):
    """PostgreSQL through psycopg 3: a table per channel, appended to with COPY."""

    KIND: ClassVar[str] = "postgres"
    DESCRIPTION: ClassVar[str] = "PostgreSQL tables (psycopg 3), a table per channel, COPY"
    NETWORK: ClassVar[bool] = True

    def build(self, context: SinkContext) -> Sink:
        from sinks.postgres import PostgresSink

        return PostgresSink(self, context.destinations)


class S3SinkSettings(S3SinkFields):
    """S3 objects through aioboto3 (LocalStack locally): an object per send and event hour."""

    KIND: ClassVar[str] = "s3"
    DESCRIPTION: ClassVar[str] = "S3 objects (aioboto3) by stream, day and hour"
    NETWORK: ClassVar[bool] = True

    def build(self, context: SinkContext) -> Sink:
        from sinks.s3 import S3Sink

        return S3Sink(self, context.destinations, context.suffix)


class NullSinkSettings(NullSinkFields):
    """Nothing: every record counts as delivered (benchmarks, dry runs)."""

    KIND: ClassVar[str] = "null"
    DESCRIPTION: ClassVar[str] = "discard every record (counted as delivered)"

    def build(self, context: SinkContext) -> Sink:
        from sinks.stdout import NullSink

        return NullSink()
