"""Build the bundled default model: a small classifier for scikit-learn's 8x8 digits.

    pip install -e ".[examples]" && python examples/build_digits_model.py

Trains a float MLP (reshape → fully_connected+relu → fully_connected+relu → fully_connected
→ softmax) with numpy on the digits data that ships inside scikit-learn, writes it as
examples/digits_float.tflite with qcc's own TFLite backend (the network is written as nn-dialect
MLIR text and exported), and saves the splits the demo uses:
examples/digits_calib.npz (calibration, inputs only) and examples/digits_test.npz (held-out
images and labels). Everything is seeded, so a rerun reproduces the files on the same machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
HIDDEN = (64, 32)


def load_splits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # [N, 8, 8, 1] in [0, 1]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    # 1200 train, 100 calibration (drawn from the training data, as in practice), rest test.
    train, test = slice(0, 1200), slice(1200, None)
    return x[train], y[train], x[train][:100], x[test], y[test]


def train(x: np.ndarray, y: np.ndarray, epochs: int = 300, lr: float = 0.01):
    """Full-batch Adam on cross-entropy; returns [(W, b), ...] with W as [out, in]."""
    rng = np.random.default_rng(SEED)
    sizes = (64, *HIDDEN, 10)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0, np.sqrt(2.0 / n_in), (n_out, n_in)).astype(np.float32)
        params.append([w, np.zeros(n_out, np.float32)])
    moments = [[np.zeros_like(p) for p in layer] for layer in params]
    velocities = [[np.zeros_like(p) for p in layer] for layer in params]
    x = x.reshape(len(x), -1)
    onehot = np.eye(10, dtype=np.float32)[y]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        acts = [x]
        for i, (w, b) in enumerate(params):
            z = acts[-1] @ w.T + b
            acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
        logits = acts[-1]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(x)
        for i in reversed(range(len(params))):
            w, _ = params[i]
            gw, gb = grad.T @ acts[i], grad.sum(0)
            if i > 0:
                grad = (grad @ w) * (acts[i] > 0)
            for j, g in enumerate((gw, gb)):
                moments[i][j] = b1 * moments[i][j] + (1 - b1) * g
                velocities[i][j] = b2 * velocities[i][j] + (1 - b2) * g * g
                m_hat = moments[i][j] / (1 - b1**step)
                v_hat = velocities[i][j] / (1 - b2**step)
                params[i][j] = (params[i][j] - lr * m_hat / (np.sqrt(v_hat) + eps)).astype(
                    np.float32
                )
    return [(w, b) for w, b in params]


def _dense(array: np.ndarray) -> str:
    shape = "x".join(str(d) for d in array.shape)
    return f'dense<"0x{array.astype("<f4").tobytes().hex().upper()}"> : tensor<{shape}xf32>'


def to_mlir(params) -> str:
    """The trained network as nn-dialect MLIR text."""
    lines = [
        'func.func @main(%image: tensor<1x8x8x1xf32> {nn.name = "image"}) '
        '-> (tensor<1x10xf32> {nn.name = "probabilities"}) {',
        '  %flat = nn.reshape %image : (tensor<1x8x8x1xf32>) -> tensor<1x64xf32> loc("flatten")',
    ]
    value, n_in = "%flat", 64
    for i, (w, b) in enumerate(params):
        n_out = w.shape[0]
        last = i == len(params) - 1
        act = "NONE" if last else "RELU"
        name = "logits" if last else f"dense_{i}/Relu"
        lines += [
            f"  %w{i} = nn.constant {{value = {_dense(w)}}} : tensor<{n_out}x{n_in}xf32>"
            f' loc("dense_{i}/kernel")',
            f"  %b{i} = nn.constant {{value = {_dense(b)}}} : tensor<{n_out}xf32>"
            f' loc("dense_{i}/bias")',
            f"  %d{i} = nn.fully_connected {value}, %w{i}, %b{i} "
            f'{{fused_activation = "{act}", keep_num_dims = false}} : '
            f"(tensor<1x{n_in}xf32>, tensor<{n_out}x{n_in}xf32>, tensor<{n_out}xf32>) "
            f'-> tensor<1x{n_out}xf32> loc("{name}")',
        ]
        value, n_in = f"%d{i}", n_out
    lines += [
        f"  %probs = nn.softmax {value} {{beta = 1.000000e+00 : f32}} : "
        '(tensor<1x10xf32>) -> tensor<1x10xf32> loc("probabilities")',
        "  func.return %probs : tensor<1x10xf32>",
        "}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from qcc.backends.tflite import export_tflite
    from qcc.fileio import atomic_write
    from qcc.irtext import parse_ir

    x_train, y_train, x_calib, x_test, y_test = load_splits()
    params = train(x_train, y_train)
    module = parse_ir(to_mlir(params))
    module.verify()
    atomic_write(HERE / "digits_float.tflite", export_tflite(module))
    np.savez(HERE / "digits_calib.npz", image=x_calib)
    np.savez(HERE / "digits_test.npz", image=x_test, label=y_test)
    logits = x_test.reshape(len(x_test), -1)
    for i, (w, b) in enumerate(params):
        logits = logits @ w.T + b
        if i < len(params) - 1:
            logits = np.maximum(logits, 0)
    accuracy = float((logits.argmax(1) == y_test).mean())
    print(f"wrote {HERE / 'digits_float.tflite'}; float test accuracy {100 * accuracy:.2f}%")


if __name__ == "__main__":
    main()
