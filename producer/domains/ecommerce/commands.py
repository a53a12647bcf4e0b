"""``synthstream catalog``: the shop's users (names, e-mail, street) and products as JSON
lines, so consumers can join the streams to them (``EcommerceSettings.commands``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from producer.config import Settings, load_settings
from producer.errors import check_writable
from producer.plugins import Command, Invocation
from producer.streams import build_stream

EXAMPLES = """examples:
  synthstream catalog                                 users and products to data/catalog/
  synthstream catalog --out cat --seed 7"""


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="destination folder (default: data/catalog)")
    p.add_argument("--streams", help=argparse.SUPPRESS)  # (only the shop has a catalog)


def write_catalog(settings: Settings, folder: Path) -> dict[str, Any]:
    from producer.domains.ecommerce.model import EcommerceSource

    source = build_stream("ecommerce", settings).source
    assert isinstance(source, EcommerceSource)
    check_writable(folder, "--out")
    users = folder / "users.jsonl"
    with users.open("wb") as out:
        for user in range(source.users.count):
            out.write(orjson.dumps(source.users.profile(user, settings.seed),
                                   option=orjson.OPT_APPEND_NEWLINE))  # fmt: skip
    products = folder / "products.jsonl"
    with products.open("wb") as out:
        for row in source.products.rows():
            out.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
    return {"users": str(users), "products": str(products)}


def run(call: Invocation) -> int:
    settings = load_settings({**call.overrides, "streams": "ecommerce"}, flags=call.flags)
    folder = Path(call.args.out or "data/catalog")
    print(orjson.dumps(write_catalog(settings, folder), option=orjson.OPT_INDENT_2).decode())
    return 0


CATALOG = Command(
    "catalog", "write the e-commerce users and products as JSON lines", arguments, run,
    EXAMPLES,
)  # fmt: skip
