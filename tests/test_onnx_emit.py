"""The ONNX emitter: every op against PyTorch in onnxruntime, folding, dynamic axes, refusals, checks, writing."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from emit_specs import MODEL_TENSORS, TRANSFORMER

from archc.build import write_onnx
from archc.compiler import Compiled, compile_file, compile_text
from archc.emit import onnx_export
from archc.emit.onnx_builder import OnnxBuilder, weightless
from archc.emit.onnx_export import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    export_onnx,
    ir_version_for,
    verify_onnx,
)
from archc.emit.onnx_verify import (
    VerificationError,
    VerifyReport,
    check_model,
    random_inputs,
    session,
    shape_mismatches,
)
from archc.emit.torch_module import build_module
from archc.errors import UsageError
from archc.ir.types import TensorType
from archc.ops.registry import all_ops, get_op

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# --- specs: together they use every op --------------------------------------------------------------------------------
IMAGE_OPS = """
name: image_ops
inputs: {image: [3, 14, 14]}
outputs: [acts, pools, merged, probs, pooled]
body:
  - conv: {id: stem, out: 8, k: 3, p: 1}
  - bn: {id: stem_bn}
  - relu
  - conv: {id: dw, k: 3, p: 1, depthwise: true, bias: false}
  - bn: {id: dw_bn, eps: 0.001}
  - relu6
  - conv: {id: grouped, out: 8, k: 3, p: same, d: 2, groups: 2}
  - bn: {id: plain_bn, affine: false}
  - prelu: {id: act}
  - conv: {id: rect, out: 8, k: [1, 3], p: [0, 1], bias: false}
  - conv: {id: tf, out: 8, k: 2, p: same_upper}
  - hardswish
  - hardsigmoid
  - silu
  - gelu
  - gelu: {approximate: tanh}
  - leaky_relu: {slope: 0.2}
  - tanh
  - sigmoid
  - lrn: {id: lrn5, size: 5, alpha: 0.1, beta: 0.75, k: 2.0}
  - lrn: {id: acts, size: 4, alpha: 0.1, beta: 0.75, k: 2.0}
  - maxpool: {id: pool1, k: 3, s: 2, ceil_mode: true}
  - avgpool: {id: pool2, k: 2, s: 2, p: 1, ceil_mode: true, count_include_pad: false}
  - zeropad: {id: pools, p: [0, 1, 1, 0]}
  - residual:
      id: block
      body:
        - conv: {id: conv, out: 16, k: 3, s: 2, p: 1}
        - bn: {id: bn}
      shortcut: zero_pad
  - branches:
      id: mix
      paths:
        left: {conv: {out: 4, k: 1}}
        right: [{conv: {out: 4, k: 3, p: 1}}, {sigmoid: {}}]
  - mul: {id: merged, from: [mix.left, mix.right]}
  - layernorm: {id: ln, dims: 2}
  - conv: {id: mix_conv, out: 8, k: 1}
  - adaptive_avgpool: {id: pool3, size: 2}
  - flatten
  - dropout: {p: 0.3}
  - linear: {id: fc, out: 5}
  - softmax: {id: probs}
  - global_avgpool: {id: gap, keepdims: false, from: block}
  - linear: {id: pooled, out: 3}
"""

MULTI_IO = """
name: multi_io
inputs:
  signal: [4, 20]
  features: [6]
outputs: {sequence: head, vector: scores, again: scores}
body:
  - conv: {id: c1, out: 8, k: 5, s: 2, p: 2, from: signal}
  - bn: {id: b1}
  - relu: {id: r1}
  - maxpool: {id: mp, k: 2, s: 2}
  - avgpool: {id: ap, k: 2, s: 2, ceil_mode: true}
  - conv: {id: head, out: 3, k: 2, s: 2, p: same_upper}
  - global_avgpool: {id: gap, from: r1}
  - flatten: {id: flat}
  - linear: {id: proj, out: 6}
  - bn: {id: feat_bn, from: features}
  - add: {id: sum, from: [proj, feat_bn, features]}
  - concat: {id: cat, from: [sum, proj]}
  - linear: {id: scores, out: 4}
