"""int16 activation (TFLite "16x8") kernels, bit-exact with LiteRT's reference kernels
(BUILTIN_REF) for the same .tflite (docs/ir.md, "int16 activations (16x8) and mixed
precision"). int16 activations are symmetric per tensor (zero point 0), weights int8,
biases int64. Lowerings are registered with ``@int16_lowering`` (`registry.INT16_LOWERINGS`), runners
with ``@runner`` like the int8 families.

  * QUANTIZE   f32 -> i16 `AffineQuantize` (divide and round in float32); i8 <-> i16 and
    i16 -> i16 `Requantize`: clamp(MBQM(q − zp_in, QuantizeMultiplier(double(s_in) /
    double(s_out))) + zp_out); DEQUANTIZE i16 -> f32 float(double(s)·(q − zp)).
  * CONV_2D / DEPTHWISE_CONV_2D `reference_integer_ops` 16x8 kernels:
    acc = Σ w·x (int64) + bias (int64), out = clamp(MBQM64(acc, m_c, sh_c)) with the
    int64-input `MultiplyByQuantizedMultiplier` (the multiplier rounded to 16 bits:
    (x·((m + 2^15) >> 16) + 2^(14 − sh)) >> (15 − sh)). The conv and FC accumulators are
    float64 BLAS matmuls, exact while Σ|w|·32768 < 2^53 (checked at compile time).
    FULLY_CONNECTED (per channel or per tensor) requantizes in double, as its int8 kernel:
    clamp(round_half_away(double(acc)·eff_c)), eff_c = double(s_in)·double(s_w[c]) /
    double(s_out).
  * not (yet) here, refused by the backend: TRANSPOSE_CONV, BATCH_MATMUL, GELU, RSQRT.
  * ADD / SUB the general-scale path (`pot_scale_int16 = false`): as int8 with left shift 15.
  * MUL `MulElementwise`: MBQM((x1 − zp1)(x2 − zp2), m, sh), multiplier in float32.
  * AVERAGE_POOL_2D / MAX_POOL_2D, MEAN (`QuantizedMeanOrSum`), MAXIMUM / MINIMUM.
  * RELU / RELU6 / RELU_N1_TO_1, LEAKY_RELU, LOGISTIC, TANH: one 65536-entry table per
    op, made at compile time by running the reference arithmetic on every int16 value
    (LOGISTIC / TANH: the `sigmoid_table_uint16` interpolation of
    `reference_integer_ops::Logistic` / `Tanh`, input scaled to 1/(3·4096)).
  * SOFTMAX `reference_ops::SoftmaxInt16`: exp and 1/(1 + x) tables of 513 entries
    (`LUTPopulate<int16_t>`, float32, expf from the C library), interpolated
    (`generic_int16_table_lookup`).
  * PRELU (int16 input, int8 alpha): `reference_ops::BroadcastPrelu4DSlow`.
  * RESIZE_BILINEAR `ResizeBilinearInteger` (int16 clamp).
  * data movement (RESHAPE, SQUEEZE, TRANSPOSE, CONCATENATION, SPLIT, SLICE,
    STRIDED_SLICE, GATHER, PAD, RESIZE_NEAREST_NEIGHBOR): the int8 lowerings and runners,
    which do not depend on the element type.
"""

from __future__ import annotations

import math

import numpy as np
from qcc.dialects import nn, quant

from ..fixedpoint import (
    add_sub_params,
    dequantize_i8,
    mbqm,
    mbqm64,
    njit,
    quantize_f32_int,
    quantize_multiplier,
    requantize_int,
    round_half_away,
    wrap_int32,
)
from .common import ints, same_padding
from .int8_elementwise import _ew_add_sub_loop, _ew_broadcast_flat, _ew_mul_loop, _ew_prelu_loop
from .int8_lowering import (
    activation_bounds,
    axis_qparams,
    constant_array,
    qparams,
    quant_type,
    shape,
)
from .int8_pooling import _pool_mean, _pool_nhwc, _pool_reduce_layout, _pool_reduced
from .int8_registry import runner
from .int8_shape import _shp_bilinear_axis, _shp_bool, _shp_resize_bilinear_loop
from .registry import INT8_LOWERINGS, int16_lowering
from .simd import simd_empty, simd_max, simd_min

I16_SIGMOID_TABLE = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], np.int64)
"""TFLite's `sigmoid_table_uint16` (internal/common.h): sigmoid(i/24) in 0.16 fixed point,
the table of the int16 LOGISTIC and TANH kernels."""

# ---------------------------------------------------------------------------------------------
# Run time: Numba loops


