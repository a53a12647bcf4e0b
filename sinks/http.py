"""POST records to an HTTP ingest API: one JSON reading per request, or arrays.

A send is one request: one record in single mode (the seed's contract), ``batch_size`` as a
JSON array in batch mode. The engine runs ``max_in_flight`` sends at once, each device's
records in order, and retries each failed request by itself while the others go on. One
pooled keep-alive client: aiohttp for HTTP/1.1, httpx with h2 for HTTP/2.

    2xx                          delivered
    429, 408, 5xx                retryable (429/503: ``Retry-After`` honoured)
    connection error, timeout    retryable
    other 4xx                    failed for good, reason ``http_<code>``; the body is logged,
                                 truncated (never the token)
"""

from __future__ import annotations

import email.utils
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field, SecretStr

from producer.clock import Clock, WallClock
from producer.encoding import json_documents
from producer.errors import ConfigError
from producer.metrics import Metrics
from producer.plugins import AddressedSinkSettings, SinkContext
from producer.sink import BaseSink, FatalError, Payload, RetryableError, Sink, SinkError, SinkLimits

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BODY_LOG_CHARS = 200


class HttpSinkSettings(AddressedSinkSettings):
    """POST records to an HTTP ingest API, such as the BME280 ingest endpoint."""

    KIND: ClassVar[str] = "http"
    DESCRIPTION: ClassVar[str] = "POST to an HTTP ingest API, one record or a JSON array"
    NETWORK: ClassVar[bool] = True
    OVERRIDES: ClassVar[str] = "paths"
    REPLACES: ClassVar[str | None] = "http_path"

    base_url: str = Field("http://127.0.0.1:8000", description="Scheme, host and port.")
    destination: str = Field(
        "/{channel}", description="Path of each channel: a template over {stream} and "
        "{channel} (a stream's own default path comes before this default).",
    )  # fmt: skip
    paths: dict[str, str] = Field(
        default_factory=dict, description="Paths per channel or stream, as JSON, e.g. "
        '{"bme280": "/api/v1/sensors/bme280"}; they win over DESTINATION.',
    )  # fmt: skip
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

    def build(self, context: SinkContext) -> Sink:
        return HttpSink(self, context.destinations, context.metrics, context.clock)


class HttpSink(BaseSink):
    name = "http"

    def __init__(
        self, settings: HttpSinkSettings, paths: dict[str, str], metrics: Metrics | None = None,
        clock: Clock | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.clock = clock or WallClock()
        self.paths = paths
        self.metrics = metrics or Metrics()
        per_send = settings.batch_size if settings.mode == "batch" else 1
        self.limits = SinkLimits(max_records=per_send, max_in_flight=settings.max_in_flight)
        self._client: _Transport | None = None

    def _headers(self) -> dict[str, str]:
        s = self.settings
        headers = {"Content-Type": "application/json", "User-Agent": "synthstream"}
        headers.update({k: v.get_secret_value() for k, v in s.headers.items()})
        if s.bearer_token is not None:
            headers["Authorization"] = f"Bearer {s.bearer_token.get_secret_value()}"
        return headers

    def _tls(self) -> ssl.SSLContext | bool:
        s = self.settings
        if s.tls_verify and (s.ca_file or s.client_cert):
            context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
            if s.client_cert:
                context.load_cert_chain(
                    str(s.client_cert), str(s.client_key) if s.client_key else None
                )
            return context
        return s.tls_verify

    async def open(self) -> None:
        # No request here: the engine's probe at start asks the endpoint (``check``).
        if self._client is None:
            try:
                tls = self._tls()
                if self.settings.http2:
                    self._client = _Httpx(self.settings, self._headers(), tls)
                else:
                    self._client = _Aiohttp(self.settings, self._headers(), tls)
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
            status = (await self._client.request("GET", "/", None)).status
        except _Unreachable as exc:
            raise SinkError(f"{self.settings.base_url}: {exc}") from exc
        return f"{self.settings.base_url} answered HTTP {status}"

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, payload: Payload) -> None:
        if self._client is None:
            await self.open()
        assert self._client is not None
        batch = payload.batch
        docs = json_documents(payload.schema, batch)
        body = docs[0] if self.settings.mode == "single" else b"[" + b",".join(docs) + b"]"
        path = self.paths[batch.stream]
        try:
            answer = await self._client.request("POST", path, body)
        except _Unreachable as exc:
            self._count(exc.kind)
            raise RetryableError(f"{exc.kind}: {exc}", exc.kind,
                                 unknown_outcome=exc.kind == "timeout") from exc  # fmt: skip
        status = answer.status
        if 200 <= status < 300 or status in RETRYABLE_STATUS:
            self._count(str(status))
        if 200 <= status < 300:
            return
        text = answer.text[:BODY_LOG_CHARS]
        if status in RETRYABLE_STATUS:
            wait = _retry_after(answer.retry_after, self.clock.now_ms() / 1000)
            raise RetryableError(f"http_{status}: {text}", f"http_{status}", wait)
        rejected = {"status": status, "path": path, "records": len(batch), "body": text}
        self.metrics.http_answered(self.name, str(status), rejected)
        raise FatalError(f"http_{status}: {text}", reason=f"http_{status}")

    def _count(self, code: str) -> None:
        self.metrics.http_answered(self.name, code)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after: str | None
    text: str  # the body, for errors only (2xx bodies are not read into text)


