"""legalize-target: per op, int8, a float island or an int8 rewrite, from the target's
measured capabilities; and the targets in the driver (`--target`, `quantize(target=...)`).

The pass's rules are checked against stub targets (what a target answers is data: the
checked-in XNNPACK table is qcc/targets' to test), so each rule is pinned by the answers it
reads; the driver tests check that `reference` and `int8-only` write exactly what the int8
presets wrote before targets (their pipeline text as it was), and what xnnpack writes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import model_samples, run_qcc
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.utils.exceptions import PassFailedException

import qcc
from qcc.context import make_context
from qcc.dialects import nn, quant
from qcc.irtext import parse_ir, print_ir
from qcc.passes.legalize_fallback import LegalizeFallback
from qcc.passes.legalize_target import REASON, LegalizeTarget
from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text
from qcc.testing.tflite_models import ModelBuilder, Op, schema

# The int8 presets as they were before targets (qcc 3e60d6e): `reference` and `int8-only`
# must reproduce them byte for byte, after canonicalize-custom-ops (added since; it changes
# only models with MediaPipe's Convolution2DTransposeBias).
BEFORE_INT8 = (
    "builtin.module(canonicalize-custom-ops,fuse-activation,decompose-prelu,annotate-ranges"
    "{{calibration={c} method=mse}},bias-correction,infer-scales,legalize-fallback,quantize)"
)
BEFORE_INT8_ONLY = (
    "builtin.module(canonicalize-custom-ops,fuse-activation,decompose-prelu,annotate-ranges"
    "{{calibration={c} method=mse}},bias-correction,infer-scales,verify-int8,quantize)"
)


@dataclass
class StubTarget:
    """A target whose answers the test gives: op name (or "name+ACT") -> answer."""

    name: str = "stub"
    allows_float: bool = True
    allows_int16: bool = False
    int8: dict[str, bool | None] = field(default_factory=dict)
    float: dict[str, bool | None] = field(default_factory=dict)
    latency: dict[tuple[str, str], float] = field(default_factory=dict)
    conversion_latency_us: float = 1.0
    asked: list[str] = field(default_factory=list)

    @staticmethod
    def _key(op) -> str:
        act = op.properties.get("fused_activation")
        act = act.data if isinstance(act, StringAttr) else "NONE"
        return op.name if act == "NONE" else f"{op.name}+{act}"

    def int8_delegated(self, op) -> bool | None:
        self.asked.append(self._key(op))
        return self.int8.get(self._key(op))

    def float_delegated(self, op) -> bool | None:
        return self.float.get(self._key(op))

    def latency_us(self, op, precision: str) -> float | None:
        return self.latency.get((self._key(op), precision))


XNNPACK_LIKE = StubTarget(
    name="xnnpack",
    int8={"nn.conv2d": True, "nn.add": True, "nn.prelu": False, "nn.maximum": False,
          "nn.mul": True, "nn.leaky_relu": True, "nn.hard_swish": False},
    float={"nn.conv2d": True, "nn.add": True, "nn.prelu": True, "nn.maximum": True,
           "nn.mul": True, "nn.leaky_relu": True, "nn.hard_swish": True},
)


def _run(text: str, target) -> ModuleOp:
    module = parse_ir(text, "test.mlir")
    module.verify()
    LegalizeTarget(target="stub", capabilities=target).apply(make_context(), module)
    module.verify()
    return module


def _ops(module: ModuleOp) -> list[str]:
    return [op.name for op in module.walk() if op.name not in ("builtin.module", "func.func")]


Q = "!quant.uniform<i8:f32, 0.05:3>"
T = f"tensor<1x4x4x8x{Q}>"
ALPHA = "tensor<1x1x8x!quant.uniform<i8:f32, 0.004:0>>"


def _prelu_chain(alphas: str = "[[[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]]]") -> str:
    return f"""