@njit(cache=True, nogil=True)
def _i16_im2col_rows(x, cols, r0, r1, geom):  # pragma: no cover - jitted
    """cols[r − r0, (ky·KW + kx)·C + c] = x[b, iy, ix, c] for output rows r0 <= r < r1 (0 in
    the padding). geom: KH, KW, stride h/w, dilation h/w, pad top/left, OH, OW."""
    kh, kw, sh, sw, dh, dw, pt, pl, oh, ow = (
        geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6], geom[7], geom[8], geom[9],
    )
    _, h, wd, c = x.shape
    for r in range(r0, r1):
        b = r // (oh * ow)
        rem = r - b * oh * ow
        oy = rem // ow
        ox = rem - oy * ow
        row = cols[r - r0]
        k = 0
        for ky in range(kh):
            iy = oy * sh - pt + ky * dh
            for kx in range(kw):
                ix = ox * sw - pl + kx * dw
                if iy < 0 or iy >= h or ix < 0 or ix >= wd:
                    for j in range(c):
                        row[k + j] = 0.0
                else:
                    px = x[b, iy, ix]
                    for j in range(c):
                        row[k + j] = px[j]
                k += c


@njit(cache=True, nogil=True)
def _i16_requant_acc(acc, bias, m, shift, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(MBQM64(int64(acc[r, c]) + bias[c], m[c], shift[c]), lo, hi)."""
    rows, cols = acc.shape
    for r in range(rows):
        for c in range(cols):
            v = mbqm64(np.int64(acc[r, c]) + bias[c], m[c], shift[c])
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[r, c] = v


@njit(cache=True, nogil=True)
def _i16_fc_requant(acc, bias, eff, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(round_half_away(double(int64(acc[r, c]) + bias[c]) · eff[c]), lo, hi):
    the float requantization of the reference FULLY_CONNECTED."""
    rows, cols = acc.shape
    for r in range(rows):
        for c in range(cols):
            p = np.float64(np.int64(acc[r, c]) + bias[c]) * eff[c]
            mag = abs(p)
            fl = np.floor(mag)
            q = fl + 1.0 if mag - fl >= 0.5 else fl
            if p < 0:
                q = -q
            q = simd_min(simd_max(q, -1e9), 1e9)
            v = np.int64(q)
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[r, c] = v


@njit(cache=True, nogil=True)
def _i16_depthwise(x, w, bias, m, shift, geom, lo, hi, out):  # pragma: no cover - jitted
    """reference_integer_ops::DepthwiseConvPerChannel (int16 input, int8 filter, int64 bias).
    w [KH, KW, OC]; geom: stride h/w, dilation h/w, pad top/left, depth multiplier."""
    sh, sw, dh, dw, pt, pl, mult = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6]
    n, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[0], w.shape[1]
    acc = simd_empty(oc, np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for k in range(oc):
                    acc[k] = 0
                for ky in range(kh):
                    iy = oy * sh - pt + ky * dh
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - pl + kx * dw
                        if ix < 0 or ix >= wd:
                            continue
                        px = x[b, iy, ix]
                        wk = w[ky, kx]
                        for ic in range(c):
                            xv = np.int64(px[ic])
                            for j in range(mult):
                                k = ic * mult + j
                                acc[k] += xv * np.int64(wk[k])
                o = out[b, oy, ox]
                for k in range(oc):
                    v = mbqm64(acc[k] + bias[k], m[k], shift[k])
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                    o[k] = v


@njit(cache=True, nogil=True)
def _i16_lut(x, lut, out):  # pragma: no cover - jitted
    """out[i] = lut[x[i] + 32768]."""
    for i in range(x.size):
        out[i] = lut[np.int64(x[i]) + 32768]


@njit(cache=True)
def _i16_table_lookup(value, lut):  # pragma: no cover - jitted
    """generic_int16_table_lookup: 512 segments, linear interpolation in Q0.7."""
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = np.int64(lut[index])
    slope = np.int64(lut[index + 1]) - base
    return base + ((slope * offset + 64) >> 7)


@njit(cache=True, nogil=True)
def _i16_softmax(x, m, sh, exp_lut, inv_lut, out):  # pragma: no cover - jitted
    """reference_ops::SoftmaxInt16 over the rows of x [R, D]."""
    rows, depth = x.shape
    e = simd_empty(depth, np.int64)
    for r in range(rows):
        mx = -32768
        for j in range(depth):
            if x[r, j] > mx:
                mx = x[r, j]
        total = np.int64(0)
        for j in range(depth):
            d = np.int64(x[r, j]) - mx
            v = mbqm(d, m, sh) + 32767
            v = simd_min(simd_max(v, -32768), 32767)
            e[j] = _i16_table_lookup(v, exp_lut)
            total += e[j]
        total = wrap_int32(total)
        # CountLeadingZeros(uint32 total)
        u = total & 0xFFFFFFFF
        clz = 32
        while u != 0:
            u >>= 1
            clz -= 1
        shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
        ss = shifted - ((1 << 15) + (1 << 16))
        ss = simd_min(simd_max(ss, -32768), 32767)
        recip = _i16_table_lookup(ss, inv_lut)
        right = 31 - clz
        rnd = np.int64(1) << (right - 1)
        for j in range(depth):
            v = wrap_int32((e[j] * recip + rnd) >> right)
            out[r, j] = simd_min(simd_max(v, 0), 32767)


def i16_logistic_tanh_table(multiplier: int, left_shift: int, tanh: bool) -> np.ndarray:
    """reference_integer_ops::Logistic / Tanh (int16) on every int16 input, as a table
    indexed by q + 32768 (numpy int64 arithmetic, exact)."""
    q = np.arange(-32768, 32768, dtype=np.int64)
    if multiplier == 0:  # power-of-two input scale
        multiplier, left_shift = 3 << left_shift, 0
    rnd = (1 << (left_shift - 1)) if left_shift > 0 else 0
    v = (q * multiplier + rnd) >> left_shift
    v = ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # int32
    a = np.abs(v)
    table = I16_SIGMOID_TABLE
    if not tanh:
        uh = a >> 9
        ok = uh < 255
        ui = np.minimum(uh, 254)
        ua, ub = table[ui], table[ui + 1]
        ut = a & 0x1FF
        res = np.where(ok, (ua << 9) + ut * (ub - ua), 0x7FFF << 10)
        res = np.where(v >= 0, res + (1 << 9), (1 << 25) - res + (1 << 9) - 1)
        res &= 0xFFFFFFFF  # uint32
        out = res >> 10
    else:
        uh = a >> 8
        ok = uh < 255
        ui = np.minimum(uh, 254)
        ua, ub = table[ui], table[ui + 1]
        ut = a & 0xFF
        res = np.where(ok, (ua << 8) + ut * (ub - ua), 0xFFFF << 8)
        res = np.where(v >= 0, res - (1 << 23) + (1 << 7), -res + (1 << 23) + (1 << 7) - 1)
        res = ((res + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # int32
        out = res >> 8
    return (((out + 32768) & 0xFFFF) - 32768).astype(np.int16)  # static_cast<int16_t>


# ---------------------------------------------------------------------------------------------
# Runners


@runner("quantize_f32_i16")
def run_quantize_f32_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0], dtype=np.float32)
    out = np.empty(x.shape, np.int16)
    quantize_f32_int(x.reshape(-1), np.float32(params["scale"]), params["zp"], -32768, 32767,
                     out.reshape(-1))
    return [out]


@runner("requantize_i16")
def run_requantize_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.dtype(params["dtype"]))
    requantize_int(x.reshape(-1), params["m"], params["shift"], params["zp_in"],
                   params["zp_out"], params["lo"], params["hi"], out.reshape(-1))
    return [out]


