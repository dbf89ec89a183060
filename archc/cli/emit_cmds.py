"""Commands that emit artifacts: `export torch`, `export onnx`, `draw` and `build`. They import torch/onnx lazily."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from archc.cli.app import LimitOption, SetOption, SpecArg, app, compile_spec, parse_limits, parse_pairs, run_guarded
from archc.errors import SpecError, UsageError

export_app = typer.Typer(help="Export a spec as PyTorch source or ONNX.", no_args_is_help=True)
app.add_typer(export_app, name="export")

Force = Annotated[bool, typer.Option("--force", "-f", help="Replace existing outputs.")]
Depth = Annotated[int | None, typer.Option(help="Collapse scopes nested deeper than N into single nodes.")]
Fold = Annotated[bool | None, typer.Option("--fold/--no-fold", help="Fold repeated blocks (default: when large).")]
Direction = Annotated[str, typer.Option(help="Layout direction: TB or LR.")]
Opset = Annotated[int | None, typer.Option(help="ONNX opset, 18 to 26 (default 21).")]
Dynamic = Annotated[str, typer.Option(help="Dynamic axes: batch, batch,hw or none.")]
WEIGHT_SEED = 0
"""Fresh weights are drawn from this seed, so one spec always gives the same ONNX bytes."""


@contextlib.contextmanager
def fixed_seed() -> Iterator[None]:
    """PyTorch's global generator seeded with :data:`WEIGHT_SEED` inside, and restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        yield


@export_app.command("torch")
def export_torch(spec: SpecArg, output: Annotated[str, typer.Option("-o", "--output", help="Python file.")],
                 force: Force = False, set_: SetOption = None, limit: LimitOption = None) -> None:
    """Write standalone, readable PyTorch source (imports only torch)."""

    def body() -> None:
        from archc.emit.torch_source import torch_source
        from archc.io import write_atomic

        c = compile_spec(spec, set_, limit)
        write_atomic(output, torch_source(c).encode(), force=force)
        print(f"wrote {output}")

    run_guarded(body)


@export_app.command("onnx")
def export_onnx_cmd(
    spec: SpecArg, output: Annotated[str, typer.Option("-o", "--output", help="ONNX file.")],
    weights: Annotated[str | None, typer.Option(help="A PyTorch state_dict file (torch.save) to export.")] = None,
    opset: Opset = None, dynamic: Dynamic = "batch",
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="Fold batch norm into convolutions.")] = True,
    verify: Annotated[bool, typer.Option(help="Check onnxruntime against PyTorch before writing.")] = False,
    force: Force = False, set_: SetOption = None, limit: LimitOption = None,
) -> None:
    """Write an ONNX model emitted straight from the IR (no tracing).

    Without --weights the weights are a fresh initialisation drawn from a fixed seed, so the file is reproducible.
    """

    def body() -> None:
        from archc.emit.onnx_export import write_onnx

        c = compile_spec(spec, set_, limit)
        with fixed_seed():
            result = write_onnx(c, output, force=force, weights_path=weights, opset=opset, dynamic=dynamic,
                                fold_bn=fold, verify=verify)
        if verify and result is not None:
            print(f"verified against PyTorch: {result}")
        print(f"wrote {output}")

    run_guarded(body)


@app.command()
def draw(spec: SpecArg, output: Annotated[str, typer.Option("-o", "--output", help="Diagram file.")],
         fmt: Annotated[str | None, typer.Option("--format", help="svg, png, pdf or dot (default: from suffix).")]
         = None, depth: Depth = None, fold: Fold = None, direction: Direction = "TB", force: Force = False,
         set_: SetOption = None, limit: LimitOption = None) -> None:
    """Draw the network with Graphviz: clusters for groups and stages, colours by op family.

    A spec with errors is still drawn as far as it compiles: the failing layers and their input edges in red, the
    layers after them grey with unknown (?) shapes, the errors listed in the legend. The diagram is written, the
    errors are printed, and the exit code is 1. When nothing can be drawn (a YAML syntax error, a malformed header)
    no file is written.
    """

    def body() -> None:
        from archc.compiler import compile_partial
        from archc.emit.diagram import write_diagram

        result = compile_partial(spec, parse_pairs(set_, "--set"), parse_limits(limit))
        if result.compiled is not None:
            write_diagram(result.compiled, output, fmt=fmt, depth=depth, fold=fold, direction=direction, force=force)
            print(f"wrote {output}")
            return
        if result.graph is None:
            raise SpecError(result.diagnostics)
        from archc.emit.partial import write_partial_diagram

        write_partial_diagram(result.graph, result.diagnostics, output, fmt=fmt, depth=depth, fold=fold,
                              direction=direction, force=force)
        print(f"wrote {output} (partial: the spec has errors)")
        raise SpecError(result.diagnostics)

    run_guarded(body)


