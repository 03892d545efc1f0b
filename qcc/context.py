"""The xDSL context every qcc tool parses in: builtin, func, arith, test, quant and nn."""

from __future__ import annotations

from xdsl.context import Context


def make_context() -> Context:
    """A fresh context with qcc's dialects registered (lazily, so startup stays cheap)."""
    ctx = Context()

    def quant():
        from qcc.dialects.quant import Quant

        return Quant

    def nn():
        from qcc.dialects.nn import NN

        return NN

    def builtin():
        from xdsl.dialects.builtin import Builtin

        return Builtin

    def func():
        from xdsl.dialects.func import Func

        return Func

    def arith():
        from xdsl.dialects.arith import Arith

        return Arith

    def test():
        from xdsl.dialects.test import Test

        return Test

    for name, factory in [
        ("builtin", builtin),
        ("func", func),
        ("arith", arith),
        ("test", test),
        ("quant", quant),
        ("nn", nn),
    ]:
        ctx.register_dialect(name, factory)
    return ctx
