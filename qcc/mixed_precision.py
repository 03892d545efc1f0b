"""Mixed precision: the fewest, cheapest promotions (int8 -> int16 or float) that reach an SNR.

    from qcc.mixed_precision import search
    plan = search(analysis, get_target("xnnpack"), target_snr=25.0)
    plan.reached, plan.after, plan.choices      # [Choice(index, name, op, "float", ...)]
    plan.pipeline_option()                     # 'assign-precision{float=a,b int16=c}'

`qcc --target-snr DB` and `qcc.quantize(..., target_snr=DB)` run it: the search works on a
`qcc.sensitivity.Analysis` (ranges from part of the representative data, SNRs measured on the
held-out rest, every candidate model built by the same passes that emit it), and the plan is
written into the pipeline as an `assign-precision` pass, so the emitted model is made by the
ordinary preset calibrated on all the data, and `--print-pipeline` shows how to make it again.

**The options per op.** An op the pipeline makes int8 can be promoted to
- "float", a float island, where the target allows float ops (not `int8-only`) and the island
  computes something its int8 kernel does not (`OpMeasure.island_differs`);
- "int16", int16 activations with int8 weights (TFLite's 16x8 kernels), where the target
  allows int16 and the op's declaration lists "int16x8" (`int16_capable`).
`max_float_ops` bounds the number of float islands.

**The search** is measured, in three phases.
1. Greedy: each step evaluates (`Analysis.evaluate_precisions`) a shortlist of one-op
   additions to the current plan — the ops whose single promotion helped the worst output
   most (`Analysis.scan`, when float is allowed), the ops with the worst local SNR (their own
   int8 error with exact inputs), and the neighbours of the latest promotions (a promotion
   next to another removes the int8 rounding between them: a region grows) — and keeps the
   addition that raises the worst output the most; among additions within `TIE_DB` of the
   best it takes the cheapest. At most `GREEDY_STEPS` steps; `STALL_STEPS` steps in a row
   that gain nothing end it.
2. Suffix: if the greedy phase stalls short of the target (errors that only a whole region
   removes, e.g. a sigmoid output near 0 that needs its logit exact), every op from index k
   on is promoted, k found by bisection as the largest that reaches the target.
3. Pruning: each chosen op whose removal keeps the target is removed, the costliest first.
The result is a small set, not a proven minimum (the exact problem is a subset search over
every op).

**Held-out data.** With `FOLDS_BELOW` samples or more, the SNRs come from one held-out
quarter of them (`Analysis`). With fewer, one quarter is two or three images, too few to
trust: the search measures on every fold (`Folds`: each sample held out once, ranges from
the others, an output counted at its worst fold; candidates are ranked on the first fold,
the one kept is measured on all) and aims `FEW_SAMPLES_MARGIN_DB` above the target, or at
the target itself when the margin is out of reach.

**Cost** (for ties and for the report) is the target's measured latency of the op in that
precision over its int8 latency (qcc/targets/xnnpack.json: `Target.latency_us`), scaled by
the op's result size; a target without measurements uses `DEFAULT_COST_RATIO`. Only the
ranking uses it: the latency a plan costs is measured on the emitted file (bench/accuracy.py).

**When the target cannot be reached**, `Plan.blocking` names the op that stops it: the
op with the worst local SNR among those the target gives no option (no 16x8 kernel on an
int8-only target, or float islands over `max_float_ops`), or says that every op already has
the highest precision the target allows (what remains is the int8 weights); `Plan.after` is
the best SNR reached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from xdsl.ir import Operation

from qcc.errors import QccError
from qcc.sensitivity import HOLDOUT_EVERY, Analysis, _Progress, nn_ops, op_kind, op_name, worst

__all__ = ["Choice", "Plan", "search", "TIE_DB", "STALL_STEPS", "DEFAULT_COST_RATIO"]

TIE_DB = 0.25
"""Additions whose worst output is within this of the best one's are ties: the cheapest wins."""
STALL_STEPS = 2
"""Steps in a row that gain less than `MIN_GAIN_DB` end the greedy phase."""
GREEDY_STEPS = 12
"""At most this many greedy steps; then the suffix phase."""
MIN_GAIN_DB = 0.05
SHORTLIST = 6
"""Ops taken per step from each ranking (single-op gain, local SNR, neighbours of the latest
promotions)."""
DETAILED_PLANS = 8
"""Plans up to this many promotions list the worst output after each (one model each)."""
DEFAULT_COST_RATIO = {"float": 1.0, "int16": 2.0}
"""Cost of a promotion per result element, relative to the op's int8 latency, where the
target measured nothing."""


