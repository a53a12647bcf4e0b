"""Stream kinds and sink kinds: one registry, fed by Python entry points.

A kind is its settings model (``producer.settings.StreamSettings`` or ``SinkSettings``): a
``KIND`` name, a one-line ``DESCRIPTION`` and a ``build``. Packages register kinds in the
entry point groups ``synthstream.streams`` and ``synthstream.sinks``; synthstream's own
kinds are registered there the same way (``pyproject.toml``). Settings loading, the CLI's
help and validation messages, ``.env.example`` and ``synthstream list`` all read this
registry, so a new kind is one class and one entry point (see ``examples/plugin/``).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import Field, field_validator, model_validator

from producer.clock import Clock, WallClock
from producer.episodes import EpisodeKind, Episodes
from producer.errors import ConfigError
from producer.faults.base import Stage
from producer.generators import Generator, Source, sensor_source
from producer.metrics import Metrics
from producer.rates import Pace
from producer.records import Schema
from producer.rng import I64, U64
from producer.settings import ENV_PREFIX, CommaList, FaultSettings, Model, RateSettings, Shard
from producer.sink import Sink

STREAM_GROUP = "synthstream.streams"
SINK_GROUP = "synthstream.sinks"
# What pyproject.toml registers, for a source tree used without being installed.
BUILT_IN_STREAMS = {
    "bme280": "producer.domains.bme280.kind:Bme280Settings",
    "air_quality": "producer.domains.air_quality.kind:AirQualitySettings",
    "ecommerce": "producer.domains.ecommerce.kind:EcommerceSettings",
    "incidents": "producer.domains.incidents.kind:IncidentsSettings",
}
BUILT_IN_SINKS = {
    "stdout": "sinks.stdout:StdoutSinkSettings",
    "file": "sinks.file:FileSinkSettings",
    "http": "sinks.http:HttpSinkSettings",
    "kafka": "sinks.kafka:KafkaSinkSettings",
    "kinesis": "sinks.kinesis:KinesisSinkSettings",
    "postgres": "sinks.postgres:PostgresSinkSettings",
    "s3": "sinks.s3:S3SinkSettings",
    "null": "sinks.null:NullSinkSettings",
}


# --------------------------------------------------------------------------- the kinds


class StreamSettings(Model):
    """What every stream has: the sinks it goes to, a rate model, faults.

    A stream kind is its settings model: a subclass names its ``KIND`` (its settings live
    under ``SYNTHSTREAM_<KIND>__``), says what it is in ``DESCRIPTION`` and ``build``s its
    source. It is found through the entry point group ``synthstream.streams``.
    """

    KIND: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""

    sinks: CommaList = Field(["stdout"], description="Sinks this stream goes to.")
    faults: FaultSettings = FaultSettings()

    # Record types of a stream with several (each its own {channel} in the sinks' addresses).
    CHANNELS: ClassVar[tuple[str, ...]] = ()
    # Where the stream's records go by default, per sink kind: a template over {stream} and
    # {channel} (``destination`` below). Only a default: the sink's own settings win.
    DESTINATIONS: ClassVar[dict[str, str]] = {}

    def channels(self, stream: str) -> tuple[str, ...]:
        return self.CHANNELS or (stream,)

    def destination(self, sink: str, channel: str) -> str | None:
        """The stream's default address template for ``channel`` on the ``sink`` kind (a
        topic, a Kinesis stream, a path), or None: the sink's own default."""
        return self.DESTINATIONS.get(sink)

    @field_validator("sinks")
    @classmethod
    def _known_sinks(cls, value: list[str]) -> list[str]:
        return registered(value, sink_kinds(), "sink")

    @property
    def entities(self) -> int:
        raise NotImplementedError

    def build(self, context: StreamContext) -> Source:
        """This stream's source for this process (its shard of the entities)."""
        raise NotImplementedError

    # Whether the stream's traffic follows its ``StreamContext.pace`` (live control's rate
    # multiplier, scenario and pause): a kind whose rate models take the pace says so.
    PACED: ClassVar[bool] = False

    def rate_scenario(self) -> str:
        """The run-wide scenario (``timeline.SCENARIO_FACTORS``) the stream's rate has now."""
        return "normal"

    def episode_kinds(self) -> dict[str, EpisodeKind]:
        """The domain's own episodes that live control can start (an outage is every
        stream's)."""
        return {}

    def fault_stages(self, key: int, schema: Schema) -> list[Stage]:
        """The domain's own fault stages for one channel, next to the built-in ones
        (``Stage.order`` places them); ``key`` is the channel's fault key."""
        return []

    @classmethod
    def options(cls) -> list[Option]:
        """Flags the kind adds to ``synthstream run`` (a preset such as ``--dataset``)."""
        return []

    @classmethod
    def commands(cls) -> list[Command]:
        """Subcommands the kind adds to ``synthstream``."""
        return []