func.func @main(%x: {T}) -> {T} {{
  %a = nn.constant {{value = dense<{alphas}> : tensor<1x1x8xf32>}} : {ALPHA}
  %0 = nn.add %x, %x {{fused_activation = "NONE"}} : ({T}, {T}) -> {T} loc("add")
  %1 = nn.prelu %0, %a : ({T}, {ALPHA}) -> {T} loc("p1")
  %2 = nn.prelu %1, %a : ({T}, {ALPHA}) -> {T} loc("p2")
  %3 = nn.add %2, %x {{fused_activation = "NONE"}} : ({T}, {T}) -> {T} loc("add2")
  func.return %3 : {T}
}}
"""


def test_prelu_not_delegated_in_int8_becomes_one_float_island() -> None:
    module = _run(_prelu_chain(), dataclasses.replace(XNNPACK_LIKE))
    names = _ops(module)
    # add (int8), dcast, prelu, prelu (one island: no qcast/dcast between them), qcast, add
    assert names == ["nn.constant", "nn.add", "quant.dcast", "nn.prelu", "nn.prelu",
                     "quant.qcast", "nn.add", "func.return"], names
    constant = next(op for op in module.walk() if isinstance(op, nn.ConstantOp))
    assert not quant.is_quantized(constant.output.type)  # alpha feeds float ops only: f32
    for op in module.walk():
        if isinstance(op, nn.PReluOp):
            assert not quant.is_quantized(op.output.type)
            reason = op.attributes[REASON].data
            assert "does not take int8 PRELU (measured)" in reason, reason
        if isinstance(op, nn.AddOp):
            assert quant.is_quantized(op.output.type) and REASON not in op.attributes


def test_delegated_int8_ops_stay_int8_and_unmeasured_ops_too() -> None:
    target = dataclasses.replace(XNNPACK_LIKE, int8={"nn.add": True}, float={})
    module = _run(_prelu_chain(), target)  # prelu: not measured (None)
    assert "quant.dcast" not in _ops(module)
    assert all(REASON not in op.attributes for op in module.walk())


def test_uniform_alpha_prelu_becomes_int8_leaky_relu() -> None:
    module = _run(_prelu_chain("0.25"), dataclasses.replace(XNNPACK_LIKE))
    names = _ops(module)
    assert names == ["nn.add", "nn.leaky_relu", "nn.leaky_relu", "nn.add", "func.return"], names
    leaky = next(op for op in module.walk() if isinstance(op, nn.LeakyReluOp))
    assert leaky.alpha.value.data == 0.25
    assert quant.is_quantized(leaky.output.type)
    assert "LEAKY_RELU" in leaky.attributes[REASON].data


def test_leaky_relu_not_chosen_when_the_island_is_cheaper() -> None:
    target = dataclasses.replace(
        XNNPACK_LIKE,
        latency={("nn.leaky_relu", "int8"): 50.0, ("nn.prelu", "float"): 2.0},
        conversion_latency_us=1.0,
    )
    names = _ops(_run(_prelu_chain("0.25"), target))
    assert "nn.leaky_relu" not in names and "quant.dcast" in names


def _single(op_text: str, op_type: str = T) -> str:
    return f"""
