"""The `nn` dialect: tensor-level neural-network operators in NHWC layout.

Each op mirrors one TFLite builtin operator (see the TFLite op reference at
https://www.tensorflow.org/mlir/tfl_ops). Operands that TFLite passes as constant tensors but
that are really static configuration (a RESHAPE's shape, a PAD's paddings, a MEAN's axes,
a TRANSPOSE's permutation, ...) are properties here, so passes and kernels never have to chase
constants for them. Weights and biases stay operands, defined by `nn.constant`.

Conventions:
  * layout is NHWC; convolution filters are OHWI (`nn.conv2d`, `nn.transpose_conv`) and
    1HW(I*M) (`nn.depthwise_conv2d`); fully-connected weights are [out, in];
  * a fused activation is the `fused_activation` property: "NONE", "RELU", "RELU_N1_TO_1",
    "RELU6", "TANH" (TFLite's ActivationFunctionType);
  * padding is "SAME" or "VALID"; strides and dilations are `array<i64: h, w>`;
  * element types are f32, integer types, or `!quant.uniform` types; the same ops carry
    float and quantized tensors;
  * anything without a dedicated op (custom ops, rarer builtins) is `nn.generic`, which keeps
    the operator name and its raw option bytes, so nothing is lost.

Verification (`NNOp.verify_`) is what makes an op safe to run and to export: IR that
verifies never makes a qcc kernel divide by zero or index out of range, and never becomes a
`.tflite` file that LiteRT refuses to prepare. In order:

  1. the op's own shape and property rules (`verify_shapes`): ranks, result shapes, axes in
     range, strides/dilations/filter and block sizes >= 1, non-negative paddings, ... as
     TFLite's kernels check them in Prepare;
  2. quantized types that fit their tensor (a per-axis dimension inside the rank, one scale
     per slice);
  3. the quantization traits (`QuantTrait`): the constraints of the TFLite int8 spec
     (same scale, fixed output range, symmetric weights and int32 bias = input x weight
     scale) and the preconditions TFLite's int8 kernels check in Prepare (see
     `KERNEL_PRECONDITIONS` below), each a parametrised trait declared on the op, so
     infer-scales reads the same declarations to choose parameters that satisfy them.

Ops declare their quantization constraints as traits; passes read the traits instead of
switching on op names.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ShapedType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import OpTrait, Pure
from xdsl.utils.exceptions import VerifyException

from qcc.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType

ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")
PADDINGS = ("SAME", "VALID")
INT16_MAX = 32767
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ------------------------------------------------------------------------------------------
# Quantization constraints, declared on the ops (TFLite's quantization traits, STYLE.md §3.2)
# ------------------------------------------------------------------------------------------

KERNEL_PRECONDITIONS = """\
What TFLite's int8 kernels check in Prepare, op by op (google-ai-edge/LiteRT @ f674577,
tflite/kernels/<file>.cc; the same code as tensorflow/lite/kernels). "hard" = a
TF_LITE_ENSURE (the interpreter refuses the model: "Node number N (OP) failed to prepare")
or a TFLITE_CHECK (the process aborts); "spec" = required by the int8 quantization spec but
not checked at run time (wrong numbers, not an error). Each line names the trait that
declares it on the op; shape and property rules are in the op's `verify_shapes`.

CONV_2D (conv.cc Prepare, kernel_util.cc PopulateConvolutionQuantizationParams)
  hard  filter zero points all 0 ............................................ AffineWeights
  hard  bias int32 with zero point 0, one element per output channel ........ AffineWeights
  hard  per-channel filter: #scales == output channels == filter dim of the
        quantized dimension ................................ AffineWeights, NNOp.verify_
  hard  stride > 0, dilation > 0; input channels a multiple of the filter's ... verify_shapes
  hard  fused RELU6 / RELU_N1_TO_1 bound / output scale fits int32 .......... FusedActivation
  spec  a fused TANH is ignored by every int8 kernel (full-range clamp) .... FusedActivation
  spec  weights per channel on dim 0, bias scale = input x weight scale ..... AffineWeights
DEPTHWISE_CONV_2D (depthwise_conv.cc Prepare)
  hard  stride, dilation in [1, 32767]; filter [1, H, W, C*M]; output channels a multiple
        of input channels ..................................................... verify_shapes
  hard  bias int32, zero point 0, rank 1, one per output channel; #filter scales is 1 or
        the output channels ................................................... AffineWeights
  hard  fused activation bound fits int32 .................................. FusedActivation
  spec  weights per channel on dim 3, symmetric ............................... AffineWeights
TRANSPOSE_CONV (transpose_conv.cc Prepare)
  hard  stride in [1, 32767]; input channels == filter dim 3 .................. verify_shapes
  hard  int8 weights; bias int32, zero point 0, one per output channel ....... AffineWeights
  hard  #filter scales is 1 or the output channels .................. AffineWeights, verify_
FULLY_CONNECTED (fully_connected.cc PrepareImpl)
  hard  rank-2 weights; bias elements == weight rows ........................... verify_shapes
  hard  per-channel weights only on quantized dimension 0, #scales == rows ... AffineWeights
  hard  per-tensor weights with a bias: |in_scale*w_scale - bias_scale| / out_scale <= 0.02
        (kernel_util.cc GetQuantizedConvolutionMultipler) .......... BiasScaleNearProduct
  hard  fused activation bound fits int32 .................................. FusedActivation
  hard  fused activation NONE, RELU, RELU_N1_TO_1 or RELU6 unless hybrid ..... verify_shapes
BATCH_MATMUL (batch_matmul.cc Prepare)
  hard  ranks 2..5, broadcastable batch dimensions, equal contraction sizes ... verify_shapes
ADD (add.cc Prepare)
  hard  QuantizeMultiplierSmallerThanOneExp(2*max(s1, s2) / (2^20 * s_out)): the output
        multiplier must be < 1 after QuantizeMultiplier's rounding (TFLITE_CHECK: abort)
        ......................................................... AddSubOutputMultiplier
  hard  fused activation bound fits int32 .................................. FusedActivation
SUB (sub.cc PrepareGeneralSubOp)
  hard  zero points inside the int8 range ........................... quant type verifier
  hard  the same output multiplier, allowed > 1 (QuantizeMultiplierGreaterThanOne) but not
        in (1 - 2^-32, 1] where QuantizeMultiplier rounds it up to 1 (abort)
        ......................................................... AddSubOutputMultiplier
MUL (mul.cc Prepare)
  spec  float32(s1 * s2 / s_out) finite: QuantizeMultiplier casts an infinity to int64
        (undefined; 0 on x86, so every output is the zero point) ....... MulOutputMultiplier
  hard  fused activation bound fits int32 .................................. FusedActivation
MAXIMUM, MINIMUM (maximum_minimum.cc): no check; compare raw int8 values, so
  spec  inputs and output share scale and zero point ........................... SameScale
PRELU, RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU (activations.cc): only QuantizeMultiplier of
  positive finite ratios, no int8 precondition.
LOGISTIC (activations.cc SigmoidPrepare)
  hard  output scale == 1/256 exactly (zero point -128: spec; checked by the fixed-point
        kernel) ........................................................ FixedOutputRange
TANH (activations.cc TanhPrepare)
  spec  output scale 1/128, zero point 0 (not checked on the LUT path) ... FixedOutputRange
HARD_SWISH (activations.cc HardSwishPrepare)
  hard  QuantizeMultiplier(float32(input_scale / 128) / output_scale) exponent <= 0, i.e.
        input_scale / 128 / output_scale < 1 after rounding ....... HardSwishOutputMultiplier
SOFTMAX (activations.cc SoftmaxPrepare)
  hard  output zero point -128, |output scale - 1/256| <= 0.001/256 ...... FixedOutputRange
  hard  input rank >= 1 .......................................................... verify_shapes
PAD, PADV2 (pad.cc)
  hard  paddings >= 0, rank <= 5, one pad value ............................... verify_shapes
  hard  PADV2 int8 (checked in Eval): pad value scale and zero point == output's  SameScale
  spec  input and output share scale and zero point ............................ SameScale
AVERAGE_POOL_2D, MAX_POOL_2D (pooling.cc GenericPrepare)
  hard  rank 4, stride > 0; a window with no input tap fails Eval (filter >= 1) . verify_shapes
  spec  same scale and zero point in and out (TFLITE_DCHECK only) ............. SameScale
  hard  fused activation bound fits int32 .................................. FusedActivation
MEAN (reduce.cc PrepareMeanOrSum)
  hard  axes in [-rank, rank) ................................................... verify_shapes
CONCATENATION (concatenation.cc Prepare)
  hard  axis in [-rank, rank); fused activation NONE (every type) ............. verify_shapes
  hard  int8: every input's scale and zero point == the output's, exactly ...... SameScale
