"""Conformance: every nn op (`nn.op_classes()`) is complete, end to end.

For each op, from its declaration (`SPEC`, dialects/nn.py) and the single-op model generated
from it (`qcc.testing.tflite_models.op_model`, fed `op_inputs`: uniform over the declared
domain):

(a) round trip: the model imports as exactly that op, and exports to the same bytes;
(b) float: a float kernel is registered for the class (`@float_kernel`) and qcc's float
    executor computes what LiteRT's default resolver computes (float32 tolerance);
(c) int8: declared `KERNEL` -> an int8 lowering is registered (`@int8_lowering`), and the
    model quantized by `qcc.quantize` (int8 in and out) runs on qcc's integer runtime bit
    for bit like LiteRT's reference kernels (`BUILTIN_REF`) on the emitted .tflite;
    declared `Fallback` -> no int8 lowering (unless `imported_int8`), the op stays a float
    island in the quantized model (IR and .tflite), and the whole model still runs, in qcc
    and in LiteRT;
(d) docs: docs/ir.md has the op's row, as `python -m qcc.docs` generates it.

A new op missing any of these fails here: `test_a_new_op_without_kernels_fails` declares a
throwaway op with nothing but its declaration and checks that (b), (c) and (d) refuse it.
The two ops that are not TFLite builtins, nn.constant (data) and nn.generic (any operator
without an op of its own), are checked for what applies to them.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import AUTO, REF, litert_input_details, run_litert
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.irdl import traits_def
from xdsl.traits import Pure

import qcc
from qcc import docs
from qcc.backends.numba import compile_module, op_is_quantized
from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.frontends.tflite import import_tflite
from qcc.runtime.executor import Executor
from qcc.runtime.kernels.registry import FLOAT_KERNELS, INT8_LOWERINGS
from qcc.testing import tflite_models as tm

NOT_BUILTINS = (nn.ConstantOp, nn.GenericOp)
"""The nn ops that are not a TFLite builtin operator: every other op declares one."""

CALIBRATION_SAMPLES = 8
INT8_RUNS = 3


def _ops() -> list[type]:
    return list(nn.op_classes())


def _id(cls: type) -> str:
    return cls.name


def _spec(cls: type) -> nn.OpSpec:
    spec = nn.op_spec(cls)
    assert spec is not None, f"{cls.__name__} declares no SPEC"
    return spec


@functools.cache
def _model(cls: type) -> bytes:
    return tm.op_model(cls)


def _body(module) -> list:
    (main,) = [op for op in module.body.block.ops if isinstance(op, FuncOp)]
    return [op for op in main.body.block.ops if not isinstance(op, nn.ConstantOp | ReturnOp)]


# ------------------------------------------------------------------------------------------
# The checks, one per requirement (each raises AssertionError naming what is missing)
# ------------------------------------------------------------------------------------------


def check_round_trip(cls: type) -> None:
    """(a) The generated single-op model imports as one `cls` op and exports unchanged."""
    spec = _spec(cls)
    if spec.builtin is None:
        assert cls in NOT_BUILTINS, (
            f"{cls.name}: declares no TFLite builtin; nn ops mirror TFLite builtins"
        )
        return
    model = _model(cls)
    module = import_tflite(model)
    ops = _body(module)
    assert [type(op) for op in ops] == [cls], f"{cls.name}: imports as {[o.name for o in ops]}"
    module.verify()
    assert export_tflite(module) == model, f"{cls.name}: the export differs from the model"


def _float_tolerance(reference: np.ndarray) -> dict[str, float]:
    finite = np.abs(reference[np.isfinite(reference)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    return {"rtol": 1e-5, "atol": 1e-5 * scale}


def check_float_kernel(cls: type) -> None:
    """(b) A float kernel is registered for the class and agrees with LiteRT (default
    resolver) to float32 accuracy on the generated model."""
    if cls is nn.GenericOp:
        return  # its float kernels are per builtin (DEQUANTIZE), nothing per class
    assert cls in FLOAT_KERNELS, (
        f"{cls.name}: no float kernel registered (@float_kernel({cls.__name__}) in a "
        "runtime/kernels family)"
    )
    if _spec(cls).builtin is None:
        return  # nn.constant: data
    model = _model(cls)
    executor = Executor(import_tflite(model))
    for seed in range(2):
        inputs = tm.op_inputs(cls, seed)
        expected = run_litert(model, inputs, AUTO)
        actual = executor.run(inputs)
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected):
            assert got.shape == want.shape and got.dtype == want.dtype, (
                f"{cls.name}: {got.dtype}{list(got.shape)} vs LiteRT {want.dtype}{list(want.shape)}"
            )
            np.testing.assert_allclose(
                got, want, **_float_tolerance(want), err_msg=f"{cls.name}: float kernel vs LiteRT"
            )


def _quantize(cls: type, tmp_path, io_dtype: str) -> qcc.Model:
    path = tmp_path / f"{cls.name}.tflite"
    path.write_bytes(_model(cls))
    samples = [tm.op_inputs(cls, seed) for seed in range(CALIBRATION_SAMPLES)]
    return qcc.quantize(  # the op itself, not its decomposition (PRELU), in its int8 kernel
        qcc.load(path), representative_dataset=samples, mode="int8", io_dtype=io_dtype,
        decompose_prelu=False, target="reference",
    )


def _int8_inputs(cls: type, content: bytes, seed: int) -> list[np.ndarray]:
    """`op_inputs` quantized with the int8 model's input parameters (in-domain codes)."""
    inputs = []
    for x, detail in zip(tm.op_inputs(cls, seed), litert_input_details(content), strict=True):
        scale, zp = detail["quantization"]
        inputs.append(np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8))
    return inputs


