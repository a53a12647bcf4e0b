"""The air-quality data sets through the CLI: ``--dataset sample`` and ``--dataset full``.

Runs each ``ROUNDS`` times (3) and prints the median and the range of the wall time
(process start to exit) and of the run itself, records/s at the median run, and the highest
peak RSS: the machines here are shared, and one run can be 20 % off either way.
Targets: full (13,154,400 records) in <= 10 s with peak RSS <= 400 MB; sample in <= 1 s.

    python -m bench.datasets [ROUNDS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from bench.child import run_measured


def run(name: str) -> tuple[int, float, float, float]:
    with tempfile.TemporaryDirectory() as out:
        stderr, elapsed, rss = run_measured(
            [sys.executable, "-m", "producer", "run", "--dataset", name, "--out", out,
             "--metrics-port", "0", "--progress", "off"],
            {**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json"},
        )  # fmt: skip
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    written = next(e for e in events if e["event"] == "dataset_written")
    finished = next(e for e in events if e["event"] == "synthstream_finished")
    return int(written["records"]), elapsed, float(finished["elapsed_s"]), rss


def main(rounds: int) -> None:
    print(f"{'dataset':>8} {'records':>12} {'wall s (min-max)':>20} {'run s (min-max)':>20} "
          f"{'records/s':>11} {'peak RSS MB':>12}")  # fmt: skip
    for name in ("sample", "full"):
        results = sorted((run(name) for _ in range(rounds)), key=lambda r: r[1])
        records = results[0][0]
        walls = [r[1] for r in results]
        runs = sorted(r[2] for r in results)
        mid = len(results) // 2
        wall_text = f"{walls[mid]:.2f} ({walls[0]:.2f}-{walls[-1]:.2f})"
        run_text = f"{runs[mid]:.2f} ({runs[0]:.2f}-{runs[-1]:.2f})"
        rss = max(r[3] for r in results)
        print(f"{name:>8} {records:>12,} {wall_text:>20} {run_text:>20} "
              f"{records / runs[mid]:>11,.0f} {rss:>12.0f}")  # fmt: skip
    print("wall: process start to exit; run: the run itself, from the summary log line")
    print("targets: sample <= 1 s; full <= 10 s with peak RSS <= 400 MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
