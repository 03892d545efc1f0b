"""int8 element-wise, activation, pooling/reduction and data-movement kernels, bit-exact
against LiteRT's reference kernels.

Oracle: `OpResolverType.BUILTIN_REF` (ai-edge-litert 2.3.0) running the same one-op int8
.tflite that `qcc.backends.tflite.export_tflite` writes for the module our kernels run
(`qcc.backends.numba.compile_module`). Every comparison requires *equal* int8 outputs; a
failure reports the fraction of equal elements and the largest difference.

Models come from two places:

* `qcc.quantize` (int8, int8 I/O) of the float single-op models of
  `qcc.testing.tflite_models.single_op_models()`, fed random int8 inputs;
* hand-written quantized modules with random scales and zero points (random inputs, or
  every int8 value −128..127 for the unary ops), to cover parameters a calibration would
  rarely produce: negative LeakyRelu alpha, multipliers > 1, broadcasting shapes, all fused
  activations, align-corners / half-pixel resizes...

One exception to the oracle: SUM. LiteRT 2.3.0's reference SUM on int8 reads the int8
bytes as uint8 and clamps to [0, 255] (negative inputs count as q + 256); qcc's `sum_i8`
implements the intended arithmetic, which is what the optimized kernel
(`BUILTIN_WITHOUT_DEFAULT_DELEGATES`) computes, and is checked against that resolver;
`test_sum_reference_kernel_bug` pins the reference behaviour so that a fixed wheel is noticed.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest
from ai_edge_litert.interpreter import OpResolverType
from conftest import add_summary, model_samples, run_litert

import qcc
from qcc.backends.numba import artifact_source, compile_module
from qcc.backends.tflite import export_tflite
from qcc.dialects.nn import conv_output_size
from qcc.irtext import parse_ir
from qcc.testing import tflite_models as tm

REF = OpResolverType.BUILTIN_REF
OPT = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

# ---------------------------------------------------------------------------------------------
# helpers


def _f32(x: float) -> float:
    return float(np.float32(x))


def _qt(shape, scale: float, zp: int) -> str:
    """`tensor<...x!quant.uniform<i8:f32, scale:zp>>` (scale rounded to float32)."""
    element = f"!quant.uniform<i8:f32, {_f32(scale)!r}:{int(zp)}>"
    dims = "x".join(str(int(d)) for d in shape)
    return f"tensor<{dims}x{element}>" if len(shape) else f"tensor<{element}>"


def _build(body: str, arg_types: list[str], result_types: list[str], *, verify: bool = True):
    """A module `@main(%a0, %a1, ...)` whose `body` defines `%r0, %r1, ...`; and its .tflite.
    `verify=False` keeps IR the verifiers refuse (to test what the lowerings do with it)."""
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(arg_types))
    results = ", ".join(result_types)
    returned = ", ".join(f"%r{i}" for i in range(len(result_types)))
    text = (
        f"builtin.module {{\n  func.func @main({args}) -> ({results}) {{\n{body}\n"
        f"    func.return {returned} : {results}\n  }}\n}}"
    )
    module = parse_ir(text, "test.mlir")
    if verify:
        module.verify()
    return module, export_tflite(module)


def _i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)


def _sweep(n: int = 1) -> np.ndarray:
    """Every int8 value, `n` times, as a [n, 256] tensor."""
    return np.tile(np.arange(-128, 128, dtype=np.int8), (n, 1))


REPORT: dict[str, list[tuple[int, int, int]]] = {}
"""op -> [(equal elements, elements, max |diff|)] over every comparison made."""


def _op_of(module) -> str:
    names = [op.name for op in module.walk() if op.name.startswith("nn.") and op.name != "nn.constant"]
    return names[-1] if names else "?"


def _check(module, data, inputs, resolver=REF, label: str | None = None) -> None:
    """Our kernels (compiled plan) and LiteRT on the same model and inputs: equal int8."""
    expected = run_litert(data, inputs, resolver)
    actual = compile_module(module).run(inputs)
    label = label or _op_of(module)
    assert len(actual) == len(expected)
    for exp, got in zip(expected, actual):
        assert got.dtype == exp.dtype and got.shape == exp.shape, (got.dtype, got.shape, exp.shape)
        equal = int(np.sum(exp == got))
        diff = int(np.max(np.abs(exp.astype(np.int32) - got.astype(np.int32)), initial=0))
        REPORT.setdefault(label, []).append((equal, exp.size, diff))
        assert equal == exp.size, (
            f"{label}: {equal}/{exp.size} equal ({equal / max(exp.size, 1):.4f}), max |diff| {diff}"
        )


def _summary() -> list[str]:
    lines = []
    for label in sorted(REPORT):
        rows = REPORT[label]
        equal = sum(r[0] for r in rows)
        total = sum(r[1] for r in rows)
        diff = max(r[2] for r in rows)
        lines.append(f"  {label:32s} {equal}/{total} = {equal / max(total, 1):.4f}  max {diff}")
    return lines


add_summary("int8 kernels vs LiteRT (fraction equal, max |diff|)", _summary)


def _scale(rng, lo=-3.0, hi=0.0) -> float:
    return _f32(10.0 ** rng.uniform(lo, hi))


def _zp(rng) -> int:
    return int(rng.integers(-128, 128))


# ---------------------------------------------------------------------------------------------
# single-op models quantized by qcc itself

_MY_OPS = (
    "add", "sub", "mul", "maximum", "minimum", "relu", "logistic", "tanh", "leaky_relu",
    "hard_swish", "prelu", "softmax", "pad", "max_pool", "average_pool", "mean", "reshape",
    "squeeze", "transpose", "concatenation", "split", "slice", "strided_slice", "gather",
    "resize", "depth_to_space", "space_to_depth",
)


@functools.cache
def _float_models() -> dict[str, bytes]:
    return {
        name: data
        for name, data in tm.single_op_models().items()
        if name.startswith(_MY_OPS) and not name.startswith("transpose_conv")
    }


@pytest.mark.parametrize("name", sorted(_float_models()))
def test_quantized_single_op_model(name: str, write_model):
    model = qcc.load(write_model(name, _float_models()[name]))
    dataset = model_samples(model, 8, seed=0, low=-1.0)
    q = qcc.quantize(model, representative_dataset=dataset, mode="int8", io_dtype="int8",
                     target="reference")
    data = q.to_tflite()
    for seed in range(2):
        rng = np.random.default_rng(seed)
        inputs = [_i8(rng, t.shape) for t in q.inputs]
        assert all(t.dtype == np.int8 for t in q.inputs), name
        _check(q.module, data, inputs, label=f"{_op_of(q.module)} (qcc.quantize)")


# ---------------------------------------------------------------------------------------------
# element-wise binary ops

_BROADCASTS = [
    ((2, 5, 6, 3), (2, 5, 6, 3)),
    ((2, 5, 6, 3), (3,)),
    ((1, 5, 1, 3), (2, 1, 6, 1)),
    ((4,), ()),
]


@pytest.mark.parametrize("opname", ["nn.add", "nn.sub", "nn.mul"])
@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_add_sub_mul(opname: str, activation: str):
    rng = np.random.default_rng(zlib.crc32(f"{opname}{activation}".encode()))
    for trial in range(8):
        lhs, rhs = _BROADCASTS[trial % len(_BROADCASTS)]
        out = np.broadcast_shapes(lhs, rhs)
        t1, t2 = _qt(lhs, _scale(rng), _zp(rng)), _qt(rhs, _scale(rng), _zp(rng))
        to = _qt(out, _scale(rng), _zp(rng))
        body = (
            f'    %r0 = {opname} %a0, %a1 {{fused_activation = "{activation}"}} '
            f": ({t1}, {t2}) -> {to}"
        )
        module, data = _build(body, [t1, t2], [to])
        _check(module, data, [_i8(rng, lhs), _i8(rng, rhs)])


def test_mul_multiplier_above_one():
    """s1 * s2 / s_out > 1: QuantizeMultiplier gives a left shift."""
    rng = np.random.default_rng(7)
    t1, t2, to = _qt((64,), 0.5, 3), _qt((64,), 0.25, -7), _qt((64,), 0.01, 2)
    body = f'    %r0 = nn.mul %a0, %a1 {{fused_activation = "NONE"}} : ({t1}, {t2}) -> {to}'
    module, data = _build(body, [t1, t2], [to])
    _check(module, data, [_i8(rng, (64,)), _i8(rng, (64,))])


@pytest.mark.parametrize("chan_first", [False, True])
def test_mul_by_run_time_per_channel_operand(chan_first: bool):
    """MUL of a feature map by a run-time per-channel tensor (a squeeze-excite scale,
    (1, 1, 1, C)) takes the exact float path per channel (`_ew_mul_chan_run_time`), either
    operand order; 16 and 24 channels (blocks of whole rows), ties forced by scales whose
    product over the output's is a power of two, extreme stored values included."""
    rng = np.random.default_rng(21 + chan_first)
    for trial in range(6):
        c = (16, 24, 5)[trial % 3]
        big, small = (1, 9, 11, c), (1, 1, 1, c)
        s1, s2 = _scale(rng), _scale(rng)
        so = _f32(s1 * s2 * 2.0 ** int(rng.integers(-9, -4))) if trial % 2 else _scale(rng)
        tb, ts, to = _qt(big, s1, _zp(rng)), _qt(small, s2, _zp(rng)), _qt(big, so, _zp(rng))
        lhs, rhs = (ts, tb) if chan_first else (tb, ts)
        body = f'    %r0 = nn.mul %a0, %a1 {{fused_activation = "NONE"}} : ({lhs}, {rhs}) -> {to}'
        module, data = _build(body, [lhs, rhs], [to])
        x, k = _i8(rng, big), _i8(rng, small)
        x.reshape(-1)[:4] = [-128, 127, -128, 127]
        _check(module, data, [k, x] if chan_first else [x, k], label="nn.mul per channel")


