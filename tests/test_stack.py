"""The docker compose stack, run natively: the reference ingest endpoint, LocalStack, a
Kafka-protocol broker, the producer (development profile) and a real Prometheus server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, next_event
from tests.services import free_port, ingest, kafka_broker, localstack

pytestmark = pytest.mark.services  # a real server (scripts/ start it)

ROUTES = {
    ("bme280", "http"),
    ("bme280", "kafka"),
    ("air_quality", "kinesis"),
    ("transactions", "kafka"),
    ("user-events", "kafka"),
    ("product-updates", "kafka"),
}


def query(port: int, promql: str) -> dict[tuple[str, str], float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    return {
        (r["metric"]["stream"], r["metric"]["sink"]): float(r["value"][1])
        for r in body["data"]["result"]
    }


def wait_until(condition: object, what: str, seconds: float = 90) -> None:
    """Poll a condition of the running stack (not a fixed sleep) until it holds."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_the_stack_runs_natively_and_prometheus_sees_every_route(tmp_path: Path) -> None:
    with ingest() as (ingest_port, _), kafka_broker() as bootstrap, localstack() as kinesis:
        env = {
            **os.environ, "SYNTHSTREAM_PROFILE": "development", "SYNTHSTREAM_LOG__FORMAT": "json",
            "SYNTHSTREAM_STREAMS": "bme280,air_quality,ecommerce,incidents",
            "SYNTHSTREAM_BME280__SINKS": "http,kafka", "SYNTHSTREAM_AIR_QUALITY__SINKS": "kinesis",
            "SYNTHSTREAM_ECOMMERCE__SINKS": "kafka", "SYNTHSTREAM_INCIDENTS__SINKS": "kafka",
            "SYNTHSTREAM_INCIDENTS__INCIDENTS_PER_HOUR": "3600",
            "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
            "SYNTHSTREAM_AIR_QUALITY__RATE__TOTAL_PER_S": "10",
            "SYNTHSTREAM_SINKS__HTTP__BASE_URL": f"http://127.0.0.1:{ingest_port}",
            "SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SYNTHSTREAM_SINKS__KINESIS__ENDPOINT_URL": kinesis,
            "SYNTHSTREAM_SINKS__KINESIS__ACCESS_KEY_ID": "test",
            "SYNTHSTREAM_SINKS__KINESIS__SECRET_ACCESS_KEY": "test",
            "SYNTHSTREAM_CONTROL__ENABLED": "true",
        }  # fmt: skip
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--metrics-port", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        prometheus: subprocess.Popen[bytes] | None = None
        try:
            assert producer.stderr is not None
            metrics_port = next_event(producer.stderr, "synthstream_started")["metrics_port"]
            config = tmp_path / "prometheus.yml"
            config.write_text(
                "global: {scrape_interval: 1s}\n"
                "scrape_configs:\n  - job_name: synthstream\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
            )
            prom_port = free_port()
            prometheus = subprocess.Popen(
                ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path}/tsdb",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            delivered = "sum by (stream, sink) (synthstream_records_delivered_total)"

            def every_route_delivered() -> bool:
                try:
                    seen = query(prom_port, delivered)
                except OSError:
                    return False
                return {k for k, v in seen.items() if v > 0} >= ROUTES

            wait_until(every_route_delivered, "Prometheus to see every route deliver")
            first = query(prom_port, delivered)

            def rising() -> bool:
                now = query(prom_port, delivered)
                return all(now.get(route, 0) > first[route] for route in ROUTES)

            wait_until(rising, "every route's series to rise")
            # A control action shows as the dashboard's annotation, by its own query.
            request = urllib.request.Request(
                f"http://127.0.0.1:{metrics_port}/control/streams/bme280", method="POST",
                data=b'{"rate_multiplier": 2}', headers={"Content-Type": "application/json"},
            )  # fmt: skip
            urllib.request.urlopen(request, timeout=5).close()
            dashboard = json.loads((ROOT / "deploy/grafana/dashboards/synthstream.json")
                                   .read_text())  # fmt: skip
            (mark,) = dashboard["annotations"]["list"]

            def annotated() -> bool:
                url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode(
                    {"query": mark["expr"]})  # fmt: skip
                with urllib.request.urlopen(url, timeout=5) as response:
                    found = json.loads(response.read())["data"]["result"]
                return any(r["metric"] == {"stream": "bme280", "what": "set"} for r in found)

            wait_until(annotated, "Prometheus to answer the dashboard's annotation query")
            body = urllib.request.urlopen(
                f"http://127.0.0.1:{metrics_port}/metrics", timeout=5
            ).read()
            lint = subprocess.run(["promtool", "check", "metrics"], input=body,
                                  capture_output=True)  # fmt: skip
            assert lint.returncode == 0, lint.stdout + lint.stderr
        finally:
            if prometheus is not None:
                prometheus.terminate()
                prometheus.wait(timeout=30)
            producer.send_signal(signal.SIGTERM)
            _, err = producer.communicate(timeout=60)
    assert producer.returncode == 0, err[-2000:]
