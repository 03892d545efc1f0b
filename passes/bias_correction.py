"""bias-correction: fold the mean output shift caused by weight quantization into the bias.

Quantizing the weights W of an affine op to W_q = dequant(quant(W)) changes its output by
(W_q − W)·x, whose mean over the data is (W_q − W)·E[x]: a systematic per-channel shift that
later layers and activations amplify. Nagel et al. 2019 ("Data-Free Quantization Through
Weight Equalization and Bias Correction", §4.2) remove it by subtracting it from the bias:

    correction[o] = Σ_k ΔW[o, k] · E[x_k]        ΔW = W_q − W
    bias'[o]      = bias[o] − correction[o]

where k runs over the kernel (taps × input channels). The paper takes E[x] from batch-norm
statistics; here it is the measured mean of the float model's input of the op on the
calibration data: the `channel_mean` that `annotate-ranges` records on every `quant.stats`.

    qcc m.mlir --pass-pipeline='annotate-ranges{calibration=c.npz},bias-correction,infer-scales'

Where it runs, and why: between `annotate-ranges` and `infer-scales`. It needs the means,
which live on the `quant.stats` that infer-scales erases, and the float weights; W_q it
computes itself with the very functions infer-scales and quantize use
(`_quant_math.weight_type`, then `quantize_values`: round half away from zero of
w / scale[c], clamped to [−127, 127]; `dequantize_values`), so ΔW is exactly the error of the
weights the model will carry. The alternative — after infer-scales, reading the weights'
quantized types — would need infer-scales to keep the means somewhere; running first keeps
every pass reading only what the IR states. The one decision it must mirror is the
FULLY_CONNECTED granularity: give it the same `per-channel-fc` as infer-scales (the presets
do). Only bias values change: the bias's quantized type (scale = input_scale ×
weight_scale[c]) does not depend on them, so infer-scales decides it as before.

Per op (the trait `AffineWeights` says which operands are input, weights and bias; the
op's declaration `nn.Weights` how its weights are laid out and applied, and whether a new
bias may be added):

  * `nn.conv2d`, weights OHWI: correction[o] = Σ_{h,w,i} ΔW[o,h,w,i] · mean[g(o)·I + i]
    (I = the filter's input channels; grouped convolutions read their group's channels);
  * `nn.depthwise_conv2d`, weights 1HW(C·M): correction[c·M + m] = Σ_{h,w} ΔW[0,h,w,c·M+m]
    · mean[c];
  * `nn.fully_connected`, weights [O, I], input read as rows of I features:
    correction = ΔW · mean_features, the mean of the input reshaped to [−1, I]
    (annotate-ranges records a mean over enough trailing axes for that; when I is not a
    product of trailing dimensions, the op is left alone);
  * `nn.transpose_conv`, weights OHWI: every input pixel scatters Σ ΔW·x over the output,
    so the mean shift per output pixel is Σ_{h,w,i} ΔW[o,h,w,i] · mean[i] times
    (input pixels / output pixels) — exact for VALID, border-approximate for SAME.

Approximation: the per-channel mean stands for the mean at every position and every tap
reads data, i.e. border effects of padding (taps reading zeros outside the input) are
ignored — the standard approximation; the correction is the one for interior outputs.

The pass consumes the means it reads: `channel_mean` is removed from those `quant.stats`, so
a replayed pipeline that runs it twice corrects once.

A missing bias becomes a new float bias constant (−correction) for conv2d, depthwise_conv2d
and fully_connected, whose TFLite kernels take an optional bias at any version; a
transpose_conv without a bias is left as it is (TFLite's TRANSPOSE_CONV takes a bias only
from version 3). A bias shared with another op is cloned first. Ops whose input has no
`channel_mean` (no stats: e.g. IR annotated elsewhere), whose weights are not float
constants, or whose correction is exactly zero are unchanged.

In the presets it is opt-in (`qcc --bias-correction`, `qcc.quantize(..., bias_correction=True)`).
Measured on the zoo (8 calibration photos, 4 held-out ones, worst-output SNR): with only the
weights quantized (float activations) it gains 0.9-8.9 dB on every output of every model; in
full int8 it lifts hand_landmark from 4.55 to 9.89 dB (+5.9 dB on average over leave-one-out
calibrations, 8 of 8 better), while on face_detection, iris_landmark and
selfie_segmentation the change (+2.07, -0.13, -0.82 dB) is within the spread that leaving
out one calibration photo causes (paired means -0.13, +0.16, -0.26 dB): activation
quantization dominates their error.

Options:
  per_channel_fc: the FULLY_CONNECTED weight granularity infer-scales will choose
    (default true, as infer-scales).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, ModuleOp, TensorType, f32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qcc.dialects import nn, quant
from qcc.passes import _quant_math as qm
from qcc.passes.infer_scales import (
    constant_values,
    float_constant,
    functions,
    requested_precision,
)

def input_mean(value: SSAValue) -> np.ndarray | None:
    """The recorded mean over the leading axes of `value` (the `channel_mean` of the
    `quant.stats` that defines it), shaped as recorded; None without one."""
    stats = value.owner
    if not isinstance(stats, quant.StatsOp) or stats.channel_mean is None:
        return None
    shape = tuple(stats.channel_mean.get_shape())
    return np.asarray(stats.channel_means, dtype=np.float64).reshape(shape)


def channel_mean(mean: np.ndarray) -> np.ndarray:
    """The per-channel (last axis) mean from a mean over any number of trailing axes:
    every leading position holds as many values, so averaging them is exact."""
    return mean.reshape(-1, mean.shape[-1]).mean(axis=0)


def feature_mean(mean: np.ndarray, features: int) -> np.ndarray | None:
    """The mean of each of `features` features of the input read as rows of `features`
    (fully_connected), when they span whole trailing axes of the recorded mean."""
    size = 1
    for k in range(1, mean.ndim + 1):
        size *= mean.shape[-k]
        if size == features:
            return mean.reshape(-1, features).mean(axis=0)
        if size > features:
            return None
    return None


def weight_error(weights: np.ndarray, qtype: quant.QuantizedType) -> np.ndarray:
    """ΔW = dequant(quant(W)) − W under `qtype`, with quantize's exact rounding."""
    restored = qm.dequantize_values(qm.quantize_values(weights, qtype), qtype)
    return restored - weights


