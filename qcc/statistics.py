"""Calibration statistics: the driver's component that turns representative data into the
statistics `annotate-ranges` attaches to the IR, and saves and reloads them.

    from qcc.statistics import Calibrator, collect, load, save
    stats = collect(func, samples)       # run the float model on every sample
    save(stats, "stats.npz")             # what `qcc ... --save-stats stats.npz` writes
    stats = load("stats.npz")            # what `annotate-ranges{calibration=stats.npz}` reads

`collect` runs the float function on qcc's float executor and records, for every value that
annotate-ranges annotates (`qcc.passes.annotate_ranges.value_keys`: float inputs and float
results of non-constant ops), a mergeable `ValueStats`: min, max, a histogram (for the mse
and percentile methods) and the channel mean (for bias-correction). Where the executor has
no kernel for an op (by design, e.g. MediaPipe's custom Convolution2DTransposeBias in
selfie_segmentation), the function runs on LiteRT instead (`qcc.litert.LiteRTRunner`: each
value read from the very tensor it was written to); if LiteRT cannot run it either, the
executor's one-line error is raised (`annotate-ranges: cannot run the float model: no
kernel for custom op 'X' (at "loc")`).

The statistics do not depend on the range method: `annotate-ranges{method=...}` chooses the
range from them when it attaches them, so one statistics file serves every method. For
`method=auto`, `collect` also keeps every N-th sample's statistics apart (`held_out=N`,
annotate-ranges' option, default 4; `is_held_out`), and those of the others (the fit
samples): auto chooses each tensor's range from the fit samples, scored on the held-out ones.
The statistics over all samples are the same with or without the split.

How the driver hands them to the pass: `bind` gives every `annotate-ranges` of a pipeline
whose `calibration` (or the Python dataset) names data a `Calibrator` in its Python-only
`statistics` field; when the pass runs, it calls the calibrator with the IR's main function
as it is at that point of the pipeline, and the calibrator reads the saved file or runs the
data (with the pass's `samples`, `input_range` and `bins`), and keeps what it returned
(`Calibrator.statistics`, what `--save-stats` saves). `qcc.pipeline.build_pipeline` binds
every pipeline it builds; `qcc.quantize` binds its Python dataset.

File format (`save` / `load`; any file name, `.npz` by convention): a zip archive in numpy's
`.npz` layout, each member one `.npy` array, read with `allow_pickle=False`:

- `qcc_statistics`: uint8, the UTF-8 text of a JSON header: `{"format": "qcc-statistics",
  "version": 2, "bins": B, "samples": S, "data": "<where they were gathered>",
  "held_out": {"every": H, "samples": h}, "tensors": [{"name", "op", "index",
  "occurrence", "shape", "mean_axes"}, ...]}`; tensor i's key (`TensorKey`: an input's
  name, or an op result's location, op name, result index and occurrence) and the shape it
  was gathered on. `held_out` (absent when the samples were not split) says that every
  H-th sample (`is_held_out`), h of the S, was held out;
- `min_max`: float64 [N, 2], each tensor's observed minimum and maximum;
- `count`: int64 [N], how many (non-NaN) values each range covers;
- `grid`: int64 [N, 2], each histogram's bin exponent e and offset k (bin j spans
  [(k + j)·2^e, (k + j + 1)·2^e));
- `histogram`: int64 [N, B], the counts (absent when B = 0);
- `mean_sum_<i>` (float64) and `mean_count_<i>` (int64), shaped as tensor i's mean (the last
  `mean_axes` axes of its shape), for every tensor with a channel mean;
- with `held_out` only: `fit_min_max`, `fit_count`, `fit_grid`, `fit_histogram` and
  `held_out_min_max`, `held_out_count`, `held_out_grid`, `held_out_histogram`, the same
  arrays for the fit and for the held-out samples alone (what `method=auto` reads; the
  unprefixed arrays, over all samples, are their exact merge, and their counts add up).

Versions: 1 had no split (no `held_out`, no prefixed arrays); 2 added it. The unprefixed
arrays mean the same in both, so this qcc reads version-1 files as before (every method but
`auto`, which needs the split, works on them).

Everything is stored exactly (float64 sums, int64 counts), so statistics reloaded from a
file annotate the IR, and quantize the model, exactly as the run that saved them: `qcc M
--calibration images/ --save-stats S.npz -o a.tflite` and `qcc M --pass-pipeline='<the same
pipeline with calibration=S.npz>' -o b.tflite` write the same bytes. A file written by a newer
format version is refused. The archive's member order and timestamps are fixed, so the same
statistics always make the same file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import sys
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import numpy as np
from xdsl.dialects.func import FuncOp
from xdsl.ir import BlockArgument, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass

from qcc.calibration import STATISTICS_MEMBER, InputSpec, load_representative_data
from qcc.dialects.ir import element_dtype
from qcc.errors import QccError
from qcc.passes.annotate_ranges import (
    DEFAULT_BINS,
    DEFAULT_HELD_OUT,
    AnnotateRanges,
    InfiniteValues,
    Statistics,
    TensorKey,
    TensorStats,
    ValueStats,
    is_held_out,
    mean_axes,
    value_keys,
    value_shape,
    value_text,
)
from qcc.signature import declared_range

__all__ = [
    "FORMAT",
    "VERSION",
    "Calibrator",
    "Statistics",
    "bind",
    "calibrators",
    "collect",
    "input_specs",
    "is_held_out",
    "is_statistics_file",
    "load",
    "save",
    "to_bytes",
]

FORMAT = "qcc-statistics"
VERSION = 2
HEADER = STATISTICS_MEMBER
"""The archive member holding the JSON header (`qcc_statistics.npy`)."""


# ------------------------------------------------------------------------------------------
# The model's inputs, as calibration data must feed them
# ------------------------------------------------------------------------------------------


def input_specs(func: FuncOp) -> list[InputSpec]:
    """The function's inputs as `InputSpec`s: name (`nn.name`), shape, dtype and the value
    range the model declares (`nn.value_range`)."""
    from xdsl.dialects.builtin import StringAttr

    specs = []
    attrs = func.arg_attrs
    for i, arg in enumerate(func.body.block.args):
        name = f"input_{i}"
        if attrs is not None and i < len(attrs.data):
            given = attrs.data[i].data.get("nn.name")
            if isinstance(given, StringAttr):
                name = given.data
        shape = tuple(int(d) for d in arg.type.get_shape())  # type: ignore[attr-defined]
        dtype = element_dtype(arg.type.get_element_type())  # type: ignore[attr-defined]
        specs.append(
            InputSpec(
                name, shape, dtype if dtype is not None else np.float32, declared_range(attrs, i)
            )
        )
    return specs


# ------------------------------------------------------------------------------------------
# Collecting statistics by running the float program
# ------------------------------------------------------------------------------------------


class _Progress:
    """`calibrating i/N samples` on a terminal, rewritten in place; silent otherwise."""

    def __init__(self, total: int | None, stream: TextIO | None = None):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.total = total
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        count = f"{done}/{self.total}" if self.total is not None else f"{done}"
        self.stream.write(f"\rcalibrating {count} samples")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _infinite_message(
    func: FuncOp, value: SSAValue, index: int, sample: Sequence[np.ndarray]
) -> str:
    magnitudes = [
        float(np.max(np.abs(x)))
        for x in (np.asarray(v) for v in sample)
        if x.dtype.kind == "f" and x.size
    ]
    reach = f"; the sample's inputs reach {max(magnitudes):.3g} in magnitude" if magnitudes else ""
    return (
        f"annotate-ranges: sample {index}: {value_text(func, value)} overflows to infinity, "
        f"so its range cannot be quantized (int8 needs a finite range){reach}: check the "
        "calibration data's scale"
    )


def collect(
    func: FuncOp,
    samples: Iterable[Sequence[np.ndarray]],
    *,
    bins: int = DEFAULT_BINS,
    total: int | None = None,
    progress_stream: TextIO | None = None,
    source: str = "the representative data",
    held_out: int = DEFAULT_HELD_OUT,
) -> Statistics:
    """Run `func` (no `quant.stats` in it) on every sample (arrays in input order, with the
    inputs' shapes and dtypes); the statistics of every value annotate-ranges annotates.

    The program runs on qcc's float executor. When the executor cannot be built (an op it
    has no kernel for, e.g. a MediaPipe custom op), it runs on LiteRT instead, and each
    value's statistics are read from its tensor there (`qcc.litert.LiteRTRunner`); if LiteRT
    cannot run it either, the executor's error is raised. `total` (the number of samples, if
    known) feeds the progress line, written to `progress_stream` (default stderr) when it is
    a terminal. Problems are `QccError`s naming the sample (and the tensor).

    With `held_out` = N > 0, every N-th sample (`is_held_out`) is held out: each tensor's
    fit and held-out samples are recorded apart (`TensorStats.fit`, `.held_out`, for
    `method=auto`), and its statistics over all samples are their exact merge, the channel
    mean accumulated over all samples in order, so they equal those gathered without a
    split."""
    from qcc.litert import LiteRTRunner
    from qcc.runtime.errors import ExecutorError, MissingKernelError
    from qcc.runtime.executor import Executor

    keys = value_keys(func)
    executor: Executor | None = None
    litert: LiteRTRunner | None = None
    cannot_run: QccError | None = None
    try:
        executor = Executor(func)
    except ExecutorError as e:
        cannot_run = QccError(f"annotate-ranges: cannot run the float model: {e}")
        if not isinstance(e, MissingKernelError):  # an op its kernel refuses: malformed
            raise cannot_run from None
        try:
            litert = LiteRTRunner(func)
        except Exception:  # not exportable, or LiteRT refuses it: the executor's reason
            raise cannot_run from None
    split = held_out > 0
    stats: dict[SSAValue, ValueStats] = {
        v: ValueStats(0 if split else bins, mean_axes=mean_axes(v)) for v in keys
    }
    """Without a split: everything. With one: the mean (and min, max, count) over all
    samples, in order; the histograms live in `parts`."""
    parts: dict[SSAValue, tuple[ValueStats, ValueStats]] = (
        {v: (ValueStats(bins), ValueStats(bins)) for v in keys} if split else {}
    )
    args = [v for v in keys if isinstance(v, BlockArgument)]
    watched: dict[Operation, list[int]] = {}
    for v in keys:
        if isinstance(v, OpResult):
            watched.setdefault(v.op, []).append(v.index)

    done = 0
    current: Sequence[np.ndarray] = ()

    def observe(value: SSAValue, x: np.ndarray) -> None:
        try:
            stats[value].observe(x)
            if split:
                parts[value][1 if is_held_out(done, held_out) else 0].observe(x)
        except InfiniteValues:
            raise QccError(_infinite_message(func, value, done, current)) from None

    def observer(op: Operation, results: tuple[np.ndarray, ...]) -> None:
        for i in watched.get(op, ()):
            observe(op.results[i], results[i])

    progress = _Progress(total, progress_stream)
    try:
        for sample in samples:
            current = sample
            if litert is not None:
                try:
                    arrays = litert.check(sample)
                except ExecutorError as e:
                    raise QccError(f"annotate-ranges: sample {done}: {e}") from None
                try:
                    with np.errstate(over="ignore"):  # an overflow is reported as an error
                        litert.run(arrays)
                except Exception:  # LiteRT cannot run the model either
                    assert cannot_run is not None
                    raise cannot_run from None
                for a in args:
                    observe(a, sample[a.index])  # type: ignore[attr-defined]
                for op, results in watched.items():
                    for i in results:
                        observe(op.results[i], litert.value(op.results[i]))
            else:
                assert executor is not None
                for a in args:
                    observe(a, sample[a.index])  # type: ignore[attr-defined]
                try:
                    with np.errstate(over="ignore"):  # an overflow is reported as an error
                        executor.run(list(sample), observer=observer)
                except ExecutorError as e:
                    raise QccError(f"annotate-ranges: sample {done}: {e}") from None
            done += 1
            progress.update(done)
    finally:
        progress.close()
    entries: dict[TensorKey, TensorStats] = {}
    for v, key in keys.items():
        if not split:
            entries[key] = TensorStats(value_shape(v), stats[v])
            continue
        fit, held = parts[v]
        whole = ValueStats.merge(fit, held)
        means = stats[v]
        whole.mean_axes, whole.mean_sum, whole.mean_count = (
            means.mean_axes, means.mean_sum, means.mean_count
        )
        entries[key] = TensorStats(value_shape(v), whole, fit, held)
    return Statistics(
        entries,
        bins=bins,
        samples=done,
        source=source,
        origin=source,
        held_out=held_out,
        held_out_samples=sum(is_held_out(i, held_out) for i in range(done)),
    )


# ------------------------------------------------------------------------------------------
# The file
# ------------------------------------------------------------------------------------------

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def to_bytes(statistics: Statistics) -> bytes:
    """The statistics as a file (see the module docstring for the format)."""
    entries = list(statistics.tensors.items())
    bins = statistics.bins
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "bins": bins,
        "samples": statistics.samples,
        "data": statistics.origin or statistics.source,
        "tensors": [
            {
                "name": key.name,
                "op": key.op,
                "index": key.index,
                "occurrence": key.occurrence,
                "shape": [int(d) for d in entry.shape],
                "mean_axes": entry.stats.mean_axes,
            }
            for key, entry in entries
        ],
    }
    if statistics.held_out:
        header["held_out"] = {
            "every": statistics.held_out, "samples": statistics.held_out_samples,
        }
    arrays: dict[str, np.ndarray] = {
        HEADER: np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8),
        **_part_arrays("", [e.stats for _, e in entries], bins),
    }
    if statistics.held_out:
        for prefix, part in (("fit_", "fit"), ("held_out_", "held_out")):
            values = [getattr(e, part) for _, e in entries]
            if any(v is None for v in values):
                raise ValueError(f"statistics split by held_out have an entry without {part}")
            arrays.update(_part_arrays(prefix, values, bins))
    for i, (_, e) in enumerate(entries):
        if e.stats.mean_sum is not None and e.stats.mean_count is not None:
            arrays[f"mean_sum_{i}"] = np.asarray(e.stats.mean_sum, np.float64)
            arrays[f"mean_count_{i}"] = np.asarray(e.stats.mean_count, np.int64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(
                    member, np.ascontiguousarray(array), allow_pickle=False
                )
    return buffer.getvalue()


def _part_arrays(prefix: str, stats: Sequence[ValueStats], bins: int) -> dict[str, np.ndarray]:
    """`<prefix>min_max`, `count`, `grid` (and `histogram` when bins > 0) of `stats`."""
    n = len(stats)
    arrays = {
        f"{prefix}min_max": np.array([[s.min, s.max] for s in stats], np.float64).reshape(n, 2),
        f"{prefix}count": np.array([s.count for s in stats], np.int64).reshape(n),
        f"{prefix}grid": np.array([[s.exponent, s.offset] for s in stats], np.int64)
        .reshape(n, 2),
    }
    if bins > 0:
        histogram = np.zeros((n, bins), np.int64)
        for i, s in enumerate(stats):
            if s.counts is not None:
                histogram[i] = s.counts
        arrays[f"{prefix}histogram"] = histogram
    return arrays


def save(
    statistics: Statistics,
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """Write the statistics to `path` (by `qcc.fileio.atomic_write`'s rules: atomic, never
    over one of `inputs`)."""
    from qcc.fileio import atomic_write

    atomic_write(path, to_bytes(statistics), inputs=inputs)


def is_statistics_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file saved by `save` (a zip archive with the statistics header),
    not representative data."""
    try:
        if not os.path.isfile(path) or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return f"{HEADER}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


