"""The seed's air-quality data sets, ``synthstream run --dataset sample|full``: a backfill
preset of the air-quality kind (``AirQualitySettings.options``) whose Parquet file goes to
``data/generated/``."""

from __future__ import annotations

from typing import Any

from producer.plugins import Option

# name -> (start, end, cities)
DATASETS = {
    "sample": ("2024-01-01T00:00:00", "2025-01-01T00:00:00", 50),
    "full": ("2020-01-01T00:00:00", "2025-01-01T00:00:00", 300),
}
ROW_GROUP_ROWS = 200_000


def preset(name: str, tree: dict[str, Any], flags: dict[str, str]) -> None:
    """A data set is a backfill preset; flags the user gave explicitly still win."""
    start, end, cities = DATASETS[name]
    backfill = tree.setdefault("backfill", {})
    backfill.update({"enabled": True, "dataset": name})
    flags.setdefault("backfill", "--dataset")
    backfill.setdefault("start", start)
    backfill.setdefault("end", end)
    tree.setdefault("streams", "air_quality")
    stream = tree.setdefault("air_quality", {})
    stream.setdefault("sinks", "file")
    stream.update({
        "cities": cities,
        "rate": {"interval_s": 3600, "aligned": True, "total_per_s": None},
        "faults": {"drop_rate": 0, "duplicate_rate": 0},
    })  # fmt: skip
    tree.setdefault("out", "data/generated")
    file = tree.setdefault("sinks", {}).setdefault("file", {})
    # Row groups of 200,000 rows: each is encoded while the next hours are generated (with
    # 500,000 the generator waited on every flush: 1.5 s more for `full`).
    file.setdefault("row_group_rows", ROW_GROUP_ROWS)
    file.update({"format": "parquet", "roll_interval_s": 20 * 365 * 86_400.0,
                 "roll_bytes": 2**62, "name": f"batch_{name}"})  # fmt: skip


DATASET = Option(
    "--dataset",
    "air-quality history: sample (2024, 50 cities, hourly: 439,200 records) or full "
    "(2020-2024, 300 cities: 13,154,400) as Parquet under data/generated/",
    preset,
    choices=tuple(DATASETS),
)
