"""What building a PyTorch module, exporting it to ONNX and verifying it will cost, from the compiled graph alone.

Computed before anything is allocated, so that a spec too large for the machine is refused at once (E502, E503)
instead of being killed by the kernel or running for minutes. Pure IR: no torch, no onnx.

Memory, all in float32 (the dtype archc builds in):

- weights (parameters and buffers): one copy in the PyTorch module; exporting writes the file a weight at a time
  from the module's own arrays (archc/emit/onnx_file.py), so it adds little; verifying adds onnxruntime's session
  (its own copy of the weights and the file's bytes). :data:`EXPORT_WEIGHT_COPIES` and :data:`VERIFY_WEIGHT_COPIES`
  are measured, not derived: VGG-19-BN's 548 MiB of weights peak at 0.60 GiB above the interpreter's own memory
  (with torch and onnxruntime loaded) while exporting, and at 2.3 GiB while exporting and verifying.
- when verifying, activations: the verification runs batch 1, then batch 2 (and another input size with dynamic
  height and width) through PyTorch and onnxruntime. Each runtime frees a value after its last use, so a run needs the
  peak of the values alive at once (a layer's inputs and output included); onnxruntime's arena keeps its peak after
  the run, so the two peaks add up. Add the largest convolution workspace (onnxruntime expands a convolution's input
  per image: input channels per group x kernel x output positions) and the harness's own arrays (inputs drawn in
  float64, outputs compared in float64).

Not counted: the interpreter and libraries themselves (about 300 MB with torch and onnxruntime loaded).

Compute: verifying runs every sample of every run in both runtimes; its multiply-accumulates are checked against
``max_verify_macs``, so a model that would take many minutes to verify is refused in time (``--no-verify`` skips it).
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import Diagnostic, SpecError
from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType
from archc.limits import Limits
from archc.ops.registry import known_op
from archc.passes.input_sizes import other_size
from archc.passes.liveness import live_peak
from archc.passes.pipeline import Compiled
from archc.passes.schedule import Schedule, schedule_graph
from archc.passes.shapes import infer_at
from archc.yaml_loader import collector_paused

FLOAT_BYTES = 4
"""Weights and activations are float32."""
EXPORT_WEIGHT_COPIES = 2
"""Copies of the weights alive at the peak of an export (measured, see the module docstring, with a margin)."""
VERIFY_WEIGHT_COPIES = 4
"""Copies of the weights alive at the peak of an export that is verified in onnxruntime (measured: 3.7)."""
RUNTIMES = 2
"""PyTorch and onnxruntime each hold their own peak of activations."""
HARNESS_INPUT_FACTOR = 3
"""An input drawn in float64 then cast to float32: 3 float32-sizes at once."""
HARNESS_OUTPUT_FACTOR = 2
"""Both runtimes' outputs; they are compared a chunk at a time (archc/emit/onnx_verify.py), so the float64 copies
and differences are small."""

Types = dict[str, TensorType]


@dataclass(frozen=True)
class Run:
    """One verification run: the input types (None: as declared) and the batch size."""

    types: Types | None
    batch: int


@dataclass(frozen=True)
class MemoryEstimate:
    weight_bytes: int
    """One copy of every parameter and buffer."""
    weight_copies: int
    activation_bytes: int = 0
    """Peak live activations of the largest verification run, in one runtime (0 without verification)."""
    workspace_bytes: int = 0
    """The largest convolution workspace of that run."""
    harness_bytes: int = 0
    """The verification's own input and output arrays."""
    batch: int = 0
    """Batch size of that run."""

    @property
    def total(self) -> int:
        return (self.weight_bytes * self.weight_copies + self.activation_bytes * RUNTIMES + self.workspace_bytes
                + self.harness_bytes)

    def parts(self) -> str:
        copies = f" x {self.weight_copies} copies" if self.weight_copies > 1 else ""
        out = [f"weights {size_text(self.weight_bytes)}{copies}"]
        if self.batch:
            out.append(f"activations {size_text(self.activation_bytes)} at batch {self.batch} x {RUNTIMES} runtimes")
            out.append(f"convolution workspace {size_text(self.workspace_bytes)}")
            out.append(f"verification arrays {size_text(self.harness_bytes)}")
        return ", ".join(out)


