"""Sensitivity analysis: which ops of a quantized model cost its outputs the most accuracy.

    from qcc.sensitivity import Analysis
    analysis = Analysis.from_passes(float_module, passes, samples)   # splits the data
    scan = analysis.scan()                     # every promotable op, measured (cached)
    scan.ranked()[0]                           # the op whose promotion helps the worst output most
    analysis.evaluate({3, 17})                 # SNR of every output with ops 3 and 17 in float
    module = analysis.stages.quantized({3, 17})   # that model, to emit it
    advice = analysis.advise(scan)             # a greedy set: "promote these 3 ops: 9.9 -> 17.2 dB"

**What is measured.** For every op the quantized model runs in int8, the SNR of every model
output (against the float model) when *only that op* is left in float — a float island made
by the very code legalize-target and legalize-fallback use (`make_islands`), placed where
those passes decide precision, so the measured model is exactly the model a promotion would
emit — on held-out data; `OpSensitivity.gain` is what it adds to the worst output. This is
the quantity a promotion search needs ("promote op X: worst output A -> B dB"). The other
classic measure, the output SNR with *only* that op quantized, ignores how errors combine (an
op behind a noisy one matters less), so it is not computed; its cheap local proxy is
`local_snr`: the op's own output error when its inputs are exact (its int8 kernel run on the
float reference inputs, quantized), measured for every op on the way (`measure_ops`).

Measured only where a promotion can change something: ops the target lets run in float
(none on `int8-only`), that are int8 in the model, and whose float island computes something
other than their int8 kernel on the held-out data (data movement and MAX_POOL compute the
same thing in both: promoting them gains exactly nothing; they are listed as skipped).

**The data.** The model whose sensitivity is measured must not have seen the data it is
measured on: `Analysis.from_passes` holds out every `every`-th sample (`HOLDOUT_EVERY` = 4:
samples 3, 7, 11, ... of the representative data; with fewer than 4 samples, the last one),
calibrates the ranges on the others and measures on the held-out ones; or it takes an explicit
held-out set (`heldout=`, e.g. a separate evaluation folder) and calibrates on all the data.
With fewer than `FEW_HELDOUT` held-out samples the numbers are indicative
(`DataSplit.few`, and the report says so).

**How.** The pipeline is cut where precision is chosen (`split_pipeline`: before
legalize-target / legalize-fallback / verify-int8, or quantize): `Stages.pre` is the IR
there (quantized types, float weights), `Stages.rest` the passes from there on. A model with
a set of ops promoted is `pre` cloned, those ops made float islands, `rest` applied, and
compiled for qcc's integer runtime (`qcc.backends.numba`; float islands run in-process); the
float model's outputs on the held-out samples are computed once. Each evaluation costs one
compile (~0.1 s for hand_landmark_lite) and a run per held-out sample (a few ms). A model
qcc's runtime cannot run (a custom op without a float kernel) is run by LiteRT instead
(slower: one export per evaluation).

**Cache.** `scan` results and set evaluations are kept in
`$QCC_CACHE_DIR/sensitivity/<key>.json` (default `$XDG_CACHE_HOME/qcc`, else `~/.cache/qcc`),
`<key>` the SHA-256 of qcc's sources (`code_digest`), the IR at the cut, the rest of the
pipeline, the held-out samples and the float model's outputs on them (`cache=False` turns it off; a file that cannot be written
or read is ignored). A terminal on stderr shows `sensitivity: 12/48 ops`; a pipe shows nothing.

SNR, here and in the report: 10·log10(Σ float² / Σ (float − quantized)²), sums over all
samples; +inf when there is no error at all; NaN when there is no signal (float values all
zero), which rankings skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from qcc.errors import QccError

__all__ = [
    "FEW_HELDOUT",
    "HOLDOUT_EVERY",
    "Advice",
    "Analysis",
    "DataSplit",
    "OpMeasure",
    "OpSensitivity",
    "Scan",
    "SnrAccumulator",
    "Stages",
    "measure_ops",
    "split_pipeline",
    "split_samples",
]

HOLDOUT_EVERY = 4
"""Every 4th sample (indices 3, 7, 11, ...) is held out; ranges come from the others."""
FEW_HELDOUT = 4
"""Fewer held-out samples than this: the analysis says its numbers are indicative."""
PRECISION_PASSES = ("legalize-target", "legalize-fallback", "verify-int8", "quantize")
"""The pipeline is cut before the first of these: where each op's precision is decided."""
OUTSIDE_ANALYSIS = ("modify-io",)
"""Passes left out of the analysed models: integer model inputs/outputs only move the
boundary conversions outside the model."""
CORRECTING_PASSES = ("bias-correction",)
"""Prefix passes that adjust float constants for int8 weights: a promoted op does without."""
PROMOTED_REASON = "promoted to float (sensitivity analysis)"
CACHE_FORMAT = 1

Sample = Sequence[np.ndarray]


# ------------------------------------------------------------------------------------------
# SNR
# ------------------------------------------------------------------------------------------


@dataclass
class SnrAccumulator:
    """Σ reference² and Σ (reference − approximation)² over any number of arrays."""

    signal: float = 0.0
    noise: float = 0.0

    def add(self, reference: np.ndarray, approximation: np.ndarray) -> None:
        ref = np.asarray(reference, np.float64)
        diff = ref - np.asarray(approximation, np.float64)
        self.signal += float(np.vdot(ref, ref))
        self.noise += float(np.vdot(diff, diff))

    @property
    def db(self) -> float:
        """SNR in dB: +inf without error, NaN without signal."""
        if self.signal == 0.0:
            return math.nan
        if self.noise == 0.0:
            return math.inf
        return 10.0 * math.log10(self.signal / self.noise)


def worst(snrs: Iterable[float]) -> float:
    """The lowest SNR that is defined (NaN: no output has a signal)."""
    values = [s for s in snrs if not math.isnan(s)]
    return min(values) if values else math.nan


# ------------------------------------------------------------------------------------------
# The data
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSplit:
    """Representative samples split into the ones ranges are calibrated on and the held-out
    ones sensitivity is measured on (never the same sample in both)."""

    ranges: list[list[np.ndarray]]
    heldout: list[list[np.ndarray]]
    range_indices: tuple[int, ...]
    heldout_indices: tuple[int, ...]
    every: int
    """The held-out stride; 0 when the held-out samples were given separately."""

    @property
    def few(self) -> bool:
        return len(self.heldout) < FEW_HELDOUT

    def describe(self) -> str:
        n = len(self.heldout)
        held = f"{n} held-out sample{'s' if n != 1 else ''}"
        if self.every:
            total = len(self.ranges) + n
            first = self.heldout_indices[0] if self.heldout_indices else self.every - 1
            how = (
                f"every {_ordinal(self.every)} of {total}" if self.every > 1 else f"1 of {total}"
            )
            if first != self.every - 1:
                how += f" from sample {first}"
            text = f"{held} ({how}; ranges from the other {len(self.ranges)})"
        else:
            text = f"{held} (given separately; ranges from {len(self.ranges)} samples)"
        if self.few:
            text += ": few, the numbers are indicative"
        return text


