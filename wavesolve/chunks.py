"""Time-parallel synthesis: plan chunks of [0, duration), run one chunk, stitch chunk outputs.

The wave equation is linear in the surface accelerations aₙ. Chunk k enables the shaders only at
steps T_k ≤ n < T_{k+1} (an indicator on aₙ; the indicators of all chunks sum to one at every
step), starts from a silent field at its first step with the geometry at its pose there, and
runs past T_{k+1} until its sound has left the box: until the discrete field energy
(:func:`wavesolve.energy.leapfrog_energy`) falls below ``energy_threshold`` × its peak, or for
at most ``tail_cap`` steps, and never past the scene's last step. Each chunk records the probe
signals (listeners and far-field rays) at the step rate from its first step; **stitching adds
them at their start steps at the step rate** and resamples the sum to the output rate once. Done
at the step rate the sum is exact (chunk starts are whole steps; they are not whole output
samples), and the one resampling is the same as in an unchunked run. What remains between
``--chunks N`` and ``--chunks 1`` is the sound a chunk leaves in the box when it stops (below
the energy threshold) and floating-point rounding.

Plans: *uniform* (N equal windows, cut at whole steps) or *adaptive* (``auto``: one window per
cluster of shader activity, cut at the silent gaps between the intervals the shaders report
through :meth:`Shader.active_intervals`). Either way a chunk whose window is known to be silent
at its start skips those steps, and one that is silent throughout runs no step.

With several sounding objects and far-field listeners, every chunk runs once per source group
(see :mod:`wavesolve.farfield`); its output holds one block of probe signals per group.

Travelling objects (:mod:`wavesolve.travelling`) are cut the same way: in each chunk, every box
whose object sounds in the window starts from a silent field at the window's first active step,
placed where its object is then (``Traveller.grid``), and runs until quiet. The chunks' box probe
signals are summed at the step rate (``stitch_boxes``) and the far field is estimated once from
the sum, which is exact since the estimate is linear in them. A chunk's box may sit one cell from
where a run from t = 0 has it (the shifts' half-cell hysteresis), so its layer lies slightly
differently: that, with the sound left when a chunk stops, is what separates the two.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .backend import Backend
from .constants import CHUNK_ENERGY_CHECK_INTERVAL, CHUNK_ENERGY_THRESHOLD, CHUNK_TAIL_CAP_CROSSINGS
from .energy import leapfrog_energy
from .errors import ChunkError
from .farfield import layout
from .progress import step_bar, warmed_up
from .result import BoxRun
from .scene import Scene
from .signals import merge_intervals
from .slices import SliceRecorder, add_slices, run_with_slices

log = logging.getLogger("wavesolve")


@dataclass(frozen=True)
class ChunkPlan:
    """How a scene is cut in time.

    Attributes:
        starts: first step of each chunk's shader window (starts[0] = 0, increasing).
        total_steps: steps of the whole run; the last window ends there.
        mode: "uniform" or "adaptive".
        energy_threshold: a chunk stops once its field energy is below this fraction of its peak.
        tail_cap: most steps a chunk runs past its window.
    """

    starts: tuple[int, ...]
    total_steps: int
    mode: str = "uniform"
    energy_threshold: float = CHUNK_ENERGY_THRESHOLD
    tail_cap: int = 0

    @property
    def n_chunks(self) -> int:
        return len(self.starts)

    def window(self, k: int) -> tuple[int, int]:
        """(first, end) steps in which chunk k's shaders act."""
        if not 0 <= k < self.n_chunks:
            raise ChunkError(f"chunk {k} does not exist: the plan has chunks 0 … {self.n_chunks - 1}")
        end = self.starts[k + 1] if k + 1 < self.n_chunks else self.total_steps
        return self.starts[k], end

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ChunkPlan":
        data = json.loads(text)
        data["starts"] = tuple(data["starts"])
        return cls(**data)

    def key(self, scene_text: str) -> str:
        """Identity of a chunk's work: SHA-256 of the scene text and this plan."""
        return hashlib.sha256((scene_text + "\0" + self.to_json()).encode()).hexdigest()


