"""int8 data movement: RESHAPE, SQUEEZE, TRANSPOSE, CONCATENATION, SPLIT, SLICE,
STRIDED_SLICE, GATHER, PAD/PADV2, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE,
SPACE_TO_DEPTH.

Stored values move unchanged: TFLite requires (or, for most of these ops, silently assumes)
that input and output share scale and zero point, and its int8 kernels copy bytes. The index
logic is the float kernels' (`shape.py`, `resize.py`), run once at compile time; only the
lowering functions use it. Two ops compute:

* PAD / PADV2 (`pad_i8`) fill with the output zero point (PAD) or the stored value of the
  quantized pad constant (PADV2), as `pad.cc` does for int8.
* RESIZE_BILINEAR (`resize_bilinear_i8`) is `reference_ops::ResizeBilinearInteger`: 10-bit
  fixed-point source coordinates, `scale_10 = (2^10 * in + out / 2) / out` (align_corners:
  `(2^10 * (in - 1) + (out - 1) / 2) / (out - 1)`), `y = out_y * scale_10` (half-pixel:
  `+ scale_10 / 2 - 2^9`), `y0 = max(y / 2^10, 0)`, `y1 = min((y + 2^10 - 1) / 2^10, in - 1)`
  (C truncating divisions), the four taps weighted in 2^20 and rounded half away from zero.

Runners return fresh contiguous arrays (RESHAPE / SQUEEZE may return a view of their input;
runners never write their inputs).
"""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn

from ..fixedpoint import njit
from .int8_lowering import constant_array, qparams, quant_type, shape
from .int8_registry import DirectCall, fixed_call, runner
from .int8_vnni import _vnni_move16
from .registry import int8_lowering
from .resize import nearest_axis
from .shape import strided_slice_index
from .simd import simd_empty, simd_max, simd_min

# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _shp_resize_bilinear_loop(x, ys, y0s, y1s, xs, x0s, x1s, lo, hi, out):  # pragma: no cover - jitted
    """ResizeBilinearInteger (int8 or int16, [lo, hi] the storage range): weights in 1/1024,
    rounded shift by 20."""
    n, _, _, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in range(n):
        for oy in range(oh):
            iy = np.int64(ys[oy])
            y0 = y0s[oy]
            y1 = y1s[oy]
            wy1 = iy - np.int64(1024) * y0
            wy0 = np.int64(1024) - wy1
            for ox in range(ow):
                ix = np.int64(xs[ox])
                x0 = x0s[ox]
                x1 = x1s[ox]
                wx1 = ix - np.int64(1024) * x0
                wx0 = np.int64(1024) - wx1
                for ch in range(c):
                    acc = (
                        np.int64(x[b, y0, x0, ch]) * wy0 * wx0
                        + np.int64(x[b, y1, x0, ch]) * wy1 * wx0
                        + np.int64(x[b, y0, x1, ch]) * wy0 * wx1
                        + np.int64(x[b, y1, x1, ch]) * wy1 * wx1
                    )
                    if acc > 0:
                        v = (acc + np.int64(524288)) >> 20
                    else:
                        v = -((-(acc - np.int64(524288))) >> 20)  # C truncating division
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                    out[b, oy, ox, ch] = v


