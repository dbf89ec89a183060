"""Measuring and reporting: whole-process timings with peak memory, result rows, and the results files.

Every figure is a warm-up run followed by ``repeat`` measured runs, reported as the median with the min-max range.
A measurement that cannot be made yet is reported as a row with a status saying why, never as a number.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK = "ok"
NOT_YET = "not available yet"
UNAVAILABLE = "unavailable"
FAILED = "failed"


@dataclass(frozen=True)
class Stats:
    """Median and range of repeated measurements."""

    median: float
    min: float
    max: float
    runs: int

    @staticmethod
    def of(values: Sequence[float]) -> Stats:
        return Stats(statistics.median(values), min(values), max(values), len(values))


@dataclass
class Row:
    """One reported figure. ``value`` is a median; ``low``/``high`` its range; None when not measured."""

    section: str
    name: str
    metric: str
    unit: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    runs: int = 0
    goal: str = ""
    meets_goal: bool | None = None
    status: str = OK
    note: str = ""

    @staticmethod
    def measured(section: str, name: str, metric: str, unit: str, stats: Stats, **kw: Any) -> Row:
        return Row(section, name, metric, unit, stats.median, stats.min, stats.max, stats.runs, **kw)

    @staticmethod
    def missing(section: str, name: str, metric: str, status: str, note: str, goal: str = "") -> Row:
        return Row(section, name, metric, "", status=status, note=note, goal=goal)


@dataclass(frozen=True)
class ProcessRun:
    seconds: float
    cpu_seconds: float
    """User plus system CPU time of the process (and children it waited for): less sensitive to machine load."""
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


class MeasureError(RuntimeError):
    """A measured command failed; carries the tail of its error output."""


def run_process(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900.0) -> ProcessRun:
    """Run ``cmd`` to completion: wall time and the peak resident memory of that one process (via wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting on a reaped pid
        out.seek(0)
        err.seek(0)
        return ProcessRun(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                          out.read().decode(errors="replace"), err.read().decode(errors="replace"))


@dataclass
class ProcessStats:
    time: Stats
    cpu: Stats
    rss: Stats
    last: ProcessRun = field(repr=False)


def measure_process(cmd: Sequence[str], repeat: int, warmup: int = 1,
                    env: dict[str, str] | None = None) -> ProcessStats:
    """Warm-up runs, then ``repeat`` measured runs of a whole process; raises MeasureError if any run fails."""
    times: list[float] = []
    cpu: list[float] = []
    rss: list[float] = []
    run: ProcessRun | None = None
    for i in range(warmup + repeat):
        run = run_process(cmd, env)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-5:]
            raise MeasureError(f"exit {run.returncode}: " + " | ".join(tail))
        if i >= warmup:
            times.append(run.seconds)
            cpu.append(run.cpu_seconds)
            rss.append(run.peak_rss_mib)
    assert run is not None
    return ProcessStats(Stats.of(times), Stats.of(cpu), Stats.of(rss), run)


# --- the machine ------------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


# --- writing ----------------------------------------------------------------------------------------------------------
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit in ("ms", "µs/layer", "KiB/layer"):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if unit == "x":
        return f"{value:.3f}"
    if unit == "nodes":
        return f"{value:,.0f}"
    if value and abs(value) < 0.01:  # differences between outputs
        return f"{value:.1e}"
    if unit == "":  # exponents, differences
        return f"{value:.3g}"
    return f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def to_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# archc benchmark results",
        "",
        f"Measured {results['date']} on {m['cores']} cores, {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}"
        f" ({m['os']}). Each figure: {results['warmup']} warm-up run(s), then the median of {results['repeat']} runs"
        " with the min-max range." + (" SMOKE RUN: tiny inputs, numbers meaningless." if results["smoke"] else ""),
    ]
    if "load_average_before" in results:
        before, after = results["load_average_before"], results["load_average_after"]
        lines += ["", f"Load average (1/5/15 min) before: {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, after: "
                  f"{after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}; total {results['total_seconds']} s."]
    section = None
    for r in results["rows"]:
        if r["section"] != section:
            section = r["section"]
            lines += ["", f"## {section}", "", "| what | metric | median | range | unit | goal | status / note |",
                      "| --- | --- | ---: | ---: | --- | --- | --- |"]
        rng = "-" if r["low"] is None else f"{_fmt(r['low'], r['unit'])}-{_fmt(r['high'], r['unit'])}"
        verdict = {True: " (met)", False: " (MISSED)", None: ""}[r["meets_goal"]]
        status = r["status"] + (f": {r['note']}" if r["note"] else "")
        lines.append(f"| {r['name']} | {r['metric']} | {_fmt(r['value'], r['unit'])} | {rng} | {r['unit']} | "
                     f"{r['goal']}{verdict} | {status} |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, rows: list[Row], *, repeat: int, warmup: int, smoke: bool,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "repeat": repeat,
        "warmup": warmup,
        "smoke": smoke,
        **(extra or {}),
        "rows": [asdict(r) for r in rows],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "results.md").write_text(to_markdown(results))
    return results
