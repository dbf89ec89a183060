"""Element-wise difference of two inputs, with the broadcasting of the other element-wise merges."""

from __future__ import annotations

from archc.ops.merge import _Elementwise
from archc.ops.registry import register


@register
class Sub(_Elementwise):
    name = "sub"
    summary = "Element-wise difference of two inputs, first minus second (broadcast where a size is 1)."
    example = "sub: {from: [x, mean]}"
    min_inputs = 2
    max_inputs = 2
    symbol = "-"
    onnx_op = "Sub"
