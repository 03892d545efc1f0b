"""Exact int8 GEMM with 16-bit multiply-adds: the integer path of CPUs without AVX-512 VNNI.

acc[r, c] = Σ_k (x[r, k] − zp_in)·w[k, c] for int8 x and w, as int32. The activations go in
as int16 a = x − zp_in (|a| <= 255) and the weights as int16, so every product pair
a[k]·w[k] + a[k+1]·w[k+1] (<= 2·255·128) is exact in an int32 lane, and the int32 sums wrap
only past 2^31 (never, for K below 2^16): no correction term, no saturation. This is what
XNNPACK's and ruy's AVX2 int8 kernels do (`vpmovsxbw` + `vpmaddwd`).

Weights are packed once as int16 [OB, K2, 16]: per block of 8 output channels (zero-padded)
and pair of consecutive k (K padded to even with zeros), the 8 channels' (w[k], w[k+1])
pairs. Activations are int16 rows padded to K2·2 values (`madd_rows_i16`, `madd_pad_i16` +
`im2col_rows`): a padded tap is 0 (x = zp_in) and adds nothing.

The micro-kernel (`_madd_tile`, LLVM IR through a Numba intrinsic) keeps MR rows × NB blocks
of <8 x i32> accumulators in registers over the K2 loop: per step it loads each block's
<16 x i16> weights, broadcasts each row's (a[k], a[k+1]) pair, and multiply-adds them with
`simd.madd_i16` (vpmaddwd on x86 with AVX2; generic vector IR that LLVM lowers for the host
elsewhere, e.g. NEON on aarch64). It stores float32 (exact below 2^24, for the requantization
pass `requant_fast2_i8`) or int32 (`madd_gemm` walks the tiles), or requantizes in its
epilogue (`madd_tiles_rq`, `madd_gemm_rq`: a float estimate, the undecided outputs flagged
and recomputed exactly by `_madd_fix`, a leaf called by address: `madd_fix_leaf`); CONV_2D runs the latter inside one whole-convolution
kernel per isa (`int8_conv._conv_madd_kernel`). The isa and the mode are closure constants of
the kernels that call the tiles, so each compiles only its own cases.

The byte isas (`BYTE_PATHS`: "dot", aarch64's `sdot`, and "avxvnni", x86's 256-bit
`vpdpbusd`; `simd.MADD_ISA`) run the same tiles, epilogue and fix-up on bytes: 4 s8 weights
per lane a step where the others take 2 int16 (`dot_pack`: the same 32 bytes a step), rows
of u8 x + 128 as the VNNI path writes them (`vnni_rows_u8`, the patch leaves), and a
zero-point correction folded into the accumulators' start. "avxvnni" multiplies the u8 rows
as they are (vpdpbusd: unsigned by signed), so its correction is −(zp_in + 128)·Σ_k w[k, c];
"dot" (sdot: signed by signed) turns them back into x in the K loop (one xor per row and
step), −zp_in·Σ_k w[k, c]. A step covers 4 k where the int16 pairs cover 2: the K loop has
half the steps.

Only numpy, numba and llvmlite are used: the `--emit=numba` artifact inlines this module.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _madd_ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..fixedpoint import fast_requant_tables, mbqm_fast, njit
from .simd import (
    HAS_AVX2,
    HAS_AVX_VNNI,
    HAS_NEON_DOT,
    MADD_ISA,
    X86,
    leaf_cfunc,
    simd_array,
    simd_as64,
    simd_call,
    simd_cases,
    simd_dot_loop,
    simd_empty,
    simd_fn,
    simd_i8_ptr,
    simd_i32_ptr,
    simd_i64_ptr,
    simd_literal,
    simd_madd_i16,
    simd_max,
    simd_min,
    simd_pack_i16,
    simd_splat,
)

_MADD_MR = 4  # rows per micro-tile
_MADD_NB = 2  # 8-channel blocks per micro-tile
_MADD_SSE2 = MADD_ISA["sse2"]
"""The isa whose full tiles take one block: its <8 x i32> accumulators are two 128-bit
registers each, and a 4 x 2 tile's 16 of them, with the weights and the rows' pairs, spill
out of x86-64's 16 xmm registers in the K loop (4 x 1: none)."""


_MADD_I32, _MADD_F32, _MADD_RQ = 0, 1, 2
"""`_madd_tile` modes: store the int32 accumulators, store them as float32, or requantize
them in the epilogue (int8 out, `_madd_emit_requant`)."""
_MADD_RQ_BLOCK = 128  # bytes of requantization table per 8-channel block: 4 rows of 8 lanes


BYTE_PATHS = ("dot", "avxvnni")
"""The paths whose tiles read u8 rows x + 128 and byte-quad weights (`dot_pack`)."""
INT16_PATHS = ("avx2", "sse2", "portable")
"""The paths whose tiles read int16 rows x − zp_in and int16 weight pairs (`madd_pack`)."""
_ROW_OFFSET = {"dot": 0, "avxvnni": 128}
"""What a byte path's K loop multiplies the weights by, minus x: "dot" undoes the rows' + 128,
"avxvnni" keeps it (`dot_pack`'s correction)."""


