"""Pooling over sliding windows: max and average pooling, max unpooling, LeNet's trainable subsampling."""

from __future__ import annotations

from math import prod
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import (
    Cost,
    Op,
    OpParams,
    TorchCode,
    Window,
    expect_rank,
    per_channel_view,
    per_dim,
    py_tuple,
    window_out,
)
from archc.ops.fields import NonNegOrList, SizeOrList
from archc.ops.onnx_helpers import affine_onnx
from archc.ops.registry import register
from archc.ops.saved import Extra, Saved

Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""(kernel, stride, padding) per spatial dimension."""


def pool_geometry(k: int | list[int], s: int | list[int] | None, pad: int | list[int], x: TensorType) -> Geometry:
    """A window's per-dimension numbers over ``x``: the stride defaults to the window, padding is at most half of it
    (as PyTorch requires)."""
    n = x.rank - 1
    kernel = per_dim(k, n, "k")
    stride = per_dim(s, n, "s") if s is not None else kernel
    pads = per_dim(pad, n, "p")
    for ki, pi in zip(kernel, pads, strict=True):
        if pi * 2 > ki:
            raise Problem("E306", f"padding {pi} is more than half the window {ki}")
    return kernel, stride, pads


class PoolParams(OpParams):
    k: SizeOrList = Field(description="Window size.")
    s: SizeOrList | None = Field(None, description="Stride; defaults to the window size.")
    p: NonNegOrList = Field(0, description="Implicit padding on both sides (at most half the window).")
    ceil_mode: bool = Field(False, description="Round the output size up, as Caffe did.")


class _Pool(Op):
    family = "pool"
    output_overwritable = True
    Params = PoolParams
    torch_name = ""
    onnx_name = ""

    def geometry(self, p: PoolParams, x: TensorType) -> Geometry:
        return pool_geometry(p.k, p.s, p.p, x)

    def infer(self, p: PoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        k, s, pad = self.geometry(p, x)
        spatial = tuple(window_out(n, ki, si, pi, pi, 1, p.ceil_mode, what="window")
                        for n, ki, si, pi in zip(x.spatial, k, s, pad))
        return x.with_shape((x.channels, *spatial))

    def cost(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        k, _, _ = self.geometry(p, inputs[0])
        return Cost(elementwise=out.numel * prod(k), connections=out.numel * prod(k))

    def window(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        return Window(*self.geometry(p, inputs[0]))

    def label(self, p: PoolParams, out: TensorType | None) -> str:
        k = p.k if isinstance(p.k, int) else "x".join(map(str, p.k))
        s = p.s if p.s is not None else p.k
        return f"{k}/{s if isinstance(s, int) else 'x'.join(map(str, s))}" + (", ceil" if p.ceil_mode else "")

    def torch(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        k, s, pad = self.geometry(p, x)
        args = [f"kernel_size={py_tuple(k)}", f"stride={py_tuple(s)}"]
        if any(pad):
            args.append(f"padding={py_tuple(pad)}")
        if p.ceil_mode:
            args.append("ceil_mode=True")
        args.extend(self.extra_torch_args(p))
        return TorchCode(f"nn.{self.torch_name}{x.rank - 1}d({', '.join(args)})", "{m}({0})")

    def extra_torch_args(self, p: PoolParams) -> list[str]:
        return []

    def onnx(self, b: Any, p: PoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        k, s, pad = self.geometry(p, in_types[0])
        ceil_mode, end_pads = self.onnx_ceil_mode(b, p, in_types[0])
        attrs: dict[str, Any] = {"kernel_shape": list(k), "strides": list(s), "pads": [*pad, *end_pads],
                                 "ceil_mode": ceil_mode}
        attrs.update(self.extra_onnx_attrs(p))
        if end_pads != list(pad) and "count_include_pad" in attrs:  # windows past the input: count the elements
            attrs["count_include_pad"] = 0  # inside only, as PyTorch does (pads_past_input_ok)
        return b.node(self.onnx_name, [inputs[0]], **attrs)

    def extra_onnx_attrs(self, p: PoolParams) -> dict[str, Any]:
        return {}

    def onnx_ceil_mode(self, b: Any, p: PoolParams, x: TensorType) -> tuple[int, list[int]]:
        """ONNX's ``ceil_mode`` and end padding for PyTorch's ceil rule, which ONNX's lacks: "the last window starts
        inside the input or left padding".

        onnxruntime computes PyTorch's windows either way, but ONNX shape inference counts one window too many where
        that rule drops one. There the floor count is the same, so a fixed size uses floor mode; a size that follows
        the input keeps ceil mode (its declared dimension is unknown, so nothing disagrees). Where one axis gains a
        window and another loses one, floor mode with extra end padding on the first gives PyTorch's windows.
        """
        k, s, pad = self.geometry(p, x)
        if not p.ceil_mode:
            return 0, list(pad)
        if any(d is None for d in b.in_dims[0][1:]):
            return 1, list(pad)
        grows, drops = False, False
        torch_sizes = []
        for n, ki, si, pi in zip(x.spatial, k, s, pad, strict=True):
            floor = window_out(n, ki, si, pi, pi, 1, False, what="window")
            torch_ceil = window_out(n, ki, si, pi, pi, 1, True, what="window")
            onnx_ceil = -(-(n + 2 * pi - ki) // si) + 1
            grows |= torch_ceil > floor
            drops |= onnx_ceil > torch_ceil
            torch_sizes.append(torch_ceil)
        if not (grows and drops):
            return int(grows), list(pad)
        # floor((n + pi + end - k) / s) + 1 == PyTorch's count, with the smallest such end padding
        end_pads = [max(pi, (m - 1) * si + ki - n - pi) for n, m, ki, si, pi in zip(x.spatial, torch_sizes, k, s, pad,
                                                                                    strict=True)]
        if not self.pads_past_input_ok(p, pad) or any(e >= ki for e, ki in zip(end_pads, k, strict=True)):
            raise b.refuse("ceil_mode adds a window along one axis and PyTorch's rule drops one along another; "
                           "ONNX cannot express both (give explicit padding instead of ceil_mode)")
        return 0, end_pads

    def pads_past_input_ok(self, p: PoolParams, pad: tuple[int, ...]) -> bool:
        """Whether windows running past the input may be written as end padding the pooling ignores."""
        return True


@register
class MaxPool(_Pool):
    name = "maxpool"
    summary = "Max pooling over a sliding window."
    example = "maxpool: {k: 3, s: 2, p: 1}"
    torch_name = "MaxPool"
    onnx_name = "MaxPool"

    def saved_for_backward(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), extras=(Extra("indices", out.numel, "int64"),))  # where each maximum came from

    def inference_scratch(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return (Extra("indices", out.numel, "int64"),)  # PyTorch's CPU kernel finds them, then drops them


class AvgPoolParams(PoolParams):
    count_include_pad: bool = Field(True, description="Count padded zeros in the average (PyTorch's default).")


@register
class AvgPool(_Pool):
    name = "avgpool"
    Params = AvgPoolParams
    summary = "Average pooling over a sliding window."
    example = "avgpool: {k: 2, s: 2}"
    torch_name = "AvgPool"
    onnx_name = "AveragePool"

    def infer(self, p: PoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.rank == 4:  # PyTorch's AvgPool3d checks the window against the input before padding it
            k, _, _ = self.geometry(p, x)
            if any(n < ki for n, ki in zip(x.spatial, k)):
                raise Problem("E304", f"3-D average pooling needs the window {list(k)} to fit the input without its "
                                      f"padding (PyTorch's AvgPool3d refuses it otherwise); found {x}")
        return super().infer(p, inputs)

    def extra_torch_args(self, p: PoolParams) -> list[str]:
        return [] if getattr(p, "count_include_pad", True) else ["count_include_pad=False"]

    def extra_onnx_attrs(self, p: PoolParams) -> dict[str, Any]:
        return {"count_include_pad": int(getattr(p, "count_include_pad", True))}

    def pads_past_input_ok(self, p: PoolParams, pad: tuple[int, ...]) -> bool:
        # PyTorch divides by the window's elements inside the padded input; ONNX's count_include_pad=0 by those inside
        # the input: the same when nothing is padded or padded zeros are not counted
        return not any(pad) or not getattr(p, "count_include_pad", True)


class UnpoolParams(OpParams):
    k: SizeOrList = Field(description="Window of the max pooling being undone.")
    s: SizeOrList | None = Field(None, description="Its stride; defaults to the window size.")
    p: NonNegOrList = Field(0, description="Its padding.")


@register
class MaxUnpool(Op):
    name = "maxunpool"
    family = "pool"
    Params = UnpoolParams
    summary = ("Max unpooling (SegNet, DeconvNet): `from: [x, features]` puts each value of `x` at the position of "
               "the maximum that max pooling `features` with this window selects, zeros elsewhere; the output has "
               "the shape of `features`. `features` is the input of the encoder's `maxpool`, and the window must be "
               "that maxpool's: the indices are that pooling's, recomputed because a layer has one output.")
    example = "maxunpool: {from: [decoder, encoder_conv], k: 2, s: 2}"
    min_inputs = 2
    max_inputs = 2
    label_fields = ("k", "s", "p")

    def geometry(self, p: UnpoolParams, x: TensorType) -> Geometry:
        return pool_geometry(p.k, p.s, p.p, x)

    def infer(self, p: UnpoolParams, inputs: list[TensorType]) -> TensorType:
        x, features = inputs
        expect_rank(self.name, features, (2, 3, 4), "second input (the pooled features)")
        k, s, pad = self.geometry(p, features)
        pooled = (features.channels, *(window_out(n, ki, si, pi, pi, what="window")
                                       for n, ki, si, pi in zip(features.spatial, k, s, pad, strict=True)))
        if x.shape != pooled:
            raise Problem("E306", f"maxunpool expects its first input shaped like the max pooling of its second, "
                                  f"{list(pooled)}; found {x}")
        return features.with_shape(features.shape)

    def cost(self, p: UnpoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        k, _, _ = self.geometry(p, inputs[1])
        # the recomputed pooling compares every window element; the scatter writes every output element
        return Cost(elementwise=inputs[0].numel * prod(k) + out.numel)

    def window(self, p: UnpoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        n = inputs[1].rank - 1
        return Window((1,) * n, (1,) * n, (0,) * n)

    def torch(self, p: UnpoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        k, s, pad = self.geometry(p, inputs[1])
        n = inputs[1].rank - 1
        geo = f"{py_tuple(k)}, {py_tuple(s)}, {py_tuple(pad)}"
        indices = f"F.max_pool{n}d({{1}}, {geo}, return_indices=True)[1]"
        return TorchCode(None, f"F.max_unpool{n}d({{0}}, {indices}, {geo}, output_size={{1}}.shape[2:])")

    def saved_for_backward(self, p: UnpoolParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # the recomputed pooling keeps the features and its indices, which the unpooling reads too
        return Saved(inputs=(1,), extras=(Extra("indices", inputs[0].numel, "int64"),))

    def onnx(self, b: Any, p: UnpoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if any(d is None for d in b.in_dims[1]):
            raise b.refuse("maxunpool of a size-dependent input needs the unpooled size at run time, and ONNX "
                           "infers no shapes through that; export with --dynamic batch")
        k, s, pad = self.geometry(p, in_types[1])
        b.node("MaxPool", [inputs[1]], kernel_shape=list(k), strides=list(s), pads=list(pad) * 2)
        pool = b.graph.node[-1]
        indices = b.fresh(f"{pool.output[0]}/indices")  # MaxPool's optional second output
        pool.output.append(indices)
        attrs = {"kernel_shape": list(k), "strides": list(s), "pads": list(pad) * 2}
        default = tuple((n - 1) * si + ki - 2 * pi
                        for n, ki, si, pi in zip(in_types[0].spatial, k, s, pad, strict=True))
        if default == out.spatial:
            return b.node("MaxUnpool", [inputs[0], indices], **attrs)
        # the pooled input's size is not the default one: pass it, and restate the static shape for ONNX inference
        y = b.node("MaxUnpool", [inputs[0], indices, b.node("Shape", [inputs[1]])], **attrs)
        return b.reshape(y, out)


class SubsampleParams(OpParams):
    k: SizeOrList = Field(2, description="Window size.")
    s: SizeOrList | None = Field(None, description="Stride; defaults to the window size.")


@register
class Subsample(Op):
    name = "subsample"
    family = "pool"
    Params = SubsampleParams
    summary = ("LeNet-5's trainable subsampling (S2, S4): average over a window, then a learned per-channel "
               "coefficient and bias; the squashing function is a separate step.")
    example = "subsample: {k: 2}"

    def geometry(self, p: SubsampleParams, x: TensorType) -> tuple[tuple[int, ...], tuple[int, ...]]:
        k, s, _ = pool_geometry(p.k, p.s, 0, x)
        return k, s

    def infer(self, p: SubsampleParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        k, s = self.geometry(p, x)
        spatial = tuple(window_out(n, ki, si, 0, 0, what="window") for n, ki, si in zip(x.spatial, k, s, strict=True))
        return x.with_shape((x.channels, *spatial))

    def cost(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> Cost:
        window = prod(self.geometry(p, inputs[0])[0])
        # LeNet's connections: each output sees its window and the bias (S2: 6 x 14 x 14 x 5 = 5,880)
        return Cost(params=2 * out.channels, elementwise=out.numel * (window + 2),
                    connections=out.numel * (window + 1))

    def window(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> Window:
        k, s = self.geometry(p, inputs[0])
        return Window(k, s, (0,) * len(k))

    def label(self, p: SubsampleParams, out: TensorType | None) -> str:
        k = p.k if isinstance(p.k, int) else "x".join(map(str, p.k))
        return f"{k}, trainable"

    def torch(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        k, s = self.geometry(p, x)
        c = x.channels
        module = (f'nn.ParameterDict([("weight", nn.Parameter(torch.ones({c}))), '
                  f'("bias", nn.Parameter(torch.zeros({c})))])')
        view = per_channel_view(x)
        call = f"F.avg_pool{x.rank - 1}d({{0}}, {py_tuple(k)}, {py_tuple(s)}) * {{m}}.weight{view} + {{m}}.bias{view}"
        return TorchCode(module, call)

    def saved_for_backward(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # the pooling keeps its input; the product with the coefficient keeps the pooled values
        return Saved(inputs=(0,), extras=(Extra("pooled", out.numel),))

    def inference_scratch(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return (Extra("temporary", out.numel),)  # the pooled values, then their product, beside the output

    def parameter_sizes(self, p: SubsampleParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return (out.channels, out.channels)  # coefficient and bias

    def onnx(self, b: Any, p: SubsampleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        k, s = self.geometry(p, in_types[0])
        y = b.node("AveragePool", [inputs[0]], kernel_shape=list(k), strides=list(s))
        return affine_onnx(b, y, in_types[0], weights)
