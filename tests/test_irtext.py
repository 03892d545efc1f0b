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


@pytest.mark.parametrize(
    "name", ["é/relu", "漢字/conv", "emoji😀", "\ufffd\x00x", "a\x01b", 'q"uote', "back\\slash"]
)
def test_non_ascii_and_control_characters_round_trip(name: str) -> None:
    """xDSL prints non-ASCII bytes as escapes and used to read them back as bytes (a
    BytesAttr, or a parse error inside loc(...)): a model with non-ASCII tensor names did
    not survive .mlir text."""
    from xdsl.dialects.builtin import ModuleOp, StringAttr

    from qcc.irtext import print_ir

    module = ModuleOp([])
    module.attributes["qcc.s"] = StringAttr(name)
    back = parse_ir(print_ir(module))
    assert back.attributes["qcc.s"] == StringAttr(name)


def test_invalid_utf8_stays_bytes() -> None:
    from xdsl.dialects.builtin import BytesAttr

    module = parse_ir('builtin.module attributes {qcc.b = "\\FF\\FE"} {\n}')
    assert module.attributes["qcc.b"] == BytesAttr(b"\xff\xfe")


def test_tflite_with_odd_tensor_names_round_trips_through_text(tmp_path) -> None:
    """Tensor names are arbitrary bytes in a flatbuffer: they become locations that must print
    and parse back (the CI fuzzer found one with a NUL and invalid UTF-8)."""
    from qcc.frontends.tflite import import_tflite
    from qcc.irtext import print_ir
    from qcc.testing.tflite_models import ModelBuilder, Op

    b = ModelBuilder()
    x = b.add_input("x", [1, 4])
    y = b.add_op(Op.RELU, [x], [1, 4], name="y")
    b.mark_output(b.add_op(Op.RELU, [y], [1, 4], name="z"))
    model = b.build_model_t()
    model.subgraphs[0].tensors[1].name = b"\x00\xef\xbf\xbdem/\xff\xc3\xa9relu"
    import flatbuffers

    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    module = import_tflite(bytes(builder.Output()))
    text = print_ir(module)
    again = parse_ir(text)
    again.verify()
    assert print_ir(again) == text
