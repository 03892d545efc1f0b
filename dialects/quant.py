"""The `quant` dialect: uniform quantized element types, quantize/dequantize casts and
calibration statistics.

The types and the `quant.qcast`/`quant.dcast` ops follow MLIR's quant dialect exactly, in
text and in verification rules (two extensions: a `quant.qcast` may also requantize a
quantized value, and storage may be 64 bits wide besides MLIR's up to 32, for TFLite's int64
biases of int16 ("16x8") ops), so that any MLIR user can read qcc's IR:

    !quant.uniform<i8:f32, 2.350000e-02:-12>                    per tensor
    !quant.uniform<i8<-127:127>:f32:3, {1.200000e-02,9.000000e-03}>   per axis (axis 3)
    tensor<1x8x8x3x!quant.uniform<u8:f32, 7.800000e-03:128>>

A stored value `q` stands for the real value `(q - zero_point) * scale`.

`quant.stats` carries calibration ranges in the IR, modelled on TensorFlow's
`quantfork.stats` (tensorflow/compiler/mlir/quantization/common/ir/QuantOps.td).

See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/).
"""

from __future__ import annotations

import functools
import math
import re
import struct
from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    I64,
    AnyFloatConstr,
    ArrayAttr,
    BFloat16Type,
    BytesAttr,
    ContainerType,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatData,
    IntAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    TensorType,
    UnrankedTensorType,
    f32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    AttrConstraint,
    BaseAttr,
    IRDLOperation,
    ParamAttrConstraint,
    ParsePropInAttrDict,
    VarConstraint,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

MAX_STORAGE_BITS = 32
"""Storage integers up to this width are allowed, as in MLIR (`QuantizedType::MaxStorageBits`)."""

WIDE_STORAGE_BITS = 64
"""The one wider storage qcc allows besides MLIR's (an extension, like the requantizing
`quant.qcast`): TFLite's int64 biases of ops with int16 activations and int8 weights ("16x8",
e.g. `!quant.uniform<i64:f32:0, {...}>`; docs/ir.md, "int16 activations")."""

ExpressedType: TypeAlias = Float16Type | BFloat16Type | Float32Type | Float64Type
"""The float types a quantized type may stand for."""


# ------------------------------------------------------------------------------------------
# Scales, written as MLIR writes a double


def _double_bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def _format_double(value: float) -> str:
    """`value` as MLIR's `AsmPrinter::printFloat` writes a double, so that it reads back
    exactly.

    Six significant digits in exponent form when they read back to the same double
    (`9.987200e-01`); else 17 significant digits, laid out as LLVM's `APFloat::toString`
    does: positional while that takes at most two zeros after the point
    (`0.0078431372549019607`), else scientific (`7.8431372549019615E-4`). What neither form
    can spell with a decimal point (an integral value needing more than six digits, an
    infinity, a NaN) is written as its bits in hex (`0x41646ABBA0000000`). Unlike APFloat,
    digits are always rounded correctly; APFloat sometimes truncates them, which makes
    mlir-opt write 0.009 as `0.0089999999999999993`.
    """
    if not math.isfinite(value):
        return f"0x{_double_bits(value):X}"
    mantissa, exponent = f"{value:.5e}".split("e")
    if float(text := f"{mantissa}0e{exponent}") == value:
        return text
    mantissa, exponent = f"{abs(value):.16e}".split("e")
    sign = "-" if value < 0 else ""
    digits = mantissa.replace(".", "").rstrip("0")
    power = int(exponent)  # of the first digit
    trailing_zeros = power - (len(digits) - 1)  # before the point, when positive
    if power < -3 or trailing_zeros > 3 or power >= 17:
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{power:+d}"
    if trailing_zeros >= 0:
        return f"0x{_double_bits(value):X}"
    if power >= 0:
        return f"{sign}{digits[: power + 1]}.{digits[power + 1 :]}"
    return f"{sign}0.{'0' * (-power - 1)}{digits}"


def _parse_double(parser: AttrParser) -> float:
    """A float literal, or the hex bit pattern of a double as `_format_double` writes it."""
    if parser.lexer.input.content.startswith(("0x", "0X"), parser.pos):
        start = parser.pos
        bits = parser.parse_integer(allow_boolean=False, allow_negative=False)
        if bits >= 1 << 64:
            parser.raise_error("hexadecimal float literal does not fit in a double", start)
        return struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    return parser.parse_float()


