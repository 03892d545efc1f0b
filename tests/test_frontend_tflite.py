"""The TFLite frontend: every in-code model imports, verifies and round-trips as text; ops,
properties, names and locations are what the .tflite file says; float16 and sparse weights
are folded into f32 constants (checked against LiteRT); bad files raise QccError only.

Real models: set QCC_MODEL_ZOO to a folder of *.tflite files (e.g. /work/shared/models) and
`test_zoo_model` imports each of them; without it that test has no cases.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import REF, litert_interpreter, litert_invoke, zoo_parametrize
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    Float32Type,
    ModuleOp,
    NameLoc,
    StringAttr,
)

from xdsl.ir import BlockArgument

from qcc.dialects import nn
from qcc.errors import QccError
from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir, print_ir
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
Act = schema.ActivationFunctionType

# The nn op each TFLite builtin must become (written independently of the importer's table).
EXPECTED_NN_OP = {
    Op.CONV_2D: "nn.conv2d",
    Op.DEPTHWISE_CONV_2D: "nn.depthwise_conv2d",
    Op.TRANSPOSE_CONV: "nn.transpose_conv",
    Op.FULLY_CONNECTED: "nn.fully_connected",
    Op.BATCH_MATMUL: "nn.batch_matmul",
    Op.ADD: "nn.add",
    Op.SUB: "nn.sub",
    Op.MUL: "nn.mul",
    Op.DIV: "nn.div",
    Op.MAXIMUM: "nn.maximum",
    Op.MINIMUM: "nn.minimum",
    Op.PRELU: "nn.prelu",
    Op.RELU: "nn.relu",
    Op.RELU6: "nn.relu6",
    Op.RELU_N1_TO_1: "nn.relu_n1_to_1",
    Op.LEAKY_RELU: "nn.leaky_relu",
    Op.LOGISTIC: "nn.logistic",
    Op.TANH: "nn.tanh",
    Op.HARD_SWISH: "nn.hard_swish",
    Op.SOFTMAX: "nn.softmax",
    Op.PAD: "nn.pad",
    Op.PADV2: "nn.pad",
    Op.MAX_POOL_2D: "nn.max_pool2d",
    Op.AVERAGE_POOL_2D: "nn.avg_pool2d",
    Op.MEAN: "nn.mean",
    Op.SUM: "nn.sum",
    Op.RESHAPE: "nn.reshape",
    Op.SQUEEZE: "nn.squeeze",
    Op.TRANSPOSE: "nn.transpose",
    Op.CONCATENATION: "nn.concatenation",
    Op.SPLIT: "nn.split",
    Op.SLICE: "nn.slice",
    Op.STRIDED_SLICE: "nn.strided_slice",
    Op.GATHER: "nn.gather",
    Op.RESIZE_BILINEAR: "nn.resize_bilinear",
    Op.RESIZE_NEAREST_NEIGHBOR: "nn.resize_nearest_neighbor",
    Op.DEPTH_TO_SPACE: "nn.depth_to_space",
    Op.SPACE_TO_DEPTH: "nn.space_to_depth",
}
FOLDED = {Op.DEQUANTIZE, Op.DENSIFY}


@functools.cache
def _models() -> dict[str, bytes]:
    return {**tm.all_runnable_models(), "custom_op": tm.custom_op_model()}


def _model_names() -> list[str]:
    return sorted(_models())


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _main(module: ModuleOp) -> func.FuncOp:
    (main,) = [op for op in module.body.block.ops if isinstance(op, func.FuncOp)]
    assert main.sym_name.data == "main"
    return main


def _body_ops(module: ModuleOp) -> list:
    return [op for op in _main(module).body.block.ops if not isinstance(op, func.ReturnOp)]


def _nn_ops(module: ModuleOp) -> list:
    return [op for op in _body_ops(module) if not isinstance(op, nn.ConstantOp)]


def _loc(op) -> str:
    assert isinstance(op.location, NameLoc), f"{op.name} has no name location"
    return op.location.desc.data


def _model_t(model: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(model, 0)


def _tensor_name(model: schema.ModelT, index: int) -> str:
    return model.subgraphs[0].tensors[index].name.decode()


def _builtin(model: schema.ModelT, operator: schema.OperatorT) -> int:
    code = model.operatorCodes[operator.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _roundtrip(module: ModuleOp) -> str:
    text = print_ir(module)
    again = parse_ir(text)
    again.verify()
    assert print_ir(again) == text
    return text


def _assert_imports_cleanly(module: ModuleOp) -> str:
    module.verify()
    for op in _body_ops(module):
        _loc(op)  # every op, constants included, carries loc("<tensor name>")
    text = _roundtrip(module)
    assert 'loc("' in text
    return text


def _litert_tensor(model: bytes, name: str, inputs: list[np.ndarray]) -> np.ndarray:
    """The value LiteRT's reference kernels compute for the tensor called `name` of `model`
    when run on `inputs` (the default resolver's delegate does not keep DENSIFY's output)."""
    graph = _model_t(model).subgraphs[0]
    (index,) = [i for i, t in enumerate(graph.tensors) if t.name.decode() == name]
    interpreter = litert_interpreter(model, REF, preserve_all_tensors=True)
    litert_invoke(interpreter, inputs)
    return interpreter.get_tensor(index)


def _constant_value(op: nn.ConstantOp) -> np.ndarray:
    dtype = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i64": np.int64}[
        str(op.output.type.get_element_type())
    ]
    return np.frombuffer(op.value.data.data, dtype=dtype).reshape(op.output.type.get_shape())


# ------------------------------------------------------------------------------------------
# Every generated model
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _model_names())
def test_model_imports_verifies_and_roundtrips(name: str):
    data = _models()[name]
    module = import_tflite(data)
    _assert_imports_cleanly(module)

    model = _model_t(data)
    graph = model.subgraphs[0]
    main = _main(module)
    # arguments/results: the subgraph's inputs/outputs, in order, named
    assert [a.data["nn.name"].data for a in main.arg_attrs] == [
        _tensor_name(model, t) for t in graph.inputs
    ]
    assert [a.data["nn.name"].data for a in main.res_attrs] == [
        _tensor_name(model, t) for t in graph.outputs
    ]
    assert [tuple(t.get_shape()) for t in main.function_type.inputs] == [
        tuple(graph.tensors[t].shape) for t in graph.inputs
    ]

    # one nn op per (non-folded) operator, in order, of the right kind, located at its output
    expected = []
    for operator in graph.operators:
        builtin = _builtin(model, operator)
        if builtin in FOLDED:
            continue
        nn_name = "nn.generic" if builtin == Op.CUSTOM else EXPECTED_NN_OP[builtin]
        expected.append((nn_name, _tensor_name(model, operator.outputs[0])))
    assert [(op.name, _loc(op)) for op in _nn_ops(module)] == expected

    # constants: one per tensor, created at first use, i.e. only constants lie between a
    # constant and its first user
    body = list(_main(module).body.block.ops)
    constants = [op for op in body if isinstance(op, nn.ConstantOp)]
    assert len({_loc(c) for c in constants}) == len(constants)
    for c in constants:
        first_user = min(body.index(use.operation) for use in c.output.uses)
        between = body[body.index(c) : first_user]
        assert all(isinstance(op, nn.ConstantOp) for op in between), _loc(c)


@pytest.mark.parametrize("name", _model_names())
def test_constants_hold_the_buffer_bytes(name: str):
    """Unfolded constants are the file's buffers, byte for byte."""
    data = _models()[name]
    model = _model_t(data)
    tensors = {t.name.decode(): t for t in model.subgraphs[0].tensors}
    for op in _body_ops(import_tflite(data)):
        if not isinstance(op, nn.ConstantOp):
            continue
        tensor = tensors[_loc(op)]
        if tensor.sparsity is not None or tensor.type == schema.TensorType.FLOAT16:
            continue
        if model.buffers[tensor.buffer].data is None:  # folded (DEQUANTIZE/DENSIFY output)
            continue
        assert op.value.data.data == bytes(np.asarray(model.buffers[tensor.buffer].data))
        assert tuple(op.output.type.get_shape()) == tuple(tensor.shape)


