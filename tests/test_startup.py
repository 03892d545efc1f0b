"""Start-up of the `--emit=numba` artifact: its kernels.py.xz, and the Numba cache it can
carry for a CPU baseline.

model.py extracts kernels.py.xz to a real kernels.py (checked against the sha256 it records)
under NUMBA_CACHE_DIR, else in __pycache__ beside it, else in the user's cache folder, and
never writes anything else into the artifact folder; a damaged extracted copy is written
again, and kernels that do not match model.py fail the import in one line.

An artifact written with `cache_baseline="x86-64-v3"` holds numba-cache-x86-64-v3/ (listed in
its manifest); copied elsewhere (new mtimes, another path) and run in a fresh process with an
empty NUMBA_CACHE_DIR (or none, the folder unwritable), it loads its kernels (Numba's
NUMBA_DEBUG_CACHE log: data loaded, none saved) and gives the in-process model's outputs; on a
CPU without the baseline it compiles for the host as an artifact without a cache does. Small
generated models, tmp_path only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qcc
from qcc.backends.numba import (
    CACHE_BASELINES,
    compile_module,
    host_has_baseline,
    write_artifact,
)
from qcc.fileio import ARTIFACT_MANIFEST, write_artifact_folder
from qcc.testing import tflite_models as tm

BASELINE = "x86-64-v3"
FOLDER = f"numba-cache-{BASELINE}"

needs_baseline = pytest.mark.skipif(
    not host_has_baseline(BASELINE), reason=f"this CPU cannot run code built for {BASELINE}"
)

# A fresh process: optionally hide CPU features from the carried cache's host check (a CPU
# without the baseline), import the artifact, run it, save the outputs and what Numba
# compiled for.
_RUN = r"""
import json, sys
hide = [f for f in sys.argv[4].split(",") if f]
if hide:
    import llvmlite.binding as llb
    real = llb.get_host_cpu_features
    def fewer():
        feats = real()
        for f in hide:
            feats[f] = False
        return feats
    llb.get_host_cpu_features = fewer
sys.path.insert(0, sys.argv[1])
import numpy as np
import model
from numba.core import config
with np.load(sys.argv[2]) as z:
    xs = [z[k] for k in sorted(z.files)]
out = model.run(xs)
np.savez(sys.argv[3], *out)
print("QCC-TARGET " + json.dumps([config.CPU_NAME, config.CPU_FEATURES,
                                  model._QCC_CARRIED is not None]))
"""


def _env(cache: Path | None, home: Path | None = None) -> dict[str, str]:
    """The environment of a fresh artifact process: NUMBA_CACHE_DIR=cache (None: unset), and
    with `home` the user's cache folder there ($XDG_CACHE_HOME, $HOME)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMBA_", "PYTHON", "QCC_ARTIFACT", "QCC_COMPILE"))}
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    if home is not None:
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "xdg"))
    return env


