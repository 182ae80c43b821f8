"""Throughput of each backend against the memory-bandwidth roof.

    python3 bench/throughput.py [--backends numpy,numba] [--steps 10] [--sizes 128,200,200s] [--start 0] [--rounds 5] [--quick]

Prints the machine, the measured memory bandwidth, then a table: backend, grid, precision, cell
updates per second (whole Simulation.step: ghost cells, listener sample, layer and interior
update, solid cells), the fraction of the roof, and the same for the field update alone. Then seconds of compute per second of audio
for each showcase scene (``scenes/two_tone_sphere.toml`` and ``scenes/showcase/*.toml``), from a
sample of steps (``--showcases-only`` skips the grid table).

Roof: a leapfrog cell update must move at least 3 field values (read p, read p⁻, write p⁺):
12 bytes in float32, 24 in float64. roof = bandwidth / (3 · itemsize).

Bandwidth: the best of several runs of an in-place streaming update b = 2a − b over two 512 MiB
float32 arrays (reads a and b, writes b: 12 bytes per element), once with NumPy (one thread) and
once with a Numba ``prange`` loop (all cores); the larger is the roof's bandwidth. On a GPU, the
largest of a device-to-device memcpy and the same update with 16-byte loads or with CuPy's
element-wise kernel (``gpu_bandwidth``). The roof is not a promise: a real step also moves the
layer's auxiliary fields, so stays below it.

On a host backend the last column pairs the two in time (``paired_fraction``): ``--rounds`` rounds
of the bandwidth run followed at once by ``--steps`` whole steps, each round's steps against its own
roof, median over the rounds. A shared VM's speed drifts within minutes, which the roof measured
once before the table does not follow.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wavesolve import load_scene  # noqa: E402
from wavesolve.backend import BackendError, resolve_backend  # noqa: E402
from wavesolve.constants import DEFAULT_LAYER_CELLS  # noqa: E402
from wavesolve import plan  # noqa: E402
from wavesolve.scene import parse_scene  # noqa: E402
from wavesolve.simulation import Simulation  # noqa: E402

BANDWIDTH_ELEMENTS = 128 * 2 ** 20      # float32 elements per array: 512 MiB


def machine() -> str:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f}"


def _best(fn, repeats: int) -> float:
    fn()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=None)
def _numba_stream():
    """b = 2a − b over float32 arrays with Numba ``prange`` (all cores), or None without Numba
    (made once: each paired round and bandwidth table reuses it)."""
    try:
        from numba import njit, prange
    except ImportError:
        return None

    @njit(parallel=True, cache=True)
    def stream(x, y):
        for i in prange(x.size):
            y[i] = (x[i] + x[i]) - y[i]

    return stream


def _stream_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The two 512 MiB float32 arrays a, b of the bandwidth runs."""
    a = np.random.default_rng(0).standard_normal(BANDWIDTH_ELEMENTS).astype(np.float32)
    return a, np.ones_like(a)


def _numpy_update(a: np.ndarray, b: np.ndarray):
    """b = 2a − b with NumPy on one thread, in two passes (b ← a − b, then b ← a + b: 24 bytes an
    element moved); the fair single-thread figure is the copy in ``host_bandwidth``."""
    def update():
        np.subtract(a, b, out=b)
        np.add(a, b, out=b)
    return update


def host_bandwidth() -> dict[str, float]:
    """Bytes/s of b = 2a − b (12 bytes per float32 element) with NumPy and with Numba prange."""
    a, b = _stream_arrays()
    nbytes = 3 * a.nbytes
    tmp = np.empty_like(a)
    result = {"numpy copy (1 thread)": 2 * a.nbytes / _best(lambda: np.copyto(tmp, a), 5),
              "numpy b = 2a - b (1 thread, 2 passes)": 2 * nbytes / _best(_numpy_update(a, b), 3)}
    stream = _numba_stream()
    if stream is not None:
        result["numba b = 2a - b (all cores)"] = nbytes / _best(lambda: stream(a, b), 5)
    return result


