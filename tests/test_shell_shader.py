"""Thin shells in the acoustic grid: the ``shell`` shader, closed meshes, and a one-cell plate.

References: the shell modal analysis itself (``wavesolve.shell_fem``, validated in
test_shell_modes.py); thin-shell mass ρ h A; causality (no sound can reach the far side of a
plate before the wave diffracted round its rim does); the rigid ``oscillate`` motion as the
reference for a file-deformed shell moving the same way.
"""
from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from conftest import SCENES
from new_shaders import load_listed, register_new_shaders

import wavesolve
from wavesolve.cli import main as cli_main
from wavesolve.errors import SceneError
from wavesolve.materials import parse_material
from wavesolve.modes import ModeSet
from wavesolve.shading import ShaderContext
from wavesolve.shell_fem import shell_modal_analysis
from wavesolve.shell_mesh import disk_mesh, thicken

ShellShader = load_listed("wavesolve_shaders.shell:ShellShader")

HIT = {"time": 0.001, "position": [0.03, 0.0, 0.003], "impulse": [0.0, 0.0, -0.01], "speed": 2.0}


@pytest.fixture
def plate(tmp_path, monkeypatch):
    """A brass disk (a = 6 cm) mid-surface and its closed mesh 6 mm thick, files in tmp_path."""
    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    mid = disk_mesh(0.06, rings=6)
    closed, index = thicken(mid, 0.006)
    mid.export(tmp_path / "mid.obj")
    return mid, closed, index


def _shader(tmp_path, closed, **table):
    ctx = ShaderContext(scene_file="s.toml", scene_dir=tmp_path, key="objects[0].shaders[0]", object_name="o",
                        density=1.2, sound_speed=343.0, duration=0.05, mesh=closed)
    base = {"type": "shell", "material": "brass", "midsurface": "mid.obj", "thickness": 0.001,
            "max_frequency": 5000.0, "impacts": [HIT], "other": "oak", "other_radius": 0.007}
    return ShellShader(ShellShader.Config(**(base | table)), ctx)


def test_shell_shader_puts_mid_surface_modes_on_both_faces(tmp_path, plate):
    """The shader's modes are the shell analysis of the mid-surface (same frequencies), each closed
    vertex moves with the mid-surface vertex it was extruded from (to 1e-6 of the shape: the closest
    point of an offset vertex of a flat plate is that vertex, up to the OBJ file's 9-digit rounding
    of the mid-surface; measured 4e-7), and the contact mass is the shell's
    ρ h A (the 6 mm closed mesh would weigh 6×), with I_zz of a thin disk ½ m a² (2 %: the polygon
    of 36 sides is not a circle)."""
    mid, closed, index = plate
    shader = _shader(tmp_path, closed)
    from wavesolve.meshes import load_mesh_file

    mid = load_mesh_file(tmp_path / "mid.obj")     # as the shader reads it (OBJ keeps 9 digits)
    modes = shell_modal_analysis(mid, parse_material("brass", "s", "m"), 0.001, max_frequency=5000.0)
    np.testing.assert_allclose(shader.frequencies, modes.frequencies)
    scale = np.abs(modes.shapes).max()
    np.testing.assert_allclose(shader.shapes, modes.shapes[index], atol=1e-6 * scale)
    from wavesolve_shaders.shell import shell_mass_properties

    mass, center, inertia = shell_mass_properties(mid, 8500.0, 0.001)
    assert mass == pytest.approx(8500.0 * 0.001 * mid.area, rel=1e-12)
    assert inertia[2, 2] == pytest.approx(0.5 * mass * 0.06 ** 2, rel=0.02)
    assert np.linalg.norm(center) < 1e-12
    assert shader.impacts[0].tau < 1e-3 and shader.modal_acceleration(0.0012).any()


