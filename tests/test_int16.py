"""int16 activations with int8 weights ("16x8"), per op: IR, passes, export, import.

The conventions are docs/ir.md's "int16 activations (16x8) and mixed precision"; the oracle is
LiteRT's reference kernels (`BUILTIN_REF`) running the .tflite qcc writes:

* every op whose declaration lists "int16x8" and that qcc quantizes, on its generated
  single-op model (`op_model`), quantized with that op asking for int16: LiteRT prepares and
  runs it (BUILTIN_REF and the default resolver), its activations are INT16 (biases INT64),
  and it is much closer to float than the same op in int8;
* a chain conv -> add -> fully_connected with some ops int16 and their neighbours int8: the
  QUANTIZE conversions sit at the borders, LiteRT runs it;
* the request is refused, one line naming the op, where TFLite has no 16x8 kernel;
* what qcc writes imports back as the same IR (round trip), and 16x8 files from elsewhere
  (ai-edge-quantizer's a16w8 recipe) import;
* qcc's integer runtime has no int16 kernel yet: `Model.run` fails with one
  MissingKernelError line.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import AUTO, REF, assert_one_line_error, run_litert, run_qcc, snr_db
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, StringAttr, TensorType, f32
from xdsl.dialects.func import FuncOp
from xdsl.utils.exceptions import PassFailedException

import qcc
from qcc.backends.tflite import export_tflite
from qcc.context import make_context
from qcc.dialects import nn, quant
from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir, print_ir
from qcc.passes import _quant_math as qm
from qcc.passes.infer_scales import (
    PRECISION_ATTR,
    InferScales,
    int16_capable,
    request_int16,
    requested_precision,
)
from qcc.runtime.errors import MissingKernelError
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
TT = schema.TensorType

CALIBRATION_SAMPLES = 8
EVAL_SEEDS = (100, 101)

GAIN_DB = 20.0
"""How much closer to float an op is with int16 activations than with int8 (dB), on the
generated models' uniform data."""
LUT_GAIN_DB = {"nn.rsqrt": 5.0}
"""RSQRT's 16x8 kernel is a 513-entry table interpolated linearly over the whole int16 input
range (elementwise.cc, LUTPopulate<int16_t>): with the example's inputs in [0.05, 4] one table
segment spans 4 / 256 = 0.0156, and at x = 0.05, where 1/sqrt(x) bends hardest (f'' ~ 1300),
linear interpolation is off by ~0.04 (measured 0.07 at x = 0.052, 1.6 %): an input that small
bounds the SNR near 47 dB (73 dB on samples without one), where int8 gives 39-40 dB."""


def _int16_ops() -> list[type]:
    """The ops with an example, "int16x8" among their declared precisions, quantized by qcc."""
    return [
        cls
        for cls in nn.op_classes()
        if (spec := nn.op_spec(cls)) is not None
        and spec.example is not None
        and "int16x8" in spec.precisions
        and spec.int8 == nn.KERNEL
    ]


def _body(module) -> list:
    (main,) = [op for op in module.body.block.ops if isinstance(op, FuncOp)]
    return list(main.body.block.ops)


@functools.cache
def _quantized(cls: type, precision: str) -> qcc.Model:
    """`cls`'s generated model quantized for BUILTIN_REF, the op asking for `precision`.
    Calibrated on the evaluation samples too: the tests measure the precision of the
    arithmetic, not how calibration ranges generalize (values beyond the calibrated range
    clip in both precisions alike, e.g. RSQRT's largest outputs)."""
    model = qcc.Model(import_tflite(tm.op_model(cls)))
    if precision == "int16":
        (op,) = [op for op in _body(model.module) if type(op) is cls]
        request_int16(op)
    seeds = (*range(CALIBRATION_SAMPLES), *EVAL_SEEDS)
    samples = [tm.op_inputs(cls, seed) for seed in seeds]
    return qcc.quantize(  # the op itself, not its decomposition (PRELU)
        model, representative_dataset=samples, target="reference", decompose_prelu=False
    )


