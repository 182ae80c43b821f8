"""The compiled boundary-update pieces (``wavesolve.geometry_kernels``) against their NumPy/libigl
references, element by element.

Tolerances: the compiled code evaluates the references' formulas in its own order (BLAS and scipy
sum differently), so results agree to rounding, not to the bit: 1e-12 m on distances and points
of objects a few cm across (≈ 1e-10 relative, far above the ≈ 1e-16 rounding, far below anything a
grid of mm cells sees), 1e-14 on interpolation weights (sums of 8–16 terms of size ≤ 3).
Triangle ids are compared only through their distance: where two triangles are equally near (an
edge or a vertex is the closest point) either is a correct answer.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import trimesh

from wavesolve import boundary
from wavesolve.boundary import Body, GhostCells, _trilinear
from wavesolve.constants import CONTACT_WEIGHT, MAX_NEAR_OWN_WEIGHT
from wavesolve.geometry_kernels import CandidateLattice, image_stencil_terms
from wavesolve.grid import Grid
from wavesolve.meshes import Geometry, SDFLattice, quaternion_matrix
from wavesolve.motion import RigidState, Spin

H = 0.005
ZERO = np.zeros(3)


def _meshes():
    return {"sphere": trimesh.creation.icosphere(subdivisions=3, radius=0.04),
            "box": trimesh.creation.box(extents=[0.06, 0.03, 0.045])}


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_lattice_distance_at_cells_matches_map_coordinates(name):
    geom = Geometry(_meshes()[name], ZERO, np.eye(3))
    lattice = SDFLattice(geom, spacing=H / 2, margin=3 * H)
    state = RigidState(np.array([0.003, -0.001, 0.002]), quaternion_matrix([0.9, 0.2, -0.3, 0.1]), ZERO, ZERO,
                       ZERO, ZERO)
    shape = (30, 26, 28)                      # wider than the lattice: some cells read +inf
    first = np.array([-0.07, -0.061, -0.0655])
    flat = np.arange(int(np.prod(shape)))
    ijk = np.array(np.unravel_index(flat, shape)).T
    reference = lattice(geom.to_local(first + H * ijk, state))
    compiled = lattice.at_cells(flat, shape, first, H, state)
    assert np.isinf(reference).any() and np.isfinite(reference).any()
    np.testing.assert_array_equal(np.isinf(compiled), np.isinf(reference))
    finite = np.isfinite(reference)
    np.testing.assert_allclose(compiled[finite], reference[finite], rtol=0, atol=1e-12)
    sub = flat[::7]                           # a subset of cells, as the band refresh asks
    np.testing.assert_array_equal(lattice.at_cells(sub, shape, first, H, state), compiled[::7])
    # the band refresh: cells with |cached| < threshold re-read (reference: the NumPy expression)
    cached = compiled.reshape(shape)
    moved = RigidState(state.position + 0.001, state.rotation, ZERO, ZERO, ZERO, ZERO)
    fresh = lattice.refresh_band(cached, 1.5 * H, shape, first, H, moved)
    band = np.flatnonzero(np.abs(cached) < 1.5 * H)
    expected = cached.copy()
    expected.reshape(-1)[band] = lattice(geom.to_local(first + H * ijk[band], moved))
    assert 100 < len(band) < cached.size / 2
    np.testing.assert_allclose(fresh, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.delete(fresh.reshape(-1), band), np.delete(cached.reshape(-1), band))


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_candidate_lattice_closest_points_are_exact(name):
    geom = Geometry(_meshes()[name], ZERO, np.eye(3))
    lattice = SDFLattice(geom, spacing=H / 2, margin=3 * H)
    rng = np.random.default_rng(3)
    # points near the surface (inside and out) and some far away (answered by the AABB tree)
    base, _ = trimesh.sample.sample_surface(geom.mesh, 3000, seed=4)
    pts = np.concatenate([base + rng.normal(scale=0.6 * H, size=base.shape),
                          rng.uniform(-0.06, 0.06, size=(500, 3))])
    ref_d, _, ref_p = geom.closest_local_aabb(pts)
    geom.use_candidate_lattice(lattice, band=1.5 * H)
    d, tri, p = geom.closest_local(pts)
    found = geom._candidates.query(pts)[3]
    assert found.mean() > 0.8 and not found.all()      # both paths ran
    np.testing.assert_allclose(d, ref_d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, ref_p, rtol=0, atol=1e-12)
    # the returned triangle holds the returned point
    corners = geom.vertices[geom.mesh.faces[tri]]
    on_tri, _, _ = geom.closest_local_aabb(p)
    assert np.max(on_tri) < 1e-12
    normals = geom.face_normals_local(tri)
    assert np.max(np.abs(np.einsum("ij,ij->i", p - corners[:, 0], normals))) < 1e-12


def test_bounding_spheres_skip_only_triangles_that_cannot_win():
    """The candidate search reads a float32 ball around each triangle before its corners. Each ball
    holds its triangle's corners exactly (so |p − c| − R is a lower bound of the distance), and the
    search gives the same triangle, point and distance, to the bit, as with no ball skipping any
    triangle (radius inf)."""
    from wavesolve.geometry_kernels import _query_candidates, bounding_spheres

    geom = Geometry(_meshes()["sphere"], ZERO, np.eye(3))
    geom.use_candidate_lattice(SDFLattice(geom, spacing=H / 2, margin=3 * H), band=1.5 * H)
    lists = geom._candidates
    spheres = bounding_spheres(lists.corners)
    corners = lists.corners.reshape(-1, 3, 3)
    reach = np.sqrt(((corners - spheres[:, None, :3].astype(np.float64)) ** 2).sum(axis=2)).max(axis=1)
    assert np.all(reach <= spheres[:, 3].astype(np.float64))
    rng = np.random.default_rng(8)
    base, _ = trimesh.sample.sample_surface(geom.mesh, 3000, seed=9)
    pts = np.ascontiguousarray(base + rng.normal(scale=0.6 * H, size=base.shape))
    args = (lists.start, lists.tris, lists.dist, lists.shape, lists.origin, lists.spacing)
    never = spheres.copy()
    never[:, 3] = np.inf
    got = _query_candidates(pts, lists.corners, spheres, *args)
    want = _query_candidates(pts, lists.corners, never, *args)
    found = got[3]
    assert found.mean() > 0.9
    np.testing.assert_array_equal(want[3], found)
    for a, b in zip(got[:3], want[:3]):                 # (rows not found are left unset)
        np.testing.assert_array_equal(a[found], b[found])


def test_candidate_lists_are_dropped_when_vertices_change():
    geom = Geometry(_meshes()["sphere"], ZERO, np.eye(3))
    geom.use_candidate_lattice(SDFLattice(geom, spacing=H / 2, margin=3 * H), band=1.5 * H)
    geom.set_vertices(geom.vertices * 1.1)
    assert geom._candidates is None


def _stencil_case(seed, with_owner):
    rng = np.random.default_rng(seed)
    grid = Grid(h=H, dt=1e-5, sound_speed=343.0, shape=(12, 10, 11), layer=0, origin=(0.01, -0.02, 0.003))
    blocked = rng.random(grid.shape) < 0.45
    n = 400
    unknown_ijk = np.stack([rng.integers(0, s, n) for s in grid.shape], axis=1)
    points = grid.centres(unknown_ijk) + rng.uniform(-1.6 * H, 1.6 * H, size=(n, 3))   # some beyond the grid
    if not with_owner:
        return grid, points, blocked, unknown_ijk, None, None
    owner = rng.integers(0, 2, n)
    cell_owner = np.full(grid.cells, -1, dtype=np.int64)
    marked = rng.random(grid.cells) < 0.2
    cell_owner[marked] = rng.integers(0, 2, int(marked.sum()))
    return grid, points, blocked, unknown_ijk, owner, cell_owner


@pytest.mark.parametrize("with_owner", [False, True])
def test_image_stencils_match_trilinear(with_owner):
    grid, points, blocked, unknown_ijk, owner, cell_owner = _stencil_case(1, with_owner)
    ref_cells, ref_w, ref_contact = _trilinear(grid, points, blocked, unknown_ijk, owner, cell_owner, near=True)
    cells, w, lost, contact = image_stencil_terms(points[None], np.ones((1, len(points))), np.asarray(grid.origin), H,
                                         np.asarray(grid.shape), blocked.reshape(-1), unknown_ijk.astype(np.int64),
                                         np.zeros(0, np.int64) if owner is None else owner.astype(np.int64),
                                         np.zeros(0, np.int64) if cell_owner is None else cell_owner, with_owner,
                                         CONTACT_WEIGHT, MAX_NEAR_OWN_WEIGHT)
    assert lost > 5                            # the neighbour-average fallback is exercised
    assert contact.any() == with_owner          # and, with two owners, the contact rule
    np.testing.assert_array_equal(contact, ref_contact)
    np.testing.assert_array_equal(cells, ref_cells)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-14)


@pytest.mark.parametrize("with_owner", [False, True])
def test_a_stencil_keeps_its_own_cells_trilinear_weight(with_owner):
    """Weight a stencil loses to blocked (or another object's) cells goes to its other kept cells:
    the row's own cell keeps exactly its trilinear weight, so a ghost value never leans on itself
    more than the plain stencil does (renormalised over it too, it weighed itself up to 1.09 over a
    floor: tests/test_ground.py). Every stencil still sums to 1: it interpolates constants exactly.
    (Fallbacks to face-neighbours are checked against the compiled kernel above.)"""
    grid, points, blocked, unknown_ijk, owner, cell_owner = _stencil_case(2, with_owner)
    cells, w, _ = _trilinear(grid, points, blocked, unknown_ijk, owner, cell_owner, near=True)
    plain_cells, plain_w, _ = _trilinear(grid, points, np.zeros_like(blocked), unknown_ijk)
    own = np.ravel_multi_index(unknown_ijk.T, grid.shape)[:, None]
    fell_back = np.any(cells != plain_cells, axis=1)
    usable = ~blocked.reshape(-1)[own[:, 0]]                    # (an unknown cell is not blocked;
    if with_owner:                                              # these random cases mix them)
        usable &= np.isin(cell_owner[own[:, 0]] - owner, [0]) | (cell_owner[own[:, 0]] < 0)
    kept, plain = (w * (cells == own)).sum(axis=1), (plain_w * (plain_cells == own)).sum(axis=1)
    shifted = ~fell_back & (kept > 0) & np.any((w == 0) & (plain_w > 0), axis=1)
    assert (shifted & usable).sum() > 20                        # the rule is exercised
    np.testing.assert_allclose(kept[~fell_back & usable], plain[~fell_back & usable], rtol=0, atol=1e-15)
    total = w.sum(axis=1)
    np.testing.assert_allclose(total[total > 0], 1.0, rtol=0, atol=1e-14)


def _check_both_assemblies(monkeypatch):
    """Make every _image_weights call also build the reference and compare them."""
    original = boundary._image_weights
    calls = []

    def both(*args, **kwargs):
        W_gf, W_gg, cols, contact = original(*args, **kwargs)
        R_gf, R_gg, R_cols, R_contact = original(*args, **kwargs, compiled=False)
        np.testing.assert_array_equal(cols, R_cols)
        np.testing.assert_array_equal(contact, R_contact)
        for a, b in ((W_gf, R_gf), (W_gg, R_gg)):
            assert a.shape == b.shape
            diff = abs(a - b)
            assert (diff.max() if diff.nnz else 0.0) < 1e-14
            c = a.copy()
            c.sum_duplicates()
            np.testing.assert_array_equal(c.indptr, a.indptr)   # canonical already
        calls.append(W_gg.shape[0])
        return W_gf, W_gg, cols, contact

    monkeypatch.setattr(boundary, "_image_weights", both)
    return calls


def test_compiled_weights_match_reference_with_back_values_and_two_owners(monkeypatch):
    """A plate one cell thick (back values) and a moving sphere close to it (two owners)."""
    calls = _check_both_assemblies(monkeypatch)
    grid = Grid.build(np.zeros(3), np.full(3, 0.24), H, 343.0, layer=4)
    plate = Geometry(trimesh.creation.box(extents=[0.12, 0.12, 0.005]), np.array([0.0013, 0.0017, 0.0011]),
                     np.eye(3))
    ball = Geometry(trimesh.creation.icosphere(subdivisions=3, radius=0.03), np.array([0.01, 0.0, 0.036]),
                    np.eye(3))
    spin = Spin(ball.position, ball.rotation, [0.2, 1.0, 0.1], 20.0)
    ghosts = GhostCells(grid, [Body(plate), Body(ball, spin)])
    assert ghosts.n_back > 50
    ghosts.update(3 * grid.dt)
    assert len(calls) == 2 and min(calls) > 500


def test_moving_ghost_system_matches_reference_update(monkeypatch):
    """A whole update of a spinning box with the compiled pieces gives the reference's system."""
    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    box = Geometry(trimesh.creation.box(extents=[0.07, 0.04, 0.05]), np.array([0.001, 0.002, -0.0015]),
                   quaternion_matrix([0.9, 0.1, 0.3, 0.2]))
    motion = Spin(box.position, box.rotation, [0.3, 0.2, 1.0], 30.0)
    fast = GhostCells(grid, [Body(box, motion)])
    fast.update(5 * grid.dt)
    box_ref = Geometry(box.mesh.copy(), box.position, box.rotation)
    monkeypatch.setattr(Geometry, "closest_local", Geometry.closest_local_aabb)
    monkeypatch.setattr(SDFLattice, "at_cells", lambda self, flat, shape, first, h, state: self(
        (first + h * np.array(np.unravel_index(flat, shape)).T - state.position) @ state.rotation))
    original = boundary._image_weights
    monkeypatch.setattr(boundary, "_image_weights", lambda *a, **k: original(*a, **k, compiled=False))
    monkeypatch.setattr(boundary, "_stencil_reach", boundary._reached)
    for name in ("_window_to_global", "_mask_to_global", "_ghost_mask", "_back_side_links",
                 "_mask_indices"):
        compiled_fn = getattr(boundary, name)
        monkeypatch.setattr(boundary, name, lambda *a, _f=compiled_fn, **k: _f(*a, **{**k, "compiled": False}))
    ref = GhostCells(grid, [Body(box_ref, motion)])
    ref.update(5 * grid.dt)
    np.testing.assert_array_equal(fast.index, ref.index)
    np.testing.assert_array_equal(fast.fluid_cols, ref.fluid_cols)
    np.testing.assert_array_equal(fast.fresh, ref.fresh)
    np.testing.assert_array_equal(np.sort(fast.solid_cells()), np.sort(ref.solid_cells()))
    assert abs(fast.W_gg - ref.W_gg).max() < 1e-12 and abs(fast.W_gf - ref.W_gf).max() < 1e-12
    np.testing.assert_allclose(fast.offset, ref.offset, rtol=0, atol=1e-12)
    rng = np.random.default_rng(0)
    p = rng.normal(size=grid.shape)
    accel = rng.normal(size=len(fast))
    np.testing.assert_allclose(fast.solve(p, accel, 1.2), ref.solve(p, accel, 1.2), rtol=0, atol=1e-10)


@pytest.mark.parametrize("moving", ["translate", "spin"])
def test_one_rigid_body_call_matches_general_update(monkeypatch, moving):
    """One moving rigid body goes through ``geometry_kernels.locate_unknowns`` (classification,
    fresh and ghost cells, closure of the image stencils, closest points in one compiled call);
    step by step it must build the system the general path builds: the same cells (integers,
    exact) and the same weights and offsets (the same compiled arithmetic: 1e-12, as above).
    The box moves 0.3 mm a step (or its corners do, spinning), so cells change side at most steps
    (fresh cells)."""
    from wavesolve.motion import ConstantVelocity

    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    box = Geometry(trimesh.creation.box(extents=[0.07, 0.04, 0.05]), np.array([0.001, 0.002, -0.0015]),
                   quaternion_matrix([0.9, 0.1, 0.3, 0.2]))
    motion = (ConstantVelocity(box.position, box.rotation, [25.0, -12.0, 8.0]) if moving == "translate"
              else Spin(box.position, box.rotation, [0.3, 0.2, 1.0], 30.0))
    fast = GhostCells(grid, [Body(box, motion)])
    general = GhostCells(grid, [Body(Geometry(box.mesh.copy(), box.position, box.rotation), motion)])
    used = []
    monkeypatch.setattr(general, "_locate_one_rigid", lambda *a: None)
    original = GhostCells._locate_one_rigid
    monkeypatch.setattr(GhostCells, "_locate_one_rigid", lambda self, *a: used.append(1) or original(self, *a))
    fresh_steps = 0
    for step in range(1, 25):       # past a cell of motion: band refreshes, then a full one
        fast.update(step * grid.dt)
        general.update(step * grid.dt)
        fresh_steps += bool(fast.fresh.any())
        for name in ("index", "fresh", "fluid_cols", "solid_index", "_link_fluid"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
        assert abs(fast.W_gg - general.W_gg).max() < 1e-12 and abs(fast.W_gf - general.W_gf).max() < 1e-12
        np.testing.assert_allclose(fast.offset, general.offset, rtol=0, atol=1e-12)
        for a, b in zip(fast.points, general.points):
            np.testing.assert_allclose(a.position, b.position, rtol=0, atol=1e-12)
            np.testing.assert_allclose(a.normal, b.normal, rtol=0, atol=1e-12)
    assert len(used) == 24
    assert fresh_steps >= 15            # both motions turn solid cells to fluid at most steps


def test_stencil_reach_matches_reference_and_skips_zero_weights():
    """The cells an image stencil reaches (grown into unknowns when solid): compiled and reference
    agree exactly (integers). A point on a cell's centre plane, as the image point straight below a
    ghost cell of a flat face, reaches only that plane's cells on either side of rounding: the
    cells across, of weight ≤ 1e-9, were grown before and chained the growth along a flat face
    that faced another object (each pass one ring further, in a direction rounding picked)."""
    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    rng = np.random.default_rng(3)
    centre = grid.centres(np.array([[20, 21, 22]]))[0]
    on_plane = centre + np.array([[0.3, 0.7, 0.0], [0.3, 0.7, 1e-17], [0.3, 0.7, -1e-17], [0.5, 0.0, 0.2]]) * H
    points = np.concatenate([rng.uniform(-0.09, 0.09, (500, 3)), on_plane])
    fast = boundary._stencil_reach(grid, points)
    np.testing.assert_array_equal(fast, boundary._reached(grid, points))
    np.testing.assert_array_equal(fast[:500], boundary._corners(grid, points[:500]))   # generic points: all 8
    for row, plane_axis in zip(fast[500:], [2, 2, 2, 1]):
        ijk = np.array(np.unravel_index(np.unique(row), grid.shape)).T
        assert len(ijk) == 4 and np.all(ijk[:, plane_axis] == [20, 21, 22][plane_axis])


@pytest.mark.parametrize("moving", [False, True])
def test_every_solid_cell_is_an_unknown_or_held_when_growth_stops(monkeypatch, moving):
    """Growth of the unknowns is capped (``_MAX_GHOST_LAYERS`` passes). A solid cell that the last
    pass's stencils reach has no pass left to become an unknown, so it must stay blocked (held at
    zero, its weight dropped from the stencils). It was marked and then left neither: a solid cell
    read as air, with whatever its update wrote. With one pass allowed, the stencils of a star's
    concave creases (an icosphere whose edge midpoints are pulled in to 0.3 of its radius) reach
    solid cells beyond its ghost cells; the solid cells must be exactly the unknowns (not fresh)
    and the held ones, for the general path and for one moving body's compiled call
    (``locate_unknowns``)."""
    from wavesolve.boundary import classify
    from wavesolve.motion import ConstantVelocity

    monkeypatch.setattr(boundary, "_MAX_GHOST_LAYERS", 1)
    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    ico = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    star = Geometry(trimesh.Trimesh(ico.vertices * np.where(np.arange(len(ico.vertices)) < 12, 1.0, 0.3)[:, None],
                                    ico.faces), np.array([0.001, 0.002, -0.0015]), np.eye(3))
    motion = ConstantVelocity(star.position, star.rotation, [25.0, -12.0, 8.0]) if moving else None
    ghosts = GhostCells(grid, [Body(star, motion)])
    solid = classify(grid, ghosts.bodies, ghosts.states).solid
    np.testing.assert_array_equal(np.sort(ghosts.solid_cells()), np.flatnonzero(solid))
    monkeypatch.setattr(boundary, "_MAX_GHOST_LAYERS", 4)
    assert len(GhostCells(grid, [Body(star, motion)]).index) > len(ghosts.index)    # the cap was reached


def test_window_bookkeeping_matches_numpy():
    """Window ↔ grid index maps, the ghost mask and the back-side links: integers and booleans,
    so compiled and reference must agree exactly."""
    rng = np.random.default_rng(5)
    shape, wshape, lo = (40, 37, 35), (20, 18, 23), np.array([7, 11, 6])
    solid = rng.random(wshape) < 0.6
    flat = rng.permutation(int(np.prod(wshape)))[:3000]
    np.testing.assert_array_equal(boundary._window_to_global(flat, wshape, lo, shape),
                                  boundary._window_to_global(flat, wshape, lo, shape, compiled=False))
    np.testing.assert_array_equal(boundary._mask_to_global(solid, lo, shape),
                                  boundary._mask_to_global(solid, lo, shape, compiled=False))
    moved = boundary._moved_mask((lo, solid), lo - np.array([2, 0, 3]), (24, 20, 26))
    np.testing.assert_array_equal(moved[2:22, :18, 3:26], solid)
    assert moved.sum() == solid.sum()
    ghost = boundary._ghost_mask(solid)
    np.testing.assert_array_equal(ghost, boundary._ghost_mask(solid, compiled=False))
    np.testing.assert_array_equal(boundary._mask_indices(ghost), boundary._mask_indices(ghost, compiled=False))
    ijk = np.argwhere(ghost)
    normals = rng.normal(size=(len(ijk), 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    rows, fluid = boundary._back_side_links(ijk, normals, solid)
    ref_rows, ref_fluid = boundary._back_side_links(ijk, normals, solid, compiled=False)
    assert len(rows) > 100
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(fluid, ref_fluid)


def test_compiled_classification_matches_numpy_for_overlapping_objects():
    """Two overlapping moving objects and a static one: owner, solid and distance as the
    reference (the same distances merged; only the merge is compiled, so exactly equal)."""
    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    a = Geometry(trimesh.creation.icosphere(subdivisions=3, radius=0.03), np.array([0.01, 0.0, 0.0]), np.eye(3))
    b = Geometry(trimesh.creation.box(extents=[0.05, 0.04, 0.03]), np.array([-0.02, 0.01, 0.0]), np.eye(3))
    c = Geometry(trimesh.creation.box(extents=[0.03, 0.03, 0.03]), np.array([0.0, 0.0, -0.05]), np.eye(3))
    bodies = [Body(a, Spin(a.position, a.rotation, [0, 0, 1], 10.0)),
              Body(b, Spin(b.position, b.rotation, [1, 0, 0], 5.0)), Body(c)]
    for body in bodies:
        body.prepare(grid)
    for step in (4, 5, 9):            # a full evaluation, then band re-reads of it
        states = [body.at(step * grid.dt) for body in bodies]
        fast = boundary.classify(grid, bodies, states)
        ref = boundary.classify(grid, bodies, states, compiled=False)
        assert fast.solid.sum() > 1000 and len(np.unique(fast.owner)) == 4
        np.testing.assert_array_equal(fast.solid, ref.solid)
        np.testing.assert_array_equal(fast.owner, ref.owner)
        np.testing.assert_array_equal(fast.distance, ref.distance)


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_compiled_surface_points_match_reference(name):
    """Closest points, normals and image points of a moving body's unknown cells: compiled
    (``surface_points``) against the NumPy path with the AABB tree. The box's cells on edges and
    corners have ties between faces; points and distances are unique there, so all agree."""
    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    geom = Geometry(_meshes()[name], np.array([0.001, 0.002, -0.0015]), quaternion_matrix([0.9, 0.1, 0.3, 0.2]))
    body = Body(geom, Spin(geom.position, geom.rotation, [0.3, 0.2, 1.0], 30.0))
    ghosts = GhostCells(grid, [body])
    ghosts.update(2 * grid.dt)
    state = ghosts.states[0]
    cls = boundary.classify(grid, [body], [state])
    unknown_ijk = np.argwhere(boundary._ghost_mask(cls.solid))
    fast = boundary._SurfaceData(grid, unknown_ijk, cls, [body], [state])
    lists, geom._candidates = geom._candidates, None          # the general path, AABB tree
    ref = boundary._SurfaceData(grid, unknown_ijk, cls, [body], [state], compiled=False)
    geom._candidates = lists
    assert len(unknown_ijk) > 200
    for attr in ("closest_local", "closest_world", "near", "far", "offset", "kappa"):
        np.testing.assert_allclose(getattr(fast, attr), getattr(ref, attr), rtol=0, atol=1e-12, err_msg=attr)
    for attr in ("normal_world", "normal_local"):
        np.testing.assert_allclose(getattr(fast, attr), getattr(ref, attr), rtol=0, atol=1e-9, err_msg=attr)
    np.testing.assert_array_equal(fast.owner, ref.owner)


def test_cells_beyond_the_lists_band_are_answered_from_the_bins():
    """Solid cells 1.6–3.5 cells deep (ghost cells grown for image stencils reach there; the node
    lists keep triangles only within 1.5 cells of the surface): the compiled path answers them from
    the triangle bins (``_search_bins``), against the NumPy path with the AABB tree. Points and
    distances are unique, so they agree to rounding (1e-12 m)."""
    from wavesolve.constants import MIN_IMAGE_OFFSET_CELLS
    from wavesolve.geometry_kernels import surface_points

    grid = Grid.build(np.zeros(3), np.full(3, 0.2), H, 343.0, layer=4)
    geom = Geometry(_meshes()["sphere"], np.array([0.001, 0.002, -0.0015]), quaternion_matrix([0.9, 0.1, 0.3, 0.2]))
    body = Body(geom, Spin(geom.position, geom.rotation, [0.3, 0.2, 1.0], 30.0))
    ghosts = GhostCells(grid, [body])
    state = ghosts.states[0]
    cls = boundary.classify(grid, [body], [state])
    solid = np.argwhere(cls.solid)
    depth = -body.signed_distance(grid.centres(solid), state) / H
    deep = solid[(depth > 1.6) & (depth < 3.5)]
    lists = geom._candidates
    assert len(deep) > 100
    assert lists.query(geom.to_local(grid.centres(deep), state))[3].mean() < 0.2    # few lists answer them
    out = surface_points(deep, np.asarray(grid.origin), H, np.ones(len(deep), dtype=bool), state.rotation,
                         state.position, lists.corners, lists.spheres, lists.start, lists.tris, lists.dist,
                         lists.shape, lists.origin, lists.spacing, lists.bin_start, lists.bin_tris, lists.bin_size,
                         lists.bin_shape, geom.face_normals_local(slice(None)), MIN_IMAGE_OFFSET_CELLS * H)
    assert out[0].all()                                         # the compiled path answered every cell
    geom._candidates = None                                     # the general path, AABB tree
    ref = boundary._SurfaceData(grid, deep, cls, [body], [state], compiled=False)
    geom._candidates = lists
    for k, attr in ((3, "closest_local"), (4, "closest_world"), (9, "near"), (10, "far"), (8, "offset"), (7, "kappa")):
        np.testing.assert_allclose(out[k], getattr(ref, attr), rtol=0, atol=1e-12, err_msg=attr)


@pytest.mark.parametrize("sweeps", [200, 2])
def test_fixed_point_ghost_solve_matches_lu(monkeypatch, sweeps):
    """The ghost system solved by sweeps (stopped at a rigorous error bound of 1e-13 of the largest
    value) against the sparse LU: a spinning ball beside a plate one cell thick (back values), then
    a ball jumping 4 and 8 mm (fresh cells, whose extrapolations make ‖W_gg‖∞ ≈ 1: the LU is
    used). With 2 sweeps allowed the sweeps stall and the solve falls back to the LU.
    Tolerance 1e-12 of the largest value: the bound plus the LU's own rounding."""
    from wavesolve.motion import ConstantVelocity

    monkeypatch.setattr(boundary, "_ITERATIVE_MAX_SWEEPS", sweeps)
    grid = Grid.build(np.zeros(3), np.full(3, 0.24), H, 343.0, layer=4)
    plate = Geometry(trimesh.creation.box(extents=[0.12, 0.12, 0.005]), np.array([0.0013, 0.0017, 0.0011]),
                     np.eye(3))
    ball = Geometry(trimesh.creation.icosphere(subdivisions=3, radius=0.03), np.array([0.01, 0.0, 0.04]),
                    np.eye(3))
    rng = np.random.default_rng(2)
    cases = [(lambda: [Body(plate), Body(ball, Spin(ball.position, ball.rotation, [0.2, 1.0, 0.1], 20.0))], False),
             (lambda: [Body(ball, ConstantVelocity(ball.position, ball.rotation, [30.0, 10.0, 0.0]))], True)]
    for bodies, with_fresh in cases:
        fast = GhostCells(grid, bodies())
        ref = GhostCells(grid, bodies(), iterative=False)
        for step in (20, 40):             # the jumping ball has moved 4 and 8 mm: fresh cells
            fast.update(step * grid.dt)
            ref.update(step * grid.dt)
            assert fast.fresh.any() == with_fresh and (fast.n_back > 50) != with_fresh
            assert (fast._lu is None) == (fast._norm <= boundary._ITERATIVE_MAX_NORM) != with_fresh
            p = rng.normal(size=grid.shape)
            accel = rng.normal(scale=100.0, size=len(fast))
            x_ref = ref.solve(p, accel, 1.2)
            x = fast.solve(p, accel, 1.2)
            assert (fast._lu is not None) == (sweeps == 2 or with_fresh)
            np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-12 * np.max(np.abs(x_ref)))


def test_static_geometry_uses_its_exact_operator():
    """Static objects set their ghost cells by the exact inverse operators x = M p_f + ρ N aₙ (one
    compiled sparse product a step, as on the GPU); moving ones by sweeps. Against the LU of the
    same system (``iterative=False``), on random fields and accelerations: 1e-12 of the largest
    value (float64 rounding of sums of ~20 terms, and of the groups' dense inverses)."""
    grid = Grid.build(np.zeros(3), np.full(3, 0.24), H, 343.0, layer=4)
    ball = Geometry(trimesh.creation.icosphere(subdivisions=3, radius=0.03), np.zeros(3), np.eye(3))
    plate = Geometry(trimesh.creation.box(extents=[0.12, 0.12, 0.005]), np.array([0.0013, 0.0017, 0.0511]),
                     np.eye(3))
    static = GhostCells(grid, [Body(ball), Body(plate)])
    reference = GhostCells(grid, [Body(ball), Body(plate)], iterative=False)
    assert static._operator is not None and static._lu is None and static.n_back > 50
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        p = rng.normal(size=grid.shape).astype(dtype)
        accel = rng.normal(scale=100.0, size=len(static))
        x_ref = reference.solve(p, accel, 1.2)
        np.testing.assert_allclose(static.solve(p, accel, 1.2), x_ref, rtol=0, atol=1e-12 * np.max(np.abs(x_ref)))
        np.testing.assert_allclose(static.solve_fluid(p.reshape(-1)[static.fluid_cols], accel, 1.2), x_ref, rtol=0,
                                   atol=1e-12 * np.max(np.abs(x_ref)))
    spinning = GhostCells(grid, [Body(ball, Spin(ball.position, ball.rotation, [0.0, 0.0, 1.0], 20.0))])
    assert spinning._operator is None and spinning._lu is None


def test_fixed_point_error_bound_holds():
    """The Gauss–Seidel stopping rule's bound on a random system (I − W) x = b, W with a diagonal
    (as a ghost cell's stencil reaching itself) and a scaled contraction factor q = 0.7, against a
    dense float64 solve: the error must stay within the requested tolerance of max|x|."""
    from wavesolve.geometry_kernels import fixed_point_solve, scaled_norm

    rng = np.random.default_rng(9)
    n = 300
    W = sp.random(n, n, density=0.02, random_state=4, format="lil")
    W.setdiag(0.0)
    W = sp.csr_matrix(W)
    W.data = rng.uniform(-1, 1, W.nnz)
    diag = rng.uniform(-0.2, 0.5, n)
    off = np.maximum(np.asarray(abs(W).sum(axis=1)).ravel(), 1e-300)
    W = sp.csr_matrix(sp.diags(0.7 * (1.0 - diag) / off) @ W + sp.diags(diag))
    pivot, q = scaled_norm(W.indptr, W.indices, W.data)
    np.testing.assert_allclose(pivot, 1.0 - diag, rtol=0, atol=1e-15)
    assert abs(q - 0.7) < 1e-12
    b = rng.normal(size=n)
    exact = np.linalg.solve(np.eye(n) - W.toarray(), b)
    for tol in (1e-4, 1e-8, 1e-13):
        x, sweeps, ok = fixed_point_solve(W.indptr, W.indices, W.data, pivot, b, q, tol, 500)
        assert ok and sweeps > 1
        assert np.max(np.abs(x - exact)) <= tol * np.max(np.abs(x)) * (1 + 1e-9) + 1e-15
    W.data[W.indices == np.repeat(np.arange(n), np.diff(W.indptr))] = 1.5      # a pivot 1 − W_rr < 0
    assert scaled_norm(W.indptr, W.indices, W.data)[1] == np.inf


def test_posed_bounds_match_numpy():
    """World bounds of a posed mesh (compiled one pass vs to_world + min/max: rounding of a 3-term
    dot product, 1e-15 m)."""
    from wavesolve.geometry_kernels import posed_bounds

    geom = Geometry(_meshes()["sphere"], ZERO, np.eye(3))
    rot, pos = quaternion_matrix([0.3, -0.5, 0.2, 0.7]), np.array([0.1, -0.2, 0.05])
    world = geom.vertices @ rot.T + pos
    np.testing.assert_allclose(posed_bounds(geom.vertices, rot, pos), np.stack([world.min(0), world.max(0)]),
                               rtol=0, atol=1e-15)


def test_candidate_lists_over_budget_fall_back_to_the_tree(monkeypatch):
    """Lists that would exceed their memory budget are not kept; closest points still come (from
    the AABB tree)."""
    import wavesolve.geometry_kernels as kernels

    geom = Geometry(_meshes()["sphere"], ZERO, np.eye(3))
    lattice = SDFLattice(geom, spacing=H / 2, margin=3 * H)
    assert not CandidateLattice(geom.vertices, geom.mesh.faces, lattice.values, lattice.origin, lattice.spacing,
                                1.5 * H, max_entries=1000).fits
    monkeypatch.setattr(kernels.CandidateLattice.__init__, "__defaults__", (1000,))
    geom.use_candidate_lattice(lattice, band=1.5 * H)
    assert geom._candidates is None
    pts = np.array([[0.041, 0.0, 0.0], [0.0, 0.01, 0.0]])
    np.testing.assert_allclose(geom.closest_local(pts)[0], geom.closest_local_aabb(pts)[0], rtol=0, atol=0)


def test_face_neighbours_share_the_opposite_edge():
    """Each face's neighbour across the edge opposite corner k holds that edge's two vertices (a
    closed mesh: every edge has one); an open mesh's boundary edges have none (−1)."""
    from wavesolve.meshes import face_neighbours

    mesh = trimesh.creation.icosphere(subdivisions=2)
    faces = np.asarray(mesh.faces)
    nb = face_neighbours(faces, len(mesh.vertices))
    assert np.all(nb >= 0)
    for f in range(len(faces)):
        for k in range(3):
            edge = {faces[f, (k + 1) % 3], faces[f, (k + 2) % 3]}
            assert nb[f, k] != f and edge <= set(faces[nb[f, k]])
    open_faces = faces[: len(faces) // 2]
    nb = face_neighbours(open_faces, len(mesh.vertices))
    assert (nb == -1).any() and (nb >= 0).any()


@pytest.mark.parametrize("name, steps", [("sphere", 3), ("box", 1)])
def test_walked_triangles_are_the_triangles_under_the_points(name, steps):
    """Points over the inside of a triangle (barycentric ≥ 0.05, 0.1–2 mm off its plane on the outside)
    and a start ``steps`` triangles away: the walk (compiled) must end on that triangle, which for
    these convex meshes is also the closest one (libigl's AABB tree names the same). (On the box a
    start across the box from the point could hold its projection onto a face far from it: the walk
    starts from a nearby key's triangle, a neighbour here.)"""
    mesh = _meshes()[name]
    geom = Geometry(mesh, ZERO, np.eye(3))
    rng = np.random.default_rng(11)
    faces = np.asarray(mesh.faces)
    tri = rng.integers(0, len(faces), 400)
    w = rng.uniform(0.05, 1.0, (400, 3))
    w /= w.sum(axis=1, keepdims=True)
    w = np.where(w.min(axis=1, keepdims=True) < 0.05, np.full(3, 1 / 3), w)
    corners = geom.vertices[faces[tri]]
    points = np.einsum("nk,nkd->nd", w, corners) + rng.uniform(1e-4, 2e-3, (400, 1)) * mesh.face_normals[tri]
    from wavesolve.meshes import face_neighbours

    nb = face_neighbours(faces, len(mesh.vertices))
    start = tri.copy()
    for _ in range(steps):                               # random steps away
        start = nb[start, rng.integers(0, 3, 400)]
    assert (start != tri).mean() > 0.5
    walked = geom.triangles_under(points, start)
    np.testing.assert_array_equal(walked, tri)
    _, closest, _ = geom.closest_local_aabb(points)
    np.testing.assert_array_equal(np.ravel(closest), tri)