def test_model_set_covers_every_mapped_builtin():
    seen = set()
    for data in _models().values():
        model = _model_t(data)
        seen |= {_builtin(model, o) for o in model.subgraphs[0].operators}
    assert set(EXPECTED_NN_OP) <= seen


# ------------------------------------------------------------------------------------------
# Properties of individual ops
# ------------------------------------------------------------------------------------------


def _single(name: str):
    module = import_tflite(_models()[name])
    (op,) = _nn_ops(module)
    return op


def test_conv2d_properties():
    op = _single("conv_2d_same_relu6")
    assert isinstance(op, nn.Conv2DOp)
    assert op.padding.data == "SAME" and op.fused_activation.data == "RELU6"
    assert nn.ints(op.stride) == (1, 1) and nn.ints(op.dilation) == (1, 1)
    assert op.bias is not None
    op = _single("conv_2d_valid_stride2")
    assert op.padding.data == "VALID" and nn.ints(op.stride) == (2, 2)
    assert nn.ints(_single("conv_2d_dilation2").dilation) == (2, 2)


def test_depthwise_multiplier():
    op = _single("depthwise_conv_2d_multiplier2")
    assert isinstance(op, nn.DepthwiseConv2DOp)
    assert op.depth_multiplier.value.data == 2


def test_fully_connected_without_bias_has_no_bias_operand():
    op = _single("fully_connected_no_bias")
    assert isinstance(op, nn.FullyConnectedOp) and op.bias is None
    assert len(op.operands) == 2
    assert _single("fully_connected_keep_num_dims").keep_num_dims.value.data


