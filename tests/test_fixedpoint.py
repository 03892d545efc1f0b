"""Property tests of runtime/fixedpoint.py against plain-Python exact definitions.

The oracles below are written from the gemmlowp / TFLite definitions with arbitrary-precision
Python ints and `fractions.Fraction` (no int64 tricks, no floats), so they check the
jitted int64 emulation, the C truncation and the int32 wrap-around independently.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcc.runtime import fixedpoint as fp

I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
SHIFT = st.integers(min_value=-31, max_value=30)


# ---------------------------------------------------------------------------------------------
# exact oracles


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def round_half_away_exact(r: Fraction) -> int:
    n = math.floor(abs(r) + Fraction(1, 2))
    return n if r >= 0 else -n


def srdhm_exact(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    return c_div(ab + nudge, 2**31)


def rdbpot_exact(x: int, e: int) -> int:
    return round_half_away_exact(Fraction(x, 2**e))


def mbqm_exact(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot_exact(srdhm_exact(wrap32(x * 2**left), m), right)


def quantize_multiplier_exact(d: float) -> tuple[int, int]:
    if d == 0:
        return 0, 0
    r = Fraction(d)
    # frexp: d = q * 2^e, 0.5 <= |q| < 1
    e = 0
    while abs(r) >= 1:
        r /= 2
        e += 1
    while abs(r) < Fraction(1, 2):
        r *= 2
        e -= 1
    m = round_half_away_exact(r * 2**31)
    if m == 2**31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    return m, e


# ---------------------------------------------------------------------------------------------
# scalar primitives


@settings(max_examples=3000, deadline=None)
@given(I32, I32)
def test_srdhm(a, b):
    assert fp.srdhm(a, b) == srdhm_exact(a, b)


def test_srdhm_edges():
    for a, b in [(-(2**31), -(2**31)), (-(2**31), 2**31 - 1), (2**31 - 1, 2**31 - 1), (-1, 1),
                 (1, -1), (-(2**30), 1), (-(2**30) - 1, 1), (2**30, 1), (-3, 2**30)]:
        assert fp.srdhm(a, b) == srdhm_exact(a, b), (a, b)


@settings(max_examples=3000, deadline=None)
@given(I32, st.integers(min_value=0, max_value=31))
def test_rdbpot(x, e):
    assert fp.rdbpot(x, e) == rdbpot_exact(x, e)


def test_rdbpot_ties():
    for e in range(1, 8):
        for k in range(-20, 21):
            x = k * 2**e + 2 ** (e - 1)  # exact .5 ties
            assert fp.rdbpot(x, e) == rdbpot_exact(x, e)
            assert fp.rdbpot(-x, e) == rdbpot_exact(-x, e)


@settings(max_examples=3000, deadline=None)
@given(I32, st.integers(min_value=2**30, max_value=2**31 - 1), SHIFT)
def test_mbqm(x, m, shift):
    assert fp.mbqm(x, m, shift) == mbqm_exact(x, m, shift)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=-(2**20), max_value=2**20),
       st.integers(min_value=2**30, max_value=2**31 - 1), st.integers(min_value=-31, max_value=0))
def test_mbqm_smaller_than_one(x, m, shift):
    assert fp.mbqm_smaller_than_one_exp(x, m, shift) == mbqm_exact(x, m, shift)


@settings(max_examples=1000, deadline=None)
@given(I32, st.integers(min_value=-31, max_value=30))
def test_saturating_rounding_multiply_by_pot(x, e):
    if e >= 0:
        want = max(-(2**31), min(2**31 - 1, x * 2**e))
        # gemmlowp saturates on |x| > threshold; x == -threshold-1 also saturates to min
        threshold = 2 ** (31 - e) - 1
        if x > threshold:
            want = 2**31 - 1
        elif x < -threshold:
            want = -(2**31)
        if e == 0:
            want = x
    else:
        want = rdbpot_exact(x, -e)
    assert fp.saturating_rounding_multiply_by_pot(x, e) == want


# ---------------------------------------------------------------------------------------------
# compile-time multipliers


FLOATS = st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=3000, deadline=None)
@given(FLOATS)
def test_quantize_multiplier(d):
    assert fp.quantize_multiplier(d) == quantize_multiplier_exact(d)
    f32 = float(np.float32(d))
    assert fp.quantize_multiplier(f32) == quantize_multiplier_exact(f32)


def test_quantize_multiplier_edges():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(1.0) == (2**30, 1)
    assert fp.quantize_multiplier(0.5) == (2**30, 0)
    # q rounds up to 2^31 -> renormalised
    d = (2**31 - 0.5) / 2**31
    assert fp.quantize_multiplier(d) == quantize_multiplier_exact(d) == (2**30, 1)
    assert fp.quantize_multiplier(2.0**-40) == (0, 0)
    assert fp.quantize_multiplier(-0.75) == quantize_multiplier_exact(-0.75)
    m, s = fp.quantize_multipliers([0.25, 0.0, 3.0])
    assert m.dtype == np.int32 and list(zip(m.tolist(), s.tolist())) == [
        fp.quantize_multiplier(0.25), (0, 0), fp.quantize_multiplier(3.0)]


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=1e-6, max_value=10.0), st.floats(min_value=1e-6, max_value=10.0),
       st.floats(min_value=1e-6, max_value=10.0))
def test_add_sub_params(s1, s2, so):
    s1, s2, so = (float(np.float32(v)) for v in (s1, s2, so))
    p = fp.add_sub_params(s1, s2, so)
    twice = 2 * max(s1, s2)
    assert (p["m1"], p["shift1"]) == quantize_multiplier_exact(s1 / twice)
    assert (p["m2"], p["shift2"]) == quantize_multiplier_exact(s2 / twice)
    assert (p["m_out"], p["shift_out"]) == quantize_multiplier_exact(twice / (2**20 * so))
    assert p["shift1"] <= 0 and p["shift2"] <= 0


def test_round_half_away_and_activation_range():
    assert fp.round_half_away(np.float32(0.49999997)) == 0
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997], np.float32)
    assert fp.round_half_away(x).tolist() == [-3, -2, -1, 1, 2, 3, 0]
    assert fp.round_half_away(2.5) == 3.0
    assert fp.activation_range_int8("NONE", 0.1, 3) == (-128, 127)
    assert fp.activation_range_int8("RELU", 0.1, 3) == (3, 127)
    assert fp.activation_range_int8("RELU6", 0.05, -10) == (-10, 110)
    assert fp.activation_range_int8("RELU_N1_TO_1", 0.1, 0) == (-10, 10)


# ---------------------------------------------------------------------------------------------
# array variants


@settings(max_examples=100, deadline=None)
@given(st.lists(I32, min_size=1, max_size=40), st.integers(min_value=2**30, max_value=2**31 - 1),
       SHIFT)
def test_mbqm_array(xs, m, shift):
    got = fp.mbqm_array(np.array(xs, np.int64), m, shift)
    assert got.tolist() == [mbqm_exact(x, m, shift) for x in xs]


def test_requantize_per_channel():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**22), 2**22, size=(50, 7))
    eff = rng.uniform(1e-5, 2e-2, size=7)
    m, sh = fp.quantize_multipliers(eff)
    out = np.empty((50, 7), np.int8)
    fp.requantize_per_channel_i8(acc.astype(np.float64), m, sh, -5, -100, 120, out)
    want = [[max(-100, min(120, mbqm_exact(int(a), int(mm), int(s)) - 5))
             for a, mm, s in zip(row, m, sh)] for row in acc]
    assert out.tolist() == want
    got = fp.mbqm_per_channel(acc.astype(np.int32), m, sh)
    assert got.tolist() == [[mbqm_exact(int(a), int(mm), int(s)) for a, mm, s in zip(row, m, sh)]
                            for row in acc]
    fp.requantize_float_per_channel_i8(acc, eff, 3, -128, 127, out)
    want = [[max(-128, min(127, round_half_away_exact(Fraction(int(a)) * Fraction(float(e))) + 3))
             for a, e in zip(row, eff)] for row in acc]
    assert out.tolist() == want


def test_quantize_dequantize_requantize():
    x = np.array([-1.5, -0.5, 0.5, 1.5, 2.5, 1000.0, -1000.0, 0.3, 0.0], np.float32)
    out = np.empty(x.shape, np.int8)
    fp.quantize_f32_i8(x, np.float32(0.5), 1, out)
    want = [max(-128, min(127, round_half_away_exact(Fraction(float(np.float32(v) / np.float32(0.5)))) + 1))
            for v in x]
    assert out.tolist() == want
    q = np.arange(-128, 128, dtype=np.int8)
    f = np.empty(q.shape, np.float32)
    fp.dequantize_i8(q, np.float32(0.0235), -12, f)
    assert np.array_equal(f, (np.float32(0.0235) * (q.astype(np.int32) - (-12))).astype(np.float32))
    m, s = fp.quantize_multiplier(float(np.float32(0.02)) / float(np.float32(0.03)))
    r = np.empty(q.shape, np.int8)
    fp.requantize_i8(q, m, s, 4, -7, r)
    assert r.tolist() == [max(-128, min(127, mbqm_exact(int(v) - 4, m, s) - 7)) for v in q]


@pytest.mark.parametrize("ratio", [1e-4, 0.02 / 0.03, 1.0, 3.7, 300.0])
@pytest.mark.parametrize("lo, hi", [(-128, 127), (-32768, 32767)])
def test_requantize_int_is_the_reference_requantize(ratio, lo, hi):
    """`requantize_int` (branch-free `mbqm_fast`, m >= 0) against the exact MBQM, for scale
    ratios below and above 1 (shift < 0, = 0, > 0) over the whole int8 / int16 input range."""
    m, s = fp.quantize_multiplier(ratio)
    q = np.arange(lo, hi + 1, dtype=np.int8 if hi == 127 else np.int16)
    r = np.empty(q.shape, q.dtype)
    fp.requantize_int(q, m, s, 3, -5, lo, hi, r)
    want = [max(lo, min(hi, mbqm_exact(int(v) - 3, m, s) - 5)) for v in q.tolist()]
    assert r.tolist() == want


@pytest.mark.parametrize("lo, hi", [(-128, 127), (-32768, 32767)])
def test_quantize_f32_int_matches_the_reference_formula(lo, hi):
    """`quantize_f32_int` (`quantize_value`: float32 clamp, no 64-bit lanes) against
    AffineQuantize written out in float64: q = clamp(round_half_away(fl32(x / scale)) + zp),
    on quotients at and next to every rounding boundary, huge values, ±inf and NaN (-> lo)."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        scale = np.float32(rng.uniform(0.5, 2.0) * 10.0 ** rng.integers(-5, 3))
        zp = int(rng.integers(lo, hi + 1))
        k = np.concatenate([np.arange(-300, 300), np.arange(-70000, 70000, 97)]) + 0.5
        x = (k * float(scale)).astype(np.float32)
        x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf)),
                            (rng.standard_normal(500) * 1e12).astype(np.float32),
                            np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 3e9, -3e9], np.float32),
                            np.float32([0.49999997, -0.49999997]) * scale])
        out = np.empty(x.size, np.int32)
        fp.quantize_f32_int(x, scale, zp, lo, hi, out)
        f = (x / scale).astype(np.float64)  # numpy's float32 division: correctly rounded
        with np.errstate(invalid="ignore"):
            r = np.sign(f) * np.floor(np.abs(f) + 0.5)
            want = np.where(np.isnan(r), lo, np.clip(np.nan_to_num(r, posinf=1e30, neginf=-1e30) + zp, lo, hi))
        assert np.array_equal(out, want.astype(np.int32)), (scale, zp)


