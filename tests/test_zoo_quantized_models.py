"""Already-quantized models in the zoo ($QCC_MODEL_ZOO): an int8 .tflite (or a dynamic-range
one) from TFLite's converter or another tool.

qcc's quantization presets take float models and refuse these with one line; qcc still
loads, runs and writes them back: `qcc.load(m).run(...)` runs an int8 model on the integer
runtime, bit-exact with LiteRT's BUILTIN_REF (every integer GEMM path this host runs), and
`save` writes a file LiteRT runs to the same outputs. Outputs that a float op computes or
feeds (a float island, a dynamic-range layer) are compared within LiteRT's own spread: its
default resolver against BUILTIN_REF (`float_bound`); a dynamic-range model against LiteRT
running its weights dequantized (`weights_only_oracle`: LiteRT's hybrid kernels quantize the
activations, qcc does not). The other zoo tests, which quantize,
take the zoo's float models (`conftest.zoo_parametrize`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import (
    FLOAT_ISLAND_RTOL,
    REF,
    assert_one_line_error,
    litert_inputs,
    litert_lacks_custom_ops,
    outputs_after_float_ops,
    run_litert,
    run_qcc,
    samples_npz,
    zoo_parametrize,
)
from ai_edge_litert.interpreter import OpResolverType

import qcc
from qcc.dialects import nn
from qcc.errors import QccError
from qcc.runtime.kernels.simd import INT8_GEMM_PATHS


WEIGHTS_ONLY_RTOL = 1e-4
"""A dynamic-range model's bound (as the float executor's against LiteRT, test_runtime_float)."""


def float_bound(content: bytes, xs: list[np.ndarray], ref: list[np.ndarray], k: int,
                rtol: float = FLOAT_ISLAND_RTOL) -> float:
    """The bound on output k after a float op: `rtol` of its largest magnitude, or twice the
    distance between LiteRT's default resolver and BUILTIN_REF on it, the larger."""
    auto = run_litert(content, xs, OpResolverType.AUTO)[k]
    spread = float(np.abs(auto.astype(np.float64) - ref[k].astype(np.float64)).max())
    return max(rtol * float(np.abs(ref[k]).max()), 2.0 * spread)


def weights_only_oracle(model: qcc.Model) -> bytes | None:
    """For a dynamic-range model (quantized weights, float activations: no quantized value but
    constants), the same model with each quantized constant replaced by its real values, as
    a float .tflite: what qcc computes (its float kernels on the dequantized weights), which
    LiteRT's float kernels then compute too. LiteRT's own hybrid kernels quantize the
    activations on the fly instead, so they are no oracle for it. None for other models."""
    from qcc.backends.tflite import export_tflite
    from qcc.dialects.quant import is_quantized

    module = model.module.clone()
    constants = []
    for op in module.walk():
        values = [v for v in op.results if hasattr(v.type, "get_element_type")]
        if isinstance(op, nn.ConstantOp):
            if is_quantized(op.output.type):
                constants.append(op)
        elif any(is_quantized(v.type) for v in values):
            return None  # a quantized activation: an int8 model
    if not constants:
        return None
    for op in constants:
        float_op = _real_constant(op)
        op.parent.insert_op_before(float_op, op)
        op.output.replace_all_uses_with(float_op.results[0])
        float_op.location = op.location
        op.detach()
        op.erase()
    return export_tflite(module)


def _real_constant(op: nn.ConstantOp) -> nn.ConstantOp:
    """A float32 nn.constant of a quantized constant's real values, (q − zp)·scale per tensor
    or along its type's axis (written here, apart from the runtime's own dequantization)."""
    from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, Float32Type, TensorType

    from qcc.dialects.ir import decode_dense

    q = op.output.type.get_element_type()
    stored = decode_dense(op.value).astype(np.float64)
    scales = np.asarray(getattr(q, "scales", None) or [q.scale], np.float64)
    zero_points = np.asarray(getattr(q, "zero_points", None) or [q.zero_point], np.float64)
    shape = [1] * stored.ndim
    if scales.size > 1:
        shape[q.axis] = -1
    real = ((stored - zero_points.reshape(shape)) * scales.astype(np.float32).reshape(shape))
    real = np.ascontiguousarray(real.astype(np.float32))
    ttype = TensorType(Float32Type(), real.shape)
    return nn.ConstantOp(DenseIntOrFPElementsAttr(ttype, BytesAttr(real.astype("<f4").tobytes())),
                         ttype)


def assert_runs_like_builtin_ref(model: qcc.Model, content: bytes, seeds=(0, 1)) -> None:
    after_float = outputs_after_float_ops(model.module)
    oracle = weights_only_oracle(model)
    rtol = WEIGHTS_ONLY_RTOL if oracle is not None else FLOAT_ISLAND_RTOL
    content = oracle if oracle is not None else content
    for seed in seeds:
        xs = litert_inputs(content, seed=seed)
        ref = run_litert(content, xs, REF)
        ours = model.run(xs)
        assert len(ours) == len(ref)
        for k, (a, b) in enumerate(zip(ours, ref)):
            assert a.dtype == b.dtype and a.shape == b.shape, (k, a.dtype, b.dtype)
            if k in after_float and a.dtype.kind == "f":
                bound = float_bound(content, xs, ref, k, rtol)
                np.testing.assert_allclose(a, b, rtol=0, atol=bound, err_msg=f"output {k}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"output {k}")


@zoo_parametrize("path", quantized=True)
def test_quantize_presets_refuse_it(path: Path, tmp_path: Path) -> None:
    model = qcc.load(path)
    calibration = samples_npz(model, tmp_path / "calibration.npz", 2)
    out = tmp_path / "out.tflite"
    assert_one_line_error(run_qcc(str(path), "--calibration", str(calibration), "-o", str(out)),
                          "is already quantized")
    assert_one_line_error(run_qcc(str(path), "--mode=dynamic-range", "-o", str(out)),
                          "is already quantized")
    assert not out.exists()
    with pytest.raises(QccError, match="is already quantized"):
        qcc.quantize(model, representative_dataset=str(calibration))


@zoo_parametrize("path", quantized=True)
@pytest.mark.parametrize("gemm", INT8_GEMM_PATHS)
def test_runs_like_builtin_ref(path: Path, gemm: str, monkeypatch) -> None:
    """On each integer GEMM path this host runs (the others switched off)."""
    monkeypatch.setenv("QCC_INT8_GEMM", gemm)
    content = path.read_bytes()
    lacking = litert_lacks_custom_ops(content, REF)
    model = qcc.load(path)
    if lacking:  # nothing to compare with: qcc runs it, with finite outputs
        outputs = model.run(litert_inputs(content))
        assert all(np.isfinite(o).all() for o in outputs if o.dtype.kind == "f")
        return
    assert_runs_like_builtin_ref(model, content)


@zoo_parametrize("path", quantized=True)
def test_written_back_runs_the_same(path: Path, tmp_path: Path) -> None:
    """`qcc.load(m).save(...)`: the file qcc writes gives LiteRT's BUILTIN_REF the original's
    outputs, bit for bit."""
    content = path.read_bytes()
    out = tmp_path / "again.tflite"
    qcc.load(path).save(out)
    again = out.read_bytes()
    lacking = litert_lacks_custom_ops(content, REF)
    assert litert_lacks_custom_ops(again, REF) == lacking
    if lacking:
        return
    for seed in (0, 1):
        xs = litert_inputs(content, seed=seed)
        for a, b in zip(run_litert(again, xs, REF), run_litert(content, xs, REF)):
            np.testing.assert_array_equal(a, b)
