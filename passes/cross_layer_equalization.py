"""cross-layer-equalization: balance the per-channel weight ranges of consecutive weight
layers by a positive per-channel scaling that leaves the float function unchanged (Nagel et
al. 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction", §4.1).

Two weight layers joined by a positively homogeneous activation f (f(s·x) = s·f(x) for
s > 0: identity, ReLU, PReLU, LeakyReLU) compute

    y = W2 · f(W1 x + b1) + b2  =  (W2 S) · f(S⁻¹ W1 x + S⁻¹ b1) + b2

for any diagonal S with positive entries, so output channel i of the first layer may be
divided by s_i (its weights and its bias) and input channel i of the second multiplied by
s_i. With r1_i the range (max |w|) of the first layer's output channel i and r2_i that of
the second layer's input channel i, the paper's choice

    s_i = sqrt(r1_i · r2_i) / r2_i  (= sqrt(r1_i / r2_i))

makes both ranges sqrt(r1_i · r2_i): balanced. A chain of three or more layers (conv ->
depthwise -> conv, where the depthwise layer is scaled from both sides) is equalized by
sweeping over its junctions until the scales stop changing (at most `iterations` sweeps;
one sweep is exact for a lone pair).

    qcc m.tflite --pass-pipeline='fuse-activation,cross-layer-equalization,annotate-ranges{...},...'

It runs on float IR, before `annotate-ranges` (the statistics must be gathered on the
equalized model) and after `fuse-activation` (which folds a standalone ReLU into its
producer; a standalone ReLU is handled too). It needs no data.

What is a weight layer, and how its channels map, comes from the op's declaration, never its
name: the `AffineWeights` trait (input, weight and bias operands) and `nn.Weights.layout` of
its `SPEC`:

  * "conv" (OHWI): output channel o is row o; input channel k of a grouped convolution
    (I filter input channels, G = C / I groups) is column k mod I of the rows of its group
    k div I;
  * "depthwise" (1HW(C·M)): the channel is both input and output: filter column c·M + m
    reads input channel c and writes output channel c·M + m;
  * "dense" ([O, I], the input read as rows of I features): output channel o is row o;
    the input's channel c (its last axis, C) is every feature f with f mod C = c, so the
    input must hold whole channels per row (I a multiple of C), else the layer is not a
    second layer.

Other layouts (transposed convolutions, matmuls) are left alone. Weights and biases must be
float constants; a constant shared with another op is copied before it changes.

Where a pair is equalized, and where not:

  * the first layer's result must have one use (fan-out: a value that also feeds a residual
    add, a second branch or the function's result would change there), and so must every
    op between the two layers;
  * between them: the first layer's fused activation NONE or RELU, then any number of
    element-wise positively homogeneous ops on the data operand (`nn.relu`, `nn.prelu`:
    its alpha is untouched, since alpha·(x/s) = (alpha·x)/s for s > 0; `nn.leaky_relu`);
  * RELU6 (fused) is not positively homogeneous: min(max(x/s, 0), 6) is not
    min(max(x, 0), 6)/s. `relu6=keep` (the default) equalizes no pair joined by RELU6
    (s = 1 on every channel of it: the only scaling that keeps RELU6 exact); `relu6=split`
    equalizes it and keeps the function exact by rewriting the layer's RELU6 into RELU plus
    a per-channel clip, `nn.minimum(y, 6/s)` with a constant [C] bound. The clip is an
    extra op, and LiteRT's XNNPACK delegate does not take an int8 MINIMUM
    (qcc/targets/xnnpack.json), so `split` costs a float island or a delegate partition per
    pair on the default target: it is for the `reference` / `numba` targets and for
    measurements. Other fused activations (RELU_N1_TO_1, TANH) and any other op between the
    layers stop the search;
  * a channel whose r1 or r2 is 0 (a dead channel) keeps s = 1.

The float function is unchanged up to float32 rounding of the rescaled weights: with
per-channel weight quantization (qcc's default for conv, depthwise and fully_connected) a
first layer's quantization is invariant to the scaling, and what changes is the second
layer's per-output-channel weight ranges and the per-tensor activation range of the
tensor between them.

Options:
  relu6: `keep` (default) or `split` (above).
  iterations: the most sweeps over a chain's junctions (default 32); sweeps stop earlier
    once no scale differs from 1 by more than 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NameLoc, NoneAttr, StringAttr, TensorType, f32
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qcc.dialects import nn
from qcc.passes.bias_correction import f32_constant
from qcc.passes.infer_scales import constant_values, float_constant, functions

RELU6_MODES = ("keep", "split")
RELU6_BOUND = 6.0

_HOMOGENEOUS: tuple[type[Operation], ...] = (nn.ReluOp, nn.PReluOp, nn.LeakyReluOp)
"""Standalone element-wise ops with f(s·x) = s·f(x) for every s > 0, applied per element
to their data operand (operand 0). The one table this pass keeps: a declaration on the op
(a trait) would be the better home for it."""

_LINEAR_ACTIVATIONS = ("NONE", "RELU")
"""Fused activations that are positively homogeneous."""

_CONVERGED = 1e-6


def _layout(op: Operation) -> str | None:
    spec = nn.op_spec(op)
    if spec is None or spec.weights is None:
        return None
    return spec.weights.layout


def _f32_constant(value: SSAValue) -> nn.ConstantOp | None:
    """The float32 `nn.constant` defining `value` (rewritten as float32), else None."""
    const = float_constant(value)
    if const is None or const.value.get_element_type() != f32:
        return None
    return const


def _shape(value: SSAValue) -> tuple[int, ...]:
    t = value.type
    assert isinstance(t, TensorType)
    return tuple(int(d) for d in t.get_shape())


@dataclass(eq=False)
class _Layer:
    """One weight layer: its op, declaration and (float64) weights and bias, rescaled in
    place until they are written back."""

    op: Operation
    affine: nn.AffineWeights
    layout: str
    weights: np.ndarray
    bias: np.ndarray | None
    weights_changed: bool = False
    bias_changed: bool = False

    @staticmethod
    def of(op: Operation) -> _Layer | None:
        """The layer `op` is, or None if it is not one this pass rescales."""
        affine = op.get_trait(nn.AffineWeights)
        layout = _layout(op)
        if affine is None or layout not in ("conv", "depthwise", "dense"):
            return None
        operands = op.operands
        if affine.weight_operand >= len(operands):
            return None
        weights = _f32_constant(operands[affine.weight_operand])
        if weights is None:
            return None
        bias: np.ndarray | None = None
        if affine.bias_operand < len(operands):
            const = _f32_constant(operands[affine.bias_operand])
            if const is None:
                return None
            bias = constant_values(const).reshape(-1)
        w = constant_values(weights)
        if not np.all(np.isfinite(w)) or (bias is not None and not np.all(np.isfinite(bias))):
            return None  # infer-scales names them
        expected_rank = 2 if layout == "dense" else 4
        if w.ndim != expected_rank:
            return None
        return _Layer(op, affine, layout, w, bias)

    @property
    def input(self) -> SSAValue:
        return self.op.operands[self.affine.input_operand]

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[3] if self.layout == "depthwise" else self.weights.shape[0])

    # -- the first layer of a pair: its output channels ------------------------------------

    def output_ranges(self) -> np.ndarray:
        a = np.abs(self.weights)
        if self.layout == "depthwise":
            return a.max(axis=(0, 1, 2))
        return a.reshape(a.shape[0], -1).max(axis=1)

    def scale_outputs(self, s: np.ndarray) -> None:
        """Divide output channel o by s[o] (weights and bias)."""
        if self.layout == "depthwise":
            self.weights = self.weights / s[None, None, None, :]
        elif self.layout == "conv":
            self.weights = self.weights / s[:, None, None, None]
        else:
            self.weights = self.weights / s[:, None]
        if self.bias is not None:
            self.bias = self.bias / s
            self.bias_changed = True
        self.weights_changed = True

    # -- the second layer of a pair: its input channels ------------------------------------

    def input_channel_index(self, channels: int) -> np.ndarray | None:
        """For every weight element, the input channel (of `channels`) it reads: an integer
        array broadcastable against the weights; None when the layout cannot map them."""
        w = self.weights
        if self.layout == "depthwise":
            if w.shape[3] % channels:
                return None
            multiplier = w.shape[3] // channels
            return (np.arange(w.shape[3]) // multiplier)[None, None, None, :]
        if self.layout == "conv":
            out, filter_in = w.shape[0], w.shape[3]
            if channels % filter_in:
                return None
            groups = channels // filter_in
            if out % groups:
                return None
            group = np.arange(out) // (out // groups)
            index = group[:, None] * filter_in + np.arange(filter_in)[None, :]
            return index[:, None, None, :]
        features = w.shape[1]
        if features % channels:
            return None
        return (np.arange(features) % channels)[None, :]

    def input_ranges(self, index: np.ndarray, channels: int) -> np.ndarray:
        a = np.broadcast_to(np.abs(self.weights), self.weights.shape)
        where = np.broadcast_to(index, self.weights.shape)
        ranges = np.zeros(channels)
        np.maximum.at(ranges, where.ravel(), a.ravel())
        return ranges

    def scale_inputs(self, index: np.ndarray, s: np.ndarray) -> None:
        """Multiply the weights reading input channel c by s[c]."""
        self.weights = self.weights * s[index]
        self.weights_changed = True

    # -- writing back ----------------------------------------------------------------------

    def write_back(self) -> None:
        """Replace the weight (and bias) constants by the rescaled values."""
        operands = list(self.op.operands)
        replaced: dict[int, np.ndarray] = {}
        if self.weights_changed:
            replaced[self.affine.weight_operand] = self.weights
        if self.bias is not None and self.bias_changed:
            replaced[self.affine.bias_operand] = self.bias
        if not replaced:
            return
        olds = []
        for index, values in replaced.items():
            old = float_constant(operands[index])
            assert old is not None
            new = f32_constant(values.reshape(_shape(old.output)))
            new.location = old.location
            Rewriter.insert_op(new, InsertPoint.after(old))
            operands[index] = new.output
            olds.append(old)
        self.op.operands = operands
        for old in olds:
            if not old.output.uses:
                Rewriter.erase_op(old)


@dataclass(eq=False)
class _Junction:
    """Two layers joined by a positively homogeneous path; `scale` accumulates the s_i."""

    first: _Layer
    second: _Layer
    channels: int
    index: np.ndarray
    relu6: bool
    scale: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.scale = np.ones(self.channels)

    def equalize(self) -> float:
        """One step: s = sqrt(r1 / r2) per channel (1 where either range is 0); the largest
        |log s| applied."""
        r1 = self.first.output_ranges()
        r2 = self.second.input_ranges(self.index, self.channels)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.sqrt(r1 / r2)
        s = np.where((r1 > 0) & (r2 > 0) & np.isfinite(s) & (s > 0), s, 1.0)
        if np.all(s == 1.0):
            return 0.0
        self.first.scale_outputs(s)
        self.second.scale_inputs(self.index, s)
        self.scale = self.scale * s
        return float(np.max(np.abs(np.log(s))))


def _named(op: Operation, base: Operation, suffix: str) -> None:
    loc = base.location
    if isinstance(loc, NameLoc):
        op.location = NameLoc(StringAttr(f"{loc.desc.data}/{suffix}"), NoneAttr())


def _single_user(value: SSAValue) -> tuple[Operation, int] | None:
    uses = list(value.uses)
    if len(uses) != 1:
        return None
    return uses[0].operation, uses[0].index


def find_junctions(func: FuncOp, relu6: str = "keep") -> list[_Junction]:
    """Every pair of weight layers this pass equalizes in `func`, in program order (one
    `_Layer` per op, shared by the junctions on both sides of it)."""
    layers: dict[Operation, _Layer] = {}

    def layer(op: Operation) -> _Layer | None:
        if op not in layers:
            found = _Layer.of(op)
            if found is None:
                return None
            layers[op] = found
        return layers[op]

    junctions: list[_Junction] = []
    for op in func.body.block.ops:
        if op.get_trait(nn.AffineWeights) is None:
            continue
        first = layer(op)
        if first is None or len(op.results) != 1:
            continue
        activation = getattr(op, "activation", "NONE")
        needs_split = activation == "RELU6"
        if needs_split and relu6 != "split":
            continue
        if not needs_split and activation not in _LINEAR_ACTIVATIONS:
            continue
        value = op.results[0]
        channels = _shape(value)[-1] if _shape(value) else 0
        if channels != first.out_channels:
            continue
        while True:
            found = _single_user(value)
            if found is None:
                break
            user, index = found
            if isinstance(user, _HOMOGENEOUS) and index == 0 and len(user.results) == 1:
                if _shape(user.results[0]) != _shape(value):
                    break
                value = user.results[0]
                continue
            affine = user.get_trait(nn.AffineWeights)
            if affine is None or index != affine.input_operand:
                break
            second = layer(user)
            if second is None:
                break
            channel_index = second.input_channel_index(channels)
            if channel_index is not None:
                junctions.append(_Junction(first, second, channels, channel_index, needs_split))
            break
    return junctions


def _split_relu6(junction: _Junction) -> None:
    """The first layer's fused RELU6 becomes RELU followed by min(y, 6 / s) per channel."""
    op = junction.first.op
    value = op.results[0]
    bound = f32_constant(RELU6_BOUND / junction.scale)
    _named(bound, op, "relu6_bound")
    clip = nn.MinimumOp.create(operands=[value, bound.output], result_types=[value.type])
    _named(clip, op, "relu6")
    Rewriter.insert_op(bound, InsertPoint.after(op))
    Rewriter.insert_op(clip, InsertPoint.after(bound))
    value.replace_uses_with_if(clip.results[0], lambda use: use.operation is not clip)
    op.properties["fused_activation"] = StringAttr("RELU")


