"""The quantization report: where a quantized model loses accuracy, layer by layer.

For every tensor of the emitted int8 .tflite that has a float counterpart of the same name in
the float model, the report gives the signal-to-noise ratio of the dequantized int8 values
against the float values, accumulated over the calibration samples:

    SNR(dB) = 10 · log10( Σ float² / Σ (float − dequantized)² )

The int8 side is LiteRT itself (all intermediate tensors preserved), the float side qcc's float
executor on the original module, so the numbers describe the file the user ships. The report
also gives each model output's SNR, the file sizes and the op counts (int8, float fallback,
quantize/dequantize); given the quantized module, each op that is not int8 and why (the
`qcc.reason` legalize-target writes, else the op's declaration: `nn.int8_capable`); and the
XNNPACK delegate partitions of the file under LiteRT's default resolver
(`qcc.targets.partitions`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _SnrAccumulator:
    signal: float = 0.0
    noise: float = 0.0

    def add(self, reference: np.ndarray, approximation: np.ndarray) -> None:
        ref = reference.astype(np.float64)
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum((ref - approximation.astype(np.float64)) ** 2))

    @property
    def db(self) -> float:
        if self.noise == 0.0:
            return math.inf
        if self.signal == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.signal / self.noise)


@dataclass
class LayerRow:
    name: str
    op: str
    dtype: str
    snr_db: float


@dataclass
class FloatOp:
    """An op of the quantized model that computes in float, and why."""

    name: str
    op: str
    reason: str


@dataclass
class QuantizationReport:
    layers: list[LayerRow] = field(default_factory=list)
    outputs: list[tuple[str, float]] = field(default_factory=list)
    float_size: int = 0
    quantized_size: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    float_ops: list[FloatOp] | None = None
    """Every op not in int8, with its reason (None: the quantized module was not given)."""
    partitions: str | None = None
    """The XNNPACK delegate partitions of the file (`Partitions.summary()`), if counted."""

    @property
    def worst_output_snr_db(self) -> float:
        return min((snr for _, snr in self.outputs), default=math.nan)

    def format(self) -> str:
        lines = [f"qcc quantization report ({self.samples} calibration samples)", ""]
        width = max([len(r.name) for r in self.layers] + [10])
        lines.append(f"{'tensor':<{width}}  {'op':<26} {'type':<7} {'SNR (dB)':>9}")
        for r in self.layers:
            lines.append(f"{r.name:<{width}}  {r.op:<26} {r.dtype:<7} {_fmt_db(r.snr_db):>9}")
        lines.append("")
        for name, snr in self.outputs:
            lines.append(f"output {name}: SNR {_fmt_db(snr)} dB")
        lines.append(f"model SNR (worst output): {_fmt_db(self.worst_output_snr_db)} dB")
        ratio = self.quantized_size / self.float_size if self.float_size else math.nan
        lines.append(
            f"size: {self.quantized_size} bytes quantized vs {self.float_size} bytes float "
            f"({ratio:.3f}x)"
        )
        counts = ", ".join(f"{k} {v}" for k, v in self.op_counts.items())
        lines.append(f"ops: {counts}")
        if self.float_ops is not None:
            count = len(self.float_ops)
            lines.append(f"not int8: {count} op{'s' if count != 1 else ''}")
            name_width = max([len(f.name) for f in self.float_ops] + [4])
            op_width = max([len(f.op) for f in self.float_ops] + [4])
            for f in self.float_ops:
                lines.append(f"  {f.name:<{name_width}}  {f.op:<{op_width}}  {f.reason}")
        if self.partitions is not None:
            lines.append(f"LiteRT default resolver: {self.partitions}")
        return "\n".join(lines) + "\n"


def _fmt_db(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.2f}"


def _op_counts(model_bytes: bytes) -> tuple[dict[str, int], dict[int, str]]:
    """Counts of int8 / float / quantize+dequantize ops, and each tensor's producing op."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    counts = {"int8": 0, "float": 0, "quantize/dequantize": 0}
    producer: dict[int, str] = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = (code.customCode or b"").decode() if isinstance(code.customCode, bytes) else str(
                code.customCode
            )
        for t in op.outputs:
            producer[t] = name
        if name in ("QUANTIZE", "DEQUANTIZE"):
            counts["quantize/dequantize"] += 1
            continue
        out_types = {graph.tensors[t].type for t in op.outputs}
        if out_types & {schema.TensorType.INT8, schema.TensorType.INT16}:
            counts["int8"] += 1
        else:
            counts["float"] += 1
    return counts, producer


