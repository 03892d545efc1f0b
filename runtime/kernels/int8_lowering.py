"""Compile-time helpers for int8 lowerings (see `int8_registry`): read quantization
parameters, constants and fused activations from xdsl ops.

Only lowering functions may use this module (it imports xdsl and qcc.dialects); the
`--emit=numba` artifact never contains it.

    qparams(value)            -> (scale: float (float32 value), zero_point: int)   per-tensor
    axis_qparams(value)       -> (scales: float32[C], zero_points: int64[C], axis)  per-axis
                                 (a per-tensor type gives C == 1 and axis -1)
    quant_type(value)         -> the QuantizedType of a tensor value, or None
    is_quantized_value(value) -> bool
    constant_array(value)     -> storage values of an `nn.constant` operand (None if not)
    activation_bounds(op, result=None) -> (lo, hi) clamp of the op's fused activation
                                 on its (int8) result: CalculateActivationRangeQuantized
    shape(value), storage_dtype(value), location(op)
"""

from __future__ import annotations

import numpy as np
from qcc.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType
from xdsl.ir import Operation, SSAValue

from ..fixedpoint import activation_range_int8
from .common import activation_of, constant_value, tensor_dtype, tensor_shape


def quant_type(value: SSAValue) -> QuantizedType | None:
    t = value.type
    get = getattr(t, "get_element_type", None)
    if get is None:
        return None
    elt = get()
    return elt if isinstance(elt, QuantizedType) else None


def is_quantized_value(value: SSAValue) -> bool:
    return quant_type(value) is not None


def qparams(value: SSAValue) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized value; the scale is rounded to float32
    (what the flatbuffer stores and the runtime starts from), returned as a Python float."""
    q = quant_type(value)
    if not isinstance(q, UniformQuantizedType):
        raise TypeError(f"expected a per-tensor quantized tensor, got {value.type}")
    return float(np.float32(q.scale)), int(q.zero_point)


def axis_qparams(value: SSAValue) -> tuple[np.ndarray, np.ndarray, int]:
    """(scales float32[C], zero_points int64[C], axis) of a quantized value (per-tensor types
    give one entry and axis -1)."""
    q = quant_type(value)
    if isinstance(q, UniformQuantizedPerAxisType):
        return (
            np.asarray(q.scales, np.float32),
            np.asarray(q.zero_points, np.int64),
            int(q.axis),
        )
    if isinstance(q, UniformQuantizedType):
        return np.asarray([q.scale], np.float32), np.asarray([q.zero_point], np.int64), -1
    raise TypeError(f"expected a quantized tensor, got {value.type}")


def constant_array(value: SSAValue | None) -> np.ndarray | None:
    """The stored (integer, for quantized constants) values of an `nn.constant` operand."""
    return constant_value(value)


def activation_bounds(op: Operation, result: SSAValue | None = None) -> tuple[int, int]:
    """Clamp bounds of the op's fused activation on its quantized result."""
    result = op.results[0] if result is None else result
    q = quant_type(result)
    lo, hi = (q.storage_min, q.storage_max) if q is not None else (-128, 127)
    scale, zp = qparams(result)
    return activation_range_int8(activation_of(op), scale, zp, lo, hi)


def shape(value: SSAValue) -> tuple[int, ...]:
    return tensor_shape(value)


def storage_dtype(value: SSAValue) -> np.dtype | None:
    return tensor_dtype(value)


def location(op: Operation) -> str:
    from ..executor import location_text

    return location_text(op.location) or op.name


def int8_params(*values: SSAValue) -> list[tuple[float, int]] | None:
    """(scale, zero_point) of each value, or None if one is not a per-tensor int8 tensor."""
    out = []
    for v in values:
        try:
            s, zp = qparams(v)
        except TypeError:
            return None
        t = v.type.get_element_type()
        if getattr(t, "storage_bits", None) != 8 or not t.is_signed:
            return None
        out.append((s, zp))
    return out
