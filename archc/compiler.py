"""The compiler pipeline: YAML text -> validated header and params -> lowered graph -> the named passes of
archc/passes/pipeline.py (lint, costs, budgets, warnings) -> a :class:`Compiled` graph with its analyses.

Never imports torch or onnx: `archc check`, `summary` and `schema` run on this alone.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

from archc import expr
from archc.errors import Diagnostic, Problem, SpecError
from archc.ir.graph import Graph
from archc.limits import DEFAULT_LIMITS, Limits
from archc.lower import check_expansion, check_inputs, lower, stack_room
from archc.lower.includes import with_includes
from archc.lower.inputs import resolve_inputs
from archc.lower.library import with_library
from archc.passes.pipeline import Compiled, run_passes
from archc.spec.model import SpecHeader
from archc.spec.report import Reporter, describe
from archc.yaml_loader import LoadedDoc, collector_paused, load_yaml_file, load_yaml_text, resolve_plain


def compile_text(text: str | bytes, file: str = "<spec>", overrides: dict[str, str] | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> Compiled:
    return _compile(load_yaml_text(text, file, limits), overrides or {}, limits)


def compile_file(path: str | os.PathLike[str], overrides: dict[str, str] | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> Compiled:
    return _compile(load_yaml_file(path, limits), overrides or {}, limits)


def recompile(compiled: Compiled, overrides: dict[str, str]) -> Compiled:
    """The same loaded spec compiled again with other param values (the file is not read again)."""
    return _compile(compiled.doc, overrides, compiled.limits)


@dataclass
class Partial:
    """How far compiling got: the analysed result, or the graph lowered so far with the errors found."""

    compiled: Compiled | None
    graph: Graph | None
    """The analysed graph, or the lowered one when lowering reported errors (the failing layers and everything
    downstream of them untyped); None when the spec never got as far as lowering (YAML or header errors)."""
    diagnostics: list[Diagnostic]


def compile_partial(path: str | os.PathLike[str], overrides: dict[str, str] | None = None,
                    limits: Limits = DEFAULT_LIMITS) -> Partial:
    """:func:`compile_file` that returns what it got to instead of raising :class:`SpecError` (for drawing a spec
    with errors); usage errors (a missing file) still raise."""
    lowered: list[Graph] = []
    try:
        compiled = _compile(load_yaml_file(path, limits), overrides or {}, limits, lowered)
    except SpecError as exc:
        return Partial(None, lowered[-1] if lowered else None, list(exc.diagnostics))
    return Partial(compiled, compiled.graph, [])


def _compile(doc: LoadedDoc, overrides: dict[str, str], limits: Limits,
             lowered: list[Graph] | None = None) -> Compiled:
    with collector_paused():
        return _compile_doc(doc, overrides, limits, lowered)


def _compile_doc(doc: LoadedDoc, overrides: dict[str, str], limits: Limits, lowered: list[Graph] | None) -> Compiled:
    report = Reporter(doc)
    header = validate_header(doc, report)
    params = resolve_params(header, overrides, report)
    report.raise_if_any()
    assert header is not None and params is not None
    header = resolve_inputs(header, params, report)  # `image: [3, $size, $size]` follows `--set size=384`
    header, included = with_includes(header, doc.file, report, limits)
    report.raise_if_any()
    header, report.block_docs = with_library(header)
    report.block_docs.update(included)
    report.raise_if_any()
    try:
        with stack_room():
            check_inputs(header, report, limits)
            check_expansion(header, params, report, limits)  # before building anything: refuses bombs in time
            report.raise_if_any()
            graph = lower(header, params, report, limits, doc.file)
            if lowered is not None:
                lowered.append(graph)
    except RecursionError:  # only with raised limits: the defaults bound nesting well inside the room made
        raise SpecError([Diagnostic("E005", "blocks and constructs are nested too deeply to compile (limits "
                                            "max_depth, max_block_depth)", doc.file, doc.pos(("body",), key=True))]
                        ) from None
    report.raise_if_any()
    if not graph.outputs:  # `outputs: []`, or every output named is a step switched off by its `if:`
        report.error("E103", "the model has no outputs: `outputs` is empty or names only steps switched off by "
                             "their `if:`", ("outputs",), key=True)
        report.raise_if_any()
    compiled = Compiled(graph, header, doc, params, limits, block_docs=report.block_docs)
    run_passes(compiled)
    return compiled


def validate_header(doc: LoadedDoc, report: Reporter) -> SpecHeader | None:
    if doc.data is None:
        report.error("E102", "the file is empty; a spec needs `name`, `inputs` and `body`", ())
        return None
    if not isinstance(doc.data, dict):
        report.error("E103", f"a spec is a mapping with `name`, `inputs` and `body`; found {describe(doc.data)}", ())
        return None
    return report.validate(SpecHeader, doc.data, ())


def resolve_params(header: SpecHeader | None, overrides: dict[str, str], report: Reporter) -> dict[str, Any] | None:
    """Apply `--set` overrides, then evaluate params in order (a param may use the ones above it)."""
    if header is None:
        return None
    raw = dict(header.params)
    for key, text in overrides.items():
        if key not in raw:
            close = difflib.get_close_matches(key, list(raw), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            known = ", ".join(raw) or "none"
            report.error("E107", f"--set {key}={text}: no such param; {hint}(params: {known})", ("params",),
                         key=True)
            continue
        try:
            value = resolve_plain(text)
        except Problem as problem:
            report.error("E107", f"--set {key}: {problem.message}", ("params", key))
            continue
        if isinstance(value, float) and not math.isfinite(value):  # `.inf` or `1e400`: no float field takes it
            report.error("E107", f"--set {key}={text}: expected a finite number; found {describe(value)}",
                         ("params", key))
            continue
        if not _same_kind(raw[key], value):
            report.error("E107", f"--set {key}={text}: expected {describe(raw[key]).split()[0]} like the default "
                                 f"{raw[key]!r}; found {describe(value)}", ("params", key))
            continue
        raw[key] = value
    values: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            values[key] = expr.substitute(value, values)
        except Problem as problem:
            report.error(problem.code, problem.message, ("params", key))
    return values


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, str) and expr.is_expression(default):
        return True
    return isinstance(value, type(default))
