"""The Numba backend: a quantized module -> a compiled plan of integer kernels.

    from qcc.backends.numba import compile_module, write_artifact
    cm = compile_module(module)          # everything precomputed: multipliers, packed weights...
    outputs = cm.run([x])                # list of numpy arrays, in the function's result order
    write_artifact(cm, "out_dir/")       # out_dir/: model.py, kernels.py.xz, weights.npz

Every op of `func.func @main` becomes one plan step (see `qcc.runtime.plan`):

* ops that touch a quantized type (`!quant.uniform`), and `quant.qcast` / `quant.dcast`,
  are lowered by the int8 lowering registered for their class
  (`qcc.runtime.kernels.registry.INT8_LOWERINGS`): the lowering reads the op's types and
  constants once and returns (kernel name, params); the runner `RUNNERS[kernel](inputs,
  params)` (`int8_registry`) runs it with numpy/Numba only. Whether an nn op has an int8
  kernel at all is its declaration's answer (`nn.int8_capable`, asked with
  `imported=True`: an op qcc keeps float but whose int8 instances it runs, SUM, counts);
  an op declared int8 without a registered lowering is reported as such;
* `nn.constant` values become plan constants (only if a step reads them at run time;
  weights folded into a lowering's params are not duplicated);
* float ops (float islands between `quant.dcast` and `quant.qcast`, for ops without an int8
  kernel) run in-process through the float executor's kernels (a "callable" step); a plan
  with float islands cannot be written as a self-contained artifact;
* an op with an int16 activation (TFLite's 16x8 kernels; a `quant.qcast` / `quant.dcast`
  with int16 on either side) is lowered by its int16 lowering
  (`qcc.runtime.kernels.registry.INT16_LOWERINGS`, kernels in `int16_kernels`), same
  protocol; an op class without one is refused with a one-line `MissingKernelError` naming
  the op and its i16 activation;
* an op with any other quantized activation that is not per-tensor int8 (an imported
  .tflite with uint8 activations) has no int8 kernel: compiling fails with a one-line
  `MissingKernelError` naming the op (`_storage_mismatch`), as it does when a lowering
  refuses an op instance (returns None, or raises on types qcc's passes never produce).

After lowering, chains of element-wise steps on one tensor (e.g. decompose-prelu's MUL by a
per-channel alpha, then MAXIMUM) are fused into one per-channel step, tabulated by running
the chain's own runners on every (channel, stored value) pair (the runners declared
`elementwise` in `int8_registry`). The step is the vectorized two-line form
`affine_chan_i8` when the table is a rounded line per channel on each side of the input's
zero point (PRELU, RELU or LEAKY_RELU with a rescale, MUL by a constant: a lone such step
too), else the float32 `prelu_chan_i8` for a MUL + MAXIMUM chain it reproduces
(`_prelu_form`), else the table lookup `lut_chan_i8`. Each form is checked on the whole
table: the fused step computes what the chain computes, bit for bit. Before that, an int8
PAD of the spatial axes filled with the zero point is folded into the convolutions that read
it (`_fold_pads`: their top and left padding grow; a padded tap adds nothing to the sum).

The self-contained artifact (`write_artifact`, ``qcc --emit=numba -o DIR``) is a folder that
needs numpy and numba only, at most ~1.2x the model's int8 .tflite:

* model.py, the entry point (``import model; model.run([x])``): its docstring (inputs,
  outputs, first-run cost, the carried cache), with a carried cache the prelude that picks it
  before numba is imported and the code that seeds it, the import of the kernels and the
  entry points (~10 KB without a carried cache, ~16 KB with one);
* kernels.py.xz: `kernel_source` of the plan's kernels (fixedpoint, the plan runner, the
  registry and the kernel families, tree-shaken to what the runners reach, no docstrings),
  xz-compressed (~107 KB -> ~22 KB). model.py extracts it to a real kernels.py, checked
  against the sha256 it records, because Numba caches compiled code only for a source file
  (its cache is keyed by the file's path, mtime and size, and named after its basename):
  under NUMBA_CACHE_DIR, else in __pycache__ beside model.py, else in the user's cache
  folder, never elsewhere in the artifact folder (it may be read-only);
* weights.npz: `plan_to_arrays` (the plan's JSON document and its arrays packed into one
  flat array per dtype), deflated zip entries that `np.load` reads (`_deflated_npz`);
* optionally numba-cache-<baseline>/ (`_carried_cache`): Numba's cache of the kernels,
  compiled for a CPU baseline, which model.py seeds into Numba's cache for kernels.py.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation, SSAValue

from qcc.dialects import nn, quant
from qcc.dialects.ir import decode_dense, describe_op, element_dtype, find_main, location_text
from qcc.dialects.quant import QuantizedType, UniformQuantizedType
from qcc.errors import QccError
from qcc.runtime import plan as plan_mod
from qcc.runtime.errors import MissingKernelError
from qcc.runtime.kernels import int8_registry as reg
from qcc.runtime.kernels.int8_elementwise import affine_chan_params
from qcc.runtime.kernels.registry import (
    INT8_LOWERINGS,
    INT16_LOWERINGS,
    int8_lowering,
    int16_lowering,
)
from qcc.runtime.plan import CALLABLE_KERNEL, Plan, PlanRunner, Step


def _is_quant_value(v: SSAValue) -> bool:
    get = getattr(v.type, "get_element_type", None)
    return get is not None and isinstance(get(), QuantizedType)


_CASTS = (quant.QuantizeCastOp, quant.DequantizeCastOp)


def _is_constant(v: SSAValue) -> bool:
    return isinstance(v.owner, nn.ConstantOp)


def op_is_quantized(op: Operation) -> bool:
    """True if the op reads or writes a quantized activation (it runs on the int8 registry).
    An op whose only quantized operands are constants (dynamic-range "hybrid" weights) is a
    float op: it runs on the float kernels with those constants dequantized."""
    if isinstance(op, _CASTS):
        return True
    if any(_is_quant_value(v) for v in op.results):
        return True
    return any(_is_quant_value(v) and not _is_constant(v) for v in op.operands)


def module_is_quantized(module: Operation) -> bool:
    """True if any value of the module has a quantized element type."""
    for op in module.walk():
        if isinstance(op, (nn.ConstantOp, *_CASTS)):
            if op_is_quantized(op):
                return True
            continue
        if any(_is_quant_value(v) for v in op.results):
            return True
    return False


def _where(op: Operation) -> str:
    loc = location_text(op.location)
    return f' (at "{loc}")' if loc is not None else ""


def _spec(t) -> tuple[tuple[int, ...], str]:
    shape = tuple(int(d) for d in t.get_shape())
    dtype = element_dtype(t.get_element_type())
    if dtype is None:
        raise QccError(f"unsupported tensor type {t} at the model boundary")
    return shape, dtype.name


def _dequantized_constant(v: SSAValue) -> Operation:
    """A detached float32 `nn.constant` holding the real values of a quantized constant:
    (q − zp)·scale, per tensor or along the type's axis."""
    from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, Float32Type, TensorType

    from qcc.dialects import nn
    from qcc.dialects.quant import UniformQuantizedPerAxisType

    q = v.type.get_element_type()  # type: ignore[attr-defined]
    stored = decode_dense(v.owner.value).astype(np.float64)  # type: ignore[union-attr]
    if isinstance(q, UniformQuantizedPerAxisType):
        shape = [1] * stored.ndim
        shape[q.axis] = -1
        scale = np.asarray(q.scales, np.float32).astype(np.float64).reshape(shape)
        zp = np.asarray(q.zero_points, np.float64).reshape(shape)
    else:
        scale, zp = float(np.float32(q.scale)), float(q.zero_point)
    real = ((stored - zp) * scale).astype(np.float32)
    ttype = TensorType(Float32Type(), real.shape)
    attr = DenseIntOrFPElementsAttr(ttype, BytesAttr(np.ascontiguousarray(real).astype("<f4").tobytes()))
    return nn.ConstantOp(attr, ttype)


def _float_step(op: Operation):
    from qcc.runtime.kernels import lookup

    hybrid = [i for i, v in enumerate(op.operands) if _is_quant_value(v) and _is_constant(v)]
    if hybrid:
        # dynamic-range weights: run the float kernel on a copy of the op whose quantized
        # constant operands are replaced by their dequantized float values
        consts = {i: _dequantized_constant(op.operands[i]) for i in hybrid}
        op = op.clone()
        for i, c in consts.items():
            op.operands[i] = c.results[0]
    factory = lookup(op)
    fn = factory(op) if factory is not None else None
    single = len(op.results) == 1
    if hybrid:
        op.drop_all_references()  # the detached copy must not stay a user of module values
    if fn is None:
        raise MissingKernelError(f"no kernel for {describe_op(op)}{_where(op)}", op.name,
                                 location_text(op.location))

    def run(inputs):
        r = fn(*inputs)
        return [r] if single else list(r)

    return run


