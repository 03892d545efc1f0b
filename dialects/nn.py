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
  * element types are f32, integer types, or `!quant.uniform` types; the verifiers check ranks
    and shapes, not element types, so the same ops carry float and quantized tensors;
  * anything without a dedicated op (custom ops, rarer builtins) is `nn.generic`, which keeps
    the operator name and its raw option bytes, so nothing is lost.

Ops declare their quantization constraints as traits (see `QuantTrait` below); passes read the
traits instead of switching on op names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    ShapedType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
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

ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")
PADDINGS = ("SAME", "VALID")


# ------------------------------------------------------------------------------------------
# Quantization constraints, declared on the ops (TFLite's quantization traits, STYLE.md §3.2)
# ------------------------------------------------------------------------------------------


class QuantTrait(OpTrait):
    """Base of the traits that describe how an op may be quantized."""


@dataclass(frozen=True)
class SameScale(QuantTrait):
    """All tensor operands and results share one quantization (data-movement ops, max pool)."""


@dataclass(frozen=True)
class FixedOutputRange(QuantTrait):
    """The int8 result has fixed parameters, whatever the input range (LOGISTIC: 1/256, -128)."""

    scale: float = 1.0 / 256.0
    zero_point: int = -128


@dataclass(frozen=True)
class AffineWeights(QuantTrait):
    """Weights are operand `weight_operand`, quantized symmetrically per channel along
    `axis`; the bias (operand `bias_operand`, if present) is int32 with
    scale = input_scale * weight_scale[c] (TFLite's AccumulatorUniformScale)."""

    input_operand: int
    weight_operand: int
    bias_operand: int
    axis: int
    per_axis_optional: bool = False
    """The runtime also accepts per-tensor weights and the TFLite spec table lists
    per-tensor (FULLY_CONNECTED): infer-scales may choose either (`per-channel-fc`)."""


@dataclass(frozen=True)
class Int8Kernel(QuantTrait):
    """The op has an int8 kernel in TFLite (it may be quantized at all)."""


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


def _err(op: IRDLOperation, msg: str) -> VerifyException:
    return VerifyException(f"'{op.name}' op {msg}")


def _check_choice(op: IRDLOperation, what: str, value: str, allowed: Sequence[str]):
    if value not in allowed:
        raise _err(op, f"{what} must be one of {', '.join(allowed)}, got {value!r}")


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


# ------------------------------------------------------------------------------------------
# Op families
# ------------------------------------------------------------------------------------------


class NNOp(IRDLOperation):
    """Base of every nn op: generic-looking custom syntax, properties in the attr-dict."""

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    def verify_activation(self) -> None:
        act = getattr(self, "fused_activation", None)
        if isinstance(act, StringAttr):
            _check_choice(self, "fused_activation", act.data, ACTIVATIONS)

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

    def verify_(self) -> None:
        if tuple(self.value.get_shape()) != shape_of(self.output):
            raise _err(self, "value shape does not match the result shape")


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

    def verify_(self) -> None:
        self.verify_activation()
        _check_choice(self, "padding", self.padding.data, PADDINGS)
        inp, flt, out = shape_of(self.input), shape_of(self.filter), shape_of(self.output)
        if len(inp) != 4 or len(flt) != 4 or len(out) != 4:
            raise _err(self, "expects rank-4 input, filter and result")
        sh, sw = ints(self.stride)
        dh, dw = ints(self.dilation)
        expected = (
            inp[0],
            conv_output_size(inp[1], flt[1], sh, dh, self.padding.data),
            conv_output_size(inp[2], flt[2], sw, dw, self.padding.data),
            flt[self.OUT_CHANNEL_DIM],
        )
        if out != expected:
            raise _err(self, f"result shape {list(out)} does not match expected {list(expected)}")
        if self.bias is not None and shape_of(self.bias) != (flt[self.OUT_CHANNEL_DIM],):
            raise _err(self, "bias must have one element per output channel")


@irdl_op_definition
class Conv2DOp(ConvLikeOp):
    """2-D convolution, filter OHWI. TFLite CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconv_2d_tflconv2dop).
    """

    name = "nn.conv2d"
    traits = traits_def(Pure(), Int8Kernel(), AffineWeights(0, 1, 2, 0))
    OUT_CHANNEL_DIM: ClassVar[int] = 0

    def verify_(self) -> None:
        super().verify_()
        if shape_of(self.input)[3] % shape_of(self.filter)[3] != 0:
            raise _err(self, "input channels must be a multiple of the filter's input channels")


