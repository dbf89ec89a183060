"""The one schedule of a graph every writer follows: which layers run, in what order, what each reads, what dies.

The liveness policy, stated once: a layer runs only when some model output depends on it. A layer no output needs (a
dead ``aux`` head) is not computed by the generated PyTorch ``forward``, has no node in the ONNX graph and takes no
activation memory in the resources estimate; its module and weights still exist (the state_dict is the spec's).
Pure IR: no torch, no onnx.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType


@dataclass(frozen=True)
class Step:
    """One layer of the schedule."""

    node: Node
    sources: list[str]
    """The values it reads, by port (layer or input names)."""
    in_types: list[TensorType]
    """Their types, by port."""
    freed: list[str]
    """Values whose last reader is this layer: dead once it has run (never a model output)."""


@dataclass(frozen=True)
class Schedule:
    """The layers some output needs, in a topological order, with their inputs and liveness."""

    steps: list[Step]
    dead: list[str]
    """Layers no output depends on, in graph order: not computed by any backend."""
    dead_in_types: dict[str, list[TensorType]] = field(default_factory=dict)
    """The input types of the dead layers, by port: their modules are still built (the state_dict is the spec's)."""

    def in_types(self) -> dict[str, list[TensorType]]:
        """Every layer's input types by port, computed or dead, in graph order of neither: for a writer that builds
        every layer's module (the PyTorch constructor) as well as the computed ones (forward)."""
        types = {step.node.name: step.in_types for step in self.steps}
        types.update(self.dead_in_types)
        return types

    def computed(self) -> list[str]:
        """The names of the layers that run, in order."""
        return [step.node.name for step in self.steps]


def needed(outputs: Iterable[str], sources_of: Callable[[str], Iterable[str]]) -> set[str]:
    """Everything ``outputs`` depend on, themselves included: the liveness policy, shared by every walk (the graph's
    and the generated classes' own bodies)."""
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(sources_of(name))
    return seen


def schedule_graph(graph: Graph) -> Schedule:
    """The schedule of a typed graph (every computed layer has an output type)."""
    live = needed(graph.outputs.values(), graph.input_names)
    order = [node for node in graph.topological() if not node.is_input and node.name in live]
    dead = [node.name for node in graph.topological() if not node.is_input and node.name not in live]
    last_use: dict[str, int] = {}
    for index, node in enumerate(order):
        for source in graph.input_names(node.name):
            last_use[source] = index
    kept = set(graph.outputs.values())
    freed: list[list[str]] = [[] for _ in order]
    for name, index in last_use.items():
        if name not in kept:
            freed[index].append(name)
    steps = [Step(node, graph.input_names(node.name), _in_types(graph, node.name), names)
             for node, names in zip(order, freed, strict=True)]
    return Schedule(steps, dead, {name: _in_types(graph, name) for name in dead})


def _in_types(graph: Graph, name: str) -> list[TensorType]:
    types = [graph.node(source).out_type for source in graph.input_names(name)]
    return [t for t in types if t is not None]