class _MaddDot:
    """`simd_dot_loop`'s step: 8 int32 lanes, 32 bytes of weights a step. isa "portable" /
    "sse2" / "avx2": int16 pairs, acc + madd(row pair, weights <16 x i16>); isa "dot":
    bytes by fours, the row's 4 u8 (x + 128, as the VNNI path's row leaves write them)
    turned back into s8 x, acc + sdot(x, weights <32 x i8>) on each half of the lanes; isa
    "avxvnni": acc + vpdpbusd(the row's 4 u8 as they are, weights <32 x i8>)."""

    lanes = 8
    wbytes = 32
    wtype = _madd_ir.VectorType(_madd_ir.IntType(16), 16)

    def __init__(self, isa: str):
        self.isa = isa

    def row(self, builder, word):
        """The row's 4 bytes (an i32) as the step reads them."""
        if self.isa != "dot":
            return word
        return builder.xor(word, _madd_ir.Constant(word.type, 0x80808080 - (1 << 32)))

    def __call__(self, builder, acc, row, w):
        if self.isa == "dot":
            return _madd_emit_sdot(builder, acc, row, w)
        if self.isa == "avxvnni":
            return _madd_emit_vpdpbusd(builder, acc, row, w)
        b = builder.bitcast(row, self.wtype)
        return builder.add(acc, simd_madd_i16(builder, b, w, self.isa))


def _madd_emit_sdot(builder, acc, row, w):
    """acc <8 x i32> + the byte dot products of row (<8 x i32>, one 4-byte word in every
    lane) by w (32 bytes: lane l's 4 s8 weights at 4l): `sdot` on each <4 x i32> half (the
    instruction on aarch64 with dot products, generic IR elsewhere: `simd.HAS_NEON_DOT`)."""
    ir = _madd_ir
    i32 = ir.IntType(32)
    v4, v16b = ir.VectorType(i32, 4), ir.VectorType(ir.IntType(8), 16)
    fn = simd_fn(builder.module, "llvm.aarch64.neon.sdot.v4i32.v16i8", v4, [v4, v16b, v16b],
                 emulate=not HAS_NEON_DOT)
    halves = (ir.Constant(ir.VectorType(i32, 4), [0, 1, 2, 3]),
              ir.Constant(ir.VectorType(i32, 4), [4, 5, 6, 7]))
    wv = builder.bitcast(w, ir.VectorType(i32, 8))
    x = builder.bitcast(builder.shuffle_vector(row, row, halves[0]), v16b)
    out = [builder.call(fn, [builder.shuffle_vector(acc, acc, h), x,
                             builder.bitcast(builder.shuffle_vector(wv, wv, h), v16b)])
           for h in halves]
    return builder.shuffle_vector(out[0], out[1],
                                  ir.Constant(ir.VectorType(i32, 8), list(range(8))))


def _madd_emit_vpdpbusd(builder, acc, row, w):
    """acc <8 x i32> + the byte dot products of row (<8 x i32>, one 4-byte word of u8 in
    every lane) by w (32 bytes: lane l's 4 s8 weights at 4l): the 256-bit `vpdpbusd` (AVX-VNNI,
    or AVX-512 VNNI with VL: `simd.HAS_AVX_VNNI`; generic IR elsewhere)."""
    v8 = _madd_ir.VectorType(_madd_ir.IntType(32), 8)
    fn = simd_fn(builder.module, "llvm.x86.avx512.vpdpbusd.256", v8, [v8, v8, v8],
                 emulate=not HAS_AVX_VNNI)
    return builder.call(fn, [acc, row, builder.bitcast(w, v8)])


def _madd_emit_tile(builder, MR, NB, a0, ast, w0, wbs, kk, isa, init):
    """The K loop (K2 int16 pairs; the byte isas: K4 byte quads) of an MR × NB tile,
    accumulators from init[j] (<8 x i32>); returns the final accumulators [MR][NB], the
    builder after the loop."""
    return simd_dot_loop(builder, MR, NB, a0, ast, w0, wbs, kk, init, _MaddDot(isa))


def madd_tile_ir(rows: int, blocks: int, isa: str, triple: str) -> str:
    """The LLVM IR (text) of a rows × blocks tile's K loop alone, zero accumulators stored at
    the end, for isa ("portable", "sse2", "avx2", "dot", "avxvnni") and an LLVM target
    triple: what a target compiles the tiles' loop to, for inspection
    (tests/test_int8_madd.py, bench/gemm_model.py) without that target's host."""
    ir = _madd_ir
    i64 = ir.IntType(64)
    v8 = ir.VectorType(ir.IntType(32), 8)
    mod = ir.Module("madd_tile")
    mod.triple = triple
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [i64] * 6), "tile")
    builder = ir.IRBuilder(fn.append_basic_block())
    a0, ast, w0, wbs, kk, o0 = fn.args
    new = simd_dot_loop(builder, rows, blocks, a0, ast, w0, wbs, kk,
                        [ir.Constant(v8, None)] * blocks, _MaddDot(isa))
    out = builder.inttoptr(o0, v8.as_pointer())
    for r in range(rows):
        for j in range(blocks):
            builder.store(new[r][j], builder.gep(out, [ir.Constant(i64, blocks * r + j)]),
                          align=4)
    builder.ret_void()
    return str(mod)


