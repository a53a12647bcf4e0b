"""Settings: one pydantic-settings model, validated once at start.

Precedence, highest first: command-line flags, real environment variables, ``.env`` in the
working directory, the profile file ``profiles/<name>.env``, the defaults below. Every field
is an environment variable ``SYNTHSTREAM_<FIELD>``, nested fields joined by ``__``
(``SYNTHSTREAM_BME280__DEVICES``). List fields accept a comma list (``stdout,file``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from producer.errors import ConfigError

if TYPE_CHECKING:
    from producer.generators import Generator, Source
    from producer.plugins import SinkContext, StreamContext
    from producer.rng import I64, U64
    from sinks.base import Sink
    from sinks.settings import FileSinkSettings

ENV_PREFIX = "SYNTHSTREAM_"
PACKAGE_DIR = Path(__file__).resolve().parent


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# Lists from the environment or flags as commas ("stdout,file"); JSON lists work too.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]
NumberList = Annotated[list[float], NoDecode, BeforeValidator(_comma_list)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


ANOMALY_KINDS = ("spike", "stuck", "drift", "dropout", "step")
MALFORMED_KINDS = ("wrong_type", "missing_field", "out_of_range", "truncated_json", "schema_change")
QUALITY_KINDS = ("missing_optional", "date_format", "name_variant", "outlier")


class FaultSettings(Model):
    """Faults injected between a stream's generator and its sinks, each recorded."""

    drop_rate: float = Field(0.001, ge=0.0, le=1.0, description="Share of records dropped.")
    duplicate_rate: float = Field(
        0.005, ge=0.0, le=1.0, description="Share of records sent twice (same message_id)."
    )
    late_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of records held back and delivered late."
    )
    late_mean_s: float = Field(30.0, gt=0, description="Mean extra delay (exponential).")
    late_max_s: float = Field(
        300.0, gt=0, description="Bound on lateness: a watermark consumers can rely on."
    )
    late_keep_key_order: bool = Field(
        False, description="Hold a key's later records behind a late one (order kept)."
    )
    clock_skew_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of entities whose clock is off."
    )
    clock_skew_s: float = Field(5.0, ge=0, description="Std dev of a skewed clock's offset.")
    clock_drift_ppm: float = Field(50.0, ge=0, description="Std dev of its drift, ppm.")
    outage_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance per entity and hour of going silent."
    )
    outage_min_s: float = Field(60.0, gt=0, description="Shortest outage.")
    outage_max_s: float = Field(1800.0, gt=0, le=3600, description="Longest outage (<= 1 h).")
    outage_group_size: int = Field(
        1, ge=1, description="Entities that go silent together (a gateway's devices: ids // size)."
    )
    outage_replay: bool = Field(
        True, description="After an outage, replay the backlog (else it is lost)."
    )
    anomaly_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance per entity and hour of a sensor anomaly."
    )
    anomaly_kinds: CommaList = Field(
        list(ANOMALY_KINDS),
        description="Sensor anomalies to draw from: " + ", ".join(ANOMALY_KINDS),
    )
    pollution_episode_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Chance per city and day of a pollution episode "
        "(air quality: x3-10 for hours, neighbouring hours elevated).",
    )
    malformed_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of records made malformed (dead-letter tests)."
    )
    malformed_kinds: CommaList = Field(
        list(MALFORMED_KINDS),
        description="Malformations to draw from: "
        + ", ".join(MALFORMED_KINDS)
        + " (all but out_of_range exist in JSON outputs only).",
    )
    quality_issue_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of records with a data-quality issue (seed: 5%)."
    )
    quality_issue_kinds: CommaList = Field(
        list(QUALITY_KINDS), description="Issues to draw from: " + ", ".join(QUALITY_KINDS)
    )
    sources: int = Field(
        1, ge=1, le=3, description="Emit the stream as 2 or 3 overlapping, conflicting sources."
    )
    source_overlaps: NumberList = Field(
        [0.4, 0.5, 0.3], description="Share of each source's records also in another source."
    )
    ground_truth: bool = Field(
        False,
        description="Write every injected fault (message_id, kind, stream, parameters) to "
        "<file sink dir>/<stream>.ground-truth.jsonl.",
    )

    @field_validator("anomaly_kinds", "malformed_kinds", "quality_issue_kinds")
    @classmethod
    def _known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        accepted = {
            "anomaly_kinds": ANOMALY_KINDS,
            "malformed_kinds": MALFORMED_KINDS,
            "quality_issue_kinds": QUALITY_KINDS,
        }[str(info.field_name)]
        for kind in value:
            if kind not in accepted:
                raise ValueError(f"unknown kind {kind!r}; accepted: {', '.join(accepted)}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.outage_min_s > self.outage_max_s:
            raise ValueError("outage_min_s must not exceed outage_max_s")
        if len(self.source_overlaps) < self.sources or not all(
            0 < o < 1 for o in self.source_overlaps[: self.sources]
        ):
            raise ValueError(f"source_overlaps needs {self.sources} shares between 0 and 1")
        return self


class RateSettings(Model):
    """When records are due. Either a fixed interval per entity, or a total rate over all."""

    interval_s: float = Field(
        10.0, ge=0.001, description="Fixed interval between two records of one entity."
    )
    jitter_s: float = Field(
        0.0, ge=0.0, description="Uniform jitter +/- this around each due time (< interval/2)."
    )
    total_per_s: float | None = Field(
        None,
        gt=0.0,
        description="If set, a total rate in records/s spread over random entities "
        "(replaces interval_s); scaled by the multipliers below.",
    )
    hour_multipliers: NumberList | None = Field(
        None, description="24 factors by hour of day (total rate only)."
    )
    weekday_multipliers: NumberList | None = Field(
        None, description="7 factors, Monday first (total rate only)."
    )
    month_multipliers: NumberList | None = Field(
        None, description="12 factors, January first (total rate only)."
    )
    scenario: Literal["normal", "peak", "maintenance"] = Field(
        "normal", description="normal x1, peak x3, maintenance x0.1 (total rate only)."
    )
    utc_offset_hours: float = Field(
        0.0, ge=-14, le=14, description="Local time of the multipliers, as an offset from UTC."
    )
    aligned: bool = Field(
        False,
        description="Every entity due on the interval's boundary (hourly: on the hour) "
        "instead of spread over it.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name, size in (
            ("hour_multipliers", 24),
            ("weekday_multipliers", 7),
            ("month_multipliers", 12),
        ):
            values = getattr(self, name)
            if values is not None and (len(values) != size or min(values) < 0):
                raise ValueError(f"{name} needs {size} non-negative numbers, got {values}")
        if self.jitter_s * 2 >= self.interval_s:
            raise ValueError("jitter_s must be less than half of interval_s")
        return self


class StreamSettings(Model):
    """What every stream has: sinks, a rate model, faults, and where each sink puts it.

    A stream kind is its settings model: a subclass names its ``KIND`` (its settings live
    under ``SYNTHSTREAM_<KIND>__``), says what it is in ``DESCRIPTION`` and ``build``s its
    source. It is found through the entry point group ``synthstream.streams``.
    """

    KIND: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""

    sinks: CommaList = Field(["stdout"], description="Sinks this stream goes to.")
    faults: FaultSettings = FaultSettings()
    http_path: str = Field("/", description="Path the http sink posts this stream's records to.")
    kafka_topic: str = Field("records", description="Topic of the kafka sink.")
    kinesis_stream: str = Field("records", description="Stream of the kinesis sink.")

    # Record types of a stream with several (their names replace {type} in the destinations).
    CHANNELS: ClassVar[tuple[str, ...]] = ()

    def channels(self, stream: str) -> tuple[str, ...]:
        return self.CHANNELS or (stream,)

    def destination(self, field: str, channel: str) -> str:
        """Where a sink sends ``channel``'s records: the stream setting ``field`` (a sink
        kind's ``DESTINATION``: a topic, a Kinesis stream, a path), ``{type}`` filled in."""
        value: str = getattr(self, field)
        return value.replace("{type}", channel)

    @field_validator("sinks")
    @classmethod
    def _known_sinks(cls, value: list[str]) -> list[str]:
        from producer.plugins import sink_kinds

        known = ", ".join(sink_kinds())
        for sink in value:
            if sink not in sink_kinds():
                raise ValueError(f"unknown sink {sink!r}; accepted: {known}")
        if not value:
            raise ValueError(f"needs at least one sink; accepted: {known}")
        return value

    @property
    def entities(self) -> int:
        raise NotImplementedError

    def build(self, context: StreamContext) -> Source:
        """This stream's source for this process (its shard of the entities)."""
        raise NotImplementedError


class SensorStreamSettings(StreamSettings):
    """A stream of entities due on a rate model: each on an interval, or a total rate. A kind
    of this shape only makes its ``generator``; the rate model and sharding are shared."""

    rate: RateSettings = RateSettings()

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        raise NotImplementedError

    def build(self, context: StreamContext) -> Source:
        from producer.streams import sensor_source

        return sensor_source(context.name, self, context.seed, context.shard)


def parse_time(text: str, flag: str) -> datetime:
    """An ISO 8601 time from a flag, UTC when it has no zone; ConfigError naming the flag."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SinkSettings(Model):
    """A sink kind is its settings model: ``KIND`` (settings under
    ``SYNTHSTREAM_SINKS__<KIND>__``), ``DESCRIPTION``, the stream setting that names where a
    stream's records go (``DESTINATION``, e.g. ``kafka_topic``; none: the channel's name),
    ``NETWORK`` (probed at start, retried when unreachable) and ``build``. It is found through
    the entry point group ``synthstream.sinks``."""

    KIND: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    DESTINATION: ClassVar[str | None] = None
    NETWORK: ClassVar[bool] = False

    def build(self, context: SinkContext) -> Sink:
        raise NotImplementedError


class DeliverySettings(Model):
    """The engine's queues, batching, retries and shutdown."""

    queue_records: int = Field(
        200_000, ge=1, description="Records buffered per stream and sink before the queue is full."
    )
    when_full: Literal["block", "drop_newest"] = Field(
        "block",
        description="block: the scheduler waits (shows as scheduler lag); "
        "drop_newest: new records are counted as failed (reason queue_full).",
    )
    linger_s: float = Field(
        0.05, ge=0, description="Wait this long to fill a send to a network sink (files and "
        "stdout take what is queued at once).",
    )  # fmt: skip
    max_attempts: int = Field(12, ge=1, description="Send attempts before a batch fails.")
    backoff_base_s: float = Field(0.1, gt=0, description="First retry waits up to this.")
    backoff_max_s: float = Field(30.0, gt=0, description="No retry waits longer than this.")
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="Deadline to drain queues and close sinks after a stop."
    )


