"""Documentation generated from the code: the op table of docs/ir.md, from the nn ops'
declarations (`SPEC` on every class of `qcc.dialects.nn`).

    python -m qcc.docs            # print the table
    python -m qcc.docs --check    # exit 1 (saying so) if docs/ir.md's table differs
    python -m qcc.docs --write    # rewrite the table in docs/ir.md

The table sits in docs/ir.md between the `BEGIN` and `END` marker lines; everything else in
the file is hand-written. tests/test_op_declarations.py fails when the two differ.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

BEGIN = "<!-- op-table: generated from the op declarations by `python -m qcc.docs --write` -->"
END = "<!-- end of op-table -->"
REGENERATE = "python -m qcc.docs --write"

DOCS_IR = Path(__file__).resolve().parents[1] / "docs" / "ir.md"
"""docs/ir.md of the source tree (qcc is installed editable)."""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _summary(op_class: type) -> str:
    """The first paragraph of the op's docstring, on one line."""
    doc = inspect.cleandoc(op_class.__doc__ or "")
    return _cell(doc.split("\n\n")[0])


def op_table() -> str:
    """The markdown table of every nn op: its TFLite builtin, what it computes (its
    docstring's first paragraph), the activation precisions TFLite's kernels accept, what
    qcc does with it in an int8 model, and its quantization traits."""
    from qcc.dialects import nn

    lines = [
        "| op | TFLite | what | TFLite quantized kernels | qcc int8 | quantization traits |",
        "|---|---|---|---|---|---|",
    ]
    for op_class in nn.op_classes():
        spec = nn.op_spec(op_class)
        assert spec is not None, op_class.__name__
        builtins = ", ".join(n for n in (spec.builtin, *spec.aliases) if n) or "—"
        precisions = ", ".join(spec.precisions) or "—"
        if spec.int8 == nn.KERNEL:
            int8 = "int8"
        elif isinstance(spec.int8, nn.Fallback):
            int8 = "float: " + _cell(spec.int8.reason)
        else:
            int8 = "—"
        traits = sorted(
            op_class.get_traits_of_type(nn.QuantTrait), key=lambda t: (t.ORDER, type(t).__name__)
        )
        names = list(dict.fromkeys(type(t).__name__ for t in traits))
        lines.append(
            f"| `{op_class.name}` | {builtins} | {_summary(op_class)} | {precisions} | {int8} | "
            f"{', '.join(names) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def replace_table(text: str, table: str) -> str:
    """`text` (docs/ir.md) with the generated table between its markers."""
    try:
        head, rest = text.split(BEGIN + "\n", 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"docs/ir.md lacks the marker lines {BEGIN!r} and {END!r}") from None
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qcc.docs", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if docs/ir.md's table differs")
    group.add_argument("--write", action="store_true", help="rewrite the table in docs/ir.md")
    args = parser.parse_args(argv)
    table = op_table()
    if not (args.check or args.write):
        sys.stdout.write(table)
        return 0
    text = DOCS_IR.read_text(encoding="utf-8")
    updated = replace_table(text, table)
    if args.write:
        if updated != text:
            DOCS_IR.write_text(updated, encoding="utf-8")
        return 0
    if updated != text:
        print(f"{DOCS_IR}: the op table differs from the op declarations; run: {REGENERATE}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
