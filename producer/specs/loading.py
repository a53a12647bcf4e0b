"""Reading a spec file: YAML with the line and column of every value, validated into the
models of ``producer.specs.format``, every error one line ``FILE:LINE:COL: what is wrong;
what is accepted``; expressions and formats checked, references resolved."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from producer.errors import ConfigError
from producer.specs.expressions import ExpressionError, compile_expression, field_order
from producer.specs.format import (
    FORMAT_ACCEPTED,
    TEMPLATE_ACCEPTED,
    SpecFile,
    StreamSpec,
    template_names,
    value_type,
)

if TYPE_CHECKING:
    import yaml


# What a spec file may be, whoever wrote it: at most MAX_BYTES of UTF-8, collections nested at
# most MAX_DEPTH deep, at most MAX_VALUES values once its aliases are expanded (an alias bomb
# stops there, not at a billion).
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_VALUES = 100_000


def _text(path: Path) -> str:
    """The file's text, or one line: unreadable, too large, or not UTF-8 (where)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the spec ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; accepted: a spec file "
                          f"of at most {MAX_BYTES // 1024} KiB")  # fmt: skip
    for bom, name in ((b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise ConfigError(f"{path}:1:1: the file is {name}; accepted: UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(f"{path}:{line}:{col}: byte 0x{data[exc.start]:02x} is not UTF-8; "
                          "accepted: UTF-8 text") from None  # fmt: skip


def _where(path: Path, text: str, exc: Exception) -> str:
    """``FILE:LINE:COL`` of a YAML error: its mark, or the position of a reader's error."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{path}:{mark.line + 1}:{mark.column + 1}"
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        before = text[:position]
        return f"{path}:{before.count(chr(10)) + 1}:{position - (before.rfind(chr(10)) + 1) + 1}"
    return f"{path}:1:1"


def _compose(path: Path, text: str) -> yaml.Node | None:
    """The YAML tree of ``text``, its nesting checked first without recursion (the composer
    recurses, and a file 20,000 brackets deep would end it)."""
    import yaml  # only when a spec is read: start-up stays lean

    accepted = "accepted: a YAML mapping with 'streams'"
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    at = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
                    raise ConfigError(f"{path}:{at}: nested more "
                                      f"than {MAX_DEPTH} deep; {accepted}, nested at most "
                                      f"{MAX_DEPTH} deep")  # fmt: skip
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        what = f"character U+{code:04X}"
        raise ConfigError(f"{_where(path, text, exc)}: {what} is not allowed in YAML; "
                          "accepted: printable text, tabs and newlines") from None  # fmt: skip
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ConfigError(f"{_where(path, text, exc)}: {problem}; {accepted}") from None


def load_spec(path: Path) -> SpecFile:
    """Read and check a spec file, or ``ConfigError``: ``FILE:LINE:COL: what; accepted``."""
    text = _text(path)
    node = _compose(path, text)
    if node is None:
        raise ConfigError(f"{path}:1:1: the file is empty; accepted: a mapping with 'streams'")
    marks: Marks = {}
    data = _plain(node, (), marks, path, [MAX_VALUES])
    try:
        spec = SpecFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_located(path, exc, marks)) from None
    for name in spec.streams:  # (first: a lookup takes its type from what it looks up)
        _resolve_references(path, name, spec, marks)
    for name, stream in spec.streams.items():
        _check_expressions(path, name, stream, marks)
        _check_formats(path, name, stream, marks)
        _check_templates(path, name, stream, marks)
    return spec


def _resolve_references(path: Path, name: str, spec: SpecFile, marks: Marks) -> None:
    """Every ``ref`` names a stream of the file; the stream learns each target's id format
    and entity count (so an id it writes always exists there)."""
    stream = spec.streams[name]
    places = {("entities", "attributes"): stream.entities.attributes, ("fields",): stream.fields}
    for prefix, values in places.items():
        for field, value in values.items():
            if value.ref is None:
                continue
            target = spec.streams.get(value.ref)
            if target is None:
                line, col = marks.get(("streams", name, *prefix, field, "ref"), (1, 1))
                known = ", ".join(spec.streams)
                raise ConfigError(f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}."
                                  f"{field}.ref: no stream {value.ref!r} in the file; "
                                  f"accepted: {known}")  # fmt: skip
            stream.references[value.ref] = (target.entities.id, target.entities.count)
            stream.targets[value.ref] = target
    for prefix, values in places.items():  # lookups of a referenced entity's attribute
        for field, value in values.items():
            through, _, column = (value.lookup or "").partition(".")
            holder = {**stream.entities.attributes, **stream.fields}.get(through)
            if holder is None or holder.ref is None:
                continue
            line, col = marks.get(("streams", name, *prefix, field, "lookup"), (1, 1))
            where = f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}.{field}.lookup"
            if prefix != ("fields",) and through not in stream.entities.attributes:
                raise ConfigError(
                    f"{where}: {through} is a field: an attribute looks up "
                    "through an attribute; accepted: it under fields"
                )
            theirs = spec.streams[holder.ref].entities.attributes
            chained = {a for a, v in theirs.items()  # (their own lookups through a ref)
                       if (v.lookup or ".").partition(".")[0] in
                       {r for r, w in theirs.items() if w.ref is not None}}  # fmt: skip
            if chained:
                raise ConfigError(
                    f"{where}: {holder.ref}'s attributes look up another "
                    "stream themselves; accepted: a lookup one reference deep"
                )
            followed = theirs.get(column)
            if followed is None:
                known = ", ".join(theirs) or "(none)"
                raise ConfigError(f"{where}: {column!r} is not an attribute of {holder.ref}; "
                                  f"accepted: {known}")  # fmt: skip
            value._follows = followed


Marks = dict[tuple[Any, ...], tuple[int, int]]  # a value's path -> (line, column)


def _plain(
    node: yaml.Node, path: tuple[Any, ...], marks: Marks, file: Path, left: list[int]
) -> Any:
    """The data of a YAML node, with the line and column of every value by its path; at most
    ``left[0]`` values in all (aliases count each time they are used); a key given twice in a
    mapping is an error."""
    import yaml

    where = (node.start_mark.line + 1, node.start_mark.column + 1)
    left[0] -= 1
    if left[0] < 0:
        raise ConfigError(f"{file}:{where[0]}:{where[1]}: more than {MAX_VALUES:,} values "
                          "(aliases counted each time they are used); accepted: a spec of at "
                          f"most {MAX_VALUES:,}")  # fmt: skip
    marks[path] = where
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            # A key is a name as written: YAML 1.1 would read ``on``, ``no`` or ``1`` (a state,
            # a country, a choice) as true, false or a number.
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{file}:{at[0]}:{at[1]}: a key that is a list or a mapping; "
                                  "accepted: a name")  # fmt: skip
            key = key_node.value
            if key in out:
                dotted = ".".join(str(p) for p in (*path, key))
                first = marks[(*path, key, "<key>")]
                raise ConfigError(f"{file}:{at[0]}:{at[1]}: {dotted} is given twice (first at "
                                  f"line {first[0]}); accepted: each key once")  # fmt: skip
            marks[(*path, key, "<key>")] = at
            out[key] = _plain(value_node, (*path, key), marks, file, left)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), marks, file, left) for i, item in enumerate(node.value)]
    try:
        return yaml.SafeLoader(" ").construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:  # 2024-02-30, a bad !!binary
        raise ConfigError(f"{file}:{where[0]}:{where[1]}: {str(exc).splitlines()[0]} "
                          f"({node.value[:40]!r}); accepted: a number, text, a date, "
                          "true or false") from None  # fmt: skip


def _located(path: Path, exc: ValidationError, marks: Marks) -> str:
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    dotted = ".".join(str(p) for p in loc) or "(top)"
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        where = marks.get((*loc, "<key>")) or _nearest(loc, marks)
        parent = _model_at(loc[:-1])
        accepted = ", ".join(parent) if parent else "see the format reference"
        return f"{path}:{where[0]}:{where[1]}: unknown key {loc[-1]!r}; accepted: {accepted}"
    where = _nearest(loc, marks)
    if kind == "missing":
        return f"{path}:{where[0]}:{where[1]}: {dotted} is missing; accepted: " + (
            ", ".join(_model_at(loc[:-1])) or "see the format reference"
        )
    if "; accepted: " not in message and kind != "value_error":  # a check says what it wants
        message += f"; accepted: {_accepted(error)}"
    return f"{path}:{where[0]}:{where[1]}: {dotted}: {message}"


def _nearest(loc: tuple[Any, ...], marks: Marks) -> tuple[int, int]:
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return (1, 1)


def _accepted(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    for bound, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if bound in ctx:
            return f"a number {symbol} {ctx[bound]}"
    if "pattern" in ctx:
        return f"text matching {ctx['pattern']}"
    return str(error["type"]).replace("_", " ")


def _model_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (for "unknown key" errors)."""
    model: Any = SpecFile
    parts = list(loc)
    while parts:
        fields = getattr(model, "model_fields", None)
        if fields is None or parts[0] not in fields:
            return []
        annotation = fields[parts.pop(0)].annotation
        if typing.get_origin(annotation) is dict:  # a dict of models: skip the key
            annotation = typing.get_args(annotation)[1]
            if parts:
                parts.pop(0)
        model = annotation
    return list(getattr(model, "model_fields", {}))


_SAMPLES: dict[str, Any] = {
    "text": "text",
    "int": 1,
    "bool": True,
    "float": 1.5,
    "timestamp": "2024-01-01T00:00:00.000Z",
    "date": "2024-01-01",
}


def _check_formats(path: Path, name: str, stream: StreamSpec, marks: Marks) -> None:
    """Every ``format`` can write a value of its field's type."""
    for prefix, specs in ((("entities", "attributes"), stream.entities.attributes),
                          (("fields",), stream.fields)):  # fmt: skip
        for field, spec in specs.items():
            if spec.format is None:
                continue
            boolean = spec.expr is not None and compile_expression(
                spec.expr, stream.readable(), categories=stream.categories()).boolean  # fmt: skip
            kind = value_type(spec, boolean)
            try:
                spec.format.format(_SAMPLES[kind])
            except (ValueError, TypeError) as exc:
                line, col = marks.get(("streams", name, *prefix, field, "format"), (1, 1))
                raise ConfigError(f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}."
                                  f"{field}.format: {spec.format!r} cannot write a {kind} "
                                  f"({exc}); accepted: {FORMAT_ACCEPTED}") from None  # fmt: skip


def _check_templates(path: Path, name: str, stream: StreamSpec, marks: Marks) -> None:
    """Every template reads names the record has (an attribute's: attributes and the id),
    each written as its spec says, without a cycle."""
    attributes, fields = stream.entities.attributes, stream.fields
    reads: dict[str, frozenset[str]] = {}
    for prefix, specs in ((("entities", "attributes"), attributes), (("fields",), fields)):
        for field, spec in specs.items():
            if spec.template is None:
                continue
            line, col = marks.get(("streams", name, *prefix, field, "template"), (1, 1))
            where = f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}.{field}.template"
            known = {stream.entities.id_field: spec, **attributes}
            if prefix == ("fields",):  # (a prev field is made last: nothing reads it)
                known.update({f: v for f, v in fields.items() if v.prev is None})
            samples = {}
            for read in template_names(spec.template):
                if read not in known or read == field:
                    accepted = ", ".join(n for n in known if n != field)
                    raise ConfigError(f"{where}: {{{read}}} is not a name it can read; accepted: "
                                      f"{accepted}")  # fmt: skip
                other = known[read]
                samples[read] = ("text" if read == stream.entities.id_field or other.format
                                 else value_type(other, False))  # fmt: skip
            try:
                spec.template.format(**{k: _SAMPLES[kind] for k, kind in samples.items()})
            except (ValueError, TypeError) as exc:
                shown = ", ".join(f"{k} a {kind}" for k, kind in samples.items())
                raise ConfigError(
                    f"{where}: {spec.template!r} cannot write its values ({shown}:"
                    f" {exc}); accepted: {TEMPLATE_ACCEPTED}"
                ) from None
            reads[field] = frozenset(samples) - {stream.entities.id_field}
    try:
        field_order({f: r & set(reads) for f, r in reads.items()})
    except ExpressionError as exc:
        line, col = marks.get(("streams", name), (1, 1))
        raise ConfigError(f"{path}:{line}:{col}: streams.{name}: {exc}") from None


