"""Volume balance of sounding objects: the net flux the field update draws through an object's
cell faces held at the net volume acceleration its shaders give (zero for a rigid body).

Why. The field update of a fluid cell f next to a ghost cell g reads the face difference p_g − p_f;
summed over an object's ghost–fluid faces, Σ (p_g − p_f)·h is the net volume flux (times ρ) the
scheme pushes into the air, and the continuous problem fixes it at ρQ̇, Q̇ = ∮ aₙ dS: zero for a
rigid body (∮ (a + α × (x − c))·n dS = 0), Σᵢ Vᵢ q̈ᵢ for modes of net volume Vᵢ = ∮ Uᵢ·n dS.
The ghost values (image-point extrapolation, ``boundary``) satisfy ∂p/∂n = −ρaₙ at each row's own
surface point, but their face differences do not add up to that integral: over a face parallel to
the grid the error has one sign (the face's sub-cell offset), and a box's edge cells, set by the
side face, carry the struck face's flux with the wrong sign. A struck 2 cm cube at h = 4 mm
radiated a monopole 0.40 of its dipole below 1 kHz (bench/RESULTS.md, thirtieth session) where it
should radiate none; ringing in a volume-preserving mode, a monopole 3.7 times its quadrupole
(thirty-second session).

What. After the ghost (and back) values are set, each balanced object gets one constant λ added to
every value its faces read (the ghost value, or a one-cell-thick part's back value where the
far-side neighbour reads that), λ = (ρQ̇/h − Σ_faces (v − p_f)) / F over its F ghost–fluid faces,
so the sum is ρQ̇/h to rounding whatever the field. The shift is spread evenly over the object's
faces: it adds only a uniform (monopole) layer to what the ghost values give; the struck cube's
dipole changed by under 2 % while its monopole fell from 0.40 to 0.006 of it.

Which objects. Those whose shaders each declare their aₙ a rigid-body motion (``Shader.rigid``:
``acceleration_noise``) or give its net volume acceleration (``Shader.knows_volume``: ``modal``,
``shell``, ``surface_motion``, ``speaker``). The step's Q̇ of each object rides in the boundary input after
the rows' aₙ (``GhostCells.inputs``), where the kernels read it for the objects that are volume
sources (``Body.volume``: a shader of it is not rigid). Other objects, and passive ones, keep the
ghost values as they are. Objects whose ghost cells touch are balanced together (their Q̇ summed),
and only if all of them are balanced.

Arrays (one :class:`Balance` per boundary system), per object b in CSR order:
    face_ptr (B+1,), face_src (F,): the cell of p a face reads (≥ 0) or −1 − j for back value j;
    face_fluid (F,): its fluid cell; count_inv (B,): 1/F_b (0: not balanced);
    add_ptr (B+1,), add_dst (A,): the values λ_b is added to, encoded as face_src;
    vol_ptr (B+1,), vol_idx (V,): the boundary input entries (G + object) whose Q̇ entry b sums.
:func:`balance_reference` is the NumPy reference of the compiled kernels
(``geometry_kernels.flux_balance`` and ``ws_balance``/``ws_balance_add`` of cuda/fdtd.cuh).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid
from .sorted_lookup import finder, in_sorted


@dataclass
class Balance:
    """The compiled kernels' arrays (module docstring)."""

    face_ptr: np.ndarray
    face_src: np.ndarray
    face_fluid: np.ndarray
    count_inv: np.ndarray
    add_ptr: np.ndarray
    add_dst: np.ndarray
    vol_ptr: np.ndarray
    vol_idx: np.ndarray

    def arrays(self) -> tuple:
        """The arrays in the kernels' argument order."""
        return (self.face_ptr, self.face_src, self.face_fluid, self.count_inv, self.add_ptr, self.add_dst,
                self.vol_ptr, self.vol_idx)

    @property
    def bodies(self) -> int:
        """The number of objects B."""
        return len(self.count_inv)


def volume_entry(rows: int, body):
    """Where object ``body``'s net volume acceleration Q̇ (m³/s²) sits in a step's boundary input
    (``GhostCells.inputs``): after the ``rows`` rows' aₙ, one entry per object in scene order.
    ``body`` may be an index array."""
    return rows + body


