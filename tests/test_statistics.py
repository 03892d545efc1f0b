"""Calibration statistics as a component (`qcc.statistics`): gathered from data by the driver,
saved (`--save-stats`, `quantize(save_stats=...)`), reloaded exactly, and attached by
annotate-ranges without running the model: a saved file replays a quantization byte for byte,
and statistics of another model (or another point of a pipeline) are a one-line error naming
the tensor.

The always-on tests build a small model and calibration images in code; the zoo tier replays
every model in $QCC_MODEL_ZOO from generated images.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_qcc, samples_npz, zoo_parametrize
from PIL import Image
from xdsl.context import Context
from xdsl.utils.exceptions import PassFailedException

import qcc
from qcc.dialects.ir import find_main
from qcc.errors import QccError
from qcc.frontends.tflite import import_tflite
from qcc.irtext import print_ir
from qcc.passes.annotate_ranges import AnnotateRanges, Statistics, TensorKey, TensorStats
from qcc.pipeline import PresetOptions, preset_pipeline_text
from qcc.statistics import (
    FORMAT,
    VERSION,
    Calibrator,
    collect,
    is_statistics_file,
    load,
    save,
    to_bytes,
)
from qcc.testing.tflite_models import chained_models


def _write_images(folder: Path, count: int = 6, size: int = 24, seed: int = 0) -> Path:
    """`count` smooth color PNGs with noise (any size: calibration resizes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        channels = [
            128 + 100 * np.sin(2 * np.pi * (x * (i + 1) + y * (c + 1)) + phase[c])
            + rng.normal(0, 12, (size, size))
            for c in range(3)
        ]
        pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """residual_classifier (conv + RELU, depthwise, add, FC: ops bias-correction corrects),
    encoder_decoder (same input, other tensors) and a folder of images."""
    folder = tmp_path_factory.mktemp("statistics")
    models = chained_models()
    paths = {"images": _write_images(folder / "images")}
    for name in ("residual_classifier", "encoder_decoder"):
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(models[name])
    return paths


def _samples(func, count: int = 5, seed: int = 1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        [rng.uniform(0, 1, [int(d) for d in a.type.get_shape()]).astype(np.float32)
         for a in func.body.block.args]
        for _ in range(count)
    ]


def _assert_same_values(sx, sy, key) -> None:
    assert (sx.min, sx.max, sx.count, sx.mean_axes) == (sy.min, sy.max, sy.count, sy.mean_axes)
    assert (sx.counts is None) == (sy.counts is None), key
    if sx.counts is not None:
        assert (sx.exponent, sx.offset) == (sy.exponent, sy.offset)
        np.testing.assert_array_equal(sx.counts, sy.counts)
    for u, v in ((sx.mean_sum, sy.mean_sum), (sx.mean_count, sy.mean_count)):
        assert (u is None) == (v is None)
        if u is not None:
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


def _assert_same(a: Statistics, b: Statistics, *, split: bool = True) -> None:
    """The same statistics over all samples; with `split`, the same fit / held-out parts."""
    assert (a.bins, a.samples) == (b.bins, b.samples)
    assert list(a.tensors) == list(b.tensors)
    if split:
        assert (a.held_out, a.held_out_samples) == (b.held_out, b.held_out_samples)
    for key in a:
        x, y = a[key], b[key]
        assert x.shape == y.shape, key
        _assert_same_values(x.stats, y.stats, key)
        if split:
            for part in ("fit", "held_out"):
                u, v = getattr(x, part), getattr(y, part)
                assert (u is None) == (v is None), (key, part)
                if u is not None:
                    _assert_same_values(u, v, key)


# -- the file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bins", [2048, 8, 0])
def test_a_saved_file_loads_exactly(files: dict[str, Path], tmp_path: Path, bins: int) -> None:
    func = find_main(import_tflite(files["residual_classifier"].read_bytes()))
    stats = collect(func, _samples(func), bins=bins)
    path = tmp_path / "s.stats"  # any name: nothing is appended
    save(stats, path)
    assert is_statistics_file(path)
    again = load(path)
    _assert_same(stats, again)
    assert again.source == str(path)
    # the same statistics always make the same file
    assert to_bytes(again) == path.read_bytes() == to_bytes(stats)


def test_the_format_is_as_documented(files: dict[str, Path], tmp_path: Path) -> None:
    func = find_main(import_tflite(files["residual_classifier"].read_bytes()))
    stats = collect(func, _samples(func), bins=16, source="my data")
    path = tmp_path / "s.npz"
    save(stats, path)
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["qcc_statistics"].tobytes())
        assert (header["format"], header["version"]) == (FORMAT, VERSION) == ("qcc-statistics", 2)
        assert (header["bins"], header["samples"], header["data"]) == (16, 5, "my data")
        assert header["held_out"] == {"every": 4, "samples": 1}  # sample 3 of 0..4
        n = len(header["tensors"])
        assert header["tensors"][0] == {
            "name": "image", "op": "", "index": 0, "occurrence": 0,
            "shape": [1, 16, 16, 3], "mean_axes": 1,
        }
        assert {t["op"] for t in header["tensors"][1:]} >= {
            "nn.conv2d", "nn.depthwise_conv2d", "nn.fully_connected"}
        assert archive["min_max"].shape == (n, 2) and archive["min_max"].dtype == np.float64
        assert archive["count"].shape == (n,) and archive["grid"].shape == (n, 2)
        assert archive["histogram"].shape == (n, 16) and archive["histogram"].dtype == np.int64
        assert archive["mean_sum_0"].shape == (3,) and archive["mean_count_0"].dtype == np.int64
        np.testing.assert_array_equal(archive["histogram"].sum(axis=1), archive["count"])
        for part in ("fit_", "held_out_"):
            assert archive[f"{part}min_max"].shape == (n, 2)
            assert archive[f"{part}grid"].shape == (n, 2)
            assert archive[f"{part}histogram"].shape == (n, 16)
            np.testing.assert_array_equal(
                archive[f"{part}histogram"].sum(axis=1), archive[f"{part}count"])
        np.testing.assert_array_equal(
            archive["fit_count"] + archive["held_out_count"], archive["count"])
        assert archive["held_out_count"][0] == 16 * 16 * 3  # one image of the five
        assert not any(name.startswith(("fit_mean", "held_out_mean")) for name in archive.files)


