"""Repeats in sources without module paths (Darknet cfg, Caffe prototxt): consecutive runs of isomorphic steps.

Steps are compared by structure with numbers set aside. At each position that starts with a layer holding weights or
a construct, the shortest period of 1 to ``MAX_PERIOD`` steps repeated at least twice is taken (unless a shorter one
starts inside its first unit); the run is then cut where the numbers change (a copy may differ from the next only as
the first copy of a stage does), and each piece becomes a group of numbered copies,
which block recovery turns into a `stage`. The steps just before a run, when they have its length and hold a layer
with weights (a ResNet stage's first block, whose shortcut differs), join it as its first copy.
"""

from __future__ import annotations

from archc.importers.blocks import _values, signature
from archc.importers.tree import WEIGHTED_OPS, Branches, Item, Leaf, Residual, Scope, children

MAX_PERIOD = 12


def _substantial(items: list[Item]) -> bool:
    return any(isinstance(i, (Residual, Branches, Scope)) or
               (isinstance(i, Leaf) and i.layer is not None and i.layer.op in WEIGHTED_OPS) for i in items)


def _exact(items: list[Item]) -> str:
    found: list = []
    for item in items:
        _values(item, found)
    return repr([v for _, _, v, _ in found])


def _relaxed(items: list[Item]) -> tuple:
    """Structure without numbers; reads between steps by relative position."""
    outputs = {item.output: n for n, item in enumerate(items)}
    reads = tuple(None if i.source is None else tuple(outputs.get(s, -1) - n for s in i.source)
                  for n, i in enumerate(items))
    return tuple(signature(i) for i in items), reads


def _split(copies: list[list[Item]]) -> list[list[list[Item]]]:
    """Pieces whose copies are equal in their numbers, except each piece's first."""
    pieces: list[list[list[Item]]] = [[copies[0]]]
    for copy in copies[1:]:
        piece = pieces[-1]
        if len(piece) == 1 or _exact(copy) == _exact(piece[-1]):
            piece.append(copy)
        else:
            pieces.append([copy])
    return pieces


class _Segmenter:
    def __init__(self) -> None:
        self.count = 0

    def run(self, items: list[Item]) -> list[Item]:
        for item in items:
            for body in children(item):
                body[:] = self.run(body)
        sigs = [signature(i) for i in items]
        relaxed: dict[tuple[int, int], tuple] = {}

        def unit(start: int, period: int) -> tuple:
            if (start, period) not in relaxed:
                relaxed[start, period] = _relaxed(items[start:start + period])
            return relaxed[start, period]

        def shortest_run(start: int) -> tuple[int, int] | None:
            """The shortest unit starting at ``start`` that repeats, and its repeats."""
            if not _substantial([items[start]]):  # a unit starts at a layer with weights or a construct
                return None
            for period in range(1, min(MAX_PERIOD, (len(items) - start) // 2) + 1):
                reps = 1
                while start + (reps + 1) * period <= len(items) and \
                        sigs[start + reps * period:start + (reps + 1) * period] == sigs[start:start + period] and \
                        unit(start + reps * period, period) == unit(start, period):
                    reps += 1
                if reps >= 2:
                    return period, reps
            return None

        out: list[Item] = []
        plain = 0  # steps at the end of ``out`` not yet part of a run
        i, n = 0, len(items)
        while i < n:
            best = shortest_run(i)
            if best is not None:  # a shorter unit repeating just after would be split by this one: take that
                for j in range(i + 1, min(n, i + best[0])):
                    other = shortest_run(j)
                    if other is not None and other[0] < best[0]:
                        best = None
                        break
            if best is None:
                out.append(items[i])
                plain += 1
                i += 1
                continue
            period, reps = best
            copies = [items[i + r * period:i + (r + 1) * period] for r in range(reps)]
            if plain >= period and _substantial(out[-period:]) and \
                    all(s.source is None for s in out[len(out) - period + 1:]):
                copies.insert(0, out[-period:])
                del out[-period:]
            for piece in _split(copies):
                if len(piece) == 1:
                    out.extend(piece[0])
                    continue
                self.count += 1
                scopes: list[Item] = []
                for r, copy in enumerate(piece):
                    source, copy[0].source = copy[0].source, None
                    scopes.append(Scope(output=copy[-1].output, source=source, name=str(r), body=copy))
                source, scopes[0].source = scopes[0].source, None
                out.append(Scope(output=scopes[-1].output, source=source, name=f"stage{self.count}", body=scopes))
            plain = 0
            i += period * reps
        return out


def recover_repeats(items: list[Item]) -> list[Item]:
    """``items`` with runs of repeated steps grouped as stages of numbered copies."""
    return _Segmenter().run(items)


def anonymise(items: list[Item], keep: set[str]) -> None:
    """Drop the ids of layers nothing refers to by name (``keep``: flat ids read by `from:` or as outputs), so that
    copies of a repeated unit compare equal."""
    for item in items:
        if isinstance(item, Leaf) and item.layer is not None and item.layer.id not in keep:
            item.name = None
        for body in children(item):
            anonymise(body, keep)