class MetricsSettings(Model):
    """Prometheus /metrics and /healthz on one port."""

    enabled: bool = Field(True, description="Serve /metrics and /healthz.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in containers).")
    port: int = Field(9108, ge=0, le=65535, description="Port (0 picks a free one).")


class LogSettings(Model):
    """Structured logs on standard error."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    format: Literal["auto", "console", "json"] = Field(
        "auto", description="console (coloured on a terminal), json, or auto (console on a tty)."
    )


class LiveSettings(Model):
    """Live runs: how the scheduler wakes."""

    tick_ms: float = Field(
        20.0, ge=1, le=1000,
        description="Latency budget: each wake takes every record due since the last one, "
        "with its exact event time; records leave at most this late (1: every millisecond).",
    )  # fmt: skip
    lookahead_ms: int = Field(
        1000, ge=0, le=60_000,
        description="How far ahead of emission the generators work, in event time, at most: "
        "one generate call per this much (less at high rates, about 2,000 records a call), "
        "cheaper than one per tick; each record still leaves when it is due. 0: generate at "
        "every tick.",
    )  # fmt: skip


class BackfillSettings(Model):
    """Run the generators over a historical window in event time."""

    enabled: bool = Field(False, description="Backfill instead of live (--backfill).")
    start: datetime | None = Field(None, description="Window start, ISO 8601 (UTC if no zone).")
    end: datetime | None = Field(None, description="Window end, ISO 8601; default: now.")
    speed: float | None = Field(
        None, gt=0, description="Times real time; default: as fast as the sinks take it."
    )
    then_live: bool = Field(False, description="After the window, go on live from now.")
    progress: Literal["auto", "on", "off"] = Field("auto", description="Progress bar (auto: tty).")
    dataset: Literal["sample", "full"] | None = Field(
        None,
        description="Air-quality historical data set (--dataset): sets window, cities, "
        "hourly rate and Parquet output.",
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        start = info.data.get("start")
        if info.field_name == "end" and value is not None and start and value <= start:
            raise ValueError(f"must be after the start ({start.isoformat()})")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.enabled and self.start is None:
            raise ValueError("a backfill needs a start (--start ISO)")
        if self.then_live and self.end is not None:
            raise ValueError("--then-live continues from now: leave the end (--end) unset")
        return self


class Shard(Model):
    index: int
    count: int

    @classmethod
    def parse(cls, text: str, replica: Callable[[], int | None] | None = None) -> Shard:
        """``I/N``, or ``auto/N``: I is this container's replica number minus one, from its
        name (``<project>-producer-<n>``, as ``docker compose up --scale`` names them)."""
        match = re.fullmatch(r"\s*(\d+|auto)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"expected I/N such as 0/2, or auto/N, got {text!r}")
        count = int(match[2])
        if match[1] == "auto":
            found = (replica or replica_index)()
            if found is None and count > 1:
                raise ValueError(
                    f"{text!r} takes this replica's number from its host name "
                    f"({socket.gethostname()!r} has none: not a docker compose replica); "
                    "set I/N, such as 0/" + str(count)
                )
            index = found or 0
            if index >= count:
                raise ValueError(
                    f"this is replica {index + 1} but {text!r} says {count}: "
                    "set N (SYNTHSTREAM_REPLICAS in docker compose) to the replica count"
                )
        else:
            index = int(match[1])
        if count < 1 or index >= count:
            raise ValueError(f"needs 0 <= I < N, got {text!r}")
        return cls(index=index, count=count)


def replica_index(
    hostname: Callable[[], str] = socket.gethostname,
    lookup: Callable[[str], str] = lambda host: socket.gethostbyaddr(socket.gethostbyname(host))[0],
) -> int | None:
    """This container's replica number minus one. Compose names replicas
    ``<project>-<service>-<n>`` (``_`` in old versions); its DNS answers the reverse lookup
    of a container's address with that name. None when no name has a number."""
    names = [hostname()]
    with contextlib.suppress(OSError):
        names.insert(0, lookup(names[0]))
    for name in names:
        match = re.search(r"[-_](\d+)$", name.split(".")[0])
        if match:
            return int(match[1]) - 1
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    profile: str = Field("development", description="Profile: profiles/<name>.env.")
    seed: int = Field(42, ge=0, lt=2**63, description="Same seed, same records.")
    shard: str = Field(
        "0/1",
        description="I/N: keep the entities of shard I of N; auto/N takes I from the "
        "container's replica number (docker compose --scale).",
    )
    streams: CommaList = Field(["bme280"], description="Streams to run.")
    duration_s: float | None = Field(None, gt=0, description="Stop a live run after this long.")
    max_records: int | None = Field(None, ge=1, description="Stop after this many records.")
    use_uvloop: bool = Field(True, description="Run on uvloop.")
    wait_for_sinks_s: float = Field(
        0.0, ge=0, description="Wait this long for unreachable sinks at start (0: fail at once "
        "with status 1).",
    )  # fmt: skip
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    delivery: DeliverySettings = DeliverySettings()
    # Replaced in ``settings_model()`` by one field per sink kind, as each stream kind adds a
    # field of its own there: the registered kinds are the settings.
    sinks: Model = Model()
    live: LiveSettings = LiveSettings()
    backfill: BackfillSettings = BackfillSettings()

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: list[str]) -> list[str]:
        from producer.plugins import stream_kinds

        known = ", ".join(stream_kinds())
        for name in value:
            if name not in stream_kinds():
                raise ValueError(f"unknown stream {name!r}; accepted: {known}")
        if not value:
            raise ValueError(f"needs at least one stream; accepted: {known}")
        return value

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        shard = Shard.parse(value)  # auto/N resolved here, once
        return f"{shard.index}/{shard.count}"

    @property
    def shard_spec(self) -> Shard:
        return Shard.parse(self.shard)

    def stream(self, name: str) -> StreamSettings:
        settings: StreamSettings = getattr(self, name)
        return settings

    def sink(self, name: str) -> SinkSettings:
        settings: SinkSettings = getattr(self.sinks, name)
        return settings

    @property
    def file_sink(self) -> FileSinkSettings:
        """The file sink's settings: where ground truth and data sets go, whatever the sinks."""
        from sinks.settings import FileSinkSettings

        settings = self.sink("file")
        assert isinstance(settings, FileSinkSettings)
        return settings

    def redacted(self) -> dict[str, Any]:
        """Effective settings for the start log line: secrets are dumped as '**********'."""
        return self.model_dump(mode="json")


