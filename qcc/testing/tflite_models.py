"""Small float ``.tflite`` models built in code, for tests that need no model files.

The project's tests never download models: they build them here, with LiteRT's own
flatbuffer schema object API (``ai_edge_litert.schema_py_generated``), and use LiteRT
itself as the oracle for what such a file means.

Public API
----------

``ModelBuilder``
    A small builder for a single-subgraph TFLite model: inputs, constants (numpy arrays),
    intermediate tensors, builtin and custom operators, outputs; ``build()`` returns the
    serialized ``.tflite`` bytes. Output shapes are always given by the caller.

``single_op_models() -> dict[str, bytes]``
    One float32 model per TFLite builtin (and per option variant that matters), named like
    ``"conv_2d_same_relu6"``.

``fp16_weights_model()``, ``sparse_weights_model()``, ``multi_io_model()``,
``custom_op_model()`` -> ``bytes``
    Models exercising the importer's special paths (float16 weights behind DEQUANTIZE,
    a sparse weight behind DENSIFY, several named inputs/outputs, an unknown custom op).

``chained_models() -> dict[str, bytes]``
    A few small realistic networks (residual classifier, MobileNetV3 block, encoder-decoder).

``special_models() -> dict[str, bytes]``
    The special-path models that LiteRT can run (everything above but the custom op).

``all_runnable_models() -> dict[str, bytes]``
    ``single_op_models() | special_models() | chained_models()``; every one of them loads
    and runs in LiteRT with both the default and the reference (``BUILTIN_REF``) resolver.

``op_model(op_class) -> bytes``, ``declared_op_models() -> dict[str, bytes]``
    A float single-op model of any nn op, generated from the example its declaration holds
    (``SPEC.example`` in dialects/nn.py) and written by qcc's TFLite backend: a new op gets
    its test model from its declaration alone. Keyed by op name (``"nn.add"``).

Input data
----------

Every model input is float32 and NHWC where it is an image. Tests feed deterministic
uniform[-1, 1] data (see ``random_inputs``); the models are built so that such data gives
finite, well-scaled outputs: weights use He initialisation, and divisors are constants
bounded away from zero (``div*`` models divide a runtime input by a constant).

LiteRT's float CONV_2D kernel requires a bias operand, so ``conv_2d_zero_bias`` (a conv
without bias) carries an all-zero bias, as TFLite's converter writes ``use_bias=False``;
FULLY_CONNECTED without bias uses the omitted-operand index -1 (``fully_connected_no_bias``).

Weights are deterministic: each model draws them from ``np.random.default_rng`` seeded from
the model's name, so a model's bytes never change between runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = [
    "ModelBuilder",
    "all_runnable_models",
    "chained_models",
    "csr_sparsity",
    "custom_op_model",
    "declared_op_models",
    "fp16_weights_model",
    "multi_io_model",
    "op_model",
    "random_inputs",
    "single_op_models",
    "sparse_weights_model",
    "special_models",
]

Op = schema.BuiltinOperator
Act = schema.ActivationFunctionType
SAME = schema.Padding.SAME
VALID = schema.Padding.VALID

_TFLITE_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3
_BUFFER_ALIGNMENT = 16  # schema.fbs: `data:[ubyte] (force_align: 16)`

_NP_TO_TFLITE = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.float16): schema.TensorType.FLOAT16,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.int64): schema.TensorType.INT64,
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.uint8): schema.TensorType.UINT8,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.bool_): schema.TensorType.BOOL,
}


def _tflite_type(dtype) -> int:
    try:
        return _NP_TO_TFLITE[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"no TFLite tensor type for numpy dtype {np.dtype(dtype)}") from None


class _AlignedBufferT(schema.BufferT):
    """A ``BufferT`` whose data vector is packed 16-byte aligned, as ``schema.fbs`` asks.

    The generated ``BufferT.Pack`` ignores ``force_align``; constant data is read in place
    by TFLite, so it is aligned here the way the C++ writer aligns it.
    """

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802 (generated-code name)
        if self.data is None:
            return super().Pack(builder)
        payload = bytes(self.data)
        builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
        builder.head = builder.head - len(payload)
        builder.Bytes[builder.head : builder.head + len(payload)] = payload
        data = builder.EndVector()
        schema.BufferStart(builder)
        schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def _options_type(options) -> int:
    """The ``BuiltinOptions`` union tag of an options object (``Conv2DOptionsT`` -> tag)."""
    cls_name = type(options).__name__
    if not cls_name.endswith("OptionsT"):
        raise TypeError(f"{cls_name} is not a builtin options object (*OptionsT)")
    tag = getattr(schema.BuiltinOptions, cls_name[:-1], None)
    if tag is None:
        raise TypeError(f"{cls_name} is not a member of the BuiltinOptions union")
    return tag


class ModelBuilder:
    """Builds a single-subgraph TFLite model in memory.

    Tensors are referred to by the integer index the ``add_*`` methods return; ``-1``
    stands for an omitted optional operator input, as in TFLite. Shapes are never
    inferred: every tensor's shape is given by the caller (``shape(t)`` returns it).

    >>> b = ModelBuilder()
    >>> x = b.add_input("x", [1, 4])
    >>> y = b.add_op(Op.RELU, [x], [1, 4], name="y")
    >>> b.mark_output(y)
    >>> tflite_bytes = b.build()
    """

    def __init__(self, subgraph_name: str = "main", description: str = "qcc.testing"):
        self.subgraph_name = subgraph_name
        self.description = description
        self._tensors: list[schema.TensorT] = []
        self._buffers: list[schema.BufferT] = [schema.BufferT()]  # buffer 0: empty sentinel
        self._operators: list[schema.OperatorT] = []
        self._opcode_index: dict[tuple[int, str | None], int] = {}
        self._opcodes: list[schema.OperatorCodeT] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._constants: set[int] = set()
        self._names: set[str] = set()

    # -- tensors ---------------------------------------------------------------------------

    def _add_tensor(self, name: str, shape: Sequence[int], dtype, buffer: int = 0) -> int:
        if name in self._names:
            raise ValueError(f"duplicate tensor name {name!r}")
        self._names.add(name)
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = [int(d) for d in shape]
        tensor.type = _tflite_type(dtype)
        tensor.buffer = buffer
        tensor.hasRank = True
        self._tensors.append(tensor)
        return len(self._tensors) - 1

    def add_input(self, name: str, shape: Sequence[int], dtype=np.float32) -> int:
        """A model input (a graph input in order of addition)."""
        t = self._add_tensor(name, shape, dtype)
        self._inputs.append(t)
        return t

    def add_tensor(self, name: str, shape: Sequence[int], dtype=np.float32) -> int:
        """An intermediate (activation) tensor, to be produced by an operator."""
        return self._add_tensor(name, shape, dtype)

    def add_constant(
        self,
        name: str,
        array: np.ndarray,
        *,
        shape: Sequence[int] | None = None,
        sparsity: schema.SparsityParametersT | None = None,
    ) -> int:
        """A constant tensor whose data is ``array`` (its own buffer, little-endian bytes).

        ``shape`` defaults to ``array.shape``; give it explicitly for a sparse tensor, whose
        buffer holds only the stored values (``array``) and whose ``sparsity`` describes
        their layout (see ``csr_sparsity``).
        """
        array = np.asarray(array)
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        buffer = _AlignedBufferT()
        buffer.data = data.tobytes()
        self._buffers.append(buffer)
        t = self._add_tensor(
            name, array.shape if shape is None else shape, array.dtype, len(self._buffers) - 1
        )
        self._tensors[t].sparsity = sparsity
        self._constants.add(t)
        return t

    def add_sparse_constant(self, name: str, dense: np.ndarray) -> int:
        """A 2-D constant stored sparse (CSR over its rows), as TFLite's converter stores it.

        The tensor keeps the dense shape; its buffer holds the non-zero values only. In a
        TFLite graph it must be consumed by a DENSIFY op (see ``sparse_weights_model``).
        """
        values, sparsity = csr_sparsity(dense)
        return self.add_constant(name, values, shape=dense.shape, sparsity=sparsity)

    def shape(self, tensor: int) -> list[int]:
        """The declared shape of a tensor."""
        return list(self._tensors[tensor].shape)

    def name(self, tensor: int) -> str:
        """The name of a tensor."""
        return self._tensors[tensor].name

    # -- operators -------------------------------------------------------------------------

    def _opcode(self, builtin: int, custom_code: str | None, version: int) -> int:
        key = (builtin, custom_code)
        if key not in self._opcode_index:
            code = schema.OperatorCodeT()
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, Op.PLACEHOLDER_FOR_GREATER_OP_CODES)
            code.customCode = custom_code
            code.version = version
            self._opcode_index[key] = len(self._opcodes)
            self._opcodes.append(code)
        code = self._opcodes[self._opcode_index[key]]
        code.version = max(code.version, version)
        return self._opcode_index[key]

    def add_operator(
        self,
        opcode: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options=None,
        *,
        version: int = 1,
    ) -> None:
        """A builtin operator (``BuiltinOperator.X``), with its ``*OptionsT`` object if any.

        ``version`` is the operator version TFLite's converter would write; operator codes
        are shared between operators, with the highest version among them.
        """
        if opcode == Op.CUSTOM:
            raise ValueError("use add_custom_operator for CUSTOM operators")
        op = schema.OperatorT()
        op.opcodeIndex = self._opcode(opcode, None, version)
        op.inputs = [int(i) for i in inputs]
        op.outputs = [int(o) for o in outputs]
        if options is not None:
            op.builtinOptionsType = _options_type(options)
            op.builtinOptions = options
        self._operators.append(op)

    def add_custom_operator(
        self,
        custom_code: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        custom_options: bytes = b"",
        *,
        version: int = 1,
    ) -> None:
        """A CUSTOM operator named ``custom_code``, with raw (flexbuffer) option bytes."""
        op = schema.OperatorT()
        op.opcodeIndex = self._opcode(Op.CUSTOM, custom_code, version)
        op.inputs = [int(i) for i in inputs]
        op.outputs = [int(o) for o in outputs]
        if custom_options:
            op.customOptions = np.frombuffer(bytes(custom_options), dtype=np.uint8)
            op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        self._operators.append(op)

    def add_op(
        self,
        opcode: int,
        inputs: Sequence[int],
        output_shape: Sequence[int],
        options=None,
        *,
        name: str,
        version: int = 1,
        dtype=np.float32,
    ) -> int:
        """Convenience: create the output tensor ``name``, add the operator, return the output."""
        out = self.add_tensor(name, output_shape, dtype)
        self.add_operator(opcode, inputs, [out], options, version=version)
        return out

    def mark_output(self, *tensors: int) -> None:
        """Make tensors model outputs (in order of marking)."""
        self._outputs.extend(tensors)

    # -- serialization ---------------------------------------------------------------------

    def _check(self) -> None:
        if not self._inputs or not self._outputs:
            raise ValueError("a model needs at least one input and one output")
        produced: dict[int, int] = {}
        for i, op in enumerate(self._operators):
            for t in op.inputs:
                if t != -1 and not 0 <= t < len(self._tensors):
                    raise ValueError(f"operator {i} reads unknown tensor {t}")
            for t in op.outputs:
                if t in produced or t in self._constants or t in self._inputs:
                    raise ValueError(f"tensor {self.name(t)!r} is written twice or is not free")
                produced[t] = i
        for t in self._outputs:
            if t not in produced and t not in self._inputs:
                raise ValueError(f"output {self.name(t)!r} is produced by no operator")

    def build_model_t(self) -> schema.ModelT:
        """The model as a schema object tree (``ModelT``), for tests that edit it further."""
        self._check()
        subgraph = schema.SubGraphT()
        subgraph.name = self.subgraph_name
        subgraph.tensors = self._tensors
        subgraph.inputs = list(self._inputs)
        subgraph.outputs = list(self._outputs)
        subgraph.operators = self._operators
        model = schema.ModelT()
        model.version = _SCHEMA_VERSION
        model.description = self.description
        model.operatorCodes = self._opcodes
        model.subgraphs = [subgraph]
        model.buffers = self._buffers
        return model

    def build(self) -> bytes:
        """The serialized ``.tflite`` flatbuffer."""
        builder = flatbuffers.Builder(1024)
        packed = self.build_model_t().Pack(builder)
        builder.Finish(packed, file_identifier=_TFLITE_FILE_IDENTIFIER)
        return bytes(builder.Output())


def csr_sparsity(dense: np.ndarray) -> tuple[np.ndarray, schema.SparsityParametersT]:
    """Encode a 2-D matrix the way TFLite stores a sparse constant without blocks.

    Returns the stored values (row-major non-zeros) and the ``SparsityParametersT``:
    ``traversal_order = [0, 1]``, empty ``block_map``, dimension 0 DENSE (``dense_size`` =
    rows) and dimension 1 SPARSE_CSR (``array_segments`` = row pointers, ``array_indices``
    = column indices, both int32 vectors).
    """
    dense = np.asarray(dense)
    if dense.ndim != 2:
        raise ValueError("csr_sparsity encodes 2-D tensors")
    rows, cols = np.nonzero(dense)
    segments = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[0]))])

    def int32_vector(values) -> schema.Int32VectorT:
        vector = schema.Int32VectorT()
        vector.values = [int(v) for v in values]
        return vector

    row_dim = schema.DimensionMetadataT()
    row_dim.format = schema.DimensionType.DENSE
    row_dim.denseSize = dense.shape[0]
    col_dim = schema.DimensionMetadataT()
    col_dim.format = schema.DimensionType.SPARSE_CSR
    col_dim.arraySegmentsType = schema.SparseIndexVector.Int32Vector
    col_dim.arraySegments = int32_vector(segments)
    col_dim.arrayIndicesType = schema.SparseIndexVector.Int32Vector
    col_dim.arrayIndices = int32_vector(cols)
    sparsity = schema.SparsityParametersT()
    sparsity.traversalOrder = [0, 1]
    sparsity.blockMap = []
    sparsity.dimMetadata = [row_dim, col_dim]
    return dense[rows, cols], sparsity


def random_inputs(shapes: Iterable[Sequence[int]], seed: int = 0) -> list[np.ndarray]:
    """Deterministic float32 uniform[-1, 1] arrays, one per shape: the data tests feed."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=tuple(s)).astype(np.float32) for s in shapes]


