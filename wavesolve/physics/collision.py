"""Collision shapes of concave bodies: convex parts of the mesh (CoACD), cached.

PyBullet collides a moving mesh as one convex hull, so a bowl would catch nothing falling into it.
With ``collision = "parts"`` a body's mesh, in its principal frame, is split into convex parts by
CoACD (Wei et al., "Approximate convex decomposition for 3D meshes with collision-aware concavity
and tree search", SIGGRAPH 2022), written as one OBJ file with an object per part, which PyBullet
loads as a compound of their hulls. The split takes seconds, so the file is kept in the cache
(``fem.cache_root()``/collision), named by the SHA-256 of the principal-frame mesh, the settings
and CoACD's version.

Fidelity: CoACD's concavity threshold 0.02 leaves the parts' hulls at most 1.1 mm inside the
cavity of the showcase bowl (12 cm across, 6 mm wall; 72 parts, 11 s on the 2-core VM), where the
V-HACD built into PyBullet left 3.4–4.7 mm (thirty-fourth session, bench/RESULTS.md).
"""
from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import trimesh

from ..fem import cache_root
from ..files import atomic_path

#: CoACD settings: concavity threshold (of the mesh's size) and the random seed of its tree search.
COACD_SETTINGS = {"threshold": 0.02, "seed": 1}
INSTALL_HINT = 'collision = "parts" needs CoACD: pip install "wavesolve[physics]"'


def principal_mesh(vertices: np.ndarray, faces: np.ndarray, center: np.ndarray,
                   principal: np.ndarray) -> trimesh.Trimesh:
    """The mesh in the principal frame: vertices Pᵀ(v − c) (m)."""
    return trimesh.Trimesh((np.asarray(vertices, dtype=np.float64) - center) @ principal, np.asarray(faces),
                           process=False)


def convex_parts(mesh: trimesh.Trimesh) -> list[tuple[np.ndarray, np.ndarray]]:
    """Convex parts of a closed mesh: (vertices (n, 3) m, triangles (k, 3)) per part."""
    try:
        import coacd
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(mesh.vertices, dtype=np.float64),
                                       np.asarray(mesh.faces, dtype=np.int64)), **COACD_SETTINGS)
    return [(np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)) for v, f in parts]


def convex_parts_file(mesh: trimesh.Trimesh) -> Path:
    """An OBJ file of :func:`convex_parts` of ``mesh`` (an object per part), computed once and cached."""
    key = hashlib.sha256()
    key.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    key.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    key.update(json.dumps({**COACD_SETTINGS, "coacd": _coacd_version()}, sort_keys=True).encode())
    folder = cache_root() / "collision"
    path = folder / f"{key.hexdigest()[:32]}.obj"
    if path.is_file():
        return path
    lines, base = [], 1
    for k, (v, f) in enumerate(convex_parts(mesh)):
        lines.append(f"o part{k}")
        lines.extend(f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in v)
        lines.extend(f"f {a + base} {b + base} {c + base}" for a, b, c in f)
        base += len(v)
    with atomic_path(path) as tmp:      # another process may write the same file
        tmp.write_text("\n".join(lines) + "\n")
    return path


def part_vertices(path: Path) -> list[np.ndarray]:
    """The vertices (n, 3) of each part in a file written by :func:`convex_parts_file`."""
    parts: list[list[list[float]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("o "):
            parts.append([])
        elif line.startswith("v "):
            parts[-1].append([float(x) for x in line.split()[1:4]])
    return [np.array(p) for p in parts]


def _coacd_version() -> str:
    try:
        return version("coacd")
    except Exception:               # not installed: convex_parts says how to install it
        return "none"
