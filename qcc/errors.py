"""The exception and warning types qcc raises for bad input; the driver prints each message as
one line (`qcc: error: ...`, `qcc: warning: ...`)."""


class QccError(Exception):
    """A user-facing error: bad input file, bad option, unsupported model. The message is one
    line that names the problem (and the file or op at fault)."""


class QccWarning(UserWarning):
    """Something that may be intended but is probably a mistake (calibration samples that are
    constant, a pipeline that leaves the model float, ...). Library code raises it with
    `warnings.warn(message, QccWarning)`; the `qcc` driver prints it as one line on stderr,
    Python callers see it through the `warnings` module (and can turn it into an error with
    `warnings.simplefilter("error", QccWarning)`)."""
