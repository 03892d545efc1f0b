"""A model's signature as its IR records it: the names of the main function's inputs and
outputs (`nn.name`, the model's tensor names) and the value range an input declares
(`nn.value_range`, from the model's TFLite metadata).

One definition for the API (`qcc.api`), the backends and calibration (`qcc.statistics`).
"""

from __future__ import annotations

from typing import Any


def names(attrs: Any, count: int, prefix: str) -> list[str]:
    """The `nn.name` of each of `count` arguments or results (`func.arg_attrs` or
    `func.res_attrs`), else `<prefix><index>`."""
    from xdsl.dialects.builtin import StringAttr

    found = []
    for i in range(count):
        name = None
        if attrs is not None and i < len(attrs.data):
            value = attrs.data[i].data.get("nn.name")
            if isinstance(value, StringAttr):
                name = value.data
        found.append(name or f"{prefix}{i}")
    return found


def declared_range(attrs: Any, index: int) -> tuple[float, float] | None:
    """The `nn.value_range` the importer recorded for argument `index` (from the model's
    metadata), if any."""
    from xdsl.dialects.builtin import DenseArrayBase

    if attrs is None or index >= len(attrs.data):
        return None
    value = attrs.data[index].data.get("nn.value_range")
    if not isinstance(value, DenseArrayBase):
        return None
    values = [float(v) for v in value.get_values()]
    return (values[0], values[1]) if len(values) == 2 and values[0] < values[1] else None