# ------------------------------------------------------------------------------------------
# Layer helpers: append one operator (with its weights) to a builder, return its output.
# ------------------------------------------------------------------------------------------


def _rng(name: str) -> np.random.Generator:
    """A generator seeded from a model name, so every model's weights are fixed."""
    return np.random.default_rng(list(name.encode()))


def _he(rng: np.random.Generator, shape: Sequence[int], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _small(rng: np.random.Generator, shape: Sequence[int], scale: float = 0.1) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def _conv_out(size: int, kernel: int, stride: int, dilation: int, padding: int) -> int:
    """Spatial output size of a convolution or pooling window, TFLite's rule."""
    if padding == SAME:
        return -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    return (size - effective) // stride + 1


def _conv_2d(
    b: ModelBuilder,
    rng: np.random.Generator,
    x: int,
    out_channels: int,
    kernel: int,
    *,
    name: str,
    stride: int = 1,
    dilation: int = 1,
    padding: int = SAME,
    activation: int = Act.NONE,
    bias: bool = True,
) -> int:
    n, h, w, c = b.shape(x)
    filt = b.add_constant(
        f"{name}/filter", _he(rng, [out_channels, kernel, kernel, c], kernel * kernel * c)
    )
    # LiteRT's float CONV_2D requires a bias operand (conv.cc: "has_bias was not true"), so
    # a bias-free convolution is written as TFLite's converter writes it: a zero bias.
    bias_value = _small(rng, [out_channels]) if bias else np.zeros([out_channels], np.float32)
    inputs = [x, filt, b.add_constant(f"{name}/bias", bias_value)]
    opts = schema.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, stride, stride
    opts.dilationHFactor = opts.dilationWFactor = dilation
    opts.fusedActivationFunction = activation
    oh = _conv_out(h, kernel, stride, dilation, padding)
    ow = _conv_out(w, kernel, stride, dilation, padding)
    return b.add_op(Op.CONV_2D, inputs, [n, oh, ow, out_channels], opts, name=name)


def _depthwise_conv_2d(
    b: ModelBuilder,
    rng: np.random.Generator,
    x: int,
    kernel: int,
    *,
    name: str,
    multiplier: int = 1,
    stride: int = 1,
    dilation: int = 1,
    padding: int = SAME,
    activation: int = Act.NONE,
) -> int:
    n, h, w, c = b.shape(x)
    out_c = c * multiplier
    filt = b.add_constant(f"{name}/filter", _he(rng, [1, kernel, kernel, out_c], kernel * kernel))
    bias = b.add_constant(f"{name}/bias", _small(rng, [out_c]))
    opts = schema.DepthwiseConv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, stride, stride
    opts.depthMultiplier = multiplier
    opts.dilationHFactor = opts.dilationWFactor = dilation
    opts.fusedActivationFunction = activation
    oh = _conv_out(h, kernel, stride, dilation, padding)
    ow = _conv_out(w, kernel, stride, dilation, padding)
    return b.add_op(
        Op.DEPTHWISE_CONV_2D,
        [x, filt, bias],
        [n, oh, ow, out_c],
        opts,
        name=name,
        version=2 if dilation != 1 else 1,
    )


def _fully_connected(
    b: ModelBuilder,
    rng: np.random.Generator,
    x: int,
    units: int,
    *,
    name: str,
    bias: bool = True,
    keep_num_dims: bool = False,
    activation: int = Act.NONE,
) -> int:
    shape = b.shape(x)
    # Without keep_num_dims TFLite flattens the input to [-1, in_features], in_features being
    # the weights' second dimension; here a 4-D input is flattened over all non-batch dims.
    in_features = shape[-1] if keep_num_dims else int(np.prod(shape[1:]))
    weights = b.add_constant(f"{name}/weights", _he(rng, [units, in_features], in_features))
    bias_t = b.add_constant(f"{name}/bias", _small(rng, [units])) if bias else -1
    opts = schema.FullyConnectedOptionsT()
    opts.keepNumDims = keep_num_dims
    opts.fusedActivationFunction = activation
    if keep_num_dims:
        out_shape = [*shape[:-1], units]
    else:
        out_shape = [int(np.prod(shape)) // in_features, units]
    version = 5 if keep_num_dims else 1
    return b.add_op(
        Op.FULLY_CONNECTED, [x, weights, bias_t], out_shape, opts, name=name, version=version
    )


def _binary(b: ModelBuilder, opcode: int, lhs: int, rhs: int, *, name: str, act=Act.NONE) -> int:
    """ADD/SUB/MUL/DIV/MAXIMUM/MINIMUM with numpy broadcasting of the two shapes."""
    options = {
        Op.ADD: schema.AddOptionsT,
        Op.SUB: schema.SubOptionsT,
        Op.MUL: schema.MulOptionsT,
        Op.DIV: schema.DivOptionsT,
        Op.MAXIMUM: schema.MaximumMinimumOptionsT,
        Op.MINIMUM: schema.MaximumMinimumOptionsT,
    }[opcode]()
    if act != Act.NONE:
        options.fusedActivationFunction = act
    shape = list(np.broadcast_shapes(tuple(b.shape(lhs)), tuple(b.shape(rhs))))
    return b.add_op(opcode, [lhs, rhs], shape, options, name=name)


def _unary(b: ModelBuilder, opcode: int, x: int, *, name: str, options=None) -> int:
    return b.add_op(opcode, [x], b.shape(x), options, name=name)


def _pool(
    b: ModelBuilder, opcode: int, x: int, size: int, stride: int, padding: int, *, name: str
) -> int:
    n, h, w, c = b.shape(x)
    opts = schema.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, stride, stride
    opts.filterHeight = opts.filterWidth = size
    oh, ow = _conv_out(h, size, stride, 1, padding), _conv_out(w, size, stride, 1, padding)
    return b.add_op(opcode, [x], [n, oh, ow, c], opts, name=name)


def _reduce(
    b: ModelBuilder, opcode: int, x: int, axes: Sequence[int], keep_dims: bool, *, name: str
) -> int:
    shape = b.shape(x)
    axes_t = b.add_constant(f"{name}/axes", _i32(axes))
    opts = schema.ReducerOptionsT()
    opts.keepDims = keep_dims
    if keep_dims:
        out = [1 if i in axes else d for i, d in enumerate(shape)]
    else:
        out = [d for i, d in enumerate(shape) if i not in axes]
    return b.add_op(opcode, [x, axes_t], out, opts, name=name)


def _resize(
    b: ModelBuilder,
    opcode: int,
    x: int,
    size: Sequence[int],
    *,
    name: str,
    align_corners: bool = False,
    half_pixel_centers: bool = False,
) -> int:
    n, _, _, c = b.shape(x)
    size_t = b.add_constant(f"{name}/size", _i32(size))
    if opcode == Op.RESIZE_BILINEAR:
        opts = schema.ResizeBilinearOptionsT()
        version = 3 if half_pixel_centers else 1
    else:
        opts = schema.ResizeNearestNeighborOptionsT()
        version = 3 if (half_pixel_centers or align_corners) else 1
    opts.alignCorners, opts.halfPixelCenters = align_corners, half_pixel_centers
    return b.add_op(opcode, [x, size_t], [n, *size, c], opts, name=name, version=version)


def _concat(b: ModelBuilder, xs: Sequence[int], axis: int, *, name: str) -> int:
    shape = b.shape(xs[0])
    shape[axis] = sum(b.shape(x)[axis] for x in xs)
    opts = schema.ConcatenationOptionsT()
    opts.axis = axis
    return b.add_op(Op.CONCATENATION, list(xs), shape, opts, name=name)


# ------------------------------------------------------------------------------------------
# Single-op models
# ------------------------------------------------------------------------------------------


def _single(
    name: str,
    input_shapes: Sequence[Sequence[int]],
    body: Callable[[ModelBuilder, np.random.Generator, list[int]], int | Sequence[int]],
) -> tuple[str, bytes]:
    """Build a model named ``name``: inputs ``x`` (or ``x0``, ``x1``...), ``body`` adds the op."""
    b = ModelBuilder()
    if len(input_shapes) == 1:
        inputs = [b.add_input("x", input_shapes[0])]
    else:
        inputs = [b.add_input(f"x{i}", s) for i, s in enumerate(input_shapes)]
    out = body(b, _rng(name), inputs)
    b.mark_output(*([out] if isinstance(out, int) else out))
    return name, b.build()


def _conv_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 16, 16, 3]]
    variants = {
        "conv_2d_same": dict(padding=SAME),
        "conv_2d_valid": dict(padding=VALID),
        "conv_2d_stride2": dict(stride=2),
        "conv_2d_valid_stride2": dict(stride=2, padding=VALID),
        "conv_2d_dilation2": dict(dilation=2, padding=VALID),
        "conv_2d_same_relu6": dict(activation=Act.RELU6),
        "conv_2d_zero_bias": dict(bias=False),
    }
    for name, kw in variants.items():
        yield _single(name, x, lambda b, r, i, kw=kw: _conv_2d(b, r, i[0], 8, 3, name="y", **kw))
    yield _single(
        "conv_2d_1x1", [[1, 8, 8, 8]], lambda b, r, i: _conv_2d(b, r, i[0], 16, 1, name="y")
    )


