"""Representative data: every source kind yields samples with the model inputs' exact shapes
and dtypes, and every kind of bad data is one QccError naming the file or sample."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qcc.calibration import (
    InputSpec,
    RepresentativeData,
    load_representative_data,
    parse_input_range,
)
from qcc.errors import QccError, QccWarning

IMG = InputSpec("image", (1, 8, 6, 3), np.float32)  # NHWC, H=8, W=6
VEC = InputSpec("x", (1, 4), np.float32)
IDS = InputSpec("ids", (1, 3), np.int32)
TWO = (VEC, IDS)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _vecs(n: int) -> np.ndarray:
    return _rng().standard_normal((n, 4)).astype(np.float32)


def _ids(n: int) -> np.ndarray:
    return np.arange(n * 3, dtype=np.int64).reshape(n, 3)


def _check_samples(
    data: RepresentativeData, inputs: tuple[InputSpec, ...]
) -> list[list[np.ndarray]]:
    """All samples, after checking each has exactly the inputs' shapes and dtypes."""
    out = list(data)
    for sample in out:
        assert isinstance(sample, list) and len(sample) == len(inputs)
        for arr, spec in zip(sample, inputs):
            assert arr.shape == spec.shape and arr.dtype == spec.dtype
    return out


def _save_image(path: Path, size: tuple[int, int], color=(10, 20, 30), mode="RGB") -> Path:
    Image.new(mode, size, color).save(path)
    return path


def _raises(fragment: str):
    return pytest.raises(QccError, match=fragment)


# ----------------------------------------------------------------------------------------------
# InputSpec and parse_input_range


def test_input_spec_normalises_shape_and_dtype():
    spec = InputSpec("x", [1, 2], "float32")  # type: ignore[arg-type]
    assert spec.shape == (1, 2) and spec.dtype == np.dtype(np.float32)
    assert spec == InputSpec("x", (1, 2), np.dtype("float32"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,1", (0.0, 1.0)),
        ("-1,1", (-1.0, 1.0)),
        (" -0.5 , 2.5e1 ", (-0.5, 25.0)),
        ("0,255", (0.0, 255.0)),
    ],
)
def test_parse_input_range(text, expected):
    assert parse_input_range(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected LO,HI"),
        ("1", "expected LO,HI"),
        ("0,1,2", "expected LO,HI"),
        ("a,b", "expected LO,HI"),
        ("1,0", "LO must be below HI"),
        ("1,1", "LO must be below HI"),
        ("nan,1", "must be finite"),
        ("0,inf", "must be finite"),
    ],
)
def test_parse_input_range_rejects(text, fragment):
    with _raises(fragment):
        parse_input_range(text)


# ----------------------------------------------------------------------------------------------
# .npz / .npy files


def test_npz_by_name_matches_inputs_whatever_the_key_order(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, ids=_ids(5), x=_vecs(5))
    data = load_representative_data(path, TWO)
    assert len(data) == 5
    samples = _check_samples(data, TWO)
    np.testing.assert_array_equal(samples[2][0], _vecs(5)[2:3])
    np.testing.assert_array_equal(samples[2][1], [[6, 7, 8]])


def test_npz_positional(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, _vecs(3), _ids(3))  # arr_0, arr_1
    samples = _check_samples(load_representative_data(str(path), TWO), TWO)
    assert len(samples) == 3
    np.testing.assert_array_equal(samples[1][1], [[3, 4, 5]])


def test_npz_single_input_any_key_and_samples_with_batch_dim(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, whatever=_vecs(4)[:, None, :])  # (N, 1, 4): samples carry the batch dim
    samples = _check_samples(load_representative_data(path, (VEC,)), (VEC,))
    np.testing.assert_array_equal(samples[3][0], _vecs(4)[3:4])


def test_single_npy_file_stacks_samples(tmp_path):
    path = tmp_path / "calib.npy"
    np.save(path, _vecs(6).astype(np.float64))  # float64 for a float32 input: cast
    data = load_representative_data(path, (VEC,))
    assert len(data) == 6
    _check_samples(data, (VEC,))


