"""TikZ source of a diagram: Graphviz lays it out (``dot -Tjson``), and every drawing operation of that layout (the
xdot shapes, curves, arrowheads and text of clusters, nodes, edges, title and legend) becomes a TikZ command at the
same coordinates. So the ``.tex`` shows what the SVG shows, folded the same way, and compiles with ``pdflatex`` using
only TikZ and LaTeX's base packages (``graphicx``).

The document's page is the figure's size; what stands between the ``archc figure`` markers (the picture, its colours
and its one macro) can be pasted into a paper as it is, any number of times; it needs ``tikz`` and ``graphicx``.
Text is set in the document's sans-serif font; a text that comes out wider than the width Graphviz measured for it is
scaled down to that width, so no label leaves its box.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from archc.errors import UsageError
from archc.text_escape import latex_text

PAGE_SETUP = r"""\pagestyle{empty}
\setlength{\parindent}{0pt}
\setlength{\hoffset}{-1in}
\setlength{\voffset}{-1in}
\setlength{\oddsidemargin}{0pt}
\setlength{\topmargin}{0pt}
\setlength{\headheight}{0pt}
\setlength{\headsep}{0pt}
\setlength{\footskip}{0pt}"""
"""A page with no margins: the document's page is the figure."""

FIT_MACRO = r"""\ifdefined\archcbox\else\newsavebox\archcbox\fi
% \archcfit{width}{text}: the text, scaled down to the width when it is wider
\providecommand\archcfit[2]{\sbox\archcbox{#2}\ifdim\wd\archcbox>#1\relax\resizebox{#1}{!}{\usebox\archcbox}%
\else\usebox\archcbox\fi}"""
"""Defined with the picture (once, however many figures a paper pastes in)."""


def standalone_document(name: str, width: float, height: float, packages: list[str], picture: list[str]) -> bytes:
    r"""An ``article`` whose page is ``width`` x ``height`` points, holding ``picture`` (lines from the figure's macros
    to ``\end{tikzpicture}``) between ``% archc figure`` markers: the part a paper can paste in as it is, given the
    packages."""
    doc = [r"\documentclass{article}", *(rf"\usepackage{{{p}}}" for p in packages), PAGE_SETUP,
           rf"\pdfpagewidth={width:.2f}pt", rf"\pdfpageheight={height:.2f}pt",
           rf"\setlength{{\textwidth}}{{{width:.2f}pt}}", rf"\setlength{{\textheight}}{{{height:.2f}pt}}",
           r"\begin{document}", f"% archc figure: {latex_text(name)} (needs {', '.join(packages)})", *picture,
           "% archc figure end", r"\end{document}", ""]
    return "\n".join(doc).encode()


def tikz_document(layout_json: bytes) -> bytes:
    """A complete LaTeX document drawing the laid-out graph ``dot -Tjson`` gave."""
    try:
        data = json.loads(layout_json)
    except ValueError as exc:
        raise UsageError(f"unexpected output from Graphviz (not JSON): {exc}") from None
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    width, height = x1 - x0, y1 - y0
    drawer = _Drawer()
    drawer.ops(data.get("_draw_"))
    drawer.ops(data.get("_ldraw_"))
    objects = data.get("objects", [])
    for obj in objects:  # clusters come first, outer before inner, then the nodes
        drawer.ops(obj.get("_draw_"))
        drawer.ops(obj.get("_ldraw_"))
    for edge in data.get("edges", []):
        for key in ("_draw_", "_hdraw_", "_tdraw_", "_ldraw_", "_hldraw_", "_tldraw_"):
            drawer.ops(edge.get(key))
    picture = [
        FIT_MACRO,
        r"\begin{tikzpicture}[x=1pt, y=1pt, inner sep=0pt, line join=round]",
        *(rf"\definecolor{{{name}}}{{HTML}}{{{hexa}}}" for hexa, name in drawer.colours.items()),
        rf"\useasboundingbox ({x0:.2f},{y0:.2f}) rectangle ({x1:.2f},{y1:.2f});",
        *drawer.lines,
        r"\end{tikzpicture}",
    ]
    return standalone_document(str(data.get("name", "")), width, height, ["tikz", "graphicx"], picture)


