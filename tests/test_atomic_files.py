"""Output files are written whole or not at all, with ordinary permissions; plots mark the band the
grid resolves."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import wavesolve
from wavesolve.files import atomic_path
from wavesolve.plots import accurate_bandwidth


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_finished_file_has_umask_permissions(tmp_path):
    """A result is readable by whoever may read an ordinary new file (0666 & ~umask), not 0600."""
    old = os.umask(0o022)
    try:
        path = wavesolve.Result(44100.0, {"a": np.zeros(4)}, {"a": np.zeros(3)}).save(tmp_path / "r.h5")
    finally:
        os.umask(old)
    assert _mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_accurate_band_is_c_over_10h():
    """c/(10h): 10 cells per wavelength (README, PHYSICS.md dispersion), from the scene's medium."""
    result = wavesolve.Result(44100.0, {}, {}, scene_text="[medium]\nsound_speed = 340.0\n",
                              metadata={"cell_size": 0.01})
    assert accurate_bandwidth(result) == pytest.approx(3400.0)
    assert accurate_bandwidth(wavesolve.Result(44100.0, {}, {})) is None
