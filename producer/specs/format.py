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

import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from producer.errors import ConfigError
from producer.settings import FaultSettings, Model, RateSettings
from producer.specs.expressions import ExpressionError, compile_expression, field_order

if TYPE_CHECKING:
    import yaml

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# The names an expression may read besides the stream's own: the record's time.
TIME_NAMES = ("hour", "weekday")
DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exponential")
KINDS = ("expr", *DISTRIBUTIONS, "choice", "sequence", "walk", "ref")


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


class ValueSpec(Model):
    """How one attribute or field gets its values: exactly one kind, then options."""

    expr: str | None = Field(None, description="An expression over other fields.")
    uniform: tuple[float, float] | None = None
    normal: tuple[float, float] | None = None
    lognormal: tuple[float, float] | None = None
    exponential: float | None = Field(None, gt=0)
    choice: dict[str, float] | None = Field(None, description="Values and their weights.")
    sequence: Sequence | None = None
    walk: Walk | None = None
    ref: str | None = Field(
        None, description="The id of an entity of another stream of the file (a foreign key)."
    )
    round: int | None = Field(None, ge=0, le=12, description="Decimals to keep.")
    nulls: float = Field(0.0, ge=0, le=1, description="Share of records where it is null.")
    range: tuple[float, float] | None = Field(
        None, description="Plausible bounds (what faults clip anomalies to)."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"expr": value}
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"expr": repr(float(value))}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {given or 'none'})")
        if self.choice is not None and (not self.choice or min(self.choice.values()) < 0
                                        or sum(self.choice.values()) <= 0):  # fmt: skip
            raise ValueError("choice needs values with non-negative weights, not all 0")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def numeric(self) -> bool:
        if self.ref is not None:
            return False
        return self.choice is None or all(_is_number(v) for v in self.choice)


class Entities(Model):
    count: int = Field(ge=1, le=10_000_000, description="How many entities the stream has.")
    id: str = Field("{stream}-{index:06d}", description="Format of an entity's id.")
    id_field: str = Field("id", description="The JSON field holding the entity's id.")
    attributes: dict[str, ValueSpec] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _format(cls, value: str) -> str:
        try:
            value.format(stream="s", index=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"not a format with {{stream}} and {{index}} ({exc}); e.g. 'sensor-{{index:04d}}'"
            ) from None
        return value


class StreamSpec(Model):
    """One declared stream: its entities, fields, rate, and where it goes."""

    description: str = ""
    entities: Entities
    fields: dict[str, ValueSpec]
    rate: RateSettings = RateSettings()
    time_field: str = "timestamp"
    sinks: list[str] = Field(default_factory=lambda: ["stdout"])
    faults: FaultSettings = FaultSettings()
    http_path: str | None = None
    kafka_topic: str | None = None
    kinesis_stream: str | None = None
    # Resolved when the file is read: each referenced stream's (id format, entity count).
    _references: dict[str, tuple[str, int]] = PrivateAttr(default_factory=dict)

    @property
    def references(self) -> dict[str, tuple[str, int]]:
        return self._references

    @model_validator(mode="after")
    def _names(self) -> Self:
        attributes, fields = self.entities.attributes, self.fields
        for name in [*attributes, *fields]:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a name: lower case letters, digits and _")
        both = set(attributes) & set(fields)
        if both:
            raise ValueError(f"{sorted(both)} are both attributes and fields")
        fixed = {self.entities.id_field, self.time_field, "message_id", "is_duplicate"}
        taken = fixed & (set(attributes) | set(fields))
        if taken:
            raise ValueError(f"{sorted(taken)} are the record's own fields; rename them")
        return self

    def readable(self) -> set[str]:
        """What an expression may read: numeric attributes and fields, and the time."""
        values = {**self.entities.attributes, **self.fields}
        return {name for name, spec in values.items() if spec.numeric} | set(TIME_NAMES)


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


# --------------------------------------------------------------------------- loading


