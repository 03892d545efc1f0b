"""The float executor (qcc.runtime.executor) against LiteRT, and its contract.

* every runnable test model (qcc.testing.tflite_models), imported and run, matches LiteRT on
  the same deterministic inputs, directly and after an MLIR text round trip;
* the real models of $QCC_MODEL_ZOO on real photos match LiteRT (the zoo tier: no items when
  the variable is unset, see conftest.py); a model with a custom op fails to compile, naming it;
* hand-written IR checks the executor's contract (input checks, observer, memory release,
  missing kernels) and kernels LiteRT's test models do not reach (strided-slice masks,
  resize rounding, gather with batch_dims, grouped convolution, ...).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    REF,
    custom_ops,
    litert_inputs,
    litert_lacks_custom_ops,
    run_litert,
    zoo_images,
    zoo_parametrize,
)

from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir, print_ir
from qcc.runtime.errors import InputMismatchError, MissingKernelError
from qcc.runtime.executor import Executor
from qcc.testing import tflite_models

RTOL = 1e-4  # max|diff| <= RTOL * max|reference|, per output


@cache
def _runnable() -> dict[str, bytes]:
    return tflite_models.all_runnable_models()


def _inputs_for(executor: Executor, seed: int = 0) -> list[np.ndarray]:
    return tflite_models.random_inputs([spec.shape for spec in executor.input_specs], seed=seed)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _assert_close(got: list[np.ndarray], want: list[np.ndarray], what: str, *,
                  model: bytes | None = None, xs: list[np.ndarray] | None = None) -> None:
    """got (qcc) within RTOL·max|want| of want (LiteRT's default resolver), per output.
    With the model and its inputs (the zoo), an output past that may be as far as twice
    LiteRT's own two kernel sets are from each other on it (BUILTIN_REF against the default
    resolver's): a deep model amplifies the rounding of any summation order (pose_landmark_full's
    segmentation head: 1.4e-3 of its range between LiteRT's resolvers), and LiteRT defines
    its float results no closer than that."""
    assert len(got) == len(want), f"{what}: {len(got)} outputs, LiteRT has {len(want)}"
    spread: list[np.ndarray] | None = None
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{what}: output {i} shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{what}: output {i} dtype {g.dtype} != {w.dtype}"
        if w.size == 0:
            continue
        assert np.all(np.isfinite(g)), f"{what}: output {i} has non-finite values"
        diff = _max_diff(g, w)
        scale = float(np.max(np.abs(w)))
        bound = RTOL * scale
        if diff > bound and model is not None and xs is not None:
            if spread is None:
                try:
                    spread = run_litert(model, xs, REF)
                except RuntimeError:  # a custom op only the default resolver knows
                    spread = []
            if spread:
                bound = max(bound, 2 * _max_diff(spread[i], w))
        assert diff <= bound, (
            f"{what}: output {i} max|diff| {diff:.3g} > {bound:.3g} (max|ref| {scale:.3g})"
        )


# ------------------------------------------------------------------------------------------
# Test models vs LiteRT
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_runnable()))
def test_model_matches_litert(name: str):
    model = _runnable()[name]
    executor = Executor(import_tflite(model))
    inputs = _inputs_for(executor)
    _assert_close(executor.run(inputs), run_litert(model, inputs), name)


@pytest.mark.parametrize("name", sorted(_runnable()))
def test_model_matches_litert_after_text_round_trip(name: str):
    model = _runnable()[name]
    text = print_ir(import_tflite(model))
    executor = Executor(parse_ir(text))
    inputs = _inputs_for(executor, seed=1)
    _assert_close(executor.run(inputs), run_litert(model, inputs), f"{name} (round trip)")


def test_custom_op_model_names_the_op():
    module = import_tflite(tflite_models.custom_op_model())
    with pytest.raises(MissingKernelError, match="custom op 'MyCustomOp'") as info:
        Executor(module)
    assert "\n" not in str(info.value)
    assert info.value.op_name == "MyCustomOp"


# ------------------------------------------------------------------------------------------
# Real models ($QCC_MODEL_ZOO) on real photos
# ------------------------------------------------------------------------------------------


def _eval_images(height: int, width: int, lo: float, hi: float) -> list[np.ndarray]:
    from PIL import Image

    folder = zoo_images("eval")
    assert folder is not None
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    assert paths, f"no eval images in {folder}"
    images = []
    for path in paths:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((width, height), Image.BILINEAR)
        x = np.asarray(rgb, dtype=np.float32) / np.float32(255)
        images.append((x * np.float32(hi - lo) + np.float32(lo))[None].astype(np.float32))
    return images


def _zoo_inputs(path: Path, executor: Executor) -> list[list[np.ndarray]]:
    """The eval photos (../data/images/eval) scaled to the input range the model declares (the
    ranges MediaPipe's graphs feed: [-1, 1] for face_detection), else [0, 1]; for a model that
    photos cannot feed, or without the photos, two generated samples in that range."""
    from qcc.api import Model

    ranges = [s.value_range for s in Model(import_tflite(path)).input_specs()]
    specs = executor.input_specs
    if zoo_images("eval") is not None and len(specs) == 1 and len(specs[0].shape) == 4 \
            and specs[0].shape[0] == 1 and specs[0].shape[3] == 3:
        _, height, width, _ = specs[0].shape
        return [[x] for x in _eval_images(height, width, *(ranges[0] or (0.0, 1.0)))]
    return [litert_inputs(path, seed=s, ranges=ranges) for s in range(2)]


@zoo_parametrize("path")
def test_zoo_model_matches_litert(path: Path):
    from qcc.dialects import nn
    from qcc.runtime.kernels import lookup

    module = import_tflite(path)
    # custom ops qcc has no kernel for (MediaPipe's have kernels: selfie's
    # Convolution2DTransposeBias runs here and in LiteRT's default resolver)
    custom = sorted({op.op_name.data for op in module.walk()
                     if isinstance(op, nn.GenericOp) and op.custom.value.data and lookup(op) is None})
    assert set(custom) <= set(custom_ops(path))
    if custom:
        names = "|".join(re.escape(name) for name in custom)
        with pytest.raises(MissingKernelError, match=f"custom op '({names})'"):
            Executor(module)
        return
    executor = Executor(module)
    model = path.read_bytes()
    lacking = litert_lacks_custom_ops(model)
    for i, xs in enumerate(_zoo_inputs(path, executor)):
        got = executor.run(xs)
        if lacking:  # LiteRT runs none of it (MediaPipe's Landmarks2TransformMatrix, ...):
            # the kernels of those ops are checked against MediaPipe's own code elsewhere
            # (test_mediapipe_transform); here the model runs, finite, deterministic
            assert all(np.isfinite(o).all() for o in got)
            assert all(np.array_equal(a, b) for a, b in zip(got, executor.run(xs)))
            continue
        _assert_close(got, run_litert(model, xs), f"{path.stem} input {i}", model=model, xs=xs)


# ------------------------------------------------------------------------------------------
# The executor's contract, on hand-written IR
# ------------------------------------------------------------------------------------------

_CONV_RELU_POOL = """
func.func @main(%x: tensor<1x6x6x2xf32>) -> (tensor<1x3x3x4xf32>, tensor<1x6x6x4xf32>) {
  %w = nn.constant {value = dense<[[[[0.5, -0.25]]], [[[1.0, 0.0]]], [[[-1.0, 2.0]]], [[[0.0, 0.125]]]]> : tensor<4x1x1x2xf32>} : tensor<4x1x1x2xf32> loc("w")
  %b = nn.constant {value = dense<[0.1, -0.1, 0.2, 0.0]> : tensor<4xf32>} : tensor<4xf32> loc("b")
  %c = nn.conv2d %x, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x6x6x2xf32>, tensor<4x1x1x2xf32>, tensor<4xf32>) -> tensor<1x6x6x4xf32> loc("conv")
  %r = nn.relu %c : (tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32> loc("relu")
  %p = nn.max_pool2d %r {filter_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x6x6x4xf32>) -> tensor<1x3x3x4xf32> loc("pool")
  func.return %p, %c : tensor<1x3x3x4xf32>, tensor<1x6x6x4xf32>
}
"""


def _conv_relu_pool_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.array([[0.5, -0.25], [1.0, 0.0], [-1.0, 2.0], [0.0, 0.125]], np.float32)
    c = x @ w.T + np.array([0.1, -0.1, 0.2, 0.0], np.float32)
    r = np.maximum(c, 0)
    return r.reshape(1, 3, 2, 3, 2, 4).max(axis=(2, 4)), c


def test_executor_runs_hand_written_ir():
    executor = Executor(parse_ir(_CONV_RELU_POOL))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 6, 6, 2)).astype(np.float32)
    pooled, conv = executor.run([x])
    want_pooled, want_conv = _conv_relu_pool_reference(x)
    np.testing.assert_allclose(pooled, want_pooled, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(conv, want_conv, rtol=1e-6, atol=1e-6)
    assert pooled.dtype == np.float32 and conv.dtype == np.float32


def test_executor_accepts_the_func_itself():
    module = parse_ir(_CONV_RELU_POOL)
    (func,) = list(module.ops)
    x = np.zeros((1, 6, 6, 2), np.float32)
    assert Executor(func).run([x])[0].shape == (1, 3, 3, 4)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([], r"expected 1 input\(s\) \(1x6x6x2xfloat32\), got 0"),
        ([np.zeros((1, 6, 6, 3), np.float32)], r"input 0: expected shape \[1, 6, 6, 2\], got \[1, 6, 6, 3\]"),
        ([np.zeros((6, 6, 2), np.float32)], r"input 0: expected shape"),
        ([np.zeros((1, 6, 6, 2), np.float64)], r"input 0: expected dtype float32, got float64"),
    ],
)
def test_input_mismatch_is_one_clear_line(inputs, message):
    executor = Executor(parse_ir(_CONV_RELU_POOL))
    with pytest.raises(InputMismatchError, match=message) as info:
        executor.run(inputs)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_observer_sees_every_op_in_order():
    executor = Executor(parse_ir(_CONV_RELU_POOL))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 6, 6, 2)).astype(np.float32)
    seen = []
    outputs = executor.run([x], observer=lambda op, results: seen.append((op.name, results)))
    assert [name for name, _ in seen] == [
        "nn.constant",
        "nn.constant",
        "nn.conv2d",
        "nn.relu",
        "nn.max_pool2d",
    ]
    assert all(isinstance(r, tuple) and len(r) == 1 for _, r in seen)
    np.testing.assert_array_equal(seen[2][1][0], outputs[1])
    np.testing.assert_array_equal(seen[4][1][0], outputs[0])
    np.testing.assert_array_equal(seen[3][1][0], np.maximum(outputs[1], 0))
    # without an observer the results are the same
    for a, b in zip(executor.run([x]), outputs):
        np.testing.assert_array_equal(a, b)


def test_intermediates_are_released_after_their_last_use():
    executor = Executor(parse_ir(_CONV_RELU_POOL))
    dead_after = {op.name: dead for _, _, _, dead, op in executor._steps}
    slot_of = {op.name: out for _, _, out, _, op in executor._steps}
    assert slot_of["nn.relu"] in dead_after["nn.max_pool2d"]  # freed after its only user
    released = {s for dead in dead_after.values() for s in dead}
    assert slot_of["nn.conv2d"] not in released  # a function result is never released
    assert slot_of["nn.max_pool2d"] not in released
    # and the run really drops it: the observer's reference is the only one left
    refs = {}

    def observer(op, results):
        if op.name == "nn.relu":
            refs["relu"] = results[0]

    executor.run([np.ones((1, 6, 6, 2), np.float32)], observer=observer)
    count = sys.getrefcount(refs["relu"])
    assert count == 2  # the dict entry and getrefcount's argument


def _generic_ir(custom: bool) -> str:
    return f"""
func.func @main(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {{
  %r = nn.relu %x : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("relu")
  %y = nn.generic %r {{op_name = "Frobnicate", custom = {str(custom).lower()}, options = "0x0102"}} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("model/frob")
  func.return %y : tensor<1x4xf32>
}}
"""


def test_missing_kernel_is_raised_at_compile_time_with_location():
    with pytest.raises(MissingKernelError) as info:
        Executor(parse_ir(_generic_ir(custom=True)))
    assert str(info.value) == "no kernel for custom op 'Frobnicate' (at \"model/frob\")"
    assert info.value.location == "model/frob"
    with pytest.raises(MissingKernelError, match="no kernel for builtin op 'Frobnicate'"):
        Executor(parse_ir(_generic_ir(custom=False)))


# ------------------------------------------------------------------------------------------
# Kernels beyond the LiteRT test models, against numpy references
# ------------------------------------------------------------------------------------------


def _run_single(op_text: str, arg_types: list[str], result_type: str, inputs: list[np.ndarray]):
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(arg_types))
    text = f"""
func.func @main({args}) -> {result_type} {{
  {op_text}
  func.return %y : {result_type}
}}
"""
    return Executor(parse_ir(text)).run(inputs)[0]


def _strided_slice_text(shape, out_shape, begin, end, strides, **masks) -> tuple[str, str, str]:
    t_in = f"tensor<{'x'.join(map(str, shape))}xf32>"
    t_out = f"tensor<{'x'.join(map(str, out_shape))}xf32>" if out_shape else "tensor<f32>"
    m = {k: masks.get(k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    props = ", ".join(f"{k} = {v} : i32" for k, v in m.items())
    offset = "true" if masks.get("offset") else "false"
    op = (
        f"%y = nn.strided_slice %a0 {{begin = array<i64: {', '.join(map(str, begin))}>, "
        f"end = array<i64: {', '.join(map(str, end))}>, strides = array<i64: {', '.join(map(str, strides))}>, "
        f"{props}, offset = {offset}}} : ({t_in}) -> {t_out}"
    )
    return op, t_in, t_out


@pytest.mark.parametrize(
    "shape, begin, end, strides, masks, index",
    [
        ((4, 6), (1, -1), (3, 0), (1, -2), {}, np.s_[1:3, -1:0:-2]),
        ((4, 6), (0, 5), (0, 0), (1, -1), {"begin_mask": 1, "end_mask": 3}, np.s_[:, 5::-1]),
        ((4, 6), (-1, 2), (0, 4), (1, 1), {"shrink_axis_mask": 1}, np.s_[-1, 2:4]),
        ((2, 3, 4), (1,), (2,), (1,), {"ellipsis_mask": 0}, np.s_[1:2]),
        ((2, 3, 4), (0, 1), (0, 3), (1, 1), {"ellipsis_mask": 1}, np.s_[..., 1:3]),
        ((2, 3, 4), (0, 0, 1), (0, 0, 2), (1, 1, 1), {"new_axis_mask": 2, "begin_mask": 1, "end_mask": 1}, np.s_[:, None, 1:2]),
        ((4, 6), (1, 2), (2, 3), (1, 1), {"offset": True}, np.s_[1:3, 2:5]),
        ((4, 6), (10, -10), (20, 10), (1, 1), {}, np.s_[10:20, -10:10]),
    ],
)
def test_strided_slice_matches_numpy(shape, begin, end, strides, masks, index):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    want = x[index]
    op, t_in, t_out = _strided_slice_text(shape, want.shape, begin, end, strides, **masks)
    got = _run_single(op, [t_in], t_out, [x])
    np.testing.assert_array_equal(got, want)


def _nearest_reference(in_size, out_size, align_corners, half_pixel):
    # tensorflow/lite/kernels/internal/reference/resize_nearest_neighbor.h, in float32
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel else 0.0)
    out = []
    for i in range(out_size):
        v = np.float32((np.float32(i) + offset) * scale)
        if align_corners:
            j = int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)  # std::round
        else:
            j = int(np.floor(v))
        j = min(j, in_size - 1)
        if half_pixel:
            j = max(j, 0)
        out.append(j)
    return out


@pytest.mark.parametrize("align_corners, half_pixel", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("in_size, out_size", [(3, 7), (5, 2), (4, 8), (7, 3)])
def test_resize_nearest_coordinates(in_size, out_size, align_corners, half_pixel):
    x = np.arange(in_size * in_size, dtype=np.float32).reshape(1, in_size, in_size, 1)
    t_in = f"tensor<1x{in_size}x{in_size}x1xf32>"
    t_out = f"tensor<1x{out_size}x{out_size}x1xf32>"
    op = (
        f"%y = nn.resize_nearest_neighbor %a0 {{align_corners = {str(align_corners).lower()}, "
        f"half_pixel_centers = {str(half_pixel).lower()}}} : ({t_in}) -> {t_out}"
    )
    got = _run_single(op, [t_in], t_out, [x])
    idx = _nearest_reference(in_size, out_size, align_corners, half_pixel)
    np.testing.assert_array_equal(got, x[:, idx][:, :, idx])


def test_gather_with_batch_dims():
    rng = np.random.default_rng(0)
    params = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    indices = rng.integers(0, 5, (2, 6)).astype(np.int32)
    op = (
        "%y = nn.gather %a0, %a1 {axis = 2 : i32, batch_dims = 1 : i32} : "
        "(tensor<2x3x5x4xf32>, tensor<2x6xi32>) -> tensor<2x3x6x4xf32>"
    )
    got = _run_single(op, ["tensor<2x3x5x4xf32>", "tensor<2x6xi32>"], "tensor<2x3x6x4xf32>", [params, indices])
    want = np.stack([params[b][:, indices[b]] for b in range(2)])
    np.testing.assert_array_equal(got, want)


def _conv_reference(x, w, b, stride, dilation, pad_top, pad_left, out_hw, groups=1):
    n, h, wd, c = x.shape
    o, kh, kw, i = w.shape
    oh, ow = out_hw
    out = np.zeros((n, oh, ow, o), np.float64)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for y in range(oh):
            for xx in range(ow):
                acc = float(b[oc])
                for ky in range(kh):
                    for kx in range(kw):
                        iy = y * stride[0] - pad_top + ky * dilation[0]
                        ix = xx * stride[1] - pad_left + kx * dilation[1]
                        if 0 <= iy < h and 0 <= ix < wd:
                            acc += float(np.dot(x[0, iy, ix, g * i : (g + 1) * i], w[oc, ky, kx]))
                out[0, y, xx, oc] = acc
    return out.astype(np.float32)


def test_grouped_conv2d_same_padding():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 7, 7, 4)).astype(np.float32)
    w = rng.uniform(-1, 1, (6, 3, 3, 2)).astype(np.float32)  # 2 groups of 2 in / 3 out
    b = rng.uniform(-1, 1, 6).astype(np.float32)
    op = (
        "%y = nn.conv2d %a0, %a1, %a2 {stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>, "
        'padding = "SAME", fused_activation = "NONE"} : '
        "(tensor<1x7x7x4xf32>, tensor<6x3x3x2xf32>, tensor<6xf32>) -> tensor<1x4x4x6xf32>"
    )
    got = _run_single(
        op, ["tensor<1x7x7x4xf32>", "tensor<6x3x3x2xf32>", "tensor<6xf32>"], "tensor<1x4x4x6xf32>", [x, w, b]
    )
    # SAME, in 7, k 3, s 2: out 4, total padding (4-1)*2+3-7 = 2 -> 1 before
    want = _conv_reference(x, w, b, (2, 2), (1, 1), 1, 1, (4, 4), groups=2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv2d_with_runtime_weights_and_even_kernel_padding():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (1, 6, 6, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (2, 2, 2, 3)).astype(np.float32)
    b = np.zeros(2, np.float32)
    op = (
        "%y = nn.conv2d %a0, %a1, %a2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, "
        'padding = "SAME", fused_activation = "RELU6"} : '
        "(tensor<1x6x6x3xf32>, tensor<2x2x2x3xf32>, tensor<2xf32>) -> tensor<1x6x6x2xf32>"
    )
    got = _run_single(
        op, ["tensor<1x6x6x3xf32>", "tensor<2x2x2x3xf32>", "tensor<2xf32>"], "tensor<1x6x6x2xf32>", [x, w, b]
    )
    # total padding 1: 0 before, 1 after (TFLite puts the odd pixel after)
    want = np.clip(_conv_reference(x, w, b, (1, 1), (1, 1), 0, 0, (6, 6)), 0, 6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_depthwise_multiplier_and_padding_with_tanh():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 5, 5, 2)).astype(np.float32)
    w = rng.uniform(-1, 1, (1, 3, 3, 6)).astype(np.float32)
    b = rng.uniform(-1, 1, 6).astype(np.float32)
    op = (
        "%y = nn.depthwise_conv2d %a0, %a1, %a2 {stride = array<i64: 1, 1>, dilation = array<i64: 2, 2>, "
        'padding = "SAME", fused_activation = "TANH", depth_multiplier = 3 : i32} : '
        "(tensor<1x5x5x2xf32>, tensor<1x3x3x6xf32>, tensor<6xf32>) -> tensor<1x5x5x6xf32>"
    )
    got = _run_single(
        op, ["tensor<1x5x5x2xf32>", "tensor<1x3x3x6xf32>", "tensor<6xf32>"], "tensor<1x5x5x6xf32>", [x, w, b]
    )
    # as a grouped conv: output channel c*3+m reads input channel c
    w_dense = np.zeros((6, 3, 3, 1), np.float32)
    for oc in range(6):
        w_dense[oc, :, :, 0] = w[0, :, :, oc]
    want = np.tanh(_conv_reference(x, w_dense, b, (1, 1), (2, 2), 2, 2, (5, 5), groups=2))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_average_pool_excludes_padding():
    x = np.ones((1, 3, 3, 1), np.float32)
    op = (
        '%y = nn.avg_pool2d %a0 {filter_size = array<i64: 3, 3>, stride = array<i64: 1, 1>, padding = "SAME", '
        'fused_activation = "NONE"} : (tensor<1x3x3x1xf32>) -> tensor<1x3x3x1xf32>'
    )
    got = _run_single(op, ["tensor<1x3x3x1xf32>"], "tensor<1x3x3x1xf32>", [x])
    np.testing.assert_array_equal(got, x)  # the mean of ones is one, at the borders too


def test_hard_swish_softmax_logistic_extremes():
    x = np.array([[-1000.0, -3.5, -1.0, 0.0, 2.0, 3.0, 1000.0]], np.float32)
    t = "tensor<1x7xf32>"
    hs = _run_single(f"%y = nn.hard_swish %a0 : ({t}) -> {t}", [t], t, [x])
    np.testing.assert_allclose(hs, x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
    lg = _run_single(f"%y = nn.logistic %a0 : ({t}) -> {t}", [t], t, [x])
    e = np.exp(-np.abs(x.astype(np.float64)))
    np.testing.assert_allclose(lg, np.where(x >= 0, 1 / (1 + e), e / (1 + e)), rtol=1e-6, atol=1e-30)
    sm = _run_single(f"%y = nn.softmax %a0 {{beta = 0.5 : f32}} : ({t}) -> {t}", [t], t, [x])
    z = np.exp(0.5 * (x.astype(np.float64) - x.max()))
    np.testing.assert_allclose(sm, z / z.sum(), rtol=1e-6, atol=1e-30)


def test_constants_are_decoded_without_copies():
    executor = Executor(parse_ir(_CONV_RELU_POOL))
    constants = [v for v in executor._initial if v is not None]
    assert len(constants) == 2
    assert all(not c.flags.writeable and not c.flags.owndata for c in constants)


def test_quant_stats_is_an_identity():
    text = """
func.func @main(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %s = quant.stats %x {layer_stats = dense<[-1.0, 2.5]> : tensor<2xf32>} : tensor<1x3xf32> loc("x/stats")
  %y = nn.relu %s : (tensor<1x3xf32>) -> tensor<1x3xf32> loc("y")
  func.return %y : tensor<1x3xf32>
}
"""
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    (y,) = Executor(parse_ir(text)).run([x])
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_find_main_names_the_functions():
    """One lookup of the function a model runs, for the executor, the API, the TFLite backend
    and annotate-ranges: @main, else the only function, else an error naming them."""
    from xdsl.dialects.builtin import ModuleOp

    from qcc.runtime.executor import find_main

    def module(*names):
        body = "\n".join(f"  func.func @{n}() {{\n    func.return\n  }}" for n in names)
        return parse_ir("builtin.module {\n" + body + "\n}")

    assert find_main(module("main", "helper")).sym_name.data == "main"
    assert find_main(module("only")).sym_name.data == "only"
    with pytest.raises(ValueError, match=r"several functions \(@a, @b\)"):
        find_main(module("a", "b"))
    with pytest.raises(ValueError, match="has no func.func"):
        find_main(ModuleOp([]))


def test_strided_slice_every_begin_end_stride_matches_litert():
    """1-D STRIDED_SLICE over every begin/end in [-5, 5) and stride in {-2, -1, 1, 2} (and
    shrink with stride 1), against LiteRT's reference kernel: negative strides with a
    clamped start of -1 select nothing (a Python slice would wrap around to the end)."""
    from ai_edge_litert import schema_py_generated as schema

    from qcc.dialects.nn import strided_slice_shape
    from qcc.runtime.kernels.shape import strided_slice_index
    from qcc.testing.tflite_models import ModelBuilder, Op

    x = np.arange(3, dtype=np.float32)
    checked = 0
    for begin in range(-5, 5):
        for end in range(-5, 5):
            for stride, shrink in [(-2, 0), (-1, 0), (1, 0), (2, 0), (1, 1)]:
                args = ((3,), (begin,), (end,), (stride,), 0, 0, 0, 0, shrink, False)
                try:
                    shape = strided_slice_shape(*args)
                except ValueError:  # a shrunk index outside the axis: the verifier refuses it
                    continue
                eff, index = strided_slice_index(*args)
                got = x.reshape(eff)[index].reshape(shape)
                b = ModelBuilder()
                xi = b.add_input("x", [3])
                options = schema.StridedSliceOptionsT()
                options.shrinkAxisMask = shrink
                consts = [b.add_constant(n, np.array([v], np.int32))
                          for n, v in (("b", begin), ("e", end), ("s", stride))]
                b.mark_output(b.add_op(Op.STRIDED_SLICE, [xi, *consts], list(shape), options, name="y"))
                (want,) = run_litert(b.build(), [x], REF)
                assert got.shape == want.shape and np.array_equal(got, want), (begin, end, stride)
                checked += 1
    assert checked > 150
