"""E-commerce (seed 002): sessions, user events, transactions, fraud, product updates, analytics.

One source, five channels. Users' *sessions* arrive at the seed's rates, shaped by the
temporal model in each user's local time; each session is a small state machine played out
at once (landing page, maybe a search, product views, add to cart, maybe a removal,
checkout, purchase, with log-normal gaps), and its events wait in a time-ordered buffer until
the clock reaches them. Every transaction is a session's purchase, of products that exist,
at the price the catalog had at that moment; every fraudulent transaction gets a fraud alert
a few seconds later. Product updates (daily repricing, stock and rating changes) and
analytics results (per region, per window, computed from the transactions this process
generated) complete the seed's five topics.

Everything is a pure function of the seed and event time, and state moves only in event-time
order, so live runs, backfills, window sizes and shards all give the same records.

Rates: the seed's 10,000 transactions/h and 100,000 user events/h are for an average weekday
hour. The funnel's probabilities fix how many transactions a session makes; the mean number
of product views per session is then solved so that events/transactions match the setting.
Fraud alerts follow the fraud: one per fraudulent transaction (about 10/h at the default
0.1 %; the seed's 100/h table entry is what a 1 % fraud rate gives). Analytics results come
at a fixed cadence, 5 metrics x 5 regions per 180 s window = 500/h, whatever the traffic.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer import rng
from producer.domains.ecommerce.fields import FRAUD_PATTERNS, EcommerceFields
from producer.domains.ecommerce.shop import (
    AGE_GROUPS,
    CATEGORIES,
    CATEGORY_NAMES,
    DEVICE_TYPES,
    PAYMENT_METHODS,
    PAYMENT_WEIGHTS,
    REGIONS,
    RESALE,
    SIGNATURES,
    SUSPICIOUS,
    USER_TYPES,
    Places,
    Products,
    Users,
    event_at,
    local_factors,
    seasonal_events,
    shares,
)
from producer.errors import ConfigError
from producer.generators import (
    Pending,
    earliest,
    lognormal,
    rank_within_entity,
    shard_entities,
    weighted_choice,
    weighted_choice_rows,
)
from producer.rates import DAY_MS, HOUR_MS, FixedInterval, TotalRate
from producer.records import Kinds, RecordBatch, Schema, arrow_schema, rows_table
from producer.rng import F64, I64, U64
from producer.settings import RateSettings, Shard
from producer.zones import ZoneTable

STREAM = "ecommerce"
TRANSACTIONS, EVENTS, UPDATES, ALERTS, ANALYTICS = EcommerceFields.CHANNELS
EVENT_TYPES = ("page_view", "search", "product_view", "add_to_cart", "remove_from_cart",
               "checkout", "purchase")  # fmt: skip
PAGE, SEARCH, VIEW, CART, REMOVE, CHECKOUT, PURCHASE = range(len(EVENT_TYPES))
# Median seconds spent on each kind of page (log-normal, sigma 0.8).
DWELL_S = np.array([8.0, 15.0, 35.0, 12.0, 8.0, 60.0, 20.0])
DWELL_SIGMA = 0.8
VELOCITY, LOCATION, AMOUNT, TIME, DEVICE, CATEGORY = range(len(FRAUD_PATTERNS))
# The funnel: a session adds to cart, goes to checkout, pays. Fraud sessions always pay.
P_SEARCH, P_CART, P_CHECKOUT, P_PAY, P_REMOVE = 0.40, 0.62, 0.85, 0.88, 0.10
CART_SIZES = (0.70, 0.20, 0.10)  # 1, 2 or 3 products
QUANTITIES = (0.80, 0.14, 0.06)  # 1, 2 or 3 units
MAX_VIEWS = 60
MAX_ITEMS = 3
VELOCITY_MIN, VELOCITY_MAX = 5, 15  # transactions within 5 minutes
UPDATE_TYPES = ("price_change", "inventory_update", "rating_update")
METRICS = ("revenue", "order_count", "average_order_value", "conversion_rate", "fraud_rate")
SCOPES = (*REGIONS, "Global")
NO_TXN = np.uint64(0)
Bools = npt.NDArray[np.bool_]
WARMUP_MS = HOUR_MS
MAX_DEFER_MS = 1_200_000
FAVOURITE_SHARE = 0.7  # of category picks, the user's two favourites
# A time-anomaly session starts at 02:00-03:40 local time and lasts at most 20 minutes.
NIGHT_FROM_MS, NIGHT_UNTIL_MS = 2 * HOUR_MS, 3 * HOUR_MS + 40 * 60_000
NIGHT_SESSION_MS = 20 * 60_000


def _lognormal_ms(keys: U64, median_s: F64 | float, sigma: float) -> I64:
    """Log-normal durations in whole milliseconds (at least 1), from seconds."""
    ms: I64 = np.maximum(1, np.rint(lognormal(keys, 40, median_s, sigma) * 1000.0))
    return ms.astype(np.int64)


DEVICE_INFO = pa.struct([("device_type", pa.string()), ("os", pa.string()),
                    ("browser", pa.string()), ("screen_resolution", pa.string())])  # fmt: skip


def _hex(prefix: str, keys: U64, digits: int) -> list[str]:
    mask = (1 << (4 * digits)) - 1
    return [f"{prefix}{k & mask:0{digits}x}" for k in keys.tolist()]


class Calendar:
    """The temporal model per time zone: local time at each instant, traffic factor by hour
    (``lifts``: each seasonal event's traffic lift, None: no events)."""

    def __init__(self, zones: list[str], weekend: float, lifts: F64 | None) -> None:
        self.zones = zones
        self.weekend = weekend
        self.lifts = lifts
        self.table = ZoneTable(zones)
        self._all = np.arange(len(zones), dtype=np.int64)

    def local_ms(self, zone: I64, t: I64) -> I64:
        return self.table.local_ms(zone, t)

    def every_zone(self, t: I64) -> I64:
        """Local times of every zone (columns) at each instant (rows)."""
        rows = np.repeat(np.asarray(t, dtype=np.int64), self._all.size)
        local = self.table.local_ms(np.tile(self._all, np.size(t)), rows)
        return local.reshape(np.size(t), self._all.size)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one calendar per source, kept for the run
    def hour(self, hour: int) -> tuple[F64, I64]:
        """Each zone's traffic factor and local hour of day in the UTC hour ``hour`` (taken at
        its middle: the rate of a UTC hour is constant)."""
        local = self.every_zone(np.array([hour * HOUR_MS + HOUR_MS // 2]))[0]
        factor, _ = local_factors(local, self.weekend, self.lifts)
        return factor, (local % DAY_MS) // HOUR_MS


class SessionArrivals(TotalRate):
    """Session starts: the total rate of an hour is the activity-weighted mean of every time
    zone's local factor; each arrival goes to a zone by its weight, then to a user of that
    zone by activity. A time-anomaly fraud session goes to a user where it is 2-4 AM."""

    def __init__(
        self, key: int, users: Users, local: I64, calendar: Calendar, per_hour: float,
        fraud: Fraud, share: float,
    ) -> None:  # fmt: skip
        super().__init__(key, users.count, local, RateSettings(total_per_s=per_hour / 3600), share)
        self.users = users
        self.calendar = calendar
        self.fraud = fraud
        self.order = np.argsort(users.zone, kind="stable")
        zone_count = len(users.zones)
        self.activity = np.bincount(users.zone, users.activity, minlength=zone_count)
        self.cum = np.cumsum(users.activity[self.order])
        self.zone_first = np.searchsorted(users.zone[self.order], np.arange(zone_count), "left")
        self.cum_before = np.concatenate([[0.0], self.cum])[self.zone_first]
        self.total_activity = float(self.activity.sum())
        self.zone_size = np.bincount(users.zone, minlength=zone_count)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - kept for the run; asked every tick
    def factor(self, hour: int) -> float:
        factor, _ = self.calendar.hour(hour)
        return float((self.activity * factor).sum() / self.total_activity)

    def rate_in_hour(self, hour: int) -> float:
        return self.base * self.factor(hour)

    def night_zones(self, t: I64) -> npt.NDArray[np.bool_]:
        """Per instant (rows), the zones with users where a time-anomaly session can start:
        local time in [02:00, 03:40), so that it ends before 04:00 (see ``NIGHT_SESSION_MS``)."""
        tod = self.calendar.every_zone(t) % DAY_MS
        night: npt.NDArray[np.bool_] = (tod >= NIGHT_FROM_MS) & (tod < NIGHT_UNTIL_MS)
        return night & (self.activity > 0)

    def patterns(self, keys: U64, times: I64) -> tuple[Bools, I64]:
        """Fraud and pattern of sessions arriving at ``times``. A time-anomaly session needs
        a user for whom it is 2-4 AM now, and at some instants that is nowhere users live
        (the cities span UTC-8 to UTC+13): then the session takes another pattern, and at
        the instants where it can happen the time anomaly is that much more likely (by the
        share of the day's traffic that has a night somewhere), so every pattern keeps its
        configured share."""
        fraud, pattern = self.fraud.of(keys)
        w = self.fraud.weights
        rows = np.flatnonzero(fraud)
        if not rows.size or w[TIME] <= 0:
            return fraud, pattern
        t = times[rows]
        possible = self.night_zones(t).any(axis=1)
        cover = np.array([self._night_cover(d) for d in (t // DAY_MS).tolist()])
        time_p = np.where(possible, np.minimum(1.0, w[TIME] / np.maximum(cover, 1e-9)), 0.0)
        others = (1.0 - time_p) / (1.0 - w[TIME]) if w[TIME] < 1 else np.zeros(rows.size)
        weights = np.where(self.fraud.is_time, time_p[:, None], w * others[:, None])
        pattern[rows] = weighted_choice_rows(rng.uniform(keys[rows], 4), weights)
        return fraud, pattern

    @functools.lru_cache(maxsize=64)  # noqa: B019 - kept for the run
    def _night_cover(self, day: int) -> float:
        """Share of a UTC day's traffic at instants where it is night for some users."""
        t = day * DAY_MS + np.arange(0, DAY_MS, 5 * 60_000, dtype=np.int64)
        possible = self.night_zones(t).any(axis=1)
        traffic = np.array([self.factor(h) for h in (t // HOUR_MS).tolist()])
        return float((traffic * possible).sum() / max(traffic.sum(), 1e-12))

    def pick(self, hour: int, keys: U64, times: I64) -> I64:
        factor, _ = self.calendar.hour(hour)
        weights = self.activity * factor
        u1, u2 = rng.uniform(keys, 1), rng.uniform(keys, 2)
        zone = weighted_choice(u1, weights)
        fraud, pattern = self.patterns(keys, times)
        odd = np.flatnonzero(fraud & (pattern == TIME))
        if odd.size:  # a user where it is 2-4 AM now, by activity
            night = self.night_zones(times[odd])
            cdf = np.cumsum(np.where(night, self.activity, 0.0), axis=1)
            at = (u1[odd, None] * cdf[:, -1:] >= cdf).sum(axis=1)
            zone[odd] = np.minimum(at, self.activity.size - 1)
        target = self.cum_before[zone] + u2 * self.activity[zone]
        at = np.searchsorted(self.cum, target, "right")
        last = self.zone_first[zone] + np.maximum(self.zone_size[zone], 1) - 1
        user: I64 = self.order[np.clip(at, self.zone_first[zone], last)]
        return user


class ProductArrivals(TotalRate):
    """Stock and rating updates: uniform over products, following the traffic curve."""

    def __init__(
        self, key: int, count: int, local: I64, per_hour: float, traffic: SessionArrivals,
        share: float,
    ) -> None:  # fmt: skip
        super().__init__(key, count, local, RateSettings(total_per_s=per_hour / 3600), share)
        self.traffic = traffic

    def rate_in_hour(self, hour: int) -> float:
        return self.base * self.traffic.factor(hour)


class Fraud:
    """Which sessions are fraud, and which pattern: pure functions of the session key."""

    def __init__(self, rate: float, weights: list[float], purchase_p: float) -> None:
        # ``weights`` are shares of fraudulent *transactions*; a velocity attack makes 5-15
        # of them in one session, the other patterns one, so sessions are weighted by
        # share / transactions per session.
        per_pattern = np.ones(len(FRAUD_PATTERNS))
        per_pattern[VELOCITY] = (VELOCITY_MIN + VELOCITY_MAX) / 2
        w = np.asarray(weights, dtype=np.float64) / per_pattern
        self.weights = w / w.sum()
        self.is_time = np.arange(len(FRAUD_PATTERNS)) == TIME
        self.per_session = float((self.weights * per_pattern).sum())
        # Share of sessions that are fraud so that fraud transactions / all = rate.
        m, p = self.per_session, purchase_p
        self.session_p = rate * p / (m * (1 - rate) + rate * p) if rate > 0 else 0.0

    def of(self, keys: U64) -> tuple[npt.NDArray[np.bool_], I64]:
        fraud = rng.uniform(keys, 3) < self.session_p
        return fraud, weighted_choice(rng.uniform(keys, 4), self.weights)


class Prices:
    """Each product is repriced once per period at its own moment; its price in between is a
    pure function of (product, period), so transactions and updates agree in every shard.
    A repricing inside a seasonal event of the product's category is a sale (x0.75)."""

    def __init__(self, products: Products, period_ms: int) -> None:
        self.products = products
        ids = np.arange(products.count, dtype=np.int64)
        self.schedule = FixedInterval(ids, products.keys, period_ms, period_ms // 4)
        self.period = period_ms

    def cycle_at(self, product: I64, t: I64) -> I64:
        s = self.schedule
        c0 = (t - s._phase_of_entity[product]) // self.period
        after = s.time_of(product, c0 + 1) <= t
        at = s.time_of(product, c0) <= t
        cycle: I64 = np.where(after, c0 + 1, np.where(at, c0, c0 - 1))
        return cycle

    def price(self, product: I64, cycle: I64) -> F64:
        p = self.products
        u = rng.uniform(rng.combine(p.keys[product], cycle), 7)
        factor = 0.90 + 0.15 * u
        when = self.schedule.time_of(product, cycle)
        event = event_at(when)
        sale = np.zeros(product.size, dtype=np.bool_)
        if (event >= 0).any():
            years = when.astype("datetime64[ms]").astype("datetime64[Y]").astype(int) + 1970
            for year, e in np.unique(np.stack([years, event], 1)[event >= 0], axis=0).tolist():
                cats = [CATEGORY_NAMES.index(c) for c in seasonal_events(year)[e].categories]
                sale |= (event == e) & (years == year) & np.isin(p.category[product], cats)
        raw = p.base_price[product] * factor * np.where(sale, 0.75, 1.0)
        price: F64 = np.where(raw >= 2.0, np.floor(raw) + 0.99, np.round(raw, 2))
        return price

    def at(self, product: I64, t: I64) -> F64:
        return self.price(product, self.cycle_at(product, t))


class EventLift:
    """What a seasonal event does: its categories sell x its multiplier, the others as usual.

    A pick's category normally falls in the event's categories with probability ``s`` (the
    users' favourites and the catalog's mix, weighted by activity). During the event, a pick
    outside them moves into them with probability ``(p - s) / (1 - s)``, ``p = M s / F``, and
    traffic rises by ``F = M s + (1 - s)``: the event's categories then get ``F p = M s``
    (x M) and the rest ``F (1 - p) = 1 - s`` (as usual). A moved pick goes to each category
    by its own base share, so each of them sells x M."""

    def __init__(self, users: Users) -> None:
        weight = users.activity / users.activity.sum()
        catalog = np.array([c[3] for c in CATEGORIES])
        fav = np.zeros(len(CATEGORIES))
        np.add.at(fav, users.favourite[:, 0], 0.5 * weight)
        np.add.at(fav, users.favourite[:, 1], 0.5 * weight)
        self.base = FAVOURITE_SHARE * fav + (1 - FAVOURITE_SHARE) * catalog / catalog.sum()
        events = seasonal_events(2024)  # the same categories and multipliers every year
        self.member = np.array([[name in e.categories for name in CATEGORY_NAMES]
                                for e in events])  # fmt: skip
        s = (self.member * self.base).sum(axis=1)
        m = np.array([e.multiplier for e in events])
        self.traffic: F64 = m * s + (1 - s)
        p = m * s / self.traffic
        self.move: F64 = np.clip((p - s) / (1 - s), 0.0, 1.0)


class EcommerceSource:
    def __init__(self, settings: EcommerceFields, seed: int, shard: Shard) -> None:

        self.settings = settings
        self.stream = STREAM
        places = Places.load()
        self.users = Users(seed, settings.users, places)
        self.products = Products(seed, settings.products)
        self.lift = EventLift(self.users)
        lifts = self.lift.traffic if settings.seasonal_events else None
        self.calendar = Calendar(self.users.zones, settings.weekend_multiplier, lifts)
        u_ids = shard_entities(STREAM, settings.users, shard)
        p_ids = shard_entities(STREAM + ".products", settings.products, shard)
        self.user_ids, self.product_ids = u_ids, p_ids
        u_local = np.full(settings.users, -1, dtype=np.int64)
        u_local[u_ids] = np.arange(u_ids.size)
        p_local = np.full(settings.products, -1, dtype=np.int64)
        p_local[p_ids] = np.arange(p_ids.size)

        purchase_p = P_CART * P_CHECKOUT * P_PAY
        self.fraud = Fraud(settings.effective_fraud_rate, settings.fraud_patterns, purchase_p)
        f = self.fraud
        self.txn_per_session = (1 - f.session_p) * purchase_p + f.session_p * f.per_session
        sessions_per_hour = settings.transactions_per_hour / self.txn_per_session
        self.views_mean = self._solve_views(sessions_per_hour)
        self.sessions = SessionArrivals(
            rng.text_key(seed, STREAM, "sessions"), self.users, u_local, self.calendar,
            sessions_per_hour * settings.traffic_factor, f, u_ids.size / settings.users,
        )  # fmt: skip
        share_p = p_ids.size / settings.products
        # Repricing once a day per product (or more often, so that it is at most half of the
        # updates), from the base rate: the price history does not depend on the scenario.
        base = settings.product_updates_per_hour
        period_h = 24.0 if base <= 0 or settings.products / 24 <= base / 2 else (
            2 * settings.products / base)  # fmt: skip
        updates = base * settings.traffic_factor
        self.prices = Prices(self.products, round(period_h * HOUR_MS))
        self.repricing = FixedInterval(p_ids, self.products.keys[p_ids], self.prices.period,
                                       self.prices.period // 4)  # fmt: skip
        other = max(0.0, updates - settings.products / period_h)
        self.product_arrivals = ProductArrivals(
            rng.text_key(seed, STREAM, "product-updates"), settings.products, p_local,
            max(other, 1e-9), self.sessions, share_p,
        )  # fmt: skip
        self.other_updates = other > 0
        self.busy_until = np.zeros(settings.users, dtype=np.int64)
        self.warm = False
        self.events = Pending()
        self.transactions = Pending()
        self.alerts = Pending()
        self.window_ms = settings.analytics_window_s * 1000
        self.acc: dict[int, F64] = {}  # window -> (scope, [sessions, orders, revenue, fraud])
        self.analytics_key = rng.text_key(seed, STREAM, "analytics")
        text = Texts(self.users, self.products)
        self.schemas: dict[str, _ShopSchema] = {
            TRANSACTIONS: TransactionSchema(self, text),
            EVENTS: EventSchema(self, text),
            UPDATES: UpdateSchema(self, text),
            ALERTS: AlertSchema(self, text),
            ANALYTICS: AnalyticsSchema(self, text),
        }
        self.channels: dict[str, Schema] = dict(self.schemas)

    # ------------------------------------------------------------------ model
    def _solve_views(self, sessions_per_hour: float) -> float:
        """Mean extra product views per session so that events/h matches the setting."""
        f = self.fraud
        fixed_legit = 1 + P_SEARCH + 1 + P_CART * (1.4 + P_REMOVE * 0.3) + P_CART * P_CHECKOUT
        fixed_legit += P_CART * P_CHECKOUT * P_PAY
        fixed_fraud = 1 + P_SEARCH + 1 + 1.4 + P_REMOVE * 0.3 + 2
        velocity = f.weights[VELOCITY]
        velocity_events = 1 + (VELOCITY_MIN + VELOCITY_MAX) / 2
        s = f.session_p
        fixed = (1 - s) * fixed_legit + s * (
            velocity * velocity_events + (1 - velocity) * fixed_fraud
        )
        slope = (1 - s) + s * (1 - velocity)
        per_session = self.settings.user_events_per_hour / sessions_per_hour
        extra = (per_session - fixed) / slope
        if extra < 0:
            least = self.settings.transactions_per_hour * fixed / self.txn_per_session
            raise ConfigError(
                "SYNTHSTREAM_ECOMMERCE__USER_EVENTS_PER_HOUR: every session has a landing page "
                f"and a product view, so it needs at least {least:,.0f} at "
                f"{self.settings.transactions_per_hour:,.0f} transactions/h"
            )
        return float(extra)

    def _categories(
        self, user: I64, keys: U64, local_ms: I64, anomaly: Bools, resale: Bools
    ) -> tuple[I64, Bools]:
        """A category per pick: favourites 70 %, else the catalog's mix; while a seasonal
        event lasts, picks move to its categories so that they sell x its multiplier (see
        ``EventLift``); fraud buys resellable goods outside the favourites. Also whether a
        seasonal event is on for the pick."""
        u = rng.uniform_block(keys, 5)
        shares = tuple(c[3] for c in CATEGORIES)
        category = weighted_choice(u[:, 0], shares)
        favourite = self.users.favourite[user, (u[:, 1] < 0.5).astype(np.int64)]
        category = np.where(u[:, 2] < FAVOURITE_SHARE, favourite, category)
        event = np.full(keys.size, -1, dtype=np.int8)
        if self.settings.seasonal_events:
            event = event_at(local_ms)
            lift = self.lift
            on = event >= 0
            inside = lift.member[np.maximum(event, 0), category]
            moved = on & ~inside & (u[:, 3] < lift.move[np.maximum(event, 0)])
            for e in np.unique(event[moved]).tolist():
                rows = moved & (event == e)
                category[rows] = weighted_choice(u[rows, 4], lift.base * lift.member[e])
        unusual = RESALE[(u[:, 4] * RESALE.size).astype(np.int64) % RESALE.size]
        fav = self.users.favourite[user]
        clash = (fav[:, 0] == unusual) | (fav[:, 1] == unusual)
        unusual = np.where(clash, RESALE[(np.searchsorted(RESALE, unusual) + 1) % RESALE.size],
                           unusual)  # fmt: skip
        category = np.where(anomaly, unusual, category)
        picked: I64 = np.where(resale, RESALE[(u[:, 4] * 2).astype(np.int64) % 2], category)
        return picked, event >= 0

    def _products(self, session: I64, slot: I64, ctx: dict[str, Any]) -> I64:
        keys = rng.combine(ctx["keys"][session], 1000 + slot)
        pattern, fraud = ctx["pattern"][session], ctx["fraud"][session]
        category, in_season = self._categories(
            ctx["user"][session], keys, ctx["local"][session],
            fraud & (pattern == CATEGORY), fraud & (pattern == VELOCITY),
        )  # fmt: skip
        return self.products.choose(category, rng.uniform(keys, 8), in_season)

    def _new_sessions(self, t0: int, t1: int) -> None:
        local, arrival, keys = self.sessions.arrivals(t0, t1)
        n = keys.size
        if n == 0:
            return
        user = self.user_ids[local]
        u = rng.uniform_block(keys, 16)
        fraud, pattern = self.sessions.patterns(keys, arrival)
        velocity = fraud & (pattern == VELOCITY)
        night = fraud & (pattern == TIME)
        a = self.views_mean
        views = 1 + np.minimum(
            np.floor(np.log1p(-u[:, 6]) / np.log(a / (1 + a))) if a > 0 else 0, MAX_VIEWS - 1
        ).astype(np.int64)
        views = np.where(velocity, 0, views)
        search = ((u[:, 5] < P_SEARCH) & ~velocity).astype(np.int64)
        carted = ((u[:, 7] < P_CART) | fraud) & ~velocity
        cart = np.where(carted, 1 + weighted_choice(u[:, 8], CART_SIZES), 0)
        remove = ((cart >= 2) & (u[:, 9] < P_REMOVE)).astype(np.int64)
        checkout = carted & ((u[:, 10] < P_CHECKOUT) | fraud)
        pays = checkout & ((u[:, 11] < P_PAY) | fraud)
        k = VELOCITY_MIN + np.floor(u[:, 12] * (VELOCITY_MAX - VELOCITY_MIN + 1)).astype(np.int64)
        purchases = np.where(velocity, k, pays.astype(np.int64))
        count = 1 + search + views + cart + remove + checkout.astype(np.int64) + purchases

        # Events flat, session by session: type from the position within the session.
        sess = np.repeat(np.arange(n), count)
        first = np.cumsum(count) - count
        pos = np.arange(sess.size) - first[sess]
        b1 = 1 + search
        b2 = b1 + views
        b3 = b2 + cart
        b4 = b3 + remove
        b5 = b4 + checkout
        etype = np.select(
            [pos == 0, pos < b1[sess], pos < b2[sess], pos < b3[sess], pos < b4[sess],
             pos < b5[sess]],
            [PAGE, SEARCH, VIEW, CART, REMOVE, CHECKOUT], PURCHASE,
        ).astype(np.int8)  # fmt: skip
        ekeys = rng.combine(keys[sess], pos)
        gap = _lognormal_ms(ekeys, DWELL_S[etype], DWELL_SIGMA)
        if velocity.any():  # k purchases within 5 minutes
            fast = velocity[sess]
            burst = 300_000 // np.maximum(k[sess], 1)
            gap = np.where(fast, 2_000 + (rng.uniform(ekeys, 42) * burst).astype(np.int64), gap)
        if night.any():  # a night session is quick: it ends before 04:00 local
            span = np.bincount(sess, gap, minlength=n)
            squeeze = np.minimum(1.0, NIGHT_SESSION_MS / np.maximum(span, 1.0))
            gap = np.where(night[sess], np.maximum(1, gap * squeeze[sess]).astype(np.int64), gap)
        ends = np.cumsum(gap)
        rel = ends - gap - (ends - gap)[first][sess]
        duration = ends[first + count - 1] - (ends - gap)[first]

        # A user is in one session at a time: a session arriving while the previous one
        # lasts starts a log-normal pause (median 90 s) after it, in arrival order. Under more
        # traffic than the users can absorb (few users, peak x Black Friday) a session waits
        # at most 20 minutes and then overlaps: the rate is kept, not the politeness.
        pause = _lognormal_ms(rng.combine(keys, 9), 90.0, 0.7)
        start = arrival.copy()
        rank = rank_within_entity(user)
        for r in range(int(rank.max()) + 1):
            idx = np.flatnonzero(rank == r)
            who = user[idx]
            ready = np.minimum(self.busy_until[who] + pause[idx], arrival[idx] + MAX_DEFER_MS)
            # (someone else at the account at night does not wait for the owner's session)
            start[idx] = np.where(night[idx], arrival[idx], np.maximum(arrival[idx], ready))
            self.busy_until[who] = np.maximum(self.busy_until[who], start[idx] + duration[idx])
        times = start[sess] + rel

        # Context of each session: where, on what device, what time it is for the user.
        location_fraud = fraud & (pattern == LOCATION)
        city = self.users.city[user].copy()
        lat, lon = self.users.latitude[user].copy(), self.users.longitude[user].copy()
        if location_fraud.any():
            places = self.users.places
            rows = np.flatnonzero(location_fraud)
            for i in rows.tolist():
                others = np.flatnonzero(places.region != self.users.region[user[i]])
                c = int(others[int(u[i, 13] * others.size) % others.size])
                city[i], lat[i], lon[i] = c, places.latitude[c], places.longitude[c]
        signature = self.users.signature[user].copy()
        # 15 % of sessions from another of the user's devices, drawn by the seed's device
        # split, so that the sessions hold it as the users do (50/35/15).
        other_device = u[:, 14] < 0.15
        signature = np.where(other_device, self.users.any_signature(u[:, 15]), signature)
        suspicious = fraud & (pattern == DEVICE)
        signature = np.where(suspicious, SUSPICIOUS[(u[:, 13] * 4).astype(np.int64) % 4],
                             signature)  # fmt: skip
        ctx = {"keys": keys, "user": user, "fraud": fraud, "pattern": pattern,
               "local": self.calendar.local_ms(self.users.zone[user], start)}  # fmt: skip

        # Products of product views, cart adds and removals (the c-th cart add is the c-th
        # product viewed; adds beyond the views are recommendations).
        product = np.full(sess.size, -1, dtype=np.int64)
        slot = np.where(etype == VIEW, pos - b1[sess], -1)
        slot = np.where(etype == CART, pos - b2[sess], slot)
        slot = np.where(etype == REMOVE, cart[sess] - 1, slot)
        slot = np.where(velocity[sess] & (etype == PURCHASE), 200 + pos, slot)
        has = slot >= 0
        product[has] = self._products(sess[has], slot[has], ctx)
        durations_s = np.maximum(1, gap // 1000)

        # Transactions: one per purchase event.
        buy = np.flatnonzero(etype == PURCHASE)
        tkeys = rng.combine(ekeys[buy], 77)
        ts = sess[buy]
        items = np.full((buy.size, MAX_ITEMS), -1, dtype=np.int64)
        quantity = np.zeros((buy.size, MAX_ITEMS), dtype=np.int64)
        bought = cart[ts] - remove[ts]
        for j in range(MAX_ITEMS):
            kept = (~velocity[ts]) & (j < bought)
            if kept.any():
                items[kept, j] = self._products(ts[kept], np.full(int(kept.sum()), j), ctx)
            qk = rng.uniform(rng.combine(tkeys, 10 + j), 0)
            quantity[:, j] = np.where(items[:, j] >= 0, 1 + weighted_choice(qk, QUANTITIES), 0)
        fast = velocity[ts]
        items[fast, 0] = product[buy[fast]]
        quantity[fast, 0] = 1
        amount = fraud[ts] & (pattern[ts] == AMOUNT)
        if amount.any():
            ua = rng.uniform(tkeys, 11)
            micro = amount & (ua < 0.3)
            boost = 5 + np.floor(rng.uniform(tkeys, 12) * 16).astype(np.int64)
            quantity = np.where((amount & ~micro)[:, None], quantity * boost[:, None], quantity)
            cheap = self.products.cheap
            items[micro] = -1
            quantity[micro] = 0
            items[micro, 0] = cheap[(ua[micro] * 1e6).astype(np.int64) % cheap.size]
            quantity[micro, 0] = 1
        tt = times[buy]
        prices = np.zeros(items.shape)
        valid = items >= 0
        prices[valid] = self.prices.at(
            items[valid], np.broadcast_to(tt[:, None], items.shape)[valid]
        )
        subtotal = np.round((prices * quantity).sum(axis=1), 2)
        tax = np.round(subtotal * self.users.places.tax[self.users.city[user[ts]]], 2)
        is_fraud = fraud[ts]
        us = rng.uniform(tkeys, 13)
        score = np.where(is_fraud, 0.62 + 0.37 * np.sqrt(us), 0.01 + 0.55 * us**6)
        payment = np.where(rng.uniform(tkeys, 14) < 0.75, self.users.payment[user[ts]],
                           weighted_choice(rng.uniform(tkeys, 15), PAYMENT_WEIGHTS))  # fmt: skip
        etxn = np.zeros(sess.size, dtype=np.uint64)
        etxn[buy] = tkeys
        self.events.add({
            "time_ms": times, "user": user[sess], "key": ekeys, "session": keys[sess],
            "type": etype, "product": product, "duration_seconds": durations_s,
            "signature": signature[sess], "txn": etxn,
        })  # fmt: skip
        txn_pattern = np.where(is_fraud, pattern[ts], -1).astype(np.int8)
        self.transactions.add({
            "time_ms": tt, "user": user[ts], "key": tkeys, "session": keys[ts], "items": items,
            "quantity": quantity, "price": prices, "subtotal": subtotal, "tax": tax,
            "total_amount": np.round(subtotal + tax, 2), "city": city[ts], "latitude": lat[ts],
            "longitude": lon[ts], "signature": signature[ts], "payment": payment,
            "pattern": txn_pattern, "fraud_score": np.round(score, 3),
        })  # fmt: skip
        f = np.flatnonzero(is_fraud)
        if f.size:
            akeys = rng.combine(tkeys[f], 78)
            self.alerts.add({
                "time_ms": tt[f] + _lognormal_ms(akeys, 15.0, 0.8), "user": user[ts][f],
                "key": akeys, "txn": tkeys[f], "pattern": txn_pattern[f],
                "fraud_score": np.round(score[f], 3), "amount": np.round(subtotal + tax, 2)[f],
                "txn_time_ms": tt[f],
            })  # fmt: skip

    def _product_updates(self, t0: int, t1: int) -> dict[str, npt.NDArray[Any]] | None:
        due = self.repricing.due(t0, t1)
        parts: list[dict[str, npt.NDArray[Any]]] = []
        if len(due) and self.settings.product_updates_per_hour > 0:
            product = self.product_ids[due.entity]
            keys = rng.combine(self.products.keys[product], due.time_ms)
            parts.append({"time_ms": due.time_ms, "product": product, "key": keys,
                          "type": np.zeros(product.size, dtype=np.int8)})  # fmt: skip
        if self.other_updates:
            local, t, keys = self.product_arrivals.arrivals(t0, t1)
            if keys.size:
                kind = np.where(rng.uniform(keys, 5) < 0.75, 1, 2).astype(np.int8)
                parts.append({"time_ms": t, "product": self.product_ids[local], "key": keys,
                              "type": kind})  # fmt: skip
        if not parts:
            return None
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(cols["time_ms"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        product, t = cols["product"], cols["time_ms"]
        cols["price"] = self.prices.at(product, t)
        cols["previous_price"] = self.prices.at(product, t - 1)
        u = rng.uniform_block(cols["key"], 2)
        base = 40 + (self.products.popularity[product] * 30).astype(np.int64)
        cols["stock"] = np.floor(base * (0.2 + 2 * u[:, 0])).astype(np.int64)
        days = (t - 1_577_836_800_000) // DAY_MS  # reviews grow steadily since 2020
        cols["reviews"] = self.products.reviews[product] + np.maximum(days, 0) * (
            1 + product % 3) // 7  # fmt: skip
        cols["rating"] = np.round(np.clip(self.products.rating[product] + (u[:, 1] - 0.5) * 0.2,
                                          1.0, 5.0), 1)  # fmt: skip
        return cols

    # ------------------------------------------------------------------ analytics
    def _account(self, txns: dict[str, npt.NDArray[Any]] | None,
                 events: dict[str, npt.NDArray[Any]] | None) -> None:  # fmt: skip
        """Add released sessions and transactions to their analytics windows."""
        w = self.window_ms
        scopes = len(SCOPES)
        for cols, column in ((events, 0), (txns, 1)):
            if cols is None:
                continue
            mask = cols["type"] == PAGE if column == 0 else np.ones(cols["time_ms"].size, bool)
            if not mask.any():
                continue
            window = cols["time_ms"][mask] // w
            region = self.users.region[cols["user"][mask]]
            values = [np.ones(window.size)]
            if column == 1:
                # Revenue in whole cents: exact sums, whatever order the windows come in.
                cents = np.round(cols["total_amount"][mask] * 100)
                values = [np.ones(window.size), cents,
                          (cols["pattern"][mask] >= 0).astype(np.float64)]  # fmt: skip
            for win in np.unique(window).tolist():
                acc = self.acc.setdefault(win, np.zeros((scopes, 4)))
                here = window == win
                for v, value in enumerate(values):
                    col = column + v
                    sums = np.bincount(region[here], value[here], minlength=scopes - 1)
                    acc[: scopes - 1, col] += sums
                    acc[scopes - 1, col] += sums.sum()

    def _analytics(self, t0: int, t1: int) -> dict[str, npt.NDArray[Any]] | None:
        w = self.window_ms
        ends = np.arange(-(-t0 // w) * w, t1, w, dtype=np.int64)
        ends = ends[ends > 0]
        if not ends.size:
            return None
        rows: dict[str, list[Any]] = {k: [] for k in ("time_ms", "metric", "scope", "value",
                                                      "sample")}  # fmt: skip
        for end in ends.tolist():
            acc = self.acc.pop(end // w - 1, np.zeros((len(SCOPES), 4)))
            sessions, orders, cents, fraud = acc.T
            revenue = cents / 100
            with np.errstate(divide="ignore", invalid="ignore"):
                values = (revenue, orders, revenue / orders, orders / sessions, fraud / orders)
            samples = (orders, orders, orders, sessions, orders)
            for m, (value, sample) in enumerate(zip(values, samples, strict=True)):
                rows["time_ms"].extend([end] * len(SCOPES))
                rows["metric"].extend([m] * len(SCOPES))
                rows["scope"].extend(range(len(SCOPES)))
                rows["value"].extend(value.tolist())
                rows["sample"].extend(sample.tolist())
        cols = {k: np.asarray(v) for k, v in rows.items()}
        window = cols["time_ms"] // w
        cols["key"] = rng.combine(rng.combine(self.analytics_key, window),
                                  cols["metric"] * 8 + cols["scope"])  # fmt: skip
        return cols

    # ------------------------------------------------------------------ Source
    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        if not self.warm:
            # Sessions that began before the run are under way at its start: play the last
            # hour's arrivals and keep only what happens from t0 on (no cold start).
            self.warm = True
            self._new_sessions(t0 - WARMUP_MS, t0)
            for pending in (self.events, self.transactions, self.alerts):
                pending.release(t0)
            # An alert is only worth sending for a transaction the consumer has seen.
            self.alerts.keep(self.alerts.cols.get("txn_time_ms", np.empty(0)) >= t0)
        self._new_sessions(t0, t1)
        released = {
            EVENTS: self.events.release(t1),
            TRANSACTIONS: self.transactions.release(t1),
            ALERTS: self.alerts.release(t1),
            UPDATES: self._product_updates(t0, t1),
        }
        self._account(released[TRANSACTIONS], released[EVENTS])
        released[ANALYTICS] = self._analytics(t0, t1)
        # In channel order, as the engine's look-ahead breaks ties with --max-records.
        made = {ch: released.get(ch) for ch in self.channels}
        batches = {ch: self._batch(ch, cols) for ch, cols in made.items() if cols is not None}
        if limit is not None and sum(len(b) for b in batches.values()) > limit:
            batches = earliest(batches, limit)
        return batches

    def _batch(self, channel: str, cols: dict[str, npt.NDArray[Any]]) -> RecordBatch:
        entity = cols.get("user", cols.get("product", cols.get("metric")))
        assert entity is not None
        if channel == ANALYTICS:
            entity = cols["metric"] * len(SCOPES) + cols["scope"]
        skip = {"time_ms", "key"}
        return RecordBatch(channel, entity.astype(np.int64), cols["time_ms"], cols["key"],
                           {k: v for k, v in cols.items() if k not in skip})  # fmt: skip

    def next_due(self, t: int) -> int:
        w = self.window_ms
        candidates = [
            self.sessions.next_due(t), self.events.first(), self.transactions.first(),
            self.alerts.first(), self.repricing.next_due(t), -(-t // w) * w,
        ]  # fmt: skip
        if self.other_updates:
            candidates.append(self.product_arrivals.next_due(t))
        return max(t, min(candidates))

    def target_rates(self, t: int) -> dict[str, float]:
        sessions = self.sessions.target_rate(t)
        txns = sessions * self.txn_per_session
        updates = self.repricing.target_rate(t) if self.settings.product_updates_per_hour else 0.0
        if self.other_updates:
            updates += self.product_arrivals.target_rate(t)
        return {
            TRANSACTIONS: txns,
            EVENTS: self.settings.user_events_per_hour / self.settings.transactions_per_hour * txns,
            UPDATES: updates,
            ALERTS: txns * self.settings.effective_fraud_rate,
            ANALYTICS: len(METRICS) * len(SCOPES) / self.settings.analytics_window_s,
        }

    def entities(self) -> dict[str, int]:
        users = int(self.user_ids.size)
        return {TRANSACTIONS: users, EVENTS: users, UPDATES: int(self.product_ids.size),
                ALERTS: users, ANALYTICS: len(METRICS) * len(SCOPES)}  # fmt: skip

    def describe(self, report: dict[str, Any]) -> None:
        """The seed's ``stats``: users and products by kind, the realised fraud rate."""
        users, products = self.users, self.products
        report["users"] = {
            "count": users.count,
            "by_type": shares(users.type, USER_TYPES),
            "by_region": shares(users.region, REGIONS),
            "by_device": shares(users.device, DEVICE_TYPES),
            "by_age_group": shares(users.age, AGE_GROUPS),
        }
        report["products"] = {
            "count": products.count,
            "by_category": shares(products.category, CATEGORY_NAMES),
            "price_range": [float(products.base_price.min()), float(products.base_price.max())],
            "seasonal": int(products.seasonal.sum()),
        }
        txns = report["realised"][TRANSACTIONS]
        legit = txns["kinds"].get("legit", {}).get("count", 0)
        txns["fraud_rate"] = round(1 - legit / txns["count"], 5) if txns["count"] else None
        report["model"] = {
            "sessions_per_transaction": round(1 / self.txn_per_session, 3),
            "mean_product_views": round(1 + self.views_mean, 3),
            "fraud_session_share": round(self.fraud.session_p, 6),
        }

    def product_rows(self) -> list[dict[str, Any]]:
        p = self.products
        return [
            {"product_id": pid, "name": name, "category": CATEGORY_NAMES[c],
             "base_price": float(price), "rating": float(rating), "is_seasonal": bool(seasonal)}
            for pid, name, c, price, rating, seasonal in zip(
                p.ids(np.arange(p.count)), p.names.tolist(), p.category.tolist(),
                p.base_price.tolist(), p.rating.tolist(), p.seasonal.tolist(), strict=True,
            )
        ]  # fmt: skip


# --------------------------------------------------------------------------- schemas


class Texts:
    """The catalog's strings, made once and shared by the five schemas."""

    def __init__(self, users: Users, products: Products) -> None:
        self.users = np.array(users.ids(np.arange(users.count)), dtype=object)
        self.product_ids = np.array(products.ids(np.arange(products.count)), dtype=object)
        self.categories = np.array([CATEGORY_NAMES[c] for c in products.category], dtype=object)
        self.signatures = [
            {"device_type": d, "os": o, "browser": b, "screen_resolution": r}
            for d, o, b, r, _ in SIGNATURES
        ]


class _ShopSchema:
    stream: str
    partition_key: str
    optional_fields: tuple[str, ...]
    measures: dict[str, tuple[float, float, float]]
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]]
    ARROW: ClassVar[pa.Schema]
    kinds: Kinds | None
    time_field = "timestamp"

    def __init__(self, source: EcommerceSource, text: Texts) -> None:
        self.source = source
        self.measures = dict(self.MEASURES)
        self.users, self.product_ids = text.users, text.product_ids
        self.categories, self.signatures = text.categories, text.signatures

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        raise NotImplementedError

    def table(self, batch: RecordBatch) -> pa.Table:
        return rows_table(self.rows(batch), self.ARROW)


class EventSchema(_ShopSchema):
    """The seed's user event, plus the transaction of a purchase event."""

    ARROW = arrow_schema(
        [
            ("event_id", pa.string()),
            ("user_id", pa.string()),
            ("session_id", pa.string()),
            ("event_type", pa.string()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("product_id", pa.string()),
            ("category", pa.string()),
            ("page_url", pa.string()),
            ("duration_seconds", pa.int64()),
            ("device_info", DEVICE_INFO),
            ("transaction_id", pa.string()),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )

    stream = EVENTS
    partition_key = "session_id"
    optional_fields: tuple[str, ...] = ("device_info",)
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "duration_seconds": (30.0, 0.0, 86_400.0)
    }

    def __init__(self, source: EcommerceSource, text: Texts) -> None:
        super().__init__(source, text)
        slugs = [c.lower().replace(" & ", "-").replace(" ", "-") for c in CATEGORY_NAMES]
        cat = source.products.category
        self.view_urls = np.array(
            [f"/products/{slugs[c]}/{pid}" for c, pid in zip(cat, self.product_ids, strict=True)],
            dtype=object,
        )
        self.fixed_urls = ("/", "/search", None, "/cart", "/cart", "/checkout",
                           "/checkout/confirmation")  # fmt: skip
        self.slugs = slugs

    kinds = Kinds("type", EVENT_TYPES)

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        product = c["product"]
        has = product >= 0
        pid = np.full(product.size, None, dtype=object)
        cat = np.full(product.size, None, dtype=object)
        pid[has] = self.product_ids[product[has]]
        cat[has] = self.categories[product[has]]
        types = c["type"].tolist()
        urls = [self.fixed_urls[t] for t in types]
        for i in np.flatnonzero(c["type"] == VIEW).tolist():
            urls[i] = self.view_urls[product[i]]
        txn = c["txn"]
        txn_ids: list[str | None] = [None] * len(batch)
        for i in np.flatnonzero(txn != NO_TXN).tolist():
            txn_ids[i] = f"txn_{int(txn[i]) & 0xFFFFFFFFFFFF:012x}"
        sigs = self.signatures
        return [
            {
                "event_id": eid, "user_id": user, "session_id": sid,
                "event_type": EVENT_TYPES[t], "timestamp": ts, "product_id": p,
                "category": ct, "page_url": url, "duration_seconds": d,
                "device_info": sigs[s], "transaction_id": tx, "message_id": mid,
                "is_duplicate": dup,
            }
            for eid, user, sid, t, ts, p, ct, url, d, s, tx, mid, dup in zip(
                _hex("evt_", batch.key, 16), self.users[batch.entity].tolist(),
                _hex("sess_", c["session"], 12), types, batch.iso_times(), pid.tolist(),
                cat.tolist(), urls, c["duration_seconds"].tolist(), c["signature"].tolist(),
                txn_ids,
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip


class TransactionSchema(_ShopSchema):
    """The seed's transaction, plus session, subtotal, tax, currency and the fraud pattern."""

    ARROW = arrow_schema(
        [
            ("transaction_id", pa.string()),
            ("user_id", pa.string()),
            ("session_id", pa.string()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            (
                "products",
                pa.list_(
                    pa.struct(
                        [
                            ("product_id", pa.string()),
                            ("name", pa.string()),
                            ("category", pa.string()),
                            ("price", pa.float64()),
                            ("quantity", pa.int64()),
                        ]
                    )
                ),
            ),
            ("subtotal", pa.float64()),
            ("tax_amount", pa.float64()),
            ("total_amount", pa.float64()),
            ("currency", pa.string()),
            ("payment_method", pa.string()),
            (
                "location",
                pa.struct(
                    [
                        ("country", pa.string()),
                        ("state", pa.string()),
                        ("city", pa.string()),
                        ("latitude", pa.float64()),
                        ("longitude", pa.float64()),
                    ]
                ),
            ),
            ("device_info", DEVICE_INFO),
            ("is_fraud", pa.bool_()),
            ("fraud_score", pa.float64()),
            ("fraud_pattern", pa.string()),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )

    stream = TRANSACTIONS
    partition_key = "user_id"
    optional_fields: tuple[str, ...] = ("device_info",)
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "total_amount": (100.0, 0.0, 1_000_000.0)
    }

    kinds = Kinds("pattern", ("legit", *FRAUD_PATTERNS), 1)  # -1 (legit) counts as kind 0

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        products = self.source.products
        places = self.source.users.places
        names = products.names
        rows = []
        for i, (tid, user, sid, ts, mid, dup) in enumerate(zip(
            _hex("txn_", batch.key, 12), self.users[batch.entity].tolist(),
            _hex("sess_", c["session"], 12), batch.iso_times(),
            batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(), strict=True,
        )):  # fmt: skip
            items = [
                {"product_id": self.product_ids[p], "name": names[p],
                 "category": CATEGORY_NAMES[products.category[p]], "price": price,
                 "quantity": q}
                for p, price, q in zip(c["items"][i].tolist(), c["price"][i].tolist(),
                                       c["quantity"][i].tolist(), strict=True)
                if p >= 0
            ]  # fmt: skip
            city = int(c["city"][i])
            pattern = int(c["pattern"][i])
            rows.append({
                "transaction_id": tid, "user_id": user, "session_id": sid, "timestamp": ts,
                "products": items, "subtotal": float(c["subtotal"][i]),
                "tax_amount": float(c["tax"][i]), "total_amount": float(c["total_amount"][i]),
                "currency": "USD", "payment_method": PAYMENT_METHODS[int(c["payment"][i])],
                "location": {"country": places.country_code[city], "state": places.state[city],
                             "city": places.name[city], "latitude": float(c["latitude"][i]),
                             "longitude": float(c["longitude"][i])},
                "device_info": self.signatures[int(c["signature"][i])],
                "is_fraud": pattern >= 0, "fraud_score": float(c["fraud_score"][i]),
                "fraud_pattern": FRAUD_PATTERNS[pattern] if pattern >= 0 else None,
                "message_id": mid, "is_duplicate": dup,
            })  # fmt: skip
        return rows


class AlertSchema(_ShopSchema):
    """A fraud alert: which transaction, why, how sure, how urgent."""

    ARROW = arrow_schema(
        [
            ("alert_id", pa.string()),
            ("transaction_id", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("transaction_timestamp", pa.timestamp("ms", tz="UTC")),
            ("fraud_type", pa.string()),
            ("fraud_score", pa.float64()),
            ("severity", pa.string()),
            ("amount", pa.float64()),
            ("reasons", pa.list_(pa.string())),
            ("status", pa.string()),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )

    stream = ALERTS
    partition_key = "transaction_id"
    optional_fields: tuple[str, ...] = ("reasons",)
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]] = {"fraud_score": (0.1, 0.0, 1.0)}
    REASONS = (
        "5+ transactions within 5 minutes", "transaction from another continent",
        "amount far from the user's usual", "purchase at 2-4 AM local time",
        "unknown or suspicious device", "category the user never buys",
    )  # fmt: skip

    kinds = Kinds("pattern", FRAUD_PATTERNS)

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        txn_times = np.datetime_as_string(c["txn_time_ms"].astype("datetime64[ms]"), timezone="UTC")
        return [
            {
                "alert_id": aid, "transaction_id": tid, "user_id": user, "timestamp": ts,
                "transaction_timestamp": tts, "fraud_type": FRAUD_PATTERNS[p],
                "fraud_score": score, "severity": "critical" if score >= 0.9 else (
                    "high" if score >= 0.75 else "medium"),
                "amount": amount, "reasons": [self.REASONS[p]], "status": "open",
                "message_id": mid, "is_duplicate": dup,
            }
            for aid, tid, user, ts, tts, p, score, amount, mid, dup in zip(
                _hex("alert_", batch.key, 12), _hex("txn_", c["txn"], 12),
                self.users[batch.entity].tolist(), batch.iso_times(), txn_times.tolist(),
                c["pattern"].tolist(), c["fraud_score"].tolist(), c["amount"].tolist(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip


class UpdateSchema(_ShopSchema):
    """A product update: the product as it is now (price, stock, rating) and what changed."""

    ARROW = arrow_schema(
        [
            ("update_id", pa.string()),
            ("product_id", pa.string()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("update_type", pa.string()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            ("previous_price", pa.float64()),
            ("stock_quantity", pa.int64()),
            ("rating", pa.float64()),
            ("review_count", pa.int64()),
            ("is_seasonal", pa.bool_()),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )

    stream = UPDATES
    partition_key = "product_id"
    optional_fields: tuple[str, ...] = ("rating",)
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]] = {"price": (20.0, 0.0, 100_000.0)}

    kinds = Kinds("type", UPDATE_TYPES)

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        p = self.source.products
        return [
            {
                "update_id": uid, "product_id": self.product_ids[prod], "timestamp": ts,
                "update_type": UPDATE_TYPES[t], "name": p.names[prod],
                "category": CATEGORY_NAMES[p.category[prod]], "price": price,
                "previous_price": prev if t == 0 else None, "stock_quantity": stock,
                "rating": rating, "review_count": reviews, "is_seasonal": bool(p.seasonal[prod]),
                "message_id": mid, "is_duplicate": dup,
            }
            for uid, prod, ts, t, price, prev, stock, rating, reviews, mid, dup in zip(
                _hex("upd_", batch.key, 12), batch.entity.tolist(), batch.iso_times(),
                c["type"].tolist(), c["price"].tolist(), c["previous_price"].tolist(),
                c["stock"].tolist(), c["rating"].tolist(), c["reviews"].tolist(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip


class AnalyticsSchema(_ShopSchema):
    """A metric over one window and one region, computed from this process's transactions."""

    ARROW = arrow_schema(
        [
            ("metric_id", pa.string()),
            ("metric_type", pa.string()),
            ("region", pa.string()),
            ("window_start", pa.timestamp("ms", tz="UTC")),
            ("window_end", pa.timestamp("ms", tz="UTC")),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("value", pa.float64()),
            ("sample_size", pa.int64()),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )

    stream = ANALYTICS
    partition_key = "metric_type"
    optional_fields: tuple[str, ...] = ("sample_size",)
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]] = {"value": (1.0, -1e12, 1e12)}

    kinds = Kinds("metric", METRICS)

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        w = self.source.window_ms
        starts = np.datetime_as_string((batch.time_ms - w).astype("datetime64[ms]"), timezone="UTC")
        return [
            {
                "metric_id": mid_, "metric_type": METRICS[m], "region": SCOPES[s],
                "window_start": start, "window_end": ts, "timestamp": ts,
                "value": None if value != value else round(value, 4),
                "sample_size": int(sample), "message_id": mid, "is_duplicate": dup,
            }
            for mid_, m, s, start, ts, value, sample, mid, dup in zip(
                _hex("met_", batch.key, 12), c["metric"].tolist(), c["scope"].tolist(),
                starts.tolist(), batch.iso_times(), c["value"].tolist(), c["sample"].tolist(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip
