"""Collecting diagnostics, and turning pydantic validation errors into located, readable ones."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from archc.errors import Diagnostic, Pos, SpecError
from archc.ops.fields import FLOAT32_MAX
from archc.spec.model import DIM_EXPRESSION_PATTERN, LAYER_NAME_PATTERN

DocPath = tuple[str | int, ...]

# spellings users bring from other frameworks, pointed at ours
SYNONYMS = {
    "kernel": "k", "kernel_size": "k", "stride": "s", "strides": "s", "padding": "p", "dilation": "d",
    "out_channels": "out", "filters": "out", "channels": "out", "units": "out", "out_features": "out",
    "num_features": "out", "use_bias": "bias", "rate": "p", "dim": "axis", "name": "id", "input": "from",
    "inputs": "from", "n": "repeat", "times": "repeat", "num_groups": "groups", "layers": "body",
}


class Reporter:
    """Collects diagnostics for one spec file; duplicates (one template expanded many times) are kept once."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple[str, str, Pos, str]] = set()
        self.block_docs: dict[str, Any] = {}
        """Blocks defined in another file (the block library): name -> that file's document, where paths
        ``("blocks", name, ...)`` are looked up."""

    def doc_at(self, where: DocPath) -> Any:
        """The document ``where`` is a path of: the spec's, or the file a block from elsewhere is written in."""
        if len(where) >= 2 and where[0] == "blocks" and where[1] in self.block_docs:
            return self.block_docs[str(where[1])]
        return self.doc

    def pos(self, where: DocPath, *, key: bool = False) -> Pos:
        """The position of ``where``, naming its file when that is not the spec (a library or included block)."""
        doc = self.doc_at(where)
        pos: Pos = doc.pos(where, key=key)
        return pos if doc is self.doc else Pos(pos.line, pos.col, doc.file)

    def error(self, code: str, message: str, where: DocPath, layer: str = "", *, key: bool = False) -> None:
        doc = self.doc_at(where)
        pos = doc.pos(where, key=key)
        mark = (code, doc.file, pos, message)
        if mark in self._seen:
            return
        self._seen.add(mark)
        self.diagnostics.append(Diagnostic(code, message, doc.file, pos, layer))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(self.diagnostics)

    def validate(self, model: type[BaseModel], data: Any, where: DocPath, layer: str = "") -> Any:
        """Validate ``data`` (found at ``where`` in the file); report every error and return None on failure."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            groups = _group_errors(exc, data)
            # a misspelt key also makes its field "missing": report the spelling only
            hints: dict[DocPath, str | None] = {}
            for loc, messages, _ in groups:
                if any(kind == "extra_forbidden" for kind, _ in messages):
                    hints[loc] = _suggestion(str(loc[-1]), _unused_fields(model, data, loc[:-1]))
            suggested = {(*loc[:-1], hint) for loc, hint in hints.items() if hint is not None}
            for loc, messages, found in groups:
                if {k for k, _ in messages} == {"missing"} and loc in suggested:
                    continue
                self._report_validation(model, loc, messages, found, where, layer, hints.get(loc))
            return None

    def _report_validation(self, model: type[BaseModel], loc: DocPath, messages: list[tuple[str, str]],
                           found: Any, where: DocPath, layer: str, hint: str | None) -> None:
        kinds = {k for k, _ in messages}
        on_key = bool(loc) and loc[-1] == _KEY  # the mapping key itself is wrong, not its value
        loc = loc[:-1] if on_key else loc
        field = ".".join(str(x) for x in (loc[:-1] if on_key else loc))
        if "reserved_name" in kinds:
            self.error("E206", _either(m for k, m in messages if k == "reserved_name"), where + loc, layer,
                       key=on_key)
        elif on_key:
            subject = f"'{field}': " if field else ""
            self.error("E103", f"{subject}key {_short(str(loc[-1]))}: {_either(m for _, m in messages)}",
                       where + loc, layer, key=True)
        elif "extra_forbidden" in kinds:
            fields = _fields_at(model, loc[:-1])
            advice = f"; did you mean '{hint}'?" if hint else (f"; expected one of: {', '.join(fields)}" if fields
                                                                else "")
            self.error("E101", f"unknown field '{loc[-1]}'{advice}", where + loc, layer, key=True)
        elif "missing" in kinds:
            about = _field_doc(model, loc)
            self.error("E102", f"missing required field '{field}'{f' ({about})' if about else ''}",
                       where + loc[:-1], layer)
        else:
            subject = f"'{field}': " if field else ""
            if kinds == {"value_error"}:  # a model rule's own sentence, about several fields
                self.error("E103", subject + "; ".join(m for _, m in messages), where + loc, layer)
                return
            note = _not_read_as_expression(_value_at(self.doc_at(where).data, where + loc), found)
            self.error("E103", f"{subject}{_either(m for _, m in messages)}; found {describe(found)}{note}",
                       where + loc, layer)


# text with arithmetic and a `$` (`($k - 1) // 2`, `$4 * dim`) meant as an expression but kept as a string
_ARITHMETIC = re.compile(r"[-+*/%()]")
_DOLLAR_BEFORE_OPERAND = re.compile(r"\$(?=[A-Za-z_0-9(])")


def _not_read_as_expression(raw: Any, found: Any) -> str:
    """Where a wrong-typed string was written as an attempt at an expression: say so and show the form that works."""
    if not isinstance(raw, str) or not isinstance(found, str) or "$" not in raw or not _ARITHMETIC.search(raw):
        return ""
    if raw.startswith("${") and raw.endswith("}"):
        return ""  # already the working form: its value is a string for another reason
    return (f" (the text `{raw}` was not read as an expression: only a value starting with `$name` or written as "
            f"`${{...}}` is one; write `${{{_DOLLAR_BEFORE_OPERAND.sub('', raw)}}}`)")


def _value_at(data: Any, path: DocPath) -> Any:
    """The value written at ``path`` in the document, before any substitution; None where there is none."""
    found, value = _doc_loc(path, data)
    return value if len(found) == len(path) else None


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of user text, cut to ``limit`` characters for a one-line message."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _either(phrases: Iterable[str]) -> str:
    """``expected an integer``, ``expected a list`` -> ``expected an integer or a list``."""
    unique = list(dict.fromkeys(phrases))
    if len(unique) > 1 and all(p.startswith("expected ") for p in unique):
        rest = [p.removeprefix("expected ") for p in unique]
        return "expected " + ", ".join(rest[:-1]) + " or " + rest[-1]
    return "; or ".join(unique)


def describe(value: Any) -> str:
    """A short, typed rendering of a user value for messages, spelt as in YAML (``true``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kinds = {int: "int", float: "float", str: "str", list: "list", dict: "mapping"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"{kind} {text}"


_IDENTIFIER = "^[A-Za-z0-9_]+$"
_KEY = "[key]"
# pydantic error types that only say the value has another type; a union reports one per member
_TYPE_KINDS = {"int_type", "int_parsing", "float_type", "float_parsing", "string_type", "bool_type", "bool_parsing",
               "list_type", "dict_type", "model_type", "model_attributes_type", "literal_error", "is_instance_of",
               "none_required"}


def _expected(err: Any) -> str:
    """What a pydantic error says was expected, in the words of the spec language."""
    kind, ctx = err["type"], err.get("ctx") or {}
    simple = {"int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
              "float_parsing": "a number", "string_type": "a string", "bool_type": "true or false",
              "bool_parsing": "true or false", "list_type": "a list", "dict_type": "a mapping",
              "model_type": "a mapping", "model_attributes_type": "a mapping", "none_required": "null"}
    if kind in simple:
        return f"expected {simple[kind]}"
    if kind == "finite_number":
        return "expected a finite number (not inf or nan)"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        if limit in (FLOAT32_MAX, -FLOAT32_MAX):  # the bound every float field has: say which it is
            return f"expected a number within float32's range (magnitude at most {FLOAT32_MAX:.8g})"
        return f"expected a value {bounds[kind]} {limit}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the listed values')}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        if pattern == _IDENTIFIER:
            return "expected a name of letters, digits and underscores"
        if pattern == LAYER_NAME_PATTERN:
            return "expected a layer name: any characters but `.` (it separates the parts of a layer path) and " \
                "control characters, at least one"
        if pattern == DIM_EXPRESSION_PATTERN:
            return "expected a size (a positive integer) or an expression of the params (`$size`)"
        return f"expected text matching {pattern}"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length" if kind == "too_short" else "max_length")
        return f"expected {'at least' if kind == 'too_short' else 'at most'} {n} item{'s' if n != 1 else ''}"
    return _clean(err["msg"])


def _clean(message: str) -> str:
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[0].lower() + message[1:] if message else message


def _group_errors(exc: ValidationError, data: Any) -> list[tuple[DocPath, list[tuple[str, str]], Any]]:
    """Errors by their location in the document; union-member tags in ``loc`` are dropped."""
    grouped: dict[DocPath, list[tuple[str, str]]] = {}
    found: dict[DocPath, Any] = {}
    for err in exc.errors(include_url=False):
        loc, value = _doc_loc(err["loc"], data)
        if err["loc"] and err["loc"][-1] == _KEY:  # pydantic's marker for a mapping key that failed validation
            loc = (*loc, _KEY)
        elif err["type"] == "missing" or err["type"] == "extra_forbidden":
            loc = tuple(err["loc"][: len(loc) + 1]) if len(loc) < len(err["loc"]) else loc
            loc = _strip_tags(loc, data)
        grouped.setdefault(loc, []).append((err["type"], _expected(err)))
        found.setdefault(loc, value)
    out = []
    for loc, msgs in grouped.items():
        kinds = {k for k, _ in msgs}
        # a union member whose type does not fit says nothing when a member that fits reports why
        if kinds <= _TYPE_KINDS and any(len(o) > len(loc) and o[: len(loc)] == loc for o in grouped):
            continue
        if not kinds <= _TYPE_KINDS:
            msgs = [(k, m) for k, m in msgs if k not in _TYPE_KINDS]
        out.append((loc, msgs, found[loc]))
    return out


def _doc_loc(loc: Sequence[Any], data: Any) -> tuple[DocPath, Any]:
    """The part of a pydantic ``loc`` that exists in the data, and the value there."""
    path: list[str | int] = []
    current = data
    for item in loc:
        in_dict = isinstance(current, dict) and item in current
        if in_dict or (isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current)):
            current = current[item]
            path.append(item)
    return tuple(path), current


def _strip_tags(loc: DocPath, data: Any) -> DocPath:
    path, _ = _doc_loc(loc[:-1], data)
    return (*path, loc[-1])


def _fields_at(model: type[BaseModel], loc: DocPath) -> list[str]:
    fields: list[str] = []
    for name, info in model.model_fields.items():
        fields.append(info.alias or name)
    return fields if not loc else []


def _field_doc(model: type[BaseModel], loc: DocPath) -> str:
    """The description of a top-level field of ``model``, shortened for a message."""
    if len(loc) != 1:
        return ""
    for name, info in model.model_fields.items():
        if loc[0] in (name, info.alias):
            text = (info.description or "").rstrip(".")
            return text[:1].lower() + text[1:]
    return ""


def _suggestion(name: str, candidates: list[str]) -> str | None:
    """The field a misspelt or foreign key most likely means: a synonym, a close spelling, or an abbreviation."""
    if name in SYNONYMS and SYNONYMS[name] in candidates:
        return SYNONYMS[name]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        return close[0]
    # `kernal` -> `k`, `padd` -> `p`: the short fields abbreviate a longer word
    prefixes = [c for c in candidates if name.startswith(c)]
    return max(prefixes, key=len) if prefixes else None


def _unused_fields(model: type[BaseModel], data: Any, loc: DocPath) -> list[str]:
    """Fields of the mapping at ``loc`` not already given: the only sensible meanings of an unknown key there."""
    _, mapping = _doc_loc(loc, data)
    present = set(mapping) if isinstance(mapping, dict) else set()
    return [f for f in _fields_at(model, loc) if f not in present]
