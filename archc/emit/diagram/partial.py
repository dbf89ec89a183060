"""Diagrams of a spec that failed to compile: the graph as far as lowering got, with the failure marked.

Layers named by a diagnostic are drawn red and so are the edges into them; layers without a shape (everything
downstream of a failure) are grey with ``?`` shapes; the diagnostics themselves, escaped, are listed in the legend.
A step that lost its input to an earlier error has no edge into it; it gets a dotted edge from the layer before it in
source order (where its input would have come from), so the drawing stays one connected picture.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from archc.emit.diagram.dot import Decoration, view_dot
from archc.emit.diagram.figure import DEFAULT_OPTIONS, FigureOptions
from archc.emit.diagram.graphviz import write_drawing
from archc.emit.diagram.view import DEFAULT_BUDGET, LayoutBudget, View
from archc.errors import Diagnostic
from archc.ir.graph import Graph, Node
from archc.text_escape import dot_html

ERROR_COLOR = "#d00000"
ERROR_FILL = "#ffd9d9"
UNTYPED_FILL = "#eeeeee"
UNTYPED_BORDER = "#aaaaaa"
UNTYPED_TEXT = "#777777"
LOST_EDGE_COLOR = "#999999"
MAX_LISTED = 8
"""Diagnostics listed in the legend; the rest are counted."""
NOTE_WIDTH = 110
NOTE_LINES = 4


def to_dot_partial(graph: Graph, diagnostics: list[Diagnostic], *, depth: int | None = None,
                   fold: bool | None = None, direction: str = "TB",
                   budget: LayoutBudget | None = DEFAULT_BUDGET) -> str:
    """DOT text for a partially lowered ``graph`` and the diagnostics that stopped it (deterministic, like
    :func:`archc.emit.diagram.to_dot`, with the same layout budget; the stages holding a failing layer are never
    folded)."""
    return partial_dot(graph, diagnostics, depth=depth, fold=fold, direction=direction, budget=budget)[0]


def partial_dot(graph: Graph, diagnostics: list[Diagnostic], *, depth: int | None = None, fold: bool | None = None,
                direction: str = "TB", budget: LayoutBudget | None = DEFAULT_BUDGET,
                options: FigureOptions = DEFAULT_OPTIONS) -> tuple[str, str]:
    """:func:`to_dot_partial`'s text and the note on what was collapsed to fit the budget ("" when nothing was)."""
    failing = {d.path for d in diagnostics if d.path in graph}
    keep_open = frozenset(p for name in failing for p in graph.scope_chain(graph.node(name).scope))
    layers = [n for n in graph.nodes() if not n.is_input]
    typed = sum(n.out_type is not None for n in layers)
    return view_dot(graph, f"{typed} of {len(layers)} layers typed", depth=depth, fold=fold, direction=direction,
                    budget=budget, keep_open=keep_open, decoration=ErrorMarking(graph, diagnostics), options=options)


def write_partial_diagram(graph: Graph, diagnostics: list[Diagnostic], path: str | os.PathLike[str], *,
                          fmt: str | None = None, depth: int | None = None, fold: bool | None = None,
                          direction: str = "TB", force: bool = False, budget: LayoutBudget | None = DEFAULT_BUDGET,
                          on_note: Callable[[str], None] | None = None,
                          options: FigureOptions = DEFAULT_OPTIONS) -> Path:
    def make(fitted: LayoutBudget | None) -> tuple[str, str]:
        return partial_dot(graph, diagnostics, depth=depth, fold=fold, direction=direction, budget=fitted,
                           options=options)

    return write_drawing(make, path, fmt=fmt, force=force, budget=budget, on_note=on_note)


_ERROR_LEGEND = [
    ("error", f'<TD BGCOLOR="{ERROR_FILL}" COLOR="{ERROR_COLOR}" BORDER="2" WIDTH="18" HEIGHT="12"></TD>',
     "failing layer"),
    ("error-edge", f'<TD><FONT COLOR="{ERROR_COLOR}"><B>——&gt;</B></FONT></TD>', "input of a failing layer"),
    ("untyped", f'<TD BGCOLOR="{UNTYPED_FILL}" COLOR="{UNTYPED_BORDER}" BORDER="1" WIDTH="18" HEIGHT="12"></TD>',
     "no shape (after an error)"),
    ("lost", f'<TD><FONT COLOR="{LOST_EDGE_COLOR}">· · &gt;</FONT></TD>', "input lost to an error"),
]
"""Legend rows for the error styles a partial diagram uses: (style, swatch cell, meaning)."""



