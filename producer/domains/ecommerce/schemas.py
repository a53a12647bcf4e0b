"""E-commerce's five record shapes (JSON rows and Arrow tables), from the batches the model
makes; they know the catalog and the places, not the model."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer.domains.ecommerce.fields import FRAUD_PATTERNS
from producer.domains.ecommerce.shop import (
    CATEGORY_NAMES,
    PAYMENT_METHODS,
    SIGNATURES,
    Products,
    Users,
)
from producer.domains.ecommerce.vocabulary import (
    ALERTS,
    ANALYTICS,
    EVENT_TYPES,
    EVENTS,
    METRICS,
    NO_TXN,
    SCOPES,
    TRANSACTIONS,
    UPDATE_TYPES,
    UPDATES,
    VIEW,
)
from producer.records import Kinds, RecordBatch, arrow_schema, timestamp_array, uuid_array
from producer.rng import U64

DEVICE_INFO = pa.struct([("device_type", pa.string()), ("os", pa.string()),
                    ("browser", pa.string()), ("screen_resolution", pa.string())])  # fmt: skip


def _hex(prefix: str, keys: U64, digits: int) -> list[str]:
    mask = (1 << (4 * digits)) - 1
    return [f"{prefix}{k & mask:0{digits}x}" for k in keys.tolist()]


def _number(values: npt.NDArray[np.float64]) -> pa.DoubleArray:
    """A float column; NaN (a dropout injected by faults) is null, as in the JSON."""
    return pa.array(values, pa.float64(), from_pandas=True)


def _text(values: list[str] | list[str | None] | npt.NDArray[Any]) -> pa.StringArray:
    """A string column from a list or an object array (None: null)."""
    return pa.array(values, pa.string())


def _named(names: tuple[str, ...], codes: npt.NDArray[Any]) -> pa.Array:  # type: ignore[type-arg]
    """Codes as their names (a negative code: null)."""
    found = np.asarray(names, dtype=object)[np.maximum(codes, 0)]
    return pa.array(found, pa.string(), mask=np.asarray(codes < 0))


def _devices(signatures: list[dict[str, str]], codes: npt.NDArray[Any]) -> pa.StructArray:
    fields = ("device_type", "os", "browser", "screen_resolution")
    table = {f: np.array([sig[f] for sig in signatures], dtype=object) for f in fields}
    return pa.StructArray.from_arrays([_text(table[f][codes]) for f in fields], names=list(fields))


class Texts:
    """The catalog's strings, made once and shared by the five schemas."""

    def __init__(self, users: Users, products: Products, window_ms: int) -> None:
        self.catalog, self.places, self.window_ms = products, users.places, window_ms
        self.users = np.array(users.ids(np.arange(users.count)), dtype=object)
        self.product_ids = np.array(products.ids(np.arange(products.count)), dtype=object)
        self.categories = np.array([CATEGORY_NAMES[c] for c in products.category], dtype=object)
        self.signatures = [
            {"device_type": d, "os": o, "browser": b, "screen_resolution": r}
            for d, o, b, r, _ in SIGNATURES
        ]


