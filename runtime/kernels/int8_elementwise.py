"""int8 element-wise kernels: ADD, SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, PRELU,
LEAKY_RELU.

Each transcribes the kernel LiteRT's reference resolver (`BUILTIN_REF`) runs for int8
tensors, bit for bit (TFLITE_INT8_SPEC.md §5; LRT `tflite/kernels/add.cc`, `sub.cc`,
`mul.cc`, `squared_difference.cc`, `activations.cc` and `internal/reference/integer_ops/add.h`, `mul.h`,
`reference/sub.h`, `prelu.h`, `leaky_relu.h`):

* ADD / SUB (`add_i8`, `sub_i8`): both inputs are brought to a common scale with 20 bits
  of headroom, `v_i = mbqm((q_i - zp_i) << 20, m_i, shift_i)`, then
  `out = clamp(mbqm(v1 ± v2, m_out, shift_out) + zp_out, lo, hi)`; the multipliers come from
  `fixedpoint.add_sub_params` (double precision, as the C++ Prepare).
* MUL (`mul_i8`): `out = clamp(zp_out + mbqm((q1 - zp1)(q2 - zp2), m, shift), lo, hi)` with
  `(m, shift) = QuantizeMultiplier(s1 * s2 / s_out)`, the product evaluated in float32.
* SQUARED_DIFFERENCE (`squared_difference_i8`), `squared_difference.cc`: like ADD/SUB
  with a left shift of 7, `v_i = mbqm((q_i - zp_i) << 7, m_i, shift_i)`, then
  `out = clamp(mbqm((v1 - v2)^2, m_out, shift_out) + zp_out)`; twice_max =
  float32(2·max(s1, s2)), real_i = s_i / twice_max, real_out = twice_max² /
  float32(2^14·s_out), in double, each through QuantizeMultiplierSmallerThanOneExp.
* MAXIMUM / MINIMUM (`maximum_i8`, `minimum_i8`): max / min of the stored values (the
  operands share the output's scale and zero point; TFLite does not rescale either).
* PRELU (`prelu_i8`): two multipliers, `s_in / s_out` for x >= zp_in and
  `s_in * s_alpha / s_out` (on `(q - zp_in)(alpha - zp_alpha)`) below it, both float32.
* LEAKY_RELU (`leaky_relu_i8`): two multipliers, `s_in / s_out` and `s_in * alpha / s_out`
  (float32); a negative alpha uses |m| and negates the product, as the reference does.

Fused activations (ADD/SUB/MUL) clamp to `CalculateActivationRangeQuantized`'s bounds.
Broadcasting follows numpy (which is what TFLite's Broadcast*Slow loops compute).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _ew_ir
from numba import types
from numba.extending import intrinsic
from qcc.dialects import nn

from ..fixedpoint import (
    add_sub_params,
    fast_mbqm_params,
    mbqm,
    mbqm_fast,
    mbqm_np,
    mbqm_smaller_than_one_exp,
    njit,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
    wrap_int32,
    wrap_int32_np,
)
from .int8_lowering import activation_bounds, constant_array, int8_params, shape
from .int8_registry import DirectCall, channel_rows, fixed_call, runner
from .registry import int8_lowering
from .simd import simd_array, simd_as64, simd_empty, simd_max, simd_min, simd_splat, simd_u8_ptr

# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


def _ew_broadcast_flat(x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """`x` broadcast to `out_shape`, flattened and contiguous (a copy only if needed)."""
    x = np.asarray(x)
    if x.shape != tuple(out_shape):
        x = np.broadcast_to(x.reshape((1,) * (len(out_shape) - x.ndim) + x.shape), out_shape)
    return np.ascontiguousarray(x).reshape(-1)


@njit(cache=True, nogil=True)
def _ew_add_sub_loop(a, b, sign, zp1, zp2, left_shift, m1, sh1, m2, sh2, mo, sho, zpo, lo, hi, out):  # pragma: no cover - jitted
    """ADD (sign = 1) / SUB (sign = -1), reference integer_ops::AddElementwise /
    reference_ops::SubElementwise."""
    for i in range(out.size):
        v1 = mbqm((np.int64(a[i]) - zp1) << left_shift, m1, sh1)
        v2 = mbqm((np.int64(b[i]) - zp2) << left_shift, m2, sh2)
        raw = v1 + v2 if sign > 0 else v1 - v2
        v = mbqm(raw, mo, sho) + zpo
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _ew_mul_loop(a, b, zp1, zp2, m, sh, zpo, lo, hi, out):  # pragma: no cover - jitted
    """MUL, reference integer_ops::MulElementwise, int8 or int16 (the product is the
    reference's int32, which only int16 operands can wrap)."""
    for i in range(out.size):
        p = wrap_int32((np.int64(a[i]) - zp1) * (np.int64(b[i]) - zp2))
        v = mbqm(p, m, sh) + zpo
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _ew_squared_difference_loop(a, b, zp1, zp2, m1, sh1, m2, sh2, mo, sho, zpo, out):  # pragma: no cover - jitted
    """squared_difference.cc SquaredDifference(int8_t, int8_t, ArithmeticParams)."""
    for i in range(out.size):
        v1 = mbqm_smaller_than_one_exp((np.int64(a[i]) - zp1) << 7, m1, sh1)
        v2 = mbqm_smaller_than_one_exp((np.int64(b[i]) - zp2) << 7, m2, sh2)
        d = v1 - v2
        v = mbqm_smaller_than_one_exp(d * d, mo, sho) + zpo
        if v < -128:
            v = -128
        elif v > 127:
            v = 127
        out[i] = v


@njit(cache=True, nogil=True)
def _ew_max_min_loop(a, b, is_max, out):  # pragma: no cover - jitted
    for i in range(out.size):
        x = a[i]
        y = b[i]
        if is_max:
            out[i] = x if x > y else y
        else:
            out[i] = x if x < y else y


@njit(cache=True, nogil=True)
def _ew_prelu_loop(x, alpha, zp_in, zp_alpha, m1, sh1, m2, sh2, zpo, lo, hi, out):  # pragma: no cover - jitted
    """PRELU, reference_ops::Prelu / BroadcastPrelu4DSlow (alpha already broadcast), output
    clamped to the storage range [lo, hi] (int8 or int16)."""
    for i in range(out.size):
        v = np.int64(x[i]) - zp_in
        if v >= 0:
            r = mbqm(v, m1, sh1)
        else:
            r = mbqm(v * (np.int64(alpha[i]) - zp_alpha), m2, sh2)
        r += zpo
        if r < lo:
            r = lo
        elif r > hi:
            r = hi
        out[i] = r


@njit(cache=True, nogil=True)
def _ew_leaky_relu_loop(x, zp_in, m_id, sh_id, m_alpha, sh_alpha, negate, zpo, out):  # pragma: no cover - jitted
    """LEAKY_RELU, reference_ops::QuantizeLeakyRelu (m_alpha is |multiplier|; `negate` when
    alpha < 0)."""
    for i in range(out.size):
        v = np.int64(x[i]) - zp_in
        if v >= 0:
            r = zpo + mbqm(v, m_id, sh_id)
        else:
            s = mbqm(v, m_alpha, sh_alpha)
            r = zpo - s if negate else zpo + s
        if r < -128:
            r = -128
        elif r > 127:
            r = 127
        out[i] = r


# Fast exact paths: a branch-free float32 estimate decides almost every output (blocks of
# _EW_BLOCK elements, vectorized); a block with an undecided output (a near-tie, see
# `fast_mbqm_params`) is visited again and those outputs recomputed with the integer code.

_EW_BLOCK = 512


@njit(inline="always", fastmath={"contract"})
def _ew_add_sub_rint_pass(a, b, c1, c2, k, thr, lo, hi, out, near_half):  # pragma: no cover - jitted
    """First pass of `_ew_add_sub_rint`, one straight vectorizable loop: out = clamp(rint(y))
    with y = a·c1 + (b·c2 + k), and near_half[i] = 1 where |y − rint(y)| >= thr (those
    outputs are left to `_ew_add_sub_fix_near_half`). The multiply-adds may be fused
    (`contract`); the tolerance covers either evaluation. The int32 clamp to [−128, 127]
    compiles to a saturating narrow, the activation bounds to int8 max / min."""
    lo8 = np.int8(lo)
    hi8 = np.int8(hi)
    for i in range(out.size):
        y = np.float32(a[i]) * c1 + (np.float32(b[i]) * c2 + k)
        r = np.rint(y)
        near_half[i] = abs(y - r) >= thr
        v = np.int8(simd_min(simd_max(np.int32(r), np.int32(-128)), np.int32(127)))
        v = v if v > lo8 else lo8
        out[i] = v if v < hi8 else hi8


_EW_NEAR_HALF_CHUNK = 512  # flags OR-ed together (as 64 uint64 words) before looking closer


@njit(inline="always")
def _ew_add_sub_exact_one(x, y, sign, zp1, zp2, left_shift, m1, right1, m2, right2, mo, right_out, zpo, lo, hi):  # pragma: no cover - jitted
    """One exact ADD / SUB output (`_ew_add_sub_loop`'s arithmetic) with branch-free
    `mbqm_fast`, for multipliers >= 0 and every shift
    <= 0 (right_i = −shift_i), which `_ew_add_sub_rint` requires; a fix-up of scattered
    outputs then costs no mispredicted sign branches."""
    v1 = mbqm_fast((np.int64(x) - zp1) << left_shift, np.int64(m1), np.int64(0), np.int64(right1))
    v2 = mbqm_fast((np.int64(y) - zp2) << left_shift, np.int64(m2), np.int64(0), np.int64(right2))
    raw = v1 + v2 if sign > 0 else v1 - v2
    v = mbqm_fast(np.int64(raw), np.int64(mo), np.int64(0), np.int64(right_out)) + zpo
    return simd_min(simd_max(v, lo), hi)


@njit(inline="always")
def _ew_add_sub_fix_near_half(a, b, near_half, words, sign, zp1, zp2, left_shift, m1, sh1, m2, sh2, mo, sho, zpo, lo, hi, out):  # pragma: no cover - jitted
    """Second pass of `_ew_add_sub_rint`: recompute exactly every output whose near_half flag
    is set. near_half holds one byte per output, zero-padded to a multiple of
    _EW_NEAR_HALF_CHUNK; words is the same memory as uint64 words: a chunk is tested at a
    time (one vectorized OR), then, in a chunk with a flag, word by word, testing bytes only
    in nonzero words."""
    n = out.size
    chunk_words = _EW_NEAR_HALF_CHUNK // 8
    for start in range(0, words.size, chunk_words):
        chunk = words[start:start + chunk_words]
        any_set = np.uint64(0)
        for w in range(chunk_words):
            any_set |= chunk[w]
        if any_set == 0:
            continue
        for w in range(start, start + chunk_words):
            if words[w] == 0:
                continue
            for i in range(w * 8, simd_min(w * 8 + 8, n)):
                if near_half[i]:
                    out[i] = _ew_add_sub_exact_one(
                        a[i], b[i], sign, zp1, zp2, left_shift, m1, -sh1, m2, -sh2, mo, -sho, zpo, lo, hi
                    )


@njit(cache=True, nogil=True, fastmath={"contract"})
def _ew_add_sub_rint(a, b, fp, ip, out):  # pragma: no cover - jitted
    """ADD / SUB on same-size flat operands when e is small (see the comment above
    `_ew_add_sub_rint_pass`; `_ew_add_sub_rint_params` decides): y = a·c1 + (b·c2 + k)
    estimates z + zp_out (c2 carries the sign, k = zp_out − zp1·c1 − zp2·c2), out =
    clamp(rint(y), lo, hi), except the outputs with |y − rint(y)| >= thr, which are
    recomputed with the integer code. fp = float32 [c1, c2, k, thr]; ip = int64 [sign, zp1,
    zp2, left_shift, m1, shift1, m2, shift2, m_out, shift_out, zp_out, lo, hi] with m1, m2,
    m_out >= 0 and every shift <= 0 (`_ew_add_sub_rint_args`: two arrays, not 17 scalars,
    as each argument costs the call ~25 ns to unbox). The flags are one buffer seen as
    bytes and as uint64 words: `carray` over the words' address (an `ndarray.view` in
    jitted code compiles for ~0.3 s); `words` stays live to the end, in the second pass.
    Its two passes and the exact output are inlined into it (`inline="always"`): one
    compile, ~0.4 s less than four."""
    n = out.size
    nwords = (n + _EW_NEAR_HALF_CHUNK - 1) // _EW_NEAR_HALF_CHUNK * (_EW_NEAR_HALF_CHUNK // 8)
    words = simd_empty(nwords, np.uint64)
    near_half = simd_array(simd_u8_ptr(words.ctypes.data), (nwords * 8,))
    for i in range(n, nwords * 8):
        near_half[i] = 0
    lo, hi = ip[11], ip[12]
    _ew_add_sub_rint_pass(a, b, fp[0], fp[1], fp[2], fp[3], lo, hi, out, near_half)
    _ew_add_sub_fix_near_half(a, b, near_half, words, ip[0], ip[1], ip[2], ip[3], ip[4], ip[5],
                              ip[6], ip[7], ip[8], ip[9], ip[10], lo, hi, out)


def _ew_make_mul_fast(per_channel: bool):
    """MUL's exact float path, `mul(a, b, ec, zp1, zp2, off, m, sh, zpo, lo, hi, out)` on flat
    operands: y estimates z = MBQM((a − zp1)(b − zp2), m, sh) within 4e−7·|y| + 1e−7 (three
    float32 roundings); out = sign(y)·floor(|y| + off) + zpo, clamped, except in a block of
    `_EW_BLOCK` outputs with one near a rounding tie (`fast_mbqm_params`), where those get
    the exact MBQM, branch-free `mbqm_fast` (m >= 0: a positive scale ratio). The flags are
    OR-ed, not counted: an int count would widen to int64 and hold the loop to 4 lanes.

    * `per_channel` False: b has a's size, ec = [float32(eff)], y = (a − zp1)(b − zp2)·eff (the
      product is exact in float32).
    * `per_channel` True: the other operand is per channel (last axis): b = its values minus
      their zero point (int32, zp2 = 0) and ec = float32(b·eff), both repeated over a whole
      number of channel rows (`_ew_chan_rows`: blocks that vectorize whatever C is; a block
      starts on a row, so its value j is channel j mod C); y = (a − zp1)·ec[j].

    The flag is a closure constant: each form compiles only its own loop."""

    @njit(cache=True, nogil=True)
    def mul(a, b, ec, zp1, zp2, off, m, sh, zpo, lo, hi, out):  # pragma: no cover - jitted
        n = out.size
        span = ec.size if per_channel else _EW_BLOCK
        eff = ec[0]
        zf1 = np.float32(zp1)
        zf2 = np.float32(zp2)
        zf = np.float32(zpo)
        lof = np.float32(lo)
        hif = np.float32(hi)
        one = np.float32(1.0)
        rel = np.float32(4e-7)
        tiny = np.float32(1e-7)
        for start in range(0, n, span):
            mm = simd_min(span, n - start)
            base = np.uint64(start)
            flagged = False
            for j in range(mm):
                i = base + np.uint64(j)
                if per_channel:
                    y = (np.float32(a[i]) - zf1) * ec[j]
                else:
                    y = ((np.float32(a[i]) - zf1) * (np.float32(b[i]) - zf2)) * eff
                ay = abs(y)
                t = ay + off
                fa = np.floor(t)
                fr = t - fa
                tol = ay * rel + tiny
                flagged |= (fr <= tol) | (fr >= one - tol)
                q = fa if y >= 0 else -fa
                out[i] = np.int32(simd_min(simd_max(q + zf, lof), hif))
            if not flagged:
                continue
            for j in range(mm):
                i = base + np.uint64(j)
                if per_channel:
                    y = (np.float32(a[i]) - zf1) * ec[j]
                    other = np.int64(b[j])
                else:
                    y = ((np.float32(a[i]) - zf1) * (np.float32(b[i]) - zf2)) * eff
                    other = np.int64(b[i])
                ay = abs(y)
                t = ay + off
                fr = t - np.floor(t)
                tol = ay * rel + tiny
                if (fr <= tol) | (fr >= one - tol):
                    v = mbqm_fast((np.int64(a[i]) - zp1) * (other - zp2), np.int64(m),
                                  np.int64(simd_max(sh, 0)), np.int64(simd_max(-sh, 0))) + zpo
                    out[i] = simd_min(simd_max(v, lo), hi)

    return mul


_ew_mul_fast = _ew_make_mul_fast(False)
_ew_mul_chan_fast = _ew_make_mul_fast(True)


def _ew_chan_rows(per_channel: np.ndarray) -> np.ndarray:
    """`channel_rows` in blocks of `_EW_BLOCK`, as `_ew_mul_chan_fast` runs them."""
    return channel_rows(per_channel, _EW_BLOCK)


@njit(cache=True, nogil=True)
def _ew_mul_chan_run_time(a, b, zp1, zp2, eff, off, m, sh, zpo, lo, hi, out):  # pragma: no cover - jitted
    """MUL of the flat full operand a by the run-time per-channel operand b (its C values,
    the last axis; a squeeze-excite scale; `_ew_chan_operand`) in one jitted call: the
    factors kq = b − zp2 (int32) and ec = float32(float64(kq)·eff) (eff: `_ew_mul_eff64`;
    what `lower_mul` folds for a constant operand), repeated over whole channel rows as
    `_ew_chan_rows` repeats them, then `_ew_mul_chan_fast`. Making the factors in NumPy and
    calling through the dispatcher cost ~20 µs a call (16x16x128: 37 µs in all, 17 µs
    here)."""
    c = b.size
    reps = simd_max(1, _EW_BLOCK // simd_max(c, 1))
    kq = simd_empty(c * reps, np.int32)
    ec = simd_empty(c * reps, np.float32)
    for k in range(c):
        v = np.int32(b[k]) - np.int32(zp2)
        f = np.float32(np.float64(v) * eff)
        for r in range(reps):
            kq[r * c + k] = v
            ec[r * c + k] = f
    _ew_mul_chan_fast(a, kq, ec, zp1, 0, off, m, sh, zpo, lo, hi, out)


@runner("add_i8", "sub_i8", elementwise="binary")
def run_add_sub_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    a = inputs[0]
    b = inputs[1]
    out = np.empty(out_shape, np.int8)
    same_shape = a.shape == out_shape and b.shape == out_shape
    if params.get("rint") and same_shape:
        _ew_add_sub_rint(
            np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1),
            *_ew_add_sub_rint_args(params), out.reshape(-1),
        )
        return [out]
    a = _ew_broadcast_flat(a, out_shape)
    b = _ew_broadcast_flat(b, out_shape)
    _ew_add_sub_loop(
        a, b, params["sign"], params["zp1"], params["zp2"], params["left_shift"],
        params["m1"], params["shift1"], params["m2"], params["shift2"],
        params["m_out"], params["shift_out"], params["zp_out"], params["lo"], params["hi"],
        out.reshape(-1),
    )
    return [out]


def _ew_chan_operand(a, b, params, out_shape):
    """For MUL of an operand of the output's shape by a run-time one that varies along the
    last axis only (its size is the channel count: (1, 1, 1, C), (C,)...), either side (the
    product is commutative): (full operand, per-channel operand, their zero points), else
    None."""
    c = out_shape[-1] if out_shape else 0
    for full, chan, zp_full, zp_chan in ((a, b, params["zp1"], params["zp2"]),
                                         (b, a, params["zp2"], params["zp1"])):
        if c and full.shape == out_shape and chan.size == c and chan.ndim and chan.shape[-1] == c:
            return full, chan, zp_full, zp_chan
    return None


def _ew_mul_eff64(params) -> float:
    """MUL's m·2^(shift−31) in float64 (`fast_mbqm_params`' eff; float32(kq·eff) is what
    `lower_mul` folds for a constant per-channel operand)."""
    return float(params["m"]) * 2.0 ** (params["shift"] - 31)


@runner("mul_i8", elementwise="binary")
def run_mul_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    out = np.empty(out_shape, np.int8)
    a = inputs[0]
    if "kq" in params:  # the other operand is a per-channel constant (last axis)
        if params.get("fast") and a.shape == out_shape:
            _ew_mul_chan_fast(
                np.ascontiguousarray(a).reshape(-1), _ew_chan_rows(params["kq"]),
                _ew_chan_rows(params["ec"]), params["zp1"], 0,
                np.float32(params["off"]), params["m"], params["shift"], params["zp_out"],
                params["lo"], params["hi"], out.reshape(-1),
            )
            return [out]
        b = params["b"]
    else:
        b = inputs[1]
        parts = _ew_chan_operand(a, b, params, out_shape) if params.get("fast") else None
        if parts is not None:  # one operand per channel (last axis), e.g. a squeeze-excite scale
            full, chan, zp_full, zp_chan = parts
            _ew_mul_chan_run_time(
                np.ascontiguousarray(full).reshape(-1), np.ascontiguousarray(chan).reshape(-1),
                zp_full, zp_chan, _ew_mul_eff64(params), np.float32(params["off"]),
                params["m"], params["shift"], params["zp_out"], params["lo"], params["hi"],
                out.reshape(-1))
            return [out]
    if params.get("fast") and a.shape == out_shape and b.shape == out_shape:
        _ew_mul_fast(
            np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1),
            np.array([params["eff"]], np.float32), params["zp1"], params["zp2"],
            np.float32(params["off"]), params["m"], params["shift"], params["zp_out"],
            params["lo"], params["hi"], out.reshape(-1),
        )
        return [out]
    a = _ew_broadcast_flat(a, out_shape)
    b = _ew_broadcast_flat(b, out_shape)
    _ew_mul_loop(
        a, b, params["zp1"], params["zp2"], params["m"], params["shift"], params["zp_out"],
        params["lo"], params["hi"], out.reshape(-1),
    )
    return [out]


