"""Anti-unification of block instances: the constructor arguments of one class per block definition.

Instances of a block with the same local names, ops and wiring share a class. Constructor literals that differ across
them become the class's arguments: named after a declared block argument (or ``in_channels``) whose value they equal
in every instance, written as a multiple or quotient of one, else given a descriptive name. A chain of layers present
only in some instances (a projection shortcut) is built under a boolean argument named after it. Whatever cannot be
expressed this way is not outlined, so the emitted code is never wrong.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from archc.ir.graph import Node, Scope

from .body import Item
from .text import RESERVED, attr_ok, camel_case, py_value

INPUT = "<in>"
NO_DEFAULT = object()
# PyTorch constructor keywords the ops leave out at their default: a keyword present in only some instances takes
# this value in the others
TORCH_DEFAULTS: dict[str, dict[str, Any]] = {
    **{f"nn.Conv{n}d": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True} for n in (1, 2, 3)},
    **{f"nn.BatchNorm{n}d": {"eps": 1e-05, "momentum": 0.1, "affine": True} for n in (1, 2, 3)},
    **{f"nn.MaxPool{n}d": {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False} for n in (1, 2, 3)},
    **{f"nn.AvgPool{n}d": {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}
       for n in (1, 2, 3)},
    "nn.Linear": {"bias": True},
    "nn.Dropout": {"p": 0.5},
}


@dataclass
class Instance:
    scope: Scope
    items: list[Item]
    """Local items; a source outside the instance is :data:`INPUT`."""
    output: str
    in_channels: int | None
    input_node: str
    output_node: Node


@dataclass
class ClassPlan:
    name: str
    block: str
    params: list[tuple[str, Any]]
    """Constructor arguments in order, each with its default (or :data:`NO_DEFAULT`)."""
    items: list[Item]
    output: str
    guards: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instance scope path -> its argument values."""

    def call(self, values: dict[str, Any], texts: dict[str, str] | None = None) -> str:
        """``Bottleneck(64, 64, downsample=True)``; ``texts`` overrides the source of some values."""
        texts = texts or {}
        parts = []
        for name, default in self.params:
            text = texts.get(name) or py_value(values[name])
            if default is NO_DEFAULT:
                parts.append(text)
            elif name in texts or not _same(values[name], default):
                parts.append(f"{name}={text}")
        return f"{self.name}({', '.join(parts)})"


@dataclass
class _Hole:
    values: list[Any]
    """Per instance; :data:`NO_DEFAULT` where the instance lacks the item."""
    hint: str
    """A descriptive name: the constructor keyword it fills (``padding``), else the layer's name."""
    name: str = ""


def plan_classes(instances: list[Instance], taken: set[str], defaults: dict[str, dict[str, Any]],
                 declared: dict[str, Any]) -> list[ClassPlan]:
    """Classes for instances of one block; instances no class can express are left out (emitted unrolled)."""
    variants: dict[tuple, list[Instance]] = {}
    for inst in instances:
        variants.setdefault(_wiring(inst.items, inst.output), []).append(inst)
    groups = _merge_guarded(list(variants.values()))
    plans = []
    for members, chain in groups:
        plan = _unify(members, chain, taken, defaults, declared)
        if plan is not None:
            taken.add(plan.name)
            defaults[plan.name] = {n: d for n, d in plan.params if d is not NO_DEFAULT}
            plans.append(plan)
    return plans


def _wiring(items: list[Item], output: str) -> tuple:
    return (output, *((i.name, i.label, tuple(i.sources), i.code.call, i.code.steps, i.code.inplace,
                       i.code.module is None)
                      for i in items))


def _merge_guarded(variants: list[list[Instance]]) -> list[tuple[list[Instance], list[str]]]:
    """Variants that are the largest one without a chain of layers under one attribute join it, guarded."""
    variants.sort(key=lambda group: -len(group[0].items))
    out: list[tuple[list[Instance], list[str]]] = []
    used: set[int] = set()
    for i, full in enumerate(variants):
        if i in used:
            continue
        members, chain = list(full), []
        for j in range(i + 1, len(variants)):
            if j in used:
                continue
            found = _chain_difference(full[0], variants[j][0])
            if found is not None and (not chain or found == chain):
                chain = found
                members.extend(variants[j])
                used.add(j)
        out.append((members, chain))
    return out


