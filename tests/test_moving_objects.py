"""Animated objects: rigid and deforming meshes moving through the grid.

References:
  * oscillating sphere — the exact translating-sphere solution (PHYSICS.md) with α = ẍ(t) of the
    motion; the centre displacement (A/r = 1.3 %) is neglected by that linear solution.
  * quiet motion — linear acoustics: geometry moving with no shader (∂p/∂n = 0) is silent. With a
    silent initial field the discrete answer is exactly zero too; the bound 0.02 Pa RMS (1 % of the
    2 Pa a 100 m/s² pulsating reference gives at 0.15 m) is the issue's. The sharper checks below
    move a *sounding* body, whose answer is known, so fresh-cell and ghost-switching artefacts show.
  * breathing sphere — the exact pulsating-sphere solution with α = ä(t) of the radius.
  * volume conservation — the volume that leaves the box's interior equals the volume a pulsating
    surface displaced, and no flux stays once the sound has gone (Simulation.outflow).
Tolerances: the issue's (5 % for the oscillating sphere; the pulsating-sphere 3 % bound for the
breathing one); measured values are in each test's docstring.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import trimesh
from conftest import SCENES
from exact import pulsating_sphere, rel_l2, translating_sphere

import wavesolve
from wavesolve.grid import Grid
from wavesolve.meshes import Geometry
from wavesolve.motion import Keyframes, Oscillate, Spin, read_keyframes
from wavesolve.scene import misplaced
from wavesolve.simulation import Simulation


def _run(path):
    scene = wavesolve.load_scene(path)
    return scene, wavesolve.simulate(scene, progress=False)


def _alpha_x(motion):
    return lambda t: np.array([motion.state(float(x)).acceleration[0] for x in np.atleast_1d(t)])


def test_oscillating_sphere_matches_exact_solution():
    """Measured: 2.0 % on axis, 1.0 % at 45° (h = 5 mm, 2 mm amplitude at 150 Hz) with the default
    boundary keys, 2.0 % / 1.1 % with the exact update every step (2.2 % / 1.3 % before the
    volume balance held the sphere's net flux at its motion's Q̇, zero here)."""
    scene, result = _run(SCENES / "validation" / "oscillating_sphere.toml")
    alpha = _alpha_x(scene.objects[0].motion)
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        r = float(np.linalg.norm(lis.position))
        ref = translating_sphere(alpha, 0.05, 343.0, 1.2, r, lis.position[0] / r, t)
        assert rel_l2(p, ref) < 0.05, lis.name


QUIET = """
[simulation]
duration = {duration}
sample_rate = 44100.0
cell_size = 0.005
precision = "float64"
[domain]
size = 0.36
[[objects]]
name = "body"
mesh = {mesh}
position = [-0.004, 0.0, 0.0]
motion = {motion}
{shader}
[[listeners]]
name = "ear"
position = {listener}
"""
PULSE = ('[[objects.shaders]]\ntype = "prescribed"\npattern = "pulsate"\n'
         'signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }')
SPHERE = '{ primitive = "icosphere", radius = 0.05, subdivisions = 4 }'
CUBE = '{ primitive = "box", size = [0.08, 0.08, 0.08] }'


def test_translating_sphere_without_shader_is_silent(write_scene):
    """Sphere (a = 5 cm) at a constant 1 m/s, no shader: RMS < 0.02 Pa at 0.15 m. Measured: 0 Pa."""
    path = write_scene(QUIET.format(duration=0.003, mesh=SPHERE, shader="", listener="[0.15, 0.0, 0.0]",
                                    motion='{ type = "constant_velocity", velocity = [1.0, 0.0, 0.0] }'))
    _, result = _run(path)
    assert np.sqrt(np.mean(result.listener("ear") ** 2)) < 0.02


def test_pulsating_sphere_moving_at_1_m_s_has_no_clicks(write_scene):
    """A pulsating sphere (100 m/s² peak) moving at 1 m/s across cell boundaries, against the exact
    pulsating-sphere field from its moving centre (distance at emission time). The residual RMS is
    the artefact level a listener would hear: bound 0.02 Pa (issue), measured 0.0048 Pa with the
    default boundary keys, 0.0045 Pa with the exact update every step (the static sphere's own
    discretisation error is 0.0036 Pa RMS)."""
    path = write_scene(QUIET.format(duration=0.004, mesh=SPHERE, shader=PULSE, listener="[0.15, 0.0, 0.0]",
                                    motion='{ type = "constant_velocity", velocity = [1.0, 0.0, 0.0] }'))
    scene, result = _run(path)
    p = result.listener("ear")
    t = np.arange(len(p)) / result.sample_rate
    c = 343.0
    r = 0.15 - (-0.004 + 1.0 * (t - 0.15 / c))          # distance from the centre at emission time
    alpha = scene.objects[0].shaders[0].signal
    ref = pulsating_sphere(alpha, 0.05, c, 1.2, r, t)
    assert np.sqrt(np.mean((p - ref) ** 2)) < 0.02


def test_spinning_box_is_quiet_and_keeps_its_sound(write_scene):
    """A cube pulsating while it spins at 20 rev/s about z, heard on the z axis: by symmetry the
    listener sees the same body at every angle, so the spinning and static cubes must sound the
    same. Difference bound 0.02 Pa RMS (issue's quiet bound); measured 0.0048 Pa with the default
    boundary keys (every 7 steps here), 0.0050 Pa with the exact update every step (peak 2.1 Pa)."""
    sound = {}
    for motion in ('{ type = "static" }', '{ type = "spin", axis = [0.0, 0.0, 1.0], rate = 20.0 }'):
        path = write_scene(QUIET.format(duration=0.004, mesh=CUBE, shader=PULSE, listener="[-0.004, 0.0, 0.15]",
                                        motion=motion))
        sound[motion] = _run(path)[1].listener("ear")
    static, spinning = sound.values()
    assert np.max(np.abs(static)) > 1.0
    assert np.sqrt(np.mean((spinning - static) ** 2)) < 0.02
    silent = write_scene(QUIET.format(duration=0.002, mesh=CUBE, shader="", listener="[0.0, 0.0, 0.15]",
                                      motion='{ type = "spin", axis = [0.0, 0.0, 1.0], rate = 20.0 }'))
    assert np.sqrt(np.mean(_run(silent)[1].listener("ear") ** 2)) < 0.02


def test_breathing_sphere_matches_pulsating_sphere(write_scene, tmp_path):
    """A deforming icosphere whose radius is a(t) = a₀ + ε sin(2πft)·ramp (ε = 0.5 mm, f = 300 Hz),
    driven by the surface_motion shader, against the exact pulsating sphere with α = ä.
    Measured: 1.5 % (1.8 % before the volume balance held its net flux at the motion's Q̇); bound 3 %
    (the static pulsating-sphere bound)."""
    base = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    unit = base.vertices / np.linalg.norm(base.vertices, axis=1, keepdims=True)
    osc = Oscillate(np.zeros(3), np.eye(3), [0.0005, 0.0, 0.0], 300.0, ramp=1.0 / 300.0)
    times = np.linspace(0.0, 0.0062, 400)
    radius = 0.05 + np.array([osc.state(t).position[0] for t in times])
    with h5py.File(tmp_path / "breath.h5", "w") as f:
        f["time"] = times
        f["vertices"] = unit[None] * radius[:, None, None]
    scene_text = QUIET.format(duration=0.006, mesh=SPHERE, listener="[0.15, 0.0, 0.0]",
                              shader='[[objects.shaders]]\ntype = "surface_motion"',
                              motion='{ type = "deforming", file = "breath.h5" }').replace(
        "position = [-0.004, 0.0, 0.0]\n", "")
    scene, result = _run(write_scene(scene_text))
    p = result.listener("ear")
    t = np.arange(len(p)) / result.sample_rate
    alpha = _alpha_x(osc)
    ref = pulsating_sphere(alpha, 0.05, 343.0, 1.2, 0.15, t)
    assert rel_l2(p, ref) < 0.03


def test_keyframes_reproduce_a_known_motion(tmp_path):
    """Keyframes sampled at 2 kHz from x = A sin(2π·50 t) (and a 10 rad/s spin about z), read back
    from CSV: position to 1e-6 m, acceleration to 1 % of its peak (cubic-spline error ∝ (fΔt)²),
    angular velocity to 1e-6 rad/s."""
    t = np.arange(0, 0.1, 5e-4)
    x = 0.01 * np.sin(2 * np.pi * 50 * t)
    half = 0.5 * 10.0 * t
    rows = np.column_stack([t, x, 0 * t, 0 * t, np.cos(half), 0 * t, 0 * t, np.sin(half)])
    path = tmp_path / "k.csv"
    np.savetxt(path, rows, delimiter=",", header="time,x,y,z,qw,qx,qy,qz", comments="")
    motion = Keyframes(*read_keyframes(path))
    for tq in (0.02, 0.0513, 0.077):
        s = motion.state(tq)
        assert s.position[0] == pytest.approx(0.01 * np.sin(2 * np.pi * 50 * tq), abs=1e-6)
        a_exact = -0.01 * (2 * np.pi * 50) ** 2 * np.sin(2 * np.pi * 50 * tq)
        assert abs(s.acceleration[0] - a_exact) < 0.01 * 0.01 * (2 * np.pi * 50) ** 2
        np.testing.assert_allclose(s.angular_velocity, [0, 0, 10.0], atol=1e-6)


def _wobble_keyframes(tmp_path, drift: float = 0.0):
    """Keyframes at 2 kHz over 0.1 s, written as CSV: x = 0.01 sin(2π·50 t), y = drift·t, and a
    10 rad/s turn about the axis (0, 0.6, 0.8). Returns the file's path."""
    t = np.arange(0, 0.1, 5e-4)
    half = 0.5 * 10.0 * t
    rows = np.column_stack([t, 0.01 * np.sin(2 * np.pi * 50 * t), drift * t, 0 * t, np.cos(half), 0 * t,
                            np.sin(half) * 0.6, np.sin(half) * 0.8])
    path = tmp_path / "k.csv"
    np.savetxt(path, rows, delimiter=",", header="time,x,y,z,qw,qx,qy,qz", comments="")
    return path


def test_keyframe_poses_at_several_times_equal_the_states(tmp_path):
    """``pose`` (one spline call for several times, used by travelling boxes' far-field rays) gives
    exactly the position and rotation of ``state``; a state asked again is the same (kept) one."""
    motion = Keyframes(*read_keyframes(_wobble_keyframes(tmp_path)))
    times = np.array([-0.01, 0.0, 0.0123, 0.05, 0.0999, 0.2])     # inside and outside the range
    positions, rotations = motion.pose(times)
    for k, tq in enumerate(times):
        s = motion.state(float(tq))
        np.testing.assert_array_equal(positions[k], s.position)
        np.testing.assert_array_equal(rotations[k], s.rotation)
        assert motion.state(float(tq)) is s
    assert motion.pose(0.0123)[0].shape == (3,)


def test_prefetched_states_equal_the_states_asked_alone(tmp_path):
    """A simulation asks for its coming step times in blocks (Motion.prefetch: one vectorised
    spline call). Every field of a state that came in a block must be bit-equal to the state asked
    for alone, so results do not depend on where a block starts (a chunk of a time-parallel run
    starts its own). Checked for keyframes, inside and past the key range, and for a spin; and
    the same for Motion.states (the states of many times at once, not kept)."""
    path = _wobble_keyframes(tmp_path, drift=0.002)
    dt = 1.0 / 68600.0
    times = [(6800 + k) * dt for k in range(200)]          # crosses the last key, 0.0995 s
    for make in (lambda: Keyframes(*read_keyframes(path)),
                 lambda: Spin(np.zeros(3), np.eye(3), [0.3, 0.2, 1.0], 20.0)):
        ahead, alone = make(), make()
        ahead.prefetch(times[:128])
        ahead.prefetch(times[100:])
        many = make().states(np.array(times))
        for tq, c in zip(times, many):
            a, b = ahead.state(tq), alone.state(tq)
            for field in ("position", "rotation", "velocity", "angular_velocity"):
                np.testing.assert_array_equal(getattr(c, field), getattr(b, field), err_msg=f"states: {field}")
            for field in ("position", "rotation", "velocity", "acceleration", "angular_velocity",
                          "angular_acceleration"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{field} at {tq}")
        assert len(ahead._kept) <= ahead._KEEP


BAD_MOTION = {
    "non-increasing times": "time,x,y,z,qw,qx,qy,qz\n0,0,0,0,1,0,0,0\n0.1,0,0,0,1,0,0,0\n0.1,0,0,0,1,0,0,0\n",
    "NaN": "time,x,y,z,qw,qx,qy,qz\n0,0,0,0,1,0,0,0\n0.1,nan,0,0,1,0,0,0\n",
    "zero quaternion": "time,x,y,z,qw,qx,qy,qz\n0,0,0,0,1,0,0,0\n0.1,0,0,0,0,0,0,0\n",
}


@pytest.mark.parametrize("case", list(BAD_MOTION))
def test_bad_keyframe_file_exits_2(case, write_scene, cli, tmp_path):
    (tmp_path / "motion.csv").write_text(BAD_MOTION[case])
    path = write_scene(QUIET.format(duration=0.001, mesh=SPHERE, shader="", listener="[0.15, 0.0, 0.0]",
                                    motion='{ type = "keyframes", file = "motion.csv" }').replace(
        "position = [-0.004, 0.0, 0.0]\n", ""))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2
    assert "[objects[0].motion.file]" in proc.stderr and "fix:" in proc.stderr


def test_deforming_frames_must_match_the_mesh(write_scene, cli, tmp_path):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["time"] = np.array([0.0, 0.01])
        f["vertices"] = np.zeros((2, 12, 3))
    path = write_scene(QUIET.format(duration=0.001, mesh=SPHERE, shader="", listener="[0.15, 0.0, 0.0]",
                                    motion='{ type = "deforming", file = "bad.h5" }'))
    proc = cli("run", path, "--no-progress")
    assert proc.returncode == 2 and "vertices but the mesh has" in proc.stderr


def test_motion_leaving_the_box_is_refused(write_scene):
    path = write_scene(QUIET.format(duration=0.2, mesh=SPHERE, shader="", listener="[0.15, 0.0, 0.0]",
                                    motion='{ type = "constant_velocity", velocity = [1.0, 0.0, 0.0] }'))
    with pytest.raises(wavesolve.SceneError, match="over its motion"):
        wavesolve.load_scene(path)


PAST_DURATION = """
[simulation]
duration = 0.001
sample_rate = 16000.0
cell_size = 0.01
[domain]
size = 0.36
[[objects]]
name = "body"
mesh = { primitive = "icosphere", radius = 0.05, subdivisions = 2 }
motion = MOTION
[[listeners]]
name = "ear"
position = [0.0, 0.12, 0.0]
"""


def test_a_run_past_the_duration_stops_before_a_moving_object_leaves_the_box(write_scene):
    """Loading checks an object's placement over [0, duration] only; a Simulation stepped past
    that (the Python API allows it) must not let the object run into the absorbing layer. A sphere
    (a = 5 cm) at 60 m/s from the centre of a 0.36 m box (2 cm clearance kept from the layer) may go
    on until its edge reaches 0.16 m, at t = 0.11/60 = 1.83 ms: the run raises SceneError
    (key simulation.duration) as soon as that time is within the boundary system's look-ahead
    (boundary_interval steps), with the object still placed. An object that oscillates in place
    runs on past the duration untouched."""
    path = write_scene(PAST_DURATION.replace("MOTION", '{ type = "constant_velocity", velocity = [60.0, 0.0, 0.0] }'))
    scene = wavesolve.load_scene(path)
    sim = Simulation(scene, backend="numpy")
    with pytest.raises(wavesolve.SceneError) as err:
        sim.run(10 * scene.grid.steps_for(scene.duration), progress=False)
    assert err.value.key == "simulation.duration" and "'body'" in err.value.problem
    reach = float(err.value.problem.split("at t = ")[1].split(" s")[0])
    assert reach == pytest.approx(0.11 / 60.0, abs=2 * scene.grid.dt)
    look_ahead = scene.config.simulation.boundary_interval * scene.grid.dt
    assert scene.duration < sim.time and sim.time + look_ahead == pytest.approx(reach, abs=1e-8)   # 6 digits
    obj = scene.objects[0]
    assert not misplaced(obj.geometry.world_bounds(obj.motion.state(sim.time)), scene.grid)

    path = write_scene(PAST_DURATION.replace(
        "MOTION", '{ type = "oscillate", amplitude = [0.02, 0.0, 0.0], frequency = 200.0 }'), "still.toml")
    scene = wavesolve.load_scene(path)
    Simulation(scene, backend="numpy").run(4 * scene.grid.steps_for(scene.duration), progress=False)


@pytest.mark.parametrize("closed,sign_only,subdivisions", [(True, False, 3), (True, True, 3), (False, False, 3),
                                                          (True, True, 1)])
def test_deforming_classification_reuses_its_last_box_only_where_no_side_can_change(closed, sign_only,
                                                                                    subdivisions):
    """A deforming mesh's cells are classified every step; for a closed surface only a band around
    the last full evaluation is re-evaluated (``Body._refresh_deformed``) until a vertex has moved a
    cell. Against a full evaluation at every step of a wobbling icosphere (radius 5 cm, h = 5 mm,
    a 3 mm lopsided swell: the largest vertex displacement passes a cell, so both paths run): the
    sign of every cell of the box is the same, and every distance within 3 mm (the largest
    displacement) of the full one, or both beyond the band (4 cells, less 3 mm) where one of them
    is marked far (±inf); asked for signs only (a lone object), the signs. An open surface (the
    sphere less a cap) is evaluated in full every step: its winding number is not an integer; so
    is a coarse sphere (3 cm edges), whose cells marked far (nearest vertex beyond 4 cells) may lie
    closer to its surface than the band reaches."""
    from wavesolve.boundary import Body, _region_box
    from wavesolve.motion import Deforming, VertexTrack

    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.05)
    if not closed:
        mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[mesh.triangles_center[:, 2] < 0.04], process=False)
    x = mesh.vertices
    times = np.linspace(0.0, 0.01, 21)
    swell = 0.003 * np.sin(2 * np.pi * 100 * times)[:, None, None] * (1 + x[None, :, :1] / 0.05) / 2
    frames = x[None] * (1 + swell / 0.05)
    geometry = Geometry(mesh, np.zeros(3), np.eye(3))
    grid = Grid(h=0.005, dt=1e-5, sound_speed=343.0, shape=(40, 40, 40), layer=4, origin=(-0.1, -0.1, -0.1))
    body = Body(geometry, Deforming(np.zeros(3), np.eye(3), VertexTrack(times, frames)))
    body.prepare(grid)
    refreshed = 0
    for t in np.linspace(0.0, 0.01, 41):
        state = body.at(t)
        lo, hi = _region_box(grid, body, state, 2)
        cached = body._region_cache
        d = body.region_distance(grid, lo, hi, state, sign_only=sign_only)
        refreshed += body._region_cache is cached and cached is not None
        full = Body(Geometry(mesh, np.zeros(3), np.eye(3)), Deforming(np.zeros(3), np.eye(3), VertexTrack(times, frames)))
        full.prepare(grid)
        full.at(t)
        want = full.region_distance(grid, lo, hi, state)
        np.testing.assert_array_equal(d < 0, want < 0)
        if sign_only:
            continue
        finite = np.isfinite(want) & np.isfinite(d)
        assert np.all(np.abs(d[finite] - want[finite]) <= 0.003 + 1e-12)
        far = np.isinf(d) != np.isinf(want)          # beyond the 4-cell band (±inf) in one of them
        assert np.all(np.minimum(np.abs(d[far]), np.abs(want[far])) >= 4 * grid.h - 0.003)
    if closed and subdivisions == 3:
        assert refreshed > 10
    else:
        assert refreshed == 0 and (closed or body._region_cache is None)


CLICK_IN_FIXED_BOX = """
[simulation]
duration = 0.012
cell_size = 0.01
precision = "float64"
[domain]
size = [0.4, 0.3, 0.3]
center = [-0.16, 0.0, 0.0]
[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.05, subdivisions = 3 }
position = [-0.25, 0.0, 0.0]
motion = { type = "constant_velocity", velocity = [SPEED, 0.0, 0.0] }
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "gaussian_derivative", frequency = 2500.0, amplitude = 200.0 }
[[listeners]]
name = "ear"
position = [-0.16, 0.1, 0.0]
"""


@pytest.fixture(scope="module")
def click_outflow(tmp_path_factory):
    """Net volume flux out of a fixed box's interior (m³/s, Simulation.outflow) at every step after
    a click from a sphere (a = 5 cm, 200 m/s² peak, 2.5 kHz) at rest and moving at 15 m/s; and the
    scene at rest."""
    out = {}
    for speed in (0.0, 15.0):
        path = tmp_path_factory.mktemp("outflow") / "click.toml"
        path.write_text(CLICK_IN_FIXED_BOX.replace("SPEED", str(speed)))
        scene = wavesolve.load_scene(path)
        sim = Simulation(scene, backend="auto")
        flux = []
        for _ in range(scene.grid.steps_for(scene.duration)):
            sim.run(1, progress=False)
            flux.append(sim.outflow())
        out[speed] = np.asarray(flux)
        out["scene", speed] = scene
    return out


def test_the_volume_a_resting_sphere_pushes_out_leaves_the_box(click_outflow):
    """Volume conservation: the volume that crosses the interior's boundary, Σ outflow Δt, equals
    the volume the pulsating surface displaced, 4πa² ∫∫aₙ dt (the Gaussian derivative's second
    integral, by quadrature), and once the click has gone (the last 2 ms of 12) the flux is below
    1e-4 of its peak (6.3e-4 m³/s). Bounds: 5 % (the sharp-interface sphere at h/a = 0.2; the flux's
    peak is 3 % above the prescribed one, 6.4e-4 against 6.2e-4 m³/s); measured 2.1 % and 2.5e-6."""
    flux, scene = click_outflow[0.0], click_outflow["scene", 0.0]
    signal = scene.objects[0].shaders[0].signal
    t = np.linspace(0.0, scene.duration, 20001)
    accel = np.array([float(signal(x)) for x in t])
    velocity = np.concatenate([[0.0], np.cumsum(0.5 * (accel[1:] + accel[:-1]) * np.diff(t))])
    displaced = 4.0 * np.pi * 0.05 ** 2 * float(np.sum(0.5 * (velocity[1:] + velocity[:-1]) * np.diff(t)))
    assert flux.sum() * scene.grid.dt == pytest.approx(displaced, rel=0.05)
    late = int(0.002 / scene.grid.dt)
    assert np.abs(flux[-late:]).max() < 1e-4 * np.abs(flux).max()


@pytest.mark.xfail(strict=True, reason="known defect (twenty-third session): a moving object that sounds leaves a "
                   "steady volume sink behind (README, Travelling sources)")
def test_a_click_from_a_moving_sphere_leaves_no_volume_flux(click_outflow):
    """The same requirement moving at 15 m/s: once the click has gone, the flux is below 1e-4 of
    its peak. Measured: a steady inflow of 5.4e-6 m³/s, 8.5e-3 of the peak, from about 1.5 ms on for
    as long as the run lasts (at 5 m/s an outflow of 4.7e-6), so that by 12 ms only 0.41 of the
    displaced volume has left. It scales with the click's amplitude and is there with the boundary
    updated exactly every step (bench/RESULTS.md, twenty-third session). A steady sink radiates no
    pressure, but the absorbing layer has to carry the flow. Strict: when fixed this passes."""
    flux, scene = click_outflow[15.0], click_outflow["scene", 15.0]
    late = int(0.002 / scene.grid.dt)
    assert np.abs(flux[-late:]).max() < 1e-4 * np.abs(flux).max()
