"""The benchmark harness runs end to end on a tiny spec and writes complete results (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archc.compiler import compile_text
from bench.harness import Stats, run_process
from bench.specgen import chain_spec, dense_spec, stage_spec

ROOT = Path(__file__).resolve().parent.parent
ROW_KEYS = {"section", "name", "metric", "unit", "value", "low", "high", "runs", "goal", "meets_goal", "status", "note"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_results_have_run_settings_and_machine(smoke: tuple[dict, str]) -> None:
    results, _ = smoke
    assert results["smoke"] is True
    assert (results["repeat"], results["warmup"]) == (1, 0)
    assert results["specs"] == {s: ["mlp"] for s in ("summary", "construct", "forward", "onnx", "diagram")}
    assert results["sizes"] == [30, 300]
    assert set(results["machine"]) == {"cpu", "cores", "ram_gib", "python", "os"}
    assert results["machine"]["cores"] >= 1
    assert len(results["load_average_before"]) == 3


def test_every_section_reports_rows_with_all_keys(smoke: tuple[dict, str]) -> None:
    results, _ = smoke
    rows = results["rows"]
    assert all(set(r) == ROW_KEYS for r in rows)
    prefixes = {r["section"].split(":")[0] for r in rows}
    assert prefixes == {"summary", "scaling", "construct", "forward", "onnx", "diagram and build", "import"}
    assert [r for r in rows if r["status"] == "failed"] == []


def test_measured_rows_carry_numbers_and_missing_rows_a_reason(smoke: tuple[dict, str]) -> None:
    results, _ = smoke
    for r in results["rows"]:
        if r["status"] == "ok":
            assert r["value"] is not None and r["runs"] >= 1, r
        else:
            assert r["value"] is None and r["note"], r


def test_summary_and_scaling_rows(smoke: tuple[dict, str]) -> None:
    results, md = smoke
    by = {(r["name"], r["metric"]): r for r in results["rows"]}
    summary = by[("archc summary mlp", "wall time")]
    assert summary["status"] == "ok" and summary["value"] > 0 and summary["goal"] == "< 0.5 s"
    assert by[("archc summary mlp", "peak RSS")]["value"] > 10  # MiB: a Python process at least
    assert by[("torchinfo mlp", "wall time")]["status"] == "unavailable"
    for name in ("chain 30", "chain 300", "dense 30", "dense 300"):
        assert by[(name, "wall time")]["status"] == "ok"
    assert ("chain 300 (300 layers)", "CPU time per layer, net of start-up") in by
    assert ("dense 300 (306 layers)", "peak RSS per layer, net of start-up") in by
    assert md.startswith("# archc benchmark results\n")
    assert "SMOKE RUN" in md and "| archc summary mlp | wall time |" in md


def test_generated_specs_have_the_requested_size() -> None:
    chain = compile_text(chain_spec(300))
    assert chain.costs.total.layers == 300
    staged = compile_text(stage_spec(300))
    assert staged.costs.total.layers == 300
    assert staged.costs.total.params == chain.costs.total.params == 100 * (16 * 16 * 9 + 2 * 16)
    assert staged.graph.node("chain.99.2").op == "relu"  # the 100th conv/bn/relu block
    dense = compile_text(dense_spec(300))
    assert dense.costs.total.layers == 306  # 6 blocks of 12 dense layers (4 nodes) + transition (3 nodes)
    # the concat grows channels by the growth rate; the transition resets them to 64
    assert dense.graph.node("block0.11.0").out_type.shape == (64 + 12 * 32, 8, 8)
    assert dense.graph.node("trans0.2").out_type.shape == (64, 8, 8)


def test_stats_and_process_measurement() -> None:
    s = Stats.of([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (s.median, s.min, s.max, s.runs) == (3.0, 1.0, 10.0, 5)
    run = run_process([sys.executable, "-c", "b = bytearray(200 * 1024 * 1024); print('done')"])
    assert run.returncode == 0 and run.stdout == "done\n"
    assert run.peak_rss_mib >= 200
