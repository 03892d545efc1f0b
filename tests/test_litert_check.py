"""qcc.backends.litert_check: a .tflite LiteRT refuses is an error naming the operator, not an
exit 0. The refused files are built here by hand (qcc's own verifiers would stop qcc from
writing them), with quantization parameters that break a kernel's Prepare."""

from __future__ import annotations

import warnings
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from qcc.backends.litert_check import check_prepares
from qcc.errors import QccError, QccWarning
from qcc.litert import partitions
from qcc.testing.tflite_models import ModelBuilder, custom_op_model, single_op_models

Op = schema.BuiltinOperator


def _int8(model: schema.ModelT, tensor: int, scale: float, zero_point: int) -> None:
    t = model.subgraphs[0].tensors[tensor]
    t.type = schema.TensorType.INT8
    q = schema.QuantizationParametersT()
    q.scale = [scale]
    q.zeroPoint = [zero_point]
    t.quantization = q


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _int8_unary(opcode: int, out_scale: float, out_zp: int, name: str) -> bytes:
    b = ModelBuilder()
    x = b.add_input("x", [1, 8])
    options = schema.SoftmaxOptionsT() if opcode == Op.SOFTMAX else None
    if options is not None:
        options.beta = 1.0
    y = b.add_op(opcode, [x], [1, 8], name=name, options=options)
    b.mark_output(y)
    model = b.build_model_t()
    _int8(model, x, 0.05, 0)
    _int8(model, y, out_scale, out_zp)
    model.operatorCodes[0].version = 2
    return _pack(model)


def test_a_kernel_precondition_is_named_with_the_operator() -> None:
    data = _int8_unary(Op.SOFTMAX, 0.5, 3, "head/softmax")  # int8 SOFTMAX needs 1/256, -128
    with pytest.raises(QccError) as info:
        check_prepares(data, label="out.tflite")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("out.tflite: LiteRT refuses operator 0 (SOFTMAX)"), message
    assert 'loc("head/softmax")' in message
    assert "zero_point != -128" in message


def test_the_reference_resolver_checks_what_xnnpack_does_not() -> None:
    data = _int8_unary(Op.LOGISTIC, 0.5, 3, "head/sigmoid")  # REF insists on 1/256
    refused = r"LOGISTIC.*scale == 1. / 256 was not true"
    try:
        delegated = not partitions(data).outside
    except RuntimeError:
        delegated = False
    if delegated:  # XNNPACK runs the op (x86-64): the default resolver never asks
        check_prepares(data)
    else:  # where XNNPACK does not take it (aarch64 under qemu), LiteRT's own kernel refuses
        with pytest.raises(QccError, match=refused):
            check_prepares(data)
    with pytest.raises(QccError, match=refused):
        check_prepares(data, resolver="reference")


def test_a_kernel_that_aborts_is_reported_not_fatal() -> None:
    # int8 ADD with an output scale far below the inputs': QuantizeMultiplierSmallerThanOneExp
    # is a TFLITE_CHECK, an abort of the process that prepares it (here: the child).
    b = ModelBuilder()
    x0 = b.add_input("x0", [1, 8])
    x1 = b.add_input("x1", [1, 8])
    y = b.add_op(Op.ADD, [x0, x1], [1, 8], name="sum",
                 options=schema.AddOptionsT())
    b.mark_output(y)
    model = b.build_model_t()
    _int8(model, x0, 1.0, 0)
    _int8(model, x1, 1.0, 0)
    _int8(model, y, 1e-9, 0)
    model.operatorCodes[0].version = 2
    with pytest.raises(QccError, match=r"LiteRT (crashed|refuses)") as info:
        check_prepares(_pack(model))
    assert "\n" not in str(info.value)


def test_a_valid_model_passes_both_resolvers() -> None:
    data = single_op_models()["conv_2d_same_relu6"]
    check_prepares(data)
    check_prepares(data, resolver="reference")


def test_an_unresolved_custom_op_is_a_warning() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check_prepares(custom_op_model())
    assert any(issubclass(w.category, QccWarning) and "MyCustomOp" in str(w.message) for w in seen)


def test_unknown_resolver() -> None:
    with pytest.raises(QccError, match="unknown LiteRT resolver"):
        check_prepares(b"", resolver="gpu")


def test_driver_refuses_to_write_what_litert_refuses(tmp_path: Path, monkeypatch) -> None:
    """`qcc -o x.tflite` ends in check_prepares before the rename: no file on refusal."""
    import qcc.backends.tflite as backend
    from qcc.cli import main

    refused = _int8_unary(Op.SOFTMAX, 0.5, 3, "head/softmax")
    model = tmp_path / "m.tflite"
    model.write_bytes(single_op_models()["conv_2d_same_relu6"])
    monkeypatch.setattr(backend, "export_tflite", lambda module: refused)
    out = tmp_path / "out.tflite"
    assert main([str(model), "-o", str(out)]) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]
    assert np.frombuffer(refused[4:8], np.uint8).tobytes() == b"TFL3"
