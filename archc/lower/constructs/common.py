"""What the constructs share: validating a construct's mapping, opening its scope, adding its merge node."""

from __future__ import annotations

from typing import Any

from archc.ir.graph import Scope
from archc.lower.context import Ctx, Lowering, Source
from archc.spec.model import StepCommon
from archc.spec.report import DocPath

BODY_FIELDS = ("body", "paths")
"""Fields holding nested steps: lowered later in their own scope, never evaluated as expressions here."""


def parse(lowerer: Lowering, model: type[StepCommon], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], layer: str, deferred: tuple[str, ...] = ()) -> Any:
    """The construct's spec, its fields evaluated except nested steps and the ``deferred`` ones (validated as written:
    a stage's `args`, evaluated once per copy)."""
    raw = {k: v for k, v in body.items() if k not in ("from", "if")}
    nested = {k: raw.pop(k) for k in (*BODY_FIELDS, *deferred) if k in raw}
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


def enter(lowerer: Lowering, ctx: Ctx, ident: str | None, anon: str, kind: str, where: DocPath,
          label: str = "") -> Ctx:
    if not ident:
        return ctx.transparent(anon)
    inner = ctx.named(ident)
    lowerer.graph.add_scope(Scope(inner.scope, kind, label or ident, lowerer.report.pos(where, key=True)))
    return inner


def merge_node(lowerer: Lowering, op: str, params: Any, where: DocPath, ctx: Ctx, inner: Ctx, ident: str | None,
               anon: str, inputs: list[Source]) -> Source:
    name = inner.scope if ident else anon
    return lowerer.add_node(name, op, params, where, inner if ident else ctx, inputs)
