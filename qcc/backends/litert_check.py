"""Does LiteRT accept a .tflite qcc wrote? Load it and prepare it, before it is kept.

qcc exits 0 only with an output that works. A flatbuffer can be well formed and still be
refused by LiteRT when a kernel's Prepare rejects the op's parameters (a multiplier exponent
out of range, a scale that is not the fixed one...); some kernels even abort the process
(TFLITE_CHECK). `check_prepares(data)` therefore builds an interpreter and runs
`allocate_tensors()` in a child Python process, under the resolver the target uses, and turns
any refusal (or crash) into one `QccError` line naming the operator, its TFLite name and the
IR location it came from (the tensor names qcc writes are the ops' locations).

An op that LiteRT's Python interpreter cannot resolve (a custom op the input model already
used, e.g. MediaPipe's) is not qcc's to fix: that is a `QccWarning` saying the file was not
checked, not an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

from qcc.errors import QccError, QccWarning

RESOLVERS = ("default", "reference")
"""`default`: LiteRT's default resolver with its XNNPACK delegate (what users deploy with);
`reference`: BUILTIN_REF, the reference kernels."""

_CHILD = r"""
import json, sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
data = sys.stdin.buffer.read()
resolver = sys.argv[1]
kind = OpResolverType.BUILTIN_REF if resolver == "reference" else OpResolverType.AUTO
stage = "load"
try:
    interp = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=kind)
    stage = "prepare"
    interp.allocate_tensors()
except Exception as e:
    print(json.dumps({"ok": False, "stage": stage, "error": str(e)}))
else:
    print(json.dumps({"ok": True}))
"""

_TIMEOUT_S = 300.0
_NODE = re.compile(r"Node number (\d+) \(([^)]*)\) failed to (prepare|invoke)")


def _operator_location(data: bytes, index: int) -> str | None:
    """The name of operator `index`'s first output tensor (qcc writes the op's location)."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)
        if graph is None or not 0 <= index < graph.OperatorsLength():
            return None
        op = graph.Operators(index)
        if op is None or op.OutputsLength() == 0:
            return None
        tensor = graph.Tensors(int(op.Outputs(0)))
        name = tensor.Name() if tensor is not None else None
        return name.decode("utf-8", "replace") if name else None
    except Exception:  # noqa: BLE001 - only decoration for a message
        return None


def _reason(stderr: str, error: str) -> str:
    """The most telling line of LiteRT's output: the kernel's failed condition."""
    lines = [
        line.strip()
        for line in (stderr + "\n" + error).splitlines()
        if line.strip() and not line.strip().startswith("INFO:")
    ]
    for line in lines:
        if "was not true" in line or "!=" in line and ".cc:" in line:
            return re.sub(r"^ERROR:\s*", "", line)
    for line in lines:
        if not _NODE.search(line):
            return re.sub(r"^ERROR:\s*", "", line)
    return lines[0] if lines else "LiteRT gave no reason"


def check_prepares(data: bytes, *, resolver: str = "default", label: str = "the output") -> None:
    """Raise QccError unless LiteRT loads `data` and allocates its tensors under `resolver`
    (see RESOLVERS); warn with QccWarning if LiteRT lacks a custom op the model uses."""
    if resolver not in RESOLVERS:
        raise QccError(f"unknown LiteRT resolver '{resolver}'; choose one of {', '.join(RESOLVERS)}")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, resolver],
            input=bytes(data),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise QccError(f"{label}: LiteRT did not finish preparing the model") from None
    stderr = done.stderr.decode("utf-8", "replace")
    try:
        verdict = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        verdict = None
    if done.returncode != 0 or not isinstance(verdict, dict):
        if done.returncode < 0:
            import signal

            number = -done.returncode
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else ""
            how = f"signal {number} {name}".strip()
        else:
            how = f"exit {done.returncode}"
        found = _NODE.search(stderr)
        where = ""
        if found:
            index = int(found.group(1))
            loc = _operator_location(data, index)
            where = f" at operator {index} ({found.group(2)})" + (f' loc("{loc}")' if loc else "")
        raise QccError(
            f"{label}: LiteRT crashed ({how}) preparing the model{where}: {_reason(stderr, '')}"
        )
    if verdict.get("ok"):
        return
    error = str(verdict.get("error", ""))
    text = stderr + "\n" + error
    custom = re.findall(r"unresolved custom op: (\S+?)\.?(?:\s|$)", text)
    if custom:
        warnings.warn(
            f"{label}: not checked under LiteRT: its Python interpreter has no kernel for custom "
            f"op {', '.join(sorted(set(custom)))} (the model needs the runtime that provides it)",
            QccWarning,
            stacklevel=2,
        )
        return
    found = _NODE.search(text)
    if found:
        index = int(found.group(1))
        loc = _operator_location(data, index)
        at = f' loc("{loc}")' if loc else ""
        raise QccError(
            f"{label}: LiteRT refuses operator {index} ({found.group(2)}){at}: "
            f"{_reason(stderr, error)}"
        )
    stage = "load" if verdict.get("stage") == "load" else "prepare"
    raise QccError(f"{label}: LiteRT cannot {stage} the model: {_reason(stderr, error)}")
