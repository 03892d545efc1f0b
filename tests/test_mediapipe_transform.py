"""MediaPipe's landmark/attention custom ops (runtime/kernels/mediapipe_transform.py) against
NumPy references transcribed loop for loop from MediaPipe's C++
(mediapipe/util/tflite/operations/landmarks_to_transform_matrix.cc,
transform_tensor_bilinear.cc, transform_landmarks.cc; options as
tensorflow/lite/delegates/gpu/common/mediapipe/*.cc parses them).

Every case goes the real path: a .tflite built by qcc.testing.mediapipe_models, imported,
run by the float executor. The references are written from the C++ alone (they share nothing
with the kernels): float32 where the C++ computes in float, Python floats (double) where a
double literal or an unqualified `cos` promotes, `(int)NaN` read as INT_MIN (x86).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from qcc.frontends.tflite import import_tflite
from qcc.runtime.errors import InvalidOpError
from qcc.runtime.executor import Executor
from qcc.testing import mediapipe_models as mm

f32 = np.float32
TOL = {"rtol": 1e-5, "atol": 1e-5}


def run_model(model: bytes, *inputs: np.ndarray) -> np.ndarray:
    (out,) = Executor(import_tflite(model)).run([np.asarray(x, np.float32) for x in inputs])
    return out


# ------------------------------------------------------------------------------------------
# References (C++ transcriptions)
# ------------------------------------------------------------------------------------------


def ieee(fn):
    """Run a reference with IEEE semantics and no warnings: the degenerate cases divide by
    zero and multiply inf by 0 on purpose, as the C++ does."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapped


class Mat:
    """Mat3 / Mat4: row-major float32, products accumulated `sum = 0; sum += a * b`."""

    def __init__(self, n, values):
        self.n, self.data = n, [f32(v) for v in values]

    def get(self, r, c):
        return self.data[r * self.n + c]

    def __mul__(self, other):
        if isinstance(other, Mat):
            result = []
            for r in range(self.n):
                for c in range(self.n):
                    s = f32(0)
                    for k in range(self.n):
                        s = f32(s + f32(self.get(r, k) * other.get(k, c)))
                    result.append(s)
            return Mat(self.n, result)
        out = []
        for r in range(self.n):
            s = f32(0)
            for k in range(self.n):
                s = f32(s + f32(self.get(r, k) * other[k]))
            out.append(s)
        return out


def _subset_pairs(flat):
    pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
    if len(flat) % 2:
        pairs.append((flat[-1], flat[-1]))
    return pairs


@ieee
def ref_l2tm_v1(landmarks, o):
    data = [f32(v) for v in np.asarray(landmarks, np.float32).reshape(-1)]
    ih, iw = o["input_hw"]
    oh, ow = o["output_hw"]
    rng, mult = o["landmarks_range"], f32(o["bbox_size_multiplier"])
    left, right = o.get("left_rotation_idx", 0), o.get("right_rotation_idx", 0)

    def xy(i):
        return data[i * 3], data[i * 3 + 1]

    (lx, ly), (rx, ry) = xy(left), xy(right)
    alpha = -f32(np.arctan(f32(f32(ry - ly) / f32(rx - lx))))  # std::atan(float)
    max_x = max_y = f32(-100000)
    min_x = min_y = f32(100000)
    for pair in _subset_pairs(o["subset"]):
        for j in range(2):
            x, y = xy(pair[j])
            # unqualified cos/sin of a float: ::cos(double), a double expression
            rot_x = f32(float(x) * math.cos(alpha) - float(y) * math.sin(alpha))
            rot_y = f32(float(x) * math.sin(alpha) + float(y) * math.cos(alpha))
            max_x = rot_x if max_x < rot_x else max_x  # std::max(a, b): (a < b) ? b : a
            max_y = rot_y if max_y < rot_y else max_y
            min_x = rot_x if rot_x < min_x else min_x  # std::min(a, b): (b < a) ? b : a
            min_y = rot_y if rot_y < min_y else min_y
    bbox_x, bbox_y = f32((max_x - min_x) * mult), f32((max_y - min_y) * mult)
    scale = Mat(3, [bbox_x / f32(rng), 0, 0, 0, bbox_y / f32(rng), 0, 0, 0, 1])
    mid_x, mid_y = f32(float(max_x + min_x) / 2.0), f32(float(max_y + min_y) / 2.0)
    ca, sa = math.cos(-alpha), math.sin(-alpha)
    rmx = f32(float(mid_x) * ca - float(mid_y) * sa)
    rmy = f32(float(mid_x) * sa + float(mid_y) * ca)
    rotation = Mat(3, [ca, -sa, float(f32(rmx / f32(rng))) * 2.0 - 1.0,
                       sa, ca, float(f32(rmy / f32(rng))) * 2.0 - 1.0, 0, 0, 1])

    def div(a, b):
        return a / b if b != 0 else math.copysign(math.inf, a)

    to_relative = Mat(3, [div(2.0, ow - 1.0), 0, -1, 0, div(2.0, oh - 1.0), -1, 0, 0, 1])
    to_absolute = Mat(3, [(iw - 1.0) / 2.0, 0, (iw - 1.0) / 2.0,
                          0, (ih - 1.0) / 2.0, (ih - 1.0) / 2.0, 0, 0, 1])
    itm = to_absolute * rotation * scale * to_relative
    g = itm.get
    out = [g(0, 0), g(0, 1), 0, g(0, 2), g(1, 0), g(1, 1), 0, g(1, 2),
           g(2, 0), g(2, 1), g(2, 2), 0, 0, 0, 0, 1]
    return np.array(out, np.float32).reshape(1, 4, 4)


@ieee
def ref_l2tm_v2(landmarks, o):
    data = [f32(v) for v in np.asarray(landmarks, np.float32).reshape(-1)]
    left, right = o.get("left_rotation_idx", 0), o.get("right_rotation_idx", 0)
    target = f32(o.get("target_rotation_radians", 0.0))
    out_h, out_w = o["output_height"], o["output_width"]

    def xyz(i):
        return [data[i * 3], data[i * 3 + 1], data[i * 3 + 2]]

    lm_l, lm_r = xyz(left), xyz(right)
    rotation = f32(target - f32(np.arctan2(f32(lm_r[1] - lm_l[1]), f32(lm_r[0] - lm_l[0]))))
    points = []
    for a, b in _subset_pairs(o["subset_idxs"]):
        points += [xyz(a), xyz(b)]
    for p in points:
        p[2] = f32(1.0)
    r = rotation
    t_rot = Mat(3, [np.cos(r), -np.sin(r), 0, np.sin(r), np.cos(r), 0, 0, 0, 1])
    t_rot_inv = Mat(3, [np.cos(-r), -np.sin(-r), 0, np.sin(-r), np.cos(-r), 0, 0, 0, 1])
    points = [t_rot * p for p in points]
    hi, lo = list(points[0]), list(points[0])
    for p in points[1:]:
        if hi[0] < p[0]:
            hi[0] = p[0]
        if hi[1] < p[1]:
            hi[1] = p[1]
        if lo[0] > p[0]:
            lo[0] = p[0]
        if lo[1] > p[1]:
            lo[1] = p[1]
    width, height = f32(hi[0] - lo[0]), f32(hi[1] - lo[1])
    crop = list(lo)
    crop[0] = f32(f32(crop[0] + hi[0]) / f32(2))
    crop[1] = f32(f32(crop[1] + hi[1]) / f32(2))
    crop = t_rot_inv * crop

    def mat4(*v):
        return Mat(4, v)

    t = mat4(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)
    t = t * mat4(1, 0, 0, crop[0], 0, 1, 0, crop[1], 0, 0, 1, 0, 0, 0, 0, 1)
    nr = -r
    t = t * mat4(np.cos(nr), -np.sin(nr), 0, 0, np.sin(nr), np.cos(nr), 0, 0,
                 0, 0, 1, 0, 0, 0, 0, 1)
    sx = f32(f32(f32(o["scale_x"]) * width) / f32(out_w))
    sy = f32(f32(f32(o["scale_y"]) * height) / f32(out_h))
    t = t * mat4(sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)
    t = t * mat4(1, 0, 0, -1.0 * (out_w / 2.0), 0, 1, 0, -1.0 * (out_h / 2.0),
                 0, 0, 1, 0, 0, 0, 0, 1)
    return np.array(t.data, np.float32).reshape(1, 4, 4)


