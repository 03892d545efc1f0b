"""The in-code TFLite test models are valid: LiteRT loads and runs them, and means by them
what the builder meant (checked against numpy on the simplest ops)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import OpResolverType
from conftest import litert_interpreter, litert_invoke

from qcc.testing import tflite_models as tm

RESOLVERS = {
    "default": OpResolverType.AUTO,
    "builtin_ref": OpResolverType.BUILTIN_REF,
}


@functools.cache
def _models() -> dict[str, bytes]:
    return tm.all_runnable_models()


def _model_t(model: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(model, 0)


def _run(model: bytes, inputs=None, resolver=OpResolverType.AUTO, seed=0):
    """Run ``model`` in LiteRT; returns (inputs, outputs, output details)."""
    interpreter = litert_interpreter(model, resolver)
    if inputs is None:
        inputs = tm.random_inputs([d["shape"] for d in interpreter.get_input_details()], seed=seed)
    outputs = litert_invoke(interpreter, inputs)
    return inputs, outputs, interpreter.get_output_details()


def _constant(model: bytes, name: str) -> np.ndarray:
    """A float32 constant of ``model``'s subgraph, read back from its buffer by name."""
    m = _model_t(model)
    (tensor,) = [t for t in m.subgraphs[0].tensors if t.name.decode() == name]
    data = np.asarray(m.buffers[tensor.buffer].data, dtype=np.uint8)
    return data.view(np.float32).reshape(tensor.shape)


# -- every runnable model runs in LiteRT --------------------------------------------------


def test_model_set_is_complete():
    models = _models()
    assert len(models) >= 80
    assert "conv_2d_same_relu6" in models
    assert {"fp16_weights", "sparse_weights", "multi_io"} <= models.keys()
    assert set(tm.chained_models()) <= models.keys()
    assert "custom_op" not in models


@pytest.mark.parametrize("resolver", RESOLVERS.values(), ids=RESOLVERS.keys())
@pytest.mark.parametrize("name", sorted(_models()))
def test_litert_runs_model(name, resolver):
    model = _models()[name]
    subgraph = _model_t(model).subgraphs[0]
    _, outputs, details = _run(model, resolver=resolver)
    declared = [subgraph.tensors[i] for i in subgraph.outputs]
    assert len(outputs) == len(declared)
    for out, detail, tensor in zip(outputs, details, declared):
        assert detail["name"] == tensor.name.decode()
        assert out.dtype == np.float32
        assert list(out.shape) == list(tensor.shape), f"{name}: output {detail['name']}"
        assert np.all(np.isfinite(out)), f"{name}: output {detail['name']} not finite"


def test_models_are_deterministic():
    assert tm.single_op_models()["conv_2d_same"] == _models()["conv_2d_same"]
    assert tm.chained_models() == tm.chained_models()


# -- LiteRT computes what the builder meant -----------------------------------------------


def _softmax(x: np.ndarray, beta: float) -> np.ndarray:
    z = beta * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


REFERENCES = {
    "add": lambda a, b: a + b,
    "add_relu": lambda a, b: np.maximum(a + b, 0),
    "sub": lambda a, b: a - b,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "concatenation_axis3": lambda *xs: np.concatenate(xs, axis=3),
    "concatenation_axis1": lambda *xs: np.concatenate(xs, axis=1),
    "reshape": lambda x: x.reshape(1, 64, 4),
    "reshape_infer_dim": lambda x: x.reshape(1, -1),
    "transpose": lambda x: x.transpose(0, 3, 1, 2),
    "softmax": lambda x: _softmax(x, 1.0),
    "softmax_beta0_5": lambda x: _softmax(x, 0.5),
    "split_axis3_2": lambda x: np.split(x, 2, axis=3),
    "strided_slice_stride2": lambda x: x[0:1, 1:8:2, 0:8:2, 0:6:1],
    "strided_slice_masks": lambda x: x[:, 2:7:2, :, 1:5:2],
    "strided_slice_shrink_axis": lambda x: x[0, 3],
    "gather_axis1": lambda x: x[:, [0, 2, 5, 7, 7]],
    "slice": lambda x: x[:, 2:6, 1:6, :],
    "pad": lambda x: np.pad(x, [[0, 0], [1, 1], [2, 1], [0, 0]]),
    "padv2_constant_value": lambda x: np.pad(
        x, [[0, 0], [1, 1], [2, 1], [0, 0]], constant_values=0.5
    ),
    "mean_spatial_keep_dims": lambda x: x.mean(axis=(1, 2), keepdims=True),
    "sum_axis3": lambda x: x.sum(axis=3),
}