def test_mapping_source_is_an_in_memory_npz():
    data = load_representative_data({"x": _vecs(2), "ids": _ids(2)}, TWO)
    assert len(data) == 2
    _check_samples(data, TWO)


def test_npz_errors(tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, x=_vecs(3), ids=_ids(4))
    with _raises(r"c\.npz: arrays hold different numbers of samples \('x' has 3, 'ids' has 4\)"):
        load_representative_data(p, TWO)

    np.savez(p, x=_vecs(3))
    with _raises(r"c\.npz: wrong number of inputs: 1 array \(x\) for a model with 2 inputs"):
        load_representative_data(p, TWO)

    np.savez(p, a=_vecs(3), b=_ids(3))
    with _raises("array names a, b match neither the input names x, ids nor arr_0, arr_1"):
        load_representative_data(p, TWO)

    np.savez(p, x=np.float32(1.0))
    with _raises("array 'x' is a scalar"):
        load_representative_data(p, (VEC,))

    np.savez(p, x=np.zeros((0, 4), np.float32))
    with _raises("no samples"):
        load_representative_data(p, (VEC,))

    np.savez(p, x=_vecs(3).reshape(3, 2, 2))
    with _raises(r"c\.npz: array 'x' sample 0: wrong shape: expected \[1,4\], got \[2,2\]"):
        list(load_representative_data(p, (VEC,)))


def test_positional_npz_error_names_array_and_input(tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, _vecs(2), np.ones((2, 3), np.float32))  # float data for the int32 input
    with _raises(r"array 'arr_1' \(input 'ids'\) sample 0: float32 data cannot feed int32"):
        list(load_representative_data(p, TWO))


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_corrupt_array_files(tmp_path, suffix):
    p = tmp_path / f"bad{suffix}"
    p.write_bytes(b"this is not numpy data")
    with _raises(rf"bad\{suffix}: cannot read"):
        load_representative_data(p, (VEC,))


def test_truncated_npz(tmp_path):
    p = tmp_path / "cut.npz"
    np.savez_compressed(p, x=_rng().standard_normal((50, 4)).astype(np.float32))
    p.write_bytes(p.read_bytes()[:-40])
    with _raises(r"cut\.npz: cannot read"):
        load_representative_data(p, (VEC,))


def test_missing_path_and_unknown_suffix(tmp_path):
    with _raises("nope.npz: no such file or folder"):
        load_representative_data(tmp_path / "nope.npz", (VEC,))
    other = tmp_path / "calib.txt"
    other.write_text("1 2 3 4")
    with _raises("calib.txt: unsupported calibration file"):
        load_representative_data(other, (VEC,))


# ----------------------------------------------------------------------------------------------
# Folders of .npy / .npz files


def test_npy_folder_with_and_without_batch_dim_in_natural_order(tmp_path):
    vecs = _vecs(11)
    for i in range(11):  # names 0..10: natural order puts s2 before s10
        np.save(tmp_path / f"s{i}.npy", vecs[i] if i % 2 else vecs[i : i + 1])
    (tmp_path / "README.md").write_text("ignored")
    (tmp_path / ".hidden.npy").write_bytes(b"ignored too")
    data = load_representative_data(tmp_path, (VEC,))
    assert len(data) == 11
    samples = _check_samples(data, (VEC,))
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(sample[0], vecs[i : i + 1])


def test_npy_folder_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(5, np.float32))
    with _raises(r"a\.npy: wrong shape: expected \[1,4\], got \[5\]"):
        list(load_representative_data(tmp_path, (VEC,)))
    with _raises("a folder of .npy files feeds a single-input model, this one has 2 inputs"):
        load_representative_data(tmp_path, TWO)
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY garbage")
    with _raises(r"a\.npy: cannot read as \.npy data"):
        list(load_representative_data(tmp_path, (VEC,)))


def test_npz_folder_one_sample_per_file(tmp_path):
    for i in range(3):
        np.savez(tmp_path / f"{i}.npz", x=_vecs(3)[i], ids=_ids(3)[i : i + 1])
    data = load_representative_data(tmp_path, TWO)
    assert len(data) == 3
    samples = _check_samples(data, TWO)
    np.testing.assert_array_equal(samples[2][1], [[6, 7, 8]])