def _cpp_int(v) -> int:
    """(int) of a float, NaN/inf as x86 gives it (INT_MIN)."""
    return int(v) if math.isfinite(v) else -(2**31)


def _dot(l4, c4):
    return f32(f32(f32(f32(l4[0] * c4[0]) + f32(l4[1] * c4[1])) + f32(l4[2] * c4[2]))
               + f32(l4[3] * c4[3]))


@ieee
def ref_transform_tensor(data, matrix, out_hw, out_c, version):
    data = np.asarray(data, np.float32)
    m = [f32(v) for v in np.asarray(matrix, np.float32).reshape(-1)[:8]]
    x_t, y_t = m[0:4], m[4:8]
    if version == 2:
        x_t[3] = f32(float(x_t[3]) + (float(x_t[0]) * 0.5 + float(x_t[1]) * 0.5 - 0.5))
        y_t[3] = f32(float(y_t[3]) + (float(y_t[0]) * 0.5 + float(y_t[1]) * 0.5 - 0.5))
    _, in_h, in_w, _ = data.shape
    out = np.zeros((1, *out_hw, out_c), np.float32)
    for out_y in range(out_hw[0]):
        for out_x in range(out_hw[1]):
            coord = [f32(out_x), f32(out_y), f32(0), f32(1)]
            tx, ty = _dot(x_t, coord), _dot(y_t, coord)
            oob = tx < 0.0 or tx > in_w - 1 or ty < 0.0 or ty > in_h - 1
            for z in range(out_c):
                result = f32(0)
                if not oob:
                    def read(h, w):
                        if h < 0 or w < 0 or h >= in_h or w >= in_w:
                            return f32(0)
                        return data[0, h, w, z]

                    fy = math.floor(ty) if math.isfinite(ty) else ty  # floor(NaN) = NaN
                    fx = math.floor(tx) if math.isfinite(tx) else tx
                    q11 = read(_cpp_int(fy), _cpp_int(fx))
                    q21 = read(_cpp_int(fy), _cpp_int(fx + 1))
                    q12 = read(_cpp_int(fy + 1), _cpp_int(fx))
                    q22 = read(_cpp_int(fy + 1), _cpp_int(fx + 1))
                    rc, lc = f32(tx - f32(fx)), f32(ty - f32(fy))
                    upper = f32((1.0 - float(rc)) * float(q11) + float(f32(rc * q21)))
                    lower = f32((1.0 - float(rc)) * float(q12) + float(f32(rc * q22)))
                    result = f32(float(f32(lc * lower)) + (1.0 - float(lc)) * float(upper))
                out[0, out_y, out_x, z] = result
    return out


