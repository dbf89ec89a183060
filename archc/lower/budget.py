"""Expansion budgets checked before lowering: a cheap lower bound on the layers and steps a spec expands to.

Lowering builds every layer (a node, its validated parameters, its shape), at a few dozen microseconds and a few
kilobytes each, so a few hundred bytes of blocks calling blocks, nested repeats or aliased step lists could ask for
billions of them. This pass counts, building nothing, what the spec makes for certain: op steps, block calls and stage
repeats whose arguments and counts evaluate from params and literal arguments. Whatever cannot be known yet (an `if`
or a count that reads `in_channels`, an expression error) counts as nothing, so the bound never refuses a spec that
fits; lowering checks the same budgets again as it goes. Counts are memoised per (block, arguments) and stop growing
past the budget, so a bomb costs about one visit per distinct block call.

Steps are counted as lowering counts them (every step of a step list, including ones `if` skips), which bounds the
work of a spec that expands to very many steps but few layers.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from archc import expr
from archc.errors import Problem
from archc.limits import Limits
from archc.lower.blocks import _REQUIRED, declared_args
from archc.lower.untyped import SHAPE_NAMES
from archc.ops.registry import get_op
from archc.spec.model import COMMON_KEYS, CONSTRUCTS, SpecHeader, StageSpec
from archc.spec.report import DocPath, Reporter

if TYPE_CHECKING:
    from archc.lower.lowerer import Lowerer

Count = tuple[int, int]
"""(layers, steps) of a subtree, each saturated just above its limit."""
STACK_FRAMES = 20_000
"""Recursion limit while expanding: lowering recurses a few frames per nested step list, and blocks nested in
constructs nested in blocks reach a few thousand frames within the default limits (Python 3.11 calls between Python
functions do not grow the C stack)."""
_UNKNOWN = object()
_SHAPE_NAMES = SHAPE_NAMES
"""Names lowering binds to the input's shape: unknown here, so never taken from params either."""


