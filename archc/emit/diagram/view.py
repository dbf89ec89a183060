"""What a diagram shows, and the layout budget that keeps Graphviz fast.

A view maps every layer to the drawn node that stands for it: the layer itself, a scope folded into one summary
node (a stage of repeated blocks, a run of one block's calls in a plain list, or every scope at the ``depth`` level),
or a run of consecutive top-level layers.

Graphviz's ``dot`` takes time superlinear in the nodes it lays out (a 7,000-node chain takes half a minute) and
crashes on tens of thousands. So the view is sized before any DOT is written: beyond :class:`LayoutBudget` a default
drawing folds and collapses scopes level by level (then runs of top-level layers) until it fits, and says so; a
drawing the user asked for explicitly (``fold=False``, ``depth=N``) is refused with the option that helps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archc.emit.diagram.fold import folded_at
from archc.errors import UsageError
from archc.ir.graph import Graph, Node

FOLD_THRESHOLD = 120
"""Graphs with more layers than this fold repeated blocks unless told otherwise."""
MAX_LAYOUT_NODES = 2_000
"""Drawn nodes Graphviz lays out in about 2 s on one core (a chain; a branchy graph is about as quick)."""
MAX_LAYOUT_EDGES = 4_000
RUN_PREFIX = "run:"
SCOPE_PREFIX = "scope:"


@dataclass(frozen=True)
class LayoutBudget:
    """The most nodes and edges a diagram may hand to Graphviz."""

    nodes: int = MAX_LAYOUT_NODES
    edges: int = MAX_LAYOUT_EDGES

    def fits(self, view: View) -> bool:
        return len(view.items) <= self.nodes and view.edge_count <= self.edges


DEFAULT_BUDGET = LayoutBudget()


@dataclass
class Item:
    """One drawn node: a layer, a whole scope folded into a summary node, or a run of top-level layers."""

    id: str
    node: Node | None
    scope: str
    """The folded scope's path, or "" for a layer or a run."""
    cluster: str
    """The innermost drawn scope holding the item ("" is the top level)."""
    members: list[Node] = field(default_factory=list)
    """The layers a folded scope or a run stands for."""


class View:
    def __init__(self, g: Graph, depth: int | None, fold: bool, keep_open: frozenset[str] = frozenset(),
                 run: int = 1) -> None:
        """``keep_open``: stages never folded (the ones holding a failing layer, in a partial diagram). ``run``:
        consecutive top-level layers drawn as one node, when more than 1."""
        self.g = g
        self.repeats = repeat_labels(g)
        self.runs: dict[str, list[str]] = {}
        """Runs of block instances folded like a stage (first instance -> the instances), when folding."""
        if fold:
            self.runs = {first: run for first, run in block_runs(g, self.repeats).items() if not keep_open & set(run)}
            self.repeats.update({first: f"{g.scopes[first].label} x {len(run)}" for first, run in self.runs.items()})
        run_of = {path: first for first, run in self.runs.items() for path in run}
        self.note = ""
        """Why the drawing shows less than was asked for (empty when it shows that); goes into the legend."""
        folds = set(self.repeats) - keep_open if fold else set()
        level = None if depth is None else max(depth, 1)
        points: dict[str, tuple[bool, str | None]] = {}
        """Scope -> (it is the top level, the scope its layers collapse into): many layers share a scope."""
        self.rep: dict[str, str] = {}
        self.items: dict[str, Item] = {}
        open_run: Item | None = None
        for n in g.nodes():
            if n.scope not in points:
                chain = g.scope_chain(n.scope)
                points[n.scope] = (not chain, _collapse_point(chain, level, folds, run_of))
            top, point = points[n.scope]
            if point is not None:
                item = self.items.get(SCOPE_PREFIX + point) or Item(SCOPE_PREFIX + point, None, point,
                                                                    _parent_scope(g, point))
                item.members.append(n)
                open_run = None
            elif run > 1 and top and not n.is_input:
                if open_run is None or len(open_run.members) >= run:
                    open_run = Item(RUN_PREFIX + n.name, None, "", "")
                item = open_run
                item.members.append(n)
            else:
                item = Item(n.name, n, "", n.scope)
                open_run = None
            self.items.setdefault(item.id, item)
            self.rep[n.name] = item.id
        pairs: set[tuple[str, str]] = set()
        self.leaving: set[str] = set()
        """Layers whose output is read outside the drawn node that holds them."""
        for node in g.nodes():
            b = self.rep[node.name]
            for src in g.input_names(node.name):
                a = self.rep[src]
                if a != b:
                    pairs.add((a, b))
                    self.leaving.add(src)
        self.edge_count = len(pairs)


def _collapse_point(chain: list[str], level: int | None, folds: set[str], run_of: dict[str, str]) -> str | None:
    """The outermost scope around a node that is drawn as a single node, if any: a folded stage, a folded run of
    block instances (named by its first instance), or the scope at the depth level (the summary's rule)."""
    at_depth = folded_at(chain, level)
    for path in chain:
        if path in run_of:
            return run_of[path]
        if path in folds or path == at_depth:
            return path
    return None


def _parent_scope(g: Graph, path: str) -> str:
    chain = g.scope_chain(path)
    return chain[-2] if len(chain) >= 2 else ""


