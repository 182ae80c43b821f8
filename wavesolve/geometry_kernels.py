"""Compiled (Numba) pieces of the per-step boundary update of moving rigid objects.

Each function here has a NumPy reference that the tests compare it with element by element
(``tests/test_geometry_kernels.py``):

- :func:`lattice_distance_at_cells`: signed distance at cell centres of a window, transformed into
  the object frame and read trilinearly from the object's SDF lattice. Reference: ``Grid.centres``,
  ``Geometry.to_local`` and ``SDFLattice.__call__`` (scipy ``map_coordinates``, order 1).
- :class:`CandidateLattice`: exact closest points on a mesh for points near it. Each node c of a
  regular object-frame lattice keeps the triangles T with d(c, T) ≤ d(c) + 2r (d(c) the node's
  distance to the mesh, r the largest distance from a point to its nearest node, half the cell
  diagonal). For a point x whose nearest node is c, the closest triangle T* satisfies
  d(c, T*) ≤ d(x, T*) + r ≤ d(x, T_c) + r ≤ d(c) + 2r, so T* is in c's list: the search over the
  list is exact, not an approximation. Lists are kept only for nodes within a band of the surface;
  other points go to libigl's AABB tree. Reference: ``igl.AABB.squared_distance``.
- :func:`image_stencil_terms`: trilinear image-point stencils avoiding blocked cells, with the
  neighbour-average fallback of thin parts. Reference: ``boundary._trilinear``.

Arithmetic follows the references' formulas; results agree to rounding (the tests state their
tolerances), not necessarily to the last bit, because BLAS and scipy sum in their own order.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64


#: Most triangle entries (8 bytes each) the candidate lists of one mesh may hold: ≈ 130 MB. The
#: bench's 20k-triangle sphere at h = 5 mm needs 4.8 M.
MAX_CANDIDATE_ENTRIES = 1 << 24


# --------------------------------------------------------------------------- classification

@njit(cache=True, inline="always")
def _lattice_at(f, ny, nz, cell_origin, h, rotation, position, values, lat_origin, spacing):
    """Signed distance at the centre of box cell ``f`` (flat, box rows ``ny``, ``nz``): trilinear in
    the SDF lattice ``values`` of an object at (``rotation``, ``position``); +inf off the lattice."""
    s0, s1, s2 = values.shape
    i = f // (ny * nz)
    j = (f // nz) % ny
    k = f % nz
    x0 = cell_origin[0] + h * i - position[0]
    x1 = cell_origin[1] + h * j - position[1]
    x2 = cell_origin[2] + h * k - position[2]
    u0 = (x0 * rotation[0, 0] + x1 * rotation[1, 0] + x2 * rotation[2, 0] - lat_origin[0]) / spacing
    u1 = (x0 * rotation[0, 1] + x1 * rotation[1, 1] + x2 * rotation[2, 1] - lat_origin[1]) / spacing
    u2 = (x0 * rotation[0, 2] + x1 * rotation[1, 2] + x2 * rotation[2, 2] - lat_origin[2]) / spacing
    if not (u0 >= 0.0 and u0 <= s0 - 1 and u1 >= 0.0 and u1 <= s1 - 1 and u2 >= 0.0 and u2 <= s2 - 1):
        return np.inf
    a = min(int(u0), s0 - 2)
    b = min(int(u1), s1 - 2)
    c = min(int(u2), s2 - 2)
    t0, t1, t2 = u0 - a, u1 - b, u2 - c
    v = 0.0
    for da in range(2):
        wa = t0 if da else 1.0 - t0
        for db in range(2):
            wb = t1 if db else 1.0 - t1
            for dc in range(2):
                wc = t2 if dc else 1.0 - t2
                v += wa * wb * wc * values[a + da, b + db, c + dc]
    return v


@njit(cache=True, parallel=True)
def lattice_distance_at_cells(flat, shape, cell_origin, h, rotation, position, values, lat_origin,
                              spacing):
    """Signed distance (m,) at the centres of the cells ``flat`` (flat indices into a box of
    ``shape`` whose cell (0, 0, 0) is centred at ``cell_origin``), for an object at (``rotation``,
    ``position``) whose SDF lattice is ``values`` (origin ``lat_origin``, ``spacing``); +inf outside
    the lattice (as ``SDFLattice.__call__``)."""
    n = flat.shape[0]
    out = np.empty(n)
    for q in prange(n):
        out[q] = _lattice_at(flat[q], shape[1], shape[2], cell_origin, h, rotation, position, values,
                             lat_origin, spacing)
    return out


@njit(cache=True, parallel=True)
def lattice_refresh_band(cached, threshold, shape, cell_origin, h, rotation, position, values, lat_origin,
                         spacing):
    """A copy of ``cached`` (signed distances of a box of cells, flat) with the cells where
    |cached| < ``threshold`` read again for the new pose, as :func:`lattice_distance_at_cells` on
    ``np.flatnonzero(np.abs(cached) < threshold)`` (one parallel pass)."""
    n = cached.shape[0]
    out = np.empty(n)
    for q in prange(n):
        v = cached[q]
        if abs(v) < threshold:
            v = _lattice_at(q, shape[1], shape[2], cell_origin, h, rotation, position, values, lat_origin,
                            spacing)
        out[q] = v
    return out


# --------------------------------------------------------------------------- closest points

@njit(cache=True, inline="always")
def _closest_on_triangle(px, py, pz, corners, t):
    """Closest point (x, y, z) on triangle t to p, and its squared distance (Ericson, RTCD 5.1.5);
    ``corners`` (triangles, 9) holds each triangle's corners a, b, c side by side (one cache line
    or two per triangle instead of four scattered reads)."""
    ax, ay, az = corners[t, 0], corners[t, 1], corners[t, 2]
    bx, by, bz = corners[t, 3], corners[t, 4], corners[t, 5]
    cx, cy, cz = corners[t, 6], corners[t, 7], corners[t, 8]
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        qx, qy, qz = ax, ay, az
    else:
        bpx, bpy, bpz = px - bx, py - by, pz - bz
        d3 = abx * bpx + aby * bpy + abz * bpz
        d4 = acx * bpx + acy * bpy + acz * bpz
        if d3 >= 0.0 and d4 <= d3:
            qx, qy, qz = bx, by, bz
        else:
            vc = d1 * d4 - d3 * d2
            if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
                v = d1 / (d1 - d3)
                qx, qy, qz = ax + v * abx, ay + v * aby, az + v * abz
            else:
                cpx, cpy, cpz = px - cx, py - cy, pz - cz
                d5 = abx * cpx + aby * cpy + abz * cpz
                d6 = acx * cpx + acy * cpy + acz * cpz
                if d6 >= 0.0 and d5 <= d6:
                    qx, qy, qz = cx, cy, cz
                else:
                    vb = d5 * d2 - d1 * d6
                    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
                        w = d2 / (d2 - d6)
                        qx, qy, qz = ax + w * acx, ay + w * acy, az + w * acz
                    else:
                        va = d3 * d6 - d5 * d4
                        if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
                            w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
                            qx, qy, qz = bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz)
                        else:
                            den = 1.0 / (va + vb + vc)
                            v = vb * den
                            w = vc * den
                            qx = ax + abx * v + acx * w
                            qy = ay + aby * v + acy * w
                            qz = az + abz * v + acz * w
    dx, dy, dz = px - qx, py - qy, pz - qz
    return qx, qy, qz, dx * dx + dy * dy + dz * dz


@njit(cache=True)
def _bin_triangles(vertices, faces, origin, size, shape):
    """CSR (start, tris) of the triangles whose bounding box overlaps each bin of a regular grid."""
    nb = shape[0] * shape[1] * shape[2]
    count = np.zeros(nb + 1, dtype=np.int64)
    nt = faces.shape[0]
    lo = np.empty((nt, 3), dtype=np.int64)
    hi = np.empty((nt, 3), dtype=np.int64)
    for t in range(nt):
        for a in range(3):
            mn = min(vertices[faces[t, 0], a], vertices[faces[t, 1], a], vertices[faces[t, 2], a])
            mx = max(vertices[faces[t, 0], a], vertices[faces[t, 1], a], vertices[faces[t, 2], a])
            lo[t, a] = max(int(math.floor((mn - origin[a]) / size)), 0)
            hi[t, a] = min(int(math.floor((mx - origin[a]) / size)), shape[a] - 1)
        for i in range(lo[t, 0], hi[t, 0] + 1):
            for j in range(lo[t, 1], hi[t, 1] + 1):
                for k in range(lo[t, 2], hi[t, 2] + 1):
                    count[(i * shape[1] + j) * shape[2] + k + 1] += 1
    for b in range(nb):
        count[b + 1] += count[b]
    fill = count[:-1].copy()
    tris = np.empty(count[nb], dtype=np.int64)
    for t in range(nt):
        for i in range(lo[t, 0], hi[t, 0] + 1):
            for j in range(lo[t, 1], hi[t, 1] + 1):
                for k in range(lo[t, 2], hi[t, 2] + 1):
                    b = (i * shape[1] + j) * shape[2] + k
                    tris[fill[b]] = t
                    fill[b] += 1
    return count, tris


@njit(cache=True)
def _build_candidates(corners, node_distance, lat_origin, spacing, band, slack, bin_start,
                      bin_tris, bin_origin, bin_size, bin_shape, max_entries):
    """Per lattice node within ``band`` of the surface: the triangles T with d(c, T) ≤ |d(c)| + 2r
    (+ ``slack`` for rounding), sorted by d(c, T). Returns CSR (start, tris, dist) and whether
    the lists fit in ``max_entries`` (if not, the build stops and the lists are unusable)."""
    s0, s1, s2 = node_distance.shape
    r = 0.5 * math.sqrt(3.0) * spacing
    start = np.zeros(s0 * s1 * s2 + 1, dtype=np.int64)
    cap = 1 << 20
    tris = np.empty(cap, dtype=np.int32)
    dist = np.empty(cap)
    stamp = np.full(corners.shape[0], -1, dtype=np.int64)
    tmp_t = np.empty(corners.shape[0], dtype=np.int32)
    tmp_d = np.empty(corners.shape[0])
    used = 0
    for a in range(s0):
        for b in range(s1):
            for c in range(s2):
                node = (a * s1 + b) * s2 + c
                dn = abs(node_distance[a, b, c])
                if dn <= band:
                    rho = dn + 2.0 * r + slack
                    px = lat_origin[0] + spacing * a
                    py = lat_origin[1] + spacing * b
                    pz = lat_origin[2] + spacing * c
                    m = 0
                    i0 = max(int(math.floor((px - rho - bin_origin[0]) / bin_size)), 0)
                    i1 = min(int(math.floor((px + rho - bin_origin[0]) / bin_size)), bin_shape[0] - 1)
                    j0 = max(int(math.floor((py - rho - bin_origin[1]) / bin_size)), 0)
                    j1 = min(int(math.floor((py + rho - bin_origin[1]) / bin_size)), bin_shape[1] - 1)
                    k0 = max(int(math.floor((pz - rho - bin_origin[2]) / bin_size)), 0)
                    k1 = min(int(math.floor((pz + rho - bin_origin[2]) / bin_size)), bin_shape[2] - 1)
                    for i in range(i0, i1 + 1):
                        for j in range(j0, j1 + 1):
                            for k in range(k0, k1 + 1):
                                bb = (i * bin_shape[1] + j) * bin_shape[2] + k
                                for e in range(bin_start[bb], bin_start[bb + 1]):
                                    t = bin_tris[e]
                                    if stamp[t] == node:
                                        continue
                                    stamp[t] = node
                                    _, _, _, d2 = _closest_on_triangle(px, py, pz, corners, t)
                                    if d2 <= rho * rho:
                                        tmp_t[m] = t
                                        tmp_d[m] = math.sqrt(d2)
                                        m += 1
                    if used + m > max_entries:
                        return start, tris[:0].copy(), dist[:0].copy(), False
                    order = np.argsort(tmp_d[:m])
                    while used + m > cap:
                        cap *= 2
                        grown_t = np.empty(cap, dtype=np.int32)
                        grown_d = np.empty(cap)
                        grown_t[:used] = tris[:used]
                        grown_d[:used] = dist[:used]
                        tris, dist = grown_t, grown_d
                    for e in range(m):
                        tris[used + e] = tmp_t[order[e]]
                        dist[used + e] = tmp_d[order[e]]
                    used += m
                start[node + 1] = used
    return start, tris[:used].copy(), dist[:used].copy(), True


@njit(cache=True, inline="always")
def _try_triangle(px, py, pz, corners, spheres, t, bt, bx, by, bz, best):
    """The nearest so far (triangle, closest x, y, z, squared distance) after trying triangle t for
    p: skipped without reading its corners when its ball (``spheres``) is already farther than the
    best (its distance |p − centre| − radius ≤ d(p, T))."""
    sr = spheres[t, 3]
    gap = math.sqrt((px - spheres[t, 0]) ** 2 + (py - spheres[t, 1]) ** 2 + (pz - spheres[t, 2]) ** 2) - sr
    gap -= 1e-9 * sr                                    # far above the rounding of the line above
    if gap > 0.0 and gap * gap > best:
        return bt, bx, by, bz, best
    qx, qy, qz, d2 = _closest_on_triangle(px, py, pz, corners, t)
    if d2 < best:
        return t, qx, qy, qz, d2
    return bt, bx, by, bz, best


@njit(cache=True, inline="always")
def _search_lists(px, py, pz, corners, spheres, start, tris, dist, shape, lat_origin, spacing, r):
    """(found, triangle, closest x, y, z, squared distance) of p from its nearest node's list.
    ``spheres`` (triangles, 4) float32: a ball (centre, radius) holding each triangle, whose
    distance |p − centre| − radius ≤ d(p, T) skips a triangle that cannot win without reading its
    corners (the same triangle wins: a skipped one is strictly farther than the best so far)."""
    a = int(math.floor((px - lat_origin[0]) / spacing + 0.5))
    b = int(math.floor((py - lat_origin[1]) / spacing + 0.5))
    c = int(math.floor((pz - lat_origin[2]) / spacing + 0.5))
    if a < 0 or b < 0 or c < 0 or a >= shape[0] or b >= shape[1] or c >= shape[2]:
        return False, -1, 0.0, 0.0, 0.0, np.inf
    node = (a * shape[1] + b) * shape[2] + c
    e0, e1 = start[node], start[node + 1]
    if e0 == e1:
        return False, -1, 0.0, 0.0, 0.0, np.inf
    # rounding may put p a hair beyond r from the node: then let the AABB tree answer
    ox = px - (lat_origin[0] + spacing * a)
    oy = py - (lat_origin[1] + spacing * b)
    oz = pz - (lat_origin[2] + spacing * c)
    rq = math.sqrt(ox * ox + oy * oy + oz * oz)
    if rq > r * (1.0 + 1e-9):
        return False, -1, 0.0, 0.0, 0.0, np.inf
    best = np.inf
    bt = -1
    bx = by = bz = 0.0
    for e in range(e0, e1):
        # lists are sorted by d(c, T) and d(p, T) ≥ d(c, T) − |p − c|: nothing later can win
        lower = dist[e] - rq
        if lower > 0.0 and lower * lower > best:
            break
        bt, bx, by, bz, best = _try_triangle(px, py, pz, corners, spheres, tris[e], bt, bx, by, bz, best)
    return True, bt, bx, by, bz, best


@njit(cache=True)
def _search_bins(px, py, pz, corners, spheres, bin_start, bin_tris, bin_origin, bin_size, bin_shape):
    """(found, triangle, closest x, y, z, squared distance) of p from the triangle bins, for points
    the node lists do not answer (deeper than their band). The bins are visited in rings of growing
    Chebyshev distance r around p's bin; every triangle not yet seen lies outside the cube of the
    rings so far (a triangle is listed in each bin its bounding box meets), at least r·size from p,
    so the search stops once the best is nearer. found is False outside the bins (or with none)."""
    nx, ny, nz = bin_shape[0], bin_shape[1], bin_shape[2]
    i0 = int(math.floor((px - bin_origin[0]) / bin_size))
    j0 = int(math.floor((py - bin_origin[1]) / bin_size))
    k0 = int(math.floor((pz - bin_origin[2]) / bin_size))
    if nx * ny * nz == 0 or i0 < 0 or j0 < 0 or k0 < 0 or i0 >= nx or j0 >= ny or k0 >= nz:
        return False, -1, 0.0, 0.0, 0.0, np.inf
    best = np.inf
    bt = -1
    bx = by = bz = 0.0
    reach = max(max(i0, nx - 1 - i0), max(max(j0, ny - 1 - j0), max(k0, nz - 1 - k0)))
    for r in range(reach + 1):
        for i in range(max(i0 - r, 0), min(i0 + r, nx - 1) + 1):
            for j in range(max(j0 - r, 0), min(j0 + r, ny - 1) + 1):
                for k in range(max(k0 - r, 0), min(k0 + r, nz - 1) + 1):
                    if max(abs(i - i0), max(abs(j - j0), abs(k - k0))) != r:
                        continue                        # an inner ring's bin, seen already
                    b = (i * ny + j) * nz + k
                    for e in range(bin_start[b], bin_start[b + 1]):
                        bt, bx, by, bz, best = _try_triangle(px, py, pz, corners, spheres, bin_tris[e], bt, bx, by,
                                                             bz, best)
        edge = r * bin_size
        if bt >= 0 and best <= edge * edge:
            break
    return bt >= 0, bt, bx, by, bz, best


@njit(cache=True)
def _query_candidates(points, corners, spheres, start, tris, dist, shape, lat_origin, spacing):
    """Closest points of ``points`` (n, 3) through the node lists; ``found`` is False where the
    nearest node has no list (outside the band or the lattice)."""
    n = points.shape[0]
    r = 0.5 * math.sqrt(3.0) * spacing
    sq = np.empty(n)
    tri = np.zeros(n, dtype=np.int64)
    closest = np.empty((n, 3))
    found = np.zeros(n, dtype=np.bool_)
    for q in range(n):
        ok, bt, bx, by, bz, best = _search_lists(points[q, 0], points[q, 1], points[q, 2], corners, spheres, start,
                                                 tris, dist, shape, lat_origin, spacing, r)
        if not ok:
            continue
        sq[q] = best
        tri[q] = bt
        closest[q, 0], closest[q, 1], closest[q, 2] = bx, by, bz
        found[q] = True
    return sq, tri, closest, found


@njit(cache=True, parallel=True)
def surface_points(ijk, cell_origin, h, inside, rotation, position, corners, spheres, start, tris, dist, shape,
                   lat_origin, spacing, bin_start, bin_tris, bin_size, bin_shape, face_normals, e_min):
    """Everything ``boundary._SurfaceData`` computes for cells ``ijk`` (n, 3) of one rigid object
    (owner of them all, no other object near): closest points (object frame and world), triangle,
    distance, unit normal (world and object frame: from the surface point to the cell centre, away
    from the body; the face normal for a centre on the surface), and the image-point data
    (κ, offset, near and far points; ``boundary._image_points``). A cell whose nearest lattice
    node keeps no list (deeper than the lists' band: a grown ghost cell) is answered from the
    triangle bins (``_search_bins``, the lattice's ``bin_*``). ``found`` is False for cells neither
    answers (outside the lattice, or lists too large to keep): the caller must answer those another way."""
    n = ijk.shape[0]
    r = 0.5 * math.sqrt(3.0) * spacing
    found = np.zeros(n, dtype=np.bool_)
    tri = np.zeros(n, dtype=np.int64)
    dist_out = np.empty(n)
    local_out = np.empty((n, 3))
    world_out = np.empty((n, 3))
    normal_w = np.empty((n, 3))
    normal_l = np.empty((n, 3))
    kappa = np.empty(n)
    offset = np.empty(n)
    near = np.empty((n, 3))
    far = np.empty((n, 3))
    R = rotation
    for q in prange(n):
        x0 = cell_origin[0] + h * ijk[q, 0]
        x1 = cell_origin[1] + h * ijk[q, 1]
        x2 = cell_origin[2] + h * ijk[q, 2]
        y0, y1, y2 = x0 - position[0], x1 - position[1], x2 - position[2]
        l0 = y0 * R[0, 0] + y1 * R[1, 0] + y2 * R[2, 0]
        l1 = y0 * R[0, 1] + y1 * R[1, 1] + y2 * R[2, 1]
        l2 = y0 * R[0, 2] + y1 * R[1, 2] + y2 * R[2, 2]
        ok, t, c0, c1, c2, best = _search_lists(l0, l1, l2, corners, spheres, start, tris, dist, shape, lat_origin,
                                                spacing, r)
        if not ok:                                  # beyond the lists' band (a deep grown ghost cell)
            ok, t, c0, c1, c2, best = _search_bins(l0, l1, l2, corners, spheres, bin_start, bin_tris, lat_origin,
                                                   bin_size, bin_shape)
            if not ok:
                continue
        found[q] = True
        tri[q] = t
        d = math.sqrt(best)
        dist_out[q] = d
        local_out[q, 0], local_out[q, 1], local_out[q, 2] = c0, c1, c2
        w0 = c0 * R[0, 0] + c1 * R[0, 1] + c2 * R[0, 2] + position[0]
        w1 = c0 * R[1, 0] + c1 * R[1, 1] + c2 * R[1, 2] + position[1]
        w2 = c0 * R[2, 0] + c1 * R[2, 1] + c2 * R[2, 2] + position[2]
        world_out[q, 0], world_out[q, 1], world_out[q, 2] = w0, w1, w2
        sign = -1.0 if inside[q] else 1.0
        v0, v1, v2 = (x0 - w0) * sign, (x1 - w1) * sign, (x2 - w2) * sign
        length = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
        if length > 1e-6 * h:
            v0, v1, v2 = v0 / length, v1 / length, v2 / length
        else:
            f0, f1, f2 = face_normals[t, 0], face_normals[t, 1], face_normals[t, 2]
            v0 = f0 * R[0, 0] + f1 * R[0, 1] + f2 * R[0, 2]
            v1 = f0 * R[1, 0] + f1 * R[1, 1] + f2 * R[1, 2]
            v2 = f0 * R[2, 0] + f1 * R[2, 1] + f2 * R[2, 2]
        normal_w[q, 0], normal_w[q, 1], normal_w[q, 2] = v0, v1, v2
        normal_l[q, 0] = v0 * R[0, 0] + v1 * R[1, 0] + v2 * R[2, 0]
        normal_l[q, 1] = v0 * R[0, 1] + v1 * R[1, 1] + v2 * R[2, 1]
        normal_l[q, 2] = v0 * R[0, 2] + v1 * R[1, 2] + v2 * R[2, 2]
        xi = -d if inside[q] else d
        e = max(max(-xi, xi + e_min), e_min)
        k = (e * e - xi * xi) / (2.0 * e * h + h * h)
        kappa[q] = k
        offset[q] = e - xi - k * h
        near[q, 0], near[q, 1], near[q, 2] = w0 + e * v0, w1 + e * v1, w2 + e * v2
        far[q, 0], far[q, 1], far[q, 2] = w0 + (e + h) * v0, w1 + (e + h) * v1, w2 + (e + h) * v2
    return (found, tri, dist_out, local_out, world_out, normal_w, normal_l, kappa, offset, near, far)


def bounding_spheres(corners: np.ndarray) -> np.ndarray:
    """(triangles, 4) float32 balls (centre x, y, z, radius) each holding its triangle (``corners``
    (triangles, 9)): the centre is the centroid rounded to float32, the radius the farthest corner's
    distance from that rounded centre, rounded up, so the ball holds the exact triangle. 16 bytes a
    triangle: the closest-point search reads these before a triangle's 72 bytes of corners."""
    c = corners.reshape(-1, 3, 3)
    centre = c.mean(axis=1).astype(np.float32)
    reach = np.sqrt(((c - centre.astype(np.float64)[:, None, :]) ** 2).sum(axis=2)).max(axis=1)
    radius = reach.astype(np.float32)
    low = radius.astype(np.float64) < reach
    radius[low] = np.nextafter(radius[low], np.float32(np.inf))
    return np.ascontiguousarray(np.column_stack([centre, radius]), dtype=np.float32)


class CandidateLattice:
    """Exact closest-point queries near a rigid mesh from per-node triangle lists (module docstring).

    Built once per mesh in its own frame on the nodes of its SDF lattice (``values``: signed
    distance at the nodes, exact in magnitude); nodes farther than ``band`` from the surface keep
    no list, and queries there report ``found`` False. ``fits`` is False (and every query reports
    ``found`` False) when the lists would hold more than ``max_entries`` triangle entries (8 bytes
    each): a large object on a fine grid keeps the AABB tree instead of gigabytes of lists.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, values: np.ndarray, origin: np.ndarray,
                 spacing: float, band: float, max_entries: int = MAX_CANDIDATE_ENTRIES) -> None:
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.origin = np.asarray(origin, dtype=np.float64)
        self.spacing = float(spacing)
        self.shape = np.asarray(values.shape, dtype=np.int64)
        bin_size = 2.0 * self.spacing
        bin_shape = np.maximum(np.ceil((self.shape - 1) * self.spacing / bin_size).astype(np.int64) + 1, 1)
        bin_start, bin_tris = _bin_triangles(self.vertices, self.faces, self.origin, bin_size, bin_shape)
        extent = float(np.linalg.norm(self.vertices.max(axis=0) - self.vertices.min(axis=0)))
        # slack: the lattice's distances and this module's differ by rounding (~1e-16 of the size)
        self.corners = np.ascontiguousarray(self.vertices[self.faces].reshape(-1, 9))
        self.spheres = bounding_spheres(self.corners)
        self.start, self.tris, dist, self.fits = _build_candidates(
            self.corners, np.ascontiguousarray(values, dtype=np.float64), self.origin, self.spacing,
            float(band), 1e-9 * extent, bin_start, bin_tris, self.origin, bin_size, bin_shape, int(max_entries))
        # the bins answer points beyond the lists' band (surface_points); none when the lists do not fit
        self.bin_size = bin_size
        self.bin_start, self.bin_tris, self.bin_shape = bin_start, bin_tris, bin_shape
        if not self.fits:
            self.start = np.zeros(int(np.prod(self.shape)) + 1, dtype=np.int64)    # every list empty
            self.bin_start, self.bin_tris = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
            self.bin_shape = np.zeros(3, dtype=np.int64)
        # d(c, T) serves only as a lower bound to stop a search early: float32 rounded down halves
        # the memory (about 8 bytes per entry, ≈ 40 MB for 20k triangles at h/2) and keeps the bound
        d32 = dist.astype(np.float32)
        high = d32.astype(np.float64) > dist
        d32[high] = np.nextafter(d32[high], np.float32(-np.inf))
        self.dist = d32

    def query(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Squared distance (n,), triangle (n,), closest point (n, 3) and found (n,) bool."""
        return _query_candidates(np.ascontiguousarray(local, dtype=np.float64), self.corners, self.spheres, self.start,
                                 self.tris, self.dist, self.shape, self.origin, self.spacing)


# --------------------------------------------------------------------------- image stencils

@njit(cache=True, inline="always")
def _face_neighbour(q0, q1, q2, a, sgn):
    """Indices of the face-neighbour of cell (q0, q1, q2) one step ``sgn`` (±1) along axis ``a``."""
    if a == 0:
        return q0 + sgn, q1, q2
    if a == 1:
        return q0, q1 + sgn, q2
    return q0, q1, q2 + sgn


@njit(cache=True, inline="always")
def _another_objects(cell_owner, cell, own):
    """Whether window cell ``cell`` belongs to an object other than ``own`` (cell_owner ≥ 0)."""
    other = cell_owner[cell]
    return other >= 0 and other != own


@njit(cache=True, inline="always")
def _stencil_row(px, py, pz, r, col, coef, cells, weights, origin, h, shape, blocked, unknown_ijk, owner,
                 cell_owner, use_owner, near, contact_weight, max_own):
    """Row r's trilinear stencil of the point (px, py, pz), times ``coef``, into ``cells``/``weights``
    columns col … col + 7 (rules of :func:`image_stencil_terms`; ``near``: the point is the row's
    near image point, which may make it a contact); returns 2 for a contact's fallback, 1 for
    another fallback, else 0."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    f0 = (px - origin[0]) / h
    f1 = (py - origin[1]) / h
    f2 = (pz - origin[2]) / h
    b0, b1, b2 = math.floor(f0), math.floor(f1), math.floor(f2)
    t0, t1, t2 = f0 - b0, f1 - b1, f2 - b2
    total = 0.0
    other_weight = 0.0
    own = 0.0               # kept weight on the row's own cell
    stopped = False         # whether a cell with weight was dropped
    self_cell = (unknown_ijk[r, 0] * ny + unknown_ijk[r, 1]) * nz + unknown_ijk[r, 2]
    c = col
    for d0 in range(2):
        i = min(max(int(b0) + d0, 0), nx - 1)
        w0 = t0 if d0 else 1.0 - t0
        for d1 in range(2):
            j = min(max(int(b1) + d1, 0), ny - 1)
            w1 = t1 if d1 else 1.0 - t1
            for d2 in range(2):
                k = min(max(int(b2) + d2, 0), nz - 1)
                w2 = t2 if d2 else 1.0 - t2
                cell = (i * ny + j) * nz + k
                cells[r, c] = cell
                stop = blocked[cell]
                if use_owner and _another_objects(cell_owner, cell, owner[r]):
                    stop = True
                    other_weight += w0 * w1 * w2
                if stop and w0 * w1 * w2 > 0.0:
                    stopped = True
                w = 0.0 if stop else w0 * w1 * w2
                if cell == self_cell:
                    own += w
                weights[r, c] = w
                total += w
                c += 1
    lost = 0
    touching = near and other_weight > contact_weight
    shift = stopped and own > 0.0
    facing = not near or own <= max_own
    if total < 1e-3 or touching or (shift and total - own < 1e-3) or not facing:
        lost = 2 if touching else 1
        m = 0
        for c in range(col, col + 8):
            weights[r, c] = 0.0
        for a in range(3):
            for sgn in (1, -1):
                q0, q1, q2 = _face_neighbour(unknown_ijk[r, 0], unknown_ijk[r, 1], unknown_ijk[r, 2], a, sgn)
                q0 = min(max(q0, 0), nx - 1)
                q1 = min(max(q1, 0), ny - 1)
                q2 = min(max(q2, 0), nz - 1)
                cell = (q0 * ny + q1) * nz + q2
                if not (blocked[cell] or (use_owner and _another_objects(cell_owner, cell, owner[r]))):
                    cells[r, col + m] = cell
                    m += 1
        for c in range(col, col + m):
            weights[r, c] = 1.0 / m
        total = 1.0 if m > 0 else 0.0
    elif shift:             # the dropped weight goes to the cells other than the row's own
        factor = (1.0 - own) / (total - own)
        for c in range(col, col + 8):
            if cells[r, c] != self_cell:
                weights[r, c] = weights[r, c] * factor
        total = 1.0
    if total > 0.0:
        for c in range(col, col + 8):
            weights[r, c] = coef * (weights[r, c] / total)
    return lost


@njit(cache=True, parallel=True)
def image_stencil_terms(points, coefs, origin, h, shape, blocked, unknown_ijk, owner, cell_owner, use_owner,
                        contact_weight, max_own):
    """Σ_t coefs[t, r]·p(points[t, r]) for T terms, ``points`` (T, n, 3), ``coefs`` (T, n), as
    trilinear stencils on a grid (``origin``, ``h``, ``shape``): cells (n, 8T) (flat, clipped) and
    weights (n, 8T), term t's in columns 8t … 8t + 7 times its coefficient. Blocked cells (and,
    with ``use_owner``, cells of another object: ``cell_owner`` ≥ 0 and not the row's) are
    dropped and their weight given to the kept cells other than the row's own; a stencil keeping
    less than 1e-3 of its weight (or of it outside the row's own cell), or the
    first term's (the near image point) losing more than ``contact_weight`` of it to another
    object's cells (a contact: ``constants.CONTACT_WEIGHT``, passed in so that Numba's cache never
    keeps an old value), or the first term's weighing the row's own cell more than ``max_own``
    (``constants.MAX_NEAR_OWN_WEIGHT``: its surface point does not face the cell),
    falls back to the mean of the unknown cell's face-neighbours that are
    neither blocked nor another object's. Returns also the number of fallbacks and, per
    row, whether a term of it is a contact (n,) bool. Same rules as
    ``boundary._trilinear``; one parallel pass over the rows."""
    T, n = points.shape[0], points.shape[1]
    cells = np.zeros((n, 8 * T), dtype=np.int64)
    weights = np.zeros((n, 8 * T))
    contact = np.zeros(n, dtype=np.bool_)
    lost_count = 0
    for r in prange(n):
        for t in range(T):
            code = _stencil_row(points[t, r, 0], points[t, r, 1], points[t, r, 2], r, 8 * t, coefs[t, r],
                                cells, weights, origin, h, shape, blocked, unknown_ijk, owner, cell_owner,
                                use_owner, t == 0, contact_weight, max_own)
            lost_count += 1 if code > 0 else 0
            if code == 2:
                contact[r] = True
    return cells, weights, lost_count, contact


@njit(cache=True, parallel=True)
def assemble_weights(cells, weights, row_of, back_of, normals, use_back):
    """CSR arrays of W_gg and W_gf from stencils ``cells``/``weights`` (rows, m) over window cells.

    ``row_of`` maps a window cell to its unknown row (−1: known); with ``use_back``, a stencil cell
    that has a back value (``back_of`` of its row ≥ 0) contributes the value whose normal faces the
    interpolating row's side. Columns of W_gf are numbered in increasing cell order (``cols``).
    Each row's entries are sorted by column with duplicates summed (canonical CSR).
    Same rules as the assembly in ``boundary._image_weights``. Rows run in parallel.
    Returns (gg_indptr, gg_indices, gg_data, gf_indptr, gf_indices, gf_data, cols).
    """
    n, m = cells.shape
    is_gg = np.zeros((n, m), dtype=np.bool_)
    col = np.empty((n, m), dtype=np.int64)
    mark = np.zeros(row_of.shape[0], dtype=np.bool_)
    for r in prange(n):
        for e in range(m):
            if weights[r, e] == 0.0:
                continue
            cell = cells[r, e]
            c = row_of[cell]
            if c >= 0:
                if use_back:
                    b = back_of[c]
                    if b >= 0:
                        own_b = (normals[r, 0] * normals[b, 0] + normals[r, 1] * normals[b, 1]
                                 + normals[r, 2] * normals[b, 2])
                        own_c = (normals[r, 0] * normals[c, 0] + normals[r, 1] * normals[c, 1]
                                 + normals[r, 2] * normals[c, 2])
                        if own_b > own_c:
                            c = b
                is_gg[r, e] = True
                col[r, e] = c
            else:
                mark[cell] = True           # every writer stores True: the order does not matter
                col[r, e] = cell
    cols = np.flatnonzero(mark)
    number = np.empty(row_of.shape[0], dtype=np.int64)      # read only where marked
    number[cols] = np.arange(cols.shape[0])
    # each row's entries sorted by column, repeats summed, into its own row of scratch arrays
    sc = np.empty((2, n, m), dtype=np.int64)
    sv = np.empty((2, n, m))
    count = np.zeros((2, n + 1), dtype=np.int64)
    for r in prange(n):
        for part in range(2):                   # 0: W_gg, 1: W_gf
            k = 0
            for e in range(m):
                if weights[r, e] == 0.0 or is_gg[r, e] != (part == 0):
                    continue
                c = col[r, e] if part == 0 else number[col[r, e]]
                pos = k
                while pos > 0 and sc[part, r, pos - 1] > c:
                    pos -= 1
                if pos > 0 and sc[part, r, pos - 1] == c:
                    sv[part, r, pos - 1] += weights[r, e]
                    continue
                for s in range(k, pos, -1):
                    sc[part, r, s] = sc[part, r, s - 1]
                    sv[part, r, s] = sv[part, r, s - 1]
                sc[part, r, pos] = c
                sv[part, r, pos] = weights[r, e]
                k += 1
            count[part, r + 1] = k
    gg_ptr = np.cumsum(count[0])
    gf_ptr = np.cumsum(count[1])
    gg_idx = np.empty(gg_ptr[n], dtype=np.int64)
    gg_val = np.empty(gg_ptr[n])
    gf_idx = np.empty(gf_ptr[n], dtype=np.int64)
    gf_val = np.empty(gf_ptr[n])
    for r in prange(n):
        for s in range(count[0, r + 1]):
            gg_idx[gg_ptr[r] + s] = sc[0, r, s]
            gg_val[gg_ptr[r] + s] = sv[0, r, s]
        for s in range(count[1, r + 1]):
            gf_idx[gf_ptr[r] + s] = sc[1, r, s]
            gf_val[gf_ptr[r] + s] = sv[1, r, s]
    return gg_ptr, gg_idx, gg_val, gf_ptr, gf_idx, gf_val, cols


@njit(cache=True)
def _reach_base(x, origin, h, least):
    """The first of the two cells (index along one axis) a point's trilinear stencil reaches, and
    whether the second one is reached too: not where the point lies within ``least`` (a fraction
    of a cell) of the first's centre plane or the second's, whose weight would be below it."""
    f = (x - origin) / h
    b = int(math.floor(f))
    frac = f - b
    if frac < least:
        return b, False
    if frac > 1.0 - least:
        return b + 1, False
    return b, True


@njit(cache=True)
def reached_cells(points, origin, h, shape, least):
    """Flat indices (n, 8) of the cells whose trilinear weight at each point is at least ``least``
    along each axis (a corner below it repeats the nearer one), clipped to the grid: the cells an
    image stencil reaches (``boundary._reached``, the reference)."""
    n = points.shape[0]
    out = np.empty((n, 8), dtype=np.int64)
    nx, ny, nz = shape[0], shape[1], shape[2]
    for r in range(n):
        b0, two0 = _reach_base(points[r, 0], origin[0], h, least)
        b1, two1 = _reach_base(points[r, 1], origin[1], h, least)
        b2, two2 = _reach_base(points[r, 2], origin[2], h, least)
        c = 0
        for d0 in range(2):
            i = min(max(b0 + (d0 if two0 else 0), 0), nx - 1)
            for d1 in range(2):
                j = min(max(b1 + (d1 if two1 else 0), 0), ny - 1)
                for d2 in range(2):
                    k = min(max(b2 + (d2 if two2 else 0), 0), nz - 1)
                    out[r, c] = (i * ny + j) * nz + k
                    c += 1
    return out


# --------------------------------------------------------------------------- window bookkeeping

@njit(cache=True)
def window_to_global(flat, wshape, lo, gshape):
    """Flat indices in the whole grid (``gshape``) of flat indices into a window of shape ``wshape``
    whose first cell is the grid's cell ``lo``; as ``np.ravel_multi_index(np.unravel_index(...) + lo)``."""
    out = np.empty(flat.shape[0], dtype=np.int64)
    wx, wy, wz = wshape[0], wshape[1], wshape[2]
    # grid-flat minus window-flat depends only on the window row (i, j): one division per index
    shift = np.empty(wx * wy, dtype=np.int64)
    for i in range(wx):
        for j in range(wy):
            shift[i * wy + j] = ((i + lo[0]) * gshape[1] + j + lo[1]) * gshape[2] + lo[2] - (i * wy + j) * wz
    for q in range(flat.shape[0]):
        f = flat[q]
        out[q] = f + shift[f // wz]
    return out


@njit(cache=True)
def mask_to_global(mask, lo, gshape):
    """Grid-flat indices, ascending, of the True cells of ``mask`` (a window starting at the grid's
    cell ``lo``); as ``window_to_global(np.flatnonzero(mask), ...)``."""
    wx, wy, wz = mask.shape
    out = np.empty(_count(mask), dtype=np.int64)
    m = 0
    for i in range(wx):
        for j in range(wy):
            base = ((i + lo[0]) * gshape[1] + j + lo[1]) * gshape[2] + lo[2]
            for k in range(wz):
                if mask[i, j, k]:
                    out[m] = base + k
                    m += 1
    return out


@njit(cache=True)
def ghost_mask(solid):
    """Solid cells with a non-solid face-neighbour (neighbours wrap round the box's edges, as
    ``np.roll``)."""
    nx, ny, nz = solid.shape
    out = np.zeros(solid.shape, dtype=np.bool_)
    for i in range(nx):
        ip, im = (i + 1) % nx, (i - 1) % nx
        for j in range(ny):
            jp, jm = (j + 1) % ny, (j - 1) % ny
            for k in range(nz):
                if not solid[i, j, k]:
                    continue
                kp = k + 1 if k + 1 < nz else 0
                km = k - 1 if k > 0 else nz - 1
                if (not solid[ip, j, k] or not solid[im, j, k] or not solid[i, jp, k] or not solid[i, jm, k]
                        or not solid[i, j, kp] or not solid[i, j, km]):
                    out[i, j, k] = True
    return out


@njit(cache=True)
def posed_bounds(vertices, rotation, position):
    """(2, 3) axis-aligned bounds of vertices (n, 3) posed as ``vertices @ rotation.T + position``."""
    out = np.empty((2, 3))
    for a in range(3):
        out[0, a] = np.inf
        out[1, a] = -np.inf
    for q in range(vertices.shape[0]):
        v0, v1, v2 = vertices[q, 0], vertices[q, 1], vertices[q, 2]
        for a in range(3):
            x = v0 * rotation[a, 0] + v1 * rotation[a, 1] + v2 * rotation[a, 2] + position[a]
            if x < out[0, a]:
                out[0, a] = x
            if x > out[1, a]:
                out[1, a] = x
    return out


@njit(cache=True)
def back_side_links(ijk, normals, solid, threshold):
    """Rows r and window-flat fluid neighbours f of ghost cells ``ijk`` (n, 3) with a fluid
    face-neighbour in a direction d with normals[r]·d < ``threshold``; directions in the order
    +x, −x, +y, −y, +z, −z, rows ascending within each (as ``boundary._BackSides``)."""
    nx, ny, nz = solid.shape
    n = ijk.shape[0]
    rows = np.empty(6 * n, dtype=np.int64)
    fluid = np.empty(6 * n, dtype=np.int64)
    m = 0
    for a in range(3):
        for sgn in (1, -1):
            for r in range(n):
                q0, q1, q2 = _face_neighbour(ijk[r, 0], ijk[r, 1], ijk[r, 2], a, sgn)
                if q0 < 0 or q1 < 0 or q2 < 0 or q0 >= nx or q1 >= ny or q2 >= nz:
                    continue
                if solid[q0, q1, q2] or sgn * normals[r, a] >= threshold:
                    continue
                rows[m] = r
                fluid[m] = (q0 * ny + q1) * nz + q2
                m += 1
    return rows[:m].copy(), fluid[:m].copy()


@njit(cache=True)
def merge_region(distance, owner, solid, d, lo, k):
    """Merge object k's signed distances ``d`` of the cell box starting at ``lo`` into the window's
    ``distance``/``owner``/``solid`` in place: the nearer object owns a cell, any object's inside
    makes it solid (as the NumPy loop in ``boundary.classify``)."""
    n0, n1, n2 = d.shape
    e0 = lo[2]
    for i in range(n0):
        for j in range(n1):
            a, b = i + lo[0], j + lo[1]
            dist_row, owner_row, solid_row, d_row = distance[a, b], owner[a, b], solid[a, b], d[i, j]
            for c in range(n2):
                v = d_row[c]
                if v < dist_row[c + e0]:
                    dist_row[c + e0] = v
                    owner_row[c + e0] = k
                if v < 0.0:
                    solid_row[c + e0] = True


# --------------------------------------------------------------------------- ghost system

@njit(cache=True)
def scaled_norm(indptr, indices, data):
    """For the system (I − W) x = b with W in CSR: the pivots (n,) 1 − W_rr and the contraction
    factor q = max_r Σ_{j≠r} |W_rj| / (1 − W_rr) of its Gauss–Seidel sweeps in the max norm
    (+inf if a pivot is not positive). A ghost cell's image stencil often reaches the cell itself
    (W_rr up to about 0.5): dividing it out, rather than sweeping x = W x + b, is what makes q small."""
    n = indptr.shape[0] - 1
    pivot = np.ones(n)
    off = np.zeros(n)
    for r in range(n):
        for e in range(indptr[r], indptr[r + 1]):
            if indices[e] == r:
                pivot[r] -= data[e]
            else:
                off[r] += abs(data[e])
    q = 0.0
    for r in range(n):
        if pivot[r] <= 0.0:
            return pivot, np.inf
        q = max(q, off[r] / pivot[r])
    return pivot, q


@njit(cache=True)
def fixed_point_solve(indptr, indices, data, pivot, rhs, norm, tol, max_sweeps):
    """Solve (I − W) x = rhs (W in CSR, ``pivot`` = 1 − diag W and ``norm`` = q < 1 from
    :func:`scaled_norm`) by Gauss–Seidel sweeps x_r ← (rhs_r + Σ_{j≠r} W_rj x_j) / pivot_r, from
    x = rhs / pivot. Each sweep contracts the error by at least q in the max norm, so after a sweep
    that changed x by δ the error is at most q/(1 − q)·δ (a rigorous bound); stop when that is
    ≤ ``tol``·‖x‖∞. Returns (x, sweeps, converged)."""
    n = rhs.shape[0]
    x = rhs / pivot
    return _sweeps(x, rhs, pivot, np.arange(n), 0.0, indptr, indices, data, data, 0.0, norm, tol, max_sweeps)


@njit(cache=True, inline="always")
def _sweeps(x, rhs, pivot, rows, size0, indptr, indices, w0, w_step, alpha, norm, tol, max_sweeps):
    """fixed_point_solve's sweeps over ``rows`` (ascending; the others' values x are final, the
    largest of them ``size0``), with the weights w₀ + α·w_step. Returns (x, sweeps, converged)."""
    factor = norm / (1.0 - norm)
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        size = size0
        for q in range(rows.shape[0]):
            r = uint64(rows[q])
            v = rhs[r]
            for e in range(indptr[r], indptr[r + 1]):
                u = uint64(e)
                j = uint64(indices[u])
                if j != r:
                    v += (w0[u] + alpha * w_step[u]) * x[j]
            v /= pivot[r]
            change = max(change, abs(v - x[r]))
            size = max(size, abs(v))
            x[r] = v
        if factor * change <= tol * size:
            return x, sweep, True
    return x, max_sweeps, False


@njit(cache=True)
def _count(mask):
    """Number of True cells of a 3-D mask."""
    nx, ny, nz = mask.shape
    count = 0
    for i in range(nx):
        for j in range(ny):
            for k in range(nz):
                if mask[i, j, k]:
                    count += 1
    return count


@njit(cache=True)
def mask_indices(mask):
    """(n, 3) indices of the True cells of a 3-D mask in C order; as ``np.argwhere(mask)``."""
    nx, ny, nz = mask.shape
    out = np.empty((_count(mask), 3), dtype=np.int64)
    m = 0
    for i in range(nx):
        for j in range(ny):
            for k in range(nz):
                if mask[i, j, k]:
                    out[m, 0], out[m, 1], out[m, 2] = i, j, k
                    m += 1
    return out


# --------------------------------------------------------------------------- one rigid body, one call

@njit(cache=True)
def _unknown_cells(ghost_ijk, fresh_ijk, solid):
    """(unknown (n, 3), inside (n,)): the ghost cells then the fresh cells, and which are solid."""
    unknown = np.empty((ghost_ijk.shape[0] + fresh_ijk.shape[0], 3), dtype=np.int64)
    unknown[:ghost_ijk.shape[0]] = ghost_ijk
    unknown[ghost_ijk.shape[0]:] = fresh_ijk
    inside = np.empty(unknown.shape[0], dtype=np.bool_)
    for r in range(unknown.shape[0]):
        inside[r] = solid[unknown[r, 0], unknown[r, 1], unknown[r, 2]]
    return unknown, inside


@njit(cache=True)
def _pick_rows(source, previous, asked):
    """Rows (n, ...) taken from ``previous`` (source ≥ 0: that row) or ``asked`` (source −1 − q: row q)."""
    out = np.empty((source.shape[0],) + previous.shape[1:], dtype=previous.dtype)
    for r in range(source.shape[0]):
        if source[r] >= 0:
            out[r] = previous[source[r]]
        else:
            out[r] = asked[-1 - source[r]]
    return out


@njit(cache=True)
def locate_unknowns(d, region_lo, wshape, before, h, cell_origin, rotation, position, corners, spheres, start, tris,
                    dist, lat_shape, lat_origin, spacing, bin_start, bin_tris, bin_size, bin_shape, face_normals, e_min,
                    max_layers, least):
    """The classification and unknown-cell search of ``boundary.GhostCells.update`` for a single
    rigid body whose candidate lists answer every query, in one compiled call (the steps and their
    order are those of the NumPy path: ``classify``, fresh cells, ``ghost_mask``, then
    ``surface_points`` over the unknowns, grown by the solid cells their image stencils reach, at
    most ``max_layers`` times; a stencil reaches the cells of weight at least ``least`` along each
    axis: :func:`reached_cells`).

    ``d``: the body's signed distances on the cell box starting at window cell ``region_lo``;
    ``wshape``: the window's shape (3,); ``before``: window mask of last update's solid cells.
    Returns (ok, solid, owner, fresh, ghost, unknown_ijk, inside, surface) with ``surface`` the
    tuple of :func:`surface_points`; ok is False (and the rest unusable) when some unknown is not
    answered by the candidate lists or the triangle bins.
    """
    nx, ny, nz = wshape[0], wshape[1], wshape[2]
    solid = np.zeros((nx, ny, nz), dtype=np.bool_)
    owner = np.full((nx, ny, nz), -1, dtype=np.int16)
    merge_region(np.full((nx, ny, nz), np.inf), owner, solid, d, region_lo, 0)
    fresh = before & ~solid
    ghost = ghost_mask(solid)
    slot = np.empty(0, dtype=np.int64)                    # window cell → its row in the last pass
    f = mask_indices(fresh)
    unknown, inside = _unknown_cells(mask_indices(ghost), f, solid)
    n = unknown.shape[0]
    surface = surface_points(unknown, cell_origin, h, inside, rotation, position, corners, spheres, start, tris,
                             dist, lat_shape, lat_origin, spacing, bin_start, bin_tris, bin_size, bin_shape,
                             face_normals, e_min)
    for layer in range(max_layers):
        if layer:           # after growing: the cells of the last pass keep their answers, new ones are asked
            if layer == 1:
                slot = np.full(nx * ny * nz, -1, dtype=np.int64)
            for r in range(n):
                slot[(unknown[r, 0] * ny + unknown[r, 1]) * nz + unknown[r, 2]] = r
            previous = surface
            unknown, inside = _unknown_cells(mask_indices(ghost), f, solid)
            n = unknown.shape[0]
            source = np.empty(n, dtype=np.int64)          # ≥ 0: row of the last pass; −1 − q: new row q
            fresh_rows = 0
            for r in range(n):
                last = slot[(unknown[r, 0] * ny + unknown[r, 1]) * nz + unknown[r, 2]]
                if last >= 0:
                    source[r] = last
                else:
                    source[r] = -1 - fresh_rows
                    fresh_rows += 1
            ask = np.empty((fresh_rows, 3), dtype=np.int64)
            ask_inside = np.empty(fresh_rows, dtype=np.bool_)
            for r in range(n):
                if source[r] < 0:
                    ask[-1 - source[r]] = unknown[r]
                    ask_inside[-1 - source[r]] = inside[r]
            asked = surface_points(ask, cell_origin, h, ask_inside, rotation, position, corners, spheres, start,
                                   tris, dist, lat_shape, lat_origin, spacing, bin_start, bin_tris, bin_size,
                                   bin_shape, face_normals, e_min)
            surface = (_pick_rows(source, previous[0], asked[0]), _pick_rows(source, previous[1], asked[1]),
                       _pick_rows(source, previous[2], asked[2]), _pick_rows(source, previous[3], asked[3]),
                       _pick_rows(source, previous[4], asked[4]), _pick_rows(source, previous[5], asked[5]),
                       _pick_rows(source, previous[6], asked[6]), _pick_rows(source, previous[7], asked[7]),
                       _pick_rows(source, previous[8], asked[8]), _pick_rows(source, previous[9], asked[9]),
                       _pick_rows(source, previous[10], asked[10]))
        for r in range(n):
            if not surface[0][r]:
                return False, solid, owner, fresh, ghost, unknown, inside, surface
        if layer == max_layers - 1:
            break           # no pass left to make grown cells unknowns: they stay blocked
        grown = 0
        for points in (surface[9], surface[10]):
            for r in range(n):
                b0, two0 = _reach_base(points[r, 0], cell_origin[0], h, least)
                b1, two1 = _reach_base(points[r, 1], cell_origin[1], h, least)
                b2, two2 = _reach_base(points[r, 2], cell_origin[2], h, least)
                for i in range(min(max(b0, 0), nx - 1), min(max(b0 + two0, 0), nx - 1) + 1):
                    for j in range(min(max(b1, 0), ny - 1), min(max(b1 + two1, 0), ny - 1) + 1):
                        for k in range(min(max(b2, 0), nz - 1), min(max(b2 + two2, 0), nz - 1) + 1):
                            if solid[i, j, k] and not ghost[i, j, k]:
                                ghost[i, j, k] = True
                                grown += 1
        if grown == 0:
            break
    return True, solid, owner, fresh, ghost, unknown, inside, surface


@njit(cache=True, parallel=True)
def operator_apply(m_ptr, m_cell, m_val, n_ptr, n_idx, n_val, p, accel, density, into):
    """x = M p + ρ N a for static ghost cells (``boundary.ghost_operator``): M in CSR whose columns
    are flat cells of the field ``p`` (read in float64), N in CSR over the rows' accelerations
    ``accel`` (m/s²), ``density`` ρ. Rows run in parallel. Row r < ``into.size`` is also written to
    p[into[r]] (rounded to p's dtype): M's columns are air cells only, so no row reads a cell
    another writes. Returns x (float64).

    Entries and cells are indexed as ``uint64``, which spares Numba's check for negative indices on
    each of them: about a third of the time (0.17–0.19 against 0.53 ms for 13 776 rows of about 15
    entries on the 2-core VM; bench/RESULTS.md, twentieth session), the same values."""
    n = m_ptr.shape[0] - 1
    x = np.empty(n)
    for r in prange(n):
        v = 0.0
        for e in range(m_ptr[r], m_ptr[r + 1]):
            u = uint64(e)
            v += m_val[u] * np.float64(p[uint64(m_cell[u])])
        w = 0.0
        for e in range(n_ptr[r], n_ptr[r + 1]):
            u = uint64(e)
            w += n_val[u] * accel[uint64(n_idx[u])]
        x[r] = v + density * w
        if r < into.shape[0]:
            p[uint64(into[r])] = x[r]
    return x


@njit(cache=True)
def flux_balance(p, back, inputs, scale, face_ptr, face_src, face_fluid, count_inv, add_ptr, add_dst, vol_ptr,
                 vol_idx):
    """Each balanced object's volume balance (``flux_balance``; arrays as ``Balance.arrays``) on the
    flat field ``p`` (values rounded to its dtype) and the back values ``back`` (float64), in place:
    λ_b = (scale · Σ inputs[vol_idx] − Σ (v − p[face_fluid])) / F_b added to the values ``add_dst``
    (``inputs``: the step's boundary input, float64; ``scale`` = ρ/h). Sums in float64, in array
    order. A few thousand faces an object: one thread."""
    for b in range(face_ptr.shape[0] - 1):
        s = 0.0
        for e in range(face_ptr[b], face_ptr[b + 1]):
            src = face_src[e]
            v = np.float64(p[src]) if src >= 0 else back[-1 - src]
            s += v - np.float64(p[face_fluid[e]])
        q = 0.0
        for e in range(vol_ptr[b], vol_ptr[b + 1]):
            q += inputs[vol_idx[e]]
        lam = (scale * q - s) * count_inv[b]
        for e in range(add_ptr[b], add_ptr[b + 1]):
            d = add_dst[e]
            if d >= 0:
                p[d] = np.float64(p[d]) + lam
            else:
                back[-1 - d] += lam


@njit(cache=True, inline="always")
def _projected_barycentric(p0, p1, p2, vertices, faces, f):
    """Barycentric coordinates (u, v, w) of a point's projection onto the plane of triangle f
    (−inf for a degenerate triangle, never settled on)."""
    a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
    a0, a1, a2 = vertices[a, 0], vertices[a, 1], vertices[a, 2]
    e00, e01, e02 = vertices[b, 0] - a0, vertices[b, 1] - a1, vertices[b, 2] - a2
    e10, e11, e12 = vertices[c, 0] - a0, vertices[c, 1] - a1, vertices[c, 2] - a2
    q0, q1, q2 = p0 - a0, p1 - a1, p2 - a2
    d00 = e00 * e00 + e01 * e01 + e02 * e02
    d01 = e00 * e10 + e01 * e11 + e02 * e12
    d11 = e10 * e10 + e11 * e11 + e12 * e12
    d20 = q0 * e00 + q1 * e01 + q2 * e02
    d21 = q0 * e10 + q1 * e11 + q2 * e12
    denom = d00 * d11 - d01 * d01
    if denom <= 0.0:
        return -np.inf, -np.inf, -np.inf
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    return 1.0 - v - w, v, w


@njit(cache=True, parallel=True)
def walk_triangles(points, start, vertices, faces, neighbours):
    """For each point (n, 3) near a triangle mesh, the triangle (n,) its projection falls in:
    from ``start`` (n,), step across the edge opposite the most negative barycentric coordinate
    (``neighbours`` (F, 3): meshes.face_neighbours) until none is negative, at most 32 steps;
    where the walk leaves the mesh or does not settle, the triangle met whose smallest coordinate
    is largest. Points run in parallel."""
    n = points.shape[0]
    out = np.empty(n, dtype=np.int64)
    for q in prange(n):
        f = start[q]
        best, best_f = -np.inf, f
        for _ in range(32):
            u, v, w = _projected_barycentric(points[q, 0], points[q, 1], points[q, 2], vertices, faces, f)
            k, low = 0, u
            if v < low:
                k, low = 1, v
            if w < low:
                k, low = 2, w
            if low > best:
                best, best_f = low, f
            if low >= 0.0:
                break
            f = neighbours[f, k]
            if f < 0:
                break
        out[q] = best_f
    return out


# --------------------------------------------------------------------------- keyed boundary systems
# (boundary_keys: both key systems on one set of rows, and the steps between)

@njit(cache=True)
def sorted_positions(haystack, needles):
    """np.searchsorted(haystack, needles) for ascending ``needles`` too: one merge walk, O(n + m)."""
    out = np.empty(needles.shape[0], dtype=np.int64)
    pos = 0
    n = haystack.shape[0]
    for q in range(needles.shape[0]):
        v = needles[q]
        while pos < n and haystack[pos] < v:
            pos += 1
        out[q] = pos
    return out


@njit(cache=True)
def rows_start_step(src0, src1, a0, a1):
    """(start, step) (n, c) of per-row values a0 (S₀'s rows, c columns) and a1 (S₁'s): a row's value
    at the key (S₀'s, or S₁'s where S₀ has none) and its change to S₁ (0 where one side has none)."""
    n, c = src0.shape[0], a0.shape[1]
    start = np.empty((n, c))
    step = np.zeros((n, c))
    for r in range(n):
        i, j = src0[r], src1[r]
        for a in range(c):
            v = a0[i, a] if i >= 0 else a1[j, a]
            start[r, a] = v
            if i >= 0 and j >= 0:
                step[r, a] = a1[j, a] - v
    return start, step


@njit(cache=True)
def _row_entry(idx, v0, v1, first, end, slot, stamp, r, c, w0, w1):
    """Add (w0, w1) at column c to the row being built in idx/v0/v1[first:end]: summed into the
    column's entry if the row has one (``stamp[c]`` = r, at ``slot[c]``), else appended. Returns
    the new end."""
    if stamp[c] == r:
        v0[slot[c]] += w0
        v1[slot[c]] += w1
        return end
    stamp[c] = r
    slot[c] = end
    idx[end] = c
    v0[end] = w0
    v1[end] = w1
    return end + 1


@njit(cache=True)
def _sort_row(idx, v0, v1, first, end):
    """Sort the entries idx/v0/v1[first:end] by column (insertion sort: rows hold a few dozen)."""
    for e in range(first + 1, end):
        c, a, b = idx[e], v0[e], v1[e]
        s = e
        while s > first and idx[s - 1] > c:
            idx[s], v0[s], v1[s] = idx[s - 1], v0[s - 1], v1[s - 1]
            s -= 1
        idx[s], v0[s], v1[s] = c, a, b


@njit(cache=True)
def merge_rows(src0, src1, gg0_ptr, gg0_idx, gg0_val, g0_target, gf0_ptr, gf0_idx, gf0_val, f0_col, n_fluid,
               gg1_ptr, gg1_idx, gg1_val, g1_target, gf1_ptr, gf1_idx, gf1_val, f1_target):
    """Both systems' rows on the rows of ``boundary_keys._Union``: row r gets the entries of S₀'s row src0[r]
    (weights w₀) and of S₁'s row src1[r] (weights w₁); where one side has no row (−1), the other's
    weights stand for both. Columns are moved by the codes ``g0_target``/``g1_target`` (each
    system's unknown-cell columns) and ``f1_target`` (S₁'s air columns): ≥ 0 a row, −2 − u the
    union's air column u (of ``n_fluid``), −1 dropped; ``f0_col`` numbers S₀'s air columns in the
    union. Each row's entries come out sorted by column with repeats summed. Returns (gg indptr,
    indices, w₀, w₁ − w₀, gf indptr, indices, w₀, w₁ − w₀, weights dropped)."""
    n = src0.shape[0]
    cap = gg0_idx.shape[0] + gf0_idx.shape[0] + gg1_idx.shape[0] + gf1_idx.shape[0] + 1
    g_ptr = np.zeros(n + 1, dtype=np.int64)
    g_idx = np.empty(cap, dtype=np.int64)
    g_v0 = np.empty(cap)
    g_v1 = np.empty(cap)
    f_ptr = np.zeros(n + 1, dtype=np.int64)
    f_idx = np.empty(cap, dtype=np.int64)
    f_v0 = np.empty(cap)
    f_v1 = np.empty(cap)
    g_slot = np.empty(n, dtype=np.int64)
    g_stamp = np.full(n, -1, dtype=np.int64)
    f_slot = np.empty(n_fluid, dtype=np.int64)
    f_stamp = np.full(n_fluid, -1, dtype=np.int64)
    ng = 0
    nf = 0
    dropped = 0
    for r in range(n):
        g0, f0 = ng, nf
        for system in range(2):
            if system == 0:
                row, s_ptr, s_idx, s_val, s_target = src0[r], gg0_ptr, gg0_idx, gg0_val, g0_target
                alone = src1[r] < 0
            else:
                row, s_ptr, s_idx, s_val, s_target = src1[r], gg1_ptr, gg1_idx, gg1_val, g1_target
                alone = src0[r] < 0
            if row < 0:
                continue
            for part in range(2):
                ptr = s_ptr if part == 0 else (gf0_ptr if system == 0 else gf1_ptr)
                for e in range(ptr[row], ptr[row + 1]):
                    if part == 0:
                        code, w = s_target[s_idx[e]], s_val[e]
                    elif system == 0:
                        code, w = -2 - f0_col[gf0_idx[e]], gf0_val[e]
                    else:
                        code, w = f1_target[gf1_idx[e]], gf1_val[e]
                    w0 = w if system == 0 or alone else 0.0
                    w1 = w if system == 1 or alone else 0.0
                    if code == -1:
                        dropped += 1
                    elif code >= 0:
                        ng = _row_entry(g_idx, g_v0, g_v1, g0, ng, g_slot, g_stamp, r, code, w0, w1)
                    else:
                        nf = _row_entry(f_idx, f_v0, f_v1, f0, nf, f_slot, f_stamp, r, -2 - code, w0, w1)
        _sort_row(g_idx, g_v0, g_v1, g0, ng)
        _sort_row(f_idx, f_v0, f_v1, f0, nf)
        g_ptr[r + 1] = ng
        f_ptr[r + 1] = nf
    for e in range(ng):
        g_v1[e] -= g_v0[e]
    for e in range(nf):
        f_v1[e] -= f_v0[e]
    return (g_ptr, g_idx[:ng].copy(), g_v0[:ng].copy(), g_v1[:ng].copy(),
            f_ptr, f_idx[:nf].copy(), f_v0[:nf].copy(), f_v1[:nf].copy(), dropped)


@njit(cache=True)
def interpolate_weights(alpha, w0, w_step, out):
    """out = w₀ + α·(w₁ − w₀), elementwise (nnz,): the interval's weights at α."""
    for e in range(w0.shape[0]):
        out[e] = w0[e] + alpha * w_step[e]


@njit(cache=True)
def interpolate_points(alpha, offset0, offset_step, position0, position_step, local0, local_step, normal0,
                       normal_step, offset, position, local, normal):
    """x = x₀ + α·(x₁ − x₀) into the outputs, for the coefficients (rows,) and surface points
    (rows, 3); the normals are made unit again."""
    for r in range(offset0.shape[0]):
        offset[r] = offset0[r] + alpha * offset_step[r]
        size = 0.0
        for a in range(3):
            position[r, a] = position0[r, a] + alpha * position_step[r, a]
            local[r, a] = local0[r, a] + alpha * local_step[r, a]
            v = normal0[r, a] + alpha * normal_step[r, a]
            normal[r, a] = v
            size += v * v
        size = np.sqrt(size)
        for a in range(3):
            normal[r, a] /= size


@njit(cache=True)
def off_diagonal_rows(indptr, indices):
    """Rows (ascending) of a CSR matrix with an entry off its diagonal: the only rows a
    Gauss–Seidel sweep changes after the first."""
    n = indptr.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    m = 0
    for r in range(n):
        for e in range(indptr[r], indptr[r + 1]):
            if indices[e] != r:
                out[m] = r
                m += 1
                break
    return out[:m]


@njit(cache=True, parallel=True)
def keyed_solve(alpha, gg_ptr, gg_idx, gg0, gg_step, gf_ptr, gf_col, gf0, gf_step, offset0, offset_step,
                source, accel, density, coupled, norm, tol, max_sweeps):
    """(I − W_gg(α)) x = W_gf(α) f + ρ·offset(α)·aₙ with every weight and coefficient read at α as
    w₀ + α·(w₁ − w₀) on the fly: what interpolating the interval's matrices (:func:`interpolate_weights`,
    :func:`interpolate_points`), a CSR product and :func:`fixed_point_solve` give, in one pass and
    without writing the matrices. ``gf_col`` indexes ``source`` (the field, read in float64, or its
    gathered air cells); ``coupled`` the rows with off-diagonal entries (:func:`off_diagonal_rows`):
    the others are exact after the first sweep, which the sweeps here skip; ``norm``: a bound on the
    sweeps' contraction factor q at α (the larger of the ends' :func:`scaled_norm`: a row's q is
    at most the larger of its ends', since its off-diagonal sum is convex and its pivot linear in α).
    Stops as fixed_point_solve does. The right-hand side is made for the rows in parallel.
    Returns (x, sweeps, converged)."""
    n = gg_ptr.shape[0] - 1
    x = np.empty(n)
    rhs = np.empty(n)
    pivot = np.empty(n)
    for r in prange(n):
        v = 0.0
        for e in range(gf_ptr[r], gf_ptr[r + 1]):
            u = uint64(e)
            v += (gf0[u] + alpha * gf_step[u]) * np.float64(source[uint64(gf_col[u])])
        v += density * (offset0[r] + alpha * offset_step[r]) * accel[r]
        piv = 1.0
        for e in range(gg_ptr[r], gg_ptr[r + 1]):
            u = uint64(e)
            if gg_idx[u] == r:
                piv -= gg0[u] + alpha * gg_step[u]
        rhs[r] = v
        pivot[r] = piv
        x[r] = v / piv
    size0 = 0.0                       # the largest value of the rows the sweeps leave alone
    q = 0
    for r in range(n):
        if q < coupled.shape[0] and coupled[q] == r:
            q += 1
        else:
            size0 = max(size0, abs(x[r]))
    if norm >= 1.0:
        return x, 0, False
    return _sweeps(x, rhs, pivot, coupled, size0, gg_ptr, gg_idx, gg0, gg_step, alpha, norm, tol, max_sweeps)
