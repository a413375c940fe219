"""atomic_write: complete or absent, never replacing unless asked, ordinary permissions."""

import os

import pytest

from gan.fileio import atomic_write


def test_refuses_to_replace_and_keeps_the_old_bytes(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write(str(path), lambda h: h.write(b"first"), overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write(str(path), lambda h: h.write(b"second"), overwrite=False)
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["a.bin"]
    atomic_write(str(path), lambda h: h.write(b"third"), overwrite=True)
    assert path.read_bytes() == b"third"


def test_a_failed_write_leaves_nothing(tmp_path):
    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError):
        atomic_write(str(tmp_path / "b.bin"), explode, overwrite=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_files_get_ordinary_permissions(tmp_path):
    """Farm nodes and other users must be able to read the frames (mkstemp alone gives 0600)."""
    path = tmp_path / "c.bin"
    atomic_write(str(path), lambda h: h.write(b"x"), overwrite=False)
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
