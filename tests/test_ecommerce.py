"""E-commerce: the catalog's mix, the temporal model, fraud patterns, integrity, determinism.

Tolerances: shares of n independent draws have a standard deviation of sqrt(p(1-p)/n); the
bounds below are about 4 of those, so a correct model fails less than once in 10,000 runs
and a wrong weight (off by a few points) fails every time.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.domains.ecommerce import shop
from producer.domains.ecommerce import vocabulary as ec
from producer.domains.ecommerce.fields import FRAUD_PATTERNS
from producer.domains.ecommerce.kind import EcommerceSettings
from producer.domains.ecommerce.model import EcommerceSource
from producer.metrics import Metrics
from producer.records import KindCounts, RecordBatch
from producer.settings import Shard
from producer.timeline import DAY_MS, HOUR_MS
from tests.conftest import cli

MONDAY = int(datetime(2024, 5, 6, tzinfo=UTC).timestamp() * 1000)


def source(shard: Shard | None = None, seed: int = 42, **options: Any) -> EcommerceSource:
    settings = EcommerceSettings(**options)
    return EcommerceSource(settings, seed, shard or Shard(index=0, count=1))


def run(src: EcommerceSource, start: int, end: int, step: int = HOUR_MS) -> dict[str, RecordBatch]:
    out: dict[str, list[RecordBatch]] = defaultdict(list)
    t = start
    while t < end:
        t1 = min(t + step, end)
        for channel, batch in src.advance(t, t1, None).items():
            out[channel].append(batch)
        t = t1
    return {ch: RecordBatch.concat(batches) for ch, batches in out.items()}


def test_users_and_products_follow_the_seed_mix() -> None:
    n = 20_000
    users = shop.Users(7, n, shop.Places.load())
    bound = 4 * np.sqrt(0.25 / n)
    for values, names, weights in (
        (users.type, shop.USER_TYPES, shop.USER_TYPE_WEIGHTS),
        (users.region, shop.REGIONS, shop.REGION_WEIGHTS),
        (users.device, shop.DEVICE_TYPES, shop.DEVICE_WEIGHTS),
    ):
        shares = np.bincount(values, minlength=len(names)) / n
        assert np.abs(shares - np.array(weights)).max() < bound, (names, shares)
    places = users.places
    assert (places.region[users.city] == users.region).all(), "each user lives in their region"
    assert {places.name[c] for c in users.city[users.region == 0]} >= {"New York City"}
    signature_device = np.array([shop.DEVICE_TYPES.index(s[0]) for s in shop.SIGNATURES[:11]])
    assert (signature_device[users.signature] == users.device).all()
    # Age shapes taste: the young favour electronics more than the over-55s.
    electronics = (users.favourite == 0).any(axis=1)
    assert electronics[users.age == 0].mean() > electronics[users.age == 4].mean() + 0.05

    products = shop.Products(7, 2_000)
    low = np.array([c[1] for c in shop.CATEGORIES])[products.category]
    high = np.array([c[2] for c in shop.CATEGORIES])[products.category]
    assert ((products.base_price >= low) & (products.base_price <= high + 0.99)).all()
    cents = np.round(products.base_price * 100).astype(int) % 100
    assert (cents[products.base_price >= 2] == 99).all(), "prices end in .99"
    assert len(set(products.names.tolist())) > 500
    profile = users.profile(3, seed=7)
    assert profile["user_id"] == "user_000004"
    assert "@" in profile["email"]
    assert profile == users.profile(3, seed=7), "seeded per user"


def test_rates_weekend_hour_curve_and_fraud_mix_in_a_week() -> None:
    src = source(users=3_000, transactions_per_hour=2_000, user_events_per_hour=20_000,
                 scenario="fraud_testing")  # fmt: skip
    out = run(src, MONDAY, MONDAY + 7 * DAY_MS, step=6 * HOUR_MS)
    txns, events = out[ec.TRANSACTIONS], out[ec.EVENTS]
    # Weekday hours average the configured rates; events/transactions as configured.
    weekday_txns = (txns.time_ms < MONDAY + 5 * DAY_MS).sum() / (5 * 24)
    assert abs(weekday_txns / 2_000 - 1) < 0.03
    assert abs(len(events) / len(txns) - 10) < 0.2
    # Weekend x1.5 and the hour curve, both in the users' local time.
    starts = events.take(np.flatnonzero(events.columns["type"] == ec.PAGE))
    local = src.calendar.local_ms(src.users.zone[starts.entity], starts.time_ms)
    full_days = (local >= MONDAY + DAY_MS) & (local < MONDAY + 6 * DAY_MS)  # Tue-Sat local
    day = (local[full_days] - MONDAY) // DAY_MS
    per_day = np.bincount(day, minlength=7)
    assert abs(per_day[5] / per_day[1:5].mean() - 1.5) < 0.06, per_day
    # (fraud sessions left out: time-anomaly fraud crowds 2-4 AM on purpose)
    legit = ~src.fraud.of(starts.columns["session"])[0]
    weekday = full_days & ((local - MONDAY) // DAY_MS < 5) & legit
    hours = np.bincount((local[weekday] % DAY_MS) // HOUR_MS, minlength=24)
    expected = shop.HOUR_CURVE / shop.HOUR_CURVE.sum() * hours.sum()
    assert np.abs(hours / expected - 1).max() < 0.08, hours / expected
    assert hours[10] > 1.3 * hours[8]
    assert hours[20] > 1.3 * hours[17]
    assert hours[3] < hours[12] / 5
    # Fraud: 10 % of transactions in fraud_testing, patterns in the configured shares.
    pattern = txns.columns["pattern"]
    fraud = pattern >= 0
    assert abs(fraud.mean() - 0.10) < 4 * np.sqrt(0.09 / len(txns)) + 0.003
    shares = np.bincount(pattern[fraud], minlength=6) / fraud.sum()
    weights = np.array([0.2, 0.2, 0.2, 0.15, 0.15, 0.1])
    assert np.abs(shares - weights).max() < 0.03, shares
    alerted = out[ec.ALERTS].columns["txn"]
    assert set(alerted.tolist()) <= set(txns.key[fraud].tolist()), "alerts: fraud only"
    waiting = (src.alerts.cols["txn_time_ms"] < MONDAY + 7 * DAY_MS).sum()  # alert still due
    assert fraud.sum() - len(alerted) == waiting, "one alert per fraudulent transaction"
    kinds = KindCounts()
    for channel, batch in out.items():
        kinds.add(channel, src.channels[channel].kinds, batch)
    counts = kinds.counts
    assert counts[(ec.TRANSACTIONS, "velocity")] == (pattern == ec.VELOCITY).sum()
    assert sum(v for (ch, _), v in counts.items() if ch == ec.EVENTS) == len(events)
    assert len(out[ec.ANALYTICS]) == 7 * 24 * 500


def test_default_fraud_rate_and_scenarios() -> None:
    day = int(datetime(2024, 11, 20, tzinfo=UTC).timestamp() * 1000)  # a Wednesday
    normal = run(source(users=2_000), day, day + DAY_MS)
    txns = normal[ec.TRANSACTIONS]
    fraud = (txns.columns["pattern"] >= 0).sum()
    assert abs(fraud / len(txns) - 0.001) < 0.0004, fraud  # 0.1 %: ~240 of ~240,000
    for scenario, factor in (("peak_traffic", 3.0), ("maintenance_mode", 0.1)):
        other = run(source(users=2_000, scenario=scenario), day, day + DAY_MS)
        ratio = len(other[ec.TRANSACTIONS]) / len(txns)
        assert abs(ratio / factor - 1) < 0.03, (scenario, ratio)


@pytest.mark.parametrize(
    ("event", "day", "reference", "days"),
    [
        (1, datetime(2024, 11, 29), datetime(2024, 11, 22), 1),  # Black Friday, Friday before
        (2, datetime(2024, 12, 2), datetime(2024, 11, 25), 1),  # Cyber Monday, Monday before
        (3, datetime(2024, 12, 25), datetime(2024, 12, 18), 3),  # Christmas, a week before
    ],
)
def test_a_seasonal_event_multiplies_its_categories(
    event: int, day: datetime, reference: datetime, days: int
) -> None:
    """The seed's multiplier belongs to the event's categories: they sell x it (items bought,
    in the users' local dates), the others as usual, and traffic rises by what that implies."""
    src = source(users=2_000, transactions_per_hour=1_000, user_events_per_hour=10_000)
    info = shop.seasonal_events(day.year)[event]
    cats = [shop.CATEGORY_NAMES.index(c) for c in info.categories]
    items: dict[str, np.ndarray[Any, Any]] = {}
    sessions = {}
    for name, when in (("event", day), ("reference", reference)):
        start = int(when.replace(tzinfo=UTC).timestamp() * 1000)
        out = run(src, start - DAY_MS, start + (days + 1) * DAY_MS)
        txns, ev = out[ec.TRANSACTIONS], out[ec.EVENTS]
        local = src.calendar.local_ms(src.users.zone[txns.entity], txns.time_ms)
        inside = (local >= start) & (local < start + days * DAY_MS)
        bought = txns.columns["items"][inside]
        quantity = txns.columns["quantity"][inside]
        per_category = np.zeros(len(shop.CATEGORIES))
        valid = bought >= 0
        np.add.at(per_category, src.products.category[bought[valid]], quantity[valid])
        items[name] = per_category
        local = src.calendar.local_ms(src.users.zone[ev.entity], ev.time_ms)
        today = (local >= start) & (local < start + days * DAY_MS)
        sessions[name] = ((ev.columns["type"] == ec.PAGE) & today).sum()
    ratio = items["event"] / items["reference"]
    for c in cats:
        assert abs(ratio[c] / info.multiplier - 1) < 0.2, (shop.CATEGORY_NAMES[c], ratio)
    rest = np.setdiff1d(np.arange(len(shop.CATEGORIES)), cats)
    usual = items["event"][rest].sum() / items["reference"][rest].sum()
    assert abs(usual - 1) < 0.12, ratio
    assert abs(sessions["event"] / sessions["reference"] / src.lift.traffic[event] - 1) < 0.06


def test_integrity_chronology_and_every_fraud_pattern() -> None:
    src = source(scenario="fraud_testing")
    start = MONDAY + 3 * DAY_MS + 12 * HOUR_MS  # Thursday noon to evening, UTC: busy hours
    out = run(src, start, start + 6 * HOUR_MS, step=17 * 60_000)
    txns, events, alerts = out[ec.TRANSACTIONS], out[ec.EVENTS], out[ec.ALERTS]
    c, e = txns.columns, events.columns
    # Every transaction is the purchase event of a session of the same user, at its time.
    purchase = events.take(np.flatnonzero(e["type"] == ec.PURCHASE))
    by_txn = dict(zip(purchase.columns["txn"].tolist(), zip(purchase.entity.tolist(),
              purchase.time_ms.tolist(), purchase.columns["session"].tolist(), strict=True),
              strict=True))  # fmt: skip
    columns = (txns.key, txns.entity, txns.time_ms, c["session"])
    for key, user, t, session in zip(*(col.tolist() for col in columns), strict=True):
        assert by_txn[key] == (user, t, session)
    # Products exist, at the catalog's price at that moment; totals add up.
    items = c["items"]
    assert ((items >= -1) & (items < src.products.count)).all()
    assert (items[:, 0] >= 0).all()
    valid = items >= 0
    moment = np.broadcast_to(txns.time_ms[:, None], items.shape)[valid]
    assert np.allclose(c["price"][valid], src.prices.at(items[valid], moment))
    assert np.allclose((c["price"] * c["quantity"]).sum(axis=1), c["subtotal"], atol=0.01)
    # Sessions of one user do not overlap (at the seed's load); a session's events in order.
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    order = np.lexsort((events.time_ms, e["session"]))
    sess, times, users = e["session"][order], events.time_ms[order], events.entity[order]
    assert (np.diff(times)[sess[1:] == sess[:-1]] > 0).all()
    edges = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1], True])
    for a, b in itertools.pairwise(edges):
        spans[int(users[a])].append((int(times[a]), int(times[b - 1])))
    overlaps = 0
    for user_spans in spans.values():
        user_spans.sort()
        overlaps += sum(begin <= end for (_, end), (begin, _) in itertools.pairwise(user_spans))
    assert overlaps <= 0.005 * len(edges), overlaps
    # Fraud patterns, each as the seed describes it.
    pattern = c["pattern"]
    user = txns.entity
    for p in range(len(FRAUD_PATTERNS)):
        assert (pattern == p).sum() > 10, FRAUD_PATTERNS[p]
    velocity = pattern == ec.VELOCITY
    per_session = Counter(c["session"][velocity].tolist())
    end = start + 6 * HOUR_MS
    for session, n in per_session.items():
        t = txns.time_ms[c["session"] == session]
        assert t.max() - t.min() <= 300_000
        if t.min() > start + 300_000 and t.max() < end - 300_000:  # not cut by the window
            assert 5 <= n <= 15
    location = pattern == ec.LOCATION
    places = src.users.places
    assert (places.region[c["city"][location]] != src.users.region[user[location]]).all()
    assert (places.region[c["city"][~location]] == src.users.region[user[~location]]).all()
    night = pattern == ec.TIME
    local = src.calendar.local_ms(src.users.zone[user[night]], txns.time_ms[night])
    hour = (local % DAY_MS) // HOUR_MS
    # The session starts at 2-4 AM and pays before 4 (this window, 12-18 UTC, has instants
    # where it is night nowhere users live: the sessions there took other patterns).
    assert ((hour >= 2) & (hour < 4)).all()
    assert np.isin(c["signature"][pattern == ec.DEVICE], shop.SUSPICIOUS).all()
    assert not np.isin(c["signature"][pattern < 0], shop.SUSPICIOUS).any()
    unusual = pattern == ec.CATEGORY
    cats = src.products.category[items[unusual][items[unusual] >= 0]]
    assert np.isin(cats, shop.RESALE).all()
    amount = pattern == ec.AMOUNT
    quantity = c["quantity"][amount].sum(axis=1)
    micro = c["total_amount"][amount] < 10
    assert ((quantity >= 5) | micro).all()
    assert micro.any()
    assert (~micro).any()
    # Fraud scores separate, imperfectly: most fraud high, most legit low.
    assert np.median(c["fraud_score"][pattern >= 0]) > 0.8
    assert np.median(c["fraud_score"][pattern < 0]) < 0.1
    # Every alert references a fraudulent transaction, a few seconds after it.
    fraud_time = dict(zip(txns.key[pattern >= 0].tolist(), txns.time_ms[pattern >= 0].tolist(),
                          strict=True))  # fmt: skip
    for key, t in zip(alerts.columns["txn"].tolist(), alerts.time_ms.tolist(), strict=True):
        if key in fraud_time:  # (an alert may come after the window for late purchases)
            assert 0 < t - fraud_time[key] < 600_000
    assert len(alerts) >= 0.95 * (pattern >= 0).sum()


