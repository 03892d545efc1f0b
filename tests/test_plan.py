"""runtime/plan.py: the plan runner (straight-line fast path, observer/progress path) and the
plan's array serialization, with plain-Python runners (no Numba)."""

from __future__ import annotations

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
