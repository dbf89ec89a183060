"""The graph IR's invariants: ordered ports, lint() and cycle naming."""

from __future__ import annotations

import pytest

from archc.ir.graph import Graph, GraphLintError, Node, Scope
from archc.ir.types import TensorType


def _graph() -> Graph:
    g = Graph("t")
    g.add_node(Node("x", "input", out_type=TensorType((3, 8, 8))))
    for name in ("a", "b", "c"):
        g.add_node(Node(name, "relu", out_type=TensorType((3, 8, 8))))
    g.connect("x", "a", 0)
    g.connect("a", "b", 0)
    g.connect("b", "c", 0)
    g.outputs["out"] = "c"
    return g


def test_input_ports_keep_their_order_and_may_repeat_a_source() -> None:
    g = _graph()
    g.add_node(Node("m", "concat"))
    g.connect("c", "m", 1)
    g.connect("a", "m", 0)
    g.connect("c", "m", 2)
    assert g.input_names("m") == ["a", "c", "c"]
    g.outputs["out"] = "m"
    g.lint()


def test_lint_names_a_cycle() -> None:
    g = _graph()
    g.connect("c", "a", 1)
    assert g.find_cycle() == ["a", "b", "c"]
    with pytest.raises(GraphLintError, match="cycle: a -> b -> c"):
        g.lint()


def test_lint_checks_ports_types_scopes_and_outputs() -> None:
    g = _graph()
    g.connect("x", "b", 2)
    with pytest.raises(GraphLintError, match=r"b: input ports \[0, 2\]"):
        g.lint()
    g = _graph()
    g.node("b").out_type = None
    g.lint()
    with pytest.raises(GraphLintError, match="b: no type"):
        g.lint(typed=True)
    g = _graph()
    g.node("b").scope = "stage1"
    with pytest.raises(GraphLintError, match="unknown scope 'stage1'"):
        g.lint()
    g.add_scope(Scope("stage1", "stage"))
    g.lint()
    g.outputs["other"] = "nope"
    with pytest.raises(GraphLintError, match="unknown node 'nope'"):
        g.lint()


def test_duplicate_node_is_refused() -> None:
    g = _graph()
    with pytest.raises(GraphLintError, match="duplicate node 'a'"):
        g.add_node(Node("a", "relu"))


def test_reads_follow_the_networkx_graph_after_every_change() -> None:
    """networkx is the truth: the dict index built for reading is dropped by any change, never read stale."""
    g = _graph()
    assert [n.name for n in g.nodes()] == ["x", "a", "b", "c"] and g.input_names("c") == ["b"]  # index built
    g.add_node(Node("d", "add", out_type=TensorType((3, 8, 8))))
    g.connect("c", "d", 0)
    assert [n.name for n in g.nodes()] == ["x", "a", "b", "c", "d"]
    g.connect("a", "d", 1)
    assert g.input_names("d") == ["c", "a"] and g.users("a") == ["b", "d"]
    assert g.node("d") is g.nx.nodes["d"]["node"]


def test_input_names_while_growing_read_networkx() -> None:
    """While lowering adds nodes no index exists; reads come from networkx and agree with the index built later."""
    g = _graph()
    g.add_node(Node("m", "concat"))
    g.connect("c", "m", 1)
    g.connect("a", "m", 0)
    assert g._cached_index is None
    growing = g.input_names("m")
    g.nodes()
    assert g._cached_index is not None and g.input_names("m") == growing == ["a", "c"]
