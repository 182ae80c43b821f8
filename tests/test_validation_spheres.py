"""Physics validation: static spheres driven by the prescribed shader against exact solutions.

References (PHYSICS.md, derived from linear acoustics):
  pulsating sphere   p = f(t − (r−a)/c)/r,  f′ + (c/a) f = ρ a c α(t)
  translating sphere p = cosθ [F′(τ)/(c r) + F(τ)/r²],  F″ + (2c/a)F′ + (2c²/a²)F = ρ c² a α(t)
Tolerances are the issue's acceptance bounds (3 % and 5 % relative L2 at r = 0.15 m, h = 5 mm,
content to 2 kHz). Measured on this solver: 0.63 % / 0.60 % (pulsating), 0.86 % / 0.80 %
(translating), float64 — the margin guards against regressions in the ghost-cell boundary.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENES
from exact import pulsating_sphere, rel_l2, translating_sphere

import wavesolve


@pytest.fixture(scope="module")
def pulsating():
    scene = wavesolve.load_scene(SCENES / "validation" / "pulsating_sphere.toml")
    return scene, wavesolve.simulate(scene, progress=False)


@pytest.fixture(scope="module")
def translating():
    scene = wavesolve.load_scene(SCENES / "validation" / "translating_sphere.toml")
    return scene, wavesolve.simulate(scene, progress=False)


def _medium(scene):
    m = scene.config.medium
    return 0.05, m.sound_speed, m.density  # radius of the icosphere in both scenes


def test_pulsating_sphere_matches_exact_solution(pulsating):
    scene, result = pulsating
    a, c, rho = _medium(scene)
    alpha = scene.objects[0].shaders[0].signal
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        ref = pulsating_sphere(alpha, a, c, rho, float(np.linalg.norm(lis.position)), t)
        assert rel_l2(p, ref) < 0.03, lis.name


def test_translating_sphere_matches_exact_dipole(translating):
    scene, result = translating
    a, c, rho = _medium(scene)
    alpha = scene.objects[0].shaders[0].signal
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        r = float(np.linalg.norm(lis.position))
        ref = translating_sphere(alpha, a, c, rho, r, lis.position[0] / r, t)
        assert rel_l2(p, ref) < 0.05, lis.name


def test_translating_sphere_is_silent_on_its_equator(translating, write_scene):
    """cos θ = 0: the exact dipole field vanishes in the plane normal to the motion.

    Numerically the residual comes from the mesh and grid breaking the symmetry; it must stay
    below 2 % of the on-axis peak (measured: far below that).
    """
    scene, result = translating
    text = scene.text.replace("position = [0.1061, 0.1061, 0.0]   # θ = 45°", "position = [0.0, 0.15, 0.0]")
    path = write_scene(text)
    side = wavesolve.simulate(wavesolve.load_scene(path), progress=False)
    on_axis = np.max(np.abs(result.listener("on_axis")))
    assert np.max(np.abs(side.listener("oblique"))) < 0.02 * on_axis
