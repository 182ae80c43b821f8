"""The NumPy reference field update: absorbing layer, then the interior leapfrog by array slicing."""
from __future__ import annotations

import numpy as np

from ..absorbing import AbsorbingLayer
from ..grid import Grid


def leapfrog_interior(p: np.ndarray, out: np.ndarray, layer: int, lam2: np.generic) -> None:
    """``out = 2p − out + λ² L p`` on the box interior (every cell at least ``layer`` from the edge)."""
    x0, x1 = layer, p.shape[0] - layer
    y0, y1 = layer, p.shape[1] - layer
    z0, z1 = layer, p.shape[2] - layer
    c = (slice(x0, x1), slice(y0, y1), slice(z0, z1))
    centre = p[c]
    lap = (p[x0 - 1:x1 - 1, y0:y1, z0:z1] + p[x0 + 1:x1 + 1, y0:y1, z0:z1]
           + p[x0:x1, y0 - 1:y1 - 1, z0:z1] + p[x0:x1, y0 + 1:y1 + 1, z0:z1]
           + p[x0:x1, y0:y1, z0 - 1:z1 - 1] + p[x0:x1, y0:y1, z0 + 1:z1 + 1] - 6 * centre)
    out[c] = 2 * centre - out[c] + lam2 * lap


class ReferenceUpdate:
    """``update(p, out)``: p⁺ into ``out`` (which holds p⁻) on every cell, layer and interior."""

    def __init__(self, grid: Grid, layer: AbsorbingLayer, dtype: np.dtype) -> None:
        self.layer = layer
        self.cells = grid.layer
        self.lam2 = np.dtype(dtype).type(grid.courant ** 2)

    def __call__(self, p: np.ndarray, out: np.ndarray) -> None:
        self.layer.step(p, out)
        leapfrog_interior(p, out, self.cells, self.lam2)