@dataclass(frozen=True)
class Choice:
    """One promoted op."""

    index: int
    """Its index in `nn_ops(stages.pre)`."""
    name: str
    op: str
    precision: str
    """"float" or "int16"."""
    worst_after: float
    """The worst output (dB, held-out) once this op and the ones before it are promoted."""
    cost: float
    """Estimated extra latency (relative units: int8 latency of the op = its result size)."""


@dataclass
class Plan:
    """What the search chose, and what it measured."""

    target_snr: float
    outputs: list[str]
    before: list[float]
    after: list[float]
    choices: list[Choice] = field(default_factory=list)
    blocking: str = ""
    """Empty when the target is reached; else why not (the op that blocks it)."""
    margin_db: float = 0.0
    """How far above `target_snr` the search aimed (few samples: `FEW_SAMPLES_MARGIN_DB`)."""
    split: str = ""
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def reached(self) -> bool:
        return worst(self.after) >= self.target_snr

    def precisions(self) -> dict[int, str]:
        return {c.index: c.precision for c in self.choices}

    def pipeline_option(self) -> str:
        """The `assign-precision{...}` pass that makes this plan ('' for an empty plan), op
        names quoted where the pipeline syntax needs it."""
        from qcc.pipeline import _format_value

        groups = []
        for precision in ("int16", "float"):
            names = list(dict.fromkeys(c.name for c in self.choices if c.precision == precision))
            if names:
                groups.append(f"{precision}={','.join(_format_value(n) for n in names)}")
        return f"assign-precision{{{' '.join(groups)}}}" if groups else ""

    def summary(self) -> str:
        """A few lines for a terminal: before -> after, the promotions, or what blocks."""
        head = (
            f"--target-snr {self.target_snr:g}: worst output {_db(worst(self.before))} -> "
            f"{_db(worst(self.after))} dB ({_worst_output(self)}), on held-out samples"
        )
        lines = [head[:100]]
        if self.margin_db:
            lines.append(f"  aiming {self.margin_db:g} dB above the target: few samples, a noisy "
                         "estimate")
        if self.split:
            import textwrap

            lines += textwrap.wrap(self.split, 98, initial_indent="  ", subsequent_indent="  ")
        if not self.choices:
            lines.append("  no promotion needed" if self.reached else "  no promotion helps")
        counts = {p: sum(c.precision == p for c in self.choices) for p in ("int16", "float")}
        if self.choices:
            lines.append(
                f"  {len(self.choices)} promotion{'s' if len(self.choices) != 1 else ''}: "
                f"{counts['float']} float, {counts['int16']} int16 ({self.evaluations} models "
                f"measured in {self.seconds:.0f} s)"
            )
        for c in self.choices:
            after = "" if math.isnan(c.worst_after) else f"-> {_db(c.worst_after):>5} dB"
            line = f"  {c.precision:<6} #{c.index:<4} {c.op[:24]:<24} {after:<9}  {c.name}"
            lines.append(line[:100])
        if self.blocking:
            import textwrap

            lines += textwrap.wrap(f"target not reached: {self.blocking}", 98,
                                   initial_indent="  ", subsequent_indent="    ")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "target_snr": self.target_snr,
            "reached": self.reached,
            "outputs": self.outputs,
            "before": self.before,
            "after": self.after,
            "choices": [c.__dict__ for c in self.choices],
            "blocking": self.blocking,
            "split": self.split,
            "pipeline_option": self.pipeline_option(),
        }


