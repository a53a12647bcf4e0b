"""The ecommerce stream kind's settings fields (the kind itself, with its build, is in
``settings.py``; the model takes these)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from producer.plugins import StreamSettings
from producer.settings import NumberList
from producer.timeline import SCENARIO_FACTORS

ECOMMERCE_SCENARIOS = ("normal_traffic", "peak_traffic", "fraud_testing", "maintenance_mode")
# Each scenario's traffic, as one of the run-wide scenarios.
ECOMMERCE_TRAFFIC = {"normal_traffic": "normal", "peak_traffic": "peak",
                     "fraud_testing": "normal", "maintenance_mode": "maintenance"}  # fmt: skip
FRAUD_PATTERNS = ("velocity", "location", "amount", "time", "device", "category")


class EcommerceFields(StreamSettings):
    """E-commerce (seed 002): users' sessions give user events and transactions (some of them
    fraud, each with a fraud alert); products get updates; analytics results summarise."""

    CHANNELS: ClassVar[tuple[str, ...]] = (
        "transactions", "user-events", "product-updates", "fraud-alerts", "analytics-results",
    )  # fmt: skip

    users: int = Field(10_000, ge=1, le=5_000_000, description="Users (made once from the seed).")
    products: int = Field(1_000, ge=10, le=1_000_000, description="Products in the catalog.")
    transactions_per_hour: float = Field(
        10_000, gt=0, description="Transactions/h of an average weekday hour, before scenario."
    )
    user_events_per_hour: float = Field(
        100_000, gt=0, description="User events/h of an average weekday hour (>= 9.5 x txns)."
    )
    product_updates_per_hour: float = Field(
        1_000, ge=0, description="Product updates/h (price changes, stock, ratings)."
    )
    analytics_window_s: int = Field(
        180, ge=10, le=86_400,
        description="Analytics results: 5 metrics x 5 regions per window (180 s: 500/h).",
    )  # fmt: skip
    fraud_rate: float | None = Field(
        None, ge=0, le=0.5,
        description="Share of fraudulent transactions (default 0.001; fraud_testing 0.1).",
    )  # fmt: skip
    fraud_patterns: NumberList = Field(
        [0.2, 0.2, 0.2, 0.15, 0.15, 0.1],
        description=f"Weights of {', '.join(FRAUD_PATTERNS)} among fraudulent transactions.",
    )
    scenario: Literal[
        "normal_traffic", "peak_traffic", "fraud_testing", "maintenance_mode"
    ] = Field(
        "normal_traffic",
        description="normal_traffic, peak_traffic (x3), fraud_testing (fraud 10%), "
        "maintenance_mode (x0.1).",
    )  # fmt: skip
    weekend_multiplier: float = Field(1.5, ge=0, description="Saturday and Sunday, local time.")
    seasonal_events: bool = Field(
        True, description="Black Friday x8, Cyber Monday x4, Christmas x6, back to school x1.3."
    )
    cdc: bool = Field(
        False, description="Also the products and users tables as change data capture: "
        "channels products (price/stock/rating updates, a delete when discontinued) and users "
        "(sign-ups, profile edits, loyalty tiers, closure as a delete) in the Debezium envelope.",
    )  # fmt: skip

    def channels(self, stream: str) -> tuple[str, ...]:
        return (*self.CHANNELS, "products", "users") if self.cdc else self.CHANNELS

    @property
    def entities(self) -> int:
        return self.users

    @property
    def effective_fraud_rate(self) -> float:
        if self.fraud_rate is not None:
            return self.fraud_rate
        return 0.1 if self.scenario == "fraud_testing" else 0.001

    @property
    def traffic_factor(self) -> float:
        """The seed's scenarios on the run-wide table (fraud testing: normal traffic)."""
        return SCENARIO_FACTORS[ECOMMERCE_TRAFFIC[self.scenario]]

    @field_validator("fraud_patterns")
    @classmethod
    def _weights(cls, weights: list[float]) -> list[float]:
        if len(weights) != len(FRAUD_PATTERNS) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"needs {len(FRAUD_PATTERNS)} non-negative weights "
                f"({', '.join(FRAUD_PATTERNS)}), got {weights}"
            )
        return weights
