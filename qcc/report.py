"""The quantization report: where a quantized model loses accuracy, and what to do about it.

    qcc model.tflite --calibration images/ -o m.tflite --report            # text, 100 columns
    qcc model.tflite --calibration images/ -o m.tflite --report=r.json     # everything, for tools
    qcc model.tflite --calibration images/ -o m.tflite --report=r.csv      # the op table

    from qcc.report import report
    r = report("model.tflite", "images/", heldout="eval/")   # or a Model, or a dataset in Python
    print(r.format()); r.write("r.json")

Per op of the quantized model (the IR the file is written from, modify-io aside), on the
representative samples:

* **local SNR**: the op's own error, its inputs exact: its integer kernel run on the float
  reference inputs, quantized as it takes them, against the float op's output. It says which
  op *causes* a loss (an op whose input is already noisy does not look bad for that);
* **cumulative SNR**: its output in the quantized model against float: where the loss shows;
* its precision (int8, int16, float) and, for a float op, why (`qcc.reason`: legalize-target's
  measured reason, or the op's declaration);
* from the sensitivity analysis (`qcc.sensitivity`, on *held-out* samples): what keeping
  this op alone in float adds to the worst output (+worst) and to the output it helps most
  (+best); `=` marks an op whose float island computes the same values (not measured).

The reference of an intermediate value is the float run of the same IR (`Stages.reference`:
the ops as the passes left them, with float weights), so fused activations, decomposed or
equalized layers compare like with like; model outputs are compared with the original float
model. The table is sorted by local SNR, worst first. Then: every output's SNR, the size of
the file against the input file (whatever its weights: fp16 files are half of fp32) and
against fp32 (qcc's fp32 export of the input), the op counts, the XNNPACK delegate partitions
of the file (`qcc.targets.partitions`), and the advice: the ops whose promotion to float
raises the worst output most, chosen greedily with every set measured on the held-out samples
(`Analysis.advise`), e.g. `promote these 3 ops: worst output 9.9 -> 17.2 dB (predicted)`.

Held-out data: `qcc --report` holds out every 4th calibration sample for the analysis, which
quantizes the model once more from the other samples' ranges (the file written is calibrated
on all of them); `report(..., heldout=...)` measures on separate data instead. The rows and
the outputs' SNR are measured on all the calibration samples (the ranges saw them).

SNR(dB) = 10·log10(Σ float² / Σ (float − quantized)²) over all samples; "inf": no error at
all; "-": no signal (float values all zero: e.g. a zero bias or a dead channel), never -inf.
Everything runs on qcc's runtimes (float executor; integer runtime, bit-exact with LiteRT's
reference kernels, float islands in-process); a model with an op qcc has no kernel for (a
custom op) runs on LiteRT instead, without local SNRs or sensitivity.

Files (`write`, atomically by `qcc.fileio`): `.json` holds every number and full name
(non-finite numbers: "inf", or null when undefined); `.csv` the op table, one row per op;
any other suffix the text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qcc.errors import QccError
from qcc.sensitivity import (
    HOLDOUT_EVERY,
    Advice,
    Analysis,
    FloatRunner,
    OpMeasure,
    Scan,
    Stages,
    measure_ops,
    worst,
)

WIDTH = 100
"""Columns of the text report."""
REPORT_FORMAT = "qcc-report"
REPORT_VERSION = 1


@dataclass
class OpRow:
    """One op of the quantized model (see the module docstring for the numbers)."""

    index: int
    name: str
    op: str
    precision: str
    reason: str = ""
    local_snr_db: float | None = None
    cumulative_snr_db: float | None = None
    promoted_snr_db: list[float] | None = None
    """Every output's SNR on the held-out samples with only this op in float."""
    promoted_gain_db: float | None = None
    """What that adds to the worst output."""
    best_output_gain_db: float | None = None
    """What it adds to the output it helps most."""
    not_measured: str = ""
    """Why the sensitivity analysis did not measure the op (empty when it did)."""


@dataclass
class FloatOp:
    """An op of the quantized model that computes in float, and why."""

    name: str
    op: str
    reason: str


