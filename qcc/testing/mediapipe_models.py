"""Small ``.tflite`` models using MediaPipe's landmark/attention custom ops
(``Landmarks2TransformMatrix``, ``TransformTensorBilinear``, ``TransformLandmarks``), built
with ``qcc.testing.tflite_models.ModelBuilder``. LiteRT has no kernels for these ops, so the
models run only in qcc (the float kernels: runtime/kernels/mediapipe_transform.py).

Options are a flexbuffer map, as MediaPipe's converter writes them and as the C++ parsers
(tensorflow/lite/delegates/gpu/common/mediapipe/*.cc) read them: integer lists are *typed*
vectors (``AsTypedVector()``; ``flexbuffers.Dumps`` would write untyped vectors, which the
C++ reads as empty), floats are 32-bit. Every builder takes ``options`` as a dict (encoded
with ``flexbuffer_options``) or as raw bytes (to test malformed options).

Builders
--------

``flexbuffer_options(options: dict) -> bytes``
    The flexbuffer map of a dict of int / float / str / bool / list-of-int values.

``landmarks_to_transform_matrix_model(landmarks_shape, options, *, version=2) -> bytes``
    ``landmarks`` -> Landmarks2TransformMatrix -> ``matrix`` [1, 4, 4]. The default options
    (``default_l2tm_options(version)``) suit 10 landmarks.

``transform_tensor_bilinear_model(input_shape, output_hw, options, *, version=2, ...) -> bytes``
    ``data`` [B, H, W, C], ``matrix`` [1, 4, 4] -> TransformTensorBilinear -> ``crop``
    [1, OH, OW, C] (``custom_code="TransformTensor"`` for MediaPipe's v1 name).

``transform_landmarks_model(landmarks_shape, options, *, version=2, ...) -> bytes``
    ``landmarks``, ``matrix`` [1, 4, 4] -> TransformLandmarks -> ``landmarks_out`` (same
    shape: [1, N, D] for v2, [1, H, W, C] for v1).

``landmarks_attention_chain_model() -> bytes``
    The pattern of MediaPipe's face-landmark-with-attention model, generated:
    ``landmarks`` [1, 12, 3] (pixel coordinates of the feature map) and ``features``
    [1, 16, 16, 4] in; Landmarks2TransformMatrix v2 (a subset of 8 landmarks, rotation from
    landmarks 0 -> 3, an 8x8 crop scaled 1.5) -> ``matrix``; TransformTensorBilinear v2
    (``features``, ``matrix``) -> ``crop`` [1, 8, 8, 4]; CONV_2D 8x8 VALID with bias ->
    [1, 1, 1, 10]; RESHAPE -> [1, 5, 2] (5 landmarks regressed in crop pixels: the bias puts
    them inside the crop); TransformLandmarks v2 (that, ``matrix``) -> ``landmarks_out``
    [1, 5, 2], in feature-map pixels. Feed ``landmarks`` uniform in [2, 14] and
    ``features`` uniform in [-1, 1]: the crop is then non-degenerate and every output finite.
    ``CHAIN`` holds its shapes and options, ``landmarks_attention_chain_weights()`` the
    convolution's (filter OHWI, bias), for references.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import flexbuffers

from .tflite_models import ModelBuilder

__all__ = [
    "CHAIN",
    "default_l2tm_options",
    "flexbuffer_options",
    "landmarks_attention_chain_model",
    "landmarks_attention_chain_weights",
    "landmarks_to_transform_matrix_model",
    "transform_landmarks_model",
    "transform_tensor_bilinear_model",
]

Options = dict | bytes | None


def flexbuffer_options(options: dict) -> bytes:
    """A flexbuffer map of `options` as MediaPipe's converter writes it: ints as ints, floats
    as 32-bit floats, strings, bools, and lists of ints as typed int vectors."""
    fbb = flexbuffers.Builder()
    with fbb.Map():
        for key, value in options.items():
            fbb.Key(key)
            if isinstance(value, bool):
                fbb.Bool(value)
            elif isinstance(value, (int, np.integer)):
                fbb.Int(int(value))
            elif isinstance(value, (float, np.floating)):
                fbb.Float(float(value), byte_width=4)
            elif isinstance(value, str):
                fbb.String(value)
            elif isinstance(value, (list, tuple, np.ndarray)):
                fbb.TypedVectorFromElements([int(v) for v in value])
            else:
                raise TypeError(f"option {key!r}: cannot encode {value!r}")
    return bytes(fbb.Finish())


def _encode(options: Options) -> bytes:
    if options is None:
        return b""
    return options if isinstance(options, (bytes, bytearray)) else flexbuffer_options(options)


def default_l2tm_options(version: int = 2) -> dict:
    """Landmarks2TransformMatrix options for 10 landmarks (every required key present)."""
    if version == 1:
        return {
            "input_hw": [16, 16], "output_hw": [8, 8], "dimensions": 3,
            "landmarks_range": 16, "bbox_size_multiplier": 1.5,
            "left_rotation_idx": 0, "right_rotation_idx": 3,
            "subset": [0, 1, 2, 3, 4, 5, 6, 7],
        }
    return {
        "subset_idxs": [0, 1, 2, 3, 4, 5, 6, 7], "left_rotation_idx": 0,
        "right_rotation_idx": 3, "target_rotation_radians": 0.0,
        "output_height": 8, "output_width": 8, "scale_x": 1.5, "scale_y": 1.5,
    }


def landmarks_to_transform_matrix_model(
    landmarks_shape: Sequence[int] | None = None, options: Options = None, *, version: int = 2
) -> bytes:
    """``landmarks`` -> Landmarks2TransformMatrix -> ``matrix`` [1, 4, 4]. The landmarks are
    [1, 10, 3] (v2) or [1, 1, 1, 30] (v1) by default; `options` None: the defaults."""
    if landmarks_shape is None:
        landmarks_shape = [1, 1, 1, 30] if version == 1 else [1, 10, 3]
    if options is None:
        options = default_l2tm_options(version)
    b = ModelBuilder()
    x = b.add_input("landmarks", landmarks_shape)
    m = b.add_tensor("matrix", [1, 4, 4])
    b.add_custom_operator("Landmarks2TransformMatrix", [x], [m], _encode(options),
                          version=version)
    b.mark_output(m)
    return b.build()


def transform_tensor_bilinear_model(
    input_shape: Sequence[int] = (1, 8, 8, 3),
    output_hw: Sequence[int] = (4, 4),
    options: Options = None,
    *,
    version: int = 2,
    matrix_shape: Sequence[int] = (1, 4, 4),
    output_channels: int | None = None,
    custom_code: str = "TransformTensorBilinear",
) -> bytes:
    """``data``, ``matrix`` -> TransformTensorBilinear -> ``crop`` [1, OH, OW, C]. `options`
    None: the output size as MediaPipe writes it (``output_height``/``output_width`` for
    v2, ``mode``/``output_size`` for v1)."""
    oh, ow = output_hw
    if options is None:
        options = (
            {"output_height": oh, "output_width": ow} if version == 2
            else {"mode": "bilinear", "output_size": [oh, ow]}
        )
    channels = input_shape[3] if output_channels is None else output_channels
    b = ModelBuilder()
    data = b.add_input("data", input_shape)
    matrix = b.add_input("matrix", matrix_shape)
    crop = b.add_tensor("crop", [1, oh, ow, channels])
    b.add_custom_operator(custom_code, [data, matrix], [crop], _encode(options), version=version)
    b.mark_output(crop)
    return b.build()


def transform_landmarks_model(
    landmarks_shape: Sequence[int] = (1, 5, 3),
    options: Options = None,
    *,
    version: int = 2,
    matrix_shape: Sequence[int] = (1, 4, 4),
) -> bytes:
    """``landmarks``, ``matrix`` -> TransformLandmarks -> ``landmarks_out`` (same shape).
    v2 models carry no options unless given; v1 ones ``dimensions`` and ``scale`` may."""
    b = ModelBuilder()
    x = b.add_input("landmarks", landmarks_shape)
    matrix = b.add_input("matrix", matrix_shape)
    y = b.add_tensor("landmarks_out", landmarks_shape)
    b.add_custom_operator("TransformLandmarks", [x, matrix], [y], _encode(options),
                          version=version)
    b.mark_output(y)
    return b.build()


CHAIN = {
    "landmarks_shape": (1, 12, 3),
    "features_shape": (1, 16, 16, 4),
    "landmark_range": (2.0, 14.0),
    "crop_hw": (8, 8),
    "regressed": 5,
    "l2tm_options": {
        "subset_idxs": [0, 1, 2, 3, 4, 5, 6, 7], "left_rotation_idx": 0,
        "right_rotation_idx": 3, "target_rotation_radians": 0.0,
        "output_height": 8, "output_width": 8, "scale_x": 1.5, "scale_y": 1.5,
    },
    "ttb_options": {"output_height": 8, "output_width": 8},
}
"""Shapes and options of ``landmarks_attention_chain_model`` (all three custom ops v2)."""


def landmarks_attention_chain_weights() -> tuple[np.ndarray, np.ndarray]:
    """The chain's CONV_2D filter [10, 8, 8, 4] (OHWI) and bias [10]: small weights, and a
    bias placing the 5 regressed (x, y) landmarks inside the 8x8 crop."""
    rng = np.random.default_rng(list(b"landmarks_attention_chain"))
    oh, ow = CHAIN["crop_hw"]
    channels = CHAIN["features_shape"][3]
    out = 2 * CHAIN["regressed"]
    filt = (rng.standard_normal((out, oh, ow, channels)) * 0.05).astype(np.float32)
    bias = rng.uniform(1.0, min(oh, ow) - 1.0, size=out).astype(np.float32)
    return filt, bias


def landmarks_attention_chain_model() -> bytes:
    """Landmarks2TransformMatrix -> TransformTensorBilinear -> CONV_2D -> RESHAPE ->
    TransformLandmarks, as in MediaPipe's attention mesh model (see the module docstring)."""
    oh, ow = CHAIN["crop_hw"]
    channels = CHAIN["features_shape"][3]
    k = CHAIN["regressed"]
    b = ModelBuilder()
    landmarks = b.add_input("landmarks", CHAIN["landmarks_shape"])
    features = b.add_input("features", CHAIN["features_shape"])
    matrix = b.add_tensor("matrix", [1, 4, 4])
    b.add_custom_operator("Landmarks2TransformMatrix", [landmarks], [matrix],
                          flexbuffer_options(CHAIN["l2tm_options"]), version=2)
    crop = b.add_tensor("crop", [1, oh, ow, channels])
    b.add_custom_operator("TransformTensorBilinear", [features, matrix], [crop],
                          flexbuffer_options(CHAIN["ttb_options"]), version=2)
    filt, bias = landmarks_attention_chain_weights()
    conv_opts = schema.Conv2DOptionsT()
    conv_opts.padding = schema.Padding.VALID
    conv_opts.strideH = conv_opts.strideW = 1
    conv_opts.dilationHFactor = conv_opts.dilationWFactor = 1
    conv_opts.fusedActivationFunction = schema.ActivationFunctionType.NONE
    conv = b.add_op(
        schema.BuiltinOperator.CONV_2D,
        [crop, b.add_constant("regressor/filter", filt), b.add_constant("regressor/bias", bias)],
        [1, 1, 1, 2 * k], conv_opts, name="regressor",
    )
    reshape_opts = schema.ReshapeOptionsT()
    reshape_opts.newShape = [1, k, 2]
    shape = b.add_constant("regressed/shape", np.array([1, k, 2], np.int32))
    regressed = b.add_op(schema.BuiltinOperator.RESHAPE, [conv, shape], [1, k, 2],
                         reshape_opts, name="regressed")
    out = b.add_tensor("landmarks_out", [1, k, 2])
    b.add_custom_operator("TransformLandmarks", [regressed, matrix], [out], version=2)
    b.mark_output(out)
    return b.build()