def paired_fraction(sim: Simulation, steps: int, rounds: int) -> tuple[float, float, float]:
    """(median fraction of the roof, median updates/s, median bandwidth in bytes/s) over ``rounds``
    rounds, each the host's b = 2a − b bandwidth (best of 3, Numba on all cores, else NumPy's two
    passes) and then ``steps`` whole steps of ``sim`` (``Simulation.run``, after two untimed ones
    that bring the run's arrays back into the caches), its roof taken from the bandwidth of its own
    round. A shared VM's speed drifts by up to 1.6× within a minute, bandwidth
    and step alike (bench/RESULTS.md, seventeenth and eighteenth sessions): a roof measured minutes
    away from the steps mixes two machine states, each round's ratio does not."""
    a, b = _stream_arrays()
    stream = _numba_stream()
    if stream is None:
        update, nbytes = _numpy_update(a, b), 6 * a.nbytes
    else:
        update, nbytes = (lambda: stream(a, b)), 3 * a.nbytes
    itemsize = sim.p.dtype.itemsize
    fractions, rates, bandwidths = [], [], []
    for _ in range(rounds):
        bandwidth = nbytes / _best(update, 3)
        sim.run(2, progress=False)             # the stream's 1.5 GB left the caches cold: refill
        t = time.perf_counter()
        sim.run(steps, progress=False)
        rate = sim.grid.cells * steps / (time.perf_counter() - t)
        fractions.append(rate / (bandwidth / (3 * itemsize)))
        rates.append(rate)
        bandwidths.append(bandwidth)
    return float(np.median(fractions)), float(np.median(rates)), float(np.median(bandwidths))


_STREAM4 = r"""
extern "C" __global__ void ws_stream4(const float4* a, float4* b, long long n) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += step) {
        const float4 x = a[t];
        float4 y = b[t];
        y.x = (x.x + x.x) - y.x; y.y = (x.y + x.y) - y.y; y.z = (x.z + x.z) - y.z; y.w = (x.w + x.w) - y.w;
        b[t] = y;
    }
}
"""


