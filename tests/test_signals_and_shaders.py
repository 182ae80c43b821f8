"""Signals, resampling and the shader plug-in registry."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from wavesolve.audio import resample
from wavesolve.shading import Shader, available_shaders, shader_class
from wavesolve.signals import GaussianDerivative, Ricker, SineBurst, parse_signal


def test_resampler_preserves_time_alignment():
    """A band-limited pulse resampled 137.2 kHz → 44.1 kHz equals the same pulse sampled at 44.1 kHz.
    Tolerance 1e-6 of the peak: libsoxr VHQ passband ripple and stopband are far below that."""
    pulse = GaussianDerivative(waveform="gaussian_derivative", frequency=1000.0, amplitude=1.0, delay=0.004)
    fs_in, fs_out = 137200.0, 44100.0
    x = pulse(np.arange(int(0.01 * fs_in)) / fs_in)
    y = resample(x, fs_in, fs_out)
    ref = pulse(np.arange(len(y)) / fs_out)
    assert np.max(np.abs(y - ref)[: int(0.009 * fs_out)]) < 1e-6


@pytest.mark.parametrize("rate_in", [176400.0, 137200.7, 61234.5])
def test_resampled_signals_keep_their_last_samples(rate_in):
    """The end of a resampled signal: ringing (two damped tones, the kind of sound a run ends in)
    cut after 30 000 samples must resample, up to its last output sample, as the same signal
    resampled with the 30 000 samples after the cut available. Before the input was continued (by
    its point reflection about the last sample), libsoxr read zeros there: 1.8e-4 – 7.2e-3 of the
    peak off at the last samples (a steady 1 kHz tone 1–5 %). Bound 1e-4 of the peak (measured
    3.6e-7 – 7.3e-5). The continuation is linear, so resampling still commutes with sums
    (tests/test_travelling.py adds separate runs to rounding)."""
    t = np.arange(60000) / rate_in
    x = np.sin(2 * np.pi * 1234.0 * t) * np.exp(-10 * t) + 0.5 * np.sin(2 * np.pi * 4321.0 * t + 1) * np.exp(-50 * t)
    n, fs_out = 30000, 44100.0
    y = resample(x[:n], rate_in, fs_out)
    whole = resample(x, rate_in, fs_out)[:len(y)]
    assert len(y) == int(np.floor(n * fs_out / rate_in + 0.5))
    assert np.max(np.abs(y - whole)) < 1e-4 * np.max(np.abs(whole))


def test_gaussian_derivative_peak_and_spectrum():
    g = GaussianDerivative(waveform="gaussian_derivative", frequency=600.0, amplitude=100.0)
    fs = 1e6
    t = np.arange(int(0.02 * fs)) / fs
    s = g(t)
    assert np.max(s) == pytest.approx(100.0, rel=1e-6)
    spec = np.abs(np.fft.rfft(s))
    f = np.fft.rfftfreq(len(s), 1 / fs)
    assert f[np.argmax(spec)] == pytest.approx(600.0, abs=50.0)  # 50 Hz = the FFT bin width
    assert abs(s[0]) < 4e-5 * 100.0


def test_ricker_peak_spectrum_and_no_net_motion():
    """Peak A at its centre, spectrum peak at f (within one 50 Hz FFT bin), a quiet start (|s| <
    1e-5 A at t = 0 and at the start of its active interval), exact zeros outside zero_outside(); and
    as an acceleration its velocity and displacement return to zero at the end of its active
    interval: below 1e-6 and 1e-4 of their largest values (trapezoidal integration at 1 MHz; the
    start's 1.8e-6·A truncation leaves a velocity of 5e-7 of the largest, which the displacement
    integrates). A Gaussian derivative's surface instead ends displaced (3.3 µm here)."""
    r = Ricker(waveform="ricker", frequency=2500.0, amplitude=200.0)
    fs = 1e6
    t = np.arange(int(0.02 * fs)) / fs
    s = r(t)
    assert np.max(s) == pytest.approx(200.0, rel=1e-6) and t[np.argmax(s)] == pytest.approx(r.centre(), abs=1 / fs)
    spec = np.abs(np.fft.rfft(s))
    assert np.fft.rfftfreq(len(s), 1 / fs)[np.argmax(spec)] == pytest.approx(2500.0, abs=50.0)
    assert abs(s[0]) < 1e-5 * 200.0 and abs(r(r.start_time())) < 1e-5 * 200.0
    lo, hi = r.zero_outside()
    assert r(lo - 1e-9) == 0.0 and r(hi + 1e-9) == 0.0

    def integrals(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) / fs)])
        return v, np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) / fs)])

    end = int(r.end_time() * fs)
    velocity, displacement = integrals(s)
    assert abs(velocity[end]) < 1e-6 * np.abs(velocity).max()
    assert abs(displacement[end]) < 1e-4 * np.abs(displacement).max()
    g = GaussianDerivative(waveform="gaussian_derivative", frequency=2500.0, amplitude=200.0)
    _, moved = integrals(g(t))
    assert moved[int(g.end_time() * fs)] == pytest.approx(3.35e-6, rel=0.01)   # A σ² √(2πe)
    train = parse_signal({"waveform": "pulse_train", "times": [0.0, 0.01],
                          "pulse": {"waveform": "ricker", "frequency": 2500.0, "amplitude": 1.0}}, "s.toml", "signal", None)
    assert train(0.01 + r.centre()) == pytest.approx(1.0 + float(r(0.01 + r.centre())) / 200.0)


