"""The graph IR: layers (nodes) with ordered input ports, named scopes, the model's inputs and outputs.

Concat order matters and one tensor may feed the same op twice (``mul`` of x and x), so every edge carries its
destination ``port``. Nodes are named by their layer path (``layer2.0.conv1``), which is unique and is also the
PyTorch module path and the ONNX node name.

Plain dicts hold the truth (nodes in insertion order, each node's producers by port, each node's users): lowering adds
hundreds of thousands of nodes and every pass reads every node's producers, which networkx's per-node and per-edge
dicts and views made several times slower and larger. :attr:`Graph.nx` builds a networkx ``MultiDiGraph`` of it on
demand for graph algorithms (paths, cycles).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import networkx as nx

from archc.errors import Pos
from archc.ir.types import TensorType

INPUT_OP = "input"

T = TypeVar("T")

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


class Graph:
    """A network: nodes in insertion (source) order, ordered input ports, named scopes, inputs and outputs."""

    def __init__(self, name: str = "model", doc: str = "", file: str = "<spec>") -> None:
        self.name = name
        self.doc = doc
        self.file = file
        self.inputs: list[str] = []
        self.outputs: dict[str, str] = {}
        """Output name -> producing node."""
        self.scopes: dict[str, Scope] = {}
        self.params: dict[str, Any] = {}
        """The spec's resolved params, for reference in emitted artifacts."""
        self._nodes: dict[str, Node] = {}
        """Every node, in insertion order."""
        self._producers: dict[str, dict[int, str]] = {}
        """Node -> {input port: producer}, kept sorted by port."""
        self._users: dict[str, dict[str, None]] = {}
        """Node -> the nodes it feeds (an ordered set)."""
        self._order: dict[str, int] = {}
        self._version = 0
        """Bumped by every change: what is derived from the graph (topological order, the networkx view) is rebuilt
        when it was derived from an older version."""
        self._derived: dict[str, tuple[int, Any]] = {}

    # --- building -----------------------------------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        name = node.name
        if name in self._nodes:
            raise GraphLintError(f"duplicate node {name!r}")
        self._order[name] = len(self._nodes)
        self._nodes[name] = node
        self._producers[name] = {}
        self._users[name] = {}
        self._version += 1
        if node.op == INPUT_OP:
            self.inputs.append(name)
        return node

    def connect(self, src: str, dst: str, port: int) -> None:
        if src not in self._nodes or dst not in self._nodes:
            raise GraphLintError(f"edge {src!r} -> {dst!r}: unknown node")
        producers = self._producers[dst]
        old = producers.get(port)
        if old is not None and old != src:
            raise GraphLintError(f"{dst}: input port {port} is already fed by {old!r}")
        if producers and old is None and port < next(reversed(producers)):
            producers[port] = src
            self._producers[dst] = dict(sorted(producers.items()))  # ports connected out of order: rare
        else:
            producers[port] = src
        self._users[src][dst] = None
        self._version += 1

    def add_scope(self, scope: Scope) -> None:
        self.scopes.setdefault(scope.path, scope)

    # --- reading ------------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def node(self, name: str) -> Node:
        return self._nodes[name]

    def nodes(self) -> Iterator[Node]:
        """Nodes in insertion order, which follows the spec's source order."""
        return iter(list(self._nodes.values()))

    def input_names(self, name: str) -> list[str]:
        """Producers feeding ``name``, ordered by port."""
        return list(self._producers[name].values())

    def input_ports(self, name: str) -> list[int]:
        """The input ports of ``name`` that are connected, ascending (0..n-1 in a well-formed graph)."""
        return list(self._producers[name])

    def inputs_of(self, name: str) -> list[Node]:
        nodes = self._nodes
        return [nodes[n] for n in self._producers[name].values()]

    def users(self, name: str) -> list[str]:
        return sorted(self._users[name], key=self._order.__getitem__)

    def edges(self) -> Iterator[Edge]:
        """Every edge, by destination in insertion order, then by port."""
        for dst, producers in self._producers.items():
            for port, src in producers.items():
                yield Edge(src, dst, port)

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The graph as a networkx ``MultiDiGraph`` (node attribute ``node`` holds the :class:`Node`, an edge's key is
        its input port), for graph algorithms; built on first use after a change, read-only."""
        return self._derive("nx", self._build_nx)

    def _build_nx(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        g.add_nodes_from((name, {"node": node}) for name, node in self._nodes.items())
        g.add_edges_from((src, dst, port) for dst, producers in self._producers.items()
                         for port, src in producers.items())
        return g

    def _derive(self, what: str, build: Callable[[], T]) -> T:
        cached = self._derived.get(what)
        if cached is None or cached[0] != self._version:
            cached = (self._version, build())
            self._derived[what] = cached
        return cached[1]

    def topological(self) -> list[Node]:
        """Nodes in a topological order that keeps source order where the data flow allows."""
        return list(self._derive("topological", self._topological))

    def _topological(self) -> list[Node]:
        if self._insertion_order_is_topological():
            return list(self._nodes.values())
        sorted_names = nx.lexicographical_topological_sort(self.nx, key=self._order.__getitem__)
        return [self._nodes[n] for n in sorted_names]

    def _insertion_order_is_topological(self) -> bool:
        """True when every producer was added before its users: lowering builds graphs this way."""
        return self._derive("in_order", self._check_insertion_order)

    def _check_insertion_order(self) -> bool:
        order = self._order
        return all(order[src] < order[dst] for dst, producers in self._producers.items()
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

    def scope_chain(self, scope: str) -> list[str]:
        """``a.b.c`` -> the scopes ``a``, ``a.b``, ``a.b.c`` that exist."""
        parts = scope.split(".") if scope else []
        chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return [s for s in chain if s in self.scopes]

    # --- checking -----------------------------------------------------------------------------------------------------
    def lint(self, *, typed: bool = False) -> None:
        """Check the IR's invariants (torch.fx ``Graph.lint`` in spirit); raises :class:`GraphLintError`."""
        for node in self._nodes.values():
            ports = list(self._producers[node.name])
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
            if src not in self._nodes:
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