def _ordinal(k: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(k if k < 20 else k % 10, "th")
    return f"{k}{suffix}"


def split_samples(
    samples: Sequence[Sample], every: int = HOLDOUT_EVERY, fold: int | None = None
) -> DataSplit:
    """Hold out every `every`-th sample (indices every-1, 2·every-1, ...); with fewer
    samples than `every`, the last one. `fold` f in [0, every) holds out the samples
    i % every == f instead (the folds of a cross-validation: each sample held out once).
    Needs at least 2 samples."""
    items = [list(s) for s in samples]
    n = len(items)
    if every < 2:
        raise QccError(f"sensitivity: every must be at least 2, got {every}")
    if n < 2:
        raise QccError(
            f"sensitivity analysis needs at least 2 representative samples (one to calibrate "
            f"on, one held out to measure on); got {n}"
        )
    k = min(every, n)
    pick = k - 1 if fold is None else fold
    if not 0 <= pick < k:
        raise QccError(f"sensitivity: fold must be in [0, {k}), got {fold}")
    held = tuple(i for i in range(n) if i % k == pick)
    kept = tuple(i for i in range(n) if i % k != pick)
    return DataSplit(
        [items[i] for i in kept], [items[i] for i in held], kept, held, k
    )


# ------------------------------------------------------------------------------------------
# The pipeline, cut where precision is chosen
# ------------------------------------------------------------------------------------------


def split_pipeline(passes: Sequence[ModulePass]) -> tuple[list[ModulePass], list[ModulePass]]:
    """(the passes before precision is chosen, that pass and the rest); a QccError when the
    pipeline does not quantize statically."""
    for i, p in enumerate(passes):
        if p.name in PRECISION_PASSES:
            return list(passes[:i]), list(passes[i:])
    raise QccError(
        "sensitivity analysis needs a pipeline that quantizes activations (legalize-target, "
        "legalize-fallback, verify-int8 or quantize); this one has none"
    )


def _annotate_ranges_class():
    from qcc.passes.annotate_ranges import AnnotateRanges

    return AnnotateRanges


def _calibrated_on(prefix: Sequence[ModulePass], samples: Sequence[Sample]) -> list[ModulePass]:
    """`prefix` with every annotate-ranges calibrating on `samples` (already conformed to the
    model's inputs: no image scaling, no sample limit)."""
    from qcc.statistics import Calibrator

    annotate = _annotate_ranges_class()
    data = [list(s) for s in samples]
    return [
        dataclasses.replace(
            p, calibration="", samples=0, input_range=(), statistics=Calibrator(data)
        )
        if isinstance(p, annotate)
        else p
        for p in prefix
    ]


def _replayed(prefix: Sequence[ModulePass]) -> list[ModulePass]:
    """`prefix` with every annotate-ranges reading the statistics its calibrator gathered
    when the pipeline ran: the same IR again, without running the data again."""
    from qcc.statistics import Calibrator

    annotate = _annotate_ranges_class()
    out = []
    for p in prefix:
        if isinstance(p, annotate) and isinstance(p.statistics, Calibrator):
            if p.statistics.statistics is None:
                raise QccError("sensitivity: the pipeline has not run (no statistics to replay)")
            p = dataclasses.replace(p, statistics=p.statistics.statistics)
        out.append(p)
    return out


def apply_passes(module: ModuleOp, passes: Sequence[ModulePass], *, verify: bool = True) -> None:
    """Run `passes` on `module`, verifying after each (unless `verify` is false); failures
    are one-line QccErrors."""
    from xdsl.utils.exceptions import DiagnosticException, PassFailedException

    from qcc.context import make_context

    ctx = make_context()
    for p in passes:
        try:
            p.apply(ctx, module)
            if verify:
                module.verify()
        except DiagnosticException as e:
            text = str(e).strip() or type(e).__name__
            if not isinstance(e, PassFailedException):
                text = text.splitlines()[0]
            if not text.startswith(p.name):
                text = f"{p.name}: {text}"
            raise QccError(text) from None


def nn_ops(module: Operation) -> list[Operation]:
    """The computing nn ops of the main function (not constants), in block order: the index
    space of `Stages` (an op's index is the same in `pre` and in every model made from it)."""
    from qcc.dialects import nn
    from qcc.dialects.ir import find_main

    return [
        op
        for op in find_main(module).body.block.ops
        if op.dialect_name() == "nn" and not isinstance(op, nn.ConstantOp)
    ]


def op_name(op: Operation) -> str:
    """The op's location (its tensor name), or '?'."""
    from qcc.dialects.ir import location_text

    return location_text(op.location) or "?"


def op_kind(op: Operation) -> str:
    """The op as TFLite names it, with its fused activation (`CONV_2D+RELU6`)."""
    from qcc.dialects import nn
    from qcc.passes.legalize_target import describe

    text = describe(op)
    if isinstance(op, nn.NNOp) and " with fused " in text:
        base, act = text.split(" with fused ", 1)
        text = f"{base}+{act}"
    return text


def _element(value: SSAValue):
    t = value.type
    return t.get_element_type() if isinstance(t, TensorType) else None


def _quantized_type(value: SSAValue):
    from qcc.dialects.quant import QuantizedType

    element = _element(value)
    return element if isinstance(element, QuantizedType) else None


def precision(op: Operation) -> str:
    """"int8", "int16" (the storage of its quantized activations) or "float"."""
    from qcc.backends.numba import op_is_quantized

    if not op_is_quantized(op):
        return "float"
    bits = max(
        (
            q.storage_bits
            for v in [*op.results, *op.operands]
            if (q := _quantized_type(v)) is not None and not _is_constant(v)
        ),
        default=8,
    )
    return f"int{bits}"


def _is_constant(value: SSAValue) -> bool:
    from qcc.dialects import nn

    return isinstance(value.owner, nn.ConstantOp)


def reason(op: Operation) -> str:
    """Why the op computes in float (legalize-target's `qcc.reason`, else the declaration)."""
    from qcc.dialects import nn
    from qcc.passes.legalize_target import REASON

    given = op.attributes.get(REASON)
    if isinstance(given, StringAttr):
        return given.data
    capable, declared = nn.int8_capable(op)
    return "float" if capable else f"no int8 kernel ({declared})"


@dataclass
class Stages:
    """A quantization pipeline, cut where it chooses each op's precision.

    `pre` is the IR there (quantized types, float weights); `rest` the passes from there on
    (modify-io left out); `quantized(promote)` the model with the ops at those indices
    (`nn_ops(pre)`) kept float; `reference()` the same IR entirely in float."""

    float_module: ModuleOp
    pre: ModuleOp
    rest: list[ModulePass]
    allows_float: bool = True
    plain: ModuleOp | None = None
    """`pre` without bias-correction (None when the pipeline has none): a promoted op takes
    its constants from here, since the correction is for int8 weights and would shift the
    output of the op's float weights."""
    pre_scales: ModuleOp | None = None
    """The IR before infer-scales (ranges annotated, float types): where int16 is chosen
    (`configured`); None when the prefix has no infer-scales."""
    scales: list[ModulePass] = field(default_factory=list)
    """The prefix's passes from infer-scales on: `pre_scales` + `scales` = `pre`."""
    allows_int16: bool = True

    @classmethod
    def from_passes(
        cls,
        float_module: ModuleOp,
        passes: Sequence[ModulePass],
        data: Sequence[Sample] | None = None,
    ) -> Stages:
        """Run the pipeline's first part on a copy of `float_module`: calibrating on `data`
        when given, else replaying the statistics the pipeline gathered when it ran (so
        `quantized()` is the model the pipeline made)."""
        prefix, rest = split_pipeline(passes)
        prefix = _calibrated_on(prefix, data) if data is not None else _replayed(prefix)
        at = next((i for i, p in enumerate(prefix) if p.name == "infer-scales"), None)
        pre_scales = None
        if at is not None:
            pre_scales = float_module.clone()
            apply_passes(pre_scales, prefix[:at])
            pre = pre_scales.clone()
            apply_passes(pre, prefix[at:])
        else:
            pre = float_module.clone()
            apply_passes(pre, prefix)
        plain = None
        if any(p.name in CORRECTING_PASSES for p in prefix):
            plain = float_module.clone()
            apply_passes(plain, [p for p in _replayed(prefix) if p.name not in CORRECTING_PASSES])
        allows_float = True
        for p in rest:
            if p.name == "verify-int8":
                allows_float = False
            capabilities = getattr(p, "capabilities", None)
            if capabilities is not None and not getattr(capabilities, "allows_float", True):
                allows_float = False
        allows_int16 = True
        for p in rest:
            capabilities = getattr(p, "capabilities", None)
            if capabilities is not None and not getattr(capabilities, "allows_int16", True):
                allows_int16 = False
        rest = [p for p in rest if p.name not in OUTSIDE_ANALYSIS]
        scales = list(prefix[at:]) if at is not None else []
        if pre_scales is not None and [op_name(o) for o in nn_ops(pre_scales)] != [
            op_name(o) for o in nn_ops(pre)
        ]:
            pre_scales = None  # the passes from infer-scales on add or remove nn ops
        return cls(float_module, pre, rest, allows_float, plain, pre_scales, scales,
                   allows_int16)

    def ops(self) -> list[Operation]:
        return nn_ops(self.pre)

    def quantized(
        self, promote: Iterable[int] = (), reason: str = PROMOTED_REASON, *, verify: bool = True
    ) -> ModuleOp:
        """The quantized model with the ops at indices `promote` in float (islands, merged
        with their float neighbours), each promoted op's `qcc.reason` saying `reason`.
        `verify=False` skips verifying the IR after each pass (the analysis measures many
        variants of one verified model)."""
        from qcc.passes.legalize_fallback import make_islands
        from qcc.passes.legalize_target import REASON

        module = self.pre.clone()
        chosen = set(promote)
        if chosen:
            ops = nn_ops(module)
            bad = sorted(i for i in chosen if not 0 <= i < len(ops))
            if bad:
                raise QccError(f"sensitivity: no op #{bad[0]} (the model has {len(ops)} ops)")
            targets = {ops[i] for i in chosen}
            plain_ops = nn_ops(self.plain) if self.plain is not None else None
            for i in chosen:
                ops[i].attributes[REASON] = StringAttr(reason)
                if plain_ops is not None:
                    _uncorrected(ops[i], plain_ops[i])
            make_islands(module, targets.__contains__)
        apply_passes(module, self.rest, verify=verify)
        return module

    def configured(
        self, precisions: dict[int, str], reason: str = PROMOTED_REASON, *, verify: bool = True
    ) -> ModuleOp:
        """The quantized model with each op at index i (`nn_ops(pre)`) in
        `precisions[i]`: "float" (a float island, as `quantized` makes it) or "int16" (int16
        activations, int8 weights: infer-scales runs again with the op asking for it, as the
        pipeline `assign-precision{int16=...}` would make it); the other ops as the pipeline
        chooses."""
        from qcc.passes.infer_scales import PRECISION_ATTR
        from qcc.passes.legalize_target import REASON

        int16 = {i for i, p in precisions.items() if p == "int16"}
        floats = {i for i, p in precisions.items() if p == "float"}
        unknown = {p for p in precisions.values()} - {"int16", "float", "int8"}
        if unknown:
            raise QccError(f"sensitivity: unknown precision {sorted(unknown)[0]!r}")
        if not int16:
            return self.quantized(floats, reason, verify=verify)
        if self.pre_scales is None:
            raise QccError("sensitivity: this pipeline cannot choose int16 (no infer-scales)")
        module = self.pre_scales.clone()
        ops = nn_ops(module)
        bad = sorted(i for i in precisions if not 0 <= i < len(ops))
        if bad:
            raise QccError(f"sensitivity: no op #{bad[0]} (the model has {len(ops)} ops)")
        plain_ops = nn_ops(self.plain) if self.plain is not None else None
        for i in int16:
            ops[i].attributes[PRECISION_ATTR] = StringAttr("int16")
        for i in floats:
            ops[i].attributes[PRECISION_ATTR] = StringAttr("float")
            ops[i].attributes[REASON] = StringAttr(reason)
            if plain_ops is not None:
                _uncorrected(ops[i], plain_ops[i])
        apply_passes(module, [*self.scales, *self.rest], verify=verify)
        return module

    def reference(self) -> ModuleOp:
        """`pre` with every op in float: the float values each op of `quantized()` should
        have (the same ops, the same weights: equalized, bias-corrected, as the passes left
        them)."""
        from qcc.passes.legalize_fallback import make_islands

        module = self.pre.clone()
        make_islands(module, lambda op: op.dialect_name() == "nn")
        return module


def _uncorrected(op: Operation, plain: Operation) -> None:
    """Give `op` (to become float) the constants `plain` (the same op without
    bias-correction) has where they differ: its float bias; a bias the correction added
    becomes zeros."""
    from xdsl.rewriter import InsertPoint, Rewriter

    from qcc.dialects import nn

    if op.name != plain.name or len(op.operands) < len(plain.operands):
        return
    for j, value in enumerate(op.operands):
        owner = value.owner
        if not isinstance(owner, nn.ConstantOp):
            continue
        if j < len(plain.operands):
            source = plain.operands[j].owner
            if not isinstance(source, nn.ConstantOp) or source.value == owner.value:
                continue
            attr = source.value
        else:  # a bias bias-correction added: the float op has none
            from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr

            from qcc.dialects.ir import decode_dense

            zeros = np.zeros_like(decode_dense(owner.value), dtype=np.float32)
            attr = DenseIntOrFPElementsAttr(
                owner.value.type, BytesAttr(zeros.astype("<f4").tobytes())
            )
        if attr.type != owner.value.type:
            continue
        fresh = nn.ConstantOp(attr, value.type)
        fresh.location = owner.location
        Rewriter.insert_op(fresh, InsertPoint.before(op))
        op.operands = [*op.operands[:j], fresh.output, *op.operands[j + 1 :]]
        if not owner.output.uses:
            Rewriter.erase_op(owner)


# ------------------------------------------------------------------------------------------
# Running models
# ------------------------------------------------------------------------------------------


class FloatRunner:
    """The float model on qcc's float executor, or on LiteRT when the executor has no kernel
    for one of its ops (a custom op): `run(sample) -> outputs`, `values` of every op result
    (and constant) after a run with `record=True`."""

    def __init__(self, module: ModuleOp):
        from qcc.dialects.ir import find_main
        from qcc.runtime.errors import ExecutorError
        from qcc.runtime.executor import Executor

        self.func = find_main(module)
        self.executor = None
        self.litert = None
        try:
            self.executor = Executor(module)
        except ExecutorError as first:
            from qcc.litert import LiteRTRunner

            try:
                self.litert = LiteRTRunner(self.func)
            except Exception:  # noqa: BLE001 - LiteRT refuses it too: the executor's reason
                raise QccError(f"cannot run the float model: {first}") from None
        self.values: dict[SSAValue, np.ndarray] = {}

    def run(self, sample: Sample, *, record: bool = False) -> list[np.ndarray]:
        self.values = {}
        args = self.func.body.block.args
        with np.errstate(all="ignore"):
            if self.executor is not None:
                if not record:
                    return self.executor.run(list(sample))
                values = self.values

                def observe(op, results):
                    for r, a in zip(op.results, results):
                        values[r] = a

                outputs = self.executor.run(list(sample), observer=observe)
            else:
                assert self.litert is not None
                self.litert.run(self.litert.check(sample))
                if record:
                    for v in self.litert.tensor_of:
                        self.values[v] = np.array(self.litert.value(v))
                returned = list(self.func.body.block.last_op.operands)  # type: ignore[union-attr]
                outputs = [np.array(self.litert.value(v)) for v in returned]
        for a, x in zip(args, sample):
            self.values[a] = np.asarray(x)
        return outputs


class QuantizedRunner:
    """A quantized model on qcc's integer runtime (float islands in-process), or, when that
    runtime cannot run it (an op without a kernel), on LiteRT from its .tflite. Outputs are
    float (dequantized)."""

    def __init__(self, module: ModuleOp):
        from qcc.backends.numba import compile_module
        from qcc.dialects.ir import find_main
        from qcc.runtime.errors import ExecutorError

        self.compiled = None
        self.interpreter = None
        returned = list(find_main(module).body.block.last_op.operands)  # type: ignore[union-attr]
        self.output_types = [_quantized_type(v) for v in returned]
        try:
            self.compiled = compile_module(module)
        except (ExecutorError, QccError) as first:
            from qcc.backends.tflite import export_tflite
            from qcc.litert import make_interpreter

            try:
                self.interpreter = make_interpreter(export_tflite(module))
            except Exception:  # noqa: BLE001 - neither runtime: the integer runtime's reason
                raise QccError(f"cannot run the quantized model: {first}") from None

    @property
    def on_litert(self) -> bool:
        return self.interpreter is not None

    def run(self, sample: Sample) -> list[np.ndarray]:
        if self.compiled is not None:
            with np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
                # no "compiling kernels" line per candidate model: the analysis shows its own
                outputs = self.compiled.run(list(sample))
            return [
                dequantize(y, t) if t is not None else np.asarray(y, np.float32)
                for y, t in zip(outputs, self.output_types)
            ]
        interpreter = self.interpreter
        assert interpreter is not None
        for d, x in zip(interpreter.get_input_details(), sample):
            interpreter.set_tensor(d["index"], _litert_input(x, d))
        interpreter.invoke()
        return [_litert_output(interpreter, d) for d in interpreter.get_output_details()]


def _litert_input(x: np.ndarray, detail) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.asarray(x, dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = _round_half_away(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def _litert_output(interpreter, detail) -> np.ndarray:
    y = interpreter.get_tensor(detail["index"])
    if y.dtype.kind == "f":
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float64) - zero_point) * scale).astype(np.float32)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _per_axis(q, ndim: int) -> tuple[Any, Any]:
    from qcc.dialects.quant import UniformQuantizedPerAxisType

    if isinstance(q, UniformQuantizedPerAxisType):
        shape = [1] * ndim
        shape[q.axis] = -1
        scale = np.asarray(q.scales, np.float64).reshape(shape)
        zp = np.asarray(q.zero_points, np.float64).reshape(shape)
        return scale, zp
    return float(np.float32(q.scale)), float(q.zero_point)


