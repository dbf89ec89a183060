"""Which dimensions follow the input's spatial size: the shape rules re-run at other input sizes (shapes.infer_at).

A dimension that changes when the inputs' spatial sizes change is dynamic in an export with dynamic height and width
(its declared ONNX dimension is left unknown); a layer whose weight count changes with the input size (a linear layer
after a flatten) makes such an export impossible. Pure IR: no torch, no onnx.
"""

from __future__ import annotations

from collections.abc import Callable

from archc.errors import Problem, UsageError
from archc.ir.graph import Graph
from archc.ir.types import TensorType
from archc.ops.registry import known_op
from archc.passes.shapes import infer_at

Dims = tuple[int | None, ...]

SCALES: tuple[tuple[str, Callable[[int], int]], ...] = (("2x", lambda n: 2 * n), ("4x", lambda n: 4 * n))
"""Probe sizes: multiples of the declared size keep every divisibility the network relies on."""


def scaled_input(t: TensorType, scale: Callable[[int], int]) -> TensorType:
    """An input with its spatial axes resized; inputs without spatial axes ([C]) stay as they are."""
    if t.rank < 2:
        return t
    return t.with_shape((t.channels, *(scale(d) for d in t.spatial)))


def dynamic_dims(graph: Graph) -> dict[str, Dims]:
    """Per node, its shape with None where it follows the input size; raises UsageError when that cannot be."""
    changed: dict[str, set[int]] = {n.name: set() for n in graph.nodes()}
    for label, scale in SCALES:
        inputs = {name: scaled_input(graph.node(name).out_type, scale) for name in graph.inputs}
        try:
            types = infer_at(graph, inputs)
        except Problem as problem:
            raise UsageError(f"dynamic height and width: the network does not accept {label} its input size "
                             f"({problem.message}); export with --dynamic batch") from None
        for node in graph.nodes():
            base = node.out_type
            other = types[node.name].shape
            if len(other) != len(base.shape):  # e.g. squeeze without axes: which axes are size 1 depends on sizes
                raise UsageError(f"dynamic height and width: layer {node.name} ({node.op}) has a rank-{len(other)} "
                                 f"output at {label} the input size but rank {len(base.shape)} at the declared "
                                 "size; export with --dynamic batch")
            changed[node.name].update(i for i, (a, b) in enumerate(zip(base.shape, other, strict=True)) if a != b)
            if not node.is_input:
                _check_weights(graph, node.name, types)
    return {n.name: tuple(None if i in changed[n.name] else d for i, d in enumerate(n.out_type.shape))
            for n in graph.nodes()}


def _check_weights(graph: Graph, name: str, types: dict[str, TensorType]) -> None:
    node = graph.node(name)
    op = known_op(node.op)
    sources = graph.input_names(name)
    base = op.cost(node.params, [graph.node(s).out_type for s in sources], node.out_type).params
    other = op.cost(node.params, [types[s] for s in sources], types[name]).params
    if base != other:
        raise UsageError(f"dynamic height and width: layer {name} ({node.op}) has weights sized by the input's "
                         f"spatial size ({base:,} parameters at the declared size, {other:,} at another); "
                         "export with --dynamic batch")


def other_size(graph: Graph) -> dict[str, TensorType] | None:
    """Input types at a second spatial size the network accepts (for testing a dynamic export), or None."""
    # smaller first (cheaper to run), larger when the network needs its input size or more
    candidates: list[Callable[[int], int]] = [lambda n: n - n // 4, lambda n: n + n // 2, lambda n: 2 * n]
    for scale in candidates:
        inputs = {name: scaled_input(graph.node(name).out_type, scale) for name in graph.inputs}
        if all(t == graph.node(name).out_type for name, t in inputs.items()):
            return None
        try:
            infer_at(graph, inputs)
        except Problem:
            continue
        return inputs
    return None
