"""`include:` the blocks of other spec files: confined to the spec's directory tree, cycles refused, the spec's own
blocks first, and diagnostics inside an included block located in its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.errors import SpecError

SHARED = """name: shared
inputs: {x: [4]}
include: [more.yaml]
blocks:
  unit:
    args: {out: int}
    body:
      - conv: {id: conv, out: $out, k: 3, p: 1}
      - relu
body: [relu]
"""
MORE = """name: more
inputs: {x: [4]}
blocks:
  wide:
    body:
      - conv: {id: conv, out: 16, k: 1}
  unit:
    body:
      - relu
body: [relu]
"""


def _tree(tmp_path: Path, include: str, body: str = "  - unit: {id: a, out: 8}\n  - wide: {id: b}\n") -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "shared.yaml").write_text(SHARED, encoding="utf-8")
    (tmp_path / "sub" / "more.yaml").write_text(MORE, encoding="utf-8")
    spec = tmp_path / "net.yaml"
    spec.write_text(f"name: net\ninputs: {{x: [3, 8, 8]}}\ninclude: {include}\nbody:\n{body}", encoding="utf-8")
    return spec


def test_included_blocks_are_callable_and_nested_includes_follow(tmp_path: Path) -> None:
    graph = compile_file(_tree(tmp_path, "[sub/shared.yaml]")).graph
    assert graph.node("a.conv").out_type.shape == (8, 8, 8)  # shared.yaml's `unit` replaces more.yaml's
    assert graph.node("b.conv").out_type.shape == (16, 8, 8)


def test_the_specs_own_block_replaces_an_included_one(tmp_path: Path) -> None:
    spec = _tree(tmp_path, "[sub/shared.yaml]", "  - unit: {id: a}\n")
    spec.write_text(spec.read_text(encoding="utf-8") + "blocks:\n  unit:\n    body: [sigmoid]\n", encoding="utf-8")
    assert compile_file(spec).graph.node("a.0").op == "sigmoid"


def test_a_mistake_inside_an_included_block_points_at_its_file(tmp_path: Path) -> None:
    spec = _tree(tmp_path, "[sub/shared.yaml]", "  - unit: {id: a, out: 0}\n")
    with pytest.raises(SpecError) as info:
        compile_file(spec)
    shared = str(tmp_path / "sub" / "shared.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        f"{shared}:8:31: E103: a.conv: 'out': expected a value >= 1; found int 0"]


@pytest.mark.parametrize(("include", "message"), [
    ("[../outside.yaml]", "net.yaml:3:11: E108: '../outside.yaml' is outside the spec's directory tree ({root}); "
                          "include files in it or below it"),
    ("[net.yaml]", "net.yaml:3:11: E108: 'net.yaml' includes itself: net.yaml -> net.yaml"),
    ("[sub/missing.yaml]", "net.yaml:3:11: E108: cannot include 'sub/missing.yaml': cannot read "
                           "{root}/sub/missing.yaml: No such file or directory"),
])
def test_bad_includes_are_refused_at_the_entry(tmp_path: Path, include: str, message: str) -> None:
    (tmp_path / "outside.yaml").write_text(SHARED, encoding="utf-8")
    root = tmp_path / "tree"
    root.mkdir()
    spec = _tree(root, include)
    with pytest.raises(SpecError) as info:
        compile_file(spec)
    assert [d.format() for d in info.value.diagnostics] == [f"{root}/" + message.format(root=root)]


def test_a_cycle_through_another_file_is_refused_where_it_closes(tmp_path: Path) -> None:
    spec = _tree(tmp_path, "[sub/shared.yaml]")
    (tmp_path / "sub" / "more.yaml").write_text(MORE.replace("blocks:", "include: [../net.yaml]\nblocks:"),
                                                encoding="utf-8")
    with pytest.raises(SpecError) as info:
        compile_file(spec)
    assert [d.format() for d in info.value.diagnostics] == [
        f"{tmp_path}/sub/more.yaml:3:11: E108: '../net.yaml' includes itself: net.yaml -> shared.yaml -> more.yaml "
        "-> net.yaml"]
