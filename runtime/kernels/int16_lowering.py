"""The int16 (16x8) lowering registry: op class -> lowering, for ops whose activations are
int16 (docs/ir.md, "int16 activations (16x8) and mixed precision").

The Numba backend (`qcc/backends/numba.py`) lowers an op with an int16 activation (a
result, or a non-constant operand; a `quant.qcast` / `quant.dcast` with int16 on either
side) through this registry instead of `registry.INT8_LOWERINGS`: the protocol is the
int8 one (`int8_registry`: ``lower(op) -> (kernel, params[, operand_indices]) | None``,
runners registered by name with ``@runner``). An op class without an int16 lowering is
refused by the backend with one line naming the op.

Only lowering functions use this module (compile time); the `--emit=numba` artifact drops
the functions decorated with ``@int16_lowering`` as it drops ``@int8_lowering`` ones.
"""

from __future__ import annotations

from collections.abc import Callable

INT16_LOWERINGS: dict[type, Callable] = {}
"""op class -> int16 lowering."""


def int16_lowering(*classes: type) -> Callable[[Callable], Callable]:
    """Register `fn` as the int16 lowering of the op classes `classes` (once each)."""

    def register(fn: Callable) -> Callable:
        for cls in classes:
            if cls in INT16_LOWERINGS and INT16_LOWERINGS[cls] is not fn:
                raise AssertionError(f"two int16 lowerings registered for {cls.__name__}")
            INT16_LOWERINGS[cls] = fn
        return fn

    return register


def lookup_int16(op) -> Callable | None:
    """The int16 lowering registered for `type(op)`, or None (loads the families first)."""
    from .int8_registry import load_int8_families

    load_int8_families()
    return INT16_LOWERINGS.get(type(op))
