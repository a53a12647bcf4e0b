"""Settings as a whole: the model with a field per registered stream and sink kind, loaded
once at start from every source.

Precedence, highest first: command-line flags, real environment variables, ``.env`` in the
working directory, the profile file ``profiles/<name>.env``, the defaults. Every field is an
environment variable ``SYNTHSTREAM_<FIELD>``, nested fields joined by ``__``
(``SYNTHSTREAM_BME280__DEVICES``). List fields accept a comma list (``stdout,file``).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from producer.errors import ConfigError
from producer.plugins import (
    AddressedSinkSettings,
    SinkSettings,
    StreamSettings,
    registered,
    sink_kinds,
    stream_kinds,
)
from producer.settings import (
    ENV_PREFIX,
    PACKAGE_DIR,
    BackfillSettings,
    CommaList,
    ControlSettings,
    DeliverySettings,
    FaultSettings,
    LiveSettings,
    LogSettings,
    MetricsSettings,
    Model,
    Shard,
)
from producer.specs.stream import SpecStreamSettings


@functools.cache
def spec_streams(paths: tuple[str, ...]) -> dict[str, SpecStreamSettings]:
    """The streams declared in spec files, each as its stream settings (a name twice is an
    error naming both files)."""
    from producer.specs.loading import load_spec

    found: dict[str, SpecStreamSettings] = {}
    origin: dict[str, str] = {}
    for path in paths:
        for name, spec in load_spec(Path(path)).streams.items():
            if name in found or name in stream_kinds():
                where = origin.get(name, "a built-in stream")
                raise ConfigError(f"{path}: stream {name!r} is declared in {where} too; "
                                  "accepted: one stream per name")  # fmt: skip
            found[name], origin[name] = SpecStreamSettings.of(name, spec), path
    return found


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
    workers: str = Field(
        "1",
        description="Processes, each a shard of the entities, under one parent (one "
        "/metrics, one summary); auto: one per usable core.",
    )
    specs: CommaList = Field(
        [], description="Spec files (YAML) declaring streams of your own (--spec FILE); their "
        "streams run unless --streams names others too.",
    )  # fmt: skip
    specs_sinks: CommaList | None = Field(
        None, description="Sinks of every spec stream, instead of each spec's own (--sinks)."
    )
    # A spec stream's faults from the environment (SYNTHSTREAM_<STREAM>__FAULTS__*), over
    # its file's, as a built-in stream's are: set by load_settings.
    _spec_faults: dict[str, FaultSettings] = PrivateAttr(default_factory=dict)
    streams: CommaList = Field(["bme280"], description="Streams to run.")
    out: Path = Field(
        Path("data/out"), description="Folder of the run's files (--out): the ground truth's, "
        "and a sink's that writes files unless its own setting says otherwise.",
    )  # fmt: skip
    duration_s: float | None = Field(None, gt=0, description="Stop a live run after this long.")
    max_records: int | None = Field(
        None, ge=1,
        description="Stop after the streams made this many records (before faults: the "
        "summary's generated adds the duplicates faults injected, and dropped ones count).",
    )  # fmt: skip
    use_uvloop: bool = Field(True, description="Run on uvloop.")
    wait_for_sinks_s: float = Field(
        0.0, ge=0, description="Wait this long for unreachable sinks at start (0: fail at once "
        "with status 1).",
    )  # fmt: skip
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    control: ControlSettings = ControlSettings()
    delivery: DeliverySettings = DeliverySettings()
    # Replaced in ``settings_model()`` by one field per sink kind, as each stream kind adds a
    # field of its own there: the registered kinds are the settings.
    sinks: Model = Model()
    live: LiveSettings = LiveSettings()
    backfill: BackfillSettings = BackfillSettings()

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: list[str], info: ValidationInfo) -> list[str]:
        declared = spec_streams(tuple(info.data.get("specs") or ()))
        return registered(
            value, {**stream_kinds(), **{n: type(s) for n, s in declared.items()}}, "stream"
        )

    @model_validator(mode="after")
    def _spec_streams(self) -> Self:
        if self.specs and "streams" not in self.model_fields_set:
            self.streams = list(spec_streams(tuple(self.specs)))  # --spec alone: its streams
        return self

    @model_validator(mode="after")
    def _control(self) -> Self:
        c = self.control
        if (
            c.enabled
            and not (c.token and c.token.get_secret_value())
            and (self.metrics.host not in LOOPBACK)
        ):
            raise ValueError(
                "SYNTHSTREAM_CONTROL__TOKEN: required when the metrics port listens beyond "
                f"loopback (SYNTHSTREAM_METRICS__HOST={self.metrics.host}); accepted: a token, "
                "or a loopback host"
            )
        if c.enabled and self.worker_count > 1:
            raise ValueError(
                "SYNTHSTREAM_CONTROL__ENABLED: control steers one process; "
                "accepted: with --workers 1 (replicas are steered one by one)"
            )
        if c.enabled and not self.metrics.enabled:
            raise ValueError("SYNTHSTREAM_CONTROL__ENABLED: the API is on the metrics port; "
                             "accepted: with SYNTHSTREAM_METRICS__ENABLED=true")  # fmt: skip
        return self

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        shard = Shard.parse(value)  # auto/N resolved here, once
        return f"{shard.index}/{shard.count}"

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: str) -> str:
        text = value.strip().lower()
        if text == "auto":
            return str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                       os.cpu_count() or 1)  # fmt: skip
        if not text.isdigit() or not 1 <= int(text) <= 256:
            raise ValueError(f"expected 1 to 256 processes, or auto, got {value!r}")
        return str(int(text))

    @property
    def worker_count(self) -> int:
        return int(self.workers)

    @property
    def shard_spec(self) -> Shard:
        return Shard.parse(self.shard)

    def stream(self, name: str) -> StreamSettings:
        declared = spec_streams(tuple(self.specs))
        if name in declared:
            spec = declared[name]
            if self.specs_sinks is not None:
                spec = spec.model_copy(update={"sinks": self.specs_sinks})
            if name in self._spec_faults:
                spec = spec.model_copy(update={"faults": self._spec_faults[name]})
            return spec
        settings: StreamSettings = getattr(self, name)
        return settings

    def sink(self, name: str) -> SinkSettings:
        settings: SinkSettings = getattr(self.sinks, name)
        return settings

    def redacted(self) -> dict[str, Any]:
        """Effective settings for the start log line: secrets are dumped as '**********'."""
        return self.model_dump(mode="json")


@functools.cache
def settings_model() -> type[Settings]:
    """``Settings`` with a field per registered stream kind and sink kind."""
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


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _moved(name: str) -> str | None:
    """The line for a stream's address setting of earlier versions (``..._KAFKA_TOPIC``):
    addresses belong to the sinks now."""
    stream, _, last = name.upper().removeprefix(ENV_PREFIX).rpartition("__")
    for kind in sink_kinds().values():
        if isinstance(kind, type) and issubclass(kind, AddressedSinkSettings) and (
            kind.REPLACES is not None and last == kind.REPLACES.upper() and stream
        ):  # fmt: skip
            sink = f"{ENV_PREFIX}SINKS__{kind.KIND.upper()}__"
            example = f'{{"{stream.lower()}": "<name>"}}'
            return (f"{name}: moved to the {kind.KIND} sink: {sink}{kind.OVERRIDES.upper()}="
                    f"'{example}' (or {sink}DESTINATION, a template over {{stream}} and "
                    "{channel}, for every stream)")  # fmt: skip
    return None


def _check_unknown(names: Iterator[str] | list[str], where: str) -> None:
    known = set(env_names()) | set(_nested_names())
    for name in names:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known:
            if (moved := _moved(name)) is not None:
                raise ConfigError(moved)
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
    named = [k for k in environ if k.upper().startswith(ENV_PREFIX)]
    spec_faults = _spec_faults(overrides.get("specs") or environ.get(f"{ENV_PREFIX}SPECS"),
                               environ)  # fmt: skip
    _check_unknown([k for k in named if k not in spec_faults[1]], "environment")
    env_files: list[Path] = [path]
    _check_unknown(_env_file_keys(path), f"profile {path.name}")
    dotenv = Path(".env")
    if dotenv.is_file():
        env_files.append(dotenv)
        _check_unknown(_env_file_keys(dotenv), ".env")
    try:
        settings = settings_model()(_env_file=tuple(env_files), **overrides)
        settings._spec_faults = spec_faults[0]
        return settings
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, flags or {})) from None
    except SettingsError as exc:  # a value that has to be JSON is not (rate events)
        raise ConfigError(_not_json(environ) or str(exc)) from None


def _spec_faults(
    specs: str | list[str] | None, environ: Mapping[str, str]
) -> tuple[dict[str, FaultSettings], set[str]]:
    """The faults of spec streams set in the environment, and the variables that set them:
    ``SYNTHSTREAM_<STREAM>__FAULTS__<FIELD>`` over the file's ``faults``."""
    if not specs:
        return {}, set()
    paths = specs.split(",") if isinstance(specs, str) else [str(p) for p in specs]
    declared = spec_streams(tuple(p.strip() for p in paths if p.strip()))
    found: dict[str, FaultSettings] = {}
    used: set[str] = set()
    for name, spec in declared.items():
        prefix = f"{ENV_PREFIX}{name.upper()}__FAULTS__"
        given = {k: v for k, v in environ.items() if k.upper().startswith(prefix)}
        if not given:
            continue
        values = spec.faults.model_dump()
        for key, text in given.items():
            field = key[len(prefix) :].lower()
            if field not in FaultSettings.model_fields:
                close = difflib.get_close_matches(field, list(FaultSettings.model_fields), n=1)
                hint = f"; did you mean {prefix}{close[0].upper()}?" if close else ""
                raise ConfigError(f"{key}: not a fault of a stream{hint} See .env.example.")
            values[field] = text
        try:
            found[name] = FaultSettings.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = f"{prefix}{str(error['loc'][0]).upper()}" if error["loc"] else prefix
            raise ConfigError(f"{where}: {error['msg']} (got {error.get('input')!r})") from None
        used.update(given)
    return found, used


