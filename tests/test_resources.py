"""Budgets for building, exporting and verifying: memory (E502) and verification compute (E503), checked from the
compiled graph before anything is allocated; a MemoryError is a resource error; embedding inputs get valid indices."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from archc.cli.app import OUT_OF_MEMORY, run_guarded
from archc.cli.main import app
from archc.compiler import compile_file, compile_text
from archc.errors import SpecError
from archc.limits import DEFAULT_LIMITS
from archc.passes.resources import check_resources, estimate, verify_macs

ROOT = Path(__file__).resolve().parent.parent

HUGE_INPUT = """name: huge_input
inputs: {x: [1000, 1000, 1000]}
body:
  - relu
"""

WIDE_CONVS = """name: wide_convs
params: {c: 4096}
inputs: {x: [3, 224, 224]}
body:
  - conv: {out: $c, k: 3, p: 1}
  - conv: {id: big, out: $c, k: 3, p: 1}
  - conv: {out: $c, k: 3, p: 1}
"""

SMALL = """name: small
inputs: {x: [4, 8, 8]}
body:
  - conv: {out: 8, k: 3, p: 1}
  - relu
"""

EMBEDDING = """name: tokens
inputs: {ids: {shape: [16], dtype: int64}, other: {shape: [4], dtype: int64}}
outputs: [emb, wide]
body:
  - reshape: {shape: [4, 4], from: ids}
  - embedding: {id: emb, num: 3, dim: 4}
  - embedding: {id: wide, num: 50, dim: 4, from: ids}
