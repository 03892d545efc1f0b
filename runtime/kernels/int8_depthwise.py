"""int8 DEPTHWISE_CONV_2D, bit-exact with LiteRT's reference kernel (BUILTIN_REF)
`reference_integer_ops::DepthwiseConvPerChannel`: per output channel c·M + m,
acc = Σ w·(x − zp_in) over the in-image taps (+ bias), out = clamp(MBQM(acc, m, sh) + zp_out,
act), (m, sh) = QuantizeMultiplier(double(s_in)·double(s_w) / double(s_out)).

How (multiplier 1): exact float32 accumulation — compile time checks that every product and
partial sum is an integer below 2^24 — over a ring of padded input rows (`_dw_conv_ring`), two
output rows per pass with unrolled 3x3 / 5x5 tap kernels (stride 1 and 2: the input rows the
two output rows share loaded once), then a float32 requantization
estimate whose rare undecided outputs get the exact integer MBQM (`_dw_rq1`, `_dw_fix`).
Other depthwise convolutions (multiplier > 1, or sums that could exceed 2^24) run the integer
loop `_dw_conv_i8`.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from qcc.dialects import nn

from ..fixedpoint import fast_requant_tables, mbqm_fast
from .common import ints, same_padding
from .int8_conv import _conv_quant, _conv_rq_params
from .int8_lowering import shape
from .int8_registry import runner
from .registry import int8_lowering

# ---------------------------------------------------------------------------------------------
# Numba loops


# Depthwise (multiplier 1) with exact float32 accumulation. Compile-time packed arguments
# (`_dw_ring_params`):
#   p float32 [(T + 4)·gc]: the T = KH·KW tap weights, each tap's C channels tiled G times
#     over gc = G·C floats, then the requantization rows bias_f, eff, off, tol (tiled alike);
#   q int64 [4·C]: bias, m, left, right (the exact integer MBQM of the fix-up);
#   g int64: stride h/w, dilation h/w, pad top/left, KH, KW, zp_in, zp_out, lo, hi, gc.


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rq1(a, bf, ef, th, e, yl, yh, zf):  # pragma: no cover - jitted
    """Requantize one exact float32 accumulator a (inlined into the 16-lane loops): returns
    (int8 output, flag); a flagged output is recomputed exactly by `_dw_fix`.

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
    y = (a + bf) * ef
    y = y + np.copysign(e, y)
    yc = min(max(y, yl), yh)
    r = np.rint(yc)
    return np.int8(r + zf), abs(yc - r) >= th


