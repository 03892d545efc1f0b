"""The multiply-add GEMM (runtime/kernels/int8_madd.py), on every isa this host can run
(`simd.MADD_ISA`: the portable generic-IR form always, vpmaddwd where the target has AVX2,
the byte dot products of "dot" always: aarch64's sdot there, generic IR elsewhere, and of
"avxvnni" on x86: the 256-bit vpdpbusd there, generic IR elsewhere):
its accumulators equal numpy's int64 matmul, and its fused requantization equals TFLite's
integer MultiplyByQuantizedMultiplier (the `_conv_requant` loop) for every output, including
the shapes at the tile edges (rows not a multiple of 4, channels not a multiple of 8, odd K),
accumulators beyond 2^24, channels with a left shift (always recomputed exactly) and outputs
at the rounding ties the float estimate cannot decide."""

from __future__ import annotations

import numpy as np
import pytest

from qcc.runtime.fixedpoint import quantize_multipliers
from qcc.runtime.kernels.int8_conv import _conv_requant
from qcc.runtime.kernels.int8_madd import (
    dot_pack,
    madd_gemm,
    madd_gemm_rq,
    madd_pack,
    madd_rows_i16,
    madd_rq_pack,
)
from qcc.runtime.kernels.int8_vnni import vnni_rows_u8
from qcc.runtime.kernels.simd import HAS_AVX2, INT8_GEMM_PATHS, MADD_ISA, X86, simd_as64

ISAS = [isa for isa in ("portable", "sse2", "avx2", "dot", "avxvnni") if isa in INT8_GEMM_PATHS]
SHAPES = [(1, 1, 1), (3, 5, 7), (4, 16, 8), (5, 27, 24), (9, 33, 17), (13, 64, 40),
          (64, 144, 32), (7, 1200, 9)]


def _case(rows, k, o, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, (k, o)).astype(np.int32)
    zp = int(rng.integers(-128, 128))
    return x, w, zp


def _rows(x, zp, kp):
    a = np.empty((x.shape[0], kp), np.int16)
    madd_rows_i16(x.reshape(-1), zp, x.shape[1], kp, a.reshape(-1), a.shape[0])
    return a


def _operands(isa, x, w, zp):
    """(rows, packed weights, zero-point correction per channel or None) for `isa`: int16
    rows x − zp and int16 pairs, or (the byte isas "dot", "avxvnni") u8 rows x + 128 and
    byte quads."""
    if isa not in ("dot", "avxvnni"):
        packed = madd_pack(w)
        return _rows(x, zp, packed.shape[1] * 2), packed, None
    packed, corr = dot_pack(w, zp, isa)
    a = np.empty((x.shape[0], packed.shape[1] * 4), np.uint8)
    vnni_rows_u8(x.reshape(-1), x.shape[1], a.shape[1], a.reshape(-1), a.shape[0])
    return a, packed, corr


def test_the_isas_this_host_runs():
    assert "portable" in ISAS and "dot" in ISAS
    assert ("avx2" in ISAS) == HAS_AVX2
    assert ("avxvnni" in ISAS) == X86
    assert ("sse2" in ISAS) == X86
    assert MADD_ISA == {"portable": 0, "avx2": 1, "dot": 2, "avxvnni": 3, "sse2": 4}


def test_sse2_is_the_int16_path_of_x86_cpus_without_avx2():
    """On x86 "sse2" comes right after "avx2" (or first of the int16 paths where the target has
    no AVX2: x86-64-v2, AVX1), before "portable", whose generic form x86 lowers to pmulld."""
    if not X86:
        assert "sse2" not in INT8_GEMM_PATHS
        return
    int16 = [p for p in INT8_GEMM_PATHS if p in ("avx2", "sse2", "portable")]
    assert int16 == (["avx2"] if HAS_AVX2 else []) + ["sse2", "portable"]


@pytest.mark.parametrize("cpu, features", [("x86-64-v2", "+sse4.2,+ssse3,+popcnt"),
                                           ("sandybridge", "")])
