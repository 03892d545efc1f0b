"""Representative data for calibration, supplied the way TFLite converter users supply a
`representative_dataset`.

`load_representative_data(source, inputs)` turns any of the accepted sources into a
`RepresentativeData`: an iterable of samples, each a list of numpy arrays in the model's input
order with exactly the model's input shapes and dtypes. Accepted sources:

* **a `.npz` file** (or a single `.npy` file): one array per model input whose *first axis
  counts samples*. Arrays are matched to inputs by name when the archive's keys are exactly
  the input names, else positionally when they are `arr_0`, `arr_1`, ... (what `np.savez(a, b)`
  writes); a single-input model takes an archive holding one array under any key. An
  in-memory mapping `{name: stacked array}` is accepted the same way.
* **a folder** holding one kind of file (hidden files and other suffixes are ignored; files are
  taken in natural name order, so `img2` comes before `img10`; subfolders are not searched):
  - `.npy` files, one sample each, for a single-input model;
  - `.npz` files, one sample each; keys as for a `.npz` source above, but without the
    sample axis (this is the per-sample form for multi-input models);
  - images (`.png .jpg .jpeg .bmp`, read with Pillow), one sample each, for a single-input
    model with a 4-D image input (see below);
  - or no files but one subfolder per model input, named by the input's name or its index
    (`0/`, `1/`, ...), each holding `.npy` files; samples pair files of the same name, so
    every subfolder must hold the same file names.
* **a Python iterable** (a list, a numpy array iterated along its first axis, a generator, or
  a callable returning an iterable — TFLite's `representative_dataset` is a generator
  function) yielding one sample at a time: a list/tuple of arrays in model input order, a dict
  input name -> array, or, for a single-input model, a bare array.

Shapes: a sample array must have the input's shape, or that shape without its leading batch
dimension of 1 (which is then added). A negative dimension in an `InputSpec` shape is dynamic
and matches any size. Dtypes are cast when that is safe: floats of any width and integers feed
float inputs; integers feed integer inputs if every value fits; float data never feeds an
integer input. NaN or infinite values are an error.

Images are converted to RGB (or L for a 1-channel input; palettes and transparency expanded,
alpha dropped, CMYK converted), resized with Pillow's bilinear filter to the input's height and
width, and mapped linearly from [0, 255] onto `input_range`, so that black is exactly `lo` and
white exactly `hi`. 16-bit images map 0..65535 onto the same range (16-bit grayscale exactly;
Pillow reads 16-bit color PNGs as their high bytes). The image input is NHWC `[1, H, W, C]`, or
NCHW `[1, C, H, W]` when axis 1 has 1 or 3 channels and the last axis does not. The default range is
(0, 1) for float inputs, (0, 255) for unsigned and wide integer inputs and (-128, 127) for int8
inputs; integer inputs get rounded values.

Checks against the model: the first complete pass checks every sample (one min and one max
per input) against the input range the model declares (`InputSpec.value_range`, from its
TFLite metadata; for images `input_range` when given):

* float data far outside the declared range — by more than the range's width, or beyond ±2
  for a range within [-1, 1] (8-bit pixels 0..255 for a model that expects [0, 1]) — is a
  `QccError` naming the sample, with a hint how to scale it (e.g. `x/255`);
* data a little outside the range, samples that are constant (every element equal: blank
  images, zero arrays), and data that covers under 2% of the declared range are one
  `QccWarning` each for the whole dataset, with the count and the first sample;
* a dataset that is one constant (every sample, every input: e.g. all zeros) is a `QccError`,
  raised at the end of the pass: there is nothing to calibrate on.

A source whose number of samples is unknown (a generator) with no `samples` stops after
`DEFAULT_SAMPLE_CAP` (1000) samples, with one `QccWarning` if it holds more (`samples=N` takes
N instead); every consumer iterating the data gets at most that many.

Paths, sequences and callables can be iterated any number of times (calibration may make two
passes; path sources re-read their files each pass). A one-shot iterator such as a generator
object is replayed from memory after its first pass, so pass a generator *function* to avoid
holding the dataset in memory. `len()` works when the number of samples is known: for paths
and sized iterables from the start, for generators after one full pass.

Every problem with the data is a `QccError` whose one-line message names the file or sample
(samples are counted from 0) and what is wrong with it.

This module only reads data. Turning it into calibration statistics (running the float model)
is `qcc.statistics`, which also saves and reloads them; a statistics file given here is a
`QccError` saying so.
"""

from __future__ import annotations

import math
import operator
import os
import re
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qcc.errors import QccError, QccWarning

Array = npt.NDArray[Any]
Sample = list[Array]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
"""File suffixes (case-insensitive) read as images from a calibration folder."""

ITERABLE_WHERE = "representative dataset"
"""How errors name a Python iterable source."""

DEFAULT_SAMPLE_CAP = 1000
"""Samples taken from a source of unknown length (a generator) when no `samples` is given."""

STATISTICS_MEMBER = "qcc_statistics"
"""The array that marks a file of saved calibration statistics (`qcc.statistics`), which is
not representative data."""

