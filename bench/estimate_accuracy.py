"""How close `wavesolve info`'s time estimate comes to the run it estimates.

    python3 bench/estimate_accuracy.py [--backend numba] [SCENE.toml ...]

For each scene (default: ``scenes/two_tone_sphere.toml`` and ``scenes/showcase/*.toml``), in one
process: ``plan.estimate`` (the scene's own steps timed at a few times of the run), then the whole
run (``wavesolve.simulate``, one chunk, as ``wavesolve run`` makes it). Prints a table: the
estimate and the measured wall time (both without the scene's loading, which the CLI does once
before either), their ratio, and the seconds the estimate itself took. Markdown, for
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import wavesolve  # noqa: E402
from wavesolve.backend import resolve_backend  # noqa: E402
from wavesolve.plan import estimate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenes", nargs="*", type=Path)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    scenes = args.scenes or [REPO / "scenes" / "two_tone_sphere.toml",
                             *sorted((REPO / "scenes" / "showcase").glob("*.toml"))]
    engine = resolve_backend(args.backend)
    print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}; backend {engine.name}")
    print()
    print("| scene | audio (s) | estimate (s) | run (s) | run / estimate | estimating took (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in scenes:
        scene = wavesolve.load_scene(path)
        t = time.perf_counter()
        est = estimate(scene, backend=engine)
        took = time.perf_counter() - t
        t = time.perf_counter()
        wavesolve.simulate(scene, backend=engine, progress=False)
        run = time.perf_counter() - t
        print(f"| {path.stem} | {scene.duration:g} | {est.seconds:.1f} | {run:.1f} | {run / est.seconds:.2f} | "
              f"{took:.1f} |", flush=True)


if __name__ == "__main__":
    main()