def test_add_constant_operand():
    rng = np.random.default_rng(8)
    t1, tc, to = _qt((2, 3, 4), 0.02, 5), _qt((4,), 0.03, -9), _qt((2, 3, 4), 0.04, 1)
    const = _i8(rng, (4,))
    body = (
        f'    %c = nn.constant {{value = dense<"0x{const.tobytes().hex().upper()}"> : tensor<4xi8>}} : {tc}\n'
        f'    %r0 = nn.add %a0, %c {{fused_activation = "NONE"}} : ({t1}, {tc}) -> {to}'
    )
    module, data = _build(body, [t1], [to])
    _check(module, data, [_i8(rng, (2, 3, 4))])


@pytest.mark.parametrize("opname", ["nn.maximum", "nn.minimum"])
def test_maximum_minimum(opname: str):
    rng = np.random.default_rng(9)
    for lhs, rhs in _BROADCASTS:
        s, z = _scale(rng), _zp(rng)
        out = np.broadcast_shapes(lhs, rhs)
        t1, t2, to = _qt(lhs, s, z), _qt(rhs, s, z), _qt(out, s, z)
        module, data = _build(f"    %r0 = {opname} %a0, %a1 : ({t1}, {t2}) -> {to}", [t1, t2], [to])
        _check(module, data, [_i8(rng, lhs), _i8(rng, rhs)])


