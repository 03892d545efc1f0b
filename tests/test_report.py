"""`qcc --report`: per-layer SNR of the int8 model (LiteRT) against float (qcc's executor)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from conftest import model_samples, run_qcc

from qcc.testing.tflite_models import chained_models


def test_report_on_generated_model(tmp_path: Path, write_model) -> None:
    model = write_model("residual", chained_models()["residual_classifier"])
    import qcc

    specs = qcc.load(model).inputs
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "calib.npz",
        **{s.name: rng.uniform(-1, 1, (6, *s.shape)).astype(np.float32) for s in specs},
    )
    out = tmp_path / "q.tflite"
    result = run_qcc(str(model), "--calibration", str(tmp_path / "calib.npz"), "-o", str(out),
                     "--report")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "qcc quantization report: residual.tflite (6 calibration samples)" in text
    assert out.exists()
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100, "the report reads in 100 columns"
    size = next(l for l in lines if l.startswith("size: "))
    assert f"({(model.stat().st_size):,} bytes)" in size and "the input file" in size
    table = lines.index(next(l for l in lines if l.startswith("   #  op")))
    rows = [l.split() for l in lines[table + 1 : table + 8]]
    layers = [r for r in rows if r[1] in ("CONV_2D+RELU", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")]
    assert len(layers) == 3, text
    for r in layers:
        assert r[2] == "int8" and float(r[3]) > 20.0, r  # local SNR: every int8 layer is close
    locals_ = [float(r[3]) for r in rows if r[2] == "int8"]
    assert locals_ == sorted(locals_), "rows are sorted worst local SNR first"
    worst = next(l for l in lines if l.strip().startswith("worst "))
    assert float(worst.split()[1]) > 20.0
    # The default target (xnnpack) makes SOFTMAX, which XNNPACK takes in float but not in
    # int8, a float island: the report names it and why, and counts the partitions.
    assert "ops: int8" in text and "float 1" in text
    not_int8 = text.splitlines()[text.splitlines().index("not int8: 1 op") + 1]
    assert "SOFTMAX" in not_int8 and "does not take int8 SOFTMAX (measured)" in not_int8
    assert "LiteRT default resolver: 1 XNNPACK partition, 0 of" in text


def test_report_of_the_reference_target_has_no_float_op(tmp_path: Path, write_model) -> None:
    model = write_model("residual", chained_models()["residual_classifier"])
    import qcc

    specs = qcc.load(model).inputs
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "calib.npz",
        **{s.name: rng.uniform(-1, 1, (6, *s.shape)).astype(np.float32) for s in specs},
    )
    result = run_qcc(str(model), "--calibration", str(tmp_path / "calib.npz"), "-o",
                     str(tmp_path / "q.tflite"), "--report", "--target=reference")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "float 0" in text and "not int8:" not in text
    assert "XNNPACK partitions" in text  # int8 SOFTMAX runs outside XNNPACK


def test_build_report_counts_float_islands(write_model) -> None:
    import qcc
    from qcc.report import report as make_report
    from qcc.testing.tflite_models import single_op_models

    model = qcc.load(write_model("div", single_op_models()["div"]))
    samples = model_samples(model, 4, seed=1, low=-1.0)
    report = make_report(model, samples, cache=False, count_partitions=False)
    assert report.op_counts["float"] == 1  # DIV has no int8 kernel: a float island
    (div,) = report.float_ops
    assert div.op == "DIV" and div.reason.startswith("no int8 kernel (")
    assert report.samples == 4
    assert not math.isnan(report.worst_output_snr_db)
    assert report.worst_output_snr_db > 40  # the island is float, only I/O is quantized