# What numpy raises on a corrupt, truncated or foreign .npy/.npz file.
_ARRAY_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class InputSpec:
    """One model input, as the model's signature declares it.

    `shape` is the full input shape, batch dimension included; a negative dimension is dynamic
    (matches any size). `dtype` may be given as anything `np.dtype` accepts. `value_range` is
    the range the model declares for the input (its TFLite metadata's image normalization):
    images are scaled to it when no `input_range` is given.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))


@dataclass(frozen=True)
class _Source:
    """One kind of source, reduced to what `RepresentativeData` needs."""

    description: str
    """Names the source in errors: a path, or 'representative dataset'."""
    open_pass: Callable[[], Iterator[Sample]]
    """Starts one pass over the samples, already conformed to the model inputs."""
    length: int | None
    """The number of samples, when known before iterating."""
    one_shot: bool = False
    """True when `open_pass` can run only once (a generator object or other iterator)."""
    labels: Sequence[str] | None = None
    """Per sample, the file it comes from (file sources), to name it in messages."""
    bounded: bool = False
    """The length is unknown but finite (another `RepresentativeData`, limited or capped)."""


class RepresentativeData:
    """Calibration samples: iterate to get, per sample, a list of arrays in model input order,
    each with the model input's exact shape and dtype. Build one with
    `load_representative_data`."""

    def __init__(
        self,
        inputs: Sequence[InputSpec],
        source: _Source,
        limit: int | None,
        expected_ranges: Sequence[tuple[float, float] | None] | None = None,
        range_origin: str = "the model's metadata",
    ) -> None:
        self.inputs: tuple[InputSpec, ...] = tuple(inputs)
        self.description: str = source.description
        self._source = source
        self._limit = limit
        # A source of unknown length (a generator) with no `samples` stops at the default cap.
        self._capped = limit is None and source.length is None and not source.bounded
        self._take = DEFAULT_SAMPLE_CAP if self._capped else limit
        self._cap_warned = False
        self._length = _limited(source.length, limit)
        self._expected = (
            tuple(expected_ranges) if expected_ranges is not None else (None,) * len(self.inputs)
        )
        # The data checks (`_DataChecks`) run on the first complete pass; what they found
        # about the whole dataset is kept and re-raised by every later complete pass.
        self._range_origin = range_origin
        self._checked = False
        self._verdict: QccError | None = None
        # One-shot sources: samples seen so far, the live iterator, and how it ended.
        self._replay: list[Sample] = []
        self._live: Iterator[Sample] | None = None
        self._live_checks: _DataChecks | None = None
        self._exhausted = False
        self._failure: BaseException | None = None

    @property
    def num_samples(self) -> int | None:
        """The number of samples, or None while it is unknown (a generator not yet run)."""
        return self._length

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError(
                f"the number of samples in {self.description} is unknown until it is iterated"
            )
        return self._length

    def __iter__(self) -> Iterator[Sample]:
        return self._samples(check=True)

    def _samples(self, check: bool) -> Iterator[Sample]:
        """One pass; `check=False` leaves the data checks to the caller (a
        `RepresentativeData` built on this one checks against its own inputs)."""
        if self._source.one_shot:
            return self._replaying_pass(check)
        return self._fresh_pass(check)

    def __repr__(self) -> str:
        count = "unknown number of" if self._length is None else str(self._length)
        return f"<RepresentativeData {self.description!r}: {count} samples>"

    def _new_checks(self) -> _DataChecks | None:
        if self._checked:
            return None
        return _DataChecks(
            self.inputs, self._expected, self._range_origin, self.description,
            self._source.labels,
        )

    def _finish(self, checks: _DataChecks | None, count: int) -> None:
        """The end of a complete pass of `count` samples: dataset-level checks (once)."""
        self._length = count
        if checks is not None:
            try:
                checks.finish(count)
            except QccError as e:
                self._verdict = e
            self._checked = True
        if self._verdict is not None:
            raise self._verdict

    def _note_cap(self, stream: Iterator[Sample]) -> None:
        """The default cap was reached: warn (once) if the source holds more samples."""
        if self._cap_warned:
            return
        try:
            next(stream)
        except StopIteration:
            return
        except Exception:  # a sample beyond the cap that cannot be read still exists
            pass
        self._cap_warned = True
        warnings.warn(
            f"{self.description}: used the first {self._take} samples and ignored the rest "
            f"(the number of samples is unknown, e.g. a generator); to use more (or fewer), "
            f"give samples=N",
            QccWarning,
            stacklevel=3,
        )

    def _fresh_pass(self, check: bool = True) -> Iterator[Sample]:
        checks = self._new_checks() if check else None
        stream = self._source.open_pass()
        count = 0
        for sample in islice(stream, self._take):
            if checks is not None:
                checks.see(count, sample)
            count += 1
            yield sample
        if count == 0:
            raise QccError(f"{self.description}: no samples")
        if self._capped and count == self._take:
            self._note_cap(stream)
        if check:
            self._finish(checks, count)
        self._length = count

    def _replaying_pass(self, check: bool = True) -> Iterator[Sample]:
        """Replays what earlier passes pulled from the one-shot iterator, then continues it.
        An interrupted pass (a consumer that stops early) loses nothing."""
        if self._live is None:
            self._live = self._source.open_pass()
            self._live_checks = self._new_checks()
        index = 0
        while True:
            if index < len(self._replay):
                yield self._replay[index]
                index += 1
                continue
            if self._failure is not None:
                raise self._failure
            if self._exhausted:
                break
            if self._take is not None and len(self._replay) >= self._take:
                self._exhausted = True
                if self._capped:
                    self._note_cap(self._live)
                break
            try:
                sample = next(self._live)
                if self._live_checks is not None:
                    self._live_checks.see(len(self._replay), sample)
            except StopIteration:
                self._exhausted = True
                break
            except BaseException as e:
                # The iterator is dead now; later passes must not mistake that for its end.
                self._failure = e
                raise
            self._replay.append(sample)
        if not self._replay:
            raise QccError(f"{self.description}: no samples")
        self._length = len(self._replay)
        if check:
            checks, self._live_checks = self._live_checks, None
            self._finish(checks, len(self._replay))


RepresentativeSource = (
    str
    | os.PathLike[str]
    | Mapping[str, Any]
    | Iterable[Any]
    | Callable[[], Iterable[Any]]
    | RepresentativeData
)


def load_representative_data(
    source: RepresentativeSource,
    inputs: Sequence[InputSpec],
    *,
    input_range: tuple[float, float] | None = None,
    samples: int | None = None,
) -> RepresentativeData:
    """Representative data for a model with `inputs`, from `source` (see the module docstring
    for the accepted sources and conventions).

    `input_range` is the (lo, hi) that image pixels 0 and 255 map to; it applies to image
    sources only. `samples` keeps only the first N samples. Problems found up front (a missing
    path, an empty folder, an archive that does not match the inputs, ...) raise `QccError`
    here; problems with individual samples raise `QccError` while iterating.
    """
    inputs = tuple(inputs)
    if not inputs:
        raise QccError("representative data: the model has no inputs")
    if samples is not None:
        samples = _check_samples_option(samples)
    if input_range is not None:
        input_range = _check_range(input_range, "input_range")

    if isinstance(source, (str, os.PathLike)):
        built = _from_path(Path(source), inputs, input_range)
    else:
        if input_range is not None:
            raise QccError(
                f"{ITERABLE_WHERE}: input_range applies only to image files, "
                "not to arrays given in Python"
            )
        if isinstance(source, Mapping):
            arrays = {str(k): _as_array(v, f"{ITERABLE_WHERE} '{k}'") for k, v in source.items()}
            built = _from_stacked_arrays(arrays, inputs, ITERABLE_WHERE)
        else:
            built = _from_iterable(source, inputs)
    expected = [
        (input_range or spec.value_range) if spec.dtype.kind == "f" else None for spec in inputs
    ]
    origin = "input_range" if input_range is not None else "the model's metadata"
    return RepresentativeData(inputs, built, samples, expected, origin)


def _check_samples_option(samples: Any) -> int:
    """`samples` as a count, or a QccError naming the option and what it takes."""
    try:
        count = None if isinstance(samples, bool) else operator.index(samples)
    except TypeError:
        count = None
    if count is None or not 1 <= count <= sys.maxsize:
        raise QccError(
            f"representative data: samples must be a positive count, got {samples!r} "
            f"(at most {sys.maxsize})"
        )
    return count


def parse_input_range(text: str) -> tuple[float, float]:
    """`LO,HI` as given to the CLI's `--input-range=LO,HI` (with `=`, so that a negative LO is
    not taken for an option), e.g. `0,1` or `-1,1`."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise QccError(
            f"--input-range: expected LO,HI (e.g. 0,1 or -1,1), got {text!r}"
        ) from None
    return _check_range((lo, hi), "--input-range")


