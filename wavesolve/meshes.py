"""Object geometry: meshes from files or primitives, poses, and signed-distance queries.

Signed distance is positive in the air and negative inside the object; normals point out of the
body into the air. Distance queries use libigl's AABB tree with winding-number signs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import igl
import numpy as np
import trimesh
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from .errors import SceneError

log = logging.getLogger("wavesolve")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Icosphere(_Strict):
    """A geodesic sphere of ``radius`` (m); ``subdivisions`` refines it (4 → 5120 triangles)."""

    primitive: Literal["icosphere"]
    radius: PositiveFloat
    subdivisions: int = Field(default=4, ge=0, le=7)


class Box(_Strict):
    """An axis-aligned box (object frame) of edge lengths ``size`` (m), centred at the origin."""

    primitive: Literal["box"]
    size: list[PositiveFloat] = Field(min_length=3, max_length=3)


class Cylinder(_Strict):
    """A cylinder along the object's z axis, centred at the origin."""

    primitive: Literal["cylinder"]
    radius: PositiveFloat
    height: PositiveFloat
    sections: PositiveInt = 48


PRIMITIVES: dict[str, type[_Strict]] = {"icosphere": Icosphere, "box": Box, "cylinder": Cylinder}


def primitive_mesh(spec: Icosphere | Box | Cylinder) -> trimesh.Trimesh:
    """Triangle mesh (object frame, metres) of a validated primitive."""
    if isinstance(spec, Icosphere):
        return trimesh.creation.icosphere(subdivisions=spec.subdivisions, radius=spec.radius)
    if isinstance(spec, Box):
        return trimesh.creation.box(extents=spec.size)
    return trimesh.creation.cylinder(radius=spec.radius, height=spec.height, sections=spec.sections)


def load_mesh_file(path: Path, scale: float = 1.0) -> trimesh.Trimesh:
    """Read any mesh format trimesh understands; scenes are flattened into one mesh.

    Raises ValueError with a reason if the file holds no triangles.
    """
    loaded = trimesh.load(str(path), force="mesh")
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"'{path}' holds no triangles")
    if scale != 1.0:
        loaded.apply_scale(scale)
    return loaded


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion (w, x, y, z); the quaternion is normalised."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


