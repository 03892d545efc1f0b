"""Importing quantized .tflite files and running them on qcc's int8 runtime.

Oracles: qcc's own IR and LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`).

1. qcc's int8 output, for every runnable in-code model (qcc.testing.tflite_models), with float
   and with int8 model inputs/outputs: importing the exported file gives the IR qcc's passes
   produced (the same ops and the same value types: narrow-range per-axis weights, int32
   biases, ...; only locations may differ, they come from tensor names), exporting that
   again gives an equivalent file (same operators, versions, options, tensor types, shapes,
   quantization and data; intermediate tensor names may differ), and `Model.run` on the
   imported model equals BUILTIN_REF on the file, bit for bit. Per-tensor FC weights and
   dynamic-range ("hybrid") weights round-trip too.
2. Files written by TFLite's own quantizer (the calibration wrapper bench/accuracy.py drives,
   run in a subprocess since it may crash): `qcc.load(...).run(...)` equals BUILTIN_REF.
3. Malformed quantization parameters are a one-line QccError naming the tensor.
4. Activations the int8 runtime does not run (uint8) import; `run` fails naming the op.
5. Real models: every *.tflite in $QCC_MODEL_ZOO (no cases without it), quantized by qcc's
   int8 preset (two random calibration samples in the model's declared input range), is
   imported from the exported bytes and run bit-exact with BUILTIN_REF on one sample.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections import Counter
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import (
    REF,
    custom_ops,
    litert_input_details,
    litert_lacks_custom_ops,
    litert_output_details,
    litert_inputs,
    model_samples,
    FLOAT_ISLAND_RTOL,
    outputs_after_float_ops,
    run_litert,
    zoo_parametrize,
)

import qcc
from qcc.api import Model
from qcc.dialects import nn
from qcc.dialects.quant import UniformQuantizedPerAxisType, UniformQuantizedType
from qcc.errors import QccError
from qcc.frontends.tflite import import_tflite
from qcc.runtime.errors import MissingKernelError
from qcc.runtime.kernels import lookup
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
TT = schema.TensorType


# ---------------------------------------------------------------------------------------------
# helpers


@functools.cache
def _models() -> dict[str, bytes]:
    return tm.all_runnable_models()


def _calibration(model: Model, n: int = 2, seed: int = 0) -> list[list[np.ndarray]]:
    """`n` random samples in each input's declared range (else [0, 1))."""
    return model_samples(model, n, seed, declared=True)


def _inputs(content: bytes, seed: int = 1, ranges=None) -> list[np.ndarray]:
    """Inputs for a file: uniform in the declared range (else [0, 1)); quantized with the
    input's own parameters for an int8 input (realistic codes rather than noise)."""
    return litert_inputs(content, seed=seed, ranges=ranges)


def _assert_bit_exact(model: Model, content: bytes, xs: list[np.ndarray]) -> None:
    ours = model.run(xs)
    ref = run_litert(content, xs, REF)
    assert len(ours) == len(ref)
    after_float = outputs_after_float_ops(model.module)
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.dtype == b.dtype and a.shape == b.shape, (k, a.dtype, b.dtype, a.shape, b.shape)
        if k in after_float and a.dtype.kind == "f":
            scale = float(np.abs(b).max()) if b.size else 0.0
            np.testing.assert_allclose(a, b, rtol=0, atol=FLOAT_ISLAND_RTOL * scale,
                                       err_msg=f"output {k} (after a float island)")
            continue
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            raise AssertionError(f"output {k}: {np.mean(diff == 0):.4f} equal, "
                                 f"max |diff| {np.nanmax(diff)}")


def _signature(module) -> Counter:
    """Ops and value types of a module (what an import must reproduce; not locations)."""
    seen: Counter = Counter()
    for op in module.walk():
        seen[op.name] += 1
        for r in op.results:
            seen[str(r.type)] += 1
    return seen


def _norm(v):
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if hasattr(v, "__dict__"):
        return (type(v).__name__, tuple(sorted((k, _norm(x)) for k, x in vars(v).items())))
    return repr(v)


