"""The SIMD primitives qcc's integer kernels emit, and which integer GEMM path a host runs.

Kernels that need an instruction LLVM would not pick by itself (a dot product of bytes, a
16-bit multiply-add) emit LLVM IR through Numba intrinsics; they take these primitives from
here, never a target intrinsic by name, so every path has a portable form:

    simd_splat(builder, scalar, vector_type)      the scalar in every lane
    simd_madd_i16(builder, a, b, isa)             <16 x i16> × <16 x i16> -> <8 x i32>:
                                                  lane l = a[2l]·b[2l] + a[2l+1]·b[2l+1]
                                                  (vpmaddwd with isa "avx2"; two 128-bit
                                                  pmaddwd with "sse2"; generic IR, which
                                                  LLVM lowers for any target, with
                                                  "portable")
    simd_pack_i16(builder, a, b)                  <8 x i32> a, b -> <16 x i16>, each lane
                                                  saturated, a's lanes then b's (one
                                                  256-bit vpackssdw on x86 with AVX2, also
                                                  on AVX-512 CPUs; generic IR elsewhere)
    simd_lut256(builder, table, x)                <32 x i8> lookups table[x + 128] in a
                                                  256-byte table (vpshufb on x86 with
                                                  AVX2, tbl / tbx on aarch64 only: the
                                                  kernels that use it keep a scalar loop
                                                  for other CPUs)
    simd_as64(builder, value)                     an integer argument widened to i64
    simd_fn(module, name, ret, args)              an LLVM intrinsic, declared on first use
                                                  (emulated in generic IR under
                                                  QCC_SIMD_EMULATE)
    simd_cases(builder, key, cases)               a switch on an i64 key: one block per
                                                  (value, emit) of `cases`, each emitted by
                                                  emit(builder); other keys do nothing
    simd_literal(numba_type)                      the value of a literal argument, else None:
                                                  an intrinsic declared
                                                  `@intrinsic(prefer_literal=True)` sees a
                                                  caller's compile-time constant (a closure
                                                  constant, a literal) as a literal type and
                                                  emits only the cases it selects
    simd_call(address, args)                      (in jitted code) call the native function at
                                                  `address` (an int64, a `cfunc`'s address)
                                                  with the integers of the tuple `args` (an
                                                  array: its data address), as
                                                  void f(int64, ...): how a driver compiled
                                                  once runs per-case leaf kernels compiled
                                                  apart (`leaf_cfunc`)
    simd_copy(dst, src, nbytes)                   (in jitted code) memcpy between int64
                                                  addresses
    leaf_cfunc(n_args)                            the decorator of such a leaf: a cached
                                                  `cfunc` void(int64 x n_args)
    simd_f32_ptr(address), simd_f64_ptr, simd_i64_ptr, simd_i32_ptr, simd_i16_ptr,
    simd_i8_ptr, simd_u8_ptr                      (in jitted code) an int64 address as a
                                                  float32* / float64* / ... / uint8* (for
                                                  `numba.carray`: a leaf's arrays)
    simd_ptr(address, dtype)                      the same for a compile-time dtype name
                                                  ("u8", "i16", ...: one leaf template,
                                                  a leaf per dtype)
    simd_array(pointer, shape)                    (in jitted code) `numba.carray`: a C-order
                                                  array over such a pointer
    simd_min(a, b), simd_max(a, b)                min / max of two numbers
    simd_empty(shape, dtype)                      np.empty, C order
                                                  (these four are lowered in place: Numba's
                                                  carray, min, max and np.empty are overloads,
                                                  each compiled apart per argument type in
                                                  every process, ~40 ms each, a tenth of a
                                                  cold start; kernels use these instead)
    simd_dot_loop(builder, MR, NB, a, ast, w, wbs, kk, init, dot)
                                                  the K loop of an MR x NB GEMM tile: per
                                                  step each row's next 4 bytes broadcast,
                                                  each block's next weights vector loaded,
                                                  acc = dot(acc, row, weights); returns the
                                                  accumulators [MR][NB]

What the codegen target can run (`TARGET_ARCH`, `TARGET_FEATURES`: Numba's JIT target, its
host CPU features unless NUMBA_CPU_FEATURES names others) decides which forms a kernel
compiles; which one runs is chosen when a plan is bound, from `int8_gemm_path()`:

    "vnni"      AVX-512 VNNI `vpdpbusd` (int8_vnni; x86 with avx512vnni and avx512bw, Numba
                compiling for the host CPU itself)
    "avxvnni"   `vpdpbusd` on 256-bit registers (int8_madd; x86 with AVX-VNNI, the VEX
                form: Intel Alder Lake and later client CPUs, Sierra Forest, Arrow Lake;
                or with AVX-512 VNNI and VL, the EVEX form), the multiply-add path's tiles
                on bytes
    "dot"       `sdot` on bytes (int8_madd; aarch64 with the dot-product extension,
                ARMv8.2+: Neoverse N1 / V1, Cortex-A76 and later, Apple M1 and later; the
                default there)
    "avx2"      `vpmaddwd` on int16 (int8_madd; x86 with avx2)
    "sse2"      the same on 128-bit halves, SSE2's `pmaddwd` (int8_madd; every x86-64 CPU:
                the default of those without AVX2, x86-64-v2 and AVX1 CPUs, where LLVM
                lowers the portable form's widened products to `pmulld`: 32 of them a
                4 x 2 tile step, against 16 pmaddwd)
    "portable"  the same int16 multiply-add as generic vector IR (int8_madd; any CPU: LLVM
                vectorizes it for the target, e.g. NEON on aarch64)

"dot" also runs on CPUs without `sdot`, and "avxvnni" on x86 CPUs without it (the
instruction in generic IR, `SIMD_EMULATIONS`: correct, not fast): each is then offered last,
never the default, so that the tests run its code on every such host.

The best available path is the default; `QCC_INT8_GEMM=<path>` forces one the host can run
(the tests run every available path this way). `QCC_SIMD_EMULATE=avx512vnni` makes "vnni"
available on any CPU: `simd_fn` then gives, for each AVX-512 intrinsic of `SIMD_EMULATIONS`,
a function computing the same in generic IR, so that the VNNI kernels' code is tested on hosts
without the instructions (slowly; nothing cached on disk). Only numpy, numba and llvmlite
are used: the `--emit=numba` artifact inlines this module.
"""

