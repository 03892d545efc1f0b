"""bias-correction (passes/bias_correction.py) and the channel means it reads.

End to end, on the generated models of `qcc.testing.tflite_models`: quantized with and
without bias correction on the same calibration data, both run by LiteRT; on that data, the
mean error of each output channel against the float model (LiteRT on the original file) must
shrink. Measured with ai-edge-litert 2.3.0, corrected / uncorrected RMS of the per-channel
mean errors: 0.02-0.20 for single convolutions, 0.20-0.29 for fully connected layers, 0.20
for a transpose convolution with a bias, 0.26 / 0.34 / 0.42 for the chained networks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import litert_interpreter, litert_invoke, model_samples
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.utils.exceptions import VerifyException

from qcc.api import Model, quantize
from qcc.context import make_context
from qcc.dialects import nn, quant
from qcc.errors import QccWarning
from qcc.frontends.tflite import import_tflite
from qcc.irtext import parse_ir
from qcc.passes.annotate_ranges import AnnotateRanges, ValueStats
from qcc.statistics import Calibrator
from qcc.passes.bias_correction import BiasCorrection
from qcc.testing.tflite_models import chained_models, single_op_models

CALIBRATION_SAMPLES = 16


def _models() -> dict[str, bytes]:
    return single_op_models() | chained_models()


def _model(name: str) -> Model:
    return Model(import_tflite(_models()[name], name=name), name)


def _calibration(model: Model) -> list[list[np.ndarray]]:
    """Non-centred data (uniform [0, 1], like post-ReLU activations or image pixels): with
    zero-mean inputs there would be no mean error to correct."""
    return model_samples(model, CALIBRATION_SAMPLES, seed=0)


def _run(content: bytes, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    interpreter = litert_interpreter(content)
    return [[y.astype(np.float64) for y in litert_invoke(interpreter, sample)] for sample in samples]


def _mean_error(reference: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> list[float]:
    """Per output: RMS over channels (last axis) of the mean error over all samples and
    positions."""
    result = []
    for k in range(len(reference[0])):
        errors = np.concatenate(
            [(g[k] - r[k]).reshape(-1, r[k].shape[-1]) for r, g in zip(reference, got)]
        )
        result.append(float(np.sqrt(np.mean(errors.mean(axis=0) ** 2))))
    return result


CORRECTED = [
    "conv_2d_same",
    "conv_2d_dilation2",
    "conv_2d_zero_bias",
    "depthwise_conv_2d_multiplier2",
    "depthwise_conv_2d_stride2",
    "fully_connected",
    "fully_connected_4d_input",  # flattened [1, 4, 4, 8] -> rows of 128 features
    "fully_connected_no_bias",  # gets a bias
    "transpose_conv_same_stride2_bias",
    "residual_classifier",
    "mobilenet_v3_block",
    "encoder_decoder",
]


@pytest.mark.parametrize("name", CORRECTED)
def test_corrected_outputs_have_a_smaller_mean_error(name: str) -> None:
    model = _model(name)
    samples = _calibration(model)
    reference = _run(_models()[name], samples)
    errors = {}
    for corrected in (False, True):
        q = quantize(model, representative_dataset=samples, bias_correction=corrected)
        errors[corrected] = _mean_error(reference, _run(q.to_tflite(), samples))
    for before, after in zip(errors[False], errors[True]):
        assert after < 0.6 * before, (name, errors)


def _biases(module: ModuleOp) -> dict[str, tuple[object, np.ndarray]]:
    """The (type, stored values) of the bias of every affine op, by the op's location."""
    from qcc.runtime.executor import location_text
    from qcc.runtime.kernels.common import decode_dense

    found = {}
    for op in module.walk():
        affine = op.get_trait(nn.AffineWeights)
        if affine is None or affine.bias_operand >= len(op.operands):
            continue
        const = op.operands[affine.bias_operand].owner
        assert isinstance(const, nn.ConstantOp)
        values = np.asarray(decode_dense(const.value))
        found[location_text(op.location)] = (const.output.type, values)
    return found