class _Invalid(Exception):
    """What is wrong with a statistics file (becomes a QccError naming the file)."""


def _array(archive: Any, name: str, dtype: str, shape: tuple[int, ...] | None) -> np.ndarray:
    if name not in archive.files:
        raise _Invalid(f"no '{name}' array")
    array = archive[name]
    if array.dtype != np.dtype(dtype):
        raise _Invalid(f"'{name}' is {array.dtype}, not {dtype}")
    if shape is not None and array.shape != shape:
        raise _Invalid(f"'{name}' has shape {list(array.shape)}, not {list(shape)}")
    return array


def _int(value: Any, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _Invalid(f"{what} must be an integer >= {low}, got {value!r}")
    return value


def _parse(archive: Any, label: str) -> Statistics:
    raw = _array(archive, HEADER, "uint8", None)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _Invalid(f"unreadable header ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Invalid(f"the header does not say format '{FORMAT}'")
    version = _int(header.get("version"), "version", 1)
    if version > VERSION:
        raise QccError(
            f"{label}: statistics file version {version} is newer than this qcc reads "
            f"(version {VERSION}); gather the statistics again with this qcc"
        )
    bins = _int(header.get("bins"), "bins")
    if bins == 1:
        raise _Invalid("bins must be 0 or at least 2")
    samples = _int(header.get("samples", 0), "samples")
    origin = header.get("data", "")
    if not isinstance(origin, str):
        raise _Invalid("'data' must be a string")
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        raise _Invalid("the header has no tensor list")
    n = len(tensors)
    held_out, held_out_samples = 0, 0
    if "held_out" in header:
        split = header["held_out"]
        if version < 2 or not isinstance(split, dict):
            raise _Invalid("'held_out' must be an object (version 2 and later)")
        held_out = _int(split.get("every"), "held_out every", 2)
        held_out_samples = _int(split.get("samples"), "held_out samples")
    parts = [_Part(archive, "", n, bins)]
    if held_out:
        parts += [_Part(archive, "fit_", n, bins), _Part(archive, "held_out_", n, bins)]
    found: dict[TensorKey, TensorStats] = {}
    for i, t in enumerate(tensors):
        if not isinstance(t, dict):
            raise _Invalid(f"tensor {i} is not an object")
        name, op = t.get("name"), t.get("op")
        if not isinstance(name, str) or not isinstance(op, str):
            raise _Invalid(f"tensor {i} has no name or op")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise _Invalid(f"tensor {i} has no shape")
        key = TensorKey(
            name, op, _int(t.get("index"), f"tensor {i} index"),
            _int(t.get("occurrence"), f"tensor {i} occurrence"),
        )
        if key in found:
            raise _Invalid(f"{key.describe()} is listed twice")
        axes = _int(t.get("mean_axes"), f"tensor {i} mean_axes")
        if axes > len(shape):
            raise _Invalid(f"tensor {i} has a mean over more axes than it has")
        s, *split_stats = (part.stats(i, key) for part in parts)
        if split_stats and sum(p.count for p in split_stats) != s.count:
            raise _Invalid(f"{key.describe()}: the fit and held-out counts do not add up")
        s.mean_axes = axes
        if f"mean_sum_{i}" in archive.files:
            mean_shape = tuple(int(d) for d in shape[len(shape) - axes :]) if axes else None
            if mean_shape is None:
                raise _Invalid(f"{key.describe()} has a mean but no mean axes")
            s.mean_sum = np.array(_array(archive, f"mean_sum_{i}", "float64", mean_shape))
            s.mean_count = np.array(_array(archive, f"mean_count_{i}", "int64", mean_shape))
        found[key] = TensorStats(tuple(shape), s, *split_stats)
    return Statistics(
        found, bins=bins, samples=samples, source=label, origin=origin,
        held_out=held_out, held_out_samples=held_out_samples,
    )


class _Part:
    """The `<prefix>min_max`, `count`, `grid` and `histogram` arrays of a file: the
    statistics of all samples (no prefix), or of the fit or held-out ones."""

    def __init__(self, archive: Any, prefix: str, n: int, bins: int):
        self.bins = bins
        self.min_max = _array(archive, f"{prefix}min_max", "float64", (n, 2))
        self.count = _array(archive, f"{prefix}count", "int64", (n,))
        self.grid = _array(archive, f"{prefix}grid", "int64", (n, 2))
        self.histogram = (
            _array(archive, f"{prefix}histogram", "int64", (n, bins)) if bins else None
        )

    def stats(self, i: int, key: TensorKey) -> ValueStats:
        lo, hi = (float(v) for v in self.min_max[i])
        n_values = int(self.count[i])
        finite = math.isfinite(lo) and math.isfinite(hi) and lo <= hi
        if n_values < 0 or (n_values and not finite):
            raise _Invalid(f"{key.describe()} has the invalid range {lo!r}..{hi!r}")
        s = ValueStats(self.bins)
        if n_values:
            s.min, s.max, s.count = lo, hi, n_values
            s.exponent, s.offset = int(self.grid[i, 0]), int(self.grid[i, 1])
            if self.histogram is not None:
                s.counts = np.array(self.histogram[i], np.int64)
                if int(s.counts.sum()) != n_values or (s.counts < 0).any():
                    raise _Invalid(f"{key.describe()}: the histogram does not count its values")
        return s


def load(path: str | os.PathLike[str]) -> Statistics:
    """The statistics saved in `path` by `save`; a `QccError` naming the file when it
    cannot be read or is not such a file."""
    label = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise _Invalid("a single array, not an archive")
            statistics = _parse(archive, label)
    except FileNotFoundError:
        raise QccError(f"{label}: no such file") from None
    except _Invalid as e:
        raise QccError(f"{label}: not a valid qcc statistics file ({e})") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QccError(f"{label}: not a valid qcc statistics file ({reason})") from None
    return statistics


# ------------------------------------------------------------------------------------------
# The driver's side of annotate-ranges
# ------------------------------------------------------------------------------------------


class Calibrator:
    """What the driver puts in `AnnotateRanges.statistics`: the statistics of `source`,
    representative data (anything `qcc.calibration.load_representative_data` takes) or a
    file saved by `save`, for the function the pass annotates.

    Called by the pass with the function (its old stats removed) and the pass itself (for
    `samples`, `input_range` and `bins`); keeps what it returned in `statistics`."""

    def __init__(self, source: Any, *, progress_stream: TextIO | None = None):
        self.source = source
        self.progress_stream = progress_stream
        self.statistics: Statistics | None = None

    @property
    def saved(self) -> bool:
        """Whether `source` is a statistics file (rather than data)."""
        return isinstance(self.source, (str, os.PathLike)) and is_statistics_file(self.source)

    def __call__(self, func: FuncOp, options: AnnotateRanges) -> Statistics:
        if self.saved:
            statistics = load(self.source)
        else:
            input_range = None
            if options.input_range:
                input_range = (float(options.input_range[0]), float(options.input_range[1]))
            data = load_representative_data(
                self.source, input_specs(func), input_range=input_range,
                samples=options.samples or None,
            )
            statistics = collect(
                func, data, bins=options.bins, total=data.num_samples,
                progress_stream=self.progress_stream, source=data.description,
                held_out=options.held_out,
            )
        self.statistics = statistics
        return statistics

    def __repr__(self) -> str:
        return f"Calibrator({self.source!r})"


def bind(passes: Sequence[ModulePass], dataset: Any = None) -> list[ModulePass]:
    """`passes` with a `Calibrator` in every `annotate-ranges` that names data or saved
    statistics (its `calibration`, else `dataset`, a Python iterable) and has no
    `statistics` yet."""
    bound: list[ModulePass] = []
    for p in passes:
        if isinstance(p, AnnotateRanges) and p.statistics is None:
            source = p.calibration or dataset
            if source is not None and source != "":
                p = dataclasses.replace(p, statistics=Calibrator(source))
        bound.append(p)
    return bound


def calibrators(passes: Sequence[ModulePass]) -> list[Calibrator]:
    """The calibrators bound to the `annotate-ranges` passes of `passes`, in order."""
    return [
        p.statistics
        for p in passes
        if isinstance(p, AnnotateRanges) and isinstance(p.statistics, Calibrator)
    ]