def _operators_with_float_inputs(content: bytes, builtin: str) -> list[bool]:
    """For each operator of the builtin in a .tflite: whether its first input is float32."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    (graph,) = model.subgraphs
    code = getattr(schema.BuiltinOperator, builtin)
    found = []
    for operator in graph.operators:
        oc = model.operatorCodes[operator.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            tensor = graph.tensors[operator.inputs[0]]
            found.append(tensor.type == schema.TensorType.FLOAT32)
    return found


def check_int8(cls: type, tmp_path) -> None:
    """(c) KERNEL: a registered int8 lowering, bit-exact with BUILTIN_REF on the model
    qcc.quantize emits; Fallback: no lowering (unless imported_int8), a float island that
    runs."""
    spec = _spec(cls)
    if spec.int8 is None:
        assert cls not in INT8_LOWERINGS, f"{cls.name}: not a computation, yet an int8 lowering"
        return
    if cls is nn.GenericOp:
        assert isinstance(spec.int8, nn.Fallback)
        return  # no single-op model: custom ops and unknown builtins stay float by definition
    if spec.int8 == nn.KERNEL:
        assert cls in INT8_LOWERINGS, (
            f"{cls.name}: declared int8=KERNEL but no int8 lowering is registered "
            f"(@int8_lowering({cls.__name__}) in a runtime/kernels/int8_ family)"
        )
        q = _quantize(cls, tmp_path, "int8")
        ops = [op for op in q.module.walk() if type(op) is cls]
        assert ops and all(op_is_quantized(op) for op in ops), f"{cls.name}: not quantized"
        assert not compile_module(q.module).has_float_islands, f"{cls.name}: a float island"
        content = q.to_tflite()
        for seed in range(100, 100 + INT8_RUNS):
            inputs = _int8_inputs(cls, content, seed)
            expected = run_litert(content, inputs, REF)
            actual = q.run(inputs)
            for got, want in zip(actual, expected, strict=True):
                assert got.dtype == want.dtype == np.int8 and got.shape == want.shape
                equal = int(np.sum(got == want))
                diff = int(np.max(np.abs(got.astype(np.int32) - want.astype(np.int32)), initial=0))
                assert equal == want.size, (
                    f"{cls.name}: int8 runtime vs LiteRT BUILTIN_REF: {equal}/{want.size} equal, "
                    f"max |diff| {diff}"
                )
        return
    assert isinstance(spec.int8, nn.Fallback)
    if spec.int8.imported_int8:
        assert cls in INT8_LOWERINGS, (
            f"{cls.name}: declared Fallback(imported_int8=True) but no int8 lowering is registered"
        )
    else:
        assert cls not in INT8_LOWERINGS, (
            f"{cls.name}: declared a float fallback, yet an int8 lowering is registered"
        )
    q = _quantize(cls, tmp_path, "float")
    ops = [op for op in q.module.walk() if type(op) is cls]
    assert ops and not any(op_is_quantized(op) for op in ops), f"{cls.name}: not a float island"
    compiled = compile_module(q.module)
    assert compiled.has_float_islands
    content = q.to_tflite()
    assert _operators_with_float_inputs(content, spec.builtin) == [True] * len(ops), (
        f"{cls.name}: the emitted .tflite does not keep it float"
    )
    inputs = tm.op_inputs(cls, 100)
    ours = q.run(inputs)
    theirs = run_litert(content, inputs, REF)
    for got, want in zip(ours, theirs, strict=True):
        assert got.shape == want.shape and np.all(np.isfinite(got)), cls.name


def _generated_rows() -> dict[str, str]:
    rows = {}
    for line in docs.op_table().splitlines():
        if line.startswith("| `"):
            rows[line.split("`")[1]] = line
    return rows


def check_docs_row(cls: type) -> None:
    """(d) docs/ir.md holds the op's row, as the declarations generate it."""
    row = _generated_rows().get(cls.name)
    assert row is not None, f"{cls.name}: `python -m qcc.docs` generates no row for it"
    text = docs.DOCS_IR.read_text(encoding="utf-8")
    assert row in text.splitlines(), (
        f"{cls.name}: docs/ir.md has no (current) row for it; run: {docs.REGENERATE}"
    )


# ------------------------------------------------------------------------------------------
# Every op
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", _ops(), ids=_id)
def test_round_trip(cls: type) -> None:
    check_round_trip(cls)


