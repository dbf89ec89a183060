"""Drawing a spec with errors: the graph as far as it compiles, the failure in red, the errors in the heading.

`compile_partial` keeps the lowered graph when lowering reports errors; `archc draw` writes the partial diagram and
still exits 1 with the diagnostics; a spec that never gets to a graph (YAML syntax) writes nothing.
"""

from __future__ import annotations

import ast
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_runner import run

from archc.cli import emit_cmds  # noqa: F401  (registers draw)
from archc.compiler import compile_partial
from archc.emit.diagram.partial import (
    ERROR_COLOR,
    ERROR_FILL,
    LOST_EDGE_COLOR,
    UNTYPED_FILL,
    partial_dot,
    to_dot_partial,
)
from archc.emit.diagram.style import FAMILY_STYLES
from archc.emit.diagram.view import LayoutBudget
from archc.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$', re.M)
EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$', re.M)
SVG = "{http://www.w3.org/2000/svg}"

# conv3 expands 64 -> 256 channels, but the shortcut is forced to identity: the add gets [256,56,56] and [64,56,56]
BAD_ADD = """
name: bad_residual
doc: A bottleneck whose identity shortcut cannot match its 256-channel body.
inputs: {image: [3, 224, 224]}
body:
  - conv: {id: conv1, out: 64, k: 7, s: 2, p: 3, bias: false}
  - bn: {id: bn1}
  - relu
  - maxpool: {id: maxpool, k: 3, s: 2, p: 1}
  - residual:
      id: block1
      body:
        - conv: {id: conv1, out: 64, k: 1, bias: false}
        - bn: {id: bn1}
        - relu
        - conv: {id: conv3, out: 256, k: 1, bias: false}
        - bn: {id: bn3}
      shortcut: identity
  - relu: {id: relu}
  - conv: {id: conv2, out: 128, k: 3, s: 2, p: 1}
  - global_avgpool: {id: avgpool}
  - flatten: {id: flat}
  - linear: {id: fc, out: 10}
"""
TYPED = ["image", "conv1", "bn1", "2", "maxpool", "block1.conv1", "block1.bn1", "block1.2", "block1.conv3",
         "block1.bn3"]
AFTER = ["block1", "relu", "conv2", "avgpool", "flat", "fc"]

