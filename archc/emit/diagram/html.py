"""The interactive viewer: one self-contained HTML file (scripts, styles and data inline, no network) in which scopes
fold and unfold on click, hovering a node shows its numbers and a search box finds a layer.

Every scope (stage, block, group...) is a *frame* laid out once by Graphviz on its own, its child scopes drawn as
single boxes; all frames go through one ``dot -Tplain`` run. The page composes the frames of whatever is unfolded:
an unfolded box grows to hold its frame's picture and the rest of its parent's picture is stretched around it (a
monotone stretch that never shrinks a distance, so nothing overlaps and every edge stays attached). Folding and
unfolding therefore cost no layout in the browser, and each layer is laid out once whatever is shown.

User text reaches the page only as JSON inside a ``<script type="application/json">`` element, escaped by
:func:`archc.text_escape.script_json`, and as ``<title>`` text through :func:`archc.text_escape.html_text`; the
script writes it into the drawing through its own escaper.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from archc.compiler import Compiled
from archc.emit.diagram.dot import check_direction
from archc.emit.diagram.dot_text import count_text, is_shortcut, shape_text
from archc.emit.diagram.fold import scope_caption
from archc.emit.diagram.graphviz import plain_layout
from archc.emit.diagram.style import (
    CLUSTER_BORDER,
    CLUSTER_FILLS,
    EDGE_ATTRS,
    EDGE_COLOR,
    FAMILY_STYLES,
    FONT,
    NODE_ATTRS,
    SHORTCUT_COLOR,
    family_style,
)
from archc.emit.diagram.view import DEFAULT_BUDGET, FOLD_THRESHOLD, LayoutBudget, plan_view, repeat_labels
from archc.errors import UsageError
from archc.io import check_target, write_atomic
from archc.ir.graph import Graph, Node
from archc.ops.base import Cost
from archc.ops.registry import get_op
from archc.text_escape import dot_html, dot_quoted, html_text, script_json
from archc.yaml_loader import collector_paused

POINTS_PER_INCH = 72.0
FRAME_ATTRS = {"nodesep": "0.25", "ranksep": "0.3", "pad": "0", "nslimit": "4", "nslimit1": "4",
               "mclimit": "0.6", "searchsize": "60"}
"""The static diagram's spacing and layout-time bounds (no title, no clusters: a frame is a flat graph)."""
PORT_ATTRS = {"shape": "point", "width": "0.07", "label": ""}

Key = tuple[str, str]
"""A frame's item: ("l", layer), ("s", child scope), ("i", outside layer read inside), ("o", inside layer read
outside)."""


@dataclass
class Frame:
    """One scope's own picture: its layers and child scopes in source order, ports, and the edges between them."""

    path: str
    items: dict[Key, int] = field(default_factory=dict)
    edges: dict[tuple[int, int], bool] = field(default_factory=dict)
    """(from, to) -> drawn dashed, as a skip connection."""

    def item(self, key: Key) -> int:
        return self.items.setdefault(key, len(self.items))

    def edge(self, a: Key, b: Key, shortcut: bool) -> None:
        """Several tensors may flow between two drawn items: the edge is dashed only when every one is a skip."""
        pair = (self.item(a), self.item(b))
        self.edges[pair] = self.edges.get(pair, True) and shortcut


def frames_of(g: Graph) -> dict[str, Frame]:
    """Every scope's frame (and the model's, ""), with the edges that cross scope borders split at each border into
    an edge to an ``o`` port inside the scope left and one from an ``i`` port inside the scope entered."""
    chains = {s: g.scope_chain(s) for s in {n.scope for n in g.nodes()}}
    frames: dict[str, Frame] = {"": Frame("")}

    def frame(path: str) -> Frame:
        return frames.get(path) or frames.setdefault(path, Frame(path))

    for n in g.nodes():
        parent = ""
        for path in chains[n.scope]:
            frame(parent).item(("s", path))
            parent = path
        frame(parent).item(("l", n.name))
    for n in g.nodes():
        into = chains[n.scope]
        for src in g.input_names(n.name):
            out_of = chains[g.node(src).scope]
            common = 0
            while common < min(len(into), len(out_of)) and into[common] == out_of[common]:
                common += 1
            shortcut = is_shortcut(g, src, n)  # the static diagram's dashed-edge rule
            frame(into[common - 1] if common else "").edge(_item(out_of, common, src), _item(into, common, n.name),
                                                           shortcut)
            for depth in range(common, len(out_of)):
                frames[out_of[depth]].edge(_item(out_of, depth + 1, src), ("o", src), shortcut)
            for depth in range(common, len(into)):
                frames[into[depth]].edge(("i", src), _item(into, depth + 1, n.name), shortcut)
    return frames


