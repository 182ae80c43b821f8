// wavesolve CUDA kernels: per-element arithmetic shared by the device build and the host build.
//
// Every function here computes the elements of ONE work item t (a cell, a face, a ghost cell, a
// listener) and is __host__ __device__: fdtd.cu wraps each in a __global__ kernel (one thread
// per item) when compiled by NVRTC/nvcc, and in a plain loop over t when compiled by a host C++
// compiler (the CI check against the NumPy reference). Operations follow the reference's order
// (kernels/reference.py, AbsorbingLayer.step); the device build disables FMA contraction
// (--fmad=false) so both builds round like the reference.
//
// Data layout (wavesolve/absorbing.py, AbsorbingLayer):
//   p, out        grid fields, C order (nx, ny, nz)
//   p_aux         split-pressure slots, slab by slab, slot by slot: slab s slot u at sd[s][0] + u·cells_s
//                 (wavesolve/absorbing.py; ws_layer_cells)
//   v_old, v_new  face velocities v^{n−½} (read) and v^{n+½} (written), two buffers of the same
//                 layout: slab by slab, axis by axis, slab s axis a at sd[s][7 + a], shaped
//                 (n0+1, n1, n2), (n0, n1+1, n2), (n0, n1, n2+1)
//   slab_desc     6 × 10: p_off, lo0, lo1, lo2, n0, n1, n2, v_off0, v_off1, v_off2
//   face_A/B      per-axis face profiles concatenated: x at 0, y at nx+1, z at nx+ny+2
//   cell_G/C      per-axis cell profiles concatenated: x at 0, y at nx, z at nx+ny (G = 1 − A)
#pragma once

#ifdef __CUDACC__
#define WS_HD __host__ __device__ __forceinline__
#else
#define WS_HD inline
#endif

typedef long long ws_idx;

#define WS_SLAB_COLS 10
// Segments of the cell kernel's cells (ws_cell): the interior and six layer slabs; the listeners'
// blocks follow them.
#define WS_SEGMENTS 7
// The widest interior access built (cells along z a thread updates, ws_interior), and the widest
// layer group (ws_layer_cells): each width's code holds its own registers, and the kernel runs with
// the most any of its paths needs (nvcc -Xptxas -v, sm_90, float32 / float64: 40 / 48 with interior
// widths up to 4 and layer groups of 1; 48 / 64 with layer groups up to 2, 64 / 64 up to 4). The
// package's GPU build has groups up to 4 (cuda_backend.LAYER_VEC_BUILT: faster on an H200 despite the
// registers), as has the host build; bench/gpu_tiling.py also builds 1.
#ifndef WS_ZVEC_MAX
#define WS_ZVEC_MAX 4
#endif
#ifndef WS_LAYER_VEC_MAX
#define WS_LAYER_VEC_MAX 4
#endif
// The interior's march along x stays a rolled loop on the device: unrolled, the cell kernel held 48
// registers instead of 32 (float32) and ran 18–19 % slower on 256³ and 384³ on an H200
// (bench/RESULTS.md).
#ifdef __CUDACC__
#define WS_MARCH_PRAGMA _Pragma("unroll 1")
#else
#define WS_MARCH_PRAGMA
#endif

// Interior leapfrog p⁺ = 2p − p⁻ + λ² L p of a cell from its pressure c, its six neighbours' (x−, x+,
// y−, y+, z−, z+) and its p⁻ (o), summed in the reference's order.
template <typename T>
WS_HD T ws_leapfrog(T c, T xm, T xp, T ym, T yp, T zm, T zp, T o, T lam2, T six)
{
    const T lap = xm + xp + ym + yp + zm + zp - six * c;
    return (c + c) - o + lam2 * lap;
}

// W consecutive values along z, loaded and stored as one access on the device (W·sizeof(T) ≤ 16
// bytes, aligned: the driver picks W dividing nz and L, so every interior row's first cell k = L and
// each lane's k = L + W·lane sit on multiples of W, as do the layer's groups, whose packed blocks
// start at multiples of 4 elements), element by element on the host.
template <typename T, int W>
struct alignas(sizeof(T) * W) ws_pack {
    T e[W];
};

