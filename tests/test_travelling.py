"""Travelling sources: a box that follows its object by whole-cell shifts (wavesolve.following,
wavesolve.travelling).

The reference is the same scene in one large fixed box that covers the whole path (the moving
object reclassified every step inside it, the listener sampled in the box): the same
discretisation (h = 1 cm), so the difference is what the travelling box adds — the shifts, the
moving far-field estimate and its retarded times. A pulsating sphere (a = 5 cm) emits a 2 kHz
Hann-windowed sine burst (10 cycles, 100 m/s²) while moving at 20 m/s along x: 0.17 m, about 17
box shifts in 8.5 ms.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from conftest import LONG_PATH_SCENE
from exact import pulsating_sphere, rel_l2

import wavesolve
from wavesolve.chunks import plan_chunks, run_chunk
from wavesolve.energy import leapfrog_energy
from wavesolve.errors import SceneError
from wavesolve.following import FollowingSimulation
from wavesolve.scene import parse_scene
from wavesolve.signals import SineBurst
from wavesolve.travelling import check_travellers, travellers

C, V, F0 = 343.0, 20.0, 2000.0
NEAR = [0.1, 0.15, 0.0]       # 0.15 m from the path (the quiet-motion bound's distance)
SIDE = [0.35, 0.2, 0.0]
AHEAD, BEHIND = [1.2, 0.0, 0.0], [-1.0, 0.0, 0.0]

SPHERE = """
[simulation]
duration = {duration}
cell_size = 0.01
precision = "float64"
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.05, subdivisions = 3 }}
motion = {{ type = "constant_velocity", velocity = [{v}, 0.0, 0.0] }}
{follow}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "sine_burst", frequency = {f0}, amplitude = 100.0, cycles = 10 }}
{domain}
{listeners}
"""


def _listeners(points: dict) -> str:
    return "".join(f'[[listeners]]\nname = "{k}"\nposition = {v}\n' for k, v in points.items())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The sphere in a following box (listeners near, to the side, far ahead and behind) and in a
    large fixed box (near and side listeners inside it)."""
    d = tmp_path_factory.mktemp("travel")
    follow = d / "follow.toml"
    follow.write_text(SPHERE.format(duration=0.0085, v=V, f0=F0, follow="[objects.domain]\nfollow = true",
                                    domain="[domain]\nsize = 0.3",
                                    listeners=_listeners({"near": NEAR, "side": SIDE, "ahead": AHEAD,
                                                          "behind": BEHIND}))
                      + '[[slices]]\nname = "middle"\naxis = "z"\nposition = 0.0\nobject = "ball"\n'
                        'times = [0.002, 0.004, 0.0055, 0.007]\n')
    fixed = d / "fixed.toml"
    fixed.write_text(SPHERE.format(duration=0.0085, v=V, f0=F0, follow="",
                                   domain="[domain]\ncenter = [0.15, 0.1, 0.0]\nsize = [0.6, 0.5, 0.3]",
                                   listeners=_listeners({"near": NEAR, "side": SIDE})))
    return (wavesolve.simulate(follow, progress=False), wavesolve.simulate(fixed, progress=False),
            wavesolve.load_scene(follow))


@pytest.mark.slow
def test_travelling_sphere_matches_the_large_fixed_box(runs):
    """Far-field estimate from the travelling box vs the in-box sample of the large fixed box, at
    0.15 m and 0.41 m. Bound 5 % relative L2 (the issue's). Measured 2.0 % (near) and 3.5 % (side)
    (twenty-second session; 2.1 % and 3.2 % with a new layer cell's pressure put along the shift axis),
    both boxes' boundaries keyed every 3 steps (the same with the exact update every step in both;
    3.5 % on the side with keys in the large box only);
    at rest in the same boxes 1.2 % and 1.9 % (the far-field fit's own error). With the interior
    velocities left at zero when a plane enters the trailing layer (instead of rebuilt) 5.8 % and
    7.5 %; shifting the pressure alone (not the layer's fields) 46 % and 37 %."""
    moving, fixed, _ = runs
    assert "shifted [17, 0, 0]" in moving.metadata["travelling_boxes"]
    for name in ("near", "side"):
        assert rel_l2(moving.listener(name), fixed.listener(name)) < 0.05


def _frequency(p: np.ndarray, rate: float) -> float:
    """Frequency from the zero crossings (linearly interpolated) where |p| exceeds 30 % of its peak."""
    loud = np.flatnonzero(np.abs(p) > 0.3 * np.abs(p).max())
    seg = p[loud[0]:loud[-1] + 1]
    k = np.flatnonzero(np.sign(seg[:-1]) != np.sign(seg[1:]))
    times = (k + seg[k] / (seg[k] - seg[k + 1])) / rate
    return (len(times) - 1) / (2.0 * (times[-1] - times[0]))


@pytest.mark.slow
def test_travelling_sphere_shows_the_doppler_shift(runs):
    """Listeners 1.2 m ahead of and 1 m behind the path (cosθ = ±1) hear f·c/(c ∓ v): 2123.8 Hz and
    1889.8 Hz for f = 2 kHz at 20 m/s (a ±6 % shift). The frequency is measured from the ~16 zero
    crossings of the loud part of the burst. That estimator has a bias of its own (the sphere's
    first-order response and the Hann window move the crossings: −0.54 % on the exact at-rest
    pulsating-sphere field), so the reference is the same estimator applied to the exact field of a
    sphere at rest emitting the Doppler-shifted burst (at constant v and cosθ = ±1 the shifted burst
    is the same burst at f·c/(c ∓ v)). Bound 0.5 % (a twelfth of the shift). Measured: +0.03 %
    ahead, −0.24 % behind. A source without Doppler (the fixed box's ray origin at t = 0) would be
    off by 6 %."""
    moving, _, _ = runs
    rate = moving.sample_rate
    t = np.arange(int(0.012 * rate)) / rate
    for name, sign in (("ahead", 1.0), ("behind", -1.0)):
        shifted = SineBurst(waveform="sine_burst", frequency=F0 * C / (C - sign * V), amplitude=100.0, cycles=10)
        expected = _frequency(pulsating_sphere(shifted, 0.05, C, 1.2, 1.0, t), rate)
        assert _frequency(moving.listener(name), rate) == pytest.approx(expected, rel=0.005)
        assert abs(expected / F0 - 1) > 0.05


