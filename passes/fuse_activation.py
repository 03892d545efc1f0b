"""fuse-activation: fold a standalone RELU / RELU6 / RELU_N1_TO_1 into its producer.

    %0 = nn.conv2d %x, %w, %b {..., fused_activation = "NONE"} : ... loc("conv")
    %1 = nn.relu %0 : ... loc("relu")
becomes
    %1 = nn.conv2d %x, %w, %b {..., fused_activation = "RELU"} : ... loc("relu")

when the producer has a `fused_activation` property set to "NONE" and the activation is its
only user. TFLite's converter performs the same fusion; for quantization it matters because the
fused op writes its int8 output once, clamped to the activation's range, instead of producing
an intermediate tensor whose scale must cover values the activation then discards.
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

_ACTIVATION_OF = {nn.ReluOp: "RELU", nn.Relu6Op: "RELU6", nn.ReluN1To1Op: "RELU_N1_TO_1"}


class FuseActivationIntoProducer(RewritePattern):
    """Rewrites `act(producer(...))` into `producer(...){fused_activation = act}`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, op: nn.ReluOp | nn.Relu6Op | nn.ReluN1To1Op, rewriter: PatternRewriter
    ) -> None:
        producer = op.input.owner
        if not isinstance(producer, nn.NNOp) or len(producer.results) != 1:
            return
        if isinstance(producer, nn.ConcatenationOp):  # LiteRT rejects int8 concat + activation
            return
        current = producer.properties.get("fused_activation")
        if not isinstance(current, StringAttr) or current.data != "NONE":
            return
        if producer.results[0].uses.get_length() != 1:
            return
        if producer.results[0].type != op.output.type:
            return
        producer.properties["fused_activation"] = StringAttr(_ACTIVATION_OF[type(op)])
        producer.location = op.location
        rewriter.notify_op_modified(producer)
        rewriter.replace(op, [], [producer.results[0]])


@dataclass(frozen=True)
class FuseActivation(ModulePass):
    """Fold standalone ReLU-family activations into the op that produces their input."""

    name = "fuse-activation"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FuseActivationIntoProducer(), apply_recursively=False).rewrite_module(op)
