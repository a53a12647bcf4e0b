"""``--workers N``: the records of one process, one /metrics, one summary, one deadline, a
stop that reaches every worker, and workers that do not outlive their parent."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from producer.workers import add_up, merge
from tests.conftest import cli, next_event
from tests.services import free_port

# Over the end of a leap day; the shop's five channels and BME280, faults and ground truth.
WINDOW = ("--backfill", "--start", "2024-02-29T23:30:00Z", "--end", "2024-03-01T00:20:00Z")
STREAMS = ("--streams", "bme280,ecommerce", "--sinks", "file", "--metrics-port", "0")
# The shop's faults that lose or change records are off, so that its analytics add up.
TRUTH = {"SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true",
         "SYNTHSTREAM_ECOMMERCE__FAULTS__GROUND_TRUTH": "true",
         **{f"SYNTHSTREAM_ECOMMERCE__FAULTS__{kind}_RATE": "0"
            for kind in ("DROP", "OUTAGE", "MALFORMED", "ANOMALY")}}  # fmt: skip
ANALYTICS = "analytics-results"


def summary_of(stderr: str) -> dict[str, Any]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "synthstream_finished" and "worker" not in e]
    assert len(finished) == 1, stderr[-3000:]
    summary: dict[str, Any] = finished[0]
    return summary


def lines_by_file(folder: Path) -> dict[str, Counter[str]]:
    """Each channel's records and ground truth, whichever process wrote which file."""
    found: dict[str, Counter[str]] = {}
    for path in folder.rglob("*.jsonl"):
        kind = (
            path.parent.name
            if path.parent != folder
            else (path.name.split(".")[0].split("-shard")[0] + " ground truth")
        )
        found.setdefault(kind, Counter()).update(path.read_text().splitlines())
    return found


def analytics(records: Counter[str]) -> dict[tuple[str, str, str], float]:
    """Each metric of each window and region, from the results of one or more processes:
    counts and revenue add up, the others are means weighted by their sample sizes."""
    sums: dict[tuple[str, str, str], list[float]] = {}
    for line in records:
        r = json.loads(line)
        if r["is_duplicate"]:
            continue
        total = sums.setdefault((r["metric_type"], r["region"], r["window_end"]), [0.0, 0.0])
        additive = r["metric_type"] in ("revenue", "order_count")
        if additive or r["sample_size"]:
            total[0] += r["value"] * (1 if additive else r["sample_size"])
            total[1] += r["sample_size"]
    return {k: v if k[0] in ("revenue", "order_count") else (v / n if n else 0.0)
            for k, (v, n) in sums.items()}  # fmt: skip


def test_two_workers_make_the_records_of_one_process(tmp_path: Path) -> None:
    one = cli("run", *WINDOW, *STREAMS, "--out", str(tmp_path / "one"), env=TRUTH)
    two = cli("run", *WINDOW, *STREAMS, "--out", str(tmp_path / "two"), "--workers", "2",
              env=TRUTH)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    alone, together = lines_by_file(tmp_path / "one"), lines_by_file(tmp_path / "two")
    assert set(alone) >= {"bme280", "user-events", "transactions", "bme280 ground truth"}
    assert sum(len(c) for c in alone.values()) > 50_000
    # Analytics are each process's share (ids of their own): added up, they are the run's
    # (within the 4 decimals of a rate).
    shares = analytics(together.pop(ANALYTICS))
    assert analytics(alone.pop(ANALYTICS)) == pytest.approx(shares, abs=1e-4)
    for truth in (alone, together):
        truth.pop(f"{ANALYTICS} ground truth")
    assert alone == together
    summary = summary_of(two.stderr)
    assert summary["workers"] == 2
    assert summary["reason"] == "backfill_complete"
    counts, counts_alone = summary["streams"], summary_of(one.stderr)["streams"]
    assert counts.pop(ANALYTICS)["generated"] > counts_alone.pop(ANALYTICS)["generated"]
    assert counts == counts_alone
    # Each worker wrote its own shard's files, and logged as itself.
    shards = {p.name.split("-shard")[1][:4] for p in (tmp_path / "two").rglob("*shard*")}
    assert shards == {"0of2", "1of2"}
    workers = {json.loads(line).get("worker") for line in two.stderr.splitlines()
               if line.startswith("{")}  # fmt: skip
    assert {"0/2", "1/2"} <= workers


