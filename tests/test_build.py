"""archc.build: the build as bytes from Python, its manifest, and OUTDIR replaced as a unit.

An interruption (an exception in the middle of writing, or SIGKILL of a real `archc build`) leaves the old complete
set; a directory holding files archc did not write is never replaced.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from process_kill import kill_while_writing

from archc import __version__, outdir
from archc import io as archc_io
from archc.build import BUILD_FILES, MANIFEST, Artifacts, build_artifacts, write_build
from archc.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "specs" / "mlp.yaml"
RESNET18 = ROOT / "specs" / "resnet18.yaml"
ALL_FILES = sorted([*BUILD_FILES, MANIFEST])
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches /proc")


@pytest.fixture(scope="module")
def old() -> Artifacts:
    return build_artifacts(MLP, params={"classes": 3}, verify=False)


@pytest.fixture(scope="module")
def new() -> Artifacts:
    return build_artifacts(MLP, verify=False)


def contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the library API and the manifest ---------------------------------------------------------------------------------
def test_build_artifacts_are_bytes_with_a_manifest(old: Artifacts) -> None:
    assert sorted(old.files) == ALL_FILES
    assert old.report[0] == "Model: mlp    inputs: pixels [784]    outputs: output [3]"
    assert not any("verified" in line for line in old.report)
    assert json.loads(old.files["summary.json"])["outputs"]["output"]["shape"] == [3]
    manifest = json.loads(old.files[MANIFEST])
    assert manifest == {
        "archc": __version__,
        "spec": {"name": "mlp.yaml", "sha256": sha(MLP.read_bytes()), "params": {"classes": "3"}},
        "files": {name: {"sha256": sha(old.files[name]), "size": len(old.files[name])} for name in sorted(BUILD_FILES)},
    }


def test_build_artifacts_verify_by_default() -> None:
    artifacts = build_artifacts(MLP, limits={"max_layers": 100})
    assert artifacts.report[-1].startswith("ONNX verified: onnxruntime matches PyTorch (batch 1, batch 2): max abs")


def test_verification_runs_without_the_onnx_proto(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serialised bytes are the artifact: the proto (a second copy of every weight) is gone before onnxruntime
    and the module are compared."""
    import gc

    onnx = pytest.importorskip("onnx")
    from archc.emit import onnx_verify

    alive: list[int] = []
    real = onnx_verify.verify_model

    def counting(data: bytes, *args: object, **kwargs: object) -> object:
        alive.append(sum(type(o) is onnx.ModelProto and o.graph.name == "mlp" for o in gc.get_objects()))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(onnx_verify, "verify_model", counting)
    artifacts = build_artifacts(MLP, params={"classes": 3})
    assert alive == [0]
    assert artifacts.report[-1].startswith("ONNX verified: ")


def test_library_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"^unknown limit\(s\) max_widgets; known: "):
        build_artifacts(MLP, limits={"max_widgets": 3})
    with pytest.raises(TypeError, match=r"^param classes: overrides are numbers, booleans or strings; found list$"):
        build_artifacts(MLP, params={"classes": [3]})


