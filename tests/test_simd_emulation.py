"""The AVX-512 instructions of the VNNI path in generic IR (`simd.SIMD_EMULATIONS`, used with
QCC_SIMD_EMULATE=avx512vnni), the 256-bit vpdpbusd (the "avxvnni" path's, emulated on x86
targets without it) and aarch64's sdot (the "dot" path's, emulated on every target
without it): each one against a NumPy model of the instruction as Intel's and Arm's manuals
define it, for every immediate the emulation implements, on any host; where the host runs
the instruction itself, against the instruction too. The kernels built on them are checked
against LiteRT's BUILTIN_REF under emulation by test_vnni_emulated.py, and on every host for
"dot" and on x86 for "avxvnni" (test_runtime_int8's every-path tests)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from llvmlite import ir

from qcc.runtime.kernels import simd

I8, I16, I32, I64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
F32 = ir.FloatType()
V16 = ir.VectorType(I32, 16)
V4 = ir.VectorType(I32, 4)
V8Q = ir.VectorType(I64, 8)
V16B = ir.VectorType(I8, 16)
VF = ir.VectorType(F32, 16)

NATIVE_VNNI = simd.X86 and {"avx512vnni", "avx512bw"} <= simd.TARGET_FEATURES
"""The host itself runs the instructions (then both forms are compared)."""
NATIVE_SDOT = simd.HAS_NEON_DOT
"""The codegen target has sdot (aarch64 with dot products, named by NUMBA_CPU_FEATURES under
an emulator: qemu runs it, LLVM's host detection there does not see it)."""

_LIBRARIES = []  # compiled test functions stay alive for the session


def _compiled(name, ret, spec, emulate):
    """A native function void f(out*, in0*, in1*, ...) computing out = name(args): `spec` lists
    the arguments, a type (a vector loaded from the next pointer) or (type, value) (an
    immediate); through `simd.simd_fn`, the instruction emulated or not."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    ctx = cpu_target.target_context
    mod = ctx.create_module(f"emu_test_{name}")
    loaded = [t for t in spec if not isinstance(t, tuple)]
    fnty = ir.FunctionType(ir.VoidType(), [I8.as_pointer()] * (1 + len(loaded)))
    fn = ir.Function(mod, fnty, "emu_test")
    b = ir.IRBuilder(fn.append_basic_block())
    ptrs = iter(fn.args[1:])
    vals = [ir.Constant(*t) if isinstance(t, tuple)
            else b.load(b.bitcast(next(ptrs), t.as_pointer()), align=1) for t in spec]
    args = [t[0] if isinstance(t, tuple) else t for t in spec]
    callee = simd.simd_fn(mod, name, ret, args, emulate=emulate)
    b.store(b.call(callee, vals), b.bitcast(fn.args[0], ret.as_pointer()), align=1)
    b.ret_void()
    with global_compiler_lock:
        lib = ctx.codegen().create_library(f"emu_test_{name}")
        lib.add_ir_module(mod)
        lib.finalize()
    _LIBRARIES.append(lib)
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (1 + len(loaded)))(
        lib.get_pointer_to_function("emu_test"))


def _run(name, ret_dtype, n_out, ret, spec, *arrays, native=NATIVE_VNNI):
    """{True: the emulated result, False: the instruction's (only where the host has it:
    `native`)}."""
    results = {}
    for emulate in (True, False):
        if not emulate and not native:
            continue
        out = np.zeros(n_out, ret_dtype)
        f = _compiled(name, ret, spec, emulate)
        f(out.ctypes.data, *[a.ctypes.data for a in arrays])
        results[emulate] = out
    return results


def _check(results, want):
    assert np.array_equal(results[True], want, equal_nan=want.dtype.kind == "f")
    if False in results:  # the instruction itself agrees
        assert np.array_equal(results[False], want, equal_nan=want.dtype.kind == "f")


def _lanes(mask, n):
    return np.array([(int(mask) >> i) & 1 for i in range(n)], bool)


@pytest.mark.parametrize("lanes", [16, 8])
def test_vpdpbusd(lanes):
    """lane l = acc[l] + Σ_t u8(a[4l + t])·s8(b[4l + t]), wrapping in int32: the 512-bit form
    (the VNNI path's) and the 256-bit one (the "avxvnni" path's: AVX-VNNI's VEX form, or
    AVX-512 VNNI with VL)."""
    native = NATIVE_VNNI if lanes == 16 else simd.HAS_AVX_VNNI
    vec = ir.VectorType(I32, lanes)
    rng = np.random.default_rng(lanes)
    for it in range(40):
        acc = rng.integers(-(1 << 31), 1 << 31, lanes, dtype=np.int64).astype(np.int32)
        if it % 4 == 0:  # wrap-around: sums past INT32_MAX
            acc[:] = np.int32((1 << 31) - 100)
        a = rng.integers(0, 256, 4 * lanes).astype(np.uint8)
        b = rng.integers(-128, 128, 4 * lanes).astype(np.int8)
        if it % 5 == 0:
            a[:], b[:] = 255, -128  # the extreme products
        want = acc.astype(np.int64) + (a.astype(np.int64) * b).reshape(lanes, 4).sum(1)
        want = ((want + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
        _check(_run(f"llvm.x86.avx512.vpdpbusd.{lanes * 32}", np.int32, lanes, vec,
                    [vec] * 3, acc, a, b, native=native), want)


def test_sdot():
    """aarch64 sdot (vector, 4S): lane l = acc[l] + Σ_t s8(a[4l + t])·s8(b[4l + t]), wrapping
    in int32."""
    rng = np.random.default_rng(5)
    for it in range(40):
        acc = rng.integers(-(1 << 31), 1 << 31, 4, dtype=np.int64).astype(np.int32)
        if it % 4 == 0:  # wrap-around: sums past INT32_MAX
            acc[:] = np.int32((1 << 31) - 100)
        a = rng.integers(-128, 128, 16).astype(np.int8)
        b = rng.integers(-128, 128, 16).astype(np.int8)
        if it % 5 == 0:
            a[:], b[:] = -128, -128  # the extreme products
        want = acc.astype(np.int64) + (a.astype(np.int64) * b).reshape(4, 4).sum(1)
        want = ((want + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
        _check(_run("llvm.aarch64.neon.sdot.v4i32.v16i8", np.int32, 4, V4, [V4, V16B, V16B],
                    acc, a, b, native=NATIVE_SDOT), want)


@pytest.mark.parametrize("kind", ["qb", "db"])
def test_pmovs(kind):
    """vpmovsqb / vpmovsdb: lanes saturated to int8 where the mask bit is set, else the
    pass-through byte; the bytes past the source's lanes are 0."""
    rng = np.random.default_rng(1)
    src_t, n, mask_t = (V8Q, 8, I8) if kind == "qb" else (V16, 16, I16)
    dtype = np.int64 if kind == "qb" else np.int32
    for mask in (-1, 0, 0x5A, 0x33 if kind == "qb" else 0x3C5A):
        lim = 1 << (62 if kind == "qb" else 30)
        src = rng.integers(-lim, lim, n).astype(dtype)
        src[: 6] = [-129, -128, 127, 128, 0, -1]
        passthru = rng.integers(-128, 128, 16).astype(np.int8)
        sat = np.clip(src, -128, 127).astype(np.int8)
        want = np.zeros(16, np.int8)
        want[:n] = np.where(_lanes(mask & ((1 << n) - 1), n), sat, passthru[:n])
        _check(_run(f"llvm.x86.avx512.mask.pmovs.{kind}.512", np.int8, 16, V16B,
                    [src_t, V16B, (mask_t, mask)], src, passthru), want)


