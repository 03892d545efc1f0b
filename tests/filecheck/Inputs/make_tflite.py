"""Write one of qcc's generated test models: `make_tflite.py NAME OUT.tflite`.

NAME is a key of qcc.testing.tflite_models.single_op_models(), chained_models() or
special_models(), or `custom_op`. Used by FileCheck tests through lit's %make_tflite.
"""

import sys

from qcc.testing import tflite_models as models


def main() -> None:
    name, out = sys.argv[1], sys.argv[2]
    table = {**models.single_op_models(), **models.chained_models(), **models.special_models()}
    table["custom_op"] = models.custom_op_model()
    if name not in table:
        sys.exit(f"make_tflite: unknown model '{name}'")
    with open(out, "wb") as f:
        f.write(table[name])


if __name__ == "__main__":
    main()
