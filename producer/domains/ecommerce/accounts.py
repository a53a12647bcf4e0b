"""The users as a table (``SYNTHSTREAM_ECOMMERCE__CDC=true``): accounts that sign up, edit
their profile, move up the loyalty tiers and close, for change data capture.

The shop has a fixed number of *seats* (``SYNTHSTREAM_ECOMMERCE__USERS``): the sessions'
users, with their segment, home, devices and habits (``shop.Users``). Each seat is held by
one account at a time. In every 90-day slot the account closes with a probability by
segment (new 30 %, regular 4 %, VIP 1 %: new customers churn), at a uniform moment, and a
new account signs up in the seat at that moment: a delete of the old row, a create of the
new one. So the number of accounts, and the traffic, stay as configured, and every session
belongs to an account that exists when it starts. Account ``g`` of seat ``i`` (``g`` closures
since 2015, when the histories begin) is ``user_<g x users + i + 1>``: the first accounts
keep the ids of the streams without CDC, later ones take ids above them, as an
auto-increment would. The successor shares the seat's segment, home city and habits (the
sessions are drawn from them) but is another person: another name, e-mail and street.

Twice a slot an account may edit its profile (probability 50 % and 25 %, uniform moments):
a new e-mail address or a new street address, half and half. Its loyalty tier moves up
with its age: bronze at sign-up, silver after 180 days, gold after two years, platinum after
six, each divided by the seat's activity (a VIP gets to silver in about 72 days). Each of
these is an update of the row. A session under way when its account closes ends as it
began, under the closed account's id (as an order placed just before a closure would).

Everything is a pure function of the seed and event time: the accounts a seat has had are
counted slot by slot from 2015 (cached), the state of a row is found from its account's
start and its last edits, so shards and chunkings give the same changes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer import rng
from producer.domains.ecommerce.shop import (
    AGE_GROUPS,
    CATEGORY_NAMES,
    DEVICE_TYPES,
    REGIONS,
    USER_TYPES,
    Users,
)
from producer.domains.ecommerce.slots import BySlot
from producer.generators import names
from producer.records import Kinds, RecordBatch, arrow_schema, timestamp_array
from producer.rng import I64, U64
from producer.timeline import DAY_MS

USERS = "users"  # the table's channel (and its topic, Kinesis stream, table)
ROW_COLUMNS = ("user_id", "name", "email", "street_address", "city", "country", "region",
               "user_type", "age_group", "preferred_device", "favourite_categories",
               "loyalty_tier", "signed_up_at", "timestamp")  # fmt: skip
SLOT_MS = 90 * DAY_MS
HISTORY_SLOT = -(-1_420_070_400_000 // SLOT_MS)  # the first slot from 2015-01-01 on
YEAR_MS = 365 * DAY_MS
CLOSE_P = np.array([0.04, 0.01, 0.30])  # a slot's chance of closing, by USER_TYPES
EDIT_P = (0.5, 0.25)  # a slot's two chances of a profile edit
TIERS = ("bronze", "silver", "gold", "platinum")
TIER_DAYS = np.array([0.0, 180.0, 730.0, 2190.0])  # account age per tier, at activity 1
_SALT = rng.text_key("ecommerce", "accounts")
_KEEP = 3  # slots of closure counts kept (a window and its warm-up touch two)
Columns = dict[str, npt.NDArray[Any]]


class Accounts:
    """The accounts of a shard's seats (see the module's docstring)."""

    def __init__(self, users: Users, shard_users: I64) -> None:
        self.users, self.mine = users, shard_users
        self.local = np.full(users.count, -1, dtype=np.int64)
        self.local[shard_users] = np.arange(shard_users.size)
        self.keys = rng.combine(users.keys, _SALT)
        self.close_p = CLOSE_P[users.type]
        # (ms of account age at which each tier begins, per seat)
        self.tier_ms = np.ceil(TIER_DAYS[None, :] * DAY_MS / users.activity[:, None]).astype(
            np.int64
        )
        u = rng.uniform(self.keys, 0)  # the first accounts signed up in the five years before
        self.first = (HISTORY_SLOT * SLOT_MS - (1 + 4 * u) * YEAR_MS).astype(np.int64)
        # slot -> (closures before it, the last one's moment or -1), for the shard's seats
        self.counted: dict[int, tuple[I64, I64]] = {}
        self.by_slot = BySlot(SLOT_MS, self._between)  # (the channel, a slot at a time)

    # ------------------------------------------------------------------ draws of a slot
    def _draws(self, seats: I64, slot: I64 | int) -> npt.NDArray[np.float64]:
        """A seat's numbers for a slot: 0-1 its closure (whether, when), 2-4 and 5-7 its
        two edits (whether, when, which field)."""
        return rng.uniform_block(rng.combine(self.keys[seats], slot), 8)

    def closures(self, seats: I64, slot: I64 | int) -> tuple[npt.NDArray[np.bool_], I64]:
        """Whether each seat's account closes in ``slot`` (from 2015 on), and when."""
        slot = np.broadcast_to(np.asarray(slot, dtype=np.int64), seats.shape)
        u = self._draws(seats, slot)
        hit = (u[:, 0] < self.close_p[seats]) & (slot >= HISTORY_SLOT)
        return hit, slot * SLOT_MS + (u[:, 1] * SLOT_MS).astype(np.int64)

    def edits(self, seats: I64, slot: I64) -> list[tuple[npt.NDArray[np.bool_], I64, U64, I64]]:
        """The slot's two profile edits of each seat: (whether, when, key, field: 0 e-mail,
        1 street)."""
        u = self._draws(seats, slot)
        out = []
        for chance, p in enumerate(EDIT_P):
            col = 2 + 3 * chance
            when = slot * SLOT_MS + (u[:, col + 1] * SLOT_MS).astype(np.int64)
            key = rng.combine(rng.combine(self.keys[seats], when), chance)
            field = (u[:, col + 2] < 0.5).astype(np.int64)
            out.append(((u[:, col] < p) & (slot >= HISTORY_SLOT), when, key, field))
        return out

    def _counts(self, slot: int) -> tuple[I64, I64]:
        """Closures of each shard seat before ``slot``, and the moment of the last (or -1)."""
        if slot in self.counted:
            return self.counted[slot]
        below = [s for s in self.counted if s < slot]
        if below:
            s = max(below)
            count, last = (a.copy() for a in self.counted[s])
        else:
            s = HISTORY_SLOT
            count = np.zeros(self.mine.size, dtype=np.int64)
            last = np.full(self.mine.size, -1, dtype=np.int64)
        for k in range(s, slot):
            hit, when = self.closures(self.mine, k)
            count += hit
            last = np.where(hit, when, last)
        self.counted[slot] = (count, last)
        while len(self.counted) > _KEEP:
            del self.counted[min(self.counted)]
        return count, last

    def account(self, seats: I64, t: I64) -> tuple[I64, I64]:
        """The account holding each seat at ``t``: (its number in the seat, its sign-up)."""
        gen = np.zeros(seats.size, dtype=np.int64)
        start = self.first[seats].copy()
        slot = t // SLOT_MS
        for s in np.unique(slot[slot >= HISTORY_SLOT]).tolist():
            rows = np.flatnonzero(slot == s)
            count, last = self._counts(s)
            local = self.local[seats[rows]]
            hit, when = self.closures(seats[rows], s)
            now = hit & (when <= t[rows])
            gen[rows] = count[local] + now
            before = np.where(last[local] >= 0, last[local], start[rows])
            start[rows] = np.where(now, when, before)
        return gen, start

    def ids(self, seats: I64, t: I64) -> I64:
        """The account index (``user_<index + 1>``) of each seat at ``t``."""
        return self.account(seats, t)[0] * self.users.count + seats

    def _last_edits(self, seats: I64, t: I64, start: I64) -> tuple[U64, U64]:
        """The key of each seat's last e-mail and street edit in [start, t] (0: none),
        slot by slot back from ``t``'s to ``start``'s."""
        key = [np.zeros(seats.size, dtype=np.uint64) for _ in range(2)]
        at = [np.full(seats.size, -1, dtype=np.int64) for _ in range(2)]
        slot, first = t // SLOT_MS, np.maximum(start // SLOT_MS, HISTORY_SLOT)
        s = slot.copy()
        while (rows := np.flatnonzero((s >= first) & ((at[0] < 0) | (at[1] < 0)))).size:
            for hit, when, k, field in self.edits(seats[rows], s[rows]):
                ok = hit & (when >= start[rows]) & (when <= t[rows])
                for f in (0, 1):  # (of a slot's two edits of a field, the later)
                    take = ok & (field == f) & (when > at[f][rows])
                    at[f][rows[take]], key[f][rows[take]] = when[take], k[take]
            s[rows] -= 1  # (a field found in a slot is settled: earlier slots are earlier)
        return key[0], key[1]

    def rows(self, seats: I64, t: I64, account_t: I64, closed: npt.NDArray[np.bool_]) -> Columns:
        """Each seat's row at ``t`` (its account as it is at ``account_t``), as columns."""
        gen, start = self.account(seats, account_t)
        email, street = self._last_edits(seats, account_t, start)
        age = (account_t - start)[:, None]
        tier = (age >= self.tier_ms[seats]).sum(axis=1) - 1
        return {"time_ms": t, "user": seats, "account": gen * self.users.count + seats,
                "gen": gen, "signed_up": start, "tier": np.maximum(tier, 0).astype(np.int8),
                "email_key": email, "street_key": street, "closed": closed,
                "key": rng.combine(rng.combine(self.keys[seats], t), gen)}  # fmt: skip

    # ------------------------------------------------------------------ the channel
    def records(self, t0: int, t1: int) -> Columns | None:
        """The ``users`` channel's columns for [t0, t1): closures (a delete and a create),
        profile edits and tier changes, in time order."""
        return self.by_slot.between(t0, t1)

    def _between(self, t0: int, t1: int) -> Columns | None:
        mine = self.mine
        seat, time, as_of, closed = [mine[:0]], [mine[:0]], [mine[:0]], [np.zeros(0, np.bool_)]

        def add(s: I64, t: I64, account_t: I64, deleted: bool) -> None:
            seat.append(s)
            time.append(t)
            as_of.append(account_t)
            closed.append(np.full(s.size, deleted))

        opened_s, opened_t = [mine[:0]], [mine[:0]]
        for slot in range(t0 // SLOT_MS, (t1 - 1) // SLOT_MS + 1):
            slots = np.full(mine.size, slot, dtype=np.int64)
            hit, when = self.closures(mine, slot)
            hit &= (when >= t0) & (when < t1)
            add(mine[hit], when[hit], when[hit] - 1, True)
            add(mine[hit], when[hit], when[hit], False)
            opened_s.append(mine[hit])
            opened_t.append(when[hit])
            for ok, at, _, _ in self.edits(mine, slots):
                ok &= (at >= t0) & (at < t1)
                add(mine[ok], at[ok], at[ok], False)
        # Tier changes of the accounts open at t0 and of those opened in the window.
        _, start = self.account(mine, np.full(mine.size, t0, dtype=np.int64))
        for s, began in ((mine, start), (np.concatenate(opened_s), np.concatenate(opened_t))):
            for k in range(1, len(TIERS)):
                at = began + self.tier_ms[s, k]
                ok = (at >= t0) & (at < t1)
                # (only while the account lasts: it is still the one holding the seat then)
                ok[ok] &= self.account(s[ok], at[ok])[1] == began[ok]
                add(s[ok], at[ok], at[ok], False)
        t = np.concatenate(time)
        if not t.size:
            return None
        order = np.argsort(t, kind="stable")  # (at a closure: the delete, then the create)
        s, as_t = np.concatenate(seat)[order], np.concatenate(as_of)[order]
        return self.rows(s, t[order], as_t, np.concatenate(closed)[order])

    def next_due(self, t: int) -> int:
        """The first change at or after ``t`` (live: when to wake)."""
        return self.by_slot.next_at(t)

    def snapshot(self, t: int) -> Columns:
        """The rows at ``t``: the account holding each seat of the shard."""
        at = np.full(self.mine.size, t, dtype=np.int64)
        return self.rows(self.mine, at, at, np.zeros(self.mine.size, dtype=np.bool_))

    def target_rate(self) -> float:
        """Changes/s, roughly: two a closure, the edits, and three tier changes a closure
        (an account has at most three; the long-lived ones pay for the short)."""
        p = float(self.close_p[self.mine].sum())
        return (2 * p + sum(EDIT_P) * self.mine.size + 3 * p) / SLOT_MS * 1000


class UserSchema:
    """A user's row: the seat's attributes, the account's person, tier and sign-up."""

    ARROW = arrow_schema(
        [
            ("user_id", pa.string()),
            ("name", pa.string()),
            ("email", pa.string()),
            ("street_address", pa.string()),
            ("city", pa.string()),
            ("country", pa.string()),
            ("region", pa.string()),
            ("user_type", pa.string()),
            ("age_group", pa.string()),
            ("preferred_device", pa.string()),
            ("favourite_categories", pa.list_(pa.string())),
            ("loyalty_tier", pa.string()),
            ("signed_up_at", pa.timestamp("ms", tz="UTC")),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("message_id", pa.string()),
            ("is_duplicate", pa.bool_()),
        ]
    )
    stream = USERS
    partition_key = "user_id"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ()
    kinds: Kinds | None = None

    def __init__(self, users: Users, seed: int) -> None:
        self.users, self.seed = users, seed
        self.measures: dict[str, tuple[float, float, float]] = {}

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c, users, places = batch.columns, self.users, self.users.places
        seat, gen = batch.entity, c["gen"]
        key = rng.combine(users.keys[seat], self.seed)  # (a first account: ``Users.profile``)
        key = np.where(gen > 0, rng.combine(key, gen), key)
        email_key, street_key = c["email_key"], c["street_key"]
        first, last = names.people(key)
        domains = names.email_domains(np.where(email_key > 0, email_key, key))
        edited = (email_key % np.uint64(1000)).astype(np.int64)
        digits = np.where(email_key > 0, edited, seat % 100).tolist()
        streets = names.street_addresses(np.where(street_key > 0, street_key, key))
        city = users.city[seat]
        columns = {
            "user_id": [f"user_{a + 1:06d}" for a in c["account"].tolist()],
            "name": [f"{f} {la}" for f, la in zip(first, last, strict=True)],
            "email": [re.sub(r"[^a-z0-9.]", "", f"{f}.{la}{n}".lower()) + f"@{d}"
                      for f, la, n, d in zip(first, last, digits, domains, strict=True)],
            "street_address": streets,
            "city": np.asarray(places.name, dtype=object)[city].tolist(),
            "country": np.asarray(places.country_code, dtype=object)[city].tolist(),
            "region": np.asarray(REGIONS, dtype=object)[users.region[seat]].tolist(),
            "user_type": np.asarray(USER_TYPES, dtype=object)[users.type[seat]].tolist(),
            "age_group": np.asarray(AGE_GROUPS, dtype=object)[users.age[seat]].tolist(),
            "preferred_device": np.asarray(DEVICE_TYPES, dtype=object)[
                users.device[seat]].tolist(),
            "favourite_categories": [[CATEGORY_NAMES[f] for f in pair]
                                     for pair in users.favourite[seat].tolist()],
            "loyalty_tier": np.asarray(TIERS, dtype=object)[c["tier"]].tolist(),
            "signed_up_at": np.datetime_as_string(c["signed_up"].astype("datetime64[ms]"),
                                                  timezone="UTC").tolist(),
            "timestamp": batch.iso_times(),
            "message_id": batch.message_ids().astype("U36").tolist(),
            "is_duplicate": batch.is_duplicate.tolist(),
        }  # fmt: skip
        names_ = list(columns)
        return [dict(zip(names_, values, strict=True))
                for values in zip(*columns.values(), strict=True)]  # fmt: skip

    def table(self, batch: RecordBatch) -> pa.Table:
        rows = self.rows(batch)
        times = {"signed_up_at": batch.columns["signed_up"], "timestamp": batch.reported_ms}
        arrays = [
            timestamp_array(times[f.name]) if f.name in times
            else pa.array([row[f.name] for row in rows], f.type)
            for f in self.ARROW
        ]  # fmt: skip
        return pa.Table.from_arrays(arrays, schema=self.ARROW)
