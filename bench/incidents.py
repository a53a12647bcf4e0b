"""The incident data sets at the seed's scale: 1,000,000 incidents with units, assets and
notes, to Parquet and to CSV, each in its own process (wall time includes start-up).

Prints wall seconds, rows per table, size on disk and the process's peak RSS.
Targets: Parquet <= 20 s, CSV <= 40 s, peak RSS <= 1 GB.

    python -m bench.incidents [INCIDENTS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from bench.child import run_measured


def main(count: int) -> None:
    print(f"incidents: {count:,} incidents + units, assets, notes (San Diego, 25 stations)")
    for fmt in ("parquet", "csv"):
        with tempfile.TemporaryDirectory() as folder:
            args = [sys.executable, "-m", "producer", "incidents", "--incident-count", str(count),
                    "--output-format", fmt, "--output-dir", folder, "--seed", "1",
                    "--start-datetime", "2024-06-01T00:00:00", "--no-verbose",
                    "--log-format", "json"]  # fmt: skip
            stderr, wall, rss = run_measured(args, dict(os.environ))
        summary = next(json.loads(line) for line in stderr.splitlines()
                       if '"incident_tables_written"' in line)  # fmt: skip
        rows = ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items())
        print(f"  {fmt:>8}: {wall:5.1f} s wall, {summary['size_mb']:6.1f} MB, peak RSS "
              f"{rss:4.0f} MB ({rows})")  # fmt: skip
    print("targets: parquet <= 20 s, csv <= 40 s, peak RSS <= 1,024 MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
