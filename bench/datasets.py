"""The air-quality data sets through the CLI: ``--dataset sample`` and ``--dataset full``.

Runs each ``ROUNDS`` times (3) and prints the median and the range of the wall time
(process start to exit) and of the run itself, records/s at the median run, and the highest
peak RSS: the machines here are shared, and one run can be 20 % off either way.
Targets: full (13,154,400 records) in <= 10 s with peak RSS <= 400 MB; sample in <= 1 s.

Then the floor of ``full``: the columns it wrote, read back into memory, written again with
pyarrow alone (same row groups, same compression): what writing costs with no generation
at all. Each round runs one worker, two workers and the floor in turn; the speed of each
run is printed as a ratio of the floor's (1.0: as fast as writing alone). Targets: one
worker >= 0.9x, two workers faster than the floor.

    python -m bench.datasets [ROUNDS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.child import run_child

ROW_GROUP_ROWS = 200_000  # the data sets' row groups (producer/cli.py)


def run(name: str, workers: int = 1, floor: bool = False) -> tuple[int, float, float, float, float]:
    """(records, wall s, run s, peak RSS MB, CPU s); with ``floor``, the run s is the
    floor's."""
    with tempfile.TemporaryDirectory() as out:
        stderr, elapsed, usage = run_child(
            [sys.executable, "-m", "producer", "run", "--dataset", name, "--out", out,
             "--metrics-port", "0", "--progress", "off", "--workers", str(workers)],
            {**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json"},
        )  # fmt: skip
        events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        records = sum(int(e["records"]) for e in events if e["event"] == "dataset_written")
        finished = next(e for e in events
                        if e["event"] == "synthstream_finished" and "worker" not in e)  # fmt: skip
        rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        if floor:
            return records, elapsed, write_alone(Path(out)), rss, cpu
    return records, elapsed, float(finished["elapsed_s"]), rss, cpu


def write_alone(folder: Path) -> float:
    """Seconds pyarrow takes to write the columns of ``folder``'s Parquet files, in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(folder.rglob("*.parquet"))
    table = pq.read_table(files[0]) if len(files) == 1 else pq.read_table(files)
    table = table.combine_chunks()
    target = folder / "floor.parquet"
    started = time.perf_counter()
    with pq.ParquetWriter(target, table.schema, compression="snappy") as writer:
        for batch in table.to_batches(max_chunksize=ROW_GROUP_ROWS):
            writer.write_table(pa.Table.from_batches([batch]), row_group_size=ROW_GROUP_ROWS)
    return time.perf_counter() - started


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
    times: dict[str, list[float]] = {"1 worker": [], "2 workers": [], "floor": []}
    busy = []  # cores one worker keeps busy: CPU over wall, start-up included
    for _ in range(rounds):
        one = run("full")
        times["1 worker"].append(one[2])
        busy.append(one[4] / one[1])
        times["2 workers"].append(run("full", workers=2)[2])
        times["floor"].append(run("full", floor=True)[2])
    floor = statistics.median(times["floor"])
    print(f"full against its floor (pyarrow alone writing the same columns: median "
          f"{floor:.2f} s), speed as a share of the floor's, median of {rounds}:")  # fmt: skip
    for label in ("1 worker", "2 workers"):
        spent = statistics.median(times[label])
        print(f"  {label:<10} {spent:6.2f} s run: {floor / spent:.2f}x "
              f"(target {'>= 0.9x' if label == '1 worker' else '> 1.0x'})")  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    print(f"  1 worker keeps {statistics.median(busy):.2f} of {cores} cores busy (generating, "
          "and a thread encoding Parquet): the floor is that thread's work alone")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
