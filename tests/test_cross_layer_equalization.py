"""cross-layer-equalization (passes/cross_layer_equalization.py).

On generated float chains (conv -> depthwise -> conv with RELU, PReLU and RELU6 between
them, grouped convolutions, depthwise multipliers, fully connected layers), whose channels
have weight ranges spread over four orders of magnitude: the float function is unchanged
(qcc's float executor, and LiteRT on the exported file), the per-channel weight ranges of
every equalized pair are balanced (r1 = r2 = sqrt(r1·r2)), and what must not change does not
(fan-out, RELU6 under relu6=keep, other activations, PReLU's alpha).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_litert

from qcc.api import Model
from qcc.backends.tflite import export_tflite
from qcc.context import make_context
from qcc.dialects import nn
from qcc.dialects.ir import decode_dense, find_main
from qcc.errors import QccError
from qcc.irtext import parse_ir
from qcc.passes.cross_layer_equalization import equalize, find_junctions
from qcc.pipeline import build_pipeline

# ------------------------------------------------------------------------------------------
# Generated chains, as MLIR text
# ------------------------------------------------------------------------------------------


def _t(shape) -> str:
    return "tensor<" + "x".join(str(int(d)) for d in shape) + "xf32>"


def _dense(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a, dtype="<f4")
    return f'dense<"0x{a.tobytes().hex().upper()}"> : {_t(a.shape)}'


_CONV = 'stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME"'


def chain(layers: list[tuple], seed: int = 0, channels: int = 4, size: int = 6,
          spread: float = 2.0, fan_out: int | None = None) -> tuple[str, tuple[int, ...]]:
    """A float `func.func @main` applying `layers` in turn to a 1 x size x size x channels
    input: ("conv", out, act[, groups]), ("dw", multiplier, act), ("fc", out, act) (a
    keep_num_dims fully_connected on the channels), ("prelu",), ("relu",). Every output
    channel's weights are scaled by 10^U(-spread, spread). With `fan_out=i`, layer i's result
    is also returned. Returns the text and the input shape."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    count = [0]

    def fresh() -> str:
        count[0] += 1
        return f"%v{count[0]}"

    def const(a: np.ndarray, loc: str) -> str:
        v = fresh()
        lines.append(f'{v} = nn.constant {{value = {_dense(a)}}} : {_t(a.shape)} loc("{loc}")')
        return v

    def spread_along(shape: tuple[int, ...], axis: int) -> np.ndarray:
        s = 10.0 ** rng.uniform(-spread, spread, shape[axis])
        view = [1] * len(shape)
        view[axis] = shape[axis]
        return s.reshape(view)

    x, shape = "%arg0", (1, size, size, channels)
    inp = shape
    results = []
    for i, (kind, *args) in enumerate(layers):
        name, c = f"l{i}", shape[-1]
        if kind == "conv":
            out, act, *rest = args
            groups = rest[0] if rest else 1
            wshape = (out, 3, 3, c // groups)
            w = rng.normal(size=wshape) * spread_along(wshape, 0)
            b = rng.normal(size=out) * spread_along((out,), 0)[:] * 0.1
            wv, bv = const(w, f"{name}/w"), const(b, f"{name}/b")
            new, y = (*shape[:3], out), fresh()
            lines.append(
                f'{y} = nn.conv2d {x}, {wv}, {bv} {{{_CONV}, fused_activation = "{act}"}} : '
                f"({_t(shape)}, {_t(w.shape)}, {_t(b.shape)}) -> {_t(new)} loc(\"{name}\")"
            )
        elif kind == "dw":
            multiplier, act = args
            wshape = (1, 3, 3, c * multiplier)
            w = rng.normal(size=wshape) * spread_along(wshape, 3)
            b = rng.normal(size=c * multiplier) * 0.1
            wv, bv = const(w, f"{name}/w"), const(b, f"{name}/b")
            new, y = (*shape[:3], c * multiplier), fresh()
            lines.append(
                f"{y} = nn.depthwise_conv2d {x}, {wv}, {bv} {{{_CONV}, fused_activation = "
                f'"{act}", depth_multiplier = {multiplier} : i64}} : '
                f"({_t(shape)}, {_t(w.shape)}, {_t(b.shape)}) -> {_t(new)} loc(\"{name}\")"
            )
        elif kind == "fc":
            out, act = args
            w = rng.normal(size=(out, c)) * spread_along((out, c), 0)
            b = rng.normal(size=out) * 0.1
            wv, bv = const(w, f"{name}/w"), const(b, f"{name}/b")
            new, y = (*shape[:3], out), fresh()
            lines.append(
                f'{y} = nn.fully_connected {x}, {wv}, {bv} {{fused_activation = "{act}", '
                f"keep_num_dims = true}} : ({_t(shape)}, {_t(w.shape)}, {_t(b.shape)}) -> "
                f'{_t(new)} loc("{name}")'
            )
        elif kind == "prelu":
            a = rng.uniform(0.05, 0.3, (1, 1, c))
            av, new, y = const(a, f"{name}/alpha"), shape, fresh()
            lines.append(
                f"{y} = nn.prelu {x}, {av} : ({_t(shape)}, {_t(a.shape)}) -> {_t(new)} "
                f'loc("{name}")'
            )
        elif kind == "relu":
            new, y = shape, fresh()
            lines.append(f'{y} = nn.relu {x} : ({_t(shape)}) -> {_t(new)} loc("{name}")')
        else:
            raise ValueError(kind)
        x, shape = y, new
        results.append((y, shape))
    returned = [(x, shape)]
    if fan_out is not None:
        returned.insert(0, results[fan_out])
    values = ", ".join(v for v, _ in returned)
    types = ", ".join(_t(s) for _, s in returned)
    body = "\n    ".join(lines)
    text = (
        f"func.func @main(%arg0: {_t(inp)}) -> ({types}) {{\n    {body}\n"
        f"    func.return {values} : {types}\n}}\n"
    )
    return text, inp


def _apply(text: str, pipeline: str = "cross-layer-equalization"):
    module = parse_ir(text)
    for p in build_pipeline(pipeline):
        p.apply(make_context(), module)
    module.verify()
    return module


def _inputs(shape, seed: int = 1, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) * 3 for _ in range(n)]


