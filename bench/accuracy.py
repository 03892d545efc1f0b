"""qcc vs TFLite's quantizer vs ai-edge-quantizer: accuracy, size, XNNPACK latency, partitions.

    python bench/accuracy.py [--zoo DIR] [--calib DIR] [--eval DIR] [--runs 100]
                             [--tools tflite,aeq,qcc] [--target-snr 25 | --no-target-snr]
                             [MODEL.tflite ...]

Per zoo model (.tflite in $QCC_MODEL_ZOO, default ../shared/models), three int8 quantizers,
each run in its own subprocess (one that crashes or refuses the model shows the reason in its
cells instead of stopping the script):
  * TFLite's quantizer = the calibration wrapper in ai-edge-litert (what
    `TFLiteConverter(optimizations=[DEFAULT], representative_dataset=...)` runs), fed an fp32
    copy of the model that qcc's own backend writes (the wrapper crashes on fp16-weight files);
  * ai-edge-quantizer (`pip install -e ".[bench]"`) with its default static int8 recipe
    (`recipe.static_wi8_ai8()`: int8 per-channel symmetric weights, int8 per-tensor
    asymmetric activations, min/max calibration), fed the same fp32 copy written with a
    SignatureDef "serving_default" (it calibrates by signature);
  * qcc = `qcc.quantize(model, representative_dataset=<calib images>, mode="int8")` (its
    default preset, whatever the tree's default target is).
All three calibrate on the same photos (../shared/data/images/calib, scaled to the input range
the model's metadata declares, else [0, 1]) and are measured on the held-out photos
(../shared/data/images/eval):
  * SNR (dB) of each output against the float model run by LiteRT; "worst" is the lowest;
  * size as a fraction of the fp32 file (qcc's fp32 export, no signature);
  * latency under LiteRT's default resolver (XNNPACK), num_threads=1, as a fraction of the
    float model's. The float model and every int8 model are timed interleaved (round robin,
    one invoke of each per round, the order rotating, --runs rounds after warm-up), and each
    gets the median of its rounds, so that machine noise hits all of them alike;
  * XNNPACK delegate partitions in the execution plan, and the ops LiteRT runs outside
    the delegate (its own kernels) after the slash.
The CPU flags that decide XNNPACK's int8 speed (AVX-512 VNNI, AVX2) are printed first.
Targets (issue 10): qcc latency ratio <= both anchors' (within 5 %), <= 0.8 where no float op
is forced, median <= 0.7; qcc worst-output SNR >= both anchors'.

Mixed precision (issue 11, `--target-snr DB`, default 25; `--no-target-snr` or 0 skips it):
per model without custom ops, two more qcc runs, `qcc.quantize(..., target_snr=DB)` on the
default target (xnnpack: float islands and int16 activations) and on `target="int8-only"`
(int16 only), each in its own subprocess, measured like the others (SNR per output on the eval
photos, XNNPACK latency x float timed in the same interleaved rounds). A second table shows them
with the default qcc row, whether DB is reached on every output, the promotions (float / int16),
the search time (`Plan.seconds`); the promoted ops and the plan's `blocking` line follow it.
The search measures on its own held-out part of the calibration data (every 4th sample), the
table on the eval photos.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"tflite": "TFLite", "aeq": "ai-edge-quantizer", "qcc": "qcc"}
ISLAND = "qcc-island"
"""Row key of qcc's default preset without canonicalize-custom-ops, for a model with custom
ops: the custom op kept as shipped, a float island (what qcc wrote before issue 13)."""
LABELS = {**TOOLS, ISLAND: "qcc, custom op kept"}
MIXED = {"qcc-mp": "xnnpack", "qcc-mp-int8": "int8-only"}
"""Mixed-precision qcc runs (`--target-snr`): row key -> qcc target."""


# ------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------


def cpu_summary() -> str:
    """One line: CPU model, core count, and the SIMD flags XNNPACK's int8 kernels use."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        return "CPU: unknown (no /proc/cpuinfo)"

    def has(*names: str) -> str:
        return "yes" if any(n in flags for n in names) else "no"

    return (
        f"CPU: {model}, {os.cpu_count()} cores; AVX-512 VNNI: {has('avx512_vnni')}; "
        f"AVX-VNNI: {has('avx_vnni')}; AVX-512F/BW: {has('avx512f')}/{has('avx512bw')}; "
        f"AVX2: {has('avx2')}; FMA: {has('fma')}"
    )


