"""Fault injection: realised rates, ground truth equal to the differences from a clean run,
late and out-of-order delivery, outages, clock skew and sensor anomalies."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from producer.domains.bme280.kind import Bme280Settings
from producer.domains.bme280.model import Bme280Generator
from producer.encoding import encode_jsonl
from producer.faults import Faults, Truth
from producer.generators import entity_keys
from producer.rates import FixedInterval
from producer.records import RecordBatch
from producer.settings import FaultSettings
from producer.timeline import HOUR_MS

T0 = 1_704_067_200_000
OFF = {"drop_rate": 0, "duplicate_rate": 0}


def source(devices: int = 50) -> tuple[Bme280Generator, FixedInterval]:
    ids = np.arange(devices, dtype=np.int64)
    keys = entity_keys(3, "bme280", ids)
    return Bme280Generator(Bme280Settings(devices=devices), ids, keys), FixedInterval(
        ids, keys, 10_000
    )


def run(hours: float, step_ms: int = 60_000, devices: int = 50, **faults: Any) -> tuple[
    RecordBatch, list[Truth], int
]:  # fmt: skip
    """Ticks through ``hours`` like the engine does; returns output, truth, generated."""
    gen, rate = source(devices)
    pipeline = Faults(FaultSettings(**faults), key=99, schema=gen.schema)
    out: list[RecordBatch] = []
    truth: list[Truth] = []
    generated = 0
    for t in range(T0, T0 + int(hours * HOUR_MS), step_ms):
        due = rate.due(t, t + step_ms)
        result = pipeline.apply(gen.generate(due) if len(due) else None, t + step_ms)
        generated += result.generated
        out.append(result.batch)
        truth += result.truth
    rest = pipeline.flush()
    if rest is not None:
        out.append(rest)
    return RecordBatch.concat([b for b in out if len(b)]), truth, generated


def keys_of(truth: list[Truth], kind: str) -> set[int]:
    return {int(k) for t in truth if t.kind == kind for k in t.records.key.tolist()}


def within_binomial(count: int, n: int, p: float) -> bool:
    sd = float(np.sqrt(n * p * (1 - p)))
    return abs(count - n * p) <= 4.5 * sd + 1


def test_realised_drop_and_duplicate_rates() -> None:
    clean, _, n = run(6, **OFF)
    for drop, dup in ((0.001, 0.005), (0.05, 0.1)):
        out, truth, _ = run(6, drop_rate=drop, duplicate_rate=dup)
        drops, dups = keys_of(truth, "drop"), keys_of(truth, "duplicate")
        assert within_binomial(len(drops), n, drop)
        assert within_binomial(len(dups), n, (1 - drop) * dup)
        assert len(out) == len(clean) - len(drops) + len(dups)


def test_a_duplicate_follows_its_original_with_the_same_message_id() -> None:
    out, _, _ = run(2, drop_rate=0, duplicate_rate=0.2)
    ids = out.message_ids()
    dup = np.flatnonzero(out.is_duplicate)
    assert dup.size > 0
    assert not out.is_duplicate[dup - 1].any()
    assert np.array_equal(ids[dup], ids[dup - 1])
    assert np.array_equal(out.columns["humidity"][dup], out.columns["humidity"][dup - 1])


EVERYTHING: dict[str, Any] = {
    "drop_rate": 0.01, "duplicate_rate": 0.01, "late_rate": 0.02, "late_mean_s": 30,
    "late_max_s": 120, "clock_skew_rate": 0.2, "outage_rate": 0.1, "outage_replay": False,
    "anomaly_rate": 0.3,
}  # fmt: skip


def test_ground_truth_is_exactly_the_difference_from_a_clean_run() -> None:
    clean, _, _ = run(6, **OFF)
    faulty, truth, _ = run(6, **EVERYTHING)
    assert run(6, **EVERYTHING)[0].key.tolist() == faulty.key.tolist(), "same seed, same faults"
    kinds = {t.kind for t in truth}
    assert {"drop", "duplicate", "late", "clock_skew", "outage_lost"} <= kinds
    assert kinds & {"spike", "stuck", "drift", "dropout", "step"}
    by_key = {int(k): i for i, k in enumerate(clean.key.tolist())}
    gone = keys_of(truth, "drop") | keys_of(truth, "outage_lost")
    present = [int(k) for k in faulty.key[~faulty.is_duplicate].tolist()]
    assert sorted(present) == sorted(set(by_key) - gone), "missing = dropped + lost, no more"
    assert len(present) == len(set(present))
    assert set(faulty.key[faulty.is_duplicate].tolist()) == keys_of(truth, "duplicate")
    # Values differ from the clean run exactly where an anomaly says so.
    anomalous: dict[int, str] = {}
    for t in truth:
        if t.kind in ("spike", "stuck", "drift", "dropout", "step"):
            anomalous.update((int(k), t.params["column"]) for k in t.records.key.tolist())
    skewed = keys_of(truth, "clock_skew")
    originals = faulty.take(np.flatnonzero(~faulty.is_duplicate))
    clean_at = np.asarray([by_key[int(k)] for k in originals.key.tolist()])
    for column in ("temperature_c", "humidity", "pressure_hpa"):
        a, b = originals.columns[column], clean.columns[column][clean_at]
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        changed = {int(k) for k in originals.key[differs].tolist()}
        expected = {k for k, c in anomalous.items() if c == column} - gone
        # A stuck value may equal the clean one by chance; nothing else may differ.
        assert changed <= expected
        assert len(changed) >= 0.9 * len(expected)
    moved = originals.key[originals.reported_ms != clean.time_ms[clean_at]]
    assert {int(k) for k in moved.tolist()} == skewed - gone - {
        k for t in truth if t.kind == "clock_skew"
        for k, s in zip(t.records.key.tolist(), t.params["skew_ms"].tolist(), strict=True)
        if s == 0
    }  # fmt: skip


def test_late_events_arrive_after_later_event_times_within_the_bound() -> None:
    out, truth, _ = run(3, late_rate=0.05, late_mean_s=20, late_max_s=90, **OFF)
    late = keys_of(truth, "late")
    assert within_binomial(len(late), len(out), 0.05)
    position = {int(k): i for i, k in enumerate(out.key.tolist())}
    times = out.time_ms
    overtaken = 0
    for k in late:
        i = position[k]
        later_before = times[:i] > times[i]
        overtaken += bool(later_before.any())
        # Never later than the bound: nothing before it in the output is more than the bound
        # (90 s) plus one tick (60 s) younger.
        assert times[:i].max() - times[i] <= (90 + 60) * 1000
    assert overtaken >= 0.9 * len(late), "late events arrive after later event times"
    per_key_inversions = sum(int((np.diff(times[out.entity == e]) < 0).sum()) for e in range(50))
    assert per_key_inversions > 0


def test_per_key_order_holds_when_asked_for() -> None:
    out, truth, _ = run(3, late_rate=0.05, late_keep_key_order=True, **OFF)
    assert keys_of(truth, "late")
    for e in range(50):
        assert np.all(np.diff(out.time_ms[out.entity == e]) >= 0)


def test_outages_replay_their_backlog_in_order_when_the_entity_returns() -> None:
    out, truth, _ = run(6, outage_rate=0.2, outage_replay=True, **OFF)
    clean, _, _ = run(6, **OFF)
    replayed = keys_of(truth, "outage_replayed")
    assert replayed
    assert sorted(out.key.tolist()) == sorted(clean.key.tolist()), "nothing lost"
    for t in truth:
        if t.kind == "outage_replayed":
            assert np.all(t.records.time_ms < t.params["end_ms"])
            assert np.all(t.records.time_ms >= t.params["start_ms"])
    for e in range(50):
        assert np.all(np.diff(out.time_ms[out.entity == e]) >= 0), "a backlog replays in order"


def test_anomalies_have_their_shapes() -> None:
    _out, truth, _ = run(24, anomaly_rate=0.5, **OFF)
    clean, _, _ = run(24, **OFF)
    by_key = {int(k): i for i, k in enumerate(clean.key.tolist())}
    seen = set()
    for t in truth:
        column = t.params["column"]
        idx = np.asarray([by_key[int(k)] for k in t.records.key.tolist()])
        now, before = t.records.columns[column], clean.columns[column][idx]
        seen.add(t.kind)
        if t.kind == "dropout":
            assert np.isnan(now).all()
        elif t.kind == "stuck":
            for e in np.unique(t.records.entity):
                for start in np.unique(t.params["start_ms"][t.records.entity == e]):
                    mine = (t.records.entity == e) & (t.params["start_ms"] == start)
                    assert np.unique(now[mine]).size == 1
        elif t.kind == "spike":
            scale = {"temperature_c": 3.0, "humidity": 10.0, "pressure_hpa": 4.0}[column]
            clipped = (now <= {"humidity": 0.0}.get(column, -40)) | (now >= 100)
            assert (np.abs(now - before)[~clipped] >= 4 * scale - 0.01).all()
    assert seen == {"spike", "stuck", "drift", "dropout", "step"}
    # A dropout is null in JSON and in Arrow, not NaN.
    gen, _ = source()
    dropped = next(t for t in truth if t.kind == "dropout")
    row = orjson.loads(encode_jsonl(gen.schema, dropped.records.take(slice(0, 1))))
    assert row[dropped.params["column"]] is None
    table = gen.schema.table(dropped.records)
    assert table.column(dropped.params["column"]).null_count == len(dropped.records)
    assert isinstance(table, pa.Table)


def test_clock_skew_is_stable_per_entity_and_drifts_within_a_day() -> None:
    out, truth, _ = run(6, clock_skew_rate=0.3, clock_skew_s=5, clock_drift_ppm=50, **OFF)
    skew = [t for t in truth if t.kind == "clock_skew"]
    entities = {int(e) for t in skew for e in t.records.entity.tolist()}
    assert 5 <= len(entities) <= 25
    for e in entities:
        mine = out.skew_ms[out.entity == e]
        assert mine.max() - mine.min() <= 6 * 3_600 * 50e-6 * 5 * 1000, "drift, not jumps"
    assert not out.skew_ms[~np.isin(out.entity, list(entities))].any()


def test_malformed_records_really_fail_the_schema_and_only_they() -> None:
    from pydantic import ValidationError

    from ingest.app import BME280Reading
    from producer.encoding import json_documents

    out, truth, _ = run(2, malformed_rate=0.05, **OFF)
    gen, _ = source()
    docs = json_documents(gen.schema, out)
    bad = {k for t in truth if t.kind.startswith("malformed_") for k in t.records.key.tolist()}
    assert within_binomial(len(bad), len(out), 0.05)
    kinds = {t.kind for t in truth}
    assert kinds == {f"malformed_{k}" for k in
                     ("wrong_type", "missing_field", "out_of_range", "truncated_json",
                      "schema_change")}  # fmt: skip
    for key, doc in zip(out.key.tolist(), docs, strict=True):
        try:
            BME280Reading.model_validate_json(doc)
            valid = True
        except ValidationError:
            valid = False
        assert valid == (key not in bad)


def rows_of(batch: RecordBatch) -> list[dict[str, Any]]:

    from producer.encoding import json_documents

    gen, _ = source()
    return [orjson.loads(doc) for doc in json_documents(gen.schema, batch)]


def test_quality_issues_are_about_five_percent_and_realistic() -> None:
    clean, _, _ = run(3, **OFF)
    out, truth, _ = run(3, quality_issue_rate=0.05, **OFF)
    hit = {int(k) for t in truth if t.kind.startswith("quality_") for k in t.records.key.tolist()}
    assert within_binomial(len(hit), len(out), 0.05)
    assert {t.kind for t in truth} == {
        "quality_missing_optional", "quality_date_format", "quality_name_variant",
        "quality_outlier",
    }  # fmt: skip
    rows = rows_of(out)
    kind_of = {int(k): t.kind for t in truth for k in t.records.key.tolist()}
    canonical = {r["message_id"]: r for r in rows_of(clean)}
    for key, row in zip(out.key.tolist(), rows, strict=True):
        kind, before = kind_of.get(int(key), ""), canonical[row["message_id"]]
        if kind == "quality_missing_optional":
            assert row["metadata"] in (None, "", "N/A")
        elif kind == "quality_date_format":
            assert row["timestamp"] != before["timestamp"]
        elif kind == "quality_name_variant":
            assert row["device_id"] != before["device_id"]
            digits = "".join(ch for ch in row["device_id"][6:] if ch.isdigit())
            assert int(digits) == int(before["device_id"][-4:]), "the same device, named anew"
        elif kind == "quality_outlier":
            changed = [c for c in ("temperature_c", "humidity", "pressure_hpa")
                       if row[c] != before[c]]  # fmt: skip
            assert len(changed) == 1
            assert -40 <= row["temperature_c"] <= 85
            assert 0 <= row["humidity"] <= 100
        else:
            assert row == before, "nothing else changes"


def test_multi_source_overlaps_and_conflicts_follow_the_seed() -> None:
    clean, _, _ = run(6, **OFF)
    out, truth, generated = run(6, sources=3, **OFF)
    entries = [t for t in truth if t.kind == "source_copy"]
    params = {
        name: np.concatenate([t.params[name] for t in entries])
        for name in ("source", "original_message_id", "conflict")
    }
    assert sum(len(t.records) for t in entries) == len(out) == generated
    rows = rows_of(out)
    clean_ids = set(clean.message_ids().astype("U36").tolist())
    originals = params["original_message_id"].tolist()
    assert set(originals) == clean_ids, "every record comes from some source"
    count: dict[str, int] = {}
    for o in originals:
        count[o] = count.get(o, 0) + 1
    for letter, overlap in zip("ABC", (0.4, 0.5, 0.3), strict=True):
        mine = [o for o, s in zip(originals, params["source"].tolist(), strict=True)
                if s == letter]  # fmt: skip
        share = sum(count[o] == 2 for o in mine) / len(mine)
        assert abs(share - overlap) < 0.03, (letter, share)
    conflicts = [c for c in params["conflict"].tolist() if c]
    for name, weight in (("name_conflict", 0.4), ("measure_conflict", 0.3),
                         ("date_conflict", 0.2), ("other_conflict", 0.1)):  # fmt: skip
        assert abs(conflicts.count(name) / len(conflicts) - weight) < 0.03
    assert {r["source"] for r in rows} == {"A", "B", "C"}
    for letter, prefix, date in (
        ("A", "bme280_0", "-"),
        ("B", "BME280-", "/"),
        ("C", "bme280 #", "."),
    ):
        mine = [r for r in rows if r["source"] == letter]
        in_style = [r for r in mine if r["device_id"].startswith(prefix)]
        assert len(in_style) > 0.8 * len(mine), "each source names devices its own way"
        assert sum(date in str(r["timestamp"]) for r in mine) > 0.8 * len(mine)
    assert len({r["message_id"] for r in rows}) == len(rows), "each copy has its own id"


def test_a_group_goes_silent_together() -> None:
    _, truth, _ = run(6, outage_rate=0.1, outage_group_size=10, outage_replay=False, **OFF)
    lost = [t for t in truth if t.kind == "outage_lost"]
    assert lost
    windows: dict[tuple[int, int], set[int]] = {}
    for t in lost:
        for e, g, s in zip(t.records.entity.tolist(), t.params["group"].tolist(),
                           t.params["start_ms"].tolist(), strict=True):  # fmt: skip
            assert g == e // 10
            windows.setdefault((g, s), set()).add(e)
    assert max(len(members) for members in windows.values()) == 10, "the whole group at once"


def test_a_duplicate_may_come_in_several_copies() -> None:
    clean, _, n = run(2, **OFF)
    out, truth, generated = run(2, drop_rate=0, duplicate_rate=0.1, duplicate_copies=3)
    originals = keys_of(truth, "duplicate")
    assert within_binomial(len(originals), n, 0.1)
    assert len(out) == len(clean) + 3 * len(originals) == generated
    copies = sum(len(t.records) for t in truth if t.kind == "duplicate")
    assert copies == 3 * len(originals), "each copy in the ground truth"
    ids, dup = out.message_ids(), out.is_duplicate
    for i in np.flatnonzero(~dup & np.roll(dup, -1)).tolist():  # an original, then its copies
        assert dup[i + 1 : i + 4].all()
        assert i + 4 == len(out) or not dup[i + 4]
        assert (ids[i + 1 : i + 4] == ids[i]).all()


def test_a_late_delay_may_be_uniform_up_to_the_bound() -> None:
    _, truth, _ = run(6, drop_rate=0, duplicate_rate=0, late_rate=0.1, late_delay="uniform",
                      late_max_s=120)  # fmt: skip
    delays = np.concatenate([t.params["delay_ms"] for t in truth if t.kind == "late"]) / 1000
    assert delays.size > 500
    assert delays.min() >= 0
    assert delays.max() <= 120
    assert abs(delays.mean() - 60) < 5, "uniform on [0, 120]: mean 60"
    assert abs(np.mean(delays < 30) - 0.25) < 0.05, "a quarter under 30 s (exponential: most)"
