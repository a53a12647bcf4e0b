"""Spec files a stranger or a careless user wrote: each is refused in one line that says
``FILE:LINE:COL``, within a stated time and memory, or it is accepted and then runs. Nothing
a spec file holds can hang ``spec check``, crash ``preview`` or ask numpy for petabytes."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import orjson
import pytest

from producer.config import load_settings
from producer.errors import ConfigError
from producer.specs.loading import MAX_BYTES, load_spec
from producer.streams import build_stream
from tests.test_specs import GOOD

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
T0 = 1_735_689_000_000  # 2024-12-31T23:50:00Z: windows run over New Year


def bomb(levels: int) -> str:
    """The billion laughs: each alias level nine times the one before."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9))}]")
    return "\n".join(lines) + "\nstreams: *a" + str(levels) + "\n"


def field(expr: str) -> bytes:
    return GOOD.replace('"a * 2"', expr).encode()


# (what the file holds, where the error is, what it says): each broke check or preview once.
HOSTILE: list[tuple[str, bytes, str, str]] = [
    ("alias bomb", bomb(9).encode(), ":1:", "more than 100,000 values (aliases counted"),
    ("binary", bytes(range(256)) * 4, ":2:118:", "byte 0x80 is not UTF-8"),
    ("control bytes", bytes(range(9)) * 4, ":1:1:", "character U+0000 is not allowed in YAML"),
    ("latin-1", GOOD.replace("a * 2", "a * 2  # K\xf6ln").encode("latin-1"), ":6:", "byte "
     "0xf6 is not UTF-8; accepted: UTF-8 text"),
    ("UTF-16", GOOD.encode("utf-16"), ":1:1:", "the file is UTF-16; accepted: UTF-8 text"),
    ("deep nesting", b"streams: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", ":1:",
     "nested more than 32 deep"),
    ("long sum", field('"' + "+".join(["1"] * 100_000) + '"'), ":6:10:",
     "199,999 characters; accepted: an expression of at most 2,000"),
    ("not not", field('"' + "not " * 5_000 + 'a"'), ":6:10:", "characters; accepted"),
    ("150 nots", field('"' + "not " * 150 + 'a"'), ":6:10:", "nested more than 100 deep"),
    ("deep expression", field('"' + "abs(" * 150 + "a" + ")" * 150 + '"'), ":6:10:",
     "nested more than 100 deep"),
    ("400 digits", field("1" + "0" * 400), ":6:", "a number too large; accepted: numbers up "
     "to 1.8e308"),
    ("400 digits in an expression", field('"a + 1' + "0" * 400 + '"'), ":6:10:",
     "a number too large"),
    ("round by nan", field('"round(a, 0/0)"'), ":6:10:", "round()'s digits '0 / 0'; accepted: "
     "a whole number from -10 to 15, as written"),
    ("round by 1e30", field('"round(a, 1e30)"'), ":6:10:", "round()'s digits"),
    ("round by a field", field('"round(a, a)"'), ":6:10:", "round()'s digits 'a'"),
    ("interval of infinity", GOOD.replace("    fields:", "    rate: {interval_s: .inf}\n"
     "    fields:").encode(), ":4:", "less than or equal to 31622400"),
    ("interval of 1e300", GOOD.replace("    fields:", "    rate: {interval_s: 1.0e+300}\n"
     "    fields:").encode(), ":4:", "less than or equal to 31622400"),
    ("a trillion a second", GOOD.replace("    fields:", "    rate: {total_per_s: 1.0e+12}\n"
     "    fields:").encode(), ":4:", "accepted: at most 10,000,000"),
    ("peaks over ten million", GOOD.replace("    fields:", "    rate: {total_per_s: 2.0e+6, "
     "hour_multipliers: [" + ", ".join(["2"] * 24) + "]}\n    fields:").encode(), ":4:",
     "total_per_s x the highest multipliers is 1.2e+07 records/s"),
    ("a stream twice", (GOOD + GOOD.removeprefix("streams:\n")).encode(), ":7:3:",
     "streams.fleet is given twice (first at line 2); accepted: each key once"),
    ("a key twice", GOOD.replace("{count: 10}", "{count: 10, count: 11}").encode(), ":3:",
     "streams.fleet.entities.count is given twice"),
    ("an unknown sink", GOOD.replace("    fields:", "    sinks: [nope]\n    fields:").encode(),
     ":4:12:", "unknown sink 'nope'; accepted: stdout, file"),
    ("a control character", GOOD.replace("a * 2", "a * 2\x07").encode(), ":6:", "character "
     "U+0007 is not allowed in YAML"),
    ("attribute access in an id", GOOD.replace("{count: 10}", '{count: 10, id: "{stream.'
     '__class__.__mro__}"}').encode(), ":3:", "{stream.__class__.__mro__} is not a name of "
     "an id; accepted: a format of {stream} and {index} only"),
    ("item access in an id", GOOD.replace("{count: 10}", '{count: 10, id: "{index[0]}"}')
     .encode(), ":3:", "is not a name of an id"),
    ("too large", b"# " + b"x" * MAX_BYTES + b"\n" + GOOD.encode(), "", "larger than 1024 "
     "KiB; accepted: a spec file of at most 1024 KiB"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "where", "says"), [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])  # fmt: skip
