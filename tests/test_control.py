"""Live control: the API's answers to bad requests, a live run steered through it (rate x3,
an outage in the ground truth, entity state kept), the control log replayed by a backfill
into the same records, `synthstream ctl`, and the page in a real headless Chromium."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from producer.config import load_settings
from producer.control import Control, RequestError, handler
from producer.metrics import Metrics
from producer.streams import build_stream
from tests.conftest import cli, next_event
from tests.test_end_to_end import QUIET, log_events, records

DEVICES = {"SYNTHSTREAM_BME280__DEVICES": "200", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
           "SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true", **QUIET}  # fmt: skip
T = 1_709_251_200_000  # 2024-03-01T00:00Z, just after a leap day
HOUR = 3_600_000


class FixedClock:
    def now_ms(self) -> int:
        return T

    def monotonic(self) -> float:
        return 0.0


def control_of(*streams: str) -> Control:
    settings = load_settings({"streams": ",".join(streams)})
    built = [build_stream(name, settings) for name in streams]
    return Control(built, settings, Metrics(), FixedClock(), lambda: T)


@pytest.mark.parametrize(
    ("stream", "body", "status", "names"),
    [
        ("nope", {"rate_multiplier": 2}, 404, "stream nope"),
        ("bme280", [1], 400, "body"),
        ("bme280", {}, 422, "body: empty"),
        ("bme280", {"rate": 2}, 422, "rate: not a setting"),
        ("bme280", {"rate_multiplier": "x"}, 422, "rate_multiplier: accepted: a number"),
        ("bme280", {"rate_multiplier": 101}, 422, "out of range"),
        ("bme280", {"rate_multiplier": True}, 422, "rate_multiplier"),
        ("bme280", {"scenario": "busy"}, 422, "scenario: accepted: normal, peak, maintenance"),
        ("bme280", {"paused": "yes"}, 422, "paused: accepted: true or false"),
    ],
)
def test_a_bad_setting_is_refused_with_one_line_naming_the_field(
    stream: str, body: Any, status: int, names: str
) -> None:
    control = control_of("bme280", "incidents")
    with pytest.raises(RequestError, match=names) as refused:
        control.set(stream, body)
    assert refused.value.status == status
    assert control.streams["bme280"].stream.pace.steady  # nothing applied


def test_a_kind_that_does_not_schedule_by_the_pace_refuses_a_rate_but_takes_episodes() -> None:
    control = control_of("bme280")
    control.streams["bme280"].paced = False  # as a plugin's own build() that ignores it
    with pytest.raises(RequestError, match="bme280: its rate cannot be steered") as refused:
        control.set("bme280", {"paused": True})
    assert refused.value.status == 422
    assert control.start("bme280", {"kind": "outage"})["episode"]["entities"] == 10


def test_incidents_follow_the_multiplier_too() -> None:
    control = control_of("incidents")
    source = control.streams["incidents"].stream.source
    before = source.target_rates(T)["incidents"]
    control.set("incidents", {"rate_multiplier": 3})
    assert source.target_rates(T)["incidents"] == pytest.approx(3 * before)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"kind": "volcano"}, "kind: accepted for bme280: outage, weather"),
        ({"kind": "outage", "seconds": 0}, "seconds: 0 is out of range"),
        ({"kind": "outage", "entities": 2.5}, "entities: accepted: a whole number"),
        ({"kind": "weather", "type": "hail"}, "type: accepted: one of storm, front, clear"),
        ({"kind": "weather", "factor": 2}, "factor: not a field of a weather episode"),
    ],
)
def test_a_bad_episode_is_refused_with_one_line(body: dict[str, Any], names: str) -> None:
    control = control_of("bme280")
    with pytest.raises(RequestError, match=names) as refused:
        control.start("bme280", body)
    assert refused.value.status == 422
    assert not control.streams["bme280"].stream.episodes.all


def test_actions_take_effect_after_what_was_made_and_scale_the_target() -> None:
    control = control_of("bme280", "ecommerce")
    steered = control.streams["bme280"]
    before = steered.stream.source.target_rates(T)["bme280"]
    steered.stream.source.ahead = T + 700  # type: ignore[attr-defined]  # made ahead that far
    action = control.set("bme280", {"rate_multiplier": 3})
    assert action["at_ms"] == T + 700
    assert steered.stream.source.target_rates(T + 700)["bme280"] == pytest.approx(3 * before)
    control.set("bme280", {"scenario": "maintenance"})
    assert steered.stream.source.target_rates(T + 700)["bme280"] == pytest.approx(0.3 * before)
    control.set("bme280", {"paused": True})
    assert steered.stream.source.target_rates(T + 700)["bme280"] == 0
    shop = control.streams["ecommerce"]
    episode = control.start("ecommerce", {"kind": "fraud_burst", "share": 0.4})["episode"]
    assert episode["end_ms"] - episode["start_ms"] == 300_000  # the kind's default
    state = control.state()["streams"]
    assert state["bme280"]["paused"] is True
    assert state["ecommerce"]["active_episodes"] == [episode]
    assert shop.stream.episodes.active("fraud_burst", T, T + 1)


def test_the_http_side_asks_for_the_token_and_answers_in_json() -> None:
    respond = handler(control_of("bme280"), "s3cret")
    status, _, body = respond("GET", "/control/state", {}, b"")
    assert status.startswith("401")
    assert "Bearer" in json.loads(body)["error"]
    auth = {"authorization": "Bearer s3cret", "content-type": "application/json"}
    assert respond("GET", "/control/state", auth, b"")[0].startswith("200")
    assert respond("GET", "/control", {}, b"")[1].startswith("text/html")  # the page asks
    status, _, body = respond("POST", "/control/streams/bme280", auth, b"{not json")
    assert status.startswith("400")
    assert json.loads(body)["error"].startswith("body: not JSON")
    assert respond("GET", "/control/streams/bme280", auth, b"")[0].startswith("405")
    assert respond("GET", "/control/elsewhere", auth, b"")[0].startswith("404")
    status, _, body = respond("POST", "/control/streams/bme280/events", auth,
                              b'{"kind": "outage", "entities": 3, "seconds": 2}')  # fmt: skip
    assert status.startswith("200")
    assert json.loads(body)["episode"]["id"] == "bme280-1"


# ---------------------------------------------------------------------------- live runs
class Run:
    """A live producer with control on, its port, and its stderr drained in a thread."""

    def __init__(self, tmp: Path, env: dict[str, str], *extra: str) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
        full.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_CONTROL__ENABLED": "true",
                     **env})  # fmt: skip
        self.out = tmp / "live"
        self.log = tmp / "control.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", str(self.out),
             "--metrics-port", "0", "--control-log", str(self.log), *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=full,
        )  # fmt: skip
        assert self.proc.stderr is not None
        self.started = next_event(self.proc.stderr, "synthstream_started")
        self.url = f"http://127.0.0.1:{self.started['metrics_port']}"
        self.lines: list[str] = []
        self._drain = threading.Thread(target=self.lines.extend, args=(self.proc.stderr,))
        self._drain.start()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return orjson.loads(response.read())

    def until(self, what: str, check: Any, within_s: float, token: str | None = None) -> Any:
        """Ask for the state until ``check(state)`` holds; fail after ``within_s``."""
        deadline = time.monotonic() + within_s
        while True:
            state = self.call("GET", "/control/state", token=token)
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within_s} s; state {state}")
            time.sleep(0.2)  # the producer's own pace: a state a few times a second

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0
        self._drain.join(timeout=10)
        return log_events("".join(self.lines))


@contextlib.contextmanager
def live(tmp: Path, env: dict[str, str]) -> Iterator[Run]:
    run = Run(tmp, env)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=10)
        run._drain.join(timeout=10)
        assert run.proc.stderr is not None
        run.proc.stderr.close()


def achieved(state: dict[str, Any]) -> float:
    return float(state["streams"]["bme280"]["achieved_per_s"]["bme280"])


def ms(record: dict[str, Any]) -> int:
    return round(datetime.fromisoformat(record["timestamp"]).timestamp() * 1000)


def test_a_live_run_steered_through_the_api_and_replayed_by_a_backfill(tmp_path: Path) -> None:
    token = "s3cret"
    with live(tmp_path, {**DEVICES, "SYNTHSTREAM_CONTROL__TOKEN": token}) as run:
        with pytest.raises(urllib.error.HTTPError) as refused:
            run.call("GET", "/control/state")
        assert refused.value.code == 401
        refused.value.close()
        run.until("the base rate", lambda s: achieved(s) >= 150, 20, token)
        set_at = run.call("POST", "/control/streams/bme280", {"rate_multiplier": 3}, token)
        asked = time.monotonic()
        run.until("rate x3", lambda s: achieved(s) >= 540, 15, token)
        assert time.monotonic() - asked <= 15
        dark_for = {"kind": "outage", "entities": 5, "seconds": 3}
        outage = run.call("POST", "/control/streams/bme280/events", dark_for, token)["episode"]
        refused_line = subprocess.run(
            [sys.executable, "-m", "producer", "ctl", "--url", run.url, "--token", token,
             "set", "bme280", "rate_multiplier=500"], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert refused_line.returncode == 2
        assert refused_line.stderr.strip().endswith("from 0 to 100 (HTTP 422)")
        shown = subprocess.run(
            [sys.executable, "-m", "producer", "ctl", "--url", run.url, "--token", token,
             "state"], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["streams"]["bme280"]["rate_multiplier"] == 3
        run.until("past the outage", lambda s: s["event_time_ms"] > outage["end_ms"] + 1500, 20,
                  token)  # fmt: skip
        events = run.stop()

    at = set_at["at_ms"]
    rows = [orjson.loads(x) for x in records(run.out)]
    times = [ms(r) for r in rows if not r["is_duplicate"]]
    origin = round(datetime.fromisoformat(run.started["origin"]).timestamp()
                   * 1000)  # fmt: skip
    since = max(origin, at - 3000)
    before = sum(since <= t < at for t in times) / (at - since)
    after = sum(at <= t < at + 3000 for t in times) / 3000
    assert 2.8 <= after / before <= 3.2, (before, after)
    # State kept: each device's walk goes on across the change. A fresh start would be a
    # uniform draw over the 18-28 C range (a jump over 2.5 C for about a third of the
    # devices); the walk's own steps are a drift and noise of 0.2 C.
    by_device: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["temperature_c"] is not None:
            by_device.setdefault(r["device_id"], []).append((ms(r), r["temperature_c"]))
    across = []
    for series in by_device.values():
        series.sort()
        across += [abs(b - a) for (t0, a), (t1, b) in itertools.pairwise(series)
                   if t0 < at + 2000 and t1 >= at - 2000]  # fmt: skip
    assert len(across) > 1000
    assert max(across) <= 2.5
    # The outage: five devices, silent in its window, every record in the ground truth.
    truth = [orjson.loads(x) for x in (run.out / "bme280.ground-truth.jsonl").read_bytes()
             .splitlines()]  # fmt: skip
    dark = [t for t in truth if t["kind"] == "episode_outage"]
    devices = {t["message_id"] for t in dark}
    assert dark
    assert all(t["episode"] == outage["id"] for t in dark)
    assert not devices & {r["message_id"] for r in rows}
    dark_devices = {r["device_id"] for r in rows} - {
        r["device_id"] for r in rows if outage["start_ms"] <= ms(r) < outage["end_ms"]
    }
    assert len(dark_devices) == 5
    finished = events["synthstream_finished"]
    assert finished["streams"]["bme280"]["dropped_by_fault"] >= len(dark)

    # The control log makes a backfill of the same window the same records and truth.
    again = cli(
        "run", "--backfill", "--start", run.started["origin"],
        "--end", finished["event_time_reached"], "--sinks", "file",
        "--out", str(tmp_path / "backfill"), "--metrics-port", "0",
        "--control-log", str(run.log), env=DEVICES,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert log_events(again.stderr)["control_log_replayed"]["actions"] == 2
    assert records(tmp_path / "backfill") == records(run.out)
    replayed = (tmp_path / "backfill" / "bme280.ground-truth.jsonl").read_bytes().splitlines()
    # (the same lines; a tick writes its faults kind by kind, so the order is the ticks')
    assert sorted(replayed) == sorted((run.out / "bme280.ground-truth.jsonl").read_bytes()
                                      .splitlines())  # fmt: skip


def test_a_broken_control_log_is_one_line_and_status_2(tmp_path: Path) -> None:
    log = tmp_path / "control.jsonl"
    log.write_text('{"at_ms": 1, "stream": "bme280", "set": {"rate_multiplier": -1}}\n')
    result = cli("run", "--max-records", "1", "--control-log", str(log), "--metrics-port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"synthstream: error: --control-log: {log}:1: not an action (rate_multiplier: -1 is "
        "out of range; accepted: a number from 0 to 100); accepted: the lines a steered run "
        "wrote"
    ]


@pytest.mark.services
def test_the_page_in_a_real_headless_chromium_steers_the_run(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser, "Chromium is installed by scripts/install-chromium"
    assert driver_path, "chromedriver is installed by scripts/install-chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    token = "page-token"
    with live(tmp_path, {**DEVICES, "SYNTHSTREAM_CONTROL__TOKEN": token}) as run:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.get(run.url + "/control")
            box = "[data-stream=bme280] "

            def shown(css: str) -> str:
                return str(driver.find_element(By.CSS_SELECTOR, box + css).text)

            wait = WebDriverWait(driver, 20, poll_frequency=0.2)
            # The API answers 401 until the page is given the token.
            wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
            assert "Bearer" in driver.find_element(By.ID, "error").text
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.ID, "token-save").click()
            wait.until(lambda d: d.find_element(By.ID, "error").text == "")  # the 401 is gone
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, box + ".achieved")
                       and float(shown(".achieved") or 0) >= 150)  # fmt: skip
            multiplier = driver.find_element(By.CSS_SELECTOR, box + ".multiplier")
            multiplier.clear()
            multiplier.send_keys("500")  # refused: the page shows the API's line
            driver.find_element(By.CSS_SELECTOR, box + ".apply").click()
            wait.until(lambda d: "rate_multiplier: 500 is out of range"
                       in d.find_element(By.ID, "error").text)  # fmt: skip
            multiplier.clear()
            multiplier.send_keys("3")
            driver.find_element(By.CSS_SELECTOR, box + ".apply").click()
            wait.until(lambda d: float(shown(".target")) == pytest.approx(600))
            WebDriverWait(driver, 15, poll_frequency=0.2).until(
                lambda d: float(shown(".achieved")) >= 540
            )
            seconds = driver.find_element(By.CSS_SELECTOR, box + ".seconds")
            seconds.clear()
            seconds.send_keys("5")
            driver.find_element(By.CSS_SELECTOR, box + ".entities-count").send_keys("3")
            driver.find_element(By.CSS_SELECTOR, box + ".start").click()
            wait.until(lambda d: "bme280-1 outage" in shown(".episodes"))
            # A kind's own fields: a front, not the default storm.
            Select(driver.find_element(By.CSS_SELECTOR, box + ".kind")).select_by_value("weather")
            Select(driver.find_element(By.CSS_SELECTOR, box + ".param-type")).select_by_value(
                "front")  # fmt: skip
            driver.find_element(By.CSS_SELECTOR, box + ".start").click()
            wait.until(lambda d: "bme280-2 weather" in shown(".episodes"))
            driver.find_element(By.CSS_SELECTOR, box + ".pause").click()
            wait.until(lambda d: shown(".pause") == "resume")
            assert driver.find_element(By.ID, "error").text == ""
        finally:
            driver.quit()
        state = run.call("GET", "/control/state", token=token)["streams"]["bme280"]
        assert state["paused"] is True
        assert state["rate_multiplier"] == 3
        run.stop()
    actions = [orjson.loads(x) for x in run.log.read_bytes().splitlines()]
    assert [list(a.get("set", a.get("episode", {})))[:1] for a in actions] == [
        ["rate_multiplier"],
        ["id"],
        ["id"],
        ["paused"],
    ]
    weather = actions[2]["episode"]
    assert (weather["kind"], weather["type"], weather["entities"]) == ("weather", "front", 3)


def test_a_major_incident_is_reported_now_with_its_units_and_all_of_it_in_the_truth() -> None:
    control = control_of("incidents")
    stream = control.streams["incidents"].stream
    with pytest.raises(RequestError, match=r"units: 2\.5; accepted: a whole number from 2 to 40"):
        control.start("incidents", {"kind": "major_incident", "units": 2.5})
    episode = control.start("incidents", {"kind": "major_incident", "units": 12.0})["episode"]
    assert episode["type"] == "STRUCTURE_FIRE"
    assert json.dumps(episode["units"]) == "12", "a count reads as one"
    channel = stream.channels[0]
    lifecycle, truth = [], []
    for t0 in range(T - HOUR, T + 12 * HOUR, HOUR // 4):  # in quarter hours, as ticks go
        batch = stream.source.advance(t0, t0 + HOUR // 4, None).get("incidents")
        out = channel.faults.apply(batch, t0 + HOUR // 4)
        truth += [e for e in out.truth if e.kind == "episode_major_incident"]
        if batch is not None:
            mine = batch.columns["seq"] == 900_000 + zlib.crc32(b"incidents-1") % 100_000
            c = {k: batch.columns[k][mine].tolist() for k in ("stage", "units", "severity")}
            lifecycle += list(zip(batch.time_ms[mine].tolist(), c["stage"], c["units"],
                                  c["severity"], strict=True))  # fmt: skip
    assert [stage for _, stage, _, _ in lifecycle] == [0, 1, 2, 3]  # reported ... resolved
    assert lifecycle[0][0] == T
    assert {units for *_, units, _ in lifecycle} == {12}
    assert {severity for *_, severity in lifecycle} == {3}  # CRITICAL
    assert sum(len(e.records) for e in truth) == 4
    assert all(e.params["episode"] == "incidents-1" for e in truth)


def _through_faults(control: Control, stream: str, channel: str, t0: int, t1: int,
                    step: int) -> list[Any]:  # fmt: skip
    """The records of ``channel`` after the stream's fault pipeline, window by window."""
    s = control.streams[stream].stream
    faults = next(c for c in s.channels if c.name == channel).faults
    out = []
    for a in range(t0, t1, step):
        batch = s.source.advance(a, a + step, None).get(channel)
        if batch is not None:
            out.append(faults.apply(batch, a + step).batch)
    return out