# --- estimates --------------------------------------------------------------------------------------------------------
def verification_runs(graph: Graph, dynamic: str) -> list[Run]:
    """The runs :func:`archc.emit.onnx_verify.cases` makes, by input types and batch."""
    parts = {p.strip() for p in dynamic.split(",")}
    runs = [Run(None, 1)]
    if "batch" in parts:
        runs.append(Run(None, 2))
    if "hw" in parts:
        other = other_size(graph)
        if other is not None:
            runs.append(Run(infer_at(graph, other), 2))
    return runs


def estimate(graph: Graph, *, export: bool, verify: bool, dynamic: str = "batch",
             schedule: Schedule | None = None) -> MemoryEstimate:
    """Memory for building the module, then (``export``) exporting it, then (``verify``) verifying the export;
    activations follow ``schedule`` (the graph's, archc/passes/schedule.py, when None): what the backends compute."""
    weights = sum((n.meta["cost"].params + n.meta["cost"].buffers) * FLOAT_BYTES for n in layers(graph))
    copies = VERIFY_WEIGHT_COPIES if verify else EXPORT_WEIGHT_COPIES if export else 1
    if not verify:
        return MemoryEstimate(weights, copies)
    schedule = schedule or schedule_graph(graph)
    per_types: dict[int, _PerSample] = {}  # runs at the declared size share one walk: memory scales with the batch
    best: MemoryEstimate | None = None
    for run in verification_runs(graph, dynamic):
        key = id(run.types)
        if key not in per_types:
            per_types[key] = _per_sample(graph, schedule, run.types)
        sample = per_types[key]
        need = MemoryEstimate(weights, copies, sample.peak * run.batch, sample.workspace,
                              (sample.inputs * HARNESS_INPUT_FACTOR + sample.outputs * HARNESS_OUTPUT_FACTOR)
                              * run.batch, run.batch)
        if best is None or need.total > best.total:
            best = need
    assert best is not None  # there is always the batch-1 run
    return best


@dataclass(frozen=True)
class _PerSample:
    peak: int
    workspace: int
    inputs: int
    outputs: int


def _per_sample(graph: Graph, schedule: Schedule, types: Types | None) -> _PerSample:
    """Bytes for one sample: the peak of values alive at once (a layer's output is written while its inputs are
    still held; a value is freed after its last use), the largest convolution workspace, inputs and outputs."""
    def size(name: str) -> int:
        t = types[name] if types is not None else graph.node(name).out_type
        return t.nbytes if t is not None else 0

    inputs = {name: size(name) for name in graph.inputs}
    peak = live_peak(schedule, inputs, size)
    workspace = max((_workspace(graph, step.node, types) for step in schedule.steps), default=0)
    outputs = sum(size(name) for name in graph.outputs.values())
    return _PerSample(peak, workspace, sum(inputs.values()), outputs)


def _workspace(graph: Graph, node: Node, types: Types | None) -> int:
    """A convolution's expanded input for one image: its MACs per output channel (zero for other layers)."""
    out = types[node.name] if types is not None else node.out_type
    if out is None or out.rank < 2:
        return 0
    macs = _macs(graph, node, types)
    return macs // max(1, out.channels) * FLOAT_BYTES


def _macs(graph: Graph, node: Node, types: Types | None) -> int:
    """A layer's MACs per sample: the compiled cost, or the cost at other input types."""
    if types is None:
        return node.meta["cost"].macs if "cost" in node.meta else 0
    ins = [types[source] for source in graph.input_names(node.name)]
    return known_op(node.op).cost(node.params, ins, types[node.name]).macs