# ----------------------------------------------------------------------------------------------
# Conforming one array to one model input


def _as_array(value: Any, where: str) -> Array:
    """`value` as a numeric numpy array."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise QccError(
            f"{where}: got a {type(value).__name__}, not an array "
            "(to read files, pass the file or folder path as the dataset)"
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise QccError(f"{where}: cannot make an array of {type(value).__name__} ({e})") from None
    if arr.dtype.kind not in "biufc":
        raise QccError(f"{where}: {arr.dtype} data is not numeric")
    return arr


def _dims_match(got: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(got) == len(expected) and all(e < 0 or g == e for g, e in zip(got, expected))


def _fit_shape(arr: Array, spec: InputSpec, where: str) -> Array:
    """`arr` with the input's shape: as is, or with the missing batch dimension of 1 added."""
    if _dims_match(arr.shape, spec.shape):
        return arr
    if spec.shape and spec.shape[0] in (1, -1) and _dims_match(arr.shape, spec.shape[1:]):
        return arr[np.newaxis]
    raise QccError(
        f"{where}: wrong shape: expected {_fmt_shape(spec.shape)}, got {_fmt_shape(arr.shape)}"
    )


def _fit_dtype(arr: Array, spec: InputSpec, where: str) -> Array:
    """`arr` cast to the input's dtype, if that loses nothing that matters; finite values only."""
    src, dst = arr.dtype, spec.dtype
    if src.kind in "fc" and arr.size and not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "infinite"
        raise QccError(f"{where}: contains {what} values")
    if src == dst:
        return arr
    refused = f"{where}: {src} data cannot feed {dst} input '{spec.name}'"
    if dst.kind in "fc":
        if src.kind not in ("biufc" if dst.kind == "c" else "biuf"):
            raise QccError(refused)
        with np.errstate(over="ignore"):  # overflow is reported below, as a QccError
            out = arr.astype(dst)
        if out.size and not np.isfinite(out).all():
            raise QccError(f"{where}: values overflow {dst} (input '{spec.name}')")
        return out
    if dst.kind in "iu":
        if src.kind not in "biu":
            raise QccError(f"{refused} (quantize or round the data first)")
        if arr.size and not np.can_cast(src, dst):
            info = np.iinfo(dst)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise QccError(
                    f"{where}: values {lo}..{hi} do not fit {dst} input '{spec.name}' "
                    f"({info.min}..{info.max})"
                )
        return arr.astype(dst)
    if dst.kind == "b" and src.kind == "b":
        return arr.astype(dst)
    raise QccError(refused)


