"""Expansion budgets: a cheap lower bound on the layers and steps a spec expands to, and the budget lowering spends.

Lowering builds every layer (a node, its validated parameters, its shape), at a few dozen microseconds and a few
kilobytes each, so a few hundred bytes of blocks calling blocks, nested repeats or aliased step lists could ask for
billions of them. The :class:`Counter` counts, building nothing, what the spec makes for certain: op steps, block calls
and construct expansions whose arguments and counts evaluate from params and literal arguments (each construct counts
itself: its rule is registered with it in :mod:`archc.lower.constructs`). Whatever cannot be known yet (an `if` or a
count that reads `in_channels`, an expression error) counts as nothing, so the bound never refuses a spec that fits;
lowering checks the same budgets again as it goes (:class:`Budget`). Counts are memoised per (block, arguments) and
stop growing past the budget, so a bomb costs about one visit per distinct block call.

Steps are counted as lowering counts them (every step of a step list, including ones `if` skips), which bounds the
work of a spec that expands to very many steps but few layers.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from archc import expr
from archc.errors import Problem
from archc.limits import Limits
from archc.lower.block_args import REQUIRED, declared_args
from archc.lower.steps import BadStep, Step, parse_step
from archc.lower.untyped import SHAPE_NAMES
from archc.ops.registry import get_op
from archc.spec.model import CONSTRUCTS, SpecHeader, StageSpec
from archc.spec.report import DocPath, Reporter

Count = tuple[int, int]
"""(layers, steps) of a subtree, each saturated just above its limit."""
CountRule = Callable[["Counter", dict[str, Any], Mapping[str, Any], tuple[str, ...]], Count]
"""A construct's count: (counter, the step's mapping, the expression scope, the chain of block calls)."""
STACK_FRAMES = 20_000
"""Recursion limit while expanding: lowering recurses a few frames per nested step list, and blocks nested in
constructs nested in blocks reach a few thousand frames within the default limits (Python 3.11 calls between Python
functions do not grow the C stack)."""
UNKNOWN = object()
"""The value of an expression that cannot be evaluated before lowering."""


class Counter:
    def __init__(self, header: SpecHeader, params: Mapping[str, Any], limits: Limits,
                 counts: Mapping[str, CountRule]) -> None:
        self.header = header
        # names lowering binds to the input's shape are unknown here, so never taken from params either
        self.params = {k: v for k, v in params.items() if k not in SHAPE_NAMES}
        self.limits = limits
        self.counts = counts
        self.memo: dict[tuple[str, str], Count] = {}
        self.ops: dict[str, bool] = {}

    def full(self, count: Count) -> bool:
        return count[0] > self.limits.max_layers or count[1] > self.limits.max_steps

    def clamp(self, layers: int, steps: int) -> Count:
        return min(layers, self.limits.max_layers + 1), min(steps, self.limits.max_steps + 1)

    def add(self, a: Count, b: Count) -> Count:
        return self.clamp(a[0] + b[0], a[1] + b[1])

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
        step = parse_step(raw)
        if isinstance(step, BadStep) or ("if" in step.common and value_of(step.common["if"], scope) is not True):
            return 0, 0
        kind = step.kind
        if kind in CONSTRUCTS:
            rule = self.counts.get(kind)
            if rule is None:  # counting it as nothing would let its expansion through: fail closed
                raise RuntimeError(f"the expansion budget does not know the construct '{kind}'")
            return rule(self, step.body, scope, chain)
        if kind in self.header.blocks:
            return self.block(kind, bind({}, step.params, scope), chain)
        if kind not in self.ops:
            self.ops[kind] = get_op(kind) is not None
        return (1, 0) if self.ops[kind] else (0, 0)

    def block(self, name: str, given: dict[str, Any], chain: tuple[str, ...]) -> Count:
        """A block call with the arguments known so far (UNKNOWN where they are not)."""
        if name in chain or len(chain) >= self.limits.max_block_depth:
            return 0, 0  # recursion and depth are lowering's errors
        spec = self.header.blocks[name]
        values = {k: v for k, v in given.items() if v is not UNKNOWN}
        for key, (_, default) in declared_args(spec.args).items():
            if key in given or default is REQUIRED:
                continue
            # defaults may be expressions of params and the arguments above them, evaluated in order as lowering does
            value = value_of(default, {**self.params, **values})
            if value is not UNKNOWN:
                values[key] = value
        for key, raw in spec.let.items():  # block-local values, in order, as lowering evaluates them
            value = value_of(raw, {**self.params, **values})
            if value is not UNKNOWN:
                values[key] = value
        key = (name, repr(sorted(values.items(), key=lambda item: item[0])))
        if key not in self.memo:
            scope = {k: v for k, v in {**self.params, **values}.items() if k not in SHAPE_NAMES}
            self.memo[key] = self.steps(spec.body, scope, (*chain, name))
        return self.memo[key]

    def copies(self, repeat: int, first: Count, rest: Count) -> Count:
        """``repeat`` copies: the first counted as ``first``, the others as ``rest``."""
        if repeat <= 0:
            return 0, 0
        return self.clamp(first[0] + (repeat - 1) * rest[0], first[1] + (repeat - 1) * rest[1])


def value_of(raw: Any, scope: Mapping[str, Any]) -> Any:
    """An expression's value, or UNKNOWN when it cannot be evaluated before lowering."""
    try:
        return expr.substitute(raw, scope)
    except Problem:
        return UNKNOWN


