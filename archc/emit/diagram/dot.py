"""The DOT writer: deterministic Graphviz text for a view of the graph, with a decorations hook.

Every user string reaches DOT only through :func:`archc.text_escape.dot_html` (label text) or
:func:`archc.text_escape.dot_quoted` (ids). Node ids are layer paths or ``scope:<path>``, which no layer path can
spell, all quoted. A :class:`Decoration` marks up nodes, edges, the title and the legend without a second writer (the
partial diagram's error marking, :mod:`archc.emit.diagram.partial`).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from archc.compiler import Compiled
from archc.emit.diagram.blocks import write_blocks
from archc.emit.diagram.dot_text import (
    Html,
    attr_list,
    count_text,
    edge_line,
    is_shortcut,
    muted,
    numbers_inputs,
    rows_table,
    shape_text,
    value,
)
from archc.emit.diagram.figure import DEFAULT_OPTIONS, FigureOptions
from archc.emit.diagram.fold import scope_caption
from archc.emit.diagram.graphviz import write_drawing
from archc.emit.diagram.inset import inset_dot, plan_insets
from archc.emit.diagram.levels import item_levels, oriented, rank_lines
from archc.emit.diagram.style import EDGE_ATTRS, FAMILY_STYLES, GRAPH_ATTRS, NODE_ATTRS
from archc.emit.diagram.view import DEFAULT_BUDGET, Item, LayoutBudget, View, plan_view
from archc.emit.diagram.wrap import ROW_PREFIX, Rows, wrap_rows
from archc.errors import UsageError
from archc.ir.graph import Graph, Node
from archc.ops.base import Cost
from archc.ops.registry import get_op
from archc.text_escape import dot_html, dot_quoted
from archc.yaml_loader import collector_paused

DIRECTIONS = ("TB", "LR", "BT", "RL")
LEGEND_COLUMNS = {"TB": 2, "BT": 2, "LR": 4, "RL": 4}
"""Legend entries per row: a wide layout gets a flatter legend."""
DOC_WIDTH = 100
NOTE_WIDTH = 60
"""Characters per line of the legend's note on what was collapsed."""
DOC_LINES = 4


class Decoration:
    """Hooks through which a caller marks up what the writer draws; this base draws nothing extra."""

    def node(self, members: list[Node], rows: list[str]) -> tuple[list[str], dict[str, str]]:
        """The label rows of a drawn node standing for ``members`` (the output rows follow), and attributes that
        override its style."""
        return rows, {}

    def edge(self, src: str, dst: Node) -> dict[str, str]:
        """Extra attributes for the edge ``src -> dst``."""
        return {}

    def extra_edges(self, view: View) -> list[tuple[str, str, dict[str, str]]]:
        """Edges the graph does not hold, between drawn nodes: (from, to, attributes)."""
        return []

    def title(self, rows: list[str]) -> str:
        """The heading's left cell, from the title rows (name, doc, inputs and facts)."""
        return "<BR/>".join(rows)

    def legend_entries(self) -> list[str]:
        """Extra (swatch, caption) cell pairs for the legend; asked after every node and edge is written."""
        return []


# --- DOT --------------------------------------------------------------------------------------------------------------
def to_dot(compiled: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
           budget: LayoutBudget | None = DEFAULT_BUDGET, options: FigureOptions = DEFAULT_OPTIONS) -> str:
    """The network as Graphviz DOT text; the same input always gives the same bytes.

    ``fold``: draw each stage of repeated blocks as one node; by default only when the graph has more than
    :data:`FOLD_THRESHOLD` layers and no ``depth`` is given. ``depth=N``: scopes at nesting level N (1 = top level)
    become single summary nodes, as rows do in ``archc summary --depth N``. Beyond ``budget`` a default drawing
    collapses further (the legend says how) and an explicit ``fold=False`` or ``depth`` is refused (UsageError);
    ``budget=None`` draws what was asked whatever its size. ``options``: title, legend, palette, font, insets.
    """
    return diagram_dot(compiled, depth=depth, fold=fold, direction=direction, budget=budget, options=options)[0]


