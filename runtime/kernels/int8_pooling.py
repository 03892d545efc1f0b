"""int8 pooling and reductions: AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, SUM.

Transcriptions of LiteRT's int8 kernels (TFLITE_INT8_SPEC.md §5):

* AVERAGE_POOL_2D (`avg_pool2d_i8`), `reference_integer_ops::AveragePool`: sum of the stored
  values over the in-image taps of the window, `count` = number of those taps,
  `avg = (sum ± count / 2) / count` with C truncation (round half away from zero), clamp to
  the fused activation's bounds. Valid because input and output share scale and zero point.
* MAX_POOL_2D (`max_pool2d_i8`), `reference_integer_ops::MaxPool`: max of the in-image
  stored values, then the clamp.
* MEAN (`mean_i8`), `reference_ops::QuantizedMeanOrSum` (`reduce.cc` EvalMean runs it for
  every int8 MEAN under BUILTIN_REF, spatial 4-D included): int32 sum over the axes,
  `(m, shift) = QuantizeMultiplier(double(s_in) / double(s_out))` with 1/n folded in —
  `s = min(63 - clz64(n), 32, 31 + shift)`, `m' = (m << s) / n`, `shift' = shift - s` —
  then `out = clamp(mbqm(sum - zp_in * n, m', shift') + zp_out)`.
* SUM (`sum_i8`): the float rescale of the optimized `QuantizedMeanOrSum` (what
  BUILTIN_WITHOUT_DEFAULT_DELEGATES runs): `scale = s_in / s_out`,
  `bias = -zp_in * scale * n` (float32), `out = clamp(roundf(sum * scale + bias) + zp_out)`.
  LiteRT 2.3.0's BUILTIN_REF SUM on int8 is wrong: it reads the int8 bytes as uint8 and
  clamps to [0, 255] before storing (negative inputs count as q + 256); qcc does not copy
  that bug (equal input and output quantization included: no shortcut is taken there).
"""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from ..fixedpoint import mbqm_fast, mbqm_np, njit, quantize_multiplier, wrap_int32_np
from .common import same_padding
from .int8_lowering import activation_bounds, int8_params, shape
from .int8_registry import fixed_call, runner
from .int8_vnni import _vnni_clamp16, _vnni_max16
from .registry import int8_lowering
from .simd import simd_empty, simd_max, simd_min

# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


_POOL_WIDE = 256
"""Lanes of `_pool_run_sums`' wide accumulator (int32)."""


@njit(nogil=True, inline="always")
def _pool_run_sums(x1, s0, taps, c, wide, acc):  # pragma: no cover - jitted
    """acc[ch] = Σ_t x1[s0 + t·c + ch] over `taps` consecutive taps of c channels (c <=
    _POOL_WIDE; wide: int32 scratch of _POOL_WIDE). The run is added k·c values at a time
    (k = _POOL_WIDE // c) into k·c int32 lanes, then the lanes are folded by channel: a
    straight loop LLVM vectorizes, where a loop over taps with c channels inside runs c
    values a trip (16 for a MobileNetV3 squeeze-excite at full resolution). The sums are
    the same integers: int32 addition wraps alike in any order (the reference's int32
    accumulator)."""
    k = _POOL_WIDE // c
    lanes = k * c
    for j in range(lanes):
        wide[j] = 0
    total = taps * c
    full = total - total % lanes
    run = x1[s0:s0 + total]  # slices: the loops below then vectorize
    for base in range(0, full, lanes):
        block = run[base:base + lanes]
        for j in range(lanes):
            wide[j] += block[j]
    rest = run[full:]
    for j in range(rest.size):
        wide[j] += rest[j]
    for ch in range(c):
        acc[ch] = 0
    for t in range(k):
        for ch in range(c):
            acc[ch] += wide[t * c + ch]