func.func @main(%x: {T}) -> {op_type} {{
  %0 = {op_text} loc("op")
  func.return %0 : {op_type}
}}
"""


HSWISH = _single(f"nn.hard_swish %x : ({T}) -> {T}")


@pytest.mark.parametrize(
    ("int8_us", "float_us", "conversion_us", "island"),
    [
        (10.0, 2.0, 1.0, True),  # float + one pair of conversions is faster
        (2.0, 10.0, 1.0, False),  # int8 is faster
        (3.0, 2.0, 1.0, False),  # a tie goes to int8 (no conversions)
        (None, 2.0, 1.0, False),  # not measured: int8
    ],
)
def test_op_delegated_in_neither_precision_follows_the_latencies(
    int8_us, float_us, conversion_us, island
) -> None:
    latency = {("nn.hard_swish", "float"): float_us}
    if int8_us is not None:
        latency[("nn.hard_swish", "int8")] = int8_us
    target = dataclasses.replace(
        XNNPACK_LIKE, int8={"nn.hard_swish": False}, float={"nn.hard_swish": False},
        latency=latency, conversion_latency_us=conversion_us,
    )
    module = _run(HSWISH, target)
    assert ("quant.dcast" in _ops(module)) == island
    if island:
        op = next(op for op in module.walk() if isinstance(op, nn.HardSwishOp))
        assert "neither in int8 nor in float" in op.attributes[REASON].data


def test_ops_without_an_int8_kernel_are_islands_with_their_reason() -> None:
    text = _single(f"nn.div %x, %x {{fused_activation = \"NONE\"}} : ({T}, {T}) -> {T}")
    module = _run(text, StubTarget())
    div = next(op for op in module.walk() if isinstance(op, nn.DivOp))
    assert not quant.is_quantized(div.output.type)
    assert div.attributes[REASON].data.startswith("no int8 kernel (")


def test_int8_only_target_makes_no_island() -> None:
    target = dataclasses.replace(XNNPACK_LIKE, name="int8-only", allows_float=False)
    module = _run(_prelu_chain(), target)
    assert "quant.dcast" not in _ops(module)
    text = _single(f"nn.div %x, %x {{fused_activation = \"NONE\"}} : ({T}, {T}) -> {T}")
    with pytest.raises(PassFailedException, match=r"allows no float op\n.*'nn.div' op"):
        _run(text, target)


def test_without_capabilities_the_pass_fails() -> None:
    module = parse_ir(_prelu_chain(), "test.mlir")
    with pytest.raises(PassFailedException, match="no target capabilities"):
        LegalizeTarget(target="xnnpack").apply(make_context(), module)


def test_a_target_that_answers_nothing_is_legalize_fallback() -> None:
    """The reference / numba targets have no table: every answer None, so the pass keeps
    every op with an int8 kernel int8, as legalize-fallback does."""
    text = _prelu_chain() + _single(
        f"nn.div %x, %x {{fused_activation = \"NONE\"}} : ({T}, {T}) -> {T}"
    ).replace("@main", "@second")
    a = _run(text, StubTarget(name="reference"))
    b = parse_ir(text, "test.mlir")
    LegalizeFallback().apply(make_context(), b)
    strip = [op for op in a.walk() if REASON in op.attributes]
    for op in strip:
        del op.attributes[REASON]
    assert print_ir(a) == print_ir(b)


def test_the_pass_options_and_the_driver_binding() -> None:
    from qcc.errors import QccError
    from qcc.pipeline import pass_options, pipeline_text

    assert list(pass_options(LegalizeTarget)) == ["target"]  # capabilities: Python only
    (p,) = build_pipeline("legalize-target{target=reference}")
    assert p.capabilities is not None and p.capabilities.name == "reference"
    assert pipeline_text([p]) == "builtin.module(legalize-target{target=reference})"
    with pytest.raises(QccError, match="needs a target"):
        build_pipeline("legalize-target")
    with pytest.raises(QccError, match="unknown target 'gpu'"):
        build_pipeline("legalize-target{target=gpu}")


# -- the presets -----------------------------------------------------------------------------


def test_preset_texts_per_target() -> None:
    def text(**options) -> str:
        return preset_pipeline_text(PresetOptions(calibration="c.npz", **options))

    assert text(target="reference") == BEFORE_INT8.format(c="c.npz")
    # numba: without decompose-prelu (its runtime runs int8 PRELU as two lines a channel)
    assert text(target="numba") == BEFORE_INT8.format(c="c.npz").replace("decompose-prelu,", "")
    assert "decompose-prelu" in text(target="numba", decompose_prelu=True)
    assert text(target="int8-only") == BEFORE_INT8_ONLY.format(c="c.npz")
    assert text(mode="int8-only") == BEFORE_INT8_ONLY.format(c="c.npz")
    assert text() == text(target="xnnpack") == (
        "builtin.module(canonicalize-custom-ops,fuse-activation,annotate-ranges{calibration=c.npz "
        "method=mse},bias-correction,infer-scales,legalize-target{target=xnnpack},quantize)"
    )
    assert "decompose-prelu" in text(target="xnnpack", decompose_prelu=True)
    assert "decompose-prelu" not in text(target="reference", decompose_prelu=False)
    assert text(mode="dynamic-range") == "builtin.module(dynamic-range)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "int8-only", "target": "xnnpack"}, "does not combine with target 'xnnpack'"),
        ({"mode": "dynamic-range", "target": "numba"}, "applies to the int8 modes"),
        ({"target": "gpu"}, "unknown target 'gpu'"),
    ],
)
def test_preset_target_errors(options, message) -> None:
    from qcc.errors import QccError

    with pytest.raises(QccError, match=message):
        preset_pipeline_text(PresetOptions(calibration="c.npz", **options))


def test_cli_print_pipeline_shows_the_target() -> None:
    def printed(*args: str) -> str:
        result = run_qcc(*args, "--print-pipeline")
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout.decode().strip()

    assert "legalize-target{target=xnnpack}" in printed("--mode=int8")
    assert "legalize-target{target=xnnpack}" in printed()
    assert printed("--target=reference") == BEFORE_INT8.format(c="CALIBRATION")
    assert printed("--target=int8-only") == BEFORE_INT8_ONLY.format(c="CALIBRATION")
    assert printed("--mode=int8-only") == BEFORE_INT8_ONLY.format(c="CALIBRATION")
    # numba: the reference preset without decompose-prelu (its runtime runs int8 PRELU)
    numba = BEFORE_INT8.format(c="CALIBRATION").replace("decompose-prelu,", "")
    assert printed("--emit=numba") == numba
    assert printed("--target=numba") == numba
    assert printed("--emit=numba", "--mode=dynamic-range") == "builtin.module(dynamic-range)"
    assert "decompose-prelu" not in printed("--target=reference", "--keep-prelu")


def test_cli_target_errors(tmp_path: Path) -> None:
    result = run_qcc("--mode=int8-only", "--target=numba", "--print-pipeline")
    assert result.returncode == 1
    assert b"does not combine with target 'numba'" in result.stderr
    result = run_qcc("x.tflite", "--target=xnnpack", "--pass-pipeline=quantize")
    assert result.returncode == 1 and b"replaces --mode/--calibration/--target" in result.stderr
    result = run_qcc("--target=gpu", "--print-pipeline")
    assert result.returncode == 1 and b"invalid choice: 'gpu'" in result.stderr


# -- whole models ----------------------------------------------------------------------------


def _prelu_model() -> bytes:
    """conv -> PRELU (per-channel alpha) -> conv -> PRELU -> add: PRELU as MediaPipe's
    landmark models use it."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_input("x", [1, 8, 8, 4])
    prev = x
    for i in range(2):
        w = b.add_constant(f"w{i}", rng.normal(0, 0.5, (8 if i == 0 else 8, 1, 1, 4 if i == 0 else 8))
                           .astype(np.float32))
        bias = b.add_constant(f"b{i}", rng.normal(0, 0.1, 8).astype(np.float32))
        conv = b.add_tensor(f"conv{i}", [1, 8, 8, 8])
        o = schema.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW = schema.Padding.SAME, 1, 1
        o.dilationHFactor = o.dilationWFactor = 1
        b.add_operator(Op.CONV_2D, [prev, w, bias], [conv], o, version=3)
        alpha = b.add_constant(f"alpha{i}", rng.uniform(-0.3, 0.6, (1, 1, 8)).astype(np.float32))
        y = b.add_tensor(f"prelu{i}", [1, 8, 8, 8])
        b.add_operator(Op.PRELU, [conv, alpha], [y])
        prev = y
    b.mark_output(prev)
    return b.build()


