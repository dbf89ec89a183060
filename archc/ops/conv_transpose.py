"""Transposed convolution (1-D, 2-D, 3-D by input rank): the learned upsampling of FCN, DCGAN and U-Net."""

from __future__ import annotations

from fractions import Fraction
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
    check_groups,
    conv_ctor,
    expect_rank,
    per_dim,
    weight_and_bias,
)
from archc.ops.fields import Channels, NonNegOrList, SizeOrList
from archc.ops.registry import register


class ConvTransposeParams(OpParams):
    out: Channels = Field(description="Output channels.")
    k: SizeOrList = Field(description="Kernel size: `4`, or `[2, 4]` per spatial dimension.")
    s: SizeOrList = Field(1, description="Stride: the upsampling factor.")
    p: NonNegOrList = Field(0, description="Padding removed from both sides of the full output "
                                           "(PyTorch's `padding`: `d * (k - 1) - p` zeros pad the dilated input).")
    output_padding: NonNegOrList = Field(0, description="Extra rows/columns added at the end of the output to pick "
                                                        "one of the sizes a strided convolution maps from; "
                                                        "below the stride or the dilation.")
    d: SizeOrList = Field(1, description="Dilation of the kernel.")
    groups: int = Field(1, ge=1, le=1_000_000, description="Channel groups; input and output channels must divide.")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")


class TransposeGeometry:
    """A transposed convolution's resolved per-dimension numbers."""

    def __init__(self, p: ConvTransposeParams, x: TensorType) -> None:
        n = x.rank - 1
        self.n = n
        self.cin = x.channels
        self.cout = p.out
        self.k = per_dim(p.k, n, "k")
        self.s = per_dim(p.s, n, "s")
        self.p = per_dim(p.p, n, "p")
        self.op = per_dim(p.output_padding, n, "output_padding")
        self.d = per_dim(p.d, n, "d")

    def sizes(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """PyTorch's rule: (n - 1) * s - 2p + d * (k - 1) + output_padding + 1."""
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                     for n, s, p, d, k, op in zip(spatial, self.s, self.p, self.d, self.k, self.op, strict=True))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@register
class ConvTranspose(Op):
    name = "conv_transpose"
    norm_fold_axis = 1
    output_overwritable = True
    family = "conv"
    Params = ConvTransposeParams
    summary = ("Transposed convolution (fractionally strided, 'deconvolution') over 1-D, 2-D or 3-D inputs by rank: "
               "the gradient of a convolution, used for learned upsampling.")
    example = "conv_transpose: {out: 64, k: 4, s: 2, p: 1}"
    label_fields = ("k", "s", "p", "output_padding", "groups")

    def infer(self, p: ConvTransposeParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        g = TransposeGeometry(p, x)
        check_groups(p.groups, g.cin, g.cout)
        for op, s, d in zip(g.op, g.s, g.d, strict=True):
            if op >= max(s, d):
                raise Problem("E306", f"output_padding expects values below max(stride, dilation) = {max(s, d)}; "
                                      f"found {op}")
        spatial = g.sizes(x.spatial)
        if any(v < 1 for v in spatial):
            raise Problem("E304", f"padding {list(g.p)} crops the whole output: expected padding that leaves at "
                                  f"least one position, found output size {list(spatial)}")
        return x.with_shape((g.cout, *spatial))

    def cost(self, p: ConvTransposeParams, inputs: list[TensorType], out: TensorType) -> Cost:
        x = inputs[0]
        g = TransposeGeometry(p, x)
        per_input = g.cout // p.groups * prod(g.k)  # each input element is scattered to this many outputs
        weights = g.cin * per_input
        bias = g.cout if p.bias else 0
        # MACs count every product, including those that fall into the cropped padding (as torch profilers do)
        macs = x.numel * per_input
        return Cost(params=weights + bias, macs=macs, connections=macs + (out.numel if p.bias else 0))

    def window(self, p: ConvTransposeParams, inputs: list[TensorType], out: TensorType) -> Window:
        # output o reads input i where i * s + t * d - p = o for a tap t: at most ceil(extent / s) inputs, moving
        # 1/s of an input per output; output 0's first read is input ceil((p - (extent - 1)) / s)
        g = TransposeGeometry(p, inputs[0])
        extents = [d * (k - 1) + 1 for k, d in zip(g.k, g.d, strict=True)]
        return Window(tuple(_ceil_div(e, s) for e, s in zip(extents, g.s, strict=True)),
                      tuple(Fraction(1, s) for s in g.s),
                      tuple(-_ceil_div(pad - e + 1, s) for pad, e, s in zip(g.p, extents, g.s, strict=True)))

    def torch(self, p: ConvTransposeParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        g = TransposeGeometry(p, inputs[0])
        options = (("stride", g.s, 1), ("padding", g.p, 0), ("output_padding", g.op, 0), ("dilation", g.d, 1))
        return TorchCode(conv_ctor(f"nn.ConvTranspose{g.n}d", g.cin, g.cout, g.k, options, p.groups, p.bias),
                         "{m}({0})")

    def parameter_sizes(self, p: ConvTransposeParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return weight_and_bias(self.cost(p, inputs, out).params, out.channels if p.bias else 0)  # keeps its input

    def onnx(self, b: Any, p: ConvTransposeParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        g = TransposeGeometry(p, in_types[0])
        if any(op >= s for op, s in zip(g.op, g.s)):
            # PyTorch allows output_padding below max(stride, dilation); ONNX Runtime only below the stride
            raise b.refuse(f"output_padding {list(g.op)} must be smaller than the stride {list(g.s)} in ONNX")
        args = [inputs[0], b.initializer("weight", weights["weight"])]  # [C_in, C_out / groups, *k], as in PyTorch
        if p.bias:
            args.append(b.initializer("bias", weights["bias"]))
        return b.node("ConvTranspose", args, kernel_shape=list(g.k), strides=list(g.s), pads=list(g.p) * 2,
                      dilations=list(g.d), output_padding=list(g.op), group=p.groups)