def _canonical(content: bytes):
    """What LiteRT sees in a file, independent of tensor order and intermediate names:
    operators (builtin, custom code, version, options, operands by first appearance),
    tensors (type, shape, quantization, data), the model's inputs and outputs by name."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    g = model.subgraphs[0]
    ids: dict[int, int] = {}

    def tid(t) -> int:
        t = int(t)
        return -1 if t < 0 else ids.setdefault(t, len(ids))

    inputs = tuple(tid(t) for t in g.inputs)
    ops = []
    for op in g.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops.append((max(code.builtinCode, code.deprecatedBuiltinCode), code.customCode,
                    code.version, _norm(op.builtinOptions), _norm(op.customOptions),
                    tuple(tid(t) for t in op.inputs), tuple(tid(t) for t in op.outputs)))
    outputs = tuple(tid(t) for t in g.outputs)
    tensors = []
    for t in sorted(ids, key=ids.get):
        tensor = g.tensors[t]
        data = model.buffers[tensor.buffer].data
        q = tensor.quantization
        params = None
        if q is not None and q.scale is not None and len(q.scale):
            params = (tuple(np.asarray(q.scale, np.float32).tolist()),
                      tuple(np.asarray(q.zeroPoint, np.int64).tolist()), q.quantizedDimension)
        tensors.append((tensor.type, tuple(np.asarray(tensor.shape).tolist()), params,
                        b"" if data is None else np.asarray(data, np.uint8).tobytes()))
    names = [g.tensors[t].name for t in [*g.inputs, *g.outputs]]
    return ops, tensors, inputs, outputs, names


def _round_trip(q: Model) -> tuple[Model, bytes]:
    """Export `q`, import the bytes; check the IR and the re-export. Returns the imported
    model and the file."""
    content = q.to_tflite()
    imported = Model(import_tflite(content))
    assert _signature(imported.module) == _signature(q.module)
    again = imported.to_tflite()
    assert _canonical(again) == _canonical(content)
    assert Model(import_tflite(again)).to_mlir() == imported.to_mlir()  # a fixed point
    return imported, content


def _quantized(name: str, io_dtype: str, **options) -> Model:
    model = Model(import_tflite(_models()[name]), name)
    return qcc.quantize(model, representative_dataset=_calibration(model), mode="int8",
                        io_dtype=io_dtype, target="reference", **options)  # int8 kernels


# ---------------------------------------------------------------------------------------------
# 1. qcc's own int8 output


@pytest.mark.parametrize("io_dtype", ["float", "int8"])
@pytest.mark.parametrize("name", sorted(_models()))
def test_qcc_int8_output_imports_and_runs_bit_exact(name, io_dtype):
    imported, content = _round_trip(_quantized(name, io_dtype))
    _assert_bit_exact(imported, content, _inputs(content))


def test_imported_types_are_the_quantize_pass_types():
    """The types a pipeline user sees: narrow-range per-axis int8 weights, per-axis int32
    biases along 0, per-tensor asymmetric activations, quant.qcast/dcast at float edges."""
    imported, _ = _round_trip(_quantized("residual_classifier", "float"))
    ops = {op.name: op for op in imported.module.walk()}
    assert {"quant.qcast", "quant.dcast", "nn.conv2d", "nn.depthwise_conv2d"} <= ops.keys()
    conv = ops["nn.conv2d"]
    w = conv.operands[1].type.get_element_type()
    b = conv.operands[2].type.get_element_type()
    x = conv.operands[0].type.get_element_type()
    assert isinstance(w, UniformQuantizedPerAxisType) and w.axis == 0
    assert (w.storage_min, w.storage_max, w.storage_bits) == (-127, 127, 8)
    assert isinstance(b, UniformQuantizedPerAxisType) and b.storage_bits == 32 and b.axis == 0
    assert isinstance(x, UniformQuantizedType) and x.storage_min == -128
    dw = ops["nn.depthwise_conv2d"].operands[1].type.get_element_type()
    assert isinstance(dw, UniformQuantizedPerAxisType) and dw.axis == 3


def test_per_tensor_fc_weights_round_trip():
    imported, content = _round_trip(
        _quantized("fully_connected_relu", "int8", per_channel_fc=False))
    fc = next(op for op in imported.module.walk() if op.name == "nn.fully_connected")
    assert isinstance(fc.operands[1].type.get_element_type(), UniformQuantizedType)
    _assert_bit_exact(imported, content, _inputs(content))


@pytest.mark.parametrize(
    "name",
    ["encoder_decoder", "fully_connected", "depthwise_conv_2d_same", "transpose_conv_same_stride2"],
)
def test_dynamic_range_weights_round_trip(name):
    """Hybrid int8 weights under float ops import as the dynamic-range pass writes them
    (narrow, per axis or per tensor as it chose) and run as qcc's own hybrid module runs."""
    from qcc.context import make_context
    from qcc.pipeline import build_pipeline

    model = Model(import_tflite(_models()[name]))
    module = model.module.clone()
    for p in build_pipeline("dynamic-range{min-elements=0}"):
        p.apply(make_context(), module)
    q = Model(module)
    assert "i8<-127:127>" in q.to_mlir()
    imported, _ = _round_trip(q)
    x = _calibration(model, n=1, seed=3)[0]
    for a, b in zip(imported.run(x), q.run(x)):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# 2. files written by TFLite's own quantizer