def _madd_store_last(builder, lasts, nl, width, lead=0):
    """Store each (vector, pointer) of `lasts` whole when nl == 8, else its first lead + nl
    lanes (lead: the lanes of full blocks before the last): the vector goes to a stack slot
    and lead + nl lanes of it are copied (one memcpy call; a conditional store per lane was
    ~16 branches a row, compiled in every tile shape, for the edge tiles alone)."""
    ir = _madd_ir
    i8p, i64 = ir.IntType(8).as_pointer(), ir.IntType(64)
    with builder.if_else(builder.icmp_signed("==", nl, ir.Constant(i64, 8))) as (full, part):
        with full:
            for val, p in lasts:
                builder.store(val, builder.bitcast(p, val.type.as_pointer()), align=width)
        with part:
            copy = builder.module.declare_intrinsic("llvm.memcpy", [i8p, i8p, i64])
            nbytes = builder.mul(builder.add(nl, ir.Constant(i64, lead)),
                                 ir.Constant(i64, width))
            for val, p in lasts:
                slot = cgutils.alloca_once(builder, val.type)
                builder.store(val, slot)
                builder.call(copy, [builder.bitcast(p, i8p), builder.bitcast(slot, i8p), nbytes,
                                    ir.Constant(ir.IntType(1), 0)])


def _madd_emit_store(builder, new, o0, ost, nl, F32):
    """Store the tile's accumulators (float32 or int32) at o0 (row stride ost bytes)."""
    ir = _madd_ir
    i8, i64 = ir.IntType(8), ir.IntType(64)
    o_p = builder.inttoptr(o0, i8.as_pointer())
    lasts = []
    for r, row in enumerate(new):
        orow = builder.gep(o_p, [builder.mul(ost, ir.Constant(i64, r))])
        for j, acc in enumerate(row):
            val = builder.sitofp(acc, ir.VectorType(ir.FloatType(), 8)) if F32 else acc
            p = builder.gep(orow, [ir.Constant(i64, 32 * j)])
            if j < len(row) - 1:
                builder.store(val, builder.bitcast(p, val.type.as_pointer()), align=4)
            else:
                lasts.append((val, p))
    _madd_store_last(builder, lasts, nl, 4)


def _madd_emit_requant(builder, acc, tj):
    """The rounded requantization of 8 lanes, before the zero point and the clamp, and the
    lanes it does not decide, as `requant_fast2_i8` computes them (the bias is in acc):
    y = float(acc)·eff, u = |y| + margin, q = ±roundeven(u) with y's sign (= ±floor(t) for
    `requant_fast2_i8`'s t = |y| + off, off = margin + 1/2, wherever it is decided);
    undecided when u is within tol = 4e−7·|y| + tol1 of a half-integer (tol1 = tol0 + 1e−7;
    tol0 = 2 for always-exact channels), tested as |u − roundeven(u)| >= 0.5 − tol, with the
    table's row 0.5 − tol1 − 2^−22 (the 2^−22 covers the rounding of u: it flags a little
    more, never less; u − roundeven(u) itself is exact). A tie of u is always undecided, so
    roundeven's choice there never reaches an output. float(acc) may round (|acc| >= 2^24):
    that and the rounding of eff and of the product stay within 3·2^−24 relative, inside the
    tolerance. q is converted to int32 exactly where it is decided (|y| < 2^23: from there
    on tol > 1 flags every lane). Returns (q <8 x i32>, undecided <8 x i1>)."""
    ir = _madd_ir
    f32 = ir.FloatType()
    vf = ir.VectorType(f32, 8)
    vi = ir.VectorType(ir.IntType(32), 8)
    mod = builder.module

    def row(k):
        p = builder.gep(tj, [ir.Constant(ir.IntType(64), 32 * k)])
        return builder.load(builder.bitcast(p, vf.as_pointer()), align=4)

    eff, margin, half = row(1), row(2), row(3)  # half = 0.5 − tol1 − 2^−22
    fabs = simd_fn(mod, "llvm.fabs.v8f32", vf, [vf])
    roundeven = simd_fn(mod, "llvm.roundeven.v8f32", vf, [vf])
    fma = simd_fn(mod, "llvm.fmuladd.v8f32", vf, [vf, vf, vf])
    y = builder.fmul(builder.sitofp(acc, vf), eff)
    ay = builder.call(fabs, [y])
    u = builder.fadd(ay, margin)
    r = builder.call(roundeven, [u])
    d = builder.call(fabs, [builder.fsub(u, r)])
    flag = builder.fcmp_ordered(">=", d, builder.call(fma, [ay, ir.Constant(vf, [-4e-7] * 8),
                                                            half]))
    # ±r with y's sign (r >= 0): its sign bit or'ed in
    sign = builder.and_(builder.bitcast(y, vi), ir.Constant(vi, [-(2**31)] * 8))
    q = builder.bitcast(builder.or_(builder.bitcast(r, vi), sign), vf)
    return builder.fptosi(q, vi), flag


