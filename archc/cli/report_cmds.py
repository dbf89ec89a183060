"""Commands that report on a spec for people and papers: `summary` (per layer) and `table` (per stage). No torch."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from archc.cli.app import LimitOption, SetOption, SpecArg, app, compile_spec, run_guarded
from archc.errors import UsageError

Output = Annotated[str | None, typer.Option("-o", "--output", metavar="FILE", help="Write to a file, not stdout.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Replace an existing file.")]


def _write(text: str, output: str | None, force: bool) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from archc.io import write_atomic

    write_atomic(output, text.encode(), force=force)


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{option}: expected one of {', '.join(choices)}; got {value!r}")
    return value


@app.command()
def summary(spec: SpecArg,
            depth: Annotated[int | None, typer.Option(
                metavar="N", help="Fold scopes nested deeper than N; 0 shows the model alone as one row.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
            fmt: Annotated[str, typer.Option("--format", metavar="FORMAT",
                                             help="text, markdown, csv, latex, html or json.")] = "text",
            columns: Annotated[str | None, typer.Option(
                metavar="COLS", help="Columns after layer and op, comma-separated: kernel, shape, params, percent, "
                                     "macs, memory, rf; or `all` (default: shape,params,macs,rf).")] = None,
            batch: Annotated[int | None, typer.Option(
                metavar="N", help="Batch size: shapes show it, MACs and memory are for the whole batch.")] = None,
            dtype: Annotated[str, typer.Option(metavar="DTYPE", help="Bytes per element: fp32, fp16, bf16 or int8.")]
            = "fp32",
            output: Output = None, force: Force = False,
            set_: SetOption = None, limit: LimitOption = None) -> None:
    """Per-layer output shapes, parameters, MACs and receptive fields, with totals."""

    def body() -> None:
        from archc.report.grid import TABLE_FORMATS
        from archc.report.layer_table import COLUMNS, DEFAULT_COLUMNS, summarize
        from archc.report.precision import element_bytes

        if depth is not None and depth < 0:
            raise UsageError(f"--depth: expected 0 (the model alone) or more; got {depth}")
        if batch is not None and not 1 <= batch <= 1_000_000:
            raise UsageError(f"--batch: expected 1 to 1,000,000; got {batch}")
        chosen = _choice("--format", "json" if as_json else fmt, (*TABLE_FORMATS, "json"))
        element_bytes(dtype)
        wanted = DEFAULT_COLUMNS if columns is None else _columns(columns, tuple(COLUMNS))
        if chosen == "json" and (columns is not None or batch is not None or dtype != "fp32"):
            raise UsageError("--json writes every figure per sample in fp32; --columns, --batch and --dtype apply to "
                             "the tables")
        c = compile_spec(spec, set_, limit)
        if chosen == "json":
            from archc.emit.summary import summary_json_text

            _write(summary_json_text(c), output, force)
            return
        _write(summarize(c, depth, batch, dtype).render(chosen, wanted), output, force)

    run_guarded(body)


def _columns(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if text.strip() == "all":
        return known
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"--columns: expected names from {', '.join(known)} (or `all`); got {text!r}")
    return names


@app.command()
def table(spec: SpecArg,
          fmt: Annotated[str, typer.Option("--format", metavar="FORMAT",
                                           help="text, markdown, csv, latex, html or json.")] = "text",
          depth: Annotated[int, typer.Option(metavar="N", help="Stages are the scopes at nesting level N.")] = 1,
          standalone: Annotated[bool, typer.Option(
              "--standalone", help="With --format latex: a whole document pdflatex compiles, not just the table.")]
          = False,
          output: Output = None, force: Force = False,
          set_: SetOption = None, limit: LimitOption = None) -> None:
    """The stage table of a paper: per stage, output size, block structure x repeats, params and MACs."""

    def body() -> None:
        from archc.report.grid import TABLE_FORMATS, latex_document
        from archc.report.stage_table import stage_table

        chosen = _choice("--format", fmt, (*TABLE_FORMATS, "json"))
        if depth < 1:
            raise UsageError(f"--depth: expected 1 (the top-level stages) or more; got {depth}")
        if standalone and chosen != "latex":
            raise UsageError("--standalone applies to --format latex")
        c = compile_spec(spec, set_, limit)
        text = stage_table(c, depth).render(chosen)
        _write(latex_document(text) if standalone else text, output, force)

    run_guarded(body)
