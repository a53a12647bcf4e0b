"""Score a detector against synthstream's ground truth: precision and recall per fault kind.

    synthstream run --backfill --start 2024-01-01 --end 2024-01-02 --sinks file --out out \\
        with SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH=true and some fault rates set, then
    python examples/score_detector.py out

The detector here is deliberately naive (a repeated message_id is a duplicate; a reading far
from its device's previous one is an anomaly; a null is a dropout; a timestamp older than one
already seen from the device is late): replace ``detect`` with yours. Records are joined on
``message_id``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

ANOMALIES = {"spike", "stuck", "drift", "dropout", "step"}


def detect(rows: list[dict[str, object]]) -> dict[str, set[str]]:
    """message_ids flagged, by the kind the detector believes they are."""
    flagged: dict[str, set[str]] = defaultdict(set)
    seen: set[object] = set()
    last: dict[object, dict[str, object]] = {}
    newest: dict[object, str] = {}
    for row in rows:
        mid, device = row["message_id"], row["device_id"]
        if mid in seen:
            flagged["duplicate"].add(str(mid))
            continue
        seen.add(mid)
        stamp = str(row["timestamp"])
        if stamp < newest.get(device, ""):
            flagged["late"].add(str(mid))
        newest[device] = max(stamp, newest.get(device, ""))
        previous = last.get(device)
        for column, jump in (("temperature_c", 5.0), ("humidity", 15.0), ("pressure_hpa", 8.0)):
            value = row[column]
            before = previous.get(column) if previous else None
            if value is None or (
                isinstance(value, float)
                and isinstance(before, float)
                and abs(value - before) > jump
            ):
                flagged["anomaly"].add(str(mid))
        last[device] = row
    return flagged


def main(folder: Path) -> None:
    rows = [json.loads(line) for f in sorted((folder / "bme280").glob("*.jsonl"))
            for line in f.read_text().splitlines()]  # fmt: skip
    truth: dict[str, set[str]] = defaultdict(set)
    for line in (folder / "bme280.ground-truth.jsonl").read_text().splitlines():
        entry = json.loads(line)
        kind = "anomaly" if entry["kind"] in ANOMALIES else entry["kind"]
        truth[kind].add(entry["message_id"])
    flagged = detect(rows)
    print(f"{'kind':>10} {'true':>7} {'flagged':>8} {'precision':>10} {'recall':>7}")
    for kind in sorted(set(truth) | set(flagged)):
        hits = len(truth[kind] & flagged[kind])
        precision = hits / len(flagged[kind]) if flagged[kind] else float("nan")
        recall = hits / len(truth[kind]) if truth[kind] else float("nan")
        print(f"{kind:>10} {len(truth[kind]):>7} {len(flagged[kind]):>8} "
              f"{precision:>10.3f} {recall:>7.3f}")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/out"))
