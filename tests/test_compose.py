"""What can be checked of the Docker stack without a Docker engine, checked for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ingest.app import IngestSettings, create_app
from producer.config import env_names
from producer.metrics import Metrics
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_files_follow_the_compose_specification() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml"), str(ROOT / "docker-compose.production.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_synthstream_variable_is_a_setting() -> None:
    known = set(env_names())
    used = set()
    for path in ("docker-compose.yml", "docker-compose.production.yml"):
        for service in yaml.safe_load((ROOT / path).read_text())["services"].values():
            used |= {k for k in service.get("environment", {}) if k.startswith("SYNTHSTREAM_")}
    assert used
    assert used <= known, used - known


def test_images_are_pinned_services_have_healthchecks_and_wait_for_health() -> None:
    services = compose()["services"]
    assert {"producer", "ingest", "kafka", "localstack", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: pin {image}"
        assert not image.endswith(":latest")
        assert "test" in service["healthcheck"], name
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy"
    assert services["localstack"]["image"] == "localstack/localstack:4.14.0"
    assert services["producer"]["environment"]["SYNTHSTREAM_PROFILE"].startswith(
        "${SYNTHSTREAM_PROFILE:-development}"
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_producer_and_the_endpoint() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["synthstream"]["dns_sd_configs"][0]["port"] == 9108
    assert jobs["ingest"]["static_configs"][0]["targets"] == ["ingest:8000"]


def test_the_dashboard_asks_only_for_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "synthstream.json")
                           .read_text())  # fmt: skip
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    marks = dashboard["annotations"]["list"]  # live control's actions on every panel
    assert any("synthstream_control_actions_total" in a["expr"] for a in marks)
    exprs += [a["expr"] for a in marks]
    ours = {m.name for m in Metrics().registry.collect()}
    ingest = create_app(IngestSettings()).state.ingest
    theirs = {m.name for m in ingest.registry.collect()}
    names = set()
    for expr in exprs:
        names |= set(re.findall(r"\b((?:synthstream|ingest)_[a-z0-9_]+)", expr))
    for name in names:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert base in ours | theirs, name
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("target", "delivered", "faults", "retries", "queue", "lag", "latency"):
        assert topic in titles
