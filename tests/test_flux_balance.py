"""The volume balance of sounding objects (wavesolve/flux_balance.py).

Physics: the net volume flux a body pushes into the air is ρ∮aₙ dS = ρQ̇, zero for any rigid motion
of a closed body. The discrete counterpart is the sum of the face differences the field update
reads across the object's ghost–fluid faces, h Σ (v − p_f). After the balance it must be ρQ̇/h for
a balanced object whatever the field (zero for a rigid one; float64: to 1e-12 of the sum of the
terms' magnitudes, rounding), with the fluid cells untouched; objects that are not balanced keep
their ghost values. The far-field consequences: no monopole from a struck cube
(tests/test_rigid_monopole.py), the right one from a ringing body (tests/test_modal_volume.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import trimesh
from kernel_cases import balance_terms

from wavesolve.boundary import Body, GhostCells
from wavesolve.flux_balance import balance_reference, net_flux, target_flux
from wavesolve.geometry_kernels import flux_balance
from wavesolve.grid import Grid
from wavesolve.meshes import Geometry, quaternion_matrix
from wavesolve.motion import ConstantVelocity

H = 0.004
TILT = quaternion_matrix(np.array([0.9, 0.1, 0.3, 0.2]) / np.linalg.norm([0.9, 0.1, 0.3, 0.2]))
OFF = np.array([0.0013, 0.0007, -0.0011])
BOX = trimesh.creation.box(extents=[0.02, 0.02, 0.02])


def _grid(ground: bool = False) -> Grid:
    return Grid.build(np.zeros(3), np.full(3, 0.12), H, 343.0, layer=4,
                      ground_height=-0.0099 if ground else None)


def _bodies(case: str, volume: bool = False) -> list[Body]:
    """The balanced bodies of a case: a 2 cm cube on the grid's axes or tilted, a sphere, a plate
    thinner than a cell (back values), two cubes whose ghost cells touch (balanced together) and a
    cube resting on a ground; ``volume``: volume sources (the first of the touching cubes only)."""
    def body(geometry: Geometry, source: bool = volume) -> Body:
        return Body(geometry, balanced=True, volume=source)

    if case in ("cube", "cube on the ground"):
        return [body(Geometry(BOX, OFF, np.eye(3)))]
    if case == "tilted cube":
        return [body(Geometry(BOX, OFF, TILT))]
    if case == "sphere":
        return [body(Geometry(trimesh.creation.icosphere(subdivisions=4, radius=0.0124), OFF, np.eye(3)))]
    if case == "thin plate":
        return [body(Geometry(trimesh.creation.box(extents=[0.04, 0.03, 0.0025]), OFF, TILT))]
    if case == "touching cubes":
        return [body(Geometry(BOX, OFF - [0.0105, 0, 0], np.eye(3))),
                body(Geometry(BOX, OFF + [0.0105, 0, 0], np.eye(3)), source=False)]
    raise ValueError(case)


CASES = ["cube", "tilted cube", "sphere", "thin plate", "touching cubes", "cube on the ground"]


def _system(case: str, volume: bool = False) -> GhostCells:
    return GhostCells(_grid(ground=case == "cube on the ground"), _bodies(case, volume))


def _scale(ghosts: GhostCells, p: np.ndarray) -> float:
    """Σ |v − p_f| over the balanced faces: the size of the terms the net flux sums."""
    return balance_terms(ghosts.balance(), p)


@pytest.mark.parametrize("case", CASES)
def test_a_balanced_object_draws_no_net_flux(case):
    ghosts = _system(case)
    if case == "thin plate":
        assert ghosts.n_back > 0 and np.any(ghosts.balance().face_src < 0)
    rng = np.random.default_rng(3)
    p = rng.uniform(-1, 1, ghosts.grid.shape)
    accel = rng.uniform(-50, 50, len(ghosts))
    before = p.copy()
    unbalanced = p.copy()
    ghosts.apply(p, accel, 1.2)
    bal = ghosts.balance()
    flux = net_flux(bal, p, ghosts.thin_links()[3])
    assert np.count_nonzero(bal.count_inv) == (1 if case == "touching cubes" else len(ghosts.bodies))
    # every far-side neighbour that reads a back value (thin_links) is one of the balance's faces
    assert np.count_nonzero(bal.face_src < 0) == len(ghosts.thin_links()[0])
    assert np.all(np.abs(flux) <= 1e-12 * _scale(ghosts, p))
    # without the balance the same ghost values leak: the sum is far from zero
    plain = GhostCells(ghosts.grid, [Body(b.geometry) for b in ghosts.bodies])
    plain.apply(unbalanced, accel, 1.2)
    leak = net_flux(bal, unbalanced, plain.thin_links()[3])[bal.count_inv > 0]
    assert np.all(np.abs(leak) > 1e-3 * _scale(ghosts, unbalanced))
    # only the objects' values moved: every other cell is as it was
    others = np.setdiff1d(np.arange(p.size), ghosts.index)
    assert np.array_equal(p.reshape(-1)[others], before.reshape(-1)[others])


def test_an_object_is_balanced_only_with_its_touching_neighbours():
    """Two cubes whose ghost cells touch are one balance group: if one of them is not balanced
    (an elastic shader), neither is; a cube three cells away from it still is."""
    a = Body(Geometry(BOX, OFF - [0.0105, 0, 0], np.eye(3)), balanced=True)
    b = Body(Geometry(BOX, OFF + [0.0105, 0, 0], np.eye(3)))
    c = Body(Geometry(BOX, OFF + [0.0, 0.034, 0], np.eye(3)), balanced=True)
    bal = GhostCells(_grid(), [a, b, c]).balance()
    assert np.diff(bal.face_ptr).tolist()[:2] == [0, 0] and bal.count_inv[2] > 0


def test_the_ground_hides_the_resting_face():
    """A cube resting on the ground (its bottom 0.1 mm above the floor): no face of the balance
    lies under the floor, none reads the floor's mirror rows."""
    ghosts = _system("cube on the ground")
    bal = ghosts.balance()
    k = np.unravel_index(bal.face_fluid, ghosts.grid.shape)[2]
    assert np.all(k >= ghosts.grid.layer)
    assert len(bal.face_fluid) < len(_system("cube").balance().face_fluid)


