"""The int8 depthwise fast path against its specification, `_dw_conv_i8`.

The tap loops of every filter size and stride are leaves of one template, `_dw_taps`,
specialized by closure constants, called by one driver (`_dw_ring`): these tests run it on shapes
that reach each instance and the generic loop (sizes without a driver, horizontal strides
above 2), check the step params stay compact, and check that LLVM still unrolls and
vectorizes the template's loops (what the template's shape is for: an innocent-looking edit
can silently make a depthwise convolution several times slower)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from qcc.runtime.fixedpoint import fast_requant_tables, quantize_multipliers
from qcc.runtime.kernels import int8_depthwise as dwk
from qcc.runtime.kernels.int8_vnni import VNNI_DW_SHAPES
from qcc.runtime.kernels.simd import INT8_GEMM_PATHS


def _case(rng, kh, kw, sh, sw, dh, dw, n, h, w, c, same=True):
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if same:
        oh, ow = -(-h // sh), -(-w // sw)
        pt = max(0, (oh - 1) * sh + ekh - h) // 2
        pl = max(0, (ow - 1) * sw + ekw - w) // 2
    else:
        h, w = max(h, ekh), max(w, ekw)
        oh, ow = (h - ekh) // sh + 1, (w - ekw) // sw + 1
        pt = pl = 0
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-100, 100))
    x = rng.integers(-128, 128, size=(n, h, w, c)).astype(np.int8)
    wk = rng.integers(-127, 128, size=(kh, kw, c)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=c).astype(np.int32)
    m, shift = quantize_multipliers(rng.uniform(1e-4, 3e-2, size=c))
    base = {"geom": np.array([sh, sw, dh, dw, pt, pl, 1, kh, kw], np.int64),
            "out_shape": [n, oh, ow, c], "zp_in": zp_in, "zp_out": zp_out,
            "lo": int(rng.integers(-128, -60)), "hi": int(rng.integers(60, 128))}
    return x, wk, bias, m, shift, base


# (kh, kw, sh, sw, dh, dw, n, h, w, c): every `_dw_taps` leaf (3x3 and 5x5, shared
# rows at vertical stride 1 and 2 with odd, even and single output heights, unshared with
# dilation or stride 3), the generic loop (other sizes, horizontal stride 3), channel counts
# off multiples of 16, batches.
CASES = [
    (3, 3, 1, 1, 1, 1, 1, 9, 11, 24),
    (5, 5, 1, 1, 1, 1, 1, 6, 5, 150),  # wide: blocks of 80 and 70 channels
    (3, 3, 2, 2, 1, 1, 1, 7, 6, 400),  # wide 3x3, stride 2: blocks of 112, the last 64
    (5, 5, 2, 1, 1, 1, 1, 5, 3, 656),  # six blocks of 112, the last 96
    (3, 3, 1, 1, 1, 1, 2, 1, 7, 5),
    (3, 3, 2, 2, 1, 1, 1, 12, 9, 40),
    (3, 3, 2, 1, 1, 2, 1, 7, 10, 17),
    (3, 3, 1, 2, 2, 1, 2, 10, 10, 33),
    (3, 3, 3, 1, 1, 1, 1, 13, 8, 16),
    (3, 3, 1, 3, 1, 1, 1, 8, 13, 20),
    (5, 5, 1, 1, 1, 1, 1, 10, 9, 19),
    (5, 5, 2, 2, 1, 1, 2, 11, 12, 48),
    (5, 5, 2, 1, 1, 1, 1, 2, 6, 7),
    (5, 5, 1, 1, 2, 2, 1, 14, 14, 21),
    (5, 5, 3, 3, 1, 1, 1, 15, 16, 64),
    (1, 1, 1, 1, 1, 1, 1, 6, 6, 70),
    (3, 5, 1, 1, 1, 1, 1, 8, 9, 12),
    (7, 7, 2, 2, 1, 1, 1, 13, 13, 10),
    # 1-D filters (temporal models: [1, T, 1, C] and [1, 1, T, C])
    (9, 1, 1, 1, 1, 1, 1, 20, 1, 120),
    (9, 1, 2, 2, 1, 1, 1, 21, 1, 24),
    (9, 1, 1, 1, 2, 1, 1, 25, 2, 17),
    (1, 9, 1, 1, 1, 1, 1, 1, 30, 40),
    (1, 9, 2, 2, 1, 1, 2, 3, 27, 33),
    (3, 1, 1, 1, 1, 1, 2, 9, 3, 33),
    (1, 5, 2, 2, 1, 1, 1, 4, 13, 16),
    (7, 1, 1, 1, 1, 1, 1, 12, 1, 70),
    (1, 3, 1, 2, 1, 1, 1, 5, 11, 8),
]


# with C >= 16, which the VNNI path (`_dw_ring_u8`) takes on an AVX-512 VNNI host: filter
# widths over 4 (two 4-tap groups) up to 8, heights up to 7, stride 2 with dilation, one
# output column or row, C off multiples of 16, batches
U8_CASES = [
    (3, 3, 1, 1, 1, 1, 1, 7, 1, 16),
    (2, 2, 2, 2, 1, 1, 1, 9, 9, 31),  # 2 rows: the float ring
    (3, 8, 1, 1, 1, 1, 2, 6, 12, 18),  # 3x8: the float ring
    (5, 8, 1, 1, 1, 1, 2, 6, 12, 18),
    (7, 6, 1, 2, 1, 1, 1, 12, 15, 20),
    (3, 3, 2, 2, 2, 2, 1, 13, 13, 17),
    (5, 5, 1, 2, 1, 2, 1, 9, 17, 50),
    (4, 1, 1, 1, 1, 1, 1, 5, 3, 16),  # 4 rows: the float ring
    (7, 5, 2, 1, 1, 1, 1, 15, 6, 16),
    (5, 5, 2, 2, 1, 1, 2, 7, 7, 96),
]
PATHS = tuple(p for p in INT8_GEMM_PATHS if p in ("vnni", "portable"))
"""The integer GEMM paths whose depthwise drivers differ: "vnni" (the u8 ring), where the host
runs it, and "portable" for the float ring, which every other path binds alike
(`test_every_path_but_vnni_binds_the_float_ring`)."""


@pytest.mark.parametrize("path", INT8_GEMM_PATHS)
def test_every_path_but_vnni_binds_the_float_ring(path, monkeypatch):
    """The depthwise drivers read the GEMM path only to choose the u8 ring (VNNI): on avx2,
    dot and portable alike a layer binds the float ring."""
    monkeypatch.setenv("QCC_INT8_GEMM", path)
    rng = np.random.default_rng(17)
    x, wk, bias, m, shift, base = _case(rng, 3, 3, 2, 2, 1, 1, 1, 16, 9, 24)
    p = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
    u8 = dwk._dw_u8_variant(p["dwg"], p["out_shape"][1])
    assert (u8 is not None) == (path == "vnni"), (path, u8)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", range(len(CASES) + len(U8_CASES)))
def test_ring_drivers_match_the_specification(case, path, monkeypatch):
    """Every driver, on each depthwise kind this host runs (`QCC_INT8_GEMM`): the u8
    `vpdpbusd` ring on the VNNI path, the float ring on the others."""
    monkeypatch.setenv("QCC_INT8_GEMM", path)
    rng = np.random.default_rng(300 + case)
    kh, kw, sh, sw, dh, dw, n, h, w, c = (CASES + U8_CASES)[case]
    x, wk, bias, m, shift, base = _case(rng, kh, kw, sh, sw, dh, dw, n, h, w, c,
                                        same=bool(case % 3))
    if case % 2:  # channels whose |bias| >= 2^24 the float estimate cannot serve (every
        # output goes to the fix-up), with multipliers that keep them off the clamp bounds
        bias[::3] = np.where(bias[::3] < 0, -(1 << 24) - 7, (1 << 24) + 7)
        m[::3], shift[::3] = quantize_multipliers(np.full(m[::3].size, 1.5e-6))
    ref = dwk.run_depthwise_conv2d_i8([x], dict(base, **dwk._dw_int_params(wk, bias, m, shift)))[0]
    ring = dwk._dw_ring_params(wk, bias, m, shift, base)
    assert ring is not None
    p = dict(base, **ring)
    np.testing.assert_array_equal(dwk._dw_bind(p)([x], p)[0], ref)
    np.testing.assert_array_equal(dwk.run_depthwise_conv2d_i8([x], p)[0], ref)  # unbound


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride", [1, 2])
def test_left_shift_channels_take_the_estimate(stride, path, monkeypatch):
    """A layer whose channels mostly have real multipliers >= 1 (a left shift; real models
    have them, e.g. near-dead channels of MediaPipe's pose landmark model): the ring takes
    the estimate for those its accumulator bound keeps inside int32 (`_dw_acc_bound`), the
    others (a wrapping x·2^left in the reference) stay always-recomputed, and the outputs
    equal the integer kernel's, bit for bit, on each depthwise kind this host runs."""
    monkeypatch.setenv("QCC_INT8_GEMM", path)
    rng = np.random.default_rng(31 + stride)
    c, h, w, k = 40, 19, 23, 3
    wk = rng.integers(-6, 7, size=(k, k, c)).astype(np.int32)
    wk[:, :, -2:] = 127  # two channels whose bound · 2^left reaches 2^31: x·2^left can wrap
    eff = rng.uniform(1.0, 4.0, size=c)
    eff[-8:-2] = rng.uniform(10.0, 60.0, size=6)
    eff[:4] = rng.uniform(1e-3, 0.5, size=4)  # right-shifted ones among them
    eff[-2:] = [9000.0, 20000.0]
    m, shift = quantize_multipliers(eff)
    bias = rng.integers(-20, 20, size=c).astype(np.int32)
    zp_in, zp_out = -128, 5
    oh, ow = -(-h // stride), -(-w // stride)
    pt = max(0, (oh - 1) * stride + k - h) // 2
    pl = max(0, (ow - 1) * stride + k - w) // 2
    geom = np.array([stride, stride, 1, 1, pt, pl, 1, k, k], np.int64)
    base = {"geom": geom, "out_shape": [1, oh, ow, c], "zp_in": zp_in, "zp_out": zp_out,
            "lo": -128, "hi": 127}
    ring = dwk._dw_ring_params(wk, bias, m, shift, base)
    assert ring is not None
    p = dict(base, **ring)
    t = fast_requant_tables(p["m"], p["left"].astype(np.int64) - p["right"], p["bias"],
                            dwk._dw_acc_bound(p["w"], zp_in))
    assert (t["margin"][4:-2] == 0.5).all() and (t["margin"][-2:] == 2.0).all()
    # most rows near zp_in (small sums: outputs inside the clamp), every seventh row at both
    # ends of the int8 range (the largest sums, outputs well past the clamp)
    x = rng.integers(-128, -122, size=(1, h, w, c)).astype(np.int8)
    x[0, ::7] = rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), size=x[0, ::7].shape)
    ref = dwk.run_depthwise_conv2d_i8([x], dict(base, **dwk._dw_int_params(wk, bias, m, shift)))[0]
    np.testing.assert_array_equal(dwk._dw_bind(p)([x], p)[0], ref)
    inside = (ref[..., 4:-2] > -128) & (ref[..., 4:-2] < 127)
    assert 0.2 < inside.mean() < 0.9  # both decided outputs and clamped ones


