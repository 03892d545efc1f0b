"""Helpers shared by the kernel families: element types, constant decoding, fused
activations and TFLite's padding rule. Imports only numpy and xDSL (and qcc.dialects)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qcc.dialects import nn
from qcc.dialects.ir import decode_dense, element_dtype
from xdsl.ir import Attribute, Operation, SSAValue

from . import numba_kernels as nk

F32 = np.float32

# ------------------------------------------------------------------------------------------
# Element types
# ------------------------------------------------------------------------------------------


def tensor_shape(value: SSAValue | Attribute) -> tuple[int, ...]:
    t = value.type if isinstance(value, SSAValue) else value
    return tuple(int(d) for d in t.get_shape())  # type: ignore[attr-defined]


def tensor_dtype(value: SSAValue | Attribute) -> np.dtype | None:
    t = value.type if isinstance(value, SSAValue) else value
    elt = t.get_element_type()  # type: ignore[attr-defined]
    return element_dtype(elt)


# ------------------------------------------------------------------------------------------
# Constants
# ------------------------------------------------------------------------------------------





def constant_value(value: SSAValue | None) -> np.ndarray | None:
    """The value of an operand defined by `nn.constant`, or None if it is not constant."""
    if value is None:
        return None
    owner = value.owner
    if isinstance(owner, nn.ConstantOp):
        return decode_dense(owner.value)
    return None


def as_f32(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy-if-needed of `array` (widening float16 weights)."""
    return np.ascontiguousarray(array, dtype=F32)


# ------------------------------------------------------------------------------------------
# Op properties
# ------------------------------------------------------------------------------------------


def ints(attr) -> tuple[int, ...]:
    if attr is None:
        return ()
    return tuple(int(v) for v in attr.get_values())


def int_prop(attr, default: int = 0) -> int:
    return default if attr is None else int(attr.value.data)


def bool_prop(attr, default: bool = False) -> bool:
    return default if attr is None else bool(attr.value.data)


def float_prop(attr, default: float = 0.0) -> float:
    return default if attr is None else float(attr.value.data)


def activation_of(op: Operation) -> str:
    act = op.properties.get("fused_activation")
    return act.data if act is not None else "NONE"  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------
# Fused activations (applied in place on a buffer the kernel owns)
# ------------------------------------------------------------------------------------------


FLT_MAX = float(np.finfo(np.float32).max)

# (lo, hi) clamp bounds of the clamp-type activations, for kernels that fuse the clamp. They
# are TFLite's CalculateActivationRange: NONE is [lowest, max] of float32, not [-inf, inf],
# so the reference kernels turn an infinite result into +-FLT_MAX (a NaN stays NaN: the clamp
# is std::min(std::max(x, lo), hi), see numba_kernels.clamp). XNNPACK (LiteRT's default
# delegate) does not clamp NONE; qcc follows the reference kernels, BUILTIN_REF.
ACTIVATION_BOUNDS: dict[str, tuple[float, float]] = {
    "NONE": (-FLT_MAX, FLT_MAX),
    "RELU": (0.0, FLT_MAX),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def clamp_inplace(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clamp `x` (an array the kernel owns) in place to [lo, hi]."""
    if x.flags.c_contiguous:
        flat = x.reshape(-1)
        nk.clamp(flat, flat, lo, hi)
    else:
        np.maximum(x, lo, out=x)
        np.minimum(x, hi, out=x)
    return x


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def inplace_activation(
    op: Operation, *, clamps_none: bool = True
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The op's fused activation as a function applied in place to a result buffer the
    kernel owns. NONE clamps to +-FLT_MAX as TFLite's reference kernels do (infinities become
    finite); ops without a `fused_activation` (MAXIMUM, ...) and ops whose TFLite kernel
    ignores it (CONCATENATION: `clamps_none=False`) get None for NONE."""
    act = activation_of(op)
    if act == "NONE" and (not clamps_none or "fused_activation" not in op.properties):
        return None
    if act == "TANH":
        return _tanh
    if act not in ACTIVATION_BOUNDS:
        raise ValueError(f"unknown fused activation {act!r}")
    lo, hi = ACTIVATION_BOUNDS[act]
    return lambda x: clamp_inplace(x, lo, hi)


# ------------------------------------------------------------------------------------------
# TFLite's padding rule
# ------------------------------------------------------------------------------------------


def same_padding(in_size: int, kernel: int, stride: int, dilation: int, out_size: int) -> tuple[int, int]:
    """(before, after) padding as TFLite's ComputePaddingWithOffset computes it: the total
    is max((out - 1) * stride + effective_kernel - in, 0); `before` is half of it (rounded
    down), the odd pixel goes after. VALID outputs give a total of 0."""
    effective = (kernel - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


def custom_options(op: Operation) -> dict:
    """A custom op's options as a dict, decoded from the flexbuffer map its operator carries
    (how MediaPipe's custom ops read theirs: `flexbuffers::GetRoot(...).AsMap()`); an empty
    dict when the op has none. Raises ValueError naming the op when the bytes are not a
    flexbuffer map (the executor reports it as the op's own failure)."""
    from flatbuffers import flexbuffers

    assert isinstance(op, nn.GenericOp)
    raw = op.option_bytes
    if not raw:
        return {}
    try:
        value = flexbuffers.Loads(raw)
    except Exception as e:  # a malformed flexbuffer: IndexError, struct.error, ...
        raise ValueError(
            f"custom op '{op.op_name.data}': its options are not a flexbuffer map ({e})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"custom op '{op.op_name.data}': its options are not a flexbuffer map "
            f"(a {type(value).__name__})"
        )
    return value
