"""Where a GPU step's time goes: copy-bandwidth ceilings and each kernel's device time.

    python3 bench/gpu_profile.py [--steps 20]

Needs CuPy and a GPU. Prints:

- the copy-bandwidth ceilings of bench/throughput.py (bytes read plus bytes written per second);
- per kernel, its mean device time in µs per step for the issue's real-time case (bench/realtime.py:
  88³ with the modal bowl) and for free-field 256³ and 384³ grids (float32).

Kernel times are taken with device events around each launch while a long kernel ahead of them
keeps the GPU busy, so the host's launch latency falls outside them.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wavesolve.scene import parse_scene  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402

from realtime import scene_text  # noqa: E402  (bench/ is the script's folder)
from throughput import free_field, gpu_bandwidth  # noqa: E402

_SPIN = r"""
extern "C" __global__ void ws_spin(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def ceilings() -> None:
    print("| ceiling (two 1 GiB float32 arrays) | GB/s, read + written |\n| --- | --- |")
    for name, value in gpu_bandwidth().items():
        print(f"| {name} | {value / 1e9:.0f} |")


def kernel_times(cupy, module, sim: Simulation, steps: int) -> dict[str, float]:
    """Mean device µs per step of each kernel over ``steps`` single steps."""
    launch = sim.engine.launch
    events: list[tuple[str, object, object]] = []

    def timed(name, dtype, n, args, **shape):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        launch(name, dtype, n, args, **shape)
        stop.record()
        events.append((name, start, stop))

    for _ in range(3):
        sim.step()
    cupy.cuda.runtime.deviceSynchronize()
    sim.engine.launch = timed
    sim._update.launch = timed
    sim.ghosts.launch = timed
    sim.probes.launch = timed
    try:
        module.get_function("ws_spin")((1,), (1,), (np.int64(400_000_000),))   # about 0.2 s ahead
        for _ in range(steps):
            sim.step()
        cupy.cuda.runtime.deviceSynchronize()
    finally:
        sim.engine.launch = launch
    total: dict[str, float] = defaultdict(float)
    for name, start, stop in events:
        total[name] += cupy.cuda.get_elapsed_time(start, stop) * 1e3
    return {name: t / steps for name, t in total.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cases", default="88,256,384", help="which of the cases: 88, 256, 384")
    ap.add_argument("--no-ceilings", action="store_true")
    args = ap.parse_args()
    import cupy

    module = cupy.RawModule(code=_SPIN)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device {props['name'].decode()}, CuPy {cupy.__version__}, CUDA runtime "
          f"{cupy.cuda.runtime.runtimeGetVersion()}\n")
    if not args.no_ceilings:
        ceilings()
    cases = {"88": ("88³ modal bowl (real-time case)", lambda: parse_scene(scene_text(88, 0.05), "realtime.toml")),
             "256": ("256³ free field", lambda: free_field(256, "float32")),
             "384": ("384³ free field", lambda: free_field(384, "float32"))}
    for key in args.cases.split(","):
        label, scene = cases[key]
        sim = Simulation(scene(), backend="cupy")
        times = kernel_times(cupy, module, sim, args.steps)
        cells = sim.grid.cells
        print(f"\n{label}: {sim.grid.shape}, {cells / 1e6:.2f} M cells, {sim.dtype.name}")
        print("| kernel | µs per step |\n| --- | --- |")
        for name, t in sorted(times.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {t:.1f} |")
        print(f"| all kernels | {sum(times.values()):.1f} |")
        del sim
        cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