@dataclass
class ChunkOutput:
    """What one chunk produced.

    Attributes:
        chunk: its index; start_step: step of its first sample.
        data: (groups, probes, steps) probe pressures (Pa) at the step rate from start_step.
        stop: why it stopped ("quiet", "cap", "end", "silent"); wall_time: seconds it ran.
        slices: slice name → (times, n_a, n_b) pressure (Pa) this chunk's field has on the scene's
            slices (``wavesolve.slices``; zero where its run does not reach a time).
        boxes: travelling object name → its box's share (``wavesolve.travelling``); a box whose
            shaders are silent in the window is not run and has no entry.
    """

    chunk: int
    start_step: int
    data: np.ndarray
    stop: str = "end"
    wall_time: float = 0.0
    info: dict = field(default_factory=dict)
    slices: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: dict[str, BoxRun] = field(default_factory=dict)


def activity(scene: Scene, t0: float, t1: float, objects: list | None = None) -> list[tuple[float, float]] | None:
    """Union of the active intervals within [t0, t1) of the shaders of ``objects`` (default: the
    fixed box's, ``scene.objects``); None if any shader does not know."""
    spans: list[tuple[float, float]] = []
    for obj in scene.objects if objects is None else objects:
        for shader in obj.shaders:
            got = shader.active_intervals(t0, t1)
            if got is None:
                return None
            spans.extend(got)
    return merge_intervals(spans)


def plan_chunks(scene: Scene, chunks: int | str = 1, *, energy_threshold: float = CHUNK_ENERGY_THRESHOLD,
                tail_cap: int | None = None) -> ChunkPlan:
    """Plan ``chunks`` uniform chunks, or ``"auto"``: adaptive chunks cut at silent gaps. The tail
    cap defaults to CHUNK_TAIL_CAP_CROSSINGS crossings of the largest box's diagonal (the fixed
    box or a travelling one).

    Raises ChunkError for a chunk count that is not a positive integer or "auto".
    """
    grid = scene.grid
    total = grid.steps_for(scene.duration)
    if tail_cap is None:
        lo, hi = grid.interior_bounds()
        diagonal = float(np.linalg.norm(hi - lo))
        if scene.travellers:            # the largest box a chunk runs
            from .travelling import travellers

            diagonal = max([diagonal] + [2.0 * math.sqrt(3.0) * t.half_size for t in travellers(scene)])
        tail_cap = int(math.ceil(CHUNK_TAIL_CAP_CROSSINGS * diagonal / grid.sound_speed / grid.dt))
    if chunks == "auto":
        spans = activity(scene, 0.0, total * grid.dt, scene.objects + scene.travellers)
        starts = [0]
        if spans:
            for (_, end_prev), (start, _) in zip(spans[:-1], spans[1:]):
                cut = int(math.floor(start / grid.dt))  # the window starts at or before the activity
                if cut > starts[-1] and cut * grid.dt > end_prev:
                    starts.append(cut)
        return ChunkPlan(tuple(starts), total, "adaptive", energy_threshold, tail_cap)
    if isinstance(chunks, str) and chunks.strip().isdigit():
        chunks = int(chunks)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ChunkError(f"chunks must be a positive integer or 'auto', got {chunks!r}")
    n = chunks
    n = min(n, total)
    starts = tuple(int(round(k * total / n)) for k in range(n))
    return ChunkPlan(starts, total, "uniform", energy_threshold, tail_cap)


