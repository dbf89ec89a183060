"""`archc table` (the paper's stage table) and `archc summary`'s formats, batch, dtype and columns; LaTeX through
pdflatex."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from archc.compiler import compile_file, compile_text
from archc.report.grid import latex_document
from archc.report.layer_table import summarize
from archc.report.stage_table import stage_table
from tests.cli_runner import run

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(scope="module")
def resnet50():  # type: ignore[no-untyped-def]
    return compile_file(SPECS / "resnet50.yaml")


def test_resnet50_stage_table_is_the_papers(resnet50) -> None:  # type: ignore[no-untyped-def]
    """The rows of Table 1 of He et al. (50-layer column), with torchvision's stride placement and names."""
    table = stage_table(resnet50)
    rows = [(r.name, r.output_size, "; ".join(r.structure), r.params, r.macs) for r in table.rows]
    assert rows == [
        ("conv1", "112×112", "7×7, 64, stride 2", 9_536, 118_013_952),
        ("layer1", "56×56", "3×3 maxpool, stride 2; [1×1, 64; 3×3, 64; 1×1, 256] × 3", 215_808, 667_942_912),
        ("layer2", "28×28", "[1×1, 128; 3×3, 128; 1×1, 512] × 4", 1_219_584, 1_027_604_480),
        ("layer3", "14×14", "[1×1, 256; 3×3, 256; 1×1, 1024] × 6", 7_098_368, 1_464_336_384),
        ("layer4", "7×7", "[1×1, 512; 3×3, 512; 1×1, 2048] × 3", 14_964_736, 809_238_528),
        ("fc", "1×1", "global avgpool; 1000-d linear", 2_049_000, 2_048_000),
    ]
    assert (table.params, table.macs) == (25_557_032, 4_089_184_256)
    assert sum(r.params for r in table.rows) == table.params and sum(r.macs for r in table.rows) == table.macs
    assert "Total: 25,557,032 parameters, 4.09 G MACs (4,089,184,256)" in table.render("text")


def test_repeated_runs_are_written_once() -> None:
    vit = stage_table(compile_file(SPECS / "vit_b_16.yaml"))
    encoder = next(r for r in vit.rows if r.name == "encoder")
    assert encoder.structure == ["[multihead_attention; 3072-d linear; 768-d linear] × 12"]
    assert encoder.output_size == "197×768"  # a token sequence: its whole shape
    vgg = stage_table(compile_file(SPECS / "vgg16.yaml"), depth=1)
    assert vgg.rows[0].structure == ["3×3, 64 × 2; 3×3, 128 × 2; 3×3, 256 × 3; 3×3, 512 × 6"]


def test_grouped_and_depthwise_convolutions_say_so() -> None:
    c = compile_file(SPECS / "resnext50_32x4d.yaml")
    assert stage_table(c).rows[1].structure[-1] == "[1×1, 128; 3×3, 128, groups 32; 1×1, 256] × 3"
    spec = "name: dw\ninputs: {x: [8, 16, 16]}\nbody:\n  - conv: {id: dw, out: 8, k: 3, p: 1, depthwise: true}\n"
    assert stage_table(compile_text(spec)).rows[0].structure == ["3×3, 8, depthwise"]


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json", "html", "latex"])
def test_stage_table_formats_hold_the_same_rows(resnet50, fmt: str) -> None:  # type: ignore[no-untyped-def]
    text = stage_table(resnet50).render(fmt)
    if fmt == "json":
        doc = json.loads(text)
        assert doc["totals"] == {"params": 25_557_032, "macs": 4_089_184_256}
        assert doc["rows"][2] == {"stage": "layer2", "output_size": "28×28",
                                  "structure": ["[1×1, 128; 3×3, 128; 1×1, 512] × 4"],
                                  "params": 1_219_584, "macs": 1_027_604_480}
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["Stage", "Output size", "Structure", "Params", "MACs"]
        assert rows[4] == ["layer3", "14×14", "[1×1, 256; 3×3, 256; 1×1, 1024] × 6", "7,098,368", "1.46 G"]
        assert len(rows) == 7
    elif fmt == "markdown":
        assert "| layer4 | 7×7 | [1×1, 512; 3×3, 512; 1×1, 2048] × 3 | 14,964,736 | 0.81 G |" in text.splitlines()
        assert "| --- | --- | --- | ---: | ---: |" in text
    elif fmt == "html":
        assert "<td>layer1</td><td>56×56</td>" in text and '<td style="text-align:right">215,808</td>' in text
    else:
        assert (r"layer2 & 28$\times$28 & [1$\times$1, 128; 3$\times$3, 128; 1$\times$1, 512] $\times$ 4 "
                r"& 1,219,584 & 1.03 G \\") in text.splitlines()


