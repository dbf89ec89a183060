"""The Graphviz emitter: structure of the DOT text, escaping, determinism, rendering and its guards."""

from __future__ import annotations

import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archc.compiler import Compiled, compile_file, compile_text
from archc.emit import diagram
from archc.emit.diagram import graphviz, render, to_dot, write_diagram
from archc.emit.diagram.fold import folded_at
from archc.emit.diagram.style import FAMILY_STYLES, SHORTCUT_COLOR
from archc.emit.diagram.view import plan_view
from archc.errors import UsageError
from archc.ops.registry import get_op
from archc.report.layer_table import summarize
from archc.text_escape import dot_html

SPECS = Path(__file__).resolve().parent.parent / "specs"
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")

NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$', re.M)
EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$', re.M)
CLUSTER = re.compile(r'^\s*subgraph "cluster_([^"]+)" \{$', re.M)

BRANCHY = """
name: branchy
doc: Inception-style branches, a residual and a dense concat.
inputs: {x: [3, 32, 32]}
body:
  - conv: {id: stem, out: 16, k: 3, p: 1}
  - relu
  - branches:
      id: mix
      paths:
        b1: {conv: {out: 8, k: 1}}
        b3:
          - conv: {id: reduce, out: 8, k: 1}
          - conv: {id: conv, out: 8, k: 3, p: 1}
        pool:
          - maxpool: {k: 3, s: 1, p: 1}
          - conv: {id: proj, out: 8, k: 1}
  - residual:
      id: res
      body:
        - conv: {id: c1, out: 24, k: 3, p: 1}
        - bn: {id: bn}
  - residual:
      id: dense
      merge: concat
      body:
        - conv: {id: grow, out: 8, k: 3, p: 1}
  - global_avgpool
  - flatten
  - linear: {id: fc, out: 10}
  - softmax: {id: prob}
"""

HOSTILE = r"""
name: hostile
doc: '<script>alert("x")</script> & </TD></TABLE> \N \G ''quoted'''
inputs: {x: [4]}
body:
  - group:
      id: g
      label: '<B>bold?</B> & "q" \N'
      body:
        - linear: {id: fc, out: 2}
"""


def _nodes(dot: str) -> dict[str, str]:
    return dict(NODE.findall(dot))


def _edges(dot: str) -> list[tuple[str, str, str]]:
    return EDGE.findall(dot)


def _attr(attrs: str, key: str) -> str | None:
    m = re.search(rf'(?:^|, ){key}="([^"]*)"', attrs)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def resnet50() -> Compiled:
    return compile_file(SPECS / "resnet50.yaml")


@pytest.fixture(scope="module")
def branchy() -> Compiled:
    return compile_text(BRANCHY)


# --- structure --------------------------------------------------------------------------------------------------------
def test_resnet50_unfolded_has_every_layer_and_stage_clusters(resnet50: Compiled) -> None:
    dot = to_dot(resnet50, fold=False)
    nodes = _nodes(dot)
    layers = [n for n in resnet50.graph.nodes() if not n.is_input]
    assert len(layers) == 175
    assert set(nodes) == {n.name for n in resnet50.graph.nodes()}
    clusters = CLUSTER.findall(dot)
    assert {"layer1", "layer2", "layer3", "layer4"} <= set(clusters)
    # every block instance and the four projection shortcuts get their own nested cluster
    assert len([c for c in clusters if re.fullmatch(r"layer\d\.\d+", c)]) == 16
    assert sorted(c for c in clusters if c.endswith("downsample")) == [f"layer{i}.0.downsample" for i in range(1, 5)]
    assert "bottleneck x" not in dot


