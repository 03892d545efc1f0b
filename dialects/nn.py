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

The op is the unit. Besides its operands, properties, shape rules and traits, every op class
declares, in `SPEC: ClassVar[OpSpec]` (see `OpSpec`), everything else about it that is not
kernel code: its TFLite builtin (name, options-table fields <-> properties, constant inputs
that are properties, operator version rule), the activation precisions TFLite's kernels
accept, whether qcc quantizes it (`KERNEL`, which implies the `Int8Kernel` trait) or keeps it
float (`Fallback(reason)`), its weight operand (dynamic-range, bias-correction) and an
example instance (the generated single-op test model). The TFLite frontend and backend, those
passes, `qcc.testing.tflite_models.op_model` and the docs/ir.md op table (`python -m
qcc.docs --write`) all read the declarations: adding an element-wise TFLite builtin is one
class here. Kernels register against the class (`@float_kernel(XOp)`, `@int8_lowering(XOp)`,
runtime/kernels/registry.py); `int8_capable(op)` is the one question whether an op runs in
int8 (legalize-fallback, verify-int8, the Numba backend); tests/test_conformance.py checks
every op end to end. Ops are defined with `@nn_op` (`irdl_op_definition` plus the declaration);
`op_classes()` lists them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np
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
SQUARED_DIFFERENCE (squared_difference.cc Prepare)
  hard  QuantizeMultiplierSmallerThanOneExp(float32(2*max(s1, s2))^2 / (2^14 * s_out)): the
        output multiplier must be < 1 after rounding (abort)
        .............................................. SquaredDifferenceOutputMultiplier
  hard  broadcasting only up to rank 4 (BroadcastBinaryFunction4DSlow) ....... verify_shapes
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
GELU (activations.cc GeluPrepare): a 256-entry table (LUTPopulate), no int8 precondition.
RSQRT (elementwise.cc GenericPrepare): QuantizeMultiplier(1 / (sqrt(s_in) * s_out)), no int8
  precondition; Eval fails on an input below the zero point (a negative value): data, not IR
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

