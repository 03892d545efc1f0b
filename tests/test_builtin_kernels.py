"""Float kernels of builtins without an nn op (runtime/kernels/builtins.py) against LiteRT.

Each case is a one-op model built here; qcc's float executor runs it and LiteRT's reference
kernels (BUILTIN_REF; its default resolver for CEIL and ROUND, which BUILTIN_REF lacks) give
the oracle: data movement, shapes, casts and arg-reductions
exactly; transcendental math within a few float32 ulps (NumPy's exp / log / sin against the
C library's: `MATH_RTOL`). Then a quantized model with such an op: qcc keeps it a float island
and its int8 runtime gives BUILTIN_REF's outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import OpResolverType
from conftest import REF, litert_input_details, litert_interpreter, litert_invoke

import qcc
from qcc.frontends.tflite import import_tflite
from qcc.testing import tflite_models as tm

Op = tm.Op
MATH_RTOL = 4e-6
"""float32 math (exp, log, sqrt, sin, cos, log-softmax, l2-normalization): NumPy's and the
reference kernel's libm agree within a few ulps, not bit for bit."""


def _model(build) -> bytes:
    b = tm.ModelBuilder()
    build(b)
    return b.build()


def _unary(opcode, shape=(2, 3, 4)):
    def build(b):
        x = b.add_input("x", list(shape))
        b.mark_output(b.add_op(opcode, [x], list(shape), name="y"))
    return build


def _options(cls, **fields):
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _arg(opcode, options_cls):
    def build(b):
        x = b.add_input("x", [1, 6, 5, 4])
        axis = b.add_constant("axis", np.array([3], np.int32))
        b.mark_output(b.add_op(opcode, [x, axis], [1, 6, 5],
                               _options(options_cls, outputType=schema.TensorType.INT32),
                               name="y", dtype=np.int32))
    return build


def _reduce(opcode, keep):
    def build(b):
        x = b.add_input("x", [2, 5, 4, 3])
        axes = b.add_constant("axes", np.array([1, -2], np.int32))
        out = [2, 1, 1, 3] if keep else [2, 3]
        b.mark_output(b.add_op(opcode, [x, axes], out, _options(schema.ReducerOptionsT, keepDims=keep),
                               name="y"))
    return build


def _cast(b):
    x = b.add_input("x", [3, 7])
    b.mark_output(b.add_op(Op.CAST, [x], [3, 7], name="y", dtype=np.int32))


def _shape_pack_unpack(b):
    x = b.add_input("x", [2, 3, 4])
    shape = b.add_op(Op.SHAPE, [x], [3], _options(schema.ShapeOptionsT, outType=schema.TensorType.INT32),
                     name="shape", dtype=np.int32)
    parts = [b.add_tensor(f"p{i}", [2, 4]) for i in range(3)]
    b.add_operator(Op.UNPACK, [x], parts, _options(schema.UnpackOptionsT, num=3, axis=1))
    packed = b.add_op(Op.PACK, parts[::-1], [2, 4, 3], _options(schema.PackOptionsT, valuesCount=3, axis=2),
                      name="packed")
    b.mark_output(shape, packed)


def _expand_tile(b):
    x = b.add_input("x", [3, 4])
    e = b.add_op(Op.EXPAND_DIMS, [x, b.add_constant("axis", np.array([1], np.int32))], [3, 1, 4],
                 name="e")
    b.mark_output(b.add_op(Op.TILE, [e, b.add_constant("m", np.array([1, 2, 3], np.int32))],
                           [3, 2, 12], name="y"))


def _mirror_pad(mode):
    def build(b):
        x = b.add_input("x", [1, 5, 6, 2])
        pads = b.add_constant("p", np.array([[0, 0], [2, 1], [1, 3], [0, 0]], np.int32))
        b.mark_output(b.add_op(Op.MIRROR_PAD, [x, pads], [1, 8, 10, 2],
                               _options(schema.MirrorPadOptionsT, mode=mode), name="y"))
    return build


def _split_v(b):
    x = b.add_input("x", [2, 9, 3])
    outs = [b.add_tensor(f"y{i}", [2, n, 3]) for i, n in enumerate((2, 4, 3))]
    b.add_operator(Op.SPLIT_V, [x, b.add_constant("s", np.array([2, -1, 3], np.int32)),
                                b.add_constant("a", np.array(1, np.int32))], outs,
                   _options(schema.SplitVOptionsT, numSplits=3))
    b.mark_output(*outs)


