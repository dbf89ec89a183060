"""Outputs are written atomically, stay inside their directory, never clobber without --force, and are reproducible.

The SIGKILL tests run the real `archc export onnx` of ResNet-50 (about 100 MB), stop it the moment it has a file open
in the target directory and kill it there; afterwards the target is absent, the old file, or the complete new one,
and no temp file is left (an ``O_TMPFILE`` write has no name until it is complete).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_runner import run
from process_kill import ARCHC, kill_while_writing

from archc import io as archc_io
from archc.cli import emit_cmds  # noqa: F401  (registers export, draw and build)
from archc.errors import UsageError
from archc.io import confined, remove_stale_temps, write_atomic

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "specs" / "mlp.yaml")
RESNET50 = str(ROOT / "specs" / "resnet50.yaml")
BUILD_FILES = ["diagram.svg", "manifest.json", "model.onnx", "model.py", "summary.json", "summary.txt"]
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches /proc and uses O_TMPFILE")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def anonymous_supported(directory: Path) -> bool:
    """Whether write_atomic writes through O_TMPFILE here (no name exists while writing)."""
    seen: list[list[str]] = []
    original = archc_io._write_fully

    def spy(fd: int, data: bytes) -> None:
        seen.append(os.listdir(directory))
        original(fd, data)

    probe = directory / "probe"
    archc_io._write_fully = spy
    try:
        write_atomic(probe, b"x")
    finally:
        archc_io._write_fully = original
        probe.unlink()
    return seen == [[]]


# --- an exception in the middle of a write ----------------------------------------------------------------------------
def _fail_halfway(fd: int, data: bytes) -> None:
    os.write(fd, data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("way", ["anonymous", "named"])
@pytest.mark.parametrize("existing", [True, False])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            way: str, existing: bool) -> None:
    target = tmp_path / "model.onnx"
    if existing:
        target.write_bytes(b"old contents")
    if way == "named":
        monkeypatch.setattr(archc_io, "_write_anonymous", lambda *args: False)
    monkeypatch.setattr(archc_io, "_write_fully", _fail_halfway)
    with pytest.raises(UsageError, match=r"cannot write .*model\.onnx: No space left on device"):
        write_atomic(target, b"n" * 3_000_000, force=True)
    assert os.listdir(tmp_path) == (["model.onnx"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old contents"


@pytest.mark.parametrize("way", ["anonymous", "named"])
def test_write_and_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask022: None, way: str) -> None:
    if way == "named":
        monkeypatch.setattr(archc_io, "_write_anonymous", lambda *args: False)
    target = tmp_path / "sub" / "out.bin"
    data = os.urandom(3 * archc_io.CHUNK + 5)  # several write calls
    write_atomic(target, data)
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o644
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_atomic(target, b"other")
    assert target.read_bytes() == data
    write_atomic(target, b"other", force=True)
    assert target.read_bytes() == b"other"
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(target.parent) == ["out.bin"]


@LINUX
def test_no_name_exists_until_the_data_is_complete(tmp_path: Path) -> None:
    """On Linux the data is written to an O_TMPFILE file: nothing is visible in the directory while writing."""
    assert anonymous_supported(tmp_path)


@LINUX
def test_a_file_created_meanwhile_is_never_replaced_without_force(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """linkat refuses an existing name, so a file that appears while we write (another writer) survives."""
    if not anonymous_supported(tmp_path):
        pytest.skip("O_TMPFILE is not available here")
    target = tmp_path / "out.bin"
    original = archc_io._write_fully

    def racing(fd: int, data: bytes) -> None:
        target.write_bytes(b"theirs")
        original(fd, data)

    monkeypatch.setattr(archc_io, "_write_fully", racing)
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_atomic(target, b"ours")
    assert target.read_bytes() == b"theirs"
    assert os.listdir(tmp_path) == ["out.bin"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    dead, old = _dead_pid(), time.time() - 2 * archc_io.STALE_SECONDS
    stale = tmp_path / f".out.bin.{dead}-1a2b3c4d.tmp"
    fresh = tmp_path / f".out.bin.{dead}-99999999.tmp"  # too recent: maybe a live writer on another host
    live = tmp_path / f".out.bin.{os.getppid()}-00aa00aa.tmp"  # a running process's
    other = tmp_path / f".other.bin.{dead}-1a2b3c4d.tmp"  # another output's
    mine = tmp_path / ".out.bin.tmp"  # not our pattern
    for path in (stale, fresh, live, other, mine):
        path.write_bytes(b"partial")
    for path in (stale, live, other, mine):
        os.utime(path, (old, old))
    write_atomic(tmp_path / "out.bin", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.bin", fresh.name, live.name, other.name, mine.name])
    os.utime(fresh, (old, old))
    assert remove_stale_temps(tmp_path, "out.bin") == [fresh]


# --- SIGKILL while writing --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet50_onnx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The complete file an uninterrupted export writes (reproducible: fresh weights come from a fixed seed), made
    in this process: the subprocesses must write the very same bytes."""
    out = tmp_path_factory.mktemp("reference") / "model.onnx"
    assert run("export", "onnx", RESNET50, "-o", str(out)).exit_code == 0
    return out.read_bytes()


