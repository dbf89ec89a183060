"""`group`: steps gathered in a named scope (a diagram cluster), with no computation of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.lower.budget import Count, Counter
from archc.lower.constructs.common import enter, parse
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.spec.model import GroupSpec
from archc.spec.report import DocPath


def group(lowerer: Lowering, model: type[GroupSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    spec = parse(lowerer, model, body, where, ctx, inputs, ctx.layer(ident, anon))
    if spec is None:
        return None, None
    inner = enter(lowerer, ctx, ident, anon, "group", where, spec.label)
    return lowerer.steps(spec.body, where + ("body",), inner, inputs[0]), inner.table if ident else None


def count_group(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    return counter.steps(body.get("body"), scope, chain)