def _conform(value: Any, spec: InputSpec, where: str) -> Array:
    """`value` as an array of exactly the input's shape and dtype, or a QccError at `where`."""
    arr = _fit_shape(_as_array(value, where), spec, where)
    return np.ascontiguousarray(_fit_dtype(arr, spec, where))


# ----------------------------------------------------------------------------------------------
# Python iterables


def _split_sample(sample: Any, inputs: tuple[InputSpec, ...], where: str) -> list[Any]:
    """One sample from a Python iterable, as one value per input in model input order."""
    names = [spec.name for spec in inputs]
    if isinstance(sample, Mapping):
        unknown = [str(k) for k in sample if k not in names]
        if unknown:
            raise QccError(
                f"{where}: unknown input name {unknown[0]!r} (model inputs: {', '.join(names)})"
            )
        missing = [n for n in names if n not in sample]
        if missing:
            raise QccError(f"{where}: no value for input {missing[0]!r}")
        return [sample[n] for n in names]
    if isinstance(sample, (list, tuple)):
        if len(sample) != len(inputs):
            raise QccError(
                f"{where}: wrong number of inputs: {_count(len(sample), 'array')} for a model with "
                f"{_count(len(inputs), 'input')} ({', '.join(names)})"
            )
        return list(sample)
    if len(inputs) != 1:
        raise QccError(
            f"{where}: wrong number of inputs: one {type(sample).__name__} for a model with "
            f"{len(inputs)} inputs; yield a list in input order or a dict by input name"
        )
    return [sample]


def _conform_sample(sample: Any, inputs: tuple[InputSpec, ...], where: str) -> Sample:
    values = _split_sample(sample, inputs, where)
    many = len(inputs) > 1
    return [
        _conform(v, spec, f"{where}, input '{spec.name}'" if many else where)
        for v, spec in zip(values, inputs)
    ]


def _from_iterable(source: Any, inputs: tuple[InputSpec, ...]) -> _Source:
    where = ITERABLE_WHERE

    def conformed(items: Iterable[Any]) -> Iterator[Sample]:
        for i, sample in enumerate(items):
            yield _conform_sample(sample, inputs, f"{where} sample {i}")

    if callable(source) and not isinstance(source, Iterable):

        def call_pass() -> Iterator[Sample]:
            result = source()
            if not isinstance(result, Iterable):
                raise QccError(
                    f"{where}: the callable returned a {type(result).__name__}, "
                    "not an iterable of samples"
                )
            return conformed(result)

        return _Source(where, call_pass, None)

    if not isinstance(source, Iterable):
        raise QccError(
            f"{where}: expected a path, an iterable of samples or a callable returning one, "
            f"got a {type(source).__name__}"
        )
    if iter(source) is source:  # an iterator: it can be walked once
        return _Source(where, lambda: conformed(source), None, one_shot=True)
    if isinstance(source, RepresentativeData):  # limited or capped already; checked here
        return _Source(
            where, lambda: conformed(source._samples(check=False)), source.num_samples,
            bounded=True,
        )
    try:
        length: int | None = len(source)
    except TypeError:
        length = None
    if length == 0:
        raise QccError(f"{where}: no samples")
    return _Source(where, lambda: conformed(source), length)


# ----------------------------------------------------------------------------------------------
# Arrays in files


def _match_keys(keys: list[str], inputs: tuple[InputSpec, ...], where: str) -> list[str]:
    """The archive keys holding each input's data, in model input order."""
    names = [spec.name for spec in inputs]
    if sorted(keys) == sorted(names):
        return names
    positional = [f"arr_{i}" for i in range(len(inputs))]
    if sorted(keys) == sorted(positional):
        return positional
    if len(inputs) == 1 and len(keys) == 1:
        return keys
    if len(keys) != len(inputs):
        raise QccError(
            f"{where}: wrong number of inputs: {_count(len(keys), 'array')} "
            f"({', '.join(keys) or 'none'}) for a model with {_count(len(inputs), 'input')} "
            f"({', '.join(names)})"
        )
    raise QccError(
        f"{where}: array names {', '.join(keys)} match neither the input names "
        f"{', '.join(names)} nor {', '.join(positional)}"
    )


def _load_archive(path: Path) -> dict[str, Array]:
    """The arrays of a .npz file (or the one array of a .npy file, as 'arr_0')."""
    try:
        # An open file rather than the path: np.load leaks its own handle on a corrupt zip.
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return {"arr_0": loaded}
            with loaded:
                if STATISTICS_MEMBER in loaded.files:
                    raise QccError(
                        f"{path}: holds calibration statistics (saved by qcc --save-stats), "
                        "not representative data; qcc --calibration and annotate-ranges"
                        "{calibration=...} take either"
                    )
                return {key: loaded[key] for key in loaded.files}
    except _ARRAY_READ_ERRORS as e:
        kind = path.suffix or "numpy"
        raise QccError(f"{path}: cannot read as {kind} data ({_reason(e)})") from None