def dequantize(stored: np.ndarray, q) -> np.ndarray:
    """Real values of stored integers of quantized type `q` (per tensor or per axis)."""
    stored = np.asarray(stored)
    scale, zp = _per_axis(q, stored.ndim)
    return ((stored.astype(np.float64) - zp) * scale).astype(np.float32)


def quantize(real: np.ndarray, q) -> np.ndarray:
    """`real` stored as quantized type `q`: round half away from zero, clamped to the
    storage range (what the quantize pass and TFLite's converter do)."""
    real = np.asarray(real, np.float64)
    scale, zp = _per_axis(q, real.ndim)
    with np.errstate(all="ignore"):
        stored = _round_half_away(real / scale) + zp
    stored = np.clip(np.nan_to_num(stored), q.storage_min, q.storage_max)
    bits = q.storage_bits
    width = 8 if bits <= 8 else 16 if bits <= 16 else 32 if bits <= 32 else 64
    dtype = np.dtype(f"{'' if q.is_signed else 'u'}int{width}")
    return stored.astype(dtype)


# ------------------------------------------------------------------------------------------
# Per-op errors: local (exact inputs) and cumulative
# ------------------------------------------------------------------------------------------


@dataclass
class OpMeasure:
    """One op of a quantized model, measured against the float run of the same IR."""

    index: int
    """Its index in `nn_ops` (the same in `Stages.pre` and every model made from it)."""
    name: str
    op: str
    precision: str
    reason: str = ""
    """Why it computes in float (empty for an integer op)."""
    local: SnrAccumulator | None = None
    """Its output with exact inputs: its int8 kernel on the float reference inputs, quantized
    (None for a float op, or when measured on LiteRT)."""
    cumulative: SnrAccumulator = field(default_factory=SnrAccumulator)
    """Its output in the quantized model."""
    island_differs: bool = False
    """Whether its float island computes anything its int8 kernel does not (on the
    measured data): False means promoting it cannot change the model."""