def test_resnet50_folds_stages_by_default(resnet50: Compiled) -> None:
    dot = to_dot(resnet50)
    assert dot == to_dot(resnet50, fold=True)
    nodes = {k: v for k, v in _nodes(dot).items() if not k.startswith("inset:")}  # the block inset: test_figures.py
    assert list(nodes) == ["image", "conv1", "bn1", "2", "maxpool", "scope:layer1", "scope:layer2", "scope:layer3",
                           "scope:layer4", "avgpool", "9", "fc"]
    assert "bottleneck x 3" in nodes["scope:layer1"] and "bottleneck x 3" in nodes["scope:layer4"]
    assert "bottleneck x 4" in nodes["scope:layer2"]
    assert "bottleneck x 6" in nodes["scope:layer3"]
    assert "512x28x28 → 1024x14x14" in nodes["scope:layer3"]
    assert "7.1M params" in nodes["scope:layer3"]  # 7,098,368 in torchvision's layer3
    assert CLUSTER.findall(dot) == ["inset:layer1.0"]
    assert [(a, b) for a, b, _ in _edges(dot)][4:9] == [
        ("maxpool", "scope:layer1"), ("scope:layer1", "scope:layer2"), ("scope:layer2", "scope:layer3"),
        ("scope:layer3", "scope:layer4"), ("scope:layer4", "avgpool")]


def test_depth_summarises_scopes_at_that_level(resnet50: Compiled) -> None:
    one = _nodes(to_dot(resnet50, depth=1))
    assert [n for n in one if n.startswith("scope:")] == [f"scope:layer{i}" for i in range(1, 5)]
    two = to_dot(resnet50, depth=2)
    blocks = [n for n in _nodes(two) if n.startswith("scope:")]
    assert len(blocks) == 3 + 4 + 6 + 3 and blocks[0] == "scope:layer1.0" and blocks[-1] == "scope:layer4.2"
    assert set(CLUSTER.findall(two)) == {"layer1", "layer2", "layer3", "layer4", "inset:layer1.0"}
    assert "bottleneck" in _nodes(two)["scope:layer2.0"] and "256x56x56 → 512x28x28" in _nodes(two)["scope:layer2.0"]
    # depth opens the automatic folding; fold=True on top of it folds the stages again
    assert len(_nodes(to_dot(resnet50, depth=4))) == 176
    assert len([n for n in _nodes(to_dot(resnet50, depth=2, fold=True)) if not n.startswith("inset:")]) == 12


def test_shortcuts_are_dashed_and_coloured(resnet50: Compiled) -> None:
    dashed = [(a, b) for a, b, attrs in _edges(to_dot(resnet50, fold=False)) if _attr(attrs, "style") == "dashed"]
    # 12 identity shortcuts (one edge each) + 4 projections (input -> conv -> bn -> add)
    assert len(dashed) == 12 + 4 * 3
    assert ("layer1.0.downsample.1", "layer1.0.0") in dashed and ("layer1.0.1", "layer1.1.0") in dashed
    assert ("maxpool", "layer1.0.conv1") not in dashed
    assert all(_attr(attrs, "color") == SHORTCUT_COLOR for _, _, attrs in _edges(to_dot(resnet50, fold=False))
               if _attr(attrs, "style") == "dashed")


def test_edges_follow_ports_and_concat_inputs_are_numbered(branchy: Compiled) -> None:
    dot = to_dot(branchy)
    into_mix = [(a, _attr(attrs, "headlabel")) for a, b, attrs in _edges(dot) if b == "mix"]
    assert into_mix == [("mix.b1", "0"), ("mix.b3.conv", "1"), ("mix.pool.proj", "2")]
    into_dense = [(a, _attr(attrs, "headlabel"), _attr(attrs, "style")) for a, b, attrs in _edges(dot)
                  if b == "dense"]
    assert into_dense == [("res", "0", "dashed"), ("dense.grow", "1", None)]  # the dense shortcut comes first
    into_res = [(a, _attr(attrs, "style")) for a, b, attrs in _edges(dot) if b == "res"]
    assert into_res == [("res.bn", None), ("mix", "dashed")]
    assert {"mix.b3", "mix.pool", "res", "dense"} <= set(CLUSTER.findall(dot))
    assert "concat input order" in dot and "shortcut / skip connection" in dot