@njit(cache=True, nogil=True)
def _shp_resize_bilinear_i8(x, n, h, w, c, ys, y0s, y1s, xs, x0s, x1s, rows, out):  # pragma: no cover - jitted
    """`_shp_resize_bilinear_loop` for int8 NHWC `x` (flat, [n, h, w, c]) into flat `out`,
    separable and in int32:
    per output row, the two source rows are interpolated along x first,
    h = x[.., x0, :]·wx0 + x[.., x1, :]·wx1 (kept in `rows`, int32 [2·OW·C]: the y0 row, then
    the y1 row; reused while the next output row reads the same source rows), then
    acc = wy0·h[y0] + wy1·h[y1] over the whole row at once: the same integer as the
    reference's four products (distributivity), and it fits int32: |wx0| + |wx1| <= 2048 (a
    half-pixel source coordinate is >= −512), so |acc| <= 128·2048·2048 = 2^29. The
    rounding is the reference's (half away from zero, C truncating division by 2^20). Flat
    buffers and loops only (a slice copy or a reshape here compiles for seconds)."""
    oh = ys.size
    ow = xs.size
    width = ow * c
    half = np.int32(1 << 19)
    low = np.int32((1 << 20) - 1)
    for b in range(n):
        have0 = -1
        have1 = -1
        for oy in range(oh):
            y0 = y0s[oy]
            y1 = y1s[oy]
            if have0 != y0 and have1 == y0:  # the previous y1 row is this y0 row
                for j in range(width):
                    rows[j] = rows[width + j]
                have0 = y0
            for slot in range(2):
                y = y0 if slot == 0 else y1
                if y == (have0 if slot == 0 else have1):
                    continue
                src = (b * h + y) * w
                for ox in range(ow):
                    x0 = x0s[ox]
                    wx1 = np.int32(np.int64(xs[ox]) - np.int64(1024) * x0)
                    wx0 = np.int32(1024) - wx1
                    s0 = np.uint64((src + x0) * c)
                    s1 = np.uint64((src + x1s[ox]) * c)
                    d = np.uint64(slot * width + ox * c)
                    for ch in range(c):
                        k = np.uint64(ch)
                        rows[d + k] = np.int32(x[s0 + k]) * wx0 + np.int32(x[s1 + k]) * wx1
                if slot == 0:
                    have0 = y
                else:
                    have1 = y
            wy1 = np.int32(np.int64(ys[oy]) - np.int64(1024) * y0)
            wy0 = np.int32(1024) - wy1
            o = (b * oh + oy) * width
            for j in range(width):  # int32 throughout (Numba would widen to int64)
                acc = np.int32(rows[j] * wy0 + rows[width + j] * wy1)
                t = np.int32(acc + np.int32(half if acc > 0 else -half))
                v = np.int32(np.int32(t + np.int32(t >> np.int32(31) & low)) >> np.int32(20))
                out[o + j] = simd_min(simd_max(v, np.int32(-128)), np.int32(127))


def _shp_resize_bilinear_numpy(inputs, params):
    """`run_resize_bilinear_i8` in NumPy (`plan._Units.deferred`): the same integers as
    `_shp_resize_bilinear_i8` (each output the source rows interpolated along x, then along
    y, weights of 1024ths), rounded half away from zero by C's truncating division by 2^20
    (a right shift after adding 2^20 − 1 to a negative value), clamped."""
    x = np.asarray(inputs[0], np.int64)
    x0s, x1s, y0s, y1s = (np.asarray(params[k], np.int64) for k in ("x0", "x1", "y0", "y1"))
    wx1 = (np.asarray(params["xs"], np.int64) - 1024 * x0s)[:, None]
    wy1 = (np.asarray(params["ys"], np.int64) - 1024 * y0s)[:, None, None]

    def along_x(rows):
        return rows[:, :, x0s] * (1024 - wx1) + rows[:, :, x1s] * wx1

    acc = along_x(x[:, y0s]) * (1024 - wy1) + along_x(x[:, y1s]) * wy1
    t = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
    v = (t + np.where(t < 0, (1 << 20) - 1, 0)) >> 20
    return [np.clip(v, -128, 127).astype(np.int8).reshape(tuple(params["out_shape"]))]


@runner("reshape_i8")
def run_reshape_i8(inputs, params):
    return [np.ascontiguousarray(inputs[0]).reshape(tuple(params["out_shape"]))]


def _shape_bind_reshape(params):
    """Plan-load binding of `run_reshape_i8`: on fixed buffers (`plan._arena_line`) the
    output is a view of the input's buffer, made once (the step then costs nothing)."""
    shape = tuple(params["out_shape"])

    def run(inputs, _params):
        return [np.ascontiguousarray(inputs[0]).reshape(shape)]

    def alias(ins):
        return [ins[0].reshape(shape)]  # a fixed buffer is C-contiguous: a view

    run.alias = alias
    return run


run_reshape_i8.bind = _shape_bind_reshape


@runner("transpose_i8")
def run_transpose_i8(inputs, params):
    return [np.ascontiguousarray(np.transpose(inputs[0], tuple(params["perm"])))]


@runner("concatenation_i8")
def run_concatenation_i8(inputs, params):
    return [np.ascontiguousarray(np.concatenate([np.asarray(x) for x in inputs], axis=params["axis"]))]


@runner("split_i8")
def run_split_i8(inputs, params):
    return [np.ascontiguousarray(p) for p in np.split(inputs[0], params["parts"], axis=params["axis"])]


