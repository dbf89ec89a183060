"""Consecutive slices that cut one tensor into parts (a `chunk` or `split` step's layers) written as one statement:
``qkv_0, qkv_1, qkv_2 = x.chunk(3, dim=-1)``, as a person writes it, instead of one slice per line.

torch.chunk and torch.split return the same views the slices would, so the forward computes what it did.
"""

from __future__ import annotations

from dataclasses import dataclass

from .body import Item


@dataclass(frozen=True)
class PartRun:
    """Items ``start`` .. ``start + len(items) - 1`` of a forward's order: slices of one value, in order, that cover
    its axis from end to end."""

    start: int
    items: list[Item]
    call: str
    """The whole cut, with ``{0}`` for the sliced value: ``{0}.chunk(3, dim=-1)`` or ``{0}.split([64, 192], dim=1)``."""


def part_runs(order: list[Item], root: dict[str, str], excluded: set[str]) -> dict[int, PartRun]:
    """The runs of ``order`` (keyed by their first index) that one chunk or split statement can write; ``root`` maps
    an item to the value it reads, ``excluded`` holds items written otherwise (aliases, guarded chains)."""
    runs: dict[int, PartRun] = {}
    i = 0
    while i < len(order):
        run = _run_at(order, i, root, excluded)
        if run is not None:
            runs[i] = run
            i += len(run.items)
        else:
            i += 1
    return runs


def _run_at(order: list[Item], i: int, root: dict[str, str], excluded: set[str]) -> PartRun | None:
    first = order[i]
    if not _slice(first, excluded) or first.node.params.start != 0:
        return None
    source = root[first.sources[0]]
    rank = first.node.out_type.rank
    axis = first.node.params.axis % rank
    items, sizes = [first], [first.node.out_type.shape[axis]]
    j = i + 1
    while items[-1].node.params.end is not None and j < len(order):
        item = order[j]
        p = item.node.params
        if not _slice(item, excluded) or root[item.sources[0]] != source or p.axis % rank != axis or \
                p.start != items[-1].node.params.end:
            return None
        items.append(item)
        sizes.append(item.node.out_type.shape[axis])
        j += 1
    if len(items) < 2 or items[-1].node.params.end is not None:
        return None  # not cut to the end of the axis: slices as they are
    dim = -1 if axis == rank - 1 else axis + 1
    size = -(-sum(sizes) // len(sizes))  # torch.chunk's: ceil(n / chunks) each, the last one what is left
    equal = all(s == size for s in sizes[:-1]) and sizes[-1] <= size
    cut = f"chunk({len(sizes)}, dim={dim})" if equal else f"split([{', '.join(map(str, sizes))}], dim={dim})"
    return PartRun(i, items, "{0}." + cut)


def _slice(item: Item, excluded: set[str]) -> bool:
    p = item.node.params
    return (item.node.op == "slice" and item.name not in excluded and not item.guard and p.step == 1
            and item.node.out_type is not None)


def part_names(item: Item) -> list[str]:
    """Variable names for a part, from its path: ``qkv_0`` for ``attn.qkv.0``."""
    parts = item.name.split(".")
    if len(parts) >= 2 and parts[-1].isdigit() and f"{parts[-2]}_{parts[-1]}".isidentifier():
        return [f"{parts[-2]}_{parts[-1]}"]
    return []
