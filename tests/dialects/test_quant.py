"""The quant dialect: MLIR-exact text for quantized types and ops, their verifiers and the
Python API (constructors and accessors)."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from io import StringIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import (
    BFloat16Type,
    Builtin,
    Float16Type,
    Float64Type,
    FloatData,
    IntAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    TensorType,
    UnrankedTensorType,
    f32,
    i8,
)
from xdsl.dialects.func import Func
from xdsl.dialects import test as test_dialect
from xdsl.ir import Attribute
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import ParseError, VerifyException

from qcc.dialects.quant import (
    MAX_STORAGE_BITS,
    WIDE_STORAGE_BITS,
    DequantizeCastOp,
    Quant,
    QuantizeCastOp,
    QuantizedType,
    StatsOp,
    UniformQuantizedPerAxisType,
    UniformQuantizedType,
    is_quantized,
    storage_element_type,
)


@pytest.fixture
def ctx() -> Context:
    ctx = Context()
    for dialect in (Builtin, Func, Arith, test_dialect.Test, Quant):
        ctx.load_dialect(dialect)
    return ctx


def parse_type(ctx: Context, text: str) -> Attribute:
    return Parser(ctx, text).parse_type()


def parse_module(ctx: Context, text: str) -> ModuleOp:
    module = Parser(ctx, text).parse_module()
    module.verify()
    return module


def print_module(module: ModuleOp) -> str:
    stream = StringIO()
    Printer(stream=stream).print_op(module)
    return stream.getvalue()


def type_of_value(ctx: Context, type_text: str) -> Attribute:
    """The type of a `test.op` result: parses `type_text` in an op, as IR does."""
    module = parse_module(ctx, f'%0 = "test.op"() : () -> {type_text}')
    return next(iter(module.ops)).results[0].type


# ------------------------------------------------------------------------------------------
# Text: canonical forms print back unchanged


CANONICAL_TYPES = [
    "!quant.uniform<i8:f32, 2.350000e-02:-12>",
    "!quant.uniform<i8:f32, 5.000000e-01>",
    "!quant.uniform<u8:f32, 0.0078431372549019607:128>",
    "!quant.uniform<i8:f32, 7.8431372549019615E-4>",
    "!quant.uniform<u8:f32, 0x41646ABBA0000000:128>",
    "!quant.uniform<i8<-127:127>:f32, 1.000000e+00>",
    "!quant.uniform<u16<0:1023>:f32, 1.230000e+00:512>",
    "!quant.uniform<i4:f16, 2.000000e+02>",
    "!quant.uniform<i16:bf16, 2.000000e-02>",
    "!quant.uniform<u32:f64, 2.000000e+02>",
    "!quant.uniform<i32:f32, 1.000000e-10:-7>",
    "!quant.uniform<i8<-127:127>:f32:3, {1.200000e-02,9.000000e-03:2}>",
    "!quant.uniform<u8:f32:1, {2.000000e+02:120,9.987200e-01:127}>",
    "!quant.uniform<i8:f32:0, {0.0078431372549019607}>",
    "tensor<1x8x8x3x!quant.uniform<i8:f32, 7.800000e-03:-1>>",
    "tensor<?x?x!quant.uniform<u16:f32:0, {2.000000e+00:10,3.000000e+00:20}>>",
    "tensor<*x!quant.uniform<i8:f32, 5.000000e-01>>",
]


@pytest.mark.parametrize("text", CANONICAL_TYPES)
def test_canonical_type_text_round_trips(ctx: Context, text: str):
    assert str(parse_type(ctx, text)) == text


CANONICAL_MODULE = """\
builtin.module {
  func.func @f(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>) -> tensor<2x3xf32> {
    %q = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 2.350000e-02:-12>>
    %d = quant.dcast %q : tensor<2x3x!quant.uniform<i8:f32, 2.350000e-02:-12>> to tensor<2x3xf32>
    %wq = quant.qcast %w : tensor<4x3xf32> to tensor<4x3x!quant.uniform<i8<-127:127>:f32:0, {1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>
    %s = quant.stats %d {layer_stats = dense<[-1.000000e+00, 2.500000e+00]> : tensor<2xf32>} : tensor<2x3xf32>
    %t = quant.stats %s {layer_stats = dense<[-1.000000e+00, 2.500000e+00]> : tensor<2xf32>, axis = 1 : i64, axis_stats = dense<[[-1.000000e+00, 0.000000e+00], [0.000000e+00, 1.000000e+00], [1.000000e+00, 2.500000e+00]]> : tensor<3x2xf32>, histogram = dense<[1, 0, 5]> : tensor<3xi64>, histogram_range = dense<[-1.000000e+00, 2.500000e+00]> : tensor<2xf32>} : tensor<2x3xf32>
    func.return %t : tensor<2x3xf32>
  }
}
"""


def test_canonical_module_text_round_trips(ctx: Context):
    printed = print_module(parse_module(ctx, CANONICAL_MODULE))
    assert printed.rstrip("\n") == CANONICAL_MODULE.rstrip("\n")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("!quant.uniform<i8:f32, 0.0235:-12>", "!quant.uniform<i8:f32, 2.350000e-02:-12>"),
        ("!quant.uniform<i8:f32, 0.5:0>", "!quant.uniform<i8:f32, 5.000000e-01>"),
        ("!quant.uniform<i8<-128:127>:f32, 1.0>", "!quant.uniform<i8:f32, 1.000000e+00>"),
        ("!quant.uniform<u8<0:255>:f32, 1.0:3>", "!quant.uniform<u8:f32, 1.000000e+00:3>"),
        ("!quant.uniform<i8:f32, 2.0e+2>", "!quant.uniform<i8:f32, 2.000000e+02>"),
        ("!quant.uniform<i8:f32, 0.009>", "!quant.uniform<i8:f32, 9.000000e-03>"),
        ("!quant.uniform<i8:f32, 0.00784313725490196>",
         "!quant.uniform<i8:f32, 0.0078431372549019607>"),
        ("!quant.uniform<i8:f32, 12.345678901>", "!quant.uniform<i8:f32, 12.345678900999999>"),
        ("!quant.uniform<i8:f32, 1234567.0>", "!quant.uniform<i8:f32, 0x4132D68700000000>"),
        ("!quant.uniform<i8:f32, 1.2345678901234567e+20>",
         "!quant.uniform<i8:f32, 1.2345678901234567E+20>"),
        ("!quant.uniform<i8:f32:1, {2.0e+2:-120, 0.99872:127}>",
         "!quant.uniform<i8:f32:1, {2.000000e+02:-120,9.987200e-01:127}>"),
        ("!quant.uniform<i8:f32:0, {1.0:0,2.0}>",
         "!quant.uniform<i8:f32:0, {1.000000e+00,2.000000e+00}>"),
    ],
)
def test_type_text_is_normalised(ctx: Context, text: str, canonical: str):
    assert str(parse_type(ctx, text)) == canonical


def test_per_axis_text_parses_to_the_per_axis_class(ctx: Context):
    per_axis = parse_type(ctx, "!quant.uniform<i8:f32:0, {1.0, 2.0}>")
    per_tensor = parse_type(ctx, "!quant.uniform<i8:f32, 1.0>")
    assert type(per_axis) is UniformQuantizedPerAxisType
    assert type(per_tensor) is UniformQuantizedType


def test_parsed_type_equals_constructed_type(ctx: Context):
    assert parse_type(ctx, "!quant.uniform<i8<-127:127>:f32, 0.5:3>") == (
        UniformQuantizedType.get(0.5, 3, storage_min=-127)
    )
    assert parse_type(ctx, "!quant.uniform<u8:f16:2, {0.5:3, 0.25}>") == (
        UniformQuantizedPerAxisType.get(
            [0.5, 0.25], [3, 0], axis=2, signed=False, expressed_type=Float16Type()
        )
    )


# ------------------------------------------------------------------------------------------
# Scales: every double prints so that it reads back exactly, in MLIR's style


positive_doubles = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
positive_f32s = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, width=32)


def _scale_text(t: Attribute) -> str:
    return str(t).split(", ", 1)[1].removesuffix(">")


def _read_scale(text: str) -> float:
    if text.startswith("0x"):
        return struct.unpack("<d", int(text, 16).to_bytes(8, "little"))[0]
    return float(text)


@given(positive_doubles)
def test_any_double_scale_round_trips(scale: float):
    ctx = Context()
    ctx.load_dialect(Quant)
    t = UniformQuantizedType.get(scale, expressed_type=Float64Type())
    text = str(t)
    parsed = parse_type(ctx, text)
    assert parsed == t
    assert str(parsed) == text
    assert _read_scale(_scale_text(t)) == scale


@given(positive_f32s.filter(lambda s: s >= 2.0**-149))
def test_any_f32_scale_round_trips(scale: float):
    ctx = Context()
    ctx.load_dialect(Quant)
    t = UniformQuantizedType.get(scale, -5)
    parsed = parse_type(ctx, str(t))
    assert isinstance(parsed, UniformQuantizedType)
    assert parsed.scale == scale
    assert str(parsed) == str(t)


@given(st.lists(positive_f32s.filter(lambda s: s >= 2.0**-149), min_size=1, max_size=8))
def test_any_per_axis_scales_round_trip(scales: list[float]):
    ctx = Context()
    ctx.load_dialect(Quant)
    t = UniformQuantizedPerAxisType.get(scales, list(range(len(scales))), axis=1)
    parsed = parse_type(ctx, str(t))
    assert parsed == t
    assert str(parsed) == str(t)


@given(positive_doubles)
def test_six_digits_whenever_they_read_back(scale: float):
    six_digits = f"{scale:.5e}"
    text = _scale_text(UniformQuantizedType.get(scale, expressed_type=Float64Type()))
    if float(six_digits) == scale:
        mantissa, exponent = six_digits.split("e")
        assert text == f"{mantissa}0e{exponent}"
    else:
        digits = text.split("E")[0].replace(".", "").lstrip("0")
        assert text.startswith("0x") or len(digits) > 6


@pytest.mark.parametrize(
    ("scale", "text"),
    [
        (0.99872, "9.987200e-01"),
        (1e300, "1.000000e+300"),
        (5e-324, "4.940660e-324"),
        (1 / 127.5, "0.0078431372549019607"),
        (0.0007843137254901962, "7.8431372549019615E-4"),
        (2.0**-24, "5.9604644775390625E-8"),
        (2.0**70, "1.1805916207174113E+21"),
        (1234567.5, "1234567.5"),
        (10704349.0, "0x41646ABBA0000000"),
    ],
)
def test_scale_text_matches_mlir(scale: float, text: str):
    assert _scale_text(UniformQuantizedType.get(scale, expressed_type=Float64Type())) == text


# ------------------------------------------------------------------------------------------
# Type verifiers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!quant.uniform<i8<-129:127>:f32, 1.0>", "illegal storage min and storage max: (-129:127)"),
        ("!quant.uniform<u8<0:256>:f32, 1.0>", "illegal storage min and storage max: (0:256)"),
        ("!quant.uniform<i8<2:1>:f32, 1.0>", "illegal storage min and storage max: (2:1)"),
        ("!quant.uniform<i8<1:1>:f32, 1.0>", "illegal storage min and storage max: (1:1)"),
        ("!quant.uniform<i33:f32, 1.0>", "illegal storage type size: 33"),
        ("!quant.uniform<i63:f32, 1.0>", "illegal storage type size: 63"),
        ("!quant.uniform<i128:f32, 1.0>", "illegal storage type size: 128"),
        ("!quant.uniform<u0:f32, 1.0>", "illegal storage type size: 0"),
        ("!quant.uniform<i8:f32, -1.0>", "illegal scale: -1.000000e+00"),
        ("!quant.uniform<i8:f32, 0.0>", "illegal scale: 0.000000e+00"),
        ("!quant.uniform<i8:f32, 0x7FF0000000000000>", "illegal scale: 0x7FF0000000000000"),
        ("!quant.uniform<i8:f32, 0x7FF8000000000000>", "illegal scale: 0x7FF8000000000000"),
        ("!quant.uniform<i8:f16, 6.6e4>",
         "scale 6.600000e+04 out of expressed type range [5.9604644775390625E-8, 6.550400e+04]"),
        ("!quant.uniform<i8:f16, 5.8e-8>", "scale 5.800000e-08 out of expressed type range"),
        ("!quant.uniform<i8:f32, 1.0e-46>", "scale 1.000000e-46 out of expressed type range"),
        ("!quant.uniform<u8:f32, 1.0:-1>", "zero point -1 out of storage range [0, 255]"),
        ("!quant.uniform<i8<-127:127>:f32, 1.0:-128>",
         "zero point -128 out of storage range [-127, 127]"),
        ("!quant.uniform<i8:f32:0, {1.0, -2.0}>", "illegal scale: -2.000000e+00"),
        ("!quant.uniform<i8:f32:0, {1.0:3, 2.0:128}>",
         "zero point 128 out of storage range [-128, 127]"),
        ("!quant.uniform<i8:f32:-1, {1.0}>", "illegal quantized dimension: -1"),
        ("!quant.uniform<i8:f32:0, {}>", "illegal number of scales and zero points: 0, 0"),
    ],
)
def test_type_verifier_rejects(ctx: Context, text: str, message: str):
    with pytest.raises(VerifyException, match=re.escape(message)):
        parse_type(ctx, text)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UniformQuantizedType.get(-1.0), "illegal scale: -1.000000e+00"),
        (lambda: UniformQuantizedType.get(0.5, 300), "zero point 300 out of storage range"),
        (lambda: UniformQuantizedType.get(0.5, storage_bits=48), "illegal storage type size: 48"),
        (lambda: UniformQuantizedType.get(0.5, storage_bits=65), "illegal storage type size: 65"),
        (lambda: UniformQuantizedType.get(0.5, storage_min=-200),
         "illegal storage min and storage max: (-200:127)"),
        (lambda: UniformQuantizedPerAxisType.get([0.5, 0.25], [0], axis=0),
         "illegal number of scales and zero points: 2, 1"),
        (lambda: UniformQuantizedPerAxisType.get([0.5], axis=-2),
         "illegal quantized dimension: -2"),
    ],
)
def test_verifier_runs_on_python_construction(build: Callable[[], Attribute], message: str):
    with pytest.raises(VerifyException, match=re.escape(message)):
        build()


def test_storage_type_must_be_signless_or_unsigned():
    si8 = IntegerType(8, Signedness.SIGNED)
    with pytest.raises(VerifyException, match="storage type must be signless"):
        UniformQuantizedType(si8, IntAttr(-128), IntAttr(127), f32, FloatData(0.5), IntAttr(0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!quant.uniform<int8:f32, 1.0>", "illegal storage type prefix, expected iN or uN"),
        ("!quant.uniform<f8:f32, 1.0>", "illegal storage type prefix, expected iN or uN"),
        ("!quant.uniform<i8:i32, 1.0>", "expressed type must be f16, bf16, f32 or f64"),
        ("!quant.uniform<i8:f32, 1>", "Expected float literal"),
        ("!quant.uniform<i8:f32, 1.0:>", "Expected integer literal"),
        ("!quant.uniform<i8<16>:f32, 1.0>", "Expected ':'"),
        ("!quant.uniform<i8:f32 1.0>", "Expected ','"),
        ("!quant.uniform<i8:f32, 1.0 2>", "'>' expected"),
        ("!quant.uniform<i8:f32, 0x1FFFFFFFFFFFFFFFF>",
         "hexadecimal float literal does not fit in a double"),
    ],
)
def test_malformed_type_text_is_a_parse_error(ctx: Context, text: str, message: str):
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_type(ctx, text)


# ------------------------------------------------------------------------------------------
# Op verifiers


def _verify_error(ctx: Context, body: str) -> str:
    with pytest.raises(VerifyException) as error:
        parse_module(ctx, body)
    return str(error.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('%x = "test.op"() : () -> tensor<2x3xf32>\n'
         "%0 = quant.qcast %x : tensor<2x3xf32> to tensor<3x2x!quant.uniform<i8:f32, 1.0>>",
         "'quant.qcast' op failed to verify that input and result are both scalars or both "
         "tensors with matching shape"),
        ('%x = "test.op"() : () -> tensor<2x3xf32>\n'
         "%0 = quant.qcast %x : tensor<2x3xf32> to tensor<?x3x!quant.uniform<i8:f32, 1.0>>",
         "'quant.qcast' op failed to verify that input and result are both scalars or both "
         "tensors with matching shape"),
        ('%q = "test.op"() : () -> tensor<4x!quant.uniform<i8:f32, 1.0>>\n'
         "%0 = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<*xf32>",
         "'quant.dcast' op failed to verify that input and result are both scalars or both "
         "tensors with matching shape"),
        ('%q = "test.op"() : () -> !quant.uniform<i8:f32, 1.0>\n'
         "%0 = quant.dcast %q : !quant.uniform<i8:f32, 1.0> to tensor<f32>",
         "'quant.dcast' op failed to verify that input and result are both scalars or both "
         "tensors with matching shape"),
        ('%x = "test.op"() : () -> tensor<4xf64>\n'
         "%0 = quant.qcast %x : tensor<4xf64> to tensor<4x!quant.uniform<i8:f32, 1.0>>",
         "'quant.qcast' op expressed type in quantized type expected to match float type"),
        ('%q = "test.op"() : () -> tensor<4x!quant.uniform<i8:f32, 1.0>>\n'
         "%0 = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<4xf16>",
         "'quant.dcast' op expressed type in quantized type expected to match float type"),
        ('%x = "test.op"() : () -> f32\n'
         "%0 = quant.qcast %x : f32 to !quant.uniform<i8:f32:0, {1.0, 2.0}>",
         "'quant.qcast' op scalar types may not use per-axis quantization"),
        ('%x = "test.op"() : () -> tensor<2x3xf32>\n'
         "%0 = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32:2, {1.0, 2.0}>>",
         "'quant.qcast' op quantized dimension must be less than tensor rank"),
        ('%q = "test.op"() : () -> tensor<2x3x!quant.uniform<i8:f32:1, {1.0, 2.0}>>\n'
         "%0 = quant.dcast %q : tensor<2x3x!quant.uniform<i8:f32:1, {1.0, 2.0}>> to tensor<2x3xf32>",
         "'quant.dcast' op quantized dimension size does not match number of scales"),
        ('%x = "test.op"() : () -> tensor<4xf32>\n'
         "%0 = quant.qcast %x : tensor<4xf32> to tensor<4xf32>",
         "f32 should be of base attribute quant.uniform"),
        ('%q = "test.op"() : () -> tensor<4x!quant.uniform<i8:f32, 1.0>>\n'
         "%0 = quant.qcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> "
         "to tensor<2x!quant.uniform<i8:f32, 0.5>>",
         "'quant.qcast' op failed to verify that input and result are both scalars or both "
         "tensors with matching shape"),
        ('%q = "test.op"() : () -> tensor<4x!quant.uniform<i8:f32, 1.0>>\n'
         "%0 = quant.qcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> "
         "to tensor<4x!quant.uniform<i8:f16, 0.5>>",
         "'quant.qcast' op requantize expects input and result with the same expressed type"),
        ('%q = "test.op"() : () -> tensor<2x!quant.uniform<i8:f32, 1.0>>\n'
         "%0 = quant.qcast %q : tensor<2x!quant.uniform<i8:f32, 1.0>> "
         "to tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25}>>",
         "'quant.qcast' op requantize supports per-tensor quantized types only"),
        ('%x = "test.op"() : () -> tensor<4xi8>\n'
         "%0 = quant.dcast %x : tensor<4xi8> to tensor<4xf32>",
         "i8 should be of base attribute quant.uniform"),
    ],
)
def test_cast_verifier_rejects(ctx: Context, body: str, message: str):
    assert _verify_error(ctx, body).startswith(message)


@pytest.mark.parametrize(
    "body",
    [
        # A dynamic axis dimension, or an unranked tensor, holds any number of scales.
        '%x = "test.op"() : () -> tensor<?x3xf32>\n'
        "%0 = quant.qcast %x : tensor<?x3xf32> to tensor<?x3x!quant.uniform<i8:f32:0, {1.0, 2.0}>>",
        '%x = "test.op"() : () -> tensor<*xf32>\n'
        "%0 = quant.qcast %x : tensor<*xf32> to tensor<*x!quant.uniform<i8:f32:5, {1.0, 2.0}>>",
        '%x = "test.op"() : () -> bf16\n'
        "%0 = quant.qcast %x : bf16 to !quant.uniform<u8:bf16, 1.0:7>",
        # Requantization (TFLite's QUANTIZE between quantized types).
        '%q = "test.op"() : () -> tensor<4x!quant.uniform<u8:f32, 1.0:128>>\n'
        "%0 = quant.qcast %q : tensor<4x!quant.uniform<u8:f32, 1.0:128>> "
        "to tensor<4x!quant.uniform<i8:f32, 1.0>>",
    ],
)
def test_cast_verifier_accepts(ctx: Context, body: str):
    parse_module(ctx, body)


_REQUANTIZE_PAIRS = {
    # TFLite's QUANTIZE kernel (quantize.cc Prepare): the storage pairs it requantizes.
    ("i8", "i8"): True, ("i8", "u8"): True, ("i8", "i16"): True, ("i8", "i32"): False,
    ("u8", "i8"): True, ("u8", "u8"): True, ("u8", "i16"): True, ("u8", "u16"): False,
    ("i16", "i8"): True, ("i16", "i16"): True, ("i16", "i32"): True, ("i16", "u8"): False,
    ("i32", "i8"): True, ("i32", "i16"): True, ("i32", "i32"): False, ("u16", "i8"): False,
}


@pytest.mark.parametrize(("pair", "supported"), sorted(_REQUANTIZE_PAIRS.items()))
def test_requantize_storage_pairs_are_tflite_quantize(ctx: Context, pair, supported: bool):
    source, target = (f"tensor<4x!quant.uniform<{s}:f32, 1.0>>" for s in pair)
    body = f'%q = "test.op"() : () -> {source}\n%0 = quant.qcast %q : {source} to {target}'
    if supported:
        parse_module(ctx, body)
    else:
        assert _verify_error(ctx, body).startswith(
            f"'quant.qcast' op requantize from {pair[0]} to {pair[1]} is not a TFLite QUANTIZE"
        )


def _stats(attributes: str, tensor: str = "tensor<4x3xf32>") -> str:
    return (
        f'%x = "test.op"() : () -> {tensor}\n'
        f"%0 = quant.stats %x {{layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>{attributes}}}"
        f" : {tensor}"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('%x = "test.op"() : () -> tensor<4xf32>\n'
         "%0 = quant.stats %x {layer_stats = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<4xf32>",
         "'quant.stats' op layer_stats must have min <= max, got [1, -1]"),
        ('%x = "test.op"() : () -> tensor<4xf32>\n'
         "%0 = quant.stats %x {layer_stats = dense<[0.0, 1.0, 2.0]> : tensor<3xf32>} : tensor<4xf32>",
         "'quant.stats' op layer_stats must have shape [2], got [3]"),
        ('%x = "test.op"() : () -> tensor<4xf32>\n'
         "%0 = quant.stats %x {layer_stats = dense<[0.0, 1.0]> : tensor<2xf64>} : tensor<4xf32>",
         "f64 should be of base attribute f32"),
        ('%x = "test.op"() : () -> tensor<4xf32>\n'
         '%0 = "quant.stats"(%x) <{layer_stats = dense<[0.0, 1.0]> : tensor<2xf32>}> '
         ": (tensor<4xf32>) -> tensor<4xf64>",
         "result 'result' at position 0 does not verify:\n"
         "attribute tensor<4xf32> expected from variable 'T', but got tensor<4xf64>"),
        (_stats(", axis = 0 : i64"),
         "'quant.stats' op axis and axis_stats must be given together"),
        (_stats(", axis_stats = dense<[[0.0, 1.0]]> : tensor<1x2xf32>"),
         "'quant.stats' op axis and axis_stats must be given together"),
        (_stats(", axis = 2 : i64, axis_stats = dense<[[0.0, 1.0]]> : tensor<1x2xf32>"),
         "'quant.stats' op axis 2 out of range for a tensor of rank 2"),
        (_stats(", axis = -1 : i64, axis_stats = dense<[[0.0, 1.0]]> : tensor<1x2xf32>"),
         "'quant.stats' op axis -1 out of range for a tensor of rank 2"),
        (_stats(", axis = 1 : i64, axis_stats = dense<[[0.0, 1.0]]> : tensor<1x2xf32>"),
         "'quant.stats' op axis_stats must have shape [3, 2], got [1, 2]"),
        (_stats(", axis = 0 : i64, axis_stats = dense<[0.0, 1.0]> : tensor<2xf32>",
                "tensor<?x3xf32>"),
         "'quant.stats' op axis_stats must have shape [?, 2], got [2]"),
        (_stats(", axis = 1 : i64, axis_stats = dense<[[0.0, 1.0], [2.0, 1.5], [0.0, 0.0]]> "
                ": tensor<3x2xf32>"),
         "'quant.stats' op row 1 of axis_stats must have min <= max, got [2, 1.5]"),
        (_stats(", histogram = dense<[1, 2]> : tensor<2xi64>"),
         "'quant.stats' op histogram and histogram_range must be given together"),
        (_stats(", histogram_range = dense<[0.0, 1.0]> : tensor<2xf32>"),
         "'quant.stats' op histogram and histogram_range must be given together"),
        (_stats(", histogram = dense<[1, -2]> : tensor<2xi64>, "
                "histogram_range = dense<[0.0, 1.0]> : tensor<2xf32>"),
         "'quant.stats' op histogram counts must be non-negative"),
        (_stats(", histogram = dense<[[1, 2]]> : tensor<1x2xi64>, "
                "histogram_range = dense<[0.0, 1.0]> : tensor<2xf32>"),
         "'quant.stats' op histogram must have shape [B] with B >= 1 bins, got [1, 2]"),
        (_stats(", histogram = dense<[1, 2]> : tensor<2xi64>, "
                "histogram_range = dense<[1.0, 0.0]> : tensor<2xf32>"),
         "'quant.stats' op histogram_range must have min <= max, got [1, 0]"),
        (_stats(", histogram = dense<[1, 2]> : tensor<2xi32>, "
                "histogram_range = dense<[0.0, 1.0]> : tensor<2xf32>"),
         "Expected attribute i64 but got i32"),
    ],
)
def test_stats_verifier_rejects(ctx: Context, body: str, message: str):
    assert _verify_error(ctx, body).startswith(message)


def test_stats_verifier_rejects_nan_range():
    x = test_dialect.TestOp(result_types=[TensorType(f32, [4])])
    with pytest.raises(VerifyException, match=r"layer_stats must have min <= max, got \[nan, 1\]"):
        StatsOp(x, (math.nan, 1.0)).verify()


# ------------------------------------------------------------------------------------------
# Python API


def test_uniform_quantized_type_accessors():
    t = UniformQuantizedType.get(0.1, -3)
    assert isinstance(t, QuantizedType)
    assert (t.scale, t.zero_point) == (0.1, -3)
    assert (t.storage_type, t.storage_bits, t.is_signed) == (i8, 8, True)
    assert (t.storage_min, t.storage_max) == (-128, 127)
    assert t.expressed_type == f32
    assert str(t) == "!quant.uniform<i8:f32, 1.000000e-01:-3>"


def test_uniform_quantized_type_storage_options():
    t = UniformQuantizedType.get(
        0.5, 512, storage_bits=16, signed=False, storage_max=1023, expressed_type=BFloat16Type()
    )
    assert t.storage_type == IntegerType(16, Signedness.UNSIGNED)
    assert (t.storage_bits, t.is_signed, t.storage_min, t.storage_max) == (16, False, 0, 1023)
    assert t.expressed_type == BFloat16Type()
    assert str(t) == "!quant.uniform<u16<0:1023>:bf16, 5.000000e-01:512>"
    narrow = UniformQuantizedType.get(0.5, storage_min=-127)
    assert str(narrow) == "!quant.uniform<i8<-127:127>:f32, 5.000000e-01>"


def test_per_axis_type_accessors():
    t = UniformQuantizedPerAxisType.get([0.5, 0.25, 0.125], [1, 0, -1], axis=3, storage_min=-127)
    assert isinstance(t, QuantizedType)
    assert t.scales == (0.5, 0.25, 0.125)
    assert t.zero_points == (1, 0, -1)
    assert t.axis == 3
    assert (t.storage_type, t.storage_min, t.storage_max, t.expressed_type) == (i8, -127, 127, f32)
    assert str(t) == (
        "!quant.uniform<i8<-127:127>:f32:3, {5.000000e-01:1,2.500000e-01,1.250000e-01:-1}>"
    )
    assert UniformQuantizedPerAxisType.get([0.5, 0.25], axis=0).zero_points == (0, 0)


def test_storage_element_type_and_is_quantized():
    signed = UniformQuantizedType.get(0.5)
    unsigned = UniformQuantizedPerAxisType.get([0.5], [128], axis=0, signed=False)
    assert storage_element_type(signed) == i8
    assert storage_element_type(TensorType(signed, [2, 3])) == i8
    assert storage_element_type(UnrankedTensorType(unsigned)) == IntegerType(8, Signedness.UNSIGNED)
    assert is_quantized(signed) and is_quantized(TensorType(unsigned, [1]))
    assert not is_quantized(f32) and not is_quantized(TensorType(f32, [1]))
    with pytest.raises(ValueError, match="is not a quantized type"):
        storage_element_type(TensorType(f32, [1]))


def test_max_storage_bits_matches_mlir():
    assert MAX_STORAGE_BITS == 32
    UniformQuantizedType.get(1.0, storage_bits=32)


def test_64_bit_storage_is_the_one_wider_width(ctx: Context):
    """qcc's extension for TFLite's int64 biases of 16x8 ops (docs/ir.md, "int16
    activations"): exactly 64 bits, signed or not, beyond MLIR's 32."""
    assert WIDE_STORAGE_BITS == 64
    t = UniformQuantizedType.get(2.0**-20, storage_bits=64)
    assert (t.storage_min, t.storage_max) == (-(2**63), 2**63 - 1)
    assert str(t) == "!quant.uniform<i64:f32, 9.5367431640625E-7>"
    per_axis = UniformQuantizedPerAxisType.get([1e-6, 2e-6], axis=0, storage_bits=64)
    for text in (str(t), str(per_axis), "!quant.uniform<u64:f32, 1.000000e+00>"):
        assert str(parse_type(ctx, text)) == text
    assert str(parse_type(ctx, "!quant.uniform<i64<-5:5>:f32, 1.0>")) == (
        "!quant.uniform<i64<-5:5>:f32, 1.000000e+00>"
    )


def test_cast_constructors_keep_the_shape():
    x = test_dialect.TestOp(result_types=[TensorType(f32, [1, 2, 2, 3])])
    per_axis = UniformQuantizedPerAxisType.get([0.1, 0.2, 0.3], axis=3)
    q = QuantizeCastOp(x, per_axis)
    d = DequantizeCastOp(q)
    assert q.result.type == TensorType(per_axis, [1, 2, 2, 3])
    assert d.result.type == TensorType(f32, [1, 2, 2, 3])
    q.verify()
    d.verify()
    scalar = DequantizeCastOp(test_dialect.TestOp(result_types=[UniformQuantizedType.get(0.5)]))
    assert scalar.result.type == f32
    with pytest.raises(ValueError, match="cannot dequantize"):
        DequantizeCastOp(x)


def test_stats_constructor_and_accessors():
    x = test_dialect.TestOp(result_types=[TensorType(f32, [2, 3])])
    stats = StatsOp(
        x,
        (-1.0, 2.5),
        axis=1,
        axis_min_max=[(-1.0, 0.0), (0.0, 1.0), (1.0, 2.5)],
        histogram_counts=[1, 0, 5],
        histogram_min_max=(-1.0, 2.5),
    )
    stats.verify()
    assert stats.result.type == x.results[0].type
    assert stats.layer_min_max == (-1.0, 2.5)
    assert stats.axis_min_max == ((-1.0, 0.0), (0.0, 1.0), (1.0, 2.5))
    assert stats.histogram_counts == (1, 0, 5)
    assert stats.histogram_min_max == (-1.0, 2.5)
    assert stats.axis is not None and stats.axis.value.data == 1
    plain = StatsOp(x, (0.0, 1.0))
    plain.verify()
    assert (plain.axis, plain.axis_min_max) == (None, None)
    assert (plain.histogram_counts, plain.histogram_min_max) == (None, None)



def test_stats_histogram_is_the_attribute_from_list_builds():
    """The histogram is built from packed bytes (fast); it is the same attribute xdsl's
    `from_list` makes, counts past 2^32 included, and a count past i64 is a ValueError."""
    from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, i64

    x = test_dialect.TestOp(result_types=[TensorType(f32, [4])])
    counts = [0, 1, 2**40, 2**63 - 1, 7]
    stats = StatsOp(x, (0.0, 1.0), histogram_counts=counts, histogram_min_max=(0.0, 1.0))
    stats.verify()
    assert stats.histogram == DenseIntOrFPElementsAttr.from_list(TensorType(i64, [5]), counts)
    assert stats.histogram_counts == tuple(counts)
    with pytest.raises(ValueError, match="does not fit in i64"):
        StatsOp(x, (0.0, 1.0), histogram_counts=[2**63], histogram_min_max=(0.0, 1.0))

def test_types_differing_in_storage_or_expressed_type_are_not_equal():
    """Equality sees every parameter, the shared storage ones included: an i8 and
    an i16 type of one scale (and tensors of them) are different types."""
    from xdsl.dialects.builtin import f16

    base = UniformQuantizedType.get(0.5, 0)
    variants = [UniformQuantizedType.get(0.5, 0, storage_bits=16),
                UniformQuantizedType.get(0.5, 0, storage_min=-127),
                UniformQuantizedType.get(0.5, 0, storage_max=100),
                UniformQuantizedType.get(0.5, 0, signed=False),
                UniformQuantizedType.get(0.5, 0, expressed_type=f16)]
    for v in variants:
        assert v != base and len({v, base}) == 2, v
        assert TensorType(v, [2]) != TensorType(base, [2])
    assert UniformQuantizedType.get(0.5, 0) == base
    per_axis = UniformQuantizedPerAxisType.get([0.5], axis=0)
    assert per_axis != UniformQuantizedPerAxisType.get([0.5], axis=0, storage_bits=16)


def test_per_axis_get_builds_each_type_once():
    """`UniformQuantizedPerAxisType.get` returns one shared (immutable) attribute for the same
    parameters, equal to the one the constructor builds; any other parameter, or other bits
    of a scale, gives another type; a scale that is not a number still fails as before."""
    from xdsl.dialects.builtin import ArrayAttr

    from qcc.dialects.quant import _storage

    scales = [0.5, 0.25, 0.125]
    a = UniformQuantizedPerAxisType.get(scales, [1, 2, 3], axis=1, storage_min=-127)
    b = UniformQuantizedPerAxisType.get(tuple(scales), (1, 2, 3), axis=1, storage_min=-127)
    assert a is b
    built = UniformQuantizedPerAxisType(
        *_storage(8, True, -127, None), f32, IntAttr(1),
        ArrayAttr(FloatData(s) for s in scales), ArrayAttr(IntAttr(z) for z in (1, 2, 3)))
    assert a == built and str(a) == str(built)
    others = [
        UniformQuantizedPerAxisType.get(scales, [1, 2, 3], axis=0, storage_min=-127),
        UniformQuantizedPerAxisType.get(scales, [1, 2, 4], axis=1, storage_min=-127),
        UniformQuantizedPerAxisType.get(scales, [1, 2, 3], axis=1),
        UniformQuantizedPerAxisType.get([0.5, 0.25, 0.125000001], [1, 2, 3], axis=1,
                                        storage_min=-127),
        UniformQuantizedPerAxisType.get(scales, [1, 2, 3], axis=1, storage_min=-127,
                                        storage_bits=16),
    ]
    assert all(o != a for o in others)
    with pytest.raises(Exception):
        UniformQuantizedPerAxisType.get(["x"], axis=0)

def test_ops_are_pure():
    assert QuantizeCastOp.has_trait(Pure)
    assert DequantizeCastOp.has_trait(Pure)
    assert StatsOp.has_trait(Pure)


def test_dialect_contents():
    assert Quant.name == "quant"
    assert {op.name for op in Quant.operations} == {"quant.qcast", "quant.dcast", "quant.stats"}
    assert list(Quant.attributes) == [UniformQuantizedType]
    assert UniformQuantizedPerAxisType.name == UniformQuantizedType.name == "quant.uniform"


def test_quantized_types_nest_in_function_signatures(ctx: Context):
    text = """\
builtin.module {
  func.func @f(%a: tensor<4x!quant.uniform<i8:f32, 5.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 5.000000e-01>> {
    func.return %a : tensor<4x!quant.uniform<i8:f32, 5.000000e-01>>
  }
}"""
    assert print_module(parse_module(ctx, text)) == text


def test_value_of_quantized_type(ctx: Context):
    t = type_of_value(ctx, "tensor<2x!quant.uniform<u8:f32, 0.25:7>>")
    assert isinstance(t, TensorType)
    element = t.get_element_type()
    assert isinstance(element, UniformQuantizedType)
    assert (element.scale, element.zero_point, element.is_signed) == (0.25, 7, False)
