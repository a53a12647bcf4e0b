"""The incidents' region: a real city, its stations spread over it, streets, postal codes
and the department's people."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from producer import rng
from producer.domains.ecommerce.shop import US_STATES
from producer.generators import (
    names,
)
from producer.geography import load_cities, metres_between, wkt
from producer.rng import I64
from producer.timeline import hour_of_day, weekday
from producer.zones import zone_table

AREA_CODES = {"San Diego": "619", "Los Angeles": "213", "New York City": "212", "Chicago": "312",
              "Houston": "713", "Phoenix": "602", "Philadelphia": "215", "San Antonio": "210",
              "Dallas": "214", "Brooklyn": "718", "Queens": "718", "Manhattan": "212",
              "The Bronx": "718"}  # fmt: skip


@dataclass(frozen=True)
class Station:
    code: str
    number: int
    lat: float
    lng: float
    radius_m: float


class City:
    """The region: a real city, its stations spread over it, streets and postal codes."""

    def __init__(self, name: str, stations: int, seed: int) -> None:
        cities = load_cities()
        names = cities.name.tolist()
        if name not in names:
            raise ValueError(f"unknown city {name!r}")
        i = names.index(name)
        self.name = name
        self.country = str(cities.country_code[i])
        self.zone = cities.timezone[i]
        self.lat, self.lng = float(cities.latitude[i]), float(cities.longitude[i])
        self.region = US_STATES.get(name) or self.country
        key = rng.text_key(seed, "incidents", "city", name)
        n = stations
        ids = np.arange(n, dtype=np.int64)
        u = rng.uniform_block(rng.combine(key, ids), 6)
        # Stations on a sunflower spiral (even cover of a disk), jittered; the city's radius
        # grows with the number of stations (about 12 km^2 of first-due area each).
        area_km2 = 12.0 * n
        radius = math.sqrt(area_km2 / math.pi) * 1000.0
        golden = math.pi * (3 - math.sqrt(5))
        r = radius * np.sqrt((ids + 0.5) / n) + (u[:, 0] - 0.5) * 600
        theta = ids * golden + (u[:, 1] - 0.5) * 0.3
        lat = self.lat + (r * np.sin(theta)) / 111_320.0
        lng = self.lng + (r * np.cos(theta)) / (111_320.0 * math.cos(math.radians(self.lat)))
        self.st_lat, self.st_lng = np.round(lat, 6), np.round(lng, 6)
        # Coverage: far enough to overlap the neighbours (first-due area plus mutual aid).
        spacing = math.sqrt(area_km2 / n) * 1000.0
        self.radius_m = np.round(spacing * (0.9 + 0.5 * u[:, 2]) / 100) * 100
        # Busier near the centre (denser population), never idle.
        from_centre = metres_between(self.st_lat, self.st_lng, np.full(n, self.lat),
                                     np.full(n, self.lng))  # fmt: skip
        self.weight = 0.4 + np.exp(-from_centre / max(radius, 1.0) * 2.0) * (0.8 + 0.4 * u[:, 3])
        self.codes = [f"STN-{i + 1:03d}" for i in range(n)]
        # Neighbours of each station, nearest first (the station itself first).
        d = metres_between(self.st_lat[:, None], self.st_lng[:, None], self.st_lat[None, :],
                           self.st_lng[None, :])  # fmt: skip
        self.nearest = np.argsort(d, axis=1, kind="stable")
        self.battalion = (np.arange(n) * 5 // max(n, 1)) + 1
        self.streets, self.postal = _streets(seed, name, n)
        self.area_code = AREA_CODES.get(name, "555")

    def local_hour_weekday(self, t: I64) -> tuple[I64, I64]:
        local = t + self.offsets_ms(t)
        return hour_of_day(local), weekday(local)

    def offsets_ms(self, t: I64) -> I64:
        """The city's UTC offset at each instant."""
        return zone_table(self.zone).offsets_ms(0, t)


@functools.lru_cache(maxsize=8)
def _streets(seed: int, city: str, stations: int) -> tuple[list[list[str]], list[list[str]]]:
    """Per station: 40 street names and 3 postal codes of the city, seeded by the city."""
    key = rng.text_key(seed, "incidents", "streets", city)
    state = US_STATES.get(city)
    streets = []
    postal = []
    for s in range(stations):
        keys = rng.combine(rng.combine(key, s), np.arange(60)).tolist()
        street_names = sorted(dict.fromkeys(names.street(k) for k in keys))[:40]
        streets.append(street_names)
        postal.append([names.zip_code(keys[k], k, city, state) for k in range(3)])
    return streets, postal


def staff(seed: int, count: int = 150) -> list[str]:
    """The department's people who write notes, seeded."""
    ranks = ("FF", "Eng.", "Lt.", "Capt.", "BC", "Medic", "Disp.")
    keys = rng.combine(rng.text_key(seed, "incidents", "staff"), np.arange(count)).tolist()
    people = [names.person(k) for k in keys]
    return [f"{ranks[i % len(ranks)]} {first} {last}" for i, (first, last) in enumerate(people)]


def station_table(city: City, seed: int) -> dict[str, Any]:
    """The stations as columns."""
    n = len(city.codes)
    keys = rng.combine(rng.text_key(seed, "incidents", "stations"), np.arange(n))
    u = rng.uniform_block(keys, 3)
    commissioned = (np.datetime64("1952-01-01") + (u[:, 0] * 25_000).astype(np.int64)).astype(
        "datetime64[D]"
    )
    created = np.datetime64("2019-01-01T00:00:00.000") + (u[:, 1] * 86_400_000 * 30).astype(
        "timedelta64[ms]"
    )
    people = rng.combine(rng.text_key(seed, "incidents", "stations", city.name),
                         np.arange(n)).tolist()  # fmt: skip
    return {
        "station_code": city.codes,
        "name": [f"Station {i + 1} - {names.person(k)[1]}" for i, k in enumerate(people)],
        "battalion": [f"BAT-{b}" for b in city.battalion.tolist()],
        "address_line_1": [
            f"{names.house_number(k)} {city.streets[i][k % len(city.streets[i])]}"
            for i, k in enumerate(people)
        ],
        "address_line_2": [None] * n,
        "city": [city.name] * n,
        "region": [city.region] * n,
        "postal_code": [city.postal[i][0] for i in range(n)],
        "phone": [names.phone(k, city.area_code) for k in people],
        "is_active": [True] * n,
        "commissioned_on": commissioned,
        "decommissioned_on": [None] * n,
        "response_zone_code": [f"RZ-{i + 1:02d}" for i in range(n)],
        "location_lat": city.st_lat,
        "location_lng": city.st_lng,
        "location_wkt": wkt(city.st_lat, city.st_lng),
        "coverage_radius_meters": city.radius_m.astype(np.int64),
        "created_at": created,
        "updated_at": created + (u[:, 2] * 86_400_000 * 900).astype("timedelta64[ms]"),
    }
