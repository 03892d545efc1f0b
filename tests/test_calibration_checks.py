"""Calibration data that cannot be right is reported, not used silently: samples checked
against the input range the model declares (its TFLite metadata), constant samples and
datasets, and image files of every mode (16-bit PNGs included) read onto the same range."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from PIL import Image

import qcc
from qcc.calibration import InputSpec, load_representative_data
from qcc.errors import QccError, QccWarning
from qcc.testing.tflite_models import single_op_models

UNIT = InputSpec("image", (1, 4, 4, 3), np.float32, (0.0, 1.0))  # declared [0, 1]
SIGNED = InputSpec("image", (1, 4, 4, 3), np.float32, (-1.0, 1.0))  # declared [-1, 1]
UNDECLARED = InputSpec("image", (1, 4, 4, 3), np.float32)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _unit(n: int) -> list[np.ndarray]:
    return list(_rng().uniform(0.0, 1.0, (n, 4, 4, 3)).astype(np.float32))


def _pixels(n: int, dtype=np.uint8) -> list[np.ndarray]:
    return list(_rng().integers(0, 256, (n, 4, 4, 3)).astype(dtype))


def _load(data, spec=UNIT, **kwargs) -> list[list[np.ndarray]]:
    return list(load_representative_data(data, (spec,), **kwargs))


def _quiet_load(data, spec=UNIT, **kwargs) -> list[list[np.ndarray]]:
    """All samples, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        return _load(data, spec, **kwargs)


