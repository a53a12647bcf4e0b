"""``synthstream stats``: what the configured streams generate.

It plays the streams over a window of event time in memory (no sink, no faults) and reports,
per channel, how many records of which kind came out and the mean of each measure; a domain
adds its own figures (e-commerce: users and products by type, realised fraud rate).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from producer.config import Settings
from producer.records import KindCounts
from producer.streams import build_stream
from producer.timeline import HOUR_MS


def describe(settings: Settings, start_ms: int, hours: int) -> dict[str, Any]:
    from producer.app import iso

    end_ms = start_ms + hours * HOUR_MS
    report: dict[str, Any] = {}
    for name in settings.streams:
        source = build_stream(name, settings, start_ms).source
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
