"""An ONNX file written in pieces (archc/emit/onnx_file.py): the same bytes as the serialised model, with the large
weights never copied into a protobuf or a whole-file buffer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from emit_specs import MODEL_TENSORS, TRANSFORMER

from archc.build import write_onnx
from archc.compiler import compile_file, compile_text
from archc.emit import onnx_verify
from archc.emit.onnx_builder import WEIGHTLESS_KEEP_BYTES, weightless
from archc.emit.onnx_export import export_onnx
from archc.emit.onnx_file import OnnxFile, _initializer_head, export_file
from archc.emit.onnx_verify import VerificationError
from archc.emit.torch_module import build_module
from archc.io import write_atomic

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _state(text_or_path: str | Path) -> tuple[object, dict[str, np.ndarray]]:
    c = compile_file(text_or_path) if isinstance(text_or_path, Path) else compile_text(text_or_path)
    torch.manual_seed(0)
    state = {k: v.detach().numpy() for k, v in build_module(c).state_dict().items()}
    return c, state


@pytest.mark.parametrize("spec", [SPECS / "lenet5.yaml", SPECS / "resnet18.yaml", TRANSFORMER, MODEL_TENSORS],
                         ids=["lenet5", "resnet18", "transformer", "model_tensors"])
@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
def test_the_pieces_are_the_serialised_model_byte_for_byte(spec: str | Path, fold: bool) -> None:
    c, state = _state(spec)
    want = export_onnx(c, dict(state), fold_bn=fold).SerializeToString()
    model, file = export_file(c, dict(state), fold_bn=fold)
    data = file.to_bytes()
    assert data == want and file.size == len(want)
    assert b"".join(file.chunks()) == want
    full = onnx.ModelProto.FromString(want)
    large = {t.name for t in full.graph.initializer if len(t.raw_data) > WEIGHTLESS_KEEP_BYTES}
    assert file.deferred == large
    kept = {t.name: t for t in model.graph.initializer}
    assert all(not kept[name].raw_data for name in large)  # the protobuf holds their names, types and dims only
    assert [t.name for t in model.graph.initializer] == [t.name for t in full.graph.initializer]


def test_large_weights_are_written_from_the_arrays_themselves() -> None:
    c, state = _state(SPECS / "lenet5.yaml")
    model, file = export_file(c, dict(state), fold_bn=False)
    arrays = dict(zip([t.name for t in model.graph.initializer if t.name in file.deferred],
                      [p for p in file.graph if isinstance(p, np.ndarray)], strict=True))
    assert list(arrays) == ["c3.weight", "c5.weight", "f6.weight", "output.weight"]
    # views of the state, not copies; c3's weight is masked by LeNet's connection table, so it is computed
    assert [name for name, a in arrays.items() if np.shares_memory(a, state[name])] == list(arrays)[1:]
    weights = sum(a.nbytes for a in arrays.values())
    assert model.ByteSize() < 20_000 < weights == 245_280  # ((16 * 6 + 120 * 16) * 25 + 120 * 84 + 84 * 10) floats


def test_write_onnx_never_makes_the_whole_file_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_file(SPECS / "lenet5.yaml")
    reference = write_onnx(c, tmp_path / "a.onnx", verify=False).data

    def refuse(self: OnnxFile) -> bytes:
        raise AssertionError("the whole file was made as one buffer")

    monkeypatch.setattr(OnnxFile, "to_bytes", refuse)
    result = write_onnx(c, tmp_path / "b.onnx", verify=False)
    written = (tmp_path / "b.onnx").read_bytes()
    assert written == reference and len(written) == result.file.size > 240_000
    model = onnx.load_from_string(written)
    onnx.checker.check_model(model, full_check=True)
    assert result.describe("b.onnx").endswith(f"{len(model.graph.initializer)} initializers, {len(written):,} bytes")
    monkeypatch.undo()
    assert result.file.graph == [] and result.data == written  # pieces released once written; read back from there


def test_an_initializer_with_fields_after_its_data_is_not_deferred() -> None:
    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2000])
    assert _initializer_head(t, 8000).startswith(b"\x2a")  # graph field 5, length-delimited
    t.doc_string = "after raw_data"
    with pytest.raises(ValueError, match="w: fields after raw_data \\(doc_string\\)"):
        _initializer_head(t, 8000)


def test_write_atomic_takes_pieces_made_afresh_for_each_attempt(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def pieces() -> list[bytes | memoryview]:
        calls.append(1)
        return [b"head-", memoryview(np.arange(3, dtype="<i4")).cast("B"), b"-tail"]

    want = b"head-" + np.arange(3, dtype="<i4").tobytes() + b"-tail"
    write_atomic(tmp_path / "one", pieces)
    assert (tmp_path / "one").read_bytes() == want and len(calls) == 1
    monkeypatch.setattr("archc.io._write_anonymous", lambda *args: False)  # no O_TMPFILE: a named temp file
    write_atomic(tmp_path / "one", pieces, force=True)
    assert (tmp_path / "one").read_bytes() == want and len(calls) == 2


def test_the_checks_see_the_same_weightless_model_made_in_place() -> None:
    c, state = _state(SPECS / "resnet18.yaml")
    full = export_onnx(c, dict(state))
    model, file = export_file(c, dict(state))
    assert len(file.deferred) == 27  # 20 conv weights, fc's weight and bias, the five 512-channel biases (2 KiB)
    want = weightless(full).SerializeToString()
    assert weightless(model, file.deferred).SerializeToString() == want
    assert weightless(model, file.deferred, in_place=True) is model and model.SerializeToString() == want


def test_a_check_that_fails_leaves_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = compile_file(SPECS / "lenet5.yaml")
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def refuse(model: onnx.ModelProto, deferred: object = (), *, consume: bool = False) -> None:
        assert target.read_bytes() == b"old" and consume  # checked before the file takes its name
        raise VerificationError("the ONNX checker refuses the exported model: test")

    monkeypatch.setattr(onnx_verify, "check_model", refuse)
    with pytest.raises(VerificationError, match="refuses the exported model: test"):
        write_onnx(c, target, force=True, verify=False)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    with pytest.raises(VerificationError):
        write_onnx(c, tmp_path / "new.onnx", verify=False)
    assert not (tmp_path / "new.onnx").exists()
