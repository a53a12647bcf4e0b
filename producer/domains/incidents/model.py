"""Fire/EMS incidents (seed 001): stations, incidents, units, assets and notes of one city.

One model serves both faces of the domain: the relational data sets (``synthstream
incidents``, see ``tables.py``) and the live ``incidents`` stream of lifecycle events.
Everything about incident ``s`` of year ``Y`` is a pure function of (seed, Y, s), and
its report time comes from one arrival model, so the tables of a window and a backfill of the
stream over that window describe the same incidents.

Arrivals: the expected count up to time t is ``rate x M(t)``, where M integrates a traffic
factor in the city's local time (calls peak in the afternoon, dip at 4 AM; weekends a little
busier at night). Incident ``s`` of a year is reported when ``rate x M`` reaches ``s - 1 + u``,
``u`` in [0.01, 0.99): exact counts over any window (to one at its edges), random spacing.

The model follows seed 004: types weighted and correlated with the day's weather (brush fires
on hot windy days, collisions in rain and fog), severity by type, delays per stage from
log-normals by type and severity, travel time from the real distance between the station and
the incident, conditional nulls by status as of the window's end, units from the stations
nearest the incident (the primary first); names, streets and phones from ``names``.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import numpy as np

from producer import rng
from producer.domains.incidents.city import City, staff
from producer.generators import (
    lognormal,
    poisson,
    weighted_choice,
    weighted_choice_rows,
)
from producer.geography import metres_between
from producer.rates import NEVER, Pace
from producer.rng import F64, I64, U64
from producer.timeline import DAY_MS, HOUR_MS, hour_curve

# ---------------------------------------------------------------------------- lookups
# (code, label, share, severity weights LOW/MODERATE/HIGH/CRITICAL, report delay median s,
#  on-scene median min, damage median USD (0: none), casualty mean)
INCIDENT_TYPES = (
    ("STRUCTURE_FIRE", "Structure Fire", 0.06, (0.15, 0.35, 0.35, 0.15), 240, 95, 45_000, 0.25),
    ("VEHICLE_FIRE", "Vehicle Fire", 0.03, (0.30, 0.45, 0.20, 0.05), 150, 35, 9_000, 0.08),
    ("BRUSH_FIRE", "Brush Fire", 0.03, (0.30, 0.35, 0.25, 0.10), 420, 120, 15_000, 0.03),
    ("MEDICAL", "Medical Emergency", 0.55, (0.25, 0.40, 0.25, 0.10), 90, 32, 0, 1.0),
    ("TRAFFIC_COLLISION", "Traffic Collision", 0.12, (0.25, 0.40, 0.25, 0.10), 60, 40, 7_500, 1.2),
    ("HAZMAT", "Hazardous Materials", 0.015, (0.20, 0.35, 0.30, 0.15), 180, 110, 20_000, 0.15),
    ("RESCUE", "Technical Rescue", 0.025, (0.10, 0.30, 0.40, 0.20), 120, 75, 0, 0.9),
    ("ALARM", "Alarm Activation", 0.10, (0.70, 0.25, 0.05, 0.00), 20, 15, 0, 0.0),
    ("GAS_LEAK", "Gas Leak", 0.02, (0.35, 0.40, 0.20, 0.05), 150, 45, 1_500, 0.05),
    ("PUBLIC_ASSIST", "Public Assist", 0.05, (0.80, 0.20, 0.00, 0.00), 300, 25, 0, 0.0),
)  # fmt: skip
TYPE_CODES = tuple(t[0] for t in INCIDENT_TYPES)
SEVERITY_CODES = ("LOW", "MODERATE", "HIGH", "CRITICAL")
STATUS_CODES = ("REPORTED", "DISPATCHED", "ON_SCENE", "RESOLVED", "CANCELLED")
REPORTED, DISPATCHED, ON_SCENE, RESOLVED, CANCELLED = range(len(STATUS_CODES))
SOURCE_CODES = ("PHONE_911", "ALARM_MONITORING", "FIELD_OBSERVATION", "MUTUAL_AID",
                "ONLINE_REPORT")  # fmt: skip
WEATHER_CODES = ("CLEAR", "CLOUDY", "RAIN", "FOG", "WIND", "STORM", "HEAT", "SNOW")
ASSIGNMENT_ROLES = ("PRIMARY", "SUPPORT", "COMMAND")
ASSET_TYPES = ("ENGINE", "LADDER", "MEDIC", "BATTALION_CHIEF", "HAZMAT_UNIT", "DRONE",
               "THERMAL_CAMERA", "RESCUE_BOAT")  # fmt: skip
ASSET_PREFIX = ("ENG", "LAD", "MED", "BC", "HM", "DRN", "TIC", "RB")
ASSET_STATUS = ("DEPLOYED", "RETURNED", "DAMAGED")
LOOKUPS: dict[str, tuple[str, ...]] = {
    "incident_type": TYPE_CODES, "severity": SEVERITY_CODES, "status": STATUS_CODES,
    "source": SOURCE_CODES, "weather_condition": WEATHER_CODES,
}  # fmt: skip

_SEVERITY_PACE = np.array([1.4, 1.0, 0.8, 0.6])  # dispatch delay factor by severity
_SEVERITY_SCENE = np.array([0.6, 1.0, 1.5, 2.4])  # time on scene factor
_SEVERITY_DAMAGE = np.array([0.2, 1.0, 4.0, 15.0])
_SEVERITY_UNITS = np.array([0.0, 0.5, 1.2, 2.0])  # extra units (before clipping)
# Type weight by weather: hot or windy days burn, wet roads crash, storms need rescues.
_WEATHER_FACTOR = np.ones((len(WEATHER_CODES), len(INCIDENT_TYPES)))
for _w, _factors in {
    "RAIN": {"TRAFFIC_COLLISION": 1.8, "BRUSH_FIRE": 0.2, "RESCUE": 1.3},
    "FOG": {"TRAFFIC_COLLISION": 1.6},
    "WIND": {"BRUSH_FIRE": 3.0, "STRUCTURE_FIRE": 1.2},
    "STORM": {"RESCUE": 2.5, "TRAFFIC_COLLISION": 1.5, "ALARM": 1.5, "BRUSH_FIRE": 0.3},
    "HEAT": {"BRUSH_FIRE": 4.0, "MEDICAL": 1.25, "VEHICLE_FIRE": 1.3},
    "SNOW": {"TRAFFIC_COLLISION": 2.0, "STRUCTURE_FIRE": 1.3, "BRUSH_FIRE": 0.05},
}.items():
    for _t, _f in _factors.items():
        _WEATHER_FACTOR[WEATHER_CODES.index(_w), TYPE_CODES.index(_t)] = _f
# Weather of a day by month (rows: Jan..Dec), for a temperate coastal city.
_WEATHER_BY_MONTH = np.array([
    [0.30, 0.30, 0.20, 0.08, 0.06, 0.04, 0.00, 0.02],
    [0.30, 0.30, 0.20, 0.08, 0.06, 0.04, 0.00, 0.02],
    [0.35, 0.28, 0.18, 0.08, 0.07, 0.04, 0.00, 0.00],
    [0.42, 0.28, 0.12, 0.08, 0.07, 0.03, 0.00, 0.00],
    [0.50, 0.25, 0.05, 0.12, 0.05, 0.01, 0.02, 0.00],
    [0.52, 0.22, 0.02, 0.14, 0.04, 0.01, 0.05, 0.00],
    [0.58, 0.15, 0.01, 0.10, 0.05, 0.01, 0.10, 0.00],
    [0.58, 0.14, 0.01, 0.08, 0.06, 0.01, 0.12, 0.00],
    [0.56, 0.15, 0.02, 0.07, 0.10, 0.01, 0.09, 0.00],
    [0.50, 0.20, 0.06, 0.06, 0.14, 0.02, 0.02, 0.00],
    [0.38, 0.28, 0.16, 0.06, 0.08, 0.04, 0.00, 0.00],
    [0.30, 0.30, 0.22, 0.07, 0.06, 0.04, 0.00, 0.01],
])  # fmt: skip
# Calls by local hour (midnight first): low at 4 AM, high 10:00-20:00; mean 1.
HOUR_CURVE = hour_curve([
    0.65, 0.55, 0.48, 0.42, 0.40, 0.45, 0.60, 0.85, 1.05, 1.20, 1.30, 1.35,
    1.38, 1.38, 1.36, 1.35, 1.36, 1.38, 1.35, 1.25, 1.15, 1.00, 0.88, 0.75,
])  # fmt: skip
_WEEKEND_NIGHT = 1.25  # Friday and Saturday nights 22-03 a little busier
_NARRATIVES: dict[str, tuple[str, ...]] = {
    "STRUCTURE_FIRE": ("Caller reports smoke showing from a {floors}-story residence.",
                       "Neighbour reports flames visible from the rear of a shop.",
                       "Smoke alarm and smell of burning in a {floors}-story apartment block."),
    "VEHICLE_FIRE": ("Passenger car fully involved on the shoulder.",
                     "Smoke from the engine compartment of a parked van."),
    "BRUSH_FIRE": ("Vegetation fire spreading uphill, {acres} acres estimated.",
                   "Grass fire near the roadway, wind pushing it east."),
    "MEDICAL": ("Adult patient with difficulty breathing.", "Fall with a possible hip injury.",
                "Unresponsive person, bystander CPR in progress.",
                "Chest pain, patient conscious."),
    "TRAFFIC_COLLISION": ("Two-vehicle collision with injuries reported.",
                          "Vehicle versus pedestrian at the intersection.",
                          "Single vehicle into a pole, driver trapped."),
    "HAZMAT": ("Unknown chemical odour reported at a warehouse.",
               "Fuel spill from a tanker, about {gallons} gallons."),
    "RESCUE": ("Person trapped in a stalled elevator.", "Swimmer in distress offshore.",
               "Worker trapped in a trench collapse."),
    "ALARM": ("Commercial fire alarm activation, no further information.",
              "Residential smoke detector activation, keyholder en route."),
    "GAS_LEAK": ("Strong smell of natural gas outside a residence.",
                 "Gas line struck by construction crew."),
    "PUBLIC_ASSIST": ("Lift assist for an elderly resident.", "Water leak flooding a basement."),
}  # fmt: skip
_NOTES = (
    "Units on scene, establishing command.", "Primary search negative.",
    "Patient transported to the regional hospital.", "Fire knocked down, overhaul in progress.",
    "Requesting an additional engine.", "Utilities secured.", "Scene turned over to police.",
    "Hazard area isolated, 100 m perimeter.", "All units clear, returning to quarters.",
    "Investigator requested.", "Traffic control established.", "Patient refused transport.",
)  # fmt: skip
# What the notes of an asset may say, by asset type (None: no note).
ASSET_NOTES: tuple[tuple[str | None, ...], ...] = (
    ("Supplied the primary attack line.", "Pumped from the hydrant at the corner.", None),
    ("Aerial ladder used for roof ventilation.", "Positioned on side A.", None),
    ("Transported one patient.", "Patient care handed over at the hospital.", None),
    ("Established command at side A.", None),
    ("Air monitoring at the perimeter.", "Decontamination corridor set up.", None),
    ("Aerial view of the fire line.", "Thermal imaging of the roof.", None),
    ("Thermal scan of the void spaces.", "Hot spots found in the attic.", None),
    ("Searched the shoreline.", "Recovered the person from the water.", None),
)  # fmt: skip


# ---------------------------------------------------------------------------- arrivals
class Arrivals:
    """Report times of incidents: ``rate x M(t)`` reaches ``s - 1 + u_s`` (see module doc).

    M is kept per year (incident numbers restart each year, as CAD numbers do) as hourly
    prefix sums of the local traffic factor, built on first use."""

    def __init__(self, city: City, rate_per_hour: float, key: int) -> None:
        self.city = city
        self.rate = rate_per_hour
        self.key = key
        # Live control's multiplier (the stream's; the tables have none): reports follow
        # rate x M~, where M~ integrates the multiplier times the traffic factor, so an
        # incident's number stays its rank in the year (see ``Pace``).
        self.pace: Pace | None = None
        self._warps: dict[tuple[int, tuple[int, ...], tuple[float, ...]], tuple[Any, ...]] = {}

    def _warp(self, year: int) -> tuple[list[int], F64, F64, F64] | None:
        """Under a pace that changed before the year's end: the year's start and each change
        in it, M and M~ there, and the multiplier from there on."""
        pace = self.pace
        end = _year_start_ms(year + 1)
        if pace is None or not pace.changes_before(end):
            return None
        key = (year, tuple(pace.at), tuple(pace.factor))
        found = self._warps.get(key)
        if found is None:
            start = _year_start_ms(year)
            points = [start, *[c for c in pace.at if start < c < end]]
            m = np.array([0.0, *[self.cumulative(p)[1] for p in points[1:]]])
            f = np.array([pace.factor_at(p) for p in points])
            steered = np.concatenate([[0.0], np.cumsum(f[:-1] * np.diff(m))])
            found = self._warps[key] = (points, m, steered, f)
        return found

    def steered(self, t: int) -> tuple[int, float]:
        """(year, M~ from the start of that year to t): ``cumulative`` under the pace."""
        year, m = self.cumulative(t)
        warp = self._warp(year)
        if warp is None:
            return year, m
        points, ms, steered, f = warp
        k = bisect_right(points, t) - 1
        return year, float(steered[k] + f[k] * (m - ms[k]))

    def _unsteer(self, year: int, target: F64) -> F64:
        """M for values of M~ (inf past a pause without end)."""
        warp = self._warp(year)
        if warp is None:
            return target
        _, ms, steered, f = warp
        k = np.searchsorted(steered, target, "right") - 1
        moving = f[k] > 0
        out: F64 = np.where(moving, ms[k] + (target - steered[k]) / np.where(moving, f[k], 1.0),
                            np.inf)  # fmt: skip
        return out

    @functools.lru_cache(maxsize=16)  # noqa: B019
    def _year(self, year: int) -> tuple[int, F64]:
        """(first hour of the year, UTC; cumulative factor at each hour boundary)."""
        start = int(np.datetime64(f"{year}-01-01", "ms").astype(np.int64)) // HOUR_MS
        end = int(np.datetime64(f"{year + 1}-01-01", "ms").astype(np.int64)) // HOUR_MS
        t = (np.arange(start, end, dtype=np.int64) * HOUR_MS) + HOUR_MS // 2
        hour, weekday = self.city.local_hour_weekday(t)
        factor = HOUR_CURVE[hour] * np.where(
            ((weekday == 4) | (weekday == 5)) & (hour >= 22), _WEEKEND_NIGHT, 1.0
        )
        factor *= np.where(((weekday == 5) | (weekday == 6)) & (hour < 3), _WEEKEND_NIGHT, 1.0)
        return start, np.concatenate([[0.0], np.cumsum(factor)])

    def factor_between(self, t0: int, t1: int) -> float:
        """Integral of the traffic factor over [t0, t1), in hours, across years (M restarts
        at each New Year, so a window over one is the sum of its parts)."""
        total = 0.0
        while t0 < t1:
            year, m0 = self.cumulative(t0)
            year_end = _year_start_ms(year + 1)
            if t1 < year_end:
                return total + self.cumulative(t1)[1] - m0
            total += float(self._year(year)[1][-1]) - m0
            t0 = year_end
        return total

    def cumulative(self, t: int) -> tuple[int, float]:
        """(year, M from the start of that year to t) for a time t."""
        year = int(np.datetime64(t, "ms").astype("datetime64[Y]").astype(int)) + 1970
        start, cum = self._year(year)
        h = t / HOUR_MS - start
        i = min(int(h), cum.size - 2)
        return year, float(cum[i] + (cum[i + 1] - cum[i]) * (h - i))

    def times(self, year: int, seq: I64) -> I64:
        """Report times of incidents ``seq`` (1-based) of ``year``."""
        start, cum = self._year(year)
        keys = self.keys(year, seq)
        target = self._unsteer(year, (seq - 1 + 0.01 + 0.98 * rng.uniform(keys, 0)) / self.rate)
        never = ~np.isfinite(target)
        target = np.where(never, 0.0, target)
        i = np.clip(np.searchsorted(cum, target, "right") - 1, 0, cum.size - 2)
        frac = (target - cum[i]) / np.maximum(cum[i + 1] - cum[i], 1e-12)
        out: I64 = (start + i) * HOUR_MS + np.floor(frac * HOUR_MS).astype(np.int64)
        return np.where(never, NEVER, out)

    def keys(self, year: int, seq: I64) -> U64:
        return rng.combine(rng.combine(self.key, year), seq)

    def between(self, t0: int, t1: int) -> list[tuple[int, I64]]:
        """Incidents reported in [t0, t1): (year, sequence numbers) per year touched."""
        out = []
        while t0 < t1:
            year, m0 = self.steered(t0)
            year_end = _year_start_ms(year + 1)
            end = min(t1, year_end)
            m1 = self.steered(end - 1)[1] if end == year_end else self.steered(end)[1]
            lo = max(1, math.floor(m0 * self.rate) - 1)
            hi = math.ceil(m1 * self.rate) + 2
            seq = np.arange(lo, hi, dtype=np.int64)
            t = self.times(year, seq)
            seq = seq[(t >= t0) & (t < end)]
            if seq.size:
                out.append((year, seq))
            t0 = end
        return out


def _year_start_ms(year: int) -> int:
    return int(np.datetime64(f"{year}-01-01", "ms").astype(np.int64))


# ---------------------------------------------------------------------------- incidents
@dataclass(frozen=True)
class Options:
    units_min: int = 1
    units_max: int = 3
    assets_probability: float = 0.35
    notes_probability: float = 0.55
    geohash_precision: int = 8


class IncidentModel:
    """Every column of incidents, units, assets and notes for blocks of incidents."""

    def __init__(self, city: City, arrivals: Arrivals, options: Options, seed: int) -> None:
        self.city = city
        self.arrivals = arrivals
        self.options = options
        self.staff = np.array(staff(seed), dtype=object)
        self.weather_key = rng.text_key(seed, "incidents", "weather", city.name)

    def weather(self, t: I64) -> I64:
        """The day's weather (local date), by month."""
        local = t + self.city.offsets_ms(t)
        day = local // DAY_MS
        month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        u = rng.uniform(rng.combine(self.weather_key, day), 0)
        return weighted_choice_rows(u, _WEATHER_BY_MONTH[month])

    def incidents(
        self, year: int, seq: I64, major: tuple[int, str, int] | None = None
    ) -> dict[str, Any]:
        """Core columns of incidents ``seq`` of ``year``: times as int64 ms (before the as-of
        cut), codes as indices, places, and what the child tables need. ``major`` makes them
        major incidents started by live control: (reported at, type, units), critical."""
        city, o = self.city, self.options
        keys = self.arrivals.keys(year, seq)
        reported = self.arrivals.times(year, seq) if major is None else np.full(seq.size, major[0])
        u = rng.uniform_block(keys, 24)
        weather = self.weather(reported)
        hour, _ = city.local_hour_weekday(reported)
        shares = np.array([t[2] for t in INCIDENT_TYPES])
        rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 18))
        weights = shares * _WEATHER_FACTOR[weather]
        weights[:, TYPE_CODES.index("TRAFFIC_COLLISION")] *= np.where(rush, 1.5, 1.0)
        kind = weighted_choice_rows(u[:, 0], weights)
        severity = weighted_choice_rows(u[:, 1], np.array([t[3] for t in INCIDENT_TYPES])[kind])
        if major is not None:
            kind = np.full(seq.size, TYPE_CODES.index(major[1]), dtype=kind.dtype)
            severity = np.full(seq.size, len(SEVERITY_CODES) - 1, dtype=severity.dtype)
        station = weighted_choice(u[:, 2], city.weight)
        # A point in the station's coverage disk (uniform over its area).
        dist = city.radius_m[station] * np.sqrt(u[:, 3]) * 0.98
        angle = 2 * np.pi * u[:, 4]
        lat = city.st_lat[station] + dist * np.sin(angle) / 111_320.0
        lng = city.st_lng[station] + dist * np.cos(angle) / (
            111_320.0 * np.cos(np.radians(city.st_lat[station]))
        )
        lat, lng = np.round(lat, 6), np.round(lng, 6)
        report_s = np.array([t[4] for t in INCIDENT_TYPES], dtype=np.float64)[kind]
        occurrence = reported - (lognormal(keys, 30, report_s, 0.7) * 1000).astype(np.int64)
        dispatch = reported + (
            lognormal(keys, 32, 75.0 * _SEVERITY_PACE[severity], 0.5) * 1000
        ).astype(np.int64)
        travel_m = metres_between(city.st_lat[station], city.st_lng[station], lat, lng) * 1.3
        travel_s = 70.0 + travel_m / (38_000 / 3600) * np.exp(0.2 * (u[:, 5] - 0.5))
        arrival = dispatch + (travel_s * 1000).astype(np.int64)
        scene_min = np.array([t[5] for t in INCIDENT_TYPES], dtype=np.float64)[kind]
        resolved = arrival + (
            lognormal(keys, 34, scene_min * _SEVERITY_SCENE[severity] * 60, 0.6) * 1000
        ).astype(np.int64)
        alarm = kind == TYPE_CODES.index("ALARM")
        cancelled = u[:, 6] < np.where(alarm, 0.15, 0.03)
        cancel_at = dispatch + (60_000 + u[:, 7] * 420_000).astype(np.int64)
        cancelled &= (cancel_at < arrival) & (major is None)
        resolved = np.where(cancelled, cancel_at, resolved)
        source = np.where(
            alarm & (u[:, 8] < 0.85), 1, weighted_choice(u[:, 8], (0.86, 0.03, 0.06, 0.02, 0.03))
        )
        units = np.clip(
            o.units_min + np.floor(u[:, 9] * 1.6 + _SEVERITY_UNITS[severity]).astype(np.int64),
            o.units_min, o.units_max,
        ) if major is None else np.full(seq.size, major[2], dtype=np.int64)  # fmt: skip
        # A unit is never sent once the incident is over (cancelled or resolved): the units
        # dispatched are the first ones whose dispatch comes before that moment.
        units = units_sent(keys, units, o.units_min, resolved - dispatch)
        mean_casualties = np.array([t[7] for t in INCIDENT_TYPES])[kind] * (0.5 + severity * 0.5)
        casualties = poisson(u[:, 10], u[:, 10], mean_casualties, most=11).astype(np.int64)
        medical = kind == TYPE_CODES.index("MEDICAL")  # one patient, now and then two
        casualties = np.where(medical, 1 + (u[:, 10] > 0.93), casualties)
        fire = np.isin(kind, [0, 1, 2])
        injuries = (fire & (u[:, 11] < 0.004 * (1 + severity * 2))).astype(np.int64)
        damage_median = np.array([t[6] for t in INCIDENT_TYPES], dtype=np.float64)[kind]
        damage = np.round(lognormal(keys, 36, damage_median * _SEVERITY_DAMAGE[severity], 0.9),
                          -2)  # fmt: skip
        damage = np.where(damage_median > 0, damage, np.nan)
        street = (u[:, 12] * 40).astype(np.int64)
        number = 1 + (u[:, 13] ** 1.5 * 9_899).astype(np.int64)
        has_unit = np.isin(kind, [0, 3, 8]) & (u[:, 14] < 0.15)
        return {
            "keys": keys, "year": year, "seq": seq, "kind": kind, "severity": severity,
            "source": source, "weather": weather, "station": station, "lat": lat, "lng": lng,
            "occurrence": occurrence, "reported": reported, "dispatch": dispatch,
            "arrival": np.where(cancelled, -1, arrival), "resolved": resolved,
            "cancelled": cancelled, "units": units, "casualties": casualties,
            "injuries": injuries, "damage": damage, "street": street, "number": number,
            "apartment": np.where(has_unit, 1 + (u[:, 15] * 40).astype(np.int64), 0),
            "floors": 1 + (u[:, 16] * 3).astype(np.int64), "u": u,
        }  # fmt: skip


