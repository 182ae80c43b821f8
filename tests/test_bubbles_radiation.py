"""``bubbles`` in the solver: one bubble under a flat water surface, heard in the air above.

Expectations (SI, air density ρ, sound speed c):

- **Pitch and decay**: the pressure in the air rings at the bubble's frequency, Minnaert with
  surface tension raised by the surface image, ω = ω₀/√(1 − r/(2d)), and decays at the model's
  β = ωδ/√(δ² + 4): the solver is linear and time-invariant, so a damped exponential in aₙ comes
  out as the same damped exponential (a transfer function does not move a pole).
- **Monopole strength, image-source expectation**: in the water the pressure-release surface
  mirrors the bubble into a negative image; the pair pushes the surface out with a normal
  acceleration whose integral is the bubble's volume acceleration V̈. The air sees the water as a
  rigid plane (ρ_air c_air ≪ ρ_w c_w) moving with that aₙ: a baffled source. Its pressure is the
  Rayleigh integral p = (ρ/2π)∫aₙ(y, t − R/c)/R dS, which far from the surface (R ≫ d) becomes
  p = ρV̈(t − R/c)/(2πR) — twice the free-field monopole ρV̈/(4πR), the doubling by the plane.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from new_shaders import register_new_shaders
from scipy import signal
from scipy.optimize import curve_fit

import wavesolve
from wavesolve import bubbles as B

RINGING = """
[simulation]
duration = 0.022
cell_size = 0.01
precision = "float64"

[domain]
center = [0.0, 0.0, 0.06]
size = [0.4, 0.4, 0.32]

[ground]
height = -0.1

[[objects]]
name = "water"                    # a 6 cm deep pool: free surface at z = -0.04
mesh = { primitive = "box", size = [0.34, 0.34, 0.06] }
position = [0.0, 0.0, -0.07]

[[objects.shaders]]
type = "bubbles"
bubbles = [ { time = 0.0005, position = [0.0, 0.0, -0.02], radius = 0.0015 } ]   # 5 cm deep
rise_speed = 0.0

