"""int8 CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV and BATCH_MATMUL,
bit-exact with LiteRT's reference kernels (BUILTIN_REF):

  * CONV_2D   `reference_integer_ops::ConvPerChannel`: acc = Σ w·(x − zp_in) over in-image
    taps (+ bias[c]), out = clamp(MBQM(acc, m_c, sh_c) + zp_out, act), (m_c, sh_c) =
    QuantizeMultiplier(double(s_in)·double(s_w[c]) / double(s_out)). Grouped convolutions.
  * DEPTHWISE_CONV_2D `DepthwiseConvPerChannel`: the same per output channel c·M + m.
  * FULLY_CONNECTED `FullyConnected(PerChannel)`: acc = Σ (w − zp_w)(x − zp_in) + bias;
    out = clamp(round_half_away(double(acc)·eff) + zp_out), eff = double(s_in)·double(s_w)
    / double(s_out) (the float requantization of the reference kernel since LRT 9213607).
  * TRANSPOSE_CONV `reference_integer_ops::TransposeConv`: scatter Σ (x − zp_in)·w, + bias,
    MBQM per channel, clamp.
  * BATCH_MATMUL `reference_ops::BatchMatMul`: acc = Σ (a − zp_a)(b − zp_b),
    MBQM(acc, QuantizeMultiplier(double(s_a)·double(s_b)/double(s_out))) + zp_out, clamp.

How: the int32 accumulator Σ(x − zp)·w is computed *exactly* by a float BLAS matmul of
offset-adjusted activations (zeros in the padding: padded taps contribute nothing) against
weights packed at compile time. It is exact because every product and partial sum is an
integer below the float's 2^mantissa: compile time bounds max_c Σ_k |w[k,c]| · max|x − zp|
and picks float32 when that bound is below 2^24 (any summation order is then exact), float64
(2^53) otherwise. A Numba pass then adds the int32 bias and requantizes per channel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..fixedpoint import mbqm_fast, quantize_multiplier, quantize_multipliers, split_shifts
from .common import ints, same_padding
from .int8_lowering import (
    activation_bounds,
    axis_qparams,
    constant_array,
    qparams,
    quant_type,
    shape,
)
from .int8_registry import lowering, runner

# ---------------------------------------------------------------------------------------------
# Numba loops


@njit(cache=True, nogil=True)
def _conv_offset(x, zp, out):  # pragma: no cover - jitted
    """out[i] = x[i] − zp as a float (1-D arrays)."""
    for i in range(x.size):
        out[i] = np.int32(x[i]) - zp


@njit(cache=True, nogil=True)
def _conv_im2col_i8(x, cols, zp, geom):  # pragma: no cover - jitted
    """cols[(b·OH + oy)·OW + ox, (ky·KW + kx)·C + c] = x[b, iy, ix, c] − zp, 0 in the padding.
    geom: KH, KW, stride h/w, dilation h/w, pad top/left, OH, OW."""
    kh, kw, sh, sw, dh, dw, pt, pl, oh, ow = (
        geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6], geom[7], geom[8], geom[9],
    )
    n, h, wd, c = x.shape
    r = 0
    for b in range(n):
        for oy in range(oh):
            iy0 = oy * sh - pt
            for ox in range(ow):
                ix0 = ox * sw - pl
                row = cols[r]
                k = 0
                for ky in range(kh):
                    iy = iy0 + ky * dh
                    if iy < 0 or iy >= h:
                        for j in range(kw * c):
                            row[k + j] = 0
                        k += kw * c
                        continue
                    xrow = x[b, iy]
                    for kx in range(kw):
                        ix = ix0 + kx * dw
                        if ix < 0 or ix >= wd:
                            for j in range(c):
                                row[k + j] = 0
                        else:
                            px = xrow[ix]
                            for j in range(c):
                                row[k + j] = np.int32(px[j]) - zp
                        k += c
                r += 1


@njit(cache=True, nogil=True)
def _conv_requant(acc, bias, m, left, right, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(MBQM(int32(acc[r, c]) + bias[c], m[c], shift[c]) + zp_out, lo, hi).
    acc holds exact integers (float32/float64 from BLAS, or ints)."""
    rows, cols = acc.shape
    for r in range(rows):
        a = acc[r]
        o = out[r]
        for c in range(cols):
            v = mbqm_fast(np.int64(a[c]) + bias[c], m[c], left[c], right[c]) + zp_out
            v = min(max(v, lo), hi)
            o[c] = v


