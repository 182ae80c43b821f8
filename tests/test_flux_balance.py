"""The volume balance of rigidly sounding objects (wavesolve/flux_balance.py).

Physics: the net volume flux a body pushes into the air is ρ∮aₙ dS, zero for any rigid motion of a
closed body. The discrete counterpart is the sum of the face differences the field update reads
across the object's ghost–fluid faces, Σ (v − p_f). After the balance it must be zero for a
balanced object whatever the field (float64: to 1e-12 of the sum of the terms' magnitudes,
rounding), with the fluid cells untouched; objects that are not balanced keep their ghost values.
The far-field consequence (no monopole from a struck cube) is tests/test_rigid_monopole.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from wavesolve.boundary import Body, GhostCells
from wavesolve.flux_balance import balance_reference, net_flux
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


def _bodies(case: str) -> list[Body]:
    """The balanced bodies of a case: a 2 cm cube on the grid's axes or tilted, a sphere, a plate
    thinner than a cell (back values), two cubes whose ghost cells touch (balanced together) and a
    cube resting on a ground."""
    if case in ("cube", "cube on the ground"):
        return [Body(Geometry(BOX, OFF, np.eye(3)), balanced=True)]
    if case == "tilted cube":
        return [Body(Geometry(BOX, OFF, TILT), balanced=True)]
    if case == "sphere":
        return [Body(Geometry(trimesh.creation.icosphere(subdivisions=4, radius=0.0124), OFF, np.eye(3)), balanced=True)]
    if case == "thin plate":
        return [Body(Geometry(trimesh.creation.box(extents=[0.04, 0.03, 0.0025]), OFF, TILT), balanced=True)]
    if case == "touching cubes":
        return [Body(Geometry(BOX, OFF - [0.0105, 0, 0], np.eye(3)), balanced=True),
                Body(Geometry(BOX, OFF + [0.0105, 0, 0], np.eye(3)), balanced=True)]
    raise ValueError(case)


CASES = ["cube", "tilted cube", "sphere", "thin plate", "touching cubes", "cube on the ground"]


def _system(case: str) -> GhostCells:
    return GhostCells(_grid(ground=case == "cube on the ground"), _bodies(case))


def _scale(ghosts: GhostCells, p: np.ndarray) -> float:
    """Σ |v − p_f| over the balanced faces: the size of the terms the net flux sums."""
    bal = ghosts.balance()
    flat = p.reshape(-1)
    return float(np.sum(np.abs(flat[np.maximum(bal.face_src, 0)] - flat[bal.face_fluid])))


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
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_balance_equals_reference(case, dtype):
    """geometry_kernels.flux_balance against balance_reference on random fields: the same sums in
    the same order, so equal to the bit (float32 fields: the shifted values rounded alike)."""
    ghosts = _system(case)
    bal = ghosts.balance()
    rng = np.random.default_rng(5)
    p = rng.uniform(-1, 1, ghosts.grid.shape).astype(dtype)
    back = rng.uniform(-1, 1, ghosts.n_back)
    p_ref, back_ref = p.copy(), back.copy()
    lam = balance_reference(bal, p_ref, back_ref)
    flux_balance(p.reshape(-1), back, *bal.arrays())
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


@pytest.mark.parametrize("shaders, balanced", [
    (["acceleration_noise"], True), (["acceleration_noise", "prescribed"], False), ([], False)])
def test_objects_are_balanced_when_all_their_shaders_are_rigid(shaders, balanced):
    """A scene object's body is balanced when it has shaders and every one declares Shader.rigid
    (acceleration_noise does, prescribed does not); a system with none balanced has no faces."""
    from wavesolve.floor_image import boundary_bodies
    from wavesolve.scene import parse_scene

    tables = {"acceleration_noise": 'type = "acceleration_noise"\nmaterial = "abs"\nimpacts = [ { time = 0.0005, '
                                    'position = [0.0, 0.0, 0.01], impulse = [0.0, 0.0, 0.002], speed = 1.0 } ]',
              "prescribed": 'type = "prescribed"\npattern = "pulsate"\nsignal = { waveform = "gaussian_derivative", '
                            'frequency = 600.0, amplitude = 1.0 }'}
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
    scene = parse_scene(text, "balanced.toml")
    bodies = boundary_bodies(scene.objects, scene.grid)
    assert bodies[0].balanced is balanced
    bal = GhostCells(scene.grid, bodies).balance()
    assert (len(bal.face_src) > 0) is balanced