"""

VOLUME = """
name: volume
inputs: {voxels: [2, 6, 8, 8]}
body:
  - conv: {id: c3d, out: 4, k: 3, p: 1}
  - bn: {id: bn3d}
  - relu
  - lrn: {size: 3}
  - maxpool: {k: 2}
  - adaptive_avgpool: {id: pool, size: [2, 3, 3]}
  - flatten
  - linear: {id: fc, out: 3, bias: false}
"""

TOKENS = """
name: tokens
inputs: {tokens: [5, 16]}
body:
  - linear: {id: q, out: 16}
  - layernorm: {id: ln, dims: 1}
  - gelu
  - prelu: {id: slopes}
  - prelu: {id: slope, shared: true}
  - layernorm: {id: ln_plain, affine: false}
  - linear: {id: out, out: 8, bias: false}
  - softmax: {axis: -1}
"""

EXTRA_OPS = """
name: extra_ops
inputs: {image: [6, 12, 12], ids: {shape: [7], dtype: int64}}
outputs: [features, tokens, squeezed, pooled]
body:
  - conv_table: {id: table, k: 3, p: 1, connections: [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]], from: image}
  - elu: {alpha: 0.5}
  - gated_conv: {id: gated, out: 8, k: 3, p: 1}
  - group_norm: {id: gn, groups: 2}
  - mish
  - channel_shuffle: {groups: 2}
  - scale: {id: sc, bias: true}
  - selu
  - dropout2d: {p: 0.2}
  - maxpool: {k: 2, s: 2}
  - conv: {id: c2, out: 8, k: 3, p: 1}
  - maxunpool: {id: unpool, from: [c2, gated], k: 2, s: 2}
  - instance_norm: {id: inorm, affine: true}
  - subsample: {id: sub2, k: 2}
  - conv_transpose: {id: up, out: 4, k: 4, s: 2, p: 1}
  - upsample: {scale: 2, mode: bilinear}
  - pixel_shuffle: {r: 2}
  - adaptive_maxpool: {size: [5, 7]}
  - identity: {id: features}
  - global_maxpool: {id: gmp, keepdims: false, from: gated}
  - unsqueeze: {id: row, axes: [0]}
  - embedding: {id: emb, num: 10, dim: 8, from: ids}
  - sub: {id: diff, from: [emb, row]}
  - maximum: {from: [diff, emb]}
  - permute: {axes: [1, 0]}
  - repeat: {times: [1, 2]}
  - slice: {axis: 1, start: 1, end: 13, step: 2}
  - reshape: {shape: [4, 12]}
  - log_softmax: {id: tokens, axis: -1}
  - mean: {axes: [1, 2], keepdims: true, from: inorm}
  - squeeze: {id: squeezed, axes: [1, 2]}
  - max: {id: pooled, axes: [0], keepdims: true}
"""

DEFORM = """
name: deform
inputs: {x: [3, 8, 8]}
body:
  - conv: {id: off, out: 18, k: 3, p: 1}
  - deform_conv: {id: t, from: [x, off], out: 4, k: 3, p: 1}
