"""Encoder-decoder networks drawn as the U they are.

A skip connection of an encoder-decoder joins two tensors of equal spatial size whose producers are far apart: every
path from the early one to the merge's other input goes down to a lower resolution and is scaled back up (U-Net's
contracting and expansive paths). When a graph has such a merge, every drawn node with a spatial output is ranked by
its resolution level (the largest maps on the first rank), so that encoder and decoder stages of equal resolution
share a rank and the skip edges run straight across; edges that go back up to a higher resolution are written
reversed (``dir=back``) so the layout keeps them upward. Found from shapes and edges only, never from layer names.
"""

from __future__ import annotations

import math

from archc.emit.diagram.view import Item, View
from archc.ir.graph import Graph, Node
from archc.ops.registry import get_op
from archc.text_escape import dot_quoted

MAX_LAYERS = 4_000
"""Beyond this the pair search (a walk between each merge's inputs) is skipped: the drawing keeps dot's ranks."""


def _spatial(n: Node) -> tuple[int, ...] | None:
    t = n.out_type
    if t is None or t.rank < 2 or not t.spatial:
        return None
    return tuple(t.spatial)


def skip_pairs(g: Graph) -> list[tuple[str, str]]:
    """(encoder layer, merge) for every merge input that skips a down-and-up detour of the merge's other input."""
    if len(g) > MAX_LAYERS:
        return []
    index = {n.name: i for i, n in enumerate(g.nodes())}
    pairs = []
    for m in g.nodes():
        op = get_op(m.op)
        srcs = g.input_names(m.name)
        if op is None or op.family != "merge" or len(srcs) < 2:
            continue
        for a in srcs:
            size = _spatial(g.node(a))
            if size is None:
                continue
            for b in srcs:
                if b != a and _spatial(g.node(b)) == size and _detours(g, a, b, math.prod(size), index):
                    pairs.append((a, m.name))
                    break
    return pairs


def _detours(g: Graph, a: str, b: str, area: int, index: dict[str, int]) -> bool:
    """``b`` comes from ``a`` by a detour through lower resolutions: it descends from ``a``, every path from ``a`` to
    it goes through a smaller map, and one of the layers between scales a map up (a transposed convolution, an
    upsample). A squeeze-and-excitation branch dips too, but the main path beside it keeps the resolution; a reshape
    back to a map (an attention mask, window attention's partition) is not a way up."""
    pred, succ = g.nx.pred, g.nx.succ
    between = {b}
    stack = [b]
    descends = False
    while stack:  # the layers on paths into b that are later than a: everything between them
        x = stack.pop()
        for p in pred[x]:
            if p == a:
                descends = True
            elif index[p] > index[a] and p not in between:
                between.add(p)
                stack.append(p)
    if not descends or not any(_scales_up(g, x) for x in between):
        return False
    seen = {a}
    stack = [a]
    while stack:  # forward from a through maps at least as large: reaching b means some path never went down
        x = stack.pop()
        for y in succ[x]:
            if y not in between or y in seen:
                continue
            if y == b:
                return False
            seen.add(y)
            size = _spatial(g.node(y))
            if size is not None and math.prod(size) >= area:
                stack.append(y)
    return True


def _scales_up(g: Graph, name: str) -> bool:
    """A convolution or resampling layer whose output map is larger than its input's."""
    n = g.node(name)
    op = get_op(n.op)
    srcs = g.input_names(name)
    if op is None or op.family not in ("conv", "pool") or not srcs:
        return False
    out, into = _spatial(n), _spatial(g.node(srcs[0]))
    return out is not None and into is not None and math.prod(out) > math.prod(into)


def item_levels(view: View) -> dict[str, int]:
    """Drawn item id -> resolution level (0 = the largest maps) when the graph is an encoder-decoder; empty when it
    is not, or for items without a spatial output."""
    g = view.g
    if not skip_pairs(g):
        return {}
    sizes: dict[str, tuple[int, ...]] = {}
    for item in view.items.values():
        size = _spatial(_representative(view, item))
        if size is not None:
            sizes[item.id] = size
    order = sorted(set(sizes.values()), key=lambda s: (-math.prod(s), s))
    level = {s: i for i, s in enumerate(order)}
    return {item_id: level[s] for item_id, s in sizes.items()}


def _representative(view: View, item: Item) -> Node:
    """The layer whose output a drawn node shows: the layer itself, or a group's last layer read outside it."""
    if item.node is not None:
        return item.node
    leaving = [n for n in item.members if n.name in view.leaving]
    return leaving[-1] if leaving else item.members[-1]


def rank_lines(levels: dict[str, int]) -> list[str]:
    """One ``rank=same`` statement per resolution level."""
    by_level: dict[int, list[str]] = {}
    for item_id, level in levels.items():
        by_level.setdefault(level, []).append(item_id)
    return [f"  {{rank=same; {' '.join(dot_quoted(i) + ';' for i in ids)}}}" for _, ids in sorted(by_level.items())]


def oriented(a: str, b: str, attrs: dict[str, str], levels: dict[str, int]) -> tuple[str, str, dict[str, str]]:
    """The edge ``a -> b`` as written: reversed with ``dir=back`` when it climbs to a higher resolution (the decoder
    going up), so that the ranking keeps the levels; its head label moves to the tail, which is now the head."""
    if a not in levels or b not in levels or levels[a] <= levels[b]:
        return a, b, attrs
    flipped = {("taillabel" if k == "headlabel" else k): v for k, v in attrs.items()}
    return b, a, {**flipped, "dir": "back"}
