"""The TFLite backend: qcc IR -> a `.tflite` flatbuffer.

`export_tflite(module)` is the inverse of `qcc.frontends.tflite.import_tflite`: it writes
the function `@main` (or the module's only function) as the single subgraph of a TFLite
model, with LiteRT's own schema object API (`ai_edge_litert.schema_py_generated`).
`export_tflite_with_tensor_map(module)` also returns the tensor index written for each SSA
value, to read values back from LiteRT exactly (annotate-ranges' LiteRT fallback).

What goes where:

  * every `nn` op becomes the TFLite builtin it mirrors (table `_EXPORTERS` below); the
    static configuration that the IR keeps as properties but TFLite passes as constant
    tensors is written back as int32 constant inputs (RESHAPE's shape, PAD's paddings,
    MEAN/SUM's axes, TRANSPOSE's perm, SLICE/STRIDED_SLICE's begin/end/size/strides,
    SPLIT's axis, TRANSPOSE_CONV's output shape, RESIZE_*'s size);
  * `nn.generic` becomes a CUSTOM operator (custom code and raw option bytes) or the
    builtin of its name, its options table unpacked from the stored bytes;
  * `quant.qcast` becomes QUANTIZE (also int8 -> int8 requantize), `quant.dcast`
    DEQUANTIZE; `quant.stats` (calibration ranges) are identities and vanish;
  * quantized element types (`!quant.uniform`) become their storage type plus
    `QuantizationParameters` (scale, zero point, quantized dimension);
  * tensor names are the producing op's location (`loc("conv_1/Relu")`), model inputs and
    outputs take the function's `nn.name` argument/result attributes; missing or duplicate
    names are made unique;
  * operator versions follow TFLite's `op_version.cc` for the tensor types in use (int8
    CONV_2D 3, int8 ADD 2, int8 FULLY_CONNECTED 4, ...), the version the converter writes.

Anything without a TFLite form (an unknown op, a dynamic shape, an unsupported element
type) raises `QccError` naming the op and its location.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import encode, packer
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FusedLoc,
    IntegerType,
    ModuleOp,
    NameLoc,
    Signedness,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue

from qcc.errors import QccError

__all__ = ["export_tflite", "export_tflite_with_tensor_map"]

Op = schema.BuiltinOperator
TT = schema.TensorType

_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3
_BUFFER_ALIGNMENT = 16  # schema.fbs: `data:[ubyte] (force_align: 16)`
_NO_INPUT = -1  # an omitted optional operator input

_PADDING = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}


# ------------------------------------------------------------------------------------------
# Public entry point
# ------------------------------------------------------------------------------------------


def export_tflite(module: ModuleOp) -> bytes:
    """Serialize `module` (its `@main` function) as a `.tflite` flatbuffer."""
    return export_tflite_with_tensor_map(module)[0]


def export_tflite_with_tensor_map(
    module: ModuleOp | FuncOp,
) -> tuple[bytes, dict[SSAValue, int]]:
    """`export_tflite`, plus where each value went: the index, in the subgraph's tensor
    list, of the tensor written for every SSA value of the function (its arguments, every
    op result, constants included; a `quant.stats` result maps to its operand's tensor).
    Tensors synthesized from op properties (RESHAPE's shape, ...) belong to no value.

    `module` may also be the `func.func` itself. This is what lets a caller read a value
    back from LiteRT (`Interpreter.get_tensor(index)`) without guessing by name."""
    func = module if isinstance(module, FuncOp) else _main_function(module)
    writer = _Writer(func)
    model = writer.model()
    if isinstance(module, ModuleOp):
        _write_metadata(model, module)
    total = sum(len(b.data) for b in model.buffers if b.data is not None)
    builder = _Builder(total + 64 * 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output()), dict(writer.value_tensor)


def _write_metadata(model: schema.ModelT, module: ModuleOp) -> None:
    """Write back the metadata entries the importer kept (`nn.metadata` on the module: name ->
    hex bytes), e.g. TFLITE_METADATA with the input normalization, so they survive qcc."""
    from xdsl.dialects.builtin import DictionaryAttr, StringAttr

    kept = module.attributes.get("nn.metadata")
    if not isinstance(kept, DictionaryAttr):
        return
    entries = list(model.metadata or [])
    for name, value in kept.data.items():
        if not isinstance(value, StringAttr):
            continue
        text = value.data[2:] if value.data.startswith("0x") else value.data
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(bytes.fromhex(text), dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        entries.append(entry)
    model.metadata = entries


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _main_function(module: ModuleOp) -> FuncOp:
    from qcc.runtime.executor import find_main

    try:
        return find_main(module)
    except ValueError as e:
        raise QccError(f"cannot export to TFLite: {e}") from None


# ------------------------------------------------------------------------------------------
# Types
# ------------------------------------------------------------------------------------------


def _where(op: Operation) -> str:
    name = _loc_name(op.location)
    return f"'{op.name}' at loc(\"{name}\")" if name else f"'{op.name}' (no location)"


def _loc_name(loc: Attribute) -> str | None:
    if isinstance(loc, NameLoc):
        return loc.desc.data
    if isinstance(loc, FusedLoc):
        names = [_loc_name(l) for l in loc.locations]  # noqa: E741
        names = [n for n in names if n]
        return ";".join(names) if names else None
    return None


def _result_names(op: Operation) -> list[str | None]:
    """Preferred tensor names of `op`'s results, from its location (one name per result;
    a fused location of several names names several results, as TFLite's importer writes
    multi-output ops), else the SSA name hints."""
    n = len(op.results)
    loc = op.location
    names: list[str | None] = [None] * n
    if isinstance(loc, FusedLoc):
        parts = [_loc_name(l) for l in loc.locations]  # noqa: E741
        if len(parts) == n:
            names = parts
        elif parts and parts[0]:
            names[0] = parts[0]
    elif isinstance(loc, NameLoc):
        names[0] = loc.desc.data
        for i in range(1, n):
            names[i] = f"{loc.desc.data}:{i}"
    for i, r in enumerate(op.results):
        if names[i] is None and r.name_hint:
            names[i] = r.name_hint
    return names


_quant_classes: tuple[type, type] | None | bool = False


def _quant_types() -> tuple[type, type] | None:
    """(UniformQuantizedType, UniformQuantizedPerAxisType) from qcc.dialects.quant, or None
    while that module does not exist."""
    global _quant_classes
    if _quant_classes is False:
        try:
            from qcc.dialects import quant
        except ImportError:
            _quant_classes = None
        else:
            per_tensor = getattr(quant, "UniformQuantizedType", None)
            per_axis = getattr(quant, "UniformQuantizedPerAxisType", None)
            _quant_classes = (per_tensor, per_axis) if per_tensor and per_axis else None
    return _quant_classes  # type: ignore[return-value]


def _is_quantized(elem: Attribute) -> bool:
    classes = _quant_types()
    return classes is not None and isinstance(elem, classes)


def _storage_type(elem: Attribute) -> Attribute:
    return elem.storage_type if _is_quantized(elem) else elem  # type: ignore[attr-defined]


def _tflite_type(elem: Attribute) -> int | None:
    """The TFLite TensorType of a (storage) element type, or None."""
    if isinstance(elem, Float32Type):
        return TT.FLOAT32
    if isinstance(elem, Float16Type):
        return TT.FLOAT16
    if isinstance(elem, Float64Type):
        return TT.FLOAT64
    if isinstance(elem, BFloat16Type):
        return TT.BFLOAT16
    if isinstance(elem, IntegerType):
        width = elem.width.data
        unsigned = elem.signedness.data == Signedness.UNSIGNED
        if width == 1:
            return TT.BOOL
        table = {
            8: (TT.INT8, TT.UINT8),
            16: (TT.INT16, TT.UINT16),
            32: (TT.INT32, TT.UINT32),
            64: (TT.INT64, TT.UINT64),
            4: (TT.INT4, TT.UINT4),
        }
        if width in table:
            return table[width][1 if unsigned else 0]
    return None


class _Builder(flatbuffers.Builder):
    """A flatbuffers Builder that remembers what `_SharedQuantizationT` already wrote."""

    __slots__ = ("shared",)

    def __init__(self, initial_size: int = 1024):
        super().__init__(initial_size)
        self.shared: dict[tuple, int] = {}


class _SharedQuantizationT(schema.QuantizationParametersT):
    """QuantizationParametersT whose tables and vectors are written once per content.

    Every per-axis weight carries one float scale and one int64 zero point (all 0) per
    channel, and the schema demands the full arrays (LiteRT's InterpreterBuilder rejects a
    `zero_point` whose length differs from `scale`'s). A flatbuffer may reference one
    vector or table from several parents, so tensors with equal zero points (or equal
    parameters altogether, as along same-scale int8 ops) point at a single copy: every
    reader still sees each tensor's complete parameters, and a per-channel int8 weight costs
    4 bytes a channel instead of 12."""

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802 (generated-code name)
        shared = getattr(builder, "shared", None)
        if shared is None or self.details is not None or self.detailsType:
            return super().Pack(builder)

        def vector(field: str, values: Any, dtype: str) -> int | None:
            if values is None:
                return None
            arr = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))
            key = (field, arr.tobytes())
            if key not in shared:
                shared[key] = builder.CreateNumpyVector(arr)
            return shared[key]

        offsets = (
            vector("min", self.min, "<f4"),
            vector("max", self.max, "<f4"),
            vector("scale", self.scale, "<f4"),
            vector("zero_point", self.zeroPoint, "<i8"),
        )
        key = ("table", *offsets, int(self.quantizedDimension))
        if key not in shared:
            lo, hi, scale, zero_point = offsets
            schema.QuantizationParametersStart(builder)
            if lo is not None:
                schema.QuantizationParametersAddMin(builder, lo)
            if hi is not None:
                schema.QuantizationParametersAddMax(builder, hi)
            if scale is not None:
                schema.QuantizationParametersAddScale(builder, scale)
            if zero_point is not None:
                schema.QuantizationParametersAddZeroPoint(builder, zero_point)
            schema.QuantizationParametersAddQuantizedDimension(
                builder, int(self.quantizedDimension)
            )
            shared[key] = schema.QuantizationParametersEnd(builder)
        return shared[key]


def _quantization(elem: Attribute) -> schema.QuantizationParametersT | None:
    if not _is_quantized(elem):
        return None
    q = _SharedQuantizationT()
    _, per_axis = _quant_types()  # type: ignore[misc]
    if isinstance(elem, per_axis):
        q.scale = [float(s) for s in elem.scales]  # type: ignore[attr-defined]
        q.zeroPoint = [int(z) for z in elem.zero_points]  # type: ignore[attr-defined]
        q.quantizedDimension = int(elem.axis)  # type: ignore[attr-defined]
    else:
        q.scale = [float(elem.scale)]  # type: ignore[attr-defined]
        q.zeroPoint = [int(elem.zero_point)]  # type: ignore[attr-defined]
        q.quantizedDimension = 0
    return q


def _is_per_axis(elem: Attribute) -> bool:
    classes = _quant_types()
    return classes is not None and isinstance(elem, classes[1])


# ------------------------------------------------------------------------------------------
# Buffers
# ------------------------------------------------------------------------------------------


class _AlignedBufferT(schema.BufferT):
    """A BufferT whose data (a numpy uint8 array) is packed 16-byte aligned in one copy.

    The generated `BufferT.Pack` ignores `force_align: 16`; TFLite reads constant data in
    place, so it is aligned the way the C++ writer aligns it."""

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802 (generated-code name)
        if self.data is None:
            return super().Pack(builder)
        payload = self.data.tobytes() if isinstance(self.data, np.ndarray) else bytes(self.data)
        builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
        builder.head = builder.head - len(payload)
        builder.Bytes[builder.head : builder.head + len(payload)] = payload
        data = builder.EndVector()
        schema.BufferStart(builder)
        schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def _constant_bytes(value: DenseIntOrFPElementsAttr, elem: Attribute) -> bytes:
    """The little-endian bytes TFLite stores for a dense constant of element type `elem`."""
    raw = value.data.data
    if isinstance(elem, IntegerType) and elem.width.data == 1:
        # xDSL stores i1 as one byte per element (true = 0xff); TFLite bools are 0/1.
        return (np.frombuffer(raw, dtype=np.uint8) != 0).astype(np.uint8).tobytes()
    return raw


# ------------------------------------------------------------------------------------------
# The writer
# ------------------------------------------------------------------------------------------


@dataclass
class _Emit:
    """One operator to write: opcode, tensor indices, options, version."""

    code: int
    inputs: list[int]
    outputs: list[int]
    options: Any = None
    version: int = 1
    custom_code: str | None = None
    custom_options: bytes | None = None
    options2: Any = None


@dataclass
class _Writer:
    func: FuncOp
    tensors: list[schema.TensorT] = field(default_factory=list)
    buffers: list[schema.BufferT] = field(default_factory=lambda: [schema.BufferT()])
    operators: list[schema.OperatorT] = field(default_factory=list)
    opcodes: list[schema.OperatorCodeT] = field(default_factory=list)
    opcode_index: dict[tuple[int, str | None], int] = field(default_factory=dict)
    value_tensor: dict[SSAValue, int] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    reserved: dict[str, SSAValue] = field(default_factory=dict)
    output_names: dict[SSAValue, str] = field(default_factory=dict)

    # -- names ---------------------------------------------------------------------------

    def _unique(self, base: str | None, value: SSAValue | None, fallback: str) -> str:
        name = base or fallback
        owner = self.reserved.get(name)
        if name not in self.used_names and (owner is None or owner is value):
            return name
        k = 1
        while True:
            candidate = f"{name}_{k}"
            if candidate not in self.used_names and candidate not in self.reserved:
                return candidate
            k += 1

    # -- tensors -------------------------------------------------------------------------

    def _check_type(self, t: Attribute, op: Operation | None, what: str) -> TensorType:
        where = _where(op) if op is not None else "the function signature"
        if not isinstance(t, TensorType):
            raise QccError(f"cannot export {where} to TFLite: {what} has type {t}, not a tensor")
        if any(d == DYNAMIC_INDEX or d < 0 for d in t.get_shape()):
            raise QccError(
                f"cannot export {where} to TFLite: {what} has a dynamic shape ({t})"
            )
        return t

    def add_tensor(
        self,
        t: Attribute,
        name: str | None,
        *,
        value: SSAValue | None = None,
        op: Operation | None = None,
        what: str = "a result",
        buffer: int = 0,
    ) -> int:
        tt = self._check_type(t, op, what)
        elem = tt.get_element_type()
        code = _tflite_type(_storage_type(elem))
        if code is None:
            where = _where(op) if op is not None else "the function signature"
            raise QccError(
                f"cannot export {where} to TFLite: element type {elem} has no TFLite type"
            )
        tensor = schema.TensorT()
        if value is not None and value in self.output_names:
            name = self.output_names[value]
        tensor.name = self._unique(name, value, f"tensor_{len(self.tensors)}")
        self.used_names.add(tensor.name)
        tensor.shape = [int(d) for d in tt.get_shape()]
        if any(not 0 <= d < 2**31 for d in tensor.shape):
            where = _where(op) if op is not None else "the function signature"
            raise QccError(
                f"cannot export {where} to TFLite: {what} has shape {tensor.shape}; TFLite "
                "dimensions are int32"
            )
        tensor.type = code
        tensor.buffer = buffer
        tensor.hasRank = True
        tensor.quantization = _quantization(elem)
        self.tensors.append(tensor)
        index = len(self.tensors) - 1
        if value is not None:
            self.value_tensor[value] = index
        return index

    def add_buffer(self, data: bytes) -> int:
        buf = _AlignedBufferT()
        buf.data = np.frombuffer(data, dtype=np.uint8)
        self.buffers.append(buf)
        return len(self.buffers) - 1

    def add_i32_constant(self, op: Operation, suffix: str, values: Sequence[int] | int,
                         shape: Sequence[int] | None = None) -> int:
        """An int32 constant input synthesized from a static property of `op`."""
        arr = np.asarray(values, dtype="<i4")
        if shape is not None:
            arr = arr.reshape(shape)
        base = _result_names(op)[0] if op.results else None
        name = f"{base or op.name}/{suffix}"
        tensor = schema.TensorT()
        tensor.name = self._unique(name, None, name)
        self.used_names.add(tensor.name)
        tensor.shape = [int(d) for d in arr.shape]
        tensor.type = TT.INT32
        tensor.buffer = self.add_buffer(arr.tobytes())
        tensor.hasRank = True
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def bias_or_zeros(self, op: Operation, x: int, f: int, channels: int) -> int:
        """The op's bias tensor, or a zero bias when the IR has none: LiteRT's CONV_2D,
        DEPTHWISE_CONV_2D and int8 kernels insist on one ("Tensor at index 2 was optional
        but was expected"). Float: f32 zeros; quantized: int32 zeros with scale
        input_scale x weight_scale[c], zero point 0, as the quantize pass writes biases."""
        bias = getattr(op, "bias", None)
        if bias is not None:
            return self.tensor_of(bias, op)
        qx, qf = self.tensors[x].quantization, self.tensors[f].quantization
        tensor = schema.TensorT()
        base = _result_names(op)[0] if op.results else None
        name = f"{base or op.name}/zero_bias"
        tensor.name = self._unique(name, None, name)
        self.used_names.add(tensor.name)
        tensor.shape = [channels]
        tensor.hasRank = True
        if self.ttype(x) == TT.FLOAT32 or qx is None or qf is None or not qf.scale:
            tensor.type = TT.FLOAT32
            tensor.buffer = self.add_buffer(np.zeros(channels, "<f4").tobytes())
        else:
            in_scale = np.float32(qx.scale[0])
            w_scales = np.asarray(qf.scale, np.float32)
            scales = (in_scale * np.broadcast_to(w_scales, (channels,))).astype(np.float32)
            q = schema.QuantizationParametersT()
            q.scale = [float(v) for v in scales]
            q.zeroPoint = [0] * channels
            q.quantizedDimension = 0
            tensor.type = TT.INT32
            tensor.quantization = q
            tensor.buffer = self.add_buffer(np.zeros(channels, "<i4").tobytes())
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def tensor_of(self, value: SSAValue | None, op: Operation) -> int:
        if value is None:
            return _NO_INPUT
        try:
            return self.value_tensor[value]
        except KeyError:
            raise QccError(
                f"cannot export {_where(op)} to TFLite: an operand is not defined before it"
            ) from None

    def ttype(self, index: int) -> int | None:
        return None if index < 0 else self.tensors[index].type

    def is_per_channel(self, index: int) -> bool:
        if index < 0:
            return False
        q = self.tensors[index].quantization
        return q is not None and q.scale is not None and len(q.scale) > 1

    def scale(self, index: int) -> float:
        q = self.tensors[index].quantization if index >= 0 else None
        return float(q.scale[0]) if q is not None and q.scale else 0.0

    def results(self, op: Operation) -> list[int]:
        names = _result_names(op)
        return [
            self.add_tensor(r.type, names[i], value=r, op=op, what=f"result #{i}")
            for i, r in enumerate(op.results)
        ]

    # -- operators -----------------------------------------------------------------------

    def opcode(self, code: int, custom_code: str | None, version: int) -> int:
        key = (code, custom_code)
        if key not in self.opcode_index:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, Op.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.customCode = custom_code
            oc.version = version
            self.opcode_index[key] = len(self.opcodes)
            self.opcodes.append(oc)
        oc = self.opcodes[self.opcode_index[key]]
        oc.version = max(oc.version, version)
        return self.opcode_index[key]

    def emit(self, e: _Emit) -> None:
        o = schema.OperatorT()
        o.opcodeIndex = self.opcode(e.code, e.custom_code, e.version)
        o.inputs = list(e.inputs)
        o.outputs = list(e.outputs)
        for options in (e.options, e.options2):
            if options is not None:  # packed now, so a bad value is reported with its op
                options.Pack(flatbuffers.Builder(64))
        if e.options is not None:
            o.builtinOptionsType = _union_tag(schema.BuiltinOptions, e.options)
            o.builtinOptions = e.options
        if e.options2 is not None:
            o.builtinOptions2Type = _union_tag(schema.BuiltinOptions2, e.options2)
            o.builtinOptions2 = e.options2
        if e.custom_options:
            o.customOptions = np.frombuffer(e.custom_options, dtype=np.uint8)
            o.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        self.operators.append(o)

    # -- the function --------------------------------------------------------------------

    def model(self) -> schema.ModelT:
        func = self.func
        body = func.body.blocks
        if len(body) != 1:
            raise QccError(
                f"cannot export @{func.sym_name.data} to TFLite: expected one block, "
                f"got {len(body)}"
            )
        block = body.first
        assert block is not None
        ret = block.last_op
        if not isinstance(ret, ReturnOp):
            raise QccError(f"cannot export @{func.sym_name.data}: the body has no func.return")

        arg_names = _attr_names(func.arg_attrs, len(block.args))
        res_names = _attr_names(func.res_attrs, len(ret.arguments))
        # Model output names win over the names of the ops producing them.
        for value, name in zip(ret.arguments, res_names):
            if name and value not in self.output_names and name not in self.reserved:
                self.output_names[value] = name
                self.reserved[name] = value
        for arg, name in zip(block.args, arg_names):
            if name and name not in self.reserved:
                self.reserved[name] = arg

        inputs = [
            self.add_tensor(
                arg.type, arg_names[i] or arg.name_hint, value=arg, what=f"argument #{i}"
            )
            for i, arg in enumerate(block.args)
        ]
        for op in block.ops:
            if op is ret:
                break
            self.op(op)
        outputs = [self.tensor_of(v, ret) for v in ret.arguments]

        subgraph = schema.SubGraphT()
        subgraph.name = "main"
        subgraph.tensors = self.tensors
        subgraph.inputs = inputs
        subgraph.outputs = outputs
        subgraph.operators = self.operators
        model = schema.ModelT()
        model.version = _SCHEMA_VERSION
        model.description = "qcc"
        model.operatorCodes = self.opcodes
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        return model

    def op(self, op: Operation) -> None:
        if op.regions and any(r.blocks for r in op.regions):
            raise QccError(
                f"cannot export {_where(op)} to TFLite: ops with regions are not supported"
            )
        if op.name == "nn.constant":
            self.constant(op)
            return
        if op.name == "quant.stats":
            # calibration annotation: an identity, its result is its operand's tensor
            self.value_tensor[op.results[0]] = self.tensor_of(op.operands[0], op)
            return
        exporter = _EXPORTERS.get(op.name)
        if exporter is None:
            raise QccError(f"cannot export {_where(op)} to TFLite: no TFLite operator for it")
        try:
            exporter(self, op)
        except (TypeError, ValueError, OverflowError) as e:
            # a value the flatbuffer field cannot hold ("bad number 4294967296 for type int32"
            # from flatbuffers, an int32 constant out of range from numpy, ...)
            raise QccError(f"cannot export {_where(op)} to TFLite: {_one_line(e)}") from None

    def constant(self, op: Operation) -> None:
        value = op.properties["value"]
        result = op.results[0]
        rtype = self._check_type(result.type, op, "the constant")
        elem = rtype.get_element_type()
        storage = _storage_type(elem)
        assert isinstance(value, DenseIntOrFPElementsAttr)
        velem = value.get_element_type()
        if _is_quantized(elem):
            if not (
                isinstance(velem, IntegerType)
                and isinstance(storage, IntegerType)
                and velem.width.data == storage.width.data
            ):
                raise QccError(
                    f"cannot export {_where(op)} to TFLite: a quantized constant needs integer "
                    f"data of its storage type {storage}, got {velem}"
                )
        elif velem != elem:
            raise QccError(
                f"cannot export {_where(op)} to TFLite: value type {velem} differs from the "
                f"result element type {elem}"
            )
        buffer = self.add_buffer(_constant_bytes(value, storage))
        self.add_tensor(
            result.type, _result_names(op)[0], value=result, op=op, what="the constant",
            buffer=buffer,
        )


def _attr_names(attrs: ArrayAttr[DictionaryAttr] | None, n: int) -> list[str | None]:
    names: list[str | None] = [None] * n
    if attrs is None:
        return names
    for i, d in enumerate(attrs.data[:n]):
        v = d.data.get("nn.name")
        if isinstance(v, StringAttr):
            names[i] = v.data
    return names


def _union_tag(union: type, options: Any) -> int:
    cls_name = type(options).__name__
    tag = getattr(union, cls_name[:-1], None) if cls_name.endswith("T") else None
    if tag is None:
        raise QccError(f"internal error: {cls_name} is not a member of {union.__name__}")
    return tag


# ------------------------------------------------------------------------------------------
# Op exporters: nn / quant op -> TFLite builtin
# ------------------------------------------------------------------------------------------

_EXPORTERS: dict[str, Callable[[_Writer, Operation], None]] = {}


def _exports(*names: str):
    def register(fn: Callable[[_Writer, Operation], None]):
        for n in names:
            _EXPORTERS[n] = fn
        return fn

    return register


def _p(op: Operation, name: str) -> Attribute | None:
    return op.properties.get(name)


def _ints(op: Operation, name: str) -> list[int]:
    attr = _p(op, name)
    return [] if attr is None else [int(v) for v in attr.get_values()]  # type: ignore[attr-defined]


def _int(op: Operation, name: str, default: int = 0) -> int:
    attr = _p(op, name)
    return default if attr is None else int(attr.value.data)  # type: ignore[attr-defined]


def _bool(op: Operation, name: str) -> bool:
    return bool(_int(op, name, 0))


def _float(op: Operation, name: str, default: float) -> float:
    attr = _p(op, name)
    return default if attr is None else float(attr.value.data)  # type: ignore[attr-defined]


def _str(op: Operation, name: str, default: str) -> str:
    attr = _p(op, name)
    return default if attr is None else attr.data  # type: ignore[attr-defined]


def _act(op: Operation) -> int:
    name = _str(op, "fused_activation", "NONE")
    code = getattr(schema.ActivationFunctionType, name, None)
    if code is None:
        raise QccError(f"cannot export {_where(op)} to TFLite: unknown activation {name!r}")
    return code


def _padding(op: Operation) -> int:
    name = _str(op, "padding", "VALID")
    if name not in _PADDING:
        raise QccError(f"cannot export {_where(op)} to TFLite: unknown padding {name!r}")
    return _PADDING[name]


def _operand(op: Operation, name: str) -> SSAValue | None:
    return getattr(op, name)


def _rank(w: _Writer, index: int) -> int:
    return len(w.tensors[index].shape)


# Version helpers, following tensorflow/lite/tools/versioning/op_version.cc.


def _v_int8_16(t: int | None, int8: int = 2, int16: int | None = None) -> int:
    if int16 is not None and t == TT.INT16:
        return int16
    if t == TT.INT8:
        return int8
    return 1


@_exports("nn.conv2d")
def _conv2d(w: _Writer, op: Operation) -> None:
    x, f = w.tensor_of(op.input, op), w.tensor_of(op.filter, op)  # type: ignore[attr-defined]
    b = w.bias_or_zeros(op, x, f, w.tensors[f].shape[0])
    (y,) = w.results(op)
    o = schema.Conv2DOptionsT()
    o.padding = _padding(op)
    o.strideH, o.strideW = _ints(op, "stride")
    o.dilationHFactor, o.dilationWFactor = _ints(op, "dilation")
    o.fusedActivationFunction = _act(op)
    tx, tf, ty = w.ttype(x), w.ttype(f), w.ttype(y)
    if w.tensors[x].shape[3] != w.tensors[f].shape[3]:
        version = 6  # grouped convolution
    elif tx == TT.INT16 and tf == TT.INT8:
        version = 4
    elif tx == TT.INT8 and tf == TT.INT8 and ty == TT.INT8:
        version = 3
    elif tx == TT.INT8 and tf == TT.INT4:
        version = 7
    elif tx == TT.FLOAT32 and tf == TT.INT8 and ty == TT.FLOAT32:
        version = 5 if w.is_per_channel(f) else 2
    else:
        version = 1
    w.emit(_Emit(Op.CONV_2D, [x, f, b], [y], o, version))


@_exports("nn.depthwise_conv2d")
def _depthwise(w: _Writer, op: Operation) -> None:
    x, f = w.tensor_of(op.input, op), w.tensor_of(op.filter, op)  # type: ignore[attr-defined]
    b = w.bias_or_zeros(op, x, f, w.tensors[f].shape[3])
    (y,) = w.results(op)
    o = schema.DepthwiseConv2DOptionsT()
    o.padding = _padding(op)
    o.strideH, o.strideW = _ints(op, "stride")
    o.dilationHFactor, o.dilationWFactor = _ints(op, "dilation")
    o.depthMultiplier = _int(op, "depth_multiplier", 1)
    o.fusedActivationFunction = _act(op)
    tx, tf, ty = w.ttype(x), w.ttype(f), w.ttype(y)
    if tx == TT.INT16 and tf == TT.INT8:
        version = 5
    elif tx == TT.FLOAT32 and tf == TT.INT8 and ty == TT.FLOAT32:
        version = 6 if w.is_per_channel(f) else 4
    elif tx == TT.INT8 and tf == TT.INT8 and ty == TT.INT8:
        version = 3
    elif tx == TT.INT8 and tf == TT.INT4:
        version = 7
    elif o.dilationHFactor != 1 or o.dilationWFactor != 1:
        version = 2
    else:
        version = 1
    w.emit(_Emit(Op.DEPTHWISE_CONV_2D, [x, f, b], [y], o, version))


@_exports("nn.transpose_conv")
def _transpose_conv(w: _Writer, op: Operation) -> None:
    x, f = w.tensor_of(op.input, op), w.tensor_of(op.filter, op)  # type: ignore[attr-defined]
    b = w.tensor_of(op.bias, op)  # type: ignore[attr-defined]
    out_shape = list(op.results[0].type.get_shape())  # type: ignore[attr-defined]
    shape_t = w.add_i32_constant(op, "output_shape", out_shape)
    (y,) = w.results(op)
    o = schema.TransposeConvOptionsT()
    o.padding = _padding(op)
    o.strideH, o.strideW = _ints(op, "stride")
    o.fusedActivationFunction = _act(op)
    if o.fusedActivationFunction != schema.ActivationFunctionType.NONE:
        version = 4
    elif b >= 0:
        version = 3
    elif w.ttype(f) == TT.INT8:
        version = 2
    else:
        version = 1
    w.emit(_Emit(Op.TRANSPOSE_CONV, [shape_t, f, x, b], [y], o, version))


@_exports("nn.fully_connected")
def _fully_connected(w: _Writer, op: Operation) -> None:
    x, f = w.tensor_of(op.input, op), w.tensor_of(op.filter, op)  # type: ignore[attr-defined]
    b = w.tensor_of(op.bias, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.FullyConnectedOptionsT()
    o.fusedActivationFunction = _act(op)
    o.keepNumDims = _bool(op, "keep_num_dims")
    tx, tf, ty = w.ttype(x), w.ttype(f), w.ttype(y)
    if tx == TT.FLOAT32 and tf == TT.INT8 and ty == TT.FLOAT32 and w.is_per_channel(f):
        version = 12
    elif tx == TT.INT16 and tf == TT.INT16 and ty == TT.INT16:
        version = 7
    elif o.keepNumDims:
        version = 5
    elif tx == TT.INT8 and tf == TT.INT8 and ty == TT.INT8:
        version = 4
    elif tx == TT.INT8 and tf == TT.INT4 and ty == TT.INT8:
        version = 10
    elif tx == TT.FLOAT32 and tf == TT.INT8 and ty == TT.FLOAT32:
        version = 3
    else:
        version = 1
    w.emit(_Emit(Op.FULLY_CONNECTED, [x, f, b], [y], o, version))


@_exports("nn.batch_matmul")
def _batch_matmul(w: _Writer, op: Operation) -> None:
    a, b = w.tensor_of(op.lhs, op), w.tensor_of(op.rhs, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.BatchMatMulOptionsT()
    o.adjX, o.adjY = _bool(op, "adj_x"), _bool(op, "adj_y")
    w.emit(_Emit(Op.BATCH_MATMUL, [a, b], [y], o, _v_int8_16(w.ttype(a), 2, 3)))


def _binary_version(w: _Writer, code: int, a: int, b: int, y: int, op: Operation) -> int:
    ta = w.ttype(a)
    quantized = w.tensors[a].quantization is not None
    broadcast_5d = w.tensors[a].shape != w.tensors[b].shape and max(
        _rank(w, a), _rank(w, b)
    ) > 4
    if code == Op.ADD:
        if ta == TT.INT16 and not quantized:
            return 5
        if ta == TT.INT64:
            return 4
        return 2 if ta == TT.INT8 else 1
    if code == Op.SUB:
        if ta == TT.INT64:
            return 4
        if broadcast_5d:
            return 3
        return 2 if ta == TT.INT8 else 1
    if code == Op.MUL:
        if (ta == TT.INT16 and not quantized) or ta == TT.UINT32:
            return 7
        if ta == TT.INT64:
            return 5
        if ta == TT.INT16:
            return 4
        s1, s2, so = w.scale(a), w.scale(b), w.scale(y)
        if s1 and s2 and so and np.float32(s1) * np.float32(s2) / np.float32(so) >= 1.0:
            return 3
        return 2 if ta == TT.INT8 else 1
    if code == Op.DIV:
        return 2 if broadcast_5d else 1
    # MAXIMUM / MINIMUM
    if ta == TT.INT16 and w.ttype(y) == TT.INT16:
        return 4
    if broadcast_5d:
        return 3
    return 2 if ta == TT.INT8 else 1


_BINARY = {
    "nn.add": (Op.ADD, schema.AddOptionsT),
    "nn.sub": (Op.SUB, schema.SubOptionsT),
    "nn.mul": (Op.MUL, schema.MulOptionsT),
    "nn.div": (Op.DIV, schema.DivOptionsT),
    "nn.maximum": (Op.MAXIMUM, schema.MaximumMinimumOptionsT),
    "nn.minimum": (Op.MINIMUM, schema.MaximumMinimumOptionsT),
}


@_exports(*_BINARY)
def _binary(w: _Writer, op: Operation) -> None:
    code, options_cls = _BINARY[op.name]
    a, b = w.tensor_of(op.lhs, op), w.tensor_of(op.rhs, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = options_cls()
    if hasattr(o, "fusedActivationFunction"):
        o.fusedActivationFunction = _act(op)
    w.emit(_Emit(code, [a, b], [y], o, _binary_version(w, code, a, b, y, op)))


@_exports("nn.prelu")
def _prelu(w: _Writer, op: Operation) -> None:
    x, a = w.tensor_of(op.input, op), w.tensor_of(op.alpha, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    w.emit(_Emit(Op.PRELU, [x, a], [y]))


# op name -> (builtin, options class or None, version rule(input type) -> int)
_UNARY: dict[str, tuple[int, Callable[[], Any] | None, Callable[[int | None], int]]] = {
    "nn.relu": (Op.RELU, None, lambda t: 2 if t == TT.UINT8 else _v_int8_16(t, 2, 3)),
    "nn.relu6": (Op.RELU6, None, lambda t: _v_int8_16(t, 2, 3)),
    "nn.relu_n1_to_1": (Op.RELU_N1_TO_1, None, lambda t: 1),
    "nn.logistic": (Op.LOGISTIC, None, lambda t: _v_int8_16(t, 2, 3)),
    "nn.tanh": (Op.TANH, None, lambda t: _v_int8_16(t, 2, 3)),
    "nn.hard_swish": (Op.HARD_SWISH, schema.HardSwishOptionsT, lambda t: 1),
}


@_exports(*_UNARY)
def _unary(w: _Writer, op: Operation) -> None:
    code, options_cls, version = _UNARY[op.name]
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    w.emit(_Emit(code, [x], [y], options_cls() if options_cls else None, version(w.ttype(x))))


@_exports("nn.leaky_relu")
def _leaky_relu(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.LeakyReluOptionsT()
    o.alpha = _float(op, "alpha", 0.2)
    w.emit(_Emit(Op.LEAKY_RELU, [x], [y], o, 2 if w.ttype(x) == TT.INT16 else 1))


@_exports("nn.softmax")
def _softmax(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.SoftmaxOptionsT()
    o.beta = _float(op, "beta", 1.0)
    w.emit(_Emit(Op.SOFTMAX, [x], [y], o, _v_int8_16(w.ttype(x), 2, 3)))


@_exports("nn.pad")
def _pad(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    pad_value = op.pad_value  # type: ignore[attr-defined]
    pads = _ints(op, "paddings")
    paddings = w.add_i32_constant(op, "paddings", pads, [len(pads) // 2, 2])
    (y,) = w.results(op)
    version = 4 if _rank(w, x) > 4 else _v_int8_16(w.ttype(x), 2, 3)
    if pad_value is None:
        w.emit(_Emit(Op.PAD, [x, paddings], [y], schema.PadOptionsT(), version))
    else:
        v = w.tensor_of(pad_value, op)
        w.emit(_Emit(Op.PADV2, [x, paddings, v], [y], schema.PadV2OptionsT(), version))


_POOLS = {"nn.max_pool2d": Op.MAX_POOL_2D, "nn.avg_pool2d": Op.AVERAGE_POOL_2D}


@_exports(*_POOLS)
def _pool(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.Pool2DOptionsT()
    o.padding = _padding(op)
    o.strideH, o.strideW = _ints(op, "stride")
    o.filterHeight, o.filterWidth = _ints(op, "filter_size")
    o.fusedActivationFunction = _act(op)
    version = 3 if w.ttype(x) == TT.INT16 and w.ttype(y) == TT.INT16 else _v_int8_16(w.ttype(x))
    w.emit(_Emit(_POOLS[op.name], [x], [y], o, version))


_REDUCERS = {"nn.mean": Op.MEAN, "nn.sum": Op.SUM}


@_exports(*_REDUCERS)
def _reduce(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    axes = w.add_i32_constant(op, "axes", _ints(op, "axes"))
    (y,) = w.results(op)
    o = schema.ReducerOptionsT()
    o.keepDims = _bool(op, "keep_dims")
    code = _REDUCERS[op.name]
    if code == Op.MEAN:
        version = _v_int8_16(w.ttype(x), 2, 3)
    else:
        version = _v_int8_16(w.ttype(x), 2)
    w.emit(_Emit(code, [x, axes], [y], o, version))


@_exports("nn.reshape")
def _reshape(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    new_shape = list(op.results[0].type.get_shape())  # type: ignore[attr-defined]
    shape = w.add_i32_constant(op, "shape", new_shape)
    (y,) = w.results(op)
    w.emit(_Emit(Op.RESHAPE, [x, shape], [y]))


@_exports("nn.squeeze")
def _squeeze(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.SqueezeOptionsT()
    o.squeezeDims = _ints(op, "squeeze_dims")
    w.emit(_Emit(Op.SQUEEZE, [x], [y], o))


@_exports("nn.transpose")
def _transpose(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    perm = w.add_i32_constant(op, "perm", _ints(op, "perm"))
    (y,) = w.results(op)
    t, rank = w.ttype(x), _rank(w, x)
    if rank > 5:
        version = 6
    elif t == TT.INT16:
        version = 5
    elif rank > 4:
        version = 4
    elif t == TT.BOOL:
        version = 3
    else:
        version = _v_int8_16(t)
    w.emit(_Emit(Op.TRANSPOSE, [x, perm], [y], schema.TransposeOptionsT(), version))


@_exports("nn.concatenation")
def _concatenation(w: _Writer, op: Operation) -> None:
    xs = [w.tensor_of(v, op) for v in op.operands]
    (y,) = w.results(op)
    o = schema.ConcatenationOptionsT()
    o.axis = _int(op, "axis")
    o.fusedActivationFunction = _act(op)
    t = w.ttype(xs[0]) if xs else None
    w.emit(_Emit(Op.CONCATENATION, xs, [y], o, _v_int8_16(t, 2, 3)))


@_exports("nn.split")
def _split(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    axis = w.add_i32_constant(op, "axis", _int(op, "axis"), [])
    ys = w.results(op)
    o = schema.SplitOptionsT()
    o.numSplits = len(ys)
    t = w.ttype(x)
    version = 4 if t == TT.INT16 else 3 if t == TT.INT32 else _v_int8_16(t)
    w.emit(_Emit(Op.SPLIT, [axis, x], ys, o, version))


@_exports("nn.slice")
def _slice(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    begin = w.add_i32_constant(op, "begin", _ints(op, "begin"))
    size = w.add_i32_constant(op, "size", _ints(op, "size"))
    (y,) = w.results(op)
    t = w.ttype(x)
    version = 5 if _rank(w, x) > 4 else 4 if t == TT.INT16 else _v_int8_16(t)
    w.emit(_Emit(Op.SLICE, [x, begin, size], [y], schema.SliceOptionsT(), version))


@_exports("nn.strided_slice")
def _strided_slice(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    begin = w.add_i32_constant(op, "begin", _ints(op, "begin"))
    end = w.add_i32_constant(op, "end", _ints(op, "end"))
    strides = w.add_i32_constant(op, "strides", _ints(op, "strides"))
    (y,) = w.results(op)
    o = schema.StridedSliceOptionsT()
    o.beginMask = _int(op, "begin_mask")
    o.endMask = _int(op, "end_mask")
    o.ellipsisMask = _int(op, "ellipsis_mask")
    o.newAxisMask = _int(op, "new_axis_mask")
    o.shrinkAxisMask = _int(op, "shrink_axis_mask")
    o.offset = _bool(op, "offset")
    t = w.ttype(x)
    if o.offset:
        version = 8
    elif t == TT.UINT32:
        version = 7
    elif o.ellipsisMask or o.newAxisMask:
        version = 6
    elif _rank(w, x) > 4:
        version = 4
    elif t == TT.BOOL:
        version = 3
    else:
        version = _v_int8_16(t)
    w.emit(_Emit(Op.STRIDED_SLICE, [x, begin, end, strides], [y], o, version))


@_exports("nn.gather")
def _gather(w: _Writer, op: Operation) -> None:
    p, i = w.tensor_of(op.params, op), w.tensor_of(op.indices, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    o = schema.GatherOptionsT()
    o.axis = _int(op, "axis")
    o.batchDims = _int(op, "batch_dims")
    tp, ti = w.ttype(p), w.ttype(i)
    if tp == TT.INT4:
        version = 7
    elif ti == TT.INT16:
        version = 6
    elif o.batchDims != 0:
        version = 5
    elif tp == TT.INT16:
        version = 4
    elif tp == TT.BOOL:
        version = 3
    else:
        version = _v_int8_16(tp)
    w.emit(_Emit(Op.GATHER, [p, i], [y], o, version))


@_exports("nn.resize_bilinear", "nn.resize_nearest_neighbor")
def _resize(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    hw = list(op.results[0].type.get_shape())[1:3]  # type: ignore[attr-defined]
    size = w.add_i32_constant(op, "size", hw)
    (y,) = w.results(op)
    bilinear = op.name == "nn.resize_bilinear"
    if bilinear:
        o = schema.ResizeBilinearOptionsT()
        code = Op.RESIZE_BILINEAR
    else:
        o = schema.ResizeNearestNeighborOptionsT()
        code = Op.RESIZE_NEAREST_NEIGHBOR
    o.alignCorners = _bool(op, "align_corners")
    o.halfPixelCenters = _bool(op, "half_pixel_centers")
    t = w.ttype(x)
    if t == TT.INT16:
        version = 4
    elif o.halfPixelCenters or (not bilinear and o.alignCorners):
        version = 3
    else:
        version = _v_int8_16(t)
    w.emit(_Emit(code, [x, size], [y], o, version))


@_exports("nn.depth_to_space", "nn.space_to_depth")
def _block_rearrange(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    (y,) = w.results(op)
    if op.name == "nn.depth_to_space":
        o, code = schema.DepthToSpaceOptionsT(), Op.DEPTH_TO_SPACE
    else:
        o, code = schema.SpaceToDepthOptionsT(), Op.SPACE_TO_DEPTH
    o.blockSize = _int(op, "block_size")
    if code == Op.DEPTH_TO_SPACE:
        # op_version.cc: DEPTH_TO_SPACE is version 2 only for int16; int8 runs at version 1
        # (the only version BUILTIN_REF registers).
        version = 2 if w.ttype(x) == TT.INT16 else 1
    else:
        version = _v_int8_16(w.ttype(x))
    w.emit(_Emit(code, [x], [y], o, version))


@_exports("quant.qcast")
def _qcast(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.operands[0], op)
    (y,) = w.results(op)
    if w.tensors[y].quantization is None:
        raise QccError(f"cannot export {_where(op)} to TFLite: QUANTIZE needs a quantized result")
    ty = w.ttype(y)
    if ty == TT.INT4 or w.ttype(x) == TT.INT4:
        version = 4
    elif w.is_per_channel(y):
        version = 3
    elif ty == TT.INT16:
        version = 2
    else:
        version = 1
    w.emit(_Emit(Op.QUANTIZE, [x], [y], None, version))


@_exports("quant.dcast")
def _dcast(w: _Writer, op: Operation) -> None:
    x = w.tensor_of(op.operands[0], op)
    (y,) = w.results(op)
    tx = w.ttype(x)
    if tx == TT.INT4:
        version = 6
    elif tx in (TT.INT16, TT.FLOAT16):
        version = 3
    elif tx == TT.INT8:
        version = 5 if w.is_per_channel(x) else 2
    else:
        version = 1
    w.emit(_Emit(Op.DEQUANTIZE, [x], [y], None, version))


@_exports("nn.generic")
def _generic(w: _Writer, op: Operation) -> None:
    name = _str(op, "op_name", "")
    custom = _bool(op, "custom")
    version = _int(op, "version", 1)
    options_hex = _str(op, "options", "")
    raw = bytes.fromhex(options_hex[2:] if options_hex.startswith("0x") else options_hex)
    xs = [w.tensor_of(v, op) for v in op.operands]
    # omitted optional inputs (TFLite's -1), recorded by the importer by position
    omitted = op.attributes.get("nn.omitted_inputs")
    if omitted is not None:
        for k in sorted(int(v) for v in omitted.get_values()):  # type: ignore[attr-defined]
            xs.insert(min(k, len(xs)), _NO_INPUT)
    ys = w.results(op)
    if custom:
        w.emit(_Emit(Op.CUSTOM, xs, ys, None, version, custom_code=name, custom_options=raw))
        return
    code = getattr(Op, name, None)
    if not isinstance(code, int) or name == "CUSTOM":
        raise QccError(f"cannot export {_where(op)} to TFLite: {name!r} is not a TFLite builtin")
    options = options2 = None
    options_type = _str(op, "options_type", "")
    if options_type and options_type != "NONE":
        options = _unpack_options(op, options_type, raw)
        if getattr(schema.BuiltinOptions, options_type, None) is None:
            options, options2 = None, options
    elif raw:
        raise QccError(
            f"cannot export {_where(op)} to TFLite: builtin options without an options_type"
        )
    w.emit(_Emit(code, xs, ys, options, version, options2=options2))


def _unpack_options(op: Operation, options_type: str, raw: bytes) -> Any:
    """The `*OptionsT` object of a builtin options table stored as its own flatbuffer (the
    options table is the buffer's root)."""
    cls = getattr(schema, options_type + "T", None)
    in_union = getattr(schema.BuiltinOptions, options_type, None) or getattr(
        schema.BuiltinOptions2, options_type, None
    )
    if cls is None or not in_union:
        raise QccError(
            f"cannot export {_where(op)} to TFLite: unknown builtin options type {options_type!r}"
        )
    obj = cls()
    if not raw:
        return obj
    try:
        buf = bytearray(raw)
        root = encode.Get(packer.uoffset, buf, 0)
        obj = cls.InitFromBuf(buf, root)
    except Exception as e:  # malformed bytes: a user-facing error, not a traceback
        raise QccError(
            f"cannot export {_where(op)} to TFLite: bad {options_type} bytes ({e})"
        ) from None
    return obj
