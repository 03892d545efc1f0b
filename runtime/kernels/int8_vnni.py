"""Exact int8 GEMM on AVX-512 VNNI (`vpdpbusd`: 64 u8 × s8 products summed by fours into 16
int32 lanes), used by `int8_conv` for CONV_2D (groups == 1) when the CPU has it.

acc[r, c] = Σ_k (x[r, k] − zp_in)·w[k, c] for int8 x, w. vpdpbusd multiplies unsigned by
signed bytes, so the kernel feeds u = x + 128 (= x XOR 0x80, as u8) and starts every
accumulator from corr[c] = −(128 + zp_in)·Σ_k w[k, c]:
Σ (x − zp_in)·w = Σ (x + 128)·w − (128 + zp_in)·Σ w. The int32 arithmetic wraps, so the
result is exact whenever the true value fits in int32 (always, for any K below 2^16). A
padded tap (x = zp_in) is u = zp_in + 128 and contributes nothing after the correction.

Weights are packed at compile time as int32 [OB, K4, 16]: for each block of 16 output
channels (zero-padded), each group of 4 consecutive k is one int32 lane (4 s8 bytes, k
padded to a multiple of 4 with zeros). Activations are u8 rows padded to K4·4 bytes.

The micro-kernel (`_vnni_tile`, a Numba intrinsic emitting LLVM IR) keeps MR rows × NB
blocks of accumulators in registers (phi nodes) over the K4 loop and stores them as float32
(exact below 2^24, for `requant_fast2_i8`) or int32. `_vnni_gemm` walks the tiles.

`_vnni_tile_rq` / `vnni_conv_rq_kernel` (CONV_2D) instead requantize the accumulators while
they are still in registers: TFLite's exact double-rounding MultiplyByQuantizedMultiplier per channel
(vpmuldq 64-bit products, see `_vnni_emit_requant`), + zero point, clamp, int8 stores; the
bias is folded into the correction vector and the per-channel constants into a table
(`vnni_rq_pack`). This removes the separate requantization pass (~0.3–0.6 ns per output).
The epilogue variant is chosen when a plan is bound (`vnni_rq_epilogue`) and is a
compile-time constant of the kernel that runs it: each whole-convolution kernel
(`vnni_conv_rq_kernel`, pointwise or windowed, any row count) holds one epilogue's tiles,
compiled once (compile time is what a cold start pays).

Only numpy, numba and llvmlite (numba's own dependency) are used: the `--emit=numba`
artifact inlines this module.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _vnni_ir
from numba import types
from numba.extending import intrinsic

from ..fixedpoint import njit
from .simd import (
    HAS_VNNI,
    simd_as64,
    simd_call,
    simd_cases,
    simd_copy,
    simd_dot_loop,
    simd_empty,
    simd_fn,
    simd_literal,
    simd_max,
    simd_min,
)

VNNI_OK = HAS_VNNI  # the host runs vpdpbusd and Numba compiles for the host (simd.py)

_VNNI_MR = 4  # rows per micro-tile
_VNNI_NB = 4  # 16-channel blocks per micro-tile


class _VnniDot:
    """`simd_dot_loop`'s step for bytes: 16 int32 lanes, weights <16 x i32> (64 bytes a
    step, 4 s8 per lane), acc = vpdpbusd(acc, 4 u8 of the row, weights)."""

    lanes = 16
    wbytes = 64
    wtype = _vnni_ir.VectorType(_vnni_ir.IntType(32), 16)

    def __call__(self, builder, acc, row, w):
        fn = simd_fn(builder.module, "llvm.x86.avx512.vpdpbusd.512", self.wtype,
                     [self.wtype] * 3)
        return builder.call(fn, [acc, row, w])


def _vnni_emit_gemm(builder, MR, NB, a0, ast, w0, wbs, kk, c0):
    """The K4 loop of an MR × NB tile, accumulators starting at the correction vectors at c0
    (64 bytes a block); returns the final accumulators [MR][NB] (<16 x i32>)."""
    ir = _vnni_ir
    v16 = ir.VectorType(ir.IntType(32), 16)
    c_p = builder.inttoptr(c0, ir.IntType(8).as_pointer())
    init = [builder.load(builder.bitcast(builder.gep(c_p, [ir.Constant(ir.IntType(64), 64 * j)]),
                                         v16.as_pointer()), align=4) for j in range(NB)]
    return simd_dot_loop(builder, MR, NB, a0, ast, w0, wbs, kk, init, _VnniDot())


_VNNI_SHAPES = tuple((mr, nb) for mr in (4, 1) for nb in (4, 3, 2, 1))
"""(rows, 16-channel blocks) of the VNNI tiles: full tiles and the edges."""


@intrinsic
def _vnni_tile(typingctx, a_addr, a_stride, w_addr, w_bstride, k4, corr_addr, o_addr, o_stride,
               nlast, mr, nb, f32):
    """mr rows × nb blocks: out[r, j·16 + l] = corr[j·16 + l] + Σ_{i<k4} dpbusd(a[r, i],
    w[j, i]) (byte addresses/strides; the last block stores only its first `nlast` lanes), as
    float32 (f32 true) or int32. One compiled function holds every shape of `_VNNI_SHAPES`
    for both output types; the run-time (mr, nb, f32) selects one."""
    sig = types.void(a_addr, a_stride, w_addr, w_bstride, k4, corr_addr, o_addr, o_stride,
                     nlast, mr, nb, f32)

    def codegen(context, builder, signature, args):
        a0, ast, w0, wbs, kk, c0, o0, ost, nl, m, n, f = [simd_as64(builder, v) for v in args]
        i64 = _vnni_ir.IntType(64)
        key = builder.add(builder.mul(builder.add(builder.mul(f, _vnni_ir.Constant(i64, 16)),
                                                  m), _vnni_ir.Constant(i64, 16)), n)

        def case(MR, NB, F32):
            return ((F32 * 16 + MR) * 16 + NB,
                    lambda b: _vnni_emit_tile_store(b, MR, NB, F32, a0, ast, w0, wbs, kk, c0,
                                                    o0, ost, nl))

        simd_cases(builder, key, [case(MR, NB, F32) for MR, NB in _VNNI_SHAPES
                                  for F32 in (True, False)])
        return context.get_dummy_value()

    return sig, codegen


def _vnni_emit_tile_store(builder, MR, NB, F32, a0, ast, w0, wbs, kk, c0, o0, ost, nl):
    """One `_vnni_tile` shape: the K4 loop, then the accumulators stored (the last block
    masked to its first `nl` lanes)."""
    ir = _vnni_ir
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    v16 = ir.VectorType(i32, 16)
    vf = ir.VectorType(ir.FloatType(), 16)
    mod = builder.module
    o_p = builder.inttoptr(o0, i8.as_pointer())
    new = _vnni_emit_gemm(builder, MR, NB, a0, ast, w0, wbs, kk, c0)
    zero16 = ir.Constant(v16, None)
    # masked store of the last block: lanes < nlast
    lanes = ir.Constant(v16, list(range(16)))
    nls = builder.insert_element(ir.Constant(v16, ir.Undefined), builder.trunc(nl, i32),
                                 ir.Constant(i32, 0))
    nls = builder.shuffle_vector(nls, ir.Constant(v16, ir.Undefined), zero16)
    mask = builder.icmp_signed("<", lanes, nls)
    ety = vf if F32 else v16
    mst = mod.globals.get(f"llvm.masked.store.v16{'f32' if F32 else 'i32'}.p0")
    if mst is None:
        mst = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ety, ety.as_pointer(), i32,
                                                               ir.VectorType(ir.IntType(1), 16)]),
                          f"llvm.masked.store.v16{'f32' if F32 else 'i32'}.p0")
    for r in range(MR):
        orow = builder.gep(o_p, [builder.mul(ost, ir.Constant(i64, r))])
        for j in range(NB):
            val = new[r][j]
            if F32:
                val = builder.sitofp(val, vf)
            p = builder.bitcast(builder.gep(orow, [ir.Constant(i64, 64 * j)]), ety.as_pointer())
            if j < NB - 1:
                builder.store(val, p, align=4)
            else:
                builder.call(mst, [val, p, ir.Constant(i32, 4), mask])


@njit(cache=True, nogil=True)
def _vnni_tiles(a, w, corr, o, out, f32):  # pragma: no cover - jitted
    """out[r, :o] = GEMM of u8 rows a [R, K4·4] by packed weights w int32 [OB, K4, 16] plus
    corr int32 [OB·16]; out float32 (f32) or int32 [R, o], C-contiguous."""
    rows = a.shape[0]
    ob, k4 = w.shape[0], w.shape[1]
    a0 = np.int64(a.ctypes.data)
    w0 = np.int64(w.ctypes.data)
    c0 = np.int64(corr.ctypes.data)
    o0 = np.int64(out.ctypes.data)
    ast = np.int64(a.shape[1])
    ost = np.int64(out.shape[1] * 4)
    wbs = np.int64(k4 * 64)
    last = o - (ob - 1) * 16
    for jb in range(0, ob, 4):
        nb = simd_min(4, ob - jb)
        nl = last if jb + nb == ob else 16
        r = 0
        while r < rows:
            mr = 4 if r + 4 <= rows else 1
            _vnni_tile(a0 + r * ast, ast, w0 + jb * wbs, wbs, k4, c0 + jb * 64,
                       o0 + jb * 64 + r * ost, ost, nl, mr, nb, f32)
            r += mr


_VNNI_RQ_ROWS = 12  # 64-byte rows of per-channel requantization table per 16-channel block
_VNNI_RQ_BLOCK = _VNNI_RQ_ROWS * 64
_VNNI_RQ_MAX_RIGHT = 31  # the fused epilogue's 64-bit sums hold for right shifts <= 31
# the float epilogue's error bound E (`_vnni_emit_requant_f`): outputs whose estimate lies
# within E of a rounding boundary are recomputed exactly
_VNNI_F_ERR = 2.0 ** -13


def _vnni_emit_requant(builder, acc, rq_p, j, lov, hiv, shl):
    """Exact TFLite MultiplyByQuantizedMultiplier of 16 int32 lanes (bias already in acc),
    + zp, clamp: <16 x i8>. With x = acc << left (int32, wraps like C), m >= 0, r = right:

      SRDHM(x, m)  s = floor((x·m + 2^30) / 2^31)   (no saturation with m >= 0; gemmlowp's
                                                     nudge + truncating division is this floor)
      RDBPOT(s, r) t = floor((s + h − n) / 2^r),  h = 2^(r−1) (0 if r = 0), n = [s < 0]·[r > 0]
    and floor((floor(a / 2^31) + c) / 2^r) = floor((a + c·2^31) / 2^(31+r)), so
      t = (x·m + K − n·2^31) >> (31 + r),   K = 2^30 + h·2^31
    in int64 (|x·m| < 2^62, 0 < K <= 2^30 + 2^61 for r <= 31: no overflow), where
    n = [x < 0]·[r > 0] (x < 0 with s = 0 gives t = 0 either way); then t + zp. Even and odd int32 lanes go through vpmuldq separately;
    each half saturates to int8 (vpmovsqb), the bytes interleave back into channel order,
    then the activation clamp [lo, hi] (within int8, so after the saturation).

    Per-channel table at rq_p + 768·j (`vnni_rq_pack`), twelve 64-byte rows: left (16 int32),
    m (16 int32), then 8 int64 lanes each for even / odd channels: m_odd, K_even, K_odd,
    N_even, N_odd (N = 2^31·[r > 0]), S_even, S_odd (S = 31 + r), zp (8 int64), then the
    float32 rows of `_vnni_emit_requant_f`: eff (16), eps (16)."""
    ir = _vnni_ir
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    v16 = ir.VectorType(i32, 16)
    v8q = ir.VectorType(i64, 8)
    v16b = ir.VectorType(i8, 16)

    def ld(row, ty=v8q):
        p = builder.bitcast(builder.gep(rq_p, [ir.Constant(i64, _VNNI_RQ_BLOCK * j + 64 * row)]),
                            ty.as_pointer())
        return builder.load(p, align=4)

    c32 = ir.Constant(v8q, [32] * 8)
    # vpmovsqb (saturate to int8) as the intrinsic: with a generic clamp + trunc LLVM
    # hoists the interleave below above the saturation (two vpermt2q per block)
    pmovs = simd_fn(builder.module, "llvm.x86.avx512.mask.pmovs.qb.512", v16b, [v8q, v16b, i8])

    def sext_lo(q):  # sign-extended low dwords: vpmuldq reads only those, so this folds
        return builder.ashr(builder.shl(q, c32), c32)

    x = builder.shl(acc, ld(0, v16)) if shl else acc
    xq = builder.bitcast(x, v8q)
    xo = builder.lshr(xq, c32)
    halves = []
    for xh, mh, k, n, sh in ((xq, builder.bitcast(ld(1, v16), v8q), 3, 5, 7),
                             (xo, ld(2), 4, 6, 8)):
        prod = builder.mul(sext_lo(xh), sext_lo(mh))  # vpmuldq
        q = builder.sub(builder.add(prod, ld(k)), builder.and_(xh, ld(n)))
        t = builder.add(builder.ashr(q, ld(sh)), ld(9))
        halves.append(builder.call(pmovs, [t, ir.Constant(v16b, None), ir.Constant(i8, -1)]))
    b = builder.shuffle_vector(halves[0], halves[1],
                               ir.Constant(v16, [i // 2 + 16 * (i % 2) for i in range(16)]))
    b = builder.select(builder.icmp_signed("<", b, lov), lov, b)
    return builder.select(builder.icmp_signed(">", b, hiv), hiv, b)


def _vnni_emit_requant_f(builder, acc, eff, eps, lof, hif, zpf, clamp=True):
    """Float estimate of `_vnni_emit_requant` for 16 int32 lanes a (bias included) of channels
    without a left shift: (<16 x i8> result, <16 x float> d) with

      y = fma(float(a), eff, ±eps)   (eps with the sign of a)
      v = min(max(y, lo − zp), hi − zp) + zp,   out = rint(v),   d = v − rint(v)
    (float32; eff = float32(m·2^−(31+r)), eps = 2^−(r+1) for r >= 1, 0 for r = 0). The
    result is exact unless |d| >= 1/2 − E (E = `_VNNI_F_ERR`), which the caller checks.

    Why: the exact z = a·m·2^−(31+r) gives |MBQM| = floor(|z| + 1/2 + eps) with the sign
    of z, except at its ties (|z| + 1/2 + eps an integer) (`fast_mbqm_params`). So MBQM =
    round(z + sign(z)·eps) away from the ties, and the output is clamp(round(w), lo, hi) with
    w = z + sign(z)·eps + zp (the clamp bounds are integers). With u = 2^−24, the float
    steps give |y − (z ± eps)| <= |z|·((1 + u)^3 − 1) + u·|y| (conversion of a, rounding of
    eff, the fma) and the + zp adds <= 128u; when v is not clamped |y| <= 256 and |z| <= 257,
    so |v − w| <= 3.01u·257 + 256u + 128u < 1160u < E = 2048u. Then |d| < 1/2 − E puts w
    strictly inside the same unit interval around rint(v) (not a tie): rint(v) = round(w).
    When v is clamped (y beyond hi − zp, say), w > hi − E (|y| large only makes w
    larger), so round(w) >= hi as well; likewise at lo. If sign(y) != sign(z) then
    |z|, |y| <= E and both results are 0 (eps <= 1/4). float(a) cannot overflow the
    conversion back: v is within [lo, hi].

    clamp=False (lo = −128, hi = 127 and every float32(eff) <= 1/2): v = y + zp unclamped,
    out = sat8(rint(v)) (vpmovsdb). |v| <= 2^30 + 129 converts without overflow; for
    |v| <= 129 the bound above holds, and beyond it w is on the same side of ±127.5 (the
    relative error is below 4u), so both saturate alike."""
    ir = _vnni_ir
    i8, i16, i32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
    f32 = ir.FloatType()
    vf = ir.VectorType(f32, 16)
    v16 = ir.VectorType(i32, 16)
    mod = builder.module
    fma = simd_fn(mod, "llvm.fma.v16f32", vf, [vf, vf, vf])
    cps = simd_fn(mod, "llvm.copysign.v16f32", vf, [vf, vf])
    red = simd_fn(mod, "llvm.x86.avx512.mask.reduce.ps.512", vf, [vf, i32, vf, i16, i32])
    cvt = simd_fn(mod, "llvm.x86.avx512.mask.cvtps2dq.512", v16, [vf, v16, i16, i32])
    af = builder.sitofp(acc, vf)
    y = builder.call(fma, [af, eff, builder.call(cps, [eps, af])])
    if clamp:
        y = builder.select(builder.fcmp_ordered("<", y, lof), lof, y)
        y = builder.select(builder.fcmp_ordered(">", y, hif), hif, y)
    v = builder.fadd(y, zpf)
    # vreduceps imm 8: v − roundeven(v) (exact); vcvtps2dq {rn-sae}: roundeven(v)
    d = builder.call(red, [v, ir.Constant(i32, 8), ir.Constant(vf, None), ir.Constant(i16, -1),
                           ir.Constant(i32, 4)])
    q = builder.call(cvt, [v, ir.Constant(v16, None), ir.Constant(i16, -1), ir.Constant(i32, 8)])
    if clamp:
        return builder.trunc(q, ir.VectorType(i8, 16)), d
    vb = ir.VectorType(i8, 16)
    pmovs = simd_fn(mod, "llvm.x86.avx512.mask.pmovs.db.512", vb, [v16, vb, i16])
    return builder.call(pmovs, [q, ir.Constant(vb, None), ir.Constant(i16, -1)]), d


@intrinsic(prefer_literal=True)
def _vnni_tile_rq(typingctx, a_addr, a_stride, w_addr, w_bstride, k4, corr_addr, rq_addr,
                  o_addr, o_stride, nlast, lo, hi, zp, mr, nb, ep):
    """`_vnni_tile` with the requantization fused into the epilogue: int8 out[r, j·16 + l] =
    clamp(MBQM(acc, m, shift) + zp, lo, hi) per channel (corr already holds the bias), the
    last block storing only its first `nlast` bytes. ep, the epilogue (`vnni_rq_epilogue`):
    0 exact (`_vnni_emit_requant`, no left shifts), 1 exact with left shifts, 2 (no left
    shifts) the float estimate (`_vnni_emit_requant_f`) per row of NB blocks, that row
    recomputed by the exact epilogue when any of its |d| >= 1/2 − E; 3 as 2 without the
    float clamp (lo = −128, hi = 127, every float32 eff <= 1/2; single rows take 2 for it).
    The cases of `_VNNI_SHAPES` x epilogues are selected at run time, except that a
    compile-time constant mr, nb or ep (`simd_literal`) keeps only the cases it selects: the
    callers pass ep as one, so a kernel compiles only its own epilogue."""
    sig = types.void(a_addr, a_stride, w_addr, w_bstride, k4, corr_addr, rq_addr, o_addr,
                     o_stride, nlast, lo, hi, zp, mr, nb, ep)
    fixed = [simd_literal(t) for t in (mr, nb, ep)]

    def codegen(context, builder, signature, args):
        vals = [simd_as64(builder, v) for v in args]
        m, n, e = vals[13:]
        i64 = _vnni_ir.IntType(64)
        key = builder.add(builder.mul(builder.add(builder.mul(e, _vnni_ir.Constant(i64, 16)),
                                                  m), _vnni_ir.Constant(i64, 16)), n)

        def case(MR, NB, EP):
            emitted = 2 if (MR == 1 and EP == 3) else EP  # single rows: clamped float
            return ((EP * 16 + MR) * 16 + NB,
                    lambda b: _vnni_emit_rq_tile(b, MR, NB, emitted, vals[:13]))

        simd_cases(builder, key, [case(MR, NB, EP) for MR, NB in _VNNI_SHAPES
                                  for EP in (0, 1, 2, 3)
                                  if all(f is None or f == v
                                         for f, v in zip(fixed, (MR, NB, EP)))])
        return context.get_dummy_value()

    return sig, codegen


def _vnni_emit_rq_tile(builder, MR, NB, EP, vals):
    """One `_vnni_tile_rq` tile shape and epilogue; vals: its first 13 arguments as i64."""
    ir = _vnni_ir
    i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
    v16 = ir.VectorType(i32, 16)
    vb = ir.VectorType(i8, 16)
    f32 = ir.FloatType()
    vf = ir.VectorType(f32, 16)
    mod = builder.module
    a0, ast, w0, wbs, kk, c0, q0, o0, ost, nl, lo0, hi0, zp0 = vals
    o_p = builder.inttoptr(o0, i8.as_pointer())
    q_p = builder.inttoptr(q0, i8.as_pointer())
    zero16 = ir.Constant(v16, None)

    def splat(v, ty=v16):
        e = builder.insert_element(ir.Constant(ty, ir.Undefined), v, ir.Constant(i32, 0))
        return builder.shuffle_vector(e, ir.Constant(ty, ir.Undefined), zero16)

    new = _vnni_emit_gemm(builder, MR, NB, a0, ast, w0, wbs, kk, c0)
    lov, hiv = splat(builder.trunc(lo0, i8), vb), splat(builder.trunc(hi0, i8), vb)
    if EP >= 2:
        def ldf(j, row):  # loaded once per tile, before any store
            p = builder.gep(q_p, [ir.Constant(i64, _VNNI_RQ_BLOCK * j + 64 * row)])
            return builder.load(builder.bitcast(p, vf.as_pointer()), align=4)

        effs = [ldf(j, 10) for j in range(NB)]
        epss = [ldf(j, 11) for j in range(NB)]
        lof = splat(builder.sitofp(builder.sub(lo0, zp0), f32), vf)
        hif = splat(builder.sitofp(builder.sub(hi0, zp0), f32), vf)
        zpf = splat(builder.sitofp(zp0, f32), vf)
        thr = ir.Constant(vf, [0.5 - _VNNI_F_ERR] * 16)
        # vrangeps imm 0b1011: the operand of larger magnitude, sign cleared
        rng = simd_fn(mod, "llvm.x86.avx512.mask.range.ps.512", vf,
                       [vf, vf, i32, vf, i16, i32])

        def amax(p, q):
            return builder.call(rng, [p, q, ir.Constant(i32, 11), ir.Constant(vf, None),
                                      ir.Constant(i16, -1), ir.Constant(i32, 4)])
    mask = builder.icmp_signed("<", ir.Constant(v16, list(range(16))),
                               splat(builder.trunc(nl, i32)))
    mst = simd_fn(mod, "llvm.masked.store.v16i8.p0", ir.VoidType(),
                   [vb, vb.as_pointer(), i32, ir.VectorType(ir.IntType(1), 16)])
    lasts = []
    for r in range(MR):
        orow = builder.gep(o_p, [builder.mul(ost, ir.Constant(i64, r))])
        if EP >= 2:
            fast, ds = [], []
            for j in range(NB):
                val, d = _vnni_emit_requant_f(builder, new[r][j], effs[j], epss[j], lof,
                                              hif, zpf, EP == 2)
                fast.append(val)
                ds.append(d)
            mx = amax(ds[0], ds[-1])
            for d in ds[1:-1]:
                mx = amax(mx, d)
            near = builder.bitcast(builder.fcmp_ordered(">=", mx, thr), i16)
            pre = builder.block
            with builder.if_then(builder.icmp_unsigned("!=", near, ir.Constant(i16, 0)),
                                 likely=False):
                exact = [_vnni_emit_requant(builder, new[r][j], q_p, j, lov, hiv, False)
                         for j in range(NB)]
                exb = builder.block
            vals = []
            for j in range(NB):
                ph = builder.phi(vb)
                ph.add_incoming(fast[j], pre)
                ph.add_incoming(exact[j], exb)
                vals.append(ph)
        else:
            vals = [_vnni_emit_requant(builder, new[r][j], q_p, j, lov, hiv, EP == 1)
                    for j in range(NB)]
        for j in range(NB):
            p = builder.bitcast(builder.gep(orow, [ir.Constant(i64, 16 * j)]), vb.as_pointer())
            if j < NB - 1:
                builder.store(vals[j], p, align=1)
            else:
                lasts.append((vals[j], p))
    # the last block: a plain store when it is full (masked byte stores are slow on Zen 4)
    with builder.if_else(builder.icmp_signed("==", nl, ir.Constant(i64, 16))) as (full, part):
        with full:
            for val, p in lasts:
                builder.store(val, p, align=1)
        with part:
            for val, p in lasts:
                builder.call(mst, [val, p, ir.Constant(i32, 1), mask])


@njit(nogil=True, inline="always")
def _vnni_tiles_rq(a0, rows, ast, w, corrb, rq, o, lo, hi, o0, ost, ep):  # pragma: no cover - jitted
    """int8 out[r, :o] = clamp(MBQM(GEMM + bias, m, shift) + zp, lo, hi): `rows` u8 rows at
    address a0 (ast bytes apart, K4·4 each), packed weights w int32 [OB, K4, 16], corrb =
    corr + bias int32 [OB·16], rq int32 [OB, 12, 16] (`vnni_rq_pack`); out rows at address
    o0, ost bytes apart, unit channel stride. ep: the epilogue (`vnni_rq_epilogue`), a
    compile-time constant of the caller (inlined into it: the tiles are compiled once, in
    the kernel that runs them). Addresses, not array views: a caller's slices cost compile
    time."""
    zp = np.int64(rq[0, 9, 0])  # the low dword of the int64 zero point
    ob, k4 = w.shape[0], w.shape[1]
    w0 = np.int64(w.ctypes.data)
    c0 = np.int64(corrb.ctypes.data)
    q0 = np.int64(rq.ctypes.data)
    wbs = np.int64(k4 * 64)
    last = o - (ob - 1) * 16
    rfull = rows - rows % 4
    lo = np.int64(lo)
    hi = np.int64(hi)
    for jb in range(0, ob, 4):
        nb = simd_min(4, ob - jb)
        nl = last if jb + nb == ob else 16
        wj = w0 + jb * wbs
        cj = c0 + jb * 64
        qj = q0 + jb * _VNNI_RQ_BLOCK
        oj = o0 + jb * 16
        for r in range(0, rfull, 4):
            _vnni_tile_rq(a0 + r * ast, ast, wj, wbs, k4, cj, qj, oj + r * ost, ost, nl, lo,
                          hi, zp, 4, nb, ep)
        for r in range(rfull, rows):
            _vnni_tile_rq(a0 + r * ast, ast, wj, wbs, k4, cj, qj, oj + r * ost, ost, nl, lo,
                          hi, zp, 1, nb, ep)


def vnni_rq_epilogue(rq: np.ndarray, lo: int, hi: int, exact: bool = False) -> int:
    """Bind time: the fused epilogue for tables rq (`vnni_rq_pack`) and clamp [lo, hi]
    (`_vnni_tile_rq`): 1 with left shifts, else 0 if `exact` (tests: the float epilogue's
    fix-up path), else 3 when unclamped (lo = −128, hi = 127) and every float32 eff <= 1/2
    (positive float bits order like the floats), else 2."""
    if (rq[:, 0] != 0).any():
        return 1
    if exact:
        return 0
    if int(lo) == -128 and int(hi) == 127 and not (rq[:, 10] > 0x3F000000).any():
        return 3
    return 2


def vnni_rq_pack(corr: np.ndarray, bias, m, shift, zp_out: int):
    """Compile time: the fused-requantization tables, (corrb int32 [OB·16] = corr + bias
    mod 2^32, rq int32 [OB, 12, 16], see `_vnni_emit_requant` / `_vnni_emit_requant_f`), or
    None when the fused epilogue cannot serve the channels (negative multiplier, left shift
    > 31, right shift > 31: keep the unfused path)."""
    ob16 = corr.size
    m = np.asarray(m, np.int64).reshape(-1)
    c = m.size
    sh = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), m.shape)
    b = np.broadcast_to(np.asarray(bias, np.int64).reshape(-1), m.shape)
    if (m < 0).any() or (sh > 31).any() or (-sh > _VNNI_RQ_MAX_RIGHT).any():
        return None
    cb = corr.astype(np.int64)
    cb[:c] += b
    corrb = ((cb + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
    left = np.zeros(ob16, np.int64)
    mm = np.zeros(ob16, np.int64)
    right = np.zeros(ob16, np.int64)
    left[:c] = np.maximum(sh, 0)
    mm[:c] = m
    right[:c] = np.maximum(-sh, 0)
    h = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    k = (1 << 30) + h * (1 << 31)
    n = np.where(right > 0, 1 << 31, 0)
    s = 31 + right
    ob = ob16 // 16
    rq = np.zeros((ob, _VNNI_RQ_ROWS, 16), np.int32)
    rq[:, 0] = left.reshape(ob, 16)
    rq[:, 1] = mm.reshape(ob, 16)
    q64 = rq.view(np.int64)  # [OB, 12, 8]
    for row, v in ((2, mm), (3, k), (4, k), (5, n), (6, n), (7, s), (8, s)):
        q64[:, row] = v.reshape(ob, 8, 2)[:, :, (row - 1) % 2]  # even: 0, odd: 1
    q64[:, 9] = int(zp_out)
    # the float epilogue (channels without left shifts): eff = m·2^−(31+r), eps = 2^−(r+1)
    eff = (mm.astype(np.float64) * np.exp2(-(31.0 + right))).astype(np.float32)
    eps = np.where(right > 0, np.exp2(-(right + 1.0)), 0.0).astype(np.float32)
    rq[:, 10] = eff.view(np.int32).reshape(ob, 16)
    rq[:, 11] = eps.view(np.int32).reshape(ob, 16)
    return corrb, rq


def _vnni_make_gemm_rq(ep: int):
    """`_vnni_tiles_rq` compiled on its own for epilogue ep (a closure constant)."""

    @njit(cache=True, nogil=True)
    def gemm_rq(a, w, corrb, rq, o, lo, hi, out):  # pragma: no cover - jitted
        _vnni_tiles_rq(np.int64(a.ctypes.data), a.shape[0], np.int64(a.strides[0]), w, corrb,
                       rq, o, lo, hi, np.int64(out.ctypes.data), np.int64(out.strides[0]), ep)

    return gemm_rq


_VNNI_GEMM_RQ = tuple(_vnni_make_gemm_rq(ep) for ep in range(4))


def vnni_gemm_rq(a_u8: np.ndarray, packed: np.ndarray, corrb: np.ndarray, rq: np.ndarray,
                 o: int, lo: int, hi: int, out: np.ndarray, exact: bool = False) -> None:
    """int8 out [R, o] = clamp(MBQM(Σ_k (x − zp_in)·w + bias, m, shift) + zp, lo, hi);
    `exact` forces the integer epilogue (the float one's fix-up path, for tests). Convolution
    steps run `vnni_conv_rq_kernel` instead, which also makes the u8 rows."""
    _VNNI_GEMM_RQ[vnni_rq_epilogue(rq, lo, hi, exact)](a_u8, packed, corrb, rq, o, lo, hi, out)


@njit(cache=True, nogil=True, inline="always")
def vnni_rows_u8(x, k, kp, o1, rows):  # pragma: no cover - jitted
    """out[r, :k] = u8(x[r·k : (r+1)·k] + 128), out[r, k:kp] = 0. x: 1-D int8 of R·k values;
    o1: the flat uint8 out [rows, kp] (a view or a reshape here compiles for ~0.1-0.3 s).
    Without padding (kp == k) one flat loop (vectorized)."""
    if kp == k:
        for i in range(rows * k):
            o1[i] = np.uint8(np.int32(x[i]) + 128)
        return
    for r in range(rows):
        s = np.uint64(r * k)
        d = np.uint64(r * kp)
        for j in range(k):
            o1[d + np.uint64(j)] = np.uint8(np.int32(x[s + np.uint64(j)]) + 128)
        for j in range(k, kp):
            o1[d + np.uint64(j)] = 0


def _vnni_make_conv_rq(ep: int):
    """The whole-convolution kernel (`vnni_conv_rq_kernel`) for epilogue ep."""

    @njit(cache=True, nogil=True)
    def conv_rq(x, out, zp_in, pad, geom, tile, w, corrb, rq, o, lo, hi, pointwise, leaves):  # pragma: no cover - jitted
        n, h, wd, c = x.shape
        rows = out.size // o
        kp = w.shape[1] * 4
        # 32 bytes of slack after xp and cols: the narrow leaf's moves overrun
        xp = simd_empty(32 if pointwise else n * pad[2] * pad[3] * c + 32, np.uint8)
        if not pointwise:
            simd_call(leaves[0], (x, n, h, wd, c, zp_in, pad[0], pad[1], xp, pad[2], pad[3]))
        tile = simd_max(1, simd_min(tile, rows))
        cols = simd_empty(tile * kp + 32, np.uint8)
        x0 = np.int64(x.ctypes.data)
        c0 = np.int64(cols.ctypes.data)
        o0 = np.int64(out.ctypes.data)
        for r0 in range(0, rows, tile):
            nr = simd_min(rows, r0 + tile) - r0
            if pointwise:
                simd_call(leaves[2], (x0 + r0 * c, nr * c, c, kp, cols, nr))
            else:
                simd_call(leaves[1], (xp, n, pad[2], pad[3], c, cols, nr, kp, r0, r0 + nr, geom,
                                      geom.size))
            _vnni_tiles_rq(c0, nr, kp, w, corrb, rq, o, lo, hi, o0 + r0 * o, o, ep)

    return conv_rq


_VNNI_CONV_RQ = tuple(_vnni_make_conv_rq(ep) for ep in range(4))


def vnni_conv_rq_kernel(ep: int):
    """A whole convolution (groups 1) in one jitted call, requantized in the GEMM epilogue
    ep (`vnni_rq_epilogue`): kernel(x, out, zp_in, pad, geom, tile, w, corrb, rq, o, lo, hi,
    pointwise, leaves) maps int8 x [N, H, W, C] (C-contiguous) into int8 out [N, OH, OW, o]
    (C-contiguous, made by the caller; flat buffers and addresses inside, as
    `int8_conv._madd_make_conv`'s).
    A 1x1 stride-1 convolution (pointwise, output rows = input pixels) takes its u8 rows
    from x (`vnni_rows_u8`); any other is padded once as u8 (`vnni_pad_u8`; pad = pt, pl,
    Hp, Wp) and unrolled per tile of `tile` output rows (`vnni_im2col`, or
    `vnni_im2col_narrow` for narrow windows: xp and cols have 32 bytes of slack for it; geom
    as `int8_conv`'s). Those three run as leaves called by address (`simd.simd_call`; leaves
    int64 [pad, im2col, rows], `int8_conv.conv_leaves`), compiled once, not inside each
    kernel. w, corrb, rq from `vnni_pack` / `vnni_rq_pack`. One kernel per epilogue, so a
    model compiles only the epilogues its layers use, each once."""
    return _VNNI_CONV_RQ[ep]


def vnni_pack(w_kc: np.ndarray, zp_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Compile time: integer weights [K, C] -> (packed int32 [OB, K4, 16], corr int32 [OB·16])."""
    k, c = w_kc.shape
    k4 = -(-k // 4)
    ob = -(-c // 16)
    wp = np.zeros((k4 * 4, ob * 16), np.int8)
    wp[:k, :c] = w_kc
    # [K4, 4, OB, 16] -> [OB, K4, 16, 4]
    packed = wp.reshape(k4, 4, ob, 16).transpose(2, 0, 3, 1)
    packed = np.ascontiguousarray(packed).view(np.int32).reshape(ob, k4, 16)
    corr = np.zeros(ob * 16, np.int64)
    corr[:c] = -(128 + int(zp_in)) * w_kc.astype(np.int64).sum(axis=0)
    # the int32 lanes wrap: keep corr as its value mod 2^32
    corr32 = ((corr + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
    return packed, corr32


def vnni_gemm(a_u8: np.ndarray, packed: np.ndarray, corr: np.ndarray, o: int,
              out: np.ndarray) -> None:
    """out [R, o] (float32 or int32) = Σ_k (x − zp_in)·w for the u8 rows a_u8 [R, K4·4]."""
    _vnni_tiles(a_u8, packed, corr, o, out, out.dtype == np.float32)


@njit(cache=True, nogil=True, inline="always")
def vnni_pad_u8(x1, n, h, w, c, zp, pt, pl, p1, hp, wp):  # pragma: no cover - jitted
    """xp[b, pt + y, pl + x, c] = u8(x[b, y, x, c] + 128) for the part of x that fits in xp,
    u8(zp + 128) in the border (a padded tap is x = zp: it contributes nothing). x1, p1: the
    flat int8 input [n, h, w, c] and u8 padded copy [n, hp, wp, c] (a reshape or a view here
    compiles for ~0.1-0.3 s each)."""
    fill = np.uint8((zp + 128) & 0xFF)
    for i in range(p1.size):
        p1[i] = fill
    h2 = simd_min(h, hp - pt)
    w2 = simd_min(w, wp - pl)
    for b in range(n):
        for y in range(h2):
            src = np.uint64(((b * h + y) * w) * c)
            dst = np.uint64(((b * hp + pt + y) * wp + pl) * c)
            for j in range(w2 * c):
                p1[dst + np.uint64(j)] = np.uint8(np.int32(x1[src + np.uint64(j)]) + 128)


def _vnni_mover(nbytes: int):
    @intrinsic
    def move(typingctx, src_addr, dst_addr):
        sig = types.void(src_addr, dst_addr)

        def codegen(context, builder, signature, args):
            ir = _vnni_ir
            vb = ir.VectorType(ir.IntType(8), nbytes)
            src, dst = (builder.inttoptr(simd_as64(builder, v), vb.as_pointer()) for v in args)
            builder.store(builder.load(src, align=1), dst, align=1)
            return context.get_dummy_value()

        return sig, codegen

    move.__doc__ = f"""Copy {nbytes} bytes from address src_addr to dst_addr (int64): one
    unaligned vector load, then one store."""
    return move


_vnni_move16 = _vnni_mover(16)
_vnni_move32 = _vnni_mover(32)


@intrinsic
def _vnni_max16(typingctx, a_addr, b_addr, dst_addr):
    """dst[0:16] = max(a[0:16], b[0:16]) over signed bytes (addresses as int64; dst may
    be a or b)."""
    sig = types.void(a_addr, b_addr, dst_addr)

    def codegen(context, builder, signature, args):
        ir = _vnni_ir
        vb = ir.VectorType(ir.IntType(8), 16)
        a, b, dst = (builder.inttoptr(simd_as64(builder, v), vb.as_pointer()) for v in args)
        va = builder.load(a, align=1)
        vb_ = builder.load(b, align=1)
        builder.store(builder.select(builder.icmp_signed(">", va, vb_), va, vb_), dst, align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _vnni_clamp16(typingctx, addr, lo, hi):
    """x[0:16] = min(max(x[0:16], lo), hi) over signed bytes, in place (address as int64)."""
    sig = types.void(addr, lo, hi)

    def codegen(context, builder, signature, args):
        ir = _vnni_ir
        i8 = ir.IntType(8)
        vb = ir.VectorType(i8, 16)
        p = builder.inttoptr(simd_as64(builder, args[0]), vb.as_pointer())

        def splat(v):
            e = builder.insert_element(ir.Constant(vb, ir.Undefined), builder.trunc(v, i8),
                                       ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(e, ir.Constant(vb, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), 16), None))

        lov, hiv = splat(args[1]), splat(args[2])
        x = builder.load(p, align=1)
        x = builder.select(builder.icmp_signed("<", x, lov), lov, x)
        builder.store(builder.select(builder.icmp_signed(">", x, hiv), hiv, x), p, align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vnni_dw_interleave4(typingctx, src_addr, tap_bytes, dst_addr):
    """The depthwise u8 ring's 64 bytes for 16 channels of one output column: dst[4l + t] =
    src[t·tap_bytes + l] for lanes l < 16 and taps t < 4 (bytes), so that one `vpdpbusd`
    lane holds a channel's four horizontal taps."""
    sig = types.void(src_addr, tap_bytes, dst_addr)

    def codegen(context, builder, signature, args):
        ir = _vnni_ir
        i8, i16, i32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
        v16b = ir.VectorType(i8, 16)
        src, step, dst = (simd_as64(builder, v) for v in args)
        taps = []
        for t in range(4):
            a = builder.add(src, builder.mul(step, ir.Constant(ir.IntType(64), t)))
            taps.append(builder.load(builder.inttoptr(a, v16b.as_pointer()), align=1))
        pairs = ir.Constant(ir.VectorType(i32, 32), [k for l in range(16) for k in (l, 16 + l)])
        ab = builder.shuffle_vector(taps[0], taps[1], pairs)  # a0 b0 a1 b1 ...
        cd = builder.shuffle_vector(taps[2], taps[3], pairs)
        v16h = ir.VectorType(i16, 16)
        ab = builder.bitcast(ab, v16h)
        cd = builder.bitcast(cd, v16h)
        out = builder.shuffle_vector(ab, cd, pairs)  # (a0 b0) (c0 d0) (a1 b1) (c1 d1) ...
        p = builder.inttoptr(dst, ir.VectorType(i16, 32).as_pointer())
        builder.store(out, p, align=1)
        return context.get_dummy_value()

    return sig, codegen


VNNI_DW_SHAPES = tuple((kh, ng, rs) for kh, ng in ((3, 1), (5, 2), (7, 2)) for rs in (1, 2, kh)
                       if (kh, rs) != (3, 1))
"""The (filter rows, 4-tap groups, row step) cases of `vnni_dw_taps`: 3 rows and up to 4
columns, 5 or 7 rows and 5 to 8 columns (3x3, 5x5, 7x7 filters); two output rows sharing
ring rows at vertical stride 1 or 2 (rs < kh), or not (rs = kh). Each case costs ~30 ms of
compiling in every model: other filters run the float ring. Not 3 rows at stride 1 (row
step 1): there the float ring, compiled for the same AVX-512 host, is 5-23 % faster (every
such layer of the four shared models on a Sapphire Rapids: docs/benchmarks.md, "Twenty-sixth
round"); at stride 2 and for 5x5 filters the u8 ring is as fast or faster (to 0.84x)."""


def vnni_dw_key(kh: int, ng: int, rs: int) -> int:
    """`vnni_dw_taps`'s case key of (kh, ng, rs)."""
    return (kh * 4 + ng) * 16 + rs


@intrinsic(prefer_literal=True)
def vnni_dw_taps(typingctx, rows_addr, w_addr, w_stride, g_bytes, corr_addr, n16, acc_a, acc_b,
                 key):
    """The depthwise tap sums of two output rows, 16 outputs (channels) a step, int32: for
    v < n16, acc_a[16v + l] = corr[16v + l] + Σ_ky Σ_g Σ_t u[rowA_ky][g·g_bytes + 64v + 4l + t]
    · w[(ky·ng + g)·w_stride + 64v + 4l + t] (`vpdpbusd`), likewise acc_b with row B's rows.
    rows_addr: int64 addresses of the u8 ring rows (`vnni_dw_interleave4` layout), already
    at the chunk's first output: row A's tap row ky is rows[ky]; row B's is rows[rs + ky]
    (shared rows, rs < kh: B's rows start rs below A's) or rows[kh + ky] (rs = kh). key =
    `vnni_dw_key(kh, ng, rs)` (ng 4-tap groups: ceil(KW / 4)) selects one of the cases of
    `VNNI_DW_SHAPES` (others do nothing); each is a loop that loads every ring row once
    per group for both output rows and holds the accumulators in registers. A literal key
    (the drivers pass their case as a closure constant) emits only its own case."""
    sig = types.void(rows_addr, w_addr, w_stride, g_bytes, corr_addr, n16, acc_a, acc_b, key)
    fixed = simd_literal(key)

    def codegen(context, builder, signature, args):
        vals = [simd_as64(builder, v) for v in args]
        cases = [(vnni_dw_key(*shape), lambda b, shape=shape: _vnni_emit_dw(b, *shape, vals[:8]))
                 for shape in VNNI_DW_SHAPES
                 if fixed is None or vnni_dw_key(*shape) == fixed]
        simd_cases(builder, vals[8], cases)
        return context.get_dummy_value()

    return sig, codegen


def _vnni_emit_dw(builder, KH, NG, RS, vals):
    """One case of `vnni_dw_taps`."""
    ir = _vnni_ir
    i32, i64 = ir.IntType(32), ir.IntType(64)
    v16 = ir.VectorType(i32, 16)
    rows_p, w0, wst, gb, c0, n, a0, b0 = vals
    rows_ptr = builder.inttoptr(rows_p, i64.as_pointer())
    nrows = KH + RS if RS < KH else 2 * KH
    rows = [builder.load(builder.gep(rows_ptr, [ir.Constant(i64, r)])) for r in range(nrows)]
    dot = simd_fn(builder.module, "llvm.x86.avx512.vpdpbusd.512", v16, [v16] * 3)

    def at(base, off):
        return builder.inttoptr(builder.add(base, off), v16.as_pointer())

    pre = builder.block
    loop = builder.append_basic_block("dw_loop")
    done = builder.append_basic_block("dw_done")
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    iv = builder.phi(i64)
    iv.add_incoming(ir.Constant(i64, 0), pre)
    off = builder.mul(iv, ir.Constant(i64, 64))
    corr = builder.load(at(c0, off), align=4)
    wts = [[builder.load(at(builder.add(w0, builder.mul(wst, ir.Constant(i64, ky * NG + g))),
                            off), align=1) for g in range(NG)] for ky in range(KH)]
    acc_a_v, acc_b_v = corr, corr
    for r in range(nrows):
        if RS < KH:
            ky_a = r if r < KH else None
            ky_b = r - RS if RS <= r < RS + KH else None
        else:
            ky_a = r if r < KH else None
            ky_b = r - KH if r >= KH else None
        for g in range(NG):
            goff = builder.add(off, builder.mul(gb, ir.Constant(i64, g)))
            u = builder.load(at(rows[r], goff), align=1)
            if ky_a is not None:
                acc_a_v = builder.call(dot, [acc_a_v, u, wts[ky_a][g]])
            if ky_b is not None:
                acc_b_v = builder.call(dot, [acc_b_v, u, wts[ky_b][g]])
    builder.store(acc_a_v, at(a0, off), align=4)
    builder.store(acc_b_v, at(b0, off), align=4)
    iv2 = builder.add(iv, ir.Constant(i64, 1))
    iv.add_incoming(iv2, builder.block)
    builder.cbranch(builder.icmp_signed("<", iv2, n), loop, done)
    builder.position_at_end(done)


@njit(cache=True, nogil=True, inline="always")
def vnni_copy16(src, s0, dst, d0):  # pragma: no cover - jitted
    """dst[d0:d0+16] = src[s0:s0+16] (1-D uint8 arrays; the caller keeps both ranges in
    bounds), as one vector load and store."""
    _vnni_move16(np.int64(src.ctypes.data) + np.int64(s0), np.int64(dst.ctypes.data) + np.int64(d0))


@njit(inline="always")
def _vnni_pixel(r, oh, ow):  # pragma: no cover - jitted
    """(b, oy, ox) of patch row r (output pixel r of an [N, OH, OW] image)."""
    b = r // (oh * ow)
    rem = r - b * oh * ow
    oy = rem // ow
    return b, oy, rem - oy * ow


@njit(inline="always")
def _vnni_next_pixel(b, oy, ox, oh, ow):  # pragma: no cover - jitted
    """The output pixel after (b, oy, ox) in [N, OH, OW] order."""
    ox += 1
    if ox == ow:
        ox = 0
        oy += 1
        if oy == oh:
            oy = 0
            b += 1
    return b, oy, ox


@njit(cache=True, nogil=True, inline="always")
def vnni_im2col(xp, cols, r0, r1, geom):  # pragma: no cover - jitted
    """Rows r0..r1 of the patch matrix of the padded input xp [N,Hp,Wp,C] (u8 here, the
    int16 offset patches of `int8_conv`'s multiply-add path) into cols [r1 − r0, Kp]
    (Kp >= KH·KW·C; the tail [K, Kp) is zeroed, except on the narrow-window path, where it
    is unspecified): cols[r − r0, (ky·KW + kx)·C + c] = xp[b, oy·sh + ky·dh, ox·sw + kx·dw, c].
    geom as `int8_conv`'s conv geom."""
    kh, kw, sh, sw, dh, dw, oh, ow = (
        geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[8], geom[9],
    )
    hp, wp, c = xp.shape[1], xp.shape[2], xp.shape[3]
    x1 = xp.reshape(-1)
    c1 = cols.reshape(-1)
    kp = cols.shape[1]
    seg = kw * c
    isz = x1.itemsize
    sb = seg * isz  # bytes of one ky segment
    if dw == 1 and sb <= 32 and r1 > r0:
        # narrow windows (`vnni_im2col_narrow`); rows whose last move would read past the
        # input or write past `cols` (the last few) are copied exactly, after it
        nm = 1 if sb <= 16 else 2
        r_fast = r1
        while r_fast > r0:
            bl, oyl, oxl = _vnni_pixel(r_fast - 1, oh, ow)
            src_last = ((bl * hp + oyl * sh + (kh - 1) * dh) * wp + oxl * sw) * c
            dst_last = (r_fast - 1 - r0) * kp + (kh - 1) * seg
            if (src_last * isz + nm * 16 <= x1.size * isz
                    and dst_last * isz + nm * 16 <= c1.size * isz):
                break
            r_fast -= 1
        vnni_im2col_narrow(xp, c1, r0, r_fast, r0, kp, geom)
        r0_exact = r_fast
    else:
        r0_exact = r0
    vnni_im2col_exact(xp, c1, r0_exact, r1, r0, kp, geom)


@njit(cache=True, nogil=True, inline="always")
def vnni_im2col_exact(xp, c1, ra, rb, r0, kp, geom):  # pragma: no cover - jitted
    """Patch rows ra..rb exactly (`vnni_im2col_rows`), their tails [K, kp) zeroed: what the
    whole-convolution kernels run for windows that are not narrow."""
    k = geom[0] * geom[1] * xp.shape[3]
    vnni_im2col_rows(xp, c1, ra, rb, r0, kp, geom)
    if k < kp:
        for r in range(ra, rb):
            dst0 = np.uint64((r - r0) * kp)
            for j in range(k, kp):
                c1[dst0 + np.uint64(j)] = 0


def vnni_im2col_is_narrow(geom, c: int, itemsize: int) -> bool:
    """Whether `vnni_im2col_narrow` serves the windows of conv geom over C channels of
    `itemsize` bytes: dilation-1 columns, a KW·C-value segment of at most 32 bytes."""
    return int(geom[5]) == 1 and int(geom[1]) * c * itemsize <= 32


@njit(cache=True, nogil=True, inline="always")
def vnni_im2col_narrow(xp, c1, ra, rb, r0, kp, geom):  # pragma: no cover - jitted
    """Patch rows ra..rb of narrow windows (`vnni_im2col_is_narrow`: the stem conv's few
    channels) into the flat c1 with row stride kp (row r at (r − r0)·kp): walk (b, oy, ox)
    without divisions and copy each ky segment as one 16- or 32-byte vector move (one move
    where two 16-byte ones took twice as long: the stem's 18-byte int16 segments, 135 -> 72
    µs for 12544 rows). The moves overrun, reading and writing up to 32 bytes past what they
    need: the overrun
    lands in the next segment or row (rewritten after it) or in the row's tail [K, kp),
    left unspecified (the packed weights are zero there: `vnni_pack`, `madd_pack`), and the
    caller guarantees 32 bytes past xp and past the last row are in its buffers
    (`vnni_im2col` copies its last few rows exactly instead; the whole-convolution kernels
    allocate the slack)."""
    kh, kw, sh, sw, dh, oh, ow = geom[0], geom[1], geom[2], geom[3], geom[4], geom[8], geom[9]
    hp, wp, c = xp.shape[1], xp.shape[2], xp.shape[3]
    isz = c1.itemsize
    sb = kw * c * isz  # bytes of one ky segment
    xa = np.int64(xp.ctypes.data)
    ca = np.int64(c1.ctypes.data)
    b, oy, ox = _vnni_pixel(ra, oh, ow)
    row_b = wp * c * isz
    for r in range(ra, rb):
        base = xa + ((b * hp + oy * sh) * wp + ox * sw) * c * isz
        dst = ca + (r - r0) * kp * isz
        for ky in range(kh):
            if sb > 16:
                _vnni_move32(base + ky * dh * row_b, dst + ky * sb)
            else:
                _vnni_move16(base + ky * dh * row_b, dst + ky * sb)
        b, oy, ox = _vnni_next_pixel(b, oy, ox, oh, ow)


@njit(cache=True, nogil=True, inline="always")
def vnni_im2col_rows(xp, c1, ra, rb, r0, kp, geom):  # pragma: no cover - jitted
    """Patch rows ra..rb exactly, into the flat c1 with row stride kp (row r at (r − r0)·kp):
    c1[(r − r0)·kp + (ky·KW + kx)·C + c] = xp[b, oy·sh + ky·dh, ox·sw + kx·dw, c]; the tail
    [K, kp) is not touched. Any dtype (the u8 patches here, the offset float patches of
    `int8_conv`'s BLAS path; xp and c1 of one dtype, xp C-contiguous); with dilation 1 each
    ky is one contiguous run of KW·C values, else KW runs of C: each run one memcpy
    (`simd_copy`: no copy loop for LLVM to vectorize, ~0.6 s less to compile)."""
    kh, kw, sh, sw, dh, dw, oh, ow = (
        geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[8], geom[9],
    )
    hp, wp, c = xp.shape[1], xp.shape[2], xp.shape[3]
    isz = c1.itemsize
    xa = np.int64(xp.ctypes.data)
    ca = np.int64(c1.ctypes.data)
    seg = kw * c
    b, oy, ox = _vnni_pixel(ra, oh, ow)  # then stepped: no division per row
    for r in range(ra, rb):
        if r > ra:
            b, oy, ox = _vnni_next_pixel(b, oy, ox, oh, ow)
        dst0 = (r - r0) * kp
        for ky in range(kh):
            src0 = ((b * hp + oy * sh + ky * dh) * wp + ox * sw) * c
            d0 = dst0 + ky * seg
            if dw == 1:
                simd_copy(ca + d0 * isz, xa + src0 * isz, seg * isz)
            else:
                for kx in range(kw):
                    simd_copy(ca + (d0 + kx * c) * isz, xa + (src0 + kx * dw * c) * isz, c * isz)