def test_a_split_changes_nothing_but_adds_the_parts(files: dict[str, Path]) -> None:
    """With the default split, the statistics over all samples are those gathered without
    one, bit for bit (means included); the parts are those of the fit and the held-out
    samples gathered alone."""
    func = find_main(import_tflite(files["residual_classifier"].read_bytes()))
    samples = _samples(func, 9)
    split, plain = collect(func, samples), collect(func, samples, held_out=0)
    assert (split.held_out, split.held_out_samples) == (4, 2)  # samples 3 and 7
    assert (plain.held_out, plain.held_out_samples) == (0, 0)
    assert all(e.fit is None and e.held_out is None for e in plain.tensors.values())
    _assert_same(split, plain, split=False)
    fit = collect(func, [x for i, x in enumerate(samples) if i not in (3, 7)], held_out=0)
    held = collect(func, [samples[3], samples[7]], held_out=0)
    for key, entry in split.tensors.items():
        for part, alone in ((entry.fit, fit[key].stats), (entry.held_out, held[key].stats)):
            assert part is not None and part.mean_sum is None
            alone = dataclasses.replace(alone, mean_axes=0, mean_sum=None, mean_count=None)
            _assert_same_values(part, alone, key)


def test_bad_files_are_one_line_errors(files: dict[str, Path], tmp_path: Path) -> None:
    func = find_main(import_tflite(files["residual_classifier"].read_bytes()))
    good = to_bytes(collect(func, _samples(func, 2), bins=8))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(QccError, match=r"truncated.npz: not a valid qcc statistics file"):
        load(truncated)

    def rewrite(name: str, change) -> Path:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "qcc_statistics.npy":
                    header = json.loads(np.load(io.BytesIO(data)).tobytes())
                    change(header)
                    buffer = io.BytesIO()
                    np.save(buffer, np.frombuffer(json.dumps(header).encode(), np.uint8))
                    data = buffer.getvalue()
                dst.writestr(info, data)
        path = tmp_path / name
        path.write_bytes(out.getvalue())
        return path

    newer = rewrite("newer.npz", lambda h: h.update(version=VERSION + 1))
    with pytest.raises(QccError, match=r"newer.npz: statistics file version 3 is newer than"):
        load(newer)
    split_in_v1 = rewrite("v1split.npz", lambda h: h.update(version=1))
    with pytest.raises(QccError, match=r"v1split.npz: not a valid qcc statistics file "
                       r"\('held_out' must be an object \(version 2 and later\)\)"):
        load(split_in_v1)
    fewer = rewrite("fewer.npz", lambda h: h["tensors"].pop())
    with pytest.raises(
        QccError, match=r"fewer.npz: not a valid qcc statistics file \('min_max' has shape"
    ):
        load(fewer)
    # calibration data is never taken for statistics
    data = tmp_path / "data.npz"
    np.savez(data, np.zeros((2, 1, 16, 16, 3), np.float32))
    assert not is_statistics_file(data) and not is_statistics_file(tmp_path / "missing.npz")
    assert is_statistics_file(newer)
    # nor statistics for data
    from qcc.calibration import load_representative_data
    from qcc.statistics import input_specs

    with pytest.raises(QccError, match=r"newer.npz: holds calibration statistics \(saved by qcc "
                       r"--save-stats\), not representative data"):
        load_representative_data(newer, input_specs(func))


