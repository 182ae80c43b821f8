"""Modal analysis: linear elasticity on voxel hexahedra, the sparse generalised eigenproblem.

The object's interior is filled with a regular grid of 27-node (triquadratic) hexahedra: an
element is kept where its centre is inside the surface mesh (winding number). Linear elements
lock in bending (frequencies far too high, PHYSICS.md); quadratic ones bend accurately with two
elements through a thickness. Every element of the grid has the same size, so its stiffness and
mass matrices (81 × 81, 3-point Gauss rule per axis, exact for these polynomials) are computed
once and scattered. K u = ω² M u is solved with ``scipy.sparse.linalg.eigsh`` in shift-invert
mode about a small negative shift (K is singular: six rigid modes), the near-zero rigid modes are
dropped, the shapes mass-normalised (UᵀMU = I) and interpolated at the surface mesh's vertices
with the element's own shape functions. Damping ratios follow the material's Rayleigh α, β.

The voxel boundary is a staircase of the true surface unless the mesh is a box aligned with the
grid; pick ``resolution`` a few times finer than the smallest feature (thickness) that matters.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import igl
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from .materials import Material
from .modes import ModeSet, mesh_hash, settings_json

log = logging.getLogger("wavesolve")

#: modes below this frequency (Hz) count as rigid-body modes and are dropped
RIGID_MODE_HZ = 0.5
#: default number of elements when no resolution is given
DEFAULT_ELEMENTS = 3000
#: refuse problems larger than this many degrees of freedom (memory of the sparse LU on a laptop)
MAX_DOFS = 150_000


def _lagrange(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-D quadratic Lagrange functions on nodes −1, 0, 1 at x (n,), and derivatives: (3, n) each."""
    x = np.asarray(x, dtype=np.float64)
    n = np.stack([0.5 * x * (x - 1.0), 1.0 - x * x, 0.5 * x * (x + 1.0)])
    d = np.stack([x - 0.5, -2.0 * x, x + 0.5])
    return n, d


_LOCAL = np.array([(a, b, c) for a in range(3) for b in range(3) for c in range(3)])  # node (a,b,c) order


def shape_functions(xi: np.ndarray) -> np.ndarray:
    """Values (n, 27) of the triquadratic functions at local points xi (n, 3) in [−1, 1]³."""
    nx, _ = _lagrange(xi[:, 0])
    ny, _ = _lagrange(xi[:, 1])
    nz, _ = _lagrange(xi[:, 2])
    return nx[_LOCAL[:, 0]].T * ny[_LOCAL[:, 1]].T * nz[_LOCAL[:, 2]].T


def element_matrices(size: np.ndarray, material: Material) -> tuple[np.ndarray, np.ndarray]:
    """Stiffness and consistent mass (81 × 81, dofs ordered node-major: 3·node + axis) of a
    triquadratic brick of edge lengths ``size`` (3,)."""
    g, w = np.polynomial.legendre.leggauss(3)
    pts = np.array([(a, b, c) for a in g for b in g for c in g])
    wts = np.array([a * b * c for a in w for b in w for c in w])
    half = np.asarray(size, dtype=np.float64) / 2.0
    det = float(np.prod(half))
    lam, mu = material.lame
    D = np.zeros((6, 6))
    D[:3, :3] = lam
    D[np.arange(3), np.arange(3)] += 2 * mu
    D[3:, 3:] = mu * np.eye(3)
    K = np.zeros((81, 81))
    M = np.zeros((81, 81))
    for p, wt in zip(pts, wts):
        n1 = [_lagrange(np.array([p[a]])) for a in range(3)]
        vals = [n1[a][0][:, 0] for a in range(3)]
        ders = [n1[a][1][:, 0] for a in range(3)]
        N = vals[0][_LOCAL[:, 0]] * vals[1][_LOCAL[:, 1]] * vals[2][_LOCAL[:, 2]]
        dN = np.stack([ders[0][_LOCAL[:, 0]] * vals[1][_LOCAL[:, 1]] * vals[2][_LOCAL[:, 2]] / half[0],
                       vals[0][_LOCAL[:, 0]] * ders[1][_LOCAL[:, 1]] * vals[2][_LOCAL[:, 2]] / half[1],
                       vals[0][_LOCAL[:, 0]] * vals[1][_LOCAL[:, 1]] * ders[2][_LOCAL[:, 2]] / half[2]])
        B = np.zeros((6, 81))
        B[0, 0::3], B[1, 1::3], B[2, 2::3] = dN[0], dN[1], dN[2]
        B[3, 0::3], B[3, 1::3] = dN[1], dN[0]   # γ_xy
        B[4, 1::3], B[4, 2::3] = dN[2], dN[1]   # γ_yz
        B[5, 0::3], B[5, 2::3] = dN[2], dN[0]   # γ_xz
        K += wt * det * B.T @ D @ B
        Nm = np.outer(N, N) * material.density * wt * det
        for a in range(3):
            M[a::3, a::3] += Nm
    return K, M


