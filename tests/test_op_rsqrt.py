"""nn.rsqrt (TFLite RSQRT), beyond tests/test_conformance.py.

Semantics (LiteRT `tflite/kernels/elementwise.cc`, RsqrtEval): float `1.f / std::sqrt(x)`
(NaN below zero, inf at zero); int8 RsqrtEvalQuantizedInt8, an integer Newton-Raphson inverse
square root (`GetInvSqrtQuantizedMultiplierExp`) per input value, the zero point mapped to
127, and an invocation error for any input below the zero point. Checked here: float equal
to LiteRT (edge values included), int8 bit for bit with BUILTIN_REF on every valid int8
input for many scales and zero points, the invalid-input error on both sides, and the
version.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import AUTO, REF, run_litert

from qcc.backends.numba import compile_module
from qcc.backends.tflite import export_tflite
from qcc.irtext import parse_ir
from qcc.runtime.errors import InputMismatchError
from qcc.runtime.executor import Executor


def _f32(x: float) -> float:
    return float(np.float32(x))


def _t(shape, element: str) -> str:
    return f"tensor<{'x'.join(str(d) for d in shape)}x{element}>"


def _q(scale: float, zp: int) -> str:
    return f"!quant.uniform<i8:f32, {_f32(scale)!r}:{zp}>"


def _module(t_in: str, t_out: str):
    text = (
        f"builtin.module {{\n  func.func @main(%x: {t_in}) -> {t_out} {{\n"
        f"    %y = nn.rsqrt %x : ({t_in}) -> {t_out} loc(\"rsqrt\")\n"
        f"    func.return %y : {t_out}\n  }}\n}}"
    )
    module = parse_ir(text, "rsqrt.mlir")
    module.verify()
    return module


def test_float_equals_litert() -> None:
    normal = np.geomspace(1e-30, 1e30, 500, dtype=np.float32)
    edges = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, 3e38], np.float32)
    x = np.concatenate([normal, edges]).reshape(4, 127)
    module = _module(_t((4, 127), "f32"), _t((4, 127), "f32"))
    content = export_tflite(module)
    (ours,) = Executor(module).run([x])
    # the reference kernel: correctly rounded float32 sqrt and division, as numpy's
    np.testing.assert_array_equal(ours, run_litert(content, [x], REF)[0])
    # XNNPACK (the default resolver) agrees on normal positive inputs; it returns NaN at 0
    # and for subnormals, and is off above ~1e38
    (theirs,) = run_litert(content, [x], AUTO)
    np.testing.assert_allclose(ours.reshape(-1)[:500], theirs.reshape(-1)[:500], rtol=1e-6)


def _cases():
    rng = np.random.default_rng(11)
    cases = [(4 / 255, -128, 4.47 / 255, -128), (0.05, -128, 0.02, 0), (0.001, 0, 0.5, -128),
             (1.0, -128, 1 / 256, -128), (0.02, 50, 0.01, -20)]
    for _ in range(16):
        cases.append((_f32(10 ** rng.uniform(-4, 0.5)), int(rng.integers(-128, 100)),
                      _f32(10 ** rng.uniform(-3, 0.5)), int(rng.integers(-128, 128))))
    return cases


@pytest.mark.parametrize("s_in,zp_in,s_out,zp_out", _cases())
def test_int8_every_valid_input_bit_exact(s_in, zp_in, s_out, zp_out) -> None:
    module = _module(_t((2, 128 - zp_in), _q(s_in, zp_in)), _t((2, 128 - zp_in), _q(s_out, zp_out)))
    x = np.tile(np.arange(zp_in, 128, dtype=np.int8), (2, 1))
    (ours,) = compile_module(module).run([x])
    (theirs,) = run_litert(export_tflite(module), [x], REF)
    assert np.array_equal(ours, theirs), f"{int(np.sum(ours != theirs))} of {x.size} differ"


def test_int8_input_below_the_zero_point_fails_like_litert() -> None:
    module = _module(_t((4,), _q(0.05, 0)), _t((4,), _q(0.02, -128)))
    x = np.array([3, 0, -1, 5], np.int8)  # -1 encodes -0.05
    with pytest.raises(RuntimeError, match="Rsqrt is only defined for positive values"):
        run_litert(export_tflite(module), [x], REF)
    with pytest.raises(InputMismatchError, match="RSQRT: an int8 input below the zero point 0"):
        compile_module(module).run([x])


def test_int8_operator_version_is_2() -> None:
    module = _module(_t((4,), _q(0.05, -128)), _t((4,), _q(0.02, -128)))
    model = schema.ModelT.InitFromPackedBuf(export_tflite(module), 0)
    (code,) = model.operatorCodes
    assert (code.builtinCode, code.version) == (schema.BuiltinOperator.RSQRT, 2)


def _layer_norm_model() -> bytes:
    """A transformer's layer norm as TFLite's converter writes it: MEAN, SQUARED_DIFFERENCE,
    MEAN, ADD epsilon, RSQRT, SUB, MUL (over the last axis of [1, 16, 32])."""
    from qcc.testing import tflite_models as tm

    op = schema.BuiltinOperator
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 16, 32])
    axis = b.add_constant("axis", np.array([2], np.int32))
    reducer = schema.ReducerOptionsT()
    reducer.keepDims = True
    mean = b.add_op(op.MEAN, [x, axis], [1, 16, 1], reducer, name="mean")
    sqd = b.add_op(op.SQUARED_DIFFERENCE, [x, mean], [1, 16, 32],
                   schema.SquaredDifferenceOptionsT(), name="sqd")
    var = b.add_op(op.MEAN, [sqd, axis], [1, 16, 1], reducer, name="variance")
    eps = b.add_constant("epsilon", np.array([1e-3], np.float32))
    shifted = b.add_op(op.ADD, [var, eps], [1, 16, 1], schema.AddOptionsT(), name="var_eps")
    inv = b.add_op(op.RSQRT, [shifted], [1, 16, 1], name="inv_std")
    centred = b.add_op(op.SUB, [x, mean], [1, 16, 32], schema.SubOptionsT(), name="centred")
    b.mark_output(b.add_op(op.MUL, [centred, inv], [1, 16, 32], schema.MulOptionsT(), name="y"))
    return b.build()


def test_quantized_layer_norm_is_int8_and_bit_exact(tmp_path) -> None:
    """SQUARED_DIFFERENCE and RSQRT where real models use them: the whole layer norm
    quantizes to int8 (no float island) and qcc's integer runtime equals BUILTIN_REF."""
    import qcc
    from qcc.dialects import nn

    path = tmp_path / "layer_norm.tflite"
    path.write_bytes(_layer_norm_model())
    rng = np.random.default_rng(5)
    samples = [[rng.normal(0.5, 2.0, (1, 16, 32)).astype(np.float32)] for _ in range(8)]
    q = qcc.quantize(qcc.load(path), representative_dataset=samples, mode="int8", io_dtype="int8",
                     target="reference")  # RSQRT and SQUARED_DIFFERENCE in their int8 kernels
    kinds = {type(op) for op in q.module.walk()}
    assert {nn.SquaredDifferenceOp, nn.RsqrtOp} <= kinds
    assert not compile_module(q.module).has_float_islands
    content = q.to_tflite()
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 16, 32), dtype=np.int8)
        assert np.array_equal(q.run([x])[0], run_litert(content, [x], REF)[0])