class ShopSchema:
    stream: str
    partition_key: str
    optional_fields: tuple[str, ...]
    measures: dict[str, tuple[float, float, float]]
    MEASURES: ClassVar[dict[str, tuple[float, float, float]]]
    ARROW: ClassVar[pa.Schema]
    kinds: Kinds | None
    time_field = "timestamp"

    def __init__(self, text: Texts) -> None:
        self.text = text
        self.measures = dict(self.MEASURES)
        self.users, self.product_ids = text.users, text.product_ids
        self.categories, self.signatures = text.categories, text.signatures

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        raise NotImplementedError

    def table(self, batch: RecordBatch) -> pa.Table:
        """The records as columns, straight from the batch (no row is made)."""
        return pa.Table.from_arrays(self.arrays(batch), schema=self.ARROW)

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        raise NotImplementedError

    def user_ids(self, batch: RecordBatch) -> npt.NDArray[Any]:
        """The user id of each record: its account's (CDC on, ``accounts.py``), else its
        seat's."""
        account = batch.columns.get("account")
        if account is None:
            return self.users[batch.entity]
        return np.array([f"user_{a + 1:06d}" for a in account.tolist()], dtype=object)

    def ids(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        """The last two columns of every shape: message_id and is_duplicate."""
        return [uuid_array(batch.key), pa.array(batch.is_duplicate)]


class EventSchema(ShopSchema):
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

    def __init__(self, text: Texts) -> None:
        super().__init__(text)
        slugs = [c.lower().replace(" & ", "-").replace(" ", "-") for c in CATEGORY_NAMES]
        cat = text.catalog.category
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
                _hex("evt_", batch.key, 16), self.user_ids(batch).tolist(),
                _hex("sess_", c["session"], 12), types, batch.iso_times(), pid.tolist(),
                cat.tolist(), urls, c["duration_seconds"].tolist(), c["signature"].tolist(),
                txn_ids,
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        product, types = c["product"], c["type"]
        has = product >= 0
        urls = np.asarray(self.fixed_urls, dtype=object)[types]
        views = np.flatnonzero(types == VIEW)
        urls[views] = self.view_urls[product[views]]
        txn = c["txn"]
        txn_ids = np.full(len(batch), None, dtype=object)
        paid = np.flatnonzero(txn != NO_TXN)
        txn_ids[paid] = _hex("txn_", txn[paid], 12)
        return [
            _text(_hex("evt_", batch.key, 16)), _text(self.user_ids(batch)),
            _text(_hex("sess_", c["session"], 12)), _named(EVENT_TYPES, types),
            timestamp_array(batch.reported_ms),
            pa.array(self.product_ids[np.maximum(product, 0)], pa.string(), mask=~has),
            pa.array(self.categories[np.maximum(product, 0)], pa.string(), mask=~has),
            _text(urls), pa.array(c["duration_seconds"], pa.int64()),
            _devices(self.signatures, c["signature"]), _text(txn_ids), *self.ids(batch),
        ]  # fmt: skip


class TransactionSchema(ShopSchema):
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
        products = self.text.catalog
        places = self.text.places
        names = products.names
        rows = []
        for i, (tid, user, sid, ts, mid, dup) in enumerate(zip(
            _hex("txn_", batch.key, 12), self.user_ids(batch).tolist(),
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

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        products, places = self.text.catalog, self.text.places
        items = c["items"]
        held = items >= 0  # a transaction's products, padded with -1
        offsets = np.concatenate([[0], np.cumsum(held.sum(axis=1))]).astype(np.int32)
        item = items[held]
        lines = pa.StructArray.from_arrays(
            [_text(self.product_ids[item]), _text(np.asarray(products.names, dtype=object)[item]),
             _text(self.categories[item]), _number(c["price"][held]),
             pa.array(c["quantity"][held], pa.int64())],
            names=["product_id", "name", "category", "price", "quantity"],
        )  # fmt: skip
        city = c["city"]
        location = pa.StructArray.from_arrays(
            [_text(np.asarray(places.country_code, dtype=object)[city]),
             _text(np.asarray(places.state, dtype=object)[city]),
             _text(np.asarray(places.name, dtype=object)[city]),
             _number(c["latitude"]), _number(c["longitude"])],
            names=["country", "state", "city", "latitude", "longitude"],
        )  # fmt: skip
        pattern = c["pattern"]
        n = len(batch)
        return [
            _text(_hex("txn_", batch.key, 12)), _text(self.user_ids(batch)),
            _text(_hex("sess_", c["session"], 12)), timestamp_array(batch.reported_ms),
            pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), lines),
            _number(c["subtotal"]), _number(c["tax"]),
            _number(c["total_amount"]), _text(["USD"] * n),
            _named(PAYMENT_METHODS, c["payment"]), location,
            _devices(self.signatures, c["signature"]), pa.array(pattern >= 0),
            _number(c["fraud_score"]), _named(FRAUD_PATTERNS, pattern),
            *self.ids(batch),
        ]  # fmt: skip


class AlertSchema(ShopSchema):
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
                self.user_ids(batch).tolist(), batch.iso_times(), txn_times.tolist(),
                c["pattern"].tolist(), c["fraud_score"].tolist(), c["amount"].tolist(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        score, pattern = c["fraud_score"], c["pattern"]
        severity = np.where(score >= 0.9, "critical", np.where(score >= 0.75, "high", "medium"))
        n = len(batch)
        reasons = pa.ListArray.from_arrays(
            pa.array(np.arange(n + 1, dtype=np.int32), pa.int32()), _named(self.REASONS, pattern)
        )
        txn_times = c["txn_time_ms"].astype(np.int64)
        return [
            _text(_hex("alert_", batch.key, 12)), _text(_hex("txn_", c["txn"], 12)),
            _text(self.user_ids(batch)), timestamp_array(batch.reported_ms),
            timestamp_array(txn_times), _named(FRAUD_PATTERNS, pattern),
            _number(score), _text(severity.astype(object)),
            _number(c["amount"]), reasons, _text(["open"] * n), *self.ids(batch),
        ]  # fmt: skip


class UpdateSchema(ShopSchema):
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
        p = self.text.catalog
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

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        p = self.text.catalog
        product, kind = batch.entity, c["type"]
        return [
            _text(_hex("upd_", batch.key, 12)), _text(self.product_ids[product]),
            timestamp_array(batch.reported_ms), _named(UPDATE_TYPES, kind),
            _text(np.asarray(p.names, dtype=object)[product]), _text(self.categories[product]),
            _number(c["price"]),
            pa.array(c["previous_price"], pa.float64(), mask=np.asarray(kind != 0)),
            pa.array(c["stock"], pa.int64()), _number(c["rating"]),
            pa.array(c["reviews"], pa.int64()), pa.array(p.seasonal[product].astype(np.bool_)),
            *self.ids(batch),
        ]  # fmt: skip


class AnalyticsSchema(ShopSchema):
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
        w = self.text.window_ms
        starts = np.datetime_as_string((batch.time_ms - w).astype("datetime64[ms]"), timezone="UTC")
        return [
            {
                "metric_id": mid_, "metric_type": METRICS[m], "region": SCOPES[s],
                "window_start": start, "window_end": ts, "timestamp": ts,
                "value": round(value, 4) if math.isfinite(value) else None,
                "sample_size": int(sample), "message_id": mid, "is_duplicate": dup,
            }
            for mid_, m, s, start, ts, value, sample, mid, dup in zip(
                _hex("met_", batch.key, 12), c["metric"].tolist(), c["scope"].tolist(),
                starts.tolist(), batch.iso_times(), c["value"].tolist(), c["sample"].tolist(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip

    def arrays(self, batch: RecordBatch) -> list[pa.Array]:  # type: ignore[type-arg]
        c = batch.columns
        value = c["value"]
        return [
            _text(_hex("met_", batch.key, 12)), _named(METRICS, c["metric"]),
            _named(SCOPES, c["scope"]), timestamp_array(batch.time_ms - self.text.window_ms),
            timestamp_array(batch.reported_ms), timestamp_array(batch.reported_ms),
            # Python's round, as in the JSON rows (numpy's may differ in the last digit); a
            # rate without a denominator in the window (no orders, no sessions) is null.
            pa.array([round(v, 4) if math.isfinite(v) else None for v in value.tolist()],
                     pa.float64()),
            pa.array(c["sample"], pa.int64()), *self.ids(batch),
        ]  # fmt: skip
