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

from archc.emit.diagram import (
    _attrs,
    _muted,
    _shape,
    _Writer,
    check_direction,
    format_for,
    print_note,
    quote,
    render,
    text,
)
from archc.emit.diagram_view import DEFAULT_BUDGET, LayoutBudget, View, plan_view
from archc.errors import Diagnostic
from archc.io import check_target, write_atomic
from archc.ir.graph import Graph, Node
from archc.yaml_loader import collector_paused

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
                direction: str = "TB", budget: LayoutBudget | None = DEFAULT_BUDGET) -> tuple[str, str]:
    """:func:`to_dot_partial`'s text and the note on what was collapsed to fit the budget ("" when nothing was)."""
    check_direction(direction)
    failing = {d.path for d in diagnostics if d.path in graph}
    keep_open = frozenset(p for name in failing for p in graph.scope_chain(graph.node(name).scope))
    with collector_paused():  # as in diagram_dot
        view = plan_view(graph, depth=depth, fold=fold, keep_open=keep_open, budget=budget)
        return _PartialWriter(view, direction, diagnostics).write(), view.note


def write_partial_diagram(graph: Graph, diagnostics: list[Diagnostic], path: str | os.PathLike[str], *,
                          fmt: str | None = None, depth: int | None = None, fold: bool | None = None,
                          direction: str = "TB", force: bool = False, budget: LayoutBudget | None = DEFAULT_BUDGET,
                          on_note: Callable[[str], None] | None = None) -> Path:
    target = Path(path)
    fmt = fmt or format_for(target)
    check_target(target, force=force)  # before rendering, which can take a while
    dot_text, note = partial_dot(graph, diagnostics, depth=depth, fold=fold, direction=direction,
                                 budget=None if fmt == "dot" else budget)
    data = render(dot_text, fmt)
    if note:
        (on_note or print_note)(note)
    return write_atomic(target, data, force=force)


_ERROR_LEGEND = [
    ("error", f'<TD BGCOLOR="{ERROR_FILL}" COLOR="{ERROR_COLOR}" BORDER="2" WIDTH="18" HEIGHT="12"></TD>',
     "failing layer"),
    ("error-edge", f'<TD><FONT COLOR="{ERROR_COLOR}"><B>——&gt;</B></FONT></TD>', "input of a failing layer"),
    ("untyped", f'<TD BGCOLOR="{UNTYPED_FILL}" COLOR="{UNTYPED_BORDER}" BORDER="1" WIDTH="18" HEIGHT="12"></TD>',
     "no shape (after an error)"),
    ("lost", f'<TD><FONT COLOR="{LOST_EDGE_COLOR}">· · &gt;</FONT></TD>', "input lost to an error"),
]
"""Legend rows for the error styles a partial diagram uses: (style, swatch cell, meaning)."""

class _PartialWriter(_Writer):
    def __init__(self, view: View, direction: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(None, view, direction)
        self.diagnostics = diagnostics
        self.errors: dict[str, list[Diagnostic]] = {}
        for d in diagnostics:
            if d.path in self.g:
                self.errors.setdefault(d.path, []).append(d)
        self.used: set[str] = set()
        """Which of the partial styles were drawn, for the legend."""

    def _members(self, item_id: str) -> list[Node]:
        item = self.view.items[item_id]
        return [item.node] if item.node is not None else item.members

    # --- nodes --------------------------------------------------------------------------------------------------------
    def _styled(self, family: str, rows: list[str], item_id: str) -> dict[str, str]:
        members = self._members(item_id)
        if not any("cost" in n.meta for n in members):  # costs come after a successful compile only
            rows = [_muted("? params") if row == _muted("0 params") else row for row in rows]
        codes = sorted({d.code for n in members for d in self.errors.get(n.name, [])})
        if codes:
            rows = [*rows, f'<FONT COLOR="{ERROR_COLOR}"><B>{text(" ".join(codes))}</B></FONT>']
        attrs = super()._styled(family, rows, item_id)
        if codes:
            self.used.add("error")
            attrs.update(fillcolor=ERROR_FILL, color=ERROR_COLOR, penwidth="2")
        elif all(n.out_type is None for n in members):
            self.used.add("untyped")
            attrs.update(fillcolor=UNTYPED_FILL, color=UNTYPED_BORDER, fontcolor=UNTYPED_TEXT)
        return attrs

    # --- edges --------------------------------------------------------------------------------------------------------
    def _edge_style(self, src: str, dst: Node) -> dict[str, str]:
        if dst.name not in self.errors:
            return {}
        self.used.add("error-edge")
        return {"color": ERROR_COLOR, "penwidth": "2"}

    def _edges(self) -> list[str]:
        out = super()._edges()
        rep = self.view.rep
        previous: Node | None = None
        for n in self.g.nodes():
            lost = not n.is_input and n.name not in self.errors and not self.g.input_names(n.name)
            if lost and previous is not None and rep[previous.name] != rep[n.name]:
                self.used.add("lost")
                attrs = {"style": "dotted", "color": LOST_EDGE_COLOR, "arrowhead": "empty"}
                out.append(f"  {quote(rep[previous.name])} -> {quote(rep[n.name])} {_attrs(attrs)};")
            previous = n
        return out

    # --- heading and legend -------------------------------------------------------------------------------------------
    def _title(self) -> str:
        """The title, and below it the diagnostics in a box of their own (in a cell beside the legend they would
        stretch its swatch columns)."""
        g = self.g
        rows = [f'<FONT POINT-SIZE="16"><B>{text(g.name)}</B></FONT>']
        doc = " ".join(g.doc.split())
        if doc:
            rows += [text(line) for line in textwrap.wrap(doc, 100, max_lines=4, placeholder=" …")]
        ins = ", ".join(f"{n} {_shape(g.node(n).out_type)}" for n in g.inputs)
        layers = [n for n in g.nodes() if not n.is_input]
        typed = sum(n.out_type is not None for n in layers)
        rows.append(f'<FONT COLOR="#555555">{text(ins)}  ·  {typed} of {len(layers)} layers typed</FONT>')
        n_err = len(self.diagnostics)
        rows.append(f'<FONT COLOR="{ERROR_COLOR}"><B>partial diagram: the spec has {n_err} '
                    f'error{"s" if n_err != 1 else ""}</B></FONT>')
        return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{"<BR/>".join(rows)}</TD></TR>'
                f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{self._errors_box()}</TD></TR></TABLE>')

    def _errors_box(self) -> str:
        notes = [f'<FONT COLOR="{ERROR_COLOR}"><B>Errors</B></FONT>']
        for d in self.diagnostics[:MAX_LISTED]:
            line = f"{d.pos.line}:{d.pos.col}  {d.code}  " + (f"{d.path}: " if d.path else "") + d.message
            wrapped = textwrap.wrap(line, NOTE_WIDTH, max_lines=NOTE_LINES, placeholder=" …") or [line]
            notes.append("<BR/>".join(text(part) for part in wrapped))
        if len(self.diagnostics) > MAX_LISTED:
            notes.append(text(f"… and {len(self.diagnostics) - MAX_LISTED} more (see the command's output)"))
        cells = "".join(f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{cell}</TD></TR>' for cell in notes)
        return (f'<TABLE BORDER="1" COLOR="{ERROR_COLOR}" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">{cells}'
                '</TABLE>')

    def _more_legend_entries(self) -> list[str]:
        return [f"{swatch}<TD ALIGN=\"LEFT\">{meaning}</TD>" for kind, swatch, meaning in _ERROR_LEGEND
                if kind in self.used]
