"""JSON Schema (draft-07) of the spec language, built from the same pydantic models that validate specs.

Editors (yaml-language-server) read it for completion and hover docs, so it is as precise as a schema can be without
shape inference: a step that names a built-in op or construct is checked against that op's parameters (required
fields, bounds, no unknown keys); any other name is a block call. Whether a block of that name exists is beyond
JSON Schema, except in a spec without `blocks:`, where every step must name an op or a construct. Wherever a value is
accepted, a `$name` / `${expr}` string is accepted too, since expressions are evaluated later.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from archc.lower.library import library_names
from archc.ops.registry import all_ops
from archc.spec.model import CONSTRUCTS, ShortcutKind, ShortcutSpec, SpecHeader, StageSpec, StepCommon

SCHEMA_ID = "https://archc.dev/schema/archc.schema.json"
# what archc.expr evaluates: `$$`, `$name`, `${...}`
EXPRESSION = {"type": "string", "pattern": r"\$[$A-Za-z_{]", "description": "An expression: `$name` or `${...}`."}
IDENTIFIER = r"^[A-Za-z0-9_]+$"
NAME = {"pattern": IDENTIFIER, "maxLength": 64}
"""A name as a mapping key: the `Identifier` of archc.spec.model."""
_REF = "#/definitions/{model}"
_NESTED_FIELDS = ("body", "paths", "shortcut")
"""Construct fields that hold steps: lowered in their own scope, never evaluated as one expression."""


def reserved_names() -> list[str]:
    """Names a step resolves to an op or a construct, so no block can be called by them."""
    return sorted([*all_ops(), *CONSTRUCTS])


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    return schema


def _or_expression(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with an expression accepted in its place and, recursively, in place of any list item."""
    inner = dict(schema)
    doc = inner.pop("description", None)
    if isinstance(inner.get("items"), dict):
        inner["items"] = _or_expression(inner["items"])
    if "anyOf" in inner:
        inner["anyOf"] = [_or_expression(option)["anyOf"][0] for option in inner["anyOf"]]
    wrapped: dict[str, Any] = {"anyOf": [inner, EXPRESSION]}
    if doc:
        wrapped["description"] = doc
    return wrapped


