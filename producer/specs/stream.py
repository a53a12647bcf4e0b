"""A spec stream at run time: the same contracts as a built-in sensor-shaped domain.

The stream kind (``SpecStreamSettings``) is made from a spec file, not from environment
variables; its source is the shared sensor-shaped source (rate model, shards, keys), so
determinism, ``--shard`` exactness, backfill equal to live and every fault kind hold as for
the built-in streams. The generator draws attributes once per entity from the entity's key
and each record's fields from the record's key (``combine(entity key, time, step)``, as the
BME280 model does) and the field's name; walks, sequences and state machines are
per-entity state advanced in time order. Episodes are per entity and slot (as fault
episodes are), from the seed; a fault stage labels the records they cover in the ground
truth.
"""

from __future__ import annotations

import string
import time
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.faults.base import Step, Truth, episodes
from producer.generators import (
    Generator,
    Source,
    entity_keys,
    levels,
    poisson,
    rank_within_entity,
    sensor_source,
    weighted_choice,
    weighted_choice_rows,
)
from producer.geography import load_cities
from producer.plugins import SensorStreamSettings, StreamContext
from producer.rates import Due
from producer.records import RecordBatch, Schema
from producer.rng import F64, I64, U64
from producer.specs.expressions import Expression, compile_expression, field_order
from producer.specs.format import (
    CITY_COLUMNS,
    TIME_NAMES,
    StreamSpec,
    ValueSpec,
    city_values,
    city_words,
    template_names,
    zone_of,
)
from producer.specs.schema import SpecSchema, json_values
from producer.timeline import DAY_MS, HOUR_MS, weekday
from producer.zones import ZoneTable

Values = npt.NDArray[Any]
DELETES = "table:delete"  # a table's column: the records that delete their row
_DELETE_SALT = rng.text_key("spec-table", "delete")


class SpecStreamSettings(SensorStreamSettings):
    """A stream declared in a spec file (``--spec FILE``)."""

    KIND: ClassVar[str] = "spec"
    DESCRIPTION: ClassVar[str] = "a stream declared in a spec file (--spec FILE)"

    name: str
    spec: StreamSpec

    @property
    def entities(self) -> int:
        return self.spec.entities.count

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        return SpecGenerator(self.name, self.spec, entity_ids, keys, rng.text_key(self.name))

    def build(self, context: StreamContext) -> Source:
        # Episodes are per entity and slot from the seed (the entities' keys are this
        # shard's only): the generator gets a key of the seed and stream.
        episode_key = rng.text_key(context.seed, context.name, "episodes")

        def generator(entity_ids: I64, keys: U64) -> Generator:
            return SpecGenerator(self.name, self.spec, entity_ids, keys, episode_key,
                                 context.origin_ms, context.seed)  # fmt: skip

        source = sensor_source(context.name, self.entities, self.rate, context.seed,
                               context.shard, generator, context.pace)  # fmt: skip
        table = self.spec.table
        if table is None:
            return source
        from producer.cdc import ChangeSource, Table

        key = tuple(table.key or [self.spec.entities.id_field])
        delete = DELETES if table.delete is not None else None
        return ChangeSource(source, {context.name: Table(table.name or context.name, key,
                                                         delete=delete,
                                                         stamp=self.spec.time_field)})  # fmt: skip

    def fault_stages(self, key: int, schema: Schema) -> list[Any]:
        return [EpisodeTruth(tuple(self.spec.episodes))] if self.spec.episodes else []

    def destination(self, sink: str, channel: str) -> str | None:
        return self.spec.destinations.get(sink)

    @classmethod
    def of(cls, name: str, spec: StreamSpec) -> SpecStreamSettings:
        return cls(name=name, spec=spec, sinks=spec.sinks, faults=spec.faults, rate=spec.rate)


_SPREAD = 2_654_435_761  # a prime: rank -> rank * _SPREAD mod n is a bijection for n < it


def _salt(name: str) -> int:
    return rng.text_key("spec-field", name)


