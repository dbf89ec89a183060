"""Which values of a schedule share one allocation in the generated PyTorch module.

A view (``flatten``, ``permute``, ``slice``...; dropout at inference) and an op the generated ``forward`` runs in place
(``torch.relu_(x)`` where nothing reads ``x`` again and its producer allows it, :attr:`Op.output_overwritable`) write
into their first input's storage: they allocate nothing, and a tensor autograd keeps through either is the one
allocation. The in-place choice follows the PyTorch emitter's rule (archc/emit/torch_source/forward.py) over the whole
graph; the emitter applies it per generated class, so a block's first layer is never in place on the block's input
there, where it may be here (a difference of one layer's output, at most, in the inference peak).

Values of ``parameter`` and ``buffer`` steps are weights, not activations: they live in the model's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ir.graph import SOURCE_OPS, Graph
from archc.ops.registry import known_op
from archc.passes.schedule import Schedule


@dataclass(frozen=True)
class Layout:
    """The allocation each value lives in, named by the value that made it."""

    root: dict[str, str]
    """Value (model input or computed layer) -> the value owning its storage (itself unless it shares one)."""
    state: frozenset[str]
    """Roots that are model state (``parameter``, ``buffer``): never counted as activations."""
    inplace: frozenset[str]
    """Layers the generated ``forward`` runs in place."""
    strided: frozenset[str]
    """Values that are not contiguous (a permuted or sliced view): an op folding them with a reshape copies them."""

    def shares_input(self, name: str) -> bool:
        return self.root[name] != name


def layout(graph: Graph, schedule: Schedule, *, training: bool) -> Layout:
    """The storages of ``schedule``'s values in training or inference mode."""
    inplace = _inplace_layers(graph, schedule)
    root = {name: name for name in graph.inputs}
    state: set[str] = set()
    strided: set[str] = set()
    for step in schedule.steps:
        node = step.node
        if node.op in SOURCE_OPS:
            root[node.name] = node.name
            state.add(node.name)
            continue
        assert node.out_type is not None
        view = known_op(node.op).output_view(node.params, step.in_types, node.out_type, training)
        first = step.sources[0] if step.sources else None
        if first is not None and view == "reshape" and first in strided:
            view = None  # reshaping a strided tensor copies it
        if first is not None and (view is not None or node.name in inplace):
            root[node.name] = root[first]
            if view == "strided" or (view != "reshape" and first in strided):
                strided.add(node.name)
        else:
            root[node.name] = node.name
    return Layout(root, frozenset(state), frozenset(inplace), frozenset(strided))


def _inplace_layers(graph: Graph, schedule: Schedule) -> set[str]:
    """The layers whose in-place form the emitter writes: their first input is read by nothing after them (not an
    output, not a model input, not another of their inputs) and comes from an op whose output autograd does not
    keep. Identity-like layers (a forward of ``{0}``) are the emitter's aliases: they read nothing themselves."""
    codes = {}
    alias: dict[str, str] = {name: name for name in graph.inputs}
    for step in schedule.steps:
        node = step.node
        assert node.out_type is not None
        code = known_op(node.op).torch(node.params, step.in_types, node.out_type)
        codes[node.name] = code
        is_alias = code.module is None and code.call == "{0}" and not code.steps and step.sources
        alias[node.name] = alias[step.sources[0]] if is_alias else node.name
    last_use: dict[str, float] = {}
    for index, step in enumerate(schedule.steps):
        if alias[step.node.name] != step.node.name:
            continue
        for source in step.sources:
            last_use[alias[source]] = index
    for output in graph.outputs.values():
        last_use[alias[output]] = float("inf")
    inputs = set(graph.inputs)
    chosen = set()
    for index, step in enumerate(schedule.steps):
        code = codes[step.node.name]
        if code.inplace is None or not step.sources or alias[step.node.name] != step.node.name:
            continue
        first, *others = (alias[source] for source in step.sources)
        if first in inputs or first in others or last_use.get(first) != index:
            continue
        if known_op(graph.node(first).op).output_overwritable:
            chosen.add(step.node.name)
    return chosen
