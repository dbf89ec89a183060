"""Paper figures: block insets beside the main path, and the figure options (title, legend, palette, font)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from archc.compiler import Compiled, compile_file
from archc.emit.diagram import FigureOptions, render, to_dot
from archc.emit.diagram.figure import OKABE_ITO, PALETTES
from archc.emit.diagram.style import FAMILY_STYLES
from tests.cli_runner import run

SPECS = Path(__file__).resolve().parent.parent / "specs"
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$', re.M)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def resnet50() -> Compiled:
    return compile_file(SPECS / "resnet50.yaml")


@pytest.fixture(scope="module")
def googlenet() -> Compiled:
    return compile_file(SPECS / "googlenet.yaml")


def _nodes(dot: str) -> dict[str, str]:
    return dict(NODE.findall(dot))


def _svg_node_titles(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return [g.findtext(f"{SVG}title") or "" for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


def _plain_positions(dot: str) -> dict[str, tuple[float, float]]:
    """Node centre (x, y) in inches from ``dot -Tplain``."""
    plain = subprocess.run(["dot", "-Tplain"], input=dot.encode(), capture_output=True, check=True).stdout.decode()
    out = {}
    for line in plain.splitlines():
        if line.startswith("node "):
            m = re.match(r'node ("(?:[^"\\]|\\.)*"|\S+) (\S+) (\S+)', line)
            assert m is not None
            out[m.group(1).strip('"')] = (float(m.group(2)), float(m.group(3)))
    return out


# --- insets -----------------------------------------------------------------------------------------------------------
@NEEDS_DOT
def test_resnet50_default_figure_has_a_short_main_path_and_one_bottleneck_inset(resnet50: Compiled) -> None:
    titles = _svg_node_titles(render(to_dot(resnet50), "svg"))
    main = [t for t in titles if not t.startswith("inset:")]
    inset = [t for t in titles if t.startswith("inset:layer1.0:")]
    assert len(main) == 12 <= 20
    assert main[5:9] == ["scope:layer1", "scope:layer2", "scope:layer3", "scope:layer4"]
    # the bottleneck's body: three conv-bn pairs, two relus between them, the projection shortcut, add, relu
    assert sorted(t.removeprefix("inset:layer1.0:") for t in inset) == sorted([
        "in", "out", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.0.2", "layer1.0.conv2", "layer1.0.bn2",
        "layer1.0.0.5", "layer1.0.conv3", "layer1.0.bn3", "layer1.0.downsample.0", "layer1.0.downsample.1",
        "layer1.0.0", "layer1.0.1"])
    assert len(titles) == len(main) + len(inset)


def test_inset_caption_names_the_block_the_instance_and_every_use(resnet50: Compiled) -> None:
    dot = to_dot(resnet50)
    cluster = dot.split('subgraph "cluster_inset:layer1.0" {', 1)[1].split("\n  }", 1)[0]
    assert "<B>bottleneck</B> = " in cluster
    assert "(as layer1.0; used in layer1, layer2, layer3, layer4)" in cluster
    nodes = _nodes(dot)
    assert "conv 3x3, 64" in nodes["inset:layer1.0:layer1.0.conv2"]
    assert "<B>downsample</B>" in nodes["inset:layer1.0:layer1.0.downsample.0"]  # a numbered step named by its scope
    # the projection shortcut keeps the main drawing's dashed skip style
    assert re.search(r'"inset:layer1.0:in" -> "inset:layer1.0:layer1.0.downsample.0" \[style="dashed"', dot)
    assert re.search(r'"inset:layer1.0:layer1.0.bn3" -> "inset:layer1.0:layer1.0.0"(;| \[)', dot)


@NEEDS_DOT
def test_inset_starts_level_with_its_first_use(resnet50: Compiled) -> None:
    pos = _plain_positions(to_dot(resnet50))
    assert pos["inset:layer1.0:in"][1] == pytest.approx(pos["scope:layer1"][1])
    assert pos["inset:layer1.0:in"][0] > pos["scope:layer1"][0] + 1  # beside it, not on the main path


def test_insets_can_be_turned_off(resnet50: Compiled) -> None:
    dot = to_dot(resnet50, options=FigureOptions(insets=False))
    assert "inset:" not in dot
    assert list(_nodes(dot)) == [n for n in _nodes(to_dot(resnet50)) if not n.startswith("inset:")]


def test_blocks_collapsed_at_a_depth_get_insets_too(googlenet: Compiled) -> None:
    nodes = _nodes(to_dot(googlenet, depth=1))
    inception = [n for n in nodes if n.startswith("inset:inception3a:")]
    basic = [n for n in nodes if n.startswith("inset:conv1:")]
    # four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; pool -> 1x1; six basic convs of conv, bn, relu, then concat
    assert sum("<B>conv</B>" in nodes[n] for n in inception) == 6
    assert sum(">concat<" in nodes[n] or "concat" in nodes[n].split("<B>")[-1] for n in inception) >= 1
    assert len(inception) == 6 * 3 + 1 + 1 + 2  # + maxpool, concat, in, out
    assert len(basic) == 3 + 2
    assert not any(n.startswith("inset:inception3b") for n in nodes)  # one inset per block, not per use


def test_the_inset_draws_the_fullest_instance() -> None:
    # EfficientNet-B0's first MBConv has no expansion and no shortcut (ratio 1, a channel change); features.2.0 has
    # the expansion but strides; features.2.1 is the first with both, the block as the paper draws it
    dot = to_dot(compile_file(SPECS / "efficientnet_b0.yaml"))
    assert "(as features.2.1; used in features.1, features.2, features.3, features.4 … (7 in all))" in dot
    nodes = _nodes(dot)
    inset = [n for n in nodes if n.startswith("inset:features.2.1:")]
    # expand (3), depthwise (3), squeeze-excitation (7), project (2), stochastic depth, the residual add; in, out
    assert len(inset) == 17 + 2
    assert "conv 1x1, 144" in nodes["inset:features.2.1:features.2.1.block.0.0"]  # the expansion
    assert "<TD>add</TD>" in nodes["inset:features.2.1:features.2.1.0"]  # the shortcut's merge


def test_small_unfolded_graphs_have_no_inset() -> None:
    assert "inset:" not in to_dot(compile_file(SPECS / "vgg16.yaml"))


# --- options ----------------------------------------------------------------------------------------------------------
def test_no_title_and_no_legend(googlenet: Compiled) -> None:
    plain = to_dot(googlenet, options=FigureOptions(title=False))
    assert "Going Deeper" not in plain and "Legend" in plain
    bare = to_dot(googlenet, options=FigureOptions(legend=False))
    assert "Going Deeper" in bare and "Legend" not in bare and "concat input order" not in bare
    neither = to_dot(googlenet, options=FigureOptions(title=False, legend=False))
    assert "  label=" not in neither.split("node [", 1)[0]


def test_title_drops_markdown_backticks(googlenet: Compiled) -> None:
    assert "`" in googlenet.graph.doc
    dot = to_dot(googlenet)
    assert "`" not in dot and "(torchvision.models.googlenet)" in dot


def _colours(dot: str) -> set[str]:
    return set(re.findall(r'"(#[0-9a-fA-F]{6})"', dot)) | set(re.findall(r'="(#[0-9a-fA-F]{6})"', dot))


def test_print_palette_is_grayscale(resnet50: Compiled) -> None:
    dot = to_dot(resnet50, options=FigureOptions(palette="print"))
    colours = _colours(dot)
    assert len(colours) >= 6
    assert all(c[1:3] == c[3:5] == c[5:7] for c in colours), colours
    # the conv fill keeps its lightness: #a9c9f2 -> BT.709 luminance 197.2 = #c5c5c5
    assert PALETTES["print"].family("conv").fill == "#c5c5c5"
    assert 'fillcolor="#c5c5c5"' in _nodes(dot)["conv1"]


def test_colorblind_palette_uses_okabe_ito(resnet50: Compiled) -> None:
    dot = to_dot(resnet50, options=FigureOptions(palette="colorblind"))
    conv = PALETTES["colorblind"].family("conv")
    assert conv.border == OKABE_ITO["sky_blue"]
    assert f'fillcolor="{conv.fill}"' in _nodes(dot)["conv1"] and f'color="{conv.border}"' in _nodes(dot)["conv1"]
    borders = {PALETTES["colorblind"].family(k).border for k in ("conv", "pool", "norm", "act", "linear", "merge")}
    assert borders <= set(OKABE_ITO.values()) and len(borders) == 6
    assert FAMILY_STYLES["conv"].fill not in dot


def test_font_and_size(resnet50: Compiled) -> None:
    dot = to_dot(resnet50, options=FigureOptions(font="Times", font_size=14))
    head = dot.split("\n  subgraph", 1)[0].split('\n  "image"', 1)[0]
    assert 'fontname="Times"' in head and "Helvetica" not in dot
    assert re.search(r'node \[.*fontname="Times", fontsize="14"', head)
    assert 'POINT-SIZE="12.6"' in _nodes(dot)["conv1"]  # shape rows: 9/10 of the name size


def test_draw_command_options(tmp_path: Path) -> None:
    out = tmp_path / "r.dot"
    result = run("draw", str(SPECS / "resnet50.yaml"), "-o", str(out), "--no-title", "--no-legend", "--no-insets",
                 "--palette", "print", "--font", "Times", "--font-size", "12")
    assert result.exit_code == 0, result.output
    dot = out.read_text()
    assert "inset:" not in dot and "Legend" not in dot and "Deep Residual" not in dot and 'fontname="Times"' in dot
    bad = run("draw", str(SPECS / "resnet50.yaml"), "-o", str(out), "-f", "--palette", "sepia")
    assert bad.exit_code == 2 and "unknown palette 'sepia'; choose one of default, print, colorblind" in bad.output
    bad = run("draw", str(SPECS / "resnet50.yaml"), "-o", str(out), "-f", "--font-size", "100")
    assert bad.exit_code == 2 and "font size must be between 4 and 48 points; got 100" in bad.output
    bad = run("draw", str(SPECS / "resnet50.yaml"), "-o", str(out), "-f", "--font", 'Evil"Font')
    assert bad.exit_code == 2 and "font name must be a plain name" in bad.output


# --- left to right ----------------------------------------------------------------------------------------------------
def _json_layout(dot: str) -> dict[str, Any]:
    return json.loads(subprocess.run(["dot", "-Tjson"], input=dot.encode(), capture_output=True, check=True).stdout)


@NEEDS_DOT
def test_googlenet_left_to_right_wraps_into_rows_that_fit_a_page(googlenet: Compiled) -> None:
    # unfolded, every layer drawn (folded, its runs of inception modules are three nodes)
    one_row = _json_layout(to_dot(googlenet, direction="TB", fold=False).replace('rankdir="TB"', 'rankdir="LR"'))
    x0, y0, x1, y1 = (float(v) for v in one_row["bb"].split(","))
    assert (x1 - x0) / (y1 - y0) > 10  # one row: 98 x 7 inches, unreadable at any page width
    dot = to_dot(googlenet, direction="LR", fold=False)
    data = _json_layout(dot)
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    assert 0.5 <= (x1 - x0) / (y1 - y0) <= 2.5
    rows = sorted((o["name"], [float(v) for v in o["bb"].split(",")]) for o in data["objects"]
                  if o["name"].startswith("cluster_row:"))
    assert [name for name, _ in rows] == ["cluster_row:0", "cluster_row:1", "cluster_row:2", "cluster_row:3"]
    spans = sorted((bb[1], bb[3]) for _, bb in rows)
    assert all(low_next >= high for (_, high), (low_next, _) in itertools.pairwise(spans))  # no overlap
    # rows break between modules only: each inception module lies in one row
    for module in ("inception3a", "inception4b", "inception5b"):
        members = [n for n in _nodes(dot) if n.startswith(module + ".")]
        holders = {name for name, _ in rows if any(f'"{m}"' in _row_body(dot, name) for m in members)}
        assert len(holders) == 1, (module, holders)
    # every layer is still drawn, and the edges inside odd rows run backwards so the drawing snakes
    assert len([n for n in _nodes(dot) if not n.startswith("inset:")]) == len(googlenet.graph)
    assert 'dir="back"' in dot and 'dir="back"' not in to_dot(googlenet)


def _row_body(dot: str, name: str) -> str:
    """The statements inside the row's cluster (up to its closing brace)."""
    body = dot.split(f'subgraph "{name}" {{', 1)[1]
    depth = 1
    for i, line in enumerate(body.splitlines()):
        depth += line.rstrip().endswith("{") - (line.strip() == "}")
        if depth == 0:
            return "\n".join(body.splitlines()[:i])
    raise AssertionError(f"{name} is not closed")


