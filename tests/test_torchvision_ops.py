"""Ops written to reproduce a torchvision module exactly, without importing torchvision in the generated code:
stochastic depth (`drop_path` = StochasticDepth(p, "row")) and ConvNeXt's LayerNorm2d (`layernorm` with
`channels_first`)."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text

torch = pytest.importorskip("torch")

from op_cases import randomise  # noqa: E402

from archc.emit.torch_module import build_module  # noqa: E402


def _spec(step: str, shape: str) -> str:
    return f"name: one\ninputs: {{x: {shape}}}\nbody:\n  - {step}\n"


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9, 1.0])
def test_drop_path_draws_torchvisions_mask_under_the_same_seed(p: float) -> None:
    from torchvision_ref import models

    models()  # imports torchvision (and its ops) the way this torch build tolerates
    from torchvision.ops import StochasticDepth

    module = build_module(compile_text(_spec(f"drop_path: {{id: t, p: {p}}}", "[3, 4, 4]"), "<t>")).train()
    reference = StochasticDepth(p, "row").train()
    x = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        want = reference(x)
        torch.manual_seed(seed)
        got = module(x)
        assert torch.equal(got, want)
    kept = [bool(s.any()) for s in got]
    assert any(kept) == (p < 1.0) and not all(kept)  # the seeded draws keep some samples and drop others
    assert torch.equal(module.eval()(x), x)  # the identity at inference


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest() -> None:
    module = build_module(compile_text(_spec("drop_path: {id: t, p: 0.5}", "[2, 3]"), "<t>")).train()
    torch.manual_seed(7)
    x = torch.ones(64, 2, 3)
    y = module(x)
    per_sample = {float(v) for v in y.flatten(1).unique(dim=0).flatten()}
    assert per_sample == {0.0, 2.0}  # each sample all dropped or all scaled by 1 / (1 - p)
    assert all(len(set(s.flatten().tolist())) == 1 for s in y)


def test_channels_first_layernorm_is_convnexts_layernorm2d() -> None:
    from torchvision_ref import models

    reference = models().convnext.LayerNorm2d(8, eps=1e-6).eval()
    randomise(reference, 4)
    module = build_module(compile_text(_spec("layernorm: {id: norm, channels_first: true, eps: 1.0e-6}",
                                             "[8, 5, 6]"), "<t>")).eval()
    assert {k: tuple(v.shape) for k, v in module.norm.state_dict().items()} == {"weight": (8,), "bias": (8,)}
    module.norm.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 8, 5, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), rtol=1e-6, atol=1e-6)
