"""Issue 3's done-when on every real model in $QCC_MODEL_ZOO, driven through the `qcc` CLI:
quantize with the shared calibration photos, and LiteRT loads and runs the result (default
resolver, and BUILTIN_REF unless the model has a custom op only the default resolver knows);
every op but the float islands is int8; --mode=int8-only fails exactly on models with an op that
has no int8 kernel, naming it and its location."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _zoo_models() -> list[Path]:
    zoo = os.environ.get("QCC_MODEL_ZOO")
    return sorted(Path(zoo).glob("*.tflite")) if zoo else []


def _calibration_folder() -> Path:
    return Path(os.environ["QCC_MODEL_ZOO"]).parent / "data" / "images" / "calib"


def _custom_ops(model: Path) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model.read_bytes(), 0)
    return [
        c.customCode.decode() if isinstance(c.customCode, bytes) else c.customCode
        for c in m.operatorCodes
        if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.CUSTOM
    ]


def _qcc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qcc.cli", *args], capture_output=True, timeout=900, check=False
    )


def _run_litert(content: bytes, resolver=None) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    interpreter = Interpreter(model_content=content, num_threads=1, **kwargs)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        x = np.random.default_rng(0).uniform(0, 1, d["shape"]).astype(d["dtype"])
        interpreter.set_tensor(d["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.mark.parametrize("model", _zoo_models(), ids=lambda p: p.name)
def test_int8_quantization_runs_in_litert(model: Path, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import OpResolverType

    from qcc.report import _op_counts

    out = tmp_path / f"{model.stem}_int8.tflite"
    result = _qcc(str(model), "--calibration", str(_calibration_folder()), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    content = out.read_bytes()
    outputs = _run_litert(content)
    assert all(np.isfinite(o).all() for o in outputs)
    custom = _custom_ops(model)
    if not custom:
        ref_outputs = _run_litert(content, OpResolverType.BUILTIN_REF)
        assert all(np.isfinite(o).all() for o in ref_outputs)
    counts, producer = _op_counts(content)
    # Only custom ops may stay float: every builtin of these models has an int8 kernel.
    assert counts["float"] == len([c for c in custom]), counts
    assert counts["int8"] > 0


@pytest.mark.parametrize("model", _zoo_models(), ids=lambda p: p.name)
def test_int8_only_mode(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "only.tflite"
    result = _qcc(
        str(model), "--calibration", str(_calibration_folder()), "--mode=int8-only", "-o", str(out)
    )
    custom = _custom_ops(model)
    stderr = result.stderr.decode()
    if custom:
        assert result.returncode == 1
        assert "Traceback" not in stderr
        for name in custom:
            assert f"'{name}'" in stderr and "no int8 kernel" in stderr, stderr
        assert 'loc("' in stderr, stderr
        assert not out.exists()
    else:
        assert result.returncode == 0, stderr
        from qcc.report import _op_counts

        counts, _ = _op_counts(out.read_bytes())
        assert counts["float"] == 0, counts
