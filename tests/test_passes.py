"""The pass pipeline: named passes run top to bottom, their analyses typed by the pass, failures naming pass and node;
and the one shape loop re-run at other input sizes."""

from __future__ import annotations

import pytest

from archc.compiler import compile_file, compile_text
from archc.errors import Problem, SpecError
from archc.ir.graph import Graph, GraphLintError
from archc.ir.types import TensorType
from archc.limits import DEFAULT_LIMITS
from archc.ops.registry import known_op
from archc.passes.costs import CostReport
from archc.passes.pipeline import (
    COSTS,
    PASSES,
    RECEPTIVE_FIELDS,
    WARNINGS,
    FunctionPass,
    InternalError,
    run_passes,
)
from archc.passes.shapes import infer_at

SPEC = "name: t\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {id: conv1, out: 4, k: 3}\n  - relu\n"


def test_compile_runs_the_named_passes_top_to_bottom() -> None:
    compiled = compile_text(SPEC)
    assert [p.name for p in PASSES] == ["lint", "costs", "budgets", "warnings"]
    assert compiled.analyses.names() == ["lint", "costs", "budgets", "warnings"]
    assert isinstance(compiled.analyses[COSTS], CostReport) and compiled.costs is compiled.analyses[COSTS]
    assert compiled.costs.total.params == 4 * 3 * 9 + 4
    assert compiled.warnings is compiled.analyses[WARNINGS] and compiled.warnings == []


def test_an_analysis_runs_on_first_use_and_once() -> None:
    """The slot a memory planner uses: a pass of its own, run when asked, its result kept with the others."""
    compiled = compile_text(SPEC)
    calls: list[str] = []

    def plan(c: object) -> dict[str, int]:
        calls.append("plan")
        return {n.name: n.out_type.nbytes for n in compiled.graph.nodes() if n.out_type is not None}

    memory = FunctionPass("memory", plan)
    assert memory not in compiled.analyses
    assert compiled.analysis(memory) == {"x": 768, "conv1": 576, "1": 576}
    assert compiled.analysis(memory) is compiled.analyses[memory] and calls == ["plan"]
    assert compiled.receptive_fields() is compiled.analyses[RECEPTIVE_FIELDS]
    assert compiled.analyses.names()[-2:] == ["memory", "receptive_fields"]


def test_a_pass_failing_on_a_node_is_a_bug_naming_pass_and_node(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(type(known_op("relu")), "cost", broken)
    with pytest.raises(InternalError) as info:
        compile_text(SPEC)
    assert str(info.value) == "pass costs: node 1: relu cost: ZeroDivisionError: division by zero"


def test_a_broken_invariant_names_the_lint_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def lint(self: Graph, *, typed: bool = False) -> None:
        raise GraphLintError("conv1: input ports [1] are not 0..n-1")

    monkeypatch.setattr(Graph, "lint", lint)
    with pytest.raises(InternalError) as info:
        compile_text(SPEC)
    assert str(info.value) == "pass lint: conv1: input ports [1] are not 0..n-1"


def test_a_user_mistake_found_by_a_pass_stays_a_located_error() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(SPEC, "t.yaml", limits=DEFAULT_LIMITS.with_overrides({"max_params": 100}))
    assert [d.format() for d in info.value.diagnostics] == [
        "t.yaml:4:5: E501: conv1: the model has 112 parameters and buffers, more than 100 (limit max_params); the "
        "largest layer is 'conv1' with 112 parameters and buffers"]


def test_run_passes_takes_a_list() -> None:
    compiled = compile_text(SPEC)
    seen: list[str] = []
    run_passes(compiled, [FunctionPass("first", lambda c: seen.append("first")),
                          FunctionPass("second", lambda c: seen.append("second"))])
    assert seen == ["first", "second"] and compiled.analyses.names()[-2:] == ["first", "second"]


def test_shapes_at_another_input_size_use_the_same_rules() -> None:
    graph = compile_file("specs/resnet18.yaml").graph
    types = infer_at(graph, {"image": TensorType((3, 448, 448))})
    assert types["conv1"] == TensorType((64, 224, 224))
    assert types["layer4.1.1"] == TensorType((512, 14, 14))
    assert types["fc"] == TensorType((1000,))
    assert graph.node("conv1").out_type == TensorType((64, 112, 112))  # the graph's own types stay
    with pytest.raises(Problem) as info:
        infer_at(compile_text(SPEC).graph, {"x": TensorType((3, 2, 2))})
    assert (info.value.code, info.value.message) == ("E304", "layer conv1: kernel 3 does not fit: expected at most the "
                                                             "padded input size 2 (2 + padding 0+0), found 3")