def _madd_emit_saturate(builder, v, bits):
    """v (an integer vector) clamped to the range of a `bits`-bit integer and truncated to
    it: the pattern LLVM lowers to a saturating pack (vpackssdw, vpacksswb; sqxtn on NEON)."""
    ir = _madd_ir
    n, wide = v.type.count, v.type.element
    lo = ir.Constant(ir.VectorType(wide, n), [-(1 << (bits - 1))] * n)
    hi = ir.Constant(ir.VectorType(wide, n), [(1 << (bits - 1)) - 1] * n)
    v = builder.select(builder.icmp_signed("<", v, lo), lo, v)
    v = builder.select(builder.icmp_signed(">", v, hi), hi, v)
    return builder.trunc(v, ir.VectorType(ir.IntType(bits), n))


def _madd_emit_row_out(builder, qs, zp, lo, hi):
    """A tile row's int8 outputs from its blocks' q (`_madd_emit_requant`): clamp(q + zp,
    lo, hi) over all of them at once, through saturating packs: int16 (q saturated, + zp
    saturating), then int8, then the clamp on bytes. Saturating first changes nothing:
    lo and hi are int8, and a saturated sum keeps its side of them."""
    ir = _madd_ir
    i16, i8 = ir.IntType(16), ir.IntType(8)
    if len(qs) > 1:  # two blocks, saturated to int16 in one 256-bit pack
        v16 = simd_pack_i16(builder, qs[0], qs[1])
    else:
        v16 = _madd_emit_saturate(builder, qs[0], 16)
    n = v16.type.count
    sadd = simd_fn(builder.module, f"llvm.sadd.sat.v{n}i16", v16.type, [v16.type, v16.type])
    v16 = builder.call(sadd, [v16, simd_splat(builder, builder.trunc(zp, i16), v16.type)])
    v8 = _madd_emit_saturate(builder, v16, 8)
    vt = v8.type
    lo8 = simd_splat(builder, builder.trunc(lo, i8), vt)
    hi8 = simd_splat(builder, builder.trunc(hi, i8), vt)
    v8 = builder.select(builder.icmp_signed("<", v8, lo8), lo8, v8)
    return builder.select(builder.icmp_signed(">", v8, hi8), hi8, v8)


def _madd_emit_rq_tile(builder, MR, NB, a0, ast, w0, wbs, kk, isa, t0, o0, ost, nl, fx0, fxs,
                       h0, hs, hb, lo, hi, zp):
    """A tile requantized in its epilogue: int8 rows at o0 (stride ost bytes); for a (row,
    block) with an undecided lane, its accumulators go to fx0 (row stride fxs bytes, column
    block·8) and its index hb + row·hs + block is appended to the hits list at h0 (int64:
    the count, then the indices), for `_madd_fix`."""
    assert NB <= 2, "_madd_emit_row_out joins at most two blocks"
    ir = _madd_ir
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    v8 = ir.VectorType(i32, 8)
    t_p = builder.inttoptr(t0, i8.as_pointer())
    tjs = [builder.gep(t_p, [ir.Constant(i64, _MADD_RQ_BLOCK * j)]) for j in range(NB)]
    init = [builder.load(builder.bitcast(tj, v8.as_pointer()), align=4) for tj in tjs]  # bias
    new = _madd_emit_tile(builder, MR, NB, a0, ast, w0, wbs, kk, isa, init)
    o_p = builder.inttoptr(o0, i8.as_pointer())
    fx_p = builder.inttoptr(fx0, i8.as_pointer())
    h_p = builder.inttoptr(h0, i64.as_pointer())
    lasts = []
    for r in range(MR):
        qs = []
        for j in range(NB):
            q, flag = _madd_emit_requant(builder, new[r][j], tjs[j])
            qs.append(q)
            undecided = builder.icmp_unsigned("!=", builder.bitcast(flag, i8),
                                              ir.Constant(i8, 0))
            with builder.if_then(undecided, likely=False):
                fp = builder.gep(fx_p, [builder.add(builder.mul(fxs, ir.Constant(i64, r)),
                                                    ir.Constant(i64, 32 * j))])
                builder.store(new[r][j], builder.bitcast(fp, v8.as_pointer()), align=4)
                count = builder.load(h_p)
                index = builder.add(hb, builder.add(builder.mul(hs, ir.Constant(i64, r)),
                                                    ir.Constant(i64, j)))
                builder.store(index, builder.gep(h_p, [builder.add(count, ir.Constant(i64, 1))]))
                builder.store(builder.add(count, ir.Constant(i64, 1)), h_p)
        out = _madd_emit_row_out(builder, qs, zp, lo, hi)
        lasts.append((out, builder.gep(o_p, [builder.mul(ost, ir.Constant(i64, r))])))
    _madd_store_last(builder, lasts, nl, 1, lead=8 * (NB - 1))


