"""Listener probes inside the box: trilinear sampling of the pressure field every step."""
from __future__ import annotations

import numpy as np

from .grid import Grid


#: The 8 corners of a cell's trilinear stencil, in np.ndindex(2, 2, 2) order.
_CORNERS = np.array(list(np.ndindex(2, 2, 2)), dtype=np.int64)


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
        # per corner c (np.ndindex(2, 2, 2) order) and axis a: frac or 1 − frac; the weight is the
        # product over the axes, x first
        factor = np.where(_CORNERS[None, :, :] == 1, frac[:, None, :], 1.0 - frac[:, None, :])   # (n, 8, 3)
        self.weights = (factor[:, :, 0] * factor[:, :, 1]) * factor[:, :, 2]
        if len(base) and (base.min(initial=0) < 0 or np.any(base.max(axis=0) + 1 >= grid.shape)):
            raise ValueError("a probe position's trilinear stencil leaves the grid")
        corner = base[:, None, :] + _CORNERS[None, :, :]                                          # (n, 8, 3)
        self.cells = (corner[..., 0] * grid.shape[1] + corner[..., 1]) * grid.shape[2] + corner[..., 2]

    def rows(self, start: int, stop: int) -> "Probes":
        """The probes ``start`` to ``stop`` − 1 (their arrays are views of this one's)."""
        part = Probes.__new__(Probes)
        part.cells, part.weights = self.cells[start:stop], self.weights[start:stop]
        return part

    def sample(self, p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Pressure (n,) in Pa at the probe positions (into ``out`` when given), in float64: the
        8 weighted corners summed in pairs, ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)), the order
        the compiled samplers use too (``kernels/cpu_blocks.py``, the GPU's ``ws_probe``)."""
        w = p.reshape(-1)[self.cells] * self.weights
        total = ((w[:, 0] + w[:, 1]) + (w[:, 2] + w[:, 3])) + ((w[:, 4] + w[:, 5]) + (w[:, 6] + w[:, 7]))
        if out is None:
            return total
        out[...] = total
        return out
