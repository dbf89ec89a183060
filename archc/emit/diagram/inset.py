"""Block insets: a folded stage says ``bottleneck x 3`` but not what a bottleneck is, so the drawing shows each folded
block's body once, as a cluster beside the main path, captioned with the block's name and the nodes that use it.

A block is folded in a stage of repeated blocks (``bottleneck x 3``) or, with ``depth``, as one collapsed instance
(``inception``). The body drawn is the instance with the most layers (the first of those), which shows every optional
part (an expansion layer, a projection shortcut); the caption names it, since instances may differ in width, stride
or shortcut. What enters the block from
outside comes from one ``in`` node; what leaves it goes to one ``out`` node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.emit.diagram.dot_text import Html, attr_list, edge_line, is_shortcut, rows_table, value
from archc.emit.diagram.figure import FigureOptions
from archc.emit.diagram.view import SCOPE_PREFIX, View
from archc.ir.graph import Graph, Node
from archc.ops.registry import get_op
from archc.text_escape import dot_html, dot_quoted

MAX_INSET_LAYERS = 40
"""A block body with more layers than this is not drawn as an inset: it would outweigh the figure it explains."""
INSET_PREFIX = "inset:"
MAX_LISTED_USES = 5


@dataclass
class Inset:
    block: str
    """The block's name (``bottleneck``), as the folded nodes say it."""
    instance: str
    """The scope path of the instance drawn (``layer1.0``)."""
    uses: list[str] = field(default_factory=list)
    """The folded stages made of this block, in drawing order."""
    layers: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(from id, to id, source layer, destination layer) between inset nodes; the ``in`` and ``out`` nodes stand
    for the layers outside (the source of an ``in`` edge is the outside layer, the destination of an ``out`` edge
    is "")."""

    @property
    def id(self) -> str:
        return INSET_PREFIX + self.instance

    @property
    def in_id(self) -> str:
        return self.id + ":in"

    @property
    def out_id(self) -> str:
        return self.id + ":out"

    def node_id(self, layer: str) -> str:
        return self.id + ":" + layer


def plan_insets(view: View) -> list[Inset]:
    """One inset per block drawn folded, in the order of its first use, drawing the fullest instance."""
    g = view.g
    children: dict[str, list[str]] = {}
    for path in g.scopes:
        chain = g.scope_chain(path)
        if len(chain) >= 2:
            children.setdefault(chain[-2], []).append(path)
    by_block: dict[str, Inset] = {}
    candidates: dict[str, list[str]] = {}
    for item in view.items.values():
        if not item.scope:
            continue
        scope = g.scopes[item.scope]
        if item.scope in view.repeats:  # a stage of repeated blocks: its blocks are the candidates
            block = view.repeats[item.scope].rsplit(" x ", 1)[0]
            instances = view.runs.get(item.scope) or children.get(item.scope, [])  # a run: its own instances
        elif scope.kind == "block" and scope.label:  # one block instance collapsed at the depth level
            block, instances = scope.label, [item.scope]
        else:
            continue
        if not instances:
            continue
        by_block.setdefault(block, Inset(block, instances[0])).uses.append(item.scope)
        candidates.setdefault(block, []).extend(instances)
    sizes = _layer_counts(g)
    out = []
    for block, inset in by_block.items():
        # the instance with the most layers shows every optional part (an expansion, a projection shortcut); the
        # first of those, so that the choice is stable
        inset.instance = max(candidates[block], key=lambda path: sizes.get(path, 0))
        inset.layers = [n for n in g.nodes() if _inside(g, n, inset.instance)]
        if 0 < len(inset.layers) <= MAX_INSET_LAYERS:
            inset.edges = _edges(g, inset)
            out.append(inset)
    return out


def _layer_counts(g: Graph) -> dict[str, int]:
    """Scope path -> the layers inside it (at any depth)."""
    counts: dict[str, int] = {}
    chains: dict[str, list[str]] = {}
    for n in g.nodes():
        if n.scope not in chains:
            chains[n.scope] = g.scope_chain(n.scope)
        for path in chains[n.scope]:
            counts[path] = counts.get(path, 0) + 1
    return counts


def _inside(g: Graph, n: Node, scope: str) -> bool:
    return n.scope == scope or n.scope.startswith(scope + ".")


def _edges(g: Graph, inset: Inset) -> list[tuple[str, str, str, str]]:
    names = {n.name for n in inset.layers}
    edges: list[tuple[str, str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for n in inset.layers:
        for src in g.input_names(n.name):
            pair = (inset.node_id(src) if src in names else inset.in_id, inset.node_id(n.name))
            if pair not in seen:
                seen.add(pair)
                edges.append((*pair, src, n.name))
        if any(user not in names for user in g.users(n.name)) or n.name in g.outputs.values():
            edges.append((inset.node_id(n.name), inset.out_id, n.name, ""))
    return edges


@dataclass
class InsetDot:
    """An inset as DOT: its cluster and rank statements (body lines) and its edges."""

    lines: list[str]
    edges: list[str]
    families: set[str]
    has_shortcut: bool


def inset_dot(g: Graph, inset: Inset, options: FigureOptions) -> InsetDot:
    """The inset's cluster, level with its first use and tied to it by a dotted line."""
    palette = options.colours
    uses = ", ".join(inset.uses) if len(inset.uses) <= MAX_LISTED_USES else \
        f"{', '.join(inset.uses[:MAX_LISTED_USES - 1])} … ({len(inset.uses)} in all)"
    caption = (f"<B>{dot_html(inset.block)}</B> = "
               f'<FONT COLOR="{palette.muted}">{dot_html(f"(as {inset.instance}; used in {uses})")}</FONT>')
    lines = [f"  subgraph {dot_quoted('cluster_' + inset.id)} {{"]
    attrs = {"label": Html(caption), "style": "rounded,dashed,filled", "fillcolor": "#ffffff",
             "color": palette.cluster_border, "fontsize": options.size(10), "labeljust": "l", "margin": "8"}
    lines += [f"    {k}={value(v)};" for k, v in attrs.items()]
    terminal = {"shape": "plaintext", "style": "", "fontcolor": palette.muted, "height": "0.2"}
    lines.append(f"    {dot_quoted(inset.in_id)} {attr_list({**terminal, 'label': 'in'})};")
    families: set[str] = set()
    for n in inset.layers:
        op = get_op(n.op)
        family = op.family if op is not None else ""
        families.add(family)
        detail = op.label(n.params, n.out_type) if op is not None and n.params is not None else ""
        name = n.local_name if not n.local_name.isdigit() else n.scope[len(inset.instance) + 1:]
        rows = [f"<B>{dot_html(name)}</B>"] if name else []  # a numbered step is named by its scope, if any
        rows.append(dot_html(n.op + (" " + detail if detail else "")))
        style = palette.family(family)
        node_attrs = {"label": rows_table(rows), "fillcolor": style.fill, "color": style.border}
        lines.append(f"    {dot_quoted(inset.node_id(n.name))} {attr_list(node_attrs)};")
    lines.append(f"    {dot_quoted(inset.out_id)} {attr_list({**terminal, 'label': 'out'})};")
    lines.append("  }")
    first_use = SCOPE_PREFIX + inset.uses[0]
    lines.append(f"  {{rank=same; {dot_quoted(first_use)}; {dot_quoted(inset.in_id)};}}")
    edges = [edge_line(first_use, inset.in_id, {"style": "dotted", "arrowhead": "none", "constraint": "false",
                                                 "color": palette.cluster_border})]
    has_shortcut = False
    for a, b, src, dst in inset.edges:
        edge_attrs: dict[str, str] = {}
        if dst and is_shortcut(g, src, g.node(dst)):
            has_shortcut = True
            edge_attrs.update(style="dashed", color=palette.shortcut, penwidth="1.2")
        edges.append(edge_line(a, b, edge_attrs))
    return InsetDot(lines, edges, families, has_shortcut)
