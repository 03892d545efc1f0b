"""Element-wise binary ops with numpy broadcasting and fused activations:
nn.add, nn.sub, nn.mul, nn.div, nn.maximum, nn.minimum."""

from __future__ import annotations

import numpy as np

from . import kernel
from .common import constant_value, inplace_activation, tensor_dtype, tensor_shape


def _int_div(a, b):
    """TFLite's integer DIV truncates toward zero (C semantics)."""
    q = np.floor_divide(a, b)
    fix = (q < 0) & (q * b != a)
    return q + fix


def _binary(ufunc, op):
    act = inplace_activation(op)
    out_shape = tensor_shape(op.output)
    dtype = tensor_dtype(op.output)
    floating = dtype is not None and dtype.kind == "f"
    if not floating:
        act = None  # fused activations only exist for float ops here
    # A float16 constant operand (fp16 weights) is widened once.
    consts = [constant_value(v) for v in (op.lhs, op.rhs)]
    consts = [
        c.astype(np.float32) if c is not None and c.dtype == np.float16 and floating else None
        for c in consts
    ]
    lhs_c, rhs_c = consts
    fn = ufunc
    if ufunc is np.divide and not floating:
        fn = _int_div

    def run(a, b):
        if lhs_c is not None:
            a = lhs_c
        if rhs_c is not None:
            b = rhs_c
        out = fn(a, b)
        if not isinstance(out, np.ndarray):  # rank-0 operands give a numpy scalar
            out = np.asarray(out)
        if out.shape != out_shape:
            out = out.reshape(out_shape)
        if act is not None:
            act(out)
        return out

    return run


@kernel("nn.add")
def add(op):
    return _binary(np.add, op)


@kernel("nn.sub")
def sub(op):
    return _binary(np.subtract, op)


@kernel("nn.mul")
def mul(op):
    return _binary(np.multiply, op)


@kernel("nn.div")
def div(op):
    return _binary(np.divide, op)


def _tflite_maximum(a, b):
    """TFLite's `el1 > el2 ? el1 : el2`: a NaN in `a` yields `b`, a NaN in `b` stays."""
    return np.where(a > b, a, b)


def _tflite_minimum(a, b):
    """TFLite's `el1 < el2 ? el1 : el2` (NaN handling as in `_tflite_maximum`)."""
    return np.where(a < b, a, b)


@kernel("nn.maximum")
def maximum(op):
    return _binary(_tflite_maximum, op)


@kernel("nn.minimum")
def minimum(op):
    return _binary(_tflite_minimum, op)