@runner("squared_difference_i8", elementwise="binary")
def run_squared_difference_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    out = np.empty(out_shape, np.int8)
    _ew_squared_difference_loop(
        _ew_broadcast_flat(inputs[0], out_shape), _ew_broadcast_flat(inputs[1], out_shape),
        params["zp1"], params["zp2"], params["m1"], params["shift1"], params["m2"],
        params["shift2"], params["m_out"], params["shift_out"], params["zp_out"],
        out.reshape(-1),
    )
    return [out]


@runner("maximum_i8", "minimum_i8", elementwise="binary")
def run_max_min_i8(inputs, params):
    out = np.empty(tuple(params["out_shape"]), np.int8)
    if params["is_max"]:
        np.maximum(inputs[0], inputs[1], out=out)
    else:
        np.minimum(inputs[0], inputs[1], out=out)
    return [out]


# Plan-load binding (`PlanRunner` calls `runner.bind(params)` once per step): the returned
# function takes (inputs, params) like the runner and skips the per-call parameter decoding
# on the fast paths, deferring to the runner for everything else.


def _ew_add_sub_rint_args(params):
    """`_ew_add_sub_rint`'s arguments between the operands and `out`: (fp, ip)."""
    fp = np.array([params[k] for k in ("c1", "c2", "k", "thr")], np.float32)
    ip = np.array([params[k] for k in ("sign", "zp1", "zp2", "left_shift", "m1", "shift1", "m2",
                                       "shift2", "m_out", "shift_out", "zp_out", "lo", "hi")],
                  np.int64)
    return fp, ip