@pytest.fixture(scope="module")
def prelu_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("prelu")
    model = folder / "prelu.tflite"
    model.write_bytes(_prelu_model())
    m = qcc.load(model)
    samples = model_samples(m, 8, seed=5, low=-1.0)
    calib = folder / "calib.npz"
    np.savez(calib, **{t.name: np.stack([s[i] for s in samples]) for i, t in enumerate(m.inputs)})
    return {"model": model, "calib": calib}


@pytest.mark.parametrize(
    ("target_args", "before"),
    [(["--target=reference"], BEFORE_INT8), (["--mode=int8", "--target=reference"], BEFORE_INT8),
     (["--target=int8-only"], BEFORE_INT8_ONLY), (["--mode=int8-only"], BEFORE_INT8_ONLY)],
)
def test_reference_and_int8_only_write_what_the_presets_wrote_before(
    prelu_files, tmp_path: Path, target_args, before
) -> None:
    model, calib = prelu_files["model"], prelu_files["calib"]
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    result = run_qcc(str(model), "--calibration", str(calib), *target_args, "-o", str(a))
    assert result.returncode == 0, result.stderr.decode()
    result = run_qcc(str(model), "--pass-pipeline", before.format(c=calib), "-o", str(b))
    assert result.returncode == 0, result.stderr.decode()
    assert a.read_bytes() == b.read_bytes()