def _run(art: Path, x: Path, out: Path, cache: Path | None, hide: str = "",
         workers: str = "0", home: Path | None = None) -> tuple[str, list]:
    env = _env(cache, home)
    env.update(NUMBA_DEBUG_CACHE="1", QCC_COMPILE_WORKERS=workers)
    r = subprocess.run([sys.executable, "-I", "-B", "-c", _RUN, str(art), str(x), str(out), hide],
                       capture_output=True, text=True, env=env, cwd=art.parent, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    target = [line for line in r.stdout.splitlines() if line.startswith("QCC-TARGET ")]
    with np.load(out) as z:
        outputs = [z[f"arr_{i}"] for i in range(len(z.files))]
    return r.stdout, [json.loads(target[-1].split(" ", 1)[1]), outputs]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(in-process CompiledModel, its outputs, input file, artifact folder with a carried
    cache for BASELINE)."""
    tmp = tmp_path_factory.mktemp("startup")
    path = tmp / "m.tflite"
    path.write_bytes(tm.chained_models()["residual_classifier"])
    model = qcc.load(path)
    rng = np.random.default_rng(0)
    calib = [[rng.uniform(-1, 1, size=t.shape).astype(np.float32) for t in model.inputs]
             for _ in range(4)]
    q = qcc.quantize(model, representative_dataset=calib, mode="int8", target="numba")
    cm = compile_module(q.module)
    xs = calib[1]
    expected = cm.run(xs)
    x = tmp / "x.npz"
    np.savez(x, **{f"a{i}": v for i, v in enumerate(xs)})
    art = tmp / "art"
    write_artifact(cm, art, "residual_classifier", cache_baseline=BASELINE)
    return cm, expected, x, art


@needs_baseline
def test_artifact_lists_its_carried_cache(built):
    _, _, _, art = built
    manifest = json.loads((art / ARTIFACT_MANIFEST).read_text())
    assert _files(art) == set(manifest["files"]) | {ARTIFACT_MANIFEST}
    cached = [f for f in manifest["files"] if f.startswith(FOLDER + "/")]
    assert any(f.endswith(".nbi") for f in cached) and any(f.endswith(".nbc") for f in cached)
    info = json.loads((art / FOLDER / "cache.json").read_text())
    assert info["cpu"] == BASELINE and info["features"] == CACHE_BASELINES[BASELINE]["features"]
    doc = (art / "model.py").read_text().split('"""', 2)[1]
    assert "First run:" in doc and f"CPU baseline {BASELINE}" in doc and FOLDER in doc


@needs_baseline
def test_copied_artifact_loads_its_cache_without_compiling(built, tmp_path):
    _, expected, x, art = built
    copied = tmp_path / "elsewhere" / "copy"
    shutil.copytree(art, copied)
    for p in copied.rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))  # other mtimes than the build's
    log, (target, outputs) = _run(copied, x, tmp_path / "out.npz", tmp_path / "cache")
    assert target == [BASELINE, CACHE_BASELINES[BASELINE]["features"], True]
    assert "[cache] data loaded" in log
    assert "[cache] data saved" not in log, "a kernel compiled despite the carried cache"
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    # the artifact folder is only read: nothing beside the manifest's files appeared in it
    assert _files(copied) == _files(art)


@needs_baseline
def test_read_only_artifact_extracts_to_the_user_cache_and_loads_its_cache(built, tmp_path):
    """Without NUMBA_CACHE_DIR, in a folder where __pycache__ cannot be made (a file of that
    name: tests run as root, whom permission bits do not stop), model.py extracts kernels.py
    into the user's cache folder, seeds Numba's cache beside it, and loads every kernel."""
    _, expected, x, art = built
    copied = tmp_path / "copy"
    shutil.copytree(art, copied)
    (copied / "__pycache__").write_text("not a folder")
    before = _files(copied)
    log, (target, outputs) = _run(copied, x, tmp_path / "out.npz", None, home=tmp_path / "home")
    assert target[2] is True and "[cache] data loaded" in log
    assert "[cache] data saved" not in log, "a kernel compiled despite the carried cache"
    for got, want in zip(outputs, expected):
        assert np.array_equal(got, want)
    assert _files(copied) == before
    (extracted,) = (tmp_path / "home" / "xdg" / "qcc").glob("qcc-kernels-*/kernels.py")
    assert list(extracted.parent.glob("__pycache__/kernels.*.nbi"))


@needs_baseline
def test_carried_cache_is_for_these_kernels_only(built, tmp_path):
    """cache.json names the kernels' sha256: a cache recorded for other kernels is not used
    (Numba then compiles for the host)."""
    _, _, _, art = built
    copied = tmp_path / "copy"
    shutil.copytree(art, copied)
    info_path = copied / FOLDER / "cache.json"
    info = json.loads(info_path.read_text())
    assert info["kernels_sha256"] == hashlib.sha256(
        lzma.decompress((art / "kernels.py.xz").read_bytes())).hexdigest()
    assert _import(copied, tmp_path / "nb", "print(model._QCC_CARRIED is not None)") == "True"
    info_path.write_text(json.dumps(dict(info, kernels_sha256="0" * 64)))
    assert _import(copied, tmp_path / "nb", "print(model._QCC_CARRIED is not None)") == "False"