@pytest.mark.parametrize("resolver", RESOLVERS.values(), ids=RESOLVERS.keys())
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_litert_matches_numpy(name, resolver):
    inputs, outputs, _ = _run(_models()[name], resolver=resolver, seed=1)
    expected = REFERENCES[name](*inputs)
    expected = expected if isinstance(expected, list) else [expected]
    assert len(outputs) == len(expected)
    for out, ref in zip(outputs, expected):
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["add_broadcast_const", "mul_broadcast_const", "div"])
def test_litert_reads_float_constants(name):
    model = _models()[name]
    c = _constant(model, "c")
    inputs, (out,), _ = _run(model)
    x = inputs[0]
    expected = {"add_broadcast_const": x + c, "mul_broadcast_const": x * c, "div": x / c}[name]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_fully_connected_matches_numpy():
    model = _models()["fully_connected"]
    w, bias = _constant(model, "y/weights"), _constant(model, "y/bias")
    (x,), (out,), _ = _run(model)
    np.testing.assert_allclose(out, x @ w.T + bias, rtol=1e-5, atol=1e-5)


def test_sparse_weights_decode_as_litert_densifies_them():
    model = tm.sparse_weights_model()
    m = _model_t(model)
    tensors = {t.name.decode(): t for t in m.subgraphs[0].tensors}
    sparse = tensors["fc/weights_sparse"]
    sp = sparse.sparsity
    assert list(sp.traversalOrder) == [0, 1]
    assert sp.blockMap is None or len(sp.blockMap) == 0
    dense_dim, csr_dim = sp.dimMetadata
    assert dense_dim.format == schema.DimensionType.DENSE and dense_dim.denseSize == 16
    assert csr_dim.format == schema.DimensionType.SPARSE_CSR
    values = np.asarray(m.buffers[sparse.buffer].data, dtype=np.uint8).view(np.float32)
    segments = np.asarray(csr_dim.arraySegments.values)
    indices = np.asarray(csr_dim.arrayIndices.values)
    assert len(values) == len(indices) == segments[-1] < 16 * 64 // 2
    weights = np.zeros(sparse.shape, np.float32)
    for row in range(16):
        cols = indices[segments[row] : segments[row + 1]]
        weights[row, cols] = values[segments[row] : segments[row + 1]]
    bias = _constant(model, "fc/bias")
    for resolver in RESOLVERS.values():
        (x,), (out,), _ = _run(model, resolver=resolver)
        np.testing.assert_allclose(out, x @ weights.T + bias, rtol=1e-5, atol=1e-5)


def test_fp16_weights_are_float16_behind_dequantize():
    m = _model_t(tm.fp16_weights_model())
    subgraph = m.subgraphs[0]
    codes = [m.operatorCodes[op.opcodeIndex].builtinCode for op in subgraph.operators]
    assert codes == [schema.BuiltinOperator.DEQUANTIZE] * 2 + [schema.BuiltinOperator.CONV_2D]
    for op in subgraph.operators[:2]:
        (src,) = op.inputs
        assert subgraph.tensors[src].type == schema.TensorType.FLOAT16
        assert subgraph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32


def test_multi_io_names_and_order():
    model = tm.multi_io_model()
    interpreter = litert_interpreter(model)
    assert [d["name"] for d in interpreter.get_input_details()] == ["image", "features"]
    assert [d["name"] for d in interpreter.get_output_details()] == ["sum", "concat"]
    (image, features), (_, concat), _ = _run(model)
    np.testing.assert_array_equal(concat[..., 4:], features)


# -- the custom op model ------------------------------------------------------------------


@pytest.mark.parametrize("resolver", RESOLVERS.values(), ids=RESOLVERS.keys())
def test_litert_rejects_custom_op(resolver):
    model = tm.custom_op_model()
    with pytest.raises((RuntimeError, ValueError), match="MyCustomOp"):
        litert_interpreter(model, resolver)