RESHAPE, SQUEEZE, TRANSPOSE, SPLIT, SLICE, STRIDED_SLICE, GATHER, RESIZE_BILINEAR,
RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE, SPACE_TO_DEPTH: pure data movement, no int8 check
  spec  input and output share scale and zero point ............................ SameScale
  hard  SQUEEZE: rank <= 8, squeezed dims in range and of size 1; TRANSPOSE: rank <= 8,
        perm a permutation; SPLIT: axis in range, even split; SLICE: 0 <= begin,
        begin + size <= dim (size -1 = to the end); STRIDED_SLICE: strides != 0, at most
        31 indices; GATHER: axis in range, 0 <= batch_dims <= axis, matching batch dims;
        RESIZE_*: rank 4, sizes >= 1; DEPTH_TO_SPACE / SPACE_TO_DEPTH: block >= 1 dividing
        the channels / spatial sizes ........................................ verify_shapes
QUANTIZE (quantize.cc Prepare; `quant.qcast`)
  hard  requantize only i8/u8 -> i8/u8/i16, i16 -> i8/i16/i32, i32 -> i8/i16; int16 ->
        int16 with zero points 0 ............................ quant.py _verify_requantize
XNNPACK (LiteRT's default delegate; a refusal fails the whole model, not just the op)
  hard  CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED: input_scale *
        weight_scale[c] / output_scale < 256 for every channel ...... XnnpackRequantizationScale
DEQUANTIZE (dequantize.cc Prepare; `quant.dcast`)
  hard  input u8, i8 or i16 (zero point 0): not verified, the quant dialect keeps MLIR's
        rules (f16/bf16 expressed types, any storage); the TFLite backend must refuse the
        rest.
"""
"""The TFLite int8 kernel preconditions, op by op, and where qcc declares each one."""

MULTIPLIER_MARGIN = 2.0**-16
"""Relative margin infer-scales keeps below a multiplier bound of 1, so that float32
rounding of the scales and QuantizeMultiplier's rounding of the mantissa (up to 2^-32
relative) can never push the multiplier to 1."""


def to_f32(x: float) -> float:
    """`x` rounded to the nearest float32 (what the flatbuffer stores, what C++ computes
    with), as a Python float; out-of-range values become infinities."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's `QuantizeMultiplier(double)` (quantization_util.cc, double-rounding build):
    (significand in [2^30, 2^31), shift), 0 -> (0, 0), tiny values flushed to (0, 0).
    Raises ValueError for a non-finite multiplier (TFLite aborts)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):
        raise ValueError(f"multiplier {real} is not finite")
    fraction, shift = math.frexp(real)
    q = int(math.floor(abs(fraction) * 2.0**31 + 0.5))
    q = q if fraction >= 0 else -q
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def qtype_of(value: SSAValue | Attribute) -> QuantizedType | None:
    """The quantized element type of a value or tensor type, or None."""
    t = value.type if isinstance(value, SSAValue) else value
    if isinstance(t, ShapedType) and isinstance(t, TensorType):
        element = t.get_element_type()
        return element if isinstance(element, QuantizedType) else None
    return t if isinstance(t, QuantizedType) else None


def _scales(t: QuantizedType) -> tuple[float, ...]:
    if isinstance(t, UniformQuantizedPerAxisType):
        return t.scales
    assert isinstance(t, UniformQuantizedType)
    return (t.scale,)


def _zero_points(t: QuantizedType) -> tuple[int, ...]:
    if isinstance(t, UniformQuantizedPerAxisType):
        return t.zero_points
    assert isinstance(t, UniformQuantizedType)
    return (t.zero_point,)


def _fmt(x: float) -> str:
    return f"{x:.7g}"


def _describe(t: QuantizedType) -> str:
    if isinstance(t, UniformQuantizedType):
        return f"scale {_fmt(t.scale)}, zero point {t.zero_point}"
    return f"per-axis quantized along dimension {t.axis}"  # type: ignore[attr-defined]


def _is_int8(t: QuantizedType) -> bool:
    return t.storage_bits == 8 and t.is_signed


@dataclass(frozen=True)
class QuantTypes:
    """The quantized element types of an op's operands and results (None where a value is
    not quantized): what the quantization traits check. `QuantTypes.of(op)` reads the IR;
    infer-scales builds one from the types it plans, to check them before writing them."""

    operands: tuple[QuantizedType | None, ...]
    results: tuple[QuantizedType | None, ...]

    @staticmethod
    def of(op: Operation, planned: Mapping[SSAValue, QuantizedType] | None = None) -> QuantTypes:
        planned = planned or {}

        def get(v: SSAValue) -> QuantizedType | None:
            return planned[v] if v in planned else qtype_of(v)

        return QuantTypes(
            tuple(get(v) for v in op.operands), tuple(get(r) for r in op.results)
        )

    def operand(self, index: int | None) -> QuantizedType | None:
        if index is None or not 0 <= index < len(self.operands):
            return None
        return self.operands[index]

    def result(self, index: int = 0) -> QuantizedType | None:
        return self.results[index] if index < len(self.results) else None


class QuantTrait(OpTrait):
    """Base of the traits that describe how an op may be quantized.

    A trait states a rule on the op's quantized types: `violation` returns why the types
    break it (None when they keep it, or when the values it constrains are not quantized),
    and `min_result_scale` the bound the result scale must exceed for it to hold (0 when
    the result scale is free or the rule is not about it). `NNOp.verify_` checks every
    trait after the op's shape rules; infer-scales widens a result scale past the bounds.
    """

    ORDER: ClassVar[int] = 0
    """Traits are checked in this order (xDSL keeps an op's traits in a set): the int8
    spec's constraints (0) before the kernels' preconditions (1)."""

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        return None

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        return 0.0


@dataclass(frozen=True)
class SameScale(QuantTrait):
    """All quantized tensor operands and results share one quantization (data-movement ops,
    pools, maximum/minimum, PADV2's pad value; TFLite CONCATENATION refuses anything else)."""

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        seen = [(f"result #{i}", t) for i, t in enumerate(types.results) if t is not None]
        seen += [(f"operand #{i}", t) for i, t in enumerate(types.operands) if t is not None]
        for label, t in seen:
            if not isinstance(t, UniformQuantizedType):
                return f"{label} must be quantized per tensor (the op keeps one scale)"
        if not seen:
            return None
        ref_label, ref = seen[0]
        assert isinstance(ref, UniformQuantizedType)
        for label, t in seen[1:]:
            assert isinstance(t, UniformQuantizedType)
            if (t.storage_type, to_f32(t.scale), t.zero_point) != (
                ref.storage_type,
                to_f32(ref.scale),
                ref.zero_point,
            ):
                return (
                    f"{label} ({_describe(t)}) and {ref_label} ({_describe(ref)}) must have "
                    "the same scale and zero point"
                )
        return None


@dataclass(frozen=True)
class FixedOutputRange(QuantTrait):
    """The int8 result has fixed parameters, whatever the input range (LOGISTIC: 1/256,
    -128). `tolerance` is the relative scale error the kernel accepts (SOFTMAX: 0.001);
    0 means the float32 scale must be exactly `scale`."""

    scale: float = 1.0 / 256.0
    zero_point: int = -128
    tolerance: float = 0.0

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        t = types.result()
        if t is None:
            return None
        if not isinstance(t, UniformQuantizedType):
            return "result must be quantized per tensor (fixed output range)"
        if not _is_int8(t):
            return None  # the fixed parameters are those of int8 results
        scale = to_f32(t.scale)
        if self.tolerance:
            scale_ok = abs(scale - self.scale) <= self.tolerance * self.scale
        else:
            scale_ok = scale == to_f32(self.scale)
        if scale_ok and t.zero_point == self.zero_point:
            return None
        within = f" (within {self.tolerance:g} relative)" if self.tolerance else ""
        return (
            f"int8 result must have scale {_fmt(self.scale)}{within} and zero point "
            f"{self.zero_point} (fixed output range), got {_describe(t)}"
        )