def test_api_reference_target_is_the_int8_preset_before_targets(prelu_files) -> None:
    model, calib = prelu_files["model"], prelu_files["calib"]
    q = qcc.quantize(model, representative_dataset=calib, target="reference")
    passes = build_pipeline(BEFORE_INT8.format(c=calib))
    module = qcc.load(model).module
    for p in passes:
        p.apply(make_context(), module)
    assert q.to_tflite() == qcc.api.Model(module).to_tflite()


def test_xnnpack_default_makes_prelu_float_islands_that_run_everywhere(prelu_files) -> None:
    """The default target keeps PRELU (no decompose-prelu) as float islands; the result runs
    in qcc's runtime (islands in-process) and in LiteRT, close to float."""
    from qcc.litert import make_interpreter

    model, calib = prelu_files["model"], prelu_files["calib"]
    q = qcc.quantize(model, representative_dataset=calib)
    ops = [op for op in q.module.walk() if isinstance(op, nn.NNOp)]
    prelus = [op for op in ops if isinstance(op, nn.PReluOp)]
    assert len(prelus) == 2 and not any(isinstance(op, nn.MaximumOp) for op in ops)
    for op in prelus:
        assert not quant.is_quantized(op.output.type)
        assert "PRELU" in op.attributes[REASON].data
    convs = [op for op in ops if isinstance(op, nn.Conv2DOp)]
    assert convs and all(quant.is_quantized(op.output.type) for op in convs)
    f = qcc.load(model)
    x = model_samples(f, 1, seed=11, low=-1.0)[0]
    expected = f.run(x)[0]
    got = q.run(x)[0]
    interpreter = make_interpreter(q.to_tflite())
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[0])
    interpreter.invoke()
    litert = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    for y in (got, litert):
        snr = 10 * np.log10(np.sum(expected**2) / np.sum((expected - y) ** 2))
        assert snr > 25, snr


def test_emit_numba_defaults_to_the_numba_target(prelu_files, tmp_path: Path) -> None:
    model, calib = prelu_files["model"], prelu_files["calib"]
    out = tmp_path / "artifact"
    result = run_qcc(str(model), "--calibration", str(calib), "--emit=numba", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert (out / "model.py").exists()
    # xnnpack's float PRELU islands cannot go into an artifact: one line saying so
    result = run_qcc(str(model), "--calibration", str(calib), "--emit=numba", "--target=xnnpack",
                     "-o", str(tmp_path / "other"))
    assert result.returncode == 1
    assert b"--target=xnnpack made float islands" in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1


def _declared_ops() -> list[type]:
    return [cls for cls in nn.op_classes() if (s := nn.op_spec(cls)) and s.example is not None]


@pytest.mark.parametrize("cls", _declared_ops(), ids=lambda cls: cls.name)
def test_every_op_under_the_default_target_runs_in_litert_and_qcc(cls, tmp_path: Path) -> None:
    """Whatever legalize-target chooses for an op (int8, a float island, a rewrite), the
    file LiteRT's default resolver loads and runs it, qcc's runtime runs the module, and
    the op's reason is there when it is not int8."""
    from qcc.backends.litert_check import check_prepares
    from qcc.litert import make_interpreter
    from qcc.testing import tflite_models as tm

    path = tmp_path / "op.tflite"
    path.write_bytes(tm.op_model(cls))
    samples = [tm.op_inputs(cls, seed) for seed in range(4)]
    q = qcc.quantize(qcc.load(path), representative_dataset=samples)
    for op in q.module.walk():
        if isinstance(op, nn.NNOp) and not isinstance(op, nn.ConstantOp):
            if not any(quant.is_quantized(r.type) for r in op.results):
                assert REASON in op.attributes, op.name
    content = q.to_tflite()
    check_prepares(content, label=cls.name)
    inputs = tm.op_inputs(cls, 100)
    interpreter = make_interpreter(content)
    for detail, x in zip(interpreter.get_input_details(), inputs, strict=True):
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    theirs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    ours = q.run(inputs)
    for got, want in zip(ours, theirs, strict=True):
        assert got.shape == want.shape and np.all(np.isfinite(got)), cls.name
        # the same int8 model: at most a couple of output steps apart (float islands run
        # other float kernels, whose last bits may round to the neighbouring int8 code)
        spread = float(np.max(np.abs(want))) if want.size else 0.0
        assert np.max(np.abs(got - want), initial=0.0) <= 0.02 * spread + 1e-6, cls.name
