"""Running the `archc` app in-process (typer's CliRunner) for the command-line tests."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from archc.cli.main import app  # every command registered


def run(*args: str) -> Result:
    """``archc ARGS...``: the exit code and output of a user's mistake; a bug's exception is raised, not hidden."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
