"""The graph IR, a thin typed wrapper over a networkx ``MultiDiGraph``.

networkx edges carry no order, but concat order matters and one tensor may feed the same op twice (``mul`` of x and
x), so every edge carries its destination ``port`` and the multigraph keys edges by that port. Nodes are named by
their layer path (``layer2.0.conv1``), which is unique and is also the PyTorch module path and the ONNX node name.

networkx holds the truth. The passes read every node's producers, and networkx's views cost several times more than
plain dicts, so reading builds an index (nodes, producers by port, source order) from the networkx graph once and any
mutation drops it; lowering, which reads while it adds, reads networkx directly until the graph stops growing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from archc.errors import Pos
from archc.ir.types import TensorType

INPUT_OP = "input"

SOURCE_OPS = frozenset({"parameter", "buffer"})
"""Ops that read no input: tensors the model holds (archc/ops/tensor_state.py; a test keeps this equal to the ops
whose ``min_inputs`` is 0, which the IR cannot import)."""


@dataclass
class Node:
    """One layer (or a model input) of the network."""

    name: str
    op: str
    params: Any = None
    """The op's validated parameter model (a frozen pydantic model), or None for inputs."""
    pos: Pos = field(default_factory=Pos)
    scope: str = ""
    """Path of the innermost named scope (group, stage, block instance) holding this node; "" is the model."""
    out_type: TensorType | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    """Results of analysis passes (cost, receptive field, ...), never serialised into artifacts."""

    @property
    def is_input(self) -> bool:
        return self.op == INPUT_OP

    @property
    def local_name(self) -> str:
        """The last component of the path, e.g. ``conv1`` for ``layer1.0.conv1``."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    port: int


@dataclass
class Scope:
    """A named region of the network: a group, a stage, a block instance, a residual or branch construct."""

    path: str
    kind: str
    label: str = ""
    pos: Pos = field(default_factory=Pos)
    args: dict[str, Any] = field(default_factory=dict)
    """A block instance's bound arguments (declared ones, defaults included): what its emitted class is called with."""

    @property
    def parent(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


class GraphLintError(Exception):
    """The IR broke one of its own invariants: a bug in archc, not in the user's spec."""


class NodeFailure(Exception):
    """A pass failed on one node of the graph: a bug in archc (an op's rule), not in the user's spec."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")
        self.node = node
        self.message = message


@dataclass
class _Index:
    """Plain-dict views of the networkx graph, derived from it in one walk (never updated: rebuilt after a change)."""

    nodes: dict[str, Node]
    producers: dict[str, list[str]]
    """Node -> its producers ordered by port."""
    ports: dict[str, list[int]]
    """Node -> its input ports, sorted (0..n-1 in a well-formed graph; lint checks)."""
    order: dict[str, int]
    """Node -> its position in insertion (source) order."""
    topological: list[Node] | None = None


class Graph:
    """A network: nodes in insertion (source) order, ordered input ports, named scopes, inputs and outputs."""

    def __init__(self, name: str = "model", doc: str = "", file: str = "<spec>") -> None:
        self.name = name
        self.doc = doc
        self.file = file
        self.nx = nx.MultiDiGraph()
        """The graph itself: node attribute ``node`` holds the :class:`Node`, an edge's key is its input port."""
        self.inputs: list[str] = []
        self.outputs: dict[str, str] = {}
        """Output name -> producing node."""
        self.scopes: dict[str, Scope] = {}
        self.params: dict[str, Any] = {}
        """The spec's resolved params, for reference in emitted artifacts."""
        self._cached_index: _Index | None = None

    # --- building -----------------------------------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        if node.name in self.nx:
            raise GraphLintError(f"duplicate node {node.name!r}")
        self.nx.add_node(node.name, node=node)
        self._cached_index = None
        if node.is_input:
            self.inputs.append(node.name)
        return node

    def connect(self, src: str, dst: str, port: int) -> None:
        self.nx.add_edge(src, dst, key=port)
        self._cached_index = None

    def add_scope(self, scope: Scope) -> None:
        self.scopes.setdefault(scope.path, scope)

    # --- reading ------------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nx)

    def __contains__(self, name: object) -> bool:
        return name in self.nx

    def node(self, name: str) -> Node:
        index = self._cached_index
        return index.nodes[name] if index is not None else self.nx.nodes[name]["node"]

    def nodes(self) -> Iterator[Node]:
        """Nodes in insertion order, which follows the spec's source order."""
        return iter(self._index().nodes.values())

    def input_names(self, name: str) -> list[str]:
        """Producers feeding ``name``, ordered by port."""
        index = self._cached_index
        if index is not None:
            return list(index.producers[name])
        return [src for _, src in sorted((port, src) for src, keyed in self.nx.pred[name].items() for port in keyed)]

    def inputs_of(self, name: str) -> list[Node]:
        nodes = self._index().nodes
        return [nodes[n] for n in self.input_names(name)]

    def users(self, name: str) -> list[str]:
        return sorted(self.nx.succ[name], key=self._index().order.__getitem__)

    def topological(self) -> list[Node]:
        """Nodes in a topological order that keeps source order where the data flow allows."""
        index = self._index()
        if index.topological is None:
            if self._insertion_order_is_topological():
                index.topological = list(index.nodes.values())
            else:
                sorted_names = nx.lexicographical_topological_sort(self.nx, key=index.order.__getitem__)
                index.topological = [index.nodes[n] for n in sorted_names]
        return list(index.topological)

    def _insertion_order_is_topological(self) -> bool:
        """True when every producer was added before its users: lowering builds graphs this way."""
        index = self._index()
        order = index.order
        return all(order[src] < order[dst] for dst, producers in index.producers.items() for src in producers)

    def find_cycle(self) -> list[str] | None:
        # a graph whose insertion order is topological has no cycle; otherwise ask networkx (cheaper than searching)
        if self._insertion_order_is_topological() or nx.is_directed_acyclic_graph(self.nx):
            return None
        try:
            edges = nx.find_cycle(self.nx)
        except nx.NetworkXNoCycle:
            return None
        return [e[0] for e in edges]

    def _index(self) -> _Index:
        """The dict index of the current graph, built on first read after a change."""
        if self._cached_index is None:
            nodes: dict[str, Node] = {}
            producers: dict[str, list[str]] = {}
            ports: dict[str, list[int]] = {}
            for name, data in self.nx.nodes(data="node"):
                nodes[name] = data
                by_port = sorted((port, src) for src, keyed in self.nx.pred[name].items() for port in keyed)
                producers[name] = [src for _, src in by_port]
                ports[name] = [port for port, _ in by_port]
            self._cached_index = _Index(nodes, producers, ports, {name: i for i, name in enumerate(nodes)})
        return self._cached_index

    def scope_chain(self, scope: str) -> list[str]:
        """``a.b.c`` -> the scopes ``a``, ``a.b``, ``a.b.c`` that exist."""
        parts = scope.split(".") if scope else []
        chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return [s for s in chain if s in self.scopes]

    # --- checking -----------------------------------------------------------------------------------------------------
    def lint(self, *, typed: bool = False) -> None:
        """Check the IR's invariants (torch.fx ``Graph.lint`` in spirit); raises :class:`GraphLintError`."""
        index = self._index()
        for node in index.nodes.values():
            ports = index.ports[node.name]
            if ports != list(range(len(ports))):
                raise GraphLintError(f"{node.name}: input ports {ports} are not 0..n-1")
            if node.is_input and ports:
                raise GraphLintError(f"{node.name}: an input has producers")
            if not node.is_input and not ports and node.op not in SOURCE_OPS:
                raise GraphLintError(f"{node.name}: an op has no inputs")
            if typed and node.out_type is None:
                raise GraphLintError(f"{node.name}: no type after shape inference")
            if node.scope and node.scope not in self.scopes:
                raise GraphLintError(f"{node.name}: unknown scope {node.scope!r}")
        cycle = self.find_cycle()
        if cycle:
            raise GraphLintError("cycle: " + " -> ".join(cycle))
        for out, src in self.outputs.items():
            if src not in self.nx:
                raise GraphLintError(f"output {out!r} names unknown node {src!r}")
        if not self.outputs:
            raise GraphLintError("the graph has no outputs")

    # --- text form ----------------------------------------------------------------------------------------------------
    def format(self) -> str:
        """One line per node, in source order, like torch.fx's graph print, then the outputs:

        ``layer1.0.conv1: [64, 56, 56] = conv[out=64, k=1, bias=False](maxpool)``

        A node's parameters are those that differ from the op's defaults; an untyped node (after an error) shows ``?``.
        """
        lines = [format_node(node, self.input_names(node.name)) for node in self.nodes()]
        lines.append(" ".join(["return", ", ".join(f"{out}={src}" for out, src in self.outputs.items())]).rstrip())
        return "\n".join(lines) + "\n"


def format_node(node: Node, sources: list[str]) -> str:
    """The text form of one node, given its producers in port order."""
    shape = str(node.out_type) if node.out_type is not None else "?"
    if node.is_input:
        return f"{node.name}: {shape} = input"
    return f"{node.name}: {shape} = {node.op}{_format_params(node.params)}({', '.join(sources)})"


def _format_params(params: Any) -> str:
    """``[k=1, s=2]``: the fields set to something other than their default, in declaration order."""
    if params is None or not hasattr(type(params), "model_fields"):
        return ""
    fields = type(params).model_fields
    shown = [f"{name}={getattr(params, name)!r}" for name, info in fields.items()
             if info.is_required() or getattr(params, name) != info.get_default(call_default_factory=True)]
    return f"[{', '.join(shown)}]" if shown else ""
