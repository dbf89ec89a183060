"""Convolution (1-D, 2-D, 3-D by input rank): groups, depthwise, dilation, non-square kernels, padding modes."""

from __future__ import annotations

from math import prod
from typing import Any

from pydantic import Field, model_validator

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank, per_dim, py_tuple, window_out
from archc.ops.fields import Channels, Padding, SizeOrList
from archc.ops.registry import register


class ConvParams(OpParams):
    out: Channels | None = Field(None, description="Output channels. Defaults to the input channels when `depthwise`.")
    k: SizeOrList = Field(description="Kernel size: `3`, or `[1, 7]` for a 1x7 kernel.")
    s: SizeOrList = Field(1, description="Stride.")
    p: Padding = Field(0, description="Padding: int, per-dimension list, `same` (stride 1 only), `same_upper` "
                                      "(TensorFlow SAME for any stride: extra pixel bottom/right) or `valid`.")
    d: SizeOrList = Field(1, description="Dilation.")
    groups: int = Field(1, ge=1, le=1_000_000, description="Channel groups; input and output channels must divide.")
    depthwise: bool = Field(False, description="One filter group per input channel (groups = input channels).")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")

    @model_validator(mode="after")
    def _out_given(self) -> ConvParams:
        if self.out is None and not self.depthwise:
            raise ValueError("`out` is required unless `depthwise: true`")
        if self.depthwise and self.groups != 1:
            raise ValueError("give either `depthwise: true` or `groups`, not both")
        return self


class ConvGeometry:
    """A convolution's resolved per-dimension numbers."""

    def __init__(self, p: ConvParams, x: TensorType) -> None:
        n = x.rank - 1
        self.n = n
        self.cin = x.channels
        self.groups = self.cin if p.depthwise else p.groups
        self.cout = p.out if p.out is not None else self.cin
        self.k = per_dim(p.k, n, "k")
        self.s = per_dim(p.s, n, "s")
        self.d = per_dim(p.d, n, "d")
        self.pads = resolve_padding(p.p, self.k, self.s, self.d, x.spatial)


