"""ONNX node patterns shared by several op families, written against the builder the ONNX emitter passes to
:meth:`archc.ops.base.Op.onnx`.

numpy is imported inside the functions only: the compiler core runs without the emit extras.
"""

from __future__ import annotations

from typing import Any

from archc.ir.types import TensorType


def reduce_node(b: Any, op_type: str, x: str, axes: list[int], keepdims: bool) -> str:
    """ReduceMax/ReduceMean/...: `axes` is an attribute before opset 18 and an input from 18 on."""
    if b.opset >= 18:
        return b.node(op_type, [x, b.const_int64(axes)], keepdims=int(keepdims))
    return b.node(op_type, [x], axes=axes, keepdims=int(keepdims))


def _channel_shape(x: TensorType) -> tuple[int, ...]:
    """A [C] vector's shape for broadcasting over ``x`` with the batch: [C, 1, 1] for [C, H, W]."""
    return (x.channels, *(1,) * (x.rank - 1))


def affine_onnx(b: Any, y: str, x: TensorType, weights: dict[str, Any], bias: bool = True) -> str:
    """y * weight + bias with the layer's [C] weights broadcast over the spatial axes."""
    import numpy as np

    y = b.node("Mul", [y, b.initializer("weight", np.asarray(weights["weight"]).reshape(_channel_shape(x)))])
    if bias:
        y = b.node("Add", [y, b.initializer("bias", np.asarray(weights["bias"]).reshape(_channel_shape(x)))])
    return y


def split_channels(b: Any, x: str, spatial: int, a: int, c: int) -> str:
    """[N, a * c, *S] -> [N, a, c, *S], the spatial sizes copied (Reshape's 0) so they may be dynamic."""
    y = b.node("Unsqueeze", [x, b.const_int64([1])])  # [N, 1, C, *S]: S now sits where the target has it
    return b.node("Reshape", [y, b.const_int64([0, a, c, *[0] * spatial])], allowzero=0)


def merge_channels(b: Any, y: str, spatial: int, channels: int) -> str:
    """[N, a, c, *S] -> [N, a * c, *S], the inverse of :func:`split_channels`."""
    y = b.node("Reshape", [y, b.const_int64([0, 1, channels, *[0] * spatial])], allowzero=0)
    return b.node("Squeeze", [y, b.const_int64([1])])