@pytest.mark.parametrize(
    ("stream", "body", "column", "peak"),
    [
        ("bme280", {"kind": "weather", "type": "storm"}, "temperature_c", -2.5),
        ("bme280", {"kind": "weather", "type": "storm"}, "pressure_hpa", -5.0),
        ("air_quality", {"kind": "pollution", "factor": 8}, "pm25", 8.0),
    ],
)
def test_a_weather_or_pollution_episode_ramps_to_its_peak_and_back(
    stream: str, body: dict[str, Any], column: str, peak: float
) -> None:
    steered, plain = control_of(stream), control_of(stream)
    episode = steered.start(stream, {**body, "seconds": 600})["episode"]
    t0, t1 = T - 120_000, T + 720_000
    got = _through_faults(steered, stream, stream, t0, t1, 60_000)
    want = _through_faults(plain, stream, stream, t0, t1, 60_000)
    for a, b in zip(got, want, strict=True):
        assert a.time_ms.tolist() == b.time_ms.tolist()
        x, y = a.columns[column].astype(float), b.columns[column].astype(float)
        mid = (a.time_ms >= T + 120_000) & (a.time_ms < T + 480_000)
        outside = (a.time_ms < episode["start_ms"]) | (a.time_ms >= episode["end_ms"])
        ok = ~np.isnan(x) & ~np.isnan(y)
        if peak > 1 and column == "pm25":  # a factor
            assert np.allclose(x[mid & ok], np.round(y[mid & ok] * peak, 2), atol=0.011)
        else:  # an offset (within the sensor's physical range)
            assert np.allclose(x[mid & ok] - y[mid & ok], peak, atol=0.011)
        assert np.array_equal(x[outside & ok], y[outside & ok])


