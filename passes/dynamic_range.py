"""dynamic-range: int8 weights, float activations (TFLite's 2018 "hybrid" quantization, what
`optimizations=[DEFAULT]` does without a representative dataset).

    %w = nn.constant {value = dense<...> : tensor<16x3x3x8xf32>} : tensor<16x3x3x8xf32>
    %y = nn.conv2d %x, %w, %b {...} : (tensor<1x8x8x8xf32>, tensor<16x3x3x8xf32>, ...) -> ...
becomes
    %w = nn.constant {value = dense<...> : tensor<16x3x3x8xi8>}
           : tensor<16x3x3x8x!quant.uniform<i8<-127:127>:f32:0, {s0,...,s15}>>
    %y = nn.conv2d %x, %w, %b {...} : (tensor<1x8x8x8xf32>, tensor<16x3x3x8x!quant...>, ...)

LiteRT runs such ops with its hybrid kernels: the float input is quantized on the fly, the
product is integer, the result is float again. Only the weight operand of the ops that
declare a hybrid kernel (`nn.Weights.hybrid` in the op's `SPEC`, dialects/nn.py: CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL, as ai-edge-litert 2.3 runs
them with and without XNNPACK, measured by tests/test_dynamic_range.py) is quantized,
symmetric and narrow-range ([-127, 127], zero point 0, scale max|w|/127, per axis where the
kernel takes per-axis scales); biases and activations stay float. Like TFLite's converter,
weights with fewer than `min_elements` elements stay float (they cost little and their ops
run faster in float). A weight constant shared with another use keeps its float copy for
that use.

Size: an int8 weight takes a quarter of its float bytes, plus, per channel, a float32 scale
and an int64 zero point. LiteRT insists on one zero point per scale, so the TFLite backend
writes each distinct zero-point array once and lets every tensor that has it point there:
on the zoo this brings hand_landmark_lite to 0.282 and iris_landmark to 0.299 of the fp32
file (0.301 and 0.312 with a copy per tensor), outputs unchanged bit for bit. Quantizing
the small weights too (`min-elements=0`) saves another 0.3 % (hand_landmark_lite) to 7 %
(face_detection_short_range) of the fp32 size, but costs up to 6 dB of output SNR on
iris_landmark and 4 dB on selfie_segmentation (eval photos), so the default stays TFLite's.

Options (`dynamic-range{min-elements=1024}`):

- `min_elements`: quantize only weights with at least this many elements (default 1024,
  TFLite's `weights_min_num_elements`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float32Type,
    ModuleOp,
    TensorType,
    i8,
)
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from qcc.dialects import nn, quant
from qcc.runtime.kernels.common import decode_dense


def quantize_symmetric(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, list[float]]:
    """int8 values in [-127, 127] and float32 scales (max|w| / 127, per slice along `axis`),
    rounding half away from zero as TFLite's `SymmetricQuantizeFloats` does."""
    w = np.asarray(w, dtype=np.float32)
    if axis is None:
        max_abs = np.array([np.abs(w).max(initial=0.0)], np.float32)
        shape = (1,) * w.ndim
    else:
        reduce_axes = tuple(d for d in range(w.ndim) if d != axis)
        max_abs = np.abs(w).max(axis=reduce_axes, initial=0.0).astype(np.float32)
        shape = tuple(-1 if d == axis else 1 for d in range(w.ndim))
    scales = (max_abs / np.float32(127.0)).astype(np.float32)
    scales = np.where(scales > 0, scales, np.float32(1.0)).astype(np.float32)
    scaled = w.astype(np.float64) / scales.reshape(shape).astype(np.float64)
    q = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -127, 127).astype(np.int8)
    return q, [float(s) for s in scales]


@dataclass
class QuantizeHybridWeights(RewritePattern):
    """Replaces the float weight constant of a hybrid-capable op by an int8 one."""

    min_elements: int

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        spec = nn.op_spec(op)
        weights = spec.weights if spec is not None else None
        hybrid = weights.hybrid if weights is not None else None
        if weights is None or hybrid is None:
            return
        if hybrid.accepts is not None and not hybrid.accepts(op):
            return
        weight = op.operands[weights.operand]
        const = weight.owner
        if not isinstance(const, nn.ConstantOp):
            return
        wtype = weight.type
        if not isinstance(wtype, TensorType) or not isinstance(
            wtype.get_element_type(), Float32Type
        ):
            return
        shape = tuple(wtype.get_shape())
        if int(np.prod(shape)) < self.min_elements:
            return
        # The input and result must be float: this is the hybrid form, not full int8.
        if any(quant.is_quantized(v.type) for v in (*op.operands, *op.results)):
            return
        values, scales = quantize_symmetric(decode_dense(const.value), hybrid.axis)
        if hybrid.axis is None:
            qtype = quant.UniformQuantizedType.get(scales[0], 0, storage_min=-127)
        else:
            qtype = quant.UniformQuantizedPerAxisType.get(
                scales, axis=hybrid.axis, storage_min=-127
            )
        data = DenseIntOrFPElementsAttr(TensorType(i8, shape), BytesAttr(values.tobytes()))
        new = nn.ConstantOp(data, TensorType(qtype, shape))
        new.location = const.location
        rewriter.insert(new, InsertPoint.before(op))
        op.operands[weights.operand] = new.output
        rewriter.notify_op_modified(op)
        if not const.output.uses:
            rewriter.erase(const)


@dataclass(frozen=True)
class DynamicRange(ModulePass):
    """Quantize the weights of hybrid-capable ops to int8; activations stay float."""

    name = "dynamic-range"

    min_elements: int = 1024

    def __post_init__(self) -> None:
        if self.min_elements < 0:
            raise ValueError(f"min-elements must be >= 0, got {self.min_elements}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            QuantizeHybridWeights(self.min_elements), apply_recursively=False
        ).rewrite_module(op)
