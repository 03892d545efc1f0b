"""An explicit spatial PAD folded into the convolutions that read it (`_fold_pads` in
qcc/backends/numba.py): the plan reads the unpadded tensor with the convolution's top and
left padding grown, and drops the PAD step; the outputs equal LiteRT's BUILTIN_REF, which
runs the PAD and the convolution apart, bit for bit.

The cases: TF-style padding before a VALID convolution (MediaPipe's detectors: bottom and
right only, or all sides), pads wider than the filter's reach, a SAME convolution after a
PAD (both paddings add), strides 1 and 2, dilation 2, CONV_2D (3x3, and 1x1: no longer
pointwise) and DEPTHWISE_CONV_2D (3x3 and 5x5, multiplier 1 on the ring, 2 on the integer
loop), a PAD read by two convolutions, on every integer GEMM path; and what is not folded: a PAD of the channels, a
PADV2 whose value is not the zero point, a PAD that is also a model output or that another
op reads.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import REF, run_litert

import qcc
from qcc.backends.numba import build_plan, compile_module
from qcc.frontends.tflite import import_tflite
from qcc.runtime.kernels.simd import INT8_GEMM_PATHS
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator


def _pad(b, x, paddings, *, name, value=None):
    shape = b.shape(x)
    out = [d + p0 + p1 for d, (p0, p1) in zip(shape, paddings)]
    p = b.add_constant(f"{name}/paddings", np.array(paddings, np.int32))
    if value is None:
        return b.add_op(Op.PAD, [x, p], out, schema.PadOptionsT(), name=name)
    v = b.add_constant(f"{name}/value", np.array(value, np.float32))
    return b.add_op(Op.PADV2, [x, p, v], out, schema.PadV2OptionsT(), name=name)


def _model(body, shape=(1, 9, 10, 16)) -> bytes:
    b = tm.ModelBuilder()
    x = b.add_input("x", list(shape))
    rng = np.random.default_rng(3)
    outs = body(b, rng, x)
    b.mark_output(*(outs if isinstance(outs, tuple) else (outs,)))
    return b.build()


def _quantized(content: bytes) -> qcc.Model:
    model = qcc.Model(import_tflite(content))
    rng = np.random.default_rng(0)
    samples = [[rng.uniform(-1, 1, t.shape).astype(np.float32) for t in model.inputs]
               for _ in range(4)]
    return qcc.quantize(model, representative_dataset=samples, target="reference")


def _kernels(q: qcc.Model) -> list[str]:
    return [s.kernel for s in build_plan(q.module).steps]


def _assert_bit_exact(q: qcc.Model) -> None:
    content = q.to_tflite()
    compiled = compile_module(q.module)
    rng = np.random.default_rng(7)
    for scale in (1.0, 4.0):  # within and beyond the calibrated range
        x = [(rng.uniform(-1, 1, t.shape) * scale).astype(np.float32) for t in q.inputs]
        want = run_litert(content, x, REF)
        got = compiled.run(x)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_array_equal(g, w)


VALID, SAME = tm.VALID, tm.SAME

FOLDED_CASES = {  # name: (convolution, pads ((top, bottom), (left, right)), options; out: channels)
    "conv3x3_valid_bottom_right": ("conv3x3", ((0, 1), (0, 1)), dict(out=24, stride=2, padding=VALID)),
    "conv3x3_valid_all_sides": ("conv3x3", ((1, 1), (1, 1)), dict(out=24, padding=VALID)),
    "conv3x3_same_after_pad": ("conv3x3", ((2, 0), (1, 3)), dict(out=8, stride=2, padding=SAME)),
    "conv3x3_dilated_wide_pad": ("conv3x3", ((4, 3), (3, 4)), dict(dilation=2, padding=VALID)),
    "conv1x1_after_pad": ("conv1x1", ((1, 2), (2, 1)), dict(padding=VALID)),
    "depthwise3x3_valid_bottom_right": ("dw3x3", ((0, 1), (0, 1)), dict(stride=2, padding=VALID)),
    "depthwise5x5_valid_all_sides": ("dw5x5", ((2, 2), (2, 2)), dict(padding=VALID)),
    "depthwise3x3_wide_pad_stride2": ("dw3x3", ((3, 4), (5, 2)), dict(stride=2, padding=VALID)),
    "depthwise3x3_same_after_pad": ("dw3x3", ((1, 0), (0, 1)), dict(padding=SAME)),
    "depthwise3x3_multiplier2": ("dw3x3", ((1, 1), (1, 1)), dict(multiplier=2, padding=VALID)),
}


def _padded_convolution(kind, pads, options):
    """The body of a FOLDED_CASES model: a PAD of H and W, then the convolution."""
    def body(b, r, x):
        p = _pad(b, x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], name="p")
        if kind.startswith("conv"):
            opts = dict(options)
            return tm._conv_2d(b, r, p, opts.pop("out", 16), int(kind[4]), name="c", **opts)
        return tm._depthwise_conv_2d(b, r, p, int(kind[2]), name="d", **options)

    return body


FOLDED = {name: _padded_convolution(*case) for name, case in FOLDED_CASES.items()}


def _two_readers(b, r, x):
    p = _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 0]], name="p")
    return (tm._depthwise_conv_2d(b, r, p, 3, name="d", padding=VALID),
            tm._conv_2d(b, r, p, 8, 3, name="c", stride=2, padding=VALID))


FOLDED["pad_read_by_two_convolutions"] = _two_readers


@pytest.mark.parametrize("path", INT8_GEMM_PATHS)
@pytest.mark.parametrize("name", sorted(FOLDED))
def test_pad_folded_into_convolution_is_bit_exact(name, path, monkeypatch):
    """On every integer GEMM path the host runs (the convolutions' padded copies and the
    depthwise rings differ per path), the others switched off; the VNNI path under emulation
    in test_vnni_emulated.py."""
    monkeypatch.setenv("QCC_INT8_GEMM", path)
    q = _quantized(_model(FOLDED[name]))
    kernels = _kernels(q)
    assert "pad_i8" not in kernels, kernels
    assert any(k in ("conv2d_i8", "depthwise_conv2d_i8") for k in kernels), kernels
    _assert_bit_exact(q)


def _pad_also_added(b, r, x):
    p = _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 0]], name="p")
    d = tm._depthwise_conv_2d(b, r, p, 3, name="d", stride=1, padding=SAME)
    return b.add_op(Op.ADD, [p, d], b.shape(d), schema.AddOptionsT(), name="a")


KEPT = {
    "channel_pad": lambda b, r, x: tm._conv_2d(
        b, r, _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 8]], name="p"), 8, 3, name="c",
        padding=VALID),
    "padv2_other_value": lambda b, r, x: tm._depthwise_conv_2d(
        b, r, _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 0]], name="p", value=0.75), 3,
        name="d", padding=VALID),
    "pad_is_an_output": lambda b, r, x: (
        (p := _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 0]], name="p")),
        tm._depthwise_conv_2d(b, r, p, 3, name="d", padding=VALID)),
    "pad_also_read_by_add": _pad_also_added,
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_pad_kept_where_it_cannot_fold(name):
    q = _quantized(_model(KEPT[name]))
    assert "pad_i8" in _kernels(q)
    _assert_bit_exact(q)


def test_unfused_plan_keeps_the_pad():
    """`build_plan(fuse=False)` (the sensitivity analysis observes every op's value) keeps
    the PAD step."""
    q = _quantized(_model(FOLDED["conv3x3_valid_all_sides"]))
    assert "pad_i8" in [s.kernel for s in build_plan(q.module, fuse=False).steps]
