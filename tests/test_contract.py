"""The contracts a kind is written against: a sink's addresses are its own (templates over
{stream} and {channel}, per-channel overrides, a stream's default), the settings they
replaced say where they went, a plugin needs only ``producer.api``, the engine names no
particular kind, and ``--duration`` is wall time whether or not a run keeps up."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import orjson
import pytest

from producer.app import destinations
from producer.config import load_settings
from producer.errors import ConfigError
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[1]


def addresses(sink: str, streams: str, **sinks: object) -> dict[str, str]:
    settings = load_settings({"streams": streams, "sinks": {sink: sinks}}, environ={})
    return destinations(settings, sink)


def test_the_default_addresses_are_the_names_of_before() -> None:
    assert addresses("kafka", "bme280,air_quality,incidents") == {
        "bme280": "bme280", "air_quality": "air-quality-measurements", "incidents": "incidents",
    }  # fmt: skip
    assert addresses("http", "bme280,air_quality") == {
        "bme280": "/api/v1/sensors/bme280", "air_quality": "/api/v1/air-quality",
    }  # fmt: skip
    shop = addresses("http", "ecommerce")
    assert shop["transactions"] == "/api/v1/ecommerce/transactions"
    assert addresses("kinesis", "ecommerce")["user-events"] == "user-events"
    cdc = load_settings({"streams": "incidents", "incidents": {"cdc": True}}, environ={})
    assert destinations(cdc, "http") == {
        "incidents": "/api/v1/incidents", "incident_units": "/api/v1/incidents/units",
    }  # fmt: skip
    assert destinations(cdc, "kafka")["incident_units"] == "incident_units"
    assert addresses("postgres", "bme280") == {"bme280": "bme280"}


def test_a_sinks_template_and_overrides_win_in_that_order() -> None:
    got = addresses("kafka", "ecommerce,air_quality", destination="dev.{stream}.{channel}",
                    topics={"transactions": "tx", "air_quality": "aq-{channel}"})  # fmt: skip
    assert got["transactions"] == "tx"  # the channel's own
    assert got["air_quality"] == "aq-air_quality"  # by stream, a template too
    assert got["user-events"] == "dev.ecommerce.user-events"  # the template set: over the
    # stream's default
    per_stream = addresses("kafka", "ecommerce", topics={"ecommerce": "shop.{channel}"})
    assert set(per_stream.values()) == {f"shop.{c}" for c in per_stream}


@pytest.mark.parametrize("template", ["{type}", "{stream.__class__}", "a{", "}", " "])
def test_a_template_with_anything_but_stream_and_channel_is_refused(template: str) -> None:
    with pytest.raises(ConfigError, match=r"SYNTHSTREAM_SINKS__KAFKA__DESTINATION.*accepted"):
        load_settings({"sinks": {"kafka": {"destination": template}}}, environ={})
    with pytest.raises(ConfigError, match=re.escape("accepted: text with {stream} and {channel}")):
        load_settings({"sinks": {"kafka": {"topics": {"bme280": template}}}}, environ={})


@pytest.mark.parametrize(("old", "sink", "field"), [
    ("SYNTHSTREAM_BME280__KAFKA_TOPIC", "KAFKA", "TOPICS"),
    ("SYNTHSTREAM_ECOMMERCE__HTTP_PATH", "HTTP", "PATHS"),
    ("SYNTHSTREAM_AIR_QUALITY__KINESIS_STREAM", "KINESIS", "STREAMS"),
])  # fmt: skip
def test_a_streams_address_setting_of_before_names_its_replacement(
    old: str, sink: str, field: str
) -> None:
    result = cli("config", env={old: "x"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in result.stderr
    assert (
        f"{old}: moved to the {sink.lower()} sink: SYNTHSTREAM_SINKS__{sink}__{field}=" in lines[0]
    )


def test_topics_from_the_environment_are_json_and_bad_json_is_one_line() -> None:
    ok = cli("config", "--streams", "bme280",
             env={"SYNTHSTREAM_SINKS__KAFKA__TOPICS": '{"bme280": "readings"}'})  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["sinks"]["kafka"]["topics"] == {"bme280": "readings"}
    bad = cli("config", env={"SYNTHSTREAM_SINKS__KAFKA__TOPICS": "bme280=readings"})
    assert bad.returncode == 2
    assert "SYNTHSTREAM_SINKS__KAFKA__TOPICS" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_spec_names_its_destinations_per_sink_and_refuses_the_old_keys(tmp_path: Path) -> None:
    base = (ROOT / "examples" / "specs" / "clickstream.yaml").read_text()
    assert "destinations: {kafka: clicks}" in base
    mine = tmp_path / "mine.yaml"
    given = "destinations: {kafka: 'c-{stream}', http: /in/clicks}"
    mine.write_text(base.replace("destinations: {kafka: clicks}", given))
    settings = load_settings({"specs": [str(mine)]}, environ={})
    assert destinations(settings, "kafka") == {"clicks": "c-clicks"}
    assert destinations(settings, "http") == {"clicks": "/in/clicks"}
    assert destinations(settings, "kinesis") == {"clicks": "clicks"}  # the sink's default
    old = tmp_path / "old.yaml"
    old.write_text(base.replace("destinations: {kafka: clicks}", "kafka_topic: clicks"))
    result = cli("spec", "check", str(old))
    assert result.returncode == 2
    assert f"{old}:" in result.stderr
    assert "kafka_topic moved: say destinations: {kafka: clicks}" in result.stderr
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(base.replace("destinations: {kafka: clicks}", "destinations: {kafak: c}"))
    assert "unknown sink 'kafak'" in cli("spec", "check", str(wrong)).stderr


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_example_plugin_imports_only_the_public_face() -> None:
    ours = {"producer", "sinks", "ingest"}
    for path in (ROOT / "examples" / "plugin" / "synthstream_example").glob("*.py"):
        mine = {m for m in _imports(path) if m.split(".")[0] in ours}
        assert mine <= {"producer.api"}, f"{path.name} imports {mine - {'producer.api'}}"


ENGINE = ["app", "cli", "config", "delivery", "ticks", "streams", "workers", "control",
          "plugins", "sink", "metrics", "server"]  # fmt: skip


def test_the_engine_imports_no_particular_sink_or_domain() -> None:
    for name in ENGINE:
        path = ROOT / "producer" / f"{name}.py"
        kinds = {m for m in _imports(path) if m.startswith(("sinks", "producer.domains"))}
        assert not kinds, f"producer/{name}.py imports {kinds}"
        text = path.read_text()
        assert not re.search(r"getattr\((self\.)?(route\.)?sink\b[,)]", text), name


def test_duration_is_wall_time_for_a_run_that_falls_behind(tmp_path: Path) -> None:
    """Asked for 4 M readings a second (about twice what one process makes here): the run
    still stops after --duration of wall time, says once while it runs that it is behind, and
    its summary says by how much (before, it ran until its event time reached the duration:
    more than twice as long)."""
    env = {"SYNTHSTREAM_BME280__DEVICES": "80000",
           "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "0.02"}  # fmt: skip
    result = cli("run", "--sinks", "null", "--duration", "4", "--metrics-port", "0",
                 env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = next(e for e in events if e["event"] == "synthstream_finished")
    assert finished["reason"] == "duration"
    assert finished["elapsed_s"] < 4 + 2.5, finished["elapsed_s"]
    assert finished["behind_s"] > 1
    behind = [e for e in events if e["event"] == "live_behind"]
    assert len(behind) == 1
    assert behind[0]["behind_s"] > 2
