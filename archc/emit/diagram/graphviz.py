"""The Graphviz driver: running ``dot`` with a timeout, the output formats, the PNG size guard, a crash or a failure
of ``dot`` as a clean usage error, and writing a rendered diagram atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from archc.emit.diagram.tikz import tikz_document
from archc.emit.diagram.view import LayoutBudget
from archc.errors import UsageError
from archc.io import check_target, write_atomic

FORMATS = ("svg", "png", "pdf", "tex", "dot")
SUFFIX_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".tex": "tex", ".dot": "dot", ".gv": "dot"}
RENDER_TIMEOUT = 60.0
"""Seconds Graphviz may take for one layout before we give up (the layout budget keeps it to seconds)."""
PNG_DPI = 96
MAX_PNG_SIDE = 16_000
MAX_PNG_PIXELS = 40_000_000
MAX_PNG_NODES = 3_000
"""More nodes than this cannot make a useful PNG at any layout; refused before spending time on the layout."""

_NODE_STATEMENT = re.compile(r'^\s*"[^"\n]*" \[label=', re.M)

DotMaker = Callable[[LayoutBudget | None], tuple[str, str]]
"""Makes a diagram's DOT text within a layout budget (None: unbudgeted); returns the text and the note on what was
collapsed to fit ("" when nothing was)."""


def render(dot_text: str, fmt: str, *, timeout: float = RENDER_TIMEOUT) -> bytes:
    """DOT text rendered by Graphviz's ``dot`` (``fmt="dot"`` returns the text itself)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "dot":
        return dot_text.encode()
    exe = _dot_program()
    if fmt == "png":
        nodes = len(_NODE_STATEMENT.findall(dot_text))
        if nodes > MAX_PNG_NODES:
            raise UsageError(f"the diagram has {nodes:,} nodes, too many for a PNG; fold repeated blocks (fold), show "
                             "fewer levels (depth), or write SVG or PDF, which scale")
        width, height = layout_size(exe, dot_text, timeout)
        if max(width, height) > MAX_PNG_SIDE or width * height > MAX_PNG_PIXELS:
            raise UsageError(f"the PNG would be {width:,} x {height:,} pixels, too large to be useful; fold repeated "
                             "blocks (fold), show fewer levels (depth), or write SVG or PDF, which scale")
    if fmt == "tex":  # TikZ drawn from the layout's own drawing operations
        return tikz_document(_run_dot(exe, ["-Tjson"], dot_text, timeout))
    return _run_dot(exe, [f"-T{fmt}", f"-Gdpi={PNG_DPI}"] if fmt == "png" else [f"-T{fmt}"], dot_text, timeout)


def plain_layout(dot_text: str, *, timeout: float = RENDER_TIMEOUT) -> str:
    """``dot -Tplain`` of every graph in ``dot_text``, in order: positions and sizes for a caller that draws the
    layout itself (the HTML viewer)."""
    return _run_dot(_dot_program(), ["-Tplain"], dot_text, timeout).decode(errors="replace")


def _dot_program() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("Graphviz's `dot` program was not found on PATH; install Graphviz (e.g. `apt-get install "
                         "graphviz`, `brew install graphviz` or `conda install graphviz`) or write a .dot file")
    return exe


def layout_size(exe: str, dot_text: str, timeout: float = RENDER_TIMEOUT) -> tuple[int, int]:
    """Pixel width and height of the PNG at :data:`PNG_DPI`, from ``dot -Tplain`` (its first line is the size)."""
    plain = _run_dot(exe, ["-Tplain"], dot_text, timeout).decode(errors="replace")
    fields = plain.split("\n", 1)[0].split()
    if len(fields) < 4 or fields[0] != "graph":
        raise UsageError(f"unexpected output from Graphviz: {plain[:80]!r}")
    scale, width, height = (float(f) for f in fields[1:4])
    return round(scale * width * PNG_DPI), round(scale * height * PNG_DPI)


def _run_dot(exe: str, args: list[str], dot_text: str, timeout: float) -> bytes:
    try:
        proc = subprocess.run([exe, *args], input=dot_text.encode(), capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Graphviz took more than {timeout:g} s to lay out the diagram; fold repeated blocks "
                         "(fold) or show fewer levels (depth)") from None
    except OSError as exc:
        raise UsageError(f"cannot run Graphviz ({exe}): {exc.strerror or exc}") from None
    if proc.returncode < 0:  # killed by a signal: dot crashes (SIGSEGV) on graphs far beyond the layout budget
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise UsageError(f"Graphviz crashed ({name}) laying out the diagram; draw fewer nodes (fold repeated blocks, "
                         "a smaller --depth) or write a .dot file, which is not laid out")
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise UsageError(f"Graphviz failed (exit {proc.returncode}): {' / '.join(detail) or 'no message'}")
    return proc.stdout


def format_for(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UsageError(f"cannot tell the diagram format from {str(path)!r}; use a .svg, .png, .pdf, .tex or .dot "
                         "name or give the format")
    return SUFFIX_FORMATS[suffix]


def write_drawing(make_dot: DotMaker, path: str | os.PathLike[str], *, fmt: str | None, force: bool,
                  budget: LayoutBudget | None, on_note: Callable[[str], None] | None) -> Path:
    """Render the DOT text ``make_dot`` gives and write it atomically; the format comes from the suffix unless given.

    ``budget`` applies to the formats Graphviz lays out (a .dot file is written whole). ``on_note`` receives the note
    saying what was collapsed to fit the budget; by default it is printed to stderr.
    """
    target = Path(path)
    fmt = fmt or format_for(target)
    check_target(target, force=force)  # before rendering, which can take a while
    dot_text, note = make_dot(None if fmt == "dot" else budget)
    data = render(dot_text, fmt)
    if note:
        (on_note or print_note)(note)
    return write_atomic(target, data, force=force)


def print_note(note: str) -> None:
    print(f"archc: note: {note}", file=sys.stderr)
