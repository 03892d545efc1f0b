"""qcc: a post-training quantization compiler for neural networks, built on xDSL.

    import qcc
    model = qcc.load("model.tflite")
    outputs = model.run([x])
"""

from qcc.api import Model, TensorInfo, load, quantize
from qcc.errors import QccError, QccWarning

__all__ = ["Model", "QccError", "QccWarning", "TensorInfo", "load", "quantize"]
__version__ = "0.1.0"
