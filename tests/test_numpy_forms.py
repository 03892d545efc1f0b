"""The steps' NumPy forms (`numpy_form`: what a cold first run runs while their kernels
compile in a helper process, `runtime/plan.py`) against LiteRT's reference kernels and
against the kernels themselves.

Every generated single-op model, quantized by qcc with float inputs and outputs (so that its
plan also has the QUANTIZE and DEQUANTIZE steps), runs on inputs reaching past the
calibration range (saturating codes) three ways: LiteRT with `OpResolverType.BUILTIN_REF`
on the emitted .tflite, qcc's kernels (`run`), and qcc's NumPy forms (`run_numpy_forms`):
the outputs must be equal, bit for bit, and so must every step's results between the last
two. The forms in use must cover every kernel that has one (`FORMED`), so that a form
dropped or broken is noticed. Every $QCC_MODEL_ZOO model without a custom op is compared
the same way, step by step. Each form is also checked against its kernel where the models
do not reach: every int8 pair through ADD / SUB, NaN and infinities through QUANTIZE.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REF, custom_ops_kept, run_litert, zoo_parametrize

import qcc
from qcc.backends.numba import compile_module
from qcc.testing import tflite_models as tm

FORMED = {"quantize_f32_i8", "requantize_i8", "dequantize_i8", "add_i8", "sub_i8", "mul_i8",
          "max_pool2d_i8", "avg_pool2d_i8", "mean_i8", "fully_connected_i8",
          "logistic_i8", "tanh_i8", "hard_swish_i8", "affine_chan_i8", "resize_bilinear_i8"}
"""Kernels whose bound steps have a NumPy form in the generated models' plans; the forms of
`lut_chan_i8`, `prelu_chan_i8` and `relu_i8` (which `affine_chan_i8` replaces where it
reproduces them) and of the channel PAD are checked below on their own (and in the zoo's)."""

SEEN: set[str] = set()


def _formed_kernels(cm) -> set[str]:
    runner = cm._runner
    return {s.kernel for s, (fn, *_) in zip(cm.plan.steps, runner._steps)
            if callable(getattr(fn, "numpy_form", None))}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


def _assert_same_steps(cm, xs) -> None:
    """The kernels' and the NumPy forms' runs agree on the outputs and on every step."""
    kernel_steps: list = []
    form_steps: list = []
    ours = cm._runner.run(xs, lambda step, r: kernel_steps.append((step.label, r)))
    forms = cm._runner.run_numpy_forms(xs, lambda step, r: form_steps.append((step.label, r)))
    for (label, a), (_, b) in zip(kernel_steps, form_steps):
        for x, y in zip(a, b):
            assert x.shape == y.shape and x.dtype == y.dtype, label
            assert np.array_equal(_bits(x), _bits(y)), f"{label}: the NumPy form differs"
    for x, y in zip(ours, forms):
        assert np.array_equal(_bits(x), _bits(y))


def _check_single_op(name: str, write_model) -> None:
    model = qcc.load(write_model(name, tm.single_op_models()[name]))
    rng = np.random.default_rng(0)
    calib = [[rng.uniform(0, 1, size=t.shape).astype(np.float32) for t in model.inputs]
             for _ in range(4)]
    q = qcc.quantize(model, representative_dataset=calib, mode="int8", target="numba")
    cm = compile_module(q.module)
    formed = _formed_kernels(cm)
    SEEN.update(formed)
    xs = [rng.uniform(-0.5, 1.5, size=t.shape).astype(np.float32) for t in model.inputs]
    _assert_same_steps(cm, xs)
    if not formed:
        return
    forms = cm._runner.run_numpy_forms(xs)
    ref = run_litert(q.to_tflite(), xs, REF)
    for x, y in zip(ref, forms):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(_bits(x), _bits(y)), f"{name}: the NumPy forms differ from REF"


@pytest.mark.parametrize("name", sorted(tm.single_op_models()))
def test_numpy_forms_equal_the_kernels_and_litert_reference(name, write_model):
    _check_single_op(name, write_model)


def test_numpy_forms_cover_every_formed_kernel(write_model):
    """After the parametrized cases (file order) every kernel of `FORMED` was met; run alone,
    this test goes over the models itself."""
    if not SEEN:
        for name in sorted(tm.single_op_models()):
            _check_single_op(name, write_model)
    assert FORMED <= SEEN, f"no generated model runs the NumPy form of {FORMED - SEEN}"


@zoo_parametrize("path", select=lambda p: not custom_ops_kept(p))
def test_zoo_numpy_forms_equal_the_kernels(path):
    model = qcc.load(path)
    rng = np.random.default_rng(0)
    calib = [[rng.uniform(0, 1, size=t.shape).astype(np.float32) for t in model.inputs]
             for _ in range(2)]
    q = qcc.quantize(model, representative_dataset=calib, mode="int8", target="numba")
    cm = compile_module(q.module)
    assert _formed_kernels(cm)  # every shared model has QUANTIZE and DEQUANTIZE at least
    xs = [rng.uniform(-0.2, 1.2, size=t.shape).astype(np.float32) for t in model.inputs]
    _assert_same_steps(cm, xs)
    forms = cm._runner.run_numpy_forms(xs)
    for x, y in zip(run_litert(q.to_tflite(), xs, REF), forms):
        assert np.array_equal(_bits(x), _bits(y))


def test_add_sub_form_is_the_kernel_on_every_int8_pair():
    """Every (a, b) int8 pair through ADD and SUB, with several scale sets (the kernel's
    fast float path and its exact fix-up near ties against the NumPy integer form)."""
    from qcc.runtime.kernels import int8_elementwise as ew

    a, b = (v.astype(np.int8).reshape(256, 256)
            for v in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij"))
    cases = 0
    for s1, s2, so, zps in [(0.02, 0.03, 0.04, (3, -7, 11)), (0.5, 0.5, 0.25, (-128, 0, 127)),
                            (1e-3, 0.7, 0.71, (0, 0, 0)), (0.1, 0.1, 0.1, (5, 5, 5))]:
        for sign in (1, -1):
            params = _add_sub_params(s1, s2, so, zps, sign)
            kernel = ew._ew_bind_add_sub(params)
            assert callable(getattr(kernel, "numpy_form", None))
            want = kernel([a, b], params)[0]
            got = kernel.numpy_form([a, b], params)[0]
            assert np.array_equal(want, got), (s1, s2, so, zps, sign)
            cases += 1
    assert cases == 8


def _add_sub_params(s1, s2, so, zps, sign) -> dict:
    """The params `lower_add_sub` makes for these scales (from its own helpers)."""
    from qcc.runtime.fixedpoint import add_sub_params
    from qcc.runtime.kernels import int8_elementwise as ew

    zp1, zp2, zpo = zps
    p = add_sub_params(float(np.float32(s1)), float(np.float32(s2)), float(np.float32(so)), 20)
    return {"sign": sign, "zp1": zp1, "zp2": zp2, "zp_out": zpo, "lo": -128, "hi": 127,
            "out_shape": [256, 256],
            **{k: p[k] for k in ("left_shift", "m1", "shift1", "m2", "shift2", "m_out",
                                 "shift_out")},
            **ew._ew_add_sub_fast_params(p, sign, zp1, zp2, zpo)}


def test_quantize_and_requantize_forms_are_the_kernels_at_the_edges():
    from qcc.runtime.kernels import int8_quant as iq

    x = np.concatenate([
        np.random.default_rng(3).standard_normal(4096).astype(np.float32) * 40,
        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 0.49999997,
                  127.5, -128.5, 1e30, -1e30], np.float32)])
    for scale, zp in [(0.05, 3), (1.0, 0), (0.5, -128), (1 / 128, 127)]:
        params = {"scale": scale, "zp": zp}
        run = iq._q_bind_quantize(params)
        assert np.array_equal(run([x], params)[0], run.numpy_form([x], params)[0])
    q = np.arange(-128, 128, dtype=np.int8)
    for m, shift in [(1518500250, -3), (1073741824, 1), (2147483647, 0), (1, -31)]:
        params = {"m": m, "shift": shift, "zp_in": 17, "zp_out": -3}
        assert np.array_equal(iq.run_requantize_i8([q], params)[0],
                              iq.run_requantize_i8.numpy_form([q], params)[0])


