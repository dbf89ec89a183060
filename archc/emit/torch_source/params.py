"""The model class's constructor: the spec's params, with the spec's values as defaults.

Which constructor numbers come from a param is found by compiling the spec again with that param changed: a param is
written into the model's constructors when the only differences are literals holding the param's value (``classes``
in ``nn.Linear(2048, classes)``). A param whose change reaches further (channel counts derived from it, layers
switched by it) cannot be followed by the generated class: its constructor then refuses any other value and says
to regenerate the source with ``--set``, so the class never builds a module the spec would not.
"""

from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass, field
from typing import Any

from archc import expr
from archc.compiler import Compiled, _compile
from archc.errors import SpecError

from .body import Item
from .text import RESERVED, py_value


@dataclass
class ModelParams:
    signature: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    """Lines refusing values of the params the class cannot follow."""


def model_params(compiled: Compiled, items: list[Item]) -> ModelParams:
    raw = dict(compiled.header.params)
    derived = {name for name, value in raw.items() if expr.is_expression(value)}
    # a param other params are computed from cannot change alone
    derived |= {name for value in raw.values() if expr.is_expression(value) for name in raw if name in str(value)}
    direct = {item.name: item for item in items if item.node.name == item.name and item.code.module}
    trees = {name: ast.parse(item.code.module or "", mode="eval").body for name, item in direct.items()}
    replaced: dict[int, str] = {}  # id(literal node in `trees`) -> the param it holds
    out = ModelParams()
    for name, value in compiled.params.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED:
            continue  # no Python argument can carry it; the source is for the spec's value only
        out.signature.append(f"{name}: {_annotation(value)} = {py_value(value)}")
        if name in derived or not _follow(compiled, name, value, trees, replaced):
            test = (f"not {name}" if value else name) if isinstance(value, bool) else f"{name} != {py_value(value)}"
            out.checks += [f"if {test}:  # it changes more than constructor numbers",
                           f'    raise ValueError("{name}: to change it, regenerate this source with --set '
                           f'{name}=...")']
    if replaced:
        for item_name, tree in trees.items():
            if any(id(n) in replaced for n in ast.walk(tree)):
                item = direct[item_name]
                item.code = type(item.code)(_fill(tree, replaced), item.code.call, item.code.inplace)
    return out


def _annotation(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.25
    return None


def _follow(compiled: Compiled, name: str, value: Any, trees: dict[str, ast.expr], replaced: dict[int, str]) -> bool:
    """Whether the model's constructors can take ``name`` from the argument; marks its literals in ``trees``."""
    other = _changed(value)
    if other is None:
        return False
    overrides = {k: _text(v) for k, v in compiled.params.items() if not expr.is_expression(compiled.header.params[k])}
    overrides[name] = _text(other)
    try:
        changed = _compile(compiled.doc, overrides, compiled.limits)
    except SpecError:
        return False
    from . import _torch_codes


    base_graph, new_graph = compiled.graph, changed.graph
    if [(n.name, n.op, base_graph.input_names(n.name)) for n in base_graph.nodes()] != \
            [(n.name, n.op, new_graph.input_names(n.name)) for n in new_graph.nodes()]:
        return False
    if dict(base_graph.outputs) != dict(new_graph.outputs):
        return False
    base_codes, new_codes = _torch_codes(base_graph), _torch_codes(new_graph)
    marks: list[int] = []
    for node_name, code in base_codes.items():
        new = new_codes[node_name]
        if (code.call, code.inplace) != (new.call, new.inplace):
            return False
        if code.module == new.module:
            continue
        if node_name not in trees or code.module is None or new.module is None:
            return False
        found = _literal_changes(trees[node_name], ast.parse(new.module, mode="eval").body, value, other)
        if found is None:
            return False
        marks.extend(found)
    if any(mark in replaced for mark in marks):
        return False
    replaced.update(dict.fromkeys(marks, name))
    return True


def _literal_changes(base: ast.AST, new: ast.AST, value: Any, other: Any) -> list[int] | None:
    """ids of the literals of ``base`` that hold ``value`` where ``new`` holds ``other``; None for any other
    difference."""
    a, b = _literal(base), _literal(new)
    if a is not _NOT and b is not _NOT:
        if type(a) is type(b) and a == b:
            return []
        return [id(base)] if type(a) is type(value) and a == value and b == other else None
    if type(base) is not type(new):
        return None
    marks: list[int] = []
    for (field_a, value_a), (_, value_b) in zip(ast.iter_fields(base), ast.iter_fields(new)):
        if isinstance(value_a, list):
            if not isinstance(value_b, list) or len(value_a) != len(value_b):
                return None
            pairs = list(zip(value_a, value_b))
        else:
            pairs = [(value_a, value_b)]
        for x, y in pairs:
            if isinstance(x, ast.AST) and isinstance(y, ast.AST):
                found = _literal_changes(x, y, value, other)
                if found is None:
                    return None
                marks.extend(found)
            elif x != y and field_a not in ("ctx",):
                return None
    return marks


_NOT = object()


def _literal(node: ast.AST) -> Any:
    if not isinstance(node, (ast.Constant, ast.Tuple, ast.UnaryOp)):
        return _NOT
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return _NOT


def _fill(tree: ast.expr, replaced: dict[int, str]) -> str:
    class Fill(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST:
            if id(node) in replaced:
                return ast.Name(replaced[id(node)])
            return super().generic_visit(node)

    return ast.unparse(Fill().visit(tree))


def _text(value: Any) -> str:
    """A value as ``--set`` text, which the compiler reads back with YAML 1.2 core rules."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