@pytest.mark.slow
def test_box_shifts_are_silent(runs):
    """No clicks at the shifts: the residual against the large fixed box at 0.15 m from the path, in
    0.2 ms windows around the arrival of every one of the 17 shifts at the listener, stays under
    the quiet-motion bound of the animated-objects issue, 0.02 Pa RMS (signal peak ~0.9 Pa there).
    Measured (twenty-second session): at most 0.0100 Pa, 0.0058 Pa RMS over the whole signal.
    Measured (fourteenth session; the same at e830fda, before p_z was derived): at most 0.0132 Pa in
    the 16 windows heard within the run, 0.0060 Pa RMS over the whole signal (an earlier session
    measured 0.0077 and 0.0044; the far-field fit's error at a moving source; a click would be a
    spike confined to the shift windows)."""
    moving, fixed, scene = runs
    p, ref = moving.listener("near"), fixed.listener("near")
    rate = moving.sample_rate
    h, dt = scene.grid.h, scene.grid.dt
    residual = p - ref
    worst, heard = 0.0, 0
    for k in range(1, 18):
        t_shift = (k - 0.5) * h / V                      # centre drifts h/2 past the box centre
        x = np.array([V * t_shift, 0.0, 0.0])
        t_arrive = t_shift + np.linalg.norm(np.asarray(NEAR) - x) / C
        if t_arrive + 1e-4 > len(p) / rate:
            continue
        heard += 1
        window = slice(int((t_arrive - 1e-4) * rate), int((t_arrive + 1e-4) * rate) + 1)
        worst = max(worst, float(np.sqrt(np.mean(residual[window] ** 2))))
    assert heard >= 14 and worst < 0.02
    assert np.sqrt(np.mean(residual ** 2)) < 0.02
    assert dt < 0.5 * h / V   # at most one shift per step and axis


GROUND_SPHERE = """
[simulation]
duration = 0.0085
cell_size = 0.01
precision = "float64"
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.05, subdivisions = 3 }}
position = [0.0, 0.0, 0.05]
motion = {{ type = "constant_velocity", velocity = [{velocity}] }}
{follow}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "sine_burst", frequency = 2000.0, amplitude = 100.0, cycles = 10 }}
{domain}
[ground]
height = 0.0
[[listeners]]
name = "near"
position = [0.1, 0.2, 0.05]
[[listeners]]
name = "side"
position = [0.35, 0.2, 0.1]
[[listeners]]
name = "low"
position = [0.2, 0.25, 0.006]
"""


#: a plane 1.5 cm beside the sphere's path (the cells nearest y = 1.2 cm in both boxes, whose
#: cells lie on the same lattice); with object = "ball" it moves with the sphere's box
GROUND_SLICE = """[[slices]]
name = "beside"
axis = "y"
position = 0.012
times = [0.002, 0.004, 0.006, 0.008]
"""


@pytest.fixture(scope="module")
def ground_runs(tmp_path_factory):
    """The sphere of ``runs`` sliding along a ground (resting on it: its lowest point on the
    floor) in a following box and in a large fixed box standing on the ground."""
    d = tmp_path_factory.mktemp("travel_ground")
    follow, fixed = d / "follow.toml", d / "fixed.toml"
    follow.write_text(GROUND_SPHERE.format(velocity="20.0, 0.0, 0.0", follow="[objects.domain]\nfollow = true",
                                           domain="[domain]\ncenter = [0.0, 0.0, 0.15]\nsize = 0.3")
                      + GROUND_SLICE + 'object = "ball"\n')
    fixed.write_text(GROUND_SPHERE.format(velocity="20.0, 0.0, 0.0", follow="",
                                          domain="[domain]\ncenter = [0.15, 0.1, 0.2]\nsize = [0.7, 0.6, 0.4]")
                     + GROUND_SLICE)
    return wavesolve.simulate(follow, progress=False), wavesolve.simulate(fixed, progress=False), follow


def test_travelling_sphere_on_the_ground_matches_the_large_fixed_box(ground_runs):
    """A following box standing on a ground: the far-field estimate of the sphere with its mirror
    image (rays from the floor point under its centre) against the in-box samples of the large
    fixed box standing on the same ground, at 0.2 m from the path at 5 cm height, 0.4 m at 10 cm
    and 0.32 m 6 mm above the floor. Bound 5 % relative L2, as in the free field above. Measured
    (thirty-third session) 2.7 / 4.1 / 3.5 %; the same sphere 3 cm above the floor 2.1 / 7.2 /
    5.7 %, 7 cm above 2.8 / 15 / 5.8 %: the pair of sphere and image then spans 2–3 wavelengths and
    the fit in 1/r and 1/r² along a ray from the floor does not hold (the fixed box's own far
    field, from the same rays, is 18 % off at 7 cm; README, "Far-field listeners")."""
    moving, fixed, _ = ground_runs
    assert "shifted [17, 0, 0]" in moving.metadata["travelling_boxes"]
    for name in ("near", "side", "low"):
        assert rel_l2(moving.listener(name), fixed.listener(name)) < 0.05


