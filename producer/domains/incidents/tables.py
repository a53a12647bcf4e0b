"""``synthstream incidents``: the seed's five tables as CSV or Parquet, validated.

Stations first, then incidents in time order with their units, assets and notes, in blocks
of 100,000 incidents (memory stays flat whatever the count), each block built column-wise
and checked before it is written: codes from the lookup tables, chronology, conditional
nulls by status, referential integrity, coverage. A failed check stops the run with exit
status 1 and says which rule broke; the files of a failed run are removed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from tqdm import tqdm

from producer import rng
from producer.clock import Clock
from producer.config import Settings
from producer.domains.incidents import model as inc
from producer.domains.incidents.city import City, station_table
from producer.domains.incidents.fields import IncidentsFields
from producer.errors import ConfigError, check_writable
from producer.geography import geohash, metres_between, wkt
from producer.records import arrow_schema
from producer.rng import I64
from producer.settings import parse_time
from sinks.file import TableFile

log = structlog.get_logger("synthstream.incidents")

BLOCK = 100_000
TABLES = ("stations", "incidents", "incident_units", "incident_assets", "incident_notes")
TS = pa.timestamp("ms", tz="UTC")


SCHEMAS: dict[str, pa.Schema] = {
    "stations": arrow_schema([
        ("station_code", pa.string()), ("name", pa.string()), ("battalion", pa.string()),
        ("address_line_1", pa.string()), ("address_line_2", pa.string()), ("city", pa.string()),
        ("region", pa.string()), ("postal_code", pa.string()), ("phone", pa.string()),
        ("is_active", pa.bool_()), ("commissioned_on", pa.date32()),
        ("decommissioned_on", pa.date32()), ("response_zone_code", pa.string()),
        ("location_lat", pa.float64()), ("location_lng", pa.float64()),
        ("location_wkt", pa.string()), ("coverage_radius_meters", pa.int64()),
        ("created_at", TS), ("updated_at", TS),
    ]),
    "incidents": arrow_schema([
        ("incident_number", pa.string()), ("external_reference", pa.string()),
        ("title", pa.string()), ("narrative", pa.string()), ("type_code", pa.string()),
        ("severity_code", pa.string()), ("status_code", pa.string()),
        ("source_code", pa.string()), ("weather_condition_code", pa.string()),
        ("primary_station_code", pa.string()), ("occurrence_at", TS), ("reported_at", TS),
        ("dispatch_at", TS), ("arrival_at", TS), ("resolved_at", TS),
        ("location_lat", pa.float64()), ("location_lng", pa.float64()),
        ("location_wkt", pa.string()), ("location_geohash", pa.string()),
        ("address_line_1", pa.string()), ("address_line_2", pa.string()), ("city", pa.string()),
        ("region", pa.string()), ("postal_code", pa.string()), ("casualty_count", pa.int64()),
        ("responder_injuries", pa.int64()), ("estimated_damage_amount", pa.float64()),
        ("is_active", pa.bool_()), ("metadata", pa.string()),
    ]),
    "incident_units": arrow_schema([
        ("incident_number", pa.string()), ("station_code", pa.string()),
        ("assignment_role", pa.string()), ("dispatched_at", TS), ("cleared_at", TS),
    ]),
    "incident_assets": arrow_schema([
        ("incident_number", pa.string()), ("asset_identifier", pa.string()),
        ("asset_type", pa.string()), ("status", pa.string()), ("notes", pa.string()),
    ]),
    "incident_notes": arrow_schema([
        ("incident_number", pa.string()), ("author", pa.string()), ("note", pa.string()),
        ("created_at", TS),
    ]),
}  # fmt: skip
# Asset types that suit each incident type (indices into ASSET_TYPES).
_ASSETS_FOR = {
    "STRUCTURE_FIRE": (0, 1, 3, 6, 5), "VEHICLE_FIRE": (0, 6), "BRUSH_FIRE": (0, 5, 3),
    "MEDICAL": (2,), "TRAFFIC_COLLISION": (0, 2, 1), "HAZMAT": (4, 0, 3, 5),
    "RESCUE": (7, 0, 2, 5), "ALARM": (0, 1), "GAS_LEAK": (0, 4), "PUBLIC_ASSIST": (0, 2),
}  # fmt: skip


class DataValidationError(Exception):
    pass


@dataclass
class Plan:
    count: int
    start_ms: int
    end_ms: int
    seed: int
    city: str
    stations: int
    options: inc.Options
    folder: Path
    fmt: str = "csv"
    include: dict[str, bool] = field(default_factory=dict)
    progress: bool = True


def _ts(ms: I64, valid: npt.NDArray[np.bool_] | None = None) -> pa.Array:  # type: ignore[type-arg]
    mask = None if valid is None else ~valid
    return pa.array(ms, pa.int64(), mask=mask).cast(TS)


def _strings(values: npt.NDArray[Any], index: I64) -> pa.Array:  # type: ignore[type-arg]
    return pa.array(values[index], pa.string())


class Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.city = City(plan.city, plan.stations, plan.seed)
        self.arrivals = inc.arrivals_for(
            self.city, plan.seed, 0.0, plan.count, (plan.start_ms, plan.end_ms)
        )
        self.model = inc.IncidentModel(self.city, self.arrivals, plan.options, plan.seed)
        self.codes = np.array(self.city.codes, dtype=object)
        self.type_codes = np.array(inc.TYPE_CODES, dtype=object)
        self.labels = [t[1] for t in inc.INCIDENT_TYPES]
        self.streets = [np.array(s, dtype=object) for s in self.city.streets]

    def selection(self) -> list[tuple[int, I64]]:
        """Exactly ``count`` incidents: those reported in the window, the last ones dropped
        or the ones just before it added (the arrival model is exact to one incident at each
        edge of a window)."""
        p = self.plan
        chosen = self.arrivals.between(p.start_ms, p.end_ms)
        total = sum(s.size for _, s in chosen)
        if total > p.count:
            excess = total - p.count
            year, seq = chosen[-1]
            chosen[-1] = (year, seq[: seq.size - excess])
        if total < p.count:
            missing = p.count - total
            span = p.end_ms - p.start_ms
            before = self.arrivals.between(p.start_ms - span, p.start_ms)
            flat = [(y, int(q)) for y, seq in before for q in seq.tolist()][-missing:]
            if len(flat) < missing:
                raise ConfigError("--incident-count: too few incidents fit the window")
            extra = [(y, np.array([q for yy, q in flat if yy == y], dtype=np.int64))
                     for y in dict.fromkeys(y for y, _ in flat)]  # fmt: skip
            chosen = extra + chosen
        return [(y, s) for y, s in chosen if s.size]

    # ------------------------------------------------------------------ tables
    def incidents(self, core: dict[str, Any], status: I64) -> pa.Table:
        c, city, o = core, self.city, self.plan.options
        n = c["seq"].size
        numbers = np.array(inc.incident_numbers(c["year"], c["seq"]), dtype=object)
        as_of = self.plan.end_ms
        dispatched = status >= inc.DISPATCHED
        arrived = (c["arrival"] >= 0) & (c["arrival"] <= as_of) & (status != inc.CANCELLED)
        done = status >= inc.RESOLVED
        places = list(zip(c["station"].tolist(), c["street"].tolist(), strict=True))
        street_names = [self.streets[s][k % self.streets[s].size] for s, k in places]
        address = [f"{n} {st}" for n, st in zip(c["number"].tolist(), street_names, strict=True)]
        kinds = c["kind"].tolist()
        title = [f"{self.labels[k]} at {a}" for k, a in zip(kinds, address, strict=True)]
        u = c["u"]
        variant = (u[:, 17] * 12).astype(np.int64).tolist()
        narrative = []
        acres_all = (1 + u[:, 18] * 40).astype(int).tolist()
        for k, v, floors, acres in zip(
            kinds, variant, c["floors"].tolist(), acres_all, strict=True
        ):
            options = inc._NARRATIVES[inc.TYPE_CODES[k]]
            text = options[v % len(options)]
            if "{" in text:
                text = text.format(floors=floors, acres=acres, gallons=acres * 25)
            narrative.append(text)
        apartment = c["apartment"]
        unit_line = [f"Apt {a}" if a else None for a in apartment.tolist()]
        postal = [self.city.postal[s][k % 3] for s, k in places]
        response = np.where(arrived, (c["arrival"] - c["dispatch"]) // 1000, -1).tolist()
        weather = np.array(inc.WEATHER_CODES, dtype=object)[c["weather"]].tolist()
        metadata = [
            f'{{"generator":"synthstream.incidents","units":{units},"weather":"{w}"'
            + (f',"response_seconds":{r}}}' if r >= 0 else "}")
            for units, w, r in zip(c["units"].tolist(), weather, response, strict=True)
        ]
        damage = c["damage"]
        ghash = geohash(c["lat"], c["lng"], o.geohash_precision)
        width = o.geohash_precision
        offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
        hashes = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                              pa.py_buffer(ghash.tobytes()))  # fmt: skip
        return pa.table(
            {
                "incident_number": pa.array(numbers, pa.string()),
                "external_reference": pa.array(
                    [f"CAD-{c['year']}-{(s * 7919) % 10_000_000:07d}" for s in c["seq"].tolist()],
                    pa.string(),
                ),
                "title": pa.array(title, pa.string()),
                "narrative": pa.array(narrative, pa.string()),
                "type_code": _strings(self.type_codes, c["kind"]),
                "severity_code": _strings(
                    np.array(inc.SEVERITY_CODES, dtype=object), c["severity"]
                ),
                "status_code": _strings(np.array(inc.STATUS_CODES, dtype=object), status),
                "source_code": _strings(np.array(inc.SOURCE_CODES, dtype=object), c["source"]),
                "weather_condition_code": pa.array(weather, pa.string()),
                "primary_station_code": _strings(self.codes, c["station"]),
                "occurrence_at": _ts(c["occurrence"]),
                "reported_at": _ts(c["reported"]),
                "dispatch_at": _ts(c["dispatch"], dispatched),
                "arrival_at": _ts(np.maximum(c["arrival"], 0), arrived),
                "resolved_at": _ts(c["resolved"], done),
                "location_lat": pa.array(c["lat"]),
                "location_lng": pa.array(c["lng"]),
                "location_wkt": pa.array(wkt(c["lat"], c["lng"]), pa.string()),
                "location_geohash": hashes,
                "address_line_1": pa.array(address, pa.string()),
                "address_line_2": pa.array(unit_line, pa.string()),
                "city": pa.array([city.name] * n, pa.string()),
                "region": pa.array([city.region] * n, pa.string()),
                "postal_code": pa.array(postal, pa.string()),
                "casualty_count": pa.array(np.where(done, c["casualties"], 0)),
                "responder_injuries": pa.array(np.where(done, c["injuries"], 0)),
                "estimated_damage_amount": pa.array(
                    damage, pa.float64(), mask=np.isnan(damage) | ~done
                ),
                "is_active": pa.array(status <= inc.ON_SCENE),
                "metadata": pa.array(metadata, pa.string()),
            },
            schema=SCHEMAS["incidents"],
        )

    def units(self, core: dict[str, Any], status: I64, numbers: npt.NDArray[Any]) -> pa.Table:
        c, as_of = core, self.plan.end_ms
        count = np.where(status >= inc.DISPATCHED, np.minimum(c["units"], len(self.city.codes)), 0)
        a = inc.unit_assignments(c, self.city, count)
        dispatched, cleared = a["dispatched"], a["cleared"]
        keep = dispatched <= as_of
        cleared_known = cleared <= as_of
        return pa.table(
            {
                "incident_number": pa.array(numbers[a["incident"]][keep], pa.string()),
                "station_code": _strings(self.codes, a["station"][keep]),
                "assignment_role": _strings(
                    np.array(inc.ASSIGNMENT_ROLES, dtype=object), a["role"][keep]
                ),
                "dispatched_at": _ts(dispatched[keep]),
                "cleared_at": _ts(cleared[keep], cleared_known[keep]),
            },
            schema=SCHEMAS["incident_units"],
        )

    def assets(self, core: dict[str, Any], status: I64, numbers: npt.NDArray[Any]) -> pa.Table:
        c = core
        u = c["u"]
        has = (status >= inc.DISPATCHED) & (u[:, 19] < self.plan.options.assets_probability)
        count = np.where(has, 1 + (u[:, 20] * 3).astype(np.int64), 0)
        idx, j, keys = inc.children(count, c["keys"], 200)
        ua = rng.uniform_block(keys, 3)
        kinds = c["kind"][idx]
        asset_type = np.empty(idx.size, dtype=np.int64)
        for k, code in enumerate(inc.TYPE_CODES):
            mine = kinds == k
            choices = np.array(_ASSETS_FOR[code])
            asset_type[mine] = choices[(ua[mine, 0] * choices.size).astype(np.int64)]
        station_no = (
            self.city.nearest[c["station"][idx], np.minimum(j, len(self.city.codes) - 1)] + 1
        )
        prefixes = np.array(inc.ASSET_PREFIX, dtype=object)[asset_type]
        ident = [
            f"{p}-{s:02d}" for p, s in zip(prefixes.tolist(), station_no.tolist(), strict=True)
        ]
        active = status[idx] <= inc.ON_SCENE
        state = np.where(ua[:, 1] < 0.02, 2, np.where(active, 0, 1))
        notes = np.empty(idx.size, dtype=object)
        for a, texts in enumerate(inc.ASSET_NOTES):
            mine = asset_type == a
            options = np.array(texts, dtype=object)
            notes[mine] = options[(ua[mine, 2] * options.size).astype(np.int64)]
        return pa.table(
            {
                "incident_number": pa.array(numbers[idx], pa.string()),
                "asset_identifier": pa.array(ident, pa.string()),
                "asset_type": _strings(np.array(inc.ASSET_TYPES, dtype=object), asset_type),
                "status": _strings(np.array(inc.ASSET_STATUS, dtype=object), state),
                "notes": pa.array(notes, pa.string()),
            },
            schema=SCHEMAS["incident_assets"],
        )

    def notes(self, core: dict[str, Any], status: I64, numbers: npt.NDArray[Any]) -> pa.Table:
        c, as_of = core, self.plan.end_ms
        u = c["u"]
        has = u[:, 21] < self.plan.options.notes_probability
        count = np.where(has, 1 + (u[:, 22] * 3).astype(np.int64), 0)
        idx, j, keys = inc.children(count, c["keys"], 300)
        un = rng.uniform_block(keys, 3)
        start = c["reported"][idx]
        until = np.minimum(np.where(status[idx] >= inc.RESOLVED, c["resolved"][idx], as_of), as_of)
        until = np.maximum(until, start)
        # Notes of an incident in time order: the j-th of n at the j-th n-quantile, jittered.
        n = count[idx]
        frac = (j + 0.2 + 0.6 * un[:, 0]) / n
        created = start + ((until - start) * frac).astype(np.int64)
        authors = self.model.staff[(un[:, 1] * self.model.staff.size).astype(np.int64)]
        text = np.array(inc._NOTES, dtype=object)[(un[:, 2] * len(inc._NOTES)).astype(np.int64)]
        return pa.table(
            {
                "incident_number": pa.array(numbers[idx], pa.string()),
                "author": pa.array(authors, pa.string()),
                "note": pa.array(text, pa.string()),
                "created_at": _ts(created),
            },
            schema=SCHEMAS["incident_notes"],
        )

    # ------------------------------------------------------------------ checks
    def validate(self, tables: dict[str, pa.Table], core: dict[str, Any]) -> None:
        """Every rule of the seed, on every row of the block; raise on the first broken."""
        t = tables["incidents"]

        def fail(rule: str, count: int) -> None:
            raise DataValidationError(f"{rule}: {count} row(s) break it")

        def col(table: pa.Table, name: str) -> npt.NDArray[Any]:
            return table[name].to_numpy(zero_copy_only=False)

        def outside(column: pa.ChunkedArray, allowed: pa.Array) -> int:  # type: ignore[type-arg]
            inside = pc.is_in(column, value_set=allowed)
            return int(len(column) - pc.sum(inside.cast(pa.int64()), min_count=0).as_py())

        for name, codes in (("type_code", inc.TYPE_CODES), ("severity_code", inc.SEVERITY_CODES),
                            ("status_code", inc.STATUS_CODES), ("source_code", inc.SOURCE_CODES),
                            ("weather_condition_code", inc.WEATHER_CODES)):  # fmt: skip
            bad = outside(t[name], pa.array(codes))
            if bad:
                fail(f"incidents.{name} outside its lookup table", bad)
        stamps = [t[n].cast(pa.int64()).to_numpy(zero_copy_only=False)
                  for n in ("occurrence_at", "reported_at", "dispatch_at", "arrival_at",
                            "resolved_at")]  # fmt: skip
        for a in range(5):
            for b in range(a + 1, 5):
                both = ~np.isnan(stamps[a].astype(float)) & ~np.isnan(stamps[b].astype(float))
                if (stamps[a][both] > stamps[b][both]).any():
                    fail("chronology occurrence <= reported <= dispatch <= arrival <= resolved",
                         int((stamps[a][both] > stamps[b][both]).sum()))  # fmt: skip
        status = col(t, "status_code")
        open_ = np.isin(status, ("REPORTED", "DISPATCHED", "ON_SCENE"))
        resolved_null = t["resolved_at"].is_null().to_numpy(zero_copy_only=False)
        if (open_ != resolved_null).any():
            fail("resolved_at empty exactly when the status is REPORTED, DISPATCHED or "
                 "ON_SCENE", int((open_ != resolved_null).sum()))  # fmt: skip
        stations = pa.array(self.city.codes)
        if bad := outside(t["primary_station_code"], stations):
            fail("primary_station_code references a station that does not exist", bad)
        if pc.count_distinct(t["incident_number"]).as_py() != t.num_rows:
            fail("incident_number unique", 1)
        numbers = t["incident_number"].combine_chunks()
        for child in ("incident_units", "incident_assets", "incident_notes"):
            if child in tables and (bad := outside(tables[child]["incident_number"], numbers)):
                fail(f"{child} rows without their incident", bad)
        units = tables.get("incident_units")
        if units is not None and (bad := outside(units["station_code"], stations)):
            fail("incident_units.station_code references no station", bad)
        station = core["station"]
        d = metres_between(core["lat"], core["lng"], self.city.st_lat[station],
                               self.city.st_lng[station])  # fmt: skip
        if (d > self.city.radius_m[station]).any():
            fail(
                "incident outside its primary station's coverage",
                int((d > self.city.radius_m[station]).sum()),
            )


def write_tables(plan: Plan, clock: Clock) -> dict[str, Any]:
    """Generate, check and write every table; return the summary the CLI prints."""
    started = clock.monotonic()
    check_writable(plan.folder, "--output-dir")
    builder = Builder(plan)
    ext = "parquet" if plan.fmt == "parquet" else "csv"
    wanted = ["stations", "incidents"] + [
        t for t in TABLES[2:] if plan.include.get(t.removeprefix("incident_"), True)
    ]
    paths = {name: plan.folder / f"{name}.{ext}" for name in wanted}
    rows = dict.fromkeys(wanted, 0)
    writers = {name: TableFile(paths[name], SCHEMAS[name], plan.fmt) for name in wanted}
    try:
        stations = pa.table(station_table(builder.city, plan.seed), schema=SCHEMAS["stations"])
        writers["stations"].write(stations)
        rows["stations"] = stations.num_rows
        bar = tqdm(total=plan.count, desc="incidents", unit=" incidents", disable=not plan.progress,
                   file=sys.stderr, dynamic_ncols=True)  # fmt: skip
        with bar:
            for year, seq in builder.selection():
                for lo in range(0, seq.size, BLOCK):
                    block = seq[lo : lo + BLOCK]
                    core = builder.model.incidents(year, block)
                    status = inc.status_as_of(core, plan.end_ms)
                    tables = {"incidents": builder.incidents(core, status)}
                    numbers = tables["incidents"]["incident_number"].to_numpy(zero_copy_only=False)
                    if "incident_units" in wanted:
                        tables["incident_units"] = builder.units(core, status, numbers)
                    if "incident_assets" in wanted:
                        tables["incident_assets"] = builder.assets(core, status, numbers)
                    if "incident_notes" in wanted:
                        tables["incident_notes"] = builder.notes(core, status, numbers)
                    builder.validate(tables, core)
                    for name, table in tables.items():
                        writers[name].write(table)
                        rows[name] += table.num_rows
                    bar.update(block.size)
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    for writer in writers.values():
        writer.close()
    summary = {
        "folder": str(plan.folder), "format": plan.fmt, "city": plan.city,
        "window": [datetime.fromtimestamp(plan.start_ms / 1000, UTC).isoformat(),
                   datetime.fromtimestamp(plan.end_ms / 1000, UTC).isoformat()],
        "rows": rows, "seconds": round(clock.monotonic() - started, 2),
        "size_mb": round(sum(p.stat().st_size for p in paths.values()) / 2**20, 1),
    }  # fmt: skip
    log.info("incident_tables_written", **summary)
    return summary


def plan_from(settings: Settings, args: argparse.Namespace, now_ms: int) -> Plan:
    """The seed's CLI options on top of the incidents settings; the window ends at ``now_ms``
    (whole seconds) unless ``--start-datetime`` says when."""
    s = settings.stream("incidents")
    assert isinstance(s, IncidentsFields)
    end = args.start_datetime
    end_dt = datetime.fromtimestamp(now_ms // 1000, UTC)
    if end is not None:
        end_dt = parse_time(end, "--start-datetime")
    if args.window_days <= 0:
        raise ConfigError(f"--window-days: needs a positive number of days, got {args.window_days}")
    if args.incident_count < 1:
        raise ConfigError(f"--incident-count: needs at least 1, got {args.incident_count}")
    end_ms = int(end_dt.timestamp() * 1000)
    start_ms = int((end_dt - timedelta(days=args.window_days)).timestamp() * 1000)
    return Plan(
        count=args.incident_count, start_ms=start_ms, end_ms=end_ms, seed=settings.seed,
        city=s.city, stations=s.stations,
        options=inc.Options(s.units_min, s.units_max, s.assets_probability,
                            s.notes_probability, s.geohash_precision),
        folder=Path(args.output_dir), fmt=args.output_format,
        include={"units": args.include_units, "assets": args.include_assets,
                 "notes": args.include_notes},
        progress=args.verbose,
    )  # fmt: skip