class ErrorMarking(Decoration):
    """The partial diagram's marking: failing layers and their inputs red, layers without a shape grey, lost inputs
    dotted, and the diagnostics under the title."""

    def __init__(self, graph: Graph, diagnostics: list[Diagnostic]) -> None:
        self.g = graph
        self.diagnostics = diagnostics
        self.errors: dict[str, list[Diagnostic]] = {}
        for d in diagnostics:
            if d.path in graph:
                self.errors.setdefault(d.path, []).append(d)
        self.used: set[str] = set()
        """Which of the partial styles were drawn, for the legend."""

    def node(self, members: list[Node], rows: list[str]) -> tuple[list[str], dict[str, str]]:
        if not any("cost" in n.meta for n in members):  # costs come after a successful compile only
            rows = [row.replace(">0 params</FONT>", ">? params</FONT>") for row in rows]
        codes = sorted({d.code for n in members for d in self.errors.get(n.name, [])})
        if codes:
            self.used.add("error")
            rows = [*rows, f'<FONT COLOR="{ERROR_COLOR}"><B>{dot_html(" ".join(codes))}</B></FONT>']
            return rows, {"fillcolor": ERROR_FILL, "color": ERROR_COLOR, "penwidth": "2"}
        if all(n.out_type is None for n in members):
            self.used.add("untyped")
            return rows, {"fillcolor": UNTYPED_FILL, "color": UNTYPED_BORDER, "fontcolor": UNTYPED_TEXT}
        return rows, {}

    def edge(self, src: str, dst: Node) -> dict[str, str]:
        if dst.name not in self.errors:
            return {}
        self.used.add("error-edge")
        return {"color": ERROR_COLOR, "penwidth": "2"}

    def extra_edges(self, view: View) -> list[tuple[str, str, dict[str, str]]]:
        """A dotted edge into each step that lost its input to an earlier error, from the layer before it."""
        rep = view.rep
        out = []
        previous: Node | None = None
        for n in self.g.nodes():
            lost = not n.is_input and n.name not in self.errors and not self.g.input_names(n.name)
            if lost and previous is not None and rep[previous.name] != rep[n.name]:
                self.used.add("lost")
                out.append((rep[previous.name], rep[n.name],
                            {"style": "dotted", "color": LOST_EDGE_COLOR, "arrowhead": "empty"}))
            previous = n
        return out

    def title(self, rows: list[str]) -> str:
        """The title, and below it the diagnostics in a box of their own (in a cell beside the legend they would
        stretch its swatch columns)."""
        n_err = len(self.diagnostics)
        rows = [*rows, f'<FONT COLOR="{ERROR_COLOR}"><B>partial diagram: the spec has {n_err} '
                       f'error{"s" if n_err != 1 else ""}</B></FONT>']
        return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{"<BR/>".join(rows)}</TD></TR>'
                f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{self._errors_box()}</TD></TR></TABLE>')

    def _errors_box(self) -> str:
        notes = [f'<FONT COLOR="{ERROR_COLOR}"><B>Errors</B></FONT>']
        for d in self.diagnostics[:MAX_LISTED]:
            line = f"{d.pos.line}:{d.pos.col}  {d.code}  " + (f"{d.path}: " if d.path else "") + d.message
            wrapped = textwrap.wrap(line, NOTE_WIDTH, max_lines=NOTE_LINES, placeholder=" …") or [line]
            notes.append("<BR/>".join(dot_html(part) for part in wrapped))
        if len(self.diagnostics) > MAX_LISTED:
            notes.append(dot_html(f"… and {len(self.diagnostics) - MAX_LISTED} more (see the command's output)"))
        cells = "".join(f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{cell}</TD></TR>' for cell in notes)
        return (f'<TABLE BORDER="1" COLOR="{ERROR_COLOR}" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">{cells}'
                '</TABLE>')

    def legend_entries(self) -> list[str]:
        return [f"{swatch}<TD ALIGN=\"LEFT\">{meaning}</TD>" for kind, swatch, meaning in _ERROR_LEGEND
                if kind in self.used]
