"""The air-quality data sets through the CLI: ``--dataset sample`` and ``--dataset full``.

Prints wall time (process start to exit), records/s and the child's peak RSS for each.
Targets: full (13,154,400 records) in <= 10 s with peak RSS <= 400 MB; sample in <= 1 s.
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


def main() -> None:
    print(f"{'dataset':>8} {'records':>12} {'wall s':>7} {'run s':>6} {'records/s':>11} "
          f"{'peak RSS MB':>12}")  # fmt: skip
    for name in ("sample", "full"):
        records, wall, run_s, rss = run(name)
        print(f"{name:>8} {records:>12,} {wall:>7.2f} {run_s:>6.2f} {records / run_s:>11,.0f} "
              f"{rss:>12.0f}")  # fmt: skip
    print("wall: process start to exit; run: the run itself, from the summary log line")
    print("targets: sample <= 1 s; full <= 10 s with peak RSS <= 400 MB")


if __name__ == "__main__":
    main()
