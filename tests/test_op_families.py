"""archc/ops is cut by op family: each op lives in a module of its family, the family table lists every op module,
and the docs' sections and the diagram's legend both read that one table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.emit.diagram.style import FAMILY_STYLES
from archc.ops.families import BY_KEY, FAMILIES
from archc.ops.reference import describe_op
from archc.ops.registry import all_ops

ROOT = Path(__file__).resolve().parent.parent
OPS_DIR = ROOT / "archc" / "ops"
SUPPORT_MODULES = {"__init__", "base", "families", "fields", "onnx_helpers", "reference", "registry", "saved"}
"""Modules of archc/ops that define no op: the op base, the tables, shared helpers."""


@pytest.mark.parametrize("name", sorted(all_ops()))
def test_an_op_lives_in_a_module_of_its_family(name: str) -> None:
    op = all_ops()[name]
    family = BY_KEY[op.family]
    assert type(op).__module__ in {f"archc.ops.{m}" for m in family.modules}, (op.family, type(op).__module__)


def test_every_family_module_holds_only_its_family() -> None:
    held: dict[str, set[str]] = {}
    for op in all_ops().values():
        held.setdefault(type(op).__module__.removeprefix("archc.ops."), set()).add(op.family)
    listed = {m: f.key for f in FAMILIES for m in f.modules}
    assert held == {m: {key} for m, key in listed.items()}


def test_every_module_of_the_package_is_listed_or_support() -> None:
    modules = {p.stem for p in OPS_DIR.glob("*.py")}
    listed = {m for f in FAMILIES for m in f.modules}
    assert modules == listed | SUPPORT_MODULES
    assert not [m for m in modules if m.endswith("_extra")]


def test_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in OPS_DIR.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}


def test_docs_sections_follow_the_family_table() -> None:
    ops_doc = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", ops_doc, re.M) == [f.title for f in FAMILIES]
    assert describe_op("softmax").splitlines()[0] == (
        "softmax (Classifier heads): Softmax along an axis (the class axis by default).")


def test_diagram_legend_reads_the_family_table() -> None:
    keys = list(FAMILY_STYLES)
    assert keys[0] == "input" and keys[-1] == "block"
    assert keys[1:-1] == ["conv", "pool", "norm", "act", "linear", "merge", "reg", "tensor", "head", "math",
                          "attention"]
    for family in FAMILIES:
        assert FAMILY_STYLES[family.key] is family.style
