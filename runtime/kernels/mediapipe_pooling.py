"""MediaPipe's `MaxPoolingWithArgmax2D` and `MaxUnpooling2D` custom ops: float kernels.

Semantics transcribed from MediaPipe's C++ (google-ai-edge/mediapipe,
mediapipe/util/tflite/operations/max_pool_argmax.cc and max_unpooling.cc), which build on
TFLite's pooling code (kernels/pooling.cc, kernels/padding.h, kernel_util.h).

Options (both ops): not a flexbuffer, but the raw bytes of TFLite's C struct
`TfLitePoolParams` (`node->custom_initial_data` cast to it), little-endian int32 fields in
this order: `padding` (1 SAME, 2 VALID), `stride_width`, `stride_height`, `filter_width`,
`filter_height`, `activation` (TfLiteFusedActivation: 0 NONE, 1 RELU, 2 RELU_N1_TO_1,
3 RELU6, 4 TANH, 5 SIGN_BIT, 6 SIGMOID), then 16 bytes of `computed` padding, which the
ops never read. TFLite's converter writes all 40 bytes; the ops read the first 24, so fewer
than 24 is refused. There are no defaults: every field is read.

`MaxPoolingWithArgmax2D`: input [N, H, W, C] float32 -> (values, indices), both
[N, OH, OW, C] float32. OH = ceil(H / stride) under SAME, (H - filter + stride) // stride
under VALID (likewise OW); top/left padding = max(0, ((OH - 1) * stride + filter - H) // 2)
(TFLite's ComputePadding; the odd pixel goes bottom/right). Each output is the max over the
window taps inside the input (padding taps are skipped, not zeros), found in row-major tap
order with a strict `>` from float32's lowest: ties keep the first tap, NaN and -inf taps
never win, and a window with no winner gives -FLT_MAX at tap 0. The value is clamped to the
fused activation's range (RELU [0, max], RELU6 [0, 6], RELU_N1_TO_1 [-1, 1], any other
[-FLT_MAX, FLT_MAX]: TANH/SIGN_BIT/SIGMOID are not applied). The index is *window-relative*,
not a position in the input: `tap_y * filter_width + tap_x + 0.1f` as float32 (the 0.1
makes the float -> int truncation of the unpooling robust).

`MaxUnpooling2D`: (values [N, H, W, C], indices [N, H, W, C]) float32 -> [N, H * filter_h,
W * filter_w, C] float32, whatever the padding option (not read, nor the activation).
Padding = max(0, ((H - 1) * stride + filter - H * filter) // 2) (ComputePadding with the
roles of input and output swapped; 0 whenever stride <= filter). The output starts at 0;
each input element, in NHWC order, decodes `idx = int(index)` (C truncation; NaN, inf and
values outside int32 become INT_MIN, as x86 converts them, and land outside the output),
`tap_x = idx % filter_w`, `tap_y = idx / filter_w` (C remainder and truncating division:
negative indices give negative taps) and writes its value at
`(y * stride_h - pad_h + tap_y, x * stride_w - pad_w + tap_x)`; destinations outside the
output are skipped, and when several inputs land on one output the last write wins.

Refused (ValueError, one line naming the op): options shorter than 24 bytes, an unknown
padding (the C++ would silently make empty outputs) or activation, non-positive strides or
filters (a division by zero in the C++), an empty pooled output, a wrong operand/result
count, rank or element type, dynamic H/W/C, unpooling indices not shaped like the values,
and a declared result shape other than the one the C++ Prepare computes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from qcc.dialects import nn
from xdsl.ir import Operation

from .common import ACTIVATION_BOUNDS, FLT_MAX, tensor_dtype, tensor_shape
from .registry import float_kernel

POOL_CODE = "MaxPoolingWithArgmax2D"
UNPOOL_CODE = "MaxUnpooling2D"

_PADDING = {1: "SAME", 2: "VALID"}
"""TfLitePadding: kTfLitePaddingUnknown 0, kTfLitePaddingSame 1, kTfLitePaddingValid 2."""
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT",
               6: "SIGMOID"}
"""TfLiteFusedActivation, in enum order."""
_INT_MIN = -(2**31)


@dataclass(frozen=True)
class PoolParams:
    """The fields of a TfLitePoolParams the ops read (heights before widths here)."""

    padding: int
    stride: tuple[int, int]
    filter: tuple[int, int]
    activation: int


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _compute_padding(stride: int, in_size: int, filter_size: int, out_size: int) -> int:
    """TFLite's ComputePadding (kernels/padding.h) with dilation 1."""
    return max(0, _c_div((out_size - 1) * stride + filter_size - in_size, 2))


