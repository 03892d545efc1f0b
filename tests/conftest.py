"""Shared test helpers, and the model-zoo tier.

Helpers
-------
Test files import what they need from here (`from conftest import run_litert, ...`: tests/ is
not a package, so pytest's default "prepend" import mode puts this folder on `sys.path` when it
loads this file; keep it the only conftest.py, so that `conftest` names one module):

* LiteRT, the oracle (`ai_edge_litert.interpreter`): `litert_interpreter` (tensors allocated,
  one thread, a resolver: `AUTO`, LiteRT's default with XNNPACK, or `REF`, `BUILTIN_REF`, the
  reference kernels), `litert_invoke` (set the inputs, invoke, copies of the outputs),
  `run_litert` (both at once), `litert_input_details`, `litert_input_shapes`, `custom_ops`
  (the custom op names a .tflite uses), `custom_ops_kept` (those qcc's presets keep: the ones
  canonicalize-custom-ops does not rewrite into a builtin).
* Data: `litert_inputs` (deterministic inputs for a .tflite, uniform in a range; int8/uint8
  inputs quantized with their own parameters), `model_samples` (deterministic samples for a
  `qcc.Model`: calibration data or inputs, optionally in the ranges the model declares),
  `snr_db`.
* The `qcc` command: `run_qcc` (a subprocess; stdin closed unless given) and
  `assert_one_line_error` (exit code 1, exactly one `qcc: error: ...` line, no traceback).
* `run_pytest_emulating_vnni`: pytest in a child process with the VNNI path's instructions
  emulated (QCC_SIMD_EMULATE=avx512vnni), for hosts without AVX-512 VNNI. A test that calls
  the VNNI kernels directly carries the `vnni_native` marker: on such a host
  `pytest_collection_modifyitems` deselects it here, and test_vnni_emulated.py's child runs
  it (and checks that it passed).
* `write_model` (fixture): model bytes written into the test's tmp_path; returns the path.
* `add_summary`: a table of measurements printed in pytest's terminal summary (rather than by
  a pseudo-test that asserts nothing).

The model zoo
-------------
`$QCC_MODEL_ZOO` names a folder of real models (CI: ../shared/models); the photos beside it,
`$QCC_MODEL_ZOO/../data/images/{calib,eval}` (`zoo_images`), are used when they exist. Tests of
the zoo tier take their cases from `zoo_models()` and carry the `zoo` marker, most simply
through `@zoo_parametrize("path")`: the marker and a parametrization over the zoo's *.tflite
files (ids: the file stems, or `ids="name"`; `select=` filters).

Without `$QCC_MODEL_ZOO` the tier produces no test items at all: not "SKIPPED: got empty
parameter set" (a skipped test reads like a missing one; here nothing is missing, the tier is
off). `pytest_collection_modifyitems` drops every `zoo`-marked item when the variable is unset,
and a `zoo`-marked item whose parametrization came out empty (a zoo without a model of the kind
the test takes) when it is set. pytest collects one placeholder item per such test function
before the hook runs, so it reports them as "deselected"; the report header says whether the
tier is on. `-m zoo` runs only the tier, `-m "not zoo"` everything else. A `$QCC_MODEL_ZOO`
that is not a folder is a usage error, not a silently empty tier. A test that needs the zoo
must carry the marker (a `skipif` on the variable would show as a skipped test).

The zoo may hold models that are not in ../shared (qcc is measured on other models too): a zoo
test works on any file, with per-model expectations only for the models it knows. A model
photos cannot feed (audio features, ...) calibrates on generated samples (`zoo_data`). An
already-quantized model (`zoo_model_is_quantized`) is tested as it is, by
test_zoo_quantized_models.py; `zoo_parametrize` gives the other tests the float models.
"""

from __future__ import annotations

import functools
import operator
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

ZOO_VARIABLE = "QCC_MODEL_ZOO"

# ---------------------------------------------------------------------------------------------
# LiteRT


AUTO = OpResolverType.AUTO
"""LiteRT's default resolver (optimized kernels, XNNPACK delegate)."""
REF = OpResolverType.BUILTIN_REF
"""LiteRT's reference kernels: the oracle for qcc's integer runtime."""


