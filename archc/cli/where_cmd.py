"""`archc where FILE.onnx NODE`: the spec line an ONNX node was emitted from (onnx only, no torch)."""

from __future__ import annotations

from typing import Annotated

import typer

from archc.cli.app import app, run_guarded


@app.command("where")
def where_cmd(model: Annotated[str, typer.Argument(metavar="FILE.onnx", help="An ONNX file written by archc.")],
              node: Annotated[str, typer.Argument(metavar="NODE", help="A node name, layer path or value name.")]
              ) -> None:
    """Print `file:line:col: layer.path` for an ONNX node, e.g. one an onnxruntime error names."""

    def body() -> None:
        from archc.emit.onnx_where import where

        print(where(model, node))

    run_guarded(body)