def _check_after_kill(directory: Path, target: Path, allowed: set[bytes]) -> None:
    leftovers = sorted(p.name for p in directory.iterdir() if p != target)
    if anonymous_supported(directory):
        assert leftovers == []
    else:  # named temp files: recognisable, and removed by the next write once stale
        assert all(re.fullmatch(r"\.model\.onnx\.\d+-\w+\.tmp", name) for name in leftovers), leftovers
        old = time.time() - 2 * archc_io.STALE_SECONDS
        for name in leftovers:
            os.utime(directory / name, (old, old))
        remove_stale_temps(directory, target.name)
        assert sorted(p.name for p in directory.iterdir() if p != target) == []
    if target.exists():
        data = target.read_bytes()
        assert data in allowed, f"{target} holds {len(data):,} bytes of neither the old nor the new file"


def _kill_trials(tmp_path: Path, reference: bytes, max_trials: int, existing: bytes | None, wanted: int = 1) -> int:
    """Run trials until ``wanted`` were killed mid-write (at most ``max_trials``); returns how many were."""
    import onnx

    killed = 0
    for i in range(max_trials):
        directory = tmp_path / f"trial{i}"
        directory.mkdir()
        target = directory / "model.onnx"
        args = ["export", "onnx", RESNET50, "-o", str(target)]
        if existing is not None:
            target.write_bytes(existing)
            args.append("--force")
        killed += kill_while_writing(args, directory)
        _check_after_kill(directory, target, {reference} | ({existing} if existing is not None else set()))
        if target.exists() and target.read_bytes() == reference:
            assert len(onnx.load(str(target)).graph.node) > 100
        if killed >= wanted:
            break
    return killed


@LINUX
def test_sigkill_while_writing_a_new_file(tmp_path: Path, resnet50_onnx: bytes) -> None:
    assert _kill_trials(tmp_path, resnet50_onnx, 4, None) == 1, "no trial was killed while writing"


@LINUX
def test_sigkill_while_replacing_a_file(tmp_path: Path, resnet50_onnx: bytes) -> None:
    assert _kill_trials(tmp_path, resnet50_onnx, 4, b"the old model, kept whole") == 1, "no trial was killed"


@LINUX
@pytest.mark.slow
def test_sigkill_many_trials(tmp_path: Path, resnet50_onnx: bytes) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "replace").mkdir()
    killed = _kill_trials(tmp_path / "new", resnet50_onnx, 10, None, wanted=10)
    killed += _kill_trials(tmp_path / "replace", resnet50_onnx, 10, b"old", wanted=10)
    assert killed >= 10


# --- names that escape the output directory ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "", "."])
def test_confined_refuses_escaping_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match=r"refusing output name|resolves outside"):
        confined(tmp_path / "out", name)


