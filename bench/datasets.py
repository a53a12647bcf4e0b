"""The air-quality data sets through the CLI: ``--dataset sample`` and ``--dataset full``.

Prints wall time (process start to exit), records/s and the child's peak RSS for each.
Targets: full (13,154,400 records) in <= 10 s with peak RSS <= 400 MB; sample in <= 1 s.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def run(name: str) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-m", "producer", "run", "--dataset", name, "--out", out,
             "--metrics-port", "0", "--progress", "off"],
            env={**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json"},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    written = next(
        json.loads(line) for line in child.stderr.splitlines() if '"dataset_written"' in line
    )
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return int(written["records"]), elapsed, rss


def main() -> None:
    print(f"{'dataset':>8} {'records':>12} {'seconds':>8} {'records/s':>11} {'peak RSS MB':>12}")
    for name in ("sample", "full"):
        records, seconds, rss = run(name)
        print(f"{name:>8} {records:>12,} {seconds:>8.2f} {records / seconds:>11,.0f} {rss:>12.0f}")
    print("targets: sample <= 1 s; full <= 10 s with peak RSS <= 400 MB (RSS is the max so far)")


if __name__ == "__main__":
    main()
