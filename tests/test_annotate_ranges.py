"""annotate-ranges: mergeable statistics, range methods, the progress line, the Python
dataset path and the errors (the IR output format is in tests/filecheck/passes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.parser import Parser

from qcc.context import make_context
from qcc.dialects import quant
from qcc.errors import QccError
from qcc.passes.annotate_ranges import AnnotateRanges, ValueStats, collect_stats, _main

MODEL = """
func.func @main(%arg0: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %0 = nn.relu %arg0 : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("relu")
  %1 = nn.add %0, %arg0 {fused_activation = "NONE"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("add")
  func.return %1 : tensor<1x4xf32>
}
"""
SAMPLES = [
    [np.array([[-1, 0.5, 2, 3]], np.float32)],
    [np.array([[-2, 1, 0.25, -0.5]], np.float32)],
]


def _module():
    return Parser(make_context(), MODEL).parse_module()


def _stats_ops(module) -> list[quant.StatsOp]:
    return [op for op in module.walk() if isinstance(op, quant.StatsOp)]


def _same(a: ValueStats, b: ValueStats) -> None:
    assert (a.min, a.max, a.count, a.exponent, a.offset) == (
        b.min, b.max, b.count, b.exponent, b.offset,
    )
    assert a.counts is not None and b.counts is not None
    np.testing.assert_array_equal(a.counts, b.counts)


# -- statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("bins", [8, 2048])
def test_merge_equals_one_shot(bins: int) -> None:
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal(1000) * s + o for s, o in [(0.01, 0), (1, 3), (50, -20), (0.1, 1)]]
    whole = ValueStats(bins)
    whole.observe(np.concatenate(chunks))
    parts = []
    for c in chunks:
        s = ValueStats(bins)
        s.observe(c)
        parts.append(s)
    merged = ValueStats(bins)
    for p in parts:
        merged = ValueStats.merge(merged, p)
    _same(merged, whole)
    # streaming in any order gives the same histogram too
    streamed = ValueStats(bins)
    for c in reversed(chunks):
        streamed.observe(c)
    _same(streamed, whole)
    # merging in a different tree shape
    _same(ValueStats.merge(ValueStats.merge(parts[3], parts[0]), ValueStats.merge(parts[2], parts[1])), whole)
    assert int(whole.counts.sum()) == 4000  # type: ignore[union-attr]
    lo, hi = whole.histogram_range
    assert lo <= whole.min and whole.max < hi


def test_merge_keeps_inputs_and_handles_empty() -> None:
    a = ValueStats(16)
    a.observe(np.array([1.0, 2.0]))
    before = a.counts.copy()  # type: ignore[union-attr]
    m = ValueStats.merge(a, ValueStats(16))
    _same(m, a)
    np.testing.assert_array_equal(a.counts, before)  # type: ignore[arg-type]
    assert ValueStats.merge(ValueStats(16), ValueStats(16)).empty


def test_constant_tensor_gets_a_histogram() -> None:
    s = ValueStats(64)
    s.observe(np.zeros(10))
    assert s.range("minmax") == (0.0, 0.0)
    assert int(s.counts.sum()) == 10  # type: ignore[union-attr]
    s.observe(np.full(5, 7.5))
    assert s.range("minmax") == (0.0, 7.5) and int(s.counts.sum()) == 15  # type: ignore[union-attr]


def _int8_mse(x: np.ndarray, lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    zp = np.round(-128 - lo / scale)
    q = np.clip(np.round(x / scale + zp), -128, 127)
    return float(np.mean(((q - zp) * scale - x) ** 2))


def test_percentile_and_mse_clip_a_heavy_tail() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_t(df=2, size=200_000)  # heavy tails: a few huge values
    s = ValueStats()
    s.observe(x)
    full = s.range("minmax")
    assert full == (x.min(), x.max())

    plo, phi = s.range("percentile", 99.9)
    assert full[0] < plo < 0 < phi < full[1]
    assert (phi - plo) < 0.2 * (full[1] - full[0])
    # each tail keeps about 0.1 % of the data beyond the bound (histogram resolution allowing)
    assert np.mean(x > phi) == pytest.approx(0.001, abs=0.0005)
    assert np.mean(x < plo) == pytest.approx(0.001, abs=0.0005)
    p2 = s.range("percentile", 99.0)
    assert p2[0] > plo and p2[1] < phi  # a lower percentile clips more
    assert s.range("percentile", 100.0) == pytest.approx(full)



def test_mse_clips_a_laplace_tail() -> None:
    # Banner et al. (ACIQ): the MSE-optimal 8-bit clip of Laplace(0, b) is about 9.89 b,
    # inside the observed max (~12-13 b for 1e6 samples). A few huge outliers, on the
    # contrary, cost more clipped than kept, so MSE is not the method for those.
    rng = np.random.default_rng(3)
    x = rng.laplace(0.0, 1.0, 1_000_000)
    s = ValueStats()
    s.observe(x)
    full = s.range("minmax")
    lo, hi = s.range("mse")
    assert full[0] < lo < 0 < hi < full[1]
    assert 8.0 < hi < 11.5 and -11.5 < lo < -8.0
    assert _int8_mse(x, lo, hi) < 0.9 * _int8_mse(x, *full)


def test_mse_keeps_a_uniform_range() -> None:
    x = np.random.default_rng(2).uniform(-1, 3, 100_000)
    s = ValueStats()
    s.observe(x)
    lo, hi = s.range("mse")
    assert lo == pytest.approx(x.min(), abs=0.05) and hi == pytest.approx(x.max(), abs=0.05)


# -- running the model ---------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    func = _main(_module())
    quiet = io.StringIO()
    collect_stats(func, SAMPLES, total=2, progress_stream=quiet)
    assert quiet.getvalue() == ""
    tty = _Tty()
    collect_stats(func, SAMPLES, total=2, progress_stream=tty)
    assert "calibrating 1/2 samples" in tty.getvalue()
    assert tty.getvalue().endswith("calibrating 2/2 samples\n")


def test_quiet_stderr_when_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    AnnotateRanges(dataset=SAMPLES).apply(Context(), _module())
    assert capsys.readouterr().err == ""


def test_python_dataset_and_reannotation() -> None:
    module = _module()
    AnnotateRanges(dataset=SAMPLES).apply(Context(), module)
    ranges = [op.layer_min_max for op in _stats_ops(module)]
    assert ranges == [(-2.0, 3.0), (0.0, 3.0), (-2.0, 6.0)]

    def gen():  # a generator function, as TFLite users write it
        yield from SAMPLES[:1]

    AnnotateRanges(dataset=gen, bins=0).apply(Context(), module)
    module.verify()
    ops = _stats_ops(module)
    assert [op.layer_min_max for op in ops] == [(-1.0, 3.0), (0.0, 3.0), (-1.0, 6.0)]
    assert all(op.histogram is None for op in ops)


def test_calibration_file_and_samples(tmp_path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, np.stack([s[0] for s in SAMPLES]))
    module = _module()
    AnnotateRanges(calibration=str(path), samples=1).apply(Context(), module)
    assert [op.layer_min_max for op in _stats_ops(module)][0] == (-1.0, 3.0)


def test_errors() -> None:
    with pytest.raises(QccError, match="needs representative data"):
        AnnotateRanges().apply(Context(), _module())
    with pytest.raises(QccError, match="no such file"):
        AnnotateRanges(calibration="/nonexistent/c.npz").apply(Context(), _module())
    with pytest.raises(QccError, match="shape"):
        AnnotateRanges(dataset=[[np.zeros((1, 5), np.float32)]]).apply(Context(), _module())
    with pytest.raises(ValueError, match="method"):
        AnnotateRanges(method="entropy")
    with pytest.raises(ValueError, match="histogram"):
        AnnotateRanges(method="mse", bins=0)
