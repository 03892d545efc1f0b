"""qcc never loses a user's data: the output rules of qcc.fileio, driven through the `qcc`
command and the Python API. Every special file here (FIFO, symlink, character device) is made
inside the test's own temporary folder; no test points at /dev/null or any system path."""

from __future__ import annotations

import os
import pty
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_qcc

import qcc
from qcc.errors import QccError
from qcc.fileio import ARTIFACT_MANIFEST, atomic_write, write_artifact_folder
from qcc.testing.tflite_models import chained_models, single_op_models

@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "model.tflite"
    path.write_bytes(chained_models()["residual_classifier"])
    return path


@pytest.fixture(scope="module")
def calibration(tmp_path_factory, model: Path) -> Path:
    m = qcc.load(model)
    spec = m.inputs[0]
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("c") / "calib.npz"
    np.savez(path, rng.uniform(-1, 1, (4, *spec.shape[1:])).astype(np.float32))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- regular files --------------------------------------------------------------------------


def test_output_equal_to_input_is_refused(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m.tflite"
    copy.write_bytes(model.read_bytes())
    before = copy.read_bytes()
    assert_one_line_error(run_qcc(str(copy), "-o", str(copy)), "is the input")
    assert copy.read_bytes() == before


def test_output_hard_link_or_symlink_to_input_is_refused(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m.tflite"
    copy.write_bytes(model.read_bytes())
    os.link(copy, tmp_path / "hard.tflite")
    (tmp_path / "soft.tflite").symlink_to(copy)
    before = copy.read_bytes()
    for out in ("hard.tflite", "soft.tflite"):
        assert_one_line_error(
            run_qcc(str(copy), "-o", str(tmp_path / out)), "is the input"
        )
    # the input reached through a symlink is refused as an output too
    assert_one_line_error(run_qcc(str(tmp_path / "soft.tflite"), "-o", str(copy)), "is the input")
    assert copy.read_bytes() == before
    assert (tmp_path / "soft.tflite").is_symlink()


def test_output_equal_to_calibration_file_is_refused(
    model: Path, calibration: Path, tmp_path: Path
) -> None:
    calib = tmp_path / "c.npz"
    calib.write_bytes(calibration.read_bytes())
    assert_one_line_error(
        run_qcc(str(model), "--calibration", str(calib), "--emit=tflite", "-o", str(calib)),
        "is the input",
    )
    assert calib.read_bytes() == calibration.read_bytes()


def test_existing_regular_file_is_replaced_atomically_keeping_its_mode(
    model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.tflite"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    result = run_qcc(str(model), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes()[4:8] == b"TFL3"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tflite"]  # no temporaries


def test_symlink_output_is_followed(model: Path, tmp_path: Path) -> None:
    target = tmp_path / "real" / "out.tflite"
    target.parent.mkdir()
    link = tmp_path / "link.tflite"
    link.symlink_to(target)  # dangling: the target is created
    result = run_qcc(str(model), "-o", str(link))
    assert result.returncode == 0, result.stderr.decode()
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes()[4:8] == b"TFL3"


def test_fifo_output_is_written_through(model: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run_qcc(str(model), "--emit=tflite", "-o", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO, not replaced by a file
    assert received and received[0][4:8] == b"TFL3"


def _character_device(tmp_path: Path) -> tuple[Path, int, int]:
    """A path inside tmp_path that leads to a character device of the test's own: a symlink to
    the slave side of a fresh pseudo-terminal (a device node made with mknod cannot open a
    pty slave: devpts refuses it); returns it with the master and slave descriptors."""
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)
    node = tmp_path / "tty_out"
    node.symlink_to(os.ttyname(slave))
    return node, master, slave


def test_character_device_output_is_written_through(model: Path, tmp_path: Path) -> None:
    node, master, slave = _character_device(tmp_path)
    chunks: list[bytes] = []

    def drain() -> None:  # the pty buffer is small: read while qcc writes
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            chunks.append(chunk)
            if b"\n}\n" in b"".join(chunks[-2:]):
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result = run_qcc(str(model), "--emit=mlir", "-o", str(node))
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISCHR(os.stat(node).st_mode)  # still a device
    reader.join(timeout=10)
    os.close(slave)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "func.func @main" in text and text.rstrip().endswith("}")


def test_stdout_output(model: Path) -> None:
    result = run_qcc(str(model), "--emit=tflite", "-o", "-")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout[4:8] == b"TFL3"


def test_folder_as_file_output_is_an_error(model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "adir.tflite"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert_one_line_error(run_qcc(str(model), "-o", str(folder)), "is a folder")
    assert snapshot(tmp_path) == {"adir.tflite/keep.txt": b"mine"}


def test_failed_run_leaves_no_file(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tflite"
    assert_one_line_error(run_qcc(str(model), "--calibration", str(tmp_path / "missing.npz"), "-o",
                           str(out)), "missing.npz")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_rules_in_python(tmp_path: Path) -> None:
    out = tmp_path / "a.mlir"
    atomic_write(out, "one")
    atomic_write(out, "two")
    assert out.read_text() == "two"
    with pytest.raises(QccError, match="is the input"):
        atomic_write(out, "three", inputs=[out])
    with pytest.raises(QccError, match="is a folder"):
        atomic_write(tmp_path, "x")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(QccError, match="cannot write"):
        atomic_write(loop, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mlir", "loop"]


# -- Python API -------------------------------------------------------------------------------


def test_save_never_overwrites_the_loaded_file(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m.tflite"
    copy.write_bytes(model.read_bytes())
    m = qcc.load(copy)
    q = qcc.quantize(m, mode="dynamic-range")
    with pytest.raises(QccError, match="is the input"):
        q.save(copy)
    assert copy.read_bytes() == model.read_bytes()


@pytest.mark.parametrize("name", ["m.TFLITE", "m.Mlir"])
def test_save_suffix_is_case_insensitive(model: Path, tmp_path: Path, name: str) -> None:
    m = qcc.load(model)
    m.save(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    assert (data[4:8] == b"TFL3") == name.lower().endswith(".tflite")


@pytest.mark.parametrize("name", ["m.onnx", "noext"])
def test_save_unknown_suffix(model: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(QccError, match="name it .tflite or .mlir"):
        qcc.load(model).save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# -- --emit=numba folders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def int8_mlir(tmp_path_factory) -> Path:
    """A small quantized module (int8 conv) whose artifact needs no float island."""
    folder = tmp_path_factory.mktemp("q")
    m = folder / "conv.tflite"
    m.write_bytes(single_op_models()["conv_2d_same_relu6"])
    spec = qcc.load(m).inputs[0]
    data = [[np.random.default_rng(i).uniform(-1, 1, spec.shape).astype(np.float32)]
            for i in range(3)]
    q = qcc.quantize(qcc.load(m), representative_dataset=data)
    path = folder / "conv_int8.mlir"
    q.save(path)
    return path


def test_numba_new_folder(int8_mlir: Path, tmp_path: Path) -> None:
    out = tmp_path / "art"
    result = run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [ARTIFACT_MANIFEST, "kernels.py.xz", "model.py", "weights.npz"]
    )


def test_numba_refuses_a_foreign_folder_and_force_keeps_other_files(
    int8_mlir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(out)
    assert_one_line_error(run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out)), "--force")
    assert snapshot(out) == before
    result = run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out), "--force")
    assert result.returncode == 0, result.stderr.decode()
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {"model.py", "kernels.py.xz", "weights.npz", ARTIFACT_MANIFEST} <= set(after)


def test_numba_rewrites_its_own_artifact_only(int8_mlir: Path, tmp_path: Path) -> None:
    out = tmp_path / "art"
    assert run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out)).returncode == 0
    (out / "README.txt").write_text("added by the user")
    (out / "model.py").write_text("stale")
    result = run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert (out / "README.txt").read_text() == "added by the user"
    assert (out / "model.py").read_text().startswith('"""qcc Numba artifact')


def test_numba_current_folder(int8_mlir: Path, tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "mine.txt").write_text("keep")
    assert_one_line_error(run_qcc(str(int8_mlir), "--emit=numba", "-o", ".", cwd=work), "--force")
    assert sorted(p.name for p in work.iterdir()) == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_qcc(str(int8_mlir), "--emit=numba", "-o", ".", cwd=empty)
    assert result.returncode == 0, result.stderr.decode()
    assert (empty / "model.py").is_file()
    assert not any(p.name.startswith(".") and p.name != ARTIFACT_MANIFEST
                   for p in tmp_path.rglob("*"))


def test_artifact_folder_rules_in_python(tmp_path: Path) -> None:
    out = tmp_path / "a"
    write_artifact_folder(out, {"model.py": b"1", "weights.npz": b"2"})
    # an earlier artifact's stale file (listed in its manifest) is removed, others are kept
    write_artifact_folder(out, {"model.py": b"1", "extra.bin": b"3"})
    (out / "user.txt").write_text("u")
    write_artifact_folder(out, {"model.py": b"4"})
    assert sorted(p.name for p in out.iterdir()) == [ARTIFACT_MANIFEST, "model.py", "user.txt"]
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(QccError, match="not a folder"):
        write_artifact_folder(target, {"model.py": b""})
    link = tmp_path / "link"
    link.symlink_to(out)
    write_artifact_folder(link, {"model.py": b"5"})
    assert link.is_symlink() and (out / "model.py").read_bytes() == b"5"


def test_numba_never_replaces_a_same_named_file_it_did_not_write(int8_mlir, tmp_path):
    """A folder holding the user's own model.py (or .qcc-artifact) is not an artifact: qcc
    refuses it, and with --force still leaves those files alone rather than replace them."""
    for name in ("model.py", ".qcc-artifact"):
        out = tmp_path / name.strip(".")
        out.mkdir()
        (out / name).write_text("mine\n")
        assert_one_line_error(run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out)),
                              "holds no qcc artifact")
        assert_one_line_error(run_qcc(str(int8_mlir), "--emit=numba", "-o", str(out), "--force"),
                              "qcc did not write it")
        assert (out / name).read_text() == "mine\n"
        assert sorted(p.name for p in out.iterdir()) == [name]
