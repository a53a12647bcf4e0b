"""The spec expression language: Python's arithmetic on columns, random draws from record
keys, and nothing else (every refusal one line with where and what is accepted)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import rng
from producer.specs.expressions import (
    ExpressionError,
    compile_expression,
    field_order,
)

KEYS = rng.combine(rng.text_key("spec-tests"), np.arange(20_000))
FIELDS = {"temperature", "pressure", "count"}
ARITHMETIC = [
    "temperature * 2 + pressure / 4",
    "-(temperature - pressure) ** 2",
    "temperature // 3 + temperature % 3",
    "80 - 1.2 * temperature",
    "max(temperature, pressure) - min(temperature, pressure)",
    "clip(temperature, -5, 5) + abs(pressure)",
    "round(temperature / 7, 2)",
    "1 if temperature > pressure else 0",
    "(temperature > 0) and (pressure < 0) or not count",
    "-3 < temperature <= 3",
]


@settings(max_examples=50, deadline=None)
@given(
    expression=st.sampled_from(ARITHMETIC),
    t=st.floats(-100, 100),
    p=st.floats(-100, 100).filter(lambda v: abs(v) > 1e-6),
    c=st.integers(0, 3),
)
def test_arithmetic_is_pythons_on_every_record(expression: str, t: float, p: float, c: int) -> None:
    compiled = compile_expression(expression, FIELDS)
    keys = KEYS[:3]
    got = compiled.evaluate({"temperature": np.full(3, t), "pressure": np.full(3, p),
                             "count": np.full(3, float(c))}, keys)  # fmt: skip
    python = {"max": max, "min": min, "abs": abs, "round": round,
              "clip": lambda x, lo, hi: min(max(x, lo), hi)}  # fmt: skip
    want = float(eval(expression, python, {"temperature": t, "pressure": p, "count": c}))
    assert got.shape == (3,)
    assert math.isclose(got[0], want, rel_tol=1e-9, abs_tol=1e-9)
    assert compiled.names <= FIELDS


def test_a_correlation_with_noise_has_the_stated_slope_and_spread() -> None:
    temperature = rng.uniform(KEYS, 99) * 30
    humidity = compile_expression("80 - 1.2 * temperature + normal(0, 2)", FIELDS)
    values = humidity.evaluate({"temperature": temperature}, KEYS)
    residual = values - (80 - 1.2 * temperature)
    assert abs(residual.mean()) < 0.06  # 4.5 standard errors of 2 / sqrt(20,000)
    assert abs(residual.std() - 2) < 0.05
    slope = np.polyfit(temperature, values, 1)[0]
    assert abs(slope + 1.2) < 0.01


def test_random_draws_are_functions_of_the_record_key_and_the_call_site() -> None:
    twice = compile_expression("uniform(0, 1) - uniform(0, 1)", FIELDS)
    a, b = twice.evaluate({}, KEYS), twice.evaluate({}, KEYS)
    assert np.array_equal(a, b), "same keys, same values"
    assert twice.random_calls == 2
    assert np.abs(a).max() > 0, "two call sites draw differently"
    other = compile_expression("uniform(0, 1)", FIELDS, draw_base=10).evaluate({}, KEYS)
    first = compile_expression("uniform(0, 1)", FIELDS).evaluate({}, KEYS)
    assert not np.array_equal(other, first), "another draw base, other numbers"
    alone = compile_expression("uniform(0, 1)", FIELDS).evaluate({}, KEYS[5:9])
    assert np.array_equal(first[5:9], alone), "a record's value does not depend on its batch"


def test_distributions_have_their_parameters() -> None:
    u = compile_expression("uniform(10, 20)", FIELDS).evaluate({}, KEYS)
    assert u.min() >= 10
    assert u.max() < 20
    assert abs(u.mean() - 15) < 0.1
    e = compile_expression("exponential(30)", FIELDS).evaluate({}, KEYS)
    assert abs(e.mean() - 30) < 30 * 4.5 / math.sqrt(KEYS.size)
    ln = compile_expression("lognormal(8, 0.5)", FIELDS).evaluate({}, KEYS)
    assert abs(np.median(ln) - 8) < 0.15


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("temperature.real", "1:1: attribute is not allowed"),
        ("count[0]", "1:1: subscript is not allowed"),
        ("__import__('os')", "1:1: unknown function '__import__'"),
        ("open('/etc/passwd')", "1:1: unknown function 'open'"),
        ("'text'", "1:1: 'text' is not a number"),
        ("lambda: 1", "1:1: lambda is not allowed"),
        ("normal(mean=0, sd=1)", "1:1: normal() takes no keyword arguments"),
        ("humidity * 2", "1:1: unknown field 'humidity'; accepted: the stream's fields: count, "),
        ("temperature + nosuch(1)", "1:15: unknown function 'nosuch'"),
        ("clip(temperature, 1)", "1:1: clip() takes 3 argument(s), got 2"),
        ("temperature +", "not an expression (invalid syntax)"),  # where: Python's parser
        ("temperature @ pressure", "1:1: this operator is not allowed"),
        ("temperature in (1, 2)", "1:1: this comparison is not allowed"),
        ("[temperature]", "1:1: list is not allowed"),
    ],
)
def test_what_is_not_allowed_is_one_line_saying_where_and_what_is(text: str, says: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, FIELDS)
    message = str(caught.value)
    assert says in message, message
    assert message.split(":")[0] == "1", "it starts with line:col"
    assert "\n" not in message
    assert "; accepted: " in message


def test_fields_come_after_what_they_read_and_a_cycle_is_named() -> None:
    names = {"a", "b", "c", "d"}
    spec = {name: compile_expression(text, names) for name, text in
            {"c": "a + b", "a": "uniform(0, 1)", "b": "a * 2", "d": "c - b"}.items()}  # fmt: skip
    order = field_order({name: e.names for name, e in spec.items()})
    for name, expression in spec.items():
        assert all(order.index(dep) < order.index(name) for dep in expression.names)
    looped = {name: compile_expression(text, names) for name, text in
              {"a": "b + 1", "b": "c * 2", "c": "a - 1", "d": "1"}.items()}  # fmt: skip
    with pytest.raises(ExpressionError, match=r"cycle: a -> b -> c -> a; accepted"):
        field_order({name: e.names for name, e in looped.items()})