_MADD_SHAPES = tuple((mr, nb) for mr in (_MADD_MR, 1) for nb in range(_MADD_NB, 0, -1))
"""The (rows, blocks) tile shapes `_madd_tile` is compiled for: full tiles and the edges."""


@intrinsic(prefer_literal=True)
def _madd_tile(typingctx, a_addr, a_stride, w_addr, w_bstride, k2, o_addr, o_stride, nlast,
               mr, nb, mode, isa, t_addr, fx_addr, fx_stride, h_addr, h_stride, h_base, lo, hi,
               zp):
    """An mr × nb tile of Σ_{i<k2} madd(a[r, 2i:2i+2], w[j, i, 2l:2l+2]) (byte addresses and
    strides; the last block stores only its first `nlast` lanes), in `mode`: `_MADD_I32` /
    `_MADD_F32` store the accumulators (int32 / float32) at o_addr; `_MADD_RQ` starts them
    at the bias of the table at t_addr and stores int8 (`_madd_emit_rq_tile`, the fix-up
    buffers at fx_addr / h_addr). The cases are the tile shapes of `_MADD_SHAPES` (sse2: one
    block, as `_madd_tiles` walks it) in every mode for each isa the target can run
    (`simd.MADD_ISA`: 0 portable, 1 avx2, 2 dot, 3 avxvnni, 4 sse2), the run-time (mr, nb,
    mode, isa) selecting one (others: nothing); a compile-time constant mr, nb, mode or isa
    (`simd_literal`: the kernels pass mode and isa as closure constants) keeps only the cases
    it selects."""
    sig = types.void(a_addr, a_stride, w_addr, w_bstride, k2, o_addr, o_stride, nlast, mr, nb,
                     mode, isa, t_addr, fx_addr, fx_stride, h_addr, h_stride, h_base, lo, hi, zp)
    isas = [name for name, code in sorted(MADD_ISA.items(), key=lambda kv: kv[1])
            if (name != "avx2" or HAS_AVX2) and (name != "sse2" or X86)]
    fixed = [simd_literal(t) for t in (mr, nb, mode, isa)]

    def codegen(context, builder, signature, args):
        ir = _madd_ir
        i64 = ir.IntType(64)
        v8 = ir.VectorType(ir.IntType(32), 8)
        (a0, ast, w0, wbs, kk, o0, ost, nl, m, n, md, q, t0, fx0, fxs, h0, hs, hb, lo, hi,
         zp) = [simd_as64(builder, v) for v in args]
        # key = ((isa·4 + mode)·16 + mr)·16 + nb
        c = ir.Constant
        key = builder.add(builder.mul(builder.add(builder.mul(builder.add(builder.mul(
            q, c(i64, 4)), md), c(i64, 16)), m), c(i64, 16)), n)

        def case(name, mode, MR, NB):
            def emit(builder):
                if mode == _MADD_RQ:
                    _madd_emit_rq_tile(builder, MR, NB, a0, ast, w0, wbs, kk, name, t0, o0,
                                       ost, nl, fx0, fxs, h0, hs, hb, lo, hi, zp)
                else:
                    new = _madd_emit_tile(builder, MR, NB, a0, ast, w0, wbs, kk, name,
                                          [c(v8, None)] * NB)
                    _madd_emit_store(builder, new, o0, ost, nl, mode == _MADD_F32)
            return ((MADD_ISA[name] * 4 + mode) * 16 + MR) * 16 + NB, emit

        simd_cases(builder, key, [case(name, mode, MR, NB) for name in isas
                                  for mode in (_MADD_I32, _MADD_F32, _MADD_RQ)
                                  for MR, NB in _MADD_SHAPES
                                  if (NB == 1 or name != "sse2")  # `_madd_tiles`' blocks
                                  and all(f is None or f == v for f, v in
                                         zip(fixed, (MR, NB, mode, MADD_ISA[name])))])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, inline="always")
