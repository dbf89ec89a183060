"""Warnings (W-codes): valid specs that probably do not mean what they say, located like errors, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import archc.cli.main  # noqa: F401  (registers every command, build included)
from archc.cli.app import app
from archc.compiler import compile_file, compile_text
from archc.error_codes import CODES

ROOT = Path(__file__).resolve().parent.parent

FORGOTTEN_FLATTEN = """\
name: head
inputs: {image: [3, 8, 8]}
body:
  - conv: {out: 4, k: 3, p: 1}
  - relu
  - global_avgpool
  - linear: {id: fc, out: 10}
"""
W301 = ("head.yaml:7:5: W301: fc: linear acts on the last axis only: on [4, 1, 1] from global_avgpool '2' it maps 1 "
        "values to 10 and keeps the other axes, giving [4, 1, 10]; for a classifier put `flatten` before it (after "
        "`global_avgpool` for one feature per channel)")


def test_linear_on_a_feature_map_warns() -> None:
    compiled = compile_text(FORGOTTEN_FLATTEN, "head.yaml")
    assert [d.format() for d in compiled.warnings] == [W301]
    assert "W301" in CODES


@pytest.mark.parametrize("fix", [
    "  - flatten\n  - linear: {id: fc, out: 10}\n",           # the classifier meant
    "  - permute: {axes: [1, 2, 0]}\n  - linear: {id: fc, out: 10}\n",  # the last axis meant, arranged on purpose
])
def test_no_warning_once_the_axes_are_arranged(fix: str) -> None:
    text = FORGOTTEN_FLATTEN.replace("  - linear: {id: fc, out: 10}\n", fix)
    assert compile_text(text, "head.yaml").warnings == []


def test_no_warning_for_a_sequence() -> None:
    """[tokens, features] is what a last-axis linear is for (gated_cnn's decoder)."""
    text = "name: seq\ninputs: {x: [16, 32]}\nbody:\n  - conv: {out: 8, k: 3, p: 1}\n  - linear: {out: 4}\n"
    assert compile_text(text).warnings == []


def test_zoo_specs_have_no_warnings() -> None:
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        assert compile_file(path).warnings == [], path.name


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    Path("head.yaml").write_text(FORGOTTEN_FLATTEN)
    return "head.yaml"


def test_check_prints_the_warning_on_stderr_and_succeeds(spec: str) -> None:
    result = CliRunner().invoke(app, ["check", spec])
    assert result.exit_code == 0, result.output
    assert result.stderr == W301 + "\n"
    assert result.stdout.startswith("head.yaml: ok (4 layers")


def test_summary_prints_the_warning_on_stderr(spec: str) -> None:
    result = CliRunner().invoke(app, ["summary", "--json", spec])
    assert result.exit_code == 0, result.output
    assert result.stderr == W301 + "\n"
    assert result.stdout.startswith("{")


def test_build_prints_the_warning_on_stderr(spec: str) -> None:
    pytest.importorskip("onnxruntime")
    result = CliRunner().invoke(app, ["build", spec, "-o", "out"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == W301
    assert (Path("out") / "model.onnx").is_file()
