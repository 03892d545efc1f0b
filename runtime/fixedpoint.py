"""TFLite's integer arithmetic, bit-exact with the default (double-rounding) LiteRT build.

This module imports only numpy and numba (the `--emit=numba` artifact inlines its source), so
keep it free of xdsl / qcc imports. Sources: LRT `tflite/kernels/internal/common.h`,
`quantization_util.cc`, gemmlowp `fixedpoint/fixedpoint.h`; see TFLITE_INT8_SPEC.md §4.

Two kinds of functions:

* **Compile time** (plain Python / numpy, run once per model, never jitted): derive the
  integer multipliers from float scales exactly as the C++ `Prepare` functions do.

  - `quantize_multiplier(d) -> (m, shift)`                       QuantizeMultiplier
  - `quantize_multiplier_smaller_than_one_exp(d) -> (m, shift)`  asserts shift <= 0
  - `quantize_multiplier_greater_than_one(d) -> (m, shift)`      asserts shift >= 0
  - `quantize_multipliers(ds) -> (m[int32], shift[int32])`       vectorized over channels
  - `add_sub_params(s1, s2, s_out, left_shift=20)`               ADD/SUB rescale scheme
  - `round_half_away(x)`                                         TfLiteRound / std::round
  - `activation_range_int8(act, scale, zp)`                      fused-activation clamp bounds
  - `float32(x)`                                                 round a Python float to f32
  - `split_shifts(shift) -> (left int32[], right int32[])`       max(shift,0), max(-shift,0)

  Scales arrive as float32 values (the flatbuffer stores f32): pass them as Python floats
  holding the float32 value (`float(np.float32(s))`), and do the products in the width the C++
  uses (double for conv/FC/requantize/ADD/SUB — e.g. `float(s_in) * float(s_w) / float(s_out)`;
  float32 for MUL/RELU — `np.float32(s1) * np.float32(s2) / np.float32(s_out)`).

* **Run time** (`@njit(cache=True)`; callable from other jitted code and from Python).
  Scalars take/return Python/numba ints holding int32 values (arithmetic is done in int64 and
  wrapped where C would wrap):

  - `srdhm(a, b)`                 gemmlowp SaturatingRoundingDoublingHighMul (int32 x int32)
  - `rdbpot(x, exponent)`         gemmlowp RoundingDivideByPOT, 0 <= exponent <= 31
  - `mbqm(x, m, shift)`           tflite::MultiplyByQuantizedMultiplier (reference, double
                                  rounding: left shift, SRDHM, then RDBPOT)
  - `mbqm_fast(x, m, left, right)`  branch-free mbqm for hot loops (m >= 0; left/right =
                                  max(±shift, 0) precomputed, e.g. with `split_shifts`)
  - `mbqm_smaller_than_one_exp(x, m, shift)`   same with shift <= 0 (what ADD/SUB call)
  - `mbqm_greater_than_one(x, m, shift)`       same with shift >= 0
  - `saturating_rounding_multiply_by_pot(x, exponent)`  gemmlowp, signed exponent, int32
  - `wrap_int32(x)`               two's complement wrap of an int64 into int32 range
  - `round_half_away_f32(x)`      std::round on a float (works for f32/f64 scalars)

  Array variants (`out` allocated by the caller or returned):

  - `mbqm_array(x, m, shift) -> int32 array`                  one multiplier, any shape
  - `mbqm_per_channel(acc2d, m[C], shift[C]) -> int32 [R, C]`  last axis = channel
  - `requantize_per_channel_i8(acc2d, m, shift, zp_out, lo, hi, out_i8)`
        out[r, c] = clamp(mbqm(acc[r, c], m[c], shift[c]) + zp_out, lo, hi); acc may be int32,
        int64 or float64 holding exact integers (BLAS accumulators).
  - `requantize_float_per_channel_i8(acc2d, eff[C] f64, zp_out, lo, hi, out_i8)`
        the FULLY_CONNECTED reference requant (LRT 9213607): clamp(round_half_away(acc*eff) + zp)
  - `quantize_f32_int(x_f32, scale, zp, lo, hi, out)`, `requantize_int(...)`: any storage range
  - `mbqm64(x_i64, m, shift)`                           the int64 MultiplyByQuantizedMultiplier (16x8)
  - `quantize_f32_i8(x_f32, scale, zp, out_i8)`                TFLite AffineQuantize (reference)
  - `requantize_i8(x_i8, m, shift, zp_in, zp_out, out_i8)`    TFLite Requantize (QUANTIZE i8->i8)
  - `dequantize_i8(x_i8, scale, zp, out_f32)`                 DEQUANTIZE reference

  NumPy forms (plain Python over arrays, the same bits; a cold first run's steps run them
  while their kernels compile elsewhere): `mbqm_fast_np`, `mbqm_np`, `wrap_int32_np`,
  `quantize_f32_int_np`, `requantize_int_np`, `dequantize_np`.
  - `requant_fast_i8(acc_f32[R,C], eff, margin, p2r, ip2r, bias_f, bias, m, left, right,
        zp_out, lo, hi, out_i8[R,C])`  exact per-channel requant of float32 GEMM
        accumulators (|acc| < 2^24): a float32 estimate decides almost every output, exact
        `mbqm` only near rounding ties; ~1.7x faster than the integer loop when right shifts
        are >= 7, on par below. Tables from `fast_requant_tables(m, shift, bias)`.

Numba caches a function by its own file only: after editing this file, callers' caches in
other files are stale. `int8_registry.load_int8_families` detects that (a digest of the
sources next to each family's cache) and flushes them.

  gemmlowp fixed-point helpers for transcendental reference kernels (SOFTMAX, LOG_SOFTMAX,
  L2_NORMALIZATION; raw int32 values of gemmlowp::FixedPoint<int32, IntegerBits>):

  - `exp_on_negative_values(a_raw, integer_bits) -> raw Q0.31`
  - `one_over_one_plus_x_for_x_in_0_1(a_raw) -> raw Q0.31` (argument Q0.31, in [0, 1))
  - `exp_on_interval_between_negative_one_quarter_and_0_excl(a_raw)`, `rounding_half_sum(a, b)`
  - `get_reciprocal(x_raw, x_integer_digits) -> (raw Q0.31, num_bits_over_unit)`
  - `rescale(raw, src_integer_bits, dst_integer_bits)`  gemmlowp::Rescale
  - `count_leading_zeros_u32(x)`

All integers are exact: the jitted code uses int64 intermediates and explicit truncating
division where C truncates.
"""

