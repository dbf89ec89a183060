"""Ops emitting several statements (``TorchCode.steps``): named temporaries chosen by forward's variable namer,
deleted after the layer, and the composites' model.py within the project's ruff rules, line length included."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archc.compiler import compile_text
from archc.emit.onnx_export import export_onnx, verify_onnx
from archc.emit.torch_module import build_module
from archc.emit.torch_source import torch_source
from archc.emit.torch_source.text import fit

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
    assert "        padded = F.pad(\n            image,\n            (\n" in source  # wrapped inside its brackets
    assert "x = self.gated.conv(padded) * torch.sigmoid(self.gated.gate(padded))\n        del padded\n" in source


def test_composites_model_py_passes_ruff_with_line_length(tmp_path: Path) -> None:
    path = tmp_path / "composites.py"
    path.write_text(torch_source(compile_text(COMPOSITES)), encoding="utf-8")
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


WIDE_TABLE = """
name: wide_table
inputs: {image: [6, 14, 14]}
body:
  - conv_table:
      id: c3
      k: 5
      connections: [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [0, 4, 5], [0, 1, 5], [0, 1, 2, 3], [1, 2, 3, 4],
                    [2, 3, 4, 5], [0, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 5], [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
                    [0, 1, 2, 3, 4, 5]]
  - drop_path: {id: dp, p: 0.012345678901234567}
"""


def test_a_long_constructor_and_statement_are_wrapped_inside_their_brackets(tmp_path: Path) -> None:
    source = torch_source(compile_text(WIDE_TABLE))
    assert "        self.c3 = nn.Conv2d(6, 16, kernel_size=5).apply(\n" in source
    assert "                torch.tensor([\n" in source  # the lone list argument opens with its call
    path = tmp_path / "wide_table.py"
    path.write_text(source, encoding="utf-8")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), str(path)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    module = build_module(compile_text(WIDE_TABLE))
    assert int(module.c3.mask.sum()) == 60  # the table's 60 connections survive the wrapping


@pytest.mark.parametrize("line", [
    "        x = self.c3(x) + torch.tensor([[1., 0.], [0., 1.], [1., 1.]] * 40).view(2, 2, 1, 1).sum() * "
    "self.scale(x, 'a, b', \"c)\")",
    "        y = (x * x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(0.9882352941176471).div_(0.9882352941176471) if "
    "self.training else x)",
    "        z = tuple(relative_position_bias_table_of_a_long_name[i] for i in range(100000000000000000000000000000) "
    "if i % 2)",
    "        self.add_module('0', nn.Conv2d(in_channels, out, kernel_size=k, stride=s, padding=k // 3, bias=False, "
    "groups=groups))",
])
def test_fit_changes_only_whitespace_inside_brackets(line: str) -> None:
    lines = fit(line, 0)
    assert len(lines) > 1 and max(map(len, lines)) <= 120
    assert ast.dump(ast.parse("\n".join(lines).strip())) == ast.dump(ast.parse(line.strip()))