def _check_expressions(path: Path, name: str, stream: StreamSpec, marks: Marks) -> None:
    """Every expression compiles against the names it may read, without a cycle."""
    readable = stream.readable()
    categories = stream.categories()
    attribute_words = {a: w for a, s in stream.entities.attributes.items() if (w := s.words)}
    compiled = {}
    places = [("entities", "attributes"), ("fields",)]
    values = [stream.entities.attributes, stream.fields]
    for prefix, specs in zip(places, values, strict=True):
        for field, spec in specs.items():
            starts = spec.walk.start if spec.walk and isinstance(spec.walk.start, str) else None
            text = spec.expr or starts
            if text is None:
                continue
            if prefix == ("entities", "attributes") or starts is not None:
                # Attributes, and where a walk starts, are per entity: they read attributes.
                allowed = {a for a, s in stream.entities.attributes.items() if s.numeric}
                words = attribute_words
            else:
                allowed, words = readable, categories
            try:
                others = {k: v for k, v in words.items() if k != field}
                compiled[field] = compile_expression(
                    text,
                    allowed - {field},
                    categories=others,
                    words=spec.words if spec.expr else None,
                )
            except ExpressionError as exc:
                line, col = marks.get(("streams", name, *prefix, field), (1, 1))
                inner = str(exc)
                raise ConfigError(f"{path}:{line}:{col}: streams.{name}.{'.'.join(prefix)}."
                                  f"{field}: {inner}") from None  # fmt: skip
    if stream.table is not None and stream.table.delete is not None:
        try:
            compile_expression(stream.table.delete, readable, categories=categories)
        except ExpressionError as exc:
            line, col = marks.get(("streams", name, "table", "delete"), (1, 1))
            raise ConfigError(f"{path}:{line}:{col}: streams.{name}.table.delete: {exc}"
                              ) from None  # fmt: skip
    try:
        field_order({field: expression.names for field, expression in compiled.items()})
    except ExpressionError as exc:
        line, col = marks.get(("streams", name), (1, 1))
        raise ConfigError(f"{path}:{line}:{col}: streams.{name}: {exc}") from None
