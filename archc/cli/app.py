"""The `archc` command line. User mistakes print located diagnostics and an exit code, never a traceback.

Exit codes: 0 ok, 1 invalid spec, 2 usage or I/O error, 3 internal error (set ARCHC_DEBUG=1 for its traceback).
`check`, `summary`, `schema` and `ops` never import torch or onnx.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from archc import __version__
from archc.cli.help_pages import HelpTyper
from archc.errors import EXIT_INTERNAL, EXIT_USAGE, ArchcError, Diagnostic, SpecError, UsageError
from archc.extras import missing_extra
from archc.limits import DEFAULT_LIMITS, Limits

if os.environ.get("NO_COLOR"):  # https://no-color.org: Rich drops colours but keeps bold and dim unless told this
    import typer.rich_utils

    typer.rich_utils.COLOR_SYSTEM = None

app = HelpTyper(
    name="archc", add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Compile declarative neural-network specs: validate, infer shapes and costs, emit PyTorch, ONNX, diagrams.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

T = TypeVar("T")

SetOption = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                     help="Override a spec param (repeatable).")]
LimitOption = Annotated[list[str] | None, typer.Option("--limit", metavar="NAME=VALUE",
                                                       help="Raise or lower a resource limit (repeatable).")]
SpecArg = Annotated[str, typer.Argument(metavar="SPEC", help="Path to a spec YAML file.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"archc {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """archc: architecture specs in, shapes, costs, PyTorch, ONNX and diagrams out."""


OUT_OF_MEMORY = ("archc: error: the machine ran out of memory; free some, shrink the model, or lower the limit "
                 "max_build_bytes (--limit max_build_bytes=BYTES) to what the machine can spare, so that archc "
                 "refuses such a spec before allocating")


def run_guarded(fn: Callable[[], T]) -> T:
    """Run a command body, turning archc's errors into diagnostics and exit codes."""
    try:
        return fn()
    except SpecError as exc:
        for d in exc.diagnostics:  # `file:line:col: CODE: ...`, then any source lines and hint, indented
            print(d.render(), file=sys.stderr)
        n = len(exc.diagnostics)
        print(f"{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except ArchcError as exc:
        print(f"archc: error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("archc: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except MemoryError:  # the machine's limit, not a bug: archc's own budgets estimate, the allocator decides
        print(OUT_OF_MEMORY, file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as exc:
        refusal = missing_extra(exc) if isinstance(exc, ModuleNotFoundError) else None
        if refusal is not None:  # torch, onnx or onnxruntime missing: the install lacks the emit extra
            print(f"archc: error: {refusal}", file=sys.stderr)
            raise typer.Exit(refusal.exit_code) from None
        if os.environ.get("ARCHC_DEBUG"):
            traceback.print_exc()
        print(f"archc: internal error: {type(exc).__name__}: {exc} (a bug in archc; rerun with ARCHC_DEBUG=1 and "
              "report it)", file=sys.stderr)
        raise typer.Exit(EXIT_INTERNAL) from None


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def parse_limits(pairs: list[str] | None) -> Limits:
    raw = parse_pairs(pairs, "--limit")
    values: dict[str, int] = {}
    for key, text in raw.items():
        try:
            values[key] = int(text.replace("_", ""))
        except ValueError:
            raise UsageError(f"--limit {key}: expected an integer, got {text!r}") from None
    try:
        return DEFAULT_LIMITS.with_overrides(values)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    except ValueError as exc:
        raise UsageError(f"--limit {exc}") from None


def compile_spec(spec: str, sets: list[str] | None, limits: list[str] | None) -> Any:
    """Compile ``spec``, printing its warnings (the command goes on)."""
    from archc.compiler import compile_file

    compiled = compile_file(spec, parse_pairs(sets, "--set"), parse_limits(limits))
    print_warnings(compiled.warnings)
    return compiled


def print_warnings(warnings: list[Diagnostic]) -> None:
    """W-code diagnostics go to stderr in the errors' format; they do not change the exit code."""
    for warning in warnings:
        print(warning.format(), file=sys.stderr)


@app.command()
def check(specs: Annotated[list[str], typer.Argument(metavar="SPEC...", help="Paths to spec YAML files.")],
          set_: SetOption = None, limit: LimitOption = None) -> None:
    """Validate specs, infer every shape, and report all errors found in each; exit with the worst status."""
    from archc.compiler import compile_file

    # options are read once: a bad --limit is one usage error, not one per file
    sets, limits = run_guarded(lambda: (parse_pairs(set_, "--set"), parse_limits(limit)))
    worst = 0
    for spec in specs:

        def body(spec: str = spec) -> None:
            compiled = compile_file(spec, sets, limits)
            print_warnings(compiled.warnings)
            t = compiled.costs.total
            print(f"{spec}: ok ({t.layers:,} layers, {t.params:,} params, {t.macs / 1e9:.2f} GMACs)")

        try:
            run_guarded(body)
        except typer.Exit as exc:
            if exc.exit_code == 130:  # interrupted: stop, do not go on to the next file
                raise
            worst = max(worst, exc.exit_code)
    if worst:
        raise typer.Exit(worst)


@app.command()
def schema(output: Annotated[str | None, typer.Option("-o", "--output", metavar="FILE",
                                                      help="Write to a file.")] = None,
           force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing file.")] = False) -> None:
    """Print the JSON Schema (draft-07) of the spec language, for editors."""

    def body() -> None:
        from archc.spec.schema import json_schema

        text = json.dumps(json_schema(), indent=1, sort_keys=False) + "\n"
        if output:
            from archc.io import write_atomic

            write_atomic(output, text.encode(), force=force)
        else:
            sys.stdout.write(text)

    run_guarded(body)


@app.command()
def ops(name: Annotated[str | None, typer.Argument(metavar="NAME", help="Show one op in detail.")] = None) -> None:
    """List every op with its parameters, or describe one."""

    def body() -> None:
        from archc.ops.reference import describe_op, list_ops

        if name is None:
            sys.stdout.write(list_ops())
            return
        text = describe_op(name)
        if text is None:
            from archc.ops.registry import closest_ops

            close = closest_ops(name)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageError(f"no op named {name!r}{hint}")
        sys.stdout.write(text)

    run_guarded(body)