def test_summary_batch_dtype_and_columns(resnet50) -> None:  # type: ignore[no-untyped-def]
    base = summarize(resnet50)
    half = summarize(resnet50, batch=8, dtype="fp16")
    conv1 = next(r for r in half.rows if r.path == "conv1")
    assert conv1.macs == 8 * 118_013_952 and conv1.params == 9_408
    assert conv1.output_bytes == 8 * 64 * 112 * 112 * 2
    assert next(r for r in base.rows if r.path == "conv1").output_bytes == 64 * 112 * 112 * 4
    assert conv1.kernel == "7x7"
    text = half.render("text", ("kernel", "shape", "params", "percent", "memory"))
    header, _, first = text.splitlines()[:3]
    assert header.split() == ["Layer", "Op", "Kernel", "Output", "shape", "Params", "Param", "%", "Output", "memory"]
    assert first.split() == ["conv1", "conv", "7x7", "[8,", "64,", "112,", "112]", "9,408", "0.04%", "12.25", "MiB"]
    assert "MACs: 32,713,474,048 (32.71 G; FLOPs = 2 x MACs = 65.43 G) for a batch of 8" in text
    assert "Parameters: 25,557,032 trainable, 53,173 in buffers (48.85 MiB as fp16)" in text


def test_summary_rows_sum_to_the_totals_at_every_depth(resnet50) -> None:  # type: ignore[no-untyped-def]
    per_layer = summarize(resnet50)
    for depth in (0, 1, 2, 3):
        folded = summarize(resnet50, depth=depth)
        assert sum(r.params for r in folded.rows) == 25_557_032
        assert sum(r.macs for r in folded.rows) == 4_089_184_256
        assert sum(r.output_bytes for r in folded.rows) == sum(r.output_bytes for r in per_layer.rows)


def test_summary_shows_itself_in_a_notebook(resnet50) -> None:  # type: ignore[no-untyped-def]
    html = summarize(resnet50, depth=1)._repr_html_()
    assert html.startswith('<table class="archc">') and "<th>Receptive field</th>" in html
    assert '<td>layer3</td><td>bottleneck</td><td>-</td><td>[1024, 14, 14]</td>' in html


def test_summary_cli_formats(tmp_path: Path) -> None:
    spec = str(SPECS / "lenet5.yaml")
    md = run("summary", spec, "--format", "markdown", "--columns", "kernel,params")
    assert md.exit_code == 0 and md.stdout.splitlines()[2] == "| Layer | Op | Kernel | Params |"
    out = tmp_path / "s.csv"
    assert run("summary", spec, "--format", "csv", "-o", str(out)).exit_code == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["Layer", "Op", "Output shape", "Params", "MACs", "Receptive field"] and len(rows) > 5
    assert run("summary", spec, "--format", "csv", "-o", str(out)).exit_code == 2  # exists, no --force
    bad = run("summary", spec, "--columns", "kernel,colour")
    assert bad.exit_code == 2 and "--columns: expected names from kernel, shape" in bad.stderr
    assert "--dtype: expected one of fp32, fp16, bf16, int8; got 'fp64'" in run("summary", spec, "--dtype",
                                                                                  "fp64").stderr
    assert run("summary", spec, "--json", "--batch", "2").exit_code == 2
    assert run("summary", spec, "--format", "yaml").exit_code == 2


def test_table_cli(tmp_path: Path) -> None:
    result = run("table", str(SPECS / "resnet50.yaml"), "--format", "markdown")
    assert result.exit_code == 0
    assert "| conv1 | 112×112 | 7×7, 64, stride 2 | 9,536 | 0.12 G |" in result.stdout
    assert run("table", str(SPECS / "resnet50.yaml"), "--standalone").exit_code == 2
    assert run("table", str(SPECS / "resnet50.yaml"), "--depth", "0").exit_code == 2


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (the test command installs it)")
@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_latex_tables_compile(tmp_path: Path, name: str) -> None:
    c = compile_file(SPECS / f"{name}.yaml")
    body = stage_table(c).render("latex") + summarize(c, depth=1).render("latex", ("kernel", "shape", "params",
                                                                                  "percent", "macs", "memory"))
    tex = tmp_path / "t.tex"
    tex.write_text(latex_document(body))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Missing character" not in log and "Overfull \\hbox" not in log
