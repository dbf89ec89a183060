"""Left-to-right drawings of long networks wrap into rows, like text, so they stay readable on a page.

A left-to-right layout is as wide as the network is deep: GoogLeNet's 60-odd ranks drawn in one row are 98 x 7
inches, too thin to read at any page width. When the estimated width is well beyond a wide page, the top-level
sequence is cut at points where exactly one tensor flows between what comes before and what comes after (between
two inception modules, never inside one), into rows of about equal depth. When the whole network sits in one scope
(torchvision's ``features``), the cuts go between that scope's children and the scope is not drawn as a box. Every
other row runs right to left (its edges written reversed), so the drawing snakes and each turn is one short edge;
each row is an invisible cluster, so rows never interleave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archc.emit.diagram.view import View

RANK_INCHES = 1.6
"""Estimated width of one rank left to right: a node and the gap to the next."""
ROW_INCHES = 0.9
"""Estimated height of one node and the gap below it."""
TARGET_ASPECT = 2.5
"""Width over height the rows aim for."""
MAX_DISSOLVED = 2
"""Cuts may split clusters up to this nesting level (outermost first) when none between them fit."""
MIN_WRAP_INCHES = 24.0
"""Narrower drawings are left in one row."""
ROW_PREFIX = "row:"
"""The invisible cluster of a row (no scope path has a colon)."""


@dataclass
class Rows:
    row: dict[str, int] = field(default_factory=dict)
    """Drawn node -> its row (0 = the first); empty when the drawing is not wrapped."""
    dissolved: set[str] = field(default_factory=set)
    """Scopes a cut runs through (a network wrapped in one ``features`` scope): not drawn as clusters, since a row
    holds whole clusters."""

    def oriented(self, a: str, b: str, attrs: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        """The edge as written: into an odd row (from inside it or from the row before), reversed (``dir=back``)
        so the row runs right to left, below the end of the row before it, and the drawing snakes."""
        row = self.row.get(b)
        if row is None or row % 2 == 0:
            return a, b, attrs
        flipped = {("taillabel" if k == "headlabel" else k): v for k, v in attrs.items()}
        return b, a, {**flipped, "dir": "back"}


def wrap_rows(view: View, direction: str) -> Rows:
    """Where a left-to-right drawing starts new rows; no rows for other directions and for drawings that fit."""
    if direction not in ("LR", "RL"):
        return Rows()
    order = list(view.items)
    pos = {item_id: i for i, item_id in enumerate(order)}
    pairs = sorted({(view.rep[src], view.rep[dst]) for dst, srcs in view.g.nx.pred.items() for src in srcs
                    if view.rep[src] != view.rep[dst]}, key=lambda p: (pos[p[1]], pos[p[0]]))
    depth = dict.fromkeys(order, 0)
    for a, b in pairs:  # sorted by destination, and every source comes before its destination
        depth[b] = max(depth[b], depth[a] + 1)
    total = max(depth.values(), default=0) + 1
    breadth = max(_counts(depth).values(), default=1)
    width, height = total * RANK_INCHES, breadth * ROW_INCHES
    rows = round(math.sqrt(width / (TARGET_ASPECT * height))) if width > MIN_WRAP_INCHES else 1
    if rows < 2:
        return Rows()
    # the tensors crossing each boundary between consecutive items, by a difference array over each source's reach:
    # linear in the items however far an edge goes
    reach: dict[str, int] = {}
    for a, b in pairs:
        reach[a] = max(reach.get(a, 0), pos[b])
    count = [0] * (len(order) + 2)
    for a, last in reach.items():
        count[pos[a] + 1] += 1
        count[last + 1] -= 1
    single = []
    """Boundaries where a single tensor crosses."""
    crossing = 0
    for boundary in range(1, len(order)):
        crossing += count[boundary]
        if crossing == 1:
            single.append(boundary)
    chains = [view.g.scope_chain(view.items[item_id].cluster) for item_id in order]
    best_starts: list[int] = []
    for level in range(MAX_DISSOLVED + 1):
        # cuts that split no cluster nested deeper than `level`; the clusters they do split are not drawn
        candidates = [(b, depth[order[b]]) for b in single if _shared(chains[b - 1], chains[b]) <= level]
        starts = _choose(candidates, total, rows)
        if len(starts) > len(best_starts):
            best_starts = starts
        if len(starts) == rows - 1:
            break
    wrapped = Rows()
    for b in best_starts:
        wrapped.dissolved.update(chains[b][:_shared(chains[b - 1], chains[b])])
    row = 0
    for i, item_id in enumerate(order):
        while row < len(best_starts) and i >= best_starts[row]:
            row += 1
        wrapped.row[item_id] = row
    return wrapped


def _choose(candidates: list[tuple[int, int]], total: int, rows: int) -> list[int]:
    """The boundaries closest to the ``rows`` - 1 even cuts of the depth (none off by more than half a row, and no row
    shorter than half the average)."""
    starts: list[int] = []
    shortest = total / (2 * rows)
    previous = 0
    for k in range(1, rows):
        target = k * total / rows
        best = min(candidates, key=lambda c: abs(c[1] - target), default=None)
        if best is not None and abs(best[1] - target) < shortest and best[1] - previous >= shortest \
                and total - best[1] >= shortest and best[0] not in starts:
            starts.append(best[0])
            previous = best[1]
    return starts


def _shared(a: list[str], b: list[str]) -> int:
    """How many enclosing clusters two neighbouring items share (a cut between them splits those)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _counts(depth: dict[str, int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for d in depth.values():
        counts[d] = counts.get(d, 0) + 1
    return counts
