"""E-commerce's episode started by live control: a fraud burst. Sessions that start inside
it are fraud with probability ``share`` (the patterns keep their weights), so the burst is in
what is generated: transactions, their alerts, the analytics. The ground truth lists the
fraudulent transactions of the window."""

from __future__ import annotations

from producer.episodes import Episode, EpisodeKind, Param, unchanged
from producer.records import RecordBatch


def _fraudulent(batch: RecordBatch, episode: Episode) -> object:
    return batch.columns["pattern"] >= 0


FRAUD_BURST = EpisodeKind(
    "fraud_burst", "A share of the sessions that start in the window are fraud.",
    {"share": Param(0.5, 0.0, 1.0, description="Chance a session in the burst is fraud.")},
    effect=unchanged, channels=("transactions",), default_seconds=300, all_entities=True,
    select=_fraudulent,
)  # fmt: skip
