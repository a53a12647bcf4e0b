"""The spec file format: YAML, validated into models, every error ``FILE:LINE:COL: what is
wrong; what is accepted``.

A file declares one or more streams::

    streams:
      fleet:
        entities: {count: 500, id: "sensor-{index:04d}",
                   attributes: {site: {choice: {north: 5, south: 3}}, _base: {uniform: [18, 24]}}}
        rate: {interval_s: 10, jitter_s: 1}
        fields:
          temperature: {walk: {start: _base, step: 0.2, min: -10, max: 45}, round: 2}
          humidity: {expr: "clip(80 - 1.2 * temperature + normal(0, 2), 0, 100)", round: 1}
        sinks: [stdout]

Attributes are drawn once per entity; fields once per record, in an order where each comes
after the fields it reads. A name starting with ``_`` is used but not written.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any, Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from producer.plugins import check_template, registered, sink_kinds
from producer.settings import FaultSettings, Model, RateSettings
from producer.specs.expressions import ExpressionError, compile_expression, result_words

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# The names an expression may read besides the stream's own: the record's time.
TIME_NAMES = ("hour", "weekday", "month", "time")  # time: the event time, s since 1970 UTC
TIME_TYPES = ("timestamp", "date")
DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exponential", "poisson")
KINDS = ("expr", *DISTRIBUTIONS, "choice", "sequence", "walk", "ref", "machine", "count", "city",
         "lookup", "faker", "template", "prev")  # fmt: skip
PER_ENTITY = ("city", "lookup")  # attributes only
FORMAT_ACCEPTED = "one {} or {:spec} with text around it, e.g. 'ORD-{:06d}' or '{:.2f} EUR'"
TEMPLATE_ACCEPTED = ("text with {name} or {name:spec} of the record's fields and attributes, "
                     "e.g. 'ORD-{order_no:06d}' or '{first} {last}'")  # fmt: skip
TIME_FORMATS = ("iso", "epoch_ms", "epoch_s")
PER_RECORD = ("walk", "sequence", "machine", "count", "prev")  # fields only
# The columns of the bundled cities a lookup can read, and which of them are numbers.
CITY_COLUMNS = {"name": False, "country": False, "country_code": False, "latitude": True,
                "longitude": True, "population": True, "timezone": False}  # fmt: skip
# Faker methods that are not values (or are files and archives): not providers here.
_NOT_PROVIDERS = {"seed", "seed_instance", "seed_locale", "add_provider", "get_providers",
                  "provider", "format", "parse", "set_formatter", "get_formatter",
                  "set_arguments", "del_arguments", "get_arguments", "binary", "zip", "tar",
                  "image", "json", "json_bytes", "xml", "csv", "tsv", "psv", "dsv",
                  "fixed_width", "random", "unique", "optional", "enum"}  # fmt: skip


class Walk(Model):
    """A bounded random walk per entity: each record moves by up to +/- ``step``."""

    start: float | str = Field(description="Where each entity starts: a number or an attribute.")
    step: float = Field(gt=0, description="The largest move between two records.")
    min: float
    max: float

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.min >= self.max:
            raise ValueError("min must be less than max")
        return self


class Sequence(Model):
    """Per entity: ``start``, then ``start + step`` and so on, a record at a time."""

    start: int = 1
    step: int = 1


class Count(Model):
    """How many times the entity's machine ``of`` has entered state ``enters`` so far (its
    first record counts when it starts there): a session number, an order number."""

    of: str = Field(description="A machine field of the stream.")
    enters: str = Field(description="One of its states.")


class State(Model):
    """One state of a machine: where an entity goes from it, when, and whether it writes."""

    next: dict[str, float] = Field(
        min_length=1, description="The states it moves to, with weights (itself to stay)."
    )
    dwell_s: ValueSpec | None = Field(
        None,
        description="How long an entity stays before it moves (drawn on entering: a "
        "number or a distribution); none: it moves at its next record.",
    )
    emit: bool = Field(True, description="false: an entity in this state writes no records.")


class Machine(Model):
    """A state machine per entity: each record is in the entity's current state; at a
    record after the state's dwell time it moves, by the weights of ``next``."""

    start: str | None = Field(None, description="Where each entity starts (the first state).")
    states: dict[str, State] = Field(min_length=1)
    changes_only: bool = Field(
        False,
        description="true: only records where the entity entered a state are written "
        "(a status change each); false: every record the rate makes.",
    )

    @model_validator(mode="after")
    def _closed(self) -> Self:
        names = list(self.states)
        if self.start is not None and self.start not in self.states:
            raise ValueError(f"start {self.start!r} is not a state; accepted: {', '.join(names)}")
        for name, state in self.states.items():
            unknown = [n for n in state.next if n not in self.states]
            if unknown:
                raise ValueError(f"state {name!r} moves to {unknown[0]!r}, which is not a "
                                 f"state; accepted: {', '.join(names)}")  # fmt: skip
            if min(state.next.values()) < 0 or sum(state.next.values()) <= 0:
                raise ValueError(f"state {name!r}: next needs non-negative weights, not all 0")
            dwell = state.dwell_s
            if dwell is not None and dwell.kind not in (*DISTRIBUTIONS, "expr"):
                raise ValueError(f"state {name!r}: dwell_s is a {dwell.kind}; accepted: a "
                                 f"number or one of {', '.join(DISTRIBUTIONS)}")  # fmt: skip
            if dwell is not None and dwell.expr is not None:
                try:
                    compile_expression(dwell.expr, set())
                except ExpressionError as exc:
                    raise ValueError(f"state {name!r}: dwell_s: {exc}") from None
        if not any(state.emit for state in self.states.values()):
            raise ValueError("no state writes records (every state has emit: false); accepted: "
                             "at least one state that writes")  # fmt: skip
        return self

    @property
    def first(self) -> str:
        return self.start if self.start is not None else next(iter(self.states))


