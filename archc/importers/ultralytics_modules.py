"""The Ultralytics modules a model YAML names, written as archc layers with Ultralytics' module paths as ids
(``2.m.0.cv1.conv`` for ``model.2.m.0.cv1.conv``): the ``state_dict`` keys of an Ultralytics checkpoint without the
``model.`` prefix. A row that is one parameter-free layer gets its kind after the row number (``11.cat``), since an
id of digits alone would read as an index.

Each function follows the module's constructor and ``forward`` in ``ultralytics/nn/modules`` (block.py, conv.py,
head.py): Conv is Conv2d without bias, BatchNorm2d and SiLU; batch norms carry the eps 1e-3 and momentum 0.03 that
``initialize_weights`` sets on every ``nn.BatchNorm2d`` of a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.importers.flat import FlatLayer
from archc.importers.problems import window_floor

Shape = tuple[int, ...]
BN = {"eps": 0.001, "momentum": 0.03}
REG_MAX = 16  # Detect's distribution focal loss bins per box side


@dataclass
class Tensor:
    id: str
    shape: Shape


@dataclass
class ModuleWriter:
    origin: str
    layers: list[FlatLayer] = field(default_factory=list)
    act: tuple[str, dict[str, Any]] = ("silu", {})
    kinds: dict[str, str] = field(default_factory=dict)
    """Module path -> Ultralytics module type, for naming the recovered blocks."""

    def add(self, layer_id: str, op: str, params: dict[str, Any], inputs: list[Tensor], shape: Shape,
            note: str = "") -> Tensor:
        self.layers.append(FlatLayer(layer_id, op, params, [t.id for t in inputs], self.origin, note))
        return Tensor(layer_id, shape)

    # --- ultralytics.nn.modules.conv ---------------------------------------------------------------------------------
    def conv(self, path: str, x: Tensor, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True) -> Tensor:
        """Conv(c1, c2, k, s, autopad(k), g): conv (no bias), bn, SiLU."""
        self.kinds[path] = "Conv"
        p = k // 2
        _, h, w = x.shape
        params: dict[str, Any] = {"out": c2, "k": k, "s": s, "p": p}  # always: every Conv is one block's call
        if g != 1:
            params["groups"] = g
        params["bias"] = False
        y = self.add(f"{path}.conv", "conv", params, [x], (c2, window_floor(h, k, s, 2 * p),
                                                            window_floor(w, k, s, 2 * p)))
        y = self.add(f"{path}.bn", "bn", dict(BN), [y], y.shape)
        if act:
            op, act_params = self.act
            y = self.add(f"{path}.act", op, dict(act_params), [y], y.shape)
        return y

    def conv2d(self, path: str, x: Tensor, c2: int, k: int = 1) -> Tensor:
        """A plain nn.Conv2d with bias (Detect's last layer of each branch)."""
        _, h, w = x.shape
        return self.add(path, "conv", {"out": c2, "k": k, "p": k // 2} if k // 2 else {"out": c2, "k": k}, [x],
                        (c2, window_floor(h, k, 1, 2 * (k // 2)), window_floor(w, k, 1, 2 * (k // 2))))

    # --- ultralytics.nn.modules.block --------------------------------------------------------------------------------
    def bottleneck(self, path: str, x: Tensor, c2: int, shortcut: bool = True, g: int = 1, k: tuple[int, int] = (3, 3),
                   e: float = 0.5) -> Tensor:
        """Bottleneck: cv1 (k[0]) to int(c2 * e), cv2 (k[1], groups g) to c2, plus the input when shortcut and
        the channels agree."""
        self.kinds[path] = "Bottleneck"
        hidden = int(c2 * e)
        y = self.conv(f"{path}.cv1", x, hidden, k[0])
        y = self.conv(f"{path}.cv2", y, c2, k[1], g=g)
        if shortcut and x.shape[0] == c2:
            y = self.add(f"{path}.add", "add", {}, [x, y], y.shape)
        return y

    def c2f(self, path: str, x: Tensor, c2: int, n: int = 1, shortcut: bool = False, g: int = 1,
            e: float = 0.5) -> Tensor:
        """C2f: cv1 to 2c, chunk in two halves, n bottlenecks on the last half each feeding the next, all parts
        concatenated, cv2 to c2."""
        self.kinds[path] = "C2f"
        c = int(c2 * e)
        y = self.conv(f"{path}.cv1", x, 2 * c)
        _, h, w = y.shape
        parts = [self.add(f"{path}.chunk0", "slice", {"axis": 0, "start": 0, "end": c}, [y], (c, h, w),
                          note="cv1's output .chunk(2, 1)"),
                 self.add(f"{path}.chunk1", "slice", {"axis": 0, "start": c, "end": 2 * c}, [y], (c, h, w))]
        for i in range(n):
            parts.append(self.bottleneck(f"{path}.m.{i}", parts[-1], c, shortcut, g, (3, 3), 1.0))
        cat = self.add(f"{path}.cat", "concat", {}, parts, ((2 + n) * c, h, w))
        return self.conv(f"{path}.cv2", cat, c2)

    def c3(self, path: str, x: Tensor, c2: int, n: int = 1, shortcut: bool = True, g: int = 1,
           e: float = 0.5) -> Tensor:
        """C3 (YOLOv5): cv1 then n bottlenecks (1x1 then 3x3), beside cv2 of the input, concatenated, cv3 to c2."""
        self.kinds[path] = "C3"
        hidden = int(c2 * e)
        y = self.conv(f"{path}.cv1", x, hidden)
        for i in range(n):
            y = self.bottleneck(f"{path}.m.{i}", y, hidden, shortcut, g, (1, 3), 1.0)
        side = self.conv(f"{path}.cv2", x, hidden)
        _, h, w = y.shape
        cat = self.add(f"{path}.cat", "concat", {}, [y, side], (2 * hidden, h, w))
        return self.conv(f"{path}.cv3", cat, c2)

    def sppf(self, path: str, x: Tensor, c2: int, k: int = 5) -> Tensor:
        """SPPF: cv1 to c1 // 2, the same k x k stride-1 max pooling three times in a row, all four concatenated,
        cv2 to c2."""
        self.kinds[path] = "SPPF"
        hidden = x.shape[0] // 2
        y = self.conv(f"{path}.cv1", x, hidden)
        parts = [y]
        for i in range(3):  # one nn.MaxPool2d module applied three times
            parts.append(self.add(f"{path}.m" if i == 0 else f"{path}.m_{i}", "maxpool",
                                  {"k": k, "s": 1, "p": k // 2}, [parts[-1]], y.shape))
        _, h, w = y.shape
        cat = self.add(f"{path}.cat", "concat", {}, parts, (4 * hidden, h, w))
        return self.conv(f"{path}.cv2", cat, c2)

    # --- ultralytics.nn.modules.head ---------------------------------------------------------------------------------
    def detect(self, path: str, levels: list[Tensor], nc: int) -> tuple[list[Tensor], Tensor]:
        """Detect: per level, a box branch (cv2: two 3x3 Convs and a 1x1 Conv2d to 4 x reg_max) and a class branch
        (cv3: two 3x3 Convs and a 1x1 Conv2d to nc) concatenated, as Detect returns them in training mode; and the
        DFL decoding of the box distributions of all levels (the inference path up to the anchors)."""
        self.kinds[path] = "Detect"
        c2 = max(16, levels[0].shape[0] // 4, REG_MAX * 4)
        c3 = max(levels[0].shape[0], min(nc, 100))
        boxes, classes = [], []
        for i, x in enumerate(levels):  # in the modules' order: every level's cv2, then every level's cv3
            box = self.conv(f"{path}.cv2.{i}.0", x, c2, 3)
            box = self.conv(f"{path}.cv2.{i}.1", box, c2, 3)
            boxes.append(self.conv2d(f"{path}.cv2.{i}.2", box, 4 * REG_MAX))
        for i, x in enumerate(levels):
            cls = self.conv(f"{path}.cv3.{i}.0", x, c3, 3)
            cls = self.conv(f"{path}.cv3.{i}.1", cls, c3, 3)
            classes.append(self.conv2d(f"{path}.cv3.{i}.2", cls, nc))
        outputs = []
        for i, (box, cls) in enumerate(zip(boxes, classes, strict=True)):
            _, h, w = box.shape
            outputs.append(self.add(f"{path}.cat{i}", "concat", {}, [box, cls], (4 * REG_MAX + nc, h, w),
                                    note=f"level {i}: box distributions then class scores"))
        return outputs, self.dfl(path, boxes)

    def dfl(self, path: str, boxes: list[Tensor]) -> Tensor:
        """DFL: the box distributions of all levels as [4 x 16, anchors], a softmax over each side's 16 bins and
        their expectation, a 1x1 convolution with the fixed weights 0..15 (not trained in Ultralytics): [4, anchors]
        distances in grid cells."""
        flat = []
        for i, box in enumerate(boxes):
            c, h, w = box.shape
            flat.append(self.add(f"{path}.view{i}", "reshape", {"shape": [c, h * w]}, [box], (c, h * w, 1)))
        anchors = sum(t.shape[1] for t in flat)
        y = self.add(f"{path}.boxes", "concat", {"axis": 1}, flat, (4 * REG_MAX, anchors, 1))
        y = self.add(f"{path}.dfl.view", "reshape", {"shape": [4, REG_MAX, anchors]}, [y], (4, REG_MAX, anchors))
        y = self.add(f"{path}.dfl.transpose", "permute", {"axes": [1, 0, 2]}, [y], (REG_MAX, 4, anchors))
        y = self.add(f"{path}.dfl.softmax", "softmax", {"axis": 0}, [y], y.shape)
        y = self.add(f"{path}.dfl.conv", "conv", {"out": 1, "k": 1, "bias": False}, [y], (1, 4, anchors),
                     note="Ultralytics fixes these 16 weights to 0..15 (requires_grad False): load them from a "
                          "checkpoint")
        return self.add(f"{path}.dfl.out", "reshape", {"shape": [4, anchors]}, [y], (4, anchors, 1))