def _load_npy(path: Path) -> Array:
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.ndarray):
                raise QccError(f"{path}: holds an .npz archive, not one .npy array")
            return loaded
    except _ARRAY_READ_ERRORS as e:
        raise QccError(f"{path}: cannot read as .npy data ({_reason(e)})") from None


def _from_stacked_arrays(
    arrays: dict[str, Array], inputs: tuple[InputSpec, ...], where: str
) -> _Source:
    """One array per input, the first axis counting samples (a .npz file or a mapping)."""
    keys = _match_keys(list(arrays), inputs, where)
    counts: dict[str, int] = {}
    for key in keys:
        if arrays[key].ndim == 0:
            raise QccError(f"{where}: array '{key}' is a scalar; its first axis must count samples")
        counts[key] = arrays[key].shape[0]
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"'{k}' has {n}" for k, n in counts.items())
        raise QccError(f"{where}: arrays hold different numbers of samples ({listed})")
    count = next(iter(counts.values()))
    if count == 0:
        raise QccError(f"{where}: no samples (the arrays' first axis is empty)")

    def label(key: str, spec: InputSpec, i: int) -> str:
        named = "" if key == spec.name else f" (input '{spec.name}')"
        return f"{where}: array '{key}'{named} sample {i}"

    def one_pass() -> Iterator[Sample]:
        for i in range(count):
            yield [
                _conform(arrays[key][i], spec, label(key, spec, i))
                for key, spec in zip(keys, inputs)
            ]

    return _Source(where, one_pass, count)


def _from_npy_files(files: list[Path], spec: InputSpec, where: str) -> _Source:
    """A folder of .npy files, one sample each, for a single-input model."""

    def one_pass() -> Iterator[Sample]:
        for f in files:
            yield [_conform(_load_npy(f), spec, str(f))]

    return _Source(where, one_pass, len(files), labels=[str(f) for f in files])


def _from_npz_files(files: list[Path], inputs: tuple[InputSpec, ...], where: str) -> _Source:
    """A folder of .npz files, one sample each, keyed like a stacked .npz."""

    def one_pass() -> Iterator[Sample]:
        for f in files:
            arrays = _load_archive(f)
            keys = _match_keys(list(arrays), inputs, str(f))
            yield [
                _conform(arrays[key], spec, f"{f}: array '{key}'")
                for key, spec in zip(keys, inputs)
            ]

    return _Source(where, one_pass, len(files), labels=[str(f) for f in files])


def _from_input_folders(
    folder: Path, subfolders: list[Path], inputs: tuple[InputSpec, ...]
) -> _Source:
    """One subfolder of .npy files per input (named by input name or index); samples pair the
    files of the same name."""
    by_name = {d.name: d for d in subfolders}
    chosen: list[Path] = []
    for i, spec in enumerate(inputs):
        found = [by_name[n] for n in dict.fromkeys((spec.name, str(i))) if n in by_name]
        if not found:
            raise QccError(
                f"{folder}: no subfolder for input '{spec.name}' (name it '{spec.name}' or '{i}')"
            )
        if len(found) > 1:
            raise QccError(
                f"{folder}: both '{spec.name}' and '{i}' could hold input '{spec.name}'; "
                "keep one"
            )
        chosen.append(found[0])
    names_per_input = [[f.name for f in _files_of(d, (".npy",))] for d in chosen]
    for d, names in zip(chosen, names_per_input):
        if not names:
            raise QccError(f"{d}: no .npy files")
    reference = names_per_input[0]
    for d, names in zip(chosen[1:], names_per_input[1:]):
        if names != reference:
            stray = sorted(set(names) ^ set(reference))[0]
            holder = d if stray in names else chosen[0]
            raise QccError(
                f"{folder}: input subfolders hold different files ({stray} is only in "
                f"{holder.name}/); every sample needs one file of the same name per input"
            )

    def one_pass() -> Iterator[Sample]:
        for name in reference:
            yield [
                _conform(_load_npy(d / name), spec, str(d / name))
                for d, spec in zip(chosen, inputs)
            ]

    return _Source(
        str(folder), one_pass, len(reference), labels=[f"{folder}: {n}" for n in reference]
    )


# ----------------------------------------------------------------------------------------------
# Paths and folders


def _from_path(
    path: Path, inputs: tuple[InputSpec, ...], input_range: tuple[float, float] | None
) -> _Source:
    if not path.exists():
        raise QccError(f"{path}: no such file or folder")
    if path.is_dir():
        return _from_folder(path, inputs, input_range)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _from_images([path], inputs, input_range, str(path))
    if input_range is not None:
        raise QccError(f"{path}: input_range applies only to images, not to {suffix} data")
    if suffix in (".npz", ".npy"):
        return _from_stacked_arrays(_load_archive(path), inputs, str(path))
    raise QccError(
        f"{path}: unsupported calibration file (expected .npz, .npy, an image, or a folder)"
    )


