"""The kernel registry: op name -> factory.

A factory takes the op (`factory(op)`), reads its properties (and constant operands, via
`common.constant_value`) once, and returns the callable that runs it:
`kernel(*operand_arrays) -> array | tuple[array, ...]`, one array per op result.

Kernels live in one module per op family; each registers its ops with `@kernel("nn.x")`,
so adding an op is one decorated factory in its family's file. The family modules are
imported the first time the registry is consulted. Custom ops (`nn.generic`) are looked up by
their `op_name` in `GENERIC_KERNELS` (builtins only: custom ops never have a kernel).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from xdsl.ir import Operation

Kernel = Callable[..., Any]
Factory = Callable[[Operation], Kernel]

KERNELS: dict[str, Factory] = {}
"""op name (`nn.conv2d`, later `quant.qcast`, ...) -> factory."""

GENERIC_KERNELS: dict[str, Factory] = {}
"""`op_name` of a builtin (non-custom) `nn.generic` -> factory."""

FAMILIES = (
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
)
"""Modules of this package that register kernels (a missing one is skipped)."""

_loaded = False


def kernel(*names: str) -> Callable[[Factory], Factory]:
    """Register a factory for the ops `names`."""

    def register(factory: Factory) -> Factory:
        for name in names:
            if name in KERNELS:
                raise AssertionError(f"two kernels registered for {name!r}")
            KERNELS[name] = factory
        return factory

    return register


def generic_kernel(*op_names: str) -> Callable[[Factory], Factory]:
    """Register a factory for builtin operators imported as `nn.generic` (by `op_name`)."""

    def register(factory: Factory) -> Factory:
        for name in op_names:
            GENERIC_KERNELS[name] = factory
        return factory

    return register


def load_families() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for family in FAMILIES:
        try:
            importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{family}":
                raise


def lookup(op: Operation) -> Factory | None:
    """The factory for `op`, or None if the runtime has no kernel for it."""
    load_families()
    if op.name == "nn.generic":
        custom = op.properties.get("custom")
        if custom is not None and custom.value.data:  # type: ignore[attr-defined]
            return None
        return GENERIC_KERNELS.get(op.properties["op_name"].data)  # type: ignore[attr-defined]
    return KERNELS.get(op.name)