def test_custom_op_is_written_as_asked():
    m = _model_t(tm.custom_op_model())
    (custom,) = [c for c in m.operatorCodes if c.builtinCode == schema.BuiltinOperator.CUSTOM]
    assert custom.customCode.decode() == tm.CUSTOM_OP_CODE
    assert custom.deprecatedBuiltinCode == schema.BuiltinOperator.CUSTOM
    ops = m.subgraphs[0].operators
    assert [m.operatorCodes[op.opcodeIndex].builtinCode for op in ops] == [
        schema.BuiltinOperator.RELU,
        schema.BuiltinOperator.CUSTOM,
        schema.BuiltinOperator.LOGISTIC,
    ]
    assert bytes(np.asarray(ops[1].customOptions, np.uint8)) == tm.CUSTOM_OP_OPTIONS


# -- the builder itself -------------------------------------------------------------------


def test_builder_constants_round_trip_and_layout():
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "f16": np.array([1.5, -2.25, 65504.0], dtype=np.float16),
        "i32": np.array([[1, -2], [3, 2**31 - 1]], dtype=np.int32),
        "i64": np.array([2**40, -5], dtype=np.int64),
        "scalar": np.array(0.25, dtype=np.float32),
    }
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 3])
    consts = {name: b.add_constant(name, a) for name, a in arrays.items()}
    y = b.add_op(schema.BuiltinOperator.ADD, [x, consts["f32"]], [2, 3],
                 schema.AddOptionsT(), name="y")
    b.mark_output(y)
    model = b.build()
    assert model[4:8] == b"TFL3"

    m = _model_t(model)
    assert m.version == 3
    assert m.buffers[0].data is None  # the empty sentinel
    tensors = {t.name.decode(): t for t in m.subgraphs[0].tensors}
    assert tensors["x"].buffer == 0 and tensors["y"].buffer == 0
    for name, array in arrays.items():
        t = tensors[name]
        assert t.buffer > 0
        assert list(t.shape) == list(array.shape)
        data = np.asarray(m.buffers[t.buffer].data, dtype=np.uint8)
        np.testing.assert_array_equal(data.view(array.dtype).reshape(array.shape), array)
    (code,) = m.operatorCodes
    assert code.builtinCode == code.deprecatedBuiltinCode == schema.BuiltinOperator.ADD

    # Constant data is 16-byte aligned in the file, as schema.fbs's force_align asks.
    root = schema.Model.GetRootAs(model, 0)
    for i in range(1, root.BuffersLength()):
        tab = root.Buffers(i)._tab
        assert tab.Vector(tab.Offset(4)) % 16 == 0

    # Broadcast add with the constant: what LiteRT computes is what was written.
    (xv,), (out,), _ = _run(model)
    np.testing.assert_allclose(out, xv + arrays["f32"], rtol=1e-6)


def test_builder_writes_large_opcodes_with_placeholder():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8])
    y = b.add_op(schema.BuiltinOperator.HARD_SWISH, [x], [1, 8], schema.HardSwishOptionsT(),
                 name="y")
    z = b.add_op(schema.BuiltinOperator.HARD_SWISH, [y], [1, 8], schema.HardSwishOptionsT(),
                 name="z", version=2)
    b.mark_output(z)
    (code,) = _model_t(b.build()).operatorCodes
    assert code.builtinCode == schema.BuiltinOperator.HARD_SWISH == 117
    assert code.deprecatedBuiltinCode == 117
    assert code.version == 2

    # Codes above 127 do not fit the deprecated int8 field: it holds the placeholder 127.
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8])
    y = b.add_op(schema.BuiltinOperator.GELU, [x], [1, 8], schema.GeluOptionsT(), name="y")
    b.mark_output(y)
    model = b.build()
    (code,) = _model_t(model).operatorCodes
    assert code.builtinCode == schema.BuiltinOperator.GELU == 150
    assert code.deprecatedBuiltinCode == schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    (xv,), (out,), _ = _run(model)  # LiteRT resolves it through builtin_code
    assert out.shape == (1, 8) and np.all(np.isfinite(out))


def test_builder_rejects_malformed_graphs():
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 4])
    with pytest.raises(ValueError, match="duplicate"):
        b.add_tensor("x", [1, 4])
    dangling = b.add_tensor("dangling", [1, 4])
    b.mark_output(dangling)
    with pytest.raises(ValueError, match="produced by no operator"):
        b.build()
    with pytest.raises(TypeError):
        tm.ModelBuilder().add_constant("s", np.array(["a"]))
    with pytest.raises(ValueError, match="add_custom_operator"):
        b.add_operator(schema.BuiltinOperator.CUSTOM, [x], [dangling])