def equalize(func: FuncOp, relu6: str = "keep", iterations: int = 32) -> list[_Junction]:
    """Equalize every junction of `func` (see the module docstring); the junctions, with
    the total scale each applied."""
    junctions = find_junctions(func, relu6)
    for _ in range(iterations):
        largest = 0.0
        for j in junctions:
            largest = max(largest, j.equalize())
        if largest <= _CONVERGED:
            break
    written: set[int] = set()
    for j in junctions:
        for layer in (j.first, j.second):
            if id(layer) not in written:
                written.add(id(layer))
                layer.write_back()
        if j.relu6 and np.any(j.scale != 1.0):
            _split_relu6(j)
    return junctions


@dataclass(frozen=True)
class CrossLayerEqualization(ModulePass):
    """Rescale the channels between consecutive weight layers so their per-channel weight
    ranges match, the float function unchanged (see the module docstring)."""

    name = "cross-layer-equalization"

    relu6: str = "keep"
    iterations: int = 32

    def __post_init__(self) -> None:
        if self.relu6 not in RELU6_MODES:
            raise ValueError(
                f"relu6 must be one of {', '.join(RELU6_MODES)}, got {self.relu6!r}"
            )
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or not (
            1 <= self.iterations <= 10_000
        ):
            raise ValueError(f"iterations must be an integer in 1..10000, got {self.iterations!r}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for func in functions(op):
            equalize(func, self.relu6, self.iterations)
