"""Scopes from module paths: layers named `layer1.0.conv1` are grouped into `layer1` > `0` > `conv1`, so the spec
reproduces the source's state_dict names; and 1x1 convolution shortcuts become `shortcut: projection`.

A layer with weights keeps its full path (its scope is every component but the last). A layer without weights (a
ReLU module reused three times, an archc index name like `layer1.0.0.2`) is put in the deepest scope of its path that
holds weighted layers, and keeps its name only where that name is free and not an index.
"""

from __future__ import annotations

from typing import Any

from archc.importers.flat import FlatLayer
from archc.importers.tree import WEIGHTED_OPS, Branches, Item, Leaf, Residual, Scope, children, leaves, merge_leaves


def _parts(layer_id: str) -> tuple[str, ...]:
    return tuple(layer_id.split("."))


def assign_scopes(items: list[Item], keep_names: bool) -> None:
    """Set each leaf's scope and local name from its id."""
    all_leaves = leaves(items)
    prefixes: set[tuple[str, ...]] = {()}
    for leaf in all_leaves:
        if leaf.layer is not None and leaf.layer.op in WEIGHTED_OPS:
            parts = _parts(leaf.layer.id)
            prefixes.update(parts[:i] for i in range(len(parts)))
    used: set[tuple[str, ...]] = set()
    for leaf in all_leaves + merge_leaves(items):
        if leaf.layer is None or leaf.layer.id.endswith(":identity"):
            continue
        parts = _parts(leaf.layer.id)
        if not keep_names:
            leaf.scope, leaf.name = (), leaf.layer.id.replace(".", "_")
            continue
        if leaf.layer.op in WEIGHTED_OPS:
            leaf.scope, leaf.name = parts[:-1], parts[-1]
        else:
            depth = max(i for i in range(len(parts) + 1) if parts[:i] in prefixes)
            leaf.scope = parts[:depth]
            own = len(parts) == depth + 1 and not parts[-1].isdigit() and parts not in prefixes
            leaf.name = parts[-1] if own and parts not in used else None
        if leaf.name is not None:
            used.add(leaf.scope + (leaf.name,))


def scope_of(item: Item) -> tuple[str, ...]:
    if isinstance(item, Leaf):
        return item.scope
    if isinstance(item, Scope):
        return ()
    found = [leaf.scope for leaf in leaves([item])
             if leaf.layer is not None and not leaf.layer.id.endswith(":identity")]
    merge_leaf = getattr(item, "merge_leaf", None)
    if merge_leaf is not None and merge_leaf.scope:  # a merge without a module path (fx's `add`) places nothing
        found.append(merge_leaf.scope)
    if not found:
        return ()
    common = found[0]
    for scope in found[1:]:
        n = 0
        while n < min(len(common), len(scope)) and common[n] == scope[n]:
            n += 1
        common = common[:n]
    return common


def group(items: list[Item], depth: int = 0) -> list[Item]:
    """Consecutive steps sharing the scope component at ``depth`` become one :class:`Scope` (recursively)."""
    out: list[Item] = []
    i = 0
    while i < len(items):
        scope = scope_of(items[i])
        if len(scope) > depth:
            key, j = scope[depth], i
            while j < len(items) and len(scope_of(items[j])) > depth and scope_of(items[j])[depth] == key:
                j += 1
            source, items[i].source = items[i].source, None
            out.append(Scope(output=items[j - 1].output, source=source, name=key, body=group(items[i:j], depth + 1)))
            i = j
            continue
        item = items[i]
        if isinstance(item, Residual):
            item.body = group(item.body, depth)
            if isinstance(item.shortcut, list):
                item.shortcut = group(item.shortcut, depth)
        elif isinstance(item, Branches):
            for n, path in enumerate(item.paths):
                grouped = group(path, depth)
                if len(grouped) == 1 and isinstance(grouped[0], Scope) and grouped[0].name is not None:
                    item.names[n], grouped = grouped[0].name, grouped[0].body
                item.paths[n] = grouped
        out.append(item)
        i += 1
    return out


def _is_projection(steps: list[Item], fork_shape: list[int], out_shape: list[int]) -> bool:
    """A 1x1 convolution without bias and a default batch norm, striding as `shortcut: projection` would."""
    if len(steps) not in (1, 2) or not all(isinstance(s, Leaf) and s.layer is not None for s in steps):
        return False
    conv = steps[0].layer  # type: ignore[union-attr]
    bn = steps[1].layer if len(steps) == 2 else FlatLayer("", "bn")  # type: ignore[union-attr]
    if conv is None or bn is None or conv.op != "conv" or bn.op != "bn" or fork_shape == out_shape \
            or len(fork_shape) != 3:
        return False
    p: dict[str, Any] = conv.params
    if any(p.get(key, default) not in (default, [default] * 2) for key, default in
           (("k", 1), ("p", 0), ("d", 1), ("groups", 1), ("bias", False))) or p.get("bias", True):
        return False
    if any(bn.params.get(key, default) != default for key, default in
           (("eps", 1e-5), ("momentum", 0.1), ("affine", True))):
        return False
    want = [next((s for s in range(1, a + 1) if (a - 1) // s + 1 == b), 1)
            for a, b in zip(fork_shape[1:], out_shape[1:])]
    given = p.get("s", 1)
    given = given if isinstance(given, list) else [given] * 2
    return list(given) == want


def find_projections(items: list[Item], shapes: dict[str, list[int]], keep_names: bool) -> None:
    """Explicit 1x1-conv shortcuts that `shortcut: projection` reproduces, names included, are written so."""
    for item in items:
        for body in children(item):
            find_projections(body, shapes, keep_names)
        if not isinstance(item, Residual) or not isinstance(item.shortcut, list) or item.merge != "add":
            continue
        steps, name = item.shortcut, None
        if len(steps) == 1 and isinstance(steps[0], Scope):
            name, steps = steps[0].name, steps[0].body
            if [s.name for s in steps if isinstance(s, Leaf)] not in (["0", "1"], ["0"]):
                continue
        elif keep_names:
            continue
        fork, out = shapes.get(item.fork), shapes.get(item.output)
        if fork is not None and out is not None and _is_projection(steps, fork, out):
            item.shortcut_steps, item.shortcut, item.shortcut_id = steps, "projection", name
            item.shortcut_bn = len(steps) == 2