@irdl_op_definition
class DepthwiseConv2DOp(ConvLikeOp):
    """Depthwise 2-D convolution, filter 1HW(C*M). TFLite DEPTHWISE_CONV_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfldepthwise_conv_2d_tfldepthwiseconv2dop).
    """

    name = "nn.depthwise_conv2d"
    depth_multiplier = prop_def(IntegerAttr)
    traits = traits_def(Pure(), Int8Kernel(), AffineWeights(0, 1, 2, 3))
    OUT_CHANNEL_DIM: ClassVar[int] = 3


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
    traits = traits_def(Pure(), Int8Kernel(), AffineWeights(0, 1, 2, 0))

    def verify_(self) -> None:
        self.verify_activation()
        _check_choice(self, "padding", self.padding.data, PADDINGS)
        inp, flt, out = shape_of(self.input), shape_of(self.filter), shape_of(self.output)
        if len(inp) != 4 or len(flt) != 4 or len(out) != 4:
            raise _err(self, "expects rank-4 input, filter and result")
        if out[3] != flt[0] or inp[3] != flt[3]:
            raise _err(self, "filter shape does not match input and result channels")


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
    traits = traits_def(Pure(), Int8Kernel(), AffineWeights(0, 1, 2, 0, per_axis_optional=True))

    def verify_(self) -> None:
        self.verify_activation()
        flt = shape_of(self.filter)
        if len(flt) != 2:
            raise _err(self, "expects a rank-2 weight tensor")
        inp = shape_of(self.input)
        n = 1
        for d in inp:
            n *= d
        if n % flt[1] != 0:
            raise _err(self, "input size is not a multiple of the weights' input dimension")
        if shape_of(self.output)[-1] != flt[0]:
            raise _err(self, "result's last dimension must equal the number of weight rows")


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

    def verify_(self) -> None:
        a, b = shape_of(self.lhs), shape_of(self.rhs)
        if len(a) < 2 or len(b) < 2:
            raise _err(self, "operands must have rank >= 2")
        k_a = a[-2] if self.adj_x.value.data else a[-1]
        k_b = b[-1] if self.adj_y.value.data else b[-2]
        if k_a != k_b:
            raise _err(self, f"contraction dimensions differ ({k_a} vs {k_b})")


class BinaryOp(NNOp):
    """Element-wise binary op with numpy broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        self.verify_activation()
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
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class SubOp(BinaryActOp):
    """Element-wise subtraction. TFLite SUB.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsub_tflsubop).
    """

    name = "nn.sub"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class MulOp(BinaryActOp):
    """Element-wise multiplication. TFLite MUL.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmul_tflmulop).
    """

    name = "nn.mul"
    traits = traits_def(Pure(), Int8Kernel())


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

    def verify_(self) -> None:
        if broadcast_shapes(shape_of(self.input), shape_of(self.alpha)) != shape_of(self.output):
            raise _err(self, "alpha does not broadcast to the input shape")


class UnaryOp(NNOp):
    """Element-wise unary op: result has the input's shape."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        self.verify_activation()
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
    """x * relu6(x + 3) / 6. TFLite HARD_SWISH.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflhard_swish_tflhardswishop).
    """

    name = "nn.hard_swish"
    traits = traits_def(Pure(), Int8Kernel())


@irdl_op_definition
class SoftmaxOp(UnaryOp):
    """softmax(beta * x) over the last axis. TFLite SOFTMAX; int8 output fixed at 1/256, -128.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflsoftmax_tflsoftmaxop).
    """

    name = "nn.softmax"
    beta = prop_def(FloatAttr)
    traits = traits_def(Pure(), Int8Kernel(), FixedOutputRange(1.0 / 256.0, -128))


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

    def verify_(self) -> None:
        inp, out, pads = shape_of(self.input), shape_of(self.output), ints(self.paddings)
        if len(pads) != 2 * len(inp):
            raise _err(self, "paddings must have two entries per input dimension")
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

    def verify_(self) -> None:
        self.verify_activation()
        _check_choice(self, "padding", self.padding.data, PADDINGS)
        inp, out = shape_of(self.input), shape_of(self.output)
        if len(inp) != 4:
            raise _err(self, "expects a rank-4 input")
        fh, fw = ints(self.filter_size)
        sh, sw = ints(self.stride)
        expected = (
            inp[0],
            conv_output_size(inp[1], fh, sh, 1, self.padding.data),
            conv_output_size(inp[2], fw, sw, 1, self.padding.data),
            inp[3],
        )
        if out != expected:
            raise _err(self, f"result shape {list(out)} does not match expected {list(expected)}")


@irdl_op_definition
class MaxPool2DOp(Pool2DOp):
    """Max pooling. TFLite MAX_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflmax_pool_2d_tflmaxpool2dop).
    """

    name = "nn.max_pool2d"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


