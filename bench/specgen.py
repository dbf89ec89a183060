"""Synthetic specs of a chosen size, for the static-analysis scaling figures.

``chain``: conv/bn/relu triples written out one step per line, so parsing and validation scale with the size too.
``stage``: the same chain as one `stage` of a repeated conv/bn/relu block, which diagrams fold.
``dense``: DenseNet-like: dense blocks of 12 layers (bn, relu, 3x3 conv, concat with the block input via a `residual`
with `merge: concat`) called through a `stage`, each followed by a transition that brings the channels back to 64.
"""

from __future__ import annotations

from pathlib import Path

DENSE_LAYERS_PER_BLOCK = 12
_DENSE_GROUP_NODES = DENSE_LAYERS_PER_BLOCK * 4 + 3  # bn, relu, conv, concat per layer; bn, relu, conv per transition


def chain_spec(layers: int) -> str:
    """About ``layers`` graph nodes (a multiple of 3, plus the input)."""
    lines = ["name: chain", "inputs: {x: [16, 8, 8]}", "body:"]
    for _ in range(max(1, layers // 3)):
        lines += ["  - conv: {out: 16, k: 3, p: 1, bias: false}", "  - bn", "  - relu"]
    return "\n".join(lines) + "\n"


def dense_spec(layers: int) -> str:
    """About ``layers`` graph nodes, in whole dense blocks of 51 nodes."""
    lines = [
        "name: dense",
        "inputs: {x: [64, 8, 8]}",
        "blocks:",
        "  dense_layer:",
        "    args: {growth: 32}",
        "    body:",
        "      - residual:",
        "          merge: concat",
        "          body:",
        "            - bn",
        "            - relu",
        "            - conv: {out: $growth, k: 3, p: 1, bias: false}",
        "  transition:",
        "    body: [bn, relu, {conv: {out: 64, k: 1, bias: false}}]",
        "body:",
    ]
    for g in range(max(1, round(layers / _DENSE_GROUP_NODES))):
        lines += [f"  - stage: {{id: block{g}, block: dense_layer, repeat: {DENSE_LAYERS_PER_BLOCK}}}",
                  f"  - transition: {{id: trans{g}}}"]
    return "\n".join(lines) + "\n"


def stage_spec(layers: int) -> str:
    """The chain of :func:`chain_spec` as one `stage` repeating a conv/bn/relu block: what a diagram folds."""
    return "\n".join([
        "name: stage_chain",
        "inputs: {x: [16, 8, 8]}",
        "blocks:",
        "  unit:",
        "    body: [{conv: {out: 16, k: 3, p: 1, bias: false}}, bn, relu]",
        "body:",
        f"  - stage: {{id: chain, block: unit, repeat: {max(1, layers // 3)}}}",
    ]) + "\n"


GENERATORS = {"chain": chain_spec, "dense": dense_spec, "stage": stage_spec}


def write_spec(directory: Path, kind: str, layers: int) -> Path:
    path = directory / f"{kind}_{layers}.yaml"
    path.write_text(GENERATORS[kind](layers))
    return path
