"""Seeded mutation fuzzing of qcc's inputs: what the CI fuzz tests and `bench/fuzz.py` run.

Each case is one malformed (or odd but valid) input handed to qcc the way a user would hand it:
the `qcc` command with a mutated .tflite, mutated .mlir text, a mutated pipeline string or
broken calibration data, or a Python API call with wrong arguments. Every case runs in a
forked child of a warmed-up process (so thousands of cases fit in minutes), in its own
temporary folder, with no stdin and a timeout. The outcome classes:

good
    `error`: exit code 1 and stderr made only of `qcc: error: ...` / `qcc: warning: ...` lines
    (at least one error), no output file, no temporary file left behind;
    `ok`: exit code 0 and an output that works: a .tflite that LiteRT loads and prepares
    (`allocate_tensors()`), a non-empty .mlir, an artifact folder with its files.
bad
    `traceback` (a Python traceback, or any stderr line that is not one of qcc's), `signal`
    (the process died by a signal), `hang` (the timeout), `exit-code` (neither 0 nor 1),
    `partial-output` (an output or temporary file left after an error), `modified-input`
    (an input file's bytes changed), `unusable-output` (exit 0, but the output does not load),
    `api-exception` (a Python call raised something other than QccError, or the runtime's
    one-line ExecutorError for a model it cannot run).

    from qcc.testing.fuzz import Fuzzer, default_seeds
    fuzzer = Fuzzer(default_seeds(), workdir, seed=0, timeout=30)
    for case, outcome in fuzzer.run(kinds=KINDS, seconds=60): ...

Seeds are small models built in code (`qcc.testing.tflite_models`) plus, for longer runs, any
.tflite files given (the model zoo). Mutations are drawn from a `random.Random(seed)`, so a run
is reproducible, and every bad case is kept with its files and command line to replay it.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("tflite", "mlir", "pipeline", "calibration", "api", "output")
"""The input kinds the fuzzer mutates."""

GOOD = ("error", "ok")
BAD = (
    "traceback",
    "signal",
    "hang",
    "exit-code",
    "partial-output",
    "modified-input",
    "unusable-output",
    "api-exception",
)

INTERESTING_U32 = (0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                   0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING_INTS = (0, 1, -1, 2, -2, 3, -7, 7, 64, 255, 256, 65535, 2**31 - 1, 2**31, 2**32,
                    -(2**31), 2**63, 10**20)
INTERESTING_FLOATS = (0.0, -0.0, 1.0, -1.0, 1e-45, 1e-30, 3e38, 1e39, -3e38, float("nan"),
                      float("inf"), float("-inf"), 0.5, 255.0)


# ------------------------------------------------------------------------------------------
# Seeds
# ------------------------------------------------------------------------------------------


@dataclass
class Seed:
    """A valid starting point: a float .tflite, a calibration set for it, and its IR texts."""

    name: str
    tflite: bytes
    calibration: bytes  # an .npz of representative samples
    mlir: list[str] = field(default_factory=list)  # float IR, IR with stats, quantized IR
    quantized_tflite: bytes | None = None


def _calibration_npz(model_bytes: bytes, count: int = 4, seed: int = 0) -> bytes:
    """An .npz of `count` samples for every float input of the model (uniform in [0, 1])."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes)
    rng = np.random.default_rng(seed)
    arrays = {}
    for d in interp.get_input_details():
        shape = [count, *[int(s) for s in d["shape"]][1:]] if len(d["shape"]) else [count]
        arrays[d["name"]] = rng.uniform(0.0, 1.0, size=shape).astype(d["dtype"])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def make_seed(name: str, tflite: bytes, *, with_ir: bool = True) -> Seed:
    """A seed from a float .tflite: calibration data, and (with_ir) its float, annotated and
    quantized IR and quantized .tflite, made with qcc itself."""
    calibration = _calibration_npz(tflite)
    seed = Seed(name, tflite, calibration)
    if not with_ir:
        return seed
    import qcc
    from qcc.context import make_context
    from qcc.frontends.tflite import import_tflite
    from qcc.irtext import print_ir
    from qcc.pipeline import build_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        calib.write_bytes(calibration)
        module = import_tflite(tflite, name=f"{name}.tflite")
        seed.mlir.append(print_ir(module))
        annotated = module.clone()
        for p in build_pipeline(f"fuse-activation,annotate-ranges{{calibration=\"{calib}\"}}"):
            p.apply(make_context(), annotated)
        seed.mlir.append(print_ir(annotated))
        quantized = qcc.quantize(qcc.Model(module), representative_dataset=str(calib))
        seed.mlir.append(print_ir(quantized.module))
        seed.quantized_tflite = quantized.to_tflite()
    return seed


def default_seeds(zoo: Sequence[str | os.PathLike[str]] = ()) -> list[Seed]:
    """Small models built in code (a conv net, a residual classifier, a multi-input model),
    plus one seed per .tflite file in `zoo` (without IR seeds: those models are large)."""
    from qcc.testing import tflite_models as tm

    chained = tm.chained_models()
    singles = tm.single_op_models()
    seeds = [
        make_seed("conv_2d_same_relu6", singles["conv_2d_same_relu6"]),
        make_seed("residual_classifier", chained["residual_classifier"]),
        make_seed("mobilenet_v3_block", chained["mobilenet_v3_block"]),
        make_seed("multi_io", tm.multi_io_model()),
    ]
    for path in zoo:
        p = Path(path)
        seeds.append(make_seed(p.stem, p.read_bytes(), with_ir=False))
    return seeds