@needs_baseline
def test_host_without_the_baseline_compiles_for_itself(built, tmp_path):
    """A CPU without AVX2/FMA (AVX-512 hidden too: LLVM drops the features that imply the
    hidden ones) compiles for the host, with a helper process compiling kernel groups
    alongside the first run (its work, compiled into the empty cache, is what the run
    loads: the helper's own log goes to /dev/null)."""
    _, expected, x, art = built
    log, (target, outputs) = _run(art, x, tmp_path / "out.npz", tmp_path / "cache",
                                  hide="avx2,fma,avx512f,avx512bw,avx512vnni", workers="1")
    assert target[0] is None and target[2] is False  # Numba left on the host CPU
    assert "[cache] data saved" in log  # the kernels compiled
    assert "[cache] data loaded" in log  # ... some of them in the helper
    for got, want in zip(outputs, expected):
        assert np.array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# kernels.py.xz: where model.py extracts it, and what it checks (import only: nothing compiles)


def _import(art: Path, cache: Path | None, code: str = "", home: Path | None = None,
            ok: bool = True) -> str:
    """Import the artifact in a fresh process and run `code` (default: print the kernels
    module's file); its stdout, or with `ok=False` (the import must fail) its stderr."""
    script = f"import sys; sys.path.insert(0, {str(art)!r}); import model\n" + (
        code or "print(model.kernels.__file__)")
    r = subprocess.run([sys.executable, "-I", "-B", "-c", script], capture_output=True,
                       text=True, env=_env(cache, home), cwd=art.parent, timeout=300)
    assert (r.returncode == 0) == ok, r.stderr[-3000:]
    return (r.stdout if ok else r.stderr).strip()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """An artifact without a carried cache (a small generated model) and its kernels' text."""
    tmp = tmp_path_factory.mktemp("plain")
    path = tmp / "m.tflite"
    path.write_bytes(tm.chained_models()["mobilenet_v3_block"])
    model = qcc.load(path)
    rng = np.random.default_rng(0)
    calib = [[rng.uniform(0, 1, size=t.shape).astype(np.float32) for t in model.inputs]
             for _ in range(2)]
    q = qcc.quantize(model, representative_dataset=calib, target="numba")
    art = tmp / "art"
    write_artifact(compile_module(q.module), art, cache_baseline="none")
    return art, lzma.decompress((art / "kernels.py.xz").read_bytes())


def _folder(kernels: bytes) -> str:
    return "qcc-kernels-" + hashlib.sha256(kernels).hexdigest()[:16]


def test_kernels_extract_under_numba_cache_dir(plain, tmp_path):
    """With NUMBA_CACHE_DIR, kernels.py goes there (atomically, with the fixed mtime that
    keeps Numba's stamp the same for every copy) and the artifact folder is only read."""
    art, kernels = plain
    copied = tmp_path / "art"
    shutil.copytree(art, copied)
    before = _files(copied)
    where = Path(_import(copied, tmp_path / "nb", home=tmp_path / "home"))
    assert where == tmp_path / "nb" / _folder(kernels) / "kernels.py"
    assert where.read_bytes() == kernels and where.stat().st_mtime == 1_000_000_000
    assert sorted(p.name for p in where.parent.iterdir()) == ["kernels.py"]  # no temporary left
    assert _files(copied) == before


def test_kernels_extract_beside_the_model_then_to_the_user_cache(plain, tmp_path):
    """Without NUMBA_CACHE_DIR: into __pycache__ beside model.py (nothing else is written in
    the folder); where that cannot be made, into $XDG_CACHE_HOME/qcc."""
    art, kernels = plain
    copied = tmp_path / "art"
    shutil.copytree(art, copied)
    before = _files(copied)
    where = Path(_import(copied, None, home=tmp_path / "home"))
    assert where == copied / "__pycache__" / _folder(kernels) / "kernels.py"
    assert _files(copied) - before == {f"__pycache__/{_folder(kernels)}/kernels.py"}
    shutil.rmtree(copied / "__pycache__")
    (copied / "__pycache__").write_text("not a folder")  # root ignores permission bits
    where = Path(_import(copied, None, home=tmp_path / "home"))
    assert where == tmp_path / "home" / "xdg" / "qcc" / _folder(kernels) / "kernels.py"
    assert where.read_bytes() == kernels


