"""The graph IR: typed nodes with ordered input ports (plain dicts; a networkx view on demand)."""

from archc.ir.graph import Edge, Graph, Node, Scope
from archc.ir.types import DTYPE_BYTES, TensorType

__all__ = ["DTYPE_BYTES", "Edge", "Graph", "Node", "Scope", "TensorType"]