def unit_delays_ms(keys: U64, j: I64, room: I64) -> I64:
    """Delay of the ``j``-th unit (0 is the primary, sent at the incident's dispatch) after
    the first, ``keys`` the units' own keys (the incident's combined with ``100 + j``). A
    unit is never sent once the incident is over: one whose draw falls after that (``room``
    ms after the dispatch) is sent in time if it is among the least units, else not at all
    (``units_sent``)."""
    raw = (lognormal(keys, 4, 40.0, 0.6) * 1000 * j).astype(np.int64)
    delay: I64 = np.where(j > 0, np.where(raw < room, raw, (room - 1) * j // (j + 1)), 0)
    return delay


def children(count: I64, keys: U64, salt: int) -> tuple[I64, I64, U64]:
    """Rows of a child table: parent index and position of each, and a key per row."""
    idx = np.repeat(np.arange(count.size), count)
    j = np.arange(idx.size) - np.repeat(np.cumsum(count) - count, count)
    return idx, j, rng.combine(keys[idx], salt + j)


def unit_assignments(core: dict[str, Any], city: City, count: I64) -> dict[str, Any]:
    """The units sent to the incidents (``count`` each, the nearest stations', the primary
    first): incident index, position, key, station, role, when dispatched and cleared."""
    c = core
    idx, j, keys = children(count, c["keys"], 100)
    u = rng.uniform_block(keys, 3)
    station = city.nearest[c["station"][idx], j]
    room = (c["resolved"] - c["dispatch"])[idx]
    dispatched = c["dispatch"][idx] + unit_delays_ms(keys, j, room)
    arrival, resolved = c["arrival"][idx], c["resolved"][idx]
    cancelled = c["cancelled"][idx]
    scene = np.maximum(resolved - np.maximum(arrival, dispatched), 0)
    cleared = np.where(
        cancelled | (j == 0), resolved,
        np.maximum(arrival, dispatched) + (scene * (0.4 + 0.6 * u[:, 0])).astype(np.int64),
    )  # fmt: skip
    cleared = np.maximum(cleared, np.maximum(arrival, dispatched) + 1)
    cleared = np.where(cancelled, resolved, cleared)
    role = np.where(j == 0, 0, np.where((j == 2) & (c["severity"][idx] >= 2), 2, 1))
    return {"incident": idx, "j": j, "keys": keys, "station": station, "role": role,
            "dispatched": dispatched, "cleared": cleared}  # fmt: skip


def units_sent(keys: U64, planned: I64, least: int, room: I64) -> I64:
    """How many of the planned units are dispatched before the incident is over: the least
    number always, more while their draws come before the end."""
    sent = np.minimum(planned, max(least, 1))
    going = np.ones(planned.size, dtype=np.bool_)
    for j in range(max(least, 1), int(planned.max(initial=1))):
        raw = (lognormal(rng.combine(keys, 100 + j), 4, 40.0, 0.6) * 1000 * j).astype(np.int64)
        going &= (j < planned) & (raw < room)
        sent += going
    return sent


def incident_numbers(year: int | I64, seq: I64) -> list[str]:
    """CAD-style numbers: ``F24-0001234``, the sequence restarting each year."""
    years = np.broadcast_to(np.asarray(year) % 100, seq.shape).tolist()
    return [f"F{y:02d}-{s:07d}" for y, s in zip(years, seq.tolist(), strict=True)]


def arrivals_for(
    city: City,
    seed: int,
    rate_per_hour: float,
    count: int | None = None,
    window: tuple[int, int] | None = None,
) -> Arrivals:
    """The city's arrival model: at ``rate_per_hour``, or exactly ``count`` incidents in
    ``window`` (the tables, and a backfill of the stream over the same window, call this)."""
    key = rng.text_key(seed, "incidents", "arrivals")
    if count is not None and window is not None:
        rate_per_hour = count / max(Arrivals(city, 1.0, key).factor_between(*window), 1e-9)
    return Arrivals(city, rate_per_hour, key)


def status_as_of(core: dict[str, Any], as_of: int) -> I64:
    """Status as of a moment: how far the incident's chronology has got by then."""
    status = np.full(core["seq"].size, REPORTED, dtype=np.int64)
    status = np.where(core["dispatch"] <= as_of, DISPATCHED, status)
    arrived = (core["arrival"] >= 0) & (core["arrival"] <= as_of)
    status = np.where(arrived, ON_SCENE, status)
    done = core["resolved"] <= as_of
    status = np.where(done & core["cancelled"], CANCELLED, status)
    return np.where(done & ~core["cancelled"], RESOLVED, status)
