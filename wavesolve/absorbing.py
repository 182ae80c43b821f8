"""Absorbing outer layer: a split-field PML on the staggered first-order system, in the layer only.

Inside the box the solver steps the pressure-only leapfrog
``p⁺ = 2p − p⁻ + λ² L p``; that scheme is algebraically the staggered pressure–velocity scheme
(p at cell centres and whole steps, v on faces and half steps) with v eliminated. In the layer
we keep v and split p = pₓ + p_y + p_z (Liu & Tao, JASA 1997):

    ∂vₐ/∂t + σₐ vₐ = −(1/ρ) ∂p/∂a          (faces)
    ∂pₐ/∂t + σₐ pₐ = −ρc² ∂vₐ/∂a           (cells)

with σ(d) = σ_max (d/L)^m, d the depth into the layer, σ_max = (m+1) c ln(1/R₀)/(2Lh), stepped
semi-implicitly. At the interface σ = 0, so both schemes agree exactly there. The outermost faces
are rigid (v = 0), and so is the floor face (z face ``layer``) when the grid has a ground. Auxiliary
variables exist only in the layer: six slabs, each with its own
copy of the face velocities it touches (copies on shared faces follow identical recursions).

Split pressures are stored only along the axes a cell absorbs along (σ > 0), in two slots a cell
(``slot_axes``). Slab s's normal axis n = s // 2 (x for the x-slabs, then y, then z) absorbs in all
of its cells; let b₁ < b₂ be the other two axes, and a cell "in b's layer" if its index along b lies
within ``layer`` of either end:

- slot 0 holds p_n;
- slot 1 holds p_{b₁} in b₁'s layer, else p_{b₂} in b₂'s layer, else nothing (a face region: the
  cell absorbs along n only; slot 1 is neither read nor written);
- the rest R = (p − slot 0) − slot 1 is the sum of the split pressures not stored, taken from the
  field before each step: one axis (p_{b₂} or p_{b₁}), or in a face region both, which are free
  there (σ = 0, A = 1), so R − R⁺ = C_{b₁} Δv_{b₁} + C_{b₂} Δv_{b₂} steps their sum.

Each component's update pₐ⁺ = A pₐ − C Δvₐ is written as a decrease, pₐ − pₐ⁺ = G pₐ + C Δvₐ with
G = 1 − A (0 on a free axis), and p⁺ = p − Σₐ (pₐ − pₐ⁺). A steady flow through the layer (an
impact's velocity change kept by ``acceleration_noise``, a net volume source) makes split pressures
along free or nearly free axes grow linearly in cancelling pairs, far above p; summed from them,
p⁺ would lose float32 precision in proportion (a struck sphere's listener drifted from float64
linearly, to 1.2e-5 Pa in 0.3 s), whereas G pₐ stays bounded where σ is small
(tests/test_absorbing_layer.py: 1e-8 Pa, flat).

This is an invertible linear change of variables of (pₓ, p_y, p_z, v), so the scheme is the same;
in floating point they differ by rounding (about 4e-16 of max |p| in float64 over 300 steps,
tests/test_absorbing_layer.py). A face-region cell, most of the layer, moves about 40 bytes a step
in float32 (slot 0, three face velocities, p, p⁺), an edge or corner cell 48, against about 60 with
three split pressures stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import constants
from .grid import Grid


def pml_parameters(layer: int) -> tuple[int, float]:
    """(m, R₀) of the profile for a layer of ``layer`` cells: the steep profile from
    ``constants.PML_THICK_CELLS`` cells on, the gentle one below (each measured, constants.py)."""
    if layer >= constants.PML_THICK_CELLS:
        return constants.PML_ORDER, constants.PML_R0
    return constants.PML_THIN_ORDER, constants.PML_THIN_R0


def pml_profile(n: int, layer: int, h: float, sound_speed: float, at_faces: bool,
                order: int | None = None, r0: float | None = None) -> np.ndarray:
    """σ (1/s) along one axis of n cells: at cell centres (n,) or at faces (n+1,), face i left of cell i.

    ``order`` m and design reflection ``r0`` R₀ default to :func:`pml_parameters`; R₀ = 1 gives
    σ = 0 (a plain rigid box).
    """
    m, r = pml_parameters(layer)
    order = m if order is None else order
    r0 = r if r0 is None else r0
    x = np.arange(n + 1, dtype=np.float64) if at_faces else np.arange(n, dtype=np.float64) + 0.5
    depth = np.maximum(np.maximum(layer - x, x - (n - layer)), 0.0) / layer
    sigma_max = (order + 1) * sound_speed * math.log(1.0 / r0) / (2.0 * layer * h)
    return sigma_max * depth ** order


@dataclass
class _Slab:
    """One box of layer cells [lo, hi) (global indices) with its split pressures and face velocities.

    The arrays are views into the layer's packed buffers (``AbsorbingLayer.p_aux``, ``v_aux``).
    """

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    p_split: list[np.ndarray]        # slots 0 and 1 (module docstring): 2 × (nx, ny, nz)
    v: list[np.ndarray]              # axis a: shape with n_a + 1 along a
    v_coef: list[tuple[np.ndarray, np.ndarray]]   # per axis (A, B) broadcastable to v[a]
    p_coef: list[tuple[np.ndarray, np.ndarray]]   # per axis (G, C) broadcastable to the slab's cells
    slot1: tuple[np.ndarray, np.ndarray]          # where slot 1 holds p_{b₁}, where p_{b₂} (broadcastable)


#: Slots of split pressure per layer cell (module docstring).
STORED_SPLIT = 2
#: Every block of the packed buffers (a slab's split-pressure slots, a slab's face velocities along
#: one axis) starts at a multiple of this many elements, so that the GPU's layer cells can load and
#: store up to 4 values along z at once (kernels/cuda/fdtd.cuh); the few elements of padding are never read.
PACK_ALIGN = 4


def _padded(n: int) -> int:
    """n rounded up to a multiple of PACK_ALIGN."""
    return -(-n // PACK_ALIGN) * PACK_ALIGN


#: Columns of ``AbsorbingLayer.slab_desc``: offset of the slab's split-pressure slots in ``p_aux``
#: (slot u at + u·cells), lo (3), extent (3), offset of its face velocities along each axis in ``v_aux`` (3).
SLAB_DESC_COLUMNS = ("p_off", "lo0", "lo1", "lo2", "n0", "n1", "n2", "v_off0", "v_off1", "v_off2")
#: Columns of ``AbsorbingLayer.face_desc`` (one row per slab and axis, in ``v_aux`` order): offset,
#: lo (3), shape of the face array (3), axis.
FACE_DESC_COLUMNS = ("v_off", "lo0", "lo1", "lo2", "m0", "m1", "m2", "axis")


def _stored(flat, shape: tuple[int, int, int], y_fastest: bool):
    """An (x, y, z)-indexed view of ``shape`` on ``flat``, stored in C order or in (x, z, y) order."""
    if not y_fastest:
        return flat.reshape(shape)
    return flat.reshape(shape[0], shape[2], shape[1]).transpose(0, 2, 1)


class AbsorbingLayer:
    """The PML around the box. ``step`` writes p⁺ in every layer cell from p (NumPy reference).

    Packed form (what the compiled and GPU kernels read; the per-slab arrays are views into it,
    made by :meth:`views`):

    Attributes:
        p_aux: (Σ 2·cells,) the split-pressure slots of all slabs, slab by slab, slot by slot
            (module docstring); each slab's block padded to PACK_ALIGN.
        v_aux: (Σ faces,) face velocities of all slabs, slab by slab, axis by axis, each block
            padded to PACK_ALIGN.
        y_fastest: (6,) bool per slab: its arrays are stored in (x, z, y) order (y fastest) instead
            of C order (z fastest). With ``z_slabs_y_fastest`` the two z-slabs are, so that the CPU
            kernel runs their short z rows (one layer thick) as long y rows (kernels/cpu.py).
        slab_desc: (6, 10) int64, see ``SLAB_DESC_COLUMNS``.
        face_desc: (18, 8) int64, see ``FACE_DESC_COLUMNS``.
        face_A, face_B: (nx+1 + ny+1 + nz+1,) face coefficients per axis, concatenated
            (v⁺ = A v − B (p[i] − p[i−1]) at face i; 0 at the rigid outer faces).
        cell_G, cell_C: (nx + ny + nz,) cell coefficients per axis, concatenated
            (pₐ⁺ = pₐ − (G pₐ + C (v[i+1] − v[i])): G = 1 − A, the damping, 0 where σ = 0).
    """

    def __init__(self, grid: Grid, density: float, dtype: np.dtype, z_slabs_y_fastest: bool = False) -> None:
        self.grid = grid
        dtype = np.dtype(dtype)
        self.y_fastest = (False,) * 4 + (bool(z_slabs_y_fastest),) * 2
        L, shape = grid.layer, grid.shape
        nx, ny, nz = shape
        boxes = [
            ((0, 0, 0), (L, ny, nz)), ((nx - L, 0, 0), (nx, ny, nz)),
            ((L, 0, 0), (nx - L, L, nz)), ((L, ny - L, 0), (nx - L, ny, nz)),
            ((L, L, 0), (nx - L, ny - L, L)), ((L, L, nz - L), (nx - L, ny - L, nz)),
        ]
        dt, h, c = grid.dt, grid.h, grid.sound_speed
        # coefficient profiles along each whole axis (float64, then rounded once to dtype)
        face_A, face_B, cell_G, cell_C = [], [], [], []
        for a in range(3):
            sig_f = pml_profile(shape[a], L, h, c, at_faces=True)
            sig_c = pml_profile(shape[a], L, h, c, at_faces=False)
            half_f = 0.5 * dt * sig_f
            A_v = (1.0 - half_f) / (1.0 + half_f)
            B_v = (dt / (density * h)) / (1.0 + half_f)
            A_v[[0, -1]] = 0.0          # rigid outermost faces
            B_v[[0, -1]] = 0.0
            if a == 2 and grid.ground:  # a rigid floor on the interior's bottom face, through the layer too
                A_v[L] = 0.0
                B_v[L] = 0.0
            half_c = 0.5 * dt * sig_c
            face_A.append(A_v.astype(dtype))
            face_B.append(B_v.astype(dtype))
            cell_G.append((2.0 * half_c / (1.0 + half_c)).astype(dtype))      # 1 − A, rounded once
            cell_C.append(((density * c * c * dt / h) / (1.0 + half_c)).astype(dtype))
        self.face_A, self.face_B = np.concatenate(face_A), np.concatenate(face_B)
        self.cell_G, self.cell_C = np.concatenate(cell_G), np.concatenate(cell_C)

        slab_desc, face_desc = [], []
        p_total = v_total = 0
        for lo, hi in boxes:
            ext = tuple(b - a for a, b in zip(lo, hi))
            cells = ext[0] * ext[1] * ext[2]
            v_offs = []
            for a in range(3):
                vshape = list(ext)
                vshape[a] += 1
                face_desc.append((v_total, *lo, *vshape, a))
                v_offs.append(v_total)
                v_total += _padded(cells // ext[a] * (ext[a] + 1))
            slab_desc.append((p_total, *lo, *ext, *v_offs))
            p_total += _padded(STORED_SPLIT * cells)
        self.slab_desc = np.array(slab_desc, dtype=np.int64)
        self.face_desc = np.array(face_desc, dtype=np.int64)
        self.p_aux = np.zeros(p_total, dtype=dtype)
        self.v_aux = np.zeros(v_total, dtype=dtype)

        self.slabs: list[_Slab] = []
        for s, (p_split, v) in enumerate(self.views(self.p_aux, self.v_aux)):
            lo = tuple(int(x) for x in self.slab_desc[s, 1:4])
            ext = tuple(int(x) for x in self.slab_desc[s, 4:7])
            hi = tuple(a + n for a, n in zip(lo, ext))
            v_coef, p_coef = [], []
            for a in range(3):
                bshape = [1, 1, 1]
                bshape[a] = -1
                fo = sum(shape[b] + 1 for b in range(a))
                co = sum(shape[b] for b in range(a))
                v_coef.append((self.face_A[fo + lo[a]:fo + hi[a] + 1].reshape(bshape),
                               self.face_B[fo + lo[a]:fo + hi[a] + 1].reshape(bshape)))
                p_coef.append((self.cell_G[co + lo[a]:co + hi[a]].reshape(bshape),
                               self.cell_C[co + lo[a]:co + hi[a]].reshape(bshape)))
            in_layer = []
            for b in slot_axes(s)[1:]:
                idx = np.arange(lo[b], hi[b])
                mask = (idx < L) | (idx >= shape[b] - L)
                in_layer.append(mask.reshape([-1 if c == b else 1 for c in range(3)]))
            in1, in2 = in_layer
            self.slabs.append(_Slab(lo, hi, p_split, v, v_coef, p_coef, (in1, ~in1 & in2)))

    def views(self, p_aux, v_aux) -> list[tuple[list, list]]:
        """Per slab, (stored split pressures, face velocities): pₓ and p_y as (n0, n1, n2) views, and three views
        with n_a + 1 along axis a, indexed (x, y, z) whatever the storage order, into packed
        buffers ``p_aux``, ``v_aux`` laid out as this layer's (host or device arrays)."""
        out = []
        for s, row in enumerate(self.slab_desc):
            p_off, ext = int(row[0]), tuple(int(x) for x in row[4:7])
            cells = ext[0] * ext[1] * ext[2]
            p_split, v = [], []
            for a in range(3):
                frow = self.face_desc[3 * s + a]
                fshape = tuple(int(m) for m in frow[4:7])
                v_off = int(frow[0])
                if a < STORED_SPLIT:
                    p_split.append(_stored(p_aux[p_off + a * cells:p_off + (a + 1) * cells], ext, self.y_fastest[s]))
                v.append(_stored(v_aux[v_off:v_off + fshape[0] * fshape[1] * fshape[2]], fshape,
                                 self.y_fastest[s]))
            out.append((p_split, v))
        return out

    def outflow(self, v_aux=None) -> float:
        """Net volume flux (m³/s) out of the interior through its interface with the layer: the
        face velocities there times h², summed. ``v_aux``: the packed face velocities the field
        update steps (host or device; default this layer's own). After a source falls silent the
        net flux returns to zero; a flux that stays is a volume source or sink in the box."""
        L, (_, ny, nz) = self.grid.layer, self.grid.shape
        vs = [v for _, v in self.views(self.p_aux, self.v_aux if v_aux is None else v_aux)]
        total = (-vs[0][0][L, L:ny - L, L:nz - L].sum() + vs[1][0][0, L:ny - L, L:nz - L].sum()
                 - vs[2][1][:, L, L:nz - L].sum() + vs[3][1][:, 0, L:nz - L].sum()
                 - vs[4][2][:, :, L].sum() + vs[5][2][:, :, 0].sum())
        return float(total) * self.grid.h ** 2

    @staticmethod
    def estimate_bytes(grid: Grid, itemsize: int, velocity_buffers: int = 1) -> int:
        """Bytes the layer's auxiliary fields will take on ``grid`` (before building it), with
        ``velocity_buffers`` copies of the face velocities (``Backend.velocity_buffers``)."""
        nx, ny, nz = grid.shape
        L = grid.layer
        total = 0
        for ext in [(L, ny, nz)] * 2 + [(nx - 2 * L, L, nz)] * 2 + [(nx - 2 * L, ny - 2 * L, L)] * 2:
            cells = ext[0] * ext[1] * ext[2]
            total += _padded(STORED_SPLIT * cells) + velocity_buffers * sum(
                _padded(cells // ext[a] * (ext[a] + 1)) for a in range(3))
        return total * itemsize

    @property
    def nbytes(self) -> int:
        """Memory held by the layer's auxiliary fields (bytes)."""
        return self.p_aux.nbytes + self.v_aux.nbytes

    def step(self, p: np.ndarray, p_next: np.ndarray) -> None:
        """v^{n+½} from p^n, then p^{n+1} written into ``p_next`` on layer cells: the slots and the
        rest of the pressure stepped as the module docstring says, p⁺ = p − (the components'
        decreases).

        With a ground the slab under the interior (z below the floor) is skipped: the rigid floor
        face (v_z = 0) cuts it off, and its cells hold the floor's mirror rows
        (``Backend.mirror_floor``).
        """
        floor = self.grid.layer if self.grid.ground else 0
        for k, s in enumerate(self.slabs):
            if s.hi[2] <= floor:
                continue
            n, b1, b2 = slot_axes(k)
            box = p[s.lo[0]:s.hi[0], s.lo[1]:s.hi[1], s.lo[2]:s.hi[2]]
            D = []
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
                D.append(s.p_coef[a][1] * np.diff(v, axis=a))      # C_a Δv_a on the cells
            G = [s.p_coef[a][0] for a in range(3)]
            s0, s1 = s.p_split
            first, second = (np.broadcast_to(m, box.shape) for m in s.slot1)   # slot 1: p_{b₁}, p_{b₂}
            used = first | second
            rest = np.where(used, (box - s0) - s1, box - s0)
            # each stored or derived component's decrease pₐ − pₐ⁺ = G pₐ + C Δvₐ (module docstring)
            d0 = G[n] * s0 + D[n]
            d1 = np.where(first, G[b1] * s1 + D[b1], np.where(second, G[b2] * s1 + D[b2], 0.0))
            d_rest = np.where(first, G[b2] * rest + D[b2], np.where(second, G[b1] * rest + D[b1], D[b1] + D[b2]))
            s0 -= d0
            s1 -= d1
            p_next[s.lo[0]:s.hi[0], s.lo[1]:s.hi[1], s.lo[2]:s.hi[2]] = box - ((d0 + d1) + d_rest)


def slot_axes(s: int) -> tuple[int, int, int]:
    """(n, b₁, b₂) of slab s: its normal axis, then the other two in order (module docstring)."""
    n = s // 2
    b1, b2 = (b for b in range(3) if b != n)
    return n, b1, b2
