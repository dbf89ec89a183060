"""Hostile inputs: every file in ``tests/hostile/`` (and a few generated here, too big to commit) run through
``archc check`` in a subprocess with a memory limit.

Each must exit with its expected code (1, or 2 for I/O) within 2 s of CPU, never by a signal, with at most 300 MB
resident, and its first stderr line must be the expected located diagnostic. Expected outcomes live in
``tests/hostile/expected.toml``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
ARCHC = Path(sys.executable).parent / "archc"
EXPECTED: dict[str, dict[str, object]] = tomllib.loads((HOSTILE / "expected.toml").read_text("utf-8"))
ADDRESS_SPACE = 1024 * 2**20
"""RLIMIT_AS of each run: the interpreter with its libraries maps ~250 MB of virtual memory before reading a byte."""
MAX_RSS = 300 * 2**20
MAX_CPU_SECONDS = 2.0
WALL_TIMEOUT = 60.0
PWNED = Path("/tmp/archc_pwned")
"""The file the tag and expression payloads would create if anything executed them."""


def _nest(inner: str, depth: int) -> str:
    for _ in range(depth):
        inner = f"{{group: {{body: [{inner}]}}}}"
    return inner


def _deep_blocks() -> str:
    """32 blocks, each calling the next from inside 19 nested groups: as deep as the default limits allow."""
    lines = ["name: deep", "inputs: {x: [8]}", "blocks:", f"  b0: {{body: [{_nest('{linear: {out: 0}}', 19)}]}}"]
    lines += [f"  b{i}: {{body: [{_nest(f'b{i - 1}', 19)}]}}" for i in range(1, 32)]
    return "\n".join([*lines, "body: [b31]", ""])


def _block_chain(n: int) -> str:
    lines = ["name: chain", "inputs: {x: [8]}", "blocks:", "  b0: {body: [relu]}"]
    lines += [f"  b{i}: {{body: [b{i - 1}]}}" for i in range(1, n)]
    return "\n".join([*lines, f"body: [b{n - 1}]", ""])


def _spec(body: str, inputs: str = "{x: [4]}") -> str:
    return f"name: generated\ninputs: {inputs}\nbody:\n{body}"


GENERATED: dict[str, Callable[[], str | bytes]] = {
    "deep_seq_30000": lambda: "[" * 30_000 + "]" * 30_000 + "\n",
    "deep_seq_1000000": lambda: "[" * 1_000_000 + "]" * 1_000_000 + "\n",
    "deep_map_30000": lambda: "{a: " * 30_000 + "1" + "}" * 30_000 + "\n",
    "deep_block_seq_30000": lambda: "- " * 30_000 + "x\n",
    "big_5mib": lambda: "# padding\n" * (5 * 2**20 // 10 + 1),
    "many_nodes": lambda: "[" + "1," * 600_000 + "1]\n",
    "long_identifier_5000": lambda: _spec(f"  - linear: {{id: {'a' * 5_000}, out: 3}}\n"),
    "long_identifier_100000": lambda: _spec(f"  - linear: {{id: {'a' * 100_000}, out: 3}}\n"),
    "from_10000_same": lambda: _spec(f"  - relu: {{from: [{', '.join(['x'] * 10_000)}]}}\n"),
    "from_10000_unknown": lambda: _spec(f"  - concat: {{from: [{', '.join(f'r{i}' for i in range(10_000))}]}}\n"),
    "deep_block_nesting": _deep_blocks,
    "block_chain_40": lambda: _block_chain(40),
}


@dataclass
class Run:
    returncode: int
    cpu_seconds: float
    max_rss: int
    stderr: str


_MEASURED_CHILD = """
import os, resource, signal, sys
address_space, cpu, wall = (int(v) for v in sys.argv[1:4])
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))  # a hang dies by SIGXCPU, which the test reports
pid = os.fork()
if pid == 0:
    limit()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout carries only this launcher's report
    os.execv(sys.argv[4], sys.argv[4:])
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(wall)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)
"""
"""Runs ``archc check`` as its own child and reports that child's rusage. A child forked from the test process would
report the test process's resident size at the fork (Linux counts the address space replaced by ``exec`` in the peak),
which is hundreds of MB once torch is loaded; a small launcher's own size is a few MB."""


