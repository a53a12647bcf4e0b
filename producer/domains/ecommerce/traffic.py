"""When and where e-commerce traffic happens: the calendar per time zone, session and
product-update arrivals, which sessions are fraud, prices over time, and what a seasonal
event lifts."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.domains.ecommerce.fields import FRAUD_PATTERNS
from producer.domains.ecommerce.shop import (
    CATEGORIES,
    CATEGORY_NAMES,
    Products,
    Users,
    event_at,
    local_factors,
    seasonal_events,
)
from producer.domains.ecommerce.vocabulary import (
    FAVOURITE_SHARE,
    NIGHT_FROM_MS,
    NIGHT_UNTIL_MS,
    TIME,
    VELOCITY,
    VELOCITY_MAX,
    VELOCITY_MIN,
    Bools,
)
from producer.episodes import Episodes
from producer.generators import (
    weighted_choice,
    weighted_choice_rows,
)
from producer.rates import FixedInterval, Pace, TotalRate
from producer.rng import F64, I64, U64
from producer.settings import RateSettings
from producer.timeline import DAY_MS, HOUR_MS
from producer.zones import ZoneTable


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
        fraud: Fraud, share: float, pace: Pace | None = None,
    ) -> None:  # fmt: skip
        super().__init__(key, users.count, local, RateSettings(total_per_s=per_hour / 3600), share,
                         pace)  # fmt: skip
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
        fraud, pattern = self.fraud.of(keys, times)
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
        share: float, pace: Pace | None = None,
    ) -> None:  # fmt: skip
        super().__init__(key, count, local, RateSettings(total_per_s=per_hour / 3600), share,
                         pace)  # fmt: skip
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
        self.episodes: Episodes | None = None  # live control's fraud bursts

    def of(self, keys: U64, times: I64 | None = None) -> tuple[npt.NDArray[np.bool_], I64]:
        """Fraud and pattern of sessions with these keys (starting at ``times``: inside a
        fraud burst a session is fraud with the burst's share)."""
        u = rng.uniform(keys, 3)
        fraud = u < self.session_p
        if self.episodes is not None and times is not None and times.size:
            for burst in self.episodes.active(
                "fraud_burst", int(times.min()), int(times.max()) + 1
            ):
                inside = (times >= burst.start_ms) & (times < burst.end_ms)
                fraud |= inside & (u < float(burst.params["share"]))
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