@dataclass(frozen=True)
class AffineWeights(QuantTrait):
    """Weights are operand `weight_operand`, quantized symmetrically per channel along
    `axis`; the bias (operand `bias_operand`, if present) is int32 with
    scale = input_scale * weight_scale[c] (TFLite's AccumulatorUniformScale).

    Verified: weight zero points 0 and per-axis weights along `axis` (also for hybrid ops
    with float activations); bias zero point 0, int32 storage with int8 activations,
    per-axis along 0, and its scales equal to input_scale * weight_scale[c] up to float32
    rounding."""

    input_operand: int
    weight_operand: int
    bias_operand: int
    axis: int
    per_axis_optional: bool = False
    """The runtime also accepts per-tensor weights and the TFLite spec table lists
    per-tensor (FULLY_CONNECTED): infer-scales may choose either (`per-channel-fc`)."""

    BIAS_SCALE_TOLERANCE: ClassVar[float] = 1e-6
    """Relative difference allowed between a bias scale and input_scale * weight_scale
    (float32 rounding of the product is 6e-8)."""

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        w = types.operand(self.weight_operand)
        b = types.operand(self.bias_operand)
        x = types.operand(self.input_operand)
        w_label = f"weights (operand #{self.weight_operand})"
        b_label = f"bias (operand #{self.bias_operand})"
        if w is not None:
            if any(zp != 0 for zp in _zero_points(w)):
                return f"{w_label} must be quantized symmetrically (zero point 0)"
            if isinstance(w, UniformQuantizedPerAxisType) and w.axis != self.axis:
                return (
                    f"{w_label} must be quantized per axis along dimension {self.axis}, "
                    f"got dimension {w.axis}"
                )
        if b is None:
            return None
        if any(zp != 0 for zp in _zero_points(b)):
            return f"{b_label} must have zero point 0"
        if x is not None and _is_int8(x) and b.storage_bits != 32:
            return f"{b_label} must be int32 with int8 activations, got {b.storage_bits} bits"
        if isinstance(b, UniformQuantizedPerAxisType) and b.axis != 0:
            return f"{b_label} must be quantized per axis along dimension 0, got {b.axis}"
        if x is None or w is None or not isinstance(x, UniformQuantizedType):
            return None
        w_scales, b_scales = _scales(w), _scales(b)
        if len(w_scales) != len(b_scales) and 1 not in (len(w_scales), len(b_scales)):
            return f"{b_label} has {len(b_scales)} scales for {len(w_scales)} weight scales"
        for c in range(max(len(w_scales), len(b_scales))):
            expected = x.scale * w_scales[c if len(w_scales) > 1 else 0]
            actual = b_scales[c if len(b_scales) > 1 else 0]
            if abs(actual - expected) > self.BIAS_SCALE_TOLERANCE * expected:
                return (
                    f"{b_label} scale [{c}] must be input scale x weight scale = "
                    f"{_fmt(expected)}, got {_fmt(actual)}"
                )
        return None


@dataclass(frozen=True)
class Int8Kernel(QuantTrait):
    """The op has an int8 kernel in TFLite (it may be quantized at all)."""


# -- preconditions of TFLite's int8 kernels (KERNEL_PRECONDITIONS) --------------------------


def _int8_per_tensor(*types: QuantizedType | None) -> bool:
    """Whether every type is a per-tensor int8 type (the int8 kernel is the one to run)."""
    return all(isinstance(t, UniformQuantizedType) and _is_int8(t) for t in types)


@dataclass(frozen=True)
class AddSubOutputMultiplier(QuantTrait):
    """ADD / SUB (add.cc Prepare, sub.cc PrepareGeneralSubOp): with left_shift 20,
    real_out = float32(2 * max(s1, s2)) / float32(2^20 * s_out) goes through
    QuantizeMultiplierSmallerThanOneExp, which aborts the process (TFLITE_CHECK) unless
    0 < real_out < 1 and the rounded multiplier keeps shift <= 0. SUB takes the
    GreaterThanOne path when real_out > 1 (`greater_than_one_allowed`)."""

    ORDER: ClassVar[int] = 1

    greater_than_one_allowed: bool = False

    @staticmethod
    def _input_scales(types: QuantTypes) -> tuple[float, float] | None:
        a, b, out = types.operand(0), types.operand(1), types.result()
        if not _int8_per_tensor(a, b, out):
            return None
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        return to_f32(a.scale), to_f32(b.scale)

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        scales = self._input_scales(types)
        if scales is None:
            return None
        out = types.result()
        assert isinstance(out, UniformQuantizedType)
        twice_max = to_f32(2.0 * max(scales))
        denominator = to_f32(2.0**20 * to_f32(out.scale))
        kernel = f"TFLite {op.name[3:].upper()} QuantizeMultiplierSmallerThanOneExp"
        if not math.isfinite(denominator):
            return (
                f"2^20 x output scale {_fmt(out.scale)} overflows float32 ({kernel}): the "
                "output range is too wide"
            )
        real = twice_max / denominator
        if self.greater_than_one_allowed and real > 1.0:
            return None
        if 0.0 < real < 1.0 and quantize_multiplier(real)[1] <= 0:
            return None
        return (
            "output multiplier 2 x max(input scales) / (2^20 x output scale) must be in "
            f"(0, 1) after rounding ({kernel}), got {_fmt(twice_max)} / (2^20 x "
            f"{_fmt(out.scale)}) = {real:.7g}"
        )

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        a, b = types.operand(0), types.operand(1)
        if not _int8_per_tensor(a, b):
            return 0.0
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        return 2.0 * max(a.scale, b.scale) / 2.0**20 * (1.0 + MULTIPLIER_MARGIN)


@dataclass(frozen=True)
class HardSwishOutputMultiplier(QuantTrait):
    """HARD_SWISH (activations.cc HardSwishPrepare): QuantizeMultiplier of
    float32(float32(input_scale / 128) / output_scale) must have exponent <= 0
    (TF_LITE_ENSURE: "params->output_multiplier_exponent <= 0 was not true"), i.e.
    input_scale / 128 / output_scale < 1 after rounding."""

    ORDER: ClassVar[int] = 1

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        x, out = types.operand(0), types.result()
        if not _int8_per_tensor(x, out):
            return None
        assert isinstance(x, UniformQuantizedType) and isinstance(out, UniformQuantizedType)
        hires = to_f32(to_f32(1.0 / 128.0) * to_f32(x.scale))
        multiplier = to_f32(hires / to_f32(out.scale))
        if math.isfinite(multiplier) and quantize_multiplier(multiplier)[1] <= 0:
            return None
        return (
            "output multiplier input scale / 128 / output scale must be < 1 after rounding "
            "(TFLite HARD_SWISH output_multiplier_exponent <= 0), got "
            f"{_fmt(x.scale)} / 128 / {_fmt(out.scale)} = {multiplier:.7g}"
        )

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        x = types.operand(0)
        if not _int8_per_tensor(x):
            return 0.0
        assert isinstance(x, UniformQuantizedType)
        return x.scale / 128.0 * (1.0 + MULTIPLIER_MARGIN)


@dataclass(frozen=True)
class MulOutputMultiplier(QuantTrait):
    """MUL (mul.cc Prepare): float32(s1 * s2 / s_out) goes through QuantizeMultiplier; an
    infinite multiplier (float32 overflow) is cast to int64 there, which is undefined (on
    x86 the multiplier becomes 0 and every output the zero point)."""

    ORDER: ClassVar[int] = 1

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        a, b, out = types.operand(0), types.operand(1), types.result()
        if not _int8_per_tensor(a, b, out):
            return None
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        assert isinstance(out, UniformQuantizedType)
        real = to_f32(to_f32(to_f32(a.scale) * to_f32(b.scale)) / to_f32(out.scale))
        if math.isfinite(real):
            return None
        return (
            "output multiplier lhs scale x rhs scale / output scale overflows float32 "
            f"(TFLite MUL QuantizeMultiplier): {_fmt(a.scale)} x {_fmt(b.scale)} / "
            f"{_fmt(out.scale)}"
        )


_ACTIVATION_BOUNDS = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU": (0.0,)}


@dataclass(frozen=True)
class FusedActivation(QuantTrait):
    """A fused activation on an int8 result (kernel_util.cc
    CalculateActivationRangeQuantized): each bound of RELU / RELU6 / RELU_N1_TO_1 is
    quantized as round(bound / output_scale) and must fit int32 (TF_LITE_ENSURE); a fused
    TANH is ignored by the int8 kernels (they clamp to the full range), so it is refused."""

    ORDER: ClassVar[int] = 1

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        act = getattr(op, "fused_activation", None)
        out = types.result()
        if not isinstance(act, StringAttr) or act.data == "NONE" or out is None:
            return None
        if not isinstance(out, UniformQuantizedType):
            return None
        if act.data == "TANH":
            return "fused_activation TANH is not applied by TFLite's int8 kernels"
        scale = to_f32(out.scale)
        for bound in _ACTIVATION_BOUNDS.get(act.data, ()):
            q = to_f32(bound / scale)
            if not -(2.0**31) <= q <= 2.0**31:
                return (
                    f"fused_activation {act.data}: bound {bound:g} / output scale "
                    f"{_fmt(out.scale)} does not fit int32"
                )
        return None

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        act = getattr(op, "fused_activation", None)
        if not isinstance(act, StringAttr):
            return 0.0
        bounds = _ACTIVATION_BOUNDS.get(act.data, ())
        largest = max((abs(b) for b in bounds), default=0.0)
        return largest / 2.0**31 * (1.0 + MULTIPLIER_MARGIN)


