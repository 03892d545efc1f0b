"""The TFLite backend: qcc IR -> a `.tflite` flatbuffer.

`export_tflite(module)` is the inverse of `qcc.frontends.tflite.import_tflite`: it writes
the function `@main` (or the module's only function) as the single subgraph of a TFLite
model, with LiteRT's own schema object API (`ai_edge_litert.schema_py_generated`).
`export_tflite_with_tensor_map(module)` also returns the tensor index written for each SSA
value, to read values back from LiteRT exactly (annotate-ranges' LiteRT fallback).

What goes where:

  * every `nn` op becomes the TFLite builtin its declaration names (`nn.OpSpec`, the op
    class's `SPEC`): one generic exporter (`_export_declared`) writes the operands at the
    TFLite inputs the declaration maps them to, the options table from the properties its
    option fields name, and the static configuration that the IR keeps as properties but
    TFLite passes as constant tensors as int32 constant inputs (RESHAPE's shape, MEAN/SUM's
    axes, TRANSPOSE's perm, SLICE/STRIDED_SLICE's begin/end/size/strides, TRANSPOSE_CONV's
    output shape, RESIZE_*'s size); CONV_2D/DEPTHWISE_CONV_2D (a mandatory bias), PAD/PADV2
    and SPLIT (a scalar axis input) have bespoke exporters registered against their class
    (`_EXPORTERS`);
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
    CONV_2D 3, int8 ADD 2, int8 FULLY_CONNECTED 4, ...), the version the converter writes:
    the op's declared rule (`OpSpec.version`) reads the written tensors (`nn.OpSig`).
  * int16 activations with int8 weights ("16x8", docs/ir.md "int16 activations"): INT16
    tensors, INT64 biases (a CONV_2D without bias gets an int64 zero bias); an options table
    with `pot_scale_int16` (ADD, SUB) gets false when the output is quantized int16, which
    selects the general-scale kernel (the schema's default, true, selects the power-of-two
    LSTM kernel whenever all scales are powers of two): ADD version 3, SUB 5.
  * with `signature=True`, one SignatureDef "serving_default" for the subgraph, its inputs
    and outputs keyed by their tensor names (what `Interpreter.get_signature_runner()` and
    tools that take a model by signature, such as ai-edge-quantizer, need); off by default,
    so the default bytes stay those of earlier versions.

Anything without a TFLite form (an unknown op, a dynamic shape, an unsupported element
type) raises `QccError` naming the op and its location.
"""

from __future__ import annotations

import functools
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

from qcc.dialects import nn, quant
from qcc.errors import QccError

__all__ = ["SIGNATURE_KEY", "export_tflite", "export_tflite_with_tensor_map"]

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


def export_tflite(module: ModuleOp, *, signature: bool = False) -> bytes:
    """Serialize `module` (its `@main` function) as a `.tflite` flatbuffer; `signature=True`
    also writes a SignatureDef "serving_default" (inputs and outputs keyed by tensor name)."""
    return export_tflite_with_tensor_map(module, signature=signature)[0]


SIGNATURE_KEY = "serving_default"


