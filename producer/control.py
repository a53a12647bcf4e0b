"""Live control: change a running stream's rate multiplier, scenario and pause, start an
episode now, over HTTP on the metrics port (``SYNTHSTREAM_CONTROL__ENABLED``).

An action takes effect at an event time, never in the past of what was made: the later of
now, the run's cursor, and what the stream's generators made ahead (``live.lookahead_ms``),
so the records before it are the ones the run would have made anyway. Each action is a line
of the control log with that event time; ``--control-log FILE`` applies a log's actions at
their times, so a backfill reproduces a live run that was steered by hand, record for record.
Rates change through the stream's ``Pace`` (operational time, see ``producer.rates``), so
every entity keeps its state; episodes go to the stream's ``Episodes``.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from producer.clock import Clock
from producer.episodes import Episode, EpisodeKind
from producer.errors import ConfigError
from producer.metrics import Metrics
from producer.streams import Stream
from producer.timeline import SCENARIO_FACTORS

log = structlog.get_logger("synthstream")

MAX_MULTIPLIER = 100.0
# The smallest multiplier other than 0 (paused): below it a rate's arithmetic underflows and
# a steered run would no longer replay exactly.
MIN_MULTIPLIER = 0.001
MAX_EPISODE_S = 86_400.0
SETTABLE = ("rate_multiplier", "scenario", "paused")


class RequestError(Exception):
    """A request the API refuses: its status and one line naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Steered:
    """One stream under control: what was set, and its pace and episodes."""

    stream: Stream
    paced: bool
    base_scenario: str
    scenario: str
    multiplier: float = 1.0
    paused: bool = False
    started: int = 0  # episodes so far (their ids)
    actions: int = 0

    def factor(self) -> float:
        if self.paused:
            return 0.0
        scale = SCENARIO_FACTORS[self.scenario] / SCENARIO_FACTORS[self.base_scenario]
        return self.multiplier * scale


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


