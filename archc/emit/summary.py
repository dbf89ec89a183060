"""The model summary as one JSON object, for scripts (the table for people is :mod:`archc.report.layer_table`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from archc.compiler import Compiled
from archc.ir.graph import Node
from archc.ops.base import Cost
from archc.passes.receptive_field import Field
from archc.yaml_loader import collector_paused


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
