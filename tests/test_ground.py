"""The rigid ground plane (a floor on the box's bottom face).

Reference: the method of images. A rigid plane at z = 0 makes the field of a source at z_s equal
to the free field of that source plus its mirror image at −z_s. On the grid the floor lies on a
cell face and the row below mirrors the row above, which is the discrete image construction
itself, so a floor run must equal a free-field run with the mirror source to rounding while no
reflection from the two boxes' (different) absorbing layers has come back: tolerance 1e-12
relative L2, measured 1.2e-15 over the 1.2 ms window. Against the analytic image solution
p = ρ/(4π) [Q̇(t − r₁/c)/r₁ + Q̇(t − r₂/c)/r₂] the bound is the point-source one, 5 % (measured 0.55 %).
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import HEMISPHERE_RADIUS
from exact import pulsating_sphere, rel_l2

import wavesolve
from wavesolve.boundary import GhostCells
from wavesolve.floor_image import boundary_bodies
from wavesolve.physics.scene_writer import _toml
from wavesolve.scene import Scene, parse_scene
from wavesolve.signals import GaussianDerivative
from wavesolve.simulation import PointSource, Simulation

PULSE = GaussianDerivative(waveform="gaussian_derivative", frequency=2000.0, amplitude=1e-3)
SOURCE = np.array([0.0025, 0.0025, 0.0575])   # a cell centre (h = 5 mm; faces at multiples of h)
LISTENER = np.array([0.08, 0.03, 0.04])


def _run(center_z: float, size_z: float, ground: bool, sources) -> np.ndarray:
    text = f"""
