"""Spec text from a recovered tree: the header (name, `doc:` naming the source, inputs, outputs), the blocks, the
body; steps as one-line flow mappings, constructs in block style; fields at their op's default left out; `from:` only
where a step does not read the previous one; the importer's notes as comments."""

from __future__ import annotations

import json
import re
from typing import Any

from archc.importers.flat import FlatGraph
from archc.importers.tree import Block, Branches, Call, Item, Leaf, Residual, Scope, Stage, Tree
from archc.ops.registry import get_op

_PLAIN = re.compile(r"^[A-Za-z_][\w\-/]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: Any) -> str:
    """A value as YAML flow text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if text.startswith("$") and "," not in text and ":" not in text and "#" not in text:
        return text
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def key(name: str) -> str:
    return name if _PLAIN.match(name) and name.lower() not in _YAML_WORDS else json.dumps(name)


def ident(name: str) -> str:
    """An id: quoted when YAML would read it as a number."""
    return json.dumps(name) if re.fullmatch(r"[\d.eE+\-_]+", name) or name.lower() in _YAML_WORDS else key(name)


def without_defaults(op: str, params: dict[str, Any]) -> dict[str, Any]:
    spec = get_op(op)
    fields = spec.Params.model_fields if spec is not None else {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        f = fields.get(name)
        if f is not None and not f.is_required() and f.default == value and not isinstance(value, str):
            continue
        if name == "s" and op in ("maxpool", "avgpool") and value == params.get("k"):
            continue  # the stride defaults to the window
        out[name] = value
    return out


class Writer:
    def __init__(self, graph: FlatGraph) -> None:
        self.graph = graph
        self.lines: list[str] = []
        self.paths: dict[str, str] = {}
        """Flat layer id -> the layer path the spec gives it."""

    # --- references ----------------------------------------------------------------------------------------------
    def ref(self, source: list[str], prefix: str) -> Any:
        refs = []
        for name in source:
            path = self.paths.get(name, name)
            refs.append(path[len(prefix):] if prefix and path.startswith(prefix) else path)
        return refs[0] if len(refs) == 1 else refs

    # --- steps ---------------------------------------------------------------------------------------------------
    def steps(self, items: list[Item], indent: int, prefix: str, record: bool = True) -> None:
        explicit = {getattr(i, "name", None) for i in items}
        for item in items:  # a partial stage names its copies in this scope
            if isinstance(item, Stage) and item.partial:
                explicit.update(f"{item.prefix}{item.start + n}" for n in range(len(item.copies)))
        for index, item in enumerate(items):
            name = getattr(item, "name", None)
            if isinstance(item, Stage) and item.partial:
                name = None  # named by its copies
            if name is None and not (isinstance(item, Stage) and item.partial) and str(index) in explicit:
                name = f"_{index}"  # an index name another step already takes
                if isinstance(item, (Leaf, Call, Stage, Scope)):
                    item.name = name
            local = name if name is not None else str(index)
            if record:
                self.paths[item.output] = prefix + local
            self.step(item, indent, prefix, local, record)

    def head(self, fields: dict[str, Any], item: Item, prefix: str, name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if name is not None:
            out["id"] = _Id(name)
        if item.source is not None:
            out["from"] = self.ref(item.source, prefix)
        return out | fields

    def step(self, item: Item, indent: int, prefix: str, local: str, record: bool) -> None:
        pad = " " * indent
        name = getattr(item, "name", None)
        if isinstance(item, Leaf) and item.layer is not None:
            layer = item.layer
            if record:
                self.paths[layer.id] = prefix + local
            fields = self.head(without_defaults(layer.op, layer.params), item, prefix, name)
            note = f"  # {layer.note}" if layer.note else ""
            self.lines.append(f"{pad}- {layer.op}: {_flow(fields)}{note}" if fields else f"{pad}- {layer.op}{note}")
        elif isinstance(item, Residual):
            fields = self.head({}, item, prefix, None)
            self.lines.append(f"{pad}- residual:")
            self._fields(fields, indent + 4)
            if item.merge != "add":
                self.lines.append(f"{pad}    merge: {item.merge}")
            self.lines.append(f"{pad}    body:")
            self.steps(item.body, indent + 6, prefix, record)
            if item.shortcut == "projection":
                sc: dict[str, Any] = {"kind": "projection"}
                if item.shortcut_id:
                    sc["id"] = _Id(item.shortcut_id)
                if not item.shortcut_bn:
                    sc["bn"] = False
                self.lines.append(f"{pad}    shortcut: {_flow(sc)}")
                if record and item.shortcut_id:
                    for n, leaf in enumerate(item.shortcut_steps):
                        if isinstance(leaf, Leaf) and leaf.layer is not None:
                            self.paths[leaf.layer.id] = f"{prefix}{item.shortcut_id}.{n}"
            elif isinstance(item.shortcut, list):
                steps, sid = item.shortcut, "shortcut"
                if len(steps) == 1 and isinstance(steps[0], Scope) and steps[0].name:
                    steps, sid = steps[0].body, steps[0].name
                self.lines.append(f"{pad}    shortcut:")
                self.lines.append(f"{pad}      id: {ident(sid)}")
                self.lines.append(f"{pad}      body:")
                self.steps(steps, indent + 8, f"{prefix}{sid}.", record)
        elif isinstance(item, Branches):
            self.lines.append(f"{pad}- branches:")
            self._fields(self.head({}, item, prefix, None), indent + 4)
            if item.merge != "concat":
                self.lines.append(f"{pad}    merge: {item.merge}")
            if item.axis:
                self.lines.append(f"{pad}    axis: {item.axis}")
            self.lines.append(f"{pad}    paths:")
            named = all(n is not None for n in item.names) and len(set(item.names)) == len(item.names)
            for n, path in enumerate(item.paths):
                if named:
                    self.lines.append(f"{pad}      {key(item.names[n])}:")  # type: ignore[arg-type]
                    self.steps(path, indent + 8, f"{prefix}{item.names[n]}.", record)
                else:
                    self.lines.append(f"{pad}      -")
                    self.steps(path, indent + 8, prefix, record)  # a list path is transparent to ids
        elif isinstance(item, Scope):
            self.lines.append(f"{pad}- group:")
            self._fields(self.head({}, item, prefix, name), indent + 4)
            self.lines.append(f"{pad}    body:")
            self.steps(item.body, indent + 6, f"{prefix}{local}.", record)
        elif isinstance(item, Call):
            fields = self.head(dict(item.args), item, prefix, name)
            self.lines.append(f"{pad}- {item.block}: {_flow(fields)}" if fields else f"{pad}- {item.block}")
            if record:
                self._instance(item.instance, f"{prefix}{local}.")
        elif isinstance(item, Stage):
            fields = self.head({"block": item.block, "repeat": item.repeat}, item, prefix, name)
            if item.args:
                fields["args"] = item.args
            if item.first:
                fields["first"] = item.first
            if item.prefix:
                fields["prefix"] = item.prefix
            if item.start or item.partial:
                fields["start"] = item.start
            self.lines.append(f"{pad}- stage: {_flow(fields)}")
            if record:
                scope = prefix if item.partial else f"{prefix}{local}."
                for n, copy in enumerate(item.copies):
                    self.paths[copy.output] = f"{scope}{item.prefix}{item.start + n}"
                    self._instance(copy.instance, f"{scope}{item.prefix}{item.start + n}.")

    def _instance(self, body: list[Item], prefix: str) -> None:
        """Record the paths of a block copy's layers without writing it."""
        saved = self.lines
        self.lines = []
        self.steps(body, 0, prefix, True)
        self.lines = saved

    def _fields(self, fields: dict[str, Any], indent: int) -> None:
        for name, value in fields.items():
            self.lines.append(f"{' ' * indent}{name}: {scalar(value)}")

    def block(self, block: Block) -> None:
        self.lines.append(f"  {key(block.name)}:")
        if block.args:
            self.lines.append(f"    args: {_flow(block.args)}")
        self.lines.append("    body:")
        # the body's references are to its own steps: paths local to the block, not the first copy's in the model
        saved, self.paths = self.paths, {}
        self.steps(block.body, 6, "", record=True)
        self.paths = saved


class _Id(str):
    """An id value: quoted when it looks like a number."""


def _flow(fields: dict[str, Any]) -> str:
    parts = []
    for name, value in fields.items():
        text = ident(value) if isinstance(value, _Id) else scalar(value)
        parts.append(f"{key(name)}: {text}")
    return "{" + ", ".join(parts) + "}"


def write_spec(graph: FlatGraph, tree: Tree, source: str) -> tuple[str, dict[str, str]]:
    """The spec text, and the layer path each flat layer id got."""
    w = Writer(graph)
    out = w.lines
    out.append(f"# Imported by `archc import` from {source}.")
    out.extend(f"# {note}" for note in graph.notes)
    out.append(f"name: {graph.name}")
    out.append(f"doc: {json.dumps(graph.doc)}")
    out.append("inputs: {" + ", ".join(f"{key(k)}: {scalar(v)}" for k, v in graph.inputs.items()) + "}")
    outputs_at = len(out)
    if graph.params:
        out.append(f"params: {_flow(graph.params)}")
    if tree.blocks:
        out.append("")
        out.append("blocks:")
        for block in tree.blocks:
            w.block(block)
    out.append("")
    out.append("body:")
    w.steps(tree.body, 2, "")
    last = tree.body[-1].output if tree.body else ""
    if graph.outputs != [last]:
        names = [w.paths.get(o, o) for o in graph.outputs]
        out.insert(outputs_at, f"outputs: {scalar(names)}")
    return "\n".join(out) + "\n", w.paths
