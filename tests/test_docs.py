"""The worked examples in docs/passes.md and docs/architecture.md are the code and the tests
that actually run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _code_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)


def test_pass_code_in_docs_is_the_real_pass() -> None:
    doc = (ROOT / "docs" / "passes.md").read_text()
    source = (ROOT / "passes" / "fuse_activation.py").read_text()
    (python_block,) = [b for b in _code_blocks(doc, "python") if "class FuseActivation" in b]
    assert python_block.strip() in source


def test_filecheck_example_in_docs_is_in_the_suite() -> None:
    doc = (ROOT / "docs" / "passes.md").read_text()
    test = (ROOT / "tests" / "filecheck" / "passes" / "fuse-activation.mlir").read_text()
    (mlir_block,) = _code_blocks(doc, "mlir")
    run_line, *case = mlir_block.strip().split("\n\n")
    assert run_line in test
    assert "\n\n".join(case) in test


def test_registry_finds_the_example_pass() -> None:
    from qcc.pipeline import build_pipeline

    (p,) = build_pipeline("builtin.module(fuse-activation)")
    assert p.name == "fuse-activation"


# -- docs/architecture.md: its worked examples are the code that runs ---------------------


def _architecture_blocks() -> list[str]:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    return [b.strip() for b in _code_blocks(doc, "python")]


@pytest.mark.parametrize(
    "marker, source",
    [
        ("class GeluOp", "dialects/nn.py"),
        ("@float_kernel(nn.GeluOp)", "runtime/kernels/activation.py"),
        ("@int8_lowering(nn.GeluOp)", "runtime/kernels/int8_activation.py"),
        ("class FuseActivation(ModulePass)", "passes/fuse_activation.py"),
    ],
)
def test_architecture_examples_are_the_real_code(marker: str, source: str) -> None:
    (block,) = [b for b in _architecture_blocks() if marker in b]
    assert block in (ROOT / source).read_text()


def test_the_example_op_is_declared_registered_and_tested() -> None:
    """The GELU walk-through's claims: declared, a float kernel and an int8 lowering
    registered against its class, a test file of its own, a generated docs/ir.md row."""
    from qcc.dialects import nn
    from qcc.runtime.kernels import registry

    assert nn.GeluOp in nn.op_classes()
    assert nn.GeluOp.SPEC.builtin == "GELU"
    assert nn.GeluOp in registry.FLOAT_KERNELS
    assert nn.GeluOp in registry.INT8_LOWERINGS
    assert (ROOT / "tests" / "test_op_gelu.py").is_file()
    assert "nn.gelu" in (ROOT / "docs" / "ir.md").read_text()


def test_architecture_names_real_files() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for path in re.findall(r"`((?:qcc|passes|runtime|dialects|tests|docs)/[\w/.-]+\.(?:py|md))`", doc):
        assert (ROOT / path).exists(), path
