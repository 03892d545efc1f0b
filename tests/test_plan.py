"""runtime/plan.py: the plan runner (straight-line fast path, observer/progress path) and the
plan's array serialization (packed per dtype; the artifact's weights.npz), with plain-Python
runners (no Numba)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qcc.runtime.plan import (
    Plan,
    PlanInputError,
    PlanRunner,
    Step,
    _arena_line,
    plan_from_arrays,
    plan_to_arrays,
)

RUNNERS = {
    "add": lambda xs, p: [xs[0] + xs[1]],
    "split": lambda xs, p: [xs[0][: p["at"]], xs[0][p["at"]:]],
    "scale": lambda xs, p: [xs[0] * p["k"]],
    "sink": lambda xs, p: [],
}


def _plan() -> Plan:
    # slot 0: the input; slot 1: a constant; 2 = 0 + 0; (3, 4) = split(2); 5 = 3 * k;
    # "sink" reads 5 and writes nothing; 6 = 5 + 1. Outputs: 6, 4 and the input itself.
    steps = [
        Step("add", (0, 0), (2,), {}, (), "a"),
        Step("split", (2,), (3, 4), {"at": 2}, (2,), "b"),
        Step("scale", (3,), (5,), {"k": np.float32(3.0)}, (3,), "c"),
        Step("sink", (5,), (), {}, (), "d"),
        Step("add", (5, 1), (6,), {}, (5,), "e"),
    ]
    return Plan(steps, 7, {1: np.array([10, 20], np.float32)}, [0], [6, 4, 0],
                [((4,), "float32")], [((2,), "float32"), ((2,), "float32"), ((4,), "float32")],
                ["x"], ["y", "z", "x"])


def test_straight_line_equals_the_stepwise_run():
    """The generated straight-line function (multi-output steps, a step with no result, a
    constant read at run time, freed slots, an input returned as an output) and the stepwise
    observer path give the same arrays."""
    runner = PlanRunner(_plan(), RUNNERS)
    x = np.array([1, 2, 3, 4], np.float32)
    seen = []
    stepwise = runner.run([x], observer=lambda step, results: seen.append(step.label))
    fast = runner.run([x])
    assert seen == ["a", "b", "c", "d", "e"]
    for y, z, same in (stepwise, fast):
        np.testing.assert_array_equal(y, np.array([2, 4], np.float32) * 3 + np.array([10, 20], np.float32))
        np.testing.assert_array_equal(z, np.array([6, 8], np.float32))
        assert same is x


def test_inputs_are_checked():
    runner = PlanRunner(_plan(), RUNNERS)
    with pytest.raises(PlanInputError, match="expected 1 input"):
        runner.run([])
    with pytest.raises(PlanInputError, match="shape"):
        runner.run([np.zeros(5, np.float32)])
    with pytest.raises(PlanInputError, match="dtype"):
        runner.run([np.zeros(4, np.float64)])


def test_missing_runner_is_named():
    with pytest.raises(KeyError, match="nope"):
        PlanRunner(Plan([Step("nope", (0,), (1,), {})], 2, {}, [0], [1], [((1,), "float32")],
                        [((1,), "float32")]), RUNNERS)


def test_arrays_round_trip():
    plan = _plan()
    back = plan_from_arrays(plan_to_arrays(plan))
    assert [s.kernel for s in back.steps] == [s.kernel for s in plan.steps]
    assert back.steps[2].params["k"] == 3.0
    np.testing.assert_array_equal(back.constants[1], plan.constants[1])
    assert back.output_names == ["y", "z", "x"]


def _typed_plan() -> Plan:
    """A plan whose steps carry arrays of several dtypes, shapes and layouts (what
    plan_to_arrays packs)."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (3, 5, 7)).astype(np.int8)
    params = {
        "w": w,
        "w_t": w.transpose(2, 0, 1),  # not C-contiguous: stored C-ordered
        "bias": rng.integers(-2**31, 2**31, 7).astype(np.int32),
        "big": np.arange(6, dtype=">i4").reshape(2, 3),  # big-endian: stored native
        "geom": np.array(9, np.int64),  # 0-d
        "none": np.zeros((0, 4), np.float32),
        "mask": np.array([True, False, True]),
        "ec": rng.standard_normal(13).astype(np.float32),
        "at": 2,
    }
    steps = [Step("scale", (0,), (1,), params, (), "a"),
             Step("add", (1, 2), (3,), {"lut": np.arange(256, dtype=np.int8)}, (1,), "b")]
    return Plan(steps, 4, {2: np.full((4,), 7, np.int16)}, [0], [3], [((4,), "float32")],
                [((4,), "float32")])