_TFLITE_QUANTIZER = r"""
import sys
from pathlib import Path
import numpy as np
from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as wrapper

folder = Path(sys.argv[1])
f32, i8, i32 = (np.dtype(t).num for t in (np.float32, np.int8, np.int32))
for src in sorted(folder.glob("*.float.tflite")):
    stem = src.name[: -len(".float.tflite")]
    data = np.load(folder / f"{stem}.npz")
    keys = sorted(data.files)
    content = src.read_bytes()  # the wrapper reads it in place: keep it alive
    for io, t in (("float", f32), ("int8", i8)):
        calibrator = wrapper.CalibrationWrapper(content, [], [])
        calibrator.Prepare([list(data[k][0].shape) for k in keys])
        for i in range(len(data[keys[0]])):
            calibrator.FeedTensor([data[k][i] for k in keys])
        out = calibrator.QuantizeModel(t, t, True, i8, i32, False, False)
        (folder / f"{stem}.{io}.tflite").write_bytes(bytes(out))
        del calibrator
"""

TFLITE_QUANTIZED = [
    "add_broadcast_const",
    "average_pool_2d_same_3x3_stride2",
    "batch_matmul",
    "concatenation_axis3",
    "conv_2d_same_relu6",
    "depthwise_conv_2d_multiplier2",
    "fully_connected_4d_input",
    "hard_swish",
    "logistic",
    "mean_spatial_keep_dims",
    "mul_broadcast_const",
    "prelu",
    "resize_bilinear_half_pixel_centers",
    "softmax",
    "strided_slice_masks",
    "transpose_conv_same_stride2_bias",
    "encoder_decoder",
    "mobilenet_v3_block",
    "multi_io",
    "residual_classifier",
]
"""Single-op and chained models for TFLite's quantizer. Not included, measured with
ai-edge-litert 2.3: SUM (the quantizer gives it equal input and output parameters, and
BUILTIN_REF then writes -1 for every element, whatever the input: nothing to match),
DEPTH_TO_SPACE (written at version 2, which BUILTIN_REF does not register), PADV2 with a
constant pad value (left float: LiteRT rejects the file), fp16_weights (the quantizer
crashes), DIV with int8 model inputs (the quantizer refuses), sparse_weights (the quantizer
writes QUANTIZE(DENSIFY(float weights)), asymmetric per-tensor FULLY_CONNECTED weights that
LiteRT runs but nn.fully_connected's verifier refuses: the import is a one-line QccError;
the QUANTIZE fold itself is `test_quantize_of_a_float_constant_folds_as_litert_computes`)."""


