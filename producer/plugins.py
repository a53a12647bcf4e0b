"""Stream kinds and sink kinds: one registry, fed by Python entry points.

A kind is its settings model (``producer.settings.StreamSettings`` or ``SinkSettings``): a
``KIND`` name, a one-line ``DESCRIPTION`` and a ``build``. Packages register kinds in the
entry point groups ``synthstream.streams`` and ``synthstream.sinks``; synthstream's own
kinds are registered there the same way (``pyproject.toml``). Settings loading, the CLI's
help and validation messages, ``.env.example`` and ``synthstream list`` all read this
registry, so a new kind is one class and one entry point (see ``examples/plugin/``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar

from producer.errors import ConfigError
from producer.settings import ENV_PREFIX, Shard, SinkSettings, StreamSettings

if TYPE_CHECKING:
    from producer.metrics import Metrics

STREAM_GROUP = "synthstream.streams"
SINK_GROUP = "synthstream.sinks"
# What pyproject.toml registers, for a source tree used without being installed.
BUILT_IN_STREAMS = {
    "bme280": "producer.domains.bme280.settings:Bme280Settings",
    "air_quality": "producer.domains.air_quality.settings:AirQualitySettings",
    "ecommerce": "producer.domains.ecommerce.settings:EcommerceSettings",
    "incidents": "producer.domains.incidents.settings:IncidentsSettings",
}
BUILT_IN_SINKS = {
    "stdout": "sinks.settings:StdoutSinkSettings",
    "file": "sinks.settings:FileSinkSettings",
    "http": "sinks.settings:HttpSinkSettings",
    "kafka": "sinks.settings:KafkaSinkSettings",
    "kinesis": "sinks.settings:KinesisSinkSettings",
    "null": "sinks.settings:NullSinkSettings",
}

K = TypeVar("K", StreamSettings, SinkSettings)


@dataclass(frozen=True)
class StreamContext:
    """What a stream kind's ``build`` gets besides its own settings."""

    name: str
    seed: int
    shard: Shard
    window: tuple[int, int] | None  # a backfill's [start, end) in ms, if it has an end


@dataclass(frozen=True)
class SinkContext:
    """What a sink kind's ``build`` gets besides its own settings."""

    destinations: dict[str, str]  # each channel's topic, stream or path (its DESTINATION)
    suffix: str  # for file names: "" or "-shard<i>of<n>"
    metrics: Metrics | None


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