def test_npz_folder_bad_file(tmp_path):
    np.savez(tmp_path / "0.npz", x=_vecs(1)[0], ids=_ids(1))
    np.savez(tmp_path / "1.npz", x=_vecs(1)[0])
    with _raises(r"1\.npz: wrong number of inputs: 1 array"):
        list(load_representative_data(tmp_path, TWO))


@pytest.mark.parametrize("use_index", [False, True])
def test_subfolder_per_input(tmp_path, use_index):
    vecs, ids = _vecs(3), _ids(3)
    for i, spec in enumerate(TWO):
        sub = tmp_path / (str(i) if use_index else spec.name)
        sub.mkdir()
        for k in range(3):
            np.save(sub / f"{k:03d}.npy", (vecs, ids)[i][k])
    samples = _check_samples(load_representative_data(tmp_path, TWO), TWO)
    assert len(samples) == 3
    np.testing.assert_array_equal(samples[1][0], vecs[1:2])
    np.testing.assert_array_equal(samples[1][1], ids[1:2])


def test_subfolder_errors(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "ids").mkdir()
    np.save(tmp_path / "x" / "a.npy", _vecs(1)[0])
    np.save(tmp_path / "x" / "b.npy", _vecs(1)[0])
    with _raises(r"ids: no \.npy files"):
        load_representative_data(tmp_path, TWO)
    np.save(tmp_path / "ids" / "a.npy", _ids(1)[0])
    with _raises(r"input subfolders hold different files \(b\.npy is only in x/\)"):
        load_representative_data(tmp_path, TWO)
    (tmp_path / "ids").rename(tmp_path / "other")
    with _raises("no subfolder for input 'ids' \\(name it 'ids' or '1'\\)"):
        load_representative_data(tmp_path, TWO)
    (tmp_path / "0").mkdir()
    with _raises("both 'x' and '0' could hold input 'x'"):
        load_representative_data(tmp_path, TWO)


def test_empty_folder_and_unusable_folder(tmp_path):
    with _raises("no usable files"):
        load_representative_data(tmp_path, (IMG,))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "calib").mkdir()
    _save_image(tmp_path / "calib" / "a.png", (6, 8))
    with _raises("no usable files .*subfolders are read only when named after model inputs"):
        load_representative_data(tmp_path, (IMG,))


def test_folder_mixing_kinds(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 8, 6, 3), np.float32))
    _save_image(tmp_path / "b.png", (6, 8))
    with _raises("mixes .npy and image files"):
        load_representative_data(tmp_path, (IMG,))


# ----------------------------------------------------------------------------------------------
# Images


def test_images_of_several_sizes_and_formats(tmp_path):
    _save_image(tmp_path / "a.png", (64, 40))
    _save_image(tmp_path / "b.JPG", (3, 5))
    _save_image(tmp_path / "c.jpeg", (6, 8))
    _save_image(tmp_path / "d.bmp", (100, 7))
    _save_image(tmp_path / "e.png", (10, 10), color=(1, 2, 3, 128), mode="RGBA")
    _save_image(tmp_path / "f.png", (9, 9), color=200, mode="L")
    Image.new("P", (5, 5), 0).save(tmp_path / "g.png", transparency=0)
    data = load_representative_data(tmp_path, (IMG,))
    assert len(data) == 7
    samples = _check_samples(data, (IMG,))
    # Uniform images stay uniform through the resize; 0..255 maps onto 0..1.
    np.testing.assert_allclose(samples[0][0][0, 3, 2], np.array([10, 20, 30]) / 255, atol=0.01)
    np.testing.assert_allclose(samples[5][0], 200 / 255, atol=1e-6)  # grey L image -> RGB