"""


def _refusal(text: str, **kwargs: object) -> str:
    with pytest.raises(SpecError) as info:
        check_resources(compile_text(text, "spec.yaml"), **kwargs)  # type: ignore[arg-type]
    (diagnostic,) = info.value.diagnostics
    return diagnostic.format()


def test_estimate_of_a_small_model_counts_each_part_exactly() -> None:
    need = estimate(compile_text(SMALL).graph, export=True, verify=True)
    assert need.weight_bytes == (8 * 4 * 9 + 8) * 4
    assert need.weight_copies == 4  # verifying: the module, onnxruntime's session and the file's bytes
    assert need.batch == 2
    # batch 2: the conv's output (4,096 bytes) next to the input (2,048), then the relu's next to the conv's
    assert need.activation_bytes == 8192
    assert need.workspace_bytes == 4 * 9 * 64 * 4  # the conv's input expanded for one image: 4 channels x 3x3 x 8x8
    assert need.harness_bytes == 2048 * 3 + 4096 * 2  # both outputs; compared a chunk at a time
    assert need.total == 1184 * 4 + 8192 * 2 + 9216 + 14336
    assert estimate(compile_text(SMALL).graph, export=True, verify=False).total == 1184 * 2
    assert estimate(compile_text(SMALL).graph, export=False, verify=False).total == 1184


def test_a_huge_input_is_refused_at_the_input_in_well_under_a_second() -> None:
    start = time.perf_counter()
    message = _refusal(HUGE_INPUT)
    assert time.perf_counter() - start < 0.5
    assert message.startswith("spec.yaml:2:10: E502: x: exporting to ONNX and verifying it needs about 67.1 GiB ("
                              "weights 0 bytes x 4 copies, activations 14.9 GiB at batch 2 x 2 runtimes, convolution "
                              "workspace 0 bytes, verification arrays 37.3 GiB), more than the 4.0 GiB allowed (limit "
                              "max_build_bytes); the largest value is 'x' with 7.5 GiB at batch 2.")
    assert message.endswith("raise the limit with --limit max_build_bytes=90000326656 if the machine has the memory")


def test_wide_convs_are_refused_and_the_suggested_limit_admits_them() -> None:
    message = _refusal(WIDE_CONVS)
    assert message.startswith("spec.yaml:5:5: E502: 0: exporting to ONNX and verifying it needs about 20.6 GiB "
                              "(weights 1.1 GiB x 4 copies, activations 3.1 GiB")
    suggested = int(message.rsplit("--limit max_build_bytes=", 1)[1].split()[0])
    compiled = compile_text(WIDE_CONVS, "spec.yaml", limits=DEFAULT_LIMITS.with_overrides({
        "max_build_bytes": suggested, "max_verify_macs": 10**15}))
    assert check_resources(compiled).total <= suggested


def test_export_without_verification_counts_only_the_weights() -> None:
    message = _refusal(WIDE_CONVS.replace("4096", "8192"), verify=False)
    assert message.startswith("spec.yaml:6:5: E502: big: exporting to ONNX needs about 9.0 GiB (weights 4.5 GiB x 2 "
                              "copies), more than the 4.0 GiB allowed (limit max_build_bytes); the largest layer is "
                              "'big' with 2.3 GiB of weights.")
    assert check_resources(compile_text(HUGE_INPUT), verify=False).total == 0


def test_building_the_module_is_refused_before_allocating() -> None:
    pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    compiled = compile_text(WIDE_CONVS, "spec.yaml", limits=DEFAULT_LIMITS.with_overrides({"max_build_bytes": 2**30}))
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        build_module(compiled)
    assert time.perf_counter() - start < 0.5
    assert info.value.diagnostics[0].format().startswith(
        "spec.yaml:6:5: E502: big: building the PyTorch module needs about 1.1 GiB (weights 1.1 GiB), more than the "
        "1.0 GiB allowed (limit max_build_bytes)")


def test_verification_compute_budget() -> None:
    narrower = WIDE_CONVS.replace("4096", "2048").replace("224, 224", "80, 80")
    compiled = compile_text(narrower, "spec.yaml")
    per_sample = compiled.costs.total.macs
    assert verify_macs(compiled.graph) == per_sample * 3 * 2  # batch 1 and batch 2, in both runtimes
    message = _refusal(narrower)
    assert message == (f"spec.yaml:6:5: E503: big: verifying the ONNX export runs 2,901 GMACs (every verification "
                       f"sample in PyTorch and onnxruntime), more than the 2,000 GMACs allowed (limit "
                       f"max_verify_macs); the largest layer is 'big' with 241.6 GMACs per sample. Skip verification "
                       f"with --no-verify, or raise the limit with --limit max_verify_macs={per_sample * 6}")
    check_resources(compiled, verify=False)  # exporting alone is cheap enough


def test_every_zoo_spec_fits_the_default_budgets() -> None:
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        compiled = compile_file(spec)
        assert check_resources(compiled, dynamic="batch,hw").total < DEFAULT_LIMITS.max_build_bytes, spec.name


def test_a_memory_error_is_a_resource_error(capsys: pytest.CaptureFixture[str]) -> None:
    def allocate() -> None:
        raise MemoryError

    with pytest.raises(typer.Exit) as info:
        run_guarded(allocate)
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == OUT_OF_MEMORY + "\n"
    assert "max_build_bytes" in OUT_OF_MEMORY and "ran out of memory" in OUT_OF_MEMORY


def test_embedding_inputs_are_drawn_inside_the_vocabulary() -> None:
    pytest.importorskip("onnxruntime")
    from archc.emit.onnx_export import export_onnx
    from archc.emit.onnx_verify import index_ranges, random_inputs, verify_model
    from archc.emit.torch_module import build_module

    compiled = compile_text(EMBEDDING)
    ranges = index_ranges(compiled.graph)
    assert ranges == {"ids": 3, "other": 10}  # the smaller vocabulary of the two it feeds; 10 when it feeds none
    feeds = random_inputs({n: compiled.graph.node(n).out_type for n in compiled.graph.inputs}, 64, ranges=ranges)
    assert feeds["ids"].min() == 0 and feeds["ids"].max() == 2
    module = build_module(compiled).eval()
    report = verify_model(export_onnx(compiled, module.state_dict()).SerializeToString(), compiled, module)
    assert report.ok and [d.case for d in report.diffs] == ["batch 1"] * 2 + ["batch 2"] * 2


# --- the command line -------------------------------------------------------------------------------------------------
def _cli(tmp_path: Path, text: str, *args: str) -> Result:
    """Run ``archc ARGS`` with SPEC standing for a file holding ``text``."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    return CliRunner().invoke(app, [str(spec) if arg == "SPEC" else arg for arg in args])