int16 activations with int8 weights ("16x8"; docs/ir.md, "int16 activations")
  hard  an op with an int16 activation declares "int16x8" (else its Prepare rejects the type,
        e.g. HARD_SWISH, SQUARED_DIFFERENCE, DEPTH_TO_SPACE) ............. int16_violation
  hard  every int16 activation has zero point 0: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
        ADD, SUB, MUL (Eval), RELU, RELU6, LEAKY_RELU, LOGISTIC, TANH, SOFTMAX, MEAN,
        CONCATENATION, BATCH_MATMUL, RSQRT, QUANTIZE int16 -> int16 each TF_LITE_ENSURE it;
        the other kernels ignore it (spec) ............................... int16_violation
  hard  int16 in means int16 out: every activation of the op is int16 (weights int8, biases
        int64, PRELU's alpha int8) ....................................... int16_violation
  hard  DEPTHWISE_CONV_2D bias int64; CONV_2D and TRANSPOSE_CONV read the bias as int64 unless
        quantized_bias_type is set (an int32 bias is read wrong: spec); FULLY_CONNECTED
        int32 or int64 ....................................................... AffineWeights
  spec  PRELU reads its alpha as int8 data .......................... Int8OperandsIn16x8
  hard  LOGISTIC output scale == 1/32768 exactly, zero point 0; TANH output scale a power of
        two == 2^-15, zero point 0; SOFTMAX output zero point 0, |scale - 1/32768| <=
        0.001/32768 ........................................................ FixedOutputRange
  hard  ADD, SUB (general-scale kernel, pot_scale_int16 = false, which the backend writes):
        as for int8 with left_shift 15: 2*max(s1, s2) / (2^15 * s_out) < 1 (abort)
        ......................................................... AddSubOutputMultiplier
  spec  MUL: float32(s1 * s2 / s_out) finite ............................ MulOutputMultiplier
  hard  per-tensor FULLY_CONNECTED with a bias: as for int8 ............. BiasScaleNearProduct
  hard  fused activation bound fits int32 (bounds clamp to [-32768, 32767]) . FusedActivation
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


def _is_int16(t: QuantizedType) -> bool:
    return t.storage_bits == 16 and t.is_signed


def _same_activation_storage(*types: QuantizedType | None) -> int | None:
    """8 or 16 when every type is per tensor and all are int8, or all int16 (the op runs its
    int8 or its 16x8 kernel); None otherwise."""
    if not all(isinstance(t, UniformQuantizedType) for t in types):
        return None
    if all(_is_int8(t) for t in types):  # type: ignore[arg-type]
        return 8
    if all(_is_int16(t) for t in types):  # type: ignore[arg-type]
        return 16
    return None


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
    0 means the float32 scale must be exactly `scale`. An int16 result (16x8) has
    `int16_scale` and `int16_zero_point` (LOGISTIC, TANH, SOFTMAX: 1/32768, 0)."""

    scale: float = 1.0 / 256.0
    zero_point: int = -128
    tolerance: float = 0.0
    int16_scale: float = 1.0 / 32768.0
    int16_zero_point: int = 0

    def params(self, bits: int) -> tuple[float, int]:
        """(scale, zero point) of a result with `bits`-wide storage (8 or 16)."""
        if bits == 16:
            return self.int16_scale, self.int16_zero_point
        return self.scale, self.zero_point

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        t = types.result()
        if t is None:
            return None
        if not isinstance(t, UniformQuantizedType):
            return "result must be quantized per tensor (fixed output range)"
        if not (_is_int8(t) or _is_int16(t)):
            return None  # the fixed parameters are those of int8 and int16 results
        fixed_scale, fixed_zero_point = self.params(t.storage_bits)
        scale = to_f32(t.scale)
        if self.tolerance:
            scale_ok = abs(scale - fixed_scale) <= self.tolerance * fixed_scale
        else:
            scale_ok = scale == to_f32(fixed_scale)
        if scale_ok and t.zero_point == fixed_zero_point:
            return None
        within = f" (within {self.tolerance:g} relative)" if self.tolerance else ""
        return (
            f"int{t.storage_bits} result must have scale {_fmt(fixed_scale)}{within} and "
            f"zero point {fixed_zero_point} (fixed output range), got {_describe(t)}"
        )


@dataclass(frozen=True)
class AffineWeights(QuantTrait):
    """Weights are operand `weight_operand`, quantized symmetrically per channel along
    `axis`; the bias (operand `bias_operand`, if present) is int32 with
    scale = input_scale * weight_scale[c] (TFLite's AccumulatorUniformScale).

    Verified: weight zero points 0 and per-axis weights along `axis` (also for hybrid ops
    with float activations); bias zero point 0, int32 storage with int8 activations (int64,
    or one of `int16_bias_bits`, with int16 activations: 16x8), per-axis along 0, and its
    scales equal to input_scale * weight_scale[c] up to float32 rounding."""

    input_operand: int
    weight_operand: int
    bias_operand: int
    axis: int
    per_axis_optional: bool = False
    """The runtime also accepts per-tensor weights and the TFLite spec table lists
    per-tensor (FULLY_CONNECTED): infer-scales may choose either (`per-channel-fc`)."""
    int16_bias_bits: tuple[int, ...] = (64,)
    """The bias storage widths the 16x8 kernel reads correctly: int64 (DEPTHWISE_CONV_2D
    requires it; CONV_2D and TRANSPOSE_CONV read the bias as int64 unless their
    quantized_bias_type option says int32); FULLY_CONNECTED picks by the bias type (32, 64).
    infer-scales writes int64."""

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
        if x is not None and _is_int16(x) and b.storage_bits not in self.int16_bias_bits:
            widths = " or ".join(f"int{bits}" for bits in self.int16_bias_bits)
            return (
                f"{b_label} must be {widths} with int16 activations (16x8), got "
                f"{b.storage_bits} bits"
            )
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
    """qcc quantizes the op to int8 (TFLite and qcc's int8 runtime have a kernel for it).
    Never listed in `traits`: `nn_op` adds it when the op's declaration says
    `int8=KERNEL` (see `OpSpec`). Passes and backends ask `int8_capable(op)`, which answers
    from the same declaration (and explains a no)."""


# -- preconditions of TFLite's int8 kernels (KERNEL_PRECONDITIONS) --------------------------


def _int8_per_tensor(*types: QuantizedType | None) -> bool:
    """Whether every type is a per-tensor int8 type (the int8 kernel is the one to run)."""
    return all(isinstance(t, UniformQuantizedType) and _is_int8(t) for t in types)


@dataclass(frozen=True)
class AddSubOutputMultiplier(QuantTrait):
    """ADD / SUB (add.cc Prepare, sub.cc PrepareGeneralSubOp): with left_shift 20 (15 for
    int16 activations: the general-scale 16x8 kernel), real_out = float32(2 * max(s1, s2)) /
    float32(2^left_shift * s_out) goes through QuantizeMultiplierSmallerThanOneExp, which
    aborts the process (TFLITE_CHECK) unless 0 < real_out < 1 and the rounded multiplier
    keeps shift <= 0. SUB takes the GreaterThanOne path when real_out > 1
    (`greater_than_one_allowed`)."""

    ORDER: ClassVar[int] = 1

    greater_than_one_allowed: bool = False

    @staticmethod
    def left_shift(bits: int) -> int:
        return 15 if bits == 16 else 20

    @staticmethod
    def _input_scales(types: QuantTypes) -> tuple[float, float, int] | None:
        a, b, out = types.operand(0), types.operand(1), types.result()
        bits = _same_activation_storage(a, b, out)
        if bits is None:
            return None
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        return to_f32(a.scale), to_f32(b.scale), bits

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        found = self._input_scales(types)
        if found is None:
            return None
        *scales, bits = found
        shift = self.left_shift(bits)
        out = types.result()
        assert isinstance(out, UniformQuantizedType)
        twice_max = to_f32(2.0 * max(scales))
        denominator = to_f32(2.0**shift * to_f32(out.scale))
        kernel = f"TFLite {op.name[3:].upper()} QuantizeMultiplierSmallerThanOneExp"
        if not math.isfinite(denominator):
            return (
                f"2^{shift} x output scale {_fmt(out.scale)} overflows float32 ({kernel}): "
                "the output range is too wide"
            )
        real = twice_max / denominator
        if self.greater_than_one_allowed and real > 1.0:
            return None
        if 0.0 < real < 1.0 and quantize_multiplier(real)[1] <= 0:
            return None
        return (
            f"output multiplier 2 x max(input scales) / (2^{shift} x output scale) must be in "
            f"(0, 1) after rounding ({kernel}), got {_fmt(twice_max)} / (2^{shift} x "
            f"{_fmt(out.scale)}) = {real:.7g}"
        )

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        a, b = types.operand(0), types.operand(1)
        bits = _same_activation_storage(a, b)
        if bits is None:
            return 0.0
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        shift = self.left_shift(bits)
        return 2.0 * max(a.scale, b.scale) / 2.0**shift * (1.0 + MULTIPLIER_MARGIN)


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
        if _same_activation_storage(a, b, out) is None:  # int8, or int16 (16x8)
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
    """FULLY_CONNECTED with per-tensor int8 weights and a bias, int8 or int16 (16x8)
    activations (kernel_util.cc GetQuantizedConvolutionMultipler): TF_LITE_ENSURE
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
            and _same_activation_storage(x, out) is not None  # int8, or int16 (16x8)
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


@dataclass(frozen=True)
class Int8OperandsIn16x8(QuantTrait):
    """With int16 activations (16x8), these operands stay int8: PRELU's alpha
    (activations.cc PreluEval reads int8 alpha data next to int16 input and output).
    infer-scales quantizes such a constant to int8, as for an int8 op."""

    operands: tuple[int, ...] = ()

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        if not _has_int16_activation(op, types):
            return None
        for i in self.operands:
            t = types.operand(i)
            if t is not None and not _is_int8(t):
                return (
                    f"operand #{i} must be int8 with int16 activations (the 16x8 kernel reads "
                    f"int8 data), got {'i' if t.is_signed else 'u'}{t.storage_bits}"
                )
        return None


def _16x8_exempt_operands(op: Operation) -> dict[int, str]:
    """The operands of `op` that are not activations of its 16x8 kernel, and what they are:
    the weights and the bias of `AffineWeights` (int8, int64), the operands of
    `Int8OperandsIn16x8` (int8), the weight operand `SPEC.weights` names (BATCH_MATMUL's
    rhs: int8 or int16)."""
    exempt: dict[int, str] = {}
    if not isinstance(op, IRDLOperation):
        return exempt
    spec = op_spec(op)
    if spec is not None and spec.weights is not None:
        exempt[spec.weights.operand] = "weights"
    affine = op.get_trait(AffineWeights)
    if affine is not None:
        exempt[affine.weight_operand] = "weights"
        exempt[affine.bias_operand] = "bias"
    int8_operands = op.get_trait(Int8OperandsIn16x8)
    if int8_operands is not None:
        for i in int8_operands.operands:
            exempt[i] = "int8 operand"
    return exempt


def _activation_types(
    op: Operation, types: QuantTypes
) -> list[tuple[str, QuantizedType]]:
    """The quantized activations of `op` (results, then operands but the exempt ones),
    labelled for messages."""
    exempt = _16x8_exempt_operands(op)
    found = [(f"result #{i}", t) for i, t in enumerate(types.results) if t is not None]
    found += [
        (f"operand #{i}", t)
        for i, t in enumerate(types.operands)
        if t is not None and i not in exempt
    ]
    return found


def _has_int16_activation(op: Operation, types: QuantTypes) -> bool:
    return any(_is_int16(t) for _, t in _activation_types(op, types))


def _storage_text(t: QuantizedType) -> str:
    return f"{'i' if t.is_signed else 'u'}{t.storage_bits}"


def int16_violation(op: Operation, types: QuantTypes) -> str | None:
    """The rules of TFLite's 16x8 kernels for an nn op with an int16 activation (checked with
    the traits, by `quant_violations`): the op declares `int16x8` among its precisions; every
    activation (operands and results but weights, biases and `Int8OperandsIn16x8` operands)
    is int16, per tensor, with zero point 0 (each kernel's Prepare: TF_LITE_ENSURE_EQ(
    zero_point, 0), and int16 in means int16 out). None when `op` has no int16 activation."""
    if not isinstance(op, NNOp) or isinstance(op, ConstantOp | GenericOp):
        return None
    activations = _activation_types(op, types)
    if not any(_is_int16(t) for _, t in activations):
        return None
    spec = op_spec(op)
    if spec is None or "int16x8" not in spec.precisions:
        what = spec.builtin if spec is not None and spec.builtin else op.name
        listed = ", ".join(spec.precisions) if spec is not None and spec.precisions else "none"
        return (
            f"int16 activations need TFLite's 16x8 kernel, and {what} has none (its declaration "
            f"lists {listed})"
        )
    first_label, first = next((label, t) for label, t in activations if _is_int16(t))
    for label, t in activations:
        if not _is_int16(t):
            return (
                f"{label} is {_storage_text(t)} but {first_label} is i16: a 16x8 kernel takes "
                "int16 activations in and out (convert with quant.qcast)"
            )
        if not isinstance(t, UniformQuantizedType):
            return f"int16 {label} must be quantized per tensor"
        if t.zero_point != 0:
            return (
                f"int16 {label} must have zero point 0 (TFLite's 16x8 kernels are symmetric), "
                f"got {t.zero_point}"
            )
    return None


def quant_traits(op: Operation) -> list[QuantTrait]:
    """The quantization traits declared on `op`."""
    if not isinstance(op, IRDLOperation):
        return []
    traits = op.get_traits_of_type(QuantTrait)
    return sorted(traits, key=lambda t: (t.ORDER, type(t).__name__))


def quant_violations(op: Operation, types: QuantTypes | None = None) -> list[str]:
    """Why `op`'s quantized types (or the planned `types`) break its traits, or the rules of
    TFLite's 16x8 kernels (`int16_violation`); empty if none."""
    types = QuantTypes.of(op) if types is None else types
    found = [v for t in quant_traits(op) if (v := t.violation(op, types)) is not None]
    int16 = int16_violation(op, types)
    return found if int16 is None else [int16, *found]


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
# Op declarations: everything about an op that is not kernel code, on its class (`SPEC`)
# ------------------------------------------------------------------------------------------

KERNEL = "kernel"
"""`OpSpec.int8` of an op that qcc quantizes: it runs as int8 (qcc's int8 runtime has a
kernel for it and LiteRT's reference kernels compute the same numbers)."""


@dataclass(frozen=True)
class Fallback:
    """`OpSpec.int8` of an op that qcc keeps float (a float island between dequantize and
    quantize, or an error under verify-int8), and why.

    `imported_int8`: qcc never quantizes the op, but its int8 runtime runs an int8 instance
    found in a model quantized elsewhere (e.g. by TFLite's own quantizer), with an int8
    lowering registered for that; without it, registering an int8 lowering for the op is
    refused."""

    reason: str
    imported_int8: bool = False


@dataclass(frozen=True)
class Option:
    """One field of the op's TFLite builtin options table and the property it maps to,
    both ways (the importer reads the field into the property, the exporter writes it back).

    `field` is the field's name in TFLite's schema.fbs (snake case, as in
    `fused_activation_function`; two names for kind "pair"). `prop` is the op property
    (None for kind "fixed"). `kind` says how a value converts:

      "activation"  StringAttr "NONE", "RELU", ... <-> ActivationFunctionType (SIGN_BIT, which
                    nn cannot express, imports as nn.generic)
      "padding"     StringAttr "SAME" / "VALID" <-> Padding
      "f32"         FloatAttr f32 <-> float
      "i64"         IntegerAttr i64 <-> int
      "bool"        BoolAttr <-> bool
      "axis"        IntegerAttr i64 <-> int; at import an axis in [-rank, rank) normalized
                    into [0, rank), rank of the operator's input 0 (`of_output`: output 0)
      "axes"        array<i64> <-> [int], each normalized like "axis" (rank of input 0)
      "pair"        array<i64: h, w> <-> two int fields (height, width), each >= 1 at import
      "fixed"       no property: only `default` is representable; a model with another
                    value imports as nn.generic (FULLY_CONNECTED's weights_format)

    `default` is the property value an `Example` may leave out (and what the exporter
    writes for an absent property). `what` names the value in import errors (default: the
    property name, "axis" for axes)."""

    field: str | tuple[str, str]
    prop: str | None
    kind: str
    default: object = None
    of_output: bool = False
    what: str = ""

    KINDS: ClassVar[tuple[str, ...]] = (
        "activation", "padding", "f32", "i64", "bool", "axis", "axes", "pair", "fixed"
    )

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"option kind {self.kind!r} is not one of {self.KINDS}")
        if (self.kind == "pair") != isinstance(self.field, tuple):
            raise ValueError(f"option {self.field!r}: kind 'pair' and only it takes two fields")
        if (self.prop is None) != (self.kind == "fixed"):
            raise ValueError(f"option {self.field!r}: kind 'fixed' and only it has no property")

    @property
    def fields(self) -> tuple[str, ...]:
        return self.field if isinstance(self.field, tuple) else (self.field,)

    @property
    def label(self) -> str:
        if self.what:
            return self.what
        if self.kind in ("axis", "axes"):
            return "axis"
        return (self.prop or self.fields[0]).replace("_", " ")


@dataclass(frozen=True)
class ConstInput:
    """A TFLite input that is static configuration in nn: it must be a constant tensor at
    import and is written back as an int32 constant, named "<result name>/<name>".

    `index` is its TFLite input index, `name` its name in the TFLite op reference. `kind`:

      "ints"          property `prop` (array<i64>) <-> an int32 vector
      "axes"          like "ints", each an axis of input 0 normalized into [0, rank) at import
      "result_shape"  no property: the result type's shape (TRANSPOSE_CONV's output_shape,
                      RESHAPE's shape); optional at import
      "result_hw"     no property: the result's [height, width] (RESIZE_*'s size); optional
                      at import

    With `check`, a result_shape / result_hw input that is constant must equal what the
    result type says (RESHAPE's may hold -1: not checked)."""

    index: int
    name: str
    kind: str
    prop: str | None = None
    check: bool = True

    KINDS: ClassVar[tuple[str, ...]] = ("ints", "axes", "result_shape", "result_hw")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"constant input kind {self.kind!r} is not one of {self.KINDS}")
        if (self.prop is None) != self.kind.startswith("result"):
            raise ValueError(f"constant input {self.name!r}: kinds ints and axes need a property")


@dataclass(frozen=True)
class TensorSig:
    """What TFLite's op_version.cc sees of one tensor of an operator (its OpSignature):
    `type` is the TFLite tensor type's name in lower case ("float32", "int8", "int16",
    "int32", "uint8", "bool", "int4", ...), `scales` the quantization scales (empty when the
    tensor has no quantization parameters)."""

    type: str
    shape: tuple[int, ...]
    scales: tuple[float, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def quantized(self) -> bool:
        return bool(self.scales)

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        """The first scale, 0.0 without quantization parameters."""
        return self.scales[0] if self.scales else 0.0


@dataclass(frozen=True)
class OpSig:
    """An operator as the exporter writes it, for its version rule: the nn op (its
    properties) and its TFLite inputs (in TFLite order, None for an omitted optional input)
    and outputs."""

    op: Operation
    inputs: tuple[TensorSig | None, ...]
    outputs: tuple[TensorSig, ...]

    def input_type(self, k: int) -> str | None:
        t = self.inputs[k] if 0 <= k < len(self.inputs) else None
        return None if t is None else t.type

    def output_type(self, k: int = 0) -> str | None:
        return self.outputs[k].type if 0 <= k < len(self.outputs) else None

    def prop_int(self, name: str) -> int:
        attr = self.op.properties.get(name)
        return int(attr.value.data) if isinstance(attr, IntegerAttr) else 0

    def prop_bool(self, name: str) -> bool:
        return self.prop_int(name) != 0  # an i1 true reads -1

    def prop_ints(self, name: str) -> tuple[int, ...]:
        attr = self.op.properties.get(name)
        return ints(attr) if isinstance(attr, DenseArrayBase) else ()

    def prop_str(self, name: str, default: str = "") -> str:
        attr = self.op.properties.get(name)
        return attr.data if isinstance(attr, StringAttr) else default


VersionRule = Mapping[str, int] | Callable[[OpSig], int]
"""The operator version TFLite's converter writes (op_version.cc): a mapping from the type
of input 0 to the version (1 for any other type), or a function of the `OpSig`."""


@dataclass(frozen=True)
class Hybrid:
    """LiteRT runs the op with float activations and int8 weights (dynamic-range, TFLite's
    "hybrid" kernels), with and without its default XNNPACK delegate. `axis`: the weights
    are quantized per axis along it (None: one scale); `accepts`: a further condition on
    the op for LiteRT's hybrid kernel to be right."""

    axis: int | None
    accepts: Callable[[Operation], bool] | None = None


@dataclass(frozen=True)
class Weights:
    """The op's weight operand, for the passes that rewrite weights (dynamic-range,
    bias-correction). `layout` says how the weights are applied (bias-correction's
    formula):

      "conv"        filter OHWI; out[o] reads input channels of o's group (CONV_2D)
      "depthwise"   filter 1HW(C*M); output channel c*M + m reads input channel c
      "dense"       [O, I]; the input is read as rows of I features (FULLY_CONNECTED)
      "transposed"  filter OHWI, each input pixel scattered over the output (TRANSPOSE_CONV)
      "matmul"      rhs [..., K, N] of a matrix product (BATCH_MATMUL)

    `hybrid`: LiteRT's hybrid kernel, None if it has none. `may_add_bias`: bias-correction
    may give the op a bias it lacks (its TFLite kernel takes an optional bias at every
    version)."""

    operand: int
    layout: str
    hybrid: Hybrid | None = None
    may_add_bias: bool = False

    LAYOUTS: ClassVar[tuple[str, ...]] = ("conv", "depthwise", "dense", "transposed", "matmul")

    def __post_init__(self) -> None:
        if self.layout not in self.LAYOUTS:
            raise ValueError(f"weight layout {self.layout!r} is not one of {self.LAYOUTS}")


@dataclass(frozen=True)
class Const:
    """A constant operand of an `Example`: its shape, element type ("float32", "int32") and
    values, given or drawn uniformly from [low, high] (seeded by the op's name)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    values: tuple[float, ...] | None = None
    low: float = -1.0
    high: float = 1.0


@dataclass(frozen=True)
class Example:
    """One instance of the op, from which `qcc.testing.tflite_models.op_model` builds a
    float single-op .tflite model, and `op_inputs` the data it runs on: uniform over
    `domain` ([-1, 1] unless the op is defined on less of the line: RSQRT's is positive).

    `operands`: one entry per operand, in operand order (a variadic operand's values in a
    row; omitted optional operands left out at the end): a shape (a float model input) or
    a `Const`. `results`: the result shapes (default: the first operand's, for element-wise
    ops). `properties`: property values as Python values (str, bool, int, float, a tuple of
    ints); a property declared by an `Option` with a default may be left out."""

    operands: tuple[tuple[int, ...] | Const, ...]
    results: tuple[tuple[int, ...], ...] | None = None
    properties: Mapping[str, object] = field(default_factory=dict)
    domain: tuple[float, float] = (-1.0, 1.0)

    def result_shapes(self) -> tuple[tuple[int, ...], ...]:
        if self.results is not None:
            return self.results
        first = self.operands[0]
        return (first.shape if isinstance(first, Const) else first,)


PRECISIONS = ("int8", "int16x8")
"""Activation precisions of TFLite's quantized kernels: int8 activations (with int8
weights), and int16 activations with int8 weights ("16x8", for mixed precision)."""


@dataclass(frozen=True, kw_only=True)
class OpSpec:
    """Everything about an nn op that is not kernel code, declared once on its class as
    `SPEC: ClassVar[OpSpec] = OpSpec(...)`; the TFLite frontend and backend, the passes
    that rewrite weights, the generated test models and the docs/ir.md op table read it.

    builtin         the TFLite builtin operator's name ("HARD_SWISH"), None if the op is
                    not an operator (nn.constant) or names it itself (nn.generic); the
                    frontend and backend resolve it in LiteRT's schema
    aliases         further builtins that import as this op (PADV2 for nn.pad)
    options         the builtin options table ("SoftmaxOptions"), None if the operator is
                    written without one
    fields          the `Option`s: options-table fields <-> properties
    const_inputs    the `ConstInput`s: constant TFLite inputs that are properties (or the
                    result type)
    operand_inputs  the TFLite input index of each operand, when not simply the inputs
                    left free by `const_inputs`, in order (TRANSPOSE_CONV: 2, 1, 3)
    version         the operator version rule (`VersionRule`, after op_version.cc)
    precisions      the activation precisions TFLite's kernels accept (`PRECISIONS`)
    int8            KERNEL, or `Fallback(reason)`: whether qcc quantizes the op; it implies
                    the `Int8Kernel` trait and is what `int8_capable` answers (KERNEL: an int8
                    lowering must be registered for the class; Fallback: none may be, unless
                    `imported_int8`); None only for nn.constant (data, not a computation)
    weights         the weight operand (`Weights`), for dynamic-range and bias-correction
    example         an `Example` instance, for the generated single-op test model

    Ops whose TFLite form needs logic beyond these tables (CONV_2D's mandatory bias, PAD
    versus PADV2, SPLIT, ...) also register a codec function against their class in the
    frontend or backend; their declaration still holds builtin, options and version."""

    builtin: str | None
    int8: str | Fallback | None
    precisions: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    options: str | None = None
    fields: tuple[Option, ...] = ()
    const_inputs: tuple[ConstInput, ...] = ()
    operand_inputs: tuple[int, ...] | None = None
    version: VersionRule = field(default_factory=dict)
    weights: Weights | None = None
    example: Example | None = None

    def __post_init__(self) -> None:
        if self.int8 is not None and self.int8 != KERNEL and not isinstance(self.int8, Fallback):
            raise ValueError(f"int8 must be KERNEL or Fallback(reason), got {self.int8!r}")
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise ValueError(f"unknown precisions {unknown} (expected some of {PRECISIONS})")
        if self.int8 == KERNEL and "int8" not in self.precisions:
            raise ValueError("int8=KERNEL needs 'int8' among the precisions TFLite accepts")

    def version_of(self, sig: OpSig) -> int:
        """The operator version for `sig`."""
        rule = self.version
        if isinstance(rule, Mapping):
            return int(rule.get(sig.input_type(0) or "", 1))
        return int(rule(sig))

    def tflite_inputs(self, count: int) -> list[int]:
        """The TFLite input index of each of `count` operands (variadic ones expanded)."""
        if self.operand_inputs is not None:
            return list(self.operand_inputs[:count])
        taken = {c.index for c in self.const_inputs}
        free: list[int] = []
        k = 0
        while len(free) < count:
            if k not in taken:
                free.append(k)
            k += 1
        return free

    def properties(self) -> tuple[str, ...]:
        """The properties the declaration maps (options and constant inputs)."""
        props = [o.prop for o in self.fields if o.prop is not None]
        props += [c.prop for c in self.const_inputs if c.prop is not None]
        return tuple(props)


def op_spec(op: Operation | type[Operation]) -> OpSpec | None:
    """The declaration of an nn op (instance or class), None for other ops."""
    cls = op if isinstance(op, type) else type(op)
    spec = getattr(cls, "SPEC", None)
    return spec if isinstance(spec, OpSpec) else None


def int8_capable(op: Operation, *, imported: bool = False) -> tuple[bool, str]:
    """The one capability question: does `op` compute in int8? (True, "") or (False, why),
    `why` one line for diagnostics. legalize-fallback (False: a float island), verify-int8
    (False: an error) and the Numba backend (False: no int8 kernel) all ask it.

    The answer is the op's declaration, `SPEC.int8`: KERNEL -> True; `Fallback(reason)` ->
    False, `reason`. An `nn.generic` is never int8: "custom op" for a custom op, else "no nn
    op for TFLite builtin <name>". With `imported` (the Numba backend, running a module
    quantized by anyone: an int8 op there was quantized elsewhere, since qcc's passes keep
    fallbacks float) an op declared `Fallback(..., imported_int8=True)` is capable (SUM).
    Ops that are not computations qcc chooses a precision for (nn.constant, ops of other
    dialects) answer True."""
    if isinstance(op, GenericOp):
        if op.custom.value.data:
            return False, "custom op"
        return False, f"no nn op for TFLite builtin {op.op_name.data}"
    spec = op_spec(op)
    if spec is None or spec.int8 is None or spec.int8 == KERNEL:
        return True, ""
    assert isinstance(spec.int8, Fallback)
    if imported and spec.int8.imported_int8:
        return True, ""
    return False, spec.int8.reason


_OpT = TypeVar("_OpT", bound=IRDLOperation)


def nn_op(cls: type[_OpT]) -> type[_OpT]:
    """`irdl_op_definition` for an nn op, which also reads the op's declaration (`SPEC`):
    it must have one, and the traits it implies are added (`Int8Kernel` when
    `int8=KERNEL`; declare that there, not in `traits`)."""
    spec = cls.__dict__.get("SPEC")
    if not isinstance(spec, OpSpec):
        raise TypeError(f"{cls.__name__} ({cls.name}) declares no SPEC: ClassVar[OpSpec]")
    if "traits" not in cls.__dict__:
        cls.traits = traits_def()  # its own trait set, so that adding to it is local
    op_class = irdl_op_definition(cls)
    if op_class.has_trait(Int8Kernel):
        raise TypeError(
            f"{cls.__name__}: Int8Kernel follows from SPEC.int8 = KERNEL; remove it from traits"
        )
    if spec.int8 == KERNEL:
        op_class.traits.add_trait(Int8Kernel())
    definition = op_class.get_irdl_definition()
    missing = [p for p in spec.properties() if p not in definition.properties]
    if missing:
        raise TypeError(f"{cls.__name__}: SPEC maps properties {missing} the op does not have")
    affine = op_class.get_trait(AffineWeights)
    if affine is not None and (spec.weights is None or spec.weights.operand != affine.weight_operand):
        raise TypeError(
            f"{cls.__name__}: AffineWeights names operand #{affine.weight_operand} as weights; "
            "SPEC.weights must declare the same operand"
        )
    return op_class


_REGISTERED: list[type[IRDLOperation]] = []


def op_classes() -> tuple[type[IRDLOperation], ...]:
    """Every nn op class: the `NN` dialect's, then any `registered_op` adds."""
    return (*NN.operations, *_REGISTERED)


@contextmanager
def registered_op(op_class: type[IRDLOperation]) -> Iterator[type[IRDLOperation]]:
    """Count `op_class` (an `nn_op` defined elsewhere, e.g. in a test) among the nn ops
    while the block runs: the TFLite frontend and backend then know it."""
    if op_spec(op_class) is None:
        raise TypeError(f"{op_class.__name__} has no SPEC: define it with @nn_op")
    _REGISTERED.append(op_class)
    try:
        yield op_class
    finally:
        _REGISTERED.remove(op_class)


# Declarations shared by several ops.
_I8_I16X8 = ("int8", "int16x8")
_OPT_ACTIVATION = Option("fused_activation_function", "fused_activation", "activation", "NONE")
_OPT_PADDING = Option("padding", "padding", "padding", "SAME")
_OPT_STRIDE = Option(("stride_h", "stride_w"), "stride", "pair", (1, 1))
_OPT_DILATION = Option(("dilation_h_factor", "dilation_w_factor"), "dilation", "pair", (1, 1))


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


@nn_op
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
    SPEC: ClassVar[OpSpec] = OpSpec(builtin=None, int8=None, precisions=())
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
_AFFINE_TRAITS = (Pure(), FusedActivation(), XnnpackRequantizationScale())


def _conv2d_version(sig: OpSig) -> int:
    x, f = sig.inputs[0], sig.inputs[1]
    tx, tf, ty = sig.input_type(0), sig.input_type(1), sig.output_type()
    assert x is not None and f is not None
    if x.shape[3] != f.shape[3]:
        return 6  # grouped convolution
    if tx == "int16" and tf == "int8":
        return 4
    if tx == "int8" and tf == "int8" and ty == "int8":
        return 3
    if tx == "int8" and tf == "int4":
        return 7
    if tx == "float32" and tf == "int8" and ty == "float32":
        return 5 if f.per_channel else 2  # hybrid
    return 1


@nn_op
class Conv2DOp(ConvLikeOp):
    """2-D convolution, filter OHWI. TFLite CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconv_2d_tflconv2dop).
    """

    name = "nn.conv2d"
    traits = traits_def(*_AFFINE_TRAITS, AffineWeights(0, 1, 2, 0))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="CONV_2D",
        options="Conv2DOptions",
        fields=(_OPT_PADDING, _OPT_STRIDE, _OPT_DILATION, _OPT_ACTIVATION),
        version=_conv2d_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        # CONV_2D v5: hybrid per-channel (conv.cc EvalHybridPerChannel)
        weights=Weights(1, "conv", Hybrid(axis=0), may_add_bias=True),
        example=Example(
            ((1, 8, 8, 3), Const((4, 3, 3, 3)), Const((4,))),
            ((1, 8, 8, 4),),
            {"padding": "SAME"},
        ),
    )
    OUT_CHANNEL_DIM: ClassVar[int] = 0

    def verify_shapes(self) -> None:
        super().verify_shapes()
        inp, flt = shape_of(self.input), shape_of(self.filter)
        if inp[3] % flt[3] != 0:
            raise _err(self, "input channels must be a multiple of the filter's input channels")
        if flt[0] % (inp[3] // flt[3]) != 0:
            raise _err(self, "output channels must be a multiple of the number of groups")


def _depthwise_conv2d_version(sig: OpSig) -> int:
    f = sig.inputs[1]
    tx, tf, ty = sig.input_type(0), sig.input_type(1), sig.output_type()
    assert f is not None
    if tx == "int16" and tf == "int8":
        return 5
    if tx == "float32" and tf == "int8" and ty == "float32":
        return 6 if f.per_channel else 4  # hybrid
    if tx == "int8" and tf == "int8" and ty == "int8":
        return 3
    if tx == "int8" and tf == "int4":
        return 7
    if sig.prop_ints("dilation") not in ((1, 1), ()):
        return 2
    return 1


@nn_op
class DepthwiseConv2DOp(ConvLikeOp):
    """Depthwise 2-D convolution, filter 1HW(C*M). TFLite DEPTHWISE_CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldepthwise_conv_2d_tfldepthwiseconv2dop).
    """

    name = "nn.depthwise_conv2d"
    depth_multiplier = prop_def(IntegerAttr)
    traits = traits_def(*_AFFINE_TRAITS, AffineWeights(0, 1, 2, 3))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="DEPTHWISE_CONV_2D",
        options="DepthwiseConv2DOptions",
        fields=(
            _OPT_PADDING,
            _OPT_STRIDE,
            _OPT_DILATION,
            Option("depth_multiplier", "depth_multiplier", "i64", 1),
            _OPT_ACTIVATION,
        ),
        version=_depthwise_conv2d_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        # DEPTHWISE_CONV_2D v6: hybrid per-channel (depthwise_conv.cc EvalHybridPerChannel)
        weights=Weights(1, "depthwise", Hybrid(axis=3), may_add_bias=True),
        example=Example(
            ((1, 8, 8, 4), Const((1, 3, 3, 8)), Const((8,))),
            ((1, 8, 8, 8),),
            {"depth_multiplier": 2},
        ),
    )
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


