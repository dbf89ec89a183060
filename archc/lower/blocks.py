"""Block calls: arguments checked against the block's declaration, then the body expanded in its own scope."""

from __future__ import annotations

import difflib
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from archc import expr
from archc.errors import Problem
from archc.ir.graph import Scope
from archc.lower.block_args import REQUIRED, accepts, declared_args, type_names
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.lower.names import NameTable
from archc.lower.untyped import AfterError, UntypedInput
from archc.spec.model import COMMON_KEYS
from archc.spec.report import DocPath, describe


def bind_args(lowerer: Lowering, block: str, given: dict[str, Any], where: DocPath, layer: str,
              shape: Mapping[str, Any]) -> dict | None:
    """Check call arguments (already evaluated) against the declaration, then evaluate the defaults of the others in
    declaration order (a default may read params, the input's shape and the arguments above it); report every
    problem."""
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
        if not accepts(types, value):
            lowerer.report.error("E106", f"argument '{name}' of block '{block}' expects {type_names(types)}; found "
                                         f"{describe(value)}", where + (name,), layer)
            ok = False
        bound[name] = value
    failed: set[str] = set()  # a default reading one that failed stays quiet: one error for one cause
    scope = ChainMap(bound, AfterError({}, unknown=failed), shape, lowerer.params)
    for name, (types, default) in decl.items():
        if name in bound:
            continue
        if default is REQUIRED:
            if name not in meant:
                lowerer.report.error("E106", f"block '{block}' needs argument '{name}' ({type_names(types)}; it has no "
                                             "default)", where, layer, key=True)
            ok = False
            continue
        value = _default(lowerer, block, name, default, types, scope, where, layer)
        if value is REQUIRED:
            failed.add(name)
            ok = False
        else:
            bound[name] = value
    return bound if ok else None


def _default(lowerer: Lowering, block: str, name: str, default: Any, types: tuple[type, ...], scope: Mapping[str, Any],
             call: DocPath, layer: str) -> Any:
    """The value of a default (an expression is evaluated in ``scope``); REQUIRED after reporting a problem, which
    points at the default and names the call it was evaluated for."""
    if (block, name) in lowerer.bad_defaults:
        return REQUIRED  # reported for an earlier call: the cause is the default, which is in one place
    spec = lowerer.header.blocks[block].args[name]
    at: DocPath = ("blocks", block, "args", name, *(("default",) if isinstance(spec, dict) else ()))
    site = f" (for the call on line {lowerer.report.doc.pos(call, key=True).line})"
    try:
        value = expr.substitute(default, scope)
    except UntypedInput:
        return REQUIRED  # the input's shape is unknown after an earlier error, which is the one reported
    except Problem as problem:
        lowerer.bad_defaults.add((block, name))
        lowerer.report.error(problem.code, f"default of argument '{name}': {problem.message}{site}", at, layer)
        return REQUIRED
    if not accepts(types, value):
        lowerer.bad_defaults.add((block, name))
        lowerer.report.error("E106", f"default of argument '{name}' of block '{block}' expects {type_names(types)}; "
                                     f"found {describe(value)}{site}", at, layer)
        return REQUIRED
    return value


def let_values(lowerer: Lowering, block: str, args: dict[str, Any], shape: Mapping[str, Any], call: DocPath,
               layer: str) -> dict[str, Any] | None:
    """A block's `let:` values, evaluated in order from the params, the input's shape, the arguments and the values
    above; None after reporting a problem (at the value, naming the call; once per block, not once per call)."""
    local: dict[str, Any] = {}
    for name, raw in lowerer.header.blocks[block].let.items():
        if (block, f"let {name}") in lowerer.bad_defaults:
            return None
        at: DocPath = ("blocks", block, "let", name)
        site = f" (for the call on line {lowerer.report.doc.pos(call, key=True).line})"
        if name in args:
            lowerer.bad_defaults.add((block, f"let {name}"))
            lowerer.report.error("E106", f"'{name}' is both an argument and a `let` value of block '{block}'; "
                                         "rename one", at, layer, key=True)
            return None
        try:
            local[name] = expr.substitute(raw, ChainMap(local, args, shape, lowerer.params))
        except UntypedInput:
            return None  # the input's shape is unknown after an earlier error, which is the one reported
        except Problem as problem:
            lowerer.bad_defaults.add((block, f"let {name}"))
            lowerer.report.error(problem.code, f"let '{name}': {problem.message}{site}", at, layer)
            return None
    return local


def call_block(lowerer: Lowering, block: str, body: dict[str, Any], where: DocPath, ctx: Ctx,
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
    t = lowerer.graph.node(inputs[0]).out_type if inputs[0] is not None else None
    # an expression (a default, an `if:` in the body) reading the shape of an input an error left untyped is quiet
    shape: Mapping[str, Any] = {"in_channels": t.channels, "in_shape": list(t.shape)} if t is not None else \
        AfterError({})
    args = bind_args(lowerer, block, given, where, layer, shape)
    if args is None:
        return None, None
    local = let_values(lowerer, block, args, shape, where, layer)
    if local is None:
        return None, None
    values: Mapping[str, Any] = {**lowerer.params, **args, **local}
    values = {**values, **shape} if t is not None else AfterError(values)
    # a block call is always a scope, like an nn.Sequential child: named by its id, else by its index
    inner = ctx.named(ident) if ident else ctx.at(anon)
    pos = lowerer.report.pos(where, key=True)
    inner = replace(inner, table=NameTable(), values=values, blocks=(*ctx.blocks, block),
                    call_lines=(*ctx.call_lines, pos.line))
    lowerer.graph.add_scope(Scope(inner.scope, "block", block, pos, dict(args)))
    out = lowerer.steps(lowerer.header.blocks[block].body, ("blocks", block, "body"), inner, inputs[0])
    return out, inner.table