@njit(cache=True, nogil=True)
def _fc_requant(acc, bias, eff, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(round_half_away(double(int32(acc[r, c]) + bias[c]) · eff[c]) + zp_out)."""
    rows, cols = acc.shape
    for r in range(rows):
        a = acc[r]
        o = out[r]
        for c in range(cols):
            p = np.float64(np.int64(a[c]) + bias[c]) * eff[c]
            mag = abs(p)
            fl = np.floor(mag)
            q = fl + 1.0 if mag - fl >= 0.5 else fl
            if p < 0:
                q = -q
            q = min(max(q, -1e9), 1e9)
            v = np.int64(q) + zp_out
            v = min(max(v, lo), hi)
            o[c] = v


@njit(cache=True, nogil=True)
def _conv_requant_flat(acc, bias, m, left, right, zp_out, lo, hi, out):  # pragma: no cover
    """The same as `_conv_requant` on flattened rows: acc/out 1-D of length n·C, per-channel
    arrays tiled to at least that length (one long vectorizable loop)."""
    for i in range(acc.size):
        v = mbqm_fast(np.int64(acc[i]) + bias[i], m[i], left[i], right[i]) + zp_out
        out[i] = min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def _conv_pad_offset(x, zp, pt, pl, xp):  # pragma: no cover - jitted
    """xp[b, pt + y, pl + x, c] = x[b, y, x, c] − zp for the part of x that fits, 0 elsewhere."""
    n, h, w, c = x.shape
    hp, wp = xp.shape[1], xp.shape[2]
    xp[:] = 0
    h2 = min(h, hp - pt)
    w2 = min(w, wp - pl)
    for b in range(n):
        for y in range(h2):
            for xx in range(w2):
                src = x[b, y, xx]
                dst = xp[b, pt + y, pl + xx]
                for k in range(c):
                    dst[k] = np.int32(src[k]) - zp


@njit(cache=True, nogil=True)
def _conv_im2col_padded(xp, cols, r0, r1, geom):  # pragma: no cover - jitted
    """Rows r0..r1 of the patch matrix from the zero-padded, offset input xp [N,Hp,Wp,C]:
    cols[r − r0, (ky·KW + kx)·C + c] = xp[b, oy·sh + ky·dh, ox·sw + kx·dw, c]; with
    dilation 1 each ky is one contiguous copy of KW·C values."""
    kh, kw, sh, sw, dh, dw, oh, ow = (
        geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[8], geom[9],
    )
    c = xp.shape[3]
    seg = kw * c
    for r in range(r0, r1):
        b = r // (oh * ow)
        rem = r - b * oh * ow
        oy = rem // ow
        ox = rem - oy * ow
        row = cols[r - r0]
        for ky in range(kh):
            xrow = xp[b, oy * sh + ky * dh].ravel()
            base = ox * sw * c
            if dw == 1:
                dst = row[ky * seg : (ky + 1) * seg]
                src = xrow[base : base + seg]
                for j in range(seg):
                    dst[j] = src[j]
            else:
                for kx in range(kw):
                    s0 = base + kx * dw * c
                    dst = row[ky * seg + kx * c : ky * seg + (kx + 1) * c]
                    src = xrow[s0 : s0 + c]
                    for j in range(c):
                        dst[j] = src[j]


@njit(cache=True, nogil=True)
def _conv_offset_rows(x, zp, out):  # pragma: no cover - jitted
    """out[i] = x[i] − zp for 1-D slices (rows of a pointwise conv's input)."""
    for i in range(out.size):
        out[i] = np.int32(x[i]) - zp


@njit(cache=True, nogil=True)
def _dw_conv_flat_i8(x, wt, bias_t, m_t, left_t, right_t, zp_in, zp_out, lo, hi, out, geom):  # pragma: no cover
    """Depthwise conv for stride-w 1 and multiplier 1: for each tap, the row update over the
    valid output-x range is one contiguous multiply-add of length (hi_x − lo_x)·C, with the
    tap's weights tiled along the row (wt [KH, KW, OW·C]); the row is requantized the same
    way (per-channel arrays tiled to OW·C). geom: stride h/w, dilation h/w, pad top/left."""
    sh, dh, dw, pt, pl = geom[0], geom[2], geom[3], geom[4], geom[5]
    n, h, wd, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    kh, kw = wt.shape[0], wt.shape[1]
    row_len = ow * c
    zp = np.int32(zp_in)
    acc = np.empty(row_len, np.int32)
    for b in range(n):
        for oy in range(oh):
            for j in range(row_len):
                acc[j] = bias_t[j]
            iy0 = oy * sh - pt
            for ky in range(kh):
                iy = iy0 + ky * dh
                if iy < 0 or iy >= h:
                    continue
                xrow = x[b, iy].ravel()
                for kx in range(kw):
                    off = kx * dw - pl
                    lo_x = 0 if off >= 0 else -off
                    hi_x = min(ow, wd - off)
                    if hi_x <= lo_x:
                        continue
                    # slices + range(n): no negative-index wraparound checks, so it vectorizes
                    a = acc[lo_x * c : hi_x * c]
                    wk = wt[ky, kx, lo_x * c : hi_x * c]
                    xs = xrow[(lo_x + off) * c : (hi_x + off) * c]
                    for j in range(a.size):
                        a[j] += (np.int32(xs[j]) - zp) * wk[j]
            orow = out[b, oy].ravel()
            for j in range(row_len):
                v = mbqm_fast(acc[j], m_t[j], left_t[j], right_t[j]) + zp_out
                orow[j] = min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def _dw_conv_i8(x, w, bias, m, left, right, zp_in, zp_out, lo, hi, out, geom):  # pragma: no cover
    """Depthwise conv, int32 accumulation. x int8 [N,H,W,C]; w int32 [KH,KW,C·M];
    out int8 [N,OH,OW,C·M]; geom: stride h/w, dilation h/w, pad top/left, M.
    Row by row: per tap, the valid output-x range is computed once, so the inner loop is a
    branch-free multiply-add over channels."""
    sh, sw, dh, dw, pt, pl, mult = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6]
    n, h, wd, c = x.shape
    oh, ow, oc = out.shape[1], out.shape[2], out.shape[3]
    kh, kw = w.shape[0], w.shape[1]
    acc = np.empty((ow, oc), np.int32)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for k in range(oc):
                    acc[ox, k] = bias[k]
            iy0 = oy * sh - pt
            for ky in range(kh):
                iy = iy0 + ky * dh
                if iy < 0 or iy >= h:
                    continue
                xrow = x[b, iy]
                for kx in range(kw):
                    off = kx * dw - pl
                    lo_x = 0
                    if off < 0:
                        lo_x = (-off + sw - 1) // sw
                    hi_x = (wd - 1 - off) // sw + 1
                    if hi_x > ow:
                        hi_x = ow
                    wk = w[ky, kx]
                    if mult == 1:
                        for ox in range(lo_x, hi_x):
                            px = xrow[ox * sw + off]
                            a = acc[ox]
                            for k in range(oc):
                                a[k] += (np.int32(px[k]) - zp_in) * wk[k]
                    else:
                        for ox in range(lo_x, hi_x):
                            px = xrow[ox * sw + off]
                            a = acc[ox]
                            for ci in range(c):
                                v = np.int32(px[ci]) - zp_in
                                for mm in range(mult):
                                    a[ci * mult + mm] += v * wk[ci * mult + mm]
            orow = out[b, oy]
            for ox in range(ow):
                a = acc[ox]
                o = orow[ox]
                for k in range(oc):
                    v = mbqm_fast(a[k], m[k], left[k], right[k]) + zp_out
                    v = min(max(v, lo), hi)
                    o[k] = v


@njit(cache=True, nogil=True)
def _tconv_scatter(taps, acc, geom):  # pragma: no cover - jitted
    """acc[b, iy·sh − pt + ky, ix·sw − pl + kx, :] += taps[b, iy, ix, ky, kx, :] for in-range
    outputs. taps [N,H,W,KH,KW,O]; acc [N,OH,OW,O]; geom: stride h/w, pad top/left."""
    sh, sw, pt, pl = geom[0], geom[1], geom[2], geom[3]
    n, h, wd, kh, kw, o = taps.shape
    oh, ow = acc.shape[1], acc.shape[2]
    for b in range(n):
        for iy in range(h):
            for ky in range(kh):
                oy = iy * sh - pt + ky
                if oy < 0 or oy >= oh:
                    continue
                for ix in range(wd):
                    for kx in range(kw):
                        ox = ix * sw - pl + kx
                        if ox < 0 or ox >= ow:
                            continue
                        t = taps[b, iy, ix, ky, kx]
                        a = acc[b, oy, ox]
                        for c in range(o):
                            a[c] += t[c]


# ---------------------------------------------------------------------------------------------
# Runners


def _conv_offset_cols(x, zp, dtype):
    flat = np.ascontiguousarray(x).reshape(-1)
    cols = np.empty(flat.size, dtype)
    _conv_offset(flat, np.int32(zp), cols)
    return cols


@runner("conv2d_i8")
def run_conv2d_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    w = params["w"]  # [G, K, O/G], float32 or float64
    geom = params["geom"]
    kh, kw, sh, sw, oh, ow = int(geom[0]), int(geom[1]), int(geom[2]), int(geom[3]), int(geom[8]), int(geom[9])
    n, c = x.shape[0], x.shape[3]
    rows = n * oh * ow
    groups = w.shape[0]
    o = w.shape[0] * w.shape[2]
    zp = np.int32(params["zp_in"])
    out = np.empty((rows, o), np.int8)
    if groups > 1:
        cols = np.empty((rows, kh * kw * c), w.dtype)
        _conv_im2col_i8(x, cols, zp, geom)
        ci = c // groups
        og = w.shape[2]
        acc = np.empty((rows, o), w.dtype)
        c3 = cols.reshape(rows, kh * kw, c)
        for g in range(groups):
            part = np.ascontiguousarray(c3[:, :, g * ci : (g + 1) * ci]).reshape(rows, -1)
            np.matmul(part, w[g], out=acc[:, g * og : (g + 1) * og])
        _conv_requant(acc, params["bias"], params["m"], params["left"], params["right"],
                      params["zp_out"], params["lo"], params["hi"], out)
        return [out.reshape(n, oh, ow, o)]
    # Row tiles: patches -> GEMM -> requantize, each tile staying in cache.
    tile = min(int(params["tile"]), rows)
    w0 = w[0]
    k = w0.shape[0]
    cols = np.empty((tile, k), w.dtype)
    acc = np.empty((tile, o), w.dtype)
    bias_t, m_t, l_t, r_t = params["bias_t"], params["m_t"], params["left_t"], params["right_t"]
    zp_out, lo, hi = params["zp_out"], params["lo"], params["hi"]
    pointwise = params["pointwise"]
    if pointwise:
        x2 = x.reshape(rows * c)
    else:
        pad = params["pad"]  # pt, pl, Hp, Wp
        xp = np.empty((n, int(pad[2]), int(pad[3]), c), w.dtype)
        _conv_pad_offset(x, zp, int(pad[0]), int(pad[1]), xp)
    for r0 in range(0, rows, tile):
        r1 = min(rows, r0 + tile)
        nr = r1 - r0
        cb = cols[:nr]
        if pointwise:
            _conv_offset_rows(x2[r0 * c : r1 * c], zp, cb.reshape(-1))
        else:
            _conv_im2col_padded(xp, cb, r0, r1, geom)
        ab = acc[:nr]
        np.matmul(cb, w0, out=ab)
        _conv_requant_flat(ab.reshape(-1), bias_t, m_t, l_t, r_t, zp_out, lo, hi,
                           out[r0:r1].reshape(-1))
    return [out.reshape(n, oh, ow, o)]


@runner("depthwise_conv2d_i8")
def run_depthwise_conv2d_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    shp = params["out_shape"]
    out = np.empty((x.shape[0], shp[1], shp[2], shp[3]), np.int8)
    if "wt" in params:
        _dw_conv_flat_i8(x, params["wt"], params["bias_t"], params["m_t"], params["left_t"],
                         params["right_t"], params["zp_in"], params["zp_out"], params["lo"],
                         params["hi"], out, params["geom"])
    else:
        _dw_conv_i8(x, params["w"], params["bias"], params["m"], params["left"],
                    params["right"], params["zp_in"], params["zp_out"], params["lo"],
                    params["hi"], out, params["geom"])
    return [out]


@runner("fully_connected_i8")
def run_fully_connected_i8(inputs, params):
    wt = params["w"]  # [D, U]
    d = wt.shape[0]
    cols = _conv_offset_cols(inputs[0], params["zp_in"], wt.dtype).reshape(-1, d)
    acc = cols @ wt
    out = np.empty(acc.shape, np.int8)
    _fc_requant(acc, params["bias"], params["eff"], params["zp_out"], params["lo"], params["hi"], out)
    return [out.reshape(params["out_shape"])]


@runner("transpose_conv_i8")
def run_transpose_conv_i8(inputs, params):
    x = inputs[0]
    wt = params["w"]  # [C, KH*KW*O]
    geom = params["geom"]  # sh, sw, pt, pl, kh, kw
    n, h, wd, c = x.shape
    kh, kw = int(geom[4]), int(geom[5])
    shp = params["out_shape"]
    o = shp[3]
    cols = _conv_offset_cols(x, params["zp_in"], wt.dtype).reshape(n * h * wd, c)
    taps = (cols @ wt).reshape(n, h, wd, kh, kw, o)
    acc = np.zeros((n, shp[1], shp[2], o), wt.dtype)
    _tconv_scatter(taps, acc, geom)
    out = np.empty((n * shp[1] * shp[2], o), np.int8)
    _conv_requant(acc.reshape(-1, o), params["bias"], params["m"], params["left"],
                  params["right"], params["zp_out"], params["lo"], params["hi"], out)
    return [out.reshape(n, shp[1], shp[2], o)]


@runner("batch_matmul_i8")
def run_batch_matmul_i8(inputs, params):
    dt = np.float32 if params["f32"] else np.float64
    a = inputs[0]
    a_f = _conv_offset_cols(a, params["zp_a"], dt).reshape(a.shape)
    if params["adj_x"]:
        a_f = np.swapaxes(a_f, -1, -2)
    if "rhs" in params:
        b_f = params["rhs"]
    else:
        b = inputs[1]
        b_f = _conv_offset_cols(b, params["zp_b"], dt).reshape(b.shape)
        if params["adj_y"]:
            b_f = np.swapaxes(b_f, -1, -2)
    acc = np.matmul(a_f, b_f)
    cols = acc.shape[-1]
    out = np.empty(acc.shape, np.int8)
    _conv_requant(acc.reshape(-1, cols), params["bias"], params["m"], params["left"],
                  params["right"], params["zp_out"], params["lo"], params["hi"],
                  out.reshape(-1, cols))
    return [out.reshape(params["out_shape"])]


# ---------------------------------------------------------------------------------------------
# Lowerings (compile time)


def _conv_gemm_dtype(w_kc: np.ndarray, zp_in: int) -> type:
    """float32 if every partial sum of Σ_k (x − zp)·w[k, c] is exactly representable in
    float32 (bound below 2^24), else float64. w_kc: [K, C] integer weights."""
    xmax = max(127 - zp_in, zp_in + 128)
    bound = int(np.abs(w_kc.astype(np.int64)).sum(axis=0).max(initial=0)) * xmax
    return np.float32 if bound < (1 << 24) else np.float64


def _conv_multipliers(s_in: float, s_w: np.ndarray, s_out: float, channels: int):
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (channels,))
    eff = [float(s_in) * float(s) / float(s_out) for s in s_w.tolist()]
    m, sh = quantize_multipliers(eff)
    left, right = split_shifts(sh)
    return m, left, right


