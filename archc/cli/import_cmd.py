"""`archc import FORMAT SOURCE -o spec.yaml`: a model in another format as a short spec (archc/importers/)."""

from __future__ import annotations

from typing import Annotated

import typer

from archc.cli.app import app, run_guarded
from archc.errors import UsageError


@app.command("import")
def import_cmd(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="onnx, torch, darknet, caffe or ultralytics.")],
    source: Annotated[str, typer.Argument(metavar="SOURCE",
                                          help="The model file, or for torch package.module:callable.")],
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE", help="Spec YAML file.")],
    weights_out: Annotated[str | None, typer.Option("--weights-out", metavar="FILE",
                                                    help="Also write the weights as a state_dict (onnx, torch).")
                           ] = None,
    scale: Annotated[str | None, typer.Option("--scale", metavar="NAME",
                                              help="Ultralytics model scale (n, s, m, l, x).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace existing outputs.")] = False,
) -> None:
    """Turn an existing model into a spec with blocks, stages and residuals recovered; it passes `archc check`."""

    def body() -> None:
        from archc.importers.run import FORMATS, TEXT_FORMATS, import_model, state_dict_bytes
        from archc.io import check_target, write_atomic

        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
        if scale is not None and fmt != "ultralytics":
            raise UsageError("--scale applies to ultralytics models only")
        if weights_out is not None and fmt in TEXT_FORMATS:
            raise UsageError(f"--weights-out: a {fmt} model file carries no weights")
        check_target(output, force=force)
        if weights_out is not None:
            check_target(weights_out, force=force)
        imported = import_model(fmt, source, **({"scale": scale} if scale is not None else {}))
        if weights_out is not None and imported.state is not None:
            write_atomic(weights_out, state_dict_bytes(imported.state), force=force)
            print(f"wrote {weights_out}")
        write_atomic(output, imported.text.encode(), force=force)
        total = imported.spec.compiled.costs.total
        print(f"wrote {output} ({len(imported.text.splitlines())} lines, {total.params:,} params, "
              f"{total.macs / 1e9:.2f} GMACs)")

    run_guarded(body)
