"""The engine's own settings models: faults, rates, delivery, metrics, logs, live and
backfill runs, shards. The kinds' bases are in ``producer.plugins``; the whole settings and
their loading in ``producer.config``."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from producer.errors import ConfigError

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
    duplicate_copies: int = Field(
        1, ge=1, le=10, description="Copies of each duplicated record, right after it."
    )
    late_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of records held back and delivered late."
    )
    late_delay: Literal["exponential", "uniform"] = Field(
        "exponential",
        description="How a late record's delay is drawn: exponential of late_mean_s, or "
        "uniform up to late_max_s (both at most late_max_s).",
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
    cdc_drop_rate: float = Field(
        0.0, ge=0.0, le=1.0,
        description="A table's changes dropped (drop_rate leaves tables alone, as a connector "
        "delivers at least once; a lost change leaves the table unlike the state).",
    )  # fmt: skip
    cdc_replay_rate: float = Field(
        0.0, ge=0.0, le=1.0,
        description="A table's changes: chance per hour of a connector restart that sends "
        "the last cdc_replay_s of changes again (as duplicates).",
    )  # fmt: skip
    cdc_replay_s: float = Field(60.0, gt=0, le=3600, description="What a restart replays.")
    cdc_reorder_rate: float = Field(
        0.0, ge=0.0, le=1.0,
        description="A table's updates held back up to cdc_reorder_max_s: later changes of "
        "their key overtake them (their seq goes back).",
    )  # fmt: skip
    cdc_reorder_max_s: float = Field(30.0, gt=0, le=86_400, description="Bound of a reordering.")
    cdc_late_delete_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="A table's deletes held back up to cdc_late_delete_max_s."
    )
    cdc_late_delete_max_s: float = Field(
        300.0, gt=0, le=86_400, description="Bound of a late delete."
    )
    cdc_schema_change_at: datetime | None = Field(
        None, description="A table's schema change: from this moment (ISO 8601, UTC without "
        "a zone) its rows have one more column, cdc_added_column.",
    )  # fmt: skip
    cdc_added_column: str = Field(
        "loyalty_points", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The added column's name (an integer from the row's key).",
    )  # fmt: skip
    ground_truth: bool = Field(
        False,
        description="Write every injected fault (message_id, kind, stream, parameters) to "
        "<file sink dir>/<stream>.ground-truth.jsonl.",
    )

    @field_validator("cdc_schema_change_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)

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


class RateEvent(Model):
    """A dated event: the total rate times ``multiplier`` in the hours it covers."""

    name: str = Field("event", description="What it is (a sale, a match, an outage).")
    start: datetime = Field(description="Its first hour (ISO 8601; UTC without a zone).")
    end: datetime = Field(description="The end, exclusive; hours starting before it count.")
    multiplier: float = Field(ge=0, description="The rate's factor while it lasts.")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"event {self.name!r}: end must be after start")
        return self


# What a rate may ask for: one record a year at least, ten million a second at most (beyond
# that one tick's records would not fit in memory).
MAX_INTERVAL_S = 366 * 86_400.0
MAX_TOTAL_PER_S = 10_000_000.0


class RateSettings(Model):
    """When records are due. Either a fixed interval per entity, or a total rate over all."""

    interval_s: float = Field(
        10.0, ge=0.001, le=MAX_INTERVAL_S,
        description="Fixed interval between two records of one entity (at most a year).",
    )  # fmt: skip
    jitter_s: float = Field(
        0.0, ge=0.0, description="Uniform jitter +/- this around each due time (< interval/2)."
    )
    total_per_s: float | None = Field(
        None,
        gt=0.0,
        description="If set, a total rate in records/s spread over random entities "
        "(replaces interval_s); scaled by the multipliers below (at their highest, at most "
        "10,000,000/s).",
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
    events: list[RateEvent] = Field(
        default_factory=list,
        description="Dated events (total rate only), each hour it covers x its multiplier: "
        'JSON, e.g. [{"name": "sale", "start": "2026-11-27", "end": "2026-11-28", '
        '"multiplier": 4}].',
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
        if self.total_per_s is not None and self.peak_per_s() > MAX_TOTAL_PER_S:
            raise ValueError(f"total_per_s x the highest multipliers is {self.peak_per_s():.3g} "
                             f"records/s; accepted: at most {MAX_TOTAL_PER_S:,.0f}")  # fmt: skip
        return self

    def peak_per_s(self) -> float:
        """The highest total rate the multipliers can make (peak scenario, busiest event)."""
        peak = (self.total_per_s or 0.0) * 3.0  # x3: a steered run may switch to peak
        for values in (self.hour_multipliers, self.weekday_multipliers, self.month_multipliers):
            peak *= max(values) if values else 1.0
        return peak * max([1.0, *(e.multiplier for e in self.events)])


def parse_time(text: str, flag: str) -> datetime:
    """An ISO 8601 time from a flag, UTC when it has no zone; ConfigError naming the flag."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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