def test_transpose_conv_operand_order():
    op = _single("transpose_conv_same_stride2_bias")
    assert isinstance(op, nn.TransposeConvOp)
    # TFLite's (output_shape, weights, input, bias) becomes (input, filter, bias)
    assert isinstance(op.input, BlockArgument)
    assert isinstance(op.filter.owner, nn.ConstantOp) and op.bias is not None
    assert nn.ints(op.stride) == (2, 2)


def test_static_config_becomes_properties():
    pad = _single("pad")
    assert isinstance(pad, nn.PadOp) and pad.pad_value is None and len(nn.ints(pad.paddings)) == 8
    padv2 = _single("padv2_constant_value")
    assert padv2.pad_value is not None and isinstance(padv2.pad_value.owner, nn.ConstantOp)
    assert nn.ints(_single("transpose").perm) == (0, 3, 1, 2)
    sl = _single("slice")
    assert nn.ints(sl.begin) == (0, 2, 1, 0) and nn.ints(sl.size) == (1, 4, 5, -1)
    mean = _single("mean_spatial_keep_dims")
    assert nn.ints(mean.axes) == (1, 2) and mean.keep_dims.value.data
    assert _single("concatenation_axis1").axis.value.data == 1
    ss = _single("strided_slice_masks")
    assert ss.begin_mask.value.data == 0b0101 and nn.ints(ss.strides) == (1, 2, 1, 2)
    gather = _single("gather_axis1")
    assert gather.axis.value.data == 1 and isinstance(gather.indices.owner, nn.ConstantOp)
    assert nn.ints(_single("squeeze").squeeze_dims) == (1, 2)
    assert _single("depth_to_space").block_size.value.data == 2
    assert _single("resize_bilinear_align_corners").align_corners.value.data
    assert _single("resize_nearest_neighbor_half_pixel_centers").half_pixel_centers.value.data
    # config tensors used only as properties never become constants
    module = import_tflite(_models()["transpose"])
    assert not [op for op in _body_ops(module) if isinstance(op, nn.ConstantOp)]


def test_split_axis_is_input_zero():
    op = _single("split_axis1_4")
    assert isinstance(op, nn.SplitOp) and op.axis.value.data == 1 and len(op.outputs) == 4


def test_softmax_and_leaky_relu_floats():
    assert _single("softmax_beta0_5").beta.value.data == 0.5
    assert isinstance(_single("leaky_relu").alpha.type, Float32Type)


