"""int8 element-wise kernels: ADD, SUB, MUL, MAXIMUM, MINIMUM, PRELU, LEAKY_RELU.

Each transcribes the kernel LiteRT's reference resolver (`BUILTIN_REF`) runs for int8
tensors, bit for bit (TFLITE_INT8_SPEC.md §5; LRT `tflite/kernels/add.cc`, `sub.cc`,
`mul.cc`, `activations.cc` and `internal/reference/integer_ops/add.h`, `mul.h`,
`reference/sub.h`, `prelu.h`, `leaky_relu.h`):

* ADD / SUB (`add_i8`, `sub_i8`): both inputs are brought to a common scale with 20 bits
  of headroom, `v_i = mbqm((q_i - zp_i) << 20, m_i, shift_i)`, then
  `out = clamp(mbqm(v1 ± v2, m_out, shift_out) + zp_out, lo, hi)`; the multipliers come from
  `fixedpoint.add_sub_params` (double precision, as the C++ Prepare).
* MUL (`mul_i8`): `out = clamp(zp_out + mbqm((q1 - zp1)(q2 - zp2), m, shift), lo, hi)` with
  `(m, shift) = QuantizeMultiplier(s1 * s2 / s_out)`, the product evaluated in float32.
* MAXIMUM / MINIMUM (`maximum_i8`, `minimum_i8`): max / min of the stored values (the
  operands share the output's scale and zero point; TFLite does not rescale either).
* PRELU (`prelu_i8`): two multipliers, `s_in / s_out` for x >= zp_in and
  `s_in * s_alpha / s_out` (on `(q - zp_in)(alpha - zp_alpha)`) below it, both float32.
* LEAKY_RELU (`leaky_relu_i8`): two multipliers, `s_in / s_out` and `s_in * alpha / s_out`
  (float32); a negative alpha uses |m| and negates the product, as the reference does.

Fused activations (ADD/SUB/MUL) clamp to `CalculateActivationRangeQuantized`'s bounds.
Broadcasting follows numpy (which is what TFLite's Broadcast*Slow loops compute).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..fixedpoint import add_sub_params, mbqm, quantize_multiplier
from .int8_lowering import activation_bounds, constant_array, qparams, shape
from .int8_registry import lowering, runner

# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


def _ew_broadcast_flat(x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """`x` broadcast to `out_shape`, flattened and contiguous (a copy only if needed)."""
    x = np.asarray(x)
    if x.shape != tuple(out_shape):
        x = np.broadcast_to(x.reshape((1,) * (len(out_shape) - x.ndim) + x.shape), out_shape)
    return np.ascontiguousarray(x).reshape(-1)


@njit(cache=True, nogil=True)
def _ew_add_sub_loop(a, b, sign, zp1, zp2, left_shift, m1, sh1, m2, sh2, mo, sho, zpo, lo, hi, out):  # pragma: no cover - jitted
    """ADD (sign = 1) / SUB (sign = -1), reference integer_ops::AddElementwise /
    reference_ops::SubElementwise."""
    for i in range(out.size):
        v1 = mbqm((np.int64(a[i]) - zp1) << left_shift, m1, sh1)
        v2 = mbqm((np.int64(b[i]) - zp2) << left_shift, m2, sh2)
        raw = v1 + v2 if sign > 0 else v1 - v2
        v = mbqm(raw, mo, sho) + zpo
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _ew_mul_loop(a, b, zp1, zp2, m, sh, zpo, lo, hi, out):  # pragma: no cover - jitted
    """MUL, reference integer_ops::MulElementwise."""
    for i in range(out.size):
        v = mbqm((np.int64(a[i]) - zp1) * (np.int64(b[i]) - zp2), m, sh) + zpo
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


@njit(cache=True, nogil=True)
def _ew_max_min_loop(a, b, is_max, out):  # pragma: no cover - jitted
    for i in range(out.size):
        x = a[i]
        y = b[i]
        if is_max:
            out[i] = x if x > y else y
        else:
            out[i] = x if x < y else y


@njit(cache=True, nogil=True)
def _ew_prelu_loop(x, alpha, zp_in, zp_alpha, m1, sh1, m2, sh2, zpo, out):  # pragma: no cover - jitted
    """PRELU, reference_ops::Prelu / BroadcastPrelu4DSlow (alpha already broadcast)."""
    for i in range(out.size):
        v = np.int64(x[i]) - zp_in
        if v >= 0:
            r = mbqm(v, m1, sh1)
        else:
            r = mbqm(v * (np.int64(alpha[i]) - zp_alpha), m2, sh2)
        r += zpo
        if r < -128:
            r = -128
        elif r > 127:
            r = 127
        out[i] = r


@njit(cache=True, nogil=True)
def _ew_leaky_relu_loop(x, zp_in, m_id, sh_id, m_alpha, sh_alpha, negate, zpo, out):  # pragma: no cover - jitted
    """LEAKY_RELU, reference_ops::QuantizeLeakyRelu (m_alpha is |multiplier|; `negate` when
    alpha < 0)."""
    for i in range(out.size):
        v = np.int64(x[i]) - zp_in
        if v >= 0:
            r = zpo + mbqm(v, m_id, sh_id)
        else:
            s = mbqm(v, m_alpha, sh_alpha)
            r = zpo - s if negate else zpo + s
        if r < -128:
            r = -128
        elif r > 127:
            r = 127
        out[i] = r


@runner("add_i8", "sub_i8")
def run_add_sub_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    a = _ew_broadcast_flat(inputs[0], out_shape)
    b = _ew_broadcast_flat(inputs[1], out_shape)
    out = np.empty(out_shape, np.int8)
    _ew_add_sub_loop(
        a, b, params["sign"], params["zp1"], params["zp2"], params["left_shift"],
        params["m1"], params["shift1"], params["m2"], params["shift2"],
        params["m_out"], params["shift_out"], params["zp_out"], params["lo"], params["hi"],
        out.reshape(-1),
    )
    return [out]


@runner("mul_i8")
def run_mul_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    a = _ew_broadcast_flat(inputs[0], out_shape)
    b = _ew_broadcast_flat(inputs[1], out_shape)
    out = np.empty(out_shape, np.int8)
    _ew_mul_loop(
        a, b, params["zp1"], params["zp2"], params["m"], params["shift"], params["zp_out"],
        params["lo"], params["hi"], out.reshape(-1),
    )
    return [out]


@runner("maximum_i8", "minimum_i8")
def run_max_min_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    a = _ew_broadcast_flat(inputs[0], out_shape)
    b = _ew_broadcast_flat(inputs[1], out_shape)
    out = np.empty(out_shape, np.int8)
    _ew_max_min_loop(a, b, bool(params["is_max"]), out.reshape(-1))
    return [out]


@runner("prelu_i8")
def run_prelu_i8(inputs, params):
    out_shape = tuple(params["out_shape"])
    x = _ew_broadcast_flat(inputs[0], out_shape)
    alpha = params["alpha"] if "alpha" in params else inputs[1]
    alpha = _ew_broadcast_flat(alpha, out_shape)
    out = np.empty(out_shape, np.int8)
    _ew_prelu_loop(
        x, alpha, params["zp_in"], params["zp_alpha"], params["m1"], params["shift1"],
        params["m2"], params["shift2"], params["zp_out"], out.reshape(-1),
    )
    return [out]


@runner("leaky_relu_i8")
def run_leaky_relu_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    _ew_leaky_relu_loop(
        x.reshape(-1), params["zp_in"], params["m_identity"], params["shift_identity"],
        params["m_alpha"], params["shift_alpha"], bool(params["negate_alpha"]),
        params["zp_out"], out.reshape(-1),
    )
    return [out]


# ---------------------------------------------------------------------------------------------
# Compile time
# ---------------------------------------------------------------------------------------------


def _ew_int8_params(*values):
    """(scale, zp) of each value, or None if one is not a per-tensor int8 tensor."""
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


@lowering("nn.add", "nn.sub")
def lower_add_sub(op):
    qp = _ew_int8_params(op.lhs, op.rhs, op.output)
    if qp is None:
        return None
    (s1, zp1), (s2, zp2), (so, zpo) = qp
    p = add_sub_params(s1, s2, so, 20)
    if op.name == "nn.add" and p["shift_out"] > 0:
        return None  # TFLite's ADD Prepare rejects an output multiplier >= 1
    lo, hi = activation_bounds(op)
    is_add = op.name == "nn.add"
    return "add_i8" if is_add else "sub_i8", {
        "sign": 1 if is_add else -1,
        "zp1": zp1,
        "zp2": zp2,
        "left_shift": p["left_shift"],
        "m1": p["m1"],
        "shift1": p["shift1"],
        "m2": p["m2"],
        "shift2": p["shift2"],
        "m_out": p["m_out"],
        "shift_out": p["shift_out"],
        "zp_out": zpo,
        "lo": lo,
        "hi": hi,
        "out_shape": list(shape(op.output)),
    }


@lowering("nn.mul")
def lower_mul(op):
    qp = _ew_int8_params(op.lhs, op.rhs, op.output)
    if qp is None:
        return None
    (s1, zp1), (s2, zp2), (so, zpo) = qp
    real = np.float32(s1) * np.float32(s2) / np.float32(so)  # float32, as mul.cc
    m, sh = quantize_multiplier(float(real))
    lo, hi = activation_bounds(op)
    return "mul_i8", {
        "zp1": zp1,
        "zp2": zp2,
        "m": m,
        "shift": sh,
        "zp_out": zpo,
        "lo": lo,
        "hi": hi,
        "out_shape": list(shape(op.output)),
    }


@lowering("nn.maximum", "nn.minimum")
def lower_max_min(op):
    if _ew_int8_params(op.lhs, op.rhs, op.output) is None:
        return None
    is_max = op.name == "nn.maximum"
    return "maximum_i8" if is_max else "minimum_i8", {
        "is_max": is_max,
        "out_shape": list(shape(op.output)),
    }


@lowering("nn.prelu")
def lower_prelu(op):
    qp = _ew_int8_params(op.input, op.alpha, op.output)
    if qp is None:
        return None
    (si, zpi), (sa, zpa), (so, zpo) = qp
    f32 = np.float32
    m1, sh1 = quantize_multiplier(float(f32(si) / f32(so)))
    m2, sh2 = quantize_multiplier(float(f32(si) * f32(sa) / f32(so)))
    params = {
        "zp_in": zpi,
        "zp_alpha": zpa,
        "m1": m1,
        "shift1": sh1,
        "m2": m2,
        "shift2": sh2,
        "zp_out": zpo,
        "out_shape": list(shape(op.output)),
    }
    alpha = constant_array(op.alpha)
    if alpha is not None:
        params["alpha"] = np.ascontiguousarray(alpha, dtype=np.int8)
        return "prelu_i8", params, [0]
    return "prelu_i8", params


@lowering("nn.leaky_relu")
def lower_leaky_relu(op):
    qp = _ew_int8_params(op.input, op.output)
    if qp is None:
        return None
    (si, zpi), (so, zpo) = qp
    f32 = np.float32
    alpha = f32(op.alpha.value.data)
    m_alpha, sh_alpha = quantize_multiplier(float(f32(si) * alpha / f32(so)))
    m_id, sh_id = quantize_multiplier(float(f32(si) / f32(so)))
    return "leaky_relu_i8", {
        "zp_in": zpi,
        "m_identity": m_id,
        "shift_identity": sh_id,
        "m_alpha": abs(m_alpha),
        "shift_alpha": sh_alpha,
        "negate_alpha": m_alpha < 0,
        "zp_out": zpo,
    }
