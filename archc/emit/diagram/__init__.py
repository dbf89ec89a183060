"""Graphviz diagrams of a network: what is drawn (:mod:`.view`, with the depth-fold rule shared with the summary in
:mod:`.fold`), the DOT text (:mod:`.dot`, one writer with a decorations hook; :mod:`.partial` decorates it for a spec
that failed), the look (:mod:`.style`) and running Graphviz (:mod:`.graphviz`).

Large graphs fold: a stage of repeated block instances becomes one ``bottleneck x 6`` node, and ``depth`` turns
scopes at that nesting level into single summary nodes (the same depth convention as ``archc summary``).

Paper figures: the options (:mod:`.figure`: title, legend, palettes, font), each folded block's body drawn once
(:mod:`.inset`), encoder-decoders ranked as a U (:mod:`.levels`), long left-to-right drawings wrapped into rows
(:mod:`.wrap`), TikZ from Graphviz's layout (:mod:`.tikz`), and feature maps as boxes (:mod:`.blocks`, drawn by the
small vector writer :mod:`.vector`).
"""

from archc.emit.diagram.dot import Decoration, check_direction, diagram_dot, to_dot, write_diagram
from archc.emit.diagram.figure import DEFAULT_OPTIONS, PALETTE_NAMES, FigureOptions
from archc.emit.diagram.graphviz import FORMATS, format_for, render
from archc.emit.diagram.partial import partial_dot, to_dot_partial, write_partial_diagram
from archc.emit.diagram.view import DEFAULT_BUDGET, LayoutBudget

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_OPTIONS",
    "FORMATS",
    "PALETTE_NAMES",
    "Decoration",
    "FigureOptions",
    "LayoutBudget",
    "check_direction",
    "diagram_dot",
    "format_for",
    "partial_dot",
    "render",
    "to_dot",
    "to_dot_partial",
    "write_diagram",
    "write_partial_diagram",
]
