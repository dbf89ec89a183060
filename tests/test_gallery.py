"""The zoo gallery: docs/zoo.md is generated (and kept in step here), every spec has its diagram, diagrams are
redrawn only when their DOT text changes, and the whole zoo is quick to build."""

from __future__ import annotations

import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archc.compiler import compile_file
from tests.cdp import find_chromium
from tools import gallery
from tools.figures import PAPER_FIGURES
from tools.gallery import (
    diagram_dot,
    dot_hash,
    first_sentence,
    gallery_markdown,
    gmacs,
    history_line,
    main,
    stale_diagrams,
    svg_dot_hash,
    write_gallery,
)

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")


# --- the committed gallery --------------------------------------------------------------------------------------------
def test_zoo_markdown_is_current() -> None:
    committed = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    assert committed == gallery_markdown(ROOT), "docs/zoo.md is stale: run `python -m tools.gallery`"


def test_the_viewer_screenshot_is_current_and_small() -> None:
    png = (ROOT / gallery.VIEWER_SHOT).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1100, 720)
    assert len(png) < 150_000
    assert not gallery.viewer_shot_stale(ROOT), "the viewer's screenshot is stale: run `python -m tools.gallery`"
    assert "[resnet50's](zoo/viewer.png)" in (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")


def test_png_stamp_round_trip() -> None:
    png = (ROOT / gallery.VIEWER_SHOT).read_bytes()
    again = gallery.stamped_png(png, "0" * 64)
    assert gallery.png_stamp(again) in (gallery.png_stamp(png), "0" * 64)  # the first tEXt chunk with the key wins
    bare = b"\x89PNG\r\n\x1a\n" + png[8:33] + b"\0\0\0\0IEND\xaeB`\x82"
    assert gallery.png_stamp(bare) is None and gallery.png_stamp(gallery.stamped_png(bare, "ab" * 32)) == "ab" * 32


def test_every_spec_has_its_current_diagram() -> None:
    # the SVG bytes depend on the Graphviz version; the DOT hash each one carries does not
    assert sorted(p.stem for p in (ROOT / "docs" / "zoo").glob("*.svg")) == [p.stem for p in SPECS]
    assert stale_diagrams(ROOT) == [], "diagrams are stale: run `python -m tools.gallery`"


def test_markdown_has_a_row_and_a_section_per_spec_with_working_links() -> None:
    md = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (\w+)$", md, re.M) == [p.stem for p in SPECS]
    assert re.findall(r"^\| \[(\w+)\]\(#\1\) \|", md, re.M) == [p.stem for p in SPECS]
    for target in re.findall(r"\]\(((?:\.\./|zoo/)[^)]+)\)", md):
        assert (ROOT / "docs" / target).is_file(), target


def test_sections_show_the_totals_of_their_spec() -> None:
    md = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    resnet = md.split("## resnet50\n", 1)[1].split("\n## ", 1)[0]
    assert "He et al. 2015" in resnet
    assert "- **Input**: image 3x224x224" in resnet
    assert "- **Parameters**: 25,557,032" in resnet
    assert "- **MACs**: 4,089,184,256 (4.09 G)" in resnet
    # the last stage's last residual merge, 427 pixels: the published ResNet-50 figure
    assert "- **Receptive field** of the last spatial layer: 427 (stride 32) at `layer4.2.0` (add)" in resnet
    assert "[![resnet50](zoo/resnet50.svg)](zoo/resnet50.svg)" in resnet
    assert "| [lenet5](#lenet5) | 60,850 | 0.000327 | 14 | image 1x32x32 |" in md
    # global pooling is not a feature map: LeNet-5's deepest map is S4's (16 pixels), VGG-16's pool5 (212)
    assert "16 (stride 4) at `s4` (subsample)" in md
    assert "212 (stride 32) at `avgpool` (adaptive_avgpool)" in md.split("## vgg16\n", 1)[1]
    assert "none (no spatial axes)" in md.split("## mlp\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("spec", ["resnet50", "inception_v3", "unet"])
def test_diagram_dot_is_deterministic(spec: str) -> None:
    first = diagram_dot(compile_file(ROOT / "specs" / f"{spec}.yaml"))
    second = diagram_dot(compile_file(ROOT / "specs" / f"{spec}.yaml"))
    assert first == second
    assert dot_hash(first) == dot_hash(second)


def test_large_graphs_fold_and_small_ones_do_not() -> None:
    folded = diagram_dot(compile_file(ROOT / "specs" / "resnet50.yaml"))
    assert "bottleneck x 6" in folded and "layer3.5.conv1" not in folded
    plain = diagram_dot(compile_file(ROOT / "specs" / "unet.yaml"))
    assert '"up1.conv.conv2"' in plain


# --- text helpers -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("doc", "sentence"), [
    ("ResNet-50 (He et al. 2015, \"Deep Residual\") as in torchvision. More.",
     "ResNet-50 (He et al. 2015, \"Deep Residual\") as in torchvision."),
    ("Two parts, e.g. this one. And that.", "Two parts, e.g. this one."),
    ("Quoted \"A. Title. With stops\" stays. Next.", "Quoted \"A. Title. With stops\" stays."),
    ("Code `a. B` stays whole. Next.", "Code `a. B` stays whole."),
    ("Built by J. Smith in 2001. Next.", "Built by J. Smith in 2001."),
    ("Version 1.1 is smaller. Next.", "Version 1.1 is smaller."),
    ("No full stop at all", "No full stop at all"),
    ("Spread\n  over   lines. Next.", "Spread over lines."),
])
def test_first_sentence(doc: str, sentence: str) -> None:
    assert first_sentence(doc) == sentence


