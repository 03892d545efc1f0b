"""Convolutions: nn.conv2d, nn.depthwise_conv2d, nn.transpose_conv (TFLite float semantics).

CONV_2D is im2col (the [OH*OW, KH*KW*C] patch matrix, zeros in the padding: one Numba pass,
or for inputs of few channels a strided window view of the zero-padded input copied once)
and a single float32 matmul against the filter reshaped at compile time to [KH*KW*I, O];
1x1 convolutions are a plain matmul on a reshape; bias and activation are one fused pass over
the result. Grouped convolutions (input channels a multiple of the filter's) run one matmul
per group. DEPTHWISE_CONV_2D is one fused Numba loop (kernel taps
accumulated per output pixel, bias and activation clamp in the same pass). TRANSPOSE_CONV is
one matmul to per-tap contributions, scattered (accumulated) into the output at stride.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided
from qcc.dialects import nn

from .common import (
    ACTIVATION_BOUNDS,
    F32,
    activation_of,
    as_f32,
    constant_value,
    inplace_activation,
    ints,
    same_padding,
    tensor_shape,
)
from .numba_kernels import bias_clamp_rows, depthwise_conv_nhwc, im2col_nhwc
from .registry import float_kernel

_FEW_CHANNELS = 8
"""Below this many input channels im2col is a strided numpy copy, above it a Numba loop."""


def _padder(n: int, h: int, w: int, c: int, pads: tuple[int, int, int, int]):
    """A function that zero-pads an NHWC array by (top, bottom, left, right) into a fresh
    buffer (fresh per call, so one Executor may run in several threads)."""
    pt, pb, pl, pr = pads
    if not any(pads):
        return lambda x: x
    shape = (n, h + pt + pb, w + pl + pr, c)

    def pad(x: np.ndarray) -> np.ndarray:
        buf = np.zeros(shape, F32)
        buf[:, pt : pt + h, pl : pl + w, :] = x
        return buf

    return pad


def _conv_out_size(size: int, kernel_size: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - kernel_size + stride) // stride


@float_kernel(nn.Conv2DOp)
def conv2d(op):
    n, h, w, c = tensor_shape(op.input)
    _, oh, ow, o = tensor_shape(op.output)
    _, kh, kw, i = tensor_shape(op.filter)
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, pb = same_padding(h, kh, sh, dh, oh)
    pl, pr = same_padding(w, kw, sw, dw, ow)
    groups = c // i
    og = o // groups
    act_name = activation_of(op)
    act = inplace_activation(op)
    lo, hi = ACTIVATION_BOUNDS.get(act_name, (-np.inf, np.inf))
    m = n * oh * ow
    pointwise = kh == 1 and kw == 1 and pt == pl == 0

    def prep_w(filt: np.ndarray) -> list[np.ndarray]:
        # OHWI -> per group [KH*KW*I, O/G]
        f = as_f32(filt)
        return [
            np.ascontiguousarray(f[g * og : (g + 1) * og].transpose(1, 2, 3, 0).reshape(kh * kw * i, og))
            for g in range(groups)
        ]

    const_w = constant_value(op.filter)
    weights = prep_w(const_w) if const_w is not None else None
    const_b = constant_value(op.bias)
    bias_c = as_f32(const_b) if const_b is not None else None

    pad = _padder(n, h, w, c, (pt, pb, pl, pr)) if c < _FEW_CHANNELS and not pointwise else None
    im2col_params = np.array([kh, kw, sh, sw, dh, dw, pt, pl, oh, ow], np.int64)

    def columns(x: np.ndarray) -> np.ndarray:
        """[M, KH*KW*C] patches (or [M, C] for a pointwise conv)."""
        if pointwise:
            if sh != 1 or sw != 1:
                x = x[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :]
            return x.reshape(m, c)
        if c < _FEW_CHANNELS:
            # Few channels (an image input): numpy's strided copy beats a per-element loop.
            xp = pad(x)
            s0, s1, s2, s3 = xp.strides
            win = as_strided(
                xp,
                shape=(n, oh, ow, kh, kw, c),
                strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3),
                writeable=False,
            )
            return win.reshape(m, kh * kw * c)
        cols = np.empty((m, kh * kw * c), F32)
        im2col_nhwc(np.ascontiguousarray(x, dtype=F32), cols, im2col_params)
        return cols

    def run(x, filt=None, b=None):
        ws = weights if weights is not None else prep_w(filt)
        bias = bias_c if bias_c is not None else (None if b is None else as_f32(b))
        cols = columns(x)
        if groups == 1:
            out = np.matmul(cols, ws[0])
        else:
            out = np.empty((m, o), F32)
            cols = cols.reshape(m, kh * kw, c)
            for g in range(groups):
                part = cols[:, :, g * i : (g + 1) * i].reshape(m, kh * kw * i)
                np.matmul(part, ws[g], out=out[:, g * og : (g + 1) * og])
        if bias is not None and act_name != "TANH":
            bias_clamp_rows(out, bias, lo, hi)  # bias and activation in one pass
        else:
            if bias is not None:
                out += bias
            if act is not None:
                act(out)
        return out.reshape(n, oh, ow, o)

    return run


@float_kernel(nn.DepthwiseConv2DOp)
def depthwise_conv2d(op):
    n, h, w, c = tensor_shape(op.input)
    _, oh, ow, oc = tensor_shape(op.output)
    _, kh, kw, _ = tensor_shape(op.filter)
    mult = oc // c
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    act = activation_of(op)
    lo, hi = ACTIVATION_BOUNDS.get(act, (-np.inf, np.inf))
    post = inplace_activation(op) if act == "TANH" else None

    def prep_w(filt):
        return np.ascontiguousarray(as_f32(filt).reshape(kh, kw, oc))

    const_w = constant_value(op.filter)
    weights = prep_w(const_w) if const_w is not None else None
    const_b = constant_value(op.bias)
    zero_bias = np.zeros(oc, F32)
    bias_c = as_f32(const_b) if const_b is not None else None
    params = np.array([sh, sw, dh, dw, pt, pl, mult], np.int64)

    def run(x, filt=None, b=None):
        wk = weights if weights is not None else prep_w(filt)
        bias = bias_c if bias_c is not None else (zero_bias if b is None else as_f32(b))
        out = np.empty((n, oh, ow, oc), F32)
        depthwise_conv_nhwc(np.ascontiguousarray(x, dtype=F32), wk, bias, out, params, lo, hi)
        if post is not None:
            post(out)
        return out

    return run


@float_kernel(nn.TransposeConvOp)
def transpose_conv(op):
    _, oh, ow, _ = tensor_shape(op.output)
    _, kh, kw, _ = tensor_shape(op.filter)
    sh, sw = ints(op.stride)
    padding = op.padding.data
    # TFLite computes the padding from the *output* size, as if it were a convolution's input.
    pt, _ = same_padding(oh, kh, sh, 1, _conv_out_size(oh, kh, sh, padding))
    pl, _ = same_padding(ow, kw, sw, 1, _conv_out_size(ow, kw, sw, padding))
    return transpose_conv_kernel(
        tensor_shape(op.input), tensor_shape(op.output), tensor_shape(op.filter), (sh, sw),
        (pt, pl), constant_value(op.filter), constant_value(op.bias), inplace_activation(op),
    )


def transpose_conv_kernel(in_shape, out_shape, filter_shape, stride, pad_top_left,
                          const_filter, const_bias, act=None):
    """The float transposed convolution (filter OHWI): every input pixel scatters
    `input · filter` into the output at `(in_y * stride - pad_top, in_x * stride - pad_left)`
    plus the tap offset, taps outside the output dropped; then the bias and `act` (in place).
    Returns `run(x, filter=None, bias=None)`; constant filter / bias are prepared once.
    (TRANSPOSE_CONV, and MediaPipe's Convolution2DTransposeBias, which is the same with a
    bias: runtime/kernels/mediapipe_transpose_conv.py.)"""
    n, h, w, c = in_shape
    _, oh, ow, o = out_shape
    _, kh, kw, _ = filter_shape
    sh, sw = stride
    pt, pl = pad_top_left
    full_h = max((h - 1) * sh + kh, pt + oh)
    full_w = max((w - 1) * sw + kw, pl + ow)

    def prep_w(filt):
        # OHWI -> [I, KH*KW*O]
        return np.ascontiguousarray(as_f32(filt).transpose(3, 1, 2, 0).reshape(c, kh * kw * o))

    weights = prep_w(const_filter) if const_filter is not None else None
    bias_c = as_f32(const_bias) if const_bias is not None else None

    def run(x, filt=None, b=None):
        wt = weights if weights is not None else prep_w(filt)
        bias = bias_c if bias_c is not None else (None if b is None else as_f32(b))
        taps = np.matmul(x.reshape(n * h * w, c), wt).reshape(n, h, w, kh, kw, o)
        full = np.zeros((n, full_h, full_w, o), F32)
        for y in range(kh):
            for xx in range(kw):
                full[:, y : y + (h - 1) * sh + 1 : sh, xx : xx + (w - 1) * sw + 1 : sw, :] += taps[
                    :, :, :, y, xx, :
                ]
        out = np.ascontiguousarray(full[:, pt : pt + oh, pl : pl + ow, :])
        if bias is not None:
            out += bias
        if act is not None:
            act(out)
        return out

    return run
