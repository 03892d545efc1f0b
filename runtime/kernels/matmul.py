"""nn.fully_connected and nn.batch_matmul."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from .common import (
    ACTIVATION_BOUNDS,
    activation_of,
    as_f32,
    bool_prop,
    constant_value,
    inplace_activation,
    tensor_shape,
)
from .numba_kernels import bias_clamp_rows
from .registry import float_kernel


@float_kernel(nn.FullyConnectedOp)
def fully_connected(op):
    """out = reshape(x, [-1, in]) @ W^T + b; the result type gives the output shape (keeping
    the input's leading dims with keep_num_dims, [batch, out] otherwise)."""
    units, depth = tensor_shape(op.filter)
    out_shape = tensor_shape(op.output)
    act = inplace_activation(op)
    act_name = activation_of(op)
    lo, hi = ACTIVATION_BOUNDS.get(act_name, (-np.inf, np.inf))
    const_w = constant_value(op.filter)
    weights = np.ascontiguousarray(as_f32(const_w).T) if const_w is not None else None
    const_b = constant_value(op.bias)
    bias_c = as_f32(const_b) if const_b is not None else None

    def run(x, w=None, b=None):
        wt = weights if weights is not None else as_f32(w).T
        bias = bias_c if bias_c is not None else (None if b is None else as_f32(b))
        out = np.matmul(x.reshape(-1, depth), wt)
        if bias is not None and act_name != "TANH":
            bias_clamp_rows(out, bias, lo, hi)
        else:
            if bias is not None:
                out += bias
            if act is not None:
                act(out)
        return out.reshape(out_shape)

    return run


@float_kernel(nn.BatchMatMulOp)
def batch_matmul(op):
    """matmul(adj_x ? lhs^T : lhs, adj_y ? rhs^T : rhs) over the last two dims, batch dims
    broadcast (TFLite BATCH_MATMUL)."""
    adj_x = bool_prop(op.adj_x)
    adj_y = bool_prop(op.adj_y)
    out_shape = tensor_shape(op.output)
    const_rhs = constant_value(op.rhs)
    rhs_c = None
    if const_rhs is not None:
        rhs_c = const_rhs.astype(np.float32) if const_rhs.dtype == np.float16 else const_rhs
        rhs_c = np.ascontiguousarray(np.swapaxes(rhs_c, -1, -2) if adj_y else rhs_c)

    def run(a, b):
        if adj_x:
            a = np.swapaxes(a, -1, -2)
        if rhs_c is not None:
            b = rhs_c
        elif adj_y:
            b = np.swapaxes(b, -1, -2)
        return np.matmul(a, b).reshape(out_shape)

    return run