@pytest.mark.parametrize("case", CASES)
def test_a_volume_source_draws_its_net_volume_flux(case):
    """A balanced object whose shaders push volume (``Body.volume``): its face differences add up to
    ρQ̇/h, Q̇ the boundary input's entry for it after the rows' aₙ (random here); the touching
    cubes' group reads the first cube's Q̇ only (the second is rigid)."""
    ghosts = _system(case, volume=True)
    rng = np.random.default_rng(4)
    p = rng.uniform(-1, 1, ghosts.grid.shape)
    inputs = rng.uniform(-50, 50, ghosts.inputs)
    inputs[len(ghosts):] = rng.uniform(-1e-4, 1e-4, ghosts.inputs - len(ghosts))   # Q̇ m³/s²
    ghosts.apply(p, inputs, 1.2)
    bal = ghosts.balance()
    assert len(bal.vol_idx) == 1 and bal.vol_idx[0] == len(ghosts)
    want = 1.2 / H * inputs[len(ghosts)]
    assert abs(target_flux(bal, inputs, 1.2 / H)[0] - want) <= 1e-15 * abs(want)
    flux = net_flux(bal, p, ghosts.thin_links()[3])[0]
    assert abs(flux - want) <= 1e-12 * (_scale(ghosts, p) + abs(want))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("volume", [False, True])
def test_compiled_balance_equals_reference(case, dtype, volume):
    """geometry_kernels.flux_balance against balance_reference on random fields (and random
    boundary inputs, which volume sources read): the same sums in the same order, so equal to the
    bit (float32 fields: the shifted values rounded alike)."""
    ghosts = _system(case, volume)
    bal = ghosts.balance()
    rng = np.random.default_rng(5)
    p = rng.uniform(-1, 1, ghosts.grid.shape).astype(dtype)
    back = rng.uniform(-1, 1, ghosts.n_back)
    inputs = rng.uniform(-1, 1, ghosts.inputs)
    p_ref, back_ref = p.copy(), back.copy()
    lam = balance_reference(bal, p_ref, back_ref, inputs, 1.2 / H)
    flux_balance(p.reshape(-1), back, inputs, 1.2 / H, *bal.arrays())
    assert np.all(np.abs(lam[bal.count_inv > 0]) > 0)
    assert np.array_equal(p, p_ref)
    assert np.array_equal(back, back_ref)