@pytest.fixture(scope="module")
def tflite_quantized(tmp_path_factory) -> Path:
    """TFLite's quantizer on every TFLITE_QUANTIZED model, float and int8 model inputs and
    outputs, three random calibration samples in [0, 1): `<name>.<io>.tflite`."""
    folder = tmp_path_factory.mktemp("tflite_quantized")
    for name in TFLITE_QUANTIZED:
        content = _models()[name]
        (folder / f"{name}.float.tflite").write_bytes(content)
        rng = np.random.default_rng(0)
        details = litert_input_details(content)
        np.savez(folder / f"{name}.npz", **{
            f"x{i:02d}": rng.uniform(0, 1, size=(3, *d["shape"])).astype(np.float32)
            for i, d in enumerate(details)})
    result = subprocess.run([sys.executable, "-c", _TFLITE_QUANTIZER, str(folder)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


@pytest.mark.parametrize("io_dtype", ["float", "int8"])
@pytest.mark.parametrize("name", TFLITE_QUANTIZED)
def test_tflite_quantizer_output_runs_bit_exact(name, io_dtype, tflite_quantized):
    path = tflite_quantized / f"{name}.{io_dtype}.tflite"
    model = qcc.load(path)
    text = model.to_mlir()
    assert "!quant.uniform" in text and "nn.generic" not in text
    if io_dtype == "float":
        assert "quant.qcast" in text and "quant.dcast" in text
    content = path.read_bytes()
    _assert_bit_exact(model, content, _inputs(content))


def test_quantize_of_a_float_constant_folds_as_litert_computes():
    """QUANTIZE of a float constant becomes a quantized constant: x / scale in float32,
    rounded half away from zero, plus the zero point, clamped; ties and clamping included,
    and the model runs bit-exact with LiteRT, which quantizes the constant at run time."""
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8])
    xq = b.add_op(Op.QUANTIZE, [x], [1, 8], name="xq", dtype=np.int8)
    values = np.array([-40, -0.375, -0.125, 0.125, 0.375, 0.625, 1.0, 40], np.float32)
    c = b.add_constant("c", values)
    cq = b.add_op(Op.QUANTIZE, [c], [8], name="cq", dtype=np.int8)
    yq = b.add_op(Op.ADD, [xq, cq], [1, 8], schema.AddOptionsT(), name="yq", dtype=np.int8,
                  version=2)
    y = b.add_op(Op.DEQUANTIZE, [yq], [1, 8], name="y", version=2)
    for t, params in ((xq, (0.01, -5)), (cq, (0.25, 3)), (yq, (0.3, 0))):
        b._tensors[t].quantization = _quant(*params)
    b.mark_output(y)
    content = b.build()
    model = Model(import_tflite(content))
    (const,) = [op for op in model.module.walk() if op.name == "nn.constant"]
    stored = np.frombuffer(const.value.data.data, np.int8)
    np.testing.assert_array_equal(stored, [-128, 1, 2, 4, 5, 6, 7, 127])
    assert "QUANTIZE" not in model.to_mlir()
    _assert_bit_exact(model, content, _inputs(content))


# ---------------------------------------------------------------------------------------------
# 3. malformed quantization parameters


@functools.cache
def _int8_fc_file() -> bytes:
    """qcc's int8 FULLY_CONNECTED (int8 model inputs and outputs): tensors 'x', 'y',
    'fc/weights' (per axis, 8 rows) and 'fc/bias'."""
    return _quantized("fully_connected_relu", "int8").to_tflite()


def _with_quantization(content: bytes, tensor: str, **fields) -> bytes:
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    g = model.subgraphs[0]
    names = {(t.name.decode() if isinstance(t.name, bytes) else t.name): t for t in g.tensors}
    t = names[tensor]
    q = t.quantization or schema.QuantizationParametersT()
    for key, value in fields.items():
        setattr(q, key, value)
    t.quantization = q
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_names(content: bytes) -> dict[str, schema.TensorT]:
    g = schema.ModelT.InitFromPackedBuf(content, 0).subgraphs[0]
    return {(t.name.decode() if isinstance(t.name, bytes) else t.name): t for t in g.tensors}


def _weights_name(content: bytes) -> tuple[str, int]:
    for name, t in _tensor_names(content).items():
        if t.type == TT.INT8 and len(t.shape) == 2 and t.buffer and len(t.quantization.scale) > 1:
            return name, int(t.shape[0])
    raise AssertionError("no per-axis weights")


