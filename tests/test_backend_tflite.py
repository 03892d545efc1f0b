"""The TFLite backend: qcc IR -> .tflite that LiteRT runs.

Oracles: LiteRT itself. Every in-code model (qcc.testing.tflite_models) is imported, exported
and run next to the original file: the outputs are bit-identical (same float kernels, same
inputs), the operator versions are those the original file declares, and re-importing the
export prints the same IR as the first import. A hand-written int8 model (per-tensor
activations, per-axis weights, int32 bias, QUANTIZE/DEQUANTIZE at the edges) runs under
LiteRT's reference kernels, carries the quantization parameters written, and matches a numpy
model of the integer arithmetic to one step.

Real models: set QCC_MODEL_ZOO to a folder of *.tflite files (e.g. /work/shared/models) and
`test_zoo_model` round-trips each; without it that test has no cases.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import (
    REF,
    assert_litert_lacks_the_same_custom_ops,
    litert_lacks_custom_ops,
    litert_input_shapes,
    litert_inputs,
    litert_interpreter,
    run_litert,
    zoo_parametrize,
)

from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.errors import QccError
from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir, print_ir
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
TT = schema.TensorType
_OP_NAMES = {v: k for k, v in vars(Op).items() if not k.startswith("_")}

# Ops the importer folds into constants: they never reach the exported file.
_FOLDED = {Op.DEQUANTIZE, Op.DENSIFY}


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


@functools.cache
def _runnable() -> dict[str, bytes]:
    return tm.all_runnable_models()


def _read(data: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(data, 0)


def _versions(data: bytes) -> dict[str, int]:
    """Builtin (or custom) name -> operator version, as declared by the file."""
    out = {}
    for code in _read(data).operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == Op.CUSTOM:
            out[code.customCode.decode()] = code.version
        else:
            out[_OP_NAMES[builtin]] = code.version
    return out


def _assert_same_outputs(reference: list[np.ndarray], actual: list[np.ndarray]) -> None:
    assert len(reference) == len(actual)
    for ref, out in zip(reference, actual):
        assert ref.dtype == out.dtype and ref.shape == out.shape
        # Same graph, same kernels, same inputs: bit-identical.
        assert np.array_equal(ref, out), f"max |diff| = {np.max(np.abs(ref - out))}"


def _round_trip(data: bytes) -> tuple[str, bytes, str]:
    """(first import's text, exported bytes, re-import's text)."""
    module = import_tflite(data)
    first = print_ir(module)
    exported = export_tflite(module)
    return first, exported, print_ir(import_tflite(exported))


# ------------------------------------------------------------------------------------------
# In-code models: every runnable model round-trips exactly
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_runnable()))
def test_runnable_model_round_trip(name: str):
    original = _runnable()[name]
    first, exported, again = _round_trip(original)
    assert again == first
    inputs = tm.random_inputs(litert_input_shapes(original))
    _assert_same_outputs(run_litert(original, inputs), run_litert(exported, inputs))
    # The versions the converter wrote (the in-code models declare them) are the ones chosen.
    expected = {k: v for k, v in _versions(original).items() if getattr(Op, k, None) not in _FOLDED}
    assert _versions(exported) == expected


@pytest.mark.parametrize("name", ["residual_classifier", "multi_io", "split_axis3_2"])
def test_reference_kernels_accept_export(name: str):
    """The versions written lie in the reference resolver's registered ranges too."""
    original = _runnable()[name]
    exported = export_tflite(import_tflite(original))
    inputs = tm.random_inputs(litert_input_shapes(original))
    _assert_same_outputs(run_litert(original, inputs, REF), run_litert(exported, inputs, REF))


def test_tensor_names_and_io_order():
    exported = export_tflite(import_tflite(tm.multi_io_model()))
    graph = _read(exported).subgraphs[0]
    names = [t.name.decode() for t in graph.tensors]
    assert len(set(names)) == len(names)
    assert [names[i] for i in graph.inputs] == ["image", "features"]
    assert [names[i] for i in graph.outputs] == ["sum", "concat"]
    assert "branch_a/conv" in names and "branch_a/conv/filter" in names
    assert _read(exported).buffers[0].data is None  # the empty sentinel buffer
    for t in graph.tensors:
        if t.buffer:  # constants: their own buffer, 16-byte aligned in the file
            data = _read(exported).buffers[t.buffer].data
            assert data is not None and len(data) > 0