def _depthwise_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 16, 16, 8]]
    variants = {
        "depthwise_conv_2d_same": dict(),
        "depthwise_conv_2d_valid_relu6": dict(padding=VALID, activation=Act.RELU6),
        "depthwise_conv_2d_multiplier2": dict(multiplier=2),
        "depthwise_conv_2d_stride2": dict(stride=2),
        "depthwise_conv_2d_dilation2": dict(dilation=2),
    }
    for name, kw in variants.items():
        yield _single(
            name, x, lambda b, r, i, kw=kw: _depthwise_conv_2d(b, r, i[0], 3, name="y", **kw)
        )


def _fully_connected_models() -> Iterator[tuple[str, bytes]]:
    yield _single(
        "fully_connected", [[1, 64]], lambda b, r, i: _fully_connected(b, r, i[0], 16, name="y")
    )
    yield _single(
        "fully_connected_relu",
        [[2, 32]],
        lambda b, r, i: _fully_connected(b, r, i[0], 16, name="y", activation=Act.RELU),
    )
    yield _single(
        "fully_connected_4d_input",
        [[1, 4, 4, 8]],
        lambda b, r, i: _fully_connected(b, r, i[0], 16, name="y"),
    )
    yield _single(
        "fully_connected_keep_num_dims",
        [[1, 8, 16]],
        lambda b, r, i: _fully_connected(b, r, i[0], 12, name="y", keep_num_dims=True),
    )
    yield _single(
        "fully_connected_no_bias",
        [[1, 64]],
        lambda b, r, i: _fully_connected(b, r, i[0], 16, name="y", bias=False),
    )


