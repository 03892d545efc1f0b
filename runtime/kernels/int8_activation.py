"""int8 activation kernels: RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, HARD_SWISH, GELU,
SOFTMAX, and the unary RSQRT.

Bit-exact transcriptions of what LiteRT's reference resolver (`BUILTIN_REF`) runs for int8
(LRT `tflite/kernels/activations.cc`; TFLITE_INT8_SPEC.md §5):

* RELU / RELU6 / RELU_N1_TO_1 (`relu_i8`): `QuantizedReluX` with its own multiplier
  `s_in / s_out` (float32 quotient, then QuantizeMultiplier):
  `out = clamp(zp_out + mbqm(q - zp_in, m, shift), lo, hi)` with
  `lo = max(-128, zp_out + roundf(act_min / s_out))`, `hi = 127` (RELU) or
  `min(127, zp_out + roundf(act_max / s_out))`, float32 division.
* LOGISTIC / TANH (`logistic_i8`, `tanh_i8`; a table lookup, the runner `lut_i8`): the
  256-entry table `LUTPopulate<int8_t>` builds at Prepare, in float32:
  `x = s_in * (q - zp_in)`, `y = 1 / (1 + expf(-x))` or `tanhf(x)`,
  `lut[q] = clamp(roundf(y * (1 / s_out)) + zp_out)`. The reference and generic-optimized
  kernels both look this table up (the gemmlowp fixed-point path is only the
  kFixedPointOptimized registration). expf/tanhf come from the C math library when it can
  be loaded (numpy's float32 functions otherwise; both matched LiteRT on every tested table).
* GELU (`gelu_i8`, a table lookup): `GeluPrepare` fills the table with
  `LUTPopulate<int8_t>` and `reference_ops::GeluTransform` (float32:
  `0.5f * x * erfcf(x * float(-M_SQRT1_2))`) or, with `approximate`,
  `GeluTransformApproximate` (`0.5f * x * (1 + tanhf(float(sqrt(2/pi)) * (x + 0.044715f *
  x * x * x)))`), both evaluated in float32 with the C library's erfcf / tanhf.
* RSQRT (`rsqrt_i8`, a table lookup): `elementwise.cc` RsqrtEvalQuantizedInt8 per value:
  `v = q - zp_in`; v == 0 -> 127; else `GetInvSqrtQuantizedMultiplierExp(v, -1)` (gemmlowp
  Newton-Raphson in FixedPoint<int32, 3>, `internal/common.h`) gives (m_v, shift_v),
  `data = mbqm(1, m_v, shift_v + 20)`, `out = clamp(mbqm(data, m, shift - 20) + zp_out)`
  with `(m, shift) = QuantizeMultiplier(1. / (sqrtf(s_in) * s_out))`. LiteRT fails the
  invocation on an input below the zero point ("Rsqrt is only defined for positive
  values"); so does the runner (`PlanInputError`).
* HARD_SWISH (`hard_swish_i8`, a table lookup too): `reference_ops::HardSwish` on int8, an
  int16 fixed-point computation (`_act_hard_swish_value`) with the `HardSwishPrepare`
  multipliers; its value depends only on the int8 input, so the lowering tabulates it.
* SOFTMAX (`softmax_i8`): `reference_ops::Softmax` (quantized), the gemmlowp path:
  `PreprocessSoftmaxScaling(beta, s_in, 5)` gives the input multiplier, `diff_min` comes from
  `CalculateInputRadius(5, left_shift)`; per row, `exp_on_negative_values` of each rescaled
  difference to the row max (Q5.26 -> Q0.31), summed in Q12.19, `GetReciprocal`, and
  `out = clamp(RDBPOT(recip * exp, num_bits_over_unit + 23) - 128)`. The exp values depend
  only on `max - q` (0..255), so the lowering tabulates them; the run time sums and scales.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
from llvmlite import ir as _act_ir
from numba import types
from numba.extending import intrinsic
from qcc.dialects import nn

from ..fixedpoint import (
    count_leading_zeros_u32,
    exp_on_negative_values,
    get_reciprocal,
    mbqm,
    mbqm_greater_than_one,
    njit,
    quantize_multiplier,
    quantize_multiplier_greater_than_one,
    rdbpot,
    rescale,
    round_half_away,
    srdhm,
    wrap_int32,
)
from ..plan import PlanInputError
from .int8_lowering import int8_params
from .int8_registry import DirectCall, fixed_call, runner
from .registry import int8_lowering
from .simd import AARCH64, HAS_AVX2, simd_as64, simd_lut256

# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _act_relu_loop(x, zp_in, m, sh, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """optimized_ops::ReluX (the reference registration calls it too)."""
    for i in range(out.size):
        v = zp_out + mbqm(np.int64(x[i]) - zp_in, m, sh)
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _act_lut_loop(x, lut, out):  # pragma: no cover - jitted
    """out = lut[q + 128]."""
    for i in range(out.size):
        out[i] = lut[np.int64(x[i]) + 128]


@intrinsic
def act_lut32(typingctx, xa, oa, ta):
    """32 outputs of `_act_lut_loop` as vector IR (`simd.simd_lut256`): int8 x at address xa,
    int8 out at oa, the 256-byte table at ta. Arguments are int64."""
    sig = types.void(xa, oa, ta)

    def codegen(context, builder, signature, args):
        v32 = _act_ir.VectorType(_act_ir.IntType(8), 32)
        xa, oa, ta = (simd_as64(builder, v) for v in args)
        x = builder.load(builder.inttoptr(xa, v32.as_pointer()), align=1)
        builder.store(simd_lut256(builder, ta, x), builder.inttoptr(oa, v32.as_pointer()),
                      align=1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _act_lut_shuffle(x, lut, out):  # pragma: no cover - jitted
    """`_act_lut_loop` 32 outputs a step (`act_lut32`: x86 with AVX2, aarch64), the last
    n mod 32 as that loop does; lut: int8 [256], C-contiguous."""
    n = out.size
    full = n - n % 32
    xa = np.int64(x.ctypes.data)
    oa = np.int64(out.ctypes.data)
    ta = np.int64(lut.ctypes.data)
    for i in range(0, full, 32):
        act_lut32(xa + i, oa + i, ta)
    for i in range(full, n):
        out[i] = lut[np.int64(x[i]) + 128]


LUT_SHUFFLE = HAS_AVX2 or AARCH64
"""Whether bound table-lookup steps run `_act_lut_shuffle` (x86 with AVX2: vpshufb; aarch64:
tbl / tbx), else `_act_lut_loop`; read when a step is bound (the tests bind with it off
too)."""


def _act_lut_kernel(lut):
    """(the lookup kernel, its table) for a bound step: `_act_lut_shuffle` on an int8 [256]
    copy when `LUT_SHUFFLE`, else `_act_lut_loop` on `lut` as it is."""
    if LUT_SHUFFLE and np.asarray(lut).shape == (256,):
        return _act_lut_shuffle, np.ascontiguousarray(lut, np.int8)
    return _act_lut_loop, lut


@njit(cache=True, nogil=True)
def _act_softmax_rows(x, exp_table, exp_acc_table, out):  # pragma: no cover - jitted
    """reference_ops::Softmax<int8_t, int8_t> over the rows of a 2-D [outer, depth] array.

    exp_table[d] = exp_on_negative_values(rescaled(-d)) (raw Q0.31) for d = max - q in 0..255,
    0 where -d < diff_min (those inputs neither count in the sum nor produce more than -128);
    exp_acc_table[d] = Rescale<12>(exp_table[d]) (raw Q12.19)."""
    rows, depth = x.shape
    for r in range(rows):
        mx = np.int64(-128)
        for c in range(depth):
            v = np.int64(x[r, c])
            if v > mx:
                mx = v
        total = np.int64(0)
        for c in range(depth):
            total += exp_acc_table[mx - np.int64(x[r, c])]
        total = ((total + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
        scale, bits_over_unit = get_reciprocal(total, 12)
        exponent = bits_over_unit + 31 - 8
        for c in range(depth):
            e = exp_table[mx - np.int64(x[r, c])]
            v = rdbpot(srdhm(scale, e), exponent) - 128
            if v < -128:
                v = -128
            elif v > 127:
                v = 127
            out[r, c] = v


# int16 fixed-point helpers of reference_ops::HardSwish (gemmlowp's int16 variants).


@njit(cache=True)
def _act_wrap16(x):  # pragma: no cover - jitted
    return ((np.int64(x) + 32768) & 0xFFFF) - 32768


@njit(cache=True)
def _act_srdhm16(a, b):  # pragma: no cover - jitted
    """gemmlowp SaturatingRoundingDoublingHighMul<int16_t>."""
    if a == b and a == -32768:
        return np.int64(32767)
    ab = np.int64(a) * np.int64(b)
    num = ab + (np.int64(16384) if ab >= 0 else np.int64(1 - 16384))
    q = num >> 15 if num >= 0 else -((-num) >> 15)  # C truncating division by 2^15
    return _act_wrap16(q)


@njit(cache=True)
def _act_sdhm16(a, b):  # pragma: no cover - jitted
    """reference_ops::SaturatingDoublingHighMul (int16, truncating: ARM SQDMULH)."""
    if a == b and a == -32768:
        return np.int64(32767)
    ab = np.int64(a) * np.int64(b)
    q = ab >> 15 if ab >= 0 else -((-ab) >> 15)
    return _act_wrap16(q)


@njit(cache=True)
def _act_rdbpot16(x, exponent):  # pragma: no cover - jitted
    """gemmlowp RoundingDivideByPOT<int16_t> (the mask is an int16, as Dup<int16_t> makes it)."""
    x = np.int64(x)
    mask = _act_wrap16((np.int64(1) << exponent) - 1)
    remainder = _act_wrap16(x & mask)
    threshold = _act_wrap16((mask >> 1) + (np.int64(1) if x < 0 else np.int64(0)))
    return _act_wrap16((x >> exponent) + (np.int64(1) if remainder > threshold else np.int64(0)))


@njit(cache=True)
def _act_sat_left_shift16(x, amount):  # pragma: no cover - jitted
    """reference_ops::SaturatingLeftShift(int16_t, amount)."""
    v = np.int64(x) * (np.int64(1) << amount)
    if v > 32767:
        return np.int64(32767)
    if v < -32768:
        return np.int64(-32768)
    return v


@njit(cache=True)
def _act_hard_swish_value(q, zp_in, zp_out, out_mult16, out_exp, reluish_mult16, reluish_exp):  # pragma: no cover - jitted
    """reference_ops::HardSwish (quantized) for one int8 value `q`."""
    input_value = _act_wrap16(np.int64(q) - zp_in)
    hires = _act_wrap16(input_value * 128)
    preshift_out = _act_srdhm16(hires, out_mult16)
    reluish = hires
    if reluish_exp > 0:
        reluish = _act_sat_left_shift16(reluish, reluish_exp - 1)
    reluish = _act_srdhm16(reluish, reluish_mult16)
    if reluish_exp > 0:
        reluish = _act_sat_left_shift16(reluish, np.int64(1))
    if reluish_exp < 0:
        reluish = _act_rdbpot16(reluish, -reluish_exp)
    reluish = _act_wrap16((reluish + 32768) >> 1)
    preshift = _act_sdhm16(reluish, preshift_out)
    v = _act_rdbpot16(preshift, -out_exp)
    v = _act_wrap16(v + zp_out)
    if v > 127:
        v = np.int64(127)
    if v < -128:
        v = np.int64(-128)
    return v


@runner("relu_i8", elementwise="unary")
def run_relu_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    if "lut" in params:
        _act_lut_loop(x.reshape(-1), params["lut"], out.reshape(-1))
        return [out]
    _act_relu_loop(
        x.reshape(-1), params["zp_in"], params["m"], params["shift"], params["zp_out"],
        params["lo"], params["hi"], out.reshape(-1),
    )
    return [out]


def _act_bind_lut(params):
    """Plan-load binding of `run_relu_i8` (see `PlanRunner`): the table lookup without
    per-call parameter decoding."""
    if "lut" not in params:
        return run_relu_i8
    return _act_bound_lut(params, run_relu_i8)


def _act_bound_lut(params, fallback):
    """A table lookup step bound (`params["lut"]` decoded once); `fallback(inputs, params)`
    runs a non-contiguous input."""
    lut = params["lut"]
    kernel, table = _act_lut_kernel(lut)
    direct = DirectCall(kernel)
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            return fallback(inputs, params)
        out = empty(x.shape, i8)
        direct.call(x.ravel(), table, out.ravel())
        return [out]

    run.into = _act_flat_into(kernel, (table,))
    run.numpy_form = lambda inputs, _params: [_act_lut_numpy(inputs[0], lut)]
    return run


def _act_lut_numpy(x, lut):
    """`_act_lut_loop` in NumPy (see `plan._Units.deferred`): lut[q + 128], as int8."""
    return np.asarray(lut)[np.asarray(x, np.int64) + 128].astype(np.int8)


run_relu_i8.bind = _act_bind_lut


@runner("lut_i8", "logistic_i8", "tanh_i8", "hard_swish_i8", "gelu_i8", elementwise="unary")
def run_lut_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _act_lut_loop(x.reshape(-1), params["lut"], out.reshape(-1))
    return [out]


run_lut_i8.bind = lambda params: _act_bound_lut(params, run_lut_i8)


@njit(cache=True, nogil=True)
def _act_lut_loop_from(x, lut, lowest, out):  # pragma: no cover - jitted
    """out = lut[q + 128]; returns False (at the first offender) if some q < lowest."""
    for i in range(out.size):
        q = np.int64(x[i])
        if q < lowest:
            return False
        out[i] = lut[q + 128]
    return True


@runner("rsqrt_i8")
def run_rsqrt_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    if not _act_lut_loop_from(x.reshape(-1), params["lut"], params["zp_in"], out.reshape(-1)):
        raise PlanInputError(
            f"RSQRT: an int8 input below the zero point {params['zp_in']} (a negative value); "
            "TFLite fails there too ('Rsqrt is only defined for positive values')"
        )
    return [out]


@njit(cache=True, nogil=True)
def _act_prelu_chan(x, ec, zx, off, zt, lo, hi, o1):  # pragma: no cover - jitted
    """o1 = max(x, clamp(zt + R((x − zx)·ec[k]), lo, hi)) per element, k the channel (last
    axis, ec.size channels), in float32, R(y) = sign(y)·floor(|y| + off) (MBQM's rounding
    as `fast_mbqm_params` models it): a PRELU decomposed as MUL by a per-channel alpha then
    MAXIMUM, vectorized. Exact only where the plan builder checked it: it runs this kernel on
    every (channel, stored value) pair and compares with the chain's own table
    (`qcc.backends.numba`), so no input can reach a value it did not verify. x, o1: flat
    (1-D) int8 (one compiled kernel whatever the tensor rank)."""
    c = ec.size
    rows = x.size // c
    zxf = np.float32(zx)
    ztf = np.float32(zt)
    lof = np.float32(lo)
    hif = np.float32(hi)
    of = np.float32(off)
    for r in range(rows):
        base = np.uint64(r * c)
        for k in range(c):
            i = base + np.uint64(k)
            xv = np.float32(x[i])
            y = (xv - zxf) * ec[k]
            q = np.float32(np.copysign(np.floor(abs(y) + of), y)) + ztf
            q = q if q > lof else lof
            q = q if q < hif else hif
            q = q if q > xv else xv
            o1[i] = np.int32(q)


@runner("prelu_chan_i8")
def run_prelu_chan_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _act_prelu_chan(x.reshape(-1), params["ec"], params["zx"], params["off"], params["zt"],
                    params["lo"], params["hi"], out.reshape(-1))
    return [out]


def _act_bind_prelu_chan(params):
    """Plan-load binding of `run_prelu_chan_i8`: the kernel's arguments decoded once."""
    args = (params["ec"], int(params["zx"]), float(params["off"]), int(params["zt"]),
            int(params["lo"]), int(params["hi"]))
    direct = DirectCall(_act_prelu_chan)
    empty, i8 = np.empty, np.int8

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        out = empty(x.shape, i8)
        direct.call(x.ravel(), *args, out.ravel())
        return [out]

    run.into = _act_flat_into(_act_prelu_chan, args)
    run.numpy_form = lambda inputs, _params: [_act_prelu_chan_numpy(inputs[0], *args)]
    return run


