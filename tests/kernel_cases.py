"""Shared cases for the kernel tests: grids, random states, poisoning and the element-wise check.

Tolerances (every element is checked, fields and auxiliary state):
- float64: |fast − ref| ≤ 1e-12 · max|ref| per element. The compiled kernels do the reference's
  operations in the reference's order without fused multiply-add, so they agree to the last bit
  in practice; 1e-12 leaves room for a compiler that contracts to FMA (≈ 1e-16 per operation).
- float32: |fast − ref| ≤ 5e-6 · max|ref| per element. One element's update takes about ten
  roundings of intermediates no larger than ~8 × max|p| (the Laplacian's six neighbours and 6p),
  each within 2⁻²⁴ ≈ 6e-8 relative, so a kernel that rounds differently from the reference (FMA,
  another summation order) stays below 10 × 8 × 6e-8 ≈ 5e-6 of max|p|. Kernels that keep the
  reference's order (the Numba step and the host build of the CUDA source) are bit-equal.
"""
from __future__ import annotations

import numpy as np

from wavesolve.absorbing import AbsorbingLayer
from wavesolve.grid import Grid

F64_TOL = 1e-12
F32_TOL = 5e-6
TOL = {np.dtype(np.float64): F64_TOL, np.dtype(np.float32): F32_TOL}

#: Grid shapes and layer thicknesses: uneven sizes, thin and thick layers.
SHAPES = [((23, 19, 27), 4), ((30, 26, 21), 7)]


def make_grid(shape: tuple[int, int, int], layer: int, courant: float = 0.55, ground: bool = False) -> Grid:
    h, c = 0.01, 343.0
    return Grid(h=h, dt=courant * h / c, sound_speed=c, shape=shape, layer=layer, origin=(0.0, 0.0, 0.0),
                ground=ground)


def random_state(grid: Grid, dtype, seed: int = 0):
    """(layer, p, p_prev) with random fields and random auxiliary state in the layer."""
    rng = np.random.default_rng(seed)
    layer = AbsorbingLayer(grid, 1.2, np.dtype(dtype))
    layer.p_aux[:] = rng.uniform(-1, 1, layer.p_aux.size)
    layer.v_aux[:] = rng.uniform(-1, 1, layer.v_aux.size) * 1e-3   # v ~ p / (ρc)
    p = rng.uniform(-1, 1, grid.shape).astype(dtype)
    p_prev = rng.uniform(-1, 1, grid.shape).astype(dtype)
    return layer, p, p_prev


def copy_layer(grid: Grid, layer: AbsorbingLayer) -> AbsorbingLayer:
    other = AbsorbingLayer(grid, 1.2, layer.p_aux.dtype)
    other.p_aux[:] = layer.p_aux
    other.v_aux[:] = layer.v_aux
    return other


def poison_layer_cells(out: np.ndarray, L: int, floor: int = 0) -> None:
    """NaN in every layer cell of ``out`` (pure outputs) but the slab under the interior when
    ``floor`` > 0 (a ground: no kernel writes it); interior cells keep p⁻, which they read."""
    keep = out[L:-L, L:-L, L:-L].copy()
    below = out[L:-L, L:-L, :floor].copy()
    out[...] = np.nan
    out[L:-L, L:-L, L:-L] = keep
    out[L:-L, L:-L, :floor] = below


def assert_close(fast, ref, what: str) -> None:
    """Every element within the dtype's tolerance of max|ref|; same dtype; no NaN."""
    fast = np.asarray(fast)
    ref = np.asarray(ref)
    assert fast.dtype == ref.dtype, f"{what}: dtype {fast.dtype} != {ref.dtype}"
    assert fast.shape == ref.shape
    assert np.all(np.isfinite(fast)), f"{what}: {int(np.sum(~np.isfinite(fast)))} elements not written / not finite"
    scale = float(np.max(np.abs(ref))) or 1.0
    err = np.abs(fast.astype(np.float64) - ref.astype(np.float64))
    tol = TOL[ref.dtype] * scale
    worst = int(np.argmax(err))
    assert err.flat[worst] <= tol, (f"{what}: element {np.unravel_index(worst, ref.shape)} differs by "
                                    f"{err.flat[worst]:.3g} > {tol:.3g}")
