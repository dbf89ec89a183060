"""archc's benchmarks: `bash .ci/env.sh --bench python bench/run.py` writes bench/results.md and bench/results.json.

Sections (see bench/README.md for what each figure means and why its goal):
  summary    `archc summary` vs a torchinfo summary of the torchvision model, as whole processes
  scaling    `archc check` on generated chain and DenseNet-like specs of 1k, 10k and 100k layers
  construct  building the module from the spec vs the torchvision constructor (in-process)
  forward    forward latency of the generated module vs torchvision's, batch 1 and 8
  onnx       archc's ONNX export vs torch.onnx.export(dynamo=True) of the same module: time, nodes, file size,
             and onnxruntime latency of both files
  diagram    `archc draw`, folded and unfolded, and `archc build`, as whole processes
  import     `archc import` of the import corpus's models (beside the repository), as whole processes
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402 - needs the path above
    FAILED,
    NOT_YET,
    UNAVAILABLE,
    MeasureError,
    ProcessStats,
    Row,
    Stats,
    measure_process,
    run_process,
    write_results,
)
from bench.models import PEERS  # noqa: E402
from bench.specgen import write_spec  # noqa: E402

SECTION_SPECS = {
    "summary": ["resnet50", "densenet121", "googlenet", "vit_b_16", "swin_t"],
    "construct": ["resnet50", "vgg16", "densenet121", "googlenet", "vit_b_16", "swin_t"],
    "forward": ["resnet50", "densenet121", "googlenet", "vit_b_16", "swin_t"],
    "onnx": ["resnet50", "densenet121", "googlenet"],
    "diagram": ["resnet152", "densenet201"],
}
"""Zoo specs each section measures by default (`--specs` replaces them all)."""
DIAGRAM_CHAIN = 1_000
"""Layers of the generated chain the diagram section draws besides the zoo specs."""
BUILD_SPEC = "resnet50"
ONNX_IMPORT_SPEC = "resnet50"
"""The zoo spec the import section exports to ONNX and imports back."""
SIZES = [1_000, 10_000, 100_000]
SMOKE_SPEC = "mlp"
SMOKE_SIZES = [30, 300]
LIMITS = ["--limit", "max_file_bytes=100000000"]  # the 100k-layer chain is ~2 MB, just over the default
IMPORT_CORPUS = ROOT.parent / "shared" / "import-corpus"
"""The import corpus lives beside the repository, never inside it; `--corpus DIR` points elsewhere."""
IMPORTS = [("darknet", "darknet/densenet201.cfg", 2.0)]
"""(format, file in the corpus, time goal in seconds) for the import section."""
MIN_NET_CPU = 0.2
"""Seconds of CPU time beyond start-up below which per-layer figures are mostly start-up noise."""


@dataclass
class Ctx:
    repeat: int
    warmup: int
    smoke: bool
    specs: dict[str, list[str]]
    """Section -> the zoo spec stems it measures."""
    sizes: list[int]
    tmp: Path
    log: Callable[[str], None]
    worker_cache: dict[tuple[str, str], dict] = field(default_factory=dict)
    corpus: Path = IMPORT_CORPUS

    def spec_path(self, stem: str) -> Path:
        return ROOT / "specs" / f"{stem}.yaml"

    def peer(self, stem: str) -> str | None:
        return None if self.smoke or stem not in PEERS else stem


def archc_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "archc"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "archc"]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def process_rows(section: str, name: str, cmd: list[str], ctx: Ctx, *, time_goal: float | None = None,
                 goal_text: str = "") -> tuple[list[Row], ProcessStats | None]:
    """Time and peak-memory rows for one whole-process measurement (or one failure row)."""
    ctx.log(f"  {name}")
    try:
        ps = measure_process(cmd, ctx.repeat, ctx.warmup)
    except MeasureError as exc:
        return [Row.missing(section, name, "wall time", FAILED, str(exc), goal_text)], None
    meets = None if time_goal is None else ps.time.median < time_goal
    rows = [Row.measured(section, name, "wall time", "s", ps.time, goal=goal_text, meets_goal=meets),
            Row.measured(section, name, "CPU time (user+sys)", "s", ps.cpu),
            Row.measured(section, name, "peak RSS", "MiB", ps.rss)]
    return rows, ps


def ratio_row(section: str, name: str, num: Stats | None, den: Stats | None, goal: float | None,
              goal_text: str, better: str = "lower") -> Row:
    if num is None or den is None:
        return Row.missing(section, name, "ratio", FAILED, "a side of the ratio was not measured", goal_text)
    r = num.median / den.median
    meets = None if goal is None else (r <= goal if better == "lower" else r >= goal)
    return Row(section, name, "ratio of medians", "x", r, runs=num.runs, goal=goal_text, meets_goal=meets)


# --- sections ---------------------------------------------------------------------------------------------------------
def summary_section(ctx: Ctx) -> list[Row]:
    sec = "summary: archc summary vs torchinfo (whole processes)"
    rows: list[Row] = []
    for stem in ctx.specs["summary"]:
        spec = ctx.spec_path(stem)
        r, archc_ps = process_rows(sec, f"archc summary {stem}", [*archc_cmd(), "summary", str(spec)], ctx,
                                   time_goal=0.5, goal_text="< 0.5 s")
        rows += r
        peer = ctx.peer(stem)
        if peer is None:
            rows.append(Row.missing(sec, f"torchinfo {stem}", "wall time", UNAVAILABLE,
                                    "smoke run" if ctx.smoke else "no torchvision counterpart"))
            continue
        if not installed("torchinfo"):
            rows.append(Row.missing(sec, f"torchinfo {stem}", "wall time", UNAVAILABLE,
                                    "torchinfo is not installed (run with `.ci/env.sh --bench`)"))
            continue
        cmd = [sys.executable, str(ROOT / "bench" / "peer_torchinfo.py"), peer]
        r, peer_ps = process_rows(sec, f"torchinfo summary(torchvision {stem})", cmd, ctx)
        rows += r
        rows.append(ratio_row(sec, f"{stem}: archc / torchinfo", archc_ps.time if archc_ps else None,
                              peer_ps.time if peer_ps else None, 0.25, "<= 0.25"))
        cpu = ratio_row(sec, f"{stem}: archc / torchinfo", archc_ps.cpu if archc_ps else None,
                        peer_ps.cpu if peer_ps else None, None, "")
        cpu.metric = "ratio of CPU-time medians"
        rows.append(cpu)
    return rows


_LAYERS = re.compile(r"ok \(([\d,]+) layers")


def scaling_section(ctx: Ctx) -> list[Row]:
    sec = "scaling: archc check on generated specs (whole processes)"
    base_spec = ctx.tmp / "one_layer.yaml"
    base_spec.write_text("name: one\ninputs: {x: [4]}\nbody: [relu]\n")
    base_name = "archc check, 1-layer spec (start-up cost)"
    rows, base = process_rows(sec, base_name, [*archc_cmd(), "check", str(base_spec)], ctx)
    for kind in ("chain", "dense"):
        ctx.log(f"  generating {kind} specs")
        points: list[tuple[int, float]] = []
        for size in ctx.sizes:
            path = write_spec(ctx.tmp, kind, size)
            cmd = [*archc_cmd(), "check", str(path), *LIMITS]
            goal = (3.0, "< 3 s") if size == 10_000 else (None, "")
            name = f"{kind} {size:,}"
            r, ps = process_rows(sec, name, cmd, ctx, time_goal=goal[0], goal_text=goal[1])
            rows += r
            if ps is None or base is None:
                continue
            m = _LAYERS.search(ps.last.stdout)
            layers = int(m.group(1).replace(",", "")) if m else size
            # CPU time, not wall time: archc is single-threaded, and CPU time hardly moves with the machine's load
            cpu = ps.cpu
            net = [v - base.cpu.median for v in (cpu.min, cpu.median, cpu.max)]
            per = Stats(net[1] / layers * 1e6, net[0] / layers * 1e6, net[2] / layers * 1e6, cpu.runs)
            noisy = net[1] < MIN_NET_CPU
            rows.append(Row.measured(sec, f"{name} ({layers:,} layers)", "CPU time per layer, net of start-up",
                                     "µs/layer", per, note="start-up noise dominates" if noisy else ""))
            kib = (ps.rss.median - base.rss.median) * 1024 / layers
            rows.append(Row(sec, f"{name} ({layers:,} layers)", "peak RSS per layer, net of start-up", "KiB/layer",
                            kib, runs=ps.rss.runs))
            points.append((layers, net[1]))
        for (n1, t1), (n2, t2) in itertools.pairwise(points):
            if t1 >= MIN_NET_CPU and t2 >= MIN_NET_CPU:
                exp = math.log(t2 / t1) / math.log(n2 / n1)
                rows.append(Row(sec, f"{kind} {n1:,} -> {n2:,}", "growth exponent of net CPU time", "", exp,
                                runs=ctx.repeat, goal="<= 1.15 (linear)", meets_goal=exp <= 1.15))
    return rows


WORKER_PROBES = {"construct": "archc/emit/torch_module.py", "forward": "archc/emit/torch_module.py",
                 "onnx": "archc/emit/onnx_export.py"}


def worker_result(ctx: Ctx, task: str, stem: str) -> dict:
    """One task's result from bench/worker.py. A smoke run does every task in one process, to import torch once."""
    key = (task, stem)
    if key not in ctx.worker_cache:
        tasks = [t for t in WORKER_PROBES if (ROOT / WORKER_PROBES[t]).exists()] if ctx.smoke else [task]
        cmd = [sys.executable, str(ROOT / "bench" / "worker.py"), ",".join(tasks), str(ctx.spec_path(stem)),
               "--repeat", str(ctx.repeat), "--warmup", str(ctx.warmup), "--calls", str(ctx_calls(ctx))]
        peer = ctx.peer(stem)
        if peer:
            cmd += ["--peer", peer]
        run = run_process(cmd, timeout=3600)
        if run.returncode != 0:
            tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-3:])
            found = {t: {"error": f"exit {run.returncode}: {tail}"} for t in tasks}
        else:
            out = json.loads(run.stdout.strip().splitlines()[-1])
            found = {t: {**r, "torch_threads": out["torch_threads"]} for t, r in out["results"].items()}
        ctx.worker_cache.update({(t, stem): r for t, r in found.items()})
    return ctx.worker_cache[key]