class MismatchError(QccError):
    """The quantized model and the reference are not the same IR op for op."""


def _check_same_ops(q_ops: Sequence[Operation], f_ops: Sequence[Operation]) -> None:
    if len(q_ops) != len(f_ops):
        raise MismatchError(
            f"the quantized model has {len(q_ops)} ops, its float reference {len(f_ops)}"
        )
    for q, f in zip(q_ops, f_ops):
        q_shapes = [tuple(r.type.get_shape()) for r in q.results]  # type: ignore[attr-defined]
        f_shapes = [tuple(r.type.get_shape()) for r in f.results]  # type: ignore[attr-defined]
        if op_name(q) != op_name(f) or q_shapes != f_shapes:
            raise MismatchError(
                f"op {op_name(q)} ({q.name}) does not match its reference {op_name(f)}"
            )


def measure_ops(
    quantized: ModuleOp,
    reference: ModuleOp,
    samples: Iterable[Sample],
    *,
    float_model: FloatRunner | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[OpMeasure], list[SnrAccumulator], int]:
    """Every nn op of `quantized`, measured on `samples` against `reference` (the same IR in
    float, `Stages.reference()`), and every model output's SNR against `float_model` (the
    original float model; default `reference`). Returns (ops, outputs, samples seen).

    Local SNR needs qcc's integer runtime (per-op kernels); on a model it cannot run (a
    custom op) the quantized model runs on LiteRT, every value read from its own tensor,
    and only cumulative SNRs are measured."""
    from qcc.backends.numba import CompiledModel, build_plan, op_is_quantized
    from qcc.dialects import quant
    from qcc.dialects.ir import find_main
    from qcc.runtime.errors import ExecutorError
    from qcc.runtime.kernels import int8_registry as reg
    from qcc.runtime.kernels import lookup
    from qcc.runtime.plan import CALLABLE_KERNEL

    q_ops = nn_ops(quantized)
    f_ops = nn_ops(reference)
    _check_same_ops(q_ops, f_ops)
    position = {op: i for i, op in enumerate(q_ops)}
    measures = [
        OpMeasure(i, op_name(op), op_kind(op), precision(op),
                  reason(op) if precision(op) == "float" else "")
        for i, op in enumerate(q_ops)
    ]
    q_func = find_main(quantized)
    f_func = find_main(reference)
    f_runner = FloatRunner(reference)
    truth = float_model or f_runner
    returned = list(q_func.body.block.last_op.operands)  # type: ignore[union-attr]
    outputs = [SnrAccumulator() for _ in returned]

    def reference_value(v: SSAValue) -> SSAValue | None:
        """The reference value `v` stands for (casts looked through), None for a constant."""
        while True:
            if isinstance(v, BlockArgument):
                return f_func.body.block.args[v.index]
            owner = v.owner
            if isinstance(owner, (quant.QuantizeCastOp, quant.DequantizeCastOp)):
                v = owner.operands[0]
                continue
            if owner in position:
                return f_ops[position[owner]].results[v.index]  # type: ignore[union-attr]
            return None

    # qcc's runtime, one step per op, every value's slot known
    slots: dict[SSAValue, int] = {}
    plan = None
    try:
        plan = build_plan(quantized, fuse=False, slots_out=slots)
    except (ExecutorError, QccError):
        plan = None
    if plan is None:
        return _measure_on_litert(
            quantized, q_ops, f_ops, measures, reference_value, f_runner, truth, outputs,
            returned, samples, progress,
        )
    compiled = CompiledModel(plan)
    slot_value = {s: v for v, s in slots.items()}
    stepped = [
        op
        for op in q_func.body.block.ops
        if op is not q_func.body.block.last_op
        and not isinstance(op, quant.StatsOp)
        and not (op.dialect_name() == "nn" and op.name == "nn.constant")
    ]
    assert len(stepped) == len(plan.steps), "build_plan(fuse=False) makes one step per op"
    step_index = {id(s): i for i, s in enumerate(plan.steps)}
    op_step = {op: plan.steps[i] for i, op in enumerate(stepped)}
    bound: dict[int, Callable] = {}

    def kernel(step) -> Callable:
        fn = bound.get(id(step))
        if fn is None:
            if step.kernel == CALLABLE_KERNEL:
                inner = step.params["fn"]

                def fn(inputs, params, inner=inner):
                    return inner(inputs)
            else:
                fn = reg.RUNNERS[step.kernel]
                bind = getattr(fn, "bind", None)
                if bind is not None:
                    fn = bind(step.params)
            bound[id(step)] = fn
        return fn

    float_kernels: dict[Operation, Callable | None] = {}

    def float_kernel(f_op: Operation) -> Callable | None:
        if f_op not in float_kernels:
            factory = lookup(f_op)
            float_kernels[f_op] = factory(f_op) if factory is not None else None
        return float_kernels[f_op]

    seen = 0
    for sample in samples:
        truth_outputs = truth.run(sample)
        f_runner.run(sample, record=True)
        ref = f_runner.values
        results: dict[int, list[np.ndarray]] = {}

        def observe(step, out):
            results[step_index[id(step)]] = list(out)

        with np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
            got = compiled.run(list(sample), observer=observe)
        for acc, y, v, t in zip(outputs, got, returned, truth_outputs):
            q = _quantized_type(v)
            acc.add(t, dequantize(y, q) if q is not None else y)
        for i, q_op in enumerate(q_ops):
            m = measures[i]
            f_op = f_ops[i]
            step = op_step[q_op]
            out = results[step_index[id(step)]]
            for r, f_r, y in zip(q_op.results, f_op.results, out):
                q = _quantized_type(r)
                m.cumulative.add(ref[f_r], dequantize(y, q) if q is not None else y)
            if not op_is_quantized(q_op):
                continue
            # local: the op's int8 kernel on the reference inputs, quantized as it takes them
            inputs = []
            for j in step.inputs:
                if j in plan.constants:
                    inputs.append(plan.constants[j])
                    continue
                v = slot_value[j]
                rv = reference_value(v)
                x = ref[rv] if rv is not None else None
                q = _quantized_type(v)
                inputs.append(quantize(x, q) if q is not None else np.asarray(x, np.float32))
            with np.errstate(all="ignore"):
                local = list(kernel(step)(inputs, step.params))
            if m.local is None:
                m.local = SnrAccumulator()
            for r, f_r, y in zip(q_op.results, f_op.results, local):
                q = _quantized_type(r)
                m.local.add(ref[f_r], dequantize(y, q) if q is not None else y)
            if m.island_differs:
                continue
            if _island_moves_boundary(q_op):
                m.island_differs = True
                continue
            # the float island on the same inputs: does it compute anything else?
            fn = float_kernel(f_op)
            if fn is None:
                m.island_differs = True
                continue
            args = []
            for q_v, f_v in zip(q_op.operands, f_op.operands):
                q = _quantized_type(q_v)
                if _is_constant(q_v) or q is None:
                    args.append(ref[f_v])
                else:
                    args.append(dequantize(quantize(ref[reference_value(q_v)], q), q))
            with np.errstate(all="ignore"):
                island = fn(*args)
            island = [island] if len(f_op.results) == 1 else list(island)
            for r, y_int, y_float in zip(q_op.results, local, island):
                q = _quantized_type(r)
                same = (
                    np.array_equal(quantize(y_float, q), y_int)
                    if q is not None
                    else np.array_equal(np.asarray(y_float), np.asarray(y_int))
                )
                if not same:
                    m.island_differs = True
        seen += 1
        if progress is not None:
            progress(seen)
    return measures, outputs, seen


