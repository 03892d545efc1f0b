"""The capability probe: what LiteRT's default resolver (XNNPACK) takes, measured.

    python -m qcc.targets.probe                     # probe every nn op, print the table and
                                                    # how it differs from the checked-in one
    python -m qcc.targets.probe --write             # ... and rewrite qcc/targets/xnnpack.json
    python -m qcc.targets.probe --ops nn.prelu,nn.add [--write]   # some ops (--write merges)
    python -m qcc.targets.probe --rounds 51         # more timing rounds (default 31)

For every nn op class with a declared example (`nn.op_classes()`, `SPEC.example`) it builds
the float single-op model (`qcc.testing.tflite_models.op_model`) and, when the declaration
says the op can be int8 (`SPEC.int8 == KERNEL`, or TFLite's precisions include int8), an
int8 one: the op model quantized by qcc with int8 inputs and outputs, calibrated on
`op_inputs` samples (min/max; every input pinned to the example's domain so that inputs that
must share a scale get the same one and no requantize is added). KERNEL ops go through
`qcc.quantize` (target "reference" when the API has targets; PRELU kept, no bias
correction); Fallback ops that TFLite runs in int8 (DIV, SUM) through the same passes
without legalize-fallback, so that the op itself is int8. When the declaration lists
"int16x8" among TFLite's precisions and qcc quantizes the op (`SPEC.int8 == KERNEL`: the ops
`passes.infer_scales.int16_capable` accepts) it also builds an int16 one: the same
quantization with the op asking for int16 activations (`request_int16`; int8 weights, int64
bias: TFLite's "16x8" kernels), with int16 inputs and outputs. XNNPACK has no int16 kernels,
so these run LiteRT's builtin 16x8 kernels (`delegated` false, measured, not assumed). Ops
with a `fused_activation` property get one variant per fused activation (RELU, RELU6,
RELU_N1_TO_1), in float, int8 and int16, set in the IR before export (an op whose verifier
refuses one, CONCATENATION, has none). Each model is loaded in-process with the default
resolver, one thread (`qcc.litert.make_interpreter`), and the probe records

  * `delegated`: whether the XNNPACK delegate runs the op itself (`qcc.litert.delegation`:
    the op's node inside a delegate partition; QUANTIZE/DEQUANTIZE nodes are not the op);
  * `latency_us`: the median, over interleaved rounds (the variants of one op timed in turn,
    the order rotated every round), of the mean time of one `invoke()`.

Every op is measured on its declared example with H and W of its 4-D tensors multiplied by
`SCALE` (8) where the op still verifies (`scaled` in the table; the examples are sized for
tests, and 256 elements would time the call overhead, not the op).

It also times a QUANTIZE + DEQUANTIZE pair on a 1x32x32x64 tensor against the same pair on a
1x1x1x8 one (the difference is the conversion cost without the dispatch overhead) and an
operator-free model (`invoke_overhead_us`), and records the ai-edge-litert version, the
machine and its CPU flags (AVX-512 VNNI, AVX2, NEON, ...). The table's format is documented
in `qcc.targets`. Progress goes to stderr on a terminal; the table to stdout. A full run
(every op, every precision, 31 rounds) takes about 20 s on a 2-core x86-64 machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from qcc.errors import QccError
from qcc.targets import TABLE_FORMAT, XNNPACK_TABLE

ACTIVATIONS = ("RELU", "RELU6", "RELU_N1_TO_1")
"""The fused activations probed per op that has a `fused_activation` property."""

CONVERSION_SHAPE = (1, 32, 32, 64)
"""The "typical activation tensor" of the conversion measurement."""
_CONVERSION_BASELINE_SHAPE = (1, 1, 1, 8)

_BOUNDARY = ("QUANTIZE", "DEQUANTIZE")
_ROUND_US = 2000.0
"""Target duration of one timing round of one model (k invokes)."""
_CALIBRATION_SAMPLES = 8


def litert_version() -> str:
    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:  # pragma: no cover - the dependency is declared
        return "unknown"


# ------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------

_X86_FLAGS = {
    "avx512_vnni": "avx512_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx_vnni": "avx_vnni",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
}
_ARM_FLAGS = {"neon": "asimd", "arm_dotprod": "asimddp", "arm_i8mm": "i8mm", "arm_fp16": "fphp"}
_LLVM_FLAGS = {
    "avx512_vnni": "avx512vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx_vnni": "avxvnni",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "neon": "neon",
    "arm_dotprod": "dotprod",
    "arm_i8mm": "i8mm",
    "arm_fp16": "fullfp16",
}


def machine_info() -> dict[str, Any]:
    """The CPU: architecture, model name, core count and the flags XNNPACK's speed depends
    on, read from /proc/cpuinfo (else from LLVM's host features, as numba sees them)."""
    cpu = platform.processor() or ""
    present: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not cpu:
            cpu = value.strip()
        elif key in ("flags", "features") and not present:
            present = set(value.split())
    if text and not cpu:
        for line in text.splitlines():
            if line.lower().startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    if present:
        names = {**_X86_FLAGS, **_ARM_FLAGS}
        flags = {flag: name in present for flag, name in names.items()}
        if "neon" in present:
            flags["neon"] = True
    else:
        try:
            from llvmlite import binding

            features = binding.get_host_cpu_features()
            flags = {flag: bool(features.get(name, False)) for flag, name in _LLVM_FLAGS.items()}
        except Exception:  # noqa: BLE001 - best effort: no flags is still a table
            flags = {}
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "flags": flags,
    }


