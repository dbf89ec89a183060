"""Inference activations: the peak of live tensors over the schedule, in eval mode without autograd.

The liveness walk is archc/passes/liveness.py's (the build's resource check uses it too), over the storages of
archc/memory/storage.py: views, dropout and in-place layers allocate nothing; a value is freed after its last reader;
the model's inputs are held by the caller throughout and outputs live to the end. Weights are not activations.

The generated module calls each outlined block instance and stage (archc/emit/torch_source/outline.py: a scope
reading one outside value, with one exit) as a sub-module; the caller's variable holds that value until the call
returns, so it lives until the scope's last layer has run, even when no layer inside reads it that late.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from archc.ir.graph import Graph
from archc.memory.dtypes import extra_bytes, tensor_bytes
from archc.memory.profile import Profile
from archc.memory.storage import Layout
from archc.ops.registry import known_op
from archc.passes.liveness import live_peak
from archc.passes.schedule import Schedule, Step

CALLED_SCOPES = ("block", "stage")
"""Scope kinds the PyTorch emitter makes sub-module calls of."""


@dataclass(frozen=True)
class InferencePeak:
    peak: int
    """Bytes per sample at the peak, the inputs included."""
    inputs: int
    """Bytes per sample of the model's inputs."""
    live: dict[str, int]
    """Layer -> bytes per sample alive while it runs (its inputs and its new output)."""
    allocated: dict[str, int]
    """Layer -> bytes per sample of its new output (0 for a view or an in-place layer)."""
    fixed: dict[str, int]
    """Layer -> bytes of its temporaries whatever the batch (a masked weight), alive while it runs."""

    @property
    def profile(self) -> Profile:
        """The bytes alive at each layer, whose largest at a batch is the peak."""
        return Profile(self.live, self.fixed)


def inference_peak(graph: Graph, schedule: Schedule, storages: Layout, dtype: str) -> InferencePeak:
    """The inference peak of one sample in ``dtype`` (inference-mode ``storages``)."""
    def size(name: str) -> int:
        t = graph.node(name).out_type
        return 0 if name in storages.state or t is None else tensor_bytes(t, dtype)

    inputs = {name: size(name) for name in graph.inputs}
    live: dict[str, int] = {}
    fixed: dict[str, int] = {}

    def scratch(step: Step) -> int:
        node = step.node
        assert node.out_type is not None
        extras = known_op(node.op).inference_scratch(node.params, step.in_types, node.out_type)
        fixed[node.name] = sum(extra_bytes(extra, dtype) for extra in extras if not extra.per_sample)
        return sum(extra_bytes(extra, dtype) for extra in extras if extra.per_sample)

    peak = live_peak(held_by_callers(graph, schedule), inputs, size,
                     lambda step: storages.shares_input(step.node.name), hold_inputs=True, scratch=scratch, trace=live)
    allocated = {step.node.name: 0 if storages.shares_input(step.node.name) else size(step.node.name)
                 for step in schedule.steps}
    return InferencePeak(peak, sum(inputs.values()), live, allocated, fixed)


def held_by_callers(graph: Graph, schedule: Schedule) -> Schedule:
    """``schedule`` with each called scope's input freed after the scope's last layer at the earliest."""
    position = {step.node.name: index for index, step in enumerate(schedule.steps)}
    members: dict[str, list[str]] = defaultdict(list)
    for step in schedule.steps:
        for path in graph.scope_chain(step.node.scope):
            if graph.scopes[path].kind in CALLED_SCOPES:
                members[path].append(step.node.name)
    outputs = set(graph.outputs.values())
    held: dict[str, int] = {}
    for names in members.values():
        inside = set(names)
        outside = {source for name in names for source in graph.input_names(name) if source not in inside}
        exits = [name for name in names
                 if name in outputs or any(user not in inside and user in position for user in graph.users(name))]
        if len(outside) == 1 and len(exits) == 1:
            (source,) = outside
            held[source] = max(held.get(source, -1), position[names[-1]])
    freed: list[list[str]] = [[] for _ in schedule.steps]
    for index, step in enumerate(schedule.steps):
        for value in step.freed:
            freed[max(index, held.get(value, index))].append(value)
    steps = [replace(step, freed=names) for step, names in zip(schedule.steps, freed, strict=True)]
    return Schedule(steps, schedule.dead)