template <typename T, int W, typename I>
WS_HD ws_pack<T, W> ws_load(const T* p, I q)
{
#ifdef __CUDA_ARCH__
    return *reinterpret_cast<const ws_pack<T, W>*>(p + q);
#else
    ws_pack<T, W> v;
    for (int m = 0; m < W; ++m) v.e[m] = p[q + m];
    return v;
#endif
}

template <typename T, int W, typename I>
WS_HD void ws_store(T* p, I q, const ws_pack<T, W>& v)
{
#ifdef __CUDA_ARCH__
    *reinterpret_cast<ws_pack<T, W>*>(p + q) = v;
#else
    for (int m = 0; m < W; ++m) p[q + m] = v.e[m];
#endif
}

// Face velocity v⁺ = A v − B (hi − lo) across a face with pressures lo below and hi above it; an
// outer wall (open = false: faces 0 and n of an axis of n cells) has A = B = 0 and a zero
// difference, as in the reference (whose order of operations this follows), and its hi and lo are
// not read.
template <typename T>
WS_HD T ws_face_velocity(T v, T A, T B, T hi, T lo, bool open)
{
    T dp = B - B;
    if (open) dp = hi - lo;
    return v * A - B * dp;
}

// Layer cells (i, j, k … k+W−1), flat index q of the first, in slab row sd: W = 1, or a group of W
// cells along z that starts at a multiple of W in a slab whose rows along z are too (the driver's
// rule: W divides nz and the layer's width, and the packed buffers' blocks start at multiples of 4,
// absorbing.py), so that p, the stored split pressures and the x and y face velocities are loaded
// and stored W at a time. Each cell's faces' velocities v⁺ along each axis from v_old and p (the
// lower face, and the upper one too), then from them its split-pressure slots and the rest of its
// pressure (wavesolve/absorbing.py: in slab s, slot 0 the normal axis n = s / 2, slot 1 the first
// other axis b₁ in b₁'s layer, else b₂ in b₂'s, else unused and untouched; the rest p − slots), and
// p⁺ = p − the components' decreases into out. Whether slot 1 is used is the same for the whole group: along z it changes only at
// z = L and nz − L, multiples of W. Each face of the slab is written to v_new by exactly one cell: the
// one above it along its axis, and for the slab's last face the cell below (no two threads write one
// face, and no thread reads a face another writes: v_old and v_new are separate buffers).
template <typename T, typename I, int W>
WS_HD void ws_layer_cells(const T* p, T* out, T* p_aux, const T* v_old, T* v_new, const ws_idx* sd, int s,
                          const T* cell_G, const T* cell_C, const T* face_A, const T* face_B, I nx, I ny, I nz, I L,
                          I i, I j, I k, I q)
{
    const I n0 = (I)sd[4], n1 = (I)sd[5], n2 = (I)sd[6];
    const I li = i - (I)sd[1], lj = j - (I)sd[2], lk = k - (I)sd[3];
    const I cells = n0 * n1 * n2;
    const I lin = (li * n1 + lj) * n2 + lk;
    const I sy = nz, sx = ny * nz;
    const I fy = nx + 1, fz = nx + ny + 2, cz = nx + ny;     // y and z profiles
    const I vx = (I)sd[7] + lin;                                     // (n0+1, n1, n2)
    const I vy = (I)sd[8] + (li * (n1 + 1) + lj) * n2 + lk;          // (n0, n1+1, n2)
    const I vz = (I)sd[9] + (li * n1 + lj) * (n2 + 1) + lk;          // (n0, n1, n2+1)
    const I r = (I)sd[0] + lin;
    const ws_pack<T, W> pc = ws_load<T, W>(p, q);
    // the pressures across the x and y faces (the cell's own in place of an outer wall's, unread)
    const ws_pack<T, W> pxm = ws_load<T, W>(p, i > 0 ? q - sx : q);
    const ws_pack<T, W> pxp = ws_load<T, W>(p, i + 1 < nx ? q + sx : q);
    const ws_pack<T, W> pym = ws_load<T, W>(p, j > 0 ? q - sy : q);
    const ws_pack<T, W> pyp = ws_load<T, W>(p, j + 1 < ny ? q + sy : q);
    const ws_pack<T, W> vxl = ws_load<T, W>(v_old, vx), vxu = ws_load<T, W>(v_old, vx + n1 * n2);
    const ws_pack<T, W> vyl = ws_load<T, W>(v_old, vy), vyu = ws_load<T, W>(v_old, vy + n2);
    // the W + 1 z faces k … k+W
    T zf[W + 1];
#pragma unroll
    for (int m = 0; m <= W; ++m) {
        const I g = k + m;
        const T lo = m > 0 ? pc.e[m - 1] : p[g > 0 ? q - 1 : q];
        const T hi = m < W ? pc.e[m] : p[g < nz ? q + W : q];
        zf[m] = ws_face_velocity<T>(v_old[vz + m], face_A[fz + g], face_B[fz + g], hi, lo, g != 0 && g != nz);
    }
    const T Axl = face_A[i], Bxl = face_B[i], Axu = face_A[i + 1], Bxu = face_B[i + 1];
    const T Ayl = face_A[fy + j], Byl = face_B[fy + j], Ayu = face_A[fy + j + 1], Byu = face_B[fy + j + 1];
    ws_pack<T, W> xl, xu, yl, yu, res;
#pragma unroll
    for (int m = 0; m < W; ++m) {
        xl.e[m] = ws_face_velocity<T>(vxl.e[m], Axl, Bxl, pc.e[m], pxm.e[m], i != 0);
        xu.e[m] = ws_face_velocity<T>(vxu.e[m], Axu, Bxu, pxp.e[m], pc.e[m], i + 1 != nx);
        yl.e[m] = ws_face_velocity<T>(vyl.e[m], Ayl, Byl, pc.e[m], pym.e[m], j != 0);
        yu.e[m] = ws_face_velocity<T>(vyu.e[m], Ayu, Byu, pyp.e[m], pc.e[m], j + 1 != ny);
    }
    ws_store<T, W>(v_new, vx, xl);
    ws_store<T, W>(v_new, vy, yl);
#pragma unroll
    for (int m = 0; m < W; ++m) v_new[vz + m] = zf[m];
    if (li == n0 - 1) ws_store<T, W>(v_new, vx + n1 * n2, xu);
    if (lj == n1 - 1) ws_store<T, W>(v_new, vy + n2, yu);
    if (lk + W == n2) v_new[vz + W] = zf[W];
    // the slab's axes: n, then b₁ (y for the x-slabs, else x), b₂ (y for the z-slabs, else z)
    const int n = s / 2;
    const I c1 = n == 0 ? j : i, m1 = n == 0 ? ny : nx, c2 = n == 2 ? j : k, m2 = n == 2 ? ny : nz;
    const bool in1 = c1 < L || c1 >= m1 - L, in2 = c2 < L || c2 >= m2 - L;
    // p⁺ = p − Σ (pₐ − pₐ⁺), each component's decrease pₐ − pₐ⁺ = G pₐ + C Δvₐ (G = 1 − A: 0 on a free
    // axis), so that only the damped parts of the stored slots enter p⁺ (absorbing.py)
    const T gx = cell_G[i], cx = cell_C[i], gy = cell_G[nx + j], cy = cell_C[nx + j];
    ws_pack<T, W> s0 = ws_load<T, W>(p_aux, r);
    if (in1 || in2) {
        ws_pack<T, W> s1 = ws_load<T, W>(p_aux, r + cells);
#pragma unroll
        for (int m = 0; m < W; ++m) {
            // per axis G and D = C Δv on this cell
            const T Dx = cx * (xu.e[m] - xl.e[m]), Dy = cy * (yu.e[m] - yl.e[m]);
            const T gz = cell_G[cz + k + m], Dz = cell_C[cz + k + m] * (zf[m + 1] - zf[m]);
            const T Gn = n == 0 ? gx : (n == 1 ? gy : gz), Dn = n == 0 ? Dx : (n == 1 ? Dy : Dz);
            const T G1 = n == 0 ? gy : gx, D1 = n == 0 ? Dy : Dx;
            const T G2 = n == 2 ? gy : gz, D2 = n == 2 ? Dy : Dz;
            const T rest = (pc.e[m] - s0.e[m]) - s1.e[m];
            const T d0 = Gn * s0.e[m] + Dn;
            const T d1 = in1 ? G1 * s1.e[m] + D1 : G2 * s1.e[m] + D2;
            const T dr = in1 ? G2 * rest + D2 : G1 * rest + D1;
            s0.e[m] = s0.e[m] - d0;
            s1.e[m] = s1.e[m] - d1;
            res.e[m] = pc.e[m] - ((d0 + d1) + dr);
        }
        ws_store<T, W>(p_aux, r + cells, s1);
    } else {                                                  // a face region: both other axes free
#pragma unroll
        for (int m = 0; m < W; ++m) {
            const T Dx = cx * (xu.e[m] - xl.e[m]), Dy = cy * (yu.e[m] - yl.e[m]);
            const T gz = cell_G[cz + k + m], Dz = cell_C[cz + k + m] * (zf[m + 1] - zf[m]);
            const T Gn = n == 0 ? gx : (n == 1 ? gy : gz), Dn = n == 0 ? Dx : (n == 1 ? Dy : Dz);
            const T D1 = n == 0 ? Dy : Dx;
            const T D2 = n == 2 ? Dy : Dz;
            const T d0 = Gn * s0.e[m] + Dn;
            s0.e[m] = s0.e[m] - d0;
            res.e[m] = pc.e[m] - (d0 + (D1 + D2));
        }
    }
    ws_store<T, W>(p_aux, r, s0);
    ws_store<T, W>(out, q, res);
}

