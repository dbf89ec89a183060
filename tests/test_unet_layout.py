"""Encoder-decoder networks drawn as a U: skip pairs found from shapes and edges, levels of equal resolution on one
rank, skip edges straight across; measured on Graphviz's own layout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from archc.compiler import Compiled, compile_file, compile_text
from archc.emit.diagram import FigureOptions, to_dot
from archc.emit.diagram.levels import skip_pairs

SPECS = Path(__file__).resolve().parent.parent / "specs"
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
UNET_PAIRS = [("enc4.3", "up4.1"), ("enc3.3", "up3.1"), ("enc2.3", "up2.1"), ("enc1.3", "up1.1")]


@pytest.fixture(scope="module")
def unet() -> Compiled:
    return compile_file(SPECS / "unet.yaml")


def layout(dot: str) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Node centres (points) and the drawing's width and height (points) from ``dot -Tjson``."""
    data = json.loads(subprocess.run(["dot", "-Tjson"], input=dot.encode(), capture_output=True,
                                     check=True).stdout)
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    nodes = {}
    for obj in data.get("objects", []):
        if "pos" in obj and "nodes" not in obj:
            x, y = (float(v) for v in obj["pos"].split(","))
            nodes[obj["name"]] = (x, y)
    return nodes, (x1 - x0, y1 - y0)


def test_skip_pairs_come_from_shapes_not_names(unet: Compiled) -> None:
    assert skip_pairs(unet.graph) == UNET_PAIRS
    renamed = (SPECS / "unet.yaml").read_text()
    for old, new in (("enc", "left"), ("up", "right"), ("bottleneck", "middle"), ("pool", "down")):
        renamed = re.sub(rf"\b{old}(\d*)\b", rf"{new}\1", renamed)
    pairs = skip_pairs(compile_text(renamed).graph)
    assert pairs == [(a.replace("enc", "left"), m.replace("up", "right")) for a, m in UNET_PAIRS]


@pytest.mark.parametrize("spec", ["densenet121", "googlenet", "resnet50", "inception_v3", "squeezenet1_0",
                                  "efficientnet_b0", "attention_head", "swin_t"])
def test_merges_of_equal_maps_without_a_down_and_up_detour_are_not_skips(spec: str) -> None:
    # DenseNet's concats and ResNet's adds join equal maps too, but nothing between them is smaller; the squeeze and
    # excitation of EfficientNet dips beside a main path that keeps the resolution; an attention mask reshaped back
    # to a map, and Swin's window partition, are reshapes, not a way back up
    assert skip_pairs(compile_file(SPECS / f"{spec}.yaml").graph) == []
    assert "rank=same" not in to_dot(compile_file(SPECS / f"{spec}.yaml"), options=_no_insets())


def _no_insets() -> FigureOptions:
    return FigureOptions(insets=False)


@NEEDS_DOT
def test_unet_is_a_u_with_horizontal_skips(unet: Compiled) -> None:
    dot = to_dot(unet)
    nodes, (width, height) = layout(dot)
    for enc, merge in UNET_PAIRS:
        assert nodes[enc][1] == pytest.approx(nodes[merge][1]), (enc, merge)  # same rank: the skip runs across
        assert nodes[merge][0] > nodes[enc][0]
    # one rank per resolution: 512, 256, 128, 64, 32 (the bottleneck at the bottom)
    spatial = [n.name for n in unet.graph.nodes() if n.out_type is not None and n.out_type.rank == 3]
    assert len({round(nodes[n][1], 1) for n in spatial}) == 5
    assert nodes["bottleneck.conv1"][1] < nodes["enc4.conv1"][1] < nodes["enc1.conv1"][1]  # dot's y grows upward
    assert nodes["up1.1"][1] > nodes["up4.1"][1]  # the decoder climbs back
    assert width > height  # was 986 x 4436 px as a diagonal staircase
    assert height < 12 * 72
    # the decoder's climbing edges are written reversed so the ranking keeps them upward
    assert re.search(r'"up4\.upconv" -> "bottleneck\.3" \[dir="back"\];', dot)


@NEEDS_DOT
def test_unet_left_to_right_keeps_the_levels_as_columns(unet: Compiled) -> None:
    nodes, (width, height) = layout(to_dot(unet, direction="LR"))
    for enc, merge in UNET_PAIRS:
        assert nodes[enc][0] == pytest.approx(nodes[merge][0])
    assert 1 / 3 <= width / height <= 3


TINY_U = """
name: tiny_u
inputs: {x: [3, 32, 32]}
body:
  - conv: {id: a, out: 8, k: 3, p: 1}
  - conv: {id: down, out: 16, k: 3, s: 2, p: 1}
  - conv: {id: deep, out: 16, k: 3, p: 1}
  - upsample: {id: up, scale: 2}
  - conv: {id: back, out: 8, k: 1}
  - add: {id: join, from: [a, back]}
  - conv: {id: head, out: 2, k: 1}
"""


@NEEDS_DOT
def test_an_upsampling_decoder_joined_by_add_is_a_u_too() -> None:
    compiled = compile_text(TINY_U)
    assert skip_pairs(compiled.graph) == [("a", "join")]
    nodes, _ = layout(to_dot(compiled))
    assert nodes["a"][1] == pytest.approx(nodes["join"][1]) == pytest.approx(nodes["back"][1])
    assert nodes["deep"][1] < nodes["a"][1]