def test_a_slice_moves_with_its_box_and_shows_the_field_of_the_large_fixed_box(ground_runs):
    """A slice with ``object`` is a plane of the travelling box, placed at each snapshot where the
    box then is: the same world cells of the large fixed box's slice hold the same field. Both
    are y = 1.5 cm planes through the sphere sliding on the ground (0.44 m × 0.22 m of the moving
    box against 0.7 m × 0.4 m fixed), at 2, 4, 6 and 8 ms: the burst's 5 ms pass the plane by 6 ms.
    Bound 5 % of the largest snapshot's L2 norm, the far-field bound above (here no far-field fit:
    what differs is the moving box's layer and shifts, and the fixed box's keyed
    reclassification). Measured (thirty-third session) 0.2 / 2.0 / 2.2 / 1.1 %: 0.2 % and 3.4 %
    of their own norm at 2 and 4 ms; at 6 and 8 ms what the moving box keeps after the burst (max
    0.06 Pa against 0.003 in the fixed box, of a 5 Pa peak: README, "Travelling sources", known
    defect)."""
    moving, fixed, _ = ground_runs
    a, b = moving.pressure_slice("beside"), fixed.pressure_slice("beside")
    assert a.follows == "ball" and b.follows == ""
    h = b.cell_size
    diffs, norms = [], []
    for i, t in enumerate(a.times):
        assert t == b.times[i] and a.position_at(i) == pytest.approx(0.015) == b.position
        start = np.rint((a.origin[i] - b.origin) / h).astype(int)      # the moving plane's cell (0, 0) in the fixed one's
        n_a, n_b = a.pressure.shape[1:]
        ref = b.pressure[i, start[0]:start[0] + n_a, start[1]:start[1] + n_b]
        assert ref.shape == (n_a, n_b)
        np.testing.assert_array_equal(a.solid[i], b.solid[i, start[0]:start[0] + n_a, start[1]:start[1] + n_b])
        diffs.append(np.linalg.norm(a.pressure[i] - ref))
        norms.append(np.linalg.norm(ref))
    assert a.origin[-1][0] - a.origin[0][0] == pytest.approx(12 * h)       # the box moved 12 cells in 6 ms
    assert max(diffs) < 0.05 * max(norms), np.array(diffs) / max(norms)


def test_a_moving_slice_round_trips_through_the_result_file_and_plots(ground_runs, tmp_path):
    """The result file keeps a moving slice's per-snapshot positions and origins and the object
    it follows (result.py's layout); ``plot_slice`` draws each panel where its plane then was."""
    from matplotlib import image

    from wavesolve.plots import plot_slice

    moving, _, _ = ground_runs
    moving.save(tmp_path / "m.h5")
    loaded = wavesolve.Result.load(tmp_path / "m.h5")
    back = loaded.pressure_slice("beside")
    sl = moving.pressure_slice("beside")
    assert back.follows == "ball" and back.origin.shape == (4, 2) and np.shape(back.position) == (4,)
    np.testing.assert_array_equal(back.origin, sl.origin)
    np.testing.assert_array_equal(back.pressure, sl.pressure)
    assert back.extent(3)[0] - back.extent(0)[0] == pytest.approx(12 * sl.cell_size)     # 12 cells in 6 ms
    png = image.imread(plot_slice(loaded, "beside", tmp_path / "beside.png"))[..., :3]
    assert (np.abs(png[..., 0] - 0.55) < 0.02).sum() > 100            # the sphere, grey, on the panels


def test_a_moving_slice_reads_its_world_cells_from_a_box_a_few_cells_away(tmp_path):
    """A chunk's box can sit whole cells away from where a run from t = 0 has it (the shifts'
    hysteresis): a moving slice reads the same world cells from it, and zero where they fall
    outside its array. A stand-in box holds p = 1 + x + 10 y + 100 z (m) in every cell, its origin
    moved by 1 cell (all cells inside its array) and by layer + 2 cells (two rows outside) along x."""
    from types import SimpleNamespace

    from wavesolve.backend import resolve_backend
    from wavesolve.slices import SliceRecorder

    path = tmp_path / "long.toml"
    path.write_text(LONG_PATH_SCENE + '[[slices]]\nname = "m"\naxis = "y"\nposition = 0.03\nobject = "ball"\n'
                    "times = [0.01]\n")
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    (spec,) = scene.slices
    step = spec.steps[0]
    box, index, lo, hi = spec.placement(trav, scene, step)
    h, L = box.h, box.layer
    a, b = spec.in_plane
    for moved in (1, L + 2):
        origin = np.asarray(box.origin) + np.array([moved * h, 0.0, 0.0])
        grid = dataclasses.replace(box, origin=tuple(origin))
        x, y, z = (grid.origin[k] + h * np.arange(grid.shape[k]) for k in range(3))
        p = 1 + x[:, None, None] + 10 * y[None, :, None] + 100 * z[None, None, :]
        sim = SimpleNamespace(n=step, grid=grid, p=p, engine=resolve_backend("numpy"))
        recorder = SliceRecorder(scene.slices, trav, scene)
        recorder.take(sim)
        got = recorder.data["m"][0]
        ia, ib = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
        cells = np.zeros((ia.size, 3))
        cells[:, spec.axis], cells[:, a], cells[:, b] = index, ia.ravel(), ib.ravel()
        world = box.centres(cells)
        want = (1 + world[:, 0] + 10 * world[:, 1] + 100 * world[:, 2]).reshape(ia.shape)
        outside = ia - moved < 0                      # x cells left of the moved box's array
        assert outside.any() == (moved > L)
        np.testing.assert_allclose(got[~outside], want[~outside], rtol=1e-12)
        assert np.all(got[outside] == 0.0)