@runner("slice_i8")
def run_slice_i8(inputs, params):
    """Strided slicing (SLICE, STRIDED_SLICE): view the input as `view_shape`, take
    [start:stop:step] per axis (stop -1 with `stop_none` means "through index 0"), reshape."""
    x = np.asarray(inputs[0]).reshape(tuple(params["view_shape"]))
    index = tuple(
        slice(start, None if none else stop, step)
        for start, stop, step, none in zip(
            params["starts"], params["stops"], params["steps"], params["stop_none"]
        )
    )
    return [np.ascontiguousarray(x[index]).reshape(tuple(params["out_shape"]))]


@runner("gather_i8")
def run_gather_i8(inputs, params):
    batch, outer, axis_size, inner = params["batch"], params["outer"], params["axis_size"], params["inner"]
    p = np.asarray(inputs[0]).reshape(batch, outer, axis_size, inner)
    indices = params["indices"] if "indices" in params else inputs[1]
    idx = np.asarray(indices).astype(np.int64).reshape(batch, -1)
    if np.any(idx < 0) or np.any(idx >= axis_size):
        raise IndexError("GATHER index out of bounds")
    out = np.empty((batch, outer, idx.shape[1], inner), p.dtype)
    for b in range(batch):
        out[b] = p[b][:, idx[b], :]
    return [out.reshape(tuple(params["out_shape"]))]


@njit(cache=True, nogil=True)
def _shape_pad_last_axis(x, cin, cout, fill, out):  # pragma: no cover - jitted
    """out[p, :cin] = x[p], out[p, cin:] = fill for flat [rows·cin] x, [rows·cout] out,
    cin >= 16, only 16-byte moves: per row, first the fill, as 16-byte blocks of the fill
    byte from the row's end down to cin (the lowest may reach below cin), then x's 16-byte
    blocks (the last one aligned to cin), which overwrite what the fill put below cin.
    Moves by address (`_vnni_move16`): an `ndarray.view` or `np.full` here would compile
    an overload of its own (~0.4 s of a first run)."""
    rows = x.size // cin
    pattern = simd_empty(16, np.int8)
    for k in range(16):
        pattern[k] = fill
    pa = np.int64(pattern.ctypes.data)
    xa = np.int64(x.ctypes.data)
    oa = np.int64(out.ctypes.data)
    last = cin - 16
    for r in range(rows):
        s0 = xa + r * cin
        d0 = oa + r * cout
        k = cout - 16
        _vnni_move16(pa, d0 + k)
        while k > cin:
            k = simd_max(k - 16, last)  # last = cin − 16 >= 0: never below the row
            _vnni_move16(pa, d0 + k)
        j = 0
        while j < last:
            _vnni_move16(s0 + j, d0 + j)
            j += 16
        _vnni_move16(s0 + last, d0 + last)


def _shape_bind_pad(params):
    """Plan-load binding of `run_pad_i8` (see `PlanRunner`): padding of the last axis only
    (channel padding) runs as one row-wise copy + fill."""
    out_shape = tuple(params["out_shape"])
    before = params["before"]
    if params["fill_from_input"] or any(int(b) != 0 for b in before) or len(out_shape) < 1:
        return run_pad_i8
    cout = out_shape[-1]
    fill = int(params["fill"])
    direct = DirectCall(_shape_pad_last_axis)
    empty = np.empty
    i8 = np.int8

    def run(inputs, _params):
        x = inputs[0]
        cin = x.shape[-1] if x.ndim else 0
        if (x.dtype != i8 or not x.flags.c_contiguous or x.shape[:-1] != out_shape[:-1]
                or cin < 16 or cin > cout):
            return run_pad_i8(inputs, params)
        out = empty(out_shape, i8)
        direct.call(x.ravel(), cin, cout, fill, out.ravel())
        return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        x, out = ins[0], outs[0]
        cin = x.shape[-1] if x.ndim else 0
        if (x.dtype != i8 or out.dtype != i8 or out.shape != out_shape
                or not (x.flags.c_contiguous and out.flags.c_contiguous)
                or x.shape[:-1] != out_shape[:-1] or cin < 16 or cin > cout):
            return None
        return fixed_call(_shape_pad_last_axis, (x.ravel(), cin, cout, fill, out.ravel()))

    run.into = into
    run.numpy_form = lambda inputs, _params: run_pad_i8(inputs, params)  # NumPy already
    return run


@runner("pad_i8")
def run_pad_i8(inputs, params):
    x = np.asarray(inputs[0])
    if params["fill_from_input"]:
        fill = np.asarray(inputs[1]).reshape(-1)[0]
    else:
        fill = params["fill"]
    out = np.full(tuple(params["out_shape"]), fill, dtype=x.dtype)
    before = params["before"]
    out[tuple(slice(b, b + d) for b, d in zip(before, x.shape))] = x
    return [out]


