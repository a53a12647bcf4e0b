"""``synthstream incidents``: the fire/EMS tables (stations, incidents, units, assets, notes),
the incidents kind's own command (``IncidentsSettings.commands``)."""

from __future__ import annotations

import argparse
import sys

import orjson

from producer.config import load_settings
from producer.plugins import Command, Invocation

EXAMPLES = """examples:
  synthstream incidents                               10,000 incidents, 90 days to now, CSV
  synthstream incidents --incident-count 1000000 --output-format parquet
  synthstream incidents --start-datetime 2024-01-15T00:00:00Z --window-days 30 --seed 7"""

# Flag -> the incidents setting it sets.
SETTING_FLAGS = {
    "--station-count": "stations", "--city": "city", "--units-min": "units_min",
    "--units-max": "units_max", "--assets-probability": "assets_probability",
    "--notes-probability": "notes_probability", "--geohash-precision": "geohash_precision",
}  # fmt: skip


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="data/generated",
                   help="destination folder (default: data/generated)")  # fmt: skip
    p.add_argument("--incident-count", type=int, default=10_000,
                   help="incidents in the window (default: 10000)")  # fmt: skip
    p.add_argument("--station-count", help="fire stations (default: 25)")
    p.add_argument("--city", help="a city of producer/data/cities.csv (default: San Diego)")
    p.add_argument("--output-format", choices=["csv", "parquet"], default="csv",
                   help="file format (default: csv)")  # fmt: skip
    p.add_argument("--window-days", type=float, default=90,
                   help="days before the window's end (default: 90)")  # fmt: skip
    p.add_argument(
        "--start-datetime", "--window-end", dest="start_datetime", metavar="ISO",
        help="end of the window (the seed's name for it; UTC if no zone; default: now)",
    )  # fmt: skip
    for table in ("units", "assets", "notes"):
        p.add_argument(
            f"--include-{table}", action=argparse.BooleanOptionalAction, default=True,
            help=f"write incident_{table} (default: yes)",
        )  # fmt: skip
    p.add_argument("--units-min", help="dispatched units per incident, least (default: 1)")
    p.add_argument("--units-max", help="dispatched units per incident, most (default: 3)")
    p.add_argument("--assets-probability", help="chance of asset records (default: 0.35)")
    p.add_argument("--notes-probability", help="chance of note records (default: 0.55)")
    p.add_argument("--geohash-precision", help="geohash characters, 3-12 (default: 8)")
    p.add_argument("--verbose", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar (default: yes)")  # fmt: skip


def run(call: Invocation) -> int:
    from producer import logs
    from producer.domains.incidents.tables import DataValidationError, plan_from, write_tables

    overrides, flags = dict(call.overrides), dict(call.flags)
    incidents = overrides.setdefault("incidents", {})
    for flag, name in SETTING_FLAGS.items():
        value = getattr(call.args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            incidents[name] = value
            flags[f"incidents.{name}"] = flag
    settings = load_settings(overrides, flags=flags)
    logs.configure(settings.log)
    try:
        summary = write_tables(plan_from(settings, call.args, call.clock.now_ms()), call.clock)
    except DataValidationError as exc:
        print(f"synthstream: validation failed: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


INCIDENTS = Command(
    "incidents", "write the fire/EMS tables: stations, incidents, units, assets, notes",
    arguments, run, EXAMPLES,
)  # fmt: skip