from __future__ import annotations

import operator
import os

import numpy as np
from llvmlite import ir as _simd_ir
from numba import cfunc, types
from numba.core.imputils import lower_builtin
from numba.extending import intrinsic, type_callable


def _simd_target() -> tuple[str, frozenset[str]]:
    """(architecture, enabled features) of Numba's JIT codegen target."""
    try:
        import llvmlite.binding as llb
        from numba.core import config

        arch = llb.get_process_triple().split("-", 1)[0]
        if config.CPU_FEATURES is not None:
            text = config.CPU_FEATURES
        else:
            text = llb.get_host_cpu_features().flatten()
        feats = frozenset(f[1:] for f in text.split(",") if f.startswith("+"))
        return arch, feats
    except Exception:  # pragma: no cover - no feature information: the portable forms only
        return "unknown", frozenset()


TARGET_ARCH, TARGET_FEATURES = _simd_target()
X86 = TARGET_ARCH in ("x86_64", "i386", "i686")
HAS_AVX2 = X86 and "avx2" in TARGET_FEATURES
AARCH64 = TARGET_ARCH in ("aarch64", "arm64")  # Advanced SIMD (NEON) is part of every one


def _simd_features_known() -> bool:
    """TARGET_FEATURES are what Numba compiles for: the host CPU itself, or an explicit
    NUMBA_CPU_FEATURES (a carried cache for such a baseline). A NUMBA_CPU_NAME without
    NUMBA_CPU_FEATURES (e.g. haswell: Numba then keeps the host's feature string) counts as
    a portable target: no extension (VNNI, sdot) is assumed."""
    try:
        from numba.core import config

        return config.CPU_NAME in (None, "host") or bool(config.CPU_FEATURES)
    except Exception:  # pragma: no cover
        return False


def _simd_vnni_ok() -> bool:
    """AVX-512 VNNI (and BW) in what Numba compiles for."""
    return _simd_features_known() and X86 and {"avx512vnni", "avx512bw"} <= TARGET_FEATURES


SIMD_EMULATED = frozenset(
    f.strip() for f in os.environ.get("QCC_SIMD_EMULATE", "").split(",") if f.strip())
"""Target features whose instructions kernels emulate in generic IR ($QCC_SIMD_EMULATE, comma
separated; only "avx512vnni" exists): the VNNI path's code, with its instructions'
semantics, compiles and runs on any CPU, slowly, for tests on hosts without it
(`simd_fn`). Numba's on-disk cache is off while emulating (the emulated code would otherwise
be cached under the host's own CPU key)."""


HAS_VNNI = _simd_vnni_ok() or "avx512vnni" in SIMD_EMULATED


def _simd_neon_dot_ok() -> bool:
    """aarch64's `sdot` (FEAT_DotProd) in what Numba compiles for."""
    return (_simd_features_known() and TARGET_ARCH in ("aarch64", "arm64")
            and "dotprod" in TARGET_FEATURES)


HAS_NEON_DOT = _simd_neon_dot_ok()
"""The "dot" path's `sdot` is the target's instruction (else it is emulated in generic IR)."""


def _simd_avx_vnni_ok() -> bool:
    """`vpdpbusd` on 256-bit registers in what Numba compiles for: AVX-VNNI (its VEX form),
    or AVX-512 VNNI with VL (the EVEX form)."""
    return _simd_features_known() and X86 and (
        "avxvnni" in TARGET_FEATURES or {"avx512vnni", "avx512vl"} <= TARGET_FEATURES)


HAS_AVX_VNNI = _simd_avx_vnni_ok()
"""The "avxvnni" path's `vpdpbusd` (256-bit) is the target's instruction (else it is emulated
in generic IR)."""

INT8_GEMM_PATHS = tuple(p for p, ok in (("vnni", HAS_VNNI), ("avxvnni", HAS_AVX_VNNI),
                                        ("dot", HAS_NEON_DOT), ("avx2", HAS_AVX2),
                                        ("sse2", X86), ("portable", True),
                                        ("avxvnni", X86 and not HAS_AVX_VNNI),
                                        ("dot", not HAS_NEON_DOT)) if ok)
"""The integer GEMM paths this host can run, best first ("avxvnni" and "dot" last where their
instruction is emulated; "avxvnni" on x86 only)."""


