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


def run(name: str) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as out:
        stderr, elapsed, rss = run_measured(
            [sys.executable, "-m", "producer", "run", "--dataset", name, "--out", out,
             "--metrics-port", "0", "--progress", "off"],
            {**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json"},
        )  # fmt: skip
    written = next(json.loads(line) for line in stderr.splitlines() if '"dataset_written"' in line)
    return int(written["records"]), elapsed, rss


def main() -> None:
    print(f"{'dataset':>8} {'records':>12} {'seconds':>8} {'records/s':>11} {'peak RSS MB':>12}")
    for name in ("sample", "full"):
        records, seconds, rss = run(name)
        print(f"{name:>8} {records:>12,} {seconds:>8.2f} {records / seconds:>11,.0f} {rss:>12.0f}")
    print("targets: sample <= 1 s; full <= 10 s with peak RSS <= 400 MB")


if __name__ == "__main__":
    main()