def test_arrays_are_packed_per_dtype():
    """One flat array per dtype (and the JSON document), whatever the number of params;
    each param comes back with its values, dtype (native byte order), shape, C-contiguous,
    writable, at a multiple of PACK_ALIGN bytes from its pack's start."""
    from qcc.runtime.plan import PACK_ALIGN

    plan = _typed_plan()
    arrays = plan_to_arrays(plan)
    assert sorted(arrays) == ["__plan__", "bool", "float32", "int16", "int32", "int64", "int8"]
    back = plan_from_arrays(arrays)
    want = {**plan.steps[0].params, **plan.steps[1].params}
    got = {**back.steps[0].params, **back.steps[1].params}
    assert got["at"] == 2
    for k, v in want.items():
        if not isinstance(v, np.ndarray):
            continue
        g = got[k]
        assert g.dtype == v.dtype.newbyteorder("=") and g.dtype.isnative, k
        assert g.shape == v.shape and g.flags.c_contiguous and g.flags.writeable, k
        np.testing.assert_array_equal(g, v)
        pack = arrays[g.dtype.name]
        assert np.shares_memory(g, pack) or g.size == 0
        assert (g.ctypes.data - pack.ctypes.data) % PACK_ALIGN == 0, k
    np.testing.assert_array_equal(back.constants[2], plan.constants[2])
    assert back.constants[2].dtype == np.int16


def test_weights_npz_is_deflated_and_loads_with_numpy(tmp_path):
    """The artifact's weights.npz: a real .npz (np.load reads it) of deflated
    entries, one per pack, that gives the plan back."""
    import zipfile

    from qcc.backends.numba import _deflated_npz

    plan = _typed_plan()
    path = tmp_path / "weights.npz"
    path.write_bytes(_deflated_npz(plan_to_arrays(plan)))
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
        assert len(z.infolist()) == 7
    with np.load(path, allow_pickle=False) as z:
        back = plan_from_arrays({k: z[k] for k in z.files})
    np.testing.assert_array_equal(back.steps[0].params["w_t"], plan.steps[0].params["w_t"])
    np.testing.assert_array_equal(back.steps[1].params["lut"], plan.steps[1].params["lut"])
    assert _deflated_npz(plan_to_arrays(plan)) == path.read_bytes()  # the same bytes every time


def test_plan_arrays_errors_are_one_line():
    bad = _plan()
    bad.steps[0].params["o"] = np.array([object()])
    with pytest.raises(TypeError, match=r"step 0 \(add\) param 'o': cannot serialize a object"):
        plan_to_arrays(bad)
    arrays = plan_to_arrays(_typed_plan())
    doc = json.loads(bytes(arrays["__plan__"]))
    old = dict(arrays, __plan__=np.frombuffer(json.dumps(dict(doc, format=1)).encode(), np.uint8))
    with pytest.raises(ValueError, match="unsupported plan format 1 .this runtime reads format 2"):
        plan_from_arrays(old)
    doc["steps"][1]["arrays"]["lut"][1] = arrays["int8"].size - 10  # runs past the pack
    corrupt = dict(arrays, __plan__=np.frombuffer(json.dumps(doc).encode(), np.uint8))
    with pytest.raises(ValueError, match=r"step 1 \(add\) param 'lut': .* outside the int8 pack"):
        plan_from_arrays(corrupt)