@pytest.mark.parametrize("input_range", [None, (0.0, 1.0), (-1.0, 1.0), (0.1, 0.7), (-3.5, 255.0)])
def test_input_range_black_is_lo_white_is_hi_exactly(tmp_path, input_range):
    _save_image(tmp_path / "0_black.png", (6, 8), color=(0, 0, 0))
    _save_image(tmp_path / "1_white.jpg", (31, 17), color=(255, 255, 255))
    _save_image(tmp_path / "2_grey.png", (6, 8), color=(51, 51, 51))
    data = load_representative_data(tmp_path, (IMG,), input_range=input_range)
    black, white, grey = (sample[0] for sample in data)
    lo, hi = input_range or (0.0, 1.0)
    assert (black == np.float32(lo)).all()
    assert (white == np.float32(hi)).all()
    np.testing.assert_allclose(grey, lo + 0.2 * (hi - lo), rtol=1e-6)


def test_nchw_and_single_channel_inputs(tmp_path):
    _save_image(tmp_path / "a.png", (20, 10), color=(255, 0, 0))
    nchw = InputSpec("in", (1, 3, 4, 5), np.float32)
    (sample,) = _check_samples(load_representative_data(tmp_path, (nchw,)), (nchw,))
    assert (sample[0][0, 0] == 1.0).all() and (sample[0][0, 1:] == 0.0).all()  # red plane first

    # A second colour: one uniform grey image alone would be a dataset of one constant (an
    # error); two uniform images are only a warning.
    _save_image(tmp_path / "b.png", (20, 10), color=(0, 255, 0))
    gray_nhwc = InputSpec("in", (1, 4, 5, 1), np.float32)
    gray_nchw = InputSpec("in", (1, 1, 4, 5), np.float32)
    for spec in (gray_nhwc, gray_nchw):
        with pytest.warns(QccWarning, match="2 of 2 samples are constant"):
            red, green = _check_samples(load_representative_data(tmp_path, (spec,)), (spec,))
        np.testing.assert_allclose(red[0], 76 / 255, atol=1 / 255)  # luma of pure red
        np.testing.assert_allclose(green[0], 150 / 255, atol=1 / 255)


def test_dynamic_batch_image_input(tmp_path):
    _save_image(tmp_path / "a.png", (6, 8))
    spec = InputSpec("in", (-1, 8, 6, 3), np.float32)
    (sample,) = list(load_representative_data(tmp_path, (spec,)))
    assert sample[0].shape == (1, 8, 6, 3)


def test_integer_image_inputs(tmp_path):
    _save_image(tmp_path / "a.png", (6, 8), color=(0, 128, 255))
    u8 = InputSpec("in", (1, 8, 6, 3), np.uint8)
    i8 = InputSpec("in", (1, 8, 6, 3), np.int8)
    (s,) = _check_samples(load_representative_data(tmp_path, (u8,)), (u8,))
    assert s[0][0, 0, 0].tolist() == [0, 128, 255]
    (s,) = _check_samples(load_representative_data(tmp_path, (i8,)), (i8,))
    assert s[0][0, 0, 0].tolist() == [-128, 0, 127]
    with _raises(r"input_range 0,255 does not fit int8 input 'in' \(-128\.\.127\)"):
        load_representative_data(tmp_path, (i8,), input_range=(0, 255))


def test_single_image_file(tmp_path):
    path = _save_image(tmp_path / "one.jpg", (12, 12))
    assert len(_check_samples(load_representative_data(path, (IMG,)), (IMG,))) == 1


def _real_photo_folders() -> list[Path]:
    """The shared calibration photos beside the model zoo ($QCC_MODEL_ZOO/../data/...)."""
    import os

    zoo = os.environ.get("QCC_MODEL_ZOO")
    if not zoo:
        return []
    folder = Path(zoo).parent / "data" / "images" / "calib"
    return [folder] if folder.is_dir() else []


@pytest.mark.zoo
@pytest.mark.parametrize("folder", _real_photo_folders())
def test_real_photos(folder):
    spec = InputSpec("input_1", (1, 64, 64, 3), np.float32)
    samples = _check_samples(load_representative_data(folder, (spec,)), (spec,))
    assert len(samples) == len(list(folder.iterdir()))
    assert all(0.0 <= s[0].min() and s[0].max() <= 1.0 for s in samples)