def _pool_make_nhwc(is_max: bool):
    """reference_integer_ops::MaxPool (`is_max`) or AveragePool on NHWC int8 or int16, as
    `kernel(x1, n, h, w, c, o1, oh, ow, fh, fw, sh, sw, pad_t, pad_l, lo, hi, floor)`: the max
    (from `floor`, the storage minimum, -128 or -32768) or the int32 sum of the in-image taps
    of each window, the average rounded half away from zero (C truncating division), clamped
    to [lo, hi]. x1, o1: the flat input [n, h, w, c] and output [n, oh, ow, c] (flat indices,
    loops for fills: a row view, a slice fill or a reshape here compiles an overload of its
    own). An average whose window spans the image's width (a global pool: squeeze-excite
    blocks) sums its taps as one run (`_pool_run_sums`). `is_max` is a closure constant:
    each kernel compiles only its own loops."""

    @njit(cache=True, nogil=True)
    def pool(x1, n, h, w, c, o1, oh, ow, fh, fw, sh, sw, pad_t, pad_l, lo, hi, floor):  # pragma: no cover - jitted
        acc = simd_empty(c, np.int32)
        wide = simd_empty(0 if is_max else _POOL_WIDE, np.int32)
        start = np.int32(floor if is_max else 0)
        for b in range(n):
            for oy in range(oh):
                iy0 = oy * sh - pad_t
                fy_start = simd_max(0, -iy0)
                fy_end = simd_min(fh, h - iy0)
                for ox in range(ow):
                    ix0 = ox * sw - pad_l
                    fx_start = simd_max(0, -ix0)
                    fx_end = simd_min(fw, w - ix0)
                    count = (fy_end - fy_start) * (fx_end - fx_start)
                    fy_last = fy_end  # the taps' rows for the loop below
                    if not is_max and ix0 + fx_start == 0 and ix0 + fx_end == w and c <= _POOL_WIDE:
                        # the window's in-image taps are whole rows: one run of count taps
                        _pool_run_sums(x1, np.int64(((b * h + iy0 + fy_start) * w) * c),
                                       np.int64(count), np.int64(c), wide, acc)
                        fy_last = fy_start  # all summed
                    else:
                        for ch in range(c):
                            acc[ch] = start
                    for fy in range(fy_start, fy_last):
                        for fx in range(fx_start, fx_end):
                            s0 = np.uint64(((b * h + iy0 + fy) * w + ix0 + fx) * c)
                            if is_max:
                                for ch in range(c):
                                    v = np.int32(x1[s0 + np.uint64(ch)])
                                    if v > acc[ch]:
                                        acc[ch] = v
                            else:
                                for ch in range(c):
                                    acc[ch] += np.int32(x1[s0 + np.uint64(ch)])
                    half = count // 2
                    d0 = np.uint64(((b * oh + oy) * ow + ox) * c)
                    for ch in range(c):
                        a = np.int64(acc[ch])
                        if not is_max and count > 0:
                            if a > 0:
                                a = (a + half) // count
                            else:
                                a = -((-(a - half)) // count)
                        if a < lo:
                            a = lo
                        if a > hi:
                            a = hi
                        o1[d0 + np.uint64(ch)] = a

    return pool


_POOL_NHWC = {False: _pool_make_nhwc(False), True: _pool_make_nhwc(True)}


def _pool_nhwc(x, out, params, floor):
    """`_POOL_NHWC[is_max]` on the 4-D NHWC `x` (C-contiguous) into `out`, per the step's
    params."""
    _POOL_NHWC[bool(params["is_max"])](
        x.reshape(-1), *x.shape, out.reshape(-1), out.shape[1], out.shape[2],
        params["filter_h"], params["filter_w"], params["stride_h"], params["stride_w"],
        params["pad_top"], params["pad_left"], params["lo"], params["hi"], floor)


@njit(cache=True, nogil=True, inline="always")
def _pool_reduce_sum(x3, out_sum):  # pragma: no cover - jitted
    """out_sum[o·inner + i] = sum over r of x3[o, r, i] (int64, flat): the reduced axes moved
    to the middle. Short rows (inner <= 64) sum each o's block as one run (`_pool_run_sums`)
    when its int32 sums cannot wrap (red < 2^16 values of at most 2^15)."""
    outer, red, inner = x3.shape
    if inner <= _POOL_WIDE // 4 and red < 65536:
        wide = simd_empty(_POOL_WIDE, np.int32)
        acc = simd_empty(inner, np.int32)
        x1 = x3.reshape(-1)
        for o in range(outer):
            _pool_run_sums(x1, np.int64(o * red * inner), np.int64(red), np.int64(inner), wide, acc)
            for i in range(inner):
                out_sum[o * inner + i] = acc[i]
        return
    for o in range(outer):
        base = o * inner
        for i in range(inner):
            out_sum[base + i] = 0
        for r in range(red):
            for i in range(inner):
                out_sum[base + i] += np.int64(x3[o, r, i])


@njit(cache=True, nogil=True, inline="always")
def _pool_mean_requant(sums, n, zp_in, m, sh, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """MEAN's requantization of int64 sums (wrapped to int32 as the C++ accumulates), clamped
    to the storage range [lo, hi] (int8 or int16). m >= 0 (`lower_mean`: a positive scale
    ratio, divided by n), so the branch-free `mbqm_fast` is the reference's MBQM (and the
    kernels share its compiled code)."""
    left = simd_max(sh, 0)
    right = simd_max(-sh, 0)
    for i in range(sums.size):
        s = sums[i] - np.int64(zp_in) * n
        s = ((s + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
        v = mbqm_fast(s, m, left, right) + zp_out
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _pool_sum_float_requant(sums, scale, bias, zp_out, out):  # pragma: no cover - jitted
    """roundf(float(sum) * scale + bias) + zp_out, clamped (float32 arithmetic)."""
    for i in range(sums.size):
        f = np.float32(np.float32(sums[i]) * scale) + bias
        mag = abs(f)
        fl = np.floor(mag)
        r = fl + np.float32(1.0) if mag - fl >= np.float32(0.5) else fl
        if f < 0:
            r = -r
        if r > np.float32(1e9):
            r = np.float32(1e9)
        elif r < np.float32(-1e9):
            r = np.float32(-1e9)
        v = np.int64(r) + zp_out
        if v < -128:
            v = -128
        elif v > 127:
            v = 127
        out[i] = v


@njit(cache=True, nogil=True)
def _pool_max_full_i8(x, out, fh, fw, sh, sw, lo, hi):  # pragma: no cover - jitted
    """MAX pool when every window lies inside the image (no padding): the max of the stored
    values, clamped to [lo, hi] (what `_POOL_NHWC[True]` computes), channel runs contiguous."""
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    x1 = x.reshape(-1)
    o1 = out.reshape(-1)
    tmp = simd_empty(c, np.int8)
    l8 = np.int8(lo)
    h8 = np.int8(hi)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                s0 = np.uint64(((b * h + oy * sh) * w + ox * sw) * c)
                for ch in range(c):
                    tmp[ch] = x1[s0 + np.uint64(ch)]
                for fy in range(fh):
                    for fx in range(fw):
                        s = np.uint64(((b * h + oy * sh + fy) * w + ox * sw + fx) * c)
                        for ch in range(c):
                            tmp[ch] = simd_max(tmp[ch], x1[s + np.uint64(ch)])
                d = np.uint64(((b * oh + oy) * ow + ox) * c)
                for ch in range(c):
                    o1[d + np.uint64(ch)] = simd_min(simd_max(tmp[ch], l8), h8)


@njit(cache=True, nogil=True)
def _pool_max_full_vec16(x1, n, h, w, c, out, fh, fw, sh, sw, lo, hi):  # pragma: no cover - jitted
    """`_pool_max_full_i8` for C >= 16 channels, an output row at a time: first the max over
    the window's fh input rows, one vectorized loop over the row's W·C bytes (into `rows`);
    then per output pixel the max over the fw columns of `rows`, in 16-byte vector chunks
    (the last chunk overlaps the one before it when C is not a multiple of 16; max and clamp
    are idempotent, so recomputing the overlap changes nothing). A per-pixel loop over C
    channels vectorizes only when C is a multiple of 64 (Numba picks 64 int8 lanes), and
    folding the window through memory, pixel by pixel, chains stores into loads (2-3x
    slower, also at C = 64 or 128). x1: the flat NHWC input [n, h, w, c] (a reshape here
    would compile for ~0.2 s)."""
    oh, ow = out.shape[1], out.shape[2]
    rows = simd_empty(w * c, np.int8)
    ra = np.int64(rows.ctypes.data)
    oa = np.int64(out.ctypes.data)
    chunks = (c + 15) // 16
    clamp = lo > -128 or hi < 127
    wc = np.uint64(w * c)
    for b in range(n):
        for oy in range(oh):
            r0 = np.uint64((b * h + oy * sh) * w * c)
            for j in range(w * c):
                rows[j] = x1[r0 + np.uint64(j)]
            for fy in range(1, fh):
                rf = r0 + np.uint64(fy) * wc
                for j in range(w * c):
                    rows[j] = simd_max(rows[j], x1[rf + np.uint64(j)])
            d0 = oa + (b * oh + oy) * ow * c
            for ox in range(ow):
                s0 = ra + ox * sw * c
                d1 = d0 + ox * c
                for k in range(chunks):
                    cs = simd_min(16 * k, c - 16)
                    d = d1 + cs
                    _vnni_max16(s0 + cs, s0 + (c if fw > 1 else 0) + cs, d)
                    for fx in range(2, fw):
                        _vnni_max16(d, s0 + fx * c + cs, d)
                    if clamp:
                        _vnni_clamp16(d, lo, hi)


@runner("avg_pool2d_i8", "max_pool2d_i8")
def run_pool2d_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(tuple(params["out_shape"]), np.int8)
    fh, fw, sh, sw = params["filter_h"], params["filter_w"], params["stride_h"], params["stride_w"]
    if _pool_max_unpadded(x, out, params):
        if x.shape[3] >= 16:
            _pool_max_full_vec16(x.reshape(-1), *x.shape, out, fh, fw, sh, sw, params["lo"],
                                 params["hi"])
        else:
            _pool_max_full_i8(x, out, fh, fw, sh, sw, params["lo"], params["hi"])
        return [out]
    _pool_nhwc(x, out, params, -128)
    return [out]


def _pool_max_unpadded(x, out, params) -> bool:
    """A MAX_POOL_2D whose windows all lie inside x (no padding), int8 NHWC."""
    fh, fw, sh, sw = params["filter_h"], params["filter_w"], params["stride_h"], params["stride_w"]
    return bool(params["is_max"] and x.ndim == 4 and x.dtype == np.int8 and out.ndim == 4
                and params["pad_top"] == 0 and params["pad_left"] == 0 and fh >= 1 and fw >= 1
                and -128 <= params["lo"] <= params["hi"] <= 127
                and out.shape[0] == x.shape[0] and out.shape[3] == x.shape[3]
                and out.shape[1] >= 1 and out.shape[2] >= 1
                and (out.shape[1] - 1) * sh + fh <= x.shape[1]
                and (out.shape[2] - 1) * sw + fw <= x.shape[2])


def _pool_bind(params):
    """Plan-load binding of `run_pool2d_i8`: on fixed buffers (`plan._arena_line`) one call
    of its kernel, made once: an unpadded max pool over 16 or more channels its vector
    kernel, an average pool `_POOL_NHWC[False]`."""
    def run(inputs, _params):
        return run_pool2d_i8(inputs, params)

    def usable(x, out):
        return (x.ndim == 4 and x.dtype == np.int8 and out.dtype == np.int8
                and out.shape == tuple(params["out_shape"]) and out.shape[0] == x.shape[0]
                and out.shape[3] == x.shape[3]
                and x.flags.c_contiguous and out.flags.c_contiguous)

    def into(ins, outs):
        x, out = ins[0], outs[0]
        if not usable(x, out):
            return None
        if not params["is_max"]:
            return fixed_call(_POOL_NHWC[False], (
                x.reshape(-1), *x.shape, out.reshape(-1), out.shape[1], out.shape[2],
                params["filter_h"], params["filter_w"], params["stride_h"], params["stride_w"],
                params["pad_top"], params["pad_left"], params["lo"], params["hi"], -128))
        if not _pool_max_unpadded(x, out, params) or x.shape[3] < 16:
            return None
        return fixed_call(_pool_max_full_vec16, (
            x.reshape(-1), *x.shape, out, params["filter_h"], params["filter_w"],
            params["stride_h"], params["stride_w"], params["lo"], params["hi"]))

    run.into = into
    run.numpy_form = lambda inputs, _params: _pool_numpy(inputs, params)
    return run


def _pool_numpy(inputs, params):
    """`run_pool2d_i8` in NumPy (`plan._Units.deferred`): `_pool_make_nhwc`'s max or
    average over each window's in-image taps, as fh·fw strided views of the input
    padded with the max's floor or the sum's zero (a padded tap then changes nothing;
    the average's tap count is the same sum over ones), the average rounded half away
    from zero with C's truncating division, clamped."""
    x = np.asarray(inputs[0])
    n, h, w, c = x.shape
    _, oh, ow, _ = (int(v) for v in params["out_shape"])
    fh, fw = params["filter_h"], params["filter_w"]
    sh, sw = params["stride_h"], params["stride_w"]
    pt, pl = params["pad_top"], params["pad_left"]
    is_max = bool(params["is_max"])
    hp = max(pt + h, (oh - 1) * sh + fh)
    wp = max(pl + w, (ow - 1) * sw + fw)
    xp = np.full((n, hp, wp, c), -128 if is_max else 0, np.int64)
    xp[:, pt:pt + h, pl:pl + w] = x
    inside = np.zeros((1, hp, wp, 1), np.int64)
    inside[:, pt:pt + h, pl:pl + w] = 1
    acc = np.full((n, oh, ow, c), -128 if is_max else 0, np.int64)
    count = np.zeros((1, oh, ow, 1), np.int64)
    for fy in range(fh):
        for fx in range(fw):
            rows, cols = slice(fy, fy + (oh - 1) * sh + 1, sh), slice(fx, fx + (ow - 1) * sw + 1, sw)
            tap = xp[:, rows, cols]
            acc = np.maximum(acc, tap) if is_max else acc + tap
            count += inside[:, rows, cols]
    if not is_max:
        half = count // 2
        safe = np.maximum(count, 1)
        avg = np.where(acc > 0, (acc + half) // safe, -((half - acc) // safe))
        acc = np.where(count > 0, avg, acc)
    out = np.clip(acc, params["lo"], params["hi"]).astype(np.int8)
    return [out.reshape(tuple(int(v) for v in params["out_shape"]))]


run_pool2d_i8.numpy_form = _pool_numpy
run_pool2d_i8.bind = _pool_bind


def _pool_reduced(x, params):
    """x as [outer, reduced, inner] (C-contiguous): the reduced axes moved to the middle."""
    perm = params["perm"]
    shape3 = (params["outer"], params["reduced"], params["inner"])
    if perm:
        x = np.transpose(x, perm)
    return np.ascontiguousarray(x).reshape(shape3)


def _pool_sums(x, params):
    """int64 sums over the reduced axes, flattened in the output's element order."""
    sums = np.empty(params["outer"] * params["inner"], np.int64)
    _pool_reduce_sum(_pool_reduced(x, params), sums)
    return sums


@njit(cache=True, nogil=True)
def _pool_mean(x3, n, zp_in, m, sh, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """MEAN of x3 [outer, n, inner] over its middle axis into the flat out: `_pool_reduce_sum`
    then `_pool_mean_requant`, both inlined (one compile, not two)."""
    sums = simd_empty(x3.shape[0] * x3.shape[2], np.int64)
    _pool_reduce_sum(x3, sums)
    _pool_mean_requant(sums, n, zp_in, m, sh, zp_out, lo, hi, out)


@runner("mean_i8")
def run_mean_i8(inputs, params):
    out = np.empty(tuple(params["out_shape"]), np.int8)
    _pool_mean(_pool_reduced(inputs[0], params), params["reduced"], params["zp_in"],
               params["m"], params["shift"], params["zp_out"], -128, 127, out.reshape(-1))
    return [out]


def _pool_mean_numpy(inputs, params):
    """`run_mean_i8` in NumPy (`plan._Units.deferred`): int64 sums, `_pool_mean_requant`'s
    int32 wrap, `mbqm_np` (m >= 0, `lower_mean`) and clamp."""
    n = params["reduced"]
    sums = _pool_reduced(inputs[0], params).astype(np.int64).sum(axis=1).reshape(-1)
    s = wrap_int32_np(sums - np.int64(params["zp_in"]) * n)
    v = mbqm_np(s, params["m"], params["shift"]) + params["zp_out"]
    return [np.clip(v, -128, 127).astype(np.int8).reshape(tuple(params["out_shape"]))]


run_mean_i8.numpy_form = _pool_mean_numpy


@runner("sum_i8")
def run_sum_i8(inputs, params):
    sums = _pool_sums(np.ascontiguousarray(inputs[0]), params)
    out = np.empty(tuple(params["out_shape"]), np.int8)
    _pool_sum_float_requant(
        sums, np.float32(params["scale"]), np.float32(params["bias"]), params["zp_out"],
        out.reshape(-1),
    )
    return [out]


# ---------------------------------------------------------------------------------------------
# Compile time
# ---------------------------------------------------------------------------------------------




@int8_lowering(nn.AvgPool2DOp, nn.MaxPool2DOp)
def lower_pool2d(op):
    if int8_params(op.input, op.output) is None or op.activation == "TANH":
        return None
    n, h, w, c = shape(op.input)
    _, oh, ow, _ = shape(op.output)
    fh, fw = (int(v) for v in op.filter_size.get_values())
    sh, sw = (int(v) for v in op.stride.get_values())
    pad_t, _ = same_padding(h, fh, sh, 1, oh)
    pad_l, _ = same_padding(w, fw, sw, 1, ow)
    lo, hi = activation_bounds(op)
    is_max = isinstance(op, nn.MaxPool2DOp)
    return "max_pool2d_i8" if is_max else "avg_pool2d_i8", {
        "filter_h": fh,
        "filter_w": fw,
        "stride_h": sh,
        "stride_w": sw,
        "pad_top": pad_t,
        "pad_left": pad_l,
        "is_max": is_max,
        "lo": lo,
        "hi": hi,
        "out_shape": [n, oh, ow, c],
    }


def _pool_reduce_layout(op) -> dict:
    """How to view the input as [outer, reduced, inner]: a transpose moving the reduced axes
    (in order) between the kept ones is needed unless they are already contiguous."""
    in_shape = shape(op.input)
    rank = len(in_shape)
    axes = sorted({int(a) % rank for a in op.axes.get_values()}) if rank else []
    kept = [i for i in range(rank) if i not in axes]
    contiguous = axes == list(range(axes[0], axes[0] + len(axes))) if axes else True
    if contiguous and axes:
        first = axes[0]
        outer = int(np.prod(in_shape[:first], dtype=np.int64))
        inner = int(np.prod(in_shape[first + len(axes):], dtype=np.int64))
        perm: list[int] = []
    else:
        perm = kept + axes
        outer = int(np.prod([in_shape[i] for i in kept], dtype=np.int64))
        inner = 1
    reduced = int(np.prod([in_shape[i] for i in axes], dtype=np.int64))
    return {"perm": perm, "outer": outer, "reduced": reduced, "inner": inner}


@int8_lowering(nn.MeanOp)
def lower_mean(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    layout = _pool_reduce_layout(op)
    n = layout["reduced"]
    if n == 0:
        return None
    m, sh = quantize_multiplier(float(si) / float(so))
    # QuantizedMeanOrSum: fold 1/n into the multiplier.
    shift = 63 - (64 - n.bit_length())  # 63 - CountLeadingZeros(uint64 n)
    shift = min(shift, 32)
    shift = min(shift, 31 + sh)
    m = int(np.int32((m << shift) // n))  # shift >= 0: QuantizeMultiplier keeps sh >= -31
    sh = sh - shift
    return "mean_i8", {
        **layout,
        "zp_in": zpi,
        "m": m,
        "shift": sh,
        "zp_out": zpo,
        "out_shape": list(shape(op.output)),
    }


@int8_lowering(nn.SumOp)
def lower_sum(op):
    qp = int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    layout = _pool_reduce_layout(op)
    n = layout["reduced"]
    f32 = np.float32
    scale = f32(si) / f32(so)
    bias = f32(-zpi) * scale * f32(n)
    return "sum_i8", {
        **layout,
        "scale": float(scale),
        "bias": float(bias),
        "zp_out": zpo,
        "out_shape": list(shape(op.output)),
    }
