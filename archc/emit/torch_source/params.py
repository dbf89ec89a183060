"""The model class's constructor: the spec's params, with the spec's values as defaults.

Which constructor numbers come from a param is found by compiling the spec again with the number params changed
(all at once, else one at a time): a param is written into the model's constructors when the only differences are
literals holding its value (``classes`` in ``nn.Linear(2048, classes)``). A param whose change reaches further
(channel counts derived from it, numbers inside block classes), a switch or a string is not followed: the
constructor refuses any other value and says to regenerate the source with ``--set``, so the class never builds a
module the spec would not.
"""

from __future__ import annotations

import ast
import hashlib
import json
import keyword
from dataclasses import dataclass, field, replace
from typing import Any

from archc import expr
from archc.compiler import Compiled, recompile
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
    usable = [name for name in compiled.params
              if name.isidentifier() and not keyword.iskeyword(name) and name not in RESERVED]
    # a switch or a string changes structure more often than a number, and has no next value to try: not followed
    numbers = [name for name in usable if name not in derived and _changed(compiled.params[name], 0) is not None]
    marks = _param_marks(compiled, numbers)
    direct = {item.name: item for item in items if item.node.name == item.name and item.code.module}
    out = ModelParams()
    filled: dict[str, dict[int, str]] = {}  # item -> walk index of a literal in its constructor -> the param
    for name in usable:
        value = compiled.params[name]
        out.signature.append(f"{name}: {_annotation(value)} = {py_value(value)}")
        found = marks.get(name)
        if found is not None and all(node in direct for node, _ in found):
            for node, index in found:
                filled.setdefault(node, {})[index] = name
            continue
        test = (f"not {name}" if value else name) if isinstance(value, bool) else f"{name} != {py_value(value)}"
        out.checks += [f"if {test}:  # it changes more than constructor numbers",
                       f'    raise ValueError("{name}: to change it, regenerate this source with --set {name}=...")']
    for node, indices in filled.items():
        item = direct[node]
        item.code = replace(item.code, module=_fill(item.code.module or "", indices))
    return out


def _annotation(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _changed(value: Any, k: int) -> Any:
    """Another value for a number param (the ``k``-th of those changed together, so each change is told apart)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value + 1 + k
    if isinstance(value, float):
        return value / (2 + k) if value else 0.25 / (1 + k)
    return None


Marks = dict[str, list[tuple[str, int]]]
"""Param -> the literals holding it: (layer, index of the literal in ``ast.walk`` of its constructor)."""
_cache: dict[str, Marks] = {}


def _param_marks(compiled: Compiled, names: list[str]) -> Marks:
    """The followed params with their literals: all changed in one compile when that tells every change apart, else
    one compile each. Cached by the spec's content and params (a build writes model.py and builds the module)."""
    if not names:
        return {}
    key = hashlib.sha256(json.dumps([compiled.doc.data, compiled.params, names], sort_keys=True,
                                    default=repr).encode()).hexdigest()
    if key not in _cache:
        together = _marks(compiled, {name: _changed(compiled.params[name], k) for k, name in enumerate(names)})
        if together is None:
            together = {}
            for name in names:
                alone = _marks(compiled, {name: _changed(compiled.params[name], 0)})
                together.update(alone or {})
        _cache.clear()  # one spec at a time: the cache serves the repeated builds of one
        _cache[key] = together
    return _cache[key]


def _marks(compiled: Compiled, changes: dict[str, Any]) -> Marks | None:
    """Compile with ``changes``; where each difference is a constructor literal holding one changed param's value
    (and the new one), the literals of each; None for any other difference."""
    overrides = {k: _text(v) for k, v in compiled.params.items() if not expr.is_expression(compiled.header.params[k])}
    overrides.update({k: _text(v) for k, v in changes.items()})
    try:
        changed = recompile(compiled, overrides)
    except SpecError:
        return None
    from . import _torch_codes

    base_graph, new_graph = compiled.graph, changed.graph
    if [(n.name, n.op, base_graph.input_names(n.name)) for n in base_graph.nodes()] != \
            [(n.name, n.op, new_graph.input_names(n.name)) for n in new_graph.nodes()]:
        return None
    if dict(base_graph.outputs) != dict(new_graph.outputs):
        return None
    by_pair = {(compiled.params[name], new): name for name, new in changes.items()}
    if len(by_pair) != len(changes):
        return None
    base_codes, new_codes = _torch_codes(compiled), _torch_codes(changed)
    marks: Marks = {name: [] for name in changes}
    for node_name, code in base_codes.items():
        new = new_codes[node_name]
        if (code.call, code.steps, code.inplace) != (new.call, new.steps, new.inplace):
            return None
        if code.module == new.module:
            continue
        if code.module is None or new.module is None:
            return None
        base_tree = ast.parse(code.module, mode="eval").body
        found = _literal_changes(base_tree, ast.parse(new.module, mode="eval").body)
        if found is None:
            return None
        index = {id(n): i for i, n in enumerate(ast.walk(base_tree))}
        for literal, old, now in found:
            name = next((n for (v, w), n in by_pair.items() if _same(v, old) and _same(w, now)), None)
            if name is None:
                return None
            marks[name].append((node_name, index[id(literal)]))
    return marks


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _literal_changes(base: ast.AST, new: ast.AST) -> list[tuple[ast.AST, Any, Any]] | None:
    """The literals of ``base`` that differ in ``new`` (node, old value, new value); None for any other
    difference."""
    a, b = _literal(base), _literal(new)
    if a is not _NOT and b is not _NOT:
        return [] if _same(a, b) else [(base, a, b)]
    if type(base) is not type(new):
        return None
    marks: list[tuple[ast.AST, Any, Any]] = []
    for (name, value_a), (_, value_b) in zip(ast.iter_fields(base), ast.iter_fields(new)):
        if isinstance(value_a, list):
            if not isinstance(value_b, list) or len(value_a) != len(value_b):
                return None
            pairs = list(zip(value_a, value_b))
        else:
            pairs = [(value_a, value_b)]
        for x, y in pairs:
            if isinstance(x, ast.AST) and isinstance(y, ast.AST):
                found = _literal_changes(x, y)
                if found is None:
                    return None
                marks.extend(found)
            elif x != y and name != "ctx":
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


def _fill(module: str, indices: dict[int, str]) -> str:
    """The constructor with the literals at ``indices`` (of its ``ast.walk``) replaced by the params' names."""
    tree = ast.parse(module, mode="eval").body
    targets = {id(n): indices[i] for i, n in enumerate(ast.walk(tree)) if i in indices}

    class Fill(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST:
            if id(node) in targets:
                return ast.Name(targets[id(node)])
            return super().generic_visit(node)

    return ast.unparse(Fill().visit(tree))


def _text(value: Any) -> str:
    """A value as ``--set`` text, which the compiler reads back with YAML 1.2 core rules."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
