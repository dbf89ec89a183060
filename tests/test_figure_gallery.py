"""The paper figures (docs/figures.md, docs/figures/*.svg): generated, current, and shown by the docs and README."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tools import figures
from tools.figures import PAPER_FIGURES, stale_figures, write_figures

ROOT = Path(__file__).resolve().parent.parent
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
PAGE = (ROOT / "docs" / "figures.md").read_text(encoding="utf-8")


def test_committed_figures_are_current() -> None:
    assert stale_figures(ROOT) == [], "paper figures are stale: run `python -m tools.gallery`"


def test_the_page_shows_every_figure_and_every_link_resolves() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE)
    for target in images:
        assert (ROOT / "docs" / target).is_file(), target
    assert {f"figures/{f.name}.svg" for f in PAPER_FIGURES} <= set(images)
    assert "zoo/resnet50.svg" in images and "zoo/unet.svg" in images  # the default figure: insets, the U
    for heading in ("Block insets", "Encoder-decoder networks as a U", "Left to right", "TikZ for LaTeX",
                    "Feature maps as boxes"):
        assert f"## {heading}\n" in PAGE


def test_readme_links_the_figures() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/figures.md)" in readme
    assert "![LeNet-5 as feature maps" in readme and "(docs/figures/lenet5_blocks.svg)" in readme


@NEEDS_DOT
def test_write_figures_writes_only_what_changed(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    (tmp_path / "docs" / "figures").mkdir(parents=True)
    (tmp_path / "docs" / "figures" / "retired.svg").write_text("<svg/>")
    written = write_figures(tmp_path)
    assert sorted(p.name for p in written) == sorted([f"{f.name}.svg" for f in PAPER_FIGURES] + ["retired.svg"])
    assert not (tmp_path / "docs" / "figures" / "retired.svg").exists()
    assert stale_figures(tmp_path) == []
    assert write_figures(tmp_path) == []
    # a blocks figure is compared byte for byte; a Graphviz one by its DOT hash
    blocks = tmp_path / "docs" / "figures" / "lenet5_blocks.svg"
    blocks.write_bytes(blocks.read_bytes().replace(b"lenet5", b"lenet6"))
    assert stale_figures(tmp_path) == ["lenet5_blocks"]
    assert figures.main([str(tmp_path), "--check"]) == 1
    assert figures.main([str(tmp_path)]) == 0
    assert figures.main([str(tmp_path), "--check"]) == 0