# ------------------------------------------------------------------------------------------
# Building the single-op models
# ------------------------------------------------------------------------------------------


def op_classes_by_name() -> dict[str, type]:
    from qcc.dialects import nn

    return {c.name: c for c in nn.op_classes()}


def probed_ops() -> list[type]:
    """The op classes the probe measures: every nn op with a declared example."""
    from qcc.dialects import nn

    return [
        c for c in nn.op_classes()
        if (spec := nn.op_spec(c)) is not None and spec.example is not None
    ]


def can_be_int8(cls: type) -> bool:
    """Whether the declaration says the op can be int8: qcc quantizes it, or TFLite's
    kernels accept int8."""
    from qcc.dialects import nn

    spec = nn.op_spec(cls)
    return spec is not None and (spec.int8 == nn.KERNEL or "int8" in spec.precisions)


def can_be_int16(cls: type) -> bool:
    """Whether the declaration says the op can have int16 activations with int8 weights
    (TFLite's "16x8" kernels): "int16x8" among its precisions and qcc quantizes it
    (`SPEC.int8 == KERNEL`), as `passes.infer_scales.int16_capable` decides for an
    instance."""
    from qcc.dialects import nn

    spec = nn.op_spec(cls)
    return spec is not None and spec.int8 == nn.KERNEL and "int16x8" in spec.precisions


def has_fused_activation(cls: type) -> bool:
    return "fused_activation" in dict(cls.get_irdl_definition().properties)


def variant_keys(cls: type) -> list[str]:
    """The precision keys probed for `cls`, in table order (before fused activations that
    the op's verifier refuses are dropped)."""
    acts = ACTIVATIONS if has_fused_activation(cls) else ()
    keys = ["float", *(f"float+{a}" for a in acts)]
    if can_be_int8(cls):
        keys += ["int8", *(f"int8+{a}" for a in acts)]
    if can_be_int16(cls):
        keys += ["int16", *(f"int16+{a}" for a in acts)]
    return keys


SCALE = 8
"""The probe measures each op on its declared example with the spatial dimensions (H and W
of every 4-D input and result) multiplied by this, where the op still verifies (a 1x8x8x4
example becomes 1x64x64x4): the examples are sized for tests, and an op on 256 elements
would measure the interpreter's call overhead rather than the op."""


