"""The Python API as users call it (DESIGN.md's contract table): inputs by list, dict or bare
array; models by Model or path; NaN and inf propagating as in LiteRT; clear QccErrors for
wrong calls; saving only files LiteRT prepares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REF, run_litert

import qcc
from qcc.errors import QccError
from qcc.testing.tflite_models import all_runnable_models, chained_models, multi_io_model

RUNNABLE = all_runnable_models()


def _with_non_finite(model: qcc.Model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        x = rng.standard_normal(t.shape).astype(t.dtype)
        x.flat[::7] = np.nan
        x.flat[3::11] = np.inf
        x.flat[5::13] = -np.inf
        xs.append(x)
    return xs


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_nan_and_inf_propagate_as_in_litert(name: str, write_model) -> None:
    """Same NaN positions, same infinities (the reference kernels clamp NONE activations to
    +-FLT_MAX), same finite values up to float rounding, as LiteRT's BUILTIN_REF."""
    data = RUNNABLE[name]
    m = qcc.load(write_model(name, data))
    if any(t.dtype.kind != "f" for t in m.inputs):
        pytest.fail(f"{name}: non-float input; exclude it from this test explicitly")
    xs = _with_non_finite(m)
    with np.errstate(all="raise"):  # Model.run must not let floating-point warnings out
        got = m.run(xs)
    want = run_litert(data, xs, REF)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_array_equal(np.isposinf(g), np.isposinf(w))
        np.testing.assert_array_equal(np.isneginf(g), np.isneginf(w))
        finite = np.isfinite(w)
        np.testing.assert_allclose(g[finite], w[finite], rtol=1e-4, atol=1e-4)


def test_nan_input_never_warns(write_model) -> None:
    m = qcc.load(write_model("rc", chained_models()["residual_classifier"]))
    x = np.full(m.inputs[0].shape, np.nan, np.float32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = m.run([x])
    assert np.isnan(y).all()


def test_run_accepts_a_dict_keyed_by_input_name(write_model) -> None:
    m = qcc.load(write_model("multi", multi_io_model()))
    rng = np.random.default_rng(1)
    xs = [rng.uniform(-1, 1, t.shape).astype(t.dtype) for t in m.inputs]
    by_list = m.run(xs)
    by_name = m.run({t.name: x for t, x in zip(reversed(m.inputs), reversed(xs))})
    for a, b in zip(by_list, by_name):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"nope": 0}, "unknown input name 'nope'"),
        ("x", "expected a list of arrays"),
        (3.0, "expected a list of arrays"),
        (None, "expected a list of arrays"),
        ([], "expected 2 input"),
    ],
)
def test_run_bad_inputs_name_the_problem(write_model, bad, message) -> None:
    m = qcc.load(write_model("multi", multi_io_model()))
    with pytest.raises(QccError, match=message):
        m.run(bad)


def test_run_wrong_dtype_and_shape_name_the_input(write_model) -> None:
    m = qcc.load(write_model("rc", chained_models()["residual_classifier"]))
    spec = m.inputs[0]
    with pytest.raises(QccError, match=f"input '{spec.name}': expected dtype float32, got float64"):
        m.run([np.zeros(spec.shape)])
    with pytest.raises(QccError, match=f"input '{spec.name}': expected shape"):
        m.run([np.zeros(spec.shape[1:], np.float32)])
    with pytest.raises(QccError, match=f"no value for input '{spec.name}'"):
        m.run({})


def test_quantize_accepts_a_path(write_model, tmp_path: Path) -> None:
    path = write_model("rc", chained_models()["residual_classifier"])
    spec = qcc.load(path).inputs[0]
    data = [[np.random.default_rng(i).uniform(-1, 1, spec.shape).astype(np.float32)]
            for i in range(3)]
    from_path = qcc.quantize(path, representative_dataset=data)
    from_str = qcc.quantize(str(path), representative_dataset=data)
    from_model = qcc.quantize(qcc.load(path), representative_dataset=data)
    assert from_path.to_mlir() == from_model.to_mlir() == from_str.to_mlir()


@pytest.mark.parametrize("bad", [None, 3, b"model.tflite", ["a"]])
def test_load_and_quantize_reject_non_paths(bad) -> None:
    with pytest.raises(QccError, match="expected a file path"):
        qcc.load(bad)
    with pytest.raises(QccError):
        qcc.quantize(bad, representative_dataset=[[np.zeros(1)]])


def test_quantize_reports_pass_failures_as_qcc_errors(write_model) -> None:
    path = write_model("rc", chained_models()["residual_classifier"])
    with pytest.raises(QccError, match="mode"):
        qcc.quantize(path, representative_dataset=[[np.zeros((1, 1))]], mode="int4")


def test_infinite_generator_takes_the_first_samples(write_model) -> None:
    path = write_model("rc", chained_models()["residual_classifier"])
    spec = qcc.load(path).inputs[0]
    pulled = 0

    def forever():
        nonlocal pulled
        rng = np.random.default_rng(0)
        while True:
            pulled += 1
            yield [rng.uniform(-1, 1, spec.shape).astype(np.float32)]

    q = qcc.quantize(path, representative_dataset=forever, samples=3)
    assert pulled <= 4  # the first 3, and at most one look-ahead
    assert q.outputs[0].shape == qcc.load(path).outputs[0].shape
