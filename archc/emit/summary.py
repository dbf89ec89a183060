"""Model summaries: one JSON object for scripts, and a torchinfo-style table for people."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from archc.compiler import Compiled
from archc.emit.diagram.fold import folded_at, scope_caption
from archc.ir.graph import Graph, Node
from archc.ops.base import Cost
from archc.passes.costs import Totals
from archc.passes.receptive_field import Field
from archc.text_escape import terminal_line
from archc.yaml_loader import collector_paused

MACS_COUNTED = "MACs count convolutions, linear layers and matrix products (attention's QK^T and AV included)"
"""What the MACs total holds, said under it: a transformer's attention matmuls are in it, element-wise work is not."""


def summary_json_text(c: Compiled) -> str:
    """:func:`summary_json` as text: indented, with one layer or group per line.

    Indenting makes ``json`` fall back to its pure-Python encoder, several seconds for 200k layers. Layers are written
    straight to JSON text instead (:func:`_layer_lines`; the tests hold it equal to :func:`summary_json`) and the
    other records by the C encoder; nothing per layer is kept, so the collector, paused meanwhile, finds no backlog.
    """
    with collector_paused():
        parts = [json.dumps(_head(c), indent=1)[:-2]]  # without the closing "\n}"
        encode = json.JSONEncoder().encode
        for key, rows in (("layers", _layer_lines(c)), ("groups", map(encode, _groups(c)))):
            text = ",\n  ".join(rows)
            parts.append(f',\n "{key}": [\n  {text}\n ]' if text else f',\n "{key}": []')
    return "".join(parts) + "\n}\n"


def _layer_lines(c: Compiled) -> Iterator[str]:
    """:func:`_layer_json` of every layer as compact JSON text, as ``json.dumps`` writes it (about 3x quicker)."""
    fields = c.receptive_fields()
    field_text: dict[int, str] = {}  # by identity: a layer that keeps its input's field shares the object
    no_cost = Cost()
    for n in c.graph.nodes():
        if n.is_input:
            continue
        cost: Cost = n.meta.get("cost", no_cost)
        t = n.out_type
        rf = fields.get(n.name)
        if rf is None:
            rf_text = "null"
        else:
            rf_text = field_text.get(id(rf)) or field_text.setdefault(id(rf), _ENCODE(rf.to_json()))
        yield (f'{{"path": {_STR(n.name)}, "op": {_STR(n.op)}, "group": {_STR(n.scope)}, "output_shape": '
               f'{_ENCODE(list(t.shape)) if t else "null"}, "params": {cost.params}, "buffers": {cost.buffers}, '
               f'"macs": {cost.macs}, "elementwise_ops": {cost.elementwise}, "connections": {cost.connections}, '
               f'"activation_bytes": {t.nbytes if t else 0}, "receptive_field": {rf_text}}}')


_STR = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # what json.dumps uses for str
_ENCODE = json.JSONEncoder().encode


def summary_json(c: Compiled) -> dict[str, Any]:
    with collector_paused():  # receptive fields and a dict per layer: the collector's passes would dominate
        return {**_head(c), "layers": list(_layers(c)), "groups": list(_groups(c))}


def _head(c: Compiled) -> dict[str, Any]:
    g = c.graph
    t = c.costs.total
    return {
        "name": g.name,
        "doc": g.doc,
        "params": c.params,
        "inputs": {n: {"shape": list(g.node(n).out_type.shape), "dtype": g.node(n).out_type.dtype}
                   for n in g.inputs},
        "outputs": {name: {"node": src, "shape": list(g.node(src).out_type.shape)} for name, src in g.outputs.items()},
        "totals": {
            "params": t.params,
            "trainable_params": t.params,
            "buffers": t.buffers,
            "macs": t.macs,
            "flops": 2 * t.macs,
            "elementwise_ops": t.elementwise,
            "activation_bytes": t.activation_bytes,
            "param_bytes": 4 * (t.params + t.buffers),
            "layers": t.layers,
        },
    }


def _layers(c: Compiled) -> Iterator[dict[str, Any]]:
    fields = c.receptive_fields()
    return (_layer_json(n, fields.get(n.name)) for n in c.graph.nodes() if not n.is_input)


