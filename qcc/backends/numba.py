"""The Numba backend: a quantized module -> a compiled plan of integer kernels.

    from qcc.backends.numba import compile_module, write_artifact
    cm = compile_module(module)          # everything precomputed: multipliers, packed weights...
    outputs = cm.run([x])                # list of numpy arrays, in the function's result order
    write_artifact(cm, "out_dir/")       # out_dir/model.py + out_dir/weights.npz (numpy + numba)

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
per-channel alpha, then MAXIMUM) are fused into one per-channel table step (`lut_chan_i8`),
tabulated by running the chain's own runners on every (channel, stored value) pair (the
runners declared `elementwise` in `int8_registry`); a
MUL + MAXIMUM chain becomes the vectorized `prelu_chan_i8` instead when that kernel
reproduces the table exactly (`_prelu_form`). Either way the fused step computes what the
chain computes, bit for bit.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation, SSAValue

from qcc.dialects import nn, quant
from qcc.dialects.ir import decode_dense, describe_op, element_dtype, find_main, location_text
from qcc.dialects.quant import QuantizedType
from qcc.errors import QccError
from qcc.runtime import plan as plan_mod
from qcc.runtime.errors import MissingKernelError
from qcc.runtime.kernels import int8_registry as reg
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


def _lut_fusible(s: Step, c: int) -> bool:
    """True if the step is element-wise on its run-time operands, per channel (last axis)
    at most, so that its result at a position depends only on the operands there and on the
    channel (its runner is declared `elementwise`)."""
    kind = reg.ELEMENTWISE.get(s.kernel)
    if kind == "unary":
        return len(s.inputs) == 1 and len(s.outputs) == 1
    if kind != "binary" or len(s.outputs) != 1:
        return False
    if s.kernel == "mul_i8" and "kq" in s.params:
        kq = s.params["kq"]
        return len(s.inputs) == 1 and isinstance(kq, np.ndarray) and kq.size in (1, c)
    return len(s.inputs) == 2


def _fuse_lut_chains(steps: list[Step], slot_types: dict, output_slots: list[int]) -> list[Step]:
    """Fuse each chain of >= 2 element-wise int8 steps whose only run-time operand is one
    tensor x, and whose intermediate results have no other reader, into one `lut_chan_i8`
    step: a per-channel table built by running the chain's own runners on every (channel,
    stored value) pair, so the fused step computes exactly what the chain computes (e.g. a
    decomposed PRELU: max(x, mul(x, alpha)), or relu / sub / mul / add)."""
    runners = reg.RUNNERS
    if "lut_chan_i8" not in runners:
        return steps
    readers: dict[int, list[int]] = {}
    for i, s in enumerate(steps):
        for j in s.inputs:
            readers.setdefault(j, []).append(i)
    outs_set = set(output_slots)
    taken: set[int] = set()
    replace: dict[int, Step] = {}
    for i, s in enumerate(steps):
        if i in taken or len(set(s.inputs)) != 1:
            continue
        x = s.inputs[0]
        shape = _int8_shape(slot_types.get(x)) if x in slot_types else None
        if shape is None:
            continue
        c = shape[-1]
        if not _lut_fusible(s, c):
            continue

        def same(j: int) -> bool:
            return j in slot_types and _int8_shape(slot_types[j]) == shape

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
        for n in range(len(group), 1, -1):
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
        taken.update(g)
        label = " + ".join(steps[k].label for k in g)
        prelu = _prelu_form(chain, x, o, lut, int(c), runners)
        if prelu is not None:
            replace[g[-1]] = Step("prelu_chan_i8", (x,), (o,), prelu, (), label)
        else:
            replace[g[-1]] = Step("lut_chan_i8", (x,), (o,), {"lut": lut, "c": int(c)}, (), label)
    if not replace:
        return steps
    return [replace[i] if i in replace else s for i, s in enumerate(steps)
            if i in replace or i not in taken]


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
        self._runner = PlanRunner(plan, reg.RUNNERS)

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
    """Compile `func.func @main` of a quantized module (or the func) to a CompiledModel."""
    return CompiledModel(build_plan(module))


# ---------------------------------------------------------------------------------------------
# The self-contained artifact: DIR/model.py + DIR/weights.npz

_PKG_PREFIXES = ("qcc", "xdsl")
_ARTIFACT_HEADER = '''"""qcc Numba artifact: the int8 plan of {source} (generated by qcc; do not edit).

Needs only numpy and numba:

    import model                      # this file, next to weights.npz
    m = model.load()                  # or model.load("path/to/weights.npz")
    outputs = m.run([x])              # list of numpy arrays, one per model output
    outputs = model.run([x])          # same, with the plan loaded once