[simulation]
duration = 0.0012
cell_size = 0.005
precision = "float64"
[domain]
center = [0.0, 0.0, {center_z}]
size = [0.3, 0.3, {size_z}]
[[listeners]]
name = "ear"
position = [{LISTENER[0]}, {LISTENER[1]}, {LISTENER[2]}]
"""
    if ground:
        text += "[ground]\nheight = 0.0\n"
    scene = parse_scene(text, "ground.toml")
    assert scene.grid.ground == ground
    sim = Simulation(scene, backend="numpy", sources=[PointSource(s, PULSE) for s in sources])
    return sim.run(scene.grid.steps_for(scene.duration), progress=False)[0], scene.grid.dt


def test_floor_equals_the_image_source():
    floor, dt = _run(0.1, 0.2, True, [SOURCE])
    image = SOURCE * np.array([1, 1, -1])
    free, _ = _run(0.0, 0.4, False, [SOURCE, image])
    assert np.max(np.abs(floor)) > 0
    assert rel_l2(floor, free) < 1e-12
    t = np.arange(len(floor)) * dt
    r1, r2 = np.linalg.norm(LISTENER - SOURCE), np.linalg.norm(LISTENER - image)
    exact = 1.2 / (4 * np.pi) * (PULSE(t - r1 / 343.0) / r1 + PULSE(t - r2 / 343.0) / r2)
    assert rel_l2(floor, exact) < 0.05


GROUNDED = """
[simulation]
duration = 0.001
cell_size = 0.01
[domain]
center = [0.0, 0.0, {cz}]
size = [0.3, 0.3, 0.2]
[ground]
height = 0.0
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.04, subdivisions = 2 }}
position = [0.0, 0.0, {z}]
[[listeners]]
name = "ear"
position = [0.1, 0.0, 0.05]
"""


def test_box_must_stand_on_the_ground(write_scene):
    with pytest.raises(wavesolve.SceneError) as info:
        wavesolve.load_scene(write_scene(GROUNDED.format(cz=0.0, z=0.05)))
    assert info.value.key == "domain.center" and "0.1" in info.value.fix


def test_objects_may_rest_on_but_not_sink_into_the_ground(write_scene):
    resting = wavesolve.load_scene(write_scene(GROUNDED.format(cz=0.1, z=0.04)))
    assert resting.grid.interior_bounds()[0, 2] == pytest.approx(0.0)
    with pytest.raises(wavesolve.SceneError, match="below the ground"):
        wavesolve.load_scene(write_scene(GROUNDED.format(cz=0.1, z=0.03)))


def test_listeners_under_or_at_the_floor_are_refused_far_ones_accepted(write_scene):
    """A listener under the ground is in the rigid ground; one inside the box but within half a
    cell of the floor has no cell to sample; one outside the box above the ground is a far
    listener (the source's mirror image included: tests/test_far_field.py)."""
    def scene(position: str, shader: bool = True) -> str:
        text = GROUNDED.format(cz=0.1, z=0.04).replace("position = [0.1, 0.0, 0.05]", f"position = {position}")
        text = text.replace("size = [0.3, 0.3, 0.2]", "size = [0.4, 0.4, 0.2]")   # room for the far rays
        if shader:
            text = text.replace("[[listeners]]", '[[objects.shaders]]\ntype = "prescribed"\npattern = "pulsate"\n'
                                'signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 1.0 }\n'
                                "[[listeners]]")
        return text
    with pytest.raises(wavesolve.SceneError, match="below the ground") as info:
        wavesolve.load_scene(write_scene(scene("[1.0, 0.0, -0.01]")))
    assert info.value.key == "listeners[0].position" and "z ≥ 0" in info.value.fix
    with pytest.raises(wavesolve.SceneError, match="half a cell"):
        wavesolve.load_scene(write_scene(scene("[0.1, 0.0, 0.004]")))
    assert not wavesolve.load_scene(write_scene(scene("[0.1, 0.0, 0.006]"))).listeners[0].far
    assert wavesolve.load_scene(write_scene(scene("[1.0, 0.0, 0.05]"))).listeners[0].far
    assert wavesolve.load_scene(write_scene(scene("[1.0, 0.0, 0.0]"))).listeners[0].far     # on the floor
    with pytest.raises(wavesolve.SceneError, match="needs an object with shaders"):
        wavesolve.load_scene(write_scene(scene("[1.0, 0.0, 0.05]", shader=False)))


RESTING = """
[simulation]
duration = {duration}
cell_size = 0.01
precision = "float64"
[domain]
center = [0.0, 0.0, {cz}]
size = [0.3, 0.3, {sz}]
{ground}
{objects}
[[listeners]]
name = "side"
position = [0.11, 0.0, 0.006]
[[listeners]]
name = "top"
position = [0.0, 0.0, 0.11]
[[listeners]]
name = "diagonal"
position = [0.07, 0.07, 0.05]
"""
DOME = """
[[objects]]
name = "{name}"
mesh = "{mesh}"
position = [0.0, 0.0, {z}]
orientation = {q}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 600.0, amplitude = 100.0 }}
"""


def _dome(mesh, lift: float = 0.0, image: bool = False) -> str:
    if image:   # turned over (180° about x), its flat face down at −lift
        return DOME.format(name="image", mesh=mesh, z=-lift, q="[0.0, 1.0, 0.0, 0.0]")
    return DOME.format(name="dome", mesh=mesh, z=lift, q="[1.0, 0.0, 0.0, 0.0]")


@pytest.mark.parametrize("lift", [0.0, 0.0005, 0.001])
def test_an_object_on_the_floor_equals_its_mirror_image(hemisphere, lift):
    """A pulsating hemisphere whose flat face lies on the floor or `lift` above it: the floor run
    must equal the free run of the hemisphere with its mirror image (method of images), as for a
    box hovering above it (below). The free run is also two sounding objects whose flat faces
    face each other across a gap the grid does not resolve (2·lift, h = 1 cm).
    Before the cells under the floor were classified as the image's (wavesolve/floor_image.py),
    the dome's bottom row of cells were ghost cells of its flat face, facing air that is not
    there: 10.5 % relative L2 apart at rest. Lifted, the pair's own rules differed from the floor's:
    21 % at 0.5 mm, where each face's probe into the air (0.1 h out) lands on the other face and
    rounding called one pressed and one free (boundary._PROBE_CLEARANCE); 3 % at 1 mm, where each
    object grew the other's cells into unknowns for stencils that may not read them. Tolerance
    1e-9 (rounding in two ghost systems; measured 7e-12, 1.3e-11, 6e-13) over 1.5 ms, before any
    reflection from the two boxes' layers."""
    floor = parse_scene(RESTING.format(duration=0.0015, cz=0.08, sz=0.16, ground="[ground]\nheight = 0.0",
                                       objects=_dome(hemisphere, lift)), "floor.toml")
    pair = parse_scene(RESTING.format(duration=0.0015, cz=0.0, sz=0.32, ground="",
                                      objects=_dome(hemisphere, lift) + _dome(hemisphere, lift, image=True)),
                       "pair.toml")
    steps = floor.grid.steps_for(floor.duration)
    a = Simulation(floor, backend="numpy").run(steps, progress=False)[0]
    b = Simulation(pair, backend="numpy").run(steps, progress=False)[0]
    assert np.max(np.abs(a)) > 1.0
    assert rel_l2(a, b) < 1e-9


@pytest.mark.parametrize("lift", [0.0, 0.0005])
def test_a_hemisphere_on_the_floor_radiates_as_the_whole_sphere(hemisphere, lift):
    """Above a rigid plane a pulsating hemisphere on it radiates the field of the whole pulsating
    sphere (radius a = 5 cm, h = 1 cm): exact solution p = f(t − (r−a)/c)/r (tests/exact.py).
    Lifted 0.5 mm the gap is narrower than half a cell, so no air is resolved under the flat face:
    its ghost cells face the image across it and are contacts (constants.CONTACT_WEIGHT), which
    push no air; the field is still the sphere's. Bound 5 %, the free-field sphere tests' (the
    in-box field's error at h = 1 cm). Measured: resting 1.7–2.1 %, lifted 1.9–2.6 %; without the
    image 9.3–10.1 % and 9.0–9.7 %; lifted with the image but without the contact rule, about 30 %."""
    scene = parse_scene(RESTING.format(duration=0.006, cz=0.08, sz=0.16, ground="[ground]\nheight = 0.0",
                                       objects=_dome(hemisphere, lift)), "dome.toml")
    result = wavesolve.simulate(scene, progress=False)
    alpha = scene.objects[0].shaders[0].signal
    for lis in scene.listeners:
        p = result.listener(lis.name)
        t = np.arange(len(p)) / result.sample_rate
        R = float(np.linalg.norm(np.asarray(lis.position) - [0.0, 0.0, lift]))
        assert rel_l2(p, pulsating_sphere(alpha, HEMISPHERE_RADIUS, 343.0, 1.2, R, t)) < 0.05, lis.name


NEAR_FLOOR = """
[simulation]
duration = 0.0008
cell_size = 0.005
precision = "float64"
[domain]
center = [0.0, 0.0, {cz}]
size = [0.3, 0.3, {sz}]
{ground}
{objects}
[[listeners]]
name = "ear"
position = [0.07, 0.01, 0.03]
"""
BOX = """
[[objects]]
name = "{name}"
mesh = {{ primitive = "box", size = [0.08, 0.06, 0.03] }}
position = [0.0, 0.0, {z}]
motion = {{ type = "oscillate", amplitude = [0.0, 0.0, {amp}], frequency = 200.0 }}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 1500.0, amplitude = 100.0, delay = 0.0003 }}
"""


@pytest.mark.parametrize("bottom", [0.0015, 0.0021, 0.004, 0.0065])
def test_object_near_the_floor_equals_its_mirror_image(bottom):
    """A box hovering `bottom` above the floor (h = 5 mm), breathing and bobbing up by up to
    0.84 mm: the floor run must equal a free-field run with the box and its mirror image below
    z = 0 (method of images, as for the point source above), so ghost cells next to the floor see
    the mirrored rows, never the absorbing layer below it.
    At 1.5 mm the mirror run's gap (3 mm) holds no cell centre: the bottom faces face each other
    across a gap the grid does not resolve. At 2.1 mm the box rises through the first row's
    centres (2.5 mm), whose cells turn fresh: a fresh cell's update reads its mirror under the
    floor, which must hold its solved value (``GhostCells.floor_mirrors``), and no stencil may read
    the mirror of an unknown before it is solved (``GhostCells._claim_mirrors``). Before those and
    the stencil-reach fix (boundary._reached) the two runs were 1.4 % and 17 % apart there.
    Tolerance 1e-9 relative L2: rounding in two different ghost systems (the same geometry
    mirrored), before any reflection from the two runs' different absorbing layers returns
    (0.8 ms); measured 6e-16, 3e-14, 1.0e-15 and 2.6e-15."""
    z = bottom + 0.015
    floor_scene = parse_scene(NEAR_FLOOR.format(cz=0.1, sz=0.2, ground="[ground]\nheight = 0.0",
                                                objects=BOX.format(name="box", z=z, amp=0.001)), "floor.toml")
    mirror = parse_scene(NEAR_FLOOR.format(cz=0.0, sz=0.4, ground="",
                                           objects=BOX.format(name="box", z=z, amp=0.001)
                                           + BOX.format(name="image", z=-z, amp=-0.001)), "mirror.toml")
    steps = floor_scene.grid.steps_for(floor_scene.duration)
    floor = Simulation(floor_scene, backend="numpy").run(steps, progress=False)[0]
    free = Simulation(mirror, backend="numpy").run(steps, progress=False)[0]
    assert np.all(np.isfinite(floor)) and np.max(np.abs(floor)) > 1e-3
    assert rel_l2(floor, free) < 1e-9


def _boxes_on_floor(h: float, size: tuple[float, float, float], boxes: list[tuple]) -> Scene:
    """A still scene over the floor (z = 0) holding `boxes`, each (name, size [m], position [m],
    orientation quaternion wxyz): for the tests that inspect the ghost system alone."""
    objects = "".join(f"""
[[objects]]
name = "{name}"
mesh = {{ primitive = "box", size = {_toml(extent)} }}
position = {_toml(position)}
orientation = {_toml(orientation)}
""" for name, extent, position, orientation in boxes)
    text = f"""
[simulation]
duration = 0.001
cell_size = {h}
[domain]
center = [0.0, 0.0, {size[2] / 2}]
size = {_toml(size)}
[ground]
height = 0.0
{objects}
[[listeners]]
name = "ear"
position = [0.05, 0.05, 0.05]
"""
    return parse_scene(text, "boxes_on_floor.toml")


@pytest.mark.parametrize("tilt_deg", [2.0, 5.0, 10.0])
def test_a_box_tilted_over_the_floor_keeps_its_ghost_system_bounded(tilt_deg):
    """A box (8 × 6 × 3 cm, h = 5 mm) tilted about y, its lowest edge 0 to 0.55 cells over the floor,
    as a body resting on a table passes through while it settles. A ghost value solves x_j = Σ W_jk x_k
    + (fluid terms): its image stencil keeps its own cell's trilinear weight, at most 1/2 for an image
    point half a cell or more away, times the near coefficient 1 + κ ≤ 9/8 (a ghost cell lies inside
    the surface: boundary._image_points), so W_jj ≤ 0.5625, and
    the ghost values stay a small multiple of the fluid values their stencils read (row sums of
    |(I − W_gg)⁻¹ W_gf| ≤ 3; measured ≤ 2.1). Before, a stencil that lost just under half its weight
    to the floor's image (the contact rule takes over above half) was renormalised over what was
    left, mostly the row's own cell: W_jj reached 1.09 here, and bowl_drop's resting bowl, whose
    W_jj crossed 1 as it moved, blew up (README, "Physics showcases")."""
    th = np.radians(tilt_deg)
    h = 0.005
    for gap in np.linspace(0.0, 0.55, 23):
        z = gap * h + 0.04 * np.sin(th) + 0.015 * np.cos(th)
        scene = _boxes_on_floor(h, (0.3, 0.3, 0.2), [("box", (0.08, 0.06, 0.03), (0.0013, 0.0007, z),
                                                       (np.cos(th / 2), 0.0, np.sin(th / 2), 0.0))])
        ghosts = GhostCells(scene.grid, boundary_bodies(scene.objects, scene.grid), 0.0, iterative=False)
        assert len(ghosts.bodies) == 2             # the box and its image under the floor
        assert ghosts.W_gg.diagonal().max() <= 0.5625 + 1e-12, gap
        M, _ = ghosts.operator()
        assert np.abs(M).sum(axis=1).max() <= 3.0, gap


@pytest.mark.parametrize("seam", [0.0, 1 / 3, 0.5])
def test_dice_side_by_side_on_the_floor_keep_a_solvable_ghost_system(seam):
    """Two 2 cm dice (h = 6 mm) resting side by side on the floor, 0.05 or 0.2 cell above it, their
    faces touching or 0.3 mm apart, the seam at `seam` cells from a cell-centre plane (at 0.5 a
    sheet of air cell centres lies in it), as the dice showcase ends. The ghost system must be
    solvable with bounded ghost values: no row belongs to a floor image (an image only classifies
    cells, floor_image.py), I − W_gg is far from singular (smallest singular value ≥ 0.1; measured
    ≥ 0.28) and row sums of |(I − W_gg)⁻¹ W_gf| stay ≤ 3 (measured ≤ 1.29). Before, cells deep
    in a die took the image's face as their surface point and two such rows, each the other's
    mean, made (I − W_gg) exactly singular (the dice showcase stopped at t = 0.258 s), and with the
    seam on a cell-centre plane rows whose surface point was on the seam weighed themselves 1.0."""
    h = 0.006
    for lift in (0.05, 0.2):
        for apart in (0.0, 0.05):
            x0, z = seam * h, 0.01 + lift * h
            dice = [(name, (0.02, 0.02, 0.02), (x, 0.0018, z), (1.0, 0.0, 0.0, 0.0))
                    for name, x in (("left", x0 - 0.01 - apart * h / 2), ("right", x0 + 0.01 + apart * h / 2))]
            scene = _boxes_on_floor(h, (0.18, 0.18, 0.12), dice)
            ghosts = GhostCells(scene.grid, boundary_bodies(scene.objects, scene.grid), 0.0, iterative=False)
            assert len(ghosts.bodies) == 4                      # two dice, two images
            assert [len(r) for r, b in zip(ghosts.rows, ghosts.bodies) if b.image] == [0, 0]
            system = np.eye(ghosts.W_gg.shape[0]) - ghosts.W_gg.toarray()
            assert np.linalg.svd(system, compute_uv=False).min() >= 0.1, (lift, apart)
            M, _ = ghosts.operator()
            assert np.abs(M).sum(axis=1).max() <= 3.0, (lift, apart)
