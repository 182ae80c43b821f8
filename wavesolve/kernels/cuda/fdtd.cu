// wavesolve CUDA kernels (compiled at run time by CuPy; also built for the host in the tests).
// The arithmetic lives in fdtd.cuh; here each work item gets a kernel, per precision.
// Every kernel takes n, the number of work items, as its first argument. ws_cell and ws_cell32
// (leapfrog and layer, the layer's face velocities included, and the listeners' samples) are launched
// in segments of blocks, the interior's, each layer slab's and the listeners' (WS_SEGMENT_KERNEL),
// ws_ghost with one warp per row and ws_balance with one per object (WS_WARP_SUM_KERNEL), the
// others with one thread per item.
#include "fdtd.cuh"

// ws_cell indexes the grid with 64-bit integers, ws_cell32 with 32-bit ones (fewer instructions: for
// grids of fewer than 2³¹ cells whose layer arrays hold fewer than 2³¹ elements).
#define WS_CELL_KERNEL(NAME, T, I)                                                                  \
    WS_SEGMENT_KERNEL(NAME, (n_probes + block - 1) / block,                                          \
              (ws_idx n, const T* p, T* out, T* p_aux, const T* v_old, T* v_new, const ws_idx* slab_desc, \
               const ws_idx* seg_start, ws_idx block, const T* cell_G, const T* cell_C, const T* face_A, \
               const T* face_B, ws_idx nx, ws_idx ny, ws_idx nz, ws_idx L, T lam2, T six,            \
               const ws_idx* probe_cells, const double* probe_weights, double* samples, ws_idx n_probes, \
               ws_idx xchunk, ws_idx zvec, ws_idx lanes, ws_idx lvec),                               \
              (ws_cell<T, I>(g, lb, th, block, p, out, p_aux, v_old, v_new, slab_desc, cell_G, cell_C, face_A, \
                             face_B, nx, ny, nz, L, lam2, six, probe_cells, probe_weights, samples, n_probes, \
                             xchunk, zvec, lanes, lvec)))

#define WS_DEFINE_KERNELS(T, SUF)                                                                    \
    WS_CELL_KERNEL(ws_cell_##SUF, T, ws_idx)                                                         \
    WS_CELL_KERNEL(ws_cell32_##SUF, T, int)                                                          \
    WS_WARP_SUM_KERNEL(ws_ghost_##SUF, n,                                                            \
              (ws_idx n, T* p, const ws_idx* index, const ws_idx* m_ptr, const ws_idx* m_cell,       \
               const double* m_val, const ws_idx* n_ptr, const ws_idx* n_col, const double* n_val,   \
               const double* accel, double density, ws_idx n_front, double* back),                   \
              ws_ghost_partial<T>(r, lane, p, m_ptr, m_cell, m_val, n_ptr, n_col, n_val, accel, s, b), \
              ws_ghost_store<T>(r, p, index, s, b, density, n_front, back))                         \
    WS_WARP_SUM_KERNEL(ws_balance_##SUF, n,                                                          \
              (ws_idx n, const T* p, const double* back, const ws_idx* face_ptr, const ws_idx* face_src, \
               const ws_idx* face_fluid, const double* count_inv, const double* accel,               \
               const ws_idx* vol_ptr, const ws_idx* vol_idx, double scale, double* lam),             \
              ws_balance_partial<T>(r, lane, p, back, face_ptr, face_src, face_fluid, accel, vol_ptr, \
                                    vol_idx, s, b),                                                  \
              ws_balance_store(r, s, b, scale, count_inv, lam))                                      \
    WS_KERNEL(ws_balance_add_##SUF, n,                                                               \
              (ws_idx n, T* p, double* back, const ws_idx* add_body, const ws_idx* add_dst, const double* lam), \
              ws_balance_add<T>(t, p, back, add_body, add_dst, lam))                                \
    WS_KERNEL(ws_close_##SUF, n,                                                                     \
              (ws_idx n, const T* p, T* out, ws_idx n_links, const ws_idx* link_fluid, const ws_idx* link_back, \
               const ws_idx* link_cell, const double* back, double lam2, const ws_idx* zero),         \
              ws_close<T>(t, p, out, n_links, link_fluid, link_back, link_cell, back, lam2, zero))    \
    WS_KERNEL(ws_mirror_##SUF, n, (ws_idx n, T* p, ws_idx nx, ws_idx ny, ws_idx nz, ws_idx L, ws_idx m), \
              ws_mirror<T>(t, p, nx, ny, nz, L, m))                                                  \
    WS_KERNEL(ws_probe_##SUF, n,                                                                     \
              (ws_idx n, const T* p, const ws_idx* cells, const double* weights, double* samples),   \
              ws_probe<T>(t, p, cells, weights, samples))                                           \
    WS_KERNEL(ws_peak_##SUF, n, (ws_idx n, const T* a, ws_idx count, T* part),                      \
              ws_peak_part<T>(t, a, count, n, part))

WS_DEFINE_KERNELS(float, f32)
WS_DEFINE_KERNELS(double, f64)
