"""``speaker`` shader: region selection, and a whole-surface speaker radiating as the pulsating sphere.

Reference: the exact pulsating sphere (PHYSICS.md, tests/exact.py). Bound 3 %: the issue's bound
for the pulsating sphere (measured 0.63 % at h = 5 mm in the README); here h = 1 cm, measured 1.6 %.
"""
from __future__ import annotations

import numpy as np
import pytest
import trimesh
from exact import pulsating_sphere, rel_l2
from new_shaders import load_listed, register_new_shaders
from scipy.io import wavfile

import wavesolve
from wavesolve.errors import SceneError
from wavesolve.shading import BoundaryPoints, ShaderContext

SpeakerShader = load_listed("wavesolve_shaders.speaker:SpeakerShader")
PULSE = {"waveform": "gaussian_derivative", "frequency": 500.0, "amplitude": 100.0}


def _make(tmp_path, **table):
    mesh = trimesh.creation.box(extents=[0.1, 0.1, 0.1])
    ctx = ShaderContext(scene_file="s.toml", scene_dir=tmp_path, key="objects[0].shaders[0]", object_name="o",
                        density=1.2, sound_speed=343.0, duration=0.01, mesh=mesh)
    return SpeakerShader(SpeakerShader.Config(type="speaker", **table), ctx), mesh


def _points(mesh):
    tri = np.arange(len(mesh.faces))
    pts = mesh.triangles.mean(axis=1)
    return BoundaryPoints(position=pts, normal=mesh.face_normals, position_local=pts,
                          normal_local=mesh.face_normals, triangle=tri)


def test_regions_by_box_faces_and_vertices(tmp_path):
    shader, mesh = _make(tmp_path, signal=PULSE, region={"box": [[0.04, -1, -1], [1, 1, 1]]})
    pts = _points(mesh)
    on = shader.region_mask(pts)
    assert np.array_equal(on, pts.position_local[:, 0] > 0.04)  # the +x face's two triangles
    t = 0.5 / (2 * np.pi * 500.0) * 5  # any time with s ≠ 0
    a = shader.normal_acceleration(t, pts)
    assert np.all(a[~on] == 0) and np.allclose(a[on], float(shader.signal(t)))
    faces, _ = _make(tmp_path, signal=PULSE, region={"faces": [0, 3]})
    assert np.flatnonzero(faces.region_mask(pts)).tolist() == [0, 3]
    verts, _ = _make(tmp_path, signal=PULSE, region={"vertices": mesh.faces[5].tolist()})
    assert np.flatnonzero(verts.region_mask(pts)).tolist() == [5]
    piston, _ = _make(tmp_path, signal=PULSE, region={"faces": list(range(12))}, pattern="piston",
                      direction=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(piston.normal_acceleration(t, pts), float(piston.signal(t)) * mesh.face_normals[:, 0])
    with pytest.raises(SceneError, match="out of range"):
        _make(tmp_path, signal=PULSE, region={"faces": [12]})


@pytest.mark.parametrize("table", [{"region": {"box": [[0.04, -1, -1], [1, 1, 1]]}},
                                   {"region": {"faces": list(range(12))}, "pattern": "piston",
                                    "direction": [1.0, 0.3, 0.0]}])
def test_block_evaluation_equals_time_by_time(tmp_path, table):
    """normal_acceleration_block over 200 times spanning the pulse equals normal_acceleration at
    each time: within 1e-13 of the peak (vectorised exp may round differently in the last bit)."""
    shader, mesh = _make(tmp_path, signal=PULSE, **table)
    pts = _points(mesh)
    times = np.linspace(0.0, 0.006, 200)
    want = np.stack([shader.normal_acceleration(float(t), pts) for t in times])
    got = shader.normal_acceleration_block(times, pts)
    peak = np.max(np.abs(want))
    assert peak > 0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * peak)


def test_wav_is_high_passed(tmp_path):
    """A 5 Hz component of the WAV is removed (2nd-order Butterworth at 20 Hz run forward and
    backward: −48 dB at 5 Hz) while 1 kHz passes; bound 5 % of the amplitude (residual 5 Hz 0.4 %
    plus the edge transients of the filter, which are outside the window checked)."""
    fs = 48000
    t = np.arange(fs // 2) / fs
    x = np.sin(2 * np.pi * 1000 * t) + 1.0 * np.sin(2 * np.pi * 5 * t)
    wavfile.write(tmp_path / "s.wav", fs, x.astype(np.float32))
    shader, _ = _make(tmp_path, signal={"file": "s.wav"}, region={"faces": [0]})
    tq = np.linspace(0.2, 0.3, 2001)
    err = shader.signal(tq) - np.sin(2 * np.pi * 1000 * tq)
    assert np.max(np.abs(err)) < 0.05


SCENE = """
[simulation]
duration = 0.004
cell_size = 0.01
precision = "float64"

[domain]
size = 0.36

[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.05, subdivisions = 3 }

[[objects.shaders]]
type = "speaker"
signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }
region = { box = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]] }

[[listeners]]
name = "near"
position = [0.15, 0.0, 0.0]
"""


def test_whole_surface_speaker_is_a_pulsating_sphere(write_scene, monkeypatch):
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(write_scene(SCENE))
    result = wavesolve.simulate(scene, backend="numpy", progress=False)
    p = result.listener("near")
    t = np.arange(len(p)) / result.sample_rate
    m = scene.config.medium
    ref = pulsating_sphere(scene.objects[0].shaders[0].signal, 0.05, m.sound_speed, m.density, 0.15, t)
    err = rel_l2(p, ref)
    print("relative L2", err)
    assert err < 0.03
