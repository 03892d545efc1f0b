"""MediaPipe's Convolution2DTransposeBias: qcc's float kernel, and canonicalize-custom-ops.

The oracle is LiteRT's own builtin TRANSPOSE_CONV (version 3, with its bias input) on the same
weights, run with the BUILTIN_REF resolver: the custom op's definition
(mediapipe/util/tflite/operations/transpose_conv_bias.cc) is that op with a bias, its output
size and padding derived from the input size. Every case of a sweep over input sizes, filter
sizes, strides and both paddings:

* the float executor runs the custom op (as shipped: raw TfLiteTransposeConvParams options)
  and equals LiteRT's TRANSPOSE_CONV + bias;
* canonicalize-custom-ops rewrites it into nn.transpose_conv (every case of the sweep: the two
  paddings always agree), and the exported .tflite has no custom op and runs in LiteRT with
  BUILTIN_REF and the default resolver, equal to the custom op's output;
* quantized by the int8 presets (xnnpack and int8-only), the file runs under BUILTIN_REF, and
  qcc's int8 runtime equals it bit for bit.

Malformed options are refused with one line, by the executor and by the `qcc` command.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import AUTO, REF, custom_ops, run_litert, run_qcc

import qcc
from qcc.backends.numba import compile_module
from qcc.backends.tflite import export_tflite
from qcc.dialects import nn
from qcc.frontends.tflite import import_tflite
from qcc.pipeline import build_pipeline
from qcc.runtime.errors import InvalidOpError
from qcc.runtime.executor import Executor
from qcc.testing.tflite_models import ModelBuilder

Op = schema.BuiltinOperator
SAME, VALID = 1, 2  # TfLitePadding


def mediapipe_output_hw(in_hw, kernel_hw, stride_hw, padding: int) -> tuple[int, int]:
    """transpose_conv_bias.cc Prepare: stride * (in - 1) + filter - pad_total."""
    out = []
    for size, k, s in zip(in_hw, kernel_hw, stride_hw):
        pad = max(0, k - (size - 1) % s - 1) if padding == SAME else 0
        out.append(s * (size - 1) + k - pad)
    return tuple(out)


def _weights(n, h, w, c, o, kh, kw, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, h, w, c)).astype(np.float32)
    wts = (rng.standard_normal((o, kh, kw, c)) / np.sqrt(kh * kw * c)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, o).astype(np.float32)
    return x, wts, bias


def custom_model(x_shape, wts, bias, stride_hw, padding, options: bytes | None = None) -> bytes:
    """A one-op model: Convolution2DTransposeBias as MediaPipe's converter writes it (raw
    TfLiteTransposeConvParams bytes: padding, stride_width, stride_height)."""
    n, h, w, _ = x_shape
    oh, ow = mediapipe_output_hw((h, w), wts.shape[1:3], stride_hw, padding)
    b = ModelBuilder()
    x = b.add_input("input", x_shape)
    wt = b.add_constant("segment/Kernel", wts)
    bs = b.add_constant("segment/Bias", bias)
    out = b.add_tensor("segment", (n, oh, ow, wts.shape[0]))
    if options is None:
        options = struct.pack("<3i", padding, stride_hw[1], stride_hw[0])
    b.add_custom_operator("Convolution2DTransposeBias", [x, wt, bs], [out], options)
    b.mark_output(out)
    return b.build()


def builtin_model(x_shape, wts, bias, stride_hw, padding) -> bytes:
    """The oracle: builtin TRANSPOSE_CONV version 3 (output_shape, weights, input, bias)."""
    n, h, w, _ = x_shape
    oh, ow = mediapipe_output_hw((h, w), wts.shape[1:3], stride_hw, padding)
    b = ModelBuilder()
    x = b.add_input("input", x_shape)
    shape = b.add_constant("output_shape", np.array([n, oh, ow, wts.shape[0]], np.int32))
    wt = b.add_constant("kernel", wts)
    bs = b.add_constant("bias", bias)
    opts = schema.TransposeConvOptionsT()
    opts.padding = schema.Padding.SAME if padding == SAME else schema.Padding.VALID
    opts.strideH, opts.strideW = stride_hw
    out = b.add_op(Op.TRANSPOSE_CONV, [shape, wt, x, bs], (n, oh, ow, wts.shape[0]), opts,
                   name="out", version=3)
    b.mark_output(out)
    return b.build()


CASES = [
    (n, hw, k, s, pad)
    for n, hw, k, s, pad in itertools.product(
        (1, 2), ((5, 7), (8, 8)), ((2, 2), (3, 3), (4, 1), (1, 1)), ((2, 2), (1, 1), (3, 2)),
        (SAME, VALID),
    )
]


@pytest.mark.parametrize("n,hw,kernel,stride,padding", CASES)
def test_kernel_and_rewrite_equal_litert_transpose_conv_with_bias(n, hw, kernel, stride, padding):
    c, o = 3, 4
    x, wts, bias = _weights(n, *hw, c, o, *kernel, seed=hash((n, hw, kernel, stride)) % 1000)
    ref = run_litert(builtin_model(x.shape, wts, bias, stride, padding), [x], REF)[0]

    module = import_tflite(custom_model(x.shape, wts, bias, stride, padding))
    ours = Executor(module).run([x])[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)

    _canonicalize(module)
    ops = [op for op in module.walk() if isinstance(op, (nn.TransposeConvOp, nn.GenericOp))]
    assert [type(op) for op in ops] == [nn.TransposeConvOp]
    assert ops[0].bias is not None
    np.testing.assert_allclose(Executor(module).run([x])[0], ours, rtol=1e-6, atol=1e-6)
    content = export_tflite(module)
    assert custom_ops(content) == []
    for resolver in (REF, AUTO):
        np.testing.assert_allclose(run_litert(content, [x], resolver)[0], ours,
                                   rtol=1e-5, atol=1e-5)


def _canonicalize(module) -> None:
    for p in build_pipeline("builtin.module(canonicalize-custom-ops)"):
        p.apply(None, module)
    module.verify()


@pytest.mark.parametrize("target", ["xnnpack", "int8-only"])
def test_quantized_runs_under_builtin_ref_and_int8_runtime_is_bit_exact(target, tmp_path):
    x, wts, bias = _weights(1, 6, 6, 8, 3, 3, 3, seed=7)
    path = tmp_path / "decoder.tflite"
    path.write_bytes(custom_model(x.shape, wts, bias, (2, 2), SAME))
    rng = np.random.default_rng(1)
    data = [[rng.uniform(-1, 1, x.shape).astype(np.float32)] for _ in range(8)]
    q = qcc.quantize(qcc.load(path), representative_dataset=data, target=target,
                     io_dtype="int8")
    content = q.to_tflite()
    assert custom_ops(content) == []
    kinds = [type(op) for op in q.module.walk() if isinstance(op, (nn.NNOp,))]
    assert nn.TransposeConvOp in kinds and nn.GenericOp not in kinds
    scale, zero = _input_quantization(content)
    x8 = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    ref = run_litert(content, [x8], REF)[0]
    assert ref.dtype == np.int8
    np.testing.assert_array_equal(compile_module(q.module).run([x8])[0], ref)
    np.testing.assert_array_equal(run_litert(content, [x8], AUTO)[0].shape, ref.shape)


def _input_quantization(content: bytes) -> tuple[float, int]:
    from conftest import litert_input_details

    scale, zero = litert_input_details(content)[0]["quantization"]
    return scale, zero


def test_qcc_command_quantizes_it_without_custom_ops(tmp_path):
    x, wts, bias = _weights(1, 6, 6, 4, 2, 2, 2, seed=5)
    path = tmp_path / "decoder.tflite"
    path.write_bytes(custom_model(x.shape, wts, bias, (2, 2), SAME))
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "calib.npz", input=rng.uniform(-1, 1, (6, *x.shape[1:])).astype(np.float32))
    out = tmp_path / "out.tflite"
    result = run_qcc(str(path), "--calibration", str(tmp_path / "calib.npz"), "--mode=int8-only",
                     "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert custom_ops(out.read_bytes()) == []
    assert np.isfinite(run_litert(out.read_bytes(), [x], REF)[0]).all()


def test_malformed_options_stay_as_shipped_and_are_refused_in_one_line(tmp_path):
    x, wts, bias = _weights(1, 4, 4, 2, 2, 2, 2, seed=3)
    module = import_tflite(custom_model(x.shape, wts, bias, (2, 2), SAME, options=b"\x01\0\0\0"))
    _canonicalize(module)
    generic = [op for op in module.walk() if isinstance(op, nn.GenericOp)]
    assert len(generic) == 1  # kept as shipped
    with pytest.raises(InvalidOpError, match=r"custom op 'Convolution2DTransposeBias': its "
                       r"options must be a TfLiteTransposeConvParams struct .*got 4 bytes"):
        Executor(module)
    path = tmp_path / "bad.tflite"
    path.write_bytes(custom_model(x.shape, wts, bias, (2, 2), SAME, options=b"\x01\0\0\0"))
    np.savez(tmp_path / "calib.npz", input=x)
    result = run_qcc(str(path), "--calibration", str(tmp_path / "calib.npz"), "-o",
                     str(tmp_path / "out.tflite"))
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("qcc: error: annotate-ranges: cannot run the float model: "
                               "custom op 'Convolution2DTransposeBias': its options"), lines
    assert lines[0].endswith('(at "segment")'), lines
    assert not (tmp_path / "out.tflite").exists()
