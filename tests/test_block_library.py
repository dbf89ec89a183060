"""The block library (archc/blocks/*.yaml): every block equals torchvision's module (state_dict names and shapes,
strict loading, eval outputs), a spec's own block replaces a library block, and mistakes point at the library file."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError
from archc.lower.library import LIBRARY_DIR, library_names

torch = pytest.importorskip("torch")
nn = torch.nn


def _spec(call: str, shape: list[int]) -> str:
    return f"name: lib\ninputs: {{x: {shape}}}\nbody:\n  - {call}\n"


def _reference(name: str) -> nn.Module:
    from tests.torchvision_ref import models

    tv = models()
    from torchvision.models import convnext, efficientnet, swin_transformer, vision_transformer
    from torchvision.ops.misc import SqueezeExcitation

    assert tv is not None
    if name == "squeeze_excitation":
        return SqueezeExcitation(32, 8)
    if name == "mbconv":
        return efficientnet.MBConv(efficientnet.MBConvConfig(6, 5, 1, 24, 24, 1), 0.1, nn.BatchNorm2d)
    if name == "mbconv_stride":
        return efficientnet.MBConv(efficientnet.MBConvConfig(6, 3, 2, 16, 24, 1), 0.0, nn.BatchNorm2d)
    if name == "fused_mbconv":
        return efficientnet.FusedMBConv(efficientnet.FusedMBConvConfig(4, 3, 1, 24, 24, 1), 0.1,
                                        partial(nn.BatchNorm2d, eps=1e-3))
    if name == "fused_mbconv_1":
        return efficientnet.FusedMBConv(efficientnet.FusedMBConvConfig(1, 3, 1, 24, 24, 1), 0.0,
                                        partial(nn.BatchNorm2d, eps=1e-3))
    if name == "convnext_block":
        return convnext.CNBlock(32, 1e-6, 0.1)
    if name.startswith("swin_block"):  # shifted, not shifted, and shifted in name only (one window covers the map)
        shift = {"swin_block": [2, 2], "swin_block_unshifted": [0, 0], "swin_block_one_window": [2, 2]}[name]
        return swin_transformer.SwinTransformerBlock(32, 4, [4, 4], shift, stochastic_depth_prob=0.1)
    if name == "patch_merging":
        return swin_transformer.PatchMerging(32)
    return vision_transformer.EncoderBlock(4, 32, 64, 0.0, 0.0, partial(nn.LayerNorm, eps=1e-6))


CASES = {
    "squeeze_excitation": ("squeeze_excitation: {id: t, squeeze: 8}", [32, 6, 6]),
    "mbconv": ("mbconv: {id: t, out: 24, k: 5, expand: 6, sd: 0.1}", [24, 8, 8]),
    "mbconv_stride": ("mbconv: {id: t, out: 24, k: 3, expand: 6, stride: 2}", [16, 8, 8]),
    "fused_mbconv": ("fused_mbconv: {id: t, out: 24, expand: 4, sd: 0.1}", [24, 8, 8]),
    "fused_mbconv_1": ("fused_mbconv: {id: t, out: 24, expand: 1}", [24, 8, 8]),
    "convnext_block": ("convnext_block: {id: t, sd: 0.1}", [32, 6, 6]),
    "transformer_encoder_layer": ("transformer_encoder_layer: {id: t, dim: 32, heads: 4, mlp_dim: 64}", [5, 32]),
    "swin_block": ("swin_block: {id: t, dim: 32, heads: 4, res: 8, window: 4, shift: 2, sd: 0.1}", [8, 8, 32]),
    "swin_block_unshifted": ("swin_block: {id: t, dim: 32, heads: 4, res: 8, window: 4}", [8, 8, 32]),
    "swin_block_one_window": ("swin_block: {id: t, dim: 32, heads: 4, res: 4, window: 4, shift: 2}", [4, 4, 32]),
    "patch_merging": ("patch_merging: {id: t, dim: 32, res: 8}", [8, 8, 32]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_library_blocks_are_torchvisions(case: str) -> None:
    from archc.emit.torch_module import build_module

    call, shape = CASES[case]
    compiled = compile_text(_spec(call, shape), "lib.yaml")
    module = build_module(compiled).eval()
    reference = _reference(case).eval()
    mine = {key.removeprefix("t."): tuple(value.shape) for key, value in module.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in reference.state_dict().items()}
    assert mine == theirs
    assert compiled.costs.total.params == sum(p.numel() for p in reference.parameters())
    with torch.no_grad():
        for value in reference.state_dict().values():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) + 0.5)
    module.load_state_dict({f"t.{k}": v for k, v in reference.state_dict().items()}, strict=True)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        assert torch.allclose(module(x), reference(x), atol=1e-4, rtol=1e-4)


def test_the_library_holds_the_promised_blocks() -> None:
    assert library_names() == ["conv_norm_act", "convnext_block", "fused_mbconv", "mbconv", "patch_merging",
                               "squeeze_excitation", "swin_block", "transformer_encoder_layer"]


def test_a_specs_own_block_replaces_the_library_one() -> None:
    text = """
name: own
inputs: {x: [8, 4, 4]}
blocks:
  squeeze_excitation:
    args: {squeeze: int}
    body:
      - conv: {id: mine, out: $squeeze, k: 1}
body:
  - squeeze_excitation: {id: se, squeeze: 2}
"""
    graph = compile_text(text, "own.yaml").graph
    assert "se.mine" in graph and "se.fc1" not in graph


def test_a_mistake_inside_a_library_block_points_at_the_library_file() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(_spec("convnext_block: {id: t}", [5, 32]), "lib.yaml")
    path = Path(LIBRARY_DIR / "convnext_block.yaml")
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "- permute: {axes: [1, 2, 0]}" in text)
    assert [d.format() for d in info.value.diagnostics] == [
        f"{path}:{line}:21: E306: t.block.1: permute axes [1, 2, 0] expects each of 0..1 exactly once for [5, 32] "
        "(input from conv 't.block.0')"]


def test_a_mistake_in_the_call_points_at_the_spec() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(_spec("mbconv: {id: t, out: 24, kk: 3}", [16, 8, 8]), "lib.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "lib.yaml:4:30: E106: t: block 'mbconv' has no argument 'kk'; did you mean 'k'?"]


def test_hints_for_an_unknown_name_offer_the_specs_own_blocks_not_the_library() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(_spec("stage: {block: mbconvv, repeat: 2}", [8, 4, 4]), "lib.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "lib.yaml:4:20: E104: 0: unknown block 'mbconvv'; this spec defines no `blocks:`"]
