"""Thin-shell modal analysis on a mid-surface triangle mesh (flat-facet shell elements).

A shell of thickness h is modelled by its mid-surface, meshed with triangles; each triangle is a
flat facet carrying

- **membrane**: the constant-strain triangle (plane stress, stiffness E h/(1 − ν²));
- **bending**: the Discrete Kirchhoff Triangle (DKT; Batoz, Bathe & Ho, IJNME 15, 1980), with
  bending rigidity D = E h³/(12(1 − ν²)): thin-plate (Kirchhoff) theory, no shear locking;
- **drilling**: a penalty ½ γ ∫ (θz − ω)² dA (θz linear, integrated exactly) tying the in-plane rotation dof θz to the membrane's
  rotation ω = ½(∂v/∂x − ∂u/∂y) (Hughes & Brezzi 1989), γ = ``DRILLING_FACTOR`` · G h. It only
  removes the singular θz dof; rigid motions cost nothing, and flat-plate bending is independent of it.

Nodes carry six dofs (uₓ, u_y, u_z, rₓ, r_y, r_z: displacements in m, rotations in rad, right-hand
rotation vectors) in the object frame; each facet's 18 × 18 matrices are built in its own frame (x
along its first edge, z its normal) and rotated, so curved shells (cymbal, bell, can) couple membrane
and bending through their curvature. The mass is **lumped**: a third of ρ h A per node for each
translation and the rotary inertia ρ h³/12 · A/3 for each rotation (this keeps M positive definite;
its effect on Kirchhoff bending modes is of order (h/λ)²).

K u = ω² M u is solved like :mod:`wavesolve.fem` (``eigsh`` in shift-invert about a small negative
shift), the six rigid modes of a free shell are dropped, UᵀMU = I. The modes file keeps the
translational part of each mode on the mid-surface vertices (V, 3, M); see
:mod:`wavesolve.shell_mesh` for putting them on the closed (thickened) mesh the acoustic grid sees.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .fem import cached_modes, solve_modes
from .materials import Material
from .modes import ModeSet, settings_json

log = logging.getLogger("wavesolve")

#: drilling penalty γ as a fraction of G·h (N/m); small: it only regularises θz
DRILLING_FACTOR = 1e-3
#: refuse shell problems larger than this many degrees of freedom
MAX_SHELL_DOFS = 300_000

# Gauss points (area coordinates ξ, η) and weights (sum ½) exact for quadratics on the triangle
_GAUSS = np.array([[1 / 6, 1 / 6], [2 / 3, 1 / 6], [1 / 6, 2 / 3]])
_GAUSS_W = np.array([1 / 6, 1 / 6, 1 / 6])


def _quadratic_derivatives(xi: float, eta: float) -> np.ndarray:
    """d/dξ and d/dη (2, 6) of the six quadratic functions N1…N6 (corners 1-3, mid-sides 23, 31, 12)."""
    z = 1.0 - xi - eta
    dxi = np.array([-(4 * z - 1), 4 * xi - 1, 0.0, 4 * eta, -4 * eta, 4 * (z - xi)])
    deta = np.array([-(4 * z - 1), 0.0, 4 * eta - 1, 4 * xi, 4 * (z - eta), -4 * xi])
    return np.stack([dxi, deta])


def _dkt_coefficients(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient arrays Cx, Cy (E, 9, 6) with βx = Σ Cx[:, i, k] N_k Uᵢ, βy likewise.

    x, y (E, 3): local corner coordinates. U = (w, θx, θy) per corner; βx = −∂w/∂x, βy = −∂w/∂y
    are the normal's rotations (Batoz et al. 1980, sides 4 = 23, 5 = 31, 6 = 12).
    """
    E = x.shape[0]
    sides = [(1, 2), (2, 0), (0, 1)]       # k = 4, 5, 6 (0-based corners)
    xs = np.stack([x[:, i] - x[:, j] for i, j in sides], axis=1)   # x_ij (E, 3)
    ys = np.stack([y[:, i] - y[:, j] for i, j in sides], axis=1)
    l2 = xs ** 2 + ys ** 2
    a = -xs / l2
    b = 0.75 * xs * ys / l2
    c = (0.25 * xs ** 2 - 0.5 * ys ** 2) / l2
    d = -ys / l2
    e = (0.25 * ys ** 2 - 0.5 * xs ** 2) / l2
    Cx = np.zeros((E, 9, 6))
    Cy = np.zeros((E, 9, 6))
    # corner i (0..2) has the two sides through it: (side before, side after) in N4..N6 numbering
    # corner 1: sides 6 (12) and 5 (31); corner 2: sides 4 (23) and 6; corner 3: sides 5 and 4
    touching = [(5, 4), (3, 5), (4, 3)]   # (p, q) as N-indices (0-based: N4 = 3, N5 = 4, N6 = 5)
    for i, (p, q) in enumerate(touching):
        kp, kq = p - 3, q - 3
        r = 3 * i
        Cx[:, r, p] = 1.5 * a[:, kp]
        Cx[:, r, q] = -1.5 * a[:, kq]
        Cx[:, r + 1, p] = b[:, kp]
        Cx[:, r + 1, q] = b[:, kq]
        Cx[:, r + 2, i] = 1.0
        Cx[:, r + 2, p] = -c[:, kp]
        Cx[:, r + 2, q] = -c[:, kq]
        Cy[:, r, p] = 1.5 * d[:, kp]
        Cy[:, r, q] = -1.5 * d[:, kq]
        Cy[:, r + 1, i] = -1.0
        Cy[:, r + 1, p] = e[:, kp]
        Cy[:, r + 1, q] = e[:, kq]
        Cy[:, r + 2, p] = -b[:, kp]
        Cy[:, r + 2, q] = -b[:, kq]
    return Cx, Cy


