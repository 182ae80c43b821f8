"""Sharp-interface boundaries: cell classification, ghost cells, fresh cells and image points.

A cell is solid when its centre is inside an object (signed distance < 0). Solid cells with a
fluid face-neighbour are *ghost cells*; their pressure is set each step so that the 7-point
stencil of the neighbouring fluid cells sees the boundary condition ∂p/∂n = −ρaₙ. Cells that were
solid at the previous step and are fluid now (*fresh cells*, behind a moving object) get both time
levels the same way. For an unknown cell u with closest surface point x_b, outward normal n and
signed normal coordinate ξ (negative inside), a quadratic along the normal through the surface
slope p′ = −ρaₙ and two fluid points x_b + e n and x_b + (e + h) n gives (exact on quadratics):

    p_u = (1 + κ) p(x_b + e n) − κ p(x_b + (e + h) n) + ρ aₙ (e − ξ − κh),
    κ = (e² − ξ²) / (2eh + h²),   e = max(−ξ, ξ + e_min, e_min)

so a ghost cell deeper than e_min uses its mirror point (κ = 0). The fluid points are trilinear in
the 8 surrounding cells, some of which may be unknowns themselves, so all unknown values solve one
sparse system (I − W_gg) p_u = W_gf p_f + ρ·offset·aₙ, factorised once per geometry update.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from .constants import CONTACT_WEIGHT, MAX_NEAR_OWN_WEIGHT, MIN_IMAGE_OFFSET_CELLS
from .errors import InstabilityError
from .flux_balance import Balance, build_balance
from .grid import Grid
from .meshes import Geometry, SDFLattice
from .motion import Motion, RigidState, Static
from .shading import BoundaryPoints

log = logging.getLogger("wavesolve")

#: Most layers of ghost cells grown into a body to close the image-point stencils.
_MAX_GHOST_LAYERS = 4
#: Least trilinear weight, along one axis, of a cell an image stencil reaches (``_reached``): below
#: it the cell is not grown into an unknown (if blocked, its weight is dropped: an error ≤ this).
_REACH_WEIGHT = 1e-9
#: Cells of air kept around the objects in the working window of the boundary update.
_WINDOW_MARGIN = 5

#: Largest contraction factor q of the Gauss–Seidel sweeps (``geometry_kernels.scaled_norm``:
#: off-diagonal row sums of W_gg over 1 − W_rr) for which the ghost system of moving geometry is
#: solved by sweeps instead of a sparse LU (each sweep shrinks the error by at least q: ≤ 120 at
#: 0.75; the bench's spinning ball has q ≈ 0.12 and needs 6).
_ITERATIVE_MAX_NORM = 0.75
#: Relative accuracy (to the largest unknown value) at which the sweeps stop: a rigorous bound,
#: a few hundred times float64 rounding, the level at which LU solutions differ among orderings.
_ITERATIVE_TOLERANCE = 1e-13
_ITERATIVE_MAX_SWEEPS = 200
#: Largest group of coupled ghost cells inverted densely (beyond it: a warning, still exact).
_LARGE_GHOST_GROUP = 4000

#: Cells from the surface within which a moving rigid mesh answers closest points from its
#: candidate lattice (exact either way; beyond it the AABB tree answers).
_CANDIDATE_BAND_CELLS = 1.5

#: Cells of air a surface point's probe (0.1 h out of the surface) must have from every other
#: object to count as facing air. Above rounding: a probe landing on the other object's surface
#: (a gap of exactly 0.1 h) is pressed against it, whichever object is asked.
_PROBE_CLEARANCE = 1e-9

_NEIGHBOURS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


@dataclass
class Body:
    """An object as the boundary sees it: its shape and its motion (a static pose by default).
    An ``image`` body (an object's mirror image in a ground: wavesolve/floor_image.py) only
    classifies cells: its cells are solid, never unknowns of the system. A ``balanced`` body's net
    face flux is held at what its shaders' net volume acceleration Q̇ asks (wavesolve/flux_balance.py):
    zero where they are all rigid; otherwise (``volume``) the Q̇ the boundary input carries for it."""

    geometry: Geometry
    motion: Motion | None = None
    image: bool = False
    balanced: bool = False
    volume: bool = False

    def __post_init__(self) -> None:
        if self.motion is None:
            self.motion = Static(self.geometry.position, self.geometry.rotation)
        self._lattice: SDFLattice | None = None
        self._band = np.inf
        self._region_cache: tuple | None = None   # (key, state, distances) of the last full evaluation
        self._box_corners: tuple | None = None    # (vertices, (8, 3) corners of their bounding box)
        self._closed: bool | None = None           # the mesh is watertight (its faces never change)

    def prepare(self, grid: Grid) -> None:
        """Precompute what per-step classification needs (the SDF lattice of a moving rigid body)."""
        self._band = 4 * grid.h
        if self.motion.moves and not self.motion.deforms and self._lattice is None:
            self._lattice = SDFLattice(self.geometry, spacing=grid.h / 2, margin=3 * grid.h)
            # unknown cells lie within about a cell of the surface (ghost cells grown by a layer or
            # two, fresh cells, back sides); farther queries still go to the AABB tree
            self.geometry.use_candidate_lattice(self._lattice, band=_CANDIDATE_BAND_CELLS * grid.h)

    def at(self, t: float) -> RigidState:
        """Rigid state at t; for a deforming body the geometry's vertices are moved to time t."""
        if self.motion.deforms:
            self.geometry.set_vertices(self.motion.track.vertices(t))
        return self.motion.state(t)

    def deformation_acceleration(self, t: float, local: np.ndarray, triangles: np.ndarray,
                                 state: RigidState) -> np.ndarray | None:
        """World-frame acceleration (n, 3) of a deforming surface at object-frame points on the given
        triangles (barycentric interpolation of vertex accelerations); None for a rigid body."""
        if not self.motion.deforms:
            return None
        geom = self.geometry
        corners = geom.vertices[geom.mesh.faces[triangles]]             # (n, 3 corners, 3)
        bary = _barycentric(local, corners)
        acc = self.motion.track.acceleration(t)[geom.mesh.faces[triangles]]
        return np.einsum("nc,ncd->nd", bary, acc) @ state.rotation.T

    def motion_volume_acceleration(self, t: float, state: RigidState) -> float:
        """∮ n·a dS (m³/s²) over the closed mesh at time t of its surface's own acceleration a: the
        rigid rotation's centripetal part ω × (ω × r) has divergence −2|ω|², so it gives
        −2|ω|²·volume (a + α × r: zero); a deforming mesh adds each triangle's vector area times its
        corners' mean acceleration (a linear on each triangle: exact). Object frame throughout
        (the geometry's vertices at t, set by :meth:`at`)."""
        geom = self.geometry
        omega = np.asarray(state.angular_velocity, dtype=np.float64)
        q = -2.0 * float(omega @ omega) * geom.volume()
        if self.motion.deforms:
            acc = self.motion.track.acceleration(t)[geom.mesh.faces]
            q += float(np.einsum("fd,fd->", geom.vector_areas(), acc.mean(axis=1)))
        return q

    def region_distance(self, grid: Grid, lo: np.ndarray, hi: np.ndarray, state: RigidState,
                        sign_only: bool = False) -> np.ndarray:
        """Signed distance at the centres of the cell box [lo, hi) of ``grid`` (array of its shape).

        Reuses the last full evaluation of the same box (same world cells): a static body's as it
        is; a moving rigid body's outside the band |d| < δ + h, δ the largest displacement of its
        bounding box since then (those cells cannot have changed side), until δ reaches a cell; a
        deforming closed surface's likewise, δ its vertices' largest displacement
        (``_refresh_deformed``).
        ``sign_only``: the caller reads only the signs (one object: nothing to pick an owner
        between), so the band is |d| < √3·δ. The lattice is read trilinearly from exact distance
        samples, whose differences along a lattice edge are at most the edge's length, so each
        partial derivative of the read is at most 1 in size and the read is √3-Lipschitz; a rigid
        motion moves no point of the box further than its farthest corner, δ. Outside the band the
        value cannot have changed sign (slack 1e-9 for rounding).
        """
        shape = tuple(int(n) for n in hi - lo)
        key = (tuple(np.rint(np.asarray(grid.origin) / grid.h + lo).astype(int)), shape, grid.h)
        if self._lattice is not None:
            first = grid.centres(np.asarray(lo)[None])[0]
            centres_d = lambda sel=None: self._lattice.at_cells(  # noqa: E731 - compiled lattice read
                np.arange(int(np.prod(shape))) if sel is None else sel, shape, first, grid.h, state)
        else:
            axes = [np.arange(lo[a], hi[a]) for a in range(3)]
            centres = lambda sel=None: grid.centres(  # noqa: E731 - built only when needed
                np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)[sel if sel is not None else slice(None)])
            centres_d = lambda sel=None: self.signed_distance(centres(sel), state)  # noqa: E731
        cache = self._region_cache
        if cache is not None and cache[0] == key:
            if self.motion.deforms:
                d = self._refresh_deformed(cache, grid, state, sign_only, centres_d)
                if d is not None:
                    return d
            elif not self.motion.moves:
                return cache[2]
            elif self._lattice is not None:
                delta = self._displacement(cache[1], state)
                if delta < grid.h:
                    band = np.sqrt(3.0) * delta * (1 + 1e-9) + 1e-9 * grid.h if sign_only else delta + grid.h
                    return self._lattice.refresh_band(cache[2], band, shape, first, grid.h, state)
        d = centres_d().reshape(shape)
        if not self.motion.deforms:
            self._region_cache = (key, state, d)
        elif self._closed_surface():
            world = self.geometry.to_world(self.geometry.vertices, state)
            self._region_cache = (key, world, d, _longest_edge(world, self.geometry.mesh.faces))
        return d

    def _refresh_deformed(self, cache: tuple, grid: Grid, state: RigidState, sign_only: bool,
                          centres_d) -> np.ndarray | None:
        """A deforming closed surface's distances on the cached box, re-evaluated only in a band
        around the cached surface; None once a vertex has moved a cell since the cache was made.

        The cached values are signed nearest-vertex distances d₀ (``approximate_signed_distance_local``:
        the sign from the winding number, the magnitude at most e₀, the longest edge then, above
        the distance to the surface). If no vertex moved more than δ, every surface between the
        two (vertices moved along straight lines) lies within δ of the cached one, so a cell with
        |d₀| > δ + e₀ never met the surface, and a closed surface's winding number about it, an
        integer, did not change: its sign stands. Its magnitude is off by at most δ, which only
        picks owners between objects: as for rigid bodies, a cell beyond δ + e₀ + h keeps it.
        A cell marked ±inf (nearest vertex beyond ``_band``) lies more than ``_band`` − e₀ away, so
        where δ + e₀ reaches ``_band`` the whole box is evaluated again. (Slack 1e-9 for rounding.)"""
        world = self.geometry.to_world(self.geometry.vertices, state)
        _, before, d0, e0 = cache
        delta = float(np.sqrt(np.max(np.sum((world - before) ** 2, axis=1))))
        if delta >= grid.h or delta + e0 >= self._band:
            return None
        band = (delta + e0) * (1 + 1e-9) + 1e-9 * grid.h + (0.0 if sign_only else grid.h)
        sel = np.flatnonzero(np.abs(d0.reshape(-1)) < band)
        d = d0.copy()
        d.reshape(-1)[sel] = centres_d(sel)
        return d

    def _closed_surface(self) -> bool:
        """Whether the mesh is closed (watertight; its faces, and so this, never change)."""
        if self._closed is None:
            self._closed = bool(self.geometry.mesh.is_watertight)
        return self._closed

    def _displacement(self, a: RigidState, b: RigidState) -> float:
        """Largest distance any point of the body's bounding box moved between states a and b (m)."""
        v = self.geometry.vertices
        if self._box_corners is None or self._box_corners[0] is not v:    # kept while the vertices are
            self._box_corners = (v, np.array(np.meshgrid(*zip(v.min(axis=0), v.max(axis=0)),
                                                         indexing="ij")).reshape(3, -1).T)
        corners = self._box_corners[1]
        moved = (corners @ b.rotation.T + b.position) - (corners @ a.rotation.T + a.position)
        return float(np.max(np.linalg.norm(moved, axis=1)))

    def signed_distance(self, points: np.ndarray, state: RigidState) -> np.ndarray:
        """Signed distance (n,) of world points, positive in air (lattice-interpolated when moving)."""
        local = self.geometry.to_local(points, state)
        if self._lattice is not None:
            return self._lattice(local)
        if self.motion.deforms:
            return self.geometry.approximate_signed_distance_local(local, band=self._band)
        return self.geometry.signed_distance_local(local)[0]


