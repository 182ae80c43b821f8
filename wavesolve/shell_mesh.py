"""Mid-surface meshes of thin shells and the closed meshes the acoustic grid sees.

A shell thinner than a grid cell is invisible to the FDTD grid (no cell centre falls inside it), so
the scene's object must be a closed solid at least about one cell thick. :func:`thicken` extrudes a
mid-surface by ± t/2 along its vertex normals (plus side walls along open edges) into a closed
mesh; :func:`transfer_shapes` puts mid-surface mode shapes on any closed mesh around it by the
closest mid-surface point, so both faces (and the rim) move with the mid-surface. The acoustic
thickness is a grid matter only: the modes keep the physical thickness.
"""
from __future__ import annotations

from collections.abc import Callable

import igl
import numpy as np
import trimesh
from scipy.spatial import Delaunay


def disk_mesh(radius: float, rings: int, inner_radius: float = 0.0,
              height: Callable[[np.ndarray], np.ndarray] | None = None) -> trimesh.Trimesh:
    """A disk (or annulus) of ``radius`` (m) meshed with ``rings`` concentric rings of nearly
    equilateral triangles (ring k has 6k points), normals +z; ``height(r)`` lifts it to z(r) (m)."""
    pts = [np.zeros((1, 2))] if inner_radius <= 0 else []
    k0 = 1
    for k in range(k0, rings + 1):
        r = radius * k / rings
        if r < inner_radius - 1e-12:
            continue
        n = 6 * k
        a = 2 * np.pi * (np.arange(n) + 0.5 * (k % 2)) / n
        pts.append(r * np.stack([np.cos(a), np.sin(a)], axis=1))
    if inner_radius > 0:
        n = max(6, int(round(2 * np.pi * inner_radius / (radius / rings))))
        a = 2 * np.pi * np.arange(n) / n
        pts.append(inner_radius * np.stack([np.cos(a), np.sin(a)], axis=1))
    xy = np.concatenate(pts)
    faces = Delaunay(xy).simplices
    if inner_radius > 0:
        faces = faces[np.linalg.norm(xy[faces].mean(axis=1), axis=1) > inner_radius]
    d1, d2 = xy[faces[:, 1]] - xy[faces[:, 0]], xy[faces[:, 2]] - xy[faces[:, 0]]
    flip = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] < 0
    faces[flip] = faces[flip][:, ::-1]
    used = np.unique(faces)
    remap = np.full(len(xy), -1)
    remap[used] = np.arange(len(used))
    xy, faces = xy[used], remap[faces]
    z = np.zeros(len(xy)) if height is None else height(np.linalg.norm(xy, axis=1))
    return trimesh.Trimesh(np.column_stack([xy, z]), faces, process=False)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (B, 2) used by exactly one face, in that face's orientation."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return e[counts[inv.ravel()] == 1]


def thicken(mid: trimesh.Trimesh, thickness: float) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Closed mesh of a mid-surface extruded by ± thickness/2 (m) along its vertex normals.

    Returns the closed mesh (vertices: the +n side, then the −n side; outward normals) and, for
    each of its vertices, the index (2V,) of the mid-surface vertex it was made from.
    """
    v = np.asarray(mid.vertices, dtype=np.float64)
    f = np.asarray(mid.faces, dtype=np.int64)
    n = igl.per_vertex_normals(v, f)
    V = len(v)
    verts = np.concatenate([v + 0.5 * thickness * n, v - 0.5 * thickness * n])
    faces = [f, f[:, ::-1] + V]
    edges = boundary_edges(f)
    if len(edges):   # side walls: quad (a, b, b', a') along each open edge, outward
        a, b = edges[:, 0], edges[:, 1]
        faces += [np.stack([b, a, a + V], axis=1), np.stack([b, a + V, b + V], axis=1)]
    closed = trimesh.Trimesh(verts, np.concatenate(faces), process=False)
    if closed.volume < 0:
        closed.invert()
    return closed, np.concatenate([np.arange(V), np.arange(V)])


def transfer_shapes(mid: trimesh.Trimesh, shapes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mid-surface shapes (V, 3, M) at points (P, 3) by their closest mid-surface point
    (barycentric on its triangle): (P, 3, M)."""
    v = np.asarray(mid.vertices, dtype=np.float64)
    f = np.asarray(mid.faces, dtype=np.int64)
    _, tri, closest = igl.point_mesh_squared_distance(np.asarray(points, dtype=np.float64), v, f)
    bary = trimesh.triangles.points_to_barycentric(v[f[tri]], closest)
    bary = np.clip(bary, 0.0, 1.0)
    bary /= bary.sum(axis=1, keepdims=True)
    return np.einsum("pk,pkdm->pdm", bary, shapes[f[tri]])