// The interior's tile of block lb: `lanes` threads along z, each W cells wide, by ty = block/lanes
// rows along y, its columns marched along x through a chunk of xchunk planes. A thread keeps the
// pressures of the planes before, at and after its W cells in registers; its y and z neighbours were
// loaded by the tile's other threads one plane earlier (cache hits), so each pressure comes from
// memory about once. The loads of the next plane's p and p⁻ are issued before this plane's sums, so
// two planes' loads are in flight (+4–13 % on 256³ and 384³ on an H100, bench/RESULTS.md). Each
// cell's sum is the reference's, in its order (ws_leapfrog): the z neighbours inside the W cells come
// from the same registers. Blocks are ordered z tile fastest, then y tile, then x chunk; fewer than
// 2³² blocks, 32-bit divisions.
template <typename T, typename I, int W>
WS_HD void ws_interior(ws_idx lb, ws_idx th, unsigned int lanes, unsigned int ty, const T* p, T* out, I nx, I ny,
                       I nz, I L, T lam2, T six, I xchunk)
{
    const unsigned int row_lanes = (unsigned int)(nz - 2 * L) / W;
    const unsigned int tiles_z = (row_lanes + lanes - 1) / lanes;
    const unsigned int tiles_y = (unsigned int)(ny - 2 * L + (I)ty - 1) / ty;
    const unsigned int ub = (unsigned int)lb, zt = ub % tiles_z, rest = ub / tiles_z;
    const unsigned int yt = rest % tiles_y, chunk = rest / tiles_y;
    const unsigned int lane = zt * lanes + (unsigned int)th % lanes;
    const I j = L + (I)(yt * ty + (unsigned int)th / lanes);
    if (lane >= row_lanes || j >= ny - L) return;
    const I k = L + (I)lane * W;
    const I i0 = L + (I)chunk * xchunk;
    const I i1 = (i0 + xchunk < nx - L) ? i0 + xchunk : nx - L;
    const I sx = ny * nz, sy = nz;
    I q = (i0 * ny + j) * nz + k;
    ws_pack<T, W> prev = ws_load<T, W>(p, q - sx), cur = ws_load<T, W>(p, q);
    ws_pack<T, W> next = ws_load<T, W>(p, q + sx), o = ws_load<T, W>(out, q);
    WS_MARCH_PRAGMA
    for (I i = i0; i < i1; ++i, q += sx) {
        const bool more = i + 1 < i1;
        const ws_pack<T, W> next2 = more ? ws_load<T, W>(p, q + 2 * sx) : next;
        const ws_pack<T, W> o2 = more ? ws_load<T, W>(out, q + sx) : o;
        const ws_pack<T, W> ym = ws_load<T, W>(p, q - sy), yp = ws_load<T, W>(p, q + sy);
        const T zm = p[q - 1], zp = p[q + W];
        ws_pack<T, W> r;
#pragma unroll
        for (int m = 0; m < W; ++m)
            r.e[m] = ws_leapfrog<T>(cur.e[m], prev.e[m], next.e[m], ym.e[m], yp.e[m], m > 0 ? cur.e[m - 1] : zm,
                                    m < W - 1 ? cur.e[m + 1] : zp, o.e[m], lam2, six);
        ws_store<T, W>(out, q, r);
        prev = cur;
        cur = next;
        next = next2;
        o = o2;
    }
}