def test_only_bias_values_change() -> None:
    """Same ops, same weights, same bias types (scale = input scale x weight scale); the
    biases' int32 values move."""
    model = _model("residual_classifier")
    samples = _calibration(model)
    plain = quantize(model, representative_dataset=samples, bias_correction=False)
    corrected = quantize(model, representative_dataset=samples, bias_correction=True)
    before, after = _biases(plain.module), _biases(corrected.module)
    assert before.keys() == after.keys() and before
    assert all(before[k][0] == after[k][0] for k in before)
    assert any(not np.array_equal(before[k][1], after[k][1]) for k in before)
    ops = lambda m: [op.name for op in m.walk()]  # noqa: E731
    assert ops(plain.module) == ops(corrected.module)


def test_fc_without_bias_gets_one_transpose_conv_does_not() -> None:
    for name, gets_bias in (("fully_connected_no_bias", True),
                            ("transpose_conv_same_stride2", False)):
        model = _model(name)
        module = model.module.clone()
        ctx = make_context()
        AnnotateRanges(statistics=Calibrator(_calibration(model))).apply(ctx, module)
        BiasCorrection().apply(ctx, module)
        module.verify()
        (op,) = [op for op in module.walk() if op.get_trait(nn.AffineWeights) is not None]
        assert (len(op.operands) == 3) == gets_bias, name


def test_per_tensor_fc_follows_infer_scales() -> None:
    """With per-channel-fc=false the correction is the one for per-tensor weights."""
    model = _model("fully_connected")
    samples = _calibration(model)
    reference = _run(_models()["fully_connected"], samples)
    errors = {}
    for corrected in (False, True):
        q = quantize(model, representative_dataset=samples, per_channel_fc=False,
                     bias_correction=corrected)
        errors[corrected] = _mean_error(reference, _run(q.to_tflite(), samples))
    assert errors[True][0] < 0.6 * errors[False][0], errors


# ------------------------------------------------------------------------------------------
# Channel means: recorded by annotate-ranges, carried by quant.stats
# ------------------------------------------------------------------------------------------


def test_channel_mean_merges_exactly() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(2.0, 1.0, size=(6, 5, 4, 3))
    data[1, 2, 0, 1] = np.nan
    whole = ValueStats(64, mean_axes=1)
    whole.observe(data)
    parts = [ValueStats(64, mean_axes=1) for _ in range(3)]
    for part, chunk in zip(parts, np.split(data, 3)):
        part.observe(chunk)
    merged = ValueStats.merge(ValueStats.merge(parts[0], parts[1]), parts[2])
    expected = np.nanmean(data.reshape(-1, 3), axis=0)
    assert whole.channel_mean is not None and merged.channel_mean is not None
    np.testing.assert_allclose(whole.channel_mean, expected, rtol=1e-12)
    np.testing.assert_allclose(merged.channel_mean, expected, rtol=1e-12)
    assert merged.mean_count is not None and merged.mean_count.tolist() == [120, 119, 120]
    assert ValueStats(8).channel_mean is None  # mean_axes=0: no mean
    with pytest.raises(ValueError, match="cannot merge means"):
        ValueStats.merge(ValueStats(8, mean_axes=1), ValueStats(8, mean_axes=2))
    wrong = ValueStats(8, mean_axes=1)
    wrong.observe(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="trailing shape"):
        wrong.observe(np.zeros((2, 4)))


def _stats_ops(module: ModuleOp) -> list[quant.StatsOp]:
    return [op for op in module.walk() if isinstance(op, quant.StatsOp)]


def test_annotate_ranges_records_what_the_consumers_read() -> None:
    """Every annotation has the per-channel mean; an FC input flattened to rows of 128
    features keeps the 4x4x8 mean of those features."""
    model = _model("fully_connected_4d_input")
    samples = _calibration(model)
    module = model.module.clone()
    AnnotateRanges(statistics=Calibrator(samples)).apply(make_context(), module)
    shapes = {}
    for op in _stats_ops(module):
        assert op.channel_mean is not None
        shapes[tuple(op.input.type.get_shape())] = tuple(op.channel_mean.get_shape())
    assert shapes == {(1, 4, 4, 8): (4, 4, 8), (1, 16): (16,)}
    (arg_stats,) = [op for op in _stats_ops(module) if op.input.type.get_shape()[0:2] == (1, 4)]
    expected = np.mean([s[0][0] for s in samples], axis=0).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(arg_stats.channel_means, np.float32).reshape(4, 4, 8), expected, rtol=1e-6
    )


