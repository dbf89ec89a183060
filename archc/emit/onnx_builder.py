"""Builds one ONNX graph in place, layer by layer, for the ops' ``onnx()`` methods.

Everything is appended straight into the ``ModelProto``'s graph: ``helper.make_graph``/``make_model`` copy every
initializer, which would mean a second copy of a network's weights. Names follow the layer paths: a layer's result
value and its last node are named after the layer (``layer1.0.conv1``), its helper nodes and values
``layer1.0.conv1/MatMul``; weights are ``{path}.{key}`` (the state_dict key) and other constants ``{path}/{what}``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from archc.errors import UsageError
from archc.ir.types import TensorType

Dims = tuple[int | None, ...]
"""A per-sample shape (no batch) in which None marks a dimension that varies with the input size."""

DTYPES: dict[str, int] = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
    "float64": TensorProto.DOUBLE,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}

DimSpec = int | str | None
"""A declared ONNX dimension: a size, a symbolic name, or unknown."""


def fill_tensor(t: TensorProto, name: str, array: np.ndarray) -> None:
    """Write ``array`` into ``t`` as little-endian raw data: one copy, into the protobuf itself."""
    t.raw_data = describe_tensor(t, name, array).tobytes()


def describe_tensor(t: TensorProto, name: str, array: np.ndarray) -> np.ndarray:
    """Set ``t``'s name, type and dims for ``array``; returns the array as the contiguous little-endian data that
    ``t.raw_data`` holds (a view, not a copy, where it is one already)."""
    arr = np.ascontiguousarray(array)
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
    t.dims.extend(int(d) for d in arr.shape)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


WEIGHTLESS_KEEP_BYTES = 1024
"""Initializers up to this size stay in a weightless copy: shape constants (Reshape's target) that inference reads."""


def weightless(model: onnx.ModelProto, deferred: Collection[str] = (), *, in_place: bool = False) -> onnx.ModelProto:
    """A copy of ``model`` whose large initializers are declared graph inputs of the same type and shape.

    ONNX's checker and shape inference serialise the model they are given and parse it again, several times: on a
    model with its weights that is several copies of them at once (a 200 MB model peaked 1 GB higher). They need only
    the weights' types and shapes, which the inputs declare. ``deferred`` names large initializers whose data is not
    in ``model`` (archc/emit/onnx_file.py writes it into the file from the arrays). ``in_place``: turn ``model``
    itself into that form (no copy of its nodes; for a caller that has no other use for it).
    """
    if in_place:
        skeleton = model
        initializers = [t.SerializeToString() for t in model.graph.initializer]  # small: the large ones' data is out
        model.graph.ClearField("initializer")
        tensors = (onnx.TensorProto.FromString(data) for data in initializers)
    else:
        skeleton = onnx.ModelProto()
        _copy_fields(model, skeleton, skip="graph")
        _copy_fields(model.graph, skeleton.graph, skip="initializer")
        tensors = iter(model.graph.initializer)
    for tensor in tensors:
        if tensor.name not in deferred and tensor.ByteSize() <= WEIGHTLESS_KEEP_BYTES:
            skeleton.graph.initializer.add().CopyFrom(tensor)
            continue
        vi = skeleton.graph.input.add()
        vi.name = tensor.name
        tt = vi.type.tensor_type
        tt.elem_type = tensor.data_type
        tt.shape.SetInParent()
        for d in tensor.dims:
            tt.shape.dim.add().dim_value = d
    return skeleton


def _copy_fields(src: Any, dst: Any, skip: str) -> None:
    for desc, value in src.ListFields():
        if desc.name == skip:
            continue
        if hasattr(value, "extend"):  # a repeated field (FieldDescriptor.label is gone from newer protobufs)
            getattr(dst, desc.name).extend(value)
        elif desc.type == desc.TYPE_MESSAGE:
            getattr(dst, desc.name).CopyFrom(value)
        else:
            setattr(dst, desc.name, value)


def set_type(vi: onnx.ValueInfoProto, name: str, dtype: str, shape: Sequence[DimSpec]) -> None:
    vi.name = name
    tt = vi.type.tensor_type
    tt.elem_type = DTYPES[dtype]
    tt.shape.SetInParent()  # rank 0 still declares a (scalar) shape
    for d in shape:
        dim = tt.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d


LAYER_KEY = "archc.layer"
"""Node metadata key: the layer path the node computes (part of)."""
SOURCE_KEY = "archc.source"
"""Node metadata key: ``file:line:col`` of that layer in the spec."""


class OnnxBuilder:
    """Collects the nodes, initializers and value infos of one graph; one layer is open at a time."""

    def __init__(self, model: onnx.ModelProto, opset: int) -> None:
        self.model = model
        self.graph = model.graph
        self.opset = opset
        self._taken: set[str] = set()
        self._shared: set[str] = set()
        """Initializers of tied weights, made by whichever of the layers sharing them came first."""
        self._path = ""
        self._source = ""
        self._first = 0
        self._const = 0
        self.in_dims: list[Dims] = []
        """Per-sample input shapes of the open layer, None where the size is dynamic."""
        self.out_type = TensorType(())
        self.out_dims: Dims = ()
        """The open layer's output type, and its dims with None where the size is dynamic."""

    # --- graph level --------------------------------------------------------------------------------------------------
    def reserve(self, name: str) -> None:
        if name in self._taken:
            raise UsageError(f"ONNX value name {name!r} is used twice (an input or output name repeats)")
        self._taken.add(name)

    def fresh(self, base: str) -> str:
        """``base`` if no value has that name yet, else ``base#1``, ``base#2``..."""
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}#{k}"
        self._taken.add(name)
        return name

    def add_input(self, name: str, dtype: str, shape: Sequence[DimSpec]) -> None:
        set_type(self.graph.input.add(), name, dtype, shape)

    def add_output(self, name: str, dtype: str, shape: Sequence[DimSpec]) -> None:
        set_type(self.graph.output.add(), name, dtype, shape)

    def add_value_info(self, name: str, dtype: str, shape: Sequence[DimSpec]) -> None:
        set_type(self.graph.value_info.add(), name, dtype, shape)

    def identity(self, src: str, dst: str, node_name: str) -> None:
        n = self.graph.node.add()
        n.op_type, n.name = "Identity", node_name
        n.input.append(src)
        n.output.append(dst)

    # --- the open layer -----------------------------------------------------------------------------------------------
    def begin_layer(self, path: str, in_dims: list[Dims], out_type: TensorType, out_dims: Dims,
                    source: str = "") -> None:
        """Open a layer; its nodes carry ``path`` and ``source`` (``file:line:col``) in their metadata, so an error
        on a node leads back to the spec (``archc where``)."""
        self._path, self._first, self._const = path, len(self.graph.node), 0
        self._source = source
        self.in_dims, self.out_type, self.out_dims = in_dims, out_type, out_dims

    def end_layer(self, value: str, final: str) -> str:
        """Name the layer's result ``final`` and its producing node after the layer; returns the result's name.

        A layer that made no node (dropout at inference, identity) passes an existing value through: its users read
        that value directly, so the graph carries no Identity nodes for it.
        """
        nodes = self.graph.node[self._first:]
        producer = next((n for n in reversed(nodes) if value in n.output), None)
        if producer is None:
            return value
        for n in nodes:
            for i, name in enumerate(n.input):
                if name == value:
                    n.input[i] = final
            for i, name in enumerate(n.output):
                if name == value:
                    n.output[i] = final
        producer.name = self._path
        self._taken.discard(value)
        return final

    def refuse(self, message: str) -> UsageError:
        return UsageError(f"cannot export layer {self._path} to ONNX: {message}")

    # --- the API of the ops' onnx() methods ---------------------------------------------------------------------------
    def node(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        """Append a node of the open layer; returns its output's name. Empty input names skip optional inputs."""
        out = self.fresh(f"{self._path}/{op_type}")
        n = self.graph.node.add()
        n.op_type, n.name = op_type, out
        n.input.extend(inputs)
        n.output.append(out)
        for key, value in attrs.items():
            n.attribute.append(helper.make_attribute(key, value))
        for key, value in ((LAYER_KEY, self._path), (SOURCE_KEY, self._source)):
            if value:
                entry = n.metadata_props.add()
                entry.key, entry.value = key, value
        return out

    def initializer(self, local_name: str, array: np.ndarray) -> str:
        """A weight of the open layer, named by its state_dict key ``{path}.{local_name}``."""
        return self._tensor(f"{self._path}.{local_name}", array)

    def shared_initializer(self, key: str, array: np.ndarray) -> str:
        """A weight the open layer shares with the layer owning it (`tie:`), named by the owner's state_dict key
        ``key``: one initializer, made here unless the owner has made it already."""
        if key in self._taken:
            return key
        name = self._tensor(key, array)
        self._shared.add(key)
        return name

    def state_tensor(self, array: np.ndarray) -> str:
        """The open layer's own tensor (a `parameter` or `buffer` step, whose state_dict key is the layer path),
        named ``{path}/tensor``: the layer path itself names the layer's result."""
        return self._tensor(f"{self._path}/tensor", array)

    def constant(self, what: str, array: np.ndarray) -> str:
        """A constant that is not a weight (a shape, a bound), named ``{path}/{what}``."""
        return self._tensor(f"{self._path}/{what}", array)

    def const_int64(self, values: Sequence[int]) -> str:
        self._const += 1
        return self.constant(f"const{self._const}", np.asarray(values, dtype=np.int64))

    def const_scalar(self, value: float, dtype: str = "float32") -> str:
        self._const += 1
        return self.constant(f"const{self._const}", np.asarray(value, dtype=np.dtype(dtype)))

    def _tensor(self, name: str, array: np.ndarray) -> str:
        if name in self._shared:
            return name  # a tied weight, made by a layer sharing it
        if name in self._taken:
            raise ValueError(f"initializer {name!r} defined twice")  # an op emitting the same weight twice: a bug
        self._taken.add(name)
        self.fill(self.graph.initializer.add(), name, array)
        return name

    def fill(self, t: TensorProto, name: str, array: np.ndarray) -> None:
        """Make ``t`` the initializer ``name`` holding ``array`` (archc/emit/onnx_file.py keeps large data aside)."""
        fill_tensor(t, name, array)

    # --- composite helpers --------------------------------------------------------------------------------------------
    def reshape(self, x: str, out: TensorType) -> str:
        """Reshape to ``out`` keeping the batch: 0 copies the batch dimension (allowzero=0), -1 one dynamic dim."""
        dims = self.out_dims if out == self.out_type else out.shape
        if sum(d is None for d in dims) > 1:
            raise self.refuse(f"a reshape to {out} would have {sum(d is None for d in dims)} size-dependent "
                              "dimensions; export with --dynamic batch")
        return self.node("Reshape", [x, self.const_int64([0, *(-1 if d is None else d for d in dims)])], allowzero=0)

    def batch_norm(self, x: str, in_type: TensorType, weights: Mapping[str, Any], eps: float, *,
                   affine: bool = True) -> str:
        """Inference-mode batch norm; without an affine part the scale is 1 and the shift 0."""
        c = in_type.channels
        dtype = np.dtype(in_type.dtype)
        mean = self.initializer("running_mean", np.asarray(weights["running_mean"]))
        var = self.initializer("running_var", np.asarray(weights["running_var"]))
        if affine:
            scale = self.initializer("weight", np.asarray(weights["weight"]))
            bias = self.initializer("bias", np.asarray(weights["bias"]))
        else:
            scale = self.constant("ones", np.ones(c, dtype))
            bias = self.constant("zeros", np.zeros(c, dtype))
        return self.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=float(eps))

    def layer_norm(self, x: str, in_type: TensorType, dims: int, weights: Mapping[str, Any], eps: float, *,
                   affine: bool = True) -> str:
        """LayerNormalization over the last ``dims`` axes; without an affine part: scale 1, no bias."""
        if None in self.in_dims[0][len(self.in_dims[0]) - dims:]:
            raise self.refuse("layernorm over an axis whose size follows the input: PyTorch's LayerNorm fixes its "
                              "normalized shape; export with --dynamic batch")
        inputs = [x]
        if affine:
            inputs += [self.initializer("weight", np.asarray(weights["weight"])),
                       self.initializer("bias", np.asarray(weights["bias"]))]
        else:
            inputs.append(self.constant("ones", np.ones((1,) * dims, np.dtype(in_type.dtype))))
        return self.node("LayerNormalization", inputs, axis=-dims, epsilon=float(eps))