def build_balance(grid: Grid, index: np.ndarray, fresh: np.ndarray, blocked: np.ndarray, owner: np.ndarray,
                  links: tuple[np.ndarray, np.ndarray, np.ndarray], balanced: np.ndarray,
                  volume: np.ndarray | None = None) -> Balance:
    """The balance of a boundary system, one entry per object (objects whose ghost cells touch are
    balanced together, under the first one's entry; the others' entries are empty).

    Args:
        grid: the grid (a ground's mirror rows under the floor are no air).
        index: (n,) flat cells of the unknown rows (ghost cells, then fresh ones, ``fresh`` (n,)).
        blocked: flat cells that are not air (every solid cell, ghost cells included).
        owner: (G,) object of each row (unknown rows, then back values: G = n + m).
        links: the one-cell-thick parts' (fluid cells, back-value rows in 0..G, ghost cells) (l,) each:
            faces whose fluid cell reads a back value instead of the ghost value.
        balanced: (B,) bool, the objects to balance (module docstring).
        volume: (B,) bool, the balanced objects whose net volume acceleration Q̇ may be non-zero: the
            kernels read it from the boundary input's entry G + b (default: none).
    """
    bodies = len(balanced)
    if not np.any(balanced):
        return _empty(bodies)
    shape = np.asarray(grid.shape, dtype=np.int64)
    n = len(index)
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
    dirs = np.concatenate([np.eye(3, dtype=np.int64), -np.eye(3, dtype=np.int64)])
    rows = np.flatnonzero(~fresh)
    ijk = np.stack(np.unravel_index(index[rows], grid.shape), axis=1).astype(np.int64)
    blocked = np.unique(blocked)
    low = grid.layer if grid.ground else 0                 # air starts above a ground's floor
    ghost_order = np.argsort(index[rows])
    ghost_sorted = index[rows][ghost_order]
    group = np.arange(bodies)
    face_row, face_dir, face_fluid = [], [], []
    for k, d in enumerate(dirs):
        nb = ijk + d
        ok = np.all((nb >= 0) & (nb < shape), axis=1) & (nb[:, 2] >= low) & (ijk[:, 2] >= low)
        cells = nb[ok] @ strides
        air = ~in_sorted(blocked, cells)
        face_row.append(rows[ok][air])
        face_dir.append(np.full(int(air.sum()), k))
        face_fluid.append(cells[air])
        # ghost cells of two objects side by side: the objects are balanced together
        other = ~air & in_sorted(ghost_sorted, cells)
        if other.any():
            at = np.searchsorted(ghost_sorted, cells[other])
            for a, b in set(zip(owner[rows[ok][other]].tolist(), owner[rows[ghost_order[at]]].tolist())):
                ga, gb = _root(group, a), _root(group, b)
                group[max(ga, gb)] = min(ga, gb)
    group = np.array([_root(group, b) for b in range(bodies)], dtype=np.int64)
    unbalanced = np.zeros(bodies, dtype=bool)
    np.logical_or.at(unbalanced, group, ~np.asarray(balanced, dtype=bool))
    face_row = np.concatenate(face_row)
    face_dir = np.concatenate(face_dir)
    face_fluid = np.concatenate(face_fluid)
    # a far-side neighbour of a one-cell-thick part reads the back value, not the ghost value
    link_fluid, link_row, link_cell = links
    if len(link_fluid):
        offset = link_fluid - link_cell
        link_dir = np.full(len(offset), -1)
        for k, d in enumerate(dirs):
            link_dir[offset == d @ strides] = k
        face = finder(index[face_row] * 6 + face_dir)(link_cell * 6 + link_dir)
        hit = (link_dir >= 0) & (face >= 0)
        hit[hit] = face_fluid[face[hit]] == link_fluid[hit]
        face_row[face[hit]] = link_row[hit]
    body = group[owner[face_row]]
    keep = ~unbalanced[body]
    face_row, face_fluid, body = face_row[keep], face_fluid[keep], body[keep]
    order = np.argsort(body, kind="stable")
    face_row, face_fluid, body = face_row[order], face_fluid[order], body[order]
    face_ptr = np.searchsorted(body, np.arange(bodies + 1))
    counts = np.diff(face_ptr)
    count_inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    face_src = np.where(face_row < n, index[np.minimum(face_row, n - 1)], -1 - (face_row - n)).astype(np.int64)
    # the values λ is added to: each value some face reads, once; the Q̇ the entry's objects push
    volume = np.zeros(bodies, dtype=bool) if volume is None else np.asarray(volume, dtype=bool)
    add_dst, add_ptr, vol_idx, vol_ptr = [], [0], [], [0]
    for b in range(bodies):
        src = np.unique(face_src[face_ptr[b]:face_ptr[b + 1]])
        add_dst.append(src)
        add_ptr.append(add_ptr[-1] + len(src))
        members = np.flatnonzero((group == b) & volume) if counts[b] else np.zeros(0, dtype=np.int64)
        vol_idx.append(volume_entry(len(owner), members))
        vol_ptr.append(vol_ptr[-1] + len(members))
    return Balance(face_ptr=face_ptr.astype(np.int64), face_src=face_src, face_fluid=face_fluid.astype(np.int64),
                   count_inv=count_inv, add_ptr=np.asarray(add_ptr, dtype=np.int64),
                   add_dst=np.concatenate(add_dst).astype(np.int64),
                   vol_ptr=np.asarray(vol_ptr, dtype=np.int64), vol_idx=np.concatenate(vol_idx).astype(np.int64))