# ------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One input for qcc. `files` are written to the case folder (all of them are inputs);
    `argv` is the `qcc` command line (paths relative to the folder), or `api` a function run
    in the folder instead. `output` is the path qcc is asked to write, if any."""

    kind: str
    label: str
    files: dict[str, bytes]
    argv: list[str] = field(default_factory=list)
    output: str | None = None
    api: Callable[[], Any] | None = None
    setup: Callable[[Path], None] | None = None
    """Makes folders, symlinks and hard links in the case folder after `files` are written."""
    replaceable: frozenset[str] = frozenset()
    """Entries of the folder qcc may replace when it succeeds (a stale output file); every
    other entry that existed before must be exactly as it was, success or not."""


@dataclass
class Outcome:
    cls: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return self.cls in BAD


# -- .tflite ------------------------------------------------------------------------------


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    buf = bytearray(data)
    n = len(buf)
    choice = rng.randrange(8)
    if choice == 0:
        count = rng.randint(1, 8)
        for _ in range(count):
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf), f"flip {count} bits"
    if choice == 1 and n >= 8:
        i = rng.randrange(0, n - 4) & ~3
        value = rng.choice(INTERESTING_U32 + (n, n + 4, n - 4, rng.randrange(n)))
        struct.pack_into("<I", buf, i, value & 0xFFFFFFFF)
        return bytes(buf), f"u32 at {i} = {value:#x}"
    if choice == 2 and n >= 4:
        i = rng.randrange(0, n - 2) & ~1
        value = rng.choice((0, 1, 2, 3, 4, 0xFF, 0x7FFF, 0x8000, 0xFFFF, rng.randrange(65536)))
        struct.pack_into("<H", buf, i, value)
        return bytes(buf), f"u16 at {i} = {value:#x}"
    if choice == 3:
        cut = rng.randrange(n)
        return bytes(buf[:cut]), f"truncate to {cut}"
    if choice == 4 and n > 16:
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 64))
        return bytes(buf[:i] + buf[j:]), f"delete {i}:{j}"
    if choice == 5 and n > 16:
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 64))
        at = rng.randrange(n)
        return bytes(buf[:at] + buf[i:j] + buf[at:]), f"duplicate {i}:{j} at {at}"
    if choice == 6:
        i = rng.randrange(n)
        chunk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        buf[i : i + len(chunk)] = chunk
        return bytes(buf[:n]), f"random bytes at {i}"
    i = rng.randrange(n)
    return bytes(buf[:i] + bytes([rng.randrange(256)]) * rng.randint(1, 16) + buf[i:]), "insert"


def _leaves(obj: Any, path: str, out: list[tuple[Any, str, str]], depth: int = 0) -> None:
    """(owner, attribute, path) of every scalar or array field in a schema object tree."""
    if depth > 8:
        return
    for name, value in vars(obj).items():
        where = f"{path}.{name}"
        if isinstance(value, (bool, int, float, np.ndarray, bytes, str)) or value is None:
            out.append((obj, name, where))
        elif isinstance(value, list):
            out.append((obj, name, where))
            for k, item in enumerate(value[:64]):
                if hasattr(item, "__dict__"):
                    _leaves(item, f"{where}[{k}]", out, depth + 1)
        elif hasattr(value, "__dict__"):
            _leaves(value, where, out, depth + 1)


def _mutate_model_object(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A semantic mutation: one field of the unpacked model set to an odd value, repacked (so
    the flatbuffer stays well formed and the importer's own checks are what is tested)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    leaves: list[tuple[Any, str, str]] = []
    _leaves(model, "model", leaves)
    owner, name, where = rng.choice(leaves)
    value = getattr(owner, name)
    if isinstance(value, float):
        new: Any = rng.choice(INTERESTING_FLOATS)
    elif isinstance(value, bool):
        new = not value
    elif isinstance(value, int):
        new = rng.choice((0, 1, -1, 2, 3, 7, 99, 127, 255, 2**31 - 1, -(2**31), value + 1,
                          value - 1))
    elif isinstance(value, np.ndarray) and value.size:
        new = value.copy()
        k = rng.randrange(new.size)
        if new.dtype.kind == "f":
            new.flat[k] = rng.choice(INTERESTING_FLOATS)
        else:
            info = np.iinfo(new.dtype)
            new.flat[k] = rng.choice([v for v in (0, 1, -1, 2, 7, 99, info.max, info.min)
                                      if info.min <= v <= info.max])
        if rng.random() < 0.2:
            new = new[: rng.randrange(new.size)]
    elif isinstance(value, list) and value:
        new = list(value)
        op = rng.randrange(3)
        if op == 0:
            del new[rng.randrange(len(new))]
        elif op == 1:
            new.append(new[rng.randrange(len(new))])
        else:
            rng.shuffle(new)
    elif isinstance(value, (bytes, str)):
        new = value[: rng.randrange(len(value) + 1)] if value else ("x" if isinstance(value, str) else b"x")
    else:
        new = rng.choice((0, 1, -1, 2**31 - 1))
    setattr(owner, name, new)
    builder = flatbuffers.Builder(1024)
    try:
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    except Exception:  # noqa: BLE001 - a value the schema cannot hold: fall back to bytes
        return _mutate_bytes(rng, data)
    return bytes(builder.Output()), f"{where} = {_short(new)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def tflite_case(rng: random.Random, seed: Seed) -> Case:
    base = seed.tflite if seed.quantized_tflite is None or rng.random() < 0.7 else seed.quantized_tflite
    if rng.random() < 0.5:
        data, what = _mutate_model_object(rng, base)
    else:
        data, what = _mutate_bytes(rng, base)
        if rng.random() < 0.3:
            data, more = _mutate_bytes(rng, data)
            what += "; " + more
    files = {"model.tflite": data, "calib.npz": seed.calibration}
    mode = rng.randrange(4)
    if mode == 0:
        argv, out = ["model.tflite", "-o", "out.mlir"], "out.mlir"
    elif mode == 1:
        argv, out = ["model.tflite", "-o", "out.tflite"], "out.tflite"
    elif mode == 2:
        argv, out = ["model.tflite", "--mode=dynamic-range", "-o", "out.tflite"], "out.tflite"
    else:
        argv = ["model.tflite", "--calibration", "calib.npz", "-o", "out.tflite"]
        out = "out.tflite"
    return Case("tflite", f"{seed.name}: {what}", files, argv, out)


# -- .mlir --------------------------------------------------------------------------------

_INT = re.compile(r"(?<![\w.#%\"])-?\d+(?![\w.\"])")
_FLOAT = re.compile(r"-?\d+\.\d+(?:e[+-]?\d+)?")
_VALUE = re.compile(r"%\d+")


def _mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    choice = rng.randrange(10)
    if choice == 0:
        # cut inside a dense<"0x... constant when there is one (the lexer's worst case)
        hexes = [m.start() for m in re.finditer(r'dense<"0x', text)]
        cut = rng.choice(hexes) + rng.randint(4, 40) if hexes and rng.random() < 0.5 else rng.randrange(len(text))
        return text[:cut], f"truncate at {cut}"
    if choice in (1, 2):
        found = list(_INT.finditer(text))
        if found:
            m = rng.choice(found)
            value = rng.choice(INTERESTING_INTS)
            return text[: m.start()] + str(value) + text[m.end():], f"int {m.group()} -> {value}"
    if choice == 3:
        found = list(_FLOAT.finditer(text))
        if found:
            m = rng.choice(found)
            value = rng.choice(INTERESTING_FLOATS)
            spelled = {"nan": "0x7FC00000", "inf": "0x7F800000", "-inf": "0xFF800000"}.get(
                repr(value), repr(value))
            return text[: m.start()] + spelled + text[m.end():], f"float {m.group()} -> {spelled}"
    if choice == 4 and len(lines) > 2:
        i = rng.randrange(len(lines))
        del lines[i]
        return "\n".join(lines), f"delete line {i + 1}"
    if choice == 5 and len(lines) > 2:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines)), lines[i])
        return "\n".join(lines), f"duplicate line {i + 1}"
    if choice == 6:
        found = list(_VALUE.finditer(text))
        if len(found) > 1:
            m, other = rng.choice(found), rng.choice(found)
            return text[: m.start()] + other.group() + text[m.end():], f"{m.group()} -> {other.group()}"
    if choice == 7:
        swaps = [("f32", "i8"), ("f32", "f16"), ("i8", "i32"), ("SAME", "VALID"),
                 ("RELU6", "TANH"), ("RELU", "BOGUS"), ("x", "y"), ("tensor<", "tensor<0x"),
                 ("array<i64:", "array<i64: -7,"), ("i8:f32", "i8:f32:9"), ("<", ""),
                 ("quant.uniform<i8", "quant.uniform<i4")]
        a, b = rng.choice(swaps)
        found = [m.start() for m in re.finditer(re.escape(a), text)]
        if found:
            at = rng.choice(found)
            return text[:at] + b + text[at + len(a):], f"{a!r} -> {b!r} at {at}"
    if choice == 8:
        at = rng.randrange(len(text) + 1)
        junk = rng.choice(['"', "{", "}", "(", ")", "<", ">", "\x00", "\u00e9", "//", "\\",
                           "0x", "%", "^bb0:", "!quant.uniform<", "loc(", "dense<"])
        return text[:at] + junk + text[at:], f"insert {junk!r} at {at}"
    start = rng.randrange(len(text))
    end = min(len(text), start + rng.randint(1, 80))
    return text[:start] + text[end:], f"delete {start}:{end}"


_MLIR_PIPELINES = (
    [],
    ["--pass-pipeline=fuse-activation,cse"],
    ["--pass-pipeline=infer-scales,legalize-fallback,quantize"],
    ["--pass-pipeline=quantize"],
    ["--pass-pipeline=verify-int8"],
    ["--calibration", "calib.npz"],
)


def mlir_case(rng: random.Random, seed: Seed) -> Case:
    text = rng.choice(seed.mlir)
    mutated, what = _mutate_text(rng, text)
    if rng.random() < 0.3:
        mutated, more = _mutate_text(rng, mutated)
        what += "; " + more
    files = {"model.mlir": mutated.encode("utf-8", "surrogatepass"), "calib.npz": seed.calibration}
    out = rng.choice(("out.mlir", "out.tflite", "out.tflite", "art"))
    argv = ["model.mlir", *rng.choice(_MLIR_PIPELINES), "-o", out]
    if out == "art":
        argv.append("--emit=numba")
    return Case("mlir", f"{seed.name}: {what}", files, argv, out)


# -- pipelines ----------------------------------------------------------------------------

_PASS_NAMES = (
    "fuse-activation", "decompose-prelu", "annotate-ranges", "bias-correction", "infer-scales",
    "legalize-fallback", "verify-int8", "quantize", "modify-io", "dynamic-range", "cse", "dce",
    "canonicalize", "nope", "annotate_ranges", "builtin.module", "quantize2", "",
)
_OPTION_VALUES = (
    "0", "1", "-1", "2", "1e9", "99999999999999999999999", "nan", "inf", "-inf", "0.5", "true",
    "false", "yes", "minmax", "percentile", "mse", "bogus", "int8", "uint8", "int16", "float",
    "calib.npz", "missing.npz", "model.tflite", ".", "\"\"", "\"a b\"", "1,2", "-1,1", "0,1",
    "1,0", "a,b", "99.9", "100", "101", "1e-9",
)
_OPTION_NAMES = ("calibration", "method", "samples", "bins", "percentile", "input-range",
                 "per-channel-fc", "dtype", "symmetric", "bogus", "num-bits", "mode")


def _random_pipeline(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(_PASS_NAMES)
        if rng.random() < 0.5:
            opts = []
            for _ in range(rng.randint(0, 3)):
                key = rng.choice(_OPTION_NAMES)
                if key == "calibration" and rng.random() < 0.7:
                    value = "calib.npz"
                else:
                    value = rng.choice(_OPTION_VALUES)
                opts.append(f"{key}={value}" if rng.random() < 0.9 else key)
            name += "{" + " ".join(opts) + "}"
        parts.append(name)
    text = ",".join(parts)
    if rng.random() < 0.5:
        text = f"builtin.module({text})"
    if rng.random() < 0.3 and text:
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice("{}()=,\" \t\n\\") + text[at:]
    return text


def pipeline_case(rng: random.Random, seed: Seed) -> Case:
    text = _random_pipeline(rng)
    out = rng.choice(("out.tflite", "out.mlir"))
    files = {"model.tflite": seed.tflite, "calib.npz": seed.calibration}
    return Case("pipeline", f"{seed.name}: {text!r}", files,
                ["model.tflite", f"--pass-pipeline={text}", "-o", out], out)


# -- calibration data ---------------------------------------------------------------------


def _input_shapes(seed: Seed) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    with np.load(io.BytesIO(seed.calibration)) as z:
        return {k: (z[k].shape[1:], z[k].dtype) for k in z.files}


def _odd_array(rng: random.Random, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, str]:
    count = rng.choice((1, 2, 3, 0))
    choice = rng.randrange(12)
    full = (count, *shape)
    if choice == 0:
        return np.zeros(full, dtype), "zeros"
    if choice == 1:
        return np.full(full, 0.25, dtype), "constant"
    if choice == 2:
        return np.random.default_rng(rng.randrange(2**32)).integers(0, 256, full).astype(
            rng.choice((np.uint8, np.int64, np.int32))), "integers 0..255"
    if choice == 3:
        a = np.random.default_rng(1).uniform(0, 1, full).astype(np.float32)
        if a.size:
            a.flat[rng.randrange(a.size)] = rng.choice((np.nan, np.inf, -np.inf, 3e38, -3e38))
        return a, "non-finite / huge value"
    if choice == 4:
        bad = list(full)
        if len(bad) > 1:
            k = rng.randrange(1, len(bad))
            bad[k] = rng.choice((0, 1, bad[k] + 1, bad[k] * 2))
        return np.zeros(bad, dtype) + 0.5, f"shape {bad}"
    if choice == 5:
        return np.random.default_rng(2).uniform(0, 1, full[1:]).astype(dtype), "no sample axis"
    if choice == 6:
        return np.random.default_rng(3).uniform(0, 1, full).astype(np.float64), "float64"
    if choice == 7:
        return np.random.default_rng(4).uniform(0, 1, full).astype(np.float16), "float16"
    if choice == 8:
        return (np.random.default_rng(5).uniform(0, 1, full) > 0.5), "bool"
    if choice == 9:
        return np.random.default_rng(6).uniform(-1e6, 1e6, full).astype(np.float32), "wide range"
    if choice == 10:
        return np.array(["a", "b"]), "strings"
    return np.random.default_rng(7).uniform(0, 1, full).astype(np.complex64), "complex"


def _png(rng: random.Random, kind: int) -> tuple[bytes, str]:
    from PIL import Image

    g = np.random.default_rng(rng.randrange(2**32))
    size = (rng.choice((1, 7, 32, 300)), rng.choice((1, 5, 32, 200)))
    if kind == 0:
        im = Image.fromarray(g.integers(0, 65536, size, dtype=np.uint16).astype(np.uint16))
        what = "16-bit grayscale"
    elif kind == 1:
        im = Image.fromarray(g.integers(0, 256, (*size, 4), dtype=np.uint8), "RGBA")
        what = "RGBA"
    elif kind == 2:
        im = Image.fromarray(g.integers(0, 256, size, dtype=np.uint8), "L").convert("P")
        what = "palette"
    elif kind == 3:
        im = Image.fromarray(np.zeros((*size, 3), np.uint8), "RGB")
        what = "black"
    else:
        im = Image.fromarray(g.integers(0, 256, (*size, 3), dtype=np.uint8), "RGB")
        what = "RGB"
    buf = io.BytesIO()
    im.save(buf, format=rng.choice(("PNG", "PNG", "JPEG" if im.mode in ("RGB", "L") else "PNG")))
    return buf.getvalue(), what


def calibration_case(rng: random.Random, seed: Seed) -> Case:
    files = {"model.tflite": seed.tflite}
    shapes = _input_shapes(seed)
    choice = rng.randrange(6)
    extra: list[str] = []
    if choice == 0:  # an .npz with odd arrays
        arrays, whats = {}, []
        for name, (shape, dtype) in shapes.items():
            key = name if rng.random() < 0.8 else rng.choice(("arr_0", "bogus", name + "x"))
            a, what = _odd_array(rng, shape, dtype)
            arrays[key] = a
            whats.append(what)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        files["calib.npz"] = buf.getvalue()
        target, label = "calib.npz", ", ".join(whats)
    elif choice == 1:  # a corrupt .npz
        data, what = _mutate_bytes(rng, seed.calibration)
        files["calib.npz"] = data
        target, label = "calib.npz", f"npz bytes: {what}"
    elif choice == 2:  # a folder of .npy
        name, (shape, dtype) = next(iter(shapes.items()))
        for i in range(rng.randint(1, 3)):
            a, what = _odd_array(rng, shape, dtype)
            sample = a[0] if a.ndim and a.shape[0] else a
            buf = io.BytesIO()
            np.save(buf, sample, allow_pickle=False)
            raw = buf.getvalue()
            if rng.random() < 0.2:
                raw, what = _mutate_bytes(rng, raw)
            files[f"data/s{i}.npy"] = raw
        target, label = "data", f"npy folder: {what}"
    elif choice == 3:  # a folder of images
        whats = []
        for i in range(rng.randint(1, 3)):
            raw, what = _png(rng, rng.randrange(6))
            if rng.random() < 0.2:
                raw, more = _mutate_bytes(rng, raw)
                what += f" ({more})"
            files[f"images/i{i}.png"] = raw
            whats.append(what)
        target, label = "images", "images: " + ", ".join(whats)
        if rng.random() < 0.3:
            extra = [rng.choice(("--input-range=-1,1", "--input-range=1,0", "--input-range=nan,1",
                                 "--input-range=0,1e39", "--input-range=a"))]
    elif choice == 4:  # paths that are not data
        target = rng.choice(("missing.npz", "model.tflite", ".", "calib.txt", "empty.npz"))
        files["calib.txt"] = b"hello"
        files["empty.npz"] = b""
        label = f"path {target}"
    else:  # good data, odd options
        files["calib.npz"] = seed.calibration
        target = "calib.npz"
        extra = [rng.choice(("--samples=0", "--samples=-3", "--samples=99999999999999999999999",
                             "--samples=1", "--calibration-method=percentile",
                             "--calibration-method=bogus", "--io-dtype=int8", "--io-dtype=int4",
                             "--input-range=0,1", "--report", "--mode=int8-only"))]
        label = f"option {extra[0]}"
    out = rng.choice(("out.tflite", "out.tflite", "out.mlir"))
    return Case("calibration", f"{seed.name}: {label}", files,
                ["model.tflite", "--calibration", target, *extra, "-o", out], out)


# -- Python API ---------------------------------------------------------------------------


def api_case(rng: random.Random, seed: Seed) -> Case:
    """A call of the Python API with odd arguments; QccError is the only acceptable failure."""
    choice = rng.randrange(7)
    files = {"model.tflite": seed.tflite, "calib.npz": seed.calibration}
    shapes = _input_shapes(seed)
    arrays = {n: np.random.default_rng(0).uniform(0, 1, (1, *s)).astype(d) for n, (s, d) in shapes.items()}

    if choice == 0:
        what = rng.choice(("nan", "dict", "wrong-name", "wrong-dtype", "wrong-shape", "too-many",
                           "none", "string", "scalar"))

        def call():
            import qcc

            m = qcc.load("model.tflite")
            if what == "nan":
                xs = [np.where(np.random.default_rng(1).random(a.shape) < 0.1, np.nan, a).astype(a.dtype)
                      for a in arrays.values()]
                return m.run(xs)
            if what == "dict":
                return m.run(dict(arrays))
            if what == "wrong-name":
                return m.run({"nope": next(iter(arrays.values()))})
            if what == "wrong-dtype":
                return m.run([a.astype(np.float64) for a in arrays.values()])
            if what == "wrong-shape":
                return m.run([a[0] for a in arrays.values()])
            if what == "too-many":
                return m.run([*arrays.values(), *arrays.values()])
            if what == "none":
                return m.run(None)
            if what == "string":
                return m.run("x")
            return m.run(3.0)

        return Case("api", f"{seed.name}: run({what})", files, api=call)
    if choice == 1:
        samples = rng.choice((1, 2, 5))

        def call():
            import qcc

            def forever():
                while True:
                    yield [a for a in arrays.values()]

            return qcc.quantize("model.tflite", representative_dataset=forever, samples=samples)

        return Case("api", f"{seed.name}: infinite generator, samples={samples}", files, api=call)
    if choice == 2:
        dataset = rng.choice(("missing", "list-of-strings", "empty", "wrong-length", "scalars",
                              "generator-raises", "mode"))

        def call():
            import qcc

            if dataset == "missing":
                return qcc.quantize("model.tflite", representative_dataset="missing.npz")
            if dataset == "list-of-strings":
                return qcc.quantize("model.tflite", representative_dataset=["a", "b"])
            if dataset == "empty":
                return qcc.quantize("model.tflite", representative_dataset=[])
            if dataset == "wrong-length":
                return qcc.quantize("model.tflite", representative_dataset=[[*arrays.values(), 1]])
            if dataset == "scalars":
                return qcc.quantize("model.tflite", representative_dataset=[1.0, 2.0])
            if dataset == "generator-raises":
                def gen():
                    yield list(arrays.values())
                    raise RuntimeError("user bug")
                try:
                    return qcc.quantize("model.tflite", representative_dataset=gen)
                except RuntimeError as e:  # the user's own exception may propagate
                    if "user bug" in str(e):
                        return None
                    raise
            return qcc.quantize("model.tflite", representative_dataset="calib.npz", mode="int4")

        return Case("api", f"{seed.name}: quantize({dataset})", files, api=call)
    if choice == 3:
        target = rng.choice(("out.TFLITE", "out.onnx", "out", "model.tflite", ".", "sub/out.tflite"))

        def call():
            import qcc

            q = qcc.quantize("model.tflite", representative_dataset="calib.npz")
            return q.save(target)

        return Case("api", f"{seed.name}: save({target})", files, api=call, output=None)
    if choice == 4:
        what = rng.choice((None, 3, b"bytes", "missing.tflite", ".", "calib.npz"))

        def call():
            import qcc

            return qcc.load(what)  # type: ignore[arg-type]

        return Case("api", f"{seed.name}: load({what!r})", files, api=call)
    if choice == 5:
        def call():
            import qcc

            q = qcc.quantize("model.tflite", representative_dataset="calib.npz")
            data = q.to_tflite()
            with tempfile.TemporaryDirectory() as tmp:  # the case's own file, not qcc's
                path = os.path.join(tmp, "q.tflite")
                with open(path, "wb") as f:
                    f.write(data)
                m = qcc.load(path)
                return m.run(list(arrays.values()))

        return Case("api", f"{seed.name}: run a quantized .tflite", files, api=call)

    def call():
        import qcc

        return qcc.quantize(qcc.load("model.tflite"), representative_dataset="calib.npz",
                            mode=rng.choice(("int8", "int8-only", "dynamic-range", "bogus")),
                            io_dtype=rng.choice(("float", "int8", "uint8", "int4")))

    return Case("api", f"{seed.name}: quantize(options)", files, api=call)


# -- output paths -------------------------------------------------------------------------


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).symlink_to(target)

    return make


def _hardlink(name: str, target: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        os.link(folder / target, folder / name)

    return make


def _folder(name: str, inside: dict[str, bytes]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for child, data in inside.items():
            (folder / name / child).write_bytes(data)

    return make


def output_case(rng: random.Random, seed: Seed) -> Case:
    """An odd -o: the input itself (by name, symlink or hard link), an existing file or
    folder, a dangling or looping symlink, a missing parent, odd suffixes, stdout, the
    current folder for an artifact. Nothing that existed may change unless qcc succeeds and
    it was a stale regular output."""
    files = {"model.tflite": seed.tflite, "calib.npz": seed.calibration}
    quantize = ["--calibration", "calib.npz"] if rng.random() < 0.5 else []
    setup = None
    replaceable: frozenset[str] = frozenset()
    choice = rng.randrange(14)
    emit: list[str] = []
    if choice == 0:
        out = "model.tflite"
    elif choice == 1:
        out, setup = "link.tflite", _symlink("link.tflite", "model.tflite")
    elif choice == 2:
        out, setup = "hard.tflite", _hardlink("hard.tflite", "model.tflite")
    elif choice == 3:
        out, setup = "dangling.tflite", _folder("real", {})
        inner = setup

        def setup(folder: Path, inner=inner) -> None:  # type: ignore[no-redef]
            inner(folder)
            (folder / "dangling.tflite").symlink_to("real/out.tflite")
    elif choice == 4:
        out, setup = "loop.tflite", _symlink("loop.tflite", "loop.tflite")
    elif choice == 5:
        out, setup = "adir.tflite", _folder("adir.tflite", {"keep.txt": b"user data"})
    elif choice == 6:
        out = "missing/out.tflite"
    elif choice == 7:
        out = rng.choice(("out.TFLITE", "out.Mlir", "out.onnx", "out", "out.tflite.bak", "o ué.tflite"))
    elif choice == 8:
        out = "stale.tflite"
        files["stale.tflite"] = b"an older output"
        replaceable = frozenset({"stale.tflite"})
    elif choice == 9:
        out, emit = "-", [rng.choice(("--emit=tflite", "--emit=mlir"))]
    elif choice == 10:
        out, emit = ".", ["--emit=numba"] + (["--force"] if rng.random() < 0.5 else [])
        quantize = ["--calibration", "calib.npz"]
    elif choice == 11:
        out, emit = "art", ["--emit=numba"]
        quantize = ["--calibration", "calib.npz"]
        setup = _folder("art", {"model.py": b'"""qcc Numba artifact: old', "weights.npz": b"old",
                                "mine.txt": b"user data"})
        replaceable = frozenset({"art/model.py", "art/weights.npz", "art/.qcc-artifact"})
    elif choice == 12:  # the calibration file is an input too
        out, emit = "calib.npz", ["--emit=tflite"]
        quantize = ["--calibration", "calib.npz"]
    else:
        out, emit = "model.tflite", ["--emit=numba"]
    argv = ["model.tflite", *quantize, *emit, "-o", out]
    return Case("output", f"{seed.name}: -o {out} {' '.join(emit)}".rstrip(), files, argv, out,
                setup=setup, replaceable=replaceable)


