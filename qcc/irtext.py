"""Printing and parsing qcc IR as MLIR text, locations included."""

from __future__ import annotations

import io
import re

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.mlir_lexer import MLIRLexer

from qcc.context import make_context

_UNKNOWN_LOC = " loc(unknown)"


def _guard_string_literal_lexing() -> None:
    """Make xDSL's string-literal regex linear on an unterminated literal.

    xDSL (0.75) lexes `"..."` with `"(?:[^"\\\n\v\f]+|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"`: a `+`
    inside a `*`, so when the closing quote is missing (a .mlir cut inside a `dense<"0x...`
    constant) the regex engine tries every way to split the run of characters between the
    two loops, doubling the time with each character: `"` followed by 40 letters never ends.
    The same pattern with possessive quantifiers (Python >= 3.11) matches exactly the same
    strings and gives up after one linear scan. Reproducer (tests/test_irtext.py):
    `Parser(ctx, '"' + 'z' * 40).parse_module()`."""
    MLIRLexer._unescaped_characters_regex = re.compile(
        r'"(?:[^"\\\n\v\f]++|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+"'
    )


_guard_string_literal_lexing()


def print_ir(op: Operation, *, generic: bool = False) -> str:
    """MLIR text of `op` with every known location (`loc("conv_1/Relu")`) printed and
    unknown locations left out, as mlir-opt prints with -mlir-print-debuginfo."""
    stream = io.StringIO()
    Printer(stream=stream, print_debuginfo=True, print_generic_format=generic).print_op(op)
    return stream.getvalue().replace(_UNKNOWN_LOC, "") + "\n"


def parse_ir(text: str, name: str = "<input>") -> ModuleOp:
    """Parse MLIR text into a module (wrapping top-level ops in a module if needed)."""
    return Parser(make_context(), text, name).parse_module()