def test_shell_shader_refuses_bad_input(tmp_path, plate):
    """Every problem is a SceneError naming the key: a flat shell struck without the striker's
    radius (Hertz needs some curvature), a closed mesh that does not wrap the mid-surface, a modes
    file of another mesh, a missing mid-surface file."""
    _, closed, _ = plate
    cases = [({"other_radius": None}, "impacts[0]"),
             ({"midsurface": "nope.obj"}, "midsurface"),
             ({"modes": "other.h5"}, "modes")]
    ModeSet([100.0], [0.01], np.zeros((5, 3, 1))).save(tmp_path / "other.h5")
    for table, key in cases:
        with pytest.raises(SceneError) as err:
            _shader(tmp_path, closed, **table)
        assert key in str(err.value)
    moved = closed.copy()
    moved.apply_translation([0.0, 0.0, 0.05])
    with pytest.raises(SceneError, match="do not match"):
        _shader(tmp_path, moved)


def test_modal_cli_shell_writes_closed_mesh_and_its_modes(tmp_path, plate, capsys):
    """`wavesolve modal MID --shell --thickness T --closed-mesh OUT --acoustic-thickness A` writes a
    watertight closed mesh and modes on its vertices that the `modal` shader accepts; the
    frequencies are the shell analysis'. Without --thickness it is refused (exit 2)."""
    out = tmp_path / "modes.h5"
    args = ["modal", str(tmp_path / "mid.obj"), "--shell", "--material", "brass", "--max-frequency", "5000",
            "-o", str(out)]
    assert cli_main(args) == 2
    assert cli_main(args + ["--thickness", "0.001", "--closed-mesh", str(tmp_path / "closed.obj"),
                            "--acoustic-thickness", "0.006"]) == 0
    from wavesolve.meshes import load_mesh_file

    closed = load_mesh_file(tmp_path / "closed.obj")
    modes = ModeSet.load(out)
    assert closed.is_watertight and modes.shapes.shape[0] == len(closed.vertices)
    mid = load_mesh_file(tmp_path / "mid.obj")
    ref = shell_modal_analysis(mid, parse_material("brass", "s", "m"), 0.001, max_frequency=5000.0)
    np.testing.assert_allclose(modes.frequencies, ref.frequencies)
    ModalShader = load_listed("wavesolve_shaders.modal:ModalShader")
    ctx = ShaderContext(scene_file="s.toml", scene_dir=tmp_path, key="k", object_name="o", density=1.2,
                        sound_speed=343.0, duration=0.05, mesh=closed)
    shader = ModalShader(ModalShader.Config(type="modal", material="brass", modes="modes.h5",
                                            impacts=[dict(HIT, duration=1e-4)]), ctx)
    assert len(shader.frequencies) == len(ref.frequencies)


LEAK = """
[simulation]
duration = {duration}
cell_size = 0.005
precision = "float64"
[domain]
size = 0.3
[[objects]]
name = "source"
mesh = {{ primitive = "icosphere", radius = 0.025, subdivisions = 3 }}
position = [0.0, 0.0, 0.07]
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 2000.0, amplitude = 100.0 }}
[[objects]]
name = "plate"
mesh = "plate.obj"
position = [0.0013, 0.0017, 0.0011]
orientation = [{qw}, {qx}, 0.0, 0.0]
[[listeners]]
name = "front"
position = [0.0, 0.03, 0.025]
[[listeners]]
name = "behind"
position = [0.0, 0.0, -0.03]
"""