def litert_interpreter(content: bytes | Path, resolver=AUTO, *, preserve_all_tensors: bool = False,
                       num_threads: int = 1):
    """A LiteRT Interpreter for a .tflite (bytes or a path), tensors allocated."""
    if isinstance(content, (str, os.PathLike)):
        content = Path(content).read_bytes()
    with warnings.catch_warnings():
        # "experimental_preserve_all_tensors ... is intended for debugging": here it is the point
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(
            model_content=bytes(content),
            num_threads=num_threads,
            experimental_op_resolver_type=resolver,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
    interpreter.allocate_tensors()
    return interpreter


def litert_invoke(interpreter, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Set `inputs` (one per model input, in order), invoke, return copies of the outputs."""
    details = interpreter.get_input_details()
    assert len(inputs) == len(details), f"{len(inputs)} inputs for a model with {len(details)}"
    for detail, x in zip(details, inputs):
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def run_litert(content: bytes | Path, inputs: Sequence[np.ndarray], resolver=AUTO, *,
               num_threads: int = 1) -> list[np.ndarray]:
    """LiteRT's outputs for `inputs` on a .tflite (bytes or a path)."""
    return litert_invoke(litert_interpreter(content, resolver, num_threads=num_threads), inputs)


def litert_lacks_custom_ops(content: bytes | Path, resolver=AUTO) -> list[str]:
    """The model's custom ops (`custom_ops`) when LiteRT's `resolver` cannot prepare it for
    want of a custom op's kernel (MediaPipe's Landmarks2TransformMatrix, TransformLandmarks:
    LiteRT has none, and then runs none of the model), else []. A test whose oracle is LiteRT
    running the model has none for such a model: it checks instead that LiteRT refuses the
    files qcc writes for the same reason, and what qcc can check on its own."""
    try:
        litert_interpreter(content, resolver)
    except RuntimeError as e:
        if "unresolved custom op" not in str(e):
            raise
        names = custom_ops(content)
        assert any(name in str(e) for name in names), e
        return names
    return []


def assert_litert_lacks_the_same_custom_ops(original: bytes | Path, written: bytes | Path,
                                            resolver=AUTO) -> None:
    """LiteRT refuses `written` (a file qcc wrote from `original`) as it refuses `original`:
    for a custom op it has no kernel for, one `original` has too."""
    lacking = litert_lacks_custom_ops(original, resolver)
    assert lacking, "LiteRT prepares the original model"
    again = litert_lacks_custom_ops(written, resolver)
    assert again and set(again) <= set(lacking), (again, lacking)


def litert_input_details(content: bytes | Path) -> list[dict]:
    """LiteRT's input details (name, shape, dtype, quantization) of a .tflite."""
    if isinstance(content, (str, os.PathLike)):
        content = Path(content).read_bytes()
    return Interpreter(model_content=bytes(content), num_threads=1).get_input_details()


def litert_output_details(content: bytes | Path) -> list[dict]:
    """LiteRT's output details of a .tflite (read without preparing it: a model with a custom
    op LiteRT lacks has them too)."""
    if isinstance(content, (str, os.PathLike)):
        content = Path(content).read_bytes()
    return Interpreter(model_content=bytes(content), num_threads=1).get_output_details()


def litert_input_shapes(content: bytes | Path) -> list[list[int]]:
    """The input shapes of a .tflite, as LiteRT reads them."""
    return [[int(v) for v in d["shape"]] for d in litert_input_details(content)]


def litert_inputs(content: bytes | Path, seed: int = 0, low: float = 0.0, high: float = 1.0,
                  ranges: Sequence[tuple[float, float] | None] | None = None) -> list[np.ndarray]:
    """Deterministic inputs for a .tflite: uniform in [low, high) (or `ranges[i]` where given)
    as float32; an int8 / uint8 input gets those values quantized with its own parameters
    (realistic codes rather than uniform noise)."""
    rng = np.random.default_rng(seed)
    xs = []
    for i, d in enumerate(litert_input_details(content)):
        lo, hi = ranges[i] if ranges and ranges[i] else (low, high)
        x = rng.uniform(lo, hi, size=d["shape"]).astype(np.float32)
        if d["dtype"] in (np.int8, np.uint8):
            scale, zp = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(d["dtype"])
        xs.append(x)
    return xs


def model_samples(model, n: int = 4, seed: int = 0, low: float = 0.0, high: float = 1.0, *,
                  declared: bool = False) -> list[list[np.ndarray]]:
    """`n` deterministic samples for a `qcc.Model` (calibration data, or inputs to run): one
    float32 array per model input, uniform in [low, high), or in the range the model declares
    for that input (TFLite metadata) when `declared` and it declares one."""
    if declared:
        shapes_ranges = [(s.shape, s.value_range or (low, high)) for s in model.input_specs()]
    else:
        shapes_ranges = [(t.shape, (low, high)) for t in model.inputs]
    rng = np.random.default_rng(seed)
    return [[rng.uniform(lo, hi, size=shape).astype(np.float32) for shape, (lo, hi) in shapes_ranges]
            for _ in range(n)]


FLOAT_ISLAND_RTOL = 1e-5
"""How far an output computed through a float island (a float op between dequantize and
quantize, as the xnnpack target keeps SOFTMAX) may be from BUILTIN_REF's, relative to the
output's largest magnitude: float kernels agree to a few ulps, not bit for bit (numpy's exp
and the reference kernel's std::exp, summation order); the int8 steps around it stay exact."""


def outputs_after_float_ops(module) -> set[int]:
    """The indices of the function's results that a float op (not a constant, reading or
    writing no quantized activation: `op_is_quantized`) computes or feeds: the outputs a
    float island or a dynamic-range layer reaches, which no oracle matches bit for bit."""
    from qcc.backends.numba import op_is_quantized
    from qcc.dialects import nn
    from qcc.dialects.ir import find_main

    block = find_main(module).body.block
    tainted: set = set()
    for op in block.ops:
        if op is block.last_op:
            break
        if (not isinstance(op, nn.ConstantOp) and not op_is_quantized(op)) or any(
                v in tainted for v in op.operands):
            tainted.update(op.results)
    return {i for i, v in enumerate(block.last_op.operands) if v in tainted}


def samples_npz(model, path: Path, n: int, seed: int = 0) -> Path:
    """Write `model_samples(model, n, seed, declared=True)` to `path` as a calibration .npz
    (one array per input, named after it: the samples stacked, each without its batch axis
    of 1); returns path."""
    specs = model.input_specs()
    samples = model_samples(model, n, seed=seed, declared=True)
    np.savez(path, **{s.name: np.stack([x[i][0] for x in samples]) for i, s in enumerate(specs)})
    return path


def zoo_data(model: Path, tmp_path: Path, calibration: int = 8, held_out: int = 4
             ) -> tuple[str, Path, list[list[np.ndarray]]]:
    """(kind, the --calibration argument, the held-out inputs) for a zoo model: the zoo's
    photos ("photos": data/images/calib, and the eval photos as inputs) when they feed the
    model, else ("generated") `calibration` generated samples in a .npz under tmp_path and
    `held_out` others (an audio or other non-image model, or a zoo without photos)."""
    import qcc
    from qcc.calibration import load_representative_data
    from qcc.errors import QccError

    loaded = qcc.load(model)
    calib, held = zoo_images("calib"), zoo_images("eval")
    if calib is not None and held is not None:
        try:
            return "photos", calib, list(load_representative_data(held, loaded.input_specs()))
        except QccError:  # not an image model: generated data below
            pass
    path = samples_npz(loaded, tmp_path / "calibration.npz", calibration)
    return "generated", path, model_samples(loaded, held_out, seed=1, declared=True)


def custom_ops(content: bytes | Path) -> list[str]:
    """The custom op names (operator codes) a .tflite uses."""
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(content, (str, os.PathLike)):
        content = Path(content).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytes(content), 0)
    return [
        c.customCode.decode() if isinstance(c.customCode, bytes) else c.customCode
        for c in model.operatorCodes or []
        if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.CUSTOM
    ]


def custom_ops_kept(path: str | os.PathLike[str]) -> list[str]:
    """The custom ops of a .tflite that stay custom ops in qcc's presets: those left after
    canonicalize-custom-ops (MediaPipe's Convolution2DTransposeBias becomes TRANSPOSE_CONV)."""
    return _custom_ops_kept(str(path))


@functools.cache
def _custom_ops_kept(path: str) -> list[str]:
    from qcc.dialects import nn
    from qcc.frontends.tflite import import_tflite
    from qcc.pipeline import build_pipeline

    if not custom_ops(Path(path)):
        return []
    module = import_tflite(path)
    for p in build_pipeline("builtin.module(canonicalize-custom-ops)"):
        p.apply(None, module)  # type: ignore[arg-type]  # the pass needs no context
    return sorted({op.op_name.data for op in module.walk()
                   if isinstance(op, nn.GenericOp) and op.custom.value.data})


def snr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - actual)^2), in float64 (both sums offset by 1e-20, so
    that equal arrays give a large finite number and an all-zero reference with zero error 0)."""
    reference = np.asarray(reference, np.float64)
    noise = reference - np.asarray(actual, np.float64)
    return float(10 * np.log10((np.sum(reference**2) + 1e-20) / (np.sum(noise**2) + 1e-20)))


# ---------------------------------------------------------------------------------------------
# The `qcc` command

QCC = [sys.executable, "-m", "qcc.cli"]


def run_qcc(*args: str, stdin: bytes | None = None, cwd: Path | None = None,
            timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`qcc ARGS...` in a fresh process; stdout and stderr captured as bytes; standard input
    is `stdin` when given, else closed (/dev/null)."""
    stdio = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([*QCC, *args], capture_output=True, timeout=timeout, check=False,
                          cwd=cwd, env=env, **stdio)


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str = "") -> str:
    """The driver's contract for bad input: exit code 1, exactly one line on stderr, starting
    `qcc: error: ` and holding `fragment`, no traceback. Returns the line."""
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode == 1, f"exit code {result.returncode}: {stderr}"
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("qcc: error: "), stderr
    assert "Traceback" not in stderr
    assert fragment in stderr, stderr
    return stderr


