"""The graph IR: typed nodes on a networkx multigraph with ordered input ports."""

from archc.ir.graph import Edge, Graph, Node, Scope
from archc.ir.types import DTYPE_BYTES, TensorType

__all__ = ["DTYPE_BYTES", "Edge", "Graph", "Node", "Scope", "TensorType"]
