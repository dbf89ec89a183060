"""Warnings: specs that are valid but probably do not mean what they say.

Each rule reads the analysed graph and yields (node, code, message); the compiler locates them like errors, as
``file:line:col: CODE: layer.path: message``, and the command still succeeds (exit 0). A new warning is a new rule in
:data:`RULES` and a W-code in :mod:`archc.error_codes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from archc.errors import Diagnostic
from archc.ir.graph import Graph, Node
from archc.ops.registry import known_op

Finding = tuple[Node, str, str]
"""The node a warning is about, its code and its message."""


SPATIAL_FAMILIES = ("conv", "pool")
"""Ops whose output is a feature map: a `linear` reading one (through activations, norms, dropout and merges) was
meant for its features, not for its last axis."""
_SHAPE_KEEPING = ("act", "reg", "norm", "merge")


def linear_on_spatial(graph: Graph) -> Iterator[Finding]:
    """W301: a `linear` fed a feature map that still has spatial axes acts on the last one only (a forgotten
    `flatten`). A tensor arranged on purpose (`permute`, `reshape`, an embedding's sequence) is left alone."""
    for node in graph.nodes():
        if node.op != "linear" or node.out_type is None:
            continue
        sources = graph.inputs_of(node.name)
        t = sources[0].out_type if sources else None
        if t is None or t.rank < 3 or _producer_family(graph, sources[0]) not in SPATIAL_FAMILIES:
            continue
        yield node, "W301", (f"linear acts on the last axis only: on {t} from {sources[0].op} '{sources[0].name}' it "
                             f"maps {t.shape[-1]} values to {node.out_type.shape[-1]} and keeps the other axes, giving "
                             f"{node.out_type}; for a classifier put `flatten` before it (after `global_avgpool` for "
                             "one feature per channel)")


def _producer_family(graph: Graph, node: Node) -> str:
    """The family of the op that gave ``node``'s output its layout, looking through ops that keep it."""
    seen = 0
    while not node.is_input and known_op(node.op).family in _SHAPE_KEEPING and seen < 1000:
        sources = graph.inputs_of(node.name)
        if not sources:
            break
        node, seen = sources[0], seen + 1
    return "input" if node.is_input else known_op(node.op).family


RULES: list[Callable[[Graph], Iterator[Finding]]] = [linear_on_spatial]


def find_warnings(graph: Graph) -> list[Diagnostic]:
    """Every rule's findings, located at their nodes, in source order."""
    return [Diagnostic(code, message, graph.file, node.pos, node.name)
            for rule in RULES for node, code, message in rule(graph)]
