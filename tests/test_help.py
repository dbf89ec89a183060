"""`--help` pages and shell completion: text wrapped by the terminal, not by the source; no type beside flags."""

from __future__ import annotations

import itertools

import pytest
from typer.testing import CliRunner, Result

from archc.cli.help_pages import reflow
from archc.cli.main import app

COMMANDS = [[], ["check"], ["summary"], ["mem"], ["schema"], ["ops"], ["draw"], ["build"], ["export"],
            ["export", "torch"], ["export", "onnx"]]
WIDTHS = [80, 120]


def _help(command: list[str], width: int) -> Result:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(width), "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result


def _description_paragraphs(output: str) -> list[list[str]]:
    """The prose between the usage line and the first panel, as paragraphs of the lines Rich printed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:end]:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "archc")
def test_help_fits_and_breaks_lines_only_where_the_terminal_ends(command: list[str], width: int) -> None:
    output = _help(command, width).output
    assert max(len(line) for line in output.splitlines()) <= width
    for paragraph in _description_paragraphs(output):
        for line, following in itertools.pairwise(paragraph):
            # a line ends early only when the next word would not have fitted: a break the source made fails this
            assert len(line) + 1 + len(following.split()[0]) > width - 4, (line, following)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "archc")
def test_flags_show_no_type(command: list[str], width: int) -> None:
    output = _help(command, width).output
    assert "<bool>" not in output
    assert "--help" in output


def test_draw_help_is_one_wrapped_paragraph_per_docstring_paragraph() -> None:
    paragraphs = _description_paragraphs(_help(["draw"], 80).output)
    assert [" ".join(p) for p in paragraphs][1].startswith(
        "A spec with errors is still drawn as far as it compiles: the failing layers and their input edges in red, "
        "the layers after them grey with unknown (?) shapes,")
    assert [" ".join(p) for p in paragraphs][2].startswith("Graphviz's layout time grows quickly with size,")
    assert [" ".join(p) for p in paragraphs][3].startswith("An .html output (or --format html) is an interactive page")
    assert [" ".join(p) for p in paragraphs][4].startswith("A .tex output (or --format tex) is TikZ from the same")
    assert len(paragraphs) == 5


@pytest.mark.parametrize(("command", "option", "metavar"), [
    (["build"], "--outdir", "DIR"), (["draw"], "--output", "FILE"), (["draw"], "--direction", "TB|LR"),
    (["summary"], "--depth", "N"), (["export", "onnx"], "--weights", "FILE"), (["export", "onnx"], "--opset", "N"),
])
def test_options_taking_a_value_name_it(command: list[str], option: str, metavar: str) -> None:
    lines = _help(command, 120).output.splitlines()
    (row,) = [line for line in lines if line.startswith("│") and f" {option} " in line]
    words = row.split()
    assert metavar in words[words.index(option) + 1:words.index(option) + 3]  # after the option, or its short form
    assert "<str>" not in row and "<int>" not in row


def test_completion_options_are_offered() -> None:
    output = _help([], 120).output
    assert "--install-completion" in output
    assert "--show-completion" in output


def test_show_completion_prints_a_script_for_the_shell() -> None:
    # the shell named: detection walks the process tree, whose shell depends on how the tests were started
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="archc")
    assert result.exit_code == 0
    assert "complete -o default -F _archc_completion archc" in result.output
    assert "_ARCHC_COMPLETE=complete_bash" in result.output


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("archc ex", "1", "export\n"), ("archc export o", "2", "onnx\n"), ("archc build --ver", "2", "--verify\n"),
])
def test_completion_completes_commands_and_options(words: str, cword: str, expected: str) -> None:
    env = {"_ARCHC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = CliRunner().invoke(app, [], prog_name="archc", env=env)
    assert result.exit_code == 0
    assert result.output == expected


def test_reflow_joins_lines_within_paragraphs_only() -> None:
    text = """First line
    continues here.

        Second paragraph
        over two lines.
    """
    assert reflow(text) == "First line continues here.\n\nSecond paragraph over two lines."
    assert reflow(None) is None
