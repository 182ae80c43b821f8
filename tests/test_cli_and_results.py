"""End to end as a user runs it: run → HDF5 + WAV, info, plot; the result-file contract."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

import wavesolve
from wavesolve.constants import DEFAULT_LAYER_CELLS, WAV_PEAK_DBFS
from wavesolve.grid import Z_CELLS_MULTIPLE

SCENE = """
[simulation]
duration = 0.003
sample_rate = 44100.0
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "gaussian_derivative", frequency = 500.0, amplitude = 10.0 }
[[listeners]]
name = "left"
position = [-0.1, 0.0, 0.0]
[[listeners]]
name = "up"
position = [0.0, 0.0, 0.1]
[output]
hdf5 = "result.h5"
wav = "sound.wav"
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("run")
    scene = d / "scene.toml"
    scene.write_text(SCENE)
    proc = subprocess.run([sys.executable, "-m", "wavesolve.cli", "run", str(scene), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return d, scene


def test_result_file_contract(ran):
    d, scene = ran
    with h5py.File(d / "result.h5", "r") as f:
        assert set(f["listeners"]) == {"left", "up"}
        ds = f["listeners/left"]
        assert ds.attrs["sample_rate"] == 44100.0
        np.testing.assert_allclose(ds.attrs["position"], [-0.1, 0.0, 0.0])
        assert ds.shape == (int(round(0.003 * 44100)),)
        assert f.attrs["scene"] == scene.read_text()
        assert f.attrs["wavesolve_version"] == wavesolve.__version__
        assert f.attrs["wav_gain"] > 0
    assert not list(d.glob(".*.tmp"))


def test_wav_is_normalised_to_minus_1_dbfs(ran):
    d, _ = ran
    rate, data = wavfile.read(d / "sound.wav")
    assert rate == 44100 and data.shape[1] == 2 and data.dtype == np.float32
    assert 20 * np.log10(np.max(np.abs(data))) == pytest.approx(WAV_PEAK_DBFS, abs=1e-3)
    result = wavesolve.Result.load(d / "result.h5")
    np.testing.assert_allclose(data[:, 0], result.listener("left") * result.metadata["wav_gain"], rtol=1e-5,
                               atol=1e-7)


def test_wav_in_pascals_flag(ran, cli, tmp_path):
    d, scene = ran
    proc = cli("run", scene, "-o", tmp_path / "p.h5", "--wav", tmp_path / "p.wav", "--wav-pascals", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    _, data = wavfile.read(tmp_path / "p.wav")
    result = wavesolve.Result.load(tmp_path / "p.h5")
    np.testing.assert_allclose(data[:, 1], result.listener("up"), rtol=1e-6, atol=1e-9)
    assert result.metadata["wav_gain"] == 1.0


def test_symmetric_listeners_hear_the_same(ran):
    """A pulsating sphere radiates isotropically: two listeners at the same radius agree (1 %)."""
    d, _ = ran
    result = wavesolve.Result.load(d / "result.h5")
    left, up = result.listener("left"), result.listener("up")
    assert np.linalg.norm(left - up) < 0.01 * np.linalg.norm(left)


def test_plot_writes_png_per_listener(ran, cli, tmp_path):
    d, _ = ran
    proc = cli("plot", d / "result.h5", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("left", "up"):
        png = tmp_path / f"result_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_prints_cost_without_running(ran, cli):
    d, scene = ran
    proc = cli("info", scene)
    assert proc.returncode == 0, proc.stderr
    for word in ("grid", "steps", "memory", "estimate"):
        assert word in proc.stdout
    n = 30 + 2 * DEFAULT_LAYER_CELLS                # 0.3 m / 1 cm = 30 cells, plus the layer on both sides
    nz = -(-n // Z_CELLS_MULTIPLE) * Z_CELLS_MULTIPLE   # along z padded at the top (wavesolve.grid)
    assert f"{n} x {n} x {nz}" in proc.stdout


def test_python_api_round_trip(ran, tmp_path):
    d, scene = ran
    result = wavesolve.simulate(wavesolve.load_scene(scene), backend="numpy", progress=False)
    saved = wavesolve.Result.load(result.save(tmp_path / "api.h5"))
    np.testing.assert_array_equal(saved.listener("left"), result.listener("left"))
    assert saved.sample_rate == result.sample_rate
    with pytest.raises(KeyError, match="no listener 'right'"):
        result.listener("right")


def test_unavailable_backend_is_a_clear_error(ran, cli):
    from conftest import _has_gpu

    if _has_gpu():
        pytest.skip("a GPU is present: the cupy backend is available here")
    _, scene = ran
    proc = cli("run", scene, "--backend", "cupy", "--no-progress")
    assert proc.returncode == 2
    assert "backend" in proc.stderr


def test_missing_result_file_for_plot(cli, tmp_path):
    proc = cli("plot", tmp_path / "none.h5")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_runaway_pressure_stops_with_a_clear_message(write_scene, cli, tmp_path):
    """A source 10¹⁵ m/s² strong drives |p| past the 1e8 Pa instability bound: the run stops at the
    next check with exit status 3, says when and where, and leaves no result behind."""
    path = write_scene(SCENE.replace("amplitude = 10.0", "amplitude = 1e15"))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 3, proc.stderr
    assert "unstable" in proc.stderr and "t = " in proc.stderr and "cell" in proc.stderr
    assert not (tmp_path / "result.h5").exists() and not (tmp_path / "sound.wav").exists()
