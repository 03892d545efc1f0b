"""Using LiteRT's interpreter inside qcc's own process, quietly.

LiteRT's C++ code writes to the process's file descriptor 2 directly ("INFO: Created
TensorFlow Lite XNNPACK delegate for CPU.", and the reason when a kernel refuses to prepare),
bypassing Python's `sys.stderr`. qcc promises one line per error and nothing else on stderr,
so every in-process interpreter is built through `make_interpreter`, which routes descriptor
2 to a temporary file while LiteRT runs and puts what LiteRT said into the exception, if any.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


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