@pytest.mark.parametrize("day", [datetime(2024, 7, 17), datetime(2024, 1, 17)])
def test_local_time_is_the_offset_of_that_instant_and_devices_hold_the_seed_split(
    day: datetime,
) -> None:
    """A day of fraud testing, northern summer and southern summer: every time-anomaly
    transaction is at 2-4 AM in its user's zone, as zoneinfo tells it (an oracle independent
    of the generator's tables); the time anomaly keeps its share; sessions and transactions
    come from mobile, desktop and tablet 50/35/15 as the users do."""
    from zoneinfo import ZoneInfo

    src = source(scenario="fraud_testing", transactions_per_hour=2_000,
                 user_events_per_hour=20_000)  # fmt: skip
    start = int(day.replace(tzinfo=UTC).timestamp() * 1000)
    out = run(src, start, start + DAY_MS)
    txns = out[ec.TRANSACTIONS]
    pattern = txns.columns["pattern"]
    night = np.flatnonzero(pattern == ec.TIME)
    places, users = src.users.places, src.users
    off = 0
    for i in night.tolist():
        zone = ZoneInfo(places.timezone[int(users.city[int(txns.entity[i])])])
        local = datetime.fromtimestamp(int(txns.time_ms[i]) / 1000, UTC).astimezone(zone)
        off += not 2 <= local.hour < 4
    assert night.size > 100
    assert off == 0, f"{off} of {night.size} time-anomaly transactions outside 2-4 AM"
    fraud = pattern >= 0
    share = (pattern[fraud] == ec.TIME).mean()
    assert abs(share - 0.15) < 4 * np.sqrt(0.15 * 0.85 / fraud.sum()) + 0.01, share
    device_of = np.array([s[0] for s in shop.SIGNATURES])
    events = out[ec.EVENTS]
    starts = events.columns["signature"][events.columns["type"] == ec.PAGE]
    for signatures in (starts, txns.columns["signature"]):
        kinds = device_of[signatures]
        for name, weight in zip(shop.DEVICE_TYPES, shop.DEVICE_WEIGHTS, strict=True):
            assert abs((kinds == name).mean() - weight) < 0.02, (name, (kinds == name).mean())


