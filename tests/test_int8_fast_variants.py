"""Fast int8 kernel variants against the reference loops they stand in for.

The reference loops transcribe TFLite's reference kernels and are themselves checked against
LiteRT's BUILTIN_REF (test_int8_kernels.py, test_runtime_int8.py); here each fast variant must
give the same int8 on inputs chosen to reach its edges:

* MUL's float estimate with the exact fix-up (`_ew_mul_fast`, and `_ew_mul_chan_fast` for a
  per-channel operand, constant or run-time): every (a, b) pair of int8 values, for generic,
  tie-heavy and extreme multipliers, whatever the flag rate the plan builder would accept;
* RESIZE_BILINEAR's separable int32 kernel (`_shp_resize_bilinear_i8`): random geometries
  (up- and downsampling, align-corners, half-pixel) with extreme stored values;
* the flat requantization of TRANSPOSE_CONV's taps (`_conv_requant_flat`) against the
  per-row `_conv_requant`;
* the convolutions' row and padding helpers on flat buffers, against numpy;
* the table lookup by byte shuffles (`_act_lut_shuffle`: vpshufb on x86 with AVX2, tbl /
  tbx on aarch64) against the scalar lookup, and the table-lookup steps (LOGISTIC, TANH,
  HARD_SWISH) bound with either kernel against BUILTIN_REF.
"""

from __future__ import annotations

import numpy as np
import pytest

from qcc.runtime.fixedpoint import fast_mbqm_params, quantize_multiplier, quantize_multipliers
from qcc.runtime.fixedpoint import split_shifts
from qcc.runtime.kernels import int8_activation as act
from qcc.runtime.kernels import int8_conv as conv
from qcc.runtime.kernels import int8_elementwise as ew
from qcc.runtime.kernels import int8_shape as shp
from qcc.runtime.kernels.int8_registry import channel_rows

# Every (a, b) pair of int8 values, flat: a in rows of 256, b along them.
_A = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
_B = np.tile(np.arange(-128, 128, dtype=np.int8), 256)

# real multipliers s1·s2/s_out: generic, ties (powers of two), near-ties, a left shift
_MUL_RATIOS = [3.7e-4, 0.0123, 2.0**-7, 2.0**-9 * (1 + 2**-20), 1.0 / 3.0, 0.75, 1.9]


def _mul_exact(zp1, zp2, m, sh, zpo, lo, hi):
    out = np.empty(_A.size, np.int8)
    ew._ew_mul_loop(_A, _B, zp1, zp2, m, sh, zpo, lo, hi, out)
    return out


@pytest.mark.parametrize("ratio", _MUL_RATIOS)
@pytest.mark.parametrize("zp1,zp2,zpo,lo,hi", [(0, 0, 0, -128, 127), (-7, 19, 3, -128, 127),
                                                (127, -128, -128, -128, 127),
                                                (5, -3, -20, -20, 127)])