@dataclass(frozen=True)
class BiasScaleNearProduct(QuantTrait):
    """FULLY_CONNECTED with per-tensor int8 weights and a bias (kernel_util.cc
    GetQuantizedConvolutionMultipler): TF_LITE_ENSURE
    |input_scale * weight_scale - bias_scale| / output_scale <= `tolerance`."""

    ORDER: ClassVar[int] = 1

    input_operand: int = 0
    weight_operand: int = 1
    bias_operand: int = 2
    tolerance: float = 0.02

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        x, w = types.operand(self.input_operand), types.operand(self.weight_operand)
        b, out = types.operand(self.bias_operand), types.result()
        if not (
            isinstance(w, UniformQuantizedType)
            and isinstance(b, UniformQuantizedType)
            and _int8_per_tensor(x, out)
        ):
            return None
        assert isinstance(x, UniformQuantizedType) and isinstance(out, UniformQuantizedType)
        product = to_f32(x.scale) * to_f32(w.scale)
        diff = abs(product - to_f32(b.scale)) / to_f32(out.scale)
        if diff <= self.tolerance:
            return None
        return (
            f"|input scale x weight scale - bias scale| / output scale must be <= "
            f"{self.tolerance:g} (TFLite per-tensor FULLY_CONNECTED), got {diff:.4g}"
        )


@dataclass(frozen=True)
class XnnpackRequantizationScale(QuantTrait):
    """CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED under XNNPACK (LiteRT's
    default delegate): the requantization scale input_scale * weight_scale[c] / output_scale
    of every channel must be < 256, or XNNPACK refuses to create the operator and the whole
    delegate fails to prepare ("failed to create XNNPACK runtime": the model does not run
    under LiteRT's default resolver at all). Measured on ai-edge-litert 2.3.0 (255.9 runs,
    256.1 fails; tests/test_kernel_preconditions.py re-probes it). The reference kernels
    accept any multiplier, but an output step under 1/256 of an accumulator step carries
    no information, so the bound costs nothing."""

    ORDER: ClassVar[int] = 1

    input_operand: int = 0
    weight_operand: int = 1
    limit: float = 256.0

    def _largest_weight_scale(self, types: QuantTypes) -> float | None:
        x, w = types.operand(self.input_operand), types.operand(self.weight_operand)
        if w is None or not _int8_per_tensor(x):
            return None
        return max(_scales(w))

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        largest = self._largest_weight_scale(types)
        x, out = types.operand(self.input_operand), types.result()
        if largest is None or not _int8_per_tensor(out):
            return None
        assert isinstance(x, UniformQuantizedType) and isinstance(out, UniformQuantizedType)
        scale = to_f32(to_f32(x.scale) * to_f32(largest)) / to_f32(out.scale)
        if scale < self.limit:
            return None
        return (
            f"requantization scale input scale x weight scale / output scale must be < "
            f"{self.limit:g} (XNNPACK refuses the op), got {_fmt(x.scale)} x "
            f"{_fmt(largest)} / {_fmt(out.scale)} = {scale:.6g}"
        )

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        largest = self._largest_weight_scale(types)
        x = types.operand(self.input_operand)
        if largest is None or not isinstance(x, UniformQuantizedType):
            return 0.0
        return x.scale * largest / self.limit * (1.0 + MULTIPLIER_MARGIN)


def quant_traits(op: Operation) -> list[QuantTrait]:
    """The quantization traits declared on `op`."""
    if not isinstance(op, IRDLOperation):
        return []
    traits = op.get_traits_of_type(QuantTrait)
    return sorted(traits, key=lambda t: (t.ORDER, type(t).__name__))


def quant_violations(op: Operation, types: QuantTypes | None = None) -> list[str]:
    """Why `op`'s quantized types (or the planned `types`) break its traits; empty if none."""
    types = QuantTypes.of(op) if types is None else types
    return [v for t in quant_traits(op) if (v := t.violation(op, types)) is not None]


def min_result_scale(op: Operation, types: QuantTypes) -> float:
    """The bound a result scale of `op` must exceed for its traits to hold (0: free)."""
    return max((t.min_result_scale(op, types) for t in quant_traits(op)), default=0.0)


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------


def ints(attr: DenseArrayBase | None) -> tuple[int, ...]:
    """The Python ints of an `array<i64: ...>` property (empty for None)."""
    if attr is None:
        return ()
    return tuple(int(v) for v in attr.get_values())


def i64_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def shape_of(value: SSAValue | Attribute) -> tuple[int, ...]:
    t = value.type if isinstance(value, SSAValue) else value
    assert isinstance(t, ShapedType)
    return tuple(t.get_shape())


def _err(op: Operation, msg: str) -> VerifyException:
    return VerifyException(f"'{op.name}' op {msg}")