def _transpose_conv_version(sig: OpSig) -> int:
    if sig.prop_str("fused_activation", "NONE") != "NONE":
        return 4
    if sig.input_type(3) is not None:
        return 3  # with a bias
    if sig.input_type(1) == "int8":
        return 2
    return 1


@nn_op
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
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="TRANSPOSE_CONV",
        options="TransposeConvOptions",
        fields=(_OPT_PADDING, _OPT_STRIDE, _OPT_ACTIVATION),
        # TFLite inputs: output_shape, weights, input, bias
        const_inputs=(ConstInput(0, "output_shape", "result_shape"),),
        operand_inputs=(2, 1, 3),
        version=_transpose_conv_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        # hybrid per-channel (transpose_conv.cc EvalHybrid); a bias only from version 3
        weights=Weights(1, "transposed", Hybrid(axis=0)),
        example=Example(
            ((1, 4, 4, 4), Const((3, 3, 3, 4)), Const((3,))),
            ((1, 8, 8, 3),),
            {"stride": (2, 2), "padding": "SAME"},
        ),
    )

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


def _fully_connected_version(sig: OpSig) -> int:
    f = sig.inputs[1]
    tx, tf, ty = sig.input_type(0), sig.input_type(1), sig.output_type()
    assert f is not None
    if tx == "float32" and tf == "int8" and ty == "float32" and f.per_channel:
        return 12
    if tx == "int16" and tf == "int16" and ty == "int16":
        return 7
    if sig.prop_bool("keep_num_dims"):
        return 5
    if tx == "int8" and tf == "int8" and ty == "int8":
        return 4
    if tx == "int8" and tf == "int4" and ty == "int8":
        return 10
    if tx == "float32" and tf == "int8" and ty == "float32":
        return 3
    return 1


