"""int8 CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV and BATCH_MATMUL, bit-exact with LiteRT's
reference kernels (BUILTIN_REF); DEPTHWISE_CONV_2D lives in `int8_depthwise`:

  * CONV_2D   `reference_integer_ops::ConvPerChannel`: acc = Σ w·(x − zp_in) over in-image
    taps (+ bias[c]), out = clamp(MBQM(acc, m_c, sh_c) + zp_out, act), (m_c, sh_c) =
    QuantizeMultiplier(double(s_in)·double(s_w[c]) / double(s_out)). Grouped convolutions.
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
from qcc.dialects import nn

from ..fixedpoint import (
    fast_requant_tables,
    mbqm_fast,
    njit,
    quantize_multiplier,
    quantize_multipliers,
    requant_fast2_i8,
    round_half_away,
)
from .common import ints, same_padding
from .int8_lowering import (
    activation_bounds,
    axis_qparams,
    constant_array,
    qparams,
    quant_type,
    shape,
)
from .int8_madd import (
    BYTE_PATHS,
    INT16_PATHS,
    dot_pack,
    madd_fix_buffers,
    madd_fix_leaf,
    madd_gemm,
    madd_pack,
    madd_rows_i16,
    madd_row_form,
    madd_rq_pack,
    madd_tiles_i32,
    madd_tiles_rq,
    madd_wrap32,
)
from .int8_registry import DirectCall, channel_rows, fixed_call, runner
from .int8_vnni import (
    _vnni_tiles,
    vnni_conv_rq_kernel,
    vnni_gemm,
    vnni_im2col,
    vnni_im2col_exact,
    vnni_im2col_is_narrow,
    vnni_im2col_narrow,
    vnni_pack,
    vnni_pad_u8,
    vnni_rows_u8,
    vnni_rq_epilogue,
    vnni_rq_pack,
)
from .registry import int8_lowering
from .simd import (
    INT8_GEMM_PATHS,
    MADD_ISA,
    int8_gemm_path,
    leaf_cfunc,
    simd_array,
    simd_call,
    simd_empty,
    simd_f64_ptr,
    simd_i8_ptr,
    simd_i16_ptr,
    simd_i32_ptr,
    simd_i64_ptr,
    simd_max,
    simd_min,
    simd_ptr,
    simd_u8_ptr,
)

# ---------------------------------------------------------------------------------------------
# Numba loops


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
            v = mbqm_fast(np.int64(a[c]) + bias[c], np.int64(m[c]), np.int64(left[c]),
                          np.int64(right[c])) + zp_out
            v = simd_min(simd_max(v, lo), hi)
            o[c] = v


@njit(cache=True, nogil=True)
def _conv_requant_flat(acc, bias, m, left, right, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """`_conv_requant` on flat int32 accumulators of rows of C channels, the per-channel
    params repeated over a whole number of rows (`channel_rows`): blocks of that length
    are contiguous loops that vectorize whatever C is (a transpose convolution's 4 taps of
    one channel would otherwise run scalar, ~7x slower)."""
    n = out.size
    span = bias.size
    for start in range(0, n, span):
        base = np.uint64(start)  # unsigned indices: no wraparound checks
        for j in range(simd_min(span, n - start)):
            i = base + np.uint64(j)
            v = mbqm_fast(np.int64(acc[i]) + bias[j], np.int64(m[j]), np.int64(left[j]),
                          np.int64(right[j])) + zp_out
            out[i] = simd_min(simd_max(v, lo), hi)


@njit(cache=True, nogil=True, inline="always")
def _fc_requant(acc, bias, eff, zp_out, lo, hi, out):  # pragma: no cover - jitted
    """out[r, c] = clamp(round_half_away(double(int32(acc[r, c]) + bias[c]) · eff[c]) + zp_out).
    Inlined into the int16 multiply-add path's kernel (`_fc_make_madd`) and into the leaf
    the VNNI kernel calls (`_fc_requant_leaf`): one compile each, not two."""
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
            q = simd_min(simd_max(q, -1e9), 1e9)
            v = np.int64(q) + zp_out
            v = simd_min(simd_max(v, lo), hi)
            o[c] = v


@njit(cache=True, nogil=True, inline="always")
def _conv_pad_offset(x1, n, h, w, c, zp, pt, pl, p1, hp, wp):  # pragma: no cover - jitted
    """xp[b, pt + y, pl + x, c] = x[b, y, x, c] − zp for the part of x that fits in xp, 0 in
    the border (padded taps then contribute nothing, as TFLite skips them). x1, p1: the flat
    int8 input [n, h, w, c] and int16 padded copy [n, hp, wp, c] (flat, and filled by a
    loop: a reshape or a slice fill here compiles for ~0.1-0.3 s each)."""
    for i in range(p1.size):
        p1[i] = 0
    h2 = simd_min(h, hp - pt)
    w2 = simd_min(w, wp - pl)
    z = np.int32(zp)
    for b in range(n):
        for y in range(h2):
            src = np.uint64(((b * h + y) * w) * c)
            dst = np.uint64(((b * hp + pt + y) * wp + pl) * c)
            for j in range(w2 * c):
                p1[dst + np.uint64(j)] = np.int32(x1[src + np.uint64(j)]) - z


@njit(cache=True, nogil=True)
def _conv_offset_rows(x, zp, out):  # pragma: no cover - jitted
    """out[i] = x[i] − zp (1-D; the rows of a pointwise conv's input)."""
    z = np.int32(zp)
    for i in range(out.size):
        out[i] = np.int32(x[i]) - z


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


def _conv_fast_tables(params, tiled: bool):
    pre = "rqt_" if tiled else "rq_"
    return [params[pre + k] for k in _RQ_TABLES]


def _conv_requantize(acc, params, out):
    """acc [R, C] (exact integers) -> out int8 [R, C]: `requant_fast2_i8` when the GEMM ran
    in float32 (accumulators below 2^24) and the block is not tiny, the integer `mbqm` loop
    otherwise. Measured on AVX-512 (Zen 4): integer loop ~0.6 ns per output, float32 path
    ~0.35 ns when right shifts are >= 7 (test A alone decides), ~0.6 ns below that."""
    zp, lo, hi = params["zp_out"], params["lo"], params["hi"]
    if acc.dtype != np.float32 or "rq_eff" not in params or acc.size < 8192:
        # (the integer loop also wins on small blocks: the fast path has a fixed cost)
        _conv_requant(acc, params["bias"], params["m"], params["left"], params["right"],
                      zp, lo, hi, out)
        return
    rows, c = acc.shape
    k = params["rq_k"]
    full = (rows // k) * k if k > 1 else 0
    if full:
        requant_fast2_i8(acc[:full].reshape(full // k, k * c), *_conv_fast_tables(params, True),
                        zp, lo, hi, out[:full].reshape(full // k, k * c))
    if full < rows:
        requant_fast2_i8(acc[full:], *_conv_fast_tables(params, False), zp, lo, hi, out[full:])


def _conv_prepared(params) -> dict:
    """Bind time: the step's compact params (int8 weights, bias, multipliers) plus what the
    GEMM path of this host reads, packed from them (`_conv_pack`), and the requantization
    tables of `_conv_requantize`."""
    w8 = params["w8"]  # [G, K, O/G] int8
    groups, k, og = w8.shape
    zp_in = int(params["zp_in"])
    m = np.asarray(params["m"], np.int64)
    shift = np.asarray(params["shift"], np.int64)
    bias = np.asarray(params["bias"], np.int32)
    prepared = {**params, **_conv_rq_params(bias, m, shift)}
    w_kc = w8[0].astype(np.int32) if groups == 1 else None
    path = int8_gemm_path()
    dtype = _conv_gemm_dtype(w8.reshape(groups * k, og) if groups > 1 else w_kc, zp_in)
    prepared["path"] = path if groups == 1 else "blas"
    if groups > 1:
        prepared["w"] = np.ascontiguousarray(w8, dtype=dtype)
    elif path == "vnni":
        prepared["vw"], prepared["vcorr"] = vnni_pack(w_kc, zp_in)
        prepared["acc_f32"] = dtype == np.float32
        rq = vnni_rq_pack(prepared["vcorr"], bias, m, shift, int(params["zp_out"]))
        if rq is not None:  # requantization fused into the VNNI micro-kernel
            prepared["vcorrb"], prepared["vrq"] = rq
    else:
        corr = None
        if path in BYTE_PATHS:
            prepared["mw"], corr = dot_pack(w_kc, zp_in, path)
        else:
            prepared["mw"] = madd_pack(w_kc)
        prepared["isa"] = MADD_ISA[path]
        prepared["mt"], prepared["mm"], prepared["ml"], prepared["mr"] = madd_rq_pack(
            bias, m, shift, corr)
    return prepared


def _conv_run_blas(x, params, geom, rows, o, out):
    """Grouped convolutions: float patches (exact: `_conv_gemm_dtype`) -> one BLAS matmul per
    group -> requantize."""
    w = params["w"]  # [G, K, O/G], float32 or float64
    kh, kw = int(geom[0]), int(geom[1])
    c = x.shape[3]
    groups, og = w.shape[0], w.shape[2]
    cols = np.empty((rows, kh * kw * c), w.dtype)
    _conv_im2col_i8(x, cols, np.int32(params["zp_in"]), geom)
    ci = c // groups
    acc = np.empty((rows, o), w.dtype)
    c3 = cols.reshape(rows, kh * kw, c)
    for g in range(groups):
        part = np.ascontiguousarray(c3[:, :, g * ci : (g + 1) * ci]).reshape(rows, -1)
        np.matmul(part, w[g], out=acc[:, g * og : (g + 1) * og])
    _conv_requantize(acc, params, out)


def _madd_make_conv(isa: int):
    """The whole-convolution kernel of the multiply-add path for one isa (a closure
    constant; `_conv_madd_kernel`): int16 rows x − zp_in (its "madd" leaves) or, for the
    byte paths ("dot", "avxvnni"), u8 rows x + 128 (the "dot" leaves, the VNNI path's). Its
    buffers are flat np.empty arrays and its leaves and GEMM take addresses: every array
    view, reshape or allocation form in a kernel costs compile time (this one compiled for
    ~0.5 s more when it sliced and reshaped)."""
    dot, elem, per = madd_row_form(isa)
    esize = np.dtype(elem).itemsize

    @njit(cache=True, nogil=True)
    def conv(x, out, zp_in, pad, geom, tile, w, t, m, left, right, o, zp, lo, hi, pointwise, leaves):  # pragma: no cover - jitted
        n, h, wd, c = x.shape
        rows = out.size // o
        kp = w.shape[1] * per
        k = geom[0] * geom[1] * c
        # 32 bytes of slack after xp and cols: the narrow leaf's moves overrun
        xp = simd_empty(32 if pointwise else n * pad[2] * pad[3] * c + 32, elem)
        if not pointwise:
            simd_call(leaves[0], (x, n, h, wd, c, zp_in, pad[0], pad[1], xp, pad[2], pad[3]))
        tile = simd_max(1, simd_min(tile, rows))
        cols = simd_empty(tile * kp + 32, elem)
        fx, hits = madd_fix_buffers(tile, w.shape[0])
        x0 = np.int64(x.ctypes.data)
        c0 = np.int64(cols.ctypes.data)
        o0 = np.int64(out.ctypes.data)
        for r0 in range(0, rows, tile):
            nr = simd_min(rows, r0 + tile) - r0
            if pointwise and dot:
                simd_call(leaves[2], (x0 + r0 * c, nr * c, k, kp, cols, nr))
            elif pointwise:
                simd_call(leaves[2], (x0 + r0 * c, nr * c, zp_in, k, kp, cols, nr))
            else:
                simd_call(leaves[1], (xp, n, pad[2], pad[3], c, cols, nr, kp, r0, r0 + nr, geom,
                                      geom.size))
            madd_tiles_rq(c0, nr, kp * esize, w, t, m, left, right, o, zp, lo, hi, o0 + r0 * o,
                          o, fx, hits, isa, leaves[3])

    return conv


_MADD_CONV: dict = {}


def _conv_madd_kernel(prepared):
    """The multiply-add path's whole-convolution kernel of a prepared step and its
    arguments after x and out but the leaves (one jitted call: patches, GEMM,
    requantization, tile by tile): kernel(x, out, *args, conv_leaves(names)), x int8
    [N, H, W, C] C-contiguous (pointwise: any H, W), out int8 [N, OH, OW, O] C-contiguous,
    made by the caller."""
    isa = int(prepared["isa"])
    if isa not in _MADD_CONV:
        _MADD_CONV[isa] = _madd_make_conv(isa)
    kernel = _MADD_CONV[isa]
    row_bytes = prepared["mw"].shape[1] * 4  # K2 int16 pairs or K4 byte quads
    # ~256 KiB of patch rows per tile (no accumulator tile)
    tile = max(int(prepared["tile"]), (262144 // row_bytes) // 4 * 4)
    args = (int(prepared["zp_in"]), prepared["pad"], prepared["geom"], tile, prepared["mw"],
            prepared["mt"], prepared["mm"], prepared["ml"], prepared["mr"],
            prepared["w8"].shape[2], int(prepared["zp_out"]), int(prepared["lo"]),
            int(prepared["hi"]), bool(prepared["pointwise"]))
    return kernel, args


# The whole-convolution kernels' leaves (`simd.leaf_cfunc`, called by address with
# `simd.simd_call`): the padded copy of the input, the patch rows of a tile, a pointwise
# tile's rows. Numba would compile a jitted callee again inside every kernel that calls it;
# a leaf compiles once, apart (a unit of the first run's parallel compile of its own).


def _leaf_pad_u8():
    @leaf_cfunc(11)
    def pad_u8(xa, n, h, w, c, zp, pt, pl, pa, hp, wp):  # pragma: no cover - jitted
        vnni_pad_u8(simd_array(simd_i8_ptr(xa), (n * h * w * c,)), n, h, w, c, zp, pt, pl,
                    simd_array(simd_u8_ptr(pa), (n * hp * wp * c,)), hp, wp)
    return pad_u8


def _leaf_pad_i16():
    @leaf_cfunc(11)
    def pad_i16(xa, n, h, w, c, zp, pt, pl, pa, hp, wp):  # pragma: no cover - jitted
        _conv_pad_offset(simd_array(simd_i8_ptr(xa), (n * h * w * c,)), n, h, w, c, zp, pt, pl,
                         simd_array(simd_i16_ptr(pa), (n * hp * wp * c,)), hp, wp)
    return pad_i16


def _leaf_patches(narrow: bool, dtype: str):
    """The patch-rows leaf for `dtype` ("u8", "i16"): `vnni_im2col_narrow` or
    `vnni_im2col_exact` (the closure constants select one; each leaf compiles only it)."""
    @leaf_cfunc(12)
    def patches(pa, n, hp, wp, c, ca, rows, kp, r0, r1, ga, ng):  # pragma: no cover - jitted
        xp = simd_array(simd_ptr(pa, dtype), (n, hp, wp, c))
        c1 = simd_array(simd_ptr(ca, dtype), (rows * kp,))
        geom = simd_array(simd_i64_ptr(ga), (ng,))
        if narrow:
            vnni_im2col_narrow(xp, c1, r0, r1, r0, kp, geom)
        else:
            vnni_im2col_exact(xp, c1, r0, r1, r0, kp, geom)
    return patches


def _leaf_rows_u8():
    @leaf_cfunc(6)
    def rows_u8(xa, nx, k, kp, oa, rows):  # pragma: no cover - jitted
        vnni_rows_u8(simd_array(simd_i8_ptr(xa), (nx,)), k, kp, simd_array(simd_u8_ptr(oa), (rows * kp,)),
                     rows)
    return rows_u8


def _leaf_rows_i16():
    @leaf_cfunc(7)
    def rows_i16(xa, nx, zp, k, kp, oa, rows):  # pragma: no cover - jitted
        madd_rows_i16(simd_array(simd_i8_ptr(xa), (nx,)), zp, k, kp,
                      simd_array(simd_i16_ptr(oa), (rows * kp,)), rows)
    return rows_i16


_CONV_LEAF_MAKERS = {"pad_u8": _leaf_pad_u8, "pad_i16": _leaf_pad_i16,
                     "im2col_u8": lambda: _leaf_patches(False, "u8"),
                     "im2col_i16": lambda: _leaf_patches(False, "i16"),
                     "narrow_u8": lambda: _leaf_patches(True, "u8"),
                     "narrow_i16": lambda: _leaf_patches(True, "i16"),
                     "rows_u8": _leaf_rows_u8, "rows_i16": _leaf_rows_i16}
_CONV_LEAVES: dict = {}
CONV_LEAF_NAMES = {"vnni": ("pad_u8", "im2col_u8", "rows_u8"),
                   "madd": ("pad_i16", "im2col_i16", "rows_i16", "madd_fix"),
                   "dot": ("pad_u8", "im2col_u8", "rows_u8", "madd_fix")}
"""The leaves each kind of whole-convolution kernel takes, in its `leaves` argument's order
(a step with narrow windows takes "narrow_u8" / "narrow_i16" for the im2col one:
`conv_leaf_names`)."""


def conv_leaf_names(kind: str, pointwise: bool, narrow: bool) -> tuple[str | None, ...]:
    """The leaves a step of `kind` ("vnni", "madd", "dot") calls, None for those it does not (a
    pointwise step: the padded copy and the patch rows; any other: the pointwise rows), the
    patch rows by 16-byte moves for narrow windows (`vnni_im2col_is_narrow`): a model then
    compiles only the leaves its layers use."""
    pad, im2col, rows, *rest = CONV_LEAF_NAMES[kind]
    if pointwise:
        return (None, None, rows, *rest)
    return (pad, im2col.replace("im2col", "narrow") if narrow else im2col, None, *rest)


def conv_leaf(name: str) -> int:
    """The address of the whole-convolution kernels' leaf `name`, made (compiled or loaded)
    on first use."""
    if name == "madd_fix":
        return madd_fix_leaf()
    if name not in _CONV_LEAVES:
        _CONV_LEAVES[name] = _CONV_LEAF_MAKERS[name]()
    return _CONV_LEAVES[name].address


def conv_leaf_call(name: str, *args: int) -> None:
    """Call the leaf `name` from Python (through ctypes, ~1 µs): steps that run outside a
    whole-convolution kernel (FULLY_CONNECTED's rows) share its compiled code."""
    conv_leaf(name)
    _CONV_LEAVES[name].ctypes(*args)


def conv_leaves(names: tuple[str | None, ...]) -> np.ndarray:
    """The `leaves` argument (int64 addresses, 0 for None) of a whole-convolution kernel
    (`conv_leaf_names`); made when a step first runs, so that the first run's helpers
    compile them."""
    return np.array([conv_leaf(name) if name else 0 for name in names], np.int64)


def _conv_run_vnni(x, params, geom, rows, o, out):
    """groups == 1 on AVX-512 VNNI (`int8_vnni`) when the requantization cannot be fused
    into the GEMM's epilogue (`vnni_rq_pack` declined the multipliers): u8 patches -> exact
    int8 GEMM (float32 accumulators below 2^24; int32 otherwise) -> requantize, tile by
    tile."""
    vw, vc = params["vw"], params["vcorr"]
    n, c = x.shape[0], x.shape[3]
    kp = vw.shape[1] * 4
    tile = min(int(params["tile"]), rows)
    acc = np.empty((tile, o), np.float32 if params["acc_f32"] else np.int32)
    cols = np.empty((tile, kp), np.uint8)
    pointwise = params["pointwise"]
    if pointwise:
        x1 = x.reshape(-1)
    else:
        pad = params["pad"]  # pt, pl, Hp, Wp
        xp = np.empty((n, int(pad[2]), int(pad[3]), c), np.uint8)
        vnni_pad_u8(np.ascontiguousarray(x).reshape(-1), *x.shape, params["zp_in"], int(pad[0]),
                    int(pad[1]), xp.reshape(-1), int(pad[2]), int(pad[3]))
    for r0 in range(0, rows, tile):
        r1 = min(rows, r0 + tile)
        nr = r1 - r0
        cb = cols[:nr]
        if pointwise:
            vnni_rows_u8(x1[r0 * c : r1 * c], c, kp, cb.reshape(-1), nr)
        else:
            vnni_im2col(xp, cb, r0, r1, geom)
        ab = acc[:nr]
        vnni_gemm(cb, vw, vc, o, ab)
        _conv_requantize(ab, params, out[r0:r1])


def _conv_vnni_fused(prepared):
    """The VNNI whole-convolution kernel of a prepared step with fused requantization
    (`vnni_conv_rq_kernel` for the step's epilogue, `vnni_rq_epilogue`), its arguments after
    x but the leaves, its compile key; see `_conv_whole`."""
    vw, vcb, vrq = prepared["vw"], prepared["vcorrb"], prepared["vrq"]
    lo, hi = int(prepared["lo"]), int(prepared["hi"])
    ep = vnni_rq_epilogue(vrq, lo, hi)
    kernel = vnni_conv_rq_kernel(ep)
    kp = vw.shape[1] * 4
    # u8 patch rows per tile: ~256 KiB (no accumulator tile)
    tile = max(int(prepared["tile"]), (262144 // kp) // 4 * 4)
    pointwise = bool(prepared["pointwise"])
    args = (int(prepared["zp_in"]), prepared["pad"], prepared["geom"], tile, vw, vcb, vrq,
            prepared["w8"].shape[2], lo, hi, pointwise)
    return kernel, args, ("conv2d_i8", "vnni", ep)


def _conv_whole(prepared):
    """The step's whole-convolution call, one jitted kernel: (kernel, args, compile key,
    leaf names), kernel(x, *args, conv_leaves(names)) taking x int8 [N, H, W, C]
    C-contiguous -> int8 [N, OH, OW, O] (a pointwise step takes any H, W), the key naming
    `PlanRunner`'s units; None where the step runs tile by tile from Python
    (`_conv_run_prepared`: grouped convolutions, or VNNI without the fused
    requantization)."""
    path = prepared["path"]
    geom, w8 = prepared["geom"], prepared["w8"]
    c = w8.shape[1] // (int(geom[0]) * int(geom[1]))

    def names(kind, itemsize):
        pointwise = bool(prepared["pointwise"])
        return conv_leaf_names(kind, pointwise, vnni_im2col_is_narrow(geom, c, itemsize))

    if path in INT16_PATHS:
        return (*_conv_madd_kernel(prepared), ("conv2d_i8", path), names("madd", 2))
    if path in BYTE_PATHS:
        return (*_conv_madd_kernel(prepared), ("conv2d_i8", path), names("dot", 1))
    if path == "vnni" and "vrq" in prepared:
        return (*_conv_vnni_fused(prepared), names("vnni", 1))
    return None


_CONV_PATHS = {"blas": _conv_run_blas, "vnni": _conv_run_vnni}
"""The tile-by-tile paths of `_conv_run_prepared` (the others run `_conv_whole`)."""


def _conv_run_prepared(x, params):
    x = np.ascontiguousarray(x)
    geom = params["geom"]
    oh, ow = int(geom[8]), int(geom[9])
    n = x.shape[0]
    rows = n * oh * ow
    w8 = params["w8"]
    o = w8.shape[0] * w8.shape[2]
    out = np.empty((rows, o), np.int8)
    _CONV_PATHS[params["path"]](x, params, geom, rows, o, out)
    return [out.reshape(n, oh, ow, o)]


@runner("conv2d_i8")
def run_conv2d_i8(inputs, params):
    """CONV_2D: the step bound on the fly (a plan binds it once: `_conv_bind`)."""
    return _conv_bind(params)(inputs, params)


def _conv_bind(params):
    """Plan-load binding of `run_conv2d_i8` (see `PlanRunner`): the weights packed for this
    host's GEMM path (`simd.int8_gemm_path`), then one whole-convolution kernel call
    (`_conv_whole`) where the path has one, else the tile loop (`_conv_run_prepared`)."""
    prepared = _conv_prepared(params)
    whole = _conv_whole(prepared)
    if whole is None:
        def run_tiles(inputs, _params):
            return _conv_run_prepared(inputs[0], prepared)

        run_tiles.compile_key = ("conv2d_i8", prepared["path"])
        return run_tiles
    kernel, fixed, key, leaf_names = whole
    direct = DirectCall(kernel)
    contiguous = np.ascontiguousarray
    args = None  # the fixed arguments and the leaves' addresses, made at the first run

    geom = prepared["geom"]
    o = int(prepared["w8"].shape[2])
    pointwise = bool(prepared["pointwise"])  # then any H, W: the output's are the input's
    oh, ow = int(geom[8]), int(geom[9])
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        nonlocal args
        x = inputs[0]
        if args is None:
            args = (*fixed, conv_leaves(leaf_names))
        s = x.shape
        out = empty((s[0], s[1], s[2], o) if pointwise else (s[0], oh, ow, o), i8)
        direct.call(x if x.flags.c_contiguous else contiguous(x), out, *args)
        return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        nonlocal args
        x, out = ins[0], outs[0]
        if x.dtype != i8 or out.dtype != i8 or x.ndim != 4 or not (
                x.flags.c_contiguous and out.flags.c_contiguous):
            return None
        s = x.shape
        if out.shape != ((s[0], s[1], s[2], o) if pointwise else (s[0], oh, ow, o)):
            return None
        if args is None:
            args = (*fixed, conv_leaves(leaf_names))
        return fixed_call(kernel, (x, out, *args))

    def compile_kernel():  # for the run's argument types, without running it
        example = (np.zeros((1, 1, 1, 1), np.int8), np.zeros((1, 1, 1, 1), np.int8), *fixed,
                   np.zeros(1, np.int64))
        kernel.compile(tuple(kernel.typeof_pyval(a) for a in example))

    run.into = into
    run.compile_key = key
    # PlanRunner's units of compile work: the kernel (shared by the steps of its key; ~4x a
    # leaf's compile), then each leaf (shared by every whole-convolution kernel of its kind)
    run.compile_units = ((key, compile_kernel, 4.0),
                         *((("conv2d_i8", "leaf", name), lambda name=name: conv_leaf(name))
                           for name in leaf_names if name))
    return run


run_conv2d_i8.bind = _conv_bind


def _fc_prepared(params) -> dict:
    """Bind time: the FULLY_CONNECTED weights [D, U] packed for this host's GEMM path."""
    w = params["w8"]  # int8, or int16 when a per-tensor weight zero point was folded in
    zp_in = int(params["zp_in"])
    path = int8_gemm_path()
    if (path == "vnni" or path in BYTE_PATHS) and w.dtype != np.int8:
        # vpdpbusd, sdot read s8: the best int16 path instead
        path = next(p for p in INT8_GEMM_PATHS if p in INT16_PATHS)
    prepared = dict(params, path=path)
    w32 = w.astype(np.int32)
    if path == "vnni":
        prepared["vw"], prepared["vcorr"] = vnni_pack(w32, zp_in)
    elif path in BYTE_PATHS:
        prepared["mw"], prepared["dcorr"] = dot_pack(w32, zp_in, path)
        prepared["dcorr32"] = madd_wrap32(prepared["dcorr"])  # the int32 taps' form
        prepared["isa"] = MADD_ISA[path]
    else:
        prepared["mw"], prepared["isa"] = madd_pack(w32), MADD_ISA[path]
    return prepared


def _int_gemm_rows(x, params) -> np.ndarray:
    """int32 acc [R, U] = Σ_d (x[r, d] − zp_in)·w8[d, u], exact, for the rows of x (its
    values in C order, R·D of them) on the GEMM path `_fc_prepared` packed w8 [D, U] for."""
    d, u = params["w8"].shape
    x = np.ascontiguousarray(x).reshape(-1)
    rows = x.size // d
    acc = np.empty((rows, u), np.int32)
    if params["path"] == "vnni":
        vw = params["vw"]
        a = np.empty((rows, vw.shape[1] * 4), np.uint8)
        if rows:  # the convolutions' rows leaf (compiled once for both), called by address
            conv_leaf_call("rows_u8", x.ctypes.data, x.size, d, a.shape[1], a.ctypes.data, rows)
        vnni_gemm(a, vw, params["vcorr"], u, acc)
    elif params["path"] in BYTE_PATHS:
        mw = params["mw"]
        a = np.empty((rows, mw.shape[1] * 4), np.uint8)
        if rows:
            conv_leaf_call("rows_u8", x.ctypes.data, x.size, d, a.shape[1], a.ctypes.data, rows)
        madd_gemm(a, mw, u, acc, params["isa"])
        acc += params["dcorr32"]  # int32 lanes wrap, as the GEMM's
    else:
        mw = params["mw"]
        a = np.empty((rows, mw.shape[1] * 2), np.int16)
        if rows:
            conv_leaf_call("rows_i16", x.ctypes.data, x.size, int(params["zp_in"]), d,
                           a.shape[1], a.ctypes.data, rows)
        madd_gemm(a, mw, u, acc, params["isa"])
    return acc


@runner("fully_connected_i8")
def run_fully_connected_i8(inputs, params):
    """FULLY_CONNECTED: the step bound on the fly (a plan binds it once: `_fc_bind`)."""
    return _fc_bind(params)(inputs, params)


def _fc_make_madd(isa: int):
    """FULLY_CONNECTED on the multiply-add path (isa a closure constant; a byte path: u8
    rows, its zero-point correction in the int64 bias) in one jitted call: the rows leaf,
    the int32 GEMM, the float requantization (`_fc_requant`, inlined: a leaf of its own
    would be one more compile, for this kernel alone). A model's heads are small layers, where five
    Python-level calls (the rows, the GEMM, the requantization and their buffers) cost more
    than the arithmetic (~7 µs a step against ~2)."""
    dot, elem, per = madd_row_form(isa)
    esize = np.dtype(elem).itemsize

    @njit(cache=True, nogil=True)
    def fc(x, out, w, zp_in, d, bias, eff, zp_out, lo, hi, leaf):  # pragma: no cover - jitted
        rows, u = out.shape
        kp = w.shape[1] * per
        a = simd_empty(rows * kp + 32, elem)
        acc = simd_empty((rows, u), np.int32)
        if rows:
            if dot:
                simd_call(leaf, (x, x.size, d, kp, a, rows))
            else:
                simd_call(leaf, (x, x.size, zp_in, d, kp, a, rows))
            madd_tiles_i32(np.int64(a.ctypes.data), rows, np.int64(kp * esize), w, u,
                           np.int64(acc.ctypes.data), np.int64(u * 4), isa)
            _fc_requant(acc, bias, eff, zp_out, lo, hi, out)

    return fc


@njit(cache=True, nogil=True)
def _fc_vnni(x, out, w, corr, d, bias, eff, zp_out, lo, hi, leaf, rq):  # pragma: no cover - jitted
    """`_fc_make_madd`'s kernel on the AVX-512 VNNI path: u8 rows (the rows leaf), the
    `vpdpbusd` GEMM with its zero-point correction (`vnni_pack`), the float requantization."""
    rows, u = out.shape
    kp = w.shape[1] * 4
    a = simd_empty((rows, kp), np.uint8)
    acc = simd_empty((rows, u), np.int32)
    if rows:
        simd_call(leaf, (x, x.size, d, kp, a, rows))
        _vnni_tiles(a, w, corr, u, acc, False)
        simd_call(rq, (acc, rows, u, bias, eff, zp_out, lo, hi, out))


_FC_MADD: dict = {}
_FC_RQ_LEAF: list = []


def _fc_requant_leaf() -> int:
    """The address of `_fc_requant` as a leaf (`simd.leaf_cfunc`), made (compiled or loaded)
    on first use: the VNNI FULLY_CONNECTED kernel calls it by address, so it compiles apart
    (a unit of the first run's parallel compile). Its arguments: acc int32 [rows, u], rows,
    u, bias int32 [u], eff float64 [u], zp_out, lo, hi, out int8 [rows, u]."""
    if not _FC_RQ_LEAF:
        @leaf_cfunc(9)
        def fc_requant(acca, rows, u, ba, ea, zp_out, lo, hi, oa):  # pragma: no cover - jitted
            _fc_requant(simd_array(simd_i32_ptr(acca), (rows, u)), simd_array(simd_i32_ptr(ba), (u,)),
                        simd_array(simd_f64_ptr(ea), (u,)), zp_out, lo, hi,
                        simd_array(simd_i8_ptr(oa), (rows, u)))

        _FC_RQ_LEAF.append(fc_requant)
    return _FC_RQ_LEAF[0].address


def _fc_bind(params):
    """Plan-load binding of `run_fully_connected_i8`: the weights packed for this host's GEMM
    path (`_fc_prepared`), then one jitted call a step (`_fc_make_madd`, `_fc_vnni`)."""
    prepared = _fc_prepared(params)
    d, u = prepared["w8"].shape
    path = prepared["path"]
    bias = np.ascontiguousarray(prepared["bias"], np.int32)
    if path in BYTE_PATHS:  # its correction: int64, exact (`_fc_requant` adds in int64)
        bias = bias.astype(np.int64) + prepared["dcorr"]
    tail = (int(d), bias, np.ascontiguousarray(prepared["eff"], np.float64),
            int(prepared["zp_out"]), int(prepared["lo"]), int(prepared["hi"]))
    if path == "vnni":
        kernel, rows_leaf = _fc_vnni, "rows_u8"
        fixed = (prepared["vw"], prepared["vcorr"], *tail)
    else:
        isa = int(prepared["isa"])
        if isa not in _FC_MADD:
            _FC_MADD[isa] = _fc_make_madd(isa)
        kernel, rows_leaf = _FC_MADD[isa], "rows_u8" if path in BYTE_PATHS else "rows_i16"
        fixed = (prepared["mw"], int(prepared["zp_in"]), *tail)
    direct = DirectCall(kernel)
    out_shape = tuple(int(v) for v in params["out_shape"])
    empty, contiguous, i8 = np.empty, np.ascontiguousarray, np.int8
    leaves = None  # the leaves' addresses (rows; VNNI: and requantization), made at first run

    def run(inputs, _params):
        nonlocal leaves
        x = inputs[0]
        if leaves is None:
            leaves = (conv_leaf(rows_leaf), *((_fc_requant_leaf(),) if path == "vnni" else ()))
        if not x.flags.c_contiguous:
            x = contiguous(x)
        out = empty(out_shape, i8)
        direct.call(x.reshape(-1), out.reshape(-1, u), *fixed, *leaves)
        return [out]

    n_leaves = 2 if path == "vnni" else 1

    def compile_kernel():  # for the run's argument types, on no rows (no leaf is called)
        kernel(np.empty(0, np.int8), np.empty((0, u), np.int8), *fixed, *(0,) * n_leaves)

    # PlanRunner's units of compile work: the kernel (~3x a leaf's compile), the rows leaf
    # (shared with the convolutions), on the VNNI path the requantization leaf
    run.compile_units = ((("fully_connected_i8", path, "kernel"), compile_kernel, 3.0),
                         (("conv2d_i8", "leaf", rows_leaf), lambda: conv_leaf(rows_leaf)),
                         *(((("fully_connected_i8", "requant"), _fc_requant_leaf),)
                           if path == "vnni" else ()))
    run.numpy_form = lambda inputs, _params: _fc_numpy(inputs, params, run)
    return run


def _fc_numpy(inputs, params, kernel_run):
    """FULLY_CONNECTED in NumPy (`plan._Units.deferred`): the exact int64 GEMM of x − zp_in
    by w8, then `_fc_requant`'s double-precision requantization in the same order. Layers
    whose int32 accumulators could wrap run the kernel (`kernel_run`)."""
    w = params["w8"]
    d, u = w.shape
    if d * 255 * max(int(np.abs(w.astype(np.int64)).max(initial=0)), 1) >= 2**31:
        return kernel_run(inputs, params)
    x = np.asarray(inputs[0], np.int64).reshape(-1, d) - int(params["zp_in"])
    acc = x @ w.astype(np.int64) + np.asarray(params["bias"], np.int64)
    q = np.clip(round_half_away(acc.astype(np.float64) * np.asarray(params["eff"], np.float64)),
                -1e9, 1e9)
    v = q.astype(np.int64) + int(params["zp_out"])
    out = np.clip(v, int(params["lo"]), int(params["hi"])).astype(np.int8)
    return [out.reshape(tuple(int(v) for v in params["out_shape"]))]


run_fully_connected_i8.bind = _fc_bind


@runner("transpose_conv_i8")
def run_transpose_conv_i8(inputs, params):
    """TRANSPOSE_CONV: the step bound on the fly (a plan binds it once: `_tconv_bind`)."""
    return _tconv_bind(params)(inputs, params)


def _tconv_bind(params):
    """Plan-load binding of `run_transpose_conv_i8`. Every input pixel's taps are one row of
    an integer GEMM, taps[p, (ky, kx, o)] = Σ_c (x[p, c] − zp_in)·w[o, ky, kx, c] (exact
    int32, on this host's GEMM path: `_fc_prepared` packs w8 [C, KH·KW·O]), summed into the
    output pixels they reach (`_tconv_scatter`) and requantized per output channel.

    When the taps do not overlap and tile the output exactly (kernel == stride, no padding,
    OH = H·KH, OW = W·KW: an upsampling head), output row iy·KH + ky is, pixel by pixel,
    the taps (kx, o) of input row iy for that ky: a 1x1 convolution with KW·O output
    channels. With KW·O >= 16 each ky runs as one (`_conv_bind`: the requantization fused
    into the GEMM on every path) and its rows are copied into place; with fewer (a one- or
    two-channel head) every tap (ky, kx, o) is a channel of one such convolution, whose
    (kx, o) runs are then moved into place: the model's convolution kernel serves, where an
    int32 GEMM and a requantization pass compiled apart for ~0.6 s of a cold start (and ran
    ~25 % slower on selfie_segmentation's 2x2 head)."""
    geom = params["geom"]  # sh, sw, pt, pl, kh, kw
    sh, sw, pt, pl, kh, kw = (int(v) for v in geom)
    n, oh, ow, o = (int(v) for v in params["out_shape"])
    _, h, wd, c = (int(v) for v in params["in_shape"])
    disjoint = sh == kh and sw == kw and pt == 0 and pl == 0 and oh == h * kh and ow == wd * kw
    if disjoint and kw * o >= 16:  # whole 16-channel blocks: the fused GEMM epilogue pays
        rows = [_conv_bind(_tconv_row_params(params, ky)) for ky in range(kh)]

        def run_rows(inputs, _params):
            x = inputs[0]
            b = x.shape[0]
            out = np.empty((b, oh, ow, o), np.int8)
            by_ky = out.reshape(b, h, kh, wd * kw * o)
            for ky in range(kh):
                by_ky[:, :, ky, :] = rows[ky]([x], None)[0].reshape(b, h, wd * kw * o)
            return [out]

        if hasattr(rows[0], "compile_units"):  # the rows' convolution kernel and leaves
            run_rows.compile_units = rows[0].compile_units
        return run_rows
    if disjoint:  # few output channels: every tap a channel of one convolution, then moved
        taps = _conv_bind(_tconv_row_params(params, 0, kh))  # q [N, H, W, (ky, kx, o)]
        run_bytes = kw * o  # one (kx, o) run, moved as one unsigned integer when it can be
        unit = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(run_bytes)

        def run_taps(inputs, _params):
            x = inputs[0]
            b = x.shape[0]
            q = taps([x], None)[0]
            out = np.empty((b, oh, ow, o), np.int8)
            if unit is not None:
                src = q.reshape(b, h, wd, kh * run_bytes).view(unit)
                dst = out.reshape(b, h, kh, wd * run_bytes).view(unit)
                np.copyto(dst, src.transpose(0, 1, 3, 2))
            else:
                src = q.reshape(b, h, wd, kh, run_bytes)
                np.copyto(out.reshape(b, h, kh, wd, run_bytes), src.transpose(0, 1, 3, 2, 4))
            return [out]

        if hasattr(taps, "compile_units"):  # the convolution kernel and its leaves
            run_taps.compile_units = taps.compile_units
        return run_taps
    prepared = _fc_prepared(params)
    rq = _conv_rq_params(params["bias"], params["m"], params["shift"])
    bias, m, left, right = (channel_rows(rq[k], 256) for k in ("bias", "m", "left", "right"))
    zp, lo, hi = params["zp_out"], params["lo"], params["hi"]
    rows_leaf = "rows_u8" if prepared["path"] in ("vnni", *BYTE_PATHS) else "rows_i16"

    def units(name, compile_rest):
        """PlanRunner's units of compile work: the int32 GEMM, the rows leaf (the
        convolutions'), then this step's scatter and requantization: parts a first run
        compiles in parallel, where one unit would end a model's start-up alone."""
        return ((("transpose_conv_i8", prepared["path"], "gemm"),
                 lambda: _int_gemm_rows(np.empty(0, np.int8), prepared), 2.0),
                (("conv2d_i8", "leaf", rows_leaf), lambda: conv_leaf(rows_leaf)),
                (("transpose_conv_i8", name), compile_rest))

    def run(inputs, _params):
        x = inputs[0]
        b, hx, wx, _ = x.shape
        taps = _int_gemm_rows(x, prepared)  # [N·H·W, KH·KW·O]
        acc = np.zeros((b, oh, ow, o), np.int32)
        _tconv_scatter(taps.reshape(b, hx, wx, kh, kw, o), acc, geom)
        out = np.empty((b, oh, ow, o), np.int8)
        _conv_requant_flat(acc.reshape(-1), bias, m, left, right, zp, lo, hi, out.reshape(-1))
        return [out]

    def compile_scatter():  # for the run's argument types, on an empty batch
        acc = np.zeros((0, oh, ow, o), np.int32)
        _tconv_scatter(np.empty((0, 1, 1, kh, kw, o), np.int32).reshape(0, 1, 1, kh, kw, o),
                       acc, geom)
        _conv_requant_flat(acc.reshape(-1), bias, m, left, right, zp, lo, hi,
                           np.empty(0, np.int8))

    run.compile_units = units("scatter", compile_scatter)
    return run


def _tconv_row_params(params, ky: int, nky: int = 1) -> dict:
    """The CONV_2D step params (as `lower_conv2d` makes them) of the 1x1 convolution giving
    the output rows iy·KH + ky .. iy·KH + ky + nky − 1 of a non-overlapping transpose
    convolution: output channels (ky', kx, o), weights w8[:, (ky', ·, ·)] for those ky',
    per-channel requantization tiled nky·KW times."""
    w8 = params["w8"]
    _, h, wd, c = (int(v) for v in params["in_shape"])
    n = int(params["out_shape"][0])
    kw, o = int(params["geom"][5]), int(params["out_shape"][3])
    cols = w8[:, ky * kw * o:(ky + nky) * kw * o]
    return {
        "w8": np.ascontiguousarray(cols).reshape(1, c, nky * kw * o),
        "bias": np.tile(params["bias"], nky * kw),
        "m": np.tile(params["m"], nky * kw),
        "shift": np.tile(params["shift"], nky * kw),
        "geom": np.array([1, 1, 1, 1, 1, 1, 0, 0, h, wd], np.int64),
        "pointwise": True,
        "zp_in": params["zp_in"],
        "zp_out": params["zp_out"],
        "lo": params["lo"],
        "hi": params["hi"],
        "tile": _conv_tile(n * h * wd, c, nky * kw * o),
        "pad": np.array([0, 0, h, wd], np.int64),
    }


run_transpose_conv_i8.bind = _tconv_bind


@runner("batch_matmul_i8")
def run_batch_matmul_i8(inputs, params):
    dt = np.float32 if params["f32"] else np.float64
    a = np.ascontiguousarray(inputs[0])
    a_f = np.empty(a.shape, dt)
    _conv_offset_rows(a.reshape(-1), params["zp_a"], a_f.reshape(-1))
    if params["adj_x"]:
        a_f = np.swapaxes(a_f, -1, -2)
    if "rhs" in params:
        b_f = params["rhs"]
    else:
        b = np.ascontiguousarray(inputs[1])
        b_f = np.empty(b.shape, dt)
        _conv_offset_rows(b.reshape(-1), params["zp_b"], b_f.reshape(-1))
        if params["adj_y"]:
            b_f = np.swapaxes(b_f, -1, -2)
    acc = np.ascontiguousarray(np.matmul(a_f, b_f))
    cols = acc.shape[-1]
    out = np.empty(acc.shape, np.int8)
    _conv_requantize(acc.reshape(-1, cols), params, out.reshape(-1, cols))
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
    """(m, shift) per output channel: QuantizeMultiplier(double(s_in)·double(s_w[c]) /
    double(s_out)), per-tensor weight scales broadcast (PopulateConvolutionQuantizationParams)."""
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (channels,))
    eff = [float(s_in) * float(s) / float(s_out) for s in s_w.tolist()]
    return quantize_multipliers(eff)


def _conv_tile(rows: int, k: int, o: int) -> int:
    """Rows per tile: the patch and accumulator tiles stay around 512 KiB (L2-resident)."""
    tile = (131072 // max(k, o, 1)) // 8 * 8
    return int(max(16, min(rows, tile)))


_RQ_TABLES = ("eff", "margin", "p2r", "ip2r", "bias_f", "bias", "m", "left", "right")


def _conv_rq_params(bias, m, shift, row_tile: int = 0) -> dict[str, np.ndarray]:
    """Per-channel requantization params: the exact integer ones (bias, m, left, right) and
    the float32 tables of `requant_fast2_i8` (rq_eff, ...). The fast kernel's inner loop runs
    over channels, so for few channels it also gets the tables tiled k = ceil(64 / C) times
    (rqt_*; the accumulator is then viewed as [R/k, k·C]), or `row_tile` times if given."""
    t = fast_requant_tables(m, shift, bias)
    params = {"bias": t["bias"], "m": t["m"], "left": t["left"], "right": t["right"]}
    for k in _RQ_TABLES:
        params[f"rq_{k}"] = t[k]
    c = t["m"].size
    k = row_tile if row_tile else -(-64 // c)
    params["rq_k"] = int(k)
    if k > 1:
        for name in _RQ_TABLES:
            params[f"rqt_{name}"] = np.ascontiguousarray(np.tile(t[name], k))
    return params


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


def _conv_quant(op, channels: int):
    """What every convolution lowering reads first, or None when the op is not an int8
    convolution with constant weights: (filter int8 array, int32 bias [channels], zp_in,
    zp_out, m, shift per channel, activation lo, hi)."""
    if not (_is_i8_tensor(op.input) and _is_i8_tensor(op.output) and _is_i8_tensor(op.filter)):
        return None
    filt = constant_array(op.filter)
    bias = _conv_bias(op, channels)
    if filt is None or bias is None:
        return None
    s_in, zp_in = qparams(op.input)
    s_out, zp_out = qparams(op.output)
    s_w, _, _ = axis_qparams(op.filter)
    m, shift = _conv_multipliers(s_in, s_w, s_out, channels)
    lo, hi = activation_bounds(op)
    return filt, bias, zp_in, zp_out, m, shift, lo, hi


@int8_lowering(nn.Conv2DOp)
def lower_conv2d(op):
    n, h, w, c = shape(op.input)
    _, oh, ow, o = shape(op.output)
    quant = _conv_quant(op, o)
    if quant is None:
        return None
    filt, bias, zp_in, zp_out, m, shift, lo, hi = quant
    _, kh, kw, ci = filt.shape
    groups = c // ci
    og = o // groups
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    # OHWI -> per group [KH*KW*I, O/G]
    w_kc = filt.astype(np.int8).transpose(1, 2, 3, 0).reshape(kh * kw * ci, o)
    w8 = np.stack([np.ascontiguousarray(w_kc[:, g * og : (g + 1) * og]) for g in range(groups)])
    pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
    # compact: the GEMM path's packed forms are derived when the plan is bound (`_conv_bind`)
    params = {
        "w8": w8,
        "bias": bias,
        "m": np.asarray(m, np.int32),
        "shift": np.asarray(shift, np.int32),
        "geom": np.array([kh, kw, sh, sw, dh, dw, pt, pl, oh, ow], np.int64),
        "pointwise": bool(pointwise),
        "zp_in": zp_in,
        "zp_out": zp_out,
        "lo": lo,
        "hi": hi,
        "tile": _conv_tile(n * oh * ow, kh * kw * ci, o),
        # padded input extent: exactly what the output windows read
        "pad": np.array([pt, pl, (oh - 1) * sh + (kh - 1) * dh + 1,
                         (ow - 1) * sw + (kw - 1) * dw + 1], np.int64),
    }
    return "conv2d_i8", params, [0]


@int8_lowering(nn.FullyConnectedOp)
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
    fits8 = not wt.size or (-128 <= int(wt.min()) and int(wt.max()) <= 127)
    lo, hi = activation_bounds(op)
    return (
        "fully_connected_i8",
        {
            # compact: packed for the host's GEMM path when the plan is bound (`_fc_bind`)
            "w8": np.ascontiguousarray(wt, dtype=np.int8 if fits8 else np.int16),
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


@int8_lowering(nn.TransposeConvOp)
def lower_transpose_conv(op):
    n, oh, ow, o = shape(op.output)
    quant = _conv_quant(op, o)
    if quant is None:
        return None
    filt, bias, zp_in, zp_out, m, shift, lo, hi = quant
    _, h, w, c = shape(op.input)
    _, kh, kw, _ = filt.shape
    sh, sw = ints(op.stride)
    padding = op.padding.data
    # TFLite derives the padding from the output size, as if it were a convolution's input.
    pt, _ = same_padding(oh, kh, sh, 1, _conv_out_size(oh, kh, sh, padding))
    pl, _ = same_padding(ow, kw, sw, 1, _conv_out_size(ow, kw, sw, padding))
    # OHWI -> [I, KH*KW*O]: one GEMM column per tap (ky, kx, o)
    w8 = filt.transpose(3, 1, 2, 0).reshape(c, kh * kw * o)
    return (
        "transpose_conv_i8",
        {
            "w8": np.ascontiguousarray(w8, dtype=np.int8),
            "bias": np.asarray(bias, np.int32),
            "m": np.asarray(m, np.int32),
            "shift": np.asarray(shift, np.int32),
            "geom": np.array([sh, sw, pt, pl, kh, kw], np.int64),
            "in_shape": [n, h, w, c],
            "out_shape": [n, oh, ow, o],
            "zp_in": zp_in,
            "zp_out": zp_out,
            "lo": lo,
            "hi": hi,
        },
        [0],
    )


@int8_lowering(nn.BatchMatMulOp)
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
    xmax = max(127 - zp_a, zp_a + 128) * max(127 - zp_b, zp_b + 128)
    f32 = depth * xmax < (1 << 24)
    params = {
        "f32": bool(f32),
        "adj_x": adj_x,
        "adj_y": adj_y,
        "zp_a": zp_a,
        "zp_b": zp_b,
        "zp_out": zp_out,
        **_conv_rq_params(np.zeros(cols, np.int32), np.full(cols, m), np.full(cols, sh)),
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