def test_mul_fast_paths_equal_the_integer_loop(ratio, zp1, zp2, zpo, lo, hi):
    m, sh = quantize_multiplier(ratio)
    eff, off, ok = fast_mbqm_params(m, sh, 1 << 16)
    assert ok
    want = _mul_exact(zp1, zp2, m, sh, zpo, lo, hi)
    got = np.empty(_A.size, np.int8)
    ew._ew_mul_fast(_A, _B, np.array([eff], np.float32), zp1, zp2, np.float32(off), m, sh, zpo,
                    lo, hi, got)
    np.testing.assert_array_equal(got, want)
    # per channel: 256 channels, channel c's factor b = c − 128, every a in every row, in
    # blocks of whole rows (`_ew_chan_rows`), as the constant and the run-time paths give them
    kq = (np.arange(-128, 128) - zp2).astype(np.int32)
    ec = (kq.astype(np.float64) * eff).astype(np.float32)
    got[:] = 0
    ew._ew_mul_chan_fast(_A, ew._ew_chan_rows(kq), ew._ew_chan_rows(ec), zp1, 0,
                         np.float32(off), m, sh, zpo, lo, hi, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ratio", [2.0**-7, 1.0 / 3.0, 1.9, 40.0])
def test_mul_pair_table_equals_the_integer_loop(ratio):
    """A MUL of two run-time operands whose estimate is refused (`fast` False) binds the pair
    table (`_ew_pair_table_runner`): it, its NumPy form and its fixed-buffer call equal the
    integer loop on every (a, b) pair, laid out as a plan passes them (4-D)."""
    m, sh = quantize_multiplier(ratio)
    zp1, zp2, zpo, lo, hi = -7, 19, 3, -100, 127
    want = _mul_exact(zp1, zp2, m, sh, zpo, lo, hi).reshape(1, 256, 16, 16)
    params = {"zp1": zp1, "zp2": zp2, "m": m, "shift": sh, "zp_out": zpo, "lo": lo, "hi": hi,
              "out_shape": [1, 256, 16, 16], "fast": False}
    a, b = _A.reshape(1, 256, 16, 16), _B.reshape(1, 256, 16, 16)
    run = ew.run_mul_i8.bind(params)
    assert run is not ew.run_mul_i8 and callable(run.numpy_form)
    np.testing.assert_array_equal(run([a, b], params)[0], want)
    np.testing.assert_array_equal(run.numpy_form([a, b], params)[0], want)
    got = np.empty_like(want)
    fn, args = run.into([a, b], [got])
    fn(*args)
    np.testing.assert_array_equal(got, want)
    # broadcast operands leave the table for the runner's integer loop
    np.testing.assert_array_equal(run([a, b[:, :1]], params)[0],
                                  ew.run_mul_i8([a, b[:, :1]], params)[0])


@pytest.mark.parametrize("channels", [1, 5, 16, 24, 600])
def test_mul_run_time_channel_operand_matches_the_loop(channels):
    """`_ew_mul_chan_run_time` (the run-time per-channel operand, either order) through the
    runner, against the broadcast integer loop."""
    rng = np.random.default_rng(channels)
    m, sh = quantize_multiplier(0.00731)
    eff, off, ok = fast_mbqm_params(m, sh, 1 << 16)
    params = {"zp1": -3, "zp2": 11, "m": m, "shift": sh, "zp_out": 7, "lo": -128, "hi": 127,
              "out_shape": [2, 7, channels], "fast": ok, "eff": float(np.float32(eff)),
              "off": float(np.float32(off))}
    x = rng.integers(-128, 128, (2, 7, channels), dtype=np.int8)
    k = rng.integers(-128, 128, (1, 1, channels), dtype=np.int8)
    want = np.empty(x.size, np.int8)
    ew._ew_mul_loop(x.reshape(-1), np.broadcast_to(k, x.shape).reshape(-1), -3, 11, m, sh, 7,
                    -128, 127, want)
    np.testing.assert_array_equal(ew.run_mul_i8([x, k], params)[0].reshape(-1), want)
    params.update(zp1=11, zp2=-3)  # the per-channel operand first
    np.testing.assert_array_equal(ew.run_mul_i8([k, x], params)[0].reshape(-1), want)


def test_resize_bilinear_i8_equals_the_reference_loop():
    rng = np.random.default_rng(5)
    for trial in range(200):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        oh, ow = (int(v) for v in rng.integers(1, 25, 2))
        c = int(rng.choice([1, 3, 16, 37]))
        align = bool(rng.integers(0, 2)) and oh > 1 and ow > 1
        half = not align and bool(rng.integers(0, 2))
        ys, y0, y1 = shp._shp_bilinear_axis(h, oh, align, half)
        xs, x0, x1 = shp._shp_bilinear_axis(w, ow, align, half)
        n = 1 + trial % 2
        x = rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)
        if trial % 3 == 0:  # only the extremes: the int32 bound's edge
            x = np.where(x < 0, -128, 127).astype(np.int8)
        want = np.empty((n, oh, ow, c), np.int8)
        shp._shp_resize_bilinear_loop(x, ys, y0, y1, xs, x0, x1, -128, 127, want)
        got = np.empty(want.size, np.int8)
        rows = np.empty(2 * ow * c, np.int32)
        shp._shp_resize_bilinear_i8(x.reshape(-1), n, h, w, c, ys, y0, y1, xs, x0, x1, rows,
                                    got)
        np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"trial {trial}")


