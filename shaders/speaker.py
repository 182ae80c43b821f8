"""``speaker`` shader: a signal (a WAV, or any signal table) drives a region of the surface.

    aₙ(x, t) = s(t)            on the region (pattern "normal": the region moves along its normal,
                                like a loudspeaker cone or a mouth), or
    aₙ(x, t) = s(t)·(d·n)      (pattern "piston": the region moves rigidly along d, object frame),

and 0 elsewhere; s is an acceleration (m/s²). The region is chosen in the object frame by one of
``vertices`` (faces whose three vertices are all listed), ``faces`` (triangle indices), or
``box = [[x0, y0, z0], [x1, y1, z1]]`` (boundary points inside the box). WAV signals are
high-passed (``highpass`` Hz, 2nd-order Butterworth, zero phase; 0 = off) so that the velocity and
displacement of the membrane stay bounded (PHYSICS.md). Its net volume acceleration is
Q̇ = s(t)·S, S = ∫ dS over the region ("normal") or d·∫ n dS ("piston"), exact on the mesh: a box
region's triangles are cut at the box's planes (``area``); the boundary holds the object's
net face flux at it (``wavesolve.flux_balance``)::

    [[objects.shaders]]
    type = "speaker"
    signal = { file = "chirp.wav", gain = 50.0 }
    region = { box = [[0.0, -0.03, -0.03], [0.02, 0.03, 0.03]] }
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from trimesh.intersections import slice_faces_plane

from wavesolve.errors import SceneError
from wavesolve.shading import BoundaryPoints, Shader, ShaderConfig, ShaderContext
from wavesolve.signals import SampledSignal, parse_signal

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]


class Region(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    vertices: list[int] | None = None
    faces: list[int] | None = None
    box: Annotated[list[Vec3], Field(min_length=2, max_length=2)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Region":
        given = [k for k in ("vertices", "faces", "box") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of vertices, faces, box")
        return self


class SpeakerShader(Shader):
    """aₙ = s(t) (or s(t)·d·n) on a region of the surface, 0 elsewhere."""

    knows_volume = True   # with the object's mesh (``area``); a speaker built without one does not

    class Config(ShaderConfig):
        type: Literal["speaker"]
        signal: dict[str, Any]
        region: Region
        pattern: Literal["normal", "piston"] = "normal"
        direction: Vec3 | None = None
        highpass: float = Field(default=20.0, ge=0.0, description="Hz, for WAV signals; 0 = off")

    def __init__(self, config: Config, context: ShaderContext) -> None:
        super().__init__(config, context)
        file, key = context.scene_file, context.key
        self.signal = parse_signal(config.signal, file, f"{key}.signal", context.scene_dir)
        if isinstance(self.signal, SampledSignal) and config.highpass > 0:
            self.signal.highpass(config.highpass)
        mesh = context.mesh
        n_faces = len(mesh.faces) if mesh is not None else None
        region = config.region
        self._faces = None
        # a box region's low and high corners, (2, 3) m, object frame (given in either order)
        self._box = np.sort(np.asarray(region.box, dtype=np.float64), axis=0) if region.box is not None else None
        if region.faces is not None or region.vertices is not None:
            if mesh is None:
                raise SceneError(file, f"{key}.region", "a vertex or face region needs the object's mesh",
                                 "use the shader in a scene file, or a box region")
            mask = np.zeros(n_faces, dtype=bool)
            if region.faces is not None:
                idx = np.asarray(region.faces, dtype=np.int64)
                if idx.size and (idx.min() < 0 or idx.max() >= n_faces):
                    raise SceneError(file, f"{key}.region.faces", f"face index out of range (mesh has {n_faces})",
                                     f"use indices 0 … {n_faces - 1}")
                mask[idx] = True
            else:
                n_vert = len(mesh.vertices)
                idx = np.asarray(region.vertices, dtype=np.int64)
                if idx.size and (idx.min() < 0 or idx.max() >= n_vert):
                    raise SceneError(file, f"{key}.region.vertices", f"vertex index out of range (mesh has "
                                     f"{n_vert})", f"use indices 0 … {n_vert - 1}")
                chosen = np.zeros(n_vert, dtype=bool)
                chosen[idx] = True
                mask = chosen[np.asarray(mesh.faces)].all(axis=1)
            if not mask.any():
                raise SceneError(file, f"{key}.region", "the region selects no triangle",
                                 "list the vertices of whole faces, or face indices")
            self._faces = mask
        if config.pattern == "piston":
            d = np.asarray(config.direction if config.direction is not None else [0.0, 0.0, 0.0], float)
            if np.linalg.norm(d) == 0:
                raise SceneError(file, f"{key}.direction", "pattern 'piston' needs a non-zero direction",
                                 "add direction = [x, y, z] (object frame)")
            self.direction = d / np.linalg.norm(d)
        elif config.direction is not None:
            raise SceneError(file, f"{key}.direction", "direction is only used by pattern 'piston'",
                             "remove it, or set pattern = \"piston\"")
        self.knows_volume = mesh is not None
        self.area = None
        if mesh is not None:
            part = self._region_part(mesh)
            if part is None:
                raise SceneError(file, f"{key}.region.box", "the box holds no part of the object's surface",
                                 "give a box (object frame, m) that crosses the mesh, whose bounds are "
                                 f"{np.round(mesh.bounds, 4).tolist()}")
            self.area = self._area(*part)

    def _region_part(self, mesh: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """The region's part of ``mesh`` (object frame) as (vertices (V, 3) m, faces (F, 3)), a box
        region's triangles cut exactly at the box's six planes; None where a box holds none of it."""
        vertices, faces = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
        if self._faces is not None:
            return vertices, faces[self._faces]
        lo, hi = self._box
        for axis in range(3):
            for sign, origin in ((1.0, lo), (-1.0, hi)):
                normal = np.zeros(3)
                normal[axis] = sign
                vertices, faces = slice_faces_plane(vertices, faces, normal, origin)[:2]
                if faces is None or len(faces) == 0:
                    return None
        return vertices, faces

    def _area(self, vertices: np.ndarray, faces: np.ndarray) -> float:
        """S (m²) of the region's triangles: their area ("normal"), or d·∫ n dS ("piston"), so that
        Q̇ = ∫ aₙ dS = s(t)·S."""
        tri = vertices[faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        if self.config.pattern == "normal":
            return float(0.5 * np.linalg.norm(cross, axis=1).sum())
        return float(0.5 * cross.sum(axis=0) @ self.direction)

    def region_mask(self, points: BoundaryPoints) -> np.ndarray:
        """Which boundary points lie in the region (n,) bool."""
        if self._faces is not None:
            return self._faces[points.triangle]
        lo, hi = self._box
        p = points.position_local
        return np.all((p >= lo) & (p <= hi), axis=1)

    def normal_acceleration(self, t: float, points: BoundaryPoints) -> np.ndarray:
        s = float(self.signal(t))
        if s == 0.0 or len(points) == 0:
            return np.zeros(len(points))
        shape = np.ones(len(points)) if self.config.pattern == "normal" else points.normal_local @ self.direction
        return np.where(self.region_mask(points), s * shape, 0.0)

    def normal_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        s = np.asarray(self.signal(np.asarray(times, dtype=np.float64)), dtype=np.float64).reshape(-1, 1)
        if len(points) == 0:
            return np.zeros((len(s), 0))
        shape = np.ones(len(points)) if self.config.pattern == "normal" else points.normal_local @ self.direction
        return s * np.where(self.region_mask(points), shape, 0.0)[None, :]

    def volume_acceleration_block(self, times: np.ndarray, points: BoundaryPoints) -> np.ndarray:
        """Q̇ = s(t)·S (m³/s²), (K,), at the times (K,) s (S: ``area``)."""
        if self.area is None:
            raise NotImplementedError("a speaker built without the object's mesh does not know its region's area")
        return self.area * np.asarray(self.signal(np.asarray(times, dtype=np.float64)), dtype=np.float64).reshape(-1)

    def active_intervals(self, t0: float, t1: float) -> list[tuple[float, float]] | None:
        spans = getattr(self.signal, "active_intervals", None)
        return spans(t0, t1) if spans is not None else None
