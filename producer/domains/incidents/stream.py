"""The live ``incidents`` stream: each incident's lifecycle as events, from the model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer import rng
from producer.domains.incidents.city import City
from producer.domains.incidents.episodes import major_seq
from producer.domains.incidents.fields import IncidentsFields
from producer.domains.incidents.model import (
    ASSIGNMENT_ROLES,
    SEVERITY_CODES,
    SOURCE_CODES,
    TYPE_CODES,
    IncidentModel,
    Options,
    arrivals_for,
    incident_numbers,
    unit_assignments,
)
from producer.episodes import Episodes
from producer.generators import Pending, earliest
from producer.geography import geohash
from producer.records import (
    Kinds,
    RecordBatch,
    Schema,
    arrow_schema,
    timestamp_array,
    uuid_array,
)
from producer.rng import I64
from producer.settings import Shard
from producer.timeline import HOUR_MS

LIFECYCLE = ("REPORTED", "DISPATCHED", "ON_SCENE", "RESOLVED", "CANCELLED")
LIFECYCLE_KINDS = tuple(stage.lower() for stage in LIFECYCLE)
UNITS = "incident_units"  # (CDC) the units table's channel, topic and table


class IncidentsSource:
    """The live ``incidents`` stream: each incident's lifecycle as events, keyed by its
    number, each at its moment in event time (reported, dispatched, on scene, resolved or
    cancelled). With ``count`` set, a backfill window holds exactly the incidents of the
    tables ``synthstream incidents`` writes for that window."""

    def __init__(
        self, settings: IncidentsFields, seed: int, shard: Shard,
        window: tuple[int, int] | None,
    ) -> None:  # fmt: skip
        self.stream = "incidents"
        self.settings = settings
        self.city = City(settings.city, settings.stations, seed)
        self.arrivals = arrivals_for(
            self.city, seed, settings.incidents_per_hour, settings.count, window
        )
        options = Options(settings.units_min, settings.units_max, settings.assets_probability,
                          settings.notes_probability, settings.geohash_precision)  # fmt: skip
        self.model = IncidentModel(self.city, self.arrivals, options, seed)
        self.shard = shard
        self.pending = Pending()
        self.schema = IncidentEventSchema(self)
        self.channels: dict[str, Schema] = {self.stream: self.schema}
        self.units: Pending | None = None  # (CDC: ``tables``)
        self.episodes = Episodes({})  # live control's (major incidents)

    def tables(self) -> None:
        """CDC: the incidents channel carries rows (``IncidentRowSchema``), and the units
        sent are a table of their own: created when dispatched, updated when cleared."""
        self.channels[self.stream] = IncidentRowSchema(self)
        self.channels[UNITS] = UnitRowSchema(self)
        self.units = Pending()

    def _mine(self, year: int, seq: I64) -> npt.NDArray[np.bool_]:
        if self.shard.count == 1:
            return np.ones(seq.size, dtype=np.bool_)
        owner = rng.combine(rng.text_key("shard", "incidents", year), seq) % np.uint64(
            self.shard.count
        )
        mine: npt.NDArray[np.bool_] = owner == np.uint64(self.shard.index)
        return mine

    def _new(self, t0: int, t1: int) -> None:
        for year, seq in self.arrivals.between(t0, t1):
            seq = seq[self._mine(year, seq)]
            if seq.size:
                self._add(year, seq, self.model.incidents(year, seq))
        for episode in self.episodes.active("major_incident", t0, t1):
            if not t0 <= episode.start_ms < t1:
                continue
            at = np.datetime64(episode.start_ms, "ms")
            year = int(at.astype("datetime64[Y]").astype(int)) + 1970
            seq = np.asarray([major_seq(episode)], dtype=np.int64)
            if self._mine(year, seq).all():
                p = episode.params
                major = (episode.start_ms, str(p["type"]), int(p["units"]))
                self._add(year, seq, self.model.incidents(year, seq, major))

    def _add(self, year: int, seq: I64, c: dict[str, Any]) -> None:
        n = seq.size
        cancelled = c["cancelled"]
        stages = [
            (0, c["reported"], np.ones(n, dtype=np.bool_)),
            (1, c["dispatch"], np.ones(n, dtype=np.bool_)),
            (2, c["arrival"], ~cancelled),
            (3, c["resolved"], ~cancelled),
            (4, c["resolved"], cancelled),
        ]
        for stage, when, keep in stages:
            idx = np.flatnonzero(keep)
            self.pending.add({
                "time_ms": when[idx], "key": rng.combine(c["keys"][idx], 500 + stage),
                "year": np.full(idx.size, year, dtype=np.int64), "seq": seq[idx],
                "stage": np.full(idx.size, stage, dtype=np.int8), "kind": c["kind"][idx],
                "severity": c["severity"][idx], "source": c["source"][idx],
                "station": c["station"][idx], "location_lat": c["lat"][idx],
                "location_lng": c["lng"][idx], "units": c["units"][idx],
                "casualties": c["casualties"][idx], "damage": c["damage"][idx],
            })  # fmt: skip
        if self.units is not None:
            self._units(self.units, year, seq, c)

    def _units(self, pending: Pending, year: int, seq: I64, c: dict[str, Any]) -> None:
        a = unit_assignments(c, self.city, np.minimum(c["units"], len(self.city.codes)))
        idx = a["incident"]
        for stage, when in ((0, a["dispatched"]), (1, a["cleared"])):
            pending.add({
                "time_ms": when, "key": rng.combine(a["keys"], 600 + stage),
                "year": np.full(idx.size, year, dtype=np.int64), "seq": seq[idx],
                "primary": c["station"][idx], "station": a["station"], "role": a["role"],
                "dispatched": a["dispatched"], "cleared": a["cleared"],
                "stage": np.full(idx.size, stage, dtype=np.int8),
            })  # fmt: skip

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        self._new(t0, t1)
        made = {self.stream: self.pending.release(t1)}
        if self.units is not None:
            made[UNITS] = self.units.release(t1)
        batches = {}
        for channel, cols in made.items():
            if cols is None:
                continue
            # (keyed by the incident's primary station: a unit's changes go with its incident)
            entity = cols["primary" if channel == UNITS else "station"].astype(np.int64)
            batches[channel] = RecordBatch(channel, entity, cols["time_ms"], cols["key"], {
                k: v for k, v in cols.items() if k not in ("time_ms", "key")})  # fmt: skip
        if limit is not None and sum(len(b) for b in batches.values()) > limit:
            batches = earliest(batches, limit)
        return batches

    def snapshot(self, t: int) -> dict[str, RecordBatch]:
        """The incidents table at a run's start (CDC): empty, as the stream begins with the
        incidents reported from then on."""
        return {}

    def next_due(self, t: int) -> int:
        year, m = self.arrivals.steered(t)
        first = max(1, math.floor(m * self.arrivals.rate))
        times = self.arrivals.times(year, np.arange(first, first + 3, dtype=np.int64))
        upcoming = times[times >= t]
        arrival = int(upcoming[0]) if upcoming.size else t + HOUR_MS
        units = self.units.first() if self.units is not None else arrival
        return max(t, min(arrival, self.pending.first(), units))

    def target_rates(self, t: int) -> dict[str, float]:
        pace = self.arrivals.pace
        per_hour = self.arrivals.rate * 3.95 * self._share() * (pace.factor_at(t) if pace else 1)
        rates = {self.stream: per_hour / 3600}
        if self.units is not None:  # two changes a unit sent
            o = self.model.options
            sent = min((o.units_min + o.units_max) / 2, len(self.city.codes))
            rates[UNITS] = rates[self.stream] / 3.95 * 2 * sent
        return rates

    def _share(self) -> float:
        return 1.0 / float(self.shard.count)

    def entities(self) -> dict[str, int]:
        return {channel: len(self.city.codes) for channel in self.channels}


def _number(values: npt.NDArray[np.float64]) -> pa.DoubleArray:
    """A float column; NaN (a dropout injected by faults) is null, as in the JSON."""
    return pa.array(values, pa.float64(), from_pandas=True)


_STRING, _TS = pa.string(), pa.timestamp("ms", tz="UTC")
EVENT_ARROW = arrow_schema([
    ("event_id", _STRING), ("incident_number", _STRING), ("event_type", _STRING),
    ("status_code", _STRING), ("timestamp", _TS), ("type_code", _STRING),
    ("severity_code", _STRING), ("source_code", _STRING),
    ("primary_station_code", _STRING), ("location_lat", pa.float64()),
    ("location_lng", pa.float64()), ("location_geohash", _STRING),
    ("units", pa.list_(_STRING)), ("casualty_count", pa.int64()),
    ("estimated_damage_amount", pa.float64()), ("message_id", _STRING),
    ("is_duplicate", pa.bool_()),
])  # fmt: skip


class IncidentEventSchema:
    """One lifecycle event: the incident as it stands at that moment."""

    stream = "incidents"
    partition_key = "incident_number"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ("units",)
    kinds: Kinds | None = Kinds("stage", LIFECYCLE_KINDS)

    def __init__(self, source: IncidentsSource) -> None:
        self.source = source
        self.measures = {"location_lat": (0.01, -90.0, 90.0), "location_lng": (0.01, -180.0, 180.0)}
        self.codes = source.city.codes

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        city = self.source.city
        precision = self.source.model.options.geohash_precision
        hashes = (
            geohash(c["location_lat"], c["location_lng"], precision)
            .astype(f"U{precision}")
            .tolist()
        )
        numbers = incident_numbers(c["year"], c["seq"])
        rows = []
        for i, (number, stage, ts, mid, dup) in enumerate(zip(
            numbers, c["stage"].tolist(), batch.iso_times(),
            batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(), strict=True,
        )):  # fmt: skip
            station = int(c["station"][i])
            units = None
            if stage == 1:
                units = [self.codes[s] for s in city.nearest[station, : int(c["units"][i])]]
            damage = float(c["damage"][i])
            rows.append({
                "event_id": f"evt_{int(batch.key[i]) & 0xFFFFFFFFFFFF:012x}",
                "incident_number": number, "event_type": LIFECYCLE[stage],
                "status_code": LIFECYCLE[stage], "timestamp": ts,
                "type_code": TYPE_CODES[int(c["kind"][i])],
                "severity_code": SEVERITY_CODES[int(c["severity"][i])],
                "source_code": SOURCE_CODES[int(c["source"][i])],
                "primary_station_code": self.codes[station],
                "location_lat": float(c["location_lat"][i]),
                "location_lng": float(c["location_lng"][i]),
                "location_geohash": hashes[i] or None, "units": units,
                "casualty_count": int(c["casualties"][i]) if stage == 3 else None,
                "estimated_damage_amount": damage if stage == 3 and damage == damage else None,
                "message_id": mid, "is_duplicate": dup,
            })  # fmt: skip
        return rows

    def table(self, batch: RecordBatch) -> pa.Table:
        """The events as columns, straight from the batch (no row is made)."""
        c = batch.columns
        stage, station = c["stage"], c["station"]
        n = len(batch)
        precision = self.source.model.options.geohash_precision
        hashes = geohash(c["location_lat"], c["location_lng"], precision).astype(f"U{precision}")
        # A dispatch names its units: the nearest stations' codes, the primary first.
        dispatched = stage == 1
        counts = np.where(dispatched, c["units"], 0).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        row = np.repeat(np.arange(n), counts)
        rank = np.arange(row.size) - np.repeat(offsets[:-1], counts)
        sent = self.source.city.nearest[station[row], rank]
        units = pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()),
            pa.array(np.asarray(self.codes, dtype=object)[sent], pa.string()),
            mask=pa.array(~dispatched),
        )
        resolved = stage == 3
        damage = c["damage"].astype(np.float64)
        stages = np.asarray(LIFECYCLE, dtype=object)[stage]
        event_ids = [f"evt_{k & 0xFFFFFFFFFFFF:012x}" for k in batch.key.tolist()]
        arrays = [
            pa.array(event_ids, pa.string()),
            pa.array(incident_numbers(c["year"], c["seq"]), pa.string()),
            pa.array(stages, pa.string()), pa.array(stages, pa.string()),
            timestamp_array(batch.reported_ms),
            pa.array(np.asarray(TYPE_CODES, dtype=object)[c["kind"]], pa.string()),
            pa.array(np.asarray(SEVERITY_CODES, dtype=object)[c["severity"]], pa.string()),
            pa.array(np.asarray(SOURCE_CODES, dtype=object)[c["source"]], pa.string()),
            pa.array(np.asarray(self.codes, dtype=object)[station], pa.string()),
            _number(c["location_lat"]), _number(c["location_lng"]),
            pa.array(hashes.astype(object), pa.string(), mask=hashes == ""), units,
            pa.array(c["casualties"].astype(np.int64), pa.int64(), mask=~resolved),
            pa.array(damage, pa.float64(), mask=~resolved | np.isnan(damage)),
            uuid_array(batch.key), pa.array(batch.is_duplicate),
        ]  # fmt: skip
        return pa.Table.from_arrays(arrays, schema=EVENT_ARROW)


# The incidents table's row (CDC): the incident as it stands, without the event's own fields.
ROW_COLUMNS = (
    "incident_number", "status_code", "timestamp", "type_code", "severity_code", "source_code",
    "primary_station_code", "location_lat", "location_lng", "location_geohash", "units",
    "casualty_count", "estimated_damage_amount",
)  # fmt: skip


class IncidentRowSchema(IncidentEventSchema):
    """An incident's row after a lifecycle event: its units from dispatch on (an event names
    them only at dispatch), its outcome once resolved."""

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        rows = super().rows(batch)
        c = batch.columns
        nearest = self.source.city.nearest
        for i, row in enumerate(rows):
            if row["units"] is None and int(c["stage"][i]) >= 1:
                station, count = int(c["station"][i]), int(c["units"][i])
                row["units"] = [self.codes[s] for s in nearest[station, :count]]
        return rows


UNIT_COLUMNS = ("incident_number", "station_code", "assignment_role", "dispatched_at",
                "cleared_at", "timestamp")  # fmt: skip
UNIT_ARROW = arrow_schema([
    ("incident_number", _STRING), ("station_code", _STRING), ("assignment_role", _STRING),
    ("dispatched_at", _TS), ("cleared_at", _TS), ("timestamp", _TS), ("message_id", _STRING),
    ("is_duplicate", pa.bool_()),
])  # fmt: skip


class UnitRowSchema:
    """A unit sent to an incident (the seed's ``incident_units`` row): created when it is
    dispatched, updated when it is cleared (``cleared_at`` set)."""

    stream = UNITS
    partition_key = "incident_number"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ("cleared_at",)
    kinds: Kinds | None = None

    def __init__(self, source: IncidentsSource) -> None:
        self.codes = np.asarray(source.city.codes, dtype=object)
        self.measures: dict[str, tuple[float, float, float]] = {}

    def _arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        return [
            pa.array(incident_numbers(c["year"], c["seq"]), pa.string()),
            pa.array(self.codes[c["station"]], pa.string()),
            pa.array(np.asarray(ASSIGNMENT_ROLES, dtype=object)[c["role"]], pa.string()),
            timestamp_array(c["dispatched"]),
            pa.array(c["cleared"], pa.int64(), mask=c["stage"] == 0).cast(_TS),
            timestamp_array(batch.reported_ms), uuid_array(batch.key),
            pa.array(batch.is_duplicate),
        ]  # fmt: skip

    def table(self, batch: RecordBatch) -> pa.Table:
        return pa.Table.from_arrays(self._arrays(batch), schema=UNIT_ARROW)

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        iso = np.datetime_as_string(c["dispatched"].astype("datetime64[ms]"), timezone="UTC")
        cleared = np.datetime_as_string(c["cleared"].astype("datetime64[ms]"), timezone="UTC")
        return [
            {"incident_number": number, "station_code": station,
             "assignment_role": ASSIGNMENT_ROLES[role], "dispatched_at": sent,
             "cleared_at": done if stage else None, "timestamp": ts, "message_id": mid,
             "is_duplicate": dup}
            for number, station, role, sent, done, stage, ts, mid, dup in zip(
                incident_numbers(c["year"], c["seq"]), self.codes[c["station"]].tolist(),
                c["role"].tolist(), iso.tolist(), cleared.tolist(), c["stage"].tolist(),
                batch.iso_times(), batch.message_ids().astype("U36").tolist(),
                batch.is_duplicate.tolist(), strict=True,
            )
        ]  # fmt: skip
