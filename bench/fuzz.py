"""Seeded mutation fuzzing of qcc, for as long as you like (CI runs about a minute of it in
tests/fuzz/test_fuzz.py).

    python bench/fuzz.py --minutes 10                      # small built-in models + $QCC_MODEL_ZOO
    python bench/fuzz.py --minutes 10 --models ../shared/models --seed 3 --kinds tflite,mlir

Prints one line per bad case (with the folder that keeps its files and the command that
replays it) and, at the end, a Markdown table of outcome counts per input kind (the table
docs/benchmarks.md records). Exit code 1 if any case was bad. See qcc/testing/fuzz.py for the
mutations and the outcome classes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from qcc.testing.fuzz import KINDS, Fuzzer, default_seeds, replay_command, summary_table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz (default 10)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed (default 0)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated: {','.join(KINDS)}")
    p.add_argument("--models", default=os.environ.get("QCC_MODEL_ZOO", ""),
                   help="folder of .tflite seed models (default $QCC_MODEL_ZOO)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-case timeout in seconds")
    p.add_argument("--keep", default="", help="folder for the cases' files (default: a temp dir)")
    args = p.parse_args()

    kinds = [k for k in args.kinds.split(",") if k]
    zoo = sorted(Path(args.models).glob("*.tflite")) if args.models else []
    print(f"qcc fuzz: {platform.machine()} {platform.python_version()}, seed {args.seed}, "
          f"{args.minutes:g} min, kinds {','.join(kinds)}, zoo models: "
          f"{', '.join(z.name for z in zoo) or 'none'}", flush=True)
    t0 = time.monotonic()
    seeds = default_seeds(zoo)
    print(f"seeds ready in {time.monotonic() - t0:.1f} s", flush=True)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qcc-fuzz."))
    workdir.mkdir(parents=True, exist_ok=True)
    fuzzer = Fuzzer(seeds, workdir, seed=args.seed, timeout=args.timeout)
    bad = 0
    done = 0
    tty = sys.stderr.isatty()
    for case, outcome in fuzzer.run(kinds, seconds=args.minutes * 60):
        done += 1
        if outcome.bad:
            bad += 1
            print(f"BAD {outcome.cls}: [{case.kind}] {case.label}: {outcome.detail}", flush=True)
            if case.argv:
                print(f"    replay: (cd <kept folder> && {replay_command(case)})", flush=True)
        if tty:
            sys.stderr.write(f"\r{done} cases, {bad} bad")
            sys.stderr.flush()
    if tty:
        sys.stderr.write("\n")
    print()
    print(summary_table(fuzzer.counts))
    print(f"\n{done} cases in {(time.monotonic() - t0) / 60:.1f} min; bad: {bad}; work folder {workdir}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