def int8_gemm_path() -> str:
    """The path to bind: $QCC_INT8_GEMM if set (one of `INT8_GEMM_PATHS`), else the best."""
    unknown = SIMD_EMULATED - {"avx512vnni"}
    if unknown:
        raise ValueError(f"QCC_SIMD_EMULATE={','.join(sorted(SIMD_EMULATED))}: qcc emulates "
                         f"only avx512vnni, not {', '.join(sorted(unknown))}")
    forced = os.environ.get("QCC_INT8_GEMM", "").strip()
    if not forced:
        return INT8_GEMM_PATHS[0]
    if forced not in INT8_GEMM_PATHS:
        raise ValueError(
            f"QCC_INT8_GEMM={forced}: this CPU runs the integer GEMM paths "
            f"{', '.join(INT8_GEMM_PATHS)}"
        )
    return forced


MADD_ISA = {"portable": 0, "avx2": 1, "dot": 2, "avxvnni": 3, "sse2": 4}
"""The `isa` argument of the multiply-add GEMM kernels (int8_madd), by path: int16 pairs
(portable, avx2, sse2) or bytes by fours (dot, avxvnni)."""


def simd_as64(builder, value):
    """An integer IR value sign-extended to i64 (a boolean zero-extended: 0 or 1; as is when
    already 64 bits)."""
    i64 = _simd_ir.IntType(64)
    if value.type.width == 1:
        return builder.zext(value, i64)
    return builder.sext(value, i64) if value.type.width < 64 else value


def simd_splat(builder, scalar, vector_type):
    """`scalar` in every lane of `vector_type`."""
    ir = _simd_ir
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), None)
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), scalar,
                                 ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), zeros)


def simd_fn(module, name, ret, args, emulate=None):
    """The LLVM function `name` of `module` (an intrinsic), declared on first use; when the
    target features it needs are emulated (`SIMD_EMULATED`, or `emulate` true), an
    always-inlined function of `module` computing the same in generic IR
    (`SIMD_EMULATIONS`)."""
    if emulate is None:
        emulate = bool(SIMD_EMULATED)
    emulated = SIMD_EMULATIONS.get(name) if emulate else None
    if emulated is not None:
        name = "qcc.emulated." + name[len("llvm."):]
    fn = module.globals.get(name)
    if fn is None:
        fn = _simd_ir.Function(module, _simd_ir.FunctionType(ret, args), name)
        if emulated is not None:
            fn.linkage = "internal"
            fn.attributes.add("alwaysinline")
            builder = _simd_ir.IRBuilder(fn.append_basic_block("entry"))
            builder.ret(emulated(builder, *fn.args))
    return fn


# ---------------------------------------------------------------------------------------------
# AVX-512 instructions in generic IR (QCC_SIMD_EMULATE=avx512vnni), and aarch64's sdot (on
# every target without it): each function computes the intrinsic's result for the immediates
# qcc's kernels pass, and traps on others.


def _emu_mask(builder, mask, passthru, value):
    """`value` where bit l of the integer `mask` is set, else passthru (AVX-512 merge mask)."""
    bits = builder.bitcast(mask, _simd_ir.VectorType(_simd_ir.IntType(1), mask.type.width))
    return builder.select(bits, value, passthru)


def _emu_imm(builder, imm, allowed):
    """Trap unless the immediate `imm` is one of `allowed` (folds away once inlined)."""
    ok = [builder.icmp_unsigned("==", imm, _simd_ir.Constant(imm.type, a)) for a in allowed]
    while len(ok) > 1:
        ok = [builder.or_(ok[0], ok[1]), *ok[2:]]
    with builder.if_then(builder.not_(ok[0]), likely=False):
        builder.call(simd_fn(builder.module, "llvm.trap", _simd_ir.VoidType(), []), [])


def _emu_dot4(builder, acc, a, b, a_signed):
    """lane l of acc += Σ_t a.byte[4l + t]·s8(b.byte[4l + t]), a's bytes signed or
    unsigned, wrapping: the byte dot products (vpdpbusd, sdot)."""
    ir = _simd_ir
    n = acc.type.count
    wide = ir.VectorType(ir.IntType(32), 4 * n)
    bytes_ = ir.VectorType(ir.IntType(8), 4 * n)
    a = builder.bitcast(a, bytes_)
    prod = builder.mul(builder.sext(a, wide) if a_signed else builder.zext(a, wide),
                       builder.sext(builder.bitcast(b, bytes_), wide))
    for t in range(4):
        acc = builder.add(acc, builder.shuffle_vector(
            prod, prod, ir.Constant(ir.VectorType(ir.IntType(32), n),
                                    [4 * lane + t for lane in range(n)])))
    return acc


def _emu_vpdpbusd(builder, acc, a, b):
    """vpdpbusd: lane l += Σ_t u8(a.byte[4l + t])·s8(b.byte[4l + t]), wrapping."""
    return _emu_dot4(builder, acc, a, b, a_signed=False)


def _emu_sdot(builder, acc, a, b):
    """aarch64 sdot: lane l += Σ_t s8(a[4l + t])·s8(b[4l + t]), wrapping."""
    return _emu_dot4(builder, acc, a, b, a_signed=True)


