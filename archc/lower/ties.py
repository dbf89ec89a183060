"""`tie:`: a layer sharing the weight of a layer above it (GPT-2's output head and its token embedding).

The reference is resolved as `from:` resolves one, then stored as the owner's layer path, so the emitters need no
name table: the cost counts the weight once (at its owner), the PyTorch module assigns the owner's parameter to the
tied layer (both state_dict keys, one tensor, as PyTorch ties modules), and ONNX holds one initializer.
"""

from __future__ import annotations

from archc.ir.graph import Node
from archc.ir.types import TensorType
from archc.lower.context import Ctx, Lowering, Source
from archc.ops.base import OpParams
from archc.ops.linear import shared_weight_shape
from archc.spec.report import DocPath


def tie_weight(lowerer: Lowering, params: OpParams, where: DocPath, ctx: Ctx, inputs: list[Source],
               layer: str) -> OpParams | None:
    """``params`` with `tie` naming the owner's layer path, or None after reporting why the weight cannot be shared;
    the parameters as they are when an earlier error left the owner or the input untyped."""
    ref = str(getattr(params, "tie", ""))
    at = (*where, "tie")
    entry = ctx.table.lookup(ref)
    if entry is None or entry.excluded:
        why = "is switched off by its `if:`" if entry is not None else f"names no step above{ctx.table.suggest(ref)}"
        lowerer.report.error("E201", f"'tie': '{ref}' {why}", at, layer)
        return None
    if entry.node is None:
        return params  # an earlier error: the owner is not there to compare with
    owner = _owner(lowerer, lowerer.graph.node(entry.node))
    own_input = lowerer.graph.node(inputs[0]).out_type if inputs and inputs[0] is not None else None
    theirs = shared_weight_shape(owner.op, owner.params, _input_type(lowerer, owner))
    if theirs is None:
        lowerer.report.error("E307", f"'tie': '{ref}' is a {owner.op} layer, which has no weight to share; tie to an "
                                     "embedding or a linear layer", at, layer)
        return None
    mine = shared_weight_shape("linear", params, own_input)
    if mine is not None and mine != theirs:
        lowerer.report.error("E307", f"'tie': the weight of '{ref}' ({owner.op}) is {list(theirs)}; this layer's is "
                                     f"{list(mine)} ([out, in] features)", at, layer)
        return None
    return params.model_copy(update={"tie": owner.name})


def _owner(lowerer: Lowering, node: Node) -> Node:
    """The layer holding the weight: a tied layer's own owner (ties do not chain)."""
    tie = getattr(node.params, "tie", None)
    return lowerer.graph.node(tie) if tie else node


def _input_type(lowerer: Lowering, node: Node) -> TensorType | None:
    sources = lowerer.graph.input_names(node.name)
    return lowerer.graph.node(sources[0]).out_type if sources else None
