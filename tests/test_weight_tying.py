"""`tie:`: a linear layer sharing the weight of a layer above it (GPT-2's head and token embedding). The weight is
counted once, the generated module holds one tensor under both state_dict keys (as PyTorch ties modules), ONNX holds
one initializer, and a tie that cannot be made is a located error."""

from __future__ import annotations

import json

import pytest

from archc.compiler import compile_text
from archc.emit.summary import summary_json_text
from archc.errors import SpecError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from archc.emit.diagram import to_dot  # noqa: E402
from archc.emit.onnx_export import export_onnx, verify_onnx  # noqa: E402
from archc.emit.torch_module import build_module  # noqa: E402
from archc.emit.torch_source import torch_source  # noqa: E402

HEAD = """name: tied
inputs: {tokens: {shape: [6], dtype: int64}}
params: {vocab: 11, dim: 8}
body:
  - group:
      id: transformer
      body:
        - embedding: {id: wte, num: $vocab, dim: $dim}
        - linear: {id: mix, out: $dim}
  - linear: {id: lm_head, out: $vocab, bias: false, tie: transformer.wte}
"""


class Reference(torch.nn.Module):
    """The same network written by hand, tied the way nanoGPT ties it (the embedding takes the head's weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.transformer = torch.nn.ModuleDict({"wte": torch.nn.Embedding(11, 8), "mix": torch.nn.Linear(8, 8)})
        self.lm_head = torch.nn.Linear(8, 11, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.transformer.mix(self.transformer.wte(tokens)))


def test_the_shared_weight_is_counted_once() -> None:
    compiled = compile_text(HEAD, "<t>")
    assert compiled.graph.node("lm_head").params.tie == "transformer.wte"
    assert compiled.graph.node("lm_head").meta["cost"].params == 0
    assert compiled.costs.total.params == 11 * 8 + 8 * 8 + 8 == 160
    assert compiled.costs.total.macs == 6 * 8 * 8 + 6 * 8 * 11  # the head still multiplies
    layers = {row["path"]: row for row in json.loads(summary_json_text(compiled))["layers"]}
    assert (layers["lm_head"]["params"], layers["transformer.wte"]["params"]) == (0, 88)
    assert sum(p.numel() for p in Reference().parameters()) == 160


def test_the_module_holds_one_tensor_under_both_keys_and_loads_a_tied_reference() -> None:
    compiled = compile_text(HEAD, "<t>")
    module = build_module(compiled).eval()
    assert module.lm_head.weight is module.transformer.wte.weight
    assert list(module.state_dict()) == ["transformer.wte.weight", "transformer.mix.weight", "transformer.mix.bias",
                                         "lm_head.weight"]
    assert sum(p.numel() for p in module.parameters()) == compiled.costs.total.params
    reference = Reference().eval()
    module.load_state_dict(reference.state_dict(), strict=True)
    Reference().load_state_dict(module.state_dict(), strict=True)
    tokens = torch.randint(0, 11, (3, 6))
    with torch.no_grad():
        torch.testing.assert_close(module(tokens), reference(tokens), rtol=0, atol=0)
    # training keeps them one: a step on the head moves the embedding
    module.lm_head.weight.data.add_(1.0)
    assert torch.equal(module.transformer.wte.weight, module.lm_head.weight)
    assert "        self.lm_head.weight = self.transformer.wte.weight  # tied: one tensor, two state_dict keys" in \
        torch_source(compiled).splitlines()


def test_onnx_holds_one_initializer_and_agrees_with_the_module() -> None:
    compiled = compile_text(HEAD, "<t>")
    module = build_module(compiled).eval()
    model = export_onnx(compiled, module.state_dict())
    names = [init.name for init in model.graph.initializer]
    assert "transformer.wte.weight" in names and not any(n.startswith("lm_head") for n in names)
    assert len(names) == len(set(names))
    report = verify_onnx(compiled, model, module)
    assert report.ok, report.diffs


def test_a_head_on_flat_features_ties_to_a_linear_layer_inside_a_stage() -> None:
    """Rank 1 (ONNX Gemm) and an owner reached through `get_submodule` (a stage copy's path is no attribute)."""
    text = """name: autoencoder
inputs: {x: [16]}
blocks:
  unit:
    body: [{linear: {id: fc, out: 16}}, relu]
body:
  - stage: {id: enc, block: unit, repeat: 2}
  - linear: {id: dec, out: 16, tie: enc.1.fc}
"""
    compiled = compile_text(text, "<t>")
    assert compiled.graph.node("dec").params.tie == "enc.1.fc"
    assert compiled.costs.total.params == 2 * (16 * 16 + 16) + 16
    assert 'self.dec.weight = self.get_submodule("enc.1.fc").weight' in torch_source(compiled)
    module = build_module(compiled).eval()
    assert module.dec.weight is module.enc[1].fc.weight
    assert sum(p.numel() for p in module.parameters()) == compiled.costs.total.params
    model = export_onnx(compiled, module.state_dict())
    assert [i.name for i in model.graph.initializer if i.name.endswith("weight")] == ["enc.0.fc.weight",
                                                                                     "enc.1.fc.weight"]
    assert verify_onnx(compiled, model, module).ok


def test_a_tie_to_a_tied_layer_shares_the_owners_weight() -> None:
    text = HEAD + "  - linear: {id: second, from: transformer.mix, out: $vocab, bias: false, tie: lm_head}\n" \
                  "  - add: {from: [lm_head, second]}\n"
    compiled = compile_text(text, "<t>")
    assert compiled.graph.node("second").params.tie == "transformer.wte"
    module = build_module(compiled)
    assert module.second.weight is module.transformer.wte.weight
    assert compiled.costs.total.params == sum(p.numel() for p in module.parameters()) == 160


REFUSALS = [
    ("tie: transformer.wtf", "E201",
     "'tie': 'transformer.wtf' names no step above; did you mean 'transformer.wte'?"),
    ("tie: transformer.mix", "E307",
     "'tie': the weight of 'transformer.mix' (linear) is [8, 8]; this layer's is [11, 8] ([out, in] features)"),
    ("tie: relu", "E307", "'tie': 'relu' is a relu layer, which has no weight to share; tie to an embedding or a "
                          "linear layer"),
    ("tie: off", "E201", "'tie': 'off' is switched off by its `if:`"),
]


@pytest.mark.parametrize(("tie", "code", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_tie_that_cannot_be_made_is_a_located_error(tie: str, code: str, message: str) -> None:
    text = HEAD.replace("  - linear: {id: lm_head", "  - relu: {id: relu}\n  - relu: {id: off, if: false}\n"
                                                    "  - linear: {id: lm_head").replace("tie: transformer.wte", tie)
    with pytest.raises(SpecError) as info:
        compile_text(text, "<t>")
    (diag,) = info.value.diagnostics
    line = text.splitlines()[diag.pos.line - 1]
    assert (diag.code, diag.message, diag.path) == (code, message, "lm_head")
    assert line[diag.pos.col - 1:].startswith(tie.split(": ")[1])  # points at the value of `tie`


def test_one_initializer_whichever_layer_onnx_meets_first() -> None:
    """The owner may be computed after the tied layer, or not at all (no path to an output): one initializer, under
    the owner's name, either way."""
    text = """name: order
inputs: {x: [5, 8], tokens: {shape: [5], dtype: int64}}
outputs: [head, emb]
body:
  - embedding: {id: emb, from: tokens, num: 10, dim: 8}
  - linear: {id: head, from: x, out: 10, bias: false, tie: emb}
"""
    for outputs in ("[head, emb]", "[head]"):
        body = text.replace("outputs: [head, emb]", f"outputs: {outputs}")
        compiled = compile_text(body, "<t>")
        module = build_module(compiled).eval()
        model = export_onnx(compiled, module.state_dict())
        names = [init.name for init in model.graph.initializer]
        assert names.count("emb.weight") == 1 and not any(n.startswith("head") for n in names), names
        assert verify_onnx(compiled, model, module).ok
    assert "linear 10, weight of emb" in to_dot(compile_text(body, "<t>"))