@pytest.mark.parametrize("cols,reps", [(1, 1), (4, 1), (1, 4), (3, 5), (300, 1)])
def test_conv_requant_flat_equals_the_row_loop(cols, reps):
    rng = np.random.default_rng(cols * 10 + reps)
    c = cols * reps
    rows = 97
    acc = rng.integers(-(1 << 24), 1 << 24, (rows, c)).astype(np.int32)
    acc[0, :] = np.iinfo(np.int32).max // 4
    m, shift = quantize_multipliers(rng.uniform(1e-6, 2.0, cols))
    left, right = split_shifts(shift)
    bias = rng.integers(-5000, 5000, cols).astype(np.int32)
    tiled = [np.tile(v, reps) for v in (bias, m, left, right)]
    want = np.empty((rows, c), np.int8)
    conv._conv_requant(acc, *tiled, -9, -128, 100, want)
    flat = [channel_rows(np.tile(v, reps), 256) for v in (bias, m, left, right)]
    got = np.empty(rows * c, np.int8)
    conv._conv_requant_flat(acc.reshape(-1), *flat, -9, -128, 100, got)
    np.testing.assert_array_equal(got.reshape(rows, c), want)


def test_flat_row_and_pad_helpers_equal_numpy():
    """The patch helpers on flat buffers (no reshape or view in jitted code): the u8 rows and
    padded copy of the VNNI path and the int16 ones of the multiply-add path, against numpy,
    with and without row padding (kp > k). They are plain loops, so they run on any host,
    VNNI or not."""
    from qcc.runtime.kernels import int8_madd as madd
    from qcc.runtime.kernels import int8_vnni as vnni

    rng = np.random.default_rng(3)
    for rows, k, kp in ((5, 16, 16), (7, 3, 8), (1, 27, 28)):
        x = rng.integers(-128, 128, rows * k, dtype=np.int8)
        want_u8 = np.zeros((rows, kp), np.uint8)
        want_u8[:, :k] = (x.reshape(rows, k).astype(np.int16) + 128).astype(np.uint8)
        got_u8 = np.full(rows * kp, 7, np.uint8)
        vnni.vnni_rows_u8(x, k, kp, got_u8, rows)
        np.testing.assert_array_equal(got_u8.reshape(rows, kp), want_u8)
        want_i16 = np.zeros((rows, kp), np.int16)
        want_i16[:, :k] = x.reshape(rows, k).astype(np.int16) - 5
        got_i16 = np.full(rows * kp, 7, np.int16)
        madd.madd_rows_i16(x, 5, k, kp, got_i16, rows)
        np.testing.assert_array_equal(got_i16.reshape(rows, kp), want_i16)
    for n, h, w, c, pt, pl, hp, wp in ((1, 5, 4, 3, 1, 2, 7, 7), (2, 3, 3, 16, 0, 0, 4, 4),
                                       (1, 4, 6, 2, 2, 1, 5, 6)):
        x = rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)
        h2, w2 = min(h, hp - pt), min(w, wp - pl)
        want_u8 = np.full((n, hp, wp, c), np.uint8((-9 + 128) & 0xFF))
        want_u8[:, pt:pt + h2, pl:pl + w2] = (x[:, :h2, :w2].astype(np.int16) + 128).astype(np.uint8)
        got_u8 = np.empty(n * hp * wp * c, np.uint8)
        vnni.vnni_pad_u8(x.reshape(-1), n, h, w, c, -9, pt, pl, got_u8, hp, wp)
        np.testing.assert_array_equal(got_u8.reshape(want_u8.shape), want_u8)
        want_i16 = np.zeros((n, hp, wp, c), np.int16)
        want_i16[:, pt:pt + h2, pl:pl + w2] = x[:, :h2, :w2].astype(np.int16) + 9
        got_i16 = np.full(n * hp * wp * c, 3, np.int16)
        conv._conv_pad_offset(x.reshape(-1), n, h, w, c, -9, pt, pl, got_i16, hp, wp)
        np.testing.assert_array_equal(got_i16.reshape(want_i16.shape), want_i16)


