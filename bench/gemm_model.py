"""The integer GEMM's K loop on CPUs not at hand (aarch64; x86 with AVX-VNNI), estimated.

    python bench/gemm_model.py [--cpus neoverse-n1 neoverse-v1 cortex-a76 cortex-a72
                                       alderlake sapphirerapids znver3]

qcc's GEMM tiles (`int8_madd.madd_tile_ir`: the K loop the kernels compile) are
cross-compiled by llvmlite, Numba's own LLVM, for each CPU, and the loop body of each tile is
run through `llvm-mca` (LLVM's static pipeline model of that CPU; Debian package `llvm`).
Printed per CPU and tile shape (rows × 8-channel blocks): cycles per K step, int8
multiply-accumulates per cycle, and the byte path's throughput over the int16 one's that the
CPU would otherwise run: on aarch64 "dot" (sdot) over "portable", on x86 "avxvnni" (the
256-bit vpdpbusd) over "avx2" (vpmaddwd). Each byte path uses its instruction only on CPUs
that have it (dot products, ARMv8.2+; AVX-VNNI, or AVX-512 VNNI with VL); on others
(cortex-a72, znver3) it is printed as what it is there, the instruction emulated in
generic IR (never the default there).

This is a model, not a timing: it leaves out the epilogue, the patch rows and memory
stalls, and llvm-mca's scheduling models may be older than the LLVM that compiles the code.
Timings under qemu mean nothing (`.ci/aarch64-emulated` checks correctness only; qemu runs
no VNNI instruction).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

import llvmlite.binding as llvm

from qcc.runtime.kernels import int8_madd

ARCHES = {
    "aarch64": ("aarch64-unknown-linux-gnu", "portable", "dot", "HAS_NEON_DOT", "sdot",
                {"neoverse-n1", "neoverse-n2", "neoverse-v1", "cortex-a76", "cortex-a78",
                 "cortex-x1", "apple-m1"}),
    "x86_64": ("x86_64-unknown-linux-gnu", "avx2", "avxvnni", "HAS_AVX_VNNI", "vpdpbusd",
               {"alderlake", "raptorlake", "meteorlake", "arrowlake", "sierraforest",
                "sapphirerapids", "graniterapids", "icelake-server", "icelake-client",
                "cascadelake", "tigerlake", "znver4", "znver5"}),
}
"""Per architecture: (triple, the int16 isa, the byte isa, int8_madd's flag of the byte isa's
instruction, its name, the CPUs of the list that have it)."""
X86_CPUS = {"haswell", "broadwell", "skylake", "skylake-avx512", "znver1", "znver2", "znver3",
            "x86-64-v3"} | ARCHES["x86_64"][5]
SHAPES = ((4, 2), (4, 1), (1, 2))  # the tiles `_madd_tile` compiles (rows, 8-channel blocks)
K_PER_STEP = {"portable": 2, "avx2": 2, "dot": 4, "avxvnni": 4}


def loop_body(asm: str) -> list[str]:
    """The instructions of the block that branches back to itself (the K loop)."""
    lines = asm.splitlines()
    label = re.compile(r"^\.?L?BB\d+_\d+:")
    for i, line in enumerate(lines):
        if not label.match(line.strip()):
            continue
        name = line.strip()[:-1]
        body = []
        for nxt in lines[i + 1:]:
            if label.match(nxt.strip()):
                break
            if nxt.startswith("\t") and not nxt.strip().startswith((".", "//")):
                body.append(nxt)
                if name in nxt:
                    return body
    raise RuntimeError("no loop in the tile's assembly")


def cycles_per_step(body: list[str], cpu: str, arch: str) -> float:
    iterations = 400
    proc = subprocess.run(["llvm-mca", f"-mtriple={arch}", f"-mcpu={cpu}",
                           f"-iterations={iterations}"], input="\n".join(body) + "\n",
                          capture_output=True, text=True, check=True)
    return int(re.search(r"Total Cycles:\s+(\d+)", proc.stdout).group(1)) / iterations


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", nargs="+",
                   default=["neoverse-n1", "neoverse-v1", "cortex-a76", "cortex-a72",
                            "alderlake", "sapphirerapids", "znver3"])
    args = p.parse_args(argv)
    if shutil.which("llvm-mca") is None:
        print("gemm_model: error: llvm-mca not found (Debian: apt-get install llvm)",
              file=sys.stderr)
        return 2
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    mca_version = subprocess.run(["llvm-mca", "--version"], capture_output=True,
                                 text=True).stdout.split("version")[1].split()[0]
    print(f"code: llvmlite's LLVM {'.'.join(map(str, llvm.llvm_version_info))}; "
          f"model: llvm-mca {mca_version} (static estimate, K loop only)")
    print(f"{'cpu':<15} {'tile':>5} {'isa':>8} {'cyc/step':>9} {'MAC/cyc':>8} "
          f"{'isa':>8} {'cyc/step':>9} {'MAC/cyc':>8} {'ratio':>7}  byte isa uses")
    for cpu in args.cpus:
        arch = "x86_64" if cpu in X86_CPUS else "aarch64"
        triple, base, fast, flag, insn, cpus = ARCHES[arch]
        native = cpu in cpus
        saved = getattr(int8_madd, flag)
        setattr(int8_madd, flag, native)  # what Numba compiling for this CPU would emit
        try:
            machine = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, opt=3)
            for rows, blocks in SHAPES:
                res = {}
                for isa in (base, fast):
                    asm = machine.emit_assembly(llvm.parse_assembly(
                        int8_madd.madd_tile_ir(rows, blocks, isa, triple)))
                    c = cycles_per_step(loop_body(asm), cpu, arch)
                    res[isa] = (c, rows * blocks * 8 * K_PER_STEP[isa] / c)
                print(f"{cpu:<15} {rows}x{blocks:<3} {base:>8} {res[base][0]:9.2f} "
                      f"{res[base][1]:8.1f} {fast:>8} {res[fast][0]:9.2f} {res[fast][1]:8.1f} "
                      f"{res[fast][1] / res[base][1]:6.2f}x  "
                      f"{insn if native else 'generic IR (no ' + insn + ')'}")
        finally:
            setattr(int8_madd, flag, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
