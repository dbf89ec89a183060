"""Names PyTorch modules reserve: one rule (archc.lower.reserved) for `archc check` and the PyTorch emitter.

Before: `id: _modules` (and `_parameters`, `__dict__`, `__init__`...) passed `check`, and `export torch` refused it
with an unlocated `archc: error:` line; a shortcut id or a named branch path was not checked at all.
"""

from __future__ import annotations

import re

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError
from archc.lower.reserved import RESERVED_MODULE_NAMES, is_reserved_module_name


def _diagnostics(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        compile_text(text, "r.yaml")
    return [d.format() for d in err.value.diagnostics]


def test_the_rule_is_exactly_what_torch_refuses() -> None:
    """Every attribute of the containers the generated module uses, public or private, of the class or of a fresh
    instance: add_module refuses all of them. Dunders are reserved by pattern, so the list holds the rest exactly."""
    nn = pytest.importorskip("torch.nn")
    taken: set[str] = set()
    for container in (nn.Module(), nn.ModuleDict(), nn.Sequential()):
        taken |= set(dir(container)) | set(vars(container))
    assert {n for n in taken if not re.fullmatch(r"__\w+__", n)} == set(frozenset(RESERVED_MODULE_NAMES))
    assert all(name in RESERVED_MODULE_NAMES for name in taken)


def test_torch_refuses_every_reserved_name_the_rule_lists() -> None:
    """The rule is not stricter than it has to be about listed names: one of the containers refuses each one."""
    nn = pytest.importorskip("torch.nn")
    for name in sorted(frozenset(RESERVED_MODULE_NAMES)):
        refused_by = []
        for container in (nn.Module(), nn.ModuleDict(), nn.Sequential()):
            try:
                container.add_module(name, nn.Identity())
            except KeyError as exc:
                assert "already exists" in str(exc)
                refused_by.append(type(container).__name__)
        assert refused_by, name


@pytest.mark.parametrize(("name", "reserved"), [
    ("_modules", True), ("_parameters", True), ("_buffers", True), ("_version", True), ("training", True),
    ("__dict__", True), ("__init__", True), ("__class__", True), ("__call__", True), ("__weakref__", True),
    ("__anything_new__", True), ("append", True), ("keys", True), ("forward", True),
    ("conv1", False), ("_proj", False), ("__private", False), ("downsample", False), ("0", False), ("__", False),
])
def test_is_reserved_module_name(name: str, reserved: bool) -> None:
    assert is_reserved_module_name(name) is reserved
    assert (name in RESERVED_MODULE_NAMES) is reserved


SPEC = "name: r\ninputs: {x: [3, 8, 8]}\nbody:\n%s"


@pytest.mark.parametrize("name", ["_modules", "_parameters", "_buffers", "__dict__", "__init__", "__class__",
                                  "__call__", "_version", "append"])
def test_a_reserved_step_id_is_refused_by_check(name: str) -> None:
    at = 16
    assert _diagnostics(SPEC % f"  - conv: {{id: {name}, out: 4, k: 1}}\n") == [
        f"r.yaml:4:{at}: E206: {name}: '{name}' is an attribute of PyTorch modules and cannot name a layer; "
        "choose another id"]


def test_a_reserved_shortcut_id_is_refused_by_check() -> None:
    body = ("  - residual:\n      body: [{conv: {out: 5, k: 1}}]\n"
            "      shortcut: {kind: projection, id: __dict__}\n")
    assert _diagnostics(SPEC % body) == [
        "r.yaml:6:40: E206: 0: '__dict__' is an attribute of PyTorch modules and cannot name a layer; choose another "
        "name"]


def test_a_reserved_path_name_is_refused_by_check_at_the_key() -> None:
    body = "  - branches:\n      paths: {_parameters: [{conv: {out: 3, k: 1}}], b: [relu]}\n"
    assert _diagnostics(SPEC % body) == [
        "r.yaml:5:15: E206: 0: '_parameters' is an attribute of PyTorch modules and cannot name a layer; choose "
        "another name"]


def test_a_block_call_id_and_a_group_id_are_refused_by_check() -> None:
    text = ("name: r\ninputs: {x: [3, 8, 8]}\nblocks:\n  b: {body: [{conv: {out: 3, k: 1}}]}\nbody:\n"
            "  - b: {id: __init__}\n  - group: {id: g, body: [{conv: {id: _modules, out: 3, k: 1}}]}\n")
    assert _diagnostics(text) == [
        "r.yaml:6:13: E206: __init__: '__init__' is an attribute of PyTorch modules and cannot name a layer; "
        "choose another id",
        "r.yaml:7:39: E206: g._modules: '_modules' is an attribute of PyTorch modules and cannot name a layer; "
        "choose another id"]


def test_a_stage_prefix_never_forms_a_reserved_name() -> None:
    """Copy names are prefix + index: they end in a digit, which no reserved name does."""
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    text = SPEC % "  - stage: {id: s, prefix: _modules, repeat: 2, body: [{conv: {out: 3, k: 1}}]}\n"
    module = build_module(compile_text(text))
    assert sorted(module.state_dict()) == ["s._modules0.0.bias", "s._modules0.0.weight", "s._modules1.0.bias",
                                           "s._modules1.0.weight"]
    assert module(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_a_double_underscore_id_keeps_its_name_in_the_state_dict() -> None:
    """`self.__x` in a class body is name-mangled (`_R__x`); the generated code reaches such a layer by string."""
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module
    from archc.emit.torch_source import torch_source

    compiled = compile_text(SPEC % "  - conv: {id: __proj, out: 4, k: 1}\n")
    assert 'self.add_module("__proj", nn.Conv2d(3, 4, kernel_size=1))' in torch_source(compiled)
    module = build_module(compiled)
    assert sorted(module.state_dict()) == ["__proj.bias", "__proj.weight"]
    assert module(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_the_emitter_applies_the_same_rule_as_a_located_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph that escaped the check (here: lowering told that nothing is reserved) is refused by the emitter in the
    diagnostic format with E206, never with an unlocated `archc: error:` line."""
    pytest.importorskip("torch")
    import archc.lower.lowerer
    from archc.emit.torch_source import TorchEmitError, torch_source

    monkeypatch.setattr(archc.lower.lowerer, "RESERVED_MODULE_NAMES", frozenset())
    compiled = compile_text(SPEC % "  - group: {id: g, body: [{conv: {id: _buffers, out: 4, k: 1}}]}\n", "r.yaml")
    with pytest.raises(TorchEmitError) as err:
        torch_source(compiled)
    assert [d.format() for d in err.value.diagnostics] == [
        "r.yaml:4:28: E206: g._buffers: '_buffers' is an attribute of PyTorch modules and cannot name a layer; "
        "choose another id"]
    assert err.value.exit_code == 1