@pytest.mark.parametrize("command", [("build", "SPEC", "-o", "out"),
                                     ("export", "onnx", "SPEC", "-o", "out.onnx", "--verify")])
def test_the_commands_refuse_a_huge_input_before_allocating(tmp_path: Path, command: tuple[str, ...],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    result = _cli(tmp_path, HUGE_INPUT, *command)
    assert time.perf_counter() - start < 1.0
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"{tmp_path / 'spec.yaml'}:2:10: E502: x: exporting to ONNX and verifying it "
                                    "needs about 67.1 GiB")
    assert result.stderr.endswith("\n1 error\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_the_limit_is_set_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _cli(tmp_path, SMALL, "export", "onnx", "SPEC", "-o", "out.onnx", "--limit", "max_build_bytes=1000")
    assert result.exit_code == 1
    assert "E502: 0: exporting to ONNX needs about 2.3 KiB (weights 1.2 KiB x 2 copies), more than the 1000 bytes " \
           "allowed (limit max_build_bytes)" in result.stderr
    assert not (tmp_path / "out.onnx").exists()


def test_export_verifies_embedding_inputs_inside_the_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    result = _cli(tmp_path, EMBEDDING, "export", "onnx", "SPEC", "-o", "out.onnx", "--verify")
    assert result.exit_code == 0, result.output
    assert "matches PyTorch (batch 1, batch 2)" in result.stdout


# --- the estimate against a measured peak -----------------------------------------------------------------------------
WEIGHT_HEAVY = """name: weight_heavy
inputs: {x: [4096]}
body:
  - linear: {out: 8192}
  - relu
  - linear: {out: 1024}
"""

ACTIVATION_HEAVY = """name: activation_heavy
inputs: {x: [16, 512, 512]}
body:
  - conv: {out: 16, k: 3, p: 1}
  - relu
  - conv: {out: 16, k: 3, p: 1}
  - relu
"""

_PEAK_OF_CHILD = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-m", "archc", *sys.argv[1:]], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _peak_rss(tmp_path: Path, text: str) -> int:
    """Peak resident bytes of `archc export onnx --verify` for ``text``, run in a fresh process."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, "export", "onnx", str(spec), "-o",
                          str(tmp_path / "out.onnx"), "--verify", "--force"], check=True, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    return int(out.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("text", [WEIGHT_HEAVY, ACTIVATION_HEAVY], ids=["weights", "activations"])
def test_the_estimate_bounds_the_measured_peak(tmp_path: Path, text: str) -> None:
    """Above what the same export of LeNet-5 takes (the interpreter and libraries), the measured peak stays within
    the estimate, and the estimate is not wildly above it."""
    baseline = _peak_rss(tmp_path, (ROOT / "specs" / "lenet5.yaml").read_text(encoding="utf-8"))
    measured = _peak_rss(tmp_path, text) - baseline
    need = check_resources(compile_text(text)).total
    assert 0.4 * need <= measured <= need, (measured, need)


def test_outputs_are_compared_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison finds a difference, a misplaced NaN or infinity in any chunk, and scales by the whole output."""
    np = pytest.importorskip("numpy")
    from archc.emit import onnx_verify

    monkeypatch.setattr(onnx_verify, "COMPARE_CHUNK", 7)
    want = np.arange(40, dtype=np.float32).reshape(2, 20) / 10
    got = want.copy()
    assert [(d.max_abs, d.ok) for d in onnx_verify.compare("c", ["y"], [got], [want])] == [(0.0, True)]
    got[1, 17] += 0.5  # in the sixth chunk
    diff = onnx_verify.compare("c", ["y"], [got], [want])[0]
    assert not diff.ok and diff.max_abs == pytest.approx(0.5) and diff.max_rel == pytest.approx(0.5 / 3.9)
    want[0, 3] = got[0, 3] = np.nan
    got[1, 17] = want[1, 17]
    assert onnx_verify.compare("c", ["y"], [got], [want])[0].ok  # NaN where the reference has NaN
    got[0, 10] = np.inf
    assert not onnx_verify.compare("c", ["y"], [got], [want])[0].ok
