"""Geography shared by the domains: the 300 real cities (coordinates, population, time
zone, coastal and industrial flags, base pollution) of ``producer/data/cities.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from producer.rng import F64, I64

CITIES_FILE = Path(__file__).resolve().parent / "data" / "cities.csv"


@dataclass(frozen=True)
class Cities:
    """City profiles as columns."""

    city_id: npt.NDArray[np.object_]
    name: npt.NDArray[np.object_]
    country: npt.NDArray[np.object_]
    country_code: npt.NDArray[np.object_]
    latitude: F64
    longitude: F64
    population: I64
    timezone: list[str]
    coastal: npt.NDArray[np.bool_]
    industrial: npt.NDArray[np.bool_]
    base: F64

    def __len__(self) -> int:
        return len(self.timezone)


@cache
def load_cities() -> Cities:
    with CITIES_FILE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> npt.NDArray[np.object_]:
        return np.array([r[name] for r in rows], dtype=object)

    return Cities(
        city_id=col("city_id"), name=col("city_name"), country=col("country_name"),
        country_code=col("country_code"),
        latitude=np.array([float(r["latitude"]) for r in rows]),
        longitude=np.array([float(r["longitude"]) for r in rows]),
        population=np.array([int(r["population"]) for r in rows], dtype=np.int64),
        timezone=[r["timezone"] for r in rows],
        coastal=np.array([r["coastal"] == "1" for r in rows]),
        industrial=np.array([r["industrial"] == "1" for r in rows]),
        base=np.array([float(r["base_pollution"]) for r in rows]),
    )  # fmt: skip


@cache
def city_names() -> list[str]:
    with CITIES_FILE.open(newline="", encoding="utf-8") as handle:
        return [row["city_name"] for row in csv.DictReader(handle)]
