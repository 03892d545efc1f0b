"""The op declarations (`SPEC`, `nn.OpSpec`, dialects/nn.py) are the one place an op is
described: they drive the TFLite importer and exporter (builtin, options, constant inputs,
version), the generated single-op models and the docs/ir.md op table.

The proof that a new element-wise builtin needs nothing but its declaration: two throwaway
ops defined here (LOCAL_RESPONSE_NORMALIZATION, with an options table, and ATAN2: builtins
qcc has no op for), registered as nn ops for the test, import, export, version and get a
generated model that LiteRT runs."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, NameLoc
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.irdl import prop_def, traits_def
from xdsl.traits import Pure

from qcc import docs
from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.frontends.tflite import import_tflite
from qcc.testing import tflite_models as tm

Op = schema.BuiltinOperator
ROOT = Path(__file__).resolve().parents[1]
RESOLVERS = {"default": OpResolverType.AUTO, "builtin_ref": OpResolverType.BUILTIN_REF}

ALL_OPS = {cls.name: cls for cls in nn.op_classes()}
DECLARED = {
    name: cls for name, cls in ALL_OPS.items() if (s := nn.op_spec(cls)) and s.builtin
}


# ------------------------------------------------------------------------------------------
# Throwaway ops: TFLite builtins qcc does not have, declared and nothing else
# ------------------------------------------------------------------------------------------


# radius >= the channels: LiteRT's reference kernel sums channels [c - r, c + r), its
# optimized kernel [c - r, c + r]; both then sum every channel
_LRN_EXAMPLE = {"radius": 4, "bias": 1.0, "alpha": 0.5, "beta": 0.75}


@nn.nn_op
class LrnOp(nn.UnaryOp):
    """x / (bias + alpha * sum of x^2 over 2 radius + 1 channels)^beta. TFLite
    LOCAL_RESPONSE_NORMALIZATION (a test op)."""

    name = "nn.test_lrn"
    radius = prop_def(IntegerAttr)
    bias = prop_def(FloatAttr)
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    traits = traits_def(Pure())
    SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
        builtin="LOCAL_RESPONSE_NORMALIZATION",
        options="LocalResponseNormalizationOptions",
        fields=(
            nn.Option("radius", "radius", "i64", 0),
            nn.Option("bias", "bias", "f32", 0.0),
            nn.Option("alpha", "alpha", "f32", 0.0),
            nn.Option("beta", "beta", "f32", 0.0),
        ),
        version={"int8": 2, "uint8": 2},
        precisions=("int8", "int16x8"),
        int8=nn.Fallback("a test op: qcc has no kernel for it"),
        example=nn.Example(((1, 8, 8, 4),), properties=_LRN_EXAMPLE),
    )


@nn.nn_op
class Atan2Op(nn.BinaryOp):
    """atan2(lhs, rhs). TFLite ATAN2 (a test op)."""

    name = "nn.test_atan2"
    traits = traits_def(Pure())
    SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
        builtin="ATAN2",
        version={"int8": 2},
        precisions=("int8",),
        int8=nn.Fallback("a test op: qcc has no kernel for it"),
        example=nn.Example(((1, 8, 8, 4), (1, 8, 8, 4))),
    )


def _lrn(x: np.ndarray, radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    channels = x.shape[-1]
    out = np.empty_like(x64)
    for c in range(channels):
        window = x64[..., max(0, c - radius) : min(channels, c + radius)]
        out[..., c] = x64[..., c] / (bias + alpha * np.sum(window**2, axis=-1)) ** beta
    return out.astype(np.float32)


THROWAWAY = {
    "lrn": (LrnOp, Op.LOCAL_RESPONSE_NORMALIZATION, lambda x: _lrn(x, **_LRN_EXAMPLE)),
    "atan2": (Atan2Op, Op.ATAN2, lambda a, b: np.arctan2(a, b)),
}


@pytest.fixture
def throwaway_ops():
    with nn.registered_op(LrnOp), nn.registered_op(Atan2Op):
        yield


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _run(model: bytes, resolver=OpResolverType.AUTO, inputs=None):
    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    if inputs is None:
        inputs = tm.random_inputs([d["shape"] for d in details])
    for detail, value in zip(details, inputs, strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return inputs, [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def _ops(module) -> list:
    (main,) = [op for op in module.body.block.ops if isinstance(op, FuncOp)]
    return [
        op
        for op in main.body.block.ops
        if not isinstance(op, nn.ConstantOp | ReturnOp)
    ]


@functools.cache
def _op_model(name: str) -> bytes:
    return tm.op_model(ALL_OPS[name])


# ------------------------------------------------------------------------------------------
# Every op declares itself
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_every_op_has_a_declaration(name: str) -> None:
    cls = ALL_OPS[name]
    spec = nn.op_spec(cls)
    assert spec is not None and "SPEC" in cls.__dict__, f"{name} declares no SPEC"
    assert (cls.__doc__ or "").strip(), f"{name} has no docstring (the docs table's text)"
    assert cls.has_trait(nn.Int8Kernel) == (spec.int8 == nn.KERNEL)
    if isinstance(spec.int8, nn.Fallback):
        assert spec.int8.reason.strip()
    if spec.builtin is not None:
        assert spec.example is not None, f"{name}: a TFLite op needs an example instance"
        assert spec.int8 is not None, f"{name}: say whether qcc quantizes it"


def test_every_op_class_of_the_dialect_module_is_in_the_dialect() -> None:
    """An op defined in dialects/nn.py but left out of `NN` would be unknown to the parser,
    the importer and the exporter."""
    defined = {
        v for v in vars(nn).values() if isinstance(v, type) and "SPEC" in v.__dict__
    }
    assert defined == set(nn.NN.operations)


def test_builtins_are_known_and_unique() -> None:
    seen: dict[str, str] = {}
    for name, cls in DECLARED.items():
        spec = nn.op_spec(cls)
        assert spec is not None
        for builtin in (spec.builtin, *spec.aliases):
            assert isinstance(getattr(Op, builtin, None), int), f"{name}: {builtin}"
            assert builtin not in seen, f"{builtin} declared by {seen.get(builtin)} and {name}"
            seen[builtin] = name
        if spec.options is not None:
            options = getattr(schema, spec.options + "T")()
            for option in spec.fields:
                for field in option.fields:
                    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), field)
                    assert hasattr(options, camel), f"{name}: {spec.options}.{field}"


def test_weights_declarations_agree_with_affine_weights() -> None:
    for name, cls in ALL_OPS.items():
        affine = cls.get_trait(nn.AffineWeights)
        weights = nn.op_spec(cls).weights  # type: ignore[union-attr]
        if affine is None:
            continue
        assert weights is not None, name
        assert weights.operand == affine.weight_operand, name
        assert weights.hybrid is not None and weights.hybrid.axis == affine.axis, name


# ------------------------------------------------------------------------------------------
# The generated single-op model of every declared op
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolver", RESOLVERS.values(), ids=RESOLVERS.keys())
@pytest.mark.parametrize("name", sorted(DECLARED))
def test_generated_model_runs_in_litert(name: str, resolver) -> None:
    model = _op_model(name)
    spec = nn.op_spec(ALL_OPS[name])
    assert spec is not None and spec.example is not None
    _, outputs = _run(model, resolver, tm.op_inputs(ALL_OPS[name]))
    assert [o.shape for o in outputs] == [tuple(s) for s in spec.example.result_shapes()]
    assert all(np.all(np.isfinite(o)) for o in outputs), name


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_generated_model_round_trips(name: str) -> None:
    """Import gives the declared op (one op, its builtin's); export writes the file back."""
    model = _op_model(name)
    module = import_tflite(model)
    ops = _ops(module)
    assert [type(op) for op in ops] == [ALL_OPS[name]]
    assert isinstance(ops[0].location, NameLoc)
    assert export_tflite(module) == model
    m = schema.ModelT.InitFromPackedBuf(model, 0)
    spec = nn.op_spec(ALL_OPS[name])
    assert spec is not None and spec.builtin is not None
    (code,) = m.operatorCodes
    assert code.builtinCode == getattr(Op, spec.builtin)


# ------------------------------------------------------------------------------------------
# A new builtin: its declaration is all it takes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", sorted(THROWAWAY))
def test_a_new_builtin_needs_only_its_declaration(which: str, throwaway_ops) -> None:
    op_class, builtin, reference = THROWAWAY[which]
    model = tm.op_model(op_class)  # the generated test model
    for resolver in RESOLVERS.values():  # LiteRT loads it and computes what the op means
        inputs, (out,) = _run(model, resolver)
        np.testing.assert_allclose(out, reference(*inputs), rtol=1e-5, atol=1e-6)
    m = schema.ModelT.InitFromPackedBuf(model, 0)
    (code,) = m.operatorCodes
    assert (code.builtinCode, code.version) == (builtin, 1)  # the declared rule, float
    module = import_tflite(model)  # the importer maps the builtin to the op
    (op,) = _ops(module)
    assert type(op) is op_class
    module.verify()
    assert export_tflite(module) == model  # the exporter writes the same file


def test_a_new_builtin_reads_its_options_from_any_file(throwaway_ops) -> None:
    """An LRN written by another tool (its own option values) imports with the properties
    set, and the export computes the same in LiteRT."""
    b = tm.ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 4])
    options = schema.LocalResponseNormalizationOptionsT()
    options.radius, options.bias, options.alpha, options.beta = 5, 2.0, 0.25, 0.5
    y = b.add_op(Op.LOCAL_RESPONSE_NORMALIZATION, [x], [1, 8, 8, 4], options, name="y")
    b.mark_output(y)
    model = b.build()
    module = import_tflite(model)
    (op,) = _ops(module)
    assert isinstance(op, LrnOp) and op.radius.value.data == 5
    assert (op.bias.value.data, op.alpha.value.data, op.beta.value.data) == (2.0, 0.25, 0.5)
    inputs, (expected,) = _run(model)
    _, (again,) = _run(export_tflite(module), inputs=inputs)
    np.testing.assert_array_equal(again, expected)
    np.testing.assert_allclose(expected, _lrn(inputs[0], 5, 2.0, 0.25, 0.5), rtol=1e-5, atol=1e-6)


