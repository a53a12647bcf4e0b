"""The catalog as a table (``SYNTHSTREAM_ECOMMERCE__CDC=true``): each product's row as it
changes, for change data capture.

A product's row is its state (price, stock, rating, reviews) at its last change, in the
fields of a product update (``ROW_COLUMNS``). It changes
with every product update, and products leave the catalog for a while: in each 90-day slot
a product is discontinued with probability 5 %, at a uniform moment, for 14 to 60 days (a
stretch may run into the next slot; two that overlap are one). The ``products`` channel has
a record at each update (the row as it is after it), one at each discontinuation (a delete
of the row) and one at each relisting (the row made again, at that moment's price); an
update while a product is off the catalog deletes what does not exist and changes nothing.
``producer.cdc`` turns those records into changes. While CDC is on, sessions do not view or
buy a product that is off the catalog (they take the next product of its category), so
every transaction's products are rows of the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.domains.ecommerce.shop import Products
from producer.domains.ecommerce.slots import BySlot
from producer.domains.ecommerce.traffic import Prices
from producer.rng import I64, U64
from producer.timeline import DAY_MS

PRODUCTS = "products"  # the table's channel (and its topic, Kinesis stream, table)
# A row: a product update's fields but for the update's own (its id, type, previous price);
# its timestamp is the row's last change. The channel's records are read as updates.
ROW_COLUMNS = ("product_id", "name", "category", "price", "stock_quantity", "rating",
               "review_count", "is_seasonal", "timestamp")  # fmt: skip
_INVENTORY = 1  # (the update type its records carry: not part of the row)
SLOT_MS = 90 * DAY_MS
DISCONTINUE_P = 0.05  # a product's chance to leave the catalog in a slot
OFF_MIN_MS, OFF_MAX_MS = 14 * DAY_MS, 60 * DAY_MS
_SALT = rng.text_key("ecommerce", "discontinued")
_ROW_SALT = 0x5E1157  # a row record's key, from its product's and its moment's (or update's)
STATE_FROM_MS = 1_577_836_800_000  # reviews grow steadily from 2020 on
Columns = dict[str, npt.NDArray[Any]]


class Discontinued:
    """When each product is off the catalog: a stretch that starts in a 90-day slot (with
    probability ``DISCONTINUE_P``) and may run into the next; two that overlap are one."""

    def __init__(self, products: Products) -> None:
        self.keys = products.keys

    def _stretch(self, product: I64, slot: I64) -> tuple[npt.NDArray[np.bool_], I64, I64]:
        u = rng.uniform_block(rng.combine(rng.combine(self.keys[product], _SALT), slot), 3)
        length = OFF_MIN_MS + (u[:, 1] * (OFF_MAX_MS - OFF_MIN_MS)).astype(np.int64)
        start = slot * SLOT_MS + (u[:, 2] * SLOT_MS).astype(np.int64)
        return u[:, 0] < DISCONTINUE_P, start, start + length

    def off(self, product: I64, t: I64) -> npt.NDArray[np.bool_]:
        """Whether each product is off the catalog at its time (a stretch of this slot's or
        of the last one's covers it)."""
        off = np.zeros(product.size, dtype=np.bool_)
        for back in (0, 1):
            hit, start, end = self._stretch(product, t // SLOT_MS - back)
            off |= hit & (t >= start) & (t < end)
        return off

    def moments(self, products: I64, t0: int, t1: int) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
        """The discontinuations and relistings of ``products`` in [t0, t1), in time order:
        (product, time, whether it is a discontinuation)."""
        product, time, leaving = [products[:0]], [products[:0]], [np.zeros(0, np.bool_)]
        for slot in range(t0 // SLOT_MS - 1, (t1 - 1) // SLOT_MS + 1):
            hit, start, end = self._stretch(products, np.full(products.size, slot, np.int64))
            for when, away in ((start, True), (end, False)):
                mine = hit & (when >= t0) & (when < t1)
                # (a stretch that begins while another lasts, or ends inside one, is no change)
                mine[mine] &= ~self.off(products[mine], when[mine] - 1 if away else when[mine])
                product.append(products[mine])
                time.append(when[mine])
                leaving.append(np.full(int(mine.sum()), away))
        p, t, off = np.concatenate(product), np.concatenate(time), np.concatenate(leaving)
        order = np.lexsort((p, t))
        return p[order], t[order], off[order]


def available(products: Products, discontinued: Discontinued, picked: I64, t: I64) -> I64:
    """``picked`` products, each one off the catalog at its time replaced by the next of its
    category that is on it (a category with one product keeps it)."""
    out = picked.copy()
    for _ in range(16):  # (each round moves on one product; sixteen off in a row: none)
        off = discontinued.off(out, t)
        if not off.any():
            break
        idx = np.flatnonzero(off)
        category = products.category[out[idx]]
        for c in np.unique(category).tolist():
            members = products.members[c]
            rows = idx[category == c]
            at = np.searchsorted(members, out[rows])
            out[rows] = members[(at + 1) % members.size]
    return out


def state(products: Products, prices: Prices, product: I64, t: I64,
          keys: U64) -> dict[str, npt.NDArray[Any]]:  # fmt: skip
    """A product's row at ``t``: price, stock, reviews and rating (stock and the rating's
    wobble drawn from ``keys``)."""
    u = rng.uniform_block(keys, 2)
    base = 40 + (products.popularity[product] * 30).astype(np.int64)
    days = (t - STATE_FROM_MS) // DAY_MS
    return {
        "price": prices.at(product, t),
        "stock": np.floor(base * (0.2 + 2 * u[:, 0])).astype(np.int64),
        "reviews": products.reviews[product] + np.maximum(days, 0) * (1 + product % 3) // 7,
        "rating": np.round(np.clip(products.rating[product] + (u[:, 1] - 0.5) * 0.2, 1.0, 5.0),
                           1),
    }  # fmt: skip


class ProductTable:
    """The ``products`` channel of a shard's products (see the module's docstring)."""

    def __init__(self, products: Products, prices: Prices, shard_products: I64) -> None:
        self.products, self.prices, self.mine = products, prices, shard_products
        self.discontinued = Discontinued(products)
        self.moments = BySlot(SLOT_MS, self._moments)  # (found a slot at a time)
        none = shard_products[:0]
        self._none: Columns = {"time_ms": none, "product": none, "leaving": np.zeros(0, np.bool_)}

    def records(self, t0: int, t1: int, updates: Columns | None) -> Columns | None:
        """The channel's columns for [t0, t1), from the window's product updates."""
        found = self.moments.between(t0, t1) or self._none
        product: I64 = found["product"]
        t: I64 = found["time_ms"]
        leaving: npt.NDArray[np.bool_] = found["leaving"]
        keys = rng.combine(rng.combine(self.products.keys[product], t), _ROW_SALT)
        parts = [self._rows(t, product, keys, leaving)]
        if updates is not None:
            up = {k: updates[k] for k in ("time_ms", "product", "price", "stock", "reviews",
                                          "rating")}  # fmt: skip
            up["type"] = np.full(up["product"].size, _INVENTORY, dtype=np.int8)
            up["previous_price"] = up["price"]
            up["key"] = rng.combine(updates["key"], _ROW_SALT + 1)
            up["discontinued"] = self.discontinued.off(up["product"], up["time_ms"])
            parts.append(up)
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if not cols["time_ms"].size:
            return None
        order = np.argsort(cols["time_ms"], kind="stable")
        return {k: v[order] for k, v in cols.items()}

    def next_due(self, t: int) -> int:
        """The first discontinuation or relisting at or after ``t`` (live: when to wake)."""
        return self.moments.next_at(t)

    def _moments(self, t0: int, t1: int) -> Columns | None:
        product, time, leaving = self.discontinued.moments(self.mine, t0, t1)
        return {"time_ms": time, "product": product, "leaving": leaving} if time.size else None

    def snapshot(self, t: int) -> dict[str, npt.NDArray[Any]]:
        """The rows at ``t``: every product of the shard that is on the catalog."""
        at = np.full(self.mine.size, t, dtype=np.int64)
        on = ~self.discontinued.off(self.mine, at)
        product, at = self.mine[on], at[on]
        keys = rng.combine(rng.combine(self.products.keys[product], at), _ROW_SALT + 2)
        return self._rows(at, product, keys, np.zeros(product.size, dtype=np.bool_))

    def _rows(
        self, t: I64, product: I64, keys: U64, discontinued: npt.NDArray[np.bool_]
    ) -> Columns:
        """Rows at their moments (a snapshot, a discontinuation, a relisting), in the
        columns of a product update."""
        cols = {"time_ms": t, "product": product, "key": keys,
                **state(self.products, self.prices, product, t, keys),
                "type": np.full(product.size, _INVENTORY, dtype=np.int8),
                "discontinued": discontinued}  # fmt: skip
        cols["previous_price"] = cols["price"]
        return cols
