"""`stage`: copies of a block (or of a step list), each taking the previous copy's output."""

from __future__ import annotations

import difflib
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from archc.errors import Problem
from archc.ir.graph import Scope
from archc.lower.blocks import call_block
from archc.lower.budget import Count, Counter, bind, value_of
from archc.lower.constructs.common import enter, parse
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.lower.steps import BadStep, parse_step
from archc.spec.model import StageSpec
from archc.spec.report import DocPath


def stage(lowerer: Lowering, model: type[StageSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    layer = ctx.layer(ident, anon)
    spec = parse(lowerer, model, body, where, ctx, inputs, layer, deferred=("args", "first"))
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
        known = [name for name in lowerer.header.blocks if name not in lowerer.report.block_docs]  # the spec's own
        close = difflib.get_close_matches(spec.block, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else (
            f"; blocks of this spec: {', '.join(known)}" if known else "; this spec defines no `blocks:`")
        lowerer.report.error("E104", f"unknown block '{spec.block}'{hint}", where + ("block",), layer)
        return None, None
    # `args` are evaluated once per copy (they may read `copy`), always against the stage's input
    values = lowerer.values_for(ctx, inputs)
    first_scope = ChainMap(copy_values(lowerer, ctx, 0, spec.repeat), values)
    counted = spec.model_copy(update={"args": bind({}, spec.args, first_scope),
                                      "first": bind({}, spec.first, first_scope)})
    if not lowerer.budget.stage_fits(counted, ctx.values, ctx.blocks, lowerer.layer_count(), where, layer):
        return None, None
    if ident or {"prefix", "start"} & spec.model_fields_set:
        inner = enter(lowerer, ctx, ident, anon, "stage", where, spec.block or "")
    else:  # an unnamed stage is one step like any other: its copies live under its list index, never beside it
        inner = ctx.at(anon)
        lowerer.graph.add_scope(Scope(inner.scope, "stage", spec.block or "", lowerer.report.pos(where, key=True)))
    current = inputs[0]
    for i in range(spec.repeat):
        copy = f"{spec.prefix}{spec.start + i}"
        if not ident and _taken(lowerer, inner.prefix + copy, where, layer):
            return None, None
        scope = ChainMap(copy_values(lowerer, ctx, i, spec.repeat), values)
        if spec.block is not None:
            args = lowerer.substitute_fields(spec.args, scope, (*where, "args"), layer)
            first = lowerer.substitute_fields(spec.first, scope, (*where, "first"), layer) if i == 0 else {}
            if args is None or first is None:
                return None, None
            current, table = call_block(lowerer, spec.block, {}, where, inner, [current], copy, "",
                                        given={**args, **first})
        else:
            cctx = enter(lowerer, inner, copy, "", "repeat", where)
            cctx = replace(cctx, values=ChainMap(copy_values(lowerer, ctx, i, spec.repeat), cctx.values))
            current = lowerer.steps(spec.body, where + ("body",), cctx, current)
            table = cctx.table
        if not ctx.blocks:
            lowerer.block_counter.index += 1
        lowerer.define(inner, copy, current, where, table)
        if current is None:
            break
    # an unnamed stage's copies are still reachable by index path (`3.0`); a transparent one's are in ctx's table
    return current, inner.table if inner.table is not ctx.table else None


class _Uncounted(dict[str, int]):
    """Copy values whose `block_count` could not be counted: reading it says why instead of `unknown name`."""

    def __contains__(self, key: object) -> bool:
        return key == "block_count" or super().__contains__(key)

    def __missing__(self, key: str) -> int:
        if key == "block_count":
            raise Problem("E403", "'block_count' is unknown: a `repeat` or `if:` of a stage outside blocks reads "
                                  "more than the params, so the network's stage copies cannot be counted beforehand")
        raise KeyError(key)


def copy_values(lowerer: Lowering, ctx: Ctx, index: int, repeat: int) -> dict[str, int]:
    """The names a copy's expressions may read: its index among the stage's copies and their number, and, for a
    stage outside any block, its index among all such stages' copies in the network and their number."""
    values = {"copy": index, "copies": repeat}
    if not ctx.blocks:
        values["block_index"] = lowerer.block_counter.index
        if lowerer.block_counter.count is None:
            return _Uncounted(values)
        values["block_count"] = lowerer.block_counter.count
    return values


def count_network_blocks(steps: Any, scope: Mapping[str, Any]) -> int | None:
    """The copies of every stage outside a block (in groups, residual and branch bodies, stage bodies), counted before
    lowering for `block_count`; None when a `repeat` or an `if:` cannot be evaluated from the params alone."""
    total = 0
    for raw in steps if isinstance(steps, list) else []:
        step = parse_step(raw)
        if isinstance(step, BadStep):
            continue
        if "if" in step.common:
            included = value_of(step.common["if"], scope)
            if not isinstance(included, bool):
                return None
            if not included:
                continue
        nested: list[Any] = [step.body.get("body")]
        if step.kind == "residual":
            shortcut = step.body.get("shortcut")
            nested.append(shortcut.get("body") if isinstance(shortcut, dict) else shortcut)
        elif step.kind == "branches":
            paths = step.body.get("paths")
            paths = list(paths.values()) if isinstance(paths, dict) else paths if isinstance(paths, list) else []
            nested.extend(path if isinstance(path, list) else [path] for path in paths)
        elif step.kind not in ("group", "stage"):
            continue
        inner = 0
        for sub in nested:
            sub_count = count_network_blocks(sub, scope)
            if sub_count is None:
                return None
            inner += sub_count
        if step.kind == "stage":
            repeat = value_of(step.body.get("repeat"), scope)
            if type(repeat) is not int:
                return None
            inner = repeat * (1 + inner)
        total += inner
    return total


def _taken(lowerer: Lowering, path: str, where: DocPath, layer: str) -> bool:
    """True (after reporting) when a copy of an unnamed stage would take the name of an earlier step beside it."""
    if path not in lowerer.graph and path not in lowerer.graph.scopes:
        return False
    lowerer.report.error("E203", f"this stage has no `id`, so its copies are named in the enclosing scope, and copy "
                                 f"'{path}' takes the name of an earlier step; give the stage an `id`, or a "
                                 "`prefix`/`start` that names its copies apart", where, layer, key=True)
    return True


def count_stage(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    """``repeat`` copies of the block call (the first with its `first` arguments) or of the body."""
    repeat = value_of(body.get("repeat"), scope)
    if type(repeat) is not int or repeat <= 0:
        return 0, 0
    block = body.get("block")
    if "body" in body:
        copy = rest = counter.steps(body["body"], scope, chain)
    elif isinstance(block, str) and block in counter.header.blocks:
        args = body.get("args") if isinstance(body.get("args"), dict) else {}
        first = body.get("first") if isinstance(body.get("first"), dict) else {}
        rest_args = bind({}, args, scope)
        # a stage's copies are block calls, so each lowers one step list: the block's body
        copy = counter.block(block, bind(rest_args, first, scope), chain)
        rest = copy if not first else counter.block(block, rest_args, chain)
    else:
        return 0, 0
    return counter.copies(repeat, copy, rest)
