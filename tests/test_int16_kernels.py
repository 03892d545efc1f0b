"""qcc's Numba runtime on int16 activations (TFLite "16x8"): every int16 kernel equals
LiteRT's reference kernels (BUILTIN_REF) bit for bit on the same .tflite.

Each op with an int16 kernel: its generated single-op model (`qcc.testing.tflite_models`),
the op asking for int16 (`request_int16`), quantized by qcc, exported, run on random inputs
in LiteRT BUILTIN_REF and in qcc's runtime (`Model.run`): the outputs are equal. Also chains
mixing int8 and int16 regions (QUANTIZE int8 <-> int16 between them), inputs beyond the
calibrated range (clamping), the `--emit=numba` artifact, the one-line refusal of an op
without an int16 kernel, and (zoo tier) the shared real models with every int16-capable op
int16.
"""

from __future__ import annotations

import functools
import lzma
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import REF, model_samples, run_litert, zoo_images, zoo_parametrize
from xdsl.dialects.func import FuncOp

import qcc
from qcc.backends.numba import build_plan
from qcc.dialects import nn
from qcc.dialects.ir import location_text
from qcc.frontends.tflite import import_tflite
from qcc.passes.infer_scales import int16_capable, request_int16
from qcc.runtime.errors import MissingKernelError
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator

CALIBRATION_SEEDS = range(6)
EVAL_SEEDS = (100, 101)

NO_INT16_KERNEL = {"nn.transpose_conv", "nn.batch_matmul", "nn.gelu", "nn.rsqrt"}
"""Ops with a 16x8 TFLite kernel that qcc's runtime still refuses (one line naming the op)."""


def _int16_ops() -> list[type]:
    return [
        cls
        for cls in nn.op_classes()
        if (spec := nn.op_spec(cls)) is not None
        and spec.example is not None
        and "int16x8" in spec.precisions
        and spec.int8 == nn.KERNEL
    ]


SUPPORTED = [cls for cls in _int16_ops() if cls.name not in NO_INT16_KERNEL]
REFUSED = [cls for cls in _int16_ops() if cls.name in NO_INT16_KERNEL]


def _body(module) -> list:
    (main,) = [op for op in module.body.block.ops if isinstance(op, FuncOp)]
    return list(main.body.block.ops)


@functools.cache
def _quantized(cls: type, per_channel_fc: bool = True) -> qcc.Model:
    model = qcc.Model(import_tflite(tm.op_model(cls)))
    (op,) = [op for op in _body(model.module) if type(op) is cls]
    request_int16(op)
    samples = [tm.op_inputs(cls, seed) for seed in CALIBRATION_SEEDS]
    return qcc.quantize(model, representative_dataset=samples, target="reference",
                        decompose_prelu=False, per_channel_fc=per_channel_fc)


def _assert_same(content: bytes, q: qcc.Model, inputs: list[np.ndarray]) -> None:
    want = run_litert(content, inputs, REF)
    got = q.run(inputs)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert w.dtype == g.dtype and w.shape == g.shape, (w.dtype, g.dtype, w.shape, g.shape)
        bad = np.flatnonzero(w.reshape(-1) != g.reshape(-1))
        assert bad.size == 0, f"{bad.size}/{w.size} differ, e.g. at {bad[:5]}: " \
            f"{w.reshape(-1)[bad[:5]]} (LiteRT) != {g.reshape(-1)[bad[:5]]} (qcc)"


def _kernels(q: qcc.Model) -> list[str]:
    return [s.kernel for s in build_plan(q.module).steps]


@pytest.mark.parametrize("cls", SUPPORTED, ids=lambda c: c.name)
def test_int16_kernel_equals_builtin_ref(cls: type):
    q = _quantized(cls)
    (op,) = [op for op in _body(q.module) if type(op) is cls]
    assert nn.qtype_of(op.results[0]).storage_bits == 16
    kernels = _kernels(q)
    assert "callable" not in kernels and any(k.endswith("_i16") for k in kernels), kernels
    content = q.to_tflite()
    for seed in EVAL_SEEDS:
        _assert_same(content, q, tm.op_inputs(cls, seed))


