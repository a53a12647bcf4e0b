"""What a stranger can send to the two HTTP ports, the producer's metrics and control port and
the reference ingest endpoint: oversized request lines, headers and bodies, slow clients,
many connections, bad JSON, foreign origins. Each is refused with its status and one line,
within a time bound, and the process stays within a memory bound and answers afterwards."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from producer.control import MIN_MULTIPLIER, handler
from tests.conftest import next_event, running
from tests.services import ingest
from tests.test_control import control_of

MB = 1024 * 1024


def rss(pid: int) -> int:
    """The process' resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def exchange(port: int, data: bytes, within_s: float = 10.0) -> bytes:
    """Send ``data`` (as far as the server takes it) and read the answer until the server
    closes; fail after ``within_s``."""
    with socket.create_connection(("127.0.0.1", port), timeout=within_s) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        return read_all(s, within_s)


def read_all(s: socket.socket, within_s: float) -> bytes:
    deadline = time.monotonic() + within_s
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            chunks.append(chunk)
            assert time.monotonic() < deadline, "the server kept the connection open"
    return b"".join(chunks)


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def producer() -> Iterator[tuple[int, int]]:
    """A live run with control on (loopback, no token): its pid and metrics port."""
    env = {"SYNTHSTREAM_CONTROL__ENABLED": "true", "SYNTHSTREAM_BME280__DEVICES": "20"}
    with running("run", "--sinks", "null", "--metrics-port", "0", env=env) as proc:
        assert proc.stderr is not None
        port = next_event(proc.stderr, "synthstream_started")["metrics_port"]
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        yield proc.pid, port


def get(port: int, path: str = "/metrics", extra: bytes = b"") -> bytes:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + extra + b"\r\n")


def post(port: int, path: str, body: bytes, headers: str = "") -> tuple[int, dict[str, str]]:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
            f"{headers}\r\n").encode()  # fmt: skip
    answer = exchange(port, head + body)
    return status(answer), orjson.loads(answer.split(b"\r\n\r\n", 1)[1] or b"{}")


