"""The passes every compiled graph goes through, named and run top to bottom, and the analyses they leave.

A pass has a name and ``run(compiled)``; its result is stored in :attr:`Compiled.analyses` under the pass, typed by it
(``compiled.analyses[COSTS]`` is a :class:`CostReport`). :data:`PASSES` run on every compile; an analysis not every
command needs (receptive fields; a memory planner) is a pass run on first use with :meth:`Compiled.analysis`. A pass
that finds the graph broken raises :class:`GraphLintError`, or :class:`NodeFailure` naming the node it failed on; the
compiler reports either as a bug naming the pass. A pass that finds a user mistake raises a located :class:`SpecError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from archc.errors import Diagnostic, Pos, Problem, SpecError
from archc.ir.graph import Graph, GraphLintError, Node, NodeFailure
from archc.limits import DEFAULT_LIMITS, Limits
from archc.passes.costs import CostReport, analyse_costs, check_budgets
from archc.passes.receptive_field import Field, analyse_receptive_fields
from archc.passes.schedule import Schedule, schedule_graph
from archc.passes.warnings import find_warnings
from archc.spec.model import SpecHeader
from archc.yaml_loader import LoadedDoc

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pass(Protocol[T_co]):
    """A named step over a compiled graph; what it returns is its analysis."""

    @property
    def name(self) -> str: ...

    def run(self, compiled: Compiled) -> T_co: ...


@dataclass(frozen=True)
class FunctionPass(Generic[T]):
    """A pass made of a function of the compiled graph."""

    name: str
    function: Callable[[Compiled], T]

    def run(self, compiled: Compiled) -> T:
        return self.function(compiled)


class Analyses:
    """Pass results by pass, typed by the pass that made them."""

    def __init__(self) -> None:
        self._results: dict[str, Any] = {}

    def __getitem__(self, key: Pass[T]) -> T:
        return self._results[key.name]

    def __setitem__(self, key: Pass[T], value: T) -> None:
        self._results[key.name] = value

    def __contains__(self, key: Pass[Any]) -> bool:
        return key.name in self._results

    def names(self) -> list[str]:
        """The passes that ran, in the order they ran."""
        return list(self._results)


@dataclass
class Compiled:
    """The result of compiling a spec: the typed graph and the analyses of its passes."""

    graph: Graph
    header: SpecHeader
    doc: LoadedDoc
    params: dict[str, Any] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    """The limits it was compiled under; building and exporting check their own budgets against them."""
    analyses: Analyses = field(default_factory=Analyses, repr=False, compare=False)
    block_docs: dict[str, LoadedDoc] = field(default_factory=dict, repr=False, compare=False)
    """Blocks written in another file (the library, an included spec): name -> that file's document."""

    def block_pos(self, name: str) -> Pos:
        """Where the block ``name`` is defined, naming its file when that is not the spec."""
        doc = self.block_docs.get(name, self.doc)
        pos = doc.pos(("blocks", name), key=True)
        return pos if doc is self.doc else Pos(pos.line, pos.col, doc.file)

    def analysis(self, key: Pass[T]) -> T:
        """A pass's result, running it now if it has not run (analyses only some commands need)."""
        if key not in self.analyses:
            self.analyses[key] = key.run(self)
        return self.analyses[key]

    @property
    def costs(self) -> CostReport:
        """Each layer's cost (also in node meta ``cost``), per scope and in total."""
        return self.analyses[COSTS]

    @property
    def warnings(self) -> list[Diagnostic]:
        """Located W-code diagnostics (archc/passes/warnings.py): the spec is valid, but probably not what was meant."""
        return self.analyses[WARNINGS]

    def receptive_fields(self) -> dict[str, Field | None]:
        """Each layer's receptive field by name (None where no spatial input reaches it), computed on first use:
        building modules and exporting ONNX never need them."""
        return self.analysis(RECEPTIVE_FIELDS)

    def schedule(self) -> Schedule:
        """The layers that run, in order, with their input types and liveness (archc/passes/schedule.py), computed
        on first use and read by every writer: PyTorch source, ONNX, the resources estimate."""
        return self.analysis(SCHEDULE)


class InternalError(Exception):
    """A bug in archc (a broken IR invariant, a pass failing on a node), never a user mistake."""


def _lint(compiled: Compiled) -> None:
    compiled.graph.lint(typed=True)


def _check_budgets(compiled: Compiled) -> None:
    try:
        check_budgets(compiled.costs, compiled.limits)
    except Problem as problem:
        raise SpecError([_budget_diagnostic(problem, compiled.graph, compiled.doc)]) from None


def _budget_diagnostic(problem: Problem, graph: Graph, doc: LoadedDoc) -> Diagnostic:
    """A whole-model budget error, located at the layer that weighs most in it."""
    by_params = "(limit max_params)" in problem.message

    def weight(node: Node) -> int:
        cost = node.meta["cost"]
        return cost.params + cost.buffers if by_params else node.out_type.nbytes if node.out_type else 0

    layers = [n for n in graph.nodes() if not n.is_input and "cost" in n.meta]
    if not layers:
        return Diagnostic(problem.code, problem.message, doc.file, doc.pos(("body",), key=True))
    big = max(layers, key=weight)
    what = "parameters and buffers" if by_params else "bytes of output"
    return Diagnostic(problem.code, f"{problem.message}; the largest layer is '{big.name}' with {weight(big):,} {what}",
                      doc.file, big.pos, big.name)


LINT: Pass[None] = FunctionPass("lint", _lint)
"""The IR's invariants (archc/ir/graph.py: ports, types, scopes, acyclic, outputs)."""
COSTS: Pass[CostReport] = FunctionPass("costs", lambda c: analyse_costs(c.graph))
BUDGETS: Pass[None] = FunctionPass("budgets", _check_budgets)
"""Whole-model limits (max_params, max_activation_bytes): E501 at the layer that weighs most."""
WARNINGS: Pass[list[Diagnostic]] = FunctionPass("warnings", lambda c: find_warnings(c.graph))
RECEPTIVE_FIELDS: Pass[dict[str, Field | None]] = FunctionPass("receptive_fields",
                                                               lambda c: analyse_receptive_fields(c.graph))
"""On demand (summary, diagrams): not in :data:`PASSES`."""
SCHEDULE: Pass[Schedule] = FunctionPass("schedule", lambda c: schedule_graph(c.graph))
"""On demand (emitters, the resources estimate): not in :data:`PASSES`."""

PASSES: list[Pass[Any]] = [LINT, COSTS, BUDGETS, WARNINGS]
"""Run on every compiled graph, in this order (each may read the analyses of those above it)."""


def run_passes(compiled: Compiled, passes: list[Pass[Any]] | None = None) -> None:
    """Run ``passes`` (default :data:`PASSES`) top to bottom; a bug is an :class:`InternalError` naming the pass
    (and the node, when the pass names one); a user mistake raises :class:`SpecError` as it is."""
    for p in PASSES if passes is None else passes:
        try:
            compiled.analyses[p] = p.run(compiled)
        except GraphLintError as exc:
            raise InternalError(f"pass {p.name}: {exc}") from exc
        except NodeFailure as exc:
            raise InternalError(f"pass {p.name}: node {exc.node}: {exc.message}") from exc
