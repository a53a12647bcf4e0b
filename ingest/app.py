"""Reference ingest endpoint for BME280 readings (Starlette, served by uvicorn).

``POST /api/v1/sensors/bme280`` takes one reading or a JSON array of them, validates each
against the seed's ``BME280Reading`` (temperature -40..85, humidity 0..100, pressure
300..1100), and answers 201, or 422 with the reasons (an array is accepted or refused
whole). ``POST /api/v1/streams/<stream>`` takes any stream's records (a JSON object or an
array of them, e.g. a spec stream's with ``SYNTHSTREAM_SINKS__HTTP__BASE_URL`` ending in
``/api/v1/streams``) and checks only that they are objects. It counts accepted, rejected
and duplicate ``message_id``s, serves ``/metrics``, ``/healthz`` and ``/stats`` (the counts
as JSON), and can append what it accepted to a JSON lines file. For tests and demos it fails
on purpose when asked: a share of 503s, a share of 429s with ``Retry-After``, added latency,
and a bearer token it requires (401 otherwise).

    synthstream-ingest --port 8000 --fail-rate 0.3 --throttle-rate 0.05 --out accepted.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sys
from collections import Counter as Tally
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class BME280Reading(BaseModel):
    """The seed's schema; ``message_id`` and ``is_duplicate`` as synthstream sends them."""

    model_config = ConfigDict(extra="allow")

    device_id: str
    temperature_c: float = Field(..., ge=-40, le=85)
    humidity: float = Field(..., ge=0, le=100)
    pressure_hpa: float = Field(..., ge=300, le=1100)
    timestamp: datetime | None = None
    metadata: dict[str, Any] | None = None
    message_id: str | None = None
    is_duplicate: bool | None = None


# What one request may cost: a body of at most MAX_BODY (413 beyond; the producer's HTTP sink
# sends far less per request), headers within h11's 16 KiB, at most MAX_CONNECTIONS at once
# (503 beyond), idle connections closed after KEEP_ALIVE_S.
MAX_BODY = 32 * 1024 * 1024
MAX_CONNECTIONS = 256
KEEP_ALIVE_S = 5

_ONE_OR_MANY: TypeAdapter[BME280Reading | list[BME280Reading]] = TypeAdapter(
    BME280Reading | list[BME280Reading]
)


class IngestSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    fail_rate: float = Field(0.0, ge=0, le=1)
    throttle_rate: float = Field(0.0, ge=0, le=1)
    retry_after_s: float = Field(1.0, ge=0)
    latency_ms: float = Field(0.0, ge=0)
    token: SecretStr | None = None
    out: Path | None = None
    seed: int | None = None


