"""Errors the runtime raises. Each message is one line naming the problem and, where there is
one, the op at fault with its location (the source tensor name)."""

from __future__ import annotations


class ExecutorError(Exception):
    """Base of the runtime's errors."""


class MissingKernelError(ExecutorError, NotImplementedError):
    """An op in the program has no kernel (a custom op, or an op the runtime does not know).
    Raised when the program is compiled, never in the middle of a run."""

    def __init__(self, message: str, op_name: str = "", location: str | None = None):
        super().__init__(message)
        self.op_name = op_name
        self.location = location


class InputMismatchError(ExecutorError, ValueError):
    """`Executor.run` was given the wrong number of inputs, or an input of the wrong shape or
    element type."""


class InvalidOpError(ExecutorError, ValueError):
    """An op's kernel refused the op as written in the model: options it cannot decode, or
    shapes its definition rejects (e.g. a custom op's malformed flexbuffer options). Raised
    when the program is compiled, with the op's location."""