def test_thickened_shell_one_cell_thick_does_not_leak(tmp_path):
    """A shell's closed mesh one cell thick (a disk a = 13 cm thickened to 5 mm on a 5 mm grid,
    tilted 10° so that it is not grid-aligned, unlike the box of
    test_ghost_cells.test_plate_one_cell_thick_does_not_leak which compares far-side levels after
    diffraction) between a pulsating sphere and a listener. Until the wave diffracted round the rim
    can arrive (shortest source–rim–listener path / c), causality says the far side hears nothing;
    a leak through the one-cell plate would arrive 0.5 ms earlier with most of the pulse. The only
    sound allowed in that window is the scheme's numerical precursor and the Gaussian pulse's early
    tail diffracted round the rim: far-side RMS below 1 % of the near side's in the same window
    (−40 dB; measured 0.03 %, see the assertion message). One value per cell would pass the front
    pressure straight through (test_ghost_cells measured 0.70 vs 0.21 Pa)."""
    from wavesolve.scene import parse_scene
    from wavesolve.simulation import Simulation

    mid = disk_mesh(0.13, rings=10)
    closed, _ = thicken(mid, 0.005)
    closed.export(tmp_path / "plate.obj")
    tilt = math.radians(10.0)
    text = LEAK.format(duration=0.0012, qw=math.cos(tilt / 2), qx=math.sin(tilt / 2))
    (tmp_path / "leak.toml").write_text(text)
    scene = parse_scene(text, str(tmp_path / "leak.toml"))
    sim = Simulation(scene)
    assert sim.ghosts.n_back > 100                       # the plate is one cell thick: back values in use
    out = sim.run(scene.grid.steps_for(scene.duration), progress=False)
    dt = scene.grid.dt
    # shortest path from the source sphere's surface round the (tilted) rim to each listener
    a = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    rim = np.column_stack([0.13 * np.cos(a), 0.13 * np.sin(a), np.zeros_like(a)])
    c_, s_ = math.cos(tilt), math.sin(tilt)
    rim = rim @ np.array([[1, 0, 0], [0, c_, -s_], [0, s_, c_]]).T + [0.0013, 0.0017, 0.0011]
    src = np.array([0.0, 0.0, 0.07])
    behind = np.array([0.0, 0.0, -0.03])
    path = np.min(np.linalg.norm(rim - src, axis=1) + np.linalg.norm(rim - behind, axis=1)) - 0.025
    window = int(path / 343.0 / dt)
    assert window < out.shape[1]
    front, far = out[0, :window], out[1, :window]
    ratio = np.sqrt(np.mean(far ** 2) / np.mean(front ** 2))
    assert np.sqrt(np.mean(front ** 2)) > 0.3
    assert ratio < 1e-4, f"far/near RMS before diffraction {ratio:.2e}"
    assert np.abs(out[1, window:]).max() > 0.01               # then the diffracted wave arrives


def test_file_deformed_shell_sounds_like_the_shell_shader(write_scene, tmp_path, monkeypatch):
    """Externally simulated shell motion comes in as a deforming mesh (HDF5 vertex frames) with the
    surface_motion shader. Frames of the closed mesh moved by the shell's own modes, Σᵢ Uᵢ qᵢ(t)
    with qᵢ from the `shell` shader struck once (a brass disk a = 6 cm, 1 mm, modes to 1.5 kHz,
    thickened to 1 cm on a 1 cm grid, frames every 20 µs), must sound like the `shell` shader
    itself on the static mesh: the same aₙ reached through the file's C² spline in time, the
    per-step reclassification and the deformed normals. The strike is kept tiny (0.3 µm) so the
    geometry itself does not move on the grid's scale. Bound 2 % relative L2: the spline's
    acceleration error (0.2 % of the peak vertex acceleration, measured) plus the geometric
    perturbation; measured 0.6 % with both volume-balanced (their Q̇ from the modes' net volumes
    and from the file's vertex accelerations), 0.9 % (0.4 % at another placement) with neither."""
    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    register_new_shaders(monkeypatch)
    mid = disk_mesh(0.06, rings=6)
    closed, _ = thicken(mid, 0.01)
    mid.export(tmp_path / "mid.obj")
    closed.export(tmp_path / "disk.obj")
    scene = """
        [simulation]
        duration = 0.005
        cell_size = 0.01
        [domain]
        size = 0.24
        [[objects]]
        name = "shell"
        mesh = "disk.obj"
        position = [0.0013, 0.0017, 0.0011]
        MOTION
        [[objects.shaders]]
        SHADER
        [[listeners]]
        name = "ear"
        position = [0.0213, 0.0117, 0.0711]
        """
    shell = ('type = "shell"\nmaterial = "brass"\nmidsurface = "mid.obj"\nthickness = 0.001\n'
             'max_frequency = 1500.0\nimpacts = [ { time = 0.0005, position = [0.03, 0.01, 0.005], '
             'impulse = [0.0, 0.0, -0.00002], duration = 0.001 } ]')
    path = write_scene(scene.replace("MOTION", "").replace("SHADER", shell), "shader.toml")
    shaded = wavesolve.load_scene(path)
    shader = shaded.objects[0].shaders[0]
    times = np.arange(0.0, 0.0052, 2e-5)
    q = np.array([shader.modal_displacement(t) for t in times])
    shader.reset(0.0)
    frames = np.asarray(closed.vertices)[None] + np.einsum("vdm,tm->tvd", shader.shapes, q)
    with h5py.File(tmp_path / "frames.h5", "w") as fh:
        fh["time"] = times
        fh["vertices"] = frames
    reference = wavesolve.simulate(shaded, progress=False).listener("ear")
    path = write_scene(scene.replace("MOTION", 'motion = { type = "deforming", file = "frames.h5" }')
                       .replace("SHADER", 'type = "surface_motion"'), "file.toml")
    heard = wavesolve.simulate(wavesolve.load_scene(path), progress=False).listener("ear")
    err = np.linalg.norm(heard - reference) / np.linalg.norm(reference)
    assert np.max(np.abs(reference)) > 1e-4
    assert err < 0.02, f"file vs shell shader: {err:.2%}"