def _tensor_types(content: bytes, builtin: int) -> tuple[int, list[int], list[int]]:
    """(version, input tensor types, output tensor types) of the one operator `builtin`."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    (graph,) = model.subgraphs
    found = []
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            ins = [graph.tensors[i].type if i >= 0 else -1 for i in operator.inputs]
            outs = [graph.tensors[i].type for i in operator.outputs]
            found.append((code.version, ins, outs))
    assert len(found) == 1, found
    return found[0]


def _operators(content: bytes) -> list[tuple[str, list[int], list[int]]]:
    """(builtin name, input types, output types) of every operator, in order."""
    names = {v: k for k, v in vars(Op).items() if not k.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    (graph,) = model.subgraphs
    ops = []
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        ops.append((
            names[max(code.builtinCode, code.deprecatedBuiltinCode)],
            [graph.tensors[i].type for i in operator.inputs if i >= 0],
            [graph.tensors[i].type for i in operator.outputs],
        ))
    return ops


def _with_quantized_weights(cls: type, q: qcc.Model) -> bytes:
    """`cls`'s float model with its weights and bias replaced by those of `q` (int8
    weights, bias-corrected int64 bias), dequantized: the float reference of an op with
    `AffineWeights`, so that the SNR measures the activations' precision, not the int8
    weights' (both precisions share them)."""
    affine = cls.get_trait(nn.AffineWeights)
    (qop,) = [op for op in _body(q.module) if type(op) is cls]
    module = import_tflite(tm.op_model(cls))
    (fop,) = [op for op in _body(module) if type(op) is cls]
    for index in (affine.weight_operand, affine.bias_operand):
        quantized = qop.operands[index].owner
        qtype = quantized.output.type.get_element_type()
        shape = quantized.output.type.get_shape()
        stored = np.asarray(quantized.value.get_values(), np.float64).reshape(shape)
        values = qm.dequantize_values(stored, qtype).astype(np.float32)
        fop.operands[index].owner.properties["value"] = DenseIntOrFPElementsAttr.from_list(
            TensorType(f32, shape), values.reshape(-1).tolist()
        )
    return export_tflite(module)


def _reference(cls: type, q: qcc.Model) -> bytes:
    if cls.get_trait(nn.AffineWeights) is not None:
        return _with_quantized_weights(cls, q)
    return tm.op_model(cls)


def _snr(content: bytes, reference: bytes, cls: type) -> float:
    values = []
    for seed in EVAL_SEEDS:
        inputs = tm.op_inputs(cls, seed)
        want = run_litert(reference, inputs, REF)
        got = run_litert(content, inputs, REF)
        values += [snr_db(w, g) for w, g in zip(want, got, strict=True)]
    return min(values)


# ------------------------------------------------------------------------------------------
# Every op with a 16x8 kernel


def test_int16_capable_is_the_declaration():
    """`int16_capable` says yes exactly for the ops whose declaration lists int16x8 and that
    qcc quantizes; the generated models cover every one of them."""
    capable = {
        cls for cls in nn.op_classes() if nn.op_spec(cls) and int16_capable(cls.create())[0]
    }
    assert capable == set(_int16_ops())
    assert nn.ConvLikeOp not in capable and nn.Conv2DOp in capable
    ok, why = int16_capable(nn.HardSwishOp.create())
    assert not ok and why == (
        "TFLite has no int16 (16x8) kernel for HARD_SWISH (its declaration lists int8 only)"
    )
    ok, why = int16_capable(nn.DivOp.create())
    assert not ok and why.startswith("qcc keeps nn.div float (DIV is not in TFLite's int8")