@functools.cache
def settings_model() -> type[Settings]:
    """``Settings`` with a field per registered stream kind and sink kind."""
    from producer.plugins import sink_kinds, stream_kinds

    fields: dict[str, Any] = {name: (kind, kind()) for name, kind in sink_kinds().items()}
    sinks: Any = create_model(  # (pydantic's dynamic model: its type is only known at run time)
        "SinksSettings",
        __base__=Model,
        __doc__="Settings of each sink, shared by every stream that uses it.",
        **fields,
    )
    streams: dict[str, Any] = {}
    for name, kind in stream_kinds().items():
        if name in Settings.model_fields:
            raise ConfigError(f"stream kind {name!r} has the name of a setting; rename the kind")
        streams[name] = (kind, kind())
    model: type[Settings] = create_model(
        "Settings", __base__=Settings, sinks=(sinks, sinks()), **streams
    )
    return model


# --------------------------------------------------------------------------- loading


def profile_path(name: str) -> Path:
    """``profiles/<name>.env`` from the installed package or the source tree, or a path."""
    if name.endswith(".env") or os.sep in name:
        path = Path(name)
        if path.is_file():
            return path
        raise ConfigError(f"SYNTHSTREAM_PROFILE (--profile): no profile file at {name}")
    for folder in (PACKAGE_DIR / "_profiles", PACKAGE_DIR.parent / "profiles"):
        path = folder / f"{name}.env"
        if path.is_file():
            return path
    raise ConfigError(
        f"SYNTHSTREAM_PROFILE (--profile): unknown profile {name!r}; "
        f"accepted: {', '.join(available_profiles())} or a path to a .env file"
    )