# ---------------------------------------------------------------------------------------------
# The VNNI path on hosts without AVX-512 VNNI

ROOT = Path(__file__).resolve().parent.parent


def run_pytest_emulating_vnni(tmp_path: Path, *args: str, timeout: float = 1200) -> str:
    """`pytest ARGS...` in a fresh process with QCC_SIMD_EMULATE=avx512vnni (the VNNI path's
    instructions in generic IR: `simd.SIMD_EMULATED`), from the repository root, the zoo tier
    as in this run (`run_pytest_child`)."""
    return run_pytest_child(tmp_path, {"QCC_SIMD_EMULATE": "avx512vnni"}, *args,
                            timeout=timeout)


def run_pytest_child(tmp_path: Path, env_update: dict[str, str], *args: str,
                     timeout: float = 1200) -> str:
    """`pytest ARGS...` in a fresh process with `env_update` in its environment and a fresh
    NUMBA_CACHE_DIR, from the repository root, the zoo tier as in this run; asserts that it
    passed, at least one test, with nothing skipped or failed. Returns pytest's output (its
    summary is the last line)."""
    env = {k: v for k, v in os.environ.items() if k not in ("QCC_INT8_GEMM", "PYTEST_ADDOPTS")}
    env.update(env_update, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--basetemp", str(tmp_path / "child"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in summary and not any(
        w in summary for w in ("skipped", "failed", "error", "xfail")), summary
    return proc.stdout