"""

ALL_SPECS = {"image_ops": IMAGE_OPS, "multi_io": MULTI_IO, "volume": VOLUME, "tokens": TOKENS,
             "extra_ops": EXTRA_OPS, "deform": DEFORM, "transformer": TRANSFORMER, "model_tensors": MODEL_TENSORS}
OPSET_SPECS = (IMAGE_OPS, TOKENS, EXTRA_OPS, TRANSFORMER)
"""Specs exported at every supported opset (deform_conv needs opset 19, and refuses below, tested apart)."""


def _compile(text: str) -> Compiled:
    return compile_text(text)


def _module(c: Compiled, seed: int = 0) -> torch.nn.Module:
    """A module with random weights: per-channel scales, shifts and batch-norm statistics far from a fresh 1 and 0."""
    torch.manual_seed(seed)
    module = build_module(c).eval()
    with torch.no_grad():
        for name, value in module.named_parameters():
            if value.ndim == 1 and name.endswith("weight"):
                value.uniform_(0.5, 1.5)
            elif value.ndim == 1 and name.endswith("bias"):
                value.uniform_(-0.5, 0.5)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.5, 0.5)
    return module


def _roundtrip(text: str, **kwargs: Any) -> tuple[Compiled, onnx.ModelProto, VerifyReport]:
    c = _compile(text)
    module = _module(c)
    model = export_onnx(c, module.state_dict(), **kwargs)
    report = verify_onnx(c, model, module, dynamic=kwargs.get("dynamic", "batch"))
    return c, model, report


def _op_types(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def test_the_specs_cover_every_op() -> None:
    used = {n.op for text in ALL_SPECS.values() for n in _compile(text).graph.nodes() if not n.is_input}
    assert used == set(all_ops())


# --- numeric agreement with PyTorch -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALL_SPECS))
@pytest.mark.parametrize("fold", [True, False])
def test_matches_pytorch(name: str, fold: bool) -> None:
    c, model, report = _roundtrip(ALL_SPECS[name], fold_bn=fold)
    cases = {d.case for d in report.diffs}
    assert cases == {"batch 1", "batch 2"}
    assert len(report.diffs) == 2 * len(c.graph.outputs)
    assert report.ok and report.max_rel <= 1e-4
    bns = sum(1 for n in c.graph.nodes() if n.op == "bn")
    folded = sum(1 for n in c.graph.nodes()
                 if n.op == "bn" and c.graph.node(c.graph.input_names(n.name)[0]).op == "conv")
    assert _op_types(model).get("BatchNormalization", 0) == (bns - folded if fold else bns)


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_every_supported_opset(opset: int) -> None:
    for text in OPSET_SPECS:
        _, model, report = _roundtrip(text, opset=opset)
        assert model.opset_import[0].version == opset
        assert model.ir_version == ir_version_for(opset) <= 13
        assert report.ok and report.max_rel <= 1e-4
        if "gelu" in text:
            assert ("Gelu" in _op_types(model)) == (opset >= 20)


def test_deform_conv_needs_opset_19() -> None:
    with pytest.raises(UsageError, match="cannot export layer t to ONNX: deform_conv exports as DeformConv, which "
                                         "needs opset 19"):
        export_onnx(_compile(DEFORM), opset=18)


def test_contract_default() -> None:
    model = export_onnx(_compile(TOKENS))
    assert DEFAULT_OPSET == 21
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 21)]
    assert model.ir_version == 10
    assert export_onnx(_compile(TOKENS), opset=None).opset_import[0].version == 21
    with pytest.raises(UsageError, match="opsets 18 to 26"):
        export_onnx(_compile(TOKENS), opset=27)


# --- graph structure --------------------------------------------------------------------------------------------------
def test_names_shapes_and_value_infos() -> None:
    c, model, _ = _roundtrip(MULTI_IO)
    g = model.graph
    assert [i.name for i in g.input] == ["signal", "features"]
    assert [o.name for o in g.output] == ["sequence", "vector", "again"]
    dims = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in [*g.input, *g.output, *g.value_info]}
    assert dims["signal"] == ["batch", 4, 20]
    assert dims["sequence"] == ["batch", 3, 2]
    assert dims["again"] == ["batch", 4]
    # every layer's result is declared with archc's shape; c1 was folded into b1's result
    for node in c.graph.nodes():
        if node.is_input or node.name in ("head", "scores", "c1"):
            continue
        assert dims[node.name] == ["batch", *node.out_type.shape], node.name
    names = {n.name: n for n in g.node}
    assert names["c1"].op_type == "Conv" and list(names["c1"].output) == ["b1"]
    assert names["proj"].op_type == "Gemm"
    assert list(names["again/Identity"].input) == ["vector"]
    assert "c1.weight" in {t.name for t in g.initializer}
    assert shape_mismatches(model) == []


PASS_THROUGH = """
name: pass_through
inputs: {x: [6]}
outputs: {early: drop_in, logits: fc2, late: tap}
body:
  - dropout: {id: drop_in, p: 0.5}
  - linear: {id: fc1, out: 5}
  - identity: {id: tap}
  - dropout: {id: drop, p: 0.2}
  - linear: {id: fc2, out: 3}