class _Values:
    """One attribute's or field's draws: numbers, or codes of a choice."""

    def __init__(
        self, name: str, spec: ValueSpec, readable: set[str], attributes: set[str],
        words: dict[str, list[str]],
    ) -> None:  # fmt: skip
        self.name, self.spec = name, spec
        self.salt = _salt(name)
        self.expression: Expression | None = None
        others = {k: v for k, v in words.items() if k != name}
        if spec.expr is not None:  # (numbers, or the index of each record's word)
            self.expression = compile_expression(spec.expr, readable - {name}, categories=others,
                                                 words=spec.words)  # fmt: skip
        if spec.walk is not None and isinstance(spec.walk.start, str):
            self.expression = compile_expression(spec.walk.start, attributes, categories=others)
        self.labels: list[Any] = spec.words or [] if spec.choice is None else []
        self.ref: tuple[str, str, int] | None = None  # (stream, id format, entities)
        self.target: _Values | None = None  # the field a prev field follows
        self.numeric = spec.numeric  # a choice of numbers holds the numbers, not codes
        if spec.choice is not None:
            self.labels = [_label(v) for v in spec.choice]
            weights = np.asarray(list(spec.choice.values()), dtype=np.float64)
            self.cdf = np.cumsum(weights) / weights.sum()

    @property
    def reads(self) -> frozenset[str]:
        if self.spec.count is not None:
            return frozenset({self.spec.count.of})
        if self.spec.lookup is not None:
            return frozenset({self.spec.lookup.partition(".")[0]})
        if self.spec.template is not None:
            return frozenset(template_names(self.spec.template))
        names = self.expression.names if self.expression is not None else frozenset()
        return names | {self.spec.per} if self.spec.per is not None else names

    def draw(self, keys: U64, columns: dict[str, Values], at_ms: int | I64 | None = None) -> Values:
        """Values of a stateless kind for records (or entities) with these keys; ``at_ms``
        the event time they are drawn as of, one for all or each record's (Faker's dates;
        None: now)."""
        s = self.spec
        own = rng.combine(keys, self.salt)
        if self.expression is not None and s.walk is None:
            out = self.expression.evaluate(columns, own)
            return out if s.words is None else out.astype(np.int64)
        u = rng.uniforms(own, (0, 1))
        if s.uniform is not None:
            low, high = s.uniform
            return low + (high - low) * u[:, 0]
        if s.normal is not None:
            return s.normal[0] + s.normal[1] * rng.box_muller(u[:, 0], u[:, 1])
        if s.lognormal is not None:
            return s.lognormal[0] * np.exp(s.lognormal[1] * rng.box_muller(u[:, 0], u[:, 1]))
        if s.exponential is not None:
            return -np.log(u[:, 0]) * s.exponential
        if s.poisson is not None:
            return poisson(u[:, 0], u[:, 1], s.poisson)
        if s.city is not None:  # an index into the bundled cities
            cities = load_cities()
            weights = cities.population if s.city == "population" else np.ones(len(cities))
            return weighted_choice(u[:, 0], weights)
        if s.lookup is not None:  # a column of the city attribute's city
            city, _, column = s.lookup.partition(".")
            index = columns[city].astype(np.int64)
            return city_column(column)[index]
        if s.faker is not None:
            return fake(s.faker, s.locale, own, at_ms)
        if self.ref is not None:  # an entity of the other stream, uniformly or skewed
            count = self.ref[2]
            if s.skew is None:
                return np.minimum((u[:, 0] * count).astype(np.int64), count - 1)
            records, entities = s.skew[0] / 100, s.skew[1] / 100
            rank = np.minimum((u[:, 0] ** (np.log(entities) / np.log(records)) * count)
                              .astype(np.int64), count - 1)  # fmt: skip
            # The busy ranks spread over the ids: a bijection of 0..count-1 (an odd prime
            # step, coprime to any count below it).
            spread: I64 = (rank * _SPREAD) % count
            return spread
        assert s.choice is not None
        codes = np.minimum(np.searchsorted(self.cdf, u[:, 0], side="right"), len(self.labels) - 1)
        if self.numeric:
            return np.asarray(self.labels, dtype=np.float64)[codes]
        return codes

    def finish(self, values: Values, keys: U64) -> Values:
        """Rounding and nulls (NaN for numbers, -1 for codes, None for text)."""
        s = self.spec
        if self.numeric and s.round is not None:
            values = np.round(values, s.round)
        if s.nulls > 0:
            null = rng.uniform(rng.combine(keys, self.salt), 7) < s.nulls
            text = values.dtype == object  # (Faker's, a template's, a lookup of either)
            empty: Any = None if text else np.nan if self.numeric else -1
            values = np.where(null, empty, values)
        return values


