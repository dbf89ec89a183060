"""The graph IR, a thin typed wrapper over a networkx ``MultiDiGraph``.

networkx edges carry no order, but concat order matters and one tensor may feed the same op twice (``mul`` of x and
x), so every edge carries its destination ``port`` and the multigraph keys edges by that port. Nodes are named by
their layer path (``layer2.0.conv1``), which is unique and is also the PyTorch module path and the ONNX node name.

The graph only grows (nodes and edges are added, never removed), so it also keeps plain dicts of nodes and of each
node's producers by port: the passes read those on every node, and networkx's views cost several times more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from archc.errors import Pos
from archc.ir.types import TensorType

INPUT_OP = "input"


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

    @property
    def parent(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


class GraphLintError(Exception):
    """The IR broke one of its own invariants: a bug in archc, not in the user's spec."""


class Graph:
    """A network: nodes in insertion (source) order, ordered input ports, named scopes, inputs and outputs."""

    def __init__(self, name: str = "model", doc: str = "", file: str = "<spec>") -> None:
        self.name = name
        self.doc = doc
        self.file = file
        self.nx = nx.MultiDiGraph()
        self.inputs: list[str] = []
        self.outputs: dict[str, str] = {}
        """Output name -> producing node."""
        self.scopes: dict[str, Scope] = {}
        self.params: dict[str, Any] = {}
        """The spec's resolved params, for reference in emitted artifacts."""
        self._nodes: dict[str, Node] = {}
        self._producers: dict[str, dict[int, str]] = {}
        """Node -> {port: producer}, in step with the networkx edges."""
        self._topological: list[Node] | None = None
        self._index_cache: dict[str, int] = {}

    # --- building -----------------------------------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        if node.name in self.nx:
            raise GraphLintError(f"duplicate node {node.name!r}")
        self.nx.add_node(node.name, node=node)
        self._nodes[node.name] = node
        self._producers[node.name] = {}
        self._topological = None
        if node.is_input:
            self.inputs.append(node.name)
        return node

    def connect(self, src: str, dst: str, port: int) -> None:
        self.nx.add_edge(src, dst, key=port, port=port)
        self._producers[dst][port] = src
        self._topological = None

    def add_scope(self, scope: Scope) -> None:
        self.scopes.setdefault(scope.path, scope)

    # --- reading ------------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self.nx

    def node(self, name: str) -> Node:
        return self._nodes[name]

    def nodes(self) -> Iterator[Node]:
        """Nodes in insertion order, which follows the spec's source order."""
        return iter(self._nodes.values())

    def input_names(self, name: str) -> list[str]:
        """Producers feeding ``name``, ordered by port."""
        producers = self._producers[name]
        return [producers[port] for port in sorted(producers)]

    def inputs_of(self, name: str) -> list[Node]:
        return [self._nodes[n] for n in self.input_names(name)]

    def users(self, name: str) -> list[str]:
        return sorted({dst for _, dst in self.nx.out_edges(name)}, key=self._order_key)

    def topological(self) -> list[Node]:
        """Nodes in a topological order that keeps source order where the data flow allows."""
        if self._topological is None:
            if self._insertion_order_is_topological():
                order = list(self._nodes.values())
            else:
                sorted_names = nx.lexicographical_topological_sort(self.nx, key=self._order_key)
                order = [self._nodes[n] for n in sorted_names]
            self._topological = order
        return list(self._topological)

    def _insertion_order_is_topological(self) -> bool:
        """True when every producer was added before its users: lowering builds graphs this way."""
        index = self._index()
        return all(index[src] < index[dst] for dst, producers in self._producers.items()
                   for src in producers.values())

    def find_cycle(self) -> list[str] | None:
        # a graph whose insertion order is topological has no cycle; otherwise ask networkx (cheaper than searching)
        if self._insertion_order_is_topological() or nx.is_directed_acyclic_graph(self.nx):
            return None
        try:
            edges = nx.find_cycle(self.nx)
        except nx.NetworkXNoCycle:
            return None
        return [e[0] for e in edges]

    def _order_key(self, name: str) -> int:
        return self._index()[name]

    def _index(self) -> dict[str, int]:
        cached = self._index_cache
        if len(cached) != len(self._nodes):
            cached = {name: i for i, name in enumerate(self._nodes)}
            self._index_cache = cached
        return cached

    def scope_chain(self, scope: str) -> list[str]:
        """``a.b.c`` -> the scopes ``a``, ``a.b``, ``a.b.c`` that exist."""
        parts = scope.split(".") if scope else []
        chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return [s for s in chain if s in self.scopes]

    # --- checking -----------------------------------------------------------------------------------------------------
    def lint(self, *, typed: bool = False) -> None:
        """Check the IR's invariants (torch.fx ``Graph.lint`` in spirit); raises :class:`GraphLintError`."""
        edges = sum(len(producers) for producers in self._producers.values())
        if edges != self.nx.number_of_edges() or list(self._nodes) != list(self.nx.nodes):
            raise GraphLintError("the node and producer maps are out of step with the networkx graph")
        for node in self.nodes():
            ports = sorted(port for keyed in self.nx.pred[node.name].values() for port in keyed)
            if ports != sorted(self._producers[node.name]):
                raise GraphLintError(f"{node.name}: producer map out of step with the networkx edges")
            if ports != list(range(len(ports))):
                raise GraphLintError(f"{node.name}: input ports {ports} are not 0..n-1")
            if node.is_input and ports:
                raise GraphLintError(f"{node.name}: an input has producers")
            if not node.is_input and not ports:
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
