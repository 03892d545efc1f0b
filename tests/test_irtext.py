"""qcc.irtext: parsing MLIR text. The string-literal guard against xDSL's exponential
backtracking, as an upstream-style reproducer."""

from __future__ import annotations

import time

import pytest
from xdsl.utils.exceptions import ParseError

from qcc.irtext import parse_ir


def test_unterminated_string_literal_is_linear() -> None:
    """Upstream reproducer: `Parser(ctx, '"' + "z" * n).parse_module()` took time doubling
    with n (n = 40: hours) with xDSL's `"(?:[^"\\\\\\n\\v\\f]+|\\\\(...))*"` lexer regex."""
    start = time.perf_counter()
    with pytest.raises(ParseError, match="End of file reached before closing string literal"):
        parse_ir('"' + "z" * 100_000)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    "literal, value",
    [('"abc"', "abc"), ('"a\\"b"', 'a"b'), ('"tab\\tnew\\n"', "tab\tnew\n"), ('"\\41"', "A"),
     ('""', "")],
)
def test_string_literals_still_lex(literal: str, value: str) -> None:
    module = parse_ir(f"builtin.module attributes {{qcc.s = {literal}}} {{\n}}")
    assert module.attributes["qcc.s"].data == value  # type: ignore[attr-defined]


def test_invalid_escape_is_still_an_error() -> None:
    with pytest.raises(ParseError):
        parse_ir('builtin.module attributes {qcc.s = "bad \\q escape"} {\n}')
