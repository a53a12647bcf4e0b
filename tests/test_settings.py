"""Settings: sources and precedence, .env.example in step with the model, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.config import Settings, env_example, env_names, load_settings, settings_model
from producer.domains.bme280.kind import Bme280Settings
from producer.errors import ConfigError
from tests.conftest import ROOT, cli


def bme280(settings: Settings) -> Bme280Settings:
    stream = settings.stream("bme280")
    assert isinstance(stream, Bme280Settings)
    return stream


def example_lines() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        body = line.removeprefix("#").strip()
        if body.startswith("SYNTHSTREAM_") and "=" in body:
            key, value = body.split("=", 1)
            values[key] = value
    return values


def test_env_example_lists_exactly_the_settings() -> None:
    documented = set(example_lines())
    model = set(env_names())
    assert documented - model == set(), "in .env.example but not a setting"
    assert model - documented == set(), "a setting missing from .env.example"
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "regenerate: synthstream config --env-example > .env.example"
    )


def test_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in example_lines().items():
        if value != "":
            monkeypatch.setenv(key, value)
    from_example = settings_model()(_env_file=None)
    for key in example_lines():
        monkeypatch.delenv(key, raising=False)
    assert from_example == settings_model()(_env_file=None)


def test_precedence_flags_over_environment_over_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile = tmp_path / "mine.env"
    profile.write_text(
        "SYNTHSTREAM_BME280__DEVICES=7\nSYNTHSTREAM_SEED=3\nSYNTHSTREAM_BME280__SINKS=file\n"
    )
    s = load_settings({"profile": str(profile)})
    assert (bme280(s).devices, s.seed, bme280(s).sinks) == (7, 3, ["file"])
    monkeypatch.setenv("SYNTHSTREAM_SEED", "4")
    monkeypatch.setenv("SYNTHSTREAM_BME280__SINKS", "stdout, file")
    s = load_settings({"profile": str(profile)})
    assert (bme280(s).devices, s.seed, bme280(s).sinks) == (7, 4, ["stdout", "file"])
    s = load_settings({"profile": str(profile), "seed": "5"})
    assert s.seed == 5


def test_profiles_are_shipped_and_differ() -> None:
    dev = load_settings({"profile": "development"})
    prod = load_settings({"profile": "production"})
    assert bme280(dev).devices == 10
    assert bme280(prod).devices == 1000
    assert prod.log.format == "json"


def test_profile_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSTREAM_PROFILE", "production")
    assert bme280(load_settings()).devices == 1000


def test_climate_presets_and_explicit_overrides() -> None:
    s = load_settings({"bme280": {"climate": "winter", "temp_max": 2}})
    assert bme280(s).bounds("temp") == (-15.0, 2.0)
    assert bme280(s).bounds("humidity") == (55.0, 95.0)


@pytest.mark.parametrize(
    ("overrides", "environ", "expected"),
    [
        ({"shard": "3/2"}, {}, "SYNTHSTREAM_SHARD"),
        ({"streams": "bme280,weather"}, {}, "accepted: bme280"),
        ({}, {"SYNTHSTREAM_BME280__DEVICES": "-5"}, "SYNTHSTREAM_BME280__DEVICES"),
        ({}, {"SYNTHSTREAM_BME280__DEVCES": "5"}, "did you mean SYNTHSTREAM_BME280__DEVICES"),
        ({}, {"SYNTHSTREAM_LOG__FORMAT": "xml"}, "'console'"),
        ({"profile": "staging"}, {}, "accepted: development, production"),
        ({"bme280": {"rate": {"interval_s": 1, "jitter_s": 0.6}}}, {}, "jitter_s"),
        ({"bme280": {"temp_min": 30}}, {}, "temp_min (30.0) must be below temp_max"),
    ],
)
def test_bad_input_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, object], environ: dict[str, str],
    expected: str,
) -> None:  # fmt: skip
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--shard", "3/2"], "--shard / SYNTHSTREAM_SHARD: needs 0 <= I < N"),
        (["run", "--streams", "nope"], "--streams / SYNTHSTREAM_STREAMS: unknown stream 'nope'"),
        (  # the flag, once: not one stream's setting, nor the streams it was set for
            ["run", "--streams", "bme280,ecommerce", "--sinks", "kafkaa"],
            "synthstream: error: --sinks: unknown sink 'kafkaa'; accepted: stdout, file, http, "
            "kafka, kinesis, postgres, s3, null\n",
        ),
        (["run", "--profile", "staging"], "unknown profile 'staging'"),
        (["run", "--duration", "-1"], "--duration / SYNTHSTREAM_DURATION_S"),
        (
            ["run", "--backfill", "--start", "2024-02-01", "--end", "2024-01-01"],
            "--end / SYNTHSTREAM_BACKFILL__END: must be after the start",
        ),
        (["run", "--start", "2024-01-01"], "--start needs --backfill"),
        (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "more error" not in result.stderr


def test_unwritable_output_folder_fails_before_any_record(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("run", "--sinks", "file", "--out", str(blocker / "out"), "--metrics-port", "0")
    assert result.returncode == 2
    assert "--out / SYNTHSTREAM_OUT: cannot write to" in result.stderr
    assert "records_generated" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_check_reports_each_sink(tmp_path: Path) -> None:
    ok = cli("check", "--sinks", "file,stdout", "--out", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    assert "file: reachable" in ok.stdout
    assert "stdout: reachable" in ok.stdout
    blocker = tmp_path / "f"
    blocker.write_text("")
    bad = cli("check", "--sinks", "file", "--out", str(blocker / "x"))
    assert bad.returncode == 1
    assert "file: NOT reachable" in bad.stdout


def test_shard_auto_takes_the_replica_number_from_the_container_name() -> None:
    from producer.settings import Shard, replica_index

    def named(name: str) -> int | None:
        return replica_index(lambda: "3f2a9c1b7d6e", lambda _host: name, environ={})

    assert named("synthstream-producer-2.synthstream_default") == 1
    assert named("synthstream_producer_3") == 2
    assert named("3f2a9c1b7d6e") is None  # not a compose replica
    assert Shard.parse("auto/3", lambda: 2) == Shard(index=2, count=3)
    assert Shard.parse("auto/1", lambda: None) == Shard(index=0, count=1)  # the only one
    with pytest.raises(ValueError, match="replica 4 but 'auto/3'"):
        Shard.parse("auto/3", lambda: 3)
    # Outside a container, auto/3 cannot know which third is its own: say so, never 0/3.
    with pytest.raises(ValueError, match="has none: not a docker compose replica"):
        Shard.parse("auto/3", lambda: None)


def test_shard_auto_in_kubernetes_takes_the_pod_index_or_the_job_completion_index() -> None:
    from producer.settings import Shard, replica_index

    cluster = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}  # set in every pod

    def pod(name: str, **env: str) -> Shard:
        def index() -> int | None:
            return replica_index(lambda: name, lambda _host: "not-asked-7", {**cluster, **env})

        return Shard.parse("auto/3", index)

    # A StatefulSet names its pods from 0: the name alone, or the downward API's label.
    assert [pod(f"synthstream-{i}").index for i in range(3)] == [0, 1, 2]
    assert pod("synthstream-live-1", POD_INDEX="1") == Shard(index=1, count=3)
    assert pod("anything", POD_INDEX="2").index == 2
    # An Indexed Job: each pod's completion index, whatever its name.
    assert pod("backfill-x7kq2", JOB_COMPLETION_INDEX="0").index == 0
    assert pod("backfill-2-x7kq2", JOB_COMPLETION_INDEX="2").index == 2
    with pytest.raises(ValueError, match=r"replica 4 but 'auto/3'.*a Job's completions"):
        pod("synthstream-3")
    with pytest.raises(ValueError, match="nor a Kubernetes pod"):
        pod("synthstream-live")


def test_a_repeated_warning_is_one_line_per_interval_with_its_count() -> None:
    import structlog

    from producer.logs import Repeats

    now = [0.0]
    repeats = Repeats(interval_s=10.0, clock=lambda: now[0])

    def log(event: str, reason: str) -> dict[str, object] | None:
        try:
            return dict(repeats(None, "error", {"event": event, "reason": reason}))
        except structlog.DropEvent:
            return None

    assert log("records_failed", "disk_full") == {"event": "records_failed",
                                                  "reason": "disk_full"}  # fmt: skip
    for _ in range(87):
        now[0] += 0.1
        assert log("records_failed", "disk_full") is None
    assert log("records_failed", "http_401") is not None, "another kind passes"
    now[0] = 10.5
    again = log("records_failed", "disk_full")
    assert again is not None
    assert again["repeated"] == 87
    assert repeats(None, "info", {"event": "progress"}) == {"event": "progress"}


def test_a_spec_streams_faults_come_from_the_environment_over_its_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = str(Path(__file__).resolve().parent.parent / "examples" / "specs" / "iot-fleet.yaml")
    own = load_settings({"specs": [fleet]}, environ={}).stream("fleet").faults
    monkeypatch.setenv("SYNTHSTREAM_SPECS", fleet)
    monkeypatch.setenv("SYNTHSTREAM_FLEET__FAULTS__DROP_RATE", "0.5")
    monkeypatch.setenv("SYNTHSTREAM_FLEET__FAULTS__LATE_MAX_S", "60")
    faults = load_settings({}).stream("fleet").faults
    assert (faults.drop_rate, faults.late_max_s) == (0.5, 60.0)
    assert faults.duplicate_rate == own.duplicate_rate, "the rest as the file says"
    monkeypatch.setenv("SYNTHSTREAM_FLEET__FAULTS__DROP_RATE", "2")
    with pytest.raises(ConfigError, match=r"^SYNTHSTREAM_FLEET__FAULTS__DROP_RATE: Input should "
                       r"be less than or equal to 1 \(got '2'\)"):  # fmt: skip
        load_settings({})
    monkeypatch.delenv("SYNTHSTREAM_FLEET__FAULTS__DROP_RATE")
    monkeypatch.setenv("SYNTHSTREAM_FLEET__FAULTS__DROP_RAT", "1")
    with pytest.raises(
        ConfigError,
        match=r"^SYNTHSTREAM_FLEET__FAULTS__DROP_RAT: not a fault "
        r"of a stream; did you mean SYNTHSTREAM_FLEET__FAULTS__DROP_RATE\?",
    ):
        load_settings({})
