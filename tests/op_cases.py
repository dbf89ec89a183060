"""The op contract cases: every registered op in at least three configurations, with hand-written expectations.

Shared by the contract test (tests/test_op_contracts.py) and the op-specific tests (tests/test_op_details.py). Each
case is a tiny spec whose step `id: t` is the op under test; other steps only feed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    op: str
    inputs: str
    """The spec's `inputs:` mapping, YAML flow style."""
    body: tuple[str, ...]
    """Steps, YAML flow style; the op under test has `id: t`."""
    shape: tuple[int, ...]
    """Expected output shape of `t`, without the batch."""
    macs: int = 0
    """Hand formula of t's MACs."""
    params: int | None = None
    """Expected parameters of t when they differ from PyTorch's count (conv_table only)."""
    batched: bool = True
    """False: t is a tensor the model holds, used as stored (a buffer; a parameter without a batch axis)."""
    unit_batch: bool = False
    """t's batch axis has size 1 at any batch (`gather` of tensors the model holds: the same for every sample)."""

    @property
    def text(self) -> str:
        steps = "\n".join(f"  - {s}" for s in self.body)
        return f"name: contract\ninputs: {self.inputs}\noutputs: [t]\nbody:\n{steps}\n"

    @property
    def label(self) -> str:
        return f"{self.op}: {self.inputs} | {' ; '.join(self.body)}"


def one(op: str, shape_in: list[int], args: str, out: tuple[int, ...], macs: int = 0) -> Case:
    """A case with one float input `x` feeding `op: {id: t, args}`."""
    inner = f"id: t, {args}" if args else "id: t"
    return Case(op, f"{{x: {shape_in}}}", (f"{op}: {{{inner}}}",), out, macs)


def act_cases(op: str, args: str = "") -> list[Case]:
    return [one(op, [3, 5, 4], args, (3, 5, 4)), one(op, [7], args, (7,)), one(op, [2, 3, 2, 5], args, (2, 3, 2, 5))]


LENET_C3 = [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1], [0, 1, 2, 3], [1, 2, 3, 4],
            [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2], [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
            [0, 1, 2, 3, 4, 5]]
"""LeNet-5's Table I: the input maps (S2) each C3 map is connected to."""