class _Unreachable(Exception):
    """No answer: ``kind`` is ``connect`` or ``timeout``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Transport(Protocol):
    """One pooled, keep-alive client; ``request`` raises ``_Unreachable`` when no answer
    came, and returns any answer, whatever its status."""

    async def request(self, method: str, path: str, body: bytes | None) -> _Answer: ...

    async def aclose(self) -> None: ...


class _Aiohttp:
    """HTTP/1.1 through aiohttp: about 10x the requests a second of httpx here (the sink's
    ceiling in single mode, one reading per request, was httpx's connection handling)."""

    def __init__(self, s: HttpSinkSettings, headers: dict[str, str], tls: Any) -> None:
        import aiohttp  # (the client library loads when the sink is used)

        self.aiohttp = aiohttp
        self.base = s.base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=s.connect_timeout_s, sock_read=s.timeout_s
            ),
            connector=aiohttp.TCPConnector(limit=s.max_in_flight, ssl=tls),
            skip_auto_headers=("Accept-Encoding",),
        )

    async def request(self, method: str, path: str, body: bytes | None) -> _Answer:
        try:
            async with self.session.request(method, self.base + path, data=body) as response:
                raw = await response.read()
                status = response.status
                text = "" if 200 <= status < 300 else raw.decode("utf-8", "replace")
                return _Answer(status, response.headers.get("Retry-After"), text)
        except TimeoutError as exc:
            raise _Unreachable("timeout", f"TimeoutError {exc}".strip()) from exc
        except self.aiohttp.ClientError as exc:
            raise _Unreachable("connect", f"{type(exc).__name__} {exc}".strip()) from exc

    async def aclose(self) -> None:
        await self.session.close()


class _Httpx:
    """HTTP/2 (``SYNTHSTREAM_SINKS__HTTP__HTTP2``) through httpx and h2."""

    def __init__(self, s: HttpSinkSettings, headers: dict[str, str], tls: Any) -> None:
        import httpx

        self.httpx = httpx
        self.client = httpx.AsyncClient(
            base_url=s.base_url,
            headers=headers,
            timeout=httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=s.max_in_flight, max_keepalive_connections=s.max_in_flight
            ),
            verify=tls,
            http2=True,
        )

    async def request(self, method: str, path: str, body: bytes | None) -> _Answer:
        try:
            response = await self.client.request(method, path, content=body)
        except self.httpx.TransportError as exc:
            kind = "timeout" if isinstance(exc, self.httpx.TimeoutException) else "connect"
            raise _Unreachable(kind, f"{type(exc).__name__} {exc}".strip()) from exc
        status = response.status_code
        text = "" if 200 <= status < 300 else response.text
        return _Answer(status, response.headers.get("Retry-After"), text)

    async def aclose(self) -> None:
        await self.client.aclose()


def _retry_after(value: str | None, now_s: float) -> float | None:
    """``Retry-After`` as seconds or an HTTP date (from ``now_s``, Unix seconds); None if
    absent or unreadable."""
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
    return max(0.0, when.timestamp() - now_s)