def _chain_difference(full: Instance, part: Instance) -> list[str] | None:
    """The layers of ``full`` missing from ``part`` when they are a chain under one attribute that ``part`` skips
    (its users read the chain's input instead), built only from stateful-or-not layers read by nothing else."""
    names = {i.name for i in part.items}
    # unnamed stateless steps are numbered by position, which the chain shifts: they are compared by wiring below
    extra = [i for i in full.items if i.name not in names and not _renumbered(i)]
    if not extra:
        return None
    tops = {i.name.split(".")[0] for i in extra}
    if len(tops) != 1 or any(i.name.split(".")[0] in tops for i in part.items):
        return None
    if not any(i.code.module for i in extra):
        return None  # the guard tests the attribute, which only modules set
    for prev, item in itertools.pairwise(extra):
        if item.sources != [prev.name]:
            return None
    start, end = extra[0].sources, extra[-1].name
    if len(start) != 1 or start[0] in {i.name for i in extra}:
        return None
    extra_names = {i.name for i in extra}
    position = {i.name: k for k, i in enumerate(full.items)}
    first = position[extra[0].name]
    # every other reader of the chain's input comes before the chain; the chain's output is read only by items that,
    # in `part`, read its input in the same port
    for item in full.items:
        if item.name in extra_names:
            continue
        if start[0] in item.sources and position[item.name] > first:
            return None
        if any(s in extra_names and s != end for s in item.sources):
            return None
    replaced = {i.name: [start[0] if s == end else s for s in i.sources] for i in full.items}
    if full.output in extra_names:
        return None
    part_items = [i for i in full.items if i.name not in extra_names]
    mapped = [replace(i, sources=replaced[i.name]) for i in part_items]
    same = _positional(mapped, full.output) == _positional(part.items, part.output)
    return [i.name for i in extra] if same else None


def _renumbered(item: Item) -> bool:
    return item.code.module is None and item.name.rsplit(".", 1)[-1].isdigit()


def _positional(items: list[Item], output: str) -> tuple:
    """:func:`_wiring` with unnamed stateless steps named by their order (their names hold no state)."""
    rename = {i.name: f"#{k}" for k, i in enumerate(i for i in items if _renumbered(i))}
    mapped = [replace(i, name=rename.get(i.name, i.name), sources=[rename.get(s, s) for s in i.sources])
              for i in items]
    return _wiring(mapped, rename.get(output, output))


