"""`split`: one tensor cut along an axis into parts of given sizes (`split: {sizes: [64, 192], axis: 0}`), lowered
as `chunk` is (archc/lower/constructs/chunk.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.lower.budget import UNKNOWN, Count, Counter, value_of
from archc.lower.constructs.chunk import lower_parts
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.spec.model import SplitSpec
from archc.spec.report import DocPath


def split(lowerer: Lowering, model: type[SplitSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    return lower_parts(lowerer, model, body, where, ctx, inputs, ident, anon)


def count_split(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    """One `slice` per size, when the sizes are known before lowering."""
    sizes = value_of(body.get("sizes"), scope)
    return counter.clamp(len(sizes), 0) if sizes is not UNKNOWN and isinstance(sizes, list) else (0, 0)