# ------------------------------------------------------------------------------------------
# Types

_STORAGE_SPELLING = re.compile(r"([iu])([0-9]+)")

_SCALE_RANGE: dict[type[Attribute], tuple[float, float]] = {
    Float16Type: (2.0**-24, 65504.0),
    BFloat16Type: (2.0**-133, (2 - 2.0**-7) * 2.0**127),
    Float32Type: (2.0**-149, (2 - 2.0**-23) * 2.0**127),
    Float64Type: (5e-324, 1.7976931348623157e308),
}
"""Smallest positive (subnormal) and largest finite value of each expressed type."""


def _verify_storage_bits(bits: int) -> None:
    if not (0 < bits <= MAX_STORAGE_BITS or bits == WIDE_STORAGE_BITS):
        raise VerifyException(f"illegal storage type size: {bits}")


def _integer_range(bits: int, signed: bool) -> tuple[int, int]:
    """The full range of a `bits`-wide integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _storage(
    bits: int, signed: bool, storage_min: int | None, storage_max: int | None
) -> tuple[IntegerType, IntAttr, IntAttr]:
    """Storage parameters from their Python spelling; a missing bound is the type's own."""
    _verify_storage_bits(bits)
    lo, hi = _integer_range(bits, signed)
    storage_type = IntegerType(bits, Signedness.SIGNLESS if signed else Signedness.UNSIGNED)
    return (
        storage_type,
        IntAttr(lo if storage_min is None else storage_min),
        IntAttr(hi if storage_max is None else storage_max),
    )


def _parse_storage(parser: AttrParser) -> tuple[IntegerType, IntAttr, IntAttr]:
    """`iN` or `uN`, optionally followed by a storage range `<min:max>`."""
    start = parser.pos
    spelling = _STORAGE_SPELLING.fullmatch(parser.parse_identifier(context_msg=" (iN or uN)"))
    if spelling is None:
        parser.raise_error("illegal storage type prefix, expected iN or uN", start, parser.pos)
    storage_min = storage_max = None
    if parser.parse_optional_punctuation("<"):
        storage_min = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation(":")
        storage_max = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation(">")
    return _storage(int(spelling[2]), spelling[1] == "i", storage_min, storage_max)


def _parse_scale_zero_point(parser: AttrParser) -> tuple[FloatData, IntAttr]:
    """`scale` or `scale:zero_point`."""
    scale = _parse_double(parser)
    zero_point = 0
    if parser.parse_optional_punctuation(":"):
        zero_point = parser.parse_integer(allow_boolean=False)
    return FloatData(scale), IntAttr(zero_point)


def _format_scale_zero_point(scale: float, zero_point: int) -> str:
    return _format_double(scale) + (f":{zero_point}" if zero_point else "")