def _unify(members: list[Instance], chain: list[str], taken: set[str], defaults: dict[str, dict[str, Any]],
           declared: dict[str, Any]) -> ClassPlan | None:
    rep = max(members, key=lambda inst: len(inst.items))
    holes: list[_Hole] = []
    templates: dict[str, ast.expr] = {}
    for item in rep.items:
        if item.code.module is None:
            continue
        trees = []
        for inst in members:
            other = next((i for i in inst.items if i.name == item.name), None)
            trees.append(ast.parse(other.code.module, mode="eval").body if other and other.code.module else None)
        template = _unify_nodes(trees, holes, defaults, item.name.replace(".", "_"))
        if template is None:
            return None
        templates[item.name] = template
    if not _name_holes(holes, members, declared, chain):
        return None
    block = rep.scope.label
    name = _class_name(block, taken)
    attribute = chain[0].split(".")[0] if chain else ""
    flag = attribute
    if chain:  # a block's boolean argument that says which instances have the chain (its `if:`) names the flag
        presence = [any(i.name == chain[0] for i in inst.items) for inst in members]
        flag = next((arg for arg in declared if all(
            type(inst.scope.args.get(arg)) is bool and inst.scope.args.get(arg) == has
            for inst, has in zip(members, presence))), attribute)
    params: list[tuple[str, Any]] = []
    values: dict[str, dict[str, Any]] = {inst.scope.path: {} for inst in members}
    for hole in holes:
        for param in _names_in(hole.name):
            if param in dict(params):
                continue
            if param in RESERVED or not attr_ok(param):
                return None
            params.append((param, declared.get(param, NO_DEFAULT) if param in declared else NO_DEFAULT))
            for inst, value in zip(members, hole.values):
                values[inst.scope.path][param] = _argument(inst, param, value, declared)
    if flag and flag not in dict(params):
        if not attr_ok(flag) or flag in RESERVED:
            return None
        default = declared.get(flag)
        params.append((flag, default if isinstance(default, bool) else False))
        for inst in members:
            values[inst.scope.path][flag] = any(i.name == chain[0] for i in inst.items)
    params.sort(key=lambda p: p[1] is not NO_DEFAULT)  # arguments without a default come first
    items = []
    for item in rep.items:
        if item.name in templates and not _is_literal(templates[item.name]):
            rendered = _render(templates[item.name], holes)
            code = replace(item.code, module=rendered)
        else:
            code = item.code
        items.append(replace(item, code=code, guard=flag if item.name in chain else "", record=""))
    return ClassPlan(name, block, params, items, rep.output, {flag: attribute} if flag else {}, values)


def _names_in(expression: str) -> list[str]:
    return [n.id for n in ast.walk(ast.parse(expression, mode="eval")) if isinstance(n, ast.Name)]


def _argument(inst: Instance, name: str, value: Any, declared: dict[str, Any]) -> Any:
    """An argument's value in an instance: a declared argument's bound value, its input channels, or (a descriptive
    argument) the hole's own value."""
    if name == "in_channels" and name not in declared:
        return inst.in_channels
    if name in declared:
        return _plain(inst.scope.args.get(name))
    return _plain(value)


def _class_name(block: str, taken: set[str]) -> str:
    base = camel_case(block)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    return name


