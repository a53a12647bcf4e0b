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

from typing import Any

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.domains.ecommerce.accounts import USERS, Accounts, UserSchema
from producer.domains.ecommerce.analytics import Analytics
from producer.domains.ecommerce.catalog import (
    DISCONTINUE_P,
    PRODUCTS,
    SLOT_MS,
    ProductTable,
    available,
    state,
)
from producer.domains.ecommerce.fields import EcommerceFields
from producer.domains.ecommerce.schemas import (
    AlertSchema,
    AnalyticsSchema,
    EventSchema,
    ShopSchema,
    Texts,
    TransactionSchema,
    UpdateSchema,
)
from producer.domains.ecommerce.shop import (
    AGE_GROUPS,
    CATEGORIES,
    CATEGORY_NAMES,
    DEVICE_TYPES,
    PAYMENT_WEIGHTS,
    REGIONS,
    RESALE,
    SUSPICIOUS,
    USER_TYPES,
    Places,
    Products,
    Users,
    event_at,
    shares,
)
from producer.domains.ecommerce.traffic import (
    Calendar,
    EventLift,
    Fraud,
    Prices,
    ProductArrivals,
    SessionArrivals,
)
from producer.domains.ecommerce.vocabulary import (
    ALERTS,
    AMOUNT,
    ANALYTICS,
    CART,
    CART_SIZES,
    CATEGORY,
    CHECKOUT,
    DEVICE,
    DWELL_S,
    DWELL_SIGMA,
    EVENTS,
    FAVOURITE_SHARE,
    LOCATION,
    MAX_DEFER_MS,
    MAX_ITEMS,
    MAX_VIEWS,
    METRICS,
    NIGHT_SESSION_MS,
    P_CART,
    P_CHECKOUT,
    P_PAY,
    P_REMOVE,
    P_SEARCH,
    PAGE,
    PURCHASE,
    QUANTITIES,
    REMOVE,
    SCOPES,
    SEARCH,
    STREAM,
    TIME,
    TRANSACTIONS,
    UPDATES,
    VELOCITY,
    VELOCITY_MAX,
    VELOCITY_MIN,
    VIEW,
    WARMUP_MS,
    Bools,
)
from producer.errors import ConfigError
from producer.generators import (
    Pending,
    earliest,
    lognormal,
    rank_within_entity,
    shard_entities,
    weighted_choice,
)
from producer.rates import FixedInterval, Pace
from producer.records import RecordBatch, Schema
from producer.rng import F64, I64, U64
from producer.settings import Shard
from producer.timeline import HOUR_MS


def _lognormal_ms(keys: U64, median_s: F64 | float, sigma: float) -> I64:
    """Log-normal durations in whole milliseconds (at least 1), from seconds."""
    ms: I64 = np.maximum(1, np.rint(lognormal(keys, 40, median_s, sigma) * 1000.0))
    return ms.astype(np.int64)