@dataclass(frozen=True, init=False)  # its parameters are fields: equality and hash see them
class QuantizedType(ParametrizedAttribute, TypeAttribute, ABC):
    """What the uniform quantized types share: how values are stored and what they stand for.

    Values are stored in `storage_type`, a signless `iN` (signed storage, spelled `iN`) or
    an unsigned `uiN` (spelled `uN`), restricted to `[storage_min, storage_max]`, and stand
    for values of `expressed_type` (f16, bf16, f32 or f64). Both subclasses print as
    `!quant.uniform<...>`.

    See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/).
    """

    name = "quant.uniform"

    storage_type: IntegerType
    storage_min_attr: IntAttr
    storage_max_attr: IntAttr
    expressed_type: ExpressedType

    @property
    def is_signed(self) -> bool:
        return self.storage_type.signedness.data != Signedness.UNSIGNED

    @property
    def storage_bits(self) -> int:
        return self.storage_type.width.data

    @property
    def storage_min(self) -> int:
        return self.storage_min_attr.data

    @property
    def storage_max(self) -> int:
        return self.storage_max_attr.data

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        """Parse `<storage[<min:max>]:expressed[:axis], params>`, either granularity.

        Returns the parameters of a `UniformQuantizedType` when there is no axis, else those
        of a `UniformQuantizedPerAxisType` (see `UniformQuantizedType.new`).
        """
        with parser.in_angle_brackets():
            storage = _parse_storage(parser)
            parser.parse_punctuation(":")
            start = parser.pos
            expressed_type = parser.parse_type()
            if not isinstance(expressed_type, ExpressedType):
                parser.raise_error(
                    "expressed type must be f16, bf16, f32 or f64", start, parser.pos
                )
            axis = None
            if parser.parse_optional_punctuation(":"):
                axis = IntAttr(parser.parse_integer(allow_boolean=False))
            parser.parse_punctuation(",")
            if axis is None:
                return [*storage, expressed_type, *_parse_scale_zero_point(parser)]
            pairs = parser.parse_comma_separated_list(
                parser.Delimiter.BRACES, lambda: _parse_scale_zero_point(parser)
            )
        scales = ArrayAttr(scale for scale, _ in pairs)
        zero_points = ArrayAttr(zero_point for _, zero_point in pairs)
        return [*storage, expressed_type, axis, scales, zero_points]

    def _print_storage_and_expressed(self, printer: Printer) -> None:
        printer.print_string(f"{'i' if self.is_signed else 'u'}{self.storage_bits}")
        if (self.storage_min, self.storage_max) != _integer_range(
            self.storage_bits, self.is_signed
        ):
            printer.print_string(f"<{self.storage_min}:{self.storage_max}>")
        printer.print_string(":")
        printer.print_attribute(self.expressed_type)

    def verify(self) -> None:
        if self.storage_type.signedness.data == Signedness.SIGNED:
            raise VerifyException(
                f"storage type must be signless (iN) or unsigned (uiN), got {self.storage_type}"
            )
        _verify_storage_bits(self.storage_bits)
        lo, hi = _integer_range(self.storage_bits, self.is_signed)
        if not lo <= self.storage_min < self.storage_max <= hi:
            raise VerifyException(
                f"illegal storage min and storage max: ({self.storage_min}:{self.storage_max})"
            )

    def _verify_scale_zero_point(self, scale: float, zero_point: int) -> None:
        if not 0.0 < scale < math.inf:
            raise VerifyException(f"illegal scale: {_format_double(scale)}")
        smallest, largest = _SCALE_RANGE[type(self.expressed_type)]
        if not smallest <= scale <= largest:
            raise VerifyException(
                f"scale {_format_double(scale)} out of expressed type range "
                f"[{_format_double(smallest)}, {_format_double(largest)}]"
            )
        if not self.storage_min <= zero_point <= self.storage_max:
            raise VerifyException(
                f"zero point {zero_point} out of storage range "
                f"[{self.storage_min}, {self.storage_max}]"
            )


@irdl_attr_definition
class UniformQuantizedType(QuantizedType):
    """Per-tensor (per-layer) uniform quantization: one `scale` and `zero_point`.

    `!quant.uniform<i8:f32, 2.350000e-02:-12>`; the zero point is omitted when 0, the
    storage range `<min:max>` when it is the storage type's full range.

    See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/).
    """

    scale_attr: FloatData
    zero_point_attr: IntAttr

    @classmethod
    def get(
        cls,
        scale: float,
        zero_point: int = 0,
        *,
        storage_bits: int = 8,
        signed: bool = True,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed_type: ExpressedType = f32,
    ) -> UniformQuantizedType:
        """`!quant.uniform<[i|u]<storage_bits>[<storage_min:storage_max>]:expressed, scale:zp>`.

        `storage_min`/`storage_max` default to the full range of the storage integer; pass
        `storage_min=-127` for TFLite's narrow-range int8 weights.
        """
        storage = _storage(storage_bits, signed, storage_min, storage_max)
        return cls(*storage, expressed_type, FloatData(scale), IntAttr(zero_point))

    @classmethod
    def new(  # pyright: ignore[reportIncompatibleMethodOverride]
        cls, params: Sequence[Attribute]
    ) -> UniformQuantizedType | UniformQuantizedPerAxisType:
        """Build the type from its parameters, dispatching on granularity.

        MLIR spells both granularities `!quant.uniform`, while xDSL maps a type name to one
        registered class: this one. So the parser builds through here, and the parameters
        of a per-axis type (they carry an axis) make a `UniformQuantizedPerAxisType`.
        """
        if len(params) == len(UniformQuantizedPerAxisType.get_irdl_definition().parameters):
            return UniformQuantizedPerAxisType.new(params)
        return super().new(params)

    @property
    def scale(self) -> float:
        return self.scale_attr.data

    @property
    def zero_point(self) -> int:
        return self.zero_point_attr.data

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            printer.print_string(", " + _format_scale_zero_point(self.scale, self.zero_point))

    def verify(self) -> None:
        super().verify()
        self._verify_scale_zero_point(self.scale, self.zero_point)