def test_parallel_first_run_forks_helpers(tmp_path):
    """With a compiler that allows helpers and the plan's slot specs, the first run forks
    helpers that run kernel groups from the back on zero inputs (here: plain-Python runners
    that note their process); the run's results are those of the straight-line path, and
    the helpers are gone when it returns."""
    import os
    import time

    from qcc.runtime.plan import ParallelCompiler

    seen = tmp_path / "pids"
    main = os.getpid()

    def noting(fn):
        def run(xs, p):
            with open(seen, "a") as f:
                f.write(f"{os.getpid()}\n")
            if os.getpid() == main:
                time.sleep(0.2)  # a compile, long enough for the helper to claim a group
            return fn(xs, p)
        return run

    class Two(ParallelCompiler):
        def workers(self, runners):
            return 1

    plan = _plan()
    plan.slot_specs = {0: ((4,), "float32"), 2: ((4,), "float32"), 3: ((2,), "float32"),
                       5: ((2,), "float32"), 1: ((2,), "float32")}
    runner = PlanRunner(plan, {k: noting(v) for k, v in RUNNERS.items()}, Two())
    x = np.array([1, 2, 3, 4], np.float32)
    first = runner.run([x])
    again = runner.run([x])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    pids = {int(line) for line in seen.read_text().split()}
    assert os.getpid() in pids and len(pids) == 2  # the run and one helper
    (helper,) = pids - {os.getpid()}
    with pytest.raises(ChildProcessError):
        os.waitpid(helper, os.WNOHANG)  # reaped


def test_parallel_first_run_groups_steps_by_compile_key(tmp_path):
    """Helpers split the work by what compiles, not by kernel name: steps of one kernel whose
    bound functions carry different `compile_key`s (e.g. two depthwise driver variants) are
    two groups, so a helper is forked for them and compiles only its own group's steps."""
    import os
    import time

    from qcc.runtime.plan import ParallelCompiler

    seen = tmp_path / "calls"
    main = os.getpid()

    def scale_bind(params):
        def run(xs, p):
            with open(seen, "a") as f:
                f.write(f"{os.getpid()} {params['variant']}\n")
            if os.getpid() == main:
                time.sleep(0.2)  # a compile, long enough for the helper to claim a group
            return [xs[0] * params["k"]]

        run.compile_key = ("scale", params["variant"])
        return run

    def scale(xs, p):
        return scale_bind(p)(xs, p)

    scale.bind = scale_bind

    class Two(ParallelCompiler):
        def workers(self, runners):
            return 1

    k = np.float32(2.0)
    steps = [Step("scale", (0,), (1,), {"k": k, "variant": "a"}, (), "s0"),
             Step("scale", (1,), (2,), {"k": k, "variant": "a"}, (1,), "s1"),
             Step("scale", (2,), (3,), {"k": k, "variant": "b"}, (2,), "s2")]
    plan = Plan(steps, 4, {}, [0], [3], [((2,), "float32")], [((2,), "float32")], ["x"], ["y"])
    plan.slot_specs = {i: ((2,), "float32") for i in range(4)}
    runner = PlanRunner(plan, {"scale": scale}, Two())
    y = runner.run([np.array([1, 2], np.float32)])[0]
    np.testing.assert_array_equal(y, np.array([8, 16], np.float32))
    calls = [line.split() for line in seen.read_text().splitlines()]
    helper = {variant for pid, variant in calls if int(pid) != main}
    assert helper == {"b"}  # the helper took the last group, variant b only
    assert [variant for pid, variant in calls if int(pid) == main] == ["a", "a", "b"]


def test_parallel_first_run_compiles_declared_units_once(tmp_path):
    """A bound function may declare its units of compile work (`compile_units`: a driver
    several steps share, each step's leaf): a helper compiles a unit by calling its
    compile(), without running the step; each unit compiles once, and the units of the
    step the run is at stay with the run."""
    import os
    import time

    from qcc.runtime.plan import ParallelCompiler

    seen = tmp_path / "calls"
    main = os.getpid()

    def note(what):
        with open(seen, "a") as f:
            f.write(f"{os.getpid()} {what}\n")

    def scale_bind(params):
        variant = params["variant"]

        def run(xs, p):
            if os.getpid() == main:
                time.sleep(0.2)  # a compile, long enough for the helper to claim units
            return [xs[0] * params["k"]]

        run.compile_units = ((("driver",), lambda: note("driver")),
                             (("leaf", variant), lambda: note(f"leaf-{variant}")))
        return run

    def scale(xs, p):
        return scale_bind(p)(xs, p)

    scale.bind = scale_bind

    class Two(ParallelCompiler):
        def workers(self, runners):
            return 1

    k = np.float32(2.0)
    steps = [Step("scale", (i,), (i + 1,), {"k": k, "variant": v}, (), f"s{i}")
             for i, v in enumerate("abc")]
    plan = Plan(steps, 4, {}, [0], [3], [((2,), "float32")], [((2,), "float32")], ["x"], ["y"])
    plan.slot_specs = {i: ((2,), "float32") for i in range(4)}
    runner = PlanRunner(plan, {"scale": scale}, Two())
    y = runner.run([np.array([1, 2], np.float32)])[0]
    np.testing.assert_array_equal(y, np.array([8, 16], np.float32))
    calls = [line.split() for line in seen.read_text().splitlines()]
    units = [what for _, what in calls]
    assert len(units) == len(set(units))  # each unit once
    assert "driver" not in units and "leaf-a" not in units  # step 0's: the run's own
    helper = {what for pid, what in calls if int(pid) != main}
    assert "leaf-b" in helper  # the helper took the first free unit