def _island_moves_boundary(op: Operation) -> bool:
    """Whether making `op` a float island removes a quantization next to it: an operand
    quantized from float (a model input, a float island's result) that it would read in
    float, or a result read in float (a model output, a float island) that it would hand
    over unrounded."""
    from qcc.dialects import quant

    for v in op.operands:
        if isinstance(v.owner, quant.QuantizeCastOp) and not _is_constant(v.owner.operands[0]):
            return True
    return any(
        isinstance(use.operation, quant.DequantizeCastOp) for r in op.results for use in r.uses
    )


def _measure_on_litert(
    quantized, q_ops, f_ops, measures, reference_value, f_runner, truth, outputs, returned,
    samples, progress,
) -> tuple[list[OpMeasure], list[SnrAccumulator], int]:
    """`measure_ops` when qcc's runtime cannot run the quantized model: LiteRT runs it (every
    value read from its own tensor); cumulative SNRs only, every op counted as one a
    promotion could change."""
    from qcc.dialects.ir import find_main
    from qcc.litert import LiteRTRunner

    try:
        runner = LiteRTRunner(find_main(quantized))
    except Exception as e:  # noqa: BLE001
        raise QccError(f"cannot run the quantized model: {e}") from None
    for m in measures:
        m.island_differs = m.precision != "float"
    seen = 0
    for sample in samples:
        truth_outputs = truth.run(sample)
        f_runner.run(sample, record=True)
        ref = f_runner.values
        with np.errstate(all="ignore"):
            runner.run(runner.check(sample))
        for acc, v, t in zip(outputs, returned, truth_outputs):
            y = np.array(runner.value(v))
            q = _quantized_type(v)
            acc.add(t, dequantize(y, q) if q is not None else y)
        for m, q_op, f_op in zip(measures, q_ops, f_ops):
            for r, f_r in zip(q_op.results, f_op.results):
                if r not in runner.tensor_of or f_r not in ref:
                    continue
                y = np.array(runner.value(r))
                q = _quantized_type(r)
                m.cumulative.add(ref[f_r], dequantize(y, q) if q is not None else y)
        seen += 1
        if progress is not None:
            progress(seen)
    return measures, outputs, seen