def test_a_moving_body_balances_with_fresh_cells():
    """A cube moved by a cell fraction between two updates has fresh cells (fluid now): they are
    air to the balance, and the net flux is still zero."""
    geom = Geometry(BOX, OFF, TILT)
    body = Body(geom, ConstantVelocity(geom.position, geom.rotation, np.array([3.0, 1.0, 0.0])), balanced=True)
    ghosts = GhostCells(_grid(), [body], 0.0)
    ghosts.update(0.0009)
    assert ghosts.fresh.any()
    rng = np.random.default_rng(9)
    p = rng.uniform(-1, 1, ghosts.grid.shape)
    ghosts.apply(p, rng.uniform(-50, 50, len(ghosts)), 1.2)
    bal = ghosts.balance()
    assert not np.isin(bal.face_src, ghosts.index[ghosts.fresh]).any()
    assert np.isin(ghosts.index[ghosts.fresh], bal.face_fluid).any()
    assert abs(net_flux(bal, p, ghosts.thin_links()[3])[0]) <= 1e-12 * _scale(ghosts, p)


@pytest.mark.parametrize("shaders, balanced, volume", [
    (["acceleration_noise"], True, False), (["acceleration_noise", "modal"], True, True),
    (["acceleration_noise", "prescribed"], False, False), (["translate"], True, False), ([], False, False)])
def test_objects_are_balanced_when_their_shaders_know_their_volume(tmp_path, shaders, balanced, volume):
    """A scene object's body is balanced when it has shaders and every one is ``rigid``
    (acceleration_noise, prescribed translate) or ``knows_volume`` (modal); then it reads its Q̇
    from the boundary input where one is not rigid (``Body.volume``). prescribed pulsate knows
    neither; a system with none balanced has no faces."""
    from wavesolve.floor_image import boundary_bodies
    from wavesolve.meshes import Box, primitive_mesh
    from wavesolve.modes import ModeSet
    from wavesolve.scene import parse_scene

    vertices = primitive_mesh(Box(primitive="box", size=[0.02] * 3)).vertices
    ModeSet([900.0], [0.01], vertices[:, :, None] / 0.01).save(tmp_path / "modes.h5")
    tables = {"acceleration_noise": 'type = "acceleration_noise"\nmaterial = "abs"\nimpacts = [ { time = 0.0005, '
                                    'position = [0.0, 0.0, 0.01], impulse = [0.0, 0.0, 0.002], speed = 1.0 } ]',
              "modal": 'type = "modal"\nmaterial = "abs"\nmodes = "modes.h5"\nimpacts = [ { time = 0.0005, '
                       'position = [0.0, 0.0, 0.01], impulse = [0.0, 0.0, 0.002], speed = 1.0 } ]',
              "prescribed": 'type = "prescribed"\npattern = "pulsate"\nsignal = { waveform = "gaussian_derivative", '
                            'frequency = 600.0, amplitude = 1.0 }',
              "translate": 'type = "prescribed"\npattern = "translate"\ndirection = [1.0, 0.0, 0.0]\n'
                           'signal = { waveform = "gaussian_derivative", frequency = 600.0, amplitude = 1.0 }'}
    text = f"""
[simulation]
duration = 0.001
cell_size = {H}
[domain]
size = 0.12
[[objects]]
name = "body"
mesh = {{ primitive = "box", size = [0.02, 0.02, 0.02] }}
position = [0.0013, 0.0007, -0.0011]
""" + "".join(f"[[objects.shaders]]\n{tables[s]}\n" for s in shaders) + """
[[listeners]]
name = "ear"
position = [0.04, 0.0, 0.0]
"""
    scene = parse_scene(text, tmp_path / "balanced.toml")
    bodies = boundary_bodies(scene.objects, scene.grid)
    assert bodies[0].balanced is balanced and bodies[0].volume is volume
    ghosts = GhostCells(scene.grid, bodies)
    bal = ghosts.balance()
    assert (len(bal.face_src) > 0) is balanced
    assert bal.vol_idx.tolist() == ([len(ghosts)] if volume else [])
