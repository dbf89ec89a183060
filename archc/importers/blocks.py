"""Blocks and stages from repeated scopes.

Scopes with the same structure (ops, ids, nesting; numbers aside) become calls of one block, innermost first, so an
inception module's `basic_conv`s are a block before the module is. Numbers that differ between the copies become the
block's arguments: equal ones share an argument, one that is always an integer multiple of another is written as an
expression of it (`$out * 4`), and a value most copies share is the default. A scope holding only calls of one block,
named `0, 1, ...` (or `prefix1, prefix2, ...`), becomes a `stage`; its first copy's differences are `first:`.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from archc.importers.flat import unique_name
from archc.importers.tree import Block, Branches, Call, Item, Leaf, Residual, Scope, Stage, children

Number = (int, float)


def _is_value(v: Any) -> bool:
    return (isinstance(v, Number) and not isinstance(v, bool)) or \
        (isinstance(v, list) and bool(v) and all(isinstance(x, int) and not isinstance(x, bool) for x in v))


def _params_sig(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, "#" if _is_value(v) else repr(v)) for k, v in params.items()))


def _sources_sig(items: list[Item]) -> tuple:
    """Where each step of a body reads from, by position (a read from outside the body makes it unique)."""
    outputs: dict[str, Any] = {item.output: n for n, item in enumerate(items)}
    for n, item in enumerate(items):  # a stage's copies by position too (C2f concatenates every bottleneck's output)
        if isinstance(item, Stage):
            outputs.update({copy.output: (n, k) for k, copy in enumerate(item.copies) if copy.output not in outputs})
    out: list[Any] = []
    for item in items:
        if item.source is None:
            out.append(None)
        elif all(s in outputs for s in item.source):
            out.append(tuple(outputs[s] for s in item.source))
        else:
            out.append(object())  # never equal: bodies reading outside themselves are not blocks
    return tuple(out)


def signature(item: Item) -> tuple:
    if isinstance(item, Leaf):
        layer = item.layer
        return ("leaf", layer.op if layer else "", item.name, _params_sig(layer.params if layer else {}))
    if isinstance(item, Residual):
        kind = item.shortcut if isinstance(item.shortcut, str) else _list_sig(item.shortcut)
        kind = "pi" if kind in ("identity", "projection") else kind  # identity where shapes match: one kind
        return ("res", item.merge, kind, _list_sig(item.body))
    if isinstance(item, Branches):
        return ("br", item.merge, item.axis, tuple(item.names), tuple(_list_sig(p) for p in item.paths))
    if isinstance(item, Scope):
        return ("scope", item.name, _list_sig(item.body))
    if isinstance(item, Call):
        return ("call", item.block, item.name, tuple(sorted(item.args)))
    if isinstance(item, Stage):
        return ("stage", item.block, item.name, item.prefix, item.start, tuple(sorted(item.args)),
                tuple(sorted(item.first)))
    return ("?",)


def _list_sig(items: list[Item]) -> tuple:
    return (tuple(signature(i) for i in items), _sources_sig(items))


def _values(item: Item, out: list[tuple[Any, str, Any, str]], path: str = "") -> None:
    """Every number of an item in traversal order, as (holder dict, key, value, the holder's path)."""
    name = getattr(item, "name", None)
    here = f"{path}_{name}" if path and name else (name or path)
    if isinstance(item, Leaf) and item.layer is not None:
        out.extend((item.layer.params, k, v, here) for k, v in sorted(item.layer.params.items()) if _is_value(v))
    elif isinstance(item, (Call, Stage)):
        out.extend((item.args, k, v, here) for k, v in sorted(item.args.items()) if _is_value(v))
        if isinstance(item, Stage):
            out.extend((item.first, k, v, here) for k, v in sorted(item.first.items()) if _is_value(v))
            out.append((item.__dict__, "repeat", item.repeat, here))  # a stage's length may be an argument
    if isinstance(item, Branches):
        for body, pname in zip(item.paths, item.names):
            for child in body:
                _values(child, out, f"{here}_{pname}" if here and pname else (pname or here))
        return
    for body in children(item):
        for child in body:
            _values(child, out, here if not isinstance(item, Scope) or path else "")


def _produced(items: list[Item], out: set[str]) -> set[str]:
    for item in items:
        out.add(item.output)
        if isinstance(item, Leaf) and item.layer is not None:
            out.add(item.layer.id)
        for body in children(item) + [c.instance for c in getattr(item, "copies", [])] + \
                [getattr(item, "instance", [])]:
            _produced(body, out)
    return out


def _reads_outside(body: list[Item]) -> bool:
    """Whether a step inside reads a value made outside the body (a block has one input: such a body is no block)."""
    inside = _produced(body, set())

    def outside(items: list[Item]) -> bool:
        return any(any(s not in inside for s in item.source or []) or any(outside(b) for b in children(item))
                   for item in items)
    return outside(body)


def _typed(items: list[Item]) -> bool:
    return any((isinstance(item, Scope) and item.kind is not None) or any(_typed(b) for b in children(item))
               for item in items)


def _height(item: Item) -> int:
    return max((1 + _height(c) if isinstance(c, Scope) else _height(c) for b in children(item) for c in b), default=0)


def _scopes(items: list[Item], out: list[tuple[list[Item], int]]) -> None:
    for n, item in enumerate(items):
        for body in children(item):
            _scopes(body, out)
        if isinstance(item, Scope) and item.name is not None:
            out.append((items, n))


def _arg_name(holder_path: str, key: str, taken: set[str]) -> str:
    base = key if key not in taken else f"{holder_path}_{key}" if holder_path else key
    base = re.sub(r"\W", "_", base).strip("_") or key
    if base[0].isdigit():
        base = f"{key}{base}"
    return unique_name(base, taken, separator="")


def _make_block(name: str, scopes: list[Scope]) -> tuple[Block, list[dict[str, Any]]]:
    """The block the scopes are copies of, and each copy's argument values."""
    template = copy.deepcopy(scopes[0])
    _unify_shortcuts(template, scopes)
    slots: list[tuple[Any, str, Any, str]] = []
    _values(template, slots)
    per_copy: list[list[Any]] = []
    for scope in scopes:
        found: list[tuple[Any, str, Any, str]] = []
        _values(scope, found)
        per_copy.append([v for _, _, v, _ in found])
    columns = [_Column(values[i] for values in per_copy) for i in range(len(slots))]
    args: dict[str, Any] = {}
    arg_columns: dict[_Column, str] = {}
    taken: set[str] = set()
    for (holder, key, _, where), column in zip(slots, columns):
        if len(set(map(repr, column))) == 1:
            continue  # the same in every copy: a literal in the body
        if column in arg_columns:
            holder[key] = f"${arg_columns[column]}"
            continue
        base = next((name for col, name in arg_columns.items() if _multiple(column, col)), None)
        if base is not None:
            holder[key] = f"${base} * {column[0] // arg_columns_lookup(arg_columns, base)[0]}"
            continue
        half = next((name for col, name in arg_columns.items() if _half(column, col)), None)
        if half is not None:  # `p: $k // 2`: the padding that keeps the size, whatever the kernel
            holder[key] = f"${half} // 2"
            continue
        arg = _arg_name(where, key, taken)
        arg_columns[column] = arg
        common, count = Counter(map(repr, column)).most_common(1)[0]
        default = next(v for v in column if repr(v) == common) if count * 2 > len(column) else None
        mixed = len({type(v) for v in column}) > 1  # a kernel that is 3 in some copies and [1, 7] in others
        if mixed:
            args[arg] = {"type": "any", "default": default} if default is not None else "any"
        else:
            args[arg] = default if default is not None else _type_name(column[0])
        holder[key] = f"${arg}"
    values = [{arg: column[i] for column, arg in arg_columns.items()} for i in range(len(scopes))]
    values = [{k: v for k, v in vals.items() if repr(_default_of(args[k])) != repr(v)} for vals in values]
    return Block(name, args, template.body), values


def _residuals(item: Item, out: list[Residual]) -> list[Residual]:
    if isinstance(item, Residual):
        out.append(item)
    for body in children(item):
        for child in body:
            _residuals(child, out)
    return out


def _unify_shortcuts(template: Scope, scopes: list[Scope]) -> None:
    """Copies whose residual is an identity in some and a projection in others share `shortcut: projection` (the
    identity where shapes match)."""
    mine = _residuals(template, [])
    for scope in scopes:
        for target, theirs in zip(mine, _residuals(scope, [])):
            if theirs.shortcut == "projection":
                target.shortcut, target.shortcut_id = "projection", theirs.shortcut_id
                target.shortcut_bn = theirs.shortcut_bn


def _default_of(declared: Any) -> Any:
    return declared.get("default") if isinstance(declared, dict) else declared


class _Column(tuple):
    """One number's values across the copies; hashable even when the values are lists (kernel sizes)."""

    def __hash__(self) -> int:
        return hash(repr(tuple(self)))

    def __eq__(self, other: object) -> bool:
        return repr(tuple(self)) == repr(tuple(other)) if isinstance(other, tuple) else False


def arg_columns_lookup(arg_columns: dict[tuple, str], name: str) -> tuple:
    return next(col for col, arg in arg_columns.items() if arg == name)


def _multiple(column: tuple, base: tuple) -> bool:
    if not all(isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and b > 0
               for a, b in zip(column, base)):
        return False
    ratios = {a // b for a, b in zip(column, base) if a % b == 0}
    return len(ratios) == 1 and all(a % b == 0 for a, b in zip(column, base)) and ratios.pop() > 1


def _half(column: tuple, base: tuple) -> bool:
    return all(isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool)
               and b >= 1 and a == b // 2 for a, b in zip(column, base))


def _type_name(value: Any) -> str:
    return "list" if isinstance(value, list) else "float" if isinstance(value, float) else "int"


def _kind(items: list[Item]) -> str:
    for item in items:
        if isinstance(item, Residual):
            return "residual_block" if item.merge == "add" else "dense_layer"
        if isinstance(item, Branches):
            return "branch_block"
    first = next((i for i in items if isinstance(i, Leaf) and i.layer is not None), None)
    return f"{first.layer.op}_block" if first is not None and first.layer is not None else "block"


def _block_name(scope: Scope, taken: set[str], reserved: set[str]) -> str:
    if scope.kind is not None:  # the source's module type (`C2f` -> c2f): its own name for this block
        kind = re.sub(r"\W", "_", scope.kind).strip("_")
        if re.fullmatch(r"[A-Za-z_]\w*", kind):  # as the source spells it where the lower case is an op (`Conv`)
            return unique_name(kind.lower() if kind.lower() not in reserved else kind, taken, separator="")
    base = re.sub(r"\d+[a-z]?$", "", scope.name or "")
    base = re.sub(r"\W", "_", base).strip("_")
    if not re.fullmatch(r"[A-Za-z_]+", base):  # `Conv2d_1a_3x3`: no name to keep
        base = _kind(scope.body)
    return unique_name(base, taken, separator="")


def recover_blocks(body: list[Item], reserved: set[str]) -> list[Block]:
    """Turn repeated scopes into block calls (in place); returns the blocks, innermost first."""
    blocks: list[Block] = []
    taken = set(reserved)
    typed = _typed(body)  # the source names its modules' types: those are the blocks
    while True:
        found: list[tuple[list[Item], int]] = []
        _scopes(body, found)
        if not found:
            break
        low = min(_height(holder[n]) for holder, n in found)
        level = [(holder, n) for holder, n in found if _height(holder[n]) == low]
        groups: dict[tuple, list[tuple[list[Item], int]]] = {}
        for holder, n in level:
            scope = holder[n]
            groups.setdefault((scope.kind, _list_sig(scope.body)), []).append((holder, n))  # type: ignore[attr-defined]
        changed = False
        for (kind, _), members in groups.items():
            body_of_first = members[0][0][members[0][1]].body  # type: ignore[attr-defined]
            once = len(members) < 2 and (kind is None or _reads_outside(body_of_first))
            single = (Leaf, Call) if typed and kind is None else Leaf  # an untyped wrapper of one module: a group
            if once or (len(body_of_first) == 1 and isinstance(body_of_first[0], single)):
                continue  # once only (unless the source names it a module type), or a single layer: nothing to share
            scopes = [holder[n] for holder, n in members]
            block, values = _make_block(_block_name(scopes[0], taken, reserved), scopes)  # type: ignore[arg-type]
            blocks.append(block)
            for (holder, n), vals in zip(members, values):
                old = holder[n]
                holder[n] = Call(output=old.output, source=old.source, block=block.name, name=old.name, args=vals,  # type: ignore[attr-defined]
                                 instance=old.body)  # type: ignore[attr-defined]
            changed = True
        if changed:
            _stages(body)
        else:
            # the lowest scopes are unique: freeze them as groups (rename so they are not found again)
            for holder, n in level:
                holder[n] = _Frozen(holder[n])  # type: ignore[arg-type]
    _thaw(body)
    for block in blocks:
        _thaw(block.body)
    _stages(body)
    return blocks


class _Frozen(Scope):
    def __init__(self, scope: Scope) -> None:
        super().__init__(output=scope.output, source=scope.source, name=None, body=scope.body)
        self.real_name = scope.name


def _thaw(items: list[Item]) -> None:
    for n, item in enumerate(items):
        for body in children(item):
            _thaw(body)
        if isinstance(item, Call):  # a copy's own steps name its weights: they must be thawed too
            _thaw(item.instance)
        if isinstance(item, Stage):
            for copy in item.copies:
                _thaw(copy.instance)
        if isinstance(item, _Frozen):
            items[n] = Scope(output=item.output, source=item.source, name=item.real_name, body=item.body)


def _copy_names(names: list[str | None]) -> tuple[str, int] | None:
    if not names or any(n is None for n in names):
        return None
    m = re.fullmatch(r"(.*?)(\d+)", names[0] or "")
    if m is None:
        return None
    prefix, start = m.group(1), int(m.group(2))
    if names != [f"{prefix}{start + i}" for i in range(len(names))]:
        return None
    return prefix, start


def _stages(items: list[Item]) -> None:
    for item in items:
        for body in children(item):
            _stages(body)
    for n, item in enumerate(items):
        if isinstance(item, Scope) and item.kind is not None:
            continue  # a module of the source's own (a Bottleneck's cv1, cv2) stays one, to become its block
        if isinstance(item, Scope) and item.body and len(item.body) > 1:
            stage = _stage_of(item.body, item.name)
            if stage is not None and len(stage.copies) == len(item.body):
                stage.output, stage.source = item.output, item.source
                items[n] = stage
                continue
            _partial_stages(item.body)


def _partial_stages(body: list[Item]) -> None:
    """Runs of at least two copies inside a scope become stages naming their copies in that scope."""
    i = 0
    while i < len(body):
        best: Stage | None = None
        for j in range(len(body), i + 1, -1):
            best = _stage_of(body[i:j], None)
            if best is not None:
                break
        if best is None:
            i += 1
            continue
        best.output, best.source, best.partial = body[i + len(best.copies) - 1].output, body[i].source, True
        body[i:i + len(best.copies)] = [best]
        i += 1


def _stage_of(items: list[Item], name: str | None) -> Stage | None:
    """The items as one stage: calls of one block named prefix+start, prefix+start+1, ..., equal but the first."""
    if len(items) < 2 or not all(isinstance(c, Call) for c in items):
        return None
    calls: list[Call] = items  # type: ignore[assignment]
    if len({c.block for c in calls}) != 1 or any(c.source is not None for c in calls[1:]):
        return None
    naming = _copy_names([c.name for c in calls])
    if naming is None:
        return None
    rest = [c.args for c in calls[1:]]
    if any(r != rest[0] for r in rest):
        return None
    common = rest[0]
    first = {k: v for k, v in calls[0].args.items() if common.get(k, _MISSING) != v}
    if any(k not in calls[0].args for k in common):
        return None  # the first copy takes a default the others override
    prefix, start = naming
    return Stage(output=calls[-1].output, source=calls[0].source, name=name, block=calls[0].block,
                 repeat=len(calls), args=common, first=first, prefix=prefix, start=start, copies=calls)


_MISSING = object()
