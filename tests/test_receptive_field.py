"""Receptive fields: exact figures for known networks, and agreement with the field PyTorch's gradients show.

The gradient of one output position with respect to the input is non-zero exactly on the input positions that
position reads (with positive inputs and all-ones weights nothing cancels), so its extent is the receptive field.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from archc.compiler import compile_file, compile_text
from archc.emit.torch_module import build_module
from archc.passes.receptive_field import Field


def _field(text: str, layer: str) -> Field:
    return compile_text(text).receptive_fields()[layer]


def test_unet_decoder_brings_the_stride_back_to_one_pixel() -> None:
    fields = compile_file("specs/unet.yaml").receptive_fields()
    bottleneck = fields["bottleneck.conv2"]
    assert (bottleneck.pixels, bottleneck.stride) == ((140, 140), (16, 16))
    # a 2x2 stride-2 transposed convolution reads one input per output: the field stays, the stride halves
    up4 = fields["up4.upconv"]
    assert (up4.pixels, up4.stride) == ((140, 140), (8, 8))
    head = fields["head"]
    assert (head.pixels, head.stride) == ((200, 200), (1, 1))
    assert str(head) == "200 (stride 1)"


def test_fractional_strides_are_exact_and_printed_as_fractions() -> None:
    text = """
name: superres
inputs: {x: [1, 8, 8]}
body:
  - pixel_shuffle: {r: 1}
  - conv: {out: 4, k: 3, p: 1}
  - pixel_shuffle: {r: 2}
  - conv: {out: 1, k: 3, p: 1}
"""
    field = _field(text, "3")
    assert field.stride == (Fraction(1, 2), Fraction(1, 2))
    assert field.size == (4, 4)  # 3 from the first conv, plus 2 taps of half a pixel
    assert str(field) == "4 (stride 1/2)"
    assert field.to_json() == {"size": [4, 4], "stride": [0.5, 0.5], "padding": [1.5, 1.5]}


UPSAMPLERS = {
    "conv_transpose k4 s2 p1": "conv_transpose: {out: 1, k: 4, s: 2, p: 1, bias: false}",
    "conv_transpose k3 s2 p1 op1": "conv_transpose: {out: 1, k: 3, s: 2, p: 1, output_padding: 1, bias: false}",
    "conv_transpose k2 s2": "conv_transpose: {out: 1, k: 2, s: 2, bias: false}",
    "conv_transpose k3 s1 p1": "conv_transpose: {out: 1, k: 3, p: 1, bias: false}",
    "upsample nearest x2": "upsample: {scale: 2}",
    "upsample bilinear x2": "upsample: {scale: 2, mode: bilinear}",
    "upsample bilinear x2 aligned": "upsample: {scale: 2, mode: bilinear, align_corners: true}",
    "pixel_shuffle r2": "pixel_shuffle: {r: 2}",
}


def _gradient_fields(module: torch.nn.Module, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first input row, row extent) of every output row's field, measured along the height axis."""
    for name, tensor in module.state_dict().items():
        if name.endswith("weight"):
            tensor.fill_(1.0)
    x = torch.rand(1, *shape) + 0.5
    x.requires_grad_(True)
    out = module(x)
    fields = []
    for row in range(out.shape[2]):
        (grad,) = torch.autograd.grad(out[0, :, row, out.shape[3] // 2].sum(), x, retain_graph=True)
        rows = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
        fields.append((int(rows.min()), int(rows.max() - rows.min() + 1)))
    return fields


@pytest.mark.parametrize("case", sorted(UPSAMPLERS))
def test_upsampling_fields_match_the_gradients(case: str) -> None:
    """The field's size is the widest any output position reads; each position's reads start where the stride and
    padding put them, to within the stride of the layer below (a fractional position cannot say which of the
    up-sampled copies of an input it is)."""
    text = f"""
name: probe
inputs: {{x: [4, 12, 12]}}
body:
  - conv: {{out: 4, k: 3, s: 2, p: 1, bias: false}}
  - {UPSAMPLERS[case]}
"""
    compiled = compile_text(text)
    below = compiled.receptive_fields()["0"]
    field = compiled.receptive_fields()["1"]
    measured = _gradient_fields(build_module(compiled).eval(), (4, 12, 12))
    inside = [(row, first, extent) for row, (first, extent) in enumerate(measured)
              if row * field.stride[0] - field.padding[0] >= 0
              and row * field.stride[0] - field.padding[0] + field.size[0] <= 12]  # not cut short by a border
    assert len(inside) >= 3, measured
    assert max(extent for _, _, extent in inside) == field.pixels[0], measured
    for row, first, _ in inside:
        assert abs(first - (row * field.stride[0] - field.padding[0])) < below.stride[0], (row, measured)


SQUEEZE_EXCITATION = """
name: se_probe
inputs: {x: [4, 40, 40]}
blocks:
  se:
    body:
      - branches:
          merge: mul
          paths:
            - [global_avgpool, {conv: {out: 2, k: 1}}, relu, {conv: {out: 4, k: 1}}, sigmoid]
            - []
body:
  - conv: {out: 4, k: 3, s: 2, p: 1, bias: false}
  - se
  - conv: {out: 4, k: 3, s: 2, p: 1, bias: false}
  - se
  - conv: {out: 4, k: 3, p: 1, bias: false}
"""


def test_squeeze_excitation_gate_adds_nothing_spatial() -> None:
    """A globally pooled gate is broadcast over the feature map it scales: every position reads the same gate value,
    so the field after the `mul` is the feature map's (it took the gate's whole-image field and stride, and
    compounded: MobileNetV3's features reached 78,285,599,643 pixels)."""
    compiled = compile_text(SQUEEZE_EXCITATION)
    fields = compiled.receptive_fields()
    assert (fields["1.0.0.0"].pixels, fields["1.0.0.0"].stride) == ((41, 41), (40, 40))  # the gate: the whole image
    assert fields["1.0"] == fields["0"] == Field((3, 3), (2, 2), (1, 1))
    assert fields["3.0"] == fields["2"] == Field((7, 7), (4, 4), (3, 3))
    assert fields["4"] == Field((15, 15), (4, 4), (7, 7))


def test_squeeze_excitation_field_matches_the_gradients() -> None:
    """With each gate held constant (its input detached: the global context every position shares), the gradient
    of an output row spans exactly the field archc reports."""
    compiled = compile_text(SQUEEZE_EXCITATION)
    field = compiled.receptive_fields()["4"]
    module = build_module(compiled).eval()
    for gate in ("1", "3"):
        first_conv = module.get_submodule(f"{gate}.0.0.1")
        first_conv.register_forward_pre_hook(lambda _module, args: (args[0].detach(),))
    measured = _gradient_fields(module, (4, 40, 40))
    inside = [(row, first, extent) for row, (first, extent) in enumerate(measured)
              if row * field.stride[0] - field.padding[0] >= 0
              and row * field.stride[0] - field.padding[0] + field.size[0] <= 40]
    assert len(inside) >= 3, measured
    assert [extent for _, _, extent in inside] == [field.pixels[0]] * len(inside), measured
    assert [first for _, first, _ in inside] == [row * 4 - 7 for row, _, _ in inside], measured
