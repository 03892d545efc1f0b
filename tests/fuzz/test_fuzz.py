"""Seeded mutation fuzzing in CI: about a minute of malformed .tflite bytes, .mlir text,
pipeline strings, calibration data and Python API calls (qcc/testing/fuzz.py). Every case
must end as a one-line error with exit 1 or a valid output LiteRT loads; never a traceback,
a signal, a hang, a leftover partial file or a modified input. Longer runs: bench/fuzz.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qcc.testing.fuzz import KINDS, Fuzzer, default_seeds, replay_command

SECONDS = float(os.environ.get("QCC_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("QCC_FUZZ_SEED", "20261205"))


@pytest.fixture(scope="module")
def seeds():
    return default_seeds()


def test_fuzz_every_input_kind(seeds, tmp_path: Path) -> None:
    fuzzer = Fuzzer(seeds, tmp_path, seed=SEED, timeout=60.0)
    bad = []
    for case, outcome in fuzzer.run(KINDS, seconds=SECONDS):
        if outcome.bad:
            replay = f"\n    replay: {replay_command(case)}" if case.argv else ""
            bad.append(f"{outcome.cls}: [{case.kind}] {case.label}: {outcome.detail}{replay}")
    counts = {kind: dict(c) for kind, c in fuzzer.counts.items()}
    assert set(counts) == set(KINDS), f"every kind must run at least once: {counts}"
    assert not bad, f"{len(bad)} bad cases (counts {counts}):\n" + "\n".join(bad)
