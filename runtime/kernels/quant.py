"""Ops of the quant dialect that the float executor runs.

quant.stats carries calibration ranges and is an identity on values. (quant.qcast and
quant.dcast will be one entry each here.)"""

from __future__ import annotations

from qcc.dialects import quant

from .registry import float_kernel


@float_kernel(quant.StatsOp)
def stats(op):
    def run(x):
        return x

    return run