@dataclass
class QuantizationReport:
    source: str = ""
    samples: int = 0
    rows: list[OpRow] = field(default_factory=list)
    """Sorted by local SNR, worst first (ops without one last, in model order)."""
    outputs: list[tuple[str, float]] = field(default_factory=list)
    input_size: int = 0
    """Bytes of the file the model was read from (0: unknown)."""
    float_size: int = 0
    """Bytes of qcc's fp32 export of the float model."""
    quantized_size: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    partitions: str | None = None
    scan: Scan | None = None
    advice: Advice | None = None
    sensitivity_note: str = ""
    """Why there is no sensitivity analysis, when there is none."""
    notes: list[str] = field(default_factory=list)

    @property
    def worst_output_snr_db(self) -> float:
        return worst(snr for _, snr in self.outputs)

    @property
    def float_ops(self) -> list[FloatOp]:
        return [
            FloatOp(r.name, r.op, r.reason)
            for r in sorted(self.rows, key=lambda r: r.index)
            if r.precision == "float"
        ]

    # -- text -------------------------------------------------------------------------------

    def format(self, width: int = WIDTH) -> str:
        lines: list[str] = []
        src = f": {self.source}" if self.source else ""
        lines.append(_fit(f"qcc quantization report{src} ({_count(self.samples, 'calibration sample')})", width))
        lines.append("")
        lines += self._size_lines(width)
        counts = ", ".join(f"{k} {v}" for k, v in self.op_counts.items())
        if counts:
            lines.append(_fit(f"ops: {counts}", width))
        if self.partitions is not None:
            lines += _wrap(f"LiteRT default resolver: {self.partitions}", width, "  ")
        lines.append("")
        lines.append("outputs, SNR against the float model on the calibration samples:")
        name_w = min(max([len(n) for n, _ in self.outputs] + [6]), width - 20)
        for name, snr in self.outputs:
            lines.append(f"  {_truncate(name, name_w):<{name_w}}  {_db(snr):>7} dB")
        lines.append(f"  {'worst':<{name_w}}  {_db(self.worst_output_snr_db):>7} dB")
        lines.append("")
        lines += self._table(width)
        floats = self.float_ops
        if floats:
            lines.append("")
            lines.append(f"not int8: {_count(len(floats), 'op')}")
            for f in floats:
                lines += _wrap(f"{f.op} {_truncate(f.name, 40)}: {f.reason}", width, "    ", "  ")
        lines.append("")
        lines += self._advice_lines(width)
        for note in self.notes:
            lines += _wrap(f"note: {note}", width, "  ")
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def _size_lines(self, width: int) -> list[str]:
        q = self.quantized_size
        parts = [f"size: {q:,} bytes"]
        if self.input_size:
            parts.append(f"{q / self.input_size:.2f}x the input file ({self.input_size:,} bytes)")
        if self.float_size:
            parts.append(f"{q / self.float_size:.2f}x fp32 ({self.float_size:,} bytes)")
        return _wrap(", ".join(parts), width, "  ")

    def _table(self, width: int) -> list[str]:
        measured = self.scan is not None
        head = f"{'#':>4}  {'op':<20} {'prec':<5} {'local':>6} {'cumul':>6}"
        if measured:
            head += f" {'+worst':>6} {'+best':>6}"
        name_w = max(width - len(head) - 2, 12)
        lines = [
            _fit(f"ops, worst local SNR first (dB; {_count(len(self.rows), 'op')}; full names "
                 "in --report=FILE.json):", width),
            f"{head}  tensor",
        ]
        for r in self.rows:
            local = "" if r.local_snr_db is None else _db(r.local_snr_db)  # a float op: none
            line = (
                f"{r.index:>4}  {_truncate(r.op, 20):<20} {r.precision:<5} "
                f"{local:>6} {_db(r.cumulative_snr_db):>6}"
            )
            if measured:
                if r.promoted_gain_db is not None:
                    line += f" {_gain(r.promoted_gain_db):>6} {_gain(r.best_output_gain_db):>6}"
                else:
                    mark = "=" if r.not_measured else ""
                    line += f" {mark:>6} {mark:>6}"
            lines.append(f"{line}  {_short_name(r.name, name_w)}")
        legend = (
            "local: the op's output with exact (float) inputs (integer ops); cumul: its output "
            "in the quantized model; -: no signal (float values all zero)"
        )
        if measured:
            legend += (
                "; +worst, +best: what keeping only this op in float adds to the worst output "
                "and to the output it helps most (held-out samples); =: not measured, its "
                "float island computes the same values"
            )
        lines += _wrap(legend, width, "  ")
        return lines

    def _advice_lines(self, width: int) -> list[str]:
        if self.advice is None or self.scan is None:
            why = self.sensitivity_note or "no sensitivity analysis"
            return _wrap(f"advice: none ({why})", width, "  ")
        adv, scan = self.advice, self.scan
        lines = _wrap(f"advice, from the sensitivity analysis on {scan.split}:", width, "  ")
        names = scan.outputs
        base_worst = _worst_name(names, scan.baseline)
        lines += _wrap(
            f"worst output on the held-out samples: {_db(adv.before)} dB ({base_worst}); "
            f"{_count(len(scan.ops), 'op')} measured in {scan.seconds:.0f} s"
            + (" (cached)" if scan.cached else ""),
            width, "    ", "  ",
        )
        if not adv.steps:
            lines += _wrap(
                "no promotion of one more op raises the worst output by 0.5 dB or more",
                width, "    ", "  ",
            )
            return lines
        lines.append("  promote, in this order (worst output after each, measured):")
        for k, (s, after) in enumerate(adv.steps, 1):
            head = f"  {k:>2}. #{s.index:<4} {_truncate(s.op, 20):<20} -> {_db(after):>6} dB  "
            lines.append(head + _short_name(s.name, max(width - len(head), 12)))
        lines.append(
            _fit(
                f"  promote {_these(len(adv.steps))}: worst output "
                f"{_db(adv.before)} -> {_db(adv.after)} dB (predicted)",
                width,
            )
        )
        return lines

    # -- files ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "model": self.source,
            "samples": self.samples,
            "size": {
                "quantized_bytes": self.quantized_size,
                "input_bytes": self.input_size or None,
                "fp32_bytes": self.float_size or None,
                "vs_input": _num(self.quantized_size / self.input_size)
                if self.input_size else None,
                "vs_fp32": _num(self.quantized_size / self.float_size)
                if self.float_size else None,
            },
            "op_counts": self.op_counts,
            "partitions": self.partitions,
            "outputs": [{"name": n, "snr_db": _num(s)} for n, s in self.outputs],
            "worst_output_snr_db": _num(self.worst_output_snr_db),
            "ops": [
                {
                    "index": r.index,
                    "name": r.name,
                    "op": r.op,
                    "precision": r.precision,
                    "reason": r.reason,
                    "local_snr_db": _num(r.local_snr_db),
                    "cumulative_snr_db": _num(r.cumulative_snr_db),
                    "promoted_snr_db": None
                    if r.promoted_snr_db is None
                    else [_num(x) for x in r.promoted_snr_db],
                    "promoted_gain_db": _num(r.promoted_gain_db),
                    "best_output_gain_db": _num(r.best_output_gain_db),
                    "not_measured": r.not_measured or None,
                }
                for r in self.rows
            ],
            "sensitivity": None,
            "advice": None,
            "notes": self.notes,
        }
        if self.scan is not None:
            doc["sensitivity"] = {
                "heldout": self.scan.split,
                "outputs": self.scan.outputs,
                "baseline_snr_db": [_num(x) for x in self.scan.baseline],
                "seconds": round(self.scan.seconds, 3),
                "cached": self.scan.cached,
            }
        else:
            doc["sensitivity"] = {"none": self.sensitivity_note or "not run"}
        if self.advice is not None:
            doc["advice"] = {
                "before_db": _num(self.advice.before),
                "after_db": _num(self.advice.after),
                "outputs_after_db": [_num(x) for x in self.advice.outputs_after],
                "ops": [
                    {"index": s.index, "name": s.name, "op": s.op, "worst_after_db": _num(w)}
                    for s, w in self.advice.steps
                ],
            }
        return doc

    CSV_FIELDS = (
        "rank", "index", "name", "op", "precision", "reason", "local_snr_db",
        "cumulative_snr_db", "promoted_worst_snr_db", "promoted_gain_db",
        "best_output_gain_db", "not_measured",
    )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.CSV_FIELDS)
        for rank, r in enumerate(self.rows, 1):
            promoted_worst = worst(r.promoted_snr_db) if r.promoted_snr_db else None
            writer.writerow([
                rank, r.index, r.name, r.op, r.precision, r.reason,
                *(_csv_num(x) for x in (
                    r.local_snr_db, r.cumulative_snr_db, promoted_worst, r.promoted_gain_db,
                    r.best_output_gain_db,
                )),
                r.not_measured,
            ])
        return out.getvalue()

    def render(self, path: str | os.PathLike[str]) -> str:
        """The report as the file `path` holds it: JSON, CSV or text, by its suffix."""
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix == ".json":
            return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"
        if suffix == ".csv":
            return self.to_csv()
        return self.format()

    def write(self, path: str | os.PathLike[str], *, inputs: Iterable[Any] = ()) -> None:
        """Write the report to `path` (atomically, never over one of `inputs`): .json, .csv,
        or text."""
        from qcc.fileio import atomic_write

        atomic_write(path, self.render(path), inputs=inputs)