class ControlSettings(Model):
    """Live control on the metrics port: /control (a page), /control/state, and POSTs that
    change a stream's rate multiplier, scenario, pause, or start an episode now."""

    enabled: bool = Field(False, description="Serve the control API and page.")
    token: SecretStr | None = Field(
        None, description="Bearer token the API asks for (required unless the metrics port "
        "listens on loopback only); never logged.",
    )  # fmt: skip
    log: Path | None = Field(
        None, description="Control log: its actions are applied at their event times at start "
        "(a backfill reproduces a steered run), and the API appends each new action.",
    )  # fmt: skip


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
        description="Latency budget: a wake comes when the first record due has waited this "
        "long, and takes every record due by then, with its exact event time; records leave "
        "at most this late (1: every millisecond).",
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
    dataset: str | None = Field(
        None,
        description="The name of a backfill preset a kind sets (the air-quality data sets: "
        "--dataset), for the dataset_written line.",
    )

    def shows_progress(self, terminal: bool) -> bool:
        """Whether a backfill shows its progress bar (``auto``: on a terminal)."""
        return self.enabled and (self.progress == "on" or (self.progress == "auto" and terminal))

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
        """``I/N``, or ``auto/N``: I is this replica's index (see ``replica_index``)."""
        match = re.fullmatch(r"\s*(\d+|auto)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"expected I/N such as 0/2, or auto/N, got {text!r}")
        count = int(match[2])
        if match[1] == "auto":
            found = (replica or replica_index)()
            if found is None and count > 1:
                raise ValueError(
                    f"{text!r} takes this replica's number from its host name "
                    f"({socket.gethostname()!r} has none: not a docker compose replica, nor "
                    "a Kubernetes pod of a StatefulSet or an Indexed Job); "
                    "set I/N, such as 0/" + str(count)
                )
            index = found or 0
            if index >= count:
                raise ValueError(
                    f"this is replica {index + 1} but {text!r} says {count}: set N to the "
                    "replica count (SYNTHSTREAM_REPLICAS in docker compose; a StatefulSet's "
                    "replicas or a Job's completions in Kubernetes)"
                )
        else:
            index = int(match[1])
        if count < 1 or index >= count:
            raise ValueError(f"needs 0 <= I < N, got {text!r}")
        return cls(index=index, count=count)


def replica_index(
    hostname: Callable[[], str] = socket.gethostname,
    lookup: Callable[[str], str] = lambda host: socket.gethostbyaddr(socket.gethostbyname(host))[0],
    environ: Mapping[str, str] = os.environ,
) -> int | None:
    """This replica's index, from 0. In Kubernetes: an Indexed Job's ``JOB_COMPLETION_INDEX``,
    a StatefulSet pod's ``POD_INDEX`` (its ``apps.kubernetes.io/pod-index`` label through the
    downward API) or the ordinal ending its name (``synthstream-2``: 2). In docker compose,
    the replica number minus one: compose names replicas ``<project>-<service>-<n>`` from 1
    (``_`` in old versions), and its DNS answers the reverse lookup of a container's address
    with that name. None when nothing has a number."""
    for name in ("JOB_COMPLETION_INDEX", "POD_INDEX"):
        if environ.get(name, "").strip().isdigit():
            return int(environ[name])
    kubernetes = "KUBERNETES_SERVICE_HOST" in environ
    names = [hostname()]
    if not kubernetes:
        with contextlib.suppress(OSError):
            names.insert(0, lookup(names[0]))
    for name in names:
        match = re.search(r"[-_](\d+)$", name.split(".")[0])
        if match:
            return int(match[1]) - (0 if kubernetes else 1)
    return None