HOSTILE = BAD_ADD.replace("  - relu: {id: relu}\n", "  - relu: {id: relu}\n  - '<script>&\"x\"</script>'\n")


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _attrs(dot: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    return dict(NODE.findall(dot)), {(a, b): attrs for a, b, attrs in EDGE.findall(dot)}


def _attr(attrs: str, key: str) -> str | None:
    m = re.search(rf'\b{key}="([^"]*)"', attrs)
    return m.group(1) if m else None


# --- compile_partial --------------------------------------------------------------------------------------------------
def test_compile_partial_keeps_the_graph_up_to_the_failure(tmp_path: Path) -> None:
    result = compile_partial(_write(tmp_path, BAD_ADD))
    assert result.compiled is None and result.graph is not None
    (d,) = result.diagnostics
    assert (d.code, d.path) == ("E301", "block1")
    assert "turns [64, 56, 56] into [256, 56, 56]" in d.message and "`shortcut: projection`" in d.message
    g = result.graph
    assert [n.name for n in g.nodes()] == TYPED[:-2] + ["block1.conv3", "block1.bn3"] + AFTER
    assert {n.name: n.out_type.shape for n in g.nodes() if n.out_type is not None} == {
        "image": (3, 224, 224), "conv1": (64, 112, 112), "bn1": (64, 112, 112), "2": (64, 112, 112),
        "maxpool": (64, 56, 56), "block1.conv1": (64, 56, 56), "block1.bn1": (64, 56, 56), "block1.2": (64, 56, 56),
        "block1.conv3": (256, 56, 56), "block1.bn3": (256, 56, 56)}
    assert all(g.node(n).out_type is None for n in AFTER)
    assert g.input_names("block1") == ["block1.bn3", "maxpool"]
    assert g.input_names("relu") == []  # its input was the failed add's output, which does not exist


def test_compile_partial_of_a_valid_spec_is_the_compiled_result() -> None:
    result = compile_partial(ROOT / "specs" / "resnet18.yaml")
    assert result.diagnostics == [] and result.compiled is not None
    assert result.graph is result.compiled.graph
    assert result.compiled.costs.total.params == 11_689_512


def test_compile_partial_yaml_error_has_no_graph(tmp_path: Path) -> None:
    result = compile_partial(_write(tmp_path, "name: x\ninputs: {x: [3, 8, 8]\nbody: [relu]\n"))
    assert result.graph is None and result.compiled is None
    assert len(result.diagnostics) == 1 and result.diagnostics[0].code.startswith("E0")


# --- the DOT text -----------------------------------------------------------------------------------------------------
def test_failing_layer_and_its_input_edges_are_red(tmp_path: Path) -> None:
    result = compile_partial(_write(tmp_path, BAD_ADD))
    assert result.graph is not None
    dot = to_dot_partial(result.graph, result.diagnostics)
    nodes, edges = _attrs(dot)
    assert _attr(nodes["block1"], "color") == ERROR_COLOR
    assert "E301" in nodes["block1"]
    red = sorted(e for e, attrs in edges.items() if _attr(attrs, "color") == ERROR_COLOR)
    assert red == [("block1.bn3", "block1"), ("maxpool", "block1")]
    for name in AFTER[1:]:
        assert _attr(nodes[name], "fillcolor") == UNTYPED_FILL, name
        assert re.search(r">\?<", nodes[name]), f"{name} should show a ? shape"
    for name in TYPED:
        assert _attr(nodes[name], "fillcolor") != UNTYPED_FILL, name
    assert _attr(nodes["conv1"], "fillcolor") == FAMILY_STYLES["conv"].fill
    # the step after the failure lost its input; a dotted edge keeps the picture connected
    assert _attr(edges[("block1", "relu")], "style") == "dotted"
    assert _attr(edges[("block1", "relu")], "color") == LOST_EDGE_COLOR
    assert [e for e, attrs in edges.items() if _attr(attrs, "style") == "dotted"] == [("block1", "relu")]
    assert "partial diagram: the spec has 1 error" in dot
    assert "body turns [64, 56, 56] into [256, 56, 56]" in dot
    assert "9 of 15 layers typed" in dot
    assert dot == to_dot_partial(result.graph, result.diagnostics)  # deterministic


def test_diagnostics_are_escaped(tmp_path: Path) -> None:
    result = compile_partial(_write(tmp_path, HOSTILE))
    assert result.graph is not None
    assert sorted(d.code for d in result.diagnostics) == ["E104", "E301"]
    dot = to_dot_partial(result.graph, result.diagnostics)
    assert "<script>" not in dot and '"x"' not in dot
    assert "&lt;script&gt;&amp;&quot;x&quot;&lt;/script&gt;" in dot


@NEEDS_DOT
def test_large_partial_graph_keeps_the_failing_stage_open(tmp_path: Path) -> None:
    """ResNet-50 with identity shortcuts fails in layer1.0; that stage stays unfolded, later stages fold."""
    text = (ROOT / "specs" / "resnet50.yaml").read_text()
    text = text.replace("shortcut: {kind: projection, id: downsample}", "shortcut: identity")
    result = compile_partial(_write(tmp_path, text))
    assert result.graph is not None
    assert [(d.code, d.path) for d in result.diagnostics] == [("E301", "layer1.0.0")]
    nodes, edges = _attrs(to_dot_partial(result.graph, result.diagnostics))
    assert "layer1.0.conv1" in nodes and "scope:layer1" not in nodes
    assert {"scope:layer2", "scope:layer3", "scope:layer4"} <= set(nodes)
    assert "? params" in nodes["scope:layer2"] and "0 params" not in nodes["scope:layer2"]
    red = sorted(e for e, attrs in edges.items() if _attr(attrs, "color") == ERROR_COLOR)
    assert red == [("layer1.0.bn3", "layer1.0.0"), ("maxpool", "layer1.0.0")]



def test_partial_diagram_beyond_the_layout_budget_collapses_and_says_so(tmp_path: Path) -> None:
    result = compile_partial(_write(tmp_path, BAD_ADD))
    assert result.graph is not None
    dot, note = partial_dot(result.graph, result.diagnostics, budget=LayoutBudget(nodes=12, edges=40))
    assert note == ("16 nodes and 15 edges exceed the layout budget of 12 nodes and 40 edges: scopes below depth 1 "
                    "are collapsed (11 nodes and 9 edges); --depth N chooses the level")
    nodes, _ = _attrs(dot)
    assert list(nodes) == ["image", "conv1", "bn1", "2", "maxpool", "scope:block1", *AFTER[1:]]
    assert _attr(nodes["scope:block1"], "fillcolor") == ERROR_FILL and "E301" in nodes["scope:block1"]
    with pytest.raises(UsageError, match=r"^--no-fold: the diagram would have 16 nodes and 15 edges"):
        partial_dot(result.graph, result.diagnostics, fold=False, budget=LayoutBudget(nodes=12, edges=40))

# --- the command ------------------------------------------------------------------------------------------------------
@NEEDS_DOT
def test_draw_writes_the_partial_svg_and_exits_1(tmp_path: Path) -> None:
    spec, out = _write(tmp_path, BAD_ADD), tmp_path / "bad.svg"
    result = run("draw", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert "wrote" in result.stdout and "partial" in result.stdout
    assert "E301: block1: the residual's body turns [64, 56, 56] into [256, 56, 56]" in result.stderr
    assert result.stderr.rstrip().endswith("1 error")
    root = ET.fromstring(out.read_bytes())
    red = set()
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "edge":
            title = g.find(f"{SVG}title")
            path = g.find(f"{SVG}path")
            if title is not None and path is not None and path.get("stroke") == ERROR_COLOR:
                red.add(title.text)
    assert red == {"block1.bn3->block1", "maxpool->block1"}
    svg_text = out.read_text()
    assert "E301" in svg_text and "into [256, 56, 56]" in svg_text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.svg", "spec.yaml"]  # no temp file left


@NEEDS_DOT
def test_draw_partial_png(tmp_path: Path) -> None:
    out = tmp_path / "bad.png"
    result = run("draw", str(_write(tmp_path, BAD_ADD)), "-o", str(out))
    assert result.exit_code == 1
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_draw_yaml_syntax_error_writes_nothing(tmp_path: Path) -> None:
    spec = _write(tmp_path, "name: x\ninputs: {x: [3, 8, 8]\nbody: [relu]\n")
    out = tmp_path / "never.svg"
    result = run("draw", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert re.search(r"spec\.yaml:\d+:\d+: E0\d\d: ", result.stderr)
    assert "wrote" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_draw_partial_respects_existing_files(tmp_path: Path) -> None:
    spec, out = _write(tmp_path, BAD_ADD), tmp_path / "bad.dot"
    out.write_bytes(b"precious")
    result = run("draw", str(spec), "-o", str(out))
    assert result.exit_code == 2 and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
    result = run("draw", str(spec), "-o", str(out), "--force")
    assert result.exit_code == 1
    assert out.read_text().startswith('digraph "bad_residual" {')


def test_draw_valid_spec_still_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "ok.dot"
    result = run("draw", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    assert "partial diagram" not in out.read_text()


def test_draw_help_documents_partial_drawing() -> None:
    result = run("draw", "--help")
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    assert "still drawn as far as it compiles" in flat
    assert "exit code is 1" in flat


def test_the_diagram_modules_import_no_private_names_from_each_other() -> None:
    # the partial diagram is a decoration of the one DOT writer, not a second writer built from its private parts
    package = ROOT / "archc" / "emit" / "diagram"
    private = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archc."):
                private += [f"{module.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert {"__init__.py", "dot.py", "dot_text.py", "figure.py", "fold.py", "graphviz.py", "inset.py", "partial.py",
            "style.py", "view.py"} <= {p.name for p in package.glob("*.py")}
    assert private == []
