"""Atomic, confined output writing: an interrupted write leaves the old file (or nothing), never half a file.

On Linux the data goes to an anonymous file (``O_TMPFILE``) in the target's directory, is fsynced, and is then
linked in (``linkat``): a process killed while writing leaves nothing behind, since the kernel frees an unlinked
file with its last descriptor. A new file is linked straight to its name (``linkat`` never replaces, so that is also
the no-clobber check); replacing a file (``--force``) links to a hidden temp name and renames that over the target.
Where ``O_TMPFILE`` is missing (other systems, some file systems) a named temp file from ``mkstemp`` is written.

A named temp file is ``.NAME.PID-XXXXXXXX.tmp``. One left by a killed process (its PID no longer runs on this host,
and it has not changed for :data:`STALE_SECONDS`) is removed by the next write of the same name in that directory.

Every writer goes through :func:`check_target` (also called before any expensive work, so a refusal comes at once):
an existing target must be a regular file and is replaced only with ``force``; a FIFO, a device, a socket, a
directory or a symbolic link is never replaced, with or without ``force``. Names are checked so that nothing derived
from a spec escapes the output directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from archc.errors import UsageError

CHUNK = 1 << 20
"""Bytes per write call: large outputs are written in pieces, each a point where a kill can land."""
STALE_SECONDS = 60.0
"""A temp file untouched this long whose writer is gone is stale (a live writer on another host keeps it fresh)."""
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT}
"""``O_TMPFILE`` unsupported: by the file system, or by a kernel that reads the flag as ``O_DIRECTORY`` (EISDIR)."""
_NO_LINK = {errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
"""Linking an anonymous file in refused this way (no /proc, a sandbox, no privilege): try the next way."""
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


Chunks = Callable[[], Iterable[bytes | memoryview]]
"""A file's content as pieces, produced afresh on each call (a write may have to start over elsewhere)."""


