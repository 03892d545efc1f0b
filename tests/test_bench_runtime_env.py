"""bench/runtime.py's runs for a narrower CPU: with NUMBA_CPU_NAME naming an AVX2-only CPU on a
host with AVX-512, Numba compiles with that CPU's feature string, not the host's; with it, or
a CPU without AVX2 on a host with AVX2, the float executor's OpenBLAS and numpy run that CPU's
code too."""

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


AVX512_HOST = {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}
AVX2_HOST = {"avx", "avx2", "fma"}
V2_FEATURES = "+64bit,+cmov,+cx16,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3"


@pytest.mark.parametrize("cpu", ["haswell", "Skylake", "znver3", "x86-64-v3", "alderlake"])
def test_avx2_cpu_on_avx512_host_gets_avx2_libraries(bench, cpu):
    env = bench.target_libs({"NUMBA_CPU_NAME": cpu}, AVX512_HOST, [])
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    disabled = env["NPY_DISABLE_CPU_FEATURES"].split()
    assert "AVX512_ICL" in disabled and "X86_V3" not in disabled and "AVX2" not in disabled
    features = env["NUMBA_CPU_FEATURES"].split(",")
    assert "+avx2" in features and "+fma" in features
    assert not any(f.startswith("+avx512") for f in features)
    assert ("+avxvnni" in features) == (cpu == "alderlake")


def test_the_avx2_feature_string_is_x86_64_v3s(bench):
    """The benchmark's copy (it cannot import qcc before numpy loads) of the baseline's."""
    from qcc.backends.numba import CACHE_BASELINES

    assert bench.AVX2_FEATURES == CACHE_BASELINES["x86-64-v3"]["features"]


def test_the_host_features_option_keeps_numbas_host_string(bench):
    env = bench.target_libs({"NUMBA_CPU_NAME": "haswell"}, AVX512_HOST, ["--host-features"])
    assert "NUMBA_CPU_FEATURES" not in env and env["OPENBLAS_CORETYPE"] == "Haswell"
    env = bench.target_libs({"NUMBA_CPU_NAME": "haswell"}, AVX512_HOST, ["--host-libs"])
    assert set(env) == {"NUMBA_CPU_FEATURES"}


@pytest.mark.parametrize("host", [AVX2_HOST, AVX512_HOST])
@pytest.mark.parametrize("cpu, blas", [
    ("x86-64-v2", "Nehalem"), ("nehalem", "Nehalem"), ("goldmont", "Nehalem"),
    ("sandybridge", "Sandybridge"), ("ivybridge", "Sandybridge"), ("btver2", "Sandybridge"),
])
def test_a_cpu_without_avx2_gets_libraries_without_avx2(bench, host, cpu, blas):
    """An x86-64-v2 run (the sse2 GEMM path's target, its features named) on an AVX2 or
    AVX-512 host: OpenBLAS's SSE or AVX kernels and numpy's loops below AVX2, whatever numpy
    names them."""
    env = bench.target_libs({"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": V2_FEATURES}, host, [])
    assert env["OPENBLAS_CORETYPE"] == blas
    disabled = set(env["NPY_DISABLE_CPU_FEATURES"].split())
    assert disabled & {"X86_V3", "AVX2"} and "AVX512_ICL" in disabled
    if blas == "Nehalem" and "AVX2" in disabled:  # numpy < 2.4 names AVX itself
        assert "AVX" in disabled


@pytest.mark.parametrize("environ, flags, argv", [
    ({}, AVX512_HOST, []),                                      # the host's own run
    ({"NUMBA_CPU_NAME": "host"}, AVX512_HOST, []),
    ({"NUMBA_CPU_NAME": "icelake-server"}, AVX512_HOST, []),    # an AVX-512 target
    ({"NUMBA_CPU_NAME": "haswell"}, AVX2_HOST, []),             # the host has no AVX-512
    ({"NUMBA_CPU_NAME": "sandybridge"}, {"avx"}, []),           # nor AVX2
    ({"NUMBA_CPU_NAME": "x86-64-v2"}, {"sse4_2"}, []),          # nor AVX
    ({"NUMBA_CPU_NAME": "cortex-a72"}, {"asimd"}, []),          # not x86
    ({"NUMBA_CPU_NAME": "haswell"}, AVX512_HOST, ["--no-start", "--host-libs",
                                                   "--host-features"]),
    ({"NUMBA_CPU_NAME": "x86-64-v2", "NUMBA_CPU_FEATURES": V2_FEATURES}, AVX2_HOST,
     ["--host-libs"]),
    # a CPU without AVX2 named alone: Numba compiles qcc's kernels with the host's AVX2
    ({"NUMBA_CPU_NAME": "x86-64-v2"}, AVX2_HOST, []),
    ({"NUMBA_CPU_NAME": "sandybridge", "NUMBA_CPU_FEATURES": "+avx,+avx2"}, AVX2_HOST, []),
])
def test_other_runs_keep_the_host_libraries(bench, environ, flags, argv):
    assert bench.target_libs(environ, flags, argv) == {}


def test_the_callers_settings_are_kept(bench):
    env = bench.target_libs({"NUMBA_CPU_NAME": "haswell", "OPENBLAS_CORETYPE": "Zen"},
                            AVX512_HOST, [])
    assert "OPENBLAS_CORETYPE" not in env and "NPY_DISABLE_CPU_FEATURES" in env
    env = bench.target_libs({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma"},
                            AVX512_HOST, [])
    assert "NUMBA_CPU_FEATURES" not in env and "OPENBLAS_CORETYPE" in env


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
