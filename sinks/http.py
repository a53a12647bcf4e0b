"""POST records to an HTTP ingest API (httpx): one JSON reading per request, or arrays.

A send is one request: one record in single mode (the seed's contract), ``batch_size`` as a
JSON array in batch mode. The engine runs ``max_in_flight`` sends at once, each device's
records in order, and retries each failed request by itself while the others go on. One
shared ``httpx.AsyncClient`` (connection pool, keep-alive).

    2xx                          delivered
    429, 408, 5xx                retryable (429/503: ``Retry-After`` honoured)
    connection error, timeout    retryable
    other 4xx                    failed for good, reason ``http_<code>``; the body is logged,
                                 truncated (never the token)
"""

from __future__ import annotations

import email.utils
import ssl
import time

import httpx
import structlog

from producer.errors import ConfigError
from producer.metrics import Metrics
from producer.records import RecordBatch, Schema, json_documents
from producer.settings import HttpSinkSettings
from sinks.base import SinkLimits
from sinks.errors import FatalError, RetryableError, SinkError

log = structlog.get_logger("synthstream.http")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BODY_LOG_CHARS = 200


class HttpSink:
    name = "http"

    def __init__(
        self, settings: HttpSinkSettings, paths: dict[str, str], metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.metrics = metrics or Metrics()
        per_send = settings.batch_size if settings.mode == "batch" else 1
        self.limits = SinkLimits(max_records=per_send, max_in_flight=settings.max_in_flight)
        self._client: httpx.AsyncClient | None = None

    def _build_client(self) -> httpx.AsyncClient:
        s = self.settings
        headers = {"Content-Type": "application/json", "User-Agent": "synthstream"}
        headers.update({k: v.get_secret_value() for k, v in s.headers.items()})
        if s.bearer_token is not None:
            headers["Authorization"] = f"Bearer {s.bearer_token.get_secret_value()}"
        verify: ssl.SSLContext | bool = s.tls_verify
        if s.tls_verify and (s.ca_file or s.client_cert):
            context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
            if s.client_cert:
                context.load_cert_chain(
                    str(s.client_cert), str(s.client_key) if s.client_key else None
                )
            verify = context
        return httpx.AsyncClient(
            base_url=s.base_url,
            headers=headers,
            timeout=httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=s.max_in_flight, max_keepalive_connections=s.max_in_flight
            ),
            verify=verify,
            http2=s.http2,
        )

    async def open(self) -> None:
        # No request here: an ingest API that is down at start is retried, not a bad setting.
        if self._client is None:
            try:
                self._client = self._build_client()
            except ImportError as exc:  # http2 without the h2 package
                raise ConfigError(
                    "SYNTHSTREAM_SINKS__HTTP__HTTP2: HTTP/2 needs the h2 package: "
                    f"pip install 'synthstream[http2]' ({exc})"
                ) from None
            except (OSError, ssl.SSLError) as exc:  # unreadable CA file, certificate or key
                raise ConfigError(
                    f"SYNTHSTREAM_SINKS__HTTP__CA_FILE / CLIENT_CERT / CLIENT_KEY: {exc}"
                ) from None

    async def check(self) -> str:
        await self.open()
        assert self._client is not None
        try:
            response = await self._client.get("/")
        except httpx.HTTPError as exc:
            raise SinkError(f"{self.settings.base_url}: {type(exc).__name__}: {exc}") from exc
        return f"{self.settings.base_url} answered HTTP {response.status_code}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        if self._client is None:
            await self.open()
        assert self._client is not None
        docs = json_documents(schema, batch)
        body = docs[0] if self.settings.mode == "single" else b"[" + b",".join(docs) + b"]"
        path = self.paths[batch.stream]
        try:
            response = await self._client.post(path, content=body)
        except httpx.TransportError as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
            self._count(kind)
            raise RetryableError(f"{kind}: {type(exc).__name__} {exc}".strip(), kind) from exc
        status = response.status_code
        self._count(str(status))
        if 200 <= status < 300:
            return
        text = response.text[:BODY_LOG_CHARS]
        if status in RETRYABLE_STATUS:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"http_{status}: {text}", f"http_{status}", wait)
        log.error("http_rejected", status=status, path=path, records=len(batch), body=text)
        raise FatalError(f"http_{status}: {text}", reason=f"http_{status}")

    def _count(self, code: str) -> None:
        self.metrics.http_responses.labels(self.name, code).inc()


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
