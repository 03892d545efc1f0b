"""MediaPipe's landmark/attention custom ops: float kernels for `Landmarks2TransformMatrix`,
`TransformTensorBilinear` (and its v1 name `TransformTensor`) and `TransformLandmarks`.

The semantics are MediaPipe's CPU kernels, mediapipe/util/tflite/operations/
landmarks_to_transform_matrix.cc, transform_tensor_bilinear.cc and transform_landmarks.cc
(google-ai-edge/mediapipe), whose options are parsed by TensorFlow's
tensorflow/lite/delegates/gpu/common/mediapipe/*.cc (a flexbuffer map; a missing key reads as
0 / an empty vector there, so a required option is one whose zero value the kernel rejects).
MediaPipe's own resolver registers version 2 of the three; version 1 is kept in the sources
(and registered by some apps), so both are run here. A missing version reads as 1 (TFLite).

* `Landmarks2TransformMatrix`: landmarks -> a [1, 4, 4] float32 matrix mapping crop pixels to
  input pixels. Landmarks are read as a flat float array with a stride of 3 (x, y, z).
  - v2 (input rank 3): rotation = target_rotation_radians - atan2(right - left); the subset
    landmarks (`subset_idxs`, consecutive pairs, an odd last index paired with itself) are
    rotated by it, their bounding box gives the crop centre (rotated back) and size;
    matrix = shift(centre) * rotate(-rotation) * scale(scale_x * width / output_width,
    scale_y * height / output_height) * shift(-output_width / 2, -output_height / 2).
    Options: `subset_idxs` (int vector, non-empty), `output_height`, `output_width` (> 0),
    `scale_x`, `scale_y` (> 0) required; `left_rotation_idx`, `right_rotation_idx` (>= 0,
    default 0), `target_rotation_radians` (default 0).
  - v1 (input [1, 1, 1, C]): alpha = -atan(dy / dx) of the rotation landmarks (NaN when they
    coincide), a bounding box of the rotated `subset` landmarks, and the matrix
    to_absolute(input_hw) * rotation * scale(bbox * bbox_size_multiplier / landmarks_range)
    * to_relative(output_hw), written as [[a, b, 0, c], [d, e, 0, f], [g, h, i, 0],
    [0, 0, 0, 1]]. Options: `input_hw`, `output_hw` (int vectors [h, w], > 0),
    `dimensions` (= 3), `landmarks_range` (> 0), `bbox_size_multiplier` (!= 0), `subset`
    (non-empty) required; `left_rotation_idx`, `right_rotation_idx` (default 0).
* `TransformTensorBilinear` (data [B, H, W, C], matrix of >= 8 floats -> [1, OH, OW, C']):
  output pixel (x, y) samples batch 0 of the data at (m0 x + m1 y + m3, m4 x + m5 y + m7),
  bilinearly; a sample point outside [0, W - 1] x [0, H - 1] gives 0 (no clamping), and a
  corner past the last row/column inside that range reads 0 (weight 0 there). v2 (MediaPipe's
  registered version) applies the half-pixel correction T -> S(-0.5) T A(+0.5); v1 (custom
  code `TransformTensor`) does not. The output size is the output tensor's (options
  `output_size` (v1) / `output_height`, `output_width` (v2) are only used when the tensor's
  size is dynamic); v1's `mode` must be "bilinear" when present. C' <= C (the first channels).
* `TransformLandmarks` (landmarks, matrix -> landmarks' shape): x, y of every landmark mapped
  by the matrix's first two rows (x' = m0 x + m1 y + m3, y' = m4 x + m5 y + m7), z copied.
  v2: landmarks [1, N, D], D = 2 or 3, no options. v1: landmarks [1, H, W, C], options
  `dimensions` (2 or 3, default 3; C divisible by it) and `scale` (!= 0, default 1; multiplies
  the translation m3, m7).

Arithmetic follows the C++ (float32, double where a double literal promotes it; matrix products
accumulated in order), so NaN/inf from degenerate inputs propagate as there. Outputs the C++
leaves unwritten (a batch or leading dimension > 1 of the result) are refused, as are landmark
indices past the input, with a one-line ValueError naming the op.
"""

from __future__ import annotations

import math

import numpy as np
from qcc.dialects import nn
from xdsl.ir import Operation

from .common import F32, custom_options, tensor_dtype, tensor_shape
from .registry import float_kernel

F64 = np.float64


def _fail(code: str, why: str) -> ValueError:
    return ValueError(f"custom op '{code}': {why}")


