"""Pass pipelines: MLIR's textual pipeline syntax, the pass registry, and the presets.

Grammar (MLIR's `--pass-pipeline`, parsed with lark):

    builtin.module(pass-a, pass-b{opt=1 other=x,y}, pass-c)     # or without the wrapper

Options are separated by spaces, a comma inside braces makes a tuple, values may be quoted.
An option name spells the pass's dataclass field with `-` for `_`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedInput
from xdsl.passes import ModulePass

from qcc.errors import QccError

_GRAMMAR = r"""
    start: "builtin.module" "(" [pass_list] ")"   -> wrapped
         | [pass_list]                            -> bare
    pass_list: pass_spec ("," pass_spec)*
    pass_spec: NAME [options]
    options: "{" option* "}"
    option: NAME ["=" value]
    value: item ("," item)*
    ?item: ESCAPED_STRING -> quoted
         | BARE           -> bare_item
    NAME: /[A-Za-z_][A-Za-z0-9_.\-]*/
    BARE: /[^\s{}=,"()]+/
    %import common.ESCAPED_STRING
    %import common.WS
    %ignore WS
"""


@dataclass(frozen=True)
class PassSpec:
    """One pass of a parsed pipeline: its name and raw option values (strings)."""

    name: str
    options: dict[str, tuple[str, ...] | None]
    quoted: frozenset[str] = frozenset()


class _ToSpecs(Transformer[Token, list[PassSpec]]):
    def wrapped(self, items: list) -> list[PassSpec]:
        return items[0] or []

    def bare(self, items: list) -> list[PassSpec]:
        return items[0] or []

    def pass_list(self, items: list) -> list[PassSpec]:
        return list(items)

    def pass_spec(self, items: list) -> PassSpec:
        name, options = items
        opts: dict[str, tuple[str, ...] | None] = {}
        quoted: set[str] = set()
        for key, value in options or []:
            opts[key] = None if value is None else tuple(v for v, _ in value)
            if value is not None and any(q for _, q in value):
                quoted.add(key)
        return PassSpec(str(name), opts, frozenset(quoted))

    def options(self, items: list) -> list:
        return list(items)

    def option(self, items: list) -> tuple[str, list | None]:
        return str(items[0]), items[1]

    def value(self, items: list) -> list:
        return list(items)

    def quoted(self, items: list) -> tuple[str, bool]:
        import json

        return json.loads(items[0]), True

    def bare_item(self, items: list) -> tuple[str, bool]:
        return str(items[0]), False


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr")


def parse_pipeline_text(text: str) -> list[PassSpec]:
    """Parse pipeline text into pass specs; a syntax error is one QccError line."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise QccError(
            f"invalid pass pipeline at column {e.column}: {text!r} ({type(e).__name__})"
        ) from None
    except LarkError as e:
        raise QccError(f"invalid pass pipeline {text!r}: {e}") from None
    return _ToSpecs().transform(tree)


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    from qcc.passes import get_all_passes

    return get_all_passes()


