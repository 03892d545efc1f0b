"""The Python API: load a model, run it, save it (what `import qcc` exposes).

    import qcc
    model = qcc.load("model.tflite")        # or .mlir
    outputs = model.run([image])            # list of numpy arrays, in output order
    model.save("model.mlir")                # or .tflite; written atomically
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qcc.errors import QccError

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.dialects.func import FuncOp


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and numpy dtype of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def _numpy_dtype(element_type) -> np.dtype:
    from xdsl.dialects.builtin import Float16Type, Float32Type, Float64Type, IntegerType, Signedness

    if isinstance(element_type, Float32Type):
        return np.dtype(np.float32)
    if isinstance(element_type, Float16Type):
        return np.dtype(np.float16)
    if isinstance(element_type, Float64Type):
        return np.dtype(np.float64)
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        if width == 1:
            return np.dtype(np.bool_)
        unsigned = element_type.signedness.data == Signedness.UNSIGNED
        return np.dtype(f"{'u' if unsigned else ''}int{width}")
    storage = getattr(element_type, "storage_type", None)
    if storage is not None:
        return _numpy_dtype(storage)
    raise QccError(f"unsupported element type {element_type}")


def main_function(module: ModuleOp) -> FuncOp:
    """The module's `@main` function (or its only function)."""
    from qcc.dialects.ir import find_main

    try:
        return find_main(module)
    except ValueError as e:
        raise QccError(str(e)) from None


