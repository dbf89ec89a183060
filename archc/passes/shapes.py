"""Static shape inference: each op's shape rule applied in data-flow order.

Lowering infers each node as it adds it (:func:`infer_node`, with the budgets checked on the way); :func:`infer_at`
re-runs the same rules over a finished graph at other input sizes (archc/passes/input_sizes.py).
"""

from __future__ import annotations

from archc.errors import Problem
from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType
from archc.limits import Limits
from archc.ops.registry import get_op, known_op
from archc.ops.tensor_state import batch_free


def infer_node(graph: Graph, node: Node, limits: Limits) -> None:
    """Set ``node.out_type`` from its inputs' types; raises :class:`Problem` for a user error.

    Nodes with an untyped input (an earlier error) stay untyped without a new error, so one mistake is reported once.
    """
    op = get_op(node.op)
    if op is None:
        raise Problem("E104", f"unknown op {node.op!r}")
    sources = graph.input_names(node.name)
    types = [graph.node(s).out_type for s in sources]
    if any(t is None for t in types):
        return
    n = len(types)
    if n < op.min_inputs or (op.max_inputs is not None and n > op.max_inputs):
        want = f"{op.min_inputs}" if op.max_inputs == op.min_inputs else (
            f"at least {op.min_inputs}" if op.max_inputs is None else f"{op.min_inputs} to {op.max_inputs}")
        raise Problem("E204", f"{node.op} takes {want} input{'s' if want != '1' else ''}, found {n}"
                              f"{_provenance(graph, sources, types, '')}")
    loose = [s for s in sources if op.held_inputs and not batch_free(graph.node(s).op, graph.node(s).params)]
    if loose:
        raise Problem("E305", f"{node.op} reads tensors the model holds (`parameter` steps without `batch_axis`, "
                              "`buffer` steps); found " + ", ".join(
                                  f"{graph.node(s).out_type} from {_origin(graph, s)}" for s in loose))
    try:
        out = op.infer(node.params, types)  # type: ignore[arg-type]
    except Problem as problem:
        raise Problem(problem.code, problem.message + _provenance(graph, sources, types, problem.message)) from None
    check_tensor_budget(out.shape, limits)
    node.out_type = out


def _provenance(graph: Graph, sources: list[str], types: list[TensorType], message: str) -> str:
    """Which layers the inputs come from, with their shapes unless the message already shows them."""
    def origin(src: str) -> str:
        return _origin(graph, src)

    if not sources:  # a tensor the model holds
        return ""
    plural = "s" if len(sources) > 1 else ""
    if len(sources) <= 2 and message and all(str(t) in message for t in types):
        return f" (input{plural} from {', '.join(origin(s) for s in sources)})"
    return f" (input{plural}: {', '.join(f'{t} from {origin(s)}' for s, t in zip(sources, types, strict=True))})"


def _origin(graph: Graph, src: str) -> str:
    producer = graph.node(src)
    return f"{'input' if producer.is_input else producer.op} '{src}'"


def check_tensor_budget(shape: tuple[int, ...], limits: Limits) -> None:
    if any(d < 1 for d in shape):
        raise Problem("E306", f"the output would have an empty dimension: {list(shape)}")
    if any(d > limits.max_dim for d in shape):
        raise Problem("E501", f"output shape {list(shape)} has a dimension above {limits.max_dim} (limit max_dim)")
    numel = 1
    for d in shape:
        numel *= d
    if numel > limits.max_tensor_elements:
        raise Problem("E501", f"output shape {list(shape)} has {numel:,} elements per sample, more than "
                              f"{limits.max_tensor_elements:,} (limit max_tensor_elements)")


def infer_at(graph: Graph, inputs: dict[str, TensorType]) -> dict[str, TensorType]:
    """Every node's type for other input types (the graph's own types stay as they are), by the same shape rules;
    raises :class:`Problem` naming the layer that refuses them."""
    types: dict[str, TensorType] = {}
    for node in graph.topological():
        if node.is_input:
            types[node.name] = inputs[node.name]
            continue
        try:
            types[node.name] = known_op(node.op).infer(node.params, [types[s] for s in graph.input_names(node.name)])
        except Problem as problem:
            raise Problem(problem.code, f"layer {node.name}: {problem.message}") from None
    return types
