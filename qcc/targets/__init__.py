"""Deployment targets: where a quantized model will run, and what runs fast there.

    from qcc.targets import get_target, TARGETS, partitions
    target = get_target("xnnpack")
    target.int8_delegated(op)          # True / False / None (not measured)
    target.float_delegated(op)
    target.int16_delegated(op)         # int16 activations, int8 weights (TFLite "16x8")
    target.latency_us(op, "int8")      # measured single-op latency (µs), or None
    target.latency_us(op, "int16")     # ... of the op in 16x8 ("float", "int8", "int16")
    target.conversion_latency_us       # one QUANTIZE + DEQUANTIZE pair of a typical tensor
    partitions(tflite_bytes)           # XNNPACK partitions of a model, operators outside

A target is a name and the capabilities of its runtime, *measured, not guessed*:
`qcc/targets/xnnpack.json` is written by the probe (`python -m qcc.targets.probe --write`:
single-op models for every nn op x precision, loaded in LiteRT's default resolver) and checked
in; `tests/test_targets.py` re-probes a sample so that a new ai-edge-litert that changes an
answer fails loudly.

| target | runs the .tflite with | float ops allowed | int16 allowed | what the presets aim for |
|---|---|---|---|---|
| `xnnpack` (default for .tflite) | LiteRT's default resolver (XNNPACK delegate) | yes | yes (builtin kernels, outside XNNPACK) | the fastest model at the same accuracy: int8 where XNNPACK takes the op in int8, float islands (dequantize, float op, quantize: XNNPACK runs them inside its partition) where it does not |
| `reference` | BUILTIN_REF (every op in its TFLite int8 kernel) | yes | yes | every op with an int8 kernel in int8 (what `--mode=int8` produced before targets) |
| `int8-only` | integer-only hardware | no | no | int8 everywhere or an error (`--mode=int8-only`) |
| `numba` | qcc's own integer runtime (`Model.run`, `--emit=numba`) | yes (in-process) | no (no int16 kernels) | every op qcc has an int8 kernel for in int8 |

Only `xnnpack` has a capability table; for the others `int8_delegated` / `float_delegated` /
`latency_us` / `int16_delegated` answer None and the passes follow the ops' declarations
(`nn.int8_capable`, `passes.infer_scales.int16_capable`).

The table (`xnnpack.json`, format 1), as the probe writes it:

    {"format": 1,
     "ai_edge_litert": "2.3.0",                   # the version that was measured
     "machine": {"arch": "x86_64", "cpu": "...", "cores": 2,
                 "flags": {"avx512_vnni": true, "avx2": true, "neon": false, ...}},
     "method": "...",                             # how latencies were measured (prose)
     "invoke_overhead_us": 0.4,                   # an operator-free model's invoke()
     "conversion": {"shape": [1, 32, 32, 64], "latency_us": 6.1, "quantize_delegated": true,
                    "dequantize_delegated": true, ...},
     "ops": {"nn.prelu": {"builtin": "PRELU",
                          "shapes": [[1, 64, 64, 4]], "elements": 16384, "scaled": true,
                          "properties": {...},     # the example's (what was measured)
                          "float": {"delegated": true, "latency_us": 14.2},
                          "int8": {"delegated": false, "latency_us": 91.3},
                          "int16": {"delegated": false, "latency_us": 93.9}},
             "nn.conv2d": {..., "int8+RELU6": {"delegated": true, "latency_us": 31.3}, ...,
                           "int16+RELU6": {"delegated": false, "latency_us": 598.0}}}}

A precision key is "float", "int8" or "int16", plus "+ACT" for an op whose
`fused_activation` is ACT ("int8+RELU6", "int16+RELU6"). "int16" is the op with int16
activations and int8 weights (TFLite's "16x8" kernels; `passes.infer_scales.request_int16`),
measured for every op class whose declaration lists "int16x8" in `SPEC.precisions` and that
qcc quantizes (`SPEC.int8 == KERNEL`); XNNPACK has no int16 kernels, so these cells are
`"delegated": false` (measured) and their latency is that of LiteRT's builtin 16x8 kernel,
timed in the same interleaved rounds as the op's float and int8 variants. An entry that
could not be measured has `"delegated": null` and an `"error"`. `delegated` is whether the
XNNPACK delegate took the op itself (boundary QUANTIZE/DEQUANTIZE do not count);
`latency_us` the median over interleaved rounds of one `invoke()` of the single-op model
(the op's declared example, `SPEC.example`, with H and W of its 4-D tensors x8 where the op
still verifies: `shapes`, `scaled`, and `elements`, the result elements, to scale by; int8
models have int8 inputs and outputs, int16 models int16 ones), one thread, Python's call
overhead included (it cancels in comparisons between precisions; `invoke_overhead_us` is its
size). Latencies are noisy (a shared 2-core machine); only `delegated` is checked by the
tests. The answers are per op class and fused activation, measured on the example instance:
options the example does not vary are not measured, and some matter (XNNPACK refuses the
example's SLICE, whose size has a -1, and its STRIDED_SLICE, strides 2, even in float; it
takes both with an explicit size or unit strides). `partitions` of the real model is the
ground truth.

Passes never import this package: the driver hands the `Target` to the passes that need it
(`qcc.pipeline`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from qcc.errors import QccError
from qcc.litert import OutsideOp, Partitions, partitions

__all__ = [
    "TABLE_FORMAT",
    "TARGETS",
    "CapabilityTable",
    "Measurement",
    "OutsideOp",
    "Partitions",
    "Target",
    "get_target",
    "load_table",
    "partitions",
    "precision_key",
]

TARGETS = ("xnnpack", "reference", "int8-only", "numba")
"""Target names, as `--target=` and `qcc.quantize(..., target=...)` spell them."""

TABLE_FORMAT = 1
"""The format version of the capability table the probe writes and `load_table` reads."""

XNNPACK_TABLE = Path(__file__).with_name("xnnpack.json")
"""The checked-in capability table of the `xnnpack` target."""

PRECISIONS = ("float", "int8", "int16")
"""The precisions of the table's keys (before "+ACT")."""


