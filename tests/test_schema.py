"""The JSON Schema agrees with `archc check` wherever a mistake is visible without shape inference.

tests/schema_corpus/invalid holds small specs that check rejects for such a reason (first line: the expected code and
line); each must fail schema validation too. tests/schema_corpus/valid and the zoo are the controls: they compile and
must validate. docs/archc.schema.json is checked against `json_schema()` in test_docs.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from archc.compiler import compile_file
from archc.errors import SpecError
from archc.lower.library import library_names
from archc.ops.registry import all_ops
from archc.spec.schema import json_schema
from archc.yaml_loader import load_yaml_file

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "schema_corpus"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
EXPECT = re.compile(r"# expect: (E\d{3}) on line (\d+)\n")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _schema_errors(validator: jsonschema.Draft7Validator, data: Any) -> list[jsonschema.ValidationError]:
    return list(validator.iter_errors(data))


def test_the_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 2


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_what_check_rejects_the_schema_rejects(spec: Path, validator: jsonschema.Draft7Validator) -> None:
    expected = EXPECT.match(spec.read_text(encoding="utf-8"))
    assert expected, f"{spec.name}: the first line must be `# expect: CODE on line N`"
    with pytest.raises(SpecError) as raised:
        compile_file(spec)
    found = [(d.code, d.pos.line) for d in raised.value.diagnostics]
    assert found == [(expected.group(1), int(expected.group(2)))]
    assert _schema_errors(validator, load_yaml_file(spec).data), f"{spec.name} validates against the schema"


@pytest.mark.parametrize("spec", VALID, ids=lambda p: p.stem)
def test_what_check_accepts_the_schema_accepts(spec: Path, validator: jsonschema.Draft7Validator) -> None:
    """The controls; every zoo spec is validated against the committed schema file in test_docs.py."""
    compile_file(spec)
    errors = _schema_errors(validator, load_yaml_file(spec).data)
    assert [(list(e.absolute_path), e.message) for e in errors] == []


def _spec(body: list[Any], **extra: Any) -> dict[str, Any]:
    return {"name": "net", "inputs": {"x": [3, 8, 8]}, **extra, "body": body}


UNIT_BLOCK = {"unit": {"body": ["relu"]}}


def test_a_step_named_by_an_op_is_never_a_block_call(validator: jsonschema.Draft7Validator) -> None:
    """With blocks defined, an unknown name may be a block; an op's name is always the op, checked as the op."""
    call = _spec([{"unit": {"width": 3}}, {"conv": {"out": 8, "k": 3}}], blocks=UNIT_BLOCK)
    assert _schema_errors(validator, call) == []
    wrong = _spec([{"conv": {"width": 3}}], blocks=UNIT_BLOCK)
    assert _schema_errors(validator, wrong)


def test_without_blocks_every_name_is_an_op_or_construct(validator: jsonschema.Draft7Validator) -> None:
    assert _schema_errors(validator, _spec([{"covn": {"out": 8, "k": 3}}]))
    assert _schema_errors(validator, _spec(["rleu"]))
    assert _schema_errors(validator, _spec([{"covn": {"out": 8, "k": 3}}], blocks={}))
    assert _schema_errors(validator, _spec([{"covn": {"out": 8, "k": 3}}], blocks=UNIT_BLOCK)) == []


@pytest.mark.parametrize("name", ["conv", "relu", "stage", "residual"])
def test_a_block_cannot_take_the_name_of_an_op_or_construct(name: str, validator: jsonschema.Draft7Validator) -> None:
    assert _schema_errors(validator, _spec(["relu"], blocks={name: {"body": ["relu"]}}))
    assert _schema_errors(validator, _spec([{"stage": {"block": name, "repeat": 2}}], blocks=UNIT_BLOCK))


@pytest.mark.parametrize("value", ["$width", "${width * 2}", "$$"])
def test_expressions_stand_for_values_and_list_items(value: str, validator: jsonschema.Draft7Validator) -> None:
    spec = _spec([{"conv": {"out": value, "k": [value, 3], "bias": value}}])
    assert _schema_errors(validator, spec) == []


def test_every_op_is_a_step_key_and_bare_only_without_required_params() -> None:
    definitions = json_schema()["definitions"]
    bare, _ = definitions["OpStep"]["anyOf"]
    ops = all_ops()
    needs_params = {name for name, op in ops.items() if op.Params.model_json_schema().get("required")}
    # in a spec without `blocks:`, the block library's blocks are steps too
    library = set(library_names())
    assert set(definitions["OpStep"]["anyOf"][1]["properties"]) == {*ops, "residual", "branches", "stage", "group",
                                                                     "chunk", "split", *library}
    assert set(bare["enum"]) == (set(ops) - needs_params) | library
    assert {"conv", "linear", "maxpool"} <= needs_params
