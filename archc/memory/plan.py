"""The memory plan of a compiled spec: weights, gradients, optimizer state, activations, and the batch that fits.

Training holds the parameters and buffers, a gradient per parameter of a computed layer (a layer no output needs
gets none: its parameters receive no gradient), the optimizer's state after its first step (what ``torch.optim``
allocates: SGD nothing, SGD with momentum one buffer per parameter, Adam and AdamW two, plus a float32 ``step``
counter per parameter tensor), the tensors autograd saves for the backward pass and, at the step's peak, whatever the
backward pass holds at once (archc/memory/training.py). Inference holds the weights and the peak of live
activations. Everything is in the plan's dtype (pure fp16/bf16 training keeps weights, gradients and optimizer state
in it); integer tensors keep their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import UsageError
from archc.memory.dtypes import DTYPES
from archc.memory.inference import InferencePeak, inference_peak
from archc.memory.profile import Profile
from archc.memory.storage import layout
from archc.memory.training import SavedTensors, saved_tensors
from archc.ops.registry import known_op
from archc.passes.pipeline import Compiled
from archc.report.precision import element_bytes

OPTIMIZERS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
"""Parameter-sized state buffers per parameter tensor after one step, by optimizer."""
STEP_COUNTER_BYTES = 4
"""Adam and AdamW keep a float32 ``step`` tensor per parameter tensor."""


@dataclass(frozen=True)
class Weights:
    params: int
    """Bytes of every parameter tensor as the PyTorch module allocates it (a masked weight whole)."""
    buffers: int
    """Bytes of every buffer (batch norm's running statistics...)."""
    trained: int
    """Bytes of the parameters of computed layers: those that receive a gradient."""
    trained_tensors: int
    """How many parameter tensors receive a gradient."""


@dataclass(frozen=True)
class MemoryPlan:
    """A spec's memory at one batch size, for training (``optimizer`` set) or inference (``optimizer`` None)."""

    model: str
    batch: int
    dtype: str
    optimizer: str | None
    weights: Weights
    saved: SavedTensors
    inference: InferencePeak
    layer_ops: dict[str, str]
    """Computed layer -> its op, in schedule order."""

    @property
    def training(self) -> bool:
        return self.optimizer is not None

    @property
    def gradients(self) -> int:
        return self.weights.trained if self.training else 0

    @property
    def optimizer_state(self) -> int:
        if self.optimizer is None:
            return 0
        buffers = OPTIMIZERS[self.optimizer]
        counters = self.weights.trained_tensors * STEP_COUNTER_BYTES if self.optimizer in ("adam", "adamw") else 0
        return self.weights.trained * buffers + counters

    @property
    def state_bytes(self) -> int:
        """What lives across steps: parameters, buffers and (training) the optimizer state."""
        return self.weights.params + self.weights.buffers + self.optimizer_state

    @property
    def profile(self) -> Profile:
        """Bytes alive at each layer besides :attr:`state_bytes`: a training step's backward pass (gradients
        included) or the inference forward."""
        return self.saved.step if self.training else self.inference.profile

    @property
    def activations(self) -> int:
        """Saved tensors at the end of the forward (training) or the live peak (inference) at the plan's batch."""
        if self.training:
            return self.saved.per_sample * self.batch + self.saved.fixed
        return self.inference.profile.at(self.batch)

    @property
    def peak(self) -> int:
        """The most alive at once besides :attr:`state_bytes` at the plan's batch."""
        return self.profile.at(self.batch)

    @property
    def peak_layer(self) -> str:
        return self.profile.where(self.batch)

    def total(self, batch: int | None = None) -> int:
        return self.state_bytes + self.profile.at(self.batch if batch is None else batch)

    def largest_batch(self, budget: int) -> int:
        """The largest batch whose total fits ``budget`` bytes (0: not even one sample)."""
        room = budget - self.state_bytes
        return self.profile.largest_batch(room) if room >= 0 else 0


def check_options(batch: int, dtype: str, optimizer: str | None) -> None:
    """Refuse options no plan can be made for (a usage error, before compiling anything)."""
    if batch < 1:
        raise UsageError(f"--batch: expected 1 or more; got {batch}")
    element_bytes(dtype)  # the reports' check of the name
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer: expected one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    if optimizer is not None and dtype == "int8":
        raise UsageError("--dtype int8 plans inference only: training needs floating-point weights and gradients "
                         "(use fp32, fp16 or bf16 with --train)")


def plan_memory(compiled: Compiled, *, batch: int = 1, dtype: str = "fp32", optimizer: str | None = None,
                input_grads: bool = False) -> MemoryPlan:
    """The memory plan of ``compiled``; ``optimizer`` (sgd, momentum, adam, adamw) plans a training step;
    ``input_grads``: the step also differentiates with respect to the model's inputs."""
    check_options(batch, dtype, optimizer)
    graph, schedule = compiled.graph, compiled.schedule()
    element = DTYPES[dtype]
    params = buffers = trained = tensors = 0
    grads: dict[str, int] = {}
    computed = set(schedule.computed())
    for node in graph.nodes():
        if node.is_input or "cost" not in node.meta:
            continue
        buffers += node.meta["cost"].buffers * element
        if not node.meta["cost"].params:
            continue
        ins = [t for t in (graph.node(s).out_type for s in graph.input_names(node.name)) if t is not None]
        assert node.out_type is not None
        sizes = known_op(node.op).parameter_sizes(node.params, ins, node.out_type)  # as allocated
        params += sum(sizes) * element
        if node.name in computed:
            grads[node.name] = sum(sizes) * element
            trained += grads[node.name]
            tensors += len(sizes)
    weights = Weights(params, buffers, trained, tensors)
    saved = saved_tensors(graph, schedule, layout(graph, schedule, training=True), dtype, grads, input_grads)
    peak = inference_peak(graph, schedule, layout(graph, schedule, training=False), dtype)
    ops = {step.node.name: step.node.op for step in schedule.steps}
    return MemoryPlan(graph.name, batch, dtype, optimizer, weights, saved, peak, ops)