class SensorStreamSettings(StreamSettings):
    """A stream of entities due on a rate model: each on an interval, or a total rate. A kind
    of this shape only makes its ``generator``; the rate model and sharding are shared."""

    rate: RateSettings = RateSettings()
    PACED: ClassVar[bool] = True  # its rate model takes the context's pace

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        raise NotImplementedError

    def rate_scenario(self) -> str:
        return self.rate.scenario if self.rate.total_per_s is not None else "normal"

    def build(self, context: StreamContext) -> Source:
        return sensor_source(context.name, self.entities, self.rate, context.seed,
                             context.shard, self.generator, context.pace)  # fmt: skip


class SinkSettings(Model):
    """A sink kind is its settings model: ``KIND`` (settings under
    ``SYNTHSTREAM_SINKS__<KIND>__``), ``DESCRIPTION``, ``NETWORK`` (probed at start, retried
    when unreachable) and ``build``. It is found through the entry point group
    ``synthstream.sinks``. A sink that sends each channel somewhere of its own (a topic, a
    table) subclasses ``AddressedSinkSettings``."""

    KIND: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    NETWORK: ClassVar[bool] = False

    def address(self, stream: str, channel: str, suggested: str | None = None) -> str:
        """Where ``channel`` (of ``stream``) goes: its name, for a sink without addresses."""
        return channel

    def build(self, context: SinkContext) -> Sink:
        raise NotImplementedError

    @classmethod
    def options(cls) -> list[Option]:
        """Flags the kind adds to ``synthstream run``, ``check`` and ``config``."""
        return []


TEMPLATE_ACCEPTED = "accepted: text with {stream} and {channel}, e.g. 'prod.{channel}'"


def fill(template: str, stream: str, channel: str) -> str:
    """``{stream}`` and ``{channel}`` of an address template, filled in."""
    return template.replace("{stream}", stream).replace("{channel}", channel)


def check_template(template: str) -> str:
    """``template`` if its only placeholders are ``{stream}`` and ``{channel}``."""
    rest = template.replace("{stream}", "").replace("{channel}", "")
    if "{" in rest or "}" in rest or not template.strip():
        raise ValueError(f"{template!r} is not an address template; {TEMPLATE_ACCEPTED}")
    return template


class AddressedSinkSettings(SinkSettings):
    """A sink kind whose channels each go somewhere of their own: a Kafka topic, a Kinesis
    stream, an HTTP path, a table. The address of a channel is, first found:
    its entry in the kind's per-channel settings (``OVERRIDES`` names that field, a JSON
    object of channel or stream names to templates), the kind's ``destination`` template if
    it was set, the stream's own default (``StreamSettings.DESTINATIONS``), and the kind's
    ``destination`` default. Templates fill in ``{stream}`` and ``{channel}``."""

    OVERRIDES: ClassVar[str] = "destinations"
    # The stream setting these addresses replaced (``kafka_topic``): setting it says where
    # the address is set now.
    REPLACES: ClassVar[str | None] = None

    destination: str = Field(
        "{channel}", description="Where each channel goes: a template over {stream} and "
        "{channel} (a stream's own default name comes before this default).",
    )  # fmt: skip

    @field_validator("destination")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _overrides(self) -> Self:
        for template in self.overrides().values():
            check_template(template)
        return self

    def overrides(self) -> dict[str, str]:
        """The per-channel (or per-stream) templates: the field ``OVERRIDES`` names."""
        found: dict[str, str] = getattr(self, self.OVERRIDES)
        return found

    def address(self, stream: str, channel: str, suggested: str | None = None) -> str:
        overrides = self.overrides()
        template = overrides.get(channel) or overrides.get(stream)
        if template is None:
            own = suggested is None or "destination" in self.model_fields_set
            template = self.destination if own else suggested
        assert template is not None
        return fill(template, stream, channel)


K = TypeVar("K", StreamSettings, SinkSettings)


# --------------------------------------------------------------------------- the CLI's share