def test_the_workers_of_a_replica_split_its_shard(tmp_path: Path) -> None:
    window = ("--backfill", "--start", "2024-12-31T23:00:00Z", "--end", "2025-01-01T01:00:00Z")
    args = (*window, "--sinks", "file", "--metrics-port", "0", "--shard", "1/2")
    devices = {"SYNTHSTREAM_BME280__DEVICES": "40"}
    one = cli("run", *args, "--out", str(tmp_path / "one"), env=devices)
    two = cli("run", *args, "--out", str(tmp_path / "two"), "--workers", "2", env=devices)
    assert one.returncode == two.returncode == 0, two.stderr[-2000:]
    alone, together = lines_by_file(tmp_path / "one"), lines_by_file(tmp_path / "two")
    assert alone == together
    assert alone["bme280"]
    # 1/2 split in two is 1/4 and 3/4 of the whole.
    assert {p.name.split("-shard")[1][:4] for p in (tmp_path / "two").rglob("*shard*")} == {
        "1of4", "3of4"}  # fmt: skip


def test_max_records_is_for_the_run_not_for_each_worker(tmp_path: Path) -> None:
    result = cli("run", *WINDOW, "--sinks", "file", "--out", str(tmp_path), "--metrics-port",
                 "0", "--workers", "2", "--max-records", "7")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    bme280 = summary_of(result.stderr)["streams"]["bme280"]
    assert bme280["generated"] - bme280["duplicated_by_fault"] == 7


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def start_live(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int, list[int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_BME280__DEVICES": "200",
                "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"})  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", str(tmp_path),
         "--workers", "2", "--metrics-port", str(port), *args],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    pids = next_event(proc.stderr, "workers_started")["workers"]
    next_event(proc.stderr, "workers_live")
    return proc, port, pids