def _transpose_conv(
    b: ModelBuilder,
    rng: np.random.Generator,
    x: int,
    out_channels: int,
    kernel: int,
    stride: int,
    padding: int,
    *,
    bias: bool,
    name: str,
) -> int:
    n, h, w, c = b.shape(x)
    if padding == SAME:
        oh, ow = h * stride, w * stride
    else:
        oh, ow = (h - 1) * stride + kernel, (w - 1) * stride + kernel
    out_shape = [n, oh, ow, out_channels]
    shape_t = b.add_constant(f"{name}/output_shape", _i32(out_shape))
    filt = b.add_constant(
        f"{name}/filter", _he(rng, [out_channels, kernel, kernel, c], kernel * kernel * c)
    )
    inputs = [shape_t, filt, x]
    if bias:
        inputs.append(b.add_constant(f"{name}/bias", _small(rng, [out_channels])))
    opts = schema.TransposeConvOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, stride, stride
    return b.add_op(
        Op.TRANSPOSE_CONV, inputs, out_shape, opts, name=name, version=3 if bias else 1
    )


def _transpose_conv_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 8, 8, 8]]
    # (out channels, kernel, stride, options); kernel == stride: the taps do not overlap
    # (an upsampling head, e.g. selfie segmentation's 2x2 stride-2 single-channel output)
    variants = {
        "transpose_conv_same_stride2": (4, 3, 2, dict(padding=SAME, bias=False)),
        "transpose_conv_valid_stride2": (4, 3, 2, dict(padding=VALID, bias=False)),
        "transpose_conv_same_stride2_bias": (4, 3, 2, dict(padding=SAME, bias=True)),
        "transpose_conv_k2_stride2_one_channel": (1, 2, 2, dict(padding=SAME, bias=True)),
        "transpose_conv_k2_stride2_valid": (8, 2, 2, dict(padding=VALID, bias=True)),
    }
    for name, (o, k, st, kw) in variants.items():
        yield _single(
            name, x,
            lambda b, r, i, o=o, k=k, st=st, kw=kw: _transpose_conv(b, r, i[0], o, k, st,
                                                                   name="y", **kw)
        )


def _batch_matmul_models() -> Iterator[tuple[str, bytes]]:
    def bmm(lhs_shape, rhs_shape, adj_x=False, adj_y=False, const_rhs=False):
        def body(b, rng, inputs):
            lhs = inputs[0]
            if const_rhs:
                rhs = b.add_constant("rhs", _he(rng, rhs_shape, rhs_shape[-2]))
            else:
                rhs = inputs[1]
            opts = schema.BatchMatMulOptionsT()
            opts.adjX, opts.adjY = adj_x, adj_y
            m = lhs_shape[-1] if adj_x else lhs_shape[-2]
            n = rhs_shape[-2] if adj_y else rhs_shape[-1]
            batch = np.broadcast_shapes(tuple(lhs_shape[:-2]), tuple(rhs_shape[:-2]))
            return b.add_op(Op.BATCH_MATMUL, [lhs, rhs], [*batch, m, n], opts, name="y")

        return ([lhs_shape] if const_rhs else [lhs_shape, rhs_shape]), body

    variants = {
        "batch_matmul": bmm([1, 4, 8, 16], [1, 4, 16, 12]),
        "batch_matmul_adj_x": bmm([2, 16, 8], [2, 16, 12], adj_x=True),
        "batch_matmul_adj_y": bmm([1, 4, 8, 16], [1, 4, 12, 16], adj_y=True),
        "batch_matmul_broadcast": bmm([2, 3, 8, 16], [1, 3, 16, 12]),
        "batch_matmul_broadcast_const": bmm([2, 3, 8, 16], [16, 12], const_rhs=True),
    }
    for name, (shapes, body) in variants.items():
        yield _single(name, shapes, body)


