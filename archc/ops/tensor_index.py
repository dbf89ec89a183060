"""Positions of an axis picked or moved: select one position (dropping the axis: the class token ``x[:, 0]``), roll
cyclically (Swin's shifted windows), and gather the entries of a stored table by stored positions (Swin's relative
position bias). Axes never include the batch."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import OpParams, Plumbing, TorchCode, norm_axes, norm_axis
from archc.ops.fields import MAX_DIM, MAX_RANK, Axis, torch_dim
from archc.ops.registry import register
from archc.ops.saved import View

Shift = Annotated[int, Field(ge=-MAX_DIM, le=MAX_DIM)]


class SelectParams(OpParams):
    axis: Axis = Field(0, description="Axis indexed (0 = the first axis after the batch, e.g. the tokens of [L, D]).")
    index: int = Field(0, ge=-MAX_DIM, le=MAX_DIM, description="Position taken (negative counts from the end).")


@register
class Select(Plumbing):
    name = "select"
    Params = SelectParams
    summary = "One position of an axis, the axis dropped: the class token of tokens [L, D] is `select: {index: 0}`."
    example = "select: {axis: 0, index: 0}"
    label_fields = ("axis", "index")

    def infer(self, p: SelectParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        axis = norm_axis(self.name, p.axis, x)
        if not -x.shape[axis] <= p.index < x.shape[axis]:
            raise Problem("E306", f"select index {p.index} is outside axis {p.axis} of {x} (size {x.shape[axis]})")
        if x.rank == 1:
            raise Problem("E306", f"select from {x} would leave no axis but the batch; use `slice` to keep one")
        return x.with_shape(tuple(n for i, n in enumerate(x.shape) if i != axis))

    def torch(self, p: SelectParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        axis = norm_axis(self.name, p.axis, inputs[0])
        return TorchCode(None, f"{{0}}[{', '.join([':'] * (axis + 1) + [str(p.index)])}]")

    def output_view(self, p: SelectParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "strided"

    def onnx(self, b: Any, p: SelectParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        axis = norm_axis(self.name, p.axis, in_types[0]) + 1
        # Gather with a one-element index keeps the axis (as size 1); Squeeze drops it
        taken = b.node("Gather", [inputs[0], b.const_int64([p.index])], axis=axis)
        return b.node("Squeeze", [taken, b.const_int64([axis])])


class RollParams(OpParams):
    shifts: list[Shift] = Field(min_length=1, max_length=MAX_RANK,
                                description="Positions each axis is rolled by (towards higher indices; negative: "
                                            "lower), one per entry of `axes`.")
    axes: list[Axis] = Field(min_length=1, max_length=MAX_RANK, description="Axes rolled, e.g. `[0, 1]` for the "
                                                                            "height and width of [H, W, C].")

    @model_validator(mode="after")
    def _one_shift_per_axis(self) -> RollParams:
        if len(self.shifts) != len(self.axes):
            raise ValueError(f"give one shift per axis: {len(self.shifts)} shifts for {len(self.axes)} axes")
        return self


@register
class Roll(Plumbing):
    name = "roll"
    Params = RollParams
    summary = ("Roll axes cyclically: what leaves one end enters at the other (torch.roll; Swin's cyclic shift is "
               "`roll: {shifts: [-3, -3], axes: [0, 1]}` on [H, W, C]).")
    example = "roll: {shifts: [-3, -3], axes: [0, 1]}"
    label_fields = ("shifts", "axes")

    def infer(self, p: RollParams, inputs: list[TensorType]) -> TensorType:
        norm_axes(self.name, p.axes, inputs[0])
        return inputs[0]

    def torch(self, p: RollParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        dims = tuple(torch_dim(a) for a in norm_axes(self.name, p.axes, inputs[0]))
        return TorchCode(None, f"torch.roll({{0}}, {tuple(p.shifts)}, {dims})")

    def onnx(self, b: Any, p: RollParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        y = inputs[0]
        for shift, axis in zip(p.shifts, norm_axes(self.name, p.axes, in_types[0]), strict=True):
            if b.in_dims[0][axis] is None:
                raise b.refuse(f"roll of axis {axis}, whose size follows the input size: the split point moves with "
                               "it; export with --dynamic batch")
            size = in_types[0].shape[axis]
            cut = size - shift % size  # the last `shift` positions come first
            if cut == size:
                continue
            head, tail = (b.node("Slice", [y, b.const_int64([start]), b.const_int64([end]), b.const_int64([axis + 1])])
                          for start, end in ((cut, size), (0, cut)))
            y = b.node("Concat", [head, tail], axis=axis + 1)
        return y


class GatherParams(OpParams):
    axis: int = Field(0, ge=0, lt=MAX_RANK, description="Axis of the table the positions index (0: its rows).")


@register
class Gather(Plumbing):
    name = "gather"
    Params = GatherParams
    summary = ("Entries of a tensor the model holds at the positions an integer tensor the model holds lists, "
               "`table[index]` (Swin's relative position bias: the bias table's rows by the relative position index). "
               "Both inputs are `parameter` (without `batch_axis`) or `buffer` steps; the result, the same for every "
               "sample, has a batch axis of size 1 that broadcasts where it meets activations (torchvision's "
               "`.unsqueeze(0)`). Output: the table's shape with the indexed axis replaced by the index's shape.")
    example = "gather: {from: [relative_position_bias_table, relative_position_index]}"
    min_inputs = 2
    max_inputs = 2
    held_inputs = True
    label_fields = ("axis",)

    def infer(self, p: GatherParams, inputs: list[TensorType]) -> TensorType:
        table, index = inputs
        if index.dtype not in ("int64", "int32"):
            raise Problem("E306", f"gather expects integer positions as its second input; found {index} {index.dtype}")
        if p.axis >= table.rank:
            raise Problem("E306", f"gather axis {p.axis} is out of range for the table {table} (rank {table.rank})")
        shape = (*table.shape[:p.axis], *index.shape, *table.shape[p.axis + 1:])
        if len(shape) > MAX_RANK:
            raise Problem("E306", f"gather of {table} by {index} would have rank {len(shape)}; at most {MAX_RANK}")
        return table.with_shape(shape)

    def torch(self, p: GatherParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"{{0}}[{':, ' * p.axis}{{1}}].unsqueeze(0)")

    def onnx(self, b: Any, p: GatherParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Unsqueeze", [b.node("Gather", inputs, axis=p.axis), b.const_int64([0])])
