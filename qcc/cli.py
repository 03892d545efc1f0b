"""The `qcc` command.

    qcc INPUT [-o OUT] [--pass-pipeline=TEXT] [--emit=mlir|tflite|numba]

INPUT is a .tflite flatbuffer or MLIR text (.mlir, or `-` for stdin). Bad input of any kind is
one line on stderr and exit code 1; no output file is written unless everything succeeded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qcc.errors import QccError, QccWarning
from qcc.pipeline import IO_DTYPES, MODES

EMIT_CHOICES = ("mlir", "tflite", "numba")
SUFFIX_KINDS = {".tflite": "tflite", ".mlir": "mlir"}
"""What an output file's suffix (case-insensitive) says to write, when --emit is not given."""

QUANTIZING_PASSES = frozenset(
    {"annotate-ranges", "bias-correction", "infer-scales", "legalize-fallback", "legalize-target",
     "verify-int8", "quantize", "modify-io", "dynamic-range"}
)
"""Passes that exist to quantize: a pipeline with one of them that leaves the module float
gets a warning."""


class UsageError(Exception):
    """A command-line argument error (reported as one line, exit code 1, like any bad input)."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, except that an argument error raises UsageError instead of printing the
    usage block and exiting with 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see qcc --help)")


def _build_arg_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="qcc",
        description="qcc: a post-training quantization compiler for neural networks.",
    )
    p.add_argument(
        "input", nargs="?", help="a .tflite model, or MLIR text (.mlir, or - for stdin)"
    )
    from qcc.version import __version__

    p.add_argument("--version", action="version", version=f"qcc {__version__}")
    p.add_argument(
        "-o",
        "--output",
        help="output file: .tflite or .mlir (the suffix chooses, unless --emit is given), - for "
        "stdout, or a folder for --emit=numba (default: MLIR on stdout)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="--emit=numba: write into an existing folder that holds other files (only qcc's "
        "own files are replaced)",
    )
    p.add_argument(
        "--artifact-baseline",
        metavar="CPU",
        help="--emit=numba: carry the Numba cache compiled for this CPU baseline (x86-64-v2, "
        "x86-64-v3, x86-64-v4), so the artifact's first run on such a CPU loads instead of "
        "compiling (default: $QCC_ARTIFACT_BASELINE, else none)",
    )
    p.add_argument(
        "--pass-pipeline",
        "-p",
        dest="pass_pipeline",
        default="",
        help="MLIR pass pipeline text, e.g. 'builtin.module(fuse-activation,cse)'",
    )
    p.add_argument(
        "--emit",
        choices=EMIT_CHOICES,
        help="what to write: MLIR text, a .tflite flatbuffer, or (numba) a folder with a "
        "self-contained Numba program, model.py + kernels.py.xz + weights.npz (default: from "
        "-o's suffix)",
    )
    p.add_argument("--print-ir-after-all", action="store_true", help="print IR after each pass")
    p.add_argument("--time-passes", action="store_true", help="report the time of each pass")
    p.add_argument(
        "--verify-diagnostics",
        action="store_true",
        help="print diagnostics (parse, verify and pass errors) on stdout and exit 0",
    )
    p.add_argument(
        "--split-input-file",
        action="store_true",
        help="process each '// -----' separated chunk of MLIR input on its own",
    )
    p.add_argument("--print-op-generic", action="store_true", help="print ops in generic form")
    p.add_argument("--list-passes", action="store_true", help="list the available passes")
    q = p.add_argument_group("quantization presets (used when --pass-pipeline is not given)")
    from qcc.targets import TARGETS

    q.add_argument(
        "--mode",
        choices=MODES,
        help="int8 (default when --calibration is given; each op int8 or float, as the "
        "target runs it best), int8-only (= --target=int8-only: fail on any op without an "
        "int8 kernel), dynamic-range (int8 weights only)",
    )
    q.add_argument(
        "--target",
        choices=TARGETS,
        help="where the model will run: xnnpack (LiteRT's default resolver; the default, "
        "float islands where XNNPACK takes an op in float but not in int8), reference "
        "(LiteRT's BUILTIN_REF kernels: every op with an int8 kernel in int8), int8-only (no "
        "float op at all), numba (qcc's own runtime; the default for --emit=numba)",
    )
    q.add_argument(
        "--calibration",
        metavar="PATH",
        help="representative data: an .npz, a folder of .npy files, or a folder of images; or "
        "calibration statistics saved with --save-stats",
    )
    q.add_argument(
        "--save-stats",
        metavar="FILE",
        help="also write the calibration statistics annotate-ranges attached (an .npz, see "
        "qcc/statistics.py), to give later runs as --calibration FILE or "
        "annotate-ranges{calibration=FILE}: they reproduce this run's output exactly",
    )
    q.add_argument(
        "--input-range",
        metavar="LO,HI",
        help="value range images are scaled to (default 0,1); write --input-range=-1,1",
    )
    q.add_argument(
        "--calibration-method",
        choices=("minmax", "percentile", "mse"),
        default="mse",
        help="how calibration ranges are chosen: minmax (observed range), percentile "
        "(clip the tails), mse (minimize int8 error; default)",
    )
    q.add_argument("--samples", type=int, default=0, help="use at most N calibration samples")
    q.add_argument(
        "--io-dtype",
        choices=IO_DTYPES,
        default="float",
        help="element type of the quantized model's inputs and outputs (default float)",
    )
    q.add_argument(
        "--per-tensor-fc",
        action="store_true",
        help="quantize FULLY_CONNECTED weights per tensor instead of per output channel",
    )
    q.add_argument(
        "--keep-prelu",
        action="store_true",
        help="keep PRELU ops as they are (by default, for the reference and int8-only "
        "targets, they become MUL+MAXIMUM before calibration; xnnpack keeps PRELU and runs it "
        "in float, numba keeps it in int8)",
    )
    q.add_argument(
        "--bias-correction",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fold the mean output error of the int8 weights, measured on the calibration "
        "data, into the biases (the bias-correction pass; on by default)",
    )
    q.add_argument(
        "--target-snr",
        type=float,
        metavar="DB",
        help="mixed precision: promote the fewest, cheapest ops to int16 activations or float "
        "islands (as the target allows) so that every output reaches DB dB SNR against float "
        "on held-out calibration samples; prints the plan on stderr (--print-pipeline shows "
        "the pipeline that makes it)",
    )
    q.add_argument(
        "--max-float-ops",
        type=int,
        metavar="N",
        help="with --target-snr: at most N float islands",
    )
    q.add_argument(
        "--print-pipeline",
        action="store_true",
        help="print the pipeline text the options select, and exit",
    )
    q.add_argument(
        "--report",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print where the model loses accuracy: per op, its own (local) and cumulative SNR "
        "against float, worst first, its precision and why; size, partitions, and which ops to "
        "keep in float (sensitivity on held-out calibration samples); --report=FILE writes it "
        "instead: .json (every number, full names), .csv (the op table) or .txt",
    )
    return p


@dataclass
class PassTimer:
    """Collects per-pass wall time for --time-passes."""

    entries: list[tuple[str, float]] = field(default_factory=list)

    def report(self, stream) -> None:
        total = sum(t for _, t in self.entries) or 1e-12
        stream.write("===-------------------------------------------------------------===\n")
        stream.write("                      ... Pass execution timing report ...\n")
        stream.write("===-------------------------------------------------------------===\n")
        stream.write(f"  Total Execution Time: {total:.4f} seconds\n\n")
        stream.write("   ----Wall Time----  ----Name----\n")
        for name, t in self.entries:
            stream.write(f"   {t:.4f} ({100 * t / total:5.1f}%)  {name}\n")
        stream.write(f"   {total:.4f} (100.0%)  Total\n")


def _read_input(path: str) -> tuple[str, bytes]:
    """The input's kind ('tflite' or 'mlir') and bytes."""
    from qcc.fileio import read_bytes

    if path == "-":
        return "mlir", sys.stdin.buffer.read()
    data = read_bytes(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite" or data[4:8] == b"TFL3":
        return "tflite", data
    if suffix in (".mlir", ""):
        return "mlir", data
    raise QccError(f"{path}: unknown input format '{suffix}' (expected .tflite or .mlir)")


def _split_chunks(text: str, split: bool) -> list[tuple[str, int]]:
    if not split:
        return [(text, 0)]
    chunks, offset = [], 0
    for chunk in text.split("// -----"):
        chunks.append((chunk, offset))
        offset += chunk.count("\n")
    return chunks


def _parse_chunk(text: str, name: str, line_offset: int):
    from qcc.irtext import parse_ir

    # Pad with newlines so reported line numbers refer to the whole file.
    return parse_ir("\n" * line_offset + text, name)


def _run_passes(module, passes, args, timer: PassTimer | None) -> None:
    from qcc.context import make_context
    from qcc.irtext import print_ir

    ctx = make_context()
    for p in passes:
        start = time.perf_counter()
        p.apply(ctx, module)
        if timer is not None:
            timer.entries.append((p.name, time.perf_counter() - start))
        module.verify()
        if args.print_ir_after_all:
            sys.stderr.write(f"// -----// IR Dump After {p.name} //----- //\n")
            sys.stderr.write(print_ir(module, generic=args.print_op_generic))


def _emit_kind(args) -> str:
    """What to write: --emit, else what -o's suffix says (case-insensitive); MLIR on stdout
    without -o. A suffix that names nothing qcc writes is an error, not a guess."""
    out = args.output
    suffix = Path(out).suffix.lower() if out and out != "-" else ""
    by_suffix = SUFFIX_KINDS.get(suffix)
    offered = ", ".join(f"--emit={k}" for k in EMIT_CHOICES)
    if args.emit:
        if args.emit != "numba" and by_suffix is not None and by_suffix != args.emit:
            raise QccError(f"-o {out}: a {suffix} name, but --emit={args.emit}; make them agree")
        return args.emit
    if not out or out == "-":
        return "mlir"
    if by_suffix is None:
        what = f"suffix '{Path(out).suffix}'" if suffix else "no suffix"
        raise QccError(
            f"-o {out}: {what}; name the output .tflite or .mlir, or say what to write with "
            f"{offered}"
        )
    return by_suffix


def _inputs(args) -> list[str]:
    """The files the command reads: never to be overwritten."""
    return [p for p in (args.input, args.calibration) if p and p != "-"]


def _write_output(module, args) -> None:
    from qcc.fileio import atomic_write
    from qcc.irtext import print_ir

    kind = _emit_kind(args)
    if kind == "mlir":
        text = print_ir(module, generic=args.print_op_generic)
        if args.output:
            atomic_write(args.output, text, inputs=_inputs(args))
        else:
            sys.stdout.write(text)
        return
    if kind == "tflite":
        if not args.output:
            raise QccError("--emit=tflite needs an output file (-o OUT.tflite, or -o - for stdout)")
        from qcc.backends.litert_check import check_prepares
        from qcc.backends.tflite import export_tflite
        from qcc.fileio import check_not_an_input

        check_not_an_input(args.output, _inputs(args))
        data = export_tflite(module)
        check_prepares(data, label=args.output if args.output != "-" else "the output")
        atomic_write(args.output, data, inputs=_inputs(args))
        return
    if kind == "numba":
        if not args.output or args.output == "-":
            raise QccError("--emit=numba needs an output folder (-o DIR)")
        from qcc.backends.numba import compile_module, module_is_quantized, write_artifact
        from qcc.runtime.errors import ExecutorError

        if not module_is_quantized(module):
            raise QccError(
                "--emit=numba needs a quantized module (give --calibration, or a pipeline "
                "that quantizes)"
            )
        try:
            compiled = compile_module(module)
            if args.target == "xnnpack" and compiled.has_float_islands:
                raise QccError(
                    "--emit=numba: --target=xnnpack made float islands (ops XNNPACK runs "
                    "faster in float), which a Numba artifact cannot hold; its target is "
                    "--target=numba, the default with --emit=numba"
                )
            write_artifact(
                compiled,
                args.output,
                source_label=args.input or "",
                force=args.force,
                inputs=_inputs(args),
                cache_baseline=args.artifact_baseline,
            )
        except ExecutorError as e:
            raise QccError(f"--emit=numba: {e}") from None
        return
    raise QccError(f"unknown --emit '{kind}'")


REPORT_SUFFIXES = (".json", ".csv", ".txt")


def _check_report(args) -> None:
    """--report measures on the calibration data: it needs data, not saved statistics;
    --report=FILE names a report file, never a model or one of the inputs."""
    if args.report is None:
        return
    if not args.calibration:
        raise QccError("--report needs --calibration (the data the SNR is measured on)")
    from qcc.statistics import is_statistics_file

    if is_statistics_file(args.calibration):
        raise QccError(
            f"--report measures the SNR on representative data; {args.calibration} holds "
            "saved statistics (give the data they were gathered from)"
        )
    if args.report != "-":
        if Path(args.report).suffix.lower() not in REPORT_SUFFIXES:
            raise QccError(
                f"--report={args.report}: a report file is .json, .csv or .txt (write "
                "--report=FILE; --report alone prints the report)"
            )
        from qcc.fileio import check_not_an_input

        check_not_an_input(args.report, [*_inputs(args), args.output])


def _print_report(float_module, module, original: bytes, args, passes) -> None:
    from qcc.api import Model
    from qcc.backends.tflite import export_tflite
    from qcc.calibration import load_representative_data
    from qcc.report import build_report
    from qcc.sensitivity import Analysis, Stages

    options = _preset_options(args)
    _check_report(args)
    specs = Model(float_module).input_specs()
    samples = [
        list(s)
        for s in load_representative_data(
            options.calibration, specs, input_range=options.input_range,
            samples=options.samples or None,
        )
    ]
    stages = Stages.from_passes(float_module, passes)  # the model written, statistics replayed
    analysis, note = None, ""
    try:  # held out: every 4th sample; the analysis calibrates on the others
        analysis = Analysis.from_passes(float_module, passes, samples)
    except QccError as e:
        note = str(e)
    report = build_report(
        stages, samples, tflite=export_tflite(module), input_size=len(original),
        analysis=analysis, sensitivity_note=note, count_partitions=True,
        source=Path(args.input).name,
    )
    if args.report == "-":
        sys.stdout.write(report.format())
    else:
        report.write(args.report, inputs=_inputs(args))


def _diagnostic_text(e: BaseException) -> str:
    text = str(e)
    for note in getattr(e, "__notes__", []) or []:
        text += "\n" + str(note)
    return text


def _preset_options(args):
    from qcc.pipeline import PresetOptions

    input_range = None
    if args.input_range:
        from qcc.calibration import parse_input_range

        input_range = parse_input_range(args.input_range)
    target = args.target
    if target is None and args.emit == "numba" and args.mode in (None, "int8"):
        target = "numba"  # the artifact runs integer kernels only: no float islands
    return PresetOptions(
        mode=args.mode or "int8",
        target=target,
        calibration=args.calibration or "",
        method=args.calibration_method,
        samples=args.samples,
        input_range=input_range,
        io_dtype=args.io_dtype,
        per_channel_fc=not args.per_tensor_fc,
        decompose_prelu=False if args.keep_prelu else None,
        bias_correction=args.bias_correction,
    )


def _pipeline_text(args) -> str:
    """The explicit --pass-pipeline, or the preset the quantization options select."""
    from qcc.pipeline import preset_pipeline_text

    explicit = args.pass_pipeline.strip()
    wants_preset = bool(args.mode or args.calibration or args.target or args.print_pipeline)
    if explicit:
        if args.mode or args.calibration or args.target:
            raise QccError(
                "--pass-pipeline replaces --mode/--calibration/--target; give one or the other"
            )
        return explicit
    if not wants_preset:
        if args.io_dtype != "float" or args.input_range or args.report is not None:
            raise QccError("--io-dtype, --input-range and --report need --calibration or --mode")
        return ""
    options = _preset_options(args)
    if options.mode != "dynamic-range" and not options.calibration and not args.print_pipeline:
        what = f"--target={args.target}" if args.target and not args.mode else f"--mode={options.mode}"
        raise QccError(f"{what} needs representative data: --calibration PATH")
    return preset_pipeline_text(options, calibration_placeholder="CALIBRATION")


def _check_target_snr(args) -> None:
    """--target-snr runs a search on representative data with a quantizing preset."""
    if args.max_float_ops is not None:
        if args.target_snr is None:
            raise QccError("--max-float-ops bounds the --target-snr search; give --target-snr")
        if args.max_float_ops < 0:
            raise QccError(f"--max-float-ops must be 0 or more, got {args.max_float_ops}")
    if args.target_snr is None:
        return
    import math

    if not math.isfinite(args.target_snr):
        raise QccError(f"--target-snr must be a finite number of dB, got {args.target_snr}")
    if args.pass_pipeline.strip():
        raise QccError("--target-snr applies to the presets; with --pass-pipeline, write "
                       "assign-precision{int16=... float=...} yourself")
    if args.mode == "dynamic-range":
        raise QccError("--target-snr chooses int8/int16/float activations: not dynamic-range")
    if not args.calibration:
        raise QccError("--target-snr needs representative data: --calibration PATH")
    from qcc.statistics import is_statistics_file

    if is_statistics_file(args.calibration):
        raise QccError(
            f"--target-snr measures the SNR on representative data; {args.calibration} holds "
            "saved statistics (give the data they were gathered from)"
        )


def _plan_precision(args, text: str) -> str:
    """Run the mixed-precision search; print its plan on stderr; the pipeline that makes it."""
    from qcc.api import Model
    from qcc.calibration import load_representative_data
    from qcc.frontends.tflite import import_tflite
    from qcc.mixed_precision import plan_pipeline
    from qcc.pipeline import preset_target

    kind, data = _read_input(args.input)
    if kind != "tflite":
        raise QccError("--target-snr takes a .tflite model")
    module = import_tflite(data, name=args.input)
    from qcc.api import refuse_quantized_input

    refuse_quantized_input(module, args.input)
    options = _preset_options(args)
    samples = load_representative_data(
        options.calibration, Model(module).input_specs(), input_range=options.input_range,
        samples=options.samples or None,
    )
    plan, planned = plan_pipeline(
        module, text, [list(s) for s in samples], preset_target(options) or "",
        args.target_snr, max_float_ops=args.max_float_ops, progress_stream=sys.stderr,
    )
    sys.stderr.write(plan.summary())
    return planned


def _check_save_stats(args, passes) -> None:
    """A --save-stats that cannot be honoured is an error before any work is done."""
    if not args.save_stats:
        return
    from qcc.statistics import calibrators

    if args.split_input_file or args.verify_diagnostics:
        raise QccError("--save-stats applies to one model, not to --split-input-file or "
                       "--verify-diagnostics")
    found = len(calibrators(passes))
    if found != 1:
        what = "no annotate-ranges with data" if not found else f"annotate-ranges {found} times"
        raise QccError(
            f"--save-stats saves the statistics of the pipeline's annotate-ranges, and this "
            f"pipeline runs {what} (give --calibration, or one annotate-ranges{{calibration=PATH}})"
        )
    from qcc.fileio import STDIO, check_not_an_input

    check_not_an_input(args.save_stats, _inputs(args))
    to_stdout = not args.output or args.output == STDIO
    if args.save_stats == STDIO and to_stdout:
        raise QccError("--save-stats -: the output goes to stdout already; give -o FILE")
    if (
        args.save_stats != STDIO
        and not to_stdout
        and os.path.realpath(args.save_stats) == os.path.realpath(args.output)
    ):
        raise QccError(f"--save-stats {args.save_stats}: is the output too; give it another name")


def _save_stats(args, passes) -> None:
    if not args.save_stats:
        return
    from qcc.statistics import calibrators, save

    (calibrator,) = calibrators(passes)
    assert calibrator.statistics is not None
    save(calibrator.statistics, args.save_stats, inputs=_inputs(args))


def _warn_if_float(module, passes) -> None:
    """Say so when a pipeline meant to quantize leaves no quantized type in the module."""
    import warnings

    from qcc.dialects.quant import QuantizedType

    def quantized(value) -> bool:
        element = getattr(value.type, "get_element_type", None)
        return element is not None and isinstance(element(), QuantizedType)

    names = [p.name for p in passes]
    meant = [n for n in names if n in QUANTIZING_PASSES]
    if not meant or any(quantized(r) for op in module.walk() for r in op.results):
        return
    hint = ""
    if "quantize" in names and "infer-scales" not in names:
        hint = " (quantize materializes the types infer-scales chooses: run annotate-ranges " \
            "and infer-scales before it, or use --calibration for the preset)"
    warnings.warn(
        f"the output is a float model: the pipeline ({', '.join(meant)}) quantized nothing{hint}",
        QccWarning,
        stacklevel=2,
    )


def _run(args) -> int:
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    from qcc.pipeline import available_passes, build_pipeline

    if args.list_passes:
        for name in available_passes():
            print(name)
        return 0

    text = _pipeline_text(args)
    _check_target_snr(args)
    if args.print_pipeline and args.target_snr is None:
        print(text or "builtin.module()")
        return 0
    if args.input is None:
        raise QccError("no input file given (usage: qcc INPUT [-o OUT] [options])")
    if args.target_snr is not None:
        text = _plan_precision(args, text)
        if args.print_pipeline:
            print(text)
            return 0
    passes = build_pipeline(text) if text else []
    _check_report(args)
    _check_save_stats(args, passes)
    if args.output:  # a bad -o is reported before any work is done
        from qcc.fileio import check_not_an_input

        check_not_an_input(args.output, _inputs(args))
        if not (args.split_input_file or args.verify_diagnostics):
            _emit_kind(args)
    if args.force and args.emit != "numba":
        raise QccError("--force applies to --emit=numba output folders only")
    if args.artifact_baseline is not None:
        if args.emit != "numba":
            raise QccError("--artifact-baseline applies to --emit=numba output folders only")
        from qcc.backends.numba import CACHE_BASELINES

        if args.artifact_baseline not in (*CACHE_BASELINES, "none"):
            raise QccError(f"unknown --artifact-baseline '{args.artifact_baseline}'; choose one "
                           f"of: {', '.join(CACHE_BASELINES)}, none")
    kind, data = _read_input(args.input)
    timer = PassTimer() if args.time_passes else None

    if kind == "tflite":
        if args.split_input_file:
            raise QccError("--split-input-file applies to MLIR input only")
        from qcc.frontends.tflite import import_tflite

        modules = [(import_tflite(data, name=args.input), 0)]
        chunks = None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise QccError(f"{args.input}: not UTF-8 MLIR text") from None
        chunks = _split_chunks(text, args.split_input_file)
        modules = None

    if chunks is None:
        assert modules is not None
        module = modules[0][0]
        if not args.pass_pipeline.strip() and passes:  # a preset: float models only
            from qcc.api import refuse_quantized_input

            refuse_quantized_input(module, args.input)
        float_module = module.clone() if args.report is not None else None
        _run_passes(module, passes, args, timer)
        _warn_if_float(module, passes)
        _write_output(module, args)
        _save_stats(args, passes)
        if float_module is not None:
            _print_report(float_module, module, data if kind == "tflite" else b"", args, passes)
    else:
        outputs: list[str] = []
        from qcc.irtext import print_ir

        name = "<stdin>" if args.input == "-" else args.input
        for chunk, offset in chunks:
            try:
                module = _parse_chunk(chunk, name, offset)
                module.verify()
                _run_passes(module, passes, args, timer)
                if not (args.split_input_file or args.verify_diagnostics):
                    _warn_if_float(module, passes)
                if args.split_input_file or args.verify_diagnostics:
                    outputs.append(print_ir(module, generic=args.print_op_generic))
                else:
                    _write_output(module, args)
                    _save_stats(args, passes)
            except (ParseError, DiagnosticException, QccError) as e:
                if not args.verify_diagnostics:
                    raise
                outputs.append(_diagnostic_text(e).rstrip("\n") + "\n")
        if args.split_input_file or args.verify_diagnostics:
            joined = "// -----\n".join(outputs)
            if args.output:
                from qcc.fileio import atomic_write

                atomic_write(args.output, joined, inputs=_inputs(args))
            else:
                sys.stdout.write(joined)
    if timer is not None:
        timer.report(sys.stderr)
    return 0


def _one_line(e: BaseException) -> str:
    """A one-line rendering of any error qcc reports."""
    from xdsl.utils.exceptions import ParseError

    if isinstance(e, ParseError):
        return f"{e.span.get_location()}: {e.msg}"
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _error_lines(e: BaseException) -> list[str]:
    """What to print for an error: one line, except a pass's diagnostic that lists several
    offending ops (verify-int8), which keeps one line per op."""
    from xdsl.utils.exceptions import PassFailedException

    if isinstance(e, PassFailedException):
        lines = [line for line in str(e).splitlines() if line.strip()]
        if lines:
            return lines
    return [_one_line(e)]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as the driver's one-line messages (`qcc: warning: ...`)."""
    text = " ".join(str(message).split())
    if not issubclass(category, QccWarning):
        return  # library chatter (numpy, xDSL deprecations) is not the user's business
    try:
        sys.stderr.write(f"qcc: warning: {text}\n")
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    parser = _build_arg_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        sys.stderr.write(f"qcc: error: {e}\n")
        return 1
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", QccWarning)
    try:
        return _run(args)
    except KeyboardInterrupt:
        sys.stderr.write("qcc: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the driver's one error boundary
        if os.environ.get("QCC_DEBUG"):
            raise
        for line in _error_lines(e):
            sys.stderr.write(f"qcc: error: {line}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
