"""Block calls: arguments checked against the block's declaration, then the body expanded in its own scope."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from archc.ir.graph import Scope
from archc.lower.names import NameTable
from archc.lower.untyped import AfterError
from archc.spec.model import COMMON_KEYS
from archc.spec.report import DocPath, describe

if TYPE_CHECKING:
    from archc.lower.lowerer import Ctx, Lowerer, Result, Source

ARG_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "any": (object,),
}
_REQUIRED = object()


def declared_args(decl: dict[str, Any]) -> dict[str, tuple[tuple[type, ...], Any]]:
    """name -> (accepted types, default or _REQUIRED)."""
    out: dict[str, tuple[tuple[type, ...], Any]] = {}
    for name, value in decl.items():
        if isinstance(value, dict) and set(value) <= {"type", "default", "doc"} and "type" in value:
            # `k: {type: any, default: 1}`: a default whose type alone would be too narrow
            types = ARG_TYPES.get(str(value["type"]), (object,))
            out[name] = (types, value.get("default", _REQUIRED))
        elif isinstance(value, str) and value in ARG_TYPES:
            out[name] = (ARG_TYPES[value], _REQUIRED)
        elif isinstance(value, bool):
            out[name] = ((bool,), value)
        elif isinstance(value, float):
            out[name] = ((int, float), value)
        else:
            out[name] = ((type(value),) if value is not None else (object,), value)
    return out


def bind_args(lowerer: Lowerer, block: str, given: dict[str, Any], where: DocPath, layer: str) -> dict | None:
    """Check call arguments (already evaluated) against the declaration; report every problem."""
    decl = declared_args(lowerer.header.blocks[block].args)
    bound: dict[str, Any] = {}
    ok = True
    meant: set[str] = set()  # declared arguments a misspelt one stands for: not reported missing as well
    for name, value in given.items():
        if name not in decl:
            close = difflib.get_close_matches(name, list(decl), n=1)
            meant.update(close)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f"; it takes: {', '.join(decl)}" if decl else "; it takes no arguments")
            lowerer.report.error("E106", f"block '{block}' has no argument '{name}'{hint}", where + (name,), layer,
                                 key=True)
            ok = False
            continue
        types, _ = decl[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(t.__name__ for t in types)
            lowerer.report.error("E106", f"argument '{name}' of block '{block}' expects {want}; found "
                                         f"{describe(value)}", where + (name,), layer)
            ok = False
        bound[name] = value
    for name, (_, default) in decl.items():
        if name not in bound:
            if default is _REQUIRED and name in meant:
                ok = False
            elif default is _REQUIRED:
                want = " or ".join(t.__name__ for t in decl[name][0])
                lowerer.report.error("E106", f"block '{block}' needs argument '{name}' ({want}; it has no default)",
                                     where, layer, key=True)
                ok = False
            else:
                bound[name] = default
    return bound if ok else None


def call_block(lowerer: Lowerer, block: str, body: dict[str, Any], where: DocPath, ctx: Ctx,
               inputs: list[Source], ident: str | None, anon: str, *, given: dict[str, Any] | None = None) -> Result:
    layer = ctx.layer(ident, anon)
    if block in ctx.blocks:
        chain = " -> ".join([*ctx.blocks[ctx.blocks.index(block):], block])
        lowerer.report.error("E205", f"block '{block}' calls itself ({chain})", where, layer, key=True)
        return None, None
    if len(ctx.blocks) >= lowerer.limits.max_block_depth:
        lowerer.report.error("E501", f"blocks nested deeper than {lowerer.limits.max_block_depth}", where, layer)
        return None, None
    if len(inputs) != 1:
        lowerer.report.error("E204", f"a block takes one input; found {len(inputs)}", where, layer)
        return None, None
    if given is None:
        raw = {k: v for k, v in body.items() if k not in COMMON_KEYS}
        given = lowerer.substitute_fields(raw, lowerer.values_for(ctx, inputs), where, layer)
        if given is None:
            return None, None
    args = bind_args(lowerer, block, given, where, layer)
    if args is None:
        return None, None
    values: Mapping[str, Any] = {**lowerer.params, **args}
    t = lowerer.graph.node(inputs[0]).out_type if inputs[0] is not None else None
    if t is not None:
        values = {**values, "in_channels": t.channels, "in_shape": list(t.shape)}
    else:
        values = AfterError(values)  # an `if:` in the body reading the input's shape stays quiet too
    # a block call is always a scope, like an nn.Sequential child: named by its id, else by its index
    inner = ctx.named(ident) if ident else ctx.at(anon)
    pos = lowerer.report.doc.pos(where, key=True)
    inner = replace(inner, table=NameTable(), values=values, blocks=(*ctx.blocks, block),
                    call_lines=(*ctx.call_lines, pos.line))
    lowerer.graph.add_scope(Scope(inner.scope, "block", block, pos))
    out = lowerer.steps(lowerer.header.blocks[block].body, ("blocks", block, "body"), inner, inputs[0])
    return out, inner.table