def test_short_or_top_to_bottom_drawings_do_not_wrap(resnet50: Compiled) -> None:
    assert "cluster_row:" not in to_dot(resnet50, direction="LR")  # 12 nodes fit a page in one row
    assert "cluster_row:" not in to_dot(compile_file(SPECS / "googlenet.yaml"))
    assert "cluster_row:" not in to_dot(compile_file(SPECS / "unet.yaml"), direction="LR")  # the U's columns


def test_a_partial_drawing_takes_the_options(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {id: c, out: 4, k: 3}\n"
                    "  - linear: {id: fc, out: 2, bogus: 1}\n")
    out = tmp_path / "bad.dot"
    result = run("draw", str(spec), "-o", str(out), "--palette", "print", "--font-size", "12")
    assert result.exit_code == 1, result.output
    dot = out.read_text()
    assert "partial diagram: the spec has 1 error" in dot
    assert 'fontsize="12"' in dot and PALETTES["print"].family("conv").fill in dot
    assert 'POINT-SIZE="10.8" COLOR="#444444">?<' in dot  # the failing layer's unknown shape, at the chosen size


@NEEDS_DOT
def test_a_network_inside_one_scope_wraps_between_its_children() -> None:
    compiled = compile_file(SPECS / "mobilenet_v2.yaml")  # everything but the classifier sits in `features`
    assert '"cluster_features" {' in to_dot(compiled, direction="TB", fold=False)  # unfolded: every block drawn
    dot = to_dot(compiled, direction="LR", fold=False)
    assert '"cluster_features" {' not in dot  # split across rows, so not drawn as one box
    assert '"cluster_features.2" {' in dot and len(re.findall(r'"cluster_row:\d+"', dot)) >= 3
    data = _json_layout(dot)
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    assert (x1 - x0) / (y1 - y0) <= 3  # one row was 193 x 5 inches
