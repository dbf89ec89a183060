"""Atomic, confined output writing: a temp file in the target directory, fsync, then rename.

An interrupted write leaves the old file (or nothing), never half a file. Names are checked so that nothing derived
from a spec escapes the output directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from archc.errors import UsageError


def write_atomic(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    target = Path(path)
    if target.is_symlink():
        raise UsageError(f"refusing to write through the symbolic link {target}")
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to replace it")
    if target.exists() and target.is_dir():
        raise UsageError(f"{target} is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def confined(outdir: str | os.PathLike[str], name: str) -> Path:
    """``outdir / name``, refusing absolute names, traversal and symlinked directories."""
    base = Path(outdir)
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts or not candidate.parts:
        raise UsageError(f"refusing output name {name!r}: it must stay inside {base}")
    resolved_base = base.resolve()
    resolved = (base / candidate).resolve()
    if resolved_base not in resolved.parents:
        raise UsageError(f"refusing output name {name!r}: it resolves outside {base}")
    return base / candidate