def _from_folder(
    folder: Path, inputs: tuple[InputSpec, ...], input_range: tuple[float, float] | None
) -> _Source:
    try:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    except OSError as e:
        raise QccError(f"{folder}: cannot list folder ({_reason(e)})") from None
    kinds = {
        ".npy": _files_of(folder, (".npy",), entries),
        ".npz": _files_of(folder, (".npz",), entries),
        "image": _files_of(folder, IMAGE_SUFFIXES, entries),
    }
    present = [kind for kind, files in kinds.items() if files]
    if len(present) > 1:
        raise QccError(
            f"{folder}: mixes {' and '.join(present)} files; keep one kind per folder"
        )
    if present == ["image"]:
        return _from_images(kinds["image"], inputs, input_range, str(folder))
    if input_range is not None and present:
        raise QccError(f"{folder}: input_range applies only to images, not to {present[0]} files")
    if present == [".npz"]:
        return _from_npz_files(kinds[".npz"], inputs, str(folder))
    if present == [".npy"]:
        if len(inputs) != 1:
            raise QccError(
                f"{folder}: a folder of .npy files feeds a single-input model, this one has "
                f"{len(inputs)} inputs; use one subfolder per input or .npz files keyed by "
                "input name"
            )
        return _from_npy_files(kinds[".npy"], inputs[0], str(folder))

    subfolders = [e for e in entries if e.is_dir()]
    wanted = {spec.name for spec in inputs} | {str(i) for i in range(len(inputs))}
    if any(d.name in wanted for d in subfolders):
        if input_range is not None:
            raise QccError(f"{folder}: input_range applies only to images, not to .npy files")
        return _from_input_folders(folder, subfolders, inputs)
    raise QccError(
        f"{folder}: no usable files (.npy, .npz, {', '.join(IMAGE_SUFFIXES)}); "
        "subfolders are read only when named after model inputs"
    )


def _files_of(
    folder: Path, suffixes: tuple[str, ...], entries: list[Path] | None = None
) -> list[Path]:
    """The non-hidden files in `folder` with one of `suffixes`, in natural name order."""
    if entries is None:
        try:
            entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
        except OSError as e:
            raise QccError(f"{folder}: cannot list folder ({_reason(e)})") from None
    files = [e for e in entries if e.suffix.lower() in suffixes and e.is_file()]
    return sorted(files, key=lambda f: (_natural_key(f.name), f.name))


def _natural_key(name: str) -> tuple[tuple[int, str | int], ...]:
    """Sorts 'img2' before 'img10'."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((1, int(p)) if i % 2 else (0, p) for i, p in enumerate(parts))


# ----------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class _ImageLayout:
    height: int
    width: int
    channels: int
    channels_first: bool


def _image_layout(spec: InputSpec, where: str) -> _ImageLayout:
    """Where height, width and channels sit in an image input: NHWC, or NCHW when only axis 1
    can be the channel axis."""
    shape = spec.shape
    if len(shape) != 4 or shape[0] not in (1, -1):
        raise QccError(
            f"{where}: images need an input of shape [1,H,W,C] or [1,C,H,W]; "
            f"input '{spec.name}' has shape {_fmt_shape(shape)}"
        )
    if shape[3] in (1, 3):
        height, width, channels, first = shape[1], shape[2], shape[3], False
    elif shape[1] in (1, 3):
        height, width, channels, first = shape[2], shape[3], shape[1], True
    else:
        raise QccError(
            f"{where}: images need an input with 1 or 3 channels; "
            f"input '{spec.name}' has shape {_fmt_shape(shape)}"
        )
    if height < 0 or width < 0:
        raise QccError(
            f"{where}: input '{spec.name}' has a dynamic height or width "
            f"{_fmt_shape(shape)}; images cannot be resized to it"
        )
    return _ImageLayout(height, width, channels, first)


def _image_range(
    input_range: tuple[float, float] | None, spec: InputSpec, where: str
) -> tuple[float, float]:
    """The (lo, hi) that pixel values 0 and 255 map to, checked against the input's dtype."""
    dtype = spec.dtype
    if dtype.kind == "f":
        lo, hi = input_range or spec.value_range or (0.0, 1.0)
        if not (np.isfinite(dtype.type(lo)) and np.isfinite(dtype.type(hi))):
            raise QccError(f"{where}: input_range {lo:g},{hi:g} overflows {dtype}")
        return lo, hi
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        default = (-128.0, 127.0) if dtype == np.int8 else (0.0, 255.0)
        lo, hi = input_range or default
        if lo < info.min or hi > info.max:
            raise QccError(
                f"{where}: input_range {lo:g},{hi:g} does not fit {dtype} input "
                f"'{spec.name}' ({info.min}..{info.max})"
            )
        return lo, hi
    raise QccError(f"{where}: images cannot feed {dtype} input '{spec.name}'")