def _emu_pmovs(builder, src, passthru, mask):
    """vpmovsqb / vpmovsdb: each lane saturated to int8; lanes past the source's are 0."""
    ir = _simd_ir
    n, out = src.type.count, passthru.type.count
    lo = ir.Constant(src.type, [-128] * n)
    hi = ir.Constant(src.type, [127] * n)
    v = builder.select(builder.icmp_signed("<", src, lo), lo, src)
    v = builder.select(builder.icmp_signed(">", v, hi), hi, v)
    v = _emu_mask(builder, mask, builder.shuffle_vector(
        passthru, passthru, ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(n)))),
        builder.trunc(v, ir.VectorType(ir.IntType(8), n)))
    if n == out:
        return v
    zeros = ir.Constant(v.type, None)
    return builder.shuffle_vector(v, zeros, ir.Constant(ir.VectorType(ir.IntType(32), out),
                                                        [min(i, n) for i in range(out)]))


def _emu_round(builder, v, mode):
    """v rounded to an integral float by the x86 rounding control `mode` (0 nearest even,
    1 down, 2 up, 3 toward zero): a selection the inliner folds for a constant mode."""
    ty = v.type
    tag = f"v{ty.count}f32"
    r = [builder.call(simd_fn(builder.module, f"llvm.{op}.{tag}", ty, [ty]), [v])
         for op in ("roundeven", "floor", "ceil", "trunc")]
    m = builder.and_(mode, _simd_ir.Constant(mode.type, 3))
    out = r[3]
    for k in (2, 1, 0):
        out = builder.select(builder.icmp_unsigned("==", m, _simd_ir.Constant(mode.type, k)),
                             r[k], out)
    return out


def _emu_reduce_ps(builder, src, imm, passthru, mask, sae):
    """vreduceps with imm[7:4] = 0 (no fraction bits kept) of finite src (infinities and NaN,
    which the manual special-cases, are not modelled): src − round(src), the rounding and the
    subtraction both by imm[1:0], or to nearest even when imm[2] selects MXCSR's (default)
    rounding. The subtraction is inexact only for a tiny src rounded away from 0 (an AVX-512
    host rounds 1e−30 − ceil(1e−30) up, to −(1 − 2^−24)): its nearest value and its error
    (TwoSum, exact in float32) give the directed one."""
    ir = _simd_ir
    _emu_imm(builder, imm, (0, 1, 2, 3, 4, 8, 9, 10, 11, 12))
    mode = builder.select(builder.icmp_unsigned("==", builder.and_(imm, ir.Constant(imm.type, 4)),
                                                ir.Constant(imm.type, 0)),
                          builder.and_(imm, ir.Constant(imm.type, 3)), ir.Constant(imm.type, 0))
    r = _emu_round(builder, src, mode)
    s = builder.fsub(src, r)
    # TwoSum of src and −r: s + err is the exact difference
    bb = builder.fsub(s, src)
    err = builder.fadd(builder.fsub(src, builder.fsub(s, bb)),
                       builder.fsub(builder.fsub(ir.Constant(r.type, None), r), bb))
    return _emu_mask(builder, mask, passthru, _emu_round_directed(builder, s, err, mode))


def _emu_round_directed(builder, s, err, mode):
    """The float32 value of the exact s + err (s: its nearest float32, err: the rest) rounded
    by the x86 rounding control `mode` (0 nearest even, 1 down, 2 up, 3 toward zero): s, or
    its neighbour on err's side (s ≠ 0 then: a difference that rounds to 0 is exact)."""
    ir = _simd_ir
    n = s.type.count
    vi = ir.VectorType(ir.IntType(32), n)
    zero = ir.Constant(s.type, None)
    off = ir.Constant(ir.VectorType(ir.IntType(1), n), None)
    m = builder.and_(mode, ir.Constant(mode.type, 3))

    def when(k, lanes):  # the lanes where mode k steps (a scalar mode: one of them holds)
        return builder.select(builder.icmp_unsigned("==", m, ir.Constant(mode.type, k)),
                              lanes, off)

    up, down = builder.fcmp_ordered(">", err, zero), builder.fcmp_ordered("<", err, zero)
    positive = builder.fcmp_ordered(">", s, zero)
    toward_neg, toward_pos = when(1, down), when(2, up)
    toward_zero = when(3, builder.select(positive, down, up))
    # one step in the bits: a magnitude one ulp smaller (bits − 1) or larger (bits + 1)
    smaller = builder.or_(toward_zero, builder.select(positive, toward_neg, toward_pos))
    larger = builder.select(positive, toward_pos, toward_neg)
    step = builder.select(smaller, ir.Constant(vi, [-1] * n),
                          builder.select(larger, ir.Constant(vi, [1] * n), ir.Constant(vi, None)))
    return builder.bitcast(builder.add(builder.bitcast(s, vi), step), s.type)


def _emu_cvtps2dq(builder, src, passthru, mask, rounding):
    """vcvtps2dq with an embedded rounding (8..11: nearest even, down, up, toward zero) or
    the default (4: nearest even); out of int32 range or NaN: INT32_MIN."""
    ir = _simd_ir
    _emu_imm(builder, rounding, (4, 8, 9, 10, 11))
    r = _emu_round(builder, src, builder.select(
        builder.icmp_unsigned("==", rounding, ir.Constant(rounding.type, 4)),
        ir.Constant(rounding.type, 0), rounding))
    n = src.type.count
    inside = builder.and_(builder.fcmp_ordered(">=", r, ir.Constant(src.type, [-2.0 ** 31] * n)),
                          builder.fcmp_ordered("<", r, ir.Constant(src.type, [2.0 ** 31] * n)))
    v = builder.select(inside, builder.fptosi(r, passthru.type),
                       ir.Constant(passthru.type, [-(1 << 31)] * n))
    return _emu_mask(builder, mask, passthru, v)


