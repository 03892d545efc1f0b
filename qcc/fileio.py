"""Reading inputs and writing outputs safely: outputs appear whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qcc.errors import QccError


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or a QccError naming why it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise QccError(f"{p}: no such file")
    if p.is_dir():
        raise QccError(f"{p}: is a directory, expected a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise QccError(f"{p}: cannot read ({e.strerror})") from None
    if not data:
        raise QccError(f"{p}: file is empty")
    return data


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename, so a
    failure never leaves a half-written file behind."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise QccError(f"{target}: folder {folder} does not exist")
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
