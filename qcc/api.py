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
    from qcc.runtime.executor import find_main

    try:
        return find_main(module)
    except ValueError as e:
        raise QccError(str(e)) from None


def _names(attrs, count: int, prefix: str) -> list[str]:
    from xdsl.dialects.builtin import StringAttr

    names = []
    for i in range(count):
        name = None
        if attrs is not None and i < len(attrs.data):
            value = attrs.data[i].data.get("nn.name")
            if isinstance(value, StringAttr):
                name = value.data
        names.append(name or f"{prefix}{i}")
    return names


class Model:
    """A model in qcc IR: inspect it, run it, save it."""

    def __init__(self, module: ModuleOp, source: str | None = None):
        self.module = module
        self.source = source
        self._executor = None

    # -- signature -----------------------------------------------------------------------
    def _signature(self, which: str) -> list[TensorInfo]:
        func = main_function(self.module)
        if which == "inputs":
            types, attrs = func.function_type.inputs.data, func.arg_attrs
        else:
            types, attrs = func.function_type.outputs.data, func.res_attrs
        names = _names(attrs, len(types), "input_" if which == "inputs" else "output_")
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
        from qcc.passes.annotate_ranges import declared_range

        attrs = main_function(self.module).arg_attrs
        return [
            InputSpec(t.name, t.shape, t.dtype, declared_range(attrs, i))
            for i, t in enumerate(self.inputs)
        ]

    # -- execution -----------------------------------------------------------------------
    def run(self, inputs) -> list[np.ndarray]:
        """Run the model on a list of numpy arrays (one per input, in input order).

        A quantized module (any `!quant.uniform` type) runs on the Numba integer runtime
        (`qcc.backends.numba`, bit-exact with LiteRT's reference kernels); a float module on
        the float executor."""
        if self._executor is None:
            from qcc.backends.numba import compile_module, module_is_quantized

            if module_is_quantized(self.module):
                self._executor = compile_module(self.module)
            else:
                from qcc.runtime.executor import Executor

                self._executor = Executor(self.module)
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return self._executor.run(list(inputs))

    # -- output --------------------------------------------------------------------------
    def to_mlir(self) -> str:
        from qcc.irtext import print_ir

        return print_ir(self.module)

    def to_tflite(self) -> bytes:
        from qcc.backends.tflite import export_tflite

        return export_tflite(self.module)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write .tflite or .mlir, chosen by the suffix, atomically."""
        from qcc.fileio import atomic_write

        suffix = Path(path).suffix.lower()
        if suffix == ".mlir":
            atomic_write(path, self.to_mlir())
        elif suffix == ".tflite":
            atomic_write(path, self.to_tflite())
        else:
            raise QccError(f"{path}: cannot save as '{suffix}' (use .tflite or .mlir)")

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}:{list(t.shape)}" for t in self.inputs)
        outs = ", ".join(f"{t.name}:{list(t.shape)}" for t in self.outputs)
        return f"Model(inputs=[{ins}], outputs=[{outs}])"


def quantize(
    model: Model,
    representative_dataset=None,
    mode: str = "int8",
    *,
    io_dtype: str = "float",
    method: str = "mse",
    samples: int = 0,
    input_range: tuple[float, float] | None = None,
    per_channel_fc: bool = True,
    decompose_prelu: bool = True,
    bias_correction: bool = True,
) -> Model:
    """Quantize a model, as TFLite's converter does with a representative dataset.

    `representative_dataset` is a path (.npz, folder of .npy, folder of images) or an
    iterable of input lists (or a callable returning one, like TFLite's generator function).
    `mode` is "int8" (ops without an int8 kernel stay float), "int8-only" (fail on them) or
    "dynamic-range" (int8 weights, float activations; needs no data). `bias_correction`
    folds the mean error of the int8 weights into the biases (the `bias-correction` pass).
    Returns a new Model; the input model is not modified.
    """
    import dataclasses

    from qcc.context import make_context
    from qcc.pipeline import PresetOptions, build_pipeline, preset_pipeline_text

    is_path = isinstance(representative_dataset, (str, os.PathLike))
    options = PresetOptions(
        mode=mode,
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
    passes = build_pipeline(preset_pipeline_text(options))
    if representative_dataset is not None and not is_path:
        passes = [
            dataclasses.replace(p, dataset=representative_dataset)
            if p.name == "annotate-ranges"
            else p
            for p in passes
        ]
    module = model.module.clone()
    ctx = make_context()
    for p in passes:
        p.apply(ctx, module)
        module.verify()
    return Model(module, model.source)


def load(path: str | os.PathLike[str]) -> Model:
    """Load a .tflite flatbuffer or MLIR text into a Model."""
    from qcc.fileio import read_bytes

    data = read_bytes(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite" or data[4:8] == b"TFL3":
        from qcc.frontends.tflite import import_tflite

        return Model(import_tflite(data, name=str(path)), str(path))
    if suffix == ".mlir":
        from xdsl.utils.exceptions import ParseError

        from qcc.irtext import parse_ir

        try:
            module = parse_ir(data.decode("utf-8"), str(path))
            module.verify()
        except UnicodeDecodeError:
            raise QccError(f"{path}: not UTF-8 MLIR text") from None
        except ParseError as e:
            raise QccError(f"{e.span.get_location()}: {e.msg}") from None
        return Model(module, str(path))
    raise QccError(f"{path}: unknown model format '{suffix}' (expected .tflite or .mlir)")