def test_multi_io_names_and_order():
    main = _main(import_tflite(tm.multi_io_model()))
    assert [a.data["nn.name"].data for a in main.arg_attrs] == ["image", "features"]
    assert [a.data["nn.name"].data for a in main.res_attrs] == ["sum", "concat"]
    assert [tuple(t.get_shape()) for t in main.function_type.outputs] == [
        (1, 8, 8, 4),
        (1, 8, 8, 9),
    ]


# ------------------------------------------------------------------------------------------
# Folding: float16 and sparse weights
# ------------------------------------------------------------------------------------------


def test_fp16_weights_fold_into_f32_constants():
    data = tm.fp16_weights_model()
    module = import_tflite(data)
    text = _assert_imports_cleanly(module)
    assert "DEQUANTIZE" not in text and "f16" not in text
    (conv,) = _nn_ops(module)
    assert isinstance(conv, nn.Conv2DOp)
    model = _model_t(data)
    buffers = {
        _tensor_name(model, i): np.asarray(model.buffers[t.buffer].data).view(np.float16)
        for i, t in enumerate(model.subgraphs[0].tensors)
        if t.type == schema.TensorType.FLOAT16
    }
    for operand, source in ((conv.filter, "conv/filter_fp16"), (conv.bias, "conv/bias_fp16")):
        const = operand.owner
        assert isinstance(const, nn.ConstantOp)
        assert isinstance(const.output.type.get_element_type(), Float32Type)
        assert _loc(const) == source.removesuffix("_fp16")
        np.testing.assert_array_equal(
            _constant_value(const).reshape(-1), buffers[source].astype(np.float32)
        )


def test_sparse_weights_densify_like_litert():
    data = tm.sparse_weights_model()
    module = import_tflite(data)
    text = _assert_imports_cleanly(module)
    assert "DENSIFY" not in text
    (fc,) = _nn_ops(module)
    weights = _constant_value(fc.filter.owner)
    x = tm.random_inputs([[1, 64]])
    expected = _litert_tensor(data, "fc/weights", x)
    np.testing.assert_array_equal(weights, expected)
    assert (weights == 0).mean() > 0.5


def _block_sparse(dense: np.ndarray, block: tuple[int, int], index_type: int):
    """Encode a 2-D matrix with 2-D blocks: d0, d1 (block grid) then the block contents;
    d0 DENSE, d1 SPARSE_CSR over the non-zero blocks, in-block dims DENSE."""
    bh, bw = block
    rows, cols = dense.shape[0] // bh, dense.shape[1] // bw
    blocks = dense.reshape(rows, bh, cols, bw).transpose(0, 2, 1, 3)
    nonzero = np.abs(blocks).sum(axis=(2, 3)) != 0
    segments = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))])
    indices = np.nonzero(nonzero)[1]
    values = blocks[nonzero].reshape(-1)
    vector_class, np_type = {
        schema.SparseIndexVector.Int32Vector: (schema.Int32VectorT, np.int32),
        schema.SparseIndexVector.Uint16Vector: (schema.Uint16VectorT, np.uint16),
        schema.SparseIndexVector.Uint8Vector: (schema.Uint8VectorT, np.uint8),
    }[index_type]

    def vector(values):
        v = vector_class()
        v.values = np.asarray(values, dtype=np_type).tolist()
        return v

    def dim(fmt, size=0, seg=None, idx=None):
        m = schema.DimensionMetadataT()
        m.format, m.denseSize = fmt, size
        if seg is not None:
            m.arraySegmentsType = m.arrayIndicesType = index_type
            m.arraySegments, m.arrayIndices = vector(seg), vector(idx)
        return m

    sparsity = schema.SparsityParametersT()
    sparsity.traversalOrder = [0, 1, 2, 3]
    sparsity.blockMap = [0, 1]
    sparsity.dimMetadata = [
        dim(schema.DimensionType.DENSE, rows),
        dim(schema.DimensionType.SPARSE_CSR, 0, segments, indices),
        dim(schema.DimensionType.DENSE, bh),
        dim(schema.DimensionType.DENSE, bw),
    ]
    return values, sparsity