def _empty(bodies: int) -> Balance:
    """The balance of a system with no balanced object: no faces, nothing shifted."""
    ptr, none = np.zeros(bodies + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return Balance(face_ptr=ptr, face_src=none, face_fluid=none, count_inv=np.zeros(bodies), add_ptr=ptr,
                   add_dst=none, vol_ptr=ptr, vol_idx=none)


def _root(parent: np.ndarray, b: int) -> int:
    """The root of b in the union–find forest ``parent``."""
    while parent[b] != b:
        b = parent[b]
    return int(b)


def target_flux(balance: Balance, inputs: np.ndarray, scale: float) -> np.ndarray:
    """What each object's Σ (v − p_f) is held at, (B,) Pa: ``scale`` · Σ Q̇ over the objects of its
    entry, Q̇ (m³/s²) read from the boundary input ``inputs`` (G + objects,) at ``vol_idx``;
    ``scale`` = ρ/h (kg/m⁴), as the face differences add up to h Σ (v − p_f) = ρ ∮ aₙ dS."""
    body = np.repeat(np.arange(balance.bodies), np.diff(balance.vol_ptr))
    q = np.asarray(inputs, dtype=np.float64)[balance.vol_idx] if len(balance.vol_idx) else np.zeros(0)
    return scale * np.bincount(body, weights=q, minlength=balance.bodies)


def net_flux(balance: Balance, p: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Σ (v − p_f) (Pa) over each object's faces, (B,) float64, for the flat field ``p`` and back
    values ``back``."""
    flat = p.reshape(-1)
    src = balance.face_src
    v = np.where(src >= 0, flat[np.maximum(src, 0)].astype(np.float64), back[np.maximum(-1 - src, 0)] if len(back)
                 else 0.0)
    diff = v - flat[balance.face_fluid].astype(np.float64)
    body = np.repeat(np.arange(balance.bodies), np.diff(balance.face_ptr))
    return np.bincount(body, weights=diff, minlength=balance.bodies)


def balance_reference(balance: Balance, p: np.ndarray, back: np.ndarray, inputs: np.ndarray | None = None,
                      scale: float = 0.0) -> np.ndarray:
    """Add λ_b = (T_b − Σ (v − p_f)) / F_b to each balanced object's face values in ``p`` (any float
    dtype; rounded to it) and ``back`` (float64) in place, T_b = :func:`target_flux` of the boundary
    input ``inputs`` (zero where None); returns λ (B,) Pa. NumPy reference of the compiled kernels."""
    target = np.zeros(balance.bodies) if inputs is None else target_flux(balance, inputs, scale)
    lam = (target - net_flux(balance, p, back)) * balance.count_inv
    flat = p.reshape(-1)
    body = np.repeat(np.arange(balance.bodies), np.diff(balance.add_ptr))
    dst = balance.add_dst
    front = dst >= 0
    flat[dst[front]] = (flat[dst[front]].astype(np.float64) + lam[body[front]]).astype(flat.dtype)
    back[-1 - dst[~front]] += lam[body[~front]]
    return lam