class Measurement(NamedTuple):
    """One (op, precision key) cell of the table."""

    delegated: bool | None
    latency_us: float | None
    error: str | None = None


@dataclass(frozen=True, eq=False)
class CapabilityTable:
    """A probe's measurements, as read from its JSON (`load_table`).

    `ops` maps an op name ("nn.prelu") to its precision keys ("float", "int8",
    "int8+RELU6", "int16", ...) and their `Measurement`s; `data` is the whole JSON document."""

    litert_version: str
    machine: dict[str, Any]
    ops: dict[str, dict[str, Measurement]]
    conversion_latency_us: float
    invoke_overhead_us: float
    data: dict[str, Any] = field(repr=False)

    def get(self, op_name: str, key: str) -> Measurement | None:
        return self.ops.get(op_name, {}).get(key)


def load_table(path: str | Path = XNNPACK_TABLE) -> CapabilityTable:
    """Read a capability table written by `python -m qcc.targets.probe --write`. A missing,
    unreadable or other-format file is a QccError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise QccError(f"{path}: cannot read the capability table ({e})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise QccError(
            f"{path}: capability table format {found!r}, expected {TABLE_FORMAT} "
            "(re-run `python -m qcc.targets.probe --write`)"
        )
    ops: dict[str, dict[str, Measurement]] = {}
    for name, entry in data.get("ops", {}).items():
        cells = {}
        for key, cell in entry.items():
            if isinstance(cell, dict) and "delegated" in cell:
                cells[key] = Measurement(
                    cell.get("delegated"), cell.get("latency_us"), cell.get("error")
                )
        ops[name] = cells
    conversion = data.get("conversion", {})
    return CapabilityTable(
        litert_version=str(data.get("ai_edge_litert", "")),
        machine=dict(data.get("machine", {})),
        ops=ops,
        conversion_latency_us=float(conversion.get("latency_us") or 0.0),
        invoke_overhead_us=float(data.get("invoke_overhead_us") or 0.0),
        data=data,
    )


def _op_name(op: Any) -> str:
    """The op name of an op instance, an op class, or a name."""
    if isinstance(op, str):
        return op
    name = getattr(op, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"expected an nn op, op class or op name, got {type(op).__name__}")


def _activation(op: Any) -> str:
    """The op's fused activation ("NONE" when it has none or is not an instance)."""
    if isinstance(op, (str, type)):
        return "NONE"
    value = getattr(op, "properties", {}).get("fused_activation")
    data = getattr(value, "data", None)
    return data if isinstance(data, str) else "NONE"


