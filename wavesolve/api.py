"""The Python entry point: ``simulate(scene) -> Result``."""
from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import resample
from .backend import resolve_backend
from .farfield import layout, listener_signals
from .result import Result
from .scene import Scene, load_scene
from .simulation import PointSource, Simulation

try:
    __version__ = version("wavesolve")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"


def simulate(scene: Scene | str | Path, *, backend: str = "auto", progress: bool | None = None,
             sources: Sequence[PointSource] = (), chunks: int | str = 1) -> Result:
    """Simulate a scene and return listener signals at the scene's output sample rate.

    Args:
        scene: a Scene from :func:`load_scene`, or a path to a scene file.
        backend: ``auto``, ``numpy``, ``numba`` or ``cupy`` (see wavesolve.backend).
        progress: show a progress bar (default: when stderr is a terminal).
        sources: extra point monopoles (validation and tests; not with chunks ≠ 1).
        chunks: time-parallel chunks, run here one after the other: a count (uniform) or ``"auto"``
            (cut at silent gaps). For parallel workers see :func:`wavesolve.runners.run_chunks`.
    """
    from .chunks import plan_chunks, run_chunk, stitch, stitch_slices
    from .slices import SliceRecorder, run_with_slices
    from .travelling import fixed_box_runs

    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    start = time.perf_counter()
    engine = resolve_backend(backend)
    if scene.travellers:
        refuse_chunks(scene, chunks)
    if not sources and not fixed_box_runs(scene):
        raw = np.zeros((1, len(layout(scene).points), scene.grid.steps_for(scene.duration)))
        info = {}   # the fixed box holds no source: its field is zero and it is not run
        slices = SliceRecorder(scene.slices).data
    elif sources:
        if chunks != 1:
            raise ValueError("point sources are not windowed by chunks; use chunks=1")
        lay = layout(scene)
        sim = Simulation(scene, backend=engine, sources=sources, probe_points=lay.points)
        recorder = SliceRecorder(scene.slices)
        recorder.take(sim)
        raw = run_with_slices(sim, scene.grid.steps_for(scene.duration), recorder, progress=progress)[None]
        slices = recorder.data
        info = {}
    else:
        plan = plan_chunks(scene, chunks)
        outputs = [run_chunk(scene, plan, k, backend=engine, progress=progress) for k in range(plan.n_chunks)]
        raw = stitch(plan, outputs)
        slices = stitch_slices(outputs)
        info = {"chunks": plan.n_chunks, "chunk_mode": plan.mode}
    extra = None
    if scene.travellers:
        from .travelling import check_travellers, run_travellers

        info["interaction_warnings"] = " | ".join(check_travellers(scene, quiet=True))  # logged at load
        extra, facts = run_travellers(scene, engine, progress=progress)
        info["travelling_boxes"] = "; ".join(f"{name}: grid {tuple(int(n) for n in shape)}, shifted "
                                             f"{[int(x) for x in shifts]} cells" for name, (shape, shifts) in facts.items())
    return make_result(scene, raw, {"backend": engine.name, "wall_time": time.perf_counter() - start, **info},
                       extra=extra, slices=slices)


def refuse_chunks(scene: Scene, chunks: int | str = 2) -> None:
    """Raise ChunkError: time-parallel chunks do not cover travelling boxes (``scene.travellers``)."""
    from .errors import ChunkError

    if scene.travellers and chunks != 1:
        names = ", ".join(f"'{o.name}'" for o in scene.travellers)
        raise ChunkError(f"time-parallel chunks are not supported with travelling objects ({names} follow their own "
                         "box): run with one chunk and one worker, or set follow = false on those objects")


def make_result(scene: Scene, raw: np.ndarray, metadata: dict, extra: np.ndarray | None = None,
                slices: dict[str, np.ndarray] | None = None) -> Result:
    """The Result of a run from its probe signals raw (groups, probes, steps) at the step rate:
    listener signals (samples in the box, far-field estimates outside, plus ``extra`` (listeners,
    steps) from travelling boxes), resampled once to the output rate; and the pressure slices
    recorded, slice name → (times, n_a, n_b) Pa (``wavesolve.slices``)."""
    from .slices import make_slices

    grid = scene.grid
    steps = listener_signals(layout(scene), raw, grid.dt)
    if extra is not None:
        steps = steps + extra
    n_out = int(round(scene.duration * scene.sample_rate))
    signals, positions = {}, {}
    for lis, row in zip(scene.listeners, steps):
        out = resample(row, grid.step_rate, scene.sample_rate)[:n_out]
        signals[lis.name] = np.pad(out, (0, n_out - len(out)))
        positions[lis.name] = lis.position
    meta = {
        "wavesolve_version": __version__, "scene_path": str(scene.path), "cell_size": grid.h,
        "time_step": grid.dt, "grid_shape": np.asarray(grid.shape),
        "precision": scene.config.simulation.precision,
        "far_field_listeners": ", ".join(lis.name for lis in scene.listeners if lis.far),
    }
    meta.update(metadata)
    return Result(sample_rate=scene.sample_rate, signals=signals, positions=positions,
                  scene_text=scene.text, metadata=meta, slices=make_slices(scene, slices or {}))
