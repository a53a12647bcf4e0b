"""Fire/EMS incidents: the five tables (schema, codes, chronology, nulls, integrity,
geometry, determinism, a PostgreSQL load) and the live lifecycle stream."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from producer.domains.incidents import model as inc
from producer.domains.incidents.stream import LIFECYCLE
from producer.domains.incidents.tables import SCHEMAS, Builder, DataValidationError, Plan
from producer.geography import geohash_bounds, metres_between
from tests.conftest import cli
from tests.services import postgres

END = "2024-06-01T00:00:00"
SEED_COLUMNS = {
    "stations": "station_code, name, battalion, address_line_1, address_line_2, city, region, "
    "postal_code, phone, is_active, commissioned_on, decommissioned_on, response_zone_code, "
    "location_lat, location_lng, location_wkt, coverage_radius_meters, created_at, updated_at",
    "incidents": "incident_number, external_reference, title, narrative, type_code, "
    "severity_code, status_code, source_code, weather_condition_code, primary_station_code, "
    "occurrence_at, reported_at, dispatch_at, arrival_at, resolved_at, location_lat, "
    "location_lng, location_wkt, location_geohash, address_line_1, address_line_2, city, "
    "region, postal_code, casualty_count, responder_injuries, estimated_damage_amount, "
    "is_active, metadata",
    "incident_units": "incident_number, station_code, assignment_role, dispatched_at, cleared_at",
    "incident_assets": "incident_number, asset_identifier, asset_type, status, notes",
    "incident_notes": "incident_number, author, note, created_at",
}


def generate(folder: Path, *extra: str) -> dict[str, Any]:
    result = cli("incidents", "--output-dir", str(folder), "--seed", "7", "--start-datetime",
                 END, "--no-verbose", *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = orjson.loads(result.stdout)
    return summary


@pytest.fixture(scope="module")
def csv_tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pa.Table]]:
    folder = tmp_path_factory.mktemp("incidents")
    generate(folder, "--incident-count", "20000", "--geohash-precision", "7")
    types = {f.name: f.type for schema in SCHEMAS.values() for f in schema}
    options = pacsv.ConvertOptions(column_types=types)
    tables = {name: pacsv.read_csv(folder / f"{name}.csv", convert_options=options)
              for name in SEED_COLUMNS}  # fmt: skip
    return folder, tables


def ms(table: pa.Table, column: str) -> np.ndarray[Any, Any]:
    return table[column].cast(pa.int64()).to_numpy(zero_copy_only=False)


def test_files_have_the_seed_columns_and_codes(
    csv_tables: tuple[Path, dict[str, pa.Table]],
) -> None:
    folder, tables = csv_tables
    for name, columns in SEED_COLUMNS.items():
        with (folder / f"{name}.csv").open(newline="") as handle:
            assert next(csv.reader(handle)) == columns.split(", ")
    t = tables["incidents"]
    assert t.num_rows == 20_000
    assert tables["stations"].num_rows == 25
    for column, codes in (("type_code", inc.TYPE_CODES), ("severity_code", inc.SEVERITY_CODES),
                          ("status_code", inc.STATUS_CODES), ("source_code", inc.SOURCE_CODES),
                          ("weather_condition_code", inc.WEATHER_CODES)):  # fmt: skip
        assert set(t[column].to_pylist()) <= set(codes), column
    assert set(tables["incident_units"]["assignment_role"].to_pylist()) <= set(inc.ASSIGNMENT_ROLES)
    assert set(tables["incident_assets"]["asset_type"].to_pylist()) <= set(inc.ASSET_TYPES)
    # The mix is believable: medical calls dominate, fires need more units than alarms.
    types = t["type_code"].to_numpy(zero_copy_only=False)
    assert 0.45 < (types == "MEDICAL").mean() < 0.65


def test_chronology_conditional_nulls_and_integrity(
    csv_tables: tuple[Path, dict[str, pa.Table]],
) -> None:
    _, tables = csv_tables
    t = tables["incidents"]
    stamps = [ms(t, c) for c in ("occurrence_at", "reported_at", "dispatch_at", "arrival_at",
                                 "resolved_at")]  # fmt: skip
    for a in range(5):
        for b in range(a + 1, 5):
            both = ~np.isnan(stamps[a]) & ~np.isnan(stamps[b])
            assert (stamps[a][both] <= stamps[b][both]).all(), (a, b)
    status = t["status_code"].to_numpy(zero_copy_only=False)
    end = np.datetime64(END, "ms").astype(np.int64)
    assert (stamps[1] <= end).all()
    open_ = np.isin(status, ["REPORTED", "DISPATCHED", "ON_SCENE"])
    assert (np.isnan(stamps[4]) == open_).all(), "resolved_at empty exactly while open"
    assert (np.isnan(stamps[2]) == (status == "REPORTED")).all()
    assert (np.isnan(stamps[3]) == np.isin(status, ["REPORTED", "DISPATCHED", "CANCELLED"])).all()
    assert open_.any(), "the window's end catches some incidents under way"
    assert (status == "CANCELLED").any()
    assert (t["is_active"].to_numpy(zero_copy_only=False) == open_).all()
    # Referential integrity: every code and number referenced exists.
    codes = set(tables["stations"]["station_code"].to_pylist())
    numbers = set(t["incident_number"].to_pylist())
    assert len(numbers) == t.num_rows
    assert set(t["primary_station_code"].to_pylist()) <= codes
    units = tables["incident_units"]
    assert set(units["station_code"].to_pylist()) <= codes
    for child in ("incident_units", "incident_assets", "incident_notes"):
        assert set(tables[child]["incident_number"].to_pylist()) <= numbers, child
    # Units: the primary station first, dispatched after the incident, cleared after arrival.
    first: dict[str, tuple[str, str]] = {}
    columns = (units[c].to_pylist() for c in ("incident_number", "station_code", "assignment_role"))
    for number, station, role in zip(*columns, strict=True):
        first.setdefault(number, (station, role))
    primary = dict(zip(t["incident_number"].to_pylist(), t["primary_station_code"].to_pylist(),
                       strict=True))  # fmt: skip
    assert all(first[n] == (primary[n], "PRIMARY") for n in first)
    joined = units.join(t.select(["incident_number", "dispatch_at", "arrival_at"]),
                        "incident_number")  # fmt: skip
    assert (ms(joined, "dispatched_at") >= ms(joined, "dispatch_at")).all()
    cleared, arrived = ms(joined, "cleared_at"), ms(joined, "arrival_at")
    both = ~np.isnan(cleared) & ~np.isnan(arrived)
    assert (cleared[both] > arrived[both]).all()
    notes = tables["incident_notes"].join(t.select(["incident_number", "reported_at"]),
                                          "incident_number")  # fmt: skip
    assert (ms(notes, "created_at") >= ms(notes, "reported_at")).all()
    assert (ms(notes, "created_at") <= end).all()


def test_geometry_wkt_geohash_and_coverage(csv_tables: tuple[Path, dict[str, pa.Table]]) -> None:
    _, tables = csv_tables
    t, stations = tables["incidents"], tables["stations"]
    point = re.compile(r"^POINT\((-?\d+\.\d{6}) (-?\d+\.\d{6})\)$")
    lat = [float(v) for v in t["location_lat"].to_numpy()]
    lng = [float(v) for v in t["location_lng"].to_numpy()]
    texts = [str(v) for v in t["location_wkt"].to_pylist()]
    hashes = [str(v) for v in t["location_geohash"].to_pylist()]
    for text, y, x, gh in zip(texts, lat, lng, hashes, strict=True):
        match = point.match(text)
        assert match is not None
        assert (float(match[1]), float(match[2])) == (x, y)
        assert len(gh) == 7
        lat_min, lat_max, lng_min, lng_max = geohash_bounds(gh)
        assert lat_min <= y <= lat_max
        assert lng_min <= x <= lng_max
    by_code = {c: i for i, c in enumerate(stations["station_code"].to_pylist())}
    idx = np.array([by_code[c] for c in t["primary_station_code"].to_pylist()])
    d = metres_between(np.array(lat), np.array(lng),
                           stations["location_lat"].to_numpy()[idx],
                           stations["location_lng"].to_numpy()[idx])  # fmt: skip
    assert (d <= stations["coverage_radius_meters"].to_numpy()[idx]).all()
    spread = metres_between(np.array(lat), np.array(lng), np.full(len(lat), 32.71571),
                                np.full(len(lat), -117.16472))  # fmt: skip
    assert spread.max() < 30_000, "one coherent region around San Diego"


def test_same_seed_and_window_end_give_identical_files(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        a = generate(tmp_path / f"a-{fmt}", "--incident-count", "3000", "--output-format", fmt)
        b = generate(tmp_path / f"b-{fmt}", "--incident-count", "3000", "--output-format", fmt)
        assert a["rows"] == b["rows"]
        for name in SEED_COLUMNS:
            first = (tmp_path / f"a-{fmt}" / f"{name}.{fmt}").read_bytes()
            assert first == (tmp_path / f"b-{fmt}" / f"{name}.{fmt}").read_bytes(), name
    parquet = pq.read_table(tmp_path / "a-parquet" / "incidents.parquet")
    assert parquet.schema.equals(SCHEMAS["incidents"])
    other = generate(tmp_path / "c", "--incident-count", "3000", "--seed", "8")
    assert other["rows"]["incident_units"] != a["rows"]["incident_units"]


def test_optional_tables_and_bad_options(tmp_path: Path) -> None:
    summary = generate(tmp_path / "lean", "--incident-count", "500", "--no-include-assets",
                       "--no-include-notes", "--units-min", "2", "--units-max", "2")  # fmt: skip
    assert set(summary["rows"]) == {"stations", "incidents", "incident_units"}
    assert not (tmp_path / "lean" / "incident_notes.csv").exists()
    units = pacsv.read_csv(tmp_path / "lean" / "incident_units.csv")
    per_incident = pc.value_counts(units["incident_number"]).field("counts").to_numpy()
    assert set(per_incident.tolist()) <= {2}
    for flags, needle in ((["--geohash-precision", "13"], "--geohash-precision"),
                          (["--units-min", "4", "--units-max", "2"], "units_min"),
                          (["--city", "Atlantis"], "Atlantis"),
                          (["--window-days", "0"], "--window-days")):  # fmt: skip
        bad = cli("incidents", "--output-dir", str(tmp_path / "bad"), *flags)
        assert bad.returncode == 2, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert needle in bad.stderr


def test_validation_fails_loudly_on_a_broken_rule() -> None:
    plan = Plan(count=200, start_ms=1_714_521_600_000, end_ms=1_717_200_000_000, seed=1,
                city="San Diego", stations=25, options=inc.Options(),
                folder=Path("unused"))  # fmt: skip
    builder = Builder(plan)
    year, seq = builder.selection()[0]
    core = builder.model.incidents(year, seq)
    status = inc.status_as_of(core, plan.end_ms)
    table = builder.incidents(core, status)
    numbers = table["incident_number"].to_numpy(zero_copy_only=False)
    tables = {"incidents": table, "incident_units": builder.units(core, status, numbers)}
    builder.validate(tables, core)  # the real thing passes
    swapped = table.set_column(
        table.schema.get_field_index("reported_at"), "reported_at", table["resolved_at"]
    )
    with pytest.raises(DataValidationError, match="chronology"):
        builder.validate({**tables, "incidents": swapped}, core)
    orphan = (
        tables["incident_units"]
        .slice(0, 1)
        .set_column(0, "incident_number", pa.array(["F24-9999999"]))
    )
    with pytest.raises(DataValidationError, match="without their incident"):
        builder.validate({**tables, "incident_units": orphan}, core)


def test_the_stream_tells_the_same_incidents_as_the_tables(tmp_path: Path) -> None:
    summary = generate(tmp_path / "tables", "--incident-count", "400", "--window-days", "3")
    env = {"SYNTHSTREAM_INCIDENTS__COUNT": "400", "SYNTHSTREAM_SEED": "7",
           "SYNTHSTREAM_INCIDENTS__FAULTS__DROP_RATE": "0"}  # fmt: skip
    run = cli("run", "--streams", "incidents", "--backfill", "--start", "2024-05-29T00:00:00",
              "--end", END, "--sinks", "file", "--out", str(tmp_path / "stream"),
              "--progress", "off", "--metrics-port", "0", env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = [orjson.loads(line) for f in sorted((tmp_path / "stream").rglob("*.jsonl"))
              for line in f.read_bytes().splitlines()]  # fmt: skip
    table = pacsv.read_csv(tmp_path / "tables" / "incidents.csv")
    reported = {e["incident_number"]: e for e in events
                if e["event_type"] == "REPORTED" and not e["is_duplicate"]}  # fmt: skip
    rows = {r["incident_number"]: r for r in table.to_pylist()}
    assert summary["rows"]["incidents"] == 400
    common = reported.keys() & rows.keys()
    assert len(common) >= 398, "the same incidents (to one at each edge of the window)"
    for number in common:
        row, event = rows[number], reported[number]
        assert row["type_code"] == event["type_code"]
        assert row["primary_station_code"] == event["primary_station_code"]
        assert row["location_lat"] == event["location_lat"]
        stamp = row["reported_at"].isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert stamp == event["timestamp"]
    # Each incident's lifecycle in order, keyed by its number.
    seen: dict[str, list[str]] = {}
    for e in sorted(events, key=lambda e: e["timestamp"]):
        if not e["is_duplicate"]:
            seen.setdefault(e["incident_number"], []).append(e["event_type"])
    order = {s: i for i, s in enumerate(LIFECYCLE)}
    for stages in seen.values():
        assert [order[s] for s in stages] == sorted(order[s] for s in stages)


@pytest.mark.services
def test_csv_files_load_into_postgresql_with_copy_and_postgis(
    csv_tables: tuple[Path, dict[str, pa.Table]],
) -> None:
    folder, tables = csv_tables
    types = {pa.string(): "text", pa.bool_(): "boolean", pa.float64(): "double precision",
             pa.int64(): "bigint", pa.date32(): "date"}  # fmt: skip
    script = ["create extension if not exists postgis;"]
    for name, schema in SCHEMAS.items():
        columns = ", ".join(
            f"{f.name} {'timestamptz' if pa.types.is_timestamp(f.type) else types[f.type]}"
            for f in schema
        )
        script.append(f"create table staging_{name} ({columns});")
        script.append(f"\\copy staging_{name} from '{folder / (name + '.csv')}' csv header")
    script.append("select count(*) from staging_incidents "
                  "where st_isvalid(st_geomfromtext(location_wkt, 4326));")  # fmt: skip
    script.append("select count(*) from staging_incident_units u left join staging_stations s "
                  "using (station_code) where s.station_code is null;")  # fmt: skip
    script.append("select count(*) from staging_incidents where (metadata::jsonb ->> 'units') "
                  "is not null and resolved_at is null = status_code in "
                  "('REPORTED', 'DISPATCHED', 'ON_SCENE');")  # fmt: skip
    with postgres() as (psql, port):
        out = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
             "-qtA"], input="\n".join(script), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    counts = [int(line) for line in out.stdout.split()]
    assert counts == [tables["incidents"].num_rows, 0, tables["incidents"].num_rows]
