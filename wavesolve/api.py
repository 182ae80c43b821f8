"""The Python entry point: ``simulate(scene) -> Result``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import resample
from .backend import resolve_backend
from .farfield import layout, listener_signals
from .result import Result
from .scene import Scene, load_scene
from .simulation import PointSource, Simulation
from .version import __version__


def simulate(scene: Scene | str | Path, *, backend: str = "auto", progress: bool | None = None,
             sources: Sequence[PointSource] = (), chunks: int | str = 1) -> Result:
    """Simulate a scene and return listener signals at the scene's output sample rate.

    Args:
        scene: a Scene from :func:`load_scene`, or a path to a scene file.
        backend: ``auto``, ``numpy``, ``numba`` or ``cupy`` (see wavesolve.backend).
        progress: show a progress bar (default: when stderr is a terminal).
        sources: extra point monopoles (validation and tests; not with chunks ≠ 1 or travelling objects).
        chunks: time-parallel chunks, run here one after the other: a count (uniform) or ``"auto"``
            (cut at silent gaps). For parallel workers see :func:`wavesolve.runners.run_chunks`.
    """
    from .chunks import plan_chunks, run_chunk

    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    start = time.perf_counter()
    engine = resolve_backend(backend)
    if sources:
        if chunks != 1 or scene.travellers:
            raise ValueError("point sources are not windowed by chunks and not followed by boxes; use chunks=1 "
                             "and no travelling objects")
        from .slices import SliceRecorder, run_with_slices

        lay = layout(scene)
        sim = Simulation(scene, backend=engine, sources=sources, probe_points=lay.points)
        recorder = SliceRecorder(scene.slices)
        recorder.take(sim)
        raw = run_with_slices(sim, scene.grid.steps_for(scene.duration), recorder, progress=progress)[None]
        return make_result(scene, raw, {"backend": engine.name, "wall_time": time.perf_counter() - start},
                           slices=recorder.data)
    plan = plan_chunks(scene, chunks)
    outputs = [run_chunk(scene, plan, k, backend=engine, progress=progress) for k in range(plan.n_chunks)]
    return chunked_result(scene, plan, outputs, {"backend": engine.name, "wall_time": time.perf_counter() - start})


def chunked_result(scene: Scene, plan, outputs: list, metadata: dict) -> Result:
    """The Result of the chunk outputs of a run (``wavesolve.chunks``; one chunk for a plain run):
    the fixed box's probe signals, the travelling boxes' and the slices, each summed over the
    chunks, and ``metadata`` with the plan's and the boxes' facts."""
    from .chunks import stitch, stitch_boxes, stitch_slices

    info = {"chunks": plan.n_chunks, "chunk_mode": plan.mode}
    extra = None
    if scene.travellers:
        from .travelling import check_travellers, travelling_listeners

        boxes = stitch_boxes(plan, outputs)
        extra = travelling_listeners(scene, boxes)
        info["interaction_warnings"] = " | ".join(check_travellers(scene, quiet=True))  # logged at load
        over = f" over {plan.n_chunks} chunks" if plan.n_chunks > 1 else ""
        info["travelling_boxes"] = "; ".join(f"{name}: grid {tuple(int(n) for n in box.shape)}, shifted "
                                             f"{[int(x) for x in box.shifts]} cells{over}"
                                             for name, box in boxes.items())
    return make_result(scene, stitch(plan, outputs), {**info, **metadata}, extra=extra,
                       slices=stitch_slices(outputs))


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
