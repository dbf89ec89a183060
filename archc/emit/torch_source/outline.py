"""Outlining: block instances become calls of one class per block definition, stages become ``nn.Sequential``.

Block instances are handled innermost first (a block holding other blocks after them), so an outer block's instances
are compared with their inner blocks already outlined. An instance that reads more than one outside value, or whose
inner layers are read from outside, stays unrolled; so does a stage whose blocks are not a chain. ``state_dict`` keys
do not change: an outlined instance sits at its path, its layers at their local paths inside it.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from archc.compiler import Compiled
from archc.ir.graph import Node, Scope
from archc.lower.blocks import declared_args
from archc.ops.base import TorchCode
from archc.ops.registry import known_op

from .body import Item
from .sequential import sequential_ctor
from .unify import INPUT, NO_DEFAULT, TORCH_DEFAULTS, ClassPlan, Instance, plan_classes


@dataclass
class _Unit:
    """An outlined sub-module: everything under ``path`` is one item of its container."""

    path: str
    label: str
    input: str
    output: Node
    code: TorchCode
    ctor: list[str] | None = None


class Outliner:
    def __init__(self, compiled: Compiled, codes: dict[str, TorchCode], model_class: str) -> None:
        self.compiled = compiled
        self.graph = compiled.graph
        self.codes = codes
        self.units: dict[str, _Unit | None] = {}
        """Scope path -> its unit; None: decided against (a stage that is no chain)."""
        self.plans: list[ClassPlan] = []
        # the model's constructor arguments are the params: no class may take one's name and be shadowed by it
        self.taken = {model_class, *compiled.params}
        self.defaults = dict(TORCH_DEFAULTS)
        self.plan_of: dict[str, ClassPlan] = {}
        self.members: dict[str, list[Node]] = {}
        """Block instance or stage -> the layers inside it, in order."""
        self.children: dict[str, list[str]] = defaultdict(list)
        """Scope -> the scopes directly inside it."""
        self.outputs: dict[str, str] = dict(self.graph.outputs)
        """Output name -> the model item producing it."""

    def model_items(self) -> list[Item]:
        graph = self.graph
        members: dict[str, list[Node]] = defaultdict(list)
        for node in graph.topological():
            for path in graph.scope_chain(node.scope):
                if graph.scopes[path].kind in ("block", "stage"):
                    members[path].append(node)
        self.members = members
        for path in graph.scopes:
            self.children[graph.scopes[path].parent].append(path)
        heights = self._heights([path for path in members if graph.scopes[path].kind == "block"])
        for height in sorted(set(heights.values())):
            groups: dict[str, list[Instance]] = defaultdict(list)
            for path, h in heights.items():
                if h == height:
                    instance = self._instance(graph.scopes[path], members[path])
                    if instance is not None:
                        groups[instance.scope.label].append(instance)
            for block, instances in groups.items():
                decl = declared_args(self.compiled.header.blocks[block].args)
                declared = {name: _usable_default(default) for name, (_, default) in decl.items()}
                for plan in plan_classes(instances, self.taken, self.defaults, declared):
                    self.plans.append(plan)
                    for inst in instances:
                        if inst.scope.path in plan.values:
                            self.plan_of[inst.scope.path] = plan
                            self.units[inst.scope.path] = self._unit(inst, plan)
        items, names = self._assemble("", [n for n in graph.topological() if not n.is_input], {})
        self.outputs = {out: names.get(src, src) for out, src in graph.outputs.items()}
        return items

    def _heights(self, paths: list[str]) -> dict[str, int]:
        """1 for a block instance holding no other, else one more than the highest it holds."""
        heights = dict.fromkeys(paths, 1)
        for path in sorted(paths, key=lambda p: -p.count(".")):
            for outer in self.graph.scope_chain(self.graph.scopes[path].parent):
                if outer in heights:
                    heights[outer] = max(heights[outer], heights[path] + 1)
        return heights

    def _instance(self, scope: Scope, nodes: list[Node]) -> Instance | None:
        inside = {n.name for n in nodes}
        outside = {src for n in nodes for src in self.graph.input_names(n.name) if src not in inside}
        exits = [n for n in nodes if n.name in self.graph.outputs.values()
                 or any(user not in inside for user in self.graph.users(n.name))]
        if len(outside) != 1 or len(exits) != 1:
            return None
        (source,) = outside
        items, names = self._assemble(scope.path + ".", nodes, {source: INPUT})
        t = self.graph.node(source).out_type
        return Instance(scope, items, names[exits[0].name], t.channels if t is not None and t.shape else None,
                        source, exits[0])

    def _unit(self, inst: Instance, plan: ClassPlan) -> _Unit:
        out = inst.output_node
        call = plan.call(plan.values[inst.scope.path])
        return _Unit(inst.scope.path, plan.block, inst.input_node, out, TorchCode(call, "{m}({0})"))

    def _unit_for(self, node: Node, prefix: str) -> _Unit | None:
        for path in self.graph.scope_chain(node.scope):
            if not path.startswith(prefix) or len(path) <= len(prefix):
                continue
            scope = self.graph.scopes[path]
            if scope.kind == "stage" and path not in self.units:
                self.units[path] = self._stage(scope)
            unit = self.units.get(path)
            if unit is not None:
                return unit
        return None

    def _stage(self, scope: Scope) -> _Unit | None:
        """A stage whose blocks are all outlined and chained, each reading the one before: an ``nn.Sequential``."""
        prefix = scope.path + "."
        children = [self.graph.scopes[path] for path in self.children.get(scope.path, [])]
        if not children or any(path not in self.plan_of or self.units.get(path) is None for path in
                               (c.path for c in children)):
            return None
        units = [self.units[c.path] for c in children]
        for before, after in itertools.pairwise(units):
            if after is None or before is None or after.input != before.output.name:
                return None
        first, last = units[0], units[-1]
        assert first is not None and last is not None
        if first.input.startswith(prefix):
            return None
        # nothing but the last block's output may leave the stage, and the stage holds nothing but its blocks
        keys = {c.path[len(prefix):] for c in children}
        nodes = self.members.get(scope.path, [])
        inside = {n.name for n in nodes}
        exits = set(self.graph.outputs.values())
        for node in nodes:
            if node.name[len(prefix):].split(".")[0] not in keys:
                return None
            if node.name != last.output.name and (node.name in exits or any(
                    user not in inside for user in self.graph.users(node.name))):
                return None
        calls = [(self.plan_of[c.path], self.plan_of[c.path].values[c.path]) for c in children]
        ctor = sequential_ctor([c.path[len(prefix):] for c in children], calls)
        if ctor is None:
            return None
        return _Unit(scope.path, last.label, first.input, last.output, TorchCode(ctor[0], "{m}({0})"), ctor)

    def _assemble(self, prefix: str, nodes: list[Node], outside: dict[str, str]) \
            -> tuple[list[Item], dict[str, str]]:
        """The items of a container: its layers, with outlined sub-modules as one item each (named by local path)."""
        items: list[Item] = []
        names = dict(outside)
        done: set[str] = set()
        for node in nodes:
            unit = self._unit_for(node, prefix)
            if unit is None:
                names[node.name] = node.name[len(prefix):]
                items.append(Item(node.name[len(prefix):], node.op, self.graph.input_names(node.name),
                                  self.codes[node.name], node, known_op(node.op).output_overwritable,
                                  scope=node.scope, record=node.name))
                continue
            names[node.name] = unit.path[len(prefix):]
            if unit.path in done:
                continue
            done.add(unit.path)
            scope = self.graph.scopes[unit.path]
            items.append(Item(unit.path[len(prefix):], unit.label, [unit.input], unit.code, unit.output,
                              _overwritable(unit.output), ctor=unit.ctor, scope=scope.parent, record=unit.path,
                              pos=scope.pos))
        for item in items:
            item.sources = [names.get(src, src) for src in item.sources]
        return items, names


def _overwritable(node: Node) -> bool:
    return known_op(node.op).output_overwritable


def _usable_default(default: object) -> object:
    """A declared default the class can show: a plain literal (an expression or a required argument has none)."""
    if isinstance(default, (bool, int, float)) or (isinstance(default, str) and "$" not in default):
        return default
    return NO_DEFAULT