# ---------------------------------------------------------------------------------------------
# PRELU / LEAKY_RELU


@pytest.mark.parametrize("alpha_shape", [(1, 1, 3), (3,), (2, 4, 5, 3), (4, 1, 1), ()])
@pytest.mark.parametrize("constant_alpha", [True, False])
def test_prelu(alpha_shape, constant_alpha: bool):
    rng = np.random.default_rng(len(alpha_shape) * 2 + constant_alpha)
    shape = (2, 4, 5, 3)
    for _ in range(3):
        ti, to = _qt(shape, _scale(rng), _zp(rng)), _qt(shape, _scale(rng), _zp(rng))
        ta = _qt(alpha_shape, _scale(rng), _zp(rng))
        alpha = _i8(rng, alpha_shape)
        x = _i8(rng, shape)
        if constant_alpha:
            dims = "x".join(map(str, alpha_shape))
            atype = f"tensor<{dims}xi8>" if alpha_shape else "tensor<i8>"
            body = (
                f'    %c = nn.constant {{value = dense<"0x{alpha.tobytes().hex().upper()}"> : {atype}}} : {ta}\n'
                f"    %r0 = nn.prelu %a0, %c : ({ti}, {ta}) -> {to}"
            )
            module, data = _build(body, [ti], [to])
            _check(module, data, [x])
        else:
            body = f"    %r0 = nn.prelu %a0, %a1 : ({ti}, {ta}) -> {to}"
            module, data = _build(body, [ti, ta], [to])
            _check(module, data, [x, alpha])


@pytest.mark.parametrize("alpha", [0.2, 0.01, 0.0, -0.3, 1.5, 3.0])
def test_leaky_relu_sweep(alpha: float):
    rng = np.random.default_rng(int(abs(alpha) * 100))
    for _ in range(4):
        ti, to = _qt((1, 256), _scale(rng), _zp(rng)), _qt((1, 256), _scale(rng), _zp(rng))
        body = f"    %r0 = nn.leaky_relu %a0 {{alpha = {_f32(alpha)!r} : f32}} : ({ti}) -> {to}"
        module, data = _build(body, [ti], [to])
        _check(module, data, [_sweep()])


# ---------------------------------------------------------------------------------------------
# unary activations: exhaustive sweeps


@pytest.mark.parametrize("opname", ["nn.relu", "nn.relu6", "nn.relu_n1_to_1"])
def test_relu_family_sweep(opname: str):
    rng = np.random.default_rng(len(opname))
    for _ in range(12):
        ti, to = _qt((1, 256), _scale(rng), _zp(rng)), _qt((1, 256), _scale(rng), _zp(rng))
        module, data = _build(f"    %r0 = {opname} %a0 : ({ti}) -> {to}", [ti], [to])
        _check(module, data, [_sweep()])


