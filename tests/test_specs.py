"""Declared streams (``--spec FILE``): errors as FILE:LINE:COL, and the engine's guarantees
for a spec stream: same seed same bytes, shards that partition it, any chunking of a window
the same records, columns equal to the JSON, walks within their bounds."""

from __future__ import annotations

import collections
import itertools
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.errors import ConfigError
from producer.geography import load_cities
from producer.records import RecordBatch
from producer.specs.loading import load_spec
from producer.streams import build_stream
from tests.test_columnar import oracle

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "specs" / "iot-fleet.yaml"
T0 = round(datetime(2024, 2, 29, 23, 0, tzinfo=UTC).timestamp() * 1000)  # over leap day


def records(spec: Path, start: int, end: int, step: int, shard: str = "0/1",
            seed: int = 7) -> RecordBatch:  # fmt: skip
    settings_ = load_settings({"specs": [str(spec)], "seed": seed, "shard": shard}, environ={})
    source = build_stream("fleet", settings_).source
    out = [b for t in range(start, end, step)
           for b in source.advance(t, min(t + step, end), None).values()]  # fmt: skip
    return RecordBatch.concat(out)


def lines(batch: RecordBatch) -> list[bytes]:
    settings_ = load_settings({"specs": [str(FLEET)]}, environ={})
    schema = build_stream("fleet", settings_).source.channels["fleet"]
    return encode_jsonl(schema, batch).splitlines()


def test_same_seed_same_bytes_and_another_seed_other_bytes() -> None:
    one = lines(records(FLEET, T0, T0 + 120_000, 5_000))
    assert one == lines(records(FLEET, T0, T0 + 120_000, 5_000))
    assert one != lines(records(FLEET, T0, T0 + 120_000, 5_000, seed=8))
    assert len(one) > 500 * 10


@settings(max_examples=8, deadline=None)
@given(steps=st.lists(st.integers(1, 90_000), min_size=1, max_size=12))
def test_any_chunking_of_a_window_gives_the_same_records(steps: list[int]) -> None:
    end = T0 + 300_000
    whole = lines(records(FLEET, T0, end, 300_000))
    pieces, t = [], T0
    settings_ = load_settings({"specs": [str(FLEET)], "seed": 7}, environ={})
    source = build_stream("fleet", settings_).source
    for step in [*steps, 300_000]:
        if t >= end:
            break
        pieces += list(source.advance(t, min(t + step, end), None).values())
        t = min(t + step, end)
    assert lines(RecordBatch.concat(pieces)) == whole


def test_shards_partition_the_stream() -> None:
    whole = lines(records(FLEET, T0, T0 + 60_000, 60_000))
    parts = [lines(records(FLEET, T0, T0 + 60_000, 60_000, shard=f"{i}/3")) for i in range(3)]
    assert sorted(line for part in parts for line in part) == sorted(whole)
    assert all(parts), "every shard has records"


def test_the_fields_do_what_the_spec_says() -> None:
    batch = records(FLEET, T0, T0 + 3_600_000, 600_000)
    rows = [orjson.loads(line) for line in lines(batch)]
    temperature = np.array([r["temperature"] for r in rows])
    assert temperature.min() >= -10
    assert temperature.max() <= 45
    by_sensor: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_sensor.setdefault(str(row["sensor_id"]), []).append(row)
    for readings in by_sensor.values():
        temps = np.array([r["temperature"] for r in readings])
        assert np.abs(np.diff(temps)).max() <= 0.2 + 0.011  # a walk of steps <= 0.2 (rounded)
        assert [r["reading"] for r in readings] == list(range(1, len(readings) + 1))
        assert len({r["site"] for r in readings}) == 1, "an attribute is the entity's"
    humidity = np.array([r["humidity"] for r in rows])
    residual = humidity - (80 - 1.2 * temperature)
    assert abs(residual.mean()) < 0.1
    assert abs(residual.std() - 2) < 0.1
    sites = [r["site"] for r in rows]
    assert abs(sites.count("north") / len(sites) - 0.5) < 0.1
    battery = [r["battery_v"] for r in rows]
    assert 0.003 < battery.count(None) / len(battery) < 0.02, "nulls at about 1 %"
    assert "_base" not in rows[0], "a name starting with _ is not written"