def load_spec(path: Path) -> SpecFile:
    """Read and check a spec file, or ``ConfigError``: ``FILE:LINE:COL: what; accepted``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the spec ({exc.strerror or exc})") from None
    import yaml  # only when a spec is read: start-up stays lean

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ConfigError(f"{where}: {problem}; accepted: a YAML mapping with 'streams'") from None
    if node is None:
        raise ConfigError(f"{path}:1:1: the file is empty; accepted: a mapping with 'streams'")
    marks: Marks = {}
    data = _plain(node, (), marks)
    try:
        spec = SpecFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_located(path, exc, marks)) from None
    for name, stream in spec.streams.items():
        _check_expressions(path, name, stream, marks)
        _resolve_references(path, name, spec, marks)
    return spec


def _resolve_references(path: Path, name: str, spec: SpecFile, marks: Marks) -> None:
    """Every ``ref`` names a stream of the file; the stream learns each target's id format
    and entity count (so an id it writes always exists there)."""
    stream = spec.streams[name]
    places = {("entities", "attributes"): stream.entities.attributes, ("fields",): stream.fields}
    for prefix, values in places.items():
        for field, value in values.items():
            if value.ref is None:
                continue
            target = spec.streams.get(value.ref)
            if target is None:
                line, col = marks.get(("streams", name, *prefix, field, "ref"), (1, 1))
                known = ", ".join(spec.streams)
                raise ConfigError(f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}."
                                  f"{field}.ref: no stream {value.ref!r} in the file; "
                                  f"accepted: {known}")  # fmt: skip
            stream.references[value.ref] = (target.entities.id, target.entities.count)


Marks = dict[tuple[Any, ...], tuple[int, int]]  # a value's path -> (line, column)


def _plain(node: yaml.Node, path: tuple[Any, ...], marks: Marks) -> Any:
    """The data of a YAML node, with the line and column of every value by its path."""
    import yaml

    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)
            marks[(*path, key, "<key>")] = (key_node.start_mark.line + 1,
                                            key_node.start_mark.column + 1)  # fmt: skip
            out[key] = _plain(value_node, (*path, key), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), marks) for i, item in enumerate(node.value)]
    return yaml.SafeLoader(" ").construct_object(node)


def _located(path: Path, exc: ValidationError, marks: Marks) -> str:
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    dotted = ".".join(str(p) for p in loc) or "(top)"
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        where = marks.get((*loc, "<key>")) or _nearest(loc, marks)
        parent = _model_at(loc[:-1])
        accepted = ", ".join(parent) if parent else "see the format reference"
        return f"{path}:{where[0]}:{where[1]}: unknown key {loc[-1]!r}; accepted: {accepted}"
    where = _nearest(loc, marks)
    if kind == "missing":
        return f"{path}:{where[0]}:{where[1]}: {dotted} is missing; accepted: " + (
            ", ".join(_model_at(loc[:-1])) or "see the format reference"
        )
    if "; accepted: " not in message:
        message += f"; accepted: {_accepted(error)}"
    return f"{path}:{where[0]}:{where[1]}: {dotted}: {message}"


def _nearest(loc: tuple[Any, ...], marks: Marks) -> tuple[int, int]:
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return (1, 1)


def _accepted(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    for bound, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if bound in ctx:
            return f"a number {symbol} {ctx[bound]}"
    return str(error["type"]).replace("_", " ")


def _model_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (for "unknown key" errors)."""
    model: Any = SpecFile
    parts = list(loc)
    while parts:
        fields = getattr(model, "model_fields", None)
        if fields is None or parts[0] not in fields:
            return []
        annotation = fields[parts.pop(0)].annotation
        if typing.get_origin(annotation) is dict:  # a dict of models: skip the key
            annotation = typing.get_args(annotation)[1]
            if parts:
                parts.pop(0)
        model = annotation
    return list(getattr(model, "model_fields", {}))


def _check_expressions(path: Path, name: str, stream: StreamSpec, marks: Marks) -> None:
    """Every expression compiles against the names it may read, without a cycle."""
    readable = stream.readable()
    compiled = {}
    places = [("entities", "attributes"), ("fields",)]
    values = [stream.entities.attributes, stream.fields]
    for prefix, specs in zip(places, values, strict=True):
        for field, spec in specs.items():
            starts = spec.walk.start if spec.walk and isinstance(spec.walk.start, str) else None
            text = spec.expr or starts
            if text is None:
                continue
            if prefix == ("entities", "attributes") or starts is not None:
                # Attributes, and where a walk starts, are per entity: they read attributes.
                allowed = {a for a, s in stream.entities.attributes.items() if s.numeric}
            else:
                allowed = readable
            try:
                compiled[field] = compile_expression(text, allowed - {field})
            except ExpressionError as exc:
                line, col = marks.get(("streams", name, *prefix, field), (1, 1))
                inner = str(exc)
                raise ConfigError(f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}."
                                  f"{field}: {inner}") from None  # fmt: skip
    try:
        field_order({field: expression.names for field, expression in compiled.items()})
    except ExpressionError as exc:
        line, col = marks.get(("streams", name), (1, 1))
        raise ConfigError(f"{path}:{line}:{col}: streams.{name}: {exc}") from None
