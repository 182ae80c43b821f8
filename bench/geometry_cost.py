"""Geometry work per step for a moving object, against the stencil work (issue 3's measurement).

A 128³-cell box (plus the absorbing layer) with one moving rigid object of about 20k triangles
(an icosphere, radius 0.1 m at h = 5 mm, spinning). Each step's boundary work
(classification from the object-frame SDF lattice, ghost/fresh cells, closest points, image
weights, factorisation) is timed separately from the rest of the step, and broken down by phase
(``GhostCells.phase_times``), beside the ghost solve, the stencil (leapfrog and layer) and the rest.
``--motion translate`` moves it at 1 m/s instead (issue 3's quiet-motion speed: cells change side
at most steps, so fresh cells appear).
``--interval K`` sets the scene's ``boundary_interval`` (the most steps between exact updates; the
package's default when not given; 1: the exact update every step). The figures are means over
whole intervals of the K in use (the steps are rounded up to a multiple of it): the steps cost
alike only over whole intervals. One interval runs untimed first (it compiles every kernel).
Run: ``python bench/geometry_cost.py [--backend numpy] [--steps 96] [--motion translate] [--interval 1]``.
"""
from __future__ import annotations

import argparse
import os
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
{interval}
[domain]
size = 0.64
[[objects]]
name = "ball"
mesh = {{ primitive = "icosphere", radius = 0.1, subdivisions = 5 }}
motion = {motion}
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = {{ waveform = "gaussian_derivative", frequency = 1000.0, amplitude = 10.0 }}
[[listeners]]
name = "ear"
position = [0.2, 0.1, 0.0]
"""

MOTIONS = {"spin": '{ type = "spin", axis = [0.3, 0.2, 1.0], rate = 20.0 }',
           "translate": '{ type = "constant_velocity", velocity = [0.8, 0.5, 0.33] }'}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--steps", type=int, default=96, help="steps timed (rounded up to whole intervals)")
    ap.add_argument("--interval", type=int, default=None,
                    help="boundary_interval: most steps between exact updates (default: the package's)")
    ap.add_argument("--motion", choices=sorted(MOTIONS), default="spin")
    args = ap.parse_args()
    interval = "" if args.interval is None else f"boundary_interval = {args.interval}"
    scene = parse_scene(SCENE.format(motion=MOTIONS[args.motion], interval=interval), "geometry_cost.toml")
    t0 = time.perf_counter()
    sim = Simulation(scene, backend=args.backend)
    setup = time.perf_counter() - t0
    tris = len(scene.objects[0].geometry.mesh.faces)
    ghosts = sim.ghosts
    key = getattr(ghosts, "interval", 1)                    # the K in use (capped by the motion)
    for _ in range(key + 1):                                # one whole interval untimed: compiles every kernel
        sim.step()
    count = -(-args.steps // key) * key                     # whole intervals: steps 1 … count hold count/K keys
    rows: dict[str, list[float]] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            out = fn(*a, **k)
            rows.setdefault(name, [0.0] * count)[len(steps)] += time.perf_counter() - start
            return out
        return wrapper

    ghosts.update = timed("update", ghosts.update)
    ghosts.apply = timed("ghost solve", ghosts.apply)
    ghosts.apply_fresh_previous = timed("ghost solve", ghosts.apply_fresh_previous)
    sim._update = timed("stencil", sim._update)
    steps: list[float] = []
    phases: dict[str, list[float]] = {}
    for _ in range(count):
        start = time.perf_counter()
        sim.step()
        steps.append(time.perf_counter() - start)
        for name, value in ghosts.phase_times.items():
            phases.setdefault(name, []).append(value)
    mean_step = float(np.mean(steps))
    rows["rest"] = [s - rows["update"][k] - rows["ghost solve"][k] - rows["stencil"][k] for k, s in enumerate(steps)]
    # means, not medians: with a boundary interval K the steps cost alike only over whole intervals
    mean = {name: float(np.sum(v)) / count for name, v in {**rows, **phases}.items()}
    geo = mean["update"]
    print(f"machine: {platform.processor() or platform.machine()}, backend {sim.backend}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"grid {scene.grid.shape} ({scene.grid.cells / 1e6:.2f} M cells), object {tris} triangles ({args.motion}), "
          f"{len(ghosts)} boundary cells, exact boundary update every {key} steps; setup {setup:.2f} s (SDF lattice, "
          f"candidate lists, first classification)")
    print(f"mean step {mean_step * 1e3:.1f} ms over {count} steps: geometry update {geo * 1e3:.1f} ms "
          f"({100 * geo / mean_step:.0f} %), rest {1e3 * (mean_step - geo):.1f} ms")
    print("mean per step (ms, % of the step):")
    for name in ("classification", "closest points", "image weights", "solver setup", "key merge", "interpolation",
                 "other"):
        if name in mean:
            print(f"  update: {name:<16} {mean[name] * 1e3:6.2f}  {100 * mean[name] / mean_step:4.0f} %")
    boundary = geo + mean["ghost solve"]
    print(f"  ghost solve (apply)      {mean['ghost solve'] * 1e3:6.2f}  {100 * mean['ghost solve'] / mean_step:4.0f} %")
    print(f"  stencil (field update)   {mean['stencil'] * 1e3:6.2f}  {100 * mean['stencil'] / mean_step:4.0f} %")
    print(f"  rest (shaders, probes)   {mean['rest'] * 1e3:6.2f}  {100 * mean['rest'] / mean_step:4.0f} %")
    print(f"boundary work (update + ghost solve): {boundary * 1e3:.1f} ms, {100 * boundary / mean_step:.0f} % of the "
          f"step (issue 3's target: under 30 %)")


if __name__ == "__main__":
    main()