def _db(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.1f}")


def _elements(op: Operation) -> int:
    n = 0
    for r in op.results:
        shape = getattr(r.type, "get_shape", lambda: ())()
        n += math.prod(max(int(d), 1) for d in shape)
    return max(n, 1)


def cost(target: Any, op: Operation, precision: str) -> float:
    """The estimated extra latency of `op` in `precision` over int8 (module docstring)."""
    ratio = None
    latency = getattr(target, "latency_us", None)
    if latency is not None:
        try:
            promoted, int8 = latency(op, precision), latency(op, "int8")
        except (ValueError, KeyError):
            promoted = int8 = None
        if promoted is not None and int8:
            ratio = max(float(promoted) / float(int8) - 1.0, 0.0)
    if ratio is None:
        ratio = DEFAULT_COST_RATIO[precision]
    return ratio * _elements(op)


def _neighbours(ops: Sequence[Operation]) -> list[set[int]]:
    """For each op, the indices of the nn ops it reads from or feeds (through casts)."""
    index = {op: i for i, op in enumerate(ops)}
    found: list[set[int]] = [set() for _ in ops]

    def producers(value, depth=0) -> list[int]:
        owner = value.owner
        if not isinstance(owner, Operation):
            return []
        if owner in index:
            return [index[owner]]
        if depth < 3 and owner.dialect_name() == "quant":
            return [p for v in owner.operands for p in producers(v, depth + 1)]
        return []

    for i, op in enumerate(ops):
        for value in op.operands:
            for j in producers(value):
                found[i].add(j)
                found[j].add(i)
    return found