def verify_macs(graph: Graph, dynamic: str = "batch") -> int:
    """Multiply-accumulates of every verification run, in both runtimes."""
    declared = sum(n.meta["cost"].macs for n in layers(graph))
    total = 0
    for run in verification_runs(graph, dynamic):
        macs = declared if run.types is None else sum(_macs(graph, n, run.types) for n in layers(graph))
        total += macs * run.batch * RUNTIMES
    return total


# --- checks -----------------------------------------------------------------------------------------------------------
def check_resources(compiled: Compiled, *, export: bool = True, verify: bool = True, dynamic: str = "batch",
                    limits: Limits | None = None) -> MemoryEstimate:
    """Refuse, before anything is allocated, a build whose memory exceeds ``max_build_bytes`` (E502) or whose
    verification exceeds ``max_verify_macs`` (E503); ``limits`` default to those ``compiled`` was compiled with.

    ``export``: an ONNX export follows the module; ``verify``: onnxruntime is compared with PyTorch after that."""
    limits = limits or compiled.limits
    graph, file = compiled.graph, compiled.doc.file
    with collector_paused():  # many small acyclic objects: the collector's passes would cost most of the time
        need = estimate(graph, export=export, verify=verify, dynamic=dynamic, schedule=compiled.schedule())
        macs = verify_macs(graph, dynamic) if verify else 0
    if need.total > limits.max_build_bytes:
        raise SpecError([_memory_diagnostic(graph, file, need, limits.max_build_bytes, export, verify)])
    if macs > limits.max_verify_macs:
        raise SpecError([_compute_diagnostic(graph, file, macs, limits.max_verify_macs)])
    return need


def _memory_diagnostic(graph: Graph, file: str, need: MemoryEstimate, budget: int, export: bool,
                       verify: bool) -> Diagnostic:
    stage = ("exporting to ONNX and verifying it" if verify else "exporting to ONNX" if export
             else "building the PyTorch module")
    by_weights = need.weight_bytes * need.weight_copies >= need.total - need.weight_bytes * need.weight_copies
    if by_weights:
        big = max(layers(graph), key=lambda n: n.meta["cost"].params + n.meta["cost"].buffers)
        cost = big.meta["cost"]
        where = f"the largest layer is '{big.name}' with {size_text((cost.params + cost.buffers) * FLOAT_BYTES)} " \
                "of weights"
    else:
        big = max(graph.topological(), key=lambda n: _nbytes(n.out_type))  # the first of equals: an input
        where = f"the largest value is '{big.name}' with {size_text(_nbytes(big.out_type) * need.batch)} at batch " \
                f"{need.batch}"
    suggested = -(-need.total * 5 // 4 // 2**20) * 2**20  # a quarter above the need, in whole MiB
    return Diagnostic("E502", f"{stage} needs about {size_text(need.total)} ({need.parts()}), more than the "
                              f"{size_text(budget)} allowed (limit max_build_bytes); {where}. Shrink the model, or "
                              f"raise the limit with --limit max_build_bytes={suggested} if the machine has the memory",
                      file, big.pos, big.name)


def _compute_diagnostic(graph: Graph, file: str, macs: int, budget: int) -> Diagnostic:
    big = max(layers(graph), key=lambda n: n.meta["cost"].macs)
    return Diagnostic("E503", f"verifying the ONNX export runs {macs / 1e9:,.0f} GMACs (every verification sample in "
                              f"PyTorch and onnxruntime), more than the {budget / 1e9:,.0f} GMACs allowed (limit "
                              f"max_verify_macs); the largest layer is '{big.name}' with "
                              f"{big.meta['cost'].macs / 1e9:,.1f} GMACs per sample. Skip verification with "
                              f"--no-verify, or raise the limit with --limit max_verify_macs={macs}",
                      file, big.pos, big.name)


# --- helpers ----------------------------------------------------------------------------------------------------------
def layers(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes() if not n.is_input and "cost" in n.meta]


def _nbytes(t: TensorType | None) -> int:
    return t.nbytes if t is not None else 0


def size_text(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
