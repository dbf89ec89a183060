"""YAML 1.2 core-schema scalars: how archc reads a plain or explicitly tagged scalar's text.

``no``/``on`` stay strings, ``010`` is 10, ``0x1F`` and ``0o17`` are integers, ``.inf``/``.nan`` are floats; anything
else is a string. Only the core tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``) are accepted.
"""

from __future__ import annotations

import re
from typing import Any

from archc.errors import Problem

CORE = "tag:yaml.org,2002:"
MAX_INT_DIGITS = 30
MERGE_REFUSED = "merge keys (<<) are not supported; write the keys out"
_INTS = ((re.compile(r"[-+]?[0-9]+"), 10, 0), (re.compile(r"0o[0-7]+"), 8, 2), (re.compile(r"0x[0-9a-fA-F]+"), 16, 2))
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def tag_name(tag: str) -> str:
    """``!!int`` for a core tag, else the tag as written."""
    return "!!" + tag[len(CORE):] if tag.startswith(CORE) else tag


def _parse_int(text: str) -> int | None:
    """A YAML 1.2 core-schema integer, or None; refuses more than :data:`MAX_INT_DIGITS` digits."""
    for pattern, base, skip in _INTS:
        if pattern.fullmatch(text):
            digits = text[skip:].lstrip("+-")
            if len(digits) > MAX_INT_DIGITS:
                raise Problem("E005", f"integer with {len(digits)} digits; at most {MAX_INT_DIGITS} are accepted")
            return int(digits, base) * (-1 if text.startswith("-") else 1)
    return None


def _parse_float(text: str) -> float | None:
    """A YAML 1.2 core-schema float (``1e-3``, ``.5``, ``-.inf``, ``.nan``), or None."""
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return None


def resolve_plain(text: str) -> Any:
    """Resolve an untagged plain scalar with the YAML 1.2 core schema; anything unrecognised is a string.

    Raises :class:`Problem` ``E005`` for an integer of more than :data:`MAX_INT_DIGITS` digits.
    """
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    number = _parse_int(text)
    if number is not None:
        return number
    real = _parse_float(text)
    return text if real is None else real


_TAG_TYPES: dict[str, type] = {"str": str, "null": type(None), "bool": bool, "int": int, "float": float}


def resolve_tagged(tag: str, text: str) -> Any:
    """Apply an explicit core tag (``!!int "3"``, ``!!float 1``); text the tag cannot read is E004."""
    name = tag.removeprefix(CORE) if tag.startswith(CORE) else tag
    if name == "merge":
        raise Problem("E003", MERGE_REFUSED)
    if name not in _TAG_TYPES:
        raise Problem("E004", f"tag {tag_name(tag)} is not allowed; only plain YAML values are accepted")
    value = text if name == "str" else resolve_plain(text)
    if name == "float" and type(value) is int:
        value = float(value)
    if type(value) is not _TAG_TYPES[name]:
        raise Problem("E004", f"cannot read {text!r} as {tag_name(tag)}")
    return value
