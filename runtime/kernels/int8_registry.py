"""The int8 runners: how the steps of a compiled plan run.

The Numba backend (`qcc/backends/numba.py`) compiles a quantized module into a *plan*: a
list of steps `(kernel name, input slots, output slots, params)`. Two registries connect an
op to the code that runs it:

* *lowerings*, registered against the op class with ``@int8_lowering(nn.XOp)`` (the protocol
  shared with the float kernels, `registry.py`): ``lower(op) -> (kernel_name, params)`` or
  ``(kernel_name, params, operand_indices)``. Runs once, at compile time, in-process (it may
  use xdsl and qcc). It reads everything from the op — shapes, quantized types (float32
  scales, zero points), constant operands, properties — and precomputes all that the kernel
  needs: multipliers and shifts (`qcc.runtime.fixedpoint`), packed weights, padding, clamp
  bounds. `params` is a flat ``dict[str, value]`` whose values are numpy arrays, ints,
  floats, bools, strings, or (nested) lists/tuples of those (arrays are stored in the
  artifact's weights.npz, packed per dtype: they come back as C-contiguous views; the rest
  JSON-encoded; tuples come back as lists).
  `operand_indices`, if given, lists the op operands passed to the runner at run time (e.g.
  ``[0]`` when the filter and bias were folded into `params`); by default every operand is
  passed. Returning ``None`` means "no int8 kernel for this instance" (the backend reports a
  clear error naming the op).

* ``RUNNERS`` (this module): kernel name -> *runner* ``run(inputs, params) ->
  list[np.ndarray]``. `inputs` is the list of operand arrays (int8 storage values for
  quantized tensors, in the order of `operand_indices`), `params` the dict the lowering
  returned (arrays may be read-only: never write them), and the result is one array per op
  result, in result order, with the storage dtype of the result type (int8, or float32 for
  `quant.dcast`). A runner must not modify its inputs (they may be live elsewhere). Kernel
  names are global: prefix them with the family (``"conv2d_i8"``, ``"add_i8"``...). Runners
  are keyed by name, not by op: a plan is data, and the artifact runs it without qcc.
  ``@runner(..., elementwise="unary" | "binary")`` declares that the kernel's result at a
  position depends only on its operands' stored values there (and on the channel, the last
  axis): the backend may then fuse chains of such steps into one table (`ELEMENTWISE`).

Registering, in a family module ``runtime/kernels/int8_<family>.py``::

    import numpy as np

    from qcc.dialects import nn                                  # lowerings only
    from ..fixedpoint import mbqm, njit, quantize_multiplier    # names, not module aliases
    from .int8_registry import runner
    from .registry import int8_lowering
    from .int8_lowering import qparams, constant_array          # compile-time helpers

    @njit(cache=True, nogil=True)
    def _relu_loop(x, m, shift, zp_in, zp_out, lo, hi, out): ...

    @runner("relu_i8", elementwise="unary")
    def run_relu(inputs, params):
        x = inputs[0]
        out = np.empty(x.shape, np.int8)
        _relu_loop(x.reshape(-1), params["m"], params["shift"], ..., out.reshape(-1))
        return [out]

    @int8_lowering(nn.ReluOp, nn.Relu6Op)
    def lower_relu(op):
        s_in, zp_in = qparams(op.operands[0])
        ...
        return "relu_i8", {"m": m, "shift": shift, ...}

and add the family to ``INT8_FAMILIES`` below (a missing module is skipped, so the list may
name families that do not exist yet). An op declared ``int8=KERNEL`` must have a lowering
(tests/test_conformance.py checks it bit for bit against LiteRT's reference kernels); one
declared ``Fallback(...)`` must not (registering it is refused).

Rules that keep the `--emit=numba` artifact self-contained (it inlines this module,
`runtime/fixedpoint.py`, `runtime/plan.py` and the family modules into one module, the
artifact's kernels.py, shipped as kernels.py.xz and imported by its model.py):

1. Runner code, and everything it calls, needs only numpy, numba, math and the stdlib.
2. Top-level imports of ``xdsl``, ``qcc`` and relative imports are stripped from the
   inlined source, and every function decorated with ``@int8_lowering`` is dropped, so
   lowering functions (and only they) may use compile-time helpers (``int8_lowering``,
   ``common``, the dialects: ``nn.ReluOp``...). Top-level statements outside lowerings must
   not name those (a table keyed by op class belongs inside the lowering). Import helper
   *names* (``from ..fixedpoint import mbqm``), not module aliases; ``from .. import
   fixedpoint as fp`` also works (``fp`` becomes the artifact's own module), but nothing
   else does.
3. Top-level names are shared across all inlined modules: prefix private helpers with the
   family (``_conv_im2col``, not ``_im2col``); the artifact writer fails on a clash.
4. Jitted functions use ``@njit(cache=True)`` (a second process then starts warm; the cache
   honours ``NUMBA_CACHE_DIR``).

Start-up: a kernel compiles when a plan first calls it, so a plan compiles exactly the
kernels it uses. `NumbaParallelCompile` is the plan runner's `compiler`: on a first run with
an empty cache it lets helper processes compile the plan's kernel groups alongside the run
(`runtime/plan.py`), with Numba's cache writes made safe between processes
(`_lock_cache_saves`).

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

Runner = Callable[[list, dict], list]

RUNNERS: dict[str, Runner] = {}
"""kernel name -> runner(inputs, params) -> list of result arrays."""

ELEMENTWISE: dict[str, str] = {}
"""kernel name -> "unary" or "binary", for the runners declared element-wise (fusible)."""

INT8_FAMILIES = (
    "int8_quant",
    "simd",
    "int8_madd",
    "int8_vnni",
    "int8_conv",
    "int8_depthwise",
    "int8_elementwise",
    "int8_activation",
    "int8_pooling",
    "int8_shape",
    "int16_kernels",
)
"""Modules of `qcc.runtime.kernels` that register int8 lowerings and runners, in the order
the artifact inlines them (a module that does not exist is skipped)."""


def runner(*kernel_names: str, elementwise: str | None = None) -> Callable[[Runner], Runner]:
    """Register a runner under the kernel names `kernel_names`; `elementwise` ("unary",
    "binary") declares it element-wise per channel (see `ELEMENTWISE`)."""
    if elementwise not in (None, "unary", "binary"):
        raise ValueError(f"elementwise must be 'unary' or 'binary', got {elementwise!r}")

    def register(fn: Runner) -> Runner:
        for name in kernel_names:
            if name in RUNNERS and RUNNERS[name] is not fn:
                raise AssertionError(f"two int8 runners registered for {name!r}")
            RUNNERS[name] = fn
            if elementwise is not None:
                ELEMENTWISE[name] = elementwise
        return fn

    return register


def channel_rows(per_channel: np.ndarray, span: int) -> np.ndarray:
    """Per-channel kernel arguments repeated over whole rows of channels, about `span`
    values (at least one row), C-contiguous: a kernel then runs flat blocks of that length,
    value j of a block being channel j mod C, contiguous loops that vectorize whatever C is
    (a loop over a row of few channels would run scalar)."""
    return np.ascontiguousarray(np.tile(per_channel, max(1, span // max(per_channel.size, 1))))


class DirectCall:
    """A jitted kernel called from a bound step (`PlanRunner`) without Numba's per-call
    dispatch: ``DirectCall(kernel).call(*args)``. The first call goes through the dispatcher
    (it compiles, or loads from the cache, the overload for these argument types); `call`
    then becomes that overload's compiled entry point, which unboxes the arguments directly.
    The dispatcher's type resolution (`typeof` and a lookup, ~25 ns per argument) and the
    keyword handling it skips are ~0.3-0.5 µs of a 10-20 argument call: a sizeable part of
    the many small steps of a model (an int8 ADD of 6k elements runs in ~1.3 µs).

    Contract: every call passes arguments of the first call's Numba types. A bound step
    guarantees it: its fixed arguments are made once, and its operand arrays have the plan's
    dtype, rank and layout (the run makes them C-contiguous first). When the first call's
    types do not name an overload exactly (Numba converted an argument), every call keeps
    going through the dispatcher."""

    __slots__ = ("kernel", "call")

    def __init__(self, kernel):
        self.kernel = kernel
        self.call = self._first

    def _first(self, *args):
        result = self.kernel(*args)
        types = tuple(self.kernel.typeof_pyval(a) for a in args)
        overload = self.kernel.overloads.get(types)
        if overload is not None:
            self.call = overload.entry_point
        return result


def fixed_call(kernel, args: tuple) -> tuple[Callable, tuple]:
    """A bound step's ``into`` result (see `plan._arena_line`) for the jitted `kernel` and its
    fixed arguments `args`: the compiled entry point of the overload for exactly their types
    when there is one (the arguments are fixed, so their types are too), else the
    dispatcher (which compiles or converts on the call)."""
    if isinstance(kernel, DirectCall):
        kernel = kernel.kernel
    overload = kernel.overloads.get(tuple(kernel.typeof_pyval(a) for a in args))
    return (overload.entry_point if overload is not None else kernel), tuple(args)


_loaded = False


def import_families(families) -> list[str]:
    """Import the modules `families` of this package (a missing one is skipped); returns
    those found. (The float kernel registry imports its families with this too.)"""
    found = []
    package = __name__.rsplit(".", 1)[0]
    for family in families:
        try:
            importlib.import_module(f"{package}.{family}")
            found.append(family)
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{family}":
                raise
    return found


def load_int8_families() -> list[str]:
    """Import every existing family module (registering its lowerings and runners); returns
    the module names that were found."""
    global _loaded
    package = __name__.rsplit(".", 1)[0]
    found = import_families(INT8_FAMILIES)
    _loaded = True
    try:
        _flush_stale_caches([importlib.import_module(f"{package}.{f}") for f in found])
    except Exception:  # a cache check must never break loading  # pragma: no cover
        pass
    return found


def _flush_stale_caches(modules: list) -> None:
    """Numba's on-disk cache of a function is keyed by its own file only: editing
    `fixedpoint.py` (or a family another family imports from) leaves callers' cached machine
    code stale. Per module, store a digest of the *other* int8 sources next to its cache and
    flush the module's cached functions when it changes."""
    import hashlib
    import os
    import sys

    fixedpoint = sys.modules.get(__name__.rsplit(".", 2)[0] + ".fixedpoint")
    sources = {}
    for m in [fixedpoint, *modules]:
        if m is not None and getattr(m, "__file__", None):
            with open(m.__file__, "rb") as f:
                sources[m.__name__] = f.read()
    for m in modules:
        h = hashlib.sha256()
        for name in sorted(sources):
            if name != m.__name__:
                h.update(name.encode() + b"\0" + sources[name])
        digest = h.hexdigest()
        dispatchers = [
            v for v in vars(m).values()
            if getattr(v, "_cache", None) is not None and hasattr(v._cache, "flush")
            and getattr(v, "py_func", None) is not None and v.py_func.__module__ == m.__name__
        ]
        if not dispatchers:
            continue
        path = dispatchers[0]._cache._cache_path
        stamp = os.path.join(path, f"{m.__name__.rsplit('.', 1)[-1]}.qcc-deps")
        try:
            with open(stamp) as f:
                if f.read() == digest:
                    continue
        except OSError:
            pass
        for d in dispatchers:
            d._cache.flush()
        try:
            os.makedirs(path, exist_ok=True)
            with open(stamp, "w") as f:
                f.write(digest)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# start-up: compiling a plan's kernels in parallel (see runtime/plan.py's `ParallelCompiler`)