def test_lut_chan_form_is_the_kernel():
    from qcc.runtime.kernels import int8_elementwise as ew

    rng = np.random.default_rng(4)
    c = 24
    lut = rng.integers(-128, 128, size=c * 256).astype(np.int8)
    x = rng.integers(-128, 128, size=(1, 5, 7, c)).astype(np.int8)
    params = {"lut": lut, "c": c}
    run = ew._ew_bind_lut_chan(params)
    assert np.array_equal(run([x], params)[0], run.numpy_form([x], params)[0])


def test_relu_form_is_the_kernel():
    from qcc.runtime.kernels import int8_activation as act

    x = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(2, 8, 16)
    lut = np.random.default_rng(8).integers(-128, 128, 256).astype(np.int8)
    params = {"lut": lut}
    run = act._act_bind_lut(params)
    assert np.array_equal(run([x], params)[0], run.numpy_form([x], params)[0])


def test_prelu_chan_form_is_the_kernel():
    from qcc.runtime.kernels import int8_activation as act

    rng = np.random.default_rng(6)
    c = 24
    x = rng.integers(-128, 128, size=(1, 5, 7, c)).astype(np.int8)
    for zx, off, zt in ((3, 0.5, -2), (-128, 0.4999999, 127), (0, 0.5, 0)):
        params = {"ec": rng.uniform(-2, 2, c).astype(np.float32), "zx": zx, "off": off,
                  "zt": zt, "lo": -100, "hi": 120}
        run = act._act_bind_prelu_chan(params)
        assert np.array_equal(run([x], params)[0], run.numpy_form([x], params)[0])


