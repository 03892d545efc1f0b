"""MediaPipe's `MaxPoolingWithArgmax2D` / `MaxUnpooling2D` custom ops (runtime/kernels/
mediapipe_pooling.py) against NumPy references.

The references below are plain-loop transcriptions of MediaPipe's C++
(mediapipe/util/tflite/operations/max_pool_argmax.cc and max_unpooling.cc, with TFLite's
ComputePadding and CalculateActivationRange), written without the kernel code. Models are
built as MediaPipe ships them: a CUSTOM operator whose options are the raw 40 bytes of
TFLite's `TfLitePoolParams` struct. Every model goes through the real path: import_tflite,
then the float Executor; results must match exactly (same bits, NaN where NaN).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from qcc.frontends.tflite import import_tflite
from qcc.runtime.errors import InvalidOpError
from qcc.runtime.executor import Executor
from qcc.testing.tflite_models import ModelBuilder

POOL = "MaxPoolingWithArgmax2D"
UNPOOL = "MaxUnpooling2D"
SAME, VALID = 1, 2  # TfLitePadding
NONE, RELU, RELU_N1_TO_1, RELU6, TANH = 0, 1, 2, 3, 4  # TfLiteFusedActivation
F32_MAX = float(np.finfo(np.float32).max)
F32_LOWEST = -F32_MAX
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


# ------------------------------------------------------------------------------------------
# Options and models
# ------------------------------------------------------------------------------------------


def pool_options(padding: int, stride: tuple[int, int], filt: tuple[int, int],
                 activation: int = NONE) -> bytes:
    """A TfLitePoolParams struct as TFLite's converter writes it into custom_options:
    padding, stride_width, stride_height, filter_width, filter_height, activation, then the
    `computed` TfLitePaddingValues (4 ints, zero); stride/filter given (height, width)."""
    (sh, sw), (fh, fw) = stride, filt
    return struct.pack("<10i", padding, sw, sh, fw, fh, activation, 0, 0, 0, 0)


def pool_model(in_shape, options: bytes, out_shape, index_dtype=np.float32) -> bytes:
    b = ModelBuilder()
    x = b.add_input("x", in_shape)
    values = b.add_tensor("values", out_shape)
    indices = b.add_tensor("indices", out_shape, index_dtype)
    b.add_custom_operator(POOL, [x], [values, indices], options)
    b.mark_output(values, indices)
    return b.build()


def unpool_model(in_shape, options: bytes, out_shape, index_shape=None) -> bytes:
    b = ModelBuilder()
    x = b.add_input("x", in_shape)
    i = b.add_input("indices", index_shape or in_shape)
    y = b.add_tensor("y", out_shape)
    b.add_custom_operator(UNPOOL, [x, i], [y], options)
    b.mark_output(y)
    return b.build()


def chain_model(in_shape, pool_opts: bytes, pooled_shape, unpool_opts: bytes,
                out_shape) -> bytes:
    b = ModelBuilder()
    x = b.add_input("x", in_shape)
    values = b.add_tensor("values", pooled_shape)
    indices = b.add_tensor("indices", pooled_shape)
    b.add_custom_operator(POOL, [x], [values, indices], pool_opts)
    y = b.add_tensor("y", out_shape)
    b.add_custom_operator(UNPOOL, [values, indices], [y], unpool_opts)
    b.mark_output(y, values, indices)
    return b.build()


def run(model: bytes, *inputs: np.ndarray) -> list[np.ndarray]:
    return Executor(import_tflite(model, name="test.tflite")).run(list(inputs))


# ------------------------------------------------------------------------------------------
# References: loop transcriptions of the C++
# ------------------------------------------------------------------------------------------


def c_div(a: int, b: int) -> int:
    """C++ `a / b` on ints (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def c_rem(a: int, b: int) -> int:
    """C++ `a % b` on ints (the sign of `a`)."""
    return a - b * c_div(a, b)


def compute_padding(stride: int, dilation: int, in_size: int, filter_size: int,
                    out_size: int) -> int:
    """tensorflow/lite/kernels/padding.h: ComputePadding."""
    effective = (filter_size - 1) * dilation + 1
    padding = c_div((out_size - 1) * stride + effective - in_size, 2)
    return padding if padding > 0 else 0


def activation_range(activation: int) -> tuple[float, float]:
    """kernel_util.h: CalculateActivationRange<float>."""
    if activation == RELU:
        return 0.0, F32_MAX
    if activation == RELU6:
        return 0.0, 6.0
    if activation == RELU_N1_TO_1:
        return -1.0, 1.0
    return F32_LOWEST, F32_MAX


def pool_out_size(padding: int, image: int, filt: int, stride: int) -> int:
    """Prepare's compute_out_size lambda."""
    if padding == SAME:
        return c_div(image + stride - 1, stride)
    if padding == VALID:
        return c_div(image - filt + stride, stride)
    return 0


def ref_max_pool_argmax(x: np.ndarray, padding: int, stride, filt, activation=NONE):
    batches, height, width, depth = x.shape
    stride_height, stride_width = stride
    filter_height, filter_width = filt
    out_height = pool_out_size(padding, height, filter_height, stride_height)
    out_width = pool_out_size(padding, width, filter_width, stride_width)
    pad_height = compute_padding(stride_height, 1, height, filter_height, out_height)
    pad_width = compute_padding(stride_width, 1, width, filter_width, out_width)
    act_min, act_max = activation_range(activation)
    output = np.zeros((batches, out_height, out_width, depth), np.float32)
    indices = np.zeros((batches, out_height, out_width, depth), np.float32)
    for batch in range(batches):
        for out_y in range(out_height):
            for out_x in range(out_width):
                for channel in range(depth):
                    in_x_origin = out_x * stride_width - pad_width
                    in_y_origin = out_y * stride_height - pad_height
                    filter_x_start = max(0, -in_x_origin)
                    filter_x_end = min(filter_width, width - in_x_origin)
                    filter_y_start = max(0, -in_y_origin)
                    filter_y_end = min(filter_height, height - in_y_origin)
                    best = F32_LOWEST
                    max_x = max_y = 0
                    for filter_y in range(filter_y_start, filter_y_end):
                        for filter_x in range(filter_x_start, filter_x_end):
                            cur = float(x[batch, in_y_origin + filter_y,
                                          in_x_origin + filter_x, channel])
                            if cur > best:
                                best, max_x, max_y = cur, filter_x, filter_y
                    output[batch, out_y, out_x, channel] = min(max(best, act_min), act_max)
                    indices[batch, out_y, out_x, channel] = (
                        np.float32(max_y * filter_width + max_x) + np.float32(0.1)
                    )
    return output, indices


def float_to_int(v: float) -> int:
    """`int idx = float_value;` as x86-64 does it (cvttss2si): truncation, and INT_MIN for
    NaN, infinities and values outside int32 (undefined behaviour in C++)."""
    if not np.isfinite(v):
        return INT_MIN
    t = int(v)
    return t if INT_MIN <= t <= INT_MAX else INT_MIN


def ref_max_unpool(x: np.ndarray, indices: np.ndarray, stride, filt) -> np.ndarray:
    batches, input_height, input_width, depth = x.shape
    stride_height, stride_width = stride
    filter_height, filter_width = filt
    output_height, output_width = input_height * filter_height, input_width * filter_width
    pad_height = compute_padding(stride_height, 1, output_height, filter_height, input_height)
    pad_width = compute_padding(stride_width, 1, output_width, filter_width, input_width)
    output = np.zeros((batches, output_height, output_width, depth), np.float32)
    for batch in range(batches):
        for in_y in range(input_height):
            for in_x in range(input_width):
                for channel in range(depth):
                    idx = float_to_int(float(indices[batch, in_y, in_x, channel]))
                    max_x = c_rem(idx, filter_width)
                    max_y = c_div(idx, filter_width)
                    out_x = in_x * stride_width - pad_width + max_x
                    out_y = in_y * stride_height - pad_height + max_y
                    if 0 <= out_x < output_width and 0 <= out_y < output_height:
                        output[batch, out_y, out_x, channel] = x[batch, in_y, in_x, channel]
    return output


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


def data(shape, seed: int, ties: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # a handful of levels: most windows hold equal maxima
        return rng.integers(-2, 3, size=shape).astype(np.float32)
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


# ------------------------------------------------------------------------------------------
# MaxPoolingWithArgmax2D
# ------------------------------------------------------------------------------------------

POOL_CASES = {
    # name: (input shape, padding, stride (h, w), filter (h, w), activation)
    "same_2x2_s2_even": ((2, 4, 6, 3), SAME, (2, 2), (2, 2), NONE),
    "same_2x2_s2_odd": ((1, 5, 7, 2), SAME, (2, 2), (2, 2), NONE),
    "same_3x3_s2_odd_padded": ((2, 5, 7, 3), SAME, (2, 2), (3, 3), NONE),
    "same_3x3_s1": ((1, 6, 5, 2), SAME, (1, 1), (3, 3), NONE),
    "same_2x2_s3_stride_gt_filter": ((1, 7, 8, 2), SAME, (3, 3), (2, 2), NONE),
    "same_4x2_s2x1_converter_example": ((2, 9, 6, 3), SAME, (2, 1), (4, 2), NONE),
    "valid_3x3_s1": ((1, 6, 7, 2), VALID, (1, 1), (3, 3), NONE),
    "valid_2x3_s2x3": ((3, 7, 11, 4), VALID, (2, 3), (2, 3), NONE),
    "valid_3x2_s2x1_leftover": ((1, 8, 6, 1), VALID, (2, 1), (3, 2), NONE),
    "same_2x2_relu6": ((1, 6, 6, 2), SAME, (2, 2), (2, 2), RELU6),
    "same_3x3_relu": ((1, 5, 5, 2), SAME, (2, 2), (3, 3), RELU),
    "valid_2x2_relu_n1_to_1": ((1, 6, 6, 2), VALID, (2, 2), (2, 2), RELU_N1_TO_1),
    "same_2x2_tanh_not_applied": ((1, 4, 4, 2), SAME, (2, 2), (2, 2), TANH),
}


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_max_pool_with_argmax_matches_reference(name: str, ties: bool):
    shape, padding, stride, filt, act = POOL_CASES[name]
    x = data(shape, seed=len(name), ties=ties)
    if act != NONE:
        x *= 8.0  # reach both sides of the clamp
    want_values, want_indices = ref_max_pool_argmax(x, padding, stride, filt, act)
    model = pool_model(shape, pool_options(padding, stride, filt, act), want_values.shape)
    values, indices = run(model, x)
    assert_same(values, want_values)
    assert_same(indices, want_indices)


def test_options_layout_matches_tflite_converter():
    # TFLite's MLIR converter test (mlir2flatbuffer) writes a SAME pooling with stride_h 2,
    # stride_w 1, filter_h 4, filter_w 2 as these custom_options bytes.
    converter = bytes([1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 4] + [0] * 23)
    assert pool_options(SAME, (2, 1), (4, 2)) == converter


def test_max_pool_index_is_window_relative_and_first_max_wins():
    # One channel, 4x4, 2x2 stride 2: indices are tap positions in the window (0..3) + 0.1.
    x = np.array([[0, 5, 1, 1],
                  [5, 2, 1, 1],
                  [3, 3, 9, 0],
                  [3, 4, 0, 9]], np.float32).reshape(1, 4, 4, 1)
    model = pool_model((1, 4, 4, 1), pool_options(SAME, (2, 2), (2, 2)), (1, 2, 2, 1))
    values, indices = run(model, x)
    assert values.reshape(2, 2).tolist() == [[5, 1], [4, 9]]
    want = np.array([1, 0, 3, 0], np.float32) + np.float32(0.1)
    assert_same(indices.reshape(-1), want)


def test_max_pool_special_values():
    # NaN and -inf never win; a window of only NaN/-inf gives lowest float at tap 0; +inf is
    # clamped to FLT_MAX (activation NONE clamps to [lowest, max]); -FLT_MAX never beats the
    # initial lowest, so its window also reports tap 0.
    nan, inf = np.nan, np.inf
    x = np.array([[nan, nan, nan, 2.0, -inf, inf],
                  [nan, -inf, 1.0, nan, 3.0, 0.0],
                  [F32_LOWEST, F32_LOWEST, -inf, -inf, nan, 7.0],
                  [F32_LOWEST, F32_LOWEST, -inf, nan, -1.0, nan]], np.float32)
    x = x.reshape(1, 4, 6, 1)
    want_values, want_indices = ref_max_pool_argmax(x, SAME, (2, 2), (2, 2))
    values, indices = run(pool_model(x.shape, pool_options(SAME, (2, 2), (2, 2)),
                                     want_values.shape), x)
    assert_same(values, want_values)
    assert_same(indices, want_indices)
    assert values.reshape(2, 3).tolist() == [[F32_LOWEST, 2.0, F32_MAX],
                                             [F32_LOWEST, F32_LOWEST, 7.0]]
    assert np.floor(indices).reshape(-1).tolist() == [0, 1, 1, 0, 0, 1]


def test_max_pool_padding_window_indices():
    # SAME 3x3 stride 2 on 5x5 pads one pixel top/left: the corner window's taps start at
    # (1, 1), so its index is never below filter_width + 1 = 4.
    x = data((1, 5, 5, 1), seed=3, ties=False)
    model = pool_model(x.shape, pool_options(SAME, (2, 2), (3, 3)), (1, 3, 3, 1))
    _, indices = run(model, x)
    assert indices[0, 0, 0, 0] >= 4
    assert_same(indices, ref_max_pool_argmax(x, SAME, (2, 2), (3, 3))[1])


def test_max_pool_larger_input():
    x = data((1, 32, 30, 8), seed=11, ties=False)
    want_values, want_indices = ref_max_pool_argmax(x, SAME, (2, 2), (3, 3))
    values, indices = run(pool_model(x.shape, pool_options(SAME, (2, 2), (3, 3)),
                                     want_values.shape), x)
    assert_same(values, want_values)
    assert_same(indices, want_indices)


# ------------------------------------------------------------------------------------------
# MaxUnpooling2D
# ------------------------------------------------------------------------------------------

UNPOOL_CASES = {
    # name: (input shape, stride (h, w), filter (h, w)); the padding field is not read
    "2x2_s2": ((2, 3, 4, 3), (2, 2), (2, 2)),
    "3x3_s1_overlapping_duplicates": ((1, 4, 5, 2), (1, 1), (3, 3)),
    "2x2_s3_padded": ((1, 4, 5, 2), (3, 3), (2, 2)),
    "2x3_s2x1": ((2, 3, 3, 2), (2, 1), (2, 3)),
    "3x2_s4x1_padded": ((1, 3, 4, 1), (4, 1), (3, 2)),
}


def unpool_indices(shape, filt, seed: int) -> np.ndarray:
    """Mostly valid window indices (+0.1 as the pooling writes them), with negative,
    too-large, fractional and non-finite ones mixed in."""
    rng = np.random.default_rng(seed)
    taps = filt[0] * filt[1]
    idx = rng.integers(0, taps, size=shape).astype(np.float32) + np.float32(0.1)
    odd = rng.random(shape)
    idx = np.where(odd < 0.08, rng.integers(-taps - 2, 0, size=shape), idx)
    idx = np.where((odd >= 0.08) & (odd < 0.14), rng.integers(taps, 3 * taps, size=shape), idx)
    idx = np.where((odd >= 0.14) & (odd < 0.2), rng.uniform(-1.5, taps + 0.5, size=shape), idx)
    idx = idx.astype(np.float32).reshape(-1)
    idx[:4] = [np.nan, np.inf, -np.inf, 3e9]  # undefined in C++; x86 gives INT_MIN: skipped
    return idx.reshape(shape)


@pytest.mark.parametrize("padding", [SAME, VALID, 0], ids=["same", "valid", "unknown"])
@pytest.mark.parametrize("name", sorted(UNPOOL_CASES))
def test_max_unpooling_matches_reference(name: str, padding: int):
    shape, stride, filt = UNPOOL_CASES[name]
    x = data(shape, seed=len(name), ties=False)
    indices = unpool_indices(shape, filt, seed=len(name) + 1)
    want = ref_max_unpool(x, indices, stride, filt)
    model = unpool_model(shape, pool_options(padding, stride, filt, RELU), want.shape)
    (got,) = run(model, x, indices)
    assert_same(got, want)


def test_max_unpooling_last_write_wins():
    # Stride 1, filter 2x2 (no padding): (0, 0) tap (0, 1) and (0, 1) tap (0, 0) both land at
    # output (0, 1); the later input in NHWC order wins. NaN values are copied as they are.
    x = np.array([1.0, 2.0, np.nan, 4.0], np.float32).reshape(1, 2, 2, 1)
    indices = np.array([1.1, 0.1, 3.1, 0.1], np.float32).reshape(1, 2, 2, 1)
    model = unpool_model(x.shape, pool_options(SAME, (1, 1), (2, 2)), (1, 4, 4, 1))
    (got,) = run(model, x, indices)
    want = ref_max_unpool(x, indices, (1, 1), (2, 2))
    assert_same(got, want)
    assert got[0, 0, 1, 0] == 2.0 and got[0, 1, 1, 0] == 4.0 and np.isnan(got[0, 2, 1, 0])


# ------------------------------------------------------------------------------------------
# The chain: pool, then unpool with the argmax
# ------------------------------------------------------------------------------------------

CHAIN_CASES = {
    # name: (input shape, padding, stride, filter)
    "same_2x2_s2_even": ((2, 6, 8, 3), SAME, (2, 2), (2, 2)),
    "same_2x2_s2_odd": ((1, 5, 7, 2), SAME, (2, 2), (2, 2)),
    "same_3x3_s2_padded": ((1, 7, 7, 2), SAME, (2, 2), (3, 3)),
    "valid_2x2_s2": ((2, 7, 6, 2), VALID, (2, 2), (2, 2)),
}


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("name", sorted(CHAIN_CASES))
def test_pool_unpool_chain_matches_reference(name: str, ties: bool):
    shape, padding, stride, filt = CHAIN_CASES[name]
    opts = pool_options(padding, stride, filt)
    x = data(shape, seed=len(name) + 7, ties=ties)
    want_values, want_indices = ref_max_pool_argmax(x, padding, stride, filt)
    want = ref_max_unpool(want_values, want_indices, stride, filt)
    model = chain_model(shape, opts, want_values.shape, opts, want.shape)
    got, values, indices = run(model, x)
    assert_same(values, want_values)
    assert_same(indices, want_indices)
    assert_same(got, want)


def test_chain_puts_each_max_back_in_place():
    # 2x2 stride 2 on an even input: unpool(pool(x)) keeps x at the first maximum of every
    # window and zeros elsewhere.
    x = data((1, 4, 6, 2), seed=5, ties=True)
    opts = pool_options(SAME, (2, 2), (2, 2))
    got, _, _ = run(chain_model(x.shape, opts, (1, 2, 3, 2), opts, x.shape), x)
    windows = x.reshape(1, 2, 2, 3, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 2, 3, 2, 4)
    first = windows.argmax(axis=-1)
    mask = np.zeros(windows.shape, bool)
    np.put_along_axis(mask, first[..., None], True, axis=-1)
    mask = mask.reshape(1, 2, 3, 2, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(x.shape)
    assert_same(got, np.where(mask, x, np.float32(0)))


# ------------------------------------------------------------------------------------------
# Refused options and shapes
# ------------------------------------------------------------------------------------------

BAD_POOL = {
    # name: (model bytes, message pattern)
    "no_options": (pool_model((1, 4, 4, 1), b"", (1, 2, 2, 1)), "TfLitePoolParams.*0 bytes"),
    "short_options": (pool_model((1, 4, 4, 1), struct.pack("<5i", 1, 2, 2, 2, 2),
                                 (1, 2, 2, 1)), "TfLitePoolParams.*20 bytes"),
    "unknown_padding": (pool_model((1, 4, 4, 1), pool_options(0, (2, 2), (2, 2)),
                                   (1, 2, 2, 1)), "unknown padding 0"),
    "zero_stride": (pool_model((1, 4, 4, 1), pool_options(SAME, (0, 2), (2, 2)),
                               (1, 2, 2, 1)), "must be positive"),
    "zero_filter": (pool_model((1, 4, 4, 1), pool_options(VALID, (1, 1), (2, 0)),
                               (1, 3, 4, 1)), "must be positive"),
    "bad_activation": (pool_model((1, 4, 4, 1), pool_options(SAME, (2, 2), (2, 2), 9),
                                  (1, 2, 2, 1)), "unknown fused activation 9"),
    "filter_larger_than_input": (pool_model((1, 2, 2, 1), pool_options(VALID, (1, 1), (3, 3)),
                                            (1, 1, 1, 1)), "does not fit"),
    "wrong_output_shape": (pool_model((1, 5, 5, 1), pool_options(SAME, (2, 2), (2, 2)),
                                      (1, 2, 2, 1)), r"must be \[1, 3, 3, 1\]"),
    "int32_indices": (pool_model((1, 4, 4, 1), pool_options(SAME, (2, 2), (2, 2)),
                                 (1, 2, 2, 1), np.int32), "float32 only"),
}


@pytest.mark.parametrize("name", sorted(BAD_POOL))
def test_max_pool_refuses_bad_op(name: str):
    model, pattern = BAD_POOL[name]
    with pytest.raises(InvalidOpError, match=rf"custom op '{POOL}': .*{pattern}"):
        Executor(import_tflite(model))


BAD_UNPOOL = {
    "no_options": (unpool_model((1, 2, 2, 1), b"", (1, 4, 4, 1)), "TfLitePoolParams"),
    "zero_filter": (unpool_model((1, 2, 2, 1), pool_options(SAME, (2, 2), (0, 2)),
                                 (1, 0, 4, 1)), "must be positive"),
    "indices_shape": (unpool_model((1, 2, 2, 1), pool_options(SAME, (2, 2), (2, 2)),
                                   (1, 4, 4, 1), index_shape=(1, 2, 3, 1)), "not shaped like"),
    "wrong_output_shape": (unpool_model((1, 2, 3, 1), pool_options(SAME, (2, 2), (2, 2)),
                                        (1, 4, 4, 1)), r"must be \[1, 4, 6, 1\]"),
}


@pytest.mark.parametrize("name", sorted(BAD_UNPOOL))
def test_max_unpooling_refuses_bad_op(name: str):
    model, pattern = BAD_UNPOOL[name]
    with pytest.raises(InvalidOpError, match=rf"custom op '{UNPOOL}': .*{pattern}"):
        Executor(import_tflite(model))
