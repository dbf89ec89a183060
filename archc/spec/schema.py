"""JSON Schema (draft-07) of the spec language, built from the same pydantic models that validate specs.

Editors (yaml-language-server) read it for completion and hover docs. Every op's step is listed with its parameters;
wherever a value is accepted, a `$name` / `${expr}` string is accepted too, since expressions are evaluated later.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from archc.ops.registry import all_ops
from archc.spec.model import CONSTRUCTS, SpecHeader, StepCommon

SCHEMA_ID = "https://archc.dev/schema/archc.schema.json"
EXPRESSION = {"type": "string", "pattern": r"\$", "description": "An expression: `$name` or `${...}`."}
_REF = "#/definitions/{model}"


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    return schema


def _allow_expressions(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    for name, prop in list(props.items()):
        doc = prop.pop("description", None)
        wrapped: dict[str, Any] = {"anyOf": [prop, EXPRESSION]}
        if doc:
            wrapped["description"] = doc
        props[name] = wrapped
    return schema


def _step_schema(defs: dict[str, Any]) -> dict[str, Any]:
    common = _model_schema(StepCommon, defs)["properties"]
    variants: list[dict[str, Any]] = [{"type": "string", "description": "An op or block with no parameters."}]
    for name, op in all_ops().items():
        params = _allow_expressions(_model_schema(op.Params, defs))
        params["properties"] = {**common, **params.get("properties", {})}
        params["additionalProperties"] = False
        params["description"] = op.summary
        variants.append(_single_key(name, {"anyOf": [params, {"type": "null"}]}, op.summary))
    steps = {"type": "array", "items": {"$ref": "#/definitions/Step"}, "description": "Nested steps."}
    for name, model in CONSTRUCTS.items():
        construct = _allow_expressions(_model_schema(model, defs))
        if "body" in construct["properties"]:
            construct["properties"]["body"] = steps
        variants.append(_single_key(name, construct, (model.__doc__ or name).strip()))
    variants.append({
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "description": "A call of a block defined under `blocks:`, with its arguments.",
        "additionalProperties": {"type": ["object", "null"]},
    })
    return {"anyOf": variants}


def _single_key(name: str, value: dict[str, Any], doc: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: value}, "required": [name], "additionalProperties": False,
            "description": doc}


def json_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = _model_schema(SpecHeader, defs)
    defs["Step"] = _step_schema(defs)
    step_list = {"type": "array", "items": {"$ref": "#/definitions/Step"}}
    root["properties"]["body"] = {**step_list, "description": root["properties"]["body"].get("description", "")}
    block = defs.get("BlockSpec")
    if block:
        block["properties"]["body"] = {**step_list, "description": "The block's steps."}
    root["properties"]["params"]["additionalProperties"] = {
        "description": "A number, string, boolean or list; may be an expression over the params above it."}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "$id": SCHEMA_ID, "title": "archc spec", **root,
            "definitions": defs}