def run_chunk(scene: Scene, plan: ChunkPlan, k: int, *, backend: "str | Backend" = "auto", progress: bool | None = False,
              callback: Callable[[int, int], None] | None = None) -> ChunkOutput:
    """Run chunk k of ``plan``: the fixed box (every source group) and each travelling box, each
    from the first step at which its own shaders act in the window; return their probe signals.

    ``callback(run, steps_done)`` is called every few steps, ``run`` numbering the fixed box's
    source groups and then the travelling boxes (progress; tests use it to kill a worker mid-chunk).
    """
    from .simulation import Simulation  # late imports: keep planning light
    from .travelling import travellers

    first, end = plan.window(k)
    dt = scene.grid.dt
    lay = layout(scene)
    start = time.perf_counter()
    slices = SliceRecorder(scene.slices)
    label = f"chunk {k}" if plan.n_chunks > 1 else "wavesolve"
    stops: list[str] = []

    def run(sim, i: int, name: str, recorder: SliceRecorder) -> np.ndarray:
        samples, stop = _run_until_quiet(sim, end, plan, lambda n: callback(i, n) if callback else None,
                                         progress=progress, label=name, slices=recorder)
        stops.append(stop)
        return samples

    spans = activity(scene, first * dt, end * dt)
    begin = _first_active(spans, first, dt)
    data = np.zeros((len(lay.groups), len(lay.points), 0))
    if spans != []:
        blocks = [run(Simulation(scene, backend=backend, start_step=begin, shader_window=(first, end),
                                 shader_objects=group if len(lay.groups) > 1 else None, probe_points=lay.points),
                      g, label, slices) for g, group in enumerate(lay.groups)]
        data = np.zeros((len(blocks), len(lay.points), max(b.shape[1] for b in blocks)))
        for g, b in enumerate(blocks):
            data[g, :, :b.shape[1]] = b
    boxes = {}
    for i, trav in enumerate(travellers(scene)):
        got = activity(scene, first * dt, end * dt, [trav.obj])
        if got == []:
            continue                     # silent in this window (or no shader): its box holds no sound
        b = _first_active(got, first, dt)
        sim = trav.simulation(scene, backend, start_step=b, shader_window=(first, end))
        moving = SliceRecorder(scene.slices, trav, scene)      # the slices that move with this box
        samples = run(sim, len(lay.groups) + i, f"{label}: box of '{trav.obj.name}'", moving)
        slices.data.update(moving.data)
        boxes[trav.obj.name] = BoxRun(b, samples, sim.grid.shape, sim.shifts.copy())
    stop = "silent" if not stops else "cap" if "cap" in stops else stops[0]
    out = ChunkOutput(k, begin, data, stop, time.perf_counter() - start, slices=slices.data, boxes=boxes)
    log.info("chunk %d: steps %d … %d (window %d … %d), stopped: %s, %.1f s", k, begin, begin + data.shape[2], first,
             end, stop, out.wall_time)
    if stop == "cap":
        log.warning("chunk %d hit its tail cap of %d steps with sound still in the box; the stitched result "
                    "misses that tail (raise the cap or use fewer chunks)", k, plan.tail_cap)
    return out


def first_sounding_step(scene: Scene, objects: list | None = None) -> int:
    """The step a whole run of ``objects`` (default: the fixed box's) starts from: where their
    shaders first sound (a silent start is skipped; 0 where a shader does not say when it sounds),
    or the scene's step count when they never sound (the run takes no step)."""
    total, dt = scene.grid.steps_for(scene.duration), scene.grid.dt
    spans = activity(scene, 0.0, total * dt, objects)          # as run_chunk asks for its window
    return total if spans == [] else _first_active(spans, 0, dt)


def _first_active(spans: list[tuple[float, float]] | None, first: int, dt: float) -> int:
    """The step a run of a window starting at ``first`` starts from: where its shaders' activity
    ``spans`` begins (a silent start is skipped), or ``first`` when they do not say."""
    return first if not spans else max(first, int(math.floor(spans[0][0] / dt)))