def _bias_name(content: bytes) -> str:
    return next(n for n, t in _tensor_names(content).items() if t.type == TT.INT32)


MALFORMED = [
    # (case, tensor, fields of QuantizationParametersT(rows), expected text)
    ("scale_count", "weights", lambda n: {"scale": [0.01] * (n + 1), "zeroPoint": [0] * (n + 1)},
     "scales for quantized_dimension 0 of size"),
    ("zero_point_count", "weights", lambda n: {"zeroPoint": [0, 0]}, "zero points"),
    ("zero_scale", "x", lambda n: {"scale": [0.0]}, "not a positive finite"),
    ("negative_scale", "x", lambda n: {"scale": [-0.5]}, "not a positive finite"),
    ("nan_scale", "y", lambda n: {"scale": [float("nan")]}, "not a positive finite"),
    ("inf_scale", "y", lambda n: {"scale": [float("inf")]}, "not a positive finite"),
    ("zero_point_range", "x", lambda n: {"zeroPoint": [200]},
     "zero point 200 is outside the int8 range"),
    ("bias_zero_point_range", "bias", lambda n: {"zeroPoint": [2**40] * n},
     "outside the int32 range"),
    ("dimension_range", "weights", lambda n: {"quantizedDimension": 2},
     "quantized_dimension 2 is out of range"),
    ("negative_dimension", "x", lambda n: {"quantizedDimension": -1},
     "quantized_dimension -1 is out of range"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_quantization_is_one_line_error_naming_the_tensor(case):
    _, which, fields, expected = case
    content = _int8_fc_file()
    weights, rows = _weights_name(content)
    tensor = {"weights": weights, "bias": _bias_name(content)}.get(which, which)
    bad = _with_quantization(content, tensor, **fields(rows))
    with pytest.raises(QccError) as info:
        import_tflite(bad, name="bad.tflite")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.tflite: ") and f"tensor '{tensor}'" in message, message
    assert expected in message, message


def test_malformed_quantization_of_a_folded_constant():
    """Int8 weights behind a DEQUANTIZE (folded into f32) are validated as well."""
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    wq = b.add_constant("w_int8", np.ones((2, 4), np.int8))
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint, q.quantizedDimension = [0.5, 0.25, 0.1], [0, 0, 0], 0
    b._tensors[wq].quantization = q
    w = b.add_op(Op.DEQUANTIZE, [wq], [2, 4], name="w")
    y = b.add_op(Op.FULLY_CONNECTED, [x, w, -1], [1, 2], schema.FullyConnectedOptionsT(),
                 name="y")
    b.mark_output(y)
    with pytest.raises(QccError, match=r"tensor 'w_int8' has malformed quantization: 3 scales"):
        import_tflite(b.build())


# ---------------------------------------------------------------------------------------------
# 4. what the int8 runtime does not run


def _quant(scale: float, zero_point: int) -> schema.QuantizationParametersT:
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [scale], [zero_point]
    return q


def test_uint8_activations_import_and_run_fails_naming_the_op():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8], np.uint8)
    y = b.add_op(Op.RESHAPE, [x, b.add_constant("shape", np.array([2, 4], np.int32))], [2, 4],
                 schema.ReshapeOptionsT(), name="y", dtype=np.uint8)
    for t in (x, y):
        b._tensors[t].quantization = _quant(0.5, 128)
    b.mark_output(y)
    model = Model(import_tflite(b.build()))
    assert "!quant.uniform<u8:f32, 5.000000e-01:128>" in model.to_mlir()
    assert model.inputs[0].dtype == np.uint8
    with pytest.raises(MissingKernelError) as info:
        model.run([np.zeros((1, 8), np.uint8)])
    message = str(info.value)
    assert "\n" not in message and "'nn.reshape'" in message and '"y"' in message, message
    assert "u8" in message


