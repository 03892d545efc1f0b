"""annotate-ranges: attach calibration statistics to the IR, as a `quant.stats` on every float
activation (the job of TensorFlow's quant-import-stats).

    qcc m.mlir --pass-pipeline='annotate-ranges{calibration=calib.npz method=percentile}'
    qcc m.mlir --pass-pipeline='annotate-ranges{calibration=stats.npz method=mse}'

Every float function argument and every float op result (constants excluded: weights are
ranged by infer-scales from their data; integer tensors have no range) gets a `quant.stats`
right after its definition, and all its other uses read the annotation instead:

    %0 = nn.add %arg0, %arg0 {...} : ... loc("add")
    %1 = quant.stats %0 {layer_stats = dense<[-2.0, 6.0]> : tensor<2xf32>,
                         histogram = dense<[...]> : tensor<2048xi64>,
                         histogram_range = dense<[-2.0, 6.0]> : tensor<2xf32>} : tensor<...>

so the ranges are printable and the rest of a pipeline can be replayed from the text. Stats
already in the module are dropped first (re-annotating never stacks annotations).

The pass only attaches statistics; it never reads files nor runs the model. The statistics
(a `Statistics`: one `ValueStats` per tensor, keyed by `TensorKey`) are made by the driver's
calibration component, `qcc.statistics`, which runs representative data through the float
model (or reads statistics saved with `qcc --save-stats`), and reach the pass through its
Python-only `statistics` field: a `Statistics`, or a callable `(func, pass) -> Statistics`
that the pass calls with the IR's main function as it is at this point of the pipeline (the
driver, `qcc.pipeline.build_pipeline` and `qcc.quantize`, fills it from `calibration`).

Statistics are keyed by what is stable across runs and processes: a function input by its
name (`nn.name`, else `input_N`), an op result by its location (the source tensor name), the
op's name, its result index, and an occurrence count for the rare values that share all
three; each entry records the tensor's shape. Statistics whose keys or shapes do not match
the IR (another model, or another point of a pipeline) fail the pass with one line naming
the tensor.

Each annotation also records `channel_mean`, the mean over all but the last axis (the
per-channel mean of an NHWC tensor), what `bias-correction` needs. A tensor that feeds an
affine op with an [out, in] weight matrix (fully_connected), which reads it as rows of `in`
features, keeps as many trailing axes as those rows span (a `1x2x2x3` input of a 12-feature
FC records a `2x2x3` mean; `mean_axes`), so the mean of every flattened feature is known too.
Means are accumulated as float64 sums and counts, so they merge exactly like the histograms.

`layer_stats` is the range the chosen `method` keeps:

- `minmax`: the observed minimum and maximum over all samples;
- `percentile`: each tail clipped at `percentile` (e.g. 99.99 keeps [q(0.01%), q(99.99%)]),
  read from the histogram by linear interpolation inside the bin;
- `mse`: the range, among shrinkings of the observed one, whose int8 asymmetric quantization
  has the smallest mean squared error over the histogram;
- `auto`: per tensor, one of the three above, chosen on samples the ranges never see. The
  calibration samples are split (`held_out`: every N-th sample, `is_held_out`): each method
  computes its range from the *fit* samples' statistics alone, each range is scored by the
  mean squared error of int8 quantization with it (`quantization_error`: the scale and zero
  point infer-scales derives, rounding error scale²/12 inside the range, the distance to its
  end outside) over the *held-out* samples' histogram, and the least error wins (ties: mse,
  percentile, minmax). The annotation records the choice, `range_method = "percentile"`.
  The range itself comes from the fit samples only (the held-out ones only score), so it
  summarizes fewer samples than the other methods' ranges, which use all of them. A tensor
  with no held-out (or no fit) values, e.g. with fewer samples than N, gets `mse` over all
  samples. Statistics without a split (`held_out=0`, or a version-1 file) are an error.
  The score is the tensor's own quantization error, not the error it causes downstream:
  docs/benchmarks.md measures what that buys on the zoo.

The histogram (`bins` counts; `bins=0` records none) always covers the full observed range.
It is *mergeable*: bins have width 2^e and edges on multiples of it, with the smallest e that
fits the data in `bins` bins, so statistics gathered in parts and merged (`ValueStats.merge`)
equal those gathered in one go, count for count — the same re-binning-by-growth idea as ONNX
Runtime's `HistogramCollector` and TF's histogram calibrator, made exact.

Options (dataclass fields; CLI spelling `annotate-ranges{calibration=PATH samples=100}`):

- `calibration`: representative data (anything `qcc.calibration.load_representative_data`
  reads: a .npz / .npy, a folder of .npy / .npz / images), or statistics saved by
  `qcc --save-stats` (see `qcc.statistics` for the file format). The driver reads it.
- `method`: `minmax` (default), `percentile`, `mse` or `auto`.
- `samples`: use only the first N samples (0 = all; a source whose length is unknown, a
  generator, stops at `qcc.calibration.DEFAULT_SAMPLE_CAP` with a warning). Ignored for
  saved statistics, which record how they were gathered.
- `percentile`: for `method=percentile`, the percentile kept on each tail, in (50, 100]
  (default 99.99).
- `input_range`: `LO,HI` (finite, LO < HI) that image pixels 0 and 255 map to (image
  folders only; ignored for saved statistics).
- `bins`: histogram bins, 2..2^20 (default 2048; 0 = no histogram, `method=minmax` only).
  Saved statistics must hold histograms of as many bins (or the pass keeps none, `bins=0`).
- `held_out`: when the statistics are gathered (not for saved statistics, which record
  their split), every N-th sample is held out for `method=auto` (default 4: samples 3, 7,
  11, ...; 0 = none; 1 is refused). The other methods read all samples, split or not: their
  ranges do not depend on it.
- `statistics`: Python only, not a CLI option — the statistics, or their provider (above).

Every option is checked when the pass is built: a bad one is a `ValueError` naming it and
what it takes (`pass 'annotate-ranges': bins must be ...` from a pipeline). Errors of the
pass itself (no statistics, statistics that do not match the IR, a range beyond float32)
are `PassFailedException`s; errors of the provider (bad data, a model that cannot run)
are the provider's own.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp
from xdsl.ir import Block, BlockArgument, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from qcc.dialects import nn, quant
from qcc.dialects.ir import find_main, location_text

RANGE_METHODS = ("minmax", "percentile", "mse")
"""The methods that compute a range from one tensor's statistics (`ValueStats.range`)."""
METHODS = (*RANGE_METHODS, "auto")
AUTO_CANDIDATES = ("mse", "percentile", "minmax")
"""What `method=auto` chooses among, in the order that breaks a tie (the presets' default
first)."""
DEFAULT_HELD_OUT = 4
"""Every 4th calibration sample is held out (`held_out`; see `is_held_out`)."""
DEFAULT_BINS = 2048
MAX_BINS = 1 << 20
"""The most histogram bins an annotation may hold (2^20; every bin is an i64 in the IR)."""