def test_chunks_of_a_box_on_the_ground_add_up_to_one_run(ground_runs):
    """Two and three time-parallel chunks of the sphere sliding on the ground, every chunk running
    its box (placed on the floor where the sphere is at the chunk's start), against one run. Bound
    1e-3 relative L2, as for the free-field chunks below; measured 3e-16 and 1e-15 (the chunks'
    boxes fall where the whole run's are)."""
    whole, _, path = ground_runs
    scene = wavesolve.load_scene(path)
    for n in (2, 3):
        part = wavesolve.simulate(scene, chunks=n, progress=False)
        assert f"over {n} chunks" in part.metadata["travelling_boxes"]
        for name in whole.names:
            a, b = whole.listener(name), part.listener(name)
            assert np.linalg.norm(b - a) < 1e-3 * np.linalg.norm(a), (n, name)


def test_a_box_on_the_ground_follows_along_the_floor_only(write_scene):
    """The box of an object over a ground stands on the floor: it shifts along x and y only, its
    floor stays at the ground's height, and the object stays inside its interior while it rises
    (the sphere leaving the floor at 8 m/s upward while sliding at 20 m/s, h = 1 cm, 400 steps:
    it rises 5 cm, 13 cells along x, in a box 0.29 m high). Its boundary has the floor's mirror image while the
    object is near the floor, and no velocity is rebuilt through the floor at a shift."""
    path = write_scene(GROUND_SPHERE.format(velocity="20.0, 0.0, 8.0", follow="[objects.domain]\nfollow = true",
                                            domain="[domain]\ncenter = [0.0, 0.0, 0.15]\nsize = 0.3"))
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    sim = trav.simulation(scene, "numpy")
    assert sim.grid.ground and any(b.image for b in sim.ghosts.bodies)
    floor = sim.grid.interior_bounds()[0, 2]
    assert floor == pytest.approx(0.0, abs=1e-12)
    top = []
    for _ in range(400):
        sim.step()
        lo, hi = sim.grid.interior_bounds()
        assert lo[2] == pytest.approx(0.0, abs=1e-12)
        top.append(hi[2] - trav.obj.geometry.world_bounds(trav.obj.motion.state(sim.time))[1, 2])
        if sim.shifts[0] > 0:
            assert float(np.abs(sim.velocity[2][:, :, sim.grid.layer]).max()) == 0.0
    assert sim.shifts[0] >= 12 and sim.shifts[1] == 0 and sim.shifts[2] == 0
    assert min(top) > 0.1
    assert np.isfinite(sim.p).all()
    later = trav.grid(scene, sim.time)
    assert later.origin[2] == trav.grid(scene).origin[2] and later.shape == sim.grid.shape


def _click_energy(directory, waveform: str) -> np.ndarray:
    """Discrete field energy (the leapfrog's, whole grid), every 100 steps (1.46 ms) from 1.46 ms to
    35 ms, as a fraction of its peak, after a broadband click (2.5 kHz at h = 1 cm: content to about
    6 kHz, beyond c/(10h) = 3.4 kHz, 200 m/s² peak) from a sphere moving at 15 m/s in its
    travelling box."""
    text = SPHERE.format(duration=0.04, v=15.0, f0=F0, follow="[objects.domain]\nfollow = true",
                         domain="[domain]\nsize = 0.3", listeners=_listeners({"near": NEAR})).replace(
        'signal = { waveform = "sine_burst", frequency = 2000.0, amplitude = 100.0, cycles = 10 }',
        f'signal = {{ waveform = "{waveform}", frequency = 2500.0, amplitude = 200.0 }}')
    scene = parse_scene(text, directory / "click.toml")
    trav = travellers(scene)[0]
    sim = FollowingSimulation(scene, trav.obj, trav.grid(scene), trav.centre, trav.probe_points, backend="numba")
    energy = []
    for _ in range(24):
        sim.run(100, progress=False)
        energy.append(leapfrog_energy(sim.p, sim.p_prev, scene.grid.courant))
    return np.array(energy) / max(energy)


@pytest.fixture(scope="module")
def click_energy(tmp_path_factory):
    """_click_energy of a Gaussian-derivative click: its surface ends displaced (net volume)."""
    return _click_energy(tmp_path_factory.mktemp("click"), "gaussian_derivative")


@pytest.mark.xfail(strict=True, reason="known defect (twenty-second session): a moving box's layer lets what a "
                   "click leaves behind grow again (README, Travelling sources)")
def test_a_click_leaves_a_moving_box(click_energy):
    """The sound leaves a 0.5 m box in about 2 ms, so the energy must be below 1e-4 of its peak
    from 9 ms on. At rest (no shifts) it is 3e-5 at 9 ms and 1e-7 from 20 ms on (measured).
    Moving, it falls to about 3e-4 and then grows to 0.14 of the peak about 28 ms after the click
    (0.81 before the twenty-second session's change to the split at a shift; bench/RESULTS.md).
    What grows is the layer's zero-frequency content (split pressures in cancelling pairs, steady
    flows), which the shifts carry to where the layer damps along other axes (twenty-third session).
    Strict: when the defect is fixed this passes, and the mark must go."""
    assert np.all(click_energy[5:] < 1e-4), np.array2string(click_energy, precision=1)