def _ew_flat_runner(kernel, args, params, fallback, binary: bool):
    """The bound form of a fast element-wise step: when the operands have the output's shape
    and are C-contiguous, `kernel(*flat operands, *args, flat out)` on a new int8 output;
    anything else (broadcasting, strided views) goes to `fallback(inputs, params)`."""
    out_shape = tuple(params["out_shape"])
    empty = np.empty
    i8 = np.int8
    direct = DirectCall(kernel)
    if binary:
        def run(inputs, _params):
            a, b = inputs
            if (a.shape != out_shape or b.shape != out_shape
                    or not (a.flags.c_contiguous and b.flags.c_contiguous)):
                return fallback(inputs, params)
            out = empty(out_shape, i8)
            direct.call(a.ravel(), b.ravel(), *args, out.ravel())
            return [out]
    else:
        def run(inputs, _params):
            a = inputs[0]
            if a.shape != out_shape or not a.flags.c_contiguous:
                return fallback(inputs, params)
            out = empty(out_shape, i8)
            direct.call(a.ravel(), *args, out.ravel())
            return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        out = outs[0]
        if out.shape != out_shape or out.dtype != i8 or not out.flags.c_contiguous or any(
                a.shape != out_shape or a.dtype != i8 or not a.flags.c_contiguous for a in ins):
            return None
        return fixed_call(kernel, (*(a.ravel() for a in ins), *args, out.ravel()))

    run.into = into
    return run


