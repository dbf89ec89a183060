"""The ONNX emitter: the graph IR straight to an ``onnx.ModelProto`` (nothing is traced).

Every layer's ``Op.onnx`` emits its nodes through an :class:`OnnxBuilder`, with attributes taken from the IR; the
inferred per-sample shapes become declared value infos. Weights come from a state_dict keyed like the PyTorch module
(``layer1.0.conv1.weight``). The layers are those of the graph's one schedule (archc/passes/schedule.py: a layer no
output needs has no node), and a norm folds into the layer before it where archc/passes/fold.py says so.
Writing a checked, verified file is :func:`archc.build.write_onnx`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import numpy as np
import onnx
from onnx import helper

from archc import __version__
from archc.compiler import Compiled
from archc.emit.onnx_builder import Dims, DimSpec, OnnxBuilder
from archc.errors import UsageError
from archc.ir.graph import Node
from archc.ops.registry import known_op
from archc.ops.tensor_state import batch_free, unit_batch_layers
from archc.passes.fold import fold_pairs
from archc.passes.input_sizes import dynamic_dims

# The ONNX contract, stated once. archc writes the default domain at opset DEFAULT_OPSET, or any opset from MIN_OPSET
# to MAX_OPSET on request (each one is tested against onnxruntime), with the lowest IR version that opset needs.
# That is at most IR 10 for the default and IR 13 for opset 26: onnxruntime 1.31 loads IR <= 13 and opset <= 26, while
# onnx 1.23's helper.make_model would stamp IR 14, which onnxruntime refuses. Opset 18 is the floor because
# ReduceMean takes its axes as an input from 18 on; 21 is the default because most runtimes in use read it.
DEFAULT_OPSET = 21
MIN_OPSET = 18
MAX_OPSET = 26
MAX_IR_VERSION = 13

DYNAMIC_MODES = ("batch", "batch,hw", "none")
BATCH_DIM = "batch"
"""The symbolic name of the batch dimension in declared shapes."""

_SPATIAL_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_STATE_ONLY = ("num_batches_tracked",)
"""State_dict entries that play no part at inference."""


def ir_version_for(opset: int) -> int:
    ir = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    return min(ir, MAX_IR_VERSION)


def parse_dynamic(dynamic: str) -> tuple[bool, bool]:
    """``batch`` | ``batch,hw`` | ``none`` -> (dynamic batch, dynamic height and width)."""
    parts = {p.strip() for p in dynamic.split(",") if p.strip()}
    if parts == {"none"}:
        return False, False
    if parts and parts <= {"batch", "hw"} and "batch" in parts:
        return True, "hw" in parts
    raise UsageError(f"--dynamic {dynamic!r}: expected one of {', '.join(DYNAMIC_MODES)}")


def check_opset(opset: int | None) -> int:
    """The opset to write: ``opset``, or the default for None."""
    if opset is None:
        return DEFAULT_OPSET
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"--opset {opset}: archc writes opsets {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})")
    return opset


# --- weights ----------------------------------------------------------------------------------------------------------
class LayerWeights(Mapping[str, np.ndarray]):
    """One layer's state_dict entries by local name (``weight``) in the layer's dtype; records the ones used."""

    def __init__(self, path: str, items: dict[str, np.ndarray], dtype: str, used: set[str]) -> None:
        self.path = path
        self._items = items
        self._dtype = np.dtype(dtype) if dtype in ("float16", "float32", "float64") else None
        self._used = used

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._items:
            raise UsageError(f"the weights have no {self.path}.{key!s}, which layer {self.path} needs")
        self._used.add(f"{self.path}.{key}" if key else self.path)  # "": the layer's own tensor
        value = self._items[key]
        if self._dtype is not None and value.dtype.kind == "f":
            value = value.astype(self._dtype, copy=False)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def numpy_state(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state_dict of torch tensors or arrays as numpy arrays (tensors are only touched through their methods)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[str(key)] = np.asarray(value)
    return out


def default_state(compiled: Compiled) -> dict[str, Any]:
    """The freshly initialised weights of the PyTorch module archc builds for the spec."""
    from archc.emit.torch_module import build_module

    return dict(build_module(compiled).state_dict())


def folded_weights(layer: Node, lw: LayerWeights, norm: Node, nw: LayerWeights) -> dict[str, np.ndarray]:
    """A layer's weights with the norm after it folded in, computed in float64: w * g / sqrt(v + eps) along the
    layer's output channels (its op's ``norm_fold_axis`` within each group), (b - m) * s + beta."""
    w = lw["weight"]
    axis = known_op(layer.op).norm_fold_axis
    assert axis is not None, f"{layer.op} takes no folded norm"  # fold_pairs pairs only ops that do
    groups = getattr(layer.params, "groups", 1) if axis else 1  # axis 0 holds every output channel already
    cout = w.shape[axis] * groups
    mean = nw["running_mean"].astype(np.float64)
    var = nw["running_var"].astype(np.float64)
    gamma = nw["weight"].astype(np.float64) if norm.params.affine else np.ones(cout)
    beta = nw["bias"].astype(np.float64) if norm.params.affine else np.zeros(cout)
    bias = lw["bias"].astype(np.float64) if layer.params.bias else np.zeros(cout)
    scale = gamma / np.sqrt(var + norm.params.eps)
    # [groups, ..., out / groups at axis + 1, ...]: output channel o is group o // (out / groups)
    grouped = w.astype(np.float64).reshape(groups, w.shape[0] // groups, *w.shape[1:])
    shape = [groups] + [1] * (w.ndim)
    shape[axis + 1] = w.shape[axis]
    fused_w = (grouped * scale.reshape(shape)).reshape(w.shape)
    return {"weight": fused_w.astype(w.dtype), "bias": ((bias - mean) * scale + beta).astype(w.dtype)}


# --- export -----------------------------------------------------------------------------------------------------------
def export_onnx(compiled: Compiled, state_dict: Mapping[str, Any] | None = None, *,
                opset: int | None = DEFAULT_OPSET, dynamic: str = "batch", fold_bn: bool = True,
                release: bool = False,
                builder: Callable[[onnx.ModelProto, int], OnnxBuilder] = OnnxBuilder) -> onnx.ModelProto:
    """The compiled spec as an ONNX model; weights from ``state_dict`` or, when None, a fresh PyTorch module's.

    ``dynamic``: ``batch`` (a symbolic batch), ``batch,hw`` (symbolic height and width too) or ``none``.
    ``release``: empty ``state_dict`` (a mutable mapping) as the export begins and drop each layer's weights once they
    are in the model, so that a caller holding no other reference to them (no module) has them in memory once, not
    twice. The weights of a fresh module (``state_dict=None``) are always released so.
    ``builder``: makes the :class:`OnnxBuilder` to emit with (archc/emit/onnx_file.py's keeps large weights aside).
    """
    opset = check_opset(opset)
    dyn_batch, dyn_hw = parse_dynamic(dynamic)
    graph = compiled.graph
    dims = dynamic_dims(graph) if dyn_hw else {n.name: tuple(n.out_type.shape) for n in graph.nodes()}
    if release and not isinstance(state_dict, MutableMapping):
        raise TypeError("release=True empties the state_dict: pass a mutable mapping")
    source = state_dict if state_dict is not None else default_state(compiled)
    weights = numpy_state(source)
    if release or state_dict is None:
        source.clear()  # type: ignore[attr-defined]  # checked above; the arrays now hold the only references
    del source
    model = onnx.ModelProto()
    model.ir_version = ir_version_for(opset)
    model.producer_name = "archc"
    model.producer_version = __version__
    model.opset_import.add().version = opset
    model.graph.name = graph.name
    model.graph.doc_string = graph.doc
    export = _Export(compiled, weights, dims, BATCH_DIM if dyn_batch else 1, fold_bn, builder(model, opset))
    del weights  # the export holds them by layer and drops each layer's once emitted
    export.run()
    return model


class _Export:
    def __init__(self, compiled: Compiled, weights: dict[str, np.ndarray], dims: dict[str, Dims], batch: DimSpec,
                 fold_bn: bool, b: OnnxBuilder) -> None:
        graph = compiled.graph
        self.graph = graph
        self.schedule = compiled.schedule()
        self.in_types = {step.node.name: step.in_types for step in self.schedule.steps}
        self.dims = dims
        self.batch = batch
        self.folds = fold_pairs(self.schedule, set(graph.outputs.values())) if fold_bn else {}
        self.b = b
        self.by_layer: dict[str, dict[str, np.ndarray]] = {}
        for key, value in weights.items():
            if key in graph:  # a `parameter` or `buffer` layer: its state_dict key is its path
                self.by_layer.setdefault(key, {})[""] = value
                continue
            path, _, local = key.rpartition(".")
            while path not in graph and "." in path:  # a sub-module's weight: gated_conv's t.conv.weight is t's
                path, _, head = path.rpartition(".")
                local = f"{head}.{local}"
            self.by_layer.setdefault(path, {})[local] = value
        self.keys = set(weights)
        self.used: set[str] = set()
        self.unit_batch = unit_batch_layers(graph)

    def layer_weights(self, node: Node) -> LayerWeights:
        return LayerWeights(node.name, self.by_layer.get(node.name, {}), node.out_type.dtype, self.used)

    def declared(self, name: str) -> list[DimSpec]:
        """[batch, *dims] with unknown dims left open; a model input's spatial dims get symbolic names."""
        node = self.graph.node(name)
        dims: list[DimSpec] = list(self.dims[name])
        if batch_free(node.op, node.params):
            return dims
        if name in self.unit_batch:
            return [1, *dims]
        if node.is_input and None in dims:
            names = _SPATIAL_NAMES.get(len(dims) - 1, tuple(f"dim{i}" for i in range(1, len(dims))))
            prefix = f"{name}_" if len(self.graph.inputs) > 1 else ""
            dims = [d if d is not None or i == 0 else prefix + names[i - 1] for i, d in enumerate(dims)]
        return [self.batch, *dims]

    def run(self) -> None:
        g, b = self.graph, self.b
        final: dict[str, str] = {}
        """Node -> the name its result should carry: its first model output's name, else its path."""
        for name in g.inputs:
            b.reserve(name)
            b.add_input(name, g.node(name).out_type.dtype, self.declared(name))
        for out, src in g.outputs.items():
            b.reserve(out)
            final.setdefault(src, out)
        folded = {bn: conv for conv, bn in self.folds.items()}
        value: dict[str, str] = {name: name for name in g.inputs}
        for name in self.schedule.dead:  # not computed (the liveness policy): their weights go unread
            self.used.update(f"{name}.{k}" if k else name for k in self.by_layer.pop(name, {}))
        for step in self.schedule.steps:
            node = step.node
            if node.name in folded:
                value[node.name] = value[folded[node.name]]
                continue
            result = self.folds.get(node.name, node.name)
            target = final.get(result) or b.fresh(result)
            produced = self.emit(node, [value[s] for s in step.sources], target)
            value[node.name] = produced
            if produced == target and target not in g.outputs:
                b.add_value_info(target, node.out_type.dtype, self.declared(node.name))
        for out, src in g.outputs.items():
            if value[src] != out:
                b.identity(value[src], out, f"{out}/Identity")
            b.add_output(out, g.node(src).out_type.dtype, self.declared(src))
        unused = sorted(k for k in self.keys - self.used if k.rpartition(".")[2] not in _STATE_ONLY)
        if unused:
            shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
            raise UsageError(f"the weights have entries no layer uses: {shown}")

    def emit(self, node: Node, inputs: list[str], target: str) -> str:
        """Emit one layer; returns the name of its result (``target``, or an input it passes through)."""
        g = self.graph
        op = known_op(node.op)
        sources = g.input_names(node.name)
        params = node.params
        weights: Mapping[str, np.ndarray] = self.layer_weights(node)
        if node.name in self.folds:
            bn = g.node(self.folds[node.name])
            weights = folded_weights(node, self.layer_weights(node), bn, self.layer_weights(bn))
            params = params.model_copy(update={"bias": True})
            self.used.update(f"{bn.name}.{k}" for k in self.by_layer.get(bn.name, {}))
        self.b.begin_layer(node.name, [self.dims[s] for s in sources], node.out_type, self.dims[node.name],
                           f"{node.pos.file or g.file}:{node.pos.line}:{node.pos.col}")
        out = op.onnx(self.b, params, inputs, self.in_types[node.name], node.out_type, weights)
        # the weights are in the model now: a released state_dict's arrays can go
        self.by_layer.pop(node.name, None)
        if node.name in self.folds:
            self.by_layer.pop(self.folds[node.name], None)
        return self.b.end_layer(out, target)


# --- weights files and verification -----------------------------------------------------------------------------------
def load_weights(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A PyTorch state_dict file (``torch.save(model.state_dict(), ...)``), loaded with ``weights_only=True``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"--weights {path}: no such file") from None
    except Exception as exc:  # unpickling raises many types; all mean "not a state_dict file"
        raise UsageError(f"--weights {path}: not a loadable state_dict file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and hasattr(v, "detach") for k, v in state.items()):
        raise UsageError(f"--weights {path}: expected a state_dict (a mapping of names to tensors), "
                         f"found {type(state).__name__}")
    return dict(state)


def verify_onnx(compiled: Compiled, model: onnx.ModelProto, module: Any, *, dynamic: str = "batch") -> Any:
    """Check an exported model (checker, shapes) and compare it with ``module`` in onnxruntime; returns the report.

    Raises :class:`archc.emit.onnx_verify.VerificationError` when anything disagrees.
    """
    from archc.emit.onnx_verify import check_model, verify_model

    check_model(model)
    return verify_model(model.SerializeToString(), compiled, module, dynamic=dynamic)