def dkt_curvature_matrices(x: np.ndarray, y: np.ndarray, xi: float, eta: float) -> np.ndarray:
    """B (E, 3, 9): curvatures (βx,x, βy,y, βx,y + βy,x) at (ξ, η) from U = (w, θx, θy) × 3 corners."""
    Cx, Cy = _dkt_coefficients(x, y)
    dN = _quadratic_derivatives(xi, eta)                      # (2, 6)
    x21, x31 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    y21, y31 = y[:, 1] - y[:, 0], y[:, 2] - y[:, 0]
    two_a = x21 * y31 - x31 * y21
    hx = Cx @ dN.T                                            # (E, 9, 2): d/dξ, d/dη of βx
    hy = Cy @ dN.T
    ddx = lambda h: (y31[:, None] * h[..., 0] - y21[:, None] * h[..., 1]) / two_a[:, None]   # noqa: E731
    ddy = lambda h: (-x31[:, None] * h[..., 0] + x21[:, None] * h[..., 1]) / two_a[:, None]  # noqa: E731
    return np.stack([ddx(hx), ddy(hy), ddy(hx) + ddx(hy)], axis=1)


def _plane_stress(E: float, nu: float) -> np.ndarray:
    return E / (1 - nu * nu) * np.array([[1.0, nu, 0.0], [nu, 1.0, 0.0], [0.0, 0.0, (1 - nu) / 2]])


def facet_frames(p: np.ndarray) -> np.ndarray:
    """Rotation matrices (E, 3, 3) whose rows are each facet's local x (first edge), y, z (normal)."""
    e1 = p[:, 1] - p[:, 0]
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return np.stack([e1, np.cross(n, e1), n], axis=1)


