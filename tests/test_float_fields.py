"""Float parameters: every float field of every op takes only finite values within float32's range.

An ``inf`` or ``nan`` that passed `check` used to reach model.py as a bare name (``F.leaky_relu(x, inf)``) and made
`export onnx` exit 3. The contract test walks the op registry, so a new op with a float field is covered the moment
it is registered.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import pytest
from pydantic import ValidationError

from archc.compiler import compile_text
from archc.errors import SpecError
from archc.ops.fields import FLOAT32_MAX
from archc.ops.registry import all_ops
from archc.spec.model import COMMON_KEYS
from archc.yaml_loader import load_yaml_text

OUT_OF_RANGE = [math.inf, -math.inf, math.nan, 1e39, -1e39, FLOAT32_MAX * 1.0000001]


def _takes(annotation: Any, kind: type) -> bool:
    """Whether ``annotation`` (through unions, lists and Annotated) accepts ``kind`` values."""
    if annotation is kind:
        return True
    return any(_takes(arg, kind) for arg in typing.get_args(annotation) if not isinstance(arg, str))


def _float_fields() -> list[tuple[str, str]]:
    return [(name, field) for name, op in all_ops().items()
            for field, info in op.Params.model_fields.items() if _takes(info.annotation, float)]


def _example_params(op_name: str) -> dict[str, Any]:
    """The op's documented example, as a parameter mapping (known valid)."""
    step = load_yaml_text(all_ops()[op_name].example).data
    params = step[op_name] if isinstance(step, dict) else None
    return {k: v for k, v in (params or {}).items() if k not in COMMON_KEYS}


FLOAT_FIELDS = _float_fields()


def test_the_registry_walk_finds_the_float_fields() -> None:
    assert {("leaky_relu", "slope"), ("bn", "eps"), ("bn", "momentum"), ("layernorm", "eps"), ("lrn", "alpha"),
            ("lrn", "beta"), ("lrn", "k"), ("elu", "alpha"), ("dropout", "p"), ("upsample", "scale")} <= \
        set(FLOAT_FIELDS)


@pytest.mark.parametrize(("op_name", "field"), FLOAT_FIELDS, ids=[f"{o}.{f}" for o, f in FLOAT_FIELDS])
def test_every_float_field_refuses_non_finite_and_out_of_float32_range(op_name: str, field: str) -> None:
    params_model = all_ops()[op_name].Params
    base = _example_params(op_name)
    params_model.model_validate(base)  # the example is valid, so every refusal below is the bad float's
    takes_list = _takes(params_model.model_fields[field].annotation, list)
    for bad in OUT_OF_RANGE:
        for value in ([bad], bad) if takes_list else (bad,):
            with pytest.raises(ValidationError) as err:
                params_model.model_validate({**base, field: value})
            assert {e["loc"][0] for e in err.value.errors()} == {field}, (value, err.value.errors())


def _diagnostics(text: str, overrides: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as err:
        compile_text(text, "f.yaml", overrides)
    return [d.format() for d in err.value.diagnostics]


SPEC = "name: f\ninputs: {x: [3, 8, 8]}\nbody:\n  - %s\n"
NOT_FINITE = "expected a finite number (not inf or nan)"
NOT_FLOAT32 = "expected a number within float32's range (magnitude at most 3.4028235e+38)"


@pytest.mark.parametrize(("step", "expected"), [
    ("leaky_relu: {slope: .inf}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FINITE}; found float inf"),
    ("leaky_relu: {slope: -.inf}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FINITE}; found float -inf"),
    ("leaky_relu: {slope: .nan}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FINITE}; found float nan"),
    ("leaky_relu: {slope: 1e400}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FINITE}; found float inf"),
    ("leaky_relu: {slope: 1e39}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FLOAT32}; found float 1e+39"),
    ("leaky_relu: {slope: '${1e300}'}", f"f.yaml:4:25: E103: 0: 'slope': {NOT_FLOAT32}; found float 1e+300"),
    ("bn: {eps: .inf}", f"f.yaml:4:15: E103: 0: 'eps': {NOT_FINITE}; found float inf"),
    ("lrn: {size: 3, k: -1e39}", f"f.yaml:4:23: E103: 0: 'k': {NOT_FLOAT32}; found float -1e+39"),
    ("upsample: {scale: [2, .nan]}", f"f.yaml:4:27: E103: 0: 'scale.1': {NOT_FINITE}; found float nan"),
    ("upsample: {scale: 1e39}", "f.yaml:4:23: E103: 0: 'scale': expected a scale above 0 and at most 1000; "
                                "found 1e+39"),
])
def test_out_of_range_float_is_a_located_error(step: str, expected: str) -> None:
    assert _diagnostics(SPEC % step) == [expected]


def test_a_float_through_a_param_is_checked_where_it_is_used() -> None:
    text = "name: f\nparams: {s: 0.1}\ninputs: {x: [8]}\nbody:\n  - leaky_relu: {slope: '${s * 1e38}'}\n"
    assert compile_text(text).graph.node("0").params.slope == pytest.approx(1e37)
    assert _diagnostics(text, {"s": "4"}) == [f"f.yaml:5:25: E103: 0: 'slope': {NOT_FLOAT32}; found float 4e+38"]


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_set_refuses_a_non_finite_float(value: str) -> None:
    text = "name: f\nparams: {s: 0.1}\ninputs: {x: [8]}\nbody:\n  - leaky_relu: {slope: $s}\n"
    found = {".inf": "inf", "-.inf": "-inf", ".nan": "nan", "1e400": "inf"}[value]
    assert _diagnostics(text, {"s": value}) == [
        f"f.yaml:2:13: E107: --set s={value}: expected a finite number; found float {found}"]


def test_json_schema_bounds_float_fields() -> None:
    from archc.spec.schema import json_schema

    text = str(json_schema())
    assert "3.4028234663852886e+38" in text


def test_module_level_types_are_not_plain_floats() -> None:
    """Every float field is declared through archc.ops.fields (Float32, Positive, Probability) or bounds itself."""
    for name, field in FLOAT_FIELDS:
        info = all_ops()[name].Params.model_fields[field]
        bounded = any(type(m).__name__ in ("Le", "Lt") for m in info.metadata) or name == "upsample"
        assert bounded, f"{name}.{field} has no upper bound"
