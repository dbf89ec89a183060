"""`archc import torch package.module:callable`: tracing with torch.fx, module paths as ids, the weights carried,
and the command's refusals (exit codes, messages, no traceback)."""

from __future__ import annotations

from pathlib import Path

import torch
from cli_runner import run

from archc.compiler import compile_file
from archc.emit.torch_module import build_module
from tests.import_models import small


def test_small_model_round_trips_with_its_weights(tmp_path: Path) -> None:
    spec, weights = tmp_path / "small.yaml", tmp_path / "small.pt"
    result = run("import", "torch", "tests.import_models:small", "-o", str(spec), "--weights-out", str(weights))
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert "stage: {id: layer, block: " in text and "repeat: 3" in text and "- residual:" in text
    compiled = compile_file(spec)
    reference = small().eval()
    expected = sum(p.numel() for p in reference.parameters())
    assert compiled.costs.total.params == expected == 8 * 3 * 9 + 8 + 3 * (8 * 8 * 9 + 16) + 8 * 10 + 10
    module = build_module(compiled).eval()
    state = torch.load(weights, weights_only=True)
    assert sorted(state) == sorted(reference.state_dict())
    module.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), atol=1e-5, rtol=1e-5)
    exported = tmp_path / "small.onnx"
    result = run("export", "onnx", str(spec), "-o", str(exported), "--weights", str(weights))
    assert result.exit_code == 0, result.output


def test_unsupported_module_is_named(tmp_path: Path) -> None:
    result = run("import", "torch", "tests.import_models:unsupported", "-o", str(tmp_path / "s.yaml"))
    assert result.exit_code == 1
    assert "E601: odd: module odd (Upsample) is not supported" in result.stderr
    assert not (tmp_path / "s.yaml").exists() and "Traceback" not in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "s.yaml")
    cases = {
        "tests.import_models:not_a_model": "returned int, not a torch.nn.Module",
        "tests.import_models:missing": "tests.import_models has no attribute 'missing'",
        "no_such_package_xyz.models:net": "cannot import no_such_package_xyz.models: ModuleNotFoundError",
    }
    for target, message in cases.items():
        result = run("import", "torch", target, "-o", out)
        assert result.exit_code == 2 and message in result.stderr, (target, result.stderr)
    result = run("import", "torch", "tests.import_models:small", "-o", out, "--scale", "n")
    assert result.exit_code == 2 and "--scale applies to ultralytics models only" in result.stderr
    (tmp_path / "s.yaml").write_text("keep")
    result = run("import", "torch", "tests.import_models:small", "-o", out)
    assert result.exit_code == 2 and (tmp_path / "s.yaml").read_text() == "keep"
