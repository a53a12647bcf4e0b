"""The example specs as a user runs them: every stream of every example is reproducible, the
same in any chunking (live ticks or backfill chunks) and in shards; state machines only take
the transitions they declare; counts, per-count values and episodes do what they say."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from producer.config import load_settings
from producer.encoding import encode_jsonl, json_documents
from producer.faults import Faults
from producer.records import RecordBatch
from producer.settings import FaultSettings
from producer.specs.format import Machine
from producer.specs.loading import load_spec
from producer.streams import build_stream

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
STREAMS = [(path, name) for path in EXAMPLES for name in load_spec(path).streams]
T0 = round(datetime(2025, 12, 31, 23, 0, tzinfo=UTC).timestamp() * 1000)  # over New Year
HOUR = 3_600_000

Row = dict[str, object]


def batches(spec: Path, stream: str, steps: list[int], end: int, shard: str = "0/1",
            seed: int = 7, faults: bool = True) -> tuple[RecordBatch, Faults]:  # fmt: skip
    """The stream's records over [T0, end), advanced in ``steps`` (repeating the last)."""
    overrides: dict[str, object] = {"specs": [str(spec)], "seed": seed, "shard": shard}
    settings_ = load_settings(overrides, environ={})
    built = build_stream(stream, settings_)
    out, t, i = [], T0, 0
    while t < end:
        step = steps[min(i, len(steps) - 1)]
        out += list(built.source.advance(t, min(t + step, end), None).values())
        t, i = min(t + step, end), i + 1
    return RecordBatch.concat(out), built.channels[0].faults


def lines(spec: Path, stream: str, batch: RecordBatch) -> list[bytes]:
    settings_ = load_settings({"specs": [str(spec)]}, environ={})
    schema = build_stream(stream, settings_).source.channels[stream]
    return encode_jsonl(schema, batch).splitlines() if len(batch) else []


def rows(spec: Path, stream: str, hours: int = 6) -> list[Row]:
    batch, _ = batches(spec, stream, [HOUR], T0 + hours * HOUR)
    return [orjson.loads(line) for line in lines(spec, stream, batch)]


@pytest.mark.parametrize(("spec", "stream"), STREAMS, ids=[f"{p.stem}:{s}" for p, s in STREAMS])
def test_every_example_stream_is_reproducible_in_any_chunking_and_in_shards(
    spec: Path, stream: str
) -> None:
    end = T0 + 2 * HOUR
    whole = lines(spec, stream, batches(spec, stream, [2 * HOUR], end)[0])
    assert len(whole) > 50, "two hours make records"
    ticks = lines(spec, stream, batches(spec, stream, [20, 1_000, 433_000, 7_777], end)[0])
    assert ticks == whole, "live-sized ticks and backfill chunks give the same bytes"
    parts = [lines(spec, stream, batches(spec, stream, [HOUR], end, shard=f"{i}/3")[0])
             for i in range(3)]  # fmt: skip
    assert sorted(line for part in parts for line in part) == sorted(whole)
    other = lines(spec, stream, batches(spec, stream, [2 * HOUR], end, seed=8)[0])
    assert other != whole


def reachable(machine: Machine) -> set[tuple[str, str]]:
    """(a, b) for b entered right after a, through states that write nothing, or a dwell."""
    silent = {name for name, state in machine.states.items() if not state.emit}
    pairs = set()
    for a, state in machine.states.items():
        pairs.add((a, a))  # dwelling: the same state at the next record
        todo, seen = [n for n, w in state.next.items() if w > 0], set()
        while todo:
            b = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            if b in silent:
                todo += [n for n, w in machine.states[b].next.items() if w > 0]
            else:
                pairs.add((a, b))
    return pairs


def by_entity(records: list[Row], key: str) -> dict[object, list[Row]]:
    out: dict[object, list[Row]] = defaultdict(list)
    for row in records:
        if not row["is_duplicate"]:
            out[row[key]].append(row)
    return out


