"""Explaining references that did not resolve while lowering: unknown, defined later, or a cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from archc.lower.lowerer import Lowerer, PendingRef


def explain_pending(lowerer: Lowerer, item: PendingRef) -> None:
    report = lowerer.report
    entry = item.table.lookup(item.ref)
    if entry is None or entry.node is None:
        line = report.doc.pos(item.where).line  # the names the step can take: those defined above it
        report.error("E201", f"unknown reference '{item.ref}'{item.table.suggest(item.ref, line)}", item.where,
                     item.layer)
        return
    target = entry.node
    graph = lowerer.graph.nx
    step_nodes = list(graph.nodes)[item.first_node:item.end_node]
    for start in step_nodes:
        if start in graph and target in graph and nx.has_path(graph, start, target):
            path = nx.shortest_path(graph, start, target)
            cycle = " -> ".join([*path, start])
            report.error("E202", f"cycle: {cycle} ('{item.ref}' is computed from this step's own output)",
                         item.where, item.layer)
            return
    report.error("E201", f"'{item.ref}' is defined after this step; a step can take inputs only from steps above "
                         "it", item.where, item.layer)
