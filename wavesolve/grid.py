"""The simulation grid: cell size, time step, box placement and the absorbing layer.

Cells are cubes of edge h; cell (i, j, k) has its centre at ``origin + h·(i, j, k)``. The
accurately simulated box ("interior", the scene's ``domain.size``) is surrounded by ``layer`` cells
of absorbing layer on every side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import DEFAULT_COURANT

#: A scene's grid has a multiple of this many cells along z, the interior padded with up to 3
#: cells of air at its top (``Grid.build``): then every row of the field starts on a 16-byte
#: boundary, which the GPU's cell kernel needs for its widest accesses (kernels/cuda_backend.py,
#: ZVEC and LAYER_VEC_BUILT; on an H200, 4 cells a thread instead of 1 made the float32 interior
#: about 18 % and the layer about 25 % faster, bench/RESULTS.md, fifteenth and sixteenth sessions).
Z_CELLS_MULTIPLE = 4


@dataclass(frozen=True)
class Grid:
    """Grid geometry and time step.

    Attributes:
        h: cell size (m).
        dt: time step (s).
        sound_speed: c (m/s).
        shape: total cells (nx, ny, nz), absorbing layer included.
        layer: absorbing-layer thickness (cells).
        origin: (3,) world position of the centre of cell (0, 0, 0) (m).
        ground: True when a rigid floor lies on the interior's bottom face (z = interior_bounds
            [0, 2], between cell layers ``layer − 1`` and ``layer``) instead of an absorbing layer.
    """

    h: float
    dt: float
    sound_speed: float
    shape: tuple[int, int, int]
    layer: int
    origin: tuple[float, float, float]
    ground: bool = False

    @classmethod
    def build(
        cls,
        center: np.ndarray,
        size: np.ndarray,
        h: float,
        sound_speed: float,
        layer: int,
        courant: float | None = None,
        step_rate: float | None = None,
        ground_height: float | None = None,
        z_multiple: int = 1,
    ) -> "Grid":
        """Grid whose interior covers ``size`` (m, rounded up to whole cells) around ``center``.

        With ``ground_height`` the interior's bottom face is placed exactly at that z (a rigid floor).
        With ``z_multiple`` the grid's cells along z are padded to a multiple of it by cells of air
        added at the interior's top: every cell, and so every object's discretisation, stays where
        the unpadded grid has it.
        """
        interior = np.maximum(np.ceil(np.asarray(size, dtype=np.float64) / h - 1e-9).astype(int), 4)
        origin = np.asarray(center, dtype=np.float64) - (interior / 2.0 + layer - 0.5) * h
        interior[2] += -(interior[2] + 2 * layer) % z_multiple
        shape = tuple(int(n) + 2 * layer for n in interior)
        if ground_height is not None:
            origin[2] = ground_height + (0.5 - layer) * h
        if step_rate is not None:
            dt = 1.0 / step_rate
        else:
            dt = (courant if courant is not None else DEFAULT_COURANT) * h / sound_speed
        return cls(h=h, dt=dt, sound_speed=sound_speed, shape=shape, layer=layer,
                   origin=tuple(float(o) for o in origin), ground=ground_height is not None)

    @property
    def courant(self) -> float:
        """λ = cΔt/h."""
        return self.sound_speed * self.dt / self.h

    @property
    def step_rate(self) -> float:
        """Time steps per second (Hz)."""
        return 1.0 / self.dt

    @property
    def mirror_rows(self) -> int:
        """Rows under a ground's floor that mirror the rows above it (``Backend.mirror_floor``):
        min(layer, nz − 2·layer), 0 without a ground."""
        return min(self.layer, self.shape[2] - 2 * self.layer) if self.ground else 0

    @property
    def cells(self) -> int:
        return int(np.prod(self.shape))

    def interior_bounds(self) -> np.ndarray:
        """(2, 3) world bounds (m) of the interior box: the faces where the absorbing layer starts."""
        o = np.asarray(self.origin)
        lo = o + (self.layer - 0.5) * self.h
        hi = o + (np.asarray(self.shape) - self.layer - 0.5) * self.h
        return np.stack([lo, hi])

    def centres(self, index: np.ndarray) -> np.ndarray:
        """World positions (n, 3) of cell centres for integer indices (n, 3)."""
        return np.asarray(self.origin) + self.h * np.asarray(index, dtype=np.float64)

    def fractional_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous cell coordinates (n, 3) of world points (cell centres at integers)."""
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.origin)) / self.h

    def steps_for(self, duration: float) -> int:
        """Number of time steps to cover [0, duration] (samples t_n = nΔt, n = 0 … steps−1)."""
        return int(math.ceil(duration / self.dt - 1e-9)) + 1