def worker_section(task: str, sec: str, goals: dict[str, tuple[float | None, str]]) -> Callable[[Ctx], list[Row]]:
    """A section measured inside bench/worker.py (torch needed); ``goals`` maps a metric to (ratio goal, text)."""

    def section(ctx: Ctx) -> list[Row]:
        if not (ROOT / WORKER_PROBES[task]).exists():
            return [Row.missing(sec, task, task, NOT_YET, f"{WORKER_PROBES[task]} does not exist yet")]
        rows: list[Row] = []
        for stem in ctx.specs[task]:
            ctx.log(f"  {task} {stem}")
            result = worker_result(ctx, task, stem)
            if "error" in result:
                rows.append(Row.missing(sec, f"{task} {stem}", task, FAILED, result["error"]))
            else:
                rows += _worker_rows(sec, stem, result, goals)
        return rows

    return section


def ctx_calls(ctx: Ctx) -> int:
    """Measured calls for the cheap per-call latencies (forward, onnxruntime): more than the process repeats."""
    return 2 if ctx.smoke else max(ctx.repeat, 40)


LATENCIES = {"forward batch 1", "forward batch 8", "onnxruntime batch 1"}
"""Per-call latencies, where a ratio of the fastest calls is reported beside the ratio of medians."""


def _worker_rows(sec: str, stem: str, result: dict, goals: dict[str, tuple[float | None, str]]) -> list[Row]:
    rows: list[Row] = []
    by_metric: dict[str, list[tuple[str, Stats]]] = {}
    for f in result["figures"]:
        name = f"{stem}: {f['name']}"
        if "value" in f:  # counted, not timed
            rows.append(Row(sec, name, f["metric"], f["unit"], f["value"], runs=1))
            by_metric.setdefault(f["metric"], []).append((f["name"], Stats(f["value"], f["value"], f["value"], 1)))
            continue
        if "samples" not in f:
            rows.append(Row.missing(sec, name, f["metric"], f["status"], f["note"]))
            continue
        st = Stats.of(f["samples"])
        note = f"{result['torch_threads']} torch threads"
        rows.append(Row.measured(sec, name, f["metric"], f["unit"], st, note=note))
        by_metric.setdefault(f["metric"], []).append((f["name"], st))
    for metric, entries in by_metric.items():
        archc = [e for e in entries if e[0].startswith("archc")]
        peers = [e for e in entries if not e[0].startswith("archc")]
        if not (archc and peers) or metric not in goals:
            continue
        goal, text = goals[metric]
        for label, stats in archc:  # every archc figure against the peer, so each way of building is compared
            row = ratio_row(sec, f"{stem}: archc / {_who(peers[0][0])}", stats, peers[0][1], goal, text)
            row.metric = f"{metric}: ratio of medians" if stats.runs > 1 else f"{metric}: ratio"
            row.note = f"{label} / {peers[0][0]}"
            rows.append(row)
            if metric in LATENCIES:
                # the fastest call is the least disturbed by the machine's other work: a second view, no goal
                rows.append(Row(sec, f"{stem}: archc / {_who(peers[0][0])}", f"{metric}: ratio of minimums", "x",
                                stats.min / peers[0][1].min, runs=stats.runs, note=row.note))
    return rows


