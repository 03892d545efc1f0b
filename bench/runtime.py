"""qcc's Numba int8 runtime: latency against LiteRT and qcc's float executor, and start-up.

    python bench/runtime.py [--zoo DIR] [--runs 30] [--no-single-ops] [--only NAME ...]

Per zoo model (.tflite in --zoo, default $QCC_MODEL_ZOO, else ../shared/models) and per
generated single-op model (`qcc.testing.tflite_models.single_op_models()`), quantized by qcc
on random calibration data (float I/O, the default), all in this process, one thread each:

  qcc int8     `qcc.backends.numba.compile_module(q.module).run` (quant.qcast/dcast included)
  qcc float    the float executor on the float module
  LRT int8     LiteRT, default resolver (XNNPACK), on the qcc-emitted .tflite
  LRT ref      LiteRT, BUILTIN_REF, on the same file

Each is the median (µs) of --runs runs (>= 30); qcc int8, qcc float and LRT int8 take turns
in blocks of 6 runs, each block after an untimed run (a slow phase of the machine slows them
alike), LRT ref runs on its own, --runs / 6 times. Printed ratios:
int8/LRT = qcc int8 / LRT int8 (target <= 2), float/int8 = qcc float / qcc int8 (target
>= 1.5). Then, per zoo model, start-up of the `--emit=numba` artifact in a fresh
`python -I` process (import model + load plan + two runs): cold (empty NUMBA_CACHE_DIR,
every kernel the plan calls compiles for the host) and warm (same cache); then the artifact
written with its Numba cache carried for --baseline (default x86-64-v3, when this CPU has it),
copied to another folder: cold carried (another empty NUMBA_CACHE_DIR: the carried kernels
load) and warm carried: each the median of 3 processes, seconds from the process's launch
to its first run's result, to its second run's result (a cold first run runs some steps in
NumPy while helpers compile their kernels; the second run completes that compile) and to
its exit. Targets (to the first result: the issue's "fresh process, first run"): cold <= 5
s, warm <= 1 s.

With NUMBA_CPU_NAME naming an x86 CPU narrower than this host, an AVX2-only CPU (e.g.
haswell) on a host with AVX-512, or one without AVX2 (x86-64-v2, sandybridge...) on a host
with AVX2, the run stands for that CPU throughout: for an AVX2-only CPU Numba compiles with
its feature string (NUMBA_CPU_FEATURES = x86-64-v3's, + avxvnni for Alder Lake and its kin,
unless set; --host-features keeps the host's, with which LLVM mixes AVX-512 into the AVX2
kernels), and the float executor's OpenBLAS and numpy run that CPU's code too
(OPENBLAS_CORETYPE=Haswell, Sandybridge or Nehalem, and NPY_DISABLE_CPU_FEATURES, unless set;
--host-libs keeps the host's); the header names the features and the BLAS kernels used. For
a CPU without AVX2 the caller names its features (NUMBA_CPU_FEATURES, e.g. x86-64-v2's in
`qcc.backends.numba.CACHE_BASELINES`): with the CPU name alone Numba keeps this host's
feature string, so qcc's kernels would be AVX2 code on the avx2 GEMM path, and the libraries
are left as they are.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AVX2_ONLY_CPUS = frozenset((
    "haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake",
    "gracemont", "znver1", "znver2", "znver3", "x86-64-v3"))
"""LLVM's names of x86 CPUs (and the psABI level) with AVX2 and without AVX-512: a run with
NUMBA_CPU_NAME set to one of them stands for such a CPU."""

AVX_ONLY_CPUS = frozenset(("sandybridge", "ivybridge", "btver2", "bdver1", "bdver2", "bdver3"))
"""LLVM's names of x86 CPUs with AVX but without AVX2 (Sandy / Ivy Bridge, AMD Jaguar and
Bulldozer to Steamroller)."""

SSE_ONLY_CPUS = frozenset((
    "x86-64", "x86-64-v2", "core2", "penryn", "nehalem", "westmere", "bonnell", "atom",
    "silvermont", "slm", "goldmont", "goldmont-plus", "tremont", "btver1", "amdfam10",
    "barcelona"))
"""LLVM's names of x86 CPUs (and psABI levels) without AVX: SSE2 to SSE4.2 (Core 2 to
Westmere, the Atom line, AMD K10 and Bobcat)."""

_NUMPY_AVX512_BEFORE_2_4 = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
_NUMPY_NO_AVX2 = ("FMA3 AVX2 " + _NUMPY_AVX512_BEFORE_2_4, "X86_V3 X86_V4 AVX512_ICL AVX512_SPR")
_TARGET_LIBS = {
    # target: (the host flag that means the host runs wider code, OpenBLAS's kernel set,
    #          numpy's dispatch targets off: before numpy 2.4, from 2.4 (psABI levels))
    "AVX2-only": ("avx512f", "Haswell", _NUMPY_AVX512_BEFORE_2_4, "X86_V4 AVX512_ICL AVX512_SPR"),
    "AVX-only": ("avx2", "Sandybridge", *_NUMPY_NO_AVX2),
    "SSE-only": ("avx", "Nehalem", "AVX F16C " + _NUMPY_NO_AVX2[0], _NUMPY_NO_AVX2[1]),
}
"""Per kind of target CPU, what its float executor's libraries run (`target_libs`)."""

