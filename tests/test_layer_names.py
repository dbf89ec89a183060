"""Layer names as PyTorch allows them (anything but `.`): RegNet's `block1-0` reaches the module, the state_dict and
ONNX unchanged; unnamed steps are taken by index path."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

SPEC = """
name: regnet_like
inputs: {x: [8, 16, 16]}
blocks:
  b:
    body:
      - conv: {id: c-1, out: 8, k: 1}
      - relu
body:
  - conv: {id: stem, out: 8, k: 1}
  - stage: {id: trunk_output, block: b, repeat: 2, prefix: "block1-", start: 0}
  - add: {from: [trunk_output.block1-0.c-1, trunk_output.block1-1.1]}
"""


def test_hyphenated_ids_and_prefixes_name_layers() -> None:
    graph = compile_text(SPEC, "r.yaml").graph
    assert "trunk_output.block1-0.c-1" in graph
    assert [n.name for n in graph.inputs_of("2")] == ["trunk_output.block1-0.c-1", "trunk_output.block1-1.1"]


def test_hyphenated_names_reach_the_generated_module_and_state_dict() -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import module_class
    from archc.emit.torch_source import torch_source

    compiled = compile_text(SPEC, "r.yaml")
    assert "self.add_module('c-1', nn.Conv2d(8, 8, kernel_size=1))" in torch_source(compiled)
    module = module_class(compiled)()
    assert list(module.state_dict()) == [
        "stem.weight", "stem.bias", "trunk_output.block1-0.c-1.weight", "trunk_output.block1-0.c-1.bias",
        "trunk_output.block1-1.c-1.weight", "trunk_output.block1-1.c-1.bias"]
    assert module(torch.randn(2, 8, 16, 16)).shape == (2, 8, 16, 16)


def test_hyphenated_names_reach_onnx() -> None:
    pytest.importorskip("onnx")
    from archc.emit.onnx_export import export_onnx

    model = export_onnx(compile_text(SPEC, "r.yaml"))
    assert "trunk_output.block1-0.c-1" in {node.name for node in model.graph.node}


@pytest.mark.parametrize(("ident", "message"), [
    ("a.b", "r.yaml:5:16: E103: 'id': expected a layer name: any characters but `.` (it separates the parts of a layer "
            "path) and control characters, at least one; found str 'a.b'"),
    ("''", "r.yaml:5:16: E103: 'id': expected a layer name: any characters but `.` (it separates the parts of a layer "
           "path) and control characters, at least one; found str ''"),
    ("forward", "r.yaml:5:16: E206: forward: 'forward' is an attribute of PyTorch modules and cannot name a layer; "
                "choose another id"),
])
def test_dots_empty_and_reserved_names_are_still_refused(ident: str, message: str) -> None:
    text = f"""
name: r
inputs: {{x: [8]}}
body:
  - relu: {{id: {ident}}}
"""
    with pytest.raises(SpecError) as info:
        compile_text(text, "r.yaml")
    assert [d.format() for d in info.value.diagnostics] == [message]
