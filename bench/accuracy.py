"""qcc vs TFLite's own post-training quantizer: accuracy, size and latency, side by side.

    python bench/accuracy.py [--zoo DIR] [--calib DIR] [--eval DIR] [--runs 20]

Per zoo model (.tflite in $QCC_MODEL_ZOO, default ../shared/models):
  * TFLite's quantizer = the calibration wrapper in ai-edge-litert (what
    `TFLiteConverter(optimizations=[DEFAULT], representative_dataset=...)` runs), fed an fp32
    copy of the model that qcc's own backend writes (the wrapper crashes on fp16-weight files),
    run in a subprocess because it can crash;
  * qcc = `qcc.quantize(model, representative_dataset=<calib images>, mode="int8")`;
  * both calibrate on the same photos (../shared/data/images/calib) and are measured on the
    held-out photos (../shared/data/images/eval): the SNR (dB) of each output against the float
    model run by LiteRT, the worst output for each tool and the difference (qcc − TFLite),
    file sizes as a fraction of the fp32 file, and LiteRT latency (num_threads=1, default
    resolver, median of --runs) as a fraction of the float model's.
Targets (issue 3): qcc worst-output SNR >= TFLite's; qcc size <= TFLite's; qcc latency ratio
<= TFLite's.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

def _snr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def _interpreter(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, x: np.ndarray) -> list[np.ndarray]:
    d = interpreter.get_input_details()[0]
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


def _latency_ms(content: bytes, x: np.ndarray, runs: int) -> float:
    interpreter = _interpreter(content)
    _run(interpreter, x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _run(interpreter, x)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


_TFLITE_QUANTIZER = r"""
import sys, numpy as np
from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as wrapper
content = open(sys.argv[1], "rb").read()
samples = np.load(sys.argv[2])["samples"]
calibrator = wrapper.CalibrationWrapper(content, [], [])
calibrator.Prepare([list(samples[0].shape)])
for s in samples:
    calibrator.FeedTensor([s])
f32, i8, i32 = (np.dtype(t).num for t in (np.float32, np.int8, np.int32))
out = calibrator.QuantizeModel(f32, f32, True, i8, i32, False, False)
open(sys.argv[3], "wb").write(bytes(out))
"""


def tflite_quantize(fp32: bytes, samples: np.ndarray) -> tuple[bytes | None, str]:
    """TFLite's quantizer on an fp32 model; (None, reason) if it fails or crashes."""
    with tempfile.TemporaryDirectory() as tmp:
        model, data, out = (Path(tmp) / n for n in ("m.tflite", "calib.npz", "q.tflite"))
        model.write_bytes(fp32)
        np.savez(data, samples=samples)
        result = subprocess.run(
            [sys.executable, "-c", _TFLITE_QUANTIZER, str(model), str(data), str(out)],
            capture_output=True, timeout=1800, check=False,
        )
        if result.returncode != 0 or not out.exists():
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit code {result.returncode}"
            if result.returncode < 0:
                reason = f"crashed (signal {-result.returncode})"
            return None, reason[:120]
        return out.read_bytes(), ""


def bench_model(path: Path, calib: Path, eval_dir: Path, runs: int) -> dict:
    import qcc
    from qcc.backends.tflite import export_tflite
    from qcc.calibration import load_representative_data

    original = path.read_bytes()
    model = qcc.load(path)
    fp32 = export_tflite(model.module)
    # Images are scaled to the range the model's metadata declares for its input, else [0, 1]
    # (the same default qcc's calibration applies).
    specs = model.input_specs()
    calib_samples = np.stack([s[0] for s in load_representative_data(calib, specs)])
    eval_samples = [s[0] for s in load_representative_data(eval_dir, specs)]

    quantized = {}
    notes = {}
    q = qcc.quantize(model, representative_dataset=calib, mode="int8")
    quantized["qcc"] = q.to_tflite()
    tfl, reason = tflite_quantize(fp32, calib_samples)
    if tfl is not None:
        quantized["tflite"] = tfl
    else:
        notes["tflite"] = reason

    reference = _interpreter(original)
    row: dict = {"model": path.name, "fp32_size": len(fp32), "notes": notes}
    float_latency = _latency_ms(original, eval_samples[0], runs)
    for tool, content in quantized.items():
        interpreter = _interpreter(content)
        n_out = len(reference.get_output_details())
        signal, noise = np.zeros(n_out), np.zeros(n_out)
        for x in eval_samples:
            ref = _run(reference, x)
            got = _run(interpreter, x)
            for i, (r, g) in enumerate(zip(ref, got)):
                signal[i] += float(np.sum(r.astype(np.float64) ** 2))
                noise[i] += float(np.sum((r.astype(np.float64) - g) ** 2))
        snrs = [_snr_db(s, n) for s, n in zip(signal, noise)]
        row[tool] = {
            "snr": snrs,
            "worst": min(snrs),
            "size": len(content) / len(fp32),
            "latency": _latency_ms(content, eval_samples[0], runs) / float_latency,
        }
    return row


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    shared = ROOT.parent / "shared"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=os.environ.get("QCC_MODEL_ZOO") or shared / "models")
    parser.add_argument("--calib", default=shared / "data" / "images" / "calib")
    parser.add_argument("--eval", default=shared / "data" / "images" / "eval")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("models", nargs="*", help="model files (default: every zoo .tflite)")
    args = parser.parse_args(argv)
    paths = [Path(m) for m in args.models] or sorted(Path(args.zoo).glob("*.tflite"))
    print(
        "| model | qcc SNR per output (dB) | TFLite SNR per output (dB) | worst qcc | worst TFLite "
        "| qcc − TFLite | size qcc | size TFLite | latency qcc | latency TFLite |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        row = bench_model(path, Path(args.calib), Path(args.eval), args.runs)
        q, t = row.get("qcc"), row.get("tflite")
        qs = ", ".join(_fmt(s) for s in q["snr"])
        if t is None:
            note = row["notes"].get("tflite", "failed")
            print(
                f"| {row['model']} | {qs} | failed: {note} | {_fmt(q['worst'])} | n/a | n/a | "
                f"{q['size']:.3f} | n/a | {q['latency']:.2f} | n/a |"
            )
            continue
        ts = ", ".join(_fmt(s) for s in t["snr"])
        print(
            f"| {row['model']} | {qs} | {ts} | {_fmt(q['worst'])} | {_fmt(t['worst'])} | "
            f"{q['worst'] - t['worst']:+.2f} | {q['size']:.3f} | {t['size']:.3f} | "
            f"{q['latency']:.2f} | {t['latency']:.2f} |"
        )
        sys.stdout.flush()
    print(
        "\nSNR on the held-out photos against the float model (LiteRT); size as a fraction of "
        "the fp32 file; latency as a fraction of the float model's (LiteRT, num_threads=1, "
        f"default resolver, median of {args.runs})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