@nn_op
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
        AffineWeights(0, 1, 2, 0, per_axis_optional=True, int16_bias_bits=(32, 64)),
        BiasScaleNearProduct(),
    )
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="FULLY_CONNECTED",
        options="FullyConnectedOptions",
        fields=(
            _OPT_ACTIVATION,
            Option("weights_format", None, "fixed", 0),  # DEFAULT; shuffled weights: generic
            Option("keep_num_dims", "keep_num_dims", "bool", False),
        ),
        version=_fully_connected_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        # FULLY_CONNECTED v12: per-channel hybrid (fully_connected.cc, scales per output row)
        weights=Weights(1, "dense", Hybrid(axis=0), may_add_bias=True),
        example=Example(((1, 16), Const((8, 16)), Const((8,))), ((1, 8),)),
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


def _batch_matmul_lhs_rank_at_most_3(op: Operation) -> bool:
    # Measured with ai-edge-litert 2.3: the builtin hybrid BATCH_MATMUL (no XNNPACK) is wrong
    # (errors ~50%) for a rank-4 lhs unless the rhs is [1, 1, K, N]; XNNPACK gets it right.
    # Keep those float rather than depend on the delegate.
    return len(shape_of(op.operands[0])) <= 3


@nn_op
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
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="BATCH_MATMUL",
        options="BatchMatMulOptions",
        fields=(Option("adj_x", "adj_x", "bool", False), Option("adj_y", "adj_y", "bool", False)),
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        # hybrid with a constant per-tensor int8 rhs (batch_matmul.cc EvalHybrid)
        weights=Weights(1, "matmul", Hybrid(axis=None, accepts=_batch_matmul_lhs_rank_at_most_3)),
        example=Example(((1, 4, 8), (1, 8, 6)), ((1, 4, 6),)),
    )

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