def test_an_int8_operator_gets_the_declared_version(throwaway_ops) -> None:
    spec = nn.op_spec(LrnOp)
    assert spec is not None
    sig = nn.OpSig(
        LrnOp.create(),  # the rule reads the tensors only
        (nn.TensorSig("int8", (1, 4), (0.1,)),),
        (nn.TensorSig("int8", (1, 4), (0.1,)),),
    )
    assert spec.version_of(sig) == 2
    assert spec.version_of(
        nn.OpSig(sig.op, (nn.TensorSig("float32", (1, 4)),), (nn.TensorSig("float32", (1, 4)),))
    ) == 1


def test_unregistered_builtin_stays_generic() -> None:
    """Outside `registered_op` the throwaway op is unknown: LRN is an nn.generic."""
    model = tm.ModelBuilder()
    x = model.add_input("x", [1, 1, 1, 4])
    y = model.add_op(
        Op.LOCAL_RESPONSE_NORMALIZATION, [x], [1, 1, 1, 4],
        schema.LocalResponseNormalizationOptionsT(), name="y",
    )
    model.mark_output(y)
    (op,) = _ops(import_tflite(model.build()))
    assert isinstance(op, nn.GenericOp) and op.op_name.data == "LOCAL_RESPONSE_NORMALIZATION"


