"""Command line: ``wavesolve run | info | plot``.

Exit status: 0 success; 2 bad input (scene, paths, backend); 3 the run became unstable.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .api import __version__, simulate
from .audio import peak_gain, write_wav
from .backend import BACKENDS, BackendError
from .errors import InstabilityError, SceneError
from .result import Result
from .scene import load_scene

EXIT_BAD_INPUT = 2
EXIT_UNSTABLE = 3


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="wavesolve", description="Wave-based sound synthesis for animation.")
    ap.add_argument("--version", action="version", version=f"wavesolve {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log solver details to stderr")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate a scene to an HDF5 result and a WAV")
    run.add_argument("scene", type=Path)
    run.add_argument("-o", "--output", type=Path, help="result file (.h5); default: [output] hdf5, else SCENE.h5")
    run.add_argument("--wav", type=Path, help="WAV file; default: [output] wav, else SCENE.wav")
    run.add_argument("--wav-pascals", action="store_true",
                     help="write pressure in pascals (float WAV) instead of normalising to -1 dBFS")
    run.add_argument("--backend", choices=BACKENDS, default="auto")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    info = sub.add_parser("info", help="grid, steps, memory and time estimate, without running")
    info.add_argument("scene", type=Path)
    info.add_argument("--backend", choices=BACKENDS, default="auto")

    plot = sub.add_parser("plot", help="waveform and spectrogram PNG per listener")
    plot.add_argument("result", type=Path)
    plot.add_argument("-o", "--out-dir", type=Path, help="directory for the PNGs (default: beside the result)")
    return ap


def _fail(message: str, status: int) -> int:
    print(f"wavesolve: error: {message}", file=sys.stderr)
    return status


def _cmd_run(args: argparse.Namespace) -> int:
    scene = load_scene(args.scene)
    stem = args.scene.stem
    h5 = args.output or scene.output_hdf5 or Path(f"{stem}.h5")
    wav = args.wav or scene.output_wav or Path(f"{stem}.wav")
    for path in (h5, wav):
        if path.parent and not path.parent.exists():
            return _fail(f"output directory '{path.parent}' does not exist; create it or choose another path",
                         EXIT_BAD_INPUT)
    result = simulate(scene, backend=args.backend, progress=False if args.no_progress else None)
    stacked = result.stacked()
    if args.wav_pascals:
        gain = 1.0
        result.metadata["wav_units"] = "Pa"
    else:
        gain = peak_gain(stacked)
        result.metadata["wav_units"] = "full scale"
    result.metadata["wav_gain"] = gain
    result.save(h5)
    write_wav(wav, stacked * gain, result.sample_rate)
    print(f"wrote {h5} and {wav} ({len(result.names)} channel(s): {', '.join(result.names)}; "
          f"gain {gain:.4g} per Pa) in {result.metadata['wall_time']:.1f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .plan import estimate

    scene = load_scene(args.scene)
    est = estimate(scene, backend=args.backend)
    g = scene.grid
    print(f"scene        {scene.path}")
    print(f"grid         {est.shape[0]} x {est.shape[1]} x {est.shape[2]} cells = {est.cells / 1e6:.2f} M "
          f"(h = {g.h * 1e3:g} mm, absorbing layer {g.layer} cells)")
    print(f"time step    {g.dt * 1e6:.4g} µs (step rate {est.step_rate / 1e3:.4g} kHz, Courant {est.courant:.4f})")
    print(f"steps        {est.steps} for {scene.duration:g} s")
    print(f"objects      {len(scene.objects)}; listeners {len(scene.listeners)}")
    print(f"memory       {est.memory_bytes / 2**20:.1f} MiB ({scene.config.simulation.precision})")
    print(f"estimate     {est.seconds:.1f} s on this machine "
          f"({1 / est.seconds_per_cell_step / 1e6:.0f} M cell updates/s measured)")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_result

    if not args.result.is_file():
        return _fail(f"result file '{args.result}' does not exist", EXIT_BAD_INPUT)
    try:
        result = Result.load(args.result)
    except (OSError, KeyError) as exc:
        return _fail(f"'{args.result}' is not a wavesolve result file ({exc})", EXIT_BAD_INPUT)
    out_dir = args.out_dir or args.result.parent
    for path in plot_result(result, out_dir, args.result.stem):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="wavesolve: %(message)s")
    try:
        return {"run": _cmd_run, "info": _cmd_info, "plot": _cmd_plot}[args.command](args)
    except SceneError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except BackendError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except InstabilityError as exc:
        return _fail(str(exc), EXIT_UNSTABLE)
    except KeyboardInterrupt:
        return _fail("interrupted; no output written", 130)


if __name__ == "__main__":
    sys.exit(main())