def gpu_bandwidth() -> dict[str, float] | None:
    """Bytes read plus bytes written per second on the GPU, three ways, over two 1 GiB float32
    arrays (median of 10 after a warm-up, timed with device events): a device-to-device memcpy,
    CuPy's element-wise b = 2a − b, and b = 2a − b with 16-byte loads. The roof is the largest:
    CuPy's element-wise kernel (4-byte loads) reached 2.5 TB/s on an H200 where the other two
    reached 4.1–4.2 TB/s (bench/RESULTS.md)."""
    try:
        import cupy
    except ImportError:
        return None
    n = 256 * 2 ** 20
    a = cupy.random.standard_normal(n, dtype=cupy.float32)
    b = cupy.ones_like(a)
    stream = cupy.ElementwiseKernel("float32 x", "float32 y", "y = (x + x) - y", "ws_stream")
    stream4 = cupy.RawModule(code=_STREAM4).get_function("ws_stream4")
    sms = cupy.cuda.Device().attributes["MultiProcessorCount"]

    def elapsed(fn) -> float:
        fn()
        times = []
        for _ in range(10):
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
        return float(np.median(times))

    copy = cupy.cuda.runtime.memcpyDeviceToDevice
    return {"memcpy device to device": 2 * a.nbytes / elapsed(
                lambda: cupy.cuda.runtime.memcpy(b.data.ptr, a.data.ptr, a.nbytes, copy)),
            "element-wise b = 2a - b (CuPy)": 3 * a.nbytes / elapsed(lambda: stream(a, b)),
            "b = 2a - b, 16-byte loads": 3 * a.nbytes / elapsed(
                lambda: stream4((sms * 8,), (512,), (a, b, np.int64(n // 4))))}


def free_field(n: int, precision: str, layer: int = DEFAULT_LAYER_CELLS, sphere: bool = False):
    """The bench grid: a box of n³ cells (layer included) at h = 1 cm, with a pulsating sphere if
    ``sphere``, and one listener."""
    return parse_scene(free_field_text(n, precision, layer, sphere), f"bench_{n}{'_sphere' if sphere else ''}.toml")


def free_field_text(n: int, precision: str, layer: int = DEFAULT_LAYER_CELLS, sphere: bool = False) -> str:
    """:func:`free_field`'s scene as TOML text (bench/cpu_ab.py parses it with another version)."""
    h = 0.01
    text = (f"[simulation]\nduration = 1.0\ncell_size = {h}\nprecision = \"{precision}\"\n"
            f"[domain]\nsize = {(n - 2 * layer) * h}\nabsorbing_layer = {layer}\n")
    if sphere:
        r = 0.2 * (n - 2 * layer) * h
        text += (f"[[objects]]\nname = \"ball\"\nmesh = {{ primitive = \"icosphere\", radius = {r}, subdivisions = 3 }}\n"
                 "position = [0.0, 0.0, 0.0]\n[[objects.shaders]]\ntype = \"prescribed\"\npattern = \"pulsate\"\n"
                 "signal = { waveform = \"sine_burst\", frequency = 500.0, amplitude = 10.0, cycles = 400 }\n")
    pos = 0.0 if not sphere else 0.35 * (n - 2 * layer) * h
    text += f"[[listeners]]\nname = \"l\"\nposition = [{pos}, 0.0, 0.0]\n"
    return text


def time_steps(sim: Simulation, steps: int, start: int = 0) -> float:
    """Seconds per whole step of ``Simulation.run`` (plan.time_steps: after a warm-up, in whole pairs
    of recorded blocks where the backend runs them)."""
    seconds, count = plan.time_steps(sim, steps, start)
    return seconds / count


def time_field_update(sim: Simulation, steps: int) -> float:
    """Seconds per call of the step's field update alone (leapfrog + layer: no ghost cells, listeners
    or per-step Python); on a GPU timed with device events around ``steps`` back-to-back calls."""
    update, p, out = sim._update, sim.p.copy(), sim.p_prev.copy()
    update(p, out)
    cuda = getattr(sim.engine.xp, "cuda", None)
    if cuda is None:
        return _best(lambda: update(p, out), max(3, steps // 4))
    start, stop = cuda.Event(), cuda.Event()
    start.record()
    for _ in range(steps):
        update(p, out)
    stop.record()
    stop.synchronize()
    return cuda.get_elapsed_time(start, stop) / 1e3 / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default="numpy,numba,cupy")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="small grids only (a smoke run)")
    ap.add_argument("--showcases-only", action="store_true", help="only the showcase scenes' table")
    ap.add_argument("--grid-only", action="store_true", help="only the grid table")
    ap.add_argument("--sizes", default="128,200,200s",
                    help="grid table's cubes, cells per axis; a trailing 's' adds a sphere (default 128,200,200s)")
    ap.add_argument("--start", type=int, default=0,
                    help="grid table: steps run before timing, after the warm-up (a window with the wave "
                         "front well into the grid; default 0)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="grid table, host backends: rounds of (bandwidth, steps) for the paired fraction "
                         "(paired_fraction; 0: off; default 5)")
    ap.add_argument("--showcase-steps", type=int, default=None,
                    help="steps timed per sample of a showcase (default: about plan.SAMPLE_SECONDS of steps, "
                         "within plan.SAMPLE_STEPS; 32 on numpy)")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    backends = []
    for name in args.backends.split(","):
        try:
            backends.append(resolve_backend(name))
        except BackendError as exc:
            print(f"skipping {name}: {exc}")
    if not args.showcases_only:
        grid_table(backends, args)
    if not args.grid_only:
        showcase_table(backends, args)


def grid_table(backends: list, args) -> None:
    """Bandwidths, then updates/s of whole steps on cubic grids against the roof."""
    bw = host_bandwidth()
    for name, value in bw.items():
        print(f"bandwidth, {name}: {value / 1e9:.1f} GB/s")
    host_bw = max(bw.values())
    gpu = gpu_bandwidth()
    gpu_bw = max(gpu.values()) if gpu else None
    for name, value in (gpu or {}).items():
        print(f"bandwidth, GPU {name}: {value / 1e9:.0f} GB/s")
    sizes = "64,96s" if args.quick else args.sizes
    cases = [(int(c.rstrip("s")), c.endswith("s")) for c in sizes.split(",")]
    print()
    print("| backend | grid | objects | precision | updates/s | roof (updates/s) | fraction of roof | "
          "field update alone (fraction) | paired rounds: fraction (updates/s, bandwidth) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for backend in backends:
        bandwidth = gpu_bw if backend.name == "cupy" else host_bw
        for n, sphere in cases:
            for precision in ("float32", "float64"):
                scene = free_field(n, precision, sphere=sphere)
                sim = Simulation(scene, backend=backend)
                steps = max(2, args.steps // 4) if backend.name == "numpy" else args.steps
                seconds = time_steps(sim, steps, args.start)
                rate = scene.grid.cells / seconds
                roof = bandwidth / (3 * np.dtype(precision).itemsize)
                alone = scene.grid.cells / time_field_update(sim, steps)
                paired = "-"
                if backend.name != "cupy" and args.rounds > 0:
                    fraction, median_rate, median_bw = paired_fraction(sim, steps, args.rounds)
                    paired = f"{fraction:.1%} ({median_rate / 1e9:.3f} G, {median_bw / 1e9:.1f} GB/s)"
                print(f"| {backend.name} | {n}³ | {'sphere' if sphere else 'none'} | {precision} | "
                      f"{rate / 1e9:.3f} G | {roof / 1e9:.2f} G | {rate / roof:.1%} | "
                      f"{alone / 1e9:.3f} G ({alone / roof:.1%}) | {paired} |", flush=True)
                del sim
    if any(backend.name != "cupy" for backend in backends):
        # a shared VM's bandwidth drifts within minutes (bench/RESULTS.md, seventeenth session):
        # measured again after the table, so that a drift shows
        after = host_bandwidth()
        print()
        print(f"bandwidth after the table (host roof above: {host_bw / 1e9:.1f} GB/s): "
              + ", ".join(f"{name} {value / 1e9:.1f} GB/s" for name, value in after.items()))


def showcase_table(backends: list, args) -> None:
    """Seconds of compute per second of audio of each showcase scene, from `wavesolve info`'s
    estimate (``plan.estimate``)."""
    print()
    print("Showcase scenes (plan.estimate, as `wavesolve info`): whole steps of each simulation the run makes")
    print("(the fixed box where it holds a shader, each travelling box) timed after set-up and a warm-up,")
    print("at 1/6, 1/2 and 5/6 of the run.")
    print()
    print("| backend | scene | grid(s) | step rate | set-up (s) | s of compute per s of audio |")
    print("| --- | --- | --- | --- | --- | --- |")
    scenes = [REPO / "scenes" / "two_tone_sphere.toml", *sorted((REPO / "scenes" / "showcase").glob("*.toml"))]
    for backend in backends:
        for path in scenes:
            steps = args.showcase_steps
            if backend.name == "numpy":
                steps = max(4, (steps or 256) // 8)
            scene = load_scene(path)
            try:
                est = plan.estimate(scene, backend=backend, sample_steps=steps)
            except BackendError as exc:
                print(f"| {backend.name} | {path.stem} | - | - | - | cannot run: {exc} |", flush=True)
                continue
            grids = " + ".join("×".join(map(str, run.shape)) for run in est.runs)
            setup = sum(run.setup_seconds for run in est.runs)
            print(f"| {backend.name} | {path.stem} | {grids} | {est.step_rate:.0f} Hz | {setup:.1f} | "
                  f"{sum(run.seconds_per_step for run in est.runs) * est.step_rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
