"""The paper figures of ``docs/figures.md``: one drawing per kind of figure `archc draw` makes besides the zoo's
default (which already shows block insets and the encoder-decoder U), in ``docs/figures/``.

``python -m tools.gallery`` writes them with the zoo (``python -m tools.figures`` alone, ``--check`` only reports).
A Graphviz drawing carries the SHA-256 of its DOT text, as the zoo's do, so another Graphviz version causes no churn;
a feature-map drawing is archc's own SVG, compared byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from archc.compiler import compile_file
from archc.emit.diagram import FigureOptions, to_dot
from archc.emit.diagram.blocks import render_blocks
from archc.errors import SpecError, UsageError
from archc.io import write_atomic
from tools.gallery import SPECS, dot_hash, stamped_svg, svg_dot_hash

FIGURES = Path("docs/figures")


@dataclass(frozen=True)
class Figure:
    name: str
    spec: str
    options: FigureOptions
    direction: str = "TB"
    depth: int | None = None

    def compiled_dot(self, root: str | os.PathLike[str]) -> str:
        compiled = compile_file(Path(root) / SPECS / f"{self.spec}.yaml")
        return to_dot(compiled, direction=self.direction, depth=self.depth, options=self.options)

    def svg(self, root: str | os.PathLike[str]) -> bytes:
        if self.options.style == "blocks":
            return render_blocks(compile_file(Path(root) / SPECS / f"{self.spec}.yaml"), "svg", self.options,
                                 depth=self.depth)
        return stamped_svg(self.compiled_dot(root))

    def is_current(self, root: str | os.PathLike[str]) -> bool:
        path = Path(root) / FIGURES / f"{self.name}.svg"
        if not path.is_file():
            return False
        if self.options.style == "blocks":
            return path.read_bytes() == self.svg(root)
        return svg_dot_hash(path.read_bytes()) == dot_hash(self.compiled_dot(root))


PAPER_FIGURES = (
    Figure("unet_depth1", "unet", FigureOptions(), depth=1),
    Figure("googlenet_lr_colorblind", "googlenet", FigureOptions(palette="colorblind"), "LR", 1),
    Figure("resnet50_print", "resnet50", FigureOptions(palette="print", title=False)),
    Figure("lenet5_blocks", "lenet5", FigureOptions(style="blocks")),
    Figure("vgg16_blocks", "vgg16", FigureOptions(style="blocks", legend=False)),
)


def stale_figures(root: str | os.PathLike[str] = ".") -> list[str]:
    """Figures whose SVG is missing or out of date, and SVGs in ``docs/figures`` no figure makes."""
    names = {f.name for f in PAPER_FIGURES}
    extra = [p.stem for p in sorted((Path(root) / FIGURES).glob("*.svg")) if p.stem not in names]
    drawable = [f for f in PAPER_FIGURES if (Path(root) / SPECS / f"{f.spec}.yaml").is_file()]
    return [f.name for f in drawable if not f.is_current(root)] + extra


def write_figures(root: str | os.PathLike[str] = ".", *, force: bool = False) -> list[Path]:
    """Bring ``docs/figures/*.svg`` up to date; returns the files written or removed."""
    base = Path(root)
    written = []
    for figure in PAPER_FIGURES:
        if not (base / SPECS / f"{figure.spec}.yaml").is_file():
            continue  # a checkout without the figure's spec (a partial tree) has nothing to draw it from
        if force or not figure.is_current(base):
            path = base / FIGURES / f"{figure.name}.svg"
            data = figure.svg(base)
            if not path.is_file() or path.read_bytes() != data:
                write_atomic(path, data, force=True)
                written.append(path)
    names = {f.name for f in PAPER_FIGURES}
    for old in sorted((base / FIGURES).glob("*.svg")):
        if old.stem not in names:
            old.unlink()
            written.append(old)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.figures", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", help="the checkout holding specs/ and docs/ (default: .)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    parser.add_argument("--force", action="store_true", help="redraw every figure")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_figures(args.root)
            for name in stale:
                print(f"out of date: {FIGURES / name}.svg")
            return 1 if stale else 0
        for path in write_figures(args.root, force=args.force):
            print(f"{'removed' if not path.exists() else 'wrote'} {path}")
    except (SpecError, UsageError) as exc:
        print(f"tools.figures: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