def _version(op: Operation, code: str, allowed: tuple[int, ...] = (1, 2)) -> int:
    version = 1 if op.version is None else int(op.version.value.data)
    if version not in allowed:
        raise _fail(code, f"version {version} is not supported (MediaPipe defines "
                          f"{' and '.join(map(str, allowed))} for it)")
    return version


def _check_operands(op: Operation, code: str, n_inputs: int) -> None:
    if len(op.inputs) != n_inputs or len(op.outputs) != 1:
        raise _fail(code, f"expects {n_inputs} input(s) and 1 output, "
                          f"got {len(op.inputs)} and {len(op.outputs)}")
    for what, v in [*(("input", v) for v in op.inputs), ("output", op.outputs[0])]:
        dtype = tensor_dtype(v)
        if dtype != np.float32:
            raise _fail(code, f"every {what} must be float32, got {dtype}")


def _check_matrix(op: Operation, code: str) -> None:
    """The matrix operand (input 1): the kernels read its first 8 values (two rows of 4x4)."""
    shape = tensor_shape(op.inputs[1])
    if all(d >= 0 for d in shape) and math.prod(shape) < 8:
        raise _fail(code, f"the matrix must hold at least 8 values (two rows of a 4x4), got "
                          f"{list(shape)}")


def _int_opt(opts: dict, key: str, code: str, default: int | None = None) -> int:
    if key not in opts:
        if default is None:
            raise _fail(code, f"option '{key}' is required")
        return default
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
        raise _fail(code, f"option '{key}' must be an integer, got {v!r}")
    return int(v)


def _float_opt(opts: dict, key: str, code: str, default: float | None = None) -> np.float32:
    if key not in opts:
        if default is None:
            raise _fail(code, f"option '{key}' is required")
        return F32(default)
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _fail(code, f"option '{key}' must be a number, got {v!r}")
    return F32(v)  # AsFloat: a float32


def _ints_opt(opts: dict, key: str, code: str) -> list[int]:
    v = opts.get(key)
    if v is None:
        raise _fail(code, f"option '{key}' is required")
    if not isinstance(v, list):
        raise _fail(code, f"option '{key}' must be a vector of integers, got {v!r}")
    return [_int_opt({key: x}, key, code) for x in v]


