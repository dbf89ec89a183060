"""Kill a real archc process while it writes, deterministically: stop it the moment it has a file open in a directory,
check that the file is still open (so the stop landed mid-write), and only then SIGKILL it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ARCHC = [sys.executable, "-m", "archc"]


def has_open_file(pid: int, where: Path | re.Pattern[str]) -> bool:
    """Whether ``pid`` holds a file descriptor on a file inside the directory ``where`` (or whose path matches the
    pattern ``where``). An ``O_TMPFILE`` file counts: its link reads ``DIR/#INODE (deleted)``."""
    pattern = where if isinstance(where, re.Pattern) else re.compile(re.escape(str(where) + os.sep))
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if pattern.match(os.readlink(f"/proc/{pid}/fd/{fd}")):
                return True
        except OSError:
            continue
    return False


def _wait_stopped(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
        if state in ("T", "t"):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop")


def kill_while_writing(args: list[str], where: Path | re.Pattern[str], timeout: float = 180.0) -> bool:
    """Run ``archc ARGS`` and SIGKILL it while it has a file open in ``where`` (see :func:`has_open_file`); True if
    it was killed so, False if it finished first (it closed every file it wrote before a stop could land)."""
    proc = subprocess.Popen([*ARCHC, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if has_open_file(proc.pid, where):
                proc.send_signal(signal.SIGSTOP)
                _wait_stopped(proc.pid)
                if has_open_file(proc.pid, where):  # stopped with the file still open: mid-write
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return proc.returncode == -signal.SIGKILL
                proc.send_signal(signal.SIGCONT)  # it closed the file just before the stop: watch for the next one
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