def correction(op: Operation, delta: np.ndarray, mean: np.ndarray) -> np.ndarray | None:
    """The mean output shift Σ_k ΔW[o, k]·E[x_k] per output channel of `op`, by the layout
    its declaration gives its weights (`nn.Weights.layout`), or None when the recorded mean
    does not fit the op (or the op declares no weights this pass knows)."""
    spec = nn.op_spec(op)
    layout = spec.weights.layout if spec is not None and spec.weights is not None else None
    if layout == "depthwise":
        c = channel_mean(mean)
        out_channels = delta.shape[3]
        if out_channels % c.size:
            return None
        multiplier = out_channels // c.size
        return delta.sum(axis=(0, 1, 2)) * c[np.arange(out_channels) // multiplier]
    if layout == "conv":
        c = channel_mean(mean)
        out_channels, in_channels = delta.shape[0], delta.shape[3]
        groups = c.size // in_channels
        if groups * in_channels != c.size or out_channels % groups:
            return None
        group_of = np.arange(out_channels) // (out_channels // groups)
        per_output = c.reshape(groups, in_channels)[group_of]  # [O, I]
        return np.einsum("ohwi,oi->o", delta, per_output)
    if layout == "dense":
        f = feature_mean(mean, delta.shape[1])
        return None if f is None else delta @ f
    if layout == "transposed":
        c = channel_mean(mean)
        if c.size != delta.shape[3]:
            return None
        affine = op.get_trait(nn.AffineWeights)
        _, h_in, w_in, _ = nn.shape_of(op.operands[affine.input_operand if affine else 0])
        _, h_out, w_out, _ = nn.shape_of(op.results[0])
        return np.einsum("ohwi,i->o", delta, c) * (h_in * w_in) / (h_out * w_out)
    return None


def f32_constant(values: np.ndarray) -> nn.ConstantOp:
    """A bytes-backed `tensor<Nxf32>` constant."""
    data = np.ascontiguousarray(values, dtype="<f4")
    attr = DenseIntOrFPElementsAttr(TensorType(f32, data.shape), BytesAttr(data.tobytes()))
    return nn.ConstantOp(attr)


def correct_op(op: Operation, affine: nn.AffineWeights, per_channel_fc: bool) -> bool:
    """Subtract `op`'s weight-quantization shift from its bias; whether anything changed."""
    operands = op.operands
    if affine.weight_operand >= len(operands):
        return False
    mean = input_mean(operands[affine.input_operand])
    weights = float_constant(operands[affine.weight_operand])
    if mean is None or weights is None:
        return False
    has_bias = affine.bias_operand < len(operands)
    bias = float_constant(operands[affine.bias_operand]) if has_bias else None
    if has_bias and bias is None:
        return False  # a bias that is not a float constant: infer-scales reports it
    spec = nn.op_spec(op)
    may_add_bias = spec is not None and spec.weights is not None and spec.weights.may_add_bias
    if not has_bias and not may_add_bias:
        return False  # only ops whose TFLite kernel takes a bias at every version get one
    # the weight type infer-scales will choose (its `decide_affine`)
    axis: int | None = affine.axis
    if affine.per_axis_optional and not per_channel_fc:
        axis = None
    w = constant_values(weights)
    delta = weight_error(w, qm.weight_type(w, axis))
    shift = correction(op, delta, mean)
    if shift is None or not np.any(shift):
        return False
    if bias is not None:
        old = constant_values(bias)
        new = f32_constant(old.reshape(-1) - shift)
        new.location = bias.location
        Rewriter.insert_op(new, InsertPoint.after(bias))
    else:
        new = f32_constant(-shift)
        new.location = op.location
        Rewriter.insert_op(new, InsertPoint.before(op))
    index = affine.bias_operand
    op.operands = [*operands[:index], new.output, *operands[index + 1 :]]
    if bias is not None and not bias.output.uses:
        Rewriter.erase_op(bias)
    return True


@dataclass(frozen=True)
class BiasCorrection(ModulePass):
    """Subtract each affine op's mean weight-quantization error from its bias (see the
    module docstring). Runs after annotate-ranges, before infer-scales."""

    name = "bias-correction"

    per_channel_fc: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for func in functions(op):
            read: list[quant.StatsOp] = []
            for inner in list(func.walk()):
                affine = inner.get_trait(nn.AffineWeights)
                if affine is None or affine.input_operand >= len(inner.operands):
                    continue
                if requested_precision(inner) != "float":  # an island keeps float weights
                    correct_op(inner, affine, self.per_channel_fc)
                stats = inner.operands[affine.input_operand].owner
                if isinstance(stats, quant.StatsOp) and stats.channel_mean is not None:
                    read.append(stats)
            for stats in read:  # consumed: running the pass again changes nothing
                stats.properties.pop("channel_mean", None)

