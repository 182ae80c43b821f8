"""Absorbing outer layer: a split-field PML on the staggered first-order system, in the layer only.

Inside the box the solver steps the pressure-only leapfrog
``p⁺ = 2p − p⁻ + λ² L p``; that scheme is algebraically the staggered pressure–velocity scheme
(p at cell centres and whole steps, v on faces and half steps) with v eliminated. In the layer
we keep v and split p = pₓ + p_y + p_z (Liu & Tao, JASA 1997):

    ∂vₐ/∂t + σₐ vₐ = −(1/ρ) ∂p/∂a          (faces)
    ∂pₐ/∂t + σₐ pₐ = −ρc² ∂vₐ/∂a           (cells)

with σ(d) = σ_max (d/L)^m, d the depth into the layer, σ_max = (m+1) c ln(1/R₀)/(2Lh), stepped
semi-implicitly. At the interface σ = 0, so both schemes agree exactly there. The outermost faces
are rigid (v = 0). Auxiliary variables exist only in the layer: six slabs, each with its own
copy of the face velocities it touches (copies on shared faces follow identical recursions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import PML_ORDER, PML_R0
from .grid import Grid


def pml_profile(n: int, layer: int, h: float, sound_speed: float, at_faces: bool,
                order: int = PML_ORDER, r0: float | None = None) -> np.ndarray:
    """σ (1/s) along one axis of n cells: at cell centres (n,) or at faces (n+1,), face i left of cell i.

    ``r0`` is the design reflection R₀ (default PML_R0); R₀ = 1 gives σ = 0 (a plain rigid box).
    """
    r0 = PML_R0 if r0 is None else r0
    x = np.arange(n + 1, dtype=np.float64) if at_faces else np.arange(n, dtype=np.float64) + 0.5
    depth = np.maximum(np.maximum(layer - x, x - (n - layer)), 0.0) / layer
    sigma_max = (order + 1) * sound_speed * math.log(1.0 / r0) / (2.0 * layer * h)
    return sigma_max * depth ** order


@dataclass
class _Slab:
    """One box of layer cells [lo, hi) (global indices) with its split pressures and face velocities."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    p_split: list[np.ndarray]        # 3 × (nx, ny, nz)
    v: list[np.ndarray]              # axis a: shape with n_a + 1 along a
    v_coef: list[tuple[np.ndarray, np.ndarray]]   # per axis (A, B) broadcastable to v[a]
    p_coef: list[tuple[np.ndarray, np.ndarray]]   # per axis (A, C) broadcastable to p_split[a]


class AbsorbingLayer:
    """The PML around the box. ``step`` writes p⁺ in every layer cell from p (NumPy reference)."""

    def __init__(self, grid: Grid, density: float, dtype: np.dtype) -> None:
        self.grid = grid
        L, shape = grid.layer, grid.shape
        nx, ny, nz = shape
        boxes = [
            ((0, 0, 0), (L, ny, nz)), ((nx - L, 0, 0), (nx, ny, nz)),
            ((L, 0, 0), (nx - L, L, nz)), ((L, ny - L, 0), (nx - L, ny, nz)),
            ((L, L, 0), (nx - L, ny - L, L)), ((L, L, nz - L), (nx - L, ny - L, nz)),
        ]
        dt, h, c = grid.dt, grid.h, grid.sound_speed
        self.slabs: list[_Slab] = []
        for lo, hi in boxes:
            ext = tuple(b - a for a, b in zip(lo, hi))
            p_split, v, v_coef, p_coef = [], [], [], []
            for a in range(3):
                sig_c = pml_profile(shape[a], L, h, c, at_faces=False)[lo[a]:hi[a]]
                sig_f = pml_profile(shape[a], L, h, c, at_faces=True)[lo[a]:hi[a] + 1]
                vshape = list(ext)
                vshape[a] += 1
                bshape = [1, 1, 1]
                bshape[a] = -1
                half_f = 0.5 * dt * sig_f
                A_v = (1.0 - half_f) / (1.0 + half_f)
                B_v = (dt / (density * h)) / (1.0 + half_f)
                faces = np.arange(lo[a], hi[a] + 1)
                rigid = (faces == 0) | (faces == shape[a])
                A_v[rigid] = 0.0
                B_v[rigid] = 0.0
                half_c = 0.5 * dt * sig_c
                A_p = (1.0 - half_c) / (1.0 + half_c)
                C_p = (density * c * c * dt / h) / (1.0 + half_c)
                p_split.append(np.zeros(ext, dtype=dtype))
                v.append(np.zeros(vshape, dtype=dtype))
                v_coef.append((A_v.reshape(bshape).astype(dtype), B_v.reshape(bshape).astype(dtype)))
                p_coef.append((A_p.reshape(bshape).astype(dtype), C_p.reshape(bshape).astype(dtype)))
            self.slabs.append(_Slab(lo, hi, p_split, v, v_coef, p_coef))

    @staticmethod
    def estimate_bytes(grid: Grid, itemsize: int) -> int:
        """Bytes the layer's auxiliary fields will take on ``grid`` (before building it)."""
        nx, ny, nz = grid.shape
        L = grid.layer
        total = 0
        for ext in [(L, ny, nz)] * 2 + [(nx - 2 * L, L, nz)] * 2 + [(nx - 2 * L, ny - 2 * L, L)] * 2:
            cells = ext[0] * ext[1] * ext[2]
            total += 3 * cells + sum(cells // ext[a] * (ext[a] + 1) for a in range(3))
        return total * itemsize

    @property
    def nbytes(self) -> int:
        """Memory held by the layer's auxiliary fields (bytes)."""
        return sum(x.nbytes for s in self.slabs for x in (*s.p_split, *s.v))

    def step(self, p: np.ndarray, p_next: np.ndarray) -> None:
        """v^{n+½} from p^n, then p^{n+1} = Σₐ pₐ^{n+1} written into ``p_next`` on layer cells."""
        for s in self.slabs:
            total = None
            for a in range(3):
                # pressure differences across the slab's faces along axis a (outer faces: rigid)
                lo = list(s.lo)
                hi = list(s.hi)
                lo_ext = lo.copy()
                hi_ext = hi.copy()
                lo_ext[a] = max(lo[a] - 1, 0)
                hi_ext[a] = min(hi[a] + 1, p.shape[a])
                block = p[lo_ext[0]:hi_ext[0], lo_ext[1]:hi_ext[1], lo_ext[2]:hi_ext[2]]
                dp = np.diff(block, axis=a)
                pad = [(0, 0)] * 3
                pad[a] = (int(lo[a] == 0), int(hi[a] == p.shape[a]))
                if pad[a] != (0, 0):
                    dp = np.pad(dp, pad)
                A_v, B_v = s.v_coef[a]
                v = s.v[a]
                v *= A_v
                v -= B_v * dp
                A_p, C_p = s.p_coef[a]
                pa = s.p_split[a]
                pa *= A_p
                pa -= C_p * np.diff(v, axis=a)
                total = pa.copy() if total is None else total + pa
            p_next[s.lo[0]:s.hi[0], s.lo[1]:s.hi[1], s.lo[2]:s.hi[2]] = total
