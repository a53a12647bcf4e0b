"""E-commerce's users table as change data capture (``SYNTHSTREAM_ECOMMERCE__CDC=true``,
``producer/domains/ecommerce/accounts.py``): a snapshot of the accounts holding the seats,
sign-ups and closures (a create and a delete at one moment), profile edits and loyalty tiers
as updates; every session starts under an account that is a row at that moment."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tests.test_ecommerce_cdc import DAY, SMALL, T0, Record, ms, records

KEY = "user_id"
TIERS = ("bronze", "silver", "gold", "platinum")


def test_the_users_table_has_valid_histories_and_sessions_start_under_live_accounts() -> None:
    made = records(T0 + 60 * DAY, 7 * DAY, channels=("users", "transactions", "user-events"))
    changes = made["users"]
    ops = Counter(c["op"] for c in changes)
    assert ops["r"] == SMALL["users"], "each seat is held by one account at the start"
    assert all(ops[op] > 20 for op in "cud"), ops
    assert ops["c"] == ops["d"], "a closure and a sign-up in the seat at one moment"
    last: dict[str, Record | None] = {}
    closed: set[str] = set()
    for i, change in enumerate(changes):
        row = change["after"] or change["before"]
        key = row[KEY]
        assert key not in closed, "an id is never used again"
        assert change["before"] == last.get(key), "before is the row as it was"
        assert (change["op"] == "r") == (change["ts_ms"] == T0) == change["source"]["snapshot"]
        if change["op"] == "d":
            closed.add(key)
            new = changes[i + 1]  # the seat's next account signs up at the same moment
            assert (new["op"], new["ts_ms"]) == ("c", change["ts_ms"])
            assert new["after"]["user_type"] == row["user_type"]
            assert new["after"]["city"] == row["city"]
            assert new["after"]["name"] != row["name"] or new["after"]["email"] != row["email"]
        if change["op"] == "c":
            assert change["after"]["loyalty_tier"] == "bronze"
            assert ms(change["after"]["signed_up_at"]) == change["ts_ms"]
        if change["op"] == "u":
            before, after = change["before"], change["after"]
            assert after["signed_up_at"] == before["signed_up_at"]
            assert TIERS.index(after["loyalty_tier"]) >= TIERS.index(before["loyalty_tier"])
            changed = {k for k in after if after[k] != before[k]} - {"timestamp"}
            assert changed, "an update changes the row"
            assert changed <= {"email", "street_address", "loyalty_tier"}, changed
        if change["op"] != "d":
            assert ms(change["after"]["signed_up_at"]) <= change["ts_ms"]
            assert ms(change["after"]["timestamp"]) == change["ts_ms"]
        last[key] = change["after"]
    assert sum(row is not None for row in last.values()) == SMALL["users"]
    moved = Counter(TIERS.index(c["after"]["loyalty_tier"]) - TIERS.index(c["before"][
        "loyalty_tier"]) for c in changes if c["op"] == "u")  # fmt: skip
    assert moved[1] > 5, "tiers move up"

    # Replayed in time order with the sessions: each one starts under a live account.
    live: set[str] = set()
    timeline = [(c["ts_ms"], 0, c) for c in changes]
    timeline += [(ms(e["timestamp"]), 1, e) for e in made["user-events"]
                 if e["event_type"] == "page_view"]  # fmt: skip
    sessions = 0
    for _t, kind, record in sorted(timeline, key=lambda x: (x[0], x[1])):
        if kind == 0:
            row = record["after"] or record["before"]
            (live.discard if record["op"] == "d" else live.add)(row[KEY])
            continue
        assert record[KEY] in live, record
        sessions += 1
    assert sessions > 1_000
    # Every transaction is of an account that signed up before it.
    signed = {(c["after"] or {}).get(KEY): ms(c["after"]["signed_up_at"])
              for c in changes if c["after"]}  # fmt: skip
    for txn in made["transactions"]:
        assert signed[txn[KEY]] <= ms(txn["timestamp"])


def test_the_users_table_is_the_same_in_any_chunking_and_shard() -> None:
    end = T0 + 40 * DAY
    whole = records(end, 40 * DAY, channels=("users",))["users"]
    assert records(end, 3_600_000 * 29, channels=("users",))["users"] == whole
    shards = [records(end, 40 * DAY, shard=f"{i}/2", channels=("users",))["users"]
              for i in range(2)]  # fmt: skip
    assert sorted(c["message_id"] for s in shards for c in s) == sorted(
        c["message_id"] for c in whole
    )


def test_the_first_accounts_are_the_users_of_the_streams_without_cdc() -> None:
    """A seat's first account keeps the id, name and e-mail ``synthstream catalog`` writes
    (closures count from 2015: a window before it sees the first accounts only)."""
    from producer.config import load_settings
    from producer.streams import build_stream

    settings = load_settings({"streams": ["ecommerce"], "seed": 5,
                              "ecommerce": {**SMALL, "cdc": True}}, environ={})  # fmt: skip
    source = build_stream("ecommerce", settings).source
    inner = source.inner  # type: ignore[attr-defined]
    t = np.full(SMALL["users"], ms("2014-06-01T00:00:00Z"), dtype=np.int64)
    seats = np.arange(SMALL["users"])
    assert (inner.accounts.account(seats, t)[0] == 0).all()
    rows = inner.channels["users"].rows(inner.snapshot(int(t[0]))["users"])
    for seat in (0, 7, 499):
        profile = inner.users.profile(seat, 5)
        row = rows[seat]
        assert {k: row[k] for k in ("user_id", "name", "email", "street_address", "city")} == {
            k: profile[k] for k in ("user_id", "name", "email", "street_address", "city")
        }


def test_live_wakes_for_the_next_change_of_either_table() -> None:
    """``next_due`` of each table is its next change (a quiet shop's live run would
    otherwise hold a closure or a discontinuation until the next session)."""
    from producer.config import load_settings
    from producer.domains.ecommerce.accounts import SLOT_MS
    from producer.streams import build_stream

    settings = load_settings({"streams": ["ecommerce"], "seed": 5,
                              "ecommerce": {**SMALL, "cdc": True}}, environ={})  # fmt: skip
    inner = build_stream("ecommerce", settings).source.inner  # type: ignore[attr-defined]
    boundary = (T0 // SLOT_MS + 1) * SLOT_MS
    for t in (T0, T0 + 17 * DAY + 1, boundary - 1, boundary, boundary + 3 * DAY):
        users = inner.accounts.records(t, t + 2 * SLOT_MS)["time_ms"]
        assert inner.accounts.next_due(t) == users[0], t
        _, products, _ = inner.table.discontinued.moments(inner.product_ids, t, t + 2 * SLOT_MS)
        assert inner.table.next_due(t) == products[0], t
        assert inner.next_due(t) <= min(users[0], products[0])


def test_the_column_wise_names_are_the_names_key_by_key() -> None:
    from producer import rng
    from producer.generators import names

    keys = rng.combine(rng.text_key("names", "columns"), np.arange(5_000))
    first, last = names.people(keys)
    domains, streets = names.email_domains(keys), names.street_addresses(keys)
    for i, key in enumerate(keys.tolist()):
        assert (first[i], last[i]) == names.person(key)
        assert domains[i] == names.email_domain(key)
        assert streets[i] == names.street_address(key)
    assert sum(" Apt " in s for s in streets) > 500, "some with an apartment"
