"""Spec -> graph: walks the step lists, expands blocks and constructs, names every node, infers shapes as it goes.

Shapes are inferred node by node while lowering because some constructs depend on them: a `projection` shortcut is
the identity when the shapes already match, and expressions may read `in_channels`. Data flows top to bottom: a
`from:` may only name a step defined earlier; a later one is reported as such, or as a cycle when it is one.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from archc import expr
from archc.errors import Problem
from archc.ir.graph import INPUT_OP, Graph, Node
from archc.ir.types import TensorType
from archc.limits import Limits
from archc.lower.blocks import call_block
from archc.lower.budget import Budget
from archc.lower.constructs import CONSTRUCT_COUNTS, CONSTRUCT_RULES
from archc.lower.constructs.chunk import reads_nothing, reads_whole
from archc.lower.constructs.stage import count_network_blocks
from archc.lower.context import BlockCounter, Ctx, Result, Source
from archc.lower.cycles import PendingRef, explain_pending
from archc.lower.names import Entry, NameTable, PartsTable
from archc.lower.reserved import RESERVED_MODULE_NAMES
from archc.lower.steps import BadStep, Step, parse_step
from archc.lower.ties import tie_weight
from archc.lower.untyped import SHAPE_NAMES, AfterError, UntypedInput
from archc.ops.base import OpParams
from archc.ops.registry import closest_ops, get_op
from archc.passes.shapes import infer_node
from archc.spec.model import COMMON_KEYS, InputSpec, SpecHeader, StepCommon
from archc.spec.report import DocPath, Reporter, describe


class Lowerer:
    """Lowers one spec; implements :class:`archc.lower.context.Lowering` for the constructs and block calls."""

    def __init__(self, header: SpecHeader, params: dict[str, Any], report: Reporter, limits: Limits,
                 file: str) -> None:
        self.header = header
        self.report = report
        self.limits = limits
        self.graph = Graph(header.name, header.doc, file)
        self.graph.params = dict(params)
        self.params = params
        self.pending: list[PendingRef] = []
        self.budget = Budget(header, params, limits, report, CONSTRUCT_COUNTS)
        self.params_seen: dict[tuple[Any, ...], OpParams] = {}
        """Validated parameters by op and values (see :meth:`validated`)."""
        self.types_seen: dict[tuple[Any, ...], tuple[OpParams, TensorType]] = {}
        """Output types by op, parameters (by identity) and input types (see :meth:`add_node`)."""
        self.tie_ops: dict[str, bool] = {}
        self.bad_defaults: set[tuple[str, str]] = set()
        """(block, argument) whose default failed to evaluate: reported once, not once per call."""
        scope = {k: v for k, v in params.items() if k not in SHAPE_NAMES}
        self.block_counter = BlockCounter(count=count_network_blocks(header.body, scope))

    # --- entry --------------------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        top = NameTable()
        first: Source = None
        for name, spec in self.header.inputs.items():
            spec = spec if isinstance(spec, InputSpec) else InputSpec(shape=spec)
            node = Node(name, INPUT_OP, spec, self.report.doc.pos(("inputs", name), key=True),
                        out_type=TensorType(tuple(spec.shape), spec.dtype))
            self.graph.add_node(node)
            top.define(name, Entry(name))
            first = first or name
        ctx = Ctx("", "", "", top, self.params)
        last = self.steps(self.header.body, ("body",), ctx, first)
        self.resolve_outputs(top, last)
        self.report_pending()
        self.pending.clear()
        top.release()  # nothing reads the names after lowering: freed now, not by a later full collection
        return self.graph

    def resolve_outputs(self, top: NameTable, last: Source) -> None:
        outs = self.header.outputs
        if outs is None:
            if last is not None:
                self.graph.outputs["output"] = last
            return
        items = {ref.replace(".", "_"): ref for ref in outs} if isinstance(outs, list) else dict(outs)
        for i, (out_name, ref) in enumerate(items.items()):
            where: DocPath = ("outputs", i) if isinstance(outs, list) else ("outputs", out_name)
            entry = top.lookup(ref)
            if entry is None:
                self.report.error("E201", f"output '{out_name}' names unknown step '{ref}'{top.suggest(ref)}", where)
            elif entry.excluded:
                continue  # an optional output (e.g. auxiliary classifiers) switched off by its step's `if:`
            elif isinstance(entry.inner, PartsTable):
                self.report.error("E204", reads_whole(ref, entry.inner), where)
            elif entry.node is not None:
                self.graph.outputs[out_name] = entry.node

    # --- step lists ---------------------------------------------------------------------------------------------------
    def steps(self, steps: list[Any], where: DocPath, ctx: Ctx, current: Source) -> Source:
        index = 0
        parted: tuple[str, PartsTable, DocPath] | None = None  # the step above has several outputs: (ref, parts, at)
        for i, raw in enumerate(steps):
            item = (*where, i)
            if not self.budget.spend_step(item):  # a budget is spent (reported once): stop expanding
                return None
            step = self.parse_step(raw, item)
            if step is None:
                current = None
                continue
            # `at` is the path of the step's parameter mapping; its key is the op name, where diagnostics point
            at, common = step.at(item), step.common
            ident = common.get("id")
            anon = f"{ctx.anon}{index}"
            if not self.condition(common, at, ctx, ctx.layer(ident, anon)):
                if ident is not None and ident not in ctx.table.entries:
                    ctx.table.define(ident, Entry(None, excluded=True))
                continue
            index += 1
            if ident in RESERVED_MODULE_NAMES:
                self.report.error("E206", f"'{ident}' is an attribute of PyTorch modules and cannot name a layer; "
                                          "choose another id", (*at, "id"), ctx.prefix + ident)
                ctx.table.define(ident, Entry(None))  # references to it stay quiet: one mistake, one error
                current = None
                continue
            if ident is not None and ident in ctx.table.entries and not ctx.table.entries[ident].excluded:
                self.duplicate_id(ctx, ident, (*at, "id"))
                current = None  # the steps below stay untyped rather than read a guess
                continue
            if parted is not None and "from" not in common and not reads_nothing(step.kind, step.body):
                self.report.error("E204", reads_whole(parted[0], parted[1]), at, ctx.layer(ident, anon), key=True)
            current, inner = self.lower_step(step, at, ctx, current, ident, anon)
            parted = (ident or anon[len(ctx.prefix):], inner, at) if isinstance(inner, PartsTable) else None
            if ident is not None:
                self.define(ctx, ident, current, at, inner)
            elif anon.startswith(ctx.prefix):  # referable by its index path in the scope (`from: features.3`)
                line = self.report.doc.pos(at, key=True).line
                index_path = anon[len(ctx.prefix):]
                ctx.table.unnamed.append((index_path, line))
                ctx.table.indexed[index_path] = Entry(current, inner, line)
        if parted is not None and not (where == ("body",) and self.header.outputs is not None):
            self.report.error("E204", reads_whole(parted[0], parted[1]) + "; a step list ending with it has no "
                                      "single output", parted[2], parted[1].layer, key=True)
        return current

    def lower_step(self, step: Step, where: DocPath, ctx: Ctx, current: Source, ident: str | None,
                   anon: str) -> Result:
        """Resolve a step's inputs and lower it, noting which nodes it made for explaining forward references."""
        first_pending = len(self.pending)
        inputs = self.inputs_of(step.common, where, ctx, current, anon)
        mine = self.pending[first_pending:]
        result = self.step(step.kind, step.body, where, ctx, inputs, ident, anon)
        for item in mine:
            item.end_node = len(self.graph)
        return result

    def duplicate_id(self, ctx: Ctx, ident: str, where: DocPath, *, key: bool = False) -> None:
        """Report a second step named ``ident`` (``where`` points at the name); the step is not lowered."""
        first = ctx.table.entries[ident].line
        line = f" (first used on line {first})" if first else ""
        self.report.error("E203", f"duplicate id '{ident}' in this scope{line}; ids name steps and must be unique",
                          where, ctx.prefix + ident, key=key)

    def parse_step(self, raw: Any, where: DocPath) -> Step | None:
        """The step at ``where``, or None after reporting why it is not one."""
        step = parse_step(raw)
        if isinstance(step, BadStep):
            if step.kind is not None:
                self.report.error("E103", f"'{step.kind}' takes a mapping of parameters; found "
                                          f"{describe(raw[step.kind])}", where + (step.kind,))
            elif isinstance(raw, dict):
                keys = ", ".join(repr(k) for k in raw) or "none"
                self.report.error("E105", f"a step has exactly one op or block name as its key; found {keys}", where)
            else:
                self.report.error("E105", f"a step is an op name or `{{op: {{...}}}}`; found {describe(raw)}", where)
            return None
        ident = step.common.get("id")
        if ident is not None and self.report.validate(StepCommon, {"id": ident}, step.at(where)) is None:
            return None  # an id becomes part of layer names: never lower a step with a bad one
        return step

    def condition(self, common: dict[str, Any], where: DocPath, ctx: Ctx, layer: str = "") -> bool:
        if "if" not in common:
            return True
        value = self.evaluate(common["if"], ctx.values, (*where, "if"), layer)
        if isinstance(value, bool):
            return value
        if value is not None:
            self.report.error("E103", f"'if': expected true or false; found {describe(value)}", (*where, "if"),
                              layer)
        return False

    def inputs_of(self, common: dict[str, Any], where: DocPath, ctx: Ctx, current: Source, layer: str) -> list[Source]:
        refs = common.get("from")
        if refs is None:
            return [current]
        ref_list = refs if isinstance(refs, list) else [refs]
        sources: list[Source] = []
        for j, ref in enumerate(ref_list):
            ref_where = where + ("from",) + ((j,) if isinstance(refs, list) else ())
            if type(ref) is int and ref >= 0:  # `from: 3`: an unnamed step's index, as YAML reads it
                ref = str(ref)
            if isinstance(ref, float):  # YAML reads `2.0` as a number, which loses the path
                self.report.error("E103", f"'from': the index path {ref!r} reads as a number; quote it ('{ref!r}' "
                                          "as written, in quotes)", ref_where, ctx.layer(common.get("id"), layer))
                sources.append(None)
                continue
            if not isinstance(ref, str):
                self.report.error("E103", f"'from': expected a step name; found {describe(ref)}", ref_where,
                                  ctx.layer(common.get("id"), layer))
                sources.append(None)
                continue
            entry = ctx.table.lookup(ref)
            if entry is not None and entry.excluded:
                self.report.error("E201", f"'{ref}' is switched off by its `if:`, so it has no output to take",
                                  ref_where, ctx.layer(common.get("id"), layer))
                sources.append(None)
                continue
            if entry is not None and isinstance(entry.inner, PartsTable):
                self.report.error("E204", reads_whole(ref, entry.inner), ref_where, ctx.layer(common.get("id"), layer))
                sources.append(None)
                continue
            if entry is None:
                self.pending.append(PendingRef(ref, ctx.table, ref_where, ctx.layer(common.get("id"), layer),
                                               len(self.graph)))
            sources.append(entry.node if entry else None)
        return sources

    def step(self, kind: str, body: dict[str, Any], where: DocPath, ctx: Ctx, inputs: list[Source],
             ident: str | None, anon: str) -> Result:
        construct = CONSTRUCT_RULES.get(kind)
        if construct is not None:
            return construct.lower(self, construct.model, body, where, ctx, inputs, ident, anon)
        if kind in self.header.blocks:
            return call_block(self, kind, body, where, ctx, inputs, ident, anon)
        if get_op(kind) is not None:
            return self.op_step(kind, body, where, ctx, inputs, ident or None, anon), None
        own = [name for name in self.header.blocks if name not in self.report.block_docs]  # not the library's
        names = closest_ops(kind, [*own, *CONSTRUCT_RULES])
        hint = f"; did you mean {' or '.join(repr(n) for n in names)}?" if names else "; see `archc ops`"
        self.report.error("E104", f"unknown op or block '{kind}'{hint}", where, ctx.layer(ident, anon),
                          key=True)
        return None, None

    def define(self, ctx: Ctx, ident: str, output: Source, where: DocPath, inner: NameTable | None = None) -> None:
        if not ctx.table.define(ident, Entry(output, inner, self.report.doc.pos(where, key=True).line)):
            self.report.error("E203", f"duplicate id '{ident}' in this scope", where + ("id",),
                              ctx.prefix + ident)

    # --- ops ----------------------------------------------------------------------------------------------------------
    def op_step(self, kind: str, body: dict[str, Any], where: DocPath, ctx: Ctx, inputs: list[Source],
                ident: str | None, anon: str) -> Source:
        op = get_op(kind)
        assert op is not None  # checked by the caller
        name = ctx.layer(ident, anon)
        raw = {k: v for k, v in body.items() if k not in COMMON_KEYS}
        values = self.values_for(ctx, inputs)
        resolved = self.substitute_fields(raw, values, where, name)
        if resolved is None:
            return self.add_node(name, kind, None, where, ctx, inputs, failed=True)
        params = self.validated(kind, op.Params, resolved, where, name)
        # a shared weight (`tie: transformer.wte`); asked of the op first: pydantic's miss on an instance is slow
        if params is not None and self.ties(kind, op.Params) and params.tie is not None:
            params = tie_weight(self, params, where, ctx, inputs, name)
        if params is not None and not op.uses_input(params):  # a tensor the model holds: it reads nothing
            if "from" in body:
                self.report.error("E204", f"'{kind}' takes no input; remove `from`", (*where, "from"), name, key=True)
                return self.add_node(name, kind, None, where, ctx, [], failed=True)
            inputs = []
        return self.add_node(name, kind, params, where, ctx, inputs, failed=params is None)

    def ties(self, kind: str, model: type[OpParams]) -> bool:
        """Whether the op's parameters have `tie` (asked once per op)."""
        known = self.tie_ops.get(kind)
        if known is None:
            known = self.tie_ops[kind] = "tie" in model.model_fields
        return known

    def validated(self, kind: str, model: type[OpParams], resolved: dict[str, Any], where: DocPath,
                  name: str) -> OpParams | None:
        """``resolved`` validated as the op's parameters; the same values give the same (immutable) model, validated
        once per compile: a network repeats a few layer configurations thousands of times."""
        try:  # the type is part of the key: `out: true` equals `out: 1` but strict validation refuses it
            key = (kind, *((k, type(v), v) for k, v in resolved.items()))
            params = self.params_seen.get(key)
        except TypeError:  # a list value (`k: [1, 7]`): validated each time
            return self.report.validate(model, resolved, where, name)
        if params is None:
            params = self.report.validate(model, resolved, where, name)
            if params is not None:
                self.params_seen[key] = params
        return params

    def values_for(self, ctx: Ctx, inputs: list[Source]) -> Mapping[str, Any]:
        """Expression scope for a step: params, block arguments, and its input's shape when known."""
        t = self.graph.node(inputs[0]).out_type if inputs and inputs[0] is not None else None
        if t is not None:
            return ChainMap({"in_channels": t.channels, "in_shape": list(t.shape)}, ctx.values)
        return AfterError(ctx.values) if inputs else ctx.values

    def add_node(self, name: str, op: str, params: OpParams | None, where: DocPath, ctx: Ctx, inputs: list[Source],
                 *, failed: bool = False) -> Source:
        if not self.budget.room_for_layer(self.layer_count(), where, name):
            return None
        if name in self.graph:
            self.report.error("E203", f"two steps are both named '{name}'", where, name)
            return None
        if name in self.graph.scopes and name != ctx.scope:  # a module path is a layer or a parent, not both
            # (a named construct's merge node is its own scope's output, so it may share the scope's name)
            self.report.error("E203", f"'{name}' already names a scope of several layers above (a block call, a "
                                      "named construct or a stage copy); give this step another id", where, name)
            return None
        node = Node(name, op, params, self.report.pos(where, key=True), ctx.scope)
        self.graph.add_node(node)
        for port, src in enumerate(inputs):
            if src is not None:
                self.graph.connect(src, name, port)
        if failed or None in inputs:
            return name if not failed else None
        if params is not None:  # the same op, parameters and input types give the same output type, checked once
            key = (op, id(params), *[self.graph.node(src).out_type for src in inputs])
            known = self.types_seen.get(key)
            if known is not None:
                node.out_type = known[1]
                return name
        try:
            infer_node(self.graph, node, self.limits)
        except Problem as problem:
            self.report.error(problem.code, problem.message, where, name, key=True)
            return None
        if params is not None and node.out_type is not None:
            self.types_seen[key] = (params, node.out_type)  # holding params keeps its id from being reused
        return name

    def layer_count(self) -> int:
        """Layers so far; model inputs are nodes but not layers (as in the summary's count)."""
        return len(self.graph) - len(self.graph.inputs)

    # --- expressions --------------------------------------------------------------------------------------------------
    def evaluate(self, value: Any, values: Mapping[str, Any], where: DocPath, layer: str = "") -> Any:
        try:
            return expr.substitute(value, values)
        except UntypedInput:
            return None
        except Problem as problem:
            self.report.error(problem.code, f"'{where[-1]}': {problem.message}", where, layer)
            return None

    def substitute_fields(self, raw: dict[str, Any], values: Mapping[str, Any], where: DocPath,
                          layer: str = "") -> dict | None:
        out: dict[str, Any] = {}
        ok = True
        for key, value in raw.items():
            try:
                out[key] = expr.substitute(value, values)
            except UntypedInput:
                ok = False
            except Problem as problem:
                self.report.error(problem.code, f"'{key}': {problem.message}", where + (key,), layer)
                ok = False
        return out if ok else None

    # --- references ---------------------------------------------------------------------------------------------------
    def report_pending(self) -> None:
        for item in self.pending:
            explain_pending(self.graph, self.report, item)


def lower(header: SpecHeader, params: dict[str, Any], report: Reporter, limits: Limits, file: str) -> Graph:
    return Lowerer(header, params, report, limits, file).run()


def check_expansion(header: SpecHeader, params: dict[str, Any], report: Reporter, limits: Limits) -> None:
    """Before lowering: report E501 at the top-level step past which the spec surely exceeds `max_layers` or
    `max_steps` (archc/lower/budget.py), so that a bomb is refused before anything is built."""
    Budget(header, params, limits, report, CONSTRUCT_COUNTS).check_expansion(header.body)