@njit(cache=True, nogil=True)
def _dw_fix(r1, p, tb, nt, kw, shared, gc, q, c, s, m, o1, oa, ob, zq, fl, words):  # pragma: no cover - jitted
    """Exact fix-up of the chunk [s, s + m) of two output rows (o1[oa + s + j], o1[ob + s + j]):
    every output whose flag byte fl[r·8·fw + j] is set (fw = ceil(gc / 8)) gets the integer
    clamp(MBQM(a + bias, m, shift) + zp_out, lo, hi) (branch-free `mbqm_fast`), its
    accumulator a recomputed from the ring: Σ_t r1[base + s + j] · p[t·gc + j], exact in
    float32 in any order (integers below 2^24). Tap bases: shared = row step (1 / 2: the
    stride-1 / stride-2 shared-row kernels) row r tap t = ky·kw + kx at
    tb[(ky + r·shared)·kw + kx], else (shared = 0) tb[r·nt + t]. The flags are read as
    uint64 words (words: fl viewed as uint64, made once by the caller, as a view costs
    ~20 ns), bytes only in nonzero words; bytes past m are stale and skipped. Callers pass
    nt, kw and shared (0 / 1 / 2) as int64 values, not literals: one compiled fix-up for every
    tap kernel (Numba would specialize on literal arguments, ~0.7 s of compile time each)."""
    fw = (gc + 7) // 8
    for r in range(2):
        oo = (oa if r == 0 else ob) + s
        for w in range(fw):
            if words[r * fw + w] == 0:
                continue
            for j in range(w * 8, min(w * 8 + 8, m)):
                if fl[r * 8 * fw + j]:
                    a = np.float32(0.0)
                    for t in range(nt):
                        if shared:
                            base = tb[(t // kw + r * shared) * kw + t % kw]
                        else:
                            base = tb[r * nt + t]
                        a += r1[base + s + j] * p[t * gc + j]
                    k = j % c  # s is a multiple of gc, a multiple of C
                    v = mbqm_fast(np.int64(a) + q[k], q[c + k], q[2 * c + k], q[3 * c + k]) + zq[0]
                    o1[oo + j] = min(max(v, zq[1]), zq[2])


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rq_chunk(acc, p, nt, gc, s, m, n, o1, oa, ob, zq, fl):  # pragma: no cover - jitted
    """Requantize the chunk [s, s + m) of two rows (accumulators acc[i], acc[n + i] ->
    o1[oa + i], o1[ob + i]) with `_dw_rq1` in one 16-lane loop per row, flags to fl (rows
    p[nt·gc:] bias_f, eff, thr, e: `_dw_rq_rows`). Returns whether an output was flagged."""
    ug = np.uint64(gc)
    gb = ug * np.uint64(nt)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    us = np.uint64(s)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    hit = False
    for r in range(2):
        ua = np.uint64(r * n) + us
        uo = np.uint64(oa if r == 0 else ob) + us
        uf = np.uint64(r * 8 * fw)
        for j in range(m):
            uj = np.uint64(j)
            v, f = _dw_rq1(acc[ua + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                           yl, yh, zf)
            o1[uo + uj] = v
            fl[uf + uj] = f
            hit |= f
    return hit


@njit(cache=True, nogil=True)
def _dw_fill_row(x1, src, inside, w, c, zp, pl, sw, wq, r1, dst):  # pragma: no cover - jitted
    """One padded input row (x1[src:] its first pixel), offset by −zp, as float32 into the
    ring at r1[dst:], split by column phase: plane ph holds padded columns qc·sw + ph
    (qc < wq), so a strided tap reads a contiguous run. Zeros outside the image (the whole row
    when not inside). Stride 1: one contiguous conversion between the two pad runs."""
    ud = np.uint64(dst)
    if not inside:
        for j in range(sw * wq * c):
            r1[ud + np.uint64(j)] = 0
        return
    z = np.float32(zp)
    us = np.uint64(src)
    for ph in range(sw):
        # image column ix = qc·sw + ph − pl in [0, w)
        q0 = min(max(0, (pl - ph + sw - 1) // sw), wq)
        q1 = max(min(wq, (w - 1 + pl - ph) // sw + 1), q0)
        d0 = ud + np.uint64(ph * wq * c)
        for j in range(q0 * c):
            r1[d0 + np.uint64(j)] = 0
        if sw == 1:
            s0 = us + np.uint64((q0 - pl) * c)
            d1 = d0 + np.uint64(q0 * c)
            for j in range((q1 - q0) * c):
                r1[d1 + np.uint64(j)] = np.float32(x1[s0 + np.uint64(j)]) - z
        else:
            for qc in range(q0, q1):
                s0 = us + np.uint64((qc * sw + ph - pl) * c)
                d1 = d0 + np.uint64(qc * c)
                for k in range(c):
                    r1[d1 + np.uint64(k)] = np.float32(x1[s0 + np.uint64(k)]) - z
        d2 = d0 + np.uint64(q1 * c)
        for j in range((wq - q1) * c):
            r1[d2 + np.uint64(j)] = 0


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows_any(r1, p, tb, nt, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Two output rows, any number nt of taps: acc[r·n + i] = Σ_t r1[tb[r·nt + t] + i] ·
    p[t·gc + i mod gc] (one pass per tap), then per chunk of gc the requantization
    `_dw_rq_chunk` and, when an output was flagged, `_dw_fix`."""
    ug = np.uint64(gc)
    un = np.uint64(n)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        for r in range(2):
            ur = np.uint64(r) * un + us
            for j in range(m):
                acc[ur + np.uint64(j)] = 0
            for t in range(nt):
                ut = np.uint64(tb[r * nt + t]) + us
                wo = np.uint64(t) * ug
                for j in range(m):
                    uj = np.uint64(j)
                    acc[ur + uj] += r1[ut + uj] * p[wo + uj]
        if _dw_rq_chunk(acc, p, nt, gc, s, m, n, o1, oa, ob, zq, fl):
            _dw_fix(r1, p, tb, nt, np.int64(1), np.int64(0), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows9(r1, p, tb, nt, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """`_dw_rows_any` for 9 taps, unrolled: both rows' accumulators (taps tb[t], tb[9 + t])
    in one vector loop per chunk of gc (weights loaded once for the two rows), requantized
    in the same loop (`_dw_rq1`), flagged outputs fixed per chunk (`_dw_fix`)."""
    a0 = np.uint64(tb[0])
    a1 = np.uint64(tb[1])
    a2 = np.uint64(tb[2])
    a3 = np.uint64(tb[3])
    a4 = np.uint64(tb[4])
    a5 = np.uint64(tb[5])
    a6 = np.uint64(tb[6])
    a7 = np.uint64(tb[7])
    a8 = np.uint64(tb[8])
    b0 = np.uint64(tb[9])
    b1 = np.uint64(tb[10])
    b2 = np.uint64(tb[11])
    b3 = np.uint64(tb[12])
    b4 = np.uint64(tb[13])
    b5 = np.uint64(tb[14])
    b6 = np.uint64(tb[15])
    b7 = np.uint64(tb[16])
    b8 = np.uint64(tb[17])
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    gb = ug * np.uint64(9)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for j in range(m):
            uj = np.uint64(j)
            i = us + uj
            w0 = p[uj]
            w1 = p[g1 + uj]
            w2 = p[g2 + uj]
            w3 = p[g3 + uj]
            w4 = p[g4 + uj]
            w5 = p[g5 + uj]
            w6 = p[g6 + uj]
            w7 = p[g7 + uj]
            w8 = p[g8 + uj]
            x = (
                r1[a0 + i] * w0
                + r1[a1 + i] * w1
                + r1[a2 + i] * w2
                + r1[a3 + i] * w3
                + r1[a4 + i] * w4
                + r1[a5 + i] * w5
                + r1[a6 + i] * w6
                + r1[a7 + i] * w7
                + r1[a8 + i] * w8
            )
            y = (
                r1[b0 + i] * w0
                + r1[b1 + i] * w1
                + r1[b2 + i] * w2
                + r1[b3 + i] * w3
                + r1[b4 + i] * w4
                + r1[b5 + i] * w5
                + r1[b6 + i] * w6
                + r1[b7 + i] * w7
                + r1[b8 + i] * w8
            )
            acc[i] = x
            acc[un + i] = y
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(9), np.int64(3), np.int64(0), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows25(r1, p, tb, nt, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """`_dw_rows_any` for 25 taps, unrolled: per chunk of gc, each row's accumulator in
    one vector loop (row r's taps tb[r·25 + t]; one loop over both rows' 50 runs
    would not vectorize), then both rows requantized (`_dw_rq1`) in one loop each and the
    flagged outputs fixed (`_dw_fix`)."""
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    g9 = ug * np.uint64(9)
    g10 = ug * np.uint64(10)
    g11 = ug * np.uint64(11)
    g12 = ug * np.uint64(12)
    g13 = ug * np.uint64(13)
    g14 = ug * np.uint64(14)
    g15 = ug * np.uint64(15)
    g16 = ug * np.uint64(16)
    g17 = ug * np.uint64(17)
    g18 = ug * np.uint64(18)
    g19 = ug * np.uint64(19)
    g20 = ug * np.uint64(20)
    g21 = ug * np.uint64(21)
    g22 = ug * np.uint64(22)
    g23 = ug * np.uint64(23)
    g24 = ug * np.uint64(24)
    gb = ug * np.uint64(25)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for r in range(2):
            a0 = np.uint64(tb[r * 25 + 0]) + us
            a1 = np.uint64(tb[r * 25 + 1]) + us
            a2 = np.uint64(tb[r * 25 + 2]) + us
            a3 = np.uint64(tb[r * 25 + 3]) + us
            a4 = np.uint64(tb[r * 25 + 4]) + us
            a5 = np.uint64(tb[r * 25 + 5]) + us
            a6 = np.uint64(tb[r * 25 + 6]) + us
            a7 = np.uint64(tb[r * 25 + 7]) + us
            a8 = np.uint64(tb[r * 25 + 8]) + us
            a9 = np.uint64(tb[r * 25 + 9]) + us
            a10 = np.uint64(tb[r * 25 + 10]) + us
            a11 = np.uint64(tb[r * 25 + 11]) + us
            a12 = np.uint64(tb[r * 25 + 12]) + us
            a13 = np.uint64(tb[r * 25 + 13]) + us
            a14 = np.uint64(tb[r * 25 + 14]) + us
            a15 = np.uint64(tb[r * 25 + 15]) + us
            a16 = np.uint64(tb[r * 25 + 16]) + us
            a17 = np.uint64(tb[r * 25 + 17]) + us
            a18 = np.uint64(tb[r * 25 + 18]) + us
            a19 = np.uint64(tb[r * 25 + 19]) + us
            a20 = np.uint64(tb[r * 25 + 20]) + us
            a21 = np.uint64(tb[r * 25 + 21]) + us
            a22 = np.uint64(tb[r * 25 + 22]) + us
            a23 = np.uint64(tb[r * 25 + 23]) + us
            a24 = np.uint64(tb[r * 25 + 24]) + us
            ur = np.uint64(r) * un + us
            for j in range(m):
                uj = np.uint64(j)
                acc[ur + uj] = (
                    r1[a0 + uj] * p[uj]
                    + r1[a1 + uj] * p[g1 + uj]
                    + r1[a2 + uj] * p[g2 + uj]
                    + r1[a3 + uj] * p[g3 + uj]
                    + r1[a4 + uj] * p[g4 + uj]
                    + r1[a5 + uj] * p[g5 + uj]
                    + r1[a6 + uj] * p[g6 + uj]
                    + r1[a7 + uj] * p[g7 + uj]
                    + r1[a8 + uj] * p[g8 + uj]
                    + r1[a9 + uj] * p[g9 + uj]
                    + r1[a10 + uj] * p[g10 + uj]
                    + r1[a11 + uj] * p[g11 + uj]
                    + r1[a12 + uj] * p[g12 + uj]
                    + r1[a13 + uj] * p[g13 + uj]
                    + r1[a14 + uj] * p[g14 + uj]
                    + r1[a15 + uj] * p[g15 + uj]
                    + r1[a16 + uj] * p[g16 + uj]
                    + r1[a17 + uj] * p[g17 + uj]
                    + r1[a18 + uj] * p[g18 + uj]
                    + r1[a19 + uj] * p[g19 + uj]
                    + r1[a20 + uj] * p[g20 + uj]
                    + r1[a21 + uj] * p[g21 + uj]
                    + r1[a22 + uj] * p[g22 + uj]
                    + r1[a23 + uj] * p[g23 + uj]
                    + r1[a24 + uj] * p[g24 + uj]
                )
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(25), np.int64(5), np.int64(0), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows3s1(r1, p, tb, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Two output rows of a 3x3 depthwise conv with vertical stride and dilation 1
    (rows A and B = A + 1 read ring rows 0..2 and 1..3): acc[i] = Σ ring row
    ky + column tap kx · w[ky, kx], acc[n + i] = Σ ring row ky + 1 + tap kx · w[ky, kx],
    for i < n, unrolled; each of the 12 ring runs tb[r·3 + kx] (ring row r, column
    tap kx) is loaded once for both rows, the weights p[t·gc + i mod gc] once too. Both rows
    are requantized in the same vector loop (`_dw_rq1`, outputs o1[oa + i], o1[ob + i]),
    flagged outputs fixed per chunk of gc (`_dw_fix`). Only o1 and the flags are stored:
    LLVM's runtime alias checks give up on more arrays written in one loop.
    """
    t0_0 = np.uint64(tb[0])
    t0_1 = np.uint64(tb[1])
    t0_2 = np.uint64(tb[2])
    t1_0 = np.uint64(tb[3])
    t1_1 = np.uint64(tb[4])
    t1_2 = np.uint64(tb[5])
    t2_0 = np.uint64(tb[6])
    t2_1 = np.uint64(tb[7])
    t2_2 = np.uint64(tb[8])
    t3_0 = np.uint64(tb[9])
    t3_1 = np.uint64(tb[10])
    t3_2 = np.uint64(tb[11])
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    gb = ug * np.uint64(9)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for j in range(m):
            uj = np.uint64(j)
            i = us + uj
            w0 = p[uj]
            w1 = p[g1 + uj]
            w2 = p[g2 + uj]
            w3 = p[g3 + uj]
            w4 = p[g4 + uj]
            w5 = p[g5 + uj]
            w6 = p[g6 + uj]
            w7 = p[g7 + uj]
            w8 = p[g8 + uj]
            v0_0 = r1[t0_0 + i]
            v0_1 = r1[t0_1 + i]
            v0_2 = r1[t0_2 + i]
            v1_0 = r1[t1_0 + i]
            v1_1 = r1[t1_1 + i]
            v1_2 = r1[t1_2 + i]
            v2_0 = r1[t2_0 + i]
            v2_1 = r1[t2_1 + i]
            v2_2 = r1[t2_2 + i]
            v3_0 = r1[t3_0 + i]
            v3_1 = r1[t3_1 + i]
            v3_2 = r1[t3_2 + i]
            x = (
                v0_0 * w0
                + v0_1 * w1
                + v0_2 * w2
                + v1_0 * w3
                + v1_1 * w4
                + v1_2 * w5
                + v2_0 * w6
                + v2_1 * w7
                + v2_2 * w8
            )
            y = (
                v1_0 * w0
                + v1_1 * w1
                + v1_2 * w2
                + v2_0 * w3
                + v2_1 * w4
                + v2_2 * w5
                + v3_0 * w6
                + v3_1 * w7
                + v3_2 * w8
            )
            acc[i] = x
            acc[un + i] = y
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(9), np.int64(3), np.int64(1), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows5s1(r1, p, tb, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Two output rows of a 5x5 depthwise conv with vertical stride and dilation 1
    (rows A and B = A + 1 read ring rows 0..4 and 1..5): acc[i] = Σ ring row
    ky + column tap kx · w[ky, kx], acc[n + i] = Σ ring row ky + 1 + tap kx · w[ky, kx],
    for i < n, unrolled; each of the 30 ring runs tb[r·5 + kx] (ring row r, column
    tap kx) is loaded once for both rows, the weights p[t·gc + i mod gc] once too. Both rows
    are requantized in the same vector loop (`_dw_rq1`, outputs o1[oa + i], o1[ob + i]),
    flagged outputs fixed per chunk of gc (`_dw_fix`). Only o1 and the flags are stored:
    LLVM's runtime alias checks give up on more arrays written in one loop.
    """
    t0_0 = np.uint64(tb[0])
    t0_1 = np.uint64(tb[1])
    t0_2 = np.uint64(tb[2])
    t0_3 = np.uint64(tb[3])
    t0_4 = np.uint64(tb[4])
    t1_0 = np.uint64(tb[5])
    t1_1 = np.uint64(tb[6])
    t1_2 = np.uint64(tb[7])
    t1_3 = np.uint64(tb[8])
    t1_4 = np.uint64(tb[9])
    t2_0 = np.uint64(tb[10])
    t2_1 = np.uint64(tb[11])
    t2_2 = np.uint64(tb[12])
    t2_3 = np.uint64(tb[13])
    t2_4 = np.uint64(tb[14])
    t3_0 = np.uint64(tb[15])
    t3_1 = np.uint64(tb[16])
    t3_2 = np.uint64(tb[17])
    t3_3 = np.uint64(tb[18])
    t3_4 = np.uint64(tb[19])
    t4_0 = np.uint64(tb[20])
    t4_1 = np.uint64(tb[21])
    t4_2 = np.uint64(tb[22])
    t4_3 = np.uint64(tb[23])
    t4_4 = np.uint64(tb[24])
    t5_0 = np.uint64(tb[25])
    t5_1 = np.uint64(tb[26])
    t5_2 = np.uint64(tb[27])
    t5_3 = np.uint64(tb[28])
    t5_4 = np.uint64(tb[29])
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    g9 = ug * np.uint64(9)
    g10 = ug * np.uint64(10)
    g11 = ug * np.uint64(11)
    g12 = ug * np.uint64(12)
    g13 = ug * np.uint64(13)
    g14 = ug * np.uint64(14)
    g15 = ug * np.uint64(15)
    g16 = ug * np.uint64(16)
    g17 = ug * np.uint64(17)
    g18 = ug * np.uint64(18)
    g19 = ug * np.uint64(19)
    g20 = ug * np.uint64(20)
    g21 = ug * np.uint64(21)
    g22 = ug * np.uint64(22)
    g23 = ug * np.uint64(23)
    g24 = ug * np.uint64(24)
    gb = ug * np.uint64(25)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for j in range(m):
            uj = np.uint64(j)
            i = us + uj
            w0 = p[uj]
            w1 = p[g1 + uj]
            w2 = p[g2 + uj]
            w3 = p[g3 + uj]
            w4 = p[g4 + uj]
            w5 = p[g5 + uj]
            w6 = p[g6 + uj]
            w7 = p[g7 + uj]
            w8 = p[g8 + uj]
            w9 = p[g9 + uj]
            w10 = p[g10 + uj]
            w11 = p[g11 + uj]
            w12 = p[g12 + uj]
            w13 = p[g13 + uj]
            w14 = p[g14 + uj]
            w15 = p[g15 + uj]
            w16 = p[g16 + uj]
            w17 = p[g17 + uj]
            w18 = p[g18 + uj]
            w19 = p[g19 + uj]
            w20 = p[g20 + uj]
            w21 = p[g21 + uj]
            w22 = p[g22 + uj]
            w23 = p[g23 + uj]
            w24 = p[g24 + uj]
            v0_0 = r1[t0_0 + i]
            v0_1 = r1[t0_1 + i]
            v0_2 = r1[t0_2 + i]
            v0_3 = r1[t0_3 + i]
            v0_4 = r1[t0_4 + i]
            v1_0 = r1[t1_0 + i]
            v1_1 = r1[t1_1 + i]
            v1_2 = r1[t1_2 + i]
            v1_3 = r1[t1_3 + i]
            v1_4 = r1[t1_4 + i]
            v2_0 = r1[t2_0 + i]
            v2_1 = r1[t2_1 + i]
            v2_2 = r1[t2_2 + i]
            v2_3 = r1[t2_3 + i]
            v2_4 = r1[t2_4 + i]
            v3_0 = r1[t3_0 + i]
            v3_1 = r1[t3_1 + i]
            v3_2 = r1[t3_2 + i]
            v3_3 = r1[t3_3 + i]
            v3_4 = r1[t3_4 + i]
            v4_0 = r1[t4_0 + i]
            v4_1 = r1[t4_1 + i]
            v4_2 = r1[t4_2 + i]
            v4_3 = r1[t4_3 + i]
            v4_4 = r1[t4_4 + i]
            v5_0 = r1[t5_0 + i]
            v5_1 = r1[t5_1 + i]
            v5_2 = r1[t5_2 + i]
            v5_3 = r1[t5_3 + i]
            v5_4 = r1[t5_4 + i]
            x = (
                v0_0 * w0
                + v0_1 * w1
                + v0_2 * w2
                + v0_3 * w3
                + v0_4 * w4
                + v1_0 * w5
                + v1_1 * w6
                + v1_2 * w7
                + v1_3 * w8
                + v1_4 * w9
                + v2_0 * w10
                + v2_1 * w11
                + v2_2 * w12
                + v2_3 * w13
                + v2_4 * w14
                + v3_0 * w15
                + v3_1 * w16
                + v3_2 * w17
                + v3_3 * w18
                + v3_4 * w19
                + v4_0 * w20
                + v4_1 * w21
                + v4_2 * w22
                + v4_3 * w23
                + v4_4 * w24
            )
            y = (
                v1_0 * w0
                + v1_1 * w1
                + v1_2 * w2
                + v1_3 * w3
                + v1_4 * w4
                + v2_0 * w5
                + v2_1 * w6
                + v2_2 * w7
                + v2_3 * w8
                + v2_4 * w9
                + v3_0 * w10
                + v3_1 * w11
                + v3_2 * w12
                + v3_3 * w13
                + v3_4 * w14
                + v4_0 * w15
                + v4_1 * w16
                + v4_2 * w17
                + v4_3 * w18
                + v4_4 * w19
                + v5_0 * w20
                + v5_1 * w21
                + v5_2 * w22
                + v5_3 * w23
                + v5_4 * w24
            )
            acc[i] = x
            acc[un + i] = y
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(25), np.int64(5), np.int64(1), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows3s2(r1, p, tb, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Two output rows of a 3x3 depthwise conv with vertical stride 2 and dilation 1
    (rows A and B = A + 1 read ring rows 0..2 and 2..4; 2 shared): acc[i] = Σ ring
    row ky + column tap kx · w[ky, kx], acc[n + i] = Σ ring row ky + 2 + tap kx · w[ky, kx],
    for i < n, unrolled; each of the 15 ring runs tb[r·3 + kx] (ring row r, column tap kx,
    contiguous thanks to the column-phase split of the ring) is loaded once for both rows
    (18 without sharing), the weights p[t·gc + i mod gc] once too. Same exact float32 sums as
    `_dw_rows9` (integers below 2^24, any order). Both rows are requantized in the same
    vector loop (`_dw_rq1`, outputs o1[oa + i], o1[ob + i]), flagged outputs fixed per chunk
    of gc (`_dw_fix`, row step 2). Only o1 and the flags are stored: LLVM's runtime alias
    checks give up on more arrays written in one loop.
    """
    t0_0 = np.uint64(tb[0])
    t0_1 = np.uint64(tb[1])
    t0_2 = np.uint64(tb[2])
    t1_0 = np.uint64(tb[3])
    t1_1 = np.uint64(tb[4])
    t1_2 = np.uint64(tb[5])
    t2_0 = np.uint64(tb[6])
    t2_1 = np.uint64(tb[7])
    t2_2 = np.uint64(tb[8])
    t3_0 = np.uint64(tb[9])
    t3_1 = np.uint64(tb[10])
    t3_2 = np.uint64(tb[11])
    t4_0 = np.uint64(tb[12])
    t4_1 = np.uint64(tb[13])
    t4_2 = np.uint64(tb[14])
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    gb = ug * np.uint64(9)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for j in range(m):
            uj = np.uint64(j)
            i = us + uj
            w0 = p[uj]
            w1 = p[g1 + uj]
            w2 = p[g2 + uj]
            w3 = p[g3 + uj]
            w4 = p[g4 + uj]
            w5 = p[g5 + uj]
            w6 = p[g6 + uj]
            w7 = p[g7 + uj]
            w8 = p[g8 + uj]
            v0_0 = r1[t0_0 + i]
            v0_1 = r1[t0_1 + i]
            v0_2 = r1[t0_2 + i]
            v1_0 = r1[t1_0 + i]
            v1_1 = r1[t1_1 + i]
            v1_2 = r1[t1_2 + i]
            v2_0 = r1[t2_0 + i]
            v2_1 = r1[t2_1 + i]
            v2_2 = r1[t2_2 + i]
            v3_0 = r1[t3_0 + i]
            v3_1 = r1[t3_1 + i]
            v3_2 = r1[t3_2 + i]
            v4_0 = r1[t4_0 + i]
            v4_1 = r1[t4_1 + i]
            v4_2 = r1[t4_2 + i]
            x = (
                v0_0 * w0
                + v0_1 * w1
                + v0_2 * w2
                + v1_0 * w3
                + v1_1 * w4
                + v1_2 * w5
                + v2_0 * w6
                + v2_1 * w7
                + v2_2 * w8
            )
            y = (
                v2_0 * w0
                + v2_1 * w1
                + v2_2 * w2
                + v3_0 * w3
                + v3_1 * w4
                + v3_2 * w5
                + v4_0 * w6
                + v4_1 * w7
                + v4_2 * w8
            )
            acc[i] = x
            acc[un + i] = y
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(9), np.int64(3), np.int64(2), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(cache=True, nogil=True, fastmath={'contract'})
def _dw_rows5s2(r1, p, tb, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Two output rows of a 5x5 depthwise conv with vertical stride 2 and dilation 1
    (rows A and B = A + 1 read ring rows 0..4 and 2..6; 4 shared): acc[i] = Σ ring
    row ky + column tap kx · w[ky, kx], acc[n + i] = Σ ring row ky + 2 + tap kx · w[ky, kx],
    for i < n, unrolled; each of the 35 ring runs tb[r·5 + kx] (ring row r, column tap kx,
    contiguous thanks to the column-phase split of the ring) is loaded once for both rows
    (50 without sharing), the weights p[t·gc + i mod gc] once too. Same exact float32 sums as
    `_dw_rows25` (integers below 2^24, any order). Both rows are requantized in the same
    vector loop (`_dw_rq1`, outputs o1[oa + i], o1[ob + i]), flagged outputs fixed per chunk
    of gc (`_dw_fix`, row step 2). Only o1 and the flags are stored: LLVM's runtime alias
    checks give up on more arrays written in one loop.
    """
    t0_0 = np.uint64(tb[0])
    t0_1 = np.uint64(tb[1])
    t0_2 = np.uint64(tb[2])
    t0_3 = np.uint64(tb[3])
    t0_4 = np.uint64(tb[4])
    t1_0 = np.uint64(tb[5])
    t1_1 = np.uint64(tb[6])
    t1_2 = np.uint64(tb[7])
    t1_3 = np.uint64(tb[8])
    t1_4 = np.uint64(tb[9])
    t2_0 = np.uint64(tb[10])
    t2_1 = np.uint64(tb[11])
    t2_2 = np.uint64(tb[12])
    t2_3 = np.uint64(tb[13])
    t2_4 = np.uint64(tb[14])
    t3_0 = np.uint64(tb[15])
    t3_1 = np.uint64(tb[16])
    t3_2 = np.uint64(tb[17])
    t3_3 = np.uint64(tb[18])
    t3_4 = np.uint64(tb[19])
    t4_0 = np.uint64(tb[20])
    t4_1 = np.uint64(tb[21])
    t4_2 = np.uint64(tb[22])
    t4_3 = np.uint64(tb[23])
    t4_4 = np.uint64(tb[24])
    t5_0 = np.uint64(tb[25])
    t5_1 = np.uint64(tb[26])
    t5_2 = np.uint64(tb[27])
    t5_3 = np.uint64(tb[28])
    t5_4 = np.uint64(tb[29])
    t6_0 = np.uint64(tb[30])
    t6_1 = np.uint64(tb[31])
    t6_2 = np.uint64(tb[32])
    t6_3 = np.uint64(tb[33])
    t6_4 = np.uint64(tb[34])
    ug = np.uint64(gc)
    g1 = ug * np.uint64(1)
    g2 = ug * np.uint64(2)
    g3 = ug * np.uint64(3)
    g4 = ug * np.uint64(4)
    g5 = ug * np.uint64(5)
    g6 = ug * np.uint64(6)
    g7 = ug * np.uint64(7)
    g8 = ug * np.uint64(8)
    g9 = ug * np.uint64(9)
    g10 = ug * np.uint64(10)
    g11 = ug * np.uint64(11)
    g12 = ug * np.uint64(12)
    g13 = ug * np.uint64(13)
    g14 = ug * np.uint64(14)
    g15 = ug * np.uint64(15)
    g16 = ug * np.uint64(16)
    g17 = ug * np.uint64(17)
    g18 = ug * np.uint64(18)
    g19 = ug * np.uint64(19)
    g20 = ug * np.uint64(20)
    g21 = ug * np.uint64(21)
    g22 = ug * np.uint64(22)
    g23 = ug * np.uint64(23)
    g24 = ug * np.uint64(24)
    gb = ug * np.uint64(25)
    ge = gb + ug
    gt = ge + ug
    gs = gt + ug
    un = np.uint64(n)
    ua = np.uint64(oa)
    ub = np.uint64(ob)
    zf = np.float32(zq[0])
    yl = np.float32(zq[1] - zq[0])
    yh = np.float32(zq[2] - zq[0])
    fw = (gc + 7) // 8
    uf = np.uint64(8 * fw)
    for s in range(0, n, gc):
        us = np.uint64(s)
        m = min(gc, n - s)
        hit = False
        for j in range(m):
            uj = np.uint64(j)
            i = us + uj
            w0 = p[uj]
            w1 = p[g1 + uj]
            w2 = p[g2 + uj]
            w3 = p[g3 + uj]
            w4 = p[g4 + uj]
            w5 = p[g5 + uj]
            w6 = p[g6 + uj]
            w7 = p[g7 + uj]
            w8 = p[g8 + uj]
            w9 = p[g9 + uj]
            w10 = p[g10 + uj]
            w11 = p[g11 + uj]
            w12 = p[g12 + uj]
            w13 = p[g13 + uj]
            w14 = p[g14 + uj]
            w15 = p[g15 + uj]
            w16 = p[g16 + uj]
            w17 = p[g17 + uj]
            w18 = p[g18 + uj]
            w19 = p[g19 + uj]
            w20 = p[g20 + uj]
            w21 = p[g21 + uj]
            w22 = p[g22 + uj]
            w23 = p[g23 + uj]
            w24 = p[g24 + uj]
            v0_0 = r1[t0_0 + i]
            v0_1 = r1[t0_1 + i]
            v0_2 = r1[t0_2 + i]
            v0_3 = r1[t0_3 + i]
            v0_4 = r1[t0_4 + i]
            v1_0 = r1[t1_0 + i]
            v1_1 = r1[t1_1 + i]
            v1_2 = r1[t1_2 + i]
            v1_3 = r1[t1_3 + i]
            v1_4 = r1[t1_4 + i]
            v2_0 = r1[t2_0 + i]
            v2_1 = r1[t2_1 + i]
            v2_2 = r1[t2_2 + i]
            v2_3 = r1[t2_3 + i]
            v2_4 = r1[t2_4 + i]
            v3_0 = r1[t3_0 + i]
            v3_1 = r1[t3_1 + i]
            v3_2 = r1[t3_2 + i]
            v3_3 = r1[t3_3 + i]
            v3_4 = r1[t3_4 + i]
            v4_0 = r1[t4_0 + i]
            v4_1 = r1[t4_1 + i]
            v4_2 = r1[t4_2 + i]
            v4_3 = r1[t4_3 + i]
            v4_4 = r1[t4_4 + i]
            v5_0 = r1[t5_0 + i]
            v5_1 = r1[t5_1 + i]
            v5_2 = r1[t5_2 + i]
            v5_3 = r1[t5_3 + i]
            v5_4 = r1[t5_4 + i]
            v6_0 = r1[t6_0 + i]
            v6_1 = r1[t6_1 + i]
            v6_2 = r1[t6_2 + i]
            v6_3 = r1[t6_3 + i]
            v6_4 = r1[t6_4 + i]
            x = (
                v0_0 * w0
                + v0_1 * w1
                + v0_2 * w2
                + v0_3 * w3
                + v0_4 * w4
                + v1_0 * w5
                + v1_1 * w6
                + v1_2 * w7
                + v1_3 * w8
                + v1_4 * w9
                + v2_0 * w10
                + v2_1 * w11
                + v2_2 * w12
                + v2_3 * w13
                + v2_4 * w14
                + v3_0 * w15
                + v3_1 * w16
                + v3_2 * w17
                + v3_3 * w18
                + v3_4 * w19
                + v4_0 * w20
                + v4_1 * w21
                + v4_2 * w22
                + v4_3 * w23
                + v4_4 * w24
            )
            y = (
                v2_0 * w0
                + v2_1 * w1
                + v2_2 * w2
                + v2_3 * w3
                + v2_4 * w4
                + v3_0 * w5
                + v3_1 * w6
                + v3_2 * w7
                + v3_3 * w8
                + v3_4 * w9
                + v4_0 * w10
                + v4_1 * w11
                + v4_2 * w12
                + v4_3 * w13
                + v4_4 * w14
                + v5_0 * w15
                + v5_1 * w16
                + v5_2 * w17
                + v5_3 * w18
                + v5_4 * w19
                + v6_0 * w20
                + v6_1 * w21
                + v6_2 * w22
                + v6_3 * w23
                + v6_4 * w24
            )
            acc[i] = x
            acc[un + i] = y
        for r in range(2):
            ur = np.uint64(r) * un + us
            uo = (ua if r == 0 else ub) + us
            ur8 = np.uint64(r) * uf
            for j in range(m):
                uj = np.uint64(j)
                v, f = _dw_rq1(acc[ur + uj], p[gb + uj], p[ge + uj], p[gt + uj], p[gs + uj],
                               yl, yh, zf)
                o1[uo + uj] = v
                fl[ur8 + uj] = f
                hit |= f
        if hit:
            _dw_fix(r1, p, tb, np.int64(25), np.int64(5), np.int64(2), gc, q, c, s, m, o1, oa, ob, zq, fl, fw64)


@njit(inline="always")
def _dw_ring_body(x, out, p, q, g, shared, shared_s1, shared_s2, general):  # pragma: no cover - jitted
    """Depthwise conv (multiplier 1) with exact float32 accumulation (every partial sum is an
    integer below 2^24), two output rows per pass: the padded input rows they read, offset
    and converted, are kept in a ring of (KH−1)·dh + 1 + sh rows (`_dw_fill_row`, column-phase
    split by the stride), so every tap of an output row is one contiguous run: acc[ox·C + k] =
    Σ_t ring[tap base + ox·C + k] · p[t·gc + (ox·C + k) mod gc] (weights tiled to gc = G·C at
    compile time); each chunk of gc is requantized right after its taps (`_dw_rq1`: rint of a
    float32 estimate, fix-up of the rare flagged outputs by `_dw_fix`). 3x3 and 5x5 unrolled
    (`_dw_rows9`, `_dw_rows25`; with vertical dilation 1, stride 1 `_dw_rows3s1`,
    `_dw_rows5s1` and stride 2 `_dw_rows3s2`, `_dw_rows5s2` share the ring rows of the two
    output rows: rows ya .. ya + KH − 1 + sh, all in the ring of KH + sh rows; an odd last
    row recomputes the row above it, whose ring rows are still there).
    p, q, g: see `_dw_ring_params`. x int8 [N,H,W,C] C-contiguous, out int8 [N,OH,OW,C].
    The tap kernels come in as arguments (`shared` says whether the shared-row ones apply):
    the body is inlined into one driver per kernel size (`_dw_conv_ring3`, `_dw_conv_ring5`,
    `_dw_conv_ring_any`), so a model compiles only the kernels of the sizes it has (each
    unrolled kernel costs about a second of compile time)."""
    sh, sw, dh, dw, pt, pl, kh, kw = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
    zp, gc = g[8], g[12]
    zq = g[9:12]
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    nt = kh * kw
    wq = ow + ((kw - 1) * dw) // sw
    rl = sw * wq * c
    span = (kh - 1) * dh + 1
    nr = span + sh
    r1 = np.empty(nr * rl, np.float32)
    orl = ow * c
    acc = np.empty(2 * orl, np.float32)
    fl = np.zeros(2 * 8 * ((gc + 7) // 8), np.uint8)  # flag bytes of `_dw_rq_chunk`
    fw64 = fl.view(np.uint64)
    tb = np.empty(max(2 * nt, (kh + 2) * kw), np.int64)
    x1 = x.reshape(-1)
    o1 = out.reshape(-1)
    s1 = sh <= 2 and dh == 1 and kh == kw and (kh == 3 or kh == 5) and shared  # shared rows
    for b in range(n):
        nxt = 0
        for oy0 in range(0, oh, 2):
            oy = oy0
            oy2 = min(oy + 1, oh - 1)  # an odd last row: computed twice
            s1r = s1
            if s1 and oy2 == oy:  # shared rows: recompute the row above too (or, with a
                if oy > 0:  # single row, the generic kernel)
                    oy -= 1
                else:
                    s1r = False
            ya = oy * sh
            yb = oy2 * sh
            top = ya + span + sh if s1r else yb + span
            for r in range(max(nxt, ya), top):
                iy = r - pt
                _dw_fill_row(x1, (b * h + iy) * w * c, 0 <= iy < h, w, c, zp, pl, sw, wq, r1,
                             (r % nr) * rl)
            nxt = max(nxt, top)
            oa = (b * oh + oy) * orl
            ob = (b * oh + oy2) * orl
            if s1r:  # ring rows ya .. ya + KH − 1 + sh, shared by the two output rows
                for r in range(kh + sh):
                    base = ((ya + r) % nr) * rl
                    for kx in range(kw):
                        o = kx * dw
                        tb[r * kw + kx] = base + ((o % sw) * wq + o // sw) * c
                if sh == 1:
                    shared_s1(r1, p, tb, gc, orl, acc, o1, oa, ob, q, c, zq, fl, fw64)
                else:
                    shared_s2(r1, p, tb, gc, orl, acc, o1, oa, ob, q, c, zq, fl, fw64)
                continue
            for ky in range(kh):
                ra = ((ya + ky * dh) % nr) * rl
                rb = ((yb + ky * dh) % nr) * rl
                for kx in range(kw):
                    o = kx * dw
                    co = ((o % sw) * wq + o // sw) * c
                    tb[ky * kw + kx] = ra + co
                    tb[nt + ky * kw + kx] = rb + co
            general(r1, p, tb, nt, gc, orl, acc, o1, oa, ob, q, c, zq, fl, fw64)


@njit(cache=True, nogil=True)
def _dw_rows_unused(r1, p, tb, gc, n, acc, o1, oa, ob, q, c, zq, fl, fw64):  # pragma: no cover - jitted
    """Stands for the shared-row kernels in `_dw_conv_ring_any` (never called there)."""
    return


@njit(cache=True, nogil=True)
def _dw_conv_ring3(x, out, p, q, g):  # pragma: no cover - jitted
    """`_dw_ring_body` for 3x3 filters."""
    _dw_ring_body(x, out, p, q, g, True, _dw_rows3s1, _dw_rows3s2, _dw_rows9)


@njit(cache=True, nogil=True)
def _dw_conv_ring5(x, out, p, q, g):  # pragma: no cover - jitted
    """`_dw_ring_body` for 5x5 filters."""
    _dw_ring_body(x, out, p, q, g, True, _dw_rows5s1, _dw_rows5s2, _dw_rows25)


@njit(cache=True, nogil=True)
def _dw_conv_ring_any(x, out, p, q, g):  # pragma: no cover - jitted
    """`_dw_ring_body` for other filter sizes (the generic tap loop)."""
    _dw_ring_body(x, out, p, q, g, False, _dw_rows_unused, _dw_rows_unused, _dw_rows_any)


def _dw_conv_ring(x, out, p, q, g) -> None:
    """The ring depthwise kernel for the filter size in g (see `_dw_ring_body`)."""
    _dw_ring_driver(g)(x, out, p, q, g)


def _dw_ring_driver(g):
    kh, kw = int(g[6]), int(g[7])
    if kh == kw == 3:
        return _dw_conv_ring3
    if kh == kw == 5:
        return _dw_conv_ring5
    return _dw_conv_ring_any


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


# ---------------------------------------------------------------------------------------------
# Runner


@runner("depthwise_conv2d_i8")
def run_depthwise_conv2d_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    shp = params["out_shape"]
    n = x.shape[0]
    out = np.empty((n, shp[1], shp[2], shp[3]), np.int8)
    if "dwp" in params:  # exact float32 accumulation, fused padding and requantization
        _dw_conv_ring(x, out, params["dwp"], params["dwq"], params["dwg"])
    else:
        _dw_conv_i8(x, params["w"], params["bias"], params["m"], params["left"],
                    params["right"], params["zp_in"], params["zp_out"], params["lo"],
                    params["hi"], out, params["geom"])
    return [out]


def _dw_bind(params):
    """Plan-load binding of `run_depthwise_conv2d_i8` (see `PlanRunner`): the ring kernel's
    five arguments (input, output and the three packed parameter arrays) prepared once."""
    if "dwp" not in params:
        return run_depthwise_conv2d_i8
    shp = params["out_shape"]
    s1, s2, s3 = int(shp[1]), int(shp[2]), int(shp[3])
    p, q, g = params["dwp"], params["dwq"], params["dwg"]
    kernel = _dw_ring_driver(g)
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            return run_depthwise_conv2d_i8(inputs, params)
        out = empty((x.shape[0], s1, s2, s3), i8)
        kernel(x, out, p, q, g)
        return [out]

    return run


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
    wk = np.ascontiguousarray(filt.reshape(kh, kw, oc), dtype=np.int32)
    ring = _dw_ring_params(wk, bias, m, shift, params) if mult == 1 else None
    params.update(_conv_rq_params(bias, m, shift, row_tile=1))
    if ring is not None:
        params.update(ring)
    else:
        params["w"] = wk
    return "depthwise_conv2d_i8", params, [0]


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
    """The packed arguments of `_dw_conv_ring` (dwp, dwq, dwg), or None when float32
    accumulation would not be exact: it is when max_c Σ_k |w[k, c]| · max|x − zp_in| < 2^24
    (every product and partial sum is then an integer float32 represents exactly).
    wk int32 [KH, KW, C]; params: geom, out_shape, zp_in, zp_out, lo, hi of the step.
    The weights and the requantization rows are tiled G times (G·C >= 128 floats, G <= OW)
    so the vector loops run over gc = G·C contiguous floats of a row."""
    kh, kw, c = wk.shape
    zp_in = int(params["zp_in"])
    xmax = max(127 - zp_in, zp_in + 128)
    if int(np.abs(wk).sum(axis=(0, 1)).max(initial=0)) * xmax >= (1 << 24):
        return None
    ow = int(params["out_shape"][2])
    t = fast_requant_tables(m, shift, bias)
    rows = np.concatenate([wk.reshape(kh * kw, c).astype(np.float32),
                           np.stack(_dw_rq_rows(t, params)).astype(np.float32)])
    g = max(1, min(ow, -(-128 // c)))
    geom = params["geom"]
    return {
        "dwp": np.ascontiguousarray(np.tile(rows, (1, g)).reshape(-1)),
        "dwq": np.concatenate([t["bias"], t["m"], t["left"], t["right"]]).astype(np.int64),
        "dwg": np.array([*geom[:6], kh, kw, zp_in, params["zp_out"], params["lo"], params["hi"],
                         g * c], np.int64),
    }
