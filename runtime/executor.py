"""The float executor: runs an imported program (`func.func @main` of nn ops) on numpy arrays.

    ex = Executor(module)                    # compiles once: kernels prepared, constants decoded
    outputs = ex.run([image])                # list of arrays, in the function's result order
    ex.run([image], observer=lambda op, results: ...)   # called after every op

Compilation turns the function body into a flat plan: one step per op, holding the kernel
(a closure whose properties, constant weights and reshaped/transposed filters were prepared
by the op's factory), the environment slots it reads and writes, and the slots whose values
die after it (their last use, computed once), which the run loop releases at once so that
only live activations are kept. Constants are decoded once into the initial environment.
Any op without a kernel (an unknown custom op, an unknown op) fails compilation with
`MissingKernelError` naming it and its location; a kernel that refuses the op as written
(malformed custom options, shapes its definition rejects) with `InvalidOpError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue

from qcc.dialects import nn
from qcc.dialects.ir import describe_op, find_main, location_text

from .errors import InputMismatchError, InvalidOpError, MissingKernelError
from .kernels import lookup
from .kernels.common import tensor_dtype

Observer = Callable[[Operation, tuple[np.ndarray, ...]], Any]


def _missing(op: Operation) -> MissingKernelError:
    loc = location_text(op.location)
    where = f' (at "{loc}")' if loc is not None else ""
    name = op.op_name.data if isinstance(op, nn.GenericOp) else op.name
    return MissingKernelError(f"no kernel for {describe_op(op)}{where}", name, loc)


@dataclass(frozen=True)
class TensorSpec:
    """Shape (-1 for a dynamic dim) and numpy dtype of a function argument or result."""

    shape: tuple[int, ...]
    dtype: np.dtype | None

    def __str__(self) -> str:
        dims = "x".join("?" if d < 0 else str(d) for d in self.shape)
        return f"{dims}{'x' if dims else ''}{self.dtype}"


def _spec(t: Attribute) -> TensorSpec:
    shape = tuple(int(d) for d in t.get_shape())  # type: ignore[attr-defined]
    return TensorSpec(shape, tensor_dtype(t))


class Executor:
    """Runs `func.func @main` (of a module, or the func itself) on numpy arrays."""

    def __init__(self, module_or_func: Operation):
        self.func = find_main(module_or_func)
        block = self.func.body.block
        self.input_specs = [_spec(arg.type) for arg in block.args]
        ret = block.last_op
        if not isinstance(ret, ReturnOp):
            raise ValueError("the function body does not end in func.return")
        self.output_specs = [_spec(v.type) for v in ret.operands]

        slots: dict[SSAValue, int] = {}

        def slot(v: SSAValue) -> int:
            if v not in slots:
                slots[v] = len(slots)
            return slots[v]

        for arg in block.args:
            slot(arg)

        # Prepare every kernel first, so a missing one fails before anything else is built.
        body = [op for op in block.ops if op is not ret]
        for op in body:
            if lookup(op) is None:
                raise _missing(op)
        prepared: list[tuple[Operation, Callable[..., Any]]] = []
        for op in body:
            factory = lookup(op)
            assert factory is not None
            try:
                fn = factory(op)
            except ValueError as e:  # the kernel's one-line refusal of this instance
                loc = location_text(op.location)
                where = f' (at "{loc}")' if loc is not None else ""
                raise InvalidOpError(f"{e}{where}") from None
            if fn is None:
                raise _missing(op)
            prepared.append((op, fn))

        # Last use of every value (index of the step that reads it last).
        last_use: dict[SSAValue, int] = {}
        for index, (op, _) in enumerate(prepared):
            for v in op.operands:
                last_use[v] = index
        keep = set(ret.operands)

        initial: dict[int, np.ndarray] = {}
        steps: list[tuple] = []
        observed: list[tuple] = []
        for index, (op, fn) in enumerate(prepared):
            outs = tuple(slot(r) for r in op.results)
            constant = getattr(fn, "constant", None)
            if constant is not None:
                initial[outs[0]] = constant
                observed.append((None, (), outs, (), op))
                continue
            ins = tuple(slot(v) for v in op.operands)
            dead = tuple(
                sorted(
                    {
                        slots[v]
                        for v in op.operands
                        if last_use.get(v) == index and v not in keep and slots[v] not in initial
                    }
                    | {
                        slot(r)
                        for r in op.results
                        if r not in last_use and r not in keep
                    }
                )
            )
            step = (fn, ins, outs[0] if len(outs) == 1 else outs, dead, op)
            steps.append(step)
            observed.append(step)
        for v in ret.operands:
            slot(v)
        self._n_slots = len(slots)
        self._initial = [initial.get(i) for i in range(self._n_slots)]
        self._steps = steps
        self._observed_steps = observed
        self._result_slots = [slots[v] for v in ret.operands]
        self._n_inputs = len(block.args)

    # --------------------------------------------------------------------------------------

    def _check_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != self._n_inputs:
            raise InputMismatchError(
                f"expected {self._n_inputs} input(s) ({', '.join(map(str, self.input_specs))}),"
                f" got {len(inputs)}"
            )
        arrays = []
        for i, (x, spec) in enumerate(zip(inputs, self.input_specs)):
            if not isinstance(x, np.ndarray):
                x = np.asarray(x)
            if len(x.shape) != len(spec.shape) or any(
                want >= 0 and want != got for want, got in zip(spec.shape, x.shape)
            ):
                raise InputMismatchError(
                    f"input {i}: expected shape {list(spec.shape)}, got {list(x.shape)}"
                )
            if spec.dtype is not None and x.dtype != spec.dtype:
                raise InputMismatchError(f"input {i}: expected dtype {spec.dtype}, got {x.dtype}")
            arrays.append(x)
        return arrays

    def run(
        self, inputs: Sequence[np.ndarray], observer: Observer | None = None
    ) -> list[np.ndarray]:
        """Run the program on `inputs` (in the function's argument order) and return its
        results. `observer(op, results)`, if given, is called after every op (constants
        included) with the tuple of its result arrays; it must not modify them."""
        arrays = self._check_inputs(inputs)
        env: list[Any] = list(self._initial)
        env[: len(arrays)] = arrays
        if observer is None:
            for fn, ins, out, dead, _ in self._steps:
                result = fn(*[env[i] for i in ins])
                if out.__class__ is int:
                    env[out] = result
                else:
                    for o, r in zip(out, result):
                        env[o] = r
                for d in dead:
                    env[d] = None
        else:
            for fn, ins, out, dead, op in self._observed_steps:
                if fn is None:  # a constant
                    observer(op, (env[out[0]],))
                    continue
                result = fn(*[env[i] for i in ins])
                if out.__class__ is int:
                    env[out] = result
                    observer(op, (result,))
                else:
                    result = tuple(result)
                    for o, r in zip(out, result):
                        env[o] = r
                    observer(op, result)
                for d in dead:
                    env[d] = None
        return [np.asarray(env[i]) for i in self._result_slots]

    __call__ = run