class Control:
    """The run's streams under control. ``floor`` is the earliest event time an action may
    take effect at (the run's cursor, or now when live); ``achieved`` a channel's rate."""

    def __init__(
        self, streams: list[Stream], settings: Any, metrics: Metrics, clock: Clock,
        floor: Callable[[], int], log_path: Path | None = None,
    ) -> None:  # fmt: skip
        self.clock = clock
        self.floor = floor
        self.metrics = metrics
        self.log_path = log_path
        self.on_change: Callable[[], None] = lambda: None  # wakes the scheduler
        self.streams: dict[str, Steered] = {}
        for stream in streams:
            s = settings.stream(stream.name)
            base = s.rate_scenario()
            self.streams[stream.name] = Steered(stream, s.PACED, base, base)
            # Every series from 0: a counter first seen at 1 has no increase to annotate.
            for what in ("set", *stream.episodes.kinds):
                metrics.control_actions.labels(stream.name, what)

    # ------------------------------------------------------------------ actions
    def set(self, name: str, body: Any, at_ms: int | None = None) -> dict[str, Any]:
        """Apply ``{"rate_multiplier": 3}``, ``{"scenario": "peak"}``, ``{"paused": true}``
        (any of them) to a stream; returns the action as logged."""
        steered = self._stream(name)
        changes = _object(body)
        for key in changes:
            if key not in SETTABLE:
                raise RequestError(422, f"{key}: not a setting; accepted: {', '.join(SETTABLE)}")
        if not changes:
            raise RequestError(422, f"body: empty; accepted: {', '.join(SETTABLE)}")
        if not steered.paced:
            raise RequestError(422, f"{name}: its rate cannot be steered (its kind does not "
                               "schedule by a pace); accepted: episodes")  # fmt: skip
        multiplier, scenario, paused = steered.multiplier, steered.scenario, steered.paused
        if "rate_multiplier" in changes:
            multiplier = _number(changes["rate_multiplier"], "rate_multiplier", 0, MAX_MULTIPLIER)
            if 0 < multiplier < MIN_MULTIPLIER:
                raise RequestError(422, f"rate_multiplier: {multiplier:g} is too small; accepted: "
                                   f"0 (stopped) or a number from {MIN_MULTIPLIER:g} to "
                                   f"{MAX_MULTIPLIER:g}")  # fmt: skip
        if "scenario" in changes:
            scenario = changes["scenario"]
            if not isinstance(scenario, str) or scenario not in SCENARIO_FACTORS:
                raise RequestError(422, "scenario: accepted: " + ", ".join(SCENARIO_FACTORS))
        if "paused" in changes:
            paused = changes["paused"]
            if not isinstance(paused, bool):
                raise RequestError(422, "paused: accepted: true or false")
        at = self._effective(steered, at_ms)
        action = {"at_ms": at, "at": _iso(at), "stream": name, "set": dict(changes)}
        self._write(action)
        steered.multiplier, steered.scenario, steered.paused = multiplier, scenario, paused
        steered.stream.pace.set(at, steered.factor())
        return self._done(steered, action, "set")

    def start(self, name: str, body: Any, at_ms: int | None = None) -> dict[str, Any]:
        """Start an episode: ``{"kind": "outage", "entities": 10, "seconds": 60}``; returns
        the action as logged (with the episode's id and window)."""
        steered = self._stream(name)
        request = dict(_object(body))
        given_id = request.pop("id", None)  # a replayed episode keeps its id
        kinds = steered.stream.episodes.kinds
        kind_name = request.pop("kind", None)
        if not isinstance(kind_name, str) or kind_name not in kinds:
            raise RequestError(422, f"kind: accepted for {name}: {', '.join(kinds)}")
        kind = kinds[kind_name]
        seconds = _number(request.pop("seconds", kind.default_seconds), "seconds", 1,
                          MAX_EPISODE_S)  # fmt: skip
        entities: int | None = None
        if "entities" in request or not kind.all_entities:
            default = kind.params["entities"].default if "entities" in kind.params else None
            count = _number(request.pop("entities", default), "entities", 1, 1e9)
            if count != int(count):
                raise RequestError(422, "entities: accepted: a whole number from 1")
            entities = int(count)
        params = _params(kind, request)
        at = self._effective(steered, at_ms, episode=True)
        episode_id = given_id or f"{name}-{steered.started + 1}"
        episode = Episode(str(episode_id), kind.name, at, at + round(seconds * 1000), entities,
                          params)  # fmt: skip
        action = {"at_ms": at, "at": _iso(at), "stream": name, "episode": episode.as_dict()}
        self._write(action)
        steered.started += 1
        steered.stream.episodes.add(episode)
        return self._done(steered, action, kind.name)

    def apply(self, action: dict[str, Any]) -> None:
        """One line of a control log, at its own event time."""
        at = int(action["at_ms"])
        if "set" in action:
            self.set(action["stream"], action["set"], at)
        else:
            episode = dict(action["episode"])
            for key in ("start_ms", "end_ms"):
                episode.pop(key, None)
            if episode.get("entities") is None:
                episode.pop("entities", None)
            episode["seconds"] = (action["episode"]["end_ms"] - at) / 1000
            self.start(action["stream"], episode, at)

    def replay(self, path: Path) -> int:
        """Apply every action of a control log; returns how many."""
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            reason = exc.strerror or exc
            raise ConfigError(f"--control-log: cannot read {path} ({reason})") from None
        count = 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                self.apply(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, RequestError) as exc:
                raise ConfigError(f"--control-log: {path}:{number}: not an action ({exc}); "
                                  "accepted: the lines a steered run wrote") from None  # fmt: skip
            count += 1
        return count

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        now = self.floor()
        wall_s = self.clock.now_ms() / 1000
        out: dict[str, Any] = {"event_time_ms": now, "event_time": _iso(now), "streams": {}}
        for name, steered in self.streams.items():
            source = steered.stream.source
            target = source.target_rates(now)
            out["streams"][name] = {
                "target_per_s": {ch: round(r, 3) for ch, r in target.items()},
                "achieved_per_s": {
                    ch: round(self.metrics.rate_now(ch, wall_s), 3) for ch in target
                },
                "rate_multiplier": steered.multiplier,
                "scenario": steered.scenario,
                "paused": steered.paused,
                "steerable": steered.paced,
                "entities": source.entities(),
                "episode_kinds": list(steered.stream.episodes.kinds),
                "episode_fields": {
                    name: _fields(kind) for name, kind in steered.stream.episodes.kinds.items()
                },
                "active_episodes": [
                    e.as_dict() for e in steered.stream.episodes.all if e.end_ms > now
                ],
                "actions": steered.actions,
            }
        return out

    # ------------------------------------------------------------------ helpers
    def _stream(self, name: str) -> Steered:
        if name not in self.streams:
            raise RequestError(404, f"stream {name}: not in this run; running: "
                               f"{', '.join(self.streams)}")  # fmt: skip
        return self.streams[name]

    def _effective(self, steered: Steered, at_ms: int | None, episode: bool = False) -> int:
        """The event time an action takes effect at (see the module doc)."""
        if at_ms is not None:
            return at_ms
        ahead = getattr(steered.stream.source, "ahead", None)
        at = max(self.floor(), ahead or 0)
        if not episode and steered.stream.pace.at:
            at = max(at, steered.stream.pace.at[-1])
        return at

    def _write(self, action: dict[str, Any]) -> None:
        """The action to the control log before it is applied: a steered run that cannot
        be replayed is refused (503), not half-logged."""
        if self.log_path is None:
            return
        try:
            with self.log_path.open("ab") as out:
                out.write(orjson.dumps(action, option=orjson.OPT_APPEND_NEWLINE))
        except OSError as exc:
            reason = exc.strerror or exc
            raise RequestError(503, f"control log {self.log_path}: cannot write ({reason}); "
                               "nothing was changed") from None  # fmt: skip

    def _done(self, steered: Steered, action: dict[str, Any], what: str) -> dict[str, Any]:
        steered.actions += 1
        self.metrics.control_actions.labels(steered.stream.name, what).inc()
        log.info("control_action", **action)
        self.on_change()
        return action