def float_ops(module) -> list[FloatOp]:
    """Every computing op of `module`'s main function that computes in float, with why: the
    ops whose precision legalize-target chose (its `qcc.reason`), and, in a model with
    quantized values, every other op with a float result (its declaration's reason when it
    has no int8 kernel, else "float")."""
    from xdsl.dialects.builtin import AnyFloat, StringAttr, TensorType

    from qcc.dialects import nn
    from qcc.dialects.ir import find_main
    from qcc.dialects.quant import QuantizedType
    from qcc.passes.legalize_target import REASON, describe

    def element(value):
        return value.type.get_element_type() if isinstance(value.type, TensorType) else None

    main = find_main(module)
    quantized = any(
        isinstance(element(r), QuantizedType) for op in main.walk() for r in op.results
    )
    found = []
    for op in main.walk():
        if op.dialect_name() != "nn" or isinstance(op, nn.ConstantOp):
            continue
        if not any(isinstance(element(r), AnyFloat) for r in op.results):
            continue
        reason = op.attributes.get(REASON)
        if isinstance(reason, StringAttr):
            why = reason.data
        elif quantized:
            capable, declared = nn.int8_capable(op)
            why = "float" if capable else f"no int8 kernel ({declared})"
        else:
            continue
        found.append(FloatOp(_location_name(op) or "?", describe(op), why))
    return found


def build_report(
    float_module,
    quantized_tflite: bytes,
    samples: Iterable[Sequence[np.ndarray]],
    *,
    float_size: int = 0,
    quantized_module=None,
    count_partitions: bool = False,
) -> QuantizationReport:
    """Compare a quantized .tflite with the float module it came from on `samples`; with
    `quantized_module` (the module the file was written from), list the ops not in int8;
    with `count_partitions`, count the file's XNNPACK partitions."""
    from qcc.litert import make_interpreter
    from qcc.runtime.executor import Executor

    interpreter = make_interpreter(quantized_tflite, preserve_all_tensors=True)
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    counts, producer = _op_counts(quantized_tflite)

    recorded: dict[str, np.ndarray] = {}

    def observe(op, results) -> None:
        name = _location_name(op)
        if name is not None and len(results) == 1:
            recorded[name] = np.asarray(results[0])

    from qcc.dialects.ir import find_main
    from qcc.litert import LiteRTRunner
    from qcc.runtime.errors import ExecutorError

    func = find_main(float_module)
    executor: Executor | None = None
    litert: LiteRTRunner | None = None
    try:
        executor = Executor(float_module)
    except ExecutorError:  # an op qcc has no float kernel for (a custom op): LiteRT runs it
        litert = LiteRTRunner(func)
    per_layer: dict[str, _SnrAccumulator] = {}
    per_output = [_SnrAccumulator() for _ in interpreter.get_output_details()]
    n = 0
    for sample in samples:
        n += 1
        recorded.clear()
        if executor is not None:
            float_outputs = executor.run(list(sample), observer=observe)
        else:
            assert litert is not None
            litert.run(litert.check(sample))
            for op in func.body.block.ops:
                name = _location_name(op)
                if name is not None and len(op.results) == 1 and op.results[0] in litert.tensor_of:
                    recorded[name] = np.array(litert.value(op.results[0]))
            returned = list(func.body.block.last_op.operands)  # type: ignore[union-attr]
            float_outputs = [np.array(litert.value(v)) for v in returned]
        for d, x in zip(interpreter.get_input_details(), sample):
            interpreter.set_tensor(d["index"], _to_input(x, d))
        interpreter.invoke()
        for i, d in enumerate(interpreter.get_output_details()):
            per_output[i].add(float_outputs[i], _dequantized(interpreter, d))
        for name, reference in recorded.items():
            d = details.get(name)
            if d is None or tuple(d["shape"]) != reference.shape:
                continue
            if not np.issubdtype(reference.dtype, np.floating):
                continue
            per_layer.setdefault(name, _SnrAccumulator()).add(
                reference, _dequantized(interpreter, d)
            )

    report = QuantizationReport(samples=n, float_size=float_size)
    report.quantized_size = len(quantized_tflite)
    report.op_counts = counts
    if quantized_module is not None:
        report.float_ops = float_ops(quantized_module)
    if count_partitions:
        from qcc.targets import partitions

        report.partitions = partitions(quantized_tflite).summary()
    for name, acc in per_layer.items():
        d = details[name]
        report.layers.append(
            LayerRow(
                name, producer.get(d["index"], "(constant)"), np.dtype(d["dtype"]).name, acc.db
            )
        )
    report.outputs = [
        (d["name"], acc.db) for d, acc in zip(interpreter.get_output_details(), per_output)
    ]
    return report


def _location_name(op) -> str | None:
    from xdsl.dialects.builtin import NameLoc  # type: ignore[attr-defined]

    loc = getattr(op, "location", None)
    if isinstance(loc, NameLoc):
        return loc.desc.data
    return None


def _to_input(x: np.ndarray, detail) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return np.asarray(x, dtype)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return np.asarray(x, dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantized(interpreter, detail) -> np.ndarray:
    value = interpreter.get_tensor(detail["index"])
    if np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float32)
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float32)
    zero_points = np.asarray(params.get("zero_points", []), np.int64)
    if scales.size == 0:
        return value.astype(np.float32)
    if scales.size == 1:
        return ((value.astype(np.int64) - zero_points[0]) * scales[0]).astype(np.float32)
    axis = params.get("quantized_dimension", 0)
    shape = [1] * value.ndim
    shape[axis] = -1
    return ((value.astype(np.int64) - zero_points.reshape(shape)) * scales.reshape(shape)).astype(
        np.float32
    )