@dataclass
class Instance:
    """A single-op float module of `cls`, as measured: its fused activation set, maybe
    scaled (`scaled`), its input shapes and domain (calibration and timing data)."""

    cls: type
    module: Any
    shapes: list[list[int]]
    elements: int
    scaled: bool
    domain: tuple[float, float]

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Uniform data over the example's domain, as `op_inputs` draws it."""
        rng = np.random.default_rng(seed)
        low, high = self.domain
        return [rng.uniform(low, high, size=s).astype(np.float32) for s in self.shapes]


def _retype(value, shape: Sequence[int]):
    from xdsl.dialects.builtin import TensorType
    from xdsl.rewriter import Rewriter

    return Rewriter.replace_value_with_new_type(
        value, TensorType(value.type.get_element_type(), list(shape))
    )


def _scale_spatial(module, cls: type, factor: int) -> bool:
    """Multiply H and W of the 4-D inputs of @main by `factor` (those above 1: a broadcast
    dimension stays 1) and give the op's 4-D results the first shape that verifies among:
    H and W times `factor`, the inputs' growth added (results = inputs + padding),
    unchanged. False, with `module` unusable, when none verifies."""
    from xdsl.dialects.builtin import FunctionType
    from xdsl.utils.exceptions import VerifyException

    from qcc.dialects.ir import find_main

    func = find_main(module)
    op = next(o for o in module.walk() if isinstance(o, cls))
    block = func.body.block

    def times(shape: list[int]) -> list[int]:
        return [shape[0], *(d * factor if d > 1 else d for d in shape[1:3]), shape[3]]

    growth: list[int] | None = None
    for arg in list(block.args):
        shape = list(arg.type.get_shape())
        if len(shape) == 4 and times(shape) != shape:
            if growth is None:
                growth = [b - a for a, b in zip(shape[1:3], times(shape)[1:3])]
            _retype(arg, times(shape))
    if growth is None:
        return False
    originals = [list(r.type.get_shape()) for r in op.results]

    def candidates(shape: list[int]) -> list[list[int]]:
        if len(shape) != 4:
            return [shape]
        plus = [shape[0], shape[1] + growth[0], shape[2] + growth[1], shape[3]]
        return [times(shape), plus, shape]

    for choice in range(3):
        for result, shape in zip(list(op.results), originals):
            options = candidates(shape)
            _retype(result, options[min(choice, len(options) - 1)])
        ret = block.last_op
        func.function_type = FunctionType.from_lists(
            [a.type for a in block.args], [v.type for v in ret.operands]
        )
        try:
            module.verify()
            return True
        except VerifyException:
            continue
    return False


def build_instance(cls: type, activation: str = "NONE", *, scale: int = SCALE
                   ) -> Instance | None:
    """The op's float module with `fused_activation` set (None when the op's verifier
    refuses that activation), scaled by `scale` where it verifies."""
    from xdsl.dialects.builtin import StringAttr
    from xdsl.utils.exceptions import VerifyException

    from qcc.dialects import nn
    from qcc.dialects.ir import find_main
    from qcc.frontends.tflite import import_tflite
    from qcc.testing import tflite_models as tm

    data = tm.op_model(cls)

    def fresh():
        module = import_tflite(data, name=cls.name)
        if activation != "NONE":
            op = next(o for o in module.walk() if isinstance(o, cls))
            op.properties["fused_activation"] = StringAttr(activation)
            module.verify()
        return module

    try:
        module = fresh()
    except VerifyException:
        return None
    scaled = scale > 1 and _scale_spatial(module, cls, scale)
    if not scaled:
        module = fresh()
    func = find_main(module)
    shapes = [list(a.type.get_shape()) for a in func.body.block.args]
    op = next(o for o in module.walk() if isinstance(o, cls))
    elements = sum(int(np.prod(r.type.get_shape())) for r in op.results)
    domain = nn.op_spec(cls).example.domain
    return Instance(cls, module, shapes, elements, scaled, domain)