def _fields(kind: EpisodeKind) -> dict[str, dict[str, Any]]:
    """A kind's own fields as the page renders them: default, and choices or a range."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in kind.params.items():
        if name == "entities":
            continue
        shape: dict[str, Any] = {"default": p.default, "description": p.description}
        if p.choices:
            shape["choices"] = list(p.choices)
        else:
            shape.update(low=p.low, high=p.high)
        out[name] = shape
    return out


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "body: accepted: a JSON object")
    return body


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(422, f"{name}: accepted: a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise RequestError(422, f"{name}: {value:g} is out of range; accepted: a number from "
                           f"{low:g} to {high:g}")  # fmt: skip
    return float(value)


def _params(kind: EpisodeKind, request: dict[str, Any]) -> dict[str, Any]:
    """The kind's own parameters from a request (the rest of it), with their defaults."""
    out: dict[str, Any] = {}
    own = {k: p for k, p in kind.params.items() if k != "entities"}
    for key in request:
        if key not in own:
            accepted = ", ".join(["kind", "seconds", "entities", *own])
            raise RequestError(422, f"{key}: not a field of a {kind.name} episode; accepted: "
                               f"{accepted}")  # fmt: skip
    for key, param in own.items():
        value = request.get(key, param.default)
        if param.choices:
            if not isinstance(value, str | int | float) or value not in param.choices:
                raise RequestError(422, f"{key}: accepted: {param.accepts()}")
        else:
            assert param.low is not None
            assert param.high is not None
            value = _number(value, key, param.low, param.high)
            if param.whole:
                if not value.is_integer():
                    raise RequestError(422, f"{key}: {value:g}; accepted: {param.accepts()}")
                value = int(value)
        out[key] = value
    return out