class Model:
    """A model in qcc IR: inspect it, run it, save it."""

    def __init__(self, module: ModuleOp, source: str | None = None):
        self.module = module
        self.source = source
        self.precision_plan = None
        """The mixed-precision plan (`qcc.mixed_precision.Plan`) when `quantize` was given a
        `target_snr`."""
        self._executor = None

    # -- signature -----------------------------------------------------------------------
    def _signature(self, which: str) -> list[TensorInfo]:
        func = main_function(self.module)
        if which == "inputs":
            types, attrs = func.function_type.inputs.data, func.arg_attrs
        else:
            types, attrs = func.function_type.outputs.data, func.res_attrs
        from qcc.signature import names as signature_names

        names = signature_names(attrs, len(types), "input_" if which == "inputs" else "output_")
        return [
            TensorInfo(n, tuple(t.get_shape()), _numpy_dtype(t.get_element_type()))
            for n, t in zip(names, types)
        ]

    @property
    def inputs(self) -> list[TensorInfo]:
        return self._signature("inputs")

    @property
    def outputs(self) -> list[TensorInfo]:
        return self._signature("outputs")

    def input_specs(self):
        """The inputs as calibration InputSpecs (with the value range the model declares)."""
        from qcc.calibration import InputSpec
        from qcc.signature import declared_range

        attrs = main_function(self.module).arg_attrs
        return [
            InputSpec(t.name, t.shape, t.dtype, declared_range(attrs, i))
            for i, t in enumerate(self.inputs)
        ]

    # -- execution -----------------------------------------------------------------------
    def run(self, inputs) -> list[np.ndarray]:
        """Run the model on `inputs`: a list of numpy arrays in the model's input order, a
        dict keyed by input name, or (one-input models) a bare array. Returns one array per
        model output, in output order.

        A quantized module (any `!quant.uniform` type) runs on the Numba integer runtime
        (`qcc.backends.numba`, bit-exact with LiteRT's reference kernels); a float module on
        the float executor. NaN and infinite inputs propagate as in LiteRT's reference kernels
        (no floating-point warnings are printed). An input of the wrong count, name, shape or
        dtype is a `QccError` naming the input."""
        arrays = self._input_arrays(inputs)
        if self._executor is None:
            from qcc.backends.numba import compile_module, module_is_quantized

            if module_is_quantized(self.module):
                self._executor = compile_module(self.module)
            else:
                from qcc.runtime.executor import Executor

                self._executor = Executor(self.module)
        with np.errstate(all="ignore"):  # NaN/inf in, NaN/inf out, as in LiteRT
            return self._executor.run(arrays)

    def _input_arrays(self, inputs) -> list[np.ndarray]:
        """`inputs` as a list of arrays in input order, checked against the signature."""
        specs = self.inputs
        names = [t.name for t in specs]
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        elif isinstance(inputs, dict):
            unknown = [str(k) for k in inputs if k not in names]
            if unknown:
                raise QccError(
                    f"run: unknown input name {unknown[0]!r} (model inputs: {', '.join(names)})"
                )
            missing = [n for n in names if n not in inputs]
            if missing:
                raise QccError(f"run: no value for input {missing[0]!r}")
            inputs = [inputs[n] for n in names]
        elif isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
            raise QccError(
                f"run: expected a list of arrays (one per input: {', '.join(names)}) or a dict "
                f"keyed by input name, got {type(inputs).__name__}"
            )
        inputs = list(inputs)
        if len(inputs) != len(specs):
            raise QccError(
                f"run: expected {len(specs)} input(s) ({', '.join(names)}), got {len(inputs)}"
            )
        arrays = []
        for x, spec in zip(inputs, specs):
            try:
                arr = np.asarray(x)
            except (TypeError, ValueError) as e:
                raise QccError(f"run: input '{spec.name}': not an array ({e})") from None
            want = tuple(spec.shape)
            if len(arr.shape) != len(want) or any(
                w >= 0 and w != g for w, g in zip(want, arr.shape)
            ):
                raise QccError(
                    f"run: input '{spec.name}': expected shape {list(want)}, got {list(arr.shape)}"
                )
            if arr.dtype != spec.dtype:
                raise QccError(
                    f"run: input '{spec.name}': expected dtype {spec.dtype}, got {arr.dtype} "
                    f"(convert with .astype(np.{spec.dtype.name}))"
                )
            arrays.append(arr)
        return arrays

    # -- output --------------------------------------------------------------------------
    def to_mlir(self) -> str:
        from qcc.irtext import print_ir

        return print_ir(self.module)

    def to_tflite(self) -> bytes:
        from qcc.backends.tflite import export_tflite

        return export_tflite(self.module)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write .tflite or .mlir, chosen by the suffix (case-insensitive), by the rules of
        `qcc.fileio.atomic_write` (atomic; symlinks followed; FIFOs and character devices
        written through). A .tflite is first loaded and prepared by LiteRT: a file LiteRT
        refuses is a QccError naming the op, and nothing is written. The file the model was
        loaded from is never overwritten."""
        from qcc.fileio import atomic_write

        path = _check_path(path, "save")
        suffix = Path(path).suffix.lower()
        inputs = [self.source] if self.source else []
        if suffix == ".mlir":
            atomic_write(path, self.to_mlir(), inputs=inputs)
        elif suffix == ".tflite":
            from qcc.backends.litert_check import check_prepares
            from qcc.fileio import check_not_an_input

            check_not_an_input(path, inputs)
            data = self.to_tflite()
            check_prepares(data, label=os.fspath(path))
            atomic_write(path, data, inputs=inputs)
        else:
            what = f"suffix '{Path(path).suffix}'" if suffix else "no suffix"
            raise QccError(f"{path}: cannot save with {what} (name it .tflite or .mlir)")

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}:{list(t.shape)}" for t in self.inputs)
        outs = ", ".join(f"{t.name}:{list(t.shape)}" for t in self.outputs)
        return f"Model(inputs=[{ins}], outputs=[{outs}])"


def quantize(
    model: Model | str | os.PathLike[str],
    representative_dataset=None,
    mode: str = "int8",
    *,
    target: str | None = None,
    io_dtype: str = "float",
    method: str = "mse",
    samples: int = 0,
    input_range: tuple[float, float] | None = None,
    per_channel_fc: bool = True,
    decompose_prelu: bool | None = None,
    bias_correction: bool = True,
    save_stats: str | os.PathLike[str] | None = None,
    target_snr: float | None = None,
    max_float_ops: int | None = None,
) -> Model:
    """Quantize a model, as TFLite's converter does with a representative dataset.

    `representative_dataset` is a path (.npz, folder of .npy, folder of images, or
    statistics saved by `save_stats` / `qcc --save-stats`) or an iterable of input lists (or
    a callable returning one, like TFLite's generator function). `save_stats` writes the
    calibration statistics to that file (`qcc.statistics`): the run is then replayable from
    its pipeline text (`qcc --print-pipeline` with the same options) with
    `calibration=<that file>`, or `quantize(model, representative_dataset=<that file>)`.
    `mode` is "int8" (each op int8 or a float island, as `target` runs it best),
    "int8-only" (fail on any op without an int8 kernel; it is `target="int8-only"`) or
    "dynamic-range" (int8 weights, float activations; needs no data). `target` is where the
    model will run (`qcc.targets.TARGETS`): "xnnpack" (the default: LiteRT's default
    resolver; an op XNNPACK takes in float but not in int8 becomes a float island),
    "reference" (LiteRT's BUILTIN_REF: every op with an int8 kernel in int8, as before
    targets), "int8-only", or "numba" (qcc's own runtime, `Model.run` and `--emit=numba`:
    no float island where it has an int8 kernel). `decompose_prelu` (None: the target's
    choice) rewrites PRELU into MUL + MAXIMUM before calibration. `bias_correction`
    folds the mean error of the int8 weights into the biases (the `bias-correction` pass).
    `model` is a Model or the path of a model file (as for `load`). Returns a new Model; the
    input model is not modified.

    `target_snr` (dB) asks for mixed precision: the fewest, cheapest promotions of ops to
    int16 activations or float islands (as `target` allows) that bring every output to that
    SNR against the float model on held-out samples (every 4th of the representative data;
    qcc/mixed_precision.py); `max_float_ops` bounds the float islands. The plan is
    `model.precision_plan` (`Plan.summary()`, `Plan.blocking` when the SNR is not reached).
    """
    from qcc.context import make_context
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text

    is_path = isinstance(representative_dataset, (str, os.PathLike))
    options = PresetOptions(
        mode=mode,
        target=target,
        calibration=os.fspath(representative_dataset) if is_path else "",
        method=method,
        samples=samples,
        input_range=input_range,
        io_dtype=io_dtype,
        per_channel_fc=per_channel_fc,
        decompose_prelu=decompose_prelu,
        bias_correction=bias_correction,
    )
    if mode != "dynamic-range" and representative_dataset is None:
        raise QccError(f"mode '{mode}' needs a representative_dataset")
    if max_float_ops is not None and target_snr is None:
        raise QccError("max_float_ops bounds the target_snr search; give target_snr too")
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    elif not isinstance(model, Model):
        raise QccError(
            f"quantize: expected a Model or a model path, got {type(model).__name__}"
        )
    refuse_quantized_input(model.module, model.source or "the model")
    text = preset_pipeline_text(options)
    dataset = None if is_path else representative_dataset
    plan = None
    if target_snr is not None:
        from qcc.calibration import load_representative_data
        from qcc.mixed_precision import plan_pipeline
        from qcc.pipeline import preset_target

        if mode == "dynamic-range":
            raise QccError("target_snr chooses int8/int16/float activations: not dynamic-range")
        data = [
            list(s)
            for s in load_representative_data(
                representative_dataset, model.input_specs(),
                input_range=input_range if is_path else None, samples=samples or None,
            )
        ]
        plan, text = plan_pipeline(
            model.module, text, data, preset_target(options) or "", float(target_snr),
            max_float_ops=max_float_ops,
        )
        if not is_path:  # an iterable or generator is read once: the search's copy serves
            dataset = data
    passes = build_pipeline(text, dataset=dataset)
    if save_stats is not None:
        from qcc.statistics import calibrators

        if not calibrators(passes):
            raise QccError(f"save_stats: mode '{mode}' gathers no calibration statistics")
        _check_path(save_stats, "save_stats")
    from xdsl.utils.exceptions import DiagnosticException, PassFailedException

    module = model.module.clone()
    ctx = make_context()
    for p in passes:
        try:
            p.apply(ctx, module)
            module.verify()
        except DiagnosticException as e:  # a pass's diagnostic (PassFailedException) or verifier's
            text = str(e).strip() or type(e).__name__
            if not isinstance(e, PassFailedException):
                text = text.splitlines()[0]
            if not text.startswith(f"{p.name}:") and not text.startswith(f"{p.name} "):
                text = f"{p.name}: {text}"  # the pass's own messages may name it already
            raise QccError(text) from None
    if save_stats is not None:
        from qcc.statistics import calibrators, save

        calibrator = calibrators(passes)[-1]
        assert calibrator.statistics is not None
        read = [model.source, representative_dataset if is_path else None]
        save(calibrator.statistics, save_stats, inputs=read)
    result = Model(module, model.source)
    result.precision_plan = plan
    return result


def refuse_quantized_input(module: ModuleOp, label: str) -> None:
    """The presets quantize float models: a model with quantized types (an int8 .tflite, a
    dynamic-range one) is refused with a message saying so, rather than failing deep inside
    a pass."""
    from qcc.dialects.quant import QuantizedType

    for op in module.walk():
        for value in op.results:
            element = getattr(value.type, "get_element_type", None)
            if element is not None and isinstance(element(), QuantizedType):
                raise QccError(
                    f"{label}: is already quantized ({op.name} yields {element()}); qcc's "
                    "quantization presets take a float model"
                )


def _check_path(path: object, what: str) -> str | os.PathLike[str]:
    if not isinstance(path, (str, os.PathLike)):
        raise QccError(f"{what}: expected a file path (str or os.PathLike), got {type(path).__name__}")
    return path


def load(path: str | os.PathLike[str]) -> Model:
    """Load a .tflite flatbuffer or MLIR text into a Model."""
    from qcc.fileio import read_bytes

    path = _check_path(path, "load")
    data = read_bytes(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite" or data[4:8] == b"TFL3":
        from qcc.frontends.tflite import import_tflite

        return Model(import_tflite(data, name=str(path)), str(path))
    if suffix == ".mlir":
        from xdsl.utils.exceptions import DiagnosticException, ParseError

        from qcc.irtext import parse_ir

        try:
            module = parse_ir(data.decode("utf-8"), str(path))
            module.verify()
        except UnicodeDecodeError:
            raise QccError(f"{path}: not UTF-8 MLIR text") from None
        except ParseError as e:
            raise QccError(f"{e.span.get_location()}: {e.msg}") from None
        except DiagnosticException as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise QccError(f"{path}: {first}") from None
        return Model(module, str(path))
    raise QccError(f"{path}: unknown model format '{suffix}' (expected .tflite or .mlir)")