def search(
    analysis: Analysis | Folds,
    target: Any,
    target_snr: float,
    *,
    max_float_ops: int | None = None,
    progress_stream: TextIO | None = None,
    max_steps: int = 200,
    margin_db: float = 0.0,
) -> Plan:
    """The promotions that bring every output of `analysis`'s model to `target_snr` dB on
    its held-out samples (module docstring), aiming `margin_db` above it (an estimate from
    few samples is noisy). `target` answers `allows_float`, `allows_int16` and (optionally)
    `latency_us(op, precision)`."""
    if max_float_ops is not None and max_float_ops < 0:
        raise QccError(f"max_float_ops must be 0 or more, got {max_float_ops}")
    from qcc.passes.infer_scales import int16_capable

    start = time.perf_counter()
    stages = analysis.stages
    baseline = analysis.baseline()
    plan = Plan(
        target_snr, list(analysis.output_names), list(baseline), list(baseline),
        split=analysis.describe_split(),
    )
    plan.margin_db = margin_db
    if worst(baseline) >= target_snr + margin_db:
        plan.seconds = time.perf_counter() - start
        return plan
    ops = nn_ops(stages.pre)
    measures = {m.index: m for m in analysis.measure()}
    allow_float = bool(getattr(target, "allows_float", True)) and stages.allows_float
    allow_int16 = (
        bool(getattr(target, "allows_int16", True))
        and stages.allows_int16
        and stages.pre_scales is not None
    )
    scales_ops = nn_ops(stages.pre_scales) if stages.pre_scales is not None else []
    options: dict[int, list[str]] = {}
    why_not: dict[int, str] = {}
    for i, op in enumerate(ops):
        m = measures.get(i)
        if m is None or m.precision != "int8":
            continue
        found = []
        if allow_int16:
            capable, why = int16_capable(scales_ops[i])
            if capable:
                found.append("int16")
            else:
                why_not[i] = why
        elif not getattr(target, "allows_int16", True):
            why_not[i] = "the target allows no int16"
        if allow_float:  # alone it may change nothing (island_differs), in a region it does
            found.append("float")
        elif not allow_float:
            why_not[i] = (why_not.get(i, "") + "; " if i in why_not else "") + (
                "the target allows no float op"
            )
        if found:
            options[i] = found
    costs = {(i, p): cost(target, ops[i], p) for i, ps in options.items() for p in ps}
    neighbours = _neighbours(ops)
    single_gain: dict[int, float] = {}
    if allow_float:
        for s in analysis.scan().ops:
            if not math.isnan(s.gain):
                single_gain[s.index] = s.gain
    by_local = sorted(
        options,
        key=lambda i: (
            measures[i].local.db
            if measures[i].local is not None and not math.isnan(measures[i].local.db)
            else math.inf
        ),
    )
    by_gain = sorted(single_gain, key=lambda i: -single_gain[i])

    chosen: dict[int, str] = {}
    current = list(baseline)
    stall = 0
    steps = 0
    progress = _Progress(max(len(options), 1), progress_stream)
    goal = target_snr + margin_db
    rank = getattr(analysis, "evaluate_quick", analysis.evaluate_precisions)
    try:
        while worst(current) < goal and steps < min(max_steps, GREEDY_STEPS):
            steps += 1
            floats = sum(p == "float" for p in chosen.values())
            pool: list[int] = []
            for ranking in (by_gain, by_local):
                pool += [i for i in ranking if i not in chosen][:SHORTLIST]
            near_chosen: list[int] = []
            for j in reversed(list(chosen)):  # the latest promotions' neighbours first
                near_chosen += [k for k in sorted(neighbours[j]) if k in options and k not in chosen]
            pool += list(dict.fromkeys(near_chosen))[:SHORTLIST]
            pool = list(dict.fromkeys(pool))
            results = []
            for i in pool:
                near = any(i in neighbours[j] for j in chosen)
                cheapest = min(options[i], key=lambda p: costs[(i, p)])
                for p in [cheapest]:  # the greedy phase tries each op's cheapest promotion
                    if p == "float" and max_float_ops is not None and floats >= max_float_ops:
                        continue
                    if p == "float" and not measures[i].island_differs and not near:
                        continue  # alone, its float island computes what int8 does
                    trial = {**chosen, i: p}
                    snrs = rank(trial)
                    plan.evaluations += 1
                    w = worst(snrs)
                    if not math.isnan(w):
                        results.append((min(w, goal), w, i, p, snrs))
            progress.update(min(len(chosen), len(options)), f"{_db(worst(current))} dB")
            if not results:
                break
            best = max(r[0] for r in results)
            ties = [r for r in results if r[0] >= best - TIE_DB]
            _, w, i, p, snrs = min(ties, key=lambda r: (costs[(r[2], r[3])], -r[1]))
            if rank is not analysis.evaluate_precisions:  # ranked on one fold: measure on all
                snrs = analysis.evaluate_precisions({**chosen, i: p})
                w = worst(snrs)
            gain = w - worst(current)
            stall = stall + 1 if gain < MIN_GAIN_DB else 0
            chosen[i] = p
            current = snrs
            if stall >= STALL_STEPS:
                break
        if worst(current) < goal:  # greedy stalled: the smallest promoted suffix that reaches
            greedy = (dict(chosen), list(current))
            chosen, current = _suffix(analysis, plan, options, chosen, current, goal,
                                      max_float_ops)
            if worst(current) < goal and margin_db > 0:  # the margin is out of reach: the target
                goal = target_snr
                chosen, current = _suffix(analysis, plan, options, *greedy, goal, max_float_ops)
        if worst(current) >= goal:
            order = sorted(chosen, key=lambda k: -costs[(k, chosen[k])])
            for i in order:  # prune: the costliest first
                trial = {k: v for k, v in chosen.items() if k != i}
                snrs = analysis.evaluate_precisions(trial)
                plan.evaluations += 1
                if worst(snrs) >= goal:
                    chosen, current = trial, snrs
    finally:
        progress.close()
    # the plan, in graph order, with the worst output after each addition in that order
    running: dict[int, str] = {}
    for i in sorted(chosen):
        running[i] = chosen[i]
        after = math.nan
        if len(chosen) <= DETAILED_PLANS:
            after = worst(analysis.evaluate_precisions(dict(running)))
        plan.choices.append(
            Choice(i, op_name(ops[i]), op_kind(ops[i]), chosen[i], after, costs[(i, chosen[i])])
        )
    plan.after = list(current) if chosen else list(baseline)
    if not plan.reached:
        plan.blocking = _blocking(plan, ops, measures, options, chosen, why_not, max_float_ops)
    analysis._save_cache()
    plan.seconds = time.perf_counter() - start
    return plan


