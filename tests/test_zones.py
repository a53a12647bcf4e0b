"""Local time: the offset of each instant, checked against zoneinfo (the oracle) anywhere in
2000-2035 and to the millisecond around every change of a year's clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.zones import ZoneTable, day_table

# North and south, whole, half and quarter hours, zones that dropped or changed their rules.
ZONES = [
    "America/Los_Angeles",
    "Pacific/Auckland",
    "Europe/London",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Africa/Casablanca",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Australia/Sydney",
    "America/Santiago",
    "UTC",
    "Asia/Tehran",
]
FIRST = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000)
LAST = int(datetime(2035, 1, 1, tzinfo=UTC).timestamp() * 1000)


def oracle(zone: str, t_ms: int) -> int:
    offset = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(ZONES) - 1), st.integers(FIRST, LAST)),
        min_size=1,
        max_size=200,
    )
)
def test_offsets_match_zoneinfo_anywhere(points: list[tuple[int, int]]) -> None:
    table = ZoneTable(ZONES)
    zone = np.array([z for z, _ in points], dtype=np.int64)
    t = np.array([t for _, t in points], dtype=np.int64)
    got = table.offsets_ms(zone, t).tolist()
    assert got == [oracle(ZONES[z], int(x)) for z, x in points]


@given(st.sampled_from(ZONES), st.integers(2019, 2030))
@settings(max_examples=40, deadline=None)
def test_every_change_of_a_year_is_found_to_the_millisecond(zone: str, year: int) -> None:
    first = (datetime(year, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    before, change, after = day_table(zone, first, first + 366)
    days = np.flatnonzero(before != after)
    # At most two changes a year (Morocco's Ramadan pause adds two more).
    assert days.size <= 4
    table = ZoneTable([zone])
    for d in days.tolist():
        at = int(change[d])
        assert table.offsets_ms(0, np.array([at - 1, at])).tolist() == [
            oracle(zone, at - 1),
            oracle(zone, at),
        ]
        assert oracle(zone, at - 1) != oracle(zone, at)


def test_a_table_grows_both_ways_and_keeps_its_answers() -> None:
    table = ZoneTable(["Europe/Berlin", "Pacific/Auckland"])
    summer = int(datetime(2024, 7, 1, 12, tzinfo=UTC).timestamp() * 1000)
    winter = int(datetime(2023, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)
    later = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)
    t = np.array([summer, summer, winter, winter, later, later])
    zone = np.array([0, 1, 0, 1, 0, 1])
    for order in ([0, 1], [2, 3], [4, 5], [0, 1, 2, 3, 4, 5]):
        got = table.offsets_ms(zone[order], t[order])
        assert got.tolist() == [
            oracle(table.zones[z], int(x)) for z, x in zip(zone[order], t[order], strict=True)
        ]
    hour = 3_600_000
    assert table.offsets_ms(zone, t).tolist() == [
        2 * hour,
        12 * hour,
        hour,
        13 * hour,
        hour,
        13 * hour,
    ]
