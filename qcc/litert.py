"""Using LiteRT's interpreter inside qcc's own process, quietly.

LiteRT's C++ code writes to the process's file descriptor 2 directly ("INFO: Created
TensorFlow Lite XNNPACK delegate for CPU.", and the reason when a kernel refuses to prepare),
bypassing Python's `sys.stderr`. qcc promises one line per error and nothing else on stderr,
so every in-process interpreter is built through `make_interpreter`, which routes descriptor
2 to a temporary file while LiteRT runs and puts what LiteRT said into the exception, if any.

`LiteRTRunner` runs a float function of qcc IR on LiteRT, every value read back from its own
tensor: the fallback of calibration (`qcc.statistics`) and of the report (`qcc.report`) for
ops qcc's float executor has no kernel for (MediaPipe's custom ops).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from xdsl.dialects.func import FuncOp
    from xdsl.ir import SSAValue


class NativeOutput:
    """What native code wrote to stderr inside `native_stderr_captured` (after it exits)."""

    text: str = ""


@contextmanager
def native_stderr_captured() -> Iterator[NativeOutput]:
    """Redirect file descriptor 2 to a temporary file for the duration; the text written
    there is `.text` of the yielded object afterwards."""
    captured = NativeOutput()
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to protect
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


def make_interpreter(model_content: bytes, *, preserve_all_tensors: bool = False,
                     reference: bool = False):
    """An `ai_edge_litert` Interpreter for `model_content` with tensors allocated, one thread,
    LiteRT's native stderr captured. A failure raises RuntimeError whose message ends with
    LiteRT's own explanation."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    with native_stderr_captured() as native, warnings.catch_warnings():
        # "preserve_all_tensors ... is intended for debugging": for qcc it is the point
        warnings.simplefilter("ignore", UserWarning)
        try:
            interpreter = Interpreter(
                model_content=bytes(model_content),
                num_threads=1,
                experimental_op_resolver_type=kind,
                experimental_preserve_all_tensors=preserve_all_tensors,
            )
            interpreter.allocate_tensors()
            return interpreter
        except (RuntimeError, ValueError) as e:
            error = e
    said = " ".join(line.strip() for line in native.text.splitlines() if "INFO:" not in line)
    raise RuntimeError(f"{error} {said}".strip()) from None


class LiteRTRunner:
    """The float model run by LiteRT instead of qcc's executor: `func` exported with
    `export_tflite_with_tensor_map`, so that every value is read back from the very tensor
    it was written to (never matched by name).

    `experimental_preserve_all_tensors` keeps every intermediate tensor after `invoke`
    (LiteRT then delegates op by op, so delegated ops write their outputs too); the default
    resolver is kept on purpose: its XNNPACK delegate is what runs MediaPipe's custom ops
    (Convolution2DTransposeBias, MaxPoolingWithArgmax2D, MaxUnpooling2D)."""

    def __init__(self, func: FuncOp):
        from qcc.backends.tflite import export_tflite_with_tensor_map

        model, self.tensor_of = export_tflite_with_tensor_map(func)
        # LiteRT's native INFO/error lines are captured, not printed
        self.interpreter = make_interpreter(model, preserve_all_tensors=True)
        self.inputs = [self.tensor_of[a] for a in func.body.block.args]
        self.input_details = {d["index"]: d for d in self.interpreter.get_input_details()}

    def check(self, sample: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The sample as LiteRT takes it, or an error worded like the executor's."""
        import numpy as np

        from qcc.runtime.errors import InputMismatchError

        if len(sample) != len(self.inputs):
            raise InputMismatchError(
                f"expected {len(self.inputs)} input(s), got {len(sample)}"
            )
        arrays = []
        for i, (x, index) in enumerate(zip(sample, self.inputs)):
            x = np.asarray(x)
            detail = self.input_details[index]
            want = [int(d) for d in detail["shape"]]
            if list(x.shape) != want:
                raise InputMismatchError(f"input {i}: expected shape {want}, got {list(x.shape)}")
            if x.dtype != detail["dtype"]:
                raise InputMismatchError(
                    f"input {i}: expected dtype {np.dtype(detail['dtype'])}, got {x.dtype}"
                )
            arrays.append(x)
        return arrays

    def run(self, arrays: Sequence[np.ndarray]) -> None:
        for index, x in zip(self.inputs, arrays):
            self.interpreter.set_tensor(index, x)
        self.interpreter.invoke()

    def value(self, v: SSAValue) -> np.ndarray:
        return self.interpreter.get_tensor(self.tensor_of[v])