def _broadcast_5d(sig: OpSig) -> bool:
    """op_version.cc: NeedBroadcastForBinaryInputs and GetInputMaxDims > 4."""
    a, b = sig.inputs[0], sig.inputs[1]
    assert a is not None and b is not None
    return a.shape != b.shape and max(a.rank, b.rank) > 4


def _add_version(sig: OpSig) -> int:
    a = sig.inputs[0]
    assert a is not None
    if a.type == "int16" and not a.quantized:
        return 5
    if a.type == "int64":
        return 4
    if a.type == "int16" and sig.output_type() == "int16":
        return 3  # the exporter writes pot_scale_int16 = false (the general-scale kernel)
    return 2 if a.type == "int8" else 1


_BINARY_EXAMPLE = Example(((1, 8, 8, 4), (1, 8, 8, 4)))


@nn_op
class AddOp(BinaryActOp):
    """Element-wise addition. TFLite ADD.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfladd_tfladdop).
    """

    name = "nn.add"
    traits = traits_def(Pure(), AddSubOutputMultiplier(), FusedActivation())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="ADD",
        options="AddOptions",
        fields=(_OPT_ACTIVATION,),
        version=_add_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_BINARY_EXAMPLE,
    )


def _sub_version(sig: OpSig) -> int:
    t = sig.input_type(0)
    a = sig.inputs[0]
    if t == "int16" and sig.output_type() == "int16" and a is not None and a.quantized:
        return 5  # the exporter writes pot_scale_int16 = false (the general-scale kernel)
    if t == "int64":
        return 4
    if _broadcast_5d(sig):
        return 3
    return 2 if t == "int8" else 1


@nn_op
class SubOp(BinaryActOp):
    """Element-wise subtraction. TFLite SUB.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsub_tflsubop).
    """

    name = "nn.sub"
    traits = traits_def(
        Pure(),
        AddSubOutputMultiplier(greater_than_one_allowed=True),
        FusedActivation(),
    )
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SUB",
        options="SubOptions",
        fields=(_OPT_ACTIVATION,),
        version=_sub_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_BINARY_EXAMPLE,
    )


