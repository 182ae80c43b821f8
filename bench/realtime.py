"""Real-time factor of a whole run: issue 6's "88³ grid at 88.2 kHz with one modal object".

    python3 bench/realtime.py [--backend auto] [--cells 88] [--duration 1.0]

Builds a scene whose grid is ``--cells``³ cells in all (the default absorbing layer included: 8 cells since the ninth session, 10 before), stepped at
88.2 kHz (cell size 7 mm, so cΔt/h = 0.556), holding one modal object — the showcase's ceramic bowl (radius 6 cm; modes by the voxel FEM at
5 mm up to 7 kHz) struck three times — and one listener 15 cm away. It then times, on one backend:

- set-up: ``load_scene`` (validation, meshes);
- a first ``wavesolve.simulate``, which also computes the bowl's modes unless they are cached
  (``~/.cache/wavesolve/modes``, or ``$WAVESOLVE_CACHE``);
- end to end: a second ``wavesolve.simulate`` (shader set-up with cached modes, the time loop, the
  far-field and resampling to 44.1 kHz), the figure the issue's target speaks of;
- the time loop alone: steps timed on a ``Simulation`` built beforehand (throughput.time_steps).

Real-time factor = seconds of audio / seconds of compute (> 1: faster than real time).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import wavesolve  # noqa: E402
from wavesolve.backend import resolve_backend  # noqa: E402
from wavesolve.constants import DEFAULT_LAYER_CELLS  # noqa: E402
from wavesolve.scene import parse_scene  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402

from throughput import time_steps  # noqa: E402  (bench/ is the script's folder)

STEP_RATE = 88200.0     # Hz
CELL = 0.007            # m
LAYER = DEFAULT_LAYER_CELLS
BOWL = REPO / "scenes" / "showcase" / "bowl.obj"


def scene_text(cells: int, duration: float) -> str:
    size = (cells - 2 * LAYER) * CELL
    return f"""
[simulation]
duration = {duration}
sample_rate = 44100.0
cell_size = {CELL}
step_rate = {STEP_RATE}

[domain]
size = {size:.6f}
absorbing_layer = {LAYER}

[[objects]]
name = "bowl"
mesh = "{BOWL}"
position = [0.0, 0.0, -0.02]

[[objects.shaders]]
type = "modal"
material = "ceramic"
resolution = 0.005
max_frequency = 7000.0
impacts = [
  {{ time = 0.01, position = [0.06, 0.0, 0.045], impulse = [-0.01, 0.0, 0.0], speed = 1.0 }},
  {{ time = {duration * 0.35:.4f}, position = [0.0, 0.06, 0.045], impulse = [0.0, -0.01, 0.0], speed = 1.0 }},
  {{ time = {duration * 0.7:.4f}, position = [-0.06, 0.0, 0.045], impulse = [0.01, 0.0, 0.0], speed = 1.0 }},
]

[[listeners]]
name = "ear"
position = [0.15, 0.0, 0.0]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--cells", type=int, default=88, help="grid cells per axis, layer included")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds of audio")
    ap.add_argument("--loop-steps", type=int, default=4096, help="steps timed for the loop-alone figure")
    args = ap.parse_args()

    engine = resolve_backend(args.backend)
    t = time.perf_counter()
    scene = parse_scene(scene_text(args.cells, args.duration), f"realtime_{args.cells}.toml")
    load = time.perf_counter() - t
    shape = "×".join(map(str, scene.grid.shape))
    steps = scene.grid.steps_for(scene.duration)

    t = time.perf_counter()
    wavesolve.simulate(scene, backend=engine, progress=False)
    first = time.perf_counter() - t
    t = time.perf_counter()
    result = wavesolve.simulate(scene, backend=engine, progress=False)
    whole = time.perf_counter() - t
    peak = float(abs(result.listener("ear")).max())

    per_step = time_steps(Simulation(scene, backend=engine), min(args.loop_steps, steps))

    print(f"backend {engine.name}, grid {shape} ({scene.grid.cells / 1e6:.2f} M cells), step rate "
          f"{scene.grid.step_rate:.0f} Hz, {steps} steps for {scene.duration} s of audio; peak |p| {peak:.3g} Pa")
    print()
    print(f"first simulate (modes computed unless cached): {first:.2f} s")
    print()
    print("| backend | grid | load_scene (s) | simulate, end to end (s) | real-time factor, end to end | "
          "loop alone (µs/step) | real-time factor, loop alone |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {engine.name} | {shape} | {load:.2f} | {whole:.2f} | {scene.duration / (whole + load):.2f}× | "
          f"{per_step * 1e6:.0f} | {1.0 / (per_step * scene.grid.step_rate):.2f}× |")


if __name__ == "__main__":
    main()