def test_history_line_stops_before_the_details() -> None:
    assert history_line("GoogLeNet (Szegedy et al. 2014, \"Going: Deeper\") as in torchvision: every conv. More.") \
        == "GoogLeNet (Szegedy et al. 2014, \"Going: Deeper\") as in torchvision."
    assert history_line("A perceptron, as in Keras (1986). More.") == "A perceptron, as in Keras (1986)."
    assert history_line("No stop") == "No stop."


@pytest.mark.parametrize(("macs", "text"), [(4_089_184_256, "4.09"), (415_498_240, "0.42"), (0, "0.00"),
                                            (5_000_000, "0.01"), (4_999_000, "0.00500"), (326_520, "0.000327"),
                                            (668_672, "0.000669"), (999, "0.000000999"), (9_999, "0.0000100")])
def test_gmacs(macs: int, text: str) -> None:
    assert gmacs(macs) == text


# --- writing ----------------------------------------------------------------------------------------------------------
def _mini_root(tmp_path: Path, specs: list[str]) -> Path:
    (tmp_path / "specs").mkdir()
    for name in specs:
        shutil.copy(ROOT / "specs" / f"{name}.yaml", tmp_path / "specs")
    return tmp_path


@NEEDS_DOT
def test_write_gallery_writes_only_what_changed(tmp_path: Path) -> None:
    root = _mini_root(tmp_path, ["lenet5", "mlp"])
    zoo = root / "docs" / "zoo"
    written = write_gallery(root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        "docs/figures/lenet5_blocks.svg", "docs/zoo.md", "docs/zoo/lenet5.svg", "docs/zoo/mlp.svg"]
    svg = (zoo / "lenet5.svg").read_bytes()
    assert ET.fromstring(svg).tag.endswith("svg")  # the stamp keeps the file well-formed
    assert svg_dot_hash(svg) == dot_hash(diagram_dot(compile_file(root / "specs" / "lenet5.yaml")))
    assert (root / "docs" / "zoo.md").read_text(encoding="utf-8") == gallery_markdown(root)

    assert write_gallery(root) == []  # nothing changed: nothing rewritten
    assert main([str(root), "--check"]) == 0

    spec = root / "specs" / "mlp.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("hidden: 512", "hidden: 256"), encoding="utf-8")
    assert stale_diagrams(root) == ["mlp"]
    assert main([str(root), "--check"]) == 1
    assert sorted(p.name for p in write_gallery(root)) == ["mlp.svg", "zoo.md"]
    assert (zoo / "lenet5.svg").read_bytes() == svg

    (root / "specs" / "mlp.yaml").unlink()
    assert [p.name for p in write_gallery(root)] == ["mlp.svg", "zoo.md"]
    assert sorted(p.name for p in zoo.iterdir()) == ["lenet5.svg"]


@NEEDS_DOT
def test_a_diagram_is_not_redrawn_for_another_graphviz_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _mini_root(tmp_path, ["lenet5"])
    write_gallery(root)
    path = root / "docs" / "zoo" / "lenet5.svg"
    path.write_bytes(path.read_bytes().replace(b"Generated by graphviz", b"Generated by another graphviz"))
    before = path.read_bytes()

    def fail(dot: str) -> bytes:
        raise AssertionError("redrawn although its DOT text did not change")

    monkeypatch.setattr(gallery, "stamped_svg", fail)
    assert write_gallery(root) == []
    assert path.read_bytes() == before


def test_no_specs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no specs found" in capsys.readouterr().err


@NEEDS_DOT
def test_the_whole_zoo_builds_quickly(tmp_path: Path) -> None:
    root = _mini_root(tmp_path, [p.stem for p in SPECS])
    start = time.perf_counter()
    written = write_gallery(root, force=True)
    assert time.perf_counter() - start < 30
    # the SVGs, zoo.md, the screenshot, the paper figures (tests/test_figure_gallery.py)
    assert len(written) == len(SPECS) + 1 + (find_chromium() is not None) + len(PAPER_FIGURES)