def test_image_errors(tmp_path):
    _save_image(tmp_path / "a.png", (6, 8))
    with _raises("images can feed only a single-input model, this one has 2 inputs"):
        load_representative_data(tmp_path, TWO)
    with _raises(r"images need an input of shape \[1,H,W,C\] or \[1,C,H,W\]"):
        load_representative_data(tmp_path, (VEC,))
    with _raises("images need an input with 1 or 3 channels"):
        load_representative_data(tmp_path, (InputSpec("in", (1, 8, 6, 4), np.float32),))
    with _raises("dynamic height or width"):
        load_representative_data(tmp_path, (InputSpec("in", (1, -1, -1, 3), np.float32),))
    with _raises("images cannot feed bool input"):
        load_representative_data(tmp_path, (InputSpec("in", (1, 8, 6, 3), np.bool_),))
    with _raises("input_range: LO must be below HI, got 1,0"):
        load_representative_data(tmp_path, (IMG,), input_range=(1.0, 0.0))
    with _raises("input_range: LO must be below HI"):
        load_representative_data(tmp_path, (IMG,), input_range=(0.5, 0.5))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_unreadable_images(tmp_path, suffix):
    good = _save_image(tmp_path / f"0_good{suffix}", (60, 40))
    (tmp_path / f"1_garbage{suffix}").write_bytes(b"not an image at all")
    data = load_representative_data(tmp_path, (IMG,))
    it = iter(data)
    next(it)  # the good one
    with _raises(rf"1_garbage\{suffix}: cannot read image"):
        next(it)

    (tmp_path / f"1_garbage{suffix}").unlink()
    (tmp_path / f"1_cut{suffix}").write_bytes(good.read_bytes()[:60])
    with _raises(rf"1_cut\{suffix}: cannot read image"):
        list(load_representative_data(tmp_path, (IMG,)))


def test_input_range_only_for_images(tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, x=_vecs(2))
    with _raises(r"c\.npz: input_range applies only to images"):
        load_representative_data(p, (VEC,), input_range=(0, 1))
    with _raises("representative dataset: input_range applies only to image files"):
        load_representative_data([_vecs(1)], (VEC,), input_range=(0, 1))


# ----------------------------------------------------------------------------------------------
# Python iterables


def test_list_of_lists_tuples_dicts_and_bare_arrays():
    vecs, ids = _vecs(3), _ids(3)
    source = [[vecs[0], ids[0]], (vecs[1:2], ids[1:2]), {"ids": ids[2], "x": vecs[2]}]
    data = load_representative_data(source, TWO)
    assert len(data) == 3
    samples = _check_samples(data, TWO)
    np.testing.assert_array_equal(samples[2][0], vecs[2:3])

    single = load_representative_data([vecs[0], [vecs[1]], [[1, 2, 3, 4]]], (VEC,))
    samples = _check_samples(single, (VEC,))
    np.testing.assert_array_equal(samples[2][0], [[1, 2, 3, 4]])  # ints for a float input


def test_numpy_array_source_iterates_its_first_axis():
    data = load_representative_data(_vecs(5), (VEC,))
    assert len(data) == 5
    _check_samples(data, (VEC,))


def test_generator_function_is_called_each_pass():
    calls = []

    def representative_dataset():
        calls.append(1)
        for v in _vecs(4):
            yield [v]

    data = load_representative_data(representative_dataset, (VEC,))
    assert data.num_samples is None
    with pytest.raises(TypeError, match="unknown until it is iterated"):
        len(data)
    first, second = _check_samples(data, (VEC,)), _check_samples(data, (VEC,))
    assert len(calls) == 2 and len(first) == len(second) == 4
    assert len(data) == 4  # known after a full pass


def test_generator_object_is_replayed():
    pulled = []

    def gen() -> Iterator[np.ndarray]:
        for i, v in enumerate(_vecs(5)):
            pulled.append(i)
            yield v

    data = load_representative_data(gen(), (VEC,))
    it = iter(data)
    next(it), next(it)  # an interrupted pass...
    first = list(data)  # ...loses nothing
    second = list(data)
    assert pulled == [0, 1, 2, 3, 4] and len(data) == 5
    assert all(a[0] is b[0] for a, b in zip(first, second))


