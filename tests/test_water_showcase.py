"""The water showcase scene loads (bowl, water body, bubble file and dripping model) and steps."""
from __future__ import annotations

import numpy as np
from conftest import SCENES
from new_shaders import register_new_shaders

import wavesolve
from wavesolve.simulation import Simulation


def test_water_drops_scene_loads_and_steps(monkeypatch):
    """Seven bubbles (five drawn by the seeded dripping model, two from water_drops.csv), all under
    the flat free surface; a few solver steps just after the first drop push only that surface
    (aₙ ≠ 0 on upward water points, 0 elsewhere) and stay finite."""
    register_new_shaders(monkeypatch)
    scene = wavesolve.load_scene(SCENES / "showcase" / "water_drops.toml")
    shader = scene.objects[1].shaders[0]
    assert len(shader.bubbles) == 7 and sum(b.key.startswith(shader.context.key + ".bubbles_file")
                                            for b in shader.bubbles) == 2
    assert np.all(shader._capture > 0.8)  # 4–8 mm under a 5 cm disc
    t0 = shader.bubbles[0].time + 1e-4
    sim = Simulation(scene, backend="numpy", start_step=round(t0 / scene.grid.dt))
    out = sim.run(8, progress=False)
    assert np.all(np.isfinite(out))
    accel = sim.boundary_acceleration(sim.time)
    rows, points = sim.ghosts.rows[1], sim.ghosts.points[1]
    up = points.normal_local[:, 2] > 0.5
    assert np.any(accel[rows][up] != 0) and np.all(accel[rows][~up] == 0)
    assert np.all(accel[sim.ghosts.rows[0]] == 0)  # the bowl is silent
