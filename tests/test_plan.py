"""runtime/plan.py: the plan runner (straight-line fast path, observer/progress path) and the
plan's array serialization (packed per dtype; the artifact's weights.npz), with plain-Python
runners (no Numba)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qcc.runtime.plan import Plan, PlanInputError, PlanRunner, Step, plan_from_arrays, plan_to_arrays

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


def test_weights_npz_is_lzma_and_loads_with_numpy(tmp_path):
    """The artifact's weights.npz: a real .npz (np.load reads it) of LZMA-compressed
    entries, one per pack, that gives the plan back."""
    import zipfile

    from qcc.backends.numba import _lzma_npz

    plan = _typed_plan()
    path = tmp_path / "weights.npz"
    path.write_bytes(_lzma_npz(plan_to_arrays(plan)))
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_LZMA}
        assert len(z.infolist()) == 7
    with np.load(path, allow_pickle=False) as z:
        back = plan_from_arrays({k: z[k] for k in z.files})
    np.testing.assert_array_equal(back.steps[0].params["w_t"], plan.steps[0].params["w_t"])
    np.testing.assert_array_equal(back.steps[1].params["lut"], plan.steps[1].params["lut"])
    assert _lzma_npz(plan_to_arrays(plan)) == path.read_bytes()  # the same bytes every time


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