def _convert(value: tuple[str, ...] | None, annotation: object, where: str) -> object:
    """Turn raw option text into the field's declared type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return _convert(value, a, where)
            except QccError as e:
                errors.append(str(e))
        raise QccError(errors[0])
    if value is None:
        raise QccError(f"{where} needs a value")
    if origin is tuple:
        (elem, *_rest) = typing.get_args(annotation)
        return tuple(_convert((v,), elem, where) for v in value)
    if len(value) != 1:
        raise QccError(f"{where} takes one value, got {','.join(value)}")
    text = value[0]
    try:
        if annotation is bool:
            if text.lower() in ("true", "1"):
                return True
            if text.lower() in ("false", "0"):
                return False
            raise ValueError
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
        if annotation is str:
            return text
    except ValueError:
        raise QccError(f"{where}: '{text}' is not a valid {annotation.__name__}") from None
    raise QccError(f"{where} has an unsupported type {annotation}")


def pass_options(pass_class: type[ModulePass]) -> dict[str, dataclasses.Field]:
    """The CLI option names (dash-spelled) of a pass and their dataclass fields. Fields
    declared with `repr=False` are Python-only (e.g. annotate-ranges' `statistics`, which
    the driver fills): they are not options."""
    return {
        f.name.replace("_", "-"): f for f in dataclasses.fields(pass_class) if f.repr
    }


def instantiate(spec: PassSpec) -> ModulePass:
    """Build the pass object for a spec, checking the pass and its options exist."""
    registry = available_passes()
    if spec.name not in registry:
        raise QccError(
            f"unknown pass '{spec.name}'; available passes: {', '.join(registry)}"
        )
    pass_class = registry[spec.name]()
    fields = pass_options(pass_class)
    hints = typing.get_type_hints(pass_class)
    kwargs = {}
    for key, raw in spec.options.items():
        option = key.replace("_", "-")
        if option not in fields:
            known = ", ".join(fields) or "none"
            raise QccError(
                f"unknown option '{key}' for pass '{spec.name}'; its options are: {known}"
            )
        field = fields[option]
        kwargs[field.name] = _convert(raw, hints[field.name], f"option '{option}' of '{spec.name}'")
    try:
        return pass_class(**kwargs)
    except TypeError as e:
        raise QccError(f"pass '{spec.name}': {e}") from None
    except ValueError as e:
        raise QccError(f"pass '{spec.name}': {e}") from None


def build_pipeline(text: str, *, dataset: object = None) -> list[ModulePass]:
    """Parse pipeline text and instantiate every pass (errors are QccErrors).

    Passes that need the driver get it here: every `annotate-ranges` whose `calibration`
    names representative data or saved statistics (or, without one, that `dataset` from
    Python gives data to) is handed a `qcc.statistics.Calibrator`, which reads the file or
    runs the data when the pass runs (`qcc.statistics.bind`)."""
    passes = [instantiate(s) for s in parse_pipeline_text(text)]
    if any(p.name == "annotate-ranges" for p in passes):
        from qcc.statistics import bind

        passes = bind(passes, dataset)
    return bind_targets(passes)


TARGET_FIELD = "capabilities"
"""The Python-only field (`repr=False`) in which a pass that legalizes for a target
(legalize-target) receives the target's capabilities; its `target` option names it."""


def bind_targets(passes: Sequence[ModulePass]) -> list[ModulePass]:
    """`passes` with the named target's capabilities (`qcc.targets.get_target(target)`) in
    every pass that has a Python-only `capabilities` field still empty, as `qcc.statistics.bind`
    hands annotate-ranges its calibrator: passes never import `qcc.targets`."""
    bound: list[ModulePass] = []
    for p in passes:
        fields = {f.name: f for f in dataclasses.fields(p)}
        slot = fields.get(TARGET_FIELD)
        if slot is not None and not slot.repr and "target" in fields:
            if getattr(p, TARGET_FIELD) is None:
                target = _target(p.target, p.name)  # type: ignore[attr-defined]
                p = dataclasses.replace(p, **{TARGET_FIELD: target})
        bound.append(p)
    return bound


def _target(name: object, pass_name: str) -> object:
    from qcc.targets import TARGETS, get_target

    if not name:
        raise QccError(
            f"pass '{pass_name}' needs a target: {pass_name}{{target=NAME}}, NAME one of "
            f"{', '.join(TARGETS)}"
        )
    if name not in TARGETS:
        raise QccError(f"unknown target '{name}'; targets are: {', '.join(TARGETS)}")
    return get_target(str(name))


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_format_value(v) for v in value)
    if isinstance(value, str):
        if value == "" or any(c in value for c in ' {}=,"()'):
            import json

            return json.dumps(value)
        return value
    return str(value)


