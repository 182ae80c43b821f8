"""Sharp-interface boundaries: cell classification, ghost cells and their image points.

A cell is solid when its centre is inside an object (signed distance < 0). Solid cells with a
fluid face-neighbour are *ghost cells*; their pressure is set each step so that the 7-point
stencil of the neighbouring fluid cells sees the boundary condition ∂p/∂n = −ρaₙ:

    p_g = p(x_I) + ρ aₙ s,     x_I = x_g + s n,    s = max(2d, s_min)

where d is the distance from the ghost-cell centre x_g to its closest surface point x_b, n the
outward normal there, and x_I the image point (the mirror of x_g across the surface when d is not
tiny). p(x_I) is trilinear in the 8 surrounding cells, some of which may be ghost cells
themselves, so all ghost values solve one sparse system (I − W_gg) p_g = W_gf p_f + ρ s aₙ,
factorised once for static geometry.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .constants import MIN_IMAGE_OFFSET_CELLS
from .grid import Grid
from .meshes import Geometry
from .shading import BoundaryPoints

log = logging.getLogger("wavesolve")

#: Most layers of ghost cells grown into a body to close the image-point stencils.
_MAX_GHOST_LAYERS = 4

_NEIGHBOURS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


@dataclass
class Classification:
    """Cell classes of the grid for a set of object poses.

    Attributes:
        solid: bool array (grid shape), True inside an object.
        owner: int8 array (grid shape), index of the object a solid cell belongs to (−1 in air).
        distance: float64 array (grid shape), signed distance to the owning object (+inf far away).
        triangle: int64 array (grid shape), closest triangle of the owning object (−1 far away).
        closest: (grid shape + (3,)) closest surface points in the owner's frame (NaN far away).
    """

    solid: np.ndarray
    owner: np.ndarray
    distance: np.ndarray
    triangle: np.ndarray
    closest: np.ndarray


def classify(grid: Grid, geometries: list[Geometry], margin_cells: int = 2) -> Classification:
    """Classify cells by signed distance, querying only cells near each object's bounding box."""
    shape = grid.shape
    solid = np.zeros(shape, dtype=bool)
    owner = np.full(shape, -1, dtype=np.int8)
    distance = np.full(shape, np.inf)
    triangle = np.full(shape, -1, dtype=np.int64)
    closest = np.full(shape + (3,), np.nan)
    for k, geom in enumerate(geometries):
        bounds = geom.world_bounds()
        lo = np.maximum(np.floor(grid.fractional_index(bounds[0][None])[0]).astype(int) - margin_cells, 0)
        hi = np.minimum(np.ceil(grid.fractional_index(bounds[1][None])[0]).astype(int) + margin_cells + 1,
                        np.asarray(shape))
        axes = [np.arange(lo[a], hi[a]) for a in range(3)]
        idx = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        d, tri, cp = geom.signed_distance(grid.centres(idx))
        ii, jj, kk = idx.T
        better = d < distance[ii, jj, kk]
        ii, jj, kk = ii[better], jj[better], kk[better]
        distance[ii, jj, kk] = d[better]
        triangle[ii, jj, kk] = tri[better]
        closest[ii, jj, kk] = cp[better]
        owner[ii, jj, kk] = np.where(d[better] < 0, k, owner[ii, jj, kk])
        solid[ii, jj, kk] |= d[better] < 0
    return Classification(solid=solid, owner=owner, distance=distance, triangle=triangle, closest=closest)


