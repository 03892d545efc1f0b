"""The kernels: one module per op family, float (`conv.py`, `activation.py`, ...) and int8
(`int8_conv.py`, `int8_activation.py`, ...).

Kernels register against the op class, float and int8 through one protocol, documented in
`registry.py`: ``@float_kernel(nn.ReluOp)`` on a factory here, ``@int8_lowering(nn.ReluOp)``
on a lowering in an ``int8_`` family (its runners are registered by kernel name in
`int8_registry.py`). `lookup(op)` is the float executor's entry point.
"""

from __future__ import annotations

from .registry import FLOAT_FAMILIES, FLOAT_KERNELS, Factory, float_kernel, lookup

__all__ = ["FLOAT_FAMILIES", "FLOAT_KERNELS", "Factory", "float_kernel", "lookup"]