def repeat_labels(g: Graph) -> dict[str, str]:
    """Stage path -> ``bottleneck x 6`` for stages whose children are all instances of one block (or copies of one
    body): the stages that fold."""
    children: dict[str, list[str]] = {}
    for path in g.scopes:
        children.setdefault(_parent_scope(g, path), []).append(path)
    labels: dict[str, str] = {}
    for path, scope in g.scopes.items():
        kids = [g.scopes[k] for k in children.get(path, [])]
        if scope.kind != "stage" or not kids:
            continue
        if all(s.kind == "block" for s in kids) and len({s.label for s in kids}) == 1:
            labels[path] = f"{kids[0].label} x {len(kids)}"
        elif all(s.kind == "repeat" for s in kids):
            labels[path] = f"{scope.label or path.rsplit('.', 1)[-1]} x {len(kids)}"
    return labels


def block_runs(g: Graph, stages: dict[str, str]) -> dict[str, list[str]]:
    """Runs of consecutive calls of one block outside a stage (a plain list, as torchvision's MobileNets write their
    features), each a first instance followed by instances that keep its shape: they fold like a stage of that block
    (``bneck x 3``), one run per change of shape, as a stage starts where the shape changes. Runs of two or more."""
    units: dict[str, list[str]] = {}
    """Parent scope -> what it holds in order: its child scopes and (as "") its own layers."""
    ends: dict[str, tuple[Node, Node]] = {}
    for n in g.nodes():
        chain = g.scope_chain(n.scope)
        for i, parent in enumerate(["", *chain]):
            unit = chain[i] if i < len(chain) else ""
            seq = units.setdefault(parent, [])
            if not seq or seq[-1] != unit or not unit:
                seq.append(unit)
            if unit:
                ends[unit] = (ends[unit][0] if unit in ends else n, n)
    runs: dict[str, list[str]] = {}
    for parent, seq in units.items():
        if parent in stages or (parent and any(g.scopes[p].kind == "block" for p in g.scope_chain(parent))):
            continue  # a stage of repeated blocks folds whole; a block's own body stays as its author wrote it
        run: list[str] = []
        for unit in [*seq, ""]:
            scope = g.scopes.get(unit) if unit else None
            block = scope.label if scope is not None and scope.kind == "block" else ""
            if run and block == g.scopes[run[0]].label and _keeps_shape(g, *ends[unit]):
                run.append(unit)
                continue
            if len(run) >= 2:
                runs[run[0]] = run
            run = [unit] if block else []
    return runs


def _keeps_shape(g: Graph, first: Node, last: Node) -> bool:
    sources = g.input_names(first.name)
    return bool(sources) and g.node(sources[0]).out_type == last.out_type


def plan_view(g: Graph, *, depth: int | None, fold: bool | None, keep_open: frozenset[str] = frozenset(),
              budget: LayoutBudget | None = None) -> View:
    """The view to draw. ``fold=None``: fold repeated blocks when the graph has more than :data:`FOLD_THRESHOLD`
    layers and no ``depth`` is given. ``budget=None`` draws what was asked for whatever its size (DOT text that no
    layout reads)."""
    explicit_fold = fold
    if fold is None:
        fold = depth is None and len(g) > FOLD_THRESHOLD
    view = View(g, depth, fold, keep_open)
    if budget is None or budget.fits(view):
        return view
    levels = max((len(g.scope_chain(s)) for s in {n.scope for n in g.nodes()}), default=0)
    if depth is not None or explicit_fold is False:
        raise UsageError(_refusal(g, view, budget, depth, fold, keep_open, levels))
    for level in range(levels, 0, -1):
        collapsed = View(g, level, True, keep_open)
        if budget.fits(collapsed):
            collapsed.note = (f"{_size(view)} exceed the layout budget of {budget.nodes:,} nodes and "
                              f"{budget.edges:,} edges: scopes below depth {level} are collapsed ({_size(collapsed)}); "
                              "--depth N chooses the level")
            return collapsed
    # what is left is too many top-level layers: draw runs of them as single nodes
    top = View(g, 1, True, keep_open) if levels else view  # no scopes at all: the view is the top level already
    layers = sum(item.node is not None for item in top.items.values())
    run = math.ceil(layers / max(1, budget.nodes // 2))
    chunked = View(g, 1, True, keep_open, run=run)
    if not budget.fits(chunked):
        raise UsageError(f"the diagram would have {_size(top)} even with every scope collapsed, more than Graphviz "
                         f"lays out in reasonable time ({budget.nodes:,} nodes, {budget.edges:,} edges); write a "
                         ".dot file (no layout) or group the steps into `group`s or `stage`s")
    chunked.note = (f"{_size(view)} exceed the layout budget of {budget.nodes:,} nodes and {budget.edges:,} edges: "
                    f"scopes are collapsed and runs of up to {run:,} top-level layers drawn as one node "
                    f"({_size(chunked)})")
    return chunked


def _refusal(g: Graph, view: View, budget: LayoutBudget, depth: int | None, fold: bool,
             keep_open: frozenset[str], levels: int) -> str:
    asked = f"--depth {depth}" if depth is not None else "--no-fold"
    start = min(levels, depth - 1) if depth is not None else levels
    options = []
    for level in range(start, 0, -1):
        shallower = View(g, level, fold, keep_open)
        if budget.fits(shallower):
            options.append(f"--depth {level} ({_size(shallower)})")
            break
    if depth is None:
        options.append("drop --no-fold")
    options.append("write a .dot file (no layout)")
    return (f"{asked}: the diagram would have {_size(view)}, more than Graphviz lays out in reasonable time "
            f"({budget.nodes:,} nodes, {budget.edges:,} edges); draw fewer: {', '.join(options[:-1])}"
            f"{' or ' if len(options) > 1 else ''}{options[-1]}")


def _size(view: View) -> str:
    return f"{_plural(len(view.items), 'node')} and {_plural(view.edge_count, 'edge')}"


def _plural(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"