def test_stats_channel_mean_round_trips() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal(24).astype(np.float32)
    text = (
        "func.func @f(%x: tensor<1x2x4x3xf32>) -> tensor<1x2x4x3xf32> {\n"
        "  %s = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} "
        ": tensor<1x2x4x3xf32>\n"
        "  func.return %s : tensor<1x2x4x3xf32>\n}\n"
    )
    module = parse_ir(text, "t.mlir")
    (func,) = module.ops
    block = func.body.block  # type: ignore[attr-defined]
    old = block.first_op
    new = quant.StatsOp(block.args[0], (-1.0, 1.0), channel_mean=values.tolist(),
                        channel_mean_shape=[2, 4, 3])
    from xdsl.rewriter import Rewriter

    Rewriter.replace_op(old, new)
    module.verify()
    printed = str(module)
    assert "channel_mean = dense<" in printed
    again = parse_ir(printed, "again.mlir")
    again.verify()
    (stats,) = _stats_ops(again)
    assert stats.channel_mean is not None
    assert tuple(stats.channel_mean.get_shape()) == (2, 4, 3)
    assert np.array_equal(np.asarray(stats.channel_means, np.float32), values)
    assert str(again) == printed


@pytest.mark.parametrize(
    "mean, message",
    [
        ("dense<[1.0, 2.0]> : tensor<2xf32>", "trailing dimensions of the input shape [4, 3]"),
        ("dense<[[1.0, 2.0, 3.0]]> : tensor<1x3xf32>", "got [1, 3]"),
        # [1.0, NaN, 3.0] as raw little-endian f32
        ('dense<"0x0000803F0000C07F00004040"> : tensor<3xf32>', "channel_mean must be finite"),
    ],
)
def test_stats_channel_mean_is_verified(mean: str, message: str) -> None:
    text = (
        "func.func @f(%x: tensor<4x3xf32>) -> tensor<4x3xf32> {\n"
        "  %s = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, "
        f"channel_mean = {mean}}} : tensor<4x3xf32>\n"
        "  func.return %s : tensor<4x3xf32>\n}\n"
    )
    with pytest.raises(VerifyException, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_ir(text, "t.mlir").verify()


def test_channel_mean_of_a_tensor_type_is_the_last_axis() -> None:
    """A stats op built from Python without a shape records one axis."""
    text = (
        "func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {\n"
        "  func.return %x : tensor<2x3xf32>\n}\n"
    )
    module = parse_ir(text, "t.mlir")
    (func,) = module.ops
    arg = func.body.block.args[0]  # type: ignore[attr-defined]
    op = quant.StatsOp(arg, (0.0, 1.0), channel_mean=[0.5, 0.25, 0.125])
    assert isinstance(op.channel_mean.type, TensorType)  # type: ignore[union-attr]
    assert tuple(op.channel_mean.get_shape()) == (3,)  # type: ignore[union-attr]
    assert op.channel_means == (0.5, 0.25, 0.125)


def _endless(model: Model, pulled: list[int]):
    """A representative dataset that never ends (a generator function), counting what it
    gives."""

    def gen():
        rng = np.random.default_rng(0)
        while True:
            pulled.append(1)
            yield [rng.uniform(0.0, 1.0, size=t.shape).astype(np.float32) for t in model.inputs]

    return gen


def test_an_endless_dataset_is_read_only_up_to_the_limit(monkeypatch) -> None:
    """bias-correction reads the means annotate-ranges recorded and never the data again: the
    int8 preset with it takes `samples` items of an endless generator, or the default cap
    (with a warning) when no `samples` is given."""
    import qcc.calibration

    model = _model("conv_2d_same")
    pulled: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        q = quantize(model, representative_dataset=_endless(model, pulled), samples=6,
                     bias_correction=True)
    assert len(pulled) == 6
    assert _biases(q.module)  # quantized, biases corrected
    monkeypatch.setattr(qcc.calibration, "DEFAULT_SAMPLE_CAP", 12)
    pulled.clear()
    with pytest.warns(QccWarning, match="used the first 12 samples and ignored the rest"):
        quantize(model, representative_dataset=_endless(model, pulled), bias_correction=True)
    assert len(pulled) == 13  # the cap, and one more to know there is more