# ------------------------------------------------------------------------------------------
# Formatting helpers
# ------------------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _these(n: int) -> str:
    return "this op" if n == 1 else f"these {n} ops"


def _db(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-"  # -inf cannot arise (no signal is "-")
    return f"{value:.1f}"


def _gain(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "+inf" if value > 0 else "-"
    return f"{value:+.1f}"


def _num(value: float | None) -> float | str | None:
    """A number for JSON: finite floats rounded, +-inf as "inf" / "-inf", NaN as null."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(float(value), 4)


def _csv_num(value: float | None) -> str:
    v = _num(value)
    return "" if v is None else str(v)


def _truncate(text: str, width: int) -> str:
    """`text` in at most `width` columns: the middle elided with '...'."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    head = (width - 3) // 2
    tail = width - 3 - head
    return text[:head] + "..." + (text[len(text) - tail :] if tail else "")


def _short_name(name: str, width: int) -> str:
    """A tensor name in `width` columns. TFLite names of fused ops join their sources with
    ';' ("model/re_lu/Relu6;model/bn/FusedBatchNormV3;..."): the first one names the op
    best, so it is kept, marked ';...' when the others are dropped."""
    if len(name) <= width:
        return name
    first, sep, _ = name.partition(";")
    if sep and len(first) + 4 <= width:
        return first + ";..."
    return _truncate(first if sep else name, width)


def _fit(line: str, width: int) -> str:
    return _truncate(line, width) if len(line) > width else line


def _wrap(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    import textwrap

    return textwrap.wrap(
        text, width=width, initial_indent=first, subsequent_indent=indent,
        break_long_words=True, break_on_hyphens=False,
    ) or [""]


def _worst_name(names: Sequence[str], snrs: Sequence[float]) -> str:
    defined = [(s, n) for n, s in zip(names, snrs) if not math.isnan(s)]
    return min(defined)[1] if defined else "-"


# ------------------------------------------------------------------------------------------
# Building the report
# ------------------------------------------------------------------------------------------


def _op_counts(model_bytes: bytes) -> tuple[dict[str, int], dict[int, str]]:
    """Counts of int8 / float / quantize+dequantize ops, and each tensor's producing op."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    counts = {"int8": 0, "float": 0, "quantize/dequantize": 0}
    producer: dict[int, str] = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = (code.customCode or b"").decode() if isinstance(code.customCode, bytes) else str(
                code.customCode
            )
        for t in op.outputs:
            producer[t] = name
        if name in ("QUANTIZE", "DEQUANTIZE"):
            counts["quantize/dequantize"] += 1
            continue
        out_types = {graph.tensors[t].type for t in op.outputs}
        if out_types & {schema.TensorType.INT8, schema.TensorType.INT16}:
            counts["int8"] += 1
        else:
            counts["float"] += 1
    return counts, producer


def _rows(measures: Sequence[OpMeasure], scan: Scan | None) -> list[OpRow]:
    by_index = scan.by_index() if scan is not None else {}
    skipped = {i: why for i, _, _, why in scan.skipped} if scan is not None else {}
    rows = []
    for m in measures:
        row = OpRow(
            m.index, m.name, m.op, m.precision, m.reason,
            m.local.db if m.local is not None else None, m.cumulative.db,
        )
        s = by_index.get(m.index)
        if s is not None and scan is not None:
            row.promoted_snr_db = list(s.promoted)
            row.promoted_gain_db = s.gain
            gains = [p - b for p, b in zip(s.promoted, scan.baseline)
                     if not (math.isnan(p) or math.isnan(b))]
            row.best_output_gain_db = max(gains) if gains else None
        elif m.index in skipped:
            row.not_measured = skipped[m.index]
        rows.append(row)

    def key(r: OpRow) -> tuple:
        local = r.local_snr_db
        undefined = local is None or math.isnan(local)
        return (undefined, 0.0 if undefined else local, r.index)

    return sorted(rows, key=key)


def build_report(
    stages: Stages,
    samples: Iterable[Sequence[np.ndarray]],
    *,
    tflite: bytes | None = None,
    input_size: int = 0,
    float_size: int | None = None,
    analysis: Analysis | None = None,
    sensitivity_note: str = "",
    count_partitions: bool = False,
    advice_ops: int = 3,
    source: str = "",
) -> QuantizationReport:
    """The report of the model `stages.quantized()`, its rows measured on `samples`;
    `tflite` the file written from it (default: exported here) for the size, op counts and
    partitions; `input_size` the bytes of the input file; `analysis` the sensitivity
    analysis for the +worst/+best columns and the advice (`sensitivity_note` says why there is none)."""
    from qcc.backends.tflite import export_tflite

    quantized = stages.quantized()
    if tflite is None:
        tflite = export_tflite(quantized)
    if float_size is None:
        float_size = len(export_tflite(stages.float_module))
    report = QuantizationReport(
        source=source, input_size=input_size, float_size=float_size,
        quantized_size=len(tflite), sensitivity_note=sensitivity_note,
    )
    report.op_counts, _ = _op_counts(tflite)
    if count_partitions:
        from qcc.targets import partitions

        try:
            report.partitions = partitions(tflite).summary()
        except RuntimeError as e:
            report.notes.append(f"partitions not counted: {e}")
    float_model = FloatRunner(stages.float_module)
    measures, outputs, n = measure_ops(
        quantized, stages.reference(), samples, float_model=float_model
    )
    report.samples = n
    if measures and all(m.local is None for m in measures if m.precision != "float"):
        report.notes.append(
            "qcc's integer runtime cannot run this model (an op without a kernel): it ran on "
            "LiteRT, without local SNRs"
        )
    from qcc.dialects.ir import find_main
    from qcc.signature import names

    main = find_main(stages.float_module)
    out_names = names(main.res_attrs, len(outputs), "output_")
    report.outputs = [(name, acc.db) for name, acc in zip(out_names, outputs)]
    if analysis is not None:
        try:
            report.scan = analysis.scan()
            report.advice = analysis.advise(report.scan, max_ops=advice_ops)
        except QccError as e:
            report.scan = report.advice = None
            report.sensitivity_note = str(e)
        if report.scan is not None and not analysis.stages.allows_float:
            report.advice = None
            report.sensitivity_note = (
                "the target allows no float op; int16 promotion is not available yet"
            )
    report.rows = _rows(measures, report.scan)
    return report


def report(
    model: Any,
    representative_dataset: Any,
    *,
    heldout: Any = None,
    every: int = HOLDOUT_EVERY,
    pipeline: str | None = None,
    advice_ops: int = 3,
    count_partitions: bool = True,
    cache: bool = True,
    **preset: Any,
) -> QuantizationReport:
    """The report of `qcc.quantize(model, representative_dataset, **preset)` (or of the
    pipeline text `pipeline`), with the sensitivity analysis measured on `heldout` (data in
    any form `qcc.quantize` takes) when given, else on every `every`-th sample of
    `representative_dataset` (the analysis calibrates on the others)."""
    from qcc.api import Model, load
    from qcc.backends.tflite import export_tflite
    from qcc.calibration import load_representative_data
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    if not isinstance(model, Model):
        raise QccError(f"report: expected a Model or a model path, got {type(model).__name__}")
    specs = model.input_specs()
    input_range = preset.get("input_range")
    limit = preset.get("samples") or None

    def data(source: Any) -> list[list[np.ndarray]]:
        is_path = isinstance(source, (str, os.PathLike))
        loaded = load_representative_data(
            source, specs, input_range=input_range if is_path else None, samples=limit
        )
        return [list(s) for s in loaded]

    samples = data(representative_dataset)
    if pipeline is None:
        pipeline = preset_pipeline_text(PresetOptions(**preset))
    passes = build_pipeline(pipeline, dataset=samples)
    stages = Stages.from_passes(model.module, passes, samples)
    analysis, note = None, ""
    try:
        if heldout is not None:
            analysis = Analysis(stages, data(heldout), cache=cache)
        else:
            analysis = Analysis.from_passes(model.module, passes, samples, every=every,
                                            cache=cache)
    except QccError as e:
        note = str(e)
    input_size = 0
    if model.source and os.path.isfile(model.source):
        input_size = os.path.getsize(model.source)
    return build_report(
        stages, samples, tflite=export_tflite(stages.quantized()), input_size=input_size,
        analysis=analysis, sensitivity_note=note, count_partitions=count_partitions,
        advice_ops=advice_ops, source=os.path.basename(model.source or ""),
    )
