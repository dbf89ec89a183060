"""Attention and matrix products beyond the contract: torchvision's weight names, the causal mask against a written-out
reference, ViT-B/16's MACs against torchvision's metadata, and the refusals of shapes that do not fit."""

from __future__ import annotations

import math

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

torch = pytest.importorskip("torch")

from op_cases import Case, one, randomise  # noqa: E402

from archc.emit.torch_module import build_module  # noqa: E402

REFUSALS = [
    (Case("matmul", "{a: [4, 3], b: [4, 5]}", ("matmul: {id: t, from: [a, b]}",), ()), "E301",
     "matmul multiplies [4, 3] by [4, 5] (first by second): the inner sizes must be equal; found [4, 3] and [4, 5]"),
    (Case("matmul", "{a: [2, 4, 3], b: [3, 4, 5]}", ("matmul: {id: t, from: [a, b], transpose_a: true}",), ()),
     "E301", "matmul expects the leading axes equal (or 1 where they differ); found [2, 4, 3] and [3, 4, 5]"),
    (Case("matmul", "{a: [4, 3], b: [2, 3, 5]}", ("matmul: {id: t, from: [a, b]}",), ()), "E305",
     "matmul expects inputs of equal rank; found [4, 3] (rank 2) and [2, 3, 5] (rank 3)"),
    (Case("matmul", "{a: [4], b: [4]}", ("matmul: {id: t, from: [a, b]}",), ()), "E305",
     "matmul expects matrices [.., M, K] (batch implicit): inputs of rank 2 or more; found [4] (rank 1)"),
    (Case("scaled_dot_product_attention", "{x: [2, 3, 4, 5]}",
          ("scaled_dot_product_attention: {id: t, from: [x, x, x]}",), ()), "E305",
     "scaled_dot_product_attention expects its query as tokens [L, D] or [heads, L, d] (batch implicit); found "
     "[2, 3, 4, 5] (rank 4)"),
    (Case("mul_scalar", "{x: {shape: [4], dtype: int64}}", ("mul_scalar: {id: t, value: 0.5}",), ()), "E306",
     "mul_scalar expects a floating-point input; found [4] int64"),
    (one("multihead_attention", [3, 4, 4], "heads: 2", ()), "E305",
     "multihead_attention expects tokens [L, D] (batch implicit); found [3, 4, 4] (rank 3)"),
    (one("multihead_attention", [5, 10], "heads: 4", ()), "E303",
     "multihead_attention heads=4 expects an embedding size divisible by 4; found 10"),
    (Case("scaled_dot_product_attention", "{x: [2, 5, 4]}",
          ("scaled_dot_product_attention: {id: t, from: [x, x, x], heads: 2}",), ()), "E306",
     "scaled_dot_product_attention heads=2 splits tokens [L, D]; the query [2, 5, 4] is [heads, L, d] already"),
    (Case("scaled_dot_product_attention", "{q: [5, 4], k: [6, 4], v: [5, 4]}",
          ("scaled_dot_product_attention: {id: t, from: [q, k, v]}",), ()), "E301",
     "scaled_dot_product_attention expects query [.., Lq, d], key [.., Lk, d] and value [.., Lk, dv]; found "
     "[5, 4], [6, 4] and [5, 4]"),
    (Case("scaled_dot_product_attention", "{q: [5, 6], k: [2, 5, 6]}",
          ("scaled_dot_product_attention: {id: t, from: [q, k, k]}",), ()), "E305",
     "scaled_dot_product_attention expects query, key and value of equal rank; found query [5, 6] and key "
     "[2, 5, 6]"),
    (Case("scaled_dot_product_attention", "{x: [5, 6]}",
          ("scaled_dot_product_attention: {id: t, from: [x, x, x], heads: 4}",), ()), "E303",
     "scaled_dot_product_attention heads=4 expects query and value sizes divisible by 4; found [5, 6] and [5, 6]"),
]


@pytest.mark.parametrize(("case", "code", "message"), REFUSALS, ids=[f"{c.op}-{i}" for i, (c, _, _) in
                                                                     enumerate(REFUSALS)])
def test_refuses_shapes_that_do_not_fit(case: Case, code: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        compile_text(case.text, "<t>")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.pos.line, diag.pos.col) == (code, "t", len(case.body) + 4, 5), diag.format()
    assert diag.message.startswith(message), diag.format()


