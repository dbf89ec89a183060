"""What a compile leaves to Python's cycle collector: no cyclic garbage, and its result already in the oldest
generation (archc/yaml_loader.py collector_paused), so that no collection after scans a large graph as young."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.ir.graph import Node

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    gc.collect()
    yield
    if was:  # the tests may switch it off; whatever they did, the next test finds it as this one did
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("spec", ["googlenet", "resnet50", "inception_v3"])
def test_a_compile_leaves_no_cyclic_garbage(spec: str, collector_on: None) -> None:
    gc.disable()  # nothing collected behind the test's back
    compiled = compile_file(SPECS / f"{spec}.yaml")
    assert len(compiled.graph) > 100
    assert gc.collect() == 0  # the name tables (parents and named constructs refer to each other) were emptied


def test_the_compiled_graph_joins_the_oldest_generation(collector_on: None) -> None:
    compiled = compile_file(SPECS / "densenet121.yaml")
    young = {id(o) for o in gc.get_objects(0) + gc.get_objects(1) if isinstance(o, Node)}
    assert len(compiled.graph) > 400 and not young & {id(n) for n in compiled.graph.nodes()}
    assert gc.isenabled()