def calibration_samples(instance: Instance) -> list[list[np.ndarray]]:
    """Samples over the example's domain (as `op_inputs` draws them) with every input's
    first two elements pinned to the domain's ends, so that all inputs (and hence the
    scales an op must share) have one range."""
    low, high = instance.domain
    samples = []
    for seed in range(_CALIBRATION_SAMPLES):
        arrays = instance.inputs(seed)
        for a in arrays:
            flat = a.reshape(-1)
            if flat.size >= 2:
                flat[0], flat[1] = low, high
        samples.append(arrays)
    return samples


def _run_passes(module, text: str, dataset) -> None:
    """Run pipeline text on `module` in place, as `qcc.quantize` does."""
    from xdsl.utils.exceptions import DiagnosticException

    from qcc.context import make_context
    from qcc.pipeline import build_pipeline

    ctx = make_context()
    for p in build_pipeline(text, dataset=dataset):
        try:
            p.apply(ctx, module)
            module.verify()
        except DiagnosticException as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise QccError(f"{p.name}: {first}") from None


def quantize_instance(instance: Instance, precision: str = "int8") -> bytes:
    """The int8 .tflite (int8 inputs and outputs) of a float single-op instance; with
    `precision` "int16", the op asks for int16 activations (`request_int16`: int16 inputs
    and outputs, int8 weights). ValueError when the op cannot have them."""
    import qcc
    from qcc.api import Model
    from qcc.dialects import nn

    data = calibration_samples(instance)
    module = instance.module.clone()
    if precision == "int16":
        from qcc.passes.infer_scales import request_int16

        request_int16(next(o for o in module.walk() if isinstance(o, instance.cls)))
    elif precision != "int8":
        raise ValueError(f"precision must be float, int8 or int16, got {precision!r}")
    if nn.op_spec(instance.cls).int8 == nn.KERNEL:
        kwargs: dict[str, Any] = dict(
            method="minmax", decompose_prelu=False, bias_correction=False, io_dtype="int8"
        )
        if "target" in inspect.signature(qcc.quantize).parameters:
            kwargs["target"] = "reference"
        return qcc.quantize(Model(module), data, **kwargs).to_tflite()
    # a Fallback op TFLite runs in int8: the preset would keep it float, so no
    # legalize-fallback here
    _run_passes(
        module, "annotate-ranges{method=minmax},infer-scales,quantize,modify-io{dtype=int8}", data
    )
    return Model(module).to_tflite()


def build_variant(instance: Instance, precision: str) -> bytes:
    """The .tflite of `instance` in `precision` ("float", "int8" or "int16")."""
    if precision == "float":
        from qcc.backends.tflite import export_tflite

        return export_tflite(instance.module)
    return quantize_instance(instance, precision)


# ------------------------------------------------------------------------------------------
# Loading and timing
# ------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """One variant loaded under the default resolver."""

    key: str
    interpreter: Any
    delegated: bool
    operators: tuple[str, ...]
    timings: list[float] = field(default_factory=list)
    repeat: int = 1


def _feed(interpreter, floats: Sequence[np.ndarray]) -> None:
    """Set the inputs: float arrays as they are, quantized for int8 / int16 inputs."""
    for detail, x in zip(interpreter.get_input_details(), floats):
        dtype = np.dtype(detail["dtype"])
        if dtype == np.float32:
            value = x.astype(np.float32)
        else:
            scale, zero_point = detail["quantization"]
            info = np.iinfo(dtype)
            q = np.round(x / (scale or 1.0)) + zero_point
            value = np.clip(q, info.min, info.max).astype(dtype)
        interpreter.set_tensor(detail["index"], value.reshape(detail["shape"]))