def _run_declared_units(tmp_path, units_of_step, n: int) -> tuple[list[tuple[int, str]], int]:
    """Run a plan of n steps (x + 1 each) whose step i declares the compile units
    `units_of_step(i)`, (key, cost, seconds a helper spends on it), with one helper; step 0
    takes 0.2 s in the run (time for the helper to pick its first unit). Returns the units
    compiled, (pid, key) in order, and the run's pid."""
    import os
    import time

    from qcc.runtime.plan import ParallelCompiler

    seen = tmp_path / "calls"
    main = os.getpid()

    def note(key, slow):
        def compile_unit():
            if os.getpid() != main:
                time.sleep(slow)  # the helper's compile
            with open(seen, "a") as f:
                f.write(f"{os.getpid()} {key}\n")
        return compile_unit

    def bind(params):
        at = params["at"]

        def run(xs, p):
            if os.getpid() == main and at == 0:
                time.sleep(0.2)
            return [xs[0] + np.float32(1)]

        run.compile_units = tuple((key, note(key, slow), cost)
                                  for key, cost, slow in units_of_step(at))
        return run

    def step_fn(xs, p):
        return bind(p)(xs, p)

    step_fn.bind = bind

    class Two(ParallelCompiler):
        def workers(self, runners):
            return 1

    steps = [Step("inc", (i,), (i + 1,), {"at": i}, (), f"s{i}") for i in range(n)]
    plan = Plan(steps, n + 1, {}, [0], [n], [((2,), "float32")], [((2,), "float32")], ["x"],
                ["y"])
    plan.slot_specs = {i: ((2,), "float32") for i in range(n + 1)}
    runner = PlanRunner(plan, {"inc": step_fn}, Two())
    y = runner.run([np.array([1, 2], np.float32)])[0]
    np.testing.assert_array_equal(y, np.array([1 + n, 2 + n], np.float32))
    calls = [line.split() for line in seen.read_text().splitlines()]
    return [(int(pid), key) for pid, key in calls], main


@pytest.mark.parametrize("big_at, helper_first", [(3, "big"), (6, "u1")])
def test_parallel_first_run_helper_starts_the_costliest_near_unit(tmp_path, big_at,
                                                                   helper_first):
    """A helper takes the costliest of the next few free units (`_Helpers.LOOKAHEAD`, by the
    costs units declare), so that a long compile needed soon is not left to the end; one
    further on waits its turn: the helper then takes the first free unit."""
    from qcc.runtime.plan import _Helpers

    assert (big_at - 1 < _Helpers.LOOKAHEAD) == (helper_first == "big")  # 0-based, free

    def units(at):  # the helper's compile takes 0.3 s: the run takes the next units itself
        return (("big", 3.0, 0.3),) if at == big_at else ((f"u{at}", 1.0, 0.3),)

    calls, main = _run_declared_units(tmp_path, units, 8)
    assert len(calls) == len({key for _, key in calls})  # each unit once at most
    assert [key for pid, key in calls if pid != main][0] == helper_first