def pipeline_text(passes: Sequence[ModulePass], *, wrap: bool = True) -> str:
    """The textual form of a pipeline, with every non-default option spelled out."""
    parts = []
    for p in passes:
        opts = []
        for f in dataclasses.fields(p):
            if not f.repr:  # Python-only fields (see pass_options)
                continue
            value = getattr(p, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if value != default and value is not None:
                opts.append(f"{f.name.replace('_', '-')}={_format_value(value)}")
        parts.append(p.name + ("{" + " ".join(opts) + "}" if opts else ""))
    body = ",".join(parts)
    return f"builtin.module({body})" if wrap else body


# ------------------------------------------------------------------------------------------
# Presets: what `--mode` / `qcc.quantize(mode=...)` run
# ------------------------------------------------------------------------------------------

MODES = ("int8", "int8-only", "dynamic-range")
IO_DTYPES = ("float", "int8", "uint8")
DEFAULT_TARGET = "xnnpack"
"""The target of the int8 preset when none is named: LiteRT's default resolver, where a
.tflite runs unless its user says otherwise (`--emit=numba` defaults to `numba`)."""

_LEGALIZE = {
    "xnnpack": "legalize-target{target=xnnpack}",
    "reference": "legalize-fallback",
    "numba": "legalize-fallback",
    "int8-only": "verify-int8",
}
"""Per target, the pass that decides each op's precision in the int8 preset. `reference`
(LiteRT's BUILTIN_REF) and `numba` (qcc's runtime) run every op that has an int8 kernel in
int8, as the int8 preset did before targets; `int8-only` allows no float op at all;
`xnnpack` chooses per op from its measured capabilities (passes/legalize_target.py)."""


@dataclass(frozen=True)
class PresetOptions:
    """The knobs a preset exposes; everything else is the explicit --pass-pipeline form."""

    mode: str = "int8"
    target: str | None = None
    """Where the model will run (`qcc.targets.TARGETS`); None: `int8-only` for that mode,
    else `DEFAULT_TARGET`."""
    calibration: str = ""
    method: str = "mse"
    samples: int = 0
    input_range: tuple[float, float] | None = None
    io_dtype: str = "float"
    per_channel_fc: bool = True
    decompose_prelu: bool | None = None
    """decompose-prelu before calibration; None: the target's choice (every target but
    xnnpack, whose legalize-target keeps PRELU and makes it a float island instead, and
    numba, whose runtime runs int8 PRELU as fast as the decomposed form, with fewer
    roundings)."""
    bias_correction: bool = True
    """bias-correction between annotate-ranges and infer-scales. On the zoo's held-out photos
    it lifts the worst output of hand_landmark by 5.3 dB and face_detection by 2.1 dB, is
    neutral on iris_landmark (-0.1 dB) and costs selfie_segmentation ~1 dB (docs/benchmarks.md);
    turn it off with `--no-bias-correction` / `quantize(..., bias_correction=False)`."""


def preset_target(options: PresetOptions) -> str | None:
    """The target a preset compiles for (None for dynamic-range, which has one pipeline):
    `options.target`, else `int8-only` for that mode, else `DEFAULT_TARGET`. `--mode=int8-only`
    is `--target=int8-only`; another target with it is an error."""
    from qcc.targets import TARGETS

    target = options.target
    if target is not None and target not in TARGETS:
        raise QccError(f"unknown target '{target}'; targets are: {', '.join(TARGETS)}")
    if options.mode == "dynamic-range":
        if target is not None:
            raise QccError(
                f"target '{target}' applies to the int8 modes; dynamic-range has one pipeline"
            )
        return None
    if options.mode == "int8-only":
        if target not in (None, "int8-only"):
            raise QccError(
                f"mode int8-only is target int8-only; it does not combine with target '{target}'"
            )
        return "int8-only"
    return target or DEFAULT_TARGET


def preset_pipeline_text(options: PresetOptions, *, calibration_placeholder: str = "") -> str:
    """The pipeline text of a preset, e.g. for `qcc --mode=int8 --print-pipeline`."""
    if options.mode not in MODES:
        raise QccError(f"unknown mode '{options.mode}'; modes are: {', '.join(MODES)}")
    if options.io_dtype not in IO_DTYPES:
        raise QccError(
            f"unknown io dtype '{options.io_dtype}'; choose one of: {', '.join(IO_DTYPES)}"
        )
    target = preset_target(options)
    if target is None:
        return "builtin.module(dynamic-range)"
    calibration = options.calibration or calibration_placeholder
    annotate = [f"calibration={_format_value(calibration)}"] if calibration else []
    if options.method != "minmax":
        annotate.append(f"method={options.method}")
    if options.samples:
        annotate.append(f"samples={options.samples}")
    if options.input_range is not None:
        lo, hi = options.input_range
        annotate.append(f"input-range={lo!r},{hi!r}")
    # canonicalize-custom-ops: MediaPipe's Convolution2DTransposeBias -> TRANSPOSE_CONV (bias)
    steps = ["canonicalize-custom-ops", "fuse-activation"]
    decompose = options.decompose_prelu
    if decompose is None:
        # xnnpack: float PRELU islands (legalize-target); numba: its int8 PRELU is one
        # rounding a side, run as two rounded lines per channel (`affine_chan_i8`)
        decompose = target not in ("xnnpack", "numba")
    if decompose:
        steps.append("decompose-prelu")  # MUL + MAXIMUM (passes/decompose_prelu.py)
    steps.append("annotate-ranges{" + " ".join(annotate) + "}")
    fc = "" if options.per_channel_fc else "{per-channel-fc=false}"
    if options.bias_correction:
        steps.append("bias-correction" + fc)  # passes/bias_correction.py; same FC choice
    steps.append("infer-scales" + fc)
    steps.append(_LEGALIZE[target])
    steps.append("quantize")
    if options.io_dtype != "float":
        steps.append(f"modify-io{{dtype={options.io_dtype}}}")
    return "builtin.module(" + ",".join(steps) + ")"
