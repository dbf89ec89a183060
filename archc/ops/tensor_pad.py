"""Zero padding: of the spatial axes, and of the channels (the parameter-free residual shortcut)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import OpParams, Plumbing, TorchCode, Window, expect_rank, per_dim
from archc.ops.fields import Channels, NonNeg, SizeOrList
from archc.ops.registry import register


class ZeroPadParams(OpParams):
    p: NonNeg | list[NonNeg] = Field(description="Padding: an int for every side, one int per spatial dimension "
                                                 "(both sides), or [before, after] for each dimension in turn.")


@register
class ZeroPad(Plumbing):
    name = "zeropad"
    Params = ZeroPadParams
    summary = "Pad the spatial axes with zeros."
    example = "zeropad: {p: [0, 1, 0, 1]}"

    def pads(self, p: ZeroPadParams, x: TensorType) -> list[tuple[int, int]]:
        n = x.rank - 1
        if isinstance(p.p, list) and len(p.p) == 2 * n:
            return [(p.p[2 * i], p.p[2 * i + 1]) for i in range(n)]
        return [(v, v) for v in per_dim(p.p, n, "p")]

    def infer(self, p: ZeroPadParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        spatial = tuple(s + b + a for s, (b, a) in zip(x.spatial, self.pads(p, x)))
        return x.with_shape((x.channels, *spatial))

    def window(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> Window:
        pads = self.pads(p, inputs[0])
        return Window((1,) * len(pads), (1,) * len(pads), tuple(b for b, _ in pads))

    def torch(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        flat = [v for b, a in reversed(self.pads(p, inputs[0])) for v in (b, a)]  # F.pad wants last axis first
        return TorchCode(None, f"F.pad({{0}}, {tuple(flat)})")

    def onnx(self, b: Any, p: ZeroPadParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        pads = self.pads(p, in_types[0])
        # the spatial axes named by `axes` (Pad-18): the same tensor, and onnxruntime's pad fusion, which wrongly folds
        # a zero Pad into a following MaxPool (whose padding is -inf), leaves this form alone
        onnx_pads = [*(b_ for b_, _ in pads), *(a for _, a in pads)]
        axes = list(range(2, 2 + len(pads)))
        return b.node("Pad", [inputs[0], b.const_int64(onnx_pads), "", b.const_int64(axes)])


class PadChannelsParams(OpParams):
    out: Channels = Field(description="Output channels; the extra channels are zeros.")
    s: SizeOrList = Field(1, description="Spatial subsampling stride (takes every s-th position).")


@register
class PadChannels(Plumbing):
    name = "pad_channels"
    Params = PadChannelsParams
    summary = ("Subsample by a stride and pad channels with zeros: the parameter-free residual shortcut "
               "(ResNet option A), written by `shortcut: zero_pad`.")
    example = "pad_channels: {out: 32, s: 2}"

    def infer(self, p: PadChannelsParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        if p.out < x.channels:
            raise Problem("E306", f"pad_channels to {p.out} channels, but the input already has {x.channels}")
        s = per_dim(p.s, x.rank - 1, "s")
        return x.with_shape((p.out, *(-(-n // si) for n, si in zip(x.spatial, s))))

    def window(self, p: PadChannelsParams, inputs: list[TensorType], out: TensorType) -> Window:
        s = per_dim(p.s, inputs[0].rank - 1, "s")
        return Window((1,) * len(s), s, (0,) * len(s))

    def torch(self, p: PadChannelsParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        s = per_dim(p.s, x.rank - 1, "s")
        sub = "{0}" if all(v == 1 for v in s) else "{0}[:, :, " + ", ".join(f"::{v}" for v in s) + "]"
        extra = p.out - x.channels
        pads = "0, 0, " * (x.rank - 1)
        before = extra // 2
        return TorchCode(None, f"F.pad({sub}, ({pads}{before}, {extra - before}))")

    def onnx(self, b: Any, p: PadChannelsParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        x, t = inputs[0], in_types[0]
        n = t.rank - 1
        s = per_dim(p.s, n, "s")
        if any(v != 1 for v in s):
            # every s-th position from the first; the end is "to the end" so that dynamic sizes work too
            x = b.node("Slice", [x, b.const_int64([0] * n), b.const_int64([2**63 - 1] * n),
                                 b.const_int64(list(range(2, n + 2))), b.const_int64(list(s))])
        extra = p.out - t.channels
        before = extra // 2
        return b.node("Pad", [x, b.const_int64([0, before, *(0,) * n, 0, extra - before, *(0,) * n])])
