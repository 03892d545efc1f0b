"""nn.mean and nn.sum over `axes` (negative axes count from the end), keep_dims honoured by
the result type."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from .common import ints, tensor_dtype, tensor_shape
from .registry import float_kernel


def _reduce(op, fn):
    rank = len(tensor_shape(op.input))
    axes = tuple(sorted({a % rank for a in ints(op.axes)})) if rank else ()
    out_shape = tensor_shape(op.output)
    dtype = tensor_dtype(op.output)

    def run(x):
        out = fn(x, axis=axes, dtype=dtype if dtype is not None and dtype.kind == "f" else None)
        return np.asarray(out).astype(x.dtype, copy=False).reshape(out_shape)

    return run


@float_kernel(nn.MeanOp)
def mean(op):
    return _reduce(op, np.mean)


@float_kernel(nn.SumOp)
def sum_(op):
    return _reduce(op, np.sum)