def test_a_click_with_no_net_motion_leaves_a_moving_box_far_quieter(tmp_path):
    """The same sphere and box, clicking with a Ricker pulse: its acceleration's first and second
    integrals vanish, so the surface ends where it started and at rest (the Gaussian derivative's
    leaves it displaced by 3.3 µm, a net volume of 1e-7 m³). What the split layer keeps and the
    shifts carry (README, Travelling sources) comes mostly from that net motion: from 10 to 25 ms
    the energy stays below 1e-4 of its peak (measured 4.3e-5 at most, against 3e-4 – 2.5e-3 for the
    Gaussian derivative), and the late bump stays below 1e-2 (measured 1.4e-3 at 29 ms, against
    0.14). Bounds: the requirement's 1e-4, and 1e-2, 14× under the Gaussian derivative's burst."""
    energy = _click_energy(tmp_path, "ricker")
    assert np.all(energy[6:17] < 1e-4) and np.max(energy[5:]) < 1e-2, np.array2string(energy, precision=1)


def test_a_shift_gives_a_new_layer_cell_no_split_pressure_along_the_shift(click_energy):
    """A cell that a shift brings into the layer along the shift axis (the interior plane entering
    the trailing layer, and side-layer cells entering its edges) starts with its pressure in the
    components that the new axis does not damp (following.py). Measured on the click above: the
    energy 4.4 ms after the click 0.049 of the peak and its regrowth 0.14, where giving the plane's
    pressure to the shift axis's component made them 0.36 and 0.81. Bounds 0.1 and 0.3, between."""
    assert click_energy[2] < 0.1 and np.max(click_energy[4:]) < 0.3, np.array2string(click_energy, precision=1)


def test_memory_and_shapes_stay_constant_along_a_long_path(tmp_path):
    """A sphere (a = 4 cm, h = 2 cm) flying at 38 m/s diagonally (all three axes, both signs) for
    600 steps: 31 shifts along x, 10 along y, 5 along z. Every array (pressures, tracked
    velocities, layer buffers, probe stencils) keeps its shape and identity, and the ghost-cell
    count over the second half of the path stays within 25 % of its maximum over the first sixth
    (it varies with the sphere's sub-cell position, 24–35 rows here): memory and work per step do
    not grow with the path (shapes are asserted, not times).

    And the box stays quiet once the pulse has gone (steps 450–600, after the wake has been
    carried into the trailing layer for ~15 shifts): max |p| in the whole box below 3 % of the
    pulse's peak (6.1 Pa). Measured 0.8 % (the pulse's slow tail and the moving body's own noise
    at this coarse resolution). With the interior velocities tracked step by step instead of
    rebuilt at each shift (an earlier version of this code), the frozen velocities that ghost and
    fresh cells leave in the wake turned into sound in the trailing layer: 94 Pa, 15× the peak."""
    path = tmp_path / "long.toml"
    path.write_text(LONG_PATH_SCENE)
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    sim = FollowingSimulation(scene, trav.obj, trav.grid(scene), trav.centre, trav.probe_points, backend="numpy")
    arrays = [sim.p, sim.p_prev, *sim.velocity, sim.layer.p_aux, sim.layer.v_aux]
    ids, shapes = [id(a) for a in arrays], [a.shape for a in arrays]
    counts, peaks = [], []
    for _ in range(600):
        sim.step()
        counts.append(len(sim.ghosts))
        peaks.append(float(np.abs(sim.p).max()))
        assert sim.probes.cells.shape == (4, 8)
    assert max(counts[300:]) <= 1.25 * max(counts[:100])
    assert max(peaks[450:]) < 0.03 * max(peaks)
    assert sorted(map(id, [sim.p, sim.p_prev])) == sorted(ids[:2])
    assert [id(a) for a in arrays[2:]] == ids[2:] and [a.shape for a in arrays] == shapes
    assert sim.grid.shape == trav.grid(scene).shape
    assert sim.shifts[0] >= 30 and sim.shifts[1] <= -9 and sim.shifts[2] >= 4
    drift = trav.centre(sim.time) - sim.box_centre()
    assert np.all(np.abs(drift) <= 0.5 * scene.grid.h + 36.0 * scene.grid.dt)   # re-centred within h/2
    assert np.isfinite(sim.p).all()


def test_a_box_started_later_is_where_a_run_from_the_start_has_it(tmp_path):
    """A following box started at a later step (``start_step``, as the time estimate samples a run)
    is the box a run from t = 0 has reached by then: the same shape, its origin a whole number of
    cells from the first box's and within one cell of the run's (the run re-centres with half a
    cell of hysteresis), centred on the object to within half a cell; and it follows on from there
    (LONG_PATH_SCENE's sphere at 38 m/s diagonally, 200 steps then 100 more from each)."""
    path = tmp_path / "long.toml"
    path.write_text(LONG_PATH_SCENE)
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    h, dt = scene.grid.h, scene.grid.dt
    first = FollowingSimulation(scene, trav.obj, trav.grid(scene), trav.centre, trav.probe_points, backend="numpy")
    first.run(200, progress=False)
    later = FollowingSimulation(scene, trav.obj, trav.grid(scene, 200 * dt), trav.centre, trav.probe_points,
                                backend="numpy", start_step=200)
    assert later.n == 200 and later.grid.shape == first.grid.shape
    cells = (np.asarray(later.grid.origin) - np.asarray(trav.grid(scene).origin)) / h
    np.testing.assert_allclose(cells, np.rint(cells), atol=1e-9)
    assert np.all(np.abs(np.asarray(later.grid.origin) - np.asarray(first.grid.origin)) <= h * (1 + 1e-9))
    assert np.all(np.abs(trav.centre(later.time) - later.box_centre()) <= 0.5 * h + 1e-12)
    first.run(100, progress=False)
    later.run(100, progress=False)
    for sim in (first, later):
        assert np.all(np.abs(trav.centre(sim.time) - sim.box_centre()) <= 0.5 * h + 38.0 * dt)
    assert np.isfinite(later.p).all()


