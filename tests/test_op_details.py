"""Op facts beyond the contract: the papers' counts (LeNet-5), deformable convolution against a loop reference,
module layouts, the TensorFlow SAME rule, exact adaptive windows, and the refusals of invalid configurations.
"""

from __future__ import annotations

import numpy as np
import pytest

from archc.compiler import compile_text
from archc.errors import SpecError, UsageError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from op_cases import CASES, Case, one, randomise  # noqa: E402

from archc.emit.onnx_export import export_onnx  # noqa: E402
from archc.emit.torch_module import build_module  # noqa: E402

REFUSALS = [
    (one("conv_transpose", [3, 5, 5], "out: 4, k: 3, groups: 2", ()), "E303", "divisible by 2"),
    (one("conv_transpose", [2, 5, 5], "out: 2, k: 3, s: 2, output_padding: 2", ()), "E306",
     "below max(stride, dilation) = 2; found 2"),
    (one("conv_transpose", [2, 3, 3], "out: 2, k: 2, p: 3", ()), "E304", "crops the whole output"),
    (Case("deform_conv", "{x: [4, 7, 7]}", ("conv: {id: off, out: 9, k: 3, p: 1}",
                                            "deform_conv: {id: t, from: [x, off], out: 6, k: 3, p: 1}"), ()),
     "E306", "[18, 7, 7]"),
    (Case("deform_conv", "{x: [4, 7]}", ("conv: {id: off, out: 6, k: 3, p: 1}",
                                         "deform_conv: {id: t, from: [x, off], out: 6, k: 3, p: 1}"), ()),
     "E305", "[C, H, W]"),
    (Case("deform_conv", "{x: [4, 7, 7]}", ("conv: {id: off, out: 18, k: 3, p: 1}",
                                            "deform_conv: {id: t, from: [x, off], out: 6, k: 3, p: 1, "
                                            "offset_groups: 3}"), ()), "E303", "offset_groups=3"),
    (Case("conv_table", "{x: [3, 8, 8]}", ("conv_table: {id: t, k: 3, connections: [[0, 3]]}",), ()), "E306",
     "input map 3"),
    (Case("conv_table", "{x: [3, 8, 8]}", ("conv_table: {id: t, k: 3, connections: [[1, 1]]}",), ()), "E306",
     "twice"),
    (one("gated_conv", [3, 8, 8], "out: 4, k: 3, groups: 3", ()), "E303", "divisible by 3"),
    (Case("maxunpool", "{x: [3, 8, 8]}", ("maxpool: {k: 2, id: pooled}",
                                          "maxunpool: {id: t, from: [pooled, x], k: 3}"), ()), "E306",
     "[3, 2, 2]"),
    (one("upsample", [3, 8], "scale: 2, mode: bilinear", ()), "E305", "use mode linear"),
    (one("upsample", [3, 8, 8], "scale: 2, size: 16", ()), "E103", "exactly one of"),
    (one("upsample", [3, 8, 8], "scale: 0.05", ()), "E306", "empty output"),
    (one("pixel_shuffle", [6, 4, 4], "r: 2", ()), "E306", "divisible by 4"),
    (one("subsample", [3, 1, 5], "k: 2", ()), "E304", "window 2"),
    (one("group_norm", [6, 4, 4], "groups: 4", ()), "E303", "divisible by 4"),
    (one("instance_norm", [6], "", ()), "E305", "[C, L]"),
    (one("channel_shuffle", [6, 4], "groups: 4", ()), "E303", "divisible by 4"),
    (one("reshape", [3, 4, 4], "shape: [5, -1]", ()), "E306", "not divisible by 5"),
    (one("reshape", [3, 4, 4], "shape: [-1, -1]", ()), "E306", "at most one -1"),
    (one("reshape", [3, 4, 4], "shape: [3, 4]", ()), "E306", "expects 12 elements"),
    (one("permute", [3, 4, 4], "axes: [0, 1, 1]", ()), "E306", "exactly once"),
    (one("repeat", [2, 3], "shape: [2, 6]", ()), "E306", "only size-1 axes"),
    (one("repeat", [2, 3], "times: [2]", ()), "E306", "one entry per axis"),
    (one("squeeze", [3, 2, 1], "axes: [1]", ()), "E306", "size 2"),
    (one("squeeze", [1], "axes: [0]", ()), "E306", "every axis"),
    (one("unsqueeze", [3], "axes: [3]", ()), "E306", "below the output rank 2"),
    (one("slice", [4, 5], "axis: 1, start: 3, end: 3", ()), "E306", "empty"),
    (one("slice", [4, 5], "axis: 2", ()), "E306", "out of range"),
    (one("mean", [4, 5], "axes: [0, 1]", ()), "E306", "keepdims"),
    (one("max", [4, 5], "axes: [1, -1]", ()), "E306", "same axis twice"),
    (one("log_softmax", [4, 5], "axis: 2", ()), "E306", "out of range"),
    (one("softmax", [4, 5], "axis: -3", ()), "E306", "out of range"),
    (Case("embedding", "{x: [16]}", ("embedding: {id: t, num: 20, dim: 8}",), ()), "E306", "dtype: int64"),
    (Case("embedding", "{x: {shape: [16], dtype: int64}}", ("embedding: {id: t, num: 20, dim: 8, padding_idx: 20}",),
          ()), "E306", "padding_idx 20"),
    (Case("sub", "{a: [3, 4], b: [3, 4], c: [3, 4]}", ("sub: {id: t, from: [a, b, c]}",), ()), "E204",
     "takes 2 inputs"),
    (one("dropout2d", [5], "", ()), "E305", "[C, L]"),
    (one("select", [4, 5], "axis: 1, index: 5", ()), "E306", "select index 5 is outside axis 1 of [4, 5] (size 5)"),
    (one("select", [4], "", ()), "E306", "select from [4] would leave no axis but the batch; use `slice` to keep one"),
    (one("roll", [4, 5], "shifts: [1, 2], axes: [0]", ()), "E103", "give one shift per axis: 2 shifts for 1 axes"),
    (one("roll", [4, 5], "shifts: [1], axes: [2]", ()), "E306", "roll axis 2 is out of range for [4, 5] (rank 2)"),
    (one("expand", [2, 3], "shape: [4, 3]", ()), "E306",
     "expand to shape [4, 3] expands only size-1 axes; [2, 3] has size 2 where 4 is asked"),
    (one("expand", [1, 3], "shape: [4]", ()), "E306", "expand expects one entry per axis of [1, 3] (2); found [4]"),
    (one("zeropad", [4, 5], "p: [1, 2, 3], axes: [0]", ()), "E306", "p has 3 values [1, 2, 3]"),
    (one("zeropad", [4, 5], "p: 1, axes: [0, -2]", ()), "E306", "zeropad axes [0, -2] name the same axis twice"),
    (one("layernorm", [8], "channels_first: true", ()), "E305",
     "layernorm expects its input with channels_first as [C, L], [C, H, W] or [C, D, H, W] (batch implicit); found "
     "[8] (rank 1)"),
    (one("layernorm", [8, 4, 4], "channels_first: true, dims: 2", ()), "E306",
     "channels_first normalises the channels, one axis; found dims=2"),
    (one("sum", [3], "axes: [0]", ()), "E306", "sum over every axis of [3] leaves none; use `keepdims: true`"),
    (one("drop_path", [3], "p: 1.5", ()), "E103", "p"),
]


