"""legalize-target: per op, int8 or a float island, chosen for where the model will run.

legalize-fallback makes a float island of every op without an int8 kernel and leaves every
other op int8, which is right for a runtime that runs every op in its int8 kernel (LiteRT's
BUILTIN_REF, qcc's own runtime). LiteRT's default CPU path is different: the XNNPACK delegate
takes a graph in partitions, and an int8 op it does not take (int8 PRELU, MAXIMUM, HARD_SWISH,
AVERAGE_POOL_2D, a standalone RELU, ...) runs outside in LiteRT's builtin kernel, between two
partitions. Float ops and int8 <-> float conversions, on the other hand, XNNPACK runs inside
its partition. So on XNNPACK an int8 PRELU costs a partition split and a slow kernel, while
`dequantize, float PRELU, quantize` costs two conversions inside the delegate (iris_landmark,
LiteRT 2.3.0, one thread: 1.74x the float model's latency and 38 partitions with its PRELUs
decomposed into int8 MUL + MAXIMUM, 0.59x and one partition with float PRELU islands).

The pass reads the target's capabilities, measured by a probe and kept as data (the
`qcc.targets` package of the driver, which hands the pass a `Target` in its Python-only
`capabilities` field; the pass fails without one), and decides per op, after infer-scales
(it takes the place of legalize-fallback in the pipeline):

1. an op that has no int8 kernel (`nn.int8_capable` says no: its declaration is
   `Fallback(reason)`, or it is a generic / custom op) is a float island, as with
   legalize-fallback; on a target that allows no float op (`allows_float` false, int8-only)
   it is an error listing every such op;
2. on a target that allows no float op, every other op stays int8;
3. an op whose int8 form the target delegates (`int8_delegated(op)`, the op instance with its
   fused activation and quantized types) stays int8; so does an op the target has no
   measurement for (None: the pass does not guess);
4. an op the target does not delegate in int8 but delegates in float becomes a float island
   (a float island is never less accurate than int8, so accuracy cannot drop), unless a
   rewrite into an op the target does delegate in int8 exists and is cheaper (below);
5. an op delegated in neither precision runs outside the delegate either way, splitting the
   partition either way: the cost model compares its int8 latency with its float latency
   plus the conversions a float island adds (neighbouring islands share theirs), and the
   float island wins only when all those numbers are measured and it is faster.

Costs, in microseconds, from the target's measurements (single-op models at the probe's
shapes, so they rank forms rather than predict the model's latency): `latency_us(op,
"int8" | "float")`, `conversion_latency_us` (one quantize + dequantize pair) for every pair of
island edges, and `PARTITION_SPLIT_US` for every op a form leaves outside the delegate.

Rewrites into a form the target runs in int8: a PRELU whose alpha is one number is
`LEAKY_RELU(alpha)` (the same function, and the same int8 arithmetic: one multiplier for
each sign), which XNNPACK takes in int8. (Standalone activations are fused into their
producer by fuse-activation, earlier in the preset.)

Every op the pass does not leave in int8 says why, in its `qcc.reason` attribute, which
`qcc --report` prints:

    %y = nn.prelu %x, %alpha : (tensor<1x8x8x16x!quant.uniform<i8:f32, 0.05:3>>, ...) -> ...
becomes
    %xf = quant.dcast %x : ... to tensor<1x8x8x16xf32>
    %yf = nn.prelu %xf, %alpha {qcc.reason = "xnnpack does not take int8 PRELU (measured); ..."}
          : (tensor<1x8x8x16xf32>, tensor<1x1x16xf32>) -> tensor<1x8x8x16xf32>
    %y = quant.qcast %yf : tensor<1x8x8x16xf32> to tensor<1x8x8x16x!quant.uniform<...>>

Islands are written by legalize-fallback's code (`make_islands`): quantized operands are
dequantized, a constant used only by float ops goes back to its float type, results are
quantized back to the types infer-scales chose, and neighbouring islands merge.

Limits. The measured latencies are of single-op models at the probe's shapes, so the pass
uses them only to rank forms of one op, never against the rules above (XNNPACK's int8
DEPTHWISE_CONV_2D is slower than its float one at the probe's 4 channels, yet stays int8:
it is delegated). Rewrites that add tensors (decompose-prelu's MUL + MAXIMUM) need ranges
for them, so they run before calibration, not here. bias-correction, earlier in the preset,
corrects the biases for int8 weights: an op with weights that became a float island would
keep that correction (XNNPACK takes every op with weights in int8, so the xnnpack preset
never does this).

int16 activations are not a choice the pass makes: an op infer-scales gave int16
activations (it asked for them, `qcc.precision = "int16"`, or follows such an op; docs/ir.md
"int16 activations") stays as it is, where the target allows int16 (`allows_int16`; XNNPACK
does not delegate int16, LiteRT runs its 16x8 kernels outside the delegate); on a target that
does not, it is an error naming the op, like a float op on an int8-only target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import FloatAttr, ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import PassFailedException

from qcc.dialects import nn, quant
from qcc.dialects.ir import location_text
from qcc.passes.infer_scales import functions, requested_precision
from qcc.passes.legalize_fallback import make_islands

REASON = "qcc.reason"
"""The attribute (a string) in which the pass says why an op is not int8 (or was rewritten)."""

PARTITION_SPLIT_US = 1.0
"""What one op outside the delegate costs besides its own kernel: leaving the delegate's
partition and entering the next. Measured with LiteRT 2.3.0's default resolver, num_threads=1
(AMD EPYC, AVX-512 VNNI): a chain of 20 int8 ADD + MAXIMUM pairs (MAXIMUM is not delegated in
int8: 20 partitions) on 1x1x1x8 tensors runs 2.5 us slower than the same chain with MUL in
place of MAXIMUM (one partition), about 0.12 us per split. The constant rounds that up (with
more threads a split is also a synchronisation), so that between forms that cost the same
the one with fewer partitions wins; it does not buy an int8 kernel that is slower than the
float one plus its conversions: the measured kernels dominate."""


class Capabilities(Protocol):
    """What the pass reads of a target (`qcc.targets.Target`; the pass never imports it)."""

    name: str
    allows_float: bool
    allows_int16: bool
    conversion_latency_us: float | None

    def int8_delegated(self, op: Operation) -> bool | None: ...

    def float_delegated(self, op: Operation) -> bool | None: ...

    def latency_us(self, op: Operation, precision: str) -> float | None: ...


@dataclass(frozen=True)
class Decision:
    """What the pass chose for one op: "int8", "float" (an island) or "rewrite" (into
    `rewrite()`'s int8 op), and why (empty for a plain int8 op)."""

    precision: str
    reason: str = ""
    rewrite: Callable[[], Operation] | None = None


INT8 = Decision("int8")


def describe(op: Operation) -> str:
    """The op as the target's table knows it: its TFLite builtin, with its fused activation."""
    spec = nn.op_spec(op)
    what = spec.builtin if spec is not None and spec.builtin else op.name
    if isinstance(op, nn.GenericOp):
        what = op.op_name.data
    act = op.activation if isinstance(op, nn.NNOp) else "NONE"
    return what if act == "NONE" else f"{what} with fused {act}"


def _computes(op: Operation) -> bool:
    """An op whose precision the pass chooses: an nn op that computes (not a constant) on
    quantized values (infer-scales gave an operand or a result a quantized type)."""
    if op.dialect_name() != "nn" or isinstance(op, nn.ConstantOp):
        return False
    values = [*op.operands, *op.results]
    return any(quant.is_quantized(v.type) for v in values)


def _uniform_alpha(op: nn.PReluOp) -> float | None:
    """The alpha of a PRELU whose alpha is a constant holding one number, else None."""
    owner = op.alpha.owner
    if not isinstance(owner, nn.ConstantOp) or quant.is_quantized(owner.value.get_type()):
        return None
    try:
        values = np.asarray(owner.value.get_values(), dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if values.size == 0 or not np.all(values == values.flat[0]):
        return None
    alpha = float(values.flat[0])
    return alpha if np.isfinite(alpha) else None


def _leaky_relu(op: nn.PReluOp, alpha: float) -> Operation:
    """A detached LEAKY_RELU(alpha) with `op`'s input and result type (it uses `op.input`:
    insert it, or `drop_all_references` it)."""
    leaky = nn.LeakyReluOp.create(
        operands=[op.input],
        result_types=[op.output.type],
        properties={"alpha": FloatAttr(alpha, 32)},
    )
    leaky.location = op.location
    return leaky


def _has_int16(op: Operation) -> bool:
    """Whether infer-scales gave `op` int16 activations (an operand or result of int16
    storage): the op is 16x8, which the pass leaves alone."""
    for value in (*op.operands, *op.results):
        element = value.type.get_element_type() if hasattr(value.type, "get_element_type") else None
        if isinstance(element, quant.QuantizedType) and element.storage_bits == 16:
            return True
    return False


def _int8_rewrites(op: Operation) -> list[tuple[str, Callable[[], Operation]]]:
    """Forms of `op` that compute the same function with one other int8 op: (what, build)."""
    if isinstance(op, nn.PReluOp) and op.input.type == op.output.type:
        alpha = _uniform_alpha(op)
        if alpha is not None:
            return [(f"LEAKY_RELU(alpha={alpha:g})", lambda: _leaky_relu(op, alpha))]
    return []


class _CostModel:
    """The target's measurements, and the edges a float island of an op would add given the
    decisions taken so far (`float_ops`)."""

    def __init__(self, target: Capabilities, float_ops: set[Operation]):
        self.target = target
        self.float_ops = float_ops

    def latency(self, op: Operation, precision: str) -> float | None:
        value = self.target.latency_us(op, precision)
        return None if value is None else float(value)

    def conversion_pairs(self, op: Operation) -> float:
        """Quantize/dequantize pairs a float island of `op` needs: one edge per quantized
        operand not made by a float op or a constant, one per quantized result with a user
        that is not float; two edges make a pair."""
        edges = 0
        for value in op.operands:
            owner = value.owner
            if not quant.is_quantized(value.type) or isinstance(owner, nn.ConstantOp):
                continue
            if isinstance(owner, Operation) and owner in self.float_ops:
                continue
            edges += 1
        for result in op.results:
            if not quant.is_quantized(result.type):
                continue
            if result.uses and all(use.operation in self.float_ops for use in result.uses):
                continue
            edges += 1
        return edges / 2

    def island_cost(self, op: Operation, delegated: bool) -> float | None:
        latency = self.latency(op, "float")
        conversion = self.target.conversion_latency_us
        if latency is None or conversion is None:
            return None
        split = 0.0 if delegated else PARTITION_SPLIT_US
        return latency + self.conversion_pairs(op) * float(conversion) + split

    def int8_cost(self, op: Operation, delegated: bool) -> float | None:
        latency = self.latency(op, "int8")
        if latency is None:
            return None
        return latency + (0.0 if delegated else PARTITION_SPLIT_US)


def decide(op: Operation, target: Capabilities, float_ops: set[Operation]) -> Decision:
    """The pass's choice for one computing nn op (see the module docstring for the rules);
    `float_ops` are the ops already chosen float (their edges need no conversion)."""
    capable, why = nn.int8_capable(op)
    if not capable:
        return Decision("float", f"no int8 kernel ({why})")
    if requested_precision(op) == "float":
        given = op.attributes.get(REASON)
        text = given.data if isinstance(given, StringAttr) else 'qcc.precision = "float"'
        return Decision("float", f"kept float: {text}")
    if not target.allows_float:
        return INT8
    int8 = target.int8_delegated(op)
    if int8 is None or int8:
        return INT8
    what = describe(op)
    costs = _CostModel(target, float_ops)
    floats = target.float_delegated(op)
    if floats:
        island = Decision(
            "float",
            f"{target.name} does not take int8 {what} (measured); float {what} runs in "
            "the delegate",
        )
        best, best_cost = island, costs.island_cost(op, True)
        for form, build in _int8_rewrites(op):
            candidate = build()
            try:
                if not target.int8_delegated(candidate):
                    continue
                cost = costs.int8_cost(candidate, True)
            finally:
                candidate.drop_all_references()
            if best_cost is None or cost is None or cost < best_cost:
                reason = (
                    f"{target.name} does not take int8 {what} (measured); it takes {form} "
                    "in int8, the same function"
                )
                best, best_cost = Decision("rewrite", reason, build), cost
        return best
    island_cost = costs.island_cost(op, bool(floats))
    int8_cost = costs.int8_cost(op, False)
    if island_cost is None or int8_cost is None or island_cost >= int8_cost:
        return INT8
    return Decision(
        "float",
        f"{target.name} takes {what} neither in int8 nor in float (measured); float is "
        f"faster outside the delegate ({island_cost:.1f} us with conversions vs "
        f"{int8_cost:.1f} us int8)",
    )


def _int8_only_failure(target: Capabilities, ops: list[tuple[Operation, str]]) -> str:
    lines = []
    for op, reason in ops:
        loc = location_text(op.location)
        head = f'loc("{loc}"): ' if loc is not None else ""
        lines.append(f"{head}'{op.name}' op: {reason}")
    count = f"{len(ops)} op{'s' if len(ops) != 1 else ''}"
    return (
        f"legalize-target: {count} without an int8 kernel, and target {target.name} allows "
        "no float op\n" + "\n".join(lines)
    )


def _int16_failure(target: Capabilities, ops: list[tuple[Operation, str]]) -> str:
    lines = []
    for op, reason in ops:
        loc = location_text(op.location)
        head = f'loc("{loc}"): ' if loc is not None else ""
        lines.append(f"{head}'{op.name}' op: {reason}")
    count = f"{len(ops)} op{'s' if len(ops) != 1 else ''}"
    return (
        f"legalize-target: {count} with int16 activations, and target {target.name} allows "
        "no int16\n" + "\n".join(lines)
    )


@dataclass(frozen=True)
class LegalizeTarget(ModulePass):
    """Make each op int8, a float island, or an int8 rewrite, as the target runs it best."""

    name = "legalize-target"

    target: str = ""
    """The target's name (`xnnpack`, `reference`, `int8-only`, `numba`)."""
    capabilities: Any = field(default=None, compare=False, repr=False)
    """Python only, not a CLI option: the target's measured capabilities (`Capabilities`,
    a `qcc.targets.Target`), which the driver puts here when it builds the pipeline."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = self.capabilities
        if target is None:
            named = f"{{target={self.target}}}" if self.target else ""
            raise PassFailedException(
                f"legalize-target{named}: no target capabilities (the driver binds them when "
                "it builds the pipeline: qcc --pass-pipeline, qcc.pipeline.build_pipeline)"
            )
        float_ops: set[Operation] = set()
        refused: list[tuple[Operation, str]] = []
        int16_refused: list[tuple[Operation, str]] = []
        for func in functions(op):
            for inner in list(func.body.blocks[0].ops):
                if not _computes(inner):
                    continue
                if _has_int16(inner):  # 16x8, as infer-scales chose: not this pass's choice
                    if not getattr(target, "allows_int16", True):
                        int16_refused.append((inner, "int16 activations (16x8)"))
                    continue
                decision = decide(inner, target, float_ops)
                if decision.precision == "float":
                    if not target.allows_float:
                        refused.append((inner, decision.reason))
                        continue
                    float_ops.add(inner)
                    inner.attributes[REASON] = StringAttr(decision.reason)
                elif decision.precision == "rewrite":
                    assert decision.rewrite is not None
                    _replace(inner, decision.rewrite(), decision.reason)
        if refused:
            raise PassFailedException(_int8_only_failure(target, refused))
        if int16_refused:
            raise PassFailedException(_int16_failure(target, int16_refused))
        make_islands(op, float_ops.__contains__)


def _replace(op: Operation, new: Operation, reason: str) -> None:
    """Put `new` in place of `op` (same results), erasing constants only `op` used."""
    new.attributes[REASON] = StringAttr(reason)
    owners = [value.owner for value in op.operands]
    Rewriter.replace_op(op, new)
    for owner in owners:
        if isinstance(owner, nn.ConstantOp) and not owner.output.uses:
            Rewriter.erase_op(owner)
