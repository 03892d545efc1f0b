"""Scale and zero-point arithmetic shared by the PTQ passes (infer-scales, quantize,
modify-io). The leading underscore keeps this module out of the pass registry.

Range -> (scale, zero point) follows TF's `FakeQuantSupport.cc::getNudgedScaleAndZeroPoint`
(TFLITE_INT8_SPEC.md §1.1): the range is extended to contain 0, the zero point is taken from
the endpoint with the smaller rounding-error bound, clamped and rounded half away from zero;
a degenerate range gives scale 1.0 and zero point qmin. Every scale is rounded to float32
before anything is derived from it, because TFLite stores (and computes from) float32.

What cannot be quantized raises `QuantizationError` (a ValueError) saying why, in words the
passes put after the op's location: a range or a weight/bias that is not finite, a range too
wide for a float32 scale, a bias scale that underflows float32. The value-level helpers
(`symmetric_weight_scales`, `quantize_values`) tolerate inf and NaN (they saturate, NaN
becomes the zero point) so that an estimate such as bias-correction's never crashes; the
passes check `non_finite_count` first and report the tensor.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import f32

from qcc.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType

INT8_MIN, INT8_MAX = -128, 127
INT16_MAX = 32767
"""int16 activations are symmetric: scale = max|range| / INT16_MAX, zero point 0 (TFLite's
16x8 scheme, tools/optimize/quantization_utils.cc GetSymmetricQuantizationParams)."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_BITS, BIAS16X8_BITS = 16, 64
"""Storage of int16 activations, and of the biases of ops with int16 activations (int64)."""
F32_MAX = float(np.finfo(np.float32).max)


class QuantizationError(ValueError):
    """Why a range or a constant has no quantized type; the pass adds the op's location."""

ZERO_CHANNEL_SCALE = 2.0**-16
"""Weight scale of an all-zero weight tensor (any positive scale stores zeros exactly; this
one keeps the bias scale in*w representable and the output multiplier away from 0)."""