def _emu_range_ps(builder, a, b, imm, passthru, mask, sae):
    """vrangeps, magnitude forms with a forced sign: imm[1:0] 2 / 3 (the operand of smaller /
    larger magnitude), imm[3:2] 2 (sign cleared) or 3 (set): ±min(|a|, |b|) or ±max(|a|, |b|),
    which no tie of magnitudes changes. The other forms (value compares, the sign of a or of
    the selected operand, whose equal-magnitude cases the manual special-cases) trap."""
    ir = _simd_ir
    _emu_imm(builder, imm, (10, 11, 14, 15))
    ty = a.type
    fabs = simd_fn(builder.module, f"llvm.fabs.v{ty.count}f32", ty, [ty])
    aa, ab = builder.call(fabs, [a]), builder.call(fabs, [b])
    larger = builder.icmp_unsigned("==", builder.and_(imm, ir.Constant(imm.type, 1)),
                                   ir.Constant(imm.type, 1))
    take_a = builder.select(larger, builder.fcmp_unordered(">=", aa, ab),
                            builder.fcmp_unordered("<=", aa, ab))
    v = builder.select(take_a, aa, ab)
    negative = builder.icmp_unsigned("==", builder.and_(imm, ir.Constant(imm.type, 12)),
                                     ir.Constant(imm.type, 12))
    v = builder.select(negative, builder.fsub(ir.Constant(ty, [-0.0] * ty.count), v), v)
    return _emu_mask(builder, mask, passthru, v)


SIMD_EMULATIONS = {
    "llvm.aarch64.neon.sdot.v4i32.v16i8": _emu_sdot,
    "llvm.x86.avx512.vpdpbusd.512": _emu_vpdpbusd,
    "llvm.x86.avx512.vpdpbusd.256": _emu_vpdpbusd,
    "llvm.x86.avx512.mask.pmovs.qb.512": _emu_pmovs,
    "llvm.x86.avx512.mask.pmovs.db.512": _emu_pmovs,
    "llvm.x86.avx512.mask.reduce.ps.512": _emu_reduce_ps,
    "llvm.x86.avx512.mask.cvtps2dq.512": _emu_cvtps2dq,
    "llvm.x86.avx512.mask.range.ps.512": _emu_range_ps,
}
"""The AVX-512 intrinsics qcc's VNNI kernels call, the 256-bit vpdpbusd (the "avxvnni"
path's) and aarch64's sdot (the "dot" path's), as generic IR (`simd_fn`)."""


def simd_madd_i16(builder, a, b, isa: str):
    """<16 x i16> a, b -> <8 x i32>: lane l = a[2l]·b[2l] + a[2l+1]·b[2l+1], exact (each
    product and the pair's sum fit in int32 unless both products are (−2^15)², which int8
    data never gives). isa "avx2": vpmaddwd; "sse2": pmaddwd on each 128-bit half (x86
    only); "portable": even and odd lanes widened, multiplied and added in generic IR."""
    ir = _simd_ir
    i32 = ir.IntType(32)
    v8 = ir.VectorType(i32, 8)
    if isa == "avx2":
        v16h = ir.VectorType(ir.IntType(16), 16)
        fn = simd_fn(builder.module, "llvm.x86.avx2.pmadd.wd", v8, [v16h, v16h])
        return builder.call(fn, [a, b])
    if isa == "sse2":
        v8h, v4 = ir.VectorType(ir.IntType(16), 8), ir.VectorType(i32, 4)
        fn = simd_fn(builder.module, "llvm.x86.sse2.pmadd.wd", v4, [v8h, v8h])

        def half(v, h):
            return builder.shuffle_vector(v, v, ir.Constant(v8, [8 * h + i for i in range(8)]))

        lo, hi = (builder.call(fn, [half(a, h), half(b, h)]) for h in (0, 1))
        return builder.shuffle_vector(lo, hi, ir.Constant(v8, list(range(8))))
    even = ir.Constant(ir.VectorType(i32, 8), [2 * i for i in range(8)])
    odd = ir.Constant(ir.VectorType(i32, 8), [2 * i + 1 for i in range(8)])
    undef = ir.Constant(a.type, ir.Undefined)

    def part(idx):
        x = builder.sext(builder.shuffle_vector(a, undef, idx), v8)
        y = builder.sext(builder.shuffle_vector(b, undef, idx), v8)
        return builder.mul(x, y)

    return builder.add(part(even), part(odd))


def simd_pack_i16(builder, a, b):
    """Two <8 x i32> vectors -> <16 x i16>: a's lanes then b's, each clamped to int16. On x86
    with AVX2 one 256-bit `vpackssdw` and a shuffle of its 64-bit quarters into order: the
    generic form (the vectors joined as <16 x i32>, clamped, truncated) is what LLVM narrows
    in zmm registers on an AVX-512 CPU, and a 512-bit instruction in flight slows the 256-bit
    multiply-adds around it (the avx2 GEMM path's epilogue, on a CPU with AVX-512 and no
    VNNI: its GEMMs ran 1.2-1.9x slower so). Elsewhere the generic form (sqxtn on NEON)."""
    ir = _simd_ir
    i16, i32 = ir.IntType(16), ir.IntType(32)
    v16 = ir.VectorType(i16, 16)
    if HAS_AVX2:
        pack = simd_fn(builder.module, "llvm.x86.avx2.packssdw", v16, [a.type, b.type])
        # vpackssdw works per 128-bit half: a0-3 b0-3 | a4-7 b4-7
        order = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]
        return builder.shuffle_vector(builder.call(pack, [a, b]), ir.Constant(v16, None),
                                      ir.Constant(ir.VectorType(i32, 16), order))
    v = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, 16), list(range(16))))
    lo = ir.Constant(v.type, [-(1 << 15)] * 16)
    hi = ir.Constant(v.type, [(1 << 15) - 1] * 16)
    v = builder.select(builder.icmp_signed("<", v, lo), lo, v)
    v = builder.select(builder.icmp_signed(">", v, hi), hi, v)
    return builder.trunc(v, v16)


