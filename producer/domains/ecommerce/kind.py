"""The ecommerce stream kind: its settings model (the fields, from ``fields.py``) and how it
builds (the model is imported when the stream is built, not when the kinds are listed)."""

from __future__ import annotations

from typing import ClassVar

from producer.domains.ecommerce.fields import ECOMMERCE_TRAFFIC, EcommerceFields
from producer.episodes import EpisodeKind
from producer.generators import Source
from producer.plugins import Command, StreamContext


class EcommerceSettings(EcommerceFields):
    """E-commerce (seed 002): users' sessions give user events and transactions (some of them
    fraud, each with a fraud alert); products get updates; analytics results summarise."""

    KIND: ClassVar[str] = "ecommerce"
    PACED: ClassVar[bool] = True  # its sessions and product updates take the pace
    # A topic and a Kinesis stream per record type (transactions, user-events, ...).
    DESTINATIONS: ClassVar[dict[str, str]] = {"http": "/api/v1/ecommerce/{channel}"}
    DESCRIPTION: ClassVar[str] = (
        "e-commerce: transactions, user events, product updates, fraud alerts, analytics"
    )

    @classmethod
    def commands(cls) -> list[Command]:
        from producer.domains.ecommerce.commands import CATALOG

        return [CATALOG]

    def rate_scenario(self) -> str:
        return ECOMMERCE_TRAFFIC[self.scenario]

    def episode_kinds(self) -> dict[str, EpisodeKind]:
        from producer.domains.ecommerce.episodes import FRAUD_BURST

        return {FRAUD_BURST.name: FRAUD_BURST}

    def build(self, context: StreamContext) -> Source:
        from producer.domains.ecommerce.model import EcommerceSource  # the model loads when used

        source = EcommerceSource(self, context.seed, context.shard, context.pace)
        source.fraud.episodes = context.episodes
        if not self.cdc:
            return source
        from producer.cdc import ChangeSource, Table
        from producer.domains.ecommerce import accounts, catalog

        return ChangeSource(source, {
            catalog.PRODUCTS: Table(catalog.PRODUCTS, ("product_id",), catalog.ROW_COLUMNS,
                                    "discontinued", stamp="timestamp"),
            accounts.USERS: Table(accounts.USERS, ("user_id",), accounts.ROW_COLUMNS, "closed",
                                  stamp="timestamp"),
        })  # fmt: skip