def _storage_mismatch(op: Operation, int16: bool = False) -> str | None:
    """The first quantized activation of `op` (a result, or a non-constant operand) that is
    not per-tensor int8 (or int16, with `int16`: the int16 lowerings' own check), as text;
    None when there is none. The int8 kernels are written for
    per-tensor int8 activations only, and some lowerings (data movement) do not look at the
    storage type, so a quantized model from elsewhere (a .tflite with uint8 or int16
    activations) is refused here, naming the op, instead of running with the wrong dtype.
    Constants keep their own storage (int8 weights, int32 biases): the lowerings check them."""
    from qcc.dialects.quant import UniformQuantizedPerAxisType

    if isinstance(op, _CASTS):
        return None  # their lowerings check both sides
    values = list(op.results) + [v for v in op.operands if not _is_constant(v)]
    for v in values:
        if not _is_quant_value(v):
            continue
        q = v.type.get_element_type()  # type: ignore[attr-defined]
        if q.storage_bits not in ((8, 16) if int16 else (8,)) or not q.is_signed:
            return f"{'u' if not q.is_signed else 'i'}{q.storage_bits} activation {v.type}"
        if isinstance(q, UniformQuantizedPerAxisType):
            return f"per-axis activation {v.type}"
    return None


def _int16_storage(op: Operation) -> bool:
    """True if `op` reads or writes an int16 activation (a result, a non-constant operand;
    either side of a `quant.qcast` / `quant.dcast`): it lowers through the int16 registry."""
    values = list(op.results) + [v for v in op.operands
                                 if isinstance(op, _CASTS) or not _is_constant(v)]
    for v in values:
        if _is_quant_value(v):
            q = v.type.get_element_type()  # type: ignore[attr-defined]
            if q.storage_bits == 16 and q.is_signed:
                return True
    return False


def _lower(op: Operation):
    capable, why = nn.int8_capable(op, imported=True)
    if not capable:
        detail = "" if isinstance(op, nn.GenericOp) else f": {why}"  # describe_op says custom
        raise MissingKernelError(
            f"no int8 kernel for {describe_op(op)}{_where(op)}{detail}", op.name,
            location_text(op.location),
        )
    int16 = _int16_storage(op)
    if int16:
        lower = INT16_LOWERINGS.lookup(op)
        mismatch = _storage_mismatch(op, int16=True)
        if lower is None or mismatch is not None:
            what = mismatch or _storage_mismatch(op) or "i16 activation"
            raise MissingKernelError(
                f"no int8 kernel for {describe_op(op)}{_where(op)} with a {what} (the "
                "integer runtime has no int16 kernel for it)",
                op.name,
                location_text(op.location),
            )
    else:
        lower = INT8_LOWERINGS.lookup(op)
    if lower is None:
        declared = f" (declared int8, but no int8 lowering is registered for {type(op).__name__})"
        raise MissingKernelError(
            f"no int8 kernel for {describe_op(op)}{_where(op)}"
            + (declared if nn.op_spec(op) is not None else ""),
            op.name,
            location_text(op.location),
        )
    mismatch = None if int16 else _storage_mismatch(op)
    if mismatch is not None:
        raise MissingKernelError(
            f"no int8 kernel for {describe_op(op)}{_where(op)} with a {mismatch} (the int8 "
            "runtime runs per-tensor int8 activations only)",
            op.name,
            location_text(op.location),
        )
    try:
        lowered = lower(op)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        # an op instance a lowering does not expect (imported IR may combine types qcc's
        # passes never produce): one line naming the op rather than a traceback
        raise MissingKernelError(
            f"no int8 kernel for {describe_op(op)}{_where(op)}: {type(e).__name__}: "
            + " ".join(str(e).split()),
            op.name,
            location_text(op.location),
        ) from e
    if lowered is None:
        types = ", ".join(str(v.type) for v in op.operands)
        raise MissingKernelError(
            f"no int8 kernel for {describe_op(op)}{_where(op)} with operand types ({types})",
            op.name,
            location_text(op.location),
        )
    if len(lowered) == 2:
        kernel, params = lowered
        indices = list(range(len(op.operands)))
    else:
        kernel, params, indices = lowered
    if kernel not in reg.RUNNERS:
        raise MissingKernelError(f"no runner '{kernel}' for {describe_op(op)}{_where(op)}", op.name)
    return kernel, dict(params), list(indices)


def _int8_shape(t) -> tuple[int, ...] | None:
    try:
        shape, dtype = _spec(t)
    except Exception:
        return None
    if dtype != "int8" or any(d < 0 for d in shape) or not shape:
        return None
    return shape


def _per_channel_constant(a: Any, c: int) -> bool:
    """True if the constant operand `a` broadcasts over the last axis only: one value, or c
    values along the last axis (shape [..., 1, c])."""
    if not isinstance(a, np.ndarray):
        return False
    return a.size == 1 or (a.ndim >= 1 and a.shape[-1] == c and a.size == c)


def _lut_fusible(s: Step, c: int) -> bool:
    """True if the step is element-wise on its run-time operands, per channel (last axis)
    at most, so that its result at a position depends only on the operands there and on the
    channel (its runner is declared `elementwise`, or it is a PRELU with a per-channel
    constant alpha)."""
    if len(s.outputs) != 1:
        return False
    if s.kernel == "prelu_i8":
        return len(s.inputs) == 1 and _per_channel_constant(s.params.get("alpha"), c)
    kind = reg.ELEMENTWISE.get(s.kernel)
    if kind == "unary":
        return len(s.inputs) == 1
    if kind != "binary":
        return False
    if s.kernel == "mul_i8" and "kq" in s.params:
        return len(s.inputs) == 1 and _per_channel_constant(s.params["kq"], c)
    return len(s.inputs) == 2


_AFFINE_ALONE = frozenset({"prelu_i8", "relu_i8", "leaky_relu_i8", "mul_i8"})
"""Kernels that, alone (not in a chain), become `affine_chan_i8` when their table is two
rounded lines per channel: each is a rescale on either side of the zero point (PRELU with a
per-channel constant alpha, RELU with a rescale, LEAKY_RELU, MUL by a constant), and the
two-line kernel is faster than their own (scalar integer MBQM, a table lookup, a float32
estimate)."""


def _step_readers(steps: list[Step]) -> dict[int, list[int]]:
    """slot -> the indices of the steps that read it, in order."""
    readers: dict[int, list[int]] = {}
    for i, s in enumerate(steps):
        for j in s.inputs:
            readers.setdefault(j, []).append(i)
    return readers


def _fuse_lut_chains(steps: list[Step], slot_types: dict, output_slots: list[int]) -> list[Step]:
    """Fuse each chain of >= 2 element-wise int8 steps whose only run-time operand is one
    tensor x, and whose intermediate results have no other reader, into one `lut_chan_i8`
    step: a per-channel table built by running the chain's own runners on every (channel,
    stored value) pair, so the fused step computes exactly what the chain computes (e.g. a
    decomposed PRELU: max(x, mul(x, alpha)), or relu / sub / mul / add); `_chan_step`
    picks the fused step's kernel. A lone step of `_AFFINE_ALONE` is tabulated too, and
    replaced only when `affine_chan_i8` reproduces it."""
    runners = reg.RUNNERS
    if "lut_chan_i8" not in runners:
        return steps
    readers = _step_readers(steps)
    outs_set = set(output_slots)
    taken: set[int] = set()
    replace: dict[int, Step] = {}
    shapes: dict[int, tuple[int, ...] | None] = {}  # a slot's int8 shape, read once

    def int8_shape_of(j: int) -> tuple[int, ...] | None:
        if j not in shapes:
            shapes[j] = _int8_shape(slot_types[j]) if j in slot_types else None
        return shapes[j]

    for i, s in enumerate(steps):
        if i in taken or len(set(s.inputs)) != 1:
            continue
        x = s.inputs[0]
        shape = int8_shape_of(x)
        if shape is None:
            continue
        c = shape[-1]
        if not _lut_fusible(s, c):
            continue

        def same(j: int) -> bool:
            return int8_shape_of(j) == shape

        if not same(s.outputs[0]):
            continue
        group = [i]
        inside = {s.outputs[0]}
        for j in range(i + 1, len(steps)):
            t = steps[j]
            if j in taken or not _lut_fusible(t, c) or not same(t.outputs[0]):
                continue
            if all(k == x or k in inside for k in t.inputs) and any(k in inside for k in t.inputs):
                group.append(j)
                inside.add(t.outputs[0])
        chosen = None
        smallest = 1 if s.kernel in _AFFINE_ALONE else 2
        for n in range(len(group), smallest - 1, -1):
            g = group[:n]
            gset = set(g)
            produced = [steps[k].outputs[0] for k in g]
            escaped = [o for o in produced
                       if o in outs_set or any(r not in gset for r in readers.get(o, ()))]
            if len(escaped) != 1:
                continue
            o = escaped[0]
            if any(r not in gset and r <= g[-1] for r in readers.get(o, ())):
                continue
            chosen = (g, o)
            break
        if chosen is None:
            continue
        g, o = chosen
        chain = [steps[k] for k in g]
        lut = _tabulate_chain(chain, x, o, shape, runners)
        if lut is None:
            continue
        label = " + ".join(steps[k].label for k in g)
        fused = _chan_step(chain, x, o, lut, int(c), slot_types.get(x), runners, label)
        if len(g) == 1 and fused.kernel != "affine_chan_i8":
            continue  # a lone step is replaced only by the two-line form
        taken.update(g)
        replace[g[-1]] = fused
    if not replace:
        return steps
    return [replace[i] if i in replace else s for i, s in enumerate(steps)
            if i in replace or i not in taken]


