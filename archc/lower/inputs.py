"""Model input shapes written with expressions of the params (`image: [3, $size, $size]`), evaluated once the params
are known (after `--set`), so the input size of a network is a param like any other."""

from __future__ import annotations

from typing import Any

from archc import expr
from archc.errors import Problem
from archc.spec.model import InputSpec, SpecHeader
from archc.spec.report import DocPath, Reporter, describe

MAX_DIM = 1_000_000
"""The bound the spec model puts on a written dimension."""


def resolve_inputs(header: SpecHeader, params: dict[str, Any], report: Reporter) -> SpecHeader:
    """``header`` with every input's shape evaluated; each problem reported at its dimension."""
    resolved: dict[str, InputSpec] = {}
    for name, spec in header.inputs.items():
        spec = spec if isinstance(spec, InputSpec) else InputSpec(shape=spec)
        base: DocPath = ("inputs", name) if isinstance(header.inputs[name], list) else ("inputs", name, "shape")
        shape: list[Any] = []
        for i, dim in enumerate(spec.shape):
            shape.append(_dimension(dim, params, report, (*base, i), name))
        resolved[name] = spec.model_copy(update={"shape": shape})
    return header.model_copy(update={"inputs": resolved})


def _dimension(dim: int | str, params: dict[str, Any], report: Reporter, where: DocPath, name: str) -> int:
    if isinstance(dim, int):
        return dim
    try:
        value = expr.substitute(dim, params)
    except Problem as problem:
        report.error(problem.code, f"input '{name}': {problem.message}", where)
        return 1
    if type(value) is not int or not 1 <= value <= MAX_DIM:
        report.error("E103", f"input '{name}': a dimension must be an integer from 1 to {MAX_DIM:,}; {dim!r} gives "
                             f"{describe(value)}", where)
        return 1
    return value
