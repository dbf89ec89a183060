"""Tensors a model holds that are not a layer's weight: `parameter` (class token, position embedding, layer scale)
and `buffer` (Swin's relative position index), under the names the spec gives, in the IR, PyTorch and ONNX."""

from __future__ import annotations

from typing import Any

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError
from archc.ir.graph import SOURCE_OPS
from archc.ops.registry import all_ops
from archc.ops.tensor_state import relative_position_index, shift_mask

VIT_LIKE = """
name: vit_like
inputs: {image: [3, 8, 8]}
body:
  - conv: {id: conv_proj, out: 16, k: 4, s: 4}
  - reshape: {shape: [16, 4]}
  - permute: {axes: [1, 0]}
  - parameter: {id: class_token, shape: [1, 1, 16], batch_axis: true}
  - concat: {id: tokens, from: [class_token, 2], axis: 0}
  - group:
      id: encoder
      body:
        - parameter: {id: pos_embedding, shape: [1, 5, 16], init: normal, std: 0.02, batch_axis: true}
        - add: {from: [pos_embedding, tokens]}
        - parameter: {id: layer_scale, shape: [1, 16], init: constant, value: 0.000001}
        - mul: {from: [1, layer_scale]}
        - buffer: {id: relative_position_index, kind: relative_position_index, window: [2, 2]}
  - select: {id: head, from: encoder.3, index: 0}
"""


def test_tensors_have_their_shapes_and_costs() -> None:
    compiled = compile_text(VIT_LIKE, "v.yaml")
    graph = compiled.graph
    assert graph.node("class_token").out_type.shape == (1, 16)  # the batch axis of [1, 1, 16] broadcast
    assert graph.node("tokens").out_type.shape == (5, 16)
    assert graph.node("encoder.layer_scale").out_type.shape == (1, 16)
    assert graph.node("encoder.relative_position_index").out_type.shape == (16,)
    assert graph.node("encoder.relative_position_index").out_type.dtype == "int64"
    assert [n.name for n in graph.inputs_of("encoder.layer_scale")] == []
    assert [n.name for n in graph.inputs_of("class_token")] == ["2"]
    costs = {name: (graph.node(name).meta["cost"].params, graph.node(name).meta["cost"].buffers)
             for name in ("class_token", "encoder.pos_embedding", "encoder.layer_scale",
                          "encoder.relative_position_index")}
    assert costs == {"class_token": (16, 0), "encoder.pos_embedding": (80, 0), "encoder.layer_scale": (16, 0),
                     "encoder.relative_position_index": (0, 16)}
    assert compiled.costs.total.params == 784 + 16 + 80 + 16


def test_tensors_reach_the_state_dict_under_their_names_and_initialised() -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    module = build_module(compile_text(VIT_LIKE, "v.yaml"))
    state = module.state_dict()
    assert [(key, tuple(value.shape)) for key, value in state.items()] == [
        ("class_token", (1, 1, 16)), ("conv_proj.weight", (16, 3, 4, 4)), ("conv_proj.bias", (16,)),
        ("encoder.pos_embedding", (1, 5, 16)), ("encoder.layer_scale", (1, 16)),
        ("encoder.relative_position_index", (16,))]
    assert [name for name, _ in module.named_buffers()] == ["encoder.relative_position_index"]
    assert torch.equal(state["class_token"], torch.zeros(1, 1, 16))
    assert torch.equal(state["encoder.layer_scale"], torch.full((1, 16), 1e-6))
    assert 0.005 < float(state["encoder.pos_embedding"].std()) < 0.04
    assert state["encoder.relative_position_index"].tolist() == [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        state["encoder.pos_embedding"].normal_()
        state["class_token"].normal_()
        tokens = module.conv_proj(x).reshape(3, 16, 4).permute(0, 2, 1)
        tokens = torch.cat([state["class_token"].expand(3, -1, -1), tokens], 1)
        want = ((tokens + state["encoder.pos_embedding"]) * 1e-6)[:, 0]
        assert torch.allclose(module(x), want)


def test_tensors_export_to_onnx_as_initializers_and_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from archc.emit.onnx_export import export_onnx
    from archc.emit.torch_module import build_module

    compiled = compile_text(VIT_LIKE, "v.yaml")
    module = build_module(compiled).eval()
    with torch.no_grad():
        for value in module.parameters():
            value.normal_()
    model = export_onnx(compiled, module.state_dict())
    assert {"class_token/tensor", "encoder.pos_embedding/tensor", "encoder.layer_scale/tensor"} <= {
        init.name for init in model.graph.initializer}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 8, 8)
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(got), module(x), atol=1e-5)


