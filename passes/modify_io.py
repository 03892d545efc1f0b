"""modify-io: the model's input/output element types, like TF's `tfl-modify-io-nodes`.

After infer-scales the function signature is float, with a `quant.qcast` after each float
argument and a `quant.dcast` before each returned value. `dtype` chooses what the model's
users feed and read:

  * `float` (default): no change;
  * `int8`: the arguments and results take the quantized types themselves; the boundary
    qcast/dcast disappear (TF's `tfl-post-quantize-remove-qdq`);
  * `uint8`: arguments and results are `!quant.uniform<u8:f32, s:zp+128>` (same scale, zero
    point shifted by 128); a requantizing `quant.qcast` u8 -> i8 follows each argument and
    one i8 -> u8 precedes each result (TFLite QUANTIZE, an XOR 0x80 at run time).

An argument is rewritten only when all its users are quantizing qcasts to one type; a result
only when it comes from a dcast. Others stay float.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import FunctionType, ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qcc.dialects import quant
from qcc.dialects.quant import UniformQuantizedType
from qcc.passes import _quant_math as qm
from qcc.passes.infer_scales import functions, is_float_tensor, with_element

DTYPES = ("float", "int8", "uint8")


def _boundary_type(t: UniformQuantizedType, dtype: str) -> UniformQuantizedType:
    return t if dtype == "int8" else qm.with_offset(t, signed=False)


@dataclass(frozen=True)
class ModifyIo(ModulePass):
    """Set the element type of the model's inputs and outputs.

    Options:
      dtype: `float` (unchanged), `int8` or `uint8`.
    """

    name = "modify-io"

    dtype: str = "float"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.dtype == "float":
            return
        for func in functions(op):
            self.rewrite_inputs(func)
            self.rewrite_outputs(func)
            block = func.body.blocks[0]
            ret = block.last_op
            outputs = [v.type for v in ret.operands] if isinstance(ret, ReturnOp) else []
            func.function_type = FunctionType.from_lists([a.type for a in block.args], outputs)

    def rewrite_inputs(self, func: FuncOp) -> None:
        block = func.body.blocks[0]
        for arg in list(block.args):
            users = [use.operation for use in arg.uses]
            if not users or not is_float_tensor(arg.type):
                continue
            if not all(isinstance(u, quant.QuantizeCastOp) for u in users):
                continue
            types = {u.results[0].type for u in users}
            if len(types) != 1:
                continue
            (qtensor,) = types
            element = qtensor.get_element_type()  # type: ignore[attr-defined]
            if not isinstance(element, UniformQuantizedType):
                continue
            new_arg = Rewriter.replace_value_with_new_type(
                arg, with_element(arg.type, _boundary_type(element, self.dtype))
            )
            if self.dtype == "int8":
                for u in users:
                    u.results[0].replace_all_uses_with(new_arg)
                    Rewriter.erase_op(u)
            else:
                for u in users:
                    requant = quant.QuantizeCastOp(new_arg, element)
                    requant.location = u.location
                    Rewriter.replace_op(u, requant)

    def rewrite_outputs(self, func: FuncOp) -> None:
        ret = func.body.blocks[0].last_op
        if not isinstance(ret, ReturnOp):
            return
        operands: list[SSAValue] = list(ret.operands)
        for k, value in enumerate(operands):
            cast = value.owner
            if not isinstance(cast, quant.DequantizeCastOp):
                continue
            element = cast.input.type.get_element_type()  # type: ignore[attr-defined]
            if not isinstance(element, UniformQuantizedType):
                continue
            if self.dtype == "int8":
                operands[k] = cast.input
            else:
                requant = quant.QuantizeCastOp(cast.input, _boundary_type(element, self.dtype))
                requant.location = cast.location
                Rewriter.insert_op(requant, InsertPoint.before(ret))
                operands[k] = requant.result
        ret.operands = operands
        for op in list(func.body.blocks[0].ops):
            if isinstance(op, quant.DequantizeCastOp) and not op.result.uses:
                Rewriter.erase_op(op)