def _kind(values: _Values) -> str:
    """How a field's column holds its values: numbers (NaN null), codes (-1 null), text."""
    s = values.spec
    if s.faker is not None or s.template is not None:
        return "text"
    return "number" if values.numeric else "code"


_NONE: dict[str, Any] = {"text": None, "number": np.nan, "code": -1}


def city_column(column: str) -> Values:
    """A column of the bundled cities, by city index: numbers, or codes of its words."""
    cities = load_cities()
    if CITY_COLUMNS[column]:
        return np.asarray(getattr(cities, column), dtype=np.float64)
    words = {word: i for i, word in enumerate(city_words(column))}
    return np.array([words[v] for v in city_values(column)], dtype=np.int64)


def fake(provider: str, locale: str | None, keys: U64, at_ms: int | I64 | None = None) -> Values:
    """A Faker provider's value for each key, Faker seeded by the key, as of the event time
    ``at_ms`` in UTC, one for all or each key's (the same value for an entity or a record in
    every run and shard, on any host, in any zone, on any day, with the same Faker version).
    Faker's date providers read the clock and the local zone: they read ``at_ms`` and UTC
    meanwhile."""
    import time_machine
    from faker import Faker

    faker = Faker(locale or "en_US")
    method = getattr(faker, provider)
    out = np.empty(keys.size, dtype=object)
    if at_ms is None:  # (a generator built without a run's start: as of now)
        at_ms = round(time.time() * 1000)
    times = np.broadcast_to(np.asarray(at_ms, dtype=np.int64), keys.shape).tolist()
    utc = ZoneInfo("UTC")  # (a zone with each move: a bare timestamp would drop it)
    start = datetime.fromtimestamp(times[0] / 1000 if times else 0, utc)
    with time_machine.travel(start, tick=False) as clock:
        for i, (key, ms) in enumerate(zip(keys.tolist(), times, strict=True)):
            clock.move_to(datetime.fromtimestamp(ms / 1000, utc), tick=False)
            faker.seed_instance(key)
            out[i] = str(method())
    return out