def available_profiles() -> list[str]:
    for folder in (PACKAGE_DIR / "_profiles", PACKAGE_DIR.parent / "profiles"):
        if folder.is_dir():
            return sorted(p.stem for p in folder.glob("*.env"))
    return []


def env_names(model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX) -> Iterator[str]:
    """Every leaf setting as its environment variable name, in declaration order."""
    model = model or settings_model()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


def _nested_names(model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX) -> Iterator[str]:
    model = model or settings_model()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield f"{prefix}{name.upper()}"
            yield from _nested_names(annotation, f"{prefix}{name.upper()}__")


def _check_unknown(names: Iterator[str] | list[str], where: str) -> None:
    known = set(env_names()) | set(_nested_names())
    for name in names:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known:
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{name}: unknown setting ({where}){hint} See .env.example.")


def _env_file_keys(path: Path) -> list[str]:
    keys = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.append(line.split("=", 1)[0].removeprefix("export ").strip())
    return keys


def env_name_of(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc if isinstance(part, str))


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Validate settings from every source, or raise ``ConfigError`` with one line.

    ``overrides`` are command-line values as a nested dict; ``flags`` maps a dotted setting
    path to the flag that set it, so that errors name the flag the user typed.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    profile = str(overrides.get("profile") or environ.get(f"{ENV_PREFIX}PROFILE") or "development")
    overrides["profile"] = profile
    path = profile_path(profile)
    _check_unknown([k for k in environ if k.upper().startswith(ENV_PREFIX)], "environment")
    env_files: list[Path] = [path]
    _check_unknown(_env_file_keys(path), f"profile {path.name}")
    dotenv = Path(".env")
    if dotenv.is_file():
        env_files.append(dotenv)
        _check_unknown(_env_file_keys(dotenv), ".env")
    try:
        return settings_model()(_env_file=tuple(env_files), **overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, flags or {})) from None


