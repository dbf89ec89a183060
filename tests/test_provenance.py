"""Positions carry their file: a layer of a library block or of an included file points at that file, in model.py's
comments, in the ONNX nodes' metadata (`archc where`) and in diagnostics found after lowering."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.errors import Diagnostic, Pos
from archc.lower.library import LIBRARY_DIR

PARTS = """name: parts
inputs: {x: [4]}
blocks:
  unit:
    args: {out: int}
    body:
      - conv: {id: conv, out: $out, k: 3, p: 1}
      - relu
body: [relu]
"""
NET = """name: net
inputs: {image: [8, 8, 8]}
include: [sub/parts.yaml]
body:
  - conv: {id: stem, out: 16, k: 1}
  - squeeze_excitation: {id: se, squeeze: 4}
  - unit: {id: u, out: 8}
"""


@pytest.fixture()
def spec(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "parts.yaml").write_text(PARTS, encoding="utf-8")
    path = tmp_path / "net.yaml"
    path.write_text(NET, encoding="utf-8")
    return path


def test_nodes_of_library_and_included_blocks_name_their_file(spec: Path) -> None:
    graph = compile_file(spec).graph
    library_file = str(LIBRARY_DIR / "squeeze_excitation.yaml")
    assert (graph.node("se.fc1").pos.line, graph.node("se.fc1").pos.file) == (16, library_file)
    assert (graph.node("u.conv").pos.line, graph.node("u.conv").pos.file) == (7, str(spec.parent / "sub/parts.yaml"))
    assert graph.node("stem").pos.file == ""  # the spec's own layers: the spec's file
    assert graph.scopes["se"].pos.file == ""  # the call is in the spec


def test_model_py_comments_name_the_library_and_included_files(spec: Path) -> None:
    pytest.importorskip("torch")
    from archc.emit.torch_source import torch_source

    source = torch_source(compile_file(spec))
    assert '    """squeeze_excitation (squeeze_excitation.yaml:3): torchvision\'s SqueezeExcitation' in source
    assert "        self.fc1 = nn.Conv2d(16, 4, kernel_size=1)  # squeeze_excitation.yaml:16\n" in source
    assert "        x = x * avgpool  # squeeze_excitation.yaml:11\n" in source
    assert '    """The block \'unit\' (parts.yaml:4)."""\n' in source
    assert "        self.conv = nn.Conv2d(16, 8, kernel_size=3, padding=1)  # parts.yaml:7\n" in source
    assert "        self.se = SqueezeExcitation()  # net.yaml:6\n" in source  # the call site: the spec's line
    assert "        x = self.u(x)  # net.yaml:7\n" in source


def test_archc_where_on_a_library_block_node_prints_the_library_file(spec: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from typer.testing import CliRunner

    from archc.cli.main import app

    model = tmp_path / "net.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", str(spec), "-o", str(model), "--no-verify"])
    assert result.exit_code == 0, result.stderr
    result = CliRunner().invoke(app, ["where", str(model), "se.fc1"])
    assert (result.exit_code, result.stdout) == (0, f"{LIBRARY_DIR / 'squeeze_excitation.yaml'}:16:17: se.fc1\n")
    result = CliRunner().invoke(app, ["where", str(model), "u.conv"])
    assert (result.exit_code, result.stdout) == (0, f"{spec.parent / 'sub' / 'parts.yaml'}:7:9: u.conv\n")
    result = CliRunner().invoke(app, ["where", str(model), "stem"])
    assert (result.exit_code, result.stdout) == (0, f"{spec}:5:5: stem\n")


def test_a_diagnostic_at_a_position_of_another_file_names_that_file() -> None:
    # the passes after lowering (warnings, budgets, emitters) locate at node.pos with the graph's file as default
    d = Diagnostic("W601", "m", "net.yaml", Pos(16, 17, "/lib/squeeze_excitation.yaml"), "se.fc1")
    assert d.format() == "/lib/squeeze_excitation.yaml:16:17: W601: se.fc1: m"
    assert Diagnostic("W601", "m", "net.yaml", Pos(5, 5), "stem").format() == "net.yaml:5:5: W601: stem: m"
