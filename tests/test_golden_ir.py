"""Golden lowering tests: the graph's text form (one line per node) for small specs and a few zoo models.

Each ``tests/golden_ir/NAME.yaml`` and each listed zoo spec has a ``tests/golden_ir/NAME.txt`` holding
``Graph.format()`` of its compiled graph: every layer's path, shape, op, non-default parameters and inputs in port
order. Regenerate after a deliberate change with ``pytest tests/test_golden_ir.py --update-golden`` and read the diff
before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_file, compile_text
from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden_ir"
ZOO = ("resnet18", "mobilenet_v2", "unet")
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


def _check(name: str, text: str, update_golden: bool) -> None:
    expected_file = GOLDEN / f"{name}.txt"
    if update_golden:
        expected_file.write_text(text, encoding="utf-8")
        return
    assert expected_file.exists(), f"no {expected_file.name}; run pytest with --update-golden and review it"
    assert text == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_lowering_case(name: str, update_golden: bool) -> None:
    _check(name, compile_file(GOLDEN / f"{name}.yaml").graph.format(), update_golden)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_spec(name: str, update_golden: bool) -> None:
    _check(name, compile_file(ROOT / "specs" / f"{name}.yaml").graph.format(), update_golden)


def test_every_golden_file_has_its_spec() -> None:
    assert len(CASES) >= 3
    orphans = sorted(p.stem for p in GOLDEN.glob("*.txt") if p.stem not in {*CASES, *ZOO})
    assert orphans == []


def test_text_form_of_one_node() -> None:
    """The documented form: path, shape, op with its non-default parameters, inputs in port order."""
    graph = compile_text("name: t\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {id: c, out: 4, k: 1, bias: false}\n"
                         "  - concat: {id: m, from: [c, x, c]}\n").graph
    assert graph.format() == ("x: [3, 8, 8] = input\n"
                              "c: [4, 8, 8] = conv[out=4, k=1, bias=False](x)\n"
                              "m: [11, 8, 8] = concat(c, x, c)\n"
                              "return output=m\n")


def test_text_form_of_an_untyped_node() -> None:
    """A graph lowered with errors (what a partial diagram draws) prints its untyped layers as `?`."""
    g = Graph("t")
    g.add_node(Node("x", "input", out_type=TensorType((3,))))
    g.add_node(Node("r", "relu"))
    g.connect("x", "r", 0)
    assert g.format() == "x: [3] = input\nr: ? = relu(x)\nreturn\n"
