"""Kill a real archc process while it writes, deterministically: stop it the moment it has a file open in a directory,
check that the file is still open (so the stop landed mid-write), and only then SIGKILL it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARCHC = [sys.executable, "-m", "archc"]


def has_open_file(pid: int, directory: Path) -> bool:
    """Whether ``pid`` holds a file descriptor on a file inside ``directory`` (an ``O_TMPFILE`` file counts: its
    link reads ``DIR/#INODE (deleted)``)."""
    prefix = str(directory) + os.sep
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
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


def kill_while_writing(args: list[str], directory: Path, timeout: float = 180.0) -> bool:
    """Run ``archc ARGS`` and SIGKILL it while it has a file open in ``directory``; True if it was killed so, False
    if it finished first (it closed every file it wrote before a stop could land)."""
    proc = subprocess.Popen([*ARCHC, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if has_open_file(proc.pid, directory):
                proc.send_signal(signal.SIGSTOP)
                _wait_stopped(proc.pid)
                if has_open_file(proc.pid, directory):  # stopped with the file still open: mid-write
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