@pytest.mark.parametrize("cls", [nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.FullyConnectedOp,
                                 nn.AddOp, nn.MulOp, nn.LogisticOp, nn.TanhOp, nn.MeanOp,
                                 nn.AvgPool2DOp, nn.PReluOp, nn.LeakyReluOp, nn.Relu6Op,
                                 nn.SoftmaxOp],
                         ids=lambda c: c.name)
def test_int16_kernels_clamp_like_builtin_ref(cls: type):
    """Inputs 4x beyond the calibrated range: the int16 casts and kernels saturate alike."""
    q = _quantized(cls)
    content = q.to_tflite()
    inputs = [x * np.float32(4.0) if x.dtype == np.float32 else x
              for x in tm.op_inputs(cls, 102)]
    _assert_same(content, q, inputs)


@pytest.mark.parametrize("cls", [nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.FullyConnectedOp,
                                 nn.AddOp, nn.SubOp, nn.MulOp, nn.LogisticOp, nn.TanhOp,
                                 nn.SoftmaxOp, nn.MeanOp, nn.AvgPool2DOp, nn.PReluOp,
                                 nn.LeakyReluOp, nn.Relu6Op, nn.ResizeBilinearOp],
                         ids=lambda c: c.name)
def test_int16_kernels_on_the_whole_int16_range(cls: type):
    """int16 model inputs (io_dtype int8 keeps the quantized boundary) with stored values
    uniform over [-a, a] for a from 30 to 32767: every kernel's saturation and rounding."""
    model = qcc.Model(import_tflite(tm.op_model(cls)))
    (op,) = [op for op in _body(model.module) if type(op) is cls]
    request_int16(op)
    samples = [tm.op_inputs(cls, seed) for seed in CALIBRATION_SEEDS]
    q = qcc.quantize(model, representative_dataset=samples, target="reference",
                     io_dtype="int8", decompose_prelu=False)
    content = q.to_tflite()
    rng = np.random.default_rng(0)
    for amplitude in (32767, 3000, 300, 30):
        inputs = []
        for spec in q.inputs:
            info = np.iinfo(spec.dtype)
            a = min(amplitude, info.max)
            inputs.append(rng.integers(-a, a + 1, spec.shape).astype(spec.dtype))
        _assert_same(content, q, inputs)


def test_int16_global_average_pool():
    """An int16 AVERAGE_POOL_2D over the whole image (the run-at-once sums of
    `int8_pooling._pool_run_sums`, compiled for int16) on the whole int16 range."""
    model = qcc.Model(import_tflite(tm.pool_model("average", (1, 16, 16, 4), 16, 1)))
    (op,) = [op for op in _body(model.module) if isinstance(op, nn.AvgPool2DOp)]
    request_int16(op)
    rng = np.random.default_rng(7)
    samples = [[rng.uniform(-3, 3, (1, 16, 16, 4)).astype(np.float32)] for _ in range(4)]
    q = qcc.quantize(model, representative_dataset=samples, target="reference", io_dtype="int8")
    assert _kernels(q) == ["pool2d_i16"]
    content = q.to_tflite()
    for amplitude in (32767, 300):
        x = rng.integers(-amplitude, amplitude + 1, q.inputs[0].shape)
        _assert_same(content, q, [x.astype(q.inputs[0].dtype)])


def test_per_tensor_fully_connected():
    q = _quantized(nn.FullyConnectedOp, per_channel_fc=False)
    content = q.to_tflite()
    for seed in EVAL_SEEDS:
        _assert_same(content, q, tm.op_inputs(nn.FullyConnectedOp, seed))


@pytest.mark.parametrize("cls", REFUSED, ids=lambda c: c.name)
def test_ops_without_int16_kernel_are_refused_in_one_line(cls: type):
    q = _quantized(cls)
    with pytest.raises(MissingKernelError) as info:
        q.run(tm.op_inputs(cls, 0))
    message = str(info.value)
    assert "\n" not in message and f"'{cls.name}'" in message, message
    assert "i16 activation" in message, message


