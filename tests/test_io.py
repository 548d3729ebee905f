"""Atomic writes: readers never see half a file, and files get the umask's permissions."""

import os

import numpy as np
import pytest

from perpixel.io import atomic_write, write_json, write_png, write_text


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_umask_permissions(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        paths = [
            write_text(tmp_path / "a.txt", "x"),
            write_json(tmp_path / "b.json", {"a": 1}),
            write_png(tmp_path / "c.png", np.zeros((2, 3), np.uint8)),
        ]
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in paths] == [oct(mode)] * 3


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.txt", fail)
    assert list(tmp_path.iterdir()) == []