@pytest.mark.parametrize(("name", "stream", "field", "key", "hours"), [
    ("clickstream", "clicks", "page", "user_id", 4),
    ("order-lifecycle", "orders", "status", "slot_id", 24),
    ("sales-pipeline", "deals", "stage", "slot_id", 60 * 24),
])  # fmt: skip
def test_state_machines_only_take_declared_transitions(
    name: str, stream: str, field: str, key: str, hours: int
) -> None:
    spec = ROOT / "examples" / "specs" / f"{name}.yaml"
    machine = load_spec(spec).streams[stream].fields[field].machine
    assert machine is not None
    batch, _ = batches(spec, stream, [24 * HOUR], T0 + hours * HOUR)  # faults come later
    records = [orjson.loads(line) for line in lines(spec, stream, batch)]
    allowed = reachable(machine)
    seen: set[tuple[str, str]] = set()
    for readings in by_entity(records, key).values():
        assert readings[0][field] == machine.first or int(str(readings[0].get("session", 1))) > 1
        for a, b in itertools.pairwise(readings):
            pair = (str(a[field]), str(b[field]))
            assert pair in allowed, pair
            seen.add(pair)
    declared = {(a, b) for a, s in machine.states.items() for b in s.next}
    assert len(seen & declared) >= len(declared) // 2, "the machine gets around"
    silent = {n for n, s in machine.states.items() if not s.emit}
    assert not {str(r[field]) for r in records} & silent, "a silent state writes nothing"


def test_a_count_numbers_the_entries_and_per_count_values_stay() -> None:
    spec = ROOT / "examples" / "specs" / "clickstream.yaml"
    for readings in by_entity(rows(spec, "clicks", 4), "user_id").values():
        sessions = [int(str(r["session"])) for r in readings]
        assert sessions[0] == 1
        for a, b in itertools.pairwise(readings):
            step = int(str(b["session"])) - int(str(a["session"]))
            assert step in (0, 1)
            assert step == 0 or b["page"] == "home", "a session begins at home"
    orders = ROOT / "examples" / "specs" / "order-lifecycle.yaml"
    per_order = by_entity(rows(orders, "orders", 24), "slot_id")
    amounts: dict[tuple[object, object], set[object]] = defaultdict(set)
    for slot, readings in per_order.items():
        for r in readings:
            amounts[(slot, r["order_no"])].add(r["amount"])
            assert type(r["items"]) is int, "round: 0 writes whole numbers"
    assert all(len(a) == 1 for a in amounts.values()), "an order keeps its amount"
    pairs = [(amounts[(slot, 1)], amounts[(slot, 2)]) for slot, _ in amounts
             if (slot, 2) in amounts and (slot, 1) in amounts]  # fmt: skip
    assert len(pairs) > 100
    assert sum(a != b for a, b in pairs) > 0.9 * len(pairs), "the next order draws anew"


def test_categorical_comparisons_select_what_they_name() -> None:
    spec = ROOT / "examples" / "specs" / "clickstream.yaml"
    records = rows(spec, "clicks")
    for r in records:
        carted = r["page"] in ("cart", "checkout", "confirmation")
        assert (float(str(r["cart_value"])) > 0) == carted
        if r["device"] == "desktop":
            assert r["mobile_app"] is False
    apps = [r["mobile_app"] for r in records if r["device"] != "desktop"]
    assert 0.5 < sum(map(bool, apps)) / len(apps) < 0.7


def test_an_episode_shapes_its_records_and_each_is_in_the_ground_truth() -> None:
    spec = ROOT / "examples" / "specs" / "payments.yaml"
    batch, faults = batches(spec, "payments", [HOUR], T0 + 12 * HOUR)
    out = faults.apply(batch, T0 + 12 * HOUR)
    truth = [t for t in out.truth if t.kind == "card_testing"]
    assert truth, "twelve hours of 5,000 cards have card testing"
    labelled = np.concatenate([t.records.key for t in truth])
    start = np.concatenate([t.params["start_ms"] for t in truth])
    end = np.concatenate([t.params["end_ms"] for t in truth])
    times = np.concatenate([t.records.time_ms for t in truth])
    assert ((start <= times) & (times < end)).all()
    assert ((end - start >= 300_000) & (end - start <= 1_800_000)).all()
    amounts = batch.columns["amount"]
    inside = np.isin(batch.key, labelled)
    assert (amounts[inside] <= 3).all()
    assert batch.columns["online"][inside].all()
    assert (amounts[~inside] > 3).mean() > 0.95, "outside an episode, ordinary amounts"