def test_input_numbering_follows_the_op_capability_not_its_name(branchy: Compiled,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_op("concat").ordered_inputs and not get_op("add").ordered_inputs
    monkeypatch.setattr(type(get_op("add")), "ordered_inputs", True)  # an op that declares it: "res" is an add
    dot = to_dot(branchy)
    into_res = [(a, _attr(attrs, "headlabel")) for a, b, attrs in _edges(dot) if b == "res"]
    assert into_res == [("res.bn", "0"), ("mix", "1")]
    assert _attr(_nodes(dot)["res"], "ordering") == "in"
    monkeypatch.setattr(type(get_op("concat")), "ordered_inputs", False)
    assert [_attr(attrs, "headlabel") for a, b, attrs in _edges(to_dot(branchy)) if b == "mix"] == [None] * 3


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_summary_and_diagram_fold_the_same_scopes_at_a_depth(resnet50: Compiled, depth: int) -> None:
    g = resnet50.graph
    rows = {r.path: r.op for r in summarize(resnet50, depth).rows if r.path in g.scopes and r.path not in g}
    items = plan_view(g, depth=depth, fold=False).items.values()
    assert {item.scope for item in items if item.scope} == set(rows)
    if depth == 1:
        assert rows == {f"layer{i}": "bottleneck" for i in range(1, 5)}  # as README shows
    assert folded_at(["a", "a.b", "a.b.c"], depth) == ["a", "a.b", "a.b.c"][depth - 1]
    assert folded_at(["a"], 2) is None and folded_at(["a", "a.b"], None) is None


def test_labels_show_name_op_and_shape(branchy: Compiled) -> None:
    nodes = _nodes(to_dot(branchy))
    assert "<B>stem</B>" in nodes["stem"] and "conv 3x3, 16" in nodes["stem"] and ">16x32x32<" in nodes["stem"]
    assert "<B>x</B>" in nodes["x"] and "input" in nodes["x"] and ">3x32x32<" in nodes["x"]
    assert "<B>" not in nodes["1"] and "relu" in nodes["1"]  # anonymous steps show only their op
    assert _attr(nodes["prob"], "peripheries") == "2" and "<I>output</I>" in nodes["prob"]
    assert all(_attr(attrs, "peripheries") is None for name, attrs in nodes.items() if name != "prob")


# --- colours and legend -----------------------------------------------------------------------------------------------
def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def test_colour_by_family_as_in_the_googlenet_figure(branchy: Compiled) -> None:
    nodes = _nodes(to_dot(branchy))
    fills = {name: _attr(attrs, "fillcolor") for name, attrs in nodes.items()}
    assert fills["stem"] == fills["mix.b3.reduce"] == FAMILY_STYLES["conv"].fill
    assert fills["mix.pool.0"] == fills["5"] == FAMILY_STYLES["pool"].fill  # maxpool and global_avgpool
    assert fills["prob"] == FAMILY_STYLES["head"].fill
    assert fills["mix"] == fills["res"] == fills["dense"] == FAMILY_STYLES["merge"].fill
    assert fills["res.bn"] == FAMILY_STYLES["norm"].fill and fills["1"] == FAMILY_STYLES["act"].fill
    assert fills["fc"] == FAMILY_STYLES["linear"].fill and fills["6"] == FAMILY_STYLES["tensor"].fill
    r, g, b = _rgb(FAMILY_STYLES["conv"].fill)
    assert b > r and b > g  # blue
    r, g, b = _rgb(FAMILY_STYLES["pool"].fill)
    assert r > g and r > b  # red
    r, g, b = _rgb(FAMILY_STYLES["head"].fill)
    assert min(r, g) > b + 60  # yellow
    families = [f for f in FAMILY_STYLES if f != "block"]
    assert len({FAMILY_STYLES[f].fill for f in families}) == len(families)


def test_legend_lists_only_the_families_present() -> None:
    c = compile_text("name: tiny\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {out: 4, k: 3}\n  - relu\n")
    dot = to_dot(c)
    legend = dot[dot.index("<B>Legend</B>"):]
    legend = legend[: legend.index("</TABLE>")]
    assert re.findall(r'<TD ALIGN="LEFT">([^<]+)</TD>', legend) == ["input", "convolution", "activation"]
    assert "shortcut" not in legend and "concat" not in legend


# --- escaping and determinism -----------------------------------------------------------------------------------------
def test_user_text_is_escaped() -> None:
    dot = to_dot(compile_text(HOSTILE))
    assert "<script>" not in dot and "</TD></TABLE>" not in dot.replace("</TD></TR></TABLE>", "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;/TD&gt;&lt;/TABLE&gt;" in dot
    assert r"\\N \\G &#x27;quoted&#x27;" in dot
    assert "&lt;B&gt;bold?&lt;/B&gt; &amp; &quot;q&quot; \\\\N" in dot
    assert re.search(r"(?<!\\)\\[NG]", dot) is None  # no lone backslash escape reaches Graphviz


@NEEDS_DOT
def test_escaped_text_renders_literally() -> None:
    svg = render(to_dot(compile_text(HOSTILE)), "svg").decode()
    root = ET.fromstring(svg)  # still well-formed XML
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert '<script>alert("x")</script>' in texts and "</TD></TABLE> \\N \\G 'quoted'" in texts
    assert '<B>bold?</B> & "q" \\N' in texts


def test_control_characters_are_replaced() -> None:
    assert dot_html("a\x00b\x1bc") == "a\ufffdb\ufffdc"


def test_dot_is_deterministic(resnet50: Compiled) -> None:
    again = compile_file(SPECS / "resnet50.yaml")
    for kwargs in ({}, {"fold": False}, {"depth": 2}, {"direction": "LR"}):
        assert to_dot(resnet50, **kwargs) == to_dot(again, **kwargs)
    assert "0x" not in to_dot(resnet50, fold=False)


def test_direction(branchy: Compiled) -> None:
    assert 'rankdir="LR";' in to_dot(branchy, direction="LR")
    with pytest.raises(UsageError, match="direction must be one of TB, LR, BT, RL"):
        to_dot(branchy, direction="sideways")


def test_layout_time_is_bounded(branchy: Compiled) -> None:
    dot = to_dot(branchy)
    assert 'nslimit="4";' in dot and 'mclimit="0.6";' in dot


# --- rendering --------------------------------------------------------------------------------------------------------
@NEEDS_DOT
def test_svg_renders(resnet50: Compiled) -> None:
    svg = render(to_dot(resnet50), "svg")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "bottleneck x 6" in texts and "layer3" in texts and "convolution" in texts
    assert render(to_dot(resnet50), "svg") == svg


@NEEDS_DOT
def test_png_and_pdf_render(branchy: Compiled) -> None:
    assert render(to_dot(branchy), "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert render(to_dot(branchy), "pdf").startswith(b"%PDF-")
    assert render(to_dot(branchy), "dot") == to_dot(branchy).encode()


@NEEDS_DOT
def test_png_refuses_absurd_sizes() -> None:
    c = compile_text("name: chain\ninputs: {x: [8]}\nbody:\n  - stage: {id: s, repeat: 400, body: [relu]}\n")
    dot = to_dot(c, fold=False)
    width, height = graphviz.layout_size(shutil.which("dot") or "dot", dot)
    assert height > graphviz.MAX_PNG_SIDE and width < 2000
    with pytest.raises(UsageError, match=r"PNG would be [\d,]+ x [\d,]+ pixels.*fold.*SVG"):
        render(dot, "png")
    assert render(to_dot(c), "png").startswith(b"\x89PNG")  # folded: one "s x 400" node
    assert "s x 400" in to_dot(c)


def test_png_refuses_too_many_nodes_before_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_text("name: chain\ninputs: {x: [8]}\nbody:\n  - stage: {id: s, repeat: 3001, body: [relu]}\n")
    monkeypatch.setattr(graphviz, "_run_dot", lambda *a: pytest.fail("laid out a graph it should refuse"))
    monkeypatch.setattr(graphviz.shutil, "which", lambda _: "/usr/bin/dot")
    with pytest.raises(UsageError, match="has 3,002 nodes, too many for a PNG"):
        render(to_dot(c, fold=False, budget=None), "png")  # the PNG guard, behind the layout budget


def test_missing_dot_is_a_usage_error(branchy: Compiled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphviz.shutil, "which", lambda _: None)
    with pytest.raises(UsageError, match="install Graphviz"):
        render(to_dot(branchy), "svg")
    assert render(to_dot(branchy), "dot").startswith(b'digraph "branchy" {')


def test_unknown_format(branchy: Compiled) -> None:
    with pytest.raises(UsageError, match="unknown diagram format 'gif'"):
        render(to_dot(branchy), "gif")


@NEEDS_DOT
def test_write_diagram(branchy: Compiled, tmp_path: Path) -> None:
    svg = write_diagram(branchy, tmp_path / "net.svg")
    assert ET.fromstring(svg.read_bytes()).tag == "{http://www.w3.org/2000/svg}svg"
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_diagram(branchy, svg)
    write_diagram(branchy, svg, fmt="dot", force=True)
    assert svg.read_text() == to_dot(branchy)
    assert write_diagram(branchy, tmp_path / "net.gv").read_text() == to_dot(branchy)
    with pytest.raises(UsageError, match="cannot tell the diagram format"):
        write_diagram(branchy, tmp_path / "net.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.gv", "net.svg"]


@NEEDS_DOT
@pytest.mark.parametrize("name", ["resnet152", "densenet121"])
def test_large_zoo_models_render_quickly(name: str) -> None:
    path = SPECS / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    c = compile_file(path)
    for fold in (None, False):
        start = time.perf_counter()
        svg = render(to_dot(c, fold=fold), "svg")
        assert time.perf_counter() - start < 20  # a generous guard; benchmarks measure the real time (< 5 s)
        assert svg.startswith(b"<?xml")
    assert "x 36" in to_dot(c) if name == "resnet152" else "dense_layer x 24" in to_dot(c)


# --- the layout budget ------------------------------------------------------------------------------------------------
def _stage(blocks: int) -> str:
    """A stage of ``blocks`` conv/relu/relu blocks: 3 layers each, folded into one node by default."""
    return ("name: staged\ninputs: {x: [4, 4, 4]}\nblocks:\n  unit:\n    body: [{conv: {out: 4, k: 1}}, relu, relu]\n"
            f"body:\n  - stage: {{id: s, block: unit, repeat: {blocks}}}\n")


def _groups(groups: int, layers: int) -> str:
    """``groups`` groups of ``layers`` relus: scopes that do not fold, so only collapsing by depth shrinks them."""
    lines = ["name: grouped", "inputs: {x: [4]}", "body:"]
    for i in range(groups):
        lines += [f"  - group: {{id: g{i}, body: [{', '.join(['relu'] * layers)}]}}"]
    return "\n".join(lines) + "\n"


def _flat(layers: int) -> str:
    return "name: flat\ninputs: {x: [4]}\nbody:\n" + "  - relu\n" * layers


SMALL = diagram.LayoutBudget(nodes=20, edges=40)


def test_no_fold_beyond_the_budget_is_refused_with_the_depth_that_fits() -> None:
    c = compile_text(_stage(10))
    with pytest.raises(UsageError) as err:
        to_dot(c, fold=False, budget=SMALL)
    assert str(err.value) == ("--no-fold: the diagram would have 31 nodes and 30 edges, more than Graphviz lays out "
                              "in reasonable time (20 nodes, 40 edges); draw fewer: --depth 2 (11 nodes and 10 edges), "
                              "drop --no-fold or write a .dot file (no layout)")
    assert len(_nodes(to_dot(c, fold=False, budget=None))) == 31  # no budget: drawn whole
    assert len(_nodes(to_dot(c, fold=False, budget=diagram.LayoutBudget(nodes=31, edges=30)))) == 31  # at the limit


def test_depth_beyond_the_budget_is_refused_with_a_shallower_one() -> None:
    c = compile_text(_groups(3, 10))
    with pytest.raises(UsageError) as err:
        to_dot(c, depth=2, budget=SMALL)
    assert str(err.value) == ("--depth 2: the diagram would have 31 nodes and 30 edges, more than Graphviz lays out "
                              "in reasonable time (20 nodes, 40 edges); draw fewer: --depth 1 (4 nodes and 3 edges) "
                              "or write a .dot file (no layout)")


def test_default_drawing_collapses_by_depth_to_fit_and_says_so_in_the_legend() -> None:
    c = compile_text(_groups(3, 10))
    dot, note = diagram.diagram_dot(c, budget=SMALL)
    assert note == ("31 nodes and 30 edges exceed the layout budget of 20 nodes and 40 edges: scopes below depth 1 "
                    "are collapsed (4 nodes and 3 edges); --depth N chooses the level")
    assert list(_nodes(dot)) == ["x", "scope:g0", "scope:g1", "scope:g2"]
    assert "<I>31 nodes and 30 edges exceed the layout budget of 20 nodes<BR/>and 40 edges: " in dot  # in the legend
    assert dot == to_dot(c, budget=SMALL)
    assert diagram.diagram_dot(c)[1] == ""  # within the default budget nothing is collapsed
    assert len(_nodes(to_dot(c))) == 31


def test_a_flat_chain_beyond_the_budget_draws_runs_of_layers() -> None:
    c = compile_text(_flat(95))
    dot, note = diagram.diagram_dot(c, budget=SMALL)
    assert note == ("96 nodes and 95 edges exceed the layout budget of 20 nodes and 40 edges: scopes are collapsed "
                    "and runs of up to 10 top-level layers drawn as one node (11 nodes and 10 edges)")
    nodes = _nodes(dot)
    assert list(nodes) == ["x", *(f"run:{i}" for i in range(0, 95, 10))]
    assert "<B>0 … 9</B>" in nodes["run:0"] and "10 layers" in nodes["run:0"]
    assert "<B>90 … 94</B>" in nodes["run:90"] and "5 layers" in nodes["run:90"] and "<I>output</I>" in nodes["run:90"]
    assert [(a, b) for a, b, _ in _edges(dot)][:2] == [("x", "run:0"), ("run:0", "run:10")]


def test_too_many_top_level_nodes_even_in_runs_is_refused() -> None:
    c = compile_text(_groups(30, 1))  # 30 scopes at the top level: runs cannot merge scopes
    with pytest.raises(UsageError, match=r"^the diagram would have 31 nodes and 30 edges even with every scope "
                       r"collapsed, .*\(20 nodes, 40 edges\); write a \.dot file \(no layout\) or group the steps"):
        to_dot(c, budget=SMALL)


def test_write_diagram_prints_the_note_and_a_dot_file_is_not_budgeted(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_text(_groups(3, 10))
    monkeypatch.setattr(graphviz, "render", lambda text, fmt: text.encode())  # no layout needed to test the wiring
    notes: list[str] = []
    out = write_diagram(c, tmp_path / "g.svg", budget=SMALL, on_note=notes.append)
    assert len(_nodes(out.read_text())) == 4 and notes[0].startswith("31 nodes and 30 edges exceed")
    dot_file = write_diagram(c, tmp_path / "g.dot", fold=False, budget=SMALL, on_note=notes.append)
    assert len(_nodes(dot_file.read_text())) == 31 and len(notes) == 1


def test_graphviz_killed_by_a_signal_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(graphviz.shutil, "which", lambda _: str(fake))
    with pytest.raises(UsageError) as err:
        render(to_dot(compile_text(_flat(3))), "svg")
    assert str(err.value) == ("Graphviz crashed (SIGSEGV) laying out the diagram; draw fewer nodes (fold repeated "
                              "blocks, a smaller --depth) or write a .dot file, which is not laid out")


def test_draw_command_refuses_no_fold_beyond_the_default_budget(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archc.cli.main import app  # with the emitting commands registered

    spec = tmp_path / "big.yaml"
    spec.write_text(_stage(700))  # 2,100 layers: over the 2,000-node budget, cheap to compile
    result = CliRunner().invoke(app, ["draw", str(spec), "-o", str(tmp_path / "big.svg"), "--no-fold"])
    assert result.exit_code == 2
    assert result.stderr == ("archc: error: --no-fold: the diagram would have 2,101 nodes and 2,100 edges, more than "
                             "Graphviz lays out in reasonable time (2,000 nodes, 4,000 edges); draw fewer: --depth 2 "
                             "(701 nodes and 700 edges), drop --no-fold or write a .dot file (no layout)\n")
    assert not (tmp_path / "big.svg").exists()


@NEEDS_DOT
def test_draw_command_collapses_a_large_graph_and_notes_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archc.cli.main import app  # with the emitting commands registered

    spec, out = tmp_path / "big.yaml", tmp_path / "big.svg"
    spec.write_text(_groups(21, 100))  # 2,100 layers in 21 groups that do not fold
    result = CliRunner().invoke(app, ["draw", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ("archc: note: 2,101 nodes and 2,100 edges exceed the layout budget of 2,000 nodes and "
                             "4,000 edges: scopes below depth 1 are collapsed (22 nodes and 21 edges); --depth N "
                             "chooses the level\n")
    texts = [t.text for t in ET.fromstring(out.read_bytes()).iter("{http://www.w3.org/2000/svg}text")]
    assert "g20" in texts and "0" not in texts and "2,101 nodes and 2,100 edges exceed the layout budget of" in texts
