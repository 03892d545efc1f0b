"""Targets and their measured capabilities (qcc/targets, issue 10).

The `xnnpack` target reads qcc/targets/xnnpack.json, written by the probe
(`python -m qcc.targets.probe --write`) and checked in. These tests check that the table
loads and covers every nn op, that `Target` answers from it for ops built in IR, that
`partitions` finds the operators XNNPACK leaves out, and, by re-probing a sample of ops, that
the installed ai-edge-litert still delegates what the table says (latencies are noisy and are
not compared; delegation is deterministic). The table has an "int16" cell (int16
activations, int8 weights: TFLite's 16x8 kernels, which XNNPACK does not take) for every op
whose declaration lists "int16x8" and that qcc quantizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

import qcc
from qcc.api import Model
from qcc.dialects import nn
from qcc.errors import QccError
from qcc.frontends.tflite import import_tflite
from qcc.passes.infer_scales import int16_capable
from qcc.targets import (
    TABLE_FORMAT,
    TARGETS,
    XNNPACK_TABLE,
    Target,
    get_target,
    load_table,
    partitions,
    precision_key,
)
from qcc.targets import probe as probe_mod
from qcc.testing import tflite_models as tm

CLASSES = {c.name: c for c in nn.op_classes()}


def _op(name: str, activation: str | None = None):
    """The op of `name`'s generated single-op model, imported into IR."""
    cls = CLASSES[name]
    module = import_tflite(tm.op_model(cls), name=name)
    op = next(o for o in module.walk() if isinstance(o, cls))
    if activation is not None:
        op.properties["fused_activation"] = StringAttr(activation)
        module.verify()
    return op


# -- the table ------------------------------------------------------------------------------


def test_table_loads_and_covers_every_op() -> None:
    table = load_table()
    assert table.data["format"] == TABLE_FORMAT
    assert table.litert_version
    assert "avx512_vnni" in table.machine["flags"] or "neon" in table.machine["flags"]
    assert table.conversion_latency_us > 0
    missing = [c.name for c in probe_mod.probed_ops() if c.name not in table.ops]
    assert not missing, (
        f"ops without a row in {XNNPACK_TABLE.name}: {missing}; probe them with "
        f"`python -m qcc.targets.probe --write --ops {','.join(missing)}`"
    )
    for name, cells in table.ops.items():
        expected = set(probe_mod.variant_keys(CLASSES[name]))
        assert set(cells) <= expected, name
        assert "float" in cells and cells["float"].delegated is not None, name


def test_table_has_int16_cells_for_every_int16x8_op() -> None:
    """Every probed op whose declaration lists "int16x8" (and that qcc quantizes: what
    `int16_capable` accepts) has measured "int16" cells, one per fused activation where the
    op has them, all undelegated (XNNPACK has no int16 kernels); no other op has one."""
    table = load_table()
    capable = {
        c.name for c in probe_mod.probed_ops() if int16_capable(c.create())[0]
    }
    assert capable == {c.name for c in probe_mod.probed_ops() if probe_mod.can_be_int16(c)}
    assert {"nn.conv2d", "nn.depthwise_conv2d", "nn.add", "nn.fully_connected"} <= capable
    for name in capable:
        keys = [k for k in probe_mod.variant_keys(CLASSES[name]) if k.startswith("int16")]
        assert keys[0] == "int16", name
        for key in keys:
            cell = table.get(name, key)
            activation = key.partition("+")[2]
            if activation and table.get(name, f"float+{activation}") is None:
                assert cell is None, (name, key)  # the op's verifier refuses it (CONCATENATION)
                continue
            assert cell is not None, (
                f"{name} has no {key!r} cell in {XNNPACK_TABLE.name}: re-run "
                "`python -m qcc.targets.probe --write`"
            )
            assert cell.error is None, (name, key, cell.error)
            assert cell.delegated is False, (name, key)
            assert cell.latency_us is not None and cell.latency_us > 0, (name, key)
    for name, cells in table.ops.items():
        if name not in capable:
            assert not any(k.startswith("int16") for k in cells), name
    assert "int16" in table.data["method"]


