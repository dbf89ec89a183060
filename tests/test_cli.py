"""The `archc` command line: outputs, exit codes and the promise that the core commands never load torch or onnx.

Most tests run the app in-process with typer's CliRunner (fast); the import and NO_COLOR tests need a fresh
interpreter (and, for colour, a pseudo-terminal) and run the real entry point in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from cli_runner import run
from typer.testing import CliRunner

from archc import __version__
from archc.cli.app import app
from archc.ops.registry import all_ops
from archc.yaml_loader import load_yaml_file

ROOT = Path(__file__).resolve().parent.parent
RESNET = "specs/resnet50.yaml"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def resnet_json() -> dict:
    os.chdir(ROOT)
    result = CliRunner().invoke(app, ["summary", "--json", RESNET])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def layer(summary: dict, path: str) -> dict:
    (found,) = [entry for entry in summary["layers"] if entry["path"] == path]
    return found


# --- version, check ---------------------------------------------------------------------------------------------------
def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"archc {__version__}\n"


def test_check_ok() -> None:
    result = run("check", RESNET)
    assert result.exit_code == 0
    assert result.stdout == "specs/resnet50.yaml: ok (175 layers, 25,557,032 params, 4.09 GMACs)\n"
    assert result.stderr == ""


# --- summary --json ---------------------------------------------------------------------------------------------------
def test_summary_json_shape(resnet_json: dict) -> None:
    assert {"name", "inputs", "outputs", "totals", "layers", "groups"} <= set(resnet_json)
    assert resnet_json["name"] == "resnet50"
    assert resnet_json["inputs"] == {"image": {"shape": [3, 224, 224], "dtype": "float32"}}
    assert resnet_json["outputs"] == {"output": {"node": "fc", "shape": [1000]}}
    layer_keys = {"path", "op", "output_shape", "params", "macs", "receptive_field"}
    for entry in resnet_json["layers"]:
        assert layer_keys <= set(entry), entry
    for group in resnet_json["groups"]:
        assert {"path", "params", "macs"} <= set(group), group


def test_summary_json_totals(resnet_json: dict) -> None:
    totals = resnet_json["totals"]
    assert totals["params"] == 25_557_032  # torchvision resnet50
    assert totals["trainable_params"] == 25_557_032
    # 53 batch norms, each with running mean and var per channel and num_batches_tracked; channels by hand:
    # stem 64; per stage blocks * (w + w + 4w) + 4w for the projection: 1408, 3584, 10240, 11264
    bn_channels = 64 + 1408 + 3584 + 10240 + 11264
    assert totals["buffers"] == 2 * bn_channels + 53
    assert totals["macs"] == 4_089_184_256
    assert totals["flops"] == 2 * 4_089_184_256
    assert totals["activation_bytes"] == 4 * sum(_numel(e["output_shape"]) for e in resnet_json["layers"])
    assert len(resnet_json["layers"]) == 175
    assert sum(e["params"] for e in resnet_json["layers"]) == totals["params"]


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def test_summary_json_layers(resnet_json: dict) -> None:
    conv1 = layer(resnet_json, "conv1")
    assert conv1["op"] == "conv"
    assert conv1["output_shape"] == [64, 112, 112]
    assert conv1["params"] == 3 * 64 * 7 * 7
    assert conv1["macs"] == 64 * 112 * 112 * 3 * 7 * 7
    fc = layer(resnet_json, "fc")
    assert fc["op"] == "linear"
    assert fc["output_shape"] == [1000]
    assert fc["params"] == 2048 * 1000 + 1000
    assert fc["macs"] == 2048 * 1000
    assert layer(resnet_json, "layer1.0.conv1")["params"] == 64 * 64
    assert layer(resnet_json, "layer4.2.conv3")["output_shape"] == [2048, 7, 7]


def test_summary_json_receptive_fields(resnet_json: dict) -> None:
    """By hand: size += (k-1)*jump, padding += p*jump, jump *= s."""
    def rf(path: str) -> tuple[list[int], list[int], list[int]]:
        field = layer(resnet_json, path)["receptive_field"]
        return field["size"], field["stride"], field["padding"]

    assert rf("conv1") == ([7, 7], [2, 2], [3, 3])  # 7x7/2 p3 on the input
    assert rf("bn1") == ([7, 7], [2, 2], [3, 3])  # point-wise: unchanged
    assert rf("maxpool") == ([11, 11], [4, 4], [5, 5])  # 3/2 p1: 7 + 2*2, 2*2, 3 + 1*2
    assert rf("layer1.0.conv1") == ([11, 11], [4, 4], [5, 5])  # 1x1: unchanged
    assert rf("layer1.0.conv2") == ([19, 19], [4, 4], [9, 9])  # 3x3/1 p1: 11 + 2*4, 4, 5 + 1*4
    assert layer(resnet_json, "fc")["receptive_field"]["stride"] == [224, 224]


def test_summary_json_groups(resnet_json: dict) -> None:
    groups = {g["path"]: g for g in resnet_json["groups"]}
    # layer1: the first bottleneck has a projection shortcut, the other two do not
    first = 64 * 64 + 128 + 64 * 64 * 9 + 128 + 64 * 256 + 512 + 64 * 256 + 512
    other = 256 * 64 + 128 + 64 * 64 * 9 + 128 + 64 * 256 + 512
    assert groups["layer1.0"]["params"] == first
    assert groups["layer1"]["params"] == first + 2 * other
    assert groups["layer1.0.downsample"]["params"] == 64 * 256 + 512
    top = [g for path, g in groups.items() if "." not in path]
    assert [g["path"] for g in top] == ["layer1", "layer2", "layer3", "layer4"]
    loose = [e for e in resnet_json["layers"] if e["path"].split(".")[0] not in groups]
    assert sum(g["params"] for g in top) + sum(e["params"] for e in loose) == resnet_json["totals"]["params"]
    assert sum(g["macs"] for g in top) + sum(e["macs"] for e in loose) == resnet_json["totals"]["macs"]


# --- summary text, --set ----------------------------------------------------------------------------------------------
def test_summary_depth_folds_stages() -> None:
    result = run("summary", RESNET, "--depth", "1")
    assert result.exit_code == 0
    rows = [line.split()[0] for line in result.stdout.split("\n\n")[0].splitlines()[2:]]
    assert rows == ["conv1", "bn1", "2", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "9", "fc"]
    (layer1,) = [line for line in result.stdout.splitlines() if line.startswith("layer1 ")]
    assert "[256, 56, 56]" in layer1 and "215,808" in layer1
    full = run("summary", RESNET)
    assert "layer1.0.conv1 " in full.stdout
    assert "layer1.0.conv1 " not in result.stdout


def test_set_changes_classes() -> None:
    result = run("summary", "--json", RESNET, "--set", "classes=10")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert layer(summary, "fc")["output_shape"] == [10]
    assert summary["totals"]["params"] == 25_557_032 - (2048 * 1000 + 1000) + (2048 * 10 + 10)
    assert summary["outputs"]["output"]["shape"] == [10]


def test_set_wrong_type_is_invalid_spec() -> None:
    result = run("check", RESNET, "--set", "classes=ten")
    assert result.exit_code == 1
    assert result.stderr == ("specs/resnet50.yaml:7:19: E107: --set classes=ten: expected int like the default 1000; "
                             "found str 'ten'\n1 error\n")
    assert result.stdout == ""


def test_lowered_limit_reports_once() -> None:
    result = run("check", RESNET, "--limit", "max_layers=100")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[-1] == "1 error"
    assert " E501: " in lines[0] and "(limit max_layers)" in lines[0]


# --- usage and I/O errors: exit 2 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (("check", "tests/no_such_spec.yaml"),
     "archc: error: cannot read tests/no_such_spec.yaml: No such file or directory\n"),
    (("check", "specs"), "archc: error: cannot read specs: Is a directory\n"),
    (("check", RESNET, "--set", "classes"), "archc: error: --set expects KEY=VALUE, got 'classes'\n"),
    (("check", RESNET, "--limit", "max_layers=many"),
     "archc: error: --limit max_layers: expected an integer, got 'many'\n"),
    (("ops", "nope"), "archc: error: no op named 'nope'\n"),
    (("ops", "con"), "archc: error: no op named 'con'; did you mean conv or concat?\n"),
])
def test_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr == message
    assert result.stdout == ""


def test_unknown_limit_lists_the_known_ones() -> None:
    result = run("check", RESNET, "--limit", "max_widgets=3")
    assert result.exit_code == 2
    assert result.stderr.startswith("archc: error: unknown limit(s) max_widgets; known: ")
    assert "max_layers" in result.stderr and "Traceback" not in result.stderr


def test_internal_error_exit_3_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import archc.compiler

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(archc.compiler, "compile_file", broken)
    monkeypatch.delenv("ARCHC_DEBUG", raising=False)
    result = run("check", RESNET)
    assert result.exit_code == 3
    assert result.stderr.startswith("archc: internal error: RuntimeError: boom (a bug in archc;")
    assert "Traceback" not in result.stderr


# --- ops, schema ------------------------------------------------------------------------------------------------------
def test_ops_lists_every_op() -> None:
    result = run("ops")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == list(all_ops())


def test_ops_conv_shows_parameters() -> None:
    result = run("ops", "conv")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("conv ")
    params = lines[lines.index("parameters:") + 1:lines.index("example:")]
    names = [line.split()[0] for line in params]
    assert names == list(all_ops()["conv"].Params.model_fields)
    assert {"out", "k", "s", "p", "d", "groups", "depthwise", "bias"} <= set(names)
    (k,) = [line for line in params if line.split()[0] == "k"]
    assert "required" in k


def test_schema_is_draft7_json() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    spec = load_yaml_file(ROOT / RESNET).data
    jsonschema.Draft7Validator(schema).validate(spec)  # the editor schema accepts a real spec
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate({**spec, "bodyy": []})


# --- fresh interpreters -----------------------------------------------------------------------------------------------
_NO_HEAVY_IMPORTS = """
import json, sys
sys.argv = ["archc", *json.loads(sys.argv[1])]
from archc.cli.main import main
code = main()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime", "torchvision"))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["check", RESNET], ["summary", RESNET], ["summary", "--json", RESNET], ["schema"],
                                  ["ops"], ["table", RESNET], ["summary", "--format", "latex", RESNET]])
def test_core_commands_never_import_torch_or_onnx(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _NO_HEAVY_IMPORTS, json.dumps(args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    assert proc.stdout  # the command really ran


def _run_in_pty(args: list[str], env: dict[str, str]) -> bytes:
    """Run the real entry point attached to a pseudo-terminal (Rich styles only terminals) and return its output."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: replace it at once, never return into pytest
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "archc", *args], env)
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize("args", [["--help"], ["bogus"], ["check", "tests/no_such_spec.yaml"], ["summary", RESNET],
                                  ["check", "tests/golden/diagnostics/add_shape_mismatch.yaml"]])
def test_no_color_means_no_escapes(args: list[str]) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color", "COLUMNS": "100", "NO_COLOR": "1"}
    out = _run_in_pty(args, env)
    assert out.strip()
    assert b"\x1b[" not in out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_help_is_styled_on_a_terminal_without_no_color() -> None:
    """The control for the test above: the pseudo-terminal does make Rich style its output."""
    env = {"PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color", "COLUMNS": "100"}
    assert b"\x1b[" in _run_in_pty(["--help"], env)