"""


def test_pass_through_layers_make_no_nodes() -> None:
    """Dropout (at inference) and identity layers are wired through, as torch.onnx.export does; a model output that
    is such a layer still gets its own name through one Identity node."""
    _, model, report = _roundtrip(PASS_THROUGH)
    g = model.graph
    assert [(n.op_type, n.name, list(n.input), list(n.output)) for n in g.node if n.op_type != "Gemm"] == [
        ("Identity", "early/Identity", ["x"], ["early"]),
        ("Identity", "late/Identity", ["fc1"], ["late"]),
    ]
    gemms = [n for n in g.node if n.op_type == "Gemm"]
    assert [(n.name, n.input[0]) for n in gemms] == [("fc1", "x"), ("fc2", "fc1")]
    assert [o.name for o in g.output] == ["early", "logits", "late"]
    assert report.ok and report.max_abs < 1e-5 and len(report.diffs) == 6  # 3 outputs at batch 1 and 2


MIXED_CEIL = """
name: mixed_ceil
inputs: {{x: [2, 5, 6]}}
body:
  - {pool}
  - flatten
"""


@pytest.mark.parametrize("pool", ["maxpool: {k: 3, p: 1, s: 3, ceil_mode: true}",
                                  "avgpool: {k: 3, p: 1, s: 3, ceil_mode: true, count_include_pad: false}"])
def test_ceil_mode_gaining_and_losing_windows_on_different_axes(pool: str) -> None:
    """Width 6 gains a window under ceil_mode; on height 5 PyTorch's rule drops the one ONNX's ceil would add.
    Floor mode with extra end padding on the width gives PyTorch's windows."""
    c, model, report = _roundtrip(MIXED_CEIL.format(pool=pool))
    (node,) = [n for n in model.graph.node if n.op_type in ("MaxPool", "AveragePool")]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["ceil_mode"] == 0
    assert attrs["pads"] == [1, 1, 1, 2]  # begin h, w; end h, w: the width's end padded one more
    assert c.graph.node("0").out_type.shape == (2, 2, 3)
    assert (5 + 1 + 1 - 3) // 3 + 1 == 2 and (6 + 1 + 2 - 3) // 3 + 1 == 3  # floor mode gives those sizes
    if node.op_type == "AveragePool":
        assert attrs["count_include_pad"] == 0
    assert report.ok and report.max_abs < 1e-5


def test_ceil_mode_on_mixed_axes_with_counted_padding_is_refused() -> None:
    """PyTorch counts padded zeros inside the padded input but not the windows' overhang; ONNX cannot say that."""
    c = _compile(MIXED_CEIL.format(pool="avgpool: {k: 3, p: 1, s: 3, ceil_mode: true}"))
    with pytest.raises(UsageError, match="ONNX cannot express both"):
        export_onnx(c, _module(c).state_dict())


def test_helper_nodes_are_named_under_their_layer() -> None:
    _, model, _ = _roundtrip(TOKENS)
    names = [(n.name, n.op_type) for n in model.graph.node]
    assert names[:2] == [("q/MatMul", "MatMul"), ("q", "Add")]
    assert ("ln", "LayerNormalization") in names
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    assert inits["q.weight"] == [16, 16] and inits["out.weight"] == [16, 8]  # stored transposed for MatMul
    assert inits["ln_plain/ones"] == [1, 1]