def test_analytics_results_are_computed_from_the_transactions() -> None:
    src = source(users=1_000)
    out = run(src, MONDAY, MONDAY + 2 * HOUR_MS, step=7 * 60_000)
    results, txns = out[ec.ANALYTICS], out[ec.TRANSACTIONS]
    assert len(results) == 2 * 500
    r = results.columns
    w = src.window_ms
    for end in np.unique(results.time_ms)[1:].tolist():  # the first window began before t0
        inside = (txns.time_ms >= end - w) & (txns.time_ms < end)
        revenue = txns.columns["total_amount"][inside].sum()
        glob = (results.time_ms == end) & (r["scope"] == len(ec.SCOPES) - 1)
        got = dict(zip(r["metric"][glob].tolist(), r["value"][glob].tolist(), strict=True))
        assert got[0] == pytest.approx(revenue)
        assert got[1] == inside.sum()
        assert got[2] == pytest.approx(revenue / inside.sum())
        assert 0.3 < got[3] < 0.7  # conversion: orders per session


def test_windows_and_shards_do_not_change_the_records() -> None:
    start = MONDAY + 10 * HOUR_MS
    whole = run(source(users=800), start, start + 2 * HOUR_MS, step=2 * HOUR_MS)
    pieces = run(source(users=800), start, start + 2 * HOUR_MS, step=61_237)
    shards = [run(source(Shard(index=i, count=2), users=800), start, start + 2 * HOUR_MS)
              for i in range(2)]  # fmt: skip
    for channel in EcommerceSettings.CHANNELS:
        a, b = whole[channel], pieces[channel]
        assert np.array_equal(a.key, b.key)
        assert np.array_equal(a.time_ms, b.time_ms)
        for name, col in a.columns.items():
            assert np.array_equal(col, b.columns[name], equal_nan=col.dtype.kind == "f"), name
        if channel != ec.ANALYTICS:  # analytics describe each process's own share
            split = np.sort(np.concatenate([s[channel].key for s in shards]))
            assert np.array_equal(split, np.sort(a.key)), channel