def _one_line(exc: ValidationError, flags: Mapping[str, str]) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    name = env_name_of(loc)
    dotted = ".".join(str(p) for p in loc if isinstance(p, str))
    flag = flags.get(dotted)
    where = f"{flag} / {name}" if flag else name
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        message = f"accepted: {expected}"
    if first["type"] == "extra_forbidden":
        message = "unknown setting; see .env.example"
    given = first.get("input")
    got = ""
    if not isinstance(given, dict | list) and given is not None and repr(given) not in message:
        got = f" (got {given!r})"
    more = f" [{len(errors) - 1} more error(s)]" if len(errors) > 1 else ""
    if not loc or not dotted:
        where = "settings"
    return f"{where}: {message}{got}{more}"


def _env_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_env_value(v) for v in value)
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value)


def env_example(
    model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX,
    defaults: BaseModel | None = None,
) -> str:  # fmt: skip
    """``.env.example``: every setting, commented out at its default, with its description.

    ``defaults`` is the nested model's default instance: a stream may default a nested model
    differently from the model's own defaults (air quality's rate is a total rate)."""
    lines: list[str] = []
    if model is None:
        model = settings_model()
        lines += [
            "# synthstream settings. Every line is a default: uncomment what you change.",
            "# Precedence: flags > env > .env > profiles/<SYNTHSTREAM_PROFILE>.env > defaults.",
            "# Lists take commas (SYNTHSTREAM_BME280__SINKS=stdout,file).",
            "# Regenerate with: synthstream config --env-example > .env.example",
        ]
    nested: list[tuple[str, type[BaseModel], BaseModel]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        env = f"{prefix}{name.upper()}"
        value = (
            getattr(defaults, name)
            if defaults is not None
            else field.get_default(call_default_factory=True)
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((env, annotation, value))
            continue
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"# {env}={_env_value(value)}")
    for env, sub_model, sub_defaults in nested:
        lines += ["", f"# ---- {env}__* : {(sub_model.__doc__ or '').strip().splitlines()[0]}"]
        lines += env_example(sub_model, f"{env}__", sub_defaults).strip("\n").splitlines()
    return "\n".join(lines) + "\n"