@pytest.mark.parametrize(("case", "code", "phrase"), REFUSALS, ids=[f"{c.op}-{i}" for i, (c, _, _) in
                                                                     enumerate(REFUSALS)])
def test_op_refuses_invalid_configurations(case: Case, code: str, phrase: str) -> None:
    with pytest.raises(SpecError) as info:
        compile_text(case.text, f"<{case.op}>")
    (diag,) = [d for d in info.value.diagnostics if d.path == "t"] or info.value.diagnostics
    assert diag.code == code, diag.format()
    assert phrase in diag.message, diag.format()


def test_deform_conv_needs_opset_19() -> None:
    compiled = compile_text(CASES[[c.op for c in CASES].index("deform_conv")].text)
    with pytest.raises(UsageError, match="opset 19"):
        export_onnx(compiled, build_module(compiled).state_dict(), opset=18)


def test_lenet_c3_counts_match_the_paper() -> None:
    compiled = compile_text(CASES[[c.op for c in CASES].index("conv_table")].text)
    cost = compiled.graph.node("t").meta["cost"]
    assert (cost.params, cost.connections) == (1_516, 151_600)
    module = build_module(compiled)
    assert set(module.state_dict()) == {"t.weight", "t.bias"}  # the mask is a non-persistent buffer
    mask = module.t.mask
    assert mask.shape == (16, 6, 1, 1) and int(mask.sum()) == 60