_PAD_FOLDABLE = {"conv2d_i8": ("geom", 6), "depthwise_conv2d_i8": ("geom", 4)}
"""The steps an explicit spatial PAD folds into: the params array holding (pad top, pad left)
at that index (`lower_conv2d`, `lower_depthwise_conv2d`)."""


def _fold_pads(steps: list[Step], slot_types: dict, output_slots: list[int]) -> list[Step]:
    """Fold each int8 PAD of the spatial axes (H, W of NHWC), filled with the zero point of
    its readers, into the convolutions that read it (CONV_2D, DEPTHWISE_CONV_2D; the
    TF-style explicit padding before a VALID convolution that MediaPipe's detectors carry):
    a padded tap holds x = zp_in, which adds w·(x − zp_in) = 0 to the sum, exactly as a tap
    outside the image, which the kernels skip. So the convolution reads the unpadded tensor
    with its top and left padding grown by the PAD's (its output, and so the bottom and
    right extent, unchanged), and the PAD step, a copy of the whole tensor, goes when every
    reader took it."""
    readers = _step_readers(steps)
    outs = set(output_slots)
    dropped: set[int] = set()
    replaced: dict[int, Step] = {}
    for i, pad in enumerate(steps):
        if pad.kernel != "pad_i8" or pad.params.get("fill_from_input") or len(pad.inputs) != 1:
            continue
        y = pad.outputs[0]
        x_shape = _int8_shape(slot_types.get(pad.inputs[0]))
        before = [int(v) for v in pad.params["before"]]
        out_shape = [int(v) for v in pad.params["out_shape"]]
        if (y in outs or x_shape is None or len(x_shape) != 4 or len(before) != 4
                or before[0] != 0 or before[3] != 0 or out_shape[0] != x_shape[0]
                or out_shape[3] != x_shape[3] or min(before) < 0
                or any(o < xs + b for o, xs, b in zip(out_shape, x_shape, before))):
            continue
        users = readers.get(y, [])
        if not users or any(
                steps[k].kernel not in _PAD_FOLDABLE or steps[k].inputs[0] != y
                or y in steps[k].inputs[1:]
                or int(steps[k].params["zp_in"]) != int(pad.params["fill"]) for k in users):
            continue
        for k in users:
            conv = replaced.get(k, steps[k])
            params = dict(conv.params)
            key, at = _PAD_FOLDABLE[conv.kernel]
            grown = np.array(params[key], np.int64)
            grown[at:at + 2] += before[1:3]
            params[key] = grown
            if conv.kernel == "conv2d_i8":  # the padded extent's origin; no longer pointwise
                params["pad"] = np.array(params["pad"], np.int64)
                params["pad"][:2] = grown[6:8]
                params["pointwise"] = False
            elif "dwg" in params:  # the ring's geometry repeats (pad top, pad left)
                params["dwg"] = np.array(params["dwg"], np.int64)
                params["dwg"][4:6] = grown[4:6]
            replaced[k] = Step(conv.kernel, (pad.inputs[0], *conv.inputs[1:]), conv.outputs,
                               params, conv.free, conv.label + " (+ " + pad.label + ")")
        dropped.add(i)
    if not dropped:
        return steps
    return [replaced.get(i, s) for i, s in enumerate(steps) if i not in dropped]


def _chan_step(chain: list[Step], x: int, o: int, lut: np.ndarray, c: int, x_type, runners,
               label: str) -> Step:
    """The fused step of a tabulated per-channel chain, fastest form first: `affine_chan_i8`
    (two rounded lines per channel, split at x's zero point: `affine_chan_params`), the
    float32 `prelu_chan_i8` (`_prelu_form`), else the table lookup `lut_chan_i8`. Each
    form is taken only if it reproduces `lut` on every (channel, stored value) pair."""
    zp = _zero_point(x_type)
    if "affine_chan_i8" in runners and zp is not None:
        affine = affine_chan_params(lut, c, zp)
        if affine is not None:
            return Step("affine_chan_i8", (x,), (o,), affine, (), label)
    prelu = _prelu_form(chain, x, o, lut, c, runners)
    if prelu is not None:
        return Step("prelu_chan_i8", (x,), (o,), prelu, (), label)
    return Step("lut_chan_i8", (x,), (o,), {"lut": lut, "c": c}, (), label)


def _zero_point(t) -> int | None:
    """The zero point of a per-tensor quantized tensor type, else None."""
    get = getattr(t, "get_element_type", None)
    elt = get() if get is not None else None
    return int(elt.zero_point) if isinstance(elt, UniformQuantizedType) else None


def _prelu_form(chain: list[Step], x: int, o: int, lut: np.ndarray, c: int, runners) -> dict | None:
    """The `prelu_chan_i8` params of a chain MUL(x, per-channel constant) -> MAXIMUM(x, ·)
    (decompose-prelu's form), or None. That kernel computes in float32 with a plain rounding,
    so it is accepted only if it reproduces the chain's table `lut` on every (channel, stored
    value) pair: then it equals the chain on every input."""
    if "prelu_chan_i8" not in runners or len(chain) != 2:
        return None
    mul, mx = chain
    if (mul.kernel != "mul_i8" or mul.inputs != (x,) or "ec" not in mul.params
            or mx.kernel != "maximum_i8" or sorted(mx.inputs) != sorted((x, mul.outputs[0]))
            or mx.outputs != (o,)):
        return None
    ec = np.asarray(mul.params["ec"], np.float32).reshape(-1)
    if ec.size == 1:
        ec = np.full(c, ec[0], np.float32)
    if ec.size != c:
        return None
    params = {"ec": np.ascontiguousarray(ec), "zx": int(mul.params["zp1"]),
              "off": float(mul.params["off"]),
              "zt": int(mul.params["zp_out"]), "lo": int(mul.params["lo"]),
              "hi": int(mul.params["hi"])}
    probe = np.ascontiguousarray(
        np.broadcast_to(np.arange(-128, 128, dtype=np.int16).astype(np.int8)[:, None], (256, c)))
    got = runners["prelu_chan_i8"]([probe], params)[0]
    if not np.array_equal(got.T.reshape(-1), lut):
        return None
    return params