def test_sine_burst_is_windowed():
    b = SineBurst(waveform="sine_burst", frequency=1000.0, amplitude=2.0, cycles=4, start=0.001)
    t = np.array([0.0, 0.001, 0.003, 0.005, 0.006])
    v = b(t)
    assert v[0] == 0.0 and abs(v[1]) < 1e-12 and abs(v[3]) < 1e-12 and v[4] == 0.0
    assert b.end_time() == pytest.approx(0.005)


def test_file_signal_is_interpolated_in_time(tmp_path):
    """A 1 kHz sine in a 48 kHz float WAV, read back at arbitrary times: error < 1e-3 of the peak
    (band-limited upsampling to ≥ 400 kHz, then linear interpolation: (πf/fs)²/2 ≈ 3e-5)."""
    fs = 48000
    t = np.arange(4800) / fs
    wavfile.write(tmp_path / "a.wav", fs, (3.0 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    sig = parse_signal({"file": "a.wav", "gain": 2.0, "start": 0.01}, "s.toml", "signal", tmp_path)
    tq = 0.01 + np.linspace(0.01, 0.09, 777)
    assert np.max(np.abs(sig(tq) - 6.0 * np.sin(2 * np.pi * 1000 * (tq - 0.01)))) < 6.0 * 1e-3
    assert sig(0.005) == 0.0
    # the interpolation is np.interp's to the bit (its arithmetic, without its pass over the whole
    # signal per call), on random times, on every sample and just past both ends
    n, rate = len(sig._samples), sig._rate
    times = np.concatenate([np.random.default_rng(2).uniform(0.0, 0.2, 5000), 0.01 + np.arange(-2, n + 2) / rate])
    ref = np.interp((times - 0.01) * rate, np.arange(n), sig._samples, left=0.0, right=0.0)
    np.testing.assert_array_equal(sig(times), ref)
    one = np.interp((0.0234 - 0.01) * rate, np.arange(n), sig._samples, left=0.0, right=0.0)
    assert sig(0.0234) == one


def test_prescribed_shader_is_found_through_entry_points():
    assert "prescribed" in available_shaders()
    cls = shader_class("prescribed")
    assert issubclass(cls, Shader)
    assert cls.__module__ == "wavesolve_shaders.prescribed"


def test_boundary_acceleration_block_equals_step_by_step(tmp_path):
    """Simulation.boundary_acceleration_block (prescribed shaders, pulsate and translate, with a
    shader window and one object's shaders switched off) equals boundary_acceleration at each
    time: within 1e-13 of the peak (vectorised sines may round differently in the last bit)."""
    from wavesolve import load_scene
    from wavesolve.simulation import Simulation

    path = tmp_path / "two.toml"
    path.write_text("""
[simulation]
duration = 0.004
cell_size = 0.01
[domain]
size = 0.4
[[objects]]
name = "a"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
position = [-0.08, 0.0, 0.0]
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "sine_burst", frequency = 900.0, amplitude = 30.0, cycles = 3 }
[[objects.shaders]]
type = "prescribed"
pattern = "translate"
direction = [0.3, 1.0, 0.0]
signal = { waveform = "gaussian_derivative", frequency = 1500.0, amplitude = 50.0 }
[[objects]]
name = "b"
mesh = { primitive = "box", size = [0.05, 0.05, 0.05] }
position = [0.09, 0.0, 0.0]
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "sine_burst", frequency = 700.0, amplitude = 20.0 }
[[listeners]]
name = "l"
position = [0.0, 0.15, 0.0]
""")
    scene = load_scene(path)
    times = np.arange(300) * scene.grid.dt
    for window, objects in ((None, None), ((40, 250), [0])):
        sim = Simulation(scene, backend="numpy", shader_window=window, shader_objects=objects)
        want = np.stack([sim.boundary_acceleration(t) for t in times])
        got = sim.boundary_acceleration_block(times)
        peak = np.max(np.abs(want))
        assert peak > 0 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * peak)
        if window is not None:
            assert not got[:40].any() and not got[250:].any()


def test_steps_take_their_accelerations_from_blocks_with_blas_on_one_thread(write_scene, monkeypatch):
    """Where nothing moves, a CPU run asks the shaders for MOTION_BLOCK steps at once; every step
    must use exactly its own row of the block (bit for bit), across two blocks and a second run()
    that starts inside the first (blocks equal step-by-step values to 1e-13: the test above).
    With the numba backend the shaders run with BLAS held to one thread (threadpoolctl), in run()
    and in steps called on their own: OpenBLAS's spinning threads would take the cores from the
    compiled step. (The numba backend's runs go through its compiled blocks, which read the same
    kept blocks without Simulation._advance: tests/test_cpu_blocks.py. Here its steps run one at a
    time, so that the spy below sees each.)"""
    from threadpoolctl import threadpool_info

    from wavesolve import load_scene
    from wavesolve.backend import Backend, NumbaBackend
    from wavesolve.constants import MOTION_BLOCK
    from wavesolve.simulation import Simulation

    monkeypatch.setattr(NumbaBackend, "block_runner", Backend.block_runner)

    path = write_scene("""
[simulation]
duration = 0.01
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "a"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "sine_burst", frequency = 900.0, amplitude = 30.0, cycles = 3 }
[[listeners]]
name = "l"
position = [0.0, 0.1, 0.0]
""", "one.toml")
    scene = load_scene(path)
    for backend in ("numpy", "numba"):
        sim = Simulation(scene, backend=backend)
        used, blas_threads = [], []
        advance = sim._advance
        block = sim.boundary_acceleration_block

        def spy_block(times, out=None):
            blas_threads.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
            return block(times, out)

        monkeypatch.setattr(sim, "_advance", lambda accel, samples=None: (used.append(np.array(accel)),
                                                                           advance(accel, samples))[1])
        monkeypatch.setattr(sim, "boundary_acceleration_block", spy_block)
        sim.run(100, progress=False)
        sim.run(MOTION_BLOCK + 50, progress=False)
        assert len(used) == MOTION_BLOCK + 150 and np.max(np.abs(used)) > 0
        calls = len(blas_threads)
        for _ in range(110):                 # steps called on their own reach the block from 3K
            sim.step()
        assert len(blas_threads) > calls
        used = used[:MOTION_BLOCK + 150]
        # blocks from steps 0, K and 2K: the second run() (from step 100) goes on in the first
        K = MOTION_BLOCK
        times = np.arange(3 * K) * scene.grid.dt
        expected = np.vstack([block(times[:K]), block(times[K:2 * K]), block(times[2 * K:])])
        np.testing.assert_array_equal(np.array(used), expected[:len(used)])
        if backend == "numba":
            assert blas_threads and set(blas_threads) == {1}


@pytest.mark.parametrize("pulse", [
    {"waveform": "gaussian_derivative", "frequency": 2500.0, "amplitude": 200.0},
    {"waveform": "sine_burst", "frequency": 900.0, "amplitude": 3.0, "cycles": 4, "start": 0.001}])
def test_pulse_train_skips_only_exact_zeros(pulse):
    """A pulse train leaves out the copies that are exactly zero at every time asked for (a
    Gaussian beyond 40σ underflows to 0.0; a burst is 0.0 outside its window). Adding 0.0 changes
    no sum, so the result equals the plain sum Σᵢ gᵢ·pulse(t − tᵢ) in the order of ``times`` to the
    bit: random trains, unsorted times, single times, blocks of step times and long arrays."""
    rng = np.random.default_rng(4)
    for _ in range(10):
        times = rng.uniform(0.0, 0.4, 30).tolist()
        gains = rng.uniform(-1.0, 1.0, 30).tolist()
        train = parse_signal({"waveform": "pulse_train", "times": times, "gains": gains, "pulse": pulse},
                             "s.toml", "signal", ".")
        copy = parse_signal(pulse, "s.toml", "signal", ".")
        for t in (rng.uniform(0.0, 0.45, 1000), 0.2 + np.arange(128) / 68600.0, float(rng.uniform(0.0, 0.4)),
                  np.array([0.0])):
            want = np.zeros(np.shape(t))
            for ti, g in zip(times, gains):
                want = want + g * copy(np.asarray(t) - ti)
            got = train(t)
            assert np.shape(got) == np.shape(want)
            np.testing.assert_array_equal(got, want)
