"""legalize-fallback: float islands for ops that cannot run in int8.

An op that does not run in int8 (`nn.int8_capable` says no: its declaration is
`Fallback(reason)`, e.g. `nn.div`, or it is a custom `nn.generic`) keeps computing in float: each quantized operand is dequantized in front of it (`quant.dcast`), its results
get float types and are quantized back (`quant.qcast`) to the types infer-scales chose, so
its int8 neighbours are unchanged. A constant that feeds only float ops goes back to its
float type. Then `dcast(qcast(x))` pairs on float `x` are folded, so consecutive float ops
share one island and only the ops that must be float are float.

    %y = nn.div %a, %c : (tensor<4x!quant.uniform<i8:f32, 0.1>>, ...) -> tensor<4x!quant.uniform<...>>
becomes
    %a_f = quant.dcast %a : ... to tensor<4xf32>
    %y_f = nn.div %a_f, %c : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %y = quant.qcast %y_f : tensor<4xf32> to tensor<4x!quant.uniform<...>>
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint, Rewriter

from qcc.dialects import nn, quant
from qcc.passes.infer_scales import functions, requested_precision, with_element


def needs_float(op: Operation) -> bool:
    """Whether `op` must compute in float: an nn op that is not int8-capable
    (`nn.int8_capable`, the declaration's answer), or that asks for float
    (`qcc.precision = "float"`, e.g. set by assign-precision)."""
    if isinstance(op, nn.ConstantOp) or op.dialect_name() != "nn":
        return False
    return not nn.int8_capable(op)[0] or requested_precision(op) == "float"


def is_float_only_constant(
    op: Operation, computes_in_float: Callable[[Operation], bool] = needs_float
) -> bool:
    """A quantized-typed constant (float data) whose users all compute in float
    (`computes_in_float`: by default, the ops that must)."""
    return (
        isinstance(op, nn.ConstantOp)
        and quant.is_quantized(op.output.type)
        and not quant.is_quantized(op.value.get_type())
        and bool(op.output.uses)
        and all(computes_in_float(use.operation) for use in op.output.uses)
    )


def make_float(
    op: Operation, computes_in_float: Callable[[Operation], bool] = needs_float
) -> None:
    """Wrap `op` in dcast / qcast so that it computes in float. A constant operand whose
    users all compute in float (`computes_in_float`) goes back to its float type instead."""
    for index, value in enumerate(op.operands):
        if not quant.is_quantized(value.type):
            continue
        owner = value.owner
        if isinstance(owner, Operation) and is_float_only_constant(owner, computes_in_float):
            assert isinstance(owner, nn.ConstantOp)
            Rewriter.replace_value_with_new_type(owner.output, owner.value.get_type())
            continue
        cast = quant.DequantizeCastOp(value)
        cast.location = op.location
        Rewriter.insert_op(cast, InsertPoint.before(op))
        op.operands = [*op.operands[:index], cast.result, *op.operands[index + 1 :]]
    for result in list(op.results):
        qtype = result.type
        if not quant.is_quantized(qtype):
            continue
        assert isinstance(qtype, TensorType)
        element = qtype.get_element_type()
        float_result = Rewriter.replace_value_with_new_type(
            result, with_element(qtype, element.expressed_type)  # type: ignore[attr-defined]
        )
        cast = quant.QuantizeCastOp(float_result, element)  # type: ignore[arg-type]
        cast.location = op.location
        Rewriter.insert_op(cast, InsertPoint.after(op))
        float_result.replace_all_uses_with(cast.result)
        cast.operands = [float_result]


class FoldDequantizeOfQuantize(RewritePattern):
    """`dcast(qcast(x))` with float `x` -> `x`: neighbouring float ops share one island. The
    qcast may be a chain (`dcast(qcast_b(qcast_a(x)))`: a requantization infer-scales put in
    front of a same-scale op, e.g. a CONCATENATION input, int8 <-> int16): between two float
    ops it only rounds, so it goes too."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: quant.DequantizeCastOp, rewriter: PatternRewriter) -> None:
        chain: list[quant.QuantizeCastOp] = []
        producer = op.input.owner
        while isinstance(producer, quant.QuantizeCastOp):
            chain.append(producer)
            if not quant.is_quantized(producer.input.type):
                break
            producer = producer.input.owner
        if not chain or quant.is_quantized(chain[-1].input.type):
            return
        if chain[-1].input.type != op.result.type:
            return
        rewriter.replace(op, [], [chain[-1].input])
        for cast in chain:  # outermost first: each is erased once nothing reads it
            if cast.result.uses:
                break
            rewriter.erase(cast)


@dataclass(frozen=True)
class LegalizeFallback(ModulePass):
    """Make every op without an int8 kernel a float island between dcast/qcast."""

    name = "legalize-fallback"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        make_islands(op, needs_float)


def make_islands(module: ModuleOp, computes_in_float: Callable[[Operation], bool]) -> None:
    """Make every op of `module`'s functions for which `computes_in_float` holds a float
    island (`make_float`), then merge neighbouring islands (`FoldDequantizeOfQuantize`).
    legalize-fallback and legalize-target both write their islands with it."""
    for func in functions(module):
        for inner in list(func.body.blocks[0].ops):
            if computes_in_float(inner):
                make_float(inner, computes_in_float)
    PatternRewriteWalker(FoldDequantizeOfQuantize(), apply_recursively=False).rewrite_module(
        module
    )