def simd_lut256(builder, table, x):
    """<32 x i8> int8 x -> <32 x i8>: lane l = the byte at table + x[l] + 128 (table: an i64
    address of 256 bytes). x86 with AVX2 (`HAS_AVX2`) and aarch64 (`AARCH64`) only; kernels
    keep a scalar loop for other CPUs. On x86 the table's 16 rows of 16 bytes each go to
    both 128-bit halves, `vpshufb` looks up the low nibble of x + 128 in each, and a row's
    lookups are kept where the high nibble names the row: 3 instructions a row, ~1.6 an
    output, against a load and a store an output for the scalar lookup. On aarch64, per 16
    lanes, `tbl` looks x + 128 up in the table's first 64 bytes (four registers) and three
    `tbx` the rest, 64 bytes each, at x + 128 − 64·k (an index past 63 keeps the lane: each
    lane takes its byte from the one quarter that holds it): 4 instructions for 16 outputs
    (`_simd_lut256_neon`)."""
    ir = _simd_ir
    i8 = ir.IntType(8)
    v32, v16 = ir.VectorType(i8, 32), ir.VectorType(i8, 16)
    index = builder.xor(x, ir.Constant(v32, [-128] * 32))  # x + 128 as an unsigned byte
    if AARCH64:
        return _simd_lut256_neon(builder, table, index)
    pshufb = simd_fn(builder.module, "llvm.x86.avx2.pshuf.b", v32, [v32, v32])
    low = builder.and_(index, ir.Constant(v32, [15] * 32))
    high = builder.lshr(index, ir.Constant(v32, [4] * 32))
    both = ir.Constant(ir.VectorType(ir.IntType(32), 32), list(range(16)) * 2)
    out = ir.Constant(v32, None)
    for row in range(16):
        at = builder.add(table, ir.Constant(table.type, 16 * row))
        bytes16 = builder.load(builder.inttoptr(at, v16.as_pointer()), align=1)
        looked = builder.call(pshufb, [builder.shuffle_vector(bytes16, bytes16, both), low])
        mine = builder.icmp_unsigned("==", high, ir.Constant(v32, [row] * 32))
        out = builder.select(mine, looked, out)
    return out


def _simd_lut256_neon(builder, table, index):
    """`simd_lut256` on aarch64, from index = x + 128 (<32 x u8>): NEON `tbl` / `tbx` with four
    table registers, two 16-lane halves."""
    ir = _simd_ir
    i8 = ir.IntType(8)
    v16 = ir.VectorType(i8, 16)
    tbl = simd_fn(builder.module, "llvm.aarch64.neon.tbl4.v16i8", v16, [v16] * 5)
    tbx = simd_fn(builder.module, "llvm.aarch64.neon.tbx4.v16i8", v16, [v16] * 6)
    rows = [builder.load(builder.inttoptr(builder.add(table, ir.Constant(table.type, 16 * r)),
                                          v16.as_pointer()), align=1) for r in range(16)]
    halves = []
    for h in range(2):
        lanes = ir.Constant(ir.VectorType(ir.IntType(32), 16), list(range(16 * h, 16 * h + 16)))
        idx = builder.shuffle_vector(index, index, lanes)
        out = builder.call(tbl, [*rows[:4], idx])
        for k in range(1, 4):  # quarter k: indices 64k .. 64k + 63 (the others wrap past 63)
            part = builder.sub(idx, ir.Constant(v16, [64 * k] * 16))
            out = builder.call(tbx, [out, *rows[4 * k:4 * k + 4], part])
        halves.append(out)
    return builder.shuffle_vector(halves[0], halves[1],
                                  ir.Constant(ir.VectorType(ir.IntType(32), 32), list(range(32))))


def simd_cases(builder, key, cases):
    """Emit `switch key` with one block per (value, emit) of `cases` (emit(builder) writes
    the case's body, the builder positioned in it); every case, and the default, continue
    after the switch. How one compiled intrinsic holds the tile shapes a kernel meets at run
    time (the edge tiles of a GEMM); what a kernel knows when it is bound (its epilogue, its
    isa) it passes as a literal instead, and the intrinsic leaves the other cases out
    (`simd_literal`)."""
    ir = _simd_ir
    end = builder.append_basic_block("cases_end")
    switch = builder.switch(key, end)
    for value, emit in cases:
        block = builder.append_basic_block(f"case_{value}")
        switch.add_case(ir.Constant(ir.IntType(64), value), block)
        builder.position_at_end(block)
        emit(builder)
        builder.branch(end)
    builder.position_at_end(end)


def simd_literal(numba_type):
    """The value of `numba_type` when it is a literal type (an intrinsic declared with
    `prefer_literal=True` is typed with literals for its callers' compile-time constants:
    literal numbers, closure constants, module constants), else None. Intrinsics that hold
    several tile shapes or epilogues behind `simd_cases` emit only the cases a literal
    selects: every case costs LLVM time in every function the intrinsic is compiled into."""
    return getattr(numba_type, "literal_value", None)