# ------------------------------------------------------------------------------------------
# LiteRT
# ------------------------------------------------------------------------------------------


def _snr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def _interpreter(content: bytes):
    """LiteRT's default resolver (XNNPACK), one thread, LiteRT's stderr chatter captured."""
    from qcc.litert import make_interpreter

    return make_interpreter(content)


def _run(interpreter, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Float inputs in, float outputs out (int8 model edges quantized / dequantized here)."""
    for d, x in zip(interpreter.get_input_details(), xs):
        if d["dtype"] != np.float32:
            scale, zp = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(d["dtype"])
        interpreter.set_tensor(d["index"], x)
    interpreter.invoke()
    outputs = []
    for o in interpreter.get_output_details():
        y = interpreter.get_tensor(o["index"])
        if y.dtype != np.float32:
            scale, zp = o["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        outputs.append(y.astype(np.float32))
    return outputs


def _own_partitions(interpreter) -> tuple[int, int]:
    """(XNNPACK partitions, ops outside the delegate) of an interpreter's execution plan.

    LiteRT keeps the original nodes and appends one DELEGATE node per partition. The nodes of
    a partition are found by walking back from the delegate node's outputs through producers
    until the delegate node's own inputs; every other original node is run by LiteRT."""
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {}
    for op in originals:
        for t in op["outputs"]:
            producer[int(t)] = op["index"]
    by_index = {op["index"]: op for op in originals}
    covered: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in boundary or t not in producer:
                continue
            seen.add(t)
            node = producer[t]
            if node in covered:
                continue
            covered.add(node)
            stack.extend(int(u) for u in by_index[node]["inputs"] if u >= 0)
    return len(delegates), len(originals) - len(covered)


def partitions(content: bytes, interpreter) -> tuple[int, int]:
    """(XNNPACK partitions, ops outside the delegate). The partition count comes from
    `qcc.targets.partitions(tflite_bytes)` when the tree has it (it must agree with the count
    here, else both are shown as "theirs~ours"), else from this script's own count."""
    ours = _own_partitions(interpreter)
    try:
        from qcc import targets
    except ImportError:
        return ours
    fn = getattr(targets, "partitions", None)
    if not callable(fn):
        return ours
    try:
        theirs = fn(content)
    except Exception:  # noqa: BLE001 (someone else's work in progress: keep ours)
        return ours
    count = theirs if isinstance(theirs, int) else getattr(theirs, "count", None)
    if count is None and hasattr(theirs, "__len__"):
        count = len(theirs)
    if isinstance(count, int) and count != ours[0]:
        return (f"{count}~{ours[0]}", ours[1])  # type: ignore[return-value]
    return ours


def interleaved_latency_ms(contents: dict[str, bytes], x: list[np.ndarray], runs: int,
                           warmup: int = 5) -> dict[str, float]:
    """Median invoke time (ms) of each model, timed round robin: every round invokes each
    model once, the starting model rotating from round to round."""
    interpreters = {k: _interpreter(c) for k, c in contents.items()}
    names = list(interpreters)
    for _ in range(warmup):
        for k in names:
            _run(interpreters[k], x)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(runs):
        for j in range(len(names)):
            k = names[(r + j) % len(names)]
            interpreter = interpreters[k]
            start = time.perf_counter()
            _run(interpreter, x)
            times[k].append(time.perf_counter() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


# ------------------------------------------------------------------------------------------
# The quantizers, each in a subprocess
# ------------------------------------------------------------------------------------------


_TFLITE_QUANTIZER = r"""
import sys, numpy as np
from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as wrapper
content = open(sys.argv[1], "rb").read()
data = np.load(sys.argv[2])
inputs = [data[f"input_{i}"] for i in range(len(data.files))]
calibrator = wrapper.CalibrationWrapper(content, [], [])
calibrator.Prepare([list(x.shape[1:]) for x in inputs])
for k in range(len(inputs[0])):
    calibrator.FeedTensor([x[k] for x in inputs])
f32, i8, i32 = (np.dtype(t).num for t in (np.float32, np.int8, np.int32))
out = calibrator.QuantizeModel(f32, f32, True, i8, i32, False, False)
open(sys.argv[3], "wb").write(bytes(out))
"""

# ai-edge-quantizer's default static int8 recipe, calibrated through the model's signature:
# signature input names map to tensor indices, which give the subgraph's input order.
_AEQ_QUANTIZER = r"""
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import quantizer, recipe
content = open(sys.argv[1], "rb").read()
data = np.load(sys.argv[2])
inputs = [data[f"input_{i}"] for i in range(len(data.files))]
key = "serving_default"
interpreter = Interpreter(model_content=content)
order = [d["index"] for d in interpreter.get_input_details()]
by_index = {d["index"]: name for name, d in
            interpreter.get_signature_runner(key).get_input_details().items()}
names = [by_index[i] for i in order]
dataset = [{n: x[k] for n, x in zip(names, inputs)} for k in range(len(inputs[0]))]
qt = quantizer.Quantizer(bytearray(content), recipe.static_wi8_ai8())
calibration = qt.calibrate({key: dataset}, num_threads=1)
result = qt.quantize(calibration, enable_progress_bar=False, enable_progress_report=False)
open(sys.argv[3], "wb").write(bytes(result.quantized_model))
"""

_QCC_QUANTIZER = r"""
import sys
from pathlib import Path
import qcc
model = qcc.load(Path(sys.argv[1]))
q = qcc.quantize(model, representative_dataset=Path(sys.argv[2]), mode="int8")
open(sys.argv[3], "wb").write(q.to_tflite())
"""

# qcc's default preset without canonicalize-custom-ops (custom ops stay float islands).
_QCC_ISLAND_QUANTIZER = r"""
import sys
from qcc.cli import main
from qcc.pipeline import PresetOptions, preset_pipeline_text
text = preset_pipeline_text(PresetOptions(calibration=sys.argv[2]))
text = text.replace("canonicalize-custom-ops,", "")
sys.exit(main([sys.argv[1], "--pass-pipeline=" + text, "-o", sys.argv[3]]))
"""

# qcc with --target-snr: argv[4] = target, argv[5] = SNR (dB); the plan goes to OUT.json.
_QCC_MP_QUANTIZER = r"""
import json, sys
from pathlib import Path
import qcc
model = qcc.load(Path(sys.argv[1]))
q = qcc.quantize(model, representative_dataset=Path(sys.argv[2]), mode="int8",
                 target=sys.argv[4], target_snr=float(sys.argv[5]))
plan = q.precision_plan
open(sys.argv[3], "wb").write(q.to_tflite())
if plan is not None:
    info = {"reached": bool(plan.reached), "after": [float(v) for v in plan.after],
            "before": [float(v) for v in plan.before], "blocking": plan.blocking,
            "seconds": float(plan.seconds), "split": plan.split,
            "choices": [{"name": c.name, "op": c.op, "precision": c.precision}
                        for c in plan.choices]}
    Path(sys.argv[3] + ".json").write_text(json.dumps(info))
"""


def _reason(result: subprocess.CompletedProcess) -> str:
    """A failed quantizer subprocess in a few words: the signal, LiteRT's unresolved custom
    op, else the exception (its text to the end of stderr), else the last line."""
    if result.returncode < 0:
        return f"crashed (signal {-result.returncode})"
    text = result.stderr.decode(errors="replace")
    custom = re.search(r"unresolved custom ops?: \[?([\w, ]+)", text)
    if custom:
        return f"unresolved custom op {custom.group(1).strip()}"
    lines = [
        line.strip() for line in text.splitlines()
        if line.strip() and not line.startswith(("INFO:", "WARNING:", "W0000", "I0000"))
    ]
    starts = [i for i, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    reason = " ".join(lines[starts[-1]:]) if starts else (lines[-1] if lines else "")
    reason = reason or f"exit code {result.returncode}"
    return " ".join(reason.replace("|", "/").split())[:160]


def _subprocess_quantize(script: str, model: bytes | Path, data: np.ndarray | list | Path,
                         timeout: float = 1800, extra: tuple[str, ...] = (),
                         side: dict | None = None) -> tuple[bytes | None, str, float]:
    """Run a quantizer script `script MODEL DATA OUT [EXTRA...]`; (bytes, "", seconds) or
    (None, reason, seconds). With `side`, a JSON file the script wrote as OUT.json is read
    into side["json"]."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "m.tflite"
        if isinstance(model, Path):
            model_path = model
        else:
            model_path.write_bytes(model)
        if isinstance(data, Path):
            data_path = data
        else:
            data_path = Path(tmp) / "calib.npz"
            np.savez(data_path, **{f"input_{i}": x for i, x in enumerate(data)})
        out = Path(tmp) / "q.tflite"
        start = time.perf_counter()
        try:
            result = subprocess.run(
                [sys.executable, "-c", script, str(model_path), str(data_path), str(out),
                 *extra],
                capture_output=True, timeout=timeout, check=False, cwd=ROOT,
            )
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s", time.perf_counter() - start
        seconds = time.perf_counter() - start
        if result.returncode != 0 or not out.exists():
            return None, _reason(result), seconds
        sidecar = Path(str(out) + ".json")
        if side is not None and sidecar.exists():
            import json

            side["json"] = json.loads(sidecar.read_text())
        return out.read_bytes(), "", seconds


def custom_ops(content: bytes) -> list[str]:
    """The custom op codes a .tflite declares (float ops no quantizer can make int8)."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(content, 0)
    codes = (m.OperatorCodes(i) for i in range(m.OperatorCodesLength()))
    return sorted({c.CustomCode().decode() for c in codes if c.CustomCode()})


def _loads(content: bytes) -> str:
    """"" if LiteRT's default resolver loads and prepares `content`, else why not."""
    try:
        _interpreter(content)
    except (RuntimeError, ValueError) as e:
        return f"LiteRT refuses it: {' '.join(str(e).split())[:100]}"
    return ""


# ------------------------------------------------------------------------------------------
# One model
# ------------------------------------------------------------------------------------------


def bench_model(path: Path, calib: Path, eval_dir: Path, runs: int, tools: list[str],
                target_snr: float = 0.0) -> dict:
    import qcc
    from qcc.backends.tflite import export_tflite
    from qcc.calibration import load_representative_data

    original = path.read_bytes()
    model = qcc.load(path)
    fp32 = export_tflite(model.module)  # fp16 weights folded to f32 by the importer
    fp32_signed = export_tflite(model.module, signature=True)
    specs = model.input_specs()
    calib_samples = load_representative_data(calib, specs)
    calib_inputs = [np.stack([s[i] for s in calib_samples]) for i in range(len(specs))]
    eval_samples = [list(s) for s in load_representative_data(eval_dir, specs)]

    scripts = {
        "tflite": (_TFLITE_QUANTIZER, fp32, calib_inputs),
        "aeq": (_AEQ_QUANTIZER, fp32_signed, calib_inputs),
        "qcc": (_QCC_QUANTIZER, path, calib),
        ISLAND: (_QCC_ISLAND_QUANTIZER, path, calib),
    }
    quantized: dict[str, bytes] = {}
    row: dict = {"model": path.stem, "fp32_size": len(fp32), "notes": {}, "seconds": {},
                 "custom_ops": custom_ops(original)}
    runs_of = list(tools)
    if "qcc" in tools and row["custom_ops"]:
        runs_of.append(ISLAND)
    for tool in runs_of:
        script, m, data = scripts[tool]
        content, reason, seconds = _subprocess_quantize(script, m, data)
        row["seconds"][tool] = seconds
        if content is not None:
            reason = _loads(content)
        if content is None or reason:
            row["notes"][tool] = reason
        else:
            quantized[tool] = content
    row["mixed"] = {}
    if target_snr > 0 and not row["custom_ops"]:
        for key, target in MIXED.items():
            side: dict = {}
            content, reason, seconds = _subprocess_quantize(
                _QCC_MP_QUANTIZER, path, calib, extra=(target, f"{target_snr:g}"), side=side)
            row["seconds"][key] = seconds
            if content is not None:
                reason = _loads(content)
            row["mixed"][key] = {"plan": side.get("json"), "wall": seconds}
            if content is None or reason:
                row["notes"][key] = reason
            else:
                quantized[key] = content

    reference = _interpreter(original)
    references = [_run(reference, x) for x in eval_samples]
    row["float_partitions"] = partitions(original, reference)
    for tool, content in quantized.items():
        interpreter = _interpreter(content)
        n_out = len(references[0])
        signal, noise = np.zeros(n_out), np.zeros(n_out)
        for x, ref in zip(eval_samples, references):
            got = _run(interpreter, x)
            for i, (r, g) in enumerate(zip(ref, got)):
                r64 = r.astype(np.float64)
                signal[i] += float(np.sum(r64**2))
                noise[i] += float(np.sum((r64 - g) ** 2))
        snrs = [_snr_db(s, n) for s, n in zip(signal, noise)]
        row[tool] = {
            "snr": snrs,
            "worst": min(snrs),
            "size": len(content) / len(fp32),
            "partitions": partitions(content, interpreter),
            "custom_ops": custom_ops(content),
        }
    latency = interleaved_latency_ms({"float": original, **quantized}, eval_samples[0], runs)
    row["float_ms"] = latency["float"]
    for tool in quantized:
        row[tool]["ms"] = latency[tool]
        row[tool]["latency"] = latency[tool] / latency["float"]
    return row


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.2f}"


def _parts(p) -> str:
    count, outside = p
    return f"{count} / {outside}"


def print_table(rows: list[dict], tools: list[str], runs: int) -> None:
    """One row per model and tool (the float model first), then the median latency ratios."""
    print(
        "| model | tool | worst SNR (dB) | SNR per output (dB) | size x fp32 | latency x float "
        "| latency (ms) | XNNPACK partitions / ops outside |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        name = row["model"]
        print(
            f"| {name} | float | — | — | 1.000 | 1.00 | {row['float_ms']:.2f} "
            f"| {_parts(row['float_partitions'])} |"
        )
        for tool in [*tools, ISLAND]:
            r = row.get(tool)
            if r is None:
                if tool == ISLAND and tool not in row["notes"]:
                    continue  # no custom op in the input
                note = row["notes"].get(tool, "not run")
                print(f"| {name} | {LABELS[tool]} | fails: {note} | — | — | — | — | — |")
                continue
            print(
                f"| {name} | {LABELS[tool]} | {_fmt(r['worst'])} | "
                f"{', '.join(_fmt(v) for v in r['snr'])} | {r['size']:.3f} | "
                f"{r['latency']:.2f} | {r['ms']:.2f} | {_parts(r['partitions'])} |"
            )
    medians = []
    for tool in tools:
        values = [r[tool]["latency"] for r in rows if r.get(tool)]
        if values:
            of = f" (of {len(values)})" if len(values) < len(rows) else ""
            medians.append(f"{TOOLS[tool]} {statistics.median(values):.2f}{of}")
    print(f"\nMedian latency x float over the models: {'; '.join(medians)}.")
    print(
        "\nSNR on the held-out photos against the float model (LiteRT); size as a fraction of "
        "the fp32 file; latency under LiteRT's default resolver (XNNPACK), num_threads=1, the "
        f"float and int8 models timed interleaved, median of {runs} rounds; XNNPACK delegate "
        "partitions in the execution plan / ops LiteRT runs outside the delegate. "
        f"'{LABELS[ISLAND]}': qcc's default preset without canonicalize-custom-ops (a model "
        "with custom ops: they stay float islands as shipped)."
    )
    print("\nQuantization time (s, subprocess wall time): " + "; ".join(
        f"{row['model']}: " + ", ".join(
            f"{LABELS[t]} {row['seconds'][t]:.1f}" for t in [*tools, ISLAND] if t in row["seconds"]
        )
        for row in rows
    ))


def print_targets(rows: list[dict]) -> None:
    """Issue 10's targets for qcc, per model (needs all three tools)."""
    print("\nIssue 10 targets for qcc:")
    ratios = []
    for row in rows:
        q = row.get("qcc")
        if q is None:
            print(f"- {row['model']}: qcc failed ({row['notes'].get('qcc', '?')})")
            continue
        ratios.append(q["latency"])
        checks = []
        for tool in ("tflite", "aeq"):
            a = row.get(tool)
            if a is None:
                continue
            ok_lat = q["latency"] <= 1.05 * a["latency"]
            ok_snr = q["worst"] >= a["worst"]
            checks.append(
                f"latency <= {TOOLS[tool]} {'yes' if ok_lat else 'NO'} "
                f"({q['latency']:.2f} vs {a['latency']:.2f}), "
                f"SNR >= {TOOLS[tool]} {'yes' if ok_snr else 'NO'} "
                f"({_fmt(q['worst'])} vs {_fmt(a['worst'])})"
            )
        if q["custom_ops"]:
            checks.append(f"latency <= 0.8 n/a (custom ops: {', '.join(q['custom_ops'])})")
        else:
            checks.append(f"latency <= 0.8 {'yes' if q['latency'] <= 0.8 else 'NO'}")
        print(f"- {row['model']}: " + "; ".join(checks))
    if ratios:
        med = statistics.median(ratios)
        print(f"- median qcc latency x float {med:.2f} (<= 0.7: {'yes' if med <= 0.7 else 'NO'})")


def _names(names: list[str], width: int = 240) -> str:
    """Op names (the last two parts of the first location) joined, cut to about `width`
    characters with how many were left out."""
    text, shown = "", 0
    for name in names:
        # "model_1/model/re_lu_3/Relu6;model_1/..." -> "re_lu_3/Relu6"
        name = "/".join(name.split(";")[0].split("/")[-2:])
        name = name if len(name) <= 40 else name[:37] + "..."
        candidate = f"{text}, {name}" if text else name
        if len(candidate) > width and shown:
            break
        text, shown = candidate, shown + 1
    return text + (f", ... (+{len(names) - shown} more)" if shown < len(names) else "")


def print_mixed(rows: list[dict], target_snr: float, runs: int) -> None:
    """Issue 11: qcc's default preset and its two --target-snr runs, per model, then the
    promoted ops and what blocks the SNR where it is not reached."""
    labels = {"qcc": "qcc", **{k: f"qcc --target-snr {target_snr:g}" + (
        "" if t == "xnnpack" else f" --target={t}") for k, t in MIXED.items()}}
    print(f"\nMixed precision (issue 11), --target-snr {target_snr:g}:\n")
    print(
        f"| model | tool | worst SNR (dB) | SNR per output (dB) | >= {target_snr:g} dB on every "
        "output | promotions float / int16 | search (s) | size x fp32 | latency x float "
        "| latency (ms) | XNNPACK partitions / ops outside |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    details: list[str] = []
    splits: set[str] = set()
    for row in rows:
        name = row["model"]
        if row["custom_ops"]:
            print(f"| {name} | qcc --target-snr | skipped: custom op "
                  f"{', '.join(row['custom_ops'])} | — | — | — | — | — | — | — | — |")
            continue
        print(f"| {name} | float | — | — | — | — | — | 1.000 | 1.00 | {row['float_ms']:.2f} "
              f"| {_parts(row['float_partitions'])} |")
        for key in ("qcc", *MIXED):
            r = row.get(key)
            if r is None:
                note = row["notes"].get(key, "not run")
                print(f"| {name} | {labels[key]} | fails: {note} | — | — | — | — | — | — | — | — |")
                continue
            reached = "yes" if r["worst"] >= target_snr else "no"
            promotions = search = "—"
            if key in MIXED:
                plan = row["mixed"][key]["plan"]
                if plan is None:
                    promotions = "no plan"
                else:
                    by = {p: [c["name"] for c in plan["choices"] if c["precision"] == p]
                          for p in ("float", "int16")}
                    promotions = f"{len(by['float'])} / {len(by['int16'])}"
                    search = f"{plan['seconds']:.0f}"
                    target = MIXED[key]
                    parts = []
                    for p in ("float", "int16"):
                        ops = [c["op"] for c in plan["choices"] if c["precision"] == p]
                        if ops:
                            kinds = ", ".join(
                                f"{k} {ops.count(k)}" for k in sorted(set(ops), key=ops.index))
                            parts.append(f"{p} ({kinds}): {_names(by[p])}")
                    splits.add(plan.get("split") or "")
                    line = (
                        f"- promotions ({name}, {target}): {'; '.join(parts) or 'none'}. "
                        f"Search (held-out calibration samples): worst "
                        f"{_fmt(min(plan['before']))} -> "
                        f"{_fmt(min(plan['after']))} dB "
                        f"({'reached' if plan['reached'] else 'not reached'})"
                    )
                    if not plan["reached"] and plan.get("blocking"):
                        line += f"; blocking: {plan['blocking']}"
                    details.append(line + ".")
            print(
                f"| {name} | {labels[key]} | {_fmt(r['worst'])} | "
                f"{', '.join(_fmt(v) for v in r['snr'])} | {reached} | {promotions} | {search} "
                f"| {r['size']:.3f} | {r['latency']:.2f} | {r['ms']:.2f} "
                f"| {_parts(r['partitions'])} |"
            )
    medians = []
    for key in ("qcc", *MIXED):
        values = [r[key]["latency"] for r in rows if r.get(key) and not r["custom_ops"]]
        if values:
            medians.append(f"{labels[key]} {statistics.median(values):.2f}")
    if medians:
        print(f"\nMedian latency x float over these models: {'; '.join(medians)}.")
    print(
        f"\nSNR and the >= {target_snr:g} dB column on the held-out eval photos; the search "
        "measures on its own held-out part of the calibration data ("
        + ("; ".join(sorted(x for x in splits if x)) or "every 4th sample") + "). "
        f"Latency: XNNPACK, num_threads=1, timed in the same interleaved rounds as the table "
        f"above, median of {runs}. Search: the plan's own time; the whole quantization "
        "(subprocess wall time): " + "; ".join(
            f"{row['model']}: " + ", ".join(
                f"{MIXED[k]} {row['seconds'][k]:.1f}" for k in MIXED if k in row["seconds"])
            for row in rows if not row["custom_ops"]
        ) + "."
    )
    if details:
        print("\n" + "\n".join(details))


def main(argv: list[str] | None = None) -> int:
    shared = ROOT.parent / "shared"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=os.environ.get("QCC_MODEL_ZOO") or shared / "models")
    parser.add_argument("--calib", default=shared / "data" / "images" / "calib")
    parser.add_argument("--eval", default=shared / "data" / "images" / "eval")
    parser.add_argument("--runs", type=int, default=100,
                        help="interleaved timing rounds per model (default 100)")
    parser.add_argument("--tools", default="tflite,aeq,qcc",
                        help="comma-separated subset of tflite, aeq, qcc")
    parser.add_argument("--target-snr", type=float, default=25.0, metavar="DB",
                        help="also run qcc --target-snr DB on the xnnpack and int8-only targets "
                             "(default 25; 0 skips them)")
    parser.add_argument("--no-target-snr", dest="target_snr", action="store_const", const=0.0,
                        help="skip the mixed-precision rows")
    parser.add_argument("models", nargs="*", help="model files (default: every zoo .tflite)")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not tools:
        parser.error(f"--tools: unknown {unknown}; choose from {', '.join(TOOLS)}")
    if "aeq" in tools:
        try:
            import ai_edge_quantizer  # noqa: F401
        except ImportError:
            print("ai-edge-quantizer is not installed (pip install -e \".[bench]\"): "
                  "its column is left out", file=sys.stderr)
            tools.remove("aeq")
    paths = [Path(m) for m in args.models] or sorted(Path(args.zoo).glob("*.tflite"))
    if not paths:
        parser.error(f"no .tflite models in {args.zoo}")
    print(cpu_summary())
    import ai_edge_litert

    versions = [f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"]
    if "aeq" in tools:
        from importlib.metadata import version

        versions.append(f"ai-edge-quantizer {version('ai-edge-quantizer')}")
    print("; ".join(versions) + "\n")
    rows = []
    for path in paths:
        print(f"... {path.name}", file=sys.stderr, flush=True)
        rows.append(bench_model(path, Path(args.calib), Path(args.eval), args.runs, tools,
                                args.target_snr))
    print_table(rows, tools, args.runs)
    if "qcc" in tools:
        print_targets(rows)
    if args.target_snr > 0:
        print_mixed(rows, args.target_snr, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