def _tabulate_chain(chain: list[Step], x: int, o: int, shape, runners) -> np.ndarray | None:
    """lut[k·256 + v + 128] = the chain's result for stored value v in channel k."""
    c = shape[-1]
    p = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    if p == 0 or c == 0:
        return None
    lut = np.empty((c, 256), np.int8)
    runs = -(-256 // p)
    for r in range(runs):
        vals = (np.arange(p) + r * p) % 256
        probe = np.ascontiguousarray(
            np.broadcast_to((vals - 128).astype(np.int8)[:, None], (p, c))).reshape(shape)
        env = {x: probe}
        for s in chain:
            res = runners[s.kernel]([env[j] for j in s.inputs], s.params)
            env[s.outputs[0]] = np.asarray(res[0])
        y = env[o]
        if y.shape != tuple(shape) or y.dtype != np.int8:
            return None
        lut[:, vals] = y.reshape(p, c).T
    return np.ascontiguousarray(lut.reshape(-1))


def build_plan(
    module_or_func: Operation, *, fuse: bool = True, slots_out: dict | None = None
) -> Plan:
    """Lower `func.func @main` of a (quantized) module to a Plan. With `fuse=False`, no
    element-wise chains are fused: every op (but constants) is one step, in block order.
    `slots_out`, if given, receives every value's slot ({SSAValue: int}), e.g. to read a
    value in an observer (`qcc.sensitivity` measures each op's error this way)."""
    reg.load_int8_families()
    func: FuncOp = find_main(module_or_func)
    block = func.body.block
    ret = block.last_op
    if not isinstance(ret, ReturnOp):
        raise QccError("the function body does not end in func.return")

    slots: dict[SSAValue, int] = {}
    n_slots = 0

    def new_slot(v: SSAValue) -> int:
        nonlocal n_slots
        slots[v] = n_slots
        n_slots += 1
        return slots[v]

    for arg in block.args:
        new_slot(arg)

    const_ops: dict[SSAValue, Operation] = {}
    raw_steps: list[tuple[str, list[SSAValue], list[SSAValue], dict, str]] = []
    for op in block.ops:
        if op is ret:
            continue
        if isinstance(op, nn.ConstantOp):
            const_ops[op.results[0]] = op
            continue
        if isinstance(op, quant.StatsOp):
            slots[op.results[0]] = None  # type: ignore[assignment]  (alias, resolved below)
            raw_steps.append(("__alias__", [op.operands[0]], [op.results[0]], {}, ""))
            continue
        label = (location_text(op.location) or "") + f" [{op.name}]"
        if op_is_quantized(op):
            kernel, params, indices = _lower(op)
            ins = [op.operands[i] for i in indices]
        else:
            kernel, params = CALLABLE_KERNEL, {"fn": _float_step(op)}
            ins = list(op.operands)
        raw_steps.append((kernel, ins, list(op.results), params, label))

    # Resolve aliases and assign slots to constants read at run time.
    alias: dict[SSAValue, SSAValue] = {}

    def root(v: SSAValue) -> SSAValue:
        while v in alias:
            v = alias[v]
        return v

    constants: dict[int, np.ndarray] = {}

    def slot_of(v: SSAValue) -> int:
        v = root(v)
        if v in slots and slots[v] is not None:
            return slots[v]
        if v in const_ops:
            s = new_slot(v)
            arr = decode_dense(const_ops[v].value)  # type: ignore[attr-defined]
            want = element_dtype(v.type.get_element_type())  # type: ignore[attr-defined]
            if want is not None and arr.dtype != want and arr.dtype.kind == want.kind:
                arr = arr.astype(want)
            constants[s] = np.ascontiguousarray(arr)
            return s
        raise QccError(f"value {v} is used before it is defined")

    steps: list[Step] = []
    slot_types: dict[int, Any] = {}
    for kernel, ins, outs, params, label in raw_steps:
        if kernel == "__alias__":
            alias[outs[0]] = ins[0]
            slots.pop(outs[0], None)
            continue
        in_slots = tuple(slot_of(v) for v in ins)
        out_slots = tuple(new_slot(v) for v in outs)
        for j, v in zip(in_slots + out_slots, list(ins) + list(outs)):
            if j not in slot_types:
                slot_types[j] = v.type
        steps.append(Step(kernel, in_slots, out_slots, params, (), label))
    output_slots = [slot_of(v) for v in ret.operands]
    if fuse:
        steps = _fold_pads(steps, slot_types, output_slots)
        steps = _fuse_lut_chains(steps, slot_types, output_slots)
    if slots_out is not None:
        slots_out.update({v: s for v, s in slots.items() if s is not None})
        slots_out.update({v: slot_of(v) for v in alias})

    # Liveness: free a slot after its last reader (never inputs' callers arrays matter: they
    # are only dropped from the environment, not modified), never outputs or constants.
    keep = set(output_slots) | set(constants)
    last: dict[int, int] = {}
    for i, s in enumerate(steps):
        for j in s.inputs:
            last[j] = i
    for i, s in enumerate(steps):
        dead = {j for j in s.inputs if last.get(j) == i and j not in keep}
        dead |= {j for j in s.outputs if j not in last and j not in keep}
        s.free = tuple(sorted(dead))

    names_in = _names(func.arg_attrs, len(block.args), "input_")
    names_out = _names(func.res_attrs, len(ret.operands), "output_")
    return Plan(
        steps=steps,
        n_slots=n_slots,
        constants=constants,
        input_slots=[slots[a] for a in block.args],
        output_slots=output_slots,
        input_specs=[_spec(a.type) for a in block.args],
        output_specs=[_spec(v.type) for v in ret.operands],
        input_names=names_in,
        output_names=names_out,
    )


def _names(attrs, count: int, prefix: str) -> list[str]:
    from qcc.signature import names as api_names

    return api_names(attrs, count, prefix)


class CompiledModel:
    """A quantized module compiled to a plan of Numba kernels."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._runner = PlanRunner(plan, reg.RUNNERS, reg.NumbaParallelCompile())

    @property
    def has_float_islands(self) -> bool:
        return any(s.kernel == CALLABLE_KERNEL for s in self.plan.steps)

    def run(self, inputs, observer=None) -> list[np.ndarray]:
        """Run on a list of arrays (one per input, in input order). `observer(step, results)`
        is called after every step (`step.label` names the op and its location)."""
        try:
            return self._runner.run(inputs, observer)
        except plan_mod.PlanInputError as e:
            from qcc.runtime.errors import InputMismatchError

            raise InputMismatchError(str(e)) from None

    __call__ = run

    def save(self, directory: str | os.PathLike[str]) -> None:
        write_artifact(self, directory)


def compile_module(module: Operation) -> CompiledModel:
    """Compile `func.func @main` of a quantized module (or the func) to a CompiledModel.

    Nothing compiles here but the kernels of fused element-wise chains (their tables are
    tabulated by running them): the plan's kernels compile on its first run, exactly those it
    calls, with helper processes compiling some of them alongside when the cache is empty
    (`int8_registry.NumbaParallelCompile`); the plan records each slot's static shape and dtype
    (`Plan.slot_specs`) so that a helper can run a step alone."""
    slots: dict = {}
    plan = build_plan(module, slots_out=slots)
    specs: dict[int, tuple[tuple[int, ...], str]] = {}
    for v, slot in slots.items():
        try:
            shape, dtype = _spec(v.type)
        except Exception:  # not a tensor of a storage type numpy has
            continue
        if all(d >= 0 for d in shape):
            specs[slot] = (shape, dtype)
    plan.slot_specs = specs
    return CompiledModel(plan)


# ---------------------------------------------------------------------------------------------
# The self-contained artifact: DIR/model.py + DIR/kernels.py.xz + DIR/weights.npz

_PKG_PREFIXES = ("qcc", "xdsl")
ARTIFACT_KERNELS = "kernels.py.xz"
"""The artifact's kernels: the xz-compressed source of the module model.py extracts (as
kernels.py) and imports."""

_ARTIFACT_HEADER = '''"""qcc Numba artifact: the int8 plan of {source} (generated by qcc; do not edit).

Needs only numpy and numba:

    import model                      # this file, next to kernels.py.xz and weights.npz
    m = model.load()                  # or model.load("path/to/weights.npz")
    outputs = m.run([x])              # list of numpy arrays, one per model output
    outputs = model.run([x])          # same, with the plan loaded once

Inputs: {inputs}
Outputs: {outputs}

The folder: this file (the entry point), kernels.py.xz (the kernels, the plan runner and the
kernel registry: xz-compressed Python source) and weights.npz (the plan: its steps, and its
arrays packed per dtype; deflated entries, which numpy.load reads). Importing this
file extracts kernels.py.xz to a real kernels.py (Numba caches compiled code only for the
functions of a source file), checked against the sha256 recorded below, into the first
writable of $NUMBA_CACHE_DIR/qcc-kernels-<sha>/ (when set), __pycache__/qcc-kernels-<sha>/
beside this file and $XDG_CACHE_HOME (or ~/.cache)/qcc/qcc-kernels-<sha>/, and imports it;
later imports check the extracted file and write it again if it changed. Nothing else is
written into this folder: it may be read-only.