@irdl_op_definition
class AvgPool2DOp(Pool2DOp):
    """Average pooling (padding excluded from the average). TFLite AVERAGE_POOL_2D.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflaverage_pool_2d_tflaveragepool2dop).
    """

    name = "nn.avg_pool2d"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())


class ReduceOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(DenseArrayBase)
    keep_dims = prop_def(BoolAttr)

    def verify_(self) -> None:
        inp = shape_of(self.input)
        axes = {a % len(inp) for a in ints(self.axes)} if inp else set()
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


def _num_elements(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@irdl_op_definition
class ReshapeOp(NNOp):
    """Reshape to the result type's shape. TFLite RESHAPE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflreshape_tflreshapeop).
    """

    name = "nn.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_(self) -> None:
        if _num_elements(shape_of(self.input)) != _num_elements(shape_of(self.output)):
            raise _err(self, "input and result must have the same number of elements")


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

    def verify_(self) -> None:
        inp = shape_of(self.input)
        dims = {d % len(inp) for d in ints(self.squeeze_dims)}
        if not dims:
            dims = {i for i, d in enumerate(inp) if d == 1}
        if any(inp[d] != 1 for d in dims):
            raise _err(self, "squeezed dimensions must have size 1")
        expected = tuple(d for i, d in enumerate(inp) if i not in dims)
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


@irdl_op_definition
class TransposeOp(NNOp):
    """Permute dimensions by `perm`. TFLite TRANSPOSE.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tfltranspose_tfltransposeop).
    """

    name = "nn.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    perm = prop_def(DenseArrayBase)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_(self) -> None:
        inp, perm = shape_of(self.input), ints(self.perm)
        if sorted(perm) != list(range(len(inp))):
            raise _err(self, "perm must be a permutation of the input dimensions")
        if tuple(inp[p] for p in perm) != shape_of(self.output):
            raise _err(self, "result shape does not match the permuted input shape")


@irdl_op_definition
class ConcatenationOp(NNOp):
    """Concatenate along `axis`. TFLite CONCATENATION.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflconcatenation_tflconcatenationop).
    """

    name = "nn.concatenation"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    fused_activation = prop_def(StringAttr)
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

    def verify_(self) -> None:
        self.verify_activation()
        out = shape_of(self.output)
        axis = self.axis.value.data % len(out)
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

    def verify_(self) -> None:
        inp = shape_of(self.input)
        axis = self.axis.value.data % len(inp)
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

    def verify_(self) -> None:
        inp, begin, size = shape_of(self.input), ints(self.begin), ints(self.size)
        if len(begin) != len(inp) or len(size) != len(inp):
            raise _err(self, "begin and size need one entry per dimension")
        expected = tuple(d - b if s == -1 else s for d, b, s in zip(inp, begin, size))
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


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

    def verify_(self) -> None:
        n = len(ints(self.begin))
        if len(ints(self.end)) != n or len(ints(self.strides)) != n:
            raise _err(self, "begin, end and strides must have the same length")
        if any(s == 0 for s in ints(self.strides)):
            raise _err(self, "strides must be non-zero")


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

    def verify_(self) -> None:
        p, i = shape_of(self.params), shape_of(self.indices)
        axis = self.axis.value.data % len(p)
        bd = self.batch_dims.value.data
        expected = p[:axis] + i[bd:] + p[axis + 1 :]
        if expected != shape_of(self.output):
            raise _err(self, f"result shape does not match expected {list(expected)}")


class ResizeOp(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    align_corners = prop_def(BoolAttr)
    half_pixel_centers = prop_def(BoolAttr)

    def verify_(self) -> None:
        inp, out = shape_of(self.input), shape_of(self.output)
        if len(inp) != 4 or len(out) != 4 or inp[0] != out[0] or inp[3] != out[3]:
            raise _err(self, "expects NHWC input and result with equal batch and channels")
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

    def verify_(self) -> None:
        inp = shape_of(self.input)
        b = self.block_size.value.data
        if len(inp) != 4 or b < 1:
            raise _err(self, "expects a rank-4 input and a positive block size")
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

    def expected_shape(self, n: int, h: int, w: int, c: int, b: int) -> tuple[int, ...]:
        return (n, h * b, w * b, c // (b * b))


@irdl_op_definition
class SpaceToDepthOp(BlockRearrangeOp):
    """Move spatial blocks into channels. TFLite SPACE_TO_DEPTH.

    See external [documentation](https://www.tensorflow.org/mlir/tfl_ops#tflspace_to_depth_tflspacetodepthop).
    """

    name = "nn.space_to_depth"
    traits = traits_def(Pure(), Int8Kernel(), SameScale())

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


