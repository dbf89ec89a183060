"""The op reference read from the registry: each op's parameters, inputs and example, as `archc ops` prints them and
as the generated docs/ops.md lays them out."""

from __future__ import annotations

from typing import Any

from archc.ops.base import Op
from archc.ops.families import family_title
from archc.ops.registry import all_ops


def _type_of(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " | ".join(_type_of(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list[{_type_of(prop.get('items', {}))}]"
    bounds = []
    if "minimum" in prop and prop["minimum"] > -1e30:  # float32's lowest is said once, in the page's header
        bounds.append(f">= {prop['minimum']}")
    if "exclusiveMinimum" in prop:
        bounds.append(f"> {prop['exclusiveMinimum']}")
    if "maximum" in prop and prop["maximum"] < 1_000_000:
        bounds.append(f"<= {prop['maximum']}")
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool", "null": "null"}.get(
        kind, kind) + (f" ({', '.join(bounds)})" if bounds else "")


def param_rows(op: Op) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) for each parameter of an op."""
    schema = op.Params.model_json_schema()
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else f"`{prop.get('default')!r}`".replace("None", "null")
        default = default.replace("True", "true").replace("False", "false")
        rows.append((name, _type_of(prop), default, prop.get("description", "")))
    return rows


def inputs_text(op: Op) -> str:
    if op.max_inputs is None:
        return f"{op.min_inputs} or more"
    return str(op.min_inputs) if op.min_inputs == op.max_inputs else f"{op.min_inputs} to {op.max_inputs}"


def describe_op(name: str) -> str | None:
    op = all_ops().get(name)
    if op is None:
        return None
    lines = [f"{op.name} ({family_title(op.family)}): {op.summary}", f"inputs: {inputs_text(op)}"]
    rows = param_rows(op)
    if rows:
        lines.append("parameters:")
        width = max(len(r[0]) for r in rows)
        for pname, ptype, default, doc in rows:
            lines.append(f"  {pname.ljust(width)}  {ptype}, {default.strip('`')}. {doc}".rstrip())
    else:
        lines.append("parameters: none")
    lines.append(f"example:\n  - {op.example}")
    return "\n".join(lines) + "\n"


def list_ops() -> str:
    ops = all_ops()
    width = max(len(n) for n in ops)
    lines = []
    for name, op in ops.items():
        params = ", ".join(r[0] for r in param_rows(op)) or "-"
        lines.append(f"{name.ljust(width)}  {op.summary}  [{params}]")
    return "\n".join(lines) + "\n"
