"""Resource limits checked before anything large is built.

Every limit is checked analytically (from sizes in the source or in the inferred shapes), never by trying: a hostile
spec must be refused before it can exhaust time or memory. All limits can be raised by callers that mean it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

LIMIT_MIN = 1
LIMIT_MAX = 2**62
"""Every limit lies in [LIMIT_MIN, LIMIT_MAX]: 0 or a negative value would refuse everything (or wrap around in a
comparison), and a larger one is no limit but an overflow waiting in the arithmetic that checks it."""
LIMIT_MAX_BY_NAME = {"max_file_bytes": 2**30}
"""Tighter maxima: a spec file is read into memory in one piece, sized by its limit."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 2 * 1024 * 1024
    """Largest spec file read, in bytes."""
    max_depth: int = 64
    """Deepest nesting of YAML collections."""
    max_yaml_nodes: int = 500_000
    """Most YAML nodes after expanding aliases (guards against alias bombs)."""
    max_scalar_chars: int = 10_000
    """Longest single scalar."""
    max_layers: int = 200_000
    """Most graph nodes after expanding blocks and repeats."""
    max_steps: int = 1_000_000
    """Most steps lowered after expanding blocks and repeats, counting steps skipped by `if`."""
    max_block_depth: int = 32
    """Deepest chain of block calls (a block calling itself is refused sooner)."""
    max_params: int = 10_000_000_000
    """Most trainable parameters plus buffers in a model."""
    max_tensor_elements: int = 2**31 - 1
    """Most elements in one tensor (batch 1)."""
    max_activation_bytes: int = 64 * 1024**3
    """Most bytes of all layer outputs together (batch 1)."""
    max_dim: int = 1_000_000
    """Largest single dimension (channels, height, width, features)."""
    max_build_bytes: int = 4 * 1024**3
    """Most memory, in bytes, that building the PyTorch module, exporting it to ONNX and verifying it may take
    (weights in every copy the steps hold, plus the activations of the verification batches)."""
    max_verify_macs: int = 2 * 10**12
    """Most multiply-accumulates that verifying an ONNX export against PyTorch may run (every sample of every
    verification batch, in both runtimes). VGG-16's 93 G took 9 s on two busy shared cores; U-Net's 1.2 T fits."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value, most = getattr(self, f.name), LIMIT_MAX_BY_NAME.get(f.name, LIMIT_MAX)
            if isinstance(value, bool) or not isinstance(value, int) or not LIMIT_MIN <= value <= most:
                raise ValueError(f"{f.name}: expected an integer from {LIMIT_MIN} to 2**{most.bit_length() - 1} "
                                 f"({most:,}); got {value!r}")

    def with_overrides(self, overrides: dict[str, int]) -> Limits:
        """These limits with some replaced; KeyError for an unknown name, ValueError for a value out of range."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise KeyError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(self, **overrides)


DEFAULT_LIMITS = Limits()
