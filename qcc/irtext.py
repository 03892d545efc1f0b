"""Printing and parsing qcc IR as MLIR text, locations included."""

from __future__ import annotations

import io

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer

from qcc.context import make_context

_UNKNOWN_LOC = " loc(unknown)"


def print_ir(op: Operation, *, generic: bool = False) -> str:
    """MLIR text of `op` with every known location (`loc("conv_1/Relu")`) printed and
    unknown locations left out, as mlir-opt prints with -mlir-print-debuginfo."""
    stream = io.StringIO()
    Printer(stream=stream, print_debuginfo=True, print_generic_format=generic).print_op(op)
    return stream.getvalue().replace(_UNKNOWN_LOC, "") + "\n"


def parse_ir(text: str, name: str = "<input>") -> ModuleOp:
    """Parse MLIR text into a module (wrapping top-level ops in a module if needed)."""
    return Parser(make_context(), text, name).parse_module()