def _mul_version(sig: OpSig) -> int:
    a, b, y = sig.inputs[0], sig.inputs[1], sig.outputs[0]
    assert a is not None and b is not None
    if (a.type == "int16" and not a.quantized) or a.type == "uint32":
        return 7
    if a.type == "int64":
        return 5
    if a.type == "int16":
        return 4
    s1, s2, so = a.scale, b.scale, y.scale
    if s1 and s2 and so and np.float32(s1) * np.float32(s2) / np.float32(so) >= 1.0:
        return 3
    return 2 if a.type == "int8" else 1


@nn_op
class MulOp(BinaryActOp):
    """Element-wise multiplication. TFLite MUL.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmul_tflmulop).
    """

    name = "nn.mul"
    traits = traits_def(Pure(), MulOutputMultiplier(), FusedActivation())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="MUL",
        options="MulOptions",
        fields=(_OPT_ACTIVATION,),
        version=_mul_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_BINARY_EXAMPLE,
    )


def _div_version(sig: OpSig) -> int:
    return 2 if _broadcast_5d(sig) else 1


@nn_op
class DivOp(BinaryActOp):
    """Element-wise division. TFLite DIV (not in the TFLite int8 spec: qcc keeps it float).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldiv_tfldivop).
    """

    name = "nn.div"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="DIV",
        options="DivOptions",
        fields=(_OPT_ACTIVATION,),
        version=_div_version,
        precisions=_I8_I16X8,
        int8=Fallback(
            "DIV is not in TFLite's int8 quantization spec (its converter keeps it float) and "
            "qcc has no int8 DIV kernel; LiteRT 2.3.0's div.cc does run int8 and int16"
        ),
        # the divisor is bounded away from zero so that uniform[-1, 1] data stays finite
        example=Example(((1, 8, 8, 4), Const((4,), low=0.5, high=2.0))),
    )


@dataclass(frozen=True)
class SquaredDifferenceOutputMultiplier(QuantTrait):
    """SQUARED_DIFFERENCE (squared_difference.cc Prepare): with left_shift 7, the output
    multiplier twice_max^2 / (2^14 * s_out), twice_max = float32(2 * max(s1, s2)) and
    2^14 * s_out a float32 product, goes through QuantizeMultiplierSmallerThanOneExp, which
    aborts the process (TFLITE_CHECK) unless it is in (0, 1) and stays below 1 after
    QuantizeMultiplier's rounding."""

    ORDER: ClassVar[int] = 1

    @staticmethod
    def _twice_max(types: QuantTypes) -> float | None:
        a, b = types.operand(0), types.operand(1)
        if not _int8_per_tensor(a, b):
            return None
        assert isinstance(a, UniformQuantizedType) and isinstance(b, UniformQuantizedType)
        return to_f32(2.0 * max(to_f32(a.scale), to_f32(b.scale)))

    def violation(self, op: Operation, types: QuantTypes) -> str | None:
        twice_max, out = self._twice_max(types), types.result()
        if twice_max is None or not _int8_per_tensor(out):
            return None
        assert isinstance(out, UniformQuantizedType)
        denominator = to_f32(2.0**14 * to_f32(out.scale))
        real = twice_max * twice_max / denominator if 0.0 < denominator < math.inf else math.inf
        if 0.0 < real < 1.0 and quantize_multiplier(real)[1] <= 0:
            return None
        return (
            "output multiplier (2 x max(input scales))^2 / (2^14 x output scale) must be in "
            "(0, 1) after rounding (TFLite SQUARED_DIFFERENCE QuantizeMultiplierSmallerThanOneExp"
            f"), got {_fmt(twice_max)}^2 / (2^14 x {_fmt(out.scale)}) = {real:.7g}"
        )

    def min_result_scale(self, op: Operation, types: QuantTypes) -> float:
        twice_max = self._twice_max(types)
        if twice_max is None:
            return 0.0
        return twice_max * twice_max / 2.0**14 * (1.0 + MULTIPLIER_MARGIN)


@nn_op
class SquaredDifferenceOp(BinaryOp):
    """(lhs - rhs)², with numpy broadcasting (up to rank 4). TFLite SQUARED_DIFFERENCE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsquared_difference_tflsquareddifferenceop).
    """

    name = "nn.squared_difference"
    traits = traits_def(Pure(), SquaredDifferenceOutputMultiplier())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SQUARED_DIFFERENCE",
        options="SquaredDifferenceOptions",
        version={"int8": 2},
        precisions=("int8",),  # squared_difference.cc Eval: float32, int32, int8
        int8=KERNEL,
        example=Example(((1, 8, 8, 4), (1, 1, 1, 4))),
    )

    MAX_BROADCAST_RANK: ClassVar[int] = 4
    """BroadcastBinaryFunction4DSlow: operands of different shapes have rank <= 4."""

    def verify_shapes(self) -> None:
        super().verify_shapes()
        out = shape_of(self.output)
        if shape_of(self.lhs) != shape_of(self.rhs) and len(out) > self.MAX_BROADCAST_RANK:
            raise _err(
                self,
                f"broadcasting operands must have rank <= {self.MAX_BROADCAST_RANK}, "
                f"got a rank-{len(out)} result",
            )


def _maximum_minimum_version(sig: OpSig) -> int:
    if sig.input_type(0) == "int16" and sig.output_type() == "int16":
        return 4
    if _broadcast_5d(sig):
        return 3
    return 2 if sig.input_type(0) == "int8" else 1


@nn_op
class MaximumOp(BinaryOp):
    """Element-wise maximum. TFLite MAXIMUM.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmaximum_tflmaximumop).
    """

    name = "nn.maximum"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="MAXIMUM",
        options="MaximumMinimumOptions",
        version=_maximum_minimum_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_BINARY_EXAMPLE,
    )


@nn_op
class MinimumOp(BinaryOp):
    """Element-wise minimum. TFLite MINIMUM.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflminimum_tflminimumop).
    """

    name = "nn.minimum"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="MINIMUM",
        options="MaximumMinimumOptions",
        version=_maximum_minimum_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_BINARY_EXAMPLE,
    )


@nn_op
class PReluOp(NNOp):
    """Parametric ReLU: x if x >= 0 else alpha * x, alpha broadcast. TFLite PRELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflprelu_tflpreluop).
    """

    name = "nn.prelu"
    input = operand_def(TensorType)
    alpha = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure(), Int8OperandsIn16x8((1,)))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="PRELU",
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 8, 4), Const((1, 1, 4), low=0.05, high=0.3))),
    )

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


_UNARY_EXAMPLE = Example(((1, 8, 8, 4),))


@nn_op
class ReluOp(UnaryOp):
    """max(x, 0). TFLite RELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu_tflreluop).
    """

    name = "nn.relu"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RELU",
        version={"uint8": 2, "int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


@nn_op
class Relu6Op(UnaryOp):
    """min(max(x, 0), 6). TFLite RELU6.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu6_tflrelu6op).
    """

    name = "nn.relu6"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RELU6",
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


@nn_op
class ReluN1To1Op(UnaryOp):
    """min(max(x, -1), 1). TFLite RELU_N1_TO_1.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrelu_n1_to_1_tflrelu1op).
    """

    name = "nn.relu_n1_to_1"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RELU_N1_TO_1",
        precisions=("int8",),  # activations.cc Relu1Eval: float32, uint8, int8
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


@nn_op
class LeakyReluOp(UnaryOp):
    """x if x >= 0 else alpha * x. TFLite LEAKY_RELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflleaky_relu_tflleakyreluop).
    """

    name = "nn.leaky_relu"
    alpha = prop_def(FloatAttr)
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="LEAKY_RELU",
        options="LeakyReluOptions",
        fields=(Option("alpha", "alpha", "f32", 0.0),),
        version={"int16": 2},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 8, 4),), properties={"alpha": 0.2}),
    )

    def verify_shapes(self) -> None:
        super().verify_shapes()
        if not math.isfinite(self.alpha.value.data):
            raise _err(self, f"alpha must be finite, got {self.alpha.value.data}")


@nn_op
class LogisticOp(UnaryOp):
    """1 / (1 + exp(-x)). TFLite LOGISTIC; int8 output fixed at 1/256, -128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfllogistic_tfllogisticop).
    """

    name = "nn.logistic"
    traits = traits_def(Pure(), FixedOutputRange(1.0 / 256.0, -128))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="LOGISTIC",
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


@nn_op
class TanhOp(UnaryOp):
    """tanh(x). TFLite TANH; int8 output fixed at 1/128, 0.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltanh_tfltanhop).
    """

    name = "nn.tanh"
    traits = traits_def(Pure(), FixedOutputRange(1.0 / 128.0, 0))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="TANH",
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


@nn_op
class HardSwishOp(UnaryOp):
    """x * relu6(x + 3) / 6. TFLite HARD_SWISH; the int8 output scale must exceed
    input_scale / 128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflhard_swish_tflhardswishop).
    """

    name = "nn.hard_swish"
    traits = traits_def(Pure(), HardSwishOutputMultiplier())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="HARD_SWISH",
        options="HardSwishOptions",
        precisions=("int8",),  # activations.cc HardSwishEval: float32, uint8, int8
        int8=KERNEL,
        example=_UNARY_EXAMPLE,
    )


