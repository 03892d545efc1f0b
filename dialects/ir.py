"""IR utilities every layer uses: the model's main function, an op's location as text, a
one-phrase description of an op, and dense constants as numpy arrays.

They live with the dialects (the bottom layer: xDSL and numpy only) so that passes, the
runtime, the frontends and the driver share one definition instead of importing each other.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    FileLineColLoc,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    ModuleOp,
    NameLoc,
    Signedness,
    UnknownLoc,
)
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, Operation

__all__ = ["decode_dense", "describe_op", "element_dtype", "find_main", "location_text"]


def location_text(loc: Attribute | None) -> str | None:
    """The human text of an op location: the tensor name of a NameLoc, file:line:col, or None."""
    if loc is None or isinstance(loc, UnknownLoc):
        return None
    if isinstance(loc, NameLoc):
        return loc.desc.data
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    locations = getattr(loc, "locations", None)  # FusedLoc: the first named part
    if locations is not None:
        for part in locations.data:
            text = location_text(part)
            if text is not None:
                return text
    return None


def describe_op(op: Operation) -> str:
    """`custom op 'X'`, `op 'DEQUANTIZE'` (a builtin kept generic) or `op 'nn.foo'`."""
    if op.name == "nn.generic":
        name = op.properties["op_name"].data  # type: ignore[attr-defined]
        custom = op.properties.get("custom")
        if custom is not None and custom.value.data:  # type: ignore[attr-defined]
            return f"custom op '{name}'"
        return f"builtin op '{name}'"
    return f"op '{op.name}'"


def find_main(module_or_func: Operation) -> FuncOp:
    """The function a model runs: `module_or_func` itself if it is a func.func, else the
    module's `func.func @main`, or its only function. Raises ValueError naming the functions
    when there is no such function (TypeError for another kind of op)."""
    if isinstance(module_or_func, FuncOp):
        return module_or_func
    if not isinstance(module_or_func, ModuleOp):
        raise TypeError(f"expected a builtin.module or func.func, got '{module_or_func.name}'")
    funcs = [op for op in module_or_func.ops if isinstance(op, FuncOp)]
    for f in funcs:
        if f.sym_name.data == "main":
            return f
    if len(funcs) == 1:
        return funcs[0]
    if not funcs:
        raise ValueError("the module has no func.func")
    names = ", ".join("@" + f.sym_name.data for f in funcs)
    raise ValueError(f"no func.func @main among several functions ({names})")


def element_dtype(element_type: Attribute) -> np.dtype | None:
    """The numpy dtype that holds values of an IR element type at run time (the storage type
    for quantized types), or None if the runtime cannot hold it."""
    if isinstance(element_type, Float32Type):
        return np.dtype(np.float32)
    if isinstance(element_type, Float16Type):
        return np.dtype(np.float16)
    if isinstance(element_type, Float64Type):
        return np.dtype(np.float64)
    if isinstance(element_type, BFloat16Type):
        return np.dtype(np.float32)  # widened when decoded
    if isinstance(element_type, IndexType):
        return np.dtype(np.int64)
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width not in (8, 16, 32, 64):
            return None
        unsigned = element_type.signedness.data == Signedness.UNSIGNED
        return np.dtype(f"{'u' if unsigned else ''}int{width}")
    # Quantized element types (!quant.uniform<i8:f32, ...>) are held in their storage type.
    storage = getattr(element_type, "storage_type", None)
    if isinstance(storage, Attribute) and storage is not element_type:
        return element_dtype(storage)
    return None


def decode_dense(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The numpy array of a dense elements attribute, straight from its bytes (zero-copy for
    every type but bf16 and i1, which are widened). Read-only: kernels must not write it."""
    elt = attr.get_element_type()
    shape = tuple(int(d) for d in attr.get_shape())
    raw = attr.data.data
    if isinstance(elt, BFloat16Type):
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        arr = bits.view(np.float32)
    else:
        dtype = element_dtype(elt)
        if dtype is None:
            raise TypeError(f"cannot decode a dense constant of element type {elt}")
        if dtype == np.bool_:
            arr = np.frombuffer(raw, dtype=np.uint8) != 0
        else:
            arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
            if not dtype.isnative:
                arr = arr.astype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if arr.size == 1 and n != 1:
        arr = np.broadcast_to(arr.reshape(()), shape)  # splat
    else:
        arr = arr.reshape(shape)
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr
