"""The absorbing layer: reflection of a broadband pulse at normal incidence.

Method: a point-source pulse (Gaussian derivative, spectral peak 2 kHz, content to ~5 kHz, h = 5 mm)
at the centre of a 0.3 m box; a listener 0.1 m towards the +x face. The same run in a 0.52 m box
gives the reflection-free signal over the comparison window (its own reflections arrive later), so
the difference of the two runs is the wave returned by the +x layer. A perfectly rigid face would
return the image-source wave, whose peak is the direct peak × (0.1 m / 0.2 m) (spherical
spreading); the reflection coefficient is the returned peak over that.

Acceptance: < 1 % (−40 dB) with the default thickness (issue 2). Measured with 10 cells, m = 2,
R₀ = 1e-4: 6.7e-5 (−84 dB); all faces incl. oblique, whole run: 1.5e-4. The rigid-wall control (σ = 0) must reflect ≈ 100 %, which shows
the measurement sees reflections at all.
"""
from __future__ import annotations

import numpy as np
import pytest

from wavesolve import absorbing
from wavesolve.scene import parse_scene
from wavesolve.signals import GaussianDerivative
from wavesolve.simulation import PointSource, Simulation

PULSE = GaussianDerivative(waveform="gaussian_derivative", frequency=2000.0, amplitude=1e-3)


def _listener_signal(size: float, layer: int | None = None) -> tuple[np.ndarray, float]:
    layer_line = f"absorbing_layer = {layer}" if layer else ""
    scene = parse_scene(f"""
[simulation]
duration = 0.0015
cell_size = 0.005
precision = "float64"
[domain]
size = {size}
{layer_line}
[[listeners]]
name = "towards_face"
position = [0.1, 0.0, 0.0]
""", "layer_test.toml")
    sim = Simulation(scene, sources=[PointSource([0.0, 0.0, 0.0], PULSE)])
    return sim.run(scene.grid.steps_for(scene.duration), progress=False)[0], scene.grid.dt


def _reflection(small: np.ndarray, reference: np.ndarray, dt: float) -> float:
    t = np.arange(len(small)) * dt
    # window: up to the first-reflection arrival (0.2 m path) plus the pulse half-length (0.11 m)
    window = t < 0.31 / 343.0 + PULSE.centre()
    rigid_peak = np.max(np.abs(reference)) * 0.1 / 0.2
    return float(np.max(np.abs(small - reference)[window]) / rigid_peak)


@pytest.fixture(scope="module")
def reference():
    return _listener_signal(0.52)


def test_default_layer_reflects_under_one_percent(reference):
    ref, dt = reference
    small, _ = _listener_signal(0.3)
    assert _reflection(small, ref, dt) < 0.01


def test_rigid_control_reflects(reference, monkeypatch):
    """With σ = 0 the 'layer' is air ending in a rigid wall: the measurement must see ~100 %."""
    monkeypatch.setattr(absorbing, "PML_R0", 1.0)
    ref, dt = reference
    small, _ = _listener_signal(0.3, layer=4)
    assert _reflection(small, ref, dt) > 0.5
