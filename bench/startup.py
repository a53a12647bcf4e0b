"""Startup to first record: from spawning ``synthstream run`` to its first line on stdout.

1,000 devices at a 1 s interval (so a record is due within a millisecond of the start), JSON
lines to stdout, five runs; prints each and the median. Target: under 1 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def once() -> float:
    env = {
        **os.environ,
        "SYNTHSTREAM_LOG__FORMAT": "json",
        "SYNTHSTREAM_BME280__DEVICES": "1000",
        "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--sinks", "stdout", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.terminate()
    proc.wait(timeout=30)
    return elapsed


def main() -> None:
    times = [once() for _ in range(5)]
    print("startup to first record (s): " + ", ".join(f"{t:.3f}" for t in times))
    print(f"median {statistics.median(times):.3f} s   target: < 1 s")


if __name__ == "__main__":
    main()