def _assert_same_function(before, after, shape) -> None:
    """Equal outputs within float32 rounding, on qcc's executor and on LiteRT."""
    a, b = Model(before), Model(after)
    before_file, after_file = export_tflite(before), export_tflite(after)
    for x in _inputs(shape):
        for ya, yb in zip(a.run([x]), b.run([x])):
            scale = float(np.max(np.abs(ya))) or 1.0
            np.testing.assert_allclose(yb, ya, rtol=0, atol=2e-5 * scale)
        for ya, yb in zip(run_litert(before_file, [x]), run_litert(after_file, [x])):
            scale = float(np.max(np.abs(ya))) or 1.0
            np.testing.assert_allclose(yb, ya, rtol=0, atol=2e-5 * scale)


def _weights(module) -> dict[str, np.ndarray]:
    """Every constant by its location name."""
    from qcc.dialects.ir import location_text

    return {
        location_text(op.location): np.asarray(decode_dense(op.value), np.float64)
        for op in module.walk()
        if isinstance(op, nn.ConstantOp)
    }


CHAINS = {
    # iris_landmark's block: conv -> PReLU -> depthwise -> conv
    "conv_prelu_dw_conv": ([("conv", 8, "NONE"), ("prelu",), ("dw", 1, "NONE"),
                            ("conv", 6, "NONE")], "keep"),
    # MobileNet-like with RELU (fused, and standalone)
    "conv_relu_dw_relu_conv": ([("conv", 8, "RELU"), ("dw", 1, "NONE"), ("relu",),
                                ("conv", 6, "NONE")], "keep"),
    # face_detection's block: depthwise -> conv with nothing between
    "dw_conv": ([("dw", 1, "NONE"), ("conv", 6, "RELU")], "keep"),
    "dw_multiplier2_conv": ([("conv", 4, "RELU"), ("dw", 2, "RELU"), ("conv", 5, "NONE")],
                            "keep"),
    "grouped_conv": ([("conv", 8, "RELU"), ("conv", 6, "RELU", 2), ("conv", 4, "NONE", 2)],
                     "keep"),
    "conv_fc_fc": ([("conv", 8, "RELU"), ("fc", 6, "NONE"), ("prelu",), ("fc", 5, "NONE")],
                   "keep"),
    # hand_landmark's block: RELU6 rewritten into RELU + a per-channel clip
    "relu6_split": ([("conv", 8, "RELU6"), ("dw", 1, "RELU6"), ("conv", 6, "NONE")], "split"),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_the_float_function_is_unchanged(name: str) -> None:
    layers, relu6 = CHAINS[name]
    text, shape = chain(layers)
    before = parse_ir(text)
    after = _apply(text, f"cross-layer-equalization{{relu6={relu6}}}")
    assert _weights(before).keys() <= _weights(after).keys()
    changed = [k for k, w in _weights(before).items() if not np.array_equal(w, _weights(after)[k])]
    assert changed, "nothing was equalized"
    _assert_same_function(before, after, shape)


@pytest.mark.parametrize("name", list(CHAINS))
def test_weight_ranges_are_balanced(name: str) -> None:
    """After the pass every junction's ranges agree: r1_i = r2_i for every channel (a lone
    pair after one step; chains once the sweeps converge), and they were far apart before."""
    layers, relu6 = CHAINS[name]
    text, _ = chain(layers)
    func = find_main(parse_ir(text))
    junctions = find_junctions(func, relu6)
    assert junctions
    ratios_before = [
        j.first.output_ranges() / j.second.input_ranges(j.index, j.channels) for j in junctions
    ]
    assert max(float(np.max(np.abs(np.log10(r)))) for r in ratios_before) > 1.0
    junctions = equalize(func, relu6)
    for j in junctions:
        r1 = j.first.output_ranges()
        r2 = j.second.input_ranges(j.index, j.channels)
        np.testing.assert_allclose(r1, r2, rtol=1e-4)


def test_a_pair_is_exact_after_one_step() -> None:
    """conv -> conv: r1' = r1 / s = sqrt(r1·r2) = r2·s = r2', and the first layer's bias
    divided by the same s."""
    text, _ = chain([("conv", 6, "RELU"), ("conv", 5, "NONE")])
    before = _weights(parse_ir(text))
    module = parse_ir(text)
    (j,) = equalize(find_main(module), iterations=1)
    after = _weights(module)
    w1, w2 = before["l0/w"], before["l1/w"]
    r1 = np.abs(w1).reshape(6, -1).max(axis=1)
    r2 = np.abs(w2).max(axis=(0, 1, 2))
    s = np.sqrt(r1 * r2) / r2
    np.testing.assert_allclose(j.scale, s, rtol=1e-12)
    np.testing.assert_allclose(after["l0/w"], w1 / s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(after["l0/b"], before["l0/b"] / s, rtol=1e-6)
    np.testing.assert_allclose(after["l1/w"], w2 * s[None, None, None, :], rtol=1e-6)
    np.testing.assert_array_equal(after["l1/b"], before["l1/b"])  # the second bias stays
    balanced = np.sqrt(r1 * r2)
    np.testing.assert_allclose(np.abs(after["l0/w"]).reshape(6, -1).max(axis=1), balanced,
                               rtol=1e-6)
    np.testing.assert_allclose(np.abs(after["l1/w"]).max(axis=(0, 1, 2)), balanced, rtol=1e-6)


def test_prelu_alpha_is_unaffected() -> None:
    text, _ = chain(CHAINS["conv_prelu_dw_conv"][0])
    before, after = _weights(parse_ir(text)), _weights(_apply(text))
    np.testing.assert_array_equal(after["l1/alpha"], before["l1/alpha"])
    assert not np.array_equal(after["l0/w"], before["l0/w"])


def test_fan_out_is_skipped() -> None:
    """A layer whose result also feeds something else (here: the function's result) is not
    a first layer; the rest of the chain is still equalized."""
    layers = [("conv", 8, "RELU"), ("dw", 1, "RELU"), ("conv", 6, "NONE")]
    text, shape = chain(layers, fan_out=0)
    before = parse_ir(text)
    func = find_main(parse_ir(text))
    junctions = find_junctions(func)
    assert [(j.first.op.name, j.second.op.name) for j in junctions] == [
        ("nn.depthwise_conv2d", "nn.conv2d")
    ]
    after = _apply(text)
    w0, w1 = _weights(before), _weights(after)
    np.testing.assert_array_equal(w1["l0/w"], w0["l0/w"])
    np.testing.assert_array_equal(w1["l0/b"], w0["l0/b"])
    assert not np.array_equal(w1["l2/w"], w0["l2/w"])
    _assert_same_function(before, after, shape)


def test_fan_out_through_an_activation_is_skipped() -> None:
    text, _ = chain([("conv", 8, "NONE"), ("prelu",), ("conv", 6, "NONE")], fan_out=1)
    assert find_junctions(find_main(parse_ir(text))) == []


def test_relu6_is_kept_by_default() -> None:
    """relu6=keep: min(max(x/s, 0), 6) is not min(max(x, 0), 6)/s, so a pair joined by
    RELU6 keeps s = 1: nothing changes."""
    text, _ = chain(CHAINS["relu6_split"][0])
    assert find_junctions(find_main(parse_ir(text))) == []
    before, after = _weights(parse_ir(text)), _weights(_apply(text))
    for key, w in before.items():
        np.testing.assert_array_equal(after[key], w)


def test_relu6_split_clips_each_channel_at_six_over_s() -> None:
    text, _ = chain(CHAINS["relu6_split"][0])
    module = parse_ir(text)
    junctions = equalize(find_main(module), "split")
    module.verify()
    clips = [op for op in module.walk() if isinstance(op, nn.MinimumOp)]
    assert len(clips) == len(junctions) == 2
    for j, clip in zip(junctions, clips):
        assert j.first.op.activation == "RELU"
        assert clip.operands[0] is j.first.op.results[0]
        bound = np.asarray(decode_dense(clip.operands[1].owner.value), np.float64)
        np.testing.assert_allclose(bound, 6.0 / j.scale, rtol=1e-6)


@pytest.mark.parametrize("activation", ["TANH", "RELU_N1_TO_1"])
def test_other_activations_stop_the_search(activation: str) -> None:
    text, _ = chain([("conv", 8, activation), ("conv", 6, "NONE")])
    assert find_junctions(find_main(parse_ir(text))) == []


def test_a_shared_weight_constant_is_copied() -> None:
    """Two convolutions reading one weight constant: rescaling one must not rescale the
    other (its constant is copied first)."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 1, 1, 4)) * (10.0 ** rng.uniform(-2, 2, 4))[:, None, None, None]
    v = rng.normal(size=(4, 1, 1, 4))
    conv = f'{{{_CONV}, fused_activation = "RELU"}}'
    t_x, t_w = _t((1, 3, 3, 4)), _t((4, 1, 1, 4))
    text = f"""
func.func @main(%x: {t_x}) -> ({t_x}, {t_x}) {{
  %w = nn.constant {{value = {_dense(w)}}} : {t_w} loc("shared")
  %v = nn.constant {{value = {_dense(v)}}} : {t_w} loc("v")
  %a = nn.conv2d %x, %w {conv} : ({t_x}, {t_w}) -> {t_x} loc("a")
  %b = nn.conv2d %a, %v {conv} : ({t_x}, {t_w}) -> {t_x} loc("b")
  %c = nn.conv2d %x, %w {conv} : ({t_x}, {t_w}) -> {t_x} loc("c")
  func.return %b, %c : {t_x}, {t_x}
}}
"""
    before = parse_ir(text)
    after = _apply(text)
    shared = [op for op in after.walk() if isinstance(op, nn.ConstantOp)
              and np.array_equal(np.asarray(decode_dense(op.value), np.float64),
                                 np.asarray(w, np.float32).astype(np.float64))]
    assert len(shared) == 1  # still read by "c", unchanged
    _assert_same_function(before, after, (1, 3, 3, 4))


def test_options_are_checked() -> None:
    with pytest.raises(QccError, match="relu6 must be one of keep, split, got 'clip'"):
        build_pipeline("cross-layer-equalization{relu6=clip}")
    with pytest.raises(QccError, match="iterations must be an integer in 1..10000"):
        build_pipeline("cross-layer-equalization{iterations=0}")