def _binary_models() -> Iterator[tuple[str, bytes]]:
    x = [1, 8, 8, 4]
    ops = {
        "add": Op.ADD,
        "sub": Op.SUB,
        "mul": Op.MUL,
        "maximum": Op.MAXIMUM,
        "minimum": Op.MINIMUM,
    }
    for prefix, opcode in ops.items():
        yield _single(
            prefix, [x, x], lambda b, r, i, op=opcode: _binary(b, op, i[0], i[1], name="y")
        )

        def broadcast(b, rng, i, op=opcode):
            c = b.add_constant("c", rng.uniform(-1, 1, size=[x[-1]]).astype(np.float32))
            return _binary(b, op, i[0], c, name="y")

        yield _single(f"{prefix}_broadcast_const", [x], broadcast)
    for prefix, opcode in (("add", Op.ADD), ("mul", Op.MUL)):
        yield _single(
            f"{prefix}_relu",
            [x, x],
            lambda b, r, i, op=opcode: _binary(b, op, i[0], i[1], name="y", act=Act.RELU),
        )
    yield _single(
        "add_broadcast_inputs",
        [x, [1, 1, 1, 4]],
        lambda b, r, i: _binary(b, Op.ADD, i[0], i[1], name="y"),
    )

    # DIV divides by constants bounded away from zero, so uniform[-1, 1] data stays bounded.
    def divisor(rng, shape):
        magnitude = rng.uniform(0.5, 2.0, size=shape)
        return (magnitude * rng.choice([-1.0, 1.0], size=shape)).astype(np.float32)

    for name, c_shape in (("div", x), ("div_broadcast_const", [x[-1]])):
        yield _single(
            name,
            [x],
            lambda b, r, i, s=c_shape: _binary(
                b, Op.DIV, i[0], b.add_constant("c", divisor(r, s)), name="y"
            ),
        )


def _activation_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 8, 8, 4]]
    plain = {
        "relu": Op.RELU,
        "relu6": Op.RELU6,
        "relu_n1_to_1": Op.RELU_N1_TO_1,
        "logistic": Op.LOGISTIC,
        "tanh": Op.TANH,
    }
    for name, opcode in plain.items():
        yield _single(name, x, lambda b, r, i, op=opcode: _unary(b, op, i[0], name="y"))
    leaky = schema.LeakyReluOptionsT()
    leaky.alpha = 0.2
    yield _single(
        "leaky_relu", x, lambda b, r, i: _unary(b, Op.LEAKY_RELU, i[0], name="y", options=leaky)
    )
    yield _single(
        "hard_swish",
        x,
        lambda b, r, i: _unary(
            b, Op.HARD_SWISH, i[0], name="y", options=schema.HardSwishOptionsT()
        ),
    )

    def prelu(b, rng, i):
        alpha = b.add_constant("alpha", rng.uniform(0.05, 0.3, size=[1, 1, 4]).astype(np.float32))
        return b.add_op(Op.PRELU, [i[0], alpha], b.shape(i[0]), name="y")

    yield _single("prelu", x, prelu)
    for name, shape, beta in (
        ("softmax", [1, 16], 1.0),
        ("softmax_beta0_5", [1, 4, 4, 10], 0.5),
    ):
        opts = schema.SoftmaxOptionsT()
        opts.beta = beta
        yield _single(
            name, [shape], lambda b, r, i, o=opts: _unary(b, Op.SOFTMAX, i[0], name="y", options=o)
        )


def _pad_models() -> Iterator[tuple[str, bytes]]:
    paddings = [[0, 0], [1, 1], [2, 1], [0, 0]]
    out = [1, 10, 11, 4]

    def pad(b, rng, i):
        p = b.add_constant("paddings", _i32(paddings))
        return b.add_op(Op.PAD, [i[0], p], out, schema.PadOptionsT(), name="y")

    def padv2(b, rng, i):
        p = b.add_constant("paddings", _i32(paddings))
        value = b.add_constant("constant_value", np.array(0.5, dtype=np.float32))
        return b.add_op(Op.PADV2, [i[0], p, value], out, schema.PadV2OptionsT(), name="y")

    yield _single("pad", [[1, 8, 8, 4]], pad)
    yield _single("padv2_constant_value", [[1, 8, 8, 4]], padv2)


def _pool_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 16, 16, 4]]
    variants = {
        "valid_2x2_stride2": (2, 2, VALID),
        "same_3x3_stride2": (3, 2, SAME),
        "same_3x3_stride1": (3, 1, SAME),
        "valid_3x3_stride2": (3, 2, VALID),
    }
    pools = (("max_pool_2d", Op.MAX_POOL_2D), ("average_pool_2d", Op.AVERAGE_POOL_2D))
    for prefix, opcode in pools:
        for suffix, (size, stride, padding) in variants.items():
            yield _single(
                f"{prefix}_{suffix}",
                x,
                lambda b, r, i, op=opcode, k=size, s=stride, p=padding: _pool(
                    b, op, i[0], k, s, p, name="y"
                ),
            )


def pool_model(kind: str, input_shape: Sequence[int], size: int, stride: int,
               padding: str = "VALID") -> bytes:
    """A float model of one MAX_POOL_2D (kind "max") or AVERAGE_POOL_2D ("average"): input
    ``x`` of ``input_shape`` (NHWC), a size x size window, output ``y``. E.g. a global pool
    (size = the image's): what a squeeze-excite block averages."""
    opcode = {"max": Op.MAX_POOL_2D, "average": Op.AVERAGE_POOL_2D}[kind]
    pad = {"VALID": VALID, "SAME": SAME}[padding]
    return _single(f"{kind}_pool_2d", [list(input_shape)],
                   lambda b, r, i: _pool(b, opcode, i[0], size, stride, pad, name="y"))[1]


def _reduce_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 8, 8, 6]]
    for prefix, opcode in (("mean", Op.MEAN), ("sum", Op.SUM)):
        yield _single(
            f"{prefix}_spatial_keep_dims",
            x,
            lambda b, r, i, op=opcode: _reduce(b, op, i[0], [1, 2], True, name="y"),
        )
        yield _single(
            f"{prefix}_axis3",
            x,
            lambda b, r, i, op=opcode: _reduce(b, op, i[0], [3], False, name="y"),
        )


