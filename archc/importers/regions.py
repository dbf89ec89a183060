"""Recovering `residual` and `branches` from a flat layer list.

A merge layer (add, mul, concat) whose inputs trace back, each along a chain of single-input, single-consumer
layers, to one common fork is a parallel region: it becomes one step reading the fork. Merges are visited in
topological order, so an inner region is folded into one step before the region around it is examined, and nested
residuals and inception modules come out nested. A merge whose paths do not meet at one fork (a U-Net skip) stays a
plain layer with `from:`.
"""

from __future__ import annotations

from archc.importers.flat import FlatGraph, FlatLayer
from archc.importers.tree import Branches, Item, Leaf, Residual

MERGES = frozenset({"add", "mul", "concat"})


class _Units:
    def __init__(self, graph: FlatGraph) -> None:
        self.items: dict[str, Item] = {}
        self.inputs: dict[str, list[str]] = {}
        self.consumers: dict[str, list[str]] = {name: [] for name in graph.inputs}
        self.order: list[str] = []
        for layer in graph.layers:
            self.items[layer.id] = Leaf(output=layer.id, layer=layer)
            self.inputs[layer.id] = list(layer.inputs)
            self.consumers.setdefault(layer.id, [])
            self.order.append(layer.id)
            for name in layer.inputs:
                self.consumers.setdefault(name, []).append(layer.id)
        for name in graph.outputs:  # a model output is read from outside: never the inside of a chain
            self.consumers.setdefault(name, []).append("<output>")

    def chain_to(self, start: str, consumer: str) -> tuple[list[str], str]:
        """The chain of single-input, single-consumer units ending at ``start`` (feeding ``consumer``), and the unit
        where it begins (the fork)."""
        chain: list[str] = []
        unit, following = start, consumer
        while unit in self.items and len(self.inputs[unit]) == 1 and self.consumers[unit] == [following]:
            chain.insert(0, unit)
            following, unit = unit, self.inputs[unit][0]
        return chain, unit

    def fold(self, merge: str) -> None:
        layer = self.items[merge]
        assert isinstance(layer, Leaf) and layer.layer is not None
        chains, forks = [], set()
        for name in self.inputs[merge]:
            chain, fork = self.chain_to(name, merge)
            chains.append(chain)
            forks.add(fork)
        if len(forks) != 1 or sum(1 for chain in chains if not chain) > 1:
            return
        fork = forks.pop()
        item = _construct(layer.layer, [[self.items[name] for name in chain] for chain in chains])
        if isinstance(item, Residual):
            item.fork = fork
        item.merge_leaf = layer  # type: ignore[attr-defined]
        for chain in chains:
            for name in chain:
                del self.items[name]
                self.order.remove(name)
            self.consumers[fork].remove(chain[0] if chain else merge)
        self.consumers[fork].append(merge)
        self.items[merge] = item
        self.inputs[merge] = [fork]


def _construct(merge: FlatLayer, paths: list[list[Item]]) -> Item:
    op, out = merge.op, merge.id
    if op == "add" and len(paths) == 2:
        body, shortcut = (paths[0], paths[1]) if len(paths[0]) >= len(paths[1]) else (paths[1], paths[0])
        return Residual(output=out, body=body, shortcut=shortcut or "identity")
    axis = int(merge.params.get("axis", 0))
    if op == "concat" and len(paths) == 2 and not paths[0] and axis in (0, -3):
        return Residual(output=out, body=paths[1], merge="concat")
    filled = [path or [Leaf(output=f"{out}:identity", layer=FlatLayer(f"{out}:identity", "identity"))]
              for path in paths]
    return Branches(output=out, paths=filled, names=[None] * len(paths), merge=op, axis=axis)


def recover_regions(graph: FlatGraph) -> list[Item]:
    """The model's steps with parallel regions folded; ``source`` set where a step does not read the previous one."""
    units = _Units(graph)
    for name in list(units.order):
        unit = units.items.get(name)
        if isinstance(unit, Leaf) and unit.layer is not None and unit.layer.op in MERGES and \
                len(units.inputs[name]) >= 2:
            units.fold(name)
    steps: list[Item] = []
    previous = next(iter(graph.inputs), "")
    for name in units.order:
        item = units.items[name]
        reads = units.inputs[name]
        item.source = None if reads == [previous] else list(reads)
        steps.append(item)
        previous = name
    return steps
