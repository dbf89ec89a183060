"""Provenance in ONNX: every node archc emits carries its layer path and spec position; `archc where` prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from archc.cli.main import app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
name: tiny
inputs: {image: [3, 8, 8]}
body:
  - conv: {id: stem, out: 4, k: 3, p: 1}
  - relu
  - residual:
      body:
        - conv: {id: c1, out: 4, k: 3, p: 1}
  - global_avgpool
  - flatten
  - linear: {id: fc, out: 2}
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("where")
    spec, model = root / "tiny.yaml", root / "tiny.onnx"
    spec.write_text(SPEC, encoding="utf-8")
    result = CliRunner().invoke(app, ["export", "onnx", str(spec), "-o", str(model), "--no-fold"])
    assert result.exit_code == 0, result.stderr
    return spec, model


def test_every_node_carries_its_layer_and_spec_position(exported: tuple[Path, Path]) -> None:
    spec, model = exported
    nodes = onnx.load(str(model)).graph.node
    meta = {n.name: {p.key: p.value for p in n.metadata_props} for n in nodes}
    assert meta["stem"] == {"archc.layer": "stem", "archc.source": f"{spec}:4:5"}
    assert meta["c1"] == {"archc.layer": "c1", "archc.source": f"{spec}:8:11"}
    assert meta["fc"]["archc.source"] == f"{spec}:11:5"
    unmarked = [n.name for n in nodes if "archc.source" not in meta[n.name]]
    assert all(n.op_type == "Identity" for n in nodes if n.name in unmarked)  # only the outputs' renames


def test_where_prints_the_position_of_a_node(exported: tuple[Path, Path]) -> None:
    spec, model = exported
    result = CliRunner().invoke(app, ["where", str(model), "c1"])
    assert (result.exit_code, result.stdout) == (0, f"{spec}:8:11: c1\n")
    add = next(n.name for n in onnx.load(str(model)).graph.node if n.op_type == "Add")
    result = CliRunner().invoke(app, ["where", str(model), add])
    assert (result.exit_code, result.stdout) == (0, f"{spec}:6:5: {add}\n")


def test_where_refuses_unknown_nodes_and_files(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, model = exported
    result = CliRunner().invoke(app, ["where", str(model), "c11"])
    assert result.exit_code == 2
    assert result.stderr == f"archc: error: {model} has no node named 'c11'; did you mean 'c1'?\n"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\xfenot a model")
    result = CliRunner().invoke(app, ["where", str(junk), "c1"])
    assert result.exit_code == 2 and result.stderr.startswith(f"archc: error: cannot read {junk} as ONNX: ")


def test_where_does_not_import_torch(exported: tuple[Path, Path]) -> None:
    spec, model = exported
    script = ("import sys\nfrom archc.cli.main import main\nsys.argv = ['archc', 'where', sys.argv[1], 'stem']\n"
              "code = main()\nprint('torch' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.splitlines() == [f"{spec}:4:5: stem", "False 0"]