run_pad_i8.bind = _shape_bind_pad


@runner("resize_bilinear_i8")
def run_resize_bilinear_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out_shape = tuple(params["out_shape"])
    out = np.empty(out_shape, np.int8)
    rows = np.empty(2 * out_shape[2] * out_shape[3], np.int32)
    _shp_resize_bilinear_i8(x.reshape(-1), *x.shape, params["ys"], params["y0"], params["y1"],
                            params["xs"], params["x0"], params["x1"], rows, out.reshape(-1))
    return [out]


run_resize_bilinear_i8.numpy_form = _shp_resize_bilinear_numpy


@runner("resize_nearest_i8")
def run_resize_nearest_i8(inputs, params):
    x = np.asarray(inputs[0])
    return [np.ascontiguousarray(x[:, params["iy"]][:, :, params["ix"]])]


@runner("depth_to_space_i8")
def run_depth_to_space_i8(inputs, params):
    """out[b, h*bs + dy, w*bs + dx, c] = in[b, h, w, (dy*bs + dx)*C + c]."""
    n, h, w, c = inputs[0].shape
    bs = params["block_size"]
    oc = c // (bs * bs)
    y = np.asarray(inputs[0]).reshape(n, h, w, bs, bs, oc).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(y).reshape(n, h * bs, w * bs, oc)]