def test_lut_kernel_follows_the_host():
    """Bound lookups take the shuffle kernel exactly where the codegen target has AVX2 (x86)
    or is aarch64."""
    from qcc.runtime.kernels.simd import HAS_AVX2, TARGET_ARCH

    lut = np.arange(256, dtype=np.int64).astype(np.int8)
    kernel, table = act._act_lut_kernel(lut)
    shuffles = HAS_AVX2 or TARGET_ARCH == "aarch64"
    assert act.LUT_SHUFFLE == shuffles
    assert kernel is (act._act_lut_shuffle if shuffles else act._act_lut_loop)
    np.testing.assert_array_equal(table, lut)


def test_lut_shuffle_equals_the_scalar_lookup():
    """Every length up to 100 and a long one (the 32-byte steps and every tail), unaligned
    views, every stored value, random tables and the identity. Off x86 with AVX2 and
    aarch64 the shuffle kernel is never bound (test_lut_kernel_follows_the_host); the scalar
    lookup is then checked against NumPy here instead."""
    rng = np.random.default_rng(5)
    tables = [rng.integers(-128, 128, 256, dtype=np.int64).astype(np.int8),
              np.arange(-128, 128, dtype=np.int64).astype(np.int8)]
    every = np.arange(-128, 128, dtype=np.int64).astype(np.int8)
    for lut in tables:
        for n in [*range(101), 4099]:
            buf = rng.integers(-128, 128, n + 1, dtype=np.int64).astype(np.int8)
            for x in (buf[:n], buf[1:]):  # aligned and not
                want = lut[x.astype(np.int64) + 128]
                got = np.empty(x.size, np.int8)
                kernel = act._act_lut_shuffle if act.LUT_SHUFFLE else act._act_lut_loop
                kernel(x, lut, got)
                np.testing.assert_array_equal(got, want)
        x = np.tile(every, 3)
        got = np.empty(x.size, np.int8)
        (act._act_lut_shuffle if act.LUT_SHUFFLE else act._act_lut_loop)(x, lut, got)
        np.testing.assert_array_equal(got, lut[x.astype(np.int64) + 128])


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "scalar"])
@pytest.mark.parametrize("op_name", ["LogisticOp", "TanhOp", "HardSwishOp"])
def test_lut_steps_equal_builtin_ref(op_name, shuffle, monkeypatch):
    """LOGISTIC, TANH and HARD_SWISH single-op models, bound with the shuffle kernel (where
    the host has AVX2) and with the scalar lookup: qcc's plan equals LiteRT's BUILTIN_REF on
    inputs beyond the calibrated range (every stored value reached)."""
    import qcc
    from conftest import REF, run_litert
    from qcc.dialects import nn
    from qcc.frontends.tflite import import_tflite
    from qcc.testing import tflite_models as tm

    from qcc.backends.numba import compile_module

    monkeypatch.setattr(act, "LUT_SHUFFLE", shuffle and act.LUT_SHUFFLE)
    bound = []
    choose = act._act_lut_kernel
    monkeypatch.setattr(act, "_act_lut_kernel", lambda lut: bound.append(choose(lut)[0]) or choose(lut))
    cls = getattr(nn, op_name)
    model = qcc.Model(import_tflite(tm.op_model(cls)))
    q = qcc.quantize(model, representative_dataset=[tm.op_inputs(cls, s) for s in range(4)],
                     target="reference")
    content = q.to_tflite()
    compiled = compile_module(q.module)
    for seed in (100, 101):
        x = [v * np.float32(3.0) for v in tm.op_inputs(cls, seed)]
        want = run_litert(content, x, REF)
        got = compiled.run(x)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_array_equal(g, w)
    assert bound == [act._act_lut_shuffle if act.LUT_SHUFFLE else act._act_lut_loop]