@dataclass
class VoxelModel:
    """Filled elements of a regular grid over the mesh, and the assembled K, M."""

    origin: np.ndarray          # (3,) corner of the element grid (m)
    size: np.ndarray            # (3,) element edge lengths (m)
    counts: np.ndarray          # (3,) elements per axis
    elements: np.ndarray        # (E, 3) integer indices of the filled elements
    node_index: np.ndarray      # (E, 27) global node numbers of each element
    n_nodes: int
    node_xyz: np.ndarray        # (n_nodes, 3) node positions (m)
    K: sp.csr_matrix
    M: sp.csr_matrix


def build_model(mesh, material: Material, resolution: float) -> VoxelModel:
    """Voxelise ``mesh`` (object frame) with elements of about ``resolution`` metres and assemble."""
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    extent = hi - lo
    counts = np.maximum(1, np.round(extent / resolution).astype(int))
    size = extent / counts
    # refuse early (before voxelising) what would surely exceed MAX_DOFS: each element brings about
    # 8 nodes of its own (27 shared with neighbours), 24 dofs
    volume = abs(float(mesh.volume)) if mesh.is_volume else float(np.prod(extent))
    estimate = 24 * volume / float(np.prod(size))
    if estimate > 1.5 * MAX_DOFS:
        raise ValueError(f"about {estimate:.3g} degrees of freedom at resolution {resolution:g} m exceeds "
                         f"{MAX_DOFS}: use a coarser resolution")
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in counts], indexing="ij"), axis=-1).reshape(-1, 3)
    centres = lo + (ijk + 0.5) * size
    inside = igl.fast_winding_number(verts, faces, centres) > 0.5
    elements = ijk[inside]
    if len(elements) == 0:
        raise ValueError(f"no element of size {resolution:g} m lies inside the mesh: use a finer resolution")
    node_shape = 2 * counts + 1
    corner = 2 * elements  # node grid index of each element's first node
    grid_nodes = corner[:, None, :] + _LOCAL[None, :, :]
    flat = np.ravel_multi_index(tuple(grid_nodes.reshape(-1, 3).T), tuple(node_shape)).reshape(-1, 27)
    used, node_index = np.unique(flat, return_inverse=True)
    node_index = node_index.reshape(-1, 27)
    n_dofs = 3 * len(used)
    if n_dofs > MAX_DOFS:
        raise ValueError(f"{n_dofs} degrees of freedom at resolution {resolution:g} m exceeds {MAX_DOFS}: "
                         "use a coarser resolution")
    Ke, Me = element_matrices(size, material)
    dofs = (3 * node_index[:, :, None] + np.arange(3)).reshape(-1, 81)
    rows = np.repeat(dofs, 81, axis=1).ravel()
    cols = np.tile(dofs, (1, 81)).ravel()
    K = sp.csr_matrix((np.tile(Ke.ravel(), len(dofs)), (rows, cols)), shape=(n_dofs, n_dofs))
    M = sp.csr_matrix((np.tile(Me.ravel(), len(dofs)), (rows, cols)), shape=(n_dofs, n_dofs))
    node_xyz = lo + np.stack(np.unravel_index(used, tuple(node_shape)), axis=1) * (size / 2)
    return VoxelModel(lo, size, counts, elements, node_index, len(used), node_xyz, K, M)