def _pairs(flat: list[int], key: str, code: str) -> list[int]:
    """The subset as the landmark order the C++ visits: consecutive pairs, an odd last index
    paired with itself; every index >= 0 and the subset non-empty."""
    if not flat:
        raise _fail(code, f"option '{key}' is empty")
    if any(i < 0 for i in flat):
        raise _fail(code, f"option '{key}' has a negative index: {flat}")
    return flat + flat[-1:] if len(flat) % 2 else flat


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 a @ b accumulated as Mat3/Mat4 do: sum = 0; sum += a[r, k] * b[k, c]."""
    out = np.zeros((a.shape[0], b.shape[1]), F32)
    for k in range(a.shape[1]):
        out = out + a[:, k : k + 1] * b[k : k + 1, :]
    return out


# ------------------------------------------------------------------------------------------
# Landmarks2TransformMatrix
# ------------------------------------------------------------------------------------------


@float_kernel(nn.GenericOp, custom="Landmarks2TransformMatrix")
def landmarks_to_transform_matrix(op: Operation):
    code = "Landmarks2TransformMatrix"
    version = _version(op, code)
    _check_operands(op, code, 1)
    opts = custom_options(op)
    in_shape, out_shape = tensor_shape(op.inputs[0]), tensor_shape(op.outputs[0])
    if out_shape != (1, 4, 4):
        raise _fail(code, f"the output must be [1, 4, 4], got {list(out_shape)}")
    left = _int_opt(opts, "left_rotation_idx", code, 0)
    right = _int_opt(opts, "right_rotation_idx", code, 0)
    if left < 0 or right < 0:
        raise _fail(code, f"rotation indices must be >= 0, got {left} and {right}")
    if version == 1:
        if len(in_shape) != 4 or in_shape[:3] != (1, 1, 1):
            raise _fail(code, f"v1 takes landmarks [1, 1, 1, C], got {list(in_shape)}")
        params = _l2tm_v1_params(opts, code)
        subset, reads = params[0], 2
    else:
        if len(in_shape) != 3:
            raise _fail(code, f"v2 takes landmarks of rank 3, got {list(in_shape)}")
        subset = _pairs(_ints_opt(opts, "subset_idxs", code), "subset_idxs", code)
        out_h = _int_opt(opts, "output_height", code)
        out_w = _int_opt(opts, "output_width", code)
        scale_x, scale_y = (_float_opt(opts, k, code) for k in ("scale_x", "scale_y"))
        if out_h <= 0 or out_w <= 0:
            raise _fail(code, f"output_height and output_width must be > 0, got {out_h}, {out_w}")
        if not (scale_x > 0 and scale_y > 0):
            raise _fail(code, f"scale_x and scale_y must be > 0, got {scale_x}, {scale_y}")
        target = _float_opt(opts, "target_rotation_radians", code, 0.0)
        reads = 3
    if all(d >= 0 for d in in_shape):
        size = math.prod(in_shape)
        n = (size - reads) // 3 + 1 if size >= reads else 0  # valid: 3 i + reads - 1 < size
        bad = [i for i in (left, right, *subset) if i >= n]
        if bad:
            raise _fail(code, f"landmark index {bad[0]} is past the input's {size} values")
    idx = np.asarray(subset, np.int64)
    if version == 1:
        return lambda landmarks: _l2tm_v1(landmarks.reshape(-1), left, right, idx, *params[1:])
    return lambda landmarks: _l2tm_v2(
        landmarks.reshape(-1), left, right, idx, target, out_h, out_w, scale_x, scale_y
    )


def _l2tm_v1_params(opts: dict, code: str) -> tuple:
    hw = {}
    for key in ("input_hw", "output_hw"):
        v = _ints_opt(opts, key, code)
        if len(v) < 2 or v[0] <= 0 or v[1] <= 0:
            raise _fail(code, f"option '{key}' must be [h, w] with h, w > 0, got {v}")
        hw[key] = v[:2]
    dimensions = _int_opt(opts, "dimensions", code)
    if dimensions != 3:
        raise _fail(code, f"option 'dimensions' must be 3, got {dimensions}")
    landmarks_range = _int_opt(opts, "landmarks_range", code)
    if landmarks_range <= 0:
        raise _fail(code, f"option 'landmarks_range' must be > 0, got {landmarks_range}")
    multiplier = _float_opt(opts, "bbox_size_multiplier", code)
    if multiplier == 0:
        raise _fail(code, "option 'bbox_size_multiplier' must not be 0")
    subset = _pairs(_ints_opt(opts, "subset", code), "subset", code)
    return subset, hw["input_hw"], hw["output_hw"], landmarks_range, multiplier


def _l2tm_v1(x, left, right, idx, input_hw, output_hw, rng, multiplier) -> np.ndarray:
    with np.errstate(all="ignore"):
        x = x.astype(F32, copy=False)
        alpha = -np.arctan((x[3 * right + 1] - x[3 * left + 1]) / (x[3 * right] - x[3 * left]))
        c, s = np.cos(alpha), np.sin(alpha)
        px, py = x[3 * idx], x[3 * idx + 1]
        rx, ry = px * c - py * s, px * s + py * c
        # std::max/min against the +-100000 start: NaN coordinates never win
        hi_x, hi_y = (np.fmax.reduce(np.append(F32(-100000), v)) for v in (rx, ry))
        lo_x, lo_y = (np.fmin.reduce(np.append(F32(100000), v)) for v in (rx, ry))
        rng32 = F32(rng)
        bbox_x, bbox_y = (hi_x - lo_x) * multiplier, (hi_y - lo_y) * multiplier
        scale = np.array([[bbox_x / rng32, 0, 0], [0, bbox_y / rng32, 0], [0, 0, 1]], F32)
        mid_x, mid_y = F32(F64(hi_x + lo_x) / 2.0), F32(F64(hi_y + lo_y) / 2.0)
        cn, sn = np.cos(-alpha), np.sin(-alpha)
        rmx, rmy = mid_x * cn - mid_y * sn, mid_x * sn + mid_y * cn
        rotation = np.array([[cn, -sn, F64(rmx / rng32) * 2.0 - 1.0],
                             [sn, cn, F64(rmy / rng32) * 2.0 - 1.0], [0, 0, 1]], F32)
        (ih, iw), (oh, ow) = input_hw, output_hw
        to_relative = np.array(
            [[2.0 / (ow - 1.0) if ow != 1 else np.inf, 0, -1],
             [0, 2.0 / (oh - 1.0) if oh != 1 else np.inf, -1], [0, 0, 1]], F32)
        to_absolute = np.array(
            [[(iw - 1.0) / 2.0, 0, (iw - 1.0) / 2.0], [0, (ih - 1.0) / 2.0, (ih - 1.0) / 2.0],
             [0, 0, 1]], F32)
        itm = _matmul(_matmul(_matmul(to_absolute, rotation), scale), to_relative)
    out = np.zeros((4, 4), F32)
    out[0, [0, 1, 3]] = itm[0]
    out[1, [0, 1, 3]] = itm[1]
    out[2, :3] = itm[2]
    out[3, 3] = 1.0
    return out.reshape(1, 4, 4)


def _l2tm_v2(x, left, right, idx, target, out_h, out_w, scale_x, scale_y) -> np.ndarray:
    with np.errstate(all="ignore"):
        x = x.astype(F32, copy=False)
        angle = np.arctan2(x[3 * right + 1] - x[3 * left + 1], x[3 * right] - x[3 * left])
        r = F32(target - angle)
        c, s = np.cos(r), np.sin(r)
        px, py = x[3 * idx], x[3 * idx + 1]
        # t_rotation * (x, y, 1): sums from 0, the z column adds 0 * 1
        rx = (c * px + (-s) * py) + F32(0)
        ry = (s * px + c * py) + F32(0)
        hi_x, lo_x, hi_y, lo_y = _running_extremes(rx) + _running_extremes(ry)
        width, height = hi_x - lo_x, hi_y - lo_y
        mx, my = (lo_x + hi_x) / F32(2), (lo_y + hi_y) / F32(2)
        ci, si = np.cos(-r), np.sin(-r)
        crop_x = (ci * mx + (-si) * my) + F32(0)
        crop_y = (si * mx + ci * my) + F32(0)
        t = np.eye(4, dtype=F32)
        shift = np.eye(4, dtype=F32)
        shift[0, 3], shift[1, 3] = crop_x, crop_y
        t = _matmul(t, shift)
        cr, sr = np.cos(-r), np.sin(-r)
        rot = np.eye(4, dtype=F32)
        rot[:2, :2] = [[cr, -sr], [sr, cr]]
        t = _matmul(t, rot)
        scale = np.eye(4, dtype=F32)
        scale[0, 0] = scale_x * width / F32(out_w)
        scale[1, 1] = scale_y * height / F32(out_h)
        t = _matmul(t, scale)
        shift2 = np.eye(4, dtype=F32)
        shift2[0, 3], shift2[1, 3] = -1.0 * (out_w / 2.0), -1.0 * (out_h / 2.0)
        t = _matmul(t, shift2)
    return t.reshape(1, 4, 4)


def _running_extremes(v: np.ndarray) -> tuple[np.float32, np.float32]:
    """(max, min) as `if (m < v[i]) m = v[i]` from m = v[0]: a NaN first value sticks, later
    NaNs are skipped."""
    if np.isnan(v[0]):
        return v[0], v[0]
    return np.fmax.reduce(v), np.fmin.reduce(v)


# ------------------------------------------------------------------------------------------
# TransformTensorBilinear
# ------------------------------------------------------------------------------------------


@float_kernel(nn.GenericOp, custom="TransformTensorBilinear")
def transform_tensor_bilinear(op: Operation):
    return _transform_tensor(op, "TransformTensorBilinear", (1, 2))


@float_kernel(nn.GenericOp, custom="TransformTensor")
def transform_tensor(op: Operation):
    return _transform_tensor(op, "TransformTensor", (1,))


def _transform_tensor(op: Operation, code: str, versions: tuple[int, ...]):
    version = _version(op, code, versions)
    _check_operands(op, code, 2)
    opts = custom_options(op)
    if version == 1:
        if "mode" in opts and opts["mode"] != "bilinear":
            raise _fail(code, f"supports only bilinear interpolation, got mode {opts['mode']!r}")
        size = _ints_opt(opts, "output_size", code)[:2] if "output_size" in opts else None
    else:
        keys = ("output_height", "output_width")
        size = [_int_opt(opts, k, code) for k in keys] if all(k in opts for k in keys) else None
    in_shape, out_shape = tensor_shape(op.inputs[0]), tensor_shape(op.outputs[0])
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise _fail(code, f"takes and gives rank-4 tensors, got {list(in_shape)} -> "
                          f"{list(out_shape)}")
    if out_shape[0] != 1:
        raise _fail(code, f"writes batch 0 only: the output batch must be 1, got {out_shape[0]}")
    out_h, out_w, out_c = out_shape[1:]
    if (out_h < 0 or out_w < 0) and size is not None and len(size) == 2:
        out_h, out_w = size
    if out_h < 0 or out_w < 0:
        raise _fail(code, f"the output size is dynamic ({list(out_shape)}) and no option gives it")
    if in_shape[3] >= 0 and out_c > in_shape[3]:
        raise _fail(code, f"the output has {out_c} channels, the input only {in_shape[3]}")
    _check_matrix(op, code)
    half_pixel = version == 2
    ox, oy = np.arange(out_w, dtype=F32), np.arange(out_h, dtype=F32)[:, None]

    def run(data: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        m = matrix.reshape(-1)[:8].astype(F32)
        if half_pixel:  # x_transform[3] += x0 * 0.5 + x1 * 0.5 - 0.5, in double
            for r in (0, 4):
                m[r + 3] = F32(F64(m[r + 3]) + (F64(m[r]) * 0.5 + F64(m[r + 1]) * 0.5 - 0.5))
        with np.errstate(all="ignore"):
            tx = ((m[0] * ox + m[1] * oy) + m[2] * F32(0)) + m[3] * F32(1)
            ty = ((m[4] * ox + m[5] * oy) + m[6] * F32(0)) + m[7] * F32(1)
            return _bilinear(data[0, :, :, :out_c], tx, ty)[None]

    return run


def _bilinear(img: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Sample img [H, W, C] at float32 points (tx, ty) [OH, OW] as the C++ does: 0 outside
    [0, W - 1] x [0, H - 1]; corners past the last row/column (or a NaN point's) read 0."""
    h, w, c = img.shape
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    fx, fy = np.floor(tx), np.floor(ty)
    rc, lc = (tx - fx)[..., None], (ty - fy)[..., None]
    padded = np.zeros((h + 1, w + 1, c), F32)  # row h and column w read as 0
    padded[:h, :w] = img
    usable = ~outside & np.isfinite(tx) & np.isfinite(ty)
    x0 = np.where(usable, fx, w).astype(np.int64)
    y0 = np.where(usable, fy, h).astype(np.int64)
    x1 = np.where(usable, np.minimum(x0 + 1, w), w)
    y1 = np.where(usable, np.minimum(y0 + 1, h), h)
    q11, q21 = padded[y0, x0].astype(F64), padded[y0, x1]
    q12, q22 = padded[y1, x0].astype(F64), padded[y1, x1]
    # upper = (1.0 - rc) * q11 + rc * q21: a double product plus a float one, to float
    upper = ((1.0 - rc.astype(F64)) * q11 + (rc * q21).astype(F64)).astype(F32)
    lower = ((1.0 - rc.astype(F64)) * q12 + (rc * q22).astype(F64)).astype(F32)
    result = ((lc * lower).astype(F64) + (1.0 - lc.astype(F64)) * upper).astype(F32)
    return np.where(outside[..., None], F32(0), result)