def test_cymbal_showcase_loads_and_steps(monkeypatch, tmp_path):
    """The cymbal scene validates and its shell shader builds (modes below 600 Hz here, to keep the
    test short: the scene's 4 kHz take about a minute) and a few steps run with sound at the
    listener once the stick has struck."""
    from wavesolve.scene import parse_scene
    from wavesolve.simulation import Simulation

    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path))
    register_new_shaders(monkeypatch)
    path = SCENES / "showcase" / "cymbal.toml"
    text = path.read_text().replace("max_frequency = 4000.0", "max_frequency = 600.0")
    text = text.replace("time = 0.005,", "time = 0.0,")
    scene = parse_scene(text, str(path))
    shell = scene.objects[0].shaders[0]
    assert 10 < len(shell.frequencies) and shell.frequencies.max() <= 600.0
    sim = Simulation(scene)
    out = sim.run(60, progress=False)
    assert np.abs(out).max() > 0.0


@pytest.mark.parametrize("shape", ["open cymbal-like disk with a hole", "closed sphere (a sealed can)"])
def test_thicken_makes_a_closed_solid_of_the_right_volume(shape):
    """`thicken` turns an open mid-surface (with a rim and a hole) or a closed one (a hollow shell:
    two nested surfaces) into a watertight mesh with outward normals whose volume is the mid-surface
    area × thickness to 2 % (offsetting a curved polyhedral surface along vertex normals changes
    its area at second order in t/R: ≤ 0.5 % here),
    each vertex mapped to the mid-surface vertex it came from, at distance t/2 from it."""
    import trimesh

    t = 0.004
    if shape.startswith("open"):
        mid = disk_mesh(0.1, rings=8, inner_radius=0.008, height=lambda r: 0.01 * (1 - r / 0.1) ** 2)
    else:
        mid = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    closed, index = thicken(mid, t)
    assert closed.is_watertight and closed.volume > 0
    assert closed.volume == pytest.approx(mid.area * t, rel=0.02)
    gap = np.linalg.norm(closed.vertices - mid.vertices[index], axis=1)
    np.testing.assert_allclose(gap, t / 2, rtol=1e-9)


