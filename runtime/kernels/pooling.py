"""nn.max_pool2d and nn.avg_pool2d (TFLite semantics: padded positions never take part;
AVERAGE_POOL divides by the number of in-bounds taps of each window). One Numba pass, the
fused activation included."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from .common import (
    ACTIVATION_BOUNDS,
    F32,
    activation_of,
    inplace_activation,
    ints,
    same_padding,
    tensor_shape,
)
from .numba_kernels import pool_nhwc
from .registry import float_kernel


def _pool(op, is_max: bool):
    n, h, w, c = tensor_shape(op.input)
    _, oh, ow, _ = tensor_shape(op.output)
    fh, fw = ints(op.filter_size)
    sh, sw = ints(op.stride)
    pt, _ = same_padding(h, fh, sh, 1, oh)
    pl, _ = same_padding(w, fw, sw, 1, ow)
    params = np.array([fh, fw, sh, sw, pt, pl], np.int64)
    act = activation_of(op)
    lo, hi = ACTIVATION_BOUNDS.get(act, (-np.inf, np.inf))
    post = inplace_activation(op) if act == "TANH" else None

    def run(x):
        out = np.empty((n, oh, ow, c), F32)
        pool_nhwc(np.ascontiguousarray(x, dtype=F32), out, params, is_max, lo, hi)
        if post is not None:
            post(out)
        return out

    return run


@float_kernel(nn.MaxPool2DOp)
def max_pool2d(op):
    return _pool(op, True)


@float_kernel(nn.AvgPool2DOp)
def avg_pool2d(op):
    return _pool(op, False)
