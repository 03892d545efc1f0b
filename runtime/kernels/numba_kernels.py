"""Numba loops for the float kernels where numpy would need many small passes.

Each function writes into a caller-allocated `out` and takes only arrays and scalars, so the
call overhead stays at a couple of microseconds. Compiled on first use and cached on disk.
"""

from __future__ import annotations

import numpy as np

from ..fixedpoint import njit
from .simd import simd_empty, simd_max, simd_min


@njit(cache=True, nogil=True)
def depthwise_conv_nhwc(x, w, bias, out, params, lo, hi):  # pragma: no cover - jitted
    """out[b, oy, ox, c*M+m] = clamp(bias + sum_k x[b, iy, ix, c] * w[ky, kx, c*M+m]).

    x: [N, H, W, C] f32; w: [KH, KW, C*M] f32; bias: [C*M]; params: stride h/w, dilation h/w,
    pad top/left, multiplier M. Taps falling in the padding are skipped (zero padding).
    Row by row: each tap adds a contiguous run of output pixels (valid range computed once
    per tap), so the inner loop is a branch-free, vectorizable multiply-add over channels."""
    sh, sw, dh, dw, pt, pl, mult = params[0], params[1], params[2], params[3], params[4], params[5], params[6]
    n, h, wd, c = x.shape
    oh, ow, oc = out.shape[1], out.shape[2], out.shape[3]
    kh, kw = w.shape[0], w.shape[1]
    flo = np.float32(lo)
    fhi = np.float32(hi)
    for b in range(n):
        for oy in range(oh):
            orow = out[b, oy]
            for ox in range(ow):
                for k in range(oc):
                    orow[ox, k] = bias[k]
            iy0 = oy * sh - pt
            for ky in range(kh):
                iy = iy0 + ky * dh
                if iy < 0 or iy >= h:
                    continue
                xrow = x[b, iy]
                for kx in range(kw):
                    off = kx * dw - pl
                    # ox range with 0 <= ox * sw + off < wd
                    lo_x = 0
                    if off < 0:
                        lo_x = (-off + sw - 1) // sw
                    hi_x = (wd - 1 - off) // sw + 1
                    if hi_x > ow:
                        hi_x = ow
                    wk = w[ky, kx]
                    if mult == 1:
                        for ox in range(lo_x, hi_x):
                            ix = ox * sw + off
                            for k in range(oc):
                                orow[ox, k] += xrow[ix, k] * wk[k]
                    else:
                        for ox in range(lo_x, hi_x):
                            ix = ox * sw + off
                            for ci in range(c):
                                v = xrow[ix, ci]
                                for m in range(mult):
                                    orow[ox, ci * mult + m] += v * wk[ci * mult + m]
            for ox in range(ow):
                for k in range(oc):
                    v = orow[ox, k]
                    v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
                    orow[ox, k] = fhi if fhi < v else v  # std::min(v, hi)


@njit(cache=True, nogil=True)
def im2col_nhwc(x, cols, params):  # pragma: no cover - jitted
    """cols[(b*OH + oy)*OW + ox, (ky*KW + kx)*C + c] = x[b, iy, ix, c], zero where the tap
    falls in the padding. params: KH, KW, stride h/w, dilation h/w, pad top/left, OH, OW."""
    kh, kw, sh, sw, dh, dw, pt, pl, oh, ow = (
        params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7],
        params[8], params[9],
    )
    n, h, wd, c = x.shape
    zero = np.float32(0)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                row = cols[(b * oh + oy) * ow + ox]
                for ky in range(kh):
                    iy = oy * sh - pt + ky * dh
                    for kx in range(kw):
                        ix = ox * sw - pl + kx * dw
                        base = (ky * kw + kx) * c
                        if iy < 0 or iy >= h or ix < 0 or ix >= wd:
                            for k in range(c):
                                row[base + k] = zero
                        else:
                            for k in range(c):
                                row[base + k] = x[b, iy, ix, k]


# ------------------------------------------------------------------------------------------
# Element-wise passes over flat (1-D, contiguous) float32 arrays
# ------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def clamp(x, out, lo, hi):  # pragma: no cover - jitted
    """out = min(max(x, lo), hi); `out` may be `x`."""
    flo = np.float32(lo)
    fhi = np.float32(hi)
    for i in range(x.size):
        v = x[i]
        v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
        out[i] = fhi if fhi < v else v  # std::min(v, hi)


def _binary_clamp_loop(combine):
    """A jitted `out[i] = clamp(combine(a[i], b[i]), lo, hi)` over flat float32 arrays of one
    size: a fused activation (NONE clamps to +-FLT_MAX as TFLite's reference kernels do) in
    the same pass as the arithmetic."""

    @njit(cache=True, nogil=True)
    def loop(a, b, out, lo, hi):  # pragma: no cover - jitted
        flo = np.float32(lo)
        fhi = np.float32(hi)
        for i in range(out.size):
            v = combine(a[i], b[i])
            v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
            out[i] = fhi if fhi < v else v  # std::min(v, hi)

    return loop


@njit(inline="always")
def _add(x, y):  # pragma: no cover - jitted
    return x + y


@njit(inline="always")
def _sub(x, y):  # pragma: no cover - jitted
    return x - y