def from_settings(
    settings: Any, streams: list[Stream], metrics: Metrics, clock: Clock,
    floor: Callable[[], int], nudge: Callable[[], None],
) -> Callable[..., tuple[str, str, bytes]] | None:  # fmt: skip
    """Control of a run's streams from its settings: the control log's actions applied at
    their times, and the API's handler when control is on (None when it is off)."""
    c = settings.control
    if not c.enabled and c.log is None:
        return None
    control = Control(streams, settings, metrics, clock, floor)
    if c.log is not None and c.log.exists():
        log.info("control_log_replayed", file=str(c.log), actions=control.replay(c.log))
    if c.log is not None and c.enabled:
        try:  # the actions to come are appended there: say now if that cannot be
            c.log.open("ab").close()
        except OSError as exc:
            raise ConfigError(
                f"--control-log / SYNTHSTREAM_CONTROL__LOG: cannot write {c.log} "
                f"({exc.strerror or exc}); accepted: a writable file"
            ) from None
    control.log_path = c.log
    control.on_change = nudge
    if not c.enabled:
        return None
    return handler(control, c.token.get_secret_value() if c.token else None)


PAGE = Path(__file__).parent / "data" / "control.html"
_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden",
           404: "404 Not Found", 405: "405 Method Not Allowed", 415: "415 Unsupported Media Type",
           422: "422 Unprocessable Entity", 503: "503 Service Unavailable"}  # fmt: skip
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def handler(control: Control, token: str | None) -> Callable[..., tuple[str, str, bytes]]:
    """The HTTP side of ``control`` for ``MetricsServer``: the page at /control (it asks for
    the token itself), the state, and the POSTs, each refused with one line in JSON."""
    page = PAGE.read_bytes()

    def respond(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, str, bytes]:
        if path in ("/control", "/control/"):
            if method not in ("GET", "HEAD"):
                return _error(405, "/control: GET only")
            return _STATUS[200], "text/html; charset=utf-8", page
        if not authorised(headers, token):
            return _error(401, "authorization: accepted: Bearer <SYNTHSTREAM_CONTROL__TOKEN>")
        refused = foreign(headers, token)
        if refused:
            return _error(403, refused)
        parts = path.strip("/").split("/")
        try:
            if parts == ["control", "state"]:
                if method not in ("GET", "HEAD"):
                    return _error(405, "/control/state: GET only")
                return _STATUS[200], "application/json", encode(control.state())
            if len(parts) in (3, 4) and parts[1] == "streams" and parts[3:] in ([], ["events"]):
                if method != "POST":
                    return _error(405, f"{path}: POST only")
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    return _error(415, "content-type: accepted: application/json")
                try:
                    request = orjson.loads(body) if body.strip() else None
                except orjson.JSONDecodeError as exc:
                    return _error(400, f"body: not JSON ({exc}); accepted: a JSON object")
                act = control.set if len(parts) == 3 else control.start
                return _STATUS[200], "application/json", encode(act(parts[2], request))
        except RequestError as exc:
            return _error(exc.status, str(exc))
        return _error(404, f"{path}: try /control, /control/state, /control/streams/<stream>"
                      " or /control/streams/<stream>/events")  # fmt: skip

    return respond


def _error(status: int, message: str) -> tuple[str, str, bytes]:
    return _STATUS[status], "application/json", encode({"error": message})


def authorised(headers: dict[str, str], token: str | None) -> bool:
    """A request carries ``Authorization: Bearer <token>`` (none needed without a token)."""
    if not token:
        return True
    given = headers.get("authorization", "")  # (latin-1 as read: compared as bytes)
    return given.startswith("Bearer ") and hmac.compare_digest(
        given[7:].strip().encode("latin-1", "replace"), token.encode()
    )


def foreign(headers: dict[str, str], token: str | None) -> str | None:
    """Why a request from another site is refused, or None. A browser says where a request
    comes from (``Origin``): only the page this port serves may call the API. Without a token
    (loopback only) the ``Host`` must name loopback too, so a page of another site cannot reach
    the API through a name of its own that resolves to 127.0.0.1 (DNS rebinding)."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return f"origin: {origin[:100]} is another site; accepted: this port's own page"
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not token and host and name.lower() not in _LOOPBACK_NAMES and not name.startswith("127."):
        return (f"host: {host[:100]} is not loopback; accepted without a token: localhost, "
                "127.0.0.1 or [::1] (SYNTHSTREAM_CONTROL__TOKEN lets other names in)")  # fmt: skip
    return None


def encode(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_INDENT_2)