First run: Numba compiles the kernels this plan uses when they are first called (only the
kernel variants its layers use; a progress line on stderr when it is a terminal) and keeps
them in its on-disk cache (NUMBA_CACHE_DIR if set, else __pycache__ beside the extracted
kernels.py). With an empty cache, forked helper processes compile kernels alongside
(QCC_COMPILE_WORKERS=N sets how many, 0 none), and the cheap steps (QUANTIZE, ADD, MUL,
pools, MEAN, FULLY_CONNECTED, table lookups, PRELU, RESIZE_BILINEAR) run exact NumPy forms
while a helper compiles their kernels: the first result comes once the convolutions' kernels
are compiled (typically 2.9-3.7 s from launch for a MediaPipe-sized model on a 2-core AMD
Zen 3; 6.5-8.5 s on one core with no helper), the helper goes on after it, and the second
`run` (or the interpreter's exit) completes its work, ~1-1.5 s more. A later process with
the same cache gets its first result in 0.5-0.7 s on that Zen 3 (import, load, first run;
the interpreter's exit takes ~0.15 s more). Artifacts with the same kernels share the
extracted file and that cache (under NUMBA_CACHE_DIR or ~/.cache).
{carried}"""

from __future__ import annotations

import sys as _qcc_sys

_QCC_KERNELS_SHA256 = {kernels_sha256!r}
"""sha256 of kernels.py (kernels.py.xz decompressed): the import checks the extracted file, and
the carried cache (if any) was built for exactly these kernels."""
'''

_ARTIFACT_CARRIED_DOC = '''
This artifact carries that cache compiled for the CPU baseline {name} ({folder}/, for
numba {numba} on CPython {python}). Importing this file on a CPU that has {name}
({features}) sets NUMBA_CPU_NAME={cpu} and the matching NUMBA_CPU_FEATURES (before numba
is imported; they stay set for the whole process and its children) and copies the carried
cache into Numba's cache for the extracted kernels.py: the first run then loads the kernels
instead of compiling them (0.6-0.8 s on that Zen 3). The baseline's kernels are portable ones: a host with
more (e.g. AVX-512 VNNI) runs faster kernels compiled for itself. Numba compiles for the host,
as above, when the CPU lacks {name}, with another numba or Python, when numba was imported
before this file with another CPU target, or with QCC_ARTIFACT_CACHE=host in the environment.
'''

_ARTIFACT_PRELUDE = '''
# ---------------------------------------------------------------------------------------------
# the carried Numba cache (see the docstring): decided before numba is imported

_QCC_BASELINE = {baseline!r}
"""The CPU baseline the carried cache was compiled for (folder, Numba CPU name and feature
string), or None: this artifact carries no cache."""


def _qcc_carried_cache():
    """The carried cache folder when Numba compiles for its baseline in this process (set up
    here, before numba is imported, when the host has the baseline), else None."""
    import hashlib
    import json
    import os

    b = _QCC_BASELINE
    if b is None or os.environ.get("QCC_ARTIFACT_CACHE", "").strip().lower() in (
            "0", "no", "off", "false", "host"):
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(here, b["folder"])
    try:
        with open(os.path.join(folder, "cache.json"), encoding="utf-8") as f:
            info = json.load(f)
        with open(os.path.abspath(__file__), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except (OSError, ValueError):
        return None
    python = "py%d%d%s" % (_qcc_sys.version_info[0], _qcc_sys.version_info[1],
                           getattr(_qcc_sys, "abiflags", ""))
    if not isinstance(info, dict) or any(info.get(k) != v for k, v in (
            ("model_sha256", digest), ("kernels_sha256", _QCC_KERNELS_SHA256),
            ("python", python), ("cpu", b["cpu"]), ("features", b["features"]),
            ("arch", b["arch"]))):
        return None
    wanted = (b["cpu"], b["features"])
    if "numba" in _qcc_sys.modules:
        # too late to choose Numba's target: usable only if it is the baseline already
        config = _qcc_sys.modules.get("numba.core.config")
        ok = config is not None and (config.CPU_NAME, config.CPU_FEATURES) == wanted
        version = getattr(_qcc_sys.modules["numba"], "__version__", None)
        return folder if ok and version == info.get("numba") else None
    given = (os.environ.get("NUMBA_CPU_NAME"), os.environ.get("NUMBA_CPU_FEATURES"))
    pinned = False
    if given != (None, None):
        if given != wanted:
            return None  # the user chose Numba's target
    else:
        try:
            import llvmlite.binding as llb

            arch = llb.get_process_triple().split("-", 1)[0]
            host = llb.get_host_cpu_features()
        except Exception:
            return None
        needed = [f[1:] for f in b["features"].split(",") if f.startswith("+")]
        if arch != b["arch"] or not all(host.get(f) for f in needed):
            return None
        os.environ["NUMBA_CPU_NAME"], os.environ["NUMBA_CPU_FEATURES"] = wanted
        pinned = True
    import numba

    if numba.__version__ != info.get("numba"):
        if pinned:  # the cache is of no use with this numba: compile for the host after all
            del os.environ["NUMBA_CPU_NAME"], os.environ["NUMBA_CPU_FEATURES"]
            numba.core.config.reload_config()
        return None
    return folder


_QCC_CARRIED = _qcc_carried_cache()
'''

_ARTIFACT_NO_CACHE = '''
_QCC_CARRIED = None
"""This artifact carries no Numba cache (written without a CPU baseline): Numba compiles the
kernels for the host on the first run."""
'''

_ARTIFACT_KERNEL_IMPORT = '''
# ---------------------------------------------------------------------------------------------
# the kernels: kernels.py.xz, extracted to a real source file and imported (see the docstring)

import os as _qcc_os

_QCC_HERE = _qcc_os.path.dirname(_qcc_os.path.abspath(__file__))
_QCC_MTIME = 1_000_000_000
"""The extracted kernels.py's mtime (2001-09-09), the same wherever and whenever it is written:
Numba stamps its cache with the source's (mtime, size), so another process writing the same
bytes again (two first imports at once) leaves that cache valid."""


def _qcc_kernel_folders():
    """Where kernels.py may be extracted, in order (see the docstring): a folder named by the
    kernels' sha256 in each, so that artifacts with other kernels never clash."""
    name = "qcc-kernels-" + _QCC_KERNELS_SHA256[:16]
    roots = []
    if _qcc_os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(_qcc_os.environ["NUMBA_CACHE_DIR"])
    roots.append(_qcc_os.path.join(_QCC_HERE, "__pycache__"))
    user = _qcc_os.environ.get("XDG_CACHE_HOME", "")
    if not _qcc_os.path.isabs(user):  # unset or relative: ignored, as the XDG spec says
        home = _qcc_os.path.expanduser("~")
        user = _qcc_os.path.join(home, ".cache") if _qcc_os.path.isabs(home) else ""
    if user:
        roots.append(_qcc_os.path.join(user, "qcc"))
    return [_qcc_os.path.join(_qcc_os.path.abspath(root), name) for root in roots]


def _qcc_unpack():
    """kernels.py's bytes: kernels.py.xz beside this file decompressed, checked against
    _QCC_KERNELS_SHA256."""
    import hashlib

    path = _qcc_os.path.join(_QCC_HERE, "kernels.py.xz")
    try:
        import lzma
    except ImportError:
        raise ImportError(f"{path}: this Python has no lzma module (built without liblzma); "
                          "the artifact needs it") from None
    try:
        with open(path, "rb") as f:
            data = lzma.decompress(f.read())
    except (OSError, lzma.LZMAError) as e:
        raise ImportError(f"{path}: cannot read the artifact's kernels "
                          f"({getattr(e, 'strerror', None) or e}); write the artifact again "
                          "with qcc") from None
    if hashlib.sha256(data).hexdigest() != _QCC_KERNELS_SHA256:
        raise ImportError(f"{path}: not the kernels this model.py was written with (another "
                          "sha256); write the artifact again with qcc")
    return data


def _qcc_extract(folder, path, data):
    """Write `data` to `path` in `folder` atomically (`_qcc_write_atomic`), with the mtime
    _QCC_MTIME where the file system allows it; raises OSError if the folder cannot be
    written. (A copy cut short by a crash fails the next import's check: written again.)"""
    _qcc_os.makedirs(folder, exist_ok=True)
    _qcc_write_atomic(path, data, _QCC_MTIME)


def _qcc_write_atomic(path, data, mtime=None):
    """Write the bytes `data` to `path` through a temporary file renamed over it (never a
    half-written file), with the given mtime where the file system allows it."""
    tmp = "%s.tmp.qcc%d" % (path, _qcc_os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        if mtime is not None:
            try:
                _qcc_os.utime(tmp, (mtime, mtime))
            except OSError:  # only costs a recompile when two processes extract at once
                pass
        _qcc_os.replace(tmp, path)
    except BaseException:
        try:
            _qcc_os.unlink(tmp)
        except OSError:
            pass
        raise


def _qcc_import_kernels():
    """The kernels module: kernels.py in the first folder of `_qcc_kernel_folders` that holds
    it intact (its sha256 checked) or can be written (extracted there), imported from the
    checked bytes as _qcc_kernels_<sha> (one module per process for every artifact with
    these kernels; Python may keep its bytecode in __pycache__ beside it)."""
    import hashlib
    import importlib.machinery
    import importlib.util

    name = "_qcc_kernels_" + _QCC_KERNELS_SHA256[:16]
    if name in _qcc_sys.modules:
        return _qcc_sys.modules[name]
    source = unpacked = None
    tried = []
    for folder in _qcc_kernel_folders():
        path = _qcc_os.path.join(folder, "kernels.py")
        try:
            with open(path, "rb") as f:
                found = f.read()
        except OSError:
            found = None
        if found is not None and hashlib.sha256(found).hexdigest() == _QCC_KERNELS_SHA256:
            source = found
            break
        if unpacked is None:
            unpacked = _qcc_unpack()
        try:
            _qcc_extract(folder, path, unpacked)
        except OSError as e:
            tried.append("%s (%s)" % (folder, e.strerror or e))
            continue
        source = unpacked
        break
    if source is None:
        raise ImportError("cannot extract the artifact's kernels.py: no writable folder ("
                          + "; ".join(tried) + "); set NUMBA_CACHE_DIR to a writable folder")

    class Loader(importlib.machinery.SourceFileLoader):
        def get_data(self, p):  # the source is the checked bytes, not a second read
            return source if p == path else super().get_data(p)

    loader = Loader(name, path)
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location(name, path, loader=loader))
    _qcc_sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del _qcc_sys.modules[name]
        raise
    return module


def _qcc_import_kernels_gc_paused():
    """`_qcc_import_kernels` with Python's cyclic garbage collector off (as it was after):
    importing Numba and the kernels makes ~10^5 objects, which its collections would scan
    again and again."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        return _qcc_import_kernels()
    finally:
        if was:
            gc.enable()


kernels = _qcc_import_kernels_gc_paused()
"""The kernels module (the extracted kernels.py): the plan runner, RUNNERS, the kernels."""
'''

_ARTIFACT_SEED = '''

# ---------------------------------------------------------------------------------------------
# the carried Numba cache, copied where Numba looks for the kernels' cache


def _qcc_seed_cache():
    """Copy the entries of the carried cache that Numba's cache for the kernels lacks into it
    (where Numba looks: NUMBA_CACHE_DIR, or __pycache__ beside the extracted kernels.py), with
    that file's source stamp, so that the first run loads them; never fails (then the kernels
    compile as usual)."""
    import pickle

    import numba

    try:
        from numba.core.serialize import dumps

        cache = None
        for v in list(vars(kernels).values()):
            c = getattr(v, "_cache", None)
            if (getattr(getattr(v, "py_func", None), "__module__", None) == kernels.__name__
                    and hasattr(c, "_cache_file") and hasattr(c, "_cache_path")):
                cache = c
                break
        if cache is None:
            return
        target = cache._cache_path
        stamp = cache._cache_file._source_stamp
        _qcc_os.makedirs(target, exist_ok=True)
        version = numba.__version__

        def read(path):
            with open(path, "rb") as f:
                found = pickle.load(f)
                if found != version:
                    return None, {}
                return pickle.loads(f.read())

        for name in sorted(_qcc_os.listdir(_QCC_CARRIED)):
            if not name.endswith(".nbi"):
                continue
            carried_stamp, carried = read(_qcc_os.path.join(_QCC_CARRIED, name))
            if not carried:
                continue
            index = _qcc_os.path.join(target, name)
            try:
                have_stamp, have = read(index)
                if have_stamp != stamp:
                    have = {}
            except Exception:  # absent or unreadable: Numba would start it afresh too
                have = {}
            missing = [k for k in carried if k not in have]
            if not missing:
                continue
            have = dict(have)
            used = set(have.values())
            base = name[:-len(".nbi")]
            number = 1
            for key in missing:
                while "%s.%d.nbc" % (base, number) in used:
                    number += 1
                data_name = "%s.%d.nbc" % (base, number)
                with open(_qcc_os.path.join(_QCC_CARRIED, carried[key]), "rb") as f:
                    data = f.read()
                _qcc_write_atomic(_qcc_os.path.join(target, data_name), data)
                have[key] = data_name
                used.add(data_name)
            _qcc_write_atomic(index, pickle.dumps(version, protocol=-1) + dumps((stamp, have)))
    except Exception:  # a cache that cannot be seeded only costs the compile
        return


if _QCC_CARRIED is not None:
    _qcc_seed_cache()
'''

_ARTIFACT_FOOTER = '''

# ---------------------------------------------------------------------------------------------
# entry points

_QCC_DEFAULT_WEIGHTS = _qcc_os.path.join(_QCC_HERE, "weights.npz")


class CompiledArtifact:
    def __init__(self, plan):
        self.plan = plan
        self._runner = kernels.PlanRunner(plan, kernels.RUNNERS, kernels.NumbaParallelCompile())

    def run(self, inputs):
        return self._runner.run(inputs)

    __call__ = run


def load(path=None):
    """Load the plan (weights.npz next to this file by default)."""
    import numpy as _np

    with _np.load(path or _QCC_DEFAULT_WEIGHTS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return CompiledArtifact(kernels.plan_from_arrays(arrays))


_qcc_loaded = None


def run(inputs):
    """Run the model on a list of numpy arrays; returns a list of arrays."""
    global _qcc_loaded
    if _qcc_loaded is None:
        _qcc_loaded = load()
    return _qcc_loaded.run(inputs)
'''

_KERNELS_HEADER = '''# qcc Numba artifact: the kernels of its model.py, which extracts this file from kernels.py.xz
# and imports it (generated by qcc; do not edit): fixedpoint, the plan runner, the kernel
# registry and the int8 kernel families qcc inlines, without their docstrings.

from __future__ import annotations

import sys as _qcc_sys

_qcc_this = _qcc_sys.modules[__name__]
'''


def _artifact_modules(kernels: set[str] | None = None) -> list[Any]:
    """The modules model.py inlines, in `INT8_FAMILIES` order: fixedpoint, plan, the
    registry, and the kernel families — all of them, or with `kernels` (the plan's kernel
    names) only those defining one of its runners and the families they import."""
    import importlib

    from qcc.runtime import fixedpoint

    reg.load_int8_families()
    families = [importlib.import_module(f"qcc.runtime.kernels.{f}") for f in reg.INT8_FAMILIES
                if f"qcc.runtime.kernels.{f}" in sys.modules]
    if kernels is not None:
        by_name = {m.__name__: m for m in families}
        wanted = {reg.RUNNERS[k].__module__ for k in kernels if k in reg.RUNNERS}
        wanted.add("qcc.runtime.kernels.simd")  # fixedpoint's jitted code uses its intrinsics
        todo = list(wanted)
        while todo:  # the families they import (relative imports inside the package)
            tree = ast.parse(inspect.getsource(by_name[todo.pop()]))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                    dep = f"qcc.runtime.kernels.{node.module}"
                    if dep in by_name and dep not in wanted:
                        wanted.add(dep)
                        todo.append(dep)
        families = [m for m in families if m.__name__ in wanted]
    return [fixedpoint, plan_mod, reg, *families]


def _lowering_decorators() -> tuple:
    return (int8_lowering, int16_lowering)


def _strip_module(source: str, module_name: str, inlined: set[str]) -> tuple[str, set[str]]:
    """Drop imports of qcc/xdsl and relative imports, `__future__` imports and
    `@int8_lowering` functions; module aliases of inlined modules become the artifact module
    itself.
    Returns (source, top-level names defined)."""
    tree = ast.parse(source)
    module = sys.modules.get(module_name)  # its `@int8_lowering` decorator, by identity
    _LOWERING_DECORATORS = _lowering_decorators()  # noqa: N806
    body = []
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.module == "__future__":
                continue
            if node.level > 0 or mod.split(".")[0] in _PKG_PREFIXES:
                # `from .. import fixedpoint as fp` -> fp = this module
                for a in node.names:
                    target = f"{mod}.{a.name}" if mod else a.name
                    if target.split(".")[-1] in inlined and a.name in inlined:
                        alias = a.asname or a.name
                        body.append(ast.parse(f"{alias} = _qcc_this").body[0])
                continue
        if isinstance(node, ast.Import):
            if any(a.name.split(".")[0] in _PKG_PREFIXES for a in node.names):
                continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decos = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(isinstance(d, ast.Name) and getattr(module, d.id, None) in _LOWERING_DECORATORS
                   for d in decos):
                continue
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
        body.append(node)
    tree.body = body
    _drop_docstrings(tree)  # the artifact is code; qcc's sources document it
    return f"# ---- {module_name} ----\n" + ast.unparse(tree) + "\n", names


def _drop_docstrings(tree: ast.AST) -> None:
    """Remove the docstring of every module, class and function in `tree` (a body left empty
    gets `pass`): they are a third of the kernels' source, and the artifact's model.py
    carries that source."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]


class ArtifactSource(NamedTuple):
    """The artifact's two Python sources (`artifact_source`)."""

    model: str
    """model.py: the header docstring, the carried-cache prelude (with a carried cache; else
    only `_QCC_CARRIED = None`), the import of the kernels (extracted from kernels.py.xz,
    checked against the sha256 it records), the seeding of the carried cache (with one) and
    the entry points."""
    kernels: str
    """kernels.py (written compressed, as kernels.py.xz): fixedpoint, plan, the registry and
    the int8 families inlined."""


def kernel_source(kernels: set[str] | None = None) -> str:
    """The artifact's kernels.py: fixedpoint, plan, the registry and the int8 families
    inlined, without docstrings; with `kernels` (a plan's kernel names) only the families
    its runners need, and of them only the definitions something reachable uses (the
    runners, and what model.py takes from the module). The text depends on the kernel set
    only, not on the model: artifacts with the same kernels share its extracted copy and
    Numba cache."""
    mods = _artifact_modules(kernels)
    inlined = {m.__name__.rsplit(".", 1)[-1] for m in mods}
    seen: dict[str, str] = {}
    shared_ok = {"annotations", "np", "njit"}
    texts = []
    for m in mods:
        text, names = _strip_module(inspect.getsource(m), m.__name__, inlined)
        for n in names:
            if n in seen and n not in shared_ok and not n.startswith("__"):
                raise QccError(
                    f"artifact: top-level name {n!r} is defined in both {seen[n]} and "
                    f"{m.__name__}; rename one (see int8_registry's rules)"
                )
            seen.setdefault(n, m.__name__)
        texts.append(text)
    if kernels is not None:
        texts = _shake(texts, kernels, _kernels_used_by_model() | _source_names(_KERNELS_HEADER))
    return "\n".join([_KERNELS_HEADER, *texts])


def _source_names(text: str) -> set[str]:
    """The names a piece of Python source reads or binds."""
    return {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)}