def _shape_models() -> Iterator[tuple[str, bytes]]:
    def reshape(new_shape, out_shape):
        def body(b, rng, i):
            shape_t = b.add_constant("shape", _i32(new_shape))
            return b.add_op(Op.RESHAPE, [i[0], shape_t], out_shape, name="y")

        return body

    yield _single("reshape", [[1, 8, 8, 4]], reshape([1, 64, 4], [1, 64, 4]))
    yield _single("reshape_infer_dim", [[1, 4, 4, 8]], reshape([1, -1], [1, 128]))

    def squeeze(b, rng, i):
        opts = schema.SqueezeOptionsT()
        opts.squeezeDims = [1, 2]
        return b.add_op(Op.SQUEEZE, [i[0]], [1, 16], opts, name="y")

    yield _single("squeeze", [[1, 1, 1, 16]], squeeze)

    def transpose(b, rng, i):
        perm = b.add_constant("perm", _i32([0, 3, 1, 2]))
        return b.add_op(Op.TRANSPOSE, [i[0], perm], [1, 4, 8, 6], schema.TransposeOptionsT(),
                        name="y")

    yield _single("transpose", [[1, 8, 6, 4]], transpose)

    yield _single(
        "concatenation_axis3",
        [[1, 8, 8, 2], [1, 8, 8, 3], [1, 8, 8, 4]],
        lambda b, r, i: _concat(b, i, 3, name="y"),
    )
    yield _single(
        "concatenation_axis1",
        [[1, 2, 8, 4], [1, 3, 8, 4], [1, 4, 8, 4]],
        lambda b, r, i: _concat(b, i, 1, name="y"),
    )

    def split(axis, num, in_shape):
        def body(b, rng, i):
            axis_t = b.add_constant("axis", np.array(axis, dtype=np.int32))
            out_shape = list(in_shape)
            out_shape[axis] //= num
            outs = [b.add_tensor(f"y{k}", out_shape) for k in range(num)]
            opts = schema.SplitOptionsT()
            opts.numSplits = num
            b.add_operator(Op.SPLIT, [axis_t, i[0]], outs, opts)
            return outs

        return [in_shape], body

    yield _single("split_axis3_2", *split(3, 2, [1, 8, 8, 8]))
    yield _single("split_axis1_4", *split(1, 4, [1, 8, 8, 4]))

    def slice_(b, rng, i):
        begin = b.add_constant("begin", _i32([0, 2, 1, 0]))
        size = b.add_constant("size", _i32([1, 4, 5, -1]))
        return b.add_op(Op.SLICE, [i[0], begin, size], [1, 4, 5, 6], schema.SliceOptionsT(),
                        name="y")

    yield _single("slice", [[1, 8, 8, 6]], slice_)

    def strided_slice(begin, end, strides, begin_mask=0, end_mask=0, shrink=0, in_shape=()):
        def body(b, rng, i):
            opts = schema.StridedSliceOptionsT()
            opts.beginMask, opts.endMask, opts.shrinkAxisMask = begin_mask, end_mask, shrink
            operands = (("begin", begin), ("end", end), ("strides", strides))
            tensors = [b.add_constant(n, _i32(v)) for n, v in operands]
            out = _strided_slice_shape(in_shape, begin, end, strides, begin_mask, end_mask, shrink)
            return b.add_op(Op.STRIDED_SLICE, [i[0], *tensors], out, opts, name="y")

        return [in_shape], body

    yield _single(
        "strided_slice_stride2",
        *strided_slice([0, 1, 0, 0], [1, 8, 8, 6], [1, 2, 2, 1], in_shape=[1, 8, 8, 6]),
    )
    yield _single(
        "strided_slice_masks",
        *strided_slice(
            [0, 2, 3, 1], [0, 7, 0, 5], [1, 2, 1, 2], begin_mask=0b0101, end_mask=0b0101,
            in_shape=[1, 8, 8, 6],
        ),
    )
    yield _single(
        "strided_slice_shrink_axis",
        *strided_slice(
            [0, 3, 0, 0], [1, 4, 8, 6], [1, 1, 1, 1], begin_mask=0b1100, end_mask=0b1100,
            shrink=0b0011, in_shape=[1, 8, 8, 6],
        ),
    )

    def gather(b, rng, i):
        indices = b.add_constant("indices", _i32([0, 2, 5, 7, 7]))
        opts = schema.GatherOptionsT()
        opts.axis = 1
        return b.add_op(Op.GATHER, [i[0], indices], [1, 5, 8, 4], opts, name="y")

    yield _single("gather_axis1", [[1, 8, 8, 4]], gather)


def _strided_slice_shape(shape, begin, end, strides, begin_mask, end_mask, shrink) -> list[int]:
    """Output shape of STRIDED_SLICE (no ellipsis/new-axis masks), via numpy slicing."""
    index = []
    for axis, (b_, e_, s_) in enumerate(zip(begin, end, strides)):
        if shrink >> axis & 1:
            index.append(b_)
        else:
            start = None if begin_mask >> axis & 1 else b_
            stop = None if end_mask >> axis & 1 else e_
            index.append(slice(start, stop, s_))
    return list(np.empty(shape)[tuple(index)].shape)


def _resize_and_space_models() -> Iterator[tuple[str, bytes]]:
    x = [[1, 8, 8, 3]]
    for prefix, opcode in (
        ("resize_bilinear", Op.RESIZE_BILINEAR),
        ("resize_nearest_neighbor", Op.RESIZE_NEAREST_NEIGHBOR),
    ):
        for suffix, kw in (
            ("", {}),
            ("_align_corners", dict(align_corners=True)),
            ("_half_pixel_centers", dict(half_pixel_centers=True)),
        ):
            yield _single(
                prefix + suffix,
                x,
                lambda b, r, i, op=opcode, kw=kw: _resize(b, op, i[0], [16, 16], name="y", **kw),
            )
    yield _single(
        "resize_bilinear_downscale",
        [[1, 16, 16, 4]],
        lambda b, r, i: _resize(b, Op.RESIZE_BILINEAR, i[0], [6, 6], name="y"),
    )

    def depth_to_space(b, rng, i):
        opts = schema.DepthToSpaceOptionsT()
        opts.blockSize = 2
        return b.add_op(Op.DEPTH_TO_SPACE, [i[0]], [1, 16, 16, 2], opts, name="y")

    def space_to_depth(b, rng, i):
        opts = schema.SpaceToDepthOptionsT()
        opts.blockSize = 2
        return b.add_op(Op.SPACE_TO_DEPTH, [i[0]], [1, 4, 4, 12], opts, name="y")

    yield _single("depth_to_space", [[1, 8, 8, 8]], depth_to_space)
    yield _single("space_to_depth", [[1, 8, 8, 3]], space_to_depth)


def single_op_models() -> dict[str, bytes]:
    """One float32 model per TFLite builtin and option variant, keyed by a descriptive name.

    Each model has float32 inputs named ``x`` (or ``x0``, ``x1``, ... for several) and its
    op's output(s) ``y`` (``y0``, ``y1``, ... for SPLIT) as model outputs; weights and other
    operands are constants.
    """
    families = (
        _conv_models,
        _depthwise_models,
        _fully_connected_models,
        _transpose_conv_models,
        _batch_matmul_models,
        _binary_models,
        _activation_models,
        _pad_models,
        _pool_models,
        _reduce_models,
        _shape_models,
        _resize_and_space_models,
    )
    models: dict[str, bytes] = {}
    for family in families:
        for name, model in family():
            if name in models:
                raise AssertionError(f"duplicate model name {name!r}")
            models[name] = model
    return models


# ------------------------------------------------------------------------------------------
# Models for the importer's special paths
# ------------------------------------------------------------------------------------------


