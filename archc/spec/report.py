"""Collecting diagnostics, and turning pydantic validation errors into located, readable ones."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from archc.errors import Diagnostic, Pos, SpecError

DocPath = tuple[str | int, ...]

# spellings users bring from other frameworks, pointed at ours
SYNONYMS = {
    "kernel": "k", "kernel_size": "k", "stride": "s", "strides": "s", "padding": "p", "dilation": "d",
    "out_channels": "out", "filters": "out", "channels": "out", "units": "out", "out_features": "out",
    "num_features": "out", "use_bias": "bias", "rate": "p", "dim": "axis", "name": "id", "input": "from",
    "inputs": "from", "n": "repeat", "times": "repeat", "num_groups": "groups",
}


class Reporter:
    """Collects diagnostics for one spec file; duplicates (one template expanded many times) are kept once."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple[str, Pos, str]] = set()

    def error(self, code: str, message: str, where: DocPath, layer: str = "", *, key: bool = False) -> None:
        pos = self.doc.pos(where, key=key)
        mark = (code, pos, message)
        if mark in self._seen:
            return
        self._seen.add(mark)
        self.diagnostics.append(Diagnostic(code, message, self.doc.file, pos, layer))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(self.diagnostics)

    def validate(self, model: type[BaseModel], data: Any, where: DocPath, layer: str = "") -> Any:
        """Validate ``data`` (found at ``where`` in the file); report every error and return None on failure."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for loc, messages, found in _group_errors(exc, data):
                self._report_validation(model, loc, messages, found, data, where, layer)
            return None

    def _report_validation(self, model: type[BaseModel], loc: DocPath, messages: list[tuple[str, str]],
                           found: Any, data: Any, where: DocPath, layer: str) -> None:
        kinds = {k for k, _ in messages}
        field = ".".join(str(x) for x in loc)
        if "extra_forbidden" in kinds:
            name = str(loc[-1])
            self.error("E101", f"unknown field '{name}'{_suggest(name, _fields_at(model, loc[:-1]))}",
                       where + loc, layer, key=True)
        elif "missing" in kinds:
            self.error("E102", f"missing field '{field}'", where + loc[:-1], layer)
        else:
            wanted = "; or ".join(dict.fromkeys(_clean(m) for _, m in messages))
            subject = f"'{field}': " if field else ""
            self.error("E103", f"{subject}{wanted}; found {describe(found)}", where + loc, layer)


def describe(value: Any) -> str:
    """A short, typed rendering of a user value for messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping",
            type(None): "null"}.get(type(value), type(value).__name__)
    return f"{kind} {text}" if value is not None else "null"


def _clean(message: str) -> str:
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[0].lower() + message[1:] if message else message


def _group_errors(exc: ValidationError, data: Any) -> list[tuple[DocPath, list[tuple[str, str]], Any]]:
    """Errors by their location in the document; union-member tags in ``loc`` are dropped."""
    grouped: dict[DocPath, list[tuple[str, str]]] = {}
    found: dict[DocPath, Any] = {}
    for err in exc.errors(include_url=False):
        loc, value = _doc_loc(err["loc"], data)
        if err["type"] == "missing" or err["type"] == "extra_forbidden":
            loc = tuple(err["loc"][: len(loc) + 1]) if len(loc) < len(err["loc"]) else loc
            loc = _strip_tags(loc, data)
        grouped.setdefault(loc, []).append((err["type"], err["msg"]))
        found.setdefault(loc, value)
    # the deepest location wins when a union reports at several depths
    return [(loc, msgs, found[loc]) for loc, msgs in grouped.items()]


def _doc_loc(loc: Sequence[Any], data: Any) -> tuple[DocPath, Any]:
    """The part of a pydantic ``loc`` that exists in the data, and the value there."""
    path: list[str | int] = []
    current = data
    for item in loc:
        if isinstance(current, dict) and item in current:
            current = current[item]
            path.append(item)
        elif isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current):
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


def _suggest(name: str, candidates: list[str]) -> str:
    if name in SYNONYMS and SYNONYMS[name] in candidates:
        return f"; did you mean '{SYNONYMS[name]}'?"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if candidates:
        return f"; expected one of: {', '.join(candidates)}"
    return ""