@pytest.mark.parametrize(
    "index_type",
    [
        schema.SparseIndexVector.Int32Vector,
        schema.SparseIndexVector.Uint16Vector,
        schema.SparseIndexVector.Uint8Vector,
    ],
)
def test_block_sparse_weights_densify_like_litert(index_type: int):
    rng = np.random.default_rng(7)
    dense = rng.standard_normal([8, 12]).astype(np.float32)
    grid = dense.reshape(4, 2, 3, 4)
    grid[rng.random([4, 1, 3, 1]).repeat(2, 1).repeat(4, 3) < 0.5] = 0.0
    dense = grid.reshape(8, 12)
    values, sparsity = _block_sparse(dense, (2, 4), index_type)
    b = tm.ModelBuilder()
    x = b.add_input("x", [8, 12])
    sparse = b.add_constant("w_sparse", values, shape=[8, 12], sparsity=sparsity)
    w = b.add_op(Op.DENSIFY, [sparse], [8, 12], schema.DensifyOptionsT(), name="w")
    y = b.add_op(Op.ADD, [x, w], [8, 12], schema.AddOptionsT(), name="y")
    b.mark_output(y)
    data = b.build()

    module = import_tflite(data)
    _assert_imports_cleanly(module)
    (add,) = _nn_ops(module)
    weights = _constant_value(add.rhs.owner)
    np.testing.assert_array_equal(weights, dense)
    litert = _litert_tensor(data, "w", [np.zeros([8, 12], np.float32)])
    np.testing.assert_array_equal(weights, litert)


def test_int8_weights_behind_dequantize_fold():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    q = np.array([[-128, 0, 5, 127], [1, 2, 3, 4]], np.int8)
    wq = b.add_constant("w_int8", q)
    quant = schema.QuantizationParametersT()
    quant.scale, quant.zeroPoint, quant.quantizedDimension = [0.5, 0.25], [0, 1], 0
    b._tensors[wq].quantization = quant
    w = b.add_op(Op.DEQUANTIZE, [wq], [2, 4], name="w")
    y = b.add_op(Op.FULLY_CONNECTED, [x, w, -1], [1, 2], schema.FullyConnectedOptionsT(), name="y")
    b.mark_output(y)
    (fc,) = _nn_ops(import_tflite(b.build()))
    expected = np.array([[-64, 0, 2.5, 63.5], [0, 0.25, 0.5, 0.75]], np.float32)
    np.testing.assert_array_equal(_constant_value(fc.filter.owner), expected)


# ------------------------------------------------------------------------------------------
# nn.generic
# ------------------------------------------------------------------------------------------


def test_custom_op_becomes_generic_with_its_option_bytes():
    module = import_tflite(tm.custom_op_model())
    _assert_imports_cleanly(module)
    relu, custom, logistic = _nn_ops(module)
    assert isinstance(relu, nn.ReluOp) and isinstance(logistic, nn.LogisticOp)
    assert isinstance(custom, nn.GenericOp)
    assert custom.op_name.data == tm.CUSTOM_OP_CODE
    assert custom.custom.value.data and custom.version.value.data == 1
    assert custom.option_bytes == tm.CUSTOM_OP_OPTIONS
    assert custom.options_type is None
    assert _loc(custom) == "custom"
    # and the bytes survive the text round trip
    (again,) = [op for op in _nn_ops(parse_ir(print_ir(module))) if isinstance(op, nn.GenericOp)]
    assert again.option_bytes == tm.CUSTOM_OP_OPTIONS


