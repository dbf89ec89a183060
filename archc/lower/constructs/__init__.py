"""The structural constructs, each registered once with its spec model, its lowering and its budget count.

A new construct is a module here and one entry in :data:`CONSTRUCT_RULES`; a test holds this table equal to the
spec's :data:`archc.spec.model.CONSTRUCTS`, and the expansion budget refuses to count a construct missing from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archc.lower.budget import CountRule
from archc.lower.constructs.branches import branches, count_branches
from archc.lower.constructs.chunk import chunk, count_chunk
from archc.lower.constructs.group import count_group, group
from archc.lower.constructs.residual import count_residual, residual
from archc.lower.constructs.split import count_split, split
from archc.lower.constructs.stage import count_stage, stage
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.spec.model import BranchesSpec, ChunkSpec, GroupSpec, ResidualSpec, SplitSpec, StageSpec, StepCommon
from archc.spec.report import DocPath

LowerRule = Callable[[Lowering, Any, dict[str, Any], DocPath, Ctx, list[Source], "str | None", str], Result]
"""A construct's lowering: (lowerer, its model, the step's mapping, where, ctx, inputs, id, anonymous name)."""


@dataclass(frozen=True)
class Construct:
    model: type[StepCommon]
    """The pydantic model its mapping is validated against."""
    lower: LowerRule
    count: CountRule
    """What it expands to for certain, counted before lowering (archc/lower/budget.py)."""


CONSTRUCT_RULES: dict[str, Construct] = {
    "residual": Construct(ResidualSpec, residual, count_residual),
    "branches": Construct(BranchesSpec, branches, count_branches),
    "stage": Construct(StageSpec, stage, count_stage),
    "group": Construct(GroupSpec, group, count_group),
    "chunk": Construct(ChunkSpec, chunk, count_chunk),
    "split": Construct(SplitSpec, split, count_split),
}
CONSTRUCT_COUNTS: dict[str, CountRule] = {name: rule.count for name, rule in CONSTRUCT_RULES.items()}