@irdl_attr_definition
class UniformQuantizedPerAxisType(QuantizedType):
    """Per-axis (per-channel) uniform quantization: one scale and zero point per slice of a
    tensor along dimension `axis`.

    `!quant.uniform<i8<-127:127>:f32:3, {1.200000e-02,9.000000e-03:2}>`. Whether the
    enclosing tensor has an `axis` dimension of `len(scales)` is checked by the ops that use
    the type (a type cannot see its container), as in MLIR.

    See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/).
    """

    axis_attr: IntAttr
    scales_attr: ArrayAttr[FloatData]
    zero_points_attr: ArrayAttr[IntAttr]

    @classmethod
    def get(
        cls,
        scales: Sequence[float],
        zero_points: Sequence[int] | None = None,
        *,
        axis: int,
        storage_bits: int = 8,
        signed: bool = True,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed_type: ExpressedType = f32,
    ) -> UniformQuantizedPerAxisType:
        """`!quant.uniform<...:expressed:axis, {scale:zp,...}>`; zero points default to 0.

        The storage arguments are those of `UniformQuantizedType.get`.
        """
        if zero_points is None:
            zero_points = [0] * len(scales)
        if cls is UniformQuantizedPerAxisType:
            try:  # the key holds the scales' exact bits (-0.0 and 0.0 stay apart)
                key = (struct.pack(f"<{len(scales)}d", *scales), tuple(map(int, zero_points)),
                       int(axis), storage_bits, signed, storage_min, storage_max, expressed_type)
                hash(key)
            except (struct.error, TypeError, ValueError, OverflowError):
                pass  # not plain numbers: built (and refused) below, without the cache
            else:
                return _per_axis_type(key)
        return cls(
            *_storage(storage_bits, signed, storage_min, storage_max),
            expressed_type,
            IntAttr(axis),
            ArrayAttr(FloatData(scale) for scale in scales),
            ArrayAttr(IntAttr(zero_point) for zero_point in zero_points),
        )

    @property
    def axis(self) -> int:
        return self.axis_attr.data

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(scale.data for scale in self.scales_attr)

    @property
    def zero_points(self) -> tuple[int, ...]:
        return tuple(zero_point.data for zero_point in self.zero_points_attr)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            pairs = map(_format_scale_zero_point, self.scales, self.zero_points)
            printer.print_string(f":{self.axis}, {{{','.join(pairs)}}}")

    def verify(self) -> None:
        super().verify()
        if self.axis < 0:
            raise VerifyException(f"illegal quantized dimension: {self.axis}")
        if not self.scales or len(self.scales) != len(self.zero_points):
            raise VerifyException(
                "illegal number of scales and zero points: "
                f"{len(self.scales)}, {len(self.zero_points)}"
            )
        for scale, zero_point in zip(self.scales, self.zero_points):
            self._verify_scale_zero_point(scale, zero_point)


@functools.lru_cache(maxsize=4096)
def _per_axis_type(key: tuple) -> UniformQuantizedPerAxisType:
    """`UniformQuantizedPerAxisType.get` for a key of plain numbers, made once: attributes are
    immutable, and building one checks every scale and zero point through xdsl's attribute
    machinery (~2 ms for 128 channels), which a precision search repeats for the same weights
    on every model it measures."""
    packed, zero_points, axis, storage_bits, signed, storage_min, storage_max, expressed = key
    scales = struct.unpack(f"<{len(packed) // 8}d", packed)
    return UniformQuantizedPerAxisType(
        *_storage(storage_bits, signed, storage_min, storage_max),
        expressed,
        IntAttr(axis),
        ArrayAttr(FloatData(scale) for scale in scales),
        ArrayAttr(IntAttr(zero_point) for zero_point in zero_points),
    )


def _element_type(t: Attribute) -> Attribute:
    return t.get_element_type() if isinstance(t, ContainerType) else t