def _madd_tiles(a0, rows, ast, w, o, o0, ost, mode, isa, t, fx, hits, lo, hi, zp):  # pragma: no cover - jitted
    """Every tile of the GEMM of `rows` int16 rows at address a0 (ast bytes apart; K2·2
    values each) by packed weights w int16 [OB, K2, 16] into the output rows at address o0
    (ost bytes apart, o columns: int32 / float32 accumulators, or int8 with mode `_MADD_RQ`,
    tables t [OB, 4, 8], fix-up buffers fx int32 of rows·OB·8 and the hits list:
    `madd_fix_buffers`); mode and isa as `_madd_tile`'s, compile-time constants of the
    kernel this is inlined into (`_madd_make_gemm`, `_madd_make_gemm_rq`, the convolution
    kernel): it compiles one mode of one isa. Addresses, not array views: a caller's slices
    and reshapes of its buffers each cost compile time."""
    ob, k2 = w.shape[0], w.shape[1]
    w0 = np.int64(w.ctypes.data)
    t0 = np.int64(t.ctypes.data)
    fx0 = np.int64(fx.ctypes.data)
    h0 = np.int64(hits.ctypes.data)
    bst = np.int64(8 if mode == _MADD_RQ else 32)  # bytes of one 8-channel block of output
    fxs = np.int64(ob * 32)
    wbs = np.int64(k2 * 32)
    last = o - (ob - 1) * 8
    nbs = 1 if isa == _MADD_SSE2 else _MADD_NB  # a constant: isa is one
    for jb in range(0, ob, nbs):
        nb = simd_min(nbs, ob - jb)
        nl = last if jb + nb == ob else 8
        r = 0
        while r < rows:
            mr = _MADD_MR if r + _MADD_MR <= rows else 1
            _madd_tile(a0 + r * ast, ast, w0 + jb * wbs, wbs, k2, o0 + jb * bst + r * ost, ost,
                       nl, mr, nb, mode, isa, t0 + jb * _MADD_RQ_BLOCK, fx0 + r * fxs + jb * 32,
                       fxs, h0, ob, r * ob + jb, lo, hi, zp)
            r += mr


@njit(cache=True, nogil=True, inline="always")
def _madd_fix(fx, hits, ob, m, left, right, o, zp, lo, hi, out):  # pragma: no cover - jitted
    """The exact requantization of every (row, block) of a `_MADD_RQ` GEMM in the hits list
    (hits[0] of them, indices row·OB + block from hits[1]), which it empties:
    out[r, c] = clamp(MBQM(fx[r, c], m[c], shift[c]) + zp, lo, hi) (fx holds the bias).
    Undecided blocks are rare; a list of them costs nothing to read when it is empty,
    where flags per block had to be scanned (a third of a short-K GEMM, byte by byte)."""
    for k in range(hits[0]):
        i = hits[1 + k]
        r = i // ob
        jb = i - r * ob
        for c in range(jb * 8, simd_min(jb * 8 + 8, o)):
            v = mbqm_fast(np.int64(fx[r, c]), np.int64(m[c]), np.int64(left[c]),
                          np.int64(right[c])) + zp
            out[r, c] = simd_min(simd_max(v, lo), hi)
    hits[0] = 0


@njit(nogil=True, inline="always")
def madd_fix_buffers(rows, ob):  # pragma: no cover - jitted
    """The fix-up buffers of `madd_tiles_rq` for up to `rows` rows of OB blocks: (fx int32
    of rows·OB·8, the hits list int64 [1 + rows·OB], empty). Flat, and np.empty only: each
    allocation form (a shape tuple, np.zeros) compiles its own overload."""
    hits = simd_empty(1 + rows * ob, np.int64)
    hits[0] = 0
    return simd_empty(rows * ob * 8, np.int32), hits


_MADD_FIX_LEAF: list = []


def madd_fix_leaf() -> int:
    """The address of `_madd_fix` as a leaf (`simd.leaf_cfunc`), made (compiled or loaded) on
    first use: the kernels that requantize in the GEMM epilogue call it by address, so it
    compiles once, not again inside each of them. Its arguments: fx [tile, OB·8] int32,
    tile, OB, the hits list and its size, m, left, right int32 [C], C, o, zp, lo, hi, out
    int8 with row stride ost, its row count."""
    if not _MADD_FIX_LEAF:
        @leaf_cfunc(16)
        def madd_fix(fa, tile, ob, ha, nh, ma, la, ra, nc, o, zp, lo, hi, oa, ost, rows):  # pragma: no cover - jitted
            _madd_fix(simd_array(simd_i32_ptr(fa), (tile, ob * 8)), simd_array(simd_i64_ptr(ha), (nh,)),
                      ob, simd_array(simd_i32_ptr(ma), (nc,)), simd_array(simd_i32_ptr(la), (nc,)),
                      simd_array(simd_i32_ptr(ra), (nc,)), o, zp, lo, hi,
                      simd_array(simd_i8_ptr(oa), (rows, ost)))

        _MADD_FIX_LEAF.append(madd_fix)
    return _MADD_FIX_LEAF[0].address