def _suffix(analysis, plan, options, chosen, current, goal, max_float_ops):
    """The greedy phase stalled (errors that only a whole region in higher precision
    removes, e.g. a sigmoid output near 0 that needs its logit exact): promote every op from
    index k on (float where allowed, else int16; `max_float_ops` honoured from the end),
    k found by bisection as the largest that reaches `goal`; the greedy choices are kept
    when they are better. Returns (chosen, snrs)."""

    def config(k: int) -> dict[int, str]:
        out = {i: p for i, p in chosen.items() if i < k}
        floats = sum(p == "float" for p in out.values())
        for i in sorted((i for i in options if i >= k), reverse=True):
            p = options[i]
            if "float" in p and (max_float_ops is None or floats < max_float_ops):
                out[i] = "float"
                floats += 1
            elif "int16" in p:
                out[i] = "int16"
        return out

    def measure(k: int) -> list[float]:
        plan.evaluations += 1
        return analysis.evaluate_precisions(config(k))

    lo_snrs = measure(0)
    if not worst(lo_snrs) >= goal:  # unreachable: the most the target allows
        if worst(lo_snrs) > worst(current):
            return config(0), lo_snrs
        return chosen, current
    lo, hi = 0, max(options) + 1  # config(lo) reaches, config(hi) = chosen does not
    best = lo_snrs
    while hi - lo > 1:
        mid = (lo + hi) // 2
        snrs = measure(mid)
        if worst(snrs) >= goal:
            lo, best = mid, snrs
        else:
            hi = mid
    return config(lo), best


def _blocking(plan, ops, measures, options, chosen, why_not, max_float_ops) -> str:
    best = f"best reachable {_db(worst(plan.after))} dB (output {_worst_output(plan)})"
    stuck = []
    for i, m in measures.items():
        if m.precision != "int8" or (i in chosen and chosen[i] == "float"):
            continue
        local = m.local.db if m.local is not None else math.nan
        if i not in options:
            stuck.append((local, i, why_not.get(i, "no promotion changes it")))
        elif max_float_ops is not None and "float" in options[i] and i not in chosen:
            stuck.append((local, i, f"--max-float-ops {max_float_ops} reached"))
    stuck = [s for s in stuck if not math.isnan(s[0])]
    if stuck:
        local, i, why = min(stuck)
        return (
            f"{best}; blocked by op #{i} {op_kind(ops[i])} {op_name(ops[i])} (local SNR "
            f"{_db(local)} dB): {why}"
        )
    return (
        f"{best}; with every op at the highest precision the target allows (what remains: "
        "int8 weights, int16 rounding)"
    )


def _worst_output(plan: Plan) -> str:
    pairs = [(s, n) for s, n in zip(plan.after, plan.outputs) if not math.isnan(s)]
    return min(pairs)[1] if pairs else "?"



