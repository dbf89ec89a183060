"""Graphviz diagrams of a compiled network: deterministic DOT text, rendering through `dot`, and writing to a file.

Every user string reaches DOT only through :func:`text` (HTML-escaped, backslashes doubled because Graphviz expands
``\\N``-style escapes even inside HTML labels). Node ids are layer paths (letters, digits, ``_`` and ``.``) or
``scope:<path>``, which no layer path can spell, all quoted.

Large graphs fold: a stage of repeated block instances becomes one ``bottleneck x 6`` node, and ``depth`` turns
scopes at that nesting level into single summary nodes (the same depth convention as ``archc summary``).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from archc.compiler import Compiled
from archc.emit.diagram_style import (
    CLUSTER_BORDER,
    CLUSTER_FILLS,
    EDGE_ATTRS,
    FAMILY_STYLES,
    GRAPH_ATTRS,
    MUTED_TEXT,
    NODE_ATTRS,
    SHORTCUT_COLOR,
    family_style,
)
from archc.emit.diagram_view import DEFAULT_BUDGET, Item, LayoutBudget, View, plan_view
from archc.errors import UsageError
from archc.io import check_target, write_atomic
from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType
from archc.ops.base import Cost
from archc.ops.registry import get_op
from archc.yaml_loader import collector_paused

DIRECTIONS = ("TB", "LR", "BT", "RL")
FORMATS = ("svg", "png", "pdf", "dot")
SUFFIX_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RENDER_TIMEOUT = 60.0
"""Seconds Graphviz may take for one layout before we give up (the layout budget keeps it to seconds)."""
PNG_DPI = 96
MAX_PNG_SIDE = 16_000
MAX_PNG_PIXELS = 40_000_000
MAX_PNG_NODES = 3_000
"""More nodes than this cannot make a useful PNG at any layout; refused before spending time on the layout."""
LEGEND_COLUMNS = {"TB": 2, "BT": 2, "LR": 4, "RL": 4}
"""Legend entries per row: a wide layout gets a flatter legend."""
DOC_WIDTH = 100
NOTE_WIDTH = 60
"""Characters per line of the legend's note on what was collapsed."""
DOC_LINES = 4

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NODE_STATEMENT = re.compile(r'^\s*"[^"\n]*" \[label=', re.M)


# --- escaping ---------------------------------------------------------------------------------------------------------
def text(value: object) -> str:
    """Any user-derived string as HTML-label text: control characters replaced, markup and backslashes escaped."""
    s = _CONTROL.sub("\ufffd", str(value))
    return html.escape(s, quote=True).replace("\\", "\\\\")


def quote(value: str) -> str:
    """A DOT quoted id or attribute value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Html(str):
    """An HTML-like label, already built from escaped pieces; written as ``<...>`` instead of quoted."""


def value(v: str) -> str:
    return f"<{v}>" if isinstance(v, Html) else quote(v)


def _attrs(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={value(v)}" for k, v in attrs.items()) + "]"


# --- DOT --------------------------------------------------------------------------------------------------------------
def to_dot(compiled: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
           budget: LayoutBudget | None = DEFAULT_BUDGET) -> str:
    """The network as Graphviz DOT text; the same input always gives the same bytes.

    ``fold``: draw each stage of repeated blocks as one node; by default only when the graph has more than
    :data:`FOLD_THRESHOLD` layers and no ``depth`` is given. ``depth=N``: scopes at nesting level N (1 = top level)
    become single summary nodes, as rows do in ``archc summary --depth N``. Beyond ``budget`` a default drawing
    collapses further (the legend says how) and an explicit ``fold=False`` or ``depth`` is refused (UsageError);
    ``budget=None`` draws what was asked whatever its size.
    """
    return diagram_dot(compiled, depth=depth, fold=fold, direction=direction, budget=budget)[0]


def diagram_dot(compiled: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                budget: LayoutBudget | None = DEFAULT_BUDGET) -> tuple[str, str]:
    """:func:`to_dot`'s text, and a note saying what was collapsed to fit the budget ("" when nothing was)."""
    check_direction(direction)
    with collector_paused():  # many small acyclic objects: the collector's passes over the graph would dominate
        view = plan_view(compiled.graph, depth=depth, fold=fold, budget=budget)
        return _Writer(compiled, view, direction).write(), view.note


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise UsageError(f"diagram direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")


