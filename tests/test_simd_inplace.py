"""The primitives `runtime/kernels/simd.py` lowers in place of Numba's overloads (simd_min,
simd_max, simd_empty, simd_array), and the rule that keeps the kernels on them.

Numba's `min`, `max`, `np.empty` and `carray` are overloads: every argument type they meet
compiles a separate function, in every process of a cold start, and none of it is in the
on-disk cache (~40 ms each, a tenth of a model's first run). The kernels call the in-place
forms instead; the rule below reads every jitted function of runtime/ with `ast` and fails
on a call of the overloads, so that a new kernel does not bring the cost back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core import event

from qcc.runtime.kernels.simd import (
    simd_array,
    simd_empty,
    simd_i8_ptr,
    simd_i32_ptr,
    simd_max,
    simd_min,
)

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"
JIT_DECORATORS = {"njit", "jit", "cfunc", "leaf_cfunc"}
JIT_PRAGMA = "pragma: no cover - jitted"


@njit(cache=False)
def _minmax_pairs(a, b):  # pragma: no cover - jitted
    return simd_min(a, b), simd_max(a, b)


@pytest.mark.parametrize("a, b", [
    (3, -7), (-7, 3), (5, 5), (np.int8(-128), np.int64(300)), (np.uint8(200), np.int32(-1)),
    (1.5, -2.25), (np.float32(0.5), 2), (np.int64(-3), np.float32(-3.5)), (True, False),
    (np.int16(7), np.int16(-9)),
])
def test_min_max_match_python_in_value_and_type(a, b):
    """simd_min / simd_max give the value and type Numba's min / max give (the operands'
    unified type), from jitted code and from Python."""
    reference = njit(cache=False)(lambda x, y: (min(x, y), max(x, y)))
    got = _minmax_pairs(a, b)
    want = reference(a, b)
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]
    assert (simd_min(a, b), simd_max(a, b)) == (min(a, b), max(a, b))


def test_min_max_refuse_arrays():
    with pytest.raises(Exception, match="simd_min|No implementation|Invalid use"):
        njit(cache=False)(lambda x: simd_min(x, x))(np.zeros(3))


@njit(cache=False)
def _empty_and_views(n, a):  # pragma: no cover - jitted
    x = simd_empty(n, np.int16)
    y = simd_empty((n, 3), np.float32)
    x[:] = 7
    flat = simd_array(simd_i8_ptr(a.ctypes.data), (a.size,))
    rows = simd_array(simd_i8_ptr(a.ctypes.data), (2, a.size // 2))
    return x, y.shape, flat.copy(), rows.copy()


def test_empty_and_array_views():
    a = np.arange(-5, 5, dtype=np.int8)
    x, yshape, flat, rows = _empty_and_views(4, a)
    assert x.dtype == np.int16 and x.shape == (4,) and (x == 7).all()
    assert yshape == (4, 3)
    np.testing.assert_array_equal(flat, a)
    np.testing.assert_array_equal(rows, a.reshape(2, 5))
    assert simd_empty((2, 3), np.int32).shape == (2, 3)


def test_in_place_primitives_compile_nothing_apart():
    """Typing and lowering a kernel that uses them compiles no other function (Numba's
    overloads each would: one `numba:compile` event per argument type)."""
    names = []

    class Listener(event.Listener):
        def on_start(self, ev):
            d = ev.data.get("dispatcher")
            names.append(getattr(getattr(d, "py_func", d), "__qualname__", "?"))

        def on_end(self, ev):
            pass

    @njit(cache=False)
    def kernel(a, n):  # pragma: no cover - jitted
        out = simd_empty(n, np.int32)
        v = simd_array(simd_i32_ptr(out.ctypes.data), (n,))
        for i in range(n):
            v[i] = simd_min(simd_max(np.int32(a[i]), np.int32(-3)), np.int32(3))
        return out

    listener = Listener()
    event.register("numba:compile", listener)
    try:
        out = kernel(np.arange(-6, 6, dtype=np.int8), 12)
    finally:
        event.unregister("numba:compile", listener)
    np.testing.assert_array_equal(out, np.clip(np.arange(-6, 6), -3, 3))
    assert names == ["test_in_place_primitives_compile_nothing_apart.<locals>.kernel"], names


def _jitted_functions(tree: ast.AST, lines: list[str]):
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorated = False
        for d in node.decorator_list:
            f = d.func if isinstance(d, ast.Call) else d
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            decorated |= name in JIT_DECORATORS
        header = "".join(lines[node.lineno - 1:node.body[0].lineno - 1])
        if decorated or JIT_PRAGMA in header:
            yield node


def _overload_calls(fn: ast.FunctionDef):
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("min", "max", "carray"):
            yield f.id, node.lineno
        elif (isinstance(f, ast.Attribute) and f.attr in ("empty", "carray")
              and isinstance(f.value, ast.Name) and f.value.id in ("np", "numba")):
            yield f"{f.value.id}.{f.attr}", node.lineno


def test_jitted_runtime_code_uses_the_in_place_primitives():
    found = []
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        for fn in _jitted_functions(ast.parse(text), lines):
            for name, line in _overload_calls(fn):
                found.append(f"{path.relative_to(RUNTIME.parent)}:{line} {fn.name}: {name}(...)")
    assert not found, ("jitted code calls Numba overloads that compile apart on every cold "
                       "start; use simd_min / simd_max / simd_empty / simd_array:\n"
                       + "\n".join(sorted(set(found))))


def test_the_rule_sees_an_offending_kernel():
    src = ("@njit(cache=True)\n"
           "def k(a, n):  # pragma: no cover - jitted\n"
           "    out = np.empty(n, np.int8)\n"
           "    return min(a[0], a[1])\n")
    fn = next(_jitted_functions(ast.parse(src), src.splitlines(keepends=True)))
    assert sorted(_overload_calls(fn)) == [("min", 4), ("np.empty", 3)]


def test_empty_refuses_what_it_cannot_type():
    with pytest.raises(Exception, match="simd_empty|No implementation|Invalid use"):
        njit(cache=False)(lambda n: simd_empty(n, "int8"))(3)
    with pytest.raises(Exception, match="simd_empty|No implementation|Invalid use"):
        njit(cache=False)(lambda n: simd_empty((n, 1.5), np.int8))(3)


def test_empty_takes_a_dtype_object():
    out = njit(cache=False)(lambda n: simd_empty((n, 2), np.dtype(np.uint16)))(3)
    assert out.dtype == np.uint16 and out.shape == (3, 2)