@njit(inline="always")
def _mul(x, y):  # pragma: no cover - jitted
    return x * y


@njit(inline="always")
def _div(x, y):  # pragma: no cover - jitted
    return x / y


add_clamp = _binary_clamp_loop(_add)
sub_clamp = _binary_clamp_loop(_sub)
mul_clamp = _binary_clamp_loop(_mul)
div_clamp = _binary_clamp_loop(_div)


@njit(cache=True, nogil=True)
def bias_clamp_rows(out, bias, lo, hi):  # pragma: no cover - jitted
    """out[m, :] = clamp(out[m, :] + bias) in place, out [M, O] contiguous."""
    flo = np.float32(lo)
    fhi = np.float32(hi)
    rows, cols = out.shape
    for m in range(rows):
        for k in range(cols):
            v = out[m, k] + bias[k]
            v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
            out[m, k] = fhi if fhi < v else v  # std::min(v, hi)


@njit(cache=True, nogil=True)
def prelu_channels(x, alpha, out):  # pragma: no cover - jitted
    """out[m, c] = x >= 0 ? x : alpha[c] * x, x [M, C] contiguous."""
    rows, cols = x.shape
    for m in range(rows):
        for c in range(cols):
            v = x[m, c]
            out[m, c] = v if v >= 0 else v * alpha[c]


@njit(cache=True, nogil=True)
def hard_swish(x, out):  # pragma: no cover - jitted
    """x * relu6(x + 3) / 6 (TFLite's float order)."""
    three = np.float32(3)
    six = np.float32(6)
    zero = np.float32(0)
    for i in range(x.size):
        v = x[i]
        t = v + three
        t = t if t > zero else zero
        t = t if t < six else six
        out[i] = v * t / six


@njit(cache=True, nogil=True)
def logistic(x, out):  # pragma: no cover - jitted
    """1 / (1 + exp(-x)) in float32 (exp overflows to inf harmlessly: the result is 0)."""
    one = np.float32(1)
    for i in range(x.size):
        out[i] = one / (one + np.exp(-x[i]))


# ------------------------------------------------------------------------------------------
# Pooling and resizing (NHWC, contiguous)
# ------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def pool_nhwc(x, out, params, is_max, lo, hi):  # pragma: no cover - jitted
    """TFLite's reference MaxPool / AveragePool: each window is clipped to the input (padding
    never takes part); the average divides by the number of in-bounds taps. Averages are
    accumulated in float64 (global pooling sums thousands of values)."""
    fh, fw, sh, sw, pt, pl = params[0], params[1], params[2], params[3], params[4], params[5]
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    flo = np.float32(lo)
    fhi = np.float32(hi)
    macc = simd_empty(c, np.float32)
    sacc = simd_empty(c, np.float64)
    for b in range(n):
        for oy in range(oh):
            y0 = oy * sh - pt
            fy0 = simd_max(0, -y0)
            fy1 = simd_min(fh, h - y0)
            for ox in range(ow):
                x0 = ox * sw - pl
                fx0 = simd_max(0, -x0)
                fx1 = simd_min(fw, w - x0)
                if is_max:
                    for k in range(c):
                        macc[k] = -np.inf
                    for fy in range(fy0, fy1):
                        for fx in range(fx0, fx1):
                            for k in range(c):
                                v = x[b, y0 + fy, x0 + fx, k]
                                if v > macc[k]:
                                    macc[k] = v
                    for k in range(c):
                        v = macc[k]
                        v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
                        out[b, oy, ox, k] = fhi if fhi < v else v  # std::min(v, hi)
                else:
                    for k in range(c):
                        sacc[k] = 0.0
                    for fy in range(fy0, fy1):
                        for fx in range(fx0, fx1):
                            for k in range(c):
                                sacc[k] += x[b, y0 + fy, x0 + fx, k]
                    count = (fy1 - fy0) * (fx1 - fx0)
                    for k in range(c):
                        v = np.float32(sacc[k] / count)
                        v = flo if v < flo else v  # std::max(v, lo): NaN stays NaN
                        out[b, oy, ox, k] = fhi if fhi < v else v  # std::min(v, hi)


@njit(cache=True, nogil=True)
def resize_bilinear_nhwc(x, out, y0, y1, fy, x0, x1, fx):  # pragma: no cover - jitted
    """TFLite's ResizeBilinear sum of four taps, with precomputed per-axis bounds and
    fractions (see resize.py)."""
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    one = np.float32(1)
    for b in range(n):
        for oy in range(oh):
            ya = y0[oy]
            yb = y1[oy]
            dy = fy[oy]
            for ox in range(ow):
                xa = x0[ox]
                xb = x1[ox]
                dx = fx[ox]
                w00 = (one - dy) * (one - dx)
                w10 = dy * (one - dx)
                w01 = (one - dy) * dx
                w11 = dy * dx
                for k in range(c):
                    out[b, oy, ox, k] = (
                        x[b, ya, xa, k] * w00
                        + x[b, yb, xa, k] * w10
                        + x[b, ya, xb, k] * w01
                        + x[b, yb, xb, k] * w11
                    )


@njit(cache=True, nogil=True)
def leaky_relu(x, out, alpha):  # pragma: no cover - jitted
    """x > 0 ? x : alpha * x."""
    a = np.float32(alpha)
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * a