def _atrous(b):
    """SPACE_TO_BATCH_ND -> BATCH_TO_SPACE_ND with paddings and crops, as a converted dilated
    convolution wraps its conv."""
    x = b.add_input("x", [1, 7, 9, 3])
    block = b.add_constant("block", np.array([2, 2], np.int32))
    s2b = b.add_op(Op.SPACE_TO_BATCH_ND, [x, block, b.add_constant("pad", np.array([[2, 3], [2, 1]], np.int32))],
                   [4, 6, 6, 3], name="s2b")
    b.mark_output(s2b, b.add_op(Op.BATCH_TO_SPACE_ND, [s2b, block, b.add_constant(
        "crop", np.array([[1, 2], [0, 3]], np.int32))], [1, 9, 9, 3], name="y"))


EXACT = {
    "abs": _unary(Op.ABS), "neg": _unary(Op.NEG), "square": _unary(Op.SQUARE),
    "floor": _unary(Op.FLOOR), "ceil": _unary(Op.CEIL), "round": _unary(Op.ROUND),
    "arg_max": _arg(Op.ARG_MAX, schema.ArgMaxOptionsT), "arg_min": _arg(Op.ARG_MIN, schema.ArgMinOptionsT),
    "reduce_max": _reduce(Op.REDUCE_MAX, True), "reduce_min": _reduce(Op.REDUCE_MIN, False),
    "cast": _cast, "shape_pack_unpack": _shape_pack_unpack, "expand_tile": _expand_tile,
    "mirror_reflect": _mirror_pad(schema.MirrorPadMode.REFLECT),
    "mirror_symmetric": _mirror_pad(schema.MirrorPadMode.SYMMETRIC),
    "split_v": _split_v, "atrous": _atrous,
}
MATH = {
    "exp": _unary(Op.EXP), "log": _unary(Op.LOG), "sqrt": _unary(Op.SQRT), "sin": _unary(Op.SIN),
    "cos": _unary(Op.COS), "reduce_prod": _reduce(Op.REDUCE_PROD, False),
    "log_softmax": _unary(Op.LOG_SOFTMAX),
    "l2_normalization": _unary(Op.L2_NORMALIZATION),
}


def _inputs(content: bytes, name: str, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = []
    for d in litert_input_details(content):
        x = rng.uniform(-3, 3, size=d["shape"]).astype(np.float32)
        if name in ("log", "sqrt"):
            x = np.abs(x) + np.float32(0.01)
        if name in ("floor", "ceil", "round"):
            x = np.round(x * 4) / np.float32(4)  # halves and quarters: the ties
        if name in ("arg_max", "arg_min", "reduce_max"):
            x = np.round(x)  # repeated values: the first index wins
        xs.append(x.astype(np.float32))
    return xs


NOT_IN_REF = {"ceil", "round"}
"""Ops BUILTIN_REF does not register (LiteRT's default resolver is their oracle)."""


@pytest.mark.parametrize("name", sorted(EXACT) + sorted(MATH))
def test_float_kernel_matches_litert(name: str) -> None:
    content = _model({**EXACT, **MATH}[name])
    model = qcc.Model(import_tflite(content))
    resolver = OpResolverType.AUTO if name in NOT_IN_REF else REF
    for seed in (0, 1):
        xs = _inputs(content, name, seed)
        ref = litert_invoke(litert_interpreter(content, resolver), xs)
        ours = model.run(xs)
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            assert a.dtype == b.dtype and a.shape == b.shape, (name, a.dtype, b.dtype, a.shape, b.shape)
            if name in MATH:
                np.testing.assert_allclose(a, b, rtol=MATH_RTOL, atol=0, err_msg=name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_quantized_model_runs_them_as_float_islands() -> None:
    """A conv and its ARG_MAX (a segmentation head): the int8 model keeps ARG_MAX float, and
    qcc's runtime gives BUILTIN_REF's classes."""
    rng = np.random.default_rng(3)

    def build(b):
        x = b.add_input("x", [1, 12, 12, 3])
        y = tm._conv_2d(b, rng, x, 5, 3, name="conv", activation=tm.Act.RELU)
        b.mark_output(b.add_op(Op.ARG_MAX, [y, b.add_constant("axis", np.array([3], np.int32))],
                               [1, 12, 12], _options(schema.ArgMaxOptionsT,
                                                      outputType=schema.TensorType.INT32),
                               name="classes", dtype=np.int32))

    model = qcc.Model(import_tflite(_model(build)))
    data = [[np.random.default_rng(s).uniform(0, 1, (1, 12, 12, 3)).astype(np.float32)]
            for s in range(4)]
    q = qcc.quantize(model, representative_dataset=data, target="reference")
    assert "ARG_MAX" in q.to_mlir()
    content = q.to_tflite()
    for xs in data[:2]:
        (ref,) = litert_invoke(litert_interpreter(content, REF), xs)
        (ours,) = q.run(xs)
        np.testing.assert_array_equal(ours, ref)