def resolve_padding(p: Any, k: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...],
                    sizes: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dimension; `same_upper` needs the input ``sizes``."""
    n = len(k)
    if p == "valid":
        return [(0, 0)] * n
    if p == "same_upper":
        # TensorFlow SAME / ONNX SAME_UPPER: output ceil(size / stride), the odd pixel padded after
        totals = [max((-(-size // si) - 1) * si + di * (ki - 1) + 1 - size, 0)
                  for size, ki, si, di in zip(sizes, k, s, d, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    if p == "same":
        if any(v != 1 for v in s):
            raise Problem("E306", f"padding `same` expects stride 1; found stride {list(s)} (for a strided "
                                  "convolution give `same_upper` or explicit padding)")
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(v, v) for v in per_dim(p, n, "p")]


def same_upper_pad(p: Any, g: ConvGeometry) -> str | None:
    """`F.pad({0}, ...)` for `same_upper` where nn.ConvNd's symmetric padding cannot do it, else None.

    With a stride above 1 the padding depends on the input size (total max(eff - (n % s or s), 0), the odd pixel
    after), so it is computed from the runtime shape, as ONNX's SAME_UPPER does; F.pad lists the last axis first.
    """
    if p.p != "same_upper" or (all(b == a for b, a in g.pads) and all(s == 1 for s in g.s)):
        return None
    flat: list[str] = []
    for i in reversed(range(g.n)):
        eff, s = g.d[i] * (g.k[i] - 1) + 1, g.s[i]
        if s == 1:
            flat += [str((eff - 1) // 2), str(eff - 1 - (eff - 1) // 2)]
        else:
            total = f"max({eff} - ({{0}}.shape[{2 + i}] % {s} or {s}), 0)"
            flat += [f"{total} // 2", f"({total} + 1) // 2"]
    return f"F.pad({{0}}, ({', '.join(flat)}))"


@register
class Conv(Op):
    name = "conv"
    output_overwritable = True
    family = "conv"
    Params = ConvParams
    summary = "Convolution over 1-D, 2-D or 3-D inputs (by input rank), with groups, depthwise and dilation."
    example = "conv: {out: 64, k: 7, s: 2, p: 3, bias: false}"
    label_fields = ("k", "s", "p", "groups")

    def infer(self, p: ConvParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank("conv", x, (2, 3, 4))
        g = ConvGeometry(p, x)
        if g.cin % g.groups or g.cout % g.groups:
            raise Problem("E303", f"groups={g.groups} expects input and output channels divisible by {g.groups}; "
                                  f"found {g.cin} input and {g.cout} output channels")
        spatial = tuple(
            window_out(size, k, s, pb, pa, d)
            for size, k, s, (pb, pa), d in zip(x.spatial, g.k, g.s, g.pads, g.d)
        )
        return x.with_shape((g.cout, *spatial))

    def cost(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> Cost:
        g = ConvGeometry(p, inputs[0])
        fan_in = g.cin // g.groups * prod(g.k)
        weights = g.cout * fan_in
        bias = g.cout if p.bias else 0
        return Cost(params=weights + bias, macs=out.numel * fan_in,
                    connections=out.numel * (fan_in + (1 if p.bias else 0)))

    def window(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> Window:
        g = ConvGeometry(p, inputs[0])
        return Window(tuple(d * (k - 1) + 1 for k, d in zip(g.k, g.d)), g.s, tuple(b for b, _ in g.pads))

    def label(self, p: ConvParams, out: TensorType | None) -> str:
        k = _kernel(p.k, out.rank - 1 if out is not None else 2)
        stride = _compact(p.s)
        parts = [f"{k}/{stride}" if stride != "1" else k]
        if p.depthwise:
            parts.append("depthwise")
        elif p.groups != 1:
            parts.append(f"groups {p.groups}")
        if _compact(p.d) != "1":
            parts.append(f"dilation {_compact(p.d)}")
        if out is not None:
            parts.append(str(out.channels))
        return ", ".join(parts)

    def torch(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        g = ConvGeometry(p, inputs[0])
        args = [str(g.cin), str(g.cout), f"kernel_size={py_tuple(g.k)}"]
        if any(v != 1 for v in g.s):
            args.append(f"stride={py_tuple(g.s)}")
        if p.p == "same" and any(b != a for b, a in g.pads):
            args.append('padding="same"')
        elif any(b for b, _ in g.pads):
            args.append(f"padding={py_tuple(tuple(b for b, _ in g.pads))}")
        if any(v != 1 for v in g.d):
            args.append(f"dilation={py_tuple(g.d)}")
        if g.groups != 1:
            args.append(f"groups={g.groups}")
        if not p.bias:
            args.append("bias=False")
        pad = same_upper_pad(p, g)
        if pad is not None:
            args = [a for a in args if not a.startswith("padding=")]  # F.pad does it all
            return TorchCode(f"nn.Conv{g.n}d({', '.join(args)})", f"{{m}}({pad})")
        return TorchCode(f"nn.Conv{g.n}d({', '.join(args)})", "{m}({0})")

    def onnx(self, b: Any, p: ConvParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        g = ConvGeometry(p, in_types[0])
        args = [inputs[0], b.initializer("weight", weights["weight"])]
        if p.bias:
            args.append(b.initializer("bias", weights["bias"]))
        attrs: dict[str, Any] = {"kernel_shape": list(g.k), "strides": list(g.s)}
        if p.p == "same_upper":
            attrs["auto_pad"] = "SAME_UPPER"  # the padding follows the input size, which may be dynamic
        else:
            attrs["pads"] = [bp for bp, _ in g.pads] + [ap for _, ap in g.pads]
        return b.node("Conv", args, **attrs, dilations=list(g.d), group=g.groups)


def _kernel(value: int | list[int], n: int) -> str:
    """``7x7`` for a 2-D 7, ``1x7`` for [1, 7], ``5`` for a 1-D 5."""
    values = [value] * n if isinstance(value, int) else value
    return "x".join(str(v) for v in values)


def _compact(value: int | list[int]) -> str:
    """One number when every dimension agrees (``2`` for [2, 2]), else ``1x2``."""
    if isinstance(value, int):
        return str(value)
    return str(value[0]) if len(set(value)) == 1 else "x".join(str(v) for v in value)