@dataclass(frozen=True)
class Option:
    """A flag a kind adds to ``synthstream run``, ``check`` and ``config``: its value goes
    into the settings by ``apply(value, tree, flags)`` (``tree``: the settings as a nested
    dict, ``flags``: each dotted setting's flag, for error lines)."""

    flag: str
    help: str
    apply: Callable[[str, dict[str, Any], dict[str, str]], None]
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Invocation:
    """What a kind's command gets: its arguments, the settings its common flags make
    (``--profile``, ``--seed``, ``--log-format``: a tree and each setting's flag, for
    ``producer.api.load_settings``) and the clock (the one place it learns the time)."""

    args: argparse.Namespace
    overrides: dict[str, Any]
    flags: dict[str, str]
    clock: Clock


@dataclass(frozen=True)
class Command:
    """A subcommand a kind adds to ``synthstream`` (the incidents tables, the shop's
    catalog): ``arguments`` adds its flags, ``run`` does it and returns the exit status."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Invocation], int]
    examples: str = ""


@dataclass(frozen=True)
class StreamContext:
    """What a stream kind's ``build`` gets besides its own settings."""

    name: str
    seed: int
    shard: Shard
    window: tuple[int, int] | None  # a backfill's [start, end) in ms, if it has an end
    # The stream's rate multiplier as live control sets it (producer.control): the rate
    # models that make its traffic schedule by it.
    pace: Pace = field(default_factory=Pace)
    episodes: Episodes = field(default_factory=lambda: Episodes({}))  # started by control
    # The event time the run starts at (a backfill's start, a live run's now): what values
    # drawn once, "as of" a time, are drawn as of (a Faker date attribute).
    origin_ms: int | None = None


@dataclass(frozen=True)
class SinkContext:
    """What a sink kind's ``build`` gets besides its own settings."""

    destinations: dict[str, str]  # each channel's address (SinkSettings.address)
    suffix: str  # for file names: "" or "-shard<i>of<n>"
    out: Path  # the run's folder (SYNTHSTREAM_OUT): a sink's that writes files, by default
    metrics: Metrics | None
    clock: Clock = field(default_factory=WallClock)  # "now", for a sink that needs it


def _load(group: str, base: type[K], built_in: dict[str, str]) -> dict[str, type[K]]:
    found = {ep.name: ep for ep in metadata.entry_points(group=group)}
    if not found:  # not installed (a bare source tree): the kinds pyproject.toml registers
        found = {name: metadata.EntryPoint(name, value, group) for name, value in built_in.items()}
    kinds: dict[str, type[K]] = {}
    order = [n for n in built_in if n in found] + sorted(n for n in found if n not in built_in)
    for name in order:
        try:
            kind = found[name].load()
        except Exception as exc:  # a broken plugin: say which, and go no further
            raise ConfigError(f"{group} entry point {name!r} does not load: {exc}") from None
        if not (isinstance(kind, type) and issubclass(kind, base)):
            raise ConfigError(
                f"{group} entry point {name!r} is not a {base.__name__} subclass: {kind!r}"
            )
        if name != kind.KIND:
            raise ConfigError(f"{group} entry point {name!r} names a kind {kind.KIND!r}")
        kinds[name] = kind
    return kinds


@functools.cache
def stream_kinds() -> dict[str, type[StreamSettings]]:
    """Every registered stream kind by name, synthstream's own first."""
    return _load(STREAM_GROUP, StreamSettings, BUILT_IN_STREAMS)


@functools.cache
def sink_kinds() -> dict[str, type[SinkSettings]]:
    """Every registered sink kind by name, synthstream's own first."""
    return _load(SINK_GROUP, SinkSettings, BUILT_IN_SINKS)


def registered(names: list[str], kinds: dict[str, type[K]], what: str) -> list[str]:
    """``names`` if each is a registered kind and there is one at least; else the error a
    setting shows, with what is accepted."""
    known = ", ".join(kinds)
    for name in names:
        if name not in kinds:
            raise ValueError(f"unknown {what} {name!r}; accepted: {known}")
    if not names:
        raise ValueError(f"needs at least one {what}; accepted: {known}")
    return names


def catalogue() -> dict[str, list[dict[str, str]]]:
    """What ``synthstream list`` prints: each kind, what it is and its settings' prefix."""
    return {
        "streams": [
            {"name": name, "description": kind.DESCRIPTION,
             "settings": f"{ENV_PREFIX}{name.upper()}__"}
            for name, kind in stream_kinds().items()
        ],
        "sinks": [
            {"name": name, "description": kind.DESCRIPTION,
             "settings": f"{ENV_PREFIX}SINKS__{name.upper()}__"}
            for name, kind in sink_kinds().items()
        ],
    }  # fmt: skip