// Work item l = listener: trilinear sample (float64) of p over its 8 cells, into samples[l].
// Summed as NumPy's pairwise sum of 8 terms: ((0+1)+(2+3)) + ((4+5)+(6+7)).
template <typename T>
WS_HD void ws_probe(ws_idx l, const T* p, const ws_idx* cells, const double* weights, double* samples)
{
    double w[8];
    for (int c = 0; c < 8; ++c) w[c] = (double)p[cells[8 * l + c]] * weights[8 * l + c];
    samples[l] = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
}

// The larger of best and |x|, where a NaN, in either, wins (as NumPy's max of an array holding one).
template <typename T>
WS_HD T ws_larger_magnitude(T best, T x)
{
    const T m = x < 0 ? -x : x;
    return (m > best || m != m) ? m : best;
}

// Work item t < parts: the largest |a[i]| over i = t, t + parts, … < count into part[t] (0 for none;
// a NaN if one is met). One read of a, coalesced: the step's instability check after each block.
template <typename T>
WS_HD void ws_peak_part(ws_idx t, const T* a, ws_idx count, ws_idx parts, T* part)
{
    T best = 0;
    for (ws_idx i = t; i < count; i += parts) best = ws_larger_magnitude<T>(best, a[i]);
    part[t] = best;
}