def _kernels_used_by_model() -> set[str]:
    """What model.py takes from its kernels module (`kernels.X`): roots of the tree shaking."""
    tree = ast.parse(_ARTIFACT_KERNEL_IMPORT + _ARTIFACT_SEED + _ARTIFACT_FOOTER)
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "kernels"}


def artifact_source(source_label: str = "a model", inputs: str = "", outputs: str = "",
                    cache_baseline: str | None = None,
                    kernels: set[str] | None = None) -> ArtifactSource:
    """The generated model.py and kernels.py (`kernel_source(kernels)`; model.py records its
    sha256). `source_label`, `inputs` and `outputs` go into model.py's docstring;
    `cache_baseline` (a `CACHE_BASELINES` name) makes it use the Numba cache carried in its
    folder for that baseline (`write_artifact` builds it)."""
    import hashlib

    def clean(text: str) -> str:
        return "".join(ch if ch.isprintable() and ch not in '\\"' else "_" for ch in text)

    source_label, inputs, outputs = clean(source_label), clean(inputs), clean(outputs)
    chosen = _baseline(cache_baseline) if cache_baseline is not None else None
    carried = ""
    baseline = None
    if chosen is not None:
        import numba

        name, baseline = chosen
        import textwrap

        carried = "\n" + textwrap.fill(" ".join(_ARTIFACT_CARRIED_DOC.format(
            name=name, folder=baseline["folder"], cpu=baseline["cpu"],
            numba=numba.__version__, python="%d.%d" % sys.version_info[:2],
            features=baseline["summary"]).split()), 92, break_on_hyphens=False,
            break_long_words=False) + "\n"
    kernel_text = kernel_source(kernels)
    digest = hashlib.sha256(kernel_text.encode()).hexdigest()
    # the carried-cache code only where there is a cache to carry (~6 KB of model.py)
    if baseline is None:
        prelude, seed = [_ARTIFACT_NO_CACHE], []
    else:
        prelude = [_ARTIFACT_PRELUDE.replace("{baseline!r}", repr(baseline))]
        seed = [_ARTIFACT_SEED]
    model = "\n".join([
        _ARTIFACT_HEADER.format(source=source_label, inputs=inputs, outputs=outputs,
                                carried=carried, kernels_sha256=digest),
        *prelude,
        _ARTIFACT_KERNEL_IMPORT,
        *seed,
        _ARTIFACT_FOOTER,
    ])
    return ArtifactSource(model, kernel_text)