@pytest.mark.parametrize("cls", _int16_ops(), ids=lambda c: c.name)
def test_int16_op_runs_in_litert_and_beats_int8(cls: type):
    q8, q16 = _quantized(cls, "int8"), _quantized(cls, "int16")
    (op,) = [op for op in _body(q16.module) if type(op) is cls]
    assert requested_precision(op) == "int16"
    affine = cls.get_trait(nn.AffineWeights)
    int8_operands = cls.get_trait(nn.Int8OperandsIn16x8)
    for i, value in enumerate(op.operands):
        t = nn.qtype_of(value)
        if t is None:
            continue  # integer indices (GATHER)
        if affine is not None and i == affine.bias_operand:
            assert (t.storage_bits, t.zero_points) == (64, (0,) * len(t.zero_points))
        elif (affine is not None and i == affine.weight_operand) or (
            int8_operands is not None and i in int8_operands.operands
        ):
            assert t.storage_bits == 8, (i, t)
        else:
            assert qm.is_int16(t) and t.zero_point == 0, (i, t)
    for r in op.results:
        t = nn.qtype_of(r)
        assert qm.is_int16(t) and t.zero_point == 0, t

    content = q16.to_tflite()
    spec = nn.op_spec(cls)
    version, ins, outs = _tensor_types(content, getattr(Op, spec.builtin))
    assert set(outs) == {TT.INT16}
    assert TT.INT16 in ins and TT.FLOAT32 not in ins
    if affine is not None and cls is not nn.FullyConnectedOp:
        assert ins[-1] == TT.INT64  # the bias (CONV_2D, DEPTHWISE_CONV_2D: written if absent)
    assert version == spec.version_of(_signature(content, cls, spec))
    # the default resolver (XNNPACK declines int16: LiteRT's builtin kernels) runs it too
    inputs = tm.op_inputs(cls, EVAL_SEEDS[0])
    assert all(np.all(np.isfinite(y)) for y in run_litert(content, inputs, AUTO))

    reference = _reference(cls, q16)
    snr8, snr16 = _snr(q8.to_tflite(), reference, cls), _snr(content, reference, cls)
    gain = LUT_GAIN_DB.get(cls.name, GAIN_DB)
    assert snr16 > snr8 + gain, f"{cls.name}: int16 {snr16:.1f} dB, int8 {snr8:.1f} dB"


