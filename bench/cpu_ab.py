"""The compiled CPU field update (or whole step) of this checkout against another version, in one process.

    mkdir -p .ab/base && git archive COMMIT wavesolve | tar -x -C .ab/base
    python3 bench/cpu_ab.py .ab/base [--sizes 200,280] [--precisions float32,float64] [--calls 100]
    python3 bench/cpu_ab.py .ab/base --whole [--piece 64] [--start 160] [--scene FILE] ...

On a shared or cache-rich machine, separate runs of bench/throughput.py scatter by ±25 % (the
development VM's 300 MiB L3 holds a 200³ float32 run), more than most changes to the step move it.
Here both versions live in one process: the other one's package (a folder holding ``wavesolve/``,
made as above) is imported under the name ``wavesolve_base`` (the package imports itself by
relative imports only). For each grid and precision, both build the Numba backend's field update
(``Backend.field_update``: leapfrog interior and absorbing layer, no object) on the same random p,
p⁻ and layer state (the stored split pressures and face velocities drawn slab by slab through
each layer's own views, never zeros, so storage orders may differ). The two then run alternately,
``calls`` times each, the order swapped every call. The first call's p⁺ of both are compared
(max |difference| / max |p⁺|): 0 when the versions store the same quantities and compute alike,
of order 1 when they store different ones (the same draws then mean different states; the
timings still compare).

Prints per case: ms per call for each version (min, 10th percentile, median), the ratio of the
medians, and the updates per second of each version's best call. Each version's first call
compiles its step (Numba's cache, per folder), outside the timing.

``--whole``: whole steps instead (``Simulation.run`` pieces of ``--piece`` steps, ghost cells,
listeners and all), on bench/throughput.py's grid with the pulsating sphere, both simulations
started from rest and first run ``--start`` steps; a "call" is then one piece, its time given per
step. The fields are compared after the last piece (max |difference| / max |p|). The shaders come
from this checkout's entry points for both versions. ``--scene FILE``: that scene instead (a
showcase, say), in its own precision and grid (``--sizes`` and ``--precisions`` are then unused);
where an object with shaders travels, its travelling box (``FollowingSimulation``) from t = 0.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import wavesolve  # noqa: E402
from throughput import free_field_text  # noqa: E402  (bench/ is the script's folder)
from wavesolve.constants import DEFAULT_LAYER_CELLS  # noqa: E402


def load_other(folder: Path):
    """The package in ``folder``/wavesolve, imported as ``wavesolve_base``."""
    init = folder / "wavesolve" / "__init__.py"
    if not init.is_file():
        sys.exit(f"{folder}: no wavesolve/__init__.py there (make it with git archive COMMIT wavesolve | tar -x -C DIR)")
    spec = importlib.util.spec_from_file_location("wavesolve_base", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["wavesolve_base"] = module
    spec.loader.exec_module(module)
    return module


class Version:
    """One version's numba field update on ``n``³ cells, its state drawn from ``seed``."""

    def __init__(self, package, n: int, dtype: np.dtype, seed: int) -> None:
        grid_mod = importlib.import_module(f"{package.__name__}.grid")
        absorbing = importlib.import_module(f"{package.__name__}.absorbing")
        backend = importlib.import_module(f"{package.__name__}.backend")
        h, c = 0.005, 343.0
        self.grid = grid_mod.Grid(h=h, dt=0.5 * h / c, sound_speed=c, shape=(n, n, n), layer=DEFAULT_LAYER_CELLS,
                                  origin=(0.0, 0.0, 0.0))
        engine = backend.resolve_backend("numba")
        # the layout the numba step reads (its z-slabs stored y fastest)
        self.layer = absorbing.AbsorbingLayer(self.grid, 1.2, dtype, z_slabs_y_fastest=True)
        rng = np.random.default_rng(seed)
        for p_split, v in self.layer.views(self.layer.p_aux, self.layer.v_aux):
            for a in p_split:
                a[...] = rng.uniform(-1e-3, 1e-3, a.shape)
            for a in v:
                a[...] = rng.uniform(-1e-6, 1e-6, a.shape)
        self.update = engine.field_update(self.grid, self.layer, dtype)
        self.p = rng.uniform(-1e-3, 1e-3, self.grid.shape).astype(dtype)
        self.out = rng.uniform(-1e-3, 1e-3, self.grid.shape).astype(dtype)
        self.first = None

    def call(self) -> float:
        t = time.perf_counter()
        self.update(self.p, self.out)
        return time.perf_counter() - t