def _label(value: str) -> Any:
    """A choice's value as written: a number stays a number in JSON."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


class _Machine:
    """A field's state machine: each entity's state, when it entered it, how long it stays."""

    def __init__(self, values: _Values, entities: int) -> None:
        machine = values.spec.machine
        assert machine is not None
        names = list(machine.states)
        self.start = names.index(machine.first)
        self.weights = np.array([[state.next.get(n, 0.0) for n in names]
                                 for state in machine.states.values()])  # fmt: skip
        self.allowed = self.weights > 0  # the declared transitions
        self.silent = np.array([not state.emit for state in machine.states.values()])
        self.changes_only = machine.changes_only
        self.entering = np.zeros(0, dtype=np.bool_)  # the last batch's, per record
        self.dwell = [
            None if state.dwell_s is None
            else _Values(f"{values.name}:{n}", state.dwell_s, set(), set(), {})
            for n, state in machine.states.items()
        ]  # fmt: skip
        self.salt = values.salt
        self.state = np.full(entities, -1, dtype=np.int64)
        self.entries = np.zeros((entities, len(names)), dtype=np.int64)  # per entity and state
        self.counted = np.zeros((0, len(names)), dtype=np.int64)  # the last batch's, per record
        self.entered = np.zeros(entities, dtype=np.int64)
        self.stay = np.zeros(entities, dtype=np.int64)  # ms in the state before it moves

    def advance(self, local: I64, time_ms: I64, keys: U64, by_rank: list[I64]) -> I64:
        """Each record's state, entity by entity in time order (all entities at once)."""
        u = rng.uniform(rng.combine(keys, self.salt), 0)
        out = np.empty(local.size, dtype=np.int64)
        self.counted = np.empty((local.size, self.weights.shape[0]), dtype=np.int64)
        self.entering = np.zeros(local.size, dtype=np.bool_)
        for idx in by_rank:
            ent, t = local[idx], time_ms[idx]
            current = self.state[ent]
            first = current < 0
            moving = ~first & (t - self.entered[ent] >= self.stay[ent])
            new = np.where(first, self.start, current)
            if moving.any():
                go = np.flatnonzero(moving)
                new[go] = weighted_choice_rows(u[idx][go], self.weights[current[go]])
            # A move restarts the dwell; one to the state the entity is in is a stay, not an
            # entry (changes_only writes no record for it, count.enters does not count it).
            moved = np.flatnonzero(first | moving)
            if moved.size:
                self.entered[ent[moved]] = t[moved]
                self.stay[ent[moved]] = self._dwell(new[moved], keys[idx][moved])
            enter = np.flatnonzero(first | (moving & (new != current)))
            if enter.size:
                self.entries[ent[enter], new[enter]] += 1
                self.entering[idx[enter]] = True
            self.state[ent] = new
            out[idx] = new
            self.counted[idx] = self.entries[ent]
        return out

    def _dwell(self, states: I64, keys: U64) -> I64:
        stay = np.zeros(states.size, dtype=np.int64)
        for code, values in enumerate(self.dwell):
            if values is None:
                continue
            mine = np.flatnonzero(states == code)
            if mine.size:
                seconds = np.maximum(values.draw(keys[mine], {}), 0.0)
                stay[mine] = np.round(seconds * 1000).astype(np.int64)
        return stay