def test_bound_runner_takes_a_non_contiguous_input():
    rng = np.random.default_rng(9)
    x, wk, bias, m, shift, base = _case(rng, 3, 3, 1, 1, 1, 1, 1, 8, 8, 24)
    p = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), np.int8)
    wide[..., ::2] = x
    wide = wide[..., ::2]
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(dwk._dw_bind(p)([wide], p)[0], dwk._dw_bind(p)([x], p)[0])


def test_step_params_are_compact():
    """What the artifact's weights.npz stores for a step: the int8 weights, the int32
    requantization and small int64 geometry, no float32 tables (those are made at bind)."""
    rng = np.random.default_rng(2)
    x, wk, bias, m, shift, base = _case(rng, 5, 5, 1, 1, 1, 1, 1, 14, 14, 96)
    ring = dwk._dw_ring_params(wk, bias, m, shift, base)
    assert ring["w"].dtype == np.int8 and ring["w"].shape == (5, 5, 96)
    for k in ("bias", "m", "left", "right"):
        assert ring[k].dtype == np.int32 and ring[k].shape == (96,)
    assert ring["dwg"].dtype == np.int64 and ring["dwg"].size == 13
    assert not any(np.asarray(v).dtype.kind == "f" for v in ring.values())
    assert sum(v.nbytes for v in ring.values()) == 25 * 96 + 4 * 4 * 96 + 13 * 8