from __future__ import annotations

import math
import os

import numpy as np
from numba import njit as _numba_njit
from .kernels.simd import simd_empty, simd_max, simd_min


def njit(*args, **options):
    """`numba.njit` for qcc's kernels (every runtime module imports it from here): the same,
    except that the compiled code gets no C-callable wrapper (``no_cfunc_wrapper``), which
    Numba otherwise builds, optimizes and compiles for every function and argument types.
    qcc calls a jitted function from Python (its CPython wrapper) or from jitted code, never
    through a C pointer to it (its C-callable leaves are `cfunc`s: `simd.leaf_cfunc`), and
    the wrapper was ~7 % of a first run's compile work (0.5 s of ~7.5 s for
    hand_landmark_lite, one process, Zen 3). While instructions are emulated
    (`simd.SIMD_EMULATED`) nothing is cached on disk."""
    options.setdefault("no_cfunc_wrapper", True)
    if os.environ.get("QCC_SIMD_EMULATE", "").strip():  # `simd.SIMD_EMULATED` (read here:
        options["cache"] = False  # the --emit=numba artifact defines this module before simd)
    return _numba_njit(*args, **options)

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

# ---------------------------------------------------------------------------------------------
# Compile time (plain Python)
# ---------------------------------------------------------------------------------------------


def float32(x: float) -> float:
    """The Python float holding `x` rounded to float32 (how scales are stored in a .tflite)."""
    return float(np.float32(x))


def round_half_away(x):
    """std::round / TfLiteRound: round half away from zero (numpy arrays or scalars).

    Stays in the float width of `x` (a float32 input rounds as the C++ `TfLiteRound(float)`);
    exact for every input (no `floor(x + 0.5)` double rounding)."""
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    mag = np.abs(a)
    fl = np.floor(mag)
    r = np.where(mag - fl >= a.dtype.type(0.5), fl + a.dtype.type(1), fl)
    r = np.copysign(r, a).astype(a.dtype, copy=False)
    if np.ndim(x) == 0:
        return a.dtype.type(r) if isinstance(x, np.generic) else float(r)
    return r


def _round_half_away_double(x: float) -> float:
    """std::round on a double (exact: floor(|x| + 0.5) is exact for |x| < 2^52, and for larger
    magnitudes x is already an integer)."""
    if abs(x) >= 4503599627370496.0:  # 2^52
        return x
    # floor(|x| + 0.5) can be off when |x| + 0.5 rounds up (x = 0.49999999999999994);
    # std::round returns 0 there, so check the fractional part exactly.
    a = abs(x)
    f = math.floor(a)
    r = f + 1.0 if a - f >= 0.5 else f
    return math.copysign(r, x)


def quantize_multiplier(double_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double-rounding build): d -> (m:int32, shift).

    d == 0 -> (0, 0). Else d = q·2^shift with q in [0.5, 1) (frexp), m = round(q·2^31)
    (half away from zero); m == 2^31 -> m = 2^30, shift += 1; shift < -31 -> (0, 0).
    Positive shift = left shift. Negative d gives a negative m (as in C++)."""
    d = float(double_multiplier)
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = int(_round_half_away_double(q * float(1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(double_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplierSmallerThanOneExp: d in (0, 1) -> (m, shift <= 0)."""
    d = float(double_multiplier)
    assert 0.0 < d < 1.0, d
    m, shift = quantize_multiplier(d)
    assert shift <= 0, shift
    return m, shift


