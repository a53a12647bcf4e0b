"""What a live run costs: the share of a core for the seeds' live workloads, and records per
CPU-second live against a backfill of the same stream.

Each workload runs ``synthstream run --sinks file`` as a user would, three times in turn
(the median is printed: this machine's CPU figures move by half from one minute to the next).
Its CPU comes from the process's own counters (``process_cpu_seconds_total`` on its
/metrics), read 4 s after start and again 20 s later, so start-up is left out; the records it
generated in between come from the same scrape. Context switches per second (all threads,
from /proc) count the wakes, which cost more than the records at these rates.
Printed next to the figures measured before coalesced ticks and look-ahead
(every millisecond, each tick generating for itself; 20 s runs with start-up included).
The backfill line is the same BME280 stream through the same file sink, CPU from ``wait4``
less a one-minute backfill's (start-up and that minute).

    python -m bench.live
"""

from __future__ import annotations

import glob
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

WARMUP_S = 4.0
MEASURE_S = 20.0
REPEATS = 3
BME280_1000 = {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}
WORKLOADS = (
    # (name, records/s, environment, share of a core before, target)
    ("bme280, 1,000 devices every 1 s", 1000, BME280_1000, 0.67, 0.10),
    ("ecommerce, seed defaults", 35, {"SYNTHSTREAM_STREAMS": "ecommerce"}, 0.88, 0.05),
    ("air_quality at 33/s", 33,
     {"SYNTHSTREAM_STREAMS": "air_quality", "SYNTHSTREAM_AIR_QUALITY__RATE__TOTAL_PER_S": "33"},
     0.13, 0.03),
)  # fmt: skip
# What a wake costs, whatever it carries: BME280 at one record a wake, and at 1,000/s with
# wakes half as often (a 40 ms budget).
PER_WAKE = (
    ("bme280, 50 devices every 1 s", {"SYNTHSTREAM_BME280__DEVICES": "50",
                                      "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}),
    ("bme280, 1,000 devices, 40 ms ticks", {**BME280_1000, "SYNTHSTREAM_LIVE__TICK_MS": "40"}),
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def generated(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("synthstream_records_generated_total"))


def switches(pid: int) -> int:
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")):
                        total += int(line.split()[1])
        except OSError:  # a thread that just ended
            continue
    return total


def live(env: dict[str, str]) -> tuple[float, float, float]:
    """(share of a core, records generated per second, context switches per second) over
    MEASURE_S of a live run."""
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", out,
             "--duration", str(WARMUP_S + MEASURE_S + 4), "--metrics-port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json", **env},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    scrape(port)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("the producer did not serve /metrics") from None
                    time.sleep(0.1)
            time.sleep(WARMUP_S)
            first, t0, k0 = scrape(port), time.monotonic(), switches(proc.pid)
            time.sleep(MEASURE_S)
            last, t1, k1 = scrape(port), time.monotonic(), switches(proc.pid)
        finally:
            proc.wait(timeout=60)
        assert proc.returncode == 0, proc.returncode
    cpu = last["process_cpu_seconds_total"] - first["process_cpu_seconds_total"]
    span = t1 - t0
    return cpu / span, (generated(last) - generated(first)) / span, (k1 - k0) / span


def backfill_per_cpu_second() -> float:
    """BME280 records per CPU-second of a backfill through the file sink, start-up left out."""

    def cpu(minutes: int) -> tuple[float, int]:
        with tempfile.TemporaryDirectory() as out:
            args = [sys.executable, "-m", "producer", "run", "--backfill",
                    "--start", "2026-03-02T00:00:00", "--end", f"2026-03-02T00:{minutes:02d}:00",
                    "--sinks", "file", "--out", out, "--metrics-port", "0"]  # fmt: skip
            env = {**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json", **BME280_1000}
            proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            _, status, usage = os.wait4(proc.pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            return usage.ru_utime + usage.ru_stime, minutes * 60 * 1000

    startup, few = cpu(1)
    spent, records = cpu(30)
    return (records - few) / (spent - startup)


FLOOR = """
import asyncio, resource, sys, time
import uvloop
async def main(hz):
    end = time.monotonic() + 10
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    while time.monotonic() < end:
        await asyncio.sleep(1 / hz)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
uvloop.run(main(float(sys.argv[1])))
"""


def floor(hz: int) -> float:
    """The share of a core an event loop costs here that only wakes ``hz`` times a second."""
    out = subprocess.run([sys.executable, "-c", FLOOR, str(hz)], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(out.stdout) / 10


def main() -> None:
    print("live cost, file sink; CPU from each process's own counters over 20 s after 4 s,")
    print("median of 3 runs taken in turn")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in WORKLOADS}
    runs.update({name: [] for name, _ in PER_WAKE})
    for _ in range(REPEATS):
        for name, _rate, env, _before, _target in WORKLOADS:
            runs[name].append(live(env))
        for name, env in PER_WAKE:
            runs[name].append(live(env))
    print(
        f"{'workload':<34} {'rec/s':>7} {'before':>7} {'now':>7} {'target':>7} {'switches/s':>11}"
    )
    per_cpu_live = 0.0
    for name, rate, _env, before, target in WORKLOADS:
        share = statistics.median(r[0] for r in runs[name])
        made = statistics.median(r[1] for r in runs[name])
        woke = statistics.median(r[2] for r in runs[name])
        spread = f"({min(r[0] for r in runs[name]):.1%}-{max(r[0] for r in runs[name]):.1%})"
        if rate == 1000:
            per_cpu_live = made / share
        print(f"{name:<34} {made:>7,.0f} {before:>7.0%} {share:>7.1%} {target:>7.0%} "
              f"{woke:>11,.0f}  {spread}")  # fmt: skip
    print("what a wake costs (same columns; the cost follows the wakes, not the records):")
    for name, _env in PER_WAKE:
        share = statistics.median(r[0] for r in runs[name])
        made = statistics.median(r[1] for r in runs[name])
        woke = statistics.median(r[2] for r in runs[name])
        print(f"{name:<34} {made:>7,.0f} {'':>7} {share:>7.1%} {'':>7} {woke:>11,.0f}")
    print(f"for scale: an event loop that only wakes 50 times a second costs {floor(50):.1%} "
          "of a core here")  # fmt: skip
    per_cpu_backfill = backfill_per_cpu_second()
    print(f"bme280 records per CPU-second: live at 1,000/s {per_cpu_live:,.0f}, "
          f"backfill {per_cpu_backfill:,.0f}: {per_cpu_live / per_cpu_backfill:.1%} "
          f"(target >= 10 %; before: about 1,500, 0.6 %)")  # fmt: skip


if __name__ == "__main__":
    main()