def apart(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |a| (float64)."""
    return float(np.max(np.abs(a.astype(np.float64) - b))) / max(float(np.max(np.abs(a))), 1e-300)


def alternate(calls: int, timed: dict) -> dict[str, np.ndarray]:
    """``calls`` timings (ms) of each of ``timed``'s functions (each returns its own seconds),
    alternating, every other round in reverse order."""
    order = list(timed)
    times: dict[str, list[float]] = {name: [] for name in order}
    for k in range(calls):
        for name in (order if k % 2 == 0 else order[::-1]):
            times[name].append(timed[name]())
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def report(label: str, precision: str, cells: int, ms: dict[str, np.ndarray], diff: float) -> None:
    """One table row per version: ms (min / 10th percentile / median), updates/s of the best, and
    on "this" the ratio of the medians and how far apart the results are."""
    ratio = np.median(ms["this"]) / np.median(ms["base"])
    comparison = {"this": f"{ratio:.3f} | {diff:.1e}", "base": " | "}
    for name, t in ms.items():
        print(f"| {label} | {precision} | {name} | {t.min():.2f} / {np.percentile(t, 10):.2f} / "
              f"{np.median(t):.2f} | {cells / t.min() / 1e6:.2f} G | {comparison[name]} |")


def compare(base, n: int, precision: str, calls: int) -> None:
    dtype = np.dtype(precision)
    versions = {"this": Version(wavesolve, n, dtype, seed=n), "base": Version(base, n, dtype, seed=n)}
    for v in versions.values():          # compile, and keep the first p⁺ from the shared state
        v.call()
        v.first = v.out.copy()
    diff = apart(versions["this"].first, versions["base"].first)
    report(f"{n}³", precision, n ** 3, alternate(calls, {name: v.call for name, v in versions.items()}), diff)


def compare_whole(base, n: int, precision: str, calls: int, piece: int, start: int,
                  scene_file: Path | None = None) -> None:
    """Whole steps of both versions on the sphere scene, or on ``scene_file``, alternating pieces
    (``--whole``)."""
    # the shaders' entry points give this checkout's classes: let the other version accept them
    importlib.import_module(f"{base.__name__}.shading").Shader = importlib.import_module("wavesolve.shading").Shader
    if scene_file is None:
        text, path, label = free_field_text(n, precision, sphere=True), f"cpu_ab_{n}.toml", f"{n}³ + sphere"
        cells = n ** 3
    else:
        text, path = scene_file.read_text(encoding="utf-8"), scene_file
    sims = {}
    for name, package in (("this", wavesolve), ("base", base)):
        scene = importlib.import_module(f"{package.__name__}.scene").parse_scene(text, path)
        if scene_file is not None:
            precision = scene.dtype.name
            label = f"{scene_file.name} ({' × '.join(map(str, scene.grid.shape))})"
            cells = int(np.prod(scene.grid.shape))
        travelling = [t for t in importlib.import_module(f"{package.__name__}.travelling").travellers(scene)
                      if t.obj.shaders] if scene_file is not None else []
        if travelling:                   # the first travelling box, as bench/throughput.py's showcases
            t = travelling[0]
            sim = importlib.import_module(f"{package.__name__}.following").FollowingSimulation(
                scene, t.obj, t.grid(scene), t.centre, t.probe_points, backend="numba")
            label = f"{scene_file.name}, its travelling box ({' × '.join(map(str, sim.grid.shape))})"
            cells = int(np.prod(sim.grid.shape))
        else:
            sim = importlib.import_module(f"{package.__name__}.simulation").Simulation(scene, backend="numba")
        sim.run(start, progress=False)
        sims[name] = sim

    def per_step(sim):
        def run() -> float:
            t = time.perf_counter()
            sim.run(piece, progress=False)
            return (time.perf_counter() - t) / piece
        return run

    ms = alternate(calls, {name: per_step(sim) for name, sim in sims.items()})
    report(f"{label}, whole steps", precision, cells, ms, apart(sims["this"].p, sims["base"].p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", type=Path, help="folder holding the other version's wavesolve/")
    ap.add_argument("--sizes", default="200", help="grid cells per axis, layer included")
    ap.add_argument("--precisions", default="float32,float64")
    ap.add_argument("--calls", type=int, default=100, help="calls of each version")
    ap.add_argument("--whole", action="store_true", help="whole steps on the sphere scene (module docstring)")
    ap.add_argument("--piece", type=int, default=64, help="--whole: steps a call")
    ap.add_argument("--start", type=int, default=160, help="--whole: steps run before the timing")
    ap.add_argument("--scene", type=Path, default=None, help="--whole: this scene file instead of the sphere grid")
    args = ap.parse_args()
    base = load_other(args.base.resolve())
    import numba

    print(f"this: {REPO}; base: {args.base.resolve()}; Numba {numba.__version__}, "
          f"{numba.get_num_threads()} threads")
    what = "ms a step" if args.whole else "ms a call"
    results = "fields apart at the end (of max)" if args.whole else "first p⁺ apart (of max)"
    print(f"| grid | precision | version | {what}: min / 10th percentile / median | updates/s (best) | "
          f"median this / base | {results} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    if args.whole and args.scene is not None:
        compare_whole(base, 0, "", args.calls, args.piece, args.start, args.scene.resolve())
        return
    for n in (int(s) for s in args.sizes.split(",")):
        for precision in args.precisions.split(","):
            if args.whole:
                compare_whole(base, n, precision, args.calls, args.piece, args.start)
            else:
                compare(base, n, precision, args.calls)


if __name__ == "__main__":
    main()
