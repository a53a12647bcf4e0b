"""The ``synthstream`` command (also ``python -m producer``).

Exit status: 0 everything generated was delivered (or dropped on purpose by fault
injection); 1 some records were not delivered (failed or cut off by the shutdown deadline),
or a sink is unreachable (``check``); 2 bad input: one line on stderr naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from producer import __version__, early
from producer.clock import Clock, WallClock
from producer.config import Settings, env_example, env_names, load_settings
from producer.errors import ConfigError
from producer.plugins import Command, Invocation, Option, catalogue, sink_kinds, stream_kinds
from producer.settings import parse_time
from producer.timeline import HOUR_MS

# Flag -> (dotted setting, how to turn the flag's value into the setting's)
_FLAGS: dict[str, str] = {
    "--profile": "profile",
    "--streams": "streams",
    "--out": "out",
    "--duration": "duration_s",
    "--max-records": "max_records",
    "--seed": "seed",
    "--shard": "shard",
    "--metrics-port": "metrics.port",
    "--log-format": "log.format",
    "--start": "backfill.start",
    "--end": "backfill.end",
    "--speed": "backfill.speed",
    "--wait-for-sinks": "wait_for_sinks_s",
    "--workers": "workers",
    "--control-log": "control.log",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the message names the flag and what it accepts.
        self.exit(2, f"synthstream: error: {message}\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; wide enough for a flag and its default on one line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


_EXAMPLES = {
    "run": """examples:
  synthstream run                                     live BME280 readings to stdout (Ctrl-C)
  synthstream run --sinks file --out data/out --duration 60
  synthstream run --backfill --start 2024-01-01 --end 2024-01-02 --max-records 1000 --seed 7
  synthstream run --backfill --start 2024-01-01 --end 2024-01-02 --speed 60   (24 minutes)
  synthstream run --streams ecommerce --sinks kafka   the shop's five topics
  synthstream run --shard 0/2                         this replica's half of the entities
  synthstream run --workers auto --sinks kafka        a process per core, one /metrics""",
    "check": """examples:
  synthstream check                                   settings valid, every sink reachable?
  synthstream check --streams ecommerce --sinks kafka""",
    "stats": """examples:
  synthstream stats --streams ecommerce --hours 24    a day in memory: counts, kinds, mix
  synthstream stats --streams air_quality --start 2024-01-01 --hours 168""",
    "list": """examples:
  synthstream list                                    stream and sink kinds, plugins included
  synthstream list --format json""",
    "config": """examples:
  synthstream config                                  the effective settings, as JSON
  synthstream config --env-names                      every SYNTHSTREAM_* variable""",
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synthstream",
        description="Realistic synthetic streaming data: live, or backfilled in event time.",
        epilog="Settings: every flag has a SYNTHSTREAM_* variable (synthstream config "
        "--env-names); flags win over the environment, which wins over the profile.",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"synthstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def sub(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                                   epilog=_EXAMPLES.get(name), formatter_class=_Help)  # fmt: skip

    def base(p: argparse.ArgumentParser, seed: str = "same seed, same records") -> None:
        p.add_argument("--profile", help="profiles/<name>.env (development, production) or a "
                       "path (default: development)")  # fmt: skip
        p.add_argument("--seed", help=f"random seed: {seed} (default: 42)")
        p.add_argument("--log-format", help="console, json or auto (default: auto: console on a "
                       "terminal)")  # fmt: skip

    def streams(p: argparse.ArgumentParser) -> None:
        p.add_argument("--streams", help=f"comma list of streams: {', '.join(stream_kinds())} "
                       "(default: bme280)")  # fmt: skip
        p.add_argument("--shard", metavar="I/N", help="keep the entities of shard I of N, or "
                       "auto/N in a container (default: 0/1)")  # fmt: skip
        p.add_argument("--spec", action="append", metavar="FILE", help="a spec file declaring "
                       "streams of your own (repeatable; its streams run unless --streams "
                       "names others)")  # fmt: skip

    def delivery(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sinks", help=f"comma list of sinks for every stream: "
                       f"{', '.join(sink_kinds())} (default: stdout)")  # fmt: skip
        p.add_argument("--out", metavar="DIR", help="folder of the run's files: the file "
                       "sink's and the ground truth's (default: data/out)")  # fmt: skip
        for option in kind_options():  # the kinds' own flags (a preset such as --dataset)
            p.add_argument(option.flag, metavar=option.metavar, help=option.help,
                           choices=list(option.choices) if option.choices else None)  # fmt: skip

    run = sub("run", "stream records (live, or --backfill)")
    base(run)
    streams(run)
    delivery(run)
    run.add_argument("--duration", metavar="SECONDS",
                     help="stop a live run after this long (default: until Ctrl-C)")  # fmt: skip
    run.add_argument("--max-records", metavar="N",
                     help="stop after the streams made N records (before faults: duplicates "
                     "come on top, dropped ones count)")  # fmt: skip
    run.add_argument("--metrics-port", metavar="PORT",
                     help="port of /metrics and /healthz, 0: any free (default: 9108)")  # fmt: skip
    run.add_argument("--wait-for-sinks", metavar="SECONDS",
                     help="wait this long for unreachable sinks at start (default: 0: fail "
                     "at once with status 1)")  # fmt: skip
    run.add_argument("--workers", metavar="N", help="N processes, each a shard of the "
                     "entities, under this one (one /metrics, one summary); auto: one per "
                     "usable core (default: 1)")  # fmt: skip
    run.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)  # set by --workers
    run.add_argument("--control-log", metavar="FILE", help="apply this control log's actions "
                     "at their event times (a backfill reproduces a steered run); with "
                     "SYNTHSTREAM_CONTROL__ENABLED=true the API appends to it")  # fmt: skip
    run.add_argument("--backfill", action="store_true", help="run over a historical window")
    run.add_argument("--start", metavar="ISO", help="backfill window start (UTC if no zone)")
    run.add_argument("--end", metavar="ISO", help="backfill window end (default: now)")
    run.add_argument("--speed", metavar="X", help="backfill at X times real time (default: as "
                     "fast as the sinks take it)")  # fmt: skip
    run.add_argument("--then-live", action="store_true", help="after the backfill, go on live")
    run.add_argument("--progress", choices=["auto", "on", "off"],
                     help="backfill progress bar (default: auto: on a terminal)")  # fmt: skip

    spec = sub("spec", "check spec files, preview their records, or print the format's schema")
    spec.add_argument("action", choices=["check", "preview", "schema"],
                      help="check: errors as FILE:LINE:COL; preview: JSON lines; schema: a "
                      "JSON Schema of the format (for editors)")  # fmt: skip
    spec.add_argument("files", nargs="*", metavar="FILE", help="spec files (YAML)")
    spec.add_argument("-n", dest="preview_records", type=int, default=5, metavar="N",
                      help="records of each stream to preview (default: 5; no faults)")  # fmt: skip
    spec.add_argument("--seed", help="random seed: same seed, same records (default: 42)")
    spec.add_argument("--start", dest="preview_start", metavar="TIME",
                      help="preview from this event time, ISO 8601 (default: now)")  # fmt: skip

    from producer import ctl

    control = sub("ctl", "steer a running producer: its state, a stream's rate, scenario, "
                  "pause, or an episode now")  # fmt: skip
    control.epilog = ctl.USAGE
    control.add_argument(
        "action",
        choices=["state", "set", "event"],
        help="state; set STREAM NAME=VALUE...; event STREAM KIND NAME=VALUE...",
    )
    control.add_argument(
        "args",
        nargs="*",
        metavar="ARG",
        help="the stream, then NAME=VALUE "
        "(rate_multiplier, scenario, paused; an event's kind and fields)",
    )
    control.add_argument(
        "--url",
        help="the producer's metrics port (default: the one run with control on this "
        "machine, else http://127.0.0.1:9108)",
    )
    control.add_argument("--token", help="bearer token (default: $SYNTHSTREAM_CONTROL__TOKEN)")

    kinds = sub("list", "list the stream and sink kinds, with their settings' prefix")
    kinds.add_argument("--format", dest="list_format", choices=["text", "json"], default="text",
                       help="text or json (default: text)")  # fmt: skip

    check = sub("check", "validate settings and try every sink")
    base(check)
    streams(check)
    delivery(check)

    stats = sub("stats", "generate a window in memory and report counts, kinds and mix")
    base(stats)
    streams(stats)
    stats.add_argument("--hours", type=int, default=24, help="hours of event time (default: 24)")
    stats.add_argument("--start", dest="stats_start", metavar="ISO",
                       help="window start (default: the last --hours before now)")  # fmt: skip

    for command in kind_commands():  # the kinds' own commands (the incidents tables)
        own = sub(command.name, command.help)
        own.epilog = command.examples or None
        base(own)
        command.arguments(own)

    config = sub("config", "print the effective settings or every variable")
    base(config)
    streams(config)
    delivery(config)
    config.add_argument(
        "--env-names", action="store_true", help="list every SYNTHSTREAM_* variable"
    )
    config.add_argument(
        "--env-example", action="store_true", help="print .env.example (every setting, commented)"
    )
    return parser


def _set(tree: dict[str, Any], dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _overrides(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    tree: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for flag, dotted in _FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            _set(tree, dotted, value)
            flags[dotted] = flag
    if getattr(args, "spec", None):
        tree["specs"] = list(args.spec)
        flags["specs"] = "--spec"
    if getattr(args, "sinks", None) is not None:
        for stream in stream_kinds():
            _set(tree, f"{stream}.sinks", args.sinks)
            flags[f"{stream}.sinks"] = "--sinks"
        tree["specs_sinks"] = args.sinks
        flags["specs_sinks"] = "--sinks"
    if getattr(args, "backfill", False):
        _set(tree, "backfill.enabled", True)
        flags["backfill"] = "--backfill"
    if getattr(args, "then_live", False):
        _set(tree, "backfill.then_live", True)
    if getattr(args, "progress", None):
        _set(tree, "backfill.progress", args.progress)
    for option in kind_options():
        value = getattr(args, _dest(option.flag), None)
        if value is not None:
            option.apply(value, tree, flags)
    backfilling = bool(tree.get("backfill", {}).get("enabled"))
    for flag in ("--start", "--end", "--speed", "--then-live"):
        if getattr(args, _dest(flag), None) not in (None, False) and not backfilling:
            raise ConfigError(f"{flag} needs --backfill")
    return tree, flags


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def kind_options() -> list[Option]:
    """The flags the registered kinds add to run, check and config (each flag once)."""
    found: dict[str, Option] = {}
    options = [o for kind in stream_kinds().values() for o in kind.options()]
    options += [o for kind in sink_kinds().values() for o in kind.options()]
    for option in options:
        found.setdefault(option.flag, option)
    return list(found.values())


def kind_commands() -> list[Command]:
    """The commands the registered stream kinds add (each name once)."""
    found: dict[str, Command] = {}
    for kind in stream_kinds().values():
        for command in kind.commands():
            found.setdefault(command.name, command)
    return list(found.values())


def _check(settings: Settings) -> int:
    from producer.app import build_sinks
    from producer.logs import quiet

    async def probe() -> int:
        names = [s for name in settings.streams for s in settings.stream(name).sinks]
        bad = 0
        for name, sink in build_sinks(settings, names).items():
            try:
                with quiet("aiokafka", "botocore", "httpx"):  # (what they say, we say once)
                    detail = await sink.check()
                print(f"{name}: reachable ({detail})")
            except Exception as exc:
                bad += 1
                hint = getattr(exc, "hint", None)
                print(f"{name}: NOT reachable ({exc or type(exc).__name__})"
                      + (f"; {hint}" if hint else ""))  # fmt: skip
            finally:
                await sink.aclose()
        print(f"settings: valid (profile {settings.profile}, streams {','.join(settings.streams)})")
        return 1 if bad else 0

    return asyncio.run(probe())


def orjson_dumps(value: object) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _stats(settings: Settings, start: str | None, hours: int, clock: Clock) -> int:
    from producer.stats import describe

    if hours < 1:
        raise ConfigError(f"--hours: needs a whole number of hours >= 1, got {hours}")
    if start is None:
        start_ms = (clock.now_ms() // HOUR_MS - hours) * HOUR_MS
    else:
        start_ms = int(parse_time(start, "--start").timestamp() * 1000)
    print(orjson_dumps(describe(settings, start_ms, hours)))
    return 0


def _list(fmt: str) -> int:
    kinds = catalogue()
    if fmt == "json":
        print(orjson_dumps(kinds))
        return 0
    for section in ("streams", "sinks"):
        print(f"{section}:")
        for kind in kinds[section]:
            print(f"  {kind['name']:<14} {kind['description']}  ({kind['settings']}*)")
    return 0


def _spec(args: argparse.Namespace, clock: Clock) -> int:
    """``spec check``: each file's streams or its first error; ``spec preview``: records."""
    from producer.specs.format import json_schema
    from producer.specs.loading import load_spec

    if args.action == "schema":
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
        return 0
    if not args.files:
        raise ConfigError(f"spec {args.action}: give one or more spec files (FILE ...)")
    if args.action == "check":
        for path in args.files:
            spec = load_spec(Path(path))
            names = ", ".join(spec.streams)
            print(f"{path}: ok: {len(spec.streams)} stream(s): {names}")
        return 0
    from producer.encoding import json_documents
    from producer.streams import build_stream

    tree: dict[str, Any] = {"specs": list(args.files)}
    if args.seed is not None:
        tree["seed"] = args.seed
    settings = load_settings(tree, flags={"specs": "FILE", "seed": "--seed"})
    start = clock.now_ms() // HOUR_MS * HOUR_MS
    if args.preview_start is not None:
        start = round(parse_time(args.preview_start, "--start").timestamp() * 1000)
    for name in settings.streams:
        source = build_stream(name, settings, start).source
        # Windows from 10 ms, doubling up to an hour: what is made is about what is printed,
        # whether the stream makes a million records a second or one a day.
        left, t, step, horizon = args.preview_records, start, 10, start + 366 * 24 * HOUR_MS
        while left > 0 and t < horizon:  # a year at most: a rate may be low
            end = min(t + step, horizon)
            for channel, batch in source.advance(t, end, left).items():
                for doc in json_documents(source.channels[channel], batch):
                    sys.stdout.write(doc.decode() + "\n")
                left -= len(batch)
            t, step = end, min(step * 2, HOUR_MS)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command != "run":  # (a run takes the stops that came early: producer.root)
        early.release()
    clock = WallClock()  # the one place a command learns what time it is
    if args.command is None:
        _parser().print_help(sys.stderr)
        return 2
    try:
        if args.command == "list":
            return _list(args.list_format)
        if args.command == "spec":
            return _spec(args, clock)
        if args.command == "ctl":
            from producer import ctl
            from producer.runs import url_of_local_run

            return ctl.run(args.url or url_of_local_run(), args.token, args.action, args.args)
        if args.command == "config" and args.env_names:
            print("\n".join(env_names()))
            return 0
        if args.command == "config" and args.env_example:
            print(env_example(), end="")
            return 0
        overrides, flags = _overrides(args)
        for command in kind_commands():
            if args.command == command.name:
                return command.run(Invocation(args, overrides, flags, clock))
        settings = load_settings(overrides, flags=flags)
        if args.command == "config":
            import orjson

            print(orjson.dumps(settings.redacted(), option=orjson.OPT_INDENT_2).decode())
            return 0
        if args.command == "check":
            return _check(settings)
        if args.command == "stats":
            return _stats(settings, args.stats_start, args.hours, clock)
        if args.command != "run" and settings.worker_count > 1:
            raise ConfigError("--workers / SYNTHSTREAM_WORKERS: only run has workers")
        from producer import root

        return root.run(settings, clock, argv, getattr(args, "worker_fd", None))
    except ConfigError as exc:
        print(f"synthstream: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before the loop installed its handlers
        return 130
    except BrokenPipeError:  # `synthstream list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
