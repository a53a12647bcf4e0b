"""The built-in sink kinds' settings fields: what each sink module takes (the kinds, with
their builds, are in ``sinks/settings.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from producer.plugins import SinkSettings


class StdoutSinkFields(SinkSettings):
    """JSON lines on standard output (logs go to standard error)."""

    max_records: int = Field(1000, ge=1, description="Records per write.")


class FileSinkFields(SinkSettings):
    """Files, one set per stream under <dir>/<stream>/, rolled by size or event time."""

    dir: Path = Field(Path("data/out"), description="Output folder (--out).")
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


class HttpSinkFields(SinkSettings):
    """POST records to an HTTP ingest API, such as the BME280 ingest endpoint."""

    base_url: str = Field("http://127.0.0.1:8000", description="Scheme, host and port.")
    mode: Literal["single", "batch"] = Field(
        "single", description="single: one JSON reading per request; batch: a JSON array."
    )
    batch_size: int = Field(100, ge=1, le=100_000, description="Records per request in batch mode.")
    max_in_flight: int = Field(
        8, ge=1, le=1024, description="Concurrent requests (a device's records stay in order)."
    )
    timeout_s: float = Field(10.0, gt=0, description="Read/write timeout per request.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout.")
    bearer_token: SecretStr | None = Field(
        None, description="Sent as 'Authorization: Bearer <token>'; never logged."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description='Extra headers as JSON, e.g. {"X-API-Key": "..."}.'
    )
    tls_verify: bool = Field(True, description="Verify the server's TLS certificate.")
    ca_file: Path | None = Field(None, description="CA bundle to verify the server with.")
    client_cert: Path | None = Field(None, description="Client certificate (PEM) for mTLS.")
    client_key: Path | None = Field(None, description="Client private key (PEM) for mTLS.")
    http2: bool = Field(False, description="Use HTTP/2 (needs the h2 package).")


class KafkaSinkFields(SinkSettings):
    """Kafka topics through aiokafka: one producer per process, key = the stream's key."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port...]")
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


class AwsFields(SinkSettings):
    """Where an AWS service is and who calls it (Kinesis, S3)."""

    endpoint_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:4566 for LocalStack; unset: AWS."
    )
    region: str = Field("us-east-1", description="AWS region (or AWS_DEFAULT_REGION).")
    access_key_id: SecretStr | None = Field(
        None, description="Unset: the standard AWS credential chain (AWS_ACCESS_KEY_ID, ...)."
    )
    secret_access_key: SecretStr | None = Field(None, description="Never logged.")


class KinesisSinkFields(AwsFields):
    """Kinesis Data Streams through aioboto3 (LocalStack locally): PutRecords batches."""

    create_streams: bool = Field(True, description="Create a missing stream at start.")
    shards: int = Field(
        1, ge=1, description="Shards of a created stream (1 MB/s, 1,000 rec/s each)."
    )
    explicit_hash_key: bool = Field(
        False, description="Send an explicit hash key from the partition key's hash."
    )
    max_records: int = Field(500, ge=1, le=500, description="Records per PutRecords call.")


class PostgresSinkFields(SinkSettings):
    """PostgreSQL through psycopg 3: a table per channel, appended to with COPY."""

    dsn: str = Field(
        "postgresql://127.0.0.1:5432/synthstream",
        description="libpq connection string or URL (a password here is never logged).",
    )
    password: SecretStr | None = Field(None, description="Unset: the DSN's, or PGPASSWORD.")
    schema_name: str = Field("public", description="The schema of the tables.")
    table_prefix: str = Field("", description="Put before each channel's name.")
    create_database: bool = Field(True, description="Create the DSN's database if missing.")
    create_tables: bool = Field(True, description="Create a missing table from the schema.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    max_records: int = Field(10_000, ge=1, description="Records per COPY transaction.")


class S3SinkFields(AwsFields):
    """S3 objects through aioboto3 (LocalStack locally): an object per send and event hour."""

    bucket: str = Field("synthstream", min_length=3, description="The bucket.")
    prefix: str = Field("synthstream", description="Put before <stream>/dt=.../hour=.../.")
    create_bucket: bool = Field(False, description="Create the bucket if it is missing.")
    format: Literal["jsonl", "csv", "parquet"] = Field("jsonl", description="Object format.")
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field(
        "snappy", description="Parquet compression."
    )
    multipart_bytes: int = Field(
        16 * 2**20, ge=5 * 2**20, description="Objects above this go up in parts this big."
    )
    max_records: int = Field(100_000, ge=1, description="Records per send (objects per hour).")


class NullSinkFields(SinkSettings):
    """Nothing: every record counts as delivered (benchmarks, dry runs)."""