@intrinsic
def simd_call(typingctx, address, args):
    """Call the native function at `address` (int64) with the integers of the tuple `args`,
    each widened to int64 (an array passes its data address, and the tuple keeps the array
    alive through the call): void f(int64, ...), the C signature of a `leaf_cfunc`. A kernel
    whose hot loop differs per case (a filter size, an epilogue) is then one driver,
    compiled once, and a small leaf per case, compiled apart (Numba links every jitted
    callee into its caller and optimizes and compiles it again there: helpers shared by the
    cases would cost their compile time in every case). The call is indirect: ~2 ns."""
    sig = types.void(address, args)

    def codegen(context, builder, signature, values):
        ir = _simd_ir
        i64 = ir.IntType(64)
        n = len(signature.args[1])
        vals = []
        for i, ty in enumerate(signature.args[1]):
            v = builder.extract_value(values[1], i)
            if isinstance(ty, types.Array):
                v = builder.ptrtoint(context.make_array(ty)(context, builder, value=v).data, i64)
            vals.append(simd_as64(builder, v))
        fnty = ir.FunctionType(ir.VoidType(), [i64] * n)
        builder.call(builder.inttoptr(simd_as64(builder, values[0]), fnty.as_pointer()), vals)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def simd_copy(typingctx, dst_addr, src_addr, nbytes):
    """(In jitted code) copy nbytes bytes from src_addr to dst_addr (int64 addresses; the
    ranges do not overlap): `llvm.memcpy`, which compiles in no time where a copy loop is
    vectorized, versioned and unrolled by LLVM (a few tenths of a second per loop)."""
    sig = types.void(dst_addr, src_addr, nbytes)

    def codegen(context, builder, signature, values):
        ir = _simd_ir
        i8p = ir.IntType(8).as_pointer()
        i64 = ir.IntType(64)
        fn = builder.module.declare_intrinsic("llvm.memcpy", [i8p, i8p, i64])
        dst, src, n = (simd_as64(builder, v) for v in values)
        builder.call(fn, [builder.inttoptr(dst, i8p), builder.inttoptr(src, i8p), n,
                          ir.Constant(ir.IntType(1), 0)])
        return context.get_dummy_value()

    return sig, codegen


def _simd_to_pointer(pointee):
    """The codegen of an address (the first argument) as a pointer to `pointee`."""

    def codegen(context, builder, signature, values):
        target = context.get_value_type(pointee).as_pointer()
        return builder.inttoptr(simd_as64(builder, values[0]), target)

    return codegen


def _simd_pointer(pointee):
    @intrinsic
    def to_pointer(typingctx, address):
        return types.CPointer(pointee)(address), _simd_to_pointer(pointee)

    return to_pointer


_SIMD_POINTEES = {"u8": types.uint8, "i8": types.int8, "i16": types.int16, "i32": types.int32,
                  "i64": types.int64, "f32": types.float32}


@intrinsic(prefer_literal=True)
def simd_ptr(typingctx, address, dtype):
    """(In jitted code) the int64 address as a pointer to `dtype`, a compile-time string
    ("u8", "i8", "i16", "i32", "i64", "f32"; e.g. a closure constant of a leaf made per
    dtype from one template)."""
    pointee = _SIMD_POINTEES.get(simd_literal(dtype))
    if pointee is None:
        return None
    return types.CPointer(pointee)(address, dtype), _simd_to_pointer(pointee)


def simd_min(a, b):
    """min(a, b) of two numbers; in jitted code one compare and select, lowered in place."""
    return min(a, b)


def simd_max(a, b):
    """max(a, b) of two numbers; in jitted code one compare and select, lowered in place."""
    return max(a, b)


def simd_empty(shape, dtype):
    """np.empty(shape, dtype) (C order); in jitted code lowered in place."""
    return np.empty(shape, dtype)


# Numba's min, max and np.empty are overloads: each is compiled apart (a whole pipeline,
# 30-60 ms) for every argument type it meets, in every process, on every cold start, and
# is not in the on-disk cache. The three functions above are lowered in place instead
# (`type_callable` + `lower_builtin`), as Numba's own builtins used to be, so that a kernel's
# cold compile does not pay for them; from Python they are the functions they name (kernels'
# `.py_func` run there too).


def _simd_minmax_typer(context):
    def typer(a, b):
        if not all(isinstance(t, (types.Number, types.Boolean)) for t in (a, b)):
            return None
        return context.unify_types(a, b)

    return typer


def _simd_minmax_lowering(cmpop):
    """Python's min (cmpop <) / max (cmpop >) of two values, as Numba's `do_minmax`: both
    cast to their unified type, then b if cmpop(b, a) else a."""

    def lower(context, builder, signature, values):
        ty = signature.return_type
        x = context.cast(builder, values[0], signature.args[0], ty)
        y = context.cast(builder, values[1], signature.args[1], ty)
        pick = context.get_function(cmpop, types.boolean(ty, ty))(builder, (y, x))
        return builder.select(pick, y, x)

    return lower


