"""The expression language of stream specs: arithmetic, comparisons and a fixed list of
functions over a record's other fields, compiled once to numpy column operations.

``humidity: 80 - 1.2 * temperature + normal(0, 2)`` is parsed with Python's own parser and
then checked node by node against a short list of what is allowed: numbers, field names,
arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b`` and calls of the functions
below. A categorical field (a choice of words, a state machine's state) is read by comparing
it with its values: ``stage == 'cart'``, ``tier != 'basic'``, ``country in ('DE', 'FR')``.
Anything else (attributes, subscripts, lambdas, other strings, keyword arguments, unknown
names) is an error with its line and column, before a record is made: a spec cannot run
code. Random functions draw from each record's key (``producer.rng``), each call site from
its own draw, so a field is a pure function of the seed and the record, as everywhere.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.generators import poisson
from producer.rng import U64

Column = npt.NDArray[np.float64]
# How an evaluated node gets its values: the record's columns, their keys.
Evaluator = Callable[[Mapping[str, Column], U64], Column]


def _round(x: Column, digits: Column) -> Column:
    values: Column = np.asarray(x, dtype=np.float64)
    return np.round(values, int(np.asarray(digits).flat[0])).astype(np.float64)


def _where(test: Column, yes: Column, no: Column) -> Column:
    out: Column = np.where(np.asarray(test) != 0, yes, no).astype(np.float64)
    return out


# Deterministic functions: name -> (arguments, implementation).
FUNCTIONS: dict[str, tuple[int, Callable[..., Column]]] = {
    "abs": (1, np.abs),
    "sqrt": (1, np.sqrt),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "floor": (1, np.floor),
    "ceil": (1, np.ceil),
    "round": (2, lambda x, n: _round(x, n)),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "clip": (3, np.clip),
    "where": (3, lambda c, a, b: _where(c, a, b)),
}
# Random functions, drawn from the record's key: name -> (arguments, uniforms they use).
RANDOM: dict[str, tuple[int, int]] = {
    "uniform": (2, 1),  # uniform(low, high)
    "normal": (2, 2),  # normal(mean, sd)
    "lognormal": (2, 2),  # lognormal(median, sigma)
    "exponential": (1, 1),  # exponential(mean)
    "poisson": (1, 2),  # poisson(mean): whole numbers
}
DRAWS_PER_CALL = 2  # each random call site owns this many draws of the record key
_BINARY: dict[type[ast.operator], Callable[[Column, Column], Column]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Column, Column], npt.NDArray[np.bool_]]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


class ExpressionError(ValueError):
    """An expression that is not allowed: ``line:col: what; what is accepted``."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression: the fields it reads, how many random call sites it has, and
    its evaluation over columns (one value per record)."""

    text: str
    names: frozenset[str]
    random_calls: int
    _evaluate: Evaluator
    boolean: bool = False  # a comparison or and/or/not: true or false (1.0 or 0.0 here)

    def evaluate(self, columns: Mapping[str, Column], keys: U64) -> Column:
        """Values for records with these ``columns`` (every name in ``names``) and keys."""
        with np.errstate(all="ignore"):  # 1 / 0 is inf, log(-1) NaN (null): data, not news
            out = self._evaluate(columns, keys)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), keys.shape).copy()


# What one expression may be: at most MAX_CHARS characters, nested at most MAX_DEPTH deep.
MAX_CHARS = 2_000
MAX_DEPTH = 100
ROUND_DIGITS = (-10, 15)  # round(x, n): n a whole number written out, within these


def _depth(tree: ast.AST) -> int:
    """How deep ``tree`` nests (without recursion: a deep tree is what this looks for)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _results(node: ast.expr) -> list[ast.expr]:
    """What an expression's value can be: the branches of its where() and 'a if c else b',
    through nested ones."""
    if isinstance(node, ast.IfExp):
        return [*_results(node.body), *_results(node.orelse)]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "where" and len(node.args) == 3):  # fmt: skip
        return [*_results(node.args[1]), *_results(node.args[2])]
    return [node]


def result_words(text: str) -> list[str] | None:
    """The words an expression gives (``where(amount > 100, 'high', 'low')``: high, low), in
    order, or None when it gives numbers (or is not an expression: compiling says why)."""
    if len(text) > MAX_CHARS:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    if _depth(tree.body) > MAX_DEPTH:
        return None
    words = [leaf.value for leaf in _results(tree.body)
             if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)]  # fmt: skip
    return list(dict.fromkeys(words)) or None