def test_shape_check_catches_a_wrong_declaration() -> None:
    _, model, _ = _roundtrip(TOKENS)
    vi = next(v for v in model.graph.value_info if v.name == "ln")
    vi.type.tensor_type.shape.dim[2].dim_value = 17
    assert shape_mismatches(model) == ["ln: ONNX infers ['batch', 5, 16], archc says ['batch', 5, 17]"]
    with pytest.raises(VerificationError, match="shape inference disagrees"):
        check_model(model)
    assert next(v for v in model.graph.value_info if v.name == "ln").type.tensor_type.shape.dim[2].dim_value == 17


WEIGHTY = """
name: weighty
inputs: {x: [16, 8, 8]}
body:
  - conv: {id: a, out: 64, k: 3, p: 1}
  - relu
  - flatten
  - linear: {id: fc, out: 10}
"""


def test_checks_run_on_a_weightless_copy() -> None:
    model = export_onnx(compile_text(WEIGHTY))
    skeleton = weightless(model)
    inits = {t.name: (t.data_type, list(t.dims)) for t in model.graph.initializer}
    assert inits["a.weight"] == (onnx.TensorProto.FLOAT, [64, 16, 3, 3])
    declared = {vi.name: (vi.type.tensor_type.elem_type, [d.dim_value for d in vi.type.tensor_type.shape.dim])
                for vi in skeleton.graph.input}
    assert declared == {"x": (onnx.TensorProto.FLOAT, [0, 16, 8, 8]), "a.weight": inits["a.weight"],
                        "fc.weight": inits["fc.weight"]}
    assert [t.name for t in skeleton.graph.initializer] == ["a.bias", "fc.bias"]  # small ones are kept
    assert skeleton.graph.node == model.graph.node and skeleton.graph.value_info == model.graph.value_info
    assert skeleton.opset_import == model.opset_import and skeleton.ir_version == model.ir_version
    assert skeleton.ByteSize() < 2_000 < 200_000 < model.ByteSize()  # nodes carry their layer path and position
    check_model(model)
    model.graph.initializer[0].dims[0] = 63  # a weight of the wrong shape is still caught without its data
    with pytest.raises(VerificationError, match=r"node name: a\): .*differ in dimension 1: \(63\) vs \(64\)"):
        check_model(model)

class _Tracked(np.ndarray):
    """An array that can be weakly referenced (plain ndarrays cannot)."""


def _owned(values: np.ndarray) -> _Tracked:
    """A copy that owns its memory: numpy's views of it keep it alive (a view's base is the memory's owner)."""
    out = _Tracked(values.shape, values.dtype)
    out[...] = values
    return out


def test_release_drops_each_layers_weights_once_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_text(WEIGHTY)
    state = {k: v.detach().numpy().copy() for k, v in _module(c).state_dict().items()}
    want = export_onnx(c, dict(state)).SerializeToString()
    tracked = {k: _owned(v) for k, v in state.items()}
    alive = {k: weakref.ref(v) for k, v in tracked.items()}
    del state
    seen: dict[str, list[str]] = {}
    emit = onnx_export._Export.emit

    def spy(self: Any, node: Any, inputs: list[str], target: str) -> str:
        seen[node.name] = sorted(k for k, ref in alive.items() if ref() is not None)
        return emit(self, node, inputs, target)

    monkeypatch.setattr(onnx_export._Export, "emit", spy)
    model = export_onnx(c, tracked, release=True)
    assert tracked == {} and model.SerializeToString() == want
    assert seen["a"] == ["a.bias", "a.weight", "fc.bias", "fc.weight"]
    assert seen["fc"] == ["fc.bias", "fc.weight"]  # conv a's weights were dropped once a was in the model
    assert [k for k, ref in alive.items() if ref() is not None] == []
    with pytest.raises(TypeError, match="release=True empties the state_dict"):
        export_onnx(c, MappingProxyType(dict(tracked)), release=True)