def test_memory_count_of_a_travelling_box_is_what_it_holds(tmp_path, monkeypatch):
    """What the memory check and `wavesolve info` count for a travelling box (plan.memory_bytes with
    ``following``) equals, byte for byte, what its FollowingSimulation holds that grows with the
    grid: p, p⁻, the layer's auxiliaries, the three arrays of face velocities and the one-byte solid
    mask. The check counts them before anything is allocated: with a byte less available the box
    is refused."""
    from wavesolve.backend import Backend
    from wavesolve.plan import memory_bytes

    path = tmp_path / "long.toml"
    path.write_text(LONG_PATH_SCENE)
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    sim = FollowingSimulation(scene, trav.obj, trav.grid(scene), trav.centre, trav.probe_points, backend="numpy")
    held = sim.p.nbytes + sim.p_prev.nbytes + sim.layer.nbytes + sum(v.nbytes for v in sim.velocity)
    count = memory_bytes(sim.grid, sim.dtype.itemsize, sim.engine, following=True)
    assert count == held + sim.grid.cells
    monkeypatch.setattr(Backend, "available_bytes", lambda self: count - 1)
    with pytest.raises(SceneError, match="margin"):
        FollowingSimulation(scene, trav.obj, trav.grid(scene), trav.centre, trav.probe_points, backend="numpy")


TWO = """
[simulation]
duration = 0.01
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "a"
mesh = {{ primitive = "icosphere", radius = 0.03, subdivisions = 2 }}
motion = {{ type = "constant_velocity", velocity = [{va}, 0.0, 0.0] }}
[objects.domain]
follow = true
{margin}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 400.0, amplitude = 100.0 }}
[[objects]]
name = "b"
position = [{xb}, 0.0, 0.0]
mesh = {{ primitive = "icosphere", radius = 0.03, subdivisions = 2 }}
motion = {{ type = "constant_velocity", velocity = [-10.0, 0.0, 0.0] }}
[objects.domain]
follow = true
[[listeners]]
name = "l"
position = {lis}
"""


def test_boxes_that_meet_warn_that_the_interaction_is_not_simulated(write_scene, caplog):
    """Two following boxes whose objects approach each other (closing at 20 m/s from 1 m, box
    half-size 0.15 m) warn, naming both objects and the fix; objects 3 m apart do not."""
    with caplog.at_level(logging.WARNING, logger="wavesolve"):
        near = wavesolve.load_scene(write_scene(TWO.format(va=10.0, xb=0.2, margin="", lis="[0.0, 1.0, 0.0]")))
    warnings = check_travellers(near)
    assert warnings and "'b'" in warnings[0] and "'a'" in warnings[0] and "enlarge [domain]" in warnings[0]
    assert "not simulated" in caplog.text
    far = wavesolve.load_scene(write_scene(TWO.format(va=10.0, xb=3.0, margin="", lis="[0.0, 1.0, 0.0]")))
    assert check_travellers(far) == []


@pytest.mark.parametrize("va, margin, lis, key", [
    (1.0, "margin = 0.03", "[0.0, 1.0, 0.0]", "objects[0].domain.margin"),
    (1.0, "", "[0.03, 0.03, 0.0]", "listeners[0].position"),
    (320.0, "", "[0.0, 1.0, 0.0]", "objects[0].motion"),
])
def test_bad_travelling_boxes_are_scene_errors(write_scene, va, margin, lis, key):
    """A margin too small for the far-field rays, a listener on the path, or an object too fast
    for whole-cell shifts (more than half a cell per step) is refused with the key."""
    with pytest.raises(SceneError) as exc:
        wavesolve.load_scene(write_scene(TWO.format(va=va, xb=3.0, margin=margin, lis=lis)))
    assert key in str(exc.value)


def test_a_path_below_the_ground_and_a_stray_margin_are_scene_errors(write_scene):
    """A following path below the ground, a margin on a box that does not follow, and over a ground
    a listener too close to the point of the floor under the object (its rays' start)."""
    text = TWO.format(va=1.0, xb=3.0, margin="", lis="[0.0, 1.0, 0.0]")
    with pytest.raises(SceneError, match=r"objects\[0\]\.position.*goes below the ground"):
        wavesolve.load_scene(write_scene(text.replace("[domain]\nsize = 0.3", "[domain]\ncenter = [0.0, 0.0, 0.15]\n"
                                                     "size = 0.3\n[ground]\nheight = 0.0")))
    with pytest.raises(SceneError, match="margin is only used"):
        wavesolve.load_scene(write_scene(text.replace("follow = true\n\n", "margin = 0.2\n", 1)))
    ground = GROUND_SPHERE.format(velocity="20.0, 0.0, 0.0", follow="[objects.domain]\nfollow = true",
                                  domain="[domain]\ncenter = [0.0, 0.0, 0.15]\nsize = 0.3")
    with pytest.raises(SceneError, match=r"listeners\[0\]\.position.*0\.112 m of the point of the ground under"):
        wavesolve.load_scene(write_scene(ground.replace("[0.1, 0.2, 0.05]", "[0.1, 0.1, 0.05]")))