def pool_params(op: Operation, code: str) -> PoolParams:
    """Decode the raw TfLitePoolParams options of a MaxPoolingWithArgmax2D/MaxUnpooling2D
    op; raises ValueError naming the op when they are missing or invalid."""
    assert isinstance(op, nn.GenericOp)
    raw = op.option_bytes
    if len(raw) < 24:
        raise ValueError(
            f"custom op '{code}': its options must be a TfLitePoolParams struct (padding, "
            f"stride_width, stride_height, filter_width, filter_height, activation as int32), "
            f"got {len(raw)} bytes"
        )
    padding, sw, sh, fw, fh, act = struct.unpack_from("<6i", raw)
    if min(sw, sh) < 1 or min(fw, fh) < 1:
        raise ValueError(
            f"custom op '{code}': strides and filter must be positive, got stride {sh}x{sw}, "
            f"filter {fh}x{fw}"
        )
    if act not in _ACTIVATION:
        raise ValueError(f"custom op '{code}': unknown fused activation {act} in its options")
    return PoolParams(padding, (sh, sw), (fh, fw), act)


def _check_io(op: Operation, code: str, n_in: int, n_out: int) -> list[tuple[int, ...]]:
    """Operand/result counts, rank-4 float32 everywhere, static H/W/C of the first operand;
    returns the operand shapes."""
    if len(op.operands) != n_in or len(op.results) != n_out:
        raise ValueError(
            f"custom op '{code}': expects {n_in} input(s) and {n_out} output(s), got "
            f"{len(op.operands)} and {len(op.results)}"
        )
    shapes = [tensor_shape(v) for v in op.operands]
    for v in (*op.operands, *op.results):
        if len(tensor_shape(v)) != 4:
            raise ValueError(f"custom op '{code}': expects rank-4 NHWC tensors")
        if tensor_dtype(v) != np.float32:
            raise ValueError(f"custom op '{code}': runs float32 only, got {tensor_dtype(v)}")
    if min(shapes[0][1:]) < 0:
        raise ValueError(f"custom op '{code}': needs a static input height, width and depth")
    return shapes


def _check_result(op: Operation, code: str, want: Sequence[int]) -> None:
    for r in op.results:
        got = tensor_shape(r)
        if any(g != w and g >= 0 and w >= 0 for g, w in zip(got, want)):
            raise ValueError(
                f"custom op '{code}': its output must be {list(want)}, the model says {list(got)}"
            )