def load_variant(key: str, model: bytes, inputs: Sequence[np.ndarray] | None) -> Loaded:
    """Load `model`, find the op's nodes (every operator but boundary QUANTIZE/DEQUANTIZE)
    and whether all of them are delegated; an int8 (int16) variant whose op does not have
    int8 (int16) results is an error. Raises RuntimeError when LiteRT refuses the model."""
    from qcc.litert import delegation, make_interpreter, subgraph0_operator_count

    interpreter = make_interpreter(model)
    count = subgraph0_operator_count(model)
    parts = delegation(interpreter, count)
    details = interpreter._get_ops_details()[:count]
    op_nodes = [d for d in details if d["op_name"] not in _BOUNDARY]
    if not op_nodes:
        raise RuntimeError("the model has no operator but QUANTIZE/DEQUANTIZE")
    precision = key.partition("+")[0]
    if precision in ("int8", "int16"):
        types = {np.dtype(t) for d in op_nodes for t in d["result_types"]}
        if types != {np.dtype(precision)}:
            raise RuntimeError(
                f"the op is not {precision} in the quantized model ({sorted(map(str, types))})"
            )
    inside = parts.delegated
    delegated = all(d["index"] in inside for d in op_nodes)
    if inputs is not None:
        _feed(interpreter, inputs)
        interpreter.invoke()
    return Loaded(key, interpreter, delegated, tuple(str(d["op_name"]) for d in op_nodes))


def time_interleaved(loaded: Sequence[Loaded], rounds: int) -> list[float]:
    """Median µs per invoke() of each model over `rounds` rounds, each round timing every
    model in turn (the order rotated per round), k invokes per model per round (k set from
    a first estimate so that a round of one model lasts about 2 ms)."""
    if not loaded:
        return []
    for item in loaded:  # warm up, then estimate
        for _ in range(3):
            item.interpreter.invoke()
        t0 = time.perf_counter_ns()
        for _ in range(5):
            item.interpreter.invoke()
        per = max((time.perf_counter_ns() - t0) / 5 / 1000, 0.05)
        item.repeat = max(3, min(20000, math.ceil(_ROUND_US / per)))
        item.timings = []
    order = list(loaded)
    for r in range(rounds):
        shift = r % len(order)
        for item in order[shift:] + order[:shift]:
            invoke = item.interpreter.invoke
            k = item.repeat
            t0 = time.perf_counter_ns()
            for _ in range(k):
                invoke()
            item.timings.append((time.perf_counter_ns() - t0) / k / 1000)
    return [statistics.median(item.timings) for item in loaded]


# ------------------------------------------------------------------------------------------
# Probing
# ------------------------------------------------------------------------------------------


