"""decompose-prelu: rewrite PRELU with a constant alpha into MUL and MAXIMUM (or RELU, SUB,
MUL, ADD). When every alpha is at most 1,

    prelu(x) = max(x, alpha * x)

exactly (x >= 0: x >= alpha·x; x < 0: alpha·x >= x). The identity holds for any alpha <= 1,
negative ones included. Otherwise (some alpha > 1)

    prelu(x) = relu(x) + alpha * (x - relu(x))

with RELU, SUB, MUL and ADD. Both forms are exact in float; in int8 each new op adds one
rounding. It runs before calibration, so every new tensor gets its own range.

It was written for LiteRT's XNNPACK path, which has no int8 PRELU; but XNNPACK (LiteRT 2.3.0)
takes int8 MAXIMUM and RELU no more than int8 PRELU (qcc/targets/xnnpack.json), so the
decomposed model still splits XNNPACK's graph. The `xnnpack` target's preset leaves it out
and makes PRELU a float island instead (legalize-target); the `numba` target's leaves it out
too (its runtime runs an int8 PRELU with a per-channel constant alpha as two rounded lines
per channel, `affine_chan_i8`, as fast as the decomposed form and with one rounding a side
instead of two to four). It stays in the presets of the `reference` and `int8-only` targets
(`--keep-prelu` removes it), which produce what the int8 presets produced before targets.

    %y = nn.prelu %x, %alpha : (...) -> tensor<1x8x8x16xf32> loc("p")
becomes (every alpha <= 1)
    %ax = nn.mul %x, %alpha {fused_activation = "NONE"} : ... loc("p/alpha_x")
    %y = nn.maximum %x, %ax : ... loc("p")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NameLoc, NoneAttr, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qcc.dialects import nn


def _constant_alpha(op: nn.PReluOp) -> np.ndarray | None:
    owner = op.alpha.owner
    if not isinstance(owner, nn.ConstantOp):
        return None
    data = owner.value
    if data.get_element_type() != op.alpha.type.get_element_type():
        return None
    try:
        return np.asarray(data.get_values(), dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _named(op: Operation, base: Operation, suffix: str) -> Operation:
    loc = base.location
    if isinstance(loc, NameLoc):
        op.location = NameLoc(StringAttr(f"{loc.desc.data}/{suffix}"), NoneAttr())
    return op


class DecomposePRelu(RewritePattern):
    """prelu(x, alpha) → maximum(x, alpha·x) if alpha <= 1, else relu(x) + alpha·(x − relu(x))."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.PReluOp, rewriter: PatternRewriter) -> None:
        alpha = _constant_alpha(op)
        if alpha is None or op.input.type != op.output.type:
            return
        t = op.output.type
        none = {"fused_activation": StringAttr("NONE")}
        if alpha.size and alpha.max() <= 1.0:
            scaled = _named(
                nn.MulOp.create(operands=[op.input, op.alpha], result_types=[t], properties=none),
                op, "alpha_x",
            )
            result = nn.MaximumOp.create(operands=[op.input, scaled.results[0]], result_types=[t])
            new_ops = [scaled, result]
        else:
            relu = _named(nn.ReluOp.create(operands=[op.input], result_types=[t]), op, "pos")
            negative = _named(
                nn.SubOp.create(operands=[op.input, relu.results[0]], result_types=[t],
                                properties=none),
                op, "neg",
            )
            scaled = _named(
                nn.MulOp.create(operands=[negative.results[0], op.alpha], result_types=[t],
                                properties=none),
                op, "alpha_neg",
            )
            result = nn.AddOp.create(
                operands=[relu.results[0], scaled.results[0]], result_types=[t], properties=none
            )
            new_ops = [relu, negative, scaled, result]
        result.location = op.location
        rewriter.replace(op, new_ops, [result.results[0]])


@dataclass(frozen=True)
class DecomposePReluPass(ModulePass):
    """Rewrite constant-alpha PRELU into MUL + MAXIMUM (or RELU/SUB/MUL/ADD)."""

    name = "decompose-prelu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DecomposePRelu(), apply_recursively=False).rewrite_module(op)
