"""A stage as ``nn.Sequential``: its block instances in order, runs of similar ones written as one generator.

Keys ``0``, ``1``, ... are what ``nn.Sequential(a, b, ...)`` gives; other keys (``denselayer1``...) need an
``OrderedDict`` of names. Within a run, each argument is the same for every instance or steps evenly with the
position (``DenseLayer(64 + 32 * i)``), so a 36-block stage is two lines.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .text import INDENT, literal
from .unify import ClassPlan

_NUMBERED = re.compile(r"(?P<prefix>[A-Za-z_][A-Za-z0-9_]*?)(?P<number>0|[1-9][0-9]*)")
_MIN_RUN = 3


def sequential_ctor(keys: list[str], calls: list[tuple[ClassPlan, dict[str, Any]]]) -> list[str] | None:
    """The constructor's lines (continuations indented relative to the first); None when the keys cannot be
    written (neither ``0..n-1`` nor one prefix with consecutive numbers)."""
    if keys == [str(i) for i in range(len(keys))]:
        prefix, start = "", 0
    else:
        matches = [_NUMBERED.fullmatch(k) for k in keys]
        if any(m is None for m in matches):
            return None
        prefixes = {m["prefix"] for m in matches if m}
        numbers = [int(m["number"]) for m in matches if m]
        if len(prefixes) != 1 or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            return None
        prefix, start = prefixes.pop(), numbers[0]
    entries = []
    i = 0
    while i < len(calls):
        end = _run_end(calls, i)
        entries.append(_entry(keys, calls, i, end, prefix, start))
        i = end
    if not prefix:
        return ["nn.Sequential(", *(INDENT + e + "," for e in entries), ")"]
    return ["nn.Sequential(OrderedDict([", *(INDENT + e + "," for e in entries), "]))"]


def _run_end(calls: list[tuple[ClassPlan, dict[str, Any]]], i: int) -> int:
    """The end of the longest run from ``i`` whose arguments are constant or step evenly; a short run is one call."""
    plan = calls[i][0]
    end = i + 1
    while end < len(calls) and calls[end][0] is plan and _steps(calls[i:end + 1]) is not None:
        end += 1
    return end if end - i >= _MIN_RUN else i + 1


def _steps(run: list[tuple[ClassPlan, dict[str, Any]]]) -> dict[str, tuple[int, int]] | None:
    """Argument -> (first value, step) for arguments that change along the run; None when one does not step evenly."""
    out: dict[str, tuple[int, int]] = {}
    first = run[0][1]
    for name, value in first.items():
        column = [values[name] for _, values in run]
        if all(type(v) is type(value) and v == value for v in column):
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in column):
            return None
        step = column[1] - column[0]
        if any(b - a != step for a, b in itertools.pairwise(column)):
            return None
        out[name] = (column[0], step)
    return out


def _entry(keys: list[str], calls: list[tuple[ClassPlan, dict[str, Any]]], i: int, end: int, prefix: str,
           start: int) -> str:
    plan, values = calls[i]
    if end == i + 1:
        call = plan.call(values)
        return f"({literal(keys[i])}, {call})" if prefix else call
    steps = _steps(calls[i:end]) or {}
    # position i counts from the stage's first block, so the first value is at `i`
    texts = {name: _linear(first - step * i, step) for name, (first, step) in steps.items()}
    call = plan.call(values, texts)
    var = "i" if texts or prefix else "_"
    if prefix:
        number = "{i}" if start == 0 else f"{{i + {start}}}"
        return f'*((f"{prefix}{number}", {call}) for i in {_range(i, end)})'
    if var == "_":
        return f"*({call} for _ in range({end - i}))"
    return f"*({call} for i in {_range(i, end)})"


def _range(start: int, end: int) -> str:
    return f"range({start}, {end})" if start else f"range({end})"


def _linear(base: int, step: int) -> str:
    if step == 1:
        term = "i"
    elif step == -1:
        term = "-i"
    else:
        term = f"{step} * i"
    if base == 0:
        return term
    return f"{base} + {term}" if not term.startswith("-") else f"{base} - {term[1:]}"
