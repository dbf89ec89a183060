"""Pooling to a fixed size: global average and max pooling (to one position), adaptive average and max pooling
(to any size, PyTorch's windows)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank, per_dim, py_tuple, whole_input
from archc.ops.fields import SizeOrList
from archc.ops.onnx_helpers import reduce_node
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Extra, Saved, saves_input


class GlobalPoolParams(OpParams):
    keepdims: bool = Field(True, description="Keep the pooled spatial axes as size 1 ([C, 1, 1]); false gives [C].")


class GlobalPool(Op):
    """Shape, cost and receptive-field rules shared by the global poolings; subclasses say how to reduce."""

    family = "pool"
    Params = GlobalPoolParams
    torch_reduce = ""
    """Forward expression with `{dims}` and `{keep}` placeholders."""

    def infer(self, p: GlobalPoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        return x.with_shape((x.channels, *(1,) * (x.rank - 1)) if p.keepdims else (x.channels,))

    def cost(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=inputs[0].numel)

    def window(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        return whole_input(inputs[0])

    def torch(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        dims = tuple(range(2, inputs[0].rank + 1))
        keep = ", keepdim=True" if p.keepdims else ""
        return TorchCode(None, self.torch_reduce.format(dims=dims, keep=keep))

    def saved_for_backward(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # a mean's gradient is spread by sizes alone


@register
class GlobalAvgPool(GlobalPool):
    name = "global_avgpool"
    output_overwritable = True
    summary = "Average over all spatial positions (global average pooling)."
    example = "global_avgpool"
    torch_reduce = "{{0}}.mean({dims}{keep})"

    def onnx(self, b: Any, p: GlobalPoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if p.keepdims:
            return b.node("GlobalAveragePool", [inputs[0]])
        axes = list(range(2, in_types[0].rank + 1))
        return b.node("ReduceMean", [inputs[0], b.const_int64(axes)], keepdims=0)


@register
class GlobalMaxPool(GlobalPool):
    name = "global_maxpool"
    summary = "Maximum over all spatial positions (global max pooling)."
    example = "global_maxpool: {keepdims: false}"
    torch_reduce = "torch.amax({{0}}, {dims}{keep})"

    def saved_for_backward(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), output=True)  # amax finds its maxima again by comparing input and result

    def onnx(self, b: Any, p: GlobalPoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        y = b.node("GlobalMaxPool", [inputs[0]])
        return y if p.keepdims else b.reshape(y, out)


class AdaptivePoolParams(OpParams):
    size: SizeOrList = Field(description="Output spatial size, e.g. `7` or `[6, 6]`.")


class AdaptivePool(Op):
    """Pooling to a fixed output size (PyTorch's adaptive pooling): shared by the average and max variants."""

    family = "pool"
    Params = AdaptivePoolParams
    torch_name: ClassVar[str] = ""
    onnx_pool: ClassVar[str] = ""
    onnx_global: ClassVar[str] = ""
    onnx_reduce: ClassVar[str] = ""

    def infer(self, p: AdaptivePoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        return x.with_shape((x.channels, *per_dim(p.size, x.rank - 1, "size")))

    def cost(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=max(inputs[0].numel, out.numel))

    def window(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        # the largest adaptive window: ceil((i+1)*n/m) - floor(i*n/m) at most ceil(n/m) + 1
        k = tuple(-(-n // m) + (1 if n % m else 0) for n, m in zip(inputs[0].spatial, out.spatial, strict=True))
        s = tuple(max(1, n // m) for n, m in zip(inputs[0].spatial, out.spatial, strict=True))
        return Window(k, s, (0,) * len(k))

    def label(self, p: AdaptivePoolParams, out: TensorType | None) -> str:
        return "to " + ("x".join(map(str, out.spatial)) if out is not None else str(p.size))

    def torch(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.{self.torch_name}{inputs[0].rank - 1}d({py_tuple(out.spatial)})", "{m}({0})")

    def saved_for_backward(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        if all(n == 1 for n in out.spatial):
            return NOTHING  # PyTorch computes a 1x1 adaptive average as a mean
        return saves_input()

    def onnx(self, b: Any, p: AdaptivePoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        """Exact at any size: one pooling over the axes the output divides, cell-by-cell reductions over the rest.

        PyTorch's cell i covers input positions floor(i * n / m) to ceil((i + 1) * n / m), so windows overlap or
        vary in length when m does not divide n; max and mean over a rectangle are separable, so reducing one axis at
        a time is exact. Windows that follow a dynamic input size cannot be fixed in a graph, so a dynamic axis is
        accepted only when pooled to 1 (a plain reduction).
        """
        sizes, cells, dyn = in_types[0].spatial, out.spatial, b.in_dims[0][1:]
        for m, d in zip(cells, dyn, strict=True):
            if d is None and m != 1:
                raise b.refuse(f"{self.name} to {m} along an axis whose size follows the input (dynamic height "
                               "and width): its windows depend on that size, which no fixed ONNX graph can follow; "
                               "export with --dynamic batch")
        if all(m == 1 for m in cells):
            return b.node(self.onnx_global, [inputs[0]])
        y = inputs[0]
        kernel = [n // m if d is not None and n % m == 0 else 1 for n, m, d in zip(sizes, cells, dyn, strict=True)]
        if any(k > 1 for k in kernel):
            y = b.node(self.onnx_pool, [y], kernel_shape=kernel, strides=kernel)
        whole_axes = [i + 2 for i, d in enumerate(dyn) if d is None]
        if whole_axes:
            y = reduce_node(b, self.onnx_reduce, y, whole_axes, True)
        for i, (n, m, d) in enumerate(zip(sizes, cells, dyn, strict=True)):
            if d is None or n % m == 0:
                continue
            axis = b.const_int64([i + 2])
            parts = [reduce_node(b, self.onnx_reduce, b.node("Slice", [y, b.const_int64([j * n // m]),
                                                                         b.const_int64([-(-(j + 1) * n // m)]), axis]),
                                 [i + 2], True)
                     for j in range(m)]
            y = b.node("Concat", parts, axis=i + 2)
        return y


@register
class AdaptiveAvgPool(AdaptivePool):
    name = "adaptive_avgpool"
    summary = "Average pooling to a fixed output size; windows may overlap when the size does not divide the input."
    example = "adaptive_avgpool: {size: 7}"
    torch_name = "AdaptiveAvgPool"
    onnx_pool, onnx_global, onnx_reduce = "AveragePool", "GlobalAveragePool", "ReduceMean"


@register
class AdaptiveMaxPool(AdaptivePool):
    name = "adaptive_maxpool"
    summary = "Max pooling to a fixed output size; windows may overlap when the size does not divide the input."
    example = "adaptive_maxpool: {size: [6, 6]}"
    torch_name = "AdaptiveMaxPool"

    def saved_for_backward(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), extras=(Extra("indices", out.numel, "int64"),))

    def inference_scratch(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return (Extra("indices", out.numel, "int64"),)  # found, then dropped
    onnx_pool, onnx_global, onnx_reduce = "MaxPool", "GlobalMaxPool", "ReduceMax"