def _with_header(data: bytes, change) -> bytes:
    """A statistics file (bytes) with `change(header)` applied to its JSON header."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            member = src.read(info)
            if info.filename == "qcc_statistics.npy":
                header = json.loads(np.load(io.BytesIO(member)).tobytes())
                change(header)
                buffer = io.BytesIO()
                np.save(buffer, np.frombuffer(json.dumps(header).encode(), np.uint8))
                member = buffer.getvalue()
            dst.writestr(info, member)
    return out.getvalue()


def test_a_version_1_file_still_serves_every_method_but_auto(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Version 1 (no split) means what its arrays meant: the statistics over all samples.
    They annotate as before; method=auto, which needs held-out samples, says so."""
    module = import_tflite(files["residual_classifier"].read_bytes())
    func = find_main(module)
    samples = _samples(func)
    old = tmp_path / "v1.npz"
    old.write_bytes(_with_header(to_bytes(collect(func, samples, held_out=0)),
                                 lambda h: h.update(version=1)))
    loaded = load(old)
    assert loaded.held_out == 0
    _assert_same(loaded, collect(func, samples), split=False)
    for method in ("minmax", "percentile", "mse"):
        a, b = module.clone(), module.clone()
        AnnotateRanges(method=method, statistics=Calibrator(str(old))).apply(Context(), a)
        AnnotateRanges(method=method, statistics=Calibrator(samples)).apply(Context(), b)
        assert print_ir(a) == print_ir(b)
    with pytest.raises(PassFailedException, match=(
            r"^annotate-ranges: method=auto scores ranges on held-out samples, and .*v1.npz "
            r"holds none .* gather the statistics again with held-out=N")):
        AnnotateRanges(method="auto", statistics=Calibrator(str(old))).apply(
            Context(), module.clone())


def test_parts_that_do_not_add_up_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    func = find_main(import_tflite(files["residual_classifier"].read_bytes()))
    stats = collect(func, _samples(func), bins=8)
    first = next(iter(stats.tensors.values()))
    assert first.held_out is not None
    first.held_out.count += 1
    assert first.held_out.counts is not None
    first.held_out.counts[0] += 1
    path = tmp_path / "bad.npz"
    path.write_bytes(to_bytes(stats))
    with pytest.raises(QccError, match=r"bad.npz: not a valid qcc statistics file \(input "
                       r"'image': the fit and held-out counts do not add up\)"):
        load(path)


# -- attaching without running the model -------------------------------------------------------