def test_one_metrics_endpoint_and_a_signal_that_reaches_every_worker(tmp_path: Path) -> None:
    # A minute of backfill first: records are there before the signal comes.
    start = datetime.now(UTC) - timedelta(minutes=1)
    proc, port, pids = start_live(tmp_path, "--backfill", "--start", start.isoformat(),
                                  "--then-live")  # fmt: skip
    try:
        samples = scrape(port)
        assert samples["synthstream_workers{}"] == 2
        assert samples['synthstream_entities{"stream": "bme280"}'] == 200, "the shards add up"
        assert samples['synthstream_target_rate_records_per_second{"stream": "bme280"}'] == 200
        info = [k for k in samples if k.startswith("synthstream_build_info")]
        assert len(info) == 1
        assert samples[info[0]] == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as ok:
            assert ok.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    summary = summary_of(err)
    assert summary["reason"] == "signal SIGTERM"
    bme280 = summary["streams"]["bme280"]
    assert bme280["sinks"]["file"]["delivered"] == bme280["generated"] - bme280["dropped_by_fault"]
    written = sum(len(c) for c in lines_by_file(tmp_path).values())
    assert written == bme280["sinks"]["file"]["delivered"] > 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_parent_owns_the_duration(tmp_path: Path) -> None:
    proc, _port, _pids = start_live(tmp_path, "--duration", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    ends = [e for e in events if e["event"] == "synthstream_finished"]
    assert [e["reason"] for e in ends] == ["duration"] * 3, "each worker's and the run's"
    reached = {e["event_time_reached"] for e in ends if "worker" in e}
    assert summary_of(err)["event_time_reached"] == min(reached)


def test_workers_do_not_outlive_their_parent(tmp_path: Path) -> None:
    proc, _port, pids = start_live(tmp_path)
    watches = [os.pidfd_open(pid) for pid in pids]
    try:
        proc.kill()  # no signal to forward: the workers see their link close
        proc.communicate(timeout=30)
        for fd in watches:
            readable, _, _ = select.select([fd], [], [], 30)
            assert readable, "a worker still runs 30 s after its parent died"
    finally:
        for fd in watches:
            os.close(fd)


def test_a_worker_that_fails_stops_the_run_with_one_line(tmp_path: Path) -> None:
    result = cli("run", "--sinks", "kafka", "--workers", "2", "--metrics-port", "0",
                 env={"SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"})  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("synthstream:")]
    # One line, whether the other worker said it too or was stopped first.
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(("(2 of 2 workers)", "--wait-for-sinks SECONDS"))
    assert "kafka sink not reachable" in errors[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--workers", "2"), "cannot share one standard output"),
        (("--workers", "0"), "expected 1 to 256 processes, or auto"),
        (("--workers", "2", "--sinks", "null", "--max-records", "1"), "at least one record"),
    ],
)
def test_what_workers_cannot_do_is_one_line_and_status_2(args: tuple[str, ...], says: str) -> None:
    result = cli("run", *args, "--metrics-port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr


def test_auto_is_the_usable_cores() -> None:
    result = cli("config", env={"SYNTHSTREAM_WORKERS": "auto"})
    assert json.loads(result.stdout)["workers"] == str(len(os.sched_getaffinity(0)))


def test_merged_metrics_add_up_and_keep_the_earliest_start() -> None:
    worker = """# HELP x_total Things.
# TYPE x_total counter
x_total{stream="a"} {n}
# HELP x_created Things.
# TYPE x_created gauge
x_created{stream="a"} {t}
# HELP h_seconds Waits.
# TYPE h_seconds histogram
h_seconds_bucket{le="1.0"} {n}
h_seconds_bucket{le="+Inf"} {n}
h_seconds_count {n}
h_seconds_sum 1.5
# HELP synthstream_event_time_seconds Reached.
# TYPE synthstream_event_time_seconds gauge
synthstream_event_time_seconds {t}
# HELP synthstream_build_info Version.
# TYPE synthstream_build_info gauge
synthstream_build_info{version="1"} 1.0
# HELP l Label with a quote.
# TYPE l gauge
l{detail="a \\"b\\"\\nc"} 1.0
"""
    texts = [worker.replace("{n}", str(n)).replace("{t}", str(t)) for n, t in ((3, 20), (4, 10))]
    merged = {
        s.name + json.dumps(s.labels, sort_keys=True): s.value
        for f in text_string_to_metric_families(merge(texts).decode())
        for s in f.samples
    }
    assert merged['x_total{"stream": "a"}'] == 7
    assert merged['x_created{"stream": "a"}'] == 10
    assert merged['h_seconds_bucket{"le": "+Inf"}'] == 7
    assert merged["h_seconds_sum{}"] == 3
    assert merged["synthstream_event_time_seconds{}"] == 10
    assert merged['synthstream_build_info{"version": "1"}'] == 1
    assert merged['l{"detail": "a \\"b\\"\\nc"}'] == 2


def test_summaries_add_up() -> None:
    a = {"streams": {"s": {"generated": 3, "sinks": {"file": {"delivered": 3}}}},
         "undelivered": 0, "event_time_reached": "2025-01-01T00:00:01.000+00:00"}  # fmt: skip
    b = {"streams": {"s": {"generated": 4, "sinks": {"file": {"delivered": 2}}}},
         "undelivered": 2, "event_time_reached": "2025-01-01T00:00:00.500+00:00"}  # fmt: skip
    total = add_up([a, b])
    assert total["streams"] == {"s": {"generated": 7, "sinks": {"file": {"delivered": 5}}}}
    assert total["undelivered"] == 2
    assert total["event_time_reached"] == "2025-01-01T00:00:00.500+00:00"


def test_the_port_that_answers_is_the_one_logged(tmp_path: Path) -> None:
    """--metrics-port 0 under --workers: the parent's port is logged (the workers' are its
    own to scrape, and their start lines do not offer them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env["SYNTHSTREAM_LOG__FORMAT"] = "json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", str(tmp_path),
         "--workers", "2", "--metrics-port", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        started = next_event(proc.stderr, "workers_started")
        workers = [next_event(proc.stderr, "synthstream_started") for _ in range(2)]
        next_event(proc.stderr, "workers_live")
        assert all("metrics_port" not in w for w in workers), workers
        assert scrape(started["metrics_port"])["synthstream_workers{}"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
