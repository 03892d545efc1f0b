"""infer-scales: calibration ranges + op constraints -> quantized types.

Input: float IR in which every float activation (function argument, op result) is followed by
a `quant.stats` op carrying its `[min, max]` (what `annotate-ranges` writes). Output: the
same program with quantized value types, decided by one propagation driver that reads the
quantization traits declared on the ops (dialects/nn.py), never op names:

  * activations: int8 per tensor, asymmetric, from their stats (TFLITE_INT8_SPEC.md §1.1);
  * `AffineWeights` ops: weights int8 symmetric narrow [-127, 127], per axis on the trait's
    axis (per tensor when the trait marks per-axis optional and `per-channel-fc=false`);
    bias int32 with scale float32(input_scale * weight_scale[c]), zero point 0;
  * `SameScale` ops: the result takes its input's type; with several inputs (concatenation,
    maximum, a PADV2 pad value, ...) the result type comes from the op's own stats (else the
    union of the input ranges), and inputs with other parameters are requantized by an
    int8 -> int8 `quant.qcast` (TFLite's QUANTIZE); constants are quantized to it directly;
  * `FixedOutputRange` ops: the trait's (scale, zero point), e.g. logistic 1/256:-128;
  * other ops: the result's stats; other float constants (a PRELU alpha, a broadcast ADD
    operand): int8 per tensor asymmetric from their values. Integer tensors stay;
  * kernel preconditions (the `QuantTrait`s of nn.py, `nn.KERNEL_PRECONDITIONS`): a result
    whose scale breaks one (HARD_SWISH needs input_scale / 128 / output_scale < 1, ADD
    2 * max(input scales) / (2^20 * output_scale) < 1, ...) is widened past the trait's
    `min_result_scale` (with `nn.MULTIPLIER_MARGIN` for QuantizeMultiplier's rounding),
    its zero point re-nudged for the calibrated range; a same-scale consumer never
    imposes its type on a producer whose preconditions the type would break.

Types change in place; constants keep their float `value` until `quantize`. A `quant.qcast`
follows each float function argument and a `quant.dcast` precedes each returned value, so
the signature stays float (`modify-io` changes that). The `quant.stats` ops are erased.
A float value that has neither stats nor a rule is an error naming the op and location, and
so is anything that cannot be quantized: a constant holding inf or NaN, a calibration range
that is not finite, a bias scale that underflows float32, a precondition no result scale
can meet (one line each, e.g. `loc("fc/weights"): 'nn.constant' op: 1 of 8 values are inf
or NaN (weights of 'nn.fully_connected' at loc("fc")): cannot quantize it`).

    %s = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
    %y = nn.logistic %s : (tensor<4xf32>) -> tensor<4xf32>
becomes
    %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
    %y = nn.logistic %q : (...) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>>
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, ModuleOp, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from qcc.dialects import nn, quant
from qcc.dialects.ir import decode_dense, location_text
from qcc.dialects.quant import QuantizedType, UniformQuantizedType
from qcc.passes import _quant_math as qm


def where(op: Operation) -> str:
    """`loc("name"): 'nn.x' op` (or without the location), the prefix of every message."""
    loc = location_text(op.location)
    prefix = f'loc("{loc}"): ' if loc is not None else ""
    return f"{prefix}'{op.name}' op"


def is_float_tensor(t: Attribute) -> bool:
    return isinstance(t, TensorType) and isinstance(t.get_element_type(), AnyFloat)


def with_element(t: Attribute, element: Attribute) -> TensorType:
    assert isinstance(t, TensorType)
    return TensorType(element, t.get_shape())


def float_constant(value: SSAValue) -> nn.ConstantOp | None:
    """The `nn.constant` defining `value` if it still holds float data, else None."""
    owner = value.owner
    if isinstance(owner, nn.ConstantOp) and isinstance(
        owner.value.get_element_type(), AnyFloat
    ):
        return owner
    return None


def constant_values(const: nn.ConstantOp) -> np.ndarray:
    return np.asarray(decode_dense(const.value), dtype=np.float64)


def finite_constant_values(const: nn.ConstantOp, user: Operation, what: str) -> np.ndarray:
    """The values of `const`, which `user` takes as `what`; an error naming both unless
    they are all finite."""
    values = constant_values(const)
    bad = qm.non_finite_count(values)
    if bad:
        loc = location_text(user.location)
        at = f' at loc("{loc}")' if loc is not None else ""
        raise PassFailedException(
            f"{where(const)}: {bad} of {values.size} values are inf or NaN ({what} of "
            f"'{user.name}'{at}): cannot quantize it"
        )
    return values


def functions(module: ModuleOp) -> list[FuncOp]:
    return [op for op in module.walk() if isinstance(op, FuncOp) and op.body.blocks]


@dataclass
class _Plan:
    """What the driver decided for one function, applied once decisions are complete."""

    values: dict[SSAValue, QuantizedType] = field(default_factory=dict)
    constants: dict[tuple[Operation, int], QuantizedType] = field(default_factory=dict)
    requantize: list[tuple[Operation, int, QuantizedType]] = field(default_factory=list)


@dataclass
class _Driver:
    func: FuncOp
    per_channel_fc: bool
    stats: dict[SSAValue, tuple[float, float]] = field(default_factory=dict)
    plan: _Plan = field(default_factory=_Plan)

    # ---------------------------------------------------------------- stats

    def take_stats(self) -> None:
        for op in list(self.func.walk()):
            if not isinstance(op, quant.StatsOp):
                continue
            lo, hi = op.layer_min_max
            if op.input in self.stats:
                old = self.stats[op.input]
                lo, hi = min(lo, old[0]), max(hi, old[1])
            self.stats[op.input] = (float(lo), float(hi))
            op.result.replace_all_uses_with(op.input)
            Rewriter.erase_op(op)

    def from_stats(self, value: SSAValue, op: Operation, what: str) -> UniformQuantizedType:
        if value not in self.stats:
            raise PassFailedException(
                f"{where(op)} {what} has no calibration range (quant.stats) and no "
                "quantization rule fixes it"
            )
        return self.range_type(*self.stats[value], op=op, what=what)

    @staticmethod
    def range_type(lo: float, hi: float, *, op: Operation, what: str) -> UniformQuantizedType:
        try:
            return qm.activation_type(lo, hi)
        except qm.QuantizationError as e:
            raise PassFailedException(
                f"{where(op)} {what}: calibration {e}: cannot quantize it"
            ) from None

    # ---------------------------------------------------------------- decisions

    def type_of(self, value: SSAValue) -> QuantizedType:
        return self.plan.values[value]

    def decide(self) -> None:
        block = self.func.body.blocks[0]
        for i, arg in enumerate(block.args):
            if is_float_tensor(arg.type):
                self.plan.values[arg] = self.from_stats(arg, self.func, f"argument #{i}")
        for op in block.ops:
            if isinstance(op, nn.ConstantOp | ReturnOp | quant.QuantizeCastOp | quant.DequantizeCastOp):
                continue
            self.decide_op(op)

    def activation_operands(self, op: Operation) -> list[int]:
        return [
            i
            for i, v in enumerate(op.operands)
            if is_float_tensor(v.type) and float_constant(v) is None
        ]

    def constant_operands(self, op: Operation) -> list[int]:
        return [i for i, v in enumerate(op.operands) if float_constant(v) is not None]

    def float_results(self, op: Operation) -> list[SSAValue]:
        return [r for r in op.results if is_float_tensor(r.type)]

    def decide_op(self, op: Operation) -> None:
        acts = self.activation_operands(op)
        consts = self.constant_operands(op)
        for i in acts:
            if op.operands[i] not in self.plan.values:
                raise PassFailedException(
                    f"{where(op)} operand #{i} is a float value with no quantized type"
                )
        affine = op.get_trait(nn.AffineWeights)
        fixed = op.get_trait(nn.FixedOutputRange)
        if affine is not None:
            consts = self.decide_affine(op, affine, consts)
        if op.has_trait(nn.SameScale):
            self.decide_same_scale(op, acts, consts)
            return
        for i in consts:
            const = float_constant(op.operands[i])
            assert const is not None
            values = finite_constant_values(const, op, f"operand #{i}")
            self.plan.constants[(op, i)] = qm.values_type(values)
        for k, result in enumerate(self.float_results(op)):
            if fixed is not None:
                self.plan.values[result] = UniformQuantizedType.get(
                    qm.to_f32(fixed.scale), fixed.zero_point
                )
            else:
                out_t = self.from_stats(result, op, f"result #{k}")
                self.plan.values[result] = self.satisfy_preconditions(op, result, out_t)

    def decide_affine(self, op: Operation, affine: nn.AffineWeights, consts: list[int]) -> list[int]:
        """Weights and bias of a conv/FC; returns the constant operands still undecided."""
        if affine.weight_operand >= len(op.operands):
            return consts
        weights = float_constant(op.operands[affine.weight_operand])
        if weights is None:
            raise PassFailedException(
                f"{where(op)} weights (operand #{affine.weight_operand}) must be a float constant"
            )
        axis: int | None = affine.axis
        if affine.per_axis_optional and not self.per_channel_fc:
            axis = None
        weight_t = qm.weight_type(finite_constant_values(weights, op, "weights"), axis)
        self.plan.constants[(op, affine.weight_operand)] = weight_t
        done = {affine.weight_operand}
        if affine.bias_operand < len(op.operands):
            bias = float_constant(op.operands[affine.bias_operand])
            if bias is None:
                raise PassFailedException(
                    f"{where(op)} bias (operand #{affine.bias_operand}) must be a float constant"
                )
            finite_constant_values(bias, op, "bias")
            input_t = self.type_of(op.operands[affine.input_operand])
            assert isinstance(input_t, UniformQuantizedType)
            try:
                bias_t = qm.bias_type(input_t.scale, weight_t)
            except qm.QuantizationError as e:
                raise PassFailedException(f"{where(op)} {e}: cannot quantize the bias") from None
            self.plan.constants[(op, affine.bias_operand)] = bias_t
            done.add(affine.bias_operand)
        return [i for i in consts if i not in done]

    def decide_same_scale(self, op: Operation, acts: list[int], consts: list[int]) -> None:
        results = self.float_results(op)
        if len(acts) == 1 and not consts:
            out_t = self.type_of(op.operands[acts[0]])
        else:
            # One type for every input and the output: it must cover all of them.
            ranges = [self.stats[r] for r in results if r in self.stats]
            for i in acts:
                value = op.operands[i]
                ranges.append(
                    self.stats[value] if value in self.stats
                    else qm.range_of(self.type_of(value))  # type: ignore[arg-type]
                )
            for i in consts:
                const = float_constant(op.operands[i])
                assert const is not None
                values = finite_constant_values(const, op, f"operand #{i}")
                if values.size:
                    ranges.append((float(values.min()), float(values.max())))
            if not ranges:
                raise PassFailedException(
                    f"{where(op)} has no calibration range and no quantized input"
                )
            lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            out_t = self.range_type(lo, hi, op=op, what="the shared input/result type")
            for i in acts:
                value = op.operands[i]
                if self.type_of(value) == out_t:
                    continue
                if self.can_retarget(value, op, out_t):
                    self.plan.values[value] = out_t  # the producer writes the shared type
                else:
                    self.plan.requantize.append((op, i, out_t))
            for i in consts:
                self.plan.constants[(op, i)] = out_t
        for result in results:
            self.plan.values[result] = out_t

    def can_retarget(self, value: SSAValue, consumer: Operation, qtype: QuantizedType) -> bool:
        """Whether `value` may take the type a same-scale consumer needs, instead of being
        requantized in front of it (TFLite's quantization driver propagates backwards the
        same way). Its producer must choose its output scale freely (no SameScale or
        FixedOutputRange trait) and keep its kernel preconditions with `qtype`, and no
        other user may have derived anything from its current type (an affine op's bias
        scale, a same-scale op's output)."""
        producer = value.owner
        if not isinstance(producer, Operation) or isinstance(producer, nn.ConstantOp):
            return False
        if producer.dialect_name() != "nn" or len(producer.results) != 1:
            return False
        if producer.has_trait(nn.SameScale) or producer.has_trait(nn.FixedOutputRange):
            return False
        if nn.quant_violations(producer, self.planned_types(producer, {value: qtype})):
            return False  # e.g. a HARD_SWISH whose kernel needs a coarser output scale
        for use in value.uses:
            user = use.operation
            if user is consumer:
                continue
            if user.has_trait(nn.SameScale) or user.has_trait(nn.AffineWeights):
                return False
            if not isinstance(user, nn.NNOp):
                return False
        return True

    def planned_types(
        self, op: Operation, extra: dict[SSAValue, QuantizedType] | None = None
    ) -> nn.QuantTypes:
        """`op`'s quantized types as planned so far (constants by use), with `extra`."""
        planned = {**self.plan.values, **(extra or {})}
        types = nn.QuantTypes.of(op, planned)
        operands = tuple(
            self.plan.constants.get((op, i), t) for i, t in enumerate(types.operands)
        )
        return nn.QuantTypes(operands, types.results)

    def satisfy_preconditions(
        self, op: Operation, result: SSAValue, out_t: UniformQuantizedType
    ) -> UniformQuantizedType:
        """`out_t`, widened until `op`'s kernel preconditions hold (its traits'
        `min_result_scale`); an error naming the op if no wider scale helps."""
        for _ in range(4):
            types = self.planned_types(op, {result: out_t})
            violations = nn.quant_violations(op, types)
            if not violations:
                return out_t
            bound = nn.min_result_scale(op, types)
            if bound <= out_t.scale:
                break
            try:
                out_t = qm.widened_type(out_t, bound, self.stats.get(result))
            except qm.QuantizationError as e:
                raise PassFailedException(f"{where(op)} {violations[0]}: {e}") from None
        raise PassFailedException(f"{where(op)} {violations[0]}")

    # ---------------------------------------------------------------- rewrite

    def apply(self) -> None:
        block = self.func.body.blocks[0]
        self.apply_constants()
        for arg in block.args:
            qtype = self.plan.values.get(arg)
            if qtype is None:
                continue
            cast = quant.QuantizeCastOp(arg, qtype)
            Rewriter.insert_op(cast, InsertPoint.at_start(block))
            arg.replace_all_uses_with(cast.result)
            cast.operands = [arg]
        for value, qtype in self.plan.values.items():
            if value.owner is block:
                continue
            Rewriter.replace_value_with_new_type(value, with_element(value.type, qtype))
        for op, index, qtype in self.plan.requantize:
            cast = quant.QuantizeCastOp(op.operands[index], qtype)
            cast.location = op.location
            Rewriter.insert_op(cast, InsertPoint.before(op))
            op.operands = [*op.operands[:index], cast.result, *op.operands[index + 1 :]]
        ret = block.last_op
        if isinstance(ret, ReturnOp):
            operands = list(ret.operands)
            for k, v in enumerate(operands):
                if quant.is_quantized(v.type):
                    cast = quant.DequantizeCastOp(v)
                    Rewriter.insert_op(cast, InsertPoint.before(ret))
                    operands[k] = cast.result
            ret.operands = operands

    def apply_constants(self) -> None:
        by_constant: dict[nn.ConstantOp, list[tuple[Operation, int, QuantizedType]]] = {}
        for (op, index), qtype in self.plan.constants.items():
            const = float_constant(op.operands[index])
            assert const is not None
            by_constant.setdefault(const, []).append((op, index, qtype))
        for const, uses in by_constant.items():
            all_uses = const.output.uses.get_length()
            types = list(dict.fromkeys(qtype for _, _, qtype in uses))
            for n, qtype in enumerate(types):
                if n == 0 and all_uses == len(uses):
                    Rewriter.replace_value_with_new_type(
                        const.output, with_element(const.output.type, qtype)
                    )
                    continue
                clone = nn.ConstantOp(const.value, with_element(const.output.type, qtype))
                clone.location = const.location
                Rewriter.insert_op(clone, InsertPoint.after(const))
                for op, index, t in uses:
                    if t == qtype:
                        op.operands = [*op.operands[:index], clone.output, *op.operands[index + 1 :]]
            if not const.output.uses:
                Rewriter.erase_op(const)


@dataclass(frozen=True)
class InferScales(ModulePass):
    """Give every float activation, weight and bias its quantized type, from the calibration
    ranges (`quant.stats`) and the quantization traits of the ops.

    Options:
      per_channel_fc: FULLY_CONNECTED weights per output row (true, default) or per tensor
        (false, the TFLite spec table's choice).
    """

    name = "infer-scales"

    per_channel_fc: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for func in functions(op):
            driver = _Driver(func, self.per_channel_fc)
            driver.take_stats()
            driver.decide()
            driver.apply()
            for inner in func.walk():
                # what the verifier would refuse, reported with the op's location
                for violation in nn.quant_violations(inner):
                    raise PassFailedException(f"{where(inner)} {violation}")
