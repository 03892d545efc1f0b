"""dynamic-range: the emitted hybrid models run in LiteRT (with and without its default
XNNPACK delegate) close to the float model, and weight-dominated models shrink ~4x."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import OpResolverType
from conftest import custom_ops, litert_inputs, run_litert, snr_db, zoo_parametrize
from xdsl.context import Context

from qcc.backends.tflite import export_tflite
from qcc.dialects import nn, quant
from qcc.frontends.tflite import import_tflite
from qcc.passes.dynamic_range import DynamicRange, quantize_symmetric
from qcc.testing.tflite_models import chained_models, single_op_models

RESOLVERS = [OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES]
HYBRID_OPS = ("conv_2d", "depthwise_conv_2d", "fully_connected", "transpose_conv", "batch_matmul")

_GENERATED = {**single_op_models(), **chained_models()}
GENERATED = sorted(n for n in _GENERATED if n.startswith(HYBRID_OPS) or n in chained_models())


def _inputs(model: bytes, low: float = -1.0, high: float = 1.0) -> list[np.ndarray]:
    return litert_inputs(model, seed=0, low=low, high=high)


def _hybrid(model: bytes, min_elements: int = 1024):
    module = import_tflite(model)
    DynamicRange(min_elements=min_elements).apply(Context(), module)
    module.verify()
    return module


def _quantized_constants(module) -> list[nn.ConstantOp]:
    return [
        op for op in module.walk()
        if isinstance(op, nn.ConstantOp) and quant.is_quantized(op.output.type)
    ]


@pytest.mark.parametrize("resolver", RESOLVERS, ids=["auto", "builtin"])
@pytest.mark.parametrize("name", GENERATED)
def test_generated_models_run_hybrid_in_litert(name: str, resolver: OpResolverType) -> None:
    original = _GENERATED[name]
    module = _hybrid(original, min_elements=0)
    hybrid = export_tflite(module)
    inputs = _inputs(original)
    for ref, got in zip(run_litert(original, inputs, resolver), run_litert(hybrid, inputs, resolver)):
        assert got.dtype == np.float32
        assert float(np.abs(ref - got).max()) <= 0.05 * float(np.abs(ref).max()) + 1e-6
        assert snr_db(ref, got) > 30.0
    if not name.startswith("batch_matmul"):  # the generated BATCH_MATMULs: variable or rank-4
        assert _quantized_constants(module), "no weight was quantized"


def test_weight_types_and_values() -> None:
    module = _hybrid(_GENERATED["mobilenet_v3_block"], min_elements=0)
    seen = set()
    for const in _quantized_constants(module):
        elem = const.output.type.get_element_type()
        user = next(iter(const.output.uses)).operation
        seen.add(type(user))
        assert (elem.storage_min, elem.storage_max) == (-127, 127)
        expected_axis = {nn.Conv2DOp: 0, nn.DepthwiseConv2DOp: 3, nn.FullyConnectedOp: 0}.get(type(user))
        if expected_axis is not None:
            assert isinstance(elem, quant.UniformQuantizedPerAxisType) and elem.axis == expected_axis
            assert set(elem.zero_points) == {0}
    assert {nn.Conv2DOp, nn.DepthwiseConv2DOp} <= seen


def test_quantize_symmetric() -> None:
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 5)).astype(np.float32)
    w[2] = 0.0
    q, scales = quantize_symmetric(w, 0)
    assert q.dtype == np.int8 and q.min() >= -127 and q.max() <= 127
    assert scales[2] == 1.0 and not q[2].any()
    for c in (0, 1, 3):
        assert np.abs(q[c]).max() == 127
        np.testing.assert_allclose(q[c] * np.float32(scales[c]), w[c], atol=scales[c] / 2 + 1e-7)
    # half away from zero, like TFLite
    q, (s,) = quantize_symmetric(np.array([127.0, 0.5, -0.5, 1.5], np.float32), None)
    assert s == 1.0 and q.tolist() == [127, 1, -1, 2]


def test_min_elements_keeps_small_weights_float() -> None:
    module = _hybrid(_GENERATED["conv_2d_same"])  # its filter has fewer than 1024 elements
    assert not _quantized_constants(module)


def _hybrid_bytes(name: str = "mobilenet_v3_block") -> bytes:
    return export_tflite(_hybrid(_GENERATED[name], min_elements=0))


def _per_axis_tensors(model: bytes) -> list:
    """(tensor, its QuantizationParameters) of every per-axis tensor, read in place."""
    root = schema.Model.GetRootAs(model, 0)
    sg = root.Subgraphs(0)
    out = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 1:
            out.append((t, q))
    return out


def _zero_point_vector_position(q) -> int:
    # QuantizationParameters fields: min 4, max 6, scale 8, zero_point 10 (vtable offsets)
    return q._tab.Vector(q._tab.Offset(10))


def test_per_axis_zero_points_are_written_once() -> None:
    """Each per-axis weight still has its full zero_point array (LiteRT wants one per
    scale), but tensors with equal arrays point at one copy in the flatbuffer."""
    model = _hybrid_bytes()
    tensors = _per_axis_tensors(model)
    by_length: dict[int, set[int]] = {}
    for t, q in tensors:
        assert q.ZeroPointLength() == q.ScaleLength() == t.Shape(q.QuantizedDimension())
        assert not q.ZeroPointAsNumpy().any()
        by_length.setdefault(q.ZeroPointLength(), set()).add(_zero_point_vector_position(q))
    assert len(tensors) > len(by_length)  # some are shared
    assert all(len(positions) == 1 for positions in by_length.values())
    # and every reader sees them as usual: the object API and qcc's importer
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    per_axis = [t for t in m.subgraphs[0].tensors if t.quantization and len(t.quantization.scale) > 1]
    assert len(per_axis) == len(tensors)
    assert all(list(t.quantization.zeroPoint) == [0] * len(t.quantization.scale) for t in per_axis)
    builder = flatbuffers.Builder(0)  # the object API packs every array on its own
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    unshared = bytes(builder.Output())
    assert len(unshared) > len(model)
    assert _print(import_tflite(model)) == _print(import_tflite(unshared))
    inputs = _inputs(model)
    for resolver in RESOLVERS:
        for a, b in zip(run_litert(model, inputs, resolver), run_litert(unshared, inputs, resolver)):
            np.testing.assert_array_equal(a, b)


def _print(module) -> str:
    from io import StringIO

    from xdsl.printer import Printer

    out = StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue()


@pytest.mark.parametrize("zero_point", [[0], [], None], ids=["one", "empty", "none"])
def test_litert_wants_one_zero_point_per_scale(zero_point) -> None:
    """Why the zero points are shared rather than shortened: LiteRT's InterpreterBuilder
    rejects per-axis parameters whose zero_point array is not as long as scale."""
    m = schema.ModelT.InitFromPackedBuf(bytearray(_hybrid_bytes()), 0)
    for t in m.subgraphs[0].tensors:
        if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1:
            t.quantization.zeroPoint = zero_point
    builder = flatbuffers.Builder(0)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises((RuntimeError, ValueError), match="zero_point"):
        run_litert(bytes(builder.Output()), _inputs(_GENERATED["mobilenet_v3_block"]), RESOLVERS[1])


# -- the model zoo (no items when QCC_MODEL_ZOO is unset, see conftest.py) -----------------

DYNAMIC_RANGE_FLOOR_DB = 15.0
"""The main output's SNR of a hybrid zoo model on random inputs, unless ai-edge-quantizer's
dynamic-range recipe on the same file does not reach it either: then qcc's must be within
`ANCHOR_MARGIN_DB` of it (pose_landmark_full's landmarks on noise: qcc -6.9 dB, ai-edge-quantizer
-8.7 dB under XNNPACK)."""

ANCHOR_MARGIN_DB = 3.0


def _aeq_dynamic_range(fp32: bytes) -> bytes:
    """ai-edge-quantizer's dynamic-range quantization of a float .tflite (int8 weights, float
    activations quantized on the fly: `recipe.dynamic_wi8_afp32`), the field's counterpart of
    qcc's hybrid output."""
    from ai_edge_quantizer import quantizer, recipe

    qt = quantizer.Quantizer(bytearray(fp32))
    qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    return bytes(qt.quantize().quantized_model)