def _rsqrt_version(sig: OpSig) -> int:
    return {"int8": 2, "int16": 3}.get(sig.input_type(0) or "", 1)


@nn_op
class RsqrtOp(UnaryOp):
    """1 / sqrt(x). TFLite RSQRT; its int8 kernel fails on inputs below the zero point
    (negative values), and maps the zero point (0) to 127.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflrsqrt_tflrsqrtop).
    """

    name = "nn.rsqrt"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RSQRT",
        version=_rsqrt_version,
        precisions=_I8_I16X8,  # elementwise.cc IsRsqrtSupportedType: float32, int8, int16
        int8=KERNEL,
        example=Example(((1, 8, 8, 4),), domain=(0.05, 4.0)),  # defined for x > 0
    )


def _gelu_version(sig: OpSig) -> int:
    t = sig.input_type(0)
    if t == "float16":
        return 3
    return 2 if t in ("int8", "uint8") else 1


@nn_op
class GeluOp(UnaryOp):
    """x Φ(x) = 0.5 x erfc(-x / sqrt(2)); with `approximate`, 0.5 x (1 + tanh(sqrt(2 / π)
    (x + 0.044715 x³))). TFLite GELU.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflgelu_tflgeluop).
    """

    name = "nn.gelu"
    approximate = prop_def(BoolAttr)
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="GELU",
        options="GeluOptions",
        fields=(Option("approximate", "approximate", "bool", False),),
        version=_gelu_version,
        precisions=_I8_I16X8,  # activations.cc GeluPrepare: int8, uint8, int16 tables
        int8=KERNEL,
        example=Example(((1, 8, 8, 4),), domain=(-4.0, 4.0)),
    )


@nn_op
class SoftmaxOp(UnaryOp):
    """softmax(beta * x) over the last axis. TFLite SOFTMAX; int8 output fixed at 1/256, -128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsoftmax_tflsoftmaxop).
    """

    name = "nn.softmax"
    beta = prop_def(FloatAttr)
    traits = traits_def(Pure(), FixedOutputRange(1.0 / 256.0, -128, tolerance=0.001))
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SOFTMAX",
        options="SoftmaxOptions",
        fields=(Option("beta", "beta", "f32", 0.0),),
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 16),), properties={"beta": 1.0}),
    )

    def verify_shapes(self) -> None:
        super().verify_shapes()
        if not shape_of(self.input):
            raise _err(self, "expects an input of rank >= 1")
        if not math.isfinite(self.beta.value.data):
            raise _err(self, f"beta must be finite, got {self.beta.value.data}")


def _pad_version(sig: OpSig) -> int:
    x = sig.inputs[0]
    assert x is not None
    if x.rank > 4:
        return 4
    return {"int8": 2, "int16": 3}.get(x.type, 1)


@nn_op
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
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="PAD",
        aliases=("PADV2",),  # with a pad value; the codec picks PAD or PADV2
        options="PadOptions",
        version=_pad_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(
            ((1, 8, 8, 4),), ((1, 10, 11, 4),), {"paddings": (0, 0, 1, 1, 2, 1, 0, 0)}
        ),
    )

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


def _pool2d_version(sig: OpSig) -> int:
    if sig.input_type(0) == "int16" and sig.output_type() == "int16":
        return 3
    return 2 if sig.input_type(0) == "int8" else 1


_POOL_FIELDS = (
    _OPT_PADDING,
    _OPT_STRIDE,
    Option(("filter_height", "filter_width"), "filter_size", "pair", (1, 1)),
    _OPT_ACTIVATION,
)
_POOL_EXAMPLE = Example(
    ((1, 8, 8, 4),), ((1, 4, 4, 4),), {"filter_size": (2, 2), "stride": (2, 2), "padding": "VALID"}
)


@nn_op
class MaxPool2DOp(Pool2DOp):
    """Max pooling. TFLite MAX_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmax_pool_2d_tflmaxpool2dop).
    """

    name = "nn.max_pool2d"
    traits = traits_def(Pure(), SameScale(), FusedActivation())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="MAX_POOL_2D",
        options="Pool2DOptions",
        fields=_POOL_FIELDS,
        version=_pool2d_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_POOL_EXAMPLE,
    )


@nn_op
class AvgPool2DOp(Pool2DOp):
    """Average pooling (padding excluded from the average). TFLite AVERAGE_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflaverage_pool_2d_tflaveragepool2dop).
    """

    name = "nn.avg_pool2d"
    traits = traits_def(Pure(), SameScale(), FusedActivation())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="AVERAGE_POOL_2D",
        options="Pool2DOptions",
        fields=_POOL_FIELDS,
        version=_pool2d_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_POOL_EXAMPLE,
    )


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


_REDUCE_EXAMPLE = Example(((1, 8, 8, 4),), ((1, 1, 1, 4),), {"axes": (1, 2), "keep_dims": True})


@nn_op
class MeanOp(ReduceOp):
    """Mean over `axes`. TFLite MEAN.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmean_tflmeanop).
    """

    name = "nn.mean"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="MEAN",
        options="ReducerOptions",
        fields=(Option("keep_dims", "keep_dims", "bool", False),),
        const_inputs=(ConstInput(1, "axes", "axes", "axes"),),
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_REDUCE_EXAMPLE,
    )


@nn_op
class SumOp(ReduceOp):
    """Sum over `axes`. TFLite SUM.

    A float fallback on purpose (`SPEC.int8`): LiteRT's reference (BUILTIN_REF) int8 SUM
    with rescaling disagrees with its optimized kernel (measured -7.6 dB against float where
    the default resolver gives 40.7 dB), so qcc keeps SUM a float island and the emitted
    model is right under every resolver. `imported_int8`: an int8 SUM in a model quantized
    elsewhere (TFLite's quantizer emits them) still runs on qcc's int8 runtime, with the
    optimized kernel's arithmetic (`sum_i8`).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsum_tflsumop).
    """

    name = "nn.sum"
    traits = traits_def(Pure())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SUM",
        options="ReducerOptions",
        fields=(Option("keep_dims", "keep_dims", "bool", False),),
        const_inputs=(ConstInput(1, "axes", "axes", "axes"),),
        version={"int8": 2},
        precisions=_I8_I16X8,
        int8=Fallback(
            "LiteRT 2.3.0's reference (BUILTIN_REF) int8 SUM reads the int8 bytes as uint8 "
            "(-7.6 dB against float where the default resolver gives 40.7 dB)",
            imported_int8=True,
        ),
        example=_REDUCE_EXAMPLE,
    )


@nn_op
class ReshapeOp(NNOp):
    """Reshape to the result type's shape. TFLite RESHAPE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflreshape_tflreshapeop).
    """

    name = "nn.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RESHAPE",
        # the new shape is the result type; RESHAPE's shape input may hold -1
        const_inputs=(ConstInput(1, "shape", "result_shape", check=False),),
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 8, 4),), ((1, 64, 4),)),
    )

    def verify_shapes(self) -> None:
        if _num_elements(shape_of(self.input)) != _num_elements(shape_of(self.output)):
            raise _err(self, "input and result must have the same number of elements")


MAX_SHAPE_RANK = 8
"""The largest rank TFLite's SQUEEZE and TRANSPOSE kernels accept."""


@nn_op
class SqueezeOp(NNOp):
    """Remove size-1 dimensions (`squeeze_dims`, or all if empty). TFLite SQUEEZE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsqueeze_tflsqueezeop).
    """

    name = "nn.squeeze"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    squeeze_dims = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SQUEEZE",
        options="SqueezeOptions",
        fields=(Option("squeeze_dims", "squeeze_dims", "axes", (), what="squeeze dim"),),
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 1, 1, 16),), ((1, 16),), {"squeeze_dims": (1, 2)}),
    )

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


def _transpose_version(sig: OpSig) -> int:
    x = sig.inputs[0]
    assert x is not None
    if x.rank > 5:
        return 6
    if x.type == "int16":
        return 5
    if x.rank > 4:
        return 4
    if x.type == "bool":
        return 3
    return 2 if x.type == "int8" else 1


@nn_op
class TransposeOp(NNOp):
    """Permute dimensions by `perm` (negative entries count from the end). TFLite TRANSPOSE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltranspose_tfltransposeop).
    """

    name = "nn.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    perm = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="TRANSPOSE",
        options="TransposeOptions",
        const_inputs=(ConstInput(1, "perm", "ints", "perm"),),
        version=_transpose_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 6, 4),), ((1, 4, 8, 6),), {"perm": (0, 3, 1, 2)}),
    )

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


