"""Zero padding: of the spatial axes (or any axes named, such as the height and width of tokens [H, W, C]), and of
the channels (the parameter-free residual shortcut)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import OpParams, Plumbing, TorchCode, Window, expect_rank, norm_axes, per_dim
from archc.ops.fields import MAX_RANK, Axis, Channels, NonNeg, SizeOrList
from archc.ops.registry import register


class ZeroPadParams(OpParams):
    p: NonNeg | list[NonNeg] = Field(description="Padding: an int for every side, one int per padded axis (both "
                                                 "sides), or [before, after] for each padded axis in turn.")
    axes: list[Axis] | None = Field(None, min_length=1, max_length=MAX_RANK,
                                    description="Axes padded, e.g. `[0, 1]` for the height and width of tokens "
                                                "[H, W, C]; default: the spatial axes (all but axis 0).")


@register
class ZeroPad(Plumbing):
    name = "zeropad"
    Params = ZeroPadParams
    summary = "Pad the spatial axes (or the given `axes`) with zeros."
    example = "zeropad: {p: [0, 1, 0, 1]}"

    def axes(self, p: ZeroPadParams, x: TensorType) -> list[int]:
        """The padded axes (batch excluded)."""
        if p.axes is None:
            expect_rank(self.name, x, (2, 3, 4))
            return list(range(1, x.rank))
        return norm_axes(self.name, p.axes, x)

    def pads(self, p: ZeroPadParams, x: TensorType) -> dict[int, tuple[int, int]]:
        """Axis -> (before, after), in the order the axes are given."""
        axes = self.axes(p, x)
        n = len(axes)
        if isinstance(p.p, list) and len(p.p) == 2 * n:
            return {axis: (p.p[2 * i], p.p[2 * i + 1]) for i, axis in enumerate(axes)}
        return {axis: (v, v) for axis, v in zip(axes, per_dim(p.p, n, "p"))}

    def infer(self, p: ZeroPadParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        pads = self.pads(p, x)
        return x.with_shape(tuple(n + sum(pads.get(i, (0, 0))) for i, n in enumerate(x.shape)))

    def window(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> Window | None:
        if p.axes is not None:
            return None  # axes other than a channels-first layout's spatial ones: no window to speak of
        pads = list(self.pads(p, inputs[0]).values())
        return Window((1,) * len(pads), (1,) * len(pads), tuple(b for b, _ in pads))

    def torch(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        pads = self.pads(p, x)
        # F.pad wants the last axis first, down to the first padded one
        flat = [v for axis in range(x.rank - 1, min(pads) - 1, -1) for v in pads.get(axis, (0, 0))]
        return TorchCode(None, f"F.pad({{0}}, {tuple(flat)})")

    def onnx(self, b: Any, p: ZeroPadParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        pads = self.pads(p, in_types[0])
        # the padded axes named by `axes` (Pad-18): the same tensor, and onnxruntime's pad fusion, which wrongly folds
        # a zero Pad into a following MaxPool (whose padding is -inf), leaves this form alone
        onnx_pads = [*(b_ for b_, _ in pads.values()), *(a for _, a in pads.values())]
        axes = [axis + 1 for axis in pads]
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