def test_affine_chan_form_is_the_kernel():
    from qcc.runtime.kernels import int8_elementwise as ew

    rng = np.random.default_rng(7)
    for c, shape in ((24, (1, 5, 7, 24)), (3, (2, 11, 3)), (40, (1, 9, 40)), (1, (33, 1))):
        tab = np.concatenate([rng.integers(-(1 << 22), 1 << 22, size=(2, c)),
                              rng.integers(-(1 << 29), 1 << 29, size=(2, c))]).astype(np.int32)
        tab = np.concatenate([tab, tab[:, np.arange(32) % c]], axis=1)
        for z, lo, hi in ((0, -128, 127), (-17, -90, 60), (127, -128, 0)):
            params = {"tab": tab, "g": np.array([c, z, 22, lo, hi], np.int64)}
            x = rng.integers(-128, 128, size=shape).astype(np.int8)
            run = ew._ew_bind_affine_chan(params)
            assert np.array_equal(run([x], params)[0], run.numpy_form([x], params)[0])


def test_channel_pad_form_is_the_kernel():
    from qcc.runtime.kernels import int8_shape as sh

    x = np.random.default_rng(5).integers(-128, 128, size=(1, 6, 5, 24)).astype(np.int8)
    params = {"out_shape": [1, 6, 5, 40], "before": [0, 0, 0, 0], "fill": -7,
              "fill_from_input": False}
    run = sh._shape_bind_pad(params)
    want = run([x], params)[0]
    assert np.array_equal(want[..., :24], x) and (want[..., 24:] == -7).all()
    assert np.array_equal(want, run.numpy_form([x], params)[0])