def fp16_weights_model() -> bytes:
    """CONV_2D whose filter and bias are float16 constants behind DEQUANTIZE ops.

    This is how TFLite's float16 post-training quantization writes weights: a FLOAT16
    constant, a DEQUANTIZE (version 3) producing a float32 tensor, and the float op reading
    that. Input ``x`` 1x16x16x3, output ``y`` 1x16x16x8 (SAME, RELU).
    """
    rng = _rng("fp16_weights")
    b = ModelBuilder()
    x = b.add_input("x", [1, 16, 16, 3])
    filt16 = b.add_constant("conv/filter_fp16", _he(rng, [8, 3, 3, 3], 27).astype(np.float16))
    bias16 = b.add_constant("conv/bias_fp16", _small(rng, [8]).astype(np.float16))
    filt = b.add_op(Op.DEQUANTIZE, [filt16], [8, 3, 3, 3], name="conv/filter", version=3)
    bias = b.add_op(Op.DEQUANTIZE, [bias16], [8], name="conv/bias", version=3)
    opts = schema.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = SAME, 1, 1
    opts.fusedActivationFunction = Act.RELU
    y = b.add_op(Op.CONV_2D, [x, filt, bias], [1, 16, 16, 8], opts, name="y")
    b.mark_output(y)
    return b.build()


def sparse_weights_model() -> bytes:
    """FULLY_CONNECTED whose weight is a sparse (CSR) constant behind a DENSIFY op.

    The weight ``fc/weights_sparse`` has shape 16x64, about 70% zeros, and
    ``SparsityParametersT(traversal_order=[0, 1], block_map=[], dim_metadata=[DENSE(16),
    SPARSE_CSR(...)])``; its buffer holds only the non-zeros. DENSIFY yields the dense
    float32 ``fc/weights``. Input ``x`` 1x64, output ``y`` 1x16.
    """
    rng = _rng("sparse_weights")
    dense = _he(rng, [16, 64], 64)
    dense[rng.random(dense.shape) < 0.7] = 0.0
    b = ModelBuilder()
    x = b.add_input("x", [1, 64])
    sparse = b.add_sparse_constant("fc/weights_sparse", dense)
    weights = b.add_op(
        Op.DENSIFY, [sparse], [16, 64], schema.DensifyOptionsT(), name="fc/weights"
    )
    bias = b.add_constant("fc/bias", _small(rng, [16]))
    y = b.add_op(
        Op.FULLY_CONNECTED, [x, weights, bias], [1, 16], schema.FullyConnectedOptionsT(), name="y"
    )
    b.mark_output(y)
    return b.build()


def multi_io_model() -> bytes:
    """Two named inputs, two named outputs, in a fixed order.

    Inputs: ``image`` 1x8x8x3, ``features`` 1x8x8x5. Outputs: ``sum`` 1x8x8x4 =
    conv(image) + conv(features), and ``concat`` 1x8x8x9 = concat(conv(image), features).
    """
    rng = _rng("multi_io")
    b = ModelBuilder()
    image = b.add_input("image", [1, 8, 8, 3])
    features = b.add_input("features", [1, 8, 8, 5])
    a = _conv_2d(b, rng, image, 4, 3, name="branch_a/conv", activation=Act.RELU)
    c = _conv_2d(b, rng, features, 4, 1, name="branch_b/conv")
    total = _binary(b, Op.ADD, a, c, name="sum")
    concat = _concat(b, [a, features], 3, name="concat")
    b.mark_output(total, concat)
    return b.build()


CUSTOM_OP_CODE = "MyCustomOp"
CUSTOM_OP_OPTIONS = bytes([0x61, 0x6C, 0x70, 0x68, 0x61, 0x00, 0x01, 0x04, 0x02, 0x24, 0x01])


def custom_op_model() -> bytes:
    """A CUSTOM op ``MyCustomOp`` (with raw option bytes) between two builtin ops.

    ``x`` 1x8x8x4 -> RELU -> MyCustomOp -> LOGISTIC -> ``y`` 1x8x8x4. LiteRT has no kernel
    for it, so it refuses the model; qcc must import it as a generic op.
    """
    b = ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 4])
    r = _unary(b, Op.RELU, x, name="relu")
    c = b.add_tensor("custom", [1, 8, 8, 4])
    b.add_custom_operator(CUSTOM_OP_CODE, [r], [c], CUSTOM_OP_OPTIONS)
    y = _unary(b, Op.LOGISTIC, c, name="y")
    b.mark_output(y)
    return b.build()


def special_models() -> dict[str, bytes]:
    """The special-path models LiteRT can run (all but ``custom_op_model``)."""
    return {
        "fp16_weights": fp16_weights_model(),
        "sparse_weights": sparse_weights_model(),
        "multi_io": multi_io_model(),
    }


# ------------------------------------------------------------------------------------------
# Small realistic networks
# ------------------------------------------------------------------------------------------


def _residual_classifier() -> bytes:
    """conv -> relu -> depthwise -> add (residual) -> maxpool -> mean -> FC -> softmax."""
    rng = _rng("residual_classifier")
    b = ModelBuilder()
    x = b.add_input("image", [1, 16, 16, 3])
    h = _conv_2d(b, rng, x, 8, 3, name="stem/conv")
    h = _unary(b, Op.RELU, h, name="stem/relu")
    d = _depthwise_conv_2d(b, rng, h, 3, name="block/depthwise")
    h = _binary(b, Op.ADD, h, d, name="block/add", act=Act.RELU)
    h = _pool(b, Op.MAX_POOL_2D, h, 2, 2, VALID, name="pool")
    h = _reduce(b, Op.MEAN, h, [1, 2], False, name="global_pool")
    h = _fully_connected(b, rng, h, 10, name="head/fc")
    opts = schema.SoftmaxOptionsT()
    opts.beta = 1.0
    y = _unary(b, Op.SOFTMAX, h, name="probs", options=opts)
    b.mark_output(y)
    return b.build()


def _mobilenet_v3_block() -> bytes:
    """Inverted residual with hard-swish and squeeze-excite (MobileNetV3 style)."""
    rng = _rng("mobilenet_v3_block")
    b = ModelBuilder()
    x = b.add_input("x", [1, 16, 16, 8])
    hs = schema.HardSwishOptionsT
    h = _conv_2d(b, rng, x, 24, 1, name="expand/conv")
    h = _unary(b, Op.HARD_SWISH, h, name="expand/hard_swish", options=hs())
    h = _depthwise_conv_2d(b, rng, h, 3, name="depthwise/conv")
    h = _unary(b, Op.HARD_SWISH, h, name="depthwise/hard_swish", options=hs())
    s = _reduce(b, Op.MEAN, h, [1, 2], True, name="se/pool")
    s = _conv_2d(b, rng, s, 8, 1, name="se/reduce", activation=Act.RELU)
    s = _conv_2d(b, rng, s, 24, 1, name="se/expand")
    s = _unary(b, Op.LOGISTIC, s, name="se/gate")
    h = _binary(b, Op.MUL, h, s, name="se/scale")
    h = _conv_2d(b, rng, h, 8, 1, name="project/conv")
    y = _binary(b, Op.ADD, x, h, name="y")
    b.mark_output(y)
    return b.build()


def _encoder_decoder() -> bytes:
    """Two strided convs down, bilinear resizes up, a skip concatenation, a logistic head."""
    rng = _rng("encoder_decoder")
    b = ModelBuilder()
    x = b.add_input("image", [1, 16, 16, 3])
    e1 = _conv_2d(b, rng, x, 8, 3, stride=2, activation=Act.RELU6, name="enc1/conv")  # 8x8
    e2 = _conv_2d(b, rng, e1, 16, 3, stride=2, activation=Act.RELU, name="enc2/conv")  # 4x4
    u1 = _resize(b, Op.RESIZE_BILINEAR, e2, [8, 8], half_pixel_centers=True, name="dec1/up")
    h = _concat(b, [u1, e1], 3, name="dec1/concat")  # 8x8x24
    h = _conv_2d(b, rng, h, 8, 3, activation=Act.RELU, name="dec1/conv")
    h = _resize(b, Op.RESIZE_BILINEAR, h, [16, 16], name="dec2/up")
    h = _conv_2d(b, rng, h, 2, 1, name="head/conv")
    y = _unary(b, Op.LOGISTIC, h, name="mask")
    b.mark_output(y)
    return b.build()