@pytest.mark.parametrize("c,w", [(96, 14), (17, 5), (5, 7)])
def test_ring_table_rows_by_step(c, w):
    """p's rows by step (what the unrolled tap loops read) hold the rows p starts with: step
    i's block is every row's outputs 16i .. 16i + 15 of the chunk (zeros past gc), 64-byte
    aligned, at the offset the loops compute; gc off a multiple of 16 included (17 x 5)."""
    rng = np.random.default_rng(4)
    x, wk, bias, m, shift, base = _case(rng, 5, 5, 1, 1, 1, 1, 1, 9, w, c)
    params = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
    p, _q = dwk._dw_ring_tables(params)
    gc, nrows = int(params["dwg"][12]), 25 + 4
    rows = p[:nrows * gc].reshape(nrows, gc)
    at = dwk._dw_steps_offset(nrows, gc)
    assert p.ctypes.data % 64 == 0 and at % 16 == 0 and at >= nrows * gc + 16
    nb = -(-gc // 16)
    steps = p[at:].reshape(nb, nrows, 16)
    for i in range(nb):
        got = steps[i, :, :min(16, gc - 16 * i)]
        np.testing.assert_array_equal(got, rows[:, 16 * i:16 * i + got.shape[1]])
        assert not steps[i, :, got.shape[1]:].any()


@pytest.mark.parametrize("kh,rs", [(3, 1), (3, 2), (3, 3), (5, 1), (5, 2), (5, 5)])
def test_tap_leaf_main_loop_is_one_block_of_vector_fmas(kh, rs):
    """The LLVM IR of each `_dw_taps` leaf: one basic block (the main loop of
    `dw_float_chunk`) holds 2·KH·KW multiply-adds on `_DW_LANES`-float vectors, each ring run
    and weight loaded once per step: (KH + rs)·KW runs with shared rows (rs < KH), 2·KH·KW
    without, then KH·KW weight vectors and the 4 requantization rows."""
    lanes = dwk._DW_LANES
    ir = dwk._dw_taps(kh, kh, rs, cache=False).inspect_llvm()
    fmas, loads = 0, 0
    for block in re.split(r"\n(?=[\w.]+:)", ir):
        bf = len(re.findall(rf"@llvm\.fmuladd\.v{lanes}f32\(", block))
        if bf > fmas:
            fmas, loads = bf, len(re.findall(rf"= load <{lanes} x float>", block))
    nt = kh * kh
    runs = (kh + rs) * kh if rs < kh else 2 * nt
    assert fmas == 2 * nt, (fmas, nt)
    assert loads == runs + nt + 4, (loads, runs)


def test_tap_leaf_needs_no_fma_instruction():
    """Cross-compiled for x86 CPUs without FMA (x86-64-v2), a tap leaf multiplies and adds in
    vector registers: its multiply-adds are `llvm.fmuladd` (fused or not, the same exact
    integer sums), where `llvm.fma` would call libm's `fmaf` once per lane (a depthwise layer
    ~17x slower there); with FMA (Haswell) they are vfmadd."""
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    ir = dwk._dw_taps(3, 3, 1, cache=False).inspect_llvm()
    target = llvm.Target.from_triple("x86_64-unknown-linux-gnu")

    def asm(cpu, features=""):
        machine = target.create_target_machine(cpu=cpu, features=features, opt=2)
        return machine.emit_assembly(llvm.parse_assembly(ir))

    v2 = asm("x86-64-v2", "+sse4.2,+ssse3,+popcnt")
    assert "fmaf" not in v2 and len(re.findall(r"\tmulps\t", v2)) >= 2 * 9, v2
    assert len(re.findall(r"\tvfmadd", asm("haswell"))) >= 2 * 9


@pytest.mark.parametrize("kh,kw,sh,sw,dh,oh,variant", [
    (3, 3, 1, 1, 1, 8, (3, 3, 1)),  # shared rows, stride 1
    (5, 5, 2, 2, 1, 8, (5, 5, 2)),  # shared rows, stride 2
    (3, 3, 1, 1, 1, 1, (3, 3, 3)),  # a single output row: unshared
    (3, 3, 1, 1, 2, 8, (3, 3, 3)),  # vertical dilation: unshared
    (3, 3, 3, 1, 1, 8, (3, 3, 3)),  # vertical stride 3: unshared
    (5, 5, 1, 3, 1, 8, (0, 0, 0)),  # horizontal stride 3: the generic loop
    (7, 7, 1, 1, 1, 8, (0, 0, 0)),  # no unrolled instance for 7x7
    (9, 1, 1, 1, 1, 8, (9, 1, 1)),  # a 1-D filter along H: shared rows
    (1, 9, 2, 2, 1, 8, (1, 9, 2)),  # along W
])
def test_a_layer_binds_exactly_one_driver_variant(kh, kw, sh, sw, dh, oh, variant, monkeypatch):
    """Each layer binds the one float ring driver and the tap leaf of its variant, (filter,
    row step) or the generic loop, so a model compiles only the leaves its layers use, each
    once (cold start); the bound runner declares them as units of compile work
    (`compile_units`, for the first run's helper processes): the driver, its fill and fix
    leaves, the tap leaf. (The float ring: a path without VNNI.)"""
    monkeypatch.setenv("QCC_INT8_GEMM", PATHS[-1])
    g = np.array([sh, sw, dh, 1, 0, 0, kh, kw, 0, 0, -128, 127, 128], np.int64)
    assert dwk._dw_variant(g, oh) == variant
    assert dwk._dw_taps_leaf(variant) == dwk._dw_taps_leaf(variant)  # made once
    assert dwk._dw_taps_leaf(variant) != 0  # the generic loop too: `_dw_taps_any_leaf`
    rng = np.random.default_rng(5)
    x, wk, bias, m, shift, base = _case(rng, kh, kw, sh, sw, dh, 1, 1, max(oh * sh, 2), 9, 16)
    p = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
    run = dwk._dw_bind(p)
    bound = dwk._dw_variant(p["dwg"], p["out_shape"][1])
    assert run.compile_key == ("depthwise_conv2d_i8", "ring", *bound)
    assert [k for k, *_ in run.compile_units] == [("depthwise_conv2d_i8", "ring"),
                                                 ("depthwise_conv2d_i8", "ring", "fill"),
                                                 ("depthwise_conv2d_i8", "ring", "fix"),
                                                 run.compile_key]


@pytest.mark.parametrize("kh,kw,sh,sw,dh,dw,oh,c,variant", [
    (3, 3, 1, 1, 1, 1, 8, 24, None),  # 3x3 at stride 1: the float ring (faster there)
    (3, 3, 2, 2, 1, 1, 8, 24, (3, 1, 2)),  # shared rows, stride 2
    (5, 5, 2, 2, 1, 1, 8, 24, (5, 2, 2)),  # shared rows, stride 2, two 4-tap groups
    (3, 3, 1, 1, 1, 1, 1, 24, (3, 1, 3)),  # a single output row: unshared
    (3, 3, 1, 1, 2, 1, 8, 24, (3, 1, 3)),  # vertical dilation: unshared
    (7, 8, 3, 1, 1, 1, 8, 24, (7, 2, 7)),  # vertical stride 3: unshared
    (3, 5, 1, 1, 1, 1, 8, 24, None),  # 3x5: no case, the float ring
    (3, 3, 1, 3, 1, 1, 8, 24, None),  # horizontal stride 3: the float ring
    (3, 3, 1, 1, 1, 1, 8, 8, None),  # fewer than 16 channels: the float ring
    (3, 9, 1, 1, 1, 1, 8, 24, None),  # more than 8 columns: the float ring
    (4, 4, 1, 1, 1, 1, 8, 24, None),  # 4 rows: no case, the float ring
])
def test_the_vnni_path_binds_one_u8_variant(kh, kw, sh, sw, dh, dw, oh, c, variant, monkeypatch):
    """On the VNNI path a layer with C >= 16 binds the u8 ring driver and the tap leaf of its
    case (rows, 4-tap groups, row step), made once; other layers and other paths bind the
    float ring (on a host without AVX-512 VNNI, every layer does)."""
    rng = np.random.default_rng(11)
    x, wk, bias, m, shift, base = _case(rng, kh, kw, sh, sw, dh, dw, 1, oh * sh, 9, c)
    assert base["out_shape"][1] == oh
    p = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
    if "vnni" not in PATHS:
        assert dwk._dw_u8_variant(p["dwg"], oh) is None
        assert dwk._dw_bind(p).compile_key[1] != "u8"
        return
    monkeypatch.setenv("QCC_INT8_GEMM", "vnni")
    run = dwk._dw_bind(p)
    if variant is None:
        assert run.compile_key[1] != "u8"
    else:
        assert dwk._dw_u8_variant(p["dwg"], p["out_shape"][1]) == variant
        assert variant in VNNI_DW_SHAPES  # a case of the tap intrinsic
        assert run.compile_key == ("depthwise_conv2d_i8", "u8", *variant)
        assert [k for k, *_ in run.compile_units] == [("depthwise_conv2d_i8", "u8"),
                                                     ("depthwise_conv2d_i8", "u8", "fill"),
                                                     ("depthwise_conv2d_i8", "u8", "fix"),
                                                     run.compile_key]
        run.compile_units[3][1]()  # the leaf unit makes the case's leaf
        made = dict(dwk._DW_U8)
        dwk._dw_bind(p)([x], p)
        assert variant in made and dwk._DW_U8 == made  # one leaf per case, made once
    monkeypatch.setenv("QCC_INT8_GEMM", PATHS[-1])  # another path (portable, on any CPU)
    assert dwk._dw_bind(p).compile_key[1] != "u8"


@pytest.mark.parametrize("kind", ["ring", "u8"])
def test_fill_and_fix_run_as_leaves(kind, monkeypatch):
    """The driver fills ring rows and fixes flagged chunks through leaves called by address
    (`_dw_leaf`): one of each per driver kind, made once and shared by every layer, their
    code not compiled into the driver (Numba would compile a jitted callee again inside
    it); a run whose fix-up runs is exact."""
    from numba import njit

    driver = dwk._dw_ring_u8 if kind == "u8" else dwk._dw_ring
    if kind == "u8" and "vnni" not in PATHS:
        for name in ("fill", "fix"):  # they compile on any host; only the VNNI path runs them
            assert dwk._dw_leaf(kind, name) == dwk._dw_leaf(kind, name) != 0
    else:
        monkeypatch.setenv("QCC_INT8_GEMM", "vnni" if kind == "u8" else PATHS[-1])
        rng = np.random.default_rng(13)
        # 3x3 at stride 2 (a u8 case), 3x5 unshared (the generic loop on the float ring);
        # |bias| >= 2^24 (the fix-up runs)
        x, wk, bias, m, shift, base = (
            _case(rng, 3, 3, 2, 2, 1, 1, 1, 16, 9, 24) if kind == "u8"
            else _case(rng, 3, 5, 1, 1, 1, 1, 1, 8, 9, 24))
        bias[::3] = (1 << 24) + 7
        m[::3], shift[::3] = quantize_multipliers(np.full(m[::3].size, 1.5e-6))
        p = dict(base, **dwk._dw_ring_params(wk, bias, m, shift, base))
        run = dwk._dw_bind(p)
        assert run.compile_key[1] == kind
        ref = dwk.run_depthwise_conv2d_i8([x], dict(base, **dwk._dw_int_params(wk, bias, m,
                                                                             shift)))[0]
        np.testing.assert_array_equal(run([x], p)[0], ref)
        made = {k: v for k, v in dwk._DW_LEAVES.items() if k[0] == kind}
        assert set(made) == {(kind, "fill"), (kind, "fix")}
        np.testing.assert_array_equal(dwk._dw_bind(p)([x], p)[0], ref)
        assert {k: v for k, v in dwk._DW_LEAVES.items() if k[0] == kind} == made  # made once
    # the driver's own code, compiled afresh (not from the cache) for its argument types
    fresh = njit(nogil=True)(driver.py_func)
    g = np.array([1, 1, 1, 1, 0, 0, 3, 3, 0, 0, -128, 127, 16], np.int64)  # on an empty batch
    i8 = np.zeros((0, 1, 1, 16), np.int8)
    if kind == "u8":
        fresh(i8, i8, np.zeros((1, 1, 64), np.int8), np.zeros(16, np.int32),
              np.zeros(48, np.float32), np.zeros(64, np.int64), g, 0, 3, 0, 0)
    else:
        fresh(i8, i8, np.zeros(16, np.float32), np.zeros(64, np.int64), g, 0, 3, 0, 0)
    text = "\n".join(fresh.inspect_llvm().values())
    defined = set(re.findall(r"^define [^@]*@\"?([^\"(]+)", text, re.M))
    nrt = {name for name in defined if name.startswith("NRT_")}  # Numba's refcount helpers
    assert defined - nrt and all("_dw_ring" in name or "_dw_rq1y" in name
                                 for name in defined - nrt)
    for callee in ("_dw_fill_row", "_dw_fill_u8", "_dw_fix_steps"):
        assert callee not in text


def _fill_row_by_definition(x1, src, inside, w, c, zp, pl, sw, wq, r1, dst):
    """`_dw_fill_row` as its docstring defines it: plane ph, column qc of the ring row holds
    padded column qc·sw + ph, i.e. image column qc·sw + ph − pl, offset by −zp (zeros outside
    the image, or for a row that is not inside)."""
    for ph in range(sw):
        for qc in range(wq):
            ix = qc * sw + ph - pl
            row = dst + (ph * wq + qc) * c
            if inside and 0 <= ix < w:
                r1[row:row + c] = x1[src + ix * c:src + ix * c + c].astype(np.float32) - np.float32(zp)
            else:
                r1[row:row + c] = 0


def test_the_ring_fill_matches_its_definition():
    """The ring fill (`_dw_fill_row`) on every channel count 1..40 and some beyond, strides 1
    to 3, left padding 0..2, rows narrower and wider than the image: on strided rows C = 8..32
    takes `dw_widen_pixels` (whole vectors a pixel, the last one overlapping), other C the
    loop over C. It writes the ring row exactly and nothing around it."""
    from numba import njit

    @njit
    def fill(x1, src, inside, w, c, zp, pl, sw, wq, r1, dst):
        dwk._dw_fill_row(x1, src, inside, w, c, zp, pl, sw, wq, r1, dst)

    rng = np.random.default_rng(29)
    checked = 0
    for c in [*range(1, 41), 48, 64, 72]:
        for sw in (1, 2, 3):
            for w in (1, 2, 5, 17):
                for pl in (0, 1, 2):
                    for wq in {max(1, (w + pl) // sw), (w + pl) // sw + 2}:
                        x = rng.integers(-128, 128, size=3 * w * c).astype(np.int8)
                        zp = int(rng.integers(-128, 128))
                        for inside in (True, False) if c == 8 else (True,):
                            got = np.full(sw * wq * c + 40, 7.5, np.float32)
                            want = got.copy()
                            _fill_row_by_definition(x, w * c, inside, w, c, zp, pl, sw, wq,
                                                    want, 3)
                            fill(x, w * c, inside, w, c, zp, pl, sw, wq, got, 3)
                            np.testing.assert_array_equal(got, want, err_msg=str((c, sw, w, pl, wq)))
                            checked += 1
    assert checked > 2000


def test_fix_up_stays_inside_the_flagged_chunk():
    """A chunk of gc outputs that is not a multiple of 16 ends with a partial step; when that
    step is flagged, the fix-up (`_dw_fix_steps`) recomputes only its own outputs, not the
    16 − (gc mod 16) after it: those are the next chunk's, whose sums were stored only if it
    was flagged too (the float ring keeps a step's sums only then), so the sums there may be
    a pass before's. Here they are stale values the test makes flag on purpose."""
    gc = c = 20  # chunks [0, 20), [20, 40): the first one's partial step starts at 16
    n = 2 * gc
    rng = np.random.default_rng(5)
    nrows = 4  # the float ring's rows bias_f, eff, thr, e (tb = 0 here: no tap rows)
    t = np.zeros(nrows * gc + 16, np.float32)
    t[gc:2 * gc] = 1.0  # eff
    t[2 * gc:3 * gc] = 0.25  # thr: flagged when |y - rint(y)| >= 0.25
    q = np.concatenate([np.zeros(c), np.full(c, 1 << 30), np.zeros(c), np.ones(c)]).astype(np.int64)
    acc = np.zeros(2 * n + 16, np.float32)
    acc[:] = 0.5 + rng.integers(-50, 50, acc.size)  # every output flags (y = k + 1/2)
    o1 = np.full(2 * n, 99, np.int8)
    hits = np.array([1, 16] + [0] * n, np.int64)  # the first chunk's partial step [16, 20)
    zq = np.array([0, -128, 127], np.int64)
    dwk._dw_fix_steps.py_func(acc, t, q, 0, gc, c, hits, n, n, o1, 0, n, zq, True)
    for r in range(2):
        row = o1[r * n:(r + 1) * n]
        assert (row[16:20] != 99).all()  # the flagged step's outputs: recomputed
        assert (row[20:32] == 99).all()  # the next chunk's: untouched
        assert (row[:16] == 99).all() and (row[32:] == 99).all()