class NumbaParallelCompile:
    """How many helper processes compile a plan's Numba kernels during its first run:
    ``$QCC_COMPILE_WORKERS`` if set (0: none), else one per CPU beyond the first (at most 3),
    on Linux (the helpers are forked), and only when the on-disk cache of the runners'
    modules has no entry yet (a fresh NUMBA_CACHE_DIR or __pycache__: with entries the run
    mostly loads, and forking would only add work)."""

    def workers(self, runners: list) -> int:
        text = os.environ.get("QCC_COMPILE_WORKERS", "").strip()
        if text:
            try:
                n = int(text)
            except ValueError:
                n = 0
        else:
            try:
                cpus = len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cpus = os.cpu_count() or 1
            n = min(cpus - 1, 3)
        if n <= 0 or not sys.platform.startswith("linux"):
            return 0
        entries = self._cache_entries(runners)
        if not entries or any(entries):
            return 0
        return n

    def prepare(self) -> None:
        if not _lock_cache_saves():
            raise RuntimeError("cannot make Numba's cache writes safe between processes")

    def first_run(self, runners: list):
        """Cold (a runner's module has no cache entries yet: its kernels compile): set up
        Numba's compiler once, before the helpers fork (`_init_numba_compiler`). Warm (every
        module has entries): nothing to set up; the first run loads the kernels without
        Numba's refresh of its target context (`_loads_without_refresh`), its registries
        loaded only if something compiles after all."""
        entries = self._cache_entries(runners, rescan=True)
        if entries and all(entries):
            return _loads_without_refresh()
        _init_numba_compiler()
        return None

    def _cache_entries(self, runners: list, rescan: bool = False) -> list[bool]:
        """Per on-disk cache of the runners' modules, whether it has entries: scanned once
        per first run (`first_run` scans, `workers` then reuses the scan; ids alone could
        match a later plan's runners made where a freed plan's were, and the cache has
        changed since)."""
        key = tuple(map(id, runners))
        if rescan or getattr(self, "_entries", (None,))[0] != key:
            self._entries = (key, [_cache_has_entries(path, base)
                                   for path, base in _runner_caches(runners)])
        return self._entries[1]


