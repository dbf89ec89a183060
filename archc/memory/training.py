"""Training activations: the tensors autograd keeps for the backward pass, layer by layer, each storage once.

Each computed layer's op says what it keeps (:meth:`archc.ops.base.Op.saved_for_backward`). A layer records nothing
when no gradient flows through it (none of its inputs needs one and it has no parameters: a ReLU straight on the
image), and a product keeps an input only for another input's gradient. Kept inputs and outputs are resolved to the
allocation they live in (archc/memory/storage.py): a tensor kept by two layers, or by one layer and through a view by
another, is counted once, for the first layer that keeps it. Model state (``parameter``, ``buffer``) is not counted.

The step's peak is in the backward pass: autograd frees what a layer kept once its backward has run, so while layer i's
backward runs, what layers 0..i kept is alive, with the parameter gradients of layers i..n and layer i's transient
gradients. A storage is attributed to the first layer keeping it, the last whose backward releases it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.ir.graph import Graph
from archc.memory.dtypes import FLOAT_TYPES, extra_bytes, tensor_bytes
from archc.memory.profile import Profile
from archc.memory.storage import Layout
from archc.ops.registry import known_op
from archc.passes.schedule import Schedule


@dataclass
class LayerSaved:
    """What one layer adds to the saved tensors (storages another layer kept first are not repeated)."""

    per_sample: int = 0
    """Bytes per sample."""
    fixed: int = 0
    """Bytes whatever the batch (batch norm's statistics)."""
    what: list[str] = field(default_factory=list)
    """What it keeps, in words: ``input``, ``output``, ``indices``..."""


@dataclass(frozen=True)
class SavedTensors:
    layers: dict[str, LayerSaved]
    """Every computed layer, in schedule order."""
    step: Profile
    """Bytes alive while each layer's backward runs, the step's peak among them: the tensors saved by it and the
    layers before it (autograd frees a layer's after its backward), the gradients of its and later layers'
    parameters, and its transient gradients."""

    @property
    def per_sample(self) -> int:
        return sum(layer.per_sample for layer in self.layers.values())

    @property
    def fixed(self) -> int:
        return sum(layer.fixed for layer in self.layers.values())


def saved_tensors(graph: Graph, schedule: Schedule, storages: Layout, dtype: str, grads: dict[str, int],
                  input_grads: bool = False) -> SavedTensors:
    """The saved tensors of one training step's forward pass in ``dtype`` (training-mode ``storages``);
    ``grads``: each layer's parameter-gradient bytes; ``input_grads``: the model's floating-point inputs need
    gradients too (an attack or input optimisation)."""
    needs_grad = {name: input_grads and _floating(graph, name) for name in graph.inputs}
    seen: set[str] = set()
    layers: dict[str, LayerSaved] = {}
    transient: dict[str, int] = {}

    def size(value: str) -> int:
        t = graph.node(value).out_type
        return tensor_bytes(t, dtype) if t is not None else 0

    for step in schedule.steps:
        node = step.node
        assert node.out_type is not None
        op = known_op(node.op)
        needed = [needs_grad[source] for source in step.sources]
        needs_grad[node.name] = any(needed) or node.meta["cost"].params > 0
        entry = layers[node.name] = LayerSaved()
        if not needs_grad[node.name]:
            continue
        # its backward holds the gradient of its output and those of its inputs at once
        transient[node.name] = size(node.name) + sum(size(s) for s, g in zip(step.sources, needed) if g)
        rule = op.saved_for_backward(node.params, step.in_types, node.out_type)
        kept = [(port, step.sources[port]) for port in rule.inputs
                if not rule.product or any(g for other, g in enumerate(needed) if other != port)]
        if rule.copied_in_place and node.name in storages.inplace:
            kept = [(port, source) for port, source in kept if port != 0]
            entry.per_sample += size(step.sources[0])
            entry.what.append("copy of the input")
        values = [("input" if len(step.sources) == 1 else f"input {port}", source) for port, source in kept]
        if rule.output:
            values.append(("output", node.name))
        for what, value in values:
            root = storages.root[value]
            if rule.contiguous_inputs and value in storages.strided and what != "output":
                entry.per_sample += size(value)  # a contiguous copy, kept by this layer alone
                entry.what.append(f"{what} (contiguous copy)")
                continue
            if root in storages.state or root in seen:
                continue
            seen.add(root)
            entry.per_sample += size(root)
            entry.what.append(what)
        for extra in rule.extras:
            if extra.per_sample:
                entry.per_sample += extra_bytes(extra, dtype)
            else:
                entry.fixed += extra_bytes(extra, dtype)
            entry.what.append(extra.what)
    return SavedTensors(layers, _backward(layers, transient, grads))


def _backward(layers: dict[str, LayerSaved], transient: dict[str, int], grads: dict[str, int]) -> Profile:
    per_sample: dict[str, int] = {}
    fixed: dict[str, int] = {}
    kept_ps = sum(layer.per_sample for layer in layers.values())
    kept_fixed = sum(layer.fixed for layer in layers.values())
    grown = 0
    for name in reversed(list(layers)):
        grown += grads.get(name, 0)
        per_sample[name] = kept_ps + transient.get(name, 0)
        fixed[name] = kept_fixed + grown
        kept_ps -= layers[name].per_sample
        kept_fixed -= layers[name].fixed
    return Profile(per_sample, fixed)


def _floating(graph: Graph, name: str) -> bool:
    t = graph.node(name).out_type
    return t is not None and t.dtype in FLOAT_TYPES
