"""Checks of an exported ONNX model: structure, ONNX's own shape inference against archc's, and onnxruntime
against the PyTorch module on real inputs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from archc.compiler import Compiled
from archc.errors import ArchcError
from archc.extras import emit_extra
from archc.ir.graph import Graph
from archc.ir.types import TensorType
from archc.passes.input_sizes import other_size
from archc.passes.resources import check_resources

with emit_extra():
    import numpy as np
    import onnx

RTOL = 1e-4
"""Largest accepted difference, relative to the largest magnitude of the PyTorch output."""
ATOL = 1e-6
"""Absolute slack for outputs that are all (nearly) zero."""


class VerificationError(ArchcError):
    """The exported model is malformed or disagrees with PyTorch: a bug in archc's exporter (exit code 3)."""


# --- structure and shapes ---------------------------------------------------------------------------------------------
def check_model(model: onnx.ModelProto, deferred: Collection[str] = (), *, consume: bool = False) -> None:
    """onnx's full checker, then strict shape inference with archc's declared shapes removed, compared against them;
    both on a weightless copy (:func:`archc.emit.onnx_builder.weightless`), which they serialise and parse cheaply.
    ``deferred``: initializers whose data ``model`` does not hold (archc/emit/onnx_file.py); ``consume``: make
    ``model`` itself weightless instead of a copy (the caller has no other use for it)."""
    from archc.emit.onnx_builder import weightless

    model = weightless(model, deferred, in_place=consume)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.shape_inference.InferenceError as exc:
        raise VerificationError(f"ONNX shape inference disagrees with archc: {exc}") from None
    except onnx.checker.ValidationError as exc:
        raise VerificationError(f"the ONNX checker refuses the exported model: {exc}") from None
    problems = shape_mismatches(model)
    if problems:
        raise VerificationError("ONNX shape inference disagrees with archc: " + "; ".join(problems[:5]))


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]


