"""``modal`` shader: oscillators driven by impacts, restart for chunks, and its radiation.

References: the damped oscillator's response to a half-sine force (scipy.signal.lsim of
q̈ = s²/(s² + 2ξωs + ω²)·f on a grid 100× finer, an independent integration); the exact
translating sphere (PHYSICS.md, tests/exact.py) for a mode whose shape is a uniform translation.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from exact import rel_l2, translating_sphere
from new_shaders import load_listed, register_new_shaders
from scipy import signal

import wavesolve
from wavesolve.contact import half_sine
from wavesolve.modes import ModeSet
from wavesolve.shading import BoundaryPoints, ShaderContext

ModalShader = load_listed("wavesolve_shaders.modal:ModalShader")


def _sphere_modes(tmp_path: Path, mesh: trimesh.Trimesh, mass: float) -> Path:
    """Two synthetic modes: a uniform x translation (800 Hz, ξ = 0.05) and a z 'breathing' field."""
    v = mesh.vertices
    shapes = np.zeros((len(v), 3, 2))
    shapes[:, 0, 0] = 1.0 / math.sqrt(mass)
    shapes[:, :, 1] = v / np.linalg.norm(v, axis=1, keepdims=True) / math.sqrt(mass)
    path = tmp_path / "modes.h5"
    ModeSet([800.0, 2500.0], [0.05, 0.01], shapes).save(path)
    return path


def _shader(tmp_path, table: dict, mesh) -> "ModalShader":
    ctx = ShaderContext(scene_file="s.toml", scene_dir=tmp_path, key="objects[0].shaders[0]", object_name="o",
                        density=1.2, sound_speed=343.0, duration=0.05, mesh=mesh)
    return ModalShader(ModalShader.Config(**table), ctx)


@pytest.fixture
def sphere(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    mass = 7850.0 * mesh.volume
    return mesh, mass, _sphere_modes(tmp_path, mesh, mass)


TABLE = {"type": "modal", "material": "steel", "modes": "modes.h5",
         "impacts": [{"time": 0.001, "position": [-0.05, 0.0, 0.0], "impulse": [0.4, 0.0, 0.0], "duration": 2e-4}]}


def test_modal_acceleration_matches_the_forced_oscillator(tmp_path, sphere):
    """Error ≤ 0.5 % of the peak: the lumping of the force into 38 impulses per contact (192 kHz)
    is the only approximation (measured 0.12 %)."""
    mesh, mass, _ = sphere
    shader = _shader(tmp_path, TABLE, mesh)
    t_fine = np.linspace(0.0, 0.008, 160_001)
    w = 0.4 / math.sqrt(mass)  # Uᵀ J of the translation mode
    f = w * half_sine(t_fine, 0.001, 2e-4)
    om = 2 * math.pi * 800.0
    _, ref, _ = signal.lsim(signal.lti([1.0, 0.0, 0.0], [1.0, 2 * 0.05 * om, om * om]), f, t_fine)
    t_query = np.arange(0, 0.008, 1 / 68600.0)
    got = np.array([shader.modal_acceleration(t)[0] for t in t_query])
    want = np.interp(t_query, t_fine, ref)
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    print("max error / peak", err)
    assert err < 5e-3
    # the radial mode, struck at (−a, 0, 0) along +x (inward): Uᵀ J = −0.4/√m (vertex normals ≈ −x there)
    assert (shader.impacts[0].impulse @ shader.at_contact[0])[1] == pytest.approx(-0.4 / math.sqrt(mass), rel=0.01)


def test_reset_restarts_with_the_exact_state(tmp_path, sphere):
    """Chunks: reset(t) then stepping on equals running from 0 (to 1e-12 of the peak)."""
    mesh, _, _ = sphere
    a, b = _shader(tmp_path, TABLE, mesh), _shader(tmp_path, TABLE, mesh)
    times = np.arange(0, 0.006, 1 / 68600.0)
    full = np.array([a.modal_acceleration(t) for t in times])
    start = len(times) // 2
    b.reset(times[start])
    part = np.array([b.modal_acceleration(t) for t in times[start:]])
    assert np.max(np.abs(part - full[start:])) < 1e-12 * np.max(np.abs(full))
    spans = a.active_intervals(0.0, 10.0)
    sigma_min = 0.01 * 2 * math.pi * 2500.0
    assert spans == [(0.001, pytest.approx(0.0012 + math.log(1e6) / min(sigma_min, 0.05 * 2 * math.pi * 800)))]


def test_normal_acceleration_interpolates_shapes_on_triangles(tmp_path, sphere):
    mesh, mass, _ = sphere
    shader = _shader(tmp_path, TABLE, mesh)
    tri = np.array([0, 5, 77])
    pts = mesh.triangles[tri].mean(axis=1)
    normals = mesh.face_normals[tri]
    bp = BoundaryPoints(position=pts, normal=normals, position_local=pts, normal_local=normals, triangle=tri)
    t = 0.0011
    qdd = shader.modal_acceleration(t)
    unit_mean = (mesh.vertices[mesh.faces[tri]] / np.linalg.norm(mesh.vertices[mesh.faces[tri]], axis=2,
                                                                  keepdims=True)).mean(axis=1)
    want = (normals[:, 0] * qdd[0] + np.einsum("nd,nd->n", normals, unit_mean) * qdd[1]) / math.sqrt(mass)
    np.testing.assert_allclose(shader.normal_acceleration(t, bp), want, rtol=1e-10)


def test_block_evaluation_equals_time_by_time(tmp_path, sphere):
    """normal_acceleration_block (blocks of 128 step times at 88.2 kHz from t = 0 to 16 ms: before,
    during and after two impacts, ringing in between) equals normal_acceleration called time by time
    on a second shader: within 1e-12 of the peak (the free stretches jump by the exact free motion
    instead of stepping the recursion: rounding only)."""
    mesh, mass, _ = sphere
    table = dict(TABLE, impacts=[*TABLE["impacts"], {"time": 0.0071, "position": [0.0, 0.0, 0.05],
                                                       "impulse": [0.0, 0.0, -0.2], "duration": 1e-4}])
    one, block = _shader(tmp_path, table, mesh), _shader(tmp_path, table, mesh)
    tri = np.arange(0, 300, 7)
    pts = mesh.triangles[tri].mean(axis=1)
    normals = mesh.face_normals[tri]
    bp = BoundaryPoints(position=pts, normal=normals, position_local=pts, normal_local=normals, triangle=tri)
    times = np.arange(11 * 128) / 88200.0
    want = np.stack([one.normal_acceleration(float(t), bp) for t in times])
    got = np.concatenate([block.normal_acceleration_block(times[i:i + 128], bp) for i in range(0, len(times), 128)])
    peak = np.max(np.abs(want))
    assert peak > 0 and np.count_nonzero(np.abs(want).max(axis=1) == 0) > 10   # silent before the first impact
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * peak)


def test_late_start_jumps_the_free_ringing(tmp_path, sphere):
    """A shader first asked at a late time (a time-parallel chunk's start, or the bench's start in a
    scene's middle) steps its oscillators only at the samples an impact reaches, and jumps the
    stretches between by the exact free motion: its accelerations from 20 to 30 ms equal those of a
    shader stepped there sample by sample to 1e-10 of their peak. Rounding alone separates the two:
    the jump's cosine and sine of a phase of up to ω_d·t ≈ 470 rad carry about 470 · 1.1e-16 = 5e-14
    relative error, the stepped recursion about √6000 · 1.1e-16 = 1e-14."""
    mesh, _, _ = sphere
    table = dict(TABLE, impacts=[*TABLE["impacts"], {"time": 0.0071, "position": [0.0, 0.0, 0.05],
                                                       "impulse": [0.0, 0.0, -0.2], "duration": 1e-4}])
    stepped, late = _shader(tmp_path, table, mesh), _shader(tmp_path, table, mesh)
    dt = stepped.bank.dt
    for k in range(int(0.02 / dt)):                          # sample by sample, impulses included
        stepped.modal_acceleration(k * dt)
    calls = []
    advance = late.bank.advance
    late.bank.advance = lambda g=0.0: (calls.append(1), advance(g))
    times = np.linspace(0.02, 0.03, 64)
    want = np.array([stepped.modal_acceleration(float(t)) for t in times])
    got = np.array([late.modal_acceleration(float(t)) for t in times])
    forced = int(np.sum(late._forced[:, 1] - late._forced[:, 0] + 1))
    print("samples to 20 ms", int(0.02 / dt), "advanced", len(calls), "forced", forced)
    assert forced < 100 and len(calls) <= forced + 2 * len(times)
    peak = np.max(np.abs(want))
    assert peak > 0
    print("max difference / peak", np.max(np.abs(got - want)) / peak)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * peak)


SCENE = """
[simulation]
duration = 0.006
sample_rate = 44100.0
cell_size = 0.01
precision = "float64"

[domain]
size = 0.36

[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.05, subdivisions = 3 }

[[objects.shaders]]
type = "modal"
material = "steel"
modes = "modes.h5"
max_frequency = 1000.0
impacts = [ { time = 0.0003, position = [-0.05, 0.0, 0.0], impulse = [0.4, 0.0, 0.0], duration = 0.0005 } ]

[[listeners]]
name = "on_axis"
position = [0.15, 0.0, 0.0]

[[listeners]]
name = "oblique"
position = [0.1061, 0.1061, 0.0]
"""


def test_translation_mode_radiates_as_the_accelerating_sphere(tmp_path, sphere, write_scene, monkeypatch):
    """A mode whose shape is a uniform x translation makes the sphere an accelerating rigid sphere
    with α(t) = q̈(t)/√m: exact solution within 5 % (the issue's bound for the accelerating sphere;
    h = 1 cm as in the acceleration_noise test)."""
    register_new_shaders(monkeypatch)
    path = write_scene(SCENE)
    scene = wavesolve.load_scene(path)
    shader = scene.objects[0].shaders[0]
    assert list(shader.frequencies) == [800.0]
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    mass = sphere[1]
    probe = _shader(tmp_path, {**TABLE, "max_frequency": 1000.0, "impacts": [
        {"time": 0.0003, "position": [-0.05, 0.0, 0.0], "impulse": [0.4, 0.0, 0.0], "duration": 0.0005}]}, sphere[0])
    t_fine = np.linspace(0, 0.007, 14001)
    qdd = np.array([probe.modal_acceleration(t)[0] for t in t_fine]) / math.sqrt(mass)

    def alpha(t):
        return np.interp(t, t_fine, qdd)

    c, rho = scene.config.medium.sound_speed, scene.config.medium.density
    errors = {}
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        r = float(np.linalg.norm(lis.position))
        errors[lis.name] = rel_l2(p, translating_sphere(alpha, 0.05, c, rho, r, lis.position[0] / r, t))
    print("relative L2 errors", errors)
    assert max(errors.values()) < 0.05


def test_modes_computed_when_no_file_is_given(tmp_path, monkeypatch):
    """Without ``modes`` the shader runs the modal analysis (cached) on the object's mesh."""
    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    from wavesolve.fem import modal_analysis
    from wavesolve.materials import MATERIALS

    mesh = trimesh.creation.box(extents=[0.1, 0.02, 0.02])
    table = {"type": "modal", "material": "aluminium", "resolution": 0.01, "max_frequency": 12000.0,
             "impacts": [{"time": 0.0, "position": [0.05, 0.0, 0.0], "impulse": [-0.01, 0.0, 0.0], "speed": 1.0}]}
    shader = _shader(tmp_path, table, mesh)
    ref = modal_analysis(mesh, MATERIALS["aluminium"], resolution=0.01, max_frequency=12000.0)
    np.testing.assert_allclose(shader.frequencies, ref.frequencies)
    assert np.any(shader.modal_acceleration(1e-5) != 0)


def test_time_parallel_chunks_match_one_run(write_scene, monkeypatch, sphere):
    """Two chunks (the modal shader keeps ringing across the cut through reset(t)) equal one run
    to 1e-3 relative L2 (the README's bound for chunked runs: sound left in the box at a chunk's
    end). Measured 4e-16: this short scene ends before either chunk's tail is cut, so only the
    shader's restart could differ, and it is exact."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(SCENE.replace("duration = 0.0005 } ]", "duration = 0.0005 },\n"
        "  { time = 0.003, position = [0.05, 0.0, 0.0], impulse = [-0.2, 0.0, 0.0], duration = 0.0005 } ]")))
    one = wavesolve.simulate(scene, backend="numpy", progress=False)
    two = wavesolve.simulate(scene, backend="numpy", progress=False, chunks=2)
    err = rel_l2(two.listener("on_axis"), one.listener("on_axis"))
    print("chunked vs one run", err)
    assert err < 1e-3


def test_bad_modes_input_names_the_key(tmp_path, sphere, monkeypatch):
    from wavesolve.errors import SceneError

    mesh, _, _ = sphere
    with pytest.raises(SceneError, match=r"modes.*has shapes for \d+ vertices"):
        _shader(tmp_path, TABLE, trimesh.creation.icosphere(subdivisions=2, radius=0.05))
    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SceneError, match=r"resolution.*modal analysis failed"):
        _shader(tmp_path, {**TABLE, "modes": None, "resolution": 0.0005}, mesh)