def _conv_tile(rows: int, k: int, o: int) -> int:
    """Rows per tile: the patch and accumulator tiles stay around 128 KiB (L2-resident)."""
    tile = (32768 // max(k, o, 1)) // 8 * 8
    return int(max(16, min(rows, tile)))


def _conv_tiled_channels(rows: int, **arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel arrays tiled `rows` times (name -> name_t), for flat requant loops."""
    return {f"{k}_t": np.ascontiguousarray(np.tile(v, rows)) for k, v in arrays.items()}


def _conv_bias(op, channels: int) -> np.ndarray | None:
    if op.bias is None:
        return np.zeros(channels, np.int32)
    b = constant_array(op.bias)
    if b is None:
        return None
    return np.ascontiguousarray(b, dtype=np.int32).reshape(channels)


def _is_i8_tensor(v) -> bool:
    q = quant_type(v)
    return q is not None and q.storage_bits == 8 and q.is_signed


@lowering("nn.conv2d")
def lower_conv2d(op):
    if not (_is_i8_tensor(op.input) and _is_i8_tensor(op.output) and _is_i8_tensor(op.filter)):
        return None
    filt = constant_array(op.filter)
    bias = _conv_bias(op, shape(op.filter)[0])
    if filt is None or bias is None:
        return None
    n, h, w, c = shape(op.input)
    _, oh, ow, o = shape(op.output)
    _, kh, kw, ci = filt.shape
    groups = c // ci
    og = o // groups
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    s_in, zp_in = qparams(op.input)
    s_out, zp_out = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    m, left, right = _conv_multipliers(s_in, s_w, s_out, o)
    lo, hi = activation_bounds(op)
    # OHWI -> per group [KH*KW*I, O/G]
    w_kc = filt.astype(np.int32).transpose(1, 2, 3, 0).reshape(kh * kw * ci, o)
    dtype = _conv_gemm_dtype(w_kc, zp_in)
    packed = np.stack(
        [np.ascontiguousarray(w_kc[:, g * og : (g + 1) * og], dtype=dtype) for g in range(groups)]
    )
    pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
    params = {
        "w": packed,
        "geom": np.array([kh, kw, sh, sw, dh, dw, pt, pl, oh, ow], np.int64),
        "pointwise": bool(pointwise),
        "zp_in": zp_in,
        "zp_out": zp_out,
        "lo": lo,
        "hi": hi,
    }
    if groups > 1:
        params.update(bias=bias, m=m, left=left, right=right)
    else:
        rows = n * oh * ow
        tile = _conv_tile(rows, kh * kw * ci, o)
        params.update(_conv_tiled_channels(tile, bias=bias, m=m, left=left, right=right))
        params["tile"] = tile
        # padded input extent: exactly what the output windows read
        hp = (oh - 1) * sh + (kh - 1) * dh + 1
        wp = (ow - 1) * sw + (kw - 1) * dw + 1
        params["pad"] = np.array([pt, pl, hp, wp], np.int64)
    return "conv2d_i8", params, [0]


@lowering("nn.depthwise_conv2d")
def lower_depthwise_conv2d(op):
    if not (_is_i8_tensor(op.input) and _is_i8_tensor(op.output) and _is_i8_tensor(op.filter)):
        return None
    filt = constant_array(op.filter)
    _, oh, ow, oc = shape(op.output)
    bias = _conv_bias(op, oc)
    if filt is None or bias is None:
        return None
    n, h, w, c = shape(op.input)
    _, kh, kw, _ = filt.shape
    mult = oc // c
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    s_in, zp_in = qparams(op.input)
    s_out, zp_out = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    m, left, right = _conv_multipliers(s_in, s_w, s_out, oc)
    lo, hi = activation_bounds(op)
    params = {
        "geom": np.array([sh, sw, dh, dw, pt, pl, mult], np.int64),
        "out_shape": [n, oh, ow, oc],
        "zp_in": zp_in,
        "zp_out": zp_out,
        "lo": lo,
        "hi": hi,
    }
    wk = np.ascontiguousarray(filt.reshape(kh, kw, oc), dtype=np.int32)
    if sw == 1 and mult == 1:
        params["wt"] = np.ascontiguousarray(np.tile(wk, (1, 1, ow)))
        params.update(_conv_tiled_channels(ow, bias=bias, m=m, left=left, right=right))
    else:
        params.update(w=wk, bias=bias, m=m, left=left, right=right)
    return "depthwise_conv2d_i8", params, [0]


@lowering("nn.fully_connected")
def lower_fully_connected(op):
    if not (_is_i8_tensor(op.input) and _is_i8_tensor(op.output) and _is_i8_tensor(op.filter)):
        return None
    filt = constant_array(op.filter)
    units, depth = shape(op.filter)
    bias = _conv_bias(op, units)
    if filt is None or bias is None:
        return None
    s_in, zp_in = qparams(op.input)
    s_out, zp_out = qparams(op.output)
    s_w, zp_w, axis = axis_qparams(op.filter)
    if axis not in (-1, 0):
        return None
    w = filt.astype(np.int32)
    if axis == -1 and zp_w[0] != 0:
        w = w - int(zp_w[0])  # the per-tensor path's weights_offset
    s_w = np.broadcast_to(s_w, (units,))
    eff = np.array([float(s_in) * float(s) / float(s_out) for s in s_w.tolist()], np.float64)
    wt = w.T  # [D, U]
    dtype = _conv_gemm_dtype(wt, zp_in)
    lo, hi = activation_bounds(op)
    return (
        "fully_connected_i8",
        {
            "w": np.ascontiguousarray(wt, dtype=dtype),
            "bias": bias,
            "eff": eff,
            "zp_in": zp_in,
            "zp_out": zp_out,
            "lo": lo,
            "hi": hi,
            "out_shape": list(shape(op.output)),
        },
        [0],
    )


def _conv_out_size(size: int, kernel_size: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - kernel_size + stride) // stride


@lowering("nn.transpose_conv")
def lower_transpose_conv(op):
    if not (_is_i8_tensor(op.input) and _is_i8_tensor(op.output) and _is_i8_tensor(op.filter)):
        return None
    filt = constant_array(op.filter)
    n, oh, ow, o = shape(op.output)
    bias = _conv_bias(op, o)
    if filt is None or bias is None:
        return None
    _, h, w, c = shape(op.input)
    _, kh, kw, _ = filt.shape
    sh, sw = ints(op.stride)
    padding = op.padding.data
    # TFLite derives the padding from the output size, as if it were a convolution's input.
    pt, _ = same_padding(oh, kh, sh, 1, _conv_out_size(oh, kh, sh, padding))
    pl, _ = same_padding(ow, kw, sw, 1, _conv_out_size(ow, kw, sw, padding))
    s_in, zp_in = qparams(op.input)
    s_out, zp_out = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    m, left, right = _conv_multipliers(s_in, s_w, s_out, o)
    lo, hi = activation_bounds(op)
    # OHWI -> [I, KH*KW*O]
    wt = filt.astype(np.int32).transpose(3, 1, 2, 0).reshape(c, kh * kw * o)
    # exactness bound: an output sums over every (ci, ky, kx) at most once
    dtype = _conv_gemm_dtype(filt.astype(np.int32).reshape(o, -1).T, zp_in)
    return (
        "transpose_conv_i8",
        {
            "w": np.ascontiguousarray(wt, dtype=dtype),
            "bias": bias,
            "m": m,
            "left": left,
            "right": right,
            "geom": np.array([sh, sw, pt, pl, kh, kw], np.int64),
            "out_shape": [n, oh, ow, o],
            "zp_in": zp_in,
            "zp_out": zp_out,
            "lo": lo,
            "hi": hi,
        },
        [0],
    )


@lowering("nn.batch_matmul")
def lower_batch_matmul(op):
    a, b, out = op.operands[0], op.operands[1], op.results[0]
    if not (_is_i8_tensor(a) and _is_i8_tensor(b) and _is_i8_tensor(out)):
        return None
    s_a, zp_a = qparams(a)
    s_b, zp_b = qparams(b)
    s_out, zp_out = qparams(out)
    adj_x = bool(op.adj_x.value.data) if op.adj_x is not None else False
    adj_y = bool(op.adj_y.value.data) if op.adj_y is not None else False
    a_shape = shape(a)
    depth = a_shape[-2] if adj_x else a_shape[-1]
    m, sh = quantize_multiplier(float(s_a) * float(s_b) / float(s_out))
    cols = shape(out)[-1]
    left, right = split_shifts(np.full(cols, sh, np.int32))
    xmax = max(127 - zp_a, zp_a + 128) * max(127 - zp_b, zp_b + 128)
    f32 = depth * xmax < (1 << 24)
    params = {
        "f32": bool(f32),
        "adj_x": adj_x,
        "adj_y": adj_y,
        "zp_a": zp_a,
        "zp_b": zp_b,
        "zp_out": zp_out,
        "bias": np.zeros(cols, np.int32),
        "m": np.full(cols, m, np.int32),
        "left": left,
        "right": right,
        "lo": -128,
        "hi": 127,
        "out_shape": list(shape(out)),
    }
    rhs = constant_array(b)
    if rhs is not None:
        r = rhs.astype(np.int32) - zp_b
        if adj_y:
            r = np.swapaxes(r, -1, -2)
        params["rhs"] = np.ascontiguousarray(r, dtype=np.float32 if f32 else np.float64)
        return "batch_matmul_i8", params, [0]
    return "batch_matmul_i8", params