class EcommerceSource:
    def __init__(
        self, settings: EcommerceFields, seed: int, shard: Shard, pace: Pace | None = None
    ) -> None:

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
            sessions_per_hour * settings.traffic_factor, f, u_ids.size / settings.users, pace,
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
            max(other, 1e-9), self.sessions, share_p, pace,
        )  # fmt: skip
        self.other_updates = other > 0
        self.busy_until = np.zeros(settings.users, dtype=np.int64)
        self.warm = False
        self.events = Pending()
        self.transactions = Pending()
        self.alerts = Pending()
        self.window_ms = settings.analytics_window_s * 1000
        # A shard's results are its share: ids of their own (a consumer adds them up).
        salt = () if shard.count == 1 else (f"shard {shard.index}/{shard.count}",)
        self.analytics = Analytics(self.users.region, self.window_ms,
                                   rng.text_key(seed, STREAM, "analytics", *salt))  # fmt: skip
        text = Texts(self.users, self.products, self.window_ms)
        self.schemas: dict[str, ShopSchema] = {
            TRANSACTIONS: TransactionSchema(text),
            EVENTS: EventSchema(text),
            UPDATES: UpdateSchema(text),
            ALERTS: AlertSchema(text),
            ANALYTICS: AnalyticsSchema(text),
        }
        self.table = ProductTable(self.products, self.prices, p_ids) if settings.cdc else None
        self.accounts = Accounts(self.users, u_ids) if settings.cdc else None
        if self.table is not None:
            self.schemas[PRODUCTS] = UpdateSchema(text)  # (its rows: catalog.ROW_COLUMNS)
        self.channels: dict[str, Schema] = dict(self.schemas)
        if self.accounts is not None:
            self.channels[USERS] = UserSchema(self.users, seed)

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

    def _products(self, session: I64, slot: I64, ctx: dict[str, Any], when: I64) -> I64:
        keys = rng.combine(ctx["keys"][session], 1000 + slot)
        pattern, fraud = ctx["pattern"][session], ctx["fraud"][session]
        category, in_season = self._categories(
            ctx["user"][session], keys, ctx["local"][session],
            fraud & (pattern == CATEGORY), fraud & (pattern == VELOCITY),
        )  # fmt: skip
        picked = self.products.choose(category, rng.uniform(keys, 8), in_season)
        if self.table is None:
            return picked
        return available(self.products, self.table.discontinued, picked, when)

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
        # (CDC on: the account holding the seat when the session starts, see accounts.py)
        account = None if self.accounts is None else self.accounts.ids(user, start)

        # Products of product views, cart adds and removals (the c-th cart add is the c-th
        # product viewed; adds beyond the views are recommendations).
        product = np.full(sess.size, -1, dtype=np.int64)
        slot = np.where(etype == VIEW, pos - b1[sess], -1)
        slot = np.where(etype == CART, pos - b2[sess], slot)
        slot = np.where(etype == REMOVE, cart[sess] - 1, slot)
        slot = np.where(velocity[sess] & (etype == PURCHASE), 200 + pos, slot)
        has = slot >= 0
        product[has] = self._products(sess[has], slot[has], ctx, times[has])
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
                items[kept, j] = self._products(ts[kept], np.full(int(kept.sum()), j), ctx,
                                                times[buy][kept])  # fmt: skip
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
        accounts = {} if account is None else {"account": account}
        self.events.add({
            "time_ms": times, "user": user[sess], "key": ekeys, "session": keys[sess],
            "type": etype, "product": product, "duration_seconds": durations_s,
            "signature": signature[sess], "txn": etxn, **{k: a[sess] for k, a in accounts.items()},
        })  # fmt: skip
        txn_pattern = np.where(is_fraud, pattern[ts], -1).astype(np.int8)
        self.transactions.add({
            "time_ms": tt, "user": user[ts], "key": tkeys, "session": keys[ts], "items": items,
            "quantity": quantity, "price": prices, "subtotal": subtotal, "tax": tax,
            "total_amount": np.round(subtotal + tax, 2), "city": city[ts], "latitude": lat[ts],
            "longitude": lon[ts], "signature": signature[ts], "payment": payment,
            "pattern": txn_pattern, "fraud_score": np.round(score, 3),
            **{k: a[ts] for k, a in accounts.items()},
        })  # fmt: skip
        f = np.flatnonzero(is_fraud)
        if f.size:
            akeys = rng.combine(tkeys[f], 78)
            self.alerts.add({
                "time_ms": tt[f] + _lognormal_ms(akeys, 15.0, 0.8), "user": user[ts][f],
                "key": akeys, "txn": tkeys[f], "pattern": txn_pattern[f],
                "fraud_score": np.round(score[f], 3), "amount": np.round(subtotal + tax, 2)[f],
                "txn_time_ms": tt[f], **{k: a[ts][f] for k, a in accounts.items()},
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
        cols.update(state(self.products, self.prices, product, t, cols["key"]))
        cols["previous_price"] = self.prices.at(product, t - 1)
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
        if self.table is not None:
            released[PRODUCTS] = self.table.records(t0, t1, released[UPDATES])
        if self.accounts is not None:
            released[USERS] = self.accounts.records(t0, t1)
        self.analytics.account(released[TRANSACTIONS], released[EVENTS])
        released[ANALYTICS] = self.analytics.results(t0, t1)
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

    def snapshot(self, t: int) -> dict[str, RecordBatch]:
        """The products and users tables' rows at ``t`` (CDC on; ``catalog.py``,
        ``accounts.py``)."""
        if self.table is None or self.accounts is None:
            return {}
        return {PRODUCTS: self._batch(PRODUCTS, self.table.snapshot(t)),
                USERS: self._batch(USERS, self.accounts.snapshot(t))}  # fmt: skip

    def next_due(self, t: int) -> int:
        w = self.window_ms
        candidates = [
            self.sessions.next_due(t), self.events.first(), self.transactions.first(),
            self.alerts.first(), self.repricing.next_due(t), -(-t // w) * w,
        ]  # fmt: skip
        if self.other_updates:
            candidates.append(self.product_arrivals.next_due(t))
        for table in (self.table, self.accounts):
            if table is not None:
                candidates.append(table.next_due(t))
        return max(t, min(candidates))

    def target_rates(self, t: int) -> dict[str, float]:
        sessions = self.sessions.target_rate(t)
        txns = sessions * self.txn_per_session
        updates = self.repricing.target_rate(t) if self.settings.product_updates_per_hour else 0.0
        if self.other_updates:
            updates += self.product_arrivals.target_rate(t)
        rates = {
            TRANSACTIONS: txns,
            EVENTS: self.settings.user_events_per_hour / self.settings.transactions_per_hour * txns,
            UPDATES: updates,
            ALERTS: txns * self.settings.effective_fraud_rate,
            ANALYTICS: len(METRICS) * len(SCOPES) / self.settings.analytics_window_s,
        }
        if self.table is not None:  # its updates, and two changes a stretch off the catalog
            rates[PRODUCTS] = updates + self.product_ids.size * 2 * DISCONTINUE_P / SLOT_MS * 1000
        if self.accounts is not None:
            rates[USERS] = self.accounts.target_rate()
        return rates

    def entities(self) -> dict[str, int]:
        users = int(self.user_ids.size)
        products = int(self.product_ids.size)
        tables = {PRODUCTS: products, USERS: users} if self.table is not None else {}
        return {TRANSACTIONS: users, EVENTS: users, UPDATES: products, ALERTS: users,
                ANALYTICS: len(METRICS) * len(SCOPES), **tables}  # fmt: skip

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