def test_the_sse2_tile_compiles_to_pmaddwd_without_spills(cpu, features):
    """Cross-compiled for x86 CPUs without AVX2 (x86-64-v2: SSE4.2; Sandy Bridge: AVX1, its
    integer vectors still 128-bit), the "sse2" path's full tile (4 rows x 1 block, as
    `_madd_tiles` walks it) multiplies with (v)pmaddwd, two per row and step, with no 32-bit
    multiply (pmulld: the portable form's lowering there, once LLVM's passes ran) and no
    stack traffic in the loop."""
    import llvmlite.binding as llvm

    from qcc.runtime.kernels import int8_madd

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    triple = "x86_64-unknown-linux-gnu"
    machine = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features,
                                                                    opt=2)

    asm = machine.emit_assembly(llvm.parse_assembly(int8_madd.madd_tile_ir(4, 1, "sse2",
                                                                           triple)))
    tile = [line.strip() for line in asm.splitlines() if line.startswith("\t")]
    ops = [line.split()[0] for line in tile]
    assert sum(op.endswith("pmaddwd") for op in ops) == 8, tile  # 4 rows × 2 halves
    assert not [op for op in ops if op.endswith("pmulld")], tile
    assert not [line for line in tile if "rsp" in line and "mov" in line], tile


def test_the_avx2_kernel_stays_256_bit_on_avx512_cpus():
    """An AVX-512 CPU without VNNI (Skylake-SP) runs the "avx2" path. Its requantizing GEMM
    kernel, cross-compiled for such a CPU, has no zmm instruction: the epilogue joins a
    row's two blocks after a 256-bit vpackssdw, where a <16 x i32> join had LLVM narrow them
    in zmm registers, and a 512-bit instruction in flight slowed the next tiles' 256-bit
    multiply-adds 1.2-1.9x (docs/benchmarks.md, "Twenty-sixth round"). On a host without
    AVX2 the kernels hold no x86 intrinsic."""
    import llvmlite.binding as llvm
    from numba import njit

    from qcc.runtime.kernels import int8_madd

    isa = MADD_ISA["avx2" if HAS_AVX2 else "portable"]
    rows, k, o = 8, 24, 16
    rng = np.random.default_rng(7)
    a = rng.integers(-255, 256, (rows, k)).astype(np.int16)
    w = rng.integers(-127, 128, (k, o)).astype(np.int16)
    m, shift = quantize_multipliers(np.full(o, 0.003))
    t, mm, ml, mr = madd_rq_pack(np.zeros(o, np.int32), m, shift)
    out = np.zeros((rows, o), np.int8)
    # compiled here, not loaded from Numba's cache (whose kernels keep no IR to inspect)
    kernel = njit(nogil=True)(int8_madd._MADD_GEMM_RQ[isa].py_func)
    kernel(a, madd_pack(w), t, mm, ml, mr, o, 0, -128, 127, out, int8_madd.madd_fix_leaf())
    ir = "\n".join(kernel.inspect_llvm().values())
    if not HAS_AVX2:
        assert "llvm.x86." not in ir
        return
    assert "llvm.x86.avx2.packssdw" in ir
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
        cpu="skylake-avx512", features="+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx2,+fma",
        opt=3)
    asm = machine.emit_assembly(llvm.parse_assembly(ir))
    assert "vpmaddwd" in asm and "zmm" not in asm


def test_dot_is_first_only_where_sdot_is_native():
    """"dot" is the default where the target has sdot (aarch64 with dot products), and last
    elsewhere (emulated: correct, not fast), where the tests still run it."""
    from qcc.runtime.kernels.simd import HAS_NEON_DOT, HAS_VNNI

    assert INT8_GEMM_PATHS.count("dot") == 1
    if HAS_NEON_DOT:
        assert INT8_GEMM_PATHS[1 if HAS_VNNI else 0] == "dot"
    else:
        assert INT8_GEMM_PATHS[-1] == "dot"


