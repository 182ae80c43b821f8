"""The Python entry point: ``simulate(scene) -> Result``."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import resample
from .result import Result
from .scene import Scene, load_scene
from .simulation import PointSource, Simulation

try:
    __version__ = version("wavesolve")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"


def simulate(scene: Scene | str | Path, *, backend: str = "auto", progress: bool | None = None,
             sources: Sequence[PointSource] = ()) -> Result:
    """Simulate a scene and return listener signals at the scene's output sample rate.

    Args:
        scene: a Scene from :func:`load_scene`, or a path to a scene file.
        backend: ``auto``, ``numpy``, ``numba`` or ``cupy`` (see wavesolve.backend).
        progress: show a progress bar (default: when stderr is a terminal).
        sources: extra point monopoles (validation and tests).
    """
    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    sim = Simulation(scene, backend=backend, sources=sources)
    steps = scene.grid.steps_for(scene.duration)
    raw = sim.run(steps, progress=progress)
    n_out = int(round(scene.duration * scene.sample_rate))
    signals, positions = {}, {}
    for lis, row in zip(scene.listeners, raw):
        out = resample(row, scene.grid.step_rate, scene.sample_rate)[:n_out]
        signals[lis.name] = np.pad(out, (0, n_out - len(out)))
        positions[lis.name] = lis.position
    grid = scene.grid
    metadata = {
        "wavesolve_version": __version__, "scene_path": str(scene.path), "cell_size": grid.h,
        "time_step": grid.dt, "grid_shape": np.asarray(grid.shape), "backend": sim.backend,
        "precision": scene.config.simulation.precision, "wall_time": sim.wall_time,
    }
    return Result(sample_rate=scene.sample_rate, signals=signals, positions=positions,
                  scene_text=scene.text, metadata=metadata)