class GhostCells:
    """Ghost cells of static objects and the factorised system that sets their pressure.

    The system is (I − W_gg) p_g = W_gf p[fluid_cols] + ρ·offset·aₙ.

    Attributes:
        index: (g,) flat indices of ghost cells.
        W_gf: (g, f) CSR weights on the fluid cells ``fluid_cols`` (flat indices, (f,)).
        W_gg: (g, g) CSR weights among ghost cells.
        solid_index: (s,) flat indices of solid non-ghost cells (held at zero).
        points: per object, the BoundaryPoints of its ghost cells (closest surface points).
        rows: per object, the rows of ``index`` that belong to it.
        offset: (g,) image distances s (m).
    """

    def __init__(self, grid: Grid, geometries: list[Geometry]) -> None:
        self.grid = grid
        shape = grid.shape
        h = grid.h
        cls = classify(grid, geometries)
        solid = cls.solid
        fluid_nb = np.zeros(shape, dtype=bool)
        for off in _NEIGHBOURS:
            fluid_nb |= ~np.roll(solid, shift=tuple(-off), axis=(0, 1, 2))
        # Ghost cells: solid cells next to fluid, plus every solid cell that an image-point stencil
        # reaches (on curved surfaces a stencil can touch the second solid layer); repeat to closure.
        ghost = solid & fluid_nb
        for _ in range(_MAX_GHOST_LAYERS):
            ghost_ijk = np.argwhere(ghost)
            surf = _SurfaceData(grid, ghost_ijk, cls, geometries)
            reached = np.concatenate([_corners(grid, surf.near), _corners(grid, surf.far)], axis=1).ravel()
            extra = reached[solid.reshape(-1)[reached] & ~ghost.reshape(-1)[reached]]
            if len(extra) == 0:
                break
            ghost.reshape(-1)[extra] = True
        self.index = np.ravel_multi_index(ghost_ijk.T, shape)
        self.solid_index = np.flatnonzero(solid & ~ghost)
        n = len(self.index)
        row_of = np.full(int(np.prod(shape)), -1, dtype=np.int64)
        row_of[self.index] = np.arange(n)
        self.offset = surf.offset
        terms = [(surf.near, 1.0 + surf.kappa), (surf.far, -surf.kappa)]
        self.W_gf, self.W_gg = self._image_weights(grid, terms, solid, ghost, row_of, ghost_ijk)
        system = (sp.identity(n, format="csc") - self.W_gg).tocsc()
        self._lu = splu(system) if n else None

        obj = surf.owner
        self.rows = [np.flatnonzero(obj == k_obj) for k_obj in range(len(geometries))]
        self.points = [
            BoundaryPoints(position=surf.closest_world[r], normal=surf.normal_world[r],
                           position_local=surf.closest_local[r], normal_local=surf.normal_local[r],
                           triangle=surf.triangle[r])
            for r in self.rows
        ]

    def _image_weights(self, grid: Grid, terms: list[tuple[np.ndarray, np.ndarray]], solid: np.ndarray,
                       ghost: np.ndarray, row_of: np.ndarray,
                       ghost_ijk: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Weights of Σ coef·p(point) over (point, coef) terms, each point interpolated trilinearly.

        Returns W_gf (over ``self.fluid_cols``) and W_gg (ghost × ghost).
        """
        all_cells, all_weights = [], []
        for points, coef in terms:
            cells, weights = _trilinear(grid, points, solid, ghost, ghost_ijk)
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
        is_ghost = row_of[c_flat] >= 0
        W_gg = sp.csr_matrix((w_flat[is_ghost], (r_idx[is_ghost], row_of[c_flat[is_ghost]])), shape=(n, n))
        self.fluid_cols, col = np.unique(c_flat[~is_ghost], return_inverse=True)
        W_gf = sp.csr_matrix((w_flat[~is_ghost], (r_idx[~is_ghost], col)), shape=(n, len(self.fluid_cols)))
        return W_gf, W_gg

    def __len__(self) -> int:
        return len(self.index)

    def apply(self, p: np.ndarray, accel: np.ndarray, density: float) -> None:
        """Set ghost-cell pressures in ``p`` (in place) for normal accelerations ``accel`` (g,) m/s²."""
        if self._lu is None:
            return
        flat = p.reshape(-1)
        rhs = self.W_gf @ flat[self.fluid_cols].astype(np.float64) + density * self.offset * accel
        flat[self.index] = self._lu.solve(rhs)


class _SurfaceData:
    """Closest points, normals and image points of ghost cells (arrays over ghost rows).

    Image points: the mirror x_b + d n where d is not tiny; otherwise x_b + e n with e = e_min, and
    a second point one cell further out removes the curvature term (second order):
        p_g = (1 + κ) p(x_b + e n) − κ p(x_b + (e + h) n) + ρ aₙ (e + d − κ h),
        κ = (e² − d²) / (2eh + h²)   (κ = 0 for the mirror).
    """

    def __init__(self, grid: Grid, ghost_ijk: np.ndarray, cls: Classification, geometries: list[Geometry]):
        h = grid.h
        i, j, k = ghost_ijk.T
        self.owner = cls.owner[i, j, k].astype(np.int64)
        d = -cls.distance[i, j, k]
        self.triangle = cls.triangle[i, j, k]
        self.closest_local = cls.closest[i, j, k]
        x_g = grid.centres(ghost_ijk)
        self.closest_world = np.empty_like(self.closest_local)
        self.normal_world = np.empty_like(self.closest_local)
        self.normal_local = np.empty_like(self.closest_local)
        for k_obj, geom in enumerate(geometries):
            sel = self.owner == k_obj
            self.closest_world[sel] = geom.to_world(self.closest_local[sel])
            face_n = geom.face_normals_local(self.triangle[sel]) @ geom.rotation.T
            vec = self.closest_world[sel] - x_g[sel]
            length = np.linalg.norm(vec, axis=1, keepdims=True)
            use_vec = length[:, 0] > 1e-6 * h
            nw = np.where(use_vec[:, None], vec / np.maximum(length, 1e-300), face_n)
            self.normal_world[sel] = nw
            self.normal_local[sel] = nw @ geom.rotation
        e = np.maximum(d, MIN_IMAGE_OFFSET_CELLS * h)
        self.kappa = (e * e - d * d) / (2.0 * e * h + h * h)
        self.offset = e + d - self.kappa * h
        self.near = self.closest_world + e[:, None] * self.normal_world
        self.far = self.closest_world + (e + h)[:, None] * self.normal_world


def _corners(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Flat indices (n, 8) of the cells around each point (trilinear stencil), clipped to the grid."""
    shape = np.asarray(grid.shape)
    base = np.floor(grid.fractional_index(points)).astype(np.int64)
    out = np.empty((len(points), 8), dtype=np.int64)
    for c, corner in enumerate(np.ndindex(2, 2, 2)):
        out[:, c] = np.ravel_multi_index(np.clip(base + np.array(corner), 0, shape - 1).T, grid.shape)
    return out


def _trilinear(grid: Grid, points: np.ndarray, solid: np.ndarray, ghost: np.ndarray,
               ghost_ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear stencils (n, 8) flat cells and weights of points, using fluid and ghost cells only.

    Weights of solid non-ghost cells are dropped and the rest renormalised; a stencil with no usable
    cell (a thin part) falls back to the mean of the ghost cell's fluid face-neighbours.
    """
    shape = np.asarray(grid.shape)
    f = grid.fractional_index(points)
    frac = f - np.floor(f)
    n = len(points)
    weights = np.zeros((n, 8))
    cells = _corners(grid, points)
    solid_flat, ghost_flat = solid.reshape(-1), ghost.reshape(-1)
    for c, corner in enumerate(np.ndindex(2, 2, 2)):
        w = np.ones(n)
        for a in range(3):
            w = w * (frac[:, a] if corner[a] else 1.0 - frac[:, a])
        usable = ~solid_flat[cells[:, c]] | ghost_flat[cells[:, c]]
        weights[:, c] = np.where(usable, w, 0.0)
    lost = weights.sum(axis=1) < 1e-3
    if np.any(lost):
        log.debug("%d image points fall back to neighbour averages", int(lost.sum()))
        for r in np.flatnonzero(lost):
            nbs = np.clip(ghost_ijk[r] + _NEIGHBOURS, 0, shape - 1)
            nb_flat = np.ravel_multi_index(nbs.T, grid.shape)
            fluid = nb_flat[~solid_flat[nb_flat]]
            weights[r] = 0.0
            cells[r, :len(fluid)] = fluid
            weights[r, :len(fluid)] = 1.0 / len(fluid)
    weights /= weights.sum(axis=1, keepdims=True)
    return cells, weights