def is_quantized(t: Attribute) -> bool:
    """Whether `t` is a quantized type, or a tensor (any container) of them."""
    return isinstance(_element_type(t), QuantizedType)


def storage_element_type(t: Attribute) -> IntegerType:
    """The integer type that holds the stored values of `t`.

    `t` is a quantized type or a tensor (any container) of them; the result is `iN` for
    signed storage and `uiN` for unsigned storage. Raises ValueError for anything else.
    """
    element = _element_type(t)
    if not isinstance(element, QuantizedType):
        raise ValueError(f"{t} is not a quantized type nor a container of them")
    return element.storage_type


# ------------------------------------------------------------------------------------------
# Ops


def _op_error(op: Operation, message: str) -> VerifyException:
    return VerifyException(f"'{op.name}' op {message}")


def _unranked_tensor_of(constraint: AttrConstraint) -> AttrConstraint:
    return ParamAttrConstraint(UnrankedTensorType, (constraint,))


_QUANTIZED = BaseAttr(QuantizedType)
_REAL_VALUE = (
    AnyFloatConstr
    | TensorType.constr(AnyFloatConstr)
    | _unranked_tensor_of(AnyFloatConstr)
)
"""A float scalar or a tensor of floats (MLIR's `quant_RealValueType`)."""
_QUANTIZED_VALUE = _QUANTIZED | TensorType.constr(_QUANTIZED) | _unranked_tensor_of(_QUANTIZED)
"""A quantized scalar or a tensor of them (MLIR's `quant_QuantizedValueType`)."""


def _with_element_type(t: Attribute, element_type: Attribute) -> Attribute:
    """`t` (a scalar, or a ranked or unranked tensor) with its element type replaced."""
    if isinstance(t, TensorType):
        return TensorType(element_type, t.get_shape(), t.encoding)
    if isinstance(t, UnrankedTensorType):
        return UnrankedTensorType(element_type)
    return element_type


def _shape(t: Attribute) -> tuple[int, ...] | bool:
    """A ranked tensor's shape; otherwise whether `t` is an (unranked) tensor."""
    return t.get_shape() if isinstance(t, TensorType) else isinstance(t, UnrankedTensorType)


def _verify_cast(op: Operation, float_type: Attribute, quantized_type: Attribute) -> None:
    """MLIR's rules for `quant.qcast` and `quant.dcast` (`verifyQuantizationOp`)."""
    if _shape(float_type) != _shape(quantized_type):
        raise _op_error(
            op,
            "failed to verify that input and result are both scalars or both tensors "
            "with matching shape",
        )
    quantized = _element_type(quantized_type)
    assert isinstance(quantized, QuantizedType)
    if quantized.expressed_type != _element_type(float_type):
        raise _op_error(op, "expressed type in quantized type expected to match float type")
    if not isinstance(quantized, UniformQuantizedPerAxisType):
        return
    if not isinstance(quantized_type, TensorType | UnrankedTensorType):
        raise _op_error(op, "scalar types may not use per-axis quantization")
    if not isinstance(quantized_type, TensorType):
        return
    shape = quantized_type.get_shape()
    if quantized.axis >= len(shape):
        raise _op_error(op, "quantized dimension must be less than tensor rank")
    if shape[quantized.axis] not in (DYNAMIC_INDEX, len(quantized.scales)):
        raise _op_error(op, "quantized dimension size does not match number of scales")


_REQUANTIZE_TARGETS: dict[str, tuple[str, ...]] = {
    "i8": ("i8", "u8", "i16"),
    "u8": ("i8", "u8", "i16"),
    "i16": ("i8", "i16", "i32"),
    "i32": ("i8", "i16"),
}
"""Storage pairs TFLite's QUANTIZE kernel requantizes between (quantize.cc Prepare)."""


def _storage_spelling(t: QuantizedType) -> str:
    return f"{'i' if t.is_signed else 'u'}{t.storage_bits}"