# ------------------------------------------------------------------------------------------
# Chains mixing int8 and int16 regions


def _chain_model() -> bytes:
    """x [1,8,8,3] -> CONV_2D (RELU6) -> DEPTHWISE_CONV_2D -> ADD (+ x2) -> LOGISTIC -> MUL
    (x2) -> MAX_POOL_2D -> RESHAPE -> FULLY_CONNECTED (8) -> TANH."""
    rng = np.random.default_rng(7)
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 3])
    x2 = b.add_input("x2", [1, 8, 8, 4])
    w = b.add_constant("conv/filter", rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32))
    bias = b.add_constant("conv/bias", rng.normal(0, 0.1, (4,)).astype(np.float32))
    o = schema.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW = schema.Padding.SAME, 1, 1
    o.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    c = b.add_op(Op.CONV_2D, [x, w, bias], [1, 8, 8, 4], o, name="conv")
    dw = b.add_constant("dw/filter", rng.normal(0, 0.4, (1, 3, 3, 4)).astype(np.float32))
    db = b.add_constant("dw/bias", rng.normal(0, 0.1, (4,)).astype(np.float32))
    do = schema.DepthwiseConv2DOptionsT()
    do.padding, do.strideH, do.strideW, do.depthMultiplier = schema.Padding.SAME, 1, 1, 1
    d = b.add_op(Op.DEPTHWISE_CONV_2D, [c, dw, db], [1, 8, 8, 4], do, name="dw")
    a = b.add_op(Op.ADD, [d, x2], [1, 8, 8, 4], schema.AddOptionsT(), name="add")
    s = b.add_op(Op.LOGISTIC, [a], [1, 8, 8, 4], None, name="sig")
    m = b.add_op(Op.MUL, [s, x2], [1, 8, 8, 4], schema.MulOptionsT(), name="mul")
    po = schema.Pool2DOptionsT()
    po.padding, po.strideH, po.strideW, po.filterHeight, po.filterWidth = (
        schema.Padding.VALID, 2, 2, 2, 2)
    p = b.add_op(Op.MAX_POOL_2D, [m, ], [1, 4, 4, 4], po, name="pool")
    shape = b.add_constant("shape", np.array([1, 64], np.int32))
    r = b.add_op(Op.RESHAPE, [p, shape], [1, 64], schema.ReshapeOptionsT(), name="flat")
    fw = b.add_constant("fc/weights", rng.normal(0, 0.1, (8, 64)).astype(np.float32))
    fb = b.add_constant("fc/bias", rng.normal(0, 0.1, (8,)).astype(np.float32))
    f = b.add_op(Op.FULLY_CONNECTED, [r, fw, fb], [1, 8], schema.FullyConnectedOptionsT(),
                 name="fc")
    y = b.add_op(Op.TANH, [f], [1, 8], None, name="tanh")
    b.mark_output(y)
    return b.build()


def _chain_inputs(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32),
            rng.uniform(-1, 1, (1, 8, 8, 4)).astype(np.float32)]


@functools.cache
def _chain(int16: tuple[str, ...]) -> qcc.Model:
    model = qcc.Model(import_tflite(_chain_model()))
    for op in _body(model.module):
        if nn.op_spec(op) is not None and location_text(op.location) in int16:
            request_int16(op)
    samples = [_chain_inputs(seed) for seed in CALIBRATION_SEEDS]
    return qcc.quantize(model, representative_dataset=samples, target="reference")