@pytest.mark.slow
def test_breathing_spherical_shell_radiates_as_the_pulsating_sphere(write_scene, tmp_path, monkeypatch):
    """End to end on a closed, curved shell: a thin spherical shell (mid-surface R = 5 cm, icosphere
    of 2562 vertices, h = 1 mm, a soft material E = 8.6 MPa, ρ = 1000, ν = 0.3) has a breathing
    mode at ω = √(2E/(ρ(1 − ν)))/R (thin-shell membrane theory, Love; bending adds O(h²/R²)):
    within 1 % (measured −0.0004 %). Given to the `shell` shader as a mid-surface modes file and
    struck, on the mid-surface thickened to 1 cm (outer radius a = 5.5 cm) on a 1 cm grid, it
    must radiate as the exact pulsating sphere of radius a with α(t) = Ū_r q̈(t) (PHYSICS.md): bound
    5 % relative L2 at r = 0.15 m (the issue's bound for a validation sphere; the pulsating-sphere
    check reaches 0.6 % at h = 5 mm, this 1 cm grid costs more). Measured 1.4 %. The discrete mode
    is uniform to 2 % (checked), so it radiates as a monopole."""
    import scipy.sparse.linalg as sla
    import trimesh
    from exact import pulsating_sphere, rel_l2

    from wavesolve.materials import Material
    from wavesolve.shell_fem import build_shell_model

    monkeypatch.setenv("WAVESOLVE_CACHE", str(tmp_path / "cache"))
    register_new_shaders(monkeypatch)
    R, h = 0.05, 0.001
    soft = {"density": 1000.0, "youngs_modulus": 8.6e6, "poisson_ratio": 0.3}
    mid = trimesh.creation.icosphere(subdivisions=4, radius=R)
    mid.export(tmp_path / "ball_mid.obj")
    from wavesolve.meshes import load_mesh_file

    mid = load_mesh_file(tmp_path / "ball_mid.obj")
    omega0 = math.sqrt(2 * soft["youngs_modulus"] / (soft["density"] * (1 - soft["poisson_ratio"]))) / R
    model = build_shell_model(mid.vertices, mid.faces, Material(**soft), h)
    vals, vecs = sla.eigsh(model.K.tocsc(), k=2, M=model.M.tocsc(), sigma=omega0 ** 2, which="LM")
    normals = np.asarray(mid.vertices) / np.linalg.norm(mid.vertices, axis=1, keepdims=True)
    shapes = vecs.reshape(len(mid.vertices), 6, -1)[:, :3, :]
    radial = np.einsum("vd,vdm->vm", normals, shapes)
    best = int(np.argmax(np.abs(radial.mean(axis=0)) / np.sqrt((radial ** 2).mean(axis=0))))
    assert math.sqrt(vals[best]) / omega0 == pytest.approx(1.0, abs=0.01)
    shape = shapes[:, :, best:best + 1] * np.sign(radial[:, best].mean())
    u_r = float(np.einsum("vd,vd->v", normals, shape[:, :, 0]).mean())
    assert np.std(np.einsum("vd,vd->v", normals, shape[:, :, 0])) < 0.02 * u_r
    ModeSet([math.sqrt(vals[best]) / (2 * math.pi)], [0.02], shape).save(tmp_path / "ball_modes.h5")
    closed, _ = thicken(mid, 0.01)
    closed.export(tmp_path / "ball.obj")
    material = "{ " + ", ".join(f"{k} = {v}" for k, v in soft.items()) + " }"
    path = write_scene(f"""
        [simulation]
        duration = 0.006
        cell_size = 0.01
        precision = "float64"
        [domain]
        size = 0.4
        [[objects]]
        name = "ball"
        mesh = "ball.obj"
        [[objects.shaders]]
        type = "shell"
        material = {material}
        midsurface = "ball_mid.obj"
        thickness = {h}
        modes = "ball_modes.h5"
        impacts = [ {{ time = 0.0003, position = [0.0, 0.0, 0.055], impulse = [0.0, 0.0, -0.001], duration = 0.0008 }} ]
        [[listeners]]
        name = "ear"
        position = [0.15, 0.0, 0.0]
        """)
    scene = wavesolve.load_scene(path)
    shader = scene.objects[0].shaders[0]
    grid_t = np.arange(0.0, 0.0075, 2e-6)
    qdd = np.array([shader.modal_acceleration(t)[0] for t in grid_t])
    shader.reset(0.0)
    result = wavesolve.simulate(scene, progress=False)
    p = result.listener("ear")
    t = np.arange(len(p)) / result.sample_rate
    ref = pulsating_sphere(lambda s: u_r * np.interp(s, grid_t, qdd), R + 0.005, 343.0, 1.2, 0.15, t)
    err = rel_l2(p, ref)
    assert np.max(np.abs(ref)) > 0.01
    assert err < 0.05, f"shell breathing vs exact pulsating sphere: {err:.2%}"
