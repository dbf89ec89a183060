"""Large-graph figures: `archc summary --json` of 200k layers, `archc draw` of 70k layers, `archc export onnx` of 70k
layers (its peak memory against the model's bytes), each a whole process.

    bash .ci/env.sh python bench/large.py [--repeat N] [--scale F]

prints a Markdown table (the "Large graphs" section of bench/README.md). ``--scale 0.01`` runs every figure on specs
a hundredth the size, to check the script. The specs are bench/specgen.py's: ``stage`` (one `stage` repeating a
conv/bn/relu block, which diagrams fold) and ``chain`` (the same layers written out one step per line, which only
the layout budget's runs of layers can shrink).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import MeasureError, ProcessStats, machine, measure_process  # noqa: E402 - needs the path above
from bench.run import archc_cmd  # noqa: E402
from bench.specgen import write_spec  # noqa: E402

SUMMARY_LAYERS = 200_000
DRAW_LAYERS = 70_000
EXPORT_LAYERS = 70_000
TIME_GOAL = 5.0
"""Seconds for `summary --json` of 200k layers and for a 70k-layer drawing."""
RSS_FACTOR, RSS_SLACK_MIB = 3, 300
"""Export goal: peak RSS <= 3 x the model file's bytes + 300 MiB."""
LIMITS = ["--limit", "max_file_bytes=100000000"]  # the written-out 70k chain is 1.4 MB; room for larger scales


@dataclass
class Figure:
    command: str
    stats: ProcessStats | None
    error: str = ""
    goal: str = ""
    met: bool | None = None
    extra: str = ""


def measure(command: str, cmd: list[str], repeat: int) -> Figure:
    print(f"  {command}", file=sys.stderr, flush=True)
    try:
        return Figure(command, measure_process(cmd, repeat, warmup=0))
    except MeasureError as exc:
        return Figure(command, None, error=str(exc))


def run(repeat: int, scale: float, tmp: Path) -> list[Figure]:
    def size(n: int) -> int:
        return max(30, round(n * scale))

    archc = archc_cmd()
    figures: list[Figure] = []
    summary_spec = write_spec(tmp, "stage", size(SUMMARY_LAYERS))
    for what, cmd in (("check", [*archc, "check", str(summary_spec)]),
                      ("summary --json", [*archc, "summary", "--json", str(summary_spec)])):
        f = measure(f"archc {what}, stage of {size(SUMMARY_LAYERS):,} layers", cmd, repeat)
        if what == "summary --json":
            f.goal = f"<= {TIME_GOAL:g} s"
        figures.append(f)
    out = tmp / "diagram.svg"
    for kind, extra in (("stage", []), ("chain", LIMITS)):
        spec = write_spec(tmp, kind, size(DRAW_LAYERS))
        f = measure(f"archc draw, {kind} of {size(DRAW_LAYERS):,} layers (SVG)",
                    [*archc, "draw", str(spec), "-o", str(out), "--force", *extra], repeat)
        f.goal = f"< {TIME_GOAL:g} s"
        if f.stats is not None:
            f.extra = f.stats.last.stderr.strip().removeprefix("archc: note: ")
        figures.append(f)
    spec = write_spec(tmp, "stage", size(EXPORT_LAYERS))
    model = tmp / "model.onnx"
    f = measure(f"archc export onnx, stage of {size(EXPORT_LAYERS):,} layers",
                [*archc, "export", "onnx", str(spec), "-o", str(model), "--force"], repeat)
    if f.stats is not None:
        mib = model.stat().st_size / 2**20
        budget = RSS_FACTOR * mib + RSS_SLACK_MIB
        f.goal = f"peak RSS <= {RSS_FACTOR} x {mib:.0f} MiB + {RSS_SLACK_MIB} = {budget:.0f} MiB"
        f.met = f.stats.rss.median <= budget
        f.extra = f"model file {mib:.1f} MiB; peak RSS {f.stats.rss.median / mib:.2f} x the model"
    figures.append(f)
    for f in figures:
        if f.stats is not None and f.met is None and f.goal.startswith(("<", "<=")):
            f.met = f.stats.time.median <= TIME_GOAL
    return figures


def table(figures: list[Figure], repeat: int) -> str:
    m = machine()
    lines = [f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}; load average "
             f"{os.getloadavg()[0]:.1f} at the end; median of {repeat} run(s), min-max in brackets.", "",
             "| command | wall s | CPU s | peak RSS MiB | goal | note |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for f in figures:
        if f.stats is None:
            lines.append(f"| {f.command} | failed | | | {f.goal} | {f.error} |")
            continue
        t, c, r = f.stats.time, f.stats.cpu, f.stats.rss
        verdict = "" if f.met is None else (", met" if f.met else ", **missed**")
        lines.append(f"| {f.command} | {t.median:.2f} ({t.min:.2f}-{t.max:.2f}) | {c.median:.2f} | {r.median:.0f} | "
                     f"{f.goal}{verdict} | {f.extra} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="measured runs per figure (default 3; no warm-up)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every spec's size (default 1)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="archc-large-") as tmp:
        figures = run(max(1, args.repeat), args.scale, Path(tmp))
    sys.stdout.write(table(figures, max(1, args.repeat)))
    return 1 if any(f.stats is None for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