def _longest_edge(vertices: np.ndarray, faces: np.ndarray) -> float:
    """The longest triangle edge (m) of a mesh with these vertices (n, 3) and faces (m, 3)."""
    tri = vertices[faces]
    return float(np.sqrt(np.max(np.sum((tri - np.roll(tri, 1, axis=1)) ** 2, axis=2))))


@dataclass
class Classification:
    """Cell classes for one set of poses (arrays of the grid's shape).

    Attributes:
        solid: True inside an object. owner: index of the object a cell belongs to (−1: none).
        distance: signed distance to the owning (nearest) object; +inf far from all objects
            (empty from ``GhostCells._locate_one_rigid``, which needs only the signs; with one
            moving object, the magnitudes away from its surface may be those of an earlier pose:
            ``Body.region_distance``'s ``sign_only``).
    """

    solid: np.ndarray
    owner: np.ndarray
    distance: np.ndarray


def classify(grid: Grid, bodies: list[Body], states: list[RigidState], margin_cells: int = 2,
             compiled: bool = True) -> Classification:
    """Classify cells by signed distance, querying only cells near each object's bounding box.
    ``compiled``: merge each object's distances with ``geometry_kernels.merge_region`` (default)
    instead of the NumPy reference."""
    shape = grid.shape
    solid = np.zeros(shape, dtype=bool)
    owner = np.full(shape, -1, dtype=np.int16)
    distance = np.full(shape, np.inf)
    for k, (body, state) in enumerate(zip(bodies, states)):
        lo, hi = _region_box(grid, body, state, margin_cells)
        region = tuple(slice(lo[a], hi[a]) for a in range(3))
        # a lone object owns every cell near it: only the signs count
        d = body.region_distance(grid, lo, hi, state, sign_only=len(bodies) == 1)
        if compiled:
            from .geometry_kernels import merge_region

            merge_region(distance, owner, solid, d, lo.astype(np.int64), k)
            continue
        better = d < distance[region]
        distance[region] = np.where(better, d, distance[region])
        owner[region] = np.where(better, k, owner[region])
        solid[region] |= d < 0
    return Classification(solid=solid, owner=owner, distance=distance)


