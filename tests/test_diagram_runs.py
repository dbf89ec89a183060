"""Runs of one block called in a plain list (torchvision's MobileNets, Inception's Mixed_* modules) fold like a stage:
one node per run of instances that keep the shape, a new one where the shape changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.diagram import to_dot

SPECS = Path(__file__).resolve().parent.parent / "specs"
NODE = re.compile(r'^\s*"([^"]+)" \[label=<(.*)>', re.M)


def _nodes(dot: str) -> dict[str, str]:
    return dict(NODE.findall(dot))


@pytest.mark.parametrize(("spec", "main", "runs"), [
    ("mobilenet_v3_large", 24, {"features.2": "features.2–3", "features.4": "features.4–6",
                                "features.7": "features.7–10", "features.11": "features.11–12",
                                "features.13": "features.13–15"}),
    ("mobilenet_v2", 29, {"features.2": "features.2–3", "features.4": "features.4–6", "features.7": "features.7–10",
                          "features.11": "features.11–13", "features.14": "features.14–16"}),
])
def test_runs_of_one_block_in_a_plain_list_fold_where_the_shape_changes(spec: str, main: int,
                                                                        runs: dict[str, str]) -> None:
    compiled = compile_file(SPECS / f"{spec}.yaml")
    assert len(compiled.graph) > 150  # drawn one by one before
    nodes = _nodes(to_dot(compiled))
    assert len([n for n in nodes if not n.startswith("inset:")]) == main
    folded = {name[len("scope:"):]: label for name, label in nodes.items() if name.startswith("scope:")}
    assert sorted(folded) == sorted(runs)
    for first, title in runs.items():
        assert f"<B>{title}</B>" in folded[first]
    # --no-fold draws every layer; depth keeps the summary's rule (no runs)
    assert len(_nodes(to_dot(compiled, fold=False))) == len(compiled.graph)
    assert not any(" x " in label for label in _nodes(to_dot(compiled, depth=2)).values())
