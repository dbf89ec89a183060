"""From a :class:`FlatGraph` to a short spec: parallel regions, scopes from module paths, projection shortcuts, blocks
and stages, each recovered step checked by compiling the result. A recovery that would not compile is dropped (the
spec stays longer but correct), so an import never fails for want of structure."""

from __future__ import annotations

from dataclasses import dataclass

from archc.compiler import Compiled, compile_text
from archc.errors import Diagnostic, SpecError
from archc.importers.blocks import recover_blocks
from archc.importers.flat import FlatGraph, ImportFailure, source_error
from archc.importers.regions import recover_regions
from archc.importers.repeats import anonymise, recover_repeats
from archc.importers.scopes import assign_scopes, find_projections, group
from archc.importers.spec_writer import write_spec
from archc.importers.tree import Item, Leaf, Scope, Tree, children
from archc.ops.registry import all_ops
from archc.spec.model import CONSTRUCTS as SPEC_CONSTRUCTS

CONSTRUCTS = set(SPEC_CONSTRUCTS) | {"block", "model"}
"""Names a recovered block must not take (a step `split:` is the construct, never a block of that name)."""


@dataclass
class ImportedSpec:
    text: str
    paths: dict[str, str]
    """Flat layer id -> its layer path in the spec (its state_dict prefix)."""
    compiled: Compiled


def _try(graph: FlatGraph, tree: Tree, source: str, named: bool = True) -> tuple[ImportedSpec | None, list[Diagnostic]]:
    text, paths = write_spec(graph, tree, source)
    try:
        compiled = compile_text(text, f"{graph.name}.yaml")
    except SpecError as exc:
        return None, exc.diagnostics
    names = {node.name for node in compiled.graph.nodes()}
    if named and any(path not in names for fid, path in paths.items() if fid in _weighted_ids(graph)):
        return None, []
    return ImportedSpec(text, paths, compiled), []


def _weighted_ids(graph: FlatGraph) -> set[str]:
    from archc.importers.tree import WEIGHTED_OPS

    return {layer.id for layer in graph.layers if layer.op in WEIGHTED_OPS}


def _referenced(items: list[Item]) -> set[str]:
    found: set[str] = set()
    for item in items:
        found.update(item.source or [])
        for body in children(item):
            found |= _referenced(body)
    return found


def _flat(graph: FlatGraph, keep_names: bool) -> list[Item]:
    items: list[Item] = []
    previous = next(iter(graph.inputs), "")
    for layer in graph.layers:
        leaf = Leaf(output=layer.id, layer=layer, name=layer.id.replace(".", "_"))
        leaf.source = None if layer.inputs == [previous] else list(layer.inputs)
        items.append(leaf)
        previous = layer.id
    return items


def _mark_kinds(items: list[Item], kinds: dict[str, str], prefix: str) -> None:
    """Give each scope the source's module type at its path (what its block will be called)."""
    for item in items:
        here = prefix
        if isinstance(item, Scope) and item.name is not None:
            here = f"{prefix}{item.name}."
            item.kind = kinds.get(here[:-1])
        for body in children(item):
            _mark_kinds(body, kinds, here)


def condense(graph: FlatGraph, source: str, keep_names: bool = True) -> ImportedSpec:
    """The shortest spec this recovers for ``graph`` that compiles. ``keep_names``: layer ids are module paths
    (ONNX, PyTorch) whose scopes must be kept; otherwise (text formats) ids are free."""
    items = recover_regions(graph)
    assign_scopes(items, keep_names)
    body = group(items) if keep_names else items
    if graph.kinds:
        _mark_kinds(body, graph.kinds, "")
    tree = Tree(body)
    base, problems = _try(graph, tree, source, keep_names)
    if base is None:
        flat, problems = _try(graph, Tree(_flat(graph, keep_names)), source)
        if flat is None:
            detail = "; ".join(d.format() for d in problems[:3]) or "layer names do not survive"
            raise ImportFailure([source_error("E601", f"the imported layers do not form a valid archc model ({detail})",
                                              source)])
        return flat
    shapes = {fid: list(base.compiled.graph.node(path).out_type.shape) for fid, path in base.paths.items()
              if path in {n.name for n in base.compiled.graph.nodes()} and
              base.compiled.graph.node(path).out_type is not None}
    find_projections(body, shapes, keep_names)
    if not keep_names:
        named_outputs = set(graph.outputs) if graph.outputs != [graph.layers[-1].id] else set()
        anonymise(body, _referenced(body) | named_outputs)
        body = tree.body = recover_repeats(body)
    tree.blocks = recover_blocks(body, set(all_ops()) | CONSTRUCTS)
    better, _ = _try(graph, tree, source, keep_names)
    if better is None or _totals(better.compiled) != _totals(base.compiled):
        return base  # a recovery that changed the network (a bug) must never reach the user
    return better


def _totals(compiled: Compiled) -> tuple[int, int, int, list[tuple[str, tuple]]]:
    """What recovery must preserve: parameters, MACs, layers, and each output's shape."""
    t = compiled.costs.total
    g = compiled.graph
    shapes = [(name, tuple(g.node(node).out_type.shape)) for name, node in g.outputs.items()]  # type: ignore[union-attr]
    return t.params, t.macs, t.layers, shapes