_MAKERS: dict[str, Callable[[random.Random, Seed], Case]] = {
    "tflite": tflite_case,
    "mlir": mlir_case,
    "pipeline": pipeline_case,
    "calibration": calibration_case,
    "api": api_case,
    "output": output_case,
}


# ------------------------------------------------------------------------------------------
# Running a case
# ------------------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Every entry under `folder` (symlinks not followed): relative path -> (kind, content
    digest / link target)."""
    entries: dict[str, tuple[str, str]] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                entries[rel] = ("dir", "")
            elif stat.S_ISREG(mode):
                entries[rel] = ("file", _digest(path))
            else:
                entries[rel] = ("special", str(stat.S_IFMT(mode)))
    return entries


def _child(case: Case, folder: Path, out_path: Path, err_path: Path) -> None:
    """Runs in the forked child: the case, with stdio redirected; never returns."""
    code = 70
    try:
        os.chdir(folder)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        if case.api is not None:
            from qcc.errors import QccError
            from qcc.runtime.errors import ExecutorError

            try:
                case.api()
                code = 0
            except (QccError, ExecutorError) as e:  # the API's documented errors
                # (verify-int8's lists one line per op, as the driver prints it)
                for line in str(e).splitlines() or [type(e).__name__]:
                    sys.stderr.write(f"qcc: error: {line}\n")
                code = 1
            except BaseException:  # noqa: BLE001 - the point is to see it
                sys.stderr.write("API-EXCEPTION\n")
                traceback.print_exc()
                code = 3
        else:
            from qcc.cli import main

            try:
                code = main(case.argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code if isinstance(code, int) else 70)


def _wait(pid: int, timeout: float) -> tuple[int | None, bool]:
    """(wait status, timed out) of the child; kills it (and its process group) on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            return None, True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def litert_prepares(data: bytes, timeout: float = 120.0) -> tuple[bool, str]:
    """Does LiteRT load `data` and allocate its tensors? Checked in a forked child, so a
    crash inside LiteRT is an answer, not the end of the fuzzer. Independent of qcc's code."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 2)
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_content=data, num_threads=1)
            interp.allocate_tensors()
        except BaseException as e:  # noqa: BLE001
            msg = (f"{type(e).__name__}: {e}" or "error").encode()[:2000] or b"error"
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    status, hung = _wait(pid, timeout)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode("utf-8", "replace")
    if hung:
        return False, "LiteRT hung"
    assert status is not None
    if os.WIFSIGNALED(status):
        return False, f"LiteRT died by signal {os.WTERMSIG(status)}"
    if msg:
        if "unresolved custom op" in msg.lower() or "custom op" in msg.lower():
            return True, "custom op not in LiteRT's resolver (not checked)"
        return False, msg
    return True, ""


def run_case(case: Case, workdir: Path, timeout: float) -> Outcome:
    """Run one case in a fresh folder under `workdir` and classify what happened."""
    folder = Path(tempfile.mkdtemp(prefix="case.", dir=workdir))
    for name, data in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if case.setup is not None:
        case.setup(folder)
    before = _snapshot(folder)
    out_path = workdir / f"{folder.name}.stdout"
    err_path = workdir / f"{folder.name}.stderr"
    start = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        _child(case, folder, out_path, err_path)
    status, hung = _wait(pid, timeout)
    seconds = time.monotonic() - start
    stderr = err_path.read_text("utf-8", "replace") if err_path.exists() else ""
    for p in (out_path, err_path):
        try:
            p.unlink()
        except OSError:
            pass
    outcome = _classify(case, folder, before, status, hung, stderr)
    outcome.seconds = seconds
    if not outcome.bad:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        outcome.detail += f" [kept in {folder}]"
    return outcome


def _classify(case, folder, before, status, hung, stderr) -> Outcome:
    if hung:
        return Outcome("hang", "timed out")
    assert status is not None
    if os.WIFSIGNALED(status):
        return Outcome("signal", f"signal {os.WTERMSIG(status)}: {stderr[-300:]}")
    code = os.WEXITSTATUS(status)
    after = _snapshot(folder)
    for name, entry in before.items():
        if code == 0 and name in case.replaceable:
            continue
        if after.get(name) != entry:
            return Outcome("modified-input", f"{name}: {entry[0]} -> {after.get(name, ('gone',))[0]}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    foreign = [line for line in lines if not line.startswith(("qcc: error: ", "qcc: warning: "))]
    if "API-EXCEPTION" in stderr:
        return Outcome("api-exception", stderr.strip().splitlines()[-1][:300])
    if "Traceback" in stderr or foreign:
        shown = next((ln for ln in reversed(lines) if ln.strip()), "")
        return Outcome("traceback", shown[:300])
    new = sorted(set(after) - set(before))
    temporaries = [p for p in new if ".tmp" in Path(p).name or ".old." in Path(p).name]
    if code == 1:
        if not any(line.startswith("qcc: error: ") for line in lines):
            return Outcome("traceback", "exit 1 without an error line")
        if new:
            return Outcome("partial-output", ", ".join(new))
        return Outcome("error", next(ln for ln in lines if ln.startswith("qcc: error: "))[12:])
    if code != 0:
        return Outcome("exit-code", f"exit {code}: {stderr[-300:]}")
    if temporaries:
        return Outcome("partial-output", ", ".join(temporaries))
    if case.output and case.output != "-":
        target = folder / case.output
        if not target.exists():
            return Outcome("unusable-output", f"exit 0 but no {case.output}")
        if target.is_dir():
            missing = [n for n in ("model.py", "kernels.py.xz", "weights.npz")
                       if not (target / n).is_file()]
            if missing:
                return Outcome("unusable-output", f"artifact without {', '.join(missing)}")
        elif "--emit=tflite" in case.argv or case.output.lower().endswith(".tflite"):
            ok, why = litert_prepares(target.read_bytes())
            if not ok:
                return Outcome("unusable-output", why[:300])
        elif target.stat().st_size == 0:
            return Outcome("unusable-output", "empty output")
        elif "--emit=mlir" in case.argv or case.output.lower().endswith(".mlir"):
            try:
                from qcc.irtext import parse_ir

                parse_ir(target.read_text("utf-8"), case.output).verify()
            except Exception as e:  # noqa: BLE001 - any failure makes the output unusable
                return Outcome("unusable-output", f"{case.output} does not parse back: {e}"[:300])
    return Outcome("ok", "")


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------


class Fuzzer:
    """Draws cases of the given kinds round-robin from `seeds` with a seeded RNG and runs them."""

    def __init__(self, seeds: Sequence[Seed], workdir: str | os.PathLike[str], *, seed: int = 0,
                 timeout: float = 60.0):
        self.seeds = list(seeds)
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.counts: dict[str, Counter[str]] = {}

    def cases(self, kinds: Sequence[str]) -> Iterator[Case]:
        for kind in kinds:
            if kind not in _MAKERS:
                raise ValueError(f"unknown fuzz kind {kind!r}; kinds: {', '.join(KINDS)}")
        i = 0
        while True:
            kind = kinds[i % len(kinds)]
            i += 1
            seeds = [s for s in self.seeds if kind != "mlir" or s.mlir]
            yield _MAKERS[kind](self.rng, self.rng.choice(seeds))

    def run(self, kinds: Sequence[str] = KINDS, *, seconds: float = 60.0,
            max_cases: int | None = None) -> Iterator[tuple[Case, Outcome]]:
        deadline = time.monotonic() + seconds
        done = 0
        for case in self.cases(kinds):
            if time.monotonic() > deadline or (max_cases is not None and done >= max_cases):
                return
            outcome = run_case(case, self.workdir, self.timeout)
            self.counts.setdefault(case.kind, Counter())[outcome.cls] += 1
            done += 1
            yield case, outcome


def summary_table(counts: dict[str, Counter[str]]) -> str:
    """A Markdown table of outcome counts per input kind."""
    classes = [c for c in (*GOOD, *BAD) if any(c in cnt for cnt in counts.values())]
    classes = list(GOOD) + [c for c in classes if c not in GOOD]
    head = "| kind | cases | " + " | ".join(classes) + " |"
    rule = "|---|---:|" + "---:|" * len(classes)
    rows = [head, rule]
    for kind, cnt in counts.items():
        rows.append(f"| {kind} | {sum(cnt.values())} | " + " | ".join(str(cnt.get(c, 0)) for c in classes) + " |")
    total = Counter()
    for cnt in counts.values():
        total.update(cnt)
    rows.append(f"| all | {sum(total.values())} | " + " | ".join(str(total.get(c, 0)) for c in classes) + " |")
    return "\n".join(rows)


def replay_command(case: Case) -> str:
    """A shell command that replays a CLI case in its kept folder."""
    import shlex

    return "qcc " + " ".join(shlex.quote(a) for a in case.argv)


__all__ = [
    "BAD",
    "Case",
    "Fuzzer",
    "GOOD",
    "KINDS",
    "Outcome",
    "Seed",
    "default_seeds",
    "litert_prepares",
    "make_seed",
    "replay_command",
    "run_case",
    "summary_table",
]