def shape_mismatches(model: onnx.ModelProto) -> list[str]:
    """Where ONNX infers a shape that differs from the one archc declared (value infos and outputs).

    The declared value infos and output shapes are taken out for the inference, in place and restored afterwards
    (copying the model would copy its weights), so ONNX infers every shape from the inputs on its own.
    """
    g = model.graph
    declared = {vi.name: _dims(vi) for vi in [*g.value_info, *g.output]}
    saved_info = [onnx.ValueInfoProto.FromString(vi.SerializeToString()) for vi in g.value_info]
    saved_out = [onnx.ValueInfoProto.FromString(vi.SerializeToString()) for vi in g.output]
    del g.value_info[:]
    for vi in g.output:
        vi.type.tensor_type.ClearField("shape")
    try:
        inferred_model = onnx.shape_inference.infer_shapes(model, strict_mode=True, check_type=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        return [f"strict inference fails: {exc}"]
    finally:
        g.value_info.extend(saved_info)
        del g.output[:]
        g.output.extend(saved_out)
    ig = inferred_model.graph
    inferred = {vi.name: _dims(vi) for vi in [*ig.value_info, *ig.output]}
    outputs = {vi.name for vi in g.output}
    problems = []
    for name, want in declared.items():
        got = inferred.get(name)
        if got is None:
            if name in outputs:
                problems.append(f"{name}: no shape inferred, archc says {want}")
            continue
        if want is None or not _agree(want, got, strict=name in outputs):
            problems.append(f"{name}: ONNX infers {got}, archc says {want}")
    return problems


def _agree(want: list[int | str | None], got: list[int | str | None], *, strict: bool) -> bool:
    """Equal ranks; a known size must be inferred equal (for outputs it must be inferred); a symbol never as a size."""
    if len(want) != len(got):
        return False
    for w, o in zip(want, got, strict=True):
        if isinstance(w, int) and (o != w if isinstance(o, int) or strict else False):
            return False
        if isinstance(w, str) and isinstance(o, int):
            return False
    return True


# --- numbers ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputDiff:
    case: str
    """Which inputs, e.g. ``batch 2, 336x336``."""
    output: str
    max_abs: float
    max_rel: float
    """max |onnx - torch| / max |torch|."""
    ok: bool


@dataclass
class VerifyReport:
    diffs: list[OutputDiff] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.diffs)

    @property
    def max_abs(self) -> float:
        return max((d.max_abs for d in self.diffs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((d.max_rel for d in self.diffs), default=0.0)


INDEX_RANGE = 10
"""Integer inputs that index nothing are drawn from 0..INDEX_RANGE-1."""


def index_ranges(graph: Graph) -> dict[str, int]:
    """For each integer input, how many values it may take: the smallest vocabulary (``num``) of the embeddings it
    reaches through integer-valued layers (a reshape, a slice), else :data:`INDEX_RANGE`."""
    out: dict[str, int] = {}
    for name in graph.inputs:
        t = graph.node(name).out_type
        if t is None or not t.dtype.startswith(("int", "uint")):
            continue
        vocabularies: list[int] = []
        stack, seen = [name], {name}
        while stack:
            for user in graph.users(stack.pop()):
                node = graph.node(user)
                if node.op == "embedding":
                    vocabularies.append(node.params.num)
                elif user not in seen and node.out_type is not None and node.out_type.dtype.startswith(("int", "uint")):
                    seen.add(user)
                    stack.append(user)
        out[name] = min(vocabularies, default=INDEX_RANGE)
    return out


def random_inputs(types: dict[str, TensorType], batch: int, seed: int = 0,
                  ranges: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Inputs for one run; integer inputs drawn from ``0..ranges[name]-1`` (see :func:`index_ranges`)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, t in types.items():
        shape = (batch, *t.shape)
        if t.dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        elif t.dtype.startswith(("int", "uint")):
            out[name] = rng.integers(0, (ranges or {}).get(name, INDEX_RANGE), shape).astype(t.dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32).astype(t.dtype)
    return out


def cases(compiled: Compiled, dynamic: str) -> list[tuple[str, dict[str, TensorType], int]]:
    """(label, input types, batch) to run: batch 1; batch 2 with a dynamic batch; another size with dynamic H x W."""
    g = compiled.graph
    base = {name: g.node(name).out_type for name in g.inputs}
    parts = {p.strip() for p in dynamic.split(",")}
    out = [("batch 1", base, 1)]
    if "batch" in parts:
        out.append(("batch 2", base, 2))
    if "hw" in parts:
        other = other_size(g)
        if other is not None:
            sizes = ", ".join("x".join(map(str, t.spatial)) for t in other.values() if t.spatial)
            out.append((f"batch 2, {sizes}", other, 2))
    return out


def run_torch(module: Any, compiled: Compiled, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    with emit_extra():
        import torch

    with torch.no_grad():
        result = module(*[torch.from_numpy(feeds[name]) for name in compiled.graph.inputs])
    if isinstance(result, dict):
        result = [result[name] for name in compiled.graph.outputs]
    elif not isinstance(result, (list, tuple)):
        result = [result]
    return [r.detach().cpu().numpy() for r in result]


def session(model_bytes: bytes) -> Any:
    with emit_extra():
        import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


COMPARE_CHUNK = 1 << 20
"""Elements compared at a time: the float64 differences of a whole large output (GPT-2's logits are 100M values)
would cost more memory than the model; chunks keep the comparison's own arrays small."""


def compare(case: str, names: Sequence[str], got: Sequence[np.ndarray], want: Sequence[np.ndarray],
            rtol: float = RTOL) -> list[OutputDiff]:
    diffs = []
    for name, o, t in zip(names, got, want, strict=True):
        if o.shape != t.shape:
            diffs.append(OutputDiff(case, name, float("inf"), float("inf"), False))
            continue
        flat_o, flat_t = o.reshape(-1), t.reshape(-1)
        same_special = True
        max_abs = scale = 0.0
        for start in range(0, flat_t.size, COMPARE_CHUNK):
            oc, tc = flat_o[start:start + COMPARE_CHUNK], flat_t[start:start + COMPARE_CHUNK]
            o_finite, finite = np.isfinite(oc), np.isfinite(tc)
            same_special = same_special and bool(np.array_equal(o_finite, finite) and
                                                 np.array_equal(oc[~o_finite], tc[~finite], equal_nan=True))
            if finite.any():
                err = np.abs(oc[finite].astype(np.float64) - tc[finite].astype(np.float64))
                max_abs = max(max_abs, float(err.max()))
                scale = max(scale, float(np.abs(tc[finite]).max()))
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        diffs.append(OutputDiff(case, name, max_abs, rel, same_special and max_abs <= ATOL + rtol * scale))
    return diffs


def verify_model(model_bytes: bytes, compiled: Compiled, module: Any, *, dynamic: str = "batch",
                 rtol: float = RTOL) -> VerifyReport:
    """Run onnxruntime and the PyTorch module (eval mode) on the same random inputs; raise when they disagree.

    Refuses (E502, E503) a verification that would exceed ``max_build_bytes`` or ``max_verify_macs`` before the
    session is created."""
    check_resources(compiled, verify=True, dynamic=dynamic)
    sess = session(model_bytes)
    names = list(compiled.graph.outputs)
    ranges = index_ranges(compiled.graph)
    report = VerifyReport()
    for label, types, batch in cases(compiled, dynamic):
        feeds = random_inputs(types, batch, ranges=ranges)
        report.diffs += compare(label, names, sess.run(names, feeds), run_torch(module, compiled, feeds), rtol)
    if not report.ok:
        bad = [d for d in report.diffs if not d.ok]
        detail = "; ".join(f"{d.output} at {d.case}: max abs {d.max_abs:.3g}, rel {d.max_rel:.3g}" for d in bad[:5])
        raise VerificationError(f"onnxruntime disagrees with PyTorch beyond rtol {rtol:g} ({detail}); nothing written")
    return report