// The cell kernel's work comes in segments, each a range of its blocks (seg_start, WS_SEGMENTS + 1 block
// offsets, made by the driver). Segment 0 is the interior box [L, n − L)³ in tiles of `lanes` threads along
// z, each zvec cells wide (1, 2 or 4: 16 bytes at most), by block/lanes rows along y, marched along x in
// chunks of xchunk planes (ws_interior). Segment 1 + s is layer slab s, its cells in their packed order,
// ⌈cells/block⌉ blocks (none for the slab under a floor). The blocks after the last offset, segment
// WS_SEGMENTS, sample the n_probes listeners (ws_probe, one thread each; none where the step samples them
// apart): the launch's block count alone says how many there are, so the offsets stay the same device array
// with or without listeners (nothing to copy up inside a recorded graph). A block's branch is the same for
// all of its threads, so the interior runs the plain leapfrog without divergence and the layer cells run
// together. Thread th of block lb (counted from its segment's first block) of segment g:
template <typename T, typename I>
WS_HD void ws_cell(int g, ws_idx lb, ws_idx th, ws_idx block, const T* p, T* out, T* p_aux, const T* v_old,
                   T* v_new, const ws_idx* slab_desc, const T* cell_G, const T* cell_C, const T* face_A,
                   const T* face_B, ws_idx nx_, ws_idx ny_, ws_idx nz_, ws_idx L_, T lam2, T six,
                   const ws_idx* probe_cells, const double* probe_weights, double* samples, ws_idx n_probes,
                   ws_idx xchunk, ws_idx zvec, ws_idx lanes, ws_idx lvec)
{
    if (g == WS_SEGMENTS) {                                  // listeners, sampled from p (read only here)
        const ws_idx l = lb * block + th;
        if (l < n_probes) ws_probe<T>(l, p, probe_cells, probe_weights, samples);
        return;
    }
    const I nx = (I)nx_, ny = (I)ny_, nz = (I)nz_, L = (I)L_;
    if (g == 0) {
        const unsigned int ln = (unsigned int)lanes;
        const unsigned int ty = (unsigned int)block / ln;
        // zvec: 16 bytes at most (the driver's rule), so 4 only in float; above WS_ZVEC_MAX not built
        if (WS_ZVEC_MAX >= 4 && sizeof(T) == 4 && zvec == 4)
            ws_interior<T, I, 16 / sizeof(T)>(lb, th, ln, ty, p, out, nx, ny, nz, L, lam2, six, (I)xchunk);
        else if (WS_ZVEC_MAX >= 2 && zvec == 2)
            ws_interior<T, I, 2>(lb, th, ln, ty, p, out, nx, ny, nz, L, lam2, six, (I)xchunk);
        else
            ws_interior<T, I, 1>(lb, th, ln, ty, p, out, nx, ny, nz, L, lam2, six, (I)xchunk);
        return;
    }
    const ws_idx* sd = slab_desc + (g - 1) * WS_SLAB_COLS;
    const ws_idx u = lb * block + th;                        // the cell group's index in the slab
    // a slab holds fewer than 2³² cells (an n³ grid's, L·n²: n up to about 20000): 32-bit divisions
    const unsigned int n1 = (unsigned int)sd[5], row_groups = (unsigned int)sd[6] / (unsigned int)lvec;
    if (u >= sd[4] * sd[5] * (ws_idx)row_groups) return;
    const unsigned int uu = (unsigned int)u, row = uu / row_groups;
    const I i = (I)sd[1] + (I)(row / n1), j = (I)sd[2] + (I)(row % n1);
    const I k = (I)sd[3] + (I)((uu - row * row_groups) * (unsigned int)lvec);
    const I t = (i * ny + j) * nz + k;
    // lvec: as zvec, 16 bytes at most; above WS_LAYER_VEC_MAX not built
    if (WS_LAYER_VEC_MAX >= 4 && sizeof(T) == 4 && lvec == 4)
        ws_layer_cells<T, I, 16 / sizeof(T)>(p, out, p_aux, v_old, v_new, sd, g - 1, cell_G, cell_C, face_A, face_B, nx,
                                             ny, nz, L, i, j, k, t);
    else if (WS_LAYER_VEC_MAX >= 2 && lvec == 2)
        ws_layer_cells<T, I, 2>(p, out, p_aux, v_old, v_new, sd, g - 1, cell_G, cell_C, face_A, face_B, nx, ny, nz, L, i,
                                j, k, t);
    else
        ws_layer_cells<T, I, 1>(p, out, p_aux, v_old, v_new, sd, g - 1, cell_G, cell_C, face_A, face_B, nx, ny, nz, L, i,
                                j, k, t);
}