# ---------------------------------------------------------------------------------------------
# gemmlowp transcendental helpers: the result must approximate the real function closely


def test_exp_on_negative_values():
    for ib in (0, 3, 5, 6):
        frac = 31 - ib
        for k in np.linspace(-(2**31) + 1, 0, 257).astype(np.int64).tolist():
            got = fp.exp_on_negative_values(k, ib) / 2**31
            want = math.exp(k / 2**frac)
            assert abs(got - want) < 2e-6, (ib, k, got, want)


def test_one_over_one_plus_x_and_reciprocal():
    for k in np.linspace(0, 2**31 - 1, 101).astype(np.int64).tolist():
        got = fp.one_over_one_plus_x_for_x_in_0_1(k) / 2**31
        assert abs(got - 1 / (1 + k / 2**31)) < 1e-8
    for v in [1.0, 1.25, 3.0, 100.5, 4000.0]:
        raw = int(v * 2**19)  # Q12.19
        scale, bits = fp.get_reciprocal(raw, 12)
        assert abs(scale / 2**31 / 2**bits - 1 / v) < 1e-6 / v


@settings(max_examples=3000, deadline=None)
@given(I32, st.integers(min_value=0, max_value=2**31 - 1), SHIFT)
def test_mbqm_fast(x, m, shift):
    assert fp.mbqm_fast(x, m, max(shift, 0), max(-shift, 0)) == mbqm_exact(x, m, shift)


