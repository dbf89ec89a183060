"""Command-line values checked before any work: --limit ranges, summary --depth, several specs for `check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import run

from archc.limits import DEFAULT_LIMITS, LIMIT_MAX, LIMIT_MAX_BY_NAME, Limits

ROOT = Path(__file__).resolve().parent.parent
LENET = "specs/lenet5.yaml"
LENET_OK = "specs/lenet5.yaml: ok (14 layers, 60,850 params, 0.00 GMACs)"
RANGE = "expected an integer from 1 to 2**62 (4,611,686,018,427,387,904)"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


# --- --limit ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ("0", "0"), ("1" + "0" * 100, "1" + "0" * 100),
                                              (str(2**62 + 1), str(2**62 + 1))])
def test_limit_out_of_range_is_a_usage_error_naming_the_limit_and_range(value: str, shown: str) -> None:
    result = run("check", LENET, "--limit", f"max_layers={value}")
    assert result.exit_code == 2
    assert result.stderr == f"archc: error: --limit max_layers: {RANGE}; got {shown}\n"
    assert result.stdout == ""


@pytest.mark.parametrize("name", sorted(f for f in vars(DEFAULT_LIMITS)))
def test_every_limit_has_a_range_and_works_at_its_maximum(name: str) -> None:
    most = LIMIT_MAX_BY_NAME.get(name, LIMIT_MAX)
    shown = f"expected an integer from 1 to 2**{most.bit_length() - 1} ({most:,})"
    for bad in (0, most + 1):
        assert run("check", LENET, "--limit", f"{name}={bad}").stderr == \
            f"archc: error: --limit {name}: {shown}; got {bad}\n"
    result = run("check", LENET, "--limit", f"{name}={most}")
    assert (result.exit_code, result.stdout) == (0, LENET_OK + "\n"), result.stderr


def test_limits_from_python_are_range_checked_too() -> None:
    with pytest.raises(ValueError, match=r"^max_depth: expected an integer from 1 to 2\*\*62 .*; got 0$"):
        Limits(max_depth=0)
    with pytest.raises(ValueError, match=r"^max_params: .*; got True$"):
        DEFAULT_LIMITS.with_overrides({"max_params": True})
    assert DEFAULT_LIMITS.with_overrides({"max_layers": 1}).max_layers == 1


# --- summary --depth --------------------------------------------------------------------------------------------------
def test_depth_zero_is_the_model_alone() -> None:
    result = run("summary", "specs/resnet50.yaml", "--depth", "0")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:4] == [
        "Layer     Op     Output shape      Params           MACs  Receptive field",
        "--------  -----  ------------  ----------  -------------  ----------------",
        "resnet50  model  [1000]        25,557,032  4,089,184,256  619 (stride 224)",
        ""]
    one = run("summary", "specs/resnet50.yaml", "--depth", "1").stdout.splitlines()
    assert len(one) > 10 and one[2].startswith("conv1 ")


def test_negative_depth_is_a_usage_error() -> None:
    result = run("summary", LENET, "--depth", "-1")
    assert result.exit_code == 2
    assert result.stderr == "archc: error: --depth: expected 0 (the model alone) or more; got -1\n"
    assert result.stdout == ""


# --- check of several specs -------------------------------------------------------------------------------------------
def test_check_takes_several_specs_and_exits_with_the_worst_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ninputs: {x: [3]}\nbody: [{conv: {out: 3, k: 3}}]\n")
    missing = tmp_path / "missing.yaml"
    result = run("check", LENET, str(bad), "specs/alexnet.yaml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [LENET_OK,
                                          "specs/alexnet.yaml: ok (22 layers, 61,100,840 params, 0.71 GMACs)"]
    assert result.stderr.splitlines()[1:] == ["1 error"]
    assert result.stderr.startswith(f"{bad}:3:")
    worse = run("check", str(missing), str(bad), LENET)
    assert worse.exit_code == 2
    assert worse.stdout.splitlines() == [LENET_OK]
    assert worse.stderr.splitlines()[0] == f"archc: error: cannot read {missing}: No such file or directory"
    assert worse.stderr.splitlines()[-1] == "1 error"


def test_check_reads_options_once_for_several_specs() -> None:
    result = run("check", LENET, "specs/alexnet.yaml", "--limit", "max_layers=0")
    assert result.exit_code == 2
    assert result.stderr == f"archc: error: --limit max_layers: {RANGE}; got 0\n"
    assert result.stdout == ""
