"""The worked example in docs/passes.md is the code and the test that actually run."""

from __future__ import annotations

import re
from pathlib import Path

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
