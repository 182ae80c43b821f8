"""Geometry work per step for a moving object, against the stencil work (issue 3's measurement).

A 128³-cell box (plus the absorbing layer) with one moving rigid object of about 20k triangles
(an icosphere, radius 0.1 m at h = 5 mm, spinning and translating). Each step's boundary work
(classification from the object-frame SDF lattice, ghost/fresh cells, closest points, image
weights, factorisation) is timed separately from the rest of the step (leapfrog, layer, shaders,
ghost solve). Run: ``python bench/geometry_cost.py [--backend numpy] [--steps 20]``.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from wavesolve.scene import parse_scene
from wavesolve.simulation import Simulation

SCENE = """
[simulation]
duration = 0.01
cell_size = 0.005
precision = "float32"
[domain]
size = 0.64
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.1, subdivisions = 5 }}
motion = {{ type = "spin", axis = [0.3, 0.2, 1.0], rate = 20.0 }}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 1000.0, amplitude = 10.0 }}
[[listeners]]
name = "ear"
position = [0.2, 0.1, 0.0]
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    scene = parse_scene(SCENE.format(), "geometry_cost.toml")
    t0 = time.perf_counter()
    sim = Simulation(scene, backend=args.backend)
    setup = time.perf_counter() - t0
    tris = len(scene.objects[0].geometry.mesh.faces)
    sim.step()
    ghosts = sim.ghosts
    update_times, step_times = [], []
    original = ghosts.update

    def timed_update(t: float) -> None:
        start = time.perf_counter()
        original(t)
        update_times.append(time.perf_counter() - start)

    ghosts.update = timed_update
    for _ in range(args.steps):
        start = time.perf_counter()
        sim.step()
        step_times.append(time.perf_counter() - start)
    step = float(np.median(step_times))
    geo = float(np.median(update_times))
    print(f"machine: {platform.processor() or platform.machine()}, backend {sim.backend}")
    print(f"grid {scene.grid.shape} ({scene.grid.cells / 1e6:.2f} M cells), object {tris} triangles, "
          f"{len(ghosts)} boundary cells; setup {setup:.2f} s (SDF lattice, first classification)")
    print(f"median step {step * 1e3:.1f} ms: geometry update {geo * 1e3:.1f} ms ({100 * geo / step:.0f} %), "
          f"rest {1e3 * (step - geo):.1f} ms")


if __name__ == "__main__":
    main()
