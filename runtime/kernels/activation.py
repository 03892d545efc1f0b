"""Activations: nn.relu, nn.relu6, nn.relu_n1_to_1, nn.leaky_relu, nn.prelu, nn.logistic,
nn.tanh, nn.hard_swish, nn.gelu, nn.softmax, and the unary nn.rsqrt (TFLite float
semantics, float32 throughout).

The element-wise ones are single Numba passes over the flattened tensor (numpy's maximum and
where are several times slower than one fused loop on float32)."""

from __future__ import annotations

import math

import numpy as np
from qcc.dialects import nn

from ..fixedpoint import njit
from . import numba_kernels as nk
from .common import ACTIVATION_BOUNDS, F32, constant_value, float_prop, tensor_shape
from .registry import float_kernel


def _unary(loop, *args):
    """A kernel running `loop(x_flat, out_flat, *args)` into a fresh array."""

    def run(x):
        x = np.ascontiguousarray(x, dtype=F32)
        out = np.empty_like(x)
        loop(x.reshape(-1), out.reshape(-1), *args)
        return out

    return run


@float_kernel(nn.ReluOp)
def relu(op):
    """max(x, 0) with no upper bound: TFLite's standalone RELU keeps +inf (the fused RELU
    activation clamps to FLT_MAX)."""
    return _unary(nk.clamp, 0.0, np.inf)


@float_kernel(nn.Relu6Op)
def relu6(op):
    return _unary(nk.clamp, *ACTIVATION_BOUNDS["RELU6"])


@float_kernel(nn.ReluN1To1Op)
def relu_n1_to_1(op):
    return _unary(nk.clamp, *ACTIVATION_BOUNDS["RELU_N1_TO_1"])


@float_kernel(nn.LeakyReluOp)
def leaky_relu(op):
    """x > 0 ? x : alpha * x."""
    return _unary(nk.leaky_relu, float_prop(op.alpha))


@float_kernel(nn.HardSwishOp)
def hard_swish(op):
    """x * relu6(x + 3) / 6, in TFLite's order."""
    return _unary(nk.hard_swish)


@njit(cache=True, nogil=True)
def _gelu_loop(x, out, approximate):  # pragma: no cover - jitted
    """reference_ops::Gelu per element, in double, rounded once to float32 (within an ulp
    or two of LiteRT's float32 Eigen evaluation): erfc form, or the tanh approximation."""
    sqrt_2_over_pi = math.sqrt(2.0 / math.pi)
    for i in range(x.size):
        v = np.float64(x[i])
        if approximate:
            out[i] = 0.5 * v * (1.0 + math.tanh(sqrt_2_over_pi * (v + 0.044715 * v * v * v)))
        else:
            out[i] = 0.5 * v * math.erfc(-v * 0.7071067811865476)


@float_kernel(nn.GeluOp)
def gelu(op):
    """0.5 x erfc(-x / sqrt 2), or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _unary(_gelu_loop, bool(op.approximate.value.data))


@float_kernel(nn.RsqrtOp)
def rsqrt(op):
    """elementwise.cc: `1.f / std::sqrt(f)` in float32 (NaN below 0, inf at 0)."""

    def run(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return F32(1) / np.sqrt(np.asarray(x, F32))

    return run


@float_kernel(nn.LogisticOp)
def logistic(op):
    """1 / (1 + exp(-x))."""
    return _unary(nk.logistic)


@float_kernel(nn.TanhOp)
def tanh(op):
    def run(x):
        return np.tanh(x)

    return run


@float_kernel(nn.PReluOp)
def prelu(op):
    """x >= 0 ? x : alpha * x, alpha broadcast against x. The common case, one alpha per
    channel (alpha shaped [..., 1, C]), is one Numba pass."""
    in_shape = tensor_shape(op.input)
    out_shape = tensor_shape(op.output)
    a_shape = tensor_shape(op.alpha)
    const_alpha = constant_value(op.alpha)
    alpha_c = None if const_alpha is None else np.ascontiguousarray(const_alpha, dtype=F32)
    channels = in_shape[-1] if in_shape else 1
    per_channel = (
        in_shape == out_shape
        and len(a_shape) >= 1
        and a_shape[-1] == channels
        and all(d == 1 for d in a_shape[:-1])
        and len(a_shape) <= len(in_shape)
    )

    def run(x, alpha):
        a = alpha_c if alpha_c is not None else np.ascontiguousarray(alpha, dtype=F32)
        if per_channel:
            x = np.ascontiguousarray(x, dtype=F32)
            out = np.empty_like(x)
            nk.prelu_channels(x.reshape(-1, channels), a.reshape(channels), out.reshape(-1, channels))
            return out
        neg = np.minimum(x, F32(0)) * a
        return (np.maximum(x, F32(0)) + neg).reshape(out_shape)

    return run


@float_kernel(nn.SoftmaxOp)
def softmax(op):
    """exp(beta * (x - max)) / sum over the last axis."""
    beta = F32(float_prop(op.beta, 1.0))

    def run(x):
        z = x - x.max(axis=-1, keepdims=True)
        if beta != 1:
            z *= beta
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    return run
