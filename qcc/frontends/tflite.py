"""Import TFLite flatbuffers (``.tflite``, float or quantized) into the ``nn`` and ``quant``
dialects.

``import_tflite(source)`` reads a model (a path or the file's bytes) with LiteRT's own
flatbuffer schema (``ai_edge_litert.schema_py_generated``, object API) and returns a
``builtin.module`` holding one ``func.func @main`` for subgraph 0:

* the function's arguments are the subgraph inputs and its results the subgraph outputs, in
  the model's order, each carrying ``{nn.name = "<tensor name>"}`` in ``arg_attrs`` /
  ``res_attrs``;
* operators become nn ops in operator order; every op, ``nn.constant`` included, has the
  location ``loc("<output tensor name>")`` (its first output for multi-result ops);
* a constant tensor (a buffer with data) becomes one ``nn.constant`` (bytes-backed
  ``dense<...>``, never Python lists), created right before its first user;
* static configuration inputs (shapes, paddings, axes, permutations, begin/size, ...)
  become properties and must be constant; weights, biases and other data stay operands;
* a DEQUANTIZE of a constant (float16 weights, or int8/uint8/int16 weights with
  quantization parameters feeding a float op) is folded into an f32 constant, a QUANTIZE
  of a float32 constant into a quantized constant (as LiteRT computes it), and a DENSIFY
  of a sparse constant is densified at import (TFLite's sparsity format, below); the
  folded op disappears;
* anything without an nn op (custom ops, other builtins, unsupported option variants)
  becomes ``nn.generic``, keeping the operator name, its version and its raw options:
  a custom op's ``custom_options`` bytes, or a builtin's options table packed alone into a
  small flatbuffer whose type is ``options_type``
  (``getattr(schema, options_type + "T").InitFromPackedBuf(op.option_bytes, 0)``). Omitted
  optional inputs of a generic op are recorded in the discardable attribute
  ``nn.omitted_inputs`` (their input positions), so the op can be written back unchanged.

The builtin -> nn mapping is computed from the nn ops' declarations (``nn.OpSpec``, the
``SPEC`` of every class in ``nn.op_classes()``): a declared op imports through one generic
path (``_declared_importer``: operands from the TFLite inputs, properties from the options
fields and constant inputs the declaration names); the few ops whose TFLite form needs more
(DEPTHWISE_CONV_2D's multiplier, PAD/PADV2, SPLIT, GATHER's batch_dims) register a bespoke
builder against their class (``_IMPORTERS``); QUANTIZE and DEQUANTIZE become quant casts.
``_FOLDERS`` holds the ops evaluated at import.

Every failure is a ``QccError`` whose one-line message names the file and the problem: an
unreadable, empty or non-TFLite file, a corrupt flatbuffer (the file is verified first, as
the flatbuffers verifier does: `qcc.frontends.flatbuffers_verifier`, whose message names the
table and field; tensor, buffer and operator-code indices and constant sizes are validated), a
non-constant configuration input, or an op the nn verifiers reject (named with its
operator index, TFLite name and location).

Quantized models import as the IR qcc's own ``quantize`` pass produces, so that importing
what the TFLite backend wrote gives back the same IR:

* an integer tensor (int8, uint8, int16, int32, uint16, uint32, int64) with quantization
  parameters has a ``!quant.uniform`` element type: storage = the tensor's type, per tensor
  for one scale, per axis (``quantized_dimension``) for several; the weights and biases of
  CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED are per axis also with one
  scale when ``quantized_dimension`` is their channel axis (a one-channel per-axis type);
* constant int8 weights (input 1 of those four ops, and of a BATCH_MATMUL or other op with
  a float input: dynamic-range "hybrid" weights) with zero points 0 and no stored -128
  take the narrow storage range ``i8<-127:127>``, as infer-scales and dynamic-range choose
  it (TFLite does not store the range; the data decides);
* a quantized constant becomes an ``nn.constant`` whose ``value`` holds the storage
  integers and whose result type is quantized (what the ``quantize`` pass leaves);
* QUANTIZE becomes ``quant.qcast`` (float -> int, and int -> int requantize), DEQUANTIZE of
  a non-constant ``quant.dcast``; either stays ``nn.generic`` when its types do not fit
  (e.g. a QUANTIZE without output parameters, a per-axis requantize);
* int16 activations with int8 weights ("16x8", docs/ir.md "int16 activations") import as
  the IR infer-scales writes for them: INT16 tensors ``i16``, INT64 biases ``i64`` (qcc's
  one storage width beyond MLIR's 32 bits); an ADD/SUB with int16 outputs and
  ``pot_scale_int16`` true whose scales are all powers of two (TFLite's LSTM kernel) and a
  CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV with int16 activations and
  ``quantized_bias_type`` set (an int32 bias read as such; int8 kernels ignore the field)
  import as ``nn.generic``: no nn op computes what they compute;
* quantization parameters on float, bool or uint64 tensors are ignored.

Malformed quantization parameters are a ``QccError`` naming the tensor: a scale count that
does not match the zero points or the quantized dimension's size, a scale that is not
positive and finite, a zero point outside the storage range, a ``quantized_dimension``
outside the tensor's rank. Types the int8 runtime does not run (uint8 or int16
activations) import; running them fails then, naming the op. Only subgraph 0 is imported.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    NoneAttr,
    Signedness,
    StringAttr,
    TensorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.irdl import OptionalDef, VariadicDef

from qcc.dialects import nn, quant
from qcc.errors import QccError
from qcc.frontends.flatbuffers_verifier import verify_tflite

__all__ = ["import_tflite"]

_FILE_IDENTIFIER = b"TFL3"
_MAX_CONSTANT_BYTES = 1 << 31  # a densified/folded constant larger than this is corrupt

Op = schema.BuiltinOperator
TT = schema.TensorType


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


_OPERATOR_NAMES = _enum_names(schema.BuiltinOperator)
_OPTIONS_NAMES = _enum_names(schema.BuiltinOptions)
_OPTIONS2_NAMES = _enum_names(schema.BuiltinOptions2)
_TENSOR_TYPE_NAMES = _enum_names(schema.TensorType)

# TFLite tensor type -> (element type, little-endian numpy dtype)
_ELEMENT_TYPES: dict[int, tuple[Attribute, np.dtype]] = {
    TT.FLOAT32: (Float32Type(), np.dtype("<f4")),
    TT.FLOAT16: (Float16Type(), np.dtype("<f2")),
    TT.FLOAT64: (Float64Type(), np.dtype("<f8")),
    TT.INT8: (IntegerType(8), np.dtype("i1")),
    TT.INT16: (IntegerType(16), np.dtype("<i2")),
    TT.INT32: (IntegerType(32), np.dtype("<i4")),
    TT.INT64: (IntegerType(64), np.dtype("<i8")),
    TT.UINT8: (IntegerType(8, Signedness.UNSIGNED), np.dtype("u1")),
    TT.UINT16: (IntegerType(16, Signedness.UNSIGNED), np.dtype("<u2")),
    TT.UINT32: (IntegerType(32, Signedness.UNSIGNED), np.dtype("<u4")),
    TT.UINT64: (IntegerType(64, Signedness.UNSIGNED), np.dtype("<u8")),
    TT.BOOL: (i1, np.dtype("?")),
}
_DTYPE_TO_ELEMENT = {dtype: elem for elem, dtype in _ELEMENT_TYPES.values()}

_ACTIVATIONS = {
    schema.ActivationFunctionType.NONE: "NONE",
    schema.ActivationFunctionType.RELU: "RELU",
    schema.ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1",
    schema.ActivationFunctionType.RELU6: "RELU6",
    schema.ActivationFunctionType.TANH: "TANH",
}
_PADDINGS = {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"}

# TFLite tensor type -> (storage bits, signed) of a `!quant.uniform` type over it
_QUANT_STORAGE: dict[int, tuple[int, bool]] = {
    TT.INT8: (8, True),
    TT.UINT8: (8, False),
    TT.INT16: (16, True),
    TT.UINT16: (16, False),
    TT.INT32: (32, True),
    TT.UINT32: (32, False),
    TT.INT64: (64, True),  # 16x8 biases (quant.WIDE_STORAGE_BITS)
}

@dataclass(frozen=True)
class _QuantParams:
    """A tensor's validated quantization parameters; `axis` None for per tensor."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _location(name: str) -> NameLoc:
    return NameLoc(StringAttr(name), NoneAttr())


