"""Memory per cell and the largest grid that fits a given memory (issue 6's memory figures).

    python3 bench/memory.py [--gib 80] [--layer 8] [--gpu]

Counts the bytes that grow with the grid (``Backend.field_bytes``): the two pressure fields, the
absorbing layer's split pressures and face velocities (only in the layer), and the field update's
own working space. This script first checks that count against everything a real `Simulation`
allocates on small grids, for the NumPy and the Numba backends (tracemalloc sees NumPy's buffers;
the rest — ghost cells of objects, probes, index arrays — does not grow with the grid), then
solves for the largest cube of cells (layer included) that fits the given memory. The Numba step
adds the z-slabs' tiles and scratch (about L/n of a field: 0.05 B a cell at 2048³ in float32); the
GPU's field update keeps two copies of the face velocities (it reads one and writes the other): the
"GPU" columns. `wavesolve info` prints the same count, for the backend it would use, plus one byte
per cell (the solid mask; `wavesolve.plan.estimate`).
"""
from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wavesolve.backend import Backend, NumbaBackend  # noqa: E402
from wavesolve.constants import DEFAULT_LAYER_CELLS  # noqa: E402
from wavesolve.grid import Grid  # noqa: E402
from wavesolve.kernels.cuda_backend import CudaBackend  # noqa: E402
from wavesolve.scene import parse_scene  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402


def cube(n: int, layer: int) -> Grid:
    return Grid(h=0.01, dt=1e-5, sound_speed=343.0, shape=(n, n, n), layer=layer, origin=(0.0, 0.0, 0.0))


def formula_bytes(n: int, layer: int, itemsize: int, backend: Backend) -> int:
    """Bytes of an n³-cell grid (layer included) on ``backend`` (``Backend.field_bytes``)."""
    return backend.field_bytes(cube(n, layer), itemsize)


def measured_bytes(n: int, layer: int, precision: str, backend: str) -> int:
    """Bytes NumPy holds after building a free-field Simulation with an n³-cell grid (tracemalloc)."""
    h = 0.01
    scene = parse_scene(
        f"[simulation]\nduration = 1e-3\ncell_size = {h}\nprecision = \"{precision}\"\n"
        f"[domain]\nsize = {(n - 2 * layer) * h}\nabsorbing_layer = {layer}\n"
        "[[listeners]]\nname = \"c\"\nposition = [0.0, 0.0, 0.0]\n", "<memory>")
    Simulation(scene, backend=backend)      # first: module imports and caches, which do not grow with n
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sim = Simulation(scene, backend=backend)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert sim.grid.shape == (n, n, n), sim.grid.shape
    return held


def gpu_bytes(n: int, layer: int, precision: str) -> int:
    """Bytes CuPy's memory pool holds after building a free-field cupy Simulation of n³ cells."""
    import cupy

    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    before = pool.used_bytes()
    h = 0.01
    scene = parse_scene(
        f"[simulation]\nduration = 1e-3\ncell_size = {h}\nprecision = \"{precision}\"\n"
        f"[domain]\nsize = {(n - 2 * layer) * h}\nabsorbing_layer = {layer}\n"
        "[[listeners]]\nname = \"c\"\nposition = [0.0, 0.0, 0.0]\n", "<memory>")
    sim = Simulation(scene, backend="cupy")
    sim.run(3, progress=False)
    held = pool.used_bytes() - before
    del sim
    return held


def largest_cube(limit: float, layer: int, itemsize: int, backend: Backend) -> int:
    """Largest n with formula_bytes(n) ≤ limit (bisection)."""
    lo, hi = 2 * layer + 1, 2 * layer + 2
    while formula_bytes(hi, layer, itemsize, backend) <= limit:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if formula_bytes(mid, layer, itemsize, backend) <= limit else (lo, mid)
    return lo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=80.0, help="memory to fill (GiB), default 80 (an H100)")
    ap.add_argument("--layer", type=int, default=DEFAULT_LAYER_CELLS,
                    help=f"absorbing layer cells (default {DEFAULT_LAYER_CELLS}, the scenes' default)")
    ap.add_argument("--gpu", action="store_true", help="also check the count against CuPy's pool on a GPU")
    args = ap.parse_args()
    limit = args.gib * 2 ** 30
    host = {"numpy": Backend(), "numba": NumbaBackend()}
    gpu = CudaBackend(np, launch=None)       # its counts only: no device needed
    print(f"| precision | count vs allocated, 60³ / 100³ (MB): NumPy; Numba | "
          f"Numba: bytes per cell, 128³ / 512³ / 2048³ | largest cube in {args.gib:g} GiB | cells | "
          "GPU: bytes per cell | GPU: largest cube | cells |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for precision in ("float32", "float64"):
        item = np.dtype(precision).itemsize
        checks = []
        for name, backend in host.items():
            pair = []
            for n in (60, 100):
                count, real = formula_bytes(n, args.layer, item, backend), measured_bytes(n, args.layer, precision, name)
                if not count <= real <= count + 2 ** 20:   # the rest must not grow with the grid
                    raise SystemExit(f"{n}³ {precision} {name}: counted {count} B, allocated {real} B")
                pair.append(f"{count / 1e6:.2f} / {real / 1e6:.2f}")
            checks.append(", ".join(pair))
        row = [precision, "; ".join(checks)]
        for backend in (host["numba"], gpu):
            per_cell = [formula_bytes(n, args.layer, item, backend) / n ** 3 for n in (128, 512, 2048)]
            n = largest_cube(limit, args.layer, item, backend)
            row += [" / ".join(f"{b:.2f}" for b in per_cell), f"{n}³", f"{n ** 3 / 1e9:.2f} G"]
        print("| " + " | ".join(row) + " |")
    if args.gpu:
        print()
        print("| precision | grid | counted (MB) | held by CuPy's pool after 3 steps (MB) |")
        print("| --- | --- | --- | --- |")
        for precision in ("float32", "float64"):
            for n in (128, 512):
                count = formula_bytes(n, args.layer, np.dtype(precision).itemsize, gpu)
                print(f"| {precision} | {n}³ | {count / 1e6:.1f} | {gpu_bytes(n, args.layer, precision) / 1e6:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
