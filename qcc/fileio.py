"""Reading inputs and writing outputs without ever losing a user's data.

The rules every qcc output follows (`qcc -o`, `Model.save`, `--emit=numba`):

* a new path or an existing **regular file** is replaced atomically: the data goes to a
  temporary file in the same folder, which is renamed over the target, so the target holds
  either its old bytes or the complete new ones, never a half-written file; a replaced file
  keeps its permission bits;
* a **symlink** is followed: its target is written by these rules, the link stays a link;
* a **character device** or a **FIFO** is written through (opened and written, never
  replaced), and `-` means standard output;
* a folder, a block device or a socket is never written as a file: that is an error;
* an output that is the same file as one of the inputs (same path, or the same inode through
  a hard link or symlink) is refused before anything is written;
* an artifact folder (`--emit=numba`) is written by `write_artifact_folder`: a new folder
  appears whole (a temporary folder renamed into place); an existing folder is written into
  file by file, each atomically, and only if it is empty or holds a qcc artifact (a manifest,
  `.qcc-artifact`, lists the files qcc wrote); anything else needs `force`, and even then
  only qcc's own files are replaced. An artifact file may sit one subfolder deep
  (``numba-cache-x86-64-v3/model.f-12.py311.nbi``: a carried Numba cache): the manifest lists
  it by that relative path, and the subfolder follows the same rules (never a symlink; only
  the files qcc listed in it are replaced or removed; it is removed only when that leaves it
  empty). The artifact folder itself is never deleted or renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from qcc.errors import QccError

STDIO = "-"
"""The path that names standard input (for inputs) or standard output (for outputs)."""

ARTIFACT_MANIFEST = ".qcc-artifact"
"""The file that marks a folder as a qcc artifact and lists the files qcc wrote there."""


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or a QccError naming why it cannot be read."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise QccError(f"{p}: no such file") from None
    except OSError as e:
        raise QccError(f"{p}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise QccError(f"{p}: is a directory, expected a file")
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as e:
        raise QccError(f"{p}: cannot read ({e.strerror or e})") from None
    if not data:
        raise QccError(f"{p}: file is empty")
    return data


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of the file `path` names (following symlinks), None if it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_not_an_input(
    output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None]
) -> None:
    """Refuse an output that is one of the inputs: the same path, or the same file reached
    through a hard link or a symlink. Raises QccError naming both."""
    if os.fspath(output) == STDIO:
        return
    out_id = _identity(output)
    out_abs = os.path.realpath(output)
    for source in inputs:
        if source is None or os.fspath(source) == STDIO:
            continue
        same = os.path.realpath(source) == out_abs or (
            out_id is not None and _identity(source) == out_id
        )
        if same:
            raise QccError(
                f"{output}: is the input {source}; qcc never overwrites its input, "
                "choose another output name"
            )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _write_through(target: Path, payload: bytes) -> None:
    """Write to a character device or FIFO in place (it cannot be replaced, only written)."""
    try:
        with open(target, "wb") as f:
            f.write(payload)
    except OSError as e:
        raise QccError(f"{target}: cannot write ({e.strerror or e})") from None


def _atomic_replace(target: Path, payload: bytes, mode: int | None) -> None:
    """Write `payload` to a temporary file beside `target` and rename it over `target`."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise QccError(f"{target}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise QccError(f"{target}: cannot write in {folder} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        if mode is None:  # a new file: the usual mode, as open() would create it
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise QccError(f"{target}: cannot write ({e.strerror or e})") from None
        raise


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """Write `data` to `path` by the rules in the module docstring: an atomic replace for a
    regular file or a new path (symlinks followed), write-through for a character device,
    a FIFO or `-` (standard output); refuse folders, other special files and the `inputs`."""
    payload = data.encode() if isinstance(data, str) else data
    if os.fspath(path) == STDIO:
        stream = sys.stdout.buffer
        stream.write(payload)
        stream.flush()
        return
    check_not_an_input(path, inputs)
    link = Path(path)
    target = Path(os.path.realpath(link)) if link.is_symlink() else link
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:  # a symlink loop, a path through a file, no permission...
        raise QccError(f"{path}: cannot write ({e.strerror or e})") from None
    if st is None:
        _atomic_replace(target, payload, None)
    elif stat.S_ISREG(st.st_mode):
        _atomic_replace(target, payload, stat.S_IMODE(st.st_mode))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        _write_through(target, payload)
    else:
        raise QccError(f"{path}: is {_kind(st.st_mode)}; give a file name to write to")


# ------------------------------------------------------------------------------------------
# Artifact folders
# ------------------------------------------------------------------------------------------


def artifact_name_ok(name: object) -> bool:
    """True for a file name an artifact may hold: ``name`` or ``folder/name`` (one subfolder
    deep), no empty, ``.`` or ``..`` part, no backslash or NUL."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    parts = name.split("/")
    return len(parts) <= 2 and all(p and p not in (".", "..") for p in parts) and (
        len(parts) == 1 or parts[0] != ARTIFACT_MANIFEST
    )


def _manifest(folder: Path) -> list[str] | None:
    """The file names a qcc manifest in `folder` lists, or None if there is none."""
    try:
        text = (folder / ARTIFACT_MANIFEST).read_text()
        data = json.loads(text)
    except (OSError, ValueError, UnicodeDecodeError):
        return _unlisted_artifact(folder)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or data.get("generator") != "qcc":
        return None
    return [f for f in files if artifact_name_ok(f)]


_LEGACY_ARTIFACT_HEADER = b'"""qcc Numba artifact:'
"""How model.py began in artifacts written before the manifest existed."""


def _unlisted_artifact(folder: Path) -> list[str] | None:
    """The files of an artifact written before manifests (model.py + weights.npz, model.py
    starting with qcc's header), or None."""
    try:
        with open(folder / "model.py", "rb") as f:
            head = f.read(len(_LEGACY_ARTIFACT_HEADER))
    except OSError:
        return None
    return ["model.py", "weights.npz"] if head == _LEGACY_ARTIFACT_HEADER else None


def _manifest_bytes(files: Iterable[str]) -> bytes:
    from qcc.version import __version__

    body = {"generator": "qcc", "version": __version__, "files": sorted(files)}
    return (json.dumps(body, indent=1) + "\n").encode()


def write_artifact_folder(
    directory: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """Write `files` (name -> bytes) into the folder `directory` by the module's rules.

    A new folder appears whole. An existing folder must be empty or a qcc artifact (it has the
    manifest); with `force`, any folder is accepted. In an existing folder only the files in
    `files`, the manifest, and files an earlier qcc run listed in its manifest are touched:
    each of `files` is replaced atomically, stale files of the old manifest are removed, every
    other file stays as it was. A name may be ``folder/name`` (one subfolder deep,
    `artifact_name_ok`): the subfolder is created, and removed only when the stale files qcc
    listed in it were its last ones."""
    names = list(files)
    for name in names:
        if not artifact_name_ok(name) or name == ARTIFACT_MANIFEST:
            raise ValueError(f"not an artifact file name: {name!r}")
    inputs = list(inputs)
    link = Path(directory)
    target = Path(os.path.realpath(link)) if link.is_symlink() else link
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise QccError(f"{directory}: cannot write ({e.strerror or e})") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise QccError(f"{directory}: exists and is not a folder (--emit=numba writes a folder)")
    payloads = dict(files)
    payloads[ARTIFACT_MANIFEST] = _manifest_bytes(names)
    for name in payloads:
        check_not_an_input(target / name, inputs)

    if st is None:
        parent = target.absolute().parent
        if not parent.is_dir():
            raise QccError(f"{directory}: folder {parent} does not exist")
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            raise QccError(f"{directory}: cannot write in {parent} ({e.strerror or e})") from None
        try:
            for name, payload in payloads.items():
                if "/" in name:
                    (tmp / name).parent.mkdir(exist_ok=True)
                (tmp / name).write_bytes(payload)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            os.rename(tmp, target)  # fails, rather than replaces, if the folder appeared
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):
                raise QccError(f"{directory}: cannot write ({e.strerror or e})") from None
            raise
        return

    old = _manifest(target)
    # what qcc wrote here: the files its manifest lists (and the subfolders they sit in)
    ours = {n.split("/")[0] for n in old or []}
    try:
        others = [e.name for e in target.iterdir() if e.name not in ours]
    except OSError as e:
        raise QccError(f"{directory}: cannot list folder ({e.strerror or e})") from None
    if old is None and others and not force:
        shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise QccError(
            f"{directory}: folder is not empty and holds no qcc artifact ({shown}); choose a "
            "new or empty folder, or pass --force to write qcc's files beside what is there"
        )
    mine = set(old or []) | ({ARTIFACT_MANIFEST} if old is not None else set())
    for name in payloads:
        if name not in mine and os.path.lexists(target / name):
            raise QccError(
                f"{target / name}: exists and qcc did not write it (its manifest does not list "
                "it); qcc will not replace it, even with --force"
            )
    subfolders = sorted({n.split("/")[0] for n in payloads if "/" in n})
    for sub in subfolders:
        existing = target / sub
        if existing.is_symlink() or (existing.exists() and not existing.is_dir()):
            raise QccError(f"{existing}: exists and is not a folder; qcc will not write into it")
    for name in payloads:
        existing = target / name
        if existing.is_symlink() or (existing.exists() and not existing.is_file()):
            raise QccError(f"{existing}: exists and is not a regular file; qcc will not replace it")
    for sub in subfolders:
        try:
            (target / sub).mkdir(exist_ok=True)
        except OSError as e:
            raise QccError(f"{target / sub}: cannot create ({e.strerror or e})") from None
    # Data files first, the manifest last: a folder with a manifest is always complete.
    for name, payload in payloads.items():
        if name != ARTIFACT_MANIFEST:
            atomic_write(target / name, payload)
    emptied = set()
    for stale in sorted(set(old or []) - set(payloads)):
        path = target / stale
        if "/" in stale:
            parent = path.parent
            if parent.is_symlink() or not parent.is_dir():
                continue  # never reach through a link, nor into what is not a folder
            emptied.add(parent)
        if path.is_file() and not path.is_symlink():
            try:
                path.unlink()
            except OSError:
                pass
    for parent in sorted(emptied):
        try:
            parent.rmdir()  # only an empty folder: a user's file in it keeps it
        except OSError:
            pass
    atomic_write(target / ARTIFACT_MANIFEST, payloads[ARTIFACT_MANIFEST])