def _item(chain: list[str], depth: int, layer: str) -> Key:
    """What stands for ``layer`` (inside the scopes ``chain``) in the frame at nesting ``depth``."""
    return ("s", chain[depth]) if depth < len(chain) else ("l", layer)


class _Content:
    """The text rows of every item and the numbers the page shows on hover."""

    def __init__(self, c: Compiled) -> None:
        self.c = c
        self.g = c.graph
        self.fields = c.receptive_fields()
        self.repeats = repeat_labels(self.g)
        self.outputs: dict[str, list[str]] = {}
        for name, src in self.g.outputs.items():
            self.outputs.setdefault(src, []).append(name)
        self.leaving: dict[str, list[str]] = {}
        """Scope -> its layers read outside it, in source order."""

    def layer_rows(self, n: Node) -> list[list[str]]:
        if n.is_input:
            return [[n.name, "b"], ["input", ""], [shape_text(n.out_type), "m"]]
        op = get_op(n.op)
        detail = op.label(n.params, n.out_type) if op is not None and n.params is not None else ""
        rows = [] if n.local_name.isdigit() else [[n.local_name, "b"]]  # a generated name says nothing
        rows += [[n.op + (" " + detail if detail else ""), ""], [shape_text(n.out_type), "m"]]
        return rows + [["output" if o == "output" else f"output {o}", "i"] for o in self.outputs.get(n.name, [])]

    def scope_rows(self, path: str) -> list[list[str]]:
        scope = self.g.scopes[path]
        out = self._out_node(path)
        params = self.c.costs.by_scope[path].params if path in self.c.costs.by_scope else 0
        return [[path.rsplit(".", 1)[-1], "b"], [self.repeats.get(path) or scope_caption(scope), ""],
                [shape_text(out.out_type) if out else "?", "m"], [f"{count_text(params)} params", "m"]]

    def _out_node(self, path: str) -> Node | None:
        names = self.leaving.get(path)
        return self.g.node(names[-1]) if names else None

    def layer_facts(self, n: Node) -> list[Any]:
        """[scope, op, parameters, output shape, params, MACs, receptive field, family, model outputs it is]: a
        list, not an object, since the page holds one per layer."""
        cost: Cost = n.meta.get("cost", Cost())
        rf = self.fields.get(n.name)
        op = get_op(n.op)
        family = "input" if n.is_input else (op.family if op is not None else "")
        return [n.scope, n.op, param_text(n.params), str(n.out_type) if n.out_type else "?", cost.params, cost.macs,
                str(rf) if rf else "-", family, self.outputs.get(n.name, [])]

    def scope_facts(self, path: str) -> list[Any]:
        """[parent scope, kind, block or caption, layers, params, MACs, output shape, receptive field]."""
        scope = self.g.scopes[path]
        chain = self.g.scope_chain(path)
        totals = self.c.costs.by_scope.get(path)
        out = self._out_node(path)
        rf = self.fields.get(out.name) if out else None
        return [chain[-2] if len(chain) > 1 else "", scope.kind, self.repeats.get(path) or scope_caption(scope),
                totals.layers if totals else 0, totals.params if totals else 0, totals.macs if totals else 0,
                str(out.out_type) if out and out.out_type else "?", str(rf) if rf else "-"]


def param_text(params: Any) -> str:
    """The op's parameters that differ from their defaults, as ``out=64, k=3, p=1`` (the IR's text form)."""
    if params is None or not hasattr(type(params), "model_fields"):
        return ""
    fields = type(params).model_fields
    return ", ".join(f"{name}={getattr(params, name)!r}" for name, info in fields.items()
                     if info.is_required() or getattr(params, name) != info.get_default(call_default_factory=True))


def _label(rows: list[list[str]]) -> str:
    """An HTML-like label like the row the page draws (bold, muted), so Graphviz sizes the box for that text."""
    parts = []
    for text, style in rows:
        t = dot_html(text)
        parts.append(f"<B>{t}</B>" if style == "b" else f'<FONT POINT-SIZE="9">{t}</FONT>' if style == "m"
                     else f"<I>{t}</I>" if style == "i" else t)
    return "<" + "<BR/>".join(parts) + ">"