@pytest.fixture
def write_model(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """`write_model(name, content)`: the bytes written to tmp_path/name (".tflite" appended
    when `name` has no suffix); returns the path."""

    def write(name: str, content: bytes) -> Path:
        path = tmp_path / (name if Path(name).suffix else f"{name}.tflite")
        path.write_bytes(content)
        return path

    return write


# ---------------------------------------------------------------------------------------------
# Measurement tables in the terminal summary

_SUMMARIES: dict[str, Callable[[], list[str]]] = {}


def add_summary(title: str, render: Callable[[], list[str]]) -> None:
    """Print `render()`'s lines (when there are any) under `title` in pytest's terminal summary,
    after the run: how a test file shows what it measured (equal fractions, SNRs...) without a
    pseudo-test that prints it."""
    _SUMMARIES[title] = render


def pytest_terminal_summary(terminalreporter) -> None:
    for title, render in _SUMMARIES.items():
        lines = render()
        if lines:
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line)


# ---------------------------------------------------------------------------------------------
# The model zoo


def zoo_dir() -> Path | None:
    """The folder $QCC_MODEL_ZOO names, or None when it is unset (or empty)."""
    folder = os.environ.get(ZOO_VARIABLE)
    return Path(folder) if folder else None


def zoo_models(suffixes: Iterable[str] = (".tflite",),
               select: Callable[[Path], bool] | None = None) -> list[Path]:
    """The zoo's model files with these suffixes (sorted; [] without a zoo), those for which
    `select(path)` holds when it is given."""
    folder = zoo_dir()
    if folder is None or not folder.is_dir():
        return []
    wanted = {s.lower() for s in suffixes}
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted)
    return [p for p in paths if select is None or select(p)]


