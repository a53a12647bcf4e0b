"""What a live run costs: CPU per second of running, for the seeds' live workloads.

Runs ``synthstream run --sinks file`` as a user would, once for 2 s and once for 22 s, and
takes the CPU of each process from its own counters (``wait4``'s resource usage): the
difference is what 20 s of running cost, start-up left out. Prints the share of a core next
to the figures measured before coalesced ticks (every millisecond, 20 s runs with start-up).

    python -m bench.live
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

WORKLOADS = (
    # (name, records/s, environment, share of a core before, target)
    ("bme280, 1,000 devices every 1 s", 1000,
     {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"},
     0.67, 0.10),
    ("ecommerce, seed defaults", 35, {"SYNTHSTREAM_STREAMS": "ecommerce"}, 0.88, 0.05),
    ("air_quality at 33/s", 33,
     {"SYNTHSTREAM_STREAMS": "air_quality", "SYNTHSTREAM_AIR_QUALITY__RATE__TOTAL_PER_S": "33"},
     0.13, 0.03),
)  # fmt: skip


def cpu_seconds(env: dict[str, str], duration: float) -> float:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", out,
             "--duration", str(duration), "--metrics-port", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json", **env},
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == 0, proc.returncode
        return float(usage.ru_utime + usage.ru_stime)


def main() -> None:
    print("live cost, file sink, CPU from each process's own counters (22 s run - 2 s run)")
    print(f"{'workload':<34} {'rec/s':>6} {'before':>7} {'now':>7} {'target':>7}")
    for name, rate, env, before, target in WORKLOADS:
        short, long = cpu_seconds(env, 2), cpu_seconds(env, 22)
        share = max(long - short, 0.0) / 20
        print(f"{name:<34} {rate:>6,} {before:>7.0%} {share:>7.1%} {target:>7.0%}")


if __name__ == "__main__":
    main()
