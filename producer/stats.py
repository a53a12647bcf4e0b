"""``synthstream stats`` and ``synthstream catalog``: what the configured streams generate.

``stats`` plays the streams over a window of event time in memory (no sink, no faults) and
reports, per channel, how many records of which kind came out and the mean of each measure;
a domain adds its own figures (e-commerce: users and products by type, realised fraud rate).
``catalog`` writes the e-commerce dimension tables (users with names, e-mail and street
addresses; products) as JSON lines, so consumers can join the streams to them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from producer.config import Settings
from producer.errors import ConfigError, check_writable
from producer.records import KindCounts
from producer.streams import build_stream
from producer.timeline import HOUR_MS


def describe(settings: Settings, start_ms: int, hours: int) -> dict[str, Any]:
    from producer.app import iso

    end_ms = start_ms + hours * HOUR_MS
    report: dict[str, Any] = {}
    for name in settings.streams:
        source = build_stream(name, settings).source
        counts: Counter[str] = Counter()
        kinds = KindCounts()
        sums: dict[str, dict[str, float]] = {}
        t = start_ms
        while t < end_ms:
            for channel, batch in source.advance(t, min(t + HOUR_MS, end_ms), None).items():
                counts[channel] += len(batch)
                kinds.add(channel, source.channels[channel].kinds, batch)
                measures = sums.setdefault(channel, {})
                for column in source.channels[channel].measures:
                    values = batch.columns[column]
                    measures[column] = measures.get(column, 0.0) + float(np.nansum(values))
            t += HOUR_MS
        realised: dict[str, Any] = {}
        for channel in source.channels:
            n = counts[channel]
            mine = {k: v for (ch, k), v in kinds.counts.items() if ch == channel}
            realised[channel] = {
                "count": n,
                "per_hour": round(n / hours, 1),
                "kinds": {
                    k: {"count": v, "share": round(v / n, 4)} for k, v in sorted(mine.items())
                },
                "mean": {c: round(s / n, 4) for c, s in sums.get(channel, {}).items()} if n else {},
            }
        entry = {"window": [iso(start_ms), iso(end_ms)], "entities": source.entities(),
                 "realised": realised}  # fmt: skip
        extra = getattr(source, "describe", None)
        if extra is not None:
            extra(entry)
        report[name] = entry
    return report


def write_catalog(settings: Settings, folder: Path) -> dict[str, Any]:
    if "ecommerce" not in settings.streams:
        raise ConfigError(
            "catalog: only the ecommerce stream has a catalog; use --streams ecommerce"
        )
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
