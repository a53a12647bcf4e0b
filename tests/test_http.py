"""The http sink against the reference ingest endpoint, a real server on loopback."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.metrics import Metrics
from tests.conftest import cli, next_event
from tests.services import free_port, ingest
from tests.test_end_to_end import delivered_series, log_events, scrape_until


def stats(port: int, ca: Path | None = None) -> dict[str, int]:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    scheme = "https" if ca else "http"
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/stats", timeout=5,
                                context=context) as response:  # fmt: skip
        result: dict[str, int] = json.loads(response.read())
    return result


def engine_settings(port: int, mode: str = "single", **extra: Any) -> Any:
    return load_settings(
        {
            "metrics": {"enabled": False},
            "backfill": {
                "enabled": True,
                "start": "2024-05-01T00:00:00",
                "end": "2024-05-01T00:00:50",
                "progress": "off",
            },
            "bme280": {
                "devices": 20,
                "sinks": "http",
                "rate": {"interval_s": 1},
                "faults": {"drop_rate": 0.01, "duplicate_rate": 0.02},
            },
            "sinks": {
                "http": {
                    "base_url": f"http://127.0.0.1:{port}",
                    "mode": mode,
                    "batch_size": 25,
                    "max_in_flight": 8,
                }
            },
            "delivery": {"backoff_base_s": 0.01, "backoff_max_s": 0.2, "max_attempts": 50},
            **extra,
        }
    )


async def run_engine(settings: Any) -> tuple[int, Metrics]:
    metrics = Metrics()
    outcome = await Engine(settings, metrics).run(Stopper())
    return outcome.exit_code, metrics


def check_arrivals(accepted_file: Path, metrics: Metrics, endpoint: dict[str, int]) -> None:
    rows = [orjson.loads(x) for x in accepted_file.read_bytes().splitlines()]
    generated = metrics.value("synthstream_records_generated_total", {"stream": "bme280"})
    dropped = metrics.value("synthstream_records_dropped_by_fault_total", {"stream": "bme280"})
    duplicated = metrics.value(
        "synthstream_records_duplicated_by_fault_total", {"stream": "bme280"}
    )
    assert generated - duplicated == 1000, "20 devices x 50 s at 1 s"
    assert dropped > 0
    assert duplicated > 0
    assert len(rows) == generated - dropped, "every reading arrived once, plus the duplicates"
    assert endpoint["accepted"] == len(rows)
    assert endpoint["duplicates"] == duplicated, "the endpoint saw exactly the injected copies"
    assert endpoint.get("rejected", 0) == 0
    assert sum(r["is_duplicate"] for r in rows) == duplicated
    last: dict[str, str] = {}
    for row in rows:
        assert row["timestamp"] >= last.get(row["device_id"], ""), "in per-device order"
        last[row["device_id"]] = row["timestamp"]


@pytest.mark.parametrize("mode", ["single", "batch"])
async def test_readings_arrive_once_in_order_and_valid(tmp_path: Path, mode: str) -> None:
    out = tmp_path / "accepted.jsonl"
    with ingest("--out", str(out)) as (port, _):
        code, metrics = await run_engine(engine_settings(port, mode))
        endpoint = stats(port)
    assert code == 0
    check_arrivals(out, metrics, endpoint)
    requests = endpoint["status_201"]
    assert requests == (endpoint["accepted"] if mode == "single" else pytest.approx(45, abs=15))


async def test_nothing_is_lost_when_the_endpoint_fails_30_percent(tmp_path: Path) -> None:
    out = tmp_path / "accepted.jsonl"
    args = ("--out", str(out), "--fail-rate", "0.3", "--throttle-rate", "0.05",
            "--retry-after", "0.02", "--seed", "1")  # fmt: skip
    with ingest(*args) as (port, _):
        code, metrics = await run_engine(engine_settings(port))
        endpoint = stats(port)
    assert code == 0
    check_arrivals(out, metrics, endpoint)
    for status in ("201", "503", "429"):
        seen = metrics.value("synthstream_http_responses_total", {"sink": "http", "code": status})
        assert seen == endpoint[f"status_{status}"], status
    assert endpoint["status_503"] > 200
    retries = sum(
        metrics.value("synthstream_send_retries_total", {"sink": "http", "reason": r})
        for r in ("http_503", "http_429")
    )
    assert retries > 0


def _outage_env(port: int) -> dict[str, str]:
    return {
        **os.environ, "SYNTHSTREAM_LOG__FORMAT": "json",
        "SYNTHSTREAM_SINKS__HTTP__BASE_URL": f"http://127.0.0.1:{port}",
        "SYNTHSTREAM_BME280__DEVICES": "20", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "0.1",
        "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
        "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0",
        "SYNTHSTREAM_DELIVERY__QUEUE_RECORDS": "300", "SYNTHSTREAM_DELIVERY__LINGER_S": "0",
        "SYNTHSTREAM_DELIVERY__BACKOFF_MAX_S": "0.3", "SYNTHSTREAM_DELIVERY__MAX_ATTEMPTS": "1000",
    }  # fmt: skip


def test_endpoint_down_at_start_fails_fast_or_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    # Nobody listening: one line, status 1, at once (no retries, no library noise).
    down = cli("run", "--sinks", "http", "--duration", "5", "--metrics-port", "0",
               env={"SYNTHSTREAM_SINKS__HTTP__BASE_URL": f"http://127.0.0.1:{port}"})  # fmt: skip
    assert down.returncode == 1, down.stderr
    assert down.stderr.strip().splitlines() == [down.stderr.strip()], down.stderr
    assert "http sink not reachable" in down.stderr
    assert "--wait-for-sinks" in down.stderr
    # Asked to wait: it says so once, and starts when the endpoint comes up.
    out = tmp_path / "accepted.jsonl"
    producer = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--sinks", "http", "--duration", "3",
         "--metrics-port", "0", "--wait-for-sinks", "60"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=_outage_env(port), text=True,
    )  # fmt: skip
    try:
        assert producer.stderr is not None
        waiting = next_event(producer.stderr, "sink_unreachable")
        assert waiting["sink"] == "http"
        assert waiting["waiting_s"] == 60
        with ingest("--out", str(out), port=port) as (_, _server):
            _, err = producer.communicate(timeout=60)
            endpoint = stats(port)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err
    events = log_events(err)
    assert "sink_reachable" in events
    summary = events["synthstream_finished"]["streams"]["bme280"]
    assert summary["generated"] > 0
    assert summary["sinks"]["http"]["delivered"] == summary["generated"]
    assert endpoint["accepted"] == summary["generated"]


def test_endpoint_outage_mid_run_then_recovery(tmp_path: Path) -> None:
    out = tmp_path / "accepted.jsonl"
    with ingest("--out", str(out)) as (port, _first):
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "http", "--duration", "8",
             "--metrics-port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=_outage_env(port), text=True,
        )  # fmt: skip
        assert producer.stderr is not None
        metrics_port = next_event(producer.stderr, "synthstream_started")["metrics_port"]
    try:
        # The endpoint is gone: the producer says so (once; repeats are counted, not
        # printed), and its /metrics count the retries.
        next_event(producer.stderr, "send_retry")
        retries = 'synthstream_send_retries_total{reason="connect",sink="http"}'
        m = scrape_until(metrics_port, retries, 5)
        labels = '{sink="http",stream="bme280"}'
        assert m[f"synthstream_records_in_flight{labels}"] > 0, "a backlog, shown in /metrics"
        assert m['synthstream_send_retries_total{reason="connect",sink="http"}'] >= 5
        assert m[f"synthstream_queue_depth_records{labels}"] <= 300, "bounded by the queue"
        with ingest("--out", str(out), port=port) as (_, _server):
            _, err = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err
    summary = log_events(err)["synthstream_finished"]["streams"]["bme280"]
    assert summary["sinks"]["http"]["delivered"] == summary["generated"]
    accepted = {orjson.loads(line)["message_id"] for line in out.read_bytes().splitlines()}
    assert len(accepted) == summary["generated"], "every record once, across the outage"


def test_a_wrong_token_fails_clearly_without_endless_retries(tmp_path: Path) -> None:
    with ingest("--token", "right-token") as (port, _):
        result = cli(
            "run", "--backfill", "--start", "2024-05-01T00:00:00", "--end", "2024-05-01T00:01:40",
            "--sinks", "http", "--metrics-port", "0",
            env={"SYNTHSTREAM_SINKS__HTTP__BASE_URL": f"http://127.0.0.1:{port}",
                 "SYNTHSTREAM_SINKS__HTTP__BEARER_TOKEN": "wrong-token",
                 "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
                 "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"},
        )  # fmt: skip
        endpoint = stats(port)
    assert result.returncode == 1
    events = log_events(result.stderr)
    assert events["http_rejected"]["status"] == 401
    assert "bearer token" in events["http_rejected"]["body"]
    assert "send_retry" not in events
    assert "wrong-token" not in result.stderr, "secrets are never logged"
    sink = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["http"]
    assert sink["failed"] == events["synthstream_finished"]["streams"]["bme280"]["generated"]
    assert endpoint["status_401"] == sink["failed"]
    # 100 refused requests: one line each of the kind, not 100 (the counts are in /metrics
    # and the summary).
    assert sink["failed"] == 100
    lines = result.stderr.splitlines()
    assert sum('"http_rejected"' in line for line in lines) <= 2
    assert sum('"records_failed"' in line for line in lines) <= 2


def test_sigterm_under_backpressure_stops_in_time_and_counts_what_the_endpoint_holds(
    tmp_path: Path,
) -> None:
    """A slow endpoint (200 ms a request) behind a small queue: SIGTERM stops generation at
    once, the drain ends at the deadline, and ``delivered`` is exactly what the endpoint
    accepted (requests under way at the deadline finish and count)."""
    out = tmp_path / "accepted.jsonl"
    env = {
        **os.environ, "SYNTHSTREAM_LOG__FORMAT": "json",
        "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
        "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0",
        "SYNTHSTREAM_DELIVERY__QUEUE_RECORDS": "1000",
        "SYNTHSTREAM_DELIVERY__SHUTDOWN_TIMEOUT_S": "2",
    }  # fmt: skip
    with ingest("--latency-ms", "200", "--out", str(out)) as (port, _server):
        env["SYNTHSTREAM_SINKS__HTTP__BASE_URL"] = f"http://127.0.0.1:{port}"
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--backfill", "--start", "2024-01-01",
             "--end", "2024-02-01", "--sinks", "http", "--metrics-port", "0",
             "--progress", "off"],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        try:
            assert producer.stderr is not None
            port_m = next_event(producer.stderr, "synthstream_started")["metrics_port"]
            labels = '{sink="http",stream="bme280"}'
            m = scrape_until(port_m, delivered_series("http"), 40)  # records flow
            assert m[f"synthstream_queue_depth_records{labels}"] <= 1000, "the bound holds"
            signalled = time.monotonic()
            producer.send_signal(signal.SIGTERM)
            _, err = producer.communicate(timeout=30)
            took = time.monotonic() - signalled
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.wait()
    assert took < 2 + 2 + 2, f"deadline 2 s, grace 2 s: took {took:.1f} s"
    assert producer.returncode == 1, "records were left undelivered"
    summary = log_events(err)["synthstream_finished"]["streams"]["bme280"]
    sink = summary["sinks"]["http"]
    assert summary["generated"] == sink["delivered"] + sink["failed"] + sink["in_flight"]
    assert summary["generated"] <= 2 * 200_000, "a month is 2.7 M: generation stopped"
    accepted = {orjson.loads(line)["message_id"] for line in out.read_bytes().splitlines()}
    assert len(accepted) == sink["delivered"], "delivered is what the endpoint holds"


def test_tls_verifies_the_endpoint_with_the_given_ca(tmp_path: Path) -> None:
    """HTTPS to the reference endpoint with a certificate of its own: trusted through
    CA_FILE it delivers every record; without it the run stops at once, saying why."""
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    with ingest("--tls-cert", str(cert), "--tls-key", str(key)) as (port, _server):
        env = {"SYNTHSTREAM_SINKS__HTTP__BASE_URL": f"https://127.0.0.1:{port}",
               "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
               "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"}  # fmt: skip
        args = ("run", "--backfill", "--start", "2024-05-01T00:00:00", "--end",
                "2024-05-01T00:01:40", "--sinks", "http", "--metrics-port", "0")  # fmt: skip
        untrusted = cli(*args, env=env)
        trusted = cli(*args, env={**env, "SYNTHSTREAM_SINKS__HTTP__CA_FILE": str(ca)})
        endpoint = stats(port, ca=ca)
    assert untrusted.returncode == 1
    assert "http sink not reachable" in untrusted.stderr
    assert "certificate" in untrusted.stderr.lower()
    assert trusted.returncode == 0, trusted.stderr
    summary = log_events(trusted.stderr)["synthstream_finished"]["streams"]["bme280"]
    assert summary["sinks"]["http"]["delivered"] == summary["generated"] == 100
    assert endpoint["accepted"] == 100


def test_retry_after_is_read_as_seconds_or_as_a_date_against_the_run_clock() -> None:
    from sinks.http import _retry_after

    now = datetime(2024, 2, 29, 23, 59, 30, tzinfo=UTC).timestamp()  # the run's clock
    assert _retry_after("7", now) == 7.0
    assert _retry_after("Fri, 01 Mar 2024 00:00:00 GMT", now) == 30.0
    assert _retry_after("Thu, 29 Feb 2024 23:00:00 GMT", now) == 0.0  # past: at once
    assert _retry_after("soon", now) is None
    assert _retry_after(None, now) is None
