"""Kernel registration: how an op's class reaches the code that runs it (float and int8).

Both runtimes register code against the op *class*, through one protocol, and look it up by
``type(op)``; the op's declaration (``SPEC`` in dialects/nn.py) says what must exist:

    from qcc.dialects import nn
    from .registry import float_kernel, int8_lowering

    @float_kernel(nn.HardSwishOp)                     # runtime/kernels/<family>.py
    def hard_swish(op):
        ...                                           # read properties and constants once
        return lambda x: ...                          # kernel(*operand_arrays) -> array(s)

    @int8_lowering(nn.HardSwishOp)                    # runtime/kernels/int8_<family>.py
    def lower_hard_swish(op):
        ...                                           # multipliers, tables, packed weights
        return "hard_swish_i8", {"lut": lut}          # (kernel name, params[, operand indices])

* **float kernels** (``FLOAT_KERNELS``; the float executor, calibration, float islands): a
  *factory* ``factory(op)`` reads the op's properties (and constant operands, via
  ``common.constant_value``) once and returns ``kernel(*operand_arrays)``, which returns one
  array, or a tuple with one array per result; a factory may return None for an instance it
  cannot run (the executor then reports the op). Every nn op needs one (the conformance test,
  tests/test_conformance.py, checks it against LiteRT).
* **int8 lowerings** (``INT8_LOWERINGS``; the Numba backend, ``qcc.backends.numba``): a
  *lowering* ``lower(op)`` runs once at compile time and returns ``(kernel_name, params)`` or
  ``(kernel_name, params, operand_indices)``, or None when the instance has no int8 kernel
  (the backend reports the op). The kernel name selects a *runner*, registered by name with
  ``@runner("name")`` in ``int8_registry`` (runners are keyed by name, not by op, because a
  compiled plan is data: steps name their kernel, and the ``--emit=numba`` artifact runs
  them without qcc). ``int8_registry``'s docstring describes params, runners and the rules
  that keep the artifact self-contained (lowerings are stripped from it).

What the declaration decides (``nn.int8_capable``, the one capability question):
``SPEC.int8 = KERNEL`` means "qcc quantizes the op": it must have an int8 lowering (and a
float kernel). ``SPEC.int8 = Fallback(reason)`` means "qcc keeps it a float island": it has
no int8 lowering, and registering one is refused at import time, unless the declaration says
``Fallback(reason, imported_int8=True)`` ("qcc never quantizes it, but runs an int8 instance
found in a model quantized elsewhere", e.g. SUM from TFLite's own quantizer).

Keys are op classes, registered once each (a second registration is an error). The ops
without a class of their own, builtins imported as ``nn.generic``, register by builtin name:
``@float_kernel(nn.GenericOp, builtin="DEQUANTIZE")``, and custom ops (``custom = true``) by
their custom code: ``@float_kernel(nn.GenericOp, custom="TransformLandmarks")`` (MediaPipe's
custom ops, runtime/kernels/mediapipe_*.py; float only: a custom op is never quantized). An
unknown custom op has no kernel, and the executor reports it by name. Lookups load the family modules on first use (``FLOAT_FAMILIES`` here,
``int8_registry.INT8_FAMILIES`` for int8), so adding an op's kernel is one decorated
function in its family's file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcc.dialects import nn
from xdsl.ir import Operation

from . import int8_registry

Factory = Callable[[Operation], Any]
"""A float kernel factory: factory(op) -> kernel(*arrays) -> array | tuple[array, ...]."""
Lowering = Callable[[Operation], Any]
"""An int8 lowering: lower(op) -> (kernel_name, params[, operand_indices]) | None."""

Key = type | tuple[type, str]
"""An op class, or (nn.GenericOp, builtin name) for a builtin without an nn op, or
(nn.GenericOp, "custom:" + custom code) for a custom op."""

FLOAT_FAMILIES = (
    "constant",
    "conv",
    "matmul",
    "elementwise",
    "activation",
    "pooling",
    "reduce",
    "shape",
    "resize",
    "quant",
    "builtins",
    "mediapipe_transpose_conv",
    "mediapipe_transform",
    "mediapipe_pooling",
)
"""Modules of `qcc.runtime.kernels` that register float kernels (a missing one is skipped)."""


class OpRegistry:
    """Code registered against op classes, looked up by ``type(op)``.

    ``register(*op_classes, builtin=None)`` is the decorator (``float_kernel`` and
    ``int8_lowering`` are the two registries' ``register``); ``lookup(op)`` returns the
    registered code for an op instance (None when there is none); ``op_classes()`` the
    classes registered; ``cls in registry`` whether a class is."""

    def __init__(self, what: str, loader: Callable[[], object],
                 check: Callable[[type], None] | None = None):
        self.what = what
        self._loader = loader
        self._check = check
        self._entries: dict[Key, Callable] = {}
        self._loaded = False

    def register(self, *op_classes: type, builtin: str | None = None,
                 custom: str | None = None) -> Callable[[Callable], Callable]:
        """Register the decorated function for `op_classes` (with `builtin`: for the
        nn.generic ops of that TFLite builtin; with `custom`: for the custom ops of that
        custom code)."""
        if not op_classes:
            raise TypeError(f"register a {self.what} for at least one op class")
        for cls in op_classes:
            if not (isinstance(cls, type) and issubclass(cls, Operation)):
                raise TypeError(
                    f"a {self.what} is registered against the op class (nn.ReluOp), "
                    f"not {cls!r}"
                )
        if (builtin is not None or custom is not None) and op_classes != (nn.GenericOp,):
            raise TypeError(
                "builtin= / custom= name the operator of an nn.generic op: register nn.GenericOp"
            )
        if builtin is not None and custom is not None:
            raise TypeError("give builtin= or custom=, not both")
        keys: list[Key] = list(op_classes)
        if builtin is not None:
            keys = [(nn.GenericOp, builtin)]
        elif custom is not None:
            keys = [(nn.GenericOp, "custom:" + custom)]

        def register(fn: Callable) -> Callable:
            for cls, key in zip(op_classes, keys):
                if self._check is not None:
                    self._check(cls)
                if key in self._entries and self._entries[key] is not fn:
                    raise AssertionError(f"two {self.what}s registered for {_label(key)}")
                self._entries[key] = fn
            return fn

        return register

    def load(self) -> None:
        """Import the family modules (they register on import)."""
        if self._loaded:
            return
        self._loaded = True
        self._loader()

    def lookup(self, op: Operation) -> Callable | None:
        """The code registered for `op` (by its class; an nn.generic by its builtin name or,
        for a custom op, its custom code), or None."""
        self.load()
        if isinstance(op, nn.GenericOp):
            prefix = "custom:" if op.custom.value.data else ""
            return self._entries.get((nn.GenericOp, prefix + op.op_name.data))
        return self._entries.get(type(op))

    def op_classes(self) -> frozenset[type]:
        """The op classes with registered code (nn.GenericOp when any builtin has some)."""
        self.load()
        return frozenset(k if isinstance(k, type) else k[0] for k in self._entries)

    def __contains__(self, op_class: object) -> bool:
        return op_class in self.op_classes()

    def unregister(self, key: Key) -> None:
        """Remove a registration (tests register throwaway ops and clean up)."""
        self._entries.pop(key, None)


import_families = int8_registry.import_families


def _label(key: Key) -> str:
    if isinstance(key, tuple):
        return f"nn.generic {key[1].removeprefix('custom:')}"
    return f"{getattr(key, 'name', key.__name__)} ({key.__name__})"


def _check_int8_declaration(cls: type) -> None:
    """An nn op declared a float fallback gets no int8 lowering, unless its declaration says
    it runs imported int8 instances (`Fallback(..., imported_int8=True)`); nor does
    nn.generic (never int8: `nn.int8_capable`)."""
    spec = nn.op_spec(cls)
    if spec is None:
        return  # quant.qcast, quant.dcast
    if isinstance(spec.int8, nn.Fallback) and not spec.int8.imported_int8:
        raise TypeError(
            f"{cls.__name__} ({cls.name}) is declared a float fallback (SPEC.int8 = "
            f"Fallback({spec.int8.reason!r})): qcc never lowers it to int8. Declare it KERNEL, "
            "or Fallback(..., imported_int8=True) if the int8 runtime must run int8 instances "
            "quantized elsewhere"
        )
    if spec.int8 is None:
        raise TypeError(f"{cls.__name__} ({cls.name}) is not a computation (SPEC.int8 = None)")


FLOAT_KERNELS = OpRegistry("float kernel", lambda: import_families(FLOAT_FAMILIES))
"""op class -> float kernel factory."""

INT8_LOWERINGS = OpRegistry(
    "int8 lowering", int8_registry.load_int8_families, check=_check_int8_declaration
)
"""op class -> int8 lowering."""

def _check_int16_declaration(cls: type) -> None:
    """An nn op gets an int16 lowering only if its declaration lists TFLite's 16x8 kernel
    (`int16x8` in SPEC.precisions); quant.qcast / quant.dcast convert to and from int16."""
    spec = nn.op_spec(cls)
    if spec is None:
        return  # quant.qcast, quant.dcast
    if "int16x8" not in spec.precisions:
        raise TypeError(
            f"{cls.__name__} ({cls.name}) declares no int16x8 precision (SPEC.precisions = "
            f"{spec.precisions}): TFLite has no 16x8 kernel for it to match"
        )


INT16_LOWERINGS = OpRegistry(
    "int16 lowering", int8_registry.load_int8_families, check=_check_int16_declaration
)
"""op class -> int16 (16x8) lowering: the backend lowers an op with an int16 activation (a
result, or a non-constant operand; a qcast / dcast with int16 on either side) through this
registry instead of `INT8_LOWERINGS`, with the same protocol (docs/ir.md, "int16
activations"); an op class without one is refused with one line naming the op."""

float_kernel = FLOAT_KERNELS.register
"""``@float_kernel(nn.XOp, ...)``: register a float kernel factory."""

int8_lowering = INT8_LOWERINGS.register
"""``@int8_lowering(nn.XOp, ...)``: register an int8 lowering (compile time, stripped from
the ``--emit=numba`` artifact)."""

int16_lowering = INT16_LOWERINGS.register
"""``@int16_lowering(nn.XOp, ...)``: register an int16 lowering (compile time, stripped from
the ``--emit=numba`` artifact like the int8 ones)."""


def lookup(op: Operation) -> Factory | None:
    """The float kernel factory for `op`, or None if the float runtime has none."""
    return FLOAT_KERNELS.lookup(op)