@pytest.mark.parametrize("cls", _ops(), ids=_id)
def test_float_kernel_equals_litert(cls: type) -> None:
    check_float_kernel(cls)


@pytest.mark.parametrize("cls", _ops(), ids=_id)
def test_int8_bit_exact_or_float_island(cls: type, tmp_path) -> None:
    check_int8(cls, tmp_path)


@pytest.mark.parametrize("cls", _ops(), ids=_id)
def test_docs_row(cls: type) -> None:
    check_docs_row(cls)


def test_docs_table_is_current() -> None:
    assert docs.main(["--check"]) == 0, f"docs/ir.md's op table is stale; run: {docs.REGENERATE}"


def test_registries_hold_only_declared_ops() -> None:
    """Every class with registered code is an nn op (or a quant op), and int8 lowerings
    exist exactly for the ops the declarations say qcc runs in int8."""
    ops = set(nn.op_classes())
    for cls in FLOAT_KERNELS.op_classes() | INT8_LOWERINGS.op_classes():
        assert cls in ops or cls.name.startswith("quant."), cls
    expected = {
        cls
        for cls in ops
        if (s := nn.op_spec(cls)) is not None
        and (s.int8 == nn.KERNEL or (isinstance(s.int8, nn.Fallback) and s.int8.imported_int8))
    }
    assert {c for c in INT8_LOWERINGS.op_classes() if c in ops} == expected


# ------------------------------------------------------------------------------------------
# The checks catch an incomplete op
# ------------------------------------------------------------------------------------------


@nn.nn_op
class _ThrowawayEluOp(nn.UnaryOp):
    """x if x > 0 else exp(x) - 1. TFLite ELU (a throwaway test op: declared, nothing else)."""

    name = "nn.test_conformance_elu"
    traits = traits_def(Pure())
    SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
        builtin="ELU",
        precisions=("int8",),
        int8=nn.KERNEL,
        example=nn.Example(((1, 8, 8, 4),)),
    )


@nn.nn_op
class _ThrowawayFallbackOp(nn.UnaryOp):
    """A throwaway float-fallback op."""

    name = "nn.test_conformance_fallback"
    traits = traits_def(Pure())
    SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
        builtin="ELU", precisions=(), int8=nn.Fallback("a test op")
    )


def test_a_new_op_without_kernels_fails(tmp_path) -> None:
    with nn.registered_op(_ThrowawayEluOp):
        check_round_trip(_ThrowawayEluOp)  # the declaration alone imports and exports
        with pytest.raises(AssertionError, match="no float kernel registered"):
            check_float_kernel(_ThrowawayEluOp)
        with pytest.raises(AssertionError, match="no int8 lowering is registered"):
            check_int8(_ThrowawayEluOp, tmp_path)
        with pytest.raises(AssertionError, match="no \\(current\\) row"):
            check_docs_row(_ThrowawayEluOp)


def test_a_wrong_float_kernel_fails() -> None:
    def wrong(op):
        return lambda x: x  # identity, not ELU

    with nn.registered_op(_ThrowawayEluOp):
        FLOAT_KERNELS.register(_ThrowawayEluOp)(wrong)
        try:
            with pytest.raises(AssertionError, match="float kernel vs LiteRT"):
                check_float_kernel(_ThrowawayEluOp)
        finally:
            FLOAT_KERNELS.unregister(_ThrowawayEluOp)


def test_a_wrong_int8_kernel_fails(tmp_path, monkeypatch) -> None:
    from qcc.runtime.kernels import int8_registry

    int8_registry.load_int8_families()
    real = int8_registry.RUNNERS["relu_i8"]

    def off_by_one(inputs, params):
        (y,) = real(inputs, params)
        return [np.where(y < 127, y + 1, y).astype(np.int8)]

    monkeypatch.setitem(int8_registry.RUNNERS, "relu_i8", off_by_one)
    with pytest.raises(AssertionError, match="BUILTIN_REF"):
        check_int8(nn.ReluOp, tmp_path)


def test_a_fallback_op_cannot_register_an_int8_lowering() -> None:
    with pytest.raises(TypeError, match="declared a float fallback"):
        INT8_LOWERINGS.register(_ThrowawayFallbackOp)(lambda op: None)
    assert _ThrowawayFallbackOp not in INT8_LOWERINGS


def test_kernels_register_against_classes_not_names() -> None:
    with pytest.raises(TypeError, match="against the op class"):
        FLOAT_KERNELS.register("nn.relu")  # type: ignore[arg-type]


def test_int8_capable_reads_the_declaration() -> None:
    """The one capability question (legalize-fallback, verify-int8, the Numba backend)."""
    relu = nn.ReluOp.create()
    assert nn.int8_capable(relu) == (True, "")
    div_reason = _spec(nn.DivOp).int8.reason  # type: ignore[union-attr]
    assert nn.int8_capable(nn.DivOp.create()) == (False, div_reason)
    total = nn.SumOp.create()
    assert nn.int8_capable(total)[0] is False  # qcc keeps SUM float...
    assert nn.int8_capable(total, imported=True) == (True, "")  # ...but runs imported int8 SUMs
