"""TFLite model metadata (the `TFLITE_METADATA` buffer): the input value ranges it declares.

The metadata is a flatbuffer of its own (tflite_support's `metadata_schema.fbs`, file
identifier "M001"). qcc reads the little it needs with the `flatbuffers` runtime directly,
without the tflite_support package:

    ModelMetadata.subgraph_metadata[0].input_tensor_metadata[i]
        .process_units[*].options : NormalizationOptions { mean:[float]; std:[float] }
        .stats : Stats { max:[float]; min:[float] }

An image input normalized as (pixel - mean) / std over pixels in [0, 255] takes values in
[(0 - mean) / std, (255 - mean) / std]; that is the range calibration images are scaled to.
`Stats` (min/max of the input) is used when there are no normalization options.
"""

from __future__ import annotations

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union tag


def _table(buf: bytes, pos: int) -> Table:
    return Table(bytearray(buf) if not isinstance(buf, bytearray) else buf, pos)


def _field(t: Table, index: int) -> int:
    return t.Offset(4 + 2 * index)


def _subtable(t: Table, index: int) -> Table | None:
    o = _field(t, index)
    if not o:
        return None
    return Table(t.Bytes, t.Indirect(o + t.Pos))


def _vector_tables(t: Table, index: int) -> list[Table]:
    o = _field(t, index)
    if not o:
        return []
    start = t.Vector(o)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _float_vector(t: Table, index: int) -> list[float]:
    o = _field(t, index)
    if not o:
        return []
    start = t.Vector(o)
    return [t.Get(N.Float32Flags, start + 4 * i) for i in range(t.VectorLen(o))]


def _union(t: Table, type_index: int, value_index: int) -> tuple[int, Table | None]:
    o = _field(t, type_index)
    tag = t.Get(N.Uint8Flags, o + t.Pos) if o else 0
    o = _field(t, value_index)
    if not o:
        return tag, None
    value = Table(bytearray(), 0)
    t.Union(value, o)
    return tag, value


def input_ranges(metadata: bytes) -> list[tuple[float, float] | None]:
    """The declared value range of each input of subgraph 0 (None where none is declared).
    Malformed metadata yields no ranges rather than an error: it is advisory."""
    try:
        buf = bytearray(metadata)
        if len(buf) < 8:
            return []
        root = _table(buf, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, buf, 0))
        subgraphs = _vector_tables(root, 3)
        if not subgraphs:
            return []
        ranges: list[tuple[float, float] | None] = []
        for tensor in _vector_tables(subgraphs[0], 2):
            ranges.append(_tensor_range(tensor))
        return ranges
    except Exception:  # noqa: BLE001 - advisory data; a corrupt table means "no range"
        return []


def _tensor_range(tensor: Table) -> tuple[float, float] | None:
    for unit in _vector_tables(tensor, 4):
        tag, options = _union(unit, 0, 1)
        if tag != _NORMALIZATION_OPTIONS or options is None:
            continue
        means, stds = _float_vector(options, 0), _float_vector(options, 1)
        if len(means) >= 1 and len(stds) >= 1 and stds[0] > 0:
            if len(set(means)) == 1 and len(set(stds)) == 1:
                lo, hi = (0.0 - means[0]) / stds[0], (255.0 - means[0]) / stds[0]
                return (lo, hi) if lo < hi else None
    stats = _subtable(tensor, 5)
    if stats is not None:
        highs, lows = _float_vector(stats, 0), _float_vector(stats, 1)
        if len(highs) == 1 and len(lows) == 1 and lows[0] < highs[0]:
            return (lows[0], highs[0])
    return None