def run_check(path: Path) -> Run:
    """``archc check path`` with limits; CPU time and peak RSS of exactly that process, from wait4."""
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as err:
        launcher = subprocess.run(
            [sys.executable, "-c", _MEASURED_CHILD, str(ADDRESS_SPACE), "10", str(int(WALL_TIMEOUT)), str(ARCHC),
             "check", str(path)],
            stdin=stdin, stdout=subprocess.PIPE, stderr=err, check=True, text=True)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    code, cpu, rss = launcher.stdout.split()
    return Run(int(code), float(cpu), int(rss), stderr)


def _cases(tmp: Path) -> dict[str, Path]:
    cases = {p.stem: p for p in sorted(HOSTILE.glob("*.yaml"))}
    for name, make in GENERATED.items():
        content = make()
        path = tmp / f"{name}.yaml"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        cases[name] = path
    return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Run]]:
    """Every case, run in parallel once for the module."""
    cases = _cases(tmp_path_factory.mktemp("hostile"))
    existed = PWNED.exists()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        results = dict(zip(cases, pool.map(run_check, cases.values()), strict=True))
    assert existed or not PWNED.exists(), "a payload was executed"
    return {name: (cases[name], results[name]) for name in cases}


def test_expectations_cover_every_case() -> None:
    committed = {p.stem for p in HOSTILE.glob("*.yaml")}
    assert not committed & set(GENERATED)
    assert set(EXPECTED) == committed | set(GENERATED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_input(name: str, runs: dict[str, tuple[Path, Run]]) -> None:
    path, run = runs[name]
    want = EXPECTED[name]
    assert run.returncode >= 0, f"killed by signal {-run.returncode}: {run.stderr[-500:]}"
    assert run.returncode == want["exit"], run.stderr[-2000:]
    assert run.cpu_seconds <= MAX_CPU_SECONDS, f"{run.cpu_seconds:.2f} s of CPU"
    assert run.max_rss < MAX_RSS, f"{run.max_rss / 2**20:.0f} MB resident"
    first = run.stderr.splitlines()[0]
    assert re.match(r"^\S+:\d+:\d+: ", first), first
    prefix = f"{path}:{want['line']}:{want['col']}: {want['code']}: "
    assert first.startswith(prefix), first
    assert str(want["message"]) in first, first
    if "errors" in want:
        assert run.stderr.splitlines()[-1] == f"{want['errors']} error{'s' if want['errors'] != 1 else ''}"


@pytest.mark.parametrize(("target", "reason"), [("missing.yaml", "No such file or directory"), (".", "Is a directory")])
def test_unreadable_spec_is_an_io_error(tmp_path: Path, target: str, reason: str) -> None:
    path = tmp_path / target
    run = run_check(path if target != "." else tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == f"archc: error: cannot read {path if target != '.' else tmp_path}: {reason}"
    assert run.cpu_seconds <= MAX_CPU_SECONDS


def test_file_name_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    """Every diagnostic stays one line, whatever the file name holds (here a line break)."""
    path = tmp_path / "bad\nname.yaml"
    path.write_text("name: x\ninputs: {x: [4]}\nbody: [relu, relu: {slope: 1}, 3]\n", encoding="utf-8")
    run = run_check(path)
    assert run.returncode == 1
    shown = f"{tmp_path}/bad\\nname.yaml"
    assert run.stderr.splitlines() == [
        f"{shown}:3:21: E101: 1: unknown field 'slope'",
        f"{shown}:3:32: E105: a step is an op name or `{{op: {{...}}}}`; found int 3",
        "2 errors",
    ]


def test_unreadable_file_name_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    run = run_check(tmp_path / "missing\n.yaml")
    assert run.returncode == 2
    reason = "No such file or directory"
    assert run.stderr.splitlines() == [f"archc: error: cannot read {tmp_path}/missing\\n.yaml: {reason}"]
