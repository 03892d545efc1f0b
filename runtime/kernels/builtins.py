"""Float kernels of TFLite builtins that have no nn op (they import as ``nn.generic``, keeping
their name and options): what real models carry around their convolutions, such as a
segmentation head's ARG_MAX, a converted Keras graph's SHAPE / PACK / EXPAND_DIMS, an
embedding's L2_NORMALIZATION or a detector's EXP. They run in the float executor and, in a
quantized model, as float islands on the int8 runtime (qcc keeps them float: an nn.generic
has no int8 kernel).

Each transcribes LiteRT's reference kernel for float32 tensors (`tflite/kernels/*.cc`,
`internal/reference/*.h`) in NumPy; the tests compare each with LiteRT on generated models
(tests/test_builtin_kernels.py). Values the kernels read at run time (axes, multiples,
paddings, sizes) are the op's constant inputs. A kernel returns None for a form it does not
cover (another input type, an unusual option), and the executor then reports the op as
having no kernel, by name.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from qcc.dialects import nn

from .common import tensor_dtype
from .registry import float_kernel


def builtin_options(op: nn.GenericOp):
    """The op's builtin options as the schema's object (``<options_type>T``), or None."""
    if op.options_type is None or not op.option_bytes:
        return None
    cls = getattr(schema, op.options_type.data + "T", None)
    return cls.InitFromPackedBuf(op.option_bytes, 0) if cls is not None else None


def _float_inputs(op, count: int | None = None) -> bool:
    """Whether the op's first input is float32 (and it has `count` inputs, when given)."""
    if count is not None and len(op.inputs) != count:
        return False
    return tensor_dtype(op.inputs[0]) == np.float32


def _result_dtype(op, index: int = 0):
    return tensor_dtype(op.outputs[index])


def _register_each(names, make) -> None:
    """Register `make(name)` as the float kernel factory of each builtin in `names`."""
    for name in names:
        float_kernel(nn.GenericOp, builtin=name)(make(name))


# -- element-wise math ------------------------------------------------------------------------

_UNARY = {
    "EXP": np.exp,
    "LOG": np.log,
    "SQRT": np.sqrt,
    "ABS": np.abs,
    "NEG": np.negative,
    "SQUARE": np.square,
    "SIN": np.sin,
    "COS": np.cos,
    "FLOOR": np.floor,
    "CEIL": np.ceil,
    "ROUND": np.rint,  # TFLite's RoundToNearest: halves to even
}


def _unary(name: str):
    fn = _UNARY[name]

    def factory(op):
        if not _float_inputs(op, 1):
            return None

        def run(x):
            return fn(x).astype(np.float32)

        return run

    return factory


_register_each(_UNARY, _unary)


@float_kernel(nn.GenericOp, builtin="CAST")
def cast(op):
    """static_cast per element: a float to an integer truncates toward zero."""
    want = _result_dtype(op)
    if want is None or len(op.inputs) != 1:
        return None

    def run(x):
        return np.asarray(x).astype(want)

    return run


@float_kernel(nn.GenericOp, builtin="LOG_SOFTMAX")
def log_softmax(op):
    """Over the last axis: x − max − log(Σ exp(x − max))."""
    if not _float_inputs(op, 1):
        return None

    def run(x):
        shifted = x - x.max(axis=-1, keepdims=True)
        return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)

    return run


@float_kernel(nn.GenericOp, builtin="L2_NORMALIZATION")
def l2_normalization(op):
    """Over the last axis: x / max(sqrt(Σ x²), 1e−6) (reference_ops::L2Normalization)."""
    options = builtin_options(op)
    if not _float_inputs(op, 1) or (options is not None and options.fusedActivationFunction):
        return None

    def run(x):
        norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True, dtype=np.float32))
        return (x / np.maximum(norm, np.float32(1e-6))).astype(np.float32)

    return run


# -- reductions and arg-reductions -------------------------------------------------------------


def _arg(fn):
    def factory(op):
        want = _result_dtype(op)
        if len(op.inputs) != 2 or want not in (np.int32, np.int64):
            return None

        def run(x, axis):
            # the first index of the extreme value, as the reference kernel's strict compare
            return fn(x, axis=int(np.asarray(axis).reshape(-1)[0])).astype(want)

        return run

    return factory


float_kernel(nn.GenericOp, builtin="ARG_MAX")(_arg(np.argmax))
float_kernel(nn.GenericOp, builtin="ARG_MIN")(_arg(np.argmin))

_REDUCERS = {"REDUCE_MAX": np.max, "REDUCE_MIN": np.min, "REDUCE_PROD": np.prod}


def _reducer(name: str):
    fn = _REDUCERS[name]

    def factory(op):
        if not _float_inputs(op, 2):
            return None
        options = builtin_options(op)
        keep = bool(options.keepDims) if options is not None else False
        shape = tuple(int(d) for d in op.outputs[0].type.get_shape())

        def run(x, axes):
            axes = tuple(sorted({int(a) % x.ndim for a in np.asarray(axes).reshape(-1)}))
            return np.asarray(fn(x, axis=axes, keepdims=keep), np.float32).reshape(shape)

        return run

    return factory