# ------------------------------------------------------------------------------------------
# TransformLandmarks
# ------------------------------------------------------------------------------------------


@float_kernel(nn.GenericOp, custom="TransformLandmarks")
def transform_landmarks(op: Operation):
    code = "TransformLandmarks"
    version = _version(op, code)
    _check_operands(op, code, 2)
    in_shape, out_shape = tensor_shape(op.inputs[0]), tensor_shape(op.outputs[0])
    rank = 4 if version == 1 else 3
    if len(in_shape) != rank:
        raise _fail(code, f"v{version} takes landmarks of rank {rank}, got {list(in_shape)}")
    if out_shape != in_shape:
        raise _fail(code, f"the output shape {list(out_shape)} must be the input's "
                          f"{list(in_shape)}")
    if in_shape[0] != 1:
        raise _fail(code, f"writes the first {'batch' if rank == 4 else 'row'} only: "
                          f"dimension 0 must be 1, got {in_shape[0]}")
    if version == 1:  # v2 reads no options at all
        opts = custom_options(op)
        dimensions = _int_opt(opts, "dimensions", code, 3)
        scale = _float_opt(opts, "scale", code, 1.0)
        if scale == 0:
            raise _fail(code, "option 'scale' must not be 0")
    else:
        dimensions, scale = in_shape[-1], F32(1)
    if dimensions not in (2, 3):
        raise _fail(code, f"landmarks must have 2 or 3 dimensions, got {dimensions}")
    if in_shape[-1] >= 0 and in_shape[-1] % dimensions:
        raise _fail(code, f"the last dimension {in_shape[-1]} is not a multiple of {dimensions}")
    _check_matrix(op, code)

    def run(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        m = matrix.reshape(-1)[:8].astype(F32)
        m[3], m[7] = m[3] * scale, m[7] * scale
        out = np.array(landmarks, dtype=F32, copy=True)
        points = out.reshape(*out.shape[:-1], -1, dimensions)
        x, y = points[..., 0].copy(), points[..., 1].copy()
        with np.errstate(all="ignore"):
            points[..., 0] = ((m[0] * x + m[1] * y) + m[2] * F32(0)) + m[3] * F32(1)
            points[..., 1] = ((m[4] * x + m[5] * y) + m[6] * F32(0)) + m[7] * F32(1)
        return out

    return run