@float_kernel(nn.GenericOp, custom=POOL_CODE)
def max_pool_with_argmax(op: Operation) -> Callable:
    p = pool_params(op, POOL_CODE)
    (n, h, w, c), = _check_io(op, POOL_CODE, 1, 2)
    if p.padding not in _PADDING:
        raise ValueError(f"custom op '{POOL_CODE}': unknown padding {p.padding} in its options "
                         "(1 is SAME, 2 is VALID)")
    (sh, sw), (fh, fw) = p.stride, p.filter
    if _PADDING[p.padding] == "SAME":
        oh, ow = _c_div(h + sh - 1, sh), _c_div(w + sw - 1, sw)
    else:
        oh, ow = _c_div(h - fh + sh, sh), _c_div(w - fw + sw, sw)
    if oh < 1 or ow < 1:
        raise ValueError(f"custom op '{POOL_CODE}': a {fh}x{fw} VALID window does not fit in "
                         f"the {h}x{w} input")
    _check_result(op, POOL_CODE, (n, oh, ow, c))
    pad_h, pad_w = _compute_padding(sh, h, fh, oh), _compute_padding(sw, w, fw, ow)
    # Padded extent that every tap slice needs: (out - 1) * stride + filter.
    ext_h, ext_w = max(pad_h + h, (oh - 1) * sh + fh), max(pad_w + w, (ow - 1) * sw + fw)
    lo, hi = ACTIVATION_BOUNDS.get(_ACTIVATION[p.activation], (-FLT_MAX, FLT_MAX))
    taps = [(ty, tx) for ty in range(fh) for tx in range(fw)]  # the C++'s tap order

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        if (pad_h, pad_w, ext_h, ext_w) == (0, 0, h, w):
            xp = x
        else:  # NaN never wins `cur > max`: padding taps are skipped, as the C++ clips them
            xp = np.full((x.shape[0], ext_h, ext_w, c), np.nan, np.float32)
            xp[:, pad_h : pad_h + h, pad_w : pad_w + w] = x
        best = np.full((x.shape[0], oh, ow, c), -FLT_MAX, np.float32)
        tap = np.zeros(best.shape, np.int32)
        for ty, tx in taps:
            cur = xp[:, ty : ty + (oh - 1) * sh + 1 : sh, tx : tx + (ow - 1) * sw + 1 : sw]
            better = cur > best
            np.copyto(best, cur, where=better)
            np.copyto(tap, ty * fw + tx, where=better)
        np.clip(best, lo, hi, out=best)
        return best, tap.astype(np.float32) + np.float32(0.1)

    return run


@float_kernel(nn.GenericOp, custom=UNPOOL_CODE)
def max_unpooling(op: Operation) -> Callable:
    p = pool_params(op, UNPOOL_CODE)
    (n, h, w, c), ishape = _check_io(op, UNPOOL_CODE, 2, 1)
    if any(a != b and a >= 0 and b >= 0 for a, b in zip(ishape, (n, h, w, c))):
        raise ValueError(f"custom op '{UNPOOL_CODE}': its indices {list(ishape)} are not shaped "
                         f"like its values {[n, h, w, c]}")
    (sh, sw), (fh, fw) = p.stride, p.filter
    oh, ow = h * fh, w * fw
    _check_result(op, UNPOOL_CODE, (n, oh, ow, c))
    pad_h, pad_w = _compute_padding(sh, oh, fh, h), _compute_padding(sw, ow, fw, w)
    base_y = (np.arange(h, dtype=np.int64) * sh - pad_h)[:, None, None]
    base_x = (np.arange(w, dtype=np.int64) * sw - pad_w)[:, None]
    chan = np.arange(c, dtype=np.int64)

    def run(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if indices.shape != x.shape:
            raise ValueError(f"custom op '{UNPOOL_CODE}': indices {list(indices.shape)} and "
                             f"values {list(x.shape)} differ in shape")
        batch = x.shape[0]
        f = indices.astype(np.float64)
        ok = np.isfinite(f) & (f > _INT_MIN - 1.0) & (f < 2.0**31)
        idx = np.where(ok, np.trunc(np.where(ok, f, 0.0)), _INT_MIN).astype(np.int64)
        tap_x = np.fmod(idx, fw)  # C remainder: the sign of the dividend
        tap_y = (idx - tap_x) // fw  # exact, so it equals C's truncating division
        out_y = base_y + tap_y
        out_x = base_x + tap_x
        inside = (out_y >= 0) & (out_y < oh) & (out_x >= 0) & (out_x < ow)
        b = np.arange(batch, dtype=np.int64)[:, None, None, None]
        dest = (((b * oh + out_y) * ow + out_x) * c + chan)[inside]  # NHWC order = C++ order
        vals = x[inside]
        # Last write wins: keep each destination's last occurrence in input order.
        _, first_from_end = np.unique(dest[::-1], return_index=True)
        keep = dest.size - 1 - first_from_end
        out = np.zeros((batch, oh, ow, c), np.float32)
        out.reshape(-1)[dest[keep]] = vals[keep]
        return out

    return run
