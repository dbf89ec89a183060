"""Each op's shape and cost rule, checked against hand-computed values."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import Problem, SpecError
from archc.ir.types import TensorType
from archc.ops.registry import get_op


def infer(op: str, params: dict, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    o = get_op(op)
    assert o is not None
    return o.infer(o.Params.model_validate(params), [TensorType(s) for s in shapes]).shape


def cost(op: str, params: dict, *shapes: tuple[int, ...]):
    o = get_op(op)
    assert o is not None
    p = o.Params.model_validate(params)
    ins = [TensorType(s) for s in shapes]
    return o.cost(p, ins, o.infer(p, ins))


@pytest.mark.parametrize(("params", "shape", "expected"), [
    ({"out": 64, "k": 7, "s": 2, "p": 3}, (3, 224, 224), (64, 112, 112)),
    ({"out": 8, "k": 3}, (3, 10, 9), (8, 8, 7)),
    ({"out": 8, "k": [1, 7], "p": [0, 3]}, (4, 17, 17), (8, 17, 17)),
    ({"out": 8, "k": [7, 1], "p": [3, 0]}, (4, 17, 17), (8, 17, 17)),
    ({"out": 8, "k": 3, "d": 2, "p": 2}, (4, 9, 9), (8, 9, 9)),
    ({"out": 8, "k": 3, "d": 2}, (4, 9, 9), (8, 5, 5)),
    ({"out": 8, "k": 3, "p": "same"}, (4, 9, 11), (8, 9, 11)),
    ({"out": 8, "k": 4, "p": "same"}, (4, 9, 11), (8, 9, 11)),
    ({"out": 8, "k": 3, "p": "valid", "s": 2}, (4, 9, 11), (8, 4, 5)),
    ({"out": 16, "k": 5}, (1, 32), (16, 28)),  # 1-D by input rank
    ({"out": 6, "k": 3}, (2, 5, 6, 7), (6, 3, 4, 5)),  # 3-D by input rank
    ({"k": 3, "p": 1, "depthwise": True}, (32, 14, 14), (32, 14, 14)),
    ({"out": 64, "k": 3, "p": 1, "groups": 4, "s": 2}, (32, 15, 15), (64, 8, 8)),
])
def test_conv_shapes(params: dict, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert infer("conv", params, shape) == expected


def test_conv_costs_match_hand_formula() -> None:
    c = cost("conv", {"out": 64, "k": 7, "s": 2, "p": 3, "bias": False}, (3, 224, 224))
    assert c.params == 64 * 3 * 49 == 9408
    assert c.macs == 64 * 112 * 112 * 3 * 49 == 118_013_952
    g = cost("conv", {"out": 64, "k": 3, "p": 1, "groups": 4}, (32, 8, 8))
    assert g.params == 64 * (32 // 4) * 9 + 64
    assert g.macs == 64 * 8 * 8 * 8 * 9
    assert g.connections == 64 * 8 * 8 * (8 * 9 + 1)
    dw = cost("conv", {"k": 3, "p": 1, "depthwise": True, "bias": False}, (32, 14, 14))
    assert (dw.params, dw.macs) == (32 * 9, 32 * 14 * 14 * 9)


@pytest.mark.parametrize(("params", "shape", "code"), [
    ({"out": 64, "k": 3, "groups": 3}, (32, 8, 8), "E303"),
    ({"out": 8, "k": 9}, (3, 4, 4), "E304"),
    ({"out": 8, "k": 3}, (512,), "E305"),
    ({"out": 8, "k": [3, 3, 3]}, (3, 8, 8), "E306"),
    ({"out": 8, "k": 3, "s": 2, "p": "same"}, (3, 8, 8), "E306"),
])
def test_conv_errors(params: dict, shape: tuple[int, ...], code: str) -> None:
    with pytest.raises(Problem) as err:
        infer("conv", params, shape)
    assert err.value.code == code


@pytest.mark.parametrize(("op", "params", "shape", "expected"), [
    ("maxpool", {"k": 3, "s": 2, "p": 1}, (64, 112, 112), (64, 56, 56)),
    ("maxpool", {"k": 3, "s": 2}, (96, 55, 55), (96, 27, 27)),
    ("maxpool", {"k": 3, "s": 2, "ceil_mode": True}, (64, 112, 112), (64, 56, 56)),
    ("maxpool", {"k": 3, "s": 2}, (64, 112, 112), (64, 55, 55)),
    ("maxpool", {"k": 2, "s": 2, "ceil_mode": True}, (8, 7, 7), (8, 4, 4)),
    ("maxpool", {"k": 3, "s": 2, "ceil_mode": True}, (192, 15, 15), (192, 7, 7)),
    ("avgpool", {"k": 2}, (6, 28, 28), (6, 14, 14)),
    ("avgpool", {"k": 3, "s": 1, "p": 1}, (6, 5, 7), (6, 5, 7)),
    ("avgpool", {"k": 2}, (6, 9), (6, 4)),
    ("global_avgpool", {}, (2048, 7, 7), (2048, 1, 1)),
    ("global_avgpool", {"keepdims": False}, (2048, 7, 7), (2048,)),
    ("adaptive_avgpool", {"size": 6}, (256, 13, 13), (256, 6, 6)),
    ("adaptive_avgpool", {"size": [2, 3]}, (4, 5, 7), (4, 2, 3)),
])
def test_pool_shapes(op: str, params: dict, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert infer(op, params, shape) == expected


def test_pool_padding_more_than_half_window_is_refused() -> None:
    with pytest.raises(Problem) as err:
        infer("maxpool", {"k": 2, "p": 2}, (3, 8, 8))
    assert err.value.code == "E306"


@pytest.mark.parametrize(("op", "params", "shapes", "expected"), [
    ("linear", {"out": 10}, [(512,)], (10,)),
    ("linear", {"out": 10}, [(7, 512)], (7, 10)),
    ("flatten", {}, [(256, 6, 6)], (9216,)),
    ("concat", {}, [(64, 28, 28), (128, 28, 28), (32, 28, 28)], (224, 28, 28)),
    ("concat", {"axis": -1}, [(4, 2, 3), (4, 2, 5)], (4, 2, 8)),
    ("add", {}, [(64, 8, 8), (64, 8, 8)], (64, 8, 8)),
    ("mul", {}, [(64, 8, 8), (64, 1, 1)], (64, 8, 8)),
    ("zeropad", {"p": 1}, [(3, 8, 8)], (3, 10, 10)),
    ("zeropad", {"p": [0, 1, 2, 3]}, [(3, 8, 8)], (3, 9, 13)),
    ("pad_channels", {"out": 32, "s": 2}, [(16, 32, 32)], (32, 16, 16)),
    ("bn", {}, [(64, 8, 8)], (64, 8, 8)),
    ("layernorm", {"dims": 1}, [(10, 768)], (10, 768)),
    ("lrn", {"size": 5}, [(96, 55, 55)], (96, 55, 55)),
    ("dropout", {"p": 0.5}, [(4096,)], (4096,)),
    ("softmax", {}, [(1000,)], (1000,)),
    ("prelu", {}, [(8, 4, 4)], (8, 4, 4)),
])
def test_other_shapes(op: str, params: dict, shapes: list, expected: tuple[int, ...]) -> None:
    assert infer(op, params, *shapes) == expected


@pytest.mark.parametrize(("op", "shapes", "code"), [
    ("add", [(256, 56, 56), (64, 56, 56)], "E301"),
    ("concat", [(64, 28, 28), (64, 14, 14)], "E302"),
    ("add", [(64, 8, 8), (64, 8)], "E301"),
])
def test_merge_errors(op: str, shapes: list, code: str) -> None:
    with pytest.raises(Problem) as err:
        infer(op, {}, *shapes)
    assert err.value.code == code
    assert str(list(shapes[0])) in err.value.message and str(list(shapes[1])) in err.value.message


def test_param_counts_of_stateful_ops() -> None:
    assert cost("linear", {"out": 10}, (512,)).params == 5130
    assert cost("linear", {"out": 10, "bias": False}, (512,)).params == 5120
    bn = cost("bn", {}, (64, 8, 8))
    assert (bn.params, bn.buffers) == (128, 129)
    assert cost("layernorm", {"dims": 1}, (10, 768)).params == 1536
    assert cost("prelu", {}, (8, 4, 4)).params == 8
    assert cost("prelu", {"shared": True}, (8, 4, 4)).params == 1


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "concat"])
@pytest.mark.parametrize(("axis", "ok"), [(0, True), (-1, True), (1, False), (-2, False)])
def test_axis_ops_check_the_axis_exists(op: str, axis: int, ok: bool) -> None:
    shapes = [(5,), (5,)] if op == "concat" else [(5,)]
    if ok:
        assert infer(op, {"axis": axis}, *shapes) == ((10,) if op == "concat" else (5,))
        return
    with pytest.raises(Problem) as err:
        infer(op, {"axis": axis}, *shapes)
    assert (err.value.code, err.value.message) == ("E306", f"{op} axis {axis} is out of range for [5] (rank 1)")


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_axis_out_of_range_is_a_located_error(op: str) -> None:
    # softmax did not check its axis: this spec checked ok and emitted torch.softmax(x, 4), which cannot run
    text = f"name: head\ninputs: {{x: [8]}}\nbody:\n  - linear: {{out: 5}}\n  - {op}: {{axis: 3}}\n"
    with pytest.raises(SpecError) as info:
        compile_text(text, "head.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        f"head.yaml:5:5: E306: 1: {op} axis 3 is out of range for [5] (rank 1) (input from linear '0')"]
