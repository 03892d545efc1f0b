"""TFLite's int8 kernel preconditions, declared on the nn ops (`nn.KERNEL_PRECONDITIONS`):
the verifier agrees with LiteRT's Prepare, infer-scales chooses parameters that satisfy them,
and what cannot be quantized (inf/NaN weights, ranges beyond float32) is a one-line error.

The oracle is LiteRT itself (ai-edge-litert): each single-op case is exported as written,
whatever the verifier says, and LiteRT tries to prepare it under the reference, optimized
and default resolvers. A TFLITE_CHECK aborts the process, so those cases run in a child
process. The user report behind this file: a segmentation model whose depthwise bias of
-7936 gave HARD_SWISH an input scale ~31, quantized with exit 0, and LiteRT refused it with
"activations.cc: params->output_multiplier_exponent <= 0 was not true".
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import OpResolverType
from conftest import litert_interpreter, litert_invoke, run_litert
from xdsl.dialects.builtin import TensorType
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import PassFailedException, VerifyException

import qcc
from qcc.backends.tflite import export_tflite
from qcc.context import make_context
from qcc.dialects import nn
from qcc.dialects.quant import UniformQuantizedType
from qcc.errors import QccError
from qcc.irtext import parse_ir
from qcc.passes.quantize import Quantize
from qcc.testing.tflite_models import SAME, Act, ModelBuilder, Op

RESOLVERS = (
    OpResolverType.BUILTIN_REF,
    OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    OpResolverType.AUTO,
)


def _litert_prepares(model: bytes) -> bool:
    """Whether LiteRT allocates and runs `model` (on zeros) under every resolver (in this
    process: only for models whose failures are TF_LITE_ENSUREs, which raise; PADV2 checks
    its pad value in Eval)."""
    for resolver in RESOLVERS:
        try:
            interpreter = litert_interpreter(model, resolver)
            litert_invoke(interpreter, [np.zeros(d["shape"], d["dtype"])
                                        for d in interpreter.get_input_details()])
        except RuntimeError:
            return False
    return True


_CHILD = textwrap.dedent(
    """
    import sys
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    model = open(sys.argv[1], "rb").read()
    for r in (OpResolverType.BUILTIN_REF, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
              OpResolverType.AUTO):
        try:
            it = Interpreter(model_content=model, experimental_op_resolver_type=r)
            it.allocate_tensors()
            for d in it.get_input_details():
                it.set_tensor(d["index"], __import__("numpy").zeros(d["shape"], d["dtype"]))
            it.invoke()
        except RuntimeError:
            sys.exit(3)
    """
)


def _litert_prepares_in_child(model: bytes, tmp_path) -> bool:
    """Like `_litert_prepares` (and invokes once), in a child process: a TFLITE_CHECK in
    Prepare aborts it (QuantizeMultiplierSmallerThanOneExp in ADD/SUB)."""
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, timeout=300, check=False
    )
    return done.returncode == 0


def _verifies(text: str) -> tuple[bool, str]:
    module = parse_ir(text)
    try:
        module.verify()
    except VerifyException as e:
        return False, str(e).splitlines()[0]
    return True, ""


# ------------------------------------------------------------------------------------------
# The segmentation case: a depthwise bias of -7936 feeding HARD_SWISH


def _segmentation_model() -> bytes:
    """conv 1x1 -> HARD_SWISH -> depthwise 3x3 (one channel's bias -7936) -> HARD_SWISH ->
    conv 1x1, as in the reported segmentation model (MobileNetV3-style blocks)."""
    rng = np.random.default_rng(7936)
    b = ModelBuilder()
    x = b.add_input("image", [1, 16, 16, 8])

    def conv(t: int, name: str) -> int:
        c = b.shape(t)[3]
        w = b.add_constant(f"{name}/filter", (rng.standard_normal([8, 1, 1, c]) * 0.4).astype(np.float32))
        bias = b.add_constant(f"{name}/bias", (rng.standard_normal([8]) * 0.1).astype(np.float32))
        o = schema.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW = SAME, 1, 1
        o.dilationHFactor = o.dilationWFactor = 1
        o.fusedActivationFunction = Act.NONE
        return b.add_op(Op.CONV_2D, [t, w, bias], [1, 16, 16, 8], o, name=name)

    y = b.add_op(Op.HARD_SWISH, [conv(x, "expand")], [1, 16, 16, 8], name="expand/hard_swish")
    dw_bias = (rng.standard_normal([8]) * 0.1).astype(np.float32)
    dw_bias[3] = -7936.0
    o = schema.DepthwiseConv2DOptionsT()
    o.padding, o.strideH, o.strideW = SAME, 1, 1
    o.depthMultiplier = 1
    o.dilationHFactor = o.dilationWFactor = 1
    o.fusedActivationFunction = Act.NONE
    w = b.add_constant("depthwise/filter", (rng.standard_normal([1, 3, 3, 8]) * 0.3).astype(np.float32))
    d = b.add_op(
        Op.DEPTHWISE_CONV_2D,
        [y, w, b.add_constant("depthwise/bias", dw_bias)],
        [1, 16, 16, 8],
        o,
        name="depthwise",
    )
    h = b.add_op(Op.HARD_SWISH, [d], [1, 16, 16, 8], name="depthwise/hard_swish")
    b.mark_output(conv(h, "project"))
    return b.build()


def _load(model: bytes) -> qcc.Model:
    from qcc.api import Model
    from qcc.frontends.tflite import import_tflite

    return Model(import_tflite(model))


def _samples(n: int = 4) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.uniform(-1, 1, (1, 16, 16, 8)).astype(np.float32)] for _ in range(n)]


@pytest.fixture(scope="module")
def segmentation() -> tuple[bytes, qcc.Model]:
    model = _segmentation_model()
    # HARD_SWISH in its int8 kernel (the xnnpack target would make it a float island)
    return model, qcc.quantize(_load(model), representative_dataset=_samples(), target="reference")


def _hard_swish_scales(model: bytes) -> list[tuple[float, float]]:
    """(input scale, output scale) of every HARD_SWISH in a .tflite file."""
    m = schema.ModelT.InitFromPackedBuf(model, 0)
    g = m.subgraphs[0]
    found = []
    for op in g.operators:
        code = m.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) == Op.HARD_SWISH:
            scale_in = g.tensors[op.inputs[0]].quantization.scale[0]
            scale_out = g.tensors[op.outputs[0]].quantization.scale[0]
            found.append((float(scale_in), float(scale_out)))
    return found


@pytest.mark.parametrize("resolver", [OpResolverType.AUTO, OpResolverType.BUILTIN_REF])
def test_segmentation_model_with_large_depthwise_bias_runs_in_litert(segmentation, resolver):
    _, quantized = segmentation
    model = quantized.to_tflite()
    # allocating the tensors was refused before: output_multiplier_exponent <= 0
    (out,) = run_litert(model, _samples(1)[0], resolver)
    assert out.shape == (1, 16, 16, 8) and np.isfinite(out).all()


def test_segmentation_hard_swish_output_scale_was_widened(segmentation):
    _, quantized = segmentation
    scales = _hard_swish_scales(quantized.to_tflite())
    assert len(scales) == 2
    big_in, big_out = scales[1]
    assert big_in > 30.0  # the -7936 channel sets the depthwise output range
    # TFLite's HardSwishPrepare: float32(input_scale / 128) / output_scale gives a multiplier
    # whose QuantizeMultiplier exponent must be <= 0, i.e. < 1 with margin
    multiplier = np.float32(np.float32(1 / 128) * np.float32(big_in)) / np.float32(big_out)
    assert multiplier < 1.0 - 2.0**-20
    assert nn.quantize_multiplier(float(multiplier))[1] <= 0
    small_in, small_out = scales[0]
    assert small_out > 2 * small_in / 128  # the first HARD_SWISH keeps its calibrated scale


def test_verifier_rejects_the_unwidened_hard_swish(segmentation):
    """The types qcc used to emit, put back: verification now names the op and the rule."""
    _, quantized = segmentation
    module = quantized.module.clone()
    hswish = [op for op in module.walk() if isinstance(op, nn.HardSwishOp)][1]
    result_type = hswish.output.type
    assert isinstance(result_type, TensorType)
    Rewriter.replace_value_with_new_type(
        hswish.output, TensorType(UniformQuantizedType.get(0.0074, -78), result_type.get_shape())
    )
    with pytest.raises(VerifyException) as error:
        module.verify()
    assert (
        "'nn.hard_swish' op output multiplier input scale / 128 / output scale must be < 1 "
        "after rounding (TFLite HARD_SWISH output_multiplier_exponent <= 0)"
    ) in str(error.value)


# ------------------------------------------------------------------------------------------
# The verifier agrees with LiteRT's Prepare, precondition by precondition

_ONE_OP = """
func.func @main({args}) -> {result} {{
  {body}
  func.return %0 : {result}
}}
"""


def _q(shape: str, scale: str, zp: int = 0) -> str:
    suffix = f":{zp}" if zp else ""
    return f"tensor<{shape}x!quant.uniform<i8:f32, {scale}{suffix}>>"


def _unary(op: str, s_in: str, zp_in: int, s_out: str, zp_out: int, attrs: str = "") -> str:
    x, y = _q("1x8", s_in, zp_in), _q("1x8", s_out, zp_out)
    return _ONE_OP.format(
        args=f"%x: {x}", result=y, body=f"%0 = {op} %x {attrs}: ({x}) -> {y}"
    )


def _binary(op: str, s1: str, s2: str, s_out: str, zp_out: int = 0) -> str:
    a, b, y = _q("1x8", s1), _q("1x8", s2), _q("1x8", s_out, zp_out)
    attrs = '{fused_activation = "NONE"} ' if op in ("nn.add", "nn.sub", "nn.mul") else ""
    return _ONE_OP.format(
        args=f"%a: {a}, %b: {b}", result=y, body=f"%0 = {op} %a, %b {attrs}: ({a}, {b}) -> {y}"
    )


def _concatenation(s1: str, zp1: int, s2: str, zp2: int) -> str:
    a, b, y = _q("1x2", s1, zp1), _q("1x2", s2, zp2), _q("1x4", s1, zp1)
    return _ONE_OP.format(
        args=f"%a: {a}, %b: {b}",
        result=y,
        body=f'%0 = nn.concatenation %a, %b {{axis = 1 : i32, fused_activation = "NONE"}} : ({a}, {b}) -> {y}',
    )


def _padv2(value_scale: str) -> str:
    x, v, y = _q("1x2", "0.1"), _q("1", value_scale), _q("1x4", "0.1")
    return _ONE_OP.format(
        args=f"%x: {x}",
        result=y,
        body=(
            f"%v = nn.constant {{value = dense<1> : tensor<1xi8>}} : {v}\n"
            f"  %0 = nn.pad %x, %v {{paddings = array<i64: 0, 0, 1, 1>}} : ({x}, {v}) -> {y}"
        ),
    )


def _fully_connected(bias_scale: str, s_out: str) -> str:
    x, y = _q("1x2", "0.1"), _q("1x2", s_out)
    w = "tensor<2x2x!quant.uniform<i8<-127:127>:f32, 0.01>>"
    b = f"tensor<2x!quant.uniform<i32:f32, {bias_scale}>>"
    return _ONE_OP.format(
        args=f"%x: {x}",
        result=y,
        body=(
            f"%w = nn.constant {{value = dense<1> : tensor<2x2xi8>}} : {w}\n"
            f"  %b = nn.constant {{value = dense<0> : tensor<2xi32>}} : {b}\n"
            f'  %0 = nn.fully_connected %x, %w, %b {{fused_activation = "NONE", keep_num_dims = false}}'
            f" : ({x}, {w}, {b}) -> {y}"
        ),
    )


def _conv(s_out: str, activation: str = "NONE", weight_zp: int = 0) -> str:
    x, y = _q("1x1x1x2", "0.1"), _q("1x1x1x2", s_out)
    zp = f":{weight_zp}" if weight_zp else ""
    w = f"tensor<2x1x1x2x!quant.uniform<i8:f32, 0.01{zp}>>"
    b = "tensor<2x!quant.uniform<i32:f32, 0.001>>"
    return _ONE_OP.format(
        args=f"%x: {x}",
        result=y,
        body=(
            f"%w = nn.constant {{value = dense<1> : tensor<2x1x1x2xi8>}} : {w}\n"
            f"  %b = nn.constant {{value = dense<0> : tensor<2xi32>}} : {b}\n"
            f"  %0 = nn.conv2d %x, %w, %b {{stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, "
            f'padding = "VALID", fused_activation = "{activation}"}} : ({x}, {w}, {b}) -> {y}'
        ),
    )


# (case id, IR, whether LiteRT prepares and runs it). The verifier must agree exactly: these
# are the preconditions LiteRT checks with TF_LITE_ENSURE (an error) in Prepare (or Eval).
ENSURE_CASES = [
    ("hard_swish_multiplier_below_one", _unary("nn.hard_swish", "1.0", 3, "0.0078126", -10), True),
    ("hard_swish_multiplier_one", _unary("nn.hard_swish", "1.0", 3, "0.0078125", -10), False),
    ("hard_swish_multiplier_above_one", _unary("nn.hard_swish", "31.0", 127, "0.0074", -78), False),
    ("hard_swish_multiplier_just_above_one", _unary("nn.hard_swish", "1.0", 3, "0.00781249", 0), False),
    ("logistic_fixed_range", _unary("nn.logistic", "0.1", 0, "0.00390625", -128), True),
    ("logistic_other_scale", _unary("nn.logistic", "0.1", 0, "0.5", 3), False),
    ("logistic_scale_off_by_a_little", _unary("nn.logistic", "0.1", 0, "0.0039063", -128), False),
    ("softmax_scale_within_tolerance", _unary("nn.softmax", "0.1", 0, "0.0039097", -128, "{beta = 1.0 : f32} "), True),
    ("softmax_scale_beyond_tolerance", _unary("nn.softmax", "0.1", 0, "0.0039105", -128, "{beta = 1.0 : f32} "), False),
    ("softmax_zero_point", _unary("nn.softmax", "0.1", 0, "0.00390625", -127, "{beta = 1.0 : f32} "), False),
    ("concatenation_same_params", _concatenation("0.1", 3, "0.1", 3), True),
    ("concatenation_other_scale", _concatenation("0.1", 3, "0.2", 3), False),
    ("concatenation_other_zero_point", _concatenation("0.1", 3, "0.1", 4), False),
    ("padv2_value_same_scale", _padv2("0.1"), True),
    ("padv2_value_other_scale", _padv2("0.5"), False),
    ("fully_connected_bias_scale_exact", _fully_connected("0.001", "0.01"), True),
    ("fully_connected_bias_scale_far_from_output", _fully_connected("0.0010000001", "1.0e-9"), False),
    ("conv_relu6_bound_fits_int32", _conv("0.001", "RELU6"), True),
    ("conv_relu6_bound_beyond_int32", _conv("1.0e-10", "RELU6"), False),
    ("conv_weights_zero_point", _conv("0.01", weight_zp=5), False),
    # XNNPACK (the default delegate) refuses requantization scales >= 256: 0.1 x 0.01 / s
    ("conv_requantization_scale_255", _conv("3.9215686e-6"), True),
    ("conv_requantization_scale_257", _conv("3.8910506e-6"), False),
]


@pytest.mark.parametrize(("text", "prepares"), [c[1:] for c in ENSURE_CASES], ids=[c[0] for c in ENSURE_CASES])
def test_verifier_agrees_with_litert_prepare(text: str, prepares: bool):
    verifies, message = _verifies(text)
    assert _litert_prepares(export_tflite(parse_ir(text))) == prepares
    assert verifies == prepares, message


# Preconditions whose failure is a TFLITE_CHECK: LiteRT aborts the process.
ABORT_CASES = [
    ("add_multiplier_below_one", _binary("nn.add", "9.765625e-04", "4.8828125e-04", "1.0e-6"), True),
    ("add_multiplier_exactly_one", _binary("nn.add", "9.765625e-04", "4.8828125e-04", "1.862645149230957E-9"), False),
    ("add_multiplier_above_one", _binary("nn.add", "1.0", "1.0", "1.0e-9"), False),
    ("add_output_scale_overflows_float32", _binary("nn.add", "1.0", "1.0", "1.0e36"), False),
    ("sub_multiplier_above_one", _binary("nn.sub", "1.0", "1.0", "1.0e-9"), True),
    ("sub_multiplier_exactly_one", _binary("nn.sub", "9.765625e-04", "9.765625e-04", "1.862645149230957E-9"), False),
]


@pytest.mark.parametrize(("text", "prepares"), [c[1:] for c in ABORT_CASES], ids=[c[0] for c in ABORT_CASES])
def test_verifier_agrees_with_litert_aborts(text: str, prepares: bool, tmp_path):
    verifies, message = _verifies(text)
    assert _litert_prepares_in_child(export_tflite(parse_ir(text)), tmp_path) == prepares
    assert verifies == prepares, message


# Constraints of the int8 spec that LiteRT does not check (the kernels compute wrong numbers
# instead): the verifier rejects them, LiteRT prepares them.
SPEC_CASES = [
    ("maximum_different_scales", _binary("nn.maximum", "0.1", "0.2", "0.2"),
     "'nn.maximum' op operand #0 (scale 0.1, zero point 0) and result #0 (scale 0.2, zero point 0) must have the same scale and zero point"),
    ("logistic_zero_point", _unary("nn.logistic", "0.1", 0, "0.00390625", -127),
     "'nn.logistic' op int8 result must have scale 0.00390625 and zero point -128"),
    ("tanh_fixed_range", _unary("nn.tanh", "0.1", 0, "0.01", 0),
     "'nn.tanh' op int8 result must have scale 0.0078125 and zero point 0"),
    ("reshape_new_scale", _ONE_OP.format(
        args=f"%x: {_q('1x8', '0.1')}", result=_q("8", "0.2"),
        body=f"%0 = nn.reshape %x : ({_q('1x8', '0.1')}) -> {_q('8', '0.2')}"),
     "'nn.reshape' op operand #0 (scale 0.1, zero point 0) and result #0 (scale 0.2, zero point 0) must have the same scale and zero point"),
    # an infinite float32 multiplier: QuantizeMultiplier's int64 cast is undefined (0 on
    # x86: every output is the zero point)
    ("mul_multiplier_overflows_float32", _binary("nn.mul", "1.0e30", "1.0e30", "1.0"),
     "'nn.mul' op output multiplier lhs scale x rhs scale / output scale overflows float32"),
    ("conv_bias_scale", _conv("0.01").replace("0.001>>", "0.002>>"),
     "'nn.conv2d' op bias (operand #2) scale [0] must be input scale x weight scale = 0.001, got 0.002"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_verifier_enforces_spec_constraints_litert_leaves_unchecked(text: str, message: str):
    verifies, got = _verifies(text)
    assert not verifies
    assert got.startswith(message), got
    assert _litert_prepares(export_tflite(parse_ir(text)))


def test_quantize_multiplier_matches_tflite():
    assert nn.quantize_multiplier(0.0) == (0, 0)
    assert nn.quantize_multiplier(0.5) == (2**30, 0)
    assert nn.quantize_multiplier(1.0) == (2**30, 1)
    assert nn.quantize_multiplier(0.75) == (3 * 2**29, 0)
    # a mantissa that rounds up to 2^31 moves to the next exponent (the ADD abort band)
    assert nn.quantize_multiplier(1.0 - 2.0**-33) == (2**30, 1)
    assert nn.quantize_multiplier(1.0 - 2.0**-30)[1] == 0
    assert nn.quantize_multiplier(2.0**-40) == (0, 0)  # flushed, as TFLite does
    with pytest.raises(ValueError):
        nn.quantize_multiplier(float("inf"))


def test_every_int8_op_documents_its_preconditions():
    """KERNEL_PRECONDITIONS covers every op that has an int8 kernel."""
    for op_class in nn.NN.operations:
        if not op_class.has_trait(nn.Int8Kernel):
            continue
        builtin = re.search(r"TFLite ([A-Z][A-Z0-9_]+)", op_class.__doc__ or "")
        assert builtin is not None, op_class.name
        assert builtin[1] in nn.KERNEL_PRECONDITIONS, (op_class.name, builtin[1])


# ------------------------------------------------------------------------------------------
# infer-scales chooses parameters the kernels accept


def _model_add_of_nearly_opposite_values() -> bytes:
    """y = x + (-0.999999 * x): inputs of range ~1, an output of range ~1e-6, so the
    calibrated output scale is far below 2 * input_scale / 2^20 (ADD would abort)."""
    b = ModelBuilder()
    x = b.add_input("x", [1, 64])
    c = b.add_constant("minus_one", np.full([64], -0.999999, np.float32))
    o = schema.MulOptionsT()
    o.fusedActivationFunction = Act.NONE
    y = b.add_op(Op.MUL, [x, c], [1, 64], o, name="negate")
    o = schema.AddOptionsT()
    o.fusedActivationFunction = Act.NONE
    b.mark_output(b.add_op(Op.ADD, [x, y], [1, 64], o, name="add"))
    return b.build()


def test_infer_scales_widens_an_add_output_litert_would_abort_on(tmp_path):
    rng = np.random.default_rng(1)
    data = [[rng.uniform(-1, 1, (1, 64)).astype(np.float32)] for _ in range(4)]
    quantized = qcc.quantize(_load(_model_add_of_nearly_opposite_values()), data)
    add = next(op for op in quantized.module.walk() if isinstance(op, nn.AddOp))
    assert nn.quant_violations(add) == []
    assert _litert_prepares_in_child(quantized.to_tflite(), tmp_path)


def test_infer_scales_keeps_conv_requantization_below_xnnpack_limit(tmp_path):
    """Calibration data of a huge range into a conv with RELU6: the output scale is widened
    until input x weight / output scale < 256, so LiteRT's default delegate takes the model
    (it failed with "failed to create XNNPACK runtime")."""
    b = ModelBuilder()
    x = b.add_input("x", [1, 4, 4, 3])
    w = b.add_constant("w", np.random.default_rng(0).normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32))
    bias = b.add_constant("b", np.zeros(8, np.float32))
    o = schema.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW = SAME, 1, 1
    o.dilationHFactor = o.dilationWFactor = 1
    o.fusedActivationFunction = Act.RELU6
    y = b.add_op(Op.CONV_2D, [x, w, bias], [1, 4, 4, 8], o, name="conv")
    b.mark_output(y)
    model = _load(b.build())
    data = [[np.random.default_rng(i).uniform(-1e6, 1e6, (1, 4, 4, 3)).astype(np.float32)]
            for i in range(3)]
    q = qcc.quantize(model, representative_dataset=data)
    conv = next(op for op in q.module.walk() if isinstance(op, nn.Conv2DOp))
    assert not nn.quant_violations(conv)
    tflite = q.to_tflite()
    (y,) = run_litert(tflite, data[0])  # the default resolver: XNNPACK
    assert y.shape == (1, 4, 4, 8) and np.isfinite(y).all()


def test_infer_scales_keeps_calibrated_scales_that_satisfy_the_kernels(segmentation):
    """Only the HARD_SWISH that needs it is widened: the first one keeps its range."""
    _, quantized = segmentation
    for op in quantized.module.walk():
        if isinstance(op, nn.NNOp):
            assert nn.quant_violations(op) == [], op.name


# ------------------------------------------------------------------------------------------
# What cannot be quantized is a one-line error naming the tensor or op and the cause


def _fully_connected_model(weights: np.ndarray, bias: np.ndarray) -> bytes:
    b = ModelBuilder()
    x = b.add_input("x", [1, 4])
    o = schema.FullyConnectedOptionsT()
    o.fusedActivationFunction = Act.NONE
    inputs = [x, b.add_constant("fc/weights", weights), b.add_constant("fc/bias", bias)]
    b.mark_output(b.add_op(Op.FULLY_CONNECTED, inputs, [1, 2], o, name="fc"))
    return b.build()


def _quantize_error(model: bytes, **options) -> str:
    data = [[np.random.default_rng(0).uniform(-1, 1, (1, 4)).astype(np.float32)] for _ in range(2)]
    with pytest.raises(QccError) as error:
        qcc.quantize(_load(model), representative_dataset=data, **options)
    message = str(error.value)
    assert "\n" not in message.strip()
    return message


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_non_finite_weights_are_a_one_line_error(bad: float, bias_correction: bool):
    weights = np.ones([2, 4], np.float32)
    weights[1, 2] = bad
    message = _quantize_error(
        _fully_connected_model(weights, np.zeros(2, np.float32)), bias_correction=bias_correction
    )
    assert message == (
        "infer-scales: loc(\"fc/weights\"): 'nn.constant' op: 1 of 8 values are inf or NaN "
        "(weights of 'nn.fully_connected' at loc(\"fc\")): cannot quantize it"
    )


def test_non_finite_bias_is_a_one_line_error():
    bias = np.array([0.5, np.nan], np.float32)
    message = _quantize_error(
        _fully_connected_model(np.ones([2, 4], np.float32), bias), bias_correction=False
    )
    assert "loc(\"fc/bias\"): 'nn.constant' op: 1 of 2 values are inf or NaN (bias of" in message


def test_calibration_range_beyond_float32_is_a_one_line_error():
    b = ModelBuilder()
    x, y = b.add_input("x", [1, 4]), b.add_input("y", [1, 4])
    o = schema.AddOptionsT()
    o.fusedActivationFunction = Act.NONE
    b.mark_output(b.add_op(Op.ADD, [x, y], [1, 4], o, name="sum"))
    data = [[np.array([[-3e38, 3e38, 1, 2]], np.float32), np.ones((1, 4), np.float32) * 0.5]]
    with pytest.raises(QccError) as error:
        qcc.quantize(_load(b.build()), data, method="minmax")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("infer-scales: loc(\"sum\"): 'nn.add' op 2^20 x output scale")
    assert "overflows float32" in message


def test_quantize_pass_names_a_non_finite_constant():
    """A quantized-typed constant still holding inf (hand-written IR): `quantize` names it."""
    module = parse_ir(
        """
        func.func @main() -> tensor<2x!quant.uniform<i8:f32, 0.1>> {
          %0 = nn.constant {value = dense<"0x0000003F0000807F"> : tensor<2xf32>} : tensor<2x!quant.uniform<i8:f32, 0.1>> loc("table")
          func.return %0 : tensor<2x!quant.uniform<i8:f32, 0.1>>
        }
        """
    )
    with pytest.raises(PassFailedException) as error:
        Quantize().apply(make_context(), module)
    assert str(error.value).startswith(
        "loc(\"table\"): 'nn.constant' op: 1 of 2 values are inf or NaN: cannot quantize them"
    )



def test_quantize_pass_reuses_what_it_stored_and_fails_every_time_on_inf():
    """The same float value quantized to the same type again (a precision search does it per
    candidate) gets the very attribute it got before, equal to a fresh quantization; another
    type gets its own; a value with inf fails each time, cached never; the cache keeps at
    most its budget of bytes (keys' float data and stored data), the least recently used
    dropped first."""
    from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, f32, i8

    from qcc.passes import quantize as qz

    def module(hex_values: str, qtype: str, n: int = 2):
        return parse_ir(
            f"""
            func.func @main() -> tensor<{n}x{qtype}> {{
              %0 = nn.constant {{value = dense<"0x{hex_values}"> : tensor<{n}xf32>}} : tensor<{n}x{qtype}> loc("w")
              func.return %0 : tensor<{n}x{qtype}>
            }}
            """
        )

    def stored(m):
        const = next(op for op in m.walk() if isinstance(op, nn.ConstantOp))
        return const.value

    finite, t1, t2 = "0000003F000080BF", "!quant.uniform<i8:f32, 0.1>", "!quant.uniform<i8:f32, 0.2>"
    first, again, other = module(finite, t1), module(finite, t1), module(finite, t2)
    for m in (first, again, other):
        Quantize().apply(make_context(), m)
    assert stored(first) is stored(again)
    assert qz.decode_dense(stored(first)).tolist() == [5, -10]
    assert qz.decode_dense(stored(other)).tolist() == [3, -5]  # 2.5 and -5: half away
    fresh = qz._StoredConstants(budget=1 << 20)
    saved = qz.STORED_CONSTANTS
    try:
        qz.STORED_CONSTANTS = fresh
        m = module(finite, t1)
        Quantize().apply(make_context(), m)
        assert stored(m) == stored(first) and stored(m) is not stored(first)
        for _ in range(2):
            with pytest.raises(PassFailedException, match="1 of 2 values are inf or NaN"):
                Quantize().apply(make_context(), module("0000003F0000807F", t1))
        assert len(fresh.entries) == 1
    finally:
        qz.STORED_CONSTANTS = saved
    small = qz._StoredConstants(budget=12)

    def key(*values):  # a float value (4 bytes each) and a type
        return DenseIntOrFPElementsAttr.from_list(TensorType(f32, [len(values)]), values), t1

    def int8s(*values):
        return DenseIntOrFPElementsAttr.from_list(TensorType(i8, [len(values)]), values)

    a, b, c = int8s(1, 1), int8s(2, 2), int8s(3, 3)
    small.put(key(0.5), a)  # 4 + 2 bytes
    small.put(key(1.5), b)
    assert small.get(key(0.5)) is a  # now the most recent
    small.put(key(2.5), c)  # 18 bytes > 12: the least recently used, 1.5's, goes
    assert list(small.entries) == [key(0.5), key(2.5)] and small.size == 12
    small.put(key(3.5), int8s(*[1] * 9))  # 13 bytes: more than the whole budget
    small.put(key(4.5, 5.5, 6.5), int8s(1))  # 13 bytes, 12 of them the float value kept alive
    assert list(small.entries) == [key(0.5), key(2.5)] and small.size == 12


def test_quantize_values_saturates_infinities_and_zeroes_nan():
    from qcc.passes import _quant_math as qm

    t = UniformQuantizedType.get(0.5, 3)
    stored = qm.quantize_values(np.array([np.inf, -np.inf, np.nan, 1.0]), t)
    assert stored.tolist() == [127, -128, 3, 5]
    assert qm.non_finite_count(np.array([1.0, np.nan, np.inf])) == 2