def test_export_without_verification_releases_the_weights_and_writes_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_file(SPECS / "lenet5.yaml")
    released: list[bool] = []
    export = onnx_export.export_onnx

    def spy(*args: Any, **kwargs: Any) -> onnx.ModelProto:
        released.append(kwargs["release"])
        return export(*args, **kwargs)

    monkeypatch.setattr(onnx_export, "export_onnx", spy)
    quick = write_onnx(c, tmp_path / "quick.onnx", verify=False)
    checked = write_onnx(c, tmp_path / "checked.onnx", verify=True)  # the module is kept for onnxruntime's check
    assert released == [True, False] and checked.verify.ok
    assert (tmp_path / "quick.onnx").read_bytes() == (tmp_path / "checked.onnx").read_bytes() == quick.data

def test_builder_graph_is_built_in_place() -> None:
    model = onnx.ModelProto()
    b = OnnxBuilder(model, 21)
    b.begin_layer("layer1.0.conv1", [(3, 4)], TensorType((3, 4)), (3, 4))
    w = b.initializer("weight", np.ones((2, 2), np.float32))
    y = b.node("Add", ["x", b.node("Relu", ["x"])])
    b.end_layer(y, "layer1.0.conv1")
    assert w == "layer1.0.conv1.weight"
    assert [(n.name, list(n.input), list(n.output)) for n in model.graph.node] == [
        ("layer1.0.conv1/Relu", ["x"], ["layer1.0.conv1/Relu"]),
        ("layer1.0.conv1", ["x", "layer1.0.conv1/Relu"], ["layer1.0.conv1"]),
    ]
    assert model.graph.initializer[0].raw_data == np.ones((2, 2), np.float32).tobytes()


def test_determinism() -> None:
    c = compile_file(SPECS / "resnet50.yaml")
    state = _module(c).state_dict()
    first = export_onnx(c, state).SerializeToString()
    second = export_onnx(c, dict(state)).SerializeToString()
    assert first == second


# --- batch norm folding -----------------------------------------------------------------------------------------------
def test_fold_only_when_the_conv_feeds_only_the_bn() -> None:
    text = """
name: shared
inputs: {x: [3, 8, 8]}
outputs: [bn, side]
body:
  - conv: {id: conv, out: 4, k: 3, p: 1}
  - bn: {id: bn}
  - relu: {id: side, from: conv}
"""
    _, model, report = _roundtrip(text, fold_bn=True)
    assert _op_types(model) == {"Conv": 1, "BatchNormalization": 1, "Relu": 1}
    assert report.ok


# --- dynamic axes -----------------------------------------------------------------------------------------------------
def test_dynamic_hw() -> None:
    text = (IMAGE_OPS.replace("adaptive_avgpool: {id: pool3, size: 2}", "adaptive_avgpool: {id: pool3, size: 1}")
            .replace("  - layernorm: {id: ln, dims: 2}\n", ""))
    _, model, report = _roundtrip(text, dynamic="batch,hw")
    assert {d.case for d in report.diffs} == {"batch 1", "batch 2", "batch 2, 11x11"}
    assert report.ok and report.max_rel <= 1e-4
    dims = {vi.name: [d.dim_param or d.dim_value or None for d in vi.type.tensor_type.shape.dim]
            for vi in [*model.graph.input, *model.graph.value_info]}
    assert dims["image"] == ["batch", 3, "height", "width"]
    assert dims["stem_bn"] == ["batch", 8, None, None]
    assert dims["gap"] == ["batch", 16]


def test_dynamic_none_fixes_the_batch() -> None:
    _, model, report = _roundtrip(TOKENS, dynamic="none")
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 5, 16]
    assert {d.case for d in report.diffs} == {"batch 1"}


def test_adaptive_pool_not_dividing_is_exact_with_static_sizes() -> None:
    text = """
name: adaptive
inputs: {x: [2, 13, 10]}
body:
  - adaptive_avgpool: {id: pool, size: [6, 5]}
"""
    _, model, report = _roundtrip(text)
    types = _op_types(model)
    # 10 -> 5 divides: one AveragePool; 13 -> 6 does not: 6 windows (overlapping) averaged and joined
    assert types == {"AveragePool": 1, "Slice": 6, "ReduceMean": 6, "Concat": 1}
    assert report.ok and report.max_abs < 1e-6


