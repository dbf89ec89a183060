"""The install paths the README promises: what the core install runs without the emit extra, and what is declared."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Runs the real command line with the emit extra (and the unused graphviz binding) made unimportable, as in a
# `pip install .` environment; prints the exit code and any heavy module that was imported anyway.
_WITHOUT_EMIT_EXTRA = """
import importlib.abc, json, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx", "onnxruntime", "graphviz"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, Missing())
sys.argv = ["archc", *json.loads(sys.argv[1])]
from archc.cli.main import main
print(json.dumps({"code": main()}), file=sys.stderr)
"""


def _run_without_emit_extra(args: list[str]) -> tuple[int, subprocess.CompletedProcess[str]]:
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_EMIT_EXTRA, json.dumps(args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    return json.loads(proc.stderr.strip().splitlines()[-1])["code"], proc


@pytest.mark.parametrize(("fmt", "start"), [("svg", "<?xml"), ("dot", "digraph"), ("html", "<!DOCTYPE html>")])
def test_draw_needs_only_the_core_install(tmp_path: Path, fmt: str, start: str) -> None:
    out = tmp_path / f"lenet5.{fmt}"
    code, proc = _run_without_emit_extra(["draw", "specs/lenet5.yaml", "-o", str(out)])
    assert code == 0, proc.stderr
    assert proc.stdout == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8").startswith(start)


def test_core_commands_need_only_the_core_install() -> None:
    for args in (["check", "specs/lenet5.yaml"], ["summary", "specs/lenet5.yaml"], ["schema"], ["ops", "conv"]):
        code, proc = _run_without_emit_extra(args)
        assert code == 0, (args, proc.stderr)
        assert proc.stdout, args


def test_export_torch_writes_source_without_torch(tmp_path: Path) -> None:
    """The generated file imports torch; writing it only needs the core install."""
    out = tmp_path / "model.py"
    code, proc = _run_without_emit_extra(["export", "torch", "specs/lenet5.yaml", "-o", str(out)])
    assert code == 0, proc.stderr
    assert proc.stdout == f"wrote {out}\n"
    assert "import torch" in out.read_text(encoding="utf-8")


def _declared_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(req for reqs in extras.values() for req in reqs)]


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "archc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_the_graphviz_binding_is_neither_declared_nor_imported() -> None:
    """archc runs Graphviz's `dot` program itself; the Python `graphviz` package was declared but never used."""
    assert not [req for req in _declared_requirements() if req.lower().startswith("graphviz")]
    assert "graphviz" not in _imported_top_level_modules()


def test_every_runtime_dependency_is_imported() -> None:
    """A declared dependency of the core or the emit extra that nothing imports is dead weight for every install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    import_names = {"pyyaml": "yaml"}
    runtime = [*project["dependencies"], *project["optional-dependencies"]["emit"]]
    names = {import_names.get(name, name) for name in (_requirement_name(req) for req in runtime)}
    assert names - _imported_top_level_modules() == set()


def _requirement_name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()
