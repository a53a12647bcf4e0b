"""The engine takes "now" from the clock it is handed, and nowhere else."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.metrics import Metrics

LEAP_MIDNIGHT = round(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)


class ShiftedClock:
    """Wall time moved to another instant: it runs at the real rate from ``start_ms``."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms, self.t0 = start_ms, time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + round((time.monotonic() - self.t0) * 1000)

    def monotonic(self) -> float:
        return time.monotonic()


async def test_a_live_run_takes_its_time_from_the_clock_it_is_handed(tmp_path: Path) -> None:
    settings = load_settings(
        {"duration_s": 1.5, "metrics": {"enabled": False}, "log": {"level": "warning"},
         "sinks": {"file": {"dir": str(tmp_path)}},
         "bme280": {"devices": 20, "sinks": "file", "rate": {"interval_s": 0.25},
                    "faults": {"drop_rate": 0, "duplicate_rate": 0}}},
        environ={},
    )  # fmt: skip
    start = LEAP_MIDNIGHT - 500  # the last half second of 29 February 2024
    outcome = await Engine(settings, Metrics(), clock=ShiftedClock(start)).run(Stopper())
    assert outcome.exit_code == 0
    rows = [orjson.loads(line) for path in sorted((tmp_path / "bme280").glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]  # fmt: skip
    stamps = sorted(r["timestamp"] for r in rows)
    assert len(rows) == outcome.generated > 80
    assert stamps[0].startswith("2024-02-29T23:59:59"), stamps[0]
    assert stamps[-1].startswith("2024-03-01T00:00:0"), stamps[-1]
    # Files roll by event time: one before midnight's hour, one after.
    assert sorted(p.name[:22] for p in (tmp_path / "bme280").glob("*.jsonl")) == [
        "bme280-20240229T230000", "bme280-20240301T000000"]  # fmt: skip
