"""qcc's main job on the bundled default model: quantize it to int8 and compare with float.

    pip install -e . && python examples/digits_demo.py

Loads examples/digits_float.tflite (a digits classifier built by build_digits_model.py),
quantizes it with qcc on the calibration split (examples/digits_calib.npz), writes
examples/out/digits_int8.tflite, and prints, measured with LiteRT on the held-out split
(examples/digits_test.npz): float vs int8 accuracy, file sizes, and latency.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def litert_predictions(model_path: Path, images: np.ndarray) -> tuple[np.ndarray, float]:
    """Class predictions for every image and the median per-image latency (ms), num_threads=1."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    predictions, times = [], []
    for image in images:
        x = image[None].astype(np.float32)
        if inp["dtype"] != np.float32:  # int8 I/O: quantize with the input's parameters
            scale, zero_point = inp["quantization"]
            x = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(inp["dtype"])
        start = time.perf_counter()
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        times.append(time.perf_counter() - start)
        predictions.append(int(np.argmax(y)))
    return np.array(predictions), 1e3 * statistics.median(times)


def main() -> None:
    import qcc

    float_path = HERE / "digits_float.tflite"
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    int8_path = out_dir / "digits_int8.tflite"

    model = qcc.load(float_path)
    quantized = qcc.quantize(model, representative_dataset=HERE / "digits_calib.npz", mode="int8")
    quantized.save(int8_path)

    test = np.load(HERE / "digits_test.npz")
    images, labels = test["image"], test["label"]
    float_pred, float_ms = litert_predictions(float_path, images)
    int8_pred, int8_ms = litert_predictions(int8_path, images)
    float_acc = 100 * float(np.mean(float_pred == labels))
    int8_acc = 100 * float(np.mean(int8_pred == labels))
    float_size, int8_size = float_path.stat().st_size, int8_path.stat().st_size

    print(f"digits classifier, {len(labels)} held-out images (LiteRT, num_threads=1)")
    print(f"{'':8}{'accuracy':>10}{'size (bytes)':>15}{'latency (ms)':>15}")
    print(f"{'float':8}{float_acc:>9.2f}%{float_size:>15}{float_ms:>15.4f}")
    print(f"{'int8':8}{int8_acc:>9.2f}%{int8_size:>15}{int8_ms:>15.4f}")
    print(
        f"int8 - float accuracy: {int8_acc - float_acc:+.2f} points; "
        f"size {int8_size / float_size:.2f}x; wrote {int8_path}"
    )


if __name__ == "__main__":
    main()
