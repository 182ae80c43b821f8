"""Object geometry: meshes from files or primitives, poses, and signed-distance queries.

Signed distance is positive in the air and negative inside the object; normals point out of the
body into the air. Distance queries use libigl's AABB tree with winding-number signs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import igl
import numpy as np
import trimesh
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt


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
    """A rigid object's mesh in its own frame and its world pose.

    Attributes:
        mesh: triangle mesh in the object frame (m).
        position: (3,) world position of the object-frame origin (m).
        rotation: (3, 3) rotation from object frame to world frame.
    """

    mesh: trimesh.Trimesh
    position: np.ndarray
    rotation: np.ndarray

    def __post_init__(self) -> None:
        self._vertices = np.ascontiguousarray(self.mesh.vertices, dtype=np.float64)
        self._faces = np.ascontiguousarray(self.mesh.faces, dtype=np.int64)

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """World points (n, 3) → object frame (n, 3)."""
        return (np.asarray(points) - self.position) @ self.rotation

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Object-frame points (n, 3) → world (n, 3)."""
        return np.asarray(points) @ self.rotation.T + self.position

    def world_bounds(self) -> np.ndarray:
        """(2, 3) axis-aligned bounds of the posed mesh in the world (m)."""
        world = self.to_world(self._vertices)
        return np.stack([world.min(axis=0), world.max(axis=0)])

    def signed_distance(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distance of world points to the surface.

        Args:
            points: (n, 3) world positions (m).
        Returns:
            distance (n,) in m, positive in air; triangle (n,) index of the closest triangle;
            closest (n, 3) closest surface points in the object frame.
        """
        local = np.ascontiguousarray(self.to_local(points), dtype=np.float64)
        if len(local) == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
        dist, tri, closest, _ = igl.signed_distance(
            local, self._vertices, self._faces, sign_type=igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
        )
        # the fast-winding-number mode approximates |distance| (errors ~1e-5 m seen); the closest
        # point is exact, so take the magnitude from it and only the sign from the winding number
        dist = np.copysign(np.linalg.norm(closest - local, axis=1), dist)
        return dist, tri, closest

    def face_normals_local(self, triangles: np.ndarray) -> np.ndarray:
        """Outward unit normals (n, 3) of the given triangles, object frame."""
        return np.asarray(self.mesh.face_normals)[triangles]