def test_an_object_high_above_the_ground_warns_of_its_large_box(write_scene, caplog):
    """A travelling object whose centre rises more than two of its radii above the ground gets a
    box holding it with its mirror image: the load says so, with the box's width and what it
    would be without the ground; an object resting on the floor does not warn."""
    high = GROUND_SPHERE.format(velocity="20.0, 0.0, 0.0", follow="[objects.domain]\nfollow = true",
                                domain="[domain]\ncenter = [0.0, 0.0, 0.15]\nsize = 0.3")
    with caplog.at_level(logging.WARNING, logger="wavesolve"):
        wavesolve.load_scene(write_scene(high))
        assert "rises" not in caplog.text
        high = high.replace("position = [0.0, 0.0, 0.05]", "position = [0.0, 0.0, 0.3]")
        for near in ("[0.1, 0.2, 0.05]", "[0.35, 0.2, 0.1]", "[0.2, 0.25, 0.006]"):   # listeners beyond its rays' start
            high = high.replace(near, near.replace("0.2", "1.0", 1).replace("0.25", "1.0", 1))
        wavesolve.load_scene(write_scene(high))
    assert "travelling object 'ball' rises 0.3 m above the ground, 6.0 times its own radius" in caplog.text
    assert "(0.94 m wide)" in caplog.text and "would be 0.34 m wide" in caplog.text


STRUCK = """
[simulation]
duration = 0.01
cell_size = 0.01
[domain]
size = 0.3
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.05, subdivisions = 2 }}
motion = {{ type = "constant_velocity", velocity = [15.0, 0.0, 0.0] }}
[objects.domain]
follow = {follow}
[[objects.shaders]]
type = "acceleration_noise"
material = "steel"
impacts = [ {{ time = 0.001, position = [0.0, 0.0, -0.05], impulse = [0.0, 0.0, 0.2] }},
            {{ time = 0.004, position = [0.0, 0.0, 0.05], impulse = [0.0, 0.0, -0.2] }} ]
[[listeners]]
name = "far"
position = [0.0, 3.0, 0.0]
"""


def test_a_travelling_object_whose_impacts_keep_it_moving_warns(write_scene, caplog):
    """acceleration_noise keeps each impact's velocity change (a steady flow around the object),
    which a moving box's layer lets ring (README, "Travelling sources"). A travelling object with
    it warns at load with the largest kept speed: here 0.2 N·s up, then 0.2 N·s down, so the
    surface moves at 0.2/m between the impacts and not after them; the warning names that speed.
    The same object in the fixed box does not warn."""
    with caplog.at_level(logging.WARNING, logger="wavesolve"):
        scene = wavesolve.load_scene(write_scene(STRUCK.format(follow="false").replace("size = 0.3", "size = 0.5")))
        assert "keeps the velocity" not in caplog.text
        wavesolve.load_scene(write_scene(STRUCK.format(follow="true")))
    shader = scene.objects[0].shaders[0]
    assert shader.kept_velocity() == pytest.approx(0.2 / shader.mass, rel=1e-12)
    assert (f"travelling object 'ball' has a shader that keeps the velocity its impacts give (up to "
            f"{0.2 / shader.mass:.3g} m/s)") in caplog.text


