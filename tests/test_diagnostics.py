"""Golden tests of diagnostics: every broken spec in tests/golden/diagnostics/ is checked in-process with `archc check`.

Each ``NAME.yaml`` has a ``NAME.expected`` holding the exact stderr followed by a last line ``exit code: N``. A spec
whose first line is ``# args: ...`` passes those extra arguments (e.g. ``--set``). Regenerate after a deliberate
change with ``pytest tests/test_diagnostics.py --update-golden`` and read the diff before committing it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archc.cli.app import app
from archc.error_codes import CODES

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path("tests/golden/diagnostics")
CASES = sorted(p.stem for p in (ROOT / GOLDEN).glob("*.yaml"))
FIRST_LINE = re.compile(r"^\S+:\d+:\d+: E\d{3}: ")
DIAGNOSTIC = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<col>\d+): (?P<code>E\d{3}): ")
COUNT = re.compile(r"^(\d+) errors?$")
CONTINUATION = re.compile(r"^ +(\d+ \||\||= hint: )")
"""A line shown under a diagnostic: source (`  4 | text`), a caret (`    |   ^`) or a hint (`    = hint: ...`)."""


def extra_args(spec: Path) -> list[str]:
    first = spec.read_bytes().partition(b"\n")[0].decode("utf-8", "replace")
    return shlex.split(first.removeprefix("# args:")) if first.startswith("# args:") else []


def run_check(name: str) -> tuple[str, int]:
    rel = GOLDEN / f"{name}.yaml"
    result = CliRunner().invoke(app, ["check", str(rel), *extra_args(ROOT / rel)])
    # a user error must end in a clean exit, never an escaped exception
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.stdout == "", f"a failed check printed to stdout: {result.stdout!r}"
    return result.stderr, result.exit_code


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # file names in diagnostics are relative, so expected output is stable


def test_enough_cases() -> None:
    assert len(CASES) >= 35
    orphans = sorted(p.stem for p in (ROOT / GOLDEN).glob("*.expected") if p.stem not in CASES)
    assert orphans == []


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, update_golden: bool) -> None:
    stderr, code = run_check(name)
    actual = f"{stderr}exit code: {code}\n"
    expected_file = ROOT / GOLDEN / f"{name}.expected"
    if update_golden:
        expected_file.write_text(actual, encoding="utf-8")
        return
    assert expected_file.exists(), f"no {expected_file.name}; run pytest with --update-golden and review it"
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_diagnostic_format(name: str) -> None:
    """The contract: located `file:line:col: CODE: ...` lines, each followed by any indented source or hint lines,
    a count, exit 1, no traceback."""
    stderr, code = run_check(name)
    lines = stderr.splitlines()
    assert code == 1
    assert "Traceback" not in stderr
    assert FIRST_LINE.match(lines[0]), lines[0]
    *shown, last = lines
    diagnostics = [line for line in shown if not CONTINUATION.match(line)]
    count = COUNT.match(last)
    assert count is not None, last
    assert int(count.group(1)) == len(diagnostics) >= 1
    for line in diagnostics:
        m = DIAGNOSTIC.match(line)
        assert m is not None, line
        assert m["file"] == f"{GOLDEN}/{name}.yaml"
        assert m["code"] in CODES
        assert int(m["line"]) >= 1 and int(m["col"]) >= 1
    assert len(set(diagnostics)) == len(diagnostics), "a diagnostic was reported twice"
