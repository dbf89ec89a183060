"""The diagram's look: colours per op family, fonts, edge styles and the Graphviz attributes that bound layout time.

Colours follow the classic GoogLeNet figure where it has one (convolutions blue, pooling red, the softmax head
yellow, concatenation green); the other families get their own light fills so black text stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass

FONT = "Helvetica,Arial,sans-serif"


@dataclass(frozen=True)
class FamilyStyle:
    fill: str
    border: str
    legend: str


FAMILY_STYLES: dict[str, FamilyStyle] = {
    "input": FamilyStyle("#ffffff", "#222222", "input"),
    "conv": FamilyStyle("#a9c9f2", "#2a5fa8", "convolution"),
    "pool": FamilyStyle("#f4a7a3", "#b3322b", "pooling"),
    "norm": FamilyStyle("#d9ccf2", "#6a4fa3", "normalisation"),
    "act": FamilyStyle("#ffdcb0", "#c2731d", "activation"),
    "linear": FamilyStyle("#f5c2df", "#a8437c", "fully connected"),
    "merge": FamilyStyle("#b7e2a8", "#3f8a2e", "merge (add / concat / mul)"),
    "reg": FamilyStyle("#e3e8ee", "#6b7785", "regularisation"),
    "tensor": FamilyStyle("#e6e6e6", "#777777", "tensor plumbing"),
    "head": FamilyStyle("#fbe48f", "#b08d0e", "classifier head (softmax)"),
    "block": FamilyStyle("#f3f3f3", "#333333", "folded block / scope"),
}
"""Family -> style, in legend order. ``input`` and ``block`` are the diagram's own (model inputs, folded scopes)."""

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