def _ew_add_sub_numpy(inputs, params):
    """ADD / SUB in NumPy (`plan._Units.deferred`): `_ew_add_sub_loop`'s integer arithmetic
    over the broadcast operands, with `mbqm_np` (its multipliers are >= 0: positive
    scale ratios; else the kernel runs)."""
    if min(params["m1"], params["m2"], params["m_out"]) < 0:
        return run_add_sub_i8(inputs, params)
    out_shape = tuple(params["out_shape"])
    a, b = (np.asarray(x, np.int64) for x in inputs)
    left = params["left_shift"]
    # each operand rescaled at its own shape, then broadcast (a pair table's 256 + 256)
    v1 = mbqm_np((a - params["zp1"]) << left, params["m1"], params["shift1"])
    v2 = mbqm_np((b - params["zp2"]) << left, params["m2"], params["shift2"])
    raw = np.broadcast_to(v1 + v2 if params["sign"] > 0 else v1 - v2, out_shape)
    v = mbqm_np(raw, params["m_out"], params["shift_out"]) + params["zp_out"]
    return [np.clip(v, params["lo"], params["hi"]).astype(np.int8)]


run_add_sub_i8.numpy_form = _ew_add_sub_numpy


# Pair table (ADD / SUB / MUL of two run-time operands that the float estimate cannot serve):
# an int8 binary op's output depends only on the pair of stored values, so when most outputs
# would go to the integer loop (exact ties everywhere, as with equal input and output scales:
# ReLU6 outputs added together), the bound step tabulates the op once over all 65,536 pairs
# with its exact NumPy form and looks each output up, ~0.6 ns per output against ~3.5 ns for
# the integer loop on a Zen 3.


@njit(cache=True, nogil=True)
def _ew_pair_table_loop(a, b, table, out):  # pragma: no cover - jitted
    """out[i] = table[(a[i] + 128)·256 + (b[i] + 128)] for flat int8 a, b, out."""
    for i in range(out.size):
        out[i] = table[(np.uint64(np.uint8(a[i] ^ np.int8(-128))) << np.uint64(8))
                       | np.uint64(np.uint8(b[i] ^ np.int8(-128)))]


def ew_pair_table(numpy_form, params) -> np.ndarray:
    """int8 [65536]: `numpy_form` (an exact NumPy form of a binary int8 step) on every pair of
    stored values, entry (a + 128)·256 + (b + 128) for the operands (a, b)."""
    values = np.arange(-128, 128, dtype=np.int8)
    table = numpy_form([values.reshape(256, 1), values.reshape(1, 256)],
                       dict(params, out_shape=[256, 256]))[0]
    return np.ascontiguousarray(table, np.int8).reshape(-1)


def _ew_pair_table_runner(table, params, fallback):
    """The bound form of a binary step by pair table (`_ew_flat_runner` over
    `_ew_pair_table_loop`), with the table lookup in NumPy as its first run's form."""
    run = _ew_flat_runner(_ew_pair_table_loop, (table,), params, fallback, binary=True)
    out_shape = tuple(params["out_shape"])

    def numpy_form(inputs, _params):
        a, b = inputs
        if a.shape != out_shape or b.shape != out_shape:
            return fallback(inputs, params)
        index = ((np.asarray(a, np.int64) + 128) << 8) | (np.asarray(b, np.int64) + 128)
        return [table[index]]

    run.numpy_form = numpy_form
    return run


def _ew_bind_add_sub(params):
    if not params.get("rint"):
        if min(params["m1"], params["m2"], params["m_out"]) < 0:
            return run_add_sub_i8  # (no scales qcc or TFLite make: no NumPy form)
        return _ew_pair_table_runner(ew_pair_table(_ew_add_sub_numpy, params), params,
                                     run_add_sub_i8)
    run = _ew_flat_runner(_ew_add_sub_rint, _ew_add_sub_rint_args(params), params,
                          run_add_sub_i8, binary=True)
    run.numpy_form = lambda inputs, _params: _ew_add_sub_numpy(inputs, params)
    return run


def _ew_mul_numpy(inputs, params):
    """MUL in NumPy (`plan._Units.deferred`): `_ew_mul_loop`'s integer arithmetic over the
    broadcast operands (the second the folded constant when the plan holds it), with
    `mbqm_np` (m >= 0: positive scales; else the kernel runs)."""
    if params["m"] < 0:
        return run_mul_i8(inputs, params)
    out_shape = tuple(params["out_shape"])
    b = params["b"] if "kq" in params else inputs[1]
    a, b = (np.broadcast_to(np.asarray(x, np.int64), out_shape) for x in (inputs[0], b))
    p = wrap_int32_np((a - params["zp1"]) * (b - params["zp2"]))
    v = mbqm_np(p, params["m"], params["shift"]) + params["zp_out"]
    return [np.clip(v, params["lo"], params["hi"]).astype(np.int8)]


run_mul_i8.numpy_form = _ew_mul_numpy


def _ew_bind_mul(params):
    if not params.get("fast"):
        if "kq" in params or params["m"] < 0:
            return run_mul_i8
        return _ew_pair_table_runner(ew_pair_table(_ew_mul_numpy, params), params, run_mul_i8)
    if "kq" in params:
        args = (
            _ew_chan_rows(params["kq"]), _ew_chan_rows(params["ec"]), params["zp1"], 0,
            np.float32(params["off"]), params["m"],
            params["shift"], params["zp_out"], params["lo"], params["hi"],
        )
        run = _ew_flat_runner(_ew_mul_chan_fast, args, params, run_mul_i8, binary=False)
    else:
        args = (
            np.array([params["eff"]], np.float32), params["zp1"], params["zp2"],
            np.float32(params["off"]), params["m"], params["shift"], params["zp_out"],
            params["lo"], params["hi"],
        )
        run = _ew_mul_chan_operand(
            _ew_flat_runner(_ew_mul_fast, args, params, run_mul_i8, binary=True), params)
    run.numpy_form = lambda inputs, _params: _ew_mul_numpy(inputs, params)
    return run


