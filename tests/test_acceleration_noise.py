"""``acceleration_noise``: a rigid sphere struck by an impulse radiates as the exact accelerating sphere.

Reference: the rigid sphere translating with acceleration α(t) (PHYSICS.md; tests/exact.py),
with α(t) = J·pulse(t)/m for a central impulse J (no rotation). The 5 % bound on the relative L2
error is the issue's acceptance bound; at h = 1 cm (5 cells per radius) and content below ~1 kHz
this solver measured about 2 % for the prescribed translating sphere (README far-field table);
measured here: 3.3 % on axis, 3.0 % at 45° (half-sine of 1.5 ms).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from exact import rel_l2, translating_sphere
from new_shaders import register_new_shaders

import wavesolve
from wavesolve.contact import half_sine
from wavesolve.errors import SceneError

SCENE = """
[simulation]
duration = 0.004
sample_rate = 44100.0
cell_size = 0.01
precision = "float64"

[domain]
size = 0.36

[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.05, subdivisions = 3 }}

[[objects.shaders]]
type = "acceleration_noise"
material = "steel"
impacts = [ {{ time = 0.0003, position = [-0.05, 0.0, 0.0], impulse = [0.4, 0.0, 0.0], {extra} }} ]

[[listeners]]
name = "on_axis"
position = [0.15, 0.0, 0.0]

[[listeners]]
name = "oblique"
position = [0.1061, 0.1061, 0.0]
"""


def test_struck_sphere_matches_exact_accelerating_sphere(write_scene, monkeypatch):
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(SCENE.format(extra="duration = 0.0015")))
    shader = scene.objects[0].shaders[0]
    m = shader.mass
    assert m == pytest.approx(7850 * 4 / 3 * math.pi * 0.05 ** 3, rel=0.02)  # icosphere volume ≈ sphere's
    a_of_t, spin = shader.rigid_acceleration(0.001)
    assert np.allclose(spin, 0.0, atol=1e-9 * np.linalg.norm(a_of_t))  # central impact: no rotation
    assert shader.active_intervals(0.0, 1.0) == [(0.0003, 0.0018)]
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    c, rho = scene.config.medium.sound_speed, scene.config.medium.density

    def alpha(t):
        return 0.4 * half_sine(t, 0.0003, 0.0015) / m

    errors = {}
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        r = float(np.linalg.norm(lis.position))
        errors[lis.name] = rel_l2(p, translating_sphere(alpha, 0.05, c, rho, r, lis.position[0] / r, t))
    print("relative L2 errors", errors)
    assert max(errors.values()) < 0.05, errors


def test_off_centre_impact_spins_the_body(write_scene, monkeypatch):
    """A tangential impulse at the rim: α = I⁻¹(r × J)·pulse; for a solid sphere I = (2/5) m a²
    (the icosphere's own inertia is used; 2 % from the sphere's), and the surface normal
    acceleration of a pure spin about the centre is zero on a sphere (α × r ⟂ n)."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(SCENE.format(extra="duration = 0.0015").replace(
        "impulse = [0.4, 0.0, 0.0]", "impulse = [0.0, 0.4, 0.0]")))
    shader = scene.objects[0].shaders[0]
    t = 0.0003 + 0.00075
    a, alpha = shader.rigid_acceleration(t)
    peak = math.pi * 0.4 / (2 * 0.0015)
    assert a == pytest.approx([0.0, peak / shader.mass, 0.0], rel=1e-9)
    assert alpha[2] == pytest.approx(-0.05 * peak / (0.4 * shader.mass * 0.05 ** 2), rel=0.03)


def test_hertz_duration_default_and_bad_impacts(write_scene, monkeypatch, tmp_path):
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(SCENE.format(extra="speed = 1.0")))
    (imp,) = scene.objects[0].shaders[0].impacts
    assert 5e-5 < imp.tau < 5e-4
    (tmp_path / "hits.csv").write_text("time,x,y,z,jx,jy\n0.0,0,0,0,1,0\n")
    bad = SCENE.format(extra="speed = 1.0").replace("impacts = [", 'impacts_file = "hits.csv"\nimpacts = [')
    with pytest.raises(SceneError, match=r"impacts_file.*missing \['jz'\]"):
        wavesolve.load_scene(write_scene(bad))