def diagram_dot(compiled: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                budget: LayoutBudget | None = DEFAULT_BUDGET,
                options: FigureOptions = DEFAULT_OPTIONS) -> tuple[str, str]:
    """:func:`to_dot`'s text, and a note saying what was collapsed to fit the budget ("" when nothing was)."""
    t = compiled.costs.total
    facts = f"{count_text(t.params)} params  ·  {count_text(t.macs)} MACs  ·  {t.layers} layers"
    return view_dot(compiled.graph, facts, depth=depth, fold=fold, direction=direction, budget=budget,
                    options=options)


def view_dot(g: Graph, facts: str, *, depth: int | None, fold: bool | None, direction: str,
             budget: LayoutBudget | None, keep_open: frozenset[str] = frozenset(),
             decoration: Decoration | None = None, options: FigureOptions = DEFAULT_OPTIONS) -> tuple[str, str]:
    """DOT text of the planned view of ``g`` and the view's note; ``facts`` follows the inputs under the title.
    ``keep_open``: stages never folded."""
    check_direction(direction)
    with collector_paused():  # many small acyclic objects: the collector's passes over the graph would dominate
        view = plan_view(g, depth=depth, fold=fold, keep_open=keep_open, budget=budget)
        return _Writer(view, direction, facts, decoration or Decoration(), options).write(), view.note


def write_diagram(compiled: Compiled, path: str | os.PathLike[str], *, fmt: str | None = None,
                  depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                  force: bool = False, budget: LayoutBudget | None = DEFAULT_BUDGET,
                  on_note: Callable[[str], None] | None = None, options: FigureOptions = DEFAULT_OPTIONS) -> Path:
    """Render the diagram and write it atomically (:func:`archc.emit.diagram.graphviz.write_drawing`); the blocks
    style is drawn without Graphviz (:mod:`archc.emit.diagram.blocks`)."""
    if options.style == "blocks":
        return write_blocks(compiled, path, fmt=fmt, depth=depth, fold=fold, force=force, options=options,
                            budget=budget)

    def make(fitted: LayoutBudget | None) -> tuple[str, str]:
        return diagram_dot(compiled, depth=depth, fold=fold, direction=direction, budget=fitted, options=options)

    return write_drawing(make, path, fmt=fmt, force=force, budget=budget, on_note=on_note)


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise UsageError(f"diagram direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")


