"""The `qcc` driver end to end, as a user runs it: good input, and every kind of bad input
giving one line on stderr, exit code 1, no traceback and no output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_litert, run_qcc

from qcc.testing.tflite_models import custom_op_model, single_op_models


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "conv.tflite"
    path.write_bytes(single_op_models()["conv_2d_same_relu6"])
    return path


def test_tflite_to_mlir_and_back(conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "conv.mlir"
    first = run_qcc(str(conv_model), "--emit=mlir", "-o", str(out))
    assert first.returncode == 0, first.stderr.decode()
    text = out.read_text()
    assert "nn.conv2d" in text and 'fused_activation = "RELU6"' in text
    assert 'loc("' in text
    again = run_qcc(str(out), "--emit=mlir")
    assert again.returncode == 0
    assert again.stdout.decode() == text


def test_mlir_from_stdin(conv_model: Path) -> None:
    text = run_qcc(str(conv_model)).stdout
    result = run_qcc("-", stdin=text)
    assert result.returncode == 0
    assert result.stdout == text


def test_tflite_round_trip_through_driver(conv_model: Path, tmp_path: Path) -> None:
    from conftest import litert_input_details

    out = tmp_path / "copy.tflite"
    result = run_qcc(str(conv_model), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    (d,) = litert_input_details(conv_model)
    x = np.linspace(-1, 1, np.prod(d["shape"]), dtype=np.float32).reshape(d["shape"])
    (want,), (got,) = run_litert(conv_model, [x]), run_litert(out, [x])
    np.testing.assert_array_equal(want, got)


def test_pipeline_with_wrapper_and_print_ir_after_all(conv_model: Path) -> None:
    result = run_qcc(
        str(conv_model), "--pass-pipeline=builtin.module(fuse-activation,cse)",
        "--print-ir-after-all", "--time-passes",
    )
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "// -----// IR Dump After fuse-activation //----- //" in stderr
    assert "// -----// IR Dump After cse //----- //" in stderr
    assert "Pass execution timing report" in stderr


def test_list_passes() -> None:
    result = run_qcc("--list-passes")
    assert result.returncode == 0
    assert "fuse-activation" in result.stdout.decode().split()


def test_print_pipeline_needs_no_input() -> None:
    result = run_qcc("--mode=int8", "--print-pipeline")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("builtin.module(")


# -- bad input ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_qcc(str(tmp_path / "nope.tflite")), "no such file")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert_one_line_error(run_qcc(str(empty)), "empty")


def test_not_a_tflite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "photo.tflite"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    out = tmp_path / "out.mlir"
    assert_one_line_error(run_qcc(str(bogus), "-o", str(out)), "photo.tflite")
    assert not out.exists()


def test_truncated_tflite(conv_model: Path, tmp_path: Path) -> None:
    data = conv_model.read_bytes()
    for cut in (16, len(data) // 3, len(data) - 7):
        broken = tmp_path / f"cut{cut}.tflite"
        broken.write_bytes(data[:cut])
        out = tmp_path / f"cut{cut}.mlir"
        result = run_qcc(str(broken), "-o", str(out))
        assert_one_line_error(result, "cut")
        assert not out.exists()


def test_bit_flipped_tflite_never_tracebacks(conv_model: Path, tmp_path: Path) -> None:
    """Every mutant (one bit flipped in the first 256 bytes: the flatbuffer's tables) is either
    refused (exit 1, one error line, no output) or accepted with an output that qcc loads back
    (exit 0, nothing on stderr, valid MLIR); the set refuses some."""
    import qcc

    data = bytearray(conv_model.read_bytes())
    rng = np.random.default_rng(7)
    outcomes = []
    for i, position in enumerate(rng.integers(0, 256, size=12)):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"flip{i}.tflite"
        path.write_bytes(bytes(flipped))
        out = tmp_path / f"flip{i}.mlir"
        result = run_qcc(str(path), "-o", str(out))
        if result.returncode == 0:
            assert result.stderr == b"", result.stderr.decode()
            assert "nn." in qcc.load(out).to_mlir()  # the output parses and verifies
            outcomes.append("accepted")
        else:
            assert_one_line_error(result, str(path))
            assert not out.exists()
            outcomes.append("refused")
    assert "refused" in outcomes, outcomes
    print(f"bit flips: {outcomes.count('refused')} refused, {outcomes.count('accepted')} accepted")


def test_malformed_mlir(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @main() {\n  %0 = nn.relu %x : tensor<2xf32>\n")
    out = tmp_path / "out.mlir"
    assert_one_line_error(run_qcc(str(bad), "-o", str(out)), "bad.mlir:2:")
    assert not out.exists()


def test_unknown_pass_lists_available(conv_model: Path) -> None:
    result = run_qcc(str(conv_model), "--pass-pipeline=no-such-pass")
    assert_one_line_error(result, "unknown pass 'no-such-pass'; available passes:")
    assert "fuse-activation" in result.stderr.decode()


def test_unknown_option_lists_options(conv_model: Path) -> None:
    result = run_qcc(str(conv_model), "--pass-pipeline=fuse-activation{bogus=1}")
    assert_one_line_error(result, "unknown option 'bogus' for pass 'fuse-activation'")


def test_malformed_pipeline(conv_model: Path) -> None:
    assert_one_line_error(
        run_qcc(str(conv_model), "--pass-pipeline=builtin.module(a,,b"), "invalid pass pipeline"
    )


def test_output_folder_missing(conv_model: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run_qcc(str(conv_model), "-o", str(tmp_path / "no" / "such" / "dir.mlir")),
        "does not exist",
    )


def test_custom_op_imports_as_generic(tmp_path: Path) -> None:
    path = tmp_path / "custom.tflite"
    path.write_bytes(custom_op_model())
    result = run_qcc(str(path))
    assert result.returncode == 0
    assert 'nn.generic' in result.stdout.decode()
    assert 'op_name = "MyCustomOp"' in result.stdout.decode()


# -- argument errors and output names -----------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["x.tflite", "--emit=onnx"], "invalid choice: 'onnx'"),
        (["x.tflite", "--samples=many"], "invalid int value: 'many'"),
        (["x.tflite", "-o"], "expected one argument"),
        (["x.tflite", "--mode"], "expected one argument"),
    ],
)
def test_argument_errors_are_one_line_exit_1(args: list[str], fragment: str) -> None:
    result = run_qcc(*args)
    assert_one_line_error(result, fragment)
    assert "usage:" not in result.stderr.decode()


@pytest.mark.parametrize("name", ["m.TFLITE", "m.Tflite"])
def test_output_suffix_is_case_insensitive(conv_model: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = run_qcc(str(conv_model), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes()[4:8] == b"TFL3"


@pytest.mark.parametrize("name", ["x.onnx", "noext", "model.tflite.bak"])
def test_unknown_output_suffix_is_an_error(conv_model: Path, tmp_path: Path, name: str) -> None:
    result = run_qcc(str(conv_model), "-o", str(tmp_path / name))
    assert_one_line_error(result, "--emit=mlir, --emit=tflite, --emit=numba")
    assert list(tmp_path.iterdir()) == []


def test_explicit_emit_allows_any_name_but_not_a_contradiction(
    conv_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model.bin"
    result = run_qcc(str(conv_model), "--emit=tflite", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes()[4:8] == b"TFL3"
    assert_one_line_error(
        run_qcc(str(conv_model), "--emit=tflite", "-o", str(tmp_path / "m.mlir")),
        "but --emit=tflite",
    )


@pytest.mark.parametrize("pipeline", ["quantize", "bias-correction", "builtin.module(quantize)"])
def test_pipeline_that_quantizes_nothing_says_so(
    conv_model: Path, tmp_path: Path, pipeline: str
) -> None:
    out = tmp_path / "out.tflite"
    result = run_qcc(str(conv_model), f"--pass-pipeline={pipeline}", "-o", str(out))
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert stderr.startswith("qcc: warning: the output is a float model"), stderr
    assert stderr.count("\n") == 1
    assert out.exists()


def test_pipeline_without_quantizing_passes_is_quiet(conv_model: Path, tmp_path: Path) -> None:
    result = run_qcc(str(conv_model), "--pass-pipeline=fuse-activation,cse", "-o",
                     str(tmp_path / "out.mlir"))
    assert result.returncode == 0 and result.stderr == b""


def test_force_needs_numba(conv_model: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run_qcc(str(conv_model), "--force", "-o", str(tmp_path / "o.mlir")), "--force applies"
    )


# -- the xDSL lexer's exponential backtracking ----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '"' + "z" * 40,
        'builtin.module {\n  %0 = "nn.constant"() {value = dense<"0x' + "A0" * 4000,
        '"' + "\\\\" * 30 + "q",
    ],
)
def test_unterminated_string_literal_fails_fast(tmp_path: Path, text: str) -> None:
    path = tmp_path / "u.mlir"
    path.write_text(text)
    assert_one_line_error(run_qcc(str(path), timeout=20), "u.mlir:")


def test_dimension_beyond_int32_names_the_value(tmp_path: Path) -> None:
    """Was "bad number 4294967296 for type int32" (from the flatbuffers packer)."""
    path = tmp_path / "big.mlir"
    t = "tensor<4294967296xf32>"
    path.write_text(
        f"func.func @main(%x: {t}) -> {t} {{\n  %0 = nn.relu %x : ({t}) -> {t}\n"
        f"  func.return %0 : {t}\n}}\n"
    )
    out = tmp_path / "big.tflite"
    assert_one_line_error(run_qcc(str(path), "-o", str(out)),
                          "argument #0 has shape [4294967296]; TFLite dimensions are int32")
    assert not out.exists()