def test_builtin_without_nn_op_becomes_generic_with_packed_options():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4, 4, 2])
    pads = b.add_constant("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    opts = schema.MirrorPadOptionsT()
    opts.mode = schema.MirrorPadMode.SYMMETRIC
    y = b.add_op(Op.MIRROR_PAD, [x, pads], [1, 6, 6, 2], opts, name="y", version=2)
    b.mark_output(y)
    module = import_tflite(b.build())
    _assert_imports_cleanly(module)
    (op,) = _nn_ops(module)
    assert isinstance(op, nn.GenericOp)
    assert op.op_name.data == "MIRROR_PAD" and not op.custom.value.data
    assert op.version.value.data == 2 and op.options_type.data == "MirrorPadOptions"
    unpacked = getattr(schema, op.options_type.data + "T").InitFromPackedBuf(op.option_bytes, 0)
    assert unpacked.mode == schema.MirrorPadMode.SYMMETRIC
    assert len(op.operands) == 2 and isinstance(op.operands[1].owner, nn.ConstantOp)


def test_generic_records_omitted_inputs():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    y = b.add_tensor("y", [1, 4])
    b.add_operator(Op.ABS, [x, -1], [y])
    b.mark_output(y)
    module = import_tflite(b.build())
    _assert_imports_cleanly(module)
    (op,) = _nn_ops(module)
    assert isinstance(op, nn.GenericOp) and op.op_name.data == "ABS"
    assert op.options is None and nn.ints(op.attributes["nn.omitted_inputs"]) == (1,)


def test_unexpected_extra_input_falls_back_to_generic():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    y = b.add_tensor("y", [1, 4])
    b.add_operator(Op.RELU, [x, x], [y])
    b.mark_output(y)
    module = import_tflite(b.build())
    _assert_imports_cleanly(module)
    (op,) = _nn_ops(module)
    assert isinstance(op, nn.GenericOp) and op.op_name.data == "RELU" and len(op.operands) == 2
    assert len(list(_main(module).body.block.args[0].uses)) == 2  # none by a dropped nn.relu


def test_unsupported_activation_falls_back_to_generic():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    opts = schema.AddOptionsT()
    opts.fusedActivationFunction = Act.SIGN_BIT
    y = b.add_op(Op.ADD, [x, x], [1, 4], opts, name="y")
    b.mark_output(y)
    (op,) = _nn_ops(import_tflite(b.build()))
    assert isinstance(op, nn.GenericOp) and op.options_type.data == "AddOptions"


# ------------------------------------------------------------------------------------------
# Errors: QccError, one line, naming the file and the problem
# ------------------------------------------------------------------------------------------


def _error(source) -> str:
    with pytest.raises(QccError) as info:
        import_tflite(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path):
    path = tmp_path / "missing.tflite"
    message = _error(path)
    assert str(path) in message and "cannot read" in message


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    assert str(path) in _error(path) and "empty" in _error(path)
    assert "empty" in _error(b"")


def test_not_a_tflite_file(tmp_path: Path):
    path = tmp_path / "model.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    message = _error(str(path))
    assert str(path) in message and "TFL3" in message


def test_random_bytes_with_identifier():
    rng = np.random.default_rng(1)
    for _ in range(20):
        junk = bytearray(rng.bytes(int(rng.integers(8, 4000))))
        junk[4:8] = b"TFL3"
        _error(bytes(junk))


def test_truncated_models():
    data = _models()["residual_classifier"]
    for length in (4, 8, 12, 32, 100, len(data) // 3, len(data) // 2, len(data) - 100):
        _error(data[:length])


def _flip_positions(data: bytes, count: int, seed: int) -> list[int]:
    """Bit positions to flip: the flatbuffer's tables and vectors are at the start and the
    end of the file (weights lie in between), so both regions are sampled."""
    rng = np.random.default_rng(seed)
    head = rng.integers(0, min(len(data), 512) * 8, count // 2)
    tail = rng.integers(max(0, len(data) - 4096) * 8, len(data) * 8, count - count // 2)
    return sorted({int(p) for p in np.concatenate([head, tail])})


@pytest.mark.parametrize("name", ["residual_classifier", "custom_op", "sparse_weights"])
def test_bit_flips_raise_qcc_error_or_import(name: str):
    data = _models()[name]
    start = time.perf_counter()
    for bit in _flip_positions(data, 48, seed=len(name)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            module = import_tflite(bytes(flipped))
        except QccError as e:
            assert "\n" not in str(e)
            continue
        module.verify()
    assert time.perf_counter() - start < 60


@zoo_parametrize("path")
def test_bit_flips_in_a_zoo_model(path: Path):
    """As above on a real model: every mutant raises a one-line QccError or imports to IR
    that verifies; some are refused."""
    data = path.read_bytes()
    refused = 0
    for bit in _flip_positions(data, 40, seed=3):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            module = import_tflite(bytes(flipped))
        except QccError as e:
            assert "\n" not in str(e)
            refused += 1
            continue
        module.verify()
    assert refused > 0


def _edit(model: bytes, edit) -> bytes:
    """Re-serialize a model after `edit(ModelT)`."""
    m = _model_t(model)
    edit(m)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_bad_indices_and_sizes():
    data = _models()["conv_2d_same"]

    def bad_tensor(m):
        operator = m.subgraphs[0].operators[0]
        operator.inputs = [99, *list(operator.inputs)[1:]]

    def bad_buffer(m):
        m.subgraphs[0].tensors[1].buffer = 1000

    def bad_opcode(m):
        m.subgraphs[0].operators[0].opcodeIndex = 7

    def short_buffer(m):
        graph = m.subgraphs[0]
        weight = graph.tensors[graph.operators[0].inputs[1]]
        m.buffers[weight.buffer].data = np.asarray(m.buffers[weight.buffer].data)[:-4]

    def no_subgraph(m):
        m.subgraphs = []

    assert "tensor index 99" in _error(_edit(data, bad_tensor))
    assert "buffer 1000" in _error(_edit(data, bad_buffer))
    assert "operator code 7" in _error(_edit(data, bad_opcode))
    assert "bytes" in _error(_edit(data, short_buffer))
    assert "no subgraph" in _error(_edit(data, no_subgraph))


def test_non_constant_config_input_is_an_error():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 2, 3, 4])
    perm = b.add_input("perm", [4], np.int32)
    y = b.add_op(Op.TRANSPOSE, [x, perm], [1, 4, 2, 3], schema.TransposeOptionsT(), name="y")
    b.mark_output(y)
    message = _error(b.build())
    assert "TRANSPOSE" in message and "perm" in message and "constant" in message


def test_verifier_failure_names_op_and_location():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 3])
    w = b.add_constant("w", np.zeros([4, 3, 3, 3], np.float32))
    bias = b.add_constant("bias", np.zeros([4], np.float32))
    opts = schema.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = schema.Padding.VALID, 1, 1
    y = b.add_op(Op.CONV_2D, [x, w, bias], [1, 8, 8, 4], opts, name="net/conv")
    b.mark_output(y)
    message = _error(b.build())
    assert "CONV_2D" in message and 'loc("net/conv")' in message and "nn.conv2d" in message


def test_zero_stride_is_an_error_not_a_crash():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 3])
    y = b.add_op(Op.MAX_POOL_2D, [x], [1, 8, 8, 3], schema.Pool2DOptionsT(), name="pool")
    b.mark_output(y)
    assert "MAX_POOL_2D" in _error(b.build())


