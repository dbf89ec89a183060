"""Commands that emit artifacts: `export torch`, `export onnx`, `draw` and `build`. They import torch/onnx lazily."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from archc.cli.app import (
    LimitOption,
    SetOption,
    SpecArg,
    app,
    compile_spec,
    parse_limits,
    parse_pairs,
    print_warnings,
    run_guarded,
)
from archc.cli.help_pages import HelpTyper
from archc.errors import SpecError

export_app = HelpTyper(help="Export a spec as PyTorch source or ONNX.", no_args_is_help=True)
app.add_typer(export_app, name="export")

Force = Annotated[bool, typer.Option("--force", "-f", help="Replace existing outputs.")]
Depth = Annotated[int | None, typer.Option(metavar="N", help="Collapse scopes nested deeper than N into single nodes.")]
Fold = Annotated[bool | None, typer.Option("--fold/--no-fold", help="Fold repeated blocks (default: when large).")]
Direction = Annotated[str, typer.Option(metavar="TB|LR", help="Layout direction: top to bottom or left to right.")]
Opset = Annotated[int | None, typer.Option(metavar="N", help="ONNX opset, 18 to 26 (default 21).")]
Dynamic = Annotated[str, typer.Option(metavar="AXES", help="Dynamic axes: batch, batch,hw or none.")]
Title = Annotated[bool, typer.Option("--title/--no-title", help="Draw the title (name, doc, inputs, totals).")]
Legend = Annotated[bool, typer.Option("--legend/--no-legend", help="Draw the legend.")]
Palette = Annotated[str, typer.Option(metavar="NAME", help="Colours: default, print (grayscale) or colorblind.")]
Font = Annotated[str | None, typer.Option(metavar="NAME", help="Font family (default Helvetica).")]
FontSize = Annotated[float, typer.Option(metavar="PT", help="Font size of layer names (default 10).")]
Insets = Annotated[bool, typer.Option("--insets/--no-insets", help="Draw each folded block's body once, beside.")]
Style = Annotated[str, typer.Option(metavar="STYLE", help="graph, or blocks (feature maps as boxes sized by shape).")]


@export_app.command("torch")
def export_torch(spec: SpecArg,
                 output: Annotated[str, typer.Option("-o", "--output", metavar="FILE", help="Python file.")],
                 force: Force = False, set_: SetOption = None, limit: LimitOption = None) -> None:
    """Write standalone, readable PyTorch source (imports only torch)."""

    def body() -> None:
        from archc.emit.torch_source import torch_source
        from archc.io import check_target, write_atomic

        check_target(output, force=force)  # refused at once, not after compiling
        c = compile_spec(spec, set_, limit)
        write_atomic(output, torch_source(c).encode(), force=force)
        print(f"wrote {output}")

    run_guarded(body)


@export_app.command("onnx")
def export_onnx_cmd(
    spec: SpecArg, output: Annotated[str, typer.Option("-o", "--output", metavar="FILE", help="ONNX file.")],
    weights: Annotated[str | None, typer.Option(metavar="FILE",
                                                help="A PyTorch state_dict file (torch.save) to export.")] = None,
    opset: Opset = None, dynamic: Dynamic = "batch",
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="Fold batch norm into convolutions.")] = True,
    verify: Annotated[bool, typer.Option(help="Check onnxruntime against PyTorch before writing.")] = False,
    force: Force = False, set_: SetOption = None, limit: LimitOption = None,
) -> None:
    """Write an ONNX model emitted straight from the IR (no tracing).

    Without --weights the weights are a fresh initialisation drawn from a fixed seed, so the file is reproducible.
    """

    def body() -> None:
        from archc.build import write_onnx
        from archc.io import check_target

        check_target(output, force=force)
        c = compile_spec(spec, set_, limit)
        result = write_onnx(c, output, force=force, weights_path=weights, opset=opset, dynamic=dynamic, fold_bn=fold,
                            verify=verify)
        if result.verify is not None:
            print(f"verified against PyTorch: {result.describe(output)}")
        print(f"wrote {output}")

    run_guarded(body)


@app.command()
def draw(spec: SpecArg, output: Annotated[str, typer.Option("-o", "--output", metavar="FILE", help="Diagram file.")],
         fmt: Annotated[str | None, typer.Option("--format", metavar="FORMAT",
                                                 help="svg, png, pdf, tex, dot or html (default: from suffix).")]
         = None, depth: Depth = None, fold: Fold = None, direction: Direction = "TB", force: Force = False,
         set_: SetOption = None, limit: LimitOption = None, title: Title = True, legend: Legend = True,
         palette: Palette = "default", font: Font = None, font_size: FontSize = 10.0, insets: Insets = True,
         style: Style = "graph") -> None:
    """Draw the network with Graphviz: clusters for groups and stages, colours by op family.

    A spec with errors is still drawn as far as it compiles: the failing layers and their input edges in red, the
    layers after them grey with unknown (?) shapes, the errors listed in the legend. The diagram is written, the
    errors are printed, and the exit code is 1. When nothing can be drawn (a YAML syntax error, a malformed header)
    no file is written.

    Graphviz's layout time grows quickly with size, so a drawing is kept within a layout budget: beyond it a default
    drawing collapses scopes by depth (then runs of top-level layers) and says so; an explicit --no-fold or --depth
    beyond it is refused with the depth that fits. A .dot output is not limited.

    An .html output (or --format html) is an interactive page in one file that needs no network: scopes fold and
    unfold on click, hovering a layer shows its numbers, a search box finds a layer. It is written only for a spec
    that compiles.

    A .tex output (or --format tex) is TikZ from the same layout, a document pdflatex compiles as it is. Folded blocks
    are drawn once as insets beside the main path; --style blocks draws feature maps as boxes sized by their shape
    (.svg or .tex). docs/figures.md shows each kind.
    """

    def body() -> None:
        from archc.compiler import compile_partial
        from archc.emit.diagram import FigureOptions, write_diagram
        from archc.emit.diagram.html import wants_viewer, write_viewer
        from archc.io import check_target

        options = FigureOptions(title=title, legend=legend, palette=palette, font_size=font_size, insets=insets,
                                style=style, **({"font": font} if font is not None else {}))
        check_target(output, force=force)
        result = compile_partial(spec, parse_pairs(set_, "--set"), parse_limits(limit))
        if wants_viewer(output, fmt):  # the interactive page shows costs: it needs a spec that compiles
            if result.compiled is None:
                raise SpecError(result.diagnostics)
            write_viewer(result.compiled, output, depth=depth, fold=fold, direction=direction, force=force)
            print(f"wrote {output}")
            return
        if result.compiled is not None:
            write_diagram(result.compiled, output, fmt=fmt, depth=depth, fold=fold, direction=direction, force=force,
                          options=options)
            print(f"wrote {output}")
            return
        if result.graph is None:
            raise SpecError(result.diagnostics)
        from archc.emit.diagram import write_partial_diagram

        write_partial_diagram(result.graph, result.diagnostics, output, fmt=fmt, depth=depth, fold=fold,
                              direction=direction, force=force, options=options)
        print(f"wrote {output} (partial: the spec has errors)")
        raise SpecError(result.diagnostics)

    run_guarded(body)


@app.command()
def build(spec: SpecArg,
          outdir: Annotated[str, typer.Option("-o", "--outdir", metavar="DIR", help="Output directory.")],
          force: Force = False, set_: SetOption = None, limit: LimitOption = None,
          verify: Annotated[bool, typer.Option(help="Check onnxruntime against PyTorch.")] = True) -> None:
    """Compile a spec to summary.txt, summary.json, model.py, model.onnx, diagram.svg and manifest.json in OUTDIR.

    Everything is produced before anything is written, and the set replaces OUTDIR as a unit: an interruption leaves
    the old build or the new one, never a mix. OUTDIR may hold only an earlier build (replaced with --force); a
    directory holding anything else, a symbolic link or a file is refused. The same spec gives the same bytes
    (model.onnx holds fresh weights drawn from a fixed seed).
    """

    def body() -> None:
        from archc.build import build_artifacts, check_build_target, write_build
        from archc.cli.progress import Progress

        check_build_target(outdir, force=force)
        with Progress(enabled=sys.stderr.isatty()) as progress:
            artifacts = build_artifacts(spec, params=parse_pairs(set_, "--set"), limits=parse_limits(limit),
                                        verify=verify, step=progress.step)
        print_warnings(artifacts.warnings)
        for path in write_build(outdir, artifacts, force=force):
            print(f"wrote {path}")
        print("\n".join(artifacts.report))

    run_guarded(body)
