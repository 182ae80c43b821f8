"""Listener probes (wavesolve/listeners.py): trilinear sampling of the pressure field."""
from __future__ import annotations

import numpy as np
import pytest

from wavesolve.grid import Grid
from wavesolve.listeners import Probes


def test_trilinear_probes_reproduce_a_linear_field_and_refuse_points_off_the_grid():
    """Trilinear interpolation is exact for a field linear in x, y, z: sampled at 200 random points
    it must equal the field there to rounding (1e-12 of its scale, float64), with weights summing
    to 1; a point whose 2×2×2 stencil leaves the grid is an error, not a wrapped index."""
    grid = Grid(h=0.01, dt=1e-5, sound_speed=343.0, shape=(23, 19, 17), layer=3, origin=(-0.1, -0.05, 0.02))
    centres = np.stack(np.meshgrid(*[grid.origin[a] + grid.h * np.arange(n) for a, n in enumerate(grid.shape)],
                                   indexing="ij"), axis=-1)
    coef = np.array([3.0, -2.0, 5.0])
    p = 1.5 + centres @ coef
    rng = np.random.default_rng(4)
    lo, hi = np.asarray(grid.origin), np.asarray(grid.origin) + grid.h * (np.asarray(grid.shape) - 1)
    points = rng.uniform(lo, hi - 1e-9, (200, 3))
    probes = Probes(grid, points)
    np.testing.assert_allclose(probes.weights.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(probes.sample(p), 1.5 + points @ coef, rtol=0, atol=1e-12 * np.abs(p).max())
    for bad in (lo - [1e-6, 0, 0], hi + [0, 0, 1e-6]):
        with pytest.raises(ValueError, match="leaves the grid"):
            Probes(grid, bad[None])