_ROUND = {0: np.rint, 1: np.floor, 2: np.ceil, 3: np.trunc}


def _directed_difference(x, r, mode):
    """x − r (float32 arrays) exactly (as fractions), rounded to float32 by the x86 rounding
    control `mode` (0 nearest even: numpy's float32 subtraction; 1 down, 2 up, 3 toward
    zero)."""
    from fractions import Fraction

    nearest = x - r
    if mode == 0:
        return nearest
    out = nearest.copy()
    for i, (a, b, t) in enumerate(zip(x, r, nearest)):
        exact = Fraction(float(a)) - Fraction(float(b))
        below = t if Fraction(float(t)) <= exact else np.nextafter(t, np.float32(-np.inf))
        above = below if Fraction(float(below)) == exact else np.nextafter(below,
                                                                            np.float32(np.inf))
        out[i] = {1: below, 2: above, 3: below if exact >= 0 else above}[mode]
    return out


def test_directed_rounding_of_the_definition():
    """The test's own rounding: 1e−30 − 1 lies between float32 −1 and −(1 − 2^−24)."""
    x = np.array([1e-30, -1e-30, 2.5], np.float32)
    r = np.array([1, -1, 2], np.float32)
    below = np.float32(1 - 2.0 ** -24)
    assert list(_directed_difference(x, r, 0)) == [-1, 1, 0.5]
    assert list(_directed_difference(x, r, 1)) == [-1, below, 0.5]
    assert list(_directed_difference(x, r, 2)) == [-below, 1, 0.5]
    assert list(_directed_difference(x, r, 3)) == [-below, below, 0.5]


def _floats(rng):
    x = (rng.standard_normal(16) * 300).astype(np.float32)
    x[:10] = [0.5, 1.5, -0.5, -2.5, 2.0, -0.0, 127.49999, 1e-30, -3.75, 8388607.5]
    return x


