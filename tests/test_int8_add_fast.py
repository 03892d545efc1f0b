"""The fast int8 ADD / SUB kernels against the exact integer loop.

`_ew_add_sub_loop` transcribes TFLite's reference int8 ADD / SUB (it is checked against
LiteRT in test_int8_kernels.py / test_runtime_int8.py); here the float-estimate kernels must
give the same int8 for every one of the 256×256 input pairs, over many scale / zero-point /
activation combinations: generic scales, ties-heavy ratios (s1 = s2 = s_out/2, ...), output
scales that leave a small output right shift, SUB, and fused-activation bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from qcc.runtime.fixedpoint import add_sub_params, fast_mbqm_params
from qcc.runtime.kernels import int8_elementwise as ew

F32 = np.float32

# Every (a, b) pair of int8 values, flat.
_A = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
_B = np.tile(np.arange(-128, 128, dtype=np.int8), 256)


def _params(s1, s2, so, zp1, zp2, zpo, sign, lo, hi, n=_A.size):
    """`lower_add_sub`'s params for these quantizations (flat shape [n])."""
    p = add_sub_params(s1, s2, so, 20)
    return {
        "sign": sign, "zp1": zp1, "zp2": zp2, "left_shift": p["left_shift"],
        "m1": p["m1"], "shift1": p["shift1"], "m2": p["m2"], "shift2": p["shift2"],
        "m_out": p["m_out"], "shift_out": p["shift_out"], "zp_out": zpo, "lo": lo, "hi": hi,
        "out_shape": [n], **ew._ew_add_sub_fast_params(p, sign, zp1, zp2, zpo),
    }


def _exact(P, a=_A, b=_B):
    out = np.empty(a.size, np.int8)
    ew._ew_add_sub_loop(
        a, b, P["sign"], P["zp1"], P["zp2"], P["left_shift"], P["m1"], P["shift1"], P["m2"],
        P["shift2"], P["m_out"], P["shift_out"], P["zp_out"], P["lo"], P["hi"], out,
    )
    return out


def _rint_args(P, max_flag_rate):
    """`_ew_add_sub_rint`'s arguments (between the operands and out) with the flag-rate limit
    `max_flag_rate`, or None when the kernel cannot serve these params."""
    if P["shift_out"] > 0 or P["shift1"] > 0 or P["shift2"] > 0:
        return None
    eo, _, ok = fast_mbqm_params(P["m_out"], P["shift_out"], 1 << 30)
    if not ok:
        return None
    ls = P["left_shift"]
    c1 = float(F32(P["m1"] * 2.0 ** (ls + P["shift1"] - 31) * eo))
    c2 = float(F32(P["sign"] * P["m2"] * 2.0 ** (ls + P["shift2"] - 31) * eo))
    r = ew._ew_add_sub_rint_params(
        c1, c2, eo, P["shift_out"], P["zp1"], P["zp2"], P["zp_out"], max_flag_rate=max_flag_rate
    )
    if r is None:
        return None
    return ew._ew_add_sub_rint_args({**P, "c1": c1, "c2": c2, **r})


def _report(got, want):
    bad = np.flatnonzero(got != want)
    if bad.size == 0:
        return ""
    i = bad[0]
    return (
        f"{bad.size} outputs differ; first at a={_A[i % _A.size]} b={_B[i % _B.size]}: "
        f"{got[i]} != {want[i]}"
    )


