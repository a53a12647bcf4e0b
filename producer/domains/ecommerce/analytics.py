"""E-commerce's analytics results: per window and region (and globally), the metrics of the
sessions and transactions this process generated, released when their window ends."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.domains.ecommerce.vocabulary import PAGE, SCOPES
from producer.rng import F64, I64


class Analytics:
    """Sessions, orders, revenue (in cents) and fraud per window and scope, summed as the
    sessions and transactions are released."""

    def __init__(self, region: I64, window_ms: int, key: int) -> None:
        self.region, self.window_ms, self.key = region, window_ms, key
        self.acc: dict[int, F64] = {}  # window -> (scope, [sessions, orders, revenue, fraud])

    def account(self, txns: dict[str, npt.NDArray[Any]] | None,
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
            region = self.region[cols["user"][mask]]
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

    def results(self, t0: int, t1: int) -> dict[str, npt.NDArray[Any]] | None:
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
        cols["key"] = rng.combine(rng.combine(self.key, window),
                                  cols["metric"] * 8 + cols["scope"])  # fmt: skip
        return cols
