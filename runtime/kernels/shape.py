"""Data movement: nn.reshape, nn.squeeze, nn.transpose, nn.concatenation, nn.split,
nn.slice, nn.strided_slice, nn.gather, nn.pad, nn.depth_to_space, nn.space_to_depth.

Results may be views of their inputs: no kernel ever writes into an operand."""

from __future__ import annotations

import numpy as np
from qcc.dialects import nn
from qcc.dialects.nn import strided_slice_ranges

from .common import (
    bool_prop,
    constant_value,
    inplace_activation,
    int_prop,
    ints,
    tensor_dtype,
    tensor_shape,
)
from .registry import float_kernel


@float_kernel(nn.ReshapeOp, nn.SqueezeOp)
def reshape(op):
    out_shape = tensor_shape(op.output)

    def run(x):
        return x.reshape(out_shape)

    return run


@float_kernel(nn.TransposeOp)
def transpose(op):
    perm = ints(op.perm)

    def run(x):
        return np.ascontiguousarray(x.transpose(perm))

    return run


@float_kernel(nn.ConcatenationOp)
def concatenation(op):
    rank = len(tensor_shape(op.output))
    axis = int_prop(op.axis) % rank
    act = inplace_activation(op, clamps_none=False)
    dtype = tensor_dtype(op.output)
    if dtype is None or dtype.kind != "f":
        act = None

    def run(*xs):
        out = np.concatenate(xs, axis=axis)
        if act is not None:
            act(out)
        return out

    return run


@float_kernel(nn.SplitOp)
def split(op):
    rank = len(tensor_shape(op.input))
    axis = int_prop(op.axis) % rank
    parts = len(op.outputs)

    def run(x):
        return tuple(np.split(x, parts, axis=axis))

    return run


@float_kernel(nn.SliceOp)
def slice_(op):
    shape = tensor_shape(op.input)
    begin = ints(op.begin)
    size = ints(op.size)
    index = tuple(
        slice(b, d if s == -1 else b + s) for b, s, d in zip(begin, size, shape)
    )

    def run(x):
        return x[index]

    return run


def strided_slice_index(*args) -> tuple[tuple[int, ...], tuple[slice, ...]]:
    """(effective input shape, per-axis slices) of a STRIDED_SLICE: the ranges
    `nn.strided_slice_ranges` defines (TFLite's rules) as numpy basic slices. Shrunk axes are
    left as length-1 slices; the caller reshapes to the result type."""
    eff_shape, taken = strided_slice_ranges(*args)
    index = []
    for r in taken:
        if isinstance(r, int):
            index.append(slice(r, r + 1))
        elif len(r) == 0:
            index.append(slice(0, 0))
        else:  # a backward range may end at -1, which a slice spells None
            index.append(slice(r.start, r.stop if r.stop >= 0 else None, r.step))
    return eff_shape, tuple(index)


@float_kernel(nn.StridedSliceOp)
def strided_slice(op):
    in_shape = tensor_shape(op.input)
    out_shape = tensor_shape(op.output)
    eff_shape, index = strided_slice_index(
        in_shape,
        ints(op.begin),
        ints(op.end),
        ints(op.strides),
        int_prop(op.begin_mask),
        int_prop(op.end_mask),
        int_prop(op.ellipsis_mask),
        int_prop(op.new_axis_mask),
        int_prop(op.shrink_axis_mask),
        bool_prop(op.offset),
    )

    def run(x):
        return x.reshape(eff_shape)[index].reshape(out_shape)

    return run


@float_kernel(nn.GatherOp)
def gather(op):
    """out = params[:axis] + indices[batch_dims:] + params[axis+1:], the first batch_dims
    dims of params and indices walked together (TFLite GATHER)."""
    p_shape = tensor_shape(op.params)
    i_shape = tensor_shape(op.indices)
    out_shape = tensor_shape(op.output)
    axis = int_prop(op.axis) % len(p_shape)
    bd = int_prop(op.batch_dims)
    if bd < 0:
        bd += len(i_shape)
    batch = int(np.prod(p_shape[:bd], dtype=np.int64))
    outer = int(np.prod(p_shape[bd:axis], dtype=np.int64))
    axis_size = p_shape[axis]
    inner = int(np.prod(p_shape[axis + 1 :], dtype=np.int64))
    n_idx = int(np.prod(i_shape[bd:], dtype=np.int64))
    const_params = constant_value(op.params)
    params_c = None
    if const_params is not None:
        params_c = const_params.reshape(batch, outer, axis_size, inner)
    bi = np.arange(batch)[:, None, None]
    oi = np.arange(outer)[None, :, None]

    def run(params, indices):
        p = params_c if params_c is not None else params.reshape(batch, outer, axis_size, inner)
        idx = np.asarray(indices).reshape(batch, 1, n_idx).astype(np.intp, copy=False)
        if bd == 0 and outer == 1:
            out = np.take(p[0, 0], idx.reshape(-1), axis=0)
        else:
            out = p[bi, oi, idx]  # [batch, outer, n_idx, inner]
        return np.ascontiguousarray(out).reshape(out_shape)

    return run


@float_kernel(nn.PadOp)
def pad(op):
    in_shape = tensor_shape(op.input)
    out_shape = tensor_shape(op.output)
    pads = ints(op.paddings)
    interior = tuple(slice(pads[2 * i], pads[2 * i] + d) for i, d in enumerate(in_shape))
    dtype = tensor_dtype(op.output)
    const_value = constant_value(op.pad_value)
    fill = 0 if const_value is None else const_value.reshape(-1)[0]

    def run(x, value=None):
        v = fill if value is None or const_value is not None else value.reshape(-1)[0]
        out = np.full(out_shape, v, dtype=x.dtype if dtype is None else dtype)
        out[interior] = x
        return out

    return run


@float_kernel(nn.DepthToSpaceOp)
def depth_to_space(op):
    """out[b, h*bs + dy, w*bs + dx, c] = in[b, h, w, (dy*bs + dx)*C + c]."""
    n, h, w, c = tensor_shape(op.input)
    bs = int_prop(op.block_size)
    oc = c // (bs * bs)

    def run(x):
        y = x.reshape(n, h, w, bs, bs, oc).transpose(0, 1, 3, 2, 4, 5)
        return np.ascontiguousarray(y).reshape(n, h * bs, w * bs, oc)

    return run


@float_kernel(nn.SpaceToDepthOp)
def space_to_depth(op):
    """out[b, h, w, (dy*bs + dx)*C + c] = in[b, h*bs + dy, w*bs + dx, c]."""
    n, h, w, c = tensor_shape(op.input)
    bs = int_prop(op.block_size)

    def run(x):
        y = x.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
        return np.ascontiguousarray(y).reshape(n, h // bs, w // bs, bs * bs * c)

    return run