def _who(figure_name: str) -> str:
    return "torch.onnx dynamo" if figure_name.startswith("torch.onnx") else figure_name.split()[0]


def diagram_section(ctx: Ctx) -> list[Row]:
    sec = "diagram and build: whole processes"
    rows: list[Row] = []
    specs = [(stem, ctx.spec_path(stem)) for stem in ctx.specs["diagram"]]
    chain_layers = 30 if ctx.smoke else DIAGRAM_CHAIN
    specs.append((f"{chain_layers:,}-layer chain (a stage of conv/bn/relu blocks)",
                  write_spec(ctx.tmp, "stage", chain_layers)))
    for label, path in specs:
        for fold in ("--fold", "--no-fold"):
            out = ctx.tmp / "diagram.svg"
            cmd = [*archc_cmd(), "draw", str(path), "-o", str(out), "--force", fold]
            name = f"archc draw {label} ({'folded' if fold == '--fold' else 'unfolded'}, SVG)"
            rows += process_rows(sec, name, cmd, ctx, time_goal=2.0, goal_text="< 2 s")[0]
    if ctx.smoke:
        return [*rows, Row.missing(sec, "archc build", "wall time", UNAVAILABLE, "not run in a smoke run")]
    cmd = [*archc_cmd(), "build", str(ctx.spec_path(BUILD_SPEC)), "-o", str(ctx.tmp / "build"), "--force"]
    rows += process_rows(sec, f"archc build {BUILD_SPEC} (summary, model.py, verified ONNX, SVG)", cmd, ctx)[0]
    return rows


