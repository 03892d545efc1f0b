"""Element-wise binary ops with numpy broadcasting and fused activations:
nn.add, nn.sub, nn.mul, nn.div, nn.squared_difference, nn.maximum, nn.minimum."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from . import numba_kernels as nk
from .common import (
    ACTIVATION_BOUNDS,
    F32,
    activation_of,
    constant_value,
    inplace_activation,
    tensor_dtype,
    tensor_shape,
)
from .registry import float_kernel


def _int_div(a, b):
    """TFLite's integer DIV truncates toward zero (C semantics)."""
    q = np.floor_divide(a, b)
    fix = (q < 0) & (q * b != a)
    return q + fix


def _binary(ufunc, op, fused=None):
    """A kernel computing `ufunc(lhs, rhs)` with numpy broadcasting, then the fused
    activation. `fused`, a jitted `loop(a, b, out, lo, hi)` from numba_kernels, does both in
    one pass when both operands are float32 arrays of the result's shape."""
    act = inplace_activation(op)
    out_shape = tensor_shape(op.output)
    dtype = tensor_dtype(op.output)
    floating = dtype is not None and dtype.kind == "f"
    if not floating:
        act = None  # fused activations only exist for float ops here
    bounds = ACTIVATION_BOUNDS.get(activation_of(op))
    if not (floating and dtype == np.float32) or bounds is None:
        fused = None  # TANH, or another float type: the general path
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
        if (
            fused is not None
            and a.__class__ is np.ndarray
            and b.__class__ is np.ndarray
            and a.shape == out_shape
            and b.shape == out_shape
            and a.dtype == F32
            and b.dtype == F32
            and a.flags.c_contiguous
            and b.flags.c_contiguous
        ):
            out = np.empty(out_shape, F32)
            fused(a.reshape(-1), b.reshape(-1), out.reshape(-1), *bounds)
            return out
        out = fn(a, b)
        if not isinstance(out, np.ndarray):  # rank-0 operands give a numpy scalar
            out = np.asarray(out)
        if out.shape != out_shape:
            out = out.reshape(out_shape)
        if act is not None:
            act(out)
        return out

    return run


@float_kernel(nn.AddOp)
def add(op):
    return _binary(np.add, op, nk.add_clamp)


@float_kernel(nn.SubOp)
def sub(op):
    return _binary(np.subtract, op, nk.sub_clamp)


@float_kernel(nn.MulOp)
def mul(op):
    return _binary(np.multiply, op, nk.mul_clamp)


@float_kernel(nn.DivOp)
def div(op):
    return _binary(np.divide, op, nk.div_clamp)


def _squared_difference(a, b):
    """squared_difference.cc: `d = a - b; d * d`, in the operands' type."""
    d = np.subtract(a, b)
    return np.multiply(d, d, out=d) if isinstance(d, np.ndarray) else d * d


@float_kernel(nn.SquaredDifferenceOp)
def squared_difference(op):
    return _binary(_squared_difference, op)


def _tflite_maximum(a, b):
    """TFLite's `el1 > el2 ? el1 : el2`: a NaN in `a` yields `b`, a NaN in `b` stays."""
    return np.where(a > b, a, b)


def _tflite_minimum(a, b):
    """TFLite's `el1 < el2 ? el1 : el2` (NaN handling as in `_tflite_maximum`)."""
    return np.where(a < b, a, b)


@float_kernel(nn.MaximumOp)
def maximum(op):
    return _binary(_tflite_maximum, op)


@float_kernel(nn.MinimumOp)
def minimum(op):
    return _binary(_tflite_minimum, op)
