"""What a run will cost, known before it starts: grid, steps, memory and a time estimate.

The time estimate times the scene's own steps (``estimate``): each simulation the run makes — the
fixed box where it holds a shader, and each travelling object's box — is built at three times of
the run and some of its whole steps are timed there (ghost cells, geometry keys, shaders, box
shifts, listeners and field update alike). A free-field grid's field-update rate (``calibrate``)
stands in only for a box too large to build here.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .backend import Backend, resolve_backend
from .constants import MOTION_BLOCK
from .errors import SceneError
from .grid import Grid
from .scene import Scene, parse_scene

if TYPE_CHECKING:
    from .chunks import ChunkPlan
    from .simulation import Simulation

#: Edge (cells) of the calibration grid timed to estimate run time.
_CALIBRATION_CELLS = 48
#: Wall seconds each timed sample of a scene's steps aims at (``estimate``), and the fewest and most
#: steps one sample times. A cheap step is timed in whole MOTION_BLOCKs (the shaders' accelerations
#: are asked for a block at a time; on the 2-core VM 40 steps of a small grid scattered by ±40 %,
#: bench/RESULTS.md); a step that takes over SAMPLE_SECONDS/8 (a large grid) varies little from one
#: step to the next, and eight of them are enough.
SAMPLE_SECONDS = 0.5
SAMPLE_STEPS = (8, 1024)
#: Most steps ``time_steps`` runs before the timed ones (warm-up runs of two and eight, two probes
#: of eight) where steps are not run in recorded blocks.
WARM_UP_STEPS = 26


@dataclass(frozen=True)
class RunCost:
    """One simulation a scene's run makes and its measured cost.

    Attributes:
        label: "fixed box", or "'NAME' box" for an object's travelling box.
        shape: its grid's cells (nx, ny, nz).
        steps: steps the run takes.
        memory_bytes: what it holds that grows with its grid (``memory_bytes``).
        setup_seconds: wall seconds to build it (geometry, shaders' set-up), measured once.
        seconds_per_step: mean wall seconds of a whole step over the timed samples.
        sampled_steps: steps timed in all; 0 when the box was too large to build here and
            seconds_per_step is a free-field grid's field-update rate times its cells.
    """

    label: str
    shape: tuple[int, int, int]
    steps: int
    memory_bytes: int
    setup_seconds: float
    seconds_per_step: float
    sampled_steps: int

    @property
    def seconds(self) -> float:
        """Estimated wall time of this simulation (s)."""
        return self.setup_seconds + self.steps * self.seconds_per_step


@dataclass(frozen=True)
class RunEstimate:
    """Cost of a run. runs: the simulations the run makes, one after another (none when it runs
    none: a travelling scene whose fixed box holds no shader and whose travelling objects have none
    either), with their measured costs; memory_bytes: the most any of them holds (``memory_bytes``;
    the scene's grid's when there are none); available_bytes: what the backend has free now."""

    shape: tuple[int, int, int]
    cells: int
    steps: int
    step_rate: float
    courant: float
    memory_bytes: int
    available_bytes: int
    backend: str
    runs: tuple[RunCost, ...]

    @property
    def fits(self) -> bool:
        """Whether the run's memory fits what is available (else it is refused: ``check_memory``)."""
        return self.memory_bytes <= self.available_bytes

    @property
    def seconds(self) -> float:
        """Estimated wall time of the whole run (s), set-up included."""
        return sum(r.seconds for r in self.runs)


def chunked_bound(est: RunEstimate, plan: "ChunkPlan") -> tuple[int, float]:
    """(steps, seconds): at most how many steps each simulation of the run takes over the chunks of
    ``plan`` (``wavesolve.chunks.ChunkPlan``: each chunk's window plus at most its tail cap, from the
    window's first step), and the compute that costs at the estimate's rates, each chunk building
    each simulation afresh. Chunks that fall quiet sooner, or whose shaders start later in their
    window, take less."""
    steps = sum(min(plan.total_steps, end + plan.tail_cap) - first
                for first, end in (plan.window(k) for k in range(plan.n_chunks)))
    return steps, sum(plan.n_chunks * r.setup_seconds + steps * r.seconds_per_step for r in est.runs)


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


def memory_bytes(grid: Grid, itemsize: int, engine: Backend, following: bool = False) -> int:
    """Bytes a run of ``grid`` holds on ``engine`` that grow with the grid: its fields, absorbing
    layer and working space (``Backend.field_bytes``) and one byte a cell (the solid mask); with
    ``following``, a travelling box's three arrays of face velocities (``FollowingSimulation``:
    axis a has n_a + 1 faces)."""
    total = engine.field_bytes(grid, itemsize) + grid.cells
    if following:
        total += itemsize * sum(grid.cells // n * (n + 1) for n in grid.shape)
    return total


def travelling_box(scene: Scene) -> bool:
    """Whether ``scene`` is a travelling box's own (``FollowingSimulation``): it holds just its
    object, which follows."""
    return bool(scene.objects) and all(o.follow_margin is not None for o in scene.objects)


def check_memory(scene: Scene, engine: Backend, copies: int = 1) -> None:
    """Raise SceneError (before anything is allocated) when ``copies`` runs of the scene's grid at
    once would need more memory than ``engine`` has available now: with Linux's overcommit the
    fields' allocation would succeed and the run be killed part-way when it touches them."""
    grid = scene.grid
    item = scene.dtype.itemsize
    box = travelling_box(scene)
    need = copies * memory_bytes(grid, item, engine, following=box)
    have = engine.available_bytes()
    if need <= have:
        return
    shape = " x ".join(map(str, grid.shape))
    where = "GPU" if engine.xp is not np else "machine"
    each = f" for each of {copies} chunks run at once" if copies > 1 else ""
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


def estimate(scene: Scene, backend: "str | Backend" = "auto", sample_steps: int | None = None) -> RunEstimate:
    """Grid size, step count, memory and an estimated wall time for ``scene`` on ``backend``,
    measured here (module docstring): each simulation of the run is built at 1/6, 1/2 and 5/6 of
    the run less one sample's length, so that the last sample ends by the run's last step (the
    shaders' work and the motion vary along it), and after a warm-up its steps are timed
    for about SAMPLE_SECONDS (``sample_steps`` steps instead, when given). The samples start
    from a silent field, as a time-parallel chunk does. Takes a few seconds, more on a large grid."""
    grid = scene.grid
    item = scene.dtype.itemsize
    engine = resolve_backend(backend)
    steps = grid.steps_for(scene.duration)
    available = engine.available_bytes()
    runs = tuple(_measure(*simulation, scene, engine, steps, available, sample_steps)
                 for simulation in _simulations(scene, engine) if simulation[-1] < steps)
    memory = max((r.memory_bytes for r in runs), default=memory_bytes(grid, item, engine))
    return RunEstimate(shape=grid.shape, cells=grid.cells, steps=steps, step_rate=grid.step_rate,
                       courant=grid.courant, memory_bytes=memory, available_bytes=available,
                       backend=engine.name, runs=runs)


def _simulations(scene: Scene, engine: Backend) -> Iterator[tuple[str, Grid, Callable[[int], "Simulation"], bool, int]]:
    """(label, grid, make(start_step) → Simulation, whether it is a travelling box, first step) of
    each simulation a run of ``scene`` makes, as ``wavesolve.simulate`` makes them: each starts
    where its shaders first sound (a silent start is skipped: ``chunks.first_sounding_step``)."""
    from .chunks import first_sounding_step
    from .simulation import Simulation   # late imports: simulation imports this module
    from .travelling import fixed_box_runs, travellers

    if fixed_box_runs(scene):
        yield ("fixed box", scene.grid, lambda start: Simulation(scene, backend=engine, start_step=start), False,
               first_sounding_step(scene))
    for trav in travellers(scene):
        if trav.obj.shaders:
            yield (f"'{trav.obj.name}' box", trav.grid(scene),
                   lambda start, trav=trav: trav.simulation(scene, engine, start_step=start), True,
                   first_sounding_step(scene, [trav.obj]))


def _measure(label: str, box: Grid, make: Callable, following: bool, first: int, scene: Scene, engine: Backend,
             total: int, available: int, sample_steps: int | None) -> RunCost:
    """The RunCost of one simulation of the run (``estimate``), which takes the steps from
    ``first`` to ``total``."""
    memory = memory_bytes(box, scene.dtype.itemsize, engine, following)
    steps = total - first
    if memory > available:
        rate = calibrate(scene.config.simulation.precision, box.layer, engine)
        return RunCost(label, box.shape, steps, memory, 0.0, rate * box.cells, 0)
    # within SAMPLE_STEPS, and a short run not timed for longer than it lasts
    most = min(SAMPLE_STEPS[1], max(SAMPLE_STEPS[0], steps // 3))
    # three samples, each ending by the run's last step where the run is long enough (past the
    # scene's duration no object's placement was checked: Simulation stops a moving object there
    # before it leaves the box): a sample takes at most WARM_UP_STEPS + ``most`` (or ``sample_steps``)
    span = max(steps - WARM_UP_STEPS - (most if sample_steps is None else sample_steps), 0)
    starts = [first + span * k // 6 for k in (1, 3, 5)]
    setup, spent, timed = None, 0.0, 0
    for start in starts:
        t0 = time.perf_counter()
        sim = make(start)
        if setup is None:
            setup = time.perf_counter() - t0
        seconds, count = time_steps(sim, sample_steps, most=most)
        spent, timed = spent + seconds, timed + count
        del sim                  # freed before the next sample is built: one box at a time in memory
    return RunCost(label, box.shape, steps, memory, setup, spent / timed, timed)


def time_steps(sim: "Simulation", count: int | None = None, start: int = 0,
               most: int = SAMPLE_STEPS[1]) -> tuple[float, int]:
    """(wall seconds, steps) of one timed ``Simulation.run`` of ``count`` steps, or of as many as
    take about SAMPLE_SECONDS (at least SAMPLE_STEPS[0], at most ``most``), in whole MOTION_BLOCKs
    (over which the shaders and motions asked ahead spread their cost) where a block takes under
    2·SAMPLE_SECONDS. Before it: warm-up runs of two steps (compilation) and eight (first calls:
    on bowl_on_table the second run still took 1 ms a step against a steady 0.23), ``start`` more
    steps and, to size the sample, a timed run of eight (another where that looks slow). Where the
    engine runs recorded blocks, whole pairs of blocks each. ``run`` returns once its samples are on
    the host, so a GPU's steps are done when the clock stops."""
    blocks = sim._block_runner()
    unit = 1 if blocks is None else 2 * blocks.K
    whole = functools.partial(_whole, unit=unit)
    sim.run(whole(2), progress=False)
    probe = whole(8)
    sim.run(probe, progress=False)
    if start:
        sim.run(start, progress=False)
    if count is None:
        per_step = math.inf
        for _ in range(2):              # first calls' costs may reach the probe too: a step that
            t = time.perf_counter()     # looks slow is measured again
            sim.run(probe, progress=False)
            per_step = max(min(per_step, (time.perf_counter() - t) / probe), 1e-9)
            if per_step * MOTION_BLOCK <= 2 * SAMPLE_SECONDS:
                break
        if per_step * MOTION_BLOCK <= 2 * SAMPLE_SECONDS and most >= MOTION_BLOCK:
            count = MOTION_BLOCK * int(np.clip(math.ceil(SAMPLE_SECONDS / (per_step * MOTION_BLOCK)), 1,
                                               most // MOTION_BLOCK))
        else:
            count = int(np.clip(math.ceil(SAMPLE_SECONDS / per_step), SAMPLE_STEPS[0],
                                min(MOTION_BLOCK, max(most, SAMPLE_STEPS[0]))))
    count = whole(count)
    t = time.perf_counter()
    sim.run(count, progress=False)
    return time.perf_counter() - t, count


def _whole(steps: int, unit: int) -> int:
    """``steps`` rounded up to a multiple of ``unit``."""
    return -(-steps // unit) * unit