def test_a_fraud_burst_makes_the_sessions_it_covers_fraud() -> None:
    control = control_of("ecommerce")
    control.start("ecommerce", {"kind": "fraud_burst", "share": 1.0, "seconds": 1800})
    batches = _through_faults(control, "ecommerce", "transactions", T - HOUR, T + 2 * HOUR,
                              60_000)  # fmt: skip
    times = np.concatenate([b.time_ms for b in batches])
    fraud = np.concatenate([b.columns["pattern"] >= 0 for b in batches])
    before = fraud[times < T].mean()
    inside = fraud[(times >= T + 20 * 60_000) & (times < T + 30 * 60_000)].mean()
    after = fraud[times >= T + HOUR + 30 * 60_000].mean()
    assert before < 0.05
    assert inside > 0.9
    assert after < 0.05


def test_an_action_the_log_cannot_take_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    control = control_of("bme280")
    control.log_path = tmp_path  # a folder: no file can be appended to it
    with pytest.raises(RequestError, match="cannot write") as refused:
        control.set("bme280", {"rate_multiplier": 3})
    assert refused.value.status == 503
    with pytest.raises(RequestError, match="nothing was changed"):
        control.start("bme280", {"kind": "outage"})
    steered = control.streams["bme280"]
    assert steered.stream.pace.steady
    assert not steered.stream.episodes.all
    assert steered.multiplier == 1.0


def test_ctl_finds_the_one_run_on_this_machine_and_names_url_when_there_are_two(
    tmp_path: Path,
) -> None:
    here = {"XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    with live(tmp_path / "one", here) as one:
        found = cli("ctl", "state", env=here)
        assert found.returncode == 0, found.stderr
        assert "bme280" in json.loads(found.stdout)["streams"]
        with live(tmp_path / "two", here) as two:
            both = cli("ctl", "state", env=here)
            assert both.returncode == 2
            assert both.stderr.count("\n") == 1, both.stderr
            assert f"pid {one.proc.pid} on port {one.started['metrics_port']}" in both.stderr
            assert f"pid {two.proc.pid} on port {two.started['metrics_port']}" in both.stderr
            assert "accepted: --url http://127.0.0.1:PORT" in both.stderr
            two.stop()
        assert cli("ctl", "state", env=here).returncode == 0, "the one left"
        one.stop()
    assert not list((tmp_path / "runtime" / "synthstream").glob("*.json")), "each cleared"
