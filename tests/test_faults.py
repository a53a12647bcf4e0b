"""Fault injection: rates within binomial tolerance, duplicates keep their ids, determinism."""

from __future__ import annotations

import numpy as np

from producer.faults import Faults
from producer.generators.bme280 import Bme280Generator
from producer.rates import HOUR_MS, FixedInterval
from producer.records import RecordBatch
from producer.settings import Bme280Settings, FaultSettings
from producer.streams import entity_keys

T0 = 1_704_067_200_000


def batch(n_devices: int = 100, hours: int = 6) -> RecordBatch:
    ids = np.arange(n_devices, dtype=np.int64)
    keys = entity_keys(3, "bme280", ids)
    gen = Bme280Generator(Bme280Settings(devices=n_devices), ids, keys)
    return gen.generate(FixedInterval(ids, keys, 10_000).due(T0, T0 + hours * HOUR_MS))


def within_binomial(count: int, n: int, p: float) -> bool:
    sd = float(np.sqrt(n * p * (1 - p)))
    return abs(count - n * p) <= 4.5 * sd + 1


def test_realised_rates_match_the_settings() -> None:
    b = batch()
    n = len(b)
    for drop, dup in ((0.001, 0.005), (0.05, 0.1), (0.0, 0.3)):
        result = Faults(FaultSettings(drop_rate=drop, duplicate_rate=dup)).apply(b)
        assert within_binomial(len(result.dropped), n, drop)
        assert within_binomial(len(result.duplicated), n, (1 - drop) * dup)
        assert len(result.batch) == n - len(result.dropped) + len(result.duplicated)


def test_a_duplicate_follows_its_original_with_the_same_message_id() -> None:
    b = batch()
    out = Faults(FaultSettings(drop_rate=0.0, duplicate_rate=0.2)).apply(b).batch
    ids = out.message_ids()
    dup = np.flatnonzero(out.is_duplicate)
    assert dup.size > 0
    assert not out.is_duplicate[dup - 1].any(), "the record before a copy is its original"
    assert np.array_equal(ids[dup], ids[dup - 1])
    assert np.array_equal(out.columns["humidity"][dup], out.columns["humidity"][dup - 1])
    originals = out.take(np.flatnonzero(~out.is_duplicate))
    assert len(set(originals.message_ids().tolist())) == len(originals)


def test_faults_off_is_the_clean_stream_and_same_seed_same_faults() -> None:
    b = batch(hours=1)
    clean = Faults(FaultSettings(drop_rate=0, duplicate_rate=0)).apply(b).batch
    assert np.array_equal(clean.key, b.key)
    first = Faults(FaultSettings(drop_rate=0.01, duplicate_rate=0.01)).apply(b)
    second = Faults(FaultSettings(drop_rate=0.01, duplicate_rate=0.01)).apply(batch(hours=1))
    assert np.array_equal(first.batch.key, second.batch.key)
    assert np.array_equal(first.dropped.key, second.dropped.key)
    # What the faulty run lacks and adds is exactly what the fault result reports.
    missing = np.setdiff1d(b.key, first.batch.key)
    assert np.array_equal(np.sort(missing), np.sort(first.dropped.key))
