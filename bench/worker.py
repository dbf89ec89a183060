"""In-process measurements that need torch, run in a process of their own by bench/run.py.

Usage: python bench/worker.py TASKS SPEC [--peer STEM] --repeat N --warmup W --calls C
TASKS is a comma-separated list of construct, forward and onnx; SPEC a spec path; --peer the stem of a spec in
bench/models.PEERS whose torchvision model is measured the same way. Prints one JSON object on its last line:
{"torch_threads": n, "results": {task: {"error": str} | {"figures": [figure, ...]}}}, where a figure is
{"name", "metric", "unit", "samples": [...]} or {"name", "metric", "status", "note"}.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Figure = dict[str, Any]


def timed(fn: Callable[[], Any], repeat: int, warmup: int) -> list[float]:
    """Seconds per call: ``warmup`` discarded calls, then ``repeat`` measured ones."""
    return interleaved({"": fn}, repeat, warmup)[""]


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int) -> dict[str, list[float]]:
    """Like :func:`timed` for several contenders, alternating calls so that load changes hit all of them alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeat):
        for key, fn in fns.items():
            # a full collection first, untimed: with torch loaded one takes ~0.2 s, and whichever call happens to
            # trigger it would be charged for garbage the calls before it left
            gc.collect()
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                out[key].append(elapsed)
    return out


def sample(name: str, metric: str, seconds: list[float], unit: str = "s") -> Figure:
    scale = {"s": 1.0, "ms": 1e3}[unit]
    return {"name": name, "metric": metric, "unit": unit, "samples": [s * scale for s in seconds]}


def value(name: str, metric: str, amount: float, unit: str) -> Figure:
    """A figure that is counted, not timed (node counts, file sizes)."""
    return {"name": name, "metric": metric, "unit": unit, "value": amount}


def missing(name: str, metric: str, status: str, note: str) -> Figure:
    return {"name": name, "metric": metric, "status": status, "note": note}


def example_input(compiled: Any, batch: int) -> Any:
    import torch

    graph = compiled.graph
    node = graph.node(graph.inputs[0])
    return torch.randn(batch, *node.out_type.shape)


def construct(spec: str, peer: str | None, repeat: int, warmup: int, calls: int) -> list[Figure]:
    from archc.compiler import compile_file
    from archc.emit.torch_module import build_module

    compiled = compile_file(spec)
    generated = _import_generated_class(compiled)
    contenders: dict[str, Callable[[], Any]] = {
        "archc: compile_file + build_module": lambda: build_module(compile_file(spec)),
        "archc: build_module (compiled spec)": lambda: build_module(compiled),
        "archc: generated class (model.py imported)": generated,
    }
    if peer:
        from bench.models import torchvision_model

        contenders["torchvision constructor"] = lambda: torchvision_model(peer)
    secs = interleaved(contenders, repeat, warmup)
    return [sample(label, "construct", secs[label]) for label in contenders]


def _import_generated_class(compiled: Any) -> Callable[[], Any]:
    """The class in the source `archc export torch` writes, imported as a user would import it."""
    import importlib.util
    import tempfile

    from archc.emit.torch_module import write_torch_source
    from archc.emit.torch_source import default_class_name

    with tempfile.TemporaryDirectory(prefix="archc-bench-") as tmp:  # the class outlives the file it came from
        path = Path(tmp) / "generated_model.py"
        write_torch_source(compiled, path)
        module_spec = importlib.util.spec_from_file_location("generated_model", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    return getattr(module, default_class_name(compiled.graph.name))


def forward(spec: str, peer: str | None, repeat: int, warmup: int, calls: int) -> list[Figure]:
    import torch

    from archc.compiler import compile_file
    from archc.emit.torch_module import build_module

    compiled = compile_file(spec)
    models = {"archc module": build_module(compiled).eval()}
    if peer:
        from bench.models import torchvision_model

        models["torchvision model"] = torchvision_model(peer).eval()
    figures = []
    for batch in (1, 8):
        x = example_input(compiled, batch)
        with torch.inference_mode():
            fns = {label: (lambda m=model, x=x: m(x)) for label, model in models.items()}
            secs = interleaved(fns, calls, max(warmup, 1))
        figures += [sample(label, f"forward batch {batch}", secs[label], "ms") for label in models]
    return figures


def onnx_task(spec: str, peer: str | None, repeat: int, warmup: int, calls: int) -> list[Figure]:
    import onnx
    import onnxruntime as ort
    import torch

    from archc.compiler import compile_file
    from archc.emit.onnx_export import export_onnx
    from archc.emit.torch_module import build_module

    compiled = compile_file(spec)
    model = build_module(compiled).eval()  # one module: archc exports its weights, dynamo traces it
    state = dict(model.state_dict())
    x = example_input(compiled, 1)
    contenders: dict[str, Callable[[], bytes]] = {
        "archc: compile_file + export_onnx + serialise": lambda: export_onnx(compile_file(spec),
                                                                             state).SerializeToString(),
    }
    labels = {"archc: compile_file + export_onnx + serialise": "archc ONNX"}
    figures: list[Figure] = []
    try:
        import onnxscript  # noqa: F401 - torch.onnx's dynamo exporter needs it
    except ImportError:
        figures.append(missing("torch.onnx.export(dynamo=True)", "ONNX export", "unavailable",
                               "onnxscript is not installed (run with `.ci/env.sh --bench`)"))
    else:
        def dynamo_export() -> bytes:
            return torch.onnx.export(model, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()

        contenders["torch.onnx.export(dynamo=True) + serialise"] = dynamo_export
        labels["torch.onnx.export(dynamo=True) + serialise"] = "torch.onnx dynamo ONNX"
    protos: dict[str, bytes] = {}

    def keeping(label: str, fn: Callable[[], bytes]) -> Callable[[], None]:
        def run() -> None:
            protos[labels[label]] = fn()
        return run

    secs = interleaved({label: keeping(label, fn) for label, fn in contenders.items()}, repeat, warmup)
    figures += [sample(label, "ONNX export", secs[label]) for label in contenders]

    for label, data in protos.items():
        counted = onnx.load_from_string(data)
        figures.append(value(label, "ONNX nodes", len(counted.graph.node), "nodes"))
        figures.append(value(label, "ONNX file size", len(data) / 2**20, "MiB"))

    feed = x.numpy()
    fns = {}
    for label, data in protos.items():
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        fns[label] = lambda s=session, n=name: s.run(None, {n: feed})
    with torch.inference_mode():
        out = model(x)
        expected = (out[0] if isinstance(out, tuple) else out).numpy()  # the first output, as fn()[0] below
    for label, fn in fns.items():  # both files must compute the module they were made from
        got = fn()[0]
        figures.append(value(label, "max abs difference from PyTorch", float(abs(got - expected).max()), ""))
    secs = interleaved(fns, calls, max(warmup, 1))
    figures += [sample(label, "onnxruntime batch 1", secs[label], "ms") for label in fns]
    return figures


TASKS = {"construct": construct, "forward": forward, "onnx": onnx_task}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tasks", help="comma-separated: " + ", ".join(TASKS))
    ap.add_argument("spec")
    ap.add_argument("--peer", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--calls", type=int, default=20, help="measured calls for per-call latencies")
    args = ap.parse_args()
    import torch

    results: dict[str, Any] = {}
    for task in args.tasks.split(","):
        torch.manual_seed(0)
        try:
            results[task] = {"figures": TASKS[task](args.spec, args.peer, args.repeat, args.warmup, args.calls)}
        except Exception as exc:  # one failing task is reported, the others still run
            results[task] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps({"results": results, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
