"""An output directory replaced as a unit: an interruption leaves the old complete set or the new one, never a mix.

The new files are written (each fsynced) into a sibling staging directory ``.NAME.PID-XXXXXXXX.new``, which is then
swapped with OUTDIR in one step (Linux ``renameat2(RENAME_EXCHANGE)``) and the old set, now under the staging name,
is removed. Where the exchange is missing, OUTDIR is renamed away to ``.NAME.PID-XXXXXXXX.old``, the new set renamed
in, and the old removed; a kill between those two renames leaves both complete sets beside the missing OUTDIR.
A staging or old directory left by a killed process (its PID gone, untouched for :data:`archc.io.STALE_SECONDS`) is
removed by the next write of the same OUTDIR.

What OUTDIR may hold: nothing, or only regular files with the names archc writes there (a build from this or an
earlier archc version, which had no manifest). Anything else (a user's file, a subdirectory, a symbolic link) makes
archc refuse, with or without ``--force``, so replacing the directory never destroys what archc did not write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from archc.errors import UsageError
from archc.io import (
    check_directory,
    confined,
    current_umask,
    exists_error,
    libc_function,
    stale_leftovers,
    sync_dir,
    write_atomic,
)

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}
"""renameat2's exchange refused: an old kernel or libc, or a file system without it."""


def check_outdir(outdir: str | os.PathLike[str], names: Collection[str], *, force: bool = False) -> Path:
    """Refuse an OUTDIR that :func:`replace_directory` of files named ``names`` may not replace; returns it."""
    target = Path(outdir)
    try:
        mode: int | None = target.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is None:
        check_directory(target.parent)
        return target
    if stat.S_ISLNK(mode):
        raise UsageError(f"refusing to write into {target}: it is a symbolic link; name the real directory")
    if not stat.S_ISDIR(mode):
        raise UsageError(f"{target} exists and is not a directory")
    present = _entries(target)
    foreign = sorted(name for name, is_file in present.items() if name not in names or not is_file)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UsageError(f"{target} holds files archc did not write ({shown}); refusing to replace it, even with "
                         "--force: move them away or choose another output directory")
    if present and not force:
        raise exists_error(target)
    check_directory(target.parent)
    check_directory(target)  # the old files are removed from it after the swap
    return target


def replace_directory(outdir: str | os.PathLike[str], files: Mapping[str, bytes], *, force: bool = False) -> list[Path]:
    """Make ``outdir`` hold exactly ``files`` (name -> bytes), swapped in as a unit; returns the files' paths."""
    target = check_outdir(outdir, files, force=force)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_siblings(target, files)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".new", dir=parent))
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700 directories; outputs get the usual permissions
        for name, data in files.items():
            write_atomic(confined(staging, name), data)
        sync_dir(staging)
        check_outdir(target, files, force=force)  # again: something may have appeared while the files were written
        _swap_in(staging, target)
        sync_dir(parent)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        _remove_tree(staging)  # the staging files on failure; after an exchange, the old set
    return [target / name for name in files]


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old ``target`` (if any) ends up at ``staging``'s name or is removed."""
    if not target.exists():
        os.rename(staging, target)  # replaces nothing but an empty directory created meanwhile
        return
    if _exchange(staging, target):
        return
    old = target.parent / f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}.old"
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove_tree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    renameat2 = libc_function("renameat2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove_stale_siblings(outdir: str | os.PathLike[str], names: Collection[str]) -> list[Path]:
    """Remove the staging and old directories of ``outdir`` left by killed writers; returns the ones removed.

    Only directories that hold nothing but regular files named in ``names`` are removed.
    """
    target = Path(outdir)
    removed: list[Path] = []
    for entry in stale_leftovers(target.parent, target.name, "new|old"):
        path = Path(entry.path)
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            present = _entries(path)
        except OSError:
            continue
        if all(is_file and name in names for name, is_file in present.items()):
            _remove_tree(path)
            removed.append(path)
    return removed


def _entries(directory: Path) -> dict[str, bool]:
    """Each entry's name -> whether it is a regular file (symbolic links are not)."""
    return {e.name: e.is_file(follow_symlinks=False) for e in os.scandir(directory)}


def _remove_tree(path: Path) -> None:
    with contextlib.suppress(OSError):  # what cannot be removed now is stale later, and removed by the next write
        shutil.rmtree(path)
