"""The peak of activation memory over a schedule: values alive at once, each freed after its last use.

One walk for every estimate that needs it (the build's resource check, the memory planner). A layer's output is
written while its inputs are still held; a value is freed after its last reader (the schedule's ``freed``); model
outputs live to the end. A layer whose output shares its input's storage (a view, an in-place op) allocates nothing,
and a storage is freed only when every value on it is dead. Pure IR: no torch.
"""

from __future__ import annotations

from collections.abc import Callable

from archc.passes.schedule import Schedule, Step


def live_peak(schedule: Schedule, inputs: dict[str, int], size: Callable[[str], int],
              shares_input: Callable[[Step], bool] | None = None, *, hold_inputs: bool = False,
              scratch: Callable[[Step], int] | None = None, trace: dict[str, int] | None = None) -> int:
    """The largest sum of live bytes: ``inputs`` are the model inputs' bytes (alive at the start; freed after their
    last use unless ``hold_inputs``, as a caller holding them does), ``size`` a layer's output bytes,
    ``shares_input`` whether a step's output lives on its first input's storage, ``scratch`` the bytes a step
    allocates beside its output and frees when done; ``trace``, when given, receives the bytes alive while each layer
    runs."""
    storage_of: dict[str, str] = {name: name for name in inputs}
    nbytes: dict[str, int] = dict(inputs)
    users: dict[str, int] = {name: 1 for name in inputs}
    live = peak = sum(inputs.values())
    for step in schedule.steps:
        name = step.node.name
        if shares_input is not None and step.sources and shares_input(step):
            root = storage_of[name] = storage_of[step.sources[0]]
            users[root] += 1
        else:
            storage_of[name] = name
            nbytes[name] = size(name)
            users[name] = 1
            live += nbytes[name]
        busy = live + (scratch(step) if scratch is not None else 0)
        peak = max(peak, busy)
        if trace is not None:
            trace[name] = busy
        for value in step.freed:
            if hold_inputs and value in inputs:
                continue
            root = storage_of[value]
            users[root] -= 1
            if not users[root]:
                live -= nbytes[root]
    return peak
