"""E-commerce generation on one core: all five topics, faults and ground truth on.

Runs in a child process (so its peak RSS is its own): the default catalog (10,000 users,
1,000 products) over hours of event time in backfill-sized windows (5 minutes) and in
live-sized ones (100 ms); per window the source advances, each channel's faults apply and
the ground truth is written. Prints records/s for generation (+ faults + ground truth), for
JSON encoding of the same records, and the child's peak RSS.
Targets: generation >= 100,000 events/s, peak RSS <= 150 MB.

    python -m bench.ecommerce
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.child import run_measured

T0 = 1_714_996_800_000  # 2024-05-06 12:00 UTC, a Monday at midday in Europe


def child(hours: float, window_ms: int, folder: str) -> None:
    from producer.config import load_settings
    from producer.encoding import encode_jsonl
    from producer.streams import build_stream

    settings = load_settings(
        {"streams": "ecommerce", "sinks": {"file": {"dir": folder}},
         "ecommerce": {"faults": {"drop_rate": 0.001, "duplicate_rate": 0.005,
                                  "ground_truth": True}}},
        environ={},
    )  # fmt: skip
    stream = build_stream("ecommerce", settings)
    gen_s = json_s = 0.0
    count = 0
    end = T0 + int(hours * 3_600_000)
    for t in range(T0, end, window_ms):
        started = time.perf_counter()
        out = stream.source.advance(t, t + window_ms, None)
        results = []
        for channel in stream.channels:
            result = channel.faults.apply(out.get(channel.name), t + window_ms)
            channel.record_ground_truth(result.truth)
            results.append((channel.name, result.batch))
        middle = time.perf_counter()
        for name, batch in results:
            if len(batch):
                encode_jsonl(stream.source.channels[name], batch)
            count += len(batch)
        json_s += time.perf_counter() - middle
        gen_s += middle - started
    print(json.dumps({"records": count, "gen_s": gen_s, "json_s": json_s}), file=sys.stderr)


def main() -> None:
    print("ecommerce: 10,000 users, 1,000 products, all five topics, faults + ground truth")
    print(f"{'window':>16} {'records':>10} {'gen rec/s':>12} {'json rec/s':>12} "
          f"{'both rec/s':>12} {'peak RSS':>9}")  # fmt: skip
    for label, hours, window in (("5 min (backfill)", 6, 300_000), ("100 ms (live)", 0.5, 100)):
        with tempfile.TemporaryDirectory() as folder:
            args = [sys.executable, "-m", "bench.ecommerce", "child", str(hours), str(window),
                    folder]  # fmt: skip
            stderr, _, rss = run_measured(args, dict(os.environ))
            assert any(Path(folder).glob("*.ground-truth.jsonl"))
        figures = json.loads(stderr.strip().splitlines()[-1])
        n, gen, enc = figures["records"], figures["gen_s"], figures["json_s"]
        print(f"{label:>16} {n:>10,} {n / gen:>12,.0f} {n / enc:>12,.0f} "
              f"{n / (gen + enc):>12,.0f} {rss:>6.0f} MB")  # fmt: skip
        ticks = hours * 3_600_000 / window
        print(f"{'':>16} CPU per window: {1000 * (gen + enc) / ticks:.2f} ms")
    print("targets: generation >= 100,000 events/s; peak RSS <= 150 MB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        main()