@nn_op
class ConcatenationOp(NNOp):
    """Concatenate along `axis`. TFLite CONCATENATION (which takes no fused activation).

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconcatenation_tflconcatenationop).
    """

    name = "nn.concatenation"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    fused_activation = prop_def(StringAttr)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="CONCATENATION",
        options="ConcatenationOptions",
        fields=(Option("axis", "axis", "axis", 0, of_output=True), _OPT_ACTIVATION),
        version={"int8": 2, "int16": 3},
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 8, 2), (1, 8, 8, 3)), ((1, 8, 8, 5),), {"axis": 3}),
    )

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


def _split_version(sig: OpSig) -> int:
    t = sig.input_type(1)  # input 0 is the axis
    if t == "int16":
        return 4
    if t == "int32":
        return 3
    return 2 if t == "int8" else 1


@nn_op
class SplitOp(NNOp):
    """Split into equal parts along `axis`. TFLite SPLIT.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsplit_tflsplitop).
    """

    name = "nn.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SPLIT",
        options="SplitOptions",  # num_splits: the number of results (the codec writes it)
        version=_split_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(((1, 8, 8, 8),), ((1, 8, 8, 4), (1, 8, 8, 4)), {"axis": 3}),
    )

    def verify_shapes(self) -> None:
        inp = shape_of(self.input)
        axis = _check_axis(self, "axis", self.axis.value.data, len(inp))
        n = len(self.outputs)
        if n == 0 or inp[axis] % n != 0:
            raise _err(self, "the axis size must divide evenly into the results")
        part = inp[:axis] + (inp[axis] // n,) + inp[axis + 1 :]
        if any(shape_of(r) != part for r in self.outputs):
            raise _err(self, f"every result must have shape {list(part)}")


def _slice_version(sig: OpSig) -> int:
    x = sig.inputs[0]
    assert x is not None
    if x.rank > 4:
        return 5
    if x.type == "int16":
        return 4
    return 2 if x.type == "int8" else 1


@nn_op
class SliceOp(NNOp):
    """Static slice: `begin` and `size` (-1 = to the end). TFLite SLICE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflslice_tflsliceop).
    """

    name = "nn.slice"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    begin = prop_def(DenseArrayBase)
    size = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SLICE",
        options="SliceOptions",
        const_inputs=(ConstInput(1, "begin", "ints", "begin"), ConstInput(2, "size", "ints", "size")),
        version=_slice_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(
            ((1, 8, 8, 6),), ((1, 4, 5, 6),), {"begin": (0, 2, 1, 0), "size": (1, 4, 5, -1)}
        ),
    )

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


def _strided_slice_version(sig: OpSig) -> int:
    x = sig.inputs[0]
    assert x is not None
    if sig.prop_bool("offset"):
        return 8
    if x.type == "uint32":
        return 7
    if sig.prop_int("ellipsis_mask") or sig.prop_int("new_axis_mask"):
        return 6
    if x.rank > 4:
        return 4
    if x.type == "bool":
        return 3
    return 2 if x.type == "int8" else 1


@nn_op
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
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="STRIDED_SLICE",
        options="StridedSliceOptions",
        fields=tuple(
            Option(mask, mask, "i64", 0)
            for mask in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
        )
        + (Option("offset", "offset", "bool", False),),
        const_inputs=(
            ConstInput(1, "begin", "ints", "begin"),
            ConstInput(2, "end", "ints", "end"),
            ConstInput(3, "strides", "ints", "strides"),
        ),
        version=_strided_slice_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(
            ((1, 8, 8, 6),),
            ((1, 4, 4, 6),),
            {"begin": (0, 1, 0, 0), "end": (1, 8, 8, 6), "strides": (1, 2, 2, 1)},
        ),
    )

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


def _gather_version(sig: OpSig) -> int:
    tp, ti = sig.input_type(0), sig.input_type(1)
    if tp == "int4":
        return 7
    if ti == "int16":
        return 6
    if sig.prop_int("batch_dims") != 0:
        return 5
    if tp == "int16":
        return 4
    if tp == "bool":
        return 3
    return 2 if tp == "int8" else 1


@nn_op
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
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="GATHER",
        options="GatherOptions",
        # the importer's codec normalizes batch_dims by the indices' rank
        fields=(Option("axis", "axis", "axis", 0), Option("batch_dims", "batch_dims", "i64", 0)),
        version=_gather_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=Example(
            ((1, 8, 8, 4), Const((5,), "int32", (0, 2, 5, 7, 7))), ((1, 5, 8, 4),), {"axis": 1}
        ),
    )

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


def _resize_bilinear_version(sig: OpSig) -> int:
    t = sig.input_type(0)
    if t == "int16":
        return 4
    if sig.prop_bool("half_pixel_centers"):
        return 3
    return 2 if t == "int8" else 1


def _resize_nearest_neighbor_version(sig: OpSig) -> int:
    t = sig.input_type(0)
    if t == "int16":
        return 4
    if sig.prop_bool("half_pixel_centers") or sig.prop_bool("align_corners"):
        return 3
    return 2 if t == "int8" else 1


_RESIZE_FIELDS = (
    Option("align_corners", "align_corners", "bool", False),
    Option("half_pixel_centers", "half_pixel_centers", "bool", False),
)
# the target size is the result type; a constant size input must agree with it
_RESIZE_SIZE = (ConstInput(1, "size", "result_hw"),)
_RESIZE_EXAMPLE = Example(((1, 8, 8, 3),), ((1, 16, 16, 3),))


@nn_op
class ResizeBilinearOp(ResizeOp):
    """Bilinear resize to the result's height and width. TFLite RESIZE_BILINEAR.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflresize_bilinear_tflresizebilinearop).
    """

    name = "nn.resize_bilinear"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RESIZE_BILINEAR",
        options="ResizeBilinearOptions",
        fields=_RESIZE_FIELDS,
        const_inputs=_RESIZE_SIZE,
        version=_resize_bilinear_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_RESIZE_EXAMPLE,
    )


@nn_op
class ResizeNearestNeighborOp(ResizeOp):
    """Nearest-neighbour resize. TFLite RESIZE_NEAREST_NEIGHBOR.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflresize_nearest_neighbor_tflresizenearestneighborop).
    """

    name = "nn.resize_nearest_neighbor"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="RESIZE_NEAREST_NEIGHBOR",
        options="ResizeNearestNeighborOptions",
        fields=_RESIZE_FIELDS,
        const_inputs=_RESIZE_SIZE,
        version=_resize_nearest_neighbor_version,
        precisions=_I8_I16X8,
        int8=KERNEL,
        example=_RESIZE_EXAMPLE,
    )


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


@nn_op
class DepthToSpaceOp(BlockRearrangeOp):
    """Move channel blocks into spatial blocks. TFLite DEPTH_TO_SPACE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldepth_to_space_tfldepthtospaceop).
    """

    name = "nn.depth_to_space"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="DEPTH_TO_SPACE",
        options="DepthToSpaceOptions",
        fields=(Option("block_size", "block_size", "i64", 1),),
        # op_version.cc gives int8 version 2, but int8 runs at version 1 (the only version
        # BUILTIN_REF registers); 2 for int16
        version={"int16": 2},
        precisions=("int8",),  # depth_to_space.cc Prepare: no int16
        int8=KERNEL,
        example=Example(((1, 8, 8, 8),), ((1, 16, 16, 2),), {"block_size": 2}),
    )

    def divisible(self, h: int, w: int, c: int, b: int) -> bool:
        return c % (b * b) == 0

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        return (n, h * b, w * b, c // (b * b))


@nn_op
class SpaceToDepthOp(BlockRearrangeOp):
    """Move spatial blocks into channels. TFLite SPACE_TO_DEPTH.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflspace_to_depth_tflspacetodepthop).
    """

    name = "nn.space_to_depth"
    traits = traits_def(Pure(), SameScale())
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin="SPACE_TO_DEPTH",
        options="SpaceToDepthOptions",
        fields=(Option("block_size", "block_size", "i64", 1),),
        version={"int8": 2},
        precisions=("int8",),  # space_to_depth.cc Prepare: no int16
        int8=KERNEL,
        example=Example(((1, 8, 8, 3),), ((1, 4, 4, 12),), {"block_size": 2}),
    )

    def divisible(self, h: int, w: int, c: int, b: int) -> bool:
        return h % b == 0 and w % b == 0

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        return (n, h // b, w // b, c * b * b)


@nn_op
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
    SPEC: ClassVar[OpSpec] = OpSpec(
        builtin=None,  # `op_name`; options and version are kept raw on the op
        precisions=(),
        int8=Fallback(
            "a custom op or a builtin without an nn op: no int8 kernel (MediaPipe's custom ops "
            "run as float islands on their float kernels)"
        ),
    )

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
        SquaredDifferenceOp,
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
        GeluOp,
        RsqrtOp,
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