_register_each(_REDUCERS, _reducer)


# -- shapes and data movement --------------------------------------------------------------------


@float_kernel(nn.GenericOp, builtin="SHAPE")
def shape_op(op):
    want = _result_dtype(op)
    if len(op.inputs) != 1 or want not in (np.int32, np.int64):
        return None

    def run(x):
        return np.array(np.shape(x), want)

    return run


@float_kernel(nn.GenericOp, builtin="EXPAND_DIMS")
def expand_dims(op):
    """The result's static shape (EXPAND_DIMS only inserts a 1)."""
    shape = tuple(int(d) for d in op.outputs[0].type.get_shape())
    if len(op.inputs) != 2 or any(d < 0 for d in shape):
        return None

    def run(x, _axis):
        return np.asarray(x).reshape(shape)

    return run


@float_kernel(nn.GenericOp, builtin="PACK")
def pack(op):
    options = builtin_options(op)
    if options is None or options.valuesCount != len(op.inputs):
        return None
    axis = int(options.axis)

    def run(*xs):
        return np.stack([np.asarray(x) for x in xs], axis=axis)

    return run


@float_kernel(nn.GenericOp, builtin="UNPACK")
def unpack(op):
    options = builtin_options(op)
    if options is None or len(op.inputs) != 1 or options.num != len(op.outputs):
        return None
    axis = int(options.axis)

    def run(x):
        return tuple(np.ascontiguousarray(np.take(x, i, axis=axis)) for i in range(options.num))

    return run


@float_kernel(nn.GenericOp, builtin="TILE")
def tile(op):
    if len(op.inputs) != 2:
        return None

    def run(x, multiples):
        return np.tile(x, [int(m) for m in np.asarray(multiples).reshape(-1)])

    return run


@float_kernel(nn.GenericOp, builtin="MIRROR_PAD")
def mirror_pad(op):
    """REFLECT (the edge not repeated) or SYMMETRIC (repeated): NumPy's reflect / symmetric."""
    options = builtin_options(op)
    if len(op.inputs) != 2 or options is None:
        return None
    mode = {schema.MirrorPadMode.REFLECT: "reflect",
            schema.MirrorPadMode.SYMMETRIC: "symmetric"}.get(options.mode)
    if mode is None:
        return None

    def run(x, paddings):
        pads = [(int(a), int(b)) for a, b in np.asarray(paddings).reshape(-1, 2)]
        return np.pad(x, pads, mode=mode)

    return run


@float_kernel(nn.GenericOp, builtin="SPLIT_V")
def split_v(op):
    """Sizes along the axis (one −1: the rest), one result each."""
    if len(op.inputs) != 3:
        return None

    def run(x, sizes, axis):
        axis = int(np.asarray(axis).reshape(-1)[0]) % x.ndim
        sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        cuts = np.cumsum(sizes)[:-1]
        return tuple(np.ascontiguousarray(p) for p in np.split(x, cuts, axis=axis))

    return run


@float_kernel(nn.GenericOp, builtin="SPACE_TO_BATCH_ND")
def space_to_batch_nd(op):
    """NHWC: pad H, W, then move each (block_h, block_w) phase into the batch (phase-major,
    as reference_ops::SpaceToBatchND): what a converted atrous convolution wraps around it."""
    if len(op.inputs) != 3 or tensor_dtype(op.inputs[0]) is None:
        return None

    def run(x, block, paddings):
        bh, bw = (int(v) for v in np.asarray(block).reshape(-1)[:2])
        pads = [(0, 0), *((int(a), int(b)) for a, b in np.asarray(paddings).reshape(-1, 2)), (0, 0)]
        xp = np.pad(x, pads)
        n, h, w, c = xp.shape
        y = xp.reshape(n, h // bh, bh, w // bw, bw, c).transpose(2, 4, 0, 1, 3, 5)
        return np.ascontiguousarray(y.reshape(bh * bw * n, h // bh, w // bw, c))

    return run


@float_kernel(nn.GenericOp, builtin="BATCH_TO_SPACE_ND")
def batch_to_space_nd(op):
    """The inverse of SPACE_TO_BATCH_ND (NHWC), then the crops."""
    if len(op.inputs) != 3 or tensor_dtype(op.inputs[0]) is None:
        return None

    def run(x, block, crops):
        bh, bw = (int(v) for v in np.asarray(block).reshape(-1)[:2])
        (t, b), (left, right) = ((int(a), int(c)) for a, c in np.asarray(crops).reshape(-1, 2))
        nb, h, w, c = x.shape
        n = nb // (bh * bw)
        y = x.reshape(bh, bw, n, h, w, c).transpose(2, 3, 0, 4, 1, 5).reshape(n, h * bh, w * bw, c)
        return np.ascontiguousarray(y[:, t:h * bh - b, left:w * bw - right, :])

    return run
