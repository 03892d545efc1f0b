"""int8 DEPTHWISE_CONV_2D, bit-exact with LiteRT's reference kernel (BUILTIN_REF)
`reference_integer_ops::DepthwiseConvPerChannel`.

The specification is `_dw_conv_i8`, the integer loop right below: per output channel c·M + m,
acc = bias + Σ w·(x − zp_in) over the in-image taps (int32), out = clamp(MBQM(acc, m, shift)
+ zp_out, lo, hi), (m, shift) = QuantizeMultiplier(double(s_in)·double(s_w) / double(s_out)).
It also runs every depthwise convolution the fast path does not take (multiplier > 1, or
sums that could reach 2^24).

The fast path (multiplier 1, the ring driver `_dw_ring`) computes the same sums in float32,
exactly: the lowering checks that every product and partial sum is an integer below 2^24
(`_dw_ring_params`), so any summation order gives the spec's acc. Padded input rows, offset
by −zp_in, go into a ring of rows (`_dw_fill_row`); two output rows per pass, every tap of a
row one contiguous run of the ring. Each chunk of outputs is requantized with a float32
estimate that either provably equals the spec's integer result or is flagged and recomputed
with the spec's integer MBQM from the sums the tap loop stored (`_dw_rq1`, `_dw_rq_chunk`,
`_dw_fix_steps`). The outputs are the spec's, bit for bit (tests/test_runtime_int8.py checks them against `_dw_conv_i8` on random
shapes and against LiteRT on models).

One driver, compiled once, runs every filter size; what differs per size is a small leaf
kernel it calls through its address (`simd_call`) once per pass: the template of the fast tap
loops is the vector-IR emitter `dw_float_chunk` (tap sums of a chunk of outputs for two
rows, then their requantization), whose filter kh x kw and row step rs between the two
output rows' ring rows (1 or 2 when they share ring rows: each shared ring run is loaded
once; kh when they do not) are a literal case key in the leaf `_dw_taps` (a `cfunc`: 3x3
and 5x5; `_dw_variant` picks a layer's variant when the plan is bound). A model compiles the
driver and the leaves its layers use (0.2-0.4 s each; before, one whole Numba driver per
variant, ~2-3 s each: Numba compiles every callee again inside each caller, and the
unrolled loops were LLVM's to vectorize; the explicit 16-float vectors are also 15-35 %
faster on AVX2). Other filter sizes and horizontal strides above 2 run the per-tap loop
`_dw_taps_any` (its own leaf). The step params are compact (int8 weights, int32
requantization, int64 geometry); the ring's float32 tables are derived when the plan is
loaded (`_dw_bind`).

On the AVX-512 VNNI path (layers with C >= 16, horizontal stride <= 2, 3x3, 5x5 or 7x7-like
filters: `VNNI_DW_SHAPES`) the tap sums are exact integers instead: a ring of u8 rows whose
32-bit lanes hold a channel's four horizontal taps, summed with `vpdpbusd` (the driver
`_dw_ring_u8`, a leaf per case, `_dw_u8_taps`, around the intrinsic `vnni_dw_taps`), then the
same requantization, same outputs. On a Sapphire Rapids it is up to 1.2x faster than the
float ring at stride 2 and on larger 5x5 layers, and slower on 3x3 stride-1 layers, which
take the float ring (`VNNI_DW_SHAPES`).

The first run compiles a layer's kernels as four units of work (`compile_units`, see
runtime/plan.py): the driver, its fill and fix leaves (`_dw_leaf`), the tap leaf; the first
run's helper processes take them apart.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _dw_ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from qcc.dialects import nn

from ..fixedpoint import fast_requant_tables, mbqm_fast, njit
from .common import ints, same_padding
from .int8_conv import _conv_quant
from .int8_lowering import shape
from .int8_registry import DirectCall, fixed_call, runner
from .int8_vnni import VNNI_DW_SHAPES, VNNI_OK, vnni_dw_interleave4, vnni_dw_key, vnni_dw_taps
from .registry import int8_lowering
from .simd import (
    int8_gemm_path,
    leaf_cfunc,
    simd_array,
    simd_as64,
    simd_call,
    simd_empty,
    simd_f32_ptr,
    simd_fn,
    simd_i8_ptr,
    simd_i32_ptr,
    simd_i64_ptr,
    simd_literal,
    simd_max,
    simd_min,
    simd_splat,
    simd_u8_ptr,
)

# ---------------------------------------------------------------------------------------------
# The specification


@njit(cache=True, nogil=True)
def _dw_conv_i8(x, w, bias, m, left, right, zp_in, zp_out, lo, hi, out, geom):  # pragma: no cover
    """Depthwise conv, int32 accumulation: the specification of this module. x int8
    [N,H,W,C]; w int8 (or int32) [KH,KW,C·M]; bias, m, left, right [C·M] (shift = left −
    right); out int8 [N,OH,OW,C·M]; geom: stride h/w, dilation h/w, pad top/left, M.
    Row by row: per tap, the valid output-x range is computed once, so the inner loop is a
    branch-free multiply-add over channels."""
    sh, sw, dh, dw, pt, pl, mult = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6]
    n, h, wd, c = x.shape
    oh, ow, oc = out.shape[1], out.shape[2], out.shape[3]
    kh, kw = w.shape[0], w.shape[1]
    acc = simd_empty((ow, oc), np.int32)
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
                                a[k] += (np.int32(px[k]) - zp_in) * np.int32(wk[k])
                    else:
                        for ox in range(lo_x, hi_x):
                            px = xrow[ox * sw + off]
                            a = acc[ox]
                            for ci in range(c):
                                v = np.int32(px[ci]) - zp_in
                                for mm in range(mult):
                                    a[ci * mult + mm] += v * np.int32(wk[ci * mult + mm])
            orow = out[b, oy]
            for ox in range(ow):
                a = acc[ox]
                o = orow[ox]
                for k in range(oc):
                    v = mbqm_fast(np.int64(a[k]), np.int64(m[k]), np.int64(left[k]),
                                  np.int64(right[k])) + zp_out
                    v = simd_min(simd_max(v, lo), hi)
                    o[k] = v


# ---------------------------------------------------------------------------------------------
# The fast path: exact float32 accumulation over a ring of padded input rows
#
# Arguments (made at plan-load time by `_dw_ring_tables` from the step params):
#   p float32 [(T + 4)·gc]: the T = KH·KW tap weights, each tap's C channels tiled G times
#     over gc = G·C floats, then the requantization rows bias_f, eff, thr, e (tiled alike);
#     then, from `_dw_steps_offset`, the same T + 4 rows by 16-output step (`_dw_step_rows`:
#     what the unrolled tap loops read; the generic loop and the fix-ups read the rows);
#   q int64 [4·C]: bias, m, left, right (the exact integer MBQM of the fix-up);
#   g int64 (step param "dwg"): stride h/w, dilation h/w, pad top/left, KH, KW, zp_in,
#     zp_out, lo, hi, gc.
# Ring addresses: padded input row y lives in ring slot y mod nr, at r1[(y mod nr)·rl:], its
# columns split by phase (`_dw_fill_row`: plane ph holds the padded columns qc·sw + ph, wq of
# them); tap column kx starts cb[kx] = ((kx·dw mod sw)·wq + kx·dw div sw)·C floats into a row.
# The two output rows of a pass read, for tap row ky, ring rows y0 + ky·d and y1 + ky·d (y0
# reduced mod nr, y1 too or y0 + rs: the sums stay below 2·nr, and `_dw_slot` reduces them).


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rq1(a, bf, ef, th, e, yl, yh, zf):  # pragma: no cover - jitted
    """Requantize one exact float32 accumulator a (inlined into the vector loops): returns
    (int8 output, flag); a flagged output is recomputed exactly by `_dw_fix_steps`.

    The reference result is T = RDBPOT(SRDHM(a + bias, m), right) = R(z) := sign(z)·
    floor(|z| + 1/2 + e) off its ties (`requant_fast2_i8`), z = (a + bias)·m·2^(shift−31)
    exactly, e = 2^−(right+1) for right >= 1, 0 for right = 0. The estimate
    y = fl(fl(a + bias_f)·eff) is within tol0 = 4e−7·|y| + 1e−7 of z (`fast_requant_tables`);
    y' = y + copysign(e, y) estimates w = z + copysign(e, z), and R(z) is w rounded to
    nearest (any tie rule: ties are flagged). With the clamp bounds in the z domain
    yl = lo − zp_out, yh = hi − zp_out (integers), yc = min(max(y', yl), yh), r = rint(yc):
      * |yc − r| < th = 1/2 − tol: then clamp(T, yl, yh) = r. Unclamped (|y'| <= max(|yl|,
        |yh|) bounds tol0), |w − y'| <= tol and w rounds to r; if y and z differ in sign,
        |z|, |y| <= tol0 and T = 0 = r (th > 0 needs tol + e < 1/2, true as e <= 1/4).
        Clamped (y' > yh say): w > yh − 1/2, so T >= yh (the error of y grows slower than
        y − yh), and r = yh.
      * otherwise the flag is set.
    tol (`_dw_rq_rows`) covers tol0 at the clamp bounds and the rounding of y + copysign(e, y)
    (a fused multiply-add may replace it: it only rounds less); always-exact channels get
    th = −1 (always flagged). The output int8(r + zp_out) is exact (an integer in [lo, hi]).
    rint, min / max and copysign are single 16-lane instructions, unlike floor of |y|."""
    return _dw_rq1y((a + bf) * ef, th, e, yl, yh, zf)


@njit(inline="always", fastmath={'contract'})
def _dw_rq1y(y, th, e, yl, yh, zf):  # pragma: no cover - jitted
    """`_dw_rq1` from the estimate y (the VNNI ring's y = fl(float(acc + bias)·eff): its
    sum is exact in int32 and rounded once, within the same error bound)."""
    y = y + np.copysign(e, y)
    yc = simd_min(simd_max(y, yl), yh)
    r = np.rint(yc)
    return np.int8(r + zf), abs(yc - r) >= th


@njit(inline="always")
def _dw_empty64(n):  # pragma: no cover - jitted
    """float32 [n], 64-byte aligned: a 16-lane load of an aligned run then reads one cache
    line, not two (np.empty aligns to 32 bytes)."""
    buf = simd_empty(n + 16, np.float32)
    off = (-(buf.ctypes.data // 4)) % 16
    return buf[off:off + n]


@njit(inline="always")
def _dw_slot(y, nr, rl):  # pragma: no cover - jitted
    """Ring offset of padded row y (uint64, y < 2·nr; the branch-free y mod nr, times rl)."""
    return simd_min(y, y - nr) * rl


@njit(inline="always")
def _dw_pass(oy0, oh, sh, span, shared):  # pragma: no cover - jitted
    """The pass of both ring drivers that starts at output row oy0: its two output rows (oy,
    oy2; an odd last row is computed twice, and with shared ring rows the row above it is
    recomputed instead, so that the pair keeps the row step), their first padded input rows
    ya and yb, and `top`: the pass reads padded rows below it."""
    oy = oy0
    oy2 = simd_min(oy + 1, oh - 1)
    if shared and oy2 == oy:
        oy -= 1
    ya = oy * sh
    yb = oy2 * sh
    top = ya + span + sh if shared else yb + span
    return oy, oy2, ya, yb, top


@njit(inline="always")
def _dw_rq_chunk(acc, p, nt, gc, s, m, n, o1, oa, ob, zq):  # pragma: no cover - jitted
    """Requantize the chunk [s, s + m) of two rows (accumulators acc[i], acc[n + i] ->
    o1[oa + i], o1[ob + i]) with `_dw_rq1` in one vector loop per row (rows p[nt·gc:]
    bias_f, eff, thr, e: `_dw_rq_rows`), inlined into the tap loops' chunk loop. Returns
    whether an output was flagged. The vector loop stores only o1 and ORs the flags (a
    second array stored in it costs ~10 %); a chunk with a flagged output goes to the hits
    list as its `_DW_LANES`-output steps, for `_dw_fix_steps`."""
    ug = np.uint64(gc)
    gb = ug * np.uint64(nt)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    us = np.uint64(s)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    hit = False
    for r in range(2):
        ua = np.uint64(r * n) + us
        uo = np.uint64(oa if r == 0 else ob) + us
        for j in range(m):
            uj = np.uint64(j)
            v, f = _dw_rq1(acc[ua + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                           yl, yh, zf)
            o1[uo + uj] = v
            hit |= f
    return hit


@njit(inline="always")
def _dw_exact_out(a, q, k, c, zq):  # pragma: no cover - jitted
    """The spec's output of channel k from its exact sum a (int64, bias included):
    clamp(MBQM(a, m, shift) + zp_out, lo, hi) with branch-free `mbqm_fast` (q: bias, m,
    left, right per channel; zq: zp_out, lo, hi)."""
    v = mbqm_fast(np.int64(a), np.int64(q[c + k]), np.int64(q[2 * c + k]),
                  np.int64(q[3 * c + k])) + zq[0]
    return simd_min(simd_max(v, zq[1]), zq[2])


@njit(nogil=True, inline="always", fastmath={'contract'})
def _dw_fix_steps(acc, t, q, tb, gc, c, hits, na, n, o1, oa, ob, zq, float_ring):  # pragma: no cover - jitted
    """The exact fix-up of both rings' flagged outputs: for each step in the hits list
    (hits[0] of them, starts i0 from hits[1]), the outputs i0 .. i0 + 15 (< n, the row's,
    and in i0's chunk of gc) of both rows of the pass get their flag again from the sum the
    loop stored (row r's at acc[r·na + i]) and the tables at t[tb·gc + i mod gc] (chunks
    start at multiples of gc), as the loop computed it: the float ring's
    y = (acc + bias_f)·eff (rows bias_f, eff, thr, e: `_dw_rq1`), the VNNI ring's y = float(acc)·eff (its int32 sums include the bias; rows
    eff, thr, e). A flagged output gets the spec's integer result (`_dw_exact_out`; the float
    ring's sum is an exact integer in float32, its bias added from q). A few dozen outputs
    a hit, where a whole chunk's flags were computed again (up to 2·gc). float_ring is a
    compile-time constant of each ring's fix leaf, which inlines this (`inline="always"`: no
    separate compile of both forms)."""
    ug = np.uint64(gc)
    gb = ug * np.uint64(tb)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    for h in range(hits[0]):
        i0 = hits[1 + h]
        # the step's outputs: up to 16, within its chunk (a partial step ends the chunk; the
        # sums after it are the next chunk's, stored only if that chunk was flagged too)
        i1 = simd_min(simd_min(i0 + _DW_LANES, n), (i0 // gc + 1) * gc)
        for r in range(2):
            oo = oa if r == 0 else ob
            for i in range(i0, i1):
                uj = gb + np.uint64(i % gc)
                a = acc[r * na + i]
                k = i % c
                if float_ring:
                    y = (np.float32(a) + t[uj]) * t[ug + uj]
                    uj += ug
                    exact = np.int64(a) + q[k]
                else:
                    y = np.float32(a) * t[uj]
                    exact = np.int64(a)
                _, f = _dw_rq1y(y, t[ug + uj], t[ug + ug + uj], yl, yh, zf)
                if f:
                    o1[oo + i] = _dw_exact_out(exact, q, k, c, zq)


_DW_WIDEN_LANES = 8
"""The int8 values `dw_widen_pixels` converts a step (one 64-bit load)."""

_DW_WIDEN_MAX_C = 32
"""The most channels `dw_widen_pixels` takes (4 steps a pixel)."""


@intrinsic
def dw_widen_pixels(typingctx, src, dst, npix, c, step, z):
    """float32 dst[p·c + k] = float32(src[p·step + k]) − z for pixels p < npix and channels
    k < c (`_DW_WIDEN_LANES` <= C <= `_DW_WIDEN_MAX_C`), as vector IR: `_DW_WIDEN_LANES`
    int8 values a step (sign-extended, converted, offset, stored), a pixel one straight run
    of steps: at offset 0 (C = 8), 0 and C − 8 (C <= 16), or 0, 8, C − 16 and C − 8 (C <=
    32); steps overlap when C is not 8, 16 or 32 and write the same values again. The
    strided ring fill's inner loop for small C: LLVM vectorizes a loop over C alone only
    when its vector body (32 values or more) fits, so C = 8..24 ran scalar, at 2-4x the
    cost of a stride-1 row (and a loop over a pixel's steps costs as much as the steps);
    larger C it vectorizes well. Three pixel loops, not one per step count: each compiled
    loop adds ~0.05-0.1 s to the depthwise fill leaf's compile. Arguments: src, dst (int64
    addresses: int8 pixels `step` bytes apart, C contiguous float32s a pixel), npix, c, step
    (int64), z (float32)."""
    sig = types.void(src, dst, npix, c, step, z)

    def codegen(context, builder, signature, args):
        ir = _dw_ir
        i64, f32 = ir.IntType(64), ir.FloatType()
        lanes = _DW_WIDEN_LANES
        vi8, vi32, vf32 = (ir.VectorType(t, lanes) for t in (ir.IntType(8), ir.IntType(32), f32))
        k = lambda v: ir.Constant(i64, v)  # noqa: E731
        xa, da, n, c, step = (simd_as64(builder, v) for v in args[:5])
        vz = simd_splat(builder, args[5], vf32)

        def widen(xp, dp, at):  # one step at value offset at of the pixel
            v = builder.load(builder.inttoptr(builder.add(xp, at), vi8.as_pointer()), align=1)
            v = builder.fsub(builder.sitofp(builder.sext(v, vi32), vf32), vz)
            builder.store(v, builder.inttoptr(builder.add(dp, builder.mul(at, k(4))),
                                              vf32.as_pointer()), align=4)

        def pixels(offsets):
            with cgutils.for_range(builder, n) as pix:
                xp = builder.add(xa, builder.mul(pix.index, step))
                dp = builder.add(da, builder.mul(builder.mul(pix.index, c), k(4)))
                for at in offsets:
                    widen(xp, dp, at)

        last = builder.sub(c, k(lanes))
        with builder.if_else(builder.icmp_signed("<=", c, k(lanes))) as (one, more):
            with one:
                pixels([k(0)])
            with more:
                with builder.if_else(builder.icmp_signed("<=", c, k(2 * lanes))) as (two, four):
                    with two:
                        pixels([k(0), last])
                    with four:
                        pixels([k(0), k(lanes), builder.sub(c, k(2 * lanes)), last])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _dw_fill_row(x1, src, inside, w, c, zp, pl, sw, wq, r1, dst):  # pragma: no cover - jitted
    """One padded input row (x1[src:] its first pixel), offset by −zp, as float32 into the
    ring at r1[dst:], split by column phase: plane ph holds padded columns qc·sw + ph
    (qc < wq), so a strided tap reads a contiguous run. Zeros outside the image (the whole row
    when not inside). Stride 1: one contiguous conversion between the two pad runs; a
    larger stride: one pixel's C values at a time (`dw_widen_pixels` for 8 <= C <= 32)."""
    ud = np.uint64(dst)
    if not inside:
        for j in range(sw * wq * c):
            r1[ud + np.uint64(j)] = 0
        return
    z = np.float32(zp)
    us = np.uint64(src)
    for ph in range(sw):
        # image column ix = qc·sw + ph − pl in [0, w)
        q0 = simd_min(simd_max(0, (pl - ph + sw - 1) // sw), wq)
        q1 = simd_max(simd_min(wq, (w - 1 + pl - ph) // sw + 1), q0)
        d0 = ud + np.uint64(ph * wq * c)
        for j in range(q0 * c):
            r1[d0 + np.uint64(j)] = 0
        if sw == 1:
            s0 = us + np.uint64((q0 - pl) * c)
            d1 = d0 + np.uint64(q0 * c)
            for j in range((q1 - q0) * c):
                r1[d1 + np.uint64(j)] = np.float32(x1[s0 + np.uint64(j)]) - z
        elif _DW_WIDEN_LANES <= c <= _DW_WIDEN_MAX_C:  # a loop over c alone runs scalar
            dw_widen_pixels(np.int64(x1.ctypes.data) + src + (q0 * sw + ph - pl) * c,
                            np.int64(r1.ctypes.data) + (dst + ph * wq * c + q0 * c) * 4,
                            q1 - q0, c, sw * c, z)
        else:
            for qc in range(q0, q1):
                s0 = us + np.uint64((qc * sw + ph - pl) * c)
                d1 = d0 + np.uint64(qc * c)
                for k in range(c):
                    r1[d1 + np.uint64(k)] = np.float32(x1[s0 + np.uint64(k)]) - z
        d2 = d0 + np.uint64(q1 * c)
        for j in range((wq - q1) * c):
            r1[d2 + np.uint64(j)] = 0


def _dw_taps(kh_c, kw_c, rs_c, cache=True):
    """The tap leaf of one variant, a `leaf_cfunc` `_dw_ring` calls through its address, per
    pass of two output rows: for every chunk of gc outputs `dw_float_chunk` (the template:
    kh_c x kw_c filter, row step rs_c, the case key a closure constant, so only this case is
    emitted, ~0.1 s of compiling) sums the taps and requantizes; the starts of the steps
    with a flagged output go to hits[1:], their count to hits[0] (`_dw_ring` fixes them).
    Wide layers go a block of channels at a time (`_dw_channel_block`): the block's chunk in
    every column, its p rows at its first step's.
    Arguments (int64, as `_dw_ring` passes them): the addresses of the ring r1, of p, acc, o1,
    zq and hits, then y0, y1, d, nr, rl, gc, n, oa, ob, dw, sw, wq, c (see `dw_float_chunk`),
    and three `_dw_taps_any_leaf` takes (cb's address, kh, kw).
    `cache=False`: not cached, its LLVM IR kept (tests/test_int8_depthwise_variants.py
    checks the loop)."""
    key_c = dw_float_key(kh_c, kw_c, rs_c)

    @leaf_cfunc(22, cache)
    def taps(r1a, pa, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, oa, ob, dw, sw, wq, c,
             cba, kh, kw):  # pragma: no cover - jitted
        simd_array(simd_i64_ptr(hitsa), (1,))[0] = 0
        # a block of the chunk's outputs at a time over every chunk (one block of gc but for
        # wide layers); one call site: the chunk's code is most of the leaf's compile time
        blk = _dw_channel_block(c, gc, kh_c * kw_c)
        for cb in range(0, gc, blk):
            pb = pa + cb * (kh_c * kw_c + 4) * 4  # the block's steps in p
            for s in range(cb, n, gc):
                dw_float_chunk(r1a, pb, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, s,
                               simd_min(simd_min(blk, gc - cb), n - s), oa, ob, dw, sw, wq, c,
                               key_c)

    return taps


_DW_BLOCK_BYTES = 16384
"""The most bytes of p's rows by step (weights and requantization) a chunk of one column's C
channels reads (`_dw_channel_block`)."""


@njit(inline="always")
def _dw_channel_block(c, gc, nt):  # pragma: no cover - jitted
    """The outputs of a chunk a tap leaf takes at a time, over every chunk of the two rows:
    all gc (a chunk is gc = G·C outputs, G columns, `_dw_ring_params`), or, when G = 1 and
    a column's C channels have more than `_DW_BLOCK_BYTES` of p's rows by step (wide 5x5
    layers: 25 tap rows and 4 requantization rows of 4·C bytes; C = 384: 44 KB, more than L1
    holds beside the ring's runs), the fewest blocks of at most 128 channels, a multiple of
    16 (the last block the rest): a block's rows stay in L1 over the columns, 4-11 % faster
    on such layers (AVX2)."""
    if gc != c or (nt + 4) * c * 4 <= _DW_BLOCK_BYTES:
        return gc
    nb = (c + 127) // 128
    return ((c + nb - 1) // nb + 15) // 16 * 16


_DW_LANES = 16
"""float32 lanes of `dw_float_chunk`'s main loop: two 8-lane FMA chains per row on AVX2
(one 8-lane vector: latency-bound, ~20 % slower; 32: long tails), four NEON registers; the
tail is one partial step (`_dw_emit_steps`)."""


def dw_float_key(kh: int, kw: int, rs: int) -> int:
    """`dw_float_chunk`'s case key of a (kh, kw, rs) tap-leaf variant."""
    return (kh * 16 + kw) * 16 + rs


@intrinsic(prefer_literal=True)
def dw_float_chunk(typingctx, r1a, pa, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, s, m,
                   oa, ob, dw, sw, wq, c, key):
    """The tap sums and the requantization of the chunk [s, s + m) of two output rows, one
    case of the tap-leaf template per literal key (`dw_float_key(kh, kw, rs)`), emitted as
    vector IR: per outputs j, acc_A = Σ_ky Σ_kx ring[slot(yA + ky·d)·rl + cb(kx) + s + j]
    · p[(ky·kw + kx)·gc + j] (read from p's rows by step, `_dw_step_rows`; each ring run
    read once for both rows when they share rows: rs < kh, yB = yA + rs, d = 1), likewise
    acc_B (exact integers, any order); then `_dw_rq1` on both, the int8 outputs to
    o1[oa + s + j] and o1[ob + s + j] (`_DW_LANES` outputs a step, then the tail); a step
    with a flagged output stores its sums to acc[s + j] and acc[n + s + j] and appends its
    start s + j to the hits list (int64: the count, then the starts), for the fix-up
    (`_dw_fix_steps`). Arguments are int64 (addresses: the ring r1, p, acc, o1, zq =
    [zp_out, lo, hi], the hits list; then the geometry as `_dw_ring` passes it); slot(y) =
    y − nr when y >= nr; cb(kx) = ((kx·dw) mod sw · wq + (kx·dw) div sw)·c, sw <= 2."""
    sig = types.void(r1a, pa, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, s, m, oa, ob, dw,
                     sw, wq, c, key)
    fixed = simd_literal(key)
    if fixed is None:
        raise TypingError("dw_float_chunk: the key must be a compile-time constant")
    kh_c, kw_c, rs_c = fixed // 256, fixed // 16 % 16, fixed % 16

    def codegen(context, builder, signature, args):
        vals = [simd_as64(builder, v) for v in args[:21]]
        _dw_emit_chunk(builder, kh_c, kw_c, rs_c, vals)
        return context.get_dummy_value()

    return sig, codegen


def _dw_emit_chunk(builder, KH, KW, RS, vals):
    """`dw_float_chunk`'s body for one (KH, KW, RS)."""
    ir = _dw_ir
    i64, f32 = ir.IntType(64), ir.FloatType()
    r1a, pa, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, s, m, oa, ob, dw, sw, wq, c = vals
    k = lambda v: ir.Constant(i64, v)  # noqa: E731
    shared = RS < KH
    mod = builder.module

    def slot(y):  # ring row y (< 2·nr) -> its float offset
        wrapped = builder.select(builder.icmp_unsigned(">=", y, nr), builder.sub(y, nr), y)
        return builder.mul(wrapped, rl)

    ud = k(1) if shared else d
    yb = builder.add(y0, k(RS)) if shared else y1
    rows_a = [slot(builder.add(y0, builder.mul(k(ky), ud))) for ky in range(KH)]
    if shared:
        ring_rows = [slot(builder.add(y0, k(r))) for r in range(KH + RS)]
        rows_a = ring_rows[:KH]
        rows_b = ring_rows[RS:RS + KH]
    else:
        rows_b = [slot(builder.add(yb, builder.mul(k(ky), ud))) for ky in range(KH)]
    s1 = builder.sub(sw, k(1))
    cols = []
    for kx in range(KW):
        o = builder.mul(k(kx), dw)
        plane = builder.mul(builder.and_(o, s1), builder.mul(wq, c))
        cols.append(builder.add(plane, builder.mul(builder.lshr(o, s1), c)))
    nt = KH * KW
    zq = builder.inttoptr(zqa, i64.as_pointer())
    zp, lo, hi = (builder.load(builder.gep(zq, [k(i)])) for i in range(3))
    zf = builder.sitofp(zp, f32)
    yl = builder.sitofp(builder.sub(lo, zp), f32)
    yh = builder.sitofp(builder.sub(hi, zp), f32)
    # the taps' byte offsets from a ring row's address at a step (columns)
    col_bytes = [builder.mul(col, k(4)) for col in cols]
    sa = builder.add(oa, s)
    sb = builder.add(ob, s)
    # p's rows by step (`_dw_step_rows`), at `_dw_steps_offset(nt + 4, gc)` floats
    at = builder.mul(builder.udiv(builder.add(builder.mul(gc, k(nt + 4)), k(_DW_LANES + 15)),
                                  k(16)), k(64))
    steps = builder.add(pa, at)

    def body(lanes, j, count):
        vt = ir.VectorType(f32, lanes)
        # fused or not, the same exact integer sums (every product and partial sum is an
        # integer below 2^24); `fmuladd`, not `fma`: without FMA (x86-64-v2, AVX1) LLVM
        # lowers `llvm.fma` to a libm `fmaf` call per lane, `fmuladd` to a multiply and an add
        fma = simd_fn(mod, f"llvm.fmuladd.v{lanes}f32", vt, [vt, vt, vt])

        def load(byte, align=4):  # <lanes x float> at the byte address
            return builder.load(builder.inttoptr(byte, vt.as_pointer()), align=align)

        def store(val, addr, off, width):
            byte = builder.add(addr, builder.mul(builder.add(off, j), k(width)))
            _dw_emit_store(builder, val, byte, width, count)

        acc_a = ir.Constant(vt, None)
        acc_b = ir.Constant(vt, None)
        runs = {}  # ring runs loaded, by (ring row, kx): shared rows read each once
        row_at = {}  # ring rows' byte addresses at this step, by ring row

        def run(row, ky, kx):
            ring_row = (ky + (RS if row else 0),) if shared else (row, ky)
            if ring_row not in row_at:
                # one address per ring row, its taps at the columns' offsets from it: one
                # address per tap (KW times more) ran the loop out of registers
                start = builder.add(builder.add((rows_b if row else rows_a)[ky], s), j)
                row_at[ring_row] = builder.add(r1a, builder.mul(start, k(4)))
            key = (*ring_row, kx)
            if key not in runs:
                runs[key] = load(builder.add(row_at[ring_row], col_bytes[kx]))
            return runs[key]

        block = builder.add(steps, builder.mul(j, k((nt + 4) * 4)))  # j: a multiple of 16

        def row(t):  # row t of p at this step (`_dw_step_rows`), 64-byte aligned
            return load(builder.add(block, k(t * 64)), align=64)

        for ky in range(KH):
            for kx in range(KW):
                w = row(ky * KW + kx)
                acc_a = builder.call(fma, [run(0, ky, kx), w, acc_a])
                acc_b = builder.call(fma, [run(1, ky, kx), w, acc_b])
        bf, ef, th, e = (row(nt + i) for i in range(4))
        flags = []
        sums = ((acc_a, sa, s), (acc_b, sb, builder.add(n, s)))
        for acc, out_off, _acc_off in sums:
            q, flag = _dw_emit_rq(builder, builder.fmul(builder.fadd(acc, bf), ef), th, e, yl,
                                  yh, zf)
            store(q, o1a, out_off, 1)
            flags.append(flag)

        def keep_sums():  # only a step with a flagged output: the fix-up reads its sums
            for acc, _out_off, acc_off in sums:
                store(acc, acca, acc_off, 4)

        _dw_emit_hit(builder, flags, hitsa, builder.add(s, j), count, keep_sums)

    _dw_emit_steps(builder, m, body)


def _dw_emit_rq(builder, y, th, e, yl, yh, zf):
    """`_dw_rq1y` on a vector: the estimate y (<lanes x float>), the tables th and e
    (vectors), yl, yh, zf (float scalars) -> (int8 outputs, flags <lanes x i1>)."""
    ir = _dw_ir
    vt = y.type
    lanes = vt.count
    mod = builder.module
    copysign = simd_fn(mod, f"llvm.copysign.v{lanes}f32", vt, [vt, vt])
    rint = simd_fn(mod, f"llvm.rint.v{lanes}f32", vt, [vt])
    fabs = simd_fn(mod, f"llvm.fabs.v{lanes}f32", vt, [vt])
    vyl, vyh, vzf = (simd_splat(builder, v, vt) for v in (yl, yh, zf))
    y = builder.fadd(y, builder.call(copysign, [e, y]))
    y = builder.select(builder.fcmp_ordered(">", y, vyl), y, vyl)
    y = builder.select(builder.fcmp_ordered("<", y, vyh), y, vyh)
    r = builder.call(rint, [y])
    flag = builder.fcmp_ordered(">=", builder.call(fabs, [builder.fsub(y, r)]), th)
    return builder.fptosi(builder.fadd(r, vzf), ir.VectorType(ir.IntType(8), lanes)), flag


def _dw_emit_hit(builder, flags, hitsa, start, count=None, on_hit=None):
    """When a lane of `flags` (<lanes x i1> vectors, one per row) is set (rare), append
    `start` to the hits list at address hitsa (int64: the count, then the starts), after
    emitting `on_hit()` there if given (the float ring stores the step's sums only then);
    with `count` (a partial step, `_dw_emit_steps`), only lanes below it count."""
    ir = _dw_ir
    i64 = ir.IntType(64)
    lanes = flags[0].type.count
    bits = ir.IntType(lanes)
    any_set = builder.bitcast(flags[0], bits)
    for f in flags[1:]:
        any_set = builder.or_(any_set, builder.bitcast(f, bits))
    if count is not None:  # bit l set for l < count (count < lanes)
        below = builder.sub(builder.shl(ir.Constant(bits, 1), builder.trunc(count, bits)),
                            ir.Constant(bits, 1))
        any_set = builder.and_(any_set, below)
    with builder.if_then(builder.icmp_unsigned("!=", any_set, ir.Constant(bits, 0)),
                         likely=False):
        if on_hit is not None:
            on_hit()
        hits_p = builder.inttoptr(hitsa, i64.as_pointer())
        count = builder.add(builder.load(hits_p), ir.Constant(i64, 1))
        builder.store(start, builder.gep(hits_p, [count]))
        builder.store(count, hits_p)


def _dw_emit_store(builder, value, address, width, count=None):
    """Store the vector `value` (elements of `width` bytes) at the int64 `address`; with
    `count` (a partial step), only its first `count` elements: the vector goes to a stack
    slot and `llvm.memcpy` moves count·width bytes (portable, and one small copy per chunk,
    where a masked store of bytes has no AVX2 instruction)."""
    ir = _dw_ir
    i8p, i64 = ir.IntType(8).as_pointer(), ir.IntType(64)
    if count is None:
        builder.store(value, builder.inttoptr(address, value.type.as_pointer()), align=width)
        return
    with builder.goto_entry_block():
        slot = builder.alloca(value.type)
    builder.store(value, slot, align=width)
    copy = builder.module.declare_intrinsic("llvm.memcpy", [i8p, i8p, i64])
    builder.call(copy, [builder.inttoptr(address, i8p), builder.bitcast(slot, i8p),
                        builder.mul(count, ir.Constant(i64, width)), ir.Constant(ir.IntType(1), 0)])


def _dw_emit_steps(builder, m, body):
    """The steps over outputs j in [0, m): body(lanes, j, None) for `_DW_LANES` outputs a
    step, then, when m is not a multiple, one partial step body(lanes, j, m − j): it loads
    whole vectors (the buffers it reads have `_DW_LANES` elements of slack) and stores only
    the first m − j lanes (`_dw_emit_store`, `_dw_emit_hit`). One copy of the step's code
    instead of three (16, 8 and 1 lanes): half the tap leaves' compile time."""
    ir = _dw_ir
    i64 = ir.IntType(64)
    k = lambda v: ir.Constant(i64, v)  # noqa: E731
    lanes = _DW_LANES
    full = builder.mul(builder.udiv(m, k(lanes)), k(lanes))
    pre = builder.block
    head = builder.append_basic_block("dw_vec_head")
    body_b = builder.append_basic_block("dw_vec_body")
    done = builder.append_basic_block("dw_vec_done")
    builder.branch(head)
    builder.position_at_end(head)
    j = builder.phi(i64)
    j.add_incoming(k(0), pre)
    builder.cbranch(builder.icmp_signed("<", j, full), body_b, done)
    builder.position_at_end(body_b)
    body(lanes, j, None)
    j.add_incoming(builder.add(j, k(lanes)), builder.block)
    builder.branch(head)
    builder.position_at_end(done)
    with builder.if_then(builder.icmp_signed("<", full, m), likely=False):
        body(lanes, full, builder.sub(m, full))


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_taps_any(r1, p, cb, kh, kw, y0, y1, d, nr, rl, gc, n, s, m, acc):  # pragma: no cover - jitted
    """`_dw_taps` for any filter size and stride, kh and kw run-time values, rows unshared:
    one pass over the chunk per tap, acc[r·n + i] += ring[base_r(t) + i] · p[t·gc + i − s]
    (tap bases from cb, loaded outside the vector loop)."""
    unr, url = np.uint64(nr), np.uint64(rl)
    ug = np.uint64(gc)
    un = np.uint64(n)
    us = np.uint64(s)
    for r in range(2):
        ur = np.uint64(r) * un + us
        yr = np.uint64(y0) if r == 0 else np.uint64(y1)
        for j in range(m):
            acc[ur + np.uint64(j)] = 0
        for t in range(kh * kw):
            ut = _dw_slot(yr + np.uint64(t // kw * d), unr, url) + np.uint64(cb[t % kw]) + us
            wo = np.uint64(t) * ug
            for j in range(m):
                uj = np.uint64(j)
                acc[ur + uj] += r1[ut + uj] * p[wo + uj]


def _dw_taps_any_leaf():
    """The tap leaf of the generic variant (any filter size and stride): `_dw_taps`'
    arguments and loop, the chunk's sums by `_dw_taps_any` (tap column offsets cb at address
    cba, kh x kw run-time values) and `_dw_rq_chunk`. A leaf too, so that the driver holds
    no tap loop: models without such layers never compile it."""

    @leaf_cfunc(22, fastmath={'contract'})
    def taps_any(r1a, pa, acca, o1a, zqa, hitsa, y0, y1, d, nr, rl, gc, n, oa, ob, dw, sw, wq, c,
                 cba, kh, kw):  # pragma: no cover - jitted
        r1 = simd_array(simd_f32_ptr(r1a), (nr * rl,))
        p = simd_array(simd_f32_ptr(pa), ((kh * kw + 4) * gc,))
        acc = simd_array(simd_f32_ptr(acca), (2 * n,))
        o1 = simd_array(simd_i8_ptr(o1a), (simd_max(oa, ob) + n,))
        zq = simd_array(simd_i64_ptr(zqa), (3,))
        hits = simd_array(simd_i64_ptr(hitsa), (n + 1,))
        cb = simd_array(simd_i64_ptr(cba), (kw,))
        nh = 0
        for s in range(0, n, gc):
            m = simd_min(gc, n - s)
            _dw_taps_any(r1, p, cb, kh, kw, y0, y1, d, nr, rl, gc, n, s, m, acc)
            if _dw_rq_chunk(acc, p, kh * kw, gc, s, m, n, o1, oa, ob, zq):
                for i in range(s, s + m, _DW_LANES):  # the chunk's steps, as the template's
                    hits[1 + nh] = i
                    nh += 1
        hits[0] = nh

    return taps_any


@njit(cache=True, nogil=True)
def _dw_ring(x, out, p, q, g, taps, rs, fill, fix):  # pragma: no cover - jitted
    """The float ring driver, one for every tap loop: depthwise conv (multiplier 1) with
    exact float32 accumulation, two output rows per pass. The padded input rows they read,
    offset and converted, are kept in a ring of nr = (KH−1)·dh + 1 + sh rows (`_dw_fill_row`,
    column-phase split by the stride), so every tap of an output row is one contiguous run.
    Per chunk of gc outputs the tap sums come from the leaf at address `taps` (`_dw_taps`
    for 3x3 and 5x5 filters with row step rs, `_dw_variant` picks it: rs = sh < KH, shared
    rows, when vertical dilation is 1, sh <= 2 and there are two output rows or more: the
    two rows of a pass read ring rows ya .. ya + KH − 1 + sh, all in the ring, and an odd
    last row recomputes the row above it, whose ring rows are still there; rs = KH,
    unshared, otherwise) or `_dw_taps_any_leaf` (any size and stride), which also
    requantize; the steps with a flagged output are fixed by the leaf at `fix`
    (`_dw_fix_steps`), the ring rows filled by the one at `fill` (`_DW_LEAF_MAKERS`).
    x int8 [N,H,W,C] C-contiguous, out int8 [N,OH,OW,C]; p, q, g: see above. Its buffers
    are two flat np.empty arrays, the leaves get addresses: every array view, reshape and
    allocation form in a kernel costs compile time. Returns the work buffer's size (a use
    after the passes: Numba frees an array after its last use)."""
    sh, sw, dh, dw, pt, pl, kh, kw = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
    zp, gc = g[8], g[12]
    zq = np.int64(g.ctypes.data) + 9 * 8  # g[9:12]: zp_out, lo, hi
    shared = rs < kh
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    wq = ow + ((kw - 1) * dw) // sw
    rl = sw * wq * c
    span = (kh - 1) * dh + 1
    nr = span + sh
    orl = ow * c
    # float32: the ring (+ the over-read of a chunk's partial step), then the two rows' sums,
    # each 64-byte aligned (a 16-lane load of an aligned run reads one cache line, not two)
    nring = nr * rl + _DW_LANES
    work = simd_empty(nring + 2 * orl + 32, np.float32)
    r1 = np.int64(work.ctypes.data)
    r1 += (-r1) % 64
    acc = r1 + (nring * 4 + 63) // 64 * 64
    # int64: the tap columns cb[kx] (phase plane, then column in the plane), then the hits
    # list (the steps with a flagged output: count, starts)
    ints = simd_empty(kw + 1 + orl, np.int64)
    for kx in range(kw):
        ints[kx] = (((kx * dw) % sw) * wq + (kx * dw) // sw) * c
    cb = np.int64(ints.ctypes.data)
    hits = cb + kw * 8
    d = 1 if shared else dh
    x1 = np.int64(x.ctypes.data)
    o1 = np.int64(out.ctypes.data)
    for b in range(n):
        nxt = 0
        for oy0 in range(0, oh, 2):
            oy, oy2, ya, yb, top = _dw_pass(oy0, oh, sh, span, shared)
            for r in range(simd_max(nxt, ya), top):
                iy = r - pt
                simd_call(fill, (x1, x.size, (b * h + iy) * w * c, 0 <= iy < h, w, c, zp, pl,
                                 sw, wq, r1, nring, (r % nr) * rl))
            nxt = simd_max(nxt, top)
            oa = (b * oh + oy) * orl
            ob = (b * oh + oy2) * orl
            y0 = ya % nr
            y1 = y0 + rs if shared else yb % nr
            simd_call(taps, (r1, p, acc, o1, zq, hits, y0, y1, d, nr, rl, gc, orl, oa, ob, dw,
                             sw, wq, c, cb, kh, kw))
            if ints[kw]:
                simd_call(fix, (acc, p, p.size, q, kh * kw, gc, c, hits, orl, o1, out.size, oa,
                                ob, zq))
    return work.size


# ---------------------------------------------------------------------------------------------
# The AVX-512 VNNI path: exact integer tap sums with `vpdpbusd` over a ring of u8 rows
#
# Ring row y holds, for each output column ox of the row (and gsh = 4·dw / sw columns more
# when KW > 4) and each channel, the four taps x[y, ox·sw + t·dw] + 128 (t < 4) as u8 in one
# 32-bit lane (`vnni_dw_interleave4`; padding holds zp_in + 128): output index i = ox·C + c
# is at byte 4i, so a chunk of outputs is one contiguous run of every row it reads, as in
# the float ring, and a 4-tap group g of column ox is group 0 of column ox + g·gsh.
# `vnni_dw_taps` sums them with the weights wt [KH, NG, gcp·4] (s8, taps kx >= KW zero,
# tiled over the chunk) from corr = bias − (zp_in + 128)·Σ w per channel, which leaves
# bias + Σ (x − zp_in)·w over the in-image taps, exact in int32. The requantization is the
# float ring's test on y = fl(float(that)·eff), rounded twice, within the same error bound
# (`dw_u8_rq_chunk`; `_dw_fix_steps` for flagged outputs, from the stored sums): the outputs
# are the same, bit for bit. Per 32
# outputs of a 3x3 stride-1 pass this is 4 ring loads, 3 weight loads and 6 `vpdpbusd`,
# where the float loop has 21 loads and 18 multiply-adds.


@njit(cache=True, nogil=True, inline="always")
def _dw_fill_u8(x1, src, inside, w, c, zp, pl, sw, dw, owx, xrow, ring, dst):  # pragma: no cover - jitted
    """Ring row at ring[dst:] (u8 layout above) from the input row at x1[src:] (not inside:
    every byte zp + 128): the padded row goes to xrow first, as u8 x + 128 (x XOR 0x80; zp +
    128 outside the image), then every output column's 16-channel groups are interleaved
    (the last group overlaps the one before it when C is not a multiple of 16: it rewrites
    the same bytes)."""
    ud = np.uint64(dst)
    fill = np.uint8((zp + 128) & 0xFF)
    if not inside:
        for j in range(owx * c * 4):
            ring[ud + np.uint64(j)] = fill
        return
    wp = xrow.size // c
    lo = simd_min(pl, wp)
    hi = simd_min(pl + w, wp)
    for j in range(lo * c):
        xrow[j] = fill
    us = np.uint64(src)
    d1 = np.uint64(lo * c)
    flip = np.uint8(0x80)
    for j in range((hi - lo) * c):
        xrow[d1 + np.uint64(j)] = x1[us + np.uint64(j)] ^ flip
    for j in range(hi * c, wp * c):
        xrow[j] = fill
    xa = np.int64(xrow.ctypes.data)
    ra = np.int64(ring.ctypes.data) + np.int64(dst)
    chunks = (c + 15) // 16
    for ox in range(owx):
        s0 = xa + ox * sw * c
        d0 = ra + ox * c * 4
        for k in range(chunks):
            cs = simd_min(16 * k, c - 16)
            vnni_dw_interleave4(s0 + cs, dw * c, d0 + 4 * cs)


@intrinsic
def dw_u8_rq_chunk(typingctx, acca, prqa, o1a, zqa, hitsa, gc, s, m, n, oa, ob):
    """The VNNI ring's requantization of the chunk [s, s + m) of two output rows, as vector
    IR: int32 sums that include the bias (row A's at acc[s + j], row B's at acc[n + s + j]),
    the estimate y = fl(float(acc)·eff) and `_dw_rq1y`'s test (prq rows eff, thr, e, each
    gc floats), the outputs to o1[oa + s + j] and o1[ob + s + j], `_DW_LANES` a step as the
    float ring's tap loop; a step with a flagged output appends its start s + j to the hits
    list, for `_dw_fix_steps`. Arguments are int64: the addresses of acc, prq, o1, zq =
    [zp_out, lo, hi] and the hits list, then gc, s, m, n, oa, ob."""
    sig = types.void(acca, prqa, o1a, zqa, hitsa, gc, s, m, n, oa, ob)

    def codegen(context, builder, signature, args):
        _dw_emit_rq_u8(builder, [simd_as64(builder, v) for v in args])
        return context.get_dummy_value()

    return sig, codegen


def _dw_emit_rq_u8(builder, vals):
    """`dw_u8_rq_chunk`'s body."""
    ir = _dw_ir
    i64, f32 = ir.IntType(64), ir.FloatType()
    acca, prqa, o1a, zqa, hitsa, gc, s, m, n, oa, ob = vals
    k = lambda v: ir.Constant(i64, v)  # noqa: E731
    zq = builder.inttoptr(zqa, i64.as_pointer())
    zp, lo, hi = (builder.load(builder.gep(zq, [k(i)])) for i in range(3))
    zf = builder.sitofp(zp, f32)
    yl = builder.sitofp(builder.sub(lo, zp), f32)
    yh = builder.sitofp(builder.sub(hi, zp), f32)

    def body(lanes, j, count):
        vt = ir.VectorType(f32, lanes)

        def at(addr, off, width):  # element offset off + j of width bytes -> a pointer
            return builder.add(addr, builder.mul(builder.add(off, j), k(width)))

        def load(addr, off, ty):
            return builder.load(builder.inttoptr(at(addr, off, 4), ty.as_pointer()), align=4)

        eff, th, e = (load(prqa, builder.mul(gc, k(r)), vt) for r in range(3))
        flags = []
        for acc_off, out_off in ((s, builder.add(oa, s)), (builder.add(n, s), builder.add(ob, s))):
            acc = load(acca, acc_off, ir.VectorType(ir.IntType(32), lanes))
            q, flag = _dw_emit_rq(builder, builder.fmul(builder.sitofp(acc, vt), eff), th, e,
                                  yl, yh, zf)
            _dw_emit_store(builder, q, at(o1a, out_off, 1), 1, count)
            flags.append(flag)
        _dw_emit_hit(builder, flags, hitsa, builder.add(s, j), count)

    _dw_emit_steps(builder, m, body)


def _dw_u8_taps(kh_c, ng_c, rs_c):
    """The leaf of one `vnni_dw_taps` case (filter rows kh_c, 4-tap groups ng_c = ceil(KW /
    4), row step rs_c: `_dw_u8_variant`), its key a closure constant, so the leaf compiles
    only its own case (~0.1 s): `_dw_ring_u8` calls it through its address."""
    key_c = vnni_dw_key(kh_c, ng_c, rs_c)

    @leaf_cfunc(8)
    def taps(rows_a, wt_a, wst, gbytes, corr_a, n16, acc_a, acc_b):  # pragma: no cover - jitted
        vnni_dw_taps(rows_a, wt_a, wst, gbytes, corr_a, n16, acc_a, acc_b, key_c)

    return taps


@njit(cache=True, nogil=True)
def _dw_ring_u8(x, out, wt, corr, prq, q, g, taps, rs, fill, fix):  # pragma: no cover - jitted
    """The VNNI ring driver, one for every case: passes of two output rows as the float
    ring's (`_dw_ring`), rows sharing ring rows when the row step rs < KH; per chunk of
    gc outputs the tap sums by the case's leaf at address `taps` (`_dw_u8_taps`: the
    addresses of the chunk's ring rows, row A's then row B's, in `rows`), then the
    requantization of the chunk while its sums are in L1 (`dw_u8_rq_chunk`, flagged outputs
    by the leaf at `fix`: `_dw_fix_steps`; ring rows by the one at `fill`:
    `_dw_fill_u8`). x int8 [N,H,W,C] C-contiguous (C >= 16), out int8 [N,OH,OW,C]; wt,
    corr (`_dw_u8_tables`), prq (the requantization rows eff, thr, e of p), q, g as the
    float ring's. Returns the work buffer's size (a use after the passes: Numba frees an
    array after its last use)."""
    sh, sw, dh, dw, pt, pl, kh = g[0], g[1], g[2], g[3], g[4], g[5], g[6]
    zp, gc = g[8], g[12]
    zq_a = np.int64(g.ctypes.data) + 9 * 8  # g[9:12]: zp_out, lo, hi
    ng = wt.shape[1]
    shared = rs < kh
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    gsh = (4 * dw) // sw
    owx = ow + (ng - 1) * gsh
    rl = owx * c * 4 + 64 * ng  # + the over-read of a chunk's last vectors
    rl = (rl + 63) // 64 * 64
    span = (kh - 1) * dh + 1
    nr = span + sh
    orl = ow * c
    npad = (orl + 15) // 16 * 16 + 16
    # bytes: the ring, then the padded input row (one np.empty per dtype, addresses to the
    # leaves: every array view and allocation form in a kernel costs compile time)
    nring = nr * rl + 64
    nxrow = ((owx - 1) * sw + 3 * dw + 1) * c
    work = simd_empty(nring + nxrow, np.uint8)
    ring_a = np.int64(work.ctypes.data)
    xrow_a = ring_a + nring
    acc = simd_empty(2 * npad + 16, np.int32)
    acc_a = np.int64(acc.ctypes.data)
    # int64: the hits list (the steps with a flagged output: count, starts), then the
    # addresses of a chunk's ring rows
    nrows = kh + rs if shared else 2 * kh
    ints = simd_empty(orl + 1 + nrows, np.int64)
    hits_a = np.int64(ints.ctypes.data)
    rows_a = hits_a + (orl + 1) * 8
    rows = orl + 1
    o1_a = np.int64(out.ctypes.data)
    prq_a = np.int64(prq.ctypes.data)
    wt_a = np.int64(wt.ctypes.data)
    corr_a = np.int64(corr.ctypes.data)
    wst = np.int64(wt.shape[2])
    gbytes = np.int64(gsh * c * 4)
    x1 = np.int64(x.ctypes.data)
    for b in range(n):
        nxt = 0
        for oy0 in range(0, oh, 2):
            oy, oy2, ya, yb, top = _dw_pass(oy0, oh, sh, span, shared)
            for r in range(simd_max(nxt, ya), top):
                iy = r - pt
                simd_call(fill, (x1, x.size, (b * h + iy) * w * c, 0 <= iy < h, w, c, zp, pl,
                                 sw, dw, owx, xrow_a, nxrow, ring_a, nring, (r % nr) * rl))
            nxt = simd_max(nxt, top)
            oa = (b * oh + oy) * orl
            ob = (b * oh + oy2) * orl
            ints[0] = 0
            for s in range(0, orl, gc):
                m = simd_min(gc, orl - s)
                if shared:
                    for r in range(nrows):
                        ints[rows + r] = ring_a + ((ya + r) % nr) * rl + 4 * s
                else:
                    for ky in range(kh):
                        ints[rows + ky] = ring_a + ((ya + ky * dh) % nr) * rl + 4 * s
                        ints[rows + kh + ky] = ring_a + ((yb + ky * dh) % nr) * rl + 4 * s
                simd_call(taps, (rows_a, wt_a, wst, gbytes, corr_a, np.int64((m + 15) // 16),
                                 acc_a + 4 * s, acc_a + 4 * (npad + s)))
                dw_u8_rq_chunk(acc_a, prq_a, o1_a, zq_a, hits_a, gc, s, m, npad, oa, ob)
            if ints[0]:
                simd_call(fix, (acc, acc.size, prq, q, gc, c, hits_a, npad, orl, o1_a, out.size,
                                oa, ob, zq_a))
    return work.size


_DW_U8: dict = {}
"""The VNNI tap leaves made so far, by case (`_dw_u8_taps`)."""


def _dw_u8_leaf(case) -> int:
    """The address of case's tap leaf, made (compiled or loaded) on first use."""
    if case not in _DW_U8:
        _DW_U8[case] = _dw_u8_taps(*case)
    return _DW_U8[case].address


def _dw_u8_variant(g, oh: int) -> tuple[int, int, int] | None:
    """The `vnni_dw_taps` case (kh, ng, rs) of the `_dw_u8_taps` leaf for ring geometry g and
    output height oh, or None where the float ring runs: the host's GEMM path is not VNNI
    (`int8_gemm_path`), fewer than 16 channels, horizontal stride above 2 (or 4·dw not a
    multiple of it), a filter that is no case of `VNNI_DW_SHAPES` (3 rows and up to 4
    columns, 5 or 7 rows and 5 to 8)."""
    sh, sw, dh, dw, kh, kw = (int(g[i]) for i in (0, 1, 2, 3, 6, 7))
    c_ok = int(g[12]) >= 16  # gc = G·C >= 16 with C >= 16 checked by the caller
    if not (VNNI_OK and int8_gemm_path() == "vnni" and c_ok and sw <= 2 and (4 * dw) % sw == 0
            and kw <= 8):
        return None
    shared = sh <= 2 and dh == 1 and oh > 1 and sh < kh
    shape = (kh, (kw + 3) // 4, sh if shared else kh)
    return shape if shape in VNNI_DW_SHAPES else None


def _dw_u8_tables(params, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The VNNI ring's weight tiles wt s8 [KH, NG, gcp·4] (gcp: gc rounded up to 16 lanes;
    output j of a chunk is channel j mod C), corr int32 [gcp] = bias − (zp_in + 128)·Σ_taps w,
    and prq: the requantization rows eff, thr, e of the float ring's p (gc each)."""
    w = np.asarray(params["w"]).astype(np.int64)
    kh, kw, c = w.shape
    gc = int(params["dwg"][12])
    ng = (kw + 3) // 4
    gcp = (gc + 15) // 16 * 16
    chans = np.arange(gcp) % c
    wt = np.zeros((kh, ng * 4, gcp), np.int8)
    wt[:, :kw, :] = w[:, :, chans]
    wt = np.ascontiguousarray(wt.reshape(kh, ng, 4, gcp).transpose(0, 1, 3, 2)).reshape(kh, ng, gcp * 4)
    bias = np.asarray(params["bias"], np.int64)
    corr = (bias - (int(params["zp_in"]) + 128) * w.sum(axis=(0, 1)))[chans].astype(np.int32)
    # eff, thr, e (no bias_f) and the over-read of a partial step, not p's rows by step
    prq = np.ascontiguousarray(p[(kh * kw + 1) * gc:(kh * kw + 4) * gc + _DW_LANES])
    return wt, corr, prq


_DW_UNROLLED = ((3, 3), (5, 5), *((k, 1) for k in (3, 5, 7, 9)), *((1, k) for k in (3, 5, 7, 9)))
"""The filter sizes with unrolled tap loops (`_dw_taps` leaves): 3x3 and 5x5, and the 1-D
filters of temporal models (keyword spotting: 9x1 over [1, T, 1, C]), 1.2-1.7x faster than
`_dw_taps_any` there; others run `_dw_taps_any`."""

_DW_TAPS: dict = {}
"""The float ring's tap leaves made so far, by variant (`_dw_taps`)."""


def _dw_variant(g, oh: int) -> tuple[int, int, int]:
    """The tap-leaf variant (kh_c, kw_c, rs_c) of `_dw_taps` for ring geometry g and output
    height oh (see `_dw_ring`): (0, 0, 0) for the generic loop."""
    sh, sw, dh, kh, kw = (int(g[i]) for i in (0, 1, 2, 6, 7))
    if (kh, kw) not in _DW_UNROLLED or sw > 2:
        return 0, 0, 0
    shared = sh <= 2 and dh == 1 and oh > 1
    return kh, kw, sh if shared else kh


def _dw_taps_leaf(variant) -> int:
    """The address of the tap leaf of `variant` (`_dw_variant`: `_dw_taps`, or
    `_dw_taps_any_leaf` for (0, 0, 0)), made (compiled or loaded) on first use."""
    if variant not in _DW_TAPS:
        _DW_TAPS[variant] = _dw_taps(*variant) if variant[0] else _dw_taps_any_leaf()
    return _DW_TAPS[variant].address


def _dw_acc_bound(w, zp_in) -> np.ndarray:
    """Per channel, the largest |acc| a layer can reach: Σ_taps |w| · max|x − zp_in| (what
    lets a left-shifted channel's requantization take the float32 estimate,
    `fast_requant_tables`)."""
    zp = int(zp_in)
    xmax = max(127 - zp, zp + 128)
    return np.abs(np.asarray(w, np.int64)).sum(axis=(0, 1)) * xmax


def _dw_ring_tables(params) -> tuple[np.ndarray, np.ndarray]:
    """The ring kernel's p and q (see above) from the step params: the int8 weights w
    [KH, KW, C] and the integer requantization (bias, m, left, right). The weights and the
    requantization rows are tiled G = gc / C times (`_dw_ring_params` picks G) so the vector
    loops run over gc contiguous floats of a row; p is 64-byte aligned, its rows by step
    (`_dw_step_rows`) follow at `_dw_steps_offset`."""
    w = np.asarray(params["w"])
    kh, kw, c = w.shape
    bias, m = params["bias"], params["m"]
    left = np.asarray(params["left"], np.int64)
    right = np.asarray(params["right"], np.int64)
    t = fast_requant_tables(m, left - right, bias, _dw_acc_bound(w, params["dwg"][8]))
    rows = np.concatenate([w.reshape(kh * kw, c).astype(np.float32),
                           np.stack(_dw_rq_rows(t, params)).astype(np.float32)])
    gc = int(params["dwg"][12])
    tiled = np.tile(rows, (1, gc // c))
    steps = _dw_step_rows(tiled)
    # 64-byte aligned (plain numpy here), + the over-read of a chunk's partial step, then the
    # same rows by step (`_dw_step_rows`) at `_dw_steps_offset`
    at = _dw_steps_offset(tiled.shape[0], gc)
    p = _dw_empty64.py_func(at + steps.size)
    p[:at] = 0
    p[:tiled.size] = tiled.reshape(-1)
    p[at:] = steps.reshape(-1)
    q = np.concatenate([t["bias"], t["m"], t["left"], t["right"]]).astype(np.int64)
    return p, q


def _dw_steps_offset(nrows: int, gc: int) -> int:
    """Where p's rows by step begin (floats): after the nrows rows of gc and the over-read of
    a partial step, rounded up to 16 floats (64 bytes)."""
    return (nrows * gc + _DW_LANES + 15) // 16 * 16


def _dw_step_rows(rows: np.ndarray) -> np.ndarray:
    """The rows [nrows, gc] by `_DW_LANES`-output step: [ceil(gc / 16), nrows, 16] (zeros
    past gc), what the unrolled tap loops read (`_dw_emit_chunk`): a step's weights and
    requantization rows are one contiguous 64-byte-aligned block, addressed from one pointer
    with constant offsets, where one pointer per row ran the loop out of registers."""
    nrows, gc = rows.shape
    nb = -(-gc // _DW_LANES)
    padded = np.zeros((nrows, nb * _DW_LANES), np.float32)
    padded[:, :gc] = rows
    return np.ascontiguousarray(padded.reshape(nrows, nb, _DW_LANES).transpose(1, 0, 2))


# ---------------------------------------------------------------------------------------------
# Runner


@runner("depthwise_conv2d_i8")
def run_depthwise_conv2d_i8(inputs, params):
    if "dwg" in params:  # exact float32 accumulation: bound on the fly
        return _dw_bind(params)(inputs, params)
    x = np.ascontiguousarray(inputs[0])
    shp = params["out_shape"]
    out = np.empty((x.shape[0], shp[1], shp[2], shp[3]), np.int8)
    _dw_conv_i8(x, params["w"], params["bias"], params["m"], params["left"], params["right"],
                params["zp_in"], params["zp_out"], params["lo"], params["hi"], out,
                params["geom"])
    return [out]


def _dw_bind(params):
    """Plan-load binding of `run_depthwise_conv2d_i8` (see `PlanRunner`): the ring kernel's
    packed arguments derived from the compact params once (`_dw_ring_tables`)."""
    if "dwg" not in params:
        return run_depthwise_conv2d_i8
    shp = params["out_shape"]
    s1, s2, s3 = int(shp[1]), int(shp[2]), int(shp[3])
    g = np.ascontiguousarray(params["dwg"], np.int64)
    p, q = _dw_ring_tables(params)
    u8 = _dw_u8_variant(g, s1) if s3 >= 16 else None
    if u8 is not None:
        driver, leaf = _dw_ring_u8, _dw_u8_leaf
        fixed = (*_dw_u8_tables(params, p), q, g)
        variant, rs = u8, u8[2]
        kind = "u8"
    else:
        driver, leaf = _dw_ring, _dw_taps_leaf
        fixed = (p, q, g)
        variant = _dw_variant(g, s1)
        rs = variant[2] or int(g[6])
        kind = "ring"
    direct = DirectCall(driver)
    args = None  # the fixed arguments and the tap leaf's address, made at the first run
    empty = np.empty
    contiguous = np.ascontiguousarray
    i8 = np.int8

    def run(inputs, _params):
        nonlocal args
        x = inputs[0]
        if not x.flags.c_contiguous:
            x = contiguous(x)
        out = empty((x.shape[0], s1, s2, s3), i8)
        if args is None:
            args = (*fixed, leaf(variant), rs, _dw_leaf(kind, "fill"), _dw_leaf(kind, "fix"))
        direct.call(x, out, *args)
        return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        nonlocal args
        x, out = ins[0], outs[0]
        if (x.dtype != i8 or out.dtype != i8 or x.ndim != 4 or x.shape[3] != s3
                or out.shape != (x.shape[0], s1, s2, s3)
                or not (x.flags.c_contiguous and out.flags.c_contiguous)):
            return None
        if args is None:
            args = (*fixed, leaf(variant), rs, _dw_leaf(kind, "fill"), _dw_leaf(kind, "fix"))
        return fixed_call(driver, (x, out, *args))

    run.into = into

    def compile_driver():  # its types, on an empty batch (nothing runs, no leaf is called)
        driver(np.zeros((0, 1, 1, s3), i8), empty((0, s1, s2, s3), i8), *fixed, 0, rs, 0, 0)

    run.compile_key = ("depthwise_conv2d_i8", kind, *variant)
    # PlanRunner's units of compile work, in order: the driver (~2x a leaf's compile) and its
    # fill and fix leaves, one for every layer of the kind, and the layer's tap leaf
    run.compile_units = ((("depthwise_conv2d_i8", kind), compile_driver, 2.0),
                         *((("depthwise_conv2d_i8", kind, name), lambda name=name: _dw_leaf(kind, name))
                           for name in ("fill", "fix")),
                         (run.compile_key, lambda: leaf(variant)))
    return run


# The drivers' leaves besides the tap loops (`simd.leaf_cfunc`, called by address): a ring
# row's fill, and the exact fix-up of the flagged outputs. Numba would compile a jitted
# callee again inside its caller; a leaf compiles once, apart, a unit of the first run's
# parallel compile of its own. The fix-ups (`_dw_fix_steps`, one per ring) compute the
# flags of the steps in the hits list again, as the vector loops did (a fused multiply-add
# where the loop has none changes nothing: the threshold's margin covers either), and the
# exact result of the flagged outputs.


def _dw_leaf_fill_ring():
    @leaf_cfunc(13)
    def fill_ring(xa, nx, src, inside, w, c, zp, pl, sw, wq, ra, nring, dst):  # pragma: no cover - jitted
        _dw_fill_row(simd_array(simd_i8_ptr(xa), (nx,)), src, inside != 0, w, c, zp, pl, sw, wq,
                     simd_array(simd_f32_ptr(ra), (nring,)), dst)
    return fill_ring


def _dw_leaf_fix_ring():
    @leaf_cfunc(14)
    def fix_ring(acca, pa, npf, qa, nt, gc, c, hitsa, n, oa1, no1, oa, ob, zqa):  # pragma: no cover - jitted
        _dw_fix_steps(simd_array(simd_f32_ptr(acca), (2 * n,)), simd_array(simd_f32_ptr(pa), (npf,)),
                      simd_array(simd_i64_ptr(qa), (4 * c,)), nt, gc, c,
                      simd_array(simd_i64_ptr(hitsa), (n + 1,)), n, n,
                      simd_array(simd_i8_ptr(oa1), (no1,)), oa, ob,
                      simd_array(simd_i64_ptr(zqa), (3,)), True)
    return fix_ring


def _dw_leaf_fill_u8():
    @leaf_cfunc(16)
    def fill_u8(xa, nx, src, inside, w, c, zp, pl, sw, dw, owx, xra, nxrow, ra, nring, dst):  # pragma: no cover - jitted
        _dw_fill_u8(simd_array(simd_u8_ptr(xa), (nx,)), src, inside != 0, w, c, zp, pl, sw, dw,
                    owx, simd_array(simd_u8_ptr(xra), (nxrow,)), simd_array(simd_u8_ptr(ra), (nring,)),
                    dst)
    return fill_u8


def _dw_leaf_fix_u8():
    @leaf_cfunc(14)
    def fix_u8(acca, nacc, prqa, qa, gc, c, hitsa, na, n, oa1, no1, oa, ob, zqa):  # pragma: no cover - jitted
        _dw_fix_steps(simd_array(simd_i32_ptr(acca), (nacc,)), simd_array(simd_f32_ptr(prqa), (3 * gc,)),
                      simd_array(simd_i64_ptr(qa), (4 * c,)), 0, gc, c,
                      simd_array(simd_i64_ptr(hitsa), (n + 1,)), na, n,
                      simd_array(simd_i8_ptr(oa1), (no1,)), oa, ob,
                      simd_array(simd_i64_ptr(zqa), (3,)), False)
    return fix_u8


_DW_LEAF_MAKERS = {("ring", "fill"): _dw_leaf_fill_ring, ("ring", "fix"): _dw_leaf_fix_ring,
                   ("u8", "fill"): _dw_leaf_fill_u8, ("u8", "fix"): _dw_leaf_fix_u8}
_DW_LEAVES: dict = {}


def _dw_leaf(kind: str, name: str) -> int:
    """The address of the `kind` driver's leaf `name` ("fill", "fix"), made (compiled or
    loaded) on first use."""
    if (kind, name) not in _DW_LEAVES:
        _DW_LEAVES[kind, name] = _DW_LEAF_MAKERS[kind, name]()
    return _DW_LEAVES[kind, name].address



run_depthwise_conv2d_i8.bind = _dw_bind


# ---------------------------------------------------------------------------------------------
# Lowering (compile time)


@int8_lowering(nn.DepthwiseConv2DOp)
def lower_depthwise_conv2d(op):
    _, oh, ow, oc = shape(op.output)
    quant = _conv_quant(op, oc)
    if quant is None:
        return None
    filt, bias, zp_in, zp_out, m, shift, lo, hi = quant
    n, h, w, c = shape(op.input)
    _, kh, kw, _ = filt.shape
    mult = oc // c
    sh, sw = ints(op.stride)
    dh, dw = ints(op.dilation)
    pt, _ = same_padding(h, kh, sh, dh, oh)
    pl, _ = same_padding(w, kw, sw, dw, ow)
    params = {
        "geom": np.array([sh, sw, dh, dw, pt, pl, mult, kh, kw], np.int64),
        "out_shape": [n, oh, ow, oc],
        "zp_in": zp_in,
        "zp_out": zp_out,
        "lo": lo,
        "hi": hi,
    }
    wk = filt.reshape(kh, kw, oc)
    ring = _dw_ring_params(wk, bias, m, shift, params) if mult == 1 else None
    params.update(ring if ring is not None else _dw_int_params(wk, bias, m, shift))
    return "depthwise_conv2d_i8", params, [0]


def _dw_int_params(wk, bias, m, shift) -> dict[str, np.ndarray]:
    """The compact step params every path reads: the weights w int8 [KH, KW, C·M] and the
    integer requantization bias, m, left = max(shift, 0), right = max(−shift, 0) (int32)."""
    t = fast_requant_tables(m, shift, bias)
    return {"w": np.ascontiguousarray(wk, dtype=np.int8), "bias": t["bias"], "m": t["m"],
            "left": t["left"], "right": t["right"]}


def _dw_rq_rows(t, params) -> tuple[np.ndarray, ...]:
    """The per-channel requantization rows of `_dw_rq_chunk`: bias_f, eff (of
    `fast_requant_tables` t), thr and e. e = 2^−(right+1) (right >= 1) or 0 (right = 0) is
    the second rounding's offset; thr = 1/2 − tol (float32, rounded down), tol = 1.01 ·
    (4e−7·Y + 1e−7 + 2^−23·Y) with Y = max(|lo − zp_out|, |hi − zp_out|) + 1 bounding |y'|
    on unclamped outputs: the estimate's error there plus the rounding of y + copysign(e, y).
    Always-exact channels (margin 2) get thr = −1, so every output is flagged."""
    mg = t["margin"].astype(np.float64)
    zp, lo, hi = int(params["zp_out"]), int(params["lo"]), int(params["hi"])
    ymax = max(abs(lo - zp), abs(hi - zp)) + 1.0
    tol = 1.01 * (4e-7 * ymax + 1e-7 + 2.0**-23 * ymax)
    e = np.where(mg < 0.5, mg, 0.0)
    thr = np.float32(0.5 - tol)
    if float(thr) > 0.5 - tol:
        thr = np.nextafter(thr, np.float32(0))
    thr = np.where(mg >= 1.0, np.float32(-1.0), thr).astype(np.float32)
    return t["bias_f"], t["eff"], thr, e.astype(np.float32)


def _dw_ring_params(wk, bias, m, shift, params) -> dict[str, np.ndarray] | None:
    """The step params of the ring kernel (`_dw_int_params` and the ring geometry dwg, see
    above), or None when float32 accumulation would not be exact: it is when
    max_c Σ_k |w[k, c]| · max|x − zp_in| < 2^24 (every product and partial sum is then an
    integer float32 represents exactly). wk [KH, KW, C] int8 values; params: geom,
    out_shape, zp_in, zp_out, lo, hi of the step. The chunk gc = G·C of the vector loops:
    G·C >= 128 floats, G <= OW, and G·C a multiple of 16 (no partial step in a chunk's
    loop, `_dw_emit_steps`) when a G up to twice the least does it."""
    kh, kw, c = wk.shape
    zp_in = int(params["zp_in"])
    if int(_dw_acc_bound(wk, zp_in).max(initial=0)) >= (1 << 24):
        return None
    ow = int(params["out_shape"][2])
    g0 = max(1, min(ow, -(-128 // c)))
    g = next((g for g in range(g0, min(ow, 2 * g0) + 1) if g * c % 16 == 0), g0)
    geom = params["geom"]
    return dict(_dw_int_params(wk, bias, m, shift),
                dwg=np.array([*geom[:6], kh, kw, zp_in, params["zp_out"], params["lo"],
                              params["hi"], g * c], np.int64))