def _check_choice(op: Operation, what: str, value: str, allowed: Sequence[str]):
    if value not in allowed:
        raise _err(op, f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def _check_axis(op: Operation, what: str, axis: int, rank: int) -> int:
    """`axis` in [-rank, rank) (TFLite's rule for every axis operand), normalized to
    [0, rank)."""
    if not -rank <= axis < rank:
        raise _err(
            op, f"{what} {axis} is out of range for rank {rank} (expected {-rank} <= {what} < {rank})"
        )
    return axis % rank


def _check_pair(
    op: Operation, what: str, values: Sequence[int], high: int | None = None
) -> tuple[int, int]:
    """Two entries (height, width), each >= 1 (and <= `high`)."""
    if len(values) != 2:
        raise _err(op, f"{what} must have two entries (height, width), got {list(values)}")
    if any(v < 1 or (high is not None and v > high) for v in values):
        limit = f"in [1, {high}]" if high is not None else ">= 1"
        raise _err(op, f"{what} must be {limit}, got {list(values)}")
    return values[0], values[1]


def _check_positive_dims(op: Operation, what: str, shape: Sequence[int]) -> None:
    if any(d < 1 for d in shape):
        raise _err(op, f"{what} must have non-zero static dimensions, got {list(shape)}")


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output extent of a convolution/pool window along one spatial axis (TFLite rules)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def broadcast_shapes(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """Numpy broadcasting of two static shapes, or None if they do not broadcast."""
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out: list[int] = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def _num_elements(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ------------------------------------------------------------------------------------------
# Op families
# ------------------------------------------------------------------------------------------


class NNOp(IRDLOperation):
    """Base of every nn op: generic-looking custom syntax, properties in the attr-dict.

    `verify_` runs, in order: the fused-activation and padding choices, the op's shape and
    property rules (`verify_shapes`), the fit of quantized types to their tensors, and the
    quantization traits. (Float and quantized activations mixed in one int8-capable op are
    verify-int8's to report, not the verifier's.)"""

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        self.verify_activation()
        padding = getattr(self, "padding", None)
        if isinstance(padding, StringAttr):
            _check_choice(self, "padding", padding.data, PADDINGS)
        self.verify_shapes()
        self.verify_quantized_tensors()
        for violation in quant_violations(self):
            raise _err(self, violation)

    def verify_shapes(self) -> None:
        """The op's own shape and property rules (overridden per op)."""

    def verify_activation(self) -> None:
        act = getattr(self, "fused_activation", None)
        if isinstance(act, StringAttr):
            _check_choice(self, "fused_activation", act.data, ACTIVATIONS)

    def verify_quantized_tensors(self) -> None:
        """A per-axis type's dimension lies inside its tensor and has one scale per slice
        (MLIR's rule for quant types, which cannot see their container)."""
        for kind, values in (("operand", self.operands), ("result", self.results)):
            for i, v in enumerate(values):
                t = v.type
                if not isinstance(t, TensorType):
                    continue
                element = t.get_element_type()
                if not isinstance(element, UniformQuantizedPerAxisType):
                    continue
                shape = t.get_shape()
                if element.axis >= len(shape):
                    raise _err(
                        self,
                        f"{kind} #{i}: quantized dimension {element.axis} must be less than "
                        f"tensor rank {len(shape)}",
                    )
                if shape[element.axis] not in (-1, len(element.scales)):
                    raise _err(
                        self,
                        f"{kind} #{i}: quantized dimension size {shape[element.axis]} does not "
                        f"match number of scales {len(element.scales)}",
                    )

    @property
    def activation(self) -> str:
        act = getattr(self, "fused_activation", None)
        return act.data if isinstance(act, StringAttr) else "NONE"


@irdl_op_definition
class ConstantOp(NNOp):
    """A constant tensor (weights, biases, indices). `value` holds the stored data; for a
    quantized result type it holds the integer storage values, or still the float values
    ("to be quantized": infer-scales chose the type, the `quantize` pass materializes it).

    See external [documentation](https://mlir.llvm.org/docs/Dialects/TOSA/#tosaconst-tosaconstop).
    """

    name = "nn.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "attr-dict `:` type($output)"

    def __init__(self, value: DenseIntOrFPElementsAttr, result_type: Attribute | None = None):
        super().__init__(
            properties={"value": value},
            result_types=[result_type if result_type is not None else value.type],
        )

    def verify_shapes(self) -> None:
        if tuple(self.value.get_shape()) != shape_of(self.output):
            raise _err(self, "value shape does not match the result shape")
        stored = self.value.get_element_type()
        result = self.output.type
        assert isinstance(result, TensorType)
        element = result.get_element_type()
        if isinstance(element, QuantizedType):
            if isinstance(stored, IntegerType) and stored.width.data != element.storage_bits:
                raise _err(
                    self,
                    f"value of {stored.width.data}-bit integers does not match the "
                    f"{element.storage_bits}-bit storage of the result type",
                )
        elif stored != element:
            raise _err(self, f"value element type {stored} does not match the result's {element}")


class ConvLikeOp(NNOp):
    """Shared by conv2d / depthwise_conv2d: input, filter, optional bias."""

    input = operand_def(TensorType)
    filter = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    stride = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    padding = prop_def(StringAttr)
    fused_activation = prop_def(StringAttr)

    OUT_CHANNEL_DIM: ClassVar[int] = 0
    MAX_STRIDE: ClassVar[int | None] = None
    """TFLite's upper bound on strides and dilations (DEPTHWISE_CONV_2D: INT16_MAX)."""

    def verify_shapes(self) -> None:
        inp, flt, out = shape_of(self.input), shape_of(self.filter), shape_of(self.output)
        if len(inp) != 4 or len(flt) != 4 or len(out) != 4:
            raise _err(self, "expects rank-4 input, filter and result")
        sh, sw = _check_pair(self, "stride", ints(self.stride), self.MAX_STRIDE)
        dh, dw = _check_pair(self, "dilation", ints(self.dilation), self.MAX_STRIDE)
        _check_positive_dims(self, "input", inp)
        _check_positive_dims(self, "filter", flt)
        expected = (
            inp[0],
            conv_output_size(inp[1], flt[1], sh, dh, self.padding.data),
            conv_output_size(inp[2], flt[2], sw, dw, self.padding.data),
            flt[self.OUT_CHANNEL_DIM],
        )
        if min(expected[1:3]) < 1:
            raise _err(self, f"the dilated filter is larger than the input {list(inp)} (VALID)")
        if out != expected:
            raise _err(self, f"result shape {list(out)} does not match expected {list(expected)}")
        if self.bias is not None and shape_of(self.bias) != (flt[self.OUT_CHANNEL_DIM],):
            raise _err(self, "bias must have one element per output channel")


# Traits shared by the ops with weights and a bias: AffineWeights is parametrised per op.
_AFFINE_TRAITS = (Pure(), Int8Kernel(), FusedActivation(), XnnpackRequantizationScale())


@irdl_op_definition
class Conv2DOp(ConvLikeOp):
    """2-D convolution, filter OHWI. TFLite CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconv_2d_tflconv2dop).
    """

    name = "nn.conv2d"
    traits = traits_def(*_AFFINE_TRAITS, AffineWeights(0, 1, 2, 0))
    OUT_CHANNEL_DIM: ClassVar[int] = 0

    def verify_shapes(self) -> None:
        super().verify_shapes()
        inp, flt = shape_of(self.input), shape_of(self.filter)
        if inp[3] % flt[3] != 0:
            raise _err(self, "input channels must be a multiple of the filter's input channels")
        if flt[0] % (inp[3] // flt[3]) != 0:
            raise _err(self, "output channels must be a multiple of the number of groups")


@irdl_op_definition
class DepthwiseConv2DOp(ConvLikeOp):
    """Depthwise 2-D convolution, filter 1HW(C*M). TFLite DEPTHWISE_CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldepthwise_conv_2d_tfldepthwiseconv2dop).
    """

    name = "nn.depthwise_conv2d"
    depth_multiplier = prop_def(IntegerAttr)
    traits = traits_def(*_AFFINE_TRAITS, AffineWeights(0, 1, 2, 3))
    OUT_CHANNEL_DIM: ClassVar[int] = 3
    MAX_STRIDE: ClassVar[int | None] = INT16_MAX

    def verify_shapes(self) -> None:
        super().verify_shapes()
        inp, flt = shape_of(self.input), shape_of(self.filter)
        if flt[0] != 1:
            raise _err(self, f"filter must have shape [1, H, W, C*M], got {list(flt)}")
        multiplier = self.depth_multiplier.value.data
        if multiplier < 1 or flt[3] != inp[3] * multiplier:
            raise _err(
                self,
                f"depth_multiplier {multiplier} must be >= 1 and give the filter's "
                f"{flt[3]} channels from the input's {inp[3]}",
            )


@irdl_op_definition
class TransposeConvOp(NNOp):
    """Transposed 2-D convolution, filter OHWI; the output shape is the result type.
    TFLite TRANSPOSE_CONV.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltranspose_conv_tfltransposeconvop).
    """

    name = "nn.transpose_conv"
    input = operand_def(TensorType)
    filter = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(StringAttr)
    fused_activation = prop_def(StringAttr)
    traits = traits_def(*_AFFINE_TRAITS, AffineWeights(0, 1, 2, 0))

    def verify_shapes(self) -> None:
        inp, flt, out = shape_of(self.input), shape_of(self.filter), shape_of(self.output)
        if len(inp) != 4 or len(flt) != 4 or len(out) != 4:
            raise _err(self, "expects rank-4 input, filter and result")
        _check_pair(self, "stride", ints(self.stride), INT16_MAX)
        _check_positive_dims(self, "input", inp)
        _check_positive_dims(self, "filter", flt)
        _check_positive_dims(self, "result", out)
        if out[0] != inp[0]:
            raise _err(self, "result batch must equal the input batch")
        if out[3] != flt[0] or inp[3] != flt[3]:
            raise _err(self, "filter shape does not match input and result channels")
        if self.bias is not None and shape_of(self.bias) != (flt[0],):
            raise _err(self, "bias must have one element per output channel")


@irdl_op_definition
class FullyConnectedOp(NNOp):
    """Fully connected layer: out = in · weightsᵀ + bias, weights [out, in]; inputs of higher
    rank are flattened to [-1, in]. TFLite FULLY_CONNECTED.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflfully_connected_tflfullyconnectedop).
    """

    name = "nn.fully_connected"
    input = operand_def(TensorType)
    filter = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    fused_activation = prop_def(StringAttr)
    keep_num_dims = prop_def(BoolAttr)
    traits = traits_def(
        *_AFFINE_TRAITS,
        AffineWeights(0, 1, 2, 0, per_axis_optional=True),
        BiasScaleNearProduct(),
    )

    def verify_shapes(self) -> None:
        flt = shape_of(self.filter)
        if len(flt) != 2:
            raise _err(self, "expects a rank-2 weight tensor")
        _check_positive_dims(self, "weights", flt)
        inp, out = shape_of(self.input), shape_of(self.output)
        if not inp:
            raise _err(self, "expects an input of rank >= 1")
        n = _num_elements(inp)
        if n % flt[1] != 0:
            raise _err(self, "input size is not a multiple of the weights' input dimension")
        if not out or out[-1] != flt[0]:
            raise _err(self, "result's last dimension must equal the number of weight rows")
        if self.keep_num_dims.value.data and inp[-1] != flt[1]:
            raise _err(self, "with keep_num_dims the input's last dimension must equal the weights'")
        if _num_elements(out) != n // flt[1] * flt[0]:
            raise _err(self, f"result shape {list(out)} does not hold {n // flt[1]} rows of {flt[0]}")
        if self.bias is not None and _num_elements(shape_of(self.bias)) != flt[0]:
            raise _err(self, "bias must have one element per weight row")
        if self.activation == "TANH" and qtype_of(self.filter) is None:
            raise _err(self, "fused_activation TANH is not supported by FULLY_CONNECTED")


@irdl_op_definition
class BatchMatMulOp(NNOp):
    """Batched matrix product with broadcast batch dimensions. TFLite BATCH_MATMUL.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflbatch_matmul_tflbatchmatmulop).
    """

    name = "nn.batch_matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    adj_x = prop_def(BoolAttr)
    adj_y = prop_def(BoolAttr)
    traits = traits_def(Pure(), Int8Kernel())

    def verify_shapes(self) -> None:
        a, b = shape_of(self.lhs), shape_of(self.rhs)
        if not (2 <= len(a) <= 5 and 2 <= len(b) <= 5):
            raise _err(self, "operands must have rank 2 to 5")
        rows = a[-1] if self.adj_x.value.data else a[-2]
        k_a = a[-2] if self.adj_x.value.data else a[-1]
        k_b = b[-1] if self.adj_y.value.data else b[-2]
        cols = b[-2] if self.adj_y.value.data else b[-1]
        if k_a != k_b:
            raise _err(self, f"contraction dimensions differ ({k_a} vs {k_b})")
        batch = broadcast_shapes(a[:-2], b[:-2])
        if batch is None:
            raise _err(self, "batch dimensions do not broadcast")
        expected = (*batch, rows, cols)
        if shape_of(self.output) != expected:
            raise _err(self, f"result shape does not match expected {list(expected)}")


class BinaryOp(NNOp):
    """Element-wise binary op with numpy broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_shapes(self) -> None:
        expected = broadcast_shapes(shape_of(self.lhs), shape_of(self.rhs))
        if expected is None or expected != shape_of(self.output):
            raise _err(self, "operand shapes do not broadcast to the result shape")


class BinaryActOp(BinaryOp):
    fused_activation = prop_def(StringAttr)


@irdl_op_definition
class AddOp(BinaryActOp):
    """Element-wise addition. TFLite ADD.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfladd_tfladdop).
    """

    name = "nn.add"
    traits = traits_def(Pure(), Int8Kernel(), AddSubOutputMultiplier(), FusedActivation())


@irdl_op_definition
class SubOp(BinaryActOp):
    """Element-wise subtraction. TFLite SUB.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsub_tflsubop).
    """

    name = "nn.sub"
    traits = traits_def(
        Pure(),
        Int8Kernel(),
        AddSubOutputMultiplier(greater_than_one_allowed=True),
        FusedActivation(),
    )


@irdl_op_definition
class MulOp(BinaryActOp):
    """Element-wise multiplication. TFLite MUL.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmul_tflmulop).
    """

    name = "nn.mul"
    traits = traits_def(Pure(), Int8Kernel(), MulOutputMultiplier(), FusedActivation())


@irdl_op_definition
class DivOp(BinaryActOp):
    """Element-wise division. TFLite DIV (no int8 kernel in the TFLite int8 spec).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldiv_tfldivop).
    """

    name = "nn.div"
    traits = traits_def(Pure())


@irdl_op_definition
class MaximumOp(BinaryOp):
    """Element-wise maximum. TFLite MAXIMUM.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmaximum_tflmaximumop).
    """

    name = "nn.maximum"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


@irdl_op_definition
class MinimumOp(BinaryOp):
    """Element-wise minimum. TFLite MINIMUM.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflminimum_tflminimumop).
    """

    name = "nn.minimum"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


@irdl_op_definition
class PReluOp(NNOp):
    """Parametric ReLU: x if x >= 0 else alpha * x, alpha broadcast. TFLite PRELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflprelu_tflpreluop).
    """

    name = "nn.prelu"
    input = operand_def(TensorType)
    alpha = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure(), Int8Kernel())

    def verify_shapes(self) -> None:
        if broadcast_shapes(shape_of(self.input), shape_of(self.alpha)) != shape_of(self.output):
            raise _err(self, "alpha does not broadcast to the input shape")
        if shape_of(self.output) != shape_of(self.input):
            raise _err(self, "result shape must equal the input shape")


class UnaryOp(NNOp):
    """Element-wise unary op: result has the input's shape."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_shapes(self) -> None:
        if shape_of(self.input) != shape_of(self.output):
            raise _err(self, "result shape must equal the input shape")