class Folds:
    """A cross-validated `Analysis` for the search: fold f calibrates the ranges on every
    sample but the ones i % k == f and measures on those, so each sample is held out once;
    an output's SNR for a set of promotions is its worst over the folds (a plan must hold on
    every held-out set, not on one lucky pair of samples). It answers what `search` asks;
    the rankings (`measure`, `scan`) come from the first fold."""

    def __init__(self, folds: Sequence[Analysis]):
        if not folds:
            raise QccError("mixed precision: no fold to measure on")
        self.folds = list(folds)
        self.stages = self.folds[0].stages
        self.output_names = self.folds[0].output_names

    def evaluate_precisions(self, precisions: dict[int, str]) -> list[float]:
        per_fold = [a.evaluate_precisions(precisions) for a in self.folds]
        return [worst(values) for values in zip(*per_fold)]

    def evaluate_quick(self, precisions: dict[int, str]) -> list[float]:
        """The first fold's SNRs: what the greedy phase ranks its candidates by (a quarter
        of the cost); the addition it keeps is then measured on every fold."""
        return self.folds[0].evaluate_precisions(precisions)

    def baseline(self) -> list[float]:
        return self.evaluate_precisions({})

    def measure(self):
        return self.folds[0].measure()

    def scan(self):
        return self.folds[0].scan()

    def describe_split(self) -> str:
        held = sum(len(a.heldout) for a in self.folds)
        first = self.folds[0].split
        per = len(self.folds[0].heldout)
        total = held if first is None else len(first.ranges) + len(first.heldout)
        return (
            f"{len(self.folds)} folds of {total} samples ({per} held out in each, ranges from the "
            "others; an output counts at its worst fold)"
        )

    def _save_cache(self) -> None:
        for a in self.folds:
            a._save_cache()


FOLDS_BELOW = 16
"""With fewer representative samples than this (4 held out per split), the search measures
on every fold (`Folds`) rather than on one held-out quarter, and aims
`FEW_SAMPLES_MARGIN_DB` above the target: an SNR estimated from a few images is noisy. On
the shared models (8 calibration photos, target 25 dB, measured on 4 other photos), plans
aimed 3 dB above gave 22.3 dB on hand_landmark_lite's hand-presence flag (a sigmoid near 0 on
photos without a hand); aimed 6 dB above, every output of every model got 30-37 dB, at 3
more float islands on hand and face (docs/benchmarks.md, "Mixed precision")."""
FEW_SAMPLES_MARGIN_DB = 6.0


def with_plan(pipeline: str, plan: Plan) -> str:
    """`pipeline` (a preset's text) with the plan's `assign-precision` pass in front of its
    first annotate-ranges (after the structural rewrites, so the op names are the ones the
    search saw)."""
    step = plan.pipeline_option()
    if not step:
        return pipeline
    at = pipeline.find("annotate-ranges")
    if at < 0:
        raise QccError("--target-snr needs a pipeline that calibrates (annotate-ranges)")
    return pipeline[:at] + step + "," + pipeline[at:]


def plan_pipeline(
    module: Any,
    pipeline: str,
    samples: Sequence[Sequence[Any]],
    target_name: str,
    target_snr: float,
    *,
    max_float_ops: int | None = None,
    progress_stream: TextIO | None = None,
    cache: bool = True,
) -> tuple[Plan, str]:
    """Search the promotions for `pipeline` (a preset's text, calibrating on `samples`) on
    `module` (the float model, not modified) and return (the plan, the pipeline that makes
    it: `with_plan`)."""
    import math as _math

    from qcc.pipeline import build_pipeline
    from qcc.targets import get_target

    if not _math.isfinite(target_snr):
        raise QccError(f"--target-snr must be a finite number of dB, got {target_snr}")
    data = [list(s) for s in samples]
    if len(data) < 2:
        raise QccError(
            "--target-snr measures on held-out samples: give at least 2 representative "
            f"samples (got {len(data)})"
        )
    passes = build_pipeline(pipeline, dataset=data)
    if len(data) < FOLDS_BELOW and len(data) >= HOLDOUT_EVERY:
        analysis: Analysis | Folds = Folds([
            Analysis.from_passes(module, passes, data, fold=f, cache=cache,
                                 progress_stream=progress_stream)
            for f in range(HOLDOUT_EVERY)
        ])
    else:
        analysis = Analysis.from_passes(module, passes, data, cache=cache,
                                        progress_stream=progress_stream)
    few = len(data) < FOLDS_BELOW
    plan = search(analysis, get_target(target_name), target_snr, max_float_ops=max_float_ops,
                  progress_stream=progress_stream,
                  margin_db=FEW_SAMPLES_MARGIN_DB if few else 0.0)
    return plan, with_plan(pipeline, plan)
