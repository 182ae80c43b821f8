"""What a run will cost, known before it starts: grid, steps, memory and a time estimate."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .backend import Backend, resolve_backend
from .scene import Scene, parse_scene

#: Edge (cells) of the calibration grid timed to estimate run time.
_CALIBRATION_CELLS = 48


@dataclass(frozen=True)
class RunEstimate:
    """Cost of a run. memory_bytes: fields + layer; seconds: measured-rate estimate of the wall time."""

    shape: tuple[int, int, int]
    cells: int
    steps: int
    step_rate: float
    courant: float
    memory_bytes: int
    seconds_per_cell_step: float

    @property
    def seconds(self) -> float:
        return self.cells * self.steps * self.seconds_per_cell_step


def calibrate(precision: str, layer: int, backend: "str | Backend" = "auto", steps: int = 6) -> float:
    """Measured seconds per cell-step of the solver on a small free-field grid."""
    from .simulation import Simulation  # late import: simulation imports scene

    n = _CALIBRATION_CELLS
    h = 0.01
    scene = parse_scene(
        f"[simulation]\nduration = 1e-3\ncell_size = {h}\nprecision = \"{precision}\"\n"
        f"[domain]\nsize = {n * h}\nabsorbing_layer = {layer}\n"
        "[[listeners]]\nname = \"c\"\nposition = [0.0, 0.0, 0.0]\n", "<calibration>")
    sim = Simulation(scene, backend=backend)
    sim.p[...] = sim.engine.asarray(np.random.default_rng(0).standard_normal(sim.p.shape) * 1e-3)
    sim.step()
    start = time.perf_counter()
    for _ in range(steps):
        sim.step()
    return (time.perf_counter() - start) / (steps * scene.grid.cells)


def estimate(scene: Scene, backend: "str | Backend" = "auto") -> RunEstimate:
    """Grid size, step count, memory and an estimated wall time for ``scene`` on ``backend``
    (calibrated here)."""
    grid = scene.grid
    item = scene.dtype.itemsize
    engine = resolve_backend(backend)
    memory = engine.field_bytes(grid, item) + grid.cells  # + solid mask
    rate = calibrate(scene.config.simulation.precision, grid.layer, engine)
    return RunEstimate(shape=grid.shape, cells=grid.cells, steps=grid.steps_for(scene.duration),
                       step_rate=grid.step_rate, courant=grid.courant, memory_bytes=memory,
                       seconds_per_cell_step=rate)
