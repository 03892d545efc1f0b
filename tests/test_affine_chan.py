"""`affine_chan_i8`: a per-channel int8 table as two rounded lines per channel.

The plan builder fuses chains of per-channel element-wise steps (decomposed PRELU, RELU with
a rescale, MUL by a per-channel constant...) into one table of every (channel, stored value)
result, and then looks for its fastest exact form (`qcc.backends.numba._chan_step`). These
tests check the fit (`affine_chan_params`) on tables it must reproduce, on tables it must
refuse, and the vector kernel against the table on tensors of every channel count and
length (whole 32-output steps, the scalar tail, a step that wraps around the channels).
The models' chains are checked against LiteRT in test_runtime_int8.py and the zoo tier.
"""

from __future__ import annotations

import numpy as np
import pytest

from qcc.runtime.fixedpoint import mbqm, quantize_multiplier
from qcc.runtime.kernels import int8_elementwise as ew

VALUES = np.arange(-128, 128, dtype=np.int64)


def _lines_table(rng, c: int, z: int, s: int, lo: int, hi: int, slope: float) -> np.ndarray:
    """A table that is two rounded lines per channel (random slopes up to `slope` and
    offsets), as `affine_chan_i8` computes it: lut[k·256 + v + 128]."""
    t = VALUES - z
    e = np.round(rng.uniform(-slope, slope, size=(2, c)) * (1 << s)).astype(np.int64)
    b = rng.integers(-(60 << s), 60 << s, size=(2, c))
    side = (t < 0).astype(np.int64)
    v = (t[None, :] * e[side, :].T + b[side, :].T) >> s
    return np.clip(v, lo, hi).astype(np.int8).reshape(-1)


def _table_of(params, c: int) -> np.ndarray:
    probe = np.ascontiguousarray(np.broadcast_to(VALUES.astype(np.int8)[:, None], (256, c)))
    run = ew._ew_bind_affine_chan(params)
    return run([probe], params)[0].T.reshape(-1)


@pytest.mark.parametrize("c", [1, 3, 16, 31, 32, 33, 64, 213])
def test_fit_reproduces_two_line_tables(c):
    rng = np.random.default_rng(c)
    for z, lo, hi in ((0, -128, 127), (-21, -128, 127), (100, -60, 90), (-128, 0, 127)):
        lut = _lines_table(rng, c, z, 22, lo, hi, slope=1.9)
        params = ew.affine_chan_params(lut, c, z)
        assert params is not None, (c, z)
        assert np.array_equal(_table_of(params, c), lut)


def test_fit_takes_a_smaller_shift_for_steep_lines():
    """Slopes above 2 need |E| > 2^23 at S = 22: the fit goes on with a smaller S."""
    rng = np.random.default_rng(11)
    lut = _lines_table(rng, 8, 5, 16, -128, 127, slope=20.0)
    params = ew.affine_chan_params(lut, 8, 5)
    assert params is not None and int(params["g"][2]) < 22
    assert np.array_equal(_table_of(params, 8), lut)


def _prelu_table(c: int, zp_in: int, zp_out: int, alphas: np.ndarray, s_in: float,
                 s_out: float) -> np.ndarray:
    """A PRELU with TFLite's integer rounding (`mbqm`): q − zp_in rescaled by s_in / s_out
    at or above the zero point, by s_in·|alpha| / s_out (negated for a negative alpha)
    below it: the kind of table a decomposed PRELU tabulates to."""
    m1, sh1 = quantize_multiplier(s_in / s_out)
    out = np.empty((c, 256), np.int64)
    for k in range(c):
        m2, sh2 = quantize_multiplier(s_in * abs(alphas[k]) / s_out)
        for i, q in enumerate(VALUES):
            v = int(q) - zp_in
            if v >= 0:
                r = mbqm(v, m1, sh1)
            else:
                r = mbqm(v, m2, sh2) * (1 if alphas[k] >= 0 else -1)
            out[k, i] = min(max(r + zp_out, -128), 127)
    return out.astype(np.int8).reshape(-1)


def test_fit_reproduces_integer_prelu_tables():
    """PRELU computed with TFLite's integer rounding, for alphas of both signs and scales
    that make ties (s_in = s_out): every such table is two rounded lines."""
    rng = np.random.default_rng(3)
    for zp_in, zp_out, s_in, s_out in ((-21, -5, 0.02, 0.025), (0, 0, 0.1, 0.1),
                                       (17, -128, 0.5, 0.25), (-128, 3, 0.004, 0.003)):
        c = 12
        alphas = rng.uniform(-1.5, 1.5, c)
        alphas[0], alphas[1] = 0.25, 0.5  # exact halves: ties on the negative side
        lut = _prelu_table(c, zp_in, zp_out, alphas, s_in, s_out)
        params = ew.affine_chan_params(lut, c, zp_in)
        assert params is not None, (zp_in, zp_out, s_in, s_out)
        assert np.array_equal(_table_of(params, c), lut)


def test_fit_refuses_what_is_not_two_lines():
    rng = np.random.default_rng(5)
    c = 4
    assert ew.affine_chan_params(rng.integers(-128, 128, c * 256).astype(np.int8), c, 0) is None
    # one entry off a two-line table (mid-range, not at a clamp)
    lut = _lines_table(rng, c, 0, 22, -128, 127, slope=0.8)
    bad = lut.copy()
    k = 2 * 256 + 128 + 40
    bad[k] = bad[k] + (1 if bad[k] < 0 else -1)
    assert ew.affine_chan_params(bad, c, 0) is None
    # a split elsewhere than the kink: |x| (a line each side of 0) split at 60
    v_shape = np.tile(np.minimum(np.abs(VALUES), 127), c).astype(np.int8)
    assert ew.affine_chan_params(v_shape, c, 0) is not None
    assert ew.affine_chan_params(v_shape, c, 60) is None


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 31), (1, 32), (2, 3, 33), (1, 4, 4, 213),
                                   (1, 7, 7, 24), (3, 5, 64), (1, 17, 128)])
def test_kernel_equals_the_table_on_every_length(shape):
    """Whole 32-output steps, steps starting in any channel (C not a multiple of 32, C below
    32: a step spans several rows) and the scalar tail all give the table's value."""
    c = shape[-1]
    rng = np.random.default_rng(sum(shape))
    lut = _lines_table(rng, c, -9, 22, -120, 126, slope=1.5)
    params = ew.affine_chan_params(lut, c, -9)
    assert params is not None
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    want = lut.reshape(c, 256)[np.arange(x.size) % c, x.reshape(-1).astype(np.int64) + 128]
    run = ew._ew_bind_affine_chan(params)
    assert np.array_equal(run([x], params)[0].reshape(-1), want)
    out = np.full(shape, 99, np.int8)
    kernel, args = run.into([x], [out])
    kernel(*args)
    assert np.array_equal(out.reshape(-1), want)
    # a strided view goes through a contiguous copy
    wide = np.zeros(shape[:-1] + (2 * c,), np.int8)
    wide[..., ::2] = x
    assert np.array_equal(run([wide[..., ::2]], params)[0].reshape(-1), want)