// Boundary row r, one warp of 32 lanes per row: v = Σ M[r,·] p[fluid cells] + ρ Σ N[r,·] aₙ (CSR,
// float64), where M = (I − W_gg)⁻¹ W_gf and N = (I − W_gg)⁻¹ diag(offset) are precomputed on the
// host. Lane l sums the row's entries l, l + 32, … (ws_ghost_partial); the 32 partial sums are then
// added pairwise at distances 16, 8, 4, 2, 1 (a warp shuffle on the device, the same additions in
// a loop on the host, so both round alike) and lane 0 stores v (ws_ghost_store). Rows r < n_front
// are ghost or fresh cells: p[index[r]] = v. The rest are back values of one-cell-thick parts
// (read by ws_close after the field update): back[r − n_front] = v.
// M's column indices are given as the flat grid indices of the fluid cells they stand for (m_cell).
template <typename T>
WS_HD void ws_ghost_partial(ws_idx r, int lane, const T* p, const ws_idx* m_ptr, const ws_idx* m_cell,
                            const double* m_val, const ws_idx* n_ptr, const ws_idx* n_col, const double* n_val,
                            const double* accel, double& s, double& b)
{
    s = 0.0;
    for (ws_idx e = m_ptr[r] + lane; e < m_ptr[r + 1]; e += 32) s += m_val[e] * (double)p[m_cell[e]];
    b = 0.0;
    for (ws_idx e = n_ptr[r] + lane; e < n_ptr[r + 1]; e += 32) b += n_val[e] * accel[n_col[e]];
}

template <typename T>
WS_HD void ws_ghost_store(ws_idx r, T* p, const ws_idx* index, double s, double b, double density, ws_idx n_front,
                          double* back)
{
    const double v = s + density * b;
    if (r < n_front) p[index[r]] = (T)v;
    else back[r - n_front] = v;
}