@runner("space_to_depth_i8")
def run_space_to_depth_i8(inputs, params):
    """out[b, h, w, (dy*bs + dx)*C + c] = in[b, h*bs + dy, w*bs + dx, c]."""
    n, h, w, c = inputs[0].shape
    bs = params["block_size"]
    y = np.asarray(inputs[0]).reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(y).reshape(n, h // bs, w // bs, bs * bs * c)]


# ---------------------------------------------------------------------------------------------
# Compile time
# ---------------------------------------------------------------------------------------------


def _shp_ints(attr) -> list[int]:
    return [] if attr is None else [int(v) for v in attr.get_values()]


def _shp_int(attr, default: int = 0) -> int:
    return default if attr is None else int(attr.value.data)


def _shp_bool(attr) -> bool:
    return False if attr is None else bool(attr.value.data)


@int8_lowering(nn.ReshapeOp, nn.SqueezeOp)
def lower_reshape(op):
    return "reshape_i8", {"out_shape": list(shape(op.output))}


@int8_lowering(nn.TransposeOp)
def lower_transpose(op):
    return "transpose_i8", {"perm": _shp_ints(op.perm)}


@int8_lowering(nn.ConcatenationOp)
def lower_concatenation(op):
    if op.activation != "NONE":
        return None  # concatenation.cc: an int8 CONCATENATION with a fused activation fails
    if quant_type(op.output) is not None:
        # CONCATENATION's Prepare requires every int8 input to share the output's parameters.
        for v in op.inputs:
            if quant_type(v) is None or qparams(v) != qparams(op.output):
                return None
    return "concatenation_i8", {"axis": _shp_int(op.axis) % len(shape(op.output))}


@int8_lowering(nn.SplitOp)
def lower_split(op):
    rank = len(shape(op.input))
    return "split_i8", {"axis": _shp_int(op.axis) % rank, "parts": len(op.outputs)}


@int8_lowering(nn.SliceOp)
def lower_slice(op):
    in_shape = shape(op.input)
    begin, size = _shp_ints(op.begin), _shp_ints(op.size)
    stops = [d if s == -1 else b + s for b, s, d in zip(begin, size, in_shape)]
    return "slice_i8", {
        "view_shape": list(in_shape),
        "starts": begin,
        "stops": stops,
        "steps": [1] * len(begin),
        "stop_none": [False] * len(begin),
        "out_shape": list(shape(op.output)),
    }


@int8_lowering(nn.StridedSliceOp)
def lower_strided_slice(op):
    eff_shape, index = strided_slice_index(
        shape(op.input),
        tuple(_shp_ints(op.begin)),
        tuple(_shp_ints(op.end)),
        tuple(_shp_ints(op.strides)),
        _shp_int(op.begin_mask),
        _shp_int(op.end_mask),
        _shp_int(op.ellipsis_mask),
        _shp_int(op.new_axis_mask),
        _shp_int(op.shrink_axis_mask),
        _shp_bool(op.offset),
    )
    return "slice_i8", {
        "view_shape": list(eff_shape),
        "starts": [0 if s.start is None else int(s.start) for s in index],
        "stops": [0 if s.stop is None else int(s.stop) for s in index],
        "steps": [1 if s.step is None else int(s.step) for s in index],
        "stop_none": [s.stop is None for s in index],
        "out_shape": list(shape(op.output)),
    }


@int8_lowering(nn.GatherOp)
def lower_gather(op):
    p_shape, i_shape = shape(op.params), shape(op.indices)
    axis = _shp_int(op.axis) % len(p_shape)
    bd = _shp_int(op.batch_dims)
    if bd < 0:
        bd += len(i_shape)
    params = {
        "batch": int(np.prod(p_shape[:bd], dtype=np.int64)),
        "outer": int(np.prod(p_shape[bd:axis], dtype=np.int64)),
        "axis_size": int(p_shape[axis]),
        "inner": int(np.prod(p_shape[axis + 1 :], dtype=np.int64)),
        "out_shape": list(shape(op.output)),
    }
    indices = constant_array(op.indices)
    if indices is not None:
        params["indices"] = np.ascontiguousarray(indices, dtype=np.int64)
        return "gather_i8", params, [0]
    return "gather_i8", params


@int8_lowering(nn.PadOp)
def lower_pad(op):
    in_shape = shape(op.input)
    pads = _shp_ints(op.paddings)
    params = {
        "before": [pads[2 * i] for i in range(len(in_shape))],
        "out_shape": list(shape(op.output)),
        "fill_from_input": False,
        "fill": 0,
    }
    if op.pad_value is None:
        # PAD on int8 pads with the output zero point.
        params["fill"] = qparams(op.output)[1] if quant_type(op.output) is not None else 0
        return "pad_i8", params, [0]
    value = constant_array(op.pad_value)
    if value is None:
        params["fill_from_input"] = True
        return "pad_i8", params
    params["fill"] = int(np.asarray(value).reshape(-1)[0])
    return "pad_i8", params, [0]


def _shp_bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel: bool):
    """ComputeInterpolationValuesInteger for every output index: (scaled, lower, upper)."""

    def cdiv(a: int, b: int) -> int:  # C truncating division
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b > 0) else -q

    scale_10 = cdiv((1 << 10) * in_size + out_size // 2, out_size)
    if align_corners and out_size > 1:
        scale_10 = cdiv((1 << 10) * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    scaled = np.empty(out_size, np.int32)
    lower = np.empty(out_size, np.int64)
    upper = np.empty(out_size, np.int64)
    for v in range(out_size):
        s = v * scale_10 + scale_10 // 2 - (1 << 9) if half_pixel else v * scale_10
        scaled[v] = s
        lower[v] = max(cdiv(s, 1 << 10), 0)
        upper[v] = min(cdiv(s + (1 << 10) - 1, 1 << 10), in_size - 1)
    return scaled, lower, upper


@int8_lowering(nn.ResizeBilinearOp)
def lower_resize_bilinear(op):
    q = quant_type(op.input)
    if q is None or q.storage_bits != 8 or not q.is_signed:
        return None
    n, h, w, c = shape(op.input)
    _, oh, ow, _ = shape(op.output)
    ac, hp = _shp_bool(op.align_corners), _shp_bool(op.half_pixel_centers)
    ys, y0, y1 = _shp_bilinear_axis(h, oh, ac, hp)
    xs, x0, x1 = _shp_bilinear_axis(w, ow, ac, hp)
    return "resize_bilinear_i8", {
        "ys": ys, "y0": y0, "y1": y1, "xs": xs, "x0": x0, "x1": x1,
        "out_shape": [n, oh, ow, c],
    }


@int8_lowering(nn.ResizeNearestNeighborOp)
def lower_resize_nearest(op):
    _, h, w, _ = shape(op.input)
    _, oh, ow, _ = shape(op.output)
    ac, hp = _shp_bool(op.align_corners), _shp_bool(op.half_pixel_centers)
    return "resize_nearest_i8", {
        "iy": np.asarray(nearest_axis(h, oh, ac, hp), np.int64),
        "ix": np.asarray(nearest_axis(w, ow, ac, hp), np.int64),
    }


@int8_lowering(nn.DepthToSpaceOp)
def lower_depth_to_space(op):
    return "depth_to_space_i8", {"block_size": _shp_int(op.block_size)}


@int8_lowering(nn.SpaceToDepthOp)
def lower_space_to_depth(op):
    return "space_to_depth_i8", {"block_size": _shp_int(op.block_size)}
