"""The feature-map style (``archc draw --style blocks``): each feature map a 3-D box sized by its shape, left to right,
as in the LeNet, AlexNet and VGG papers.

A map of shape C x H x W is a box whose front face is H tall, whose receding depth is W, and whose thickness along
the flow grows with log2(C) (channel counts span 1 to thousands; spatial sizes are drawn to scale, relative to the
largest map). A vector of N features is a thin bar whose height grows with log2(N). Layers that keep their input's
shape (activations, normalisation, dropout, a reshape of the same size) add no box of their own; the drawn nodes of
the graph view (folded stages, ``depth``) are the units, so a large network stays one row of boxes. Branches are
drawn in execution order: the style is meant for the chain-shaped networks those papers show.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from archc.compiler import Compiled
from archc.emit.diagram.dot_text import count_text
from archc.emit.diagram.figure import FigureOptions
from archc.emit.diagram.fold import scope_caption
from archc.emit.diagram.graphviz import format_for
from archc.emit.diagram.vector import Group, Line, Picture, Polygon, Text, to_svg, to_tikz
from archc.emit.diagram.view import DEFAULT_BUDGET, Item, LayoutBudget, View, plan_view
from archc.errors import UsageError
from archc.io import check_target, write_atomic
from archc.ir.graph import Node
from archc.ops.families import FamilyStyle
from archc.ops.registry import get_op

MAX_FACE = 150.0
"""Points: the front-face height of the largest map (and the receding depth of the widest)."""
OBLIQUE = 0.45
"""The receding edge is drawn at 45 degrees, foreshortened to this fraction."""
CHANNEL_UNIT = 3.0
"""Points of thickness per doubling of the channels (plus one unit)."""
VECTOR_UNIT = 9.0
"""Points of bar height per doubling of a vector's features."""
VECTOR_THICKNESS = 5.0
MIN_SIDE = 1.0
GAP = 26.0
MARGIN = 18.0
SHAPE_PRESERVING = frozenset({"act", "norm", "reg"})
"""Families whose layers, keeping their input's shape, join the box before them."""
FORMATS = ("svg", "tex")


@dataclass
class Box:
    """One drawn feature map."""

    name: str
    caption: str
    """What made it (``conv 5x5, 6``, ``bottleneck x 3``)."""
    shape: tuple[int, ...]
    family: str
    then: list[str] = field(default_factory=list)
    """Shape-preserving ops folded into the box (``relu``)."""
    end_shape: tuple[int, ...] = ()
    """The shape after the folded ops (a flatten's)."""
    height: float = 0.0
    depth: float = 0.0
    """Receding depth before foreshortening."""
    thickness: float = 0.0

    @property
    def is_map(self) -> bool:
        return len(self.shape) >= 2

    @property
    def shape_label(self) -> str:
        if len(self.shape) >= 3:
            return f"{self.shape[0]}@{'x'.join(map(str, self.shape[1:]))}"
        return "x".join(map(str, self.shape))


def feature_boxes(compiled: Compiled, *, depth: int | None = None, fold: bool | None = None,
                  budget: LayoutBudget | None = DEFAULT_BUDGET) -> list[Box]:
    """The boxes of the figure, sized (points), in drawing order."""
    view = plan_view(compiled.graph, depth=depth, fold=fold, budget=budget)
    boxes: list[Box] = []
    for item in view.items.values():
        node = _representative(view, item)
        if node.out_type is None:
            continue
        shape = tuple(node.out_type.shape)
        family, caption = _what(view, item)
        last = boxes[-1] if boxes else None
        if last is not None and item.node is not None and _joins(family, shape, last):
            last.then.append(item.node.op)
            last.end_shape = shape
            continue
        name = item.scope or (node.local_name if not node.local_name.isdigit() else node.name)
        boxes.append(Box(name, caption, shape, family, end_shape=shape))
    _size(boxes)
    return boxes


def _representative(view: View, item: Item) -> Node:
    if item.node is not None:
        return item.node
    leaving = [n for n in item.members if n.name in view.leaving or n.name in view.g.outputs.values()]
    return leaving[-1] if leaving else item.members[-1]