def _verify_requantize(op: Operation, input_type: Attribute, result_type: Attribute) -> None:
    """A quantized -> quantized `quant.qcast` (TFLite's requantizing QUANTIZE, e.g. int8 ->
    int8 with new parameters, or uint8 <-> int8 at model boundaries): same shape, same
    expressed type, both per-tensor, a storage pair the QUANTIZE kernel supports."""
    if _shape(input_type) != _shape(result_type):
        raise _op_error(
            op,
            "failed to verify that input and result are both scalars or both tensors "
            "with matching shape",
        )
    source, target = _element_type(input_type), _element_type(result_type)
    assert isinstance(source, QuantizedType) and isinstance(target, QuantizedType)
    if source.expressed_type != target.expressed_type:
        raise _op_error(op, "requantize expects input and result with the same expressed type")
    if isinstance(source, UniformQuantizedPerAxisType) or isinstance(
        target, UniformQuantizedPerAxisType
    ):
        raise _op_error(op, "requantize supports per-tensor quantized types only")
    spelling = (_storage_spelling(source), _storage_spelling(target))
    if spelling[1] not in _REQUANTIZE_TARGETS.get(spelling[0], ()):
        supported = ", ".join(f"{s} -> {'/'.join(t)}" for s, t in _REQUANTIZE_TARGETS.items())
        raise _op_error(
            op,
            f"requantize from {spelling[0]} to {spelling[1]} is not a TFLite QUANTIZE "
            f"(supported: {supported})",
        )
    if spelling == ("i16", "i16") and (source.zero_point, target.zero_point) != (0, 0):  # type: ignore[attr-defined]
        raise _op_error(op, "int16 -> int16 requantize needs zero points 0")


@irdl_op_definition
class QuantizeCastOp(IRDLOperation):
    """Quantize a float value: `stored = clamp(round(x / scale + zero_point))`; or requantize
    a quantized value to new parameters (TFLite's QUANTIZE int8 -> int8, uint8 <-> int8).

    `%q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 5.000000e-01>>`.
    Input and result have the same shape; the result's expressed type is the input's
    element type. The rounding is left to the lowering, as in MLIR.

    See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/#quantqcast-quantquantizecastop).
    """

    name = "quant.qcast"

    input = operand_def(_REAL_VALUE | _QUANTIZED_VALUE)
    result = result_def(_QUANTIZED_VALUE)

    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, input: SSAValue | Operation, quantized_type: QuantizedType):
        """Quantize `input` to `quantized_type`, keeping its shape."""
        input = SSAValue.get(input)
        super().__init__(
            operands=[input], result_types=[_with_element_type(input.type, quantized_type)]
        )

    def verify_(self) -> None:
        if is_quantized(self.input.type):
            _verify_requantize(self, self.input.type, self.result.type)
            return
        _verify_cast(self, self.input.type, self.result.type)


@irdl_op_definition
class DequantizeCastOp(IRDLOperation):
    """Dequantize a quantized value: `x = (stored - zero_point) * scale`.

    `%x = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 5.000000e-01>> to tensor<4xf32>`.
    Input and result have the same shape; the result's element type is the input's
    expressed type.

    See external [documentation](https://mlir.llvm.org/docs/Dialects/QuantDialect/#quantdcast-quantdequantizecastop).
    """

    name = "quant.dcast"

    input = operand_def(_QUANTIZED_VALUE)
    result = result_def(_REAL_VALUE)

    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, input: SSAValue | Operation):
        """Dequantize `input` to its expressed type, keeping its shape."""
        input = SSAValue.get(input)
        quantized = _element_type(input.type)
        if not isinstance(quantized, QuantizedType):
            raise ValueError(f"cannot dequantize a value of type {input.type}")
        super().__init__(
            operands=[input],
            result_types=[_with_element_type(input.type, quantized.expressed_type)],
        )

    def verify_(self) -> None:
        _verify_cast(self, self.result.type, self.input.type)


def _f32_tensor(shape: Sequence[int], values: Sequence[float]) -> DenseIntOrFPElementsAttr:
    return DenseIntOrFPElementsAttr.from_list(TensorType(f32, shape), values)