def test_confined_refuses_symlinks(tmp_path: Path) -> None:
    outside, out = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    (out / "link").symlink_to(outside)
    with pytest.raises(UsageError, match="resolves outside"):
        confined(out, "link/model.onnx")
    (out / "model.onnx").symlink_to(outside / "model.onnx")
    with pytest.raises(UsageError, match="resolves outside"):
        confined(out, "model.onnx")
    (tmp_path / "alias").symlink_to(out)
    with pytest.raises(UsageError, match="symbolic link"):
        confined(tmp_path / "alias", "model.onnx")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        confined(tmp_path / "plain", "model.onnx")
    assert confined(out, "model.py") == out / "model.py"


def test_write_atomic_refuses_a_symlink_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.onnx").symlink_to(victim)
    for force in (False, True):
        with pytest.raises(UsageError, match="symbolic link"):
            write_atomic(tmp_path / "out.onnx", b"evil", force=force)
    assert victim.read_text() == "keep me"


def test_build_into_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    result = run("build", MLP, "-o", str(tmp_path / "alias"))
    assert result.exit_code == 2
    assert "symbolic link" in result.stderr
    assert list(real.iterdir()) == []


def test_build_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"a file")
    result = run("build", MLP, "-o", str(target))
    assert result.exit_code == 2
    assert "not a directory" in result.stderr
    assert target.read_bytes() == b"a file"


# --- existing files ---------------------------------------------------------------------------------------------------
def _existing(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"precious " + path.name.encode())
    return sha(path)


@pytest.mark.parametrize("command", [
    lambda out: ["export", "torch", MLP, "-o", str(out / "model.py")],
    lambda out: ["export", "onnx", MLP, "-o", str(out / "model.onnx")],
    lambda out: ["draw", MLP, "-o", str(out / "diagram.svg")],
    lambda out: ["build", MLP, "-o", str(out), "--no-verify"],
    lambda out: ["schema", "-o", str(out / "archc.schema.json")],
], ids=["export-torch", "export-onnx", "draw", "build", "schema"])
def test_existing_outputs_untouched_without_force(tmp_path: Path, command: Callable[[Path], list[str]]) -> None:
    out = tmp_path / "out"
    args = command(out)
    name = Path(args[args.index("-o") + 1]).name if args[0] != "build" else "summary.txt"
    path = out / name
    before = _existing(path)
    result = run(*args)
    assert result.exit_code == 2
    assert "--force" in result.stderr
    assert sha(path) == before
    assert sorted(p.name for p in out.iterdir()) == [name]
    result = run(*args, "--force")
    assert result.exit_code == 0, result.stderr
    assert sha(path) != before
    assert not path.read_bytes().startswith(b"precious")


# --- special files and places that cannot be written ----------------------------------------------------------------
WRITERS: dict[str, Callable[[Path], list[str]]] = {
    "export-torch": lambda target: ["export", "torch", MLP, "-o", str(target)],
    "export-onnx": lambda target: ["export", "onnx", MLP, "-o", str(target)],
    "draw": lambda target: ["draw", MLP, "-o", str(target), "--format", "svg"],
    "schema": lambda target: ["schema", "-o", str(target)],
}
NEVER_REPLACED = "not a regular file; archc never replaces one, even with --force"


@pytest.fixture
def dev_null_guarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[os.stat_result]:
    """Fail instead of destroying /dev/null, should a regression try to (the tests run as root)."""
    for name in ("replace", "rename", "link"):
        original = getattr(os, name)

        def guarded(src: object, dst: object, *args: object, _original: Callable[..., None] = original,
                    **kwargs: object) -> None:
            assert os.fspath(dst) != "/dev/null", "tried to replace /dev/null"  # type: ignore[arg-type]
            _original(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)
    before = os.stat("/dev/null")
    yield before
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_fifo_is_never_replaced(tmp_path: Path, writer: str, force: bool) -> None:
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    result = run(*WRITERS[writer](fifo), *(["--force"] if force else []))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"archc: error: {fifo} is a named pipe (FIFO), {NEVER_REPLACED}\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_character_device_is_never_replaced(dev_null_guarded: os.stat_result, writer: str) -> None:
    result = run(*WRITERS[writer](Path("/dev/null")), "--force")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"archc: error: /dev/null is a character device, {NEVER_REPLACED}\n"