@ieee
def ref_transform_landmarks(landmarks, matrix, version, options=None):
    landmarks = np.asarray(landmarks, np.float32)
    m = [f32(v) for v in np.asarray(matrix, np.float32).reshape(-1)[:8]]
    if version == 1:
        o = options or {}
        dims, scale = o.get("dimensions", 3), f32(o.get("scale", 1.0))
    else:
        dims, scale = landmarks.shape[-1], f32(1.0)
    x_t = [m[0], m[1], m[2], f32(m[3] * scale)]
    y_t = [m[4], m[5], m[6], f32(m[7] * scale)]
    flat_in = landmarks.reshape(-1)
    out = np.full(landmarks.size, np.nan, np.float32)  # what the C++ leaves unwritten: NaN
    if version == 1:
        _, h, w, c = landmarks.shape
        offsets = [(y * w + x) * c + k * dims
                   for y in range(h) for x in range(w) for k in range(c // dims)]
    else:
        offsets = [k * landmarks.shape[2] for k in range(landmarks.shape[1])]
    for off in offsets:
        lv = [flat_in[off], flat_in[off + 1], f32(0), f32(1)]
        out[off], out[off + 1] = _dot(x_t, lv), _dot(y_t, lv)
        if dims == 3:
            out[off + 2] = flat_in[off + 2]
    return out.reshape(landmarks.shape)


# ------------------------------------------------------------------------------------------
# Landmarks2TransformMatrix
# ------------------------------------------------------------------------------------------


def _landmarks(shape, seed, lo=0.0, hi=16.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


V2_CASES = {
    "default": {},
    "rotated_target_anisotropic": {"target_rotation_radians": 0.7, "scale_x": 1.2,
                                   "scale_y": 2.0, "output_height": 6, "output_width": 10},
    "odd_subset": {"subset_idxs": [0, 2, 5, 7, 9], "left_rotation_idx": 4,
                   "right_rotation_idx": 1},
    "same_rotation_landmarks": {"left_rotation_idx": 2, "right_rotation_idx": 2},
    "negative_target": {"target_rotation_radians": -2.5, "output_height": 1,
                        "output_width": 3},
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(V2_CASES))
def test_l2tm_v2(case, seed):
    options = mm.default_l2tm_options(2) | V2_CASES[case]
    landmarks = _landmarks([1, 10, 3], seed)
    got = run_model(mm.landmarks_to_transform_matrix_model([1, 10, 3], options), landmarks)
    assert got.shape == (1, 4, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_l2tm_v2(landmarks, options), **TOL)


def test_l2tm_v2_degenerate_subset():
    """Coincident subset landmarks: a zero-size crop, a zero scale, a finite matrix."""
    options = mm.default_l2tm_options(2)
    landmarks = _landmarks([1, 10, 3], 3)
    landmarks[0, :8, :2] = [5.0, 7.0]
    got = run_model(mm.landmarks_to_transform_matrix_model([1, 10, 3], options), landmarks)
    want = ref_l2tm_v2(landmarks, options)
    np.testing.assert_allclose(got, want, **TOL)
    assert np.all(got[0, :2, :2] == 0) and np.all(np.isfinite(got))


@pytest.mark.parametrize("first", [False, True])
def test_l2tm_v2_nan_landmark(first):
    """A NaN subset landmark: skipped by the running max/min, unless it is the first (the
    start value), which then sticks."""
    options = mm.default_l2tm_options(2) | {"subset_idxs": [5, 1, 2, 4, 6, 7]}
    landmarks = _landmarks([1, 10, 3], 4)
    landmarks[0, 5 if first else 2, 0] = np.nan
    got = run_model(mm.landmarks_to_transform_matrix_model([1, 10, 3], options), landmarks)
    np.testing.assert_allclose(got, ref_l2tm_v2(landmarks, options), **TOL)
    assert np.isnan(got).any() == first


V1_CASES = {
    "default": {},
    "odd_subset_non_square": {"subset": [1, 4, 6, 8, 9], "input_hw": [20, 12],
                              "output_hw": [5, 7], "landmarks_range": 24},
    "negative_multiplier": {"bbox_size_multiplier": -0.75, "left_rotation_idx": 9,
                            "right_rotation_idx": 2},
    "vertical_rotation_landmarks": {"left_rotation_idx": 5, "right_rotation_idx": 6},
    "coincident_rotation_landmarks": {"left_rotation_idx": 3, "right_rotation_idx": 3},
    "output_width_one": {"output_hw": [4, 1]},
    "nan_subset_landmark": {},
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(V1_CASES))
def test_l2tm_v1(case, seed):
    options = mm.default_l2tm_options(1) | V1_CASES[case]
    landmarks = _landmarks([1, 1, 1, 30], seed)
    if case == "vertical_rotation_landmarks":  # dx = 0: atan(+-inf)
        landmarks[0, 0, 0, 18] = landmarks[0, 0, 0, 15]
    if case == "nan_subset_landmark":  # skipped by std::max / std::min
        landmarks[0, 0, 0, 6] = np.nan
    got = run_model(mm.landmarks_to_transform_matrix_model([1, 1, 1, 30], options, version=1),
                    landmarks)
    want = ref_l2tm_v1(landmarks, options)
    np.testing.assert_allclose(got, want, **TOL)
    if case == "coincident_rotation_landmarks":  # atan(0 / 0): NaN, as in the C++
        assert np.isnan(got[0, 0, 0]) and got[0, 3, 3] == 1
    elif case != "output_width_one":
        assert np.all(np.isfinite(got))


# ------------------------------------------------------------------------------------------
# TransformTensorBilinear
# ------------------------------------------------------------------------------------------


def _affine(angle, sx, sy, tx, ty):
    m = np.eye(4, dtype=np.float32)
    c, s = math.cos(angle), math.sin(angle)
    m[:2, :2] = [[c * sx, -s * sy], [s * sx, c * sy]]
    m[0, 3], m[1, 3] = tx, ty
    return m[None]


MATRICES = {
    "identity": _affine(0, 1, 1, 0, 0),  # output larger than input: the x = W - 1 border
    "rotate_scale_shift": _affine(0.4, 1.3, 0.8, 1.7, -0.6),  # partly outside
    "zoom_out": _affine(-1.1, 2.5, 2.5, 3.0, 4.0),  # mostly outside
    "zero_scale": _affine(0, 0, 0, 2.25, 3.5),  # every pixel samples one point
    "zero_scale_outside": _affine(0, 0, 0, -0.5, 3.0),  # every pixel outside: zeros
    "nan": np.full((1, 4, 4), np.nan, np.float32),  # NaN points: NaN (not "outside")
    "inf_shift": _affine(0, 1, 1, np.inf, 0),  # infinite points: outside, zeros
}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("name", sorted(MATRICES))
def test_transform_tensor_bilinear(name, version):
    data = _landmarks([1, 6, 7, 3], 5, -1.0, 1.0)
    matrix = MATRICES[name]
    out_hw = (8, 9)
    model = mm.transform_tensor_bilinear_model([1, 6, 7, 3], out_hw, version=version)
    got = run_model(model, data, matrix)
    assert got.shape == (1, 8, 9, 3)
    np.testing.assert_allclose(got, ref_transform_tensor(data, matrix, out_hw, 3, version),
                               **TOL)
    if name == "identity" and version == 1:
        np.testing.assert_array_equal(got[0, :6, :7], data[0])  # exact pixels, then zeros
        assert not got[0, 6:].any() and not got[0, :, 7:].any()


@pytest.mark.parametrize("version", [1, 2])
def test_transform_tensor_bilinear_batch_and_channels(version):
    """Batch 0 of the data only; an output with fewer channels takes the first ones."""
    data = _landmarks([2, 5, 5, 4], 7, -1.0, 1.0)
    matrix = _affine(0.3, 0.7, 0.9, 0.5, 0.8)
    model = mm.transform_tensor_bilinear_model([2, 5, 5, 4], (4, 6), version=version,
                                               output_channels=2)
    got = run_model(model, data, matrix)
    np.testing.assert_allclose(got, ref_transform_tensor(data, matrix, (4, 6), 2, version),
                               **TOL)


def test_transform_tensor_v1_custom_code_and_l2tm_matrix():
    """MediaPipe's v1 name `TransformTensor`; and a matrix Landmarks2TransformMatrix made."""
    data = _landmarks([1, 16, 16, 2], 8, -1.0, 1.0)
    matrix = ref_l2tm_v2(_landmarks([1, 10, 3], 9, 2.0, 14.0), mm.default_l2tm_options(2))
    model = mm.transform_tensor_bilinear_model([1, 16, 16, 2], (8, 8), version=1,
                                               custom_code="TransformTensor")
    got = run_model(model, data, matrix)
    np.testing.assert_allclose(got, ref_transform_tensor(data, matrix, (8, 8), 2, 1), **TOL)


# ------------------------------------------------------------------------------------------
# TransformLandmarks
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("matrix", ["rotate_scale_shift", "zero_scale", "nan"])
def test_transform_landmarks_v2(matrix, dims):
    landmarks = _landmarks([1, 7, dims], 11, -5.0, 20.0)
    got = run_model(mm.transform_landmarks_model([1, 7, dims]), landmarks, MATRICES[matrix])
    np.testing.assert_allclose(got, ref_transform_landmarks(landmarks, MATRICES[matrix], 2),
                               **TOL)


def test_transform_landmarks_v2_ignores_options():
    """v2 reads no options (ParseTransformLandmarksV2Attributes): even garbage runs."""
    landmarks = _landmarks([1, 4, 3], 12)
    matrix = MATRICES["rotate_scale_shift"]
    model = mm.transform_landmarks_model([1, 4, 3], b"\xff\xfe\xfd not a flexbuffer")
    np.testing.assert_allclose(run_model(model, landmarks, matrix),
                               ref_transform_landmarks(landmarks, matrix, 2), **TOL)


@pytest.mark.parametrize(
    "shape, options",
    [([1, 2, 3, 6], None), ([1, 2, 3, 6], {"dimensions": 2, "scale": 2.5}),
     ([1, 1, 4, 9], {"dimensions": 3, "scale": -0.5}), ([1, 3, 1, 4], {"dimensions": 2})],
)
def test_transform_landmarks_v1(shape, options):
    landmarks = _landmarks(shape, 13, -5.0, 20.0)
    matrix = MATRICES["rotate_scale_shift"]
    got = run_model(mm.transform_landmarks_model(shape, options, version=1), landmarks, matrix)
    np.testing.assert_allclose(got, ref_transform_landmarks(landmarks, matrix, 1, options),
                               **TOL)


# ------------------------------------------------------------------------------------------
# Invalid options and shapes: one clear ValueError naming the op
# ------------------------------------------------------------------------------------------


def _without(options, key):
    return {k: v for k, v in options.items() if k != key}


INVALID = {
    "l2tm_v2_missing_output_height": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, _without(mm.default_l2tm_options(2), "output_height")),
        "Landmarks2TransformMatrix", "output_height"),
    "l2tm_v2_missing_subset": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, _without(mm.default_l2tm_options(2), "subset_idxs")),
        "Landmarks2TransformMatrix", "subset_idxs"),
    "l2tm_v2_zero_scale": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, mm.default_l2tm_options(2) | {"scale_x": 0.0}),
        "Landmarks2TransformMatrix", "scale_x"),
    "l2tm_v2_index_past_input": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, mm.default_l2tm_options(2) | {"right_rotation_idx": 10}),
        "Landmarks2TransformMatrix", "index 10"),
    "l2tm_v2_negative_index": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, mm.default_l2tm_options(2) | {"subset_idxs": [0, -1]}),
        "Landmarks2TransformMatrix", "negative"),
    "l2tm_v2_no_options": (
        lambda: mm.landmarks_to_transform_matrix_model(None, b""),
        "Landmarks2TransformMatrix", "required"),
    "l2tm_v1_missing_subset": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, _without(mm.default_l2tm_options(1), "subset"), version=1),
        "Landmarks2TransformMatrix", "subset"),
    "l2tm_v1_dimensions": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, mm.default_l2tm_options(1) | {"dimensions": 2}, version=1),
        "Landmarks2TransformMatrix", "dimensions"),
    "l2tm_v1_string_range": (
        lambda: mm.landmarks_to_transform_matrix_model(
            None, mm.default_l2tm_options(1) | {"landmarks_range": "big"}, version=1),
        "Landmarks2TransformMatrix", "landmarks_range"),
    "l2tm_garbage": (
        lambda: mm.landmarks_to_transform_matrix_model(None, b"\xff\xfe\xfd garbage"),
        "Landmarks2TransformMatrix", "flexbuffer"),
    "l2tm_version_3": (
        lambda: mm.landmarks_to_transform_matrix_model(None, version=3),
        "Landmarks2TransformMatrix", "version 3"),
    "l2tm_v2_rank_4": (
        lambda: mm.landmarks_to_transform_matrix_model([1, 1, 1, 30]),
        "Landmarks2TransformMatrix", "rank 3"),
    "ttb_v1_mode": (
        lambda: mm.transform_tensor_bilinear_model(
            options={"mode": "nearest"}, version=1),
        "TransformTensorBilinear", "bilinear"),
    "ttb_garbage": (
        lambda: mm.transform_tensor_bilinear_model(options=b"not a flexbuffer at all"),
        "TransformTensorBilinear", "flexbuffer"),
    "ttb_more_channels_than_input": (
        lambda: mm.transform_tensor_bilinear_model(output_channels=5),
        "TransformTensorBilinear", "channels"),
    "ttb_short_matrix": (
        lambda: mm.transform_tensor_bilinear_model(matrix_shape=[1, 6]),
        "TransformTensorBilinear", "8 values"),
    "tl_v1_dimensions": (
        lambda: mm.transform_landmarks_model([1, 1, 2, 8], {"dimensions": 4}, version=1),
        "TransformLandmarks", "2 or 3"),
    "tl_v1_zero_scale": (
        lambda: mm.transform_landmarks_model([1, 1, 2, 6], {"scale": 0.0}, version=1),
        "TransformLandmarks", "scale"),
    "tl_v1_channels": (
        lambda: mm.transform_landmarks_model([1, 1, 2, 5], None, version=1),
        "TransformLandmarks", "multiple"),
    "tl_v1_garbage": (
        lambda: mm.transform_landmarks_model([1, 1, 2, 6], b"\x01\x02\x03\x04\x05", version=1),
        "TransformLandmarks", "flexbuffer"),
    "tl_v2_four_dims": (
        lambda: mm.transform_landmarks_model([1, 5, 4]),
        "TransformLandmarks", "2 or 3"),
    "tl_v2_leading_dim": (
        lambda: mm.transform_landmarks_model([2, 5, 3]),
        "TransformLandmarks", "dimension 0"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_options_and_shapes(case):
    build, code, word = INVALID[case]
    module = import_tflite(build())
    with pytest.raises(InvalidOpError) as info:  # a ValueError, raised when compiling
        Executor(module)
    message = str(info.value)
    assert message.startswith(f"custom op '{code}': "), message
    assert word in message and "\n" not in message, message


# ------------------------------------------------------------------------------------------
# The attention chain
# ------------------------------------------------------------------------------------------


def _chain_inputs(seed):
    chain = mm.CHAIN
    rng = np.random.default_rng(seed)
    landmarks = rng.uniform(*chain["landmark_range"], size=chain["landmarks_shape"])
    features = rng.uniform(-1.0, 1.0, size=chain["features_shape"])
    return landmarks.astype(np.float32), features.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_landmarks_attention_chain(seed):
    chain = mm.CHAIN
    landmarks, features = _chain_inputs(seed)
    got = run_model(mm.landmarks_attention_chain_model(), landmarks, features)

    matrix = ref_l2tm_v2(landmarks, chain["l2tm_options"])
    crop = ref_transform_tensor(features, matrix, chain["crop_hw"],
                                chain["features_shape"][3], 2)
    filt, bias = mm.landmarks_attention_chain_weights()
    conv = np.einsum("hwc,ohwc->o", crop[0].astype(np.float64), filt.astype(np.float64))
    regressed = (conv + bias).astype(np.float32).reshape(1, chain["regressed"], 2)
    want = ref_transform_landmarks(regressed, matrix, 2)

    assert got.shape == (1, chain["regressed"], 2) and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, **TOL)
    assert np.count_nonzero(crop) > crop.size // 2  # the crop sees the feature map
