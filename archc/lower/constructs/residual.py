"""The structural constructs: residual, branches, stage and group."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from archc.ir.graph import Scope
from archc.lower.blocks import call_block
from archc.lower.budget import stage_fits
from archc.ops.conv import ConvParams
from archc.ops.merge import ConcatParams
from archc.ops.norm import BatchNormParams
from archc.ops.tensor_pad import PadChannelsParams
from archc.spec.model import BranchesSpec, GroupSpec, ResidualSpec, ShortcutSpec, StageSpec, StepCommon
from archc.spec.report import DocPath

if TYPE_CHECKING:
    from archc.lower.lowerer import Ctx, Lowerer, Result, Source

BODY_FIELDS = ("body", "paths")
"""Fields holding nested steps: lowered later in their own scope, never evaluated as expressions here."""


def parse(lowerer: Lowerer, model: type[StepCommon], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], layer: str) -> Any:
    raw = {k: v for k, v in body.items() if k not in ("from", "if")}
    nested = {k: raw.pop(k) for k in BODY_FIELDS if k in raw}
    if isinstance(raw.get("shortcut"), list):
        nested["shortcut"] = raw.pop("shortcut")
    values = lowerer.values_for(ctx, inputs)
    resolved = lowerer.substitute_fields(raw, values, where, layer)
    if resolved is None:
        return None
    spec = lowerer.report.validate(model, {**resolved, **nested}, where, layer)
    if spec is not None and len(inputs) != 1:
        lowerer.report.error("E204", f"a construct takes one input; found {len(inputs)}", (*where, "from"), layer,
                             key=True)
        return None
    return spec


def enter(lowerer: Lowerer, ctx: Ctx, ident: str | None, anon: str, kind: str, where: DocPath,
          label: str = "") -> Ctx:
    if not ident:
        return ctx.transparent(anon)
    inner = ctx.named(ident)
    lowerer.graph.add_scope(Scope(inner.scope, kind, label or ident, lowerer.report.doc.pos(where, key=True)))
    return inner


def merge_node(lowerer: Lowerer, op: str, params: Any, where: DocPath, ctx: Ctx, inner: Ctx, ident: str | None,
               anon: str, inputs: list[Source]) -> Source:
    name = inner.scope if ident else anon
    return lowerer.add_node(name, op, params, where, inner if ident else ctx, inputs)


def residual(lowerer: Lowerer, model: type[ResidualSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
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


def _identity_fits(lowerer: Lowerer, spec: ResidualSpec, where: DocPath, ctx: Ctx, x: Source, y: Source,
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


def _shortcut(lowerer: Lowerer, spec: ResidualSpec, where: DocPath, ctx: Ctx, x: Source, y: Source) -> Source:
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
                                      lowerer.report.doc.pos(where, key=True)))
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


def branches(lowerer: Lowerer, model: type[BranchesSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
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


def _single_step_path(lowerer: Lowerer, path: Any, where: DocPath, ctx: Ctx, x: Source, name: str | None,
                      anon: str) -> Source:
    """A path given as one step (not a list) takes the path's name as its id: `branch1: {basic_conv: ...}`."""
    kind, body, common = lowerer.split_step(path, where)
    if kind is None:
        return None
    at = where + (kind,) if isinstance(path, dict) else where
    if not lowerer.condition(common, at, ctx, ctx.layer(common.get("id") or name, anon)):
        return x
    ident = common.get("id") or name
    if ident and ident in ctx.table.entries:
        if common.get("id"):
            lowerer.duplicate_id(ctx, ident, (*at, "id"))
        else:
            lowerer.duplicate_id(ctx, ident, where, key=True)
        return None
    out, inner = lowerer.lower_step(kind, body, common, at, ctx, x, ident, anon)
    if ident:
        lowerer.define(ctx, ident, out, at, inner)
    return out


def stage(lowerer: Lowerer, model: type[StageSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    layer = ctx.layer(ident, anon)
    spec = parse(lowerer, model, body, where, ctx, inputs, layer)
    if spec is None:
        return None, None
    if spec.block is not None and spec.body is not None:
        lowerer.report.error("E103", "a stage repeats either a `block` or a `body`; found both", (*where, "body"),
                             layer, key=True)
        return None, None
    if spec.block is None and spec.body is None:
        lowerer.report.error("E102", "a stage needs `block` (a block name) or `body` (steps) to repeat", where, layer,
                             key=True)
        return None, None
    if spec.block is not None and spec.block not in lowerer.header.blocks:
        known = list(lowerer.header.blocks)
        close = difflib.get_close_matches(spec.block, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else (
            f"; blocks of this spec: {', '.join(known)}" if known else "; this spec defines no `blocks:`")
        lowerer.report.error("E104", f"unknown block '{spec.block}'{hint}", where + ("block",), layer)
        return None, None
    if lowerer._over_budget:  # already reported once; every later step would exceed it too
        return None, None
    if not stage_fits(lowerer, spec, ctx.values, ctx.blocks, where, layer):
        return None, None
    if ident or {"prefix", "start"} & spec.model_fields_set:
        inner = enter(lowerer, ctx, ident, anon, "stage", where, spec.block or "")
    else:  # an unnamed stage is one step like any other: its copies live under its list index, never beside it
        inner = ctx.at(anon)
        lowerer.graph.add_scope(Scope(inner.scope, "stage", spec.block or "", lowerer.report.doc.pos(where, key=True)))
    current = inputs[0]
    for i in range(spec.repeat):
        copy = f"{spec.prefix}{spec.start + i}"
        if not ident and _taken(lowerer, inner.prefix + copy, where, layer):
            return None, None
        if spec.block is not None:
            args = {**spec.args, **(spec.first if i == 0 else {})}
            current, table = call_block(lowerer, spec.block, {}, where, inner, [current], copy, "", given=args)
        else:
            cctx = enter(lowerer, inner, copy, "", "repeat", where)
            current = lowerer.steps(spec.body, where + ("body",), cctx, current)
            table = cctx.table
        lowerer.define(inner, copy, current, where, table)
        if current is None:
            break
    return current, inner.table if ident else None


def _taken(lowerer: Lowerer, path: str, where: DocPath, layer: str) -> bool:
    """True (after reporting) when a copy of an unnamed stage would take the name of an earlier step beside it."""
    if path not in lowerer.graph and path not in lowerer.graph.scopes:
        return False
    lowerer.report.error("E203", f"this stage has no `id`, so its copies are named in the enclosing scope, and copy "
                                 f"'{path}' takes the name of an earlier step; give the stage an `id`, or a "
                                 "`prefix`/`start` that names its copies apart", where, layer, key=True)
    return True


def group(lowerer: Lowerer, model: type[GroupSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    spec = parse(lowerer, model, body, where, ctx, inputs, ctx.layer(ident, anon))
    if spec is None:
        return None, None
    inner = enter(lowerer, ctx, ident, anon, "group", where, spec.label)
    return lowerer.steps(spec.body, where + ("body",), inner, inputs[0]), inner.table if ident else None


HANDLERS = {"residual": residual, "branches": branches, "stage": stage, "group": group}