def bind(base: dict[str, Any], given: dict[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with the evaluated ``given`` arguments; one that cannot be evaluated here is UNKNOWN."""
    return {**base, **{str(k): value_of(v, scope) for k, v in given.items()}}


class Budget:
    """The expansion budgets of one lowering, owned by the lowerer: the steps lowered so far, and whether a budget is
    spent (reported once; every later step would exceed it too, so lowering stops expanding)."""

    def __init__(self, header: SpecHeader, params: Mapping[str, Any], limits: Limits, report: Reporter,
                 counts: Mapping[str, CountRule]) -> None:
        self.limits = limits
        self.report = report
        self.counter = Counter(header, params, limits, counts)
        """Consulted before each stage expands (its memo kept across stages)."""
        self.steps_lowered = 0
        """Steps lowered so far, skipped ones included (limit max_steps)."""
        self._spent = False

    @property
    def spent(self) -> bool:
        return self._spent

    def _refuse(self, message: str, where: DocPath, layer: str = "") -> bool:
        self._spent = True
        self.report.error("E501", message, where, layer)
        return False

    def check_expansion(self, body: list[Any]) -> None:
        """Before lowering: report E501 at the top-level step past which the spec surely exceeds `max_layers` or
        `max_steps`."""
        limits, counter = self.limits, self.counter
        layers = steps = 0
        for i, raw in enumerate(body):
            sub_layers, sub_steps = counter.step(raw, counter.params, ())
            layers, steps = counter.clamp(layers + sub_layers, steps + 1 + sub_steps)
            if layers <= limits.max_layers and steps <= limits.max_steps:
                continue
            step = parse_step(raw)
            where: DocPath = ("body", i)
            layer, key = "", True
            if isinstance(step, Step) and step.keyed:
                where = step.at(where)
                layer = str(step.common.get("id") or "")
                if step.kind == "stage" and "repeat" in step.body:  # the count that multiplies
                    where, key = (*where, "repeat"), False
            elif isinstance(step, BadStep) and step.kind is not None:
                where = (*where, step.kind)
            if layers > limits.max_layers:
                message = (f"the model would have more than {limits.max_layers:,} layers after expanding blocks and "
                           "repeats up to this step (limit max_layers)")
            else:
                message = (f"more than {limits.max_steps:,} steps after expanding blocks and repeats up to this step, "
                           "counting steps skipped by `if` (limit max_steps)")
            self.report.error("E501", message, where, layer, key=key)
            return

    def spend_step(self, where: DocPath) -> bool:
        """Count one step lowered; False (after reporting once) when a budget is spent and lowering should stop."""
        if self._spent:
            return False
        self.steps_lowered += 1
        if self.steps_lowered > self.limits.max_steps:
            return self._refuse(f"more than {self.limits.max_steps:,} steps after expanding blocks and repeats, "
                                "counting steps skipped by `if` (limit max_steps)", where)
        return True

    def room_for_layer(self, layers: int, where: DocPath, layer: str) -> bool:
        """False (after reporting once) when a model of ``layers`` layers has no room for one more."""
        if layers < self.limits.max_layers:
            return True
        if self._spent:
            return False
        return self._refuse(f"more than {self.limits.max_layers} layers after expanding blocks and repeats "
                            "(limit max_layers)", where, layer)

    def stage_fits(self, spec: StageSpec, values: Mapping[str, Any], chain: tuple[str, ...], layers: int,
                   where: DocPath, layer: str) -> bool:
        """Before a stage expands in a model of ``layers`` layers: False (after reporting E501 once) when its copies
        surely exceed a budget, or when a budget is already spent.

        The pre-pass cannot count a repeat or arguments that read the input's shape; here they are known, so a stage
        whose copies would pass `max_layers` or `max_steps` is refused before its first copy is built."""
        if self._spent:
            return False
        counter = self.counter
        if spec.block is not None:
            first = counter.block(spec.block, {**spec.args, **spec.first}, chain)
            rest = counter.block(spec.block, dict(spec.args), chain) if spec.first else first
        else:
            scope = {k: values[k] for k in values if k not in SHAPE_NAMES}
            first = rest = counter.steps(spec.body, scope, chain)
        copies = spec.repeat
        more_layers = first[0] + (copies - 1) * rest[0] if copies else 0
        more_steps = first[1] + (copies - 1) * rest[1] if copies else 0
        limits = self.limits
        if layers + more_layers > limits.max_layers:
            return self._refuse(f"{copies:,} copies of at least {rest[0]:,} layers each would make the model larger "
                                f"than {limits.max_layers:,} layers (limit max_layers)", (*where, "repeat"), layer)
        if self.steps_lowered + more_steps > limits.max_steps:
            return self._refuse(f"{copies:,} copies of at least {rest[1]:,} steps each would pass "
                                f"{limits.max_steps:,} steps, counting steps skipped by `if` (limit max_steps)",
                                (*where, "repeat"), layer)
        return True


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


@contextlib.contextmanager
def stack_room() -> Iterator[None]:
    """Run with a recursion limit of at least :data:`STACK_FRAMES`, restoring the previous one after."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, STACK_FRAMES))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
