"""Cost analysis without torch: parameters, buffers, MACs, element-wise work and activation memory per layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.errors import Problem
from archc.ir.graph import Graph, NodeFailure
from archc.limits import Limits
from archc.ops.base import Cost
from archc.ops.registry import known_op


@dataclass
class Totals:
    params: int = 0
    buffers: int = 0
    macs: int = 0
    elementwise: int = 0
    activation_bytes: int = 0
    layers: int = 0

    def add(self, cost: Cost, activation_bytes: int) -> None:
        self.params += cost.params
        self.buffers += cost.buffers
        self.macs += cost.macs
        self.elementwise += cost.elementwise
        self.activation_bytes += activation_bytes
        self.layers += 1


@dataclass
class CostReport:
    total: Totals = field(default_factory=Totals)
    by_scope: dict[str, Totals] = field(default_factory=dict)


def analyse_costs(graph: Graph) -> CostReport:
    """Store each node's :class:`Cost` in ``node.meta["cost"]``; sum per scope (every enclosing one) and in total."""
    report = CostReport()
    chains: dict[str, list[Totals]] = {}  # scope -> the totals of it and every scope enclosing it
    # a cost depends on the op, its parameters and the types only, and networks repeat a few layer configurations
    # thousands of times: each is costed once (lowering shares one parameter model between equal layers)
    seen: dict[tuple[Any, ...], tuple[Any, Cost]] = {}
    for node in graph.nodes():
        if node.is_input or node.out_type is None:
            continue
        ins = [t for t in (p.out_type for p in graph.inputs_of(node.name)) if t is not None]
        key = (node.op, id(node.params), node.out_type, *ins)
        known = seen.get(key)
        if known is not None:
            cost = known[1]
        else:
            try:
                cost = known_op(node.op).cost(node.params, ins, node.out_type)
            except Exception as exc:  # a bug in the op's cost rule: name the layer it failed on
                raise NodeFailure(node.name, f"{node.op} cost: {type(exc).__name__}: {exc}") from exc
            seen[key] = (node.params, cost)  # holding the parameters keeps their id from being reused
        node.meta["cost"] = cost
        nbytes = node.out_type.nbytes
        report.total.add(cost, nbytes)
        chain = chains.get(node.scope)
        if chain is None:
            chain = [report.by_scope.setdefault(s, Totals()) for s in graph.scope_chain(node.scope)]
            chains[node.scope] = chain
        for totals in chain:
            totals.add(cost, nbytes)
    return report


def check_budgets(report: CostReport, limits: Limits) -> None:
    t = report.total
    if t.params + t.buffers > limits.max_params:
        raise Problem("E501", f"the model has {t.params + t.buffers:,} parameters and buffers, more than "
                              f"{limits.max_params:,} (limit max_params)")
    if t.activation_bytes > limits.max_activation_bytes:
        raise Problem("E501", f"layer outputs take {t.activation_bytes:,} bytes per sample, more than "
                              f"{limits.max_activation_bytes:,} (limit max_activation_bytes)")
