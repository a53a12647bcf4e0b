"""``synthstream ctl``: live control from a shell, over the API of a running producer."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from producer.errors import ConfigError

USAGE = """examples:
  synthstream ctl state                               every stream: rates, multiplier, episodes
  synthstream ctl set bme280 rate_multiplier=3        three times the traffic, from the next tick
  synthstream ctl set ecommerce scenario=peak
  synthstream ctl set air_quality paused=true
  synthstream ctl event bme280 outage entities=10 seconds=60
  synthstream ctl event ecommerce fraud_burst share=0.5 seconds=300
  synthstream ctl event bme280 weather type=storm seconds=600
  synthstream ctl event air_quality pollution factor=8 entities=3
  synthstream ctl event incidents major_incident type=HAZMAT units=15"""


def value(text: str) -> Any:
    """``true``/``false``, a number, or the text itself."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def fields(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"ctl: {pair!r}: accepted: NAME=VALUE")
        out[name] = value(text)
    return out


def run(url: str, token: str | None, action: str, args: list[str]) -> int:
    """Call the API; print its JSON answer. Status 2 when it refuses the request (its line
    says why), 1 when it cannot be reached."""
    token = token or os.environ.get("SYNTHSTREAM_CONTROL__TOKEN") or None
    if action == "state":
        if args:
            raise ConfigError("ctl state: takes no arguments")
        method, path, body = "GET", "/control/state", None
    elif action == "set":
        if len(args) < 2:
            raise ConfigError("ctl set: accepted: STREAM NAME=VALUE [NAME=VALUE ...]")
        method, path, body = "POST", f"/control/streams/{args[0]}", fields(args[1:])
    elif action == "event":
        if len(args) < 2:
            raise ConfigError("ctl event: accepted: STREAM KIND [NAME=VALUE ...]")
        request = {"kind": args[1], **fields(args[2:])}
        method, path, body = "POST", f"/control/streams/{args[0]}/events", request
    else:
        raise ConfigError(f"ctl: {action!r}: accepted: state, set, event")
    data = None if body is None else json.dumps(body).encode()
    request_ = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    request_.add_header("Content-Type", "application/json")
    if token:
        request_.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request_, timeout=10) as response:
            sys.stdout.write(response.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        print(f"synthstream: error: {message} (HTTP {exc.code})", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"synthstream: error: {url}: not reachable ({reason}); is a run with "
              "SYNTHSTREAM_CONTROL__ENABLED=true listening there?", file=sys.stderr)  # fmt: skip
        return 1