def _what(view: View, item: Item) -> tuple[str, str]:
    n = item.node
    if n is None:
        return "block", view.repeats.get(item.scope) or scope_caption(view.g.scopes[item.scope])
    if n.is_input:
        return "input", "input"
    op = get_op(n.op)
    detail = op.label(n.params, n.out_type) if op is not None and n.params is not None else ""
    return (op.family if op is not None else ""), n.op + (" " + detail if detail else "")


def _joins(family: str, shape: tuple[int, ...], last: Box) -> bool:
    if family in SHAPE_PRESERVING and shape == last.end_shape:
        return True
    return family == "tensor" and len(shape) == 1 and math.prod(shape) == math.prod(last.end_shape)  # a flatten


def _size(boxes: list[Box]) -> None:
    maps = [b for b in boxes if b.is_map]
    top_h = max((b.shape[-2] if len(b.shape) >= 3 else b.shape[-1] for b in maps), default=1)
    top_w = max((b.shape[-1] if len(b.shape) >= 3 else 1 for b in maps), default=1)
    for b in boxes:
        if b.is_map:
            h, w = (b.shape[-2], b.shape[-1]) if len(b.shape) >= 3 else (b.shape[-1], 1)
            b.height = max(MIN_SIDE, MAX_FACE * h / top_h)
            b.depth = max(MIN_SIDE, MAX_FACE * w / top_w)
            b.thickness = CHANNEL_UNIT * (1 + math.log2(max(1, b.shape[0])))
        else:
            features = math.prod(b.shape) if b.shape else 1
            b.height = VECTOR_UNIT * (1 + math.log2(max(1, features)))
            b.depth = 0.0
            b.thickness = VECTOR_THICKNESS


# --- drawing ----------------------------------------------------------------------------------------------------------
def blocks_picture(compiled: Compiled, options: FigureOptions, *, depth: int | None = None,
                   fold: bool | None = None, budget: LayoutBudget | None = DEFAULT_BUDGET) -> Picture:
    boxes = feature_boxes(compiled, depth=depth, fold=fold, budget=budget)
    palette = options.colours
    size = options.font_size
    g = compiled.graph
    head = 0.0
    items: list[Polygon | Line | Text | Group] = []
    if options.title:
        t = compiled.costs.total
        items.append(Text(MARGIN, MARGIN + size * 1.6, g.name, size * 1.6, "start", bold=True))
        facts = f"{count_text(t.params)} params  ·  {count_text(t.macs)} MACs  ·  {t.layers} layers"
        items.append(Text(MARGIN, MARGIN + size * 3.0, facts, size * 0.9, "start", palette.muted))
        head = size * 4.4
    rise = max((b.depth * OBLIQUE * math.sqrt(0.5) for b in boxes), default=0.0)
    tallest = max((b.height for b in boxes), default=0.0)
    label_h = size * 1.4
    centre = MARGIN + head + label_h + rise + tallest / 2
    x = MARGIN
    previous_right = None
    for b in boxes:
        shift = b.depth * OBLIQUE * math.sqrt(0.5)
        texts = [b.shape_label, b.name, b.caption, *([" + ".join(b.then)] if b.then else [])]
        slot = max(b.thickness + shift, *(_text_width(s, size) for s in texts))
        left = x + (slot - b.thickness - shift) / 2
        if previous_right is not None:
            items.append(_arrow(previous_right + 3, left - 3, centre, palette.edge))
        group = Group("fmap", {"layer": b.name, "shape": shape_text_of(b.shape), "height": f"{b.height:.3f}",
                       "depth": f"{b.depth:.3f}", "thickness": f"{b.thickness:.3f}"})
        group.items += _cuboid(left, centre - b.height / 2, b, shift, palette.family(b.family))
        top = centre - b.height / 2 - shift
        bottom = centre + b.height / 2
        mid = left + (b.thickness + shift) / 2
        group.items.append(Text(mid, top - size * 0.5, b.shape_label, size * 0.9, colour=palette.muted))
        group.items.append(Text(mid, bottom + size * 1.4, b.name, size, bold=True))
        group.items.append(Text(mid, bottom + size * 2.6, b.caption, size * 0.9))
        if b.then:
            group.items.append(Text(mid, bottom + size * 3.7, " + ".join(b.then), size * 0.8, colour=palette.muted))
        items.append(group)
        previous_right = left + b.thickness + shift / 2
        x += slot + GAP
    height = centre + tallest / 2 + size * 4.5
    if options.legend:
        height = _legend(items, boxes, options, height)
    return Picture(max(x - GAP + MARGIN, 200.0), height + MARGIN, g.name, items)


