"""Mixed precision (`--target-snr`, `qcc.quantize(target_snr=...)`, qcc/mixed_precision.py)
and the `assign-precision` pass that writes its plan into the pipeline.

Oracles: LiteRT runs every emitted file (the default resolver, and BUILTIN_REF for the
bit-exact check of qcc's integer runtime on int16 plans); SNRs are recomputed here from the
float model's LiteRT outputs, not taken from the search."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    REF,
    assert_one_line_error,
    custom_ops,
    model_samples,
    run_litert,
    run_qcc,
    snr_db,
    zoo_data,
    zoo_images,
    zoo_parametrize,
)

import qcc
from qcc.errors import QccError
from qcc.testing.tflite_models import chained_models


@pytest.fixture(scope="module")
def residual(tmp_path_factory) -> tuple[Path, list[list[np.ndarray]]]:
    folder = tmp_path_factory.mktemp("mixed")
    path = folder / "residual.tflite"
    path.write_bytes(chained_models()["residual_classifier"])
    samples = model_samples(qcc.load(path), 8, seed=3, low=-1.0, high=1.0)
    return path, samples


def _tensor_dtypes(content: bytes) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}


def _float_ops(model: qcc.Model) -> list[str]:
    from qcc.dialects.ir import location_text
    from qcc.sensitivity import nn_ops

    found = []
    for op in nn_ops(model.module):
        element = op.results[0].type.get_element_type()
        if type(element).__name__ == "Float32Type":
            found.append(location_text(op.location) or "?")
    return found


def test_nothing_changes_when_the_target_is_already_met(residual) -> None:
    path, samples = residual
    plain = qcc.quantize(path, samples)
    met = qcc.quantize(path, samples, target_snr=-50.0)
    assert met.precision_plan is not None and met.precision_plan.reached
    assert met.precision_plan.choices == []
    assert met.to_tflite() == plain.to_tflite()  # the same pipeline, byte for byte


def test_float_promotions_reach_a_target_above_the_baseline(residual) -> None:
    path, samples = residual
    baseline = qcc.quantize(path, samples, target_snr=-50.0).precision_plan
    goal = min(baseline.before) + 3.0
    model = qcc.quantize(path, samples, target_snr=goal)
    plan = model.precision_plan
    assert plan.reached and plan.choices, plan.summary()
    assert min(plan.after) >= goal
    assert all(c.precision in ("float", "int16") for c in plan.choices)
    # the emitted model has the float islands the plan names, and LiteRT runs it
    floats = [c.name for c in plan.choices if c.precision == "float"]
    assert set(floats) <= set(_float_ops(model))
    content = model.to_tflite()
    reference = run_litert(path.read_bytes(), samples[3])
    got = run_litert(content, samples[3])
    assert all(np.isfinite(g).all() for g in got)
    assert snr_db(reference[0], got[0]) > min(baseline.before) - 10  # sane, runs
    # summary and pipeline text name every promoted op
    text = plan.summary()
    assert all(c.name in text for c in plan.choices)
    assert all(len(line) <= 100 for line in text.splitlines())


def test_max_float_ops_zero_uses_int16_only(residual) -> None:
    path, samples = residual
    baseline = qcc.quantize(path, samples, target_snr=-50.0).precision_plan
    plan = qcc.quantize(
        path, samples, target_snr=min(baseline.before) + 3.0, max_float_ops=0
    ).precision_plan
    assert all(c.precision == "int16" for c in plan.choices), plan.summary()


def test_int8_only_target_promotes_to_int16_and_the_runtime_is_bit_exact(residual) -> None:
    path, samples = residual
    baseline = qcc.quantize(path, samples, target="int8-only", target_snr=-50.0).precision_plan
    model = qcc.quantize(path, samples, target="int8-only",
                         target_snr=min(baseline.before) + 3.0)
    plan = model.precision_plan
    assert plan.choices and all(c.precision == "int16" for c in plan.choices), plan.summary()
    content = model.to_tflite()
    assert "int16" in _tensor_dtypes(content)
    assert _float_ops(model) == []
    x = samples[1]
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=content).get_input_details()
    assert np.dtype(details[0]["dtype"]) == np.float32
    ref = run_litert(content, x, REF)
    ours = model.run(x)
    for a, b in zip(ref, ours if isinstance(ours, list) else list(ours.values())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_an_unreachable_target_names_what_blocks_it(residual) -> None:
    path, samples = residual
    model = qcc.quantize(path, samples, target="int8-only", target_snr=200.0)
    plan = model.precision_plan
    assert not plan.reached
    assert "best reachable" in plan.blocking and "dB" in plan.blocking
    assert "target not reached" in plan.summary()
    run_litert(model.to_tflite(), samples[0])  # the best reachable model is still emitted


def test_api_errors_are_one_line(residual) -> None:
    path, samples = residual
    with pytest.raises(QccError, match="max_float_ops bounds"):
        qcc.quantize(path, samples, max_float_ops=2)
    with pytest.raises(QccError, match="at least 2 representative samples"):
        qcc.quantize(path, samples[:1], target_snr=30.0)
    with pytest.raises(QccError, match="not dynamic-range"):
        qcc.quantize(path, samples, mode="dynamic-range", target_snr=30.0)


def test_cli_prints_the_plan_and_the_pipeline_that_makes_it(residual, tmp_path) -> None:
    path, samples = residual
    calib = tmp_path / "calib.npz"
    specs = qcc.load(path).inputs
    np.savez(calib, **{s.name: np.stack([x[0] for x in samples]) for s in specs})
    out = tmp_path / "q.tflite"
    result = run_qcc(str(path), "--calibration", str(calib), "--target-snr", "60", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert err.startswith("--target-snr 60: worst output"), err
    assert out.exists()
    printed = run_qcc(str(path), "--calibration", str(calib), "--target-snr", "60",
                      "--print-pipeline")
    assert printed.returncode == 0, printed.stderr.decode()
    text = printed.stdout.decode()
    if "promotion" in err and "no promotion" not in err:
        assert "assign-precision{" in text
    # the printed pipeline makes the same model without the search
    again = tmp_path / "again.tflite"
    replay = run_qcc(str(path), "-o", str(again), "--pass-pipeline", text.strip())
    assert replay.returncode == 0, replay.stderr.decode()
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--max-float-ops", "2"], "--max-float-ops bounds the --target-snr search"),
        (["--target-snr", "nan"], "--target-snr must be a finite number"),
        (["--target-snr", "25", "--max-float-ops", "-1"], "--max-float-ops must be 0 or more"),
        (["--target-snr", "25", "--mode=dynamic-range"], "not dynamic-range"),
    ],
)
def test_cli_bad_options_are_one_line(residual, tmp_path, args, fragment) -> None:
    path, samples = residual
    calib = tmp_path / "calib.npz"
    np.savez(calib, **{s.name: np.stack([x[0] for x in samples])
                       for s in qcc.load(path).inputs})
    extra = [] if "--mode=dynamic-range" in args else ["--calibration", str(calib)]
    result = run_qcc(str(path), *extra, *args, "-o", str(tmp_path / "q.tflite"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "q.tflite").exists()


def test_cli_target_snr_needs_data(residual, tmp_path) -> None:
    path, _ = residual
    result = run_qcc(str(path), "--target-snr", "25", "--mode=int8", "-o",
                     str(tmp_path / "q.tflite"))
    assert_one_line_error(result, "needs representative data")


# ------------------------------------------------------------------------------------------
# Zoo tier: the shared models
# ------------------------------------------------------------------------------------------


def _without_custom_ops(path: Path) -> bool:
    return not custom_ops(path)


@zoo_parametrize("path", select=_without_custom_ops)
def test_zoo_int8_only_plan_runs_bit_exact_in_the_integer_runtime(path: Path, tmp_path: Path) -> None:
    """--target-snr 25 --target=int8-only (int16 promotions only): qcc's runtime equals
    LiteRT's BUILTIN_REF on the eval photos (generated inputs for a model photos cannot
    feed: `zoo_data`)."""
    _, calibration, held_out = zoo_data(path, tmp_path)
    model = qcc.quantize(path, str(calibration), target="int8-only", target_snr=25.0)
    plan = model.precision_plan
    assert plan is not None and (plan.reached or plan.blocking), plan.summary()
    content = model.to_tflite()
    for sample in held_out[:2]:
        ref = run_litert(content, list(sample), REF)
        ours = model.run(list(sample))
        ours = ours if isinstance(ours, list) else list(ours.values())
        for a, b in zip(ref, ours):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


HAND = "hand_landmark_lite"


@zoo_parametrize("path", select=lambda p: p.stem == HAND)
def test_zoo_report_predicts_what_promoting_its_ops_gains(path: Path) -> None:
    """The report's advice on hand_landmark_lite names the ops that cost the most; promoting
    exactly those (assign-precision, calibrated on all the data) raises the worst output on
    the held-out eval photos by what the report predicts, within 2 dB."""
    from qcc.mixed_precision import Plan, with_plan
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text
    from qcc.report import report

    calib, held_out = zoo_images("calib"), zoo_images("eval")
    if calib is None or held_out is None:
        pytest.fail("the zoo has no data/images/calib and data/images/eval beside it")
    float_model = qcc.load(path)
    found = report(float_model, str(calib), heldout=str(held_out), count_partitions=False)
    advice = found.advice
    assert advice is not None and advice.steps, found.format()
    text = found.format()
    for op, _ in advice.steps:
        assert op.name[:40] in text or op.name[:20] in text
    predicted_gain = advice.after - advice.before

    from qcc.calibration import load_representative_data
    from qcc.mixed_precision import Choice

    eval_data = [list(s) for s in load_representative_data(str(held_out),
                                                            float_model.input_specs())]

    def worst_on_eval(model: qcc.Model) -> float:
        content = model.to_tflite()
        snrs = []
        for o in range(len(found.outputs)):
            refs, gots = [], []
            for sample in eval_data:
                refs.append(run_litert(path.read_bytes(), sample)[o].ravel())
                gots.append(run_litert(content, sample)[o].ravel())
            snrs.append(snr_db(np.concatenate(refs), np.concatenate(gots)))
        return min(s for s in snrs if not math.isnan(s))

    options = PresetOptions(calibration=str(calib))
    text = preset_pipeline_text(options)
    plan = Plan(0.0, [], [], [], [Choice(op.index, op.name, op.op, "float", math.nan, 0.0)
                                  for op, _ in advice.steps])
    promoted_text = with_plan(text, plan)
    assert "assign-precision{float=" in promoted_text

    def quantized(pipeline: str) -> qcc.Model:
        module = float_model.module.clone()
        from qcc.sensitivity import apply_passes

        apply_passes(module, build_pipeline(pipeline))
        return qcc.Model(module, float_model.source)

    before = worst_on_eval(quantized(text))
    after = worst_on_eval(quantized(promoted_text))
    assert abs((after - before) - predicted_gain) <= 2.0, (before, after, predicted_gain)


def test_folds_hold_out_every_sample_once_and_never_calibrate_on_it() -> None:
    from qcc.sensitivity import split_samples

    samples = [[np.full((1,), float(i), np.float32)] for i in range(10)]
    seen: list[int] = []
    for fold in range(4):
        split = split_samples(samples, 4, fold)
        assert not set(split.heldout_indices) & set(split.range_indices)
        assert sorted(split.heldout_indices + split.range_indices) == list(range(10))
        seen += split.heldout_indices
    assert sorted(seen) == list(range(10))
    assert split_samples(samples, 4).heldout_indices == (3, 7)  # the default: every 4th
    with pytest.raises(QccError, match="fold must be in"):
        split_samples(samples, 4, 4)


def test_few_samples_search_on_every_fold_with_a_margin(residual) -> None:
    path, samples = residual  # 8 samples: fewer than FOLDS_BELOW
    from qcc.mixed_precision import FEW_SAMPLES_MARGIN_DB, FOLDS_BELOW

    assert len(samples) < FOLDS_BELOW
    plan = qcc.quantize(path, samples, target_snr=-50.0).precision_plan
    assert plan.split.startswith("4 folds of 8 samples")
    assert plan.margin_db == FEW_SAMPLES_MARGIN_DB
    assert f"aiming {FEW_SAMPLES_MARGIN_DB:g} dB above the target" in plan.summary()


def test_the_sensitivity_cache_is_keyed_by_qcc_s_code(residual, monkeypatch, tmp_path) -> None:
    """Results measured by other code (another qcc version, a local edit) are not reused."""
    import qcc.sensitivity as sensitivity
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text

    path, samples = residual
    monkeypatch.setenv("QCC_CACHE_DIR", str(tmp_path))
    model = qcc.load(path)
    passes = build_pipeline(preset_pipeline_text(PresetOptions(calibration="")), dataset=samples)
    first = sensitivity.Analysis.from_passes(model.module, passes, samples).cache_key()
    monkeypatch.setattr(sensitivity, "_CODE_DIGEST", "0" * 64)
    other = sensitivity.Analysis.from_passes(model.module, passes, samples).cache_key()
    assert first != other