def to_f32(x: float) -> float:
    """`x` rounded to the nearest float32, as a Python float (beyond float32: an infinity)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """`std::round`: ties away from zero (numpy's `round` is ties-to-even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def check_range(rmin: float, rmax: float) -> None:
    """Raise QuantizationError unless [rmin, rmax] is a finite range."""
    if not (math.isfinite(rmin) and math.isfinite(rmax)):
        raise QuantizationError(f"range [{rmin:g}, {rmax:g}] is not finite (inf or NaN)")
    if rmin > rmax:
        raise QuantizationError(f"range [{rmin:g}, {rmax:g}] has min > max")


def nudged_scale_zero_point(
    rmin: float, rmax: float, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[float, int]:
    """(scale, zero point) for the real range [rmin, rmax] and storage [qmin, qmax];
    the scale is already float32-rounded. Raises QuantizationError for a range that is not
    finite or whose scale does not fit float32."""
    rmin, rmax = float(rmin), float(rmax)
    check_range(rmin, rmax)
    rmin, rmax = min(rmin, 0.0), max(rmax, 0.0)
    if abs(rmax - rmin) < sys.float_info.epsilon:
        return 1.0, qmin
    scale = (rmax - rmin) / (qmax - qmin)
    if not math.isfinite(to_f32(scale)):
        raise QuantizationError(
            f"range [{rmin:g}, {rmax:g}] needs a scale of {scale:g}, beyond float32 "
            f"({F32_MAX:g})"
        )
    return to_f32(scale), zero_point_for_scale(rmin, rmax, scale, qmin, qmax)


def zero_point_for_scale(
    rmin: float, rmax: float, scale: float, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> int:
    """The nudged zero point of [rmin, rmax] (extended to contain 0) under `scale`: from the
    endpoint with the smaller rounding-error bound, clamped to [qmin, qmax], rounded."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    zp_from_min = qmin - rmin / scale
    zp_from_min_error = abs(qmin) + abs(rmin / scale)
    zp_from_max = qmax - rmax / scale
    zp_from_max_error = abs(qmax) + abs(rmax / scale)
    zp = zp_from_min if zp_from_min_error < zp_from_max_error else zp_from_max
    if zp < qmin:
        return qmin
    if zp > qmax:
        return qmax
    return int(round_half_away(zp))


def activation_type(rmin: float, rmax: float) -> UniformQuantizedType:
    """int8 per-tensor asymmetric type for an activation (or a non-weight constant)."""
    scale, zp = nudged_scale_zero_point(rmin, rmax)
    return UniformQuantizedType.get(scale, zp)


def is_int16(t: QuantizedType | None) -> bool:
    """Whether `t` is an int16 type (qcc's int16 activations: symmetric, zero point 0)."""
    return t is not None and t.storage_bits == INT16_BITS and t.is_signed


def int16_activation_type(rmin: float, rmax: float) -> UniformQuantizedType:
    """int16 per-tensor symmetric type for an activation (or a constant of an int16 op):
    scale = float32(max(|rmin|, |rmax|) / 32767), zero point 0; a range of only 0 gets scale
    1.0. Raises QuantizationError like `nudged_scale_zero_point`."""
    rmin, rmax = float(rmin), float(rmax)
    check_range(rmin, rmax)
    largest = max(abs(rmin), abs(rmax))
    if largest < sys.float_info.epsilon:
        return UniformQuantizedType.get(1.0, 0, storage_bits=INT16_BITS)
    scale = to_f32(largest / INT16_MAX)
    if not math.isfinite(scale):
        raise QuantizationError(
            f"range [{rmin:g}, {rmax:g}] needs a scale of {largest / INT16_MAX:g}, beyond "
            f"float32 ({F32_MAX:g})"
        )
    if scale == 0.0:
        raise QuantizationError(
            f"range [{rmin:g}, {rmax:g}] needs a scale of {largest / INT16_MAX:g}, below float32"
        )
    return UniformQuantizedType.get(scale, 0, storage_bits=INT16_BITS)


def activation_type_of(rmin: float, rmax: float, bits: int) -> UniformQuantizedType:
    """`activation_type` (bits 8) or `int16_activation_type` (bits 16)."""
    if bits == INT16_BITS:
        return int16_activation_type(rmin, rmax)
    return activation_type(rmin, rmax)


def widened_type(
    t: UniformQuantizedType, min_scale: float, rng: tuple[float, float] | None = None
) -> UniformQuantizedType:
    """`t` with its scale raised above `min_scale` (the smallest float32 beyond it) and the
    zero point re-nudged for `rng` (default: the range `t` represents), for an op whose
    kernel needs a coarser result scale (nn.HardSwishOutputMultiplier, ...). An int16 type
    stays symmetric (zero point 0)."""
    scale = to_f32(min_scale)
    if scale <= min_scale:
        scale = float(np.nextafter(np.float32(scale), np.float32(np.inf)))
    if not math.isfinite(scale):
        raise QuantizationError(f"the result scale would have to exceed {min_scale:g}")
    if is_int16(t):
        return UniformQuantizedType.get(scale, 0, storage_bits=INT16_BITS)
    lo, hi = range_of(t) if rng is None else rng
    return UniformQuantizedType.get(
        scale, zero_point_for_scale(lo, hi, scale, t.storage_min, t.storage_max)
    )


def non_finite_count(values: np.ndarray) -> int:
    """How many of `values` are inf or NaN."""
    return int(np.count_nonzero(~np.isfinite(np.asarray(values, dtype=np.float64))))


def values_type(values: np.ndarray, bits: int = 8) -> UniformQuantizedType:
    """int8 per-tensor asymmetric type covering a constant's values (which must be
    finite: QuantizationError otherwise); with `bits` 16, the int16 symmetric type."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return activation_type_of(0.0, 0.0, bits)
    return activation_type_of(float(values.min()), float(values.max()), bits)


def symmetric_weight_scales(values: np.ndarray, axis: int | None) -> list[float]:
    """max|w|/127 per slice along `axis` (one scale for `axis=None`), float32-rounded.
    An all-zero slice takes the smallest positive scale of the others (else
    `ZERO_CHANNEL_SCALE`), never 0. Non-finite values are left out (callers that quantize
    check for them first)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    values = np.where(np.isfinite(values), values, 0.0)
    if axis is None:
        maxima = np.array([values.max() if values.size else 0.0])
    else:
        moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        maxima = moved.max(axis=1) if moved.shape[1] else np.zeros(moved.shape[0])
    with np.errstate(over="ignore"):  # each as `to_f32`, all at once
        scales = (maxima / 127.0).astype(np.float32).astype(np.float64).tolist()
    positive = [s for s in scales if s > 0.0]
    fallback = min(positive) if positive else ZERO_CHANNEL_SCALE
    return [s if s > 0.0 else fallback for s in scales]


def weight_type(values: np.ndarray, axis: int | None) -> QuantizedType:
    """Symmetric narrow-range int8 weights, per axis or (axis None) per tensor."""
    scales = symmetric_weight_scales(values, axis)
    if axis is None:
        return UniformQuantizedType.get(scales[0], 0, storage_min=-127)
    return UniformQuantizedPerAxisType.get(scales, axis=axis, storage_min=-127)


def scales_of(t: QuantizedType) -> list[float]:
    if isinstance(t, UniformQuantizedPerAxisType):
        return list(t.scales)
    assert isinstance(t, UniformQuantizedType)
    return [t.scale]


def bias_type(input_scale: float, weight: QuantizedType, bits: int = 32) -> QuantizedType:
    """int32 bias (`bits` 64: int64, for int16 activations): scale[c] =
    float32(input_scale * weight_scale[c]), zero point 0, with the weight's granularity
    (per-axis biases use axis 0). Raises QuantizationError when a product underflows to 0
    or overflows float32."""
    scales = [to_f32(float(input_scale) * s) for s in scales_of(weight)]
    for s_w, s in zip(scales_of(weight), scales):
        if not 0.0 < s < math.inf:
            raise QuantizationError(
                f"bias scale input scale {input_scale:g} x weight scale {s_w:g} is {s:g} "
                "in float32"
            )
    if isinstance(weight, UniformQuantizedPerAxisType):
        return UniformQuantizedPerAxisType.get(scales, axis=0, storage_bits=bits)
    return UniformQuantizedType.get(scales[0], 0, storage_bits=bits)


def quantize_values(values: np.ndarray, t: QuantizedType) -> np.ndarray:
    """Storage integers for float `values` under `t`: round half away from zero of x/scale,
    plus the zero point, clamped to the storage range (an int8, int16, int32 or int64 numpy
    array); an infinity saturates, a NaN becomes the zero point."""
    x = np.asarray(values, dtype=np.float64)
    if isinstance(t, UniformQuantizedPerAxisType):
        shape = [1] * x.ndim
        shape[t.axis] = len(t.scales)
        scale = np.asarray(t.scales, dtype=np.float64).reshape(shape)
        zp = np.asarray(t.zero_points, dtype=np.float64).reshape(shape)
    else:
        assert isinstance(t, UniformQuantizedType)
        scale, zp = np.float64(t.scale), np.float64(t.zero_point)
    with np.errstate(invalid="ignore", over="ignore"):
        q = round_half_away(x / scale) + zp
    q = np.where(np.isnan(q), np.broadcast_to(zp, q.shape), q)
    bits = t.storage_bits
    dtype = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[bits]
    if not t.is_signed:
        dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits]
    if bits < 53:
        return np.clip(q, t.storage_min, t.storage_max).astype(dtype)
    # 64 bits: the storage bounds are not float64 values (2^63 - 1 rounds up to 2^63), so
    # saturate by comparison and convert what lies strictly inside
    low, high = q <= float(t.storage_min), q >= float(t.storage_max)
    inside = np.where(low | high, 0.0, q).astype(dtype)
    inside[low] = t.storage_min
    inside[high] = t.storage_max
    return inside


def dequantize_values(stored: np.ndarray, t: QuantizedType) -> np.ndarray:
    """Real values of storage integers under `t` (float64)."""
    q = np.asarray(stored, dtype=np.float64)
    if isinstance(t, UniformQuantizedPerAxisType):
        shape = [1] * q.ndim
        shape[t.axis] = len(t.scales)
        scale = np.asarray(t.scales, dtype=np.float64).reshape(shape)
        zp = np.asarray(t.zero_points, dtype=np.float64).reshape(shape)
        return (q - zp) * scale
    assert isinstance(t, UniformQuantizedType)
    return (q - t.zero_point) * t.scale


def same_params(a: QuantizedType, b: QuantizedType) -> bool:
    """Equal storage, scales and zero points (the TFLite "same scale" constraint)."""
    return a == b


def range_of(t: UniformQuantizedType) -> tuple[float, float]:
    """The real range a per-tensor type represents."""
    return (
        (t.storage_min - t.zero_point) * t.scale,
        (t.storage_max - t.zero_point) * t.scale,
    )


def with_offset(t: UniformQuantizedType, *, signed: bool) -> UniformQuantizedType:
    """The same scale on the other 8-bit storage: u8 zero point = i8 zero point + 128."""
    if signed:
        return UniformQuantizedType.get(t.scale, t.zero_point - 128, expressed_type=f32)
    return UniformQuantizedType.get(t.scale, t.zero_point + 128, signed=False)


def check_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)