def _tables(t):
    return [t[k] for k in ("eff", "margin", "p2r", "ip2r", "bias_f", "bias", "m", "left", "right")]


def _fast_requant_check(acc, m, shift, bias, zp, lo, hi, acc_bound=None):
    """As a [1, n] block (n channels) and as an [n, 1] block (one channel per row)."""
    want = [max(lo, min(hi, mbqm_exact(int(a) + int(b), int(mm), int(s)) + zp))
            for a, b, mm, s in zip(acc.tolist(), np.broadcast_to(bias, acc.shape).tolist(),
                                   np.broadcast_to(m, acc.shape).tolist(),
                                   np.broadcast_to(shift, acc.shape).tolist())]
    t = fp.fast_requant_tables(m, shift, bias, acc_bound)
    out = np.empty((1, acc.size), np.int8)
    fp.requant_fast_i8(acc.astype(np.float32).reshape(1, -1), *_tables(t), zp, lo, hi, out)
    assert out.reshape(-1).tolist() == want
    if len(set(np.broadcast_to(m, acc.shape).tolist())) == 1 and len(set(np.broadcast_to(bias, acc.shape).tolist())) == 1:
        t1 = fp.fast_requant_tables(np.asarray(m).reshape(-1)[:1], np.asarray(shift).reshape(-1)[:1],
                                    np.asarray(bias).reshape(-1)[:1], acc_bound)
        out = np.empty((acc.size, 1), np.int8)
        fp.requant_fast_i8(acc.astype(np.float32).reshape(-1, 1), *_tables(t1), zp, lo, hi, out)
        assert out.reshape(-1).tolist() == want


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.floats(min_value=1e-6, max_value=4.0),
       st.integers(min_value=-128, max_value=127), st.integers(min_value=1, max_value=300))
