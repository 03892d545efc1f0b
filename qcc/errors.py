"""The one exception type qcc raises for bad input; the driver prints its message as one line."""


class QccError(Exception):
    """A user-facing error: bad input file, bad option, unsupported model. The message is one
    line that names the problem (and the file or op at fault)."""