def surface_shapes(model: VoxelModel, vectors: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Displacements (P, 3, M) at points (P, 3) from nodal mode vectors (3·nodes, M): the shape
    functions of the element holding each point (or, outside the voxels, the nearest element)."""
    cell = np.floor((points - model.origin) / model.size).astype(int)
    cell = np.clip(cell, 0, model.counts - 1)
    lookup = -np.ones(tuple(model.counts), dtype=np.int64)
    lookup[tuple(model.elements.T)] = np.arange(len(model.elements))
    elem = lookup[tuple(cell.T)]
    missing = elem < 0
    if missing.any():
        centres = model.origin + (model.elements + 0.5) * model.size
        _, nearest = cKDTree(centres).query(points[missing])
        elem[missing] = nearest
    centre = model.origin + (model.elements[elem] + 0.5) * model.size
    xi = 2.0 * (points - centre) / model.size
    N = shape_functions(xi)                             # (P, 27)
    nodes = model.node_index[elem]                      # (P, 27)
    u = vectors.reshape(model.n_nodes, 3, -1)[nodes]    # (P, 27, 3, M)
    return np.einsum("pk,pkdm->pdm", N, u)


def default_resolution(mesh) -> float:
    """Element size giving about DEFAULT_ELEMENTS elements, and at least two across the thinnest side."""
    extent = np.ptp(np.asarray(mesh.vertices), axis=0)
    volume = abs(float(mesh.volume)) if mesh.is_volume else float(np.prod(extent))
    return float(min((volume / DEFAULT_ELEMENTS) ** (1 / 3), extent.min() / 2))


def solve_modes(model: VoxelModel, max_frequency: float = 20000.0, count: int | None = None,
                rigid: int = 6, guess: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Elastic modes up to ``max_frequency`` (Hz) or the first ``count``: (frequencies (M,), vectors
    (dofs, M) mass-normalised). Rigid modes (below RIGID_MODE_HZ; ``rigid`` expected: 6 for one
    free body, 0 for a supported one) are dropped. ``model`` needs sparse ``K`` and ``M``.
    ``guess``: expected number of modes below ``max_frequency`` (saves eigensolver restarts)."""
    n = model.K.shape[0]
    # shift below zero: K − σM is positive definite although K is singular (rigid modes)
    sigma = -(2 * math.pi * 10.0) ** 2
    want = (count or guess or 24) + rigid
    while True:
        k = min(want, n - 2)
        vals, vecs = eigsh(model.K.tocsc(), k=k, M=model.M.tocsc(), sigma=sigma, which="LM")
        order = np.argsort(vals)
        vals, vecs = vals[order], vecs[:, order]
        freqs = np.sqrt(np.maximum(vals, 0.0)) / (2 * math.pi)
        elastic = freqs >= RIGID_MODE_HZ
        n_elastic = int(elastic.sum())
        done_count = count is not None and n_elastic >= count
        done_freq = count is None and (freqs[-1] > max_frequency or k >= n - 2)
        if done_count or done_freq or k >= n - 2:
            break
        want = 2 * want
    if int((~elastic).sum()) != rigid:
        log.warning("modal analysis found %d rigid-body modes (%d expected)", int((~elastic).sum()), rigid)
    freqs, vecs = freqs[elastic], vecs[:, elastic]
    keep = np.arange(len(freqs)) < count if count is not None else freqs <= max_frequency
    freqs, vecs = freqs[keep], vecs[:, keep]
    norms = np.sqrt(np.einsum("im,im->m", vecs, model.M @ vecs))
    return freqs, vecs / norms


def cache_root() -> Path:
    """Where computed results are kept: $WAVESOLVE_CACHE, else ~/.cache/wavesolve."""
    base = os.environ.get("WAVESOLVE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "wavesolve"


def cache_dir() -> Path:
    """Where computed modes are kept: ``cache_root()``/modes."""
    return cache_root() / "modes"


def modal_analysis(mesh, material: Material, resolution: float | None = None, max_frequency: float = 20000.0,
                   count: int | None = None, cache: bool = True) -> ModeSet:
    """Modes of a closed surface mesh (object frame, m) of ``material``, shapes on its vertices.

    Cached by the SHA-256 of the mesh, the material and the settings (see :func:`cache_dir`).
    """
    resolution = resolution or default_resolution(mesh)
    settings = settings_json(resolution=resolution, max_frequency=max_frequency, count=count, element="hex27")

    def compute() -> tuple[np.ndarray, np.ndarray, dict]:
        model = build_model(mesh, material, resolution)
        log.info("modal analysis: %d elements, %d dofs", len(model.elements), 3 * model.n_nodes)
        freqs, vecs = solve_modes(model, max_frequency, count)
        shapes = surface_shapes(model, vecs, np.asarray(mesh.vertices, dtype=np.float64))
        return freqs, shapes, {"elements": len(model.elements), "dofs": 3 * model.n_nodes}

    return cached_modes("", mesh, material, settings, compute, cache)


def cached_modes(prefix: str, mesh, material: Material, settings: str,
                 compute: Callable[[], tuple[np.ndarray, np.ndarray, dict]], cache: bool = True) -> ModeSet:
    """The modes of ``mesh`` from the cache, or ``compute()`` → (frequencies (M,) Hz, shapes (V, 3, M),
    extra file attributes), damped by ``material`` and cached.

    The cache file is ``cache_dir()/PREFIX<SHA-256 of mesh, material and settings>.h5``; an unreadable
    cache file is recomputed, a read-only cache only warned about.
    """
    from .version import __version__

    mhash = mesh_hash(mesh.vertices, mesh.faces)
    key = mesh_hash(np.frombuffer((mhash + material.model_dump_json() + settings).encode(), dtype=np.uint8),
                    np.zeros(0))
    path = cache_dir() / f"{prefix}{key}.h5"
    if cache and path.is_file():
        try:
            log.info("modes from cache %s", path)
            return ModeSet.load(path)
        except ValueError:
            pass
    if sys.stderr.isatty():      # a terminal shows what the wait is for, as the run's progress bar does
        kind = "shell" if prefix else "solid"
        print(f"wavesolve: computing modes ({kind} FEM; cached for later runs) ...", file=sys.stderr, flush=True)
    freqs, shapes, extra = compute()
    modes = ModeSet(freqs, material.damping_ratio(2 * math.pi * freqs), shapes, attrs={
        "material": material.model_dump_json(), "vertices_hash": mhash, "settings": settings,
        "wavesolve_version": __version__, **extra,
        "damping_convention": "C = alpha M + beta K; xi = (alpha/omega + beta omega)/2"})
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            modes.save(path)
        except OSError as exc:  # a read-only cache is not an error
            log.warning("could not cache modes in %s: %s", path, exc)
    return modes


