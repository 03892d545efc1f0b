"""The AVX-512 VNNI path on every host: its tests, run with the instructions emulated.

The VNNI kernels (int8_vnni: the convolution GEMM with its fused requantization, the
fully-connected leaf, the u8 depthwise ring) run only where the CPU has AVX-512 VNNI; on other
hosts the tests that force each integer GEMM path (`QCC_INT8_GEMM`) cover only the paths the
host runs. Here those tests run once more in a child process with
QCC_SIMD_EMULATE=avx512vnni: every AVX-512 instruction the kernels call computed by generic IR
(`simd.SIMD_EMULATIONS`, each checked against the instruction's definition by
test_simd_emulation.py), so the VNNI path's own code (packing, corrections, tiles, epilogues,
drivers) is checked against LiteRT's BUILTIN_REF on any CPU, the zoo models included when the
zoo tier is on. On a host with VNNI the same tests also ran natively in this session; the
emulated run then checks the emulation itself against the oracle.

The two fused-requantization tests (`vnni_native`: they call the VNNI kernels directly) run
only here on a host without VNNI (the parent run deselects them: one child compiles the
emulated kernels for all). Left out: the "avxvnni" path's cases (their instruction is emulated
in the parent run already on hosts without it); nothing else of the VNNI selection."""

from __future__ import annotations

from conftest import run_pytest_emulating_vnni


def test_the_vnni_path_under_emulation(tmp_path):
    output = run_pytest_emulating_vnni(
        tmp_path, "tests/test_runtime_int8.py", "tests/test_int8_depthwise_variants.py",
        "tests/test_fold_pad.py", "-k", "vnni and not avxvnni", "-rA")
    summary = output.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 53, summary  # the every-path cases, the epilogue and depthwise tests,
    # the folded PADs (11, on the vnni path)
    for name in ("test_vnni_fused_requant_exact", "test_vnni_fused_requant_ties"):
        assert f"PASSED tests/test_runtime_int8.py::{name}" in output, summary
    folded = "PASSED tests/test_fold_pad.py::test_pad_folded_into_convolution_is_bit_exact"
    assert output.count(folded) == 11 and f"{folded}[depthwise5x5_valid_all_sides-vnni]" in output
