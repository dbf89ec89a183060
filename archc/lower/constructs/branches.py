"""`branches`: parallel paths from one input, merged by concat, add or mul."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.lower.budget import Count, Counter
from archc.lower.constructs.common import enter, merge_node, parse
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.ops.merge import ConcatParams
from archc.spec.model import BranchesSpec
from archc.spec.report import DocPath


def branches(lowerer: Lowering, model: type[BranchesSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
             inputs: list[Source], ident: str | None, anon: str) -> Result:
    spec = parse(lowerer, model, body, where, ctx, inputs, ctx.layer(ident, anon))
    if spec is None:
        return None, None
    x = inputs[0]
    inner = enter(lowerer, ctx, ident, anon, "branches", where)
    named = isinstance(spec.paths, dict)
    items = spec.paths.items() if named else enumerate(spec.paths)
    outs: list[Source] = []
    for key, path in items:
        path_where = where + ("paths", key)
        if isinstance(path, list):
            pctx = enter(lowerer, inner, str(key), "", "path", path_where) if named else \
                inner.transparent(f"{inner.anon}{key}")
            out = lowerer.steps(path, path_where, pctx, x)
            if named:
                lowerer.define(inner, str(key), out, path_where, pctx.table)
        else:
            out = _single_step_path(lowerer, path, path_where, inner, x, str(key) if named else None,
                                    f"{inner.anon}{key}")
        outs.append(out)
    op, params = {"concat": ("concat", ConcatParams(axis=spec.axis)), "add": ("add", None),
                  "mul": ("mul", None)}[spec.merge]
    return merge_node(lowerer, op, params, where, ctx, inner, ident, anon, outs), inner.table if ident else None


def _single_step_path(lowerer: Lowering, path: Any, where: DocPath, ctx: Ctx, x: Source, name: str | None,
                      anon: str) -> Source:
    """A path given as one step (not a list) takes the path's name as its id: `branch1: {basic_conv: ...}`."""
    step = lowerer.parse_step(path, where)
    if step is None:
        return None
    at, common = step.at(where), step.common
    if not lowerer.condition(common, at, ctx, ctx.layer(common.get("id") or name, anon)):
        return x
    ident = common.get("id") or name
    if ident and ident in ctx.table.entries:
        if common.get("id"):
            lowerer.duplicate_id(ctx, ident, (*at, "id"))
        else:
            lowerer.duplicate_id(ctx, ident, where, key=True)
        return None
    out, inner = lowerer.lower_step(step, at, ctx, x, ident, anon)
    if ident:
        lowerer.define(ctx, ident, out, at, inner)
    return out


def count_branches(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    """Each path (a step list, or one step) and the merge."""
    paths = body.get("paths")
    items = list(paths.values()) if isinstance(paths, dict) else paths if isinstance(paths, list) else []
    total: Count = (1, 0) if items else (0, 0)  # the merge
    for path in items:
        total = counter.add(total, counter.steps(path, scope, chain) if isinstance(path, list) else
                            counter.step(path, scope, chain))
        if counter.full(total):
            break
    return total