WEIGHT_DOMINATED = {"iris_landmark.tflite", "hand_landmark_lite.tflite"}
"""Models whose fp32 file is > 90% weights of >= 1024 elements."""


def _fp32_baseline(original: bytes) -> bytes:
    """The fp32 file to compare sizes with: the shipped file if its weights are fp32, else
    qcc's fp32 export of it (fp16 weights behind DEQUANTIZE folded to fp32)."""
    m = schema.ModelT.InitFromPackedBuf(bytearray(original), 0)
    if any(t.type == schema.TensorType.FLOAT16 for sg in m.subgraphs for t in sg.tensors):
        return export_tflite(import_tflite(original))
    return original


@zoo_parametrize("path", ids="name")
def test_zoo_size_and_litert_agreement(path: Path) -> None:
    original = path.read_bytes()
    fp32 = _fp32_baseline(original)
    module = _hybrid(original)
    hybrid = export_tflite(module)
    quantized = _quantized_constants(module)
    quantized_bytes = sum(int(np.prod(c.output.type.get_shape())) for c in quantized)
    scales = [len(getattr(c.output.type.get_element_type(), "scales", (0,))) for c in quantized]
    # every quantized weight saves 3 of its 4 bytes; per-channel parameters cost a float
    # scale a channel, and one int64 zero-point array per distinct channel count; nothing
    # else grows
    assert len(hybrid) <= (
        len(fp32) - 3 * quantized_bytes + 4 * sum(scales) + 8 * sum(set(scales)) + 64 * 1024
    )
    ratio = len(hybrid) / len(fp32)
    if path.name in WEIGHT_DOMINATED:
        # Measured 0.282 (hand_landmark_lite) and 0.299 (iris_landmark; 0.301 and 0.312
        # before zero points were shared). Biases, PReLU alphas and depthwise filters under
        # 1024 elements stay float, as in TFLite.
        assert ratio <= 0.30
    inputs = _inputs(original, 0.0, 1.0)
    anchor = None
    for resolver in RESOLVERS:
        try:
            reference = run_litert(fp32, inputs, resolver)
        except RuntimeError as e:  # a custom op this resolver lacks (selfie without XNNPACK)
            assert custom_ops(original) and "custom op" in str(e), e
            continue
        got = run_litert(hybrid, inputs, resolver)
        # the first output is the model's main one (landmarks, boxes, mask); on random inputs
        # the small auxiliary scores are a poor measure. Measured first-output SNR: iris 44 dB,
        # hand 25 dB, face ~20+ dB.
        main_ref, main_got = reference[0], got[0]
        if np.abs(main_ref).max() < 1e-3:
            # a near-empty probability map (selfie on noise: every value below 1e-8): its SNR
            # is the ratio of two roundings of nothing (18 dB under XNNPACK on a Zen 4 host,
            # 5 dB on a Zen 3 one); what any consumer of the mask sees is the difference
            error = float(np.abs(main_got - main_ref).max())
            if error >= 1e-6:  # no better than the field's own dynamic-range quantizer
                anchor = anchor or _aeq_dynamic_range(fp32)
                assert error <= 2 * float(np.abs(run_litert(anchor, inputs, resolver)[0]
                                                 - main_ref).max()), error
        else:
            snr = snr_db(main_ref, main_got)
            if snr <= DYNAMIC_RANGE_FLOOR_DB:  # no worse than the field's own quantizer
                anchor = anchor or _aeq_dynamic_range(fp32)
                aeq = snr_db(main_ref, run_litert(anchor, inputs, resolver)[0])
                assert snr > aeq - ANCHOR_MARGIN_DB, (snr, aeq)