@irdl_op_definition
class ReluOp(UnaryOp):
    """max(x, 0). TFLite RELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu_tflreluop).
    """

    name = "nn.relu"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class Relu6Op(UnaryOp):
    """min(max(x, 0), 6). TFLite RELU6.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu6_tflrelu6op).
    """

    name = "nn.relu6"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class ReluN1To1Op(UnaryOp):
    """min(max(x, -1), 1). TFLite RELU_N1_TO_1.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu_n1_to_1_tflrelu1op).
    """

    name = "nn.relu_n1_to_1"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class LeakyReluOp(UnaryOp):
    """x if x >= 0 else alpha * x. TFLite LEAKY_RELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflleaky_relu_tflleakyreluop).
    """

    name = "nn.leaky_relu"
    alpha = prop_def(FloatAttr)
    traits = traits_def(Pure(), Int8Kernel())

    def verify_shapes(self) -> None:
        super().verify_shapes()
        if not math.isfinite(self.alpha.value.data):
            raise _err(self, f"alpha must be finite, got {self.alpha.value.data}")


@irdl_op_definition
class LogisticOp(UnaryOp):
    """1 / (1 + exp(-x)). TFLite LOGISTIC; int8 output fixed at 1/256, -128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfllogistic_tfllogisticop).
    """

    name = "nn.logistic"
    traits = traits_def(Pure(), Int8Kernel(), FixedOutputRange(1.0 / 256.0, -128))


@irdl_op_definition
class TanhOp(UnaryOp):
    """tanh(x). TFLite TANH; int8 output fixed at 1/128, 0.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltanh_tfltanhop).
    """

    name = "nn.tanh"
    traits = traits_def(Pure(), Int8Kernel(), FixedOutputRange(1.0 / 128.0, 0))


@irdl_op_definition
class HardSwishOp(UnaryOp):
    """x * relu6(x + 3) / 6. TFLite HARD_SWISH; the int8 output scale must exceed
    input_scale / 128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflhard_swish_tflhardswishop).
    """

    name = "nn.hard_swish"
    traits = traits_def(Pure(), Int8Kernel(), HardSwishOutputMultiplier())


@irdl_op_definition
class SoftmaxOp(UnaryOp):
    """softmax(beta * x) over the last axis. TFLite SOFTMAX; int8 output fixed at 1/256, -128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsoftmax_tflsoftmaxop).
    """

    name = "nn.softmax"
    beta = prop_def(FloatAttr)
    traits = traits_def(
        Pure(), Int8Kernel(), FixedOutputRange(1.0 / 256.0, -128, tolerance=0.001)
    )

    def verify_shapes(self) -> None:
        super().verify_shapes()
        if not shape_of(self.input):
            raise _err(self, "expects an input of rank >= 1")
        if not math.isfinite(self.beta.value.data):
            raise _err(self, f"beta must be finite, got {self.beta.value.data}")


@irdl_op_definition
class PadOp(NNOp):
    """Constant padding; `paddings` is [before_0, after_0, before_1, after_1, ...]. The pad
    value is the optional scalar operand (TFLite PADV2), else zero (TFLite PAD).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflpad_tflpadop).
    """

    name = "nn.pad"
    input = operand_def(TensorType)
    pad_value = opt_operand_def(TensorType)
    output = result_def(TensorType)
    paddings = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    MAX_RANK: ClassVar[int] = 5
    """TFLite's PadKernelMaxDimensionCount."""

    def verify_shapes(self) -> None:
        inp, out, pads = shape_of(self.input), shape_of(self.output), ints(self.paddings)
        if len(pads) != 2 * len(inp):
            raise _err(self, "paddings must have two entries per input dimension")
        if any(p < 0 for p in pads):
            raise _err(self, f"paddings must be >= 0, got {list(pads)}")
        if len(inp) > self.MAX_RANK:
            raise _err(self, f"expects an input of rank <= {self.MAX_RANK}")
        if self.pad_value is not None and _num_elements(shape_of(self.pad_value)) != 1:
            raise _err(self, "pad value must have exactly one element")
        expected = tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(inp))
        if expected != out:
            raise _err(self, f"result shape {list(out)} does not match expected {list(expected)}")


class Pool2DOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    filter_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(StringAttr)
    fused_activation = prop_def(StringAttr)

    def verify_shapes(self) -> None:
        inp, out = shape_of(self.input), shape_of(self.output)
        if len(inp) != 4:
            raise _err(self, "expects a rank-4 input")
        fh, fw = _check_pair(self, "filter_size", ints(self.filter_size))
        sh, sw = _check_pair(self, "stride", ints(self.stride))
        _check_positive_dims(self, "input", inp)
        expected = (
            inp[0],
            conv_output_size(inp[1], fh, sh, 1, self.padding.data),
            conv_output_size(inp[2], fw, sw, 1, self.padding.data),
            inp[3],
        )
        if min(expected[1:3]) < 1:
            raise _err(self, f"the window is larger than the input {list(inp)} (VALID)")
        if out != expected:
            raise _err(self, f"result shape {list(out)} does not match expected {list(expected)}")


@irdl_op_definition
class MaxPool2DOp(Pool2DOp):
    """Max pooling. TFLite MAX_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmax_pool_2d_tflmaxpool2dop).
    """

    name = "nn.max_pool2d"
    traits = traits_def(Pure(), Int8Kernel(), SameScale(), FusedActivation())


@irdl_op_definition
class AvgPool2DOp(Pool2DOp):
    """Average pooling (padding excluded from the average). TFLite AVERAGE_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflaverage_pool_2d_tflaveragepool2dop).
    """

    name = "nn.avg_pool2d"
    traits = traits_def(Pure(), Int8Kernel(), SameScale(), FusedActivation())


class ReduceOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(DenseArrayBase)
    keep_dims = prop_def(BoolAttr)

    def verify_shapes(self) -> None:
        inp = shape_of(self.input)
        axes = {_check_axis(self, "axis", a, len(inp)) for a in ints(self.axes)} if inp else set()
        if self.keep_dims.value.data:
            expected = tuple(1 if i in axes else d for i, d in enumerate(inp))
        else:
            expected = tuple(d for i, d in enumerate(inp) if i not in axes)
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