_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Pillow's modes for 16-bit grayscale (a 16-bit grayscale PNG opens as I;16, or as I in
older Pillow): their values run 0..65535, which `convert` to L or RGB would clip at 255."""


def _read_image(path: Path, layout: _ImageLayout) -> Array:
    """The image's pixels as float64 0..255, resized to the layout, shaped HxWxC.

    8-bit images of any mode are converted by Pillow (palette and transparency expanded,
    alpha dropped, CMYK and grayscale to RGB, RGB to luma for a 1-channel input). 16-bit
    grayscale maps 0..65535 onto 0..255 exactly (resized in float); Pillow reads 16-bit RGB(A)
    and gray+alpha PNGs as their high bytes (0..65535 -> 0..255, 8 bits kept)."""
    from PIL import Image  # Pillow is needed only for image folders

    try:
        with Image.open(path) as im:
            if im.mode in _WIDE_GRAY_MODES:
                return _read_wide_gray(path, im, layout)
            if im.mode in ("P", "PA"):  # palette (maybe with transparency): expand first
                im = im.convert("RGBA")
            im = im.convert("L" if layout.channels == 1 else "RGB")
            if im.size != (layout.width, layout.height):
                im = im.resize((layout.width, layout.height), Image.Resampling.BILINEAR)
            pixels = np.asarray(im, dtype=np.float64)
    except QccError:
        raise
    except Exception as e:  # Pillow's decoders raise many types on corrupt data
        raise QccError(f"{path}: cannot read image ({_reason(e)})") from None
    return pixels.reshape(layout.height, layout.width, layout.channels)


def _read_wide_gray(path: Path, im: Any, layout: _ImageLayout) -> Array:
    """A 16-bit grayscale image as float64 0..255, resized, gray repeated per channel."""
    from PIL import Image

    values = np.asarray(im, dtype=np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise QccError(
            f"{path}: {im.mode} image values {values.min():g}..{values.max():g} are not "
            "16-bit (0..65535)"
        )
    gray = values * (255.0 / 65535.0)
    if im.size != (layout.width, layout.height):
        resized = Image.fromarray(gray.astype(np.float32)).resize(
            (layout.width, layout.height), Image.Resampling.BILINEAR
        )
        gray = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)
    return np.repeat(gray.reshape(layout.height, layout.width, 1), layout.channels, axis=2)


def _from_images(
    files: list[Path],
    inputs: tuple[InputSpec, ...],
    input_range: tuple[float, float] | None,
    where: str,
) -> _Source:
    if len(inputs) != 1:
        raise QccError(
            f"{where}: images can feed only a single-input model, this one has "
            f"{len(inputs)} inputs ({', '.join(s.name for s in inputs)})"
        )
    spec = inputs[0]
    layout = _image_layout(spec, where)
    lo, hi = _image_range(input_range, spec, where)

    def to_input(pixels: Array) -> Array:
        t = pixels / 255.0
        values = t * hi + (1.0 - t) * lo  # exact at both ends: 0 -> lo, 255 -> hi
        if spec.dtype.kind in "iu":
            values = np.rint(values)
        if layout.channels_first:
            values = values.transpose(2, 0, 1)
        return np.ascontiguousarray(values[np.newaxis].astype(spec.dtype))

    def one_pass() -> Iterator[Sample]:
        for f in files:
            yield [to_input(_read_image(f, layout))]

    return _Source(where, one_pass, len(files), labels=[str(f) for f in files])


# ----------------------------------------------------------------------------------------------
# Checking the data against what the model declares

_RANGE_SLACK = 1e-5
"""Values outside a declared range by at most this fraction of its width are rounding."""
_NARROW_SPAN = 0.02
"""Data spanning less than this fraction of a declared range is probably scaled wrongly."""


@dataclass
class _Tally:
    """What the checks found about one input over one pass."""

    lo: float = math.inf
    hi: float = -math.inf
    sized: int = 0
    """Samples with more than one element (the ones that can be constant)."""
    constant: int = 0
    first_constant: int = -1
    constant_value: float = 0.0
    outside: int = 0
    first_outside: int = -1
    outside_lo: float = math.inf
    outside_hi: float = -math.inf

    @property
    def single_valued(self) -> bool:
        """Every sample constant, all with the same value."""
        return self.sized > 0 and self.constant == self.sized and self.lo == self.hi


class _DataChecks:
    """Checks conformed samples against what the model declares, at the cost of one min and
    one max per sample and input.

    Per sample (a `QccError` naming it): float data far outside the input's declared range
    (by more than the range's width, or beyond ±2 for a range within [-1, 1]: pixels 0..255
    fed to a model that expects [0, 1]), with a hint how to scale it. Over the pass (one
    `QccWarning` each, with the count and the first sample): samples a little outside the
    range, constant samples, data covering a sliver of the range; and a `QccError` when every
    sample is one and the same constant (all zeros, one blank image): nothing to calibrate."""

    def __init__(
        self,
        inputs: tuple[InputSpec, ...],
        expected: Sequence[tuple[float, float] | None],
        origin: str,
        description: str,
        labels: Sequence[str] | None,
    ) -> None:
        self.inputs = inputs
        self.expected = expected
        self.origin = origin
        self.description = description
        self.labels = labels
        self.tallies = [_Tally() for _ in inputs]

    def _ref(self, index: int) -> str:
        """Names a sample at the start of a message."""
        if self.labels is not None and index < len(self.labels):
            return f"{self.labels[index]} (sample {index})"
        return f"{self.description} sample {index}"

    def _first(self, index: int) -> str:
        """Names a sample inside a message (its file relative to the source)."""
        if self.labels is not None and index < len(self.labels):
            label = self.labels[index]
            for sep in ("/", os.sep, ": "):
                if label.startswith(self.description + sep):
                    label = label[len(self.description) + len(sep) :]
                    break
            return f"sample {index}, {label}"
        return f"sample {index}"

    def see(self, index: int, sample: Sample) -> None:
        """Check sample `index`; a sample that cannot be right raises `QccError`."""
        for arr, spec, expected, t in zip(sample, self.inputs, self.expected, self.tallies):
            if arr.dtype.kind not in "iuf" or not arr.size:
                continue
            lo, hi = float(arr.min()), float(arr.max())
            t.lo, t.hi = min(t.lo, lo), max(t.hi, hi)
            if arr.size > 1:
                t.sized += 1
                if lo == hi:
                    if t.constant == 0:
                        t.first_constant, t.constant_value = index, lo
                    t.constant += 1
            if expected is not None:
                self._check_range(index, spec, expected, lo, hi, t)

    def _check_range(
        self, index: int, spec: InputSpec, expected: tuple[float, float], lo: float, hi: float,
        t: _Tally,
    ) -> None:
        rlo, rhi = expected
        width = rhi - rlo
        excess = max(rlo - lo, hi - rhi)
        if excess <= _RANGE_SLACK * width:
            return
        normalized = -1.0 <= rlo and rhi <= 1.0
        if excess > width or (normalized and (hi > 2.0 or lo < -2.0)):
            raise QccError(
                f"{self._ref(index)}: input '{spec.name}' has values {lo:.3g}..{hi:.3g}, far "
                f"outside its declared range [{rlo:g}, {rhi:g}] (from {self.origin}); "
                + _scaling_hint(lo, hi, rlo, rhi)
            )
        if t.outside == 0:
            t.first_outside = index
        t.outside += 1
        t.outside_lo, t.outside_hi = min(t.outside_lo, lo), max(t.outside_hi, hi)

    def finish(self, count: int) -> None:
        """After a complete pass of `count` samples: one warning per finding, or a
        `QccError` when the whole dataset is one constant."""
        watched = [(spec, t) for spec, t in zip(self.inputs, self.tallies) if t.sized]
        if watched and all(t.single_valued for _, t in watched):
            values = ", ".join(f"input '{spec.name}' is {t.lo:g}" for spec, t in watched)
            which = "the only sample is" if count == 1 else f"all {count} samples are"
            raise QccError(
                f"{self.description}: {which} one constant ({values} everywhere): there is "
                "nothing to calibrate on; use data like the model's real inputs (e.g. photos, "
                "not blank images or zeros)"
            )
        for spec, expected, t in zip(self.inputs, self.expected, self.tallies):
            if t.outside:
                assert expected is not None
                _warn(
                    f"{self.description}: {t.outside} of {count} samples have values outside "
                    f"the declared range [{expected[0]:g}, {expected[1]:g}] of input "
                    f"'{spec.name}' (from {self.origin}), reaching "
                    f"{t.outside_lo:.3g}..{t.outside_hi:.3g} "
                    f"(first: {self._first(t.first_outside)}); "
                    "the calibrated ranges will include them: check the data's scaling"
                )
            if t.single_valued:
                _warn(
                    f"{self.description}: input '{spec.name}' is {t.lo:g} everywhere in all "
                    f"{count} samples; fine if it is constant in use too (e.g. a zero initial "
                    "state), else calibrate with data like its real values"
                )
            elif t.constant:
                _warn(
                    f"{self.description}: {t.constant} of {count} samples are constant for "
                    f"input '{spec.name}' (first: {self._first(t.first_constant)}, every value "
                    f"{t.constant_value:g}); blank images or zero-filled arrays tell calibration "
                    "nothing about real inputs"
                )
            elif expected is not None and not t.outside and t.lo < t.hi:
                width = expected[1] - expected[0]
                if t.hi - t.lo < _NARROW_SPAN * width:
                    _warn(
                        f"{self.description}: over all {count} samples input '{spec.name}' "
                        f"spans only {t.lo:.3g}..{t.hi:.3g}, {100 * (t.hi - t.lo) / width:.2g}% of "
                        f"its declared range [{expected[0]:g}, {expected[1]:g}] (from "
                        f"{self.origin}); check the data's scaling (scaled twice?)"
                    )


def _scaling_hint(lo: float, hi: float, rlo: float, rhi: float) -> str:
    """How to bring data seen as lo..hi to the declared range [rlo, rhi]."""
    if lo >= 0.0 and hi <= 255.0:
        full, what = 255.0, "8-bit pixel values (0..255)"
    elif lo >= 0.0 and hi <= 65535.0:
        full, what = 65535.0, "16-bit values (0..65535)"
    else:
        return f"scale the data to [{rlo:g}, {rhi:g}]"
    expr = f"x/{full / (rhi - rlo):g}"
    if rlo:
        expr += f" - {-rlo:g}" if rlo < 0 else f" + {rlo:g}"
    return f"if these are {what}, scale them to the declared range (e.g. {expr})"


def _warn(message: str) -> None:
    warnings.warn(message, QccWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------
# Small helpers


def _check_range(value: tuple[float, float], what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise QccError(f"{what}: expected two numbers (LO, HI), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QccError(f"{what}: LO and HI must be finite, got {lo:g},{hi:g}")
    if lo >= hi:
        raise QccError(f"{what}: LO must be below HI, got {lo:g},{hi:g}")
    return lo, hi


def _limited(length: int | None, limit: int | None) -> int | None:
    if length is None or limit is None:
        return length
    return min(length, limit)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _reason(e: BaseException) -> str:
    """A short reason for an error from a library, without the path it may repeat."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
