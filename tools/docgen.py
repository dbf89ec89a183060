"""Reference documentation generated from the registries: `docs/ops.md`, `docs/errors.md` and the JSON Schema.

Run ``python -m tools.docgen`` from the checkout after changing an op or an error code; a test fails while the files
are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from archc.error_codes import CODES
from archc.io import write_atomic
from archc.ops.families import FAMILIES
from archc.ops.reference import inputs_text, param_rows
from archc.ops.registry import all_ops
from archc.spec.schema import json_schema


def ops_markdown() -> str:
    ops = all_ops()
    out = ["# Op reference", "",
           "Generated from the op registry by `python -m tools.docgen`; do not edit by hand. Every parameter also "
           "accepts a `$name` or `${expression}` (see [the spec language](spec-language.md)). Every step also takes "
           "`id`, `from` and `if`. A float is finite and within float32's range (magnitude at most 3.4028235e+38).", ""]
    for family in FAMILIES:
        members = [op for op in ops.values() if op.family == family.key]
        if not members:
            continue
        out += [f"## {family.title}", ""]
        for op in members:
            out += [f"### `{op.name}`", "", op.summary, "", f"Inputs: {inputs_text(op)}.", ""]
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
           "Generated from `archc/error_codes.py` by `python -m tools.docgen`; do not edit by hand. Every diagnostic "
           "is printed as `file:line:col: CODE: layer.path: message`. Exit codes: 0 ok, 1 invalid spec, 2 usage or "
           "I/O error, 3 internal error.", ""]
    for c in CODES.values():
        out += [f"## {c.code}: {c.title}", "", c.meaning, "", "Example:", "", "```yaml", c.example, "```", "",
                f"Fix: {c.fix}", ""]
    return "\n".join(out)


def schema_json() -> str:
    return json.dumps(json_schema(), indent=1) + "\n"


GENERATED = {"docs/ops.md": ops_markdown, "docs/errors.md": errors_markdown, "docs/archc.schema.json": schema_json}


def main(root: str = ".") -> None:
    for rel, make in GENERATED.items():
        path = write_atomic(Path(root) / rel, make().encode(), force=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