@irdl_op_definition
class MeanOp(ReduceOp):
    """Mean over `axes`. TFLite MEAN.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmean_tflmeanop).
    """

    name = "nn.mean"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class SumOp(ReduceOp):
    """Sum over `axes`. TFLite SUM.

    No Int8Kernel trait on purpose: LiteRT's reference (BUILTIN_REF) int8 SUM with rescaling
    disagrees with its optimized kernel (measured -7.6 dB against float where the default
    resolver gives 40.7 dB), so qcc keeps SUM a float island and the emitted model is right
    under every resolver.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsum_tflsumop).
    """

    name = "nn.sum"
    traits = traits_def(Pure())


@irdl_op_definition
class ReshapeOp(NNOp):
    """Reshape to the result type's shape. TFLite RESHAPE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflreshape_tflreshapeop).
    """

    name = "nn.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        if _num_elements(shape_of(self.input)) != _num_elements(shape_of(self.output)):
            raise _err(self, "input and result must have the same number of elements")


MAX_SHAPE_RANK = 8
"""The largest rank TFLite's SQUEEZE and TRANSPOSE kernels accept."""


@irdl_op_definition
class SqueezeOp(NNOp):
    """Remove size-1 dimensions (`squeeze_dims`, or all if empty). TFLite SQUEEZE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsqueeze_tflsqueezeop).
    """

    name = "nn.squeeze"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    squeeze_dims = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        inp = shape_of(self.input)
        if len(inp) > MAX_SHAPE_RANK:
            raise _err(self, f"expects an input of rank <= {MAX_SHAPE_RANK}")
        dims = {_check_axis(self, "squeeze dim", d, len(inp)) for d in ints(self.squeeze_dims)}
        if not dims:
            dims = {i for i, d in enumerate(inp) if d == 1}
        if any(inp[d] != 1 for d in dims):
            raise _err(self, "squeezed dimensions must have size 1")
        expected = tuple(d for i, d in enumerate(inp) if i not in dims)
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


@irdl_op_definition
class TransposeOp(NNOp):
    """Permute dimensions by `perm` (negative entries count from the end). TFLite TRANSPOSE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltranspose_tfltransposeop).
    """

    name = "nn.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    perm = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        inp, perm = shape_of(self.input), ints(self.perm)
        if len(inp) > MAX_SHAPE_RANK:
            raise _err(self, f"expects an input of rank <= {MAX_SHAPE_RANK}")
        rank = len(inp)
        if len(perm) != rank or not all(-rank <= p < rank for p in perm):
            raise _err(self, "perm must be a permutation of the input dimensions")
        perm = tuple(p % rank for p in perm)
        if sorted(perm) != list(range(rank)):
            raise _err(self, "perm must be a permutation of the input dimensions")
        if tuple(inp[p] for p in perm) != shape_of(self.output):
            raise _err(self, "result shape does not match the permuted input shape")


@irdl_op_definition
class ConcatenationOp(NNOp):
    """Concatenate along `axis`. TFLite CONCATENATION (which takes no fused activation).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconcatenation_tflconcatenationop).
    """

    name = "nn.concatenation"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    fused_activation = prop_def(StringAttr)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        if self.activation != "NONE":
            raise _err(self, f"fused_activation must be NONE, got {self.activation!r}")
        if not self.inputs:
            raise _err(self, "expects at least one input")
        out = shape_of(self.output)
        axis = _check_axis(self, "axis", self.axis.value.data, len(out))
        total = 0
        for v in self.inputs:
            s = shape_of(v)
            if len(s) != len(out) or any(s[i] != out[i] for i in range(len(out)) if i != axis):
                raise _err(self, "inputs must match the result except along the axis")
            total += s[axis]
        if total != out[axis]:
            raise _err(self, "inputs' sizes along the axis must add up to the result's")


