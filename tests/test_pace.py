"""Rate models under live control's pace: windows still partition the records, nothing before
the first change moves, a multiplier multiplies, a pause stops, next_due stays a lower bound,
over New Year, a leap day and a DST change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import rng
from producer.rates import NEVER, FixedInterval, Pace, RateModel, TotalRate
from producer.settings import RateSettings

HOUR = 3_600_000
# New Year, the end of a leap day, the night Europe's clocks go forward
BASES = [
    round(datetime(2023, 12, 31, 23, tzinfo=UTC).timestamp() * 1000),
    round(datetime(2024, 2, 29, 23, tzinfo=UTC).timestamp() * 1000),
    round(datetime(2024, 3, 31, 0, 30, tzinfo=UTC).timestamp() * 1000),
]
FACTORS = st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 7.3])
CHANGES = st.lists(st.tuples(st.integers(0, 2 * HOUR), FACTORS), max_size=4)


def pace_of(base: int, changes: list[tuple[int, float]]) -> Pace:
    pace = Pace()
    for offset, factor in sorted(changes):
        pace.set(base + offset, factor)
    return pace


def fixed(pace: Pace | None) -> FixedInterval:
    ids = np.arange(40, dtype=np.int64)
    keys = rng.combine(rng.text_key(1, "pace"), ids)
    return FixedInterval(ids, keys, 10_000, 2_000, 0.3, pace=pace)


def total(pace: Pace | None) -> TotalRate:
    local = np.arange(50, dtype=np.int64)
    return TotalRate(rng.text_key(1, "pace"), 50, local, RateSettings(total_per_s=3.3), 1.0, pace)


def split(model: RateModel, t0: int, t1: int, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    edges = [t0, *sorted({t0 + c for c in cuts if 0 < c < t1 - t0}), t1]
    parts = [model.due(a, b) for a, b in itertools.pairwise(edges)]
    return (np.concatenate([p.entity for p in parts]), np.concatenate([p.time_ms for p in parts]))


@pytest.mark.parametrize("make", [fixed, total], ids=["fixed_interval", "total_rate"])
@settings(max_examples=60, deadline=None)
@given(base=st.sampled_from(BASES), changes=CHANGES,
       cuts=st.lists(st.integers(1, 3 * HOUR - 1), max_size=10))  # fmt: skip
def test_windows_partition_and_the_past_does_not_move(
    make: type, base: int, changes: list[tuple[int, float]], cuts: list[int]
) -> None:
    pace = pace_of(base, changes)
    model, plain = make(pace), make(None)
    t0, t1 = base - HOUR // 2, base + 3 * HOUR
    whole = model.due(t0, t1)
    entity, times = split(model, t0, t1, cuts)
    assert np.array_equal(entity, whole.entity)
    assert np.array_equal(times, whole.time_ms)
    assert np.all(np.diff(whole.time_ms) >= 0)
    assert np.all((whole.time_ms >= t0) & (whole.time_ms < t1))
    first = pace.at[0] if pace.at else t1
    before, unpaced = model.due(t0, first), plain.due(t0, first)
    assert np.array_equal(before.time_ms, unpaced.time_ms)
    assert np.array_equal(before.entity, unpaced.entity)


@pytest.mark.parametrize("make", [fixed, total], ids=["fixed_interval", "total_rate"])
@settings(max_examples=60, deadline=None)
@given(base=st.sampled_from(BASES), changes=CHANGES, at=st.integers(-HOUR, 3 * HOUR))
def test_next_due_is_a_lower_bound_of_the_next_record(
    make: type, base: int, changes: list[tuple[int, float]], at: int
) -> None:
    model = make(pace_of(base, changes))
    t = base + at
    nxt = model.next_due(t)
    due = model.due(t, t + 4 * HOUR)
    assert nxt >= t
    if len(due):
        assert nxt <= int(due.time_ms[0])


@pytest.mark.parametrize("factor", [0.5, 3.0, 7.3])
def test_a_multiplier_multiplies_the_records_of_each_entity(factor: float) -> None:
    base = BASES[1]
    pace = pace_of(base, [(0, factor)])
    paced, plain = fixed(pace), fixed(None)
    got = paced.due(base, base + HOUR)
    want = plain.due(base, base + HOUR)
    assert len(got) == pytest.approx(len(want) * factor, abs=40)
    per_entity = np.bincount(got.entity, minlength=40)
    assert per_entity.min() >= int(360 * factor) - 1  # every device, not some of them
    assert paced.target_rate(base) == pytest.approx(plain.target_rate(base) * factor)
    rate = total(pace)
    assert len(rate.due(base, base + HOUR)) == pytest.approx(3.3 * 3600 * factor, abs=2)


def test_a_pause_stops_every_record_and_resuming_continues() -> None:
    base = BASES[0]
    pace = pace_of(base, [(0, 0.0), (10 * 60_000, 1.0)])
    for model in (fixed(pace), total(pace)):
        assert not len(model.due(base, base + 10 * 60_000))
        assert model.next_due(base) >= base + 10 * 60_000
        assert len(model.due(base + 10 * 60_000, base + 20 * 60_000))
    forever = pace_of(base, [(0, 0.0)])
    assert fixed(forever).next_due(base + 5) == NEVER
    assert total(forever).next_due(base + 5) == NEVER


def test_a_pace_refuses_to_go_back_or_to_be_negative() -> None:
    pace = pace_of(BASES[0], [(1000, 2.0)])
    with pytest.raises(ValueError, match="forward"):
        pace.set(BASES[0], 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        pace.set(BASES[0] + 2000, -1.0)
    pace.set(BASES[0] + 1000, 4.0)  # the same instant: the last word counts
    assert pace.factor_at(BASES[0] + 1000) == 4.0
    assert pace.factor_at(BASES[0]) == 1.0


def incident_arrivals(pace: Pace | None) -> Any:
    from producer.domains.incidents.city import City
    from producer.domains.incidents.model import arrivals_for

    arrivals = arrivals_for(City("San Diego", 25, 1), 1, 40.0)
    arrivals.pace = pace
    return arrivals


def reports(arrivals: Any, t0: int, t1: int) -> list[tuple[int, int, int]]:
    """(report time, year, number) of the incidents reported in [t0, t1), in time order."""
    out = []
    for year, seq in arrivals.between(t0, t1):
        times = arrivals.times(year, seq)
        out += [(int(t), year, int(s)) for t, s in zip(times, seq, strict=True)]
    return sorted(out)


@settings(max_examples=25, deadline=None)
@given(base=st.sampled_from(BASES), changes=CHANGES,
       cuts=st.lists(st.integers(1, 3 * HOUR - 1), max_size=6))  # fmt: skip
def test_incident_reports_under_a_pace_partition_and_the_past_does_not_move(
    base: int, changes: list[tuple[int, float]], cuts: list[int]
) -> None:
    pace = pace_of(base, changes)
    steered, plain = incident_arrivals(pace), incident_arrivals(None)
    t0, t1 = base - HOUR // 2, base + 3 * HOUR
    whole = reports(steered, t0, t1)
    edges = [t0, *sorted({t0 + c for c in cuts if 0 < c < t1 - t0}), t1]
    assert [r for a, b in itertools.pairwise(edges) for r in reports(steered, a, b)] == whole
    first = pace.at[0] if pace.at else t1
    assert reports(steered, t0, first) == reports(plain, t0, first)
    numbers = [(year, seq) for _, year, seq in whole]
    assert len(set(numbers)) == len(numbers)  # each number once, in order within a year
    for year in {y for y, _ in numbers}:
        mine = [s for y, s in numbers if y == year]
        assert mine == sorted(mine)


def test_incidents_triple_under_x3_and_stop_while_paused() -> None:
    base = BASES[1]
    plain = len(reports(incident_arrivals(None), base, base + 6 * HOUR))
    tripled = len(reports(incident_arrivals(pace_of(base, [(0, 3.0)])), base, base + 6 * HOUR))
    assert tripled == pytest.approx(3 * plain, abs=3)
    paused = incident_arrivals(pace_of(base, [(0, 0.0), (2 * HOUR, 1.0)]))
    assert not reports(paused, base, base + 2 * HOUR)
    assert reports(paused, base + 2 * HOUR, base + 4 * HOUR)
