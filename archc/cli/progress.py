"""A progress display for long commands: a spinner with the current step on a terminal, silent elsewhere."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.status import Status


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.status: Status | None = None
        self.started = time.perf_counter()

    def __enter__(self) -> Progress:
        if self.enabled:
            self.status = self.console.status("starting")
            self.status.start()
        return self

    def step(self, what: str) -> None:
        if self.status is not None:
            self.status.update(f"{what} ({time.perf_counter() - self.started:.1f} s)")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.status is not None:
            self.status.stop()
