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
from wavesolve.scene import parse_scene


#: A slice through the pulsating sphere's centre while its pulse crosses the box (its acceleration
#: peaks near 1.3 ms): test_pulsating_sphere_slice_matches_exact_solution.
EQUATOR = """
[[slices]]
name = "equator"
axis = "z"
position = 0.0
times = [0.0012, 0.0016, 0.002, 0.0024]
"""


@pytest.fixture(scope="module")
def pulsating():
    path = SCENES / "validation" / "pulsating_sphere.toml"
    scene = parse_scene(path.read_text() + EQUATOR, path)
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


def test_pulsating_sphere_slice_matches_exact_solution(pulsating):
    """The pressure on a plane through the centre, at four times as the pulse crosses the box,
    against p(r, t) at each cell's distance r from the centre (cells at least 2 h from the
    surface). Bound: the scene's 3 % relative L2 of its listeners, which sample the same cells
    (measured 0.3–0.8 % per time). The solid cells are the sphere's: every cell centre farther
    than h/2 inside the surface is solid, none farther than h/2 outside."""
    scene, result = pulsating
    a, c, rho = _medium(scene)
    alpha = scene.objects[0].shaders[0].signal
    sl = result.pressure_slice("equator")
    h = sl.cell_size
    assert sl.axis == "z" and abs(sl.position) <= h / 2 + 1e-12   # the cell plane nearest z = 0
    na, nb = sl.pressure.shape[1:]
    x, y = np.meshgrid(sl.origin[0] + h * np.arange(na), sl.origin[1] + h * np.arange(nb), indexing="ij")
    r = np.sqrt(x ** 2 + y ** 2 + sl.position ** 2)
    fluid = r >= a + 2 * h
    np.testing.assert_allclose(sl.times, [0.0012, 0.0016, 0.002, 0.0024], atol=scene.grid.dt / 2)
    for i, t in enumerate(sl.times):
        ref = pulsating_sphere(alpha, a, c, rho, r[fluid], np.full(fluid.sum(), t))
        assert rel_l2(sl.pressure[i][fluid], ref) < 0.03, f"t = {t:.4g} s"
        assert sl.solid[i][r < a - h / 2].all() and not sl.solid[i][r > a + h / 2].any()


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