def _frame_dot(index: int, frame: Frame, rows: dict[Key, list[list[str]]], direction: str) -> str:
    attrs = {**FRAME_ATTRS, "rankdir": direction}
    lines = [f"digraph f{index} {{", *(f"  {k}={dot_quoted(v)};" for k, v in attrs.items()),
             "  node [" + ", ".join(f"{k}={dot_quoted(v)}" for k, v in NODE_ATTRS.items()) + "];",
             "  edge [" + ", ".join(f"{k}={dot_quoted(v)}" for k, v in EDGE_ATTRS.items()) + "];"]
    ports: dict[str, list[str]] = {"i": [], "o": []}
    for key, i in frame.items.items():
        if key[0] in ports:
            lines.append(f"  n{i} [" + ", ".join(f"{k}={dot_quoted(v)}" for k, v in PORT_ATTRS.items()) + "];")
            ports[key[0]].append(f"n{i}")
        else:
            lines.append(f"  n{i} [label={_label(rows[key])}];")
    for kind, rank in (("i", "source"), ("o", "sink")):
        if ports[kind]:
            lines.append(f"  {{rank={rank}; {'; '.join(ports[kind])};}}")
    lines += [f"  n{a} -> n{b};" for a, b in frame.edges]
    return "\n".join([*lines, "}"])


Layout = tuple[dict[str, list[float]], dict[tuple[str, str], list[float]]]


def _parse_plain(text: str, count: int) -> list[Layout]:
    """Per graph of a ``dot -Tplain`` run: node boxes (x, y, w, h in points, y downward) by name, and each edge's
    spline points (x, y, x, y...) by its ends' names (a frame has one edge per pair)."""
    graphs: list[Layout] = []
    height = 0.0
    nodes: dict[str, list[float]] = {}
    edges: dict[tuple[str, str], list[float]] = {}
    for line in text.split("\n"):  # not splitlines(): a label may hold U+2028
        head, _, rest = line.partition(" ")
        if head == "graph":
            height = float(rest.split()[2]) * POINTS_PER_INCH
            nodes, edges = {}, {}
        elif head == "node":
            name, x, y, w, h = rest.split(" ", 5)[:5]
            nodes[name] = [_pt(x), round(height - _pt(y), 1), _pt(w), _pt(h)]
        elif head == "edge":
            fields = rest.split(" ")
            pts = [_pt(v) for v in fields[3:3 + 2 * int(fields[2])]]
            edges[(fields[0], fields[1])] = [v if i % 2 == 0 else round(height - v, 1) for i, v in enumerate(pts)]
        elif head == "stop":
            graphs.append((nodes, edges))
    if len(graphs) != count:
        raise UsageError(f"unexpected output from Graphviz: {count} layouts asked for, {len(graphs)} returned")
    return graphs


def _pt(inches: str) -> float:
    return round(float(inches) * POINTS_PER_INCH, 1)


@dataclass
class ViewerPlan:
    """The page's content before the layout: its data but the frames' coordinates, and the DOT text of the frames."""

    data: dict[str, Any]
    frames: list[Frame]
    rows: dict[Key, list[list[str]]]
    dot_text: str

    def fingerprint(self) -> str:
        """SHA-256 of what the page is made from (the DOT text, the data, the page's code), not of Graphviz's
        layout: the same for the same spec and archc whatever the Graphviz version."""
        digest = hashlib.sha256(self.dot_text.encode())
        digest.update(script_json(self.data).encode())
        for name in ASSETS:
            digest.update(_asset(name).encode())
        return digest.hexdigest()

    def laid_out(self) -> dict[str, Any]:
        """The data with every frame laid out (one ``dot -Tplain`` run)."""
        layouts = _parse_plain(plain_layout(self.dot_text), len(self.frames))
        laid: dict[str, Any] = {}
        for f, (boxes, splines) in zip(self.frames, layouts):
            items = [[key[0], key[1], *boxes[f"n{i}"], self.rows.get(key, [])] for key, i in f.items.items()]
            edges = [[a, b, int(shortcut), splines[(f"n{a}", f"n{b}")]] for (a, b), shortcut in f.edges.items()]
            laid[f.path] = {"items": items, "edges": edges}
        return {**self.data, "frames": laid}