def columns_of(settings_overrides: dict[str, object], stream: str, days: int) -> dict[str, Any]:
    settings_ = load_settings(settings_overrides, environ={})
    built = build_stream(stream, settings_)
    schema = built.source.channels[stream]
    out = [b for t in range(T0, T0 + days * 24 * HOUR, 6 * HOUR)
           for b in built.source.advance(t, t + 6 * HOUR, None).values()]  # fmt: skip
    table = schema.table(RecordBatch.concat(out))
    return {name: table.column(name).to_numpy() for name in table.column_names}


def test_the_bme280_spec_has_the_statistics_of_the_built_in_stream(tmp_path: Path) -> None:
    """Ranges, step sizes and the daily swing of examples/specs/bme280.yaml against the
    built-in BME280 stream (weather events off: the spec leaves them out); 200 devices a
    minute for two days each, so that the walks average out of the hourly means."""
    days = 2
    built_in = columns_of({"streams": ["bme280"], "bme280": {
        "devices": 200, "enable_weather_events": False, "rate": {"interval_s": 60}}},
        "bme280", days)  # fmt: skip
    text = (ROOT / "examples" / "specs" / "bme280.yaml").read_text()
    assert "count: 10\n" in text
    assert "interval_s: 10}" in text
    bigger = tmp_path / "bme280.yaml"
    bigger.write_text(text.replace("count: 10\n", "count: 200\n")
                      .replace("interval_s: 10}", "interval_s: 60}"))  # fmt: skip
    spec = columns_of({"specs": [str(bigger)]}, "devices", days)
    assert abs(len(spec["device_id"]) - len(built_in["device_id"])) < 0.01 * len(spec["device_id"])
    for name, (low, high) in {"temperature_c": (18, 28), "humidity": (30, 70),
                              "pressure_hpa": (1000, 1025)}.items():  # fmt: skip
        for data in (built_in, spec):
            noise = 0.6  # the sensor noise (sd up to 0.1) may step over a bound by a little
            assert low - noise <= data[name].min(), name
            assert data[name].max() <= high + noise, name
        ours, theirs = spec[name], built_in[name]
        assert abs(ours.std() - theirs.std()) < 0.25 * theirs.std(), name
        assert abs(ours.mean() - theirs.mean()) < 0.1 * (high - low), name
        steps = {}
        for label, data in (("spec", spec), ("built-in", built_in)):
            moves = []
            for device in np.unique(data["device_id"]):
                mine = data[name][data["device_id"] == device]
                moves.append(np.abs(np.diff(mine)))
            steps[label] = float(np.concatenate(moves).mean())
        assert abs(steps["spec"] - steps["built-in"]) < 0.15 * steps["built-in"], (name, steps)
    for name, peak, trough in (("temperature_c", 14, 6), ("humidity", 6, 14)):
        swings = {}
        for label, data in (("spec", spec), ("built-in", built_in)):
            hours = (data["timestamp"].astype("datetime64[ms]").astype(np.int64) // HOUR) % 24
            by_hour = np.array([data[name][hours == h].mean() for h in range(24)])
            assert int(by_hour.argmax()) in (peak - 1, peak, peak + 1), (label, name, by_hour)
            assert int(by_hour.argmin()) in (trough - 1, trough, trough + 1), (label, name)
            swings[label] = (by_hour.max() - by_hour.min()) / 2
        assert abs(swings["spec"] - swings["built-in"]) < 0.2 * swings["built-in"], swings


KINDS_SPEC = ROOT / "tests" / "data" / "every-kind.yaml"


@pytest.mark.parametrize(("spec", "stream"), [*STREAMS, (KINDS_SPEC, "people")],
                         ids=[*(f"{p.stem}:{s}" for p, s in STREAMS), "every-kind"])  # fmt: skip
def test_the_columnwise_json_lines_are_the_bytes_of_the_dicts(spec: Path, stream: str) -> None:
    """A spec schema writes JSON lines column by column; they are exactly orjson on the
    records' dicts, nulls, words, refs, Faker text, formats and all; with a fault that
    changes documents the dict path is taken, as for every stream."""
    settings_ = load_settings({"specs": [str(spec)], "seed": 3}, environ={})
    built = build_stream(stream, settings_)
    schema = built.source.channels[stream]
    batch = RecordBatch.concat(list(built.source.advance(T0, T0 + HOUR, None).values()))
    assert len(batch) > 20
    by_dicts = b"".join(orjson.dumps(row) + b"\n" for row in schema.rows(batch))
    assert encode_jsonl(schema, batch) == by_dicts
    assert json_documents(schema, batch) == by_dicts.splitlines()
    faults = Faults(FaultSettings(malformed_rate=0.3), 5, schema)
    changed = faults.apply(batch, T0 + HOUR).batch
    assert encode_jsonl(schema, changed).splitlines() == json_documents(schema, changed)


def test_the_sales_pipeline_has_seed_004s_delays_weights_and_amounts() -> None:
    spec = ROOT / "examples" / "specs" / "sales-pipeline.yaml"
    batch, _ = batches(spec, "deals", [24 * HOUR], T0 + 60 * 24 * HOUR)
    records = [orjson.loads(line) for line in lines(spec, "deals", batch)]
    deals: dict[tuple[object, object], dict[str, float]] = defaultdict(dict)
    for r in records:
        if not r["is_duplicate"]:
            stamp = datetime.fromisoformat(str(r["timestamp"]).replace("Z", "+00:00"))
            deals[(r["slot_id"], r["deal_no"])][str(r["stage"])] = stamp.timestamp() / 86400
    rng = np.random.default_rng(0)  # the seed's own formula, sampled: max(0, int(normal))
    for a, b, mean, sd in (("appointment", "qualified", 3, 2), ("qualified", "presentation", 7, 3),
                           ("presentation", "decision", 10, 5)):  # fmt: skip
        start = T0 / 1000 / 86400
        # Deals at the stage in the first 20 of the 60 days: even a long wait ends in view.
        gaps = [d[b] - d[a] for d in deals.values() if a in d and b in d and d[a] < start + 20]
        assert len(gaps) > 500, (a, b)
        expected = np.maximum(0, np.floor(rng.normal(mean, sd, 100_000))).mean()
        # (+ up to an hour: a slot looks at its deal hourly)
        assert abs(np.mean(gaps) - expected - 0.02) < 0.25, (a, b, np.mean(gaps), expected)
    firsts = [r for r in records if r["stage"] == "appointment"]
    for name, weights in (("deal_type", {"New Business": 45, "Renewal": 30, "Upsell": 15,
                                         "Cross-sell": 10}),
                          ("brand", {"Brand_A": 50, "Brand_B": 35, "Brand_C": 15})):  # fmt: skip
        for value, weight in weights.items():
            share = sum(r[name] == value for r in firsts) / len(firsts)
            assert abs(share - weight / 100) < 0.03, (name, value, share)
    assert min(float(str(r["amount"])) for r in records) >= 5000
    renewals = [float(str(r["amount"])) for r in firsts
                if r["deal_type"] == "Renewal" and r["brand"] == "Brand_B"
                and r["enrollment_type"] == "Hybrid"]  # fmt: skip
    assert abs(np.mean(renewals) - 38000) < 2500, "the seed's base, no adjustment"
    lost = sum(1 for d in deals.values() if "lost" in d)
    assert 0.05 < lost / len(deals) < 0.25, "3 % drop out at each of five stages"


def test_the_examples_run_together() -> None:
    """Every example at once (as the compliance suite runs them): no stream name twice."""
    settings_ = load_settings({"specs": [str(p) for p in EXAMPLES]}, environ={})
    assert sorted(settings_.streams) == sorted(name for _, name in STREAMS)
