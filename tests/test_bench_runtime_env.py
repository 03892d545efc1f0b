"""bench/runtime.py's AVX2-only run: with NUMBA_CPU_NAME naming an AVX2-only CPU on a host with
AVX-512, the float executor's OpenBLAS and numpy run their AVX2 code too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "runtime.py"


@pytest.fixture(scope="module")
def bench():
    before = dict(os.environ)
    spec = importlib.util.spec_from_file_location("qcc_bench_runtime", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imported, not run
    # it changes no variable of this process (one BLAS thread here would change the float
    # results of later tests' calibrations)
    assert dict(os.environ) == before
    return module


AVX512_HOST = {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}


@pytest.mark.parametrize("cpu", ["haswell", "Skylake", "znver3", "x86-64-v3", "alderlake"])
def test_avx2_cpu_on_avx512_host_gets_avx2_libraries(bench, cpu):
    env = bench.avx2_only_libs({"NUMBA_CPU_NAME": cpu}, AVX512_HOST, [])
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    assert "AVX512_ICL" in env["NPY_DISABLE_CPU_FEATURES"].split()


@pytest.mark.parametrize("environ, flags, argv", [
    ({}, AVX512_HOST, []),                                      # the host's own run
    ({"NUMBA_CPU_NAME": "host"}, AVX512_HOST, []),
    ({"NUMBA_CPU_NAME": "icelake-server"}, AVX512_HOST, []),    # an AVX-512 target
    ({"NUMBA_CPU_NAME": "haswell"}, {"avx2", "fma"}, []),       # the host has no AVX-512
    ({"NUMBA_CPU_NAME": "haswell"}, AVX512_HOST, ["--no-start", "--host-libs"]),
])
def test_other_runs_keep_the_host_libraries(bench, environ, flags, argv):
    assert bench.avx2_only_libs(environ, flags, argv) == {}


def test_the_callers_settings_are_kept(bench):
    env = bench.avx2_only_libs({"NUMBA_CPU_NAME": "haswell", "OPENBLAS_CORETYPE": "Zen"},
                               AVX512_HOST, [])
    assert "OPENBLAS_CORETYPE" not in env and "NPY_DISABLE_CPU_FEATURES" in env


def test_the_header_names_the_kernels_openblas_runs(bench):
    """OPENBLAS_CORETYPE reaches numpy's OpenBLAS, and `_openblas_core` reports its choice
    (a kernel set below every host this runs on: AVX's on x86-64, plain ARMv8's on aarch64)."""
    import platform

    import numpy as np

    np.dot(np.ones((2, 2)), np.ones((2, 2)))
    if bench._openblas_core() is None:
        pytest.fail("numpy's BLAS is not OpenBLAS here: the benchmark cannot name its kernels")
    core = {"x86_64": "Sandybridge", "aarch64": "ARMV8"}[platform.machine()]
    code = (f"import importlib.util, numpy\n"
            f"s = importlib.util.spec_from_file_location('b', {str(BENCH)!r})\n"
            f"m = importlib.util.module_from_spec(s); s.loader.exec_module(m)\n"
            f"print(m._openblas_core())\n")
    env = dict(os.environ, OPENBLAS_CORETYPE=core)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == core