def test_avxvnni_follows_vnni_only_where_vpdpbusd_is_native():
    """"avxvnni" comes right after "vnni" where the target runs the 256-bit vpdpbusd (AVX-VNNI,
    or AVX-512 VNNI with VL), and last on other x86 targets (emulated), before "dot"."""
    from qcc.runtime.kernels.simd import HAS_AVX_VNNI, HAS_NEON_DOT, HAS_VNNI

    if not X86:
        assert "avxvnni" not in INT8_GEMM_PATHS
        return
    assert INT8_GEMM_PATHS.count("avxvnni") == 1
    at = INT8_GEMM_PATHS.index("avxvnni")
    if HAS_AVX_VNNI:
        assert at == (1 if HAS_VNNI else 0)
    else:
        assert INT8_GEMM_PATHS[at + 1:] == (() if HAS_NEON_DOT else ("dot",))


@pytest.mark.parametrize("cpu, vex", [("alderlake", True), ("icelake-server", False)])
def test_the_avxvnni_tile_compiles_to_vpdpbusd(monkeypatch, cpu, vex):
    """Cross-compiled with llvmlite's x86 target, the "avxvnni" tile's K loop is one 256-bit
    vpdpbusd per row and block, on the row broadcast as it is (no widening to int16, no
    vpmaddwd): the VEX form for a CPU with AVX-VNNI (Alder Lake), the EVEX one for
    AVX-512 VNNI (Ice Lake)."""
    import llvmlite.binding as llvm

    from qcc.runtime.kernels import int8_madd

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    monkeypatch.setattr(int8_madd, "HAS_AVX_VNNI", True)
    triple = "x86_64-unknown-linux-gnu"
    ir_text = int8_madd.madd_tile_ir(4, 2, "avxvnni", triple)
    machine = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, opt=2)
    asm = machine.emit_assembly(llvm.parse_assembly(ir_text))
    lines = [line.strip() for line in asm.splitlines() if line.startswith("\t")]
    dots = [line for line in lines if "vpdpbusd" in line]
    assert len(dots) == 8, lines  # 4 rows × 2 blocks
    assert all(("{vex}" in line) == vex and "%ymm" in line for line in dots), dots
    ops = {line.split()[0] for line in lines}
    assert not {"vpmaddwd", "vpmovsxbw", "vpmovzxbw"} & ops, ops


def test_the_dot_tile_compiles_to_sdot_for_aarch64(monkeypatch):
    """Cross-compiled with llvmlite's AArch64 target for a CPU with dot products (Neoverse N1,
    Graviton2), the "dot" tile's K loop is sdot on the weights and the broadcast row, with no
    widening multiplies (smull / smlal: the portable path's int16 form)."""
    import llvmlite.binding as llvm

    from qcc.runtime.kernels import int8_madd

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    monkeypatch.setattr(int8_madd, "HAS_NEON_DOT", True)
    triple = "aarch64-unknown-linux-gnu"
    ir_text = int8_madd.madd_tile_ir(4, 2, "dot", triple)
    machine = llvm.Target.from_triple(triple).create_target_machine(cpu="neoverse-n1", opt=2)
    asm = machine.emit_assembly(llvm.parse_assembly(ir_text))
    ops = [line.split()[0] for line in asm.splitlines() if line.startswith("\t")]
    assert ops.count("sdot") == 16, ops  # 4 rows × 2 blocks × 2 halves of 4 lanes
    assert not {"smull", "smull2", "smlal", "smlal2"} & set(ops), ops