Inputs: {inputs}
Outputs: {outputs}
"""

from __future__ import annotations

import sys as _qcc_sys

_qcc_this = _qcc_sys.modules[__name__]
'''

_ARTIFACT_FOOTER = '''

# ---------------------------------------------------------------------------------------------
# entry points

import os as _qcc_os

_QCC_DEFAULT_WEIGHTS = _qcc_os.path.join(_qcc_os.path.dirname(_qcc_os.path.abspath(__file__)), "weights.npz")


class CompiledArtifact:
    def __init__(self, plan):
        self.plan = plan
        self._runner = PlanRunner(plan, RUNNERS)

    def run(self, inputs):
        return self._runner.run(inputs)

    __call__ = run


def load(path=None):
    """Load the plan (weights.npz next to this file by default)."""
    import numpy as _np

    with _np.load(path or _QCC_DEFAULT_WEIGHTS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return CompiledArtifact(plan_from_arrays(arrays))


_qcc_loaded = None


def run(inputs):
    """Run the model on a list of numpy arrays; returns a list of arrays."""
    global _qcc_loaded
    if _qcc_loaded is None:
        _qcc_loaded = load()
    return _qcc_loaded.run(inputs)
'''


def _artifact_modules() -> list[Any]:
    import importlib

    from qcc.runtime import fixedpoint

    reg.load_int8_families()
    mods = [fixedpoint, plan_mod, reg]
    for family in reg.INT8_FAMILIES:
        name = f"qcc.runtime.kernels.{family}"
        if name in sys.modules:
            mods.append(importlib.import_module(name))
    return mods


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
    # Keep the module docstring as a comment header.
    return f"# ---- {module_name} ----\n" + ast.unparse(tree) + "\n", names


def artifact_source(source_label: str = "a model", inputs: str = "", outputs: str = "") -> str:
    """The generated model.py: fixedpoint, plan, the registry and every int8 family inlined."""
    def clean(text: str) -> str:
        return "".join(ch if ch.isprintable() and ch not in '\\"' else "_" for ch in text)

    source_label, inputs, outputs = clean(source_label), clean(inputs), clean(outputs)
    mods = _artifact_modules()
    inlined = {m.__name__.rsplit(".", 1)[-1] for m in mods}
    parts = [_ARTIFACT_HEADER.format(source=source_label, inputs=inputs, outputs=outputs)]
    seen: dict[str, str] = {}
    shared_ok = {"annotations", "np", "njit"}
    for m in mods:
        text, names = _strip_module(inspect.getsource(m), m.__name__, inlined)
        for n in names:
            if n in seen and n not in shared_ok and not n.startswith("__"):
                raise QccError(
                    f"artifact: top-level name {n!r} is defined in both {seen[n]} and "
                    f"{m.__name__}; rename one (see int8_registry's rules)"
                )
            seen.setdefault(n, m.__name__)
        parts.append(text)
    parts.append(_ARTIFACT_FOOTER)
    return "\n".join(parts)


def _spec_text(specs, names) -> str:
    return ", ".join(
        f"{n}: {'x'.join(str(d) for d in s)} {d}" for n, (s, d) in zip(names, specs)
    )


def write_artifact(model: CompiledModel | Operation, directory: str | os.PathLike[str],
                   source_label: str = "a model", *, force: bool = False,
                   inputs: Sequence[str | os.PathLike[str] | None] = ()) -> None:
    """Write DIR/model.py and DIR/weights.npz (and the manifest `.qcc-artifact`) by the rules
    of `qcc.fileio.write_artifact_folder`: a new folder appears whole; an existing folder must
    be empty or a qcc artifact (or `force`), and only qcc's own files in it are replaced."""
    import io

    from qcc.fileio import write_artifact_folder

    cm = model if isinstance(model, CompiledModel) else compile_module(model)
    plan = cm.plan
    try:
        arrays = plan_mod.plan_to_arrays(plan)
    except TypeError as e:
        raise QccError(f"--emit=numba: {e}") from None
    src = artifact_source(
        source_label,
        _spec_text(plan.input_specs, plan.input_names),
        _spec_text(plan.output_specs, plan.output_names),
    )
    weights = io.BytesIO()
    np.savez(weights, **arrays)
    files = {"model.py": src.encode(), "weights.npz": weights.getvalue()}
    write_artifact_folder(directory, files, force=force, inputs=inputs)


__all__ = [
    "CompiledModel",
    "build_plan",
    "compile_module",
    "module_is_quantized",
    "op_is_quantized",
    "write_artifact",
    "artifact_source",
]