def test_a_hostile_spec_is_refused_in_one_line_quickly(
    tmp_path: Path, text: bytes, where: str, says: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(text)
    tracemalloc.start()
    began = time.process_time()
    try:
        with pytest.raises(ConfigError) as caught:
            load_settings({"specs": [str(path)]}, environ={})
        took = time.process_time() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(f"{path}{where}"), message
    assert says in message, message
    assert "\n" not in message, message
    assert len(message) < 400, message
    assert took < 5.0, f"{took:.1f} s of CPU"
    assert peak < 200 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


def test_the_cli_says_the_same_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9))
    result = subprocess.run([sys.executable, "-m", "producer", "spec", "check", str(path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{path}:1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_aliases_within_the_bound_still_work(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    walk = "{walk: {start: 0, step: 1, min: -5, max: 5}}"
    path.write_text(GOOD.replace('"a * 2"', "*walk").replace("{uniform: [0, 1]}", "&walk " + walk))
    spec = load_spec(path)
    assert set(spec.streams["fleet"].fields) == {"a", "b"}


def test_preview_costs_what_it_prints_not_an_hour_of_records(tmp_path: Path) -> None:
    """A million entities at a record a second each: preview prints three, under 1 GB (it
    took 24 GB and was killed, making an hour before printing)."""
    path = tmp_path / "million.yaml"
    path.write_text(GOOD.replace("{count: 10}", "{count: 1000000}").replace(
        "    fields:", "    rate: {interval_s: 1}\n    fields:"))  # fmt: skip
    # (VmHWM, not ru_maxrss: that one keeps the parent's high-water mark across exec)
    probe = ("import re, sys\nfrom producer.cli import main\nrc = main(sys.argv[1:])\n"
             "sys.stdout.flush()\nstatus = open('/proc/self/status').read()\n"
             "kb = re.search(r'VmHWM:\\s+(\\d+)', status).group(1)\n"
             "sys.stderr.write(f'maxrss={kb}\\n')\nsys.exit(rc)\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", probe, "spec", "preview", str(path), "-n",
                             "3", "--start", "2024-12-31T23:59:59"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[0]["timestamp"].startswith("2024-12-31T23:59:59")
    peak_mb = int(result.stderr.rsplit("maxrss=", 1)[1]) / 1024
    assert peak_mb < 1024, f"preview of 3 records took {peak_mb:.0f} MB"


def test_preview_of_a_rare_stream_still_finds_its_records(tmp_path: Path) -> None:
    path = tmp_path / "daily.yaml"
    path.write_text(GOOD.replace("    fields:", "    rate: {interval_s: 86400}\n    fields:"))
    result = subprocess.run([sys.executable, "-m", "producer", "spec", "preview", str(path),
                             "-n", "12", "--start", "2024-02-28T00:00:00"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 12


# The fuzz: each example spec mutated the ways a hand or an editor gets a file wrong. Every
# mutant is either refused in one FILE:LINE:COL line or accepted, and then a window of its
# records is made without an error. The generator is seeded: a failure names its case.
VALUES = ["-1", "0", "1e308", "-1e308", "1e-320", ".nan", ".inf", "-.inf", "99999999999999999",
          "''", "[]", "{}", "null", "true", "'{index.real}'", "[[[[[[[[1]]]]]]]]", "*x",
          '"a + "', '"clip(1, 2)"', '"round(1, 99)"', "0x10", "2024-02-30", "\t1"]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        how = rng.choice(["delete", "duplicate", "indent", "dedent", "value", "value", "value",
                          "swap", "alias", "truncate"])  # fmt: skip
        line = lines[i]
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, line)
        elif how == "indent":
            lines[i] = "  " + line
        elif how == "dedent":
            lines[i] = line[2:] if line.startswith("  ") else line
        elif how == "value" and ":" in line:
            lines[i] = line.rsplit(":", 1)[0] + ": " + rng.choice(VALUES)
        elif how == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], line
        elif how == "alias":
            lines.insert(0, "x: &x " + rng.choice(VALUES[:12]))
        elif how == "truncate":
            lines[i] = line[: rng.randrange(len(line) + 1)]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


CASES = 300


def test_mutated_examples_are_refused_in_one_line_or_run(tmp_path: Path) -> None:
    rng = random.Random(20261207)
    texts = [p.read_text() for p in EXAMPLES]
    refused = accepted = 0
    began = time.monotonic()
    for case in range(CASES):
        source = rng.randrange(len(texts))
        path = tmp_path / f"case-{case}.yaml"
        path.write_text(mutate(texts[source], rng))
        one = time.process_time()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            settings_ = load_settings({"specs": [str(path)], "seed": case}, environ={})
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(str(path)), (case, EXAMPLES[source].name, message)
            assert "\n" not in message, (case, message)
            refused += 1
        else:
            for name in settings_.streams:  # a minute of records over New Year
                source_ = build_stream(name, settings_).source
                source_.advance(T0, T0 + 60_000, 1_000)
            accepted += 1
        took = time.process_time() - one
        grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert took < 10.0, (case, EXAMPLES[source].name, f"{took:.1f} s")
        assert grew_mb < 300, (case, EXAMPLES[source].name, f"+{grew_mb:.0f} MB")
    assert refused > CASES // 2, (refused, accepted)
    assert accepted > CASES // 20, (refused, accepted)
    assert time.monotonic() - began < 300