def test_parallel_first_run_waits_on_its_own_units_first(tmp_path):
    """While the run waits for a unit of its step that a helper is compiling, it compiles the
    step's other free units (needed next) before a later step's: otherwise the helper, done
    with its unit, would take them while the run had nothing left but to wait."""
    units = {0: (("first", 1.0, 0.0),),
             1: (("kernel", 1.0, 0.8), ("leaf", 1.0, 0.0)),  # the helper's long compile
             2: (("later", 1.0, 0.0),)}
    calls, main = _run_declared_units(tmp_path, units.__getitem__, 3)
    by = dict((key, pid) for pid, key in calls)
    assert len(calls) == len(by)  # each unit once
    assert by["kernel"] != main  # the helper took step 1's first unit
    assert by["leaf"] == main  # and the run, waiting on it, took the step's other unit
    assert [key for pid, key in calls if pid == main] == ["leaf", "later"]



_FORMS_PLAN = """
import os, sys, time
import numpy as np
from qcc.runtime.plan import ParallelCompiler, Plan, PlanRunner, Step

SEEN = sys.argv[1]
MAIN = os.getpid()


def note(what):
    with open(SEEN, "a") as f:
        f.write(f"{'run' if os.getpid() == MAIN else 'helper'} {what}\\n")


def bind(params):
    at, formed = params["at"], params["formed"]

    def run(xs, p):
        note(f"kernel-{at}")
        if os.getpid() == MAIN and at == 0:
            time.sleep(0.2)  # a compile, long enough for the helper to take a unit
        return [xs[0] + np.float32(at)]

    def compile_unit():
        time.sleep(0.5 if formed else 0.1)  # the helper still at work when the run returns
        note(f"compile-{at}")

    run.compile_units = (((f"u{at}",), compile_unit, 1.0),)
    if formed:
        def form(xs, p):
            note(f"form-{at}")
            return [xs[0] + np.float32(at)]

        run.numpy_form = form
    return run


def step_fn(xs, p):
    return bind(p)(xs, p)


step_fn.bind = bind


class Two(ParallelCompiler):
    def workers(self, runners):
        return 1


steps = [Step("inc", (i,), (i + 1,), {"at": i, "formed": i % 2 == 1}, (), f"s{i}")
         for i in range(4)]
plan = Plan(steps, 5, {}, [0], [4], [((2,), "float32")], [((2,), "float32")], ["x"], ["y"])
plan.slot_specs = {i: ((2,), "float32") for i in range(5)}
runner = PlanRunner(plan, {"inc": step_fn}, Two())
x = np.array([1, 2], np.float32)
"""


def _forms_plan(seen):
    """The plan of `_FORMS_PLAN` (steps 1 and 3 with a NumPy form), in this process."""
    scope = {"__name__": "forms_plan"}
    exec(_FORMS_PLAN, scope)  # noqa: S102 - the test's own source
    return scope


def _notes(seen) -> list[str]:
    return seen.read_text().splitlines() if seen.exists() else []


def test_first_run_runs_numpy_forms_and_leaves_their_kernels_to_the_helper(tmp_path,
                                                                          monkeypatch):
    """A cold first run runs the NumPy form of the steps that have one; their units
    (deferred) are left to the helper, taken after every other unit and still compiling when
    the run returns; `finish` completes them (each once) and ends the helper."""
    import os
    import sys

    seen = tmp_path / "calls"
    monkeypatch.setattr(sys, "argv", ["plan", str(seen)])
    scope = _forms_plan(seen)
    runner, x = scope["runner"], scope["x"]
    y = runner.run([x])[0]
    np.testing.assert_array_equal(y, x + 6)
    first = _notes(seen)
    assert [n for n in first if n.startswith("run ")] == [
        "run kernel-0", "run form-1", "run kernel-2", "run form-3"]
    helper = [n.split()[1] for n in first if n.startswith("helper ")]
    assert helper[:1] == ["compile-2"]  # the kernel step's unit before any deferred one
    assert runner._pending is not None  # the helper goes on with the deferred units
    (pid,) = runner._pending.pids
    runner.finish()
    assert runner._pending is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    compiled = [n.split()[1] for n in _notes(seen) if "compile-" in n]
    assert sorted(compiled) == ["compile-1", "compile-2", "compile-3"]  # each once
    np.testing.assert_array_equal(runner.run([x])[0], x + 6)
    assert "form-" not in seen.read_text().split("run form-3", 1)[1]  # kernels from now on