def test_use_before_definition_is_an_error():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    h = b.add_tensor("h", [1, 4])
    y = b.add_op(Op.RELU, [h], [1, 4], name="y")
    b.add_operator(Op.RELU, [x], [h])  # h produced after its use
    b.mark_output(y)
    assert "'h'" in _error(b.build())


# ------------------------------------------------------------------------------------------
# Real models (QCC_MODEL_ZOO)
# ------------------------------------------------------------------------------------------


@zoo_parametrize("path")
def test_zoo_model(path: Path):
    start = time.perf_counter()
    module = import_tflite(path)
    elapsed = time.perf_counter() - start
    _assert_imports_cleanly(module)
    main = _main(module)
    assert all(isinstance(a.data["nn.name"], StringAttr) for a in main.arg_attrs)
    for op in _nn_ops(module):
        if isinstance(op, nn.GenericOp) and op.op_name.data == "DEQUANTIZE":
            assert not isinstance(op.operands[0].owner, nn.ConstantOp), "unfolded DEQUANTIZE"
    print(f"{path.name}: imported in {elapsed:.3f} s")
    assert elapsed < 5.0


# ---------------------------------------------------------------------------------------------
# Dead operators


def _keras_reshape_model(with_dead_custom: bool = False) -> bytes:
    """FULLY_CONNECTED, then the output RESHAPE a converted Keras Reshape writes: its shape
    operand computed at run time, SHAPE -> STRIDED_SLICE (the batch) -> PACK. qcc's
    nn.reshape takes its static shape, so that chain feeds no output. Optionally a custom op
    whose result no output reads."""
    b = tm.ModelBuilder()
    rng = np.random.default_rng(0)
    x = b.add_input("x", [1, 5, 16, 1])
    flat = b.add_op(tm.Op.RESHAPE, [x, b.add_constant("flat_shape", np.array([1, 80], np.int32))],
                    [1, 80], schema.ReshapeOptionsT(), name="flat")
    fc = schema.FullyConnectedOptionsT()
    fc.fusedActivationFunction = tm.Act.RELU
    y = b.add_op(tm.Op.FULLY_CONNECTED,
                 [flat, b.add_constant("w", (rng.standard_normal((80, 80)) * 0.1).astype(np.float32)),
                  b.add_constant("bias", (rng.standard_normal(80) * 0.1).astype(np.float32))],
                 [1, 80], fc, name="fc")
    so = schema.ShapeOptionsT()
    so.outType = schema.TensorType.INT32
    shape = b.add_op(tm.Op.SHAPE, [y], [2], so, name="shape", dtype=np.int32)
    ss = schema.StridedSliceOptionsT()
    ss.shrinkAxisMask = 1
    batch = b.add_op(tm.Op.STRIDED_SLICE, [shape, *(b.add_constant(n, np.array([v], np.int32))
                                                    for n, v in (("b", 0), ("e", 1), ("s", 1)))],
                     [], ss, name="batch", dtype=np.int32)
    po = schema.PackOptionsT()
    po.valuesCount, po.axis = 4, 0
    dims = [batch, *(b.add_constant(f"d{v}", np.array(v, np.int32)) for v in (5, 16, 1))]
    target = b.add_op(tm.Op.PACK, dims, [4], po, name="pack", dtype=np.int32)
    out = b.add_op(tm.Op.RESHAPE, [y, target], [1, 5, 16, 1], schema.ReshapeOptionsT(), name="out")
    if with_dead_custom:
        dead = b.add_tensor("side", [1, 80], np.float32)
        b.add_custom_operator("MySideEffect", [y], [dead])
    b.mark_output(out)
    return b.build()