def test_write_build_writes_exactly_the_set(tmp_path: Path, old: Artifacts) -> None:
    out = tmp_path / "deep" / "out"
    paths = write_build(out, old)
    assert sorted(paths) == sorted(out / name for name in ALL_FILES)
    assert contents(out) == old.files
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]  # no staging directory left


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_replacing_a_build_leaves_nothing_of_the_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: Artifacts,
                                                     new: Artifacts, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    write_build(out, old)
    with pytest.raises(UsageError, match=f"^{re.escape(str(out))} exists; pass --force to replace it$"):
        write_build(out, new)
    assert contents(out) == old.files
    write_build(out, new, force=True)
    assert contents(out) == new.files
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- interrupted writes -----------------------------------------------------------------------------------------------
def test_a_failure_while_writing_keeps_the_old_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: Artifacts,
                                                     new: Artifacts) -> None:
    out = tmp_path / "out"
    write_build(out, old)
    written: list[str] = []
    original = archc_io.write_atomic

    def full_disk(path: Path, data: bytes, **kwargs: bool) -> Path:
        if len(written) == 3:
            raise UsageError(f"cannot write {path}: {os.strerror(errno.ENOSPC)}")
        written.append(Path(path).name)
        return original(path, data, **kwargs)

    monkeypatch.setattr(outdir, "write_atomic", full_disk)
    with pytest.raises(UsageError, match=r"^cannot write .*/\.out\.\d+-\w+\.new/model\.onnx: No space left on device$"):
        write_build(out, new, force=True)
    assert len(written) == 3
    assert contents(out) == old.files
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@LINUX
def test_sigkill_of_a_real_build_keeps_the_old_build(tmp_path: Path, old: Artifacts, new: Artifacts) -> None:
    """Stopped while a file of the new set is open in its staging directory, then killed: OUTDIR is the old set, and
    the staging directory left behind is removed by the next build once stale."""
    for trial in range(4):
        parent = tmp_path / f"trial{trial}"
        out = parent / "out"
        write_build(out, old)
        staging_file = re.compile(re.escape(f"{parent}{os.sep}.out.") + r"\d+-\w+\.new/")
        killed = kill_while_writing(["build", str(RESNET18), "-o", str(out), "--force", "--no-verify"], staging_file)
        if killed:
            break
        assert sorted(contents(out)) == ALL_FILES  # it finished: the whole new set
    assert killed, "no trial was killed while writing"
    assert contents(out) == old.files
    (staging,) = [p for p in parent.iterdir() if p.name != "out"]
    assert set(os.listdir(staging)) <= set(ALL_FILES)
    stale = time.time() - 2 * archc_io.STALE_SECONDS
    os.utime(staging, (stale, stale))
    write_build(out, new, force=True)
    assert contents(out) == new.files
    assert [p.name for p in parent.iterdir()] == ["out"]


def test_stale_staging_directories_are_removed_only_when_safe(tmp_path: Path, new: Artifacts) -> None:
    dead = _dead_pid()
    stale = time.time() - 2 * archc_io.STALE_SECONDS
    left = tmp_path / f".out.{dead}-1a2b3c4d.new"  # a killed build's: removed
    foreign = tmp_path / f".out.{dead}-5e6f7a8b.old"  # holds a file archc never writes: kept
    live = tmp_path / f".out.{os.getppid()}-00aa00aa.new"  # a running process's: kept
    for directory, name in ((left, "model.onnx"), (foreign, "thesis.tex"), (live, "summary.txt")):
        directory.mkdir()
        (directory / name).write_bytes(b"partial")
        os.utime(directory, (stale, stale))
    write_build(tmp_path / "out", new)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", foreign.name, live.name])


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- what OUTDIR may hold ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("setup", "shown"), [
    (lambda out: (out / "notes.txt").write_text("mine"), "notes.txt"),
    (lambda out: (out / "data").mkdir(), "data"),
    (lambda out: (out / "model.py").mkdir(), "model.py"),
    (lambda out: (out / "summary.txt").symlink_to(out.parent / "elsewhere"), "summary.txt"),
], ids=["a-user-file", "a-subdirectory", "a-directory-named-like-an-output", "a-symlink"])
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_a_directory_holding_other_files_is_never_replaced(tmp_path: Path, old: Artifacts, new: Artifacts,
                                                           setup: Callable[[Path], object], shown: str,
                                                           force: bool) -> None:
    out = tmp_path / "out"
    write_build(out, old)
    if shown in old.files:
        (out / shown).unlink()
    setup(out)
    before = sorted(os.listdir(out))
    with pytest.raises(UsageError) as info:
        write_build(out, new, force=force)
    assert str(info.value) == (f"{out} holds files archc did not write ({shown}); refusing to replace it, even with "
                               "--force: move them away or choose another output directory")
    assert sorted(os.listdir(out)) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_empty_directory_or_an_older_build_without_manifest(tmp_path: Path, old: Artifacts,
                                                               new: Artifacts) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_build(out, old)  # empty: nothing to replace, no --force needed
    assert contents(out) == old.files
    (out / MANIFEST).unlink()  # what archc wrote before manifests: replaced with --force like any build
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_build(out, new)
    write_build(out, new, force=True)
    assert contents(out) == new.files


def test_archc_build_is_reachable_from_the_package() -> None:
    import subprocess

    code = "import archc, sys; print(archc.build.build_artifacts.__module__, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert proc.stdout == "archc.build False\n"  # and importing it loads no torch
