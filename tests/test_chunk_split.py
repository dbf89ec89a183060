"""`chunk` and `split`: one tensor cut into parts named by index (`qkv.0`), each part a `slice`; the parts equal
torch.chunk's and torch.split's, in the generated module and in onnxruntime, and every misuse is a located error."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from archc.emit.onnx_export import export_onnx, verify_onnx  # noqa: E402
from archc.emit.torch_module import build_module  # noqa: E402
from archc.emit.torch_source import torch_source  # noqa: E402


def spec(inputs: str, *steps: str, outputs: str = "") -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    return f"name: parts\ninputs: {inputs}\n{outputs and f'outputs: {outputs}' + chr(10)}body:\n{body}\n"


def run_both(text: str, x: torch.Tensor, module: torch.nn.Module | None = None) -> tuple[list[torch.Tensor], list]:
    """The outputs of ``module`` (default: a fresh one) and of its ONNX export in onnxruntime, for input ``x``; the
    export is verified by archc too."""
    compiled = compile_text(text, "<t>")
    module = module if module is not None else build_module(compiled).eval()
    model = export_onnx(compiled, module.state_dict())
    assert verify_onnx(compiled, model, module).ok
    with torch.no_grad():
        got = module(x)
    got = list(got) if isinstance(got, tuple) else [got]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return got, sess.run(None, {compiled.graph.inputs[0]: x.numpy()})


CASES = [
    # (parts step, input shape, torch's parts of x)
    ("chunk: {id: qkv, chunks: 3, axis: -1}", [5, 12], lambda x: x.chunk(3, dim=-1)),
    ("chunk: {id: qkv, chunks: 4, axis: 1}", [3, 10], lambda x: x.chunk(4, dim=2)),  # 3, 3, 3, 1
    ("split: {id: qkv, sizes: [2, 3, 7], axis: 0}", [12, 4, 4], lambda x: x.split([2, 3, 7], dim=1)),
    ("chunk: {id: qkv, chunks: 2}", [6, 3, 3], lambda x: x.chunk(2, dim=1)),
]


@pytest.mark.parametrize(("step", "shape", "want"), CASES, ids=[c[0] for c in CASES])
def test_parts_equal_torchs_in_the_module_and_onnxruntime(step: str, shape: list[int], want) -> None:
    x = torch.randn(2, *shape)
    expected = want(x)
    names = ", ".join(f"qkv.{i}" for i in range(len(expected)))
    compiled = compile_text(spec(f"{{x: {shape}}}", step, outputs=f"[{names}]"), "<t>")
    assert [compiled.graph.node(f"qkv.{i}").out_type.shape for i in range(len(expected))] == \
        [tuple(e.shape[1:]) for e in expected]
    assert all(compiled.graph.node(f"qkv.{i}").op == "slice" for i in range(len(expected)))
    assert compiled.costs.total.params == 0 and compiled.costs.total.macs == 0
    got, onnx_got = run_both(spec(f"{{x: {shape}}}", step, outputs=f"[{names}]"), x)
    for g, o, e in zip(got, onnx_got, expected, strict=True):
        assert torch.equal(g, e)
        assert torch.equal(torch.from_numpy(o), e)


def test_attention_reads_the_three_parts_of_one_projection() -> None:
    """GPT's `q, k, v = c_attn(x).split(d, dim=2)`: the parts feed attention by their index paths."""
    text = spec("{x: [6, 8]}", "linear: {id: c_attn, out: 24}", "chunk: {id: qkv, chunks: 3, axis: -1}",
                "scaled_dot_product_attention: {from: [qkv.0, qkv.1, qkv.2], heads: 2, causal: true}")
    compiled = compile_text(text, "<t>")
    module = build_module(compiled).eval()
    x = torch.randn(3, 6, 8)
    with torch.no_grad():
        q, k, v = module.c_attn(x).split(8, dim=2)
        heads = [t.view(3, 6, 2, 4).transpose(1, 2) for t in (q, k, v)]
        want = torch.nn.functional.scaled_dot_product_attention(*heads, is_causal=True)
        want = want.transpose(1, 2).reshape(3, 6, 8)
        got, onnx_got = run_both(text, x, module)
    torch.testing.assert_close(got[0], want, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(onnx_got[0]), want, rtol=1e-5, atol=1e-5)
    assert compiled.costs.total.macs == 6 * 8 * 24 + 6 * 6 * (8 + 8)  # the projection, then QK^T and AV
    source = torch_source(compiled)
    assert "        qkv_0, qkv_1, qkv_2 = c_attn.chunk(3, dim=-1)" in source.splitlines()


