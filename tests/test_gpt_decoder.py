"""specs/gpt_decoder.yaml: GPT-2 small against a plain PyTorch module written here in nanoGPT's layout
(transformer.wte, wpe, h.N.ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, ln_f, lm_head tied to wte).

GPT-2 small's published size (124,439,808 parameters with the head tied and wpe counted) and the MACs are written
as formulas here, never read back from archc. Full-size modules are compared on PyTorch's meta device (shapes, no
memory); outputs and ONNX at a small configuration set with the spec's params, full width with -m slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from archc.compiler import Compiled, compile_file

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from archc.emit.onnx_export import export_onnx, verify_onnx  # noqa: E402
from archc.emit.torch_module import build_module  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "gpt_decoder.yaml"


@dataclass(frozen=True)
class Config:
    vocab: int = 50257
    context: int = 1024
    layers: int = 12
    dim: int = 768
    heads: int = 12

    def overrides(self) -> dict[str, str]:
        return {"vocab": str(self.vocab), "context": str(self.context), "layers": str(self.layers),
                "dim": str(self.dim), "heads": str(self.heads)}


SMALL = Config(vocab=97, context=16, layers=2, dim=64, heads=4)


# --- the reference: nanoGPT's model.py, written out -------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c.dim, 3 * c.dim)
        self.c_proj = nn.Linear(c.dim, c.dim)
        self.heads, self.dim = c.heads, c.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.c_attn(x).split(self.dim, dim=2)
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(n, t, d))


class MLP(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.dim, 4 * c.dim)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c.dim, c.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.dim)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.dim)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(c.vocab, c.dim),
            "wpe": nn.Embedding(c.context, c.dim),
            "h": nn.ModuleList(Block(c) for _ in range(c.layers)),
            "ln_f": nn.LayerNorm(c.dim),
        })
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # nanoGPT's weight tying

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))  # the logits of every position


def gpt2_params(c: Config) -> int:
    """Embeddings (the head shares wte), per block two layer norms, c_attn, c_proj, c_fc, mlp.c_proj; ln_f."""
    d = c.dim
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return c.vocab * d + c.context * d + c.layers * block + 2 * d


def gpt2_macs(c: Config) -> int:
    """Per block: c_attn L d 3d, QK^T and AV 2 L^2 d (every pair: the mask is not subtracted, as torch counts),
    c_proj L d^2, the MLP 2 L d 4d; then the head L d V."""
    length, d = c.context, c.dim
    block = length * d * 3 * d + 2 * length * length * d + length * d * d + 2 * length * d * 4 * d
    return c.layers * block + length * d * c.vocab


_compiled: dict[Config, Compiled] = {}


def compiled(c: Config) -> Compiled:
    if c not in _compiled:
        _compiled[c] = compile_file(SPEC, {} if c == Config() else c.overrides())
    return _compiled[c]


def test_gpt2_small_has_its_published_size() -> None:
    full = compiled(Config())
    assert gpt2_params(Config()) == 124_439_808  # GPT-2 small, tied head, wpe counted (nanoGPT's get_num_params)
    assert full.costs.total.params == 124_439_808
    assert full.costs.total.buffers == 0
    assert full.costs.total.macs == gpt2_macs(Config()) == 145_824_153_600
    assert full.graph.node("lm_head").params.tie == "transformer.wte"
    assert full.graph.node("transformer.h.11.attn.qkv.2").out_type.shape == (1024, 768)
    assert full.graph.outputs == {"output": "lm_head"}
    assert full.graph.node("lm_head").out_type.shape == (1024, 50257)


def test_full_size_state_dict_is_nanogpts() -> None:
    """Names and shapes of every tensor at full size, on the meta device (no memory), and one tensor for the tie."""
    with torch.device("meta"):
        ours = build_module(compiled(Config()))
        reference = GPT(Config())
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters()) == 124_439_808
    assert ours.lm_head.weight is ours.transformer.wte.weight


@pytest.mark.parametrize("c", [SMALL, Config(vocab=50, context=8, layers=1, dim=24, heads=3)], ids=["l2", "l1"])
def test_outputs_match_the_reference_with_its_weights(c: Config) -> None:
    spec = compiled(c)
    assert spec.costs.total.params == gpt2_params(c)
    assert spec.costs.total.macs == gpt2_macs(c)
    torch.manual_seed(0)
    reference = GPT(c).eval()
    ours = build_module(spec).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    GPT(c).load_state_dict(ours.state_dict(), strict=True)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    tokens = torch.randint(0, c.vocab, (3, c.context), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = reference(tokens)
        got = ours(tokens)
    assert got.shape == (3, c.context, c.vocab)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # causal: a change at the last position leaves every earlier position's logits as they were
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % c.vocab
    with torch.no_grad():
        again = ours(changed)
    torch.testing.assert_close(again[:, :-1], got[:, :-1], rtol=0, atol=1e-6)
    assert not torch.allclose(again[:, -1], got[:, -1])


def test_onnx_export_of_a_small_configuration_is_verified() -> None:
    spec = compiled(SMALL)
    torch.manual_seed(0)
    module = build_module(spec).eval()
    module.load_state_dict(GPT(SMALL).state_dict(), strict=True)
    model = export_onnx(spec, module.state_dict())
    names = [init.name for init in model.graph.initializer]
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names  # one tensor for the tie
    assert "transformer.wpe.weight/tensor" in names  # a `parameter` step's initializer
    assert sum(1 for n in model.graph.node if n.op_type == "Slice") >= 3 * SMALL.layers  # q, k and v per block
    report = verify_onnx(spec, model, module)
    assert report.ok, report.diffs


@pytest.mark.slow
def test_full_width_outputs_and_onnx_at_a_short_context() -> None:
    """GPT-2 small's every size but the context (64 positions): outputs and the ONNX export (~0.5 GB of weights)."""
    c = Config(context=64)
    spec = compiled(c)
    torch.manual_seed(0)
    reference = GPT(c).eval()
    ours = build_module(spec).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    tokens = torch.randint(0, c.vocab, (2, c.context), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(tokens), reference(tokens), rtol=0, atol=1e-5)
    del reference
    model = export_onnx(spec, ours.state_dict())
    assert verify_onnx(spec, model, ours).ok