def test_lenet_s2_subsample_counts_match_the_paper() -> None:
    cost = compile_text(one("subsample", [6, 28, 28], "k: 2", (6, 14, 14)).text).graph.node("t").meta["cost"]
    assert (cost.params, cost.connections) == (12, 5_880)


def bilinear(plane: np.ndarray, y: float, x: float) -> np.ndarray:
    """torchvision's deform_conv2d sampling: zero beyond one pixel outside, out-of-range corners count zero."""
    h, w = plane.shape[-2:]
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return np.zeros(plane.shape[:-2])
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    total = np.zeros(plane.shape[:-2])
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total = total + wy * wx * plane[..., yy, xx]
    return total


def deform_reference(x: np.ndarray, off: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, p) -> np.ndarray:
    """Deformable convolution v1 written out loop by loop (Dai et al. 2017, torchvision's offset layout)."""
    n, c, _, _ = x.shape
    o, cg, kh, kw = weight.shape
    ho, wo = off.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = (v if isinstance(v, list) else [v, v] for v in (p.s, p.p, p.d))
    per_og = c // p.offset_groups
    cols = np.zeros((n, c, kh, kw, ho, wo))
    for b in range(n):
        for g in range(p.offset_groups):
            chans = x[b, g * per_og:(g + 1) * per_og]
            for i in range(kh):
                for j in range(kw):
                    k = 2 * (i * kw + j) + g * 2 * kh * kw
                    for h in range(ho):
                        for w in range(wo):
                            y = h * sh - ph + i * dh + off[b, k, h, w]
                            xx = w * sw - pw + j * dw + off[b, k + 1, h, w]
                            cols[b, g * per_og:(g + 1) * per_og, i, j, h, w] = bilinear(chans, y, xx)
    out = np.zeros((n, o, ho, wo))
    opg = o // p.groups
    for oc in range(o):
        g = oc // opg
        out[:, oc] = np.einsum("ncijhw,cij->nhw", cols[:, g * cg:(g + 1) * cg], weight[oc])
    return out + (bias.reshape(1, -1, 1, 1) if bias is not None else 0)


@pytest.mark.parametrize("case", [c for c in CASES if c.op == "deform_conv"], ids=lambda c: c.label)
def test_deform_conv_matches_a_loop_reference(case: Case) -> None:
    compiled = compile_text(case.text)
    module = build_module(compiled).eval()
    randomise(module, 7)
    x = torch.randn(2, *compiled.graph.node("x").out_type.shape)
    p = compiled.graph.node("t").params
    with torch.no_grad():
        offsets = module.off(x)
        got = module(x).numpy()
    bias = module.t.bias.detach().numpy() if p.bias else None
    want = deform_reference(x.numpy(), offsets.numpy(), module.t.weight.detach().numpy(), bias, p)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert float(offsets.abs().max()) > 1.0  # offsets large enough to move taps by whole pixels, some off the map


def test_gated_conv_holds_conv_and_gate_submodules() -> None:
    module = build_module(compile_text(one("gated_conv", [3, 8, 8], "out: 4, k: 3, p: 1", (4, 8, 8)).text))
    assert sorted(module.state_dict()) == ["t.conv.bias", "t.conv.weight", "t.gate.bias", "t.gate.weight"]


def test_same_upper_matches_tensorflow_rule() -> None:
    # TensorFlow SAME: output ceil(n / s); padding total max((out - 1) * s + k - n, 0), the odd pixel after
    from archc.ops.conv import resolve_padding

    for n, k, s in [(10, 3, 2), (9, 4, 2), (7, 3, 2), (8, 1, 3), (5, 5, 1)]:
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        assert resolve_padding("same_upper", (k,), (s,), (1,), (n,)) == [(total // 2, total - total // 2)]
        compiled = compile_text(one("conv", [1, n], f"out: 1, k: {k}, s: {s}, p: same_upper", (1, out)).text)
        assert compiled.graph.node("t").out_type.shape == (1, out)


def test_adaptive_pooling_windows_are_exact_when_sizes_do_not_divide() -> None:
    # 7 -> 3: windows [0, 3), [2, 5), [4, 7) overlap; the export slices them one by one
    compiled = compile_text(one("adaptive_maxpool", [1, 7], "size: 3", (1, 3)).text)
    module = build_module(compiled).eval()
    x = np.arange(7, dtype=np.float32)[::-1].copy().reshape(1, 1, 7)
    model = export_onnx(compiled, module.state_dict(), dynamic="batch")
    (got,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert got.tolist() == [[[6.0, 4.0, 2.0]]]
