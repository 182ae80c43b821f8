"""Listener probes inside the box: trilinear sampling of the pressure field every step."""
from __future__ import annotations

import numpy as np

from .grid import Grid


class Probes:
    """Trilinear samplers for a set of world positions.

    Attributes:
        cells: (n, 8) flat indices of the surrounding cells.
        weights: (n, 8) trilinear weights (sum to 1).
    """

    def __init__(self, grid: Grid, positions: np.ndarray) -> None:
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64)).reshape(-1, 3)
        f = grid.fractional_index(positions)
        base = np.floor(f).astype(np.int64)
        frac = f - base
        n = len(positions)
        self.cells = np.zeros((n, 8), dtype=np.int64)
        self.weights = np.zeros((n, 8))
        for c, corner in enumerate(np.ndindex(2, 2, 2)):
            w = np.ones(n)
            for a in range(3):
                w = w * (frac[:, a] if corner[a] else 1.0 - frac[:, a])
            self.cells[:, c] = np.ravel_multi_index((base + np.array(corner)).T, grid.shape)
            self.weights[:, c] = w

    def sample(self, p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Pressure (n,) in Pa at the probe positions (into ``out`` when given)."""
        return np.sum(p.reshape(-1)[self.cells] * self.weights, axis=1, out=out)
