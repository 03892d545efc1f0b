"""assign-precision: say, per op, which precision the rest of the pipeline must give it.

    qcc m.tflite --pass-pipeline='builtin.module(fuse-activation,
        assign-precision{int16=block1/conv,block1/add float=head/logits},
        annotate-ranges{calibration=calib/},bias-correction,infer-scales,
        legalize-target{target=xnnpack},quantize)'

sets the discardable attribute `qcc.precision` on the named nn ops (by location,
`loc("head/logits")`, or by kind, `nn.softmax`: every op of it):

- "int16": int16 activations with int8 weights, TFLite's 16x8 kernels; infer-scales gives
  the op int16 types and converts int8 <-> int16 at the region's edges (docs/ir.md, "int16
  activations"); an op TFLite has no 16x8 kernel for is an error there.
- "float": a float island; bias-correction leaves the op's bias alone (its weights stay
  float), infer-scales types it like any int8 op so its neighbours keep their types,
  legalize-target and legalize-fallback make it float, verify-int8 refuses it.
- "int8": the default, written to override a kind-wide choice for one op.

It changes no value and no type: it records a choice the later passes carry out. This is
how a mixed-precision plan (`qcc --target-snr`, qcc/mixed_precision.py) is written into the
pipeline it prints, so the same model can be made again without the search. Options that
name the same op twice are applied in the order int8, int16, float (the last wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from qcc.passes.infer_scales import mark_precision


@dataclass(frozen=True)
class AssignPrecision(ModulePass):
    """Set `qcc.precision` on the ops each option names (see the module docstring).

    Options:
      int8: ops to keep int8 (location or kind).
      int16: ops to compute with int16 activations and int8 weights.
      float: ops to keep in float (float islands).
    """

    name = "assign-precision"

    int8: tuple[str, ...] = ()
    int16: tuple[str, ...] = ()
    float: tuple[str, ...] = ()

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for precision in ("int8", "int16", "float"):
            names = getattr(self, precision)
            if names:
                mark_precision(op, tuple(names), precision, f"assign-precision{{{precision}=...}}")