[[listeners]]
name = "above"
position = [0.0, 0.0, 0.08]
"""


@pytest.mark.slow
def test_bubble_under_a_flat_surface_rings_at_minnaert_with_the_model_decay(write_scene, monkeypatch):
    """r = 1.5 mm (f₀ = 2192 Hz, 15.6 cells per wavelength at h = 1 cm, inside the grid's accurate
    band c/(10h) = 3.4 kHz), 5 cm deep (the image raises it by 0.76 %). The spectral peak of the
    pressure 12 cm above the surface (3 … 21 ms, Hann window, zero-padded) lies within 1 % of the
    Minnaert frequency (the issue's bound), and a damped-cosine fit gives the model frequency
    within 0.1 % and the decay rate β within 1 % (measured 0.02 % and 0.03 %; what is left is the
    fit's sensitivity to the small reverberation of the absorbing layer)."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(RINGING))
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    p = result.listener("above")
    fs = result.sample_rate
    t = np.arange(len(p)) / fs
    r, depth = 0.0015, 0.05
    f_minnaert = float(B.minnaert_omega(r)) / (2 * math.pi)
    omega = float(B.minnaert_omega(r)) / math.sqrt(float(B.surface_mass_factor(r, depth)))
    beta = float(B.decay_rate(r, omega))
    f_model = math.sqrt(omega ** 2 - beta ** 2) / (2 * math.pi)
    sel = (t > 0.003) & (t < 0.021)
    n_fft = 1 << 20
    spectrum = np.abs(np.fft.rfft(p[sel] * np.hanning(sel.sum()), n_fft))
    f_peak = np.fft.rfftfreq(n_fft, 1 / fs)[np.argmax(spectrum)]

    def ring(t, a, b, f, ph):
        return a * np.exp(-b * (t - 0.003)) * np.cos(2 * math.pi * f * t + ph)

    (_, b, f, _), _ = curve_fit(ring, t[sel], p[sel], p0=[np.abs(p[sel]).max(), beta, f_peak, 0.0])
    print(f"peak {f_peak:.1f} Hz (Minnaert {f_minnaert:.1f}, {f_peak / f_minnaert - 1:+.4f}); fit {f:.2f} Hz "
          f"(model {f_model:.2f}, {f / f_model - 1:+.2e}); decay {b:.2f}/s (model {beta:.2f}, {b / beta - 1:+.2e})")
    assert abs(f_peak / f_minnaert - 1) < 0.01
    assert abs(f / f_model - 1) < 1e-3
    assert abs(b / beta - 1) < 0.01


MONOPOLE = """
[simulation]
duration = 0.0035
cell_size = 0.01
precision = "float64"

[domain]
center = [0.0, 0.0, 0.03]
size = [0.6, 0.6, 0.26]

[ground]
height = -0.1

[[objects]]
name = "water"                    # a wide 2 cm deep pool on the floor: free surface at z = -0.08
mesh = { primitive = "box", size = [0.56, 0.56, 0.02] }
position = [0.0, 0.0, -0.09]

[[objects.shaders]]
type = "bubbles"
bubbles = [ { time = 0.0002, position = [0.0, 0.0, -0.01], radius = 0.0015 } ]   # 2 cm under the surface
rise_speed = 0.0

[[listeners]]
name = "above"
position = [0.0, 0.0, 0.02]
"""


def test_monopole_strength_is_the_volume_acceleration_doubled_by_the_surface(write_scene, monkeypatch):
    """The pressure 10 cm above the surface vs the Rayleigh integral of the imposed aₙ (the exact
    baffled-plane answer; 1 mm quadrature of the face), compared before the waves diffracted by the
    pool's edges (0.28 m away) arrive (1.39 ms after the direct sound), both low-passed at 3 kHz
    (zero phase: the grid is accurate to c/(10h) = 3.4 kHz, and the jet forcing's abrupt end is
    broadband). Bound 8 % relative L2: measured 5.8 % at h = 1 cm and 2.5 % at h = 5 mm (it
    converges: the 1 cm sampling of a kernel 2 cm wide and grid dispersion). At R = 5d the source's
    extent still lowers the level below the compact ρV̈/(2πR) (printed); the same Rayleigh integral
    20 m above the surface (R = 1000d) gives the compact image-source expectation ρV̈(t − R/c)/(2πR)
    within 1 % (what is left falls as 1/R — 18 %, 6 %, 1.2 % at 0.5, 2, 10 m: the spread of delays
    over the face, whose flux tail falls only as d/s), i.e. the monopole strength is V̈ and the
    plane doubles it."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(MONOPOLE))
    shader = scene.objects[0].shaders[0]
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    p = result.listener("above")
    fs = result.sample_rate
    t = np.arange(len(p)) / fs
    rho, c = scene.config.medium.density, scene.config.medium.sound_speed
    listener = np.array(scene.listeners[0].position)
    # V̈(t) of the bubble, finely sampled
    t_fine = np.arange(0.0, 0.004, 1 / 400_000)
    probe = wavesolve.load_scene(write_scene(MONOPOLE, "probe.toml")).objects[0].shaders[0]
    vdd = np.array([probe.volume_acceleration(x, np.array([0]))[0] if x >= 0.0002 else 0.0 for x in t_fine])
    # Rayleigh integral over the face (world z = -0.08) of aₙ = V̈ K/Φ
    h = 0.001
    xs = np.arange(-0.28 + h / 2, 0.28, h)
    X, Y = np.meshgrid(xs, xs)
    local = np.c_[X.ravel(), Y.ravel(), np.full(X.size, 0.01)]
    weight = B.surface_kernel(local, np.array([0.0, 0.0, -0.01]), np.array([0.0, 0.0, 1.0]))[:, 0] / shader._capture[0]
    assert weight.sum() * h * h == pytest.approx(1.0, abs=1e-3)
    world = local + [0.0, 0.0, -0.09]

    def rayleigh(at: np.ndarray, t: np.ndarray) -> np.ndarray:
        R = np.linalg.norm(world - at, axis=1)
        bins = np.round(R / c * fs * 16).astype(int)           # group equal delays (1/16 sample)
        delays = np.bincount(bins, weights=weight / R * h * h)
        return rho / (2 * math.pi) * sum(delays[k] * np.interp(t - k / (16 * fs), t_fine, vdd, left=0.0)
                                         for k in np.flatnonzero(delays))

    def compact(R0: float, t: np.ndarray) -> np.ndarray:
        return rho * np.interp(t - R0 / c, t_fine, vdd, left=0.0) / (2 * math.pi * R0)

    R0 = float(listener[2] + 0.08)
    b, a = signal.butter(4, 3000.0, fs=fs)
    low = [signal.filtfilt(b, a, x) for x in (p, rayleigh(listener, t), compact(R0, t))]
    first = 0.0002 + R0 / c
    edge = (0.28 + math.hypot(0.28, R0) - R0) / c
    window = (t >= first) & (t < first + edge)
    err_rayleigh = np.linalg.norm((low[0] - low[1])[window]) / np.linalg.norm(low[1][window])
    level = np.linalg.norm(low[1][window]) / np.linalg.norm(low[2][window])
    far = np.array([0.0, 0.0, 19.92])                        # 20 m above the surface
    t_far = t + 20.0 / c
    err_far = np.linalg.norm(rayleigh(far, t_far) - compact(20.0, t_far)) / np.linalg.norm(compact(20.0, t_far))
    print(f"solver vs Rayleigh {err_rayleigh:.4f} (Rayleigh/compact level at 10 cm {level:.3f}); "
          f"Rayleigh vs compact 2ρV̈/(4πR) at 20 m {err_far:.4f}")
    assert err_rayleigh < 0.08
    assert err_far < 0.01


CHUNKED = """
[simulation]
duration = 0.008
sample_rate = 22050.0
cell_size = 0.02
precision = "float64"

[domain]
center = [0.0, 0.0, 0.04]
size = [0.48, 0.48, 0.28]

[ground]
height = -0.1

[[objects]]
name = "water"
mesh = { primitive = "box", size = [0.36, 0.36, 0.04] }
position = [0.0, 0.0, -0.08]

[[objects.shaders]]
type = "bubbles"
bubbles = [ { time = 0.0002, position = [0.0, 0.0, -0.01], radius = 0.0015 },
            { time = 0.005, position = [0.05, 0.0, -0.005], radius = 0.002, lifetime = 0.002 } ]

[[listeners]]
name = "above"
position = [0.0, 0.0, 0.06]
"""


def test_time_parallel_chunks_match_one_run(write_scene, monkeypatch):
    """Two chunks, a bubble ringing across the cut (restarted there by reset(t)) and one born in
    the second chunk, equal one run to 1e-3 relative L2 (the README's bound for chunked runs: the
    sound left in the box when a chunk stops; measured 5.6e-6). Rising bubbles; a coarse 2 cm
    grid: only the equality is checked."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(CHUNKED))
    one = wavesolve.simulate(scene, backend="numpy", progress=False)
    two = wavesolve.simulate(scene, backend="numpy", progress=False, chunks=2)
    a, b = one.listener("above"), two.listener("above")
    err = np.linalg.norm(a - b) / np.linalg.norm(a)
    print("chunked vs one run", err)
    assert err < 1e-3
