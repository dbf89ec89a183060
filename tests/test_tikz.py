"""TikZ output: `archc draw SPEC -o net.tex` compiles with pdflatex as written, and shows what the SVG shows."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.diagram import FigureOptions, render, to_dot
from archc.emit.diagram.blocks import render_blocks
from archc.text_escape import latex_text
from tests.cli_runner import run

SPECS = Path(__file__).resolve().parent.parent / "specs"
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
NEEDS_LATEX = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("kpsewhich") is None,
                                 reason="pdflatex is not installed (Debian: texlive-latex-base, texlive-pictures)")
SVG = "{http://www.w3.org/2000/svg}"
FIT = re.compile(r"\\archcfit\{[0-9.]+pt\}\{(.*)\}\};$", re.M)


def pdflatex(tex: Path) -> str:
    """Compile ``tex`` in its directory; returns the log, failing the test on any LaTeX error."""
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tex.parent,
                          capture_output=True, timeout=120, check=False)
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert proc.returncode == 0, log[-2000:]
    assert not re.search(r"^! ", log, re.M), log[-2000:]
    return log


def used_packages(tex: str) -> set[str]:
    return {p.strip() for group in re.findall(r"\\usepackage(?:\[[^\]]*\])?\{([^}]*)\}", tex)
            for p in group.split(",")}


def _words(text: str) -> str:
    """The text with its spacing normalised: the SVG writes some spaces as no-break spaces."""
    return " ".join(text.replace("\xa0", " ").split())


def svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.strip()]


@NEEDS_DOT
@NEEDS_LATEX
@pytest.mark.parametrize(("spec", "depth"), [("resnet50", None), ("googlenet", 1),
                                           pytest.param("googlenet", None, marks=pytest.mark.slow)])
def test_tex_compiles_and_shows_the_svgs_labels(spec: str, depth: int | None, tmp_path: Path) -> None:
    out = tmp_path / "net.tex"
    result = run("draw", str(SPECS / f"{spec}.yaml"), "-o", str(out), *(["--depth", str(depth)] if depth else []))
    assert result.exit_code == 0, result.output
    tex = out.read_text()
    assert tex.startswith(r"\documentclass{article}")
    assert used_packages(tex) == {"tikz", "graphicx"}
    for package in used_packages(tex):  # in Debian's texlive-latex-base and texlive-pictures
        assert subprocess.run(["kpsewhich", f"{package}.sty"], capture_output=True, check=False).stdout.strip()
    log = pdflatex(out)
    assert "Output written on net.pdf (1 page" in log
    assert (tmp_path / "net.pdf").read_bytes().startswith(b"%PDF")
    # every label of the SVG, and nothing else, is in the .tex: the same layout drawn by another back end
    svg = render(to_dot(compile_file(SPECS / f"{spec}.yaml"), depth=depth), "svg")
    assert Counter(_words(t) for t in FIT.findall(tex)) == Counter(latex_text(_words(t)) for t in svg_texts(svg))
    # and every shape: one TikZ path per SVG polygon, curve, ellipse or polyline (boxes, clusters, edges, arrowheads)
    shapes = len(re.findall(rb"<(?:polygon|path|ellipse|polyline)\b", svg))
    assert len(re.findall(r"^\\path\[", tex, re.M)) == shapes > 50


@NEEDS_DOT
def test_tex_has_the_same_folding_and_insets_as_the_svg(tmp_path: Path) -> None:
    out = tmp_path / "figure.latex"
    result = run("draw", str(SPECS / "resnet50.yaml"), "-o", str(out), "--format", "tex")
    assert result.exit_code == 0, result.output
    texts = FIT.findall(out.read_text())
    assert [t for t in texts if t.startswith("bottleneck x ")] == ["bottleneck x 3", "bottleneck x 4",
                                                                   "bottleneck x 6", "bottleneck x 3"]
    assert "(as layer1.0; used in layer1, layer2, layer3, layer4)" in texts
    assert r"256x56x56 $\rightarrow$ 512x28x28" in texts
    assert out.read_text().count(r"\begin{tikzpicture}") == 1


@NEEDS_DOT
def test_tex_keeps_the_layout_coordinates() -> None:
    dot = to_dot(compile_file(SPECS / "lenet5.yaml"))
    tex = render(dot, "tex").decode()
    bb = re.search(r"\\useasboundingbox \(([-0-9.]+),([-0-9.]+)\) rectangle \(([-0-9.]+),([-0-9.]+)\);", tex)
    assert bb is not None
    plain = subprocess.run(["dot", "-Tplain"], input=dot.encode(), capture_output=True, check=True).stdout.decode()
    _, _, width, height = plain.split("\n", 1)[0].split()
    assert float(bb.group(3)) - float(bb.group(1)) == pytest.approx(float(width) * 72, abs=0.5)
    assert float(bb.group(4)) - float(bb.group(2)) == pytest.approx(float(height) * 72, abs=0.5)
    # a node's label sits inside the node's box: c1's name at its centre's x, the box drawn around it
    plain_c1 = next(line.split() for line in plain.splitlines() if line.startswith("node c1 "))
    cx = float(plain_c1[2]) * 72
    c1 = re.search(r"\\node\[anchor=base west, [^\]]*\] at \(([-0-9.]+),([-0-9.]+)\) \{\\archcfit\{([0-9.]+)pt\}\{c1\}",
                   tex)
    assert c1 is not None
    assert float(c1.group(1)) < cx < float(c1.group(1)) + float(c1.group(3))


def test_diagram_text_reaches_latex_escaped() -> None:
    # the project's one LaTeX escape, with the symbols a diagram's labels use
    assert latex_text(r"a_b {c} 50% $x$ #1 & <B> |") == (
        r"a\_b \{c\} 50\% \$x\$ \#1 \& \textless{}B\textgreater{} \textbar{}")
    assert latex_text("64x56x56 → 256x56x56  ·  4.1G MACs …") == (
        r"64x56x56 $\rightarrow$ 256x56x56  $\cdot$  4.1G MACs \dots{}")
    assert latex_text("Schrödinger’s 模型") == "Schr?dinger's ??"


@NEEDS_DOT
@NEEDS_LATEX
def test_hostile_text_compiles(tmp_path: Path) -> None:
    spec = tmp_path / "evil.yaml"
    spec.write_text('name: evil\ndoc: \'\\end{document} \\input{/etc/passwd} %$#&_^~{} ü 模型\'\n'
                    "inputs: {x: [4]}\nbody:\n  - linear: {id: fc, out: 2}\n")
    out = tmp_path / "evil.tex"
    result = run("draw", str(spec), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert r"\input{" not in out.read_text().split(r"\begin{document}", 1)[1]
    assert "Output written on evil.pdf (1 page" in pdflatex(out)


def figure_part(tex: str) -> str:
    """What a paper pastes in: the lines between the ``% archc figure`` markers."""
    return tex.split("% archc figure:", 1)[1].split("\n", 1)[1].split("% archc figure end", 1)[0]


@NEEDS_DOT
@NEEDS_LATEX
def test_the_figure_pastes_into_a_paper_twice(tmp_path: Path) -> None:
    graph = render(to_dot(compile_file(SPECS / "resnet50.yaml")), "tex").decode()
    assert "% archc figure: resnet50 (needs tikz, graphicx)" in graph
    boxes = render_blocks(compile_file(SPECS / "lenet5.yaml"), "tex", FigureOptions(style="blocks")).decode()
    paper = tmp_path / "paper.tex"
    body = [r"\documentclass[twocolumn]{article}", r"\usepackage{tikz,graphicx}", r"\begin{document}",
            "Some text."]
    for part in (graph, graph, boxes):  # twice: the macro and the colours are defined once, locally
        body += [r"\begin{figure}", r"\resizebox{\linewidth}{!}{%", figure_part(part), "}",
                 r"\caption{A network.}", r"\end{figure}"]
    paper.write_text("\n".join([*body, r"\end{document}", ""]))
    log = pdflatex(paper)
    assert re.search(r"Output written on paper\.pdf \(\d+ pages?", log)
