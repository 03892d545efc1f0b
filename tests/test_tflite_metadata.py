"""Input value ranges from a model's TFLITE_METADATA: read, imported, used by calibration."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from conftest import zoo_parametrize

from qcc.frontends.tflite_metadata import input_ranges
from qcc.testing.tflite_models import single_op_models


def _float_vector(builder: flatbuffers.Builder, values: list[float]) -> int:
    builder.StartVector(4, len(values), 4)
    for v in reversed(values):
        builder.PrependFloat32(v)
    return builder.EndVector()


def _offset_vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        builder.PrependUOffsetTRelative(o)
    return builder.EndVector()


def metadata_with_normalization(mean: float, std: float) -> bytes:
    """A minimal metadata_schema.fbs ModelMetadata: one subgraph, one input tensor whose
    process unit is NormalizationOptions{mean, std} (field ids as in the schema)."""
    b = flatbuffers.Builder(256)
    means, stds = _float_vector(b, [mean]), _float_vector(b, [std])
    b.StartObject(2)  # NormalizationOptions { mean:[float]; std:[float] }
    b.PrependUOffsetTRelativeSlot(0, means, 0)
    b.PrependUOffsetTRelativeSlot(1, stds, 0)
    options = b.EndObject()
    b.StartObject(2)  # ProcessUnit { options_type; options }
    b.PrependUint8Slot(0, 1, 0)  # ProcessUnitOptions.NormalizationOptions
    b.PrependUOffsetTRelativeSlot(1, options, 0)
    unit = b.EndObject()
    units = _offset_vector(b, [unit])
    b.StartObject(7)  # TensorMetadata { ...; process_units (4); ... }
    b.PrependUOffsetTRelativeSlot(4, units, 0)
    tensor = b.EndObject()
    tensors = _offset_vector(b, [tensor])
    b.StartObject(9)  # SubGraphMetadata { ...; input_tensor_metadata (2); ... }
    b.PrependUOffsetTRelativeSlot(2, tensors, 0)
    subgraph = b.EndObject()
    subgraphs = _offset_vector(b, [subgraph])
    b.StartObject(8)  # ModelMetadata { ...; subgraph_metadata (3); ... }
    b.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def with_metadata(model: bytes, metadata: bytes) -> bytes:
    m = schema.ModelT.InitFromPackedBuf(model, 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    m.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(m.buffers) - 1
    m.metadata = [*(m.metadata or []), entry]
    b = flatbuffers.Builder(len(model) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_normalization_gives_the_range() -> None:
    assert input_ranges(metadata_with_normalization(127.5, 127.5)) == [(-1.0, 1.0)]
    assert input_ranges(metadata_with_normalization(0.0, 255.0)) == [(0.0, 1.0)]


def test_garbage_metadata_gives_no_range() -> None:
    assert input_ranges(b"") == []
    assert input_ranges(bytes(range(40))) == []


def test_import_records_the_range_and_calibration_uses_it(tmp_path: Path) -> None:
    from PIL import Image

    import qcc

    model = with_metadata(single_op_models()["conv_2d_same"], metadata_with_normalization(127.5, 127.5))
    path = tmp_path / "conv.tflite"
    path.write_bytes(model)
    m = qcc.load(path)
    assert "nn.value_range = array<f32: -1.000000e+00, 1.000000e+00>" in m.to_mlir()
    (spec,) = m.input_specs()
    assert spec.value_range == (-1.0, 1.0)

    from qcc.calibration import load_representative_data

    h, w = spec.shape[1], spec.shape[2]
    Image.new("RGB", (w, h), (0, 0, 0)).save(tmp_path / "black.png")
    Image.new("RGB", (w, h), (255, 255, 255)).save(tmp_path / "white.png")
    samples = [s[0] for s in load_representative_data(tmp_path, [spec])]
    assert sorted((float(x.min()), float(x.max())) for x in samples) == [(-1.0, -1.0), (1.0, 1.0)]
    # An explicit range still wins.
    explicit = [s[0] for s in load_representative_data(tmp_path, [spec], input_range=(0.0, 1.0))]
    assert sorted(float(x.max()) for x in explicit) == [0.0, 1.0]


DECLARED_RANGES = {
    "face_detection_short_range": [(-1.0, 1.0)],
    "hand_landmark_lite": [(0.0, 1.0)],
    "iris_landmark": [None],  # no normalization in its metadata
    "selfie_segmentation": [(0.0, 1.0)],
}
"""The input ranges ../shared/models' files declare (the ranges MediaPipe's graphs feed)."""


@zoo_parametrize("model", ids="name")
def test_zoo_declared_ranges_are_sane(model: Path) -> None:
    import qcc

    ranges = [spec.value_range for spec in qcc.load(model).input_specs()]
    if model.stem in DECLARED_RANGES:
        assert ranges == DECLARED_RANGES[model.stem]
    for r in ranges:
        if r is not None:
            lo, hi = r
            assert lo < hi and -1.0 <= lo and hi <= 1.0  # image inputs normalized to [-1,1]/[0,1]


def test_metadata_survives_quantization(write_model) -> None:
    """The TFLITE_METADATA entry is written back by the backend, float or int8, so the
    quantized file still declares its input normalization."""
    import qcc

    model = with_metadata(single_op_models()["conv_2d_same"], metadata_with_normalization(127.5, 127.5))
    m = qcc.load(write_model("conv", model))
    rng = np.random.default_rng(0)
    data = [[rng.uniform(-1, 1, m.inputs[0].shape).astype(np.float32)] for _ in range(4)]
    for out in (m, qcc.quantize(m, representative_dataset=data)):
        written = schema.ModelT.InitFromPackedBuf(out.to_tflite(), 0)
        (entry,) = [e for e in written.metadata if e.name in (b"TFLITE_METADATA", "TFLITE_METADATA")]
        blob = bytes(np.asarray(written.buffers[entry.buffer].data, np.uint8))
        assert input_ranges(blob) == [(-1.0, 1.0)]
