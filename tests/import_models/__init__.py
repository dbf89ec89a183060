"""Small PyTorch models for `archc import torch` tests, importable as `tests.import_models:NAME`."""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn(self.conv(x)))


class _Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.layer = nn.Sequential(_Block(8), _Block(8), _Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layer(self.stem(x))), 1))


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.odd = nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.odd(self.conv(x))


def small() -> nn.Module:
    """A stem, a stage of three residual blocks, a classifier."""
    torch.manual_seed(0)
    return _Small()


def unsupported() -> nn.Module:
    """A module archc's torch importer does not map (nn.Upsample)."""
    return _Recurrent()


NOT_A_MODEL = 3


def not_a_model() -> int:
    return NOT_A_MODEL