AVX2_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+crc32,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,"
                 "+mmx,+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave")
"""Numba's feature string for an AVX2-only CPU: x86-64-v3's (`qcc.backends.numba.
CACHE_BASELINES`, which this file cannot import before numpy loads; a test checks they
agree)."""

AVX_VNNI_CPUS = frozenset(("alderlake", "raptorlake", "meteorlake", "arrowlake", "gracemont"))
"""The AVX2-only CPUs of `AVX2_ONLY_CPUS` that have AVX-VNNI (256-bit vpdpbusd): their
feature string adds it (qcc's "avxvnni" GEMM path)."""


def _numpy_at_least_2_4() -> bool:
    """numpy 2.4 names its x86 dispatch targets by psABI level (X86_V3, X86_V4)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(p) for p in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (2, 4)


def target_kind(environ) -> str | None:
    """"AVX2-only", "AVX-only" or "SSE-only" when NUMBA_CPU_NAME names such an x86 CPU, else
    None (the host, or a CPU this benchmark does not hold the libraries to)."""
    cpu = (environ.get("NUMBA_CPU_NAME") or "").strip().lower()
    for kind, names in (("AVX2-only", AVX2_ONLY_CPUS), ("AVX-only", AVX_ONLY_CPUS),
                        ("SSE-only", SSE_ONLY_CPUS)):
        if cpu in names:
            return kind
    return None


def target_libs(environ, host_flags: set[str], argv: list[str]) -> dict[str, str]:
    """The environment Numba, numpy and OpenBLAS need, before they load, so that the run
    stands for the CPU NUMBA_CPU_NAME names (`target_kind`) when this host has wider
    instructions (AVX-512 for an AVX2-only CPU, AVX2 for an AVX-only one, AVX for an SSE-only
    one).

    Numba: for an AVX2-only CPU, NUMBA_CPU_FEATURES = its feature string (`AVX2_FEATURES`,
    + avxvnni for `AVX_VNNI_CPUS`), unless set or --host-features is given. With the CPU name
    alone Numba keeps this host's feature string: LLVM then mixes AVX-512 and AVX-VNNI
    instructions into the AVX2 kernels (code an AVX2-only CPU cannot run, and 1.2-1.8x
    slower on a Sapphire Rapids host: docs/benchmarks.md, "Twenty-sixth round"). For a CPU
    without AVX2 the caller names its features (no default here).

    Libraries, unless --host-libs is given: OpenBLAS's and numpy's kernel sets for that CPU
    (for a CPU without AVX2, only when NUMBA_CPU_FEATURES names its features: without them
    Numba compiles qcc's kernels with this host's AVX2). Numba compiles qcc's kernels for
    that CPU, while OpenBLAS and numpy would pick the host's wider code at run time: float /
    int8 would compare a float executor no such CPU runs with the integer kernels it does.

    Variables the caller set are kept."""
    kind = target_kind(environ)
    if kind is None:
        return {}
    wider, blas, numpy_old, numpy_new = _TARGET_LIBS[kind]
    if wider not in host_flags:
        return {}
    env = {}
    features = environ.get("NUMBA_CPU_FEATURES") or ""
    if kind == "AVX2-only" and not features and "--host-features" not in argv:
        cpu = environ["NUMBA_CPU_NAME"].strip().lower()
        features = AVX2_FEATURES + (",+avxvnni" if cpu in AVX_VNNI_CPUS else "")
        env["NUMBA_CPU_FEATURES"] = features
    if "--host-libs" not in argv and (
            kind == "AVX2-only" or (features and "+avx2" not in features.split(","))):
        env["OPENBLAS_CORETYPE"] = blas
        env["NPY_DISABLE_CPU_FEATURES"] = numpy_new if _numpy_at_least_2_4() else numpy_old
    return {k: v for k, v in env.items() if k not in environ}


def _host_flags() -> set[str]:
    """/proc/cpuinfo's flags, read before numpy loads (`qcc.targets.probe.machine_info` reads
    them too, but importing qcc loads numpy)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("flags", "features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


TARGET_LIBS_SET: dict[str, str] = {}
if __name__ == "__main__":  # before numpy loads (imported, e.g. by a test, it sets nothing)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    TARGET_LIBS_SET = target_libs(os.environ, _host_flags(), sys.argv[1:])
    os.environ.update(TARGET_LIBS_SET)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INPUT_RANGES = {"face_detection_short_range": (-1.0, 1.0)}


def _median_us(fn, runs: int) -> float:
    return _interleaved_medians_us({"fn": fn}, runs)["fn"]


def _interleaved_medians_us(fns: dict, runs: int, block: int = 6) -> dict:
    """The median (µs) of `runs` runs of each function of `fns`, the functions taking turns
    in blocks of `block` runs, each block after one untimed run (the caches warm again after
    the other functions ran): a slow phase of the machine then falls on each function alike,
    and their ratio holds (timed one after the other, one's 30 runs could fall in such a phase
    and the other's not; taking turns run by run would time every run on caches the others
    just evicted)."""
    times: dict = {key: [] for key in fns}
    while any(len(ts) < runs for ts in times.values()):
        for key, fn in fns.items():
            fn()
            for _ in range(min(block, runs - len(times[key]))):
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
    return {key: 1e6 * statistics.median(ts) for key, ts in times.items()}


def _litert(content: bytes, resolver) -> object:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    return it


def _litert_fn(it, xs):
    details = it.get_input_details()

    def run():
        for d, x in zip(details, xs):
            it.set_tensor(d["index"], x)
        it.invoke()

    return run


def bench_one(name: str, float_model, runs: int, lo: float = 0.0, hi: float = 1.0) -> dict:
    import qcc
    from ai_edge_litert.interpreter import OpResolverType
    from qcc.backends.numba import compile_module

    rng = np.random.default_rng(0)
    calib = [
        [rng.uniform(lo, hi, size=t.shape).astype(np.float32) for t in float_model.inputs]
        for _ in range(4)
    ]
    row: dict = {"name": name}
    try:
        # the runtime's own target: every op with an int8 kernel in int8 (no float island)
        q = qcc.quantize(float_model, representative_dataset=calib, mode="int8", target="numba")
        content = q.to_tflite()
        cm = compile_module(q.module)
    except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
        row["note"] = f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
        return row
    xs = calib[0]
    row["islands"] = cm.has_float_islands
    side_by_side = {"int8": lambda: cm.run(xs)}  # timed in turns (`_interleaved_medians_us`)
    try:
        float_model.run(xs)
        side_by_side["float"] = lambda: float_model.run(xs)
    except Exception as e:  # noqa: BLE001
        row["note"] = f"float executor: {e}"[:90]
    try:
        side_by_side["lrt"] = _litert_fn(_litert(content, OpResolverType.AUTO), xs)
    except Exception as e:  # noqa: BLE001
        row["note"] = f"LiteRT lrt: {str(e).splitlines()[0][:80]}"
    row.update(_interleaved_medians_us(side_by_side, runs))
    try:  # the reference resolver is ~30x slower: fewer runs, on its own
        it = _litert(content, OpResolverType.BUILTIN_REF)
        row["ref"] = _median_us(_litert_fn(it, xs), max(5, runs // 6))
    except Exception as e:  # noqa: BLE001
        row["note"] = f"LiteRT ref: {str(e).splitlines()[0][:80]}"
    row["_q"] = q
    row["_calib"] = calib
    return row


_START = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import numpy as np
import model
x = np.load(sys.argv[2])
xs = [x[k] for k in sorted(x.files)]
out = model.run(xs)
print(f"QCC-RESULT-AT {time.time():.6f}", flush=True)
out = model.run(xs)
print(f"QCC-SECOND-AT {time.time():.6f}")
assert not any(m.split('.')[0] in ('qcc', 'xdsl') for m in sys.modules)
"""


def _start_once(art: Path, x: Path, cache: Path, env: dict) -> tuple[float, ...] | str:
    """One fresh `python -I` process (import the artifact, load, two runs): seconds from its
    launch to its first run's result, to its second run's result (a cold first run leaves
    the compile of the steps it ran in NumPy to the helpers, and the second run completes
    it: `runtime/plan.py`), and to its exit (the interpreter's teardown, ~0.1-0.25 s, is
    mostly the garbage collector going over Numba's objects)."""
    env = dict(env, NUMBA_CACHE_DIR=str(cache))
    launched = time.time()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-I", "-c", _START, str(art), str(x)],
                       capture_output=True, text=True, env=env, cwd=art.parent)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["failed"])[-1][:90]
    times = []
    for key in ("QCC-RESULT-AT ", "QCC-SECOND-AT "):
        at = [line for line in r.stdout.splitlines() if line.startswith(key)]
        times.append(float(at[-1].split()[1]) - launched)
    return (*times, wall)


def _start_median(art: Path, x: Path, caches: list[Path], env: dict) -> tuple[float, ...] | str:
    """Medians over one process per cache folder of `caches` (the same folder again: warm
    runs; fresh folders: cold runs) of `_start_once`'s three times."""
    got = []
    for cache in caches:
        r = _start_once(art, x, cache, env)
        if isinstance(r, str):
            return r
        got.append(r)
    return tuple(statistics.median(g[k] for g in got) for k in range(3))


STARTS = 3
"""Processes per start-up figure (its median)."""


def start_times(q, calib, baseline: str | None = None) -> dict | str:
    """Start-up of the artifact in fresh processes (import + load + first run), seconds to
    the first result and to the process's exit, medians of `STARTS` processes: "cold" (an
    empty NUMBA_CACHE_DIR each: every kernel the plan calls compiles for the host) and
    "warm" (the first one's cache again); with `baseline` (e.g. x86-64-v3, when this CPU has it),
    also "cold carried" / "warm carried": the artifact written with its Numba cache for the
    baseline ("build": seconds write_artifact took), copied to a new folder (new mtimes), run
    with another empty NUMBA_CACHE_DIR."""
    import shutil

    from qcc.backends.numba import compile_module, host_has_baseline, write_artifact
    from qcc.errors import QccError

    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cm = compile_module(q.module)
        try:
            write_artifact(cm, tmp / "art", cache_baseline="none")
        except QccError as e:
            return str(e)[:90]
        x = tmp / "x.npz"
        np.savez(x, **{f"a{i}": v for i, v in enumerate(calib[0])})
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "QCC_ARTIFACT_CACHE")}
        for key, caches in (("cold", [tmp / f"cache{i}" for i in range(STARTS)]),
                            ("warm", [tmp / "cache0"] * STARTS)):
            r = _start_median(tmp / "art", x, caches, env)
            if isinstance(r, str):
                return r
            res[key] = r
        if baseline and host_has_baseline(baseline):
            t = time.perf_counter()
            write_artifact(cm, tmp / "built", cache_baseline=baseline, cache_inputs=[calib[0]])
            res["build"] = time.perf_counter() - t
            shutil.copytree(tmp / "built", tmp / "copied")  # new mtimes, another path
            for key, caches in (("cold carried", [tmp / f"carried{i}" for i in range(STARTS)]),
                                ("warm carried", [tmp / "carried0"] * STARTS)):
                r = _start_median(tmp / "copied", x, caches, env)
                if isinstance(r, str):
                    return r
                res[key] = r
    return res