class Counter:
    def __init__(self, header: SpecHeader, params: Mapping[str, Any], limits: Limits) -> None:
        self.header = header
        self.params = {k: v for k, v in params.items() if k not in _SHAPE_NAMES}
        self.limits = limits
        self.memo: dict[tuple[str, str], Count] = {}
        self.ops: dict[str, bool] = {}

    def full(self, count: Count) -> bool:
        return count[0] > self.limits.max_layers or count[1] > self.limits.max_steps

    def clamp(self, layers: int, steps: int) -> Count:
        return min(layers, self.limits.max_layers + 1), min(steps, self.limits.max_steps + 1)

    def steps(self, items: Any, scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
        """A step list: every item is one step, whatever it expands to."""
        if not isinstance(items, list):
            return 0, 0
        layers = steps = 0
        for raw in items:
            sub_layers, sub_steps = self.step(raw, scope, chain)
            layers, steps = self.clamp(layers + sub_layers, steps + 1 + sub_steps)
            if self.full((layers, steps)):
                break
        return layers, steps

    def step(self, raw: Any, scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
        """What one step expands to, not counting the step itself."""
        if isinstance(raw, str):
            kind, body = raw, {}
        elif isinstance(raw, dict) and len(raw) == 1:
            (kind, body), = raw.items()
            body = {} if body is None else body
        else:
            return 0, 0
        if not isinstance(body, dict) or ("if" in body and _value(body["if"], scope) is not True):
            return 0, 0
        if kind in CONSTRUCTS:
            return self.construct(kind, body, scope, chain)
        if kind in self.header.blocks:
            given = {k: v for k, v in body.items() if k not in COMMON_KEYS}
            return self.block(kind, _bind({}, given, scope), chain)
        if kind not in self.ops:
            self.ops[kind] = get_op(kind) is not None
        return (1, 0) if self.ops[kind] else (0, 0)

    def construct(self, kind: str, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
        if kind == "group":
            return self.steps(body.get("body"), scope, chain)
        if kind == "residual":
            shortcut = body.get("shortcut")
            if isinstance(shortcut, dict):
                shortcut = shortcut.get("body")
            return self.add(self.steps(body.get("body"), scope, chain), self.steps(shortcut, scope, chain))
        if kind == "branches":
            paths = body.get("paths")
            items = list(paths.values()) if isinstance(paths, dict) else paths if isinstance(paths, list) else []
            total: Count = (1, 0) if items else (0, 0)  # the merge
            for path in items:
                total = self.add(total, self.steps(path, scope, chain) if isinstance(path, list) else
                                 self.step(path, scope, chain))
                if self.full(total):
                    break
            return total
        if kind == "stage":
            return self.stage(body, scope, chain)
        # a construct this pass does not know must not count as nothing (that would let its expansion through)
        raise RuntimeError(f"the expansion budget does not know the construct '{kind}'")

    def stage(self, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
        repeat = _value(body.get("repeat"), scope)
        if type(repeat) is not int or repeat <= 0:
            return 0, 0
        block = body.get("block")
        if "body" in body:
            copy = rest = self.steps(body["body"], scope, chain)
        elif isinstance(block, str) and block in self.header.blocks:
            args = body.get("args") if isinstance(body.get("args"), dict) else {}
            first = body.get("first") if isinstance(body.get("first"), dict) else {}
            rest_args = _bind({}, args, scope)
            # a stage's copies are block calls, so each lowers one step list: the block's body
            copy = self.block(block, _bind(rest_args, first, scope), chain)
            rest = copy if not first else self.block(block, rest_args, chain)
        else:
            return 0, 0
        return self.clamp(copy[0] + (repeat - 1) * rest[0], copy[1] + (repeat - 1) * rest[1])

    def block(self, name: str, given: dict[str, Any], chain: tuple[str, ...]) -> Count:
        if name in chain or len(chain) >= self.limits.max_block_depth:
            return 0, 0  # recursion and depth are lowering's errors
        spec = self.header.blocks[name]
        values = {k: v for k, v in given.items() if v is not _UNKNOWN}
        for key, (_, default) in declared_args(spec.args).items():
            if key in given or default is _REQUIRED:
                continue
            # defaults may be expressions of params and the arguments above them, evaluated in order as lowering does
            value = _value(default, {**self.params, **values})
            if value is not _UNKNOWN:
                values[key] = value
        key = (name, repr(sorted(values.items(), key=lambda item: item[0])))
        if key not in self.memo:
            scope = {k: v for k, v in {**self.params, **values}.items() if k not in _SHAPE_NAMES}
            self.memo[key] = self.steps(spec.body, scope, (*chain, name))
        return self.memo[key]

    def add(self, a: Count, b: Count) -> Count:
        return self.clamp(a[0] + b[0], a[1] + b[1])


def _value(raw: Any, scope: Mapping[str, Any]) -> Any:
    try:
        return expr.substitute(raw, scope)
    except Problem:
        return _UNKNOWN


def _bind(base: dict[str, Any], given: dict[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with the evaluated ``given`` arguments; one that cannot be evaluated here is unknown."""
    return {**base, **{str(k): _value(v, scope) for k, v in given.items()}}


def stage_fits(lowerer: Lowerer, spec: StageSpec, values: Mapping[str, Any], chain: tuple[str, ...],
               where: DocPath, layer: str) -> bool:
    """Before a stage expands: False (after reporting E501 once) when its copies surely exceed a budget.

    The pre-pass cannot count a repeat or arguments that read the input's shape; here they are known, so a stage
    whose copies would pass `max_layers` or `max_steps` is refused before its first copy is built."""
    if lowerer.counter is None:
        lowerer.counter = Counter(lowerer.header, lowerer.params, lowerer.limits)
    counter = lowerer.counter
    if spec.block is not None:
        first = counter.block(spec.block, {**spec.args, **spec.first}, chain)
        rest = counter.block(spec.block, dict(spec.args), chain) if spec.first else first
    else:
        scope = {k: values[k] for k in values if k not in _SHAPE_NAMES}
        first = rest = counter.steps(spec.body, scope, chain)
    copies = spec.repeat
    layers = first[0] + (copies - 1) * rest[0] if copies else 0
    steps = first[1] + (copies - 1) * rest[1] if copies else 0
    limits = lowerer.limits
    if lowerer.layer_count() + layers > limits.max_layers:
        message = (f"{copies:,} copies of at least {rest[0]:,} layers each would make the model larger than "
                   f"{limits.max_layers:,} layers (limit max_layers)")
    elif lowerer.steps_lowered + steps > limits.max_steps:
        message = (f"{copies:,} copies of at least {rest[1]:,} steps each would pass {limits.max_steps:,} steps, "
                   "counting steps skipped by `if` (limit max_steps)")
    else:
        return True
    lowerer._over_budget = True
    lowerer.report.error("E501", message, (*where, "repeat"), layer)
    return False


def check_inputs(header: SpecHeader, report: Reporter, limits: Limits) -> None:
    """Model inputs are tensors too: hold them to the per-tensor budgets that lowering applies to every output."""
    for name, spec in header.inputs.items():
        shape = list(spec if isinstance(spec, list) else spec.shape)
        numel = math.prod(shape)
        if any(d > limits.max_dim for d in shape):
            report.error("E501", f"input '{name}' of shape {shape} has a dimension above {limits.max_dim:,} "
                                 "(limit max_dim)", ("inputs", name))
        elif numel > limits.max_tensor_elements:
            report.error("E501", f"input '{name}' of shape {shape} has {numel:,} elements per sample, more than "
                                 f"{limits.max_tensor_elements:,} (limit max_tensor_elements)", ("inputs", name))


def check_expansion(header: SpecHeader, params: Mapping[str, Any], report: Reporter, limits: Limits) -> None:
    """Report E501 at the top-level step past which the spec surely exceeds `max_layers` or `max_steps`."""
    counter = Counter(header, params, limits)
    layers = steps = 0
    for i, raw in enumerate(header.body):
        sub_layers, sub_steps = counter.step(raw, counter.params, ())
        layers, steps = counter.clamp(layers + sub_layers, steps + 1 + sub_steps)
        if layers <= limits.max_layers and steps <= limits.max_steps:
            continue
        where: DocPath = ("body", i)
        layer, key = "", True
        if isinstance(raw, dict) and len(raw) == 1:
            (kind, body), = raw.items()
            where = (*where, kind)
            if isinstance(body, dict):
                layer = str(body.get("id") or "")
                if kind == "stage" and "repeat" in body:  # the count that multiplies
                    where, key = (*where, "repeat"), False
        if layers > limits.max_layers:
            report.error("E501", f"the model would have more than {limits.max_layers:,} layers after expanding "
                                 "blocks and repeats up to this step (limit max_layers)", where, layer, key=key)
        else:
            report.error("E501", f"more than {limits.max_steps:,} steps after expanding blocks and repeats up to "
                                 "this step, counting steps skipped by `if` (limit max_steps)", where, layer, key=key)
        return


def spend_step(lowerer: Lowerer, where: DocPath) -> bool:
    """Count one step lowered; False (after reporting once) when a budget is spent and lowering should stop."""
    if lowerer._over_budget:
        return False
    lowerer.steps_lowered += 1
    if lowerer.steps_lowered > lowerer.limits.max_steps:
        lowerer._over_budget = True
        lowerer.report.error("E501", f"more than {lowerer.limits.max_steps:,} steps after expanding blocks and "
                                     "repeats, counting steps skipped by `if` (limit max_steps)", where)
        return False
    return True


@contextlib.contextmanager
def stack_room() -> Iterator[None]:
    """Run with a recursion limit of at least :data:`STACK_FRAMES`, restoring the previous one after."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, STACK_FRAMES))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