def shape_text_of(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _text_width(s: str, size: float) -> float:
    """A generous estimate of a sans-serif text's width: the slot is never narrower than its labels."""
    return 0.56 * size * len(s)


def _cuboid(x: float, y: float, b: Box, shift: float, style: FamilyStyle) -> list[Polygon | Line | Text]:
    """Front, top and side faces of a box whose front face's top-left corner is (x, y)."""
    fill, border = style.fill, style.border
    t, h = b.thickness, b.height
    front = Polygon(((x, y), (x + t, y), (x + t, y + h), (x, y + h)), fill, border)
    if shift <= 0:
        return [front]
    top = Polygon(((x, y), (x + t, y), (x + t + shift, y - shift), (x + shift, y - shift)), _shade(fill, 0.35),
                  border)
    side = Polygon(((x + t, y), (x + t + shift, y - shift), (x + t + shift, y + h - shift), (x + t, y + h)),
                   _shade(fill, -0.15), border)
    return [front, top, side]


def _shade(colour: str, amount: float) -> str:
    """Lighter (amount > 0, towards white) or darker (towards black)."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    mixed = [c + (255 - c) * amount if amount > 0 else c * (1 + amount) for c in rgb]
    return "#" + "".join(f"{round(c):02x}" for c in mixed)


def _arrow(x0: float, x1: float, y: float, colour: str) -> Group:
    head = [Polygon(((x1, y), (x1 - 5, y - 2.5), (x1 - 5, y + 2.5)), colour, colour, 0.5)] if x1 - x0 > 6 else []
    return Group("arrow", {}, [Line(((x0, y), (x1 - 4, y)), colour), *head])


def _legend(items: list[Polygon | Line | Text | Group], boxes: list[Box], options: FigureOptions,
            y: float) -> float:
    size = options.font_size
    x = MARGIN
    seen: list[str] = []
    for b in boxes:
        if b.family not in seen:
            seen.append(b.family)
    for family in seen:
        style = options.colours.family(family)
        items.append(Polygon(((x, y), (x + 14, y), (x + 14, y + 9), (x, y + 9)), style.fill, style.border))
        items.append(Text(x + 18, y + 8, style.legend, size * 0.9, "start"))
        x += 26 + _text_width(style.legend, size * 0.9)
    return y + 16


def render_blocks(compiled: Compiled, fmt: str, options: FigureOptions, *, depth: int | None = None,
                  fold: bool | None = None, budget: LayoutBudget | None = DEFAULT_BUDGET) -> bytes:
    """The feature-map figure as ``svg`` or ``tex`` (a TikZ document) bytes."""
    if fmt not in FORMATS:
        raise UsageError(f"the blocks style draws SVG or TikZ (.svg or .tex); got {fmt}")
    picture = blocks_picture(compiled, options, depth=depth, fold=fold, budget=budget)
    return to_svg(picture, options.font) if fmt == "svg" else to_tikz(picture)


def write_blocks(compiled: Compiled, path: str | os.PathLike[str], *, fmt: str | None, depth: int | None,
                 fold: bool | None, force: bool, options: FigureOptions,
                 budget: LayoutBudget | None = DEFAULT_BUDGET) -> Path:
    target = Path(path)
    fmt = fmt or format_for(target)
    check_target(target, force=force)
    return write_atomic(target, render_blocks(compiled, fmt, options, depth=depth, fold=fold, budget=budget),
                        force=force)