def test_next_run_completes_the_deferred_units(tmp_path, monkeypatch):
    """The run after a first run that left deferred units takes them (compiling with the
    helper, the steps running their kernels), then ends the helper."""
    import os
    import sys

    seen = tmp_path / "calls"
    monkeypatch.setattr(sys, "argv", ["plan", str(seen)])
    scope = _forms_plan(seen)
    runner, x = scope["runner"], scope["x"]
    runner.run([x])
    (pid,) = runner._pending.pids
    n_first = len(_notes(seen))
    np.testing.assert_array_equal(runner.run([x])[0], x + 6)
    assert runner._pending is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    second = [n for n in _notes(seen)[n_first:] if n.startswith("run ")]
    assert [n for n in second if "kernel-" in n or "form-" in n] == [
        "run kernel-0", "run kernel-1", "run kernel-2", "run kernel-3"]
    compiled = [n.split()[1] for n in _notes(seen) if "compile-" in n]
    assert len(compiled) == len(set(compiled))  # no unit twice


def test_a_forked_process_leaves_the_parents_helpers_alone(tmp_path, monkeypatch):
    """A process forked after a cold first run inherits the runner but not its helpers: its
    next run neither waits for nor ends them (its kernels compile in-process), and the parent
    still completes their work."""
    import os
    import sys

    seen = tmp_path / "calls"
    monkeypatch.setattr(sys, "argv", ["plan", str(seen)])
    scope = _forms_plan(seen)
    runner, x = scope["runner"], scope["x"]
    runner.run([x])
    (pid,) = runner._pending.pids
    child = os.fork()
    if child == 0:  # pragma: no cover - the forked process
        code = 1
        try:
            ok = np.array_equal(runner.run([x])[0], x + 6) and runner._pending is None
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert runner._pending is not None and os.waitpid(pid, os.WNOHANG) in ((0, 0), (pid, 0))
    runner.finish()
    compiled = [n.split()[1] for n in _notes(seen) if n.startswith("helper compile-")
                or n.startswith("run compile-")]
    assert {"compile-1", "compile-3"} <= set(compiled)


