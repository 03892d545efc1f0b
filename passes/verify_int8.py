"""verify-int8: the int8-only mode. Checks that every op runs on an int8 kernel.

Every offending op is reported, not just the first, each on its own line with its location
and name, in one `PassFailedException` (so `--verify-diagnostics` prints them all):

    verify-int8: 2 problems, the model cannot run in int8 only
    loc("segment"): 'nn.generic' op 'Convolution2DTransposeBias': no int8 kernel (custom op)
    loc("div"): 'nn.div' op: no int8 kernel (DIV is not in TFLite's int8 quantization ...)

Offences: an op that is not int8-capable (`nn.int8_capable`, with its declaration's
reason); an int8-capable op with a float operand or result; a `quant.dcast` / float `quant.qcast` inside the function (a float island edge).
The `quant.qcast` of a function argument and the `quant.dcast` feeding `func.return` are the
model's float boundary and are allowed (integer tensors, e.g. gather indices, are fine too).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, ModuleOp, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from qcc.dialects import nn, quant
from qcc.dialects.ir import location_text
from qcc.passes.infer_scales import functions, requested_precision


def _is_float(t: object) -> bool:
    return isinstance(t, TensorType) and isinstance(t.get_element_type(), AnyFloat)


def _prefix(op: Operation) -> str:
    loc = location_text(op.location)
    head = f'loc("{loc}"): ' if loc is not None else ""
    if isinstance(op, nn.GenericOp):
        return f"{head}'{op.name}' op '{op.op_name.data}'"
    return f"{head}'{op.name}' op"


def offences(op: Operation) -> list[str]:
    """Why `op` cannot run in an int8-only model (empty if it can)."""
    if isinstance(op, ReturnOp | FuncOp | nn.ConstantOp | quant.StatsOp):
        return []
    if isinstance(op, quant.QuantizeCastOp):
        if not _is_float(op.input.type) or isinstance(op.input.owner, Block):
            return []
        return ["float to int8 quantize inside the model (float island edge)"]
    if isinstance(op, quant.DequantizeCastOp):
        if all(isinstance(use.operation, ReturnOp) for use in op.result.uses):
            return []
        return ["int8 to float dequantize inside the model (float island edge)"]
    if op.dialect_name() != "nn":
        return []
    capable, why = nn.int8_capable(op)
    if not capable:
        return [f"no int8 kernel ({why})"]
    if requested_precision(op) == "float":
        return ['qcc.precision = "float" asks for a float island']
    found: list[str] = []
    for i, v in enumerate(op.operands):
        if _is_float(v.type):
            found.append(f"float operand #{i} (expected int8)")
    for i, r in enumerate(op.results):
        if _is_float(r.type):
            found.append(f"float result #{i} (expected int8)")
    return found


@dataclass(frozen=True)
class VerifyInt8(ModulePass):
    """Fail, listing every offending op, unless the whole model runs in int8."""

    name = "verify-int8"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        lines: list[str] = []
        for func in functions(op):
            for inner in func.walk():
                lines.extend(f"{_prefix(inner)}: {why}" for why in offences(inner))
        if lines:
            count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
            raise PassFailedException(
                f"verify-int8: {count}, the model cannot run in int8 only\n" + "\n".join(lines)
            )
