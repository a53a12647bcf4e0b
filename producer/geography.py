"""Geography shared by the domains: the 300 real cities (coordinates, population, time
zone, coastal and industrial flags, base pollution) of ``producer/data/cities.csv``,
distances on the globe, geohashes and WKT points."""

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


def metres_between(lat1: F64, lng1: F64, lat2: F64, lng2: F64) -> F64:
    """Great-circle distance (haversine), metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lng2 - lng1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: F64 = 2 * 6_371_000.0 * np.arcsin(np.sqrt(a))
    return out


_BASE32 = np.frombuffer(b"0123456789bcdefghjkmnpqrstuvwxyz", dtype=np.uint8)


def geohash(lat: F64, lng: F64, precision: int) -> npt.NDArray[np.bytes_]:
    """Geohashes of points, vectorised: interleave longitude and latitude bits, base32. A
    point without a position (NaN: a dropout injected by faults) has the empty hash."""
    valid = np.isfinite(lat) & np.isfinite(lng)
    lat, lng = np.where(valid, lat, 0.0), np.where(valid, lng, 0.0)
    bits = 5 * precision
    lng_bits = (bits + 1) // 2
    lat_bits = bits // 2
    x = np.minimum(((lng + 180.0) / 360.0 * (1 << lng_bits)).astype(np.uint64),
                   np.uint64((1 << lng_bits) - 1))  # fmt: skip
    y = np.minimum(((lat + 90.0) / 180.0 * (1 << lat_bits)).astype(np.uint64),
                   np.uint64((1 << lat_bits) - 1))  # fmt: skip
    code = np.zeros(lat.size, dtype=np.uint64)
    for i in range(bits):  # bit i (from the top): even positions longitude, odd latitude
        if i % 2 == 0:
            bit = (x >> np.uint64(lng_bits - 1 - i // 2)) & np.uint64(1)
        else:
            bit = (y >> np.uint64(lat_bits - 1 - i // 2)) & np.uint64(1)
        code = (code << np.uint64(1)) | bit
    chars = np.empty((lat.size, precision), dtype=np.uint8)
    for c in range(precision):
        shift = np.uint64(5 * (precision - 1 - c))
        chars[:, c] = _BASE32[((code >> shift) & np.uint64(31)).astype(np.int64)]
    chars[~valid] = 0  # reads as b""
    return chars.view(f"S{precision}").reshape(lat.size)


def geohash_bounds(text: str) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lng_min, lng_max) of a geohash cell: the reference decoder."""
    lat = [-90.0, 90.0]
    lng = [-180.0, 180.0]
    even = True
    for ch in text:
        value = "0123456789bcdefghjkmnpqrstuvwxyz".index(ch)
        for shift in range(4, -1, -1):
            half = lng if even else lat
            mid = (half[0] + half[1]) / 2
            if value >> shift & 1:
                half[0] = mid
            else:
                half[1] = mid
            even = not even
    return lat[0], lat[1], lng[0], lng[1]


def wkt(lat: F64, lng: F64) -> list[str]:
    return [f"POINT({x:.6f} {y:.6f})" for x, y in zip(lng.tolist(), lat.tolist(), strict=True)]