CHAINS = {
    "all-int16": ("conv", "dw", "add", "sig", "mul", "pool", "flat", "fc", "tanh"),
    "alternating": ("conv", "add", "mul", "fc"),
    "int16-middle": ("dw", "add", "sig"),
    "int16-ends": ("conv", "tanh"),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_chain_of_int8_and_int16_regions(name: str):
    q = _chain(CHAINS[name])
    kernels = _kernels(q)
    assert "callable" not in kernels
    if name != "all-int16":
        assert "requantize_i16" in kernels, kernels  # QUANTIZE int8 <-> int16
    content = q.to_tflite()
    for seed in EVAL_SEEDS:
        _assert_same(content, q, _chain_inputs(seed))


def test_int16_model_inputs_and_outputs(tmp_path):
    """io_dtype int8 keeps the quantized (int16) model boundary: int16 in, int16 out."""
    model = qcc.Model(import_tflite(tm.op_model(nn.Conv2DOp)))
    (op,) = [op for op in _body(model.module) if isinstance(op, nn.Conv2DOp)]
    request_int16(op)
    samples = [tm.op_inputs(nn.Conv2DOp, seed) for seed in CALIBRATION_SEEDS]
    q = qcc.quantize(model, representative_dataset=samples, target="reference", io_dtype="int8")
    assert q.inputs[0].dtype == np.int16
    rng = np.random.default_rng(3)
    x = rng.integers(-32768, 32768, q.inputs[0].shape).astype(np.int16)
    _assert_same(q.to_tflite(), q, [x])


def test_artifact_runs_int16(tmp_path):
    """The `--emit=numba` artifact carries the int16 runners (and no lowering code)."""
    q = _chain(CHAINS["alternating"])
    q.save(tmp_path / "m.mlir")
    out = tmp_path / "art"
    from qcc.backends.numba import write_artifact

    write_artifact(q.module, out)
    source = lzma.decompress((out / "kernels.py.xz").read_bytes()).decode()
    assert "def run_conv2d_i16" in source and "def lower_conv2d_i16" not in source
    x = _chain_inputs(100)
    np.savez(tmp_path / "x.npz", *x)
    script = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import model; "
        "z = np.load(sys.argv[2]); y = model.run([z['arr_0'], z['arr_1']]); "
        "np.save(sys.argv[3], y[0])"
    )
    subprocess.run([sys.executable, "-c", script, str(out), str(tmp_path / "x.npz"),
                    str(tmp_path / "y.npy")], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), q.run(x)[0])


# ------------------------------------------------------------------------------------------
# Zoo tier: the shared real models, every int16-capable op int16


def _without_custom_ops(path) -> bool:
    from conftest import custom_ops

    return not custom_ops(path)


@zoo_parametrize("path", select=_without_custom_ops)
@pytest.mark.parametrize("prelu", ["decomposed", "prelu"])
def test_zoo_int16_everywhere_equals_builtin_ref(path, prelu: str):
    """--target=int8-only with every int16-capable op requested int16 (request_int16 on
    each op just before infer-scales, so decompose-prelu's MUL / MAXIMUM count too): qcc's
    runtime equals BUILTIN_REF exactly on real(-ish) inputs."""
    from qcc.calibration import load_representative_data
    from qcc.context import make_context
    from qcc.errors import QccError
    from qcc.passes.infer_scales import InferScales
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text

    model = qcc.load(path)
    specs = model.input_specs()
    calib, held_out = zoo_images("calib"), zoo_images("eval")
    try:
        samples = list(load_representative_data(calib, specs))[:8]
        inputs = list(load_representative_data(held_out, specs))[:2]
    except (QccError, TypeError):
        samples = model_samples(model, 8, seed=0, declared=True)
        inputs = model_samples(model, 2, seed=1, declared=True)
    options = PresetOptions(mode="int8", target="int8-only", decompose_prelu=prelu == "decomposed")
    passes = build_pipeline(preset_pipeline_text(options), dataset=samples)
    module = model.module.clone()
    ctx = make_context()
    requested = 0
    for p in passes:
        if isinstance(p, InferScales):
            for op in module.walk():
                if nn.op_spec(op) is not None and int16_capable(op)[0]:
                    request_int16(op)
                    requested += 1
        p.apply(ctx, module)
        module.verify()
    assert requested
    q = qcc.Model(module)
    kernels = _kernels(q)
    assert "callable" not in kernels
    assert sum(k.endswith("_i16") for k in kernels) > len(kernels) // 2, kernels
    content = q.to_tflite()
    for x in inputs:
        _assert_same(content, q, x)
