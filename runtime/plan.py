"""A compiled plan and its run loop: what the Numba backend produces and the artifact runs.

Imports only numpy and the standard library (the `--emit=numba` artifact inlines it).

    plan = Plan(steps, n_slots, constants, input_slots, output_slots, input_specs, output_specs)
    outputs = run_plan(plan, inputs, RUNNERS)

A step is ``Step(kernel, inputs, outputs, params, free, label)``: the runner
``RUNNERS[kernel](arrays, params) -> list`` reads the environment slots `inputs` and writes
`outputs`; the slots in `free` die after the step (their last use) and are released at once.
`constants` pre-fills slots (quantized constants that a kernel takes at run time).
From the second run, the steps whose bound function has ``into`` (or ``alias``) run on an
arena of fixed buffers reused along the plan (`_arena_line`): one kernel call each, with
its arguments made once.

Serialization (`plan_to_arrays` / `plan_from_arrays`): the numpy arrays of the steps' params
and the constants are packed into one flat array per dtype (named by the dtype: "int8",
"int32", "int64", "float32"...), each array at a 64-byte aligned offset; everything else,
and each array's (dtype, offset, shape), goes into one JSON document stored as a uint8 array
under "__plan__". A handful of arrays instead of one per param: the artifact's weights.npz
then has a few entries, not 240-400 (each entry of a zip costs ~230 bytes of headers).

The first run compiles the kernels (Numba, on their first call). With a `compiler`
(`PlanRunner(plan, runners, compiler)`, see `ParallelCompiler`) that allows it, and the
plan's `slot_specs`, helper processes forked for that run compile kernels alongside it. The
work is split into units, in order of first use (`_Units`): those a bound step function
declares (`compile_units`: e.g. a depthwise driver, its fill and fix leaves, the layer's
tap leaf, each with a function that compiles it), else one per `compile_key` (default: the
kernel name), compiled by running its steps on zero inputs of their shapes. The run takes
the units of the step it is at; each helper takes the costliest of the next few free units
(by the costs units declare); a run waiting for a helper's unit compiles the step's other
free units, else those of later steps, meanwhile, then loads the helper's work from the
on-disk cache (`_Helpers`).

A cheap step may also have an exact NumPy form (its bound function's ``numpy_form``: same
signature, the same bits, nothing to compile; e.g. QUANTIZE, ADD, a pool, a table lookup).
Its units are then deferred: in that first run the step runs its NumPy form, and
the helpers compile its kernels after every other unit, alongside the run and after it
returns, so that its first result does not wait for them. The next run (or `finish`, also
called at the interpreter's exit) takes what is left of that work, compiling with the
helpers, then ends them; from then on the steps run their kernels.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PLAN_FORMAT = 2
"""Version of `plan_to_arrays`' layout (2: arrays packed per dtype; 1: one entry per array)."""
PACK_ALIGN = 64
"""Bytes: every array starts at a multiple of this in its dtype's pack, so that a view of it
is as aligned as the pack itself (a fresh numpy allocation: 16 bytes or more)."""
CALLABLE_KERNEL = "__callable__"
"""Kernel name of an in-process step whose params hold a Python callable under "fn"
(`fn(inputs) -> list`): float islands. Such a plan cannot be serialized."""


class PlanInputError(ValueError):
    """The inputs given to a plan do not match its signature."""


@dataclass
class Step:
    kernel: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: dict[str, Any]
    free: tuple[int, ...] = ()
    label: str = ""