def test_annotate_ranges_attaches_and_never_runs_the_model(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a file, annotate-ranges builds the same IR as from the data, for every method
    (the file holds no method's choice), and neither the executor nor LiteRT runs."""
    module = import_tflite(files["residual_classifier"].read_bytes())
    func = find_main(module)
    samples = _samples(func)
    path = tmp_path / "s.npz"
    save(collect(func, samples), path)

    import qcc.litert
    import qcc.runtime.executor

    texts = {}
    for method in ("minmax", "percentile", "mse", "auto"):
        from_data = module.clone()
        AnnotateRanges(method=method, statistics=Calibrator(samples)).apply(Context(), from_data)
        texts[method] = print_ir(from_data)
    for name in ("Executor",):
        monkeypatch.setattr(qcc.runtime.executor, name, None)
    monkeypatch.setattr(qcc.litert, "LiteRTRunner", None)
    for method in ("minmax", "percentile", "mse", "auto"):
        from_file = module.clone()
        AnnotateRanges(method=method, statistics=Calibrator(str(path))).apply(Context(), from_file)
        assert print_ir(from_file) == texts[method], method
        also = module.clone()
        AnnotateRanges(method=method, statistics=load(path)).apply(Context(), also)  # as is
        assert print_ir(also) == texts[method], method
    assert texts["minmax"] != texts["mse"]


def test_bins_must_agree(files: dict[str, Path], tmp_path: Path) -> None:
    module = import_tflite(files["residual_classifier"].read_bytes())
    func = find_main(module)
    path = tmp_path / "s.npz"
    save(collect(func, _samples(func)), path)
    with pytest.raises(PassFailedException, match=(
        r"^annotate-ranges: .*s.npz holds histograms of 2048 bins, not the 8 bins asked for; "
        r"ask for bins=2048")):
        AnnotateRanges(bins=8, statistics=Calibrator(str(path))).apply(Context(), module.clone())
    # bins=0 keeps the ranges without histograms (minmax), as from the data
    from_file, from_data = module.clone(), module.clone()
    AnnotateRanges(bins=0, statistics=Calibrator(str(path))).apply(Context(), from_file)
    AnnotateRanges(bins=0, statistics=Calibrator(_samples(func))).apply(Context(), from_data)
    assert print_ir(from_file) == print_ir(from_data) and "histogram" not in print_ir(from_file)


def test_statistics_of_another_ir_name_the_tensor(files: dict[str, Path], tmp_path: Path) -> None:
    module = import_tflite(files["residual_classifier"].read_bytes())
    func = find_main(module)
    stats = collect(func, _samples(func))

    other = import_tflite(files["encoder_decoder"].read_bytes())  # the same input 'image'
    with pytest.raises(PassFailedException) as info:
        AnnotateRanges(statistics=stats).apply(Context(), other)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "annotate-ranges: the representative data has no statistics for tensor '")
    assert message.endswith(
        "they were gathered on another model, or at another point of the pipeline "
        "(statistics fit only the IR they were gathered on)")

    # the same names, another shape
    key = TensorKey("image", "", 0)
    reshaped = Statistics(dict(stats.tensors), stats.bins, stats.samples, "s.npz")
    reshaped.tensors[key] = TensorStats((1, 8, 8, 3), stats[key].stats)
    with pytest.raises(PassFailedException, match=(
            r"^annotate-ranges: input 'image' has shape 1x16x16x3 here but 1x8x8x3 in s.npz: ")):
        AnnotateRanges(statistics=reshaped).apply(Context(), module.clone())

    # statistics of a tensor the IR does not have
    extra = Statistics(dict(stats.tensors), stats.bins, stats.samples, "s.npz")
    extra.tensors[TensorKey("gone", "nn.relu", 0)] = stats[key]
    with pytest.raises(PassFailedException, match=(
            r"^annotate-ranges: s.npz has statistics for tensor 'gone' \(nn.relu\), which this "
            r"IR does not have")):
        AnnotateRanges(statistics=extra).apply(Context(), module.clone())


# -- the driver: --save-stats, --calibration STATS, quantize(save_stats=...) --------------------


def test_the_driver_binds_the_calibrator() -> None:
    """build_pipeline hands annotate-ranges a Calibrator for its `calibration`; the Python-only
    field is neither an option nor part of the pipeline text."""
    from qcc.pipeline import build_pipeline, pass_options, pipeline_text

    text = "builtin.module(fuse-activation,annotate-ranges{calibration=c.npz method=mse})"
    passes = build_pipeline(text)
    bound = passes[1]
    assert isinstance(bound, AnnotateRanges) and isinstance(bound.statistics, Calibrator)
    assert bound.statistics.source == "c.npz"
    assert pipeline_text(passes) == text
    assert "statistics" not in pass_options(AnnotateRanges)
    (unbound,) = build_pipeline("annotate-ranges")
    assert unbound.statistics is None  # no data: the pass says what it needs when it runs
    (from_python,) = build_pipeline("annotate-ranges", dataset=[[np.zeros((1, 4), np.float32)]])
    assert isinstance(from_python.statistics, Calibrator)
    with pytest.raises(QccError, match="unknown option 'statistics' for pass 'annotate-ranges'"):
        build_pipeline("annotate-ranges{statistics=x}")


def _preset(calibration: Path, **options) -> str:
    return preset_pipeline_text(PresetOptions(calibration=str(calibration), **options))


def test_a_saved_file_replays_the_cli_byte_for_byte(files: dict[str, Path], tmp_path: Path) -> None:
    """qcc M --calibration images/ --save-stats S, then the pipeline text with calibration=S
    (what --print-pipeline prints), and --calibration S: the same .tflite bytes. The preset
    runs bias-correction, which reads the channel means from the file."""
    model, images = files["residual_classifier"], files["images"]
    stats = tmp_path / "S.npz"
    first = tmp_path / "a.tflite"
    result = run_qcc(str(model), "--calibration", str(images), "-o", str(first),
                     "--save-stats", str(stats))
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    printed = run_qcc("--calibration", str(stats), "--print-pipeline")
    text = printed.stdout.decode().strip()
    assert text == _preset(stats) and "bias-correction" in text
    replay = tmp_path / "b.tflite"
    result = run_qcc(str(model), f"--pass-pipeline={text}", "-o", str(replay))
    assert result.returncode == 0, result.stderr
    assert replay.read_bytes() == first.read_bytes()
    again = tmp_path / "c.tflite"
    assert run_qcc(str(model), "--calibration", str(stats), "-o", str(again)).returncode == 0
    assert again.read_bytes() == first.read_bytes()

    # the means in the file are what bias-correction used: without it, another model
    plain = qcc.quantize(model, representative_dataset=str(images), bias_correction=False)
    assert plain.to_tflite() != first.read_bytes()
    assert qcc.quantize(model, representative_dataset=str(stats),
                        bias_correction=False).to_tflite() == plain.to_tflite()


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_one_file_serves_every_method(files: dict[str, Path], tmp_path: Path, method: str) -> None:
    model, images = files["residual_classifier"], files["images"]
    stats = tmp_path / "S.npz"
    qcc.quantize(model, representative_dataset=str(images), save_stats=stats)  # method=mse
    from_images = qcc.quantize(model, representative_dataset=str(images), method=method)
    from_file = qcc.quantize(model, representative_dataset=str(stats), method=method)
    assert from_file.to_tflite() == from_images.to_tflite()


def test_a_python_run_is_replayable(files: dict[str, Path], tmp_path: Path) -> None:
    """quantize(..., save_stats=S) from a Python dataset: its pipeline text with
    calibration=S (from the CLI or Python) reproduces it."""
    model = files["residual_classifier"]
    func = find_main(qcc.load(model).module)
    samples = _samples(func, 8, seed=3)
    stats = tmp_path / "S.npz"
    q = qcc.quantize(model, representative_dataset=lambda: iter(samples), save_stats=stats,
                     per_channel_fc=False, io_dtype="int8")
    assert load(stats).samples == 8
    assert qcc.quantize(model, representative_dataset=stats, per_channel_fc=False,
                        io_dtype="int8").to_tflite() == q.to_tflite()
    text = _preset(stats, per_channel_fc=False, io_dtype="int8")
    out = tmp_path / "replay.tflite"
    result = run_qcc(str(model), f"--pass-pipeline={text}", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == q.to_tflite()


def test_statistics_of_another_model_are_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    stats = tmp_path / "S.npz"
    qcc.quantize(files["residual_classifier"], representative_dataset=str(files["images"]),
                 save_stats=stats)
    line = assert_one_line_error(
        run_qcc(str(files["encoder_decoder"]), "--calibration", str(stats), "-o",
                str(tmp_path / "x.tflite")),
        f"qcc: error: annotate-ranges: {stats} has no statistics for tensor '",
    )
    assert "another model, or at another point of the pipeline" in line
    assert not (tmp_path / "x.tflite").exists()
    with pytest.raises(QccError, match=f"^annotate-ranges: {stats} has no statistics for"):
        qcc.quantize(files["encoder_decoder"], representative_dataset=stats)

    # statistics gathered before fuse-activation do not fit the preset's IR, which fuses
    early = tmp_path / "early.npz"
    result = run_qcc(str(files["residual_classifier"]),
                     f"--pass-pipeline=annotate-ranges{{calibration={files['images']}}}",
                     "--save-stats", str(early), "-o", str(tmp_path / "annotated.mlir"))
    assert result.returncode == 0, result.stderr
    assert_one_line_error(
        run_qcc(str(files["residual_classifier"]), "--calibration", str(early),
                "-o", str(tmp_path / "y.tflite")),
        f"annotate-ranges: {early} has no statistics for tensor 'stem/relu' (nn.conv2d) of "
        "shape 1x16x16x8",  # the conv that took over the RELU's tensor
    )


def test_save_stats_errors(files: dict[str, Path], tmp_path: Path) -> None:
    model, images = str(files["residual_classifier"]), str(files["images"])
    out = str(tmp_path / "o.tflite")
    assert_one_line_error(
        run_qcc(model, "--mode=dynamic-range", "-o", out, "--save-stats", str(tmp_path / "s")),
        "--save-stats saves the statistics of the pipeline's annotate-ranges, and this "
        "pipeline runs no annotate-ranges with data",
    )
    twice = f"annotate-ranges{{calibration={images}}},annotate-ranges{{calibration={images}}}"
    assert_one_line_error(
        run_qcc(model, f"--pass-pipeline={twice}", "--save-stats", str(tmp_path / "s")),
        "runs annotate-ranges 2 times",
    )
    assert_one_line_error(
        run_qcc(model, "--calibration", images, "-o", out, "--save-stats", out),
        "is the output too",
    )
    assert_one_line_error(
        run_qcc(model, "--calibration", images, "-o", out, "--save-stats", model),
        "qcc never overwrites its input",
    )
    assert not (tmp_path / "s").exists() and not (tmp_path / "o.tflite").exists()
    stats = tmp_path / "S.npz"
    qcc.quantize(model, representative_dataset=images, save_stats=stats)
    assert_one_line_error(
        run_qcc(model, "--calibration", str(stats), "--report", "-o", out),
        "--report measures the SNR on representative data",
    )
    with pytest.raises(QccError, match="save_stats: mode 'dynamic-range' gathers no"):
        qcc.quantize(model, mode="dynamic-range", save_stats=stats)


# -- the zoo: replay every real model from generated images -----------------------------------


@zoo_parametrize("path")
def test_zoo_replays_from_saved_statistics(path: Path, tmp_path: Path) -> None:
    from qcc.calibration import load_representative_data

    images = _write_images(tmp_path / "images", count=3, size=64, seed=5)
    model = qcc.load(path)
    try:
        list(load_representative_data(str(images), model.input_specs()))
    except QccError:  # a model images cannot feed (audio, ...): generated samples
        images = samples_npz(model, tmp_path / "samples.npz", 3, seed=5)
    stats, first, replay = tmp_path / "S.npz", tmp_path / "a.tflite", tmp_path / "b.tflite"
    result = run_qcc(str(path), "--calibration", str(images), "-o", str(first),
                     "--save-stats", str(stats), timeout=900)
    assert result.returncode == 0, result.stderr.decode()
    result = run_qcc(str(path), f"--pass-pipeline={_preset(stats)}", "-o", str(replay),
                     timeout=900)
    assert result.returncode == 0, result.stderr.decode()
    assert replay.read_bytes() == first.read_bytes()