def _allow_expressions(schema: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    props = schema.get("properties", {})
    for name, prop in list(props.items()):
        if name not in skip:
            props[name] = _or_expression(prop)
    return schema


def _common(defs: dict[str, Any]) -> dict[str, Any]:
    """`id`, `from` and `if`: read as they are (an `if` may be an expression string), never substituted."""
    return _model_schema(StepCommon, defs)["properties"]


def _op_definitions(defs: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """One definition per op's step value; returns op name -> definition name, and the ops that need parameters."""
    common = _common(defs)
    refs: dict[str, str] = {}
    needs_params: list[str] = []
    for name, op in all_ops().items():
        params = _allow_expressions(_model_schema(op.Params, defs))
        params["properties"] = {**common, **params.get("properties", {})}
        params["additionalProperties"] = False
        params.pop("title", None)
        params["description"] = op.summary
        if params.get("required"):
            needs_params.append(name)
            value = params
        else:  # `relu:` with nothing after it is `relu`
            value = {"anyOf": [params, {"type": "null"}], "description": op.summary}
        refs[name] = f"op_{name}"
        defs[refs[name]] = value
    return refs, needs_params


def _step_family(defs: dict[str, Any], ops: dict[str, str], needs_params: list[str], *, calls: bool) -> None:
    """Define a step and a step list in which block calls are allowed (`Step`, `Steps`) or not (`OpStep`, ...)."""
    step, steps = ("Step", "Steps") if calls else ("OpStep", "OpSteps")
    step_ref, steps_ref = {"$ref": f"#/definitions/{step}"}, {"$ref": f"#/definitions/{steps}"}
    named: dict[str, Any] = {name: {"$ref": f"#/definitions/{ref}"} for name, ref in ops.items()}
    for name, model in CONSTRUCTS.items():
        named[name] = _construct(model, defs, step_ref, steps_ref, calls=calls)
    mapping: dict[str, Any] = {
        "type": "object", "minProperties": 1, "maxProperties": 1, "properties": named,
        "description": "`{op: {...}}`: one op, construct or block name as the only key, its parameters as value.",
    }
    bare = {"type": "string", **NAME, "not": {"enum": [*needs_params, *CONSTRUCTS]}}
    if calls:
        bare["description"] = "An op without parameters (`relu`), or a block called without arguments."
        mapping["propertyNames"] = NAME
        mapping["additionalProperties"] = {
            "description": "A call of a block defined under `blocks:`, with its arguments.",
            "anyOf": [{"type": "null"}, {"type": "object", "properties": _common(defs), "propertyNames": NAME}]}
    else:  # no `blocks:`: only ops, constructs and the block library's blocks
        no_params = [name for name in ops if name not in needs_params]
        bare = {"enum": [*no_params, *library_names()],
                "description": "An op without parameters (`relu`), or a library block called without arguments."}
        for name in library_names():
            named[name] = {"description": "A call of the block library's block of this name, with its arguments.",
                           "anyOf": [{"type": "null"}, {"type": "object", "properties": _common(defs),
                                                        "propertyNames": NAME}]}
        mapping["additionalProperties"] = False
    defs[step] = {"anyOf": [bare, mapping]}
    defs[steps] = {"type": "array", "minItems": 1, "items": step_ref, "description": "Steps, in order."}


def _construct(model: type[StepCommon], defs: dict[str, Any], step: dict[str, str], steps: dict[str, str], *,
               calls: bool) -> dict[str, Any]:
    schema = _allow_expressions(_model_schema(model, defs), skip=(*_NESTED_FIELDS, "id", "from", "if"))
    schema.pop("title", None)
    schema["description"] = " ".join((model.__doc__ or "").split())
    props = schema["properties"]
    if "body" in props:
        doc = props["body"].get("description", "")
        props["body"] = {**steps, "description": doc} if "body" in schema.get("required", ()) else \
            {"anyOf": [steps, {"type": "null"}], "description": doc}
    if "paths" in props:
        path = {"anyOf": [steps, step], "description": "A path: a list of steps, or one step."}
        props["paths"] = {"description": props["paths"].get("description", ""), "anyOf": [
            {"type": "array", "minItems": 1, "items": path},
            {"type": "object", "minProperties": 1, "propertyNames": NAME,
             "additionalProperties": path}]}
    if "shortcut" in props:
        shortcut_spec = _allow_expressions(_model_schema(ShortcutSpec, defs), skip=("body",))
        shortcut_spec.pop("title", None)
        shortcut_spec["properties"]["body"] = {"anyOf": [steps, {"type": "null"}],
                                               "description": "Explicit shortcut steps instead of a kind."}
        kinds = _or_expression(TypeAdapter(ShortcutKind).json_schema())
        props["shortcut"] = {"description": props["shortcut"].get("description", ""),
                             "anyOf": [*kinds["anyOf"], shortcut_spec, steps]}
    if model is StageSpec:  # repeats exactly one of a block and a body
        props["block"] = {**props["block"], "not": {"enum": reserved_names()}} if calls else \
            {"anyOf": [{"enum": library_names()}, {"type": "null"}],
             "description": "A spec without `blocks:` repeats a block of the library (swin_t's `swin_block`)."}
        given = {field: {"required": [field], "properties": {field: {"not": {"type": "null"}}}}
                 for field in ("block", "body")}
        schema["anyOf"] = [given["block"], given["body"]]
        schema["not"] = {"allOf": [given["block"], given["body"]]}
    return schema


def _tighten_keys(schema: Any) -> None:
    """pydantic writes `dict[Identifier, X]` as patternProperties, which lets a key that misses the pattern through
    unchecked: the pattern goes into propertyNames, so such a key is refused as archc refuses it."""
    if isinstance(schema, list):
        for item in schema:
            _tighten_keys(item)
        return
    if not isinstance(schema, dict):
        return
    patterns = schema.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in schema:
        (pattern, value), = patterns.items()
        del schema["patternProperties"]
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        schema["additionalProperties"] = value
    for value in schema.values():
        _tighten_keys(value)


def json_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = _model_schema(SpecHeader, defs)
    _tighten_keys(root)
    ops, needs_params = _op_definitions(defs)
    _step_family(defs, ops, needs_params, calls=True)
    _step_family(defs, ops, needs_params, calls=False)
    _tighten_keys(defs)
    props = root["properties"]
    props["body"] = {"$ref": "#/definitions/Steps", "description": props["body"].get("description", "")}
    defs["BlockSpec"]["properties"]["body"] = {"$ref": "#/definitions/Steps", "description": "The block's steps."}
    props["blocks"]["propertyNames"] = {**NAME, "not": {"enum": reserved_names()}}
    for named_outputs in props["outputs"]["anyOf"]:  # `outputs: []` leaves the model without outputs
        named_outputs.update({"array": {"minItems": 1}, "object": {"minProperties": 1}}.get(named_outputs["type"], {}))
    props["params"]["additionalProperties"] = {
        "description": "A number, string, boolean or list; may be an expression over the params above it."}
    # without blocks, a name that is no op or construct is a mistake (`covn:`), not a block call
    without_blocks = {"not": {"required": ["blocks"], "properties": {"blocks": {"minProperties": 1}}}}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "$id": SCHEMA_ID, "title": "archc spec", **root,
            "if": without_blocks, "then": {"properties": {"body": {"$ref": "#/definitions/OpSteps"}}},
            "definitions": defs}