def _region_box(grid: Grid, body: Body, state: RigidState, margin_cells: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Cell box [lo, hi) (3,) of ``grid`` that :func:`classify` queries for a body: its world
    bounds at ``state`` grown by ``margin_cells``, clipped to the grid."""
    bounds = body.geometry.world_bounds(state)
    lo = np.maximum(np.floor(grid.fractional_index(bounds[0][None])[0]).astype(int) - margin_cells, 0)
    hi = np.minimum(np.ceil(grid.fractional_index(bounds[1][None])[0]).astype(int) + margin_cells + 1,
                    np.asarray(grid.shape))
    return lo, hi


class GhostCells:
    """Ghost and fresh cells of all objects and the factorised system that sets their pressure.

    Static geometry is built once; call :meth:`update` each step when anything moves.
    The system is (I − W_gg) p_u = W_gf p[fluid_cols] + ρ·offset·aₙ over the unknown cells u.

    Attributes:
        phase_times: seconds the last :meth:`update` spent in ``classification``, ``closest
            points`` (closest points, normals and image points of unknown cells and back sides;
            for a lone rigid body also the cell masks, built in the same compiled call),
            ``image weights`` (stencils and sparse assembly), ``solver setup`` (the sweeps'
            contraction factor, the static operators, or the LU factorisation) and ``other``.
        index: (g,) flat indices of the unknown cells: ghost cells, then fresh cells.
        fresh: (g,) bool, True for fresh cells (fluid now, solid at the previous update).
        solid_index: (s,) flat indices of the other solid cells (held at zero).
        W_gf: (g, f) CSR weights on the fluid cells ``fluid_cols`` (flat indices, (f,)).
        W_gg: (g, g) CSR weights among unknown cells.
        offset: (g,) coefficient of ρaₙ (m).
        points: per object, the BoundaryPoints of its unknown cells (closest surface points).
        rows: per object, the rows of ``index`` that belong to it.
        row_surface: (closest points world (G, 3), object frame (G, 3), normals (G, 3), triangles
            (G,), owners (G,)) over all G rows (unknown cells, then back values).
        back_ghost_row: (m,) the unknown row each back value belongs to.
    """

    def __init__(self, grid: Grid, bodies: list[Body | Geometry], t: float = 0.0, iterative: bool = True) -> None:
        """``iterative``: solve a moving geometry's ghost system by Gauss–Seidel sweeps where they
        provably converge (:meth:`solve`); False always factorises it (the reference)."""
        self.grid = grid
        self.iterative = iterative
        self.bodies = [b if isinstance(b, Body) else Body(b) for b in bodies]
        self._image_owners = np.array([k for k, b in enumerate(self.bodies) if b.image], dtype=np.int16)
        for body in self.bodies:
            body.prepare(grid)
        self.moving = any(b.motion.moves or b.motion.deforms for b in self.bodies)
        self._solid_before: tuple[np.ndarray, np.ndarray] | None = None   # (lo, window solid mask)
        self._solid_box: tuple[np.ndarray, np.ndarray] | None = None
        self._operator_of: sp.csr_matrix | None = None    # the W_gg whose (M, N) ``_operator_mn`` holds
        self._operator_mn: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
        self._groups_of: sp.csr_matrix | None = None      # the W_gg whose coupled groups ``_groups`` holds
        self._groups: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.int64))
        self._balance_of: tuple | None = None               # the cell arrays ``_balance`` was made from
        self._balance: Balance | None = None
        self.update(t)

    def update(self, t: float) -> None:
        """Reclassify cells for the poses at time t and rebuild the ghost/fresh system.

        All work happens in a window of the grid around the objects (a sub-grid with the same
        cells), so its cost follows the objects' size, not the grid's.
        """
        clock = time.perf_counter
        start = clock()
        self.time = t
        self.states = [b.at(t) for b in self.bodies]
        lo, win = self._window(self.states)
        wshape = win.shape

        def to_global(local_flat: np.ndarray) -> np.ndarray:
            return _window_to_global(local_flat, wshape, lo, self.grid.shape)

        located = self._locate_one_rigid(win, lo) if len(self.bodies) == 1 else None
        if located is not None:                     # one compiled call (geometry_kernels.locate_unknowns)
            t_classified, cls, fresh, ghost, unknown_ijk, surf = located
            solid = cls.solid
            spent_surface = clock() - t_classified
        else:
            cls = classify(win, self.bodies, self.states)
            t_classified = clock()
            spent_surface = 0.0
            solid = cls.solid
            fresh = _moved_mask(self._solid_before, lo, wshape)
            fresh &= ~solid
            # Unknowns: ghost cells (solid next to fluid) and fresh cells, plus every solid cell that
            # an image stencil reaches (on curved surfaces a stencil can touch the second solid
            # layer); repeat to closure. An image body's cells are never unknowns.
            ghost = _ghost_mask(solid)
            if self._image_owners.size:
                imaged = np.isin(cls.owner, self._image_owners)
                ghost &= ~imaged
                fresh &= ~imaged
                solid_real = solid & ~imaged
            else:
                solid_real = solid
            for layer in range(_MAX_GHOST_LAYERS):
                unknown_ijk = np.concatenate([_mask_indices(ghost), _mask_indices(fresh)])
                t0 = clock()
                surf = _SurfaceData(win, unknown_ijk, cls, self.bodies, self.states)
                spent_surface += clock() - t0
                reached = np.concatenate([_stencil_reach(win, surf.near), _stencil_reach(win, surf.far)], axis=1)
                own = cls.owner.reshape(-1)[reached] == surf.owner[:, None]
                reached = reached[own]
                extra = reached[solid_real.reshape(-1)[reached] & ~ghost.reshape(-1)[reached]]
                if len(extra) == 0 or layer == _MAX_GHOST_LAYERS - 1:
                    break       # no pass left to make them unknowns: they stay blocked
                ghost.reshape(-1)[extra] = True
        n_ghost = int(ghost.sum())
        local_index = np.ravel_multi_index(unknown_ijk.T, wshape) if len(unknown_ijk) else np.zeros(0, np.int64)
        n = len(local_index)
        row_of = np.full(int(np.prod(wshape)), -1, dtype=np.int64)
        row_of[local_index] = np.arange(n)
        t0 = clock()
        back = _BackSides(win, unknown_ijk, n_ghost, surf, cls, self.bodies, self.states)
        spent_surface += clock() - t0
        m = len(back)
        back_of = np.full(n, -1, dtype=np.int64)
        back_of[back.ghost_row] = n + np.arange(m)
        self.offset = np.concatenate([surf.offset, back.offset])
        kappa = np.concatenate([surf.kappa, back.kappa])
        terms = [(np.concatenate([surf.near, back.near]), 1.0 + kappa),
                 (np.concatenate([surf.far, back.far]), -kappa)]
        blocked = solid & ~(ghost | fresh)
        owner = np.concatenate([surf.owner, back.owner])
        t_weights = clock()
        solid_owner = np.where(solid, cls.owner, -1).reshape(-1) if len(self.bodies) > 1 else None
        if self._image_owners.size:
            self._claim_mirrors(solid_owner, unknown_ijk, lo, wshape)
        self.W_gf, self.W_gg, local_cols, contact = _image_weights(
            win, terms, blocked, row_of, np.concatenate([unknown_ijk, unknown_ijk[back.ghost_row]]),
            np.concatenate([surf.normal_world, back.normal]), back_of, owner, solid_owner=solid_owner)
        self.offset[contact] = 0.0          # no air between the contact's surfaces: no ρaₙ term
        self.index = to_global(local_index)
        self.fluid_cols = to_global(local_cols)
        t_factor = clock()
        self._prepare_solver(n + m)
        t_factored = clock()
        self.fresh = np.arange(n) >= n_ghost
        self.solid_index = _mask_to_global(blocked, lo, self.grid.shape)
        self._held = None                                  # held_cells, made on first use
        self._solid_before = (lo, solid)
        self._solid_box = None
        if n_ghost:         # grid-index bounds of the solid cells, for _window: an extreme solid cell
            ghost_ijk = unknown_ijk[:n_ghost]       # has air beyond it, so it is a ghost cell
            self._solid_box = (lo + ghost_ijk.min(axis=0), lo + ghost_ijk.max(axis=0) + 1)
        self.n_back = m
        self._link_fluid = to_global(back.link_fluid)
        self._link_row = n + back.link_back
        self._link_cell = self.index[back.ghost_row[back.link_back]]
        self._back_values = np.zeros(m)
        closest_world = np.concatenate([surf.closest_world, back.closest_world])
        closest_local = np.concatenate([surf.closest_local, back.closest_local])
        normal_world = np.concatenate([surf.normal_world, back.normal])
        triangle = np.concatenate([surf.triangle, back.triangle])
        # every row's surface point, for boundary_keys.KeyedGhostCells to interpolate between updates
        self.row_surface = (closest_world, closest_local, normal_world, triangle, owner)
        self.back_ghost_row = back.ghost_row
        self.rows = [np.flatnonzero(owner == k_obj) for k_obj in range(len(self.bodies))]
        self.points = []
        for r, state, body in zip(self.rows, self.states, self.bodies):
            if len(r) == len(owner):                # one object owns every row: no gathered copies
                r = slice(None)
            self.points.append(BoundaryPoints(
                position=closest_world[r], normal=normal_world[r], position_local=closest_local[r],
                normal_local=normal_world[r] @ state.rotation, triangle=triangle[r], state=state,
                deformation_acceleration=body.deformation_acceleration(t, closest_local[r], triangle[r], state),
                motion_volume_acceleration=functools.partial(body.motion_volume_acceleration, t, state)))
        end = clock()
        self.phase_times = {"classification": t_classified - start, "closest points": spent_surface,
                            "image weights": t_factor - t_weights, "solver setup": t_factored - t_factor}
        self.phase_times["other"] = end - start - sum(self.phase_times.values())

    def _claim_mirrors(self, solid_owner: np.ndarray, unknown_ijk: np.ndarray, lo: np.ndarray,
                       wshape: tuple[int, int, int]) -> None:
        """Give the cells under the floor that mirror unknown cells to the images (in
        ``solid_owner``, flat over the window): the mirror rows are copied before the unknowns are
        solved (``Backend.mirror_floor``), so such a cell holds no value a stencil may use; in the
        free field with the mirror image it is the image's unknown, which no stencil of another
        object reads either (``_image_weights``)."""
        grid = self.grid
        L, m = grid.layer, grid.mirror_rows
        z = unknown_ijk[:, 2] + lo[2]
        mirror = 2 * L - 1 - z
        near = (z >= L) & (z < L + m) & (mirror >= lo[2])
        cells = unknown_ijk[near].copy()
        cells[:, 2] = mirror[near] - lo[2]
        solid_owner[np.ravel_multi_index(cells.T, wshape)] = self._image_owners[0]

    def _locate_one_rigid(self, win: Grid, win_lo: np.ndarray) -> tuple | None:
        """Classification and unknown cells of a single moving rigid body through
        ``geometry_kernels.locate_unknowns`` (same steps as :meth:`update`'s general path, without
        the Python between them); None where that path must run (no candidate lists, or an
        unknown they do not answer). Returns (time classified, Classification, fresh, ghost,
        unknown_ijk, _SurfaceData); ``win_lo``: the window's first cell in the grid."""
        body, state = self.bodies[0], self.states[0]
        lists = body.geometry._candidates
        if body._lattice is None or body.motion.deforms or lists is None:
            return None
        from .geometry_kernels import locate_unknowns

        lo, hi = _region_box(win, body, state)
        d = body.region_distance(win, lo, hi, state, sign_only=True)
        t_classified = time.perf_counter()
        before = _moved_mask(self._solid_before, win_lo, win.shape)
        h = win.h
        ok, solid, owner, fresh, ghost, unknown_ijk, inside, out = locate_unknowns(
            np.ascontiguousarray(d, dtype=np.float64), lo.astype(np.int64), np.asarray(win.shape, dtype=np.int64),
            before, float(h), np.asarray(win.origin, dtype=np.float64),
            np.ascontiguousarray(state.rotation, dtype=np.float64), np.asarray(state.position, dtype=np.float64),
            lists.corners, lists.spheres, lists.start, lists.tris, lists.dist, lists.shape, lists.origin, lists.spacing,
            lists.bin_start, lists.bin_tris, lists.bin_size, lists.bin_shape,
            body.geometry.face_normals_local(slice(None)), MIN_IMAGE_OFFSET_CELLS * h, _MAX_GHOST_LAYERS,
            _REACH_WEIGHT)
        if not ok:
            return None
        cls = Classification(solid=solid, owner=owner, distance=np.zeros(0))
        surf = _SurfaceData.from_compiled(owner[tuple(unknown_ijk.T)].astype(np.int64), out)
        return t_classified, cls, fresh, ghost, unknown_ijk, surf

    def _window(self, states: list[RigidState]) -> tuple[np.ndarray, Grid]:
        """Index offset (3,) and sub-grid covering every object (and last step's solid cells)."""
        grid, shape = self.grid, np.asarray(self.grid.shape)
        lo, hi = shape.copy(), np.zeros(3, dtype=int)
        for body, state in zip(self.bodies, states):
            b = body.geometry.world_bounds(state)
            lo = np.minimum(lo, np.floor(grid.fractional_index(b[:1])[0]).astype(int))
            hi = np.maximum(hi, np.ceil(grid.fractional_index(b[1:])[0]).astype(int) + 1)
        if self._solid_box is not None:
            lo, hi = np.minimum(lo, self._solid_box[0]), np.maximum(hi, self._solid_box[1])
        if not self.bodies:
            lo, hi = np.zeros(3, dtype=int), np.ones(3, dtype=int)
        lo = np.maximum(lo - _WINDOW_MARGIN, 0)
        hi = np.minimum(hi + _WINDOW_MARGIN, shape)
        origin = tuple(float(o) for o in grid.centres(lo[None])[0])
        win = Grid(h=grid.h, dt=grid.dt, sound_speed=grid.sound_speed, shape=tuple(int(x) for x in hi - lo),
                   layer=0, origin=origin)
        return lo, win

    def __len__(self) -> int:
        """Number of boundary rows (unknown cells plus back values of one-cell-thick parts)."""
        return len(self.index) + self.n_back

    @property
    def inputs(self) -> int:
        """Length of a step's boundary input: the rows' aₙ (m/s²), then the net volume acceleration
        Q̇ (m³/s²) of each object that is not an image (the scene's objects, in order), which the
        volume balance of a ``Body.volume`` object reads (``flux_balance.volume_entry``)."""
        return len(self) + sum(not b.image for b in self.bodies)

    def solid_cells(self) -> np.ndarray:
        """Flat indices of every solid cell (ghost and interior), whose updates are discarded."""
        return np.concatenate([self.solid_index, self.index[~self.fresh]])

    def floor_mirrors(self) -> tuple[np.ndarray, np.ndarray]:
        """(cells, mirrors), flat indices (k,): the unknown cells in the first row above a ground's
        floor and the cells under the floor that mirror them (empty without a ground).
        ``Backend.mirror_floor`` copies that row before the unknowns are solved, so the mirrors
        must take the solved values again: a fresh cell's update reads its mirror (the rigid
        floor), as it reads the mirror image's fresh cell in the free field."""
        grid = self.grid
        cells = self.index[self.index % grid.shape[2] == grid.layer] if grid.mirror_rows else self.index[:0]
        return cells, cells - 1

    def held_cells(self) -> np.ndarray:
        """Flat indices of the solid cells set to zero after each field update, which keeps every
        solid cell but the ghost cells at exactly zero. Moving geometry: all of them
        (``solid_cells``). Static geometry: the ghost cells and the solid cells next to a cell
        outside ``solid_index``; a deeper cell, once zero with its six neighbours, updates to
        2·0 − 0 + λ²·0 = 0 by itself (the 200³ bench sphere: 27 k cells held instead of 207 k)."""
        if self.moving:
            return self.solid_cells()
        if self._held is None:
            self._held = np.sort(np.concatenate([_next_to_others(self.solid_index, self.grid.shape),
                                                 self.index[~self.fresh]]))
        return self._held

    def _prepare_solver(self, rows: int) -> None:
        """Ready the ghost system for :meth:`solve`. Static geometry: its exact inverse operators
        (:meth:`operator`, as the GPU uses), after which a step is one compiled sparse product
        (0.49 ms against the LU's 1.40 ms for the 13 208 rows of the 200³ bench's sphere), unless
        a group of coupled cells exceeds ``_LARGE_GHOST_GROUP`` (its dense inverse would be slow
        and large: then a sparse LU, factorised once). Moving geometry rebuilds the system every
        step: when its Gauss–Seidel sweeps contract by q ≤ ``_ITERATIVE_MAX_NORM`` (the usual case:
        most image points lie in the fluid) it is solved by compiled sweeps, which need no
        factorisation; otherwise (and always with ``iterative`` False, the reference) it is
        factorised (sparse LU) here."""
        from .geometry_kernels import scaled_norm

        self._has_system = rows > 0
        self._lu = None
        self._operator = None
        self._pivot, self._norm = scaled_norm(self.W_gg.indptr, self.W_gg.indices, self.W_gg.data)
        if not rows:
            return
        if not self.moving and self.iterative and np.bincount(self._coupled_groups()[1]).max() <= _LARGE_GHOST_GROUP:
            try:
                M, N = self.operator()
            except np.linalg.LinAlgError:
                raise self._singular() from None
            cells = self.fluid_cols[M.indices]             # M's columns as grid cells: no gather
            self._operator = (M.indptr.astype(np.int64), cells.astype(np.int64), M.data,
                              N.indptr.astype(np.int64), N.indices.astype(np.int64), N.data)
        elif not self.moving or not self.iterative or self._norm > _ITERATIVE_MAX_NORM:
            self._factorise()

    def _coupled_groups(self) -> tuple[int, np.ndarray]:
        """(count, group of each row) of the ghost cells coupled through the current W_gg (its
        connected components; computed once per update)."""
        if self._groups_of is not self.W_gg:
            self._groups = _coupled_groups(self.W_gg)
            self._groups_of = self.W_gg
        return self._groups

    def operator(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(M, N) of :func:`ghost_operator` for the current system (computed once per update)."""
        if self._operator_of is not self.W_gg:
            self._operator_mn = ghost_operator(self.W_gg, self.W_gf, self.offset, self._coupled_groups())
            self._operator_of = self.W_gg
        return self._operator_mn

    def compiled_operator(self) -> tuple | None:
        """The static operator's arrays as ``geometry_kernels.operator_apply`` reads them: M's CSR
        (indptr, grid cells as columns, values), then N's; empty ones where there are no rows. None
        where the ghost values come from another solver (moving geometry, or a coupled group too
        large for a dense inverse: the LU)."""
        if not self._has_system:
            empty_ptr, empty = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
            return empty_ptr, empty, np.zeros(0), empty_ptr, empty, np.zeros(0)
        return self._operator

    def _factorise(self) -> None:
        n = self.W_gg.shape[0]
        try:
            self._lu = splu((sp.identity(n, format="csc") - self.W_gg).tocsc())
        except RuntimeError:                # SuperLU: "Factor is exactly singular"
            raise self._singular() from None

    def _singular(self) -> InstabilityError:
        """The error for a singular system I − W_gg: where its ghost cells see only each other
        (rows whose stencils, followed through the rows they read, reach no air), which a run
        cannot solve."""
        reads = (self.W_gg.tocsr() != 0).astype(np.int64)
        reaches_air = np.diff(self.W_gf.tocsr().indptr) > 0
        while True:                         # a row reaches air if a row it reads does
            more = reaches_air | (reads @ reaches_air.astype(np.int64) > 0)
            if np.array_equal(more, reaches_air):
                break
            reaches_air = more
        closed = np.flatnonzero(~reaches_air)
        rows = closed[closed < len(self.index)]
        where = ""
        if len(rows):
            ijk = np.array(np.unravel_index(self.index[rows[0]], self.grid.shape))
            x = np.asarray(self.grid.origin) + self.grid.h * ijk
            where = (f": {len(closed)} ghost cell(s) whose stencils reach no air, the first at cell "
                     f"{tuple(int(i) for i in ijk)} (x, y, z = {x[0]:.4g}, {x[1]:.4g}, {x[2]:.4g} m)")
        return InstabilityError(
            f"the boundary system has no solution at t = {self.time:.6g} s{where}. Objects "
            "pressed against each other or the floor closer than the grid resolves can cause this: refine "
            "simulation.cell_size, or keep the objects apart by a cell.")

    def solve(self, p: np.ndarray, accel: np.ndarray, density: float) -> np.ndarray:
        """Unknown-cell pressures (g,) for the field ``p`` and normal accelerations ``accel`` m/s²: the
        boundary input (g rows' aₙ, then each scene object's Q̇, ``Simulation.boundary_acceleration``),
        of which the first g are read.

        Static geometry: x = M p_f + ρ N aₙ (exact operators). Moving: by the sparse LU, or by
        Gauss–Seidel sweeps stopped when their rigorous error bound is below
        ``_ITERATIVE_TOLERANCE`` times the largest value (falling back to the LU if they stall).
        """
        if self._operator is not None:
            return self._apply_operator(p, accel, density, np.zeros(0, dtype=np.int64))
        return self.solve_fluid(p.reshape(-1)[self.fluid_cols], accel, density)

    def _apply_operator(self, p: np.ndarray, accel: np.ndarray, density: float, into: np.ndarray) -> np.ndarray:
        """Static geometry's :meth:`solve` in one compiled pass (``geometry_kernels.operator_apply``),
        which also writes row r < len(into) into p.flat[into[r]]."""
        from .geometry_kernels import operator_apply

        return operator_apply(*self._operator, p.reshape(-1), np.asarray(accel, dtype=np.float64),
                              float(density), into)

    def solve_fluid(self, fluid: np.ndarray, accel: np.ndarray, density: float) -> np.ndarray:
        """:meth:`solve` from the fluid values its image stencils read, ``fluid`` (len(fluid_cols),)
        = p.flat[fluid_cols] (Pa): what a GPU backend copies to the host for moving geometry."""
        accel = np.asarray(accel, dtype=np.float64)[:len(self)]
        if self._operator is not None:
            M, N = self.operator()
            return M @ fluid.astype(np.float64) + density * (N @ accel)
        rhs = self.W_gf @ fluid.astype(np.float64) + density * self.offset * accel
        return self._sweep(rhs) if self._lu is None else self._lu.solve(rhs)

    def _sweep(self, rhs: np.ndarray) -> np.ndarray:
        """x with (I − W_gg) x = rhs by compiled Gauss–Seidel sweeps, factorising (and keeping the
        LU for this system) if they stall."""
        from .geometry_kernels import fixed_point_solve

        W = self.W_gg
        x, _, converged = fixed_point_solve(W.indptr, W.indices, W.data, self._pivot, rhs, self._norm,
                                            _ITERATIVE_TOLERANCE, _ITERATIVE_MAX_SWEEPS)
        if converged:
            return x
        log.debug("ghost system: Gauss–Seidel sweeps did not converge (q = %.3g); factorising", self._norm)
        self._factorise()
        return self._lu.solve(rhs)

    def apply(self, p: np.ndarray, accel: np.ndarray, density: float) -> None:
        """Set ghost- and fresh-cell pressures in ``p`` (in place) at the current time from the
        boundary input ``accel`` (:meth:`solve`), then the objects' volume balance; keep the back
        values of one-cell-thick parts for :meth:`correct_thin_parts`."""
        if self._has_system:
            n = len(self.index)
            if self._operator is not None:             # the ghost values written in the same pass
                values = self._apply_operator(p, accel, density, self.index)
            else:
                values = self.solve(p, accel, density)
                p.reshape(-1)[self.index] = values[:n]
            self._back_values = values[n:]
            self._balance_flux(p, accel, density)

    def balance(self) -> Balance:
        """The current system's volume balance (``flux_balance``), made again only when the
        system's cells change (not between the keys of a keyed system, whose cells stay)."""
        cells = (self.index, self.fresh, self.solid_index, self._link_fluid, self._link_row, self._link_cell)
        if self._balance_of is None or any(a is not b for a, b in zip(cells, self._balance_of)):
            owner = np.zeros(len(self), dtype=np.int64)
            for k, rows in enumerate(self.rows):
                owner[rows] = k
            self._balance = build_balance(self.grid, self.index, self.fresh, self.solid_cells(), owner,
                                          (self._link_fluid, self._link_row, self._link_cell),
                                          np.array([b.balanced for b in self.bodies], dtype=bool),
                                          np.array([b.volume for b in self.bodies], dtype=bool))
            self._balance_of = cells
        return self._balance

    def _balance_flux(self, p: np.ndarray, inputs: np.ndarray, density: float) -> None:
        """Shift each balanced object's ghost and back values so its net face flux is what its Q̇
        (in the boundary input ``inputs``) asks (``flux_balance``; compiled:
        ``geometry_kernels.flux_balance``)."""
        from .geometry_kernels import flux_balance

        balance = self.balance()
        if len(balance.add_dst):
            flux_balance(p.reshape(-1), self._back_values, np.asarray(inputs, dtype=np.float64),
                         density / self.grid.h, *balance.arrays())

    def thin_links(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The one-cell-thick parts' links, (l,) each: the flat fluid cells to correct, the index of
        each one's back value in ``back_values`` (the last step's far-side pressures, (n_back,) Pa),
        and the flat ghost cell whose front value its stencil read; then ``back_values``."""
        return self._link_fluid, self._link_row - len(self.index), self._link_cell, self._back_values

    def correct_thin_parts(self, p: np.ndarray, out: np.ndarray, lam2: float) -> None:
        """After the field update: far-side neighbours of one-cell-thick parts saw the cell's
        front value in their 7-point stencil; replace it by the back value: out += λ²(p_back − p_g),
        in float64 rounded to out's dtype, added in link order."""
        fluid, back_row, cell, back_values = self.thin_links()
        if len(fluid):
            delta = lam2 * (back_values[back_row] - p.reshape(-1)[cell])
            np.add.at(out.reshape(-1), fluid, delta.astype(out.dtype))

    def apply_fresh_previous(self, p_prev: np.ndarray, accel_prev: np.ndarray, density: float) -> None:
        """Give fresh cells their previous-step pressure, extrapolated from ``p_prev`` the same way."""
        if self._has_system and self.fresh.any():
            values = self.solve(p_prev, accel_prev, density)[:len(self.index)]
            p_prev.reshape(-1)[self.index[self.fresh]] = values[self.fresh]


class _SurfaceData:
    """Closest points, normals and image points of unknown cells (arrays over unknown rows).

    Closest points come from each mesh's AABB tree (exact); ξ is negative for solid cells.
    """

    def __init__(self, grid: Grid, unknown_ijk: np.ndarray, cls: Classification, bodies: list[Body],
                 states: list[RigidState], compiled: bool = True) -> None:
        h = grid.h
        n = len(unknown_ijk)
        flat = np.ravel_multi_index(unknown_ijk.T, grid.shape) if n else np.zeros(0, np.int64)
        self.owner = cls.owner.reshape(-1)[flat].astype(np.int64)
        inside = cls.solid.reshape(-1)[flat]
        near = self._near_pairs(bodies, states, h) if len(bodies) > 1 else {}
        if compiled and not near and self._compiled(grid, unknown_ijk, inside, bodies, states):
            return
        x_u = grid.centres(unknown_ijk)
        self.triangle = np.zeros(n, dtype=np.int64)
        self.closest_local = np.zeros((n, 3))
        self.closest_world = np.zeros((n, 3))
        self.normal_world = np.zeros((n, 3))
        self.normal_local = np.zeros((n, 3))
        dist = np.full(n, np.inf)
        # Each unknown takes the closest point of its owner; where objects touch or overlap, the
        # closest point on any object that does not lie inside another one (a point on the
        # union's surface), so a cell at a seam never sees an internal face.
        best_valid = np.zeros(n, dtype=bool)
        first_owner = self.owner.copy()
        for k_obj, (body, state) in enumerate(zip(bodies, states)):
            if body.image:          # an image rejects probes (below) but offers no surface points:
                continue            # it owns no rows (floor_image.py)
            owned = first_owner == k_obj
            rows = np.flatnonzero(owned | np.isin(first_owner, near.get(k_obj, [])))
            if not len(rows):
                continue
            geom = body.geometry
            d_k, tri_k, local_k = geom.closest_local(geom.to_local(x_u[rows], state))
            world_k = geom.to_world(local_k, state)
            # valid: a small step out of the surface point lands in air, not in another object
            # (rejects internal faces of overlapping objects and faces pressed against each other)
            valid = np.ones(len(rows), dtype=bool)
            if near.get(k_obj):
                probe = world_k + 0.1 * h * (geom.face_normals_local(tri_k) @ state.rotation.T)
                for j in near[k_obj]:
                    valid &= bodies[j].signed_distance(probe, states[j]) > _PROBE_CLEARANCE * h
            # a valid candidate beats an invalid one; among equals the nearer wins; the owner's
            # candidate is the fallback when no object offers a valid one
            better = np.where(valid, ~best_valid[rows] | (d_k < dist[rows]),
                              ~best_valid[rows] & owned[rows])
            r = rows[better]
            dist[r], self.triangle[r], self.closest_local[r], self.closest_world[r] = (
                d_k[better], tri_k[better], local_k[better], world_k[better])
            best_valid[r] = valid[better]
            self.owner[r] = k_obj
        for k_obj, (body, state) in enumerate(zip(bodies, states)):
            sel = self.owner == k_obj
            if not sel.any():
                continue
            face_n = body.geometry.face_normals_local(self.triangle[sel]) @ state.rotation.T
            vec = (x_u[sel] - self.closest_world[sel]) * np.where(inside[sel], -1.0, 1.0)[:, None]
            length = np.linalg.norm(vec, axis=1, keepdims=True)
            use_vec = length[:, 0] > 1e-6 * h
            nw = np.where(use_vec[:, None], vec / np.maximum(length, 1e-300), face_n)
            self.normal_world[sel] = nw
            self.normal_local[sel] = nw @ state.rotation
        if near:
            self._seam_fallback(grid, unknown_ijk, cls, bodies, states, np.flatnonzero(~best_valid), dist)
        xi = np.where(inside, -dist, dist)
        self.kappa, self.offset, self.near, self.far = _image_points(xi, self.closest_world, self.normal_world, h)


    #: the arrays ``geometry_kernels.surface_points`` returns after (found, triangle, distance)
    _COMPILED_NAMES = ("closest_local", "closest_world", "normal_world", "normal_local", "kappa", "offset", "near",
                       "far")

    @classmethod
    def from_compiled(cls, owner: np.ndarray, out: tuple) -> "_SurfaceData":
        """The surface data of one object's unknowns from ``surface_points``' output ``out``
        (every row found), ``owner`` (g,) their object index."""
        surf = cls.__new__(cls)
        surf.owner = owner
        surf.triangle = out[1]
        for name, value in zip(cls._COMPILED_NAMES, out[3:]):
            setattr(surf, name, value)
        return surf

    def _compiled(self, grid: Grid, unknown_ijk: np.ndarray, inside: np.ndarray, bodies: list[Body],
                  states: list[RigidState]) -> bool:
        """Fill every attribute with ``geometry_kernels.surface_points`` when no two objects are near
        each other and every owner has candidate lists that answer all of its cells; False (and
        nothing kept) otherwise, for the general path."""
        from .geometry_kernels import surface_points

        n = len(unknown_ijk)
        parts = []
        for k_obj, (body, state) in enumerate(zip(bodies, states)):
            every = len(bodies) == 1
            rows = np.arange(n) if every else np.flatnonzero(self.owner == k_obj)
            if not len(rows):
                continue
            lists = body.geometry._candidates
            if lists is None:
                return False
            out = surface_points(
                np.ascontiguousarray(unknown_ijk if every else unknown_ijk[rows], dtype=np.int64),
                np.asarray(grid.origin, dtype=np.float64), float(grid.h),
                np.ascontiguousarray(inside if every else inside[rows]),
                np.ascontiguousarray(state.rotation, dtype=np.float64),
                np.asarray(state.position, dtype=np.float64), lists.corners, lists.spheres, lists.start, lists.tris,
                lists.dist, lists.shape, lists.origin, lists.spacing, lists.bin_start, lists.bin_tris, lists.bin_size,
                lists.bin_shape, body.geometry.face_normals_local(slice(None)), MIN_IMAGE_OFFSET_CELLS * grid.h)
            if not out[0].all():
                return False
            parts.append((rows, out))
        names = self._COMPILED_NAMES
        if len(parts) == 1 and len(parts[0][0]) == n:          # one object owns every row
            self.triangle = parts[0][1][1]
            for name, value in zip(names, parts[0][1][3:]):
                setattr(self, name, value)
            return True
        self.triangle = np.zeros(n, dtype=np.int64)
        for name, width in zip(names, (3, 3, 3, 3, 0, 0, 3, 3)):
            setattr(self, name, np.zeros((n, width) if width else n))
        for rows, out in parts:
            self.triangle[rows] = out[1]
            for name, value in zip(names, out[3:]):
                getattr(self, name)[rows] = value
        return True

    def _seam_fallback(self, grid: Grid, unknown_ijk: np.ndarray, cls: Classification, bodies: list[Body],
                       states: list[RigidState], rows: np.ndarray, dist: np.ndarray) -> None:
        """Unknowns whose nearest points on every mesh are internal (a seam between touching
        objects): take the union's surface point nearest to a fluid face-neighbour instead (outside
        all objects the nearest mesh point is on the union's surface), and the plane through it."""
        shape = np.asarray(grid.shape)
        for r in rows:
            nbs = np.clip(unknown_ijk[r] + _NEIGHBOURS, 0, shape - 1)
            fluid = nbs[~cls.solid[tuple(nbs.T)]]
            if not len(fluid):
                continue
            x_f = grid.centres(fluid[:1])
            best = None
            for k_obj, (body, state) in enumerate(zip(bodies, states)):
                if body.image:
                    continue
                d, tri, local = body.geometry.closest_local(body.geometry.to_local(x_f, state))
                if best is None or d[0] < best[0]:
                    best = (d[0], k_obj, tri[0], local[0], body.geometry.to_world(local, state)[0], state)
            _, k_obj, tri, local, world, state = best
            x_u = grid.centres(unknown_ijk[r:r + 1])[0]
            n = x_f[0] - world
            n /= max(np.linalg.norm(n), 1e-300)
            self.owner[r], self.triangle[r], self.closest_local[r], self.closest_world[r] = k_obj, tri, local, world
            self.normal_world[r], self.normal_local[r] = n, n @ state.rotation
            dist[r] = abs(float(np.dot(x_u - world, n)))

    @staticmethod
    def _near_pairs(bodies: list[Body], states: list[RigidState], h: float) -> dict[int, list[int]]:
        """For each object, the others whose bounds come within two cells of its own."""
        bounds = [b.geometry.world_bounds(s) for b, s in zip(bodies, states)]
        out: dict[int, list[int]] = {}
        for a in range(len(bodies)):
            for b in range(len(bodies)):
                if a != b and np.all(bounds[a][0] - 2 * h <= bounds[b][1]) and np.all(bounds[b][0] - 2 * h <= bounds[a][1]):
                    out.setdefault(a, []).append(b)
        return out


def _coupled_groups(W_gg: sp.csr_matrix) -> tuple[int, np.ndarray]:
    """(count, group of each row): the groups of ghost cells coupled through W_gg (its connected
    components)."""
    if W_gg.shape[0] == 0:
        return 0, np.zeros(0, dtype=np.int64)
    return connected_components(W_gg, directed=False)


def ghost_operator(W_gg: sp.csr_matrix, W_gf: sp.csr_matrix, offset: np.ndarray,
                   groups: tuple[int, np.ndarray] | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(M, N) with M = (I − W_gg)⁻¹ W_gf and N = (I − W_gg)⁻¹ diag(offset), both CSR float64.

    The inverse is taken exactly, group by group: the connected components of W_gg, given as
    ``groups`` = (count, group of each row) where the caller has them, else computed here.
    """
    n = W_gg.shape[0]
    system = (sp.identity(n, format="csr") - W_gg).tocsr()
    count, group = _coupled_groups(W_gg) if groups is None else groups
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(count + 1))
    sizes = np.diff(starts)
    single = order[starts[:-1][sizes == 1]]
    rows, cols = [single], [single]
    pivots = system.diagonal()[single]
    if np.any(pivots == 0.0):               # a row x = x + (no air): as np.linalg.inv says below
        raise np.linalg.LinAlgError("Singular matrix")
    vals = [1.0 / pivots]
    for c in np.flatnonzero(sizes > 1):
        members = order[starts[c]:starts[c + 1]]
        if len(members) > _LARGE_GHOST_GROUP:
            log.warning("%d coupled ghost cells: a dense inverse of that size is slow", len(members))
        inv = np.linalg.inv(system[members][:, members].toarray())
        rows.append(np.repeat(members, len(members)))
        cols.append(np.tile(members, len(members)))
        vals.append(inv.ravel())
    inverse = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    M = (inverse @ W_gf).tocsr()
    N = (inverse @ sp.diags(np.asarray(offset, dtype=np.float64))).tocsr()
    for m in (M, N):
        m.sort_indices()
    return M, N


def _back_side_links(ijk: np.ndarray, normals: np.ndarray, solid: np.ndarray,
                     compiled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rows (k,) and window-flat fluid neighbours (k,) of ghost cells ``ijk`` (n, 3) with air in a
    face direction d against their normal (n·d < −0.3); directions in ``_NEIGHBOURS`` order.
    ``compiled``: ``geometry_kernels.back_side_links`` (default) or this NumPy reference."""
    if compiled:
        from .geometry_kernels import back_side_links

        return back_side_links(np.ascontiguousarray(ijk, dtype=np.int64).reshape(-1, 3),
                               np.ascontiguousarray(normals, dtype=np.float64).reshape(-1, 3), solid, -0.3)
    shape = np.asarray(solid.shape)
    rows, fluid = [], []
    for d in _NEIGHBOURS:
        nb = ijk + d
        ok = np.all((nb >= 0) & (nb < shape), axis=1)
        ok[ok] &= ~solid[tuple(nb[ok].T)]
        ok &= normals @ d < -0.3
        rows.append(np.flatnonzero(ok))
        fluid.append(np.ravel_multi_index(nb[ok].T, solid.shape) if ok.any() else np.zeros(0, np.int64))
    return np.concatenate(rows), np.concatenate(fluid)


def _window_to_global(local_flat: np.ndarray, wshape: tuple[int, int, int], lo: np.ndarray,
                      shape: tuple[int, int, int], compiled: bool = True) -> np.ndarray:
    """Grid-flat indices of window-flat indices (window of shape ``wshape`` starting at cell ``lo``).
    ``compiled``: ``geometry_kernels.window_to_global`` (default) or this NumPy reference."""
    if compiled:
        from .geometry_kernels import window_to_global

        return window_to_global(np.ascontiguousarray(local_flat, dtype=np.int64),
                                np.asarray(wshape, dtype=np.int64), np.asarray(lo, dtype=np.int64),
                                np.asarray(shape, dtype=np.int64))
    ijk = np.array(np.unravel_index(local_flat, wshape)).T + lo
    return np.ravel_multi_index(ijk.T, shape) if len(ijk) else np.zeros(0, np.int64)


def _next_to_others(cells: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The flat indices ``cells`` (ascending) that have a face neighbour outside ``cells``
    (``_ghost_mask`` on their bounding box with one empty cell of margin all round, so nothing
    wraps; a cell on the grid's edge is on the box's edge and so counts)."""
    if cells.size == 0:
        return cells
    ijk = np.stack(np.unravel_index(cells, shape), axis=1)
    lo = ijk.min(axis=0)
    local = tuple((ijk - lo + 1).T)
    mask = np.zeros(tuple(ijk.max(axis=0) - lo + 3), dtype=bool)
    mask[local] = True
    return cells[_ghost_mask(mask)[local]]


def _mask_to_global(mask: np.ndarray, lo: np.ndarray, shape: tuple[int, int, int],
                    compiled: bool = True) -> np.ndarray:
    """Grid-flat indices (ascending) of the True cells of a window ``mask`` starting at cell ``lo``.
    ``compiled``: ``geometry_kernels.mask_to_global`` (default) or the NumPy reference."""
    if compiled:
        from .geometry_kernels import mask_to_global

        return mask_to_global(mask, np.asarray(lo, dtype=np.int64), np.asarray(shape, dtype=np.int64))
    return _window_to_global(np.flatnonzero(mask), mask.shape, lo, shape, compiled=False)


def _mask_indices(mask: np.ndarray, compiled: bool = True) -> np.ndarray:
    """``np.argwhere(mask)`` (int64), compiled (``geometry_kernels.mask_indices``) by default."""
    if compiled:
        from .geometry_kernels import mask_indices

        return mask_indices(mask)
    return np.argwhere(mask).astype(np.int64)


def _moved_mask(previous: tuple[np.ndarray, np.ndarray] | None, lo: np.ndarray,
                wshape: tuple[int, int, int]) -> np.ndarray:
    """A window mask (``wshape``, starting at grid cell ``lo``) set where ``previous`` = (lo of its
    window, mask) is set; its True cells must lie inside the new window (``_window`` sees to it)."""
    out = np.zeros(wshape, dtype=bool)
    if previous is None:
        return out
    plo, mask = previous
    a, b = np.maximum(lo, plo), np.minimum(lo + np.asarray(wshape), plo + np.asarray(mask.shape))
    if np.all(b > a):
        out[tuple(slice(x - y, z - y) for x, y, z in zip(a, lo, b))] = \
            mask[tuple(slice(x - y, z - y) for x, y, z in zip(a, plo, b))]
    return out


def _ghost_mask(solid: np.ndarray, compiled: bool = True) -> np.ndarray:
    """Solid cells with a non-solid face-neighbour (wrapping round the window's edges).
    ``compiled``: ``geometry_kernels.ghost_mask`` (default) or this NumPy reference."""
    if compiled:
        from .geometry_kernels import ghost_mask

        return ghost_mask(solid)
    fluid_nb = np.zeros(solid.shape, dtype=bool)
    for off in _NEIGHBOURS:
        fluid_nb |= ~np.roll(solid, shift=tuple(-off), axis=(0, 1, 2))
    return solid & fluid_nb


def _image_points(xi: np.ndarray, closest: np.ndarray, normal: np.ndarray, h: float):
    """κ, the ρaₙ coefficient (offset) and the two image points (near, far) of unknowns at signed
    normal coordinate ξ from their closest surface points (module docstring)."""
    e_min = MIN_IMAGE_OFFSET_CELLS * h
    e = np.maximum(np.maximum(-xi, xi + e_min), e_min)
    kappa = (e * e - xi * xi) / (2.0 * e * h + h * h)
    return (kappa, e - xi - kappa * h, closest + e[:, None] * normal, closest + (e + h)[:, None] * normal)


class _BackSides:
    """Second values of ghost cells in parts one cell thick: a ghost cell with air on the far side
    of the surface it was extrapolated for (a face-neighbour in a direction d with d·n < −0.3) gets a
    back value, extrapolated from that side; the far-side neighbours use it instead of the cell's
    value (a correction λ²(p_back − p_g) after the field update).

    Attributes (rows count from the end of the primary unknowns): ``ghost_row`` (m,) primary row of
    each back value; ``normal`` (m, 3), ``closest`` world/local (m, 3), ``triangle``, ``owner`` (m,),
    ``kappa``, ``offset``, ``near``, ``far`` as for primary rows; ``link_fluid`` (k,) window-flat
    indices of the far-side fluid cells and ``link_back`` (k,) their back value.
    """

    def __init__(self, grid: Grid, unknown_ijk: np.ndarray, n_ghost: int, surf: "_SurfaceData",
                 cls: Classification, bodies: list[Body], states: list[RigidState]) -> None:
        ijk = unknown_ijk[:n_ghost]
        rows_all, fluid_all = _back_side_links(ijk, surf.normal_world[:n_ghost], cls.solid)
        if not len(rows_all):                   # no part one cell thick: nothing more to find
            self.ghost_row = self.link_fluid = self.link_back = self.owner = self.triangle = np.zeros(0, np.int64)
            self.closest_local = self.closest_world = self.normal = self.near = self.far = np.zeros((0, 3))
            self.kappa = self.offset = np.zeros(0)
            return
        self.ghost_row, first = np.unique(rows_all, return_index=True)
        self.link_fluid = fluid_all
        self.link_back = np.searchsorted(self.ghost_row, rows_all)
        m = len(self.ghost_row)
        self.owner = surf.owner[self.ghost_row]
        self.triangle = np.zeros(m, dtype=np.int64)
        self.closest_local = np.zeros((m, 3))
        self.closest_world = np.zeros((m, 3))
        self.normal = np.zeros((m, 3))
        x_g = grid.centres(ijk[self.ghost_row])
        x_f = grid.centres(np.array(np.unravel_index(fluid_all[first], grid.shape)).T.reshape(-1, 3))
        for k_obj, (body, state) in enumerate(zip(bodies, states)):
            sel = self.owner == k_obj
            if not sel.any():
                continue
            geom = body.geometry
            _, self.triangle[sel], self.closest_local[sel] = geom.closest_local(geom.to_local(x_f[sel], state))
            self.closest_world[sel] = geom.to_world(self.closest_local[sel], state)
        vec = x_f - self.closest_world
        self.normal = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-300)
        xi = np.minimum(np.einsum("ij,ij->i", x_g - self.closest_world, self.normal), 0.0)
        self.kappa, self.offset, self.near, self.far = _image_points(xi, self.closest_world, self.normal, grid.h)

    def __len__(self) -> int:
        return len(self.ghost_row)


def _image_weights(grid: Grid, terms: list[tuple[np.ndarray, np.ndarray]], blocked: np.ndarray,
                   row_of: np.ndarray, unknown_ijk: np.ndarray, normals: np.ndarray | None = None,
                   back_of: np.ndarray | None = None, owner: np.ndarray | None = None,
                   compiled: bool = True, solid_owner: np.ndarray | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """Weights of Σ coef·p(point) over (point, coef) terms, each point interpolated trilinearly.

    ``blocked`` marks cells a stencil must not use (solid cells that are not unknowns); ``row_of``
    maps a flat cell index to its unknown row (−1 for known cells). With ``normals`` (rows, 3) and
    ``back_of`` (primary rows,: back row or −1), a stencil cell that has a back value contributes
    the value whose normal faces the interpolating row's side.
    With ``owner`` (rows,: object index of each row), a stencil cell that is an unknown of another
    object (or, with ``solid_owner``, (cells,) each solid cell's object and −1 for air, any of its
    solid cells) counts as blocked for that row: across a gap narrower than the image stencil, the other
    object's ghost values extrapolate toward this object, and coupling the two made the ghost
    system amplify (two static boxes 3 mm apart at h = 5 mm blew up in 32 steps).
    A row whose first term's stencil (the near image point) loses more than ``CONTACT_WEIGHT`` of
    its weight to such cells is a contact (constants.py): that term falls back to its
    face-neighbours' mean.
    Returns W_gf, W_gg (unknown × unknown), the flat indices of W_gf's columns and the contact
    rows (rows,) bool.
    ``compiled``: stencils and assembly by ``geometry_kernels`` (the default) instead of the NumPy
    reference below; both give canonical CSR matrices with the same entries to rounding.
    """
    if compiled:
        return _image_weights_compiled(grid, terms, blocked, row_of, unknown_ijk, normals, back_of, owner,
                                       solid_owner)
    cell_owner = _cell_owner(row_of, owner, solid_owner)
    if cell_owner is None:
        owner = None
    all_cells, all_weights = [], []
    contact = np.zeros(len(unknown_ijk), dtype=bool)
    for t, (points, coef) in enumerate(terms):
        cells, weights, touching = _trilinear(grid, points, blocked, unknown_ijk, owner, cell_owner, near=t == 0)
        contact |= touching
        all_cells.append(cells)
        all_weights.append(weights * np.broadcast_to(coef, (len(points),))[:, None])
    cells = np.concatenate(all_cells, axis=1)
    weights = np.concatenate(all_weights, axis=1)
    n = len(cells)
    r_idx = np.repeat(np.arange(n), cells.shape[1])
    c_flat = cells.ravel()
    w_flat = weights.ravel()
    keep = w_flat != 0.0
    r_idx, c_flat, w_flat = r_idx[keep], c_flat[keep], w_flat[keep]
    col_row = row_of[c_flat]
    is_unknown = col_row >= 0
    if back_of is not None and len(back_of):
        has_back = is_unknown.copy()
        has_back[is_unknown] = back_of[col_row[is_unknown]] >= 0
        b = back_of[col_row[has_back]]
        own = normals[r_idx[has_back]]
        use_back = np.einsum("ij,ij->i", own, normals[b]) > np.einsum("ij,ij->i", own, normals[col_row[has_back]])
        col_row[np.flatnonzero(has_back)[use_back]] = b[use_back]
    W_gg = sp.csr_matrix((w_flat[is_unknown], (r_idx[is_unknown], col_row[is_unknown])), shape=(n, n))
    cols, col = np.unique(c_flat[~is_unknown], return_inverse=True)
    W_gf = sp.csr_matrix((w_flat[~is_unknown], (r_idx[~is_unknown], col)), shape=(n, len(cols)))
    return W_gf, W_gg, cols, contact


def _image_weights_compiled(grid: Grid, terms: list[tuple[np.ndarray, np.ndarray]], blocked: np.ndarray,
                            row_of: np.ndarray, unknown_ijk: np.ndarray, normals: np.ndarray | None,
                            back_of: np.ndarray | None,
                            owner: np.ndarray | None,
                            solid_owner: np.ndarray | None) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """:func:`_image_weights` through the compiled stencils and CSR assembly."""
    from .geometry_kernels import assemble_weights, image_stencil_terms

    # with a single object no stencil cell can belong to another: the check is skipped
    cell_owner = _cell_owner(row_of, owner, solid_owner)
    use_owner = cell_owner is not None
    if use_owner:
        owner_rows = np.ascontiguousarray(owner, dtype=np.int64)
    else:
        cell_owner = owner_rows = np.zeros(0, dtype=np.int64)
    n = len(unknown_ijk)
    points = np.empty((len(terms), n, 3))
    coefs = np.empty((len(terms), n))
    for t, (p, coef) in enumerate(terms):
        points[t], coefs[t] = p, coef
    cells, weights, lost, contact = image_stencil_terms(
        points, coefs, np.asarray(grid.origin, dtype=np.float64), float(grid.h), np.asarray(grid.shape, dtype=np.int64),
        np.ascontiguousarray(blocked.reshape(-1)), np.ascontiguousarray(unknown_ijk, dtype=np.int64).reshape(-1, 3),
        owner_rows, cell_owner, use_owner, CONTACT_WEIGHT, MAX_NEAR_OWN_WEIGHT)
    if lost:
        log.debug("%d image points fall back to neighbour averages", lost)
    use_back = back_of is not None and len(back_of) > 0 and back_of.max() >= 0
    gg_ptr, gg_idx, gg_val, gf_ptr, gf_idx, gf_val, cols = assemble_weights(
        cells, weights, np.ascontiguousarray(row_of, dtype=np.int64),
        np.ascontiguousarray(back_of if use_back else np.zeros(0), dtype=np.int64),
        np.ascontiguousarray(normals if use_back else np.zeros((0, 3)), dtype=np.float64), use_back)
    # int32 indices (what scipy itself picks at these sizes) spare its constructor a conversion
    W_gg = sp.csr_matrix((gg_val, gg_idx.astype(np.int32), gg_ptr.astype(np.int32)), shape=(n, n))
    W_gf = sp.csr_matrix((gf_val, gf_idx.astype(np.int32), gf_ptr.astype(np.int32)), shape=(n, len(cols)))
    W_gg.has_sorted_indices = W_gf.has_sorted_indices = True
    return W_gf, W_gg, cols, contact


def _cell_owner(row_of: np.ndarray, owner: np.ndarray | None, solid_owner: np.ndarray | None) -> np.ndarray | None:
    """The object (≥ 0) each window cell belongs to for the stencils' rules, −1 for air: the
    row's object for unknown cells, ``solid_owner`` (flat, −1 for air) for the other solid cells
    when given. None where only one object has rows and no other is given (no rule applies)."""
    if owner is None or not len(owner):
        return None
    if solid_owner is None and owner.min() == owner.max():
        return None
    cell_owner = (np.full(len(row_of), -1, dtype=np.int64) if solid_owner is None
                  else np.asarray(solid_owner, dtype=np.int64).copy())
    known = row_of >= 0
    cell_owner[known] = owner[row_of[known]]
    return cell_owner


def _stencil_reach(grid: Grid, points: np.ndarray) -> np.ndarray:
    """:func:`_reached`, compiled (``geometry_kernels.reached_cells``)."""
    from .geometry_kernels import reached_cells

    return reached_cells(np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3),
                         np.asarray(grid.origin, dtype=np.float64), float(grid.h),
                         np.asarray(grid.shape, dtype=np.int64), _REACH_WEIGHT)


def _reached(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Flat indices (n, 8) of the cells each point's trilinear stencil gives a weight of at least
    ``_REACH_WEIGHT`` along each axis (a corner below it repeats the nearer cell), clipped to the
    grid: the cells whose values the stencil needs. A point on a cell's centre plane (an image
    point straight below a ghost cell of a flat face) needs only that plane's cells, whichever
    side rounding puts it on."""
    shape = np.asarray(grid.shape)
    f = grid.fractional_index(points)
    base = np.floor(f).astype(np.int64)
    frac = f - base
    base = np.where(frac > 1.0 - _REACH_WEIGHT, base + 1, base)
    two = (frac >= _REACH_WEIGHT) & (frac <= 1.0 - _REACH_WEIGHT)
    out = np.empty((len(points), 8), dtype=np.int64)
    for c, corner in enumerate(np.ndindex(2, 2, 2)):
        ijk = base + np.array(corner) * two
        out[:, c] = np.ravel_multi_index(np.clip(ijk, 0, shape - 1).T, grid.shape)
    return out


def _barycentric(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (n, 3) of points (n, 3) on triangles with corners (n, 3, 3)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) > 0, d00 * d11 - d01 * d01, 1.0)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - v - w, v, w], axis=1)


def _corners(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Flat indices (n, 8) of the cells around each point (trilinear stencil), clipped to the grid."""
    shape = np.asarray(grid.shape)
    base = np.floor(grid.fractional_index(points)).astype(np.int64)
    out = np.empty((len(points), 8), dtype=np.int64)
    for c, corner in enumerate(np.ndindex(2, 2, 2)):
        out[:, c] = np.ravel_multi_index(np.clip(base + np.array(corner), 0, shape - 1).T, grid.shape)
    return out


def _another_objects(cell_owner: np.ndarray, cells: np.ndarray, own) -> np.ndarray:
    """Whether each of ``cells`` belongs to an object other than ``own`` (cell_owner ≥ 0; the
    reference of ``geometry_kernels._another_objects``)."""
    other = cell_owner[cells]
    return (other >= 0) & (other != own)


def _trilinear(grid: Grid, points: np.ndarray, blocked: np.ndarray, unknown_ijk: np.ndarray,
               owner: np.ndarray | None = None, cell_owner: np.ndarray | None = None,
               near: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trilinear stencils (n, 8) flat cells and weights of points, avoiding ``blocked`` cells, and
    which points are contacts (n,) bool.

    Weights of blocked cells are dropped and given to the usable cells other than the row's own
    (in proportion to theirs), so that the row's own cell keeps its trilinear weight: renormalised
    over it too, a stencil that lost about half its weight weighed its own cell about 1, and a
    ghost value x = w·x + … with w ≈ 1 is its neighbours' amplified without bound (a tilted box
    over the floor, h = 5 mm: w up to 1.09; ``test_ground``). A stencil with no usable cell but
    its own (a thin part), or a ``near`` one weighing its own cell more than
    ``MAX_NEAR_OWN_WEIGHT`` (its surface point does not face the cell), falls back to the mean of
    the unknown cell's usable face-neighbours. With
    ``owner`` (each point's object) and ``cell_owner`` (each cell's, −1 if none), another object's
    unknown cells are not usable, in the stencil or in its fallback, and the stencil of a ``near``
    image point that loses more than ``CONTACT_WEIGHT`` of its weight to them is a contact
    (constants.py), which falls back too.
    """
    shape = np.asarray(grid.shape)
    f = grid.fractional_index(points)
    frac = f - np.floor(f)
    n = len(points)
    weights = np.zeros((n, 8))
    other_weight = np.zeros(n)
    cells = _corners(grid, points)
    blocked_flat = blocked.reshape(-1)
    stopped = np.zeros(n, dtype=bool)
    for c, corner in enumerate(np.ndindex(2, 2, 2)):
        w = np.ones(n)
        for a in range(3):
            w = w * (frac[:, a] if corner[a] else 1.0 - frac[:, a])
        stop = blocked_flat[cells[:, c]]
        if owner is not None:               # another object's cells (see _image_weights)
            theirs = _another_objects(cell_owner, cells[:, c], owner)
            other_weight += np.where(theirs, w, 0.0)
            stop = stop | theirs
        stopped |= stop & (w > 0.0)
        weights[:, c] = np.where(stop, 0.0, w)
    contact = (other_weight > CONTACT_WEIGHT) & near
    is_self = cells == np.ravel_multi_index(unknown_ijk.T, grid.shape)[:, None]
    own = np.where(is_self, weights, 0.0).sum(axis=1)
    kept = weights.sum(axis=1)
    shift = stopped & (own > 0.0)           # lost weight that renormalising would give the row's own cell
    facing = (own <= MAX_NEAR_OWN_WEIGHT) | (not near)
    lost = (kept < 1e-3) | contact | (shift & (kept - own < 1e-3)) | ~facing
    shift &= ~lost
    if np.any(shift):
        factor = (1.0 - own[shift]) / (kept[shift] - own[shift])
        weights[shift] = np.where(is_self[shift], weights[shift], weights[shift] * factor[:, None])
    if np.any(lost):
        log.debug("%d image points fall back to neighbour averages", int(lost.sum()))
        for r in np.flatnonzero(lost):
            nbs = np.clip(unknown_ijk[r] + _NEIGHBOURS, 0, shape - 1)
            nb_flat = np.ravel_multi_index(nbs.T, grid.shape)
            stop = blocked_flat[nb_flat]
            if owner is not None:           # another object's cells: not here either
                stop = stop | _another_objects(cell_owner, nb_flat, owner[r])
            usable = nb_flat[~stop]
            weights[r] = 0.0
            cells[r, :len(usable)] = usable
            weights[r, :len(usable)] = 1.0 / max(len(usable), 1)
    total = weights.sum(axis=1, keepdims=True)
    total[shift] = 1.0                      # their weights sum to 1 already, to rounding
    return cells, np.divide(weights, total, out=np.zeros_like(weights), where=total > 0), contact
