"""nn.squared_difference (TFLite SQUARED_DIFFERENCE), beyond tests/test_conformance.py.

Semantics (LiteRT `tflite/kernels/squared_difference.cc`): float `(a - b) * (a - b)` with
broadcasting (BroadcastBinaryFunction4DSlow, so rank <= 4 when the shapes differ); int8 the
ADD-like fixed-point scheme with a left shift of 7 (Prepare's multipliers, then
`mbqm((v1 - v2)^2, m_out, shift_out) + zp_out`). Checked here: float equal to LiteRT
(NaN and infinities included), int8 bit for bit with BUILTIN_REF on every pair of int8
values for several scales and on broadcasting shapes, and the verifier refusing what
LiteRT's Prepare would abort on (output multiplier >= 1) or compute wrongly (rank-5
broadcasting).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AUTO, REF, run_litert
from xdsl.utils.exceptions import VerifyException

from qcc.backends.numba import compile_module
from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.irtext import parse_ir
from qcc.runtime.executor import Executor


def _f32(x: float) -> float:
    return float(np.float32(x))


def _t(shape, element: str) -> str:
    dims = "x".join(str(d) for d in shape)
    return f"tensor<{dims}x{element}>" if shape else f"tensor<{element}>"


def _q(scale: float, zp: int) -> str:
    return f"!quant.uniform<i8:f32, {_f32(scale)!r}:{zp}>"


def _module(lhs: str, rhs: str, out: str, *, verify: bool = True):
    text = (
        f"builtin.module {{\n  func.func @main(%a: {lhs}, %b: {rhs}) -> {out} {{\n"
        f"    %y = nn.squared_difference %a, %b : ({lhs}, {rhs}) -> {out} loc(\"sqd\")\n"
        f"    func.return %y : {out}\n  }}\n}}"
    )
    module = parse_ir(text, "sqd.mlir")
    if verify:
        module.verify()
    return module


SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((2, 3, 4, 5), (5,)),
    ((1, 3, 1, 5), (2, 1, 4, 1)),
    ((7,), ()),
    ((2, 3, 4, 5, 2), (2, 3, 4, 5, 2)),  # rank 5 without broadcasting
]


@pytest.mark.parametrize("lhs,rhs", SHAPES)
def test_float_equals_litert(lhs, rhs) -> None:
    out = np.broadcast_shapes(lhs, rhs)
    module = _module(_t(lhs, "f32"), _t(rhs, "f32"), _t(out, "f32"))
    rng = np.random.default_rng(len(lhs) * 10 + len(rhs))
    a = rng.uniform(-10, 10, lhs).astype(np.float32)
    b = rng.uniform(-10, 10, rhs).astype(np.float32)
    if a.size > 3:
        a.flat[:3] = [np.inf, -np.inf, np.nan]
    (ours,) = Executor(module).run([a, b])
    for resolver in (REF, AUTO):
        (theirs,) = run_litert(export_tflite(module), [a, b], resolver)
        np.testing.assert_array_equal(ours, theirs)


SCALES = [
    (0.02, 3, 0.02, 3, 0.1, -128),  # the whole output range used
    (0.02, 3, 0.02, 3, 0.005, -128),
    (0.05, -128, 0.01, 7, 0.3, -128),
    (0.001, 100, 0.2, -50, 0.2, -100),
    (1 / 128, 0, 1 / 128, 0, 1 / 1024, -128),
]


@pytest.mark.parametrize("s1,zp1,s2,zp2,so,zpo", SCALES)
def test_int8_every_pair_bit_exact(s1, zp1, s2, zp2, so, zpo) -> None:
    values = np.arange(-128, 128, dtype=np.int8)
    a = np.repeat(values, 256).reshape(256, 256)
    b = np.tile(values, 256).reshape(256, 256)
    t1, t2, to = _t((256, 256), _q(s1, zp1)), _t((256, 256), _q(s2, zp2)), _t((256, 256), _q(so, zpo))
    module = _module(t1, t2, to)
    (ours,) = compile_module(module).run([a, b])
    (theirs,) = run_litert(export_tflite(module), [a, b], REF)
    assert np.array_equal(ours, theirs), f"{int(np.sum(ours != theirs))} of 65536 differ"


@pytest.mark.parametrize("lhs,rhs", SHAPES[:4])
def test_int8_broadcasting_random_scales(lhs, rhs) -> None:
    rng = np.random.default_rng(sum(lhs) + sum(rhs))
    out = np.broadcast_shapes(lhs, rhs)
    for _ in range(6):
        s1, s2 = _f32(10 ** rng.uniform(-3, 0)), _f32(10 ** rng.uniform(-3, 0))
        bound = (2 * max(s1, s2)) ** 2 / 2**14
        so = _f32(bound * 10 ** rng.uniform(0.01, 5))
        zps = [int(z) for z in rng.integers(-128, 128, 3)]
        t1, t2, to = _t(lhs, _q(s1, zps[0])), _t(rhs, _q(s2, zps[1])), _t(out, _q(so, zps[2]))
        module = _module(t1, t2, to)
        a = rng.integers(-128, 128, lhs, dtype=np.int8)
        b = rng.integers(-128, 128, rhs, dtype=np.int8)
        (ours,) = compile_module(module).run([a, b])
        (theirs,) = run_litert(export_tflite(module), [a, b], REF)
        assert np.array_equal(ours, theirs)


def test_output_multiplier_of_one_or_more_is_refused() -> None:
    """(2 * 0.5)^2 / (2^14 * 2^-14) = 1: LiteRT's Prepare would abort the process."""
    t, to = _t((4,), _q(0.5, 0)), _t((4,), _q(2.0**-14, 0))
    with pytest.raises(VerifyException, match="'nn.squared_difference' op output multiplier"):
        _module(t, t, to)
    module = _module(t, t, to, verify=False)
    (op,) = [o for o in module.walk() if isinstance(o, nn.SquaredDifferenceOp)]
    types = nn.QuantTypes.of(op)
    assert nn.min_result_scale(op, types) > 2.0**-14  # what infer-scales keeps above


def test_broadcasting_beyond_rank_4_is_refused() -> None:
    lhs, rhs, out = (2, 1, 3, 1, 2), (1, 4, 1, 5, 2), (2, 4, 3, 5, 2)
    with pytest.raises(VerifyException, match="rank <= 4"):
        _module(_t(lhs, "f32"), _t(rhs, "f32"), _t(out, "f32"))