def _run_until_quiet(sim, window_end: int, plan: ChunkPlan, callback: Callable[[int], None],
                     progress: bool | None = False, label: str = "wavesolve",
                     slices: SliceRecorder | None = None) -> tuple[np.ndarray, str]:
    """Step until the window has passed and the energy is below threshold × peak (or the cap/end);
    the snapshots of ``slices`` due on the way are taken."""
    if progress is None:
        progress = sys.stderr.isatty()
    courant = sim.grid.courant
    last = min(plan.total_steps, window_end + plan.tail_cap)
    check_energy = window_end < plan.total_steps
    out: list[np.ndarray] = []
    peak, stop = 0.0, "end"
    done = 0
    # the steps run as Simulation.run pieces between checks; where the backend records blocks of
    # steps (the GPU), a piece is two blocks so that every step runs inside one
    blocks = sim._block_runner()
    interval = CHUNK_ENERGY_CHECK_INTERVAL if blocks is None else max(CHUNK_ENERGY_CHECK_INTERVAL, 2 * blocks.K)
    bar = step_bar(last - sim.n, label, progress)
    slices = slices or SliceRecorder([])
    slices.take(sim)
    try:
        while sim.n < last:
            piece = min(interval - done % interval, last - sim.n)
            out.append(run_with_slices(sim, piece, slices, progress=False))
            done += piece
            if done == piece and sim.n < last:
                warmed_up(bar, done)
            else:
                bar.update(done - bar.n)
            if done % interval == 0:
                callback(done)
                if check_energy:
                    energy = leapfrog_energy(sim.p, sim.p_prev, courant)
                    peak = max(peak, energy)
                    if sim.n >= window_end and energy <= plan.energy_threshold * peak:
                        stop = "quiet"
                        bar.total = done          # ends here: the bar shows a finished run
                        bar.refresh()
                        break
        else:
            stop = "cap" if last < plan.total_steps else "end"
    finally:
        bar.close()
    samples = np.concatenate(out, axis=1) if out else np.zeros((len(sim.probes.weights), 0))
    return samples.reshape(len(sim.probes.weights), -1), stop


def check_complete(plan: ChunkPlan, chunks: list[int]) -> None:
    """Raise ChunkError unless ``chunks`` (chunk numbers) hold each chunk of ``plan`` once."""
    have = sorted(chunks)
    if have != list(range(plan.n_chunks)):
        missing = sorted(set(range(plan.n_chunks)) - set(have))
        twice = sorted({k for k in have if have.count(k) > 1})
        raise ChunkError("cannot stitch: " + "; ".join(
            ([f"chunk(s) {', '.join(map(str, missing))} of {plan.n_chunks} missing"] if missing else [])
            + ([f"chunk(s) {', '.join(map(str, twice))} given more than once"] if twice else [])))


def stitch(plan: ChunkPlan, outputs: list[ChunkOutput]) -> np.ndarray:
    """Sum chunk outputs at their start steps: probe signals (groups, probes, total_steps) at the step rate.

    Raises ChunkError if a chunk is missing or given twice.
    """
    check_complete(plan, [o.chunk for o in outputs])
    shape = outputs[0].data.shape[:2]
    raw = np.zeros((*shape, plan.total_steps))
    for o in outputs:
        n = min(o.data.shape[2], plan.total_steps - o.start_step)
        raw[:, :, o.start_step:o.start_step + n] += o.data[:, :, :n]
    return raw


def stitch_slices(outputs: list[ChunkOutput]) -> dict[str, np.ndarray]:
    """Sum the chunks' slices: slice name → (times, n_a, n_b) pressure (Pa)."""
    total: dict[str, np.ndarray] = {}
    for o in outputs:
        add_slices(total, o.slices)
    return total


def stitch_boxes(plan: ChunkPlan, outputs: list[ChunkOutput]) -> dict[str, BoxRun]:
    """Sum each travelling box's probe signals over the chunks at their start steps: name → its
    whole run (start step 0, (m·K, total_steps) at the step rate, shifts summed over chunks)."""
    total: dict[str, BoxRun] = {}
    for o in outputs:
        for name, box in o.boxes.items():
            whole = total.setdefault(name, BoxRun(0, np.zeros((box.data.shape[0], plan.total_steps)), box.shape,
                                                  np.zeros(3, dtype=int)))
            n = min(box.data.shape[1], plan.total_steps - box.start_step)
            whole.data[:, box.start_step:box.start_step + n] += box.data[:, :n]
            whole.shifts = whole.shifts + np.asarray(box.shifts, dtype=int)
    return total