def _error_text(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def probe_op(cls: type, *, rounds: int = 31, timing: bool = True,
             keys: Iterable[str] | None = None, scale: int = SCALE) -> dict[str, Any]:
    """The table entry of one op class: builtin, the measured instance (input shapes,
    result elements, whether scaled, the example's properties) and one cell per precision
    key (all of `variant_keys(cls)`, or those of `keys`). Without `timing`, cells have
    `delegated` only (what the tests re-probe)."""
    from qcc.dialects import nn

    spec = nn.op_spec(cls)
    entry: dict[str, Any] = {"builtin": spec.builtin}
    wanted = variant_keys(cls) if keys is None else [k for k in variant_keys(cls) if k in set(keys)]
    instances: dict[str, Instance | None] = {}
    loaded: list[Loaded] = []
    for key in wanted:
        precision, _, activation = key.partition("+")
        activation = activation or "NONE"
        try:
            if activation not in instances:
                instances[activation] = build_instance(cls, activation, scale=scale)
            instance = instances[activation]
            if instance is None:
                continue  # the op's verifier refuses this fused activation
            if "shapes" not in entry:
                entry["shapes"] = instance.shapes
                entry["elements"] = instance.elements
                entry["scaled"] = instance.scaled
                entry["properties"] = {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in spec.example.properties.items()
                }
            model = build_variant(instance, precision)
        except Exception as e:  # noqa: BLE001 - a failure is a measurement too
            entry[key] = {"delegated": None, "latency_us": None, "error": f"qcc: {_error_text(e)}"}
            continue
        try:
            item = load_variant(key, model, instance.inputs(0) if timing else None)
        except Exception as e:  # noqa: BLE001
            entry[key] = {"delegated": None, "latency_us": None, "error": f"LiteRT: {_error_text(e)}"}
            continue
        entry[key] = {"delegated": item.delegated}
        if tuple(item.operators) != (spec.builtin,):
            entry[key]["operators"] = list(item.operators)
        loaded.append(item)
    if timing:
        for item, us in zip(loaded, time_interleaved(loaded, rounds)):
            entry[item.key]["latency_us"] = round(us, 2)
    return entry


def _conversion_models() -> tuple[bytes, bytes, bytes]:
    """(QUANTIZE+DEQUANTIZE on CONVERSION_SHAPE, the same pair on a tiny tensor, an
    operator-free model)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from qcc.testing import tflite_models as tm

    def pair(shape: tuple[int, ...]) -> bytes:
        b = tm.ModelBuilder(description="qcc.targets.probe")
        x = b.add_input("x", shape)
        q = b.add_op(tm.Op.QUANTIZE, [x], shape, name="q", dtype=np.int8)
        y = b.add_op(tm.Op.DEQUANTIZE, [q], shape, name="y")
        b.mark_output(y)
        model = b.build_model_t()
        params = schema.QuantizationParametersT()
        params.scale = [1.0 / 127.0]
        params.zeroPoint = [0]
        model.subgraphs[0].tensors[q].quantization = params
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    b = tm.ModelBuilder(description="qcc.targets.probe")
    b.mark_output(b.add_input("x", (1, 8)))
    return pair(CONVERSION_SHAPE), pair(_CONVERSION_BASELINE_SHAPE), b.build()


def probe_conversion(rounds: int = 31) -> tuple[dict[str, Any], float]:
    """The conversion cell and the invoke overhead (µs)."""
    from qcc.litert import delegation, make_interpreter, subgraph0_operator_count
    from qcc.testing import tflite_models as tm

    big, small, empty = _conversion_models()
    items = []
    for key, model, shape in (("big", big, CONVERSION_SHAPE),
                              ("small", small, _CONVERSION_BASELINE_SHAPE),
                              ("empty", empty, (1, 8))):
        interpreter = make_interpreter(model)
        _feed(interpreter, tm.random_inputs([shape]))
        interpreter.invoke()
        items.append(Loaded(key, interpreter, True, ()))
    parts = delegation(items[0].interpreter, subgraph0_operator_count(big))
    medians = time_interleaved(items, rounds)
    cell = {
        "shape": list(CONVERSION_SHAPE),
        "latency_us": round(max(medians[0] - medians[1], 0.0), 2),
        "pair_us": round(medians[0], 2),
        "baseline_shape": list(_CONVERSION_BASELINE_SHAPE),
        "baseline_us": round(medians[1], 2),
        "quantize_delegated": 0 in parts.delegated,
        "dequantize_delegated": 1 in parts.delegated,
        "partitions": parts.count,
    }
    return cell, round(medians[2], 2)


def method_text(rounds: int) -> str:
    return (
        "LiteRT default resolver (XNNPACK delegate), num_threads=1, in-process. "
        "delegated: the op's node runs inside an XNNPACK partition (boundary "
        "QUANTIZE/DEQUANTIZE nodes are not the op). latency_us: median over "
        f"{rounds} interleaved rounds (an op's variants timed in turn, order rotated per "
        "round) of the mean of k invoke() calls (k: ~2 ms per round), on the op's declared "
        f"example with H and W of its 4-D tensors x{SCALE} where the op verifies (shapes, "
        "scaled; elements: result elements), int8 models with int8 inputs and outputs; "
        "int16 (16x8: int16 activations, int8 weights; every op whose "
        "declaration lists int16x8 and that qcc quantizes) models with int16 inputs and "
        "outputs, timed in the same interleaved rounds (XNNPACK has no int16 kernels: "
        "LiteRT's builtin kernels run them); "
        "Python call overhead included (invoke_overhead_us). "
        "conversion.latency_us: QUANTIZE+DEQUANTIZE on "
        "conversion.shape minus the same pair on baseline_shape (dispatch overhead removed). "
        "Measured on a shared machine with other jobs running: latencies are noisy, "
        "delegation is not."
    )


def probe(ops: Sequence[type] | None = None, *, rounds: int = 31,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole table document (format `TABLE_FORMAT`) for `ops` (default: every probed
    op)."""
    classes = list(ops) if ops is not None else probed_ops()
    doc: dict[str, Any] = {
        "format": TABLE_FORMAT,
        "ai_edge_litert": litert_version(),
        "machine": machine_info(),
        "method": method_text(rounds),
        "date": time.strftime("%Y-%m-%d"),
    }
    if progress:
        progress("conversion pair")
    doc["conversion"], doc["invoke_overhead_us"] = probe_conversion(rounds)
    doc["ops"] = {}
    for i, cls in enumerate(classes):
        if progress:
            progress(f"[{i + 1}/{len(classes)}] {cls.name}")
        doc["ops"][cls.name] = probe_op(cls, rounds=rounds)
    return doc


def probe_delegation(op_names: Iterable[str], keys: Iterable[str] | None = None
                     ) -> dict[str, dict[str, bool | None]]:
    """Re-probe delegation only (no timing): op name -> precision key -> delegated."""
    by_name = op_classes_by_name()
    out: dict[str, dict[str, bool | None]] = {}
    for name in op_names:
        entry = probe_op(by_name[name], timing=False, keys=keys)
        out[name] = {k: v.get("delegated") for k, v in entry.items() if isinstance(v, dict)}
    return out


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------


def dumps(doc: dict[str, Any]) -> str:
    """The table as JSON text, one line per (op, precision) cell so that diffs read well."""
    lines = ["{"]
    top = [k for k in doc if k != "ops"]
    for k in top:
        lines.append(f"  {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False)},")
    lines.append('  "ops": {')
    names = list(doc.get("ops", {}))
    for i, name in enumerate(names):
        entry = doc["ops"][name]
        lines.append(f"    {json.dumps(name)}: {{")
        keys = list(entry)
        for j, key in enumerate(keys):
            comma = "," if j < len(keys) - 1 else ""
            lines.append(f"      {json.dumps(key)}: {json.dumps(entry[key])}{comma}")
        lines.append("    }" + ("," if i < len(names) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    if cell.get("delegated") is None:
        return "error"
    mark = "XNN" if cell["delegated"] else "no"
    us = cell.get("latency_us")
    return mark if us is None else f"{mark} {us:.1f}"


def format_table(doc: dict[str, Any]) -> str:
    """A Markdown table: per op and precision, `XNN` (delegated) or `no`, and the latency
    in µs; the machine and conversion cost above it."""
    m = doc.get("machine", {})
    flags = ", ".join(k for k, v in m.get("flags", {}).items() if v) or "none"
    conv = doc.get("conversion", {})
    head = [
        f"ai-edge-litert {doc.get('ai_edge_litert')}, {m.get('arch')} {m.get('cpu')} "
        f"({m.get('cores')} cores; {flags}); one thread, µs per invoke (median of "
        "interleaved rounds, noisy)",
        f"QUANTIZE+DEQUANTIZE of {'x'.join(map(str, conv.get('shape', [])))}: "
        f"{conv.get('latency_us')} µs (delegated: quantize {conv.get('quantize_delegated')}, "
        f"dequantize {conv.get('dequantize_delegated')}); invoke overhead "
        f"{doc.get('invoke_overhead_us')} µs",
        "",
    ]
    columns = ["float", "int8", *(f"int8+{a}" for a in ACTIVATIONS), "int16"]
    rows = ["| op | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, entry in doc.get("ops", {}).items():
        rows.append(
            f"| {name} | " + " | ".join(_cell_text(entry.get(c)) for c in columns) + " |"
        )
    float_acts = sorted(
        (name, k) for name, e in doc.get("ops", {}).items() for k, c in e.items()
        if k.startswith("float+") and isinstance(c, dict) and c.get("delegated") is False
    )
    tail = [""]
    if float_acts:
        tail.append("float with a fused activation not delegated: " + ", ".join(
            f"{n} {k}" for n, k in float_acts))
    else:
        tail.append("float with a fused activation (float+RELU, +RELU6, +RELU_N1_TO_1): all "
                    "delegated where probed")
    errors = [(n, k, c["error"]) for n, e in doc.get("ops", {}).items() for k, c in e.items()
              if isinstance(c, dict) and c.get("error")]
    tail += [f"{n} {k}: {err}" for n, k, err in errors]
    return "\n".join(head + rows + tail) + "\n"


def delegation_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The (op, precision) cells whose `delegated` differs between two table documents
    (cells present in both)."""
    out = []
    for name, entry in new.get("ops", {}).items():
        before = old.get("ops", {}).get(name, {})
        for key, cell in entry.items():
            if not isinstance(cell, dict) or not isinstance(before.get(key), dict):
                continue
            if cell.get("delegated") != before[key].get("delegated"):
                out.append(
                    f"{name} {key}: delegated {before[key].get('delegated')} -> "
                    f"{cell.get('delegated')}"
                )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qcc.targets.probe",
        description="Probe what LiteRT's default resolver (XNNPACK) takes, per nn op and "
        "precision, and how fast; print the table.",
    )
    parser.add_argument("--write", action="store_true",
                        help=f"write the table to {XNNPACK_TABLE.name} (with --ops: update "
                        "those ops in it)")
    parser.add_argument("--ops", default="",
                        help="comma-separated op names (nn.prelu,nn.add); default: every op")
    parser.add_argument("--rounds", type=int, default=31, help="timing rounds (default 31)")
    parser.add_argument("--output", type=Path, default=XNNPACK_TABLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    by_name = op_classes_by_name()
    known = {c.name for c in probed_ops()}
    names = [n.strip() for n in args.ops.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown op {unknown[0]!r}; probed ops: {', '.join(sorted(known))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    old: dict[str, Any] = {}
    if args.output.exists():
        try:
            old = json.loads(args.output.read_text())
        except ValueError:
            old = {}

    tty = sys.stderr.isatty()

    def progress(text: str) -> None:
        if tty:
            sys.stderr.write(f"\r\033[Kprobing {text}")
            sys.stderr.flush()

    started = time.monotonic()
    doc = probe([by_name[n] for n in names] if names else None, rounds=args.rounds,
                progress=progress)
    if tty:
        sys.stderr.write(f"\r\033[Kprobed {len(doc['ops'])} ops in "
                         f"{time.monotonic() - started:.0f} s\n")
    sys.stdout.write(format_table(doc))
    if old:
        diffs = delegation_differences(old, doc)
        print(f"\ndelegation differences from {args.output.name}: "
              + ("none" if not diffs else ""))
        for d in diffs:
            print(f"  {d}")
    if args.write:
        if names:
            if old.get("ai_edge_litert") != doc["ai_edge_litert"] or old.get(
                "format"
            ) != TABLE_FORMAT:
                print(
                    f"error: {args.output.name} was measured with ai-edge-litert "
                    f"{old.get('ai_edge_litert')} (format {old.get('format')}): re-probe "
                    "every op (`python -m qcc.targets.probe --write`), not some",
                    file=sys.stderr,
                )
                return 1
            merged = dict(old)
            merged["ops"] = dict(old.get("ops", {}))
            merged["ops"].update(doc["ops"])
            order = [c.name for c in probed_ops()]
            merged["ops"] = {n: merged["ops"][n] for n in sorted(
                merged["ops"], key=lambda n: order.index(n) if n in order else len(order))}
            doc = merged
        tmp = args.output.with_suffix(".json.tmp")
        tmp.write_text(dumps(doc))
        os.replace(tmp, args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