# ------------------------------------------------------------------------------------------
# Declarations are checked
# ------------------------------------------------------------------------------------------


def test_int8_kernel_follows_from_the_declaration() -> None:
    with pytest.raises(TypeError, match="Int8Kernel follows from SPEC.int8"):

        @nn.nn_op
        class _Listed(nn.UnaryOp):
            name = "nn.test_listed"
            traits = traits_def(Pure(), nn.Int8Kernel())
            SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(builtin="RELU", precisions=("int8",), int8=nn.KERNEL)


def test_an_op_without_declaration_is_refused() -> None:
    with pytest.raises(TypeError, match="declares no SPEC"):

        @nn.nn_op
        class _Undeclared(nn.UnaryOp):
            name = "nn.test_undeclared"


def test_a_declaration_naming_unknown_properties_is_refused() -> None:
    with pytest.raises(TypeError, match=r"maps properties \['alpha'\]"):

        @nn.nn_op
        class _Unknown(nn.UnaryOp):
            name = "nn.test_unknown_property"
            SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
                builtin="LEAKY_RELU",
                options="LeakyReluOptions",
                fields=(nn.Option("alpha", "alpha", "f32", 0.0),),
                precisions=(),
                int8=nn.Fallback("test"),
            )


def test_bad_option_and_spec_values_are_refused() -> None:
    with pytest.raises(ValueError, match="option kind"):
        nn.Option("alpha", "alpha", "float")
    with pytest.raises(ValueError, match="two fields"):
        nn.Option("stride_h", "stride", "pair")
    with pytest.raises(ValueError, match="int8 must be KERNEL"):
        nn.OpSpec(builtin="RELU", precisions=("int8",), int8="yes")
    with pytest.raises(ValueError, match="unknown precisions"):
        nn.OpSpec(builtin="RELU", precisions=("int4",), int8=nn.KERNEL)


def test_an_unknown_builtin_name_is_a_declaration_error() -> None:
    @nn.nn_op
    class _Misspelt(nn.UnaryOp):
        """A misspelt builtin."""

        name = "nn.test_misspelt"
        SPEC: ClassVar[nn.OpSpec] = nn.OpSpec(
            builtin="HARD_SWISHH", precisions=(), int8=nn.Fallback("test")
        )

    with nn.registered_op(_Misspelt):
        with pytest.raises(TypeError, match="_Misspelt: TFLite has no builtin operator 'HARD_SWISHH'"):
            import_tflite(_op_model("nn.relu"))


# ------------------------------------------------------------------------------------------
# docs/ir.md
# ------------------------------------------------------------------------------------------


def test_docs_op_table_is_generated_from_the_declarations() -> None:
    text = docs.DOCS_IR.read_text(encoding="utf-8")
    expected = docs.replace_table(text, docs.op_table())
    assert text == expected, (
        f"docs/ir.md's op table differs from the op declarations; run: {docs.REGENERATE}"
    )
    assert docs.main(["--check"]) == 0


def test_docs_declaration_example_is_the_code() -> None:
    doc = (ROOT / "docs" / "ir.md").read_text(encoding="utf-8")
    source = (ROOT / "dialects" / "nn.py").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", doc, flags=re.S) if "SPEC" in b]
    spec = block[block.index("    SPEC: ClassVar") :]
    assert spec.strip() in source
    for line in block.splitlines():
        if '"""' not in line:
            assert line in source, line