def _runner_kernels(node: ast.AST) -> set[str] | None:
    """The kernel names of a `@runner("a", "b", ...)` function (None if it is not one)."""
    for d in getattr(node, "decorator_list", []):
        if (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "runner"):
            return {a.value for a in d.args if isinstance(a, ast.Constant)}
    return None


def _shake(texts: list[str], kernels: set[str], roots: set[str]) -> list[str]:
    """Drop from the inlined modules (`texts`) every top-level function or class nothing
    reachable uses: reachable are the statements that are not definitions, the runners of
    the plan's `kernels`, the names in `roots` (what model.py and the kernels' header use),
    and whatever those name, transitively. A statement setting an attribute of a dropped function
    (`run_x.bind = ...`) goes with it."""
    trees = [ast.parse(t) for t in texts]
    defs: dict[str, ast.AST] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defs[node.name] = node

    def used(node: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}

    def attr_owner(node: ast.AST) -> str | None:  # `f.attr = ...` -> "f"
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            t = node.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                return t.value.id
        return None

    roots = set(roots)
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                ks = _runner_kernels(node)
                if ks is not None and ks & kernels:
                    roots.add(node.name)
            elif attr_owner(node) not in defs:
                roots |= used(node)
    live: set[str] = set()
    todo = [n for n in roots if n in defs]
    while todo:
        name = todo.pop()
        if name in live:
            continue
        live.add(name)
        todo.extend(n for n in used(defs[name]) if n in defs and n not in live)
        # attribute assignments of a live function (`run_x.bind = _x_bind`) are live too
        for tree in trees:
            for node in tree.body:
                if attr_owner(node) == name:
                    todo.extend(n for n in used(node) if n in defs and n not in live)
    out = []
    for text, tree in zip(texts, trees):
        header = text.split("\n", 1)[0]  # "# ---- module ----"
        tree.body = [node for node in tree.body
                     if not (isinstance(node, (ast.FunctionDef, ast.ClassDef))
                             and node.name not in live)
                     and not (attr_owner(node) in defs and attr_owner(node) not in live)]
        out.append(header + "\n" + ast.unparse(tree) + "\n")
    return out


def _spec_text(specs, names) -> str:
    return ", ".join(
        f"{n}: {'x'.join(str(d) for d in s)} {d}" for n, (s, d) in zip(names, specs)
    )


CACHE_BASELINES: dict[str, dict[str, str]] = {
    "x86-64-v2": {"arch": "x86_64", "cpu": "x86-64-v2",
                  "features": "+64bit,+cmov,+crc32,+cx16,+cx8,+fxsr,+mmx,+popcnt,+sahf,+sse,"
                              "+sse2,+sse3,+sse4.1,+sse4.2,+ssse3",
                  "summary": "SSE4.2, SSSE3, POPCNT, CX16"},
    "x86-64-v3": {"arch": "x86_64", "cpu": "x86-64-v3",
                  "features": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+crc32,+cx16,+cx8,+f16c,+fma,"
                              "+fxsr,+lzcnt,+mmx,+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,"
                              "+sse4.2,+ssse3,+xsave",
                  "summary": "AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE"},
    "x86-64-v4": {"arch": "x86_64", "cpu": "x86-64-v4",
                  "features": "+64bit,+avx,+avx2,+avx512bw,+avx512cd,+avx512dq,+avx512f,"
                              "+avx512vl,+bmi,+bmi2,+cmov,+crc32,+cx16,+cx8,+f16c,+fma,+fxsr,"
                              "+lzcnt,+mmx,+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,"
                              "+ssse3,+xsave",
                  "summary": "AVX-512 F/BW/CD/DQ/VL, AVX2, FMA, BMI1/2"},
}
"""The named CPU baselines an artifact can carry its compiled Numba cache for: Numba's CPU
name and the exact feature string it compiles with (`NUMBA_CPU_NAME`, `NUMBA_CPU_FEATURES`;
both are part of the cache's key, so both are fixed: with the CPU name alone Numba would use
the host's feature string). x86-64-v2/v3/v4 are the x86-64 psABI levels (v3: AVX2, FMA, BMI2,
F16C, MOVBE...; v4: + AVX-512 F/BW/CD/DQ/VL). No baseline has AVX-512 VNNI: qcc's VNNI GEMM
runs only when Numba compiles for the host itself."""

BASELINE_ENV = "QCC_ARTIFACT_BASELINE"
"""`write_artifact`'s default `cache_baseline` (e.g. ``x86-64-v3``; empty or ``none``: no
carried cache), so that `qcc --emit=numba` can carry one."""


def _cache_folder(name: str) -> str:
    return f"numba-cache-{name}"


def _baseline(name: str | None) -> tuple[str, dict[str, str]] | None:
    if name is None:
        name = os.environ.get(BASELINE_ENV, "")
    name = name.strip()
    if not name or name.lower() == "none":
        return None
    if name not in CACHE_BASELINES:
        raise QccError(f"unknown CPU baseline {name!r} for the carried Numba cache; known: "
                       + ", ".join(CACHE_BASELINES))
    return name, dict(CACHE_BASELINES[name], folder=_cache_folder(name))


