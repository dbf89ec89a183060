"""`archc mem`: the report, the JSON, the batch that fits, dtypes, usage errors, speed, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import run

from archc.compiler import compile_file
from archc.memory.dtypes import parse_size
from archc.memory.plan import plan_memory

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = str(ROOT / "specs" / "resnet50.yaml")
GIB = 2**30


def test_training_report_of_resnet50_with_adam() -> None:
    result = run("mem", RESNET50, "--batch", "32", "--train", "--optimizer", "adam", "--fit", "16GiB")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Model: resnet50    batch: 32    dtype: fp32    training with adam"
    totals = {line.split("  ")[0]: line for line in lines}
    # torchvision's 25,557,032 parameters in float32, a gradient each, Adam's two moments and 161 step counters
    assert "102,228,128 B" in totals["Parameters"]
    assert "102,228,128 B" in totals["Gradients"]
    assert "204,456,900 B" in totals["Optimizer state"]
    assert lines[-1] == ("Fit 16.00 GiB: batch 194 at most (training at batch 194 needs 15.96 GiB, at batch 195 "
                         "16.04 GiB)")
    assert totals["Step peak"].endswith("in the backward of 'layer4.2.1')")  # where the backward starts
    assert lines[2] == "Largest saved-for-backward layers (10 of 175):"
    assert lines[3].split() == ["Layer", "Op", "Saves", "for", "backward", "Bytes", "at", "batch", "32"]
    assert lines[5].startswith("layer1.0.bn3") and lines[5].endswith("98.00 MiB")  # 256 x 56 x 56 x 4 B x 32


def test_fit_is_the_largest_batch_that_fits() -> None:
    for name, optimizer in (("resnet50", "adam"), ("lenet5", None), ("densenet121", "sgd"), ("vit_b_16", "adamw")):
        plan = plan_memory(compile_file(ROOT / "specs" / f"{name}.yaml"), optimizer=optimizer)
        for budget in (GIB, 16 * GIB, 80 * GIB):
            batch = plan.largest_batch(budget)
            if batch:
                assert plan.total(batch) <= budget < plan.total(batch + 1)
            else:  # ViT-B/16 with AdamW: 1.37 GB of weights, gradients and moments
                assert (name, budget) == ("vit_b_16", GIB) and plan.total(1) > budget


def test_fit_reports_when_not_even_one_sample_fits() -> None:
    result = run("mem", RESNET50, "--train", "--fit", "100MiB")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("Fit 100.00 MiB: not even batch 1 (training at batch 1 needs ")


def test_json_carries_every_figure_in_bytes() -> None:
    result = run("mem", RESNET50, "--json", "--batch", "4", "--train", "--optimizer", "momentum", "--fit", "8GiB")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    plan = plan_memory(compile_file(RESNET50), batch=4, optimizer="momentum")
    assert data["mode"] == "train" and data["optimizer"] == "momentum" and data["batch"] == 4
    assert data["bytes"] == {"parameters": 102_228_128, "buffers": plan.weights.buffers, "gradients": 102_228_128,
                             "optimizer_state": 102_228_128, "activations": plan.activations, "peak": plan.peak,
                             "total": plan.total()}
    # what lives across steps, and the step's peak (gradients and saved tensors among what it holds)
    assert data["bytes"]["total"] == 102_228_128 * 2 + plan.weights.buffers + plan.peak
    # the saved tensors are freed as the gradients grow: never all of both at once
    assert max(plan.gradients, plan.activations) <= plan.peak < plan.gradients + plan.activations
    assert data["fit"] == {"budget": 8 * GIB, "batch": plan.largest_batch(8 * GIB)}
    assert len(data["layers"]) == 175
    first = data["layers"][0]
    assert first["name"] == "conv1" and first["saves"] == ["input"]
    assert first["saved_per_sample"] == 3 * 224 * 224 * 4  # the image, kept for the weight's gradient
    assert sum(layer["saved_per_sample"] for layer in data["layers"]) == data["saved_for_backward"]["per_sample"]


def test_inference_report_names_the_peak() -> None:
    result = run("mem", RESNET50, "--batch", "8", "--top", "3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Model: resnet50    batch: 8    dtype: fp32    inference"
    assert lines[2] == "Layers at the highest memory (3 of 175), batch 8:"
    plan = plan_memory(compile_file(RESNET50), batch=8)
    assert plan.activations == 8 * plan.inference.peak
    activations = next(line for line in lines if line.startswith("Activations"))
    assert f"{plan.activations:,} B" in activations and "the peak, while 'layer1.0.downsample.1' runs" in activations


def test_half_precision_halves_floats_but_not_indices_or_statistics() -> None:
    compiled = compile_file(ROOT / "specs" / "resnet18.yaml")
    full = plan_memory(compiled, batch=2, optimizer="sgd")
    half = plan_memory(compiled, batch=2, dtype="fp16", optimizer="sgd")
    assert half.weights.params * 2 == full.weights.params
    indices = 64 * 56 * 56 * 8  # the max pooling's int64 indices per sample
    assert half.saved.per_sample == (full.saved.per_sample - indices) // 2 + indices
    assert half.saved.fixed == full.saved.fixed  # batch norm statistics stay float32
    assert plan_memory(compiled, dtype="int8").weights.params * 4 == full.weights.params


@pytest.mark.parametrize(("args", "message"), [
    (["--batch", "0"], "archc: error: --batch: expected 1 or more; got 0"),
    (["--dtype", "fp64"], "archc: error: --dtype: expected one of fp32, fp16, bf16, int8; got 'fp64'"),
    (["--train", "--optimizer", "lamb"], "archc: error: --optimizer: expected one of sgd, momentum, adam, adamw; got "
                                         "'lamb'"),
    (["--optimizer", "adam"], "archc: error: --optimizer applies to training: add --train"),
    (["--train", "--dtype", "int8"], "archc: error: --dtype int8 plans inference only: training needs floating-point "
                                     "weights and gradients (use fp32, fp16 or bf16 with --train)"),
    (["--fit", "16XB"], "archc: error: --fit: expected a size such as 16GiB, 512MiB, 8GB or 1000000 (bytes); got "
                        "'16XB'"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = run("mem", RESNET50, *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_an_invalid_spec_is_a_located_diagnostic(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {out: 4, k: 9}\n")
    result = run("mem", str(spec), "--train")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{spec}:4:5: E304: ")


def test_sizes() -> None:
    assert [parse_size(s) for s in ("16GiB", "16G", "16 gib", "8GB", "512MiB", "1.5GiB", "1000")] == [
        16 * GIB, 16 * GIB, 16 * GIB, 8 * 10**9, 512 * 2**20, 3 * 2**29, 1000]


def test_planning_the_largest_zoo_spec_takes_under_a_second() -> None:
    compiled = compile_file(ROOT / "specs" / "densenet201.yaml")
    start = time.perf_counter()
    plan_memory(compiled, batch=32, optimizer="adam")
    assert time.perf_counter() - start < 1.0


_NO_TORCH = """
import sys
sys.argv = ["archc", "mem", "specs/resnet50.yaml", "--train", "--optimizer", "adam", "--fit", "16GiB"]
from archc.cli.main import main
code = main()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime", "torchvision"))
print(code, heavy, file=sys.stderr)
"""


def test_mem_never_imports_torch_or_onnx() -> None:
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.stderr.strip().splitlines()[-1] == "0 []"
    assert "Optimizer state" in proc.stdout