def zoo_images(split: str) -> Path | None:
    """$QCC_MODEL_ZOO/../data/images/<split> ("calib" or "eval") when that folder exists."""
    folder = zoo_dir()
    if folder is None:
        return None
    images = folder.parent / "data" / "images" / split
    return images if images.is_dir() else None


@functools.cache
def zoo_model_is_quantized(path: Path) -> bool:
    """Whether a zoo model is already quantized (an int8 .tflite, or a dynamic-range one):
    what qcc's quantization presets refuse (`qcc.api.refuse_quantized_input`). The zoo tier
    tests such a model as it is (test_zoo_quantized_models.py) and its other tests, which
    quantize, take the float models only."""
    from qcc.api import refuse_quantized_input
    from qcc.errors import QccError
    from qcc.frontends.tflite import import_tflite

    if path.suffix.lower() != ".tflite":
        return False
    try:
        refuse_quantized_input(import_tflite(path), path.name)
    except QccError as e:
        return "is already quantized" in str(e)  # else an import error: the tests report it
    return False


def zoo_parametrize(argname: str = "path", *, ids: str | Callable[[Path], str] = "stem",
                    suffixes: Iterable[str] = (".tflite",),
                    select: Callable[[Path], bool] | None = None, quantized: bool = False):
    """Mark a test `zoo` and parametrize `argname` over `zoo_models(suffixes, select)` (Paths;
    ids: "stem", "name" or a function of the path): the float models, or with `quantized`
    the already-quantized ones (`zoo_model_is_quantized`)."""
    if callable(ids):
        ident = ids
    elif ids in ("stem", "name"):
        ident = operator.attrgetter(ids)
    else:
        raise ValueError(f"ids must be 'stem', 'name' or a function, not {ids!r}")
    params = zoo_models(suffixes, lambda p: zoo_model_is_quantized(p) == quantized
                        and (select is None or select(p)))

    def decorate(test):
        return pytest.mark.zoo(pytest.mark.parametrize(argname, params, ids=ident)(test))

    return decorate


def pytest_configure(config: pytest.Config) -> None:
    # qcc's caches (the sensitivity analysis' results) go to a temporary folder: tests write
    # only inside temporary folders, and a user's cache never changes a test's outcome
    if "QCC_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["QCC_CACHE_DIR"] = tempfile.mkdtemp(prefix="qcc-test-cache-")
    config.addinivalue_line(
        "markers", "zoo: a test of the real-model tier ($QCC_MODEL_ZOO); no items without it"
    )
    config.addinivalue_line(
        "markers", "vnni_native: runs the AVX-512 VNNI kernels directly; on a host without "
        "them, run by test_vnni_emulated.py's child (emulated) instead of here"
    )
    folder = zoo_dir()
    if folder is not None and not folder.is_dir():
        raise pytest.UsageError(f"{ZOO_VARIABLE}={folder}: not a folder")


def pytest_report_header(config: pytest.Config) -> str:
    folder = zoo_dir()
    if folder is None:
        return f"model zoo: {ZOO_VARIABLE} unset, the zoo tier has no test items"
    models = zoo_models((".tflite", ".onnx"))
    photos = zoo_images("calib") is not None and zoo_images("eval") is not None
    return (f"model zoo: {folder} ({len(models)} models"
            f"{', with calib/eval photos' if photos else ', no photos'})")


def _empty_parametrization(item: pytest.Item) -> bool:
    return any(
        str(mark.kwargs.get("reason", "")).startswith("got empty parameter set")
        for mark in item.iter_markers("skip")
    )


def _host_runs_vnni() -> bool:
    """Whether this process runs the VNNI kernels (the CPU has AVX-512 VNNI, or
    QCC_SIMD_EMULATE emulates it)."""
    from qcc.runtime.kernels import int8_vnni

    return bool(int8_vnni.VNNI_OK)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a zoo, the `zoo` tier has no items (see the module docstring). Without the
    VNNI kernels, the `vnni_native` items run in test_vnni_emulated.py's child process (its
    instructions emulated: one child compiles the emulated kernels once for all of them), not
    here."""
    off = zoo_dir() is None
    vnni = None
    dropped = []
    for item in items:
        if item.get_closest_marker("zoo") and (off or _empty_parametrization(item)):
            dropped.append(item)
        elif item.get_closest_marker("vnni_native"):
            vnni = _host_runs_vnni() if vnni is None else vnni
            if not vnni:
                dropped.append(item)
    if dropped:
        # reported as deselected, so that pytest's count of collected items adds up
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]