def _torchvision_relative_position_index(height: int, width: int) -> list[int]:
    """torchvision's SwinTransformer `_get_relative_position_index`, as it writes it."""
    torch = pytest.importorskip("torch")
    coords = torch.stack(torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij"))
    flat = torch.flatten(coords, 1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += height - 1
    relative[:, :, 1] += width - 1
    relative[:, :, 0] *= 2 * width - 1
    return relative.sum(-1).flatten().tolist()


@pytest.mark.parametrize("window", [(7, 7), (2, 3), (8, 8)])
def test_relative_position_index_is_torchvisions(window: tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    want = _torchvision_relative_position_index(*window)
    assert relative_position_index(*window) == want
    text = f"""
name: swin_like
inputs: {{x: [4]}}
outputs: [index]
body:
  - buffer: {{id: index, kind: relative_position_index, window: {list(window)}}}
"""
    module = build_module(compile_text(text, "s.yaml"))
    assert module.state_dict()["index"].dtype == torch.int64
    assert module.state_dict()["index"].tolist() == want


@pytest.mark.parametrize(("step", "message"), [
    ("parameter: {id: p, from: x, shape: [4]}", "t.yaml:5:24: E204: p: 'parameter' takes no input; remove `from`"),
    ("parameter: {id: p, shape: [2, 4], batch_axis: true}",
     "t.yaml:5:5: E306: p: with `batch_axis: true` the shape starts with the batch axis of size 1 ([1, 1, 768]); "
     "found [2, 4] (input: [4] from relu '0')"),
    ("buffer: {id: p, from: x, kind: relative_position_index, window: [2, 2]}",
     "t.yaml:5:21: E204: p: 'buffer' takes no input; remove `from`"),
])
def test_mistakes_are_located(step: str, message: str) -> None:
    text = f"name: t\ninputs: {{x: [4]}}\nbody:\n  - relu\n  - {step}\n"
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [message]


def test_the_ir_knows_every_op_that_reads_no_input() -> None:
    assert {name for name, op in all_ops().items() if op.min_inputs == 0} == SOURCE_OPS


def test_the_guides_example_names_its_tensors_as_it_says() -> None:
    pytest.importorskip("torch")
    from archc.emit.torch_module import build_module
    from tests.test_docs import EXAMPLES

    example = next(e for e in EXAMPLES if "name: tensors_demo" in e)
    compiled = compile_text(example)
    assert compiled.graph.node("tokens").out_type.shape == (5, 64)
    assert list(build_module(compiled).state_dict()) == [
        "class_token", "layer_scale", "conv_proj.weight", "conv_proj.bias", "encoder.pos_embedding",
        "encoder.relative_position_index"]


# --- Swin's shift mask and relative position bias ---------------------------------------------------------------------
def _torchvision_shift_mask(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> list[Any]:
    """The mask torchvision's `shifted_window_attention` builds in every forward, as it writes it, [windows, 1, cells,
    cells] (its `attn_mask.unsqueeze(1)`)."""
    torch = pytest.importorskip("torch")
    (height, width), (wh, ww), (sh, sw) = size, window, shift
    attn_mask = torch.zeros((height, width))
    h_slices = ((0, -wh), (-wh, -sh), (-sh, None))
    w_slices = ((0, -ww), (-ww, -sw), (-sw, None))
    count = 0
    for h in h_slices:
        for w in w_slices:
            attn_mask[h[0]: h[1], w[0]: w[1]] = count
            count += 1
    attn_mask = attn_mask.view(height // wh, wh, width // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    attn_mask = attn_mask.unsqueeze(1) - attn_mask.unsqueeze(2)
    attn_mask = attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)
    return attn_mask.unsqueeze(1).tolist()


@pytest.mark.parametrize(("size", "window", "shift"), [((56, 56), (7, 7), (3, 3)), ((14, 14), (7, 7), (3, 3)),
                                                        ((4, 9), (2, 3), (1, 2))])
def test_shift_mask_is_torchvisions_and_not_in_the_state_dict(size: tuple[int, int], window: tuple[int, int],
                                                               shift: tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    want = _torchvision_shift_mask(size, window, shift)
    assert [[row] for row in shift_mask(list(size), list(window), list(shift))] == want
    text = f"""
name: swin_like
inputs: {{x: [4]}}
outputs: [mask]
body:
  - buffer: {{id: mask, kind: shift_mask, window: {list(window)}, size: {list(size)}, shift: {list(shift)}}}
"""
    compiled = compile_text(text, "s.yaml")
    windows, cells = size[0] // window[0] * (size[1] // window[1]), window[0] * window[1]
    assert compiled.graph.node("mask").out_type.shape == (windows, 1, cells, cells)
    assert compiled.costs.total.buffers == 0  # not persistent: no state_dict entry to count
    module = build_module(compiled)
    assert list(module.state_dict()) == []
    mask = dict(module.named_buffers())["mask"]
    assert mask.dtype == torch.float32
    assert mask.tolist() == want


SWIN_BIAS = """
name: swin_bias
inputs: {x: [3, 2, 4, 4]}
body:
  - parameter: {id: table, shape: [9, 2], init: normal, std: 1.0}
  - buffer: {id: index, kind: relative_position_index, window: [2, 2]}
  - gather: {from: [table, index]}
  - reshape: {shape: [4, 4, 2]}
  - permute: {axes: [2, 0, 1]}
  - unsqueeze: {id: bias, axes: [0]}
  - add: {from: [x, bias]}
"""


def test_relative_position_bias_broadcasts_over_the_batch_as_torchvisions() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from archc.emit.onnx_export import export_onnx, verify_onnx
    from archc.emit.torch_module import build_module

    compiled = compile_text(SWIN_BIAS, "s.yaml")
    module = build_module(compiled).eval()
    table, index = module.table, module.index
    # torchvision's _get_relative_position_bias, as it writes it
    want_bias = table[index].view(4, 4, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
    x = torch.randn(5, 3, 2, 4, 4)
    with torch.no_grad():
        assert torch.equal(module(x), x + want_bias)
    assert verify_onnx(compiled, export_onnx(compiled, module.state_dict()), module).ok


@pytest.mark.parametrize(("step", "message"), [
    ("gather: {id: g, from: [x, i]}",
     "t.yaml:7:5: E305: g: gather reads tensors the model holds (`parameter` steps without `batch_axis`, `buffer` "
     "steps); found [4] from input 'x'"),
    ("gather: {id: g, from: [f, f]}",
     "t.yaml:7:5: E306: g: gather expects integer positions as its second input; found [3] float32 (inputs from "
     "parameter 'f', parameter 'f')"),
    ("gather: {id: g, from: [f, i], axis: 1}",
     "t.yaml:7:5: E306: g: gather axis 1 is out of range for the table [3] (rank 1) (inputs: [3] from parameter 'f', "
     "[16] from buffer 'i')"),
    ("buffer: {id: g, kind: shift_mask, window: [7, 7], shift: [3, 3]}",
     "t.yaml:7:13: E103: g: kind shift_mask needs the feature map's `size` and the windows' `shift`"),
    ("buffer: {id: g, kind: shift_mask, window: [7, 7], size: [15, 14], shift: [3, 3]}",
     "t.yaml:7:5: E306: g: shift_mask: the map's size 15 (axis 0) is not a multiple of the window 7; pad the map to a "
     "multiple first"),
    ("buffer: {id: g, kind: shift_mask, window: [7, 7], size: [14, 14], shift: [3, 7]}",
     "t.yaml:7:5: E306: g: shift_mask: shift 7 (axis 1) expects less than the window 7"),
])
def test_swin_mistakes_are_located(step: str, message: str) -> None:
    text = (f"name: t\ninputs: {{x: [4]}}\nbody:\n  - relu\n"
            f"  - buffer: {{id: i, kind: relative_position_index, window: [2, 2]}}\n"
            f"  - parameter: {{id: f, shape: [3]}}\n  - {step}\n")
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [message]