@irdl_op_definition
class SplitOp(NNOp):
    """Split into equal parts along `axis`. TFLite SPLIT.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsplit_tflsplitop).
    """

    name = "nn.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        inp = shape_of(self.input)
        axis = _check_axis(self, "axis", self.axis.value.data, len(inp))
        n = len(self.outputs)
        if n == 0 or inp[axis] % n != 0:
            raise _err(self, "the axis size must divide evenly into the results")
        part = inp[:axis] + (inp[axis] // n,) + inp[axis + 1 :]
        if any(shape_of(r) != part for r in self.outputs):
            raise _err(self, f"every result must have shape {list(part)}")


@irdl_op_definition
class SliceOp(NNOp):
    """Static slice: `begin` and `size` (-1 = to the end). TFLite SLICE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflslice_tflsliceop).
    """

    name = "nn.slice"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    begin = prop_def(DenseArrayBase)
    size = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        inp, begin, size = shape_of(self.input), ints(self.begin), ints(self.size)
        if len(begin) != len(inp) or len(size) != len(inp):
            raise _err(self, "begin and size need one entry per dimension")
        for i, (d, b, s) in enumerate(zip(inp, begin, size)):
            if not 0 <= b <= d or s < -1 or (s != -1 and b + s > d):
                raise _err(
                    self,
                    f"slice [{b}, {b} + {s}) of dimension {i} does not fit its size {d} "
                    "(expected 0 <= begin, size -1 or begin + size <= size)",
                )
        expected = tuple(d - b if s == -1 else s for d, b, s in zip(inp, begin, size))
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


def strided_slice_ranges(
    in_shape: Sequence[int],
    begin: Sequence[int],
    end: Sequence[int],
    strides: Sequence[int],
    begin_mask: int,
    end_mask: int,
    ellipsis_mask: int,
    new_axis_mask: int,
    shrink_axis_mask: int,
    offset: bool,
) -> tuple[tuple[int, ...], tuple[range | int, ...]]:
    """What a STRIDED_SLICE reads, as TFLite's strided_slice.cc computes it (ellipsis
    expansion and new axes of BuildStridedSliceParams, start/stop clamping of
    strided_slice_logic.h): the effective input shape (new axes inserted as 1s) and, per
    effective axis, the `range` of indices taken or, for a shrunk axis, the one index kept.
    Strides must be non-zero; ValueError for a shrunk index outside its axis or an offset
    slice leaving the input. The shape rule (`strided_slice_shape`) and the float kernel
    (runtime/kernels/shape.py) both read this one definition."""
    input_dims = len(in_shape)
    begin_count = len(begin)
    num_add_axis = sum(
        1
        for i in range(begin_count)
        if not (ellipsis_mask >> i) & 1 and (new_axis_mask >> i) & 1
    )
    effective_dims = input_dims + num_add_axis
    eff_ellipsis = eff_new_axis = 0
    ellipsis_start = effective_dims
    expanded_ellipsis = 0
    i = 0
    while i < effective_dims:
        if (ellipsis_mask >> i) & 1:
            ellipsis_start = i
            ellipsis_end = max(
                i + 1, min(i + 1 + num_add_axis + input_dims - begin_count, effective_dims)
            )
            expanded_ellipsis = ellipsis_end - ellipsis_start - 1
            while i < ellipsis_end:
                eff_ellipsis |= 1 << i
                i += 1
            continue
        if (new_axis_mask >> (i - expanded_ellipsis)) & 1:
            eff_new_axis |= 1 << i
        i += 1
    eff_shape: list[int] = []
    taken: list[range | int] = []
    added_ellipsis = added_axes = 0
    for i in range(effective_dims):
        if (eff_ellipsis >> i) & 1:
            added_ellipsis = max(0, i - ellipsis_start)
            size = in_shape[i - added_axes]
            eff_shape.append(size)
            taken.append(range(size))
            continue
        if (eff_new_axis >> i) & 1:
            eff_shape.append(1)
            taken.append(range(1))
            added_axes += 1
            continue
        size = in_shape[i - added_axes]
        eff_shape.append(size)
        if i >= begin_count + expanded_ellipsis:
            taken.append(range(size))
            continue
        orig = i - added_ellipsis
        start, stop, stride = begin[orig], end[orig], strides[orig]
        if (begin_mask >> orig) & 1:
            start = 0 if stride > 0 else size - 1
        else:
            start = start + size if start < 0 else start
            start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
        if (shrink_axis_mask >> orig) & 1:
            if not 0 <= start < size:
                raise ValueError(f"index {begin[orig]} of shrunk axis {orig} is out of range")
            taken.append(start)
            continue
        if offset:
            # TFLite sizes an offset slice by `end` itself; it must lie inside the input
            if stride < 0 or start + stop > size or stop < 0:
                raise ValueError(f"offset slice [{start}, {start} + {stop}) leaves the input")
            stop = start + stop
        elif (end_mask >> orig) & 1:
            stop = size if stride > 0 else -1
        else:
            stop = stop + size if stop < 0 else stop
            stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
        # clamped to [0, size] (or [-1, size - 1] backwards): range() never wraps around
        taken.append(range(start, stop, stride))
    return tuple(eff_shape), tuple(taken)


def strided_slice_shape(*args, **kwargs) -> tuple[int, ...]:
    """The result shape of a STRIDED_SLICE (`strided_slice_ranges`' arguments): the lengths
    of the ranges taken, shrunk axes removed."""
    _, taken = strided_slice_ranges(*args, **kwargs)
    return tuple(len(r) for r in taken if isinstance(r, range))


@irdl_op_definition
class StridedSliceOp(NNOp):
    """Strided slice with TFLite's masks. TFLite STRIDED_SLICE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflstrided_slice_tflstridedsliceop).
    """

    name = "nn.strided_slice"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    begin = prop_def(DenseArrayBase)
    end = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    begin_mask = prop_def(IntegerAttr)
    end_mask = prop_def(IntegerAttr)
    ellipsis_mask = prop_def(IntegerAttr)
    new_axis_mask = prop_def(IntegerAttr)
    shrink_axis_mask = prop_def(IntegerAttr)
    offset = prop_def(BoolAttr)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    MAX_INDICES: ClassVar[int] = 31
    """TFLite: "StridedSlice op only supports up to 31 indices"."""

    def verify_shapes(self) -> None:
        begin, end, strides = ints(self.begin), ints(self.end), ints(self.strides)
        n = len(begin)
        if len(end) != n or len(strides) != n:
            raise _err(self, "begin, end and strides must have the same length")
        if n > self.MAX_INDICES:
            raise _err(self, f"supports at most {self.MAX_INDICES} indices, got {n}")
        if any(s == 0 or s == INT32_MIN for s in strides):
            raise _err(self, f"strides must be non-zero int32 values, got {list(strides)}")
        masks = {
            m: getattr(self, m).value.data
            for m in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
        }
        if any(v < 0 for v in masks.values()):
            raise _err(self, "masks must be non-negative bit sets")
        if bin(masks["ellipsis_mask"]).count("1") > 1:
            raise _err(self, "at most one ellipsis is allowed")
        shrunk_backwards = [
            i for i in range(n) if (masks["shrink_axis_mask"] >> i) & 1 and strides[i] < 0
        ]
        if shrunk_backwards:
            # strided_slice.cc loops `for (i = start; i > start + 1; i += stride)`: nothing is
            # written and the output holds whatever memory it had
            raise _err(
                self,
                f"index {shrunk_backwards[0]} is shrunk with a negative stride; TFLite's kernel "
                "writes no value for it (use stride 1 on shrunk axes)",
            )
        inp = shape_of(self.input)
        consumed = sum(
            1
            for i in range(n)
            if not (masks["ellipsis_mask"] >> i) & 1 and not (masks["new_axis_mask"] >> i) & 1
        )
        if consumed > len(inp):
            raise _err(self, f"indexes {consumed} dimensions of a rank-{len(inp)} input")
        try:
            expected = strided_slice_shape(
                inp, begin, end, strides, *masks.values(), self.offset.value.data
            )
        except ValueError as e:
            raise _err(self, str(e)) from None
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


@irdl_op_definition
class GatherOp(NNOp):
    """Gather slices of `params` along `axis` at integer `indices`. TFLite GATHER.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflgather_tflgatherop).
    """

    name = "nn.gather"
    params = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    batch_dims = prop_def(IntegerAttr)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_shapes(self) -> None:
        p, i = shape_of(self.params), shape_of(self.indices)
        index_type = self.indices.type
        assert isinstance(index_type, TensorType)
        element = index_type.get_element_type()
        if not isinstance(element, IntegerType) or element.width.data not in (16, 32, 64):
            raise _err(self, f"indices must be int16, int32 or int64, got {element}")
        axis = _check_axis(self, "axis", self.axis.value.data, len(p))
        bd = self.batch_dims.value.data
        if bd < 0:
            bd += len(i)
        if not (0 <= bd <= axis and bd < len(p) and bd <= len(i)):
            raise _err(
                self,
                f"batch_dims {self.batch_dims.value.data} must satisfy 0 <= batch_dims <= axis "
                f"({axis}) and batch_dims <= the indices' rank ({len(i)})",
            )
        if p[:bd] != i[:bd]:
            raise _err(self, "params and indices must agree on the batch dimensions")
        expected = p[:axis] + i[bd:] + p[axis + 1 :]
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


class ResizeOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    align_corners = prop_def(BoolAttr)
    half_pixel_centers = prop_def(BoolAttr)

    def verify_shapes(self) -> None:
        inp, out = shape_of(self.input), shape_of(self.output)
        if len(inp) != 4 or len(out) != 4 or inp[0] != out[0] or inp[3] != out[3]:
            raise _err(self, "expects NHWC input and result with equal batch and channels")
        _check_positive_dims(self, "input", inp)
        if out[1] < 1 or out[2] < 1:
            raise _err(self, f"result height and width must be >= 1, got {list(out[1:3])}")
        if self.align_corners.value.data and self.half_pixel_centers.value.data:
            raise _err(self, "align_corners and half_pixel_centers are exclusive")


@irdl_op_definition
class ResizeBilinearOp(ResizeOp):
    """Bilinear resize to the result's height and width. TFLite RESIZE_BILINEAR.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflresize_bilinear_tflresizebilinearop).
    """

    name = "nn.resize_bilinear"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


@irdl_op_definition
class ResizeNearestNeighborOp(ResizeOp):
    """Nearest-neighbour resize. TFLite RESIZE_NEAREST_NEIGHBOR.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflresize_nearest_neighbor_tflresizenearestneighborop).
    """

    name = "nn.resize_nearest_neighbor"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


class BlockRearrangeOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    block_size = prop_def(IntegerAttr)

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        raise NotImplementedError

    def divisible(self, h: int, w: int, c: int, b: int) -> bool:
        raise NotImplementedError

    def verify_shapes(self) -> None:
        inp = shape_of(self.input)
        b = self.block_size.value.data
        if len(inp) != 4 or b < 1:
            raise _err(self, "expects a rank-4 input and a positive block size")
        if not self.divisible(inp[1], inp[2], inp[3], b):
            raise _err(self, f"block size {b} does not divide the input shape {list(inp)}")
        expected = self.expected_shape(*inp, b)
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


@irdl_op_definition
class DepthToSpaceOp(BlockRearrangeOp):
    """Move channel blocks into spatial blocks. TFLite DEPTH_TO_SPACE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldepth_to_space_tfldepthtospaceop).
    """

    name = "nn.depth_to_space"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def divisible(self, h: int, w: int, c: int, b: int) -> bool:
        return c % (b * b) == 0

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        return (n, h * b, w * b, c // (b * b))


@irdl_op_definition
class SpaceToDepthOp(BlockRearrangeOp):
    """Move spatial blocks into channels. TFLite SPACE_TO_DEPTH.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflspace_to_depth_tflspacetodepthop).
    """

    name = "nn.space_to_depth"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def divisible(self, h: int, w: int, c: int, b: int) -> bool:
        return h % b == 0 and w % b == 0

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        return (n, h // b, w // b, c * b * b)


@irdl_op_definition
class GenericOp(NNOp):
    """Any operator without a dedicated op: a TFLite custom op (`op_name` is its custom code,
    `custom = true`) or a builtin qcc has no op for (`op_name` is the builtin's name).
    `options` keeps the raw option bytes as a hex string `"0x..."` (custom options, or the
    builtin options table packed as its own flatbuffer, its type named by `options_type`) and
    `version` the operator version, so the op can be written back unchanged.
    """

    name = "nn.generic"
    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    op_name = prop_def(StringAttr)
    custom = prop_def(BoolAttr)
    options = opt_prop_def(StringAttr)
    version = opt_prop_def(IntegerAttr)
    options_type = opt_prop_def(StringAttr)
    traits = traits_def()

    @property
    def option_bytes(self) -> bytes:
        if self.options is None:
            return b""
        text = self.options.data
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)

    @staticmethod
    def encode_options(data: bytes) -> StringAttr:
        return StringAttr("0x" + data.hex().upper())


NN = Dialect(
    "nn",
    [
        ConstantOp,
        Conv2DOp,
        DepthwiseConv2DOp,
        TransposeConvOp,
        FullyConnectedOp,
        BatchMatMulOp,
        AddOp,
        SubOp,
        MulOp,
        DivOp,
        MaximumOp,
        MinimumOp,
        PReluOp,
        ReluOp,
        Relu6Op,
        ReluN1To1Op,
        LeakyReluOp,
        LogisticOp,
        TanhOp,
        HardSwishOp,
        SoftmaxOp,
        PadOp,
        MaxPool2DOp,
        AvgPool2DOp,
        MeanOp,
        SumOp,
        ReshapeOp,
        SqueezeOp,
        TransposeOp,
        ConcatenationOp,
        SplitOp,
        SliceOp,
        StridedSliceOp,
        GatherOp,
        ResizeBilinearOp,
        ResizeNearestNeighborOp,
        DepthToSpaceOp,
        SpaceToDepthOp,
        GenericOp,
    ],
    [],
)