@njit(nogil=True, inline="always")
def madd_tiles_rq(a0, rows, ast, w, t, m, left, right, o, zp, lo, hi, o0, ost, fx, hits, isa, fix):  # pragma: no cover - jitted
    """`madd_gemm_rq` of `rows` int16 rows at address a0 (ast bytes apart) into int8 rows at
    address o0 (ost bytes apart), with caller-made buffers (`madd_fix_buffers` for at least
    `rows` rows; the hits list left empty again), isa a compile-time constant of the caller,
    fix the address of `madd_fix_leaf` (called only when a block is undecided)."""
    ob = w.shape[0]
    _madd_tiles(a0, rows, ast, w, o, o0, ost, _MADD_RQ, isa, t, fx, hits, lo, hi, zp)
    if hits[0]:
        simd_call(fix, (fx, rows, ob, hits, hits.size, m, left, right, m.size, o, zp, lo, hi,
                        o0, ost, rows))


@njit(nogil=True, inline="always")
def madd_tiles_i32(a0, rows, ast, w, o, o0, ost, isa):  # pragma: no cover - jitted
    """int32 rows at address o0 (ost bytes apart, o columns) = the GEMM of `rows` int16 rows
    at address a0 (ast bytes apart) by packed weights w, isa a compile-time constant of the
    caller. (This mode reads no requantization table or fix-up buffer: w stands in for
    them.)"""
    _madd_tiles(a0, rows, ast, w, o, o0, ost, _MADD_I32, isa, w, w, w, 0, 0, 0)


def _madd_make_gemm_rq(isa: int):
    """`madd_gemm_rq`'s kernel for one isa (a closure constant)."""

    @njit(cache=True, nogil=True)
    def gemm_rq(a, w, t, m, left, right, o, zp, lo, hi, out, fix):  # pragma: no cover - jitted
        fx, hits = madd_fix_buffers(a.shape[0], w.shape[0])
        madd_tiles_rq(np.int64(a.ctypes.data), a.shape[0], np.int64(a.strides[0]), w, t, m,
                      left, right, o, zp, lo, hi, np.int64(out.ctypes.data),
                      np.int64(out.strides[0]), fx, hits, isa, fix)

    return gemm_rq


def _madd_make_gemm(mode: int, isa: int):
    """`madd_gemm`'s kernel for one accumulator type (mode) and isa (closure constants)."""

    @njit(cache=True, nogil=True)
    def gemm(a, w, o, out):  # pragma: no cover - jitted
        # these modes read no requantization table or fix-up buffer: w stands in for them
        _madd_tiles(np.int64(a.ctypes.data), a.shape[0], np.int64(a.strides[0]), w, o,
                    np.int64(out.ctypes.data), np.int64(out.strides[0]), mode, isa, w, w, w,
                    0, 0, 0)

    return gemm


_MADD_GEMM_RQ = {code: _madd_make_gemm_rq(code) for code in MADD_ISA.values()}
_MADD_GEMM = {(mode, code): _madd_make_gemm(mode, code) for mode in (_MADD_I32, _MADD_F32)
              for code in MADD_ISA.values()}


def madd_gemm_rq(a, w, t, m, left, right, o, zp, lo, hi, out, isa: int) -> None:
    """int8 out [R, o] = clamp(MBQM(Σ_k a[r, k]·w[k, c] + bias[c], m[c], shift[c]) + zp, lo,
    hi) for int16 rows a [R, K2·2], w from `madd_pack`, t from `madd_rq_pack` (bias, float
    tables), m / left / right int32 per channel; exact (undecided outputs are recomputed
    with the integer MBQM). isa: `simd.MADD_ISA[path]`; the byte paths: u8 rows a
    [R, K4·4], w and the correction from `dot_pack`, t from `madd_rq_pack(..., corr)`."""
    _MADD_GEMM_RQ[isa](a, w, t, m, left, right, o, zp, lo, hi, out, madd_fix_leaf())


