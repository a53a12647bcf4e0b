"""Live ticks take their records from what the generators made ahead: the same records, bytes
and order, tick by tick, as when every tick generates for itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.generators import Lookahead, Source
from producer.streams import build_stream
from tests.test_calendar import STREAMS

START = round(datetime(2024, 3, 31, 0, 59, 50, tzinfo=UTC).timestamp() * 1000)  # Europe's DST
# Live-like rates, so that most ticks carry a record or a few.
LIVE_RATES: dict[str, dict[str, Any]] = {
    "bme280": {"bme280": {"devices": 200, "rate": {"interval_s": 1}}},
    "air_quality": {"air_quality": {"rate": {"total_per_s": 33}}},
    "ecommerce": {"ecommerce": {**STREAMS["ecommerce"]["ecommerce"],
                                "transactions_per_hour": 36_000,
                                "user_events_per_hour": 360_000}},
}  # fmt: skip


def source(name: str) -> Source:
    tree = {"streams": name, "seed": 5, **STREAMS[name], **LIVE_RATES.get(name, {})}
    return build_stream(name, load_settings(tree, environ={})).source


def ticks(steps: list[int]) -> list[tuple[int, int]]:
    out, t = [], START
    for step in steps:
        out.append((t, t + step))
        t += step
    return out


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(sorted(STREAMS)),
    # 1-40 ms like live ticks, now and then a pause longer than the look-ahead.
    steps=st.lists(
        st.one_of(st.integers(1, 40), st.integers(900, 5_000)), min_size=50, max_size=400
    ),
    horizon=st.sampled_from([20, 1_000, 7_000]),
)
def test_ticks_from_the_lookahead_equal_ticks_that_generate(
    name: str, steps: list[int], horizon: int
) -> None:
    plain, ahead = source(name), Lookahead(source(name), horizon)
    seen = 0
    for t0, t1 in ticks(steps):
        due = ahead.next_due(t0)
        want, got = plain.advance(t0, t1, None), ahead.advance(t0, t1, None)
        assert all(due <= int(b.time_ms.min()) for b in got.values()), "next_due: a lower bound"
        assert sorted(want) == sorted(got), (t0, t1)
        for channel, batch in want.items():
            schema = plain.channels[channel]
            assert encode_jsonl(schema, got[channel]) == encode_jsonl(schema, batch)
            assert np.array_equal(got[channel].time_ms, batch.time_ms)
            seen += len(batch)
    assert seen or name == "incidents"


def test_a_limit_keeps_the_earliest_records_as_the_source_does() -> None:
    plain, ahead = source("ecommerce"), Lookahead(source("ecommerce"), 60_000)
    want = plain.advance(START, START + 30_000, 25)
    got = ahead.advance(START, START + 30_000, 25)
    assert sum(len(b) for b in want.values()) == 25
    assert sorted(want) == sorted(got)
    for channel, batch in want.items():
        assert got[channel].message_ids().tolist() == batch.message_ids().tolist()
