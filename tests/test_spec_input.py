"""Where a spec is read from: a regular file, or standard input (``-``); never a FIFO or a device, which could block
or never end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archc.cli import emit_cmds  # noqa: F401  (registers export, draw and build)
from archc.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "specs" / "mlp.yaml"
NOT_REGULAR = "not a regular file (pass - to read standard input)"


def test_a_fifo_spec_is_refused_at_once(tmp_path: Path) -> None:
    """Was: `archc check FIFO` waited forever for a writer."""
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "archc", "check", str(fifo)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"archc: error: cannot read {fifo}: {NOT_REGULAR}\n"


@pytest.mark.parametrize("command", [["check"], ["summary"], ["export", "torch", "-o", "{out}/m.py"],
                                     ["draw", "-o", "{out}/d.dot"]])
def test_a_device_spec_is_refused(tmp_path: Path, command: list[str]) -> None:
    args = [a.replace("{out}", str(tmp_path)) for a in command]
    result = CliRunner().invoke(app, [*args, "/dev/zero"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"archc: error: cannot read /dev/zero: {NOT_REGULAR}\n"
    assert list(tmp_path.iterdir()) == []


def test_dash_reads_the_spec_from_stdin() -> None:
    result = CliRunner().invoke(app, ["summary", "--json", "-"], input=MLP.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["params"] == 669_706


def test_diagnostics_from_stdin_say_stdin() -> None:
    spec = "name: tiny\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {out: 4, k: 9}\n"
    result = CliRunner().invoke(app, ["check", "-"], input=spec)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "<stdin>:4:5: E304: 0: kernel 9 does not fit: expected at most the padded input size 8 (8 + padding 0+0), "
        "found 9 (input: [3, 8, 8] from input 'x')", "1 error"]


def test_build_from_stdin_records_the_spec_in_its_manifest(tmp_path: Path) -> None:
    import hashlib

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "-", "-o", str(out), "--no-verify"], input=MLP.read_bytes())
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["spec"] == {"name": "<stdin>", "sha256": hashlib.sha256(MLP.read_bytes()).hexdigest(),
                                "params": {}}