def precision_key(op: Any, precision: str) -> str:
    """The table key for `op` in `precision` ("float" / "int8" / "int16"): "+ACT" appended
    for an op instance whose `fused_activation` is not NONE ("int8+RELU6", "int16+RELU6").
    A precision that already names an activation is returned as it is."""
    if "+" in precision:
        return precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    act = _activation(op)
    return precision if act == "NONE" else f"{precision}+{act}"


@dataclass(frozen=True)
class Target:
    """A deployment target: its name, what its runtime allows, and (for `xnnpack`) the
    measured capability table (`CapabilityTable`, from qcc/targets/xnnpack.json).

    `allows_float`: float ops may stay in the model (False for `int8-only`);
    `allows_int16`: int16 activations (TFLite's 16x8 kernels) are an option.

    The `*_delegated` / `latency_us` questions are answered from the table and are None
    when it has no answer: a target without a table (`reference`, `int8-only`, `numba`:
    the passes follow the ops' declarations), an op the probe did not measure (an
    `nn.generic` custom op, an op added since), a fused activation it did not measure
    (TANH), or a measurement that failed. The op is an nn op instance (its class and its
    `fused_activation` pick the cell), an op class or an op name."""

    name: str
    allows_float: bool
    allows_int16: bool
    table: CapabilityTable | None = field(default=None, repr=False, compare=False)

    def _cell(self, op: Any, precision: str) -> Measurement | None:
        if self.table is None:
            return None
        name = _op_name(op)
        if name == "nn.generic":
            return None
        return self.table.get(name, precision_key(op, precision))

    def int8_delegated(self, op: Any) -> bool | None:
        """Does the target's runtime take this op in int8 (for `xnnpack`: does LiteRT's
        default resolver hand the int8 op, with its fused activation, to the XNNPACK
        delegate)? None when not measured."""
        cell = self._cell(op, "int8")
        return None if cell is None else cell.delegated

    def float_delegated(self, op: Any) -> bool | None:
        """The same question for the float op."""
        cell = self._cell(op, "float")
        return None if cell is None else cell.delegated

    def int16_delegated(self, op: Any) -> bool | None:
        """The same question for the op with int16 activations and int8 weights (TFLite's
        16x8 kernels): False for every op `xnnpack` measured (XNNPACK has no int16 kernels;
        LiteRT's builtin ones run it), None for an op without a 16x8 kernel or not
        measured."""
        cell = self._cell(op, "int16")
        return None if cell is None else cell.delegated

    def latency_us(self, op: Any, precision: str) -> float | None:
        """The measured latency (µs) of the op's single-op model in `precision` ("float",
        "int8" or "int16"; the op's fused activation is added), None when unknown (an op
        without a 16x8 kernel has no "int16" latency). See the module docstring for what it
        includes."""
        cell = self._cell(op, precision)
        return None if cell is None else cell.latency_us

    @property
    def conversion_latency_us(self) -> float:
        """The measured cost (µs) of one int8<->float conversion pair (QUANTIZE +
        DEQUANTIZE) of a typical activation tensor (`table.data["conversion"]["shape"]`),
        dispatch overhead excluded; 0.0 for a target without a table."""
        return 0.0 if self.table is None else self.table.conversion_latency_us


_RULES = {
    "xnnpack": (True, True),
    "reference": (True, True),
    "int8-only": (False, True),
    "numba": (True, False),
}
"""Per target: (allows_float, allows_int16)."""


def get_target(name: str) -> Target:
    """The target named `name` (one of `TARGETS`); an unknown name is a QccError naming
    the known ones. The `xnnpack` table is read once."""
    if not isinstance(name, str) or name not in _RULES:
        raise QccError(f"unknown target {name!r}; targets are: {', '.join(TARGETS)}")
    return _target(name)


@cache
def _target(name: str) -> Target:
    allows_float, allows_int16 = _RULES[name]
    table = load_table() if name == "xnnpack" else None
    return Target(name, allows_float, allows_int16, table)