def host_has_baseline(name: str) -> bool:
    """True if this CPU runs code compiled for the baseline `name` (`CACHE_BASELINES`)."""
    import llvmlite.binding as llb

    b = CACHE_BASELINES[name]
    if llb.get_process_triple().split("-", 1)[0] != b["arch"]:
        return False
    host = llb.get_host_cpu_features()
    return all(host.get(f[1:]) for f in b["features"].split(",") if f.startswith("+"))


_CACHE_BUILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import model
from numba.core import config
if (config.CPU_NAME, config.CPU_FEATURES) != (sys.argv[3], sys.argv[4]):
    raise SystemExit(f"Numba compiles for {config.CPU_NAME!r}, not the baseline")
m = model.load()
with np.load(sys.argv[2]) as z:
    sets = {}
    for k in z.files:
        s, i = k.split("_")
        sets.setdefault(int(s), {})[int(i)] = z[k]
for s in sorted(sets):
    try:
        m.run([sets[s][i] for i in sorted(sets[s])])
    except Exception:
        if s == 0:
            raise
import numba
print(json.dumps({"numba": numba.__version__, "python": "py%d%d%s" % (
    sys.version_info[0], sys.version_info[1], getattr(sys, "abiflags", ""))}))
"""


def _sample_inputs(plan: Plan) -> list[list[np.ndarray]]:
    """Inputs that run every kernel the plan calls (its data-dependent fix-up paths too):
    zeros, then random values over the dtype's range (floats in [-1, 1], int8/int16 full
    range; other integers are indices or sizes, zeros only)."""
    rng = np.random.default_rng(0)
    shapes = [(tuple(max(int(d), 1) for d in s), np.dtype(d)) for s, d in plan.input_specs]
    sets = [[np.zeros(s, d) for s, d in shapes]]
    for _ in range(2):
        xs = []
        for s, d in shapes:
            if d.kind == "f":
                xs.append(rng.uniform(-1.0, 1.0, s).astype(d))
            elif d in (np.dtype(np.int8), np.dtype(np.int16)):
                info = np.iinfo(d)
                xs.append(rng.integers(info.min, info.max + 1, s).astype(d))
            else:
                xs.append(np.zeros(s, d))
        sets.append(xs)
    return sets


def _carried_cache(files: dict[str, bytes], kernels_sha256: str, plan: Plan, name: str,
                   b: dict[str, str],
                   samples: Sequence[Sequence[np.ndarray]] | None) -> dict[str, bytes]:
    """Build the artifact's Numba cache for the baseline: in a fresh process that compiles
    for it (empty NUMBA_CACHE_DIR, where model.py extracts its kernels.py), import the
    artifact and run its plan on sample inputs, so that exactly the kernels the plan calls
    compile; returns the cache folder's files (Numba's files for kernels.py, and cache.json
    naming what they are valid for: the baseline, numba, Python, model.py's and kernels.py's
    sha256)."""
    import hashlib
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    if not host_has_baseline(name):
        raise QccError(
            f"cannot build the Numba cache for {name}: this CPU does not have it (the cache "
            "is built by running the model compiled for it)")
    with tempfile.TemporaryDirectory(prefix="qcc-cache-") as tmp:
        tmp_path = Path(tmp)
        art = tmp_path / "artifact"
        art.mkdir()
        for fname, payload in files.items():
            (art / fname).write_bytes(payload)
        arrays = {}
        for s, xs in enumerate(list(samples or []) + _sample_inputs(plan)):
            for i, x in enumerate(xs):
                arrays[f"{s}_{i}"] = np.asarray(x)
        np.savez(tmp_path / "inputs.npz", **arrays)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NUMBA_", "PYTHON", "QCC_ARTIFACT"))}
        env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_CPU_NAME=b["cpu"],
                   NUMBA_CPU_FEATURES=b["features"])
        r = subprocess.run(
            [sys.executable, "-I", "-c", _CACHE_BUILD, str(art), str(tmp_path / "inputs.npz"),
             b["cpu"], b["features"]],
            capture_output=True, text=True, env=env, cwd=tmp,
        )
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise QccError(f"building the Numba cache for {name} failed: {last}")
        built = json.loads(r.stdout.strip().splitlines()[-1])
        out: dict[str, bytes] = {}
        for f in sorted((tmp_path / "cache").glob("*/kernels.*")):
            if f.suffix in (".nbi", ".nbc"):
                out[f"{b['folder']}/{f.name}"] = f.read_bytes()
    if not any(k.endswith(".nbi") for k in out):
        raise QccError(f"building the Numba cache for {name} failed: Numba cached nothing")
    info = {"generator": "qcc", "baseline": name, "arch": b["arch"], "cpu": b["cpu"],
            "features": b["features"], "numba": built["numba"], "python": built["python"],
            "model_sha256": hashlib.sha256(files["model.py"]).hexdigest(),
            "kernels_sha256": kernels_sha256}
    out[f"{b['folder']}/cache.json"] = (json.dumps(info, indent=1) + "\n").encode()
    return out


def _deflated_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (a zip of .npy files, as np.savez_compressed writes) of deflated entries,
    with fixed timestamps: the same plan gives the same bytes. Deflate, not LZMA (zip method
    14, which np.load reads too): LZMA's entries are 2.5-4 % smaller on a plan's weights, but
    decompress ~8x slower, 40-55 ms of a warm start on hand and iris against 5-7."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, npy.getvalue())
    return out.getvalue()


def write_artifact(model: CompiledModel | Operation, directory: str | os.PathLike[str],
                   source_label: str = "a model", *, force: bool = False,
                   inputs: Sequence[str | os.PathLike[str] | None] = (),
                   cache_baseline: str | None = None,
                   cache_inputs: Sequence[Sequence[np.ndarray]] | None = None) -> None:
    """Write DIR/model.py, DIR/kernels.py.xz and DIR/weights.npz (and the manifest
    `.qcc-artifact`) by the rules of `qcc.fileio.write_artifact_folder`: a new folder appears
    whole; an existing folder must be empty or a qcc artifact (or `force`), and only qcc's
    own files in it are replaced.

    model.py is the entry point; kernels.py.xz is `kernel_source` of the plan's kernels,
    xz-compressed (~107 KB of source -> ~24 KB: model.py extracts and checks it at import);
    weights.npz is `plan_to_arrays` (a few arrays packed per dtype) with LZMA-compressed
    entries (`_deflated_npz`). Together they stay within ~1.2x the int8 .tflite of the model,
    but for a model of a few dozen KB, whose folder is its .tflite's size plus the kernels'
    source (model.py and kernels.py.xz, ~40-50 KB).

    `cache_baseline` (a `CACHE_BASELINES` name, e.g. ``"x86-64-v3"``; default
    ``$QCC_ARTIFACT_BASELINE``, else none) also writes DIR/numba-cache-<baseline>/: Numba's
    compiled cache of exactly the kernels the plan calls, built for that CPU baseline in a
    fresh process (it runs the plan on zeros, random inputs and `cache_inputs`; this CPU must
    have the baseline), so that the artifact's first run on a CPU with the baseline loads its
    kernels instead of compiling them (model.py's docstring says how)."""
    import hashlib
    import lzma

    from qcc.fileio import write_artifact_folder

    cm = model if isinstance(model, CompiledModel) else compile_module(model)
    plan = cm.plan
    try:
        arrays = plan_mod.plan_to_arrays(plan)
    except TypeError as e:
        raise QccError(f"--emit=numba: {e}") from None
    chosen = _baseline(cache_baseline)
    src = artifact_source(
        source_label,
        _spec_text(plan.input_specs, plan.input_names),
        _spec_text(plan.output_specs, plan.output_names),
        cache_baseline=chosen[0] if chosen else None,
        kernels={s.kernel for s in plan.steps},
    )
    kernel_bytes = src.kernels.encode()
    files = {"model.py": src.model.encode(),
             ARTIFACT_KERNELS: lzma.compress(kernel_bytes, preset=9 | lzma.PRESET_EXTREME),
             "weights.npz": _deflated_npz(arrays)}
    if chosen is not None:
        files.update(_carried_cache(files, hashlib.sha256(kernel_bytes).hexdigest(), plan,
                                    chosen[0], chosen[1], cache_inputs))
    write_artifact_folder(directory, files, force=force, inputs=inputs)


__all__ = [
    "CompiledModel",
    "build_plan",
    "compile_module",
    "module_is_quantized",
    "op_is_quantized",
    "write_artifact",
    "artifact_source",
    "kernel_source",
    "ArtifactSource",
    "ARTIFACT_KERNELS",
    "CACHE_BASELINES",
    "host_has_baseline",
]