def _openblas_core() -> str | None:
    """The kernel set ("Haswell", "SkylakeX", ...) numpy's OpenBLAS chose, or None."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.rsplit("/", 1)[-1].lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def _fmt(v, spec=".2f") -> str:
    return format(v, spec) if isinstance(v, float) else "-"


def _pair(v) -> str:
    """A start-up figure: seconds to the first result / to the second / to the exit."""
    return " / ".join(f"{t:.2f}" for t in v) if isinstance(v, tuple) else "-"


def _fmt_us(v) -> str:
    return format(v, ".0f" if v >= 100 else ".1f") if isinstance(v, float) else "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=os.environ.get("QCC_MODEL_ZOO", str(ROOT.parent / "shared" / "models")))
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--no-single-ops", action="store_true")
    p.add_argument("--no-start", action="store_true", help="skip the cold/warm start-up runs")
    p.add_argument("--baseline", default="x86-64-v3",
                   help="also time the artifact carrying its Numba cache for this CPU baseline "
                        "(none: skip)")
    p.add_argument("--only", nargs="*", help="only these model names")
    p.add_argument("--host-libs", action="store_true",
                   help="with NUMBA_CPU_NAME naming an AVX2-only CPU on an AVX-512 host: keep "
                        "OpenBLAS's and numpy's AVX-512 code for the float executor")
    p.add_argument("--host-features", action="store_true",
                   help="with NUMBA_CPU_NAME naming an AVX2-only CPU on an AVX-512 host: keep "
                        "this host's feature string for Numba (no NUMBA_CPU_FEATURES set)")
    args = p.parse_args(argv)
    runs = max(30, args.runs)

    import qcc
    from qcc.testing.tflite_models import single_op_models

    cases: list[tuple[str, object, tuple[float, float]]] = []
    for path in sorted(Path(args.zoo).glob("*.tflite")) if Path(args.zoo).is_dir() else []:
        cases.append((path.stem, qcc.load(path), INPUT_RANGES.get(path.stem, (0.0, 1.0))))
    zoo_names = {c[0] for c in cases}
    if not args.no_single_ops:
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in single_op_models().items():
                f = Path(tmp) / f"{name}.tflite"
                f.write_bytes(content)
                cases.append((name, qcc.load(f), (0.0, 1.0)))
    if args.only:
        cases = [c for c in cases if c[0] in args.only]

    from numba.core import config as numba_config

    from qcc.runtime.kernels.simd import (
        INT8_GEMM_PATHS,
        SIMD_EMULATED,
        TARGET_FEATURES,
        int8_gemm_path,
    )
    from qcc.targets.probe import machine_info

    info = machine_info()
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items()
                      if k in ("avx512_vnni", "avx_vnni", "avx512bw", "avx2", "fma", "neon",
                               "arm_dotprod"))
    print(f"CPU: {info.get('cpu') or 'unknown'}, {info.get('cores')} cores; {flags}")
    isa = ", ".join(f for f in ("avx512vnni", "avx512bw", "avxvnni", "avx2", "neon", "dotprod")
                    if f in TARGET_FEATURES) or "none of avx512vnni, avx2, neon"
    print(f"Numba compiles for: {numba_config.CPU_NAME or 'host'} ({isa}); qcc's int8 GEMM "
          f"path: {int8_gemm_path()} (available: {', '.join(INT8_GEMM_PATHS)})")
    if SIMD_EMULATED:
        print(f"note: QCC_SIMD_EMULATE={','.join(sorted(SIMD_EMULATED))}: those instructions are "
              "emulated in generic IR (a test mode): these latencies are not the path's")
    if numba_config.CPU_NAME not in (None, "host") and numba_config.CPU_FEATURES is None:
        print(f"note: NUMBA_CPU_NAME={numba_config.CPU_NAME} without NUMBA_CPU_FEATURES keeps this "
              "host's feature string, so LLVM may still emit the host's wider instructions "
              "(e.g. AVX-512 forms of AVX2 code; for a CPU without AVX2, AVX2 code and qcc's "
              "avx2 GEMM path); for a strict build also set NUMBA_CPU_FEATURES (e.g. "
              "x86-64-v2's or x86-64-v3's, qcc.backends.numba.CACHE_BASELINES)")
    if "NUMBA_CPU_FEATURES" in TARGET_LIBS_SET:
        print(f"Numba's features: NUMBA_CPU_FEATURES={TARGET_LIBS_SET['NUMBA_CPU_FEATURES']} "
              f"(what an {target_kind(os.environ)} {numba_config.CPU_NAME} has; "
              "--host-features keeps this host's)")
    libs = {k: v for k, v in TARGET_LIBS_SET.items() if k != "NUMBA_CPU_FEATURES"}
    core = _openblas_core()
    print(f"float executor's BLAS: OpenBLAS {core or 'core unknown'}"
          + (f" ({', '.join(f'{k}={v}' for k, v in libs.items())}: the code an "
             f"{target_kind(os.environ)} {numba_config.CPU_NAME} runs; --host-libs keeps this "
             "host's)" if libs else ""))
    print(f"latency, median of {runs} runs, µs (1 thread); LiteRT on the qcc-emitted .tflite")
    header = f"{'model':<42} {'qcc int8':>9} {'qcc float':>9} {'LRT int8':>9} {'LRT ref':>9} {'int8/LRT':>8} {'float/int8':>10}  note"
    print(header)
    rows = []
    for name, model, (lo, hi) in cases:
        row = bench_one(name, model, runs, lo, hi)
        rows.append(row)
        r1 = row["int8"] / row["lrt"] if "int8" in row and "lrt" in row else None
        r2 = row["float"] / row["int8"] if "int8" in row and "float" in row else None
        note = row.get("note", "")
        if row.get("islands"):
            note = ("float islands; " + note).strip("; ")
        print(
            f"{name:<42} {_fmt_us(row.get('int8')):>9} {_fmt_us(row.get('float')):>9} "
            f"{_fmt_us(row.get('lrt')):>9} {_fmt_us(row.get('ref')):>9} {_fmt(r1):>8} {_fmt(r2):>10}  {note}",
            flush=True,
        )
        row["r1"], row["r2"] = r1, r2

    def geo(vals):
        vals = [v for v in vals if v]
        return float(np.exp(np.mean(np.log(vals)))) if vals else None

    for label, sel in (("zoo", lambda r: r["name"] in zoo_names),
                       ("single-op", lambda r: r["name"] not in zoo_names)):
        sub = [r for r in rows if sel(r) and r.get("r1")]
        if sub:
            # the targets are per zoo model; single-op models are reported only
            targets = (" (target <= 2 per model)", " (target >= 1.5 per model)")
            if label != "zoo":
                targets = ("", "")
            print(
                f"geomean {label}: int8/LRT {geo([r['r1'] for r in sub]):.2f}{targets[0]}, "
                f"float/int8 {_fmt(geo([r['r2'] for r in sub]))}{targets[1]}"
            )

    if not args.no_start:
        baseline = None if args.baseline.lower() == "none" else args.baseline
        print("\nstart-up of the --emit=numba artifact (fresh `python -I`: import, load, two "
              f"runs; cold: empty NUMBA_CACHE_DIR), seconds from launch to the first result / "
              f"the second / the exit, medians of {STARTS} processes")
        print(f"{'model':<42} {'cold s':>18} {'warm s':>18}"
              + (f" {'cold carried':>18} {'warm carried':>18} {'build s':>8}  (carried: "
                 f"numba-cache-{baseline}, folder copied)" if baseline else ""))
        for row in rows:
            if row["name"] not in zoo_names or "_q" not in row:
                continue
            res = start_times(row["_q"], row["_calib"], baseline)
            if isinstance(res, str):
                print(f"{row['name']:<42} {'-':>8} {'-':>8}  {res}")
                continue
            line = f"{row['name']:<42} {_pair(res['cold']):>18} {_pair(res['warm']):>18}"
            if baseline:
                line += (f" {_pair(res.get('cold carried')):>18}"
                         f" {_pair(res.get('warm carried')):>18}"
                         f" {_fmt(res.get('build'), '.1f'):>8}")
            print(line + "  (targets, to the first result: cold <= 5 s, warm <= 1 s)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