@dataclass
class Plan:
    steps: list[Step]
    n_slots: int
    constants: dict[int, np.ndarray]
    input_slots: list[int]
    output_slots: list[int]
    input_specs: list[tuple[tuple[int, ...], str]]
    """(shape, numpy dtype name) per input; -1 for a dynamic dim."""
    output_specs: list[tuple[tuple[int, ...], str]]
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    slot_specs: dict[int, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    """(shape, numpy dtype name) of the slots steps read and write, where known and static:
    a step can then run alone on zero inputs (to compile its kernels ahead of the run)."""


class ParallelCompiler:
    """What `PlanRunner` needs to compile a plan's kernels in helper processes during the
    first run (the Numba side is `int8_registry.NumbaParallelCompile`)."""

    def workers(self, runners: list[Callable]) -> int:
        """How many helper processes to fork for a first run calling `runners` (0: none)."""
        return 0

    def prepare(self) -> None:
        """Called once before the helpers are forked."""

    def first_run(self, runners: list[Callable]):
        """Called once in the running process before a plan's first run calling `runners`
        (with or without helpers): the compiler's per-process set-up. Returns a context
        manager the first run runs in (None: none)."""
        return None


def check_inputs(plan: Plan, inputs: Sequence[Any], specs=None) -> list[np.ndarray]:
    """The inputs as arrays, checked against the plan's shapes and dtypes (`specs`: the
    plan's input specs with numpy dtypes, precomputed by PlanRunner)."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if specs is None:
        specs = [(tuple(s), np.dtype(d)) for s, d in plan.input_specs]
    if len(inputs) != len(specs):
        raise PlanInputError(f"expected {len(specs)} input(s), got {len(inputs)}")
    arrays = []
    for i, (x, (shape, dtype)) in enumerate(zip(inputs, specs)):
        if x.__class__ is not np.ndarray:
            x = np.asarray(x)
        if x.shape != shape and (
            len(x.shape) != len(shape) or any(w >= 0 and w != g for w, g in zip(shape, x.shape))
        ):
            raise PlanInputError(f"input {i}: expected shape {list(shape)}, got {list(x.shape)}")
        if x.dtype != dtype:
            raise PlanInputError(f"input {i}: expected dtype {dtype}, got {x.dtype}")
        arrays.append(x)
    return arrays


def _progress(i: int, n: int, label: str) -> None:
    text = f"\rqcc: compiling kernels [{i + 1}/{n}] {label}"[:100]
    sys.stderr.write(text.ljust(100) if i + 1 < n else "\r" + " " * 100 + "\r")
    sys.stderr.flush()


@contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off for a block, as it was after: a first run is
    Numba compiling or loading its kernels, ~10^5 short-lived objects whose collections,
    each scanning every object the process holds, took ~0.45 s of a 5 s cold start (hand,
    2-core Zen 3; ~30 MB more at the peak). Helper processes forked meanwhile inherit it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class PlanRunner:
    """Runs a plan; resolves the runners once. The first run (Numba compiling or loading the
    kernels, Python's cyclic garbage collector paused: `_gc_paused`) and a run with an
    `observer` step through an environment list, the first printing a progress line on
    stderr while the kernels compile when stderr is a terminal; every other run is one
    generated straight-line function: over an arena of fixed buffers (`_arena_line`, made at
    the second run) when steps allow it, else, or while another thread runs it, allocating
    each step's results (`_straight_line`).

    A runner may carry a ``bind`` attribute: ``runner.bind(params)`` is then called once per
    step, here, and returns the function the step runs (same signature as the runner, same
    results), typically with its params decoded and its kernel arguments prepared. That
    function may carry a ``compile_key`` (hashable): steps with equal keys compile the same
    kernels, the unit of work of the first run's helper processes (default: the kernel
    name), or ``compile_units``, its units of compile work (`_Units`), and ``into`` or
    ``alias``, its form on fixed buffers (`_arena_line`).

    With a `compiler` (`ParallelCompiler`) that allows helpers and the plan's `slot_specs`,
    the first run is a step loop with helper processes compiling units of its kernels
    alongside it (`_Helpers`); a step whose bound function carries ``numpy_form`` (an exact
    NumPy form of the step, same signature and results) runs that form instead, its units
    left to the helpers, which go on after the run returns; the next run (or `finish`) is
    again a step loop that takes what is left of the compile work, then ends them. Every
    later run is the straight-line function."""

    def __init__(self, plan: Plan, runners: dict[str, Callable],
                 compiler: ParallelCompiler | None = None):
        self.plan = plan
        self._compiler = compiler
        missing = sorted({s.kernel for s in plan.steps if s.kernel != CALLABLE_KERNEL
                          and s.kernel not in runners})
        if missing:
            raise KeyError(f"no runner for kernel(s) {', '.join(missing)}")
        self._steps = []
        for s in plan.steps:
            if s.kernel == CALLABLE_KERNEL:
                fn = s.params["fn"]
                self._steps.append((_callable_runner(fn), s.inputs, s.outputs, {}, s.free))
            else:
                fn = runners[s.kernel]
                bind = getattr(fn, "bind", None)
                if bind is not None:
                    # the runner decodes this step's params once: `bind(params)` returns a
                    # function with the runner's signature
                    fn = bind(s.params)
                self._steps.append((fn, s.inputs, s.outputs, s.params, s.free))
        self._initial = [None] * plan.n_slots
        for k, v in plan.constants.items():
            self._initial[k] = v
        self._warm = False
        self._specs = [(tuple(sh), np.dtype(d)) for sh, d in plan.input_specs]
        self._straight = _straight_line(plan, self._steps)
        self._fixed = None  # `_arena_line`'s function, made at the second run (False: none)
        self._fixed_lock = threading.Lock()
        self._pending = None  # the first run's helpers, still compiling deferred units

    def run(self, inputs: Sequence[Any], observer: Callable | None = None) -> list[np.ndarray]:
        """Run the plan; `observer(step, results)`, if given, is called after every step with
        the list of its result arrays (it must not modify them)."""
        plan = self.plan
        arrays = check_inputs(plan, inputs, self._specs)
        if not self._warm:
            self._warm = True  # whatever happens below, try the parallel compile once only
            with _gc_paused(), ExitStack() as scope:
                if self._compiler is not None:
                    context = self._compiler.first_run([f for f, *_ in self._steps])
                    if context is not None:
                        scope.enter_context(context)
                helpers = _Helpers.start(self)
                done = False
                try:
                    results = self._stepwise(arrays, observer, _isatty(), helpers)
                    done = True
                    return results
                finally:
                    if helpers is not None:
                        if done and helpers.pending():
                            self._keep_compiling(helpers)
                        else:
                            helpers.stop()
        if self._pending is not None:
            helpers, self._pending = self._pending, None
            if helpers.owner == os.getpid():  # not in a process forked from the owner
                try:
                    with _gc_paused():
                        return self._stepwise(arrays, observer, False, helpers)
                finally:
                    helpers.stop()
        if observer is None:
            if self._fixed is None:
                made = _arena_line(plan, self._steps)
                self._fixed = made[0] if made is not None else False
            if self._fixed and self._fixed_lock.acquire(blocking=False):
                try:
                    return self._fixed(*arrays)
                finally:
                    self._fixed_lock.release()
            return self._straight(*arrays)
        return self._stepwise(arrays, observer, False, None)

    def run_numpy_forms(self, inputs: Sequence[Any],
                        observer: Callable | None = None) -> list[np.ndarray]:
        """Run the plan as a cold first run does: every step with a NumPy form
        (``numpy_form``) runs that form, the others their kernels; the same results as
        `run` (what the tests check, step by step with `observer`)."""
        arrays = check_inputs(self.plan, inputs, self._specs)
        return self._stepwise(arrays, observer, False, None, forms=True)

    def finish(self) -> None:
        """Compile what the first run left to its helpers (its steps' deferred units, see
        `numpy_form`), with them, and end them; nothing when none is left. Called at the
        interpreter's exit (so that the on-disk cache is complete for the next process);
        the next run does the same on its way."""
        helpers, self._pending = self._pending, None
        if helpers is not None and helpers.owner == os.getpid():
            try:
                with _gc_paused():
                    helpers.finish()
            finally:
                helpers.stop()

    def _keep_compiling(self, helpers: _Helpers) -> None:
        """After a first run that left deferred units: the helpers go on; the next run or
        `finish` (at exit, with a weak reference: a runner freed before ends them instead)
        completes their work."""
        import atexit
        import weakref

        helpers.first = False
        self._pending = helpers
        helpers.on_free = weakref.finalize(self, _end_processes, list(helpers.pids),
                                           helpers.owner)
        ref = weakref.ref(self)

        def at_exit():
            runner = ref()
            if runner is not None:
                runner.finish()

        helpers.at_exit = at_exit
        atexit.register(at_exit)

    def _stepwise(self, arrays, observer, show, helpers, forms=False) -> list[np.ndarray]:
        plan = self.plan
        env = list(self._initial)
        for slot, x in zip(plan.input_slots, arrays):
            env[slot] = x
        n = len(self._steps)
        deferred = helpers.work.deferred_step if helpers is not None and helpers.first else None
        if forms:
            deferred = [callable(getattr(fn, "numpy_form", None)) for fn, *_ in self._steps]
        for i, (fn, ins, outs, params, free) in enumerate(self._steps):
            if show:
                _progress(i, n, plan.steps[i].kernel)
            if deferred is not None and deferred[i]:
                fn = fn.numpy_form  # its kernels compile in a helper meanwhile
            elif helpers is not None:
                helpers.claim(i)
            results = fn([env[j] for j in ins], params)
            if observer is not None:
                observer(plan.steps[i], results)
            for o, r in zip(outs, results):
                env[o] = r
            for d in free:
                env[d] = None
        if show:
            _progress(n - 1, n, "")
        return [env[j] for j in plan.output_slots]

    __call__ = run


class _Helpers:
    """The helper processes of a parallel first run (see the module docstring).

    Units of compile work (`_Units`, see the module docstring) are claimed in a shared
    anonymous mapping, one byte each: 0 free, 1 taken by the run, 2 compiled by a helper,
    3 + k taken by helper k. The run claims a step's units when it reaches the step; while a
    live helper compiles one, the run compiles meanwhile the step's other free units, else the
    first free unit of a later step (or waits), then loads the helper's kernels from the
    cache. Each helper claims the costliest of the next few free units (`take`: those the run
    needs soonest but has not reached). The units of the first step are the run's before the
    helpers start. A claim is atomic (`take`, under a lock the processes share), so no unit
    is compiled twice; the compiler's `prepare` makes concurrent cache writes safe.

    Deferred units (`_Units.deferred`: only steps with a NumPy form use them) are taken last:
    in the first run (`first`) the run neither takes nor waits for them, and a helper takes
    one only when no other unit is free; after the run the helpers go on with them, and
    `finish` (or the next run's claims) completes them."""

    FREE, RUN, DONE, HELPER = 0, 1, 2, 3
    LOOKAHEAD = 4
    WAIT_S = 300.0
    LOCK_S = 5.0
    MAX_HELPERS = 8

    def __init__(self, runner: PlanRunner, work: _Units, state, lock, pids: list[int]):
        self.runner = runner
        self.work = work
        self.state = state
        self.lock = lock
        self.pids = pids
        self.first = True  # the first run: deferred units are the helpers' alone
        self.owner = os.getpid()  # the helpers' parent: only it may end or wait for them
        self.on_free = None  # ends the helpers if the runner is freed with work left
        self.at_exit = None  # completes that work at the interpreter's exit

    @classmethod
    def start(cls, runner: PlanRunner) -> _Helpers | None:
        compiler, plan = runner._compiler, runner.plan
        if compiler is None or not plan.slot_specs or not hasattr(os, "fork"):
            return None
        import threading

        if threading.active_count() != 1:
            return None  # forking a process with other threads risks their locks
        fns = [f for f, *_ in runner._steps]
        work = _Units(plan, fns)
        try:
            n = min(compiler.workers(fns), len(work.keys) - 1, cls.MAX_HELPERS)
        except Exception:
            return None
        if n <= 0:
            return None
        import mmap

        import multiprocessing

        state = mmap.mmap(-1, len(work.keys))
        lock = multiprocessing.get_context("fork").Lock()
        for i, s in enumerate(plan.steps):  # in-process steps stay with the run
            if s.kernel == CALLABLE_KERNEL:
                for g in work.of_step[i]:
                    state[g] = cls.RUN
        if not work.deferred_step[0]:
            for g in work.of_step[0]:  # so do the first step's: the run starts on them
                state[g] = cls.RUN
        compiler.prepare()
        sys.stderr.flush()
        sys.stdout.flush()
        pids = []
        for k in range(n):
            pid = os.fork()
            if pid == 0:  # a helper: compile units, never return into the caller's code
                code = 0
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 1)
                    os.dup2(devnull, 2)
                    _helper_loop(cls(runner, work, state, lock, []), cls.HELPER + k)
                except BaseException:
                    code = 1
                os._exit(code)
            pids.append(pid)
        return cls(runner, work, state, lock, pids)

    def take(self, g: int | None, who: int) -> int | None:
        """Atomically mark unit g as `who`'s if it is free (None: a helper's pick, the
        costliest of the first `LOOKAHEAD` free units, the first of them on a tie: what the
        run needs soon, the long compiles started early, so that none is left alone at the
        end); return the unit taken, or None."""
        if not self.lock.acquire(timeout=self.LOCK_S):
            return None  # a helper died holding it (held for microseconds otherwise)
        try:
            if g is None:
                free = self._free()[:self.LOOKAHEAD]
                g = max(free, key=lambda h: (self.work.costs[h], -h), default=None)
            if g is None or self.state[g] != self.FREE:
                return None
            self.state[g] = who
            return g
        finally:
            self.lock.release()

    def _free(self, deferred: bool = True) -> list[int]:
        """The free units in order of first use, the deferred ones only when no other is
        free (and only if `deferred`)."""
        free = [h for h in range(len(self.state)) if self.state[h] == self.FREE]
        soon = [h for h in free if not self.work.deferred[h]]
        return soon or (free if deferred else [])

    def pending(self) -> bool:
        """Whether some unit is free or still being compiled by a helper."""
        return any(self.state[g] == self.FREE or self.state[g] >= self.HELPER
                   for g in range(len(self.state)))

    def finish(self) -> None:
        """Compile every free unit here (the helpers taking theirs alongside), waiting for
        those a helper is compiling."""
        for g in range(len(self.state)):
            if self.take(g, self.RUN) is not None:
                self.work.compile(self.runner, g)
            else:
                self._claim_unit(g, [])

    def claim(self, i: int) -> None:
        """Before step i runs: its units are taken by the run, or compiled by a helper (the
        run waits for a helper's unit, compiling free units meanwhile)."""
        units = self.work.of_step[i]
        for g in units:
            self._claim_unit(g, units)

    def _claim_unit(self, g: int, mine: list[int]) -> None:
        if self.take(g, self.RUN) is not None:
            return
        st = self.state[g]
        if st < self.HELPER:
            return
        pid = self.pids[st - self.HELPER]
        t0 = time.monotonic()
        while self.state[g] == st and time.monotonic() - t0 < self.WAIT_S:
            if not self._alive(pid):
                return  # the helper died: the run compiles what it needs itself
            # meanwhile, this step's other free units (needed next), else a later step's
            # (in the first run, not the deferred ones: its result does not wait for them)
            free = [h for h in mine if self.state[h] == self.FREE] or self._free(
                deferred=not self.first)
            if free and self.take(free[0], self.RUN) is not None:
                self.work.compile(self.runner, free[0])
                continue
            time.sleep(0.005)

    def _alive(self, pid: int) -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def stop(self) -> None:
        """End the helpers (their work left is of no use to this run) and reap them."""
        if self.on_free is not None:
            self.on_free.detach()
        if self.at_exit is not None:
            import atexit

            atexit.unregister(self.at_exit)
        _end_processes(self.pids, self.owner)
        self.state.close()


def _end_processes(pids: list[int], owner: int) -> None:
    """Kill and reap the helper processes `pids`, children of `owner`: nothing in another
    process (one forked from the owner after the first run inherits the runner, not the
    helpers)."""
    import signal

    if os.getpid() != owner:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class _Units:
    """The units of compile work of a plan's first run, in order of first use. A bound step
    function may declare its units, ``fn.compile_units = ((key, compile[, cost]), ...)``:
    compile() compiles (or loads) that part of its kernels without running the step, equal
    keys the same work (a driver several steps share, each step's leaf kernel), so that
    helpers compile the parts of one step in parallel; cost, its rough compile time relative
    to a leaf's (default `LEAF_COST`: a whole-convolution kernel declares ~4). Otherwise the
    step is one unit of `STEP_COST`, its ``compile_key`` (default: the kernel name),
    compiled by running the steps of that key on zero inputs of their shapes."""

    LEAF_COST = 1.0
    STEP_COST = 2.0  # a whole kernel: an element-wise op, a pool (~2x a leaf on Zen 3)

    def __init__(self, plan: Plan, fns: list[Callable]):
        self.plan = plan
        self.keys: list = []
        self.compilers: list = []  # per unit: its compile() or None (run its steps)
        self.costs: list[float] = []
        self.of_step: list[list[int]] = []
        index: dict = {}
        formed = [s.kernel != CALLABLE_KERNEL and callable(getattr(fn, "numpy_form", None))
                  for s, fn in zip(plan.steps, fns)]
        for s, fn in zip(plan.steps, fns):
            declared = getattr(fn, "compile_units", None)
            if declared is None:
                declared = ((getattr(fn, "compile_key", None) or s.kernel, None, self.STEP_COST),)
            units = []
            for key, compile_fn, *cost in declared:
                if key not in index:
                    index[key] = len(self.keys)
                    self.keys.append(key)
                    self.compilers.append(compile_fn)
                    self.costs.append(float(cost[0]) if cost else self.LEAF_COST)
                units.append(index[key])
            self.of_step.append(units)
        # the steps with a NumPy form run it in the first run (`deferred_step`); deferred
        # are the units only such steps use (a unit one of them shares with a kernel step,
        # e.g. FULLY_CONNECTED's rows leaf, compiles in the first run for that step)
        self.deferred_step = formed
        self.deferred = [True] * len(self.keys)
        for units, has_form in zip(self.of_step, formed):
            if not has_form:
                for g in units:
                    self.deferred[g] = False

    def compile(self, runner: PlanRunner, g: int) -> None:
        """Compile unit g (its compile(), else its steps run on zero inputs of their shapes,
        constants as they are, so that their kernels compile and land in the on-disk cache);
        errors are ignored (the run meets them again)."""
        if self.compilers[g] is not None:
            try:
                self.compilers[g]()
            except Exception:
                pass
            return
        plan = self.plan
        specs = plan.slot_specs
        for i, units in enumerate(self.of_step):
            if g not in units:
                continue
            fn, ins, _, params, _ = runner._steps[i]
            try:
                xs = [plan.constants[j] if j in plan.constants
                      else np.zeros(specs[j][0], specs[j][1]) for j in ins]
            except (KeyError, TypeError, ValueError):
                continue  # a slot without a static spec: the run compiles this step
            try:
                fn(xs, params)
            except Exception:  # zeros a kernel refuses: whatever compiled is cached anyway
                pass


def _helper_loop(helpers: _Helpers, me: int) -> None:
    """A helper's work: take a free unit (`_Helpers.take`), compile it, mark it compiled;
    until no unit is free."""
    while True:
        g = helpers.take(None, me)
        if g is None:
            return
        helpers.work.compile(helpers.runner, g)
        helpers.state[g] = _Helpers.DONE


def _straight_line(plan: Plan, steps: list) -> Callable:
    """The plan as one generated Python function of the inputs: every step a call with its
    slots as local variables, dead slots deleted after their last use. This is the hot path
    (no per-step loop, list indexing or bookkeeping: ~0.3 µs less per step than a run
    loop)."""
    names: dict[str, Any] = {}
    lines = []
    args = [f"v{j}" for j in plan.input_slots]
    for slot, value in plan.constants.items():
        names[f"v{slot}"] = value
    for i, (fn, ins, outs, params, free) in enumerate(steps):
        names[f"f{i}"] = fn
        names[f"p{i}"] = params
        lines += _call_lines(f"f{i}([{', '.join(f'v{j}' for j in ins)}], p{i})", outs, set())
        dead = [f"v{d}" for d in free if d not in plan.constants and d not in plan.output_slots]
        if dead:
            lines.append(f"del {', '.join(dead)}")
    lines.append(f"return [{', '.join(f'v{j}' for j in plan.output_slots)}]")
    # constants are globals of the generated function; a slot written by a step is a local
    source = f"def run({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in lines)
    scope: dict[str, Any] = dict(names)
    exec(compile(source, "<qcc plan>", "exec"), scope)  # noqa: S102 - generated from the plan
    return scope["run"]


def _call_lines(call: str, outs, copied: set[int]) -> list[str]:
    """The generated lines of an allocating step's `call` (its results go to the locals
    v<slot>), for `_straight_line` and `_arena_line`; a result whose slot is in `copied`
    goes into the arena buffer b<slot> instead."""
    if not any(o in copied for o in outs):
        if len(outs) == 1:
            return [f"v{outs[0]} = {call}[0]"]
        if outs:
            return [f"{', '.join(f'v{o}' for o in outs)}, = {call}"]
        return [call]
    lines = [f"r = {call}"]
    lines += [f"_copyto(b{o}, r[{k}])" if o in copied else f"v{o} = r[{k}]"
              for k, o in enumerate(outs)]
    return lines + ["del r"]


def _arena_line(plan: Plan, steps: list) -> tuple[Callable, list[np.ndarray]] | None:
    """The plan as a generated straight-line function over fixed buffers (the hot path of
    `PlanRunner.run`; None when no step can run so). Returns (function, its buffers).

    A bound step function may carry ``into(inputs, outputs)``: given fixed arrays for its
    inputs and outputs (C-contiguous, of the plan's shapes and dtypes), it returns
    ``(kernel, args)``, the call ``kernel(*args)`` that computes the step into the outputs,
    or None (the step then runs as usual and its results are copied into the outputs); or
    ``alias(inputs)``: its outputs are views of its inputs made once (a reshape). The slots
    such steps write get buffers of an arena, reused along the plan as slots die (best fit
    by size), made once: each of these steps is then one call with arguments made at bind
    time, no output allocation, no argument checks, no result list (on a model of ~170
    small steps, ~12 % of the run).

    The other steps (without `into`/`alias`, reading a plan input, or writing a plan output)
    run as in `_straight_line`; one that reads an arena slot may return a view of its
    buffer, so that buffer lives as long as the step's results; a result another step reads
    from the arena is copied there. An output that is a view of an arena buffer is copied
    before it is returned. The function is not reentrant: `PlanRunner` runs it under a
    lock, and the allocating straight line when the lock is taken."""
    specs = plan.slot_specs or {}
    n = len(steps)
    inputs, outputs = set(plan.input_slots), set(plan.output_slots)
    consts = plan.constants
    # the steps that run on fixed buffers, and the slots they write (arena slots)
    static = [False] * n
    arena: set[int] = set()
    for i, (fn, ins, outs, _params, _free) in enumerate(steps):
        if not (hasattr(fn, "into") or hasattr(fn, "alias")) or not outs:
            continue
        if any(j in inputs or j in outputs or (j not in consts and j not in specs) for j in ins):
            continue
        if any(o in outputs or o in inputs or o in consts or o not in specs for o in outs):
            continue
        if hasattr(fn, "alias") and not all(j in arena for j in ins):
            continue
        static[i] = True
        arena.update(outs)
    if not any(static):
        return None
    # slots a fixed-buffer step reads that an allocating step writes: copied to the arena
    for i, (fn, ins, outs, _params, _free) in enumerate(steps):
        if static[i]:
            arena.update(j for j in ins if j not in consts)
    # buffer groups (an alias shares its input's buffer) and when each group dies
    root: dict[int, int] = {}
    for i, (fn, ins, outs, _params, _free) in enumerate(steps):
        for o in outs:
            if o in arena:
                root[o] = root[ins[0]] if static[i] and hasattr(fn, "alias") else o
    end = {}  # the last step that writes or reads each slot (n: a plan output)
    for i, (_fn, ins, outs, _params, _free) in enumerate(steps):
        for j in (*outs, *ins):
            end[j] = i
    for j in outputs:
        end[j] = n
    for i in range(n - 1, -1, -1):  # an allocating step's results may view its arena inputs
        fn, ins, outs, _params, _free = steps[i]
        if static[i]:
            continue
        lives = max((i if o in arena else end.get(o, i) for o in outs), default=i)
        for j in ins:  # (a view of a view: the later step was extended first)
            end[j] = max(end.get(j, i), lives)
    group_end: dict[int, int] = {}
    for j in arena:
        r = root[j]
        group_end[r] = max(group_end.get(r, -1), end.get(j, -1))
    # buffers: allocated when a group's root is written, released after its last reader
    free_pool: list[np.ndarray] = []
    buffers: list[np.ndarray] = []
    views: dict[int, np.ndarray] = {}
    dying: dict[int, list[int]] = {}
    for r, e in group_end.items():
        dying.setdefault(e, []).append(r)
    held: dict[int, np.ndarray] = {}

    def take(nbytes: int) -> np.ndarray:
        fits = [k for k, b in enumerate(free_pool) if b.size >= nbytes]
        if fits:
            return free_pool.pop(min(fits, key=lambda k: free_pool[k].size))
        whole = np.empty(max(nbytes, 1) + PACK_ALIGN, np.uint8)
        start = (-whole.ctypes.data) % PACK_ALIGN
        buf = whole[start:start + max(nbytes, 1)]
        buffers.append(buf)
        return buf

    roots: set[int] = set()  # the buffers' allocations (filled below), read by `own`

    def own(a):
        """A plan output as the caller may keep it: a copy when it views an arena buffer
        (the next run overwrites it), else itself."""
        r = a
        while isinstance(r, np.ndarray) and isinstance(r.base, np.ndarray):
            r = r.base
        return a.copy() if id(r) in roots else a

    names: dict[str, Any] = {"_copyto": np.copyto, "_own": own}
    lines: list[str] = []
    args_in = [f"v{j}" for j in plan.input_slots]
    for slot, value in consts.items():
        names[f"v{slot}"] = value

    def ref(j: int) -> str:
        if j in views:
            names[f"b{j}"] = views[j]
            return f"b{j}"
        return f"v{j}"

    for i, (fn, ins, outs, params, free) in enumerate(steps):
        for o in outs:
            if o in arena and root[o] == o:
                shape, dtype = specs[o]
                dt = np.dtype(dtype)
                nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
                held[o] = take(nbytes)
                views[o] = held[o][:nbytes].view(dt).reshape(shape)
        in_arrays = [views[j] if j in views else consts.get(j) for j in ins]
        bound = None
        if static[i] and hasattr(fn, "alias"):
            for o, v in zip(outs, fn.alias(in_arrays)):
                views[o] = v
            bound = "alias"
        elif static[i]:
            bound = fn.into(in_arrays, [views[o] for o in outs])
        if bound == "alias":
            pass
        elif bound is not None:
            kernel, kargs = bound
            names[f"k{i}"], names[f"a{i}"] = kernel, tuple(kargs)
            lines.append(f"k{i}(*a{i})")
        else:
            names[f"f{i}"], names[f"p{i}"] = fn, params
            for o in outs:
                if o in arena:
                    names[f"b{o}"] = views[o]
            lines += _call_lines(f"f{i}([{', '.join(ref(j) for j in ins)}], p{i})", outs, arena)
            dead = [f"v{d}" for d in free if d not in consts and d not in outputs
                    and d not in arena]
            if dead:
                lines.append(f"del {', '.join(dead)}")
        for r in dying.get(i, []):
            free_pool.append(held.pop(r))
    roots.update(id(b.base) for b in buffers)
    lines.append(f"return [{', '.join(f'_own(v{j})' for j in plan.output_slots)}]")
    source = f"def run({', '.join(args_in)}):\n" + "".join(f"    {line}\n" for line in lines)
    scope: dict[str, Any] = dict(names)
    exec(compile(source, "<qcc plan, fixed buffers>", "exec"), scope)  # noqa: S102 - generated
    return scope["run"], buffers


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _callable_runner(fn):
    def run(inputs, params):
        return fn(inputs)

    return run


def run_plan(plan: Plan, inputs: Sequence[Any], runners: dict[str, Callable]) -> list[np.ndarray]:
    return PlanRunner(plan, runners).run(inputs)


# ---------------------------------------------------------------------------------------------
# Serialization


def _jsonable(v: Any, where: str) -> Any:
    if isinstance(v, (bool, str)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, where) for x in v]
    raise TypeError(f"{where}: cannot serialize a {type(v).__name__} in a plan")


