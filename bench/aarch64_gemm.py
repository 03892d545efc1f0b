"""The integer GEMM's K loop on aarch64 CPUs, estimated where no aarch64 host is at hand.

    python bench/aarch64_gemm.py [--cpus neoverse-n1 neoverse-v1 cortex-a76 cortex-a72]

qcc's GEMM tiles (`int8_madd.madd_tile_ir`: the K loop the kernels compile) are
cross-compiled by llvmlite, Numba's own LLVM, for each aarch64 CPU, and the
loop body of each tile is run through `llvm-mca` (LLVM's static pipeline model of that CPU;
Debian package `llvm`). Printed per CPU and tile shape (rows × 8-channel blocks): cycles per
K step, int8 multiply-accumulates per cycle, and the "dot" path's throughput over the
"portable" one's. The "dot" path uses sdot only on CPUs with dot products (ARMv8.2+); on
others (cortex-a72) it is printed as what it is there, sdot emulated in generic IR.

This is a model, not a timing: it leaves out the epilogue, the patch rows and memory
stalls, and llvm-mca's scheduling models may be older than the LLVM that compiles the code.
Timings under qemu mean nothing (`.ci/aarch64-emulated` checks correctness only).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

import llvmlite.binding as llvm

from qcc.runtime.kernels import int8_madd

TRIPLE = "aarch64-unknown-linux-gnu"

DOT_CPUS = {"neoverse-n1", "neoverse-n2", "neoverse-v1", "cortex-a76", "cortex-a78",
            "cortex-x1", "apple-m1"}
"""CPUs of the list with dot products (FEAT_DotProd)."""
SHAPES = ((4, 2), (4, 1), (1, 2))  # the tiles `_madd_tile` compiles (rows, 8-channel blocks)
K_PER_STEP = {"portable": 2, "dot": 4}


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


def cycles_per_step(body: list[str], cpu: str) -> float:
    iterations = 400
    proc = subprocess.run(["llvm-mca", "-mtriple=aarch64", f"-mcpu={cpu}",
                           f"-iterations={iterations}"], input="\n".join(body) + "\n",
                          capture_output=True, text=True, check=True)
    return int(re.search(r"Total Cycles:\s+(\d+)", proc.stdout).group(1)) / iterations


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", nargs="+",
                   default=["neoverse-n1", "neoverse-v1", "cortex-a76", "cortex-a72"])
    args = p.parse_args(argv)
    if shutil.which("llvm-mca") is None:
        print("aarch64_gemm: error: llvm-mca not found (Debian: apt-get install llvm)",
              file=sys.stderr)
        return 2
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    target = llvm.Target.from_triple(TRIPLE)
    mca_version = subprocess.run(["llvm-mca", "--version"], capture_output=True,
                                 text=True).stdout.split("version")[1].split()[0]
    print(f"code: llvmlite's LLVM {'.'.join(map(str, llvm.llvm_version_info))}; "
          f"model: llvm-mca {mca_version} (static estimate, K loop only)")
    print(f"{'cpu':<13} {'tile':>5} {'portable cyc/step':>18} {'MAC/cyc':>8} "
          f"{'dot cyc/step':>13} {'MAC/cyc':>8} {'dot/portable':>13}  dot uses")
    for cpu in args.cpus:
        native = cpu in DOT_CPUS
        saved = int8_madd.HAS_NEON_DOT
        int8_madd.HAS_NEON_DOT = native  # what Numba compiling for this CPU would emit
        try:
            machine = target.create_target_machine(cpu=cpu, opt=3)
            row = []
            for rows, blocks in SHAPES:
                res = {}
                for isa in ("portable", "dot"):
                    asm = machine.emit_assembly(llvm.parse_assembly(
                        int8_madd.madd_tile_ir(rows, blocks, isa, TRIPLE)))
                    c = cycles_per_step(loop_body(asm), cpu)
                    res[isa] = (c, rows * blocks * 8 * K_PER_STEP[isa] / c)
                row.append(res)
                print(f"{cpu:<13} {rows}x{blocks:<3} {res['portable'][0]:18.2f} "
                      f"{res['portable'][1]:8.1f} {res['dot'][0]:13.2f} {res['dot'][1]:8.1f} "
                      f"{res['dot'][1] / res['portable'][1]:12.2f}x  "
                      f"{'sdot' if native else 'generic IR (no dot products)'}")
        finally:
            int8_madd.HAS_NEON_DOT = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