def test_signature_def_on_request():
    """`signature=True` writes SignatureDef "serving_default" (inputs and outputs keyed by
    tensor name), which LiteRT's signature API reads and runs like the plain invoke; without
    it no signature is written and the bytes are those of the default export."""
    from qcc.backends.tflite import SIGNATURE_KEY

    module = import_tflite(tm.multi_io_model())
    plain = export_tflite(module)
    signed = export_tflite(module, signature=True)
    assert not _read(plain).signatureDefs
    assert export_tflite(module, signature=False) == plain
    # the graph itself is unchanged: only the signature table is added
    assert [t.name for t in _read(signed).subgraphs[0].tensors] == [
        t.name for t in _read(plain).subgraphs[0].tensors
    ]

    interpreter = litert_interpreter(signed)
    signatures = interpreter.get_signature_list()
    assert list(signatures) == [SIGNATURE_KEY]
    assert set(signatures[SIGNATURE_KEY]["inputs"]) == {"image", "features"}
    assert set(signatures[SIGNATURE_KEY]["outputs"]) == {"sum", "concat"}
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    image, features = tm.random_inputs(litert_input_shapes(signed))
    got = runner(image=image, features=features)
    expected = run_litert(plain, [image, features])
    _assert_same_outputs(expected, [got["sum"], got["concat"]])
    # opcodes carry the builtin code in both fields, as signature-based tools expect
    for code in _read(signed).operatorCodes:
        assert code.builtinCode == max(code.builtinCode, code.deprecatedBuiltinCode)


def test_constant_buffers_are_aligned():
    exported = export_tflite(import_tflite(_runnable()["conv_2d_same"]))
    model = _read(exported)
    payloads = [b.data.tobytes() for b in model.buffers if b.data is not None and len(b.data)]
    assert payloads
    for payload in payloads:
        offset = exported.find(payload)
        assert offset >= 0 and offset % 16 == 0


def test_custom_op_round_trip():
    first, exported, again = _round_trip(tm.custom_op_model())
    assert again == first
    model = _read(exported)
    (custom,) = [c for c in model.operatorCodes if c.builtinCode == Op.CUSTOM]
    assert custom.customCode.decode() == tm.CUSTOM_OP_CODE
    index = model.operatorCodes.index(custom)
    (op,) = [o for o in model.subgraphs[0].operators if o.opcodeIndex == index]
    assert op.customOptions.tobytes() == tm.CUSTOM_OP_OPTIONS
    assert op.customOptionsFormat == schema.CustomOptionsFormat.FLEXBUFFERS


def _lrn_argmax_model() -> bytes:
    """LOCAL_RESPONSE_NORMALIZATION (options with non-default fields) -> ARG_MAX (int64
    output): two builtins without an nn op, imported as nn.generic with packed options."""
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 4])
    lrn_options = schema.LocalResponseNormalizationOptionsT()
    lrn_options.radius, lrn_options.bias, lrn_options.alpha, lrn_options.beta = 2, 1.0, 0.5, 0.75
    g = b.add_op(Op.LOCAL_RESPONSE_NORMALIZATION, [x], [1, 8, 8, 4], lrn_options, name="lrn")
    axis = b.add_constant("axis", np.array([3], dtype=np.int32))
    argmax_options = schema.ArgMaxOptionsT()
    argmax_options.outputType = TT.INT64
    y = b.add_op(Op.ARG_MAX, [g, axis], [1, 8, 8], argmax_options, name="y", dtype=np.int64)
    b.mark_output(g, y)
    return b.build()


def test_generic_builtin_round_trip():
    original = _lrn_argmax_model()
    first, exported, again = _round_trip(original)
    assert again == first
    assert first.count("nn.generic") == 2
    ops = _read(exported).subgraphs[0].operators
    lrn = [o for o in ops if isinstance(o.builtinOptions, schema.LocalResponseNormalizationOptionsT)]
    assert len(lrn) == 1 and lrn[0].builtinOptions.radius == 2
    argmax = [o for o in ops if isinstance(o.builtinOptions, schema.ArgMaxOptionsT)]
    assert len(argmax) == 1 and argmax[0].builtinOptions.outputType == TT.INT64
    inputs = tm.random_inputs(litert_input_shapes(original))
    _assert_same_outputs(run_litert(original, inputs), run_litert(exported, inputs))


