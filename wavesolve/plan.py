"""What a run will cost, known before it starts: grid, steps, memory and a time estimate."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .backend import Backend, resolve_backend
from .errors import SceneError
from .grid import Grid
from .scene import Scene, parse_scene

#: Edge (cells) of the calibration grid timed to estimate run time.
_CALIBRATION_CELLS = 48


@dataclass(frozen=True)
class RunEstimate:
    """Cost of a run. memory_bytes: fields, layer and solid mask (``memory_bytes``); available_bytes:
    what the backend has free now; seconds: measured-rate estimate of the wall time."""

    shape: tuple[int, int, int]
    cells: int
    steps: int
    step_rate: float
    courant: float
    memory_bytes: int
    seconds_per_cell_step: float
    available_bytes: int

    @property
    def fits(self) -> bool:
        """Whether the run's memory fits what is available (else it is refused: ``check_memory``)."""
        return self.memory_bytes <= self.available_bytes

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


def memory_bytes(grid: Grid, itemsize: int, engine: Backend) -> int:
    """Bytes a run of ``grid`` holds on ``engine`` that grow with the grid: its fields, absorbing
    layer and working space (``Backend.field_bytes``) and one byte a cell (the solid mask)."""
    return engine.field_bytes(grid, itemsize) + grid.cells


def check_memory(scene: Scene, engine: Backend, copies: int = 1) -> None:
    """Raise SceneError (before anything is allocated) when ``copies`` runs of the scene's grid at
    once would need more memory than ``engine`` has available now: with Linux's overcommit the
    fields' allocation would succeed and the run be killed part-way when it touches them."""
    grid = scene.grid
    item = scene.dtype.itemsize
    need = copies * memory_bytes(grid, item, engine)
    have = engine.available_bytes()
    if need <= have:
        return
    shape = " x ".join(map(str, grid.shape))
    where = "GPU" if engine.xp is not np else "machine"
    each = f" for each of {copies} chunks run at once" if copies > 1 else ""
    # a travelling box's scene holds just its object, which follows (FollowingSimulation)
    box = bool(scene.objects) and all(o.follow_margin is not None for o in scene.objects)
    ways = ["raise simulation.cell_size (the memory falls as its cube)",
            "shrink the object's [objects.domain] margin" if box else "shrink domain.size"]
    if scene.dtype == np.float64:
        ways.append('use precision = "float32" (half the memory)')
    if copies > 1:
        ways.insert(0, "use fewer workers")
    fix = ", ".join(ways[:-1]) + " or " + ways[-1]
    raise SceneError(str(scene.path), "simulation.cell_size",
                     f"the {shape}-cell grid ({scene.dtype.name}) needs about {need / copies / 2**30:.1f} GiB{each}, "
                     f"but this {where} has {have / 2**30:.1f} GiB available (wavesolve info shows the count)", fix)


def estimate(scene: Scene, backend: "str | Backend" = "auto") -> RunEstimate:
    """Grid size, step count, memory and an estimated wall time for ``scene`` on ``backend``
    (calibrated here)."""
    grid = scene.grid
    item = scene.dtype.itemsize
    engine = resolve_backend(backend)
    memory = memory_bytes(grid, item, engine)
    rate = calibrate(scene.config.simulation.precision, grid.layer, engine)
    return RunEstimate(shape=grid.shape, cells=grid.cells, steps=grid.steps_for(scene.duration),
                       step_rate=grid.step_rate, courant=grid.courant, memory_bytes=memory,
                       seconds_per_cell_step=rate, available_bytes=engine.available_bytes())