class _Writer:
    def __init__(self, c: Compiled | None, view: View, direction: str) -> None:
        self.c = c
        """None for a partial diagram (:mod:`archc.emit.partial`), which overrides the parts that read costs."""
        self.g = view.g
        self.view = view
        self.direction = direction
        self.lines: list[str] = []
        self.families: set[str] = set()
        self.outputs: dict[str, list[str]] = {}
        for out_name, src in self.g.outputs.items():
            self.outputs.setdefault(view.rep[src], []).append(out_name)
        self.has_shortcut = False
        self.has_ports = False

    def write(self) -> str:
        self._clusters()
        edges = self._edges()
        head = [f"digraph {quote(self.g.name)} {{"]
        graph_attrs = {**GRAPH_ATTRS, "rankdir": self.direction, "label": self._heading()}
        head += [f"  {k}={value(v)};" for k, v in graph_attrs.items()]
        head.append(f"  node {_attrs(NODE_ATTRS)};")
        head.append(f"  edge {_attrs(EDGE_ATTRS)};")
        return "\n".join([*head, *self.lines, *edges, "}"]) + "\n"

    # --- header and legend --------------------------------------------------------------------------------------------
    def _heading(self) -> Html:
        """Title and legend side by side in the graph label, so the legend never takes part in the layout."""
        return Html('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="4"><TR>'
                    f'<TD ALIGN="LEFT" VALIGN="TOP" BALIGN="LEFT">{self._title()}</TD>'
                    f'<TD ALIGN="LEFT" VALIGN="TOP">{self._legend()}</TD></TR></TABLE>')

    def _title(self) -> str:
        assert self.c is not None
        g, t = self.g, self.c.costs.total
        rows = [f'<FONT POINT-SIZE="16"><B>{text(g.name)}</B></FONT>']
        doc = " ".join(g.doc.split())
        if doc:
            lines = textwrap.wrap(doc, DOC_WIDTH, max_lines=DOC_LINES, placeholder=" …")
            rows += [text(line) for line in lines]
        ins = ", ".join(f"{n} {_shape(g.node(n).out_type)}" for n in g.inputs)
        rows.append(f'<FONT COLOR="{MUTED_TEXT}">{text(ins)}  ·  {_count(t.params)} params  ·  '
                    f'{_count(t.macs)} MACs  ·  {t.layers} layers</FONT>')
        return "<BR/>".join(rows)

    def _legend(self) -> str:
        """A swatch and a caption per family present (and per edge style used), several entries to a row."""
        entries = []
        for family, style in FAMILY_STYLES.items():
            if family in self.families:
                entries.append(f'<TD BGCOLOR="{style.fill}" COLOR="{style.border}" BORDER="1" WIDTH="18" HEIGHT="12">'
                               f'</TD><TD ALIGN="LEFT">{text(style.legend)}</TD>')
        if self.has_shortcut:
            entries.append(f'<TD><FONT COLOR="{SHORTCUT_COLOR}"><B>- - &gt;</B></FONT></TD>'
                           '<TD ALIGN="LEFT">shortcut / skip connection</TD>')
        if self.has_ports:
            entries.append('<TD><FONT POINT-SIZE="8">0 1</FONT></TD><TD ALIGN="LEFT">concat input order</TD>')
        entries += self._more_legend_entries()
        per_row = LEGEND_COLUMNS[self.direction]
        rows = [f'<TR><TD COLSPAN="{2 * per_row}" ALIGN="LEFT"><B>Legend</B></TD></TR>']
        rows += ["<TR>" + "".join(entries[i:i + per_row]) + "</TR>" for i in range(0, len(entries), per_row)]
        if self.view.note:  # the drawing shows less than was asked for: say so where the reader looks
            note = "<BR/>".join(text(line) for line in textwrap.wrap(self.view.note, NOTE_WIDTH))
            rows.append(f'<TR><TD COLSPAN="{2 * per_row}" ALIGN="LEFT" BALIGN="LEFT">'
                        f'<FONT COLOR="{MUTED_TEXT}"><I>{note}</I></FONT></TD></TR>')
        return ('<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
                + "".join(rows) + "</TABLE>")

    def _more_legend_entries(self) -> list[str]:
        """Extra (swatch, caption) cell pairs; a partial diagram's error styles."""
        return []

    # --- clusters and nodes -------------------------------------------------------------------------------------------
    def _clusters(self) -> None:
        children: dict[str, list[tuple[str, str]]] = {"": []}
        for item in self.view.items.values():
            parent = ""
            for path in self.g.scope_chain(item.cluster):
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
                self.lines.append(f"{pad}{quote(key)} {_attrs(self._node_attrs(self.view.items[key]))};")
                continue
            self.lines.append(f"{pad}subgraph {quote('cluster_' + key)} {{")
            for k, v in self._cluster_attrs(key, level).items():
                self.lines.append(f"{pad}  {k}={value(v)};")
            self._emit_children(key, children, level + 1)
            self.lines.append(f"{pad}}}")

    def _cluster_attrs(self, path: str, level: int) -> dict[str, str]:
        scope = self.g.scopes[path]
        local = path.rsplit(".", 1)[-1]
        caption = f"<B>{text(path)}</B>"
        if scope.label and scope.label != local:
            caption += f"  {text(scope.label)}"
        return {
            "label": Html(caption),
            "style": "rounded,filled",
            "fillcolor": CLUSTER_FILLS[(level - 1) % len(CLUSTER_FILLS)],
            "color": CLUSTER_BORDER,
            "fontsize": "10",
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
            rows += [f"<B>{text(n.name)}</B>", "input"]
        else:
            detail = op.label(n.params, n.out_type) if op is not None and n.params is not None else ""
            op_text = text(n.op + (" " + detail if detail else ""))
            if not n.local_name.isdigit():  # an anonymous step's generated name says nothing
                rows.append(f"<B>{text(n.local_name)}</B>")
            rows.append(op_text)
        rows.append(_muted(_shape(n.out_type)))
        attrs = self._styled(family, rows, item.id)
        if op is not None and op.name == "concat" and len(self.g.input_names(n.name)) > 1:
            attrs["ordering"] = "in"
        return attrs

    def _scope_node(self, item: Item) -> dict[str, str]:
        path = item.scope
        scope = self.g.scopes[path]
        local = path.rsplit(".", 1)[-1]
        repeat = self.view.repeats.get(path)
        what = repeat or (scope.label if scope.label and scope.label != local else scope.kind)
        rows = [f"<B>{text(path)}</B>", text(what), *self._flow_rows(item.members)]
        attrs = self._styled("block", rows, item.id)
        attrs["style"] = "filled,bold" if repeat else "rounded,filled,bold"
        if repeat:
            attrs.update(shape="box3d", margin="0.14,0.05")
        return attrs

    def _run_node(self, item: Item) -> dict[str, str]:
        """Consecutive top-level layers drawn as one node, when there are too many to lay out one by one."""
        first, last = item.members[0].name, item.members[-1].name
        rows = [f"<B>{text(first)} … {text(last)}</B>", text(f"{len(item.members):,} layers"),
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
        flow = f"{_shape(self.g.node(first_in[0]).out_type)} → {_shape(out)}" if first_in else _shape(out)
        params = sum(n.meta.get("cost", Cost()).params for n in members)
        return [_muted(flow), _muted(f"{_count(params)} params")]

    def _styled(self, family: str, rows: list[str], item_id: str) -> dict[str, str]:
        self.families.add(family)
        style = family_style(family)
        names = self.outputs.get(item_id, [])
        rows = rows + [f"<I>{'output' if name == 'output' else 'output ' + text(name)}</I>" for name in names]
        attrs = {"label": _rows_table(rows), "fillcolor": style.fill, "color": style.border}
        if names:
            attrs["peripheries"] = "2"
        if family == "input":
            attrs["penwidth"] = "1.5"
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
                if _is_shortcut(g, src, n):
                    self.has_shortcut = True
                    attrs.update(style="dashed", color=SHORTCUT_COLOR, penwidth="1.2")
                # dot does not keep in-edge order inside clusters, so the concat order is written on the edges
                if not folded and n.op == "concat" and len(srcs) > 1:
                    self.has_ports = True
                    attrs.update(headlabel=str(port), labeldistance="1.2", labelfontcolor=MUTED_TEXT)
                attrs.update(self._edge_style(src, n))
                out.append(f"  {quote(a)} -> {quote(b)}" + (f" {_attrs(attrs)}" if attrs else "") + ";")
        return out

    def _edge_style(self, src: str, dst: Node) -> dict[str, str]:
        """Extra attributes for the edge ``src -> dst``; a partial diagram colours the failing layers' inputs."""
        return {}


def _is_shortcut(g: Graph, src: str, dst: Node) -> bool:
    """A skip connection: part of a shortcut path, or a tensor that also went elsewhere, entering a merge."""
    if any(g.scopes[p].kind == "shortcut" for n in (g.node(src), dst) for p in g.scope_chain(n.scope)):
        return True
    op = get_op(dst.op)
    return op is not None and op.family == "merge" and len(g.users(src)) > 1


def _shape(t: TensorType | None) -> str:
    return "x".join(str(d) for d in t.shape) if t is not None else "?"


def _rows_table(rows: list[str]) -> Html:
    """Label lines as table rows: a little spacing keeps descenders (``global_avgpool``) off the next line."""
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return Html(f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">{cells}</TABLE>')


def _muted(s: str) -> str:
    return f'<FONT POINT-SIZE="9" COLOR="{MUTED_TEXT}">{text(s)}</FONT>'


def _count(n: int) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return str(n)


# --- rendering --------------------------------------------------------------------------------------------------------
def render(dot_text: str, fmt: str, *, timeout: float = RENDER_TIMEOUT) -> bytes:
    """DOT text rendered by Graphviz's ``dot`` (``fmt="dot"`` returns the text itself)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "dot":
        return dot_text.encode()
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("Graphviz's `dot` program was not found on PATH; install Graphviz (e.g. `apt-get install "
                         "graphviz`, `brew install graphviz` or `conda install graphviz`) or write a .dot file")
    if fmt == "png":
        nodes = len(_NODE_STATEMENT.findall(dot_text))
        if nodes > MAX_PNG_NODES:
            raise UsageError(f"the diagram has {nodes:,} nodes, too many for a PNG; fold repeated blocks (fold), show "
                             "fewer levels (depth), or write SVG or PDF, which scale")
        width, height = layout_size(exe, dot_text, timeout)
        if max(width, height) > MAX_PNG_SIDE or width * height > MAX_PNG_PIXELS:
            raise UsageError(f"the PNG would be {width:,} x {height:,} pixels, too large to be useful; fold repeated "
                             "blocks (fold), show fewer levels (depth), or write SVG or PDF, which scale")
    return _run_dot(exe, [f"-T{fmt}", f"-Gdpi={PNG_DPI}"] if fmt == "png" else [f"-T{fmt}"], dot_text, timeout)


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
        raise UsageError(f"cannot tell the diagram format from {str(path)!r}; use a .svg, .png, .pdf or .dot name "
                         "or give the format")
    return SUFFIX_FORMATS[suffix]


def write_diagram(compiled: Compiled, path: str | os.PathLike[str], *, fmt: str | None = None,
                  depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                  force: bool = False, budget: LayoutBudget | None = DEFAULT_BUDGET,
                  on_note: Callable[[str], None] | None = None) -> Path:
    """Render the diagram and write it atomically; the format comes from the suffix unless given.

    ``budget`` applies to the formats Graphviz lays out (a .dot file is written whole). ``on_note`` receives the note
    saying what was collapsed to fit the budget; by default it is printed to stderr.
    """
    target = Path(path)
    fmt = fmt or format_for(target)
    check_target(target, force=force)  # before rendering, which can take a while
    dot_text, note = diagram_dot(compiled, depth=depth, fold=fold, direction=direction,
                                 budget=None if fmt == "dot" else budget)
    data = render(dot_text, fmt)
    if note:
        (on_note or print_note)(note)
    return write_atomic(target, data, force=force)


def print_note(note: str) -> None:
    print(f"archc: note: {note}", file=sys.stderr)