# ------------------------------------------------------------------------------------------
# The analysis
# ------------------------------------------------------------------------------------------


@dataclass
class OpSensitivity:
    """One op's promotion, measured: every output's SNR with only this op in float."""

    index: int
    name: str
    op: str
    promoted: list[float]
    baseline_worst: float
    local_snr: float = math.nan
    """Its local SNR on the held-out data (exact inputs), for comparison."""

    @property
    def worst(self) -> float:
        return worst(self.promoted)

    @property
    def gain(self) -> float:
        """dB the worst output gains when this op alone is in float."""
        return self.worst - self.baseline_worst


@dataclass
class Scan:
    """The sensitivity of every promotable op of a model, on held-out data."""

    outputs: list[str]
    baseline: list[float]
    """Every output's SNR (dB) of the model as the pipeline makes it."""
    ops: list[OpSensitivity]
    skipped: list[tuple[int, str, str, str]]
    """(index, name, op, why) of the int8 ops not measured (promoting them changes nothing)."""
    split: str
    """How the held-out data was chosen (`DataSplit.describe`)."""
    seconds: float = 0.0
    cached: bool = False

    @property
    def baseline_worst(self) -> float:
        return worst(self.baseline)

    def ranked(self) -> list[OpSensitivity]:
        """The measured ops, the most helpful promotion first (undefined gains last)."""
        return sorted(self.ops, key=lambda s: math.inf if math.isnan(s.gain) else -s.gain)

    def by_index(self) -> dict[int, OpSensitivity]:
        return {s.index: s for s in self.ops}

    def to_json(self) -> dict:
        return {
            "outputs": self.outputs,
            "baseline": self.baseline,
            "split": self.split,
            "seconds": self.seconds,
            "ops": [
                {"index": s.index, "name": s.name, "op": s.op, "promoted": s.promoted,
                 "local_snr": s.local_snr}
                for s in self.ops
            ],
            "skipped": [list(x) for x in self.skipped],
        }

    @classmethod
    def from_json(cls, doc: dict) -> Scan:
        baseline = [float(x) for x in doc["baseline"]]
        base = worst(baseline)
        return cls(
            list(doc["outputs"]),
            baseline,
            [
                OpSensitivity(int(o["index"]), o["name"], o["op"],
                              [float(x) for x in o["promoted"]], base, float(o["local_snr"]))
                for o in doc["ops"]
            ],
            [(int(i), n, o, w) for i, n, o, w in doc["skipped"]],
            doc["split"],
            float(doc.get("seconds", 0.0)),
            cached=True,
        )