class ValueSpec(Model):
    """How one attribute or field gets its values: exactly one kind, then options."""

    expr: str | None = Field(None, description="An expression over other fields.")
    uniform: tuple[float, float] | None = None
    normal: tuple[float, float] | None = None
    lognormal: tuple[float, float] | None = None
    exponential: float | None = Field(None, gt=0)
    poisson: float | None = Field(None, ge=0, le=1e9, description="Poisson counts of this mean.")
    choice: dict[str, float] | None = Field(None, description="Values and their weights.")
    sequence: Sequence | None = None
    walk: Walk | None = None
    ref: str | None = Field(
        None, description="The id of an entity of another stream of the file (a foreign key)."
    )
    skew: tuple[float, float] | None = Field(
        None,
        description="With ref: [80, 20] sends 80 % of the references to 20 % of the entities "
        "(the busy ones spread over the ids), the rest likewise down a power law.",
    )
    machine: Machine | None = Field(
        None, description="A state machine per entity (fields only): the value is the state."
    )
    count: Count | None = Field(None, description="Entries of a machine into a state.")
    city: Literal["population", "uniform"] | None = Field(
        None, description="One of the bundled cities per entity, weighted by population or not."
    )
    lookup: str | None = Field(
        None,
        description="<city attribute>.<column>: " + ", ".join(CITY_COLUMNS) + "; or "
        "<ref>.<attribute>: the referenced entity's attribute.",
    )
    faker: str | None = Field(
        None,
        description="A Faker provider: an attribute's seeded per entity (name, ...), a "
        "field's per record (ipv4, user_agent, sentence, ...), as of its event time.",
    )
    prev: str | None = Field(
        None,
        description="The value a field had in the entity's previous written record (null in "
        "its first): the last reading, a user's previous page. Made last: nothing reads it.",
    )
    template: str | None = Field(
        None,
        description="Text from the record's fields and attributes (an attribute's: from "
        "attributes), each as {name} or {name:spec}: 'ORD-{order_no:06d}', '{first} {last}'; "
        "null where one of them is.",
    )
    locale: str | None = Field(None, description="Faker's locale (default en_US).")
    format: str | None = Field(
        None,
        description="Written as text through a Python format of the value: "
        "'ORD-{:06d}', '{:.2f} EUR', '{:>8}'.",
    )
    round: int | None = Field(
        None, ge=0, le=12, description="Decimals to keep (0: a whole number, written as one)."
    )
    type: Literal["timestamp", "date"] | None = Field(
        None,
        description="The value is a time, in seconds since 1970 UTC (an expression over "
        "time: 'time + exponential(600)'): written as a timestamp (as the stream's "
        "time_format says; a timestamp column) or a date (YYYY-MM-DD; a date column).",
    )
    per: str | None = Field(
        None,
        description="A count field: the value is drawn once per count (an order's "
        "amount stays the order's), not once per record.",
    )
    nulls: float = Field(0.0, ge=0, le=1, description="Share of records where it is null.")
    range: tuple[float, float] | None = Field(
        None, description="Plausible bounds (what faults clip anomalies to)."
    )
    # A lookup of a referenced entity's attribute: that attribute's spec, resolved when the
    # file is read (its type and words are this value's).
    _follows: ValueSpec | None = PrivateAttr(None)

    @property
    def follows(self) -> ValueSpec | None:
        return self._follows

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"expr": value}
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return {"expr": repr(float(value))}
            except OverflowError:
                raise ValueError("a number too large; accepted: numbers up to 1.8e308") from None
        return value

    @field_validator("format")
    @classmethod
    def _one_field(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"format {value!r}: {exc}; accepted: {FORMAT_ACCEPTED}") from None
        fields = [p for p in parts if p[1] is not None]
        if len(fields) != 1 or fields[0][1] != "" or fields[0][3] is not None or (
            "{" in (fields[0][2] or "")
        ):  # fmt: skip
            raise ValueError(f"format {value!r} is not one plain {{}} or {{:spec}}; "
                             f"accepted: {FORMAT_ACCEPTED}")  # fmt: skip
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            template_names(value)
        return value

    @model_validator(mode="after")
    def _skew(self) -> Self:
        if self.skew is not None:
            records, entities = self.skew
            if self.ref is None or not 0 < entities < records < 100:
                raise ValueError(
                    f"skew {list(self.skew)} is not a skew of a ref; "
                    "accepted: with ref, [records %, entities %] with 0 < entities < records "
                    "< 100, e.g. [80, 20]"
                )
        return self

    @model_validator(mode="after")
    def _time_type(self) -> Self:
        if self.type is not None and (not self.numeric or self.kind in (
            "sequence", "count", "choice"
        ) or self.format is not None):  # fmt: skip
            raise ValueError(f"type {self.type} is for a number of seconds since 1970 (an "
                             "expression, a distribution, a walk), without format; accepted: "
                             "it on such a value")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _faker(self) -> Self:
        if self.faker is not None:
            check_faker(self.faker, self.locale)
        elif self.locale is not None:
            raise ValueError("locale is Faker's; accepted: locale with faker: <provider>")
        return self

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            got = " and ".join(given) if given else "no kind"
            raise ValueError(f"{got} given; accepted: exactly one of {', '.join(KINDS)}")
        if self.choice is not None and (not self.choice or min(self.choice.values()) < 0
                                        or sum(self.choice.values()) <= 0):  # fmt: skip
            raise ValueError("choice needs values with non-negative weights, not all 0; "
                             "accepted: {value: weight >= 0, ...}")  # fmt: skip
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def numeric(self) -> bool:
        if self._follows is not None:
            return self._follows.numeric
        if self.kind in ("ref", "machine", "city", "faker", "template", "prev"):
            return False
        if self.expr is not None and result_words(self.expr) is not None:
            return False
        if self.lookup is not None:
            return CITY_COLUMNS.get(self.lookup.partition(".")[2], False)
        return self.choice is None or all(_is_number(v) for v in self.choice)

    @property
    def words(self) -> list[str] | None:
        """The values of a categorical kind (a choice of words, a machine's states)."""
        if self._follows is not None:
            return self._follows.words
        if self.machine is not None:
            return list(self.machine.states)
        if self.expr is not None and (words := result_words(self.expr)) is not None:
            return words
        if self.choice is not None and not self.numeric:
            return list(self.choice)
        if self.city is not None:  # a city's index: every city's name, in file order
            return city_values("name")
        if self.lookup is not None and not self.numeric:
            return city_words(self.lookup.partition(".")[2])
        return None


