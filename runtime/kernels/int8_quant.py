"""quant.qcast (QUANTIZE: f32 -> i8, i8 -> i8 requantize) and quant.dcast (DEQUANTIZE).

Bit-exact with LiteRT's reference kernels (`reference/quantize.h` AffineQuantize,
`reference/requantize.h` Requantize, `reference/dequantize.h`):
  f32 -> i8: q = clamp(round_half_away(x / float(scale)) + zp)   divide in float32
  i8 -> i8:  q = clamp(mbqm(q_in - zp_in, m, sh) + zp_out),  (m, sh) = QuantizeMultiplier(
             double(s_in) / double(s_out))
  i8 -> f32: f = float(double(scale) * (q - zp))
"""

from __future__ import annotations

import numpy as np
from qcc.dialects import quant

from ..fixedpoint import (
    dequantize_i8,
    dequantize_np,
    quantize_f32_i8,
    quantize_f32_int_np,
    quantize_multiplier,
    requantize_i8,
    requantize_int_np,
)
from .int8_lowering import qparams, quant_type
from .int8_registry import DirectCall, fixed_call, runner
from .registry import int8_lowering


@runner("quantize_f32_i8")
def run_quantize_f32_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0], dtype=np.float32)
    out = np.empty(x.shape, np.int8)
    quantize_f32_i8(x.reshape(-1), np.float32(params["scale"]), params["zp"], out.reshape(-1))
    return [out]


@runner("requantize_i8")
def run_requantize_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.int8)
    requantize_i8(x.reshape(-1), params["m"], params["shift"], params["zp_in"], params["zp_out"],
                  out.reshape(-1))
    return [out]


@runner("dequantize_i8")
def run_dequantize_i8(inputs, params):
    x = np.ascontiguousarray(inputs[0])
    out = np.empty(x.shape, np.float32)
    dequantize_i8(x.reshape(-1), params["scale"], params["zp"], out.reshape(-1))
    return [out]


def _q_quantize_numpy(inputs, params):
    """`run_quantize_f32_i8` in NumPy (the same bits; see `plan._Units.deferred`)."""
    q = quantize_f32_int_np(inputs[0], np.float32(params["scale"]), params["zp"], -128, 127)
    return [q.astype(np.int8)]


def _q_requantize_numpy(inputs, params):
    """`run_requantize_i8` in NumPy (the same bits)."""
    return [requantize_int_np(inputs[0], params["m"], params["shift"], params["zp_in"],
                              params["zp_out"], -128, 127).astype(np.int8)]


def _q_dequantize_numpy(inputs, params):
    """`run_dequantize_i8` in NumPy (the same bits)."""
    return [dequantize_np(inputs[0], params["scale"], params["zp"])]


run_requantize_i8.numpy_form = _q_requantize_numpy


def _q_bind_quantize(params):
    """Plan-load binding of `run_quantize_f32_i8` (see `PlanRunner`): params decoded once."""
    scale, zp = np.float32(params["scale"]), int(params["zp"])
    direct, empty, i8, f32 = DirectCall(quantize_f32_i8), np.empty, np.int8, np.float32

    def run(inputs, _params):
        x = inputs[0]
        if x.dtype != f32 or not x.flags.c_contiguous:
            return run_quantize_f32_i8(inputs, params)
        out = empty(x.shape, i8)
        direct.call(x.ravel(), scale, zp, out.ravel())
        return [out]

    run.numpy_form = lambda inputs, _params: _q_quantize_numpy(inputs, params)
    return run


def _q_bind_dequantize(params):
    """Plan-load binding of `run_dequantize_i8` (see `PlanRunner`): params decoded once."""
    scale, zp = params["scale"], params["zp"]
    direct, empty, f32 = DirectCall(dequantize_i8), np.empty, np.float32

    def run(inputs, _params):
        x = inputs[0]
        if not x.flags.c_contiguous:
            return run_dequantize_i8(inputs, params)
        out = empty(x.shape, f32)
        direct.call(x.ravel(), scale, zp, out.ravel())
        return [out]

    def into(ins, outs):  # fixed buffers (`plan._arena_line`)
        x, out = ins[0], outs[0]
        if (x.dtype != np.int8 or out.dtype != f32 or x.shape != out.shape
                or not (x.flags.c_contiguous and out.flags.c_contiguous)):
            return None
        return fixed_call(dequantize_i8, (x.ravel(), scale, zp, out.ravel()))

    run.into = into
    run.numpy_form = lambda inputs, _params: _q_dequantize_numpy(inputs, params)
    return run


run_quantize_f32_i8.bind = _q_bind_quantize
run_dequantize_i8.bind = _q_bind_dequantize


def _is_i8(q) -> bool:
    return q is not None and q.storage_bits == 8 and q.is_signed


@int8_lowering(quant.QuantizeCastOp)
def lower_qcast(op):
    src, dst = op.operands[0], op.results[0]
    q_out = quant_type(dst)
    if not _is_i8(q_out) or getattr(q_out, "axis", None) is not None:
        return None
    scale, zp = qparams(dst)
    q_in = quant_type(src)
    if q_in is None:
        if str(src.type.get_element_type()) != "f32":
            return None
        return "quantize_f32_i8", {"scale": scale, "zp": zp}
    if not _is_i8(q_in) or getattr(q_in, "axis", None) is not None:
        return None
    s_in, zp_in = qparams(src)
    m, sh = quantize_multiplier(s_in / scale)
    return "requantize_i8", {"m": m, "shift": sh, "zp_in": zp_in, "zp_out": zp}


@int8_lowering(quant.DequantizeCastOp)
def lower_dcast(op):
    src = op.operands[0]
    q = quant_type(src)
    if not _is_i8(q) or getattr(q, "axis", None) is not None:
        return None
    if str(op.results[0].type.get_element_type()) != "f32":
        return None
    scale, zp = qparams(src)
    return "dequantize_i8", {"scale": scale, "zp": zp}