def test_a_changed_extracted_file_is_written_again(plain, tmp_path):
    """The extracted kernels.py is checked against model.py's sha256 at every import: an
    edited or truncated copy is replaced by kernels.py.xz's."""
    art, kernels = plain
    cache = tmp_path / "nb"
    where = Path(_import(art, cache))
    for damaged in (kernels.replace(b"def ", b"def  ", 1), kernels[:100], b""):
        where.write_bytes(damaged)
        assert Path(_import(art, cache)) == where
        assert where.read_bytes() == kernels and where.stat().st_mtime == 1_000_000_000


def test_kernels_that_do_not_match_model_py_fail_in_one_line(plain, tmp_path):
    """A kernels.py.xz that is not the one model.py was written with (or is not xz, or is
    missing) makes the import fail with one line naming the file; nothing is extracted."""
    art, _ = plain
    for name, payload in (
        ("other", lzma.compress(b"print('other kernels')\n")),
        ("garbage", b"not xz at all"),
        ("missing", None),
    ):
        copied = tmp_path / name
        shutil.copytree(art, copied)
        if payload is None:
            (copied / "kernels.py.xz").unlink()
        else:
            (copied / "kernels.py.xz").write_bytes(payload)
        err = _import(copied, tmp_path / "nb", ok=False).splitlines()[-1]
        assert err.startswith("ImportError: ") and "kernels.py.xz" in err, err
        assert "write the artifact again with qcc" in err, err
        assert not list((tmp_path / "nb").glob("*/kernels.py"))


def test_cache_subfolder_follows_the_artifact_rules(tmp_path):
    out = tmp_path / "a"
    write_artifact_folder(out, {"model.py": b"1", f"{FOLDER}/k.nbi": b"2",
                                f"{FOLDER}/k.1.nbc": b"3"})
    manifest = json.loads((out / ARTIFACT_MANIFEST).read_text())["files"]
    assert sorted(manifest) == sorted(["model.py", f"{FOLDER}/k.nbi", f"{FOLDER}/k.1.nbc"])
    # rewritten without a cache: qcc's cache files go, and the emptied subfolder with them
    write_artifact_folder(out, {"model.py": b"4"})
    assert _files(out) == {"model.py", ARTIFACT_MANIFEST} and not (out / FOLDER).exists()
    # a user's file in the subfolder stays, and keeps the subfolder
    write_artifact_folder(out, {"model.py": b"5", f"{FOLDER}/k.nbi": b"6"})
    (out / FOLDER / "mine.txt").write_text("keep")
    write_artifact_folder(out, {"model.py": b"7"})
    assert (out / FOLDER / "mine.txt").read_text() == "keep"
    assert not (out / FOLDER / "k.nbi").exists()
    # a manifest never makes qcc reach outside the folder or through a link
    (tmp_path / "victim").write_text("v")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "f").write_text("v")
    (out / "link").symlink_to(outside)
    (out / ARTIFACT_MANIFEST).write_text(json.dumps(
        {"generator": "qcc", "files": ["model.py", "../victim", "link/f", "/etc/x"]}))
    write_artifact_folder(out, {"model.py": b"8"})
    assert (tmp_path / "victim").exists() and (outside / "f").exists()
    with pytest.raises(ValueError):
        write_artifact_folder(out, {"../x": b""})


def test_artifact_baseline_option_is_checked_in_one_line(tmp_path):
    from conftest import assert_one_line_error, run_qcc

    model = tmp_path / "m.tflite"
    model.write_bytes(next(iter(tm.chained_models().values())))
    result = run_qcc(str(model), "--emit=numba", "-o", str(tmp_path / "out"),
                     "--artifact-baseline=pentium")
    assert_one_line_error(result, "unknown --artifact-baseline 'pentium'; choose one of: "
                          "x86-64-v2, x86-64-v3, x86-64-v4, none")
    result = run_qcc(str(model), "-o", str(tmp_path / "m.mlir"), "--artifact-baseline=x86-64-v3")
    assert_one_line_error(result, "--artifact-baseline applies to --emit=numba output folders")
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.mlir").exists()