def _act_prelu_chan_numpy(x, ec, zx, off, zt, lo, hi):
    """`_act_prelu_chan` in NumPy (`plan._Units.deferred`): the same float32 operations in
    the same order (no contraction in either), so the same bits."""
    x = np.asarray(x)
    ec = np.asarray(ec, np.float32)
    xv = x.reshape(-1, ec.size).astype(np.float32)
    y = (xv - np.float32(zx)) * ec
    q = np.copysign(np.floor(np.abs(y) + np.float32(off)), y) + np.float32(zt)
    q = np.where(q > np.float32(lo), q, np.float32(lo))
    q = np.where(q < np.float32(hi), q, np.float32(hi))
    q = np.where(q > xv, q, xv)
    return q.astype(np.int32).astype(np.int8).reshape(x.shape)


def _act_flat_into(kernel, args):
    """The ``into`` (fixed buffers, `plan._arena_line`) of a bound unary int8 step that runs
    ``kernel(x.ravel(), *args, out.ravel())``."""
    def into(ins, outs):
        x, out = ins[0], outs[0]
        if (x.dtype != np.int8 or out.dtype != np.int8 or x.shape != out.shape
                or not (x.flags.c_contiguous and out.flags.c_contiguous)):
            return None
        return fixed_call(kernel, (x.ravel(), *args, out.ravel()))

    return into