def element_matrices(p: np.ndarray, material: Material, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """Stiffness (E, 18, 18) and lumped mass diagonal (E, 18) in the object frame.

    p (E, 3, 3): corner positions (m). Dofs per corner: uₓ, u_y, u_z, rₓ, r_y, r_z.
    """
    R = facet_frames(p)
    local = np.einsum("eij,ekj->eki", R, p - p[:, :1])        # (E, 3 corners, 3)
    x, y = local[..., 0], local[..., 1]
    area = 0.5 * (x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1])
    if np.any(area <= 0):
        raise ValueError(f"{int((area <= 0).sum())} degenerate triangles in the mid-surface mesh")
    E_, nu, rho, h = material.youngs_modulus, material.poisson_ratio, material.density, thickness
    n_el = len(p)
    K = np.zeros((n_el, 18, 18))
    # membrane: constant strain triangle, u dofs at 6i, v at 6i+1
    b = np.stack([y[:, 1] - y[:, 2], y[:, 2] - y[:, 0], y[:, 0] - y[:, 1]], axis=1) / (2 * area[:, None])
    c = np.stack([x[:, 2] - x[:, 1], x[:, 0] - x[:, 2], x[:, 1] - x[:, 0]], axis=1) / (2 * area[:, None])
    Bm = np.zeros((n_el, 3, 18))
    for i in range(3):
        Bm[:, 0, 6 * i] = b[:, i]
        Bm[:, 1, 6 * i + 1] = c[:, i]
        Bm[:, 2, 6 * i] = c[:, i]
        Bm[:, 2, 6 * i + 1] = b[:, i]
    Dm = h * _plane_stress(E_, nu)
    K += area[:, None, None] * np.einsum("eki,kl,elj->eij", Bm, Dm, Bm)
    # drilling penalty γ ∫ (θz − ½(v,x − u,y))² dA, θz linear: the 3-point rule integrates it exactly
    # (a one-point rule would leave hourglass patterns of θz with zero energy on 3-colourable meshes)
    gamma = DRILLING_FACTOR * material.shear_modulus * h
    for xi, eta in _GAUSS:
        g = np.zeros((n_el, 18))
        for i, n_i in enumerate((1.0 - xi - eta, xi, eta)):
            g[:, 6 * i + 5] = n_i
            g[:, 6 * i + 1] = -0.5 * b[:, i]
            g[:, 6 * i] = 0.5 * c[:, i]
        K += gamma * (area / 3.0)[:, None, None] * np.einsum("ei,ej->eij", g, g)
    # bending: DKT, dofs (w, θx, θy) = (6i+2, 6i+3, 6i+4)
    Db = h ** 3 / 12.0 * _plane_stress(E_, nu)
    bend = np.array([6 * i + k for i in range(3) for k in (2, 3, 4)])
    Kb = np.zeros((n_el, 9, 9))
    for (xi, eta), w in zip(_GAUSS, _GAUSS_W):
        B = dkt_curvature_matrices(x, y, xi, eta)
        Kb += (2 * area * w)[:, None, None] * np.einsum("eki,kl,elj->eij", B, Db, B)
    K[:, bend[:, None], bend[None, :]] += Kb
    # rotate to the object frame: T = blockdiag(R × 6)
    T = np.zeros((n_el, 18, 18))
    for blk in range(6):
        T[:, 3 * blk:3 * blk + 3, 3 * blk:3 * blk + 3] = R
    K = np.einsum("eki,ekl,elj->eij", T, K, T)
    m_t = rho * h * area / 3.0
    m_r = rho * h ** 3 / 12.0 * area / 3.0
    Mdiag = np.repeat(np.stack([m_t, m_t, m_t, m_r, m_r, m_r], axis=1)[:, None, :], 3, axis=1).reshape(n_el, 18)
    return K, Mdiag


@dataclass
class ShellModel:
    """Assembled shell: K, M (sparse, 6·V × 6·V, object frame) on V mid-surface vertices."""

    K: sp.csr_matrix
    M: sp.csr_matrix
    n_vertices: int
    n_elements: int


