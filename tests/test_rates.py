"""Rate models: windows partition the schedule; rates are exact; multipliers apply."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import rng
from producer.rates import FixedInterval, TotalRate
from producer.settings import RateSettings
from producer.timeline import HOUR_MS

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday


def fixed(n: int, interval: int, jitter: int = 0) -> FixedInterval:
    ids = np.arange(n, dtype=np.int64)
    return FixedInterval(ids, rng.combine(rng.text_key(1, "test"), ids), interval, jitter, 0.3)


def collect(model: FixedInterval | TotalRate, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    ents, times = [], []
    for a, b in itertools.pairwise(cuts):
        due = model.due(a, b)
        assert np.all(np.diff(due.time_ms) >= 0), "a window's records are in time order"
        assert np.all((due.time_ms >= a) & (due.time_ms < b))
        ents.append(due.entity)
        times.append(due.time_ms)
    return np.concatenate(ents), np.concatenate(times)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50),
    interval=st.integers(1, 20_000),
    jitter_share=st.floats(0, 0.49),
    splits=st.lists(st.integers(0, 60_000), max_size=20),
)
def test_fixed_interval_windows_partition_the_schedule(
    n: int, interval: int, jitter_share: float, splits: list[int]
) -> None:
    model = fixed(n, interval, int(interval * jitter_share))
    cuts = sorted({T0, T0 + 60_000, *(T0 + s for s in splits)})
    ent, t = collect(model, cuts)
    whole = model.due(T0, T0 + 60_000)
    assert np.array_equal(np.sort(ent * 10**13 + t), np.sort(whole.entity * 10**13 + whole.time_ms))
    # Every entity appears once per interval (+/- one at the window's edges).
    counts = np.bincount(ent, minlength=n)
    assert counts.min() >= 60_000 // interval - 1
    assert counts.max() <= -(-60_000 // interval) + 1


def test_fixed_interval_per_entity_times_are_increasing_and_spaced() -> None:
    model = fixed(100, 10_000, 2_000)
    due = model.due(T0, T0 + 3_600_000)
    for e in range(100):
        times = due.time_ms[due.entity == e]
        gaps = np.diff(times)
        assert gaps.min() > 10_000 - 2 * 2_000 - 1
        assert gaps.max() < 10_000 + 2 * 2_000 + 1
        assert times.size in (359, 360, 361)


def test_fixed_interval_spreads_phases_so_the_rate_is_steady() -> None:
    for n in (330, 1000, 4321):
        model = fixed(n, 10_000)
        per_second = [len(model.due(T0 + s * 1000, T0 + (s + 1) * 1000)) for s in range(60)]
        assert sum(per_second) == 6 * n
        assert max(per_second) - min(per_second) <= 3, "as many in every second, not bursts"
    # ... and a device's phase does not depend on which other devices exist.
    ids = np.array([5, 77], dtype=np.int64)
    some = FixedInterval(ids, rng.combine(rng.text_key(1, "test"), ids), 10_000, 0, 0.3)
    assert np.array_equal(
        some.due(T0, T0 + 10_000).time_ms,
        np.sort(fixed(100, 10_000).time_of(ids, np.full(2, T0 // 10_000))),
    )


@settings(max_examples=40, deadline=None)
@given(t=st.integers(T0, T0 + 10 * HOUR_MS), jitter=st.integers(0, 4_999))
def test_next_due_is_never_late(t: int, jitter: int) -> None:
    model = fixed(7, 10_000, jitter)
    nxt = model.next_due(t)
    assert nxt >= t
    assert len(model.due(t, nxt)) == 0, "nothing is due before next_due"


def total_rate(rate: float, n: int = 1000, **kw: object) -> TotalRate:
    s = RateSettings.model_validate({"total_per_s": rate, **kw})
    return TotalRate(rng.text_key(1, "t"), n, np.arange(n), s, 1.0)


def test_total_rate_is_exact_over_a_minute() -> None:
    for rate in (33.0, 1000.0, 20_000.0):
        model = total_rate(rate)
        start = T0 + 1234
        n = len(model.due(start, start + 60_000))
        assert abs(n - rate * 60) <= 2, (rate, n)


@settings(max_examples=30, deadline=None)
@given(splits=st.lists(st.integers(0, 2 * HOUR_MS), max_size=15))
def test_total_rate_windows_partition(splits: list[int]) -> None:
    model = total_rate(5.0, n=20)
    cuts = sorted({T0 + HOUR_MS // 2, T0 + HOUR_MS // 2 + 2 * HOUR_MS,
                   *(T0 + HOUR_MS // 2 + s for s in splits)})  # fmt: skip
    ent, t = collect(model, cuts)
    whole = model.due(cuts[0], cuts[-1])
    assert np.array_equal(ent, whole.entity)
    assert np.array_equal(t, whole.time_ms)


def test_total_rate_multipliers_scale_hours_and_scenarios() -> None:
    hours = [1.0] * 24
    hours[8] = 2.0
    model = total_rate(10.0, hour_multipliers=hours)
    assert len(model.due(T0 + 7 * HOUR_MS, T0 + 8 * HOUR_MS)) in range(35_999, 36_002)
    assert len(model.due(T0 + 8 * HOUR_MS, T0 + 9 * HOUR_MS)) in range(71_999, 72_002)
    weekend = total_rate(10.0, weekday_multipliers=[1, 1, 1, 1, 1, 0.5, 0.5])
    saturday = T0 + 5 * 24 * HOUR_MS
    assert weekend.rate_in_hour(saturday // HOUR_MS) == 5.0
    assert weekend.rate_in_hour(T0 // HOUR_MS) == 10.0
    assert total_rate(10.0, scenario="peak").rate_in_hour(0) == 30.0
    assert total_rate(10.0, scenario="maintenance").rate_in_hour(0) == 1.0
    december = total_rate(10.0, month_multipliers=[1] * 11 + [3])
    assert december.rate_in_hour((T0 - 1) // HOUR_MS) == 30.0  # 2023-12-31T23:00Z


def test_dated_events_scale_the_hours_they_cover_over_new_year() -> None:
    events = [{"name": "countdown", "start": "2023-12-31T22:00:00", "end": "2024-01-01T02:00:00",
               "multiplier": 4}, {"name": "hangover", "start": "2024-01-01T01:00:00+00:00",
               "end": "2024-01-01T01:30:00Z", "multiplier": 0.5}]  # fmt: skip
    model = total_rate(10.0, events=events)
    hour = T0 // HOUR_MS  # 2024-01-01T00:00Z
    assert [model.rate_in_hour(h) for h in range(hour - 3, hour + 3)] == [
        10.0,
        40.0,
        40.0,
        40.0,
        20.0,
        10.0,
    ]  # 21:00 ordinary; 22:00-01:00 the countdown; 01:00 both; 02:00 over
    assert len(model.due(T0, T0 + HOUR_MS)) in range(143_999, 144_002)


def test_total_rate_shards_partition_the_arrivals() -> None:
    s = RateSettings(total_per_s=50.0)
    whole = TotalRate(7, 10, np.arange(10), s, 1.0).due(T0, T0 + 60_000)
    parts = []
    for shard in ([0, 2, 4, 6, 8], [1, 3, 5, 7, 9]):
        local = np.full(10, -1)
        local[shard] = np.arange(5)
        due = TotalRate(7, 10, local, s, 0.5).due(T0, T0 + 60_000)
        parts.append((np.asarray(shard)[due.entity], due.time_ms))
    merged = np.concatenate([p[1] * 100 + p[0] for p in parts])
    assert np.array_equal(np.sort(merged), np.sort(whole.time_ms * 100 + whole.entity))
