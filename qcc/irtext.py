"""Printing and parsing qcc IR as MLIR text, locations included."""

from __future__ import annotations

import io
import re

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError
from xdsl.utils.lexer import Position, Span, Token
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind, StringLiteral

from qcc.context import make_context

_UNKNOWN_LOC = " loc(unknown)"


_STRING_LITERAL = re.compile(r'"(?:[^"\\\n\v\f]++|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+"')
"""xDSL's string-literal pattern with possessive quantifiers (see below)."""


def _lex_string_literal(self: MLIRLexer, start_pos: Position) -> Token:
    r"""xDSL's `MLIRLexer._lex_string_literal` with two upstream bugs fixed (xDSL 0.75):

    * **exponential time** on an unterminated literal: the pattern
      `"(?:[^"\\\n\v\f]+|\\(...))*"` nests a `+` inside a `*`, so when the closing quote is
      missing (a .mlir cut inside a `dense<"0x...` constant) the regex engine tries every way
      of splitting the characters between the two loops, doubling the time with each one:
      `"` followed by 40 letters never ends. The same pattern with possessive quantifiers
      (Python >= 3.11) matches exactly the same strings and fails after one linear scan.
      Reproducer: `Parser(ctx, '"' + 'z' * 40).parse_module()`.
    * **non-ASCII strings do not round-trip**: the printer writes every non-ASCII byte as a
      `\XX` escape, and the lexer then calls the literal bytes (BYTES_LIT) unless the
      decoded bytes are ASCII, although its docstring says "STRING_LIT when the payload can
      be decoded as UTF-8": `loc("é/relu")` printed and parsed again is a parse error, a
      `{name = "é"}` comes back as bytes. Here a literal whose bytes are valid UTF-8 is a
      STRING_LIT, as documented (and as MLIR treats it).

    Tests: tests/test_irtext.py."""
    match = _STRING_LITERAL.match(self.input.content, start_pos)
    if match is None:
        raise ParseError(
            Span(start_pos, self.pos, self.input),
            "End of file reached before closing string literal.",
        )
    self.pos = match.end()
    literal = StringLiteral(start_pos, self.pos, self.input)
    if "\\" not in literal.text:
        return Token(MLIRTokenKind.STRING_LIT, literal)
    try:
        literal.bytes_contents.decode("utf-8")
    except UnicodeDecodeError:
        return Token(MLIRTokenKind.BYTES_LIT, literal)
    return Token(MLIRTokenKind.STRING_LIT, literal)


def _guard_string_literal_lexing() -> None:
    """Install `_lex_string_literal` in xDSL's lexer (every parse in qcc goes through
    `parse_ir`, which imports this module first)."""
    MLIRLexer._unescaped_characters_regex = _STRING_LITERAL
    MLIRLexer._lex_string_literal = _lex_string_literal  # type: ignore[method-assign]


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