def write_atomic(path: str | os.PathLike[str], data: bytes | Chunks, *, force: bool = False,
                 before_commit: Callable[[], None] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically; refuses what :func:`check_target` refuses. ``data`` may be a function
    giving the content in pieces, so that a large file is never one buffer in memory; it is called once.
    ``before_commit`` runs once the content is written and synced, before the file takes its name (the content's
    sources may be released there); whatever it raises leaves nothing written."""
    target = check_target(path, force=force)
    parent = target.parent
    commit = _Once(before_commit)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(parent, target.name)
        if not _write_anonymous(parent, target, data, force, commit):
            _write_named(parent, target, data, commit)
        sync_dir(parent)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def check_target(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse (:class:`UsageError`) an output path archc may not write; returns it as a Path.

    An existing target must be a regular file, replaced only with ``force``; anything else there (a FIFO, a device, a
    socket, a directory, a symbolic link) is refused with or without ``force``. The directory must exist and be
    writable, or be creatable: its nearest existing ancestor must be a writable directory.
    """
    target = Path(path)
    try:
        mode: int | None = target.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: an ancestor is a file, reported below
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    if mode is not None:
        _refuse_non_regular(target, mode)
        if not force:
            raise exists_error(target)
    check_directory(target.parent)
    return target


def check_directory(directory: str | os.PathLike[str]) -> None:
    """Refuse a directory that outputs cannot be written into or created as (a file on its path, no permission)."""
    wanted = Path(directory)
    probe = wanted
    while True:
        try:
            st = os.stat(probe)
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                raise UsageError(f"cannot create {wanted}: nothing on its path exists") from None
            probe = probe.parent
        except OSError as exc:
            raise UsageError(f"cannot write into {probe}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{probe} is not a directory")
    if not _writable(probe):
        why = "read-only file system" if _read_only_fs(probe) else "permission denied"
        raise UsageError(f"cannot write into {wanted}: {why}" if probe == wanted
                         else f"cannot create {wanted}: {probe} is not writable ({why})")


def _writable(directory: Path) -> bool:
    effective = os.access in os.supports_effective_ids  # the permissions the writer really has (setuid, sudo -u)
    return os.access(directory, os.W_OK | os.X_OK, effective_ids=effective) and not _read_only_fs(directory)


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse_non_regular(target: Path, mode: int) -> None:
    if stat.S_ISLNK(mode):
        raise UsageError(f"refusing to write through the symbolic link {target}")
    if stat.S_ISDIR(mode):
        raise UsageError(f"{target} is a directory")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise UsageError(f"{target} is {kind}, not a regular file; archc never replaces one, even with --force")


def _check_replaceable(target: Path) -> None:
    """Right before a rename over ``target``: what appeared there since :func:`check_target` must be a regular file."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    _refuse_non_regular(target, mode)


def exists_error(target: Path) -> UsageError:
    return UsageError(f"{target} exists; pass --force to replace it")


def _write_fully(fd: int, data: bytes | Chunks) -> None:
    for piece in (data,) if isinstance(data, bytes) else data():
        view = memoryview(piece).cast("B")
        while view:
            written = os.write(fd, view[:CHUNK])
            view = view[written:]


class _Once:
    """``before_commit``, run at most once whichever way the file is written."""

    def __init__(self, action: Callable[[], None] | None) -> None:
        self.action = action

    def __call__(self) -> None:
        action, self.action = self.action, None
        if action is not None:
            action()


def _write_anonymous(parent: Path, target: Path, data: bytes | Chunks, force: bool, commit: _Once) -> bool:
    """Write through an ``O_TMPFILE`` file; False when the system or file system has none (nothing was written), or
    when it cannot be linked in, after writing its content by :func:`_write_named`."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    try:
        fd = os.open(parent, flag | os.O_RDWR | os.O_CLOEXEC, 0o666)  # the umask applies, as for any new file
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return False
        raise
    try:
        _write_fully(fd, data)
        os.fsync(fd)
        commit()
        try:
            linked = _link(fd, target)  # atomic, and never replaces anything
        except FileExistsError:
            if not force:
                raise exists_error(target) from None
            linked = None
        if linked is False:
            _write_named(parent, target, functools.partial(_read_back, fd), commit)  # data is made once
        if linked is not None:
            return True
        tmp = parent / _temp_name(target.name)
        if not _link(fd, tmp):
            _write_named(parent, target, functools.partial(_read_back, fd), commit)
            return True
        try:
            _check_replaceable(target)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True
    finally:
        os.close(fd)


def _link(fd: int, dst: Path) -> bool:
    """Give the anonymous file ``fd`` the name ``dst``; False when this system allows neither way of doing it.

    ``linkat`` of ``/proc/self/fd/N`` is the unprivileged way; some sandboxes refuse it (EXDEV), where
    ``linkat(fd, "", AT_EMPTY_PATH)`` may still work (it needs CAP_DAC_READ_SEARCH before Linux 6.10).
    """
    try:
        os.link(f"/proc/self/fd/{fd}", dst)  # follows the magic link: linkat(AT_SYMLINK_FOLLOW)
        return True
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    libc_linkat = libc_function("linkat", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    if libc_linkat is None:
        return False
    if libc_linkat(fd, b"", _AT_FDCWD, os.fsencode(dst), _AT_EMPTY_PATH) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_LINK:
        return False
    raise OSError(err, os.strerror(err), str(dst))


@functools.cache
def libc_function(name: str, *argtypes: type) -> Callable[..., int] | None:
    """The C library's ``name`` (returning an int, errno kept); None where this system's libc has none."""
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


def _read_back(fd: int) -> Iterator[bytes]:
    """The content of the file open as ``fd``, from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK):
        yield chunk


def _write_named(parent: Path, target: Path, data: bytes | Chunks, commit: _Once) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        try:
            _write_fully(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        commit()
        _check_replaceable(target)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"


def sync_dir(parent: Path) -> None:
    """Make the new directory entry durable too (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """Remove temp files of ``name`` left in ``directory`` by killed writers; returns the ones removed."""
    removed: list[Path] = []
    for entry in stale_leftovers(directory, name, "tmp"):
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def stale_leftovers(directory: str | os.PathLike[str], name: str, suffixes: str) -> Iterator[os.DirEntry[str]]:
    """Entries ``.NAME.PID-XXXXXXXX.SUFFIX`` of ``directory`` (``suffixes`` a regex alternative) that are stale.

    Stale: the writing PID no longer runs here and the entry has not changed for :data:`STALE_SECONDS`.
    """
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)-\w+\.(?:" + suffixes + ")")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or writer_alive(int(match.group(1))):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < STALE_SECONDS:
                continue
        except OSError:
            continue
        yield entry


def writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a PID at all: leave the file alone
    return True


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def confined(outdir: str | os.PathLike[str], name: str) -> Path:
    """``outdir / name``, refusing absolute names, traversal and symlinked directories."""
    base = Path(outdir)
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts or not candidate.parts:
        raise UsageError(f"refusing output name {name!r}: it must stay inside {base}")
    if base.is_symlink():
        raise UsageError(f"refusing to write into {base}: it is a symbolic link; name the real directory")
    if base.exists() and not base.is_dir():
        raise UsageError(f"{base} exists and is not a directory")
    resolved_base = base.resolve()
    resolved = (base / candidate).resolve()
    if resolved_base not in resolved.parents:
        raise UsageError(f"refusing output name {name!r}: it resolves outside {base}")
    return base / candidate