def export_tflite_with_tensor_map(
    module: ModuleOp | FuncOp, *, signature: bool = False
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
    if signature:
        model.signatureDefs = [_signature_def(model.subgraphs[0])]
    total = sum(len(b.data) for b in model.buffers if b.data is not None)
    builder = _Builder(total + 64 * 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output()), dict(writer.value_tensor)


def _signature_def(subgraph: schema.SubGraphT) -> schema.SignatureDefT:
    """The SignatureDef "serving_default" of the (only) subgraph: each input and output under
    its tensor name (made unique within the inputs, and within the outputs, should one value
    be returned twice)."""

    def entries(indices: Sequence[int]) -> list[schema.TensorMapT]:
        used: set[str] = set()
        out = []
        for index in indices:
            base = subgraph.tensors[index].name
            base = base.decode() if isinstance(base, bytes) else str(base)
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            entry = schema.TensorMapT()
            entry.name = name
            entry.tensorIndex = int(index)
            out.append(entry)
        return out

    sig = schema.SignatureDefT()
    sig.signatureKey = SIGNATURE_KEY
    sig.subgraphIndex = 0
    sig.inputs = entries(subgraph.inputs)
    sig.outputs = entries(subgraph.outputs)
    return sig


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
        but was expected"). Float: f32 zeros; quantized: int32 zeros (int64 with int16
        activations, 16x8) with scale input_scale x weight_scale[c], zero point 0, as the
        quantize pass writes biases."""
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
            wide = self.ttype(x) == TT.INT16  # 16x8: int64 bias
            tensor.type = TT.INT64 if wide else TT.INT32
            tensor.quantization = q
            tensor.buffer = self.add_buffer(np.zeros(channels, "<i8" if wide else "<i4").tobytes())
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

    def tensor_sig(self, index: int) -> nn.TensorSig:
        """What op_version.cc sees of a written tensor."""
        tensor = self.tensors[index]
        q = tensor.quantization
        scales = tuple(float(v) for v in q.scale) if q is not None and q.scale else ()
        name = _TENSOR_TYPE_NAMES.get(tensor.type, f"type{tensor.type}")
        return nn.TensorSig(name, tuple(int(d) for d in tensor.shape), scales)

    def version(self, op: Operation, inputs: Sequence[int], outputs: Sequence[int]) -> int:
        """The version of the operator `op` is written as, by its declared rule."""
        spec = nn.op_spec(op)
        assert spec is not None, op.name
        sig = nn.OpSig(
            op,
            tuple(self.tensor_sig(i) if i >= 0 else None for i in inputs),
            tuple(self.tensor_sig(i) for i in outputs),
        )
        return spec.version_of(sig)

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
        exporter = _exporter(op)
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
# Op exporters: nn / quant op -> TFLite builtin, driven by the ops' declarations (nn.OpSpec)
# ------------------------------------------------------------------------------------------

Exporter = Callable[[_Writer, Operation], None]

_EXPORTERS: dict[type[Operation], Exporter] = {}
"""Bespoke exporters, registered against the op class: quant casts, nn.generic, and the nn
ops whose TFLite form needs more than their declaration (CONV_2D's mandatory bias, PAD versus
PADV2, SPLIT); every other declared nn op goes through `_export_declared`."""


def _exports(*op_classes: type[Operation]):
    def register(fn: Exporter) -> Exporter:
        for cls in op_classes:
            _EXPORTERS[cls] = fn
        return fn

    return register


_TENSOR_TYPE_NAMES = {
    v: k.lower() for k, v in vars(TT).items() if not k.startswith("_") and isinstance(v, int)
}


def _camel(field_name: str) -> str:
    """schema.fbs field name -> the object API's attribute (`keep_num_dims` -> `keepNumDims`)."""
    head, *rest = field_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _declared_codec(op_class: type[Operation]) -> tuple[nn.OpSpec, int, type | None]:
    """(declaration, builtin code, options class) of a declared op, checked against LiteRT's
    schema: a wrong declaration is a TypeError (a bug), not a user error."""
    spec = nn.op_spec(op_class)
    if spec is None or spec.builtin is None:
        raise TypeError(f"{op_class.__name__} declares no TFLite builtin")
    code = getattr(Op, spec.builtin, None)
    if not isinstance(code, int) or spec.builtin == "CUSTOM":
        raise TypeError(f"{op_class.__name__}: TFLite has no builtin operator {spec.builtin!r}")
    options_cls = None
    if spec.options is not None:
        options_cls = getattr(schema, spec.options + "T", None)
        if options_cls is None or getattr(schema.BuiltinOptions, spec.options, None) is None:
            raise TypeError(
                f"{op_class.__name__}: TFLite has no builtin options table {spec.options!r}"
            )
        sample = options_cls()
        for option in spec.fields:
            for name in option.fields:
                if not hasattr(sample, _camel(name)):
                    raise TypeError(f"{op_class.__name__}: {spec.options} has no field {name!r}")
    elif spec.fields:
        raise TypeError(f"{op_class.__name__}: SPEC declares option fields but no options table")
    return spec, code, options_cls


def _exporter(op: Operation) -> Exporter | None:
    """The exporter of `op`: bespoke, or the generic one of a declared nn op (its declaration
    checked here, outside the user-error handling)."""
    exporter = _EXPORTERS.get(type(op))
    if exporter is not None:
        return exporter
    spec = nn.op_spec(op)
    if spec is None or spec.builtin is None:
        return None
    _declared_codec(type(op))
    return _export_declared


def _quantized_int16_output(op: Operation) -> bool:
    """Whether `op`'s first result is quantized with int16 storage (a 16x8 op)."""
    if not op.results:
        return False
    t = op.results[0].type
    elem = t.get_element_type() if isinstance(t, TensorType) else t
    return (
        _is_quantized(elem)
        and elem.storage_type.width.data == 16  # type: ignore[attr-defined]
        and elem.is_signed  # type: ignore[attr-defined]
    )


def _declared_options(op: Operation) -> Any:
    """The builtin options object of a declared op, its fields set from the properties."""
    spec, _, options_cls = _declared_codec(type(op))
    if options_cls is None:
        return None
    o = options_cls()
    if hasattr(o, "potScaleInt16") and _quantized_int16_output(op):
        o.potScaleInt16 = False  # ADD/SUB: the general-scale 16x8 kernel
    for option in spec.fields:
        prop, kind = option.prop, option.kind
        if prop is None:  # "fixed": the default is what nn can express
            continue
        names = [_camel(n) for n in option.fields]
        if kind == "activation":
            value: Any = _act(op, prop, str(option.default))
        elif kind == "padding":
            value = _padding(op, prop, str(option.default))
        elif kind == "f32":
            value = _float(op, prop, float(option.default))  # type: ignore[arg-type]
        elif kind in ("i64", "axis"):
            value = _int(op, prop, int(option.default))  # type: ignore[call-overload]
        elif kind == "bool":
            value = _bool(op, prop)
        elif kind == "axes":
            value = _ints(op, prop)
        elif kind == "pair":
            value_h, value_w = _ints(op, prop)  # ValueError (a QccError) unless two entries
            setattr(o, names[0], value_h)
            setattr(o, names[1], value_w)
            continue
        else:
            raise AssertionError(f"unknown option kind {kind!r}")
        setattr(o, names[0], value)
    return o


