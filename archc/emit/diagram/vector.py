"""A small vector picture (polygons, lines, text, groups) written as SVG or as a TikZ document, for figures archc
lays out itself rather than through Graphviz (the feature-map style, :mod:`archc.emit.diagram.blocks`).

Coordinates are points with y growing downwards (SVG's convention); the TikZ writer flips them. Text goes through
:func:`archc.text_escape.html_text` (SVG) or :func:`archc.text_escape.latex_text` (TikZ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.emit.diagram.tikz import standalone_document
from archc.text_escape import html_text, latex_text

Point = tuple[float, float]


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    fill: str | None
    stroke: str | None
    width: float = 0.8


@dataclass(frozen=True)
class Line:
    points: tuple[Point, ...]
    colour: str
    width: float = 0.8


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    """The baseline."""
    text: str
    size: float
    anchor: str = "middle"
    """``start``, ``middle`` or ``end`` (SVG's names)."""
    colour: str = "#000000"
    bold: bool = False


@dataclass
class Group:
    """Items that belong together (one feature map, one arrow): an SVG ``g`` of class ``kind`` whose ``attrs`` become
    ``data-`` attributes."""

    kind: str
    attrs: dict[str, str]
    items: list[Polygon | Line | Text] = field(default_factory=list)


@dataclass
class Picture:
    width: float
    height: float
    title: str
    items: list[Polygon | Line | Text | Group] = field(default_factory=list)


def _flat(items: list[Polygon | Line | Text | Group]) -> list[Polygon | Line | Text]:
    out: list[Polygon | Line | Text] = []
    for item in items:
        out += item.items if isinstance(item, Group) else [item]
    return out


# --- SVG ---------------------------------------------------------------------------------------------------------
def to_svg(picture: Picture, font: str) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{picture.width:.0f}pt" height="{picture.height:.0f}pt" '
             f'viewBox="0 0 {picture.width:.2f} {picture.height:.2f}" font-family="{html_text(font)}">',
             f"<title>{html_text(picture.title)}</title>",
             f'<rect x="0" y="0" width="{picture.width:.2f}" height="{picture.height:.2f}" fill="#ffffff"/>']
    for item in picture.items:
        if isinstance(item, Group):
            data = " ".join(f'data-{k}="{html_text(v)}"' for k, v in item.attrs.items())
            lines.append(f'<g class="{html_text(item.kind)}"{" " if data else ""}{data}>')
            lines += [_svg_item(i) for i in item.items]
            lines.append("</g>")
        else:
            lines.append(_svg_item(item))
    lines.append("</svg>")
    return ("\n".join(lines) + "\n").encode()


def _svg_points(points: tuple[Point, ...]) -> str:
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in points)


def _svg_item(item: Polygon | Line | Text) -> str:
    if isinstance(item, Polygon):
        return (f'<polygon points="{_svg_points(item.points)}" fill="{item.fill or "none"}" '
                f'stroke="{item.stroke or "none"}" stroke-width="{item.width:g}" stroke-linejoin="round"/>')
    if isinstance(item, Line):
        return (f'<polyline points="{_svg_points(item.points)}" fill="none" stroke="{item.colour}" '
                f'stroke-width="{item.width:g}"/>')
    weight = ' font-weight="bold"' if item.bold else ""
    return (f'<text x="{item.x:.2f}" y="{item.y:.2f}" font-size="{item.size:g}" text-anchor="{item.anchor}" '
            f'fill="{item.colour}"{weight}>{html_text(item.text)}</text>')


# --- TikZ --------------------------------------------------------------------------------------------------------
TIKZ_ANCHORS = {"start": "base west", "middle": "base", "end": "base east"}


def to_tikz(picture: Picture) -> bytes:
    """A standalone article whose page is the picture (TikZ only; :func:`archc.emit.diagram.tikz.standalone_document`:
    the part between its markers can be pasted into a paper)."""
    colours: dict[str, str] = {}

    def colour(c: str | None) -> str:
        if c is None:
            return "none"
        return colours.setdefault(c.lstrip("#").upper(), f"archc{len(colours)}")

    def pt(p: Point) -> str:
        return f"({p[0]:.2f},{picture.height - p[1]:.2f})"

    body = []
    for item in _flat(picture.items):
        if isinstance(item, Polygon):
            path = " -- ".join(pt(p) for p in item.points) + " -- cycle"
            body.append(rf"\path[fill={colour(item.fill)}, draw={colour(item.stroke)}, line width={item.width:g}pt] "
                        f"{path};")
        elif isinstance(item, Line):
            body.append(rf"\draw[{colour(item.colour)}, line width={item.width:g}pt] "
                        + " -- ".join(pt(p) for p in item.points) + ";")
        else:
            font = rf"\fontsize{{{item.size:g}}}{{{item.size * 1.2:g}}}\selectfont\sffamily"
            font += r"\bfseries" if item.bold else ""
            body.append(rf"\node[anchor={TIKZ_ANCHORS[item.anchor]}, inner sep=0pt, text={colour(item.colour)}, "
                        rf"font={{{font}}}] at {pt((item.x, item.y))} {{{latex_text(item.text)}}};")
    lines = [r"\begin{tikzpicture}[x=1pt, y=1pt, line join=round]",
             *(rf"\definecolor{{{name}}}{{HTML}}{{{hexa}}}" for hexa, name in colours.items()),
             rf"\useasboundingbox (0,0) rectangle ({picture.width:.2f},{picture.height:.2f});", *body,
             r"\end{tikzpicture}"]
    return standalone_document(picture.title, picture.width, picture.height, ["tikz"], lines)
