"""POST records to an HTTP ingest API (httpx): one JSON reading per request, or arrays.

One shared ``httpx.AsyncClient`` (connection pool, keep-alive). A ``send`` spreads the batch
over ``max_in_flight`` lanes by entity, so requests run concurrently while each device's
records are sent in order. A lane that meets a retryable answer stops there: the rest of its
records are returned for resending (in order) through the engine's retry path.

    2xx                          delivered
    429, 408, 5xx                retryable (429/503: ``Retry-After`` honoured)
    connection error, timeout    retryable
    other 4xx                    failed for good, reason ``http_<code>``; the body is logged,
                                 truncated (never the token)
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np
import structlog

from producer.errors import ConfigError
from producer.metrics import Metrics
from producer.records import RecordBatch, Schema, json_documents
from producer.settings import HttpSinkSettings
from sinks.base import SinkLimits
from sinks.errors import PartialFailure, SinkError

log = structlog.get_logger("synthstream.http")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BODY_LOG_CHARS = 200


@dataclass
class _Outcome:
    """What happened to one send's records, position by position."""

    retry: list[int] = field(default_factory=list)
    rejected: dict[str, list[int]] = field(default_factory=dict)
    retry_after_s: float | None = None
    last_error: str = ""


class HttpSink:
    name = "http"

    def __init__(
        self, settings: HttpSinkSettings, paths: dict[str, str], metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.metrics = metrics or Metrics()
        per_send = settings.max_records or (
            settings.batch_size * settings.max_in_flight * 8 if settings.mode == "batch" else 2000
        )
        self.limits = SinkLimits(max_records=per_send)
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
        docs = json_documents(schema, batch)
        lanes = _lanes(batch.entity, self.settings.max_in_flight)
        outcome = _Outcome()
        path = self.paths[batch.stream]
        size = self.settings.batch_size if self.settings.mode == "batch" else 1
        async with asyncio.TaskGroup() as group:
            for lane in lanes:
                group.create_task(self._lane(path, docs, lane, size, outcome))
        if outcome.retry or outcome.rejected:
            raise PartialFailure(
                outcome.last_error,
                failed=np.sort(np.asarray(outcome.retry, dtype=np.int64)),
                reason=outcome.last_error.split(":", 1)[0] or "http",
                retry_after_s=outcome.retry_after_s,
                rejected={k: np.asarray(v, dtype=np.int64) for k, v in outcome.rejected.items()},
            )

    async def _lane(
        self, path: str, docs: list[bytes], lane: Sequence[int], size: int,
        outcome: _Outcome,
    ) -> None:  # fmt: skip
        assert self._client is not None
        for start in range(0, len(lane), size):
            chunk = lane[start : start + size]
            body = docs[chunk[0]] if size == 1 else b"[" + b",".join(docs[i] for i in chunk) + b"]"
            started = time.perf_counter()
            try:
                response = await self._client.post(path, content=body)
            except httpx.TransportError as exc:
                kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
                self._count(kind)
                outcome.last_error = f"{kind}: {type(exc).__name__} {exc}".strip()
                outcome.retry.extend(lane[start:])
                return
            self._count(str(response.status_code))
            status = response.status_code
            if 200 <= status < 300:
                self.metrics.send_latency.labels(self.name).observe(time.perf_counter() - started)
                continue
            text = response.text[:BODY_LOG_CHARS]
            if status in RETRYABLE_STATUS:
                outcome.last_error = f"http_{status}: {text}"
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None:
                    outcome.retry_after_s = max(outcome.retry_after_s or 0.0, wait)
                outcome.retry.extend(lane[start:])
                return
            reason = f"http_{status}"
            outcome.rejected.setdefault(reason, []).extend(chunk)
            outcome.last_error = f"{reason}: {text}"
            log.error("http_rejected", status=status, path=path, records=len(chunk), body=text)

    def _count(self, code: str) -> None:
        self.metrics.http_responses.labels(self.name, code).inc()


def _lanes(entity: np.ndarray, count: int) -> list[list[int]]:
    """Batch positions by lane (entity modulo count), each lane in batch order."""
    lane_of = entity % count
    order = np.argsort(lane_of, kind="stable")
    bounds = np.flatnonzero(np.diff(lane_of[order])) + 1
    return [part.tolist() for part in np.split(order, bounds) if part.size]


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
