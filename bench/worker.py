"""In-process measurements that need torch, run in a process of their own by bench/run.py.

Usage: python bench/worker.py TASKS SPEC [--peer STEM] --repeat N --warmup W --calls C
TASKS is a comma-separated list of construct, forward and onnx; SPEC a spec path; --peer the stem of a spec in
bench/models.PEERS whose torchvision model is measured the same way. Prints one JSON object on its last line:
{"torch_threads": n, "results": {task: {"error": str} | {"figures": [figure, ...]}}}, where a figure is
{"name", "metric", "unit", "samples": [...]} or {"name", "metric", "status", "note"}.
"""

from __future__ import annotations

import argparse
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
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                out[key].append(elapsed)
    return out


def sample(name: str, metric: str, seconds: list[float], unit: str = "s") -> Figure:
    scale = {"s": 1.0, "ms": 1e3}[unit]
    return {"name": name, "metric": metric, "unit": unit, "samples": [s * scale for s in seconds]}


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

    figures = [
        sample("archc: compile_file + build_module", "construct", timed(lambda: build_module(compile_file(spec)),
                                                                        repeat, warmup)),
    ]
    compiled = compile_file(spec)
    figures.append(sample("archc: build_module (compiled spec)", "construct",
                          timed(lambda: build_module(compiled), repeat, warmup)))
    if peer:
        from bench.models import torchvision_model

        figures.append(sample("torchvision constructor", "construct",
                              timed(lambda: torchvision_model(peer), repeat, warmup)))
    return figures


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
    import onnxruntime as ort
    import torch

    from archc.compiler import compile_file
    from archc.emit.onnx_export import export_onnx
    from archc.emit.torch_module import build_module

    compiled = compile_file(spec)
    state = dict(build_module(compiled).state_dict())
    x = example_input(compiled, 1)
    figures = [sample("archc: compile_file + export_onnx + serialise", "ONNX export",
                      timed(lambda: export_onnx(compile_file(spec), state).SerializeToString(), repeat, warmup))]
    protos = {"archc ONNX": export_onnx(compiled, state).SerializeToString()}

    if peer:
        from bench.models import torchvision_model

        model = torchvision_model(peer).eval()
        try:
            import onnxscript  # noqa: F401 - torch.onnx's dynamo exporter needs it
        except ImportError:
            figures.append(missing("torch.onnx.export(dynamo=True)", "ONNX export", "unavailable",
                                   "onnxscript is not installed (run with `.ci/env.sh --bench`)"))
        else:
            def dynamo_export() -> bytes:
                return torch.onnx.export(model, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()

            figures.append(sample("torch.onnx.export(dynamo=True) + serialise", "ONNX export",
                                  timed(dynamo_export, repeat, warmup)))
            protos["torch.onnx dynamo ONNX"] = dynamo_export()

    feed = x.numpy()
    fns = {}
    for label, data in protos.items():
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        fns[label] = lambda s=session, n=name: s.run(None, {n: feed})
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