def import_section(ctx: Ctx) -> list[Row]:
    sec = "import: archc import, whole processes"
    rows: list[Row] = []
    for fmt, relative, goal in IMPORTS:
        source = ctx.corpus / relative
        name = f"archc import {fmt} {Path(relative).name}"
        if ctx.smoke:
            rows.append(Row.missing(sec, name, "wall time", UNAVAILABLE, "not run in a smoke run"))
            continue
        if not source.is_file():
            rows.append(Row.missing(sec, name, "wall time", UNAVAILABLE, f"no import corpus at {ctx.corpus} "
                                                                          "(pass --corpus DIR)"))
            continue
        cmd = [*archc_cmd(), "import", fmt, str(source), "-o", str(ctx.tmp / "imported.yaml"), "--force"]
        rows += process_rows(sec, name, cmd, ctx, time_goal=goal, goal_text=f"< {goal:g} s")[0]
    return rows + onnx_import_rows(sec, ctx)


def onnx_import_rows(sec: str, ctx: Ctx) -> list[Row]:
    """`archc import onnx` of resnet50 exported with its batch norms (--no-fold), no weights written; the file is
    written by `archc export onnx` first, not timed."""
    name = f"archc import onnx {ONNX_IMPORT_SPEC}.onnx (exported --no-fold)"
    model = ctx.tmp / f"{ONNX_IMPORT_SPEC}.onnx"
    made = run_process([*archc_cmd(), "export", "onnx", str(ctx.spec_path(ONNX_IMPORT_SPEC)), "-o", str(model),
                        "--no-fold", "--force"])
    if made.returncode != 0:
        return [Row.missing(sec, name, "wall time", FAILED, made.stderr.strip()[-300:], "< 2 s")]
    cmd = [*archc_cmd(), "import", "onnx", str(model), "-o", str(ctx.tmp / "imported_onnx.yaml"), "--force"]
    return process_rows(sec, name, cmd, ctx, time_goal=2.0, goal_text="< 2 s")[0]


