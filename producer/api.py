"""What a plugin imports: the one public face of synthstream's contracts.

A stream kind is a settings model (``StreamSettings``, or ``SensorStreamSettings`` for
entities on an interval or a total rate) whose ``build`` gives a ``Source`` (or whose
``generator`` gives a ``Generator``) of ``RecordBatch``es described by a ``Schema``. A sink
kind is a settings model (``SinkSettings``, or ``AddressedSinkSettings`` when each channel
goes somewhere of its own) whose ``build`` gives a ``Sink``: ``BaseSink`` holds the defaults
of the contract (``producer.sink``). Both are registered by an entry point
(``synthstream.streams``, ``synthstream.sinks``); a kind may add flags (``Option``) and
commands (``Command``) to the CLI. Everything here is kept stable; the modules behind it
may move.
"""

from __future__ import annotations

from producer import rng
from producer.clock import Clock
from producer.config import Settings, load_settings
from producer.encoding import encode_jsonl, json_documents, record_keys
from producer.episodes import EpisodeKind, Episodes
from producer.errors import ConfigError
from producer.faults.base import Stage
from producer.generators import Generator, Source, rank_within_entity
from producer.plugins import (
    AddressedSinkSettings,
    Command,
    Invocation,
    Option,
    SensorStreamSettings,
    SinkContext,
    SinkSettings,
    StreamContext,
    StreamSettings,
)
from producer.rates import Due, Pace
from producer.records import Kinds, RecordBatch, Schema, timestamp_array, uuid_array
from producer.rng import F64, I64, U64
from producer.settings import FaultSettings, RateSettings
from producer.sink import (
    BaseSink,
    FatalError,
    Interrupted,
    PartialFailure,
    Payload,
    ReaderGone,
    RetryableError,
    Sink,
    SinkError,
    SinkLimits,
    finish_in_thread,
)

__all__ = [
    "F64", "I64", "U64", "AddressedSinkSettings", "BaseSink", "Clock", "Command",
    "ConfigError", "Due", "EpisodeKind", "Episodes", "FatalError", "FaultSettings",
    "Generator", "Interrupted", "Invocation", "Kinds", "Option", "Pace", "PartialFailure",
    "Payload", "RateSettings", "ReaderGone", "RecordBatch", "RetryableError", "Schema",
    "SensorStreamSettings", "Settings", "Sink", "SinkContext", "SinkError", "SinkLimits",
    "SinkSettings", "Source", "Stage", "StreamContext", "StreamSettings", "encode_jsonl",
    "finish_in_thread", "json_documents", "load_settings", "rank_within_entity",
    "record_keys", "rng", "timestamp_array", "uuid_array",
]  # fmt: skip
