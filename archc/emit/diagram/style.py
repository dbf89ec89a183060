"""The diagram's look: colours per op family (defined with the families in :mod:`archc.ops.families`), fonts, edge
styles and the Graphviz attributes that bound layout time.
"""

from __future__ import annotations

from archc.ops.families import FAMILIES, FamilyStyle

FONT = "Helvetica,Arial,sans-serif"

FAMILY_STYLES: dict[str, FamilyStyle] = {
    "input": FamilyStyle("#ffffff", "#222222", "input"),
    **{f.key: f.style for f in sorted(FAMILIES, key=lambda f: f.legend_rank)},
    "block": FamilyStyle("#f3f3f3", "#333333", "folded block / scope"),
}
"""Family -> style, in legend order: the op families' (:data:`archc.ops.families.FAMILIES`) between the diagram's own
``input`` (model inputs) and ``block`` (folded scopes)."""

UNKNOWN_FAMILY = FamilyStyle("#ffffff", "#999999", "other")

SHORTCUT_COLOR = "#d9480f"
EDGE_COLOR = "#555555"
MUTED_TEXT = "#555555"

CLUSTER_FILLS = ("#f4f6f9", "#ffffff")
"""Cluster background by nesting depth (alternating), so nested scopes stay distinguishable."""
CLUSTER_BORDER = "#9aa4b1"

GRAPH_ATTRS: dict[str, str] = {
    "fontname": FONT,
    "fontsize": "12",
    "labelloc": "t",
    "labeljust": "l",
    "newrank": "true",
    "compound": "true",
    "nodesep": "0.25",
    "ranksep": "0.3",
    "pad": "0.2",
    # bound the network-simplex and crossing-minimisation passes, which dominate layout time on large graphs
    "nslimit": "4",
    "nslimit1": "4",
    "mclimit": "0.6",
    "searchsize": "60",
}
NODE_ATTRS: dict[str, str] = {
    "shape": "box",
    "style": "rounded,filled",
    "fontname": FONT,
    "fontsize": "10",
    "margin": "0.06,0.03",
    "height": "0.3",
    "penwidth": "1",
}
EDGE_ATTRS: dict[str, str] = {
    "color": EDGE_COLOR,
    "arrowsize": "0.6",
    "penwidth": "0.9",
    "fontname": FONT,
    "fontsize": "8",
}


def family_style(family: str) -> FamilyStyle:
    return FAMILY_STYLES.get(family, UNKNOWN_FAMILY)
