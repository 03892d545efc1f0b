"""Using LiteRT's interpreter inside qcc's own process, quietly.

LiteRT's C++ code writes to the process's file descriptor 2 directly ("INFO: Created
TensorFlow Lite XNNPACK delegate for CPU.", and the reason when a kernel refuses to prepare),
bypassing Python's `sys.stderr`. qcc promises one line per error and nothing else on stderr,
so every in-process interpreter is built through `make_interpreter`, which routes descriptor
2 to a temporary file while LiteRT runs and puts what LiteRT said into the exception, if any.

`LiteRTRunner` runs a float function of qcc IR on LiteRT, every value read back from its own
tensor: the fallback of calibration (`qcc.statistics`) and of the report (`qcc.report`) for
ops qcc's float executor has no kernel for (MediaPipe's custom ops).

`partitions(model_bytes)` says how LiteRT's default resolver runs a model: how many XNNPACK
delegate partitions its execution plan has and which operators run outside them on the
builtin kernels (`Partitions`; `delegation` documents how it is read from the interpreter).
`qcc --report` and bench/accuracy.py print it; `qcc.targets` re-exports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

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


# ------------------------------------------------------------------------------------------
# Delegate partitions: what LiteRT's default resolver hands to XNNPACK, and what it keeps
# ------------------------------------------------------------------------------------------


class OutsideOp(NamedTuple):
    """An operator of the model that runs outside every delegate partition (on LiteRT's
    builtin kernels): its index in the model's operator list, its builtin name (a custom
    op's custom name) and the name of its first output tensor."""

    index: int
    builtin: str
    output: str


@dataclass(frozen=True)
class Partitions:
    """How LiteRT's default resolver runs a model's main subgraph (`partitions`).

    `count` is the number of XNNPACK delegate partitions (delegate kernel nodes in the
    execution plan); `operators` the number of operators in the model's subgraph 0;
    `members` the original operator indices each partition runs, in partition order;
    `outside` the operators no partition runs, in model order. A model that XNNPACK takes
    whole has `count == 1` and no `outside`; every operator outside splits the graph."""

    count: int
    operators: int
    members: tuple[tuple[int, ...], ...]
    outside: tuple[OutsideOp, ...]

    @property
    def delegated(self) -> frozenset[int]:
        """The indices of the operators some partition runs."""
        return frozenset(i for part in self.members for i in part)

    def summary(self) -> str:
        """One line: `3 XNNPACK partitions, 2 of 40 operators outside: #5 PRELU (y), ...`."""
        noun = "partition" if self.count == 1 else "partitions"
        text = f"{self.count} XNNPACK {noun}, {len(self.outside)} of {self.operators} operators outside"
        if self.outside:
            text += ": " + ", ".join(f"#{o.index} {o.builtin} ({o.output})" for o in self.outside)
        return text

    def __str__(self) -> str:
        return self.summary()


def subgraph0_operator_count(model_content: bytes) -> int:
    """The number of operators in the model's first (main) subgraph, read from the file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytes(model_content), 0)
    if model.SubgraphsLength() == 0:
        return 0
    return model.Subgraphs(0).OperatorsLength()


def delegation(interpreter, operators: int) -> Partitions:
    """The `Partitions` of an interpreter built with delegates applied (`make_interpreter`),
    whose model's subgraph 0 has `operators` operators.

    How it is read. ai_edge_litert does not expose the execution plan, but its node list
    does: `Interpreter._get_ops_details()` lists every node of subgraph 0, the model's
    operators first (node i is operator i) and then one node per delegate partition,
    named "DELEGATE", whose inputs and outputs are the partition's boundary tensors (the
    tensors it reads from outside, constants included, and the ones it writes for the
    outside or as model outputs). The operators a partition runs are found by walking
    back from its outputs through the operators that produce them, stopping at its
    inputs: an operator reached this way computes something the partition writes from
    what it reads, so the partition replaced it (an operator outside would have written a
    partition input, and the walk stops there). Operators no partition reaches run on
    LiteRT's builtin kernels. The default resolver applies only the XNNPACK delegate, so
    every delegate node is an XNNPACK partition."""
    details = interpreter._get_ops_details()
    originals = details[:operators]
    producer: dict[int, int] = {}
    for d in originals:
        for t in d["outputs"]:
            if t >= 0:
                producer[int(t)] = d["index"]
    members: list[tuple[int, ...]] = []
    for d in details[operators:]:
        inputs = {int(t) for t in d["inputs"] if t >= 0}
        found: set[int] = set()
        stack = [int(t) for t in d["outputs"] if t >= 0]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in inputs or t not in producer:
                continue
            seen.add(t)
            node = producer[t]
            if node in found:
                continue
            found.add(node)
            stack.extend(int(u) for u in originals[node]["inputs"] if u >= 0)
        members.append(tuple(sorted(found)))
    inside = {i for part in members for i in part}
    outside = []
    for d in originals:
        if d["index"] in inside:
            continue
        outs = [int(t) for t in d["outputs"] if t >= 0]
        name = interpreter._get_tensor_details(outs[0], subgraph_index=0)["name"] if outs else ""
        outside.append(OutsideOp(d["index"], str(d["op_name"]), name))
    return Partitions(len(members), len(originals), tuple(members), tuple(outside))


def partitions(model_content: bytes) -> Partitions:
    """Load `model_content` with LiteRT's default resolver (XNNPACK delegate, one thread,
    in-process, LiteRT's stderr captured: `make_interpreter`) and report its delegate
    partitions and the operators that run outside them (see `delegation` for how).
    Only the main subgraph (subgraph 0) is counted: control-flow bodies are not. A model
    LiteRT refuses raises RuntimeError with LiteRT's explanation."""
    interpreter = make_interpreter(model_content)
    return delegation(interpreter, subgraph0_operator_count(model_content))