def test_generic_omitted_inputs_written_as_minus_one():
    module = parse_ir(
        """
func.func @main(%a: tensor<4xf32> {nn.name = "a"}) -> (tensor<4xf32> {nn.name = "y"}) {
  %y = nn.generic %a {op_name = "MyOp", custom = true, version = 2 : i64, options = "0x0102", nn.omitted_inputs = array<i64: 1>} : (tensor<4xf32>) -> tensor<4xf32> loc("y")
  func.return %y : tensor<4xf32>
}"""
    )
    model = _read(export_tflite(module))
    (op,) = model.subgraphs[0].operators
    assert list(op.inputs) == [0, -1]
    assert op.customOptions.tobytes() == b"\x01\x02"
    assert model.operatorCodes[0].customCode.decode() == "MyOp"
    assert model.operatorCodes[0].version == 2


# ------------------------------------------------------------------------------------------
# Names, errors, speed
# ------------------------------------------------------------------------------------------


def test_missing_and_duplicate_names_are_made_unique():
    module = parse_ir(
        """
func.func @main(%a: tensor<2x3xf32> {nn.name = "out"}) -> (tensor<2x3xf32> {nn.name = "out"}, tensor<2x3xf32>) {
  %c = nn.constant {value = dense<1.0> : tensor<3xf32>} : tensor<3xf32>
  %0 = nn.add %a, %c {fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32> loc("dup")
  %1 = nn.relu %0 : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("dup")
  %2 = nn.relu6 %1 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %1, %2 : tensor<2x3xf32>, tensor<2x3xf32>
}"""
    )
    exported = export_tflite(module)
    graph = _read(exported).subgraphs[0]
    names = [t.name.decode() for t in graph.tensors]
    assert len(set(names)) == len(names), names
    # the model output keeps its result name; the input that claimed it too gets a new one
    assert names[graph.outputs[0]] == "out"
    assert names[graph.inputs[0]] != "out" and names[graph.inputs[0]].startswith("out")
    assert "dup" in names  # the first op keeps its location name
    assert "c" in names  # an unnamed value falls back to its SSA name
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 3
    y1, y2 = run_litert(exported, [x])
    assert np.array_equal(y1, np.maximum(x + 1, 0))
    assert np.array_equal(y2, np.minimum(np.maximum(x + 1, 0), 6))


def test_unknown_op_is_an_error_naming_it():
    module = parse_ir(
        """
func.func @main(%a: tensor<4xf32> {nn.name = "a"}) -> tensor<4xf32> {
  %0 = "test.op"(%a) : (tensor<4xf32>) -> tensor<4xf32> loc("mystery")
  func.return %0 : tensor<4xf32>
}"""
    )
    with pytest.raises(QccError, match=r"'test\.op' at loc\(\"mystery\"\)"):
        export_tflite(module)


def test_dynamic_shape_is_an_error():
    module = parse_ir(
        """
func.func @main(%a: tensor<?x4xf32> {nn.name = "a"}) -> tensor<?x4xf32> {
  %0 = nn.relu %a : (tensor<?x4xf32>) -> tensor<?x4xf32> loc("r")
  func.return %0 : tensor<?x4xf32>
}"""
    )
    with pytest.raises(QccError, match="dynamic shape"):
        export_tflite(module)


def test_unknown_builtin_generic_is_an_error():
    module = parse_ir(
        """
func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.generic %a {op_name = "NOT_A_BUILTIN", custom = false} : (tensor<4xf32>) -> tensor<4xf32> loc("g")
  func.return %0 : tensor<4xf32>
}"""
    )
    with pytest.raises(QccError, match=r"'nn.generic' at loc\(\"g\"\).*NOT_A_BUILTIN"):
        export_tflite(module)


def _deep_fc_model(layers: int = 200, width: int = 51) -> bytes:
    """`layers` FULLY_CONNECTED layers of width x width float weights (~2 MB in all)."""
    rng = np.random.default_rng(0)
    b = tm.ModelBuilder()
    h = b.add_input("x", [1, width])
    for i in range(layers):
        weights = (rng.standard_normal([width, width]) / width).astype(np.float32)
        w = b.add_constant(f"fc{i}/w", weights)
        bias = b.add_constant(f"fc{i}/b", np.zeros([width], np.float32))
        opts = schema.FullyConnectedOptionsT()
        opts.fusedActivationFunction = schema.ActivationFunctionType.RELU
        h = b.add_op(Op.FULLY_CONNECTED, [h, w, bias], [1, width], opts, name=f"fc{i}")
    b.mark_output(h)
    return b.build()