def quantize_multiplier_greater_than_one(double_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplierGreaterThanOne: d > 1 -> (m, shift >= 0)."""
    d = float(double_multiplier)
    assert d > 1.0, d
    m, shift = quantize_multiplier(d)
    assert shift >= 0, shift
    return m, shift


def quantize_multipliers(double_multipliers) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array of (double) multipliers -> (m int32[C], shift int32[C])."""
    ds = np.asarray(double_multipliers, dtype=np.float64).reshape(-1)
    ms = np.empty(ds.shape, np.int32)
    shs = np.empty(ds.shape, np.int32)
    for i, d in enumerate(ds.tolist()):
        ms[i], shs[i] = quantize_multiplier(d)
    return ms, shs


def split_shifts(shift) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) = (max(shift, 0), max(-shift, 0)) as int32 arrays (for `mbqm_fast`)."""
    sh = np.asarray(shift, np.int32)
    return np.maximum(sh, 0).astype(np.int32), np.maximum(-sh, 0).astype(np.int32)


def add_sub_params(
    s1: float, s2: float, s_out: float, left_shift: int = 20
) -> dict[str, int]:
    """The ADD / SUB int8 rescale scheme (LRT `add.cc` Prepare, `sub.cc` PrepareGeneralSubOp).

    All in double (the C++ declares `const double` and the float32 scales widen; the products
    with 2 and 2^left_shift are exact in any width):
      twice_max = 2·max(s1, s2); real_i = s_i / twice_max;
      real_out = twice_max / (2^left_shift · s_out)
      (m_i, shift_i) = QuantizeMultiplierSmallerThanOneExp(real_i)
      (m_out, shift_out) = QuantizeMultiplierSmallerThanOneExp(real_out)   (ADD)
                           QuantizeMultiplier(real_out) when real_out > 1   (SUB allows it)
    Per element: v_i = mbqm_smaller_than_one_exp((q_i − zp_i) << left_shift, m_i, shift_i);
    out = clamp(mbqm(v1 ± v2, m_out, shift_out) + zp_out, lo, hi).

    Returns dict(left_shift, m1, shift1, m2, shift2, m_out, shift_out)."""
    s1, s2, s_out = float32(s1), float32(s2), float32(s_out)
    twice_max = 2.0 * max(s1, s2)
    real1 = s1 / twice_max
    real2 = s2 / twice_max
    real_out = twice_max / (float(1 << left_shift) * s_out)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2)
    if real_out > 1.0:
        mo, sho = quantize_multiplier_greater_than_one(real_out)
    else:
        mo, sho = quantize_multiplier_smaller_than_one_exp(real_out)
    return dict(left_shift=left_shift, m1=m1, shift1=sh1, m2=m2, shift2=sh2, m_out=mo, shift_out=sho)


ACTIVATION_NONE, ACTIVATION_RELU, ACTIVATION_RELU_N1_TO_1, ACTIVATION_RELU6 = 0, 1, 2, 3


def activation_range_int8(
    activation: int | str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127
) -> tuple[int, int]:
    """CalculateActivationRangeQuantizedImpl: the clamp bounds of a fused activation.

    `activation`: 0/"NONE", 1/"RELU", 2/"RELU_N1_TO_1", 3/"RELU6" (case-insensitive strings
    also accept "none"/"relu"/"relu6"/"relu_n1_to_1"). q(f) = zp + (int)round_half_away(f / s)
    evaluated in float32."""
    if isinstance(activation, str):
        activation = {
            "NONE": 0, "": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3,
        }[activation.upper()]
    s = np.float32(scale)

    def q(f: float) -> int:
        return int(zero_point) + int(round_half_away(np.float32(f) / s))

    if activation == ACTIVATION_NONE:
        return qmin, qmax
    if activation == ACTIVATION_RELU:
        return max(qmin, q(0.0)), qmax
    if activation == ACTIVATION_RELU6:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == ACTIVATION_RELU_N1_TO_1:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unsupported fused activation {activation!r} for int8")


# ---------------------------------------------------------------------------------------------
# Run time: scalar primitives
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def wrap_int32(x):  # pragma: no cover - jitted
    """Two's complement wrap of an int64 into the int32 range (as C int32 overflow does)."""
    x = np.int64(x)
    return ((x + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)


@njit(cache=True)
def srdhm(a, b):  # pragma: no cover - jitted
    """gemmlowp SaturatingRoundingDoublingHighMul(int32 a, int32 b) -> int32 (as int64).

    a == b == INT32_MIN -> INT32_MAX; else (a·b + nudge) / 2^31 with C truncating division,
    nudge = 2^30 if a·b >= 0 else 1 − 2^30."""
    a = np.int64(a)
    b = np.int64(b)
    if a == b and a == np.int64(-2147483648):
        return np.int64(2147483647)
    ab = a * b
    if ab >= 0:
        return (ab + np.int64(1073741824)) >> 31
    num = ab + np.int64(1 - 1073741824)
    # truncate toward zero: num < 0 here
    return -((-num) >> 31)


@njit(cache=True)
def rdbpot(x, exponent):  # pragma: no cover - jitted
    """gemmlowp RoundingDivideByPOT(int32 x, 0 <= exponent <= 31): x / 2^exponent rounded
    half away from zero."""
    x = np.int64(x)
    e = np.int64(exponent)
    mask = (np.int64(1) << e) - np.int64(1)
    remainder = x & mask
    threshold = (mask >> 1) + (np.int64(1) if x < 0 else np.int64(0))
    return (x >> e) + (np.int64(1) if remainder > threshold else np.int64(0))


@njit(cache=True)
def mbqm(x, m, shift):  # pragma: no cover - jitted
    """tflite::MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift), reference version:
    RDBPOT(SRDHM(x · 2^max(shift,0), m), max(−shift, 0)); x·2^left wraps like C int32."""
    shift = np.int64(shift)
    left = shift if shift > 0 else np.int64(0)
    right = np.int64(0) if shift > 0 else -shift
    v = wrap_int32(np.int64(x) * (np.int64(1) << left))
    return rdbpot(srdhm(v, m), right)


@njit(cache=True)
def mbqm64(x, m, shift):  # pragma: no cover - jitted
    """tflite::MultiplyByQuantizedMultiplier(int64 x, int32 m, int shift), the overload the
    16x8 convolutions use: the multiplier rounded to 16 bits, one rounding shift; the result
    truncated to int32 as the C++ does."""
    x = np.int64(x)
    if m < 0x7FFF0000:
        reduced = (np.int64(m) + np.int64(32768)) >> np.int64(16)
    else:
        reduced = np.int64(0x7FFF)
    total = np.int64(15) - np.int64(shift)
    v = (x * reduced + (np.int64(1) << (total - np.int64(1)))) >> total
    return wrap_int32(v)


@njit(cache=True)
def mbqm_fast(x, m, left, right):  # pragma: no cover - jitted
    """Branch-free `mbqm` for vectorized loops: m >= 0 (every multiplier derived from
    positive scales), left = max(shift, 0), right = max(-shift, 0) precomputed. Equal to
    `mbqm(x, m, left - right)` for every int32 x (the INT32_MIN·INT32_MIN saturation of SRDHM
    cannot occur with m >= 0)."""
    v = np.int64(x) << np.int64(left)
    v = ((v + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
    ab = v * np.int64(m)
    # nudge = 2^30 if ab >= 0 else 1 - 2^30, as (ab >> 63) is 0 or -1
    num = ab + np.int64(1073741824) + ((ab >> np.int64(63)) & np.int64(1 - 2147483648))
    q = (num + ((num >> np.int64(63)) & np.int64(2147483647))) >> np.int64(31)
    mask = (np.int64(1) << np.int64(right)) - np.int64(1)
    rem = q & mask
    thr = (mask >> np.int64(1)) - (q >> np.int64(63))
    return (q >> np.int64(right)) + ((thr - rem) >> np.int64(63)) * np.int64(-1)


@njit(cache=True)
def mbqm_smaller_than_one_exp(x, m, shift):  # pragma: no cover - jitted
    """MultiplyByQuantizedMultiplierSmallerThanOneExp: RDBPOT(SRDHM(x, m), −shift), shift <= 0."""
    return rdbpot(srdhm(x, m), -np.int64(shift))


@njit(cache=True)
def mbqm_greater_than_one(x, m, shift):  # pragma: no cover - jitted
    """MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x · 2^shift, m), shift >= 0."""
    return srdhm(wrap_int32(np.int64(x) * (np.int64(1) << np.int64(shift))), m)


@njit(cache=True)
def saturating_rounding_multiply_by_pot(x, exponent):  # pragma: no cover - jitted
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>(int32 x): exponent > 0 saturating
    left shift; exponent < 0 RoundingDivideByPOT(x, −exponent); 0 -> x."""
    x = np.int64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    mn = np.int64(-2147483648)
    mx = np.int64(2147483647)
    threshold = (np.int64(1) << (np.int64(31) - exponent)) - np.int64(1)
    if x > threshold:
        return mx
    if x < -threshold:
        return mn
    return x << exponent


@njit(cache=True)
def round_half_away_f32(x):  # pragma: no cover - jitted
    """std::round on a float scalar, exact (stays in the input's float width)."""
    mag = abs(x)
    fl = np.floor(mag)
    r = fl + 1 if mag - fl >= 0.5 else fl
    return r if x >= 0 else -r


# ---------------------------------------------------------------------------------------------
# Run time: array variants
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def mbqm_array(x, m, shift):  # pragma: no cover - jitted
    """mbqm elementwise over an integer array of any shape, one multiplier -> int32 array."""
    flat = x.ravel()
    out = simd_empty(flat.size, np.int32)
    for i in range(flat.size):
        out[i] = mbqm(flat[i], m, shift)
    return out.reshape(x.shape)


@njit(cache=True, nogil=True)
def mbqm_per_channel(acc, m, shift):  # pragma: no cover - jitted
    """out[r, c] = mbqm(acc[r, c], m[c], shift[c]) for a 2-D int array -> int32 [R, C]."""
    rows, cols = acc.shape
    out = simd_empty((rows, cols), np.int32)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = mbqm(np.int64(acc[r, c]), m[c], shift[c])
    return out


@njit(cache=True, nogil=True)
def requantize_per_channel_i8(acc, m, shift, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(mbqm(acc[r, c], m[c], shift[c]) + zp_out, lo, hi) as int8.

    acc: 2-D int32/int64, or float64 holding exact integers (a BLAS accumulator); it is
    wrapped to int32 like the C++ int32 accumulator. out: int8 [R, C] (may be a view)."""
    rows, cols = acc.shape
    for r in range(rows):
        for c in range(cols):
            a = wrap_int32(np.int64(acc[r, c]))
            v = mbqm(a, m[c], shift[c]) + zp_out
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[r, c] = v


@njit(cache=True, nogil=True)
def requantize_float_per_channel_i8(acc, eff, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """FULLY_CONNECTED reference requant (float): out[r, c] =
    clamp(round_half_away(double(acc[r, c]) · eff[c]) + zp_out, lo, hi) as int8.
    The C++ casts the rounded double to int32 before adding zp; clamping the double first
    is equivalent for any in-range value and avoids UB for huge ones."""
    rows, cols = acc.shape
    for r in range(rows):
        for c in range(cols):
            a = np.float64(wrap_int32(np.int64(acc[r, c])))
            p = a * eff[c]
            if p >= 0:
                q = np.floor(p + 0.5)
                if q - p > 0.5:  # guard x.49999999999999994 + 0.5 rounding up
                    q -= 1.0
            else:
                q = -np.floor(-p + 0.5)
                if (-q) - (-p) > 0.5:
                    q += 1.0
            if q > 1e9:
                q = 1e9
            elif q < -1e9:
                q = -1e9
            v = np.int64(q) + zp_out
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[r, c] = v


@njit(inline="always")
def quantize_value(f, zp, lo, hi):  # pragma: no cover - jitted
    """One AffineQuantize output from the float32 quotient f = x / scale:
    clamp(round_half_away(f) + zp, lo, hi), the rounding in float32 as the reference's
    std::round; NaN gives lo (the x86 conversion of NaN is INT_MIN before the clamp).
    Branch-free, vectorizes on any target: round half away from zero of |f| (floor of
    |f| + 1/2, less 1 when that sum rounded up in float32: r − 1/2 > |f|, exact, where the
    test r − |f| > 1/2 misses |f| = 1/2 − 2^−25, whose r − |f| rounds to 1/2), f's sign back, then the clamp in
    float32 to [lo − zp, hi − zp] (integers: the same as clamping r + zp; NaN fails the
    first test), zp added in float32 (exact) and one int32 conversion: no 64-bit lanes."""
    half = np.float32(0.5)
    a = abs(f)
    r = np.floor(a + half)
    r = r - np.float32(1.0) if r - half > a else r  # exact test (r − 1/2 is a float32)
    r = np.float32(np.copysign(r, f))
    low = np.float32(lo - zp)
    high = np.float32(hi - zp)
    r = r if r > low else low
    r = r if r < high else high
    return np.int32(r + np.float32(zp))  # exact: an integer in [lo, hi]


@njit(cache=True, nogil=True, inline="always")
def quantize_f32_int(x, scale, zp, lo, hi, out):  # pragma: no cover - jitted
    """QUANTIZE f32 -> an integer type with storage range [lo, hi] (int8: -128, 127; int16:
    -32768, 32767), reference AffineQuantize: q = clamp(round_half_away(x / scale) + zp) with
    the divide and the rounding in float32 (`quantize_value`). x: a flat (1-D) f32 array,
    scale: float32 value, out: a flat integer array of the same size. (The callers flatten:
    `ndarray.ravel` in jitted code compiles for ~0.1 s per signature.)"""
    s = np.float32(scale)
    for i in range(x.size):
        out[i] = quantize_value(np.float32(x[i]) / s, zp, lo, hi)
    return out


@njit(cache=True, nogil=True)
def quantize_f32_i8(x, scale, zp, out):  # pragma: no cover - jitted
    """QUANTIZE f32 -> i8: `quantize_f32_int` with the int8 range."""
    return quantize_f32_int(x, scale, zp, -128, 127, out)


@njit(cache=True, nogil=True, inline="always")
def requantize_int(x, m, shift, zp_in, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """QUANTIZE between integer types (reference Requantize): out = clamp(mbqm(q − zp_in, m,
    shift) + zp_out, lo, hi) with (m, shift) = QuantizeMultiplier(double(s_in) /
    double(s_out)) and [lo, hi] the output's storage range; x, out flat (1-D). m >= 0 (a
    positive scale ratio: callers pass |m| and apply the sign after), so the branch-free
    `mbqm_fast` is mbqm, and this compiles no more than it (the kernels share its code;
    `mbqm` brings three more functions to compile)."""
    left = np.int64(simd_max(shift, 0))
    right = np.int64(simd_max(-shift, 0))
    for i in range(x.size):
        v = mbqm_fast(np.int64(x[i]) - zp_in, m, left, right) + zp_out
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v
    return out


@njit(cache=True, nogil=True)
def requantize_i8(x, m, shift, zp_in, zp_out, out):  # pragma: no cover - jitted
    """QUANTIZE i8 -> i8: `requantize_int` with the int8 range (inlined, `inline="always"`:
    one compile, not two; `quantize_f32_i8` inlines `quantize_f32_int` likewise)."""
    return requantize_int(x, m, shift, zp_in, zp_out, -128, 127, out)


@njit(cache=True, nogil=True)
def dequantize_i8(x, scale, zp, out):  # pragma: no cover - jitted
    """DEQUANTIZE i8 -> f32 reference: float(double(scale) · (q − zp)). `scale` is the float32
    scale widened to double; x, out flat (1-D)."""
    s = np.float64(scale)
    for i in range(x.size):
        out[i] = np.float32(s * np.float64(np.int64(x[i]) - zp))
    return out


# ---------------------------------------------------------------------------------------------
# Run time: NumPy forms (nothing to compile; what a cold first run runs while a step's
# kernels compile in a helper process, `plan._Units.deferred`): the same integer and float
# operations as the jitted code above, elementwise over arrays, so the same bits.


def mbqm_fast_np(x, m, left, right) -> np.ndarray:
    """`mbqm_fast` over an integer array (its own Python function: every operation in it is
    an int64 NumPy operation, the product of an int32 value and m < 2^31 fits)."""
    return mbqm_fast.py_func(np.asarray(x, np.int64), np.int64(m), np.int64(left),
                             np.int64(right))


def mbqm_np(x, m, shift) -> np.ndarray:
    """`mbqm` over an integer array for a multiplier m >= 0 (`mbqm_fast_np` with the shift
    split into its left and right parts)."""
    return mbqm_fast_np(x, m, max(shift, 0), max(-shift, 0))


def wrap_int32_np(x) -> np.ndarray:
    """`wrap_int32` over an integer array (its own Python function)."""
    return wrap_int32.py_func(np.asarray(x, np.int64))


def quantize_f32_int_np(x, scale, zp, lo, hi) -> np.ndarray:
    """`quantize_f32_int` on an array (any shape) -> int32 array: the float32 divide,
    `quantize_value`'s rounding, clamp and zero point, in the same order (NaN gives lo)."""
    f = np.asarray(x, np.float32) / np.float32(scale)
    half = np.float32(0.5)
    a = np.abs(f)
    r = np.floor(a + half)
    r = np.where(r - half > a, r - np.float32(1.0), r)
    r = np.copysign(r, f)
    low = np.float32(lo - zp)
    high = np.float32(hi - zp)
    r = np.where(r > low, r, low)
    r = np.where(r < high, r, high)
    return (r + np.float32(zp)).astype(np.int32)


def requantize_int_np(x, m, shift, zp_in, zp_out, lo, hi) -> np.ndarray:
    """`requantize_int` on an array (any shape) -> int64 array (m >= 0)."""
    return np.clip(mbqm_np(np.asarray(x, np.int64) - zp_in, m, shift) + zp_out, lo, hi)


def dequantize_np(x, scale, zp) -> np.ndarray:
    """`dequantize_i8` on an array (any shape) -> float32: float(double(scale) · (q − zp))."""
    return (np.float64(scale) * (np.asarray(x, np.int64) - zp).astype(np.float64)).astype(
        np.float32)


# ---------------------------------------------------------------------------------------------
# Fast exact requantization: float32 estimate + exact fix-up near rounding ties


def fast_requant_tables(m, shift, bias, acc_bound=None) -> dict[str, np.ndarray]:
    """Compile-time tables for `requant_fast_i8` (one entry per channel).

    Exact result: T = MBQM(x, m, shift) = RDBPOT(s, right), s = SRDHM(x, m) =
    floor(u + 1/2) with u = x·m/2^31 (shift <= 0; right = −shift). With z = u·2^−right (the
    exact real product x·m·2^(shift−31)) and a float32 estimate y of z, two cheap tests each
    prove the result for most outputs:
      A. z is farther than 2^−(right+1) from every half-integer: s/2^right and z then round
         to the same integer, so T = round(z) = floor(y + 1/2);
      B. u = z·2^right is not near a half-integer: then s = floor(u_est + 1/2) is exact and
         T = round_half_away(s/2^right), computed exactly in float32.
    Only outputs where both tests fail (rare: A fails with probability ≈ 2^−right, B with
    ≈ 2^right·1e−6·|z|) are recomputed with integer `mbqm`. Channels the estimate cannot
    serve (|bias| ≥ 2^24, negative m) are always recomputed.

    A left shift (shift > 0: the channel's real multiplier is 1 or more) makes MBQM
    SRDHM(x·2^left, m) with right = 0: one rounding of z = x·m·2^(shift−31), which the same
    estimate decides like any right = 0 channel, provided x·2^left does not wrap in int32.
    `acc_bound` (per channel, or one number) bounds the caller's |acc|: a left-shifted
    channel takes the estimate when (acc_bound + |bias|)·2^left < 2^31, and is always
    recomputed otherwise, or when no bound is given.

    The float32 estimate y = fl(fl(acc + bias_f)·eff) has relative error ≤ 3·2^−24 when acc
    and bias are exact float32 integers; the kernel allows 4e−7·|y| + 1e−7 (scaled by 2^right
    for test B).

    Returns eff (f32: m·2^(shift−31) rounded to f32), margin (f32: 2^−(right+1), or 2 for
    always-exact channels), p2r (f32: 2^right, NaN for always-exact channels), ip2r (f32:
    2^−right), bias_f (f32), bias, m, left, right (int32)."""
    m = np.asarray(m, np.int64).reshape(-1)
    sh = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), m.shape)
    b = np.broadcast_to(np.asarray(bias, np.int64).reshape(-1), m.shape)
    left = np.maximum(sh, 0)
    right = np.maximum(-sh, 0)
    eff = (m.astype(np.float64) * np.exp2(sh.astype(np.float64) - 31.0)).astype(np.float32)
    margin = np.exp2(-(right.astype(np.float64) + 1.0))
    p2r = np.exp2(right.astype(np.float64))
    wraps = left > 0
    if acc_bound is not None:
        reach = np.broadcast_to(np.asarray(acc_bound, np.int64).reshape(-1), m.shape) + np.abs(b)
        wraps = wraps & ((reach << np.minimum(left, 32)) >= (1 << 31))
    exact_only = wraps | (np.abs(b) >= (1 << 24)) | (m < 0)
    margin = np.where(exact_only, 2.0, margin)
    p2r = np.where(exact_only, np.nan, p2r)
    return {
        "eff": np.ascontiguousarray(eff),
        "margin": np.ascontiguousarray(margin.astype(np.float32)),
        "p2r": np.ascontiguousarray(p2r.astype(np.float32)),
        "ip2r": np.ascontiguousarray(np.exp2(-right.astype(np.float64)).astype(np.float32)),
        "bias_f": np.ascontiguousarray(b.astype(np.float32)),
        "bias": np.ascontiguousarray(b.astype(np.int32)),
        "m": np.ascontiguousarray(m.astype(np.int32)),
        "left": np.ascontiguousarray(left.astype(np.int32)),
        "right": np.ascontiguousarray(right.astype(np.int32)),
    }


@njit(cache=True, nogil=True)
def requant_fast_i8(acc, t_eff, t_margin, t_p2r, t_ip2r, bias_f, bias, m, left, right, zp_out, lo, hi, out):  # pragma: no cover
    """out[r, c] = clamp(MBQM(int32(acc[r, c] + bias[c]), m[c], shift[c]) + zp_out, lo, hi),
    exactly, for a C-contiguous 2-D float32 `acc` [R, C] holding exact integers below 2^24
    in magnitude (a float GEMM's accumulator), per-channel tables from
    `fast_requant_tables` (t_eff, t_margin, t_p2r, t_ip2r, bias_f, bias, m, left, right)
    and a C-contiguous int8 `out` [R, C]. Pass 1 is a branch-free float32 loop (16 lanes)
    that decides almost every output (see `fast_requant_tables`) and flags the rest; pass 2
    recomputes the flagged ones with `mbqm`."""
    rows, c = acc.shape
    n = rows * c
    a1 = acc.reshape(-1)
    o1 = out.reshape(-1)
    flags = simd_empty(((n + 7) // 8) * 8, np.uint8)
    half = np.float32(0.5)
    one = np.float32(1.0)
    rel = np.float32(4e-7)
    tiny = np.float32(1e-7)
    zf = np.float32(zp_out)
    lof = np.float32(lo)
    hif = np.float32(hi)
    # Expected share of outputs test A leaves undecided: mean of 2·margin = 2^-right.
    undecided = 0.0
    for k in range(c):
        undecided += simd_min(2.0 * t_margin[k], 1.0)
    if undecided < 0.01 * c:
        # test A alone decides all but ≈ 2^-right of the outputs: skip test B
        for r in range(rows):
            base = np.uint64(r * c)
            for k in range(c):
                i = base + np.uint64(k)
                y = (a1[i] + bias_f[k]) * t_eff[k]
                t = y + half
                fa = np.floor(t)
                fr = t - fa
                tol = t_margin[k] + abs(y) * rel + tiny
                flags[i] = (fr <= tol) | (fr >= one - tol)
                o1[i] = np.int32(simd_min(simd_max(fa + zf, lof), hif))
    else:
        _requant_fast_ab(a1, rows, c, t_eff, t_margin, t_p2r, t_ip2r, bias_f, zf, lof, hif, flags, o1)
    for i in range(n, flags.size):
        flags[i] = 0
    words = flags.view(np.uint64)
    for w in range(words.size):
        if words[w] != 0:
            for i in range(w * 8, simd_min(w * 8 + 8, n)):
                if flags[i]:
                    k = i % c
                    v = mbqm_fast(np.int64(a1[i]) + bias[k], m[k], left[k], right[k]) + zp_out
                    o1[i] = simd_min(simd_max(v, lo), hi)


@njit(cache=True, nogil=True)
def requant_fast2_i8(acc, t_eff, t_margin, t_p2r, t_ip2r, bias_f, bias, m, left, right, zp_out, lo, hi, out):  # pragma: no cover
    """`requant_fast_i8` with a single test (same arguments, same exact result): for
    right = −shift >= 1 the double rounding RDBPOT(SRDHM(x, m), right) equals
    sign(z)·floor(|z| + 1/2 + 2^−(right+1)) (z = x·m·2^(shift−31) exactly) except when
    |z| + 1/2 + 2^−(right+1) is exactly an integer (the tie of the second rounding, decided
    by the sign: SRDHM rounds |u| half down for negative products, half up for positive);
    for right = 0 it is sign(z)·floor(|z| + 1/2) off the ties. So a float32 estimate y of z
    decides the output unless |y| + off lies within the estimate's error (4e−7·|y| + 1e−7,
    see `fast_requant_tables`) of an integer: ~1e−4 of the outputs, recomputed with integer
    `mbqm` (always-exact channels, margin >= 1, are always recomputed). Rows are handled by
    a branch-free float32 loop that also counts each row's flagged outputs, so the fix-up
    only visits (and re-tests) rows that have some."""
    rows, c = acc.shape
    a1 = acc.reshape(-1)
    o1 = out.reshape(-1)
    off = simd_empty(c, np.float32)
    tol0 = simd_empty(c, np.float32)
    for k in range(c):
        mg = t_margin[k]
        if mg >= 1.0:  # always exact: force the fix-up
            off[k] = np.float32(0.5)
            tol0[k] = np.float32(2.0)
        elif mg >= 0.5:  # right == 0: a single rounding
            off[k] = np.float32(0.5)
            tol0[k] = np.float32(0.0)
        else:
            off[k] = np.float32(0.5) + mg
            tol0[k] = np.float32(0.0)
    one = np.float32(1.0)
    rel = np.float32(4e-7)
    tiny = np.float32(1e-7)
    zf = np.float32(zp_out)
    lof = np.float32(lo)
    hif = np.float32(hi)
    cnt = simd_empty(rows, np.int32)
    for r in range(rows):
        base = np.uint64(r * c)  # unsigned indices: no wraparound checks, so this vectorizes
        n = np.int32(0)
        for k in range(c):
            i = base + np.uint64(k)
            y = (a1[i] + bias_f[k]) * t_eff[k]
            ay = abs(y)
            t = ay + off[k]
            fa = np.floor(t)
            fr = t - fa
            tol = tol0[k] + ay * rel + tiny
            f = (fr <= tol) | (fr >= one - tol)
            n += np.int32(f)
            q = fa if y >= 0 else -fa
            o1[i] = np.int32(simd_min(simd_max(q + zf, lof), hif))
        cnt[r] = n
    for r in range(rows):
        if cnt[r] != 0:
            for k in range(c):
                i = r * c + k
                y = (a1[i] + bias_f[k]) * t_eff[k]  # the same test again
                ay = abs(y)
                t = ay + off[k]
                fr = t - np.floor(t)
                tol = tol0[k] + ay * rel + tiny
                if (fr <= tol) | (fr >= one - tol):
                    v = mbqm_fast(np.int64(a1[i]) + bias[k], m[k], left[k], right[k]) + zp_out
                    o1[i] = simd_min(simd_max(v, lo), hi)


@njit(cache=True, nogil=True)
def _requant_fast_ab(a1, rows, c, t_eff, t_margin, t_p2r, t_ip2r, bias_f, zf, lof, hif, flags, o1):  # pragma: no cover
    """Pass 1 of `requant_fast_i8` with both tests (channels with small right shifts)."""
    half = np.float32(0.5)
    one = np.float32(1.0)
    rel = np.float32(4e-7)
    tiny = np.float32(1e-7)
    for r in range(rows):
        base = np.uint64(r * c)  # unsigned indices: no wraparound checks, so this vectorizes
        for k in range(c):
            i = base + np.uint64(k)
            y = (a1[i] + bias_f[k]) * t_eff[k]
            ay = abs(y)
            # test A: z is not near a half-integer -> round(y)
            t = y + half
            fa = np.floor(t)
            fr = t - fa
            tol = t_margin[k] + ay * rel + tiny
            ok_a = (fr > tol) & (fr < one - tol)
            # test B: u = z * 2^right is not near a half-integer -> s exact, then RDBPOT(s)
            u = y * t_p2r[k]
            tu = u + half
            su = np.floor(tu)
            fru = tu - su
            tolb = abs(u) * rel + tiny
            ok_b = (fru > tolb) & (fru < one - tolb)
            v = su * t_ip2r[k]
            av = abs(v)
            rb = np.floor(av + half)
            qb = rb if v >= 0 else -rb
            q = fa if ok_a else qb
            flags[i] = not (ok_a | ok_b)
            o1[i] = np.int32(simd_min(simd_max(q + zf, lof), hif))


# ---------------------------------------------------------------------------------------------
# gemmlowp fixed-point transcendental helpers (raw int32 values)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _wadd(a, b):  # pragma: no cover - jitted
    """gemmlowp Add on int32 raws: plain (wrapping) addition."""
    return wrap_int32(np.int64(a) + np.int64(b))


@njit(cache=True)
def count_leading_zeros_u32(x):  # pragma: no cover - jitted
    """CountLeadingZeros of the uint32 bit pattern of `x` (32 for 0)."""
    x = np.int64(x) & np.int64(0xFFFFFFFF)
    if x == 0:
        return 32
    n = 0
    while (x & np.int64(0x80000000)) == 0:
        x <<= 1
        n += 1
    return n


@njit(cache=True)
def rescale(raw, src_integer_bits, dst_integer_bits):  # pragma: no cover - jitted
    """gemmlowp::Rescale<dst>(FixedPoint<src>): SaturatingRoundingMultiplyByPOT(src − dst)."""
    return saturating_rounding_multiply_by_pot(raw, src_integer_bits - dst_integer_bits)


@njit(cache=True)
def exp_on_interval_between_negative_one_quarter_and_0_excl(a):  # pragma: no cover - jitted
    """gemmlowp: exp(a) for a in [-1/4, 0), raw Q0.31 in and out."""
    constant_term = np.int64(1895147668)
    constant_1_over_3 = np.int64(715827883)
    x = _wadd(a, np.int64(1) << 28)  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    t = saturating_rounding_multiply_by_pot(
        _wadd(srdhm(_wadd(x4_over_4, x3), constant_1_over_3), x2), -1
    )
    return _wadd(constant_term, srdhm(constant_term, _wadd(x, t)))


@njit(cache=True)
def exp_on_negative_values(a, integer_bits):  # pragma: no cover - jitted
    """gemmlowp exp_on_negative_values(FixedPoint<int32, integer_bits> a) -> raw Q0.31."""
    fractional_bits = 31 - integer_bits
    k_one_quarter = np.int64(1) << (fractional_bits - 2)
    mask = k_one_quarter - 1
    a = np.int64(a)
    a_mod_quarter_minus_one_quarter = _wadd(a & mask, -k_one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = _wadd(a_mod_quarter_minus_one_quarter, -a)
    multipliers = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)
    for i in range(7):
        exponent = i - 2  # -2 .. +4
        if integer_bits > exponent:
            shift_amount = fractional_bits + exponent
            if (remainder & (np.int64(1) << shift_amount)) != 0:
                result = srdhm(result, np.int64(multipliers[i]))
    if integer_bits > 5:
        clamp = -(np.int64(1) << (36 - integer_bits))
        if a < clamp:
            result = np.int64(0)
    if a == 0:
        result = np.int64(2147483647)
    return result


@njit(cache=True)
def rounding_half_sum(a, b):  # pragma: no cover - jitted
    """gemmlowp RoundingHalfSum(int32, int32): (a + b ± 1) / 2, C truncation."""
    s = np.int64(a) + np.int64(b)
    if s >= 0:
        return (s + 1) >> 1
    return -((-(s - 1)) >> 1)


@njit(cache=True)
def one_over_one_plus_x_for_x_in_0_1(a):  # pragma: no cover - jitted
    """gemmlowp one_over_one_plus_x_for_x_in_0_1(FixedPoint<int32, 0> a) -> raw Q0.31
    (Newton-Raphson in Q2.29, three iterations)."""
    half_denominator = rounding_half_sum(a, np.int64(2147483647))
    constant_48_over_17 = np.int64(1515870810)
    constant_neg_32_over_17 = np.int64(-1010580540)
    x = _wadd(constant_48_over_17, srdhm(half_denominator, constant_neg_32_over_17))
    one_q2 = np.int64(1) << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = _wadd(one_q2, -half_denominator_times_x)
        x = _wadd(x, saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


@njit(cache=True)
def get_reciprocal(x, x_integer_digits):  # pragma: no cover - jitted
    """tflite::GetReciprocal(int32 x, int x_integer_digits) -> (raw Q0.31 shifted_scale,
    num_bits_over_unit)."""
    headroom_plus_one = count_leading_zeros_u32(np.int64(x))
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(
        ((np.int64(x) << headroom_plus_one) & np.int64(0xFFFFFFFF)) - (np.int64(1) << 31)
    )
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ---------------------------------------------------------------------------------------------
# Float-estimate parameters of a single MBQM (element-wise kernels)


def fast_mbqm_params(m: int, shift: int, max_abs_x: int) -> tuple[float, float, bool]:
    """(eff, off, ok) for deciding T = MBQM(x, m, shift) from a float estimate y of the exact
    real z = x·m·2^(shift−31): |T| = floor(|z| + off), sign(T) = sign(z), except when
    |z| + off is an integer (a tie), with off = 1/2 + 2^−(right+1) for right = −shift >= 1 and
    1/2 otherwise (see `requant_fast2_i8`). `eff` is m·2^(shift−31) (as float64; round it to
    float32 where used). `ok` is False when the estimate cannot serve (m < 0, or x·2^left
    could wrap int32 for |x| <= max_abs_x): use the integer path then."""
    left = max(shift, 0)
    right = max(-shift, 0)
    ok = m >= 0 and (max_abs_x << left) < (1 << 31)
    eff = float(m) * 2.0 ** (shift - 31)
    off = 0.5 + 2.0 ** -(right + 1) if right >= 1 else 0.5
    return eff, off, bool(ok)