def _signature(content: bytes, cls: type, spec: nn.OpSpec) -> nn.OpSig:
    """What op_version.cc sees of the one `cls` operator of a .tflite, for its version."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    (graph,) = model.subgraphs
    names = {v: k.lower() for k, v in vars(TT).items() if not k.startswith("_")}
    (module_op,) = [op for op in _body(import_tflite(content)) if type(op) is cls]
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != getattr(Op, spec.builtin):
            continue

        def sig(i: int) -> nn.TensorSig | None:
            if i < 0:
                return None
            t = graph.tensors[i]
            scales = () if t.quantization is None or t.quantization.scale is None else tuple(
                float(s) for s in t.quantization.scale
            )
            return nn.TensorSig(names[t.type], tuple(int(d) for d in t.shape), scales)

        return nn.OpSig(
            module_op,
            tuple(sig(i) for i in operator.inputs),
            tuple(sig(i) for i in operator.outputs),  # type: ignore[misc]
        )
    raise AssertionError(f"no {spec.builtin} operator")


def test_int16_versions_follow_op_version():
    """ADD and SUB with int16 outputs write pot_scale_int16 = false (the general-scale
    kernel): versions 3 and 5; QUANTIZE into int16 is version 2, DEQUANTIZE of int16 3."""
    for cls, builtin, expected in ((nn.AddOp, Op.ADD, 3), (nn.SubOp, Op.SUB, 5)):
        content = _quantized(cls, "int16").to_tflite()
        assert _tensor_types(content, builtin)[0] == expected
        model = schema.ModelT.InitFromPackedBuf(content, 0)
        (operator,) = [
            o for o in model.subgraphs[0].operators
            if model.operatorCodes[o.opcodeIndex].builtinCode == builtin
        ]
        assert operator.builtinOptions.potScaleInt16 is False
    content = _quantized(nn.ReluOp, "int16").to_tflite()
    assert _tensor_types(content, Op.QUANTIZE) == (2, [TT.FLOAT32], [TT.INT16])
    assert _tensor_types(content, Op.DEQUANTIZE) == (3, [TT.INT16], [TT.FLOAT32])
    # int8 ADD keeps the schema's default (not written: the int8 bytes do not change)
    content = _quantized(nn.AddOp, "int8").to_tflite()
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    (operator,) = [
        o for o in model.subgraphs[0].operators
        if model.operatorCodes[o.opcodeIndex].builtinCode == Op.ADD
    ]
    assert operator.builtinOptions.potScaleInt16 is True
    assert _tensor_types(content, Op.ADD)[0] == 2


def test_fixed_output_ranges_are_the_int16_ones():
    expected = "!quant.uniform<i16:f32, 3.0517578125E-5>"  # 1/32768, zero point 0
    for cls in (nn.LogisticOp, nn.TanhOp, nn.SoftmaxOp):
        (op,) = [op for op in _body(_quantized(cls, "int16").module) if type(op) is cls]
        assert str(op.results[0].type.get_element_type()) == expected


@pytest.mark.parametrize("cls", [nn.Conv2DOp, nn.AddOp, nn.ConcatenationOp, nn.PReluOp],
                         ids=lambda c: c.name)
def test_what_qcc_writes_imports_back(cls: type):
    """Round trip: the .tflite imports as the same ops with the same types (tensor names
    aside), and a second export/import cycle changes nothing; LiteRT computes the same."""
    q16 = _quantized(cls, "int16")
    content = q16.to_tflite()
    back = import_tflite(content)
    back.verify()

    def signature(module) -> list[tuple]:
        return sorted(
            (op.name, tuple(str(v.type) for v in op.operands), tuple(str(r.type) for r in op.results))
            for op in _body(module)
            if op.name != "func.return"
        )

    assert signature(back) == signature(q16.module)
    again = export_tflite(back)
    assert export_tflite(import_tflite(again)) == again
    inputs = tm.op_inputs(cls, EVAL_SEEDS[0])
    for a, b in zip(run_litert(content, inputs, REF), run_litert(again, inputs, REF), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_integer_runtime_refuses_int16_naming_the_op():
    """An op without an int16 kernel in qcc's runtime (TRANSPOSE_CONV; the int16 kernels are
    tests/test_int16_kernels.py): one MissingKernelError line naming the op, after the
    QUANTIZE into int16 at the model input, which runs."""
    q = _quantized(nn.TransposeConvOp, "int16")
    with pytest.raises(MissingKernelError) as info:
        q.run(tm.op_inputs(nn.TransposeConvOp, 0))
    message = str(info.value)
    assert "\n" not in message and "'nn.transpose_conv'" in message, message
    assert "i16 activation" in message, message
    # with quantized model inputs (modify-io: the int16 type itself), the op itself
    model = qcc.Model(import_tflite(tm.op_model(nn.TransposeConvOp)))
    (op,) = [op for op in _body(model.module) if isinstance(op, nn.TransposeConvOp)]
    request_int16(op)
    samples = [tm.op_inputs(nn.TransposeConvOp, seed) for seed in range(CALIBRATION_SAMPLES)]
    q = qcc.quantize(model, representative_dataset=samples, target="reference", io_dtype="int8")
    assert q.inputs[0].dtype == np.int16
    with pytest.raises(MissingKernelError) as info:
        q.run([np.zeros(q.inputs[0].shape, np.int16)])
    message = str(info.value)
    assert "\n" not in message and "'nn.transpose_conv'" in message and "i16 activation" in message
    # CONV_2D has one: it runs
    q = _quantized(nn.Conv2DOp, "int16")
    assert q.run(tm.op_inputs(nn.Conv2DOp, 0))[0].dtype == np.float32


# ------------------------------------------------------------------------------------------
# A chain with int8 and int16 neighbours


def _chain_model() -> bytes:
    """x [1,8,8,3] -> CONV_2D (4 channels) -> ADD (+ x2 [1,8,8,4]) -> FULLY_CONNECTED (8)."""
    rng = np.random.default_rng(7)
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 3])
    x2 = b.add_input("x2", [1, 8, 8, 4])
    w = b.add_constant("conv/filter", rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32))
    bias = b.add_constant("conv/bias", rng.normal(0, 0.1, (4,)).astype(np.float32))
    o = schema.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW = schema.Padding.SAME, 1, 1
    c = b.add_op(Op.CONV_2D, [x, w, bias], [1, 8, 8, 4], o, name="conv")
    a = b.add_op(Op.ADD, [c, x2], [1, 8, 8, 4], schema.AddOptionsT(), name="add")
    fw = b.add_constant("fc/weights", rng.normal(0, 0.06, (8, 256)).astype(np.float32))
    fb = b.add_constant("fc/bias", rng.normal(0, 0.1, (8,)).astype(np.float32))
    y = b.add_op(Op.FULLY_CONNECTED, [a, fw, fb], [1, 8], schema.FullyConnectedOptionsT(),
                 name="fc")
    b.mark_output(y)
    return b.build()


def _chain_inputs(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32),
            rng.uniform(-1, 1, (1, 8, 8, 4)).astype(np.float32)]


def _chain(int16: tuple[str, ...], target: str = "reference") -> qcc.Model:
    model = qcc.Model(import_tflite(_chain_model()))
    for op in _body(model.module):
        if nn.op_spec(op) is not None and op.name != "nn.constant":
            from qcc.dialects.ir import location_text

            if location_text(op.location) in int16:
                request_int16(op)
    samples = [_chain_inputs(seed) for seed in range(CALIBRATION_SAMPLES)]
    return qcc.quantize(model, representative_dataset=samples, target=target)


def _chain_snr(q: qcc.Model) -> float:
    float_model = _chain_model()
    return min(
        snr_db(run_litert(float_model, x, REF)[0], run_litert(q.to_tflite(), x, REF)[0])
        for x in (_chain_inputs(seed) for seed in EVAL_SEEDS)
    )


def test_chain_int16_add_between_int8_neighbours():
    """conv (int8) -> add (int16) -> fully_connected (int8): a QUANTIZE int8 -> int16 after
    the conv, the second input quantized straight to int16, a QUANTIZE int16 -> int8 before
    the fully_connected; LiteRT runs it."""
    q = _chain(("add",))
    ops = [op for op in _body(q.module) if not isinstance(op, nn.ConstantOp)]
    text = [f"{op.name}@{op.location}" for op in ops]
    kinds = [op.name for op in ops]
    assert kinds == [
        "quant.qcast", "nn.conv2d", "quant.qcast", "quant.qcast", "nn.add", "quant.qcast",
        "nn.fully_connected", "quant.dcast", "func.return",
    ], text
    storage = [
        tuple(nn.qtype_of(v).storage_bits for v in (*op.operands[:1], *op.results)
              if nn.qtype_of(v) is not None)
        for op in ops
    ]
    assert storage[1] == (8, 8)  # conv
    assert storage[4] == (16, 16)  # add
    assert storage[6] == (8, 8)  # fully_connected
    to16_conv, to16_input, to8 = ops[2], ops[3], ops[5]
    assert to16_conv.input is ops[1].results[0] and 'loc("conv/int16")' == str(to16_conv.location)
    assert not quant.is_quantized(to16_input.input.type)  # float x2 -> int16 directly
    assert 'loc("x2/int16")' == str(to16_input.location)
    assert to8.input is ops[4].results[0] and 'loc("add/int8")' == str(to8.location)
    content = q.to_tflite()
    assert [name for name, _, _ in _operators(content)] == [
        "QUANTIZE", "CONV_2D", "QUANTIZE", "QUANTIZE", "ADD", "QUANTIZE", "FULLY_CONNECTED",
        "DEQUANTIZE",
    ]
    assert _operators(content)[2][1:] == ([TT.INT8], [TT.INT16])
    assert _operators(content)[5][1:] == ([TT.INT16], [TT.INT8])
    assert np.all(np.isfinite(run_litert(content, _chain_inputs(100), AUTO)[0]))
    snr8 = _chain_snr(_chain(()))
    assert _chain_snr(q) > snr8 - 1.0


def test_chain_int16_neighbours_of_an_int8_add():
    """conv (int16) -> add (int8) -> fully_connected (int16), and everything int16, which
    beats everything int8 clearly."""
    q = _chain(("conv", "fc"))
    ops = [op for op in _body(q.module) if not isinstance(op, nn.ConstantOp)]
    assert [op.name for op in ops] == [
        "quant.qcast", "quant.qcast", "nn.conv2d", "quant.qcast", "nn.add", "quant.qcast",
        "nn.fully_connected", "quant.dcast", "func.return",
    ]
    assert nn.qtype_of(ops[0].result).storage_bits == 8  # x2: int8 for the add
    assert nn.qtype_of(ops[1].result).storage_bits == 16  # x: straight to int16
    assert str(ops[1].location) == 'loc("x/int16")'
    assert nn.qtype_of(ops[3].result).storage_bits == 8  # conv -> int8
    assert nn.qtype_of(ops[5].result).storage_bits == 16  # add -> int16
    content = q.to_tflite()
    assert run_litert(content, _chain_inputs(100), REF)[0].shape == (1, 8)
    snr8 = _chain_snr(_chain(()))
    snr16 = _chain_snr(_chain(("conv", "add", "fc")))
    assert snr16 > snr8 + 5.0, (snr8, snr16)  # bounded by the int8 weights


def test_xnnpack_target_keeps_int16_ops():
    """legalize-target decides int8 against float only: an op that asked for int16 stays
    16x8 (XNNPACK leaves it to LiteRT's builtin kernel), not a float island."""
    q = _chain(("add",), target="xnnpack")
    (add,) = [op for op in _body(q.module) if isinstance(op, nn.AddOp)]
    assert qm.is_int16(nn.qtype_of(add.output)) and "qcc.reason" not in add.attributes
    assert np.all(np.isfinite(run_litert(q.to_tflite(), _chain_inputs(100), AUTO)[0]))


# ------------------------------------------------------------------------------------------
# Asking for it, and refusals


_HARD_SWISH_MLIR = """\
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.hard_swish %a {qcc.precision = "int16"} : (tensor<4xf32>) -> tensor<4xf32> loc("hs")
  %1 = quant.stats %0 {layer_stats = dense<[-0.4, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}
"""


def test_int16_on_an_op_without_a_16x8_kernel_is_one_line(tmp_path):
    path = tmp_path / "hs.mlir"
    path.write_text(_HARD_SWISH_MLIR)
    result = run_qcc(str(path), "--pass-pipeline=infer-scales")
    line = assert_one_line_error(result, "'nn.hard_swish' op")
    assert line == (
        'qcc: error: loc("hs"): \'nn.hard_swish\' op: qcc.precision = "int16" requested, but '
        "TFLite has no int16 (16x8) kernel for HARD_SWISH (its declaration lists int8 only)\n"
    )
    with pytest.raises(ValueError, match="no int16 \\(16x8\\) kernel for HARD_SWISH"):
        request_int16(nn.HardSwishOp.create())


def test_bad_precision_values_and_float_ops_are_refused():
    module = parse_ir(_HARD_SWISH_MLIR.replace("nn.hard_swish", "nn.relu").replace(
        '"int16"', '"int4"'))
    with pytest.raises(PassFailedException, match='qcc.precision must be "int8", "int16" or "float", '
                                                  'got "int4"'):
        InferScales().apply(make_context(), module)
    with pytest.raises(ValueError, match="qcc keeps nn.div float"):
        request_int16(nn.DivOp.create())
    div_mlir = """
    func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
      %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
      %0 = nn.div %a, %a {fused_activation = "NONE", qcc.precision = "int16"}
             : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("d")
      %1 = quant.stats %0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
      func.return %1 : tensor<4xf32>
    }"""
    with pytest.raises(PassFailedException, match=r'loc\("d"\): \'nn.div\' op: qcc.precision = '
                                                  '"int16" requested, but qcc keeps nn.div float'):
        InferScales().apply(make_context(), parse_ir(div_mlir))


def test_pipeline_option_names_ops_by_location_or_kind():
    text = _HARD_SWISH_MLIR.replace("nn.hard_swish", "nn.relu").replace(
        ' {qcc.precision = "int16"}', "")
    for option in (("hs",), ("nn.relu",)):
        module = parse_ir(text)
        InferScales(int16=option).apply(make_context(), module)
        (relu,) = [op for op in module.walk() if isinstance(op, nn.ReluOp)]
        assert requested_precision(relu) == "int16" and qm.is_int16(nn.qtype_of(relu.output))
    with pytest.raises(PassFailedException, match="no op named 'nope'"):
        InferScales(int16=("nope",)).apply(make_context(), parse_ir(text))
    result = run_qcc("--pass-pipeline=infer-scales{int16=hs}", "-", stdin=text.encode())
    assert result.returncode == 0, result.stderr
    assert b'{qcc.precision = "int16"}' in result.stdout
    assert b"!quant.uniform<i16:f32, 3.0518509447574615E-5>" in result.stdout


def test_explicit_int8_is_the_default():
    """Nothing changes when nothing asks for int16: every op asking for "int8" gives the
    same module as no request at all."""
    cls = nn.Conv2DOp
    default = _quantized(cls, "int8")
    model = qcc.Model(import_tflite(tm.op_model(cls)))
    for op in _body(model.module):
        if op.name.startswith("nn.") and op.name != "nn.constant":
            op.attributes[PRECISION_ATTR] = StringAttr("int8")
    seeds = (*range(CALIBRATION_SAMPLES), *EVAL_SEEDS)
    samples = [tm.op_inputs(cls, seed) for seed in seeds]
    explicit = qcc.quantize(model, representative_dataset=samples, target="reference",
                            decompose_prelu=False)
    assert explicit.to_tflite() == default.to_tflite()
    assert "quant.uniform<i16" not in default.to_mlir()
    assert "quant.uniform<i64" not in default.to_mlir()


# ------------------------------------------------------------------------------------------
# The verifiers


@pytest.mark.parametrize(
    ("operand", "result", "message"),
    [
        ("!quant.uniform<i16:f32, 0.001:3>", "!quant.uniform<i16:f32, 0.001>",
         "int16 operand #0 must have zero point 0 (TFLite's 16x8 kernels are symmetric), got 3"),
        ("!quant.uniform<i8:f32, 0.01>", "!quant.uniform<i16:f32, 0.001>",
         "operand #0 is i8 but result #0 is i16: a 16x8 kernel takes int16 activations in and out"),
    ],
)
def test_verifier_rules_of_16x8_kernels(operand: str, result: str, message: str):
    from xdsl.utils.exceptions import VerifyException

    x, y = f"tensor<4x{operand}>", f"tensor<4x{result}>"
    text = f"""
    func.func @main(%x: {x}) -> {y} {{
      %0 = nn.relu %x : ({x}) -> {y}
      func.return %0 : {y}
    }}"""
    with pytest.raises(VerifyException, match=re.escape(message)):
        parse_ir(text).verify()


def test_verifier_refuses_int16_on_an_op_without_a_16x8_kernel():
    from xdsl.utils.exceptions import VerifyException

    t = "tensor<4x!quant.uniform<i16:f32, 0.001>>"
    text = f"""
    func.func @main(%x: {t}) -> {t} {{
      %0 = nn.hard_swish %x : ({t}) -> {t}
      func.return %0 : {t}
    }}"""
    with pytest.raises(VerifyException, match="HARD_SWISH has none"):
        parse_ir(text).verify()


# ------------------------------------------------------------------------------------------
# Importing 16x8 files from elsewhere


def _add_model(pot: bool, scale: float) -> bytes:
    """An int16 ADD with pot_scale_int16 `pot` and every scale `scale`."""
    b = tm.ModelBuilder()
    x0 = b.add_input("x0", [1, 4], np.int16)
    x1 = b.add_input("x1", [1, 4], np.int16)
    o = schema.AddOptionsT()
    o.potScaleInt16 = pot
    y = b.add_op(Op.ADD, [x0, x1], [1, 4], o, name="y", dtype=np.int16)
    for t in (x0, x1, y):
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [scale], [0]
        b._tensors[t].quantization = q
    b.mark_output(y)
    return b.build()


def test_power_of_two_int16_add_imports_as_generic():
    """pot_scale_int16 = true with power-of-two scales is TFLite's LSTM ADD kernel, which
    nn.add does not stand for; otherwise it is the general-scale kernel, nn.add's."""
    kinds = {}
    for pot, scale in ((True, 2.0**-10), (True, 0.001), (False, 2.0**-10)):
        ops = _body(import_tflite(_add_model(pot, scale)))
        kinds[(pot, scale)] = [op.name for op in ops][0]
    assert kinds == {
        (True, 2.0**-10): "nn.generic", (True, 0.001): "nn.add", (False, 2.0**-10): "nn.add"
    }


def test_ai_edge_quantizer_a16w8_imports(tmp_path):
    """A 16x8 model written by ai-edge-quantizer (recipe static_wi8_ai16: int16 model
    inputs and outputs, int64 biases, version-1 operators) imports, verifies, and what qcc
    writes back computes the same under BUILTIN_REF."""
    import ai_edge_quantizer  # noqa: F401 - a test dependency (pyproject [test])
    cls = nn.Conv2DOp
    float_model = tmp_path / "conv.tflite"
    float_model.write_bytes(export_tflite(import_tflite(tm.op_model(cls)), signature=True))
    out = tmp_path / "conv_a16w8.tflite"
    script = f"""
import numpy as np
from ai_edge_quantizer import quantizer, recipe
from qcc.dialects import nn
from qcc.testing import tflite_models as tm
qt = quantizer.Quantizer(bytearray(open({str(float_model)!r}, "rb").read()),
                         recipe.static_wi8_ai16())
data = [{{"x": tm.op_inputs(nn.Conv2DOp, s)[0]}} for s in range(4)]
cal = qt.calibrate({{"serving_default": data}}, num_threads=1)
res = qt.quantize(cal, enable_progress_bar=False, enable_progress_report=False)
open({str(out)!r}, "wb").write(bytes(res.quantized_model))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    content = out.read_bytes()
    module = import_tflite(content)
    module.verify()
    text = print_ir(module)
    assert "!quant.uniform<i16:f32" in text and "!quant.uniform<i64:f32:0" in text
    written = export_tflite(module)
    x = tm.op_inputs(cls, 0)[0]
    scale = schema.ModelT.InitFromPackedBuf(content, 0).subgraphs[0].tensors[
        schema.ModelT.InitFromPackedBuf(content, 0).subgraphs[0].inputs[0]
    ].quantization.scale[0]
    xq = np.clip(np.round(x / scale), -32768, 32767).astype(np.int16)
    for a, b in zip(run_litert(content, [xq], REF), run_litert(written, [xq], REF), strict=True):
        np.testing.assert_array_equal(a, b)
