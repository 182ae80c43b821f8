"""One simulation run: the per-step loop of DESIGN.md on a fixed grid.

Per step n (time t = nΔt):
  1. shaders give aₙ at the boundary points; ghost cells are set from ∂p/∂n = −ρaₙ;
  2. listeners sample pⁿ;
  3. the absorbing layer writes pⁿ⁺¹ in its cells; the box interior takes the leapfrog
     pⁿ⁺¹ = 2pⁿ − pⁿ⁻¹ + λ² L pⁿ (+ point sources); solid cells are held at zero.

What does not depend on the field is computed ahead, MOTION_BLOCK steps at a time: moving
objects' states (``Motion.prefetch``) and, where nothing moves, the shaders' aₙ
(``boundary_acceleration_block``; on the GPU the block runner does this itself).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .absorbing import AbsorbingLayer
from .backend import resolve_backend
from .boundary_keys import boundary_system
from .constants import INSTABILITY_CHECK_INTERVAL, INSTABILITY_PRESSURE, MOTION_BLOCK
from .errors import InstabilityError, SceneError
from .floor_image import boundary_bodies
from .flux_balance import volume_entry
from .listeners import Probes
from .plan import check_memory
from .progress import step_bar, warmed_up
from .scene import Scene, format_box, misplaced, placement_clearance

log = logging.getLogger("wavesolve")


@dataclass
class PointSource:
    """A soft monopole at the cell nearest ``position`` (m).

    ``volume_acceleration(t)`` is Q̇ (m³/s²); free-field pressure p = ρ Q̇(t − r/c)/(4πr). Q must
    start and end at zero.
    """

    position: Sequence[float]
    volume_acceleration: Callable[[float], float]


@functools.cache
def _blas_controller():
    """threadpoolctl's controller, made at first use (once NumPy's BLAS is loaded)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_held(engine) -> contextlib.AbstractContextManager:
    """A context in which BLAS runs on one thread, where the engine's kernels use the host's cores
    (``Backend.host_threads``); elsewhere it changes nothing. About 8 µs to enter and leave."""
    if not engine.host_threads:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def _check_objects_cover_cells(scene: Scene, rows: list[np.ndarray]) -> None:
    """SceneError for an object with shaders that has no boundary cell at the run's start (``rows``:
    per object of ``scene.objects``, its rows in the boundary system): no cell centre lies inside
    it, so its shaders cannot move any air and the run would be silent."""
    for obj, own in zip(scene.objects, rows):
        if obj.shaders and not len(own):
            why = ("it is thinner than a cell" if obj.geometry.mesh.is_watertight else
                   "its mesh is not closed, and its winding number puts no cell inside it")
            raise SceneError(
                str(scene.path), f"objects[{scene.config_index(obj)}].mesh",
                f"object '{obj.name}' covers no cell centre at h = {scene.grid.h:g} m ({why}), so its shaders "
                f"would move no air", "give it a closed mesh at least a cell thick, or a smaller "
                "simulation.cell_size")