class _Packer:
    """The per-dtype packs of `plan_to_arrays`: `add(array)` appends a C-contiguous copy of
    the array (native byte order) to its dtype's pack, at a `PACK_ALIGN`-byte boundary, and
    returns its record [dtype name, offset in elements, shape]."""

    def __init__(self):
        self.packs: dict[str, list[bytes]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, v: np.ndarray, where: str) -> list:
        dtype = v.dtype
        if dtype.kind not in "biufc" or dtype.fields is not None:
            raise TypeError(f"{where}: cannot serialize a {dtype} array in a plan")
        dtype = dtype.newbyteorder("=")
        name = dtype.name
        chunks = self.packs.setdefault(name, [])
        used = self.sizes.get(name, 0)
        pad = -used % PACK_ALIGN
        if pad:
            chunks.append(bytes(pad))
            used += pad
        data = np.ascontiguousarray(v, dtype=dtype).tobytes()
        chunks.append(data)
        self.sizes[name] = used + len(data)
        return [name, used // dtype.itemsize, list(v.shape)]

    def arrays(self) -> dict[str, np.ndarray]:
        """The packs (writable, as np.load's arrays are: Numba types a read-only array
        apart, and would compile its kernels again for it)."""
        return {name: np.frombuffer(bytearray(b"".join(chunks)), np.dtype(name))
                for name, chunks in self.packs.items()}


def plan_to_arrays(plan: Plan) -> dict[str, np.ndarray]:
    """The plan as a few flat arrays (an .npz's worth): one pack per dtype of the steps'
    array params and the constants, and "__plan__" (the JSON document of everything else,
    with each array's [dtype, offset, shape] in its pack). Raises TypeError for what a plan
    file cannot hold (a float island's callable, an object array)."""
    packer = _Packer()
    steps = []
    for i, s in enumerate(plan.steps):
        if s.kernel == CALLABLE_KERNEL:
            raise TypeError(
                f"step {i} ({s.label or 'float island'}) runs in-process Python (a float island:"
                " an op kept float, e.g. without an int8 kernel or for another target); such a"
                " model cannot be emitted as a self-contained Numba artifact (quantize for"
                " --target=numba)"
            )
        params: dict[str, Any] = {}
        packed: dict[str, list] = {}
        for k, v in s.params.items():
            where = f"step {i} ({s.kernel}) param {k!r}"
            if isinstance(v, np.ndarray):
                packed[k] = packer.add(v, where)
            else:
                params[k] = _jsonable(v, where)
        steps.append(
            {
                "kernel": s.kernel,
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "free": list(s.free),
                "label": s.label,
                "params": params,
                "arrays": packed,
            }
        )
    constants = [[slot, *packer.add(np.asarray(v), f"constant {slot}")]
                 for slot, v in sorted(plan.constants.items())]
    doc = {
        "format": PLAN_FORMAT,
        "n_slots": plan.n_slots,
        "steps": steps,
        "constants": constants,
        "input_slots": plan.input_slots,
        "output_slots": plan.output_slots,
        "input_specs": [[list(s), d] for s, d in plan.input_specs],
        "output_specs": [[list(s), d] for s, d in plan.output_specs],
        "input_names": plan.input_names,
        "output_names": plan.output_names,
        "slot_specs": [[k, list(sh), d] for k, (sh, d) in sorted(plan.slot_specs.items())],
    }
    arrays = packer.arrays()
    arrays["__plan__"] = np.frombuffer(json.dumps(doc, separators=(",", ":")).encode("utf-8"),
                                       np.uint8)
    return arrays


def plan_from_arrays(arrays: Any) -> Plan:
    """Inverse of `plan_to_arrays` (`arrays` may be an open NpzFile): every array param and
    constant is a C-contiguous view of its dtype's pack, with its dtype and shape (aligned
    as the pack is: see `PACK_ALIGN`). A record that does not fit its pack raises
    ValueError."""
    doc = json.loads(bytes(np.asarray(arrays["__plan__"])).decode("utf-8"))
    if doc.get("format") != PLAN_FORMAT:
        raise ValueError(f"unsupported plan format {doc.get('format')!r} (this runtime reads "
                         f"format {PLAN_FORMAT}: write the plan again with the same qcc)")
    packs: dict[str, np.ndarray] = {}

    def unpack(record: list, where: str) -> np.ndarray:
        name, offset, shape = record
        pack = packs.get(name)
        if pack is None:
            pack = np.asarray(arrays[name])
            if pack.ndim != 1 or pack.dtype != np.dtype(name):
                raise ValueError(f"plan pack {name!r} is a {pack.dtype} array of shape "
                                 f"{list(pack.shape)}, not a flat {name} array")
            packs[name] = pack
        size = 1
        for d in shape:
            size *= d
        if offset < 0 or min(shape, default=0) < 0 or offset + size > pack.size:
            raise ValueError(f"{where}: [{offset}, {offset + size}) is outside the {name} "
                             f"pack of {pack.size} elements")
        return pack[offset:offset + size].reshape(shape)

    steps = []
    for i, s in enumerate(doc["steps"]):
        params = dict(s["params"])
        for k, record in s["arrays"].items():
            params[k] = unpack(record, f"step {i} ({s['kernel']}) param {k!r}")
        steps.append(
            Step(s["kernel"], tuple(s["inputs"]), tuple(s["outputs"]), params,
                 tuple(s["free"]), s["label"])
        )
    constants = {int(slot): unpack(record, f"constant {slot}")
                 for slot, *record in doc["constants"]}
    return Plan(
        steps,
        doc["n_slots"],
        constants,
        list(doc["input_slots"]),
        list(doc["output_slots"]),
        [(tuple(s), d) for s, d in doc["input_specs"]],
        [(tuple(s), d) for s, d in doc["output_specs"]],
        list(doc.get("input_names", [])),
        list(doc.get("output_names", [])),
        {int(k): (tuple(sh), d) for k, sh, d in doc.get("slot_specs", [])},
    )