def _random_configs(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        s1 = float(F32(np.exp(rng.uniform(np.log(1e-3), np.log(1.0)))))
        s2 = float(F32(s1 * np.exp(rng.uniform(np.log(1 / 16), np.log(16)))))
        # output scale: mostly near the inputs' (right shift ~19), sometimes far smaller
        # (small right shifts) or larger
        spread = rng.choice([1.0, 1.0, 1.0, 6.0])
        so = float(F32(max(s1, s2) * np.exp(rng.uniform(-spread, 2.0))))
        zp1, zp2, zpo = (int(z) for z in rng.integers(-128, 128, 3))
        sign = int(rng.choice([1, -1]))
        lo, hi = -128, 127
        if rng.random() < 0.4:
            lo = int(rng.integers(-128, 0))
            hi = int(rng.integers(lo, 128))
        yield s1, s2, so, zp1, zp2, zpo, sign, lo, hi


# Exact ties in the real arithmetic (the float32 scales keep most of them within tol).
_TIES = [
    (0.05, 0.05, 0.1, 0, 0, 0, 1, -128, 127),
    (0.05, 0.05, 0.1, 3, -5, 7, 1, -128, 127),
    (0.05, 0.05, 0.1, 3, -5, 7, -1, -128, 127),
    (0.1, 0.05, 0.1, -1, 9, -20, 1, -128, 127),
    (0.02, 0.08, 0.16, 12, -7, 0, -1, -3, 60),
    (0.25, 0.25, 0.5, 0, 0, -128, 1, -128, 127),
    (0.031, 0.12, 0.09, 10, -20, 5, 1, -128, 127),
    (0.007, 0.007, 0.007, 0, 0, 0, 1, 0, 127),
    (0.5, 0.25, 0.125, 1, 2, 3, -1, -128, 127),
]
# Small output right shifts (output scale far below the inputs').
_SMALL_RIGHT = [
    (0.05, 0.043, 0.05 * 2.0 ** -k, -3, 7, -12, sign, -128, 127)
    for k in (4, 8, 10, 12, 14, 17)
    for sign in (1, -1)
]


_RINT_CONFIGS = _TIES + _SMALL_RIGHT + list(_random_configs(2024, 160))
_RINT_SERVED = [c for c in _RINT_CONFIGS if _rint_args(_params(*c), max_flag_rate=1.0) is not None]
_RINT_REFUSED = [c for c in _RINT_CONFIGS if c not in _RINT_SERVED]


def test_rint_kernel_refuses_outputs_beyond_float32_fractions():
    """Output scales 2^14 and 2^17 times below the inputs' give estimates |y| >= 2^22, where
    y − rint(y) is no longer exact in float32: the rint kernel refuses exactly those, and the
    lowering picks another kernel (`test_runner_exact` checks its results)."""
    assert _RINT_REFUSED == [c for c in _SMALL_RIGHT if c[2] < 0.05 * 2.0 ** -13]
    for cfg in _RINT_REFUSED:
        assert not _params(*cfg).get("rint"), cfg


@pytest.mark.parametrize("cfg", _RINT_SERVED, ids=lambda c: str(c))
def test_rint_kernel_exact(cfg):
    """`_ew_add_sub_rint`, whenever its constants exist (flag-rate limit lifted), equals the
    integer loop on all input pairs."""
    P = _params(*cfg)
    args = _rint_args(P, max_flag_rate=1.0)
    assert args is not None
    want = _exact(P)
    got = np.empty_like(want)
    ew._ew_add_sub_rint(_A, _B, *args, got)
    assert not _report(got, want), _report(got, want)
    # odd lengths exercise the flag padding
    for n in (0, 5, 513, _A.size - 37):
        got = np.empty(n, np.int8)
        ew._ew_add_sub_rint(_A[:n], _B[:n], *args, got)
        assert np.array_equal(got, want[:n]), n


@pytest.mark.parametrize(
    "cfg", _TIES + _SMALL_RIGHT + list(_random_configs(7, 160)), ids=lambda c: str(c)
)
def test_runner_exact(cfg):
    """`run_add_sub_i8` and its bound form, with the kernel the lowering picks, equal the
    integer loop on all input pairs (4-D shapes, as a plan passes them)."""
    P = _params(*cfg)
    want = _exact(P).reshape(1, 256, 16, 16)
    P4 = {**P, "out_shape": [1, 256, 16, 16]}
    a, b = _A.reshape(1, 256, 16, 16), _B.reshape(1, 256, 16, 16)
    (got,) = ew.run_add_sub_i8([a, b], P4)
    assert np.array_equal(got, want), _report(got.reshape(-1), want.reshape(-1))
    (got,) = ew.run_add_sub_i8.bind(P4)([a, b], P4)
    assert np.array_equal(got, want), _report(got.reshape(-1), want.reshape(-1))


def test_lowering_picks_rint_for_generic_scales():
    """Generic scales with the usual output right shift get the rint kernel, and the
    compile-time flag rate (which evaluates y with fused multiply-adds) predicts what the
    kernel flags on all input pairs (exactly, on FMA hardware; a few outputs may differ
    where the multiply-adds are not fused)."""
    picked = 0
    for s1, s2, so, zp1, zp2, zpo, sign, lo, hi in _random_configs(5, 60):
        so = float(F32(max(s1, s2) * 1.3))  # right shift 19 or 20
        P = _params(s1, s2, so, zp1, zp2, zpo, sign, lo, hi)
        if not P["rint"]:
            continue
        picked += 1
        args = _rint_args(P, max_flag_rate=1.0)
        c1, c2, k, thr = args[0]
        u = (_B.astype(np.float64) * float(c2) + float(k)).astype(F32)
        y = (_A.astype(np.float64) * float(c1) + u).astype(F32)
        predicted = int(np.count_nonzero(np.abs(y - np.rint(y)) >= thr))
        out = np.empty(_A.size, np.int8)
        flags = np.zeros(_A.size, np.uint8)
        ew._ew_add_sub_rint_pass(_A, _B, c1, c2, k, thr, P["lo"], P["hi"], out, flags)
        flagged = int(np.count_nonzero(flags))
        assert abs(flagged - predicted) <= 8 + predicted // 50, (flagged, predicted)
        assert predicted <= ew._EW_RINT_MAX_FLAG_RATE * _A.size
    assert picked >= 50


def test_lowering_rejects_ties_heavy_ratios():
    """s1 = s2 = s_out/2 puts half the input pairs on exact ties: too many flags for the rint
    kernel, so the bound step looks its outputs up in a pair table (`test_runner_exact`
    checks it on every pair)."""
    P = _params(0.05, 0.05, 0.1, 3, -5, 7, 1, -128, 127)
    assert not P["rint"]
    assert _rint_args(P, max_flag_rate=ew._EW_RINT_MAX_FLAG_RATE) is None
    assert _rint_args(P, max_flag_rate=1.0) is not None
    run = ew.run_add_sub_i8.bind(P)
    assert run is not ew.run_add_sub_i8 and callable(run.numpy_form)


_TIES_REFUSED = [c for c in _TIES if not _params(*c)["rint"]]


@pytest.mark.parametrize("cfg", _TIES_REFUSED[:3] + _RINT_REFUSED[-1:], ids=lambda c: str(c))
def test_pair_table_forms_exact(cfg):
    """The pair-table step of a refused configuration: its NumPy form (the first run's) and
    its fixed-buffer call equal the integer loop on every pair; broadcast operands go to the
    runner's integer loop."""
    P = {**_params(*cfg), "out_shape": [1, 256, 16, 16]}
    assert not P["rint"]
    want = _exact(P).reshape(1, 256, 16, 16)
    a, b = _A.reshape(1, 256, 16, 16), _B.reshape(1, 256, 16, 16)
    run = ew.run_add_sub_i8.bind(P)
    (got,) = run.numpy_form([a, b], P)
    assert np.array_equal(got, want), _report(got.reshape(-1), want.reshape(-1))
    got = np.empty_like(want)
    fn, args = run.into([a, b], [got])
    fn(*args)
    assert np.array_equal(got, want), _report(got.reshape(-1), want.reshape(-1))
    np.testing.assert_array_equal(run([a, b[:, :1]], P)[0], ew.run_add_sub_i8([a, b[:, :1]], P)[0])
