"""Model input shapes from the params: `image: [3, $size, $size]` follows `--set size=...`."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

SPEC = """
name: t
inputs: {image: [3, $size, $size], ids: {shape: ["${size // 4}"], dtype: int64}}
params: {size: 32}
outputs: [conv, ids]
body:
  - conv: {id: conv, from: image, out: 8, k: 3, s: 2, p: 1}
"""


def test_input_dimensions_follow_the_params_and_their_overrides() -> None:
    graph = compile_text(SPEC, "t.yaml").graph
    assert graph.node("image").out_type.shape == (3, 32, 32)
    assert graph.node("ids").out_type.shape == (8,)
    graph = compile_text(SPEC, "t.yaml", {"size": "384"}).graph
    assert graph.node("image").out_type.shape == (3, 384, 384)
    assert graph.node("conv").out_type.shape == (8, 192, 192)
    assert graph.node("ids").out_type.shape == (96,)


@pytest.mark.parametrize(("size", "messages"), [
    ("0", ["t.yaml:3:21: E103: input 'image': a dimension must be an integer from 1 to 1,000,000; '$size' gives "
           "int 0",
           "t.yaml:3:28: E103: input 'image': a dimension must be an integer from 1 to 1,000,000; '$size' gives "
           "int 0",
           "t.yaml:3:50: E103: input 'ids': a dimension must be an integer from 1 to 1,000,000; '${size // 4}' "
           "gives int 0"]),
    ("2.5", ["t.yaml:3:21: E103: input 'image': a dimension must be an integer from 1 to 1,000,000; '$size' gives "
             "float 2.5",
             "t.yaml:3:28: E103: input 'image': a dimension must be an integer from 1 to 1,000,000; '$size' gives "
             "float 2.5",
             "t.yaml:3:50: E103: input 'ids': a dimension must be an integer from 1 to 1,000,000; '${size // 4}' "
             "gives float 0.0"]),
])
def test_a_bad_input_size_is_located_at_its_dimension(size: str, messages: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        compile_text(SPEC.replace("size: 32", f"size: {size}"), "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == messages


def test_an_unknown_name_or_a_non_expression_in_a_shape_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(SPEC.replace("[3, $size, $size]", "[3, $sise, a]"), "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "t.yaml:3:28: E103: 'inputs.image.2': expected a size (a positive integer) or an expression of the params "
        "(`$size`); found str 'a'"]
