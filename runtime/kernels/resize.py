"""nn.resize_bilinear and nn.resize_nearest_neighbor, with TFLite's coordinate rules
(tensorflow/lite/kernels/internal/reference/resize_bilinear.h and
resize_nearest_neighbor.h), computed in float32 as TFLite does."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from .common import F32, bool_prop, tensor_shape
from .numba_kernels import resize_bilinear_nhwc
from .registry import float_kernel


def _scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return F32(in_size - 1) / F32(out_size - 1)
    return F32(in_size) / F32(out_size)


def bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel: bool):
    """(lower, upper, frac) per output index: ComputeInterpolationValues. `frac` is
    input_coord - lower (it may be negative near the border with half-pixel centres, exactly
    as in TFLite, where the lower bound is clamped to 0 but the coordinate is not)."""
    scale = _scale(in_size, out_size, align_corners)
    v = np.arange(out_size, dtype=F32)
    if half_pixel:
        scaled = (v + F32(0.5)) * scale - F32(0.5)
    else:
        scaled = v * scale
    scaled = scaled.astype(F32)
    lower = np.maximum(np.floor(scaled).astype(np.int64), 0)
    upper = np.minimum(np.ceil(scaled).astype(np.int64), in_size - 1)
    frac = (scaled - lower.astype(F32)).astype(F32)
    return lower, upper, frac


def nearest_axis(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """GetNearestNeighbor: round-half-away-from-zero of (x + offset) * scale with
    align_corners, floor otherwise; clamped to [0, in_size - 1]."""
    scale = _scale(in_size, out_size, align_corners)
    offset = F32(0.5) if half_pixel else F32(0.0)
    v = ((np.arange(out_size, dtype=F32) + offset) * scale).astype(F32)
    if align_corners:
        idx = np.trunc(v + np.copysign(F32(0.5), v)).astype(np.int64)  # std::round
    else:
        idx = np.floor(v).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    if half_pixel:
        idx = np.maximum(idx, 0)
    return idx


@float_kernel(nn.ResizeBilinearOp)
def resize_bilinear(op):
    n, h, w, c = tensor_shape(op.input)
    _, oh, ow, _ = tensor_shape(op.output)
    ac = bool_prop(op.align_corners)
    hp = bool_prop(op.half_pixel_centers)
    y0, y1, dy = bilinear_axis(h, oh, ac, hp)
    x0, x1, dx = bilinear_axis(w, ow, ac, hp)

    def run(x):
        out = np.empty((n, oh, ow, c), F32)
        resize_bilinear_nhwc(np.ascontiguousarray(x, dtype=F32), out, y0, y1, dy, x0, x1, dx)
        return out

    return run


@float_kernel(nn.ResizeNearestNeighborOp)
def resize_nearest_neighbor(op):
    n, h, w, c = tensor_shape(op.input)
    _, oh, ow, _ = tensor_shape(op.output)
    ac = bool_prop(op.align_corners)
    hp = bool_prop(op.half_pixel_centers)
    iy = nearest_axis(h, oh, ac, hp)
    ix = nearest_axis(w, ow, ac, hp)

    def run(x):
        return x[:, iy][:, :, ix]

    return run