def test_export_is_fast():
    original = _deep_fc_model()
    assert len(original) > 2_000_000
    module = import_tflite(original)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        exported = export_tflite(module)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5, f"export took {best:.3f} s"
    inputs = tm.random_inputs([[1, 51]])
    _assert_same_outputs(run_litert(original, inputs), run_litert(exported, inputs))


# ------------------------------------------------------------------------------------------
# A hand-written int8 model
# ------------------------------------------------------------------------------------------

_X_SCALE, _X_ZP = 1 / 128, -1
_C_SCALE, _C_ZP = 0.05, 3
_D_SCALE, _D_ZP = 0.1, -5
_CONV_W_SCALES = [0.01, 0.02, 0.03, 0.04]  # per output channel, axis 0
_DW_W_SCALES = [0.015, 0.025, 0.005, 0.035]  # per channel, axis 3


def _hex(a: np.ndarray) -> str:
    return "0x" + a.tobytes().hex().upper()


def _f(x: float) -> str:
    return repr(float(x))


def _per_axis(storage: str, axis: int, scales: list[float]) -> str:
    return f"!quant.uniform<{storage}:f32:{axis}, {{{','.join(_f(s) for s in scales)}}}>"


def _quantized_module() -> tuple[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    wb = rng.integers(-2000, 2000, size=(4,)).astype(np.int32)
    dw = rng.integers(-127, 128, size=(1, 3, 3, 4)).astype(np.int8)
    dwb = rng.integers(-500, 500, size=(4,)).astype(np.int32)
    qx = f"!quant.uniform<i8:f32, {_f(_X_SCALE)}:{_X_ZP}>"
    qw = _per_axis("i8<-127:127>", 0, _CONV_W_SCALES)
    qb = _per_axis("i32", 0, [_X_SCALE * s for s in _CONV_W_SCALES])
    qc = f"!quant.uniform<i8:f32, {_f(_C_SCALE)}:{_C_ZP}>"
    qdw = _per_axis("i8<-127:127>", 3, _DW_W_SCALES)
    qdb = _per_axis("i32", 0, [_C_SCALE * s for s in _DW_W_SCALES])
    qd = f"!quant.uniform<i8:f32, {_f(_D_SCALE)}:{_D_ZP}>"
    conv_attrs = (
        'stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", '
        'fused_activation = "NONE"'
    )
    text = f"""
func.func @main(%x: tensor<1x8x8x3xf32> {{nn.name = "x"}}) -> (tensor<1x8x8x4xf32> {{nn.name = "y"}}) {{
  %s = quant.stats %x {{layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>}} : tensor<1x8x8x3xf32> loc("x_stats")
  %q = quant.qcast %s : tensor<1x8x8x3xf32> to tensor<1x8x8x3x{qx}> loc("x_q")
  %w = nn.constant {{value = dense<"{_hex(w)}"> : tensor<4x3x3x3xi8>}} : tensor<4x3x3x3x{qw}> loc("conv/w")
  %b = nn.constant {{value = dense<"{_hex(wb)}"> : tensor<4xi32>}} : tensor<4x{qb}> loc("conv/b")
  %c = nn.conv2d %q, %w, %b {{{conv_attrs}}} : (tensor<1x8x8x3x{qx}>, tensor<4x3x3x3x{qw}>, tensor<4x{qb}>) -> tensor<1x8x8x4x{qc}> loc("conv")
  %dw = nn.constant {{value = dense<"{_hex(dw)}"> : tensor<1x3x3x4xi8>}} : tensor<1x3x3x4x{qdw}> loc("dw/w")
  %db = nn.constant {{value = dense<"{_hex(dwb)}"> : tensor<4xi32>}} : tensor<4x{qdb}> loc("dw/b")
  %d = nn.depthwise_conv2d %c, %dw, %db {{{conv_attrs}, depth_multiplier = 1 : i64}} : (tensor<1x8x8x4x{qc}>, tensor<1x3x3x4x{qdw}>, tensor<4x{qdb}>) -> tensor<1x8x8x4x{qd}> loc("dw")
  %y = quant.dcast %d : tensor<1x8x8x4x{qd}> to tensor<1x8x8x4xf32> loc("y")
  func.return %y : tensor<1x8x8x4xf32>
}}"""
    return text, {"w": w, "wb": wb, "dw": dw, "dwb": dwb}


def _conv_ref(x: np.ndarray, w: np.ndarray, depthwise: bool) -> np.ndarray:
    """SAME, stride 1, 3x3 convolution in float64 on NHWC data (OHWI / 1HWC filters)."""
    n, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out_c = w.shape[3] if depthwise else w.shape[0]
    out = np.zeros((n, h, wd, out_c))
    for i in range(3):
        for j in range(3):
            patch = xp[:, i : i + h, j : j + wd, :]
            if depthwise:
                out += patch * w[0, i, j, :]
            else:
                out += patch @ w[:, i, j, :].T
    return out


def _requantize_ref(acc_real: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(acc_real / scale) + zp, -128, 127)


def test_quantized_model_runs_with_reference_kernels():
    text, data = _quantized_module()
    module = parse_ir(text)
    module.verify()
    exported = export_tflite(module)

    assert _versions(exported) == {"QUANTIZE": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3,
                                   "DEQUANTIZE": 2}
    it = litert_interpreter(exported, REF, preserve_all_tensors=True)
    details = {d["name"]: d for d in it.get_tensor_details()}
    assert "x_stats" not in details  # quant.stats is an identity: no tensor, no op

    def params(name: str) -> tuple[np.ndarray, np.ndarray, int]:
        q = details[name]["quantization_parameters"]
        return q["scales"], q["zero_points"], q["quantized_dimension"]

    f32 = np.float32
    expected = {
        "x_q": (np.int8, [_X_SCALE], [_X_ZP], 0),
        "conv/w": (np.int8, _CONV_W_SCALES, [0] * 4, 0),
        "conv/b": (np.int32, [_X_SCALE * s for s in _CONV_W_SCALES], [0] * 4, 0),
        "conv": (np.int8, [_C_SCALE], [_C_ZP], 0),
        "dw/w": (np.int8, _DW_W_SCALES, [0] * 4, 3),
        "dw/b": (np.int32, [_C_SCALE * s for s in _DW_W_SCALES], [0] * 4, 0),
        "dw": (np.int8, [_D_SCALE], [_D_ZP], 0),
        "x": (np.float32, [], [], 0),
        "y": (np.float32, [], [], 0),
    }
    for name, (dtype, scales, zps, axis) in expected.items():
        got_scales, got_zps, got_axis = params(name)
        assert details[name]["dtype"] == dtype, name
        assert np.array_equal(got_scales, np.asarray(scales, f32)), name
        assert np.array_equal(got_zps, np.asarray(zps, np.int32)), name
        assert got_axis == axis, name
    assert np.array_equal(it.get_tensor(details["conv/w"]["index"]), data["w"])
    assert np.array_equal(it.get_tensor(details["dw/b"]["index"]), data["dwb"])

    # Inputs on the quantization grid, so QUANTIZE is exact.
    rng = np.random.default_rng(3)
    q_in = rng.integers(-128, 128, size=(1, 8, 8, 3))
    x = ((q_in - _X_ZP) * _X_SCALE).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    q_x = it.get_tensor(details["x_q"]["index"]).astype(np.int64)
    assert np.array_equal(q_x, q_in)
    q_c = it.get_tensor(details["conv"]["index"]).astype(np.int64)
    q_d = it.get_tensor(details["dw"]["index"]).astype(np.int64)
    y = it.get_tensor(it.get_output_details()[0]["index"])

    # Each integer stage within one step of the real-valued computation on its actual input.
    w_real = data["w"] * np.asarray(_CONV_W_SCALES)[:, None, None, None]
    acc = _conv_ref((q_x - _X_ZP) * _X_SCALE, w_real, False)
    acc += data["wb"] * _X_SCALE * np.asarray(_CONV_W_SCALES)
    assert np.max(np.abs(q_c - _requantize_ref(acc, _C_SCALE, _C_ZP))) <= 1
    dw_real = data["dw"] * np.asarray(_DW_W_SCALES)
    acc = _conv_ref((q_c - _C_ZP) * _C_SCALE, dw_real, True)
    acc += data["dwb"] * _C_SCALE * np.asarray(_DW_W_SCALES)
    assert np.max(np.abs(q_d - _requantize_ref(acc, _D_SCALE, _D_ZP))) <= 1
    assert np.array_equal(y, ((q_d - _D_ZP) * f32(_D_SCALE)).astype(np.float32))
    assert len(np.unique(q_d)) > 20  # not saturated: the check above means something


def test_quantized_constant_needs_storage_typed_data():
    module = parse_ir(
        """
func.func @main() -> tensor<2x!quant.uniform<i8:f32, 1.000000e-01>> {
  %w = nn.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2x!quant.uniform<i8:f32, 1.000000e-01>> loc("w")
  func.return %w : tensor<2x!quant.uniform<i8:f32, 1.000000e-01>>
}"""
    )
    with pytest.raises(QccError, match=r"'nn.constant' at loc\(\"w\"\).*storage type"):
        export_tflite(module)


# ------------------------------------------------------------------------------------------
# Real models (QCC_MODEL_ZOO)
# ------------------------------------------------------------------------------------------


@zoo_parametrize("path")
def test_zoo_model(path: Path):
    """Round trip, export time, and the same outputs under LiteRT's default resolver (which
    also runs selfie_segmentation's custom op Convolution2DTransposeBias: its code and option
    bytes survive the round trip); a model with a custom op LiteRT has no kernel for (it then
    runs none of it) is refused alike before and after."""
    original = path.read_bytes()
    module = import_tflite(original)
    first = print_ir(module)
    start = time.perf_counter()
    exported = export_tflite(module)
    elapsed = time.perf_counter() - start
    again = print_ir(import_tflite(exported))
    assert again == first
    print(f"{path.name}: exported in {elapsed:.3f} s")
    assert elapsed < 2.0
    if litert_lacks_custom_ops(original):  # LiteRT runs none of it: it refuses both alike
        assert_litert_lacks_the_same_custom_ops(original, exported)
        return
    inputs = litert_inputs(original, seed=0)  # uniform [0, 1)
    _assert_same_outputs(run_litert(original, inputs), run_litert(exported, inputs))


def test_generic_op_of_zoo_kind_keeps_options():
    """A custom op with option bytes, as in selfie_segmentation, survives by name and bytes
    (the zoo test needs QCC_MODEL_ZOO; this one does not)."""
    module = import_tflite(tm.custom_op_model())
    (generic,) = [op for op in module.walk() if isinstance(op, nn.GenericOp)]
    module2 = import_tflite(export_tflite(module))
    (generic2,) = [op for op in module2.walk() if isinstance(op, nn.GenericOp)]
    assert generic2.op_name == generic.op_name
    assert generic2.option_bytes == generic.option_bytes == tm.CUSTOM_OP_OPTIONS


_CONV_WEIGHTS = {
    # op: (weight shape, quantized axis, weight values, extra properties)
    "conv2d": ("2x2x1x2", 0, "[[[[1, -2]], [[3, 4]]], [[[5, 6]], [[-7, 8]]]]", ""),
    "depthwise_conv2d": (
        "1x2x2x2", 3, "[[[[1, -2], [3, 4]], [[5, 6], [-7, 8]]]]", ", depth_multiplier = 1 : i64"
    ),
}


@pytest.mark.parametrize("op", sorted(_CONV_WEIGHTS))
@pytest.mark.parametrize("quantized", [False, True])
def test_convolution_without_bias_gets_a_zero_bias(op: str, quantized: bool) -> None:
    """LiteRT's CONV_2D / DEPTHWISE_CONV_2D kernels require the bias input; an IR conv without
    one is written with zeros (int32 at input x weight scale when quantized), and LiteRT's
    reference kernels then compute what qcc's runtime computes."""
    import qcc
    from qcc.irtext import parse_ir

    shape, axis, nested, extra = _CONV_WEIGHTS[op]
    if quantized:
        x = "tensor<1x4x4x2x!quant.uniform<i8:f32, 0.05:3>>"
        y = "tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:-5>>"
        wt = f"tensor<{shape}x!quant.uniform<i8<-127:127>:f32:{axis}, {{0.01, 0.02}}>>"
        const = f"dense<{nested}> : tensor<{shape}xi8>"
    else:
        x, y = "tensor<1x4x4x2xf32>", "tensor<1x4x4x2xf32>"
        wt = f"tensor<{shape}xf32>"
        const = f"dense<{nested}> : tensor<{shape}xf32>"
    text = f"""
func.func @main(%x: {x}) -> {y} {{
  %w = nn.constant {{value = {const}}} : {wt}
  %y = nn.{op} %x, %w {{stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"{extra}}} : ({x}, {wt}) -> {y}
  func.return %y : {y}
}}"""
    module = parse_ir(text)
    module.verify()
    model = qcc.Model(module)
    data = model.to_tflite()
    rng = np.random.default_rng(0)
    spec = model.inputs[0]
    if quantized:
        inp = rng.integers(-128, 128, spec.shape).astype(np.int8)
    else:
        inp = rng.uniform(-1, 1, spec.shape).astype(np.float32)
    (want,) = run_litert(data, [inp], REF)
    (got,) = model.run([inp])
    if quantized:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
