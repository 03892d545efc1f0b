"""Import time and float-executor latency against LiteRT, per zoo model.

    python bench/import_and_run.py [--zoo DIR] [--runs 10]

For every .tflite in the zoo (default $QCC_MODEL_ZOO, else ../shared/models): the median
import time, and the median latency of qcc's float executor and of LiteRT's float interpreter
(num_threads=1, default resolver) measured side by side in this process, with their ratio.
Targets (issue 2): import <= 1 s per model; executor <= 4x LiteRT.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# One thread for qcc too (numpy's BLAS), as LiteRT runs with num_threads=1.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(path: Path, runs: int) -> dict[str, object]:
    from ai_edge_litert.interpreter import Interpreter

    from qcc.frontends.tflite import import_tflite
    from qcc.runtime.errors import MissingKernelError
    from qcc.runtime.executor import Executor

    data = path.read_bytes()
    import_s = _median_time(lambda: import_tflite(data), runs)
    module = import_tflite(data)
    row: dict[str, object] = {"model": path.name, "import_s": import_s}
    try:
        executor = Executor(module)
    except MissingKernelError as e:
        row["note"] = str(e)
        return row

    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    inputs = [
        rng.uniform(0, 1, d["shape"]).astype(d["dtype"]) for d in interpreter.get_input_details()
    ]

    def run_litert():
        for d, x in zip(interpreter.get_input_details(), inputs):
            interpreter.set_tensor(d["index"], x)
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]

    def run_qcc():
        return executor.run(inputs)

    run_litert(), run_qcc()  # warm-up
    # Interleave the two so machine noise hits both alike.
    litert_t, qcc_t = [], []
    for _ in range(runs):
        litert_t.append(_median_time(run_litert, 1))
        qcc_t.append(_median_time(run_qcc, 1))
    row["litert_ms"] = 1e3 * statistics.median(litert_t)
    row["qcc_ms"] = 1e3 * statistics.median(qcc_t)
    row["ratio"] = row["qcc_ms"] / row["litert_ms"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_zoo = os.environ.get("QCC_MODEL_ZOO") or str(
        Path(__file__).resolve().parents[1].parent / "shared" / "models"
    )
    parser.add_argument("--zoo", default=default_zoo)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    models = sorted(Path(args.zoo).glob("*.tflite"))
    if not models:
        print(f"no .tflite models in {args.zoo}", file=sys.stderr)
        return 1
    print("| model | import (s) | qcc float (ms) | LiteRT float (ms) | qcc / LiteRT |")
    print("|---|---|---|---|---|")
    for path in models:
        row = bench_model(path, args.runs)
        if "ratio" in row:
            print(
                f"| {row['model']} | {row['import_s']:.3f} | {row['qcc_ms']:.2f} | "
                f"{row['litert_ms']:.2f} | {row['ratio']:.2f}x |"
            )
        else:
            print(f"| {row['model']} | {row['import_s']:.3f} | n/a | n/a | {row['note']} |")
    print(f"\nmedians of {args.runs} runs, num_threads=1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
