"""qcc's passes, one per module; the module name is the pass name with `_` for `-`.

A pass joins the registry by being defined here: `passes/fuse_activation.py` must define one
`ModulePass` subclass whose `name` is `"fuse-activation"`. Modules are imported only when
their pass is asked for, so `qcc --help` stays fast. A few generic xDSL passes (dce, cse,
canonicalize) are exposed too.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from xdsl.passes import ModulePass

_XDSL_PASSES = ("canonicalize", "cse", "dce")


def _load_qcc_pass(module_name: str) -> type[ModulePass]:
    module = importlib.import_module(f"{__name__}.{module_name}")
    pass_name = module_name.replace("_", "-")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ModulePass)
            and value is not ModulePass
            and getattr(value, "name", None) == pass_name
        ):
            return value
    raise ImportError(f"module {module.__name__} defines no ModulePass named '{pass_name}'")


def _load_xdsl_pass(name: str) -> type[ModulePass]:
    from xdsl.transforms import get_all_passes

    return get_all_passes()[name]()


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> a factory that imports and returns the pass class."""
    registry: dict[str, Callable[[], type[ModulePass]]] = {}
    folder = str(Path(__file__).parent)
    for info in pkgutil.iter_modules([folder]):
        if info.name.startswith("_"):
            continue
        registry[info.name.replace("_", "-")] = (lambda m=info.name: _load_qcc_pass(m))
    for name in _XDSL_PASSES:
        registry.setdefault(name, lambda n=name: _load_xdsl_pass(n))
    return dict(sorted(registry.items()))