@pytest.mark.parametrize("opname", ["nn.logistic", "nn.tanh"])
def test_logistic_tanh_sweep(opname: str):
    rng = np.random.default_rng(len(opname))
    out_scale, out_zp = (1 / 256, -128) if opname == "nn.logistic" else (1 / 128, 0)
    scales = [_scale(rng, -3.5, 0.5) for _ in range(14)] + [2.0**-7, 2.0**-4, 1 / 255]
    for s in scales:
        ti, to = _qt((1, 256), s, _zp(rng)), _qt((1, 256), out_scale, out_zp)
        module, data = _build(f"    %r0 = {opname} %a0 : ({ti}) -> {to}", [ti], [to])
        _check(module, data, [_sweep()])


def test_hard_swish_sweep():
    rng = np.random.default_rng(11)
    for _ in range(20):
        s_in = _scale(rng, -4.0, 1.0)
        s_out = _f32(s_in * 10.0 ** rng.uniform(-1.5, 1.5))
        ti, to = _qt((1, 256), s_in, _zp(rng)), _qt((1, 256), s_out, _zp(rng))
        module, data = _build(f"    %r0 = nn.hard_swish %a0 : ({ti}) -> {to}", [ti], [to])
        _check(module, data, [_sweep()])


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.1, 10.0])
def test_softmax(beta: float):
    rng = np.random.default_rng(int(beta * 10))
    # depth * exp(0) must stay below 2^8 in Q12.19 for TFLite's reference (it aborts above).
    for shape in [(3, 16), (2, 3, 40), (1, 250), (5, 1), (2, 256)]:
        s = _scale(rng, -3.0, 0.5)
        ti, to = _qt(shape, s, _zp(rng)), _qt(shape, 1 / 256, -128)
        body = f"    %r0 = nn.softmax %a0 {{beta = {_f32(beta)!r} : f32}} : ({ti}) -> {to}"
        module, data = _build(body, [ti], [to])
        x = _i8(rng, shape)
        if shape[-1] > 200 and s < 0.05:
            x = (x // 2 - 60).astype(np.int8)  # keep the sum of exps under TFLite's limit
        _check(module, data, [x])
        _check(module, data, [(x // 16 + 100).astype(np.int8)])  # near-equal rows


# ---------------------------------------------------------------------------------------------
# pooling and reductions


@pytest.mark.parametrize("opname", ["nn.avg_pool2d", "nn.max_pool2d"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("c", [3, 28, 64, 67])  # 16-byte chunks with an overlapping tail: 28, 67
def test_pool2d(opname: str, padding: str, c: int):
    rng = np.random.default_rng(len(opname) + len(padding) + c)
    configs = [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((3, 2), (2, 1)), ((1, 1), (3, 3)), ((4, 4), (3, 3))]
    activations = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
    n, h, w = 2, 7, 9
    for i, (size, stride) in enumerate(configs):
        module, data = _pool_module(rng, opname, (n, h, w, c), size, stride, padding,
                                    activations[i % 4])
        _check(module, data, [_i8(rng, (n, h, w, c))])


def _pool_module(rng, opname: str, in_shape, size, stride, padding: str, activation: str):
    """A one-pool module (input and output share a random scale and zero point) and its
    .tflite."""
    (n, h, w, c), (fh, fw), (sh, sw) = in_shape, size, stride
    oh, ow = conv_output_size(h, fh, sh, 1, padding), conv_output_size(w, fw, sw, 1, padding)
    s, z = _scale(rng), _zp(rng)
    ti, to = _qt((n, h, w, c), s, z), _qt((n, oh, ow, c), s, z)
    body = (
        f"    %r0 = {opname} %a0 {{filter_size = array<i64: {fh}, {fw}>, "
        f'stride = array<i64: {sh}, {sw}>, padding = "{padding}", '
        f'fused_activation = "{activation}"}} : ({ti}) -> {to}'
    )
    return _build(body, [ti], [to])


@pytest.mark.parametrize("c", [16, 24, 96, 256, 300])  # 256 % 24 != 0; 300: no wide run
def test_avg_pool2d_full_width_windows(c: int):
    """Windows spanning the image's width (global average pools: squeeze-excite), whose taps
    the kernel sums as one run (`_pool_run_sums`), a batch of two, windows clipped by SAME
    padding at the top and bottom."""
    rng = np.random.default_rng(c)
    n, h, w = 2, 6, 5
    configs = [((h, w), (1, 1), "VALID"), ((h, w), (1, 1), "SAME"), ((2, w), (2, 1), "VALID"),
               ((3, w + 2), (2, 3), "SAME"), ((4, w), (1, 2), "SAME")]
    for size, stride, padding in configs:
        module, data = _pool_module(rng, "nn.avg_pool2d", (n, h, w, c), size, stride, padding,
                                    "NONE")
        _check(module, data, [_i8(rng, (n, h, w, c))])
        _check(module, data, [np.full((n, h, w, c), 127, np.int8)])  # the largest sums
        _check(module, data, [np.full((n, h, w, c), -128, np.int8)])


_REDUCTIONS = [((1, 2), True), ((3,), False), ((0, 2), False), ((0, 1, 2, 3), True), ((2, 1), False), ((-1,), True)]


def _reduce_module(opname, shape, axes, keep, s_in, zp_in, s_out, zp_out):
    norm = sorted({a % len(shape) for a in axes})
    if keep:
        out = tuple(1 if i in norm else d for i, d in enumerate(shape))
    else:
        out = tuple(d for i, d in enumerate(shape) if i not in norm)
    ti, to = _qt(shape, s_in, zp_in), _qt(out, s_out, zp_out)
    body = (
        f"    %r0 = {opname} %a0 {{axes = array<i64: {', '.join(map(str, axes))}>, "
        f"keep_dims = {'true' if keep else 'false'}}} : ({ti}) -> {to}"
    )
    return _build(body, [ti], [to])


@pytest.mark.parametrize("axes,keep", _REDUCTIONS)
def test_mean(axes, keep):
    rng = np.random.default_rng(len(axes) * 2 + keep)
    shape = (2, 5, 7, 6)
    for trial in range(5):
        s_in, zp_in = _scale(rng), _zp(rng)
        s_out, zp_out = (s_in, zp_in) if trial == 0 else (_f32(s_in * 10 ** rng.uniform(-1.5, 1.5)), _zp(rng))
        module, data = _reduce_module("nn.mean", shape, axes, keep, s_in, zp_in, s_out, zp_out)
        _check(module, data, [_i8(rng, shape)])


def test_mean_spatial_large():
    """MEAN over H, W of a 4-D keep_dims input (the shape a global average pool has)."""
    rng = np.random.default_rng(12)
    for s_in, s_out in [(0.02, 0.02), (0.02, 0.005), (0.01, 0.04)]:
        module, data = _reduce_module("nn.mean", (2, 14, 14, 32), (1, 2), True, s_in, -3, s_out, 7)
        _check(module, data, [_i8(rng, (2, 14, 14, 32))])


@pytest.mark.parametrize("axes,keep", _REDUCTIONS)
def test_sum(axes, keep):
    """Against the optimized kernel: see the module docstring."""
    rng = np.random.default_rng(len(axes) * 2 + keep + 50)
    shape = (2, 5, 7, 6)
    for trial in range(4):
        s_in, zp_in = _scale(rng), _zp(rng)
        s_out, zp_out = (s_in, zp_in) if trial == 0 else (_f32(s_in * 10 ** rng.uniform(-1, 2)), _zp(rng))
        module, data = _reduce_module("nn.sum", shape, axes, keep, s_in, zp_in, s_out, zp_out)
        _check(module, data, [_i8(rng, shape)], resolver=OPT, label="nn.sum (vs optimized)")


def test_sum_reference_kernel_bug():
    """LiteRT 2.3.0 BUILTIN_REF SUM on int8 = the uint8 arithmetic on the same bytes: sum of
    (q mod 256), rescaled with mbqm, clamped to [0, 255], stored as the int8 of that byte."""
    from qcc.runtime.fixedpoint import mbqm, quantize_multiplier

    rng = np.random.default_rng(13)
    s_in, zp_in, s_out, zp_out = 0.05, 3, 0.2, -5
    module, data = _reduce_module("nn.sum", (2, 3, 4, 5), (1, 2), True, s_in, zp_in, s_out, zp_out)
    x = _i8(rng, (2, 3, 4, 5))
    (ref,) = run_litert(data, [x], REF)
    m, sh = quantize_multiplier(_f32(s_in) / _f32(s_out))
    sums = x.view(np.uint8).astype(np.int64).sum(axis=(1, 2), keepdims=True) - zp_in * 12
    bug = np.array([mbqm(int(v), m, sh) + zp_out for v in sums.ravel()]).reshape(sums.shape)
    assert np.array_equal(ref, np.clip(bug, 0, 255).astype(np.uint8).view(np.int8))
    # ... while ours (= the optimized kernel) is the int8 sum
    (ours,) = compile_module(module).run([x])
    assert not np.array_equal(ours, ref)
    assert np.array_equal(ours, run_litert(data, [x], OPT)[0])


# ---------------------------------------------------------------------------------------------
# data movement


def test_resize_bilinear():
    rng = np.random.default_rng(14)
    sizes = [((5, 7), (10, 14)), ((5, 7), (3, 4)), ((4, 4), (9, 7)), ((6, 3), (6, 3)), ((1, 5), (4, 9)),
             ((3, 4), (12, 8))]
    for align, half in [(False, False), (True, False), (False, True)]:
        for i, ((h, w), (oh, ow)) in enumerate(sizes):
            c = (3, 16, 1)[i % 3]
            s, z = _scale(rng), _zp(rng)
            ti, to = _qt((2, h, w, c), s, z), _qt((2, oh, ow, c), s, z)
            body = (
                f"    %r0 = nn.resize_bilinear %a0 {{align_corners = {str(align).lower()}, "
                f"half_pixel_centers = {str(half).lower()}}} : ({ti}) -> {to}"
            )
            module, data = _build(body, [ti], [to])
            x = _i8(rng, (2, h, w, c))
            x[0] = np.where(rng.random((h, w, c)) < 0.5, -128, 127)  # the int32 bound's edge
            _check(module, data, [x])


def test_resize_nearest_neighbor():
    rng = np.random.default_rng(15)
    for align, half in [(False, False), (True, False), (False, True)]:
        for (h, w), (oh, ow) in [((5, 7), (10, 14)), ((5, 7), (3, 4)), ((4, 4), (9, 7))]:
            ti, to = _qt((1, h, w, 2), 0.1, 3), _qt((1, oh, ow, 2), 0.1, 3)
            body = (
                f"    %r0 = nn.resize_nearest_neighbor %a0 {{align_corners = {str(align).lower()}, "
                f"half_pixel_centers = {str(half).lower()}}} : ({ti}) -> {to}"
            )
            module, data = _build(body, [ti], [to])
            _check(module, data, [_i8(rng, (1, h, w, 2))])


def test_pad_fills_zero_point_and_pad_value():
    rng = np.random.default_rng(16)
    ti, to = _qt((1, 3, 4, 2), 0.05, -17), _qt((1, 6, 5, 2), 0.05, -17)
    pads = "array<i64: 0, 0, 1, 2, 0, 1, 0, 0>"
    module, data = _build(f"    %r0 = nn.pad %a0 {{paddings = {pads}}} : ({ti}) -> {to}", [ti], [to])
    x = _i8(rng, (1, 3, 4, 2))
    _check(module, data, [x])
    (ours,) = compile_module(module).run([x])
    assert ours[0, 0, 0, 0] == -17
    tv = _qt((), 0.05, -17)
    body = (
        f'    %c = nn.constant {{value = dense<"0x2A"> : tensor<i8>}} : {tv}\n'
        f"    %r0 = nn.pad %a0, %c {{paddings = {pads}}} : ({ti}, {tv}) -> {to}"
    )
    module, data = _build(body, [ti], [to])
    _check(module, data, [x])
    (ours,) = compile_module(module).run([x])
    assert ours[0, 0, 0, 0] == 42


def test_strided_slice_variants():
    rng = np.random.default_rng(17)
    shape = (2, 6, 7, 4)
    cases = [
        # begin, end, strides, begin_mask, end_mask, shrink_axis_mask
        ((0, 1, 0, 0), (2, 5, 7, 4), (1, 2, 3, 1), 0, 0, 0),
        ((0, -1, -2, 0), (2, 0, 0, 4), (1, -1, -2, 1), 0, 0, 0),
        ((1, 0, 0, 1), (2, 6, 7, 3), (1, 1, 1, 1), 0b0110, 0b0110, 0b0001),
        ((0, 2, 3, 0), (0, 3, 0, 0), (1, 1, 1, 2), 0b1001, 0b1101, 0b0010),
    ]
    for begin, end, strides, bmask, emask, smask in cases:
        index = []
        for d, (b, e, s) in enumerate(zip(begin, end, strides)):
            bb = None if (bmask >> d) & 1 else b
            ee = None if (emask >> d) & 1 else e
            index.append(b if (smask >> d) & 1 else slice(bb, ee, s))
        out = np.empty(shape)[tuple(index)].shape
        ti, to = _qt(shape, 0.1, 5), _qt(out, 0.1, 5)
        arr = lambda v: f"array<i64: {', '.join(map(str, v))}>"  # noqa: E731
        body = (
            f"    %r0 = nn.strided_slice %a0 {{begin = {arr(begin)}, end = {arr(end)}, "
            f"strides = {arr(strides)}, begin_mask = {bmask} : i64, end_mask = {emask} : i64, "
            f"ellipsis_mask = 0 : i64, new_axis_mask = 0 : i64, shrink_axis_mask = {smask} : i64, "
            f"offset = false}} : ({ti}) -> {to}"
        )
        module, data = _build(body, [ti], [to])
        _check(module, data, [_i8(rng, shape)])


def test_gather_runtime_indices():
    rng = np.random.default_rng(18)
    tp, to = _qt((3, 5, 4), 0.1, 2), _qt((3, 2, 3, 4), 0.1, 2)
    body = (
        "    %r0 = nn.gather %a0, %a1 {axis = 1 : i64, batch_dims = 0 : i64} "
        f": ({tp}, tensor<2x3xi32>) -> {to}"
    )
    module, data = _build(body, [tp, "tensor<2x3xi32>"], [to])
    idx = rng.integers(0, 5, size=(2, 3)).astype(np.int32)
    _check(module, data, [_i8(rng, (3, 5, 4)), idx])


def test_concatenation_split_transpose():
    rng = np.random.default_rng(19)
    t = lambda shape: _qt(shape, 0.07, -3)  # noqa: E731
    body = (
        f"    %r0 = nn.concatenation %a0, %a1, %a2 {{axis = -2 : i64, fused_activation = \"NONE\"}} "
        f": ({t((2, 3, 4))}, {t((2, 1, 4))}, {t((2, 5, 4))}) -> {t((2, 9, 4))}"
    )
    module, data = _build(body, [t((2, 3, 4)), t((2, 1, 4)), t((2, 5, 4))], [t((2, 9, 4))])
    _check(module, data, [_i8(rng, (2, 3, 4)), _i8(rng, (2, 1, 4)), _i8(rng, (2, 5, 4))])
    body = f"    %r0, %r1, %r2 = nn.split %a0 {{axis = 2 : i64}} : ({t((2, 3, 6))}) -> ({t((2, 3, 2))}, {t((2, 3, 2))}, {t((2, 3, 2))})"
    module, data = _build(body, [t((2, 3, 6))], [t((2, 3, 2))] * 3)
    _check(module, data, [_i8(rng, (2, 3, 6))])
    body = f"    %r0 = nn.transpose %a0 {{perm = array<i64: 2, 0, 3, 1>}} : ({t((2, 3, 4, 5))}) -> {t((4, 2, 5, 3))}"
    module, data = _build(body, [t((2, 3, 4, 5))], [t((4, 2, 5, 3))])
    _check(module, data, [_i8(rng, (2, 3, 4, 5))])


# ---------------------------------------------------------------------------------------------
# registry / artifact


def test_registered():
    from qcc.dialects import nn
    from qcc.runtime.kernels.registry import INT8_LOWERINGS

    by_name = {cls.name: cls for cls in nn.op_classes()}
    for op in (
        "nn.add", "nn.sub", "nn.mul", "nn.maximum", "nn.minimum", "nn.prelu", "nn.leaky_relu",
        "nn.relu", "nn.relu6", "nn.relu_n1_to_1", "nn.logistic", "nn.tanh", "nn.hard_swish",
        "nn.softmax", "nn.avg_pool2d", "nn.max_pool2d", "nn.mean", "nn.sum", "nn.reshape",
        "nn.squeeze", "nn.transpose", "nn.concatenation", "nn.split", "nn.slice",
        "nn.strided_slice", "nn.gather", "nn.pad", "nn.resize_bilinear",
        "nn.resize_nearest_neighbor", "nn.depth_to_space", "nn.space_to_depth",
    ):
        assert by_name[op] in INT8_LOWERINGS, op


def test_artifact_source_inlines_these_families():
    """The `--emit=numba` artifact inlines these modules without name clashes."""
    src = artifact_source().kernels
    compile(src, "kernels.py", "exec")
    for name in ("run_add_sub_i8", "run_softmax_i8", "run_mean_i8", "run_resize_bilinear_i8"):
        assert f"def {name}(" in src
    assert "def lower_softmax(" not in src


def test_artifact_source_for_a_plan_keeps_only_what_its_runners_use():
    """With a plan's kernel names, the artifact's kernels.py inlines the families those
    runners need, and of them only the definitions something reachable uses (the runners,
    what model.py takes from the module), without docstrings; model.py holds none of them."""
    whole = artifact_source().kernels
    model, src = artifact_source(kernels={"conv2d_i8", "quantize_f32_i8", "dequantize_i8"})
    compile(model, "model.py", "exec")
    assert len(src) < len(whole) * 0.8
    for name in ("run_conv2d_i8", "_conv_bind", "_madd_make_conv", "madd_tiles_rq",
                 "_vnni_make_conv_rq",
                 "run_quantize_f32_i8", "PlanRunner", "load"):
        assert f"def {name}(" in src + model or f"class {name}" in src, name
    for name in ("run_softmax_i8", "run_mean_i8", "run_resize_bilinear_i8"):
        assert f"def {name}(" not in src, name
    assert "Plan-load binding of `run_conv2d_i8`" not in src  # docstrings dropped
    compile(src, "kernels.py", "exec")
    assert "def plan_from_arrays(" in src and "def run_conv2d_i8(" not in model


def test_instances_tflite_rejects_have_no_kernel():
    """Where TFLite's Prepare fails (or aborts), the op's verifier refuses the IR (its kernel
    preconditions, dialects/nn.py) and, behind it, the lowering declines too, so the backend
    reports the op instead of computing something LiteRT cannot run."""
    from xdsl.utils.exceptions import VerifyException

    from qcc.runtime.errors import MissingKernelError

    def refused(body, args, results, message):
        with pytest.raises(VerifyException, match=message):
            _build(body, args, results)
        module, data = _build(body, args, results, verify=False)
        with pytest.raises(MissingKernelError):
            compile_module(module)
        return data

    t = lambda shape: _qt(shape, 0.07, -3)  # noqa: E731
    body = (
        f'    %r0 = nn.concatenation %a0, %a1 {{axis = 1 : i64, fused_activation = "RELU"}} '
        f": ({t((2, 3))}, {t((2, 1))}) -> {t((2, 4))}"
    )
    data = refused(body, [t((2, 3)), t((2, 1))], [t((2, 4))], "fused_activation")
    with pytest.raises(RuntimeError, match="activation"):
        run_litert(data, [np.zeros((2, 3), np.int8), np.zeros((2, 1), np.int8)], REF)
    # LOGISTIC's output must be (1/256, -128); SOFTMAX's too.
    for opname in ("nn.logistic", "nn.softmax"):
        ti, to = _qt((4, 8), 0.05, 0), _qt((4, 8), 1 / 128, 0)
        attrs = " {beta = 1.0 : f32}" if opname == "nn.softmax" else ""
        refused(f"    %r0 = {opname} %a0{attrs} : ({ti}) -> {to}", [ti], [to], "fixed output range")
    # ADD whose output multiplier would be >= 1 (QuantizeMultiplierSmallerThanOneExp aborts).
    t1, to = _qt((4,), 1.0, 0), _qt((4,), 1e-7, 0)
    body = f'    %r0 = nn.add %a0, %a0 {{fused_activation = "NONE"}} : ({t1}, {t1}) -> {to}'
    refused(body, [t1], [to], "multiplier")


@pytest.mark.parametrize("name", sorted(tm.chained_models()))
def test_chained_model(name: str, write_model):
    """Small networks (these kernels next to conv/FC/requantize): equal to BUILTIN_REF."""
    model = qcc.load(write_model(name, tm.chained_models()[name]))
    rng = np.random.default_rng(1)
    dataset = [[rng.uniform(-1.0, 1.0, size=t.shape).astype(np.float32) for t in model.inputs]
               for _ in range(16)]  # the same generator then draws the int8 inputs
    q = qcc.quantize(model, representative_dataset=dataset, mode="int8", io_dtype="int8",
                     target="reference")
    inputs = [_i8(rng, t.shape) for t in q.inputs]
    _check(q.module, q.to_tflite(), inputs, label=f"chained:{name}")


def test_direct_call_skips_the_dispatcher_after_the_first_call():
    """`DirectCall` (the bound steps' kernel calls): the first call goes through the Numba
    dispatcher, later ones straight to the compiled overload of those argument types, with
    the same results; an argument Numba converts (no overload of exactly its type) keeps
    every call on the dispatcher."""
    from numba import njit

    from qcc.runtime.kernels.int8_registry import DirectCall

    @njit
    def scaled_sum(x, k, out):
        for i in range(x.size):
            out[i] = x[i] * k
        return out.sum()

    direct = DirectCall(scaled_sum)
    x = np.arange(5, dtype=np.int32)
    out = np.empty(5, np.int64)
    assert direct.call(x, 3, out) == 30
    entry = direct.call
    assert entry is not direct._first and type(entry).__name__ == "builtin_function_or_method"
    assert direct.call(x + 1, 2, out) == 30 and list(out) == [2, 4, 6, 8, 10]
    assert direct.call is entry

    @njit("float64(float64)")
    def twice(v):
        return 2 * v

    converted = DirectCall(twice)
    assert converted.call(np.float32(1.5)) == 3.0  # float32 -> the float64 overload
    assert converted.call == converted._first