@runner("dequantize_i16")
def run_dequantize_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.float32)
    dequantize_i8(x.reshape(-1), params["scale"], params["zp"], out.reshape(-1))
    return [out]


@runner("conv2d_i16")
def run_conv2d_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    w = params["w"]  # [G, K, O/G] float64
    geom = params["geom"]
    kh, kw, oh, ow = int(geom[0]), int(geom[1]), int(geom[8]), int(geom[9])
    n, c = x.shape[0], x.shape[3]
    rows = n * oh * ow
    groups, k, og = w.shape
    o = groups * og
    out = np.empty((rows, o), np.int16)
    tile = max(1, min(rows, 1 << 20 // max(kh * kw * c, 1)))
    cols = np.empty((tile, kh * kw * c), np.float64)
    acc = np.empty((tile, o), np.float64)
    ci = c // groups
    for r0 in range(0, rows, tile):
        r1 = min(rows, r0 + tile)
        nr = r1 - r0
        cb = cols[:nr]
        _i16_im2col_rows(x, cb, r0, r1, geom)
        ab = acc[:nr]
        if groups == 1:
            np.matmul(cb, w[0], out=ab)
        else:
            c3 = cb.reshape(nr, kh * kw, c)
            for g in range(groups):
                part = np.ascontiguousarray(c3[:, :, g * ci:(g + 1) * ci]).reshape(nr, -1)
                np.matmul(part, w[g], out=ab[:, g * og:(g + 1) * og])
        _i16_requant_acc(ab, params["bias"], params["m"], params["shift"], params["lo"],
                         params["hi"], out[r0:r1])
    return [out.reshape(n, oh, ow, o)]


@runner("depthwise_conv2d_i16")
def run_depthwise_conv2d_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(tuple(params["out_shape"]), np.int16)
    _i16_depthwise(x, params["w"], params["bias"], params["m"], params["shift"],
                   params["geom"], params["lo"], params["hi"], out)
    return [out]


@runner("fully_connected_i16")
def run_fully_connected_i16(inputs, params):
    wt = params["w"]  # [D, U] float64
    d = wt.shape[0]
    x = np.ascontiguousarray(inputs[0]).reshape(-1, d).astype(np.float64)
    acc = x @ wt
    out = np.empty(acc.shape, np.int16)
    _i16_fc_requant(acc, params["bias"], params["eff"], params["lo"], params["hi"], out)
    return [out.reshape(tuple(params["out_shape"]))]


@runner("add_i16", "sub_i16")
def run_add_sub_i16(inputs, params):
    out_shape = tuple(params["out_shape"])
    out = np.empty(out_shape, np.int16)
    _ew_add_sub_loop(
        _ew_broadcast_flat(inputs[0], out_shape), _ew_broadcast_flat(inputs[1], out_shape),
        params["sign"], params["zp1"], params["zp2"], params["left_shift"], params["m1"],
        params["shift1"], params["m2"], params["shift2"], params["m_out"], params["shift_out"],
        params["zp_out"], params["lo"], params["hi"], out.reshape(-1),
    )
    return [out]


@runner("mul_i16")
def run_mul_i16(inputs, params):
    out_shape = tuple(params["out_shape"])
    out = np.empty(out_shape, np.int16)
    _ew_mul_loop(
        _ew_broadcast_flat(inputs[0], out_shape), _ew_broadcast_flat(inputs[1], out_shape),
        params["zp1"], params["zp2"], params["m"], params["shift"], params["zp_out"],
        params["lo"], params["hi"], out.reshape(-1),
    )
    return [out]


@runner("maximum_i16", "minimum_i16")
def run_max_min_i16(inputs, params):
    out = np.empty(tuple(params["out_shape"]), np.int16)
    if params["is_max"]:
        np.maximum(inputs[0], inputs[1], out=out)
    else:
        np.minimum(inputs[0], inputs[1], out=out)
    return [out]


@runner("pool2d_i16")
def run_pool2d_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(tuple(params["out_shape"]), np.int16)
    _pool_nhwc(x, out, params, -32768)
    return [out]


@runner("mean_i16")
def run_mean_i16(inputs, params):
    out = np.empty(tuple(params["out_shape"]), np.int16)
    _pool_mean(_pool_reduced(inputs[0], params), np.int64(params["reduced"]), params["zp_in"],
               params["m"], params["shift"], params["zp_out"], params["lo"], params["hi"],
               out.reshape(-1))
    return [out]


@runner("lut_i16")
def run_lut_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int16)
    _i16_lut(x.reshape(-1), params["lut"], out.reshape(-1))
    return [out]


@runner("softmax_i16")
def run_softmax_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    d = x.shape[-1] if x.ndim else 1
    out = np.empty(x.shape, np.int16)
    _i16_softmax(x.reshape(-1, d), params["m"], params["shift"], params["exp_lut"],
                 params["inv_lut"], out.reshape(-1, d))
    return [out]


@runner("prelu_i16")
def run_prelu_i16(inputs, params):
    out_shape = tuple(params["out_shape"])
    x = _ew_broadcast_flat(inputs[0], out_shape)
    alpha = params["alpha"] if "alpha" in params else inputs[1]
    alpha = _ew_broadcast_flat(alpha, out_shape)
    out = np.empty(out_shape, np.int16)
    _ew_prelu_loop(x, alpha, params["zp_in"], params["zp_alpha"], params["m1"], params["shift1"],
                   params["m2"], params["shift2"], params["zp_out"], -32768, 32767, out.reshape(-1))
    return [out]


@runner("resize_bilinear_i16")
def run_resize_bilinear_i16(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(tuple(params["out_shape"]), np.int16)
    _shp_resize_bilinear_loop(x, params["ys"], params["y0"], params["y1"], params["xs"],
                              params["x0"], params["x1"], -32768, 32767, out)
    return [out]


# ---------------------------------------------------------------------------------------------
# Lowerings (compile time)


def _i16_is(v, bits: int, per_axis: bool = False) -> bool:
    """`v` is a signed `bits`-wide quantized tensor, per tensor (or per axis if allowed)."""
    q = quant_type(v)
    return (q is not None and q.storage_bits == bits and q.is_signed
            and (per_axis or getattr(q, "axis", None) is None))


def _i16_acts(*values) -> bool:
    """Every value is a per-tensor int16 tensor with zero point 0."""
    return all(_i16_is(v, 16) and qparams(v)[1] == 0 for v in values)


def _i16_range(v) -> tuple[int, int]:
    q = quant_type(v)
    return int(q.storage_min), int(q.storage_max)


@int16_lowering(quant.QuantizeCastOp)
def lower_qcast_i16(op):
    src, dst = op.operands[0], op.results[0]
    if not (_i16_is(dst, 16) or _i16_is(dst, 8)):
        return None
    scale, zp = qparams(dst)
    if quant_type(src) is None:
        if str(src.type.get_element_type()) != "f32" or not _i16_is(dst, 16):
            return None
        return "quantize_f32_i16", {"scale": scale, "zp": zp}
    if not (_i16_is(src, 16) or _i16_is(src, 8)):
        return None
    s_in, zp_in = qparams(src)
    m, sh = quantize_multiplier(s_in / scale)
    lo, hi = (-32768, 32767) if _i16_is(dst, 16) else (-128, 127)
    return "requantize_i16", {
        "m": m, "shift": sh, "zp_in": zp_in, "zp_out": zp, "lo": lo, "hi": hi,
        "dtype": "int16" if _i16_is(dst, 16) else "int8",
    }


@int16_lowering(quant.DequantizeCastOp)
def lower_dcast_i16(op):
    src = op.operands[0]
    if not _i16_is(src, 16) or str(op.results[0].type.get_element_type()) != "f32":
        return None
    scale, zp = qparams(src)
    return "dequantize_i16", {"scale": scale, "zp": zp}


def _i16_conv_quant(op, channels: int):
    """(filter int8, bias int64 [C], m, shift per channel, lo, hi) of a 16x8 convolution,
    or None."""
    if not (_i16_acts(op.input, op.output) and _i16_is(op.filter, 8, per_axis=True)):
        return None
    filt = constant_array(op.filter)
    if filt is None:
        return None
    if op.bias is None:
        bias = np.zeros(channels, np.int64)
    else:
        b = constant_array(op.bias)
        q = quant_type(op.bias)
        if b is None or q is None or q.storage_bits not in (32, 64):
            return None
        bias = np.ascontiguousarray(b, dtype=np.int64).reshape(channels)
    s_in, _ = qparams(op.input)
    s_out, _ = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (channels,))
    ms, shs = [], []
    for s in s_w.tolist():
        m, sh = quantize_multiplier(float(s_in) * float(s) / float(s_out))
        ms.append(m)
        shs.append(sh)
    lo, hi = activation_bounds(op)
    return (filt, bias, np.array(ms, np.int64), np.array(shs, np.int64), int(lo), int(hi))


def _i16_exact(w_kc: np.ndarray) -> bool:
    """float64 accumulation of Σ x·w[k, c] is exact (every partial sum below 2^53)."""
    bound = int(np.abs(w_kc.astype(np.int64)).sum(axis=0).max(initial=0)) * 32768
    return bound < (1 << 53)


@int16_lowering(nn.Conv2DOp)
def lower_conv2d_i16(op):
    n, h, w, c = shape(op.input)
    _, oh, ow, o = shape(op.output)
    q = _i16_conv_quant(op, o)
    if q is None:
        return None
    filt, bias, m, shift, lo, hi = q
    _, kh, kw, ci = filt.shape
    groups = c // ci
    og = o // groups
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    w_kc = filt.astype(np.int64).transpose(1, 2, 3, 0).reshape(kh * kw * ci, o)
    if not _i16_exact(w_kc):
        return None
    packed = np.stack([np.ascontiguousarray(w_kc[:, g * og:(g + 1) * og], dtype=np.float64)
                       for g in range(groups)])
    return "conv2d_i16", {
        "w": packed,
        "geom": np.array([kh, kw, sh, sw, dh, dw, pt, pl, oh, ow], np.int64),
        "bias": bias, "m": m, "shift": shift, "lo": lo, "hi": hi,
    }, [0]


@int16_lowering(nn.DepthwiseConv2DOp)
def lower_depthwise_conv2d_i16(op):
    n, oh, ow, oc = shape(op.output)
    q = _i16_conv_quant(op, oc)
    if q is None:
        return None
    filt, bias, m, shift, lo, hi = q
    _, h, w, c = shape(op.input)
    _, kh, kw, _ = filt.shape
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    return "depthwise_conv2d_i16", {
        "w": np.ascontiguousarray(filt.reshape(kh, kw, oc), dtype=np.int64),
        "geom": np.array([sh, sw, dh, dw, pt, pl, oc // c], np.int64),
        "out_shape": [n, oh, ow, oc],
        "bias": bias, "m": m, "shift": shift, "lo": lo, "hi": hi,
    }, [0]


@int16_lowering(nn.FullyConnectedOp)
def lower_fully_connected_i16(op):
    units, depth = shape(op.filter)
    q = _i16_conv_quant(op, units)
    if q is None:
        return None
    filt, bias, m, shift, lo, hi = q
    _, zp_w, _ = axis_qparams(op.filter)
    if np.any(zp_w != 0):
        return None
    wt = filt.astype(np.int64).T  # [D, U]
    if not _i16_exact(wt):
        return None
    s_in, _ = qparams(op.input)
    s_out, _ = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (units,))
    eff = np.array([float(s_in) * float(s) / float(s_out) for s in s_w.tolist()], np.float64)
    return "fully_connected_i16", {
        "w": np.ascontiguousarray(wt, dtype=np.float64),
        "bias": bias, "eff": eff, "lo": lo, "hi": hi,
        "out_shape": list(shape(op.output)),
    }, [0]


@int16_lowering(nn.AddOp, nn.SubOp)
def lower_add_sub_i16(op):
    if not _i16_acts(op.lhs, op.rhs, op.output):
        return None
    (s1, _), (s2, _), (so, _) = qparams(op.lhs), qparams(op.rhs), qparams(op.output)
    p = add_sub_params(s1, s2, so, 15)
    is_add = isinstance(op, nn.AddOp)
    if is_add and p["shift_out"] > 0:
        return None
    lo, hi = activation_bounds(op)
    return "add_i16" if is_add else "sub_i16", {
        "sign": 1 if is_add else -1, "zp1": 0, "zp2": 0,
        "left_shift": p["left_shift"], "m1": p["m1"], "shift1": p["shift1"],
        "m2": p["m2"], "shift2": p["shift2"], "m_out": p["m_out"], "shift_out": p["shift_out"],
        "zp_out": 0, "lo": int(lo), "hi": int(hi), "out_shape": list(shape(op.output)),
    }


@int16_lowering(nn.MulOp)
def lower_mul_i16(op):
    if not _i16_acts(op.lhs, op.rhs, op.output):
        return None
    (s1, _), (s2, _), (so, _) = qparams(op.lhs), qparams(op.rhs), qparams(op.output)
    real = np.float32(s1) * np.float32(s2) / np.float32(so)  # float32, as mul.cc
    m, sh = quantize_multiplier(float(real))
    lo, hi = activation_bounds(op)
    return "mul_i16", {
        "zp1": 0, "zp2": 0, "m": m, "shift": sh, "zp_out": 0, "lo": int(lo), "hi": int(hi),
        "out_shape": list(shape(op.output)),
    }


@int16_lowering(nn.MaximumOp, nn.MinimumOp)
def lower_max_min_i16(op):
    if not _i16_acts(op.lhs, op.rhs, op.output):
        return None
    if qparams(op.lhs) != qparams(op.output) or qparams(op.rhs) != qparams(op.output):
        return None
    is_max = isinstance(op, nn.MaximumOp)
    return "maximum_i16" if is_max else "minimum_i16", {
        "is_max": is_max, "out_shape": list(shape(op.output)),
    }


@int16_lowering(nn.AvgPool2DOp, nn.MaxPool2DOp)
def lower_pool2d_i16(op):
    if not _i16_acts(op.input, op.output) or op.activation == "TANH":
        return None
    if qparams(op.input) != qparams(op.output):
        return None
    n, h, w, c = shape(op.input)
    _, oh, ow, _ = shape(op.output)
    fh, fw = (int(v) for v in op.filter_size.get_values())
    sh, sw = (int(v) for v in op.stride.get_values())
    pad_t, _ = same_padding(h, fh, sh, 1, oh)
    pad_l, _ = same_padding(w, fw, sw, 1, ow)
    lo, hi = activation_bounds(op)
    return "pool2d_i16", {
        "filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
        "pad_top": pad_t, "pad_left": pad_l, "is_max": isinstance(op, nn.MaxPool2DOp),
        "lo": int(lo), "hi": int(hi), "out_shape": [n, oh, ow, c],
    }


@int16_lowering(nn.MeanOp)
def lower_mean_i16(op):
    if not _i16_acts(op.input, op.output):
        return None
    (si, zpi), (so, zpo) = qparams(op.input), qparams(op.output)
    layout = _pool_reduce_layout(op)
    n = layout["reduced"]
    if n == 0:
        return None
    m, sh = quantize_multiplier(float(si) / float(so))
    shift = 63 - (64 - n.bit_length())  # QuantizedMeanOrSum: 1/n folded into the multiplier
    shift = min(shift, 32)
    shift = min(shift, 31 + sh)
    m = int(np.int32((m << shift) // n))
    sh = sh - shift
    return "mean_i16", {
        **layout, "zp_in": zpi, "m": m, "shift": sh, "zp_out": zpo, "lo": -32768,
        "hi": 32767, "out_shape": list(shape(op.output)),
    }


def _i16_all() -> np.ndarray:
    return np.arange(-32768, 32768, dtype=np.int64)


@int16_lowering(nn.ReluOp, nn.Relu6Op)  # RELU_N1_TO_1: TFLite has no 16x8 kernel
def lower_relu_i16(op):
    if not _i16_acts(op.input, op.output):
        return None
    (si, zpi), (so, zpo) = qparams(op.input), qparams(op.output)
    f32 = np.float32
    m, sh = quantize_multiplier(float(f32(si) / f32(so)))
    act_min, act_max = {
        nn.ReluOp: (0.0, math.inf), nn.Relu6Op: (0.0, 6.0)
    }[type(op)]
    lo = max(-32768, zpo + int(round_half_away(f32(act_min) / f32(so))))
    hi = 32767 if math.isinf(act_max) else min(
        32767, zpo + int(round_half_away(f32(act_max) / f32(so))))
    lut = np.empty(65536, np.int16)
    requantize_int(_i16_all(), m, sh, zpi, zpo, lo, hi, lut)
    return "lut_i16", {"lut": lut}


@int16_lowering(nn.LeakyReluOp)
def lower_leaky_relu_i16(op):
    if not _i16_acts(op.input, op.output):
        return None
    (si, zpi), (so, zpo) = qparams(op.input), qparams(op.output)
    f32 = np.float32
    alpha = f32(op.alpha.value.data)
    m_a, sh_a = quantize_multiplier(float(f32(si) * alpha / f32(so)))
    m_id, sh_id = quantize_multiplier(float(f32(si) / f32(so)))
    q = _i16_all() - zpi
    big = 1 << 40
    pos = np.empty(65536, np.int64)
    neg = np.empty(65536, np.int64)
    requantize_int(q, m_id, sh_id, 0, 0, -big, big, pos)
    requantize_int(q, abs(m_a), sh_a, 0, 0, -big, big, neg)  # |m|, the sign after
    if m_a < 0:
        neg = -neg
    r = np.where(q >= 0, pos, neg) + zpo
    return "lut_i16", {"lut": np.clip(r, -32768, 32767).astype(np.int16)}


def _i16_check_log2(x: float) -> tuple[bool, int]:
    """CheckedLog2: (is x a power of two within 1e-3 in log2, round(log2 x))."""
    x_log2 = math.log(x) * (1.0 / math.log(2.0))
    rounded = round_half_away(x_log2)
    return abs(x_log2 - rounded) < 1e-3, int(rounded)


@int16_lowering(nn.LogisticOp, nn.TanhOp)
def lower_logistic_tanh_i16(op):
    if not _i16_acts(op.input, op.output):
        return None
    si, _ = qparams(op.input)
    so, _ = qparams(op.output)
    pot_out, log_out = _i16_check_log2(so)
    if not pot_out or log_out != -15:
        return None
    is_tanh = isinstance(op, nn.TanhOp)
    pot, log_in = _i16_check_log2(si)
    left = (15 - 3) + log_in
    pot = pot and (left in ((0, 1) if is_tanh else (0,)))
    multiplier = 0
    if not pot:
        mult = float(si) * 4096.0 * 3.0
        left = 0
        while mult <= 32767.0 / 2.0 and left <= 30:
            left += 1
            mult *= 2.0
        multiplier = int(mult)
    if left < 0:
        return None
    return "lut_i16", {"lut": i16_logistic_tanh_table(multiplier, left, is_tanh)}


@int16_lowering(nn.PReluOp)
def lower_prelu_i16(op):
    if not (_i16_acts(op.input, op.output) and _i16_is(op.alpha, 8)):
        return None
    (si, zpi), (sa, zpa), (so, zpo) = qparams(op.input), qparams(op.alpha), qparams(op.output)
    f32 = np.float32
    m1, sh1 = quantize_multiplier(float(f32(si) / f32(so)))
    m2, sh2 = quantize_multiplier(float(f32(si) * f32(sa) / f32(so)))
    params = {
        "zp_in": zpi, "zp_alpha": zpa, "m1": m1, "shift1": sh1, "m2": m2, "shift2": sh2,
        "zp_out": zpo, "out_shape": list(shape(op.output)),
    }
    alpha = constant_array(op.alpha)
    if alpha is not None:
        params["alpha"] = np.ascontiguousarray(alpha, dtype=np.int8)
        return "prelu_i16", params, [0]
    return "prelu_i16", params


@int16_lowering(nn.ResizeBilinearOp)
def lower_resize_bilinear_i16(op):
    if not _i16_acts(op.input, op.output) or qparams(op.input) != qparams(op.output):
        return None
    n, h, w, c = shape(op.input)
    _, oh, ow, _ = shape(op.output)
    ac, hp = _shp_bool(op.align_corners), _shp_bool(op.half_pixel_centers)
    ys, y0, y1 = _shp_bilinear_axis(h, oh, ac, hp)
    xs, x0, x1 = _shp_bilinear_axis(w, ow, ac, hp)
    return "resize_bilinear_i16", {
        "ys": ys, "y0": y0, "y1": y1, "xs": xs, "x0": x0, "x1": x1,
        "out_shape": [n, oh, ow, c],
    }


@int16_lowering(
    nn.ReshapeOp, nn.SqueezeOp, nn.TransposeOp, nn.ConcatenationOp, nn.SplitOp, nn.SliceOp,
    nn.StridedSliceOp, nn.GatherOp, nn.PadOp, nn.ResizeNearestNeighborOp,
)
def lower_data_movement_i16(op):
    """The int8 lowering: these runners copy elements whatever their type. Every
    activation must be int16 with one shared scale (same-scale ops)."""
    acts = [v for v in (*op.operands, *op.results) if quant_type(v) is not None]
    if not acts or not all(_i16_is(v, 16) for v in acts):
        return None
    if len({qparams(v) for v in acts}) != 1:
        return None
    return INT8_LOWERINGS.lookup(op)(op)


def _i16_lut_populate(input_scale: float, input_zp: int, output_scale: float, output_zp: int,
                      transform) -> np.ndarray:
    """LUTPopulate<int16_t> (internal/common.h): 513 entries, float32 arithmetic."""
    f32 = np.float32
    lo, hi = -32768, 32767
    input_min = f32(f32(input_scale) * f32(lo - input_zp))
    input_max = f32(f32(input_scale) * f32(hi - input_zp))
    output_min = f32(f32(output_scale) * f32(lo - output_zp))
    output_max = f32(f32(output_scale) * f32(hi - output_zp))
    steps = 512
    step = f32(f32(input_max - input_min) / f32(steps))
    half = f32(step / f32(2))
    inv = f32(f32(65536) / f32(output_max - output_min))

    def rnd(v):
        return f32(round_half_away(f32(v)))

    lut = np.empty(steps + 1, np.int16)
    for i in range(steps):
        a = f32(input_min + f32(f32(i) * step))
        val = transform(a)
        mid = transform(f32(a + half))
        nxt = transform(f32(input_min + f32(f32(i + 1) * step)))
        sample = rnd(f32(val * inv))
        interp = rnd(f32(f32(f32(nxt * inv) + sample) / f32(2)))
        midv = rnd(f32(mid * inv))
        bias = rnd(f32(f32(interp - midv) / f32(2)))
        lut[i] = int(min(max(f32(sample - bias), f32(lo)), f32(hi)))
    lut[steps] = int(min(max(rnd(f32(transform(input_max) * inv)), f32(lo)), f32(hi)))
    return lut


def _i16_expf():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("m")
    if name is not None:
        try:
            fn = ctypes.CDLL(name).expf
            fn.restype = ctypes.c_float
            fn.argtypes = [ctypes.c_float]
            return lambda v: np.float32(fn(float(v)))
        except (OSError, AttributeError):
            pass
    return lambda v: np.float32(np.exp(np.float32(v)))


@int16_lowering(nn.SoftmaxOp)
def lower_softmax_i16(op):
    if not _i16_acts(op.input, op.output):
        return None
    si, _ = qparams(op.input)
    beta = np.float32(op.beta.value.data)
    f32 = np.float32
    rescale = float(f32(f32(si) * beta)) / (10.0 / 65535.0)
    m, sh = quantize_multiplier(rescale)
    rng = 65535
    expf = _i16_expf()
    exp_lut = _i16_lut_populate(10.0 / rng, 32767, 2.0 / rng, 0, expf)
    inv_lut = _i16_lut_populate(1.0 / rng, -32768, 2.0 / rng, 0,
                                lambda v: f32(f32(1.0) / f32(f32(1.0) + f32(v))))
    return "softmax_i16", {"m": m, "shift": sh, "exp_lut": exp_lut.astype(np.int64),
                           "inv_lut": inv_lut.astype(np.int64)}
