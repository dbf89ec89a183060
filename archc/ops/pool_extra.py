"""More pooling: global and adaptive max pooling (their shared rules are in :mod:`archc.ops.pool`), max unpooling,
LeNet's trainable subsampling."""

from __future__ import annotations

from math import prod
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank, per_dim, py_tuple, window_out
from archc.ops.fields import NonNegOrList, SizeOrList
from archc.ops.norm_extra import affine_onnx, per_channel_view
from archc.ops.pool import AdaptivePool, GlobalPool, GlobalPoolParams
from archc.ops.registry import register


# --- ops --------------------------------------------------------------------------------------------------------------
@register
class GlobalMaxPool(GlobalPool):
    name = "global_maxpool"
    summary = "Maximum over all spatial positions (global max pooling)."
    example = "global_maxpool: {keepdims: false}"
    torch_reduce = "torch.amax({{0}}, {dims}{keep})"

    def onnx(self, b: Any, p: GlobalPoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        y = b.node("GlobalMaxPool", [inputs[0]])
        return y if p.keepdims else b.reshape(y, out)


@register
class AdaptiveMaxPool(AdaptivePool):
    name = "adaptive_maxpool"
    summary = "Max pooling to a fixed output size; windows may overlap when the size does not divide the input."
    example = "adaptive_maxpool: {size: [6, 6]}"
    torch_name = "AdaptiveMaxPool"
    onnx_pool, onnx_global, onnx_reduce = "MaxPool", "GlobalMaxPool", "ReduceMax"


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

    def geometry(self, p: UnpoolParams, x: TensorType) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        n = x.rank - 1
        k = per_dim(p.k, n, "k")
        s = per_dim(p.s, n, "s") if p.s is not None else k
        pad = per_dim(p.p, n, "p")
        for ki, pi in zip(k, pad, strict=True):
            if pi * 2 > ki:
                raise Problem("E306", f"padding {pi} is more than half the window {ki}")
        return k, s, pad

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
        n = x.rank - 1
        k = per_dim(p.k, n, "k")
        return k, per_dim(p.s, n, "s") if p.s is not None else k

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

    def onnx(self, b: Any, p: SubsampleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        k, s = self.geometry(p, in_types[0])
        y = b.node("AveragePool", [inputs[0]], kernel_shape=list(k), strides=list(s))
        return affine_onnx(b, y, in_types[0], weights)
