"""nn.gelu (TFLite GELU), beyond what tests/test_conformance.py checks for every op.

Semantics (LiteRT `tflite/kernels/activations.cc` GeluPrepare / GeluEval,
`internal/reference/gelu.h`): float32 `0.5 x erfc(-x / sqrt 2)`, or with `approximate` the
tanh form; int8 a 256-entry table filled at Prepare by `LUTPopulate<int8_t>` with the same
transforms in float32. Checked here: both forms in float against LiteRT over a wide range,
the int8 table bit for bit against BUILTIN_REF on every int8 input for many scales and zero
points (both forms), the option read from a file written elsewhere, and the version.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import AUTO, REF, run_litert

from qcc.backends.numba import compile_module
from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir
from qcc.runtime.executor import Executor
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
SHAPE = (4, 256)


def _f32(x: float) -> float:
    return float(np.float32(x))


def _tensor(element: str) -> str:
    return f"tensor<{'x'.join(map(str, SHAPE))}x{element}>"


def _qtype(scale: float, zp: int) -> str:
    return _tensor(f"!quant.uniform<i8:f32, {_f32(scale)!r}:{zp}>")


def _module(approximate: bool, t_in: str, t_out: str):
    flag = "true" if approximate else "false"
    text = (
        f"builtin.module {{\n  func.func @main(%x: {t_in}) -> {t_out} {{\n"
        f"    %y = nn.gelu %x {{approximate = {flag}}} : ({t_in}) -> {t_out}\n"
        f"    func.return %y : {t_out}\n  }}\n}}"
    )
    module = parse_ir(text, "gelu.mlir")
    module.verify()
    return module


@pytest.mark.parametrize("approximate", [False, True])
def test_float_matches_litert_over_a_wide_range(approximate: bool) -> None:
    module = _module(approximate, _tensor("f32"), _tensor("f32"))
    content = export_tflite(module)
    x = np.linspace(-12.0, 12.0, num=int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
    x[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    (ours,) = Executor(module).run([x])
    for resolver in (REF, AUTO):
        (theirs,) = run_litert(content, [x], resolver)
        # qcc evaluates in double and rounds once; LiteRT's float32 Eigen evaluation (and
        # XNNPACK's) flushes the negative tail, |gelu(x)| < 7e-7 (x < -4.8), to -0
        np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("approximate", [False, True])
def test_int8_table_is_bit_exact_on_every_input(approximate: bool) -> None:
    rng = np.random.default_rng(7 + approximate)
    sweep = np.tile(np.arange(-128, 128, dtype=np.int8), (SHAPE[0], 1))
    cases = [(0.02, 0, 0.01, -20), (0.05, -128, 0.04, -3), (1 / 64, 10, 1 / 128, -128)]
    cases += [
        (10 ** rng.uniform(-3, 0), int(rng.integers(-128, 128)), 10 ** rng.uniform(-3, 0),
         int(rng.integers(-128, 128)))
        for _ in range(12)
    ]
    for s_in, zp_in, s_out, zp_out in cases:
        module = _module(approximate, _qtype(s_in, zp_in), _qtype(s_out, zp_out))
        (ours,) = compile_module(module).run([sweep])
        (theirs,) = run_litert(export_tflite(module), [sweep], REF)
        assert np.array_equal(ours, theirs), (
            f"scales {s_in}:{zp_in} -> {s_out}:{zp_out}: {int(np.sum(ours != theirs))} differ"
        )


def test_approximate_option_round_trips_from_another_writer() -> None:
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 16])
    options = schema.GeluOptionsT()
    options.approximate = True
    b.mark_output(b.add_op(Op.GELU, [x], [1, 16], options, name="y"))
    content = b.build()
    module = import_tflite(content)
    (op,) = [o for o in module.walk() if isinstance(o, nn.GeluOp)]
    assert op.approximate.value.data
    inputs = [np.linspace(-5, 5, 16, dtype=np.float32).reshape(1, 16)]
    np.testing.assert_array_equal(
        run_litert(export_tflite(module), inputs, REF)[0], run_litert(content, inputs, REF)[0]
    )


def test_int8_operator_version_is_2() -> None:
    module = _module(False, _qtype(0.02, 0), _qtype(0.01, -20))
    model = schema.ModelT.InitFromPackedBuf(export_tflite(module), 0)
    (code,) = model.operatorCodes
    assert (code.builtinCode, code.version) == (Op.GELU, 2)