def _operand_values(op: Operation) -> list[SSAValue | None]:
    """The op's operands, one per operand definition (None for an absent optional one),
    a variadic one expanded."""
    values: list[SSAValue | None] = []
    for name, _ in op.get_irdl_definition().operands:  # type: ignore[attr-defined]
        value = getattr(op, name)
        if isinstance(value, SSAValue) or value is None:
            values.append(value)
        else:
            values.extend(value)
    return values


def _const_input_values(op: Operation, const: nn.ConstInput) -> list[int]:
    if const.kind in ("ints", "axes"):
        assert const.prop is not None
        return _ints(op, const.prop)
    shape = list(op.results[0].type.get_shape())  # type: ignore[attr-defined]
    return shape if const.kind == "result_shape" else shape[1:3]


def _export_declared(w: _Writer, op: Operation) -> None:
    """The generic export of a declared op: operands at the TFLite inputs the declaration
    maps them to, constant inputs synthesized from properties (or the result type), options
    from properties, the version by the declared rule."""
    spec, code, _ = _declared_codec(type(op))
    values = _operand_values(op)
    slots = spec.tflite_inputs(len(values))
    consts = sorted(spec.const_inputs, key=lambda c: c.index)
    inputs = [_NO_INPUT] * (max([*slots, *(c.index for c in consts)], default=-1) + 1)
    for slot, value in zip(slots, values):
        inputs[slot] = w.tensor_of(value, op)
    for const in consts:
        inputs[const.index] = w.add_i32_constant(op, const.name, _const_input_values(op, const))
    outputs = w.results(op)
    options = _declared_options(op)
    w.emit(_Emit(code, inputs, outputs, options, w.version(op, inputs, outputs)))


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


def _act(op: Operation, prop: str = "fused_activation", default: str = "NONE") -> int:
    name = _str(op, prop, default)
    code = getattr(schema.ActivationFunctionType, name, None)
    if code is None:
        raise QccError(f"cannot export {_where(op)} to TFLite: unknown activation {name!r}")
    return code


def _padding(op: Operation, prop: str = "padding", default: str = "VALID") -> int:
    name = _str(op, prop, default)
    if name not in _PADDING:
        raise QccError(f"cannot export {_where(op)} to TFLite: unknown padding {name!r}")
    return _PADDING[name]


# -- bespoke exporters ---------------------------------------------------------------------


@_exports(nn.Conv2DOp, nn.DepthwiseConv2DOp)
def _conv_like(w: _Writer, op: Operation) -> None:
    """CONV_2D and DEPTHWISE_CONV_2D: LiteRT insists on a bias input (a zero bias when the IR
    has none)."""
    _, code, _ = _declared_codec(type(op))
    x, f = w.tensor_of(op.input, op), w.tensor_of(op.filter, op)  # type: ignore[attr-defined]
    channel_dim = op.OUT_CHANNEL_DIM  # type: ignore[attr-defined]
    b = w.bias_or_zeros(op, x, f, w.tensors[f].shape[channel_dim])
    (y,) = w.results(op)
    o = _declared_options(op)
    w.emit(_Emit(code, [x, f, b], [y], o, w.version(op, [x, f, b], [y])))


@_exports(nn.PadOp)
def _pad(w: _Writer, op: Operation) -> None:
    """PAD, or PADV2 with a pad value."""
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    pad_value = op.pad_value  # type: ignore[attr-defined]
    pads = _ints(op, "paddings")
    paddings = w.add_i32_constant(op, "paddings", pads, [len(pads) // 2, 2])
    (y,) = w.results(op)
    if pad_value is None:
        inputs, code, options = [x, paddings], Op.PAD, schema.PadOptionsT()
    else:
        v = w.tensor_of(pad_value, op)
        inputs, code, options = [x, paddings, v], Op.PADV2, schema.PadV2OptionsT()
    w.emit(_Emit(code, inputs, [y], options, w.version(op, inputs, [y])))


@_exports(nn.SplitOp)
def _split(w: _Writer, op: Operation) -> None:
    """SPLIT: the axis is a scalar input 0, num_splits the number of results."""
    x = w.tensor_of(op.input, op)  # type: ignore[attr-defined]
    axis = w.add_i32_constant(op, "axis", _int(op, "axis"), [])
    ys = w.results(op)
    o = schema.SplitOptionsT()
    o.numSplits = len(ys)
    w.emit(_Emit(Op.SPLIT, [axis, x], ys, o, w.version(op, [axis, x], ys)))


@_exports(quant.QuantizeCastOp)
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


@_exports(quant.DequantizeCastOp)
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


@_exports(nn.GenericOp)
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