@pytest.mark.parametrize("kind", ["int16", "per_axis"])
def test_other_activations_import_and_run_fails_naming_the_op(kind):
    """int16 (16x8) activations, and per-axis parameters on an activation."""
    b = tm.ModelBuilder()
    dtype = np.int16 if kind == "int16" else np.int8
    x = b.add_input("x", [1, 2, 2, 3], dtype)
    y = b.add_op(Op.RELU, [x], [1, 2, 2, 3], name="y", dtype=dtype)
    for t in (x, y):
        q = _quant(0.5, 0)
        if kind == "per_axis":
            q.scale, q.zeroPoint, q.quantizedDimension = [0.5, 0.25, 0.125], [0, 0, 0], 3
        b._tensors[t].quantization = q
    b.mark_output(y)
    content = b.build()
    model = Model(import_tflite(content))
    assert "!quant.uniform<i16" in model.to_mlir() or ":f32:3, {" in model.to_mlir()
    if kind == "int16":  # the integer runtime has int16 kernels: it runs, as BUILTIN_REF does
        from conftest import REF, run_litert

        x = np.arange(-6, 6, dtype=np.int16).reshape(1, 2, 2, 3)
        (ours,) = model.run([x])
        (ref,) = run_litert(content, [x], REF)
        np.testing.assert_array_equal(ours, ref)
        return
    with pytest.raises(MissingKernelError) as info:
        model.run([np.zeros((1, 2, 2, 3), dtype)])
    message = str(info.value)
    assert "\n" not in message and "'nn.relu'" in message and '"y"' in message, message
    assert ("i16 activation" if kind == "int16" else "per-axis activation") in message


def test_uint8_to_int8_quantize_imports_and_run_fails_naming_the_op():
    """TFLite's quantizer with uint8 model inputs writes a QUANTIZE uint8 -> int8."""
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4], np.uint8)
    b._tensors[x].quantization = _quant(0.5, 128)
    y = b.add_op(Op.QUANTIZE, [x], [1, 4], name="y", dtype=np.int8)
    b._tensors[y].quantization = _quant(0.5, 0)
    b.mark_output(y)
    model = Model(import_tflite(b.build()))
    assert "quant.qcast" in model.to_mlir()
    with pytest.raises(MissingKernelError) as info:
        model.run([np.zeros((1, 4), np.uint8)])
    assert "'quant.qcast'" in str(info.value) and '"y"' in str(info.value)


def test_quantize_without_output_parameters_stays_generic():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    y = b.add_op(Op.QUANTIZE, [x], [1, 4], name="y", dtype=np.int8)
    b.mark_output(y)
    text = Model(import_tflite(b.build())).to_mlir()
    assert 'op_name = "QUANTIZE"' in text and "quant.qcast" not in text


# ---------------------------------------------------------------------------------------------
# 5. real models


@functools.cache
def _zoo_int8(path: Path) -> tuple[bytes, list[tuple[float, float] | None]]:
    """qcc's int8 preset output for a zoo model (computed once), and its input ranges."""
    model = qcc.load(path)
    q = qcc.quantize(model, representative_dataset=_calibration(model, n=2), mode="int8")
    return q.to_tflite(), [s.value_range for s in model.input_specs()]


@zoo_parametrize("path")
def test_zoo_int8_output_imports_and_runs_bit_exact(path: Path):
    content, ranges = _zoo_int8(path)
    imported = Model(import_tflite(content, name=f"{path.stem}_int8.tflite"))
    assert "!quant.uniform" in imported.to_mlir()
    xs = _inputs(content, ranges=ranges)
    custom = custom_ops(content)
    if custom:
        # a custom op kept (a float island) that BUILTIN_REF has no kernel for: nothing to
        # compare with. qcc runs it when it has a kernel for it (MediaPipe's
        # Landmarks2TransformMatrix, ...), else fails with one line naming the op.
        assert litert_lacks_custom_ops(content, REF) == custom
        missing = [op.op_name.data for op in imported.module.walk()
                   if isinstance(op, nn.GenericOp) and op.custom.value.data and lookup(op) is None]
        if missing:
            with pytest.raises(MissingKernelError, match=f"custom op '{missing[0]}'"):
                imported.run(xs)
            return
        outputs = imported.run(xs)
        assert [o.shape for o in outputs] == [tuple(d["shape"]) for d in litert_output_details(content)]
        assert all(np.isfinite(o).all() for o in outputs)
        return
    _assert_bit_exact(imported, content, xs)
