"""Which per-channel norms fold into the layer before them at inference, keyed on op capabilities, never op names.

A norm op with :attr:`Op.foldable_norm` (batch norm: an affine map per channel at inference) folds into a producer
whose op has :attr:`Op.norm_fold_axis` (convolution, transposed convolution: a linear map with a per-channel bias) when
the norm is the producer's only reader and the producer is no model output. The ONNX writer then emits one node with
the folded weights. Pure IR: no torch, no onnx.
"""

from __future__ import annotations

from archc.ops.registry import known_op
from archc.passes.schedule import Schedule


def fold_pairs(schedule: Schedule, outputs: set[str]) -> dict[str, str]:
    """Producer -> the norm folded into it, among the layers that run (a dead reader keeps nothing from folding:
    it is not computed)."""
    readers: dict[str, list[str]] = {}
    for step in schedule.steps:
        for source in step.sources:
            readers.setdefault(source, []).append(step.node.name)
    ops = {step.node.name: step.node.op for step in schedule.steps}
    pairs: dict[str, str] = {}
    for step in schedule.steps:
        if not known_op(step.node.op).foldable_norm or len(step.sources) != 1:
            continue
        source = step.sources[0]
        if source not in ops or source in outputs or readers[source] != [step.node.name]:
            continue
        if known_op(ops[source]).norm_fold_axis is not None:
            pairs[source] = step.node.name
    return pairs
