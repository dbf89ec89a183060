"""Bytes alive at each layer of a pass, as a function of the batch: the most any layer holds is the peak.

Each layer holds some bytes per sample and some whatever the batch (a masked weight, batch norm's statistics,
parameter gradients), so the peak at a batch is the largest of straight lines, and the largest batch that fits a
budget is the smallest of each layer's own limit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    per_sample: dict[str, int]
    """Layer -> bytes per sample alive while it runs."""
    fixed: dict[str, int]
    """Layer -> bytes alive while it runs whatever the batch."""

    def alive(self, name: str, batch: int) -> int:
        return self.per_sample[name] * batch + self.fixed[name]

    def at(self, batch: int) -> int:
        """The peak at ``batch``."""
        return max((self.alive(name, batch) for name in self.per_sample), default=0)

    def where(self, batch: int) -> str:
        """The layer running at the peak (the first of equals)."""
        return max(self.per_sample, key=lambda name: self.alive(name, batch), default="")

    def largest_batch(self, room: int) -> int:
        """The largest batch whose peak fits ``room`` bytes (0: not even one sample)."""
        if any(fixed > room for fixed in self.fixed.values()):
            return 0
        limits = [(room - self.fixed[name]) // n for name, n in self.per_sample.items() if n]
        return max(0, min(limits, default=room))