def _simd_empty_typer(context):
    """simd_empty(shape, dtype): shape an integer or a tuple of integers, dtype a NumPy scalar
    type (np.int8, ...) or a dtype object."""

    def typer(shape, dtype):
        if isinstance(dtype, types.NumberClass):
            nb_dtype = dtype.instance_type
        elif isinstance(dtype, types.DType):
            nb_dtype = dtype.dtype
        else:
            return None
        if isinstance(shape, types.Integer):
            ndim = 1
        elif isinstance(shape, types.BaseTuple) and all(
                isinstance(t, types.Integer) for t in shape):
            ndim = len(shape)
        else:
            return None
        return types.Array(nb_dtype, ndim, "C")

    return typer


def _simd_empty_lowering(context, builder, signature, values):
    from numba.np.arrayobj import _empty_nd_impl, _parse_empty_args

    array_type, dims = _parse_empty_args(context, builder, signature, values)
    return _empty_nd_impl(context, builder, array_type, dims)._getvalue()


type_callable(simd_min)(_simd_minmax_typer)
type_callable(simd_max)(_simd_minmax_typer)
type_callable(simd_empty)(_simd_empty_typer)
lower_builtin(simd_min, types.Any, types.Any)(_simd_minmax_lowering(operator.lt))
lower_builtin(simd_max, types.Any, types.Any)(_simd_minmax_lowering(operator.gt))
lower_builtin(simd_empty, types.Any, types.Any)(_simd_empty_lowering)


def _simd_array_intrinsic():
    """`numba.carray(pointer, shape)` (C order) without its overload's compile per pointer
    type and rank: the intrinsic that overload calls."""
    try:
        from numba.np.arrayobj import get_cfarray_intrinsic

        return get_cfarray_intrinsic("C", None)
    except ImportError:  # pragma: no cover - another Numba: its public carray
        from numba import carray

        return carray


simd_array = _simd_array_intrinsic()


simd_f32_ptr = _simd_pointer(types.float32)
simd_f64_ptr = _simd_pointer(types.float64)
simd_i64_ptr = _simd_pointer(types.int64)
simd_i8_ptr = _simd_pointer(types.int8)
simd_u8_ptr = _simd_pointer(types.uint8)
simd_i16_ptr = _simd_pointer(types.int16)
simd_i32_ptr = _simd_pointer(types.int32)


def leaf_cfunc(n_args: int, cache: bool = True, fastmath=False):
    """Decorator: a leaf kernel for `simd_call`, a `cfunc` void(int64 x n_args) in Numba's
    on-disk cache (a closure's constants are part of its cache key; `cache=False`: not
    cached, its LLVM IR kept for inspection; `fastmath` as `njit`'s). It compiles when
    decorated: make leaves when a step first runs, not when it is bound (the first run's
    helper processes then compile them in parallel)."""
    return cfunc(types.void(*(types.int64,) * n_args), cache=cache and not SIMD_EMULATED,
                 fastmath=fastmath)


def simd_dot_loop(builder, MR, NB, a0, ast, w0, wbs, kk, init, dot):
    """The K loop of an MR × NB GEMM tile over kk steps, accumulators from init[j] in phi
    nodes. Step i: row r's 4 bytes at a0 + r·ast + 4i are broadcast to every 32-bit lane of
    the accumulator type (`dot.lanes` lanes), block j's weights vector (`dot.wtype`) loaded at
    w0 + j·wbs + i·`dot.wbytes`; acc[r][j] = dot(builder, acc, row, weights). A
    `dot.row(builder, word)`, where given, maps each row's 4 bytes (an i32) before the
    broadcast. Returns the final accumulators [MR][NB], the builder after the loop."""
    ir = _simd_ir
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    vacc = ir.VectorType(i32, dot.lanes)
    a_p = builder.inttoptr(a0, i8.as_pointer())
    w_p = builder.inttoptr(w0, i8.as_pointer())
    arows = [builder.gep(a_p, [builder.mul(ast, ir.Constant(i64, r))]) for r in range(MR)]
    wblks = [builder.gep(w_p, [builder.mul(wbs, ir.Constant(i64, j))]) for j in range(NB)]
    pre = builder.block
    loop = builder.append_basic_block("dot_loop")
    done = builder.append_basic_block("dot_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    iv = builder.phi(i64)
    iv.add_incoming(ir.Constant(i64, 0), pre)
    accs = []
    for _ in range(MR):
        row = []
        for j in range(NB):
            ph = builder.phi(vacc)
            ph.add_incoming(init[j], pre)
            row.append(ph)
        accs.append(row)
    woff = builder.mul(iv, ir.Constant(i64, dot.wbytes))
    wv = [builder.load(builder.bitcast(builder.gep(wblks[j], [woff]), dot.wtype.as_pointer()),
                       align=2) for j in range(NB)]
    aoff = builder.mul(iv, ir.Constant(i64, 4))
    new = []
    for r in range(MR):
        word = builder.load(builder.bitcast(builder.gep(arows[r], [aoff]), i32.as_pointer()),
                            align=1)
        if hasattr(dot, "row"):
            word = dot.row(builder, word)
        b = simd_splat(builder, word, vacc)
        new.append([dot(builder, accs[r][j], b, wv[j]) for j in range(NB)])
    iv2 = builder.add(iv, ir.Constant(i64, 1))
    cur = builder.block
    iv.add_incoming(iv2, cur)
    for r in range(MR):
        for j in range(NB):
            accs[r][j].add_incoming(new[r][j], cur)
    builder.cbranch(builder.icmp_signed("<", iv2, kk), loop, done)
    builder.position_at_end(done)
    return new
