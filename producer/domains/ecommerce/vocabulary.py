"""E-commerce's vocabulary: its channels, event types, funnel, fraud patterns and the
constants the model, the traffic and the schemas share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from producer.domains.ecommerce.fields import FRAUD_PATTERNS, EcommerceFields
from producer.domains.ecommerce.shop import (
    REGIONS,
)
from producer.timeline import HOUR_MS

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