def test_the_arrow_table_holds_what_the_json_says() -> None:
    settings_ = load_settings({"specs": [str(FLEET)], "seed": 7}, environ={})
    source = build_stream("fleet", settings_).source
    schema = source.channels["fleet"]
    batch = source.advance(T0, T0 + 120_000, None)["fleet"]
    table = schema.table(batch)
    assert table.equals(oracle(schema.rows(batch), table.schema))


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """\
streams:
  fleet:
    entities: {count: 10}
    fields:
      a: {uniform: [0, 1]}
      b: "a * 2"
"""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            GOOD.replace("count: 10", "count: 10, colour: red"),
            ":3:27: unknown key 'colour'; accepted: count, id, id_field, attributes",
        ),
        (
            GOOD.replace("count: 10", "count: -1"),
            ":3:23: streams.fleet.entities.count: Input should be greater than or equal to 1; "
            "accepted: a number >= 1",
        ),
        (
            GOOD.replace('"a * 2"', '"a * c"'),
            ":6:10: streams.fleet.fields.b: 1:5: unknown field 'c'; accepted: the stream's fields",
        ),
        (
            GOOD.replace('"a * 2"', '"a + 1"').replace("{uniform: [0, 1]}", '"b - 1"'),
            ":3:5: streams.fleet: fields depend on each other in a cycle: a -> b -> a",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{uniform: [0, 1], normal: [0, 1]}"),
            ":5:10: streams.fleet.fields.a: uniform and normal given; accepted: exactly one of "
            "expr, uniform",
        ),
        (
            GOOD.replace('"a * 2"', "\"__import__('os').system('true')\""),
            ":6:10: streams.fleet.fields.b: 1:1: only named functions can be called",
        ),
        ("streams:\n  fleet: [1, 2\n", ":3:1: expected ',' or ']'"),
        ("", ":1:1: the file is empty"),
        (
            GOOD.replace("    entities: {count: 10}\n", ""),
            ":3:5: streams.fleet.entities is missing; accepted: description, entities, fields",
        ),
        (
            GOOD.replace('"a * 2"', "{machine: {states: {on: {next: {of: 1}}}}}"),
            ":6:20: streams.fleet.fields.b.machine: state 'on' moves to 'of', which is not a "
            "state; accepted: on",
        ),
        (
            GOOD.replace('"a * 2"', "{machine: {start: up, states: {on: {next: {on: 1}}}}}"),
            ":6:20: streams.fleet.fields.b.machine: start 'up' is not a state; accepted: on",
        ),
        (
            GOOD.replace('"a * 2"', "{machine: {states: {on: {next: {on: 1}, emit: false}}}}"),
            "streams.fleet.fields.b.machine: no state writes records (every state has emit: "
            "false); accepted: ",
        ),
        (
            GOOD.replace('"a * 2"', "{count: {of: a, enters: go}}"),
            ":3:5: streams.fleet: b: count.of 'a' is not a machine field; accepted: (no machine",
        ),
        (
            GOOD.replace('"a * 2"', "{uniform: [0, 1], per: a}"),
            ":3:5: streams.fleet: b: per 'a' is not a count field; accepted: (no count field)",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{choice: {red: 1, blue: 2}}"),
            ":6:10: streams.fleet.fields.b: 1:1: 'a' holds words, not numbers; accepted: a "
            "comparison with its values: a == one of 'red', 'blue'",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{choice: {red: 1, blue: 2}}").replace(
                '"a * 2"', "\"a == 'green'\""
            ),
            ":6:10: streams.fleet.fields.b: 1:6: 'green' is not a value of a; accepted: a == "
            "/ != one of 'red', 'blue', or in (...)",
        ),
        (
            GOOD.replace(
                "    fields:", "    episodes: {storm: {rate: 0.1, duration_s: 4000}}\n    fields:"
            ),
            ":4:23: streams.fleet.episodes.storm: duration_s must be within (0, 3600] seconds "
            "(the hour), shortest first",
        ),
        (
            GOOD.replace("    fields:", "    local_time: Mars/Olympus\n    fields:"),
            ":3:5: streams.fleet: local_time 'Mars/Olympus' is not a time zone; accepted: an "
            "IANA zone such as Europe/Berlin",
        ),
        (
            GOOD.replace(
                "count: 10", "count: 10, attributes: {c: {city: uniform}, x: {lookup: c.altitude}}"
            ),
            ":3:5: streams.fleet: x: lookup 'c.altitude' is not a city attribute's column; "
            "accepted: c.name, c.country",
        ),
        (
            GOOD.replace("count: 10", "count: 10, attributes: {who: {faker: seed_instance}}"),
            "streams.fleet.entities.attributes.who: faker 'seed_instance' is not a provider; "
            "accepted: a Faker provider that takes no arguments",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{city: population}"),
            ":3:5: streams.fleet: field 'a' is a city: that is an attribute (drawn once per "
            "entity)",
        ),
        (
            GOOD.replace("    fields:", "    key: colour\n    fields:"),
            ":3:5: streams.fleet: key 'colour' is not a field of the record; accepted: id, a, b",
        ),
        (
            GOOD.replace(
                '"a * 2"',
                "{machine: {states: {up: {next: {up: 1}}}}}\n"
                "      c: {count: {of: b, enters: down}}",
            ),
            ":3:5: streams.fleet: c: count.enters 'down' is not a state of b; accepted: up",
        ),
        (
            GOOD.replace("count: 10", "count: 10, attributes: {t: {uniform: [0, 1], per: a}}"),
            ":3:5: streams.fleet: t: per 'a' is not a count field",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{uniform: [0, 1], locale: de_DE}"),
            ":5:10: streams.fleet.fields.a: locale is Faker's; accepted: locale with faker: ",
        ),
        (
            GOOD.replace("count: 10", "count: 10, attributes: {who: {faker: name, locale: xx_XX}}"),
            "streams.fleet.entities.attributes.who: locale 'xx_XX' is not one of Faker's",
        ),
        (
            GOOD.replace("count: 10", "count: 10, attributes: {z: {uniform: [0, 1]}}").replace(
                "    fields:", "    local_time: z\n    fields:"
            ),
            ":3:5: streams.fleet: local_time 'z' is an attribute that does not hold zones; "
            "accepted: an IANA zone",
        ),
        (
            GOOD.replace(
                '"a * 2"', "{machine: {states: {up: {next: {up: 1}, dwell_s: {choice: {1: 1}}}}}}"
            ),
            "streams.fleet.fields.b.machine: state 'up': dwell_s is a choice; accepted: a number "
            "or one of uniform, normal",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{choice: {x: -1, y: 2}}"),
            ":5:10: streams.fleet.fields.a: choice needs values with non-negative weights",
        ),
        (
            GOOD.replace(
                "    fields:", "    episodes: {a: {rate: 0.1, duration_s: 60}}\n    fields:"
            ),
            ":3:5: streams.fleet: ['a'] are named twice (attributes, fields, episodes)",
        ),
        (
            GOOD.replace('"a * 2"', "{walk: {start: 0, step: 1, min: 0, max: 5}}").replace(
                "count: 10", "count: 10, attributes: {w: {sequence: {}}}"
            ),
            ":3:5: streams.fleet: attribute 'w' is a sequence: that is a field",
        ),
        (
            GOOD.replace('"a * 2"', '"clip(a)"'),
            ":6:10: streams.fleet.fields.b: 1:1: clip() takes 3 argument(s), got 1; accepted: "
            "clip(x, x, x)",
        ),
        (
            GOOD.replace('"a * 2"', "\"a + 'x'\""),
            ":6:10: streams.fleet.fields.b: 1:5: 'x' is not a number; accepted: numbers",
        ),
        (
            GOOD.replace("    fields:", "    time_format: unix\n    fields:"),
            ":4:18: streams.fleet.time_format: Input should be 'iso', 'epoch_ms' or 'epoch_s'; "
            "accepted: 'iso', 'epoch_ms' or 'epoch_s'",
        ),
        (
            GOOD.replace('"a * 2"', '{template: "{c}"}'),
            ":6:21: streams.fleet.fields.b.template: {c} is not a name it can read; accepted: "
            "id, a",
        ),
        (
            GOOD.replace('"a * 2"', '{template: "N-{a:06d}"}'),
            ":6:21: streams.fleet.fields.b.template: 'N-{a:06d}' cannot write its values (a a "
            "float: Unknown format code 'd' for object of type 'float'); accepted: text with",
        ),
        (
            GOOD.replace('"a * 2"', '{template: "{a.real}"}'),
            ":6:21: streams.fleet.fields.b.template: template '{a.real}': {a.real} is not a name "
            "with a format; accepted: text with {name} or {name:spec}",
        ),
        (
            GOOD.replace("count: 10", 'count: 10, attributes: {t: {template: "{a}"}}'),
            "streams.fleet.entities.attributes.t.template: {a} is not a name it can read; "
            "accepted: id",
        ),
        (
            GOOD.replace('"a * 2"', '{template: "{c}"}\n      c: {template: "<{b}>"}'),
            ":3:5: streams.fleet: fields depend on each other in a cycle",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{choice: {x: 1}, type: date}"),
            ":5:10: streams.fleet.fields.a: type date is for a number of seconds since 1970",
        ),
        (
            GOOD.replace('"a * 2"', '{expr: "time", type: timestamp, format: "{:.0f}"}'),
            "type timestamp is for a number of seconds since 1970 (an expression, a "
            "distribution, a walk), without format",
        ),
        (
            GOOD.replace('b: "a * 2"', 'time: "a * 2"'),
            ":3:5: streams.fleet: ['time'] are what expressions read of the record's time",
        ),
        (
            GOOD.replace('"a * 2"', "\"where(a > 0.5, 'high', a * 2)\""),
            ":6:10: streams.fleet.fields.b: 1:24: 'a * 2' is not a word where the others are "
            "('high'); accepted: words, or where(c, a, b) and 'a if c else b' of them",
        ),
        (
            GOOD.replace("{uniform: [0, 1]}", "{uniform: [0, 1], skew: [80, 20]}"),
            ":5:10: streams.fleet.fields.a: skew [80.0, 20.0] is not a skew of a ref; accepted: "
            "with ref, [records %, entities %] with 0 < entities < records < 100",
        ),
        (
            GOOD.replace('"a * 2"', "{prev: c}"),
            ":3:5: streams.fleet: b: prev 'c' is not a field it can follow; accepted: a",
        ),
        (
            GOOD.replace('"a * 2"', '{prev: a}\n      c: {template: "{b}"}'),
            "streams.fleet.fields.c.template: {b} is not a name it can read; accepted: id, a",
        ),
        (
            GOOD.replace("count: 10", "count: 10, attributes: {p: {prev: a}}"),
            ":3:5: streams.fleet: attribute 'p' is a prev: that is a field",
        ),
        (
            GOOD.replace(
                "fleet:",
                "other:\n    entities: {count: 2, attributes: {w: {uniform: "
                "[0, 1]}}}\n    fields: {x: 1}\n  fleet:",
            ).replace('"a * 2"', "{ref: other}\n      c: {lookup: b.nope}"),
            "streams.fleet.fields.c.lookup: 'nope' is not an attribute of other; accepted: w",
        ),
        (  # (PostgreSQL would cut a longer table name, silently)
            GOOD.replace("    fields:", f"    table: {{name: {'t' * 64}}}\n    fields:"),
            "streams.fleet.table.name: String should match pattern "
            "'^[A-Za-z_][A-Za-z0-9_]{0,62}$'; accepted: text matching "
            "^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        ),
    ],
)
def test_every_error_is_one_line_with_file_line_and_column(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert says in message, message
    assert "\n" not in message
    assert "; accepted: " in message or "expected" in message or "within" in message


def test_spec_check_and_preview_through_the_cli(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "producer", "spec"]
    ok = subprocess.run([*run, "check", str(FLEET)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0
    assert ok.stdout.strip() == f"{FLEET}: ok: 1 stream(s): fleet"
    bad = write(tmp_path, GOOD.replace('"a * 2"', '"a +"'))
    refused = subprocess.run([*run, "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert f"{bad}:6:10: streams.fleet.fields.b:" in refused.stderr
    assert "Traceback" not in refused.stderr
    preview = subprocess.run([*run, "preview", str(FLEET), "-n", "4", "--seed", "3", "--start",
                              "2025-03-30T00:00:00"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert preview.returncode == 0, preview.stderr
    rows = [orjson.loads(line) for line in preview.stdout.splitlines()]
    assert len(rows) == 4
    assert set(rows[0]) == {
        "sensor_id", "timestamp", "site", "temperature", "humidity", "battery_v", "status",
        "reading", "message_id", "is_duplicate",
    }  # fmt: skip


def test_a_spec_runs_through_the_engine_to_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--spec", str(FLEET), "--backfill",
         "--start", "2024-12-31T23:59:00", "--end", "2025-01-01T00:01:00", "--sinks", "file",
         "--out", str(out), "--metrics-port", "0", "--log-format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished = orjson.loads(result.stderr.strip().splitlines()[-1])
    counts = finished["streams"]["fleet"]
    written = sum(len(p.read_bytes().splitlines()) for p in (out / "fleet").glob("*.jsonl"))
    assert written == counts["sinks"]["file"]["delivered"] > 500 * 11
    assert counts["generated"] == written + counts["dropped_by_fault"]
    assert len(list((out / "fleet").glob("*.jsonl"))) == 2, "rolled at the hour, over New Year"


def test_a_stream_declared_twice_is_refused(tmp_path: Path) -> None:
    one, two = write(tmp_path, GOOD, "one.yaml"), write(tmp_path, GOOD, "two.yaml")
    with pytest.raises(ConfigError, match=r"two.yaml: stream 'fleet' is declared in .*one.yaml"):
        load_settings({"specs": [str(one), str(two)]}, environ={})


PAYMENTS = ROOT / "examples" / "specs" / "payments.yaml"


def rows_of(spec: Path, stream: str, shard: str = "0/1") -> list[dict[str, object]]:
    settings_ = load_settings({"specs": [str(spec)], "seed": 7, "shard": shard}, environ={})
    source = build_stream(stream, settings_).source
    schema = source.channels[stream]
    batches = [b for t in range(T0, T0 + 4 * 3_600_000, 3_600_000)
               for b in source.advance(t, t + 3_600_000, None).values()]  # fmt: skip
    return [orjson.loads(line) for line in encode_jsonl(schema, RecordBatch.concat(batches))
            .splitlines()]  # fmt: skip


def test_every_reference_names_an_entity_that_exists_in_every_shard() -> None:
    accounts = {row["account_id"] for row in rows_of(PAYMENTS, "accounts")}
    assert len(accounts) == 2000, "four hours of hourly balances: every account"
    for shard in ("0/1", "0/2", "1/2"):
        payments = rows_of(PAYMENTS, "payments", shard)
        assert payments
        assert {row["account_id"] for row in payments} <= accounts
        card_account: dict[object, object] = {}
        for row in payments:  # an attribute: a card pays from one account
            assert card_account.setdefault(row["card_id"], row["account_id"]) == row["account_id"]
        assert {type(row["large"]) for row in payments} == {bool}, "a comparison is a boolean"


def test_a_reference_to_a_stream_the_file_lacks_is_refused_where_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"a * 2"', "{ref: accounts}"))
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        f"{path}:6:16: streams.fleet.fields.b.ref: no stream 'accounts' in the file; "
        "accepted: fleet"
    )


KINDS = """\
streams:
  people:
    entities:
      count: 3000
      attributes:
        home: {city: population}
        anywhere: {city: uniform}
        latitude: {lookup: home.latitude}
        country: {lookup: home.country_code}
        name: {faker: name}
        firma: {faker: company, locale: de_DE}
        kids: {poisson: 1.5}
        u: {uniform: [2, 5]}
        n: {normal: [10, 2]}
        ln: {lognormal: [40, 0.5]}
        e: {exponential: 3}
    local_time: home
    rate: {interval_s: 3600, aligned: true}
    fields:
      local_hour: "hour"
      local_weekday: "weekday"
      visits: {poisson: 4}
      many: {expr: "poisson(250)", round: 0}
      european: "country in ('DE', 'FR', 'GB', 'IT', 'ES')"
"""


def spec_rows(path: Path, stream: str, start: int, hours: int, shard: str = "0/1"
              ) -> list[dict[str, Any]]:  # fmt: skip
    settings_ = load_settings({"specs": [str(path)], "seed": 7, "shard": shard}, environ={})
    source = build_stream(stream, settings_).source
    hour = 3_600_000
    batch = RecordBatch.concat([b for t in range(start, start + hours * hour, hour)
                                for b in source.advance(t, t + hour, None).values()])  # fmt: skip
    return [orjson.loads(line) for line in encode_jsonl(source.channels[stream], batch)
            .splitlines()]  # fmt: skip


def test_distributions_cities_lookups_and_faker_are_what_they_say(tmp_path: Path) -> None:
    path = write(tmp_path, KINDS)
    rows = spec_rows(path, "people", T0, 2)
    first = {r["id"]: r for r in rows}
    assert len(first) == 3000
    people = list(first.values())
    for name, mean, sd in (("u", 3.5, 3 / 12**0.5), ("n", 10, 2), ("e", 3, 3),
                           ("kids", 1.5, 1.5**0.5), ("visits", 4, 2)):  # fmt: skip
        values = np.array([r[name] for r in people], dtype=float)
        assert abs(values.mean() - mean) < 0.06 * mean + 0.05, name
        assert abs(values.std() - sd) < 0.08 * sd, name
    ln = np.array([r["ln"] for r in people])
    assert abs(np.median(ln) - 40) < 2.5
    many = np.array([r["many"] for r in rows])
    assert abs(many.mean() - 250) < 1.5
    assert abs(many.std() - 250**0.5) < 1.5
    assert {type(r["kids"]) for r in people} == {int}, "Poisson counts are whole numbers"
    assert {type(r["many"]) for r in people} == {int}
    cities = load_cities()
    where: dict[str, set[tuple[float, str]]] = {}  # (one name is two cities')
    for n, la, c in zip(cities.name, cities.latitude, cities.country_code, strict=True):
        where.setdefault(str(n), set()).add((float(la), str(c)))
    for r in people:  # a lookup reads the entity's own city
        assert (r["latitude"], r["country"]) in where[r["home"]]
        assert r["european"] == (r["country"] in ("DE", "FR", "GB", "IT", "ES"))
    homes = [r["home"] for r in people]
    biggest = str(cities.name[int(np.argmax(cities.population))])
    assert homes.count(biggest) > 3000 / 300 * 3, "weighted by population"
    assert len({r["anywhere"] for r in people}) > 250, "uniform over the 300 cities"
    assert len({r["name"] for r in people}) > 2500
    again = {r["id"]: r for r in spec_rows(path, "people", T0, 1, shard="1/2")}
    for key, r in again.items():  # the same entity has the same Faker values in its shard
        assert (r["name"], r["firma"]) == (first[key]["name"], first[key]["firma"])
    assert any(" GmbH" in r["firma"] or " KG" in r["firma"] for r in people), "de_DE"


@pytest.mark.parametrize("when", ["2024-03-31T00:00:00", "2024-10-27T00:00:00",
                                  "2024-04-07T00:00:00", "2024-12-31T20:00:00"])  # fmt: skip
def test_hour_and_weekday_are_each_entitys_local_time(tmp_path: Path, when: str) -> None:
    """Over the European changes of March and October, Sydney's in April, New Year."""
    path = write(tmp_path, KINDS)
    start = round(datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp() * 1000)
    for r in spec_rows(path, "people", start, 6):
        zones = {load_cities().timezone[i] for i, n in enumerate(load_cities().name)
                 if n == r["home"]}  # fmt: skip
        if len(zones) > 1:
            continue  # (the one name of two cities)
        zone = ZoneInfo(zones.pop())
        local = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).astimezone(zone)
        hour = local.hour + local.minute / 60 + local.second / 3600
        assert abs(r["local_hour"] - hour) < 1e-3 or abs(r["local_hour"] - hour) > 23.99
        assert r["local_weekday"] == local.weekday()


def test_spec_schema_describes_every_example_and_refuses_an_unknown_key() -> None:
    import jsonschema
    import yaml

    out = subprocess.run([sys.executable, "-m", "producer", "spec", "schema"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    schema = orjson.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        data = yaml.safe_load(path.read_text())
        assert not list(validator.iter_errors(data)), path
    data = yaml.safe_load(FLEET.read_text())
    data["streams"]["fleet"]["entities"]["colour"] = "red"
    assert any("colour" in e.message for e in validator.iter_errors(data))


def test_spec_preview_from_a_start_is_reproducible() -> None:
    run = [sys.executable, "-m", "producer", "spec", "preview", str(FLEET), "-n", "3",
           "--start", "2025-06-01T12:00:00"]  # fmt: skip
    one = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True).stdout
    two = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True).stdout
    assert one == two
    assert orjson.loads(one.splitlines()[0])["timestamp"].startswith("2025-06-01T12:00")


def test_formats_write_text_and_the_time_as_asked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
streams:
  shop:
    entities: {count: 20, id: "shop-{index:03d}", id_field: shop}
    rate: {interval_s: 60}
    time_format: epoch_ms
    fields:
      ticket: {sequence: {start: 7}, format: "T-{:05d}"}
      price: {uniform: [1, 99], format: "{:.2f} EUR"}
      kind: {choice: {a: 1, b: 1}, format: "<{}>"}
""",
    )
    rows = spec_rows(path, "shop", T0, 1)
    assert len(rows) == 20 * 60
    first = {r["shop"]: r for r in reversed(rows)}
    assert {r["ticket"] for r in first.values()} == {"T-00007"}
    assert all(re.fullmatch(r"\d{1,2}\.\d\d EUR", str(r["price"])) for r in rows)
    assert {r["kind"] for r in rows} == {"<a>", "<b>"}
    assert all(type(r["timestamp"]) is int and T0 <= r["timestamp"] < T0 + 3_600_000
               for r in rows)  # fmt: skip


@pytest.mark.parametrize(("fmt", "says"), [
    ("{:06d}", "streams.fleet.fields.a.format: '{:06d}' cannot write a float (Unknown format "
               "code 'd' for object of type 'float'); accepted: one {} or {:spec}"),
    ("{0.__class__}", "streams.fleet.fields.a.format: format '{0.__class__}' is not one plain "
                      "{} or {:spec}; accepted: one {} or {:spec}"),
    ("{} and {}", "is not one plain {} or {:spec}"),
])  # fmt: skip
def test_a_format_that_cannot_write_its_field_is_refused(
    tmp_path: Path, fmt: str, says: str
) -> None:
    path = write(
        tmp_path, GOOD.replace("{uniform: [0, 1]}", f'{{uniform: [0, 1], format: "{fmt}"}}')
    )
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"{path}:5:")


STAYS = """\
streams:
  lamps:
    entities: {count: 50, id: "lamp-{index:02d}"}
    rate: {interval_s: 60}
    fields:
      light:
        machine:
          changes_only: true
          start: dark
          states:
            dark: {next: {dark: 80, lit: 20}, dwell_s: 60}
            lit: {next: {lit: 70, dark: 30}, dwell_s: 60}
      switched_on: {count: {of: light, enters: lit}}
"""


def test_a_stay_in_a_state_is_no_change_and_no_entry(tmp_path: Path) -> None:
    """changes_only writes one record per change of state; a move to the state an entity is
    in (dark -> dark) is a stay: no record, and count.enters does not count it."""
    rows = spec_rows(write(tmp_path, STAYS), "lamps", T0, 24)
    by_lamp: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_lamp.setdefault(row["id"], []).append(row)
    assert len(by_lamp) == 50
    for lamp, history in by_lamp.items():
        states = [r["light"] for r in history]
        assert states[0] == "dark"
        assert all(a != b for a, b in itertools.pairwise(states)), (lamp, states)
        ons = list(itertools.accumulate(s == "lit" for s in states))
        assert [r["switched_on"] for r in history] == ons, lamp
    # 80 % of moves from dark are stays: a day of 1,440 moves per lamp has far fewer changes
    assert 24 * 60 * 50 * 0.2 < len(rows) < 24 * 60 * 50 * 0.45


@pytest.mark.parametrize("which", ["sparse", "order-lifecycle", "clickstream", "customers"])
def test_preview_prints_the_first_records_a_run_writes(tmp_path: Path, which: str) -> None:
    """Where silent states and stays write fewer records than asked in a window, preview
    still prints the run's first records, not records of a later window."""
    if which == "sparse":  # a change now and then, most moves stays
        path = write(tmp_path, STAYS.replace("dark: 80, lit: 20", "dark: 95, lit: 5")
                     .replace("count: 50", "count: 5"))  # fmt: skip
    else:
        path = ROOT / "examples" / "specs" / f"{which}.yaml"
    stream = next(iter(load_spec(path).streams))
    preview = subprocess.run(
        [sys.executable, "-m", "producer", "spec", "preview", str(path), "-n", "25", "--seed",
         "7", "--start", "2024-12-31T23:00:00"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert preview.returncode == 0, preview.stderr
    shown = [orjson.loads(line) for line in preview.stdout.splitlines()]
    start = round(datetime(2024, 12, 31, 23, tzinfo=UTC).timestamp() * 1000)
    written = spec_rows(path, stream, start, 6)  # what a run writes, hour by hour
    assert len(shown) == 25
    assert [r["message_id"] for r in shown] == [r["message_id"] for r in written[:25]]


FAKER_DATES = """\
streams:
  people:
    entities:
      count: 20
      attributes:
        born: {faker: date_of_birth}
        joined: {faker: date_this_year}
        seen: {faker: date_time}
        name: {faker: name}
    rate: {interval_s: 600}
    fields:
      a: {uniform: [0, 1]}
      ip: {faker: ipv4}
      when: {faker: date_this_month}
"""


@pytest.mark.parametrize(
    ("wall", "zone"),
    [("2026-12-07T12:00:00", "Pacific/Auckland"), ("2031-06-30T03:00:00", "America/Los_Angeles")],
)
def test_faker_values_are_the_seeds_and_the_event_times_not_the_hosts(
    tmp_path: Path, wall: str, zone: str
) -> None:
    """Faker's date providers read the host's clock and zone: the same spec, seed and start
    give the same bytes on any day in any zone, and dates as of the run's start (2024)."""
    import time_machine

    path = write(tmp_path, FAKER_DATES)
    settings_ = load_settings({"specs": [str(path)], "seed": 7}, environ={})

    def rows() -> list[bytes]:  # two hours over leap day and March 1st
        source = build_stream("people", settings_, T0).source
        batch = RecordBatch.concat(list(source.advance(T0, T0 + 7_200_000, None).values()))
        return encode_jsonl(source.channels["people"], batch).splitlines()

    here = rows()  # this host, today
    elsewhere = datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone))
    with time_machine.travel(elsewhere, tick=False):
        there = rows()
    assert there == here
    people = [orjson.loads(line) for line in here]
    assert len({p["id"] for p in people}) == 20
    assert {p["joined"][:4] for p in people} == {"2024"}, "this year: the start's (leap day)"
    assert all(p["joined"] <= "2024-02-29" for p in people)
    assert all(p["born"] < "2024-02-29" and p["seen"] < "2024-03-01" for p in people)
    # A field's Faker value is drawn per record, as of the record's time (its month).
    assert len({p["ip"] for p in people}) > len(people) * 0.95
    assert all(p["when"][:7] == p["timestamp"][:7] <= p["timestamp"] for p in people)
    assert {p["when"][:7] for p in people} == {"2024-02", "2024-03"}


TEMPLATES = """\
streams:
  orders:
    entities:
      count: 40
      id: "c-{index:03d}"
      id_field: customer_id
      attributes:
        first: {faker: first_name}
        last: {faker: last_name}
        full: {template: "{first} {last} ({customer_id})"}
        tier: {choice: {gold: 1, silver: 3}}
    rate: {interval_s: 60, jitter_s: 20}
    fields:
      order_no: {sequence: {start: 1}}
      amount: {lognormal: [50, 0.5], round: 2}
      code: {template: "ORD-{order_no:06d}-{tier}"}
      label: {template: "{full}: {amount:.2f} EUR", nulls: 0.25}
      _u: {uniform: [0, 1]}
      u: {template: "{_u:.4f}"}
      fixed: {template: "{{v1}}"}
"""


def test_templates_write_the_values_they_name_in_every_chunking_and_shard(tmp_path: Path) -> None:
    path = write(tmp_path, TEMPLATES)
    rows = spec_rows(path, "orders", T0, 3)
    assert len(rows) > 40 * 170
    for row in rows:
        assert row["full"] == f"{row['first']} {row['last']} ({row['customer_id']})"
        assert row["code"] == f"ORD-{row['order_no']:06d}-{row['tier']}"
        assert row["label"] in (None, f"{row['full']}: {row['amount']:.2f} EUR")
        assert len(row["u"]) == 6
        assert row["fixed"] == "{v1}"
        assert "_u" not in row
    nulls = sum(row["label"] is None for row in rows) / len(rows)
    assert 0.2 < nulls < 0.3
    assert len({row["u"] for row in rows}) > len(rows) / 2, "per record, not per entity"
    # Any chunking of the window, and the shards together, write the same records.
    settings_ = load_settings({"specs": [str(path)], "seed": 7}, environ={})
    source = build_stream("orders", settings_, T0).source
    minutes = [
        b
        for t in range(T0, T0 + 3 * 3_600_000, 420_000)
        for b in source.advance(t, min(t + 420_000, T0 + 3 * 3_600_000), None).values()
    ]
    chunked = encode_jsonl(source.channels["orders"], RecordBatch.concat(minutes)).splitlines()
    assert [orjson.loads(line) for line in chunked] == rows
    halves = spec_rows(path, "orders", T0, 3, "0/2") + spec_rows(path, "orders", T0, 3, "1/2")
    assert sorted(r["message_id"] for r in halves) == sorted(r["message_id"] for r in rows)


TIMES = """\
streams:
  loans:
    entities: {count: 30}
    rate: {interval_s: 600}
    fields:
      opened: {expr: "time", type: timestamp}
      due: {expr: "time + 14 * 86400", type: date}
      reply: {expr: "time + exponential(600)", type: timestamp, nulls: 0.2}
      note: {template: "due {due}"}
"""


def test_times_and_dates_as_values_over_new_year_and_leap_day(tmp_path: Path) -> None:
    path = write(tmp_path, TIMES)
    for start in (datetime(2024, 12, 31, 12, tzinfo=UTC), datetime(2024, 2, 28, 12, tzinfo=UTC)):
        t0 = round(start.timestamp() * 1000)
        rows = spec_rows(path, "loans", t0, 24)
        assert len(rows) == 30 * 6 * 24
        waits = []
        for row in rows:
            at = datetime.fromisoformat(row["timestamp"])
            assert row["opened"] == row["timestamp"]
            assert row["due"] == (at + timedelta(days=14)).date().isoformat()
            assert row["note"] == f"due {row['due']}"
            if row["reply"] is not None:
                waits.append((datetime.fromisoformat(row["reply"]) - at).total_seconds())
        assert 0.15 < 1 - len(waits) / len(rows) < 0.25
        assert min(waits) >= 0
        assert 540 < sum(waits) / len(waits) < 660, "exponential, mean 600 s"
    # Parquet, CSV and PostgreSQL get typed columns, equal to the JSON
    settings_ = load_settings({"specs": [str(path)], "seed": 7}, environ={})
    source = build_stream("loans", settings_, T0).source
    schema = source.channels["loans"]
    batch = RecordBatch.concat(list(source.advance(T0, T0 + 7_200_000, None).values()))
    table = schema.table(batch)
    assert str(table.schema.field("opened").type) == "timestamp[ms, tz=UTC]"
    assert str(table.schema.field("due").type) == "date32[day]"
    as_json = [orjson.loads(line) for line in encode_jsonl(schema, batch).splitlines()]
    for row, typed in zip(as_json, table.to_pylist(), strict=True):
        assert typed["due"].isoformat() == row["due"]
        assert typed["opened"] == datetime.fromisoformat(row["opened"])
        assert (typed["reply"] is None) == (row["reply"] is None)


BANDS = """\
streams:
  pay:
    entities: {count: 50}
    rate: {interval_s: 60}
    fields:
      amount: {lognormal: [80, 0.8], round: 2}
      band: "where(amount > 100, 'high', 'mid' if amount > 30 else 'low')"
      big: "band == 'high'"
"""


def test_conditions_give_words_that_other_fields_compare_with(tmp_path: Path) -> None:
    rows = spec_rows(write(tmp_path, BANDS), "pay", T0, 2)
    assert len(rows) == 50 * 120
    for row in rows:
        amount = row["amount"]
        assert row["band"] == ("high" if amount > 100 else "mid" if amount > 30 else "low")
        assert row["big"] is (row["band"] == "high")
    assert {r["band"] for r in rows} == {"high", "mid", "low"}
    spec = load_spec(write(tmp_path, BANDS, "again.yaml")).streams["pay"]
    assert spec.fields["band"].words == ["high", "mid", "low"]


SKEWED = """\
streams:
  authors:
    entities: {count: 500, id: "a-{index:03d}"}
    rate: {interval_s: 86400}
    fields:
      x: {uniform: [0, 1]}
  posts:
    entities: {count: 200}
    rate: {interval_s: 60}
    fields:
      author: {ref: authors, skew: [80, 20]}
"""


def test_a_skewed_reference_sends_80_percent_to_20_percent(tmp_path: Path) -> None:
    posts = spec_rows(write(tmp_path, SKEWED), "posts", T0, 4)
    counts = collections.Counter(row["author"] for row in posts)
    ranked = sorted(counts.values(), reverse=True)
    busiest = sum(ranked[:100]) / len(posts)  # a fifth of the 500 authors
    assert 0.77 < busiest < 0.83, busiest
    ids = sorted(counts, key=counts.__getitem__, reverse=True)[:100]
    numbers = sorted(int(i.split("-")[1]) for i in ids)
    assert numbers[-1] - numbers[0] > 400, "the busy authors spread over the ids"
    assert set(counts) <= {f"a-{i:03d}" for i in range(500)}


PREVIOUS = """\
streams:
  meters:
    entities: {count: 20}
    rate: {interval_s: 60, jitter_s: 20}
    fields:
      reading: {sequence: {start: 100, step: 5}}
      level: {walk: {start: 10, step: 1, min: 0, max: 20}, round: 2}
      light:
        machine:
          changes_only: true
          start: dark
          states:
            dark: {next: {dark: 70, lit: 30}}
            lit: {next: {lit: 70, dark: 30}}
      was_light: {prev: light}
      last_level: {prev: level}
      last_reading: {prev: reading}
"""


def test_prev_is_the_entitys_previous_written_record_in_any_chunking(tmp_path: Path) -> None:
    path = write(tmp_path, PREVIOUS)
    rows = spec_rows(path, "meters", T0, 6)
    history: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        history.setdefault(row["id"], []).append(row)
    assert len(history) == 20
    for records in history.values():
        assert [r["was_light"] for r in records] == [None] + [r["light"] for r in records[:-1]]
        assert [r["last_level"] for r in records] == [None] + [r["level"] for r in records[:-1]]
        assert records[0]["last_reading"] is None
        assert all(r["was_light"] != r["light"] for r in records[1:]), "a change each"
    # The same records whatever the windows (the last values carry over between them).
    settings_ = load_settings({"specs": [str(path)], "seed": 7}, environ={})
    source = build_stream("meters", settings_, T0).source
    end = T0 + 6 * 3_600_000
    parts = [b for t in range(T0, end, 333_000)
             for b in source.advance(t, min(t + 333_000, end), None).values()]  # fmt: skip
    lines = encode_jsonl(source.channels["meters"], RecordBatch.concat(parts)).splitlines()
    assert [orjson.loads(line) for line in lines] == rows


LOOKUPS = """\
streams:
  products:
    entities:
      count: 50
      id: "p-{index:03d}"
      id_field: product_id
      attributes:
        price: {lognormal: [20, 0.5], round: 2}
        category: {choice: {books: 3, games: 1}}
        title: {faker: catch_phrase}
    rate: {interval_s: 3600}
    fields:
      stock: {poisson: 20}
  lines:
    entities:
      count: 10
      attributes:
        favourite: {ref: products}
        favourite_title: {lookup: favourite.title}
    rate: {interval_s: 60}
    fields:
      product: {ref: products}
      unit_price: {lookup: product.price}
      kind: {lookup: product.category}
      qty: {poisson: 2}
      total: {expr: "unit_price * qty", round: 2}
      games: "kind == 'games'"
"""


def test_a_lookup_copies_the_referenced_entitys_attribute_in_every_shard(tmp_path: Path) -> None:
    path = write(tmp_path, LOOKUPS)
    products = {r["product_id"]: r for r in spec_rows(path, "products", T0, 2)}
    assert len(products) == 50
    for shard in ("0/1", "0/2", "1/2"):
        lines = spec_rows(path, "lines", T0, 2, shard)
        assert lines
        for line in lines:
            product = products[line["product"]]
            assert line["unit_price"] == product["price"]
            assert line["kind"] == product["category"]
            assert line["total"] == round(product["price"] * line["qty"], 2)
            assert line["games"] is (product["category"] == "games")
            assert line["favourite_title"] == products[line["favourite"]]["title"]