CASES: list[Case] = [
    # --- convolution: MACs = output elements x (input channels / groups) x kernel elements ---------------------------
    one("conv", [3, 9, 9], "out: 4, k: 3, s: 2", (4, 4, 4), 4 * 4 * 4 * 3 * 9),
    one("conv", [4, 11, 7], "out: 6, k: [3, 2], s: [2, 1], p: [1, 0], d: [1, 2], groups: 2", (6, 6, 5),
        6 * 6 * 5 * 2 * 6),
    one("conv", [2, 15], "out: 4, k: 5, s: 3, p: 2, bias: false", (4, 5), 4 * 5 * 2 * 5),
    one("conv", [2, 5, 6, 7], "out: 3, k: 3, s: 2, p: 1", (3, 3, 3, 4), 3 * 3 * 3 * 4 * 2 * 27),
    one("conv", [3, 10, 7], "out: 4, k: 3, s: 2, p: same_upper", (4, 5, 4), 4 * 5 * 4 * 3 * 9),
    one("conv", [2, 9, 9], "out: 2, k: 4, s: 2, p: same_upper", (2, 5, 5), 2 * 5 * 5 * 2 * 16),
    one("conv", [2, 5, 8, 7], "out: 2, k: [2, 3, 3], s: [2, 3, 2], p: same_upper", (2, 3, 3, 4),
        2 * 3 * 3 * 4 * 2 * 18),
    one("conv", [4, 7, 7], "k: 3, p: 1, depthwise: true", (4, 7, 7), 4 * 7 * 7 * 9),
    one("conv", [2, 8, 8], "out: 3, k: 2, p: same", (3, 8, 8), 3 * 8 * 8 * 2 * 4),
    # transposed: every input element is scattered to (out / groups) x kernel elements outputs
    one("conv_transpose", [4, 5, 5], "out: 3, k: 4, s: 2, p: 1", (3, 10, 10), 4 * 5 * 5 * 3 * 16),
    one("conv_transpose", [4, 5, 6], "out: 6, k: [3, 2], s: [2, 3], p: [1, 0], output_padding: [1, 2], groups: 2",
        (6, 10, 19), 4 * 5 * 6 * 3 * 6),
    one("conv_transpose", [2, 7], "out: 3, k: 3, s: 3, d: 2, bias: false", (3, 23), 2 * 7 * 3 * 3),
    one("conv_transpose", [2, 3, 3, 3], "out: 2, k: 3, s: 2, p: 1, output_padding: 1", (2, 6, 6, 6),
        2 * 27 * 2 * 27),
    # deformable: the convolution's MACs (the bilinear sampling is element-wise work)
    Case("deform_conv", "{x: [4, 7, 7]}", ("conv: {id: off, out: 18, k: 3, p: 1}",
                                           "deform_conv: {id: t, from: [x, off], out: 6, k: 3, p: 1}"),
         (6, 7, 7), 6 * 7 * 7 * 4 * 9),
    Case("deform_conv", "{x: [4, 9, 8]}",
         ("conv: {id: off, out: 36, k: 3, s: 2, p: 2, d: 2}",
          "deform_conv: {id: t, from: [x, off], out: 4, k: 3, s: 2, p: 2, d: 2, groups: 2, offset_groups: 2}"),
         (4, 5, 4), 4 * 5 * 4 * 2 * 9),
    Case("deform_conv", "{x: [3, 6, 7]}", ("conv: {id: off, out: 12, k: [2, 3], s: [1, 2]}",
                                           "deform_conv: {id: t, from: [x, off], out: 2, k: [2, 3], s: [1, 2], "
                                           "bias: false}"),
         (2, 5, 3), 2 * 5 * 3 * 3 * 6),
    # partially connected: MACs = output positions x connected weights; params = connected weights + biases
    Case("conv_table", "{x: [6, 14, 14]}", (f"conv_table: {{id: t, k: 5, connections: {LENET_C3}}}",),
         (16, 10, 10), 10 * 10 * 60 * 25, params=60 * 25 + 16),
    Case("conv_table", "{x: [3, 8, 9]}",
         ("conv_table: {id: t, k: 3, s: 2, p: 1, bias: false, connections: [[0], [1, 2], [0, 2]]}",),
         (3, 4, 5), 4 * 5 * 5 * 9, params=5 * 9),
    Case("conv_table", "{x: [2, 10]}", ("conv_table: {id: t, k: 4, s: 3, p: same_upper, connections: [[1], [0, 1]]}",),
         (2, 4), 4 * 3 * 4, params=3 * 4 + 2),
    # gated: two convolutions
    one("gated_conv", [3, 8, 8], "out: 4, k: 3, p: 1", (4, 8, 8), 2 * 4 * 8 * 8 * 3 * 9),
    one("gated_conv", [4, 9, 7], "out: 2, k: [3, 1], s: 2, groups: 2", (2, 4, 4), 2 * 2 * 4 * 4 * 2 * 3),
    one("gated_conv", [2, 11], "out: 3, k: 4, s: 2, p: same_upper", (3, 6), 2 * 3 * 6 * 2 * 4),
    # --- fully connected and embedding -------------------------------------------------------------------------------
    one("linear", [12], "out: 5", (5,), 5 * 12),
    one("linear", [3, 7], "out: 4, bias: false", (3, 4), 3 * 4 * 7),
    one("linear", [2, 3, 6], "out: 2", (2, 3, 2), 2 * 3 * 2 * 6),
    Case("embedding", "{tokens: {shape: [16], dtype: int64}}", ("embedding: {id: t, num: 20, dim: 8}",), (16, 8)),
    Case("embedding", "{tokens: {shape: [3, 5], dtype: int64}}",
         ("embedding: {id: t, num: 10, dim: 4, padding_idx: 0}",), (3, 5, 4)),
    Case("embedding", "{tokens: {shape: [7], dtype: int32}}", ("embedding: {id: t, num: 11, dim: 3}",), (7, 3)),
    # --- pooling and resampling: no MACs -----------------------------------------------------------------------------
    one("maxpool", [3, 9, 9], "k: 3, s: 2, p: 1", (3, 5, 5)),
    one("maxpool", [2, 10], "k: 3, s: 2, ceil_mode: true", (2, 5)),
    one("maxpool", [2, 5, 6, 7], "k: 2, s: [1, 2, 2]", (2, 4, 3, 3)),
    one("maxpool", [3, 8, 7], "k: [3, 2], s: 2, p: [1, 0], ceil_mode: true", (3, 5, 4)),
    one("avgpool", [3, 8, 8], "k: 2", (3, 4, 4)),
    one("avgpool", [2, 9, 9], "k: 3, s: 2, p: 1, count_include_pad: false", (2, 5, 5)),
    one("avgpool", [2, 11], "k: 3, s: 2, p: 1, ceil_mode: true", (2, 6)),
    one("avgpool", [2, 4, 5, 6], "k: 2, p: 1, count_include_pad: false", (2, 3, 3, 4)),
    one("global_avgpool", [3, 5, 7], "", (3, 1, 1)),
    one("global_avgpool", [4, 9], "keepdims: false", (4,)),
    one("global_avgpool", [2, 3, 4, 5], "", (2, 1, 1, 1)),
    one("global_maxpool", [3, 5, 7], "", (3, 1, 1)),
    one("global_maxpool", [4, 9], "keepdims: false", (4,)),
    one("global_maxpool", [2, 3, 4, 5], "keepdims: false", (2,)),
    one("adaptive_avgpool", [3, 8, 8], "size: 4", (3, 4, 4)),
    one("adaptive_avgpool", [3, 7, 9], "size: [3, 4]", (3, 3, 4)),
    one("adaptive_avgpool", [2, 10], "size: 3", (2, 3)),
    one("adaptive_avgpool", [2, 4, 6, 5], "size: [2, 3, 2]", (2, 2, 3, 2)),
    one("adaptive_maxpool", [3, 8, 8], "size: 4", (3, 4, 4)),
    one("adaptive_maxpool", [3, 7, 9], "size: [3, 4]", (3, 3, 4)),
    one("adaptive_maxpool", [2, 10], "size: 3", (2, 3)),
    one("adaptive_maxpool", [2, 4, 6, 5], "size: [2, 1, 3]", (2, 2, 1, 3)),
    Case("maxunpool", "{x: [3, 8, 8]}", ("conv: {id: feat, out: 4, k: 3, p: 1}", "maxpool: {k: 2, s: 2}",
                                         "relu: {id: dec}", "maxunpool: {id: t, from: [dec, feat], k: 2, s: 2}"),
         (4, 8, 8)),
    Case("maxunpool", "{x: [2, 7, 9]}", ("maxpool: {k: 3, s: 2, p: 1}", "tanh: {id: dec}",
                                         "maxunpool: {id: t, from: [dec, x], k: 3, s: 2, p: 1}"), (2, 7, 9)),
    Case("maxunpool", "{x: [3, 11]}", ("maxpool: {k: 2}", "sigmoid: {id: dec}",
                                       "maxunpool: {id: t, from: [dec, x], k: 2}"), (3, 11)),
    one("upsample", [3, 4, 5], "scale: 2", (3, 8, 10)),
    one("upsample", [2, 5, 4], "size: [7, 9], mode: bilinear, align_corners: true", (2, 7, 9)),
    one("upsample", [2, 6], "scale: 1.5, mode: linear", (2, 9)),
    one("upsample", [2, 3, 4, 5], "scale: [2, 1, 2], mode: trilinear", (2, 6, 4, 10)),
    one("upsample", [3, 5, 5], "size: 8, mode: bilinear", (3, 8, 8)),
    one("upsample", [2, 5, 7], "size: [8, 3]", (2, 8, 3)),
    one("pixel_shuffle", [8, 3, 4], "r: 2", (2, 6, 8)),
    one("pixel_shuffle", [9, 2, 3], "r: 3", (1, 6, 9)),
    one("pixel_shuffle", [12, 5, 5], "r: 2", (3, 10, 10)),
    one("subsample", [6, 28, 28], "k: 2", (6, 14, 14)),
    one("subsample", [3, 9], "k: 3", (3, 3)),
    one("subsample", [2, 4, 4, 6], "k: 2, s: [2, 2, 3]", (2, 2, 2, 2)),
    one("subsample", [2, 7, 9], "k: [2, 3], s: 2", (2, 3, 4)),
    # --- normalisation -----------------------------------------------------------------------------------------------
    one("bn", [3, 5, 5], "eps: 0.001", (3, 5, 5)),
    one("bn", [4, 7], "momentum: 0.3", (4, 7)),
    one("bn", [5], "affine: false", (5,)),
    one("bn", [2, 3, 4, 5], "", (2, 3, 4, 5)),
    Case("bn", "{x: [3, 6, 6]}", ("conv: {out: 4, k: 3, s: 2, bias: false}", "bn: {id: t}"), (4, 2, 2)),
    one("instance_norm", [3, 5, 6], "", (3, 5, 6)),
    one("instance_norm", [2, 7], "affine: true", (2, 7)),
    one("instance_norm", [2, 3, 4, 5], "eps: 0.001, affine: true", (2, 3, 4, 5)),
    one("group_norm", [6, 4, 4], "groups: 3", (6, 4, 4)),
    one("group_norm", [4, 7], "groups: 2, affine: false", (4, 7)),
    one("group_norm", [8, 2, 3, 3], "groups: 4, eps: 0.001", (8, 2, 3, 3)),
    one("group_norm", [6], "groups: 3", (6,)),
    one("layernorm", [3, 4, 5], "", (3, 4, 5)),
    one("layernorm", [3, 4, 5], "dims: 1", (3, 4, 5)),
    one("layernorm", [16], "affine: false", (16,)),
    one("layernorm", [4, 5, 6], "channels_first: true, eps: 1e-6", (4, 5, 6)),
    one("layernorm", [3, 7], "channels_first: true, affine: false", (3, 7)),
    one("layernorm", [2, 3, 4, 5], "channels_first: true, dims: 1", (2, 3, 4, 5)),
    one("lrn", [8, 5, 5], "size: 5, alpha: 0.0001, beta: 0.75, k: 2", (8, 5, 5)),
    one("lrn", [6, 7], "size: 3, alpha: 0.01", (6, 7)),
    one("lrn", [4, 3, 3, 3], "size: 2", (4, 3, 3, 3)),
    one("scale", [3, 4, 4], "", (3, 4, 4)),
    one("scale", [5], "bias: false", (5,)),
    one("scale", [2, 3, 4, 5], "", (2, 3, 4, 5)),
    # --- regularisation (the identity at inference) -----------------------------------------------------------------
    one("dropout", [3, 4], "p: 0.3", (3, 4)),
    one("dropout", [10], "", (10,)),
    one("dropout", [2, 3, 3], "p: 0.9", (2, 3, 3)),
    one("dropout2d", [3, 4, 4], "p: 0.1", (3, 4, 4)),
    one("dropout2d", [2, 5], "", (2, 5)),
    one("dropout2d", [2, 3, 3, 3], "p: 0.5", (2, 3, 3, 3)),
    one("drop_path", [3, 4, 4], "p: 0.2", (3, 4, 4)), one("drop_path", [10], "p: 0.5", (10,)),
    one("drop_path", [5, 8], "p: 0.0", (5, 8)), one("drop_path", [2, 3], "p: 1.0", (2, 3)),
    # --- activations -------------------------------------------------------------------------------------------------
    *act_cases("relu"), *act_cases("sigmoid"), *act_cases("tanh"), *act_cases("hardsigmoid"),
    *act_cases("hardswish"), *act_cases("silu"), *act_cases("relu6"), *act_cases("selu"), *act_cases("mish"),
    *act_cases("gelu"), one("gelu", [4, 3], "approximate: tanh", (4, 3)),
    *act_cases("leaky_relu", "slope: 0.2"), *act_cases("elu"), one("elu", [3, 4], "alpha: 0.5", (3, 4)),
    one("prelu", [3, 5, 4], "", (3, 5, 4)), one("prelu", [7], "", (7,)), one("prelu", [2, 3, 2, 5], "shared: true",
                                                                                (2, 3, 2, 5)),
    one("softmax", [10], "", (10,)), one("softmax", [3, 4, 5], "axis: 1", (3, 4, 5)),
    one("softmax", [3, 4, 5], "axis: -1", (3, 4, 5)),
    one("softmax", [6, 4], "axis: 0", (6, 4)),  # over the tokens of [L, D]
    one("log_softmax", [10], "", (10,)), one("log_softmax", [3, 4, 5], "axis: 0", (3, 4, 5)),
    one("log_softmax", [3, 4, 5], "axis: -2", (3, 4, 5)),
    # --- merges ------------------------------------------------------------------------------------------------------
    Case("add", "{a: [3, 4, 4], b: [3, 4, 4]}", ("add: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("add", "{a: [3, 4, 4], b: [3, 1, 1]}", ("add: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("add", "{a: [1, 5], b: [3, 5], c: [3, 1]}", ("add: {id: t, from: [a, b, c]}",), (3, 5)),
    Case("mul", "{a: [3, 4, 4], b: [3, 4, 4]}", ("mul: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("mul", "{a: [3, 4, 4], b: [3, 1, 1]}", ("mul: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("mul", "{a: [1, 5], b: [3, 5], c: [3, 1]}", ("mul: {id: t, from: [a, b, c]}",), (3, 5)),
    Case("maximum", "{a: [3, 4, 4], b: [3, 4, 4]}", ("maximum: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("maximum", "{a: [3, 4, 4], b: [3, 1, 1]}", ("maximum: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("maximum", "{a: [1, 5], b: [3, 5], c: [3, 1]}", ("maximum: {id: t, from: [a, b, c]}",), (3, 5)),
    Case("sub", "{a: [3, 4, 4], b: [3, 4, 4]}", ("sub: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("sub", "{a: [3, 4, 4], b: [1, 4, 4]}", ("sub: {id: t, from: [a, b]}",), (3, 4, 4)),
    Case("sub", "{a: [1, 5], b: [3, 1]}", ("sub: {id: t, from: [a, b]}",), (3, 5)),
    Case("concat", "{a: [3, 4, 4], b: [2, 4, 4]}", ("concat: {id: t, from: [a, b]}",), (5, 4, 4)),
    Case("concat", "{a: [3, 4], b: [3, 2]}", ("concat: {id: t, from: [a, b], axis: 1}",), (3, 6)),
    Case("concat", "{a: [2, 3, 1], b: [2, 3, 2], c: [2, 3, 3]}", ("concat: {id: t, from: [a, b, c], axis: -1}",),
         (2, 3, 6)),
    # --- tensor plumbing ---------------------------------------------------------------------------------------------
    one("flatten", [3, 4, 5], "", (60,)), one("flatten", [2, 3], "", (6,)), one("flatten", [2, 2, 2, 2], "", (16,)),
    one("zeropad", [3, 4, 4], "p: 1", (3, 6, 6)), one("zeropad", [2, 5], "p: [1, 2]", (2, 8)),
    one("zeropad", [2, 3, 3], "p: [0, 1, 2, 3]", (2, 4, 8)),
    one("zeropad", [4, 5, 3], "p: [0, 1, 0, 2], axes: [0, 1]", (5, 7, 3)),  # tokens [H, W, C], Swin's padding
    one("zeropad", [6, 4], "p: 2, axes: [0]", (10, 4)),
    one("zeropad", [2, 3, 4], "p: [1, 2], axes: [-1, 0]", (6, 3, 6)),
    one("pad_channels", [4, 6, 6], "out: 8, s: 2", (8, 3, 3)), one("pad_channels", [3, 5], "out: 5", (5, 5)),
    one("pad_channels", [2, 5, 7], "out: 3, s: [1, 2]", (3, 5, 4)),
    one("reshape", [3, 4, 4], "shape: [-1, 8]", (6, 8)), one("reshape", [12], "shape: [3, 4]", (3, 4)),
    one("reshape", [2, 3, 4], "shape: [4, -1, 2]", (4, 3, 2)),
    one("permute", [3, 4, 5], "axes: [1, 2, 0]", (4, 5, 3)), one("permute", [2, 5], "axes: [1, 0]", (5, 2)),
    one("permute", [2, 3, 4, 5], "axes: [3, 0, 2, 1]", (5, 2, 4, 3)),
    one("repeat", [3, 2, 2], "times: [1, 2, 3]", (3, 4, 6)), one("repeat", [1, 4, 4], "shape: [5, -1, -1]", (5, 4, 4)),
    one("repeat", [4], "times: [3]", (12,)), one("repeat", [2, 1, 3], "shape: [2, 4, 3]", (2, 4, 3)),
    one("expand", [1, 8], "shape: [5, -1]", (5, 8)), one("expand", [3, 1, 1], "shape: [-1, 4, 2]", (3, 4, 2)),
    one("expand", [2, 3], "shape: [2, 3]", (2, 3)),
    one("squeeze", [3, 1, 1], "", (3,)), one("squeeze", [3, 1, 1], "axes: [1, 2]", (3,)),
    one("squeeze", [1, 4, 1], "axes: [0]", (4, 1)),
    one("squeeze", [2, 1, 3], "axes: [-2]", (2, 3)),
    one("unsqueeze", [3], "axes: [1, 2]", (3, 1, 1)), one("unsqueeze", [4, 5], "axes: [0]", (1, 4, 5)),
    one("unsqueeze", [2, 3], "axes: [0, 3]", (1, 2, 3, 1)),
    Case("slice", "{x: [8, 3, 3]}", ("slice: {id: t, axis: 0, start: 0, end: \"${in_channels // 2}\"}",), (4, 3, 3)),
    one("slice", [6, 5], "axis: 1, start: 1, end: -1", (6, 3)), one("slice", [7, 4], "start: 1, step: 2", (3, 4)),
    one("slice", [5, 6, 6], "axis: -1, start: -3", (5, 6, 3)),
    one("channel_shuffle", [6, 3, 4], "groups: 2", (6, 3, 4)), one("channel_shuffle", [12, 5], "groups: 3", (12, 5)),
    one("channel_shuffle", [8, 2, 3, 2], "groups: 4", (8, 2, 3, 2)),
    one("mean", [3, 4, 5], "axes: [1, 2]", (3,)), one("mean", [3, 4, 5], "axes: [0], keepdims: true", (1, 4, 5)),
    one("mean", [2, 3], "axes: [-1]", (2,)),
    one("sum", [3, 4, 5], "axes: [1, 2]", (3,)), one("sum", [6, 4], "axes: [-1], keepdims: true", (6, 1)),
    one("sum", [2, 3, 4], "axes: [0]", (3, 4)),
    Case("parameter", "{x: [4, 8]}", ("parameter: {id: t, shape: [1, 1, 8], batch_axis: true}",), (1, 8)),
    one("parameter", [3, 4, 4], "shape: [1, 3, 4, 4], init: trunc_normal, std: 0.5, batch_axis: true", (3, 4, 4)),
    Case("parameter", "{x: [4, 8]}", ("parameter: {id: t, shape: [96, 1, 1], init: constant, value: 0.5}",),
         (96, 1, 1), batched=False),
    Case("buffer", "{x: [4]}", ("buffer: {id: t, kind: relative_position_index, window: [7, 7]}",), (2401,),
         batched=False),
    Case("buffer", "{x: [4]}", ("buffer: {id: t, kind: relative_position_index, window: [2, 3]}",), (36,),
         batched=False),
    Case("buffer", "{x: [4]}", ("buffer: {id: t, kind: relative_position_index, window: [1, 1]}",), (1,),
         batched=False),
    Case("buffer", "{x: [4]}", ("buffer: {id: t, kind: shift_mask, window: [7, 7], size: [14, 14], shift: [3, 3]}",),
         (4, 1, 49, 49), batched=False),
    Case("buffer", "{x: [4]}", ("buffer: {id: t, kind: shift_mask, window: [2, 3], size: [4, 9], shift: [1, 2]}",),
         (6, 1, 6, 6), batched=False),
    # gather: the table's indexed axis replaced by the positions' shape, with a batch axis of size 1
    Case("gather", "{x: [4]}", ("parameter: {id: table, shape: [9, 3], init: normal}",
                                "buffer: {id: index, kind: relative_position_index, window: [2, 2]}",
                                "gather: {id: t, from: [table, index]}"), (16, 3), unit_batch=True),
    Case("gather", "{x: [4]}", ("parameter: {id: table, shape: [2, 25, 3, 4], init: normal}",
                                "buffer: {id: index, kind: relative_position_index, window: [3, 3]}",
                                "gather: {id: t, from: [table, index], axis: 1}"), (2, 81, 3, 4), unit_batch=True),
    Case("gather", "{x: [4]}", ("parameter: {id: table, shape: [5, 1], init: normal}",
                                "buffer: {id: index, kind: relative_position_index, window: [1, 3]}",
                                "gather: {id: t, from: [table, index]}"), (9, 1), unit_batch=True),
    one("select", [5, 8], "", (8,)), one("select", [3, 4, 5], "axis: -1, index: -1", (3, 4)),
    one("select", [4, 6], "axis: 1, index: 2", (4,)),
    one("roll", [4, 5, 3], "shifts: [-3, 2], axes: [0, 1]", (4, 5, 3)),
    one("roll", [7], "shifts: [10], axes: [0]", (7,)),
    one("roll", [2, 6], "shifts: [-6], axes: [-1]", (2, 6)),
    one("max", [3, 4, 5], "axes: [1, 2]", (3,)), one("max", [3, 4, 5], "axes: [0], keepdims: true", (1, 4, 5)),
    one("max", [2, 3, 2, 2], "axes: [0, -1]", (3, 2)),
    one("identity", [3, 4], "", (3, 4)), one("identity", [5], "", (5,)),
    one("identity", [2, 2, 2, 2], "", (2, 2, 2, 2)),
    # --- arithmetic and matrix products: MACs = output elements x the inner size --------------------------------------
    Case("matmul", "{a: [4, 3], b: [3, 5]}", ("matmul: {id: t, from: [a, b]}",), (4, 5), 4 * 5 * 3),
    Case("matmul", "{q: [2, 6, 4], k: [2, 7, 4]}", ("matmul: {id: t, from: [q, k], transpose_b: true}",), (2, 6, 7),
         2 * 6 * 7 * 4),
    Case("matmul", "{a: [1, 5, 3], b: [4, 5, 2]}", ("matmul: {id: t, from: [a, b], transpose_a: true}",), (4, 3, 2),
         4 * 3 * 2 * 5),
    Case("matmul", "{a: [2, 3, 4, 5], b: [2, 1, 6, 4]}",
         ("matmul: {id: t, from: [a, b], transpose_a: true, transpose_b: true}",), (2, 3, 5, 6), 2 * 3 * 5 * 6 * 4),
    one("mul_scalar", [3, 4], "value: 0.125", (3, 4)), one("mul_scalar", [5], "value: -2", (5,)),
    one("mul_scalar", [2, 3, 4], "value: 3.5", (2, 3, 4)),
    one("add_scalar", [3, 4], "value: 1", (3, 4)), one("add_scalar", [5], "value: -0.5", (5,)),
    one("add_scalar", [2, 3, 4], "value: 1e-3", (2, 3, 4)),
    # --- attention: MACs = projections (multihead_attention) + QK^T + AV ---------------------------------------------
    one("multihead_attention", [5, 8], "heads: 2", (5, 8), 3 * 5 * 8 * 8 + 5 * 5 * 8 + 5 * 5 * 8 + 5 * 8 * 8),
    one("multihead_attention", [7, 12], "heads: 3, bias: false, dropout: 0.1", (7, 12),
        3 * 7 * 12 * 12 + 2 * 7 * 7 * 12 + 7 * 12 * 12),
    Case("multihead_attention", "{x: [6, 5]}", ("linear: {out: 4}", "multihead_attention: {id: t, heads: 1}"),
         (6, 4), 4 * 6 * 4 * 4 + 2 * 6 * 6 * 4),
    Case("scaled_dot_product_attention", "{q: [2, 5, 4], k: [2, 6, 4], v: [2, 6, 3]}",
         ("scaled_dot_product_attention: {id: t, from: [q, k, v]}",), (2, 5, 3), 2 * 5 * 6 * 4 + 2 * 5 * 6 * 3),
    Case("scaled_dot_product_attention", "{x: [5, 8]}",
         ("scaled_dot_product_attention: {id: t, from: [x, x, x], heads: 2, causal: true}",), (5, 8),
         5 * 5 * 8 + 5 * 5 * 8),
    Case("scaled_dot_product_attention", "{q: [3, 6, 4], k: [3, 6, 4], v: [3, 6, 4]}",
         ("scaled_dot_product_attention: {id: t, from: [q, k, v], causal: true}",), (3, 6, 4), 2 * 3 * 6 * 6 * 4),
    Case("scaled_dot_product_attention", "{q: [4, 6], k: [7, 6], v: [7, 10]}",
         ("scaled_dot_product_attention: {id: t, from: [q, k, v], heads: 2}",), (4, 10), 4 * 7 * 6 + 4 * 7 * 10),
    Case("scaled_dot_product_attention", "{q: [4, 6], k: [7, 6], v: [7, 10]}",
         ("scaled_dot_product_attention: {id: t, from: [q, k, v], causal: true}",), (4, 10), 4 * 7 * 6 + 4 * 7 * 10),
]


def randomise(module: Any, seed: int) -> None:
    """Non-trivial weights and statistics everywhere, so that no emitted term can hide behind a zero or a one."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            values = torch.rand(t.shape, generator=gen) * 0.8 + 0.2 if name.endswith("running_var") else \
                torch.randn(t.shape, generator=gen) * 0.5
            t.copy_(values)
