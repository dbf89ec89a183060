"""References that did not resolve while lowering: remembered as they are met, explained once lowering is done as
unknown, defined later, or a cycle."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from archc.ir.graph import Graph
from archc.lower.names import NameTable
from archc.spec.report import DocPath, Reporter


@dataclass
class PendingRef:
    ref: str
    table: NameTable
    where: DocPath
    layer: str
    first_node: int
    """Graph size when the step began: nodes from here up to ``end_node`` belong to the step."""
    end_node: int | None = None
    """Graph size when the step ended (None: it has not ended, every later node counts)."""


def explain_pending(graph: Graph, report: Reporter, item: PendingRef) -> None:
    entry = item.table.lookup(item.ref)
    if entry is None or entry.node is None:
        line = report.doc.pos(item.where).line  # the names the step can take: those defined above it
        report.error("E201", f"unknown reference '{item.ref}'{item.table.suggest(item.ref, line)}", item.where,
                     item.layer)
        return
    target = entry.node
    g = graph.nx
    step_nodes = list(g.nodes)[item.first_node:item.end_node]
    for start in step_nodes:
        if start in g and target in g and nx.has_path(g, start, target):
            path = nx.shortest_path(g, start, target)
            cycle = " -> ".join([*path, start])
            report.error("E202", f"cycle: {cycle} ('{item.ref}' is computed from this step's own output)",
                         item.where, item.layer)
            return
    report.error("E201", f"'{item.ref}' is defined after this step; a step can take inputs only from steps above "
                         "it", item.where, item.layer)
