"""The fused compiled CPU step (Numba): absorbing layer and interior leapfrog in one parallel sweep.

One call per time step does
  1. the x-planes are split into one chunk per thread; the layer's face velocities between the
     last plane of a chunk and the first of the next are updated first, v⁺ = A v − B (p[i] − p[i−1]);
  2. each thread walks its chunk plane by plane, row by row: a layer row first updates the faces
     it owns in place (its upper x- and y-faces, all of its z-faces, and the lower ones at a slab's
     start), then its cells' split pressures pₐ⁺ = pₐ − (G pₐ + C (v[i+1] − v[i])) and
     p⁺ = p − Σ of those decreases (split pressures are stored only along the axes a cell absorbs
     along, the rest p − stored steps as one: absorbing.py), reading faces the row before it (or step 1)
     has just updated; an
     interior row runs the leapfrog p⁺ = 2p − p⁻ + λ² L p. The plane's z-slab parts come last
     (below), after its rows have brought the next plane's pressures into cache.

Every face is updated once a step, in place, and read while still in cache. (Until the eighth
session the faces had a pass of their own, and the cell pass read them from memory again: about 12
bytes more a layer cell.)

The two z-slabs (under and over the interior) have rows only ``layer`` cells long along z, too
short for the compiler to vectorise. Their state is stored y fastest
(``AbsorbingLayer(z_slabs_y_fastest=True)``), and each x-plane of them is done as rows along y:
the plane's pressures are first copied into a small (z, y) tile, and its p⁺ written back from
one. On a 200³ float32 grid with a 10-cell layer (2-core VM) this took the z-slabs from 3.2 ms to
about 1.7–2.1 ms of the field update (bench/RESULTS.md); float64 gained nothing measurable.
Plane i + 1's tile is made during the sweep, after plane i's rows (which read plane i + 1) and
before plane i's z-slab faces need it; until the ninth session all tiles were made in a pass of
their own, which read those lines from memory once more (4–6 % of the step).

Each element is computed with the same operations in the same order as the NumPy reference
(``kernels/reference.py`` and ``AbsorbingLayer.step``), with no fast-math (no reassociation, no
fused multiply-add contraction), so both precisions reproduce the reference to the last bit; the
tests allow 1e-12 (float64). The one exception is subnormal numbers: each thread flushes them to
zero while it runs the step (``kernels/subnormals.py``), where the reference keeps them, which
changes a value by less than the smallest normal number. Constants are passed in the field's
dtype so float32 stays float32.
The data layout is the layer's packed form (``AbsorbingLayer.p_aux``, ``v_aux``, ``slab_desc``,
``face_desc``, coefficient profiles), the CUDA kernels' too, but for the z-slabs' storage order.

The loops index the flat arrays at offsets cast to ``uint64``, not through slices. A slice is a new
array object: Numba counts references to its buffer (an atomic add on creation, another on release,
on a counter both threads share), and a layer row made about twenty of them. An unsigned index also
spares the check for negative indices, which would keep the loops from vectorising. Bit for bit the
same result; on the 2-core VM the field update took 6–16 % less (88³ and 200³, bench/RESULTS.md,
seventeenth session). Which of the two effects weighs more was not isolated.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, uint64

# Threads: Numba's own choice of threading layer (TBB if installed, else OpenMP, else workqueue;
# NUMBA_THREADING_LAYER overrides). OpenMP's threads wait for the next parallel call by spinning a
# while, which makes a call cost about 2 µs instead of the workqueue layer's 100–140 µs wake-up on
# a 2-core VM: showcase steps ran 3× faster. On a machine whose cores are busy with other work the
# spinning costs instead (2.5× slower there): NUMBA_THREADING_LAYER=workqueue is then the faster
# choice (bench/RESULTS.md, eleventh session; README "Speed").

from ..absorbing import AbsorbingLayer
from ..grid import Grid
from . import subnormals
from .numba_cache import key_on_sources
from .subnormals import flush_subnormals, restore_subnormals


@njit(cache=True, inline="always")
def _layer_row(p, p_aux, v_aux, cell_G, cell_C, out, sd, s, nx, ny, nz, L, i, j):
    """Split-pressure slots and p⁺ of the row (i, j, all k) of x- or y-slab s (absorbing.py): slot 0
    holds the slab's axis n (x, or y), b₁ is the other of x and y, b₂ is z. In a row within b₁'s
    layer (an x-slab's first or last rows along y) slot 1 holds p_{b₁} and the rest is p_z; else
    slot 1 holds p_z at the z ends (k < L, k ≥ nz − L) and the rest is p_{b₁}, and between them slot
    1 is unused and the rest, both free axes, steps as one. One loop over the row (p⁻ is not needed
    in the layer): with the z ends' slot 1 chosen per cell it took 2–5 % less than a loop per part
    on 60³–200³ (nineteenth session), whereas the row's faces in one loop took 2–12 % more than a
    loop per axis (``_face_row``)."""
    p_off, lo0, lo1, n0, n1, n2 = sd[s, 0], sd[s, 1], sd[s, 2], sd[s, 4], sd[s, 5], sd[s, 6]
    li, lj = i - lo0, j - lo1
    cells = n0 * n1 * n2
    lin = (li * n1 + lj) * n2
    q0 = p_off + lin
    q1 = p_off + cells + lin
    vx = sd[s, 7] + lin                                     # faces li, li+1 of (n0+1, n1, n2)
    vy = sd[s, 8] + (li * (n1 + 1) + lj) * n2               # (n0, n1+1, n2)
    vz = sd[s, 9] + (li * n1 + lj) * (n2 + 1)               # (n0, n1, n2+1); rows span z: lo2 = 0
    if s < 2:                                               # x-slab: n = x, b₁ = y
        fn, fn_up, fb, fb_up, cn_at, cb_at = vx, n1 * n2, vy, n2, i, nx + j
        in1 = j < L or j >= ny - L
    else:                                                   # y-slab: n = y, b₁ = x (never in x's layer)
        fn, fn_up, fb, fb_up, cn_at, cb_at = vy, n2, vx, n1 * n2, nx + j, i
        in1 = False
    gn, cn, g1, c1 = cell_G[cn_at], cell_C[cn_at], cell_G[cb_at], cell_C[cb_at]
    az = nx + ny                                            # z's coefficients of cell k
    o = (i * ny + j) * nz
    # p⁺ = p − Σ (pₐ − pₐ⁺), pₐ − pₐ⁺ = G pₐ + C Δvₐ: only the damped parts of the stored slots enter p⁺
    if in1:                                                 # slot 1: p_{b₁}; the rest: p_z
        for k in range(n2):
            e, f0, f1 = uint64(o + k), uint64(q0 + k), uint64(q1 + k)
            s0, s1, pe = p_aux[f0], p_aux[f1], p[e]
            d0 = s0 * gn + cn * (v_aux[uint64(fn + fn_up + k)] - v_aux[uint64(fn + k)])
            d1 = s1 * g1 + c1 * (v_aux[uint64(fb + fb_up + k)] - v_aux[uint64(fb + k)])
            dz = (((pe - s0) - s1) * cell_G[uint64(az + k)]
                  + cell_C[uint64(az + k)] * (v_aux[uint64(vz + 1 + k)] - v_aux[uint64(vz + k)]))
            p_aux[f0] = s0 - d0
            p_aux[f1] = s1 - d1
            out[e] = pe - ((d0 + d1) + dz)
        return
    m1 = n2 - L                                             # the z ends: k < L and k ≥ m1
    for k in range(n2):                                     # the rest's b₁ is free here (G = 0)
        e = uint64(o + k)
        f0, f1 = uint64(q0 + k), uint64(q1 + k)
        end = k < L or k >= m1                              # slot 1 holds p_z here
        s0 = p_aux[f0]
        d0 = s0 * gn + cn * (v_aux[uint64(fn + fn_up + k)] - v_aux[uint64(fn + k)])
        d1 = c1 * (v_aux[uint64(fb + fb_up + k)] - v_aux[uint64(fb + k)])
        dz = cell_C[uint64(az + k)] * (v_aux[uint64(vz + 1 + k)] - v_aux[uint64(vz + k)])
        p_aux[f0] = s0 - d0
        if end:
            s1 = p_aux[f1]
            dz = s1 * cell_G[uint64(az + k)] + dz
            p_aux[f1] = s1 - dz
            out[e] = p[e] - ((d0 + dz) + d1)
        else:
            out[e] = p[e] - (d0 + (d1 + dz))


@njit(cache=True, inline="always")
def _faces_across(p, v_aux, q, A, B, c, stride, rigid, m):
    """v⁺ on m faces v_aux[q…] between cells p[c…] and p[c − stride…]; a rigid wall (A = B = 0)
    takes a zero pressure difference, as in the reference."""
    if rigid:
        zero = B - B
        for f in range(m):
            e = uint64(q + f)
            v_aux[e] = v_aux[e] * A - B * zero
        return
    for f in range(m):
        e = uint64(q + f)
        v_aux[e] = v_aux[e] * A - B * (p[uint64(c + f)] - p[uint64(c - stride + f)])


@njit(cache=True, inline="always")
def _face_row(p, v_aux, face_A, face_B, sd, s, nx, ny, nz, i, j, upper_x, rest):
    """v⁺ in place on faces of the slab row (i, j, all k of the slab): its upper x-face if
    ``upper_x``; with ``rest``, its lower x-face on the slab's first row along x, its upper y-face
    (and the lower one on the slab's first row along y) and all of its z-faces. ``p`` is flat.
    Every face is updated once a step: by the row below it, or by the slab's first row."""
    lo0, lo1, lo2, n1, n2 = sd[s, 1], sd[s, 2], sd[s, 3], sd[s, 5], sd[s, 6]
    li, lj = i - lo0, j - lo1
    sx = ny * nz
    c = (i * ny + j) * nz + lo2
    q = sd[s, 7] + (li * n1 + lj) * n2                       # x-faces (n0+1, n1, n2)
    if rest and li == 0:
        _faces_across(p, v_aux, q, face_A[i], face_B[i], c, sx, i == 0, n2)
    if upper_x:
        _faces_across(p, v_aux, q + n1 * n2, face_A[i + 1], face_B[i + 1], c + sx, sx, i + 1 == nx, n2)
    if not rest:
        return
    q = sd[s, 8] + (li * (n1 + 1) + lj) * n2                 # y-faces (n0, n1+1, n2)
    fy = nx + 1
    if lj == 0:
        _faces_across(p, v_aux, q, face_A[fy + j], face_B[fy + j], c, nz, j == 0, n2)
    _faces_across(p, v_aux, q + n2, face_A[fy + j + 1], face_B[fy + j + 1], c + nz, nz, j + 1 == ny, n2)
    q = sd[s, 9] + (li * n1 + lj) * (n2 + 1)                 # z-faces (n0, n1, n2+1), g = lo2 … lo2+n2
    fz = nx + ny + 2 + lo2
    first = 1 if lo2 == 0 else 0
    last = n2 if lo2 + n2 == nz else n2 + 1
    if first == 1:
        v_aux[q] = v_aux[q] * face_A[fz] - face_B[fz] * (face_B[fz] - face_B[fz])
    # interior z-faces f = first … last−1: between cells c + f − 1 and c + f
    for f in range(first, last):
        e = uint64(q + f)
        v_aux[e] = v_aux[e] * face_A[uint64(fz + f)] - face_B[uint64(fz + f)] * (p[uint64(c + f)] - p[uint64(c + f - 1)])
    if last == n2:
        v_aux[q + n2] = v_aux[q + n2] * face_A[fz + n2] - face_B[fz + n2] * (face_B[fz + n2] - face_B[fz + n2])


@njit(cache=True, inline="always")
def _tile_row(nx, L, W, s, g, kk):
    """Flat offset of row kk of z-slab s's tile of x-plane g in ``FusedUpdate.tiles`` (2, nx, L + 2, W)."""
    return (((s - 4) * nx + g) * (L + 2) + kk) * W


@njit(cache=True)
def _z_slab_tile(p, tiles, nx, ny, nz, L, s, i, k0):
    """Tile row kk of z-slab s and x-plane i: p[i, L − 1 + jj, k0 + kk] for jj < W = ny − 2L + 2, from
    the flat field ``p``, k clamped to [0, nz): a row past a rigid outer face repeats its neighbour
    (zero difference across the face). Rows along y are strided reads (k outer: measured fastest)."""
    W = ny - 2 * L + 2
    for kk in range(L + 2):
        k = min(max(k0 + kk, 0), nz - 1)
        row = _tile_row(nx, L, W, s, i, kk)
        base = (i * ny + L - 1) * nz + k
        for jj in range(W):
            tiles[uint64(row + jj)] = p[uint64(base + jj * nz)]


@njit(cache=True)
def _z_slab_faces(tiles, v_aux, face_A, face_B, sd, s, nx, ny, L, i, upper_x, rest):
    """v⁺ in place on faces of x-plane i of z-slab s (stored y fastest), as rows along y: its upper
    x-faces if ``upper_x``; with ``rest``, its lower x-faces on the slab's first plane and all of
    its y- and z-faces. ``tiles`` holds each plane's pressures (z, y) with one extra row and column
    on each side (``_z_slab_tile``)."""
    lo0, lo1, lo2, n1, n2 = sd[s, 1], sd[s, 2], sd[s, 3], sd[s, 5], sd[s, 6]
    li = i - lo0
    W = ny - 2 * L + 2
    for u in range(2):                                          # x-faces li, li + 1: (n0+1, n2, n1)
        if (u == 0 and not (rest and li == 0)) or (u == 1 and not upper_x):
            continue
        g = i + u
        a, b = face_A[g], face_B[g]
        for lk in range(n2):
            q = sd[s, 7] + ((li + u) * n2 + lk) * n1
            hi = _tile_row(nx, L, W, s, g, lk + 1) + 1
            lo = _tile_row(nx, L, W, s, g - 1, lk + 1) + 1
            for jj in range(n1):
                e = uint64(q + jj)
                v_aux[e] = v_aux[e] * a - b * (tiles[uint64(hi + jj)] - tiles[uint64(lo + jj)])
    if not rest:
        return
    fy = nx + 1 + lo1
    for lk in range(n2):                                        # y-faces: (n0, n2, n1+1)
        q = sd[s, 8] + (li * n2 + lk) * (n1 + 1)
        r = _tile_row(nx, L, W, s, i, lk + 1)
        for jj in range(n1 + 1):
            e = uint64(q + jj)
            v_aux[e] = v_aux[e] * face_A[uint64(fy + jj)] - face_B[uint64(fy + jj)] * (
                tiles[uint64(r + 1 + jj)] - tiles[uint64(r + jj)])
    fz = nx + ny + 2 + lo2
    for lk in range(n2 + 1):                                    # z-faces: (n0, n2+1, n1)
        q = sd[s, 9] + (li * (n2 + 1) + lk) * n1
        a, b = face_A[fz + lk], face_B[fz + lk]
        hi = _tile_row(nx, L, W, s, i, lk + 1) + 1
        lo = _tile_row(nx, L, W, s, i, lk) + 1
        for jj in range(n1):
            e = uint64(q + jj)
            v_aux[e] = v_aux[e] * a - b * (tiles[uint64(hi + jj)] - tiles[uint64(lo + jj)])


@njit(cache=True)
def _z_slab_cells(p_aux, v_aux, cell_G, cell_C, out, sd, s, nx, ny, nz, L, i, tiles, scratch):
    """Split pressure and p⁺ of x-plane i of z-slab s (stored y fastest), as rows along y, into
    plane i's (z, y) block of ``scratch`` (nx, L, ny − 2L): slot 0 holds p_z and the rest p − p_z
    (p from the plane's pressure tile, ``_z_slab_tile``) is pₓ + p_y, both free here (absorbing.py;
    slot 1 is unused); then the block into ``out``, each y's run of z cells at once (a pass per z row,
    each writing one value into each of the plane's lines, took 0.63 ms instead of 0.47 on 200³)."""
    p_off, lo0, lo1, lo2, n1, n2 = sd[s, 0], sd[s, 1], sd[s, 2], sd[s, 3], sd[s, 5], sd[s, 6]
    li = i - lo0
    W = ny - 2 * L + 2
    cx = cell_C[i]                                          # x and y are free here (G = 0)
    cy = nx + lo1
    for lk in range(n2):
        r = (li * n2 + lk) * n1
        q0 = p_off + r
        vx = sd[s, 7] + r                                       # faces li, li+1 of (n0+1, n2, n1)
        vy = sd[s, 8] + (li * n2 + lk) * (n1 + 1)               # (n0, n2, n1+1)
        vz = sd[s, 9] + (li * (n2 + 1) + lk) * n1               # (n0, n2+1, n1)
        o = (i * L + lk) * n1
        t = _tile_row(nx, L, W, s, i, lk + 1) + 1
        gz, cz = cell_G[nx + ny + lo2 + lk], cell_C[nx + ny + lo2 + lk]
        for jj in range(n1):
            f = uint64(q0 + jj)
            s0 = p_aux[f]
            d0 = s0 * gz + cz * (v_aux[uint64(vz + n1 + jj)] - v_aux[uint64(vz + jj)])
            p_aux[f] = s0 - d0
            scratch[uint64(o + jj)] = tiles[uint64(t + jj)] - (d0 + (
                cx * (v_aux[uint64(vx + n2 * n1 + jj)] - v_aux[uint64(vx + jj)])
                + cell_C[uint64(cy + jj)] * (v_aux[uint64(vy + 1 + jj)] - v_aux[uint64(vy + jj)])))
    base = (i * ny + lo1) * nz + lo2
    block = i * L * n1
    for jj in range(n1):
        dst = base + jj * nz
        for lk in range(n2):
            out[uint64(dst + lk)] = scratch[uint64(block + lk * n1 + jj)]


@njit(cache=True, inline="always")
def _slab_goes_on(i, nx, L):
    """Whether x-planes i and i + 1 lie in the same slabs (so share x-faces)."""
    return i + 1 < L or i >= nx - L or L <= i < nx - L - 1


@njit(cache=True, inline="always")
def _plane_faces(p, tiles, v_aux, face_A, face_B, sd, nx, ny, nz, L, first, i, upper_x, rest, z_slabs):
    """``_face_row`` over x-plane i's layer rows, and with ``z_slabs`` ``_z_slab_faces``. One call
    site for ``_face_row``: each inlined copy costs compile time (the step took 34 s to compile with
    two here, 22 s with one; merging ``fused_step``'s two ``_layer_row`` sites as well saved 3 s
    more but made a 60³ step 2 % slower)."""
    x_slab = i < L or i >= nx - L
    for j in range(ny):
        if x_slab:
            s = 0 if i < L else 1
        elif j < L or j >= ny - L:
            s = 2 if j < L else 3
        else:
            continue
        _face_row(p, v_aux, face_A, face_B, sd, s, nx, ny, nz, i, j, upper_x, rest)
    if z_slabs and not x_slab:
        for s in range(first, 6):
            _z_slab_faces(tiles, v_aux, face_A, face_B, sd, s, nx, ny, L, i, upper_x, rest)


@njit(cache=True, inline="always")
def _plane_tiles(p, tiles, sd, nx, ny, nz, L, first, i):
    """The z-slabs' (z, y) tiles of x-plane i (``_z_slab_tile``), on the planes that have them:
    L − 1 … nx − L (the z-slabs' planes and one on each side, for their x-faces)."""
    if L - 1 <= i <= nx - L:
        for s in range(first, 6):
            _z_slab_tile(p, tiles, nx, ny, nz, L, s, i, sd[s, 3] - 1)


@njit(parallel=True, cache=True)
def fused_step(p3, out3, lam2, six, layer, p_aux, v_aux, slab_desc, face_A, face_B, cell_G, cell_C, floor, tiles,
               scratch, chunks):
    """p⁺ into ``out3`` (holding p⁻) on every cell; the layer's auxiliary fields advance in place.
    With ``floor`` > 0 (a ground) the layer slab under the interior (z < floor) is skipped, as in
    the reference: it holds the floor's mirror rows. ``tiles`` (2, nx, L + 2, ny − 2L + 2) and
    ``scratch`` (nx, L, ny − 2L): the z-slabs' working space (``FusedUpdate``). ``chunks``: the
    x-planes' split among the threads (first plane of each chunk, then nx; strictly increasing: no
    chunk empty)."""
    nx, ny, nz = p3.shape
    p = p3.reshape(nx * ny * nz)
    out = out3.reshape(nx * ny * nz)
    tile = tiles.reshape(tiles.size)
    work = scratch.reshape(scratch.size)
    L = layer
    sx, sy = ny * nz, nz
    first = 4 if floor == 0 else 5
    sd = slab_desc
    n_chunks = chunks.size - 1
    for t in prange(1, n_chunks):                           # 1. the x-faces between two chunks
        mode = flush_subnormals()
        i = chunks[t] - 1
        _plane_tiles(p, tile, sd, nx, ny, nz, L, first, i)
        _plane_tiles(p, tile, sd, nx, ny, nz, L, first, i + 1)
        if _slab_goes_on(i, nx, L):
            _plane_faces(p, tile, v_aux, face_A, face_B, sd, nx, ny, nz, L, first, i, True, False, True)
        restore_subnormals(mode)
    for t in prange(n_chunks):                              # 2. faces, then cells, plane by plane
        mode = flush_subnormals()
        if t == 0:
            _plane_tiles(p, tile, sd, nx, ny, nz, L, first, chunks[0] - 1)
            _plane_tiles(p, tile, sd, nx, ny, nz, L, first, chunks[0])
        for i in range(chunks[t], chunks[t + 1]):
            # the upper x-faces of a chunk's last plane were done in 1 (where the slab goes on)
            shared = i == chunks[t + 1] - 1 and t < n_chunks - 1 and _slab_goes_on(i, nx, L)
            # tiles i − 1 and i exist; tile i + 1 is made after the rows, unless step 1 made it
            # (the last two planes before the next chunk)
            next_tile = t == n_chunks - 1 or i + 1 < chunks[t + 1] - 1
            _plane_faces(p, tile, v_aux, face_A, face_B, sd, nx, ny, nz, L, first, i, not shared, True, False)
            middle = L <= i < nx - L                        # a plane between the x-slabs
            if not middle:
                for j in range(ny):
                    _layer_row(p, p_aux, v_aux, cell_G, cell_C, out, sd, 0 if i < L else 1, nx, ny, nz, L, i, j)
            else:
                m = nz - 2 * L
                for j in range(ny):
                    if j < L or j >= ny - L:
                        _layer_row(p, p_aux, v_aux, cell_G, cell_C, out, sd, 2 if j < L else 3, nx, ny, nz, L, i, j)
                        continue
                    c = (i * ny + j) * nz + L
                    for k in range(m):
                        e = uint64(c + k)
                        ck = p[e]
                        lap = (p[uint64(c - sx + k)] + p[uint64(c + sx + k)] + p[uint64(c - sy + k)]
                               + p[uint64(c + sy + k)] + p[uint64(c - 1 + k)] + p[uint64(c + 1 + k)] - six * ck)
                        out[e] = (ck + ck) - out[e] + lam2 * lap
            if next_tile:
                _plane_tiles(p, tile, sd, nx, ny, nz, L, first, i + 1)
            if middle:                                      # the z-slabs' faces, then their cells
                for s in range(first, 6):
                    _z_slab_faces(tile, v_aux, face_A, face_B, sd, s, nx, ny, L, i, not shared, True)
                    _z_slab_cells(p_aux, v_aux, cell_G, cell_C, out, sd, s, nx, ny, nz, L, i, tile, work)
        restore_subnormals(mode)


# the step compiles the subnormal switches (another file) into its own code
key_on_sources(fused_step, subnormals)


@njit(parallel=True, cache=True)
def mirror_floor(p3, L, m):
    """p[i, j, L − 1 − r] = p[i, j, L + r] for r < m, L ≤ i < nx − L, L ≤ j < ny − L (the floor's
    mirror rows: Backend.mirror_floor), over x-planes in parallel. Flat ``uint64`` offsets, no
    column views (the step's module docstring): 17 → 6 µs a call on bowl_on_table's 60 × 60 × 48
    cells (twentieth session)."""
    nx, ny, nz = p3.shape
    p = p3.reshape(nx * ny * nz)
    for i in prange(L, nx - L):
        for j in range(L, ny - L):
            c = (i * ny + j) * nz + L
            for r in range(m):
                p[uint64(c - 1 - r)] = p[uint64(c + r)]


@njit(parallel=True, cache=True)
def zero_cells(a, index):
    """a[index] = 0 on the flat array ``a`` (the solid cells after the update)."""
    for n in prange(index.size):
        a[uint64(index[n])] = 0


@njit(parallel=True, cache=True)
def close_cells(out, p, fluid, back_row, cell, back_values, lam2, solid):
    """On flat fields: out[fluid[r]] += λ²(back_values[back_row[r]] − p[cell[r]]) for each link r in
    order, in float64 rounded to out's dtype (GhostCells.correct_thin_parts), then out[solid] = 0
    (Backend.close_update in one call)."""
    delta = np.empty(1, out.dtype)
    for r in range(fluid.size):
        delta[0] = lam2 * (back_values[uint64(back_row[r])] - p[uint64(cell[r])])
        out[uint64(fluid[r])] += delta[0]
    for n in prange(solid.size):
        out[uint64(solid[n])] = 0


@njit(cache=True)
def _masked_max(bits, start, stop, magnitude):
    """max of bits[n] & magnitude over start <= n < stop (0 for an empty range)."""
    m = magnitude - magnitude
    part = bits[start:stop]           # looped from 0: a run-time start would keep Numba's negative-index check
    for n in range(stop - start):
        v = part[n] & magnitude
        m = v if v > m else m
    return m


@njit(parallel=True, cache=True)
def _largest_magnitude_bits(bits, magnitude):
    """max over n of bits[n] & magnitude: for a float array viewed as unsigned integers of its width
    and ``magnitude`` the mask without the sign bit, the bit pattern of the largest |a|. Such
    patterns order as the magnitudes do, with inf above every finite value and NaN above inf, and
    an integer maximum vectorises (a float one with NaN checks did not: 6 ms on a 200³ field).
    Each chunk's maximum is a call of its own: written inline in the prange body, Numba 0.68.0 on
    Python 3.12 fails to compile it ("unexpected cycle in lookup()" in its reduction analysis)."""
    chunks = 64
    size = bits.size
    top = np.zeros(chunks, bits.dtype)
    for c in prange(chunks):
        top[c] = _masked_max(bits, c * size // chunks, (c + 1) * size // chunks, magnitude)
    return top.max()


def peak(a: np.ndarray) -> float:
    """max |a| over the contiguous float array ``a``; NaN if it holds a NaN, inf if an inf (and no
    NaN), as ``Backend.peak``."""
    flat = a.reshape(-1)
    unsigned = {4: np.uint32, 8: np.uint64}[flat.dtype.itemsize]
    bits = _largest_magnitude_bits(flat.view(unsigned), unsigned(np.iinfo(unsigned).max >> 1))
    return float(np.array(bits, dtype=unsigned).view(flat.dtype)[()])


def even_chunks(nx: int, threads: int) -> np.ndarray:
    """The nx x-planes split evenly among ``threads``: first plane of each chunk, then nx; no chunk
    empty (fewer chunks where there are more threads than planes). An empty chunk would have the
    x-faces before it updated twice (``fused_step``'s step 1)."""
    return np.unique(np.array([nx * t // threads for t in range(threads + 1)], dtype=np.int64))


class FusedUpdate:
    """``update(p, out)``: the compiled equivalent of :class:`~wavesolve.kernels.reference.ReferenceUpdate`.

    ``chunks`` sets the x-planes' split among the threads (any split gives the same result; the
    default is an even one, one chunk per Numba thread)."""

    def __init__(self, grid: Grid, layer: AbsorbingLayer, dtype: np.dtype) -> None:
        if layer.y_fastest != (False,) * 4 + (True,) * 2:
            raise ValueError("the compiled CPU step reads a layer made with z_slabs_y_fastest=True")
        dtype = np.dtype(dtype)
        self.layer = layer
        self.cells = grid.layer
        self.floor = grid.layer if grid.ground else 0
        self.lam2 = dtype.type(grid.courant ** 2)
        self.six = dtype.type(6)
        tiles, scratch = self.working_shapes(grid)
        self.tiles = np.empty(tiles, dtype)
        self.scratch = np.empty(scratch, dtype)
        #: the x-planes' split among the threads (first plane of each chunk, then nx, strictly
        #: increasing); None: even (``even_chunks``)
        self.chunks: np.ndarray | None = None
        self._threads, self._even = 0, np.zeros(0, dtype=np.int64)

    @staticmethod
    def working_shapes(grid: Grid) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Shapes of the z-slabs' working space: ``tiles``, per z-slab and x-plane its pressures as a
        (z, y) tile with one extra row on each side, (2, nx, L + 2, ny − 2L + 2); ``scratch``, per
        x-plane its z-slab cells' p⁺ as (z, y) before they go into the field, (nx, L, ny − 2L)."""
        nx, ny, _ = grid.shape
        L = grid.layer
        return (2, nx, L + 2, ny - 2 * L + 2), (nx, L, ny - 2 * L)

    @staticmethod
    def working_bytes(grid: Grid, itemsize: int) -> int:
        """Bytes of the working space (``working_shapes``) for fields of ``itemsize`` bytes."""
        return sum(int(np.prod(shape)) for shape in FusedUpdate.working_shapes(grid)) * itemsize

    def arguments(self, nx: int) -> tuple:
        """``fused_step``'s arguments after p and out, for a field of ``nx`` x-planes (the split
        among the threads: ``chunks``, or one even chunk per Numba thread); the compiled blocks
        (kernels/cpu_blocks.py) pass them on as they are."""
        chunks = self.chunks
        if chunks is None:
            threads = numba.get_num_threads()
            if self._threads != threads:
                self._threads, self._even = threads, even_chunks(nx, threads)
            chunks = self._even
        lay = self.layer
        return (self.lam2, self.six, self.cells, lay.p_aux, lay.v_aux, lay.slab_desc, lay.face_A, lay.face_B,
                lay.cell_G, lay.cell_C, self.floor, self.tiles, self.scratch, chunks)

    def __call__(self, p: np.ndarray, out: np.ndarray) -> None:
        fused_step(p, out, *self.arguments(p.shape[0]))