def test_deferred_units_complete_at_exit(tmp_path):
    """A process that exits after its cold first run completes the deferred units first (the
    next process then finds every kernel in the cache): each compiled once, by the helper or
    by the exiting process, and no helper left behind."""
    import subprocess
    import sys

    seen = tmp_path / "calls"
    code = _FORMS_PLAN + "print(runner.run([x])[0].tolist())\nprint(runner._pending.pids[0])\n"
    r = subprocess.run([sys.executable, "-c", code, str(seen)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "[7.0, 8.0]"
    pid = int(r.stdout.splitlines()[1])
    compiled = sorted(n.split()[1] for n in _notes(seen) if "compile-" in n)
    assert compiled == ["compile-1", "compile-2", "compile-3"]
    assert not Path(f"/proc/{pid}").exists() or "zombie" not in Path(
        f"/proc/{pid}/status").read_text().lower()


# ---------------------------------------------------------------------------------------------
# fixed buffers (`_arena_line`): steps with `into` / `alias` run into a reused arena

def _fixed_runners(calls: list) -> dict:
    """Plain-Python runners: "addf" and "scalef" bind to functions with ``into`` (their
    kernel records its calls; "scalef" with decline=True declines: its step runs as usual
    and is copied), "view" to one with ``alias`` (a reshape), "dynview" returns a view of
    its input (no `into`), "neg" and "join" allocate."""
    def add_kernel(a, b, out):
        calls.append("addf")
        np.add(a, b, out=out)

    def scale_kernel(a, k, out):
        calls.append("scalef")
        np.multiply(a, k, out=out)

    def bind_add(params):
        def run(xs, p):
            return [xs[0] + xs[1]]
        run.into = lambda ins, outs: (add_kernel, (ins[0], ins[1], outs[0]))
        return run

    def bind_scale(params):
        def run(xs, p):
            return [xs[0] * p["k"]]
        run.into = lambda ins, outs: None if params.get("decline") else (
            scale_kernel, (ins[0], params["k"], outs[0]))
        return run

    def bind_view(params):
        def run(xs, p):
            return [xs[0].reshape(p["shape"])]
        run.alias = lambda ins: [ins[0].reshape(params["shape"])]
        return run

    def add(xs, p):
        return [xs[0] + xs[1]]

    add.bind = bind_add

    def scale(xs, p):
        return [xs[0] * p["k"]]

    scale.bind = bind_scale

    def view(xs, p):
        return [xs[0].reshape(p["shape"])]

    view.bind = bind_view
    return {"addf": add, "scalef": scale, "view": view,
            "dynview": lambda xs, p: [xs[0].reshape(-1)],
            "neg": lambda xs, p: [-xs[0]],
            "join": lambda xs, p: [xs[0] + xs[1]]}


def _fixed_plan() -> Plan:
    # 0 input [4]; 1 constant [4]. 2 = neg(0) (allocating, read by a fixed step: copied);
    # 3 = 2 + 2; 4 = view(3) [2, 2]; 5 = dynview(4) [4], a view of 3's buffer that lives to
    # the end (an output); 6, 7, 8: fixed steps after 3 and 4 die, which would reuse 3's
    # buffer if the view did not keep it; 9 = scalef declining (copied into its buffer);
    # 10 = join(5, 9). Outputs: 10 and 5 (a view of the arena: returned as a copy).
    f4 = ((4,), "float32")
    steps = [
        Step("neg", (0,), (2,), {}, (), "a"),
        Step("addf", (2, 2), (3,), {}, (2,), "b"),
        Step("view", (3,), (4,), {"shape": (2, 2)}, (3,), "c"),
        Step("dynview", (4,), (5,), {}, (4,), "d"),
        Step("addf", (1, 1), (6,), {}, (), "e"),
        Step("scalef", (6,), (7,), {"k": np.float32(3)}, (6,), "f"),
        Step("addf", (7, 1), (8,), {}, (7,), "g"),
        Step("scalef", (8,), (9,), {"k": np.float32(-1), "decline": True}, (8,), "h"),
        Step("join", (5, 9), (10,), {}, (9,), "i"),
    ]
    specs = {j: f4 for j in (0, 1, 2, 3, 5, 6, 7, 8, 9, 10)}
    specs[4] = ((2, 2), "float32")
    return Plan(steps, 11, {1: np.array([1, 2, 3, 4], np.float32)}, [0], [10, 5], [f4],
                [f4, f4], ["x"], ["y", "v"], slot_specs=specs)


def test_fixed_buffers_equal_the_stepwise_run_and_reuse_the_arena():
    """From the second run, steps with `into` are their kernel's call on arena buffers
    (reused: fewer buffers than slots written), an alias costs nothing, a view an allocating
    step returns keeps its buffer alive, a declined `into` is copied, and the outputs equal
    the stepwise run's, run after run, each output the caller's own."""
    calls: list = []
    plan = _fixed_plan()
    runner = PlanRunner(plan, _fixed_runners(calls))
    xs = [np.array([1, -2, 3, 5], np.float32) * k for k in (1, 2, 7)]
    expected = [runner.run([x], observer=lambda s, r: None) for x in xs]
    assert calls == []  # the stepwise run calls the runners themselves
    got = [runner.run([x]) for x in xs]
    assert calls.count("addf") == 3 * len(xs) and calls.count("scalef") == len(xs)
    for e, g in zip(expected, got):
        for a, b in zip(e, g):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[0][1], -2 * xs[0])  # run 1's output after runs 2, 3
    fn, buffers = _arena_line(plan, runner._steps)
    assert 1 <= len(buffers) < 6  # slots 2, 3, 6, 7, 8, 9 (4 is a view)
    # an arena slot's buffer is not shared with another slot alive at the same time
    assert len(buffers) >= 3


def test_fixed_buffers_are_not_reentrant_a_busy_arena_allocates():
    """While the arena's lock is held (a run in another thread), a run takes the
    allocating straight line and gives the same outputs."""
    calls: list = []
    runner = PlanRunner(_fixed_plan(), _fixed_runners(calls))
    x = np.array([4, 3, 2, 1], np.float32)
    first = runner.run([x])
    runner.run([x])
    n = len(calls)
    with runner._fixed_lock:
        busy = runner.run([x])
    assert len(calls) == n  # no kernel call: the allocating runners ran
    for a, b in zip(first, busy):
        np.testing.assert_array_equal(a, b)


def test_plan_without_fixed_steps_runs_the_straight_line():
    runner = PlanRunner(_plan(), RUNNERS)
    x = np.array([1, 2, 3, 4], np.float32)
    runner.run([x])
    runner.run([x])
    assert runner._fixed is False
