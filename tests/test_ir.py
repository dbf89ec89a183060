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


def test_reads_follow_every_change() -> None:
    """What is derived from the graph (the networkx view, the topological order) is never read stale."""
    g = _graph()
    assert [n.name for n in g.nodes()] == ["x", "a", "b", "c"] and g.input_names("c") == ["b"]
    assert [n.name for n in g.topological()] == ["x", "a", "b", "c"] and len(g.nx) == 4
    g.add_node(Node("d", "add", out_type=TensorType((3, 8, 8))))
    g.connect("c", "d", 0)
    assert [n.name for n in g.nodes()] == ["x", "a", "b", "c", "d"]
    g.connect("a", "d", 1)
    assert g.input_names("d") == ["c", "a"] and g.users("a") == ["b", "d"]
    assert g.node("d") is g.nx.nodes["d"]["node"]
    assert sorted(g.nx.in_edges("d", keys=True)) == [("a", "d", 1), ("c", "d", 0)]
    assert [n.name for n in g.topological()] == ["x", "a", "b", "c", "d"]


def test_ports_connected_out_of_order_read_in_port_order() -> None:
    g = _graph()
    g.add_node(Node("m", "concat"))
    g.connect("c", "m", 2)
    assert g.input_names("m") == ["c"] and g.input_ports("m") == [2]
    g.connect("a", "m", 0)
    g.connect("b", "m", 1)
    g.connect("b", "m", 1)  # the same edge again changes nothing
    assert g.input_names("m") == ["a", "b", "c"] and g.input_ports("m") == [0, 1, 2]
    assert [(e.src, e.port) for e in g.edges() if e.dst == "m"] == [("a", 0), ("b", 1), ("c", 2)]


def test_connect_refuses_a_second_producer_on_a_port_and_unknown_nodes() -> None:
    g = _graph()
    with pytest.raises(GraphLintError, match="c: input port 0 is already fed by 'b'"):
        g.connect("a", "c", 0)
    with pytest.raises(GraphLintError, match="unknown node"):
        g.connect("a", "nope", 1)
    assert g.input_names("c") == ["b"] and g.users("a") == ["b"]


def test_insertion_order_that_is_not_topological_is_sorted() -> None:
    g = _graph()
    g.add_node(Node("early", "relu"))
    g.connect("early", "a", 1)  # `a` (added before `early`) now reads it
    g.connect("x", "early", 0)
    assert [n.name for n in g.topological()] == ["x", "early", "a", "b", "c"]
    assert g.find_cycle() is None