# Settings whose environment value is JSON (a list of objects), by the variable's last part.
JSON_SETTINGS = {"EVENTS": '[{"name": "sale", "start": "2026-11-27", "end": "2026-11-28", '
                           '"multiplier": 4}]',
                 "TOPICS": '{"transactions": "shop.tx"}', "STREAMS": '{"air_quality": "aq"}',
                 "PATHS": '{"bme280": "/api/v1/sensors/bme280"}',
                 "TABLES": '{"bme280": "readings"}',
                 "FOLDERS": '{"air_quality": "aq/v1"}'}  # fmt: skip


def _not_json(environ: Mapping[str, str]) -> str | None:
    for name, value in environ.items():
        example = JSON_SETTINGS.get(name.rsplit("__", 1)[-1].upper()) if "__" in name else None
        if not name.upper().startswith(ENV_PREFIX) or example is None:
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            return f"{name}: not JSON ({exc}); accepted: JSON such as {example}"
    return None


def _one_line(exc: ValidationError, flags: Mapping[str, str]) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    name = env_name_of(loc)
    dotted = ".".join(str(p) for p in loc if isinstance(p, str))
    flag = flags.get(dotted)
    where = f"{flag} / {name}" if flag else name
    if flag and list(flags.values()).count(flag) > 1:  # (--sinks: every stream's, one flag)
        where = flag
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
    # The same mistake made through one flag in several settings is one mistake.
    said = {(flags.get(".".join(str(p) for p in e["loc"] if isinstance(p, str))) or id(e),
             str(e["msg"])) for e in errors}  # fmt: skip
    more = f" [{len(said) - 1} more error(s)]" if len(said) > 1 else ""
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
        as_json = name.upper() in JSON_SETTINGS and prefix != ENV_PREFIX
        shown = json.dumps(value) if as_json else _env_value(value)
        lines.append(f"# {env}={shown}")
    for env, sub_model, sub_defaults in nested:
        lines += ["", f"# ---- {env}__* : {(sub_model.__doc__ or '').strip().splitlines()[0]}"]
        lines += env_example(sub_model, f"{env}__", sub_defaults).strip("\n").splitlines()
    return "\n".join(lines) + "\n"