def test_adaptive_pool_refused_with_dynamic_hw() -> None:
    text = IMAGE_OPS.replace("  - layernorm: {id: ln, dims: 2}\n", "")
    with pytest.raises(UsageError, match="cannot export layer pool3 to ONNX: adaptive_avgpool to 2 along an axis"):
        export_onnx(_compile(text), dynamic="batch,hw")


def test_size_dependent_weights_refused_with_dynamic_hw() -> None:
    with pytest.raises(UsageError, match=r"layer fc1 \(linear\) has weights sized by the input's spatial size"):
        export_onnx(compile_file(SPECS / "lenet5_modern.yaml"), dynamic="batch,hw")
    text = IMAGE_OPS.replace("adaptive_avgpool: {id: pool3, size: 2}", "adaptive_avgpool: {id: pool3, size: 1}")
    with pytest.raises(UsageError, match=r"layer ln \(layernorm\) has weights sized by the input's spatial size "
                                         r"\(18 parameters at the declared size, 50 at another\)"):
        export_onnx(_compile(text), dynamic="batch,hw")
    plain = text.replace("layernorm: {id: ln, dims: 2}", "layernorm: {id: ln, dims: 2, affine: false}")
    with pytest.raises(UsageError, match="cannot export layer ln to ONNX: layernorm over an axis whose size follows"):
        export_onnx(_compile(plain), dynamic="batch,hw")


def test_bad_dynamic_mode() -> None:
    with pytest.raises(UsageError, match="--dynamic 'hw'"):
        export_onnx(_compile(TOKENS), dynamic="hw")


# --- weights ----------------------------------------------------------------------------------------------------------
def test_weights_missing_or_extra() -> None:
    c = _compile(TOKENS)
    state = dict(build_module(c).state_dict())
    with pytest.raises(UsageError, match=r"the weights have entries no layer uses: extra\.weight"):
        export_onnx(c, {**state, "extra.weight": torch.zeros(1)})
    # float64 weights are cast to the layers' float32, as load_state_dict would
    module = _module(c)
    wide = {k: v.double().numpy() for k, v in module.state_dict().items()}
    assert verify_onnx(c, export_onnx(c, wide), module).max_rel <= 1e-4
    del state["ln.bias"]
    with pytest.raises(UsageError, match=r"the weights have no ln\.bias"):
        export_onnx(c, state)


