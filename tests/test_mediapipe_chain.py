"""MediaPipe's landmark/attention custom ops through qcc's int8 path: a generated model chaining
Landmarks2TransformMatrix -> TransformTensorBilinear -> CONV_2D -> RESHAPE ->
TransformLandmarks (qcc.testing.mediapipe_models, options as MediaPipe writes them).

Its float run equals the NumPy references (tests/test_mediapipe_transform.py). Here: qcc's
int8 presets quantize it with the three custom ops kept as float islands (written back as
shipped), the integer runtime runs the result (its float islands on the same float kernels)
and agrees with the float model, the report measures every op, and `--mode=int8-only` refuses
it naming each custom op.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import custom_ops, run_qcc, snr_db

import qcc
from qcc.backends.numba import compile_module
from qcc.dialects import nn
from qcc.testing.mediapipe_models import landmarks_attention_chain_model

CUSTOM = ["Landmarks2TransformMatrix", "TransformLandmarks", "TransformTensorBilinear"]


def _samples(n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.uniform(2, 14, (1, 12, 3)).astype(np.float32),
             rng.uniform(-1, 1, (1, 16, 16, 4)).astype(np.float32)] for _ in range(n)]


@pytest.fixture
def chain_path(tmp_path):
    path = tmp_path / "chain.tflite"
    path.write_bytes(landmarks_attention_chain_model())
    return path


@pytest.mark.parametrize("target", ["xnnpack", "reference", "numba"])
def test_quantizes_with_custom_ops_as_float_islands_and_runs_in_the_int8_runtime(
        chain_path, target):
    model = qcc.load(chain_path)
    q = qcc.quantize(model, representative_dataset=_samples(16, 0), target=target)
    ops = list(q.module.walk())
    generic = sorted(op.op_name.data for op in ops if isinstance(op, nn.GenericOp))
    assert generic == CUSTOM
    conv = next(op for op in ops if isinstance(op, nn.Conv2DOp))
    assert "quant.uniform" in str(conv.output.type)  # the conv between them is int8
    assert sorted(custom_ops(q.to_tflite())) == CUSTOM  # written back as shipped

    compiled = compile_module(q.module)
    for x in _samples(4, 1):
        want = model.run(x)[0]
        got = compiled.run(x)[0]
        assert got.dtype == np.float32 and got.shape == want.shape == (1, 5, 2)
        np.testing.assert_array_equal(q.run(x)[0], got)
        # measured 53-58 dB; an int8 conv over an 8x8 crop, landmarks in pixels
        assert snr_db(want, got) > 40, snr_db(want, got)


def test_report_measures_every_op_and_int8_only_names_each_custom_op(chain_path, tmp_path):
    calib = tmp_path / "calib.npz"
    samples = _samples(16, 2)
    np.savez(calib, landmarks=np.stack([s[0] for s in samples]),
             features=np.stack([s[1] for s in samples]))
    out = tmp_path / "q.tflite"
    result = run_qcc(str(chain_path), "--calibration", str(calib), "-o", str(out), "--report")
    assert result.returncode == 0, result.stderr.decode()
    report = result.stdout.decode()
    assert "ops, worst local SNR first" in report
    for name in CUSTOM:  # every op has a row (long names are cut in the middle)
        assert any(line.split()[1:2] and line.split()[1][:8] == name[:8]
                   for line in report.splitlines() if line.strip()[:1].isdigit()), name
        assert f"{name} " in report  # in the "not int8" list, in full
    assert "no int8 kernel (custom op)" in report
    assert "cannot run the float model" not in report + result.stderr.decode()

    only = tmp_path / "only.tflite"
    result = run_qcc(str(chain_path), "--calibration", str(calib), "--mode=int8-only", "-o",
                     str(only))
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 1 and all(line.startswith("qcc: error: ") for line in lines)
    for name in CUSTOM:
        assert any(f"'{name}': no int8 kernel (custom op)" in line for line in lines), lines
    assert not only.exists()
