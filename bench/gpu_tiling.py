"""The cell kernel's tiling swept on a GPU: which is fastest, and are all equal.

    python3 bench/gpu_tiling.py [--cases 88,128,200s,256,384,384d] [--rounds 2] [--repeats 30] [--top 12]
    ncu ... python3 bench/gpu_tiling.py --ncu 256      (one interior launch, then one layer launch)

Needs CuPy and a GPU. For each case of bench/gpu_profile.py (the 88³ real-time grid; free-field
grids, float32; 256d, 384d: float64), each block size, x chunk (planes an interior thread marches),
z width (cells an interior thread updates along z, one access of up to 16 bytes) and tile width
(threads along z; kernels/cuda_backend.py, ``CudaFieldUpdate.set_tiling``), and for z width 1 also
with the kernel built for width 1 alone (``-DWS_ZVEC_MAX=1``), each with the default layer group
(cells a layer thread updates along z), and with the default interior each other layer group, and
the kernel built for groups of 1 alone (``-DWS_LAYER_VEC_MAX=1``: 40 registers instead of 64 in
float32; the package's build until the sixteenth session), it

- checks the launch bit for bit against the driver's default (same random fields and layer state:
  p⁺, split pressures and the face velocities written, whose buffer is poisoned with NaN first);
- times the cell kernel alone, all of its blocks, the interior's alone and the layer's alone (mean
  device µs of ``repeats`` back-to-back launches queued behind a spin kernel, median of 5), in
  ``rounds`` rounds.

Prints a table per case, fastest first: build, block, x chunk, z width, tile width, layer group, µs
(each round), G cell updates/s, and the interior's bytes per second at 3 values a cell (its floor);
the driver's default is marked. Random fields, never zeros (METHOD.md). In the fourteenth session
(bench/RESULTS.md) the sweep also built the kernel with ``__restrict__`` on its arrays, and with
launch bounds: neither was faster.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wavesolve.simulation import Simulation  # noqa: E402

from gpu_profile import _SPIN, CASES, cell_kernel_segments, launch_time  # noqa: E402  (bench/ is the script's folder)

BLOCKS = (128, 256)
XCHUNKS = (1, 2, 4, 8, 16)
#: The kernel builds compared: the package's ("all"; layer groups up to kernels/cuda_backend.py's
#: LAYER_VEC_BUILT), one with only the width-1 interior, and one with only layer groups of 1 (each
#: fewer registers). Each: its NVRTC options and its widest layer group (None: the package's).
BUILDS = {"all": ((), None), "z1": (("-DWS_ZVEC_MAX=1",), None), "layer1": (("-DWS_LAYER_VEC_MAX=1",), 1)}


def random_state(cupy, sim: Simulation, seed: int = 1) -> dict:
    """Random p, p⁻, split pressures and face velocities (float, never zeros) on the device."""
    rng = np.random.default_rng(seed)
    update = sim._update
    state = {"p": rng.standard_normal(sim.p.shape) * 1e-3, "out": rng.standard_normal(sim.p.shape) * 1e-3,
             "p_aux": rng.standard_normal(update.p_aux.shape) * 1e-3,
             "v_old": rng.standard_normal(update._v[0].shape) * 1e-6}
    state["scratch"] = state["out"]                 # the timed launches' p⁻ / p⁺, overwritten
    return {k: cupy.asarray(v.astype(sim.dtype)) for k, v in state.items()}


def one_launch(cupy, update, state: dict) -> tuple:
    """The cell kernel once from ``state`` (copied): (p⁺, split pressures, face velocities written)."""
    out, p_aux = state["out"].copy(), state["p_aux"].copy()
    v_old = state["v_old"].copy()
    v_new = cupy.full_like(v_old, np.nan)
    saved = update.p_aux, update._v
    update.p_aux, update._v = p_aux, [v_old, v_new]
    try:
        update.launch_blocks(state["p"], out, update.seg_start, update.n_blocks)
    finally:
        update.p_aux, update._v = saved
    cupy.cuda.runtime.deviceSynchronize()
    return out, p_aux, v_new


def same_bits(cupy, a, b) -> bool:
    unsigned = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return bool(cupy.array_equal(a.view(unsigned), b.view(unsigned)))


def builds(cupy, update) -> dict:
    """Each build's cell kernel for the update's kernel name and precision, with its widest layer
    group."""
    from wavesolve.kernels.cuda_backend import KERNEL_SUFFIX, NVRTC_OPTIONS, kernel_source

    name = f"{update.kernel}_{KERNEL_SUFFIX[update.dtype]}"
    out = {}
    for build, (options, layer_max) in BUILDS.items():
        if not options:
            out[build] = (update.launch.kernels[name], update.launch.layer_vec_max)
        else:
            # the package's options and layer groups, unless this build sets its own
            package = () if layer_max else (f"-DWS_LAYER_VEC_MAX={update.launch.layer_vec_max}",)
            module = cupy.RawModule(code=kernel_source(), options=NVRTC_OPTIONS + package + options)
            out[build] = (module.get_function(name), layer_max or update.launch.layer_vec_max)
    return out


def sweep(cupy, spin, key: str, rounds: int, repeats: int, top: int) -> None:
    label, scene = CASES[key]
    sim = Simulation(scene(), backend="cupy")
    update = sim._update
    state = random_state(cupy, sim)
    default = ("all", update.block, update.xchunk, update.zvec, update.lanes, update.lvec)
    reference = one_launch(cupy, update, state)
    L = sim.grid.layer
    interior_cells = int(np.prod([n - 2 * L for n in sim.grid.shape]))
    item = sim.dtype.itemsize
    kernels = builds(cupy, update)
    name = f"{update.kernel}_{'f32' if item == 4 else 'f64'}"
    shapes = sorted({(b, x, z, n) for b in BLOCKS + (default[1],) for x in XCHUNKS + (default[2],)
                     for z in update.z_widths for n in (8, 16, 32)})
    lvec = update.lvec
    usual = [t for t in shapes if t[2] == update.zvec and t[3] == update.lanes]   # the default interior
    tilings = ([("all", *t, lvec) for t in shapes] + [("z1", *t, lvec) for t in shapes if t[2] == 1]
               + [("all", *t, lv) for t in usual for lv in update.z_widths if lv != lvec
                  and lv <= update.launch.layer_vec_max] + [("layer1", *t, 1) for t in usual])
    rows: dict[tuple, list] = {}
    failures = []
    for r in range(rounds):
        for tiling in (tilings if r % 2 == 0 else tilings[::-1]):     # alternate the order
            build, *shape = tiling
            update.launch.kernels[name], update.launch.layer_vec_max = kernels[build]
            update.set_tiling(*shape)
            if r == 0:
                got = one_launch(cupy, update, state)
                if not all(same_bits(cupy, g, w) for g, w in zip(got, reference)):
                    failures.append(tiling)
            parts = cell_kernel_segments(cupy, update)
            # (the timed launches overwrite the scratch p⁻ / p⁺; the drawn inputs stay as they are)
            rows.setdefault(tiling, []).append(tuple(
                launch_time(cupy, spin, update, state["p"], state["scratch"], *parts[part], repeats)
                for part in ("all", "interior", "layer")))
    update.launch.kernels[name], update.launch.layer_vec_max = kernels["all"]
    update.set_tiling(*default[1:])
    regs = {build: k.num_regs for build, (k, _) in kernels.items()}
    print(f"\n{label}: {sim.grid.shape}, {sim.grid.cells / 1e6:.2f} M cells, {sim.dtype.name}, "
          f"kernel {update.kernel} (registers: {regs}); default {default}")
    print("bit-equal to the default tiling:", "all" if not failures else f"NOT {failures}")
    print("| build | block | x chunk | z width | tile lanes | layer group | all, µs | interior, µs | layer, µs | "
          "G updates/s | interior TB/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    order = sorted(rows.items(), key=lambda kv: min(t[0] for t in kv[1]))
    shown = order[:top] + [kv for kv in order[top:] if kv[0] == default]
    for tiling, times in shown:
        best = min(t[0] for t in times)
        bw = interior_cells * 3 * item / min(t[1] for t in times) / 1e6
        mark = " (default)" if tiling == default else ""
        each = " | ".join("/".join(f"{t[part]:.1f}" for t in times) for part in range(3))
        print(f"| {tiling[0]}{mark} | {' | '.join(str(v) for v in tiling[1:])} | {each} | "
              f"{sim.grid.cells / best / 1e3:.1f} | {bw:.2f} |")
    del sim
    cupy.get_default_memory_pool().free_all_blocks()


def ncu_launches(cupy, key: str) -> None:
    """The default tiling: one launch of the interior's blocks, then one of the layer's."""
    sim = Simulation(CASES[key][1](), backend="cupy")
    update = sim._update
    state = random_state(cupy, sim)
    parts = cell_kernel_segments(cupy, update)
    for part in ("interior", "layer"):
        update.launch_blocks(state["p"], state["out"], *parts[part])
    cupy.cuda.runtime.deviceSynchronize()
    L = sim.grid.layer
    inner = int(np.prod([n - 2 * L for n in sim.grid.shape]))
    print(f"{key}: interior {inner} cells, layer {sim.grid.cells - inner} cells, {sim.dtype.name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="88,128,200s,256,384,384d")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--top", type=int, default=12, help="rows shown per case (and the default's)")
    ap.add_argument("--ncu", metavar="CASE", help="only the two launches for a profiler, on CASE")
    args = ap.parse_args()
    import cupy

    if args.ncu:
        ncu_launches(cupy, args.ncu)
        return
    spin = cupy.RawModule(code=_SPIN).get_function("ws_spin")
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device {props['name'].decode()}, CuPy {cupy.__version__}")
    for key in args.cases.split(","):
        sweep(cupy, spin, key, args.rounds, args.repeats, args.top)


if __name__ == "__main__":
    main()