def _ew_mul_chan_operand(flat, params):
    """The bound fast MUL `flat` (same-shape operands) extended to one operand of the output's
    shape times a run-time per-channel one (C values along the last axis, either side):
    `_ew_mul_chan_run_time`, directly and on fixed buffers; anything else goes to `flat`."""
    out_shape = tuple(params["out_shape"])
    eff = _ew_mul_eff64(params)
    tail = (np.float32(params["off"]), params["m"], params["shift"], params["zp_out"],
            params["lo"], params["hi"])
    direct = DirectCall(_ew_mul_chan_run_time)
    empty, i8 = np.empty, np.int8

    def split(a, b):  # `_ew_chan_operand` of contiguous int8 operands, or None
        parts = _ew_chan_operand(a, b, params, out_shape)
        if parts is None or any(v.dtype != i8 or not v.flags.c_contiguous for v in parts[:2]):
            return None
        return parts

    def run(inputs, _params):
        parts = split(*inputs)
        if parts is None:
            return flat(inputs, _params)
        full, chan, zf, zc = parts
        out = empty(out_shape, i8)
        direct.call(full.ravel(), chan.ravel(), zf, zc, eff, *tail, out.ravel())
        return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        parts = split(*ins)
        out = outs[0]
        if parts is None or out.shape != out_shape or out.dtype != i8 or not out.flags.c_contiguous:
            return flat.into(ins, outs)
        full, chan, zf, zc = parts
        return fixed_call(_ew_mul_chan_run_time,
                          (full.ravel(), chan.ravel(), zf, zc, eff, *tail, out.ravel()))

    run.into = into
    return run


def _ew_bind_max_min(params):
    out_shape = tuple(params["out_shape"])
    ufunc = np.maximum if params["is_max"] else np.minimum
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        out = empty(out_shape, i8)
        ufunc(inputs[0], inputs[1], out=out)
        return [out]

    return run


run_add_sub_i8.bind = _ew_bind_add_sub


# Per-channel table (`lut_chan_i8`): a chain of int8 element-wise steps whose only run-time
# operand is one tensor x (per-channel constants folded into params) computes, per channel
# k (last axis) and stored value v, one value: the plan builder tabulates the chain by running
# its steps on every (k, v) and fuses it into one lookup, lut[k·256 + (v + 128)].


@njit(cache=True, nogil=True)
def _ew_lut_chan_loop(x, lut, c, out):  # pragma: no cover - jitted
    rows = x.size // c
    for r in range(rows):
        b = np.uint64(r * c)
        for k in range(c):
            i = b + np.uint64(k)
            out[i] = lut[np.uint64(k) * np.uint64(256) + np.uint64(np.uint8(x[i] ^ np.int8(-128)))]


@runner("lut_chan_i8")
def run_lut_chan_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _ew_lut_chan_loop(x.reshape(-1), params["lut"], int(params["c"]), out.reshape(-1))
    return [out]


def _ew_bind_lut_chan(params):
    lut = params["lut"]
    c = int(params["c"])
    direct = DirectCall(_ew_lut_chan_loop)
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            return run_lut_chan_i8(inputs, params)
        out = empty(x.shape, i8)
        direct.call(x.ravel(), lut, c, out.ravel())
        return [out]

    def numpy_form(inputs, _params):  # `_ew_lut_chan_loop` in NumPy (`plan._Units.deferred`)
        x = inputs[0]
        if x.size % c:
            return run(inputs, _params)
        idx = np.asarray(x, np.int64).reshape(-1, c) + 128 + np.arange(c, dtype=np.int64) * 256
        return [np.asarray(lut)[idx].astype(np.int8).reshape(x.shape)]

    run.into = _ew_chan_into(_ew_lut_chan_loop, c, (lut, c))
    run.numpy_form = numpy_form
    return run


def _ew_chan_into(kernel, c: int, args: tuple):
    """The ``into`` (fixed buffers, `plan._arena_line`) of a bound per-channel unary int8
    step (c channels, the last axis) that runs ``kernel(x.ravel(), *args, out.ravel())``."""
    i8 = np.int8

    def into(ins, outs):
        x, out = ins[0], outs[0]
        if (x.dtype != i8 or out.dtype != i8 or x.shape != out.shape or x.ndim == 0
                or x.shape[-1] != c or not (x.flags.c_contiguous and out.flags.c_contiguous)):
            return None
        return fixed_call(kernel, (x.ravel(), *args, out.ravel()))

    return into


run_lut_chan_i8.bind = _ew_bind_lut_chan


# Per-channel affine pieces (`affine_chan_i8`): the fast form of a per-channel table whose
# every channel k is, on each side of a split z (the input's zero point), a rounded line:
#     t = x − z,  out = clamp(floor((t·E + B) / 2^S), lo, hi)
# with (E, B) = (E⁺[k], B⁺[k]) for t >= 0 and (E⁻[k], B⁻[k]) for t < 0 (int32; S, lo, hi
# per step). PRELU in both decompositions (MUL + MAXIMUM, or RELU / SUB / MUL / ADD), LEAKY
# and plain RELU with a rescale, a MUL by a per-channel constant: each is such a function of
# the stored value, with MBQM's roundings folded into B. The plan builder fits (E, B) to the
# chain's own table (`affine_chan_params`) and takes this form only when it reproduces the
# table on every (channel, stored value) pair; it then equals the chain on every input. The
# arithmetic is exact in int32 (the fit keeps |t·E + B| below 2^31 on every stored value),
# 32 outputs a step of vector IR (`ew_affine_chan32`): ~1.5 instructions an output on AVX2,
# against ~3 for the float32 PRELU kernel; 0.17 ns an output on a Zen 3, against 0.44 and
# ~0.4 for the table lookup.

_EW_AFFINE_LANES = 32
"""Outputs per step of `ew_affine_chan32` (four 8 x i32 vectors on AVX2; the int32 to int8
saturation packs them back into one 32-byte store)."""