SECTIONS: dict[str, Callable[[Ctx], list[Row]]] = {
    "summary": summary_section,
    "scaling": scaling_section,
    "construct": worker_section("construct", "construct: module construction (in-process)",
                                {"construct": (1.1, "<= 1.1")}),
    "forward": worker_section("forward", "forward: latency of the built module (in-process, inference mode)",
                              {"forward batch 1": (1.03, "<= 1.03"), "forward batch 8": (1.03, "<= 1.03")}),
    "onnx": worker_section("onnx", "onnx: export, graph size and onnxruntime latency (in-process)",
                           {"ONNX export": (0.15, "<= 0.15"), "onnxruntime batch 1": (1.05, "<= 1.05"),
                            "ONNX nodes": (1.0, "<= 1.0"), "ONNX file size": (None, "")}),
    "diagram": diagram_section,
    "import": import_section,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny inputs, 1 run, no warm-up, no peers: checks the harness")
    ap.add_argument("--repeat", type=int, default=5, help="measured runs per figure (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="discarded warm-up runs per figure (default 1)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS))
    ap.add_argument("--specs", default=None, help="comma-separated zoo spec stems for every section (default: each "
                    "section's own list, see SECTION_SPECS)")
    ap.add_argument("--sizes", default=None, help="comma-separated layer counts for scaling (default: "
                    + ",".join(map(str, SIZES)) + ")")
    ap.add_argument("--out", type=Path, default=ROOT / "bench", help="directory for results.md and results.json")
    ap.add_argument("--corpus", type=Path, default=IMPORT_CORPUS, help="the import corpus directory (darknet/, "
                    "caffe/, ...) for the import section")
    args = ap.parse_args(argv)

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s): {', '.join(unknown)}")
    specs = dict(SECTION_SPECS)
    if args.smoke:
        repeat, warmup, sizes = 1, 0, SMOKE_SIZES
        specs = {section: [SMOKE_SPEC] for section in SECTION_SPECS}
    else:
        repeat, warmup, sizes = max(1, args.repeat), max(0, args.warmup), SIZES
    if args.specs:
        chosen = [s.strip() for s in args.specs.split(",") if s.strip()]
        if not chosen:
            ap.error("--specs: no spec given")
        specs = {section: chosen for section in SECTION_SPECS}
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    missing = sorted({s for stems in specs.values() for s in stems if not (ROOT / "specs" / f"{s}.yaml").exists()})
    if missing:
        ap.error(f"no spec file for: {', '.join(missing)}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows: list[Row] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="archc-bench-") as tmp:
        ctx = Ctx(repeat, warmup, args.smoke, specs, sizes, Path(tmp), log, corpus=args.corpus)
        for name in sections:
            log(f"[{name}]")
            rows += SECTIONS[name](ctx)
    results = write_results(args.out, rows, repeat=repeat, warmup=warmup, smoke=args.smoke,
                            extra={"load_average_before": load_before, "load_average_after": os.getloadavg(),
                                   "total_seconds": round(time.perf_counter() - started, 1),
                                   "sections": sections, "specs": specs, "sizes": sizes})
    failed = [r for r in results["rows"] if r["status"] == FAILED]
    log(f"wrote {args.out / 'results.md'} and results.json ({len(rows)} rows, {len(failed)} failed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
