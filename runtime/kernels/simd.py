"""The SIMD primitives qcc's integer kernels emit, and which integer GEMM path a host runs.

Kernels that need an instruction LLVM would not pick by itself (a dot product of bytes, a
16-bit multiply-add) emit LLVM IR through Numba intrinsics; they take these primitives from
here, never a target intrinsic by name, so every path has a portable form:

    simd_splat(builder, scalar, vector_type)      the scalar in every lane
    simd_madd_i16(builder, a, b, isa)             <16 x i16> × <16 x i16> -> <8 x i32>:
                                                  lane l = a[2l]·b[2l] + a[2l+1]·b[2l+1]
                                                  (vpmaddwd with isa "avx2"; generic IR,
                                                  which LLVM lowers for any target, with
                                                  "portable")
    simd_as64(builder, value)                     an integer argument widened to i64

What the codegen target can run (`TARGET_ARCH`, `TARGET_FEATURES`: Numba's JIT target, its
host CPU features unless NUMBA_CPU_FEATURES names others) decides which forms a kernel
compiles; which one runs is chosen when a plan is bound, from `int8_gemm_path()`:

    "vnni"      AVX-512 VNNI `vpdpbusd` (int8_vnni; x86 with avx512vnni and avx512bw, Numba
                compiling for the host CPU itself)
    "avx2"      `vpmaddwd` on int16 (int8_madd; x86 with avx2)
    "portable"  the same int16 multiply-add as generic vector IR (int8_madd; any CPU: LLVM
                vectorizes it for the target, e.g. NEON on aarch64)

The best available path is the default; `QCC_INT8_GEMM=<path>` forces one the host can run
(the tests run every available path this way). Only numpy, numba and llvmlite are used: the
`--emit=numba` artifact inlines this module.
"""

from __future__ import annotations

import os

from llvmlite import ir as _simd_ir


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


def _simd_vnni_ok() -> bool:
    """AVX-512 VNNI (and BW) on the host, and Numba compiling for the host CPU itself."""
    try:
        from numba.core import config

        if config.CPU_NAME not in (None, "host") or config.CPU_FEATURES:
            return False  # a portable cache / explicit target: do not assume the host's ISA
    except Exception:  # pragma: no cover
        return False
    return X86 and {"avx512vnni", "avx512bw"} <= TARGET_FEATURES


HAS_VNNI = _simd_vnni_ok()

INT8_GEMM_PATHS = tuple(p for p, ok in (("vnni", HAS_VNNI), ("avx2", HAS_AVX2),
                                        ("portable", True)) if ok)
"""The integer GEMM paths this host can run, best first."""


def int8_gemm_path() -> str:
    """The path to bind: $QCC_INT8_GEMM if set (one of `INT8_GEMM_PATHS`), else the best."""
    forced = os.environ.get("QCC_INT8_GEMM", "").strip()
    if not forced:
        return INT8_GEMM_PATHS[0]
    if forced not in INT8_GEMM_PATHS:
        raise ValueError(
            f"QCC_INT8_GEMM={forced}: this CPU runs the integer GEMM paths "
            f"{', '.join(INT8_GEMM_PATHS)}"
        )
    return forced


MADD_ISA = {"portable": 0, "avx2": 1}
"""The `isa` argument of the int16 multiply-add kernels (int8_madd), by path."""


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


def _simd_fn(module, name, ret, args):
    fn = module.globals.get(name)
    if fn is None:
        fn = _simd_ir.Function(module, _simd_ir.FunctionType(ret, args), name)
    return fn


def simd_madd_i16(builder, a, b, isa: str):
    """<16 x i16> a, b -> <8 x i32>: lane l = a[2l]·b[2l] + a[2l+1]·b[2l+1], exact (each
    product and the pair's sum fit in int32 unless both products are (−2^15)², which int8
    data never gives). isa "avx2": vpmaddwd; "portable": even and odd lanes widened,
    multiplied and added in generic IR."""
    ir = _simd_ir
    i32 = ir.IntType(32)
    v8 = ir.VectorType(i32, 8)
    if isa == "avx2":
        v16h = ir.VectorType(ir.IntType(16), 16)
        fn = _simd_fn(builder.module, "llvm.x86.avx2.pmadd.wd", v8, [v16h, v16h])
        return builder.call(fn, [a, b])
    even = ir.Constant(ir.VectorType(i32, 8), [2 * i for i in range(8)])
    odd = ir.Constant(ir.VectorType(i32, 8), [2 * i + 1 for i in range(8)])
    undef = ir.Constant(a.type, ir.Undefined)

    def part(idx):
        x = builder.sext(builder.shuffle_vector(a, undef, idx), v8)
        y = builder.sext(builder.shuffle_vector(b, undef, idx), v8)
        return builder.mul(x, y)

    return builder.add(part(even), part(odd))