BUILD_OUTPUTS = ("summary.txt", "summary.json", "model.py", "model.onnx", "diagram.svg")


@app.command()
def build(spec: SpecArg, outdir: Annotated[str, typer.Option("-o", "--outdir", help="Output directory.")],
          force: Force = False, set_: SetOption = None, limit: LimitOption = None,
          verify: Annotated[bool, typer.Option(help="Check onnxruntime against PyTorch.")] = True) -> None:
    """Compile a spec to summary.txt, summary.json, model.py, model.onnx and diagram.svg in OUTDIR.

    Everything is produced before anything is written, each file atomically; the same spec gives the same bytes
    (model.onnx holds fresh weights drawn from a fixed seed). OUTDIR may not be a symbolic link or a file.
    """

    def body() -> None:
        from archc.io import confined

        targets = {name: confined(outdir, name) for name in BUILD_OUTPUTS}
        existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
        if existing and not force:
            raise UsageError(f"{', '.join(existing)} exist; pass --force to replace them")
        artifacts, report = _build_artifacts(spec, set_, limit, verify)
        _write_all(targets, artifacts, force)
        print("\n".join(report))

    run_guarded(body)


def _build_artifacts(spec: str, sets: list[str] | None, limits: list[str] | None,
                     verify: bool) -> tuple[dict[str, bytes], list[str]]:
    """Everything is produced in memory first: a failure at any step writes nothing. Returns the files' bytes and
    the lines to report (the model's totals and the verification result)."""
    import json

    from archc.cli.progress import Progress

    with Progress(enabled=sys.stderr.isatty()) as progress:
        progress.step("compiling")
        c = compile_spec(spec, sets, limits)
        from archc.emit.summary import summary_json, summary_text

        out: dict[str, bytes] = {
            "summary.txt": summary_text(c).encode(),
            "summary.json": (json.dumps(summary_json(c), indent=1) + "\n").encode(),
        }
        progress.step("generating PyTorch")
        from archc.emit.torch_module import load_source
        from archc.emit.torch_source import default_class_name, torch_source

        source = torch_source(c)
        out["model.py"] = source.encode()
        with fixed_seed():
            module = load_source(source, default_class_name(c.graph.name), c.graph.name)().eval()
        progress.step("emitting ONNX")
        from archc.emit.onnx_export import export_onnx, verify_onnx

        model = export_onnx(c, module.state_dict())
        from archc.emit.summary import totals_lines

        report = totals_lines(c)
        if verify:
            progress.step("verifying ONNX in onnxruntime")
            check = verify_onnx(c, model, module)
            cases = ", ".join(dict.fromkeys(d.case for d in check.diffs))
            report.append(f"ONNX verified against PyTorch in onnxruntime ({cases}): max abs diff {check.max_abs:.2e}, "
                          f"max rel diff {check.max_rel:.2e}")
        out["model.onnx"] = model.SerializeToString()
        progress.step("drawing")
        from archc.emit.diagram import render, to_dot

        out["diagram.svg"] = render(to_dot(c), "svg")
    return out, report


def _write_all(targets: dict[str, Path], artifacts: dict[str, bytes], force: bool) -> None:
    from archc.io import write_atomic

    for name, path in targets.items():
        write_atomic(path, artifacts[name], force=force)
        print(f"wrote {path}")
