"""The feature-map style (`archc draw --style blocks`): a 3-D box per feature map sized by C, H, W, in SVG and TikZ."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.diagram import FigureOptions
from archc.emit.diagram.blocks import CHANNEL_UNIT, MAX_FACE, VECTOR_UNIT, feature_boxes, render_blocks
from archc.errors import UsageError
from tests.cli_runner import run

SPECS = Path(__file__).resolve().parent.parent / "specs"
SVG = "{http://www.w3.org/2000/svg}"
NEEDS_LATEX = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                 reason="pdflatex is not installed (Debian: texlive-latex-base, texlive-pictures)")


def boxes(spec: str) -> dict[str, tuple[tuple[int, ...], float, float, float, list[str]]]:
    return {b.name: (b.shape, b.height, b.depth, b.thickness, b.then)
            for b in feature_boxes(compile_file(SPECS / f"{spec}.yaml"))}


def test_lenet5_is_the_papers_figure_2() -> None:
    got = boxes("lenet5")
    assert [(name, shape) for name, (shape, *_) in got.items()] == [
        ("image", (1, 32, 32)), ("c1", (6, 28, 28)), ("s2", (6, 14, 14)), ("c3", (16, 10, 10)),
        ("s4", (16, 5, 5)), ("c5", (120, 1, 1)), ("f6", (84,)), ("output", (10,))]
    assert got["c1"][4] == ["tanh"] and got["c5"][4] == ["tanh", "flatten"]  # shape-keeping layers join the box
    # height and receding depth to scale with H and W (the 32x32 input is the largest map), thickness 1 + log2 C
    for shape, height, depth, thickness, _ in got.values():
        if len(shape) == 3:
            assert height == pytest.approx(MAX_FACE * shape[1] / 32)
            assert depth == pytest.approx(MAX_FACE * shape[2] / 32)
            assert thickness == pytest.approx(CHANNEL_UNIT * (1 + math.log2(shape[0])))
        else:
            assert height == pytest.approx(VECTOR_UNIT * (1 + math.log2(shape[0])))
    assert got["c1"][1] / got["s2"][1] == pytest.approx(2.0)
    assert got["c3"][3] > got["s2"][3]  # 16 maps are thicker than 6


def test_alexnet_and_vgg16_sizes_follow_their_shapes() -> None:
    alex = boxes("alexnet")
    assert alex["features.0"][0] == (64, 55, 55) and alex["features.2"][0] == (64, 27, 27)
    assert alex["features.0"][1] / alex["features.2"][1] == pytest.approx(55 / 27)
    assert alex["features.0"][3] == alex["features.2"][3] < alex["features.3"][3] < alex["features.6"][3]
    assert [name for name, (shape, *_) in alex.items() if len(shape) == 1] == [
        "classifier.1", "classifier.4", "classifier.6"]
    vgg = boxes("vgg16")
    assert len(vgg) == 23  # input, 13 convs, 5 pools, avgpool, 3 linears: relus and dropouts join
    pools = [vgg[f"features.{i}"] for i in (4, 9, 16, 23, 30)]
    assert [p[0][1] for p in pools] == [112, 56, 28, 14, 7]
    assert [p[1] for p in pools] == pytest.approx([MAX_FACE / 2 ** k for k in range(1, 6)])  # each pool halves
    assert vgg["features.0"][3] == vgg["features.2"][3] < vgg["features.5"][3] < vgg["features.10"][3]


def test_folded_stages_are_one_box_each() -> None:
    got = boxes("resnet50")
    assert list(got) == ["image", "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    assert got["layer3"][0] == (1024, 14, 14)


def _faces(svg: bytes) -> dict[str, dict[str, str | list[list[float]]]]:
    out: dict[str, dict[str, str | list[list[float]]]] = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") == "fmap":
            polys = [[[float(v) for v in p.split(",")] for p in poly.get("points", "").split()]
                     for poly in g.iter(f"{SVG}polygon")]
            out[g.get("data-layer", "")] = {"height": g.get("data-height", ""), "front": polys[0],
                                            "texts": [t.text or "" for t in g.iter(f"{SVG}text")]}
    return out


def test_svg_draws_each_box_at_its_size() -> None:
    compiled = compile_file(SPECS / "alexnet.yaml")
    svg = render_blocks(compiled, "svg", FigureOptions())
    faces = _faces(svg)
    for b in feature_boxes(compiled):
        front = faces[b.name]["front"]
        assert isinstance(front, list)
        ys = [p[1] for p in front]
        xs = [p[0] for p in front]
        assert max(ys) - min(ys) == pytest.approx(b.height, abs=0.02)
        assert max(xs) - min(xs) == pytest.approx(b.thickness, abs=0.02)
    assert faces["features.0"]["texts"][:3] == ["64@55x55", "features.0", "conv 11x11/4, 64"]
    assert b"<title>alexnet</title>" in svg


def test_options_apply_to_the_blocks_style() -> None:
    compiled = compile_file(SPECS / "lenet5.yaml")
    plain = render_blocks(compiled, "svg", FigureOptions(title=False, legend=False, palette="print"))
    assert not re.search(rb"<text[^>]*>lenet5</text>", plain) and b">convolution<" not in plain
    assert re.search(rb"<text[^>]*>lenet5</text>", render_blocks(compiled, "svg", FigureOptions()))
    fills = set(re.findall(rb'fill="#([0-9a-f]{6})"', plain))
    assert fills and all(f[0:2] == f[2:4] == f[4:6] for f in fills)
    assert b">convolution<" in render_blocks(compiled, "svg", FigureOptions())


@NEEDS_LATEX
@pytest.mark.parametrize("spec", ["lenet5", "vgg16"])
def test_tikz_blocks_compile(spec: str, tmp_path: Path) -> None:
    out = tmp_path / f"{spec}.tex"
    result = run("draw", str(SPECS / f"{spec}.yaml"), "-o", str(out), "--style", "blocks")
    assert result.exit_code == 0, result.output
    tex = out.read_text()
    assert set(re.findall(r"\\usepackage\{([^}]*)\}", tex)) == {"tikz"}
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", out.name], cwd=tmp_path,
                          capture_output=True, timeout=120, check=False)
    log = out.with_suffix(".log").read_text(errors="replace")
    assert proc.returncode == 0 and not re.search(r"^! ", log, re.M), log[-2000:]
    assert f"Output written on {spec}.pdf (1 page" in log
    # the same boxes as the SVG: one front face per map, labelled with its shape
    svg_labels = [f["texts"][0] for f in _faces(render_blocks(compile_file(SPECS / f"{spec}.yaml"), "svg",
                                                              FigureOptions())).values()]
    for label in svg_labels:
        assert "{" + label + "}" in tex


def test_blocks_style_writes_svg_or_tex_only(tmp_path: Path) -> None:
    result = run("draw", str(SPECS / "lenet5.yaml"), "-o", str(tmp_path / "x.png"), "--style", "blocks")
    assert result.exit_code == 2
    assert "the blocks style draws SVG or TikZ (.svg or .tex); got png" in result.output
    with pytest.raises(UsageError, match="unknown diagram style 'cubes'"):
        FigureOptions(style="cubes")
