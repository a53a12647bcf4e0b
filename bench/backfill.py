"""Backfill throughput and memory: 1,000 devices x 7 days at 10 s (60.48 M records) to Parquet.

Runs the CLI as a user would (``synthstream run --backfill ... --sinks file``, Parquet with
Snappy) in a child process and prints wall time, records/s and the child's peak RSS, plus
the same for JSON lines over one day for comparison.
Targets: the Parquet backfill in under 60 s with peak RSS <= 400 MB.

    python -m bench.backfill [DAYS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.child import run_measured


def run(days: float, fmt: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        env = {
            **os.environ,
            "SYNTHSTREAM_LOG__FORMAT": "json",
            "SYNTHSTREAM_BME280__DEVICES": "1000",
            "SYNTHSTREAM_SINKS__FILE__FORMAT": fmt,
        }
        end_hours = round(days * 24)
        end = f"2024-01-{1 + end_hours // 24:02d}T{end_hours % 24:02d}:00:00"
        stderr, elapsed, rss_mb = run_measured(
            [sys.executable, "-m", "producer", "run", "--backfill", "--start",
             "2024-01-01T00:00:00", "--end", end, "--sinks", "file", "--out", out,
             "--metrics-port", "0", "--progress", "off"],
            env,
        )  # fmt: skip
        summary = json.loads(stderr.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    records = summary["streams"]["bme280"]["sinks"]["file"]["delivered"]
    return {"records": records, "seconds": elapsed, "rss_mb": rss_mb, "bytes": size}


def main() -> None:
    days = float(sys.argv[1]) if len(sys.argv) > 1 else 7.0
    print("backfill, 1,000 BME280 devices at 10 s, through the CLI")
    print(f"{'format':>8} {'days':>5} {'records':>12} {'seconds':>8} {'records/s':>11} "
          f"{'peak RSS MB':>12} {'output MB':>10}")  # fmt: skip
    for fmt, span in (("jsonl", min(days, 1.0)), ("parquet", days)):
        r = run(span, fmt)
        rate, size_mb = r["records"] / r["seconds"], r["bytes"] / 2**20
        print(
            f"{fmt:>8} {span:>5g} {r['records']:>12,} {r['seconds']:>8.1f} "
            f"{rate:>11,.0f} {r['rss_mb']:>12.0f} {size_mb:>10.0f}"
        )
    print("targets: 60.48 M records to Parquet in < 60 s, peak RSS <= 400 MB")


if __name__ == "__main__":
    main()
