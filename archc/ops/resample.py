"""Resampling without weights: interpolation (nearest, linear) to a size or by a scale. Pixel shuffle, which moves
elements without interpolating, is in :mod:`archc.ops.tensor_shuffle`."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank, per_dim
from archc.ops.fields import SizeOrList
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Saved

_LINEAR_RANK = {"linear": 2, "bilinear": 3, "trilinear": 4}
"""The input rank (batch excluded) each linear mode interpolates."""

PositiveScale = float | int


class UpsampleParams(OpParams):
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = Field(
        "nearest", description="`nearest`, or linear interpolation: `linear` (1-D), `bilinear` (2-D), `trilinear` "
                               "(3-D).")
    scale: PositiveScale | list[PositiveScale] | None = Field(
        None, description="Scale factor per spatial dimension (output = floor(input * scale)); give `scale` or "
                          "`size`.")
    size: SizeOrList | None = Field(None, description="Output spatial size; give `scale` or `size`.")
    align_corners: bool = Field(False, description="Linear modes: align the corner pixels' centres (PyTorch's "
                                                   "`align_corners=True`) instead of their outer edges.")

    @field_validator("scale")
    @classmethod
    def _scale_in_range(cls, scale: PositiveScale | list[PositiveScale] | None) -> Any:
        # a field rule, not a model rule, so that the diagnostic points at `scale` itself
        scales = scale if isinstance(scale, list) else [scale] if scale is not None else []
        if any(not 0 < v <= 1_000 for v in scales):
            raise ValueError(f"expected a scale above 0 and at most 1000; found {scale}")
        return scale

    @model_validator(mode="after")
    def _one_target(self) -> UpsampleParams:
        if (self.scale is None) == (self.size is None):
            raise ValueError("give exactly one of `scale` and `size`")
        if self.align_corners and self.mode == "nearest":
            raise ValueError("`align_corners` applies to the linear modes only")
        return self


def _scales(p: UpsampleParams, n: int) -> tuple[float, ...] | None:
    if p.scale is None:
        return None
    if isinstance(p.scale, list):
        if len(p.scale) != n:
            raise Problem("E306", f"scale has {len(p.scale)} values {p.scale} but the input has {n} spatial "
                                  f"dimension{'s' if n != 1 else ''}")
        return tuple(float(v) for v in p.scale)
    return (float(p.scale),) * n


@register
class Upsample(Op):
    name = "upsample"
    family = "pool"
    Params = UpsampleParams
    summary = "Resize the spatial axes by interpolation, to a size or by a scale factor (F.interpolate)."
    example = "upsample: {scale: 2, mode: bilinear}"
    label_fields = ("mode", "scale", "size")

    def infer(self, p: UpsampleParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        if p.mode != "nearest" and _LINEAR_RANK[p.mode] != x.rank:
            want = next(m for m, r in _LINEAR_RANK.items() if r == x.rank)
            raise Problem("E305", f"mode {p.mode} interpolates {_LINEAR_RANK[p.mode] - 1}-D maps; found {x} "
                                  f"(rank {x.rank}); use mode {want}")
        scales = _scales(p, x.rank - 1)
        if scales is not None:
            spatial = tuple(int(n * s) for n, s in zip(x.spatial, scales, strict=True))
        else:
            assert p.size is not None
            spatial = per_dim(p.size, x.rank - 1, "size")
        if any(v < 1 for v in spatial):
            raise Problem("E306", f"scale {p.scale} gives an empty output {list(spatial)} for input {x}")
        return x.with_shape((x.channels, *spatial))

    def cost(self, p: UpsampleParams, inputs: list[TensorType], out: TensorType) -> Cost:
        # linear interpolation blends 2 neighbours per spatial axis; nearest copies
        taps = 1 if p.mode == "nearest" else 2 ** (out.rank - 1)
        return Cost(elementwise=out.numel * taps)

    def window(self, p: UpsampleParams, inputs: list[TensorType], out: TensorType) -> Window:
        # PyTorch's source index for output o: o * step (nearest: floored; align_corners: step (n - 1) / (m - 1)),
        # or (o + 1/2) * step - 1/2; step is 1 / scale when a scale is given, else n / m. The linear modes read the
        # two inputs around that position along each axis (clamped at the borders, which the field ignores).
        x = inputs[0]
        n = x.rank - 1
        scales = _scales(p, n)
        if p.align_corners:
            steps = tuple(Fraction(i - 1, o - 1) if o > 1 else Fraction(1)
                          for i, o in zip(x.spatial, out.spatial, strict=True))
        elif scales is not None:
            steps = tuple(1 / Fraction(str(v)) for v in scales)
        else:
            steps = tuple(Fraction(i, o) for i, o in zip(x.spatial, out.spatial, strict=True))
        if p.mode == "nearest":
            return Window((1,) * n, steps, (0,) * n)
        first = tuple(0 if p.align_corners else math.floor((step - 1) / 2) for step in steps)
        return Window((2,) * n, steps, tuple(-v for v in first))

    def torch(self, p: UpsampleParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        n = out.rank - 1
        scales = _scales(p, n)
        if scales is not None:
            target = f"scale_factor={scales[0] if len(set(scales)) == 1 else scales}"
        else:
            target = f"size={out.spatial[0] if len(set(out.spatial)) == 1 else out.spatial}"
        corners = f", align_corners={p.align_corners}" if p.mode != "nearest" else ""
        return TorchCode(None, f"F.interpolate({{0}}, {target}, mode={p.mode!r}{corners})")

    def saved_for_backward(self, p: UpsampleParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # interpolation weights follow from the sizes alone

    def onnx(self, b: Any, p: UpsampleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        import numpy as np

        n = out.rank - 1
        if p.mode == "nearest":
            # PyTorch's nearest: source index floor(dst * in / out), no half-pixel shift
            attrs: dict[str, Any] = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                     "nearest_mode": "floor"}
        else:
            attrs = {"mode": "linear", "coordinate_transformation_mode":
                     "align_corners" if p.align_corners else "pytorch_half_pixel"}
        scales = _scales(p, n)
        if scales is not None:
            # PyTorch maps coordinates with the given scale (not out/in), as ONNX does with `scales`
            values = b.constant("scales", np.asarray([1.0, 1.0, *scales], dtype=np.float32))
            return b.node("Resize", [inputs[0], "", values], **attrs)
        if b.opset >= 18:
            sizes = b.const_int64(list(out.spatial))
            return b.node("Resize", [inputs[0], "", "", sizes], axes=list(range(2, 2 + n)), **attrs)
        # before opset 18 `sizes` covers every axis: batch and channels taken from the input
        batch_channels = b.node("Slice", [b.node("Shape", [inputs[0]]), b.const_int64([0]), b.const_int64([2])])
        sizes = b.node("Concat", [batch_channels, b.const_int64(list(out.spatial))], axis=0)
        return b.node("Resize", [inputs[0], "", "", sizes], **attrs)