class Simulation:
    """The state of one run: fields, boundaries, layer and probes, stepped by :meth:`step`.

    A run may start at a later step from a silent field (a time-parallel chunk): the geometry
    takes its pose at that time and the shaders are reset to it. The shaders can be enabled only in
    a window of steps and only on some objects; the field is linear in aₙ, so runs whose windows
    and objects partition the scene add up to the whole run.

    Attributes:
        p, p_prev: pressure at steps n and n−1, grid shape (Pa), arrays of the backend's device.
        engine: the Backend (``wavesolve.backend``) whose arrays and kernels the run uses;
            ``backend`` is its name.
        n: index of the current step (p holds t = nΔt).
        shader_window: (first, end) steps in which shaders act; None: always.
        shader_objects: indices of the objects whose shaders act; None: all.
    """

    def __init__(self, scene: Scene, *, backend: str = "auto",
                 sources: Sequence[PointSource] = (), start_step: int = 0,
                 shader_window: tuple[int, int] | None = None,
                 shader_objects: Sequence[int] | None = None,
                 probe_points: np.ndarray | None = None) -> None:
        """
        Args:
            start_step: step at which the run starts (fields zero, geometry at t = start_step·Δt).
            shader_window: shaders act only at steps first ≤ n < end.
            shader_objects: shaders act only on these objects (indices into scene.objects).
            probe_points: (m, 3) points sampled every step; default the listeners' positions.
        """
        self.engine = resolve_backend(backend)
        self.backend = self.engine.name
        self.scene = scene
        grid = self.grid = scene.grid
        self.dtype = scene.dtype
        check_memory(scene, self.engine)      # SceneError before anything is allocated
        self.p = self.engine.zeros(grid.shape, self.dtype)
        self.p_prev = self.engine.zeros(grid.shape, self.dtype)
        self.ghosts = self.engine.ghost_cells(
            boundary_system(grid, boundary_bodies(scene.objects, grid), start_step * grid.dt,
                            scene.config.simulation.boundary_interval, scene.duration), self.dtype)
        _check_objects_cover_cells(scene, self.ghosts.rows)
        self.layer = AbsorbingLayer(grid, scene.density, self.dtype, self.engine.z_slabs_y_fastest)
        if probe_points is None:
            probe_points = np.array([lis.position for lis in scene.listeners])
        self.probes = self.engine.probes(Probes(grid, np.asarray(probe_points, dtype=np.float64).reshape(-1, 3)))
        self._update = self.engine.field_update(grid, self.layer, self.dtype)
        self.shader_window = shader_window
        self.shader_objects = None if shader_objects is None else frozenset(shader_objects)
        for obj in scene.objects:
            for shader in obj.shaders:
                shader.reset(start_step * grid.dt)
        self._sources = []
        scale = (grid.sound_speed * grid.dt) ** 2 * scene.density / grid.h ** 3
        for src in sources:
            idx = np.rint(grid.fractional_index(np.asarray(src.position, dtype=np.float64)[None])[0]).astype(int)
            self._sources.append((tuple(idx), scale, src.volume_acceleration))
        self._held_of: np.ndarray | None = None        # the held_cells array _hold_zero was made from
        self._hold_solid_cells()
        # moving objects over a ground: the first row's unknowns are mirrored again once solved
        self._floor_rows = bool(grid.ground and grid.mirror_rows and self.ghosts.moving)
        self._floor_of: np.ndarray | None = None       # the ghosts' index _floor_pairs was made from
        self.n = self._start_step = start_step
        self._lam2 = grid.courant ** 2
        # moving objects' motions: asked ahead for the coming steps' states, MOTION_BLOCK at a time
        # (Motion.prefetch: one vectorised call where the states are costly)
        self._motions = [o.motion for o in scene.objects if o.motion.moves]
        self._prefetched = start_step
        # past the scene's duration, moving objects' placement is checked as the run goes
        # (_check_placement_past_duration): through step _placed_through, looking this far ahead
        self._placed_through = grid.steps_for(scene.duration) - 1
        self._look_ahead = scene.config.simulation.boundary_interval
        # static geometry: the shaders' accelerations of the coming MOTION_BLOCK steps, (K, g),
        # from step ``_accel_first`` (``accelerations_ahead``)
        self._accel_first, self._accel_block = start_step, np.zeros((0, 0))
        self._in_run = False             # inside run(), which holds BLAS once for all its steps
        log.info("grid %s, h = %g m, dt = %g s, %d ghost cells", grid.shape, grid.h, grid.dt, len(self.ghosts))

    @property
    def time(self) -> float:
        """Time of the current field p (s)."""
        return self.n * self.grid.dt

    def _shaded(self):
        """(rows, points, shaders, volume) of every object whose shaders act (``shader_objects``):
        volume is the boundary input's entry for its Q̇ where its net face flux is balanced to it
        (``Body.volume``), else None."""
        g = len(self.ghosts)
        for k, (obj, body, rows, points) in enumerate(zip(self.scene.objects, self.ghosts.bodies, self.ghosts.rows,
                                                          self.ghosts.points)):
            if obj.shaders and (self.shader_objects is None or k in self.shader_objects):
                yield rows, points, obj.shaders, (volume_entry(g, k) if body.volume else None)

    def _in_window(self, n: np.ndarray | int) -> np.ndarray | bool:
        """Whether shaders act at step(s) n (``shader_window``)."""
        return True if self.shader_window is None else (self.shader_window[0] <= n) & (n < self.shader_window[1])

    def boundary_acceleration(self, t: float) -> np.ndarray:
        """The boundary input (``ghosts.inputs``,) at time t: aₙ (m/s²) at every ghost cell's
        boundary point, then each object's Q̇ (m³/s²), summed over shaders."""
        accel = np.zeros(self.ghosts.inputs)
        if not self._in_window(round(t / self.grid.dt)):
            return accel
        for rows, points, shaders, volume in self._shaded():
            for shader in shaders:
                accel[rows] += shader.normal_acceleration(t, points)
                if volume is not None:
                    accel[volume] += shader.volume_acceleration_block(np.array([t]), points)[0]
        return accel

    def _coming_times(self, first: int | None = None) -> np.ndarray:
        """The times (MOTION_BLOCK,) s of step ``first`` (default: this step) and the next ones,
        each as ``time`` gives it (n·Δt, to the bit), so that what is computed ahead for them is
        found again."""
        return ((self.n if first is None else first) + np.arange(MOTION_BLOCK)) * self.grid.dt

    def _step_acceleration(self) -> np.ndarray:
        """aₙ at this step's time. Where nothing moves, the shaders are asked for MOTION_BLOCK
        steps at once (:meth:`boundary_acceleration_block`: vectorised shaders answer a block in
        about the time of one step) and the block is kept (:meth:`accelerations_ahead`); otherwise
        :meth:`boundary_acceleration` at this time."""
        if self.ghosts.moving or not len(self.ghosts):
            return self.boundary_acceleration(self.time)
        return self.accelerations_ahead()[0]

    def accelerations_ahead(self, first: int | None = None) -> np.ndarray:
        """aₙ (m/s²) of the kept block from step ``first`` (default: this step) on, (k, g) with
        k ≥ 1, for static geometry (a new block of MOTION_BLOCK steps from ``first`` is asked for
        where none is kept for it): what :meth:`_step_acceleration`, the CPU's compiled blocks
        (kernels/cpu_blocks.py) and the GPU's recorded ones (:meth:`accelerations_into`) read, so
        that a step takes the same values however a run is cut into steps and blocks."""
        first = self.n if first is None else first
        k = first - self._accel_first
        if not 0 <= k < len(self._accel_block):
            self._accel_block = self.boundary_acceleration_block(self._coming_times(first))
            self._accel_first, k = first, 0
        return self._accel_block[k:]

    def accelerations_into(self, out: np.ndarray) -> None:
        """aₙ (m/s²) of the steps from this one on into ``out`` (K, g), from the kept blocks
        (:meth:`accelerations_ahead`; those ahead of this step are asked for as they are reached)."""
        done = 0
        while done < len(out):
            ahead = self.accelerations_ahead(self.n + done)
            count = min(len(out) - done, len(ahead))
            out[done:done + count] = ahead[:count]
            done += count

    def boundary_acceleration_block(self, times: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The boundary inputs, shape (K, ``ghosts.inputs``), at K increasing step times (s):
        boundary_acceleration at each, through the shaders' ``normal_acceleration_block`` and
        ``volume_acceleration_block`` (one call each a block); into ``out`` when given."""
        times = np.asarray(times, dtype=np.float64)
        accel = np.zeros((len(times), self.ghosts.inputs)) if out is None else out
        accel[...] = 0.0
        inside = np.broadcast_to(self._in_window(np.rint(times / self.grid.dt)), times.shape)
        if not inside.any():
            return accel
        live = slice(None) if inside.all() else np.flatnonzero(inside)
        g = len(self.ghosts)
        for rows, points, shaders, volume in self._shaded():
            every_row = len(rows) == g
            for shader in shaders:
                a = shader.normal_acceleration_block(times[live], points)
                if every_row:
                    accel[live, :g] += a
                else:
                    accel[np.ix_(np.arange(len(times))[live], rows)] += a
                if volume is not None:
                    accel[live, volume] += shader.volume_acceleration_block(times[live], points)
        return accel

    def step(self) -> np.ndarray:
        """Advance one step; returns the listener pressures (Pa) at the time the step started.

        On an engine whose kernels use the host's cores, BLAS is held to one thread during the step
        (:meth:`run` holds it once for all of its steps)."""
        if self._in_run:
            return self._step()
        with _blas_held(self.engine):
            return self._step()

    def _step(self) -> np.ndarray:
        t = self.time
        ghosts = self.ghosts
        if self._motions and self.n >= self._prefetched:
            times = self._coming_times()
            for motion in self._motions:
                motion.prefetch(times)
            self._prefetched = self.n + MOTION_BLOCK
        if self._motions and self.n + self._look_ahead > self._placed_through:
            self._check_placement_past_duration()
        if ghosts.moving and self.n > self._start_step:
            ghosts.update(t)
            self._hold_solid_cells()
            if ghosts.fresh.any():
                ghosts.apply_fresh_previous(self.p_prev, self.boundary_acceleration((self.n - 1) * self.grid.dt),
                                            self.scene.density)
        samples = self._advance(self._step_acceleration())
        self.n += 1
        if self.n % INSTABILITY_CHECK_INTERVAL == 0:
            self.check_stability()
        return samples

    def _check_placement_past_duration(self) -> None:
        """SceneError if a moving object would leave the box (or come closer to its absorbing layer
        than loading allows) at a step past the scene's duration, over which loading checked its
        placement, within the boundary system's look-ahead (``_look_ahead`` steps) from this step.
        Each step's time is checked once (``_placed_through``)."""
        scene, dt = self.scene, self.grid.dt
        steps = np.arange(max(self._placed_through + 1, self.n), self.n + self._look_ahead + 1)
        times = steps * dt
        times = times[times > scene.duration]
        for obj in scene.objects:
            if not obj.motion.moves or not len(times):
                continue
            for t, state in zip(times, obj.motion.states(times)):
                wb = obj.geometry.world_bounds(state)
                if misplaced(wb, self.grid):
                    raise SceneError(
                        str(scene.path), "simulation.duration",
                        f"object '{obj.name}' (objects[{scene.config_index(obj)}]) would reach {format_box(wb)} at "
                        f"t = {t:.6g} s, outside the simulated box {format_box(self.grid.interior_bounds())} or "
                        f"closer than {placement_clearance(self.grid)[1, 0]:.3g} m to its absorbing layer. Its "
                        f"placement was checked over the scene's duration, {scene.duration:g} s; the run stopped "
                        f"past it at t = {self.time:.6g} s (step {self.n}), {self._look_ahead} steps before that "
                        "time, because moving boundaries are computed that far ahead",
                        "raise simulation.duration to cover the run (loading the scene then checks the object's "
                        "placement over it), or run fewer steps")
        self._placed_through = int(steps[-1])

    def _hold_solid_cells(self) -> None:
        """The boundary system's cells held at zero after each field update (``held_cells``), on
        the engine (``_hold_zero``); uploaded only when the system hands over another array (a
        keyed system keeps one for a whole interval, a static one for the run). A point source's
        cell inside a static object is held too, so every solid cell but the ghosts stays 0."""
        held = self.ghosts.held_cells()
        if held is not self._held_of:
            self._held_of = held
            if self._sources and not self.ghosts.moving:
                cells = [np.ravel_multi_index(idx, self.grid.shape) for idx, _, _ in self._sources]
                held = np.union1d(held, np.intersect1d(cells, self.ghosts.solid_cells()))
            self._hold_zero = self.engine.asarray(held)

    def _advance(self, accel, samples=None):
        """The step's field work after the host's part (geometry, shaders), from p = pⁿ to pⁿ⁺¹:
        floor mirror, ghost cells for the boundary input ``accel`` (``ghosts.inputs``,), listener samples (into
        ``samples`` when given) and field update, point sources, thin-part correction and solid
        cells held at zero. Returns the samples. Leaves ``n`` alone: a block of steps recorded once and
        replayed (kernels/cuda_blocks.py) runs exactly this."""
        p, out = self.p, self.p_prev
        if self.grid.ground:
            self.engine.mirror_floor(p, self.grid)
        self.ghosts.apply(p, accel, self.scene.density)
        if self._floor_rows:
            self._mirror_unknowns(p)
        samples = self.engine.sample_and_update(self._update, self.probes, p, out, samples)
        t = self.time
        for idx, scale, signal in self._sources:
            out[idx] += scale * signal(t)
        self.engine.close_update(self.ghosts, p, out, self._lam2, self._hold_zero)
        self.p, self.p_prev = out, p
        return samples

    def _mirror_unknowns(self, p) -> None:
        """Copy the solved unknowns of the first row above the floor into their mirrors under it
        (``GhostCells.floor_mirrors``); the index arrays go to the engine once per boundary system."""
        index = self.ghosts.index
        if index is not self._floor_of:
            cells, mirrors = self.ghosts.floor_mirrors()
            self._floor_pairs = (self.engine.asarray(cells), self.engine.asarray(mirrors)) if len(cells) else None
            self._floor_of = index
        if self._floor_pairs is not None:
            self.engine.copy_cells(p, *self._floor_pairs)

    def _block_runner(self):
        """The engine's block runner for this run (made once: it records its blocks once), or None."""
        if not hasattr(self, "_blocks"):
            self._blocks = self.engine.block_runner(self) if self.blocks_allowed() else None
        return self._blocks

    def blocks_allowed(self) -> bool:
        """Whether steps may run as recorded blocks: the per-step host work is the shaders' alone
        (no geometry to follow, no point sources)."""
        return not self.ghosts.moving and not self._sources

    def layer_buffers(self) -> tuple[Any, Any]:
        """The absorbing layer's packed (split pressures, face velocities) as the field update steps
        them: its own buffers on the GPU backend (device copies; the face velocities it reads next
        are one of two it alternates between), else the layer's (``AbsorbingLayer.views``)."""
        return (getattr(self._update, "p_aux", self.layer.p_aux),
                getattr(self._update, "v_aux", self.layer.v_aux))

    def outflow(self) -> float:
        """Net volume flux (m³/s) out of the box's interior into its absorbing layer, at the last
        step (:meth:`wavesolve.absorbing.AbsorbingLayer.outflow`)."""
        return self.layer.outflow(self.layer_buffers()[1])

    def check_stability(self) -> None:
        """Raise InstabilityError if the field holds NaN/Inf or runaway pressure."""
        peak = self.engine.peak(self.p)
        if not np.isfinite(peak) or peak > INSTABILITY_PRESSURE:
            p = self.engine.to_host(self.p)
            where = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(p), np.abs(p), np.inf))),
                                     self.grid.shape)
            raise InstabilityError(
                f"the simulation became unstable at t = {self.time:.6g} s (step {self.n}): max |p| = {peak:.3g} Pa "
                f"near cell {tuple(int(i) for i in where)}. Lower simulation.courant (0.5 is safe), check "
                "shader amplitudes, and check that objects are resolved by at least a few cells.")

    def run(self, steps: int, progress: bool | None = None) -> np.ndarray:
        """Run ``steps`` steps; returns probe pressures (n_probes, steps) at the step rate (Pa)."""
        if progress is None:
            progress = sys.stderr.isatty()
        out = np.zeros((len(self.probes.weights), steps))
        record = self.engine.recorder(out)
        bar = step_bar(steps, "wavesolve", progress)
        start = time.perf_counter()
        try:
            with _blas_held(self.engine):
                self._in_run = True
                blocks = self._block_runner()
                first = 0 if blocks is None else blocks.run(self, out, bar)
                for k in range(first, steps):
                    record.put(k, self.step())
                    if k == 15 and not first:
                        warmed_up(bar, k + 1)
                    elif k % 16 == 15 or k == steps - 1:
                        bar.update(k + 1 - bar.n)
                record.flush()
        finally:
            self._in_run = False
            bar.close()
        self.wall_time = time.perf_counter() - start
        return out