def _init_numba_compiler() -> None:
    """What Numba does on a process's first compile or cache load (~0.15 s: its typing and
    lowering registries loaded, the LLVM code generator made), done before a plan's first
    run: before the helpers are forked, so that they inherit it instead of each doing it
    again, and with `_quick_blas_probe` (which saves ~0.2 s of a warm start)."""
    try:
        from numba.core.registry import cpu_target

        with _quick_blas_probe():
            cpu_target.typing_context.refresh()
            cpu_target.target_context.refresh()
        cpu_target.target_context.codegen()
    except Exception:  # an optimization only  # pragma: no cover
        pass


@contextmanager
def _quick_blas_probe():
    """While Numba loads its registries, numba.np.arraymath is imported, and its import
    probes for BLAS (the flag `_HAVE_BLAS`, which only np.correlate / np.convolve read) with
    `numba.np.linalg.ensure_blas`: an import of scipy.linalg.cython_blas, that is of all of
    scipy.linalg (~0.2 s, a fifth of a warm start; no qcc kernel calls BLAS). In this block
    the probe only asks whether scipy is installed (every scipy Numba supports has
    cython_blas, so the flag gets the same value); `ensure_blas` itself is restored after,
    so np.dot & co. still import scipy.linalg when they compile. Nothing is changed when
    arraymath is already imported."""
    if "numba.np.arraymath" in sys.modules:
        yield
        return
    import importlib.util

    from numba.np import linalg

    original = linalg.ensure_blas

    def probe():
        try:
            found = importlib.util.find_spec("scipy") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ImportError("scipy 0.16+ is required for linear algebra")

    linalg.ensure_blas = probe
    try:
        yield
    finally:
        linalg.ensure_blas = original
        arraymath = sys.modules.get("numba.np.arraymath")
        if getattr(arraymath, "ensure_blas", None) is probe:
            arraymath.ensure_blas = original


