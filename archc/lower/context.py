"""What the parts of lowering share: where a step list is lowered (:class:`Ctx`), and what a construct or a block
call may ask of the lowerer (:class:`Lowering`), so that they depend on this interface and the lowerer on them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from archc.ir.graph import Graph
from archc.limits import Limits
from archc.lower.budget import Budget
from archc.lower.names import NameTable
from archc.lower.steps import Step
from archc.ops.base import OpParams
from archc.spec.model import SpecHeader
from archc.spec.report import DocPath, Reporter

Source = str | None
"""A node whose output feeds the next step; None when an earlier error poisoned the path."""
Result = tuple[Source, NameTable | None]
"""A step's output, and the names defined inside it when it is a named construct."""


@dataclass(frozen=True)
class Ctx:
    """Where a step list is being lowered."""

    prefix: str
    """Names of steps with an `id` start with this (``layer1.0.``)."""
    anon: str
    """Names of steps without an `id` start with this, followed by their index."""
    scope: str
    """The innermost named scope."""
    table: NameTable
    values: Mapping[str, Any]
    """Params and block arguments visible to expressions."""
    blocks: tuple[str, ...] = ()
    """The chain of block calls being expanded (recursion guard)."""
    call_lines: tuple[int, ...] = ()
    """The line of each of those calls, for naming the call site of an error inside a block."""

    def layer(self, ident: str | None, anon: str) -> str:
        """The layer path of a step: its id in this scope, else its full anonymous path (which has the scope)."""
        return self.prefix + ident if ident else anon

    def named(self, ident: str) -> Ctx:
        return self.at(self.prefix + ident)

    def at(self, path: str) -> Ctx:
        """A new named scope at ``path``."""
        return replace(self, prefix=path + ".", anon=path + ".", scope=path, table=self.table.child())

    def transparent(self, anon_name: str) -> Ctx:
        return replace(self, anon=anon_name + ".")


@dataclass
class BlockCounter:
    """Stage copies outside any block, network-wide: `block_index` of the next one, and `block_count` (None when the
    params alone cannot tell)."""

    index: int = 0
    count: int | None = None


class Lowering(Protocol):
    """The lowerer as constructs and block calls see it (implemented by :class:`archc.lower.lowerer.Lowerer`)."""

    header: SpecHeader
    report: Reporter
    limits: Limits
    graph: Graph
    params: dict[str, Any]
    budget: Budget
    bad_defaults: set[tuple[str, str]]
    """(block, argument) whose default failed to evaluate: reported once, not once per call."""
    block_counter: BlockCounter

    def steps(self, steps: list[Any], where: DocPath, ctx: Ctx, current: Source) -> Source:
        """Lower a step list in ``ctx``, the first step reading ``current``; returns the last step's output."""
        ...

    def parse_step(self, raw: Any, where: DocPath) -> Step | None:
        """The step at ``where``, or None after reporting why it is not one."""
        ...

    def condition(self, common: dict[str, Any], where: DocPath, ctx: Ctx, layer: str = "") -> bool:
        """The value of a step's `if:` (True without one; False after reporting a bad one)."""
        ...

    def lower_step(self, step: Step, where: DocPath, ctx: Ctx, current: Source, ident: str | None,
                   anon: str) -> Result:
        """Resolve a step's inputs and lower it."""
        ...

    def define(self, ctx: Ctx, ident: str, output: Source, where: DocPath, inner: NameTable | None = None) -> None:
        ...

    def duplicate_id(self, ctx: Ctx, ident: str, where: DocPath, *, key: bool = False) -> None:
        ...

    def values_for(self, ctx: Ctx, inputs: list[Source]) -> Mapping[str, Any]:
        """Expression scope for a step: params, block arguments, and its input's shape when known."""
        ...

    def substitute_fields(self, raw: dict[str, Any], values: Mapping[str, Any], where: DocPath,
                          layer: str = "") -> dict | None:
        """``raw`` with its expressions evaluated, or None after reporting the ones that fail."""
        ...

    def add_node(self, name: str, op: str, params: OpParams | None, where: DocPath, ctx: Ctx, inputs: list[Source],
                 *, failed: bool = False) -> Source:
        """Add a layer fed by ``inputs`` and infer its type; None when it is refused or cannot be typed."""
        ...

    def layer_count(self) -> int:
        ...