async def test_metrics_count_records_by_kind() -> None:
    settings = load_settings(
        {"streams": "ecommerce", "metrics": {"enabled": False},
         "backfill": {"enabled": True, "start": "2024-05-01T10:00:00",
                      "end": "2024-05-01T10:10:00", "progress": "off"},
         "ecommerce": {"users": 500, "sinks": "null"}},
    )  # fmt: skip
    metrics = Metrics()
    outcome = await Engine(settings, metrics).run(Stopper())
    assert outcome.exit_code == 0
    views = metrics.value(
        "synthstream_records_by_kind_total", {"stream": "user-events", "kind": "product_view"}
    )
    events = metrics.value("synthstream_records_generated_total", {"stream": "user-events"})
    assert 0.2 * events < views < 0.5 * events
    legit = metrics.value(
        "synthstream_records_by_kind_total", {"stream": "transactions", "kind": "legit"}
    )
    assert legit > 1000


def test_backfill_to_files_is_reproducible_and_stats_describe_it(tmp_path: Path) -> None:
    args = ("run", "--streams", "ecommerce", "--backfill", "--start", "2024-11-29T12:00:00",
            "--end", "2024-11-29T12:05:00", "--sinks", "file", "--progress", "off",
            "--metrics-port", "0")  # fmt: skip
    env = {"SYNTHSTREAM_ECOMMERCE__USERS": "2000"}
    first = cli(*args, "--out", str(tmp_path / "a"), env=env)
    assert first.returncode == 0, first.stderr
    second = cli(*args, "--out", str(tmp_path / "b"), env=env)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jsonl"))
    assert {f.parts[0] for f in files} == set(EcommerceSettings.CHANNELS)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert second.returncode == 0
    txn = orjson.loads(next((tmp_path / "a" / "transactions").glob("*.jsonl")).read_text()
                       .splitlines()[0])  # fmt: skip
    assert set(txn) >= {"transaction_id", "user_id", "timestamp", "products", "total_amount",
                        "payment_method", "location", "device_info", "is_fraud", "fraud_score",
                        "message_id", "is_duplicate"}  # fmt: skip
    assert set(txn["products"][0]) == {"product_id", "name", "category", "price", "quantity"}

    stats = cli("stats", "--streams", "ecommerce", "--hours", "1", "--start",
                "2024-05-06T12:00:00", env=env)  # fmt: skip
    assert stats.returncode == 0, stats.stderr
    report = json.loads(stats.stdout)["ecommerce"]
    assert report["users"]["count"] == 2000
    assert report["products"]["count"] == 1000
    realised = report["realised"]
    assert realised["transactions"]["count"] > 5000
    assert 0 <= realised["transactions"]["fraud_rate"] < 0.01