_MIN_BIN_EXPONENT = -100
"""Smallest bin width 2^e: a constant-zero tensor still gets a (tiny) positive width."""
_RELATIVE_BIN_BITS = 20
"""Bin width >= max|x| * 2^-20, so every edge k*2^e has |k| < 2^21 and is exact in float32
(`histogram_range` is stored as f32)."""


# ------------------------------------------------------------------------------------------
# Statistics of one value
# ------------------------------------------------------------------------------------------


def _fits(lo: float, hi: float, exponent: int, bins: int) -> bool:
    width = math.ldexp(1.0, exponent)
    return math.floor(hi / width) - math.floor(lo / width) < bins


def _bin_exponent(lo: float, hi: float, bins: int) -> int:
    """The smallest e such that bins of width 2^e, edges on multiples of 2^e, cover [lo, hi]
    with `bins` bins (and 2^e is not too small for f32 edges; see _RELATIVE_BIN_BITS)."""
    magnitude = max(abs(lo), abs(hi))
    floor_e = _MIN_BIN_EXPONENT
    if magnitude > 0:
        floor_e = max(floor_e, math.frexp(magnitude)[1] - _RELATIVE_BIN_BITS)
    exponent = floor_e
    if hi > lo:
        # start near the answer, then settle on the smallest fitting exponent
        exponent = max(floor_e, math.frexp((hi - lo) / bins)[1] - 1)
        while exponent > floor_e and _fits(lo, hi, exponent - 1, bins):
            exponent -= 1
    while not _fits(lo, hi, exponent, bins):
        exponent += 1
    return exponent


class InfiniteValues(ValueError):
    """`ValueStats.observe` was given infinite values: a range with an infinite end cannot be
    quantized (no int8 scale covers it)."""


_MSE_BLOCK_VALUES = 1 << 18
"""How many (α, bin) errors `ValueStats.mse_range` computes in one block of rows."""