def test_oversized_lines_headers_and_bodies_are_refused_with_their_status(
    producer: tuple[int, int],
) -> None:
    _, port = producer
    assert status(get(port)) == 200
    assert status(get(port, "/metrics?" + "a" * 20_000)) == 414
    assert status(get(port, "/metrics?" + "a" * 100_000)) == 431
    assert status(get(port, extra=b"X-A: b\r\n" * 200)) == 431  # too many
    assert status(get(port, extra=b"X-A: " + b"b" * 10_000 + b"\r\n")) == 431  # too long
    assert status(get(port, extra=b"X-A: " + b"b" * 60_000 + b"\r\n")) == 431  # too much
    big = b"POST /control/streams/bme280 HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n"
    assert status(exchange(port, big + b"x" * 10 * MB)) == 413
    chunked = b"POST /control/streams/bme280 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert status(exchange(port, chunked + b"5\r\nhello\r\n0\r\n\r\n")) == 411
    assert status(exchange(port, b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n")) == 400
    assert status(get(port)) == 200, "and it still answers"


def test_a_header_flood_costs_the_run_no_memory(producer: tuple[int, int]) -> None:
    """Three connections each sending 7,000 headers of 60 KB (420 MB each): before the limits
    this took a run from 99 MB to 1.6 GB. Now each is cut after its first 32 KiB."""
    pid, port = producer
    assert status(get(port)) == 200
    baseline = rss(pid)
    value = b"f" * 60_000 + b"\r\n"

    def flood() -> None:
        gone = contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s, gone:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            for i in range(7_000):
                s.sendall(b"X-Flood-%d: " % i + value)

    started = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "the server kept reading the flood"
    assert time.monotonic() - started < 30
    assert rss(pid) - baseline < 50 * MB, f"{(rss(pid) - baseline) / MB:.0f} MB more"
    assert status(get(port)) == 200


def test_slow_clients_are_cut_off_and_many_connections_are_turned_away(
    producer: tuple[int, int],
) -> None:
    from producer.server import MAX_CONNECTIONS, REQUEST_TIMEOUT_S

    _, port = producer
    idle = [socket.create_connection(("127.0.0.1", port), timeout=15)
            for _ in range(MAX_CONNECTIONS + 8)]  # fmt: skip
    try:
        for s in idle:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        started = time.monotonic()
        while status(get(port)) != 503:  # once the server has taken the idle ones in
            assert time.monotonic() - started < 2, "a connection over the limit was served"
        assert time.monotonic() - started < REQUEST_TIMEOUT_S, "answered at once"
        answers = [read_all(s, REQUEST_TIMEOUT_S + 5) for s in idle]
        assert time.monotonic() - started < REQUEST_TIMEOUT_S + 5, "slow ones are cut off"
        codes = [status(a) for a in answers]
        assert codes.count(408) == MAX_CONNECTIONS
        assert codes.count(503) == 8
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while status(get(port)) != 200:  # the slots come back as the idle ones end
        assert time.monotonic() < deadline, "the port did not come back"
        time.sleep(0.1)


def test_the_control_api_refuses_other_sites_and_bodies_that_are_not_json(
    producer: tuple[int, int],
) -> None:
    _, port = producer
    path = "/control/streams/bme280"
    json_type = "Content-Type: application/json\r\n"
    assert post(port, path, b'{"paused": false}', json_type)[0] == 200
    code, body = post(port, path, b'{"paused": true}', "Content-Type: text/plain\r\n")
    assert (code, body["error"]) == (415, "content-type: accepted: application/json")
    code, body = post(port, path, b'{"paused": true}', json_type + "Origin: http://evil.test\r\n")
    assert code == 403
    assert body["error"].startswith("origin: http://evil.test")
    head = f"POST {path} HTTP/1.1\r\nHost: evil.test:{port}\r\nContent-Length: 16\r\n{json_type}"
    answer = exchange(port, head.encode() + b"\r\n" + b'{"paused": true}')
    assert status(answer) == 403
    assert b"host: evil.test" in answer
    same = json_type + f"Origin: http://127.0.0.1:{port}\r\n"
    assert post(port, path, b'{"paused": false}', same)[0] == 200, "the page's own origin"
    assert post(port, path, b"{not json", json_type)[0] == 400


@pytest.mark.parametrize(
    ("path", "body", "headers", "code"),
    [
        ("/control/state", b"", {"authorization": "Bearer \u00e9t\u00e9"}, 401),
        ("/control/streams/bme280", b'{"scenario": []}', {}, 422),
        ("/control/streams/bme280", b"{}", {}, 422),
        ("/control/streams/bme280/events", b"{}", {}, 422),
        ("/control/streams/bme280/events", b'{"kind": []}', {}, 422),
        ("/control/streams/bme280/events", b'{"kind": {}}', {}, 422),
        ("/control/streams/bme280/events", b'{"kind": "outage", "seconds": []}', {}, 422),
        ("/control/streams/bme280", b'{"rate_multiplier": 5e-324}', {}, 422),
        ("/control/streams/bme280", b'{"rate_multiplier": 1e400}', {}, 400),
        ("/control/streams/bme280", b'{"paused": "yes"}', {}, 422),
        ("/control/streams/bme280", b"[]", {}, 400),
        ("/control/streams/bme280", b'"x"', {}, 400),
    ],
)  # fmt: skip
def test_a_bad_control_request_is_one_line_with_its_status(
    path: str, body: bytes, headers: dict[str, str], code: int
) -> None:
    respond = handler(control_of("bme280"), "s3cret" if "authorization" in headers else None)
    headers = {"content-type": "application/json", "host": "127.0.0.1:9108", **headers}
    status_line, ctype, out = respond("POST" if body else "GET", path, headers, body)
    assert status_line.startswith(str(code)), (status_line, out)
    assert ctype == "application/json"
    assert list(orjson.loads(out)) == ["error"]


def test_the_smallest_multiplier_is_stated_and_taken() -> None:
    respond = handler(control_of("bme280"), None)
    headers = {"content-type": "application/json", "host": "localhost:9108"}
    ok = orjson.dumps({"rate_multiplier": MIN_MULTIPLIER})
    assert respond("POST", "/control/streams/bme280", headers, ok)[0].startswith("200")
    zero = orjson.dumps({"rate_multiplier": 0})
    assert respond("POST", "/control/streams/bme280", headers, zero)[0].startswith("200")
    small = orjson.dumps({"rate_multiplier": MIN_MULTIPLIER / 2})
    _, _, out = respond("POST", "/control/streams/bme280", headers, small)
    assert f"from {MIN_MULTIPLIER:g}" in orjson.loads(out)["error"]


def test_the_ingest_endpoint_bounds_what_it_reads() -> None:
    from ingest.app import MAX_BODY

    with ingest() as (port, proc):
        baseline = rss(proc.pid)
        path = "/api/v1/streams/x"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Type: application/json\r\n"
        )
        started = time.monotonic()
        big = f"{head}Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        assert status(exchange(port, big + b"[" * (MAX_BODY + 1))) == 413
        assert time.monotonic() - started < 10
        flood = head.encode() + (b"X-A: " + b"b" * 60_000 + b"\r\n") * 200  # (and no end)
        assert status(exchange(port, flood)) == 400, "headers past h11's 16 KiB"
        bad = f"{head}Content-Length: 9\r\n\r\n".encode() + b"{not json"
        assert status(exchange(port, bad)) == 422
        bad_array = f"{head}Content-Length: 2\r\n\r\n".encode() + b"[{"
        assert status(exchange(port, bad_array)) == 422
        good = f"{head}Content-Length: 9\r\n\r\n".encode() + b'[{"a":1}]'
        assert status(exchange(port, good)) == 201
        assert rss(proc.pid) - baseline < 50 * MB
