"""Reference documentation generated from the registries: `docs/ops.md` and `docs/errors.md`.

Run ``python -m archc.docgen`` after changing an op or an error code; a test fails while the files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from archc.error_codes import CODES
from archc.ops.base import Op
from archc.ops.registry import all_ops

FAMILIES = {
    "conv": "Convolution", "linear": "Fully connected", "pool": "Pooling and resampling", "norm": "Normalisation",
    "act": "Activations", "head": "Classifier heads", "merge": "Merges", "reg": "Regularisation",
    "tensor": "Tensor plumbing",
}


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


def _inputs(op: Op) -> str:
    if op.max_inputs is None:
        return f"{op.min_inputs} or more"
    return str(op.min_inputs) if op.min_inputs == op.max_inputs else f"{op.min_inputs} to {op.max_inputs}"


def describe_op(name: str) -> str | None:
    op = all_ops().get(name)
    if op is None:
        return None
    lines = [f"{op.name} ({FAMILIES.get(op.family, op.family)}): {op.summary}", f"inputs: {_inputs(op)}"]
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


def ops_markdown() -> str:
    ops = all_ops()
    out = ["# Op reference", "",
           "Generated from the op registry by `python -m archc.docgen`; do not edit by hand. Every parameter also "
           "accepts a `$name` or `${expression}` (see [the spec language](spec-language.md)). Every step also takes "
           "`id`, `from` and `if`. A float is finite and within float32's range (magnitude at most 3.4028235e+38).", ""]
    for family, title in FAMILIES.items():
        members = [op for op in ops.values() if op.family == family]
        if not members:
            continue
        out += [f"## {title}", ""]
        for op in members:
            out += [f"### `{op.name}`", "", op.summary, "", f"Inputs: {_inputs(op)}.", ""]
            rows = param_rows(op)
            if rows:
                out += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
                out += [f"| `{n}` | {_cell(t)} | {_cell(d)} | {_cell(doc)} |" for n, t, d, doc in rows]
                out.append("")
            out += ["```yaml", f"- {op.example}", "```", ""]
    return "\n".join(out)


def _cell(text: str) -> str:
    """Escape a Markdown table cell: a `|` would end it."""
    return text.replace("|", "\\|")


def errors_markdown() -> str:
    out = ["# Error codes", "",
           "Generated from `archc/error_codes.py` by `python -m archc.docgen`; do not edit by hand. Every diagnostic "
           "is printed as `file:line:col: CODE: layer.path: message`. Exit codes: 0 ok, 1 invalid spec, 2 usage or "
           "I/O error, 3 internal error.", ""]
    for c in CODES.values():
        out += [f"## {c.code}: {c.title}", "", c.meaning, "", "Example:", "", "```yaml", c.example, "```", "",
                f"Fix: {c.fix}", ""]
    return "\n".join(out)


def schema_json() -> str:
    from archc.spec.schema import json_schema

    return json.dumps(json_schema(), indent=1) + "\n"


GENERATED = {"docs/ops.md": ops_markdown, "docs/errors.md": errors_markdown, "docs/archc.schema.json": schema_json}


def main(root: str = ".") -> None:
    for rel, make in GENERATED.items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