# --- constructor templates --------------------------------------------------------------------------------------------
def _literal_value(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return NO_DEFAULT


def _is_literal(node: ast.AST) -> bool:
    return not any(isinstance(n, ast.Name) and n.id.startswith("__hole") for n in ast.walk(node))


def _unify_nodes(trees: list[ast.expr | None], holes: list[_Hole], defaults: dict[str, dict[str, Any]],
                 hint: str) -> ast.expr | None:
    """One expression for all instances' constructors (None where an instance lacks it); differing literals become
    ``__holeN`` names. None when the constructors differ in anything but literals."""
    present = [t for t in trees if t is not None]
    values = [_literal_value(t) if t is not None else NO_DEFAULT for t in trees]
    if all(v is not NO_DEFAULT for v, t in zip(values, trees) if t is not None):
        if all(_same(v, values[trees.index(present[0])]) for v, t in zip(values, trees) if t is not None):
            return present[0]
        holes.append(_Hole(values, hint))
        return ast.Name(f"__hole{len(holes) - 1}")
    if any(type(t) is not type(present[0]) for t in present):
        return None
    if isinstance(present[0], ast.Call):
        return _unify_call(trees, holes, defaults, hint)
    if all(ast.dump(t) == ast.dump(present[0]) for t in present):
        return present[0]
    return None


def _unify_call(trees: list[ast.expr | None], holes: list[_Hole], defaults: dict[str, dict[str, Any]],
                hint: str) -> ast.expr | None:
    calls = [t if isinstance(t, ast.Call) else None for t in trees]
    first = next(c for c in calls if c is not None)
    func = ast.unparse(first.func)
    if any(c is not None and (ast.unparse(c.func) != func or len(c.args) != len(first.args)) for c in calls):
        return None
    args = []
    for k in range(len(first.args)):
        arg = _unify_nodes([c.args[k] if c else None for c in calls], holes, defaults, f"{hint}_arg{k}")
        if arg is None:
            return None
        args.append(arg)
    keys: list[str] = []
    for c in calls:
        for kw in c.keywords if c else []:
            if kw.arg is None:
                return None
            if kw.arg not in keys:
                keys.append(kw.arg)
    known = defaults.get(func, {})
    keywords = []
    for key in keys:
        column: list[ast.expr | None] = []
        for c in calls:
            if c is None:
                column.append(None)
                continue
            kw = next((k for k in c.keywords if k.arg == key), None)
            if kw is None:
                if key not in known:
                    return None
                column.append(ast.Constant(known[key]) if not isinstance(known[key], tuple) else
                              ast.parse(repr(known[key]), mode="eval").body)
            else:
                column.append(kw.value)
        value = _unify_nodes(column, holes, defaults, key)
        if value is None:
            return None
        keywords.append(ast.keyword(key, value))
    return ast.Call(first.func, args, keywords)


def _render(template: ast.expr, holes: list[_Hole]) -> str:
    class Fill(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            if node.id.startswith("__hole"):
                return ast.parse(holes[int(node.id[6:])].name, mode="eval").body
            return node

    return ast.unparse(Fill().visit(template))


def _plain(value: Any) -> Any:
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    return type(a) is type(b) and a == b


# --- naming the arguments ---------------------------------------------------------------------------------------------
def _name_holes(holes: list[_Hole], members: list[Instance], declared: dict[str, Any], chain: list[str]) -> bool:
    """Name each hole after an argument (or an expression of one); False when a hole only guarded layers have cannot
    be named so (its value would be unknown in the instances without them)."""
    candidates: list[tuple[str, list[Any]]] = [
        (arg, [_plain(inst.scope.args.get(arg, NO_DEFAULT)) for inst in members]) for arg in declared]
    candidates.append(("in_channels", [inst.in_channels for inst in members]))
    by_values: dict[str, str] = {}
    for index, hole in enumerate(holes):
        key = repr([_plain(v) for v in hole.values])
        if key in by_values:
            hole.name = by_values[key]
            continue
        hole.name = _expression(hole.values, candidates) or ""
        if not hole.name:
            if any(v is NO_DEFAULT for v in hole.values):
                return False
            hole.name = f"__descriptive{index}"
        by_values[key] = hole.name
    used = {n for h in holes for n in _names_in(h.name) if not h.name.startswith("__")} | set(declared)
    renamed: dict[str, str] = {}
    for hole in holes:  # descriptive names last, so they never take an argument's name
        if hole.name.startswith("__descriptive"):
            if hole.name not in renamed:
                renamed[hole.name] = _unique_name(_identifier(hole.hint), used)
                used.add(renamed[hole.name])
            hole.name = renamed[hole.name]
    return True


def _expression(values: list[Any], candidates: list[tuple[str, list[Any]]]) -> str | None:
    pairs = [(k, v) for k, v in enumerate(values) if v is not NO_DEFAULT]
    for name, bound in candidates:
        if all(_same(v, bound[k]) for k, v in pairs):
            return name
    for name, bound in candidates:
        ints = [bound[k] for k, _ in pairs]
        if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in ints):
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) for _, v in pairs):
            continue
        first_k, first_v = pairs[0]
        if first_v % bound[first_k] == 0 and first_v // bound[first_k] > 1:
            factor = first_v // bound[first_k]
            if all(v == bound[k] * factor for k, v in pairs):
                return f"{name} * {factor}"
        if first_v and bound[first_k] % first_v == 0 and bound[first_k] // first_v > 1:
            divisor = bound[first_k] // first_v
            if all(v == bound[k] // divisor for k, v in pairs):
                return f"{name} // {divisor}"
    return None


def _identifier(hint: str) -> str:
    """``hint`` as a Python name: a layer named by its index (``0_arg0``) or holding ``-`` (``block1-0``) is not one."""
    name = re.sub(r"\W", "_", hint)
    return name if name.isidentifier() else f"layer{name}"


def _unique_name(base: str, used: set[str]) -> str:
    name, k = base, 1
    while name in used or name in RESERVED:
        k += 1
        name = f"{base}_{k}"
    return name