def _warned(data, spec=UNIT, **kwargs) -> list[str]:
    """The QccWarning messages of one full pass."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load(data, spec, **kwargs)
    return [str(w.message) for w in caught if issubclass(w.category, QccWarning)]


# ----------------------------------------------------------------------------------------------
# The declared input range


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32])
def test_pixels_0_255_for_a_0_1_input_is_an_error_with_a_hint(dtype):
    with pytest.raises(QccError) as info:
        _load(_pixels(3, dtype))
    text = str(info.value)
    assert text.startswith("representative dataset sample 0: input 'image' has values 0..")
    assert "far outside its declared range [0, 1] (from the model's metadata)" in text
    assert "scale them to the declared range (e.g. x/255)" in text
    _quiet_load([x / 255 for x in _pixels(3, dtype)])  # the fix the hint gives


def test_pixels_for_a_minus1_1_input_hint_the_right_scaling():
    with pytest.raises(QccError, match=r"declared range \[-1, 1\].*e\.g\. x/127\.5 - 1\)"):
        _load(_pixels(2), SIGNED)
    _quiet_load([x / 127.5 - 1 for x in _pixels(2)], SIGNED)


def test_a_max_above_2_is_an_error_even_within_the_width_of_a_minus1_1_range():
    data = _unit(3)
    data[1] = data[1] * 2.5  # 0..2.5: outside [-1, 1] by less than its width, but not pixels
    with pytest.raises(QccError, match=r"sample 1: input 'image' has values .*\.\.2\.4"):
        _load(data, SIGNED)


def test_16_bit_data_gets_the_16_bit_hint():
    data = [_rng().integers(0, 65536, (4, 4, 3)).astype(np.uint16)]
    with pytest.raises(QccError, match=r"if these are 16-bit values \(0\.\.65535\).*x/65535"):
        _load(data)


def test_far_outside_and_not_pixels():
    data = _unit(2) + [np.full((4, 4, 3), -3.0, np.float32) + _unit(1)[0]]
    with pytest.raises(QccError, match=r"sample 2: .*; scale the data to \[0, 1\]$"):
        _load(data)


def test_the_first_bad_sample_is_named_with_its_file(tmp_path):
    for i, x in enumerate(_unit(3) + _pixels(2)):
        np.save(tmp_path / f"s{i}.npy", x)
    with pytest.raises(QccError, match=r"s3\.npy \(sample 3\): input 'image' has values"):
        _load(tmp_path)
    np.savez(tmp_path.parent / "stacked.npz", image=np.stack(_unit(2) + _pixels(1)))
    with pytest.raises(QccError, match=r"stacked\.npz sample 2: input 'image'"):
        _load(tmp_path.parent / "stacked.npz")


def test_a_little_outside_is_one_warning_for_the_whole_dataset():
    data = _unit(10)
    for i in (3, 5, 8):
        data[i] = data[i] * 1.1 - 0.02  # -0.02..1.08
    (message,) = _warned(data)
    assert message == (
        "representative dataset: 3 of 10 samples have values outside the declared range "
        "[0, 1] of input 'image' (from the model's metadata), reaching -0.0197..1.07 "
        "(first: sample 3); the calibrated ranges will include them: check the data's scaling"
    )


def test_minus1_1_data_for_a_0_1_input_warns():
    """Outside by the range's width at most: maybe intended (a metadata range that is
    wrong), so a warning that names the values, not an error."""
    data = [x * 2 - 1 for x in _unit(4)]
    (message,) = _warned(data)
    assert "4 of 4 samples have values outside the declared range [0, 1]" in message


def test_rounding_at_the_ends_is_not_outside():
    data = _unit(3)
    data[0][0, 0, 0] = np.float32(1.0000001)
    data[1][0, 0, 0] = np.float32(-1e-7)
    _quiet_load(data)


def test_data_covering_a_sliver_of_the_range_warns():
    (message,) = _warned([x / 255 for x in _unit(4)])  # scaled twice
    assert "over all 4 samples input 'image' spans only" in message
    assert "of its declared range [0, 1]" in message
    declared_0_255 = InputSpec("image", (1, 4, 4, 3), np.float32, (0.0, 255.0))
    (message,) = _warned(_unit(4), declared_0_255)  # the model wants raw pixels
    assert "0.39% of its declared range [0, 255]" in message


def test_no_declared_range_no_range_checks():
    _quiet_load(_pixels(3), UNDECLARED)


def test_integer_inputs_are_not_range_checked():
    """A uint8 input takes raw pixels; a range in its metadata is that of the float values."""
    u8 = InputSpec("image", (1, 4, 4, 3), np.uint8, (-1.0, 1.0))
    _quiet_load(_pixels(3), u8)


def test_explicit_input_range_is_what_images_are_checked_against(tmp_path):
    for i in range(3):
        Image.fromarray(_pixels(1)[0]).save(tmp_path / f"{i}.png")
    spec = InputSpec("image", (1, 4, 4, 3), np.float32, (0.0, 1.0))
    samples = _quiet_load(tmp_path, spec, input_range=(-1.0, 1.0))
    assert min(float(s[0].min()) for s in samples) < 0


# ----------------------------------------------------------------------------------------------
# Constant samples and datasets


def test_constant_samples_warn_with_count_and_first_index():
    data = _unit(6)
    data[2] = np.zeros((4, 4, 3), np.float32)
    data[4] = np.full((4, 4, 3), 0.5, np.float32)
    (message,) = _warned(data)
    assert message == (
        "representative dataset: 2 of 6 samples are constant for input 'image' (first: "
        "sample 2, every value 0); blank images or zero-filled arrays tell calibration nothing "
        "about real inputs"
    )


@pytest.mark.parametrize("value", [0.0, 0.25])
def test_a_dataset_of_one_constant_is_an_error(value):
    with pytest.raises(QccError, match=(
        rf"representative dataset: all 5 samples are one constant \(input 'image' is {value:g} "
        r"everywhere\): there is nothing to calibrate on"
    )):
        _load([np.full((4, 4, 3), value, np.float32)] * 5)
    with pytest.raises(QccError, match="the only sample is one constant"):
        _load([np.zeros((4, 4, 3), np.float32)], UNDECLARED)


def test_blank_images_of_one_colour_are_an_error(tmp_path):
    for i in range(3):
        Image.new("L", (4, 4), 0).save(tmp_path / f"{i}.png")
    with pytest.raises(QccError, match=rf"{tmp_path.name}: all 3 samples are one constant"):
        _load(tmp_path)


def test_one_constant_input_of_several_only_warns():
    """A multi-input model may take an input that is constant in use (a zero initial
    state): a warning, not an error, while another input varies."""
    state = InputSpec("state", (1, 8), np.float32)
    data = [[x, np.zeros((1, 8), np.float32)] for x in _unit(3)]
    with pytest.warns(QccWarning, match="input 'state' is 0 everywhere in all 3 samples"):
        samples = list(load_representative_data(data, (UNIT, state)))
    assert len(samples) == 3


def test_single_element_inputs_are_not_constant_samples():
    scalar = InputSpec("gain", (1,), np.float32)
    data = [[x, np.ones(1, np.float32)] for x in _unit(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        assert len(list(load_representative_data(data, (UNIT, scalar)))) == 3


def test_findings_are_reported_once_and_errors_on_every_pass():
    data = load_representative_data(_unit(3) + [np.zeros((4, 4, 3), np.float32)], (UNIT,))
    with pytest.warns(QccWarning, match="1 of 4 samples are constant"):
        list(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        assert len(list(data)) == 4  # no second warning
    zeros = load_representative_data(iter([np.zeros((4, 4, 3))] * 2), (UNIT,))  # one-shot
    for _ in range(2):
        with pytest.raises(QccError, match="all 2 samples are one constant"):
            list(zeros)


def test_a_dataset_passed_again_is_checked_once():
    inner = load_representative_data(_unit(3) + [np.zeros((4, 4, 3), np.float32)], (UNIT,))
    outer = load_representative_data(inner, (UNIT,), samples=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(list(outer)) == 4
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("representative dataset: 1 of 4 samples are constant")


def test_a_bad_sample_from_a_generator_object_fails_every_pass():
    data = load_representative_data(iter(_unit(2) + _pixels(1)), (UNIT,))
    for _ in range(2):
        with pytest.raises(QccError, match="sample 2: input 'image' has values"):
            list(data)


# ----------------------------------------------------------------------------------------------
# The user's report, end to end: a model whose metadata declares [0, 1], fed 0..255


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


def _with_normalization(model: bytes, mean: float, std: float) -> bytes:
    """`model` with a TFLITE_METADATA whose one input has NormalizationOptions{mean, std}
    (as tests/test_tflite_metadata.py builds it): the declared input range."""
    b = flatbuffers.Builder(256)
    means, stds = _float_vector(b, [mean]), _float_vector(b, [std])
    b.StartObject(2)  # NormalizationOptions { mean; std }
    b.PrependUOffsetTRelativeSlot(0, means, 0)
    b.PrependUOffsetTRelativeSlot(1, stds, 0)
    options = b.EndObject()
    b.StartObject(2)  # ProcessUnit { options_type; options }
    b.PrependUint8Slot(0, 1, 0)
    b.PrependUOffsetTRelativeSlot(1, options, 0)
    unit = b.EndObject()
    units = _offset_vector(b, [unit])
    b.StartObject(7)  # TensorMetadata { ...; process_units (4) }
    b.PrependUOffsetTRelativeSlot(4, units, 0)
    tensor = b.EndObject()
    tensors = _offset_vector(b, [tensor])
    b.StartObject(9)  # SubGraphMetadata { ...; input_tensor_metadata (2) }
    b.PrependUOffsetTRelativeSlot(2, tensors, 0)
    subgraph = b.EndObject()
    subgraphs = _offset_vector(b, [subgraph])
    b.StartObject(8)  # ModelMetadata { ...; subgraph_metadata (3) }
    b.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"M001")
    metadata = bytes(b.Output())

    m = schema.ModelT.InitFromPackedBuf(model, 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    m.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(m.buffers) - 1
    m.metadata = [*(m.metadata or []), entry]
    out = flatbuffers.Builder(len(model) + 1024)
    out.Finish(m.Pack(out), file_identifier=b"TFL3")
    return bytes(out.Output())


def test_quantize_refuses_0_255_data_for_a_model_declaring_0_1(tmp_path):
    path = tmp_path / "conv.tflite"
    path.write_bytes(_with_normalization(single_op_models()["conv_2d_same"], 0.0, 255.0))
    model = qcc.load(path)
    (spec,) = model.input_specs()
    assert spec.value_range == (0.0, 1.0)
    rng = np.random.default_rng(0)
    pixels = [[rng.integers(0, 256, spec.shape).astype(np.uint8)] for _ in range(4)]
    with pytest.raises(QccError, match=r"sample 0: input 'x' has values 0\.\.255.*e\.g\. x/255"):
        qcc.quantize(model, representative_dataset=pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", QccWarning)
        qcc.quantize(model, representative_dataset=[[x / 255.0 for x in s] for s in pixels])


# ----------------------------------------------------------------------------------------------
# Image files of every mode


def _write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG of `pixels` (uint16, HxW gray or HxWxC with C = 2 gray+alpha, 3 RGB,
    4 RGBA), written byte by byte: Pillow cannot write 16-bit color PNGs."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    h, w, c = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = pixels.astype(">u2").reshape(h, w * c)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def _ramp16(h: int, w: int) -> np.ndarray:
    """0..65535 across the image, both ends included."""
    return np.linspace(0, 65535, h * w).round().astype(np.uint16).reshape(h, w)


def _only(folder: Path, spec: InputSpec, **kwargs) -> np.ndarray:
    (sample,) = _load(folder, spec, **kwargs)
    return sample[0][0]


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_grayscale_png_maps_0_65535_onto_the_range(tmp_path, channels):
    gray = _ramp16(4, 6)
    Image.fromarray(gray).save(tmp_path / "g.png")  # Pillow writes uint16 as I;16
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "I;16"
    spec = InputSpec("image", (1, 4, 6, channels), np.float32)
    x = _only(tmp_path, spec)
    for c in range(channels):
        np.testing.assert_allclose(x[..., c], gray / 65535.0, atol=1e-6)
    assert x.min() == 0.0 and x.max() == 1.0
    x = _only(tmp_path, spec, input_range=(-1.0, 1.0))
    np.testing.assert_allclose(x[..., 0], gray / 32767.5 - 1.0, atol=1e-6)
    u8 = InputSpec("image", (1, 4, 6, channels), np.uint8)
    np.testing.assert_array_equal(_only(tmp_path, u8)[..., 0], np.rint(gray / 257.0))


def test_16_bit_grayscale_png_resized(tmp_path):
    Image.fromarray(np.full((20, 30), 32768, np.uint16)).save(tmp_path / "a.png")
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(tmp_path / "b.png")
    spec = InputSpec("image", (1, 4, 6, 3), np.float32)
    with pytest.warns(QccWarning, match="2 of 2 samples are constant"):
        a, b = (s[0] for s in _load(tmp_path, spec))
    np.testing.assert_allclose(a, 32768 / 65535, atol=1e-6)
    np.testing.assert_allclose(b, 1.0, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 3, 4])  # gray+alpha, RGB, RGBA
def test_16_bit_color_pngs_map_onto_the_8_bit_range(tmp_path, channels):
    ramp = _ramp16(4, 6)
    pixels = np.stack([ramp] * channels, axis=-1)
    if channels >= 3:
        pixels[..., 1] = 65535 - ramp  # distinct channels
    _write_png16(tmp_path / "c.png", pixels)
    x = _only(tmp_path, InputSpec("image", (1, 4, 6, 3), np.float32))
    # Pillow keeps the high byte: within one 8-bit step of the exact value, ends exact.
    np.testing.assert_allclose(x[..., 0], ramp / 65535.0, atol=1 / 255 + 1e-6)
    if channels >= 3:
        np.testing.assert_allclose(x[..., 1], 1 - ramp / 65535.0, atol=1 / 255 + 1e-6)
    assert x.min() == 0.0 and x.max() == 1.0


@pytest.mark.parametrize(
    ("name", "image", "rgb"),
    [
        ("rgba.png", Image.new("RGBA", (6, 4), (10, 200, 30, 77)), (10, 200, 30)),  # alpha dropped
        ("la.png", Image.new("LA", (6, 4), (90, 20)), (90, 90, 90)),
        ("bilevel.png", Image.new("1", (6, 4), 1), (255, 255, 255)),
        ("palette.png", Image.new("P", (6, 4), 0), (40, 50, 60)),
        ("cmyk.jpg", Image.new("CMYK", (6, 4), (0, 255, 255, 0)), (255, 0, 0)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_8_bit_modes_read_as_their_colours(tmp_path, name, image, rgb):
    kwargs = {}
    if image.mode == "P":
        image.putpalette([40, 50, 60] + [0] * 765)
        kwargs["transparency"] = 0
    image.save(tmp_path / f"0_{name}", **kwargs)
    # a second, varied image: a uniform one alone would be a dataset of one constant
    Image.fromarray(_pixels(1)[0].repeat(2, axis=0).repeat(2, axis=1)[:4, :6]).save(
        tmp_path / "1_photo.png"
    )
    spec = InputSpec("image", (1, 4, 6, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QccWarning)  # a uniform image is a constant sample
        first, _ = (s[0][0] for s in _load(tmp_path, spec))
    tolerance = 3 / 255 if name.endswith(".jpg") else 1e-6
    np.testing.assert_allclose(first, np.broadcast_to(np.array(rgb) / 255, first.shape),
                               atol=tolerance)
