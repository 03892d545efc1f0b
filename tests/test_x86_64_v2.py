"""The integer runtime compiled for an x86 CPU without AVX2 or FMA (x86-64-v2: SSE4.2).

Such CPUs are still around: servers and laptops before Haswell (AVX1 at most), Atom-class
Celerons and Pentiums, and virtual machines that expose only x86-64-v2. Numba compiles for the
host's features, so on an AVX2 host the parent test run never compiles what those CPUs get.
Here the GEMM-path tests run in a child process with Numba compiling for x86-64-v2 (its CPU
name and its feature string, as a carried cache for that baseline names them,
`qcc.backends.numba.CACHE_BASELINES`): the "sse2" path is the default there, and every GEMM
case and chained model on it stays bit-exact with LiteRT's BUILTIN_REF, its depthwise and
element-wise kernels compiled for SSE4.2 as well. (x86-64-v2 code runs on every x86-64 CPU
from Nehalem on, this host included. The zoo models run the "sse2" path in the parent run.)"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, run_pytest_child

from qcc.backends.numba import CACHE_BASELINES
from qcc.runtime.kernels.simd import X86


def test_the_runtime_compiled_for_x86_64_v2(tmp_path):
    if not X86:  # aarch64: no x86 target to compile for; its paths run in the parent
        return
    v2 = CACHE_BASELINES["x86-64-v2"]
    target = {"NUMBA_CPU_NAME": v2["cpu"], "NUMBA_CPU_FEATURES": v2["features"]}
    env = {k: v for k, v in os.environ.items() if k != "QCC_INT8_GEMM"}
    probe = subprocess.run(
        [sys.executable, "-c", "from qcc.runtime.kernels import simd; "
         "print(simd.HAS_AVX2, simd.int8_gemm_path(), sorted(simd.TARGET_FEATURES))"],
        capture_output=True, text=True, cwd=ROOT, env={**env, **target}, check=True)
    avx2, path, features = probe.stdout.split(" ", 2)
    assert (avx2, path) == ("False", "sse2") and "fma" not in features, probe.stdout
    output = run_pytest_child(
        tmp_path, target, "tests/test_runtime_int8.py", "tests/test_int8_madd.py",
        "-m", "not zoo", "-k", "(every_gemm_path and sse2) or isas_this_host or sse2_is_the",
        "-rA")
    summary = output.strip().splitlines()[-1]
    assert int(summary.split(" passed")[0].split()[-1]) >= 10, summary
    for name in ("test_runtime_int8.py::test_every_gemm_path_bit_exact[conv_2d_same-sse2]",
                 "test_int8_madd.py::test_sse2_is_the_int16_path_of_x86_cpus_without_avx2"):
        assert f"PASSED tests/{name}" in output, summary