def _verify_min_max(
    op: Operation, name: str, attr: DenseIntOrFPElementsAttr, shape: tuple[int, ...]
) -> None:
    """`attr` has `shape` (a dynamic dimension matches any size) and holds `[min, max]`
    pairs, its rows, with min <= max."""
    actual = attr.get_shape()
    if len(actual) != len(shape) or any(
        expected not in (size, DYNAMIC_INDEX) for size, expected in zip(actual, shape)
    ):
        expected_text = ", ".join("?" if size == DYNAMIC_INDEX else str(size) for size in shape)
        raise _op_error(op, f"{name} must have shape [{expected_text}], got {list(actual)}")
    values = attr.get_values()
    for row in range(len(values) // 2):
        low, high = values[2 * row : 2 * row + 2]
        if not low <= high:
            where = f"row {row} of {name}" if len(shape) == 2 else name
            raise _op_error(op, f"{where} must have min <= max, got [{low:g}, {high:g}]")


@irdl_op_definition
class StatsOp(IRDLOperation):
    """Calibration statistics of a float tensor; an identity on values.

    `%y = quant.stats %x {layer_stats = dense<[-1.0, 2.5]> : tensor<2xf32>} : tensor<8xf32>`

    - `layer_stats`: `dense<[min, max]> : tensor<2xf32>`, the range over the whole tensor.
    - `axis` and `axis_stats` (both or neither): `tensor<Nx2xf32>`, one `[min, max]` row
      per slice of the tensor along `axis`: N is the size of that dimension, as for
      per-axis types (`quantfork.stats` instead multiplies the sizes from `axis` on).
    - `histogram` and `histogram_range` (both or neither): `tensor<Bxi64>`, the number of
      values that fell in each of B equal-width bins spanning
      `histogram_range = dense<[low, high]> : tensor<2xf32>`. Histograms over the same
      range and bins merge by adding their counts.
    - `channel_mean`: `tensor<...xf32>`, the mean of the tensor over its leading axes, whose
      shape is a trailing part of the tensor's shape: normally the last axis alone
      (`tensor<Cxf32>`, the per-channel mean of an NHWC tensor); more trailing axes where a
      consumer flattens the tensor into rows wider than one channel (a fully_connected input
      `1x2x2x3` read as rows of 12 features records a `2x2x3` mean). A mean over more axes
      gives the per-channel mean by averaging (every leading position counts the same).
      Recorded as sums and counts, means merge by weighting with their counts.

    The statistics live in the attribute dictionary, as in TensorFlow's `quantfork.stats`.
    The op is Pure: once a pass has read the ranges, it replaces the op by its input.

    See external [documentation](https://github.com/tensorflow/tensorflow/blob/master/tensorflow/compiler/mlir/quantization/common/ir/QuantOps.td).
    """

    name = "quant.stats"

    T: ClassVar = VarConstraint("T", TensorType.constr(AnyFloatConstr))
    input = operand_def(T)
    result = result_def(T)

    layer_stats = prop_def(DenseIntOrFPElementsAttr[Float32Type])
    axis = opt_prop_def(IntegerAttr[I64])
    axis_stats = opt_prop_def(DenseIntOrFPElementsAttr[Float32Type])
    histogram = opt_prop_def(DenseIntOrFPElementsAttr[I64])
    histogram_range = opt_prop_def(DenseIntOrFPElementsAttr[Float32Type])
    channel_mean = opt_prop_def(DenseIntOrFPElementsAttr[Float32Type])

    traits = traits_def(Pure())

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input)"

    def __init__(
        self,
        input: SSAValue | Operation,
        layer_min_max: tuple[float, float],
        *,
        axis: int | None = None,
        axis_min_max: Sequence[tuple[float, float]] | None = None,
        histogram_counts: Sequence[int] | None = None,
        histogram_min_max: tuple[float, float] | None = None,
        channel_mean: Sequence[float] | None = None,
        channel_mean_shape: Sequence[int] | None = None,
    ):
        """Annotate `input` with its range and, optionally, per-axis ranges, a histogram and
        a mean over the leading axes (`channel_mean`, flat, in row-major order, of shape
        `channel_mean_shape`; default: one axis of `len(channel_mean)`)."""
        input = SSAValue.get(input)
        properties: dict[str, Attribute] = {"layer_stats": _f32_tensor([2], layer_min_max)}
        if axis is not None:
            properties["axis"] = IntegerAttr(axis, i64)
        if axis_min_max is not None:
            properties["axis_stats"] = _f32_tensor(
                [len(axis_min_max), 2], [bound for row in axis_min_max for bound in row]
            )
        if histogram_counts is not None:
            counts = [int(c) for c in histogram_counts]
            # bytes-backed: `from_list` range-checks each bin through xdsl's attribute
            # machinery (~7 µs a bin), the bulk of annotating a model with 2048-bin histograms
            try:
                packed = struct.pack(f"<{len(counts)}q", *counts)
            except struct.error:
                raise ValueError("quant.stats: a histogram count does not fit in i64") from None
            properties["histogram"] = DenseIntOrFPElementsAttr(
                TensorType(i64, [len(counts)]), BytesAttr(packed)
            )
        if histogram_min_max is not None:
            properties["histogram_range"] = _f32_tensor([2], histogram_min_max)
        if channel_mean is not None:
            values = [float(v) for v in channel_mean]
            shape = [len(values)] if channel_mean_shape is None else list(channel_mean_shape)
            # bytes-backed (not a list attribute): wide means stay cheap to build and print
            properties["channel_mean"] = DenseIntOrFPElementsAttr(
                TensorType(f32, shape), BytesAttr(struct.pack(f"<{len(values)}f", *values))
            )
        super().__init__(operands=[input], result_types=[input.type], properties=properties)

    @property
    def layer_min_max(self) -> tuple[float, float]:
        low, high = self.layer_stats.get_values()
        return low, high

    @property
    def axis_min_max(self) -> tuple[tuple[float, float], ...] | None:
        """One `(min, max)` per slice along `axis`, if recorded."""
        if self.axis_stats is None:
            return None
        values = self.axis_stats.get_values()
        return tuple(zip(values[::2], values[1::2]))

    @property
    def histogram_counts(self) -> tuple[int, ...] | None:
        return None if self.histogram is None else self.histogram.get_values()

    @property
    def histogram_min_max(self) -> tuple[float, float] | None:
        if self.histogram_range is None:
            return None
        low, high = self.histogram_range.get_values()
        return low, high

    @property
    def channel_means(self) -> tuple[float, ...] | None:
        """The flat (row-major) values of `channel_mean`, if recorded."""
        return None if self.channel_mean is None else self.channel_mean.get_values()

    def verify_(self) -> None:
        _verify_min_max(self, "layer_stats", self.layer_stats, (2,))
        if (self.axis is None) != (self.axis_stats is None):
            raise _op_error(self, "axis and axis_stats must be given together")
        if self.axis is not None and self.axis_stats is not None:
            input_type = self.input.type
            assert isinstance(input_type, TensorType)
            shape = input_type.get_shape()
            axis = self.axis.value.data
            if not 0 <= axis < len(shape):
                raise _op_error(self, f"axis {axis} out of range for a tensor of rank {len(shape)}")
            _verify_min_max(self, "axis_stats", self.axis_stats, (shape[axis], 2))
        if (self.histogram is None) != (self.histogram_range is None):
            raise _op_error(self, "histogram and histogram_range must be given together")
        if self.histogram is not None and self.histogram_range is not None:
            if len(self.histogram.get_shape()) != 1 or not len(self.histogram):
                raise _op_error(
                    self,
                    "histogram must have shape [B] with B >= 1 bins, "
                    f"got {list(self.histogram.get_shape())}",
                )
            if min(self.histogram.get_values()) < 0:
                raise _op_error(self, "histogram counts must be non-negative")
            _verify_min_max(self, "histogram_range", self.histogram_range, (2,))
        if self.channel_mean is not None:
            input_type = self.input.type
            assert isinstance(input_type, TensorType)
            shape = input_type.get_shape()
            mean_shape = self.channel_mean.get_shape()
            trailing = shape[len(shape) - len(mean_shape) :] if mean_shape else ()
            if (
                not mean_shape
                or len(mean_shape) > len(shape)
                or any(expected not in (size, DYNAMIC_INDEX)
                       for size, expected in zip(mean_shape, trailing))
            ):
                dims = ", ".join("?" if d == DYNAMIC_INDEX else str(d) for d in shape)
                raise _op_error(
                    self,
                    f"channel_mean must have trailing dimensions of the input shape [{dims}], "
                    f"got {list(mean_shape)}",
                )
            if not all(math.isfinite(v) for v in self.channel_mean.get_values()):
                raise _op_error(self, "channel_mean must be finite")


Quant = Dialect(
    "quant",
    [QuantizeCastOp, DequantizeCastOp, StatsOp],
    [UniformQuantizedType],
)
