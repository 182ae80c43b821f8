"""Where a GPU step's time goes: copy-bandwidth ceilings and each kernel's device time.

    python3 bench/gpu_profile.py [--steps 20] [--cases 88,256,384,384d] [--parts]

Needs CuPy and a GPU. Prints:

- the copy-bandwidth ceilings of bench/throughput.py (bytes read plus bytes written per second);
- per kernel, its mean device time in µs per step for the issue's real-time case (bench/realtime.py:
  88³ with the modal bowl) and for free-field 256³ and 384³ grids (float32; 384d: float64);
- with ``--parts``, the cell kernel alone with 64- and 32-bit indices, whole, interior blocks alone
  and layer blocks alone.

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


#: The cases: key → (label, scene maker).
CASES = {"88": ("88³ modal bowl (real-time case)", lambda: parse_scene(scene_text(88, 0.05), "realtime.toml")),
         "128": ("128³ free field", lambda: free_field(128, "float32")),
         "200s": ("200³ with a sphere", lambda: free_field(200, "float32", sphere=True)),
         "256": ("256³ free field", lambda: free_field(256, "float32")),
         "384": ("384³ free field", lambda: free_field(384, "float32")),
         "256d": ("256³ free field, float64", lambda: free_field(256, "float64")),
         "384d": ("384³ free field, float64", lambda: free_field(384, "float64"))}


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
    holders = (sim.engine, sim._update, sim.ghosts, sim.probes)   # each keeps its own reference
    for holder in holders:
        holder.launch = timed
    try:
        module.get_function("ws_spin")((1,), (1,), (np.int64(400_000_000),))   # about 0.2 s ahead
        for _ in range(steps):
            sim.step()
        cupy.cuda.runtime.deviceSynchronize()
    finally:
        for holder in holders:
            holder.launch = launch
    total: dict[str, float] = defaultdict(float)
    for name, start, stop in events:
        total[name] += cupy.cuda.get_elapsed_time(start, stop) * 1e3
    return {name: t / steps for name, t in total.items()}


def cell_kernel_segments(cupy, update) -> dict[str, tuple]:
    """The cell kernel's parts as launch arguments: part → (segment offsets, blocks) for all of its
    blocks, the interior's alone and the layer's alone. A part alone has the other segments empty
    (so the host build, which loops over the segments rather than the launched blocks, runs the
    same blocks)."""
    start = cupy.asnumpy(update.seg_start)
    interior = int(start[1])
    return {"all": (update.seg_start, update.n_blocks),
            "interior": (cupy.asarray(np.minimum(start, interior).astype(np.int64)), interior),
            "layer": (cupy.asarray(np.concatenate([[0, 0], start[2:] - interior]).astype(np.int64)),
                      update.n_blocks - interior)}


def launch_time(cupy, spin, update, p, out, seg, blocks: int, repeats: int) -> float:
    """Mean device µs of ``repeats`` back-to-back cell-kernel launches over ``blocks`` blocks of
    segments ``seg``, queued behind the spin kernel ``spin`` (so the host's launch latency falls
    outside them); median of 5."""
    runs = []
    for _ in range(5):
        spin((1,), (1,), (np.int64(20_000_000),))
        a, b = cupy.cuda.Event(), cupy.cuda.Event()
        a.record()
        for _ in range(repeats):
            update.launch_blocks(p, out, seg, blocks)
        b.record()
        b.synchronize()
        runs.append(cupy.cuda.get_elapsed_time(a, b) * 1e3 / repeats)
    return float(np.median(runs))


def cell_kernel_parts(cupy, module, sim: Simulation, repeats: int = 50) -> list[tuple]:
    """The cell kernel alone, with 64- and 32-bit indices (ws_cell, ws_cell32), over all its
    blocks, the interior's alone and the layer's alone. Fields and layer state are random (not
    zeros); each figure is ``launch_time``'s. Returns rows (kernel, registers, all, interior, layer)."""
    from wavesolve.kernels.cuda_backend import KERNEL_SUFFIX

    update = sim._update
    rng = np.random.default_rng(1)
    p, out = (cupy.asarray(rng.standard_normal(sim.p.shape).astype(sim.dtype) * 1e-3) for _ in range(2))
    update.p_aux[...] = cupy.asarray(rng.standard_normal(update.p_aux.shape) * 1e-3)
    for v in update._v:
        v[...] = cupy.asarray(rng.standard_normal(v.shape) * 1e-6)
    parts = cell_kernel_segments(cupy, update)
    spin = module.get_function("ws_spin")
    saved = update.kernel
    rows = []
    try:
        for kernel in ("ws_cell", "ws_cell32"):
            update.kernel = kernel
            regs = update.launch.kernels[f"{kernel}_{KERNEL_SUFFIX[sim.dtype]}"].num_regs
            times = {part: launch_time(cupy, spin, update, p, out, seg, blocks, repeats)
                     for part, (seg, blocks) in parts.items()}
            rows.append((kernel, regs, times["all"], times["interior"], times["layer"]))
    finally:
        update.kernel = saved
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cases", default="88,256,384", help="which of the cases: " + ", ".join(CASES))
    ap.add_argument("--no-ceilings", action="store_true")
    ap.add_argument("--parts", action="store_true",
                    help="also time the cell kernel alone, 64- and 32-bit indices, whole and by part")
    args = ap.parse_args()
    import cupy

    module = cupy.RawModule(code=_SPIN)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device {props['name'].decode()}, CuPy {cupy.__version__}, CUDA runtime "
          f"{cupy.cuda.runtime.runtimeGetVersion()}\n")
    if not args.no_ceilings:
        ceilings()
    for key in args.cases.split(","):
        label, scene = CASES[key]
        sim = Simulation(scene(), backend="cupy")
        times = kernel_times(cupy, module, sim, args.steps)
        cells = sim.grid.cells
        print(f"\n{label}: {sim.grid.shape}, {cells / 1e6:.2f} M cells, {sim.dtype.name}")
        print("| kernel | µs per step |\n| --- | --- |")
        for name, t in sorted(times.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {t:.1f} |")
        print(f"| all kernels | {sum(times.values()):.1f} |")
        if args.parts:
            print("\n| cell kernel | registers | all, µs | interior, µs | layer, µs | updates/s |")
            print("| --- | --- | --- | --- | --- | --- |")
            for kernel, regs, t_all, t_in, t_lay in cell_kernel_parts(cupy, module, sim):
                print(f"| {kernel} | {regs} | {t_all:.1f} | {t_in:.1f} | {t_lay:.1f} | {cells / t_all / 1e3:.1f} G |")
        del sim
        cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