@pytest.mark.parametrize("path, offset", [("dot", 0), ("avxvnni", 128)])
def test_dot_packing_puts_each_channels_four_weights_in_its_lane(path, offset):
    """The byte quads per lane, and the correction: −(zp_in + 128)·Σw for "avxvnni" (it
    multiplies the rows x + 128 as they are), −zp_in·Σw for "dot" (it undoes the + 128)."""
    w = np.arange(5 * 9, dtype=np.int32).reshape(5, 9) - 20  # K 5 (padded to 8), C 9
    packed, corr = dot_pack(w, zp_in=3, path=path)
    assert packed.dtype == np.int8 and packed.shape == (2, 2, 32)  # [OB, K4, 8 lanes × 4]
    lanes = packed.reshape(2, 2, 8, 4)
    for c in range(9):
        for k in range(8):
            want = w[k, c] if k < 5 else 0
            assert lanes[c // 8, k // 4, c % 8, k % 4] == want
    assert (lanes[1, :, 1:] == 0).all()  # padded channels
    np.testing.assert_array_equal(corr, -(3 + offset) * w.sum(axis=0))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,k,o", SHAPES)
def test_accumulators_equal_int64_matmul(isa, rows, k, o):
    x, w, zp = _case(rows, k, o, seed=rows * 1000 + k)
    a, packed, corr = _operands(isa, x, w, zp)
    if corr is None:
        assert (a[:, k:] == 0).all()
    want = (x.astype(np.int64) - zp) @ w.astype(np.int64)
    if corr is not None:  # the GEMM gives Σ x·w; the caller adds the correction
        want = want - corr
    for dtype in (np.int32, np.float32):
        out = np.full((rows, o), 77, dtype)
        madd_gemm(a, packed, o, out, MADD_ISA[isa])
        if dtype == np.int32 or np.abs(want).max() < 2**24:
            np.testing.assert_array_equal(out.astype(np.int64), want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,k,o", SHAPES)
@pytest.mark.parametrize("kind", ["typical", "left_shift", "ties", "beyond_int16", "huge"])
def test_fused_requantization_is_exact(isa, rows, k, o, kind):
    x, w, zp = _case(rows, k, o, seed=rows + 7 * k + o)
    rng = np.random.default_rng(k + o)
    acc = (x.astype(np.int64) - zp) @ w.astype(np.int64)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    if kind == "typical":
        eff = rng.uniform(1e-4, 2e-2, o)
    elif kind == "left_shift":  # multipliers above 1: the estimate never decides
        eff = rng.uniform(1.0, 3.0, o)
    elif kind == "ties":  # 2^-n multipliers put many outputs exactly on a rounding tie
        eff = 2.0 ** -rng.integers(1, 8, o).astype(np.float64)
    elif kind == "beyond_int16":  # decided outputs past int16: the epilogue's packs saturate
        eff = rng.uniform(0.3, 0.9, o)
    else:  # accumulators far beyond 2^24 (float(acc) rounds): K large, weights at the bounds
        x = np.full_like(x, 127)
        w = np.where(rng.random(w.shape) < 0.5, -127, 127).astype(np.int32)
        zp = -128
        acc = (x.astype(np.int64) - zp) @ w.astype(np.int64)
        eff = rng.uniform(1e-7, 1e-5, o)
    m, shift = quantize_multipliers([float(e) for e in eff])
    m, shift = np.asarray(m, np.int64), np.asarray(shift, np.int64)
    zp_out, lo, hi = int(rng.integers(-20, 20)), -128, int(rng.integers(0, 128))
    want = np.empty((rows, o), np.int8)
    left, right = np.maximum(shift, 0).astype(np.int32), np.maximum(-shift, 0).astype(np.int32)
    _conv_requant(acc.astype(np.int32), bias, m.astype(np.int32), left, right, zp_out, lo, hi,
                  want)

    a, packed, corr = _operands(isa, x, w, zp)
    t, mm, ml, mr = madd_rq_pack(bias, m, shift, corr)
    out = np.full((rows, o), 99, np.int8)
    madd_gemm_rq(a, packed, t, mm, ml, mr, o, zp_out, lo, hi, out, MADD_ISA[isa])
    np.testing.assert_array_equal(out, want)


def test_a_boolean_argument_widens_to_one():
    from llvmlite import ir

    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.IntType(64), [ir.IntType(1)]), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    builder.ret(simd_as64(builder, fn.args[0]))
    assert "zext i1" in str(module)