def test_chunks_of_a_travelling_box_add_up_to_one_run(runs, cli, tmp_path):
    """Time-parallel chunks of the travelling sphere: each chunk's box starts, from a silent field,
    where the object is at the chunk's first active step, and stops once its sound has left the
    box; the boxes' probe signals are summed at the step rate and the far field is estimated once.
    A chunk's box can sit one cell away from where the whole run's box is at that time (the
    shifts' half-cell hysteresis), so its absorbing layer is placed a little differently. Bound
    1e-3 relative L2, the fixed box's chunk bound (test_chunks.BOUND); measured 3.3e-4 (2 chunks)
    and 1e-15 (3) here. The slice that moves with the box adds up too: 6e-4 of its largest
    snapshot's norm (2 chunks, at 7 ms, in the tail the first chunk leaves), 1.5e-13 (3). The same two chunks through part files (``run --chunks 2``) and
    ``stitch`` of those parts give the same result; the third window is silent and runs no box."""
    whole, _, scene = runs
    for n in (2, 3):
        part = wavesolve.simulate(scene, chunks=n, progress=False)
        assert part.metadata["chunks"] == n and f"over {n} chunks" in part.metadata["travelling_boxes"]
        for name in whole.names:
            a, b = whole.listener(name), part.listener(name)
            assert np.linalg.norm(b - a) < 1e-3 * np.linalg.norm(a), (n, name)
        a, b = whole.pressure_slice("middle").pressure, part.pressure_slice("middle").pressure
        assert np.linalg.norm(b - a, axis=(1, 2)).max() < 1e-3 * np.linalg.norm(a, axis=(1, 2)).max()
    proc = cli("run", scene.path, "--chunks", "2", "-o", tmp_path / "two.h5", "--keep-parts", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    two = wavesolve.Result.load(tmp_path / "two.h5")
    np.testing.assert_allclose(two.listener("near"), wavesolve.simulate(scene, chunks=2, progress=False).listener(
        "near"), rtol=0, atol=1e-12 * np.max(np.abs(whole.listener("near"))))
    parts = sorted((tmp_path / "two.h5.parts").glob("part-*.h5"))
    proc = cli("stitch", *parts, "-o", tmp_path / "stitched.h5")
    assert proc.returncode == 0, proc.stderr
    for name in whole.names:
        np.testing.assert_array_equal(wavesolve.Result.load(tmp_path / "stitched.h5").listener(name), two.listener(name))
    three = run_chunk(scene, plan_chunks(scene, 3), 2)
    assert three.stop == "silent" and three.boxes == {}
    proc = cli("run-chunk", scene.path, "--chunk", "1", "--of", "3", "-o", tmp_path / "one.h5", "--no-progress")
    assert proc.returncode == 0 and "box of 'ball': steps 195 … 585" in proc.stdout, proc.stdout + proc.stderr


def test_adaptive_chunks_cut_at_a_travelling_objects_silences(write_scene):
    """``auto`` plans cut at the gaps of every shader, a travelling object's too: two clicks 6 ms
    apart give two chunks, each running the box of the sounding object 'a' from its click (the
    silent object 'b' is never run), and they add up to one run (bound 1e-3 as above)."""
    text = TWO.format(va=1.0, xb=3.0, margin="", lis="[0.0, 1.0, 0.0]").replace(
        'signal = { waveform = "gaussian_derivative", frequency = 400.0, amplitude = 100.0 }',
        'signal = { waveform = "pulse_train", times = [0.0, 0.006], pulse = { waveform = "gaussian_derivative", '
        "frequency = 2000.0, amplitude = 100.0 } }")
    scene = wavesolve.load_scene(write_scene(text))
    plan = plan_chunks(scene, "auto")
    assert plan.n_chunks == 2 and plan.starts[1] * scene.grid.dt == pytest.approx(0.006, abs=1e-3)
    outputs = [run_chunk(scene, plan, k) for k in range(2)]
    assert [list(o.boxes) for o in outputs] == [["a"], ["a"]]
    assert outputs[1].boxes["a"].start_step >= plan.starts[1]
    whole = wavesolve.simulate(scene, progress=False).listener("l")
    auto = wavesolve.simulate(scene, chunks="auto", progress=False).listener("l")
    assert np.max(np.abs(whole)) > 0
    assert np.linalg.norm(auto - whole) < 1e-3 * np.linalg.norm(whole)


def test_rolling_can_showcase_travels_a_dozen_box_widths_on_the_ground_and_runs(monkeypatch):
    """The showcase's can rolls along the ground at least twelve widths of its box's interior
    (0.46 m; about ten counting the layer), its box standing on the floor, and its scene runs: the
    first 1.5 ms of it (103 steps, 2 shifts) through simulate(), with the kerb listener moved near
    the start of the path so that the first click reaches it, and its slice across the can taken
    during the first click (the can in it, the floor at its lower edge)."""
    from conftest import SCENES

    path = SCENES / "showcase" / "rolling_can.toml"
    scene = wavesolve.load_scene(path)
    trav = travellers(scene)[0]
    grid = trav.grid(scene)
    lo, hi = grid.interior_bounds()
    assert grid.ground and lo[2] == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(trav.centre(scene.duration) - trav.centre(0.0)) >= 12 * (hi[0] - lo[0])
    text = path.read_text().replace("duration = 0.4", "duration = 0.0015")
    text = text.replace("times = [0.2002, 0.2004, 0.2006, 0.2008]", "times = [0.0004, 0.0008]")   # the first click
    short = parse_scene(text.replace("[0.0, 1.0, 1.6]", "[-2.95, 0.3, 0.1]"), path)   # kerb near the start
    result = wavesolve.simulate(short, progress=False)
    assert "shifted [2, 0, 0]" in result.metadata["travelling_boxes"]
    assert result.metadata["interaction_warnings"] == ""
    assert np.abs(result.listener("kerb")).max() > 0 and np.isfinite(result.listener("ahead")).all()
    across = result.pressure_slice("across")
    assert across.follows == "can" and np.all(np.abs(across.pressure).max(axis=(1, 2)) > 1.0)
    assert 0 < across.solid[0].sum() < across.solid[0].size
    assert across.origin[0][1] == pytest.approx(0.005, abs=1e-12)          # its cells from the floor up


def test_probe_points_for_a_block_of_steps_equal_those_of_each_step():
    """A following box asks for the far-field rays' sample points of MOTION_BLOCK steps at once;
    each step's points must be bit-equal to those asked for that step alone (the rolling can's
    keyframed path, 20 steps from its middle)."""
    from conftest import SCENES

    scene = wavesolve.load_scene(SCENES / "showcase" / "rolling_can.toml")
    trav = travellers(scene)[0]
    dt = scene.grid.dt
    times = np.array([(13700 + k) * dt for k in range(20)])
    block = trav.probe_points(times)
    assert block.shape == (20, len(trav.listeners) * len(trav.radii), 3)
    for k, t in enumerate(times):
        np.testing.assert_array_equal(block[k], trav.probe_points(float(t)))


def test_listeners_hear_the_sum_of_every_box(tmp_path):
    """Two sounding spheres, each in its own following box (h = 2 cm, 4 ms, 1 m apart, flying
    toward each other): the listener's signal is the sum of the two scenes with one sphere each,
    to rounding (the boxes are independent runs added at the step rate)."""
    sphere = """
[[objects]]
name = "{name}"
position = [{x}, 0.0, 0.0]
mesh = {{ primitive = "icosphere", radius = 0.04, subdivisions = 2 }}
motion = {{ type = "constant_velocity", velocity = [{v}, 0.0, 0.0] }}
[objects.domain]
follow = true
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = {f}, amplitude = 100.0 }}
"""
    head = """
[simulation]
duration = 0.004
cell_size = 0.02
sample_rate = 16000.0
[domain]
size = 0.3
[[listeners]]
name = "l"
position = [0.5, 0.4, 0.0]
"""
    a = sphere.format(name="a", x=0.0, v=20.0, f=800.0)
    b = sphere.format(name="b", x=1.0, v=-20.0, f=500.0)
    out = {}
    for key, text in (("ab", head + a + b), ("a", head + a), ("b", head + b)):
        path = tmp_path / f"{key}.toml"
        path.write_text(text)
        out[key] = wavesolve.simulate(path, progress=False, backend="numpy").listener("l")
    assert np.abs(out["a"]).max() > 0 and np.abs(out["b"]).max() > 0
    np.testing.assert_allclose(out["ab"], out["a"] + out["b"], rtol=0, atol=1e-9 * np.abs(out["ab"]).max())
