"""Targets and their measured capabilities (qcc/targets, issue 10).

The `xnnpack` target reads qcc/targets/xnnpack.json, written by the probe
(`python -m qcc.targets.probe --write`) and checked in. These tests check that the table
loads and covers every nn op, that `Target` answers from it for ops built in IR, that
`partitions` finds the operators XNNPACK leaves out, and, by re-probing a sample of ops, that
the installed ai-edge-litert still delegates what the table says (latencies are noisy and are
not compared; delegation is deterministic).
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
    "nn.conv2d": ("int8", "int8+RELU6"),
    "nn.add": ("int8+RELU",),
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