def test_bad_ecommerce_settings_exit_2_with_one_line() -> None:
    for env, needle in (
        ({"SYNTHSTREAM_ECOMMERCE__USER_EVENTS_PER_HOUR": "1000"}, "USER_EVENTS_PER_HOUR"),
        ({"SYNTHSTREAM_ECOMMERCE__FRAUD_PATTERNS": "1,2"}, "FRAUD_PATTERNS"),
        ({"SYNTHSTREAM_ECOMMERCE__SCENARIO": "panic"}, "fraud_testing"),
    ):
        result = cli("run", "--streams", "ecommerce", "--max-records", "5", env=env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert needle in lines[0], result.stderr


def test_catalog_writes_users_and_products_that_the_streams_reference(tmp_path: Path) -> None:
    env = {"SYNTHSTREAM_ECOMMERCE__USERS": "300"}
    result = cli("catalog", "--streams", "ecommerce", "--out", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    users = [orjson.loads(line) for line in (tmp_path / "users.jsonl").read_bytes().splitlines()]
    products = [orjson.loads(x) for x in (tmp_path / "products.jsonl").read_bytes().splitlines()]
    assert len(users) == 300
    assert len(products) == 1000
    assert len({u["email"] for u in users}) == 300
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+", u["email"]) for u in users)
    assert all(" " in u["name"] and u["street_address"] for u in users)
    assert {u["user_type"] for u in users} == {"regular", "vip", "new"}
    ids = {u["user_id"] for u in users}
    src = source(users=300)
    txns = run(src, MONDAY, MONDAY + HOUR_MS)[ec.TRANSACTIONS]
    assert set(src.users.ids(np.unique(txns.entity))) <= ids
    catalog = {p["product_id"]: p for p in products}
    rows = src.channels[ec.TRANSACTIONS].rows(txns)
    for row in rows:
        for item in row["products"]:
            assert catalog[item["product_id"]]["category"] == item["category"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_every_channel_writes_csv_and_parquet_with_one_schema(tmp_path: Path, fmt: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    env = {"SYNTHSTREAM_SINKS__FILE__FORMAT": fmt, "SYNTHSTREAM_ECOMMERCE__USERS": "1000",
           "SYNTHSTREAM_INCIDENTS__INCIDENTS_PER_HOUR": "200"}  # fmt: skip
    window = ("--start", "2024-05-01T00:00:00", "--end", "2024-05-01T02:00:00")
    result = cli("run", "--streams", "ecommerce,incidents", "--backfill", *window, "--sinks",
                 "file", "--out", str(tmp_path), "--progress", "off", "--metrics-port", "0",
                 env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = next(json.loads(line) for line in result.stderr.splitlines()
                   if '"synthstream_finished"' in line)["streams"]  # fmt: skip
    assert set(summary) == {*EcommerceSettings.CHANNELS, "incidents"}
    for channel, counts in summary.items():
        files = sorted((tmp_path / channel).glob(f"*.{fmt}"))
        assert len(files) == 2, channel  # one per hour of event time
        if fmt == "parquet":
            tables = [pq.read_table(f) for f in files]
        else:
            tables = [pacsv.read_csv(f) for f in files]
        assert all(t.schema == tables[0].schema for t in tables), channel
        assert sum(t.num_rows for t in tables) == counts["sinks"]["file"]["delivered"] > 0
    if fmt == "csv":  # a transaction's products as JSON in their cell
        first = pacsv.read_csv(next((tmp_path / "transactions").glob("*.csv")))
        products = json.loads(first["products"][0].as_py())
        assert {"product_id", "price", "quantity"} <= set(products[0])


def test_max_records_counts_across_the_channels() -> None:
    result = cli("run", "--streams", "ecommerce", "--backfill", "--start", "2024-05-01",
                 "--end", "2024-05-02", "--max-records", "777", "--sinks", "null",
                 "--progress", "off", "--metrics-port", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished = next(json.loads(line) for line in result.stderr.splitlines()
                    if '"synthstream_finished"' in line)  # fmt: skip
    assert finished["reason"] == "max_records"
    streams = finished["streams"].values()
    assert sum(s["generated"] - s["duplicated_by_fault"] for s in streams) == 777
