"""qcc: a post-training quantization compiler for neural networks, built on xDSL.

    import qcc
    model = qcc.load("model.tflite")
    outputs = model.run([x])
"""

from qcc.api import Model, TensorInfo, load, quantize
from qcc.errors import QccError, QccWarning
from qcc.version import __version__ as __version__

__all__ = ["Model", "QccError", "QccWarning", "TensorInfo", "load", "quantize"]