def madd_rq_pack(bias, m, shift, corr=None) -> tuple[np.ndarray, ...]:
    """Bind time: (t float32 [OB, 4, 8], m, left, right int32) for `madd_gemm_rq`. t's rows
    per 8-channel block: the accumulators' start, the int32 bias (+ corr, a byte path's
    zero-point correction `dot_pack`, mod 2^32) as its bits, eff = float32(m·2^(shift−31)),
    the margin (`requant_fast2_i8`'s off − 1/2; always-exact channels and padding lanes: 0),
    and 0.5 − tol1 − 2^−22 (`_madd_emit_requant`; tol1 = tol0 + 1e−7, always-exact channels:
    tol0 = 2; padding lanes: tol1 = 0)."""
    ft = fast_requant_tables(m, shift, bias)
    c = ft["m"].size
    ob = -(-c // 8)
    t = np.zeros((ob * 8, 4), np.float32)
    start = ft["bias"] if corr is None else madd_wrap32(
        ft["bias"].astype(np.int64) + np.asarray(corr, np.int64).reshape(-1)[:c])
    t[:c, 0] = start.view(np.float32)
    t[:c, 1] = ft["eff"]
    margin = ft["margin"]
    t[:, 2] = 0.0
    t[:c, 2] = np.where(margin >= 0.5, 0.0, margin)
    tol1 = np.where(margin >= 1.0, 2.0, 0.0) + 1e-7  # tol0 + the 1e−7 term
    t[:, 3] = 0.5 - 2.0**-22
    t[:c, 3] = 0.5 - tol1 - 2.0**-22  # `_madd_emit_requant`'s form of the tolerance
    t = np.ascontiguousarray(t.reshape(ob, 8, 4).transpose(0, 2, 1))
    return t, ft["m"], ft["left"], ft["right"]


def madd_pack(w_kc: np.ndarray) -> np.ndarray:
    """Integer weights [K, C] (within int16) -> packed int16 [OB, K2, 16]."""
    k, c = w_kc.shape
    k2 = -(-k // 2)
    ob = -(-c // 8)
    wp = np.zeros((k2 * 2, ob * 8), np.int16)
    wp[:k, :c] = w_kc
    # [K2, 2, OB, 8] -> [OB, K2, 8, 2]
    return np.ascontiguousarray(wp.reshape(k2, 2, ob, 8).transpose(2, 0, 3, 1)).reshape(
        ob, k2, 16)


def madd_row_form(isa: int) -> tuple[bool, type, int]:
    """(bytes, the rows' dtype, K values a weight step) of an isa's rows: int16 x − zp_in by
    pairs (`madd_pack`), or for the byte paths u8 x + 128 by fours (`dot_pack`); the kernels
    that make rows for the tiles take these as closure constants."""
    u8 = isa in (MADD_ISA[p] for p in BYTE_PATHS)
    return u8, (np.uint8 if u8 else np.int16), (4 if u8 else 2)


def madd_wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values as int32 mod 2^32 (the accumulators' lanes wrap)."""
    return ((np.asarray(v, np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def dot_pack(w_kc: np.ndarray, zp_in: int, path: str = "dot") -> tuple[np.ndarray, np.ndarray]:
    """Integer weights [K, C] (within int8) -> a byte path's (packed int8 [OB, K4, 32],
    corr int64 [C]). Per block of 8 output channels (zero-padded) and group of 4 consecutive
    k (K padded to a multiple of 4 with zeros), lane l's 4 bytes w[4i:4i+4, 8j + l]: the same
    32 bytes a step as `madd_pack`'s int16 pairs, so the tiles walk both alike. The rows
    are u8 x + 128 (`vnni_rows_u8` and the VNNI patch leaves), which the K loop multiplies
    as x + off (`_ROW_OFFSET`: "dot" 0, its step undoes the + 128; "avxvnni" 128), so the
    accumulators start at corr[c] = −(zp_in + off)·Σ_k w[k, c] (+ the bias):
    Σ (x − zp_in)·w = Σ (x + off)·w − (zp_in + off)·Σ w; a padded tap (x = zp_in)
    contributes nothing."""
    k, c = w_kc.shape
    k4 = -(-k // 4)
    ob = -(-c // 8)
    wp = np.zeros((k4 * 4, ob * 8), np.int8)
    wp[:k, :c] = w_kc
    # [K4, 4, OB, 8] -> [OB, K4, 8, 4]
    packed = np.ascontiguousarray(wp.reshape(k4, 4, ob, 8).transpose(2, 0, 3, 1))
    corr = -(int(zp_in) + _ROW_OFFSET[path]) * w_kc.astype(np.int64).sum(axis=0)
    return packed.reshape(ob, k4, 32), corr


def madd_gemm(a: np.ndarray, packed: np.ndarray, o: int, out: np.ndarray,
              isa: int) -> None:
    """out [R, o] (float32 or int32, C-contiguous) = Σ_k a[r, k]·w[k, c] for the rows a:
    int16 [R, K2·2] (x − zp_in, zero-padded) for `madd_pack`'s weights, u8 [R, K4·4]
    (x + 128: `vnni_rows_u8`) for `dot_pack`'s (the byte paths), whose correction the
    caller adds;
    isa: `simd.MADD_ISA[path]`."""
    mode = _MADD_F32 if out.dtype == np.float32 else _MADD_I32
    _MADD_GEMM[mode, isa](a, packed, o, out)


@njit(cache=True, nogil=True, inline="always")
def madd_rows_i16(x, zp, k, kp, o1, rows):  # pragma: no cover - jitted
    """out[r, :k] = x[r·k : (r+1)·k] − zp, out[r, k:kp] = 0 (x: 1-D int8 of R·k values; o1:
    the flat int16 out [rows, kp]: a reshape here compiles for ~0.1 s)."""
    z = np.int16(zp)
    if kp == k:
        for i in range(rows * k):
            o1[i] = np.int16(x[i]) - z
        return
    for r in range(rows):
        s = np.uint64(r * k)
        d = np.uint64(r * kp)
        for j in range(k):
            o1[d + np.uint64(j)] = np.int16(x[s + np.uint64(j)]) - z
        for j in range(k, kp):
            o1[d + np.uint64(j)] = 0
