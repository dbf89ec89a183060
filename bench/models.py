"""The zoo specs that have a torchvision counterpart, and how to build that counterpart."""

from __future__ import annotations

from typing import Any

# spec file stem -> (torchvision model name, constructor options matching what the spec describes)
PEERS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet50": ("resnet50", {}),
    "vgg16": ("vgg16", {}),
    "densenet121": ("densenet121", {}),
    "googlenet": ("googlenet", {"aux_logits": False, "init_weights": False}),
    "vit_b_16": ("vit_b_16", {}),
    "swin_t": ("swin_t", {}),
}


def torchvision_model(spec_stem: str) -> Any:
    """The torchvision model for a spec stem, random weights. Imports torch: call only in worker processes."""
    from tests.torchvision_ref import torchvision_model as build

    name, options = PEERS[spec_stem]
    return build(name, **options)