@dataclass
class Advice:
    """Ops to promote, chosen greedily on held-out data, and the worst-output SNR (dB)
    measured after each one is added (`steps`: (op, worst output with it and the ones
    before))."""

    before: float
    steps: list[tuple[OpSensitivity, float]]
    outputs_after: list[float]
    split: str

    @property
    def after(self) -> float:
        return self.steps[-1][1] if self.steps else self.before

    @property
    def indices(self) -> list[int]:
        return [s.index for s, _ in self.steps]


class _Progress:
    """`sensitivity: i/N ops` on a terminal, rewritten in place; silent otherwise."""

    def __init__(self, total: int, stream: TextIO | None):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        try:
            self.enabled = bool(isatty and isatty())
        except (ValueError, OSError):
            self.enabled = False
        self.total = total
        self.shown = False

    def update(self, done: int, what: str = "") -> None:
        if not self.enabled:
            return
        text = f"\rsensitivity: {done}/{self.total} ops {what}"[:99]
        self.stream.write(text.ljust(99))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 99 + "\r")
            self.stream.flush()


def cache_dir() -> Path:
    """`$QCC_CACHE_DIR`, else `$XDG_CACHE_HOME/qcc`, else `~/.cache/qcc`."""
    given = os.environ.get("QCC_CACHE_DIR")
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "qcc"


_CODE_DIGEST: str | None = None


