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

int16 activations (TFLite's "16x8" kernels; the conventions are docs/ir.md's "int16
activations" section). An op with the discardable attribute `qcc.precision = "int16"`
(`request_int16(op)`, or this pass's `int16` option) computes with int16 activations: its
activations are int16 per tensor, symmetric (scale max|range| / 32767, zero point 0), its
weights int8 as above, its bias int64 (scale input_scale * weight_scale[c]), a fixed output
range takes the trait's int16 parameters (LOGISTIC 1/32768, 0), PRELU's alpha stays int8
(`Int8OperandsIn16x8`), other constants are int16. A `SameScale` op whose activation inputs
are all int16 follows them (int16, same type) unless it asks for "int8" or TFLite has no
16x8 kernel for it. Where a value's precision differs from its consumer's, a `quant.qcast`
converts it (int8 <-> int16, TFLite QUANTIZE), with a type from the value's calibration range,
one per value and type; a model input feeding int16 ops is quantized to int16 directly. The
request is refused, one line naming the op, where its declaration lacks "int16x8" or qcc
keeps the op float. Nothing changes for a module without requests.

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
from xdsl.dialects.builtin import (
    AnyFloat,
    DictionaryAttr,
    ModuleOp,
    NameLoc,
    NoneAttr,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from qcc.dialects import nn, quant
from qcc.dialects.ir import decode_dense, location_text
from qcc.dialects.quant import QuantizedType, UniformQuantizedType
from qcc.passes import _quant_math as qm


PRECISION_ATTR = "qcc.precision"
"""The discardable attribute (a string) in which an nn op asks for its precision: "int16"
(int16 activations, int8 weights: TFLite's 16x8 kernels), "int8", or "float" (a float
island: infer-scales types it as int8, legalize-target / legalize-fallback make it float,
verify-int8 refuses it, bias-correction leaves its bias alone). `assign-precision` sets it."""

PRECISIONS = ("int8", "int16", "float")
"""The values `PRECISION_ATTR` may take."""


def requested_precision(op: Operation) -> str | None:
    """The precision `op` asks for (`PRECISION_ATTR`), None if it asks for none. Raises
    ValueError for an attribute that is not one of `PRECISIONS`."""
    attr = op.attributes.get(PRECISION_ATTR)
    if attr is None:
        return None
    if not isinstance(attr, StringAttr) or attr.data not in PRECISIONS:
        got = f'"{attr.data}"' if isinstance(attr, StringAttr) else str(attr)
        raise ValueError(f'{PRECISION_ATTR} must be "int8", "int16" or "float", got {got}')
    return attr.data


def int16_capable(op: Operation) -> tuple[bool, str]:
    """Can `op` compute with int16 activations and int8 weights? (True, "") or (False, why),
    `why` one line: the op's declaration must list "int16x8" among the precisions TFLite's
    kernels accept, and qcc must quantize the op at all (`nn.int8_capable`)."""
    spec = nn.op_spec(op)
    if spec is None or spec.builtin is None:
        return False, f"'{op.name}' is not an nn op that TFLite runs"
    if "int16x8" not in spec.precisions:
        listed = ", ".join(spec.precisions) or "none"
        return False, (
            f"TFLite has no int16 (16x8) kernel for {spec.builtin} (its declaration lists "
            f"{listed} only)"
        )
    capable, why = nn.int8_capable(op)
    if not capable:
        return False, f"qcc keeps {op.name} float ({why})"
    return True, ""


def request_int16(op: Operation) -> None:
    """Ask for int16 activations on `op` (sets `qcc.precision = "int16"`, which infer-scales
    honours); ValueError with the reason where `op` cannot have them (`int16_capable`)."""
    capable, why = int16_capable(op)
    if not capable:
        raise ValueError(why)
    op.attributes[PRECISION_ATTR] = StringAttr("int16")


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


def observed_extent(stats: quant.StatsOp) -> tuple[float, float] | None:
    """The extent of a `quant.stats` histogram's non-empty bins (it covers every observed
    value), None without a histogram or counts."""
    counts, rng = stats.histogram_counts, stats.histogram_min_max
    if counts is None or rng is None:
        return None
    nonzero = np.flatnonzero(np.asarray(counts, dtype=np.int64))
    if not nonzero.size:
        return None
    first, last = int(nonzero[0]), int(nonzero[-1])
    width = (rng[1] - rng[0]) / len(counts)
    return float(rng[0] + first * width), float(rng[0] + (last + 1) * width)


def functions(module: ModuleOp) -> list[FuncOp]:
    return [op for op in module.walk() if isinstance(op, FuncOp) and op.body.blocks]


@dataclass
class _Plan:
    """What the driver decided for one function, applied once decisions are complete.

    `requantize`: operands that get a `quant.qcast` to another type in front of their op
    (a same-scale op's shared type, or the op's precision: int8 <-> int16), in the order
    the ops were decided."""

    values: dict[SSAValue, QuantizedType] = field(default_factory=dict)
    constants: dict[tuple[Operation, int], QuantizedType] = field(default_factory=dict)
    requantize: dict[tuple[Operation, int], QuantizedType] = field(default_factory=dict)


@dataclass
class _Driver:
    func: FuncOp
    per_channel_fc: bool
    stats: dict[SSAValue, tuple[float, float]] = field(default_factory=dict)
    observed: dict[SSAValue, tuple[float, float]] = field(default_factory=dict)
    """The full observed range of a value (its histogram's non-empty extent), where it
    differs from `stats` (a `percentile` or `mse` range): int16 types use it."""
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
            extent = observed_extent(op)
            if extent is not None:
                old = self.observed.get(op.input, extent)
                self.observed[op.input] = (min(extent[0], old[0]), max(extent[1], old[1]))
            op.result.replace_all_uses_with(op.input)
            Rewriter.erase_op(op)

    def from_stats(
        self, value: SSAValue, op: Operation, what: str, bits: int = 8
    ) -> UniformQuantizedType:
        rng = self.range_of(value, bits)
        if rng is None:
            raise PassFailedException(
                f"{where(op)} {what} has no calibration range (quant.stats) and no "
                "quantization rule fixes it"
            )
        return self.range_type(*rng, op=op, what=what, bits=bits)

    def range_of(self, value: SSAValue, bits: int = 8) -> tuple[float, float] | None:
        """The calibration range of `value` for a type of `bits`-wide storage: the range
        annotate-ranges chose (`layer_stats`) for int8; for int16 the whole observed range
        (covering `layer_stats` too), as TFLite's 16x8 quantizer takes min and max: the
        clipping `percentile` and `mse` trade for int8's 256 steps is no bargain with
        65536 (at -1.0 / 1.0 and a 0.999 range, clipping costs more than int16 rounding)."""
        rng = self.stats.get(value)
        if rng is None or bits != qm.INT16_BITS or value not in self.observed:
            return rng
        full = self.observed[value]
        return min(rng[0], full[0]), max(rng[1], full[1])

    @staticmethod
    def range_type(
        lo: float, hi: float, *, op: Operation, what: str, bits: int = 8
    ) -> UniformQuantizedType:
        """int8 (asymmetric) or, with `bits` 16, int16 (symmetric) for [lo, hi]."""
        try:
            return qm.activation_type_of(lo, hi, bits)
        except qm.QuantizationError as e:
            raise PassFailedException(
                f"{where(op)} {what}: calibration {e}: cannot quantize it"
            ) from None

    # ---------------------------------------------------------------- decisions

    def type_of(self, value: SSAValue) -> QuantizedType:
        return self.plan.values[value]

    def operand_type(self, op: Operation, index: int) -> QuantizedType:
        """The type operand `index` of `op` will have: its value's, or the type it is
        requantized to in front of `op`."""
        requantized = self.plan.requantize.get((op, index))
        return requantized if requantized is not None else self.type_of(op.operands[index])

    def check_requests(self) -> None:
        """Every `qcc.precision` attribute is valid, and int16 only where it can be."""
        for op in self.func.body.blocks[0].ops:
            try:
                precision = requested_precision(op)
            except ValueError as e:
                raise PassFailedException(f"{where(op)}: {e}") from None
            if precision != "int16":
                continue
            capable, why = int16_capable(op)
            if not capable:
                raise PassFailedException(
                    f'{where(op)}: {PRECISION_ATTR} = "int16" requested, but {why}'
                )

    def precision(self, op: Operation, acts: list[int]) -> int:
        """The storage width of `op`'s activations: 16 when it asks for int16, or when it
        is a same-scale op whose activation inputs are all int16 (it follows its producers)
        and TFLite has a 16x8 kernel for it, unless it asks for int8; else 8."""
        requested = requested_precision(op)
        if requested is not None:
            return 16 if requested == "int16" else 8
        if (
            op.has_trait(nn.SameScale)
            and acts
            and all(qm.is_int16(self.type_of(op.operands[i])) for i in acts)
            and int16_capable(op)[0]
        ):
            return 16
        return 8

    def convert(self, op: Operation, index: int, bits: int) -> None:
        """Requantize operand `index` of `op` to the op's precision (`bits`), with a type
        from the value's calibration range (else the range of its current type)."""
        value = op.operands[index]
        rng = self.range_of(value, bits)
        if rng is None:
            current = self.type_of(value)
            assert isinstance(current, UniformQuantizedType)
            rng = qm.range_of(current)
        self.plan.requantize[(op, index)] = self.range_type(
            *rng, op=op, what=f"operand #{index}", bits=bits
        )

    def decide(self) -> None:
        block = self.func.body.blocks[0]
        self.check_requests()
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
        bits = self.precision(op, acts)
        for i in acts:
            if self.operand_type(op, i).storage_bits != bits:
                self.convert(op, i, bits)  # int8 <-> int16
        if affine is not None:
            consts = self.decide_affine(op, affine, consts, bits)
        if op.has_trait(nn.SameScale):
            self.decide_same_scale(op, acts, consts, bits)
            return
        int8_operands = op.get_trait(nn.Int8OperandsIn16x8)
        for i in consts:
            const = float_constant(op.operands[i])
            assert const is not None
            values = finite_constant_values(const, op, f"operand #{i}")
            int8 = int8_operands is not None and i in int8_operands.operands
            try:
                self.plan.constants[(op, i)] = qm.values_type(values, 8 if int8 else bits)
            except qm.QuantizationError as e:
                raise PassFailedException(
                    f"{where(op)} operand #{i}: {e}: cannot quantize it"
                ) from None
        for k, result in enumerate(self.float_results(op)):
            if fixed is not None:
                scale, zero_point = fixed.params(bits)
                self.plan.values[result] = UniformQuantizedType.get(
                    qm.to_f32(scale), zero_point, storage_bits=bits
                )
            else:
                out_t = self.from_stats(result, op, f"result #{k}", bits)
                self.plan.values[result] = self.satisfy_preconditions(op, result, out_t)

    def decide_affine(
        self, op: Operation, affine: nn.AffineWeights, consts: list[int], bits: int = 8
    ) -> list[int]:
        """Weights and bias of a conv/FC (an int64 bias with int16 activations, `bits` 16);
        returns the constant operands still undecided."""
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
            input_t = self.operand_type(op, affine.input_operand)
            assert isinstance(input_t, UniformQuantizedType)
            bias_bits = qm.BIAS16X8_BITS if bits == qm.INT16_BITS else 32
            try:
                bias_t = qm.bias_type(input_t.scale, weight_t, bias_bits)
            except qm.QuantizationError as e:
                raise PassFailedException(f"{where(op)} {e}: cannot quantize the bias") from None
            self.plan.constants[(op, affine.bias_operand)] = bias_t
            done.add(affine.bias_operand)
        return [i for i in consts if i not in done]

    def decide_same_scale(
        self, op: Operation, acts: list[int], consts: list[int], bits: int = 8
    ) -> None:
        results = self.float_results(op)
        if len(acts) == 1 and not consts:
            out_t = self.operand_type(op, acts[0])
        else:
            # One type for every input and the output: it must cover all of them.
            ranges = [rng for r in results if (rng := self.range_of(r, bits)) is not None]
            for i in acts:
                value = op.operands[i]
                rng = self.range_of(value, bits)
                ranges.append(
                    rng if rng is not None
                    else qm.range_of(self.operand_type(op, i))  # type: ignore[arg-type]
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
            out_t = self.range_type(lo, hi, op=op, what="the shared input/result type", bits=bits)
            for i in acts:
                value = op.operands[i]
                if self.operand_type(op, i) == out_t:
                    continue
                if (op, i) not in self.plan.requantize and self.can_retarget(value, op, out_t):
                    self.plan.values[value] = out_t  # the producer writes the shared type
                else:
                    self.plan.requantize[(op, i)] = out_t
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
            self.plan.constants.get((op, i), self.plan.requantize.get((op, i), t))
            for i, t in enumerate(types.operands)
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
        arg_casts: dict[Operation, SSAValue] = {}
        for arg in block.args:
            qtype = self.plan.values.get(arg)
            if qtype is None:
                continue
            cast = quant.QuantizeCastOp(arg, qtype)
            Rewriter.insert_op(cast, InsertPoint.at_start(block))
            arg.replace_all_uses_with(cast.result)
            cast.operands = [arg]
            arg_casts[cast] = arg
        for value, qtype in self.plan.values.items():
            if value.owner is block:
                continue
            Rewriter.replace_value_with_new_type(value, with_element(value.type, qtype))
        conversions: dict[tuple[SSAValue, QuantizedType], SSAValue] = {}
        for (op, index), qtype in self.plan.requantize.items():
            source = op.operands[index]
            source_t = quant_element(source.type)
            if source_t is None or source_t.storage_bits == qtype.storage_bits:
                cast = quant.QuantizeCastOp(source, qtype)  # a same-scale op's shared type
                cast.location = op.location
                Rewriter.insert_op(cast, InsertPoint.before(op))
                result = cast.result
            else:  # int8 <-> int16: one cast per value and type, a model input's from float
                if isinstance(source.owner, Operation) and source.owner in arg_casts:
                    source = arg_casts[source.owner]
                result = conversions.get((source, qtype))
                if result is None:
                    cast = quant.QuantizeCastOp(source, qtype)
                    cast.location = self.conversion_location(source, qtype, op)
                    Rewriter.insert_op(cast, InsertPoint.before(op))
                    result = conversions[(source, qtype)] = cast.result
            op.operands = [*op.operands[:index], result, *op.operands[index + 1 :]]
        for cast in arg_casts:
            if not cast.results[0].uses:
                Rewriter.erase_op(cast)  # a model input only int16 ops read
        ret = block.last_op
        if isinstance(ret, ReturnOp):
            operands = list(ret.operands)
            for k, v in enumerate(operands):
                if quant.is_quantized(v.type):
                    cast = quant.DequantizeCastOp(v)
                    Rewriter.insert_op(cast, InsertPoint.before(ret))
                    operands[k] = cast.result
            ret.operands = operands

    def conversion_location(
        self, value: SSAValue, qtype: QuantizedType, consumer: Operation
    ) -> Attribute:
        """`loc("<value's name>/int16")` (or `/int8`) for the cast converting `value` to
        `qtype`'s precision: the value's producer's location, or a model input's `nn.name`;
        the consumer's location when the value has no name."""
        name = None
        owner = value.owner
        if isinstance(owner, Operation):
            name = location_text(owner.location)
        elif isinstance(owner, Block) and self.func.arg_attrs is not None:
            attrs = self.func.arg_attrs.data[value.index]  # type: ignore[attr-defined]
            named = attrs.data.get("nn.name") if isinstance(attrs, DictionaryAttr) else None
            name = named.data if isinstance(named, StringAttr) else None
        if not name:
            return consumer.location
        return NameLoc(StringAttr(f"{name}/int{qtype.storage_bits}"), NoneAttr())

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


def quant_element(t: Attribute) -> QuantizedType | None:
    element = t.get_element_type() if isinstance(t, TensorType) else t
    return element if isinstance(element, QuantizedType) else None


def mark_int16(module: ModuleOp, names: tuple[str, ...]) -> None:
    """Set `qcc.precision = "int16"` on the nn ops `names` designate (`mark_precision`)."""
    mark_precision(module, names, "int16", "infer-scales{int16=...}")


def mark_precision(module: ModuleOp, names: tuple[str, ...], precision: str, who: str) -> None:
    """Set `qcc.precision = precision` on the nn ops `names` designate: an op's location
    (`loc("conv")`: its name) or an op kind (`nn.add`: every op of it). A name that matches
    no computing nn op is an error naming `who` (the pass and option)."""
    wanted = set(names)
    matched: set[str] = set()
    for func in functions(module):
        for op in func.body.blocks[0].ops:
            if op.dialect_name() != "nn" or isinstance(op, nn.ConstantOp):
                continue
            keys = {op.name, location_text(op.location)} & wanted
            if keys:
                matched |= keys
                op.attributes[PRECISION_ATTR] = StringAttr(precision)
    missing = [n for n in names if n not in matched]
    if missing:
        raise PassFailedException(
            f"{who}: no op named {missing[0]!r} (name an op by its "
            'location, loc("conv"), or a kind, nn.conv2d)'
        )


@dataclass(frozen=True)
class InferScales(ModulePass):
    """Give every float activation, weight and bias its quantized type, from the calibration
    ranges (`quant.stats`) and the quantization traits of the ops.

    Options:
      per_channel_fc: FULLY_CONNECTED weights per output row (true, default) or per tensor
        (false, the TFLite spec table's choice).
      int16: ops to compute with int16 activations and int8 weights (TFLite's 16x8
        kernels), by location (`conv`) or kind (`nn.add`): sets their `qcc.precision`
        attribute to "int16" (docs/ir.md, "int16 activations").
    """

    name = "infer-scales"

    per_channel_fc: bool = True
    int16: tuple[str, ...] = ()

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.int16:
            mark_int16(op, self.int16)
        for func in functions(op):
            driver = _Driver(func, self.per_channel_fc)
            driver.take_stats()
            driver.decide()
            driver.apply()
            for inner in func.walk():
                # what the verifier would refuse, reported with the op's location
                for violation in nn.quant_violations(inner):
                    raise PassFailedException(f"{where(inner)} {violation}")