def test_write_atomic_refuses_special_files(tmp_path: Path, dev_null_guarded: os.stat_result) -> None:
    os.mkfifo(tmp_path / "fifo")
    for target, kind in ((tmp_path / "fifo", "a named pipe (FIFO)"), (Path("/dev/null"), "a character device")):
        for force in (False, True):
            with pytest.raises(UsageError, match=f"^{re.escape(f'{target} is {kind}, {NEVER_REPLACED}')}$"):
                write_atomic(target, b"data", force=force)
    assert stat.S_ISFIFO((tmp_path / "fifo").lstat().st_mode)


def test_build_into_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    result = run("build", MLP, "-o", str(fifo), "--force")
    assert (result.exit_code, result.stderr) == (2, f"archc: error: {fifo} exists and is not a directory\n")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("below", ["m.py", "sub/m.py"])
@pytest.mark.parametrize("writer", [*sorted(WRITERS), "build"])
def test_a_file_on_the_output_path_is_named(tmp_path: Path, writer: str, below: str) -> None:
    """Was "File exists" (from mkdir), after the whole compile."""
    afile = tmp_path / "afile"
    afile.write_bytes(b"mine")
    target = afile / below
    args = ["build", MLP, "-o", str(target)] if writer == "build" else WRITERS[writer](target)
    result = run(*args)
    assert (result.exit_code, result.stderr) == (2, f"archc: error: {afile} is not a directory\n")
    assert afile.read_bytes() == b"mine"


@pytest.fixture
def read_only_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory this process may not write in: mode 0555, and as root (who may write anyway) os.access says so."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        original = os.access

        def access(path: object, mode: int, **kwargs: object) -> bool:
            if Path(os.fspath(path)) == locked and mode & os.W_OK:  # type: ignore[arg-type]
                return False
            return original(path, mode, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "access", access)
    yield locked
    locked.chmod(0o755)


@pytest.mark.parametrize("writer", [*sorted(WRITERS), "build"])
def test_an_unwritable_directory_is_refused_before_compiling(tmp_path: Path, read_only_dir: Path,
                                                              writer: str) -> None:
    """The spec is invalid: had archc compiled it first, the exit code would be 1 and the errors the spec's."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: {x: [3]}\nbody:\n  - linear: {out: -1}\n")
    if writer == "build":
        args = ["build", str(bad), "-o", str(read_only_dir / "out")]
    else:
        args = [a if a != MLP else str(bad) for a in WRITERS[writer](read_only_dir / "out.svg")]
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr == f"archc: error: cannot write into {read_only_dir}: permission denied\n"
    assert list(read_only_dir.iterdir()) == []


def test_an_output_directory_that_cannot_be_created_is_named(read_only_dir: Path) -> None:
    target = read_only_dir / "sub" / "deeper" / "m.py"
    result = run("export", "torch", MLP, "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr == (f"archc: error: cannot create {target.parent}: {read_only_dir} is not writable "
                             "(permission denied)\n")


# --- reproducible outputs ---------------------------------------------------------------------------------------------
def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    """One build in this process, one in a fresh interpreter: every artifact has the same bytes."""
    spec = str(ROOT / "specs" / "resnet18.yaml")
    first, second = tmp_path / "a", tmp_path / "b"
    assert run("build", spec, "-o", str(first), "--no-verify").exit_code == 0
    subprocess.run([*ARCHC, "build", spec, "-o", str(second), "--no-verify"], check=True, capture_output=True)
    assert sorted(p.name for p in first.iterdir()) == BUILD_FILES
    assert {n: sha(first / n) for n in BUILD_FILES} == {n: sha(second / n) for n in BUILD_FILES}


def test_two_diagrams_and_exports_are_byte_identical(tmp_path: Path) -> None:
    spec = str(ROOT / "specs" / "googlenet.yaml")
    for name in ("a.dot", "b.dot", "a.svg", "b.svg"):
        assert run("draw", spec, "-o", str(tmp_path / name)).exit_code == 0
    for name in ("a.onnx", "b.onnx"):
        assert run("export", "onnx", spec, "-o", str(tmp_path / name)).exit_code == 0
    for ext in ("dot", "svg", "onnx"):
        assert sha(tmp_path / f"a.{ext}") == sha(tmp_path / f"b.{ext}"), ext