def _groups(c: Compiled) -> Iterator[dict[str, Any]]:
    scopes = c.graph.scopes
    return ({"path": path, "kind": scopes[path].kind, "label": scopes[path].label, "params": s.params,
             "macs": s.macs, "activation_bytes": s.activation_bytes} for path, s in c.costs.by_scope.items())


def _layer_json(n: Node, rf: Field | None) -> dict[str, Any]:
    cost: Cost = n.meta.get("cost", Cost())
    return {
        "path": n.name,
        "op": n.op,
        "group": n.scope,
        "output_shape": list(n.out_type.shape) if n.out_type else None,
        "params": cost.params,
        "buffers": cost.buffers,
        "macs": cost.macs,
        "elementwise_ops": cost.elementwise,
        "connections": cost.connections,
        "activation_bytes": n.out_type.nbytes if n.out_type else 0,
        "receptive_field": rf.to_json() if rf is not None else None,
    }


def summary_rows(c: Compiled, depth: int | None) -> list[tuple[str, str, str, int, int, str]]:
    """(path, op, output shape, params, MACs, receptive field) per row; scopes deeper than ``depth`` fold. A path
    holding a line break (a layer id may) is written with it escaped, so each row stays one line.

    Depth 0 is the model alone, one row (torchinfo's ``depth=0``); depth 1 the top-level steps with their scopes
    folded; None every layer.
    """
    g = c.graph
    fields = c.receptive_fields()
    if depth == 0:
        outputs = [g.node(name) for name in g.outputs.values()]
        rf = fields.get(outputs[0].name) if len(outputs) == 1 else None
        return [(g.name, "model", ", ".join(str(n.out_type) for n in outputs), c.costs.total.params,
                 c.costs.total.macs, str(rf) if rf else "-")]
    rows: list[tuple[str, str, str, int, int, str]] = []
    shown: set[str] = set()
    for n in g.nodes():
        if n.is_input:
            continue
        folded = None if depth is None else folded_at(g.scope_chain(n.scope), depth)  # no chain walk per layer
        if folded is None:
            cost: Cost = n.meta.get("cost", Cost())
            rf = fields.get(n.name)
            rows.append((terminal_line(n.name), n.op, str(n.out_type), cost.params, cost.macs, str(rf) if rf else "-"))
            continue
        if folded in shown:
            continue
        shown.add(folded)
        s = c.costs.by_scope.get(folded, Totals())
        last = _last_node(g, folded)
        rf = fields.get(last.name) if last else None
        rows.append((terminal_line(folded), scope_caption(g.scopes[folded]), str(last.out_type) if last else "-",
                     s.params, s.macs, str(rf) if rf else "-"))
    return rows


def _last_node(g: Graph, scope: str) -> Node | None:
    last = None
    for n in g.nodes():
        if n.scope == scope or n.scope.startswith(scope + "."):
            last = n
    return last


def summary_text(c: Compiled, depth: int | None = None) -> str:
    """A plain table (no colour): what `archc summary` prints when not on a terminal and what builds write."""
    rows = summary_rows(c, depth)
    header = ("Layer", "Op", "Output shape", "Params", "MACs", "Receptive field")
    table = [header] + [(p, o, s, f"{pa:,}", f"{m:,}", rf) for p, o, s, pa, m, rf in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {3, 4}
    lines = []
    for i, r in enumerate(table):
        cells = [r[j].rjust(widths[j]) if j in right else r[j].ljust(widths[j]) for j in range(len(r))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.extend(totals_lines(c))
    return "\n".join(lines) + "\n"


def totals_lines(c: Compiled) -> list[str]:
    t = c.costs.total
    g = c.graph
    ins = ", ".join(f"{n} {g.node(n).out_type}" for n in g.inputs)
    outs = ", ".join(f"{k} {g.node(v).out_type}" for k, v in g.outputs.items())
    return [
        f"Model: {g.name}    inputs: {ins}    outputs: {outs}",
        f"Layers: {t.layers:,}",
        f"Parameters: {t.params:,} trainable, {t.buffers:,} in buffers ({_mib(4 * (t.params + t.buffers))} as fp32)",
        f"MACs: {t.macs:,} ({t.macs / 1e9:.2f} G; FLOPs = 2 x MACs = {2 * t.macs / 1e9:.2f} G)",
        MACS_COUNTED,
        f"Other element-wise ops: {t.elementwise:,}",
        f"Activations: {_mib(t.activation_bytes)} per sample (all layer outputs, fp32)",
    ]


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