def _int_list(vector: Any) -> list[int]:
    """A flatbuffer int vector from the object API (numpy array, list or None) as ints."""
    if vector is None or isinstance(vector, int):  # the API yields 0 for an absent vector
        return []
    if isinstance(vector, np.ndarray):
        return [int(v) for v in vector.tolist()]
    return [int(v) for v in vector]


class _Fallback(Exception):
    """Raised by a builder for an option variant nn cannot express: import as nn.generic."""


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------


def import_tflite(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> ModuleOp:
    """Import a TFLite model (a file path, or the file's bytes), float or quantized, as an
    nn/quant-dialect module.

    Raises `QccError` (one line, naming the file — or `name`, for bytes — and the problem) for
    any bad input.
    """
    label, data = _read_source(source)
    label = name or label
    if not data:
        raise QccError(f"{label}: empty file, not a TFLite model")
    if len(data) < 8 or data[4:8] != _FILE_IDENTIFIER:
        raise QccError(f"{label}: not a TFLite model (file identifier 'TFL3' missing)")
    # Every offset and length is checked before anything is read (the flatbuffers verifier):
    # Python's reader would slice past the end of a corrupt file without a word.
    verify_tflite(data, label)
    codecs = _codecs(nn.op_classes())  # a declaration error is a bug, not a bad file
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:
        raise QccError(
            f"{label}: corrupt TFLite flatbuffer ({type(e).__name__}: {_one_line(e)})"
        ) from e
    try:
        return _Importer(label, data, model, codecs).run()
    except QccError:
        raise
    except Exception as e:
        raise QccError(
            f"{label}: corrupt or unsupported TFLite model ({type(e).__name__}: {_one_line(e)})"
        ) from e


def _read_source(source: str | os.PathLike[str] | bytes) -> tuple[str, bytes]:
    """(label for messages, file contents)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return "<tflite bytes>", bytes(source)
    try:
        path = os.fspath(source)
    except TypeError:
        raise QccError(
            f"import_tflite expects a path or bytes, got {type(source).__name__}"
        ) from None
    try:
        with open(path, "rb") as f:
            return str(path), f.read()
    except OSError as e:
        raise QccError(f"{path}: cannot read TFLite file ({e.strerror or e})") from None


# ------------------------------------------------------------------------------------------
# The importer
# ------------------------------------------------------------------------------------------


class _Importer:
    """Walks subgraph 0 once, in operator order, appending ops to the body of @main."""

    def __init__(self, label: str, data: bytes, model: schema.ModelT, codecs: _Codecs):
        self.label = label
        self.codecs = codecs
        self.data = data
        self.model = model
        if not model.subgraphs:
            raise self.error("the model has no subgraph")
        self.graph: schema.SubGraphT = model.subgraphs[0]
        self.tensors: list[schema.TensorT] = list(self.graph.tensors or [])
        self.buffers: list[schema.BufferT] = list(model.buffers or [])
        self.opcodes: list[schema.OperatorCodeT] = list(model.operatorCodes or [])
        self.values: dict[int, SSAValue] = {}
        self.folded: dict[int, np.ndarray] = {}
        self._types: dict[int, TensorType] = {}
        self._names: dict[int, str] = {}
        self._qparams: dict[int, _QuantParams | None] = {}
        self.block = Block()
        self._channel_axis: dict[int, int] = {}  # weight/bias tensor -> its channel axis
        self._weights: set[int] = set()  # int8 weights that take the narrow range
        self._scan_weights()

    def error(self, message: str) -> QccError:
        return QccError(f"{self.label}: {_one_line(message, 500)}")

    # -- tensors ---------------------------------------------------------------------------

    def tensor(self, index: int) -> schema.TensorT:
        if not 0 <= index < len(self.tensors):
            raise self.error(f"tensor index {index} out of range (the subgraph has "
                             f"{len(self.tensors)} tensors)")
        return self.tensors[index]

    def name(self, index: int) -> str:
        if index not in self._names:
            raw = self.tensor(index).name
            name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
            self._names[index] = name or f"tensor_{index}"
        return self._names[index]

    def shape(self, index: int) -> tuple[int, ...]:
        shape = tuple(_int_list(self.tensor(index).shape))
        if any(d < 0 for d in shape):
            raise self.error(f"tensor '{self.name(index)}' has a dynamic or negative shape "
                             f"{list(shape)}")
        return shape

    def element(self, index: int) -> tuple[Attribute, np.dtype]:
        ttype = self.tensor(index).type
        if ttype not in _ELEMENT_TYPES:
            kind = _TENSOR_TYPE_NAMES.get(ttype, f"#{ttype}")
            raise self.error(f"tensor '{self.name(index)}' has unsupported element type {kind}")
        return _ELEMENT_TYPES[ttype]

    def type(self, index: int) -> TensorType:
        """The tensor's type: its element type, or a `!quant.uniform` over it."""
        if index not in self._types:
            element = self.quant_type(index) or self.element(index)[0]
            self._types[index] = TensorType(element, self.shape(index))
        return self._types[index]

    # -- quantization ----------------------------------------------------------------------

    def _scan_weights(self) -> None:
        """Find the weights (and biases) of the ops with affine weights, before the walk: a
        constant's type depends on its users (narrow range, one-channel per-axis)."""
        for operator in self.graph.operators or []:
            code = operator.opcodeIndex
            if not 0 <= code < len(self.opcodes):
                continue  # reported by the walk
            opcode = self.opcodes[code]
            builtin = max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
            inputs = _int_list(operator.inputs)
            if len(inputs) < 2 or not 0 <= inputs[1] < len(self.tensors):
                continue
            weight = inputs[1]
            if builtin in self.codecs.weights:
                weight_input, axis, bias = self.codecs.weights[builtin]
                if weight_input >= len(inputs) or not 0 <= inputs[weight_input] < len(self.tensors):
                    continue
                weight = inputs[weight_input]
                self._weights.add(weight)
                self._channel_axis[weight] = axis
                q = self.tensors[weight].quantization
                scales = [] if q is None or q.scale is None or isinstance(q.scale, int) else q.scale
                per_axis = len(scales) > 1 or (len(scales) == 1 and q.quantizedDimension == axis)
                if per_axis and len(inputs) > bias and 0 <= inputs[bias] < len(self.tensors):
                    self._channel_axis[inputs[bias]] = 0
            elif 0 <= inputs[0] < len(self.tensors) and self.tensors[inputs[0]].type in (
                TT.FLOAT32, TT.FLOAT16
            ):
                self._weights.add(weight)  # a hybrid op's int8 weights (BATCH_MATMUL, ...)

    def quant_params(self, index: int) -> _QuantParams | None:
        """The tensor's quantization parameters, validated; None without a scale."""
        if index in self._qparams:
            return self._qparams[index]
        tensor = self.tensor(index)
        q = tensor.quantization
        scale_list = [] if q is None or q.scale is None or isinstance(q.scale, int) else q.scale
        scales = np.asarray(scale_list, dtype=np.float32).reshape(-1)
        if scales.size == 0:
            self._qparams[index] = None
            return None
        where = f"tensor '{self.name(index)}'"
        zero_list = q.zeroPoint
        zeros = np.asarray(
            [] if zero_list is None or isinstance(zero_list, int) else zero_list, np.int64
        ).reshape(-1)
        if zeros.size == 0:
            zeros = np.zeros(scales.size, np.int64)
        if zeros.size != scales.size:
            raise self.error(f"{where} has malformed quantization: {scales.size} scales but "
                             f"{zeros.size} zero points")
        bad = [float(s) for s in scales if not (np.isfinite(s) and s > 0)]
        if bad:
            raise self.error(f"{where} has malformed quantization: scale {bad[0]!r} is not a "
                             "positive finite number")
        _, dtype = self.element(index)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            out = [int(z) for z in zeros if not info.min <= z <= info.max]
            if out:
                raise self.error(f"{where} has malformed quantization: zero point {out[0]} is "
                                 f"outside the {dtype.name} range [{info.min}, {info.max}]")
        shape = self.shape(index)
        axis = int(q.quantizedDimension)
        if axis < 0 or (axis >= len(shape) and (axis != 0 or scales.size > 1)):
            raise self.error(f"{where} has malformed quantization: quantized_dimension {axis} "
                             f"is out of range for a tensor of rank {len(shape)}")
        if scales.size > 1 and shape[axis] != scales.size:
            raise self.error(f"{where} has malformed quantization: {scales.size} scales for "
                             f"quantized_dimension {axis} of size {shape[axis]}")
        per_axis = scales.size > 1 or (
            self._channel_axis.get(index) == axis and axis < len(shape) and shape[axis] == 1
        )
        params = _QuantParams(
            tuple(float(s) for s in scales.tolist()),
            tuple(int(z) for z in zeros.tolist()),
            axis if per_axis else None,
        )
        self._qparams[index] = params
        return params

    def quant_type(self, index: int) -> quant.QuantizedType | None:
        """The `!quant.uniform` element type of a quantized integer tensor, else None."""
        ttype = self.tensor(index).type
        if ttype not in _QUANT_STORAGE:
            return None  # float, bool and 64-bit tensors keep their plain type
        params = self.quant_params(index)
        if params is None:
            return None
        bits, signed = _QUANT_STORAGE[ttype]
        storage_min = None
        if (bits, signed) == (8, True) and index in self._weights and not any(
            params.zero_points
        ):
            values = self.constant_array(index)
            if values is not None and (values.size == 0 or int(values.min()) >= -127):
                storage_min = -127  # symmetric narrow-range weights
        try:
            if params.axis is None:
                return quant.UniformQuantizedType.get(
                    params.scales[0], params.zero_points[0], storage_bits=bits, signed=signed,
                    storage_min=storage_min,
                )
            return quant.UniformQuantizedPerAxisType.get(
                params.scales, params.zero_points, axis=params.axis, storage_bits=bits,
                signed=signed, storage_min=storage_min,
            )
        except Exception as e:
            raise self.error(f"tensor '{self.name(index)}' has malformed quantization: "
                             f"{_one_line(e)}") from None

    def buffer_bytes(self, index: int) -> memoryview | None:
        """The raw data of a tensor's buffer, or None for a tensor without data."""
        tensor = self.tensor(index)
        b = tensor.buffer
        if not 0 <= b < len(self.buffers):
            raise self.error(f"tensor '{self.name(index)}' refers to buffer {b}, but the model "
                             f"has {len(self.buffers)} buffers")
        buffer = self.buffers[b]
        if buffer.offset and buffer.offset > 1:  # data stored after the flatbuffer
            end = buffer.offset + buffer.size
            if end > len(self.data):
                raise self.error(f"buffer {b} of tensor '{self.name(index)}' lies outside the "
                                 "file")
            return memoryview(self.data)[buffer.offset : end]
        data = buffer.data
        if data is None or isinstance(data, int) or len(data) == 0:
            return None
        if isinstance(data, np.ndarray):
            return memoryview(data.view(np.uint8).reshape(-1))
        return memoryview(bytes(data))

    def is_constant(self, index: int) -> bool:
        return index in self.folded or self.buffer_bytes(index) is not None

    def constant_array(self, index: int) -> np.ndarray | None:
        """The value of a constant tensor (read, densified or folded), or None."""
        if index in self.folded:
            return self.folded[index]
        raw = self.buffer_bytes(index)
        if raw is None:
            return None
        _, dtype = self.element(index)
        shape = self.shape(index)
        sparsity = self.tensor(index).sparsity
        if sparsity is not None:
            values = np.frombuffer(raw, dtype=dtype) if len(raw) % dtype.itemsize == 0 else None
            if values is None:
                raise self.error(f"sparse constant '{self.name(index)}' has a buffer of "
                                 f"{len(raw)} bytes, not a whole number of {dtype} values")
            return _densify(values, shape, sparsity, self, self.name(index))
        count = _product(shape)
        if count * dtype.itemsize != len(raw):
            raise self.error(f"constant '{self.name(index)}' of shape {list(shape)} and type "
                             f"{_TENSOR_TYPE_NAMES[self.tensor(index).type]} needs "
                             f"{count * dtype.itemsize} bytes, its buffer has {len(raw)}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape)

    def value(self, index: int, user: str) -> SSAValue:
        """The SSA value of a tensor; a constant is materialized here on first use."""
        if index in self.values:
            return self.values[index]
        array = self.constant_array(index)
        if array is None:
            raise self.error(f"{user}: input tensor '{self.name(index)}' is neither a model "
                             "input, a constant nor the output of an earlier operator")
        element = _DTYPE_TO_ELEMENT[array.dtype.newbyteorder("<")]
        ttype = TensorType(element, array.shape)
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        result_type = ttype
        if array.dtype.kind in "iu" and array.dtype == self.element(index)[1]:
            # a quantized constant: storage integers, quantized result type
            declared = self.type(index)
            if isinstance(declared.get_element_type(), quant.QuantizedType):
                result_type = declared
        const = nn.ConstantOp(DenseIntOrFPElementsAttr(ttype, BytesAttr(data)), result_type)
        const.location = _location(self.name(index))
        self.block.add_op(const)
        self.values[index] = const.output
        return const.output

    def kept_metadata(self) -> dict[str, Attribute]:
        """The model's metadata entries (name -> hex bytes), kept on the module so a backend
        writes them back; `min_runtime_version` is left out: it describes the ops of this
        file, which qcc rewrites."""
        kept: dict[str, Attribute] = {}
        for entry in self.model.metadata or []:
            name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
            if name == "min_runtime_version" or not 0 <= entry.buffer < len(self.buffers):
                continue
            data = self.buffers[entry.buffer].data
            raw = bytes(np.asarray(data, dtype=np.uint8)) if data is not None else b""
            kept[name] = StringAttr("0x" + raw.hex().upper())
        return kept

    def declared_input_ranges(self, count: int) -> list[tuple[float, float] | None]:
        """Each input's value range as the model's TFLITE_METADATA declares it (image
        normalization), or None; calibration scales images to it by default."""
        from qcc.frontends.tflite_metadata import input_ranges

        ranges: list[tuple[float, float] | None] = []
        for entry in self.model.metadata or []:
            name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            if name != "TFLITE_METADATA" or not 0 <= entry.buffer < len(self.buffers):
                continue
            data = self.buffers[entry.buffer].data
            if data is not None and len(data):
                ranges = input_ranges(bytes(np.asarray(data, dtype=np.uint8)))
        return (ranges + [None] * count)[:count] if len(ranges) == count else [None] * count

    # -- the walk --------------------------------------------------------------------------

    def run(self) -> ModuleOp:
        inputs = _int_list(self.graph.inputs)
        outputs = _int_list(self.graph.outputs)
        for t in inputs:
            if t in self.values:
                raise self.error(f"tensor '{self.name(t)}' is listed twice as a model input")
            self.values[t] = self.block.insert_arg(self.type(t), len(self.block.args))
        for index, operator in enumerate(self.graph.operators or []):
            self.import_operator(index, operator)
        results = [self.value(t, "the model's outputs") for t in outputs]
        self.block.add_op(func.ReturnOp(*results))
        _prune_dead_ops(self.block)
        main = func.FuncOp(
            "main",
            ([self.type(t) for t in inputs], [r.type for r in results]),
            Region(self.block),
            arg_attrs=ArrayAttr(
                [
                    _name_attr(self.name(t), rng)
                    for t, rng in zip(inputs, self.declared_input_ranges(len(inputs)))
                ]
            ),
            res_attrs=ArrayAttr([_name_attr(self.name(t)) for t in outputs]),
        )
        module = ModuleOp([main])
        kept = self.kept_metadata()
        if kept:
            module.attributes["nn.metadata"] = DictionaryAttr(kept)
        try:
            module.verify()
        except Exception as e:  # per-op verification already ran; this is structural
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise self.error(f"the imported module does not verify: {first}") from None
        return module

    def import_operator(self, index: int, operator: schema.OperatorT) -> None:
        code_index = operator.opcodeIndex
        if not 0 <= code_index < len(self.opcodes):
            raise self.error(f"operator #{index} uses operator code {code_index}, but the "
                             f"model has {len(self.opcodes)}")
        opcode = self.opcodes[code_index]
        builtin = max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
        view = _OpView(
            self,
            index,
            builtin,
            _OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}"),
            _int_list(operator.inputs),
            _int_list(operator.outputs),
            operator,
            opcode,
        )
        for t in view.inputs:
            if t != -1:
                self.tensor(t)
        if not view.outputs:
            raise self.error(f"{view.where}: the operator has no outputs")
        for t in view.outputs:
            self.tensor(t)
            if t in self.values or t in self.folded:
                raise view.fail(f"tensor '{self.name(t)}' is written more than once")

        folder = _FOLDERS.get(builtin)
        if folder is not None and folder(view):
            return
        op: Operation | None = None
        builder = self.codecs.builders.get(builtin) if builtin != Op.CUSTOM else None
        if builder is not None:
            try:
                op = builder(view)
            except _Fallback:
                op = None
            if op is not None and view.unused_inputs():
                op.drop_all_references()  # more inputs than the nn op takes: keep them all
                op = None
        if op is None:
            op = _generic(view)
        op.location = _location(self.name(view.outputs[0]))
        self.block.add_op(op)
        try:
            op.verify_()
        except Exception as e:
            raise view.fail(f"does not verify as {op.name}: {_one_line(e)}") from None
        if len(op.results) != len(view.outputs):
            raise view.fail(f"{op.name} has {len(op.results)} results for "
                            f"{len(view.outputs)} outputs")
        for t, result in zip(view.outputs, op.results):
            self.values[t] = result


def _name_attr(name: str, value_range: tuple[float, float] | None = None) -> DictionaryAttr:
    entries: dict[str, Attribute] = {"nn.name": StringAttr(name)}
    if value_range is not None:
        entries["nn.value_range"] = DenseArrayBase.from_list(f32, list(value_range))
    return DictionaryAttr(entries)


def _product(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


_STATEFUL_BUILTINS = frozenset({
    "ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE", "CALL_ONCE", "CALL", "IF", "WHILE",
})
"""Builtins kept whether or not the outputs read them: they read or write state beyond
their tensors (resource variables) or run other subgraphs."""


def _prune_dead_ops(block: Block) -> None:
    """Remove the ops no model output depends on (in reverse order, so that a chain goes
    whole): e.g. the SHAPE -> STRIDED_SLICE -> PACK chain a converted Keras Reshape leaves
    for its shape operand, which nn.reshape does not read (its shape is static). TFLite's
    converter prunes such ops too; LiteRT would compute them for nothing. Custom ops and
    stateful builtins (`_STATEFUL_BUILTINS`) stay: their effects are not their results."""
    for op in reversed(list(block.ops)):
        if op is block.last_op or any(r.uses for r in op.results):
            continue
        if isinstance(op, nn.GenericOp) and (
                op.custom.value.data or op.op_name.data in _STATEFUL_BUILTINS):
            continue
        op.detach()
        op.erase()


# ------------------------------------------------------------------------------------------
# What a builder sees of one operator
# ------------------------------------------------------------------------------------------


@dataclass
class _OpView:
    """One TFLite operator being imported, with accessors that validate as they read."""

    imp: _Importer
    index: int
    builtin: int
    op_name: str  # the BuiltinOperator name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    operator: schema.OperatorT
    opcode: schema.OperatorCodeT
    used: set[int] = field(default_factory=set)  # inputs the builder has consumed

    @property
    def where(self) -> str:
        out = self.imp.name(self.outputs[0]) if self.outputs else "?"
        return f"operator #{self.index} {self.op_name} at loc(\"{out}\")"

    def fail(self, message: str) -> QccError:
        return self.imp.error(f"{self.where}: {message}")

    def has(self, k: int) -> bool:
        return k < len(self.inputs) and self.inputs[k] != -1

    def operand(self, k: int) -> SSAValue:
        """The value of required input `k`."""
        if not self.has(k):
            raise self.fail(f"missing required input {k}")
        self.used.add(k)
        return self.imp.value(self.inputs[k], self.where)

    def optional(self, k: int) -> SSAValue | None:
        """The value of optional input `k`, or None when it is omitted."""
        return self.operand(k) if self.has(k) else None

    def const(self, k: int, what: str) -> np.ndarray:
        """The value of static-configuration input `k`, which must be constant."""
        if not self.has(k):
            raise self.fail(f"missing required input {k} ({what})")
        self.used.add(k)
        array = self.imp.constant_array(self.inputs[k])
        if array is None:
            raise self.fail(f"input {k} ({what}) must be a constant tensor, "
                            f"'{self.imp.name(self.inputs[k])}' is not")
        return array

    def redundant(self, k: int) -> bool:
        """Mark input `k` as consumed without reading it (its information is elsewhere, e.g.
        in the output tensor's shape); returns whether it is present."""
        self.used.add(k)
        return self.has(k)

    def unused_inputs(self) -> list[int]:
        return [k for k, t in enumerate(self.inputs) if t != -1 and k not in self.used]

    def ints(self, k: int, what: str) -> list[int]:
        array = self.const(k, what)
        if array.dtype.kind not in "iu":
            raise self.fail(f"input {k} ({what}) must be an integer tensor")
        return [int(v) for v in array.reshape(-1).tolist()]

    def in_shape(self, k: int) -> tuple[int, ...]:
        if not self.has(k):
            raise self.fail(f"missing required input {k}")
        return self.imp.shape(self.inputs[k])

    def out_shape(self, k: int = 0) -> tuple[int, ...]:
        return self.imp.shape(self.outputs[k])

    def result_types(self) -> list[TensorType]:
        return [self.imp.type(t) for t in self.outputs]

    def options(self, cls: type) -> Any:
        """The builtin options as `cls` (an `*OptionsT`), defaults if absent or mistyped."""
        opts = self.operator.builtinOptions
        return opts if isinstance(opts, cls) else cls()

    def create(
        self, op_class: type[nn.NNOp], operands: Sequence[SSAValue | None], **props: Attribute
    ) -> Operation:
        return op_class.build(
            operands=list(operands), result_types=self.result_types(), properties=props
        )


# ------------------------------------------------------------------------------------------
# Property helpers
# ------------------------------------------------------------------------------------------


def _i64(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


def _bool(value: bool) -> BoolAttr:
    return IntegerAttr.from_bool(bool(value))


def _f32(value: float) -> FloatAttr:
    return FloatAttr(float(value), 32)


def _activation(op: _OpView, code: int) -> StringAttr:
    if code in _ACTIVATIONS:
        return StringAttr(_ACTIVATIONS[code])
    if code == schema.ActivationFunctionType.SIGN_BIT:
        raise _Fallback()
    raise op.fail(f"invalid fused activation function {code}")


def _padding(op: _OpView, code: int) -> StringAttr:
    if code not in _PADDINGS:
        raise op.fail(f"invalid padding {code}")
    return StringAttr(_PADDINGS[code])


def _hw(op: _OpView, what: str, h: int, w: int) -> nn.DenseArrayBase:
    if h < 1 or w < 1:
        raise op.fail(f"{what} must be positive, got {h}x{w}")
    return nn.i64_array([h, w])


def _axis(op: _OpView, axis: int, rank: int, what: str = "axis") -> int:
    """An axis normalized into [0, rank)."""
    if not -rank <= axis < rank:
        raise op.fail(f"{what} {axis} out of range for rank {rank}")
    return axis % rank


# ------------------------------------------------------------------------------------------
# Builders: BuiltinOperator -> nn op, driven by the ops' declarations (nn.OpSpec)
# ------------------------------------------------------------------------------------------

Importer = Callable[[_OpView], Operation]

_IMPORTERS: dict[type[Operation], Importer] = {}
"""Bespoke importers, for the ops whose TFLite form the declaration cannot state alone;
every other declared op goes through `_declared_importer`."""


def _imports(*op_classes: type[Operation]) -> Callable[[Importer], Importer]:
    def register(fn: Importer) -> Importer:
        for cls in op_classes:
            _IMPORTERS[cls] = fn
        return fn

    return register


def _camel(field_name: str) -> str:
    """schema.fbs field name -> the object API's attribute (`keep_num_dims` -> `keepNumDims`)."""
    head, *rest = field_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _options_class(op_class: type[Operation], spec: nn.OpSpec) -> type | None:
    """The `*OptionsT` class the declaration names, checked against LiteRT's schema."""
    if spec.options is None:
        if spec.fields:
            raise TypeError(f"{op_class.__name__}: SPEC declares option fields but no options table")
        return None
    cls = getattr(schema, spec.options + "T", None)
    in_union = getattr(schema.BuiltinOptions, spec.options, None) or getattr(
        schema.BuiltinOptions2, spec.options, None
    )
    if cls is None or in_union is None:
        raise TypeError(f"{op_class.__name__}: TFLite has no builtin options table {spec.options!r}")
    sample = cls()
    for option in spec.fields:
        for name in option.fields:
            if not hasattr(sample, _camel(name)):
                raise TypeError(f"{op_class.__name__}: {spec.options} has no field {name!r}")
    return cls


def _operand_kinds(op_class: type[Operation]) -> list[str]:
    """"one", "optional" or "variadic" per operand definition of an IRDL op."""
    kinds = []
    for _, definition in op_class.get_irdl_definition().operands:  # type: ignore[attr-defined]
        if isinstance(definition, OptionalDef):
            kinds.append("optional")
        elif isinstance(definition, VariadicDef):
            kinds.append("variadic")
        else:
            kinds.append("one")
    if "variadic" in kinds and len(kinds) > 1:
        raise TypeError(f"{op_class.__name__}: a variadic operand needs a bespoke importer")
    return kinds


def _declared_importer(op_class: type[Operation]) -> Importer:
    """The generic import of a declared op: operands from the TFLite inputs the declaration
    maps them to, properties from its options fields and constant inputs."""
    spec = nn.op_spec(op_class)
    assert spec is not None
    definition = op_class.get_irdl_definition()  # type: ignore[attr-defined]
    options_cls = _options_class(op_class, spec)
    kinds = _operand_kinds(op_class)
    unmapped = [p for p in definition.properties if p not in spec.properties()]
    if unmapped:
        raise TypeError(
            f"{op_class.__name__}: properties {unmapped} are in no option field or constant "
            "input of SPEC; declare them, or register a bespoke importer"
        )
    variadic_result = len(definition.results) == 1 and isinstance(
        definition.results[0][1], VariadicDef
    )

    def build(op: _OpView) -> Operation:
        o = op.options(options_cls) if options_cls is not None else None
        for option in spec.fields:  # a value nn cannot express: nn.generic, before any read
            if option.kind == "fixed" and getattr(o, _camel(option.fields[0])) != option.default:
                raise _Fallback()
        if getattr(o, "potScaleInt16", False) and _power_of_two_int16(op):
            raise _Fallback()  # ADD/SUB's LSTM kernel: nn.add computes the general-scale one
        if getattr(o, "quantizedBiasType", 0) and _int16_input(op):
            raise _Fallback()  # a 16x8 conv/FC reading an int32 bias: nn's 16x8 biases are int64
        if kinds == ["variadic"]:
            operands: list[Any] = [[op.operand(k) for k in spec.tflite_inputs(len(op.inputs))]]
        else:
            operands = [
                op.optional(k) if kind == "optional" else op.operand(k)
                for kind, k in zip(kinds, spec.tflite_inputs(len(kinds)))
            ]
        props: dict[str, Attribute] = {}
        for const in spec.const_inputs:
            _import_const_input(op, const, props)
        for option in spec.fields:
            _import_option(op, option, o, props)
        results = op.result_types()
        return op_class.build(
            operands=operands,
            result_types=[results] if variadic_result else results,
            properties={p: props[p] for p in definition.properties if p in props},
        )

    return build


def _int16_input(op: _OpView) -> bool:
    """Whether an input of `op` is an int16 tensor (a 16x8 kernel: CONV_2D, FULLY_CONNECTED
    and TRANSPOSE_CONV read `quantized_bias_type` only then)."""
    return any(t != -1 and op.imp.tensor(t).type == TT.INT16 for t in op.inputs)


def _power_of_two_int16(op: _OpView) -> bool:
    """Whether every input and output of `op` is a quantized int16 tensor with a
    power-of-two scale: with `pot_scale_int16` true (the schema's default), TFLite's ADD and
    SUB then run their power-of-two (LSTM) kernel, not the general-scale one nn.add/nn.sub
    stand for (add.cc, sub.cc Prepare)."""
    tensors = [t for t in (*op.inputs, *op.outputs) if t != -1]
    for t in tensors:
        if op.imp.tensor(t).type != TT.INT16:
            return False
        params = op.imp.quant_params(t)
        if params is None or len(params.scales) != 1:
            return False
        # CheckedLog2 (kernels/internal/quantization_util.h): log2 within 1e-3 of an integer
        log2 = np.float32(np.log(np.float32(params.scales[0]))) * np.float32(1.0 / np.log(2.0))
        if abs(float(log2) - float(np.round(log2))) >= 1e-3:
            return False
    return bool(tensors)


def _import_const_input(op: _OpView, const: nn.ConstInput, props: dict[str, Attribute]) -> None:
    if const.kind == "ints":
        assert const.prop is not None
        props[const.prop] = nn.i64_array(op.ints(const.index, const.name))
    elif const.kind == "axes":
        assert const.prop is not None
        rank = len(op.in_shape(0))
        axes = [_axis(op, a, rank) for a in op.ints(const.index, const.name)]
        props[const.prop] = nn.i64_array(axes)
    elif op.redundant(const.index) and const.check and op.imp.is_constant(op.inputs[const.index]):
        # the result type says it: a constant input must agree
        out = list(op.out_shape())
        if const.kind == "result_shape":
            expected = out
        elif len(out) == 4:
            expected = out[1:3]
        else:
            return  # not NHWC: the op's verifier reports it
        given = op.ints(const.index, const.name)
        if given != expected:
            raise op.fail(f"{const.name} {given} differs from the output shape {out}")


def _import_option(
    op: _OpView, option: nn.Option, o: Any, props: dict[str, Attribute]
) -> None:
    values = [getattr(o, _camel(name)) for name in option.fields]
    value, prop, kind = values[0], option.prop, option.kind
    if prop is None:  # "fixed": checked before the operands were read
        return
    if kind == "activation":
        props[prop] = _activation(op, value)
    elif kind == "padding":
        props[prop] = _padding(op, value)
    elif kind == "f32":
        props[prop] = _f32(value)
    elif kind == "i64":
        props[prop] = _i64(value)
    elif kind == "bool":
        props[prop] = _bool(value)
    elif kind == "axis":
        rank = len(op.out_shape()) if option.of_output else len(op.in_shape(0))
        props[prop] = _i64(_axis(op, value, rank, option.label))
    elif kind == "axes":
        rank = len(op.in_shape(0))
        props[prop] = nn.i64_array([_axis(op, d, rank, option.label) for d in _int_list(value)])
    elif kind == "pair":
        props[prop] = _hw(op, option.label, values[0], values[1])
    else:
        raise AssertionError(f"unknown option kind {kind!r}")


@dataclass(frozen=True)
class _Codecs:
    """What the importer knows of the builtins, computed from the nn ops' declarations."""

    builders: dict[int, Importer]
    # builtin -> (TFLite input of its weights, their channel axis, TFLite input of its bias)
    # for the ops with affine weights (quantized per axis, their bias per axis along 0)
    weights: dict[int, tuple[int, int, int]]


def _builtin_code(name: str, where: str) -> int:
    code = getattr(Op, name, None)
    if not isinstance(code, int) or name == "CUSTOM":
        raise TypeError(f"{where}: TFLite has no builtin operator {name!r}")
    return code


@functools.cache
def _codecs(op_classes: tuple[type[Operation], ...]) -> _Codecs:
    builders: dict[int, Importer] = {Op.QUANTIZE: _quantize, Op.DEQUANTIZE: _dequantize_op}
    weights: dict[int, tuple[int, int, int]] = {}
    for cls in op_classes:
        spec = nn.op_spec(cls)
        if spec is None or spec.builtin is None:
            continue
        builder = _IMPORTERS.get(cls) or _declared_importer(cls)
        affine = cls.get_trait(nn.AffineWeights)  # type: ignore[attr-defined]
        for name in (spec.builtin, *spec.aliases):
            code = _builtin_code(name, cls.__name__)
            if code in builders:
                raise TypeError(f"{cls.__name__}: builtin {name} is already imported as another op")
            builders[code] = builder
            if affine is not None:
                inputs = spec.tflite_inputs(len(cls.get_irdl_definition().operands))  # type: ignore[attr-defined]
                weights[code] = (
                    inputs[affine.weight_operand], affine.axis, inputs[affine.bias_operand]
                )
    return _Codecs(builders, weights)


# -- bespoke importers ---------------------------------------------------------------------


@_imports(nn.DepthwiseConv2DOp)
def _depthwise_conv2d(op: _OpView) -> Operation:
    o = op.options(schema.DepthwiseConv2DOptionsT)
    # TFLite kernels derive the multiplier from the shapes (older converters wrote bogus
    # values), so the property holds the multiplier the shapes imply whenever they imply one.
    in_c, out_c = op.in_shape(0)[-1:], op.in_shape(1)[-1:]
    multiplier = o.depthMultiplier
    if in_c and out_c and in_c[0] > 0 and out_c[0] % in_c[0] == 0:
        multiplier = out_c[0] // in_c[0]
    return op.create(
        nn.DepthwiseConv2DOp,
        [op.operand(0), op.operand(1), op.optional(2)],
        stride=_hw(op, "stride", o.strideH, o.strideW),
        dilation=_hw(op, "dilation", o.dilationHFactor, o.dilationWFactor),
        padding=_padding(op, o.padding),
        fused_activation=_activation(op, o.fusedActivationFunction),
        depth_multiplier=_i64(multiplier),
    )


@_imports(nn.PadOp)
def _pad(op: _OpView) -> Operation:
    # PAD: input, paddings [rank, 2]; PADV2 adds the scalar pad value.
    rank = len(op.in_shape(0))
    pads = op.const(1, "paddings")
    if pads.shape != (rank, 2) or pads.dtype.kind not in "iu":
        raise op.fail(f"paddings must be an integer tensor of shape [{rank}, 2], "
                      f"got {list(pads.shape)}")
    pad_value = op.operand(2) if op.builtin == Op.PADV2 else None
    return op.create(
        nn.PadOp,
        [op.operand(0), pad_value],
        paddings=nn.i64_array(pads.reshape(-1).tolist()),
    )


@_imports(nn.SplitOp)
def _split(op: _OpView) -> Operation:
    # TFLite inputs: axis (scalar), input.
    o = op.options(schema.SplitOptionsT)
    axis = op.ints(0, "axis")
    if len(axis) != 1:
        raise op.fail("axis must be a scalar")
    if o.numSplits not in (0, len(op.outputs)):
        raise op.fail(f"num_splits is {o.numSplits} but the operator has "
                      f"{len(op.outputs)} outputs")
    return nn.SplitOp.build(
        operands=[op.operand(1)],
        result_types=[op.result_types()],
        properties={"axis": _i64(_axis(op, axis[0], len(op.in_shape(1))))},
    )


@_imports(nn.GatherOp)
def _gather(op: _OpView) -> Operation:
    # batch_dims is kept normalized by the indices' rank (the verifier checks the range)
    o = op.options(schema.GatherOptionsT)
    batch_dims = o.batchDims
    if batch_dims < 0:
        batch_dims += len(op.in_shape(1))
    return op.create(
        nn.GatherOp,
        [op.operand(0), op.operand(1)],
        axis=_i64(_axis(op, o.axis, len(op.in_shape(0)))),
        batch_dims=_i64(batch_dims),
    )


def _quantize(op: _OpView) -> Operation:

    """QUANTIZE -> quant.qcast (float -> int, or a requantize int -> int)."""
    return _cast(op, quant.QuantizeCastOp)


def _dequantize_op(op: _OpView) -> Operation:
    """DEQUANTIZE of a non-constant -> quant.dcast (constants were folded)."""
    return _cast(op, quant.DequantizeCastOp)


def _cast(op: _OpView, op_class: type[Operation]) -> Operation:
    """A quant cast, or nn.generic (`_Fallback`) when the TFLite types do not fit one (a
    QUANTIZE without output parameters, a DEQUANTIZE to float16, a per-axis requantize)."""
    if len(op.inputs) != 1 or len(op.outputs) != 1 or not op.has(0):
        raise _Fallback()
    cast = op_class.build(operands=[op.operand(0)], result_types=op.result_types())
    try:
        cast.verify()
    except Exception:
        cast.drop_all_references()
        raise _Fallback() from None
    return cast




# ------------------------------------------------------------------------------------------
# nn.generic: custom ops and builtins without an nn op
# ------------------------------------------------------------------------------------------


def _generic(op: _OpView) -> Operation:
    operator, opcode = op.operator, op.opcode
    custom = op.builtin == Op.CUSTOM
    props: dict[str, Attribute] = {"custom": _bool(custom), "version": _i64(opcode.version)}
    if custom:
        code = opcode.customCode
        name = code.decode("utf-8", "replace") if isinstance(code, bytes) else (code or "")
        props["op_name"] = StringAttr(name or "CUSTOM")
        raw = _custom_options(op)
        if raw:
            props["options"] = nn.GenericOp.encode_options(raw)
    else:
        props["op_name"] = StringAttr(op.op_name)
        packed = _packed_builtin_options(operator)
        if packed is not None:
            props["options_type"] = StringAttr(packed[0])
            props["options"] = nn.GenericOp.encode_options(packed[1])
    operands = [op.imp.value(t, op.where) for t in op.inputs if t != -1]
    generic = nn.GenericOp.build(
        operands=[operands], result_types=[op.result_types()], properties=props
    )
    omitted = [k for k, t in enumerate(op.inputs) if t == -1]
    if omitted:
        generic.attributes["nn.omitted_inputs"] = nn.i64_array(omitted)
    return generic


def _custom_options(op: _OpView) -> bytes:
    operator = op.operator
    if operator.largeCustomOptionsOffset and operator.largeCustomOptionsOffset > 1:
        start, size = operator.largeCustomOptionsOffset, operator.largeCustomOptionsSize
        if start + size > len(op.imp.data):
            raise op.fail("custom options lie outside the file")
        return bytes(op.imp.data[start : start + size])
    data = operator.customOptions
    if data is None or isinstance(data, int):
        return b""
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8, copy=False).tobytes()
    return bytes(data)


def _packed_builtin_options(operator: schema.OperatorT) -> tuple[str, bytes] | None:
    """(union member name, the options table packed alone as a flatbuffer) or None."""
    for options, tag, names in (
        (operator.builtinOptions, operator.builtinOptionsType, _OPTIONS_NAMES),
        (operator.builtinOptions2, operator.builtinOptions2Type, _OPTIONS2_NAMES),
    ):
        if options is not None and tag in names:
            builder = flatbuffers.Builder(64)
            builder.Finish(options.Pack(builder))
            return names[tag], bytes(builder.Output())
    return None


# ------------------------------------------------------------------------------------------
# Folders: ops evaluated at import (they return False to be imported normally instead)
# ------------------------------------------------------------------------------------------


def _fold_dequantize(op: _OpView) -> bool:
    """DEQUANTIZE of a float16 (or a quantized integer) constant -> an f32 constant."""
    if len(op.inputs) != 1 or len(op.outputs) != 1 or not op.has(0):
        return False
    src, out = op.inputs[0], op.outputs[0]
    if op.imp.tensor(out).type != TT.FLOAT32:
        return False
    array = op.imp.constant_array(src)
    if array is None:
        return False
    if array.dtype.kind == "f":
        folded = array.astype(np.float32)
    elif array.dtype.kind in "iu":
        params = op.imp.quant_params(src)
        if params is None:
            return False
        folded = _dequantize(array, params)
    else:
        return False
    _register_fold(op, folded)
    return True


def _dequantize(array: np.ndarray, q: _QuantParams) -> np.ndarray:
    """TFLite's affine dequantization, per tensor or per axis (validated parameters)."""
    scale = np.asarray(q.scales, dtype=np.float32)
    zero = np.asarray(q.zero_points, dtype=np.int64)
    values = array.astype(np.int64)
    if q.axis is None or scale.size == 1:
        return (values - zero[0]).astype(np.float32) * scale[0]
    bshape = [1] * array.ndim
    bshape[q.axis] = scale.size
    return (values - zero.reshape(bshape)).astype(np.float32) * scale.reshape(bshape)


def _fold_quantize(op: _OpView) -> bool:
    """QUANTIZE of a float32 constant (TFLite's quantizer writes one behind a DENSIFY of
    sparse float weights) -> a quantized constant holding the storage integers, computed as
    LiteRT's AffineQuantize does: round half away from zero of x / scale in float32, plus
    the zero point, clamped to the storage range."""
    if len(op.inputs) != 1 or len(op.outputs) != 1 or not op.has(0):
        return False
    src, out = op.inputs[0], op.outputs[0]
    array = op.imp.constant_array(src)
    if array is None or array.dtype != np.float32:
        return False
    qtype = op.imp.quant_type(out)
    params = op.imp.quant_params(out)
    if qtype is None or params is None:
        return False
    scale = np.asarray(params.scales, np.float32)
    zero = np.asarray(params.zero_points, np.int64)
    if params.axis is not None:
        if not 0 <= params.axis < array.ndim:
            return False
        bshape = [1] * array.ndim
        bshape[params.axis] = scale.size
        scale, zero = scale.reshape(bshape), zero.reshape(bshape)
    with np.errstate(all="ignore"):
        scaled = (array / scale).astype(np.float32).astype(np.float64)  # exact in float64
    rounded = np.nan_to_num(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), nan=0.0)
    stored = np.clip(rounded + zero, qtype.storage_min, qtype.storage_max)
    _register_fold(op, stored.astype(op.imp.element(out)[1]))
    return True


def _fold_densify(op: _OpView) -> bool:
    """DENSIFY of a sparse constant -> the dense constant (densified when read)."""
    if len(op.outputs) != 1 or not op.has(0):
        return False
    array = op.imp.constant_array(op.inputs[0])
    if array is None:
        return False
    if op.imp.element(op.outputs[0])[1] != array.dtype:
        raise op.fail("the output type differs from the input type")
    _register_fold(op, array)
    return True


def _register_fold(op: _OpView, array: np.ndarray) -> None:
    out = op.outputs[0]
    if tuple(array.shape) != op.out_shape():
        raise op.fail(f"folded value has shape {list(array.shape)}, the output tensor "
                      f"'{op.imp.name(out)}' is declared {list(op.out_shape())}")
    op.imp.folded[out] = array


_FOLDERS: dict[int, Callable[[_OpView], bool]] = {
    Op.QUANTIZE: _fold_quantize,
    Op.DEQUANTIZE: _fold_dequantize,
    Op.DENSIFY: _fold_densify,
}


# ------------------------------------------------------------------------------------------
# TFLite sparse tensors (tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc)
# ------------------------------------------------------------------------------------------


def _index_vector(vector: Any) -> np.ndarray:
    """A SparseIndexVector (Int32Vector / Uint16Vector / Uint8Vector) as int64."""
    values = getattr(vector, "values", None)
    if values is None or isinstance(values, int):
        return np.zeros(0, np.int64)
    return np.asarray(values).astype(np.int64)


def _densify(
    values: np.ndarray,
    shape: tuple[int, ...],
    sparsity: schema.SparsityParametersT,
    imp: _Importer,
    name: str,
) -> np.ndarray:
    """The dense array of a sparse constant.

    An n-D tensor, of which k dimensions are blocked (`block_map` names them), is stored as
    an (n + k)-D tensor: the n block-grid dimensions (dimension d has size shape[d] /
    block size) and the k in-block dimensions (ids n .. n+k-1). `traversal_order` lists the
    n + k dimensions in storage order, and `dim_metadata[i]` describes the i-th traversed
    dimension: DENSE (all `dense_size` indices) or SPARSE_CSR (for each position of the
    enclosing levels, the indices `array_indices[array_segments[p]:array_segments[p+1]]`).
    Values are stored in the lexicographic order of that traversal. This walks it one
    level at a time with numpy instead of recursing per element.
    """

    def fail(message: str) -> QccError:
        return imp.error(f"sparse constant '{name}': {message}")

    n = len(shape)
    order = _int_list(sparsity.traversalOrder)
    block_map = _int_list(sparsity.blockMap)
    dims = list(sparsity.dimMetadata or [])
    k = len(block_map)
    if len(order) != n + k or len(dims) != n + k:
        raise fail(f"traversal_order has {len(order)} and dim_metadata {len(dims)} entries "
                   f"for a rank-{n} tensor with {k} blocked dimensions")
    if sorted(order[:n]) != list(range(n)) or sorted(order[n:]) != list(range(n, n + k)):
        raise fail(f"invalid traversal_order {order}")
    if len(set(block_map)) != k or any(not 0 <= d < n for d in block_map):
        raise fail(f"invalid block_map {block_map}")
    total = _product(shape)
    if total * values.dtype.itemsize > _MAX_CONSTANT_BYTES:
        raise fail(f"dense shape {list(shape)} is too large")

    block_size = [dims[order.index(n + b)].denseSize for b in range(k)]
    blocked = list(shape)
    for b, d in enumerate(block_map):
        if block_size[b] < 1 or shape[d] % block_size[b]:
            raise fail(f"block size {block_size[b]} does not divide dimension {d}")
        blocked[d] = shape[d] // block_size[b]
    level_size = [blocked[d] if d < n else block_size[d - n] for d in order]

    prev = np.zeros(1, np.int64)  # per stored element so far: its position at this level
    coords: list[np.ndarray] = []  # per level: each element's index along that level
    for level, meta in enumerate(dims):
        size = level_size[level]
        if meta.format == schema.DimensionType.DENSE:
            if meta.denseSize != size:
                raise fail(f"dimension {level} is DENSE of size {meta.denseSize}, "
                           f"expected {size}")
            if len(prev) * size > total:
                raise fail("more stored elements than the dense tensor has")
            coords = [np.repeat(c, size) for c in coords]
            coords.append(np.tile(np.arange(size, dtype=np.int64), len(prev)))
            prev = (prev[:, None] * size + np.arange(size, dtype=np.int64)).reshape(-1)
        elif meta.format == schema.DimensionType.SPARSE_CSR:
            segments = _index_vector(meta.arraySegments)
            indices = _index_vector(meta.arrayIndices)
            if len(prev) and int(prev.max()) + 1 >= len(segments):
                raise fail(f"array_segments of dimension {level} is too short")
            starts, ends = segments[prev], segments[prev + 1]
            counts = ends - starts
            if len(counts) and (counts.min() < 0 or starts.min() < 0
                                or ends.max() > len(indices)):
                raise fail(f"array_segments of dimension {level} are not valid offsets")
            count = int(counts.sum())
            if count > total:
                raise fail("more stored elements than the dense tensor has")
            parent = np.repeat(np.arange(len(prev)), counts)
            first = np.repeat(np.cumsum(counts) - counts, counts)
            prev = starts[parent] + (np.arange(count, dtype=np.int64) - first)
            level_index = indices[prev]
            if count and (level_index.min() < 0 or level_index.max() >= size):
                raise fail(f"array_indices of dimension {level} exceed its size {size}")
            coords = [c[parent] for c in coords]
            coords.append(level_index)
        else:
            raise fail(f"unknown dimension format {meta.format}")

    stored = len(prev)
    if stored > len(values):
        raise fail(f"the format describes {stored} values, the buffer holds {len(values)}")
    original: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    for level in range(n):
        original[order[level]] = coords[level]
    for level in range(n, n + k):
        b = order[level] - n
        d = block_map[b]
        original[d] = original[d] * block_size[b] + coords[level]
    dense = np.zeros(total, dtype=values.dtype)
    if stored:
        flat = np.ravel_multi_index(tuple(original), shape) if n else np.zeros(1, np.int64)
        dense[flat] = values[:stored]
    return dense.reshape(shape)
