"""canonicalize-custom-ops: rewrite custom ops that have a builtin equivalent into that builtin.

MediaPipe's `Convolution2DTransposeBias` (its selfie and hair segmentation decoders' last
upsampling) is TFLite's TRANSPOSE_CONV with a bias, from before the builtin took one; since
TRANSPOSE_CONV version 3 it does. The pass rewrites

    %y = nn.generic %x, %w, %b {custom = true, op_name = "Convolution2DTransposeBias",
                                options = "0x010000000200000002000000"} loc("segment")
into
    %y = nn.transpose_conv %x, %w, %b {stride = array<i64: 2, 2>, padding = "SAME",
                                       fused_activation = "NONE"} loc("segment")

so the op is quantized like any transposed convolution (int8, per-channel weights, int32
bias), and the written file needs no MediaPipe op resolver: it runs under LiteRT's
BUILTIN_REF and default resolvers and on integer-only targets.

The rewrite is exact, not approximate: both ops scatter `input · filter` from
`in * stride - pad_top` (taps outside the output dropped) and add the bias; MediaPipe
derives `pad_top` from the input size (runtime/kernels/mediapipe_transpose_conv.py) and
TFLite from the output size (transpose_conv.cc: ComputePaddingHeightWidth on the output as
a convolution's input). The pass checks that the two paddings agree for the op's shapes
and leaves it as shipped otherwise (a float island, run by qcc's kernel for the custom op),
as it does any op whose options it cannot decode.

Custom ops without a builtin equivalent (MediaPipe's Landmarks2TransformMatrix,
TransformTensorBilinear, TransformLandmarks, MaxPoolingWithArgmax2D, MaxUnpooling2D, and any
unknown one) are left unchanged. It runs first in the int8 presets, before calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qcc.dialects import nn
from qcc.runtime.kernels.mediapipe_transpose_conv import CUSTOM_CODE, transpose_conv_bias_params


def tflite_transpose_conv_pad(out_size: int, kernel: int, stride: int, padding: str) -> int:
    """The top (left) padding TFLite's TRANSPOSE_CONV uses for an output of `out_size`:
    the SAME/VALID padding of a convolution over the output (dilation 1), whose output
    size is ceil(out / stride) (SAME) or ceil((out - kernel + 1) / stride) (VALID)."""
    if padding == "SAME":
        conv_out = (out_size + stride - 1) // stride
    else:
        conv_out = (out_size - kernel + stride) // stride
    total = max((conv_out - 1) * stride + kernel - out_size, 0)
    return total // 2


class TransposeConvBiasToBuiltin(RewritePattern):
    """Convolution2DTransposeBias(x, w, b) → nn.transpose_conv(x, w, b), when TFLite's
    padding for the shapes equals MediaPipe's."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.GenericOp, rewriter: PatternRewriter) -> None:
        if not op.custom.value.data or op.op_name.data != CUSTOM_CODE:
            return
        try:
            params = transpose_conv_bias_params(op)
        except ValueError:
            return  # options or shapes it cannot read: the op stays as shipped
        _, kh, kw, _ = nn.shape_of(op.inputs[1])
        (oh, ow), (sh, sw) = params.output_hw, params.stride
        builtin_pads = (
            tflite_transpose_conv_pad(oh, kh, sh, params.padding),
            tflite_transpose_conv_pad(ow, kw, sw, params.padding),
        )
        if builtin_pads != params.pad_top_left:
            return
        new = nn.TransposeConvOp.create(
            operands=list(op.inputs),
            result_types=[op.outputs[0].type],
            properties={
                "stride": nn.i64_array([sh, sw]),
                "padding": StringAttr(params.padding),
                "fused_activation": StringAttr("NONE"),
            },
        )
        new.location = op.location
        rewriter.replace(op, new)


@dataclass(frozen=True)
class CanonicalizeCustomOpsPass(ModulePass):
    """Rewrite custom ops with an exact builtin equivalent into it (MediaPipe's
    Convolution2DTransposeBias → TRANSPOSE_CONV with a bias)."""

    name = "canonicalize-custom-ops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(TransposeConvBiasToBuiltin(), apply_recursively=False).rewrite_module(op)
