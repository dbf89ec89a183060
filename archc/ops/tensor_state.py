"""Tensors a model holds that are not a layer's weight: a learned `parameter` (ViT's class token and position
embedding, ConvNeXt's layer scale) and a fixed `buffer` computed at build time from spec values (Swin's relative
position index). Each is stored under its layer path exactly (state_dict key `class_token`, `encoder.pos_embedding`).

Shapes are the stored tensor's, as torchvision stores it. A parameter with `batch_axis: true` is stored with a leading
size-1 batch axis (`class_token` [1, 1, 768]): its output is that tensor broadcast over the batch of its input (the
previous step, or `from:`), ViT's `class_token.expand(n, -1, -1)`, so it concatenates with activations; its type is the
shape without that axis ([1, 768]). Without it, the tensor takes no input and is used as stored (`layer_scale`
[96, 1, 1] broadcasts against [N, 96, H, W] in `mul`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import MAX_RANK, Float32, Positive, Size
from archc.ops.registry import known_op, register

if TYPE_CHECKING:
    from archc.ir.graph import Graph
from archc.ops.saved import NOTHING, Saved

StoredShape = Annotated[list[Size], Field(min_length=1, max_length=MAX_RANK + 1,
                                          description="The stored tensor's shape, e.g. [1, 1, 768] or [96, 1, 1].")]


class ParameterParams(OpParams):
    shape: StoredShape
    init: Literal["zeros", "ones", "constant", "normal", "trunc_normal"] = Field(
        "zeros", description="Initial values: zeros, ones, `constant` (`value`), `normal` or `trunc_normal` (`mean`, "
                             "`std`; truncated at two standard deviations around the mean, as nn.init's default "
                             "bounds are for std 1).")
    value: Float32 = Field(0.0, description="The constant of `init: constant` (ConvNeXt's layer scale: 1e-6).")
    mean: Float32 = Field(0.0, description="Mean of `normal` and `trunc_normal`.")
    std: Positive = Field(1.0, description="Standard deviation of `normal` and `trunc_normal` (ViT: 0.02).")
    batch_axis: bool = Field(False, description="The shape starts with a size-1 batch axis, broadcast over the batch "
                                                "of the input (ViT's class token).")


def _ctor(shape: list[int], p: ParameterParams) -> str:
    dims = ", ".join(str(d) for d in shape)
    if p.init == "zeros":
        return f"torch.zeros({dims})"
    if p.init == "ones":
        return f"torch.ones({dims})"
    if p.init == "constant":
        return f"torch.full(({dims},), {p.value!r})"
    if p.init == "normal":
        return f"torch.empty({dims}).normal_(mean={p.mean!r}, std={p.std!r})"
    return (f"nn.init.trunc_normal_(torch.empty({dims}), mean={p.mean!r}, std={p.std!r}, "
            f"a={p.mean - 2 * p.std!r}, b={p.mean + 2 * p.std!r})")


@register
class Parameter(Op):
    name = "parameter"
    family = "tensor"
    Params = ParameterParams
    summary = ("A learned tensor stored under the step's layer path (`nn.Parameter`; an ONNX initializer): a class "
               "token, a position embedding, a layer scale.")
    example = "parameter: {id: class_token, shape: [1, 1, 768], batch_axis: true}"
    min_inputs = 0
    label_fields = ("shape", "init")

    def uses_input(self, p: ParameterParams) -> bool:
        return p.batch_axis

    def infer(self, p: ParameterParams, inputs: list[TensorType]) -> TensorType:
        if not p.batch_axis:
            if len(p.shape) > MAX_RANK:
                raise Problem("E306", f"a parameter without a batch axis has at most {MAX_RANK} dimensions; found "
                                      f"{p.shape}")
            return TensorType(tuple(p.shape), "float32")
        if len(p.shape) < 2 or p.shape[0] != 1:
            raise Problem("E306", f"with `batch_axis: true` the shape starts with the batch axis of size 1 "
                                  f"([1, 1, 768]); found {p.shape}")
        return TensorType(tuple(p.shape[1:]), "float32")

    def cost(self, p: ParameterParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(params=math.prod(p.shape))

    def torch(self, p: ParameterParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        call = f"{{m}}.expand({{0}}.shape[0], {', '.join(['-1'] * out.rank)})" if p.batch_axis else "{m}"
        return TorchCode(_ctor(p.shape, p), call, state="parameter")

    def saved_for_backward(self, p: ParameterParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # the input gives the batch size only; the tensor itself is a parameter

    def onnx(self, b: Any, p: ParameterParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        stored = b.state_tensor(weights[""])
        if not p.batch_axis:
            return stored
        batch = b.node("Slice", [b.node("Shape", [inputs[0]]), b.const_int64([0]), b.const_int64([1])])
        shape = b.node("Concat", [batch, b.const_int64(list(out.shape))], axis=0)
        return b.node("Expand", [stored, shape])


def batch_free(op: str, params: Any) -> bool:
    """A tensor the model holds used as stored, without a batch axis (a buffer, a parameter without `batch_axis`):
    exported with its stored shape, not ``[batch, ...]``."""
    return op in ("parameter", "buffer") and not getattr(params, "batch_axis", False)


def unit_batch_layers(graph: Graph) -> set[str]:
    """Layers whose batch axis has size 1 at any batch: an op of held tensors (`gather`: the same for every sample)
    and whatever reads only such layers and held tensors (the plumbing that shapes Swin's relative position bias)."""
    unit: set[str] = set()
    for node in graph.topological():
        if node.is_input or batch_free(node.op, node.params):
            continue
        sources = graph.input_names(node.name)
        if known_op(node.op).held_inputs or (any(s in unit for s in sources) and all(
                s in unit or batch_free(graph.node(s).op, graph.node(s).params) for s in sources)):
            unit.add(node.name)
    return unit


class BufferParams(OpParams):
    kind: Literal["relative_position_index", "shift_mask"] = Field(
        description="What is computed: `relative_position_index`, Swin's index of the relative position bias table "
                    "for every pair of positions in a window ([Wh*Ww*Wh*Ww], int64, persistent); `shift_mask`, "
                    "Swin's attention mask of shifted windows over a feature map of `size` rolled by `shift` "
                    "([windows, 1, Wh*Ww, Wh*Ww], float32: -100 between positions that came from different regions "
                    "of the map, else 0; not persistent: torchvision computes it in forward).")
    window: list[Size] = Field(min_length=2, max_length=2, description="The window's height and width, e.g. [7, 7].")
    size: list[Size] | None = Field(None, min_length=2, max_length=2,
                                    description="`shift_mask`: the feature map's height and width, e.g. [56, 56].")
    shift: list[Size] | None = Field(None, min_length=2, max_length=2,
                                     description="`shift_mask`: the cyclic shift of the windows, e.g. [3, 3].")

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> BufferParams:
        sized = self.size is not None and self.shift is not None
        if self.kind == "shift_mask" and not sized:
            raise ValueError("kind shift_mask needs the feature map's `size` and the windows' `shift`")
        if self.kind != "shift_mask" and (self.size is not None or self.shift is not None):
            raise ValueError(f"`size` and `shift` belong to kind shift_mask, not {self.kind}")
        return self


def relative_position_index(height: int, width: int) -> list[int]:
    """torchvision's SwinTransformer index, flattened: (dy + Wh - 1) * (2 Ww - 1) + dx + Ww - 1 for every pair."""
    cells = [(i // width, i % width) for i in range(height * width)]
    return [(ya - yb + height - 1) * (2 * width - 1) + xa - xb + width - 1 for ya, xa in cells for yb, xb in cells]


def _regions(size: int, window: int, shift: int) -> list[int]:
    """Per position of one axis, its region after the cyclic shift: torchvision's slices (0, -window),
    (-window, -shift), (-shift, None) numbered 0, 1, 2."""
    return [(i >= size - window) + (i >= size - shift) for i in range(size)]


def shift_mask(size: list[int], window: list[int], shift: list[int]) -> list[list[list[float]]]:
    """torchvision's shifted-window attention mask, [windows, cells, cells]: -100 where the two positions of a window
    lie in different regions of the shifted map, 0 where in the same (the mask it builds in every forward)."""
    (h, w), (wh, ww) = size, window
    rows, cols = _regions(h, wh, shift[0]), _regions(w, ww, shift[1])
    windows = [[rows[y0 + dy] * 3 + cols[x0 + dx] for dy in range(wh) for dx in range(ww)]
               for y0 in range(0, h, wh) for x0 in range(0, w, ww)]
    return [[[0.0 if a == b else -100.0 for b in labels] for a in labels] for labels in windows]


def _mask_torch(size: list[int], window: list[int], shift: list[int]) -> str:
    """:func:`shift_mask` as a PyTorch expression of nested calls (so that the generated source wraps it): each
    position's region label (3 x row region + column region), grouped by window, compared pairwise."""
    (mh, mw), (h, w), (sh, sw) = size, window, shift

    def region(n: int, win: int, s: int, column: str) -> str:
        return f"torch.bucketize(torch.arange({n}){column}, torch.tensor([{n - win}, {n - s}]), right=True)"

    labels = f"torch.add(torch.mul({region(mh, h, sh, '[:, None]')}, 3), {region(mw, w, sw, '')})"
    windows = f"torch.transpose(torch.reshape({labels}, ({mh // h}, {h}, {mw // w}, {w})), 1, 2)"
    cells = h * w
    return (f"torch.where(torch.ne(torch.reshape(_windows := {windows}, (-1, 1, 1, {cells})), "
            f"torch.reshape(_windows, (-1, 1, {cells}, 1))), -100.0, 0.0)")


@register
class Buffer(Op):
    name = "buffer"
    family = "tensor"
    Params = BufferParams
    summary = ("A fixed tensor computed at build time from spec values, stored under the step's layer path (a "
               "registered buffer; an ONNX initializer): Swin's relative position index (persistent, in the "
               "state_dict) and shifted-window attention mask (not persistent).")
    example = "buffer: {id: relative_position_index, kind: relative_position_index, window: [7, 7]}"
    min_inputs = 0
    max_inputs = 0
    label_fields = ("kind", "window", "shift")

    def uses_input(self, p: BufferParams) -> bool:
        return False

    def infer(self, p: BufferParams, inputs: list[TensorType]) -> TensorType:
        cells = p.window[0] * p.window[1]
        if p.kind == "relative_position_index":
            return TensorType((cells * cells,), "int64")
        assert p.size is not None and p.shift is not None  # the params' validator requires them
        for axis, (n, w, s) in enumerate(zip(p.size, p.window, p.shift, strict=True)):
            if n % w:
                raise Problem("E306", f"shift_mask: the map's size {n} (axis {axis}) is not a multiple of the "
                                      f"window {w}; pad the map to a multiple first")
            if s >= w:
                raise Problem("E306", f"shift_mask: shift {s} (axis {axis}) expects less than the window {w}")
        windows = (p.size[0] // p.window[0]) * (p.size[1] // p.window[1])
        return TensorType((windows, 1, cells, cells), "float32")

    def cost(self, p: BufferParams, inputs: list[TensorType], out: TensorType) -> Cost:
        # a mask is not persistent (not in the state_dict), so it is no buffer in the totals
        return Cost(buffers=out.numel if p.kind == "relative_position_index" else 0)

    def torch(self, p: BufferParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        h, w = p.window
        if p.kind == "shift_mask":
            assert p.size is not None and p.shift is not None
            return TorchCode(_mask_torch(p.size, p.window, p.shift), "{m}", state="nonpersistent_buffer")
        # (dy + Wh - 1) * (2 Ww - 1) + dx + Ww - 1 = cell(i) - cell(j) + offset; cell(k) = k // Ww * (2 Ww - 1) + k % Ww
        cells = f"torch.arange({h * w}) // {w} * {2 * w - 1} + torch.arange({h * w}) % {w}"
        expr = f"((_cells := {cells})[:, None] - _cells + {(h - 1) * (2 * w - 1) + w - 1}).flatten()"
        return TorchCode(expr, "{m}", state="buffer")

    def onnx(self, b: Any, p: BufferParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if p.kind == "shift_mask":  # not in the state_dict: computed here as the module computes it
            import numpy as np

            assert p.size is not None and p.shift is not None
            mask = np.asarray(shift_mask(p.size, p.window, p.shift), dtype=np.float32)
            return b.state_tensor(mask[:, None])
        return b.state_tensor(weights[""])
