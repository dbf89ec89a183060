"""A real environment with only the core install: no torch, onnx, onnxruntime or numpy anywhere on its path.

The venv is made with the standard library (no pip, no network): its site-packages gets a ``.pth`` file naming a
directory of symbolic links to the core dependencies (and theirs, found from the installed distributions' metadata)
and to archc itself. Commands that write text work there; `build` and `export onnx` exit 2 with the install hint.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.torch_source import torch_source
from archc.extras import EMIT_INSTALL, EMIT_MODULES

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.yaml"


def hint(module: str) -> str:
    return (f"this needs the emit extra (torch, onnx and onnxruntime), which is not installed (no module named "
            f"'{module}'); install it with {EMIT_INSTALL}")


def _requirement_name(requirement: str) -> str | None:
    """The distribution a requirement names, or None for one that only an extra asks for."""
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return match.group(0) if match else None


def _core_top_level_entries() -> set[Path]:
    """Every top-level module or package installed by the core dependencies and what they require, recursively."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    todo = [name for name in map(_requirement_name, declared) if name]
    seen: set[str] = set()
    entries: set[Path] = set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:  # a requirement for another platform or Python
            continue
        todo.extend(n for n in map(_requirement_name, dist.requires or []) if n)
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".pth")) or top in ("..", "__pycache__"):
                continue
            entries.add(Path(str(dist.locate_file(top))))
    return entries


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("core-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    links = venv / "core-packages"
    links.mkdir()
    entries = _core_top_level_entries()
    assert not {e.name.split(".")[0] for e in entries} & EMIT_MODULES, "a core dependency pulls in the emit extra"
    for entry in [*entries, ROOT / "archc"]:
        (links / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    Path(purelib, "archc-core.pth").write_text(f"{links}\n", encoding="utf-8")
    assert sysconfig.get_path("purelib") != purelib
    return python


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_venv_has_the_core_and_nothing_of_the_emit_extra(core_python: Path, tmp_path: Path) -> None:
    probe = ("import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n) is not None for n in "
             "['archc', 'pydantic', 'yaml', 'networkx', 'typer', 'rich', 'torch', 'onnx', 'onnxruntime', 'numpy']}))")
    proc = _run(core_python, "-c", probe, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ('{"archc": true, "pydantic": true, "yaml": true, "networkx": true, "typer": true, '
                                   '"rich": true, "torch": false, "onnx": false, "onnxruntime": false, '
                                   '"numpy": false}')


def test_export_torch_writes_the_same_source_without_torch(core_python: Path, tmp_path: Path) -> None:
    proc = _run(core_python, "-m", "archc", "export", "torch", str(LENET), "-o", "model.py", cwd=tmp_path)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "wrote model.py\n")
    assert (tmp_path / "model.py").read_text(encoding="utf-8") == torch_source(compile_file(LENET))


def test_check_and_summary_run_without_torch(core_python: Path, tmp_path: Path) -> None:
    proc = _run(core_python, "-m", "archc", "check", str(LENET), cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{LENET}: ok (14 layers, 60,850 params, 0.00 GMACs)\n"
    proc = _run(core_python, "-m", "archc", "summary", str(LENET), "--json", cwd=tmp_path)
    assert proc.returncode == 0 and '"trainable_params": 60850' in proc.stdout, proc.stderr


@pytest.mark.parametrize(("command", "first_missing"), [
    (["build", str(LENET), "-o", "out"], "torch"),
    (["export", "onnx", str(LENET), "-o", "model.onnx"], "numpy"),
    (["export", "onnx", str(LENET), "-o", "model.onnx", "--verify"], "numpy"),
])
def test_emitters_exit_2_with_the_install_hint(core_python: Path, tmp_path: Path, command: list[str],
                                               first_missing: str) -> None:
    proc = _run(core_python, "-m", "archc", *command, cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"archc: error: {hint(first_missing)}\n")
    assert list(tmp_path.iterdir()) == []


def test_the_library_raises_the_same_refusal(core_python: Path, tmp_path: Path) -> None:
    code = ("from archc.extras import MissingExtra\n"
            "try:\n    import archc.emit.torch_module\nexcept MissingExtra as exc:\n    print(exc, exc.exit_code)\n")
    proc = _run(core_python, "-c", code, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{hint('torch')} 2\n"