run_prelu_chan_i8.bind = _act_bind_prelu_chan


@runner("softmax_i8")
def run_softmax_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    depth = x.shape[-1] if x.ndim else 1
    out = np.empty(x.shape, np.int8)
    _act_softmax_rows(
        x.reshape(-1, depth), params["exp_table"], params["exp_acc_table"], out.reshape(-1, depth)
    )
    return [out]


# ---------------------------------------------------------------------------------------------
# Compile time
# ---------------------------------------------------------------------------------------------





@int8_lowering(nn.ReluOp, nn.Relu6Op, nn.ReluN1To1Op)
def lower_relu(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    f32 = np.float32
    m, sh = quantize_multiplier(float(f32(si) / f32(so)))
    act_min, act_max = {
        nn.ReluOp: (0.0, math.inf), nn.Relu6Op: (0.0, 6.0), nn.ReluN1To1Op: (-1.0, 1.0)
    }[type(op)]
    lo = max(-128, zpo + int(round_half_away(f32(act_min) / f32(so))))
    hi = 127 if math.isinf(act_max) else min(127, zpo + int(round_half_away(f32(act_max) / f32(so))))
    # every int8 input tabulated with the exact loop: the runner looks the table up
    lut = np.empty(256, np.int8)
    _act_relu_loop(np.arange(-128, 128, dtype=np.int8), zpi, m, sh, zpo, lo, hi, lut)
    return "relu_i8", {
        "zp_in": zpi, "m": m, "shift": sh, "zp_out": zpo, "lo": lo, "hi": hi, "lut": lut,
    }


def _act_libm():
    """The C math library's expf/tanhf (what LiteRT's std::exp / std::tanh on float call), or
    None when it cannot be loaded (numpy's float32 functions are used instead)."""
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        libm = ctypes.CDLL(name)
        for fn in (libm.expf, libm.tanhf):
            fn.restype = ctypes.c_float
            fn.argtypes = [ctypes.c_float]
        return libm
    except (OSError, AttributeError):
        return None


def _act_float_lut(si, zpi, so, zpo, kind):
    """LUTPopulate<int8_t> (`internal/common.h`) for logistic / tanh, in float32."""
    f32 = np.float32
    q = np.arange(-128, 128, dtype=np.int64)
    x = (f32(si) * (q - zpi).astype(f32)).astype(f32)
    libm = _act_libm()
    if kind == "logistic":
        e = (
            np.array([libm.expf(float(v)) for v in -x], f32)
            if libm is not None
            else np.exp(-x).astype(f32)
        )
        y = (f32(1.0) / (f32(1.0) + e)).astype(f32)
    else:
        y = np.array([libm.tanhf(float(v)) for v in x], f32) if libm is not None else np.tanh(x)
    inverse_scale = f32(1.0) / f32(so)
    rescaled = round_half_away((y * inverse_scale).astype(f32))
    quantized = rescaled.astype(np.int64) + zpo
    return np.clip(quantized, -128, 127).astype(np.int8)


@int8_lowering(nn.LogisticOp, nn.TanhOp)
def lower_logistic_tanh(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    logistic = isinstance(op, nn.LogisticOp)
    if logistic and so != 1.0 / 256:
        return None  # SigmoidPrepare requires the output scale 1/256
    kind = "logistic" if logistic else "tanh"
    return f"{kind}_i8", {"lut": _act_float_lut(si, zpi, so, zpo, kind)}


def _act_libm_function(name: str):
    """The C math library's float function `name` (erfcf, tanhf...), or None."""
    libm = ctypes.util.find_library("m")
    if libm is None:
        return None
    try:
        fn = getattr(ctypes.CDLL(libm), name)
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


def _act_gelu_lut(si, zpi, so, zpo, approximate):
    """LUTPopulate<int8_t> (`internal/common.h`) of GeluTransform[Approximate]
    (`internal/reference/gelu.h`), every step a float32 operation as the C++ compiles it."""
    f32 = np.float32
    erfc = _act_libm_function("erfcf") or (lambda v: f32(math.erfc(float(v))))
    tanh = _act_libm_function("tanhf") or (lambda v: f32(math.tanh(float(v))))
    minus_sqrt1_2 = f32(-0.7071067811865476)  # static_cast<float>(-M_SQRT1_2)
    sqrt_2_over_pi = f32(1.1283791670955126 * 0.7071067811865476)  # M_2_SQRTPI * M_SQRT1_2
    half, one, c = f32(0.5), f32(1.0), f32(0.044715)
    inverse_scale = f32(1.0) / f32(so)
    lut = np.empty(256, np.int8)
    for q in range(-128, 128):
        x = f32(si) * f32(q - zpi)
        if approximate:
            cube = f32(f32(f32(c * x) * x) * x)
            y = f32(half * x) * f32(one + f32(tanh(float(f32(sqrt_2_over_pi * f32(x + cube))))))
        else:
            y = f32(half * x) * f32(erfc(float(f32(x * minus_sqrt1_2))))
        rescaled = round_half_away(f32(f32(y) * inverse_scale))
        lut[q + 128] = min(max(int(rescaled) + zpo, -128), 127)
    return lut


@int8_lowering(nn.GeluOp)
def lower_gelu(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    approximate = bool(op.approximate.value.data)
    return "gelu_i8", {"lut": _act_gelu_lut(si, zpi, so, zpo, approximate)}


def _act_inv_sqrt_multiplier_exp(value: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1) (`internal/common.h`):
    1 / sqrt(value) as (multiplier, shift), by five Newton-Raphson steps in gemmlowp's
    FixedPoint<int32, 3> (raw int32 arithmetic: SRDHM products, saturating rescales)."""
    if value <= 1:
        return (1 << 31) - 1, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    left_shift_bit_pairs = (int(count_leading_zeros_u32(value)) - 1) // 2 - 1
    shift -= left_shift_bit_pairs
    value <<= 2 * left_shift_bit_pairs
    x_in = value >> 1  # F3
    half_input = int(rdbpot(x_in, 1))  # SaturatingRoundingMultiplyByPOT<-1>
    half_three = (1 << 28) + (1 << 27)  # F3 1.5
    x = 1 << 28  # F3 one
    for _ in range(5):
        x3 = int(rescale(srdhm(srdhm(x, x), x), 9, 3))  # F3 * F3 * F3 -> F9 -> F3
        x = int(rescale(wrap_int32(srdhm(half_three, x) - srdhm(half_input, x3)), 6, 3))
    x = int(srdhm(x, 1518500250))  # times F0 sqrt(2) / 2
    if shift < 0:
        x = int(wrap_int32(x << -shift))
        shift = 0
    return x, -shift


def _act_rsqrt_lut(si, zpi, so, zpo):
    """RsqrtEvalQuantizedInt8's value for every int8 input q >= zpi (0 below: never read)."""
    f32 = np.float32
    m, shift = quantize_multiplier(1.0 / float(f32(np.sqrt(f32(si))) * f32(so)))
    lut = np.zeros(256, np.int8)
    for q in range(zpi, 128):
        value = q - zpi
        if value == 0:
            lut[q + 128] = 127
            continue
        m_v, shift_v = _act_inv_sqrt_multiplier_exp(value)
        data = int(mbqm(1, m_v, shift_v + 20))
        out = int(mbqm(data, m, shift - 20)) + zpo
        lut[q + 128] = min(max(out, -128), 127)
    return lut


@int8_lowering(nn.RsqrtOp)
def lower_rsqrt(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    return "rsqrt_i8", {"lut": _act_rsqrt_lut(si, zpi, so, zpo), "zp_in": zpi}


def _act_downscale_int16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m32 >= (1 << 31) - 1 - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def _act_hard_swish_params(si: float, zpi: int, so: float, zpo: int) -> dict[str, int] | None:
    """HardSwishPrepare's multipliers (float32 arithmetic), or None when TFLite's Prepare
    rejects the scales (output multiplier exponent > 0)."""
    f32 = np.float32
    hires_input_scale = f32(1.0 / 128.0) * f32(si)
    reluish_scale = f32(3.0) / f32(32768.0)
    output_multiplier = hires_input_scale / f32(so)
    m_out, out_exp = quantize_multiplier(float(output_multiplier))
    if out_exp > 0:
        return None
    reluish_multiplier = hires_input_scale / reluish_scale
    m_rel, rel_exp = quantize_multiplier(float(reluish_multiplier))
    return {
        "zp_in": zpi,
        "zp_out": zpo,
        "out_mult16": _act_downscale_int16(m_out),
        "out_exp": out_exp,
        "reluish_mult16": _act_downscale_int16(m_rel),
        "reluish_exp": rel_exp,
    }


@int8_lowering(nn.HardSwishOp)
def lower_hard_swish(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    p = _act_hard_swish_params(si, zpi, so, zpo)
    if p is None:
        return None
    lut = np.array(
        [
            _act_hard_swish_value(
                q, p["zp_in"], p["zp_out"], p["out_mult16"], p["out_exp"],
                p["reluish_mult16"], p["reluish_exp"],
            )
            for q in range(-128, 128)
        ],
        np.int8,
    )
    return "hard_swish_i8", {"lut": lut, **p}


def _act_softmax_tables(beta: float, si: float) -> tuple[np.ndarray, np.ndarray]:
    """(exp_table, exp_acc_table) int32[256] of the reference int8 softmax, indexed by
    `max - q` (see `_act_softmax_rows`)."""
    scaled_diff_integer_bits = 5
    # PreprocessSoftmaxScaling (double): min(beta * s_in * 2^26, 2^31 - 1), GreaterThanOne.
    real = min(float(beta) * float(si) * float(1 << (31 - scaled_diff_integer_bits)), float((1 << 31) - 1))
    m, left_shift = quantize_multiplier_greater_than_one(real)
    # CalculateInputRadius(5, left_shift, 31), then diff_min = -1.0 * radius (to int).
    radius = math.floor(
        1.0 * ((1 << scaled_diff_integer_bits) - 1)
        * float(1 << (31 - scaled_diff_integer_bits)) / float(1 << left_shift)
    )
    diff_min = int(-1.0 * radius)
    exp_table = np.zeros(256, np.int32)
    exp_acc_table = np.zeros(256, np.int32)
    for d in range(256):
        diff = -d
        if diff < diff_min:
            continue
        rescaled = mbqm_greater_than_one(diff, m, left_shift)
        e = exp_on_negative_values(rescaled, scaled_diff_integer_bits)
        exp_table[d] = e
        exp_acc_table[d] = rdbpot(e, 12)  # Rescale<12> from Q0.31: exponent -12
    return exp_table, exp_acc_table


@int8_lowering(nn.SoftmaxOp)
def lower_softmax(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, _zpi), (so, zpo) = qp
    if zpo != -128 or abs(so - 1.0 / 256) > 0.001 / 256:
        return None  # SoftmaxPrepare requires (1/256, -128) for int8
    beta = float(np.float32(op.beta.value.data))
    exp_table, exp_acc_table = _act_softmax_tables(beta, si)
    return "softmax_i8", {"exp_table": exp_table, "exp_acc_table": exp_acc_table}