@pytest.mark.parametrize("imm", [0, 1, 2, 3, 4, 8, 9, 10, 11, 12])
def test_reduce_ps(imm):
    """vreduceps (no fraction bits kept): src − round(src), the rounding and the subtraction
    by imm[1:0], or MXCSR's default (nearest even) when imm[2] is set; merge-masked. Tiny
    values make the subtraction inexact (1e−30 − ceil(1e−30)): it rounds in the same
    direction, as an AVX-512 host computes it."""
    rng = np.random.default_rng(2 + imm)
    x = _floats(rng)
    x[10:13] = [0.3, -0.3, -1e-30]  # more inexact differences, both signs
    passthru = rng.standard_normal(16).astype(np.float32)
    mode = 0 if imm & 4 else imm & 3
    diff = _directed_difference(x, _ROUND[mode](x), mode)
    for mask in (-1, 0x0F0F):
        want = np.where(_lanes(mask & 0xFFFF, 16), diff, passthru)
        _check(_run("llvm.x86.avx512.mask.reduce.ps.512", np.float32, 16, VF,
                    [VF, (I32, imm), VF, (I16, mask), (I32, 4)], x, passthru), want)


@pytest.mark.parametrize("rounding", [4, 8, 9, 10, 11])
def test_cvtps2dq(rounding):
    """vcvtps2dq with embedded rounding (8 nearest even, 9 down, 10 up, 11 toward zero) or the
    default (4: nearest even); NaN and values outside int32: INT32_MIN."""
    rng = np.random.default_rng(20 + rounding)
    x = _floats(rng)
    x[10:14] = [2.0 ** 31, -(2.0 ** 31), np.nan, -3e9]
    passthru = rng.integers(-1000, 1000, 16).astype(np.int32)
    mode = 0 if rounding == 4 else rounding & 3
    r = _ROUND[mode](x.astype(np.float64))
    inside = (r >= -(2.0 ** 31)) & (r < 2.0 ** 31)
    conv = np.where(inside, np.nan_to_num(r), -(2.0 ** 31)).astype(np.int64).astype(np.int32)
    for mask in (-1, 0x00FF):
        want = np.where(_lanes(mask & 0xFFFF, 16), conv, passthru)
        _check(_run("llvm.x86.avx512.mask.cvtps2dq.512", np.int32, 16, V16,
                    [VF, V16, (I16, mask), (I32, rounding)], x, passthru), want)


@pytest.mark.parametrize("imm", [10, 11, 14, 15])
def test_range_ps(imm):
    """vrangeps, magnitude forms with a forced sign (imm[1:0] 2: the smaller magnitude, 3: the
    larger; imm[3:2] 2: sign cleared, 3: set), ties of magnitude included."""
    rng = np.random.default_rng(30 + imm)
    a = _floats(rng)
    b = (rng.standard_normal(16) * 300).astype(np.float32)
    b[:6] = [-0.5, 1.5, 0.5, 2.5, 0.0, 127.49999]  # ties of magnitude against a
    passthru = rng.standard_normal(16).astype(np.float32)
    pick = np.maximum if imm & 1 else np.minimum
    v = pick(np.abs(a), np.abs(b))
    v = -v if imm & 4 else v
    for mask in (-1, 0xF00F):
        want = np.where(_lanes(mask & 0xFFFF, 16), v, passthru)
        _check(_run("llvm.x86.avx512.mask.range.ps.512", np.float32, 16, VF,
                    [VF, VF, (I32, imm), VF, (I16, mask), (I32, 4)], a, b, passthru), want)


def test_an_immediate_it_does_not_implement_traps():
    """An immediate outside what the emulation implements stops the process (llvm.trap)
    rather than computing something else: vrangeps imm 1 (max by value, a's sign)."""
    code = (
        "import numpy as np, test_simd_emulation as t\n"
        "z = np.zeros(16, np.float32)\n"
        "t._compiled('llvm.x86.avx512.mask.range.ps.512', t.VF, [t.VF, t.VF, (t.I32, 1), t.VF,"
        " (t.I16, -1), (t.I32, 4)], True)(z.ctypes.data, z.ctypes.data, z.ctypes.data,"
        " z.ctypes.data)\n"
        "print('returned')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode < 0 and "returned" not in proc.stdout, (proc.returncode, proc.stderr)


def test_emulation_is_generic_ir_and_only_when_asked():
    """Emulated: an internal always-inline function of the module, no x86 intrinsic left;
    not emulated: the intrinsic declared as is. Without QCC_SIMD_EMULATE nothing is."""
    for emulate in (True, False):
        mod = ir.Module("m")
        fn = simd.simd_fn(mod, "llvm.x86.avx512.vpdpbusd.512", V16, [V16] * 3, emulate=emulate)
        text = str(mod)
        if emulate:
            assert fn.name == "qcc.emulated.x86.avx512.vpdpbusd.512"
            assert "alwaysinline" in text and "internal" in text and "llvm.x86" not in text
        else:
            assert fn.name == "llvm.x86.avx512.vpdpbusd.512" and fn.is_declaration
    assert simd.SIMD_EMULATED == frozenset(
        f for f in os.environ.get("QCC_SIMD_EMULATE", "").split(",") if f)


def test_an_unknown_emulated_feature_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(simd, "SIMD_EMULATED", frozenset({"avx512vnni", "sve2"}))
    with pytest.raises(ValueError, match=r"^QCC_SIMD_EMULATE=avx512vnni,sve2: qcc emulates only "
                       r"avx512vnni, not sve2$"):
        simd.int8_gemm_path()