class _Writer:
    """One DOT text of a planned view: clusters per drawn scope, a node per item, edges by destination and port, the
    title and legend in the graph label; the decoration is asked at each of those points."""

    def __init__(self, view: View, direction: str, facts: str, decoration: Decoration,
                 options: FigureOptions) -> None:
        self.g = view.g
        self.options = options
        self.palette = options.colours
        self.view = view
        self.direction = direction
        self.facts = facts
        self.decoration = decoration
        self.lines: list[str] = []
        self.families: set[str] = set()
        self.outputs: dict[str, list[str]] = {}
        for out_name, src in self.g.outputs.items():
            self.outputs.setdefault(view.rep[src], []).append(out_name)
        self.has_shortcut = False
        self.has_ports = False
        self.levels = item_levels(view)
        """Item -> resolution level, for an encoder-decoder drawn as a U (empty otherwise)."""
        self.rows = Rows() if self.levels else wrap_rows(view, direction)
        """Where a long left-to-right drawing starts new rows."""

    def write(self) -> str:
        self._clusters()
        self.lines += rank_lines(self.levels)
        edges = self._edges()
        if self.options.insets:
            for inset in plan_insets(self.view):
                drawn = inset_dot(self.g, inset, self.options)
                self.lines += drawn.lines
                edges += drawn.edges
                self.families |= drawn.families
                self.has_shortcut |= drawn.has_shortcut
        head = [f"digraph {dot_quoted(self.g.name)} {{"]
        o = self.options
        graph_attrs = {**GRAPH_ATTRS, "rankdir": self.direction, "fontname": o.font, "fontsize": o.size(12)}
        heading = self._heading()
        if heading:
            graph_attrs["label"] = heading
        head += [f"  {k}={value(v)};" for k, v in graph_attrs.items()]
        head.append(f"  node {attr_list({**NODE_ATTRS, 'fontname': o.font, 'fontsize': o.size(10)})};")
        edge_attrs = {**EDGE_ATTRS, "color": self.palette.edge, "fontname": o.font, "fontsize": o.size(8)}
        head.append(f"  edge {attr_list(edge_attrs)};")
        return "\n".join([*head, *self.lines, *edges, "}"]) + "\n"

    # --- header and legend --------------------------------------------------------------------------------------------
    def _heading(self) -> Html | None:
        """Title and legend side by side in the graph label, so the legend never takes part in the layout; None
        when the options drop both."""
        cells = []
        if self.options.title:
            cells.append(f'<TD ALIGN="LEFT" VALIGN="TOP" BALIGN="LEFT">{self.decoration.title(self._title_rows())}'
                         '</TD>')
        if self.options.legend or self.view.note:  # the note on what was collapsed is never dropped
            cells.append(f'<TD ALIGN="LEFT" VALIGN="TOP">{self._legend()}</TD>')
        if not cells:
            return None
        return Html('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="4"><TR>' + "".join(cells) + "</TR></TABLE>")

    def _title_rows(self) -> list[str]:
        g = self.g
        rows = [f'<FONT POINT-SIZE="{self.options.size(16)}"><B>{dot_html(g.name)}</B></FONT>']
        doc = " ".join(g.doc.replace("`", "").split())  # Markdown code marks mean nothing in a figure
        if doc:
            lines = textwrap.wrap(doc, DOC_WIDTH, max_lines=DOC_LINES, placeholder=" …")
            rows += [dot_html(line) for line in lines]
        ins = ", ".join(f"{n} {shape_text(g.node(n).out_type)}" for n in g.inputs)
        rows.append(f'<FONT COLOR="{self.palette.muted}">{dot_html(ins)}  ·  {dot_html(self.facts)}</FONT>')
        return rows

    def _legend(self) -> str:
        """A swatch and a caption per family present (and per edge style used), several entries to a row."""
        entries = []
        for family in FAMILY_STYLES:
            style = self.palette.family(family)
            if family in self.families and self.options.legend:
                entries.append(f'<TD BGCOLOR="{style.fill}" COLOR="{style.border}" BORDER="1" WIDTH="18" HEIGHT="12">'
                               f'</TD><TD ALIGN="LEFT">{dot_html(style.legend)}</TD>')
        if self.has_shortcut and self.options.legend:
            entries.append(f'<TD><FONT COLOR="{self.palette.shortcut}"><B>- - &gt;</B></FONT></TD>'
                           '<TD ALIGN="LEFT">shortcut / skip connection</TD>')
        if self.has_ports and self.options.legend:
            entries.append(f'<TD><FONT POINT-SIZE="{self.options.size(8)}">0 1</FONT></TD>'
                           '<TD ALIGN="LEFT">concat input order</TD>')
        entries += self.decoration.legend_entries()
        per_row = LEGEND_COLUMNS[self.direction]
        rows = [f'<TR><TD COLSPAN="{2 * per_row}" ALIGN="LEFT"><B>Legend</B></TD></TR>'] if entries else []
        rows += ["<TR>" + "".join(entries[i:i + per_row]) + "</TR>" for i in range(0, len(entries), per_row)]
        if self.view.note:  # the drawing shows less than was asked for: say so where the reader looks
            note = "<BR/>".join(dot_html(line) for line in textwrap.wrap(self.view.note, NOTE_WIDTH))
            rows.append(f'<TR><TD COLSPAN="{2 * per_row}" ALIGN="LEFT" BALIGN="LEFT">'
                        f'<FONT COLOR="{self.palette.muted}"><I>{note}</I></FONT></TD></TR>')
        return ('<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
                + "".join(rows) + "</TABLE>")

    # --- clusters and nodes -------------------------------------------------------------------------------------------
    def _clusters(self) -> None:
        children: dict[str, list[tuple[str, str]]] = {"": []}
        for item in self.view.items.values():
            parent = ""
            if self.rows.row:  # a wrapped drawing: each row an invisible cluster holding whole top-level clusters
                parent = ROW_PREFIX + str(self.rows.row[item.id])
                if parent not in children:
                    children[parent] = []
                    children[""].append(("row", parent))
            for path in self.g.scope_chain(item.cluster):
                if path in self.rows.dissolved:
                    continue
                if path not in children:
                    children[path] = []
                    children[parent].append(("cluster", path))
                parent = path
            children[parent].append(("item", item.id))
        self._emit_children("", children, 1)

    def _emit_children(self, path: str, children: dict[str, list[tuple[str, str]]], level: int) -> None:
        pad = "  " * level
        for kind, key in children[path]:
            if kind == "item":
                self.lines.append(f"{pad}{dot_quoted(key)} {attr_list(self._node_attrs(self.view.items[key]))};")
                continue
            if kind == "row":
                self.lines += [f"{pad}subgraph {dot_quoted('cluster_' + key)} {{", f'{pad}  style="invis";',
                               f'{pad}  label="";']
                self._emit_children(key, children, level)
                self.lines.append(f"{pad}}}")
                continue
            self.lines.append(f"{pad}subgraph {dot_quoted('cluster_' + key)} {{")
            for k, v in self._cluster_attrs(key, level).items():
                self.lines.append(f"{pad}  {k}={value(v)};")
            self._emit_children(key, children, level + 1)
            self.lines.append(f"{pad}}}")

    def _cluster_attrs(self, path: str, level: int) -> dict[str, str]:
        scope = self.g.scopes[path]
        local = path.rsplit(".", 1)[-1]
        caption = f"<B>{dot_html(path)}</B>"
        if scope.label and scope.label != local:
            caption += f"  {dot_html(scope.label)}"
        return {
            "label": Html(caption),
            "style": "rounded,filled",
            "fillcolor": self.palette.cluster_fills[(level - 1) % len(self.palette.cluster_fills)],
            "color": self.palette.cluster_border,
            "fontsize": self.options.size(10),
            "labeljust": "l",
            "margin": "6",
        }

    def _node_attrs(self, item: Item) -> dict[str, str]:
        if item.node is None:
            return self._scope_node(item) if item.scope else self._run_node(item)
        n = item.node
        op = get_op(n.op)
        family = "input" if n.is_input else (op.family if op is not None else "")
        rows: list[str] = []
        if n.is_input:
            rows += [f"<B>{dot_html(n.name)}</B>", "input"]
        else:
            detail = op.label(n.params, n.out_type) if op is not None and n.params is not None else ""
            op_text = dot_html(n.op + (" " + detail if detail else ""))
            if not n.local_name.isdigit():  # an anonymous step's generated name says nothing
                rows.append(f"<B>{dot_html(n.local_name)}</B>")
            rows.append(op_text)
        rows.append(self._muted(shape_text(n.out_type)))
        attrs = self._styled(family, rows, item.id)
        if numbers_inputs(n) and len(self.g.input_names(n.name)) > 1:
            attrs["ordering"] = "in"
        return attrs

    def _scope_node(self, item: Item) -> dict[str, str]:
        path = item.scope
        repeat = self.view.repeats.get(path)
        what = repeat or scope_caption(self.g.scopes[path])
        run = self.view.runs.get(path)
        title = f"{path}–{run[-1].rsplit('.', 1)[-1]}" if run else path  # a run of instances: features.2–4
        rows = [f"<B>{dot_html(title)}</B>", dot_html(what), *self._flow_rows(item.members)]
        attrs = self._styled("block", rows, item.id)
        attrs["style"] = "filled,bold" if repeat else "rounded,filled,bold"
        if repeat:
            attrs.update(shape="box3d", margin="0.14,0.05")
        return attrs

    def _run_node(self, item: Item) -> dict[str, str]:
        """Consecutive top-level layers drawn as one node, when there are too many to lay out one by one."""
        first, last = item.members[0].name, item.members[-1].name
        rows = [f"<B>{dot_html(first)} … {dot_html(last)}</B>", dot_html(f"{len(item.members):,} layers"),
                *self._flow_rows(item.members)]
        attrs = self._styled("block", rows, item.id)
        attrs["style"] = "filled,bold"
        return attrs

    def _flow_rows(self, members: list[Node]) -> list[str]:
        """Input shape -> output shape, and the parameters, of a group of layers drawn as one node."""
        names = {n.name for n in members}
        outputs = set(self.g.outputs.values())
        first_in = next(((src,) for n in members for src in self.g.input_names(n.name) if src not in names), None)
        outs = [n.out_type for n in members if n.name in outputs or n.name in self.view.leaving]
        out = outs[-1] if outs else members[-1].out_type
        flow = f"{shape_text(self.g.node(first_in[0]).out_type)} → {shape_text(out)}" if first_in else shape_text(out)
        params = sum(n.meta.get("cost", Cost()).params for n in members)
        return [self._muted(flow), self._muted(f"{count_text(params)} params")]

    def _muted(self, s: str) -> str:
        return muted(s, self.options.size(9), self.palette.muted)

    def _styled(self, family: str, rows: list[str], item_id: str) -> dict[str, str]:
        self.families.add(family)
        style = self.palette.family(family)
        item = self.view.items[item_id]
        rows, overrides = self.decoration.node([item.node] if item.node is not None else item.members, rows)
        names = self.outputs.get(item_id, [])
        rows = rows + [f"<I>{'output' if name == 'output' else 'output ' + dot_html(name)}</I>" for name in names]
        attrs = {"label": rows_table(rows), "fillcolor": style.fill, "color": style.border}
        if names:
            attrs["peripheries"] = "2"
        if family == "input":
            attrs["penwidth"] = "1.5"
        attrs.update(overrides)
        return attrs

    # --- edges --------------------------------------------------------------------------------------------------------
    def _edges(self) -> list[str]:
        """Edges by destination in source order, then by input port; folded endpoints share one edge."""
        g, rep = self.g, self.view.rep
        seen: set[tuple[str, str]] = set()
        out: list[str] = []
        for n in g.nodes():
            srcs = g.input_names(n.name)
            for port, src in enumerate(srcs):
                a, b = rep[src], rep[n.name]
                if a == b:
                    continue
                folded = a != src or b != n.name
                if folded and (a, b) in seen:
                    continue
                seen.add((a, b))
                attrs: dict[str, str] = {}
                if is_shortcut(g, src, n):
                    self.has_shortcut = True
                    attrs.update(style="dashed", color=self.palette.shortcut, penwidth="1.2")
                # dot does not keep in-edge order inside clusters, so the concat order is written on the edges
                if not folded and len(srcs) > 1 and numbers_inputs(n):
                    self.has_ports = True
                    attrs.update(headlabel=str(port), labeldistance="1.2", labelfontcolor=self.palette.muted)
                attrs.update(self.decoration.edge(src, n))
                out.append(edge_line(*self.rows.oriented(*oriented(a, b, attrs, self.levels))))
        out += [edge_line(a, b, attrs) for a, b, attrs in self.decoration.extra_edges(self.view)]
        return out


