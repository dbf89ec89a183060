"""The peer of `archc summary`: a torchinfo summary of the torchvision model, as one whole process.

Usage: python bench/peer_torchinfo.py MODEL   (a torchvision model name, e.g. resnet50)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import torchvision_model


def main() -> None:
    from torchinfo import summary

    model = torchvision_model(sys.argv[1])
    print(summary(model, input_size=(1, 3, 224, 224), verbose=0))


if __name__ == "__main__":
    main()