@dataclass
class Geometry:
    """A rigid object's mesh in its own frame and its rest pose in the world.

    Attributes:
        mesh: triangle mesh in the object frame (m).
        position: (3,) rest position of the object-frame origin in the world (m).
        rotation: (3, 3) rest rotation, object frame → world.
    Queries taking a ``state`` use that pose (a RigidState) instead of the rest pose.
    """

    mesh: trimesh.Trimesh
    position: np.ndarray
    rotation: np.ndarray

    def __post_init__(self) -> None:
        self.set_vertices(np.asarray(self.mesh.vertices, dtype=np.float64))

    def set_vertices(self, vertices: np.ndarray) -> None:
        """Replace the object-frame vertex positions (deforming meshes); faces stay."""
        self._vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self._faces = np.ascontiguousarray(self.mesh.faces, dtype=np.int64)
        self._tree = None
        self._candidates = None
        self._normals = None
        self._vector_areas: np.ndarray | None = None
        self._volume: float | None = None
        self._neighbours: np.ndarray | None = None
        self._bounds_cache: tuple[bytes, np.ndarray] | None = None

    @property
    def vertices(self) -> np.ndarray:
        return self._vertices

    def _pose(self, state=None) -> tuple[np.ndarray, np.ndarray]:
        return (self.position, self.rotation) if state is None else (state.position, state.rotation)

    def to_local(self, points: np.ndarray, state=None) -> np.ndarray:
        """World points (n, 3) → object frame (n, 3)."""
        pos, rot = self._pose(state)
        return (np.asarray(points) - pos) @ rot

    def to_world(self, points: np.ndarray, state=None) -> np.ndarray:
        """Object-frame points (n, 3) → world (n, 3)."""
        pos, rot = self._pose(state)
        return np.asarray(points) @ rot.T + pos

    def world_bounds(self, state=None) -> np.ndarray:
        """(2, 3) axis-aligned bounds of the posed mesh in the world (m).

        The last pose's bounds are kept: a step asks for them many times.
        """
        pos, rot = self._pose(state)
        key = np.asarray(pos, dtype=np.float64).tobytes() + np.asarray(rot, dtype=np.float64).tobytes()
        if self._bounds_cache is None or self._bounds_cache[0] != key:
            from .geometry_kernels import posed_bounds     # compiled: to_world, min, max in one pass

            self._bounds_cache = (key, posed_bounds(self._vertices, np.ascontiguousarray(rot, dtype=np.float64),
                                                    np.asarray(pos, dtype=np.float64)))
        return self._bounds_cache[1].copy()

    def signed_distance(self, points: np.ndarray, state=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distance of world points to the surface (exact, winding-number sign).

        Args:
            points: (n, 3) world positions (m).
        Returns:
            distance (n,) in m, positive in air; triangle (n,) index of the closest triangle;
            closest (n, 3) closest surface points in the object frame.
        """
        return self.signed_distance_local(np.ascontiguousarray(self.to_local(points, state), dtype=np.float64))

    def signed_distance_local(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`signed_distance`, for points (n, 3) already in the object frame."""
        local = np.ascontiguousarray(local, dtype=np.float64)
        if len(local) == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
        dist, tri, closest, _ = igl.signed_distance(
            local, self._vertices, self._faces, sign_type=igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
        )
        # the fast-winding-number mode approximates |distance| (errors ~1e-5 m seen); the closest
        # point is exact, so take the magnitude from it and only the sign from the winding number
        dist = np.copysign(np.linalg.norm(closest - local, axis=1), dist)
        return dist, tri, closest

    def approximate_signed_distance_local(self, local: np.ndarray, band: float = np.inf) -> np.ndarray:
        """Fast signed distance (n,) for classifying a deforming mesh every step: the sign from
        the fast winding number (exact inside/outside), the magnitude from the nearest vertex (an
        upper bound of the distance, used only to pick the nearest object; ±inf beyond ``band``)."""
        local = np.ascontiguousarray(local, dtype=np.float64)
        if len(local) == 0:
            return np.zeros(0)
        inside = igl.fast_winding_number(self._vertices, self._faces, local) > 0.5
        dist, _ = cKDTree(self._vertices).query(local, distance_upper_bound=band)
        return np.where(inside, -dist, dist)

    def use_candidate_lattice(self, lattice: SDFLattice, band: float) -> None:
        """Answer :meth:`closest_local` near the surface from per-node triangle lists on the nodes of
        ``lattice`` (this mesh's SDF lattice) within ``band`` of the surface (exact; see
        ``geometry_kernels.CandidateLattice``). Dropped when the vertices change."""
        from .geometry_kernels import CandidateLattice

        lists = CandidateLattice(self._vertices, self._faces, lattice.values, lattice.origin, lattice.spacing, band)
        if not lists.fits:
            log.info("closest points of a %d-triangle mesh: candidate lists would exceed their memory budget; "
                     "using the AABB tree", len(self._faces))
        self._candidates = lists if lists.fits else None

    def closest_local(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unsigned distance (n,), closest triangle (n,) and closest point (n, 3), object frame.

        Exact. Points near the surface of a mesh with a candidate lattice (:meth:`use_candidate_lattice`)
        search their node's triangle list (compiled, ≈ 0.2 µs a point); the others use the AABB tree
        (:meth:`closest_local_aabb`, ≈ 1–2 µs a point).
        """
        local = np.ascontiguousarray(local, dtype=np.float64)
        if self._candidates is None or len(local) == 0:
            return self.closest_local_aabb(local)
        sq, tri, closest, found = self._candidates.query(local)
        if not found.all():
            miss = np.flatnonzero(~found)
            d_m, tri[miss], closest[miss] = self.closest_local_aabb(local[miss])
            sq[miss] = d_m * d_m
        return np.sqrt(sq), tri, closest

    def closest_local_aabb(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`closest_local`, always from libigl's AABB tree (built once per vertex set)."""
        local = np.ascontiguousarray(local, dtype=np.float64)
        if len(local) == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
        if self._tree is None:
            self._tree = igl.AABB()
            self._tree.init(self._vertices, self._faces)
        sq, tri, closest = self._tree.squared_distance(self._vertices, self._faces, local)
        return np.sqrt(sq), tri, closest

    def triangles_under(self, local: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Triangle (n,) under each object-frame point (n, 3) near the surface: the one its projection
        falls in, found by walking across edges from a triangle ``start`` (n,) nearby
        (geometry_kernels.walk_triangles); where the walk cannot settle (a boundary edge, a fold), the
        triangle it met that the point lies least outside of."""
        from .geometry_kernels import walk_triangles

        if self._neighbours is None:
            self._neighbours = face_neighbours(self._faces, len(self._vertices))
        return walk_triangles(np.ascontiguousarray(local, dtype=np.float64), np.asarray(start, dtype=np.int64),
                              self._vertices, self._faces, self._neighbours)

    def face_normals_local(self, triangles: np.ndarray) -> np.ndarray:
        """Outward unit normals (n, 3) of the given triangles, object frame."""
        if self._normals is None:
            n = self.vector_areas()
            self._normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
        return self._normals[triangles]

    def vector_areas(self) -> np.ndarray:
        """Each triangle's area times its outward unit normal (F, 3) m², object frame, of the
        current vertices."""
        if self._vector_areas is None:
            tri = self._vertices[self._faces]
            self._vector_areas = 0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        return self._vector_areas

    def volume(self) -> float:
        """Enclosed volume (m³) of the current vertices (closed mesh, outward normals):
        ∮ x·n dS / 3, each triangle adding its vector area · its centroid."""
        if self._volume is None:
            centroid = self._vertices[self._faces].mean(axis=1)
            self._volume = float(np.einsum("fd,fd->", self.vector_areas(), centroid)) / 3.0
        return self._volume


def face_neighbours(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """(F, 3) the face across the edge opposite each corner of each face (faces (F, 3) vertex
    indices), −1 on a boundary edge; on an edge shared by more than two faces, one of the others."""
    faces = np.asarray(faces, dtype=np.int64)
    a = faces[:, [1, 2, 0]]                     # corner k's opposite edge: (faces[k+1], faces[k+2])
    b = faces[:, [2, 0, 1]]
    key = (np.minimum(a, b) * vertex_count + np.maximum(a, b)).ravel()     # (3F,) one per face edge
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    out = np.full(len(key), -1, dtype=np.int64)
    same_next = ordered[1:] == ordered[:-1]
    first, second = order[:-1][same_next], order[1:][same_next]
    out[first] = second // 3
    out[second] = first // 3
    return out.reshape(-1, 3)


class SDFLattice:
    """Signed distance sampled once on a regular lattice in the object frame, read trilinearly.

    Used to classify cells of a moving rigid object every step without re-voxelising: the cell
    centres are transformed into the object frame and the lattice is interpolated there. Points
    outside the lattice read as air (+inf).
    """

    def __init__(self, geometry: Geometry, spacing: float, margin: float) -> None:
        lo = geometry.vertices.min(axis=0) - margin
        hi = geometry.vertices.max(axis=0) + margin
        self.shape = np.ceil((hi - lo) / spacing).astype(int) + 1
        self.origin, self.spacing = lo, spacing
        axes = [lo[a] + spacing * np.arange(self.shape[a]) for a in range(3)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        self.values = geometry.signed_distance_local(pts)[0].reshape(tuple(self.shape))

    def __call__(self, local: np.ndarray) -> np.ndarray:
        """Interpolated signed distance (n,) at object-frame points (n, 3) (m; +inf outside)."""
        f = (np.asarray(local) - self.origin) / self.spacing
        inside = np.all((f >= 0) & (f <= self.shape - 1), axis=1)
        out = np.full(len(f), np.inf)
        out[inside] = map_coordinates(self.values, f[inside].T, order=1, mode="nearest", prefilter=False)
        return out

    def at_cells(self, flat: np.ndarray, shape: tuple[int, int, int], cell_origin: np.ndarray, h: float,
                 state) -> np.ndarray:
        """As calling the lattice at the object-frame positions of the centres of cells ``flat``
        (flat indices into a box of ``shape`` whose first cell is centred at ``cell_origin``, spacing
        ``h``) for the pose ``state``; compiled (``geometry_kernels.lattice_distance_at_cells``)."""
        from .geometry_kernels import lattice_distance_at_cells

        return lattice_distance_at_cells(
            np.ascontiguousarray(flat, dtype=np.int64), np.asarray(shape, dtype=np.int64),
            np.asarray(cell_origin, dtype=np.float64), float(h), np.ascontiguousarray(state.rotation, dtype=np.float64),
            np.asarray(state.position, dtype=np.float64), self.values, self.origin, float(self.spacing))

    def refresh_band(self, cached: np.ndarray, threshold: float, shape: tuple[int, int, int],
                     cell_origin: np.ndarray, h: float, state) -> np.ndarray:
        """``cached`` (signed distances of the cells of a box, any shape) with the cells where
        |cached| < ``threshold`` read again (:meth:`at_cells`) for the pose ``state``; a new array."""
        from .geometry_kernels import lattice_refresh_band

        return lattice_refresh_band(
            np.ascontiguousarray(cached, dtype=np.float64).reshape(-1), float(threshold),
            np.asarray(shape, dtype=np.int64), np.asarray(cell_origin, dtype=np.float64), float(h),
            np.ascontiguousarray(state.rotation, dtype=np.float64), np.asarray(state.position, dtype=np.float64),
            self.values, self.origin, float(self.spacing)).reshape(cached.shape)



def mesh_for_key(scene_file: str, key: str, value: str | dict, base: Path, scale: float,
                 missing_fix: str) -> tuple[trimesh.Trimesh, Any]:
    """The mesh that the key ``key`` (e.g. ``objects[0].mesh``) gives: a file path relative to ``base``
    (:func:`load_mesh_file`) or a primitive table (``{ primitive = "box", size = [...] }``), scaled.

    Returns (mesh, primitive model or None for a file). SceneError at ``key`` for a missing or
    unreadable file, an unknown primitive (with a did-you-mean) or bad primitive keys.
    """
    from .validation import did_you_mean, read_named_file, validate_model

    if isinstance(value, str):
        mesh = read_named_file(scene_file, key, base / value, "mesh file", lambda p: load_mesh_file(p, scale),
                               "use a format trimesh reads (obj, stl, ply, off, glb)", missing_fix,
                               errors=(Exception,))   # trimesh raises many types for unreadable files
        return mesh, None
    name = value.get("primitive")
    if name not in PRIMITIVES:
        guess = did_you_mean(str(name), PRIMITIVES) if name is not None else None
        raise SceneError(scene_file, f"{key}.primitive",
                         "missing primitive name" if name is None else f"unknown primitive '{name}'",
                         f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(PRIMITIVES))
    spec = validate_model(PRIMITIVES[name], value, scene_file, (key,))
    mesh = primitive_mesh(spec)
    if scale != 1.0:
        mesh.apply_scale(scale)
    return mesh, spec