def test_load_table_refuses_another_format(tmp_path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": TABLE_FORMAT + 1}))
    with pytest.raises(QccError, match="format"):
        load_table(path)
    path.write_text("{not json")
    with pytest.raises(QccError, match="cannot read"):
        load_table(path)


# -- Target ---------------------------------------------------------------------------------


def test_xnnpack_answers_for_ops_in_ir() -> None:
    x = get_target("xnnpack")
    assert (x.name, x.allows_float, x.allows_int16) == ("xnnpack", True, True)
    prelu = _op("nn.prelu")
    assert x.float_delegated(prelu) is True
    assert x.int8_delegated(prelu) is False  # XNNPACK has no int8 PRELU
    conv = _op("nn.conv2d")
    assert x.int8_delegated(conv) is True
    assert x.float_delegated(conv) is True
    conv6 = _op("nn.conv2d", "RELU6")
    assert precision_key(conv6, "int8") == "int8+RELU6"
    assert x.int8_delegated(conv6) is True
    assert x.int8_delegated(_op("nn.maximum")) is False
    assert x.int8_delegated(_op("nn.relu")) is False
    assert x.int8_delegated(_op("nn.avg_pool2d")) is False
    assert x.int8_delegated(_op("nn.add", "RELU")) is True
    # by class or name too, without a fused activation
    assert x.int8_delegated(nn.PReluOp) is False
    assert x.float_delegated("nn.conv2d") is True
    for op in (prelu, conv, conv6):
        for precision in ("float", "int8"):
            latency = x.latency_us(op, precision)
            assert latency is not None and latency > 0
    assert x.conversion_latency_us > 0


def test_xnnpack_answers_int16() -> None:
    x = get_target("xnnpack")
    table = load_table()
    conv = _op("nn.conv2d")
    conv6 = _op("nn.conv2d", "RELU6")
    assert precision_key(conv, "int16") == "int16"
    assert precision_key(conv6, "int16") == "int16+RELU6"
    assert x.int16_delegated(conv) is False
    assert x.int16_delegated(conv6) is False
    assert x.latency_us(conv, "int16") == table.get("nn.conv2d", "int16").latency_us
    assert x.latency_us(conv6, "int16") == table.get("nn.conv2d", "int16+RELU6").latency_us
    for name in ("nn.conv2d", "nn.depthwise_conv2d", "nn.add", "nn.fully_connected"):
        op = _op(name)
        assert x.int16_delegated(op) is False and x.int16_delegated(name) is False
        assert x.latency_us(op, "int16") > 0
    # builtin kernels, not XNNPACK: int16 CONV_2D is slower than its int8 on this table
    assert x.latency_us(conv, "int16") > x.latency_us(conv, "int8")
    # no 16x8 kernel (HARD_SWISH), or qcc keeps the op float (DIV): no int16 cell
    for name in ("nn.hard_swish", "nn.div"):
        assert x.int16_delegated(_op(name)) is None
        assert x.latency_us(_op(name), "int16") is None
    for name in ("reference", "int8-only", "numba"):
        assert get_target(name).int16_delegated(conv) is None
        assert get_target(name).latency_us(conv, "int16") is None


def test_xnnpack_unknowns_are_none() -> None:
    x = get_target("xnnpack")
    module = import_tflite(tm.custom_op_model(), name="custom")
    generic = next(o for o in module.walk() if isinstance(o, nn.GenericOp))
    assert x.int8_delegated(generic) is None
    assert x.float_delegated(generic) is None
    assert x.latency_us(generic, "int8") is None
    tanh_conv = _op("nn.conv2d", "TANH")  # a fused activation the probe does not measure
    assert x.int8_delegated(tanh_conv) is None
    assert x.int8_delegated("nn.not_an_op") is None
    with pytest.raises(ValueError, match="precision"):
        x.latency_us(_op("nn.conv2d"), "int4")


@pytest.mark.parametrize("name", ["reference", "int8-only", "numba"])
def test_targets_without_a_table_answer_none(name: str) -> None:
    t = get_target(name)
    assert isinstance(t, Target) and t.name == name
    assert t.allows_float is (name != "int8-only")
    op = _op("nn.prelu")
    assert t.int8_delegated(op) is None
    assert t.float_delegated(op) is None
    assert t.latency_us(op, "int8") is None
    assert t.conversion_latency_us == 0.0


def test_get_target() -> None:
    assert [get_target(n).name for n in TARGETS] == list(TARGETS)
    assert get_target("xnnpack") is get_target("xnnpack")  # the table is read once
    for bad in ("xnnpak", "", None):
        with pytest.raises(QccError) as e:
            get_target(bad)  # type: ignore[arg-type]
        message = str(e.value)
        assert "\n" not in message
        assert all(n in message for n in TARGETS), message


# -- partitions -----------------------------------------------------------------------------


def test_partitions_of_a_float_model_is_one() -> None:
    p = partitions(tm.op_model(nn.Conv2DOp))
    assert (p.count, p.operators, p.outside) == (1, 1, ())
    assert p.members == ((0,),)


def test_partitions_name_the_int8_op_xnnpack_leaves_out() -> None:
    """QUANTIZE -> PRELU (int8) -> DEQUANTIZE: the converts go to XNNPACK, the PRELU does
    not, so the graph splits in two partitions around it."""
    samples = [tm.op_inputs(nn.PReluOp, seed) for seed in range(4)]
    model = Model(import_tflite(tm.op_model(nn.PReluOp), name="prelu"))
    q = qcc.quantize(
        model, samples, target="reference", decompose_prelu=False, bias_correction=False
    )
    p = partitions(q.to_tflite())
    assert p.count > 1
    assert [o.builtin for o in p.outside] == ["PRELU"]
    outside = p.outside[0]
    assert outside.index not in p.delegated and outside.output
    assert "PRELU" in p.summary() and "2 XNNPACK partitions" in str(p)


def test_partitions_of_a_bad_model_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        partitions(b"not a model at all, just bytes")


# -- the probe ------------------------------------------------------------------------------

RE_PROBE = {
    "nn.prelu": ("float", "int8"),
    "nn.conv2d": ("int8", "int8+RELU6", "int16"),
    "nn.add": ("int8+RELU", "int16+RELU"),
    "nn.maximum": ("int8",),
    "nn.relu": ("int8",),
    "nn.avg_pool2d": ("int8",),
    "nn.leaky_relu": ("int8",),
}
"""A sample of (op, precision) cells re-probed against the table: both answers, fused
activations, and the ops that motivated the target (issue 10)."""


def test_reprobe_matches_the_checked_in_table() -> None:
    table = load_table()
    installed = probe_mod.litert_version()
    differences = []
    for name, keys in RE_PROBE.items():
        now = probe_mod.probe_delegation([name], keys)[name]
        for key in keys:
            cell = table.get(name, key)
            before = None if cell is None else cell.delegated
            if now.get(key) != before:
                differences.append(f"{name} {key}: table {before}, now {now.get(key)}")
    assert not differences, (
        f"XNNPACK delegation differs from {XNNPACK_TABLE.name} (measured with ai-edge-litert "
        f"{table.litert_version}; installed: {installed}"
        + (", the version changed" if installed != table.litert_version else "")
        + "): " + "; ".join(differences)
        + ". Re-run `python -m qcc.targets.probe --write`, review the diff of "
        "qcc/targets/xnnpack.json and the legalization it drives."
    )


def test_probe_cli_prints_the_table(capsys, tmp_path) -> None:
    out = tmp_path / "t.json"
    assert probe_mod.main(["--ops", "nn.relu", "--rounds", "1", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| nn.relu | XNN" in text and "QUANTIZE+DEQUANTIZE" in text
    assert "| int16 |" in text  # RELU has a 16x8 kernel: its int16 column
    assert not out.exists()
    # --ops with --write merges only into a table of the same LiteRT version
    assert probe_mod.main(["--ops", "nn.relu", "--rounds", "1", "--write",
                           "--output", str(out)]) == 1
    assert not out.exists()


def test_probe_cli_writes_a_loadable_table(tmp_path, capsys) -> None:
    out = tmp_path / "t.json"
    out.write_text(XNNPACK_TABLE.read_text())
    assert probe_mod.main(["--ops", "nn.relu", "--rounds", "1", "--write",
                           "--output", str(out)]) == 0
    assert "delegation differences" in capsys.readouterr().out
    table = load_table(out)
    assert set(table.ops) == set(load_table().ops)
    assert table.ops["nn.relu"]["int8"].delegated is False


def test_probe_measures_an_int16_op() -> None:
    """An int16 variant end to end: the op with int16 inputs and outputs (16x8), loaded under
    the default resolver, not delegated, timed with the op's other variants."""
    entry = probe_mod.probe_op(nn.AddOp, rounds=3, keys=("int8", "int16", "int16+RELU6"),
                               scale=1)
    assert entry["builtin"] == "ADD" and entry["scaled"] is False
    assert set(entry) >= {"int8", "int16", "int16+RELU6"}
    for key in ("int16", "int16+RELU6"):
        cell = entry[key]
        assert cell["delegated"] is False and "error" not in cell, cell
        assert cell["latency_us"] > 0 and "operators" not in cell, cell
    assert entry["int8"]["delegated"] is True
    instance = probe_mod.build_instance(nn.AddOp, scale=1)
    loaded = probe_mod.load_variant("int16", probe_mod.build_variant(instance, "int16"), None)
    assert loaded.operators == ("ADD",) and loaded.delegated is False
    details = loaded.interpreter.get_input_details() + loaded.interpreter.get_output_details()
    assert all(np.dtype(d["dtype"]) == np.int16 for d in details)
    # a variant whose op is not int16 is refused, not measured as if it were
    with pytest.raises(RuntimeError, match="not int16"):
        probe_mod.load_variant("int16", probe_mod.build_variant(instance, "int8"), None)


def test_probe_keeps_an_op_in_int8_and_pins_scales() -> None:
    """The int8 variant really is int8 (an int8 MAXIMUM with int8 inputs), and one range for
    every input means no requantize in front of an op whose inputs share a scale."""
    instance = probe_mod.build_instance(nn.MaximumOp)
    model = probe_mod.build_variant(instance, "int8")
    loaded = probe_mod.load_variant("int8", model, instance.inputs(0))
    assert loaded.operators == ("MAXIMUM",)
    details = loaded.interpreter.get_input_details()
    assert all(np.dtype(d["dtype"]) == np.int8 for d in details)
    assert instance.scaled and instance.shapes[0][1] == 8 * 8