def chained_models() -> dict[str, bytes]:
    """A few small realistic float networks, keyed by name."""
    return {
        "residual_classifier": _residual_classifier(),
        "mobilenet_v3_block": _mobilenet_v3_block(),
        "encoder_decoder": _encoder_decoder(),
    }


def all_runnable_models() -> dict[str, bytes]:
    """Every model LiteRT can run: single-op, special-path (not custom) and chained models."""
    models = single_op_models()
    for group in (special_models(), chained_models()):
        overlap = models.keys() & group.keys()
        if overlap:
            raise AssertionError(f"duplicate model names {sorted(overlap)}")
        models.update(group)
    return models


# ------------------------------------------------------------------------------------------
# Single-op models generated from the op declarations
# ------------------------------------------------------------------------------------------


def _property_attr(value: object):
    """A Python property value of an `nn.Example` (or an `nn.Option` default) as an attribute."""
    from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, i64

    from qcc.dialects import nn

    if isinstance(value, bool):
        return IntegerAttr.from_bool(value)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, float):
        return FloatAttr(value, 32)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, (tuple, list)):
        return nn.i64_array(value)
    raise TypeError(f"no property attribute for {value!r}")


def op_model(op_class: type) -> bytes:
    """A float single-op ``.tflite`` model of an nn op, built from its declared example
    (``SPEC.example``, see ``nn.Example``) and written by qcc's TFLite backend.

    Inputs are the example's non-constant operands, named ``x`` (or ``x0``, ``x1``, ...),
    float32; constants (``nn.Const``) are drawn from a generator seeded by the op's name
    unless the example gives their values; the outputs are the op's results, ``y`` (or
    ``y0``, ``y1``, ...). Properties the example leaves out take the defaults of the
    declared options. Raises ValueError for an op without an example."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import (
        ArrayAttr,
        BytesAttr,
        DenseIntOrFPElementsAttr,
        DictionaryAttr,
        ModuleOp,
        NameLoc,
        NoneAttr,
        StringAttr,
        TensorType,
        f32,
        i32,
    )
    from xdsl.ir import Block, Region
    from xdsl.irdl import OptionalDef, VariadicDef

    from qcc.backends.tflite import export_tflite
    from qcc.dialects import nn

    spec = nn.op_spec(op_class)
    example = spec.example if spec is not None else None
    if example is None:
        raise ValueError(f"{op_class.__name__} declares no example (SPEC.example)")

    def loc(name: str) -> NameLoc:
        return NameLoc(StringAttr(name), NoneAttr())

    def names(prefix: str, count: int) -> list[str]:
        return [prefix] if count == 1 else [f"{prefix}{k}" for k in range(count)]

    definition = op_class.get_irdl_definition()
    operand_names: list[str] = []
    for name, operand_def in definition.operands:
        if isinstance(operand_def, VariadicDef) and not isinstance(operand_def, OptionalDef):
            rest = len(example.operands) - (len(definition.operands) - 1)
            operand_names += [f"{name}{k}" for k in range(rest)]
        else:
            operand_names.append(name)

    rng = _rng(op_class.name)
    runtime = [s for s in example.operands if not isinstance(s, nn.Const)]
    block = Block(arg_types=[TensorType(f32, list(s)) for s in runtime])
    args = iter(block.args)
    values = []
    for operand, name in zip(example.operands, operand_names):
        if not isinstance(operand, nn.Const):
            values.append(next(args))
            continue
        dtype = np.dtype(operand.dtype)
        if operand.values is not None:
            array = np.asarray(operand.values, dtype=dtype).reshape(operand.shape)
        else:
            array = rng.uniform(operand.low, operand.high, size=operand.shape).astype(dtype)
        element = {np.dtype(np.float32): f32, np.dtype(np.int32): i32}[dtype]
        ttype = TensorType(element, list(operand.shape))
        data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()
        const = nn.ConstantOp(DenseIntOrFPElementsAttr(ttype, BytesAttr(data)))
        const.location = loc(f"y/{name}")
        block.add_op(const)
        values.append(const.output)

    # one entry per operand definition: a value, None (omitted optional), a list (variadic)
    grouped: list = []
    rest = list(values)
    for k, (_, operand_def) in enumerate(definition.operands):
        if isinstance(operand_def, OptionalDef):
            grouped.append(rest.pop(0) if rest else None)
        elif isinstance(operand_def, VariadicDef):
            take = len(rest) - (len(definition.operands) - 1 - k)
            grouped.append(rest[:take])
            rest = rest[take:]
        else:
            grouped.append(rest.pop(0))

    properties = {
        o.prop: _property_attr(o.default)
        for o in spec.fields
        if o.prop is not None and o.default is not None
    }
    properties.update({k: _property_attr(v) for k, v in example.properties.items()})
    result_types = [TensorType(f32, list(s)) for s in example.result_shapes()]
    variadic_result = len(definition.results) == 1 and isinstance(
        definition.results[0][1], VariadicDef
    )
    op = op_class.build(
        operands=grouped,
        result_types=[result_types] if variadic_result else result_types,
        properties=properties,
    )
    op.location = loc(names("y", len(op.results))[0])  # as the importer locates it
    block.add_op(op)
    block.add_op(func.ReturnOp(*op.results))

    def name_attrs(labels: list[str]) -> ArrayAttr:
        return ArrayAttr([DictionaryAttr({"nn.name": StringAttr(n)}) for n in labels])

    main = func.FuncOp(
        "main",
        ([a.type for a in block.args], [r.type for r in op.results]),
        Region(block),
        arg_attrs=name_attrs(names("x", len(block.args))),
        res_attrs=name_attrs(names("y", len(op.results))),
    )
    module = ModuleOp([main])
    module.verify()
    return export_tflite(module)


def op_inputs(op_class: type, seed: int = 0) -> list[np.ndarray]:
    """Inputs for ``op_model(op_class)``: one float32 array per model input, uniform over the
    declared example's ``domain`` (``nn.Example``; [-1, 1] by default), deterministic in
    `seed`. What tests feed the generated model, and calibrate it with."""
    from qcc.dialects import nn

    spec = nn.op_spec(op_class)
    example = spec.example if spec is not None else None
    if example is None:
        raise ValueError(f"{op_class.__name__} declares no example (SPEC.example)")
    low, high = example.domain
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(low, high, size=shape).astype(np.float32)
        for shape in example.operands
        if not isinstance(shape, nn.Const)
    ]


def declared_op_models() -> dict[str, bytes]:
    """``op_model`` of every nn op that declares an example, keyed by op name
    (``"nn.add"``)."""
    from qcc.dialects import nn

    return {
        cls.name: op_model(cls)
        for cls in nn.op_classes()
        if (spec := nn.op_spec(cls)) is not None and spec.example is not None
    }