def test_an_unnamed_chunk_is_reached_by_its_index_path() -> None:
    text = spec("{x: [8, 4, 4]}", "conv: {out: 8, k: 1}", "chunk: {chunks: 2}", "sigmoid: {from: '1.1'}",
                "mul: {from: ['1.0', 2]}")
    compiled = compile_text(text, "<t>")
    assert compiled.graph.node("1.0").out_type.shape == (4, 4, 4)
    assert [s for s in compiled.graph.input_names("3")] == ["1.0", "2"]
    module = build_module(compiled).eval()
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        a, b = module.get_submodule("0")(x).chunk(2, dim=1)
        got, onnx_got = run_both(text, x, module)
    torch.testing.assert_close(got[0], a * torch.sigmoid(b), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(onnx_got[0]), a * torch.sigmoid(b), rtol=1e-5, atol=1e-6)


def test_parts_follow_expressions_and_the_budget_counts_them() -> None:
    text = "name: p\ninputs: {x: [5, 12]}\nparams: {n: 3}\nbody:\n  - chunk: {id: c, chunks: $n, axis: -1}\n" \
           "  - add: {from: [c.0, c.2]}\n"
    compiled = compile_text(text, "<t>")
    assert compiled.graph.node("c.2").out_type.shape == (5, 4)
    with pytest.raises(SpecError) as info:
        compile_text(text.replace("chunks: $n", "chunks: 300000"), "<t>")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.pos.line) == ("E501", 5)
    assert "more than 200,000 layers" in diag.message


REFUSALS = [
    # (steps, code, line:col, layer, message)
    (("chunk: {id: qkv, chunks: 30, axis: -1}", "relu: {from: qkv.0}"), "E306", (4, 30), "qkv",
     "chunk into 30 parts: axis -1 of [5, 12] has only 12 positions"),
    (("chunk: {id: qkv, chunks: 5, axis: -1}", "relu: {from: qkv.0}"), "E306", (4, 30), "qkv",
     "chunk of 12 positions (axis -1 of [5, 12]) into 5 parts: equal parts of 3 make only 4 (as torch.chunk cuts); "
     "give the sizes with `split`"),
    (("split: {id: qkv, sizes: [10, 4], axis: 1}", "relu: {from: qkv.0}"), "E306", (4, 29), "qkv",
     "split sizes [10, 4] sum to 14; axis 1 of [5, 12] has 12 positions"),
    (("split: {id: qkv, sizes: [3, 4], axis: 2}", "relu: {from: qkv.0}"), "E306", (4, 43), "qkv",
     "split axis 2 is out of range for [5, 12] (rank 2)"),
    (("chunk: {id: qkv, chunks: 3, axis: -1}", "relu"), "E204", (5, 5), "1",
     "'qkv' is a `chunk` with 3 outputs; take one part with `from:` (qkv.0, qkv.1, qkv.2)"),
    (("chunk: {id: qkv, chunks: 3, axis: -1}", "relu: {from: qkv}"), "E204", (5, 18), "1",
     "'qkv' is a `chunk` with 3 outputs; take one part with `from:` (qkv.0, qkv.1, qkv.2)"),
    (("chunk: {chunks: 6, axis: -1}", "relu: {from: 0}"), "E204", (5, 18), "1",
     "'0' is a `chunk` with 6 outputs; take one part with `from:` (0.0, 0.1, 0.2, ..., 0.5)"),
    (("split: {id: halves, sizes: [6, 6], axis: -1}",), "E204", (4, 5), "halves",
     "'halves' is a `split` with 2 outputs; take one part with `from:` (halves.0, halves.1); a step list ending with "
     "it has no single output"),
    (("chunk: {id: qkv, chunks: 2, axis: -1}", "relu: {from: qkv.2}"), "E201", (5, 18), "1",
     "unknown reference 'qkv.2'; 'qkv' contains: 0, 1"),
    (("chunk: {id: qkv, chunks: 0}",), "E103", (4, 30), "qkv", None),
]