@dataclass
class ValueStats:
    """Running statistics of one tensor: min, max, count, and a mergeable histogram.

    The histogram has `bins` bins of width 2^`exponent`; bin i spans
    [(offset + i)·w, (offset + i + 1)·w). `exponent` is the smallest one that fits [min, max]
    (a function of min and max alone), so the histogram does not depend on the order in which
    data arrived nor on how it was split.
    """

    bins: int = DEFAULT_BINS
    min: float = math.inf
    max: float = -math.inf
    count: int = 0
    exponent: int = _MIN_BIN_EXPONENT
    offset: int = 0
    counts: np.ndarray | None = None
    mean_axes: int = 0
    """How many trailing axes the mean keeps (0: no mean is recorded)."""
    mean_sum: np.ndarray | None = None
    mean_count: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.bins == 1 or self.bins < 0:
            # one bin cannot cover a range across 0 (0 is always an edge)
            raise ValueError(f"a histogram needs 0 (none) or at least 2 bins, got {self.bins}")

    @property
    def empty(self) -> bool:
        return self.count == 0

    @property
    def bin_width(self) -> float:
        return math.ldexp(1.0, self.exponent)

    @property
    def histogram_range(self) -> tuple[float, float]:
        w = self.bin_width
        return self.offset * w, (self.offset + self.bins) * w

    def _rebin(self, lo: float, hi: float) -> None:
        """Move the histogram to the canonical grid for [lo, hi] (a superset of the data)."""
        exponent = _bin_exponent(lo, hi, self.bins)
        offset = math.floor(lo / math.ldexp(1.0, exponent))
        new = np.zeros(self.bins, np.int64)
        if self.counts is not None and self.counts.any():
            shift = exponent - self.exponent
            assert shift >= 0
            old_bins = np.arange(self.bins, dtype=np.int64) + self.offset
            index = (old_bins >> shift) - offset  # floor division by 2^shift
            nz = self.counts != 0
            np.add.at(new, index[nz], self.counts[nz])
        self.exponent, self.offset, self.counts = exponent, offset, new

    @property
    def channel_mean(self) -> np.ndarray | None:
        """The mean over the leading axes (shape: the last `mean_axes` axes), if recorded;
        0 where no (non-NaN) value was seen."""
        if self.mean_sum is None or self.mean_count is None:
            return None
        return self.mean_sum / np.maximum(self.mean_count, 1)

    def _observe_mean(self, x: np.ndarray) -> None:
        k = self.mean_axes
        if x.ndim < k:
            raise ValueError(f"a mean over the last {k} axes needs arrays of rank >= {k}")
        shape = x.shape[x.ndim - k :]
        if self.mean_sum is None:
            self.mean_sum = np.zeros(shape, np.float64)
            self.mean_count = np.zeros(shape, np.int64)
        elif self.mean_sum.shape != shape:
            raise ValueError(
                f"channel mean of shape {list(self.mean_sum.shape)} cannot take arrays of "
                f"trailing shape {list(shape)}"
            )
        assert self.mean_count is not None
        if not x.size:
            return
        rows = x.reshape(-1, *shape)
        nan = np.isnan(rows)
        if nan.any():
            self.mean_sum += np.where(nan, 0.0, rows).sum(axis=0)
            self.mean_count += (~nan).sum(axis=0)
        else:
            self.mean_sum += rows.sum(axis=0)
            self.mean_count += rows.shape[0]

    def observe(self, x: np.ndarray) -> None:
        """Add the values of `x` (any float array; NaNs are ignored; infinite values raise
        `InfiniteValues` and add nothing)."""
        array = np.asarray(x, dtype=np.float64)
        values = array.ravel()
        if values.size and np.isnan(values).any():
            values = values[~np.isnan(values)]
        if not values.size:
            if self.mean_axes:
                self._observe_mean(array)
            return
        lo, hi = float(values.min()), float(values.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InfiniteValues(f"infinite values ({lo:g}..{hi:g}) have no finite range")
        if self.mean_axes:
            self._observe_mean(array)
        new_min, new_max = min(self.min, lo), max(self.max, hi)
        self.count += int(values.size)
        if self.bins > 0:
            if self.counts is None or new_min < self.min or new_max > self.max:
                self._rebin(new_min, new_max)
            assert self.counts is not None
            index = np.floor(values / self.bin_width).astype(np.int64) - self.offset
            self.counts += np.bincount(index, minlength=self.bins)[: self.bins]
        self.min, self.max = new_min, new_max

    @staticmethod
    def merge(a: ValueStats, b: ValueStats) -> ValueStats:
        """The statistics of the union of the data behind `a` and `b` (neither is modified)."""
        if a.bins != b.bins:
            raise ValueError(f"cannot merge histograms of {a.bins} and {b.bins} bins")
        if a.mean_axes != b.mean_axes:
            raise ValueError(
                f"cannot merge means over the last {a.mean_axes} and {b.mean_axes} axes"
            )
        out = ValueStats(bins=a.bins, mean_axes=a.mean_axes)
        sums = [s.mean_sum for s in (a, b) if s.mean_sum is not None]
        counts = [s.mean_count for s in (a, b) if s.mean_count is not None]
        if sums:
            if len({m.shape for m in sums}) != 1:
                raise ValueError("cannot merge channel means of different shapes")
            out.mean_sum, out.mean_count = np.sum(sums, axis=0), np.sum(counts, axis=0)
        parts = [s for s in (a, b) if not s.empty]
        if not parts:
            return out
        out.min = min(s.min for s in parts)
        out.max = max(s.max for s in parts)
        out.count = sum(s.count for s in parts)
        if out.bins > 0:
            out._rebin(out.min, out.max)
            assert out.counts is not None
            for s in parts:
                moved = ValueStats(s.bins, s.min, s.max, s.count, s.exponent, s.offset,
                                   None if s.counts is None else s.counts.copy())
                moved._rebin(out.min, out.max)
                assert moved.counts is not None
                out.counts += moved.counts
        return out

    # -- ranges ----------------------------------------------------------------------------

    def _edges_and_counts(self) -> tuple[np.ndarray, np.ndarray]:
        if self.counts is None:
            raise ValueError("no histogram was recorded (bins=0)")
        w = self.bin_width
        edges = (np.arange(self.bins + 1, dtype=np.float64) + self.offset) * w
        return edges, self.counts.astype(np.float64)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1) read from the histogram, clamped to [min, max]."""
        edges, counts = self._edges_and_counts()
        cdf = np.cumsum(counts)
        total = cdf[-1]
        target = q * total
        i = int(np.searchsorted(cdf, target, side="left"))
        i = min(i, self.bins - 1)
        before = cdf[i - 1] if i > 0 else 0.0
        inside = counts[i]
        frac = 0.0 if inside == 0 else (target - before) / inside
        value = edges[i] + frac * (edges[i + 1] - edges[i])
        return float(min(max(value, self.min), self.max))

    def percentile_range(self, percentile: float) -> tuple[float, float]:
        """[lo, hi] keeping `percentile` % of each tail: lo = q(1 - p), hi = q(p)."""
        p = percentile / 100.0
        lo, hi = self.quantile(1.0 - p), self.quantile(p)
        return min(lo, hi), max(lo, hi)

    def mse_histogram(self) -> tuple[float, float, np.ndarray, np.ndarray] | None:
        """What `mse_range` searches over: (lo, hi, centres, counts), the observed range
        extended to 0 and the centres and counts of the non-empty bins; None when that range
        is empty."""
        edges, counts = self._edges_and_counts()
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        if hi <= lo:
            return None
        centres = (edges[:-1] + edges[1:]) / 2
        nz = counts > 0
        return lo, hi, centres[nz], counts[nz]

    def mse_range(self, steps: int = 256) -> tuple[float, float]:
        """The clipping range [α·lo, α·hi] (lo, hi = the observed range extended to 0,
        α in (0, 1]) whose int8 asymmetric quantization has the least squared error over the
        histogram: bin centres stand for their values, and the rounding error inside the
        range is counted as scale²/12 per value."""
        found = self.mse_histogram()
        if found is None:
            return self.min, self.max
        lo, hi, centres, counts = found
        best, best_err = 1.0, math.inf
        # many α at once (one row each: the same element-wise operations and the same
        # per-row sum as one α at a time, so the same errors bit for bit), in blocks of
        # rows, each temporary at most ~2 MB (one block of 256 rows x 1000 bins, 8 MB,
        # ran 3x slower)
        alphas = np.linspace(1.0, 1.0 / steps, steps)
        errs = np.empty(steps)
        rows = max(1, _MSE_BLOCK_VALUES // max(1, centres.size))
        for r in range(0, steps, rows):
            block = alphas[r:r + rows]
            a, b = block * lo, block * hi
            scale = (b - a) / 255.0
            clipped = np.clip(centres[None, :], a[:, None], b[:, None])
            errs[r:r + rows] = np.sum(counts[None, :] * ((centres[None, :] - clipped) ** 2
                                                         + (scale * scale / 12.0)[:, None]),
                                      axis=1)
        for alpha, err in zip(alphas.tolist(), errs.tolist()):
            if err < best_err * (1.0 - 1e-12):
                best, best_err = alpha, err
        a, b = best * lo, best * hi
        return max(a, self.min), min(b, self.max)

    def range(self, method: str, percentile: float = 99.99) -> tuple[float, float]:
        """The range `method` keeps (see the module docstring)."""
        if self.empty:
            raise ValueError("no data observed")
        if method == "minmax":
            return self.min, self.max
        if method == "percentile":
            return self.percentile_range(percentile)
        if method == "mse":
            return self.mse_range()
        if method == "auto":
            raise ValueError(
                "method 'auto' chooses among the others with held-out statistics "
                "(choose_range), not from one tensor's"
            )
        raise ValueError(
            f"unknown method {method!r}; expected one of {', '.join(RANGE_METHODS)}"
        )


# ------------------------------------------------------------------------------------------
# method=auto: a range per tensor, chosen on held-out samples
# ------------------------------------------------------------------------------------------


def is_held_out(index: int, every: int) -> bool:
    """Whether calibration sample `index` (0-based, in the order the data gives them) is
    held out when every `every`-th sample is (the last of each group of `every`: samples
    3, 7, 11, ... for 4); `every=0` holds out none."""
    return every > 0 and index % every == every - 1


def quantization_error(held_out: ValueStats, lo: float, hi: float) -> float:
    """The mean squared error of int8 per-tensor asymmetric quantization with the range
    [lo, hi] (scale and zero point as infer-scales derives them: `nudged_scale_zero_point`)
    over the values `held_out`'s histogram counts: a value inside the representable range
    costs the rounding error scale²/12, one outside it its distance to the range's end
    (bin centres stand for their values; a bin's spread adds width²/12)."""
    from qcc.passes._quant_math import INT8_MAX, INT8_MIN, nudged_scale_zero_point

    edges, counts = held_out._edges_and_counts()
    nz = counts > 0
    if not nz.any():
        return 0.0
    width = held_out.bin_width
    centres = ((edges[:-1] + edges[1:]) / 2)[nz]
    counts = counts[nz]
    scale, zero_point = nudged_scale_zero_point(lo, hi)
    low, high = (INT8_MIN - zero_point) * scale, (INT8_MAX - zero_point) * scale
    clipped = np.clip(centres, low, high)
    outside = (centres < low) | (centres > high)
    error = np.where(
        outside, (centres - clipped) ** 2 + width * width / 12.0, scale * scale / 12.0
    )
    return float(np.sum(counts * error) / np.sum(counts))


@dataclass(frozen=True)
class RangeChoice:
    """What `choose_range` decided for one tensor: the method, its range (from the fit
    samples), and every candidate's held-out error (empty when nothing was held out)."""

    method: str
    range: tuple[float, float]
    errors: dict[str, float]


def choose_range(
    fit: ValueStats | None,
    held_out: ValueStats | None,
    percentile: float = 99.99,
    fallback: ValueStats | None = None,
) -> RangeChoice:
    """`method=auto` for one tensor: each of `AUTO_CANDIDATES` computes a range from the
    `fit` statistics alone, each range is scored by `quantization_error` on the `held_out`
    histogram, and the least error wins (ties: the earlier candidate). The held-out values
    only score: no range is computed from them. Without held-out or fit values (fewer
    samples than the split needs, NaN-only samples) it is `mse` on `fallback` (all
    samples), with no errors."""
    usable = (
        fit is not None and not fit.empty and fit.counts is not None
        and held_out is not None and not held_out.empty and held_out.counts is not None
    )
    if not usable:
        source = fallback if fallback is not None else fit
        if source is None or source.empty:
            raise ValueError("no data observed")
        return RangeChoice("mse", source.range("mse"), {})
    assert fit is not None and held_out is not None
    best: tuple[float, str, tuple[float, float]] | None = None
    errors: dict[str, float] = {}
    for method in AUTO_CANDIDATES:
        rng = fit.range(method, percentile)
        errors[method] = error = quantization_error(held_out, *rng)
        if best is None or error < best[0]:
            best = (error, method, rng)
    assert best is not None
    return RangeChoice(best[1], best[2], errors)


# ------------------------------------------------------------------------------------------
# Which tensors have statistics, and how statistics name them across runs
# ------------------------------------------------------------------------------------------


def _is_float_tensor(value: SSAValue) -> bool:
    t = value.type
    return isinstance(t, TensorType) and isinstance(
        t.get_element_type(), Float16Type | BFloat16Type | Float32Type | Float64Type
    )


def input_name(func: FuncOp, index: int) -> str:
    """The name of the function's input `index`: its `nn.name` (the model's tensor name),
    else `input_<index>`."""
    attrs = func.arg_attrs
    if attrs is not None and index < len(attrs.data):
        given = attrs.data[index].data.get("nn.name")
        if isinstance(given, StringAttr):
            return given.data
    return f"input_{index}"


@dataclass(frozen=True, order=True)
class TensorKey:
    """Names one tensor's statistics, the same way in every run and process.

    A function input: `name` is its name (`input_name`), `op` is empty, `index` its position.
    An op result: `name` is the op's location text (the source tensor name; empty without
    one), `op` the op's name (`nn.conv2d`), `index` the result index. `occurrence` counts
    earlier values with the same name, op and index (0 but for, e.g., ops without a
    location)."""

    name: str
    op: str = ""
    index: int = 0
    occurrence: int = 0

    def describe(self) -> str:
        """`input 'x'`, `tensor 'conv/Relu' (nn.conv2d)`, `the nn.add tensor`, ..."""
        if not self.op:
            return f"input '{self.name}'"
        what = self.op + (f" result {self.index}" if self.index else "")
        again = f", occurrence {self.occurrence + 1}" if self.occurrence else ""
        if self.name:
            return f"tensor '{self.name}' ({what}{again})"
        return f"the {what} tensor" + (f" ({again[2:]})" if again else "")


def value_keys(func: FuncOp) -> dict[SSAValue, TensorKey]:
    """Every value of `func` that gets statistics (its float arguments and the float results
    of its non-constant ops), in program order, with its key."""
    keys: dict[SSAValue, TensorKey] = {}
    seen: dict[tuple[str, str, int], int] = {}

    def add(value: SSAValue, name: str, op: str, index: int) -> None:
        occurrence = seen.get((name, op, index), 0)
        seen[(name, op, index)] = occurrence + 1
        keys[value] = TensorKey(name, op, index, occurrence)

    block = func.body.block
    for arg in block.args:
        if _is_float_tensor(arg):
            add(arg, input_name(func, arg.index), "", arg.index)
    for op in block.ops:
        if isinstance(op, nn.ConstantOp):
            continue
        for i, r in enumerate(op.results):
            if _is_float_tensor(r):
                add(r, location_text(op.location) or "", op.name, i)
    return keys


def value_shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(int(d) for d in value.type.get_shape())


def shape_text(shape: tuple[int, ...]) -> str:
    """`1x8x8x3` (`?` for a dynamic size), as in tensor types; `scalar` for rank 0."""
    return "x".join("?" if d < 0 else str(d) for d in shape) if shape else "scalar"


def value_text(func: FuncOp, value: SSAValue) -> str:
    """Names a value in a message: `input 'x'`, or `tensor 'loc' (nn.add)`."""
    if isinstance(value, BlockArgument):
        return f"input '{input_name(func, value.index)}'"
    assert isinstance(value, OpResult)
    op = value.op
    which = f" result {value.index}" if len(op.results) > 1 else ""
    loc = location_text(op.location)
    return f"tensor '{loc}' ({op.name}{which})" if loc else f"the {op.name}{which} tensor"


@dataclass
class TensorStats:
    """The statistics of one tensor, and the shape of the tensor they were gathered on.

    `stats` covers every sample (what every method but `auto` reads, and the channel mean).
    Where the samples were split (`Statistics.held_out`), `fit` and `held_out` are the
    statistics of the two parts, without means: `stats` is their merge (`ValueStats.merge`,
    exact), and `method=auto` chooses a range from `fit` scored on `held_out`."""

    shape: tuple[int, ...]
    stats: ValueStats
    fit: ValueStats | None = None
    held_out: ValueStats | None = None


@dataclass
class Statistics:
    """Calibration statistics of a function: what annotate-ranges attaches.

    `tensors` maps each value's `TensorKey` to its statistics; `bins` is the number of
    histogram bins of every entry (0: none); `samples` how many samples they summarize;
    `source` names them in messages (a file, or the data they were gathered from);
    `origin` says what data they were gathered from (kept in saved files).
    `qcc.statistics` makes them (from data, or from a saved file) and saves them.
    `held_out` is N when every N-th sample was held out (`is_held_out`; every entry then has
    `fit` and `held_out` statistics), 0 when the samples were not split; `held_out_samples`
    how many samples were held out."""

    tensors: dict[TensorKey, TensorStats] = field(default_factory=dict)
    bins: int = DEFAULT_BINS
    samples: int = 0
    source: str = "the statistics"
    origin: str = ""
    held_out: int = 0
    held_out_samples: int = 0

    def __iter__(self) -> Iterator[TensorKey]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __getitem__(self, key: TensorKey) -> TensorStats:
        return self.tensors[key]


_MISMATCH = (
    "they were gathered on another model, or at another point of the pipeline (statistics "
    "fit only the IR they were gathered on)"
)


def match_statistics(func: FuncOp, statistics: Statistics) -> dict[SSAValue, ValueStats]:
    """The statistics of every value of `func` that gets some (`value_keys`), or a
    `PassFailedException` naming the first tensor whose statistics are missing, of another
    shape, or (statistics of a tensor `func` does not have) left over."""
    return {v: entry.stats for v, entry in match_entries(func, statistics).items()}


def match_entries(func: FuncOp, statistics: Statistics) -> dict[SSAValue, TensorStats]:
    """`match_statistics`, with each value's whole entry (its held-out split too)."""
    found: dict[SSAValue, TensorStats] = {}
    for value, key in value_keys(func).items():
        entry = statistics.tensors.get(key)
        here = value_shape(value)
        if entry is None:
            raise PassFailedException(
                f"annotate-ranges: {statistics.source} has no statistics for {key.describe()} "
                f"of shape {shape_text(here)}: {_MISMATCH}"
            )
        if tuple(entry.shape) != here:
            raise PassFailedException(
                f"annotate-ranges: {key.describe()} has shape {shape_text(here)} here but "
                f"{shape_text(tuple(entry.shape))} in {statistics.source}: {_MISMATCH}"
            )
        found[value] = entry
    if len(found) != len(statistics.tensors):
        known = set(value_keys(func).values())
        extra = next(k for k in statistics.tensors if k not in known)
        raise PassFailedException(
            f"annotate-ranges: {statistics.source} has statistics for {extra.describe()}, "
            f"which this IR does not have: {_MISMATCH}"
        )
    return found


def mean_axes(value: SSAValue) -> int:
    """How many trailing axes of `value` its channel mean keeps: the last axis (the channel
    of NHWC), or more where an affine op with an [out, in] weight matrix (fully_connected)
    reads `value` as rows of `in` features spanning several trailing axes; 0 for a scalar."""
    assert isinstance(value.type, TensorType)
    shape = tuple(value.type.get_shape())
    axes = 1 if shape else 0
    for use in value.uses:
        user = use.operation
        affine = user.get_trait(nn.AffineWeights)
        if (
            affine is None
            or use.index != affine.input_operand
            or affine.weight_operand >= len(user.operands)
        ):
            continue
        weight_type = user.operands[affine.weight_operand].type
        if not isinstance(weight_type, TensorType) or len(weight_type.get_shape()) != 2:
            continue
        features, size = weight_type.get_shape()[1], 1
        for k in range(1, len(shape) + 1):
            if shape[-k] < 0:
                break
            size *= shape[-k]
            if size >= features:
                if size == features:
                    axes = max(axes, k)
                break
    return axes


def strip_stats(func: FuncOp) -> None:
    """Remove every `quant.stats` of `func`, its uses reading its input again."""
    for op in list(func.walk()):
        if isinstance(op, quant.StatsOp):
            op.result.replace_all_uses_with(op.input)
            Rewriter.erase_op(op)



def annotate(
    func: FuncOp,
    stats: Mapping[SSAValue, ValueStats],
    method: str,
    percentile: float,
    *,
    histograms: bool = True,
    splits: Mapping[SSAValue, TensorStats] | None = None,
) -> None:
    """Insert `quant.stats` after every value of `stats` and redirect its other uses
    (`histograms=False`: without the histograms, even if `stats` have them). `method=auto`
    reads each value's fit and held-out statistics from `splits` (`choose_range`) and
    records the method it chose as the annotation's `range_method` attribute."""

    def insert(value: SSAValue, where: InsertPoint) -> None:
        s = stats[value]
        if s.empty:
            return
        chosen: str | None = None
        if method == "auto":
            entry = splits.get(value) if splits is not None else None
            choice = choose_range(
                entry.fit if entry is not None else None,
                entry.held_out if entry is not None else None,
                percentile,
                fallback=s,
            )
            chosen, (rlo, rhi) = choice.method, choice.range
        else:
            rlo, rhi = s.range(method, percentile)
        with np.errstate(over="ignore"):
            lo, hi = np.float32(rlo), np.float32(rhi)
            hlo, hhi = (np.float32(v) for v in s.histogram_range)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise PassFailedException(
                f"annotate-ranges: {value_text(func, value)} has the range {rlo:.3g}..{rhi:.3g}, "
                "beyond float32 (in which ranges and int8 scales are stored), so it cannot be "
                "quantized: check the calibration data's scale"
            )
        kwargs: dict[str, Any] = {}
        # A histogram reaching past float32 (values near its limit) cannot be recorded.
        if histograms and s.counts is not None and np.isfinite(hlo) and np.isfinite(hhi):
            kwargs = {
                "histogram_counts": [int(c) for c in s.counts],
                "histogram_min_max": (float(hlo), float(hhi)),
            }
        mean = s.channel_mean
        if mean is not None:
            kwargs["channel_mean"] = [float(v) for v in mean.astype(np.float32).ravel()]
            kwargs["channel_mean_shape"] = list(mean.shape)
        op = quant.StatsOp(value, (float(lo), float(hi)), **kwargs)
        if chosen is not None:
            op.attributes["range_method"] = StringAttr(chosen)
        op.location = value.owner.location if isinstance(value.owner, Operation) else op.location
        Rewriter.insert_op(op, where)
        value.replace_uses_with_if(op.result, lambda use: use.operation is not op)

    block: Block = func.body.block
    anchor: Operation | None = block.first_op
    for arg in block.args:
        if arg in stats:
            assert anchor is not None
            insert(arg, InsertPoint.before(anchor))
    for op in list(block.ops):
        for r in reversed(op.results):
            if r in stats:
                insert(r, InsertPoint.after(op))


# ------------------------------------------------------------------------------------------
# The pass
# ------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    )


def _check_count(option: str, value: object, lo: int, hi: int, allowed: str) -> None:
    """`value` is an integer in [lo, hi], else a ValueError naming `option` and `allowed`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not lo <= int(value) <= hi
    ):
        raise ValueError(f"{option} must be {allowed}, got {value!r}")


StatisticsProvider = Callable[[FuncOp, "AnnotateRanges"], Statistics]
"""What the driver puts in `AnnotateRanges.statistics`: called with the function to annotate
(its old `quant.stats` removed) and the pass (for its options), it returns the function's
statistics (`qcc.statistics.Calibrator` runs data or reads a saved file)."""


@dataclass(frozen=True)
class AnnotateRanges(ModulePass):
    """Attach each float activation's statistics as a `quant.stats` (see the module
    docstring)."""

    name = "annotate-ranges"

    calibration: str = ""
    method: str = "minmax"
    samples: int = 0
    percentile: float = 99.99
    input_range: tuple[float, ...] = ()
    bins: int = DEFAULT_BINS
    held_out: int = DEFAULT_HELD_OUT
    statistics: Statistics | StatisticsProvider | None = field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        """Every option checked up front: a `ValueError` naming the option and what it
        takes (the pipeline reports it as `pass 'annotate-ranges': ...`)."""
        if not isinstance(self.calibration, str):
            raise ValueError(f"calibration must be a path, got {self.calibration!r}")
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        _check_count(
            "samples", self.samples, 0, sys.maxsize,
            f"0 (all samples) or a count up to {sys.maxsize}",
        )
        if not _is_number(self.percentile) or not 50.0 < self.percentile <= 100.0:
            raise ValueError(
                f"percentile must be a number in (50, 100], e.g. 99.99, got {self.percentile!r}"
            )
        if self.input_range:
            try:
                lo_hi = tuple(self.input_range)
            except TypeError:
                lo_hi = (self.input_range,)
            if (
                len(lo_hi) != 2
                or not all(_is_number(v) and math.isfinite(v) for v in lo_hi)
                or not lo_hi[0] < lo_hi[1]
            ):
                raise ValueError(
                    "input-range must be LO,HI: two finite numbers with LO < HI (e.g. 0,1 or "
                    f"-1,1), got {','.join(str(v) for v in lo_hi)}"
                )
        _check_count("bins", self.bins, 0, MAX_BINS, f"0 (no histogram) or 2..{MAX_BINS}")
        if self.bins == 1:
            raise ValueError(
                f"bins must be 0 (no histogram) or 2..{MAX_BINS}, got 1 (one bin cannot hold "
                "a range that spans 0)"
            )
        _check_count(
            "held-out", self.held_out, 0, sys.maxsize,
            "0 (no sample held out) or N >= 2 (every N-th sample held out)",
        )
        if self.held_out == 1:
            raise ValueError(
                "held-out must be 0 (no sample held out) or N >= 2 (every N-th sample held "
                "out), got 1 (it would hold out every sample)"
            )
        if self.bins == 0 and self.method != "minmax":
            raise ValueError(f"method={self.method} needs a histogram (bins > 0), got {self.bins}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            func = find_main(op)
        except (TypeError, ValueError) as e:
            raise PassFailedException(f"annotate-ranges: {e}") from None
        source = self.statistics
        if source is None:
            if self.calibration:
                raise PassFailedException(
                    f"annotate-ranges: calibration={self.calibration} is read by the driver "
                    "(qcc, qcc.quantize, qcc.pipeline.build_pipeline), which hands the "
                    "statistics to the pass; a pass built in Python needs statistics= "
                    "(qcc.statistics.Calibrator)"
                )
            raise PassFailedException(
                "annotate-ranges needs representative data: annotate-ranges{calibration=PATH} "
                "(data, or statistics saved with --save-stats), or a dataset from Python"
            )
        strip_stats(func)
        statistics = source(func, self) if callable(source) else source
        if not isinstance(statistics, Statistics):
            raise PassFailedException(
                "annotate-ranges: statistics= must be a Statistics or a callable returning "
                f"one, got {type(statistics).__name__}"
            )
        if self.bins and statistics.bins != self.bins:
            held = (
                f"histograms of {statistics.bins} bins" if statistics.bins else "no histograms"
            )
            raise PassFailedException(
                f"annotate-ranges: {statistics.source} holds {held}, not the {self.bins} bins "
                f"asked for; ask for bins={statistics.bins} (bins=0: no histogram, "
                "method=minmax only), or gather the statistics again"
            )
        if self.method == "auto" and not statistics.held_out:
            raise PassFailedException(
                f"annotate-ranges: method=auto scores ranges on held-out samples, and "
                f"{statistics.source} holds none (gathered with held-out=0, or by a qcc "
                "before statistics file version 2): gather the statistics again with "
                "held-out=N (N >= 2)"
            )
        entries = match_entries(func, statistics)
        annotate(
            func, {v: e.stats for v, e in entries.items()}, self.method, self.percentile,
            histograms=self.bins > 0, splits=entries,
        )