class SpecGenerator:
    """Records of one spec stream for the entities due (see the module's docstring)."""

    def __init__(
        self, name: str, spec: StreamSpec, entity_ids: I64, keys: U64, episode_key: int,
        origin_ms: int | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        """``origin_ms``: the event time the run starts at, as of which the attributes are
        drawn (a Faker date); the wall clock's now when not given. ``seed``: the run's (a
        lookup draws a referenced entity's attribute as its stream does)."""
        self.stream, self.spec = name, spec
        self.seed, self.origin_ms = seed, origin_ms
        self.entity_ids, self.keys = entity_ids, keys
        self.episode_key = episode_key
        readable = spec.readable()
        attributes = spec.entities.attributes
        numeric = {a for a, s in attributes.items() if s.numeric}
        words = spec.categories()
        attribute_words = {a: w for a, w in words.items() if a in attributes}
        self.attributes = {a: _Values(a, s, numeric, numeric, attribute_words)
                           for a, s in attributes.items()}  # fmt: skip
        self.fields = {f: _Values(f, s, readable, numeric, words) for f, s in spec.fields.items()}
        for values in [*self.attributes.values(), *self.fields.values()]:
            if values.spec.ref is not None:
                id_format, count = spec.references[values.spec.ref]
                values.ref = (values.spec.ref, id_format, count)
        # A prev field follows another: each entity's last written value of it.
        self.last: dict[str, npt.NDArray[Any]] = {}
        for name, values in self.fields.items():
            if values.spec.prev is not None:
                target = values.target = self.fields[values.spec.prev]
                values.labels, values.ref = target.labels, target.ref
                self.last[name] = np.full(entity_ids.size, _NONE[_kind(target)], dtype=object)
        # Walks start from attributes (at the entity's first record): not a field dependency.
        self.order = field_order({f: v.reads - {spec.entities.id_field} if v.spec.walk is None
                                  else frozenset() for f, v in self.fields.items()
                                  if v.spec.prev is None})  # fmt: skip
        # Lookups of a referenced entity's attribute: its stream's attributes, drawn as that
        # stream draws them (the same keys), for the entities referenced.
        self.remote: dict[str, tuple[str, SpecGenerator, str]] = {}
        self._remote_cache: dict[str, tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]] = {}
        for name, values in [*self.attributes.items(), *self.fields.items()]:
            if values.spec.follows is None:
                continue
            through, _, column = (values.spec.lookup or "").partition(".")
            other = {**spec.entities.attributes, **spec.fields}[through].ref
            assert other is not None
            theirs = SpecGenerator(other, spec.targets[other], np.zeros(0, dtype=np.int64),
                                   np.zeros(0, dtype=np.uint64), 0, origin_ms, seed)  # fmt: skip
            self.remote[name] = (through, theirs, column)
            values.target = theirs.attributes[column]
            values.labels, values.ref = values.target.labels, values.target.ref
        # Attributes, drawn once per entity of this process (each from its own key).
        self.attribute_order = field_order({a: v.reads - {spec.entities.id_field}
                                            for a, v in self.attributes.items()})  # fmt: skip
        columns = self.attribute_columns(entity_ids, keys)
        self.entity_columns = columns
        n = entity_ids.size
        self.steps = np.zeros(n, dtype=np.int64)
        self.walks: dict[str, F64] = {}
        for name, values in self.fields.items():
            walk = values.spec.walk
            if walk is not None:
                if values.expression is not None:
                    start = values.expression.evaluate(columns, rng.combine(keys, values.salt))
                else:
                    start = np.full(n, float(walk.start))
                self.walks[name] = np.clip(start, walk.min, walk.max)
        # Local time: one zone for all, or each entity's own (a city's, a zone attribute's).
        self.zones: ZoneTable | None = None
        self.zone = np.zeros(n, dtype=np.int64)
        zone, holder = zone_of(spec)
        if holder is None and zone != "UTC":
            self.zones = ZoneTable([zone])
        elif holder is not None:
            zone_names = [str(w) for w in self.attributes[zone].labels]
            codes = columns[zone].astype(np.int64)
            if holder == "city":  # a city index: its timezone, among the cities' zones
                zone_names = city_words("timezone")
                codes = city_column("timezone")[codes]
            self.zones = ZoneTable(zone_names)
            self.zone = np.maximum(codes, 0)  # (a null zone: the first)
        self.times = [t for t in TIME_NAMES if any(t in v.reads for v in self.fields.values())]
        self.machines = {f: _Machine(v, n) for f, v in self.fields.items()
                         if v.spec.machine is not None}  # fmt: skip
        self.deletes: Expression | None = None  # a table's: which records delete their row
        if spec.table is not None and spec.table.delete is not None:
            self.deletes = compile_expression(spec.table.delete, readable, categories=words)
        self.schema: Schema = SpecSchema(self)

    def generate(self, due: Due) -> RecordBatch:
        local, time_ms = due.entity, due.time_ms
        rank = rank_within_entity(local)
        step = self.steps[local] + rank
        keys = rng.combine(rng.combine(self.keys[local], time_ms), step)
        columns: dict[str, Values] = {a: v[local] for a, v in self.entity_columns.items()}
        by_rank: list[I64] | None = None  # made once, for walks and machines
        if self.times:  # only the time names some field reads, in local time
            wall = time_ms if self.zones is None else self.zones.local_ms(self.zone[local], time_ms)
            if "hour" in self.times:
                columns["hour"] = (wall % DAY_MS) / HOUR_MS
            if "weekday" in self.times:
                columns["weekday"] = weekday(wall).astype(np.float64)
            if "month" in self.times:
                months = wall.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
                columns["month"] = (months % 12 + 1).astype(np.float64)
            if "time" in self.times:  # (the event time itself, in UTC: no zone)
                columns["time"] = time_ms / 1000.0
        hidden = [*self.times, *self.spec.episodes]
        entity = self.entity_ids[local]
        for salt, (name, episode) in enumerate(self.spec.episodes.items()):
            slot = HOUR_MS if episode.per == "hour" else DAY_MS
            found, start, u = episodes(self.episode_key, salt, entity, time_ms, episode.rate, slot)
            low, high = episode.bounds_s
            end = start + ((low + u[:, 0] * (high - low)) * 1000).astype(np.int64)
            on = found & (time_ms < end)
            columns[name] = on.astype(np.float64)
            # For the ground truth (a name no field can have): when each record's began/ends.
            columns[f"episode:{name}"] = np.where(on, start, -1)
            columns[f"episode:{name}:end"] = np.where(on, end, -1)
        for name in self.order:
            values = self.fields[name]
            s = values.spec
            if s.sequence is not None:
                raw: Values = s.sequence.start + s.sequence.step * step
            elif s.count is not None:  # its machine came first (it reads it)
                machine = self.machines[s.count.of]
                states = list(self.fields[s.count.of].labels)
                raw = machine.counted[:, states.index(s.count.enters)]
            elif s.template is not None:
                raw = self._template(values, columns, entity)
            elif name in self.remote:
                raw = self._looked_up(name, columns)
            elif s.walk is not None or s.machine is not None:
                by_rank = by_rank if by_rank is not None else levels(rank)
                if s.walk is not None:
                    raw = self._walk(name, local, by_rank, keys)
                else:
                    raw = self.machines[name].advance(local, time_ms, keys, by_rank)
            else:
                own = keys
                if s.per is not None:  # once per count: keyed by the entity and the count
                    own = rng.combine(self.keys[local], columns[s.per].astype(np.int64))
                raw = values.draw(own, columns, time_ms)
            columns[name] = values.finish(raw, keys)
        if self.deletes is not None:
            columns[DELETES] = self.deletes.evaluate(columns, rng.combine(keys, _DELETE_SALT)) > 0
        np.add.at(self.steps, local, 1)
        out = {k: v for k, v in columns.items() if k not in hidden}
        batch = RecordBatch(self.stream, entity, time_ms, keys, out)
        silent = [m.silent[columns[f].astype(np.int64)]
                  for f, m in self.machines.items() if m.silent.any()]  # fmt: skip
        silent += [~m.entering for m in self.machines.values() if m.changes_only]
        if silent:  # records of entities in a state that writes nothing are not made
            quiet = np.logical_or.reduce(silent)
            if quiet.any():
                written = np.flatnonzero(~quiet)
                batch, local = batch.take(written), local[written]
        if self.last:
            batch.columns.update(self._previous(local, batch))
        return batch

    def _previous(self, local: I64, batch: RecordBatch) -> dict[str, Values]:
        """Each prev field: the value its field had in the entity's previous written record
        (this batch's, or the last one before it), null in the entity's first."""
        order = np.argsort(local, kind="stable")  # each entity's records, in time order
        ordered = local[order]
        first = np.ones(ordered.size, dtype=np.bool_)
        first[1:] = ordered[1:] != ordered[:-1]
        final = np.ones(ordered.size, dtype=np.bool_)
        final[:-1] = ordered[1:] != ordered[:-1]
        out: dict[str, Values] = {}
        for name, last in self.last.items():
            target = self.fields[name].target
            assert target is not None
            values = batch.columns[target.name]
            behind = np.empty(ordered.size, dtype=object)
            behind[first] = last[ordered[first]]
            behind[~first] = values[order[:-1][~first[1:]]] if ordered.size > 1 else []
            column = np.empty(ordered.size, dtype=object)
            column[order] = behind
            last[ordered[final]] = values[order[final]]
            kind = _kind(target)
            out[name] = column if kind == "text" else column.astype(
                np.float64 if kind == "number" else np.int64)  # fmt: skip
        return out

    def attribute_columns(self, ids: I64, keys: U64) -> dict[str, Values]:
        """Every attribute of the entities ``ids`` (their keys ``keys``)."""
        columns: dict[str, Values] = {}
        for name in self.attribute_order:
            values = self.attributes[name]
            if values.spec.template is not None:
                raw = self._template(values, columns, ids)
            elif name in self.remote:
                raw = self._looked_up(name, columns)
            else:
                raw = values.draw(keys, columns, self.origin_ms)
            columns[name] = values.finish(raw, keys)
        return columns

    def _looked_up(self, name: str, columns: dict[str, Values]) -> Values:
        """A referenced entity's attribute, for each record (or entity); null where the
        reference is."""
        through, theirs, column = self.remote[name]
        index = columns[through].astype(np.int64)
        empty = _NONE[_kind(theirs.attributes[column])]
        if name not in self._remote_cache:  # each entity's value, drawn the first time asked
            count = theirs.spec.entities.count
            self._remote_cache[name] = (np.full(count, empty, dtype=object),
                                        np.zeros(count, dtype=np.bool_))  # fmt: skip
        cache, known = self._remote_cache[name]
        wanted = np.unique(index[index >= 0])
        new = wanted[~known[wanted]]
        if new.size:
            keys = entity_keys(self.seed, theirs.stream, new)
            cache[new] = theirs.attribute_columns(new, keys)[column]
            known[new] = True
        out = cache[np.maximum(index, 0)]
        out[index < 0] = empty
        return out if _kind(theirs.attributes[column]) == "text" else out.astype(
            np.float64 if theirs.attributes[column].numeric else np.int64)  # fmt: skip

    def _template(self, values: _Values, columns: dict[str, Values], entity: I64) -> Values:
        """A template's text for each record (or entity): the values it names as they are
        written; null where one of them is."""
        template = values.spec.template
        assert template is not None
        plain: dict[str, list[Any]] = {}
        for name in dict.fromkeys(template_names(template)):
            if name == self.spec.entities.id_field:
                ids = self.spec.entities.id
                plain[name] = [ids.format(stream=self.stream, index=i) for i in entity.tolist()]
            else:
                read = self.fields.get(name) or self.attributes[name]
                plain[name] = json_values(read, columns[name])
        out = np.empty(entity.size, dtype=object)
        if not plain:  # (text alone, {{ and }} as braces)
            out[:] = template.format()
            return out
        # By position ({0}-{1:08d}: no dict a record), then the records with a null again.
        names = list(plain)
        positional = "".join(
            text.replace("{", "{{").replace("}", "}}")
            + ("" if name is None else f"{{{names.index(name)}{':' + spec if spec else ''}}}")
            for text, name, spec, _ in string.Formatter().parse(template)
        )  # fmt: skip
        columns_ = list(plain.values())
        nulls = [i for column in columns_ for i, v in enumerate(column) if v is None]
        if nulls:
            columns_ = [list(c) for c in columns_]
            for column in columns_:  # (formatted as something, then made null)
                for i in nulls:
                    column[i] = 0 if column[i] is None else column[i]
        fill = positional.format
        try:
            out[:] = [fill(*row) for row in zip(*columns_, strict=True)]
        except (ValueError, TypeError):  # a null's stand-in its spec cannot write: one by one
            out[:] = [None if None in row else fill(*row)
                      for row in zip(*plain.values(), strict=True)]  # fmt: skip
        if nulls:
            out[nulls] = None
        return out

    def _walk(self, name: str, local: I64, by_rank: list[I64], keys: U64) -> F64:
        """Each entity's walk, record by record in time order (all entities at once)."""
        walk = self.fields[name].spec.walk
        assert walk is not None
        moves = (rng.uniform(rng.combine(keys, self.fields[name].salt), 0) * 2 - 1) * walk.step
        state = self.walks[name]
        out = np.empty(local.size)
        for idx in by_rank:
            ent = local[idx]
            new = np.clip(state[ent] + moves[idx], walk.min, walk.max)
            state[ent] = new
            out[idx] = new
        return out


class EpisodeTruth:
    """A spec stream's episodes in the ground truth: each record one covers, under the
    episode's name, with when it began and ends. It changes nothing (the episode already
    shaped the fields); first of the stages, so later faults see it as any record."""

    order = 5

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.kinds = kinds

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        for name in self.kinds:
            start = batch.columns[f"episode:{name}"]
            hit = np.flatnonzero(start >= 0)
            if hit.size:
                end = batch.columns[f"episode:{name}:end"]
                step.truth.append(Truth(name, batch.take(hit), {
                    "start_ms": start[hit], "end_ms": end[hit],
                }))  # fmt: skip
        return batch