def test_samples_limit():
    pulled = []

    def gen():
        for i, v in enumerate(_vecs(10)):
            pulled.append(i)
            yield [v]

    data = load_representative_data(gen, (VEC,), samples=3)
    assert len(list(data)) == 3 and pulled == [0, 1, 2]
    assert len(load_representative_data(_vecs(10), (VEC,), samples=3)) == 3
    assert len(load_representative_data(_vecs(2), (VEC,), samples=3)) == 2
    assert len(list(load_representative_data(gen(), (VEC,), samples=4))) == 4
    with _raises("samples must be a positive count, got 0"):
        load_representative_data(_vecs(2), (VEC,), samples=0)


def test_samples_limit_names_the_option():
    for bad in (99999999999999999999999, -1, 2.5, True, "3"):
        with _raises("representative data: samples must be a positive count, got"):
            load_representative_data(_vecs(2), (VEC,), samples=bad)


def test_unknown_length_stops_at_the_default_cap(monkeypatch):
    """A generator of unknown length, no `samples`: the first DEFAULT_SAMPLE_CAP samples,
    and one warning (one per dataset, not per pass) when there were more."""
    import qcc.calibration

    monkeypatch.setattr(qcc.calibration, "DEFAULT_SAMPLE_CAP", 8)
    pulled = []

    def endless():
        while True:
            pulled.append(1)
            yield [_vecs(1)[0]]

    data = load_representative_data(endless, (VEC,))
    with pytest.warns(QccWarning, match=(
        r"^representative dataset: used the first 8 samples and ignored the rest \(the number "
        r"of samples is unknown, e\.g\. a generator\); to use more \(or fewer\), give samples=N$"
    )):
        assert len(list(data)) == 8
    assert len(pulled) == 9 and len(data) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        assert len(list(data)) == 8  # a second pass: no second warning
        one_shot = load_representative_data(endless(), (VEC,))
    with pytest.warns(QccWarning, match="used the first 8 samples"):
        assert len(list(one_shot)) == len(list(one_shot)) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        # exactly the cap, a known length, or an explicit `samples`: nothing ignored unsaid
        assert len(list(load_representative_data(lambda: iter(_vecs(8)), (VEC,)))) == 8
        assert len(list(load_representative_data(list(_vecs(20)), (VEC,)))) == 20
        assert len(list(load_representative_data(endless, (VEC,), samples=30))) == 30
        # a RepresentativeData passed again keeps its own limit and checks
        inner = load_representative_data(endless, (VEC,), samples=20)
        assert len(list(load_representative_data(inner, (VEC,)))) == 20


def test_samples_limit_on_paths(tmp_path):
    for i in range(5):
        _save_image(tmp_path / f"{i}.png", (6, 8), color=(i, i, i))
    data = load_representative_data(tmp_path, (IMG,), samples=2)
    assert len(data) == 2 and len(list(data)) == 2
    npz = tmp_path.parent / f"{tmp_path.name}.npz"
    np.savez(npz, _vecs(9))
    data = load_representative_data(npz, (VEC,), samples=4)
    assert len(data) == 4 and len(list(data)) == 4


def test_paths_are_reiterable(tmp_path):
    for i in range(3):
        _save_image(tmp_path / f"{i}.png", (6, 8), color=(i * 50, 0, 0))
    data = load_representative_data(tmp_path, (IMG,))
    first, second = list(data), list(data)
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])


def test_representative_data_can_be_passed_again():
    data = load_representative_data(_vecs(3), (VEC,))
    again = load_representative_data(data, (VEC,), samples=2)
    assert len(_check_samples(again, (VEC,))) == 2


def test_dynamic_dimensions_match_any_size():
    spec = InputSpec("x", (-1, -1, 4), np.float32)
    data = [np.arange(28.0).reshape(7, 4), np.arange(8.0).reshape(1, 2, 4)]
    samples = list(load_representative_data(data, (spec,)))
    assert samples[0][0].shape == (1, 7, 4) and samples[1][0].shape == (1, 2, 4)