@contextmanager
def _loads_without_refresh():
    """In this block, Numba loads a cached function (`Cache.load_overload`) without first
    refreshing the target context: that refresh imports and installs Numba's typing and
    lowering registries (~0.15-0.25 s, a fifth of a warm start on a 2-core Zen 3), which
    only compiling needs (a compile refreshes both contexts itself). A cached function
    needs only the NRT (its allocations), initialized here. Restored after the block; left
    as Numba's when its cache class is not the one this was written for."""
    try:
        from numba.core import caching
        from numba.core.runtime import nrt

        cls = caching.Cache
        original = cls.__dict__["load_overload"]
        if not (hasattr(cls, "_load_overload")
                and hasattr(cls, "_guard_against_spurious_io_errors")):
            raise AttributeError("numba.core.caching.Cache")
    except (ImportError, AttributeError, KeyError):
        yield
        return

    def load_overload(self, sig, target_context):
        nrt.rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    cls.load_overload = load_overload
    try:
        yield
    finally:
        cls.load_overload = original


def _runner_caches(runners: list) -> set:
    """(cache folder, file name base) of the on-disk Numba caches of the modules that define
    `runners` (those with a jitted, cached function)."""
    found = set()
    for name in {getattr(fn, "__module__", None) for fn in runners}:
        module = sys.modules.get(name) if name else None
        path = getattr(module, "__file__", None)
        if module is None or not path:
            continue
        base = os.path.splitext(os.path.basename(path))[0]
        for v in list(vars(module).values()):
            cache = getattr(v, "_cache", None)
            if getattr(getattr(v, "py_func", None), "__module__", None) == name and hasattr(
                    cache, "_cache_file") and getattr(cache, "_cache_path", None):
                found.add((cache._cache_path, base))
                break
    return found


def _cache_has_entries(path: str, base: str) -> bool:
    """True if Numba's cache folder `path` holds an index with entries for the file `base`
    (an index flushed empty, e.g. by `_flush_stale_caches`, is a small file)."""
    try:
        with os.scandir(path) as it:
            return any(e.name.startswith(base + ".") and e.name.endswith(".nbi")
                       and e.stat().st_size > 200 for e in it)
    except OSError:
        return False


def _lock_cache_saves() -> bool:
    """Make Numba's cache writes safe between processes: `IndexDataCacheFile.save` reads the
    index, picks a data file name, writes both; two processes saving two signatures of one
    function at once could leave an index naming the other's data. Each save holds an
    exclusive lock (flock) on the cache folder. Idempotent; False if it cannot be done."""
    try:
        import fcntl

        from numba.core import caching
    except ImportError:
        return False
    cls = getattr(caching, "IndexDataCacheFile", None)
    if cls is None or not hasattr(cls, "save"):
        return False
    if getattr(cls, "_qcc_locked_save", False):
        return True
    unlocked = cls.save

    def save(self, key, data):
        path = getattr(self, "_cache_path", None)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (OSError, TypeError):
            return unlocked(self, key, data)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return unlocked(self, key, data)
        finally:
            os.close(fd)

    cls.save = save
    cls._qcc_locked_save = True
    return True