def test_multihead_attention_loads_torchvision_vit_weights_and_agrees() -> None:
    """The layer holds torchvision's ViT encoder `self_attention` names and shapes, and computes the same thing."""
    from torchvision_ref import models

    reference = models().vision_transformer.EncoderBlock(4, 32, 64, 0.0, 0.0).self_attention.eval()
    compiled = compile_text("name: attn\ninputs: {x: [7, 32]}\nbody:\n  - multihead_attention: {id: attn, heads: 4}\n",
                            "<t>")
    module = build_module(compiled).eval()
    randomise(reference, 5)
    assert {k: tuple(v.shape) for k, v in module.attn.state_dict().items()} == {
        "in_proj_weight": (96, 32), "in_proj_bias": (96,), "out_proj.weight": (32, 32), "out_proj.bias": (32,)}
    module.attn.load_state_dict(reference.state_dict(), strict=True)
    assert compiled.graph.node("attn").meta["cost"].params == sum(p.numel() for p in reference.parameters())
    x = torch.randn(3, 7, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():  # the fused fast path, as torchvision's encoder runs it in eval
        want = reference(x, x, x, need_weights=False)[0]
        got = module(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_causal_attention_matches_a_written_out_mask() -> None:
    compiled = compile_text("name: causal\ninputs: {q: [4, 6], k: [7, 6], v: [7, 10]}\nbody:\n"
                            "  - scaled_dot_product_attention: {id: t, from: [q, k, v], heads: 2, causal: true}\n",
                            "<t>")
    module = build_module(compiled).eval()
    gen = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(2, 4, 6, generator=gen), torch.randn(2, 7, 6, generator=gen), torch.randn(2, 7, 10,
                                                                                                     generator=gen)
    heads = [(q[..., :3], k[..., :3], v[..., :5]), (q[..., 3:], k[..., 3:], v[..., 5:])]
    hidden = torch.ones(4, 7, dtype=torch.bool).triu(1)  # query i sees keys 0..i
    outs = [(a @ b.transpose(-2, -1) / math.sqrt(3)).masked_fill(hidden, -math.inf).softmax(-1) @ c
            for a, b, c in heads]
    torch.testing.assert_close(module(q, k, v), torch.cat(outs, -1), rtol=1e-5, atol=1e-6)


VIT_B_16_LAYER = """
name: vit_layer
inputs: {tokens: [197, 768]}
body:
  - layernorm: {id: ln_1, dims: 1, eps: 1.0e-6}
  - multihead_attention: {id: self_attention, heads: 12}
  - add: {id: attention_residual, from: [self_attention, tokens]}
  - layernorm: {id: ln_2, dims: 1, eps: 1.0e-6}
  - linear: {out: 3072}
  - gelu
  - linear: {id: mlp_out, out: 768}
  - add: {from: [mlp_out, attention_residual]}
"""
VIT_B_16_ENDS = """
name: vit_ends
inputs: {image: [3, 224, 224], cls: [768]}
body:
  - conv: {id: conv_proj, out: 768, k: 16, s: 16}
  - linear: {id: head, from: cls, out: 1000}
"""


def test_vit_b_16_macs_equal_torchvision_metadata() -> None:
    """Twelve encoder layers of 197 tokens, the patch projection and the head: torchvision's 17.564 GFLOPS."""
    from torchvision_ref import models

    layer = compile_text(VIT_B_16_LAYER, "<layer>").costs.total.macs
    assert compile_text(VIT_B_16_LAYER, "<layer>").graph.node("self_attention").meta["cost"].macs == (
        4 * 197 * 768 * 768 + 2 * 197 * 197 * 768)
    ends = compile_text(VIT_B_16_ENDS, "<ends>").costs.total.macs
    total = 12 * layer + ends
    assert total == 17_563_828_224
    assert round(total / 1e9, 3) == models().ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"] == 17.564


@pytest.mark.parametrize("opset", [18, 26])
def test_attention_lowers_at_every_opset(opset: int) -> None:
    """A pre-norm encoder layer with a causal attention beside it: MatMul, Reshape, Transpose and Softmax at the lowest
    and the highest opset archc writes, verified in onnxruntime against PyTorch."""
    pytest.importorskip("onnxruntime")
    from archc.emit.onnx_export import export_onnx
    from archc.emit.onnx_verify import check_model, verify_model

    compiled = compile_text("name: layer\ninputs: {x: [9, 12]}\nbody:\n"
                            "  - layernorm: {dims: 1}\n"
                            "  - multihead_attention: {id: attn, heads: 3}\n"
                            "  - scaled_dot_product_attention: {from: [attn, x, x], heads: 4, causal: true}\n"
                            "  - mul_scalar: {id: scaled, value: 0.5}\n"
                            "  - add: {from: [scaled, x]}\n", "<t>")
    module = build_module(compiled).eval()
    randomise(module, opset)
    model = export_onnx(compiled, module.state_dict(), opset=opset)
    check_model(model)
    assert {"MatMul", "Reshape", "Transpose", "Softmax"} <= {n.op_type for n in model.graph.node}
    report = verify_model(model.SerializeToString(), compiled, module)
    assert report.ok, report.diffs