def code_digest() -> str:
    """SHA-256 of qcc's Python sources (the packages qcc, qcc.passes, qcc.dialects,
    qcc.runtime): part of every cache key, so results measured by other code are not
    reused."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        import importlib

        h = hashlib.sha256()
        roots = sorted({
            Path(importlib.import_module(name).__file__).parent  # type: ignore[arg-type]
            for name in ("qcc", "qcc.passes", "qcc.dialects", "qcc.runtime")
        })
        for root in roots:
            for path in sorted(root.rglob("*.py")):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
        _CODE_DIGEST = h.hexdigest()
    return _CODE_DIGEST


class Analysis:
    """The sensitivity of a quantization pipeline's model, measured on held-out data.

    Build it with `from_passes` (cuts the pipeline, splits or takes the held-out data), or
    from `Stages` and held-out samples directly (the caller guarantees the ranges did not
    see them)."""

    def __init__(
        self,
        stages: Stages,
        heldout: Sequence[Sample],
        *,
        split: DataSplit | None = None,
        cache: bool = True,
        progress_stream: TextIO | None = None,
    ):
        if not heldout:
            raise QccError("sensitivity analysis needs held-out samples")
        self.stages = stages
        self.heldout = [list(s) for s in heldout]
        self.split = split
        self.cache = cache
        self.progress_stream = progress_stream
        self._float = FloatRunner(stages.float_module)
        with np.errstate(all="ignore"):
            self.references = [self._float.run(s) for s in self.heldout]
        from qcc.dialects.ir import find_main
        from qcc.signature import names

        main = find_main(stages.float_module)
        self.output_names = names(main.res_attrs, len(self.references[0]), "output_")
        self._sets: dict[str, list[float]] = {}
        self._key: str | None = None
        self._baseline_module: ModuleOp | None = None
        self.measures: list[OpMeasure] | None = None

    @classmethod
    def from_passes(
        cls,
        float_module: ModuleOp,
        passes: Sequence[ModulePass],
        samples: Sequence[Sample],
        *,
        heldout: Sequence[Sample] | None = None,
        every: int = HOLDOUT_EVERY,
        fold: int | None = None,
        cache: bool = True,
        progress_stream: TextIO | None = None,
    ) -> Analysis:
        """The pipeline `passes` calibrated on `samples` minus every `every`-th one, measured
        on those; or, with `heldout`, calibrated on all of `samples` and measured on
        `heldout`."""
        if heldout is not None:
            items = [list(s) for s in samples]
            held = [list(s) for s in heldout]
            split = DataSplit(items, held, tuple(range(len(items))), (), 0)
        else:
            split = split_samples(samples, every, fold)
        stages = Stages.from_passes(float_module, passes, split.ranges)
        return cls(
            stages, split.heldout, split=split, cache=cache, progress_stream=progress_stream
        )

    # -- evaluation -------------------------------------------------------------------------

    def describe_split(self) -> str:
        if self.split is not None:
            return self.split.describe()
        n = len(self.heldout)
        text = f"{n} held-out sample{'s' if n != 1 else ''}"
        return text + (": few, the numbers are indicative" if n < FEW_HELDOUT else "")

    def _snrs(self, module: ModuleOp) -> list[float]:
        runner = QuantizedRunner(module)
        accs = [SnrAccumulator() for _ in self.references[0]]
        for sample, refs in zip(self.heldout, self.references):
            for acc, ref, got in zip(accs, refs, runner.run(sample)):
                acc.add(ref, got)
        return [a.db for a in accs]

    def evaluate(self, promote: Iterable[int] = ()) -> list[float]:
        """Every output's SNR (dB) on the held-out samples with the ops at indices `promote`
        (`nn_ops(stages.pre)`) in float: the very model `stages.quantized(promote)` makes."""
        chosen = sorted(set(promote))
        key = ",".join(map(str, chosen))
        if key not in self._sets:
            self._load_cache()
        if key not in self._sets:
            if not chosen:
                module = self.baseline_module()
            else:  # the baseline verified: its variants are not verified again
                module = self.stages.quantized(chosen, verify=False)
            self._sets[key] = self._snrs(module)
        return list(self._sets[key])

    def evaluate_precisions(self, precisions: dict[int, str]) -> list[float]:
        """Every output's SNR (dB) on the held-out samples of `stages.configured(precisions)`
        (ops in "float" or "int16"); cached like `evaluate`."""
        if all(p == "float" for p in precisions.values()):
            return self.evaluate(precisions)
        key = ",".join(f"{i}{precisions[i][0]}" for i in sorted(precisions))
        if key not in self._sets:
            self._load_cache()
        if key not in self._sets:
            module = self.stages.configured(precisions, verify=False)
            self._sets[key] = self._snrs(module)
        return list(self._sets[key])

    def baseline(self) -> list[float]:
        return self.evaluate(())

    def baseline_module(self) -> ModuleOp:
        if self._baseline_module is None:
            self._baseline_module = self.stages.quantized()
        return self._baseline_module

    # -- the scan ---------------------------------------------------------------------------

    def measure(self) -> list[OpMeasure]:
        """`measure_ops` of the model on the held-out samples (local SNRs, and which ops a
        promotion can change)."""
        if self.measures is None:
            self.measures, _, _ = measure_ops(
                self.baseline_module(), self.stages.reference(), self.heldout,
                float_model=self._float,
            )
        return self.measures

    def scan(self) -> Scan:
        """Every promotable op measured (module docstring), cached."""
        import time

        cached = self._load_cache()
        if cached is not None:
            return cached
        start = time.perf_counter()
        baseline = self.baseline()
        base = worst(baseline)
        measures = self.measure()
        candidates: list[OpMeasure] = []
        skipped: list[tuple[int, str, str, str]] = []
        for m in measures:
            if m.precision == "float":
                continue
            if not self.stages.allows_float:
                skipped.append((m.index, m.name, m.op, "the target allows no float op"))
            elif not m.island_differs:
                skipped.append(
                    (m.index, m.name, m.op, "its float island computes the same values")
                )
            else:
                candidates.append(m)
        progress = _Progress(len(candidates), self.progress_stream)
        results = []
        try:
            for done, m in enumerate(candidates):
                progress.update(done, m.name)
                promoted = self.evaluate({m.index})
                local = m.local.db if m.local is not None else math.nan
                results.append(OpSensitivity(m.index, m.name, m.op, promoted, base, local))
            progress.update(len(candidates))
        finally:
            progress.close()
        scan = Scan(
            self.output_names, baseline, results, skipped, self.describe_split(),
            time.perf_counter() - start,
        )
        self._scan = scan
        self._save_cache()
        return scan

    def predict(self, promote: Iterable[int], scan: Scan | None = None,
                given: tuple[Iterable[int], Sequence[float]] | None = None) -> list[float]:
        """Every output's SNR (dB) predicted for the ops at `promote` in float, from the
        single-op measurements of `scan` alone (no model is run): each op's promotion removes
        the noise power it removed alone (errors of different ops add up in power). `given`
        = (a set of ops, its measured SNRs) predicts from that set instead of the baseline
        (`promote` then lists the ops added to it). A cheap ranking for a search, which
        confirms its choice with `evaluate`."""
        scan = scan or self.scan()
        by_index = scan.by_index()
        start = list(scan.baseline) if given is None else list(given[1])
        predicted = []
        for o, (base, now) in enumerate(zip(scan.baseline, start)):
            if math.isnan(now) or math.isinf(now):
                predicted.append(now)
                continue
            noise = 10.0 ** (-now / 10.0)  # noise / signal of this output, as measured
            for i in set(promote):
                single = by_index.get(i)
                if single is None or math.isnan(single.promoted[o]) or math.isnan(base):
                    continue
                removed = 10.0 ** (-base / 10.0) - 10.0 ** (-min(single.promoted[o], 300.0) / 10.0)
                noise -= removed
            noise = max(noise, 10.0 ** (-now / 10.0) * 1e-6)  # no op removes all the rest
            predicted.append(-10.0 * math.log10(noise))
        return predicted

    def advise(
        self, scan: Scan | None = None, *, max_ops: int = 3, min_gain_db: float = 0.5,
        breadth: int = 4,
    ) -> Advice:
        """Greedy promotions, each step measured: rank the remaining ops by the worst output
        `predict` expects after adding each to the ops chosen so far, measure the `breadth`
        best (`evaluate`), keep the one that raises the worst output most, while it raises
        it by at least `min_gain_db`, up to `max_ops` ops."""
        scan = scan or self.scan()
        before = scan.baseline_worst
        remaining = [s for s in scan.ops if not math.isnan(s.worst)]
        steps: list[tuple[OpSensitivity, float]] = []
        chosen: list[int] = []
        current = before
        outputs_after = list(scan.baseline)
        while remaining and len(steps) < max_ops:
            def expected(s: OpSensitivity) -> float:
                return worst(self.predict([s.index], scan, (chosen, outputs_after)))

            shortlist = sorted(remaining, key=lambda s: -expected(s))[:breadth]
            best: tuple[float, OpSensitivity, list[float]] | None = None
            for s in shortlist:
                snrs = self.evaluate([*chosen, s.index])
                w = worst(snrs)
                if best is None or w > best[0]:
                    best = (w, s, snrs)
            assert best is not None
            w, s, snrs = best
            if not w >= current + min_gain_db:
                break
            steps.append((s, w))
            chosen.append(s.index)
            current = w
            outputs_after = snrs
            remaining = [r for r in remaining if r.index != s.index]
        self._save_cache()
        return Advice(before, steps, outputs_after, scan.split)

    # -- cache ------------------------------------------------------------------------------

    def cache_key(self) -> str:
        if self._key is None:
            from qcc.irtext import print_ir
            from qcc.pipeline import pipeline_text

            h = hashlib.sha256()
            h.update(f"qcc-sensitivity {CACHE_FORMAT} {code_digest()}\n".encode())
            h.update(print_ir(self.stages.pre).encode())
            h.update(pipeline_text(self.stages.rest).encode())
            h.update(f"allows_float={self.stages.allows_float}\n".encode())
            for group in (self.heldout, self.references):
                for sample in group:
                    for x in sample:
                        a = np.ascontiguousarray(x)
                        h.update(f"{a.dtype.str}{a.shape}".encode())
                        h.update(a.tobytes())
            self._key = h.hexdigest()
        return self._key

    def _cache_path(self) -> Path:
        return cache_dir() / "sensitivity" / f"{self.cache_key()}.json"

    def _load_cache(self) -> Scan | None:
        scan = getattr(self, "_scan", None)
        if scan is not None or not self.cache:
            return scan
        if getattr(self, "_cache_read", False):
            return None
        self._cache_read = True
        try:
            doc = json.loads(self._cache_path().read_text())
            if doc.get("format") != CACHE_FORMAT:
                return None
            for key, snrs in doc.get("sets", {}).items():
                self._sets.setdefault(key, [float(x) for x in snrs])
            if doc.get("scan") is not None:
                self._scan = Scan.from_json(doc["scan"])
                return self._scan
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return None

    def _save_cache(self) -> None:
        if not self.cache:
            return
        from qcc.fileio import atomic_write

        scan = getattr(self, "_scan", None)
        doc = {
            "format": CACHE_FORMAT,
            "scan": scan.to_json() if scan is not None else None,
            "sets": self._sets,
        }
        path = self._cache_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(doc))
        except (OSError, QccError):
            pass  # a cache that cannot be written is no cache