class Ingest:
    """The endpoint's state: counts, seen ids, failure dice, output file."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.random = random.Random(settings.seed)
        self.registry = CollectorRegistry()
        self.readings = Counter(
            "ingest_readings", "Readings by result.", ["result"], registry=self.registry
        )
        self.duplicates = Counter(
            "ingest_duplicate_message_ids", "Accepted readings whose message_id was seen before.",
            registry=self.registry,
        )  # fmt: skip
        self.responses = Counter(
            "ingest_responses", "Responses by status.", ["status"], registry=self.registry
        )
        self.tally: Tally[str] = Tally()
        self.seen: set[str] = set()
        self._out = settings.out.open("ab") if settings.out else None

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        self.responses.labels(str(status)).inc()
        self.tally[f"status_{status}"] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    async def post(self, request: Request) -> Response:
        refused = await self._refuse(request)
        if refused is not None:
            return refused
        body = await _body(request)
        if body is None:
            return self.answer(413, {"detail": f"body: at most {MAX_BODY} bytes"})
        try:
            parsed = _ONE_OR_MANY.validate_json(body)
        except ValidationError as exc:
            count = _count(body)
            reasons = [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)
            ]
            return self._reject(count, reasons)
        readings = parsed if isinstance(parsed, list) else [parsed]
        return self._accept([r.model_dump(mode="json") for r in readings])

    async def post_stream(self, request: Request) -> Response:
        """Any stream's records: a JSON object or an array of objects."""
        refused = await self._refuse(request)
        if refused is not None:
            return refused
        body = await _body(request)
        if body is None:
            return self.answer(413, {"detail": f"body: at most {MAX_BODY} bytes"})
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._reject(1, [{"loc": [], "msg": f"not JSON: {exc}"}])
        records = parsed if isinstance(parsed, list) else [parsed]
        bad = [i for i, record in enumerate(records) if not isinstance(record, dict)]
        if bad:
            return self._reject(len(records), [{"loc": [bad[0]], "msg": "not a JSON object"}])
        return self._accept(records)

    def _reject(self, count: int, reasons: list[dict[str, Any]]) -> Response:
        self.readings.labels("rejected").inc(count)
        self.tally["rejected"] += count
        return self.answer(422, {"detail": reasons[:20]})

    def _accept(self, records: list[dict[str, Any]]) -> Response:
        for record in records:
            message_id = record.get("message_id")
            if message_id is not None:
                if message_id in self.seen:
                    self.duplicates.inc()
                    self.tally["duplicates"] += 1
                self.seen.add(message_id)
        self.readings.labels("accepted").inc(len(records))
        self.tally["accepted"] += len(records)
        if self._out is not None:
            self._out.write(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)
                                     for r in records))  # fmt: skip
            self._out.flush()
        return self.answer(201, {"accepted": len(records)})

    async def _refuse(self, request: Request) -> Response | None:
        """The failures asked for (latency, a wrong token, 503s and 429s), or None."""
        s = self.settings
        if s.latency_ms:
            await asyncio.sleep(s.latency_ms / 1000)
        if s.token is not None:
            expected = f"Bearer {s.token.get_secret_value()}"
            if request.headers.get("authorization") != expected:
                return self.answer(401, {"detail": "missing or wrong bearer token"})
        dice = self.random.random()
        if dice < s.fail_rate:
            return self.answer(503, {"detail": "injected failure"})
        if dice < s.fail_rate + s.throttle_rate:
            return self.answer(
                429, {"detail": "injected throttling"},
                headers={"Retry-After": f"{s.retry_after_s:g}"},
            )  # fmt: skip
        return None

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        """Counts so far; accepted, rejected and duplicates always (zero included)."""
        counts = {"accepted": 0, "rejected": 0, "duplicates": 0, **self.tally}
        return JSONResponse(counts)

    async def root(self, request: Request) -> Response:
        return JSONResponse({"service": "synthstream reference ingest endpoint"})


async def _body(request: Request) -> bytes | None:
    """The request's body, or None when it is larger than MAX_BODY (not read past it)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _count(body: bytes) -> int:
    """How many records a refused body held (an array's length; 1 for anything else)."""
    if not body.startswith(b"["):
        return 1
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 1
    return len(parsed) if isinstance(parsed, list) else 1


def create_app(settings: IngestSettings) -> Starlette:
    ingest = Ingest(settings)
    app = Starlette(
        routes=[
            Route("/api/v1/sensors/bme280", ingest.post, methods=["POST"]),
            Route("/api/v1/streams/{stream}", ingest.post_stream, methods=["POST"]),
            Route("/metrics", ingest.metrics),
            Route("/healthz", ingest.healthz),
            Route("/stats", ingest.stats),
            Route("/", ingest.root),
        ]
    )
    app.state.ingest = ingest
    return app


class _Server(uvicorn.Server):
    """Prints one JSON line with the bound port once listening (port 0 picks one)."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        port = self.servers[0].sockets[0].getsockname()[1] if self.servers else None
        print(orjson.dumps({"event": "ingest_listening", "port": port}).decode(), flush=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"synthstream-ingest: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="synthstream-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 503 answers")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="share of 429 answers")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a 429, s")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN'")
    parser.add_argument("--out", type=Path, help="append accepted readings to this JSONL file")
    parser.add_argument("--seed", type=int, help="seed of the failure dice")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="... and this private key (PEM)")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        print("synthstream-ingest: error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        settings = IngestSettings(
            host=args.host, port=args.port, fail_rate=args.fail_rate,
            throttle_rate=args.throttle_rate, retry_after_s=args.retry_after,
            latency_ms=args.latency_ms, token=args.token, out=args.out, seed=args.seed,
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"synthstream-ingest: error: --{first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    # Bound here, not by uvicorn: a busy port is one line and status 2, not uvicorn's error
    # and status 3.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        print(f"synthstream-ingest: error: --host/--port: cannot listen on {settings.host}:"
              f"{settings.port}: {exc.strerror or exc}", file=sys.stderr)  # fmt: skip
        return 2
    tls = args.tls_cert is not None
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning",
        access_log=False, lifespan="off", http="h11", limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_S,
        ssl_certfile=str(args.tls_cert) if tls else None,
        ssl_keyfile=str(args.tls_key) if tls else None,
    )  # fmt: skip
    _Server(config).run(sockets=[sock])
    return 0
