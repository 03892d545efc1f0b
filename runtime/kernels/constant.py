"""nn.constant, and the builtin DEQUANTIZE of float16 weights when it stays a generic op."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from .common import decode_dense, tensor_dtype
from .registry import float_kernel


@float_kernel(nn.ConstantOp)
def constant(op):
    value = decode_dense(op.value)
    want = tensor_dtype(op.output)
    if want is not None and value.dtype != want and value.dtype.kind == want.kind:
        # e.g. an f16 payload behind an f32 result; a float payload under a quantized result
        # type ("to be quantized") keeps its float values.
        value = value.astype(want)
        value.flags.writeable = False

    def run():
        return value

    run.constant = value  # the executor folds constants into its initial environment
    return run


@float_kernel(nn.GenericOp, builtin="DEQUANTIZE")
def dequantize_fp16(op):
    """DEQUANTIZE of a float16 tensor is a widening cast (TFLite's fp16 weight storage)."""
    if len(op.inputs) != 1 or tensor_dtype(op.inputs[0]) != np.float16:
        return None

    def run(x):
        return x.astype(np.float32)

    return run
