"""MediaPipe's `Convolution2DTransposeBias` custom op: a float kernel, and its options.

The op (mediapipe/util/tflite/operations/transpose_conv_bias.cc, in google-ai-edge/mediapipe)
is TFLite's TRANSPOSE_CONV from before that builtin took a bias, with a bias added:

* inputs: `input` [N, H, W, I] float32, `weights` [O, KH, KW, I] (OHWI), `bias` [O];
  one output [N, OH, OW, O], float32 only;
* options: not a flexbuffer, but the raw bytes of TFLite's C struct
  `TfLiteTransposeConvParams` (`node->custom_initial_data` cast to it): int32 `padding`
  (1 SAME, 2 VALID), int32 `stride_width`, int32 `stride_height`, little-endian, 12 bytes
  (newer TFLite headers append an int32 fused activation, which the op never reads);
* output size: `stride * (in - 1) + filter - pad_total`, with
  `pad_total = max(0, filter - (in - 1) % stride - 1)` under SAME and 0 under VALID, and
  the top/left padding `pad_total // 2`;
* every output starts at the bias; each input pixel adds `input · filter` at
  `in * stride - pad + tap`, taps outside the output dropped.

That is exactly builtin TRANSPOSE_CONV (version 3, with its bias input) given the same
output size, whose padding TFLite derives from the output size the same way: the pass
`canonicalize-custom-ops` (passes/canonicalize_custom_ops.py) rewrites the op into
`nn.transpose_conv`, so it is quantized like any transposed convolution and the file needs
no MediaPipe resolver. The kernel below runs the op as shipped (the float model,
calibration before the rewrite, a `--pass-pipeline` without it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qcc.dialects import nn
from xdsl.ir import Operation

from .common import constant_value, tensor_dtype, tensor_shape
from .conv import transpose_conv_kernel
from .registry import float_kernel

CUSTOM_CODE = "Convolution2DTransposeBias"

_PADDING = {1: "SAME", 2: "VALID"}
"""TfLitePadding: kTfLitePaddingUnknown 0, kTfLitePaddingSame 1, kTfLitePaddingValid 2."""


@dataclass(frozen=True)
class TransposeConvBiasParams:
    """The op's options and the geometry its Prepare derives from them."""

    padding: str
    """"SAME" or "VALID"."""
    stride: tuple[int, int]
    """(height, width)."""
    output_hw: tuple[int, int]
    pad_top_left: tuple[int, int]


def transpose_conv_bias_params(op: Operation) -> TransposeConvBiasParams:
    """Decode and check a `Convolution2DTransposeBias` op: its raw TfLiteTransposeConvParams
    options and the shapes MediaPipe's Prepare checks (rank-4 input and OHWI weights, a 1-D
    bias of O elements, matching input channels, float32, the result shape it computes).
    Raises ValueError with one line naming the op otherwise."""
    assert isinstance(op, nn.GenericOp)

    def fail(why: str) -> ValueError:
        return ValueError(f"custom op '{CUSTOM_CODE}': {why}")

    raw = op.option_bytes
    if len(raw) < 12:
        raise fail(
            f"its options must be a TfLiteTransposeConvParams struct (padding, stride_width, "
            f"stride_height as int32), got {len(raw)} bytes"
        )
    pad_code, stride_w, stride_h = struct.unpack_from("<3i", raw)
    if pad_code not in _PADDING:
        raise fail(f"unknown padding {pad_code} in its options (1 is SAME, 2 is VALID)")
    if stride_w < 1 or stride_h < 1:
        raise fail(f"strides must be positive, got {stride_h}x{stride_w}")
    if len(op.inputs) != 3 or len(op.outputs) != 1:
        raise fail(f"expects 3 inputs and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
    inp, wts, bias = (tensor_shape(v) for v in op.inputs)
    out = tensor_shape(op.outputs[0])
    if len(inp) != 4 or len(wts) != 4 or len(bias) != 1 or len(out) != 4:
        raise fail("expects a rank-4 input, rank-4 OHWI weights, a 1-D bias and a rank-4 output")
    if wts[0] != bias[0] or inp[3] != wts[3]:
        raise fail(f"weights {list(wts)} do not match the input {list(inp)} or the bias {list(bias)}")
    for v in (*op.inputs, op.outputs[0]):
        if tensor_dtype(v) != "float32":
            raise fail("runs float32 only")
    _, kh, kw, _ = wts
    pad_h = pad_w = 0
    if _PADDING[pad_code] == "SAME":
        pad_h = max(0, kh - (inp[1] - 1) % stride_h - 1)
        pad_w = max(0, kw - (inp[2] - 1) % stride_w - 1)
    oh = stride_h * (inp[1] - 1) + kh - pad_h
    ow = stride_w * (inp[2] - 1) + kw - pad_w
    if tuple(out) != (inp[0], oh, ow, wts[0]):
        raise fail(f"its output must be {[inp[0], oh, ow, wts[0]]}, the model says {list(out)}")
    return TransposeConvBiasParams(
        _PADDING[pad_code], (stride_h, stride_w), (oh, ow), (pad_h // 2, pad_w // 2)
    )


@float_kernel(nn.GenericOp, custom=CUSTOM_CODE)
def convolution_2d_transpose_bias(op):
    params = transpose_conv_bias_params(op)
    inp, wts, _ = op.inputs
    return transpose_conv_kernel(
        tensor_shape(inp), tensor_shape(op.outputs[0]), tensor_shape(wts), params.stride,
        params.pad_top_left, constant_value(wts), constant_value(op.inputs[2]),
    )