def test_dtype_rules():
    f32 = InputSpec("x", (2,), np.float32)
    f16 = InputSpec("x", (2,), np.float16)
    i8 = InputSpec("q", (2,), np.int8)
    b = InputSpec("mask", (2,), np.bool_)

    def one(value, spec):
        return next(iter(load_representative_data([value], (spec,))))[0]

    assert one(np.array([1.5, 2.5], np.float64), f32).dtype == np.float32
    assert one(np.array([1, 2], np.int64), f32).tolist() == [1.0, 2.0]
    assert one(np.array([True, False]), f32).tolist() == [1.0, 0.0]
    assert one(np.array([-128, 127], np.int64), i8).tolist() == [-128, 127]
    assert one(np.array([True, False]), b).dtype == np.bool_
    with _raises("sample 0: float64 data cannot feed int8 input 'q' \\(quantize or round"):
        one(np.array([1.0, 2.0]), i8)
    with _raises(r"sample 0: values -1\.\.200 do not fit int8 input 'q' \(-128\.\.127\)"):
        one(np.array([-1, 200], np.int64), i8)
    with _raises("sample 0: values overflow float16"):
        one(np.array([1e6, 0.0]), f16)
    with _raises("complex128 data cannot feed float32"):
        one(np.array([1 + 1j, 0]), f32)
    with _raises("int64 data cannot feed bool input 'mask'"):
        one(np.array([1, 0]), b)
    with _raises("<U1 data is not numeric"):
        one(np.array(["a", "b"]), f32)


@pytest.mark.parametrize(
    ("bad", "word"), [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")]
)
def test_nan_and_inf_are_errors(tmp_path, bad, word):
    vecs = _vecs(3)
    vecs[2, 1] = bad
    with _raises(f"representative dataset sample 2: contains {word} values"):
        list(load_representative_data(list(vecs), (VEC,)))
    np.savez(tmp_path / "c.npz", x=vecs)
    with _raises(rf"c\.npz: array 'x' sample 2: contains {word} values"):
        list(load_representative_data(tmp_path / "c.npz", (VEC,)))


def test_iterable_sample_errors():
    vecs, ids = _vecs(2), _ids(2)
    with _raises(r"sample 1: wrong number of inputs: 1 array for a model with 2 inputs \(x, ids\)"):
        list(load_representative_data([[vecs[0], ids[0]], [vecs[1]]], TWO))
    with _raises("sample 0: wrong number of inputs: one ndarray for a model with 2 inputs"):
        list(load_representative_data([vecs[0]], TWO))
    with _raises("sample 0: unknown input name 'y' \\(model inputs: x, ids\\)"):
        list(load_representative_data([{"x": vecs[0], "y": ids[0]}], TWO))
    with _raises("sample 0: no value for input 'ids'"):
        list(load_representative_data([{"x": vecs[0]}], TWO))
    with _raises(r"sample 0, input 'ids': wrong shape: expected \[1,3\], got \[4\]"):
        list(load_representative_data([[vecs[0], vecs[0]]], TWO))
    with _raises(r"sample 0: wrong shape: expected \[1,4\], got \[2,4\]"):
        list(load_representative_data([np.zeros((2, 4))], (VEC,)))
    with _raises("sample 0: cannot make an array of list"):
        list(load_representative_data([[[[1.0], [1.0, 2.0]]]], (VEC,)))
    with _raises("sample 0: got a str, not an array"):
        list(load_representative_data(["a.png"], (IMG,)))


def test_empty_and_non_iterable_sources():
    with _raises("representative dataset: no samples"):
        load_representative_data([], (VEC,))
    with _raises("representative dataset: no samples"):
        list(load_representative_data(iter([]), (VEC,)))
    with _raises("representative dataset: no samples"):
        list(load_representative_data(lambda: iter(()), (VEC,)))
    with _raises("the callable returned a int, not an iterable of samples"):
        list(load_representative_data(lambda: 3, (VEC,)))
    with _raises("expected a path, an iterable of samples or a callable returning one"):
        load_representative_data(3, (VEC,))  # type: ignore[arg-type]
    with _raises("the model has no inputs"):
        load_representative_data([_vecs(1)], ())


def test_failed_one_shot_pass_is_not_mistaken_for_the_end():
    vecs = _vecs(3)
    data = load_representative_data(iter([vecs[0], np.zeros(9), vecs[2]]), (VEC,))
    for _ in range(2):
        with _raises("sample 1: wrong shape"):
            list(data)