def test_ops_no_output_depends_on_are_pruned_at_import():
    module = import_tflite(_keras_reshape_model())
    names = [op.name for op in module.walk()]
    assert "nn.generic" not in names and "nn.strided_slice" not in names, names
    assert names.count("nn.reshape") == 2 and names.count("nn.constant") == 2, names
    import qcc

    content = _keras_reshape_model()
    x = np.random.default_rng(1).uniform(0, 1, (1, 5, 16, 1)).astype(np.float32)
    interpreter = litert_interpreter(content, REF)
    (ref,) = litert_invoke(interpreter, [x])
    (ours,) = qcc.Model(module).run([x])
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    # and it quantizes (the int32 chain used to stop calibration) and runs bit-exact
    q = qcc.quantize(qcc.Model(module), representative_dataset=[[x], [x * 0.5]],
                     target="reference")
    written = q.to_tflite()
    (int8_ref,) = litert_invoke(litert_interpreter(written, REF), [x])
    np.testing.assert_array_equal(q.run([x])[0], int8_ref)


def test_a_dead_custom_op_is_kept():
    """A custom op's effects are not its results: it stays (as do stateful builtins), and the
    chain feeding it with it."""
    module = import_tflite(_keras_reshape_model(with_dead_custom=True))
    generic = [op.op_name.data for op in module.walk() if isinstance(op, nn.GenericOp)]
    assert generic == ["MySideEffect"]
