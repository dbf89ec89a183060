"""`archc mem SPEC`: the static memory plan of training or inference (no torch)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from archc.cli.app import LimitOption, SetOption, SpecArg, app, compile_spec, run_guarded
from archc.errors import UsageError


@app.command("mem")
def mem_cmd(spec: SpecArg,
            batch: Annotated[int, typer.Option(metavar="N", help="Batch size.")] = 1,
            dtype: Annotated[str, typer.Option(metavar="fp32|fp16|bf16|int8",
                                               help="Element type of weights and activations.")] = "fp32",
            train: Annotated[bool, typer.Option("--train", help="Plan a training step (default: inference).")] = False,
            optimizer: Annotated[str | None, typer.Option(
                metavar="sgd|momentum|adam|adamw", help="Optimizer whose state to count (with --train; default sgd).")
            ] = None,
            fit: Annotated[str | None, typer.Option(
                metavar="SIZE", help="Also print the largest batch that fits SIZE (16GiB, 512MiB, 8GB, bytes).")
            ] = None,
            top: Annotated[int, typer.Option(metavar="N", help="Layers listed in the text report.")] = 10,
            as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (bytes).")] = False,
            set_: SetOption = None, limit: LimitOption = None) -> None:
    """Memory of training (--train) or inference: weights, gradients, optimizer state, activations; what batch fits."""

    def body() -> None:
        from archc.memory.dtypes import parse_size
        from archc.memory.plan import check_options, plan_memory
        from archc.memory.report import plan_json_text, plan_text

        if optimizer is not None and not train:
            raise UsageError("--optimizer applies to training: add --train")
        if top < 0:
            raise UsageError(f"--top: expected 0 or more; got {top}")
        chosen = (optimizer or "sgd") if train else None
        check_options(batch, dtype, chosen)
        budget = parse_size(fit) if fit is not None else None
        plan = plan_memory(compile_spec(spec, set_, limit), batch=batch, dtype=dtype, optimizer=chosen)
        sys.stdout.write(plan_json_text(plan, budget) if as_json else plan_text(plan, budget, top))

    run_guarded(body)
