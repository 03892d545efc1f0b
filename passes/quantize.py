"""quantize: materialize the quantized types chosen by infer-scales.

  * an `nn.constant` whose result type is quantized but whose `value` is still float gets
    its integer storage data: weights round(w / scale[c]) clamped to [-127, 127], biases
    int32 round(b / scale[c]), other constants round(x / s) + zp clamped to the storage
    range (rounding half away from zero, as TFLite's converter does);
  * `quant.qcast` of a constant folds into a quantized constant;
  * leftover `quant.stats` ops are removed.

A constant holding inf or NaN cannot be quantized: the pass fails with one line naming the
constant's location (infer-scales reports it first in the preset pipelines).

After this pass the module is what `qcc.backends.tflite.export_tflite` writes.

    %w = nn.constant {value = dense<[0.5, -1.0]> : tensor<2xf32>}
           : tensor<2x!quant.uniform<i8<-127:127>:f32, 0.0078740157186985016>>
becomes
    %w = nn.constant {value = dense<[64, -127]> : tensor<2xi8>}
           : tensor<2x!quant.uniform<i8<-127:127>:f32, 0.0078740157186985016>>
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, BytesAttr, DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException
from xdsl.ir import Operation
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qcc.dialects import nn, quant
from qcc.dialects.ir import decode_dense
from qcc.dialects.quant import QuantizedType
from qcc.passes import _quant_math as qm
from qcc.passes.infer_scales import where


def storage_attr(stored: np.ndarray, qtype: QuantizedType) -> DenseIntOrFPElementsAttr:
    """A bytes-backed dense attribute of the storage integers."""
    ttype = TensorType(qtype.storage_type, stored.shape)
    data = np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("<")).tobytes()
    return DenseIntOrFPElementsAttr(ttype, BytesAttr(data))


def finite_values(const: nn.ConstantOp, qtype: QuantizedType, user: Operation) -> np.ndarray:
    """The float values of `const`, to be quantized to `qtype` for `user`; an error naming
    the constant unless they are all finite."""
    values = np.asarray(decode_dense(const.value), dtype=np.float64)
    bad = qm.non_finite_count(values)
    if bad:
        what = "" if user is const else f" for {where(user)}"
        raise PassFailedException(
            f"{where(const)}: {bad} of {values.size} values are inf or NaN: cannot quantize "
            f"them to {qtype}{what}"
        )
    return values


def element_of(t: object) -> QuantizedType | None:
    if isinstance(t, TensorType) and isinstance(t.get_element_type(), QuantizedType):
        return t.get_element_type()  # type: ignore[return-value]
    return None


class _StoredConstants:
    """The storage attributes `QuantizeConstantValue` made, by (float value, quantized type),
    most recent last, up to `budget` bytes of data (the float values' and the storage's,
    both kept alive here): attributes are immutable, and a
    precision search quantizes the same weights to the same types once per candidate it
    measures (~80 ms a run on iris_landmark's weights; a hit costs a hash of bytes Python
    keeps and a comparison). Only successes are kept: a value with inf or NaN fails (with
    its constant's location) every time."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self.entries: OrderedDict[tuple, DenseIntOrFPElementsAttr] = OrderedDict()

    def get(self, key: tuple) -> DenseIntOrFPElementsAttr | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    @staticmethod
    def _bytes(key: tuple, stored: DenseIntOrFPElementsAttr) -> int:
        """The float value's bytes (the key's first item) and the stored ones."""
        return len(key[0].data.data) + len(stored.data.data)

    def put(self, key: tuple, stored: DenseIntOrFPElementsAttr) -> None:
        size = self._bytes(key, stored)
        if size > self.budget or key in self.entries:
            return
        self.entries[key] = stored
        self.size += size
        while self.size > self.budget:
            dropped_key, dropped = self.entries.popitem(last=False)
            self.size -= self._bytes(dropped_key, dropped)


STORED_CONSTANTS = _StoredConstants(budget=64 << 20)


class QuantizeConstantValue(RewritePattern):
    """Float `value` + quantized result type -> integer storage `value` (made once per value
    and type: `STORED_CONSTANTS`)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ConstantOp, rewriter: PatternRewriter) -> None:
        qtype = element_of(op.output.type)
        if qtype is None or not isinstance(op.value.get_element_type(), AnyFloat):
            return
        key = (op.value, qtype)
        attr = STORED_CONSTANTS.get(key)
        if attr is None:
            attr = storage_attr(qm.quantize_values(finite_values(op, qtype, op), qtype), qtype)
            STORED_CONSTANTS.put(key, attr)
        new = nn.ConstantOp(attr, op.output.type)
        new.location = op.location
        rewriter.replace(op, new)


class FoldQuantizeOfConstant(RewritePattern):
    """`quant.qcast(nn.constant)` -> a constant of the quantized type."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: quant.QuantizeCastOp, rewriter: PatternRewriter) -> None:
        const = op.input.owner
        if not isinstance(const, nn.ConstantOp):
            return
        qtype = element_of(op.result.type)
        assert qtype is not None
        source = element_of(const.output.type)
        if source is not None:
            if isinstance(const.value.get_element_type(), AnyFloat):
                return  # quantized by QuantizeConstantValue first
            values = np.asarray(decode_dense(const.value), dtype=np.float64)
            values = qm.dequantize_values(values, source)
        else:
            values = finite_values(const, qtype, op)
        new = nn.ConstantOp(storage_attr(qm.quantize_values(values, qtype), qtype), op.result.type)
        new.location = const.location
        rewriter.replace(op, new)


class EraseStats(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: quant.StatsOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, [], [op.input])


@dataclass(frozen=True)
class Quantize(ModulePass):
    """Turn "to be quantized" constants into integer storage, fold quantized constants,
    drop leftover calibration stats."""

    name = "quantize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [QuantizeConstantValue(), FoldQuantizeOfConstant(), EraseStats()]
            ),
        ).rewrite_module(op)
