"""`residual`: a body added to (or concatenated with) a shortcut of its input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.ir.graph import Scope
from archc.lower.budget import Count, Counter
from archc.lower.constructs.common import enter, merge_node, parse
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.ops.conv import ConvParams
from archc.ops.merge import ConcatParams
from archc.ops.norm import BatchNormParams
from archc.ops.tensor_pad import PadChannelsParams
from archc.spec.model import ResidualSpec, ShortcutSpec
from archc.spec.report import DocPath


def residual(lowerer: Lowering, model: type[ResidualSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
             inputs: list[Source], ident: str | None, anon: str) -> Result:
    spec = parse(lowerer, model, body, where, ctx, inputs, ctx.layer(ident, anon))
    if spec is None:
        return None, None
    x = inputs[0]
    inner = enter(lowerer, ctx, ident, anon, "residual", where)
    y = lowerer.steps(spec.body, where + ("body",), inner, x)
    shortcut = _shortcut(lowerer, spec, where + ("shortcut",), inner, x, y)
    if shortcut is _NO_MERGE:
        return y, inner.table if ident else None
    if spec.merge == "add" and not _identity_fits(lowerer, spec, where, ctx, x, y, ident, anon):
        # the failing add stays in the graph, untyped, so a partial diagram shows where the shapes part
        lowerer.add_node(inner.scope if ident else anon, "add", None, where, inner if ident else ctx, [y, shortcut],
                         failed=True)
        return None, None
    if spec.merge == "add":
        out = merge_node(lowerer, "add", None, where, ctx, inner, ident, anon, [y, shortcut])
    else:
        out = merge_node(lowerer, "concat", ConcatParams(), where, ctx, inner, ident, anon, [shortcut, y])
    return out, inner.table if ident else None


_NO_MERGE = "<none>"


def _identity_fits(lowerer: Lowering, spec: ResidualSpec, where: DocPath, ctx: Ctx, x: Source, y: Source,
                   ident: str | None, anon: str) -> bool:
    """False (after reporting) when the body changes the shape but the shortcut is the identity: the fix is a
    projection shortcut, which the generic shape mismatch of `add` would not say."""
    kind = spec.shortcut if isinstance(spec.shortcut, str) else (
        spec.shortcut.kind if isinstance(spec.shortcut, ShortcutSpec) and spec.shortcut.body is None else None)
    if kind != "identity" or x is None or y is None:
        return True
    tx, ty = lowerer.graph.node(x).out_type, lowerer.graph.node(y).out_type
    if tx is None or ty is None or (tx.rank == ty.rank and all(a == b or 1 in (a, b)
                                                                for a, b in zip(tx.shape, ty.shape))):
        return True  # equal, or broadcast as `add` allows
    site = f", in block '{ctx.blocks[-1]}' called on line {ctx.call_lines[-1]}" if ctx.blocks else ""
    lowerer.report.error("E301", f"the residual's body turns {tx} into {ty}, and the identity shortcut cannot be "
                                 f"added to that; write `shortcut: projection` (a 1x1 convolution and batch norm where "
                                 f"the shapes differ){site}", where, ctx.layer(ident, anon), key=True)
    return False


def _shortcut(lowerer: Lowering, spec: ResidualSpec, where: DocPath, ctx: Ctx, x: Source, y: Source) -> Source:
    sc = spec.shortcut
    if isinstance(sc, list):
        sctx = enter(lowerer, ctx, "shortcut", "", "shortcut", where)
        return lowerer.steps(sc, where, sctx, x)
    if isinstance(sc, str):
        sc = ShortcutSpec(kind=sc)
    if sc.body is not None:
        sctx = enter(lowerer, ctx, sc.id, "", "shortcut", where)
        return lowerer.steps(sc.body, where + ("body",), sctx, x)
    if sc.kind == "none":
        return _NO_MERGE
    if sc.kind == "identity" or x is None or y is None:
        return x
    tx, ty = lowerer.graph.node(x).out_type, lowerer.graph.node(y).out_type
    if tx is None or ty is None or tx == ty or spec.merge == "concat":
        return x
    stride = [_stride_between(a, b) for a, b in zip(tx.spatial, ty.spatial)]
    if "id" in sc.model_fields_set:
        sctx = enter(lowerer, ctx, sc.id, "", "shortcut", where, f"{sc.kind} shortcut")
    else:  # the default name lives under the residual's own path, so two anonymous residuals cannot collide
        sctx = ctx.at(ctx.anon + sc.id)
        lowerer.graph.add_scope(Scope(sctx.scope, "shortcut", f"{sc.kind} shortcut",
                                      lowerer.report.pos(where, key=True)))
    if sc.kind == "zero_pad":
        params = PadChannelsParams(out=ty.channels, s=stride)
        return lowerer.add_node(sctx.scope + ".0", "pad_channels", params, where, sctx, [x])
    conv = ConvParams(out=ty.channels, k=1, s=stride, bias=False)
    out = lowerer.add_node(sctx.scope + ".0", "conv", conv, where, sctx, [x])
    if sc.bn:
        out = lowerer.add_node(sctx.scope + ".1", "bn", BatchNormParams(), where, sctx, [out])
    return out


def _stride_between(size_in: int, size_out: int) -> int:
    """The stride of a 1x1 window that maps ``size_in`` positions to ``size_out``."""
    for s in range(1, size_in + 1):
        if (size_in - 1) // s + 1 == size_out:
            return s
    return 1


def count_residual(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    """The body and a shortcut given as steps (the merge and a projection depend on shapes: not counted)."""
    shortcut = body.get("shortcut")
    if isinstance(shortcut, dict):
        shortcut = shortcut.get("body")
    return counter.add(counter.steps(body.get("body"), scope, chain), counter.steps(shortcut, scope, chain))