@intrinsic
def ew_affine_chan32(typingctx, xa, oa, ta, tw, z, s, lo, hi):
    """`_EW_AFFINE_LANES` outputs of `affine_chan_i8` as vector IR: int8 x at address xa,
    int8 out at oa, the tables' rows E⁺, E⁻, B⁺, B⁻ (int32) at ta, ta + tw, ta + 2·tw,
    ta + 3·tw (tw in bytes; ta already at the step's first channel). t = x − z; the side's
    (E, B) chosen by t's sign; floor((t·E + B) / 2^s) saturated to int8 (LLVM's packs on
    x86), then clamped to [lo, hi]. Arguments are int64."""
    sig = types.void(xa, oa, ta, tw, z, s, lo, hi)

    def codegen(context, builder, signature, args):
        ir = _ew_ir
        i8, i32 = ir.IntType(8), ir.IntType(32)
        lanes = _EW_AFFINE_LANES
        v8, v32 = ir.VectorType(i8, lanes), ir.VectorType(i32, lanes)
        xa, oa, ta, tw, z, s, lo, hi = (simd_as64(builder, v) for v in args)

        def splat32(v):
            return simd_splat(builder, builder.trunc(v, i32), v32)

        def row(r):
            at = builder.add(ta, builder.mul(tw, ir.Constant(tw.type, r)))
            return builder.load(builder.inttoptr(at, v32.as_pointer()), align=4)

        x = builder.load(builder.inttoptr(xa, v8.as_pointer()), align=1)
        t = builder.sub(builder.sext(x, v32), splat32(z))
        neg = builder.icmp_signed("<", t, ir.Constant(v32, None))
        e = builder.select(neg, row(1), row(0))
        b = builder.select(neg, row(3), row(2))
        v = builder.ashr(builder.add(builder.mul(t, e), b), splat32(s))
        v = builder.select(builder.icmp_signed("<", v, ir.Constant(v32, [127] * lanes)), v,
                           ir.Constant(v32, [127] * lanes))
        v = builder.select(builder.icmp_signed(">", v, ir.Constant(v32, [-128] * lanes)), v,
                           ir.Constant(v32, [-128] * lanes))
        q = builder.trunc(v, v8)
        lo8 = simd_splat(builder, builder.trunc(lo, i8), v8)
        hi8 = simd_splat(builder, builder.trunc(hi, i8), v8)
        q = builder.select(builder.icmp_signed(">", q, lo8), q, lo8)
        q = builder.select(builder.icmp_signed("<", q, hi8), q, hi8)
        builder.store(q, builder.inttoptr(oa, v8.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _ew_affine_chan_loop(x, tab, g, out):  # pragma: no cover - jitted
    """`affine_chan_i8` over flat int8 x and out: g = c, z, S, lo, hi (int64); tab int32
    [4, c + 32], rows E⁺, E⁻, B⁺, B⁻ with column j for channel j mod c (the first 32 channels
    repeated after the c: a step of 32 outputs from any channel reads one straight run).
    Whole steps run `ew_affine_chan32`, the last n mod 32 outputs the same integer
    arithmetic in scalar code."""
    c, z, s, lo, hi = g[0], g[1], g[2], g[3], g[4]
    n = x.size
    lanes = _EW_AFFINE_LANES
    full = n - n % lanes
    xa = np.int64(x.ctypes.data)
    oa = np.int64(out.ctypes.data)
    ta = np.int64(tab.ctypes.data)
    tw = np.int64(tab.shape[1]) * 4
    ph = 0  # the channel of output i
    step = lanes % c
    for i in range(0, full, lanes):
        ew_affine_chan32(xa + i, oa + i, ta + ph * 4, tw, z, s, lo, hi)
        ph += step
        if ph >= c:
            ph -= c
    for i in range(full, n):
        k = i % c
        t = np.int64(x[i]) - z
        side = 1 if t < 0 else 0
        v = (t * np.int64(tab[side, k]) + np.int64(tab[2 + side, k])) >> s
        out[i] = simd_min(simd_max(v, lo), hi)


def _ew_affine_chan_numpy(x, tab, g):
    """`_ew_affine_chan_loop` in NumPy (int64: the same integers)."""
    c, z, s, lo, hi = (int(v) for v in g)
    x = np.asarray(x)
    t = np.asarray(x, np.int64).reshape(-1, c) - z
    side = (t < 0).astype(np.int64)
    cols = np.arange(c)
    e = np.asarray(tab, np.int64)[side, cols]
    b = np.asarray(tab, np.int64)[2 + side, cols]
    v = (t * e + b) >> s
    return np.clip(v, lo, hi).astype(np.int8).reshape(x.shape)


@runner("affine_chan_i8")
def run_affine_chan_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _ew_affine_chan_loop(x.reshape(-1), params["tab"], params["g"], out.reshape(-1))
    return [out]


def _ew_bind_affine_chan(params):
    """Plan-load binding of `run_affine_chan_i8`: its arguments made once."""
    tab = np.ascontiguousarray(params["tab"], np.int32)
    g = np.ascontiguousarray(params["g"], np.int64)
    c = int(g[0])
    direct = DirectCall(_ew_affine_chan_loop)
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        out = empty(x.shape, i8)
        direct.call(x.ravel(), tab, g, out.ravel())
        return [out]

    run.into = _ew_chan_into(_ew_affine_chan_loop, c, (tab, g))
    run.numpy_form = lambda inputs, _params: [_ew_affine_chan_numpy(inputs[0], tab, g)]
    return run


run_affine_chan_i8.bind = _ew_bind_affine_chan

_EW_AFFINE_BOUND = (1 << 31) - 1
"""The fit keeps |t·E + B| within this on every stored value: the int32 arithmetic is then
exact (a product that wraps is undone by the sum, modulo 2^32)."""


def _ew_affine_fit_side(t: np.ndarray, y: np.ndarray, lo: int, hi: int, s: int):
    """The (E, B) of one side for every channel: integers with floor((t·E + B) / 2^s) = y
    where lo < y < hi, <= lo where y == lo, >= hi where y == hi, and |t·E + B| < 2^31, for
    the side's t (int64 [n]) and each channel's targets y (int64 [c, n]). Returns (E, B, ok)
    ([c] each) and `steep`: a smaller s may fit where this one does not (the line's values
    may pass the bound at this s). The
    slack F(E) = min(U − t·E) − max(L − t·E) of the bounds L <= t·E + B <= U is concave in
    E: a bisection on its subgradient finds its maximum, and the channel has a
    fit iff that is >= 0 (B then anywhere in [max(L − t·E), min(U − t·E)])."""
    c = y.shape[0]
    if t.size == 0:
        zero = np.zeros(c, np.int64)
        return zero, zero, np.ones(c, bool), False
    bound = _EW_AFFINE_BOUND
    low = np.where(y <= lo, -bound, y << s)
    high = np.where(y >= hi, bound, ((y + 1) << s) - 1)

    def slack(e):
        te = e[:, None] * t[None, :]
        return (high - te).min(axis=1) - (low - te).max(axis=1)

    # the bracket of E: |E| <= 2^24 (|t·E| stays near the bound), and within 2^s / span of the
    # slope through the outermost unclamped targets (where every fit's line must pass within
    # 1 of both)
    limit = bound // 128
    a = np.full(c, -limit, np.int64)
    b = np.full(c, limit, np.int64)
    free = (y > lo) & (y < hi)
    first = np.argmax(free, axis=1)
    last = t.size - 1 - np.argmax(free[:, ::-1], axis=1)
    rows = np.arange(c)
    span = t[last] - t[first]
    ok = free.any(axis=1) & (span > 0)
    dy = y[rows, last] - y[rows, first]
    safe = np.where(ok, span, 1)
    mid = (dy << s) // safe
    reach = ((2 << s) // safe) + 2
    # a smaller s helps when the line's values at this s may pass the bound
    steep = bool((ok & ((np.abs(mid) + reach) * np.abs(t).max() + (128 << s) > bound)).any())
    a = np.where(ok, np.maximum(a, mid - reach), a)
    b = np.where(ok, np.minimum(b, mid + reach), b)
    b = np.maximum(a, b)
    while True:  # bisection on a subgradient of F, t[argmax(L − tE)] − t[argmin(U − tE)]
        open_ = b - a > 1
        if not open_.any():
            break
        m = (a + b) // 2
        te = m[:, None] * t[None, :]
        g = t[(low - te).argmax(axis=1)] - t[(high - te).argmin(axis=1)]
        a = np.where(open_ & (g >= 0), m, a)
        b = np.where(open_ & (g <= 0), m, b)
    f_a, f_b = slack(a), slack(b)
    best_e = np.where(f_b > f_a, b, a)
    best_f = np.maximum(f_a, f_b)
    te = best_e[:, None] * t[None, :]
    b_lo, b_hi = (low - te).max(axis=1), (high - te).min(axis=1)
    # B in the feasible range, as near the middle of the values t·E spans as it allows
    want = -(te.max(axis=1) + te.min(axis=1)) // 2
    b_val = np.clip(want, b_lo, b_hi)
    return best_e, b_val, best_f >= 0, steep


def affine_chan_params(lut: np.ndarray, c: int, z: int) -> dict | None:
    """The `affine_chan_i8` params reproducing the per-channel table `lut` (int8 [c·256],
    lut[k·256 + v + 128] for channel k and stored value v) with the split at stored value z,
    or None when some channel is not two rounded lines there. S is 22, or smaller for lines
    whose values would pass int32 (steep ones). The result is checked on every entry."""
    y = np.asarray(lut, np.int64).reshape(c, 256)
    if not -128 <= z <= 127 or c <= 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    t_all = np.arange(-128, 128, dtype=np.int64) - z
    pos, neg = t_all >= 0, t_all < 0
    for s in (22, 19, 16, 13):
        e_p, b_p, ok_p, steep_p = _ew_affine_fit_side(t_all[pos], y[:, pos], lo, hi, s)
        e_n, b_n, ok_n, steep_n = _ew_affine_fit_side(t_all[neg], y[:, neg], lo, hi, s)
        if not (ok_p.all() and ok_n.all()):
            if steep_p or steep_n:
                continue
            return None  # (a smaller s has fewer lines: the lattice of E / 2^s is coarser)
        rows = np.stack([e_p, e_n, b_p, b_n])
        if np.abs(rows).max() >= 1 << 31:
            continue
        tiled = np.concatenate([rows, rows[:, np.arange(_EW_AFFINE_LANES) % c]], axis=1)
        params = {"tab": np.ascontiguousarray(tiled, np.int32),
                  "g": np.array([c, z, s, lo, hi], np.int64)}
        probe = np.ascontiguousarray(np.broadcast_to(
            np.arange(-128, 128, dtype=np.int64).astype(np.int8)[:, None], (256, c)))
        got = _ew_affine_chan_numpy(probe, params["tab"], params["g"])
        if np.array_equal(got.T.reshape(-1), np.asarray(lut).reshape(-1)):
            return params
    return None
run_mul_i8.bind = _ew_bind_mul
run_max_min_i8.bind = _ew_bind_max_min


@runner("prelu_i8")
def run_prelu_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    x = _ew_broadcast_flat(inputs[0], out_shape)
    alpha = params["alpha"] if "alpha" in params else inputs[1]
    alpha = _ew_broadcast_flat(alpha, out_shape)
    out = np.empty(out_shape, np.int8)
    _ew_prelu_loop(
        x, alpha, params["zp_in"], params["zp_alpha"], params["m1"], params["shift1"],
        params["m2"], params["shift2"], params["zp_out"], -128, 127, out.reshape(-1),
    )
    return [out]


@runner("leaky_relu_i8", elementwise="unary")
def run_leaky_relu_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _ew_leaky_relu_loop(
        x.reshape(-1), params["zp_in"], params["m_identity"], params["shift_identity"],
        params["m_alpha"], params["shift_alpha"], bool(params["negate_alpha"]),
        params["zp_out"], out.reshape(-1),
    )
    return [out]


# ---------------------------------------------------------------------------------------------
# Compile time
# ---------------------------------------------------------------------------------------------




@int8_lowering(nn.AddOp, nn.SubOp)
def lower_add_sub(op):
    qp = int8_params(op.lhs, op.rhs, op.output)
    if qp is None:
        return None
    (s1, zp1), (s2, zp2), (so, zpo) = qp
    p = add_sub_params(s1, s2, so, 20)
    is_add = isinstance(op, nn.AddOp)
    if is_add and p["shift_out"] > 0:
        return None  # TFLite's ADD Prepare rejects an output multiplier >= 1
    lo, hi = activation_bounds(op)
    return "add_i8" if is_add else "sub_i8", {
        "sign": 1 if is_add else -1,
        "zp1": zp1,
        "zp2": zp2,
        "left_shift": p["left_shift"],
        "m1": p["m1"],
        "shift1": p["shift1"],
        "m2": p["m2"],
        "shift2": p["shift2"],
        "m_out": p["m_out"],
        "shift_out": p["shift_out"],
        "zp_out": zpo,
        "lo": lo,
        "hi": hi,
        "out_shape": list(shape(op.output)),
        **_ew_add_sub_fast_params(p, 1 if is_add else -1, zp1, zp2, zpo),
    }


def _ew_flag_rate(y, off, tol) -> float:
    """Share of float32 estimates `y` the fast kernels leave to the integer fix-up (as they
    test it); many exact ties (scale ratios like 1/2) make the fast path slower than the
    integer loop."""
    f32 = np.float32
    t = np.abs(y).astype(f32) + f32(off)
    fr = t - np.floor(t)
    return float(np.mean((fr <= tol) | (fr >= f32(1.0) - tol)))


_EW_MAX_FLAG_RATE = 0.01


def _ew_add_sub_fast_params(p, sign, zp1, zp2, zpo):
    """Whether the vectorized ADD / SUB kernel serves, with its float constants:
    {"rint": True, ...} for `_ew_add_sub_rint`, else {"rint": False} (the integer loop).
    (An earlier float kernel with a sign-dependent rounding offset was never chosen over it
    in thousands of random scale configurations: its undecided band is never narrower, since
    both shrink as 2^-right; it was removed.)"""
    ls = p["left_shift"]
    eo, _, ok = fast_mbqm_params(p["m_out"], p["shift_out"], 1 << 30)
    ok = (
        ok and p["shift_out"] <= 0 and p["shift1"] <= 0 and p["shift2"] <= 0
        and p["m1"] >= 0 and p["m2"] >= 0 and (255 << ls) < (1 << 30)
    )
    if not ok:
        return {"rint": False}
    f32 = np.float32
    c1 = float(f32(p["m1"] * 2.0 ** (ls + p["shift1"] - 31) * eo))
    c2 = float(f32(sign * p["m2"] * 2.0 ** (ls + p["shift2"] - 31) * eo))
    rint = _ew_add_sub_rint_params(c1, c2, eo, p["shift_out"], zp1, zp2, zpo)
    if rint is None:
        return {"rint": False}
    return {"rint": True, "c1": c1, "c2": c2, **rint}


# `_ew_add_sub_rint` costs about 0.15 ns per output plus about 20 ns per flagged output
# (scattered flags: mispredicted branches and the integer code); the integer loop about 1.5 ns
# per output. Break-even near 6 % of outputs flagged; the bound leaves room for inputs that
# meet ties more often than uniform ones.
_EW_RINT_MAX_FLAG_RATE = 0.03


def _ew_add_sub_rint_params(c1, c2, eo, shift_out, zp1, zp2, zpo, max_flag_rate=_EW_RINT_MAX_FLAG_RATE):
    """{"k", "thr"} of `_ew_add_sub_rint` for the float32 factors c1, c2 (c_i estimates the
    exact C_i = 2^left·m_i·2^(shift_i−31)·eo, eo = m_out·2^(shift_out−31)), or None when it
    cannot serve or would send more than `max_flag_rate` of the 256×256 input pairs to the
    integer fix-up (exact ties, as with s1 = s2 = s_out/2, are always flagged).

    k = zp_out − zp1·c1 − zp2·c2 (float32), so that y = a·c1 + (b·c2 + k) estimates
    z + zp_out = zp_out + (a − zp1)·C1 ± (b − zp2)·C2 + (ε1 ± ε2)·eo, where |ε_i| <= 1 are the
    roundings of v1, v2 (SRDHM, then RDBPOT: 1/2 + 2^−(right_i+1)). With |a|, |b| <= 128 and
    |a − zp1|, |b − zp2| <= 255, the float32 estimate errs by at most
      * 2·eo, the roundings of v1 and v2;
      * 255·2^−24·(|c1| + |c2|), c_i being C_i rounded (once in double, once to float32);
      * 2^−24·|k|, k's rounding;
      * 2^−24·(256·|c1| + 384·|c2| + 2·|k|), the two float32 products and two sums, each
        within 2^−24 of its result (fused multiply-adds round less);
    tol below is their sum, padded by 1 %. An output is then exact unless
    |y − rint(y)| >= thr = 1/2 − tol − e (float32, rounded down), e = off − 1/2 of
    `fast_mbqm_params` (see the comment above `_ew_add_sub_rint_pass`). |y| < 2^22 keeps
    y − rint(y) exact in float32."""
    f32 = np.float32
    right = max(-shift_out, 0)
    e = 2.0 ** -(right + 1) if right >= 1 else 0.0
    k = float(f32(zpo - zp1 * c1 - zp2 * c2))
    if 128 * (abs(c1) + abs(c2)) + abs(k) >= 2.0**22:
        return None
    tol = 1.01 * (2.0 * eo + 2.0**-24 * (640 * (abs(c1) + abs(c2)) + 4 * abs(k)))
    thr = 0.5 - tol - e
    thr32 = f32(thr)
    if float(thr32) > thr:
        thr32 = np.nextafter(thr32, f32(0))
    if thr32 <= 0:
        return None
    # y on every input pair, with fused multiply-adds as the kernel compiles on FMA hardware:
    # each product and sum in double (exact but in extreme scale ratios), then one rounding
    # to float32 per fma.
    q = np.arange(-128, 128, dtype=np.float64)
    u = (q[None, :] * c2 + k).astype(f32).astype(np.float64)
    y = (q[:, None] * c1 + u).astype(f32)
    if float(np.mean(np.abs(y - np.rint(y)) >= thr32)) > max_flag_rate:
        return None
    return {"k": k, "thr": float(thr32)}


@int8_lowering(nn.MulOp)
def lower_mul(op):
    qp = int8_params(op.lhs, op.rhs, op.output)
    if qp is None:
        return None
    (s1, zp1), (s2, zp2), (so, zpo) = qp
    real = np.float32(s1) * np.float32(s2) / np.float32(so)  # float32, as mul.cc
    m, sh = quantize_multiplier(float(real))
    lo, hi = activation_bounds(op)
    out_shape = list(shape(op.output))
    eff, off, ok = fast_mbqm_params(m, sh, 1 << 16)
    f32 = np.float32
    if ok:
        y = np.arange(-(1 << 16), (1 << 16) + 1, dtype=f32) * f32(eff)
        ok = _ew_flag_rate(y, off, np.abs(y) * f32(4e-7) + f32(1e-7)) <= _EW_MAX_FLAG_RATE
    params = {
        "zp1": zp1,
        "zp2": zp2,
        "m": m,
        "shift": sh,
        "zp_out": zpo,
        "lo": lo,
        "hi": hi,
        "out_shape": out_shape,
        "fast": ok,
        "eff": float(np.float32(eff)),
        "off": float(np.float32(off)),
    }
    # A per-channel (last axis) constant operand: folded into per-channel factors.
    lhs_c, rhs_c = constant_array(op.lhs), constant_array(op.rhs)
    for const, zp_c, zp_x, idx, other in ((rhs_c, zp2, zp1, 0, op.lhs), (lhs_c, zp1, zp2, 1, op.rhs)):
        if const is None or constant_array(other) is not None:
            continue
        cs = tuple(np.shape(const))
        while cs and cs[0] == 1:
            cs = cs[1:]
        if tuple(shape(other)) != tuple(out_shape) or len(cs) != 1 or not out_shape or cs[0] != out_shape[-1]:
            continue
        kq = np.asarray(const, np.int64).reshape(-1) - zp_c
        params["zp1"], params["zp2"] = zp_x, zp_c
        params["kq"] = np.ascontiguousarray(kq.astype(np.int32))
        params["ec"] = np.ascontiguousarray((kq.astype(np.float64) * eff).astype(np.float32))
        if params["fast"]:
            y = np.arange(-255, 256, dtype=f32)[:, None] * params["ec"][None, :]
            rate = _ew_flag_rate(y, off, np.abs(y) * f32(4e-7) + f32(1e-7))
            params["fast"] = rate <= _EW_MAX_FLAG_RATE
        params["b"] = np.ascontiguousarray(np.asarray(const, np.int8).reshape(-1))
        return "mul_i8", params, [idx]
    return "mul_i8", params


@int8_lowering(nn.SquaredDifferenceOp)
def lower_squared_difference(op):
    qp = int8_params(op.lhs, op.rhs, op.output)
    if qp is None:
        return None
    (s1, zp1), (s2, zp2), (so, zpo) = qp
    f32 = np.float32
    twice_max = float(f32(2) * max(f32(s1), f32(s2)))  # 2 * std::max(float, float)
    real_out = twice_max * twice_max / float(f32(1 << 14) * f32(so))
    if not 0.0 < real_out < 1.0:
        return None  # Prepare aborts (QuantizeMultiplierSmallerThanOneExp)
    m_out, shift_out = quantize_multiplier(real_out)
    if shift_out > 0:
        return None
    m1, shift1 = quantize_multiplier_smaller_than_one_exp(float(f32(s1)) / twice_max)
    m2, shift2 = quantize_multiplier_smaller_than_one_exp(float(f32(s2)) / twice_max)
    return "squared_difference_i8", {
        "zp1": zp1, "zp2": zp2, "m1": m1, "shift1": shift1, "m2": m2, "shift2": shift2,
        "m_out": m_out, "shift_out": shift_out, "zp_out": zpo,
        "out_shape": list(shape(op.output)),
    }


@int8_lowering(nn.MaximumOp, nn.MinimumOp)
def lower_max_min(op):
    if int8_params(op.lhs, op.rhs, op.output) is None:
        return None
    is_max = isinstance(op, nn.MaximumOp)
    return "maximum_i8" if is_max else "minimum_i8", {
        "is_max": is_max,
        "out_shape": list(shape(op.output)),
    }


@int8_lowering(nn.PReluOp)
def lower_prelu(op):
    qp = int8_params(op.input, op.alpha, op.output)
    if qp is None:
        return None
    (si, zpi), (sa, zpa), (so, zpo) = qp
    f32 = np.float32
    m1, sh1 = quantize_multiplier(float(f32(si) / f32(so)))
    m2, sh2 = quantize_multiplier(float(f32(si) * f32(sa) / f32(so)))
    params = {
        "zp_in": zpi,
        "zp_alpha": zpa,
        "m1": m1,
        "shift1": sh1,
        "m2": m2,
        "shift2": sh2,
        "zp_out": zpo,
        "out_shape": list(shape(op.output)),
    }
    alpha = constant_array(op.alpha)
    if alpha is not None:
        params["alpha"] = np.ascontiguousarray(alpha, dtype=np.int8)
        return "prelu_i8", params, [0]
    return "prelu_i8", params


@int8_lowering(nn.LeakyReluOp)
def lower_leaky_relu(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    f32 = np.float32
    alpha = f32(op.alpha.value.data)
    m_alpha, sh_alpha = quantize_multiplier(float(f32(si) * alpha / f32(so)))
    m_id, sh_id = quantize_multiplier(float(f32(si) / f32(so)))
    return "leaky_relu_i8", {
        "zp_in": zpi,
        "m_identity": m_id,
        "shift_identity": sh_id,
        "m_alpha": abs(m_alpha),
        "shift_alpha": sh_alpha,
        "negate_alpha": m_alpha < 0,
        "zp_out": zpo,
    }