// Object r's volume balance (wavesolve/flux_balance.py), one warp per object, after ws_ghost: lane l
// sums the object's face differences v − p[fluid] (v = p[src], or back value −1 − src where src < 0)
// l, l + 32, … into s, and the net volume accelerations Q̇ its entry reads from the boundary input
// (accel[vol_idx[e]]) into b (ws_balance_partial); lane 0 stores λ_r = (scale·b − s) / F_r
// (ws_balance_store; scale = ρ/h). ws_balance_add then adds λ to every value the faces read.
template <typename T>
WS_HD void ws_balance_partial(ws_idx r, int lane, const T* p, const double* back, const ws_idx* face_ptr,
                              const ws_idx* face_src, const ws_idx* face_fluid, const double* accel,
                              const ws_idx* vol_ptr, const ws_idx* vol_idx, double& s, double& b)
{
    s = 0.0;
    for (ws_idx e = face_ptr[r] + lane; e < face_ptr[r + 1]; e += 32) {
        const ws_idx src = face_src[e];
        const double v = src >= 0 ? (double)p[src] : back[-1 - src];
        s += v - (double)p[face_fluid[e]];
    }
    b = 0.0;
    for (ws_idx e = vol_ptr[r] + lane; e < vol_ptr[r + 1]; e += 32) b += accel[vol_idx[e]];
}

WS_HD void ws_balance_store(ws_idx r, double s, double b, double scale, const double* count_inv, double* lam)
{
    lam[r] = (scale * b - s) * count_inv[r];
}

// Work item t: value add_dst[t] (a cell of p, or back value −1 − add_dst[t]) of object add_body[t]
// gets λ of that object. Each value belongs to one object and appears once: no two items meet.
template <typename T>
WS_HD void ws_balance_add(ws_idx t, T* p, double* back, const ws_idx* add_body, const ws_idx* add_dst,
                          const double* lam)
{
    const ws_idx d = add_dst[t];
    const double l = lam[add_body[t]];
    if (d >= 0) p[d] = (T)((double)p[d] + l);
    else back[-1 - d] += l;
}

// Work item t of the step's closing kernel, on out after the field update: for t < n_links, link t
// of a one-cell-thick part, whose far-side fluid neighbour saw the cell's front value p[cell] in its
// 7-point stencil: out[fluid] += (T)(λ²(back − p[cell])), as the reference's np.add.at (a fluid cell
// can have several links: an atomic add on the device, in link order on the host); otherwise solid
// cell zero[t − n_links] held at zero. Links add to fluid cells and the zeroed cells are solid, so
// no cell is touched by both.
template <typename T>
WS_HD void ws_close(ws_idx t, const T* p, T* out, ws_idx n_links, const ws_idx* link_fluid,
                    const ws_idx* link_back, const ws_idx* link_cell, const double* back, double lam2,
                    const ws_idx* zero)
{
    if (t >= n_links) {
        out[zero[t - n_links]] = T(0);
        return;
    }
    const T delta = (T)(lam2 * (back[link_back[t]] - (double)p[link_cell[t]]));
#ifdef __CUDACC__
    atomicAdd(out + link_fluid[t], delta);
#else
    out[link_fluid[t]] += delta;
#endif
}

// Work item t over the floor's mirror rows (with a ground): below the interior, m rows under the
// floor mirror the m rows above it, p[i, j, L−1−r] = p[i, j, L+r], for L ≤ i < nx−L, L ≤ j < ny−L,
// 0 ≤ r < m (Backend.mirror_floor). The rows hold fewer than 2³² cells: 32-bit division.
template <typename T>
WS_HD void ws_mirror(ws_idx t, T* p, ws_idx nx, ws_idx ny, ws_idx nz, ws_idx L, ws_idx m)
{
    const unsigned int u = (unsigned int)t, mm = (unsigned int)m, wy = (unsigned int)(ny - 2 * L);
    const unsigned int col = u / mm;
    const ws_idx r = u - col * mm;
    const ws_idx i = L + col / wy, j = L + col % wy;
    const ws_idx base = (i * ny + j) * nz;
    p[base + L - 1 - r] = p[base + L + r];
}