@pytest.mark.parametrize(("steps", "code", "where", "layer", "message"), REFUSALS,
                         ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSALS)])
def test_misuse_is_a_located_error(steps: tuple[str, ...], code: str, where: tuple[int, int], layer: str,
                                   message: str | None) -> None:
    with pytest.raises(SpecError) as info:
        compile_text(spec("{x: [5, 12]}", *steps), "<t>")
    (diag,) = info.value.diagnostics
    assert (diag.code, (diag.pos.line, diag.pos.col), diag.path) == (code, where, layer)
    if message is not None:
        assert diag.message == message


def test_a_block_ending_in_a_chunk_and_an_output_naming_one_are_refused() -> None:
    text = ("name: p\ninputs: {x: [4, 8]}\nblocks:\n  halves:\n    body:\n      - chunk: {chunks: 2, axis: -1}\n"
            "body:\n  - halves: {id: h}\n")
    with pytest.raises(SpecError) as info:
        compile_text(text, "<t>")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.pos.line, diag.path) == ("E204", 6, "h.0")
    assert diag.message.endswith("a step list ending with it has no single output")
    text = spec("{x: [4, 8]}", "chunk: {id: c, chunks: 2, axis: -1}", outputs="[c]")
    with pytest.raises(SpecError) as info:
        compile_text(text, "<t>")
    (diag,) = info.value.diagnostics
    assert diag.code == "E204" and diag.message.startswith("'c' is a `chunk` with 2 outputs")
    # naming the parts in `outputs:` is how a model ends with a chunk
    assert list(compile_text(spec("{x: [4, 8]}", "chunk: {id: c, chunks: 2, axis: -1}", outputs="[c.0, c.1]"),
                             "<t>").graph.outputs) == ["c_0", "c_1"]


def test_a_parameter_may_follow_a_chunk_without_taking_a_part() -> None:
    text = spec("{x: [4, 8]}", "chunk: {id: c, chunks: 2, axis: -1}", "parameter: {id: scale, shape: [4, 4]}",
                "mul: {from: [c.1, scale]}")
    assert compile_text(text, "<t>").graph.node("2").out_type.shape == (4, 4)


@pytest.mark.parametrize(("step", "shape", "statement"), [
    (CASES[0][0], CASES[0][1], "qkv_0, qkv_1, qkv_2 = x.chunk(3, dim=-1)"),
    (CASES[1][0], CASES[1][1], "qkv_0, qkv_1, qkv_2, qkv_3 = x.chunk(4, dim=-1)"),
    (CASES[2][0], CASES[2][1], "qkv_0, qkv_1, qkv_2 = x.split([2, 3, 7], dim=1)"),
], ids=["chunk", "uneven-chunk", "split"])
def test_the_parts_are_one_statement_and_trace_like_the_ir(step: str, shape: list[int], statement: str) -> None:
    """model.py cuts the value once, as a person writes it; the traced build records every part's shape."""
    from test_torch_emit import assert_module_matches_ir

    parts = statement.split(" = ")[0].split(", ")
    outputs = ", ".join(f"qkv.{i}" for i in range(len(parts)))
    compiled = compile_text(spec(f"{{x: {shape}}}", step, outputs=f"[{outputs}]"), "<t>")
    source = torch_source(compiled)
    assert f"        {statement}" in source.splitlines()
    assert "[:, " not in source  # no slice left
    assert_module_matches_ir(compiled)


def test_a_run_not_cut_to_the_end_stays_slices() -> None:
    """Two slices of one value that leave its end out are no chunk: they stay as written."""
    text = spec("{x: [5, 12]}", "slice: {id: a, axis: -1, end: 4}",
                "slice: {id: b, from: x, axis: -1, start: 4, end: 8}", "add: {from: [a, b]}")
    source = torch_source(compile_text(text, "<t>"))
    assert "x[:, :, :4]" in source and "x[:, :, 4:8]" in source and ".chunk(" not in source