# ---------------------------------------------------------------------------------------------
# the first run's Numba set-up: numba.np.arraymath's BLAS probe without scipy.linalg

_PROBE = r"""
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "hide":
    sys.modules["scipy"] = None  # scipy not installed, as Numba's own import sees it
import numpy as np
import model
x = np.random.default_rng(0).uniform(0, 1, size=model.load().plan.input_specs[0][0])
model.run([x.astype(np.float32)])
import numba.np.arraymath as am, numba.np.linalg as la
print("QCC-PROBE " + json.dumps(["scipy.linalg" in sys.modules, am._HAVE_BLAS,
                                 am.ensure_blas is la.ensure_blas,
                                 la.ensure_blas.__code__.co_filename == la.__file__]))
if sys.argv[2] != "hide" and importlib.util.find_spec("scipy") is not None:
    import numba
    @numba.njit
    def dot(a, b):
        return np.dot(a, b)
    print("QCC-DOT", dot(np.ones(3), np.ones(3)), "scipy.linalg" in sys.modules)
"""


@pytest.mark.parametrize("scipy_seen", ["installed", "hide"])
def test_first_run_probes_blas_without_importing_scipy_linalg(plain, tmp_path, scipy_seen):
    """A first run sets Numba up (`_init_numba_compiler`) without numba.np.arraymath's import
    of all of scipy.linalg (~0.2 s of a warm start): `_HAVE_BLAS` is what Numba's own probe
    finds (scipy installed or not), `ensure_blas` is Numba's own again after, and np.dot in
    jitted code still compiles (importing scipy.linalg then)."""
    art, _ = plain
    r = subprocess.run([sys.executable, "-I", "-B", "-c", _PROBE, str(art), scipy_seen],
                       capture_output=True, text=True, env=_env(tmp_path / "nb"),
                       cwd=art.parent, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(s for s in r.stdout.splitlines() if s.startswith("QCC-PROBE "))
    linalg_imported, have_blas, restored, numba_own = json.loads(line.split(" ", 1)[1])
    assert not linalg_imported
    scipy_installed = scipy_seen == "installed" and importlib.util.find_spec("scipy") is not None
    assert have_blas == scipy_installed
    assert restored and numba_own
    if scipy_installed:
        assert "QCC-DOT 3.0 True" in r.stdout


_WARM = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import model
x = np.random.default_rng(0).uniform(0, 1, size=model.load().plan.input_specs[0][0])
outs = model.run([x.astype(np.float32)])
np.savez(sys.argv[2], *outs)
from numba.core.registry import cpu_target
refreshed = bool(getattr(cpu_target.target_context, "_registries", None))
registries = "numba.np.arraymath" in sys.modules
import numba
@numba.njit
def twice(a):
    return a * 2 + np.sum(a)
print("QCC-WARM " + json.dumps([refreshed, registries, float(twice(np.ones(3))[0])]))
"""


def test_a_warm_first_run_loads_without_numba_registries(plain, tmp_path):
    """With a warm cache the first run only loads its kernels: Numba's target context is not
    refreshed (its typing and lowering registries, ~0.2 s of a warm start, stay unloaded:
    `_loads_without_refresh`), the results equal the cold run's, and Numba compiles as usual
    afterwards. With one kernel's cache entry gone (the cache still has entries: the warm
    path) that kernel compiles, the registries loaded then, with the same results."""
    art, _ = plain
    cache = tmp_path / "nb"

    def run(name):
        r = subprocess.run([sys.executable, "-I", "-B", "-c", _WARM, str(art),
                            str(tmp_path / name)], capture_output=True, text=True,
                           env=_env(cache), cwd=art.parent, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        line = next(s for s in r.stdout.splitlines() if s.startswith("QCC-WARM "))
        with np.load(tmp_path / name) as z:
            outs = [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]
        return json.loads(line.split(" ", 1)[1]), outs

    (cold_refreshed, _, cold_twice), cold = run("cold.npz")
    assert cold_refreshed and cold_twice == 5.0
    (refreshed, registries, twice), warm = run("warm.npz")
    assert not refreshed and not registries and twice == 5.0
    assert all(np.array_equal(a, b) for a, b in zip(cold, warm, strict=True))
    data = sorted(cache.rglob("*.nbc"), key=lambda f: f.stat().st_size)
    assert len(data) > 3
    data[-1].unlink()  # the largest kernel's machine code
    (refreshed, _, _), partial = run("partial.npz")
    assert refreshed
    assert all(np.array_equal(a, b) for a, b in zip(cold, partial, strict=True))


def test_kernels_compile_without_a_c_callable_wrapper():
    """qcc's `njit` (runtime.fixedpoint, which every runtime module uses) compiles no
    C-callable wrapper (~7 % of a first run's compile work), unlike numba.njit; the kernel
    still runs from Python and from jitted code, and takes the other options as njit does."""
    import numba

    from qcc.runtime.fixedpoint import njit

    def wrappers(dispatcher):
        (cres,) = dispatcher.overloads.values()
        defined = {f.name for f in cres.library.get_defined_functions()}
        return cres.fndesc.llvm_cfunc_wrapper_name in defined

    def body(a):
        s = 0
        for v in a:
            s += v
        return s

    ours = njit(nogil=True)(body)
    caller = njit(lambda a: ours(a) + 1)
    theirs = numba.njit(nogil=True)(body)
    a = np.arange(5, dtype=np.int64)
    assert ours(a) == theirs(a) == 10 and caller(a) == 11
    assert not wrappers(ours) and wrappers(theirs)
    assert ours.targetoptions["nogil"] is True


def test_each_first_run_scans_the_cache_again(monkeypatch):
    """`NumbaParallelCompile` scans the runners' caches once per first run: `workers` reuses
    `first_run`'s scan, but a later first run scans again, even for runners with the same ids
    (a later plan's bound functions can be made where a freed plan's were), so a cache filled
    since is seen warm."""
    from qcc.runtime.kernels import int8_registry as reg

    filled = {"now": False}
    scans = []

    def has_entries(path, base):
        scans.append(path)
        return filled["now"]

    monkeypatch.setattr(reg, "_runner_caches", lambda runners: {("cache", "kernels")})
    monkeypatch.setattr(reg, "_cache_has_entries", has_entries)
    monkeypatch.setattr(reg, "_init_numba_compiler", lambda: None)
    monkeypatch.setenv("QCC_COMPILE_WORKERS", "1")
    compiler = reg.NumbaParallelCompile()
    runners = [len]
    assert compiler.first_run(runners) is None  # cold
    expected = 1 if sys.platform.startswith("linux") else 0
    assert compiler.workers(runners) == expected and len(scans) == 1  # the same scan
    filled["now"] = True
    assert compiler.first_run(runners) is not None and len(scans) == 2  # warm: lean loading
    assert compiler.workers(runners) == 0 and len(scans) == 2


def test_model_py_carries_cache_code_only_with_a_cache():
    """Without a carried cache, model.py has no carried-cache code (~6 KB less: it counts
    against the folder's 1.2x bound on small models), only `_QCC_CARRIED = None`; with one it
    has the prelude and the seeding. The kernels are the same text either way (one extracted
    kernels.py and Numba cache for both)."""
    from qcc.backends.numba import artifact_source

    kernels = {"add_i8", "conv2d_i8"}
    plain = artifact_source(kernels=kernels)
    carried = artifact_source(kernels=kernels, cache_baseline="x86-64-v3")
    for name in ("def _qcc_carried_cache", "def _qcc_seed_cache", "_qcc_seed_cache()"):
        assert name not in plain.model and name in carried.model, name
    assert "\n_QCC_CARRIED = None\n" in plain.model
    assert plain.kernels == carried.kernels
    assert len(carried.model) - len(plain.model) > 5000
    namespace: dict = {}
    compile(plain.model, "model.py", "exec")  # valid Python; run by the artifact tests
    exec(compile(plain.model.split("\nimport os as _qcc_os")[0], "model.py", "exec"), namespace)
    assert namespace["_QCC_CARRIED"] is None