// Kernel wrappers: one thread per work item on the device, a loop over items on the host (except
// where said).
// WS_SEGMENT_KERNEL: blocks in segments (seg_start: WS_SEGMENTS + 1 block offsets), then EXTRA
// blocks as segment WS_SEGMENTS; CALL sees the segment g, the block lb within it and the thread
// th < block. On the host, loops over the same blocks and threads.
#ifdef __CUDACC__
#define WS_SEGMENT_KERNEL(NAME, EXTRA, PARAMS, CALL)                                \
    extern "C" __global__ void NAME PARAMS                                          \
    {                                                                               \
        const ws_idx b = blockIdx.x;                                                \
        int g = 0;                                                                  \
        while (g < WS_SEGMENTS && b >= seg_start[g + 1]) ++g;                       \
        const ws_idx lb = b - seg_start[g], th = threadIdx.x;                       \
        CALL;                                                                       \
    }
#else
#define WS_SEGMENT_KERNEL(NAME, EXTRA, PARAMS, CALL)                                \
    extern "C" void NAME PARAMS                                                     \
    {                                                                               \
        for (ws_idx b = 0; b < seg_start[WS_SEGMENTS] + (EXTRA); ++b) {             \
            int g = 0;                                                              \
            while (g < WS_SEGMENTS && b >= seg_start[g + 1]) ++g;                   \
            const ws_idx lb = b - seg_start[g];                                     \
            for (ws_idx th = 0; th < block; ++th) CALL;                             \
        }                                                                           \
    }
#endif
// WS_WARP_SUM_KERNEL: one warp per work item r < COUNT; PARTIAL sets lane ``lane``'s two float64
// partial sums s, b; they are reduced pairwise to lane 0, which runs STORE. On the host the same
// pairwise additions run over an array of 32 partial sums.
#ifdef __CUDACC__
#define WS_WARP_SUM_KERNEL(NAME, COUNT, PARAMS, PARTIAL, STORE)                     \
    extern "C" __global__ void NAME PARAMS                                          \
    {                                                                               \
        const ws_idx r = ((ws_idx)blockIdx.x * blockDim.x + threadIdx.x) >> 5;      \
        const int lane = threadIdx.x & 31;                                          \
        if (r >= (COUNT)) return;              /* whole warps: blockDim.x % 32 == 0 */ \
        double s, b;                                                                \
        PARTIAL;                                                                    \
        for (int d = 16; d > 0; d >>= 1) {                                          \
            s += __shfl_down_sync(0xffffffffu, s, d);                               \
            b += __shfl_down_sync(0xffffffffu, b, d);                               \
        }                                                                           \
        if (lane == 0) STORE;                                                       \
    }
#else
#define WS_WARP_SUM_KERNEL(NAME, COUNT, PARAMS, PARTIAL, STORE)                     \
    extern "C" void NAME PARAMS                                                     \
    {                                                                               \
        for (ws_idx r = 0; r < (COUNT); ++r) {                                      \
            double ss[32], bb[32];                                                  \
            for (int lane = 0; lane < 32; ++lane) {                                 \
                double& s = ss[lane];                                               \
                double& b = bb[lane];                                               \
                PARTIAL;                                                            \
            }                                                                       \
            for (int d = 16; d > 0; d >>= 1)                                        \
                for (int l = 0; l < d; ++l) {                                       \
                    ss[l] += ss[l + d];                                             \
                    bb[l] += bb[l + d];                                             \
                }                                                                   \
            const double s = ss[0], b = bb[0];                                      \
            STORE;                                                                  \
        }                                                                           \
    }
#endif
#ifdef __CUDACC__
#define WS_KERNEL(NAME, COUNT, PARAMS, CALL)                                        \
    extern "C" __global__ void NAME PARAMS                                          \
    {                                                                               \
        const ws_idx t = (ws_idx)blockIdx.x * blockDim.x + threadIdx.x;             \
        if (t < (COUNT)) CALL;                                                      \
    }
#else
#define WS_KERNEL(NAME, COUNT, PARAMS, CALL)                                        \
    extern "C" void NAME PARAMS                                                     \
    {                                                                               \
        for (ws_idx t = 0; t < (COUNT); ++t) CALL;                                  \
    }
#endif