class Entities(Model):
    count: int = Field(ge=1, le=10_000_000, description="How many entities the stream has.")
    id: str = Field("{stream}-{index:06d}", description="Format of an entity's id.")
    id_field: str = Field("id", description="The JSON field holding the entity's id.")
    attributes: dict[str, ValueSpec] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _format(cls, value: str) -> str:
        accepted = "a format of {stream} and {index} only, e.g. 'sensor-{index:04d}'"
        try:
            names = [p[1] for p in string.Formatter().parse(value) if p[1] is not None]
            for name in names:  # (no attribute or item access: {stream.__class__} is refused)
                if name not in ("stream", "index"):
                    raise ValueError(f"{{{name}}} is not a name of an id; accepted: {accepted}")
            value.format(stream="s", index=1)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            if "is not a name of an id" in str(exc):
                raise
            raise ValueError(f"not a format ({exc}); accepted: {accepted}") from None
        return value


class Episode(Model):
    """Rare events with a duration: per entity and slot (an hour, or a day) with ``rate``,
    starting at a uniform time in the slot. While one lasts, expressions read its name as
    1 (0 otherwise), and each record it covers is in the ground truth under its name."""

    rate: float = Field(ge=0, le=1, description="Chance per entity and slot.")
    per: Literal["hour", "day"] = Field("hour", description="The slot an episode starts in.")
    duration_s: float | tuple[float, float] = Field(
        description="How long one lasts: seconds, or [shortest, longest] (at most the slot)."
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        low, high = (self.duration_s, self.duration_s) if isinstance(
            self.duration_s, float | int) else self.duration_s  # fmt: skip
        slot = 3600 if self.per == "hour" else 86400
        if not 0 < low <= high <= slot:
            raise ValueError(f"duration_s must be within (0, {slot}] seconds (the {self.per}), "
                             "shortest first")  # fmt: skip
        return self

    @property
    def bounds_s(self) -> tuple[float, float]:
        if isinstance(self.duration_s, tuple):
            return self.duration_s
        return (float(self.duration_s), float(self.duration_s))


class TableSpec(Model):
    """The stream's entities as a table: each record is a change of a row (change data
    capture, the Debezium envelope)."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="The table's name (a SQL name of at most 63 bytes): the stream's unless set.",
    )  # fmt: skip
    key: list[str] | None = Field(
        None, min_length=1,
        description="The primary key: fields of the record (the entity's id unless set).",
    )  # fmt: skip
    delete: str | None = Field(
        None, description="An expression: a record for which it is true deletes its row (a "
        "later record of the key creates it again).",
    )  # fmt: skip


class StreamSpec(Model):
    """One declared stream: its entities, fields, rate, and where it goes."""

    description: str = ""
    entities: Entities
    fields: dict[str, ValueSpec]
    episodes: dict[str, Episode] = Field(default_factory=dict)
    local_time: str = Field(
        "UTC",
        description="The zone of hour and weekday: an IANA zone, or an attribute that "
        "holds zones (a city, a lookup of its timezone, a choice of zone names).",
    )
    rate: RateSettings = RateSettings()
    time_field: str = "timestamp"
    time_format: Literal["iso", "epoch_ms", "epoch_s"] = Field(
        "iso",
        description="How JSON writes the time: ISO 8601 UTC with ms, or epoch ms or "
        "seconds (Parquet and CSV keep a typed timestamp).",
    )
    key: str | None = Field(
        None,
        description="The field that keys each record (the Kafka message key, the Kinesis "
        "partition key: what keeps order): the entity's id unless set.",
    )
    table: TableSpec | None = Field(
        None, description="Read the entities as a table: the records become changes of its "
        "rows (before, after, op), a snapshot of every row opening the run.",
    )  # fmt: skip
    sinks: list[str] = Field(default_factory=lambda: ["stdout"])
    destinations: dict[str, str] = Field(
        default_factory=dict,
        description="Where the stream goes on each sink kind, a template over {stream} and "
        "{channel}: {kafka: clicks, http: /api/clicks}. The sink's own settings win; unset: "
        "the sink's default (the stream's name).",
    )
    faults: FaultSettings = FaultSettings()
    # Resolved when the file is read: each referenced stream's (id format, entity count), and
    # the streams themselves (their attributes, for lookups).
    _references: dict[str, tuple[str, int]] = PrivateAttr(default_factory=dict)
    _targets: dict[str, StreamSpec] = PrivateAttr(default_factory=dict)

    @property
    def targets(self) -> dict[str, StreamSpec]:
        return self._targets

    @property
    def references(self) -> dict[str, tuple[str, int]]:
        return self._references

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = {"kafka_topic": "kafka", "http_path": "http", "kinesis_stream": "kinesis"}
        if isinstance(data, dict):
            for old, sink in moved.items():
                if old in data:
                    raise ValueError(f"{old} moved: say destinations: {{{sink}: "
                                     f"{data[old]}}}")  # fmt: skip
        return data

    @field_validator("sinks")
    @classmethod
    def _sinks(cls, value: list[str]) -> list[str]:
        return registered(value, sink_kinds(), "sink")

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: dict[str, str]) -> dict[str, str]:
        for sink, template in value.items():
            registered([sink], sink_kinds(), "sink")
            check_template(template)
        return value

    @model_validator(mode="after")
    def _names(self) -> Self:
        attributes, fields = self.entities.attributes, self.fields
        for name in [*attributes, *fields, *self.episodes]:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a name: lower case letters, digits and _")
        for name, spec in fields.items():
            target = fields.get(spec.prev or "")
            if spec.prev is not None and (target is None or target.prev is not None):
                known = ", ".join(n for n, f in fields.items() if f.prev is None)
                raise ValueError(f"{name}: prev {spec.prev!r} is not a field it can follow; "
                                 f"accepted: {known}")  # fmt: skip
        machines = [name for name, spec in attributes.items() if spec.kind in PER_RECORD]
        if machines:
            raise ValueError(f"attribute {machines[0]!r} is a {attributes[machines[0]].kind}: "
                             "that is a field (it changes from record to record); accepted: "
                             "it under fields")  # fmt: skip
        # A lookup of a referenced entity's attribute (resolved when the file is read): per
        # record when its ref is a field.
        refs = {n for n, v in {**attributes, **fields}.items() if v.ref is not None}
        remote = {n for n, v in {**attributes, **fields}.items()
                  if v.lookup is not None and v.lookup.partition(".")[0] in refs}  # fmt: skip
        once = [name for name, spec in fields.items()
                if spec.kind in PER_ENTITY and name not in remote]  # fmt: skip
        if once:
            raise ValueError(f"field {once[0]!r} is a {fields[once[0]].kind}: that is an "
                             "attribute (drawn once per entity); accepted: it under "
                             "entities.attributes")  # fmt: skip
        cities = [name for name, spec in attributes.items() if spec.city is not None]
        for name, spec in attributes.items():
            if spec.lookup is None or name in remote:
                continue
            city, _, column = spec.lookup.partition(".")
            if city not in cities or column not in CITY_COLUMNS:
                shown = ", ".join(f"{c}.{col}" for c in cities[:1] or ["<city attribute>"]
                                  for col in CITY_COLUMNS)  # fmt: skip
                raise ValueError(f"{name}: lookup {spec.lookup!r} is not a city attribute's "
                                 f"column; accepted: {shown}")  # fmt: skip
        zone_of(self)  # local_time names a zone, or an attribute that holds zones
        written = [n for n in [*attributes, *fields] if not n.startswith("_")]
        if self.key is not None and self.key not in [self.entities.id_field, *written]:
            raise ValueError(f"key {self.key!r} is not a field of the record; accepted: "
                             f"{', '.join([self.entities.id_field, *written])}")  # fmt: skip
        if self.table is not None and self.table.key is not None:
            record = [self.entities.id_field, self.time_field, *written]
            for column in self.table.key:
                if column not in record:
                    raise ValueError(f"table.key {column!r} is not a field of the record; "
                                     f"accepted: {', '.join(record)}")  # fmt: skip
        counts = [n for n, f in fields.items() if f.count is not None]
        for name, spec in {**attributes, **fields}.items():
            if spec.per is not None and (name in attributes or spec.per not in counts):
                raise ValueError(f"{name}: per {spec.per!r} is not a count field; accepted: "
                                 f"{', '.join(counts) or '(no count field)'}")  # fmt: skip
        for name, spec in fields.items():
            if spec.count is None:
                continue
            target = fields.get(spec.count.of)
            if target is None or target.machine is None:
                known = ", ".join(n for n, f in fields.items() if f.machine is not None)
                raise ValueError(f"{name}: count.of {spec.count.of!r} is not a machine field; "
                                 f"accepted: {known or '(no machine field)'}")  # fmt: skip
            if spec.count.enters not in target.machine.states:
                raise ValueError(f"{name}: count.enters {spec.count.enters!r} is not a state of "
                                 f"{spec.count.of}; accepted: "
                                 f"{', '.join(target.machine.states)}")  # fmt: skip
        both = set(attributes) & set(fields) | set(self.episodes) & (set(attributes)
                                                                      | set(fields))  # fmt: skip
        if both:
            raise ValueError(f"{sorted(both)} are named twice (attributes, fields, episodes); "
                             "accepted: each name once")  # fmt: skip
        fixed = {self.entities.id_field, self.time_field, "message_id", "is_duplicate"}
        taken = fixed & (set(attributes) | set(fields))
        if taken:
            raise ValueError(f"{sorted(taken)} are the record's own fields; rename them")
        times = set(TIME_NAMES) & (set(attributes) | set(fields) | set(self.episodes))
        if times:
            raise ValueError(f"{sorted(times)} are what expressions read of the record's time; "
                             f"accepted: names other than {', '.join(TIME_NAMES)}")  # fmt: skip
        return self

    def readable(self) -> set[str]:
        """What an expression may read: numeric attributes and fields, and the time."""
        values = {**self.entities.attributes, **self.fields}
        numeric = {name for name, spec in values.items() if spec.numeric}
        return numeric | set(self.episodes) | set(TIME_NAMES)

    def categories(self) -> dict[str, list[str]]:  # (words: a choice, a state, a city)
        """What an expression may compare with words: categorical attributes and fields."""
        values = {**self.entities.attributes, **self.fields}
        return {name: words for name, spec in values.items() if (words := spec.words)}


State.model_rebuild()


def city_values(column: str) -> list[str]:
    """A word column of the bundled cities, one value per city in file order."""
    from producer.geography import load_cities

    cities = load_cities()
    columns: dict[str, Any] = {
        "name": cities.name, "country": cities.country, "country_code": cities.country_code,
        "timezone": cities.timezone,
    }  # fmt: skip
    return [str(value) for value in columns[column]]


def city_words(column: str) -> list[str]:
    """The distinct values of a word column of the cities (a lookup's words), in file order."""
    return list(dict.fromkeys(city_values(column)))


def zone_of(stream: StreamSpec) -> tuple[str, str | None]:
    """``local_time`` as (zone, None) for one zone, or (attribute, how it holds zones:
    city, lookup or choice); a ``ValueError`` naming what is accepted otherwise."""
    name = stream.local_time
    spec = stream.entities.attributes.get(name)
    accepted = ("accepted: an IANA zone such as Europe/Berlin, or an attribute that is a city, "
                "a lookup of a city's timezone or a choice of zone names")  # fmt: skip
    if spec is None:
        if not valid_zone(name):
            raise ValueError(f"local_time {name!r} is not a time zone; {accepted}")
        return name, None
    if spec.city is not None:
        return name, "city"
    if spec.lookup is not None and spec.lookup.endswith(".timezone"):
        return name, "lookup"
    if spec.choice is not None and all(valid_zone(z) for z in spec.choice):
        return name, "choice"
    raise ValueError(f"local_time {name!r} is an attribute that does not hold zones; {accepted}")


def valid_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_faker(provider: str, locale: str | None) -> None:
    """A Faker provider (and locale) that gives a value with no arguments, or ValueError."""
    from faker import Faker

    accepted = (
        "accepted: a Faker provider that takes no arguments (name, email, company, "
        "street_address, city, phone_number, user_name, ...) and a locale such as de_DE"
    )
    if not NAME.match(provider) or provider.startswith("_") or provider in _NOT_PROVIDERS:
        raise ValueError(f"faker {provider!r} is not a provider; {accepted}")
    try:
        fake = Faker(locale or "en_US")
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"locale {locale!r} is not one of Faker's ({exc}); {accepted}") from None
    method = getattr(fake, provider, None)
    if method is None or not any(hasattr(p, provider) for p in fake.get_providers()):
        raise ValueError(f"faker {provider!r} is not a provider; {accepted}")
    try:
        method()
    except TypeError as exc:
        raise ValueError(f"faker {provider!r} needs arguments ({exc}); {accepted}") from None


class SpecFile(Model):
    streams: dict[str, StreamSpec] = Field(min_length=1)

    @field_validator("streams")
    @classmethod
    def _stream_names(cls, value: dict[str, StreamSpec]) -> dict[str, StreamSpec]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a stream name: lower case letters, digits, _")
        return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) of the format, for editors' completion and checks: the
    models' own, where a value may also be written as an expression or a number."""
    schema = SpecFile.model_json_schema()
    defs = schema["$defs"]
    defs["ValueObject"] = defs.pop("ValueSpec")
    text = json.dumps(schema).replace('"#/$defs/ValueSpec"', '"#/$defs/Value"')
    schema = json.loads(text)
    schema["$defs"]["Value"] = {"anyOf": [
        {"$ref": "#/$defs/ValueObject"},
        {"type": "string", "description": "An expression (see the format reference)."},
        {"type": "number"},
    ]}  # fmt: skip
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "synthstream spec file"}  # fmt: skip


def template_names(template: str) -> list[str]:
    """The names a template reads, in order, or ValueError: names only (no attribute, item or
    conversion), format specs without braces."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}; accepted: {TEMPLATE_ACCEPTED}") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not NAME.match(name) or conversion is not None or "{" in (spec or ""):
            raise ValueError(
                f"template {template!r}: {{{name}{'!' + conversion if conversion else ''}"
                f"}} is not a name with a format; accepted: {TEMPLATE_ACCEPTED}"
            )
        names.append(name)
    return names


def value_type(spec: ValueSpec, boolean: bool) -> str:
    """What a value is before any ``format``: text, int, bool or float (``boolean``: its
    expression is a comparison)."""
    if spec.follows is not None:
        return value_type(spec.follows, boolean)
    if spec.type is not None:
        return spec.type
    if spec.words is not None or spec.kind in ("ref", "faker", "template"):
        return "text"
    if spec.kind in ("sequence", "count", "poisson") or spec.round == 0:
        return "int"
    if boolean and spec.walk is None:
        return "bool"
    return "float"