class _Drawer:
    """xdot operations -> TikZ commands, keeping xdot's drawing state (pen, fill, line style, font)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.colours: dict[str, str] = {}
        self.pen: str | None = "black"
        self.fill: str | None = "white"
        self.width = 1.0
        self.dash = ""
        self.font_size = 14.0
        self.bold = False
        self.italic = False

    def ops(self, ops: Iterable[dict[str, Any]] | None) -> None:
        self.width, self.dash = 1.0, ""  # each attribute list starts from the default style
        for op in ops or ():
            kind = op["op"]
            if kind == "c":
                self.pen = self._colour(op.get("color", "#000000"))
            elif kind == "C":
                self.fill = self._colour(op.get("color", "#ffffff"))
            elif kind == "S":
                self._style(op.get("style", ""))
            elif kind == "F":
                self.font_size = float(op.get("size", 14.0))
            elif kind == "t":
                flags = int(op.get("fontchar", 0))
                self.bold, self.italic = bool(flags & 1), bool(flags & 2)
            elif kind == "T":
                self._text(op)
            elif kind in "PpLBb":
                self._path(kind, op["points"])
            elif kind in "Ee":
                self._ellipse(kind == "E", op["rect"])

    def _colour(self, colour: str) -> str | None:
        if not colour.startswith("#") or len(colour) not in (7, 9):
            return {"black": "black", "white": "white", "transparent": None}.get(colour, "black")
        if len(colour) == 9 and colour[7:] == "00":
            return None  # fully transparent
        hexa = colour[1:7].upper()
        return self.colours.setdefault(hexa, f"archc{len(self.colours)}")

    def _style(self, style: str) -> None:
        if style.startswith("setlinewidth("):
            self.width = float(style[len("setlinewidth("):-1])
        elif style in ("dashed", "dotted"):
            self.dash = style
        elif style == "solid":
            self.dash = ""

    def _options(self, filled: bool) -> str:
        opts = [f"draw={self.pen}" if self.pen else "draw=none", f"line width={self.width:g}pt"]
        if filled:
            opts.append(f"fill={self.fill}" if self.fill else "fill=none")
        if self.dash == "dashed":
            opts.append("dash pattern=on 4pt off 2pt")
        elif self.dash == "dotted":
            opts.append("dash pattern=on 1pt off 2pt")
        return ", ".join(opts)

    def _path(self, kind: str, points: list[list[float]]) -> None:
        pts = [f"({x:.2f},{y:.2f})" for x, y in points]
        if kind in "Bb":  # cubic Bezier: a start point, then three points per segment
            parts = [pts[0]]
            for i in range(1, len(pts) - 2, 3):
                parts.append(f".. controls {pts[i]} and {pts[i + 1]} .. {pts[i + 2]}")
            path = " ".join(parts)
        else:
            path = " -- ".join(pts)
        if kind in "Pp":
            path += " -- cycle"
        filled = kind in "PB"
        if filled and self.fill is None and self.pen is None:
            return
        self.lines.append(rf"\path[{self._options(filled)}] {path};")

    def _ellipse(self, filled: bool, rect: list[float]) -> None:
        cx, cy, rx, ry = rect
        self.lines.append(rf"\path[{self._options(filled)}] ({cx:.2f},{cy:.2f}) ellipse [x radius={rx:.2f}, "
                          rf"y radius={ry:.2f}];")

    def _text(self, op: dict[str, Any]) -> None:
        text = op.get("text", "")
        if not text.strip() or self.pen is None:
            return
        x, y = op["pt"]
        anchor = {"l": "base west", "c": "base", "r": "base east"}.get(op.get("align", "c"), "base")
        size = self.font_size
        font = rf"\fontsize{{{size:g}}}{{{size * 1.2:g}}}\selectfont\sffamily"
        font += r"\bfseries" if self.bold else ""
        font += r"\itshape" if self.italic else ""
        width = max(float(op.get("width", 0.0)), 1.0)
        self.lines.append(rf"\node[anchor={anchor}, text={self.pen}, font={{{font}}}] at ({x:.2f},{y:.2f}) "
                          rf"{{\archcfit{{{width:.2f}pt}}{{{latex_text(text)}}}}};")