def test_requant_fast_random(seed, eff, zp, n):
    rng = np.random.default_rng(seed)
    m, s = fp.quantize_multiplier(eff)
    mag = int(min(2**23, max(2.0, 300 / eff)))
    acc = rng.integers(-mag, mag, size=n)
    bias = rng.integers(-(2**20), 2**20, size=n)
    _fast_requant_check(acc, np.full(n, m), np.full(n, s), bias, zp, -128, 127)
    _fast_requant_check(acc, np.full(n, m), np.full(n, s), np.full(n, bias[0]), zp, -128, 127)
    ms, ss = fp.quantize_multipliers(eff * rng.uniform(0.5, 2.0, size=n))
    _fast_requant_check(acc, ms, ss, bias, zp, -100, 120)


def test_fast_requant_tables_left_shifts_take_the_estimate_within_the_accumulator_bound():
    """A left-shifted channel (real multiplier >= 1) is decided by the float32 estimate like a
    right = 0 channel when the caller's bound keeps (acc + bias)·2^left inside int32, and is
    always recomputed (margin 2) without a bound or past it."""
    m, shift = fp.quantize_multiplier(5.3)  # shift 3
    assert shift == 3
    edge = (1 << 28) - 100  # (edge + |bias|)·2^3 = 2^31: the first bound that can wrap
    t = fp.fast_requant_tables([m] * 4, [shift] * 4, [-100] * 4, [0, edge - 1, edge, 10**9])
    assert t["margin"].tolist() == [0.5, 0.5, 2.0, 2.0]
    assert np.isnan(t["p2r"][2:]).all() and (t["p2r"][:2] == 1.0).all()
    assert fp.fast_requant_tables([m], [shift], [0])["margin"].tolist() == [2.0]  # no bound
    # right-shifted channels do not depend on the bound
    m2, s2 = fp.quantize_multiplier(0.01)
    assert fp.fast_requant_tables([m2], [s2], [0], [2**40])["margin"][0] < 0.5


def test_requant_fast_left_shifts():
    """Left-shifted channels taking the estimate (`acc_bound` given): every accumulator
    around each rounding tie of z, and random ones up to the bound, equal the integer
    reference."""
    rng = np.random.default_rng(11)
    for eff in (1.0, 1.25, 1.999, 2.0, 3.14159, 7.5, 40.0, 127.9, 1000.5):
        m, s = fp.quantize_multiplier(eff)
        assert s > 0
        bound = int(min(2**24 - 1, (2**31 - 1) // (1 << s) - 5000))
        xs = []
        for k in range(-300, 300):
            c = int(round((k + 0.5) / eff))
            xs += [c - 1, c, c + 1]
        xs += rng.integers(-bound, bound + 1, size=400).tolist()
        acc = np.array([x for x in xs if abs(x) <= bound], np.int64)
        assert fp.fast_requant_tables([m], [s], [0], bound)["margin"][0] == 0.5
        for bias in (0, 4999, -4999):
            n = acc.size
            a = np.clip(acc - bias, -bound, bound)
            _fast_requant_check(a, np.full(n, m), np.full(n, s), np.full(n, bias), 3, -128, 127,
                                acc_bound=bound)
            _fast_requant_check(a, np.full(n, m), np.full(n, s), np.full(n, bias), -5, -20, 90,
                                acc_bound=bound)


def test_requant_fast_ties():
    """Accumulators placed exactly on, and one step around, every rounding tie."""
    for eff in (1 / 256, 3 / 1024, 0.0123456, 0.3, 0.5, 0.75, 0.99, 1.5, 2.0**-20):
        m, s = fp.quantize_multiplier(eff)
        xs = []
        for k in range(-140, 140):
            c = int(round((k + 0.5) / eff))
            xs += [c - 2, c - 1, c, c + 1, c + 2]
        acc = np.array([x for x in xs if abs(x) < 2**24], np.int64)
        n = acc.size
        for bias in (0, 12345, -(2**24) - 5):
            b = np.full(n, bias)
            a = np.clip(acc - bias, -(2**24) + 1, 2**24 - 1)
            _fast_requant_check(a, np.full(n, m), np.full(n, s), b, 3, -120, 127)