def build_shell_model(vertices: np.ndarray, faces: np.ndarray, material: Material, thickness: float,
                      fixed: np.ndarray | None = None) -> ShellModel:
    """Assemble the shell of ``thickness`` (m) on a mid-surface (vertices (V, 3) m, faces (F, 3)).

    ``fixed``: optional global dof indices (6·vertex + dof) held at zero (supports, for tests and
    clamped parts); they are removed from K and M, so the returned model has fewer dofs.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    V = len(vertices)
    if 6 * V > MAX_SHELL_DOFS:
        raise ValueError(f"{6 * V} dofs exceed the limit of {MAX_SHELL_DOFS}: use a coarser mid-surface mesh")
    Ke, Me = element_matrices(vertices[faces], material, thickness)
    dofs = (6 * faces[:, :, None] + np.arange(6)).reshape(len(faces), 18)
    rows = np.broadcast_to(dofs[:, :, None], Ke.shape).ravel()
    cols = np.broadcast_to(dofs[:, None, :], Ke.shape).ravel()
    K = sp.coo_matrix((Ke.ravel(), (rows, cols)), shape=(6 * V, 6 * V)).tocsr()
    M = sp.coo_matrix((Me.ravel(), (dofs.ravel(), dofs.ravel())), shape=(6 * V, 6 * V)).tocsr()
    K = 0.5 * (K + K.T)
    if fixed is not None and len(fixed):
        keep = np.setdiff1d(np.arange(6 * V), np.asarray(fixed))
        K, M = K[keep][:, keep], M[keep][:, keep]
    return ShellModel(K.tocsr(), M.tocsr(), V, len(faces))


def shell_frequencies(vertices: np.ndarray, faces: np.ndarray, material: Material, thickness: float,
                      count: int, fixed: np.ndarray | None = None, rigid: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` non-rigid frequencies (Hz) and mass-normalised mode vectors (dofs, count)."""
    model = build_shell_model(vertices, faces, material, thickness, fixed)
    return solve_modes(model, count=count, rigid=rigid)


def shell_modal_analysis(mesh, material: Material, thickness: float, max_frequency: float = 20000.0,
                         count: int | None = None, cache: bool = True) -> ModeSet:
    """Modes of a free thin shell: mid-surface ``mesh`` (trimesh, object frame, m), ``thickness`` (m).

    Shapes (V, 3, M) are the translations of the mid-surface vertices. Cached like
    :func:`wavesolve.fem.modal_analysis` (SHA-256 of mesh, material, settings).
    """
    if not thickness > 0:
        raise ValueError(f"thickness must be positive (got {thickness})")
    settings = settings_json(thickness=thickness, max_frequency=max_frequency, count=count,
                             element="shell-cst-dkt-lumped", drilling=DRILLING_FACTOR, drilling_rule="3-point")

    def compute() -> tuple[np.ndarray, np.ndarray, dict]:
        model = build_shell_model(mesh.vertices, mesh.faces, material, thickness)
        log.info("shell modal analysis: %d triangles, %d dofs", model.n_elements, model.K.shape[0])
        # Weyl's asymptotic mode count of a plate, N(ω) ≈ A ω √(ρh/D) / (4π), with a margin
        D = material.youngs_modulus * thickness ** 3 / (12 * (1 - material.poisson_ratio ** 2))
        omega = 2 * math.pi * max_frequency
        guess = int(1.2 * float(mesh.area) * omega * math.sqrt(material.density * thickness / D) / (4 * math.pi)) + 12
        freqs, vecs = solve_modes(model, max_frequency, count, guess=min(guess, model.K.shape[0] // 2))
        shapes = vecs.reshape(model.n_vertices, 6, -1)[:, :3, :]
        return freqs, shapes, {"elements": model.n_elements, "dofs": model.K.shape[0], "thickness": thickness,
                               "surface": "mid-surface"}

    return cached_modes("shell-", mesh, material, settings, compute, cache)