# --- writing ----------------------------------------------------------------------------------------------------------
def test_write_with_weights_file(tmp_path: Path) -> None:
    c = _compile(MULTI_IO)
    module = _module(c, seed=3)
    weights = tmp_path / "state.pt"
    torch.save(module.state_dict(), weights)
    out = tmp_path / "model.onnx"
    result = write_onnx(c, out, weights_path=weights)
    assert result.data == out.read_bytes()
    assert result.verify.ok and result.verify.max_rel <= 1e-4
    assert "onnxruntime matches PyTorch (batch 1, batch 2): max abs diff" in result.describe(out)
    model = onnx.load(out)
    assert result.nodes == len(model.graph.node)
    feeds = random_inputs({n: c.graph.node(n).out_type for n in c.graph.inputs}, 2, seed=5)
    got = session(out.read_bytes()).run(None, feeds)
    with torch.no_grad():
        want = module(*(torch.from_numpy(feeds[n]) for n in c.graph.inputs))
    for o, t in zip(got, want, strict=True):
        np.testing.assert_allclose(o, t.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_onnx(c, out, weights_path=weights)


def test_write_refuses_bad_weights(tmp_path: Path) -> None:
    c = _compile(TOKENS)
    bad = tmp_path / "bad.pt"
    torch.save({"q.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(UsageError, match="the weights do not fit the spec"):
        write_onnx(c, tmp_path / "m.onnx", weights_path=bad)
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(UsageError, match="not a loadable state_dict"):
        write_onnx(c, tmp_path / "m.onnx", weights_path=tmp_path / "junk.pt")
    assert not (tmp_path / "m.onnx").exists()


def test_failed_verification_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tanh exported as a sigmoid: an ONNX graph that runs but disagrees with PyTorch
    monkeypatch.setattr(get_op("tanh"), "onnx", lambda b, p, inputs, *_: b.node("Sigmoid", [inputs[0]]))
    out = tmp_path / "m.onnx"
    with pytest.raises(VerificationError, match=r"onnxruntime disagrees with PyTorch.*nothing written"):
        write_onnx(_compile(IMAGE_OPS), out)
    assert os.listdir(tmp_path) == []


# --- ResNet-50 --------------------------------------------------------------------------------------------------------
def test_resnet50_end_to_end(tmp_path: Path) -> None:
    c = compile_file(SPECS / "resnet50.yaml")
    result = write_onnx(c, tmp_path / "r50.onnx", dynamic="batch,hw")
    assert result.verify.ok and result.verify.max_rel <= 1e-4
    assert {d.case for d in result.verify.diffs} == {"batch 1", "batch 2", "batch 2, 168x168"}
    model = onnx.load(tmp_path / "r50.onnx")
    onnx.checker.check_model(model, full_check=True)
    # 53 convs (BN folded), 49 ReLUs, 16 adds, max pool, global pool, flatten, Gemm
    assert _op_types(model) == {"Conv": 53, "Relu": 49, "Add": 16, "MaxPool": 1, "GlobalAveragePool": 1,
                                "Flatten": 1, "Gemm": 1}
    assert len(model.graph.initializer) == 53 * 2 + 2
    # folding turns each BN's scale and shift (2C parameters) into the conv's bias (C)
    bn_channels = sum(n.out_type.channels for n in c.graph.nodes() if n.op == "bn")
    assert sum(int(np.prod(t.dims)) for t in model.graph.initializer) == c.costs.total.params - bn_channels
    names = {n.name for n in model.graph.node}
    assert {"conv1", "layer1.0.conv1", "layer4.2.conv3", "layer1.0.downsample.0", "fc"} <= names


def test_resnet50_unfolded_with_random_statistics() -> None:
    c = compile_file(SPECS / "resnet50.yaml")
    module = _module(c)
    model = export_onnx(c, module.state_dict(), fold_bn=False)
    assert len(model.graph.node) == 122 + 53
    assert _op_types(model)["BatchNormalization"] == 53
    check_model(model)
    folded = export_onnx(c, module.state_dict())
    feeds = random_inputs({"image": c.graph.node("image").out_type}, 2, seed=2)
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["image"])).numpy()
    for m in (model, folded):
        (got,) = session(m.SerializeToString()).run(None, feeds)
        assert float(np.abs(got - want).max()) <= 1e-4 * float(np.abs(want).max())


# --- against PyTorch's own exporter -----------------------------------------------------------------------------------
# resnet18 runs by default (about 10 s); the larger ones only with -m slow
CROSS = [pytest.param(name, marks=() if name == "resnet18" else pytest.mark.slow)
         for name in ("resnet18", "resnet50", "googlenet") if (SPECS / f"{name}.yaml").exists()]


@pytest.mark.parametrize("name", CROSS)
def test_same_outputs_as_torch_onnx_export(name: str, tmp_path: Path) -> None:
    c = compile_file(SPECS / f"{name}.yaml")
    module = _module(c)
    ours = export_onnx(c, module.state_dict()).SerializeToString()
    feeds = random_inputs({n: c.graph.node(n).out_type for n in c.graph.inputs}, 2, seed=1)
    args = tuple(torch.from_numpy(feeds[n]) for n in c.graph.inputs)
    path = tmp_path / "torch.onnx"
    torch.onnx.export(module, args, str(path), input_names=list(c.graph.inputs), dynamo=True, external_data=False)
    theirs = session(path.read_bytes()).run(None, feeds)
    mine = session(ours).run(None, feeds)
    for a, b in zip(mine, theirs, strict=True):
        scale = float(np.abs(b).max())
        assert float(np.abs(a - b).max()) <= 1e-4 * scale