def compile_expression(
    text: str, fields: set[str], draw_base: int = 0,
    categories: Mapping[str, Sequence[str]] | None = None,
    words: Sequence[str] | None = None,
) -> Expression:  # fmt: skip
    """Check and compile ``text``; ``fields`` are the numeric names it may read, ``draw_base``
    the first draw of the record key its random calls use (each call ``DRAWS_PER_CALL``),
    ``categories`` the categorical names it may compare with their values (a column of
    codes: the index of each record's value, -1 for null); ``words`` the words it gives
    (``result_words``), each as its index, or None for a number."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"1:1: {len(text):,} characters; accepted: an expression of at "
                              f"most {MAX_CHARS:,}")  # fmt: skip
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise ExpressionError(f"1:1: nested too deeply; accepted: at most {MAX_DEPTH} "
                              "levels of operators, calls and parentheses") from None  # fmt: skip
    except SyntaxError as exc:
        raise ExpressionError(
            f"{exc.lineno or 1}:{exc.offset or 1}: not an expression ({exc.msg}); "
            "accepted: numbers, field names, + - * / // % **, comparisons, and/or/not, "
            "'a if c else b', function calls"
        ) from None
    if _depth(tree.body) > MAX_DEPTH:
        raise ExpressionError(f"1:1: nested more than {MAX_DEPTH} deep; accepted: at most "
                              f"{MAX_DEPTH} levels of operators, calls, parentheses")  # fmt: skip
    compiler = _Compiler(fields, draw_base, categories or {})
    evaluate = compiler.node(tree.body) if words is None else compiler.words(tree.body, words)
    body = tree.body
    boolean = isinstance(body, ast.Compare | ast.BoolOp) or (
        isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.Not)
    )
    return Expression(text, frozenset(compiler.names), compiler.calls, evaluate, boolean)


class _Compiler:
    def __init__(
        self, fields: set[str], draw_base: int, categories: Mapping[str, Sequence[str]]
    ) -> None:
        self.fields = fields
        self.categories = categories
        self.draw_base = draw_base
        self.names: set[str] = set()
        self.calls = 0

    def words(self, node: ast.expr, words: Sequence[str]) -> Evaluator:
        """An expression that gives words: each branch a word (its index) or a where() or
        'a if c else b' of them."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            code = float(list(words).index(node.value))
            return lambda columns, keys: np.full(keys.shape, code)
        if isinstance(node, ast.IfExp):
            test = self.node(node.test)
            body, orelse = self.words(node.body, words), self.words(node.orelse, words)
            return lambda columns, keys: _where(
                test(columns, keys), body(columns, keys), orelse(columns, keys)
            )
        if _results(node) != [node]:  # where(c, a, b) with three arguments
            assert isinstance(node, ast.Call)
            test = self.node(node.args[0])
            a, b = self.words(node.args[1], words), self.words(node.args[2], words)
            return lambda columns, keys: _where(test(columns, keys), a(columns, keys),
                                                b(columns, keys))  # fmt: skip
        shown = ", ".join(repr(w) for w in words)
        raise self.fail(
            node,
            f"{ast.unparse(node)[:40]!r} is not a word where the others are ({shown})",
            "words, or where(c, a, b) and 'a if c else b' of them",
        )

    def fail(self, node: ast.AST, what: str, accepted: str) -> ExpressionError:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{line}:{col}: {what}; accepted: {accepted}")

    def node(self, node: ast.expr) -> Evaluator:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.fail(node, f"{node.value!r} is not a number", "numbers")
            try:
                value = float(node.value)
            except OverflowError:
                raise self.fail(node, "a number too large", "numbers up to 1.8e308") from None
            return lambda columns, keys: np.full(keys.shape, value)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise self.fail(node, "this operator is not allowed", "+ - * / // % **")
            left, right = self.node(node.left), self.node(node.right)
            return lambda columns, keys: op(left(columns, keys), right(columns, keys))
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.node(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def boolean(columns: Mapping[str, Column], keys: U64) -> Column:
                result: npt.NDArray[np.bool_] = parts[0](columns, keys) != 0
                for part in parts[1:]:
                    result = combine(result, part(columns, keys) != 0)
                out: Column = result.astype(np.float64)
                return out

            return boolean
        if isinstance(node, ast.IfExp):
            test, body, orelse = self.node(node.test), self.node(node.body), self.node(node.orelse)
            return lambda columns, keys: _where(
                test(columns, keys), body(columns, keys), orelse(columns, keys)
            )
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__.lower()} is not allowed",
                        "numbers, field names, operators, comparisons, 'a if c else b', "
                        "function calls")  # fmt: skip

    def name(self, node: ast.Name) -> Evaluator:
        if node.id in self.categories:
            values = ", ".join(repr(v) for v in self.categories[node.id])
            accepted = f"a comparison with its values: {node.id} == one of {values}"
            raise self.fail(node, f"{node.id!r} holds words, not numbers", accepted)
        if node.id not in self.fields:
            known = ", ".join(sorted(self.fields)) or "(none)"
            raise self.fail(node, f"unknown field {node.id!r}", f"the stream's fields: {known}")
        self.names.add(node.id)
        field = node.id
        return lambda columns, keys: np.asarray(columns[field], dtype=np.float64)

    def unary(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.node(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda columns, keys: -operand(columns, keys)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda columns, keys: (operand(columns, keys) == 0).astype(np.float64)
        raise self.fail(node, "this operator is not allowed", "-x, +x, not x")

    def compare(self, node: ast.Compare) -> Evaluator:
        if isinstance(node.left, ast.Name) and node.left.id in self.categories:
            return self.category(node, node.left.id)
        ops = []
        for op in node.ops:
            found = _COMPARE.get(type(op))
            if found is None:
                raise self.fail(node, "this comparison is not allowed", "< <= > >= == !=")
            ops.append(found)
        values = [self.node(node.left), *[self.node(c) for c in node.comparators]]

        def chained(columns: Mapping[str, Column], keys: U64) -> Column:
            computed = [v(columns, keys) for v in values]
            result = np.ones(keys.shape, dtype=np.bool_)
            for i, op in enumerate(ops):  # a < b < c is (a < b) and (b < c), as in Python
                result &= op(computed[i], computed[i + 1])
            return result.astype(np.float64)

        return chained

    def category(self, node: ast.Compare, name: str) -> Evaluator:
        """``name == 'word'``, ``!=``, ``in (...)``, ``not in (...)``: codes compared."""
        labels = list(self.categories[name])
        accepted = f"{name} == / != one of {', '.join(map(repr, labels))}, or in (...)"
        if len(node.ops) != 1:
            raise self.fail(node, "a categorical field is compared once", accepted)
        op, right = node.ops[0], node.comparators[0]
        if isinstance(op, ast.In | ast.NotIn) and isinstance(right, ast.Tuple | ast.List):
            items = right.elts
        elif isinstance(op, ast.Eq | ast.NotEq):
            items = [right]
        else:
            raise self.fail(node, f"{name} can only be compared with its values", accepted)
        codes = []
        for item in items:
            if not isinstance(item, ast.Constant) or str(item.value) not in labels:
                shown = ast.unparse(item)
                raise self.fail(item, f"{shown} is not a value of {name}", accepted)
            codes.append(labels.index(str(item.value)))
        self.names.add(name)
        wanted = np.asarray(codes, dtype=np.float64)
        negate = isinstance(op, ast.NotEq | ast.NotIn)

        def compared(columns: Mapping[str, Column], keys: U64) -> Column:
            hit = np.isin(np.asarray(columns[name], dtype=np.float64), wanted)
            out: Column = (hit != negate).astype(np.float64)
            return out

        return compared

    def call(self, node: ast.Call) -> Evaluator:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only named functions can be called",
                            ", ".join(sorted([*FUNCTIONS, *RANDOM])))  # fmt: skip
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments", "positional arguments")
        accepted = ", ".join(sorted([*FUNCTIONS, *RANDOM]))
        if name in FUNCTIONS:
            arity, fn = FUNCTIONS[name]
            args = self.arguments(node, name, arity)
            if name == "round":
                self.digits(node.args[1])
            return lambda columns, keys: fn(*(a(columns, keys) for a in args))
        if name in RANDOM:
            arity, _ = RANDOM[name]
            args = self.arguments(node, name, arity)
            draw = self.draw_base + self.calls * DRAWS_PER_CALL
            self.calls += 1
            return _random(name, args, draw)
        raise self.fail(node, f"unknown function {name!r}", accepted)

    def digits(self, node: ast.expr) -> None:
        """round()'s digits: a whole number as written, so every record rounds alike."""
        low, high = ROUND_DIGITS
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(node, f"round()'s digits {ast.unparse(node)[:40]!r}",
                            f"a whole number from {low} to {high}, as written")  # fmt: skip

    def arguments(self, node: ast.Call, name: str, arity: int) -> list[Evaluator]:
        if len(node.args) != arity:
            raise self.fail(node, f"{name}() takes {arity} argument(s), got {len(node.args)}",
                            f"{name}({', '.join('x' * arity)})")  # fmt: skip
        return [self.node(a) for a in node.args]


def _random(name: str, args: list[Evaluator], draw: int) -> Evaluator:
    def sample(columns: Mapping[str, Column], keys: U64) -> Column:
        a = [arg(columns, keys) for arg in args]
        u = rng.uniforms(keys, (draw, draw + 1))
        if name == "uniform":
            out: Column = a[0] + (a[1] - a[0]) * u[:, 0]
        elif name == "normal":
            out = a[0] + a[1] * rng.box_muller(u[:, 0], u[:, 1])
        elif name == "lognormal":
            out = a[0] * np.exp(a[1] * rng.box_muller(u[:, 0], u[:, 1]))
        elif name == "poisson":
            out = poisson(u[:, 0], u[:, 1], a[0])
        else:  # exponential(mean)
            out = -np.log(u[:, 0]) * a[0]
        return out

    return sample


def field_order(reads: Mapping[str, frozenset[str]]) -> list[str]:
    """The names of ``reads`` (each with the names it reads) in an order where each comes
    after those it reads; a cycle is an error naming it (``a -> b -> a``)."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise ExpressionError(
                f"fields depend on each other in a cycle: {' -> '.join(cycle)}; accepted: "
                "each field reads only fields made before it"
            )
        state[name] = 1
        for dependency in sorted(reads.get(name, ())):
            if dependency in reads:
                visit(dependency, [*path, name])
        state[name] = 2
        order.append(name)

    for name in reads:
        visit(name, [])
    return order