def plan_viewer(c: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                budget: LayoutBudget = DEFAULT_BUDGET) -> ViewerPlan:
    """Everything the page shows but the layout: each item's rows, each layer's and scope's numbers, and which
    scopes start folded (the static diagram's folding for the same options)."""
    check_direction(direction)
    g = c.graph
    with collector_paused():
        frames = frames_of(g)
        root = frames[""]
        if len(root.items) > budget.nodes or len(root.edges) > budget.edges:
            raise UsageError(f"the top level holds {len(root.items):,} nodes and {len(root.edges):,} edges, more "
                             f"than Graphviz lays out in reasonable time ({budget.nodes:,} nodes, {budget.edges:,} "
                             "edges); group its steps into `group`s or `stage`s")
        # a scope too large to lay out stays folded (sealed); what is inside it needs no layout either
        sealed = {path: [len(f.items), len(f.edges)] for path, f in frames.items()
                  if len(f.items) > budget.nodes or len(f.edges) > budget.edges}
        hidden = {p for p in frames if any(s in sealed for s in g.scope_chain(p)[:-1])}
        content = _Content(c)
        for f in frames.values():
            if f.path:
                content.leaving[f.path] = [key[1] for key in f.items if key[0] == "o"]
        ordered = [f for path, f in frames.items() if path not in sealed and path not in hidden]
        rows: dict[Key, list[list[str]]] = {}
        for f in ordered:
            for key in f.items:
                if key[0] == "l":
                    rows[key] = content.layer_rows(g.node(key[1]))
                elif key[0] == "s":
                    rows[key] = content.scope_rows(key[1])
        dot_text = "\n".join(_frame_dot(i, f, rows, direction) for i, f in enumerate(ordered)) + "\n"
        # the static drawing's folding; its layout budget only shapes the default (the viewer lays out per scope)
        explicit = depth is not None or fold is not None
        view = plan_view(g, depth=depth, fold=fold, budget=None if explicit else budget)
        folding = fold if fold is not None else depth is None and len(g) > FOLD_THRESHOLD
        folded = {item.scope for item in view.items.values() if item.scope}
        if folding:
            folded |= set(content.repeats)
        # unfolding a folded scope shows one level more: what is inside it starts folded
        folded |= {p for p in g.scopes if any(s in folded for s in g.scope_chain(p)[:-1])}
        t = c.costs.total
        data = {
            "name": g.name,
            "doc": " ".join(g.doc.split()),
            "inputs": ", ".join(f"{n} {shape_text(g.node(n).out_type)}" for n in g.inputs),
            "facts": f"{count_text(t.params)} params · {count_text(t.macs)} MACs · {t.layers:,} layers",
            "direction": direction,
            "note": view.note,
            "styles": {fam: [s.fill, s.border, s.legend] for fam, s in FAMILY_STYLES.items()},
            "other": [family_style("").fill, family_style("").border],
            "shortcut": SHORTCUT_COLOR,
            "edge": EDGE_COLOR,
            "frame": list(CLUSTER_FILLS),
            "frameBorder": CLUSTER_BORDER,
            "font": FONT,
            "layers": {n.name: content.layer_facts(n) for n in g.nodes()},
            "scopes": {p: content.scope_facts(p) for p in g.scopes if p in frames},
            "folded": sorted((folded | set(sealed) | hidden) & set(frames)),
            "sealed": sealed,
            "budget": [budget.nodes, budget.edges],
        }
        return ViewerPlan(data, ordered, rows, dot_text)


def viewer_data(c: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                budget: LayoutBudget = DEFAULT_BUDGET) -> dict[str, Any]:
    """Everything the page draws and shows (:func:`plan_viewer`), the frames laid out."""
    return plan_viewer(c, depth=depth, fold=fold, direction=direction, budget=budget).laid_out()


ASSETS = ("viewer.css", "viewer_body.html", "viewer.js")
"""The page's style, markup and script, shipped beside this module."""


def _asset(name: str) -> str:
    return resources.files("archc.emit.diagram").joinpath(name).read_text(encoding="utf-8")


def viewer_html(c: Compiled, *, depth: int | None = None, fold: bool | None = None, direction: str = "TB",
                budget: LayoutBudget = DEFAULT_BUDGET) -> str:
    """The viewer page for ``c``: deterministic, self-contained, loading nothing from anywhere."""
    data = viewer_data(c, depth=depth, fold=fold, direction=direction, budget=budget)
    # the policy forbids every fetch: the page works from the file alone, offline, and cannot leak a request
    policy = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html_text(c.graph.name)} · archc</title>\n<style>\n{_asset('viewer.css')}</style>\n</head>\n"
            f"<body>\n{_asset('viewer_body.html')}"
            f'<script type="application/json" id="archc-data">{script_json(data)}</script>\n'
            f"<script>\n{_asset('viewer.js')}</script>\n</body>\n</html>\n")


VIEWER_SUFFIXES = (".html", ".htm")


def wants_viewer(path: str | os.PathLike[str], fmt: str | None) -> bool:
    """The drawing asked for is the interactive page: ``--format html``, or an .html name and no format."""
    return fmt == "html" if fmt is not None else Path(path).suffix.lower() in VIEWER_SUFFIXES


def write_viewer(c: Compiled, path: str | os.PathLike[str], *, depth: int | None = None, fold: bool | None = None,
                 direction: str = "TB", force: bool = False) -> Path:
    """Write :func:`viewer_html` atomically."""
    check_target(path, force=force)  # before the layout, which takes a while
    return write_atomic(path, viewer_html(c, depth=depth, fold=fold, direction=direction).encode(), force=force)
