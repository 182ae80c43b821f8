"""Command line: ``wavesolve run | info | plot | run-chunk | stitch | modal | simulate-physics``.

Exit status: 0 success; 2 bad input (scene, paths, backend, chunk parts that do not belong
together); 3 the run became unstable; 4 a chunk failed on every attempt.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# the commands import what they use, so that `wavesolve --help` and argument errors answer at once
# (the numerics, meshes and plotting take about a second to import)
from .backend import BACKENDS, BackendError
from .errors import ChunkError, ChunkFailed, InstabilityError, SceneError
from .version import __version__

if TYPE_CHECKING:
    from .result import Result

EXIT_BAD_INPUT = 2
EXIT_UNSTABLE = 3
EXIT_CHUNK_FAILED = 4


def _chunks_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got '{text}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got '{text}'")
    return n


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return n


BACKEND_HELP = ("numpy (reference), numba (compiled CPU), cupy (GPU) or auto: the GPU where CuPy finds one, "
                "else numba (default)")


def _non_negative(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got '{text}'")
    return n


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="wavesolve", description="Wave-based sound synthesis for animation.")
    ap.add_argument("--version", action="version", version=f"wavesolve {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log solver details to stderr")
    sub = ap.add_subparsers(dest="command", required=True)
    # -v after the command too (SUPPRESS: the command's default does not undo a -v before it)
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log solver details to stderr")

    run = sub.add_parser("run", help="simulate a scene to an HDF5 result and a WAV", parents=[verbose])
    run.add_argument("scene", type=Path, help="scene file (.toml; README 'Scene files')")
    run.add_argument("-o", "--output", type=Path, help="result file (.h5); default: [output] hdf5, else SCENE.h5")
    run.add_argument("--wav", type=Path, help="WAV file; default: [output] wav, else SCENE.wav")
    run.add_argument("--wav-pascals", action="store_true",
                     help="write pressure in pascals (float WAV) instead of normalising to -1 dBFS")
    run.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    par = run.add_argument_group("time-parallel chunks")
    par.add_argument("--chunks", type=_chunks_arg, default=1, metavar="N|auto",
                     help="cut the scene into N equal time chunks, or 'auto' at the silent gaps between shader "
                          "activity (default 1)")
    where = par.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, default=1, metavar="N", help="local worker processes (default 1)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the chunks on this Dask cluster")
    par.add_argument("--devices", metavar="0,1,…", help="GPU ids handed to local workers in turn "
                     "(CUDA_VISIBLE_DEVICES per worker)")
    par.add_argument("--parts-dir", type=Path, help="where finished chunks are kept (default: RESULT.h5.parts beside the result); a "
                     "rerun skips the chunks found there")
    par.add_argument("--keep-parts", action="store_true", help="keep the part files after the result is written")
    par.add_argument("--retries", type=_non_negative, default=None, metavar="N",
                     help="attempts after the first for a chunk whose worker dies (default 2)")

    rc = sub.add_parser("run-chunk", help="run one time chunk to a part file (batch arrays)", parents=[verbose])
    rc.add_argument("scene", type=Path, help="scene file (.toml)")
    rc.add_argument("--chunk", type=int, required=True, metavar="K", help="chunk index, 0 … N−1")
    rc.add_argument("--of", type=_chunks_arg, required=True, metavar="N|auto", help="the chunk plan")
    rc.add_argument("-o", "--output", type=Path, required=True, help="part file to write (.h5)")
    rc.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    rc.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    st = sub.add_parser("stitch", help="sum chunk part files into a result (and WAV)", parents=[verbose])
    st.add_argument("parts", type=Path, nargs="+", help="every part file of one run")
    st.add_argument("-o", "--output", type=Path, required=True, help="result file (.h5)")
    st.add_argument("--wav", type=Path, help="WAV file to write as well")
    st.add_argument("--wav-pascals", action="store_true",
                    help="write pressure in pascals (float WAV) instead of normalising to -1 dBFS")

    info = sub.add_parser("info", help="grid, steps, memory and time estimate, without running", parents=[verbose])
    info.add_argument("scene", type=Path, help="scene file (.toml)")
    info.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    info.add_argument("--chunks", type=_chunks_arg, default=None, metavar="N|auto", help="also show this chunk plan")

    modal = sub.add_parser("modal", help="vibration modes of a mesh (linear-elastic FEM) to a modes file",
                           parents=[verbose])
    modal.add_argument("mesh", type=Path, help="closed surface mesh (any format trimesh reads), metres after --scale")
    modal.add_argument("--material", required=True,
                       help="a material name (steel, aluminium, ceramic, …) or an inline JSON table, e.g. "
                            "'{\"density\": 7850, \"youngs_modulus\": 2e11, \"poisson_ratio\": 0.29}'")
    modal.add_argument("-o", "--output", type=Path, required=True, help="modes file to write (.h5)")
    modal.add_argument("--scale", type=float, default=1.0, help="factor applied to the mesh (as in scene files)")
    modal.add_argument("--resolution", type=float, default=None, metavar="H",
                       help="element size (m); default: about 3000 elements, at least 2 across the thinnest side")
    modal.add_argument("--max-frequency", type=float, default=20000.0, metavar="HZ",
                       help="keep modes up to this frequency (default 20000)")
    modal.add_argument("--count", type=_positive, default=None, metavar="N", help="keep the first N modes instead")
    modal.add_argument("--no-cache", action="store_true", help="recompute even if cached")
    modal.add_argument("--shell", action="store_true",
                       help="thin shell: MESH is the mid-surface (open or closed), modes by shell elements")
    modal.add_argument("--thickness", type=float, default=None, metavar="T", help="--shell: physical thickness (m)")
    modal.add_argument("--closed-mesh", type=Path, default=None, metavar="OUT",
                       help="--shell: also write the mid-surface thickened to --acoustic-thickness as a closed mesh "
                            "(OBJ) and put the modes on ITS vertices (for the `modal` shader)")
    modal.add_argument("--acoustic-thickness", type=float, default=None, metavar="A",
                       help="--shell --closed-mesh: thickness of the closed mesh (m), about one grid cell or more")

    phys = sub.add_parser("simulate-physics", help="rigid-body simulation (PyBullet) of a setup file to a ready "
                          "scene: motion, impacts and modes wired to the modal and acceleration_noise shaders",
                          parents=[verbose])
    phys.add_argument("setup", type=Path, help="physics setup file (.toml; README 'Physics engine')")
    phys.add_argument("-o", "--output", type=Path, required=True, metavar="SCENE_DIR",
                      help="directory for scene.toml and its files (created if missing)")
    logs = phys.add_mutually_exclusive_group()
    logs.add_argument("--from-logs", nargs=2, type=Path, metavar=("ROBOT_LOG", "CONTACT_LOG"),
                      help="build the scene from PyBullet state logs (GENERIC_ROBOT and CONTACT_POINTS) of a run of "
                           "this setup instead of running the engine")
    logs.add_argument("--write-logs", action="store_true",
                      help="also have PyBullet write its own state logs (bullet_robot.log, bullet_contacts.log)")
    phys.add_argument("--no-cache", action="store_true", help="recompute modes even if cached")
    phys.add_argument("--run", action="store_true", help="then run the scene (scene.h5 and scene.wav in SCENE_DIR)")
    phys.add_argument("--backend", choices=BACKENDS, default="auto", help="backend for --run: " + BACKEND_HELP)

    plot = sub.add_parser("plot", help="waveform and spectrogram PNG per listener, and a PNG per pressure slice",
                          parents=[verbose])
    plot.add_argument("result", type=Path)
    plot.add_argument("-o", "--out-dir", type=Path, help="directory for the PNGs (default: beside the result)")
    return ap


def _fail(message: str, status: int) -> int:
    print(f"wavesolve: error: {message}", file=sys.stderr)
    return status


def _output_problem(outputs: list[Path], inputs: list[Path] = ()) -> str | None:
    """Why the files ``outputs`` could not be written when a command ends (None if they can):
    checked before any compute, so that a long run is not lost at its last step."""
    import tempfile

    seen: dict[Path, Path] = {}
    for path in outputs:
        resolved = path.resolve()
        if resolved in seen:
            return f"two outputs are the same file '{path}'; give them different names"
        seen[resolved] = path
        for source in inputs:
            if source.exists() and resolved == source.resolve():
                return f"output '{path}' is the input file '{source}'; writing it would destroy the input"
        if path.is_dir():
            return f"output '{path}' is a directory; give a file name (in it, or elsewhere)"
        parent = path.parent
        if not parent.exists():
            return f"output directory '{parent}' does not exist; create it or choose another path"
        if not parent.is_dir():
            return f"output '{path}': '{parent}' is not a directory"
        try:                     # what the atomic write will do: a temporary file beside it
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError as exc:
            return f"cannot write in '{parent}' ({exc.strerror}); choose another path"
    return None


def _cmd_run(args: argparse.Namespace) -> int:
    from .scene import load_scene

    scene = load_scene(args.scene)
    stem = args.scene.stem
    h5 = args.output or scene.output_hdf5 or Path(f"{stem}.h5")
    wav = args.wav or scene.output_wav or Path(f"{stem}.wav")
    problem = _output_problem([h5, wav], [args.scene])
    if problem:
        return _fail(problem, EXIT_BAD_INPUT)
    progress = False if args.no_progress else None
    if args.chunks == 1 and args.workers == 1 and not args.scheduler:
        from .api import simulate

        result = simulate(scene, backend=args.backend, progress=progress)
        _write_outputs(result, h5, wav, args.wav_pascals)
        return 0
    result, parts_dir = _run_chunked(args, scene, h5, progress)
    _write_outputs(result, h5, wav, args.wav_pascals)
    if not args.keep_parts:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return 0


def _run_chunked(args: argparse.Namespace, scene, h5: Path, progress) -> tuple[Result, Path]:
    """Run the chunks (parts kept in the parts directory) and stitch them; returns the result and that directory."""
    import time

    from .api import chunked_result
    from .backend import resolve_backend
    from .chunks import plan_chunks
    from .constants import CHUNK_RETRIES
    from .runners import run_chunks

    engine = resolve_backend(args.backend)   # refuse an unusable backend before any work
    devices = [int(d) for d in args.devices.split(",")] if args.devices else None
    plan = plan_chunks(scene, args.chunks)
    parts_dir = args.parts_dir or h5.with_name(h5.name + ".parts")
    where = f"Dask at {args.scheduler}" if args.scheduler else f"{args.workers} local worker(s)"
    print(f"{plan.n_chunks} {plan.mode} chunk(s) on {where}; parts in {parts_dir}", file=sys.stderr)
    start = time.perf_counter()
    parts, report = run_chunks(scene, plan, parts_dir, workers=args.workers, scheduler=args.scheduler,
                               backend=args.backend, devices=devices, progress=progress,
                               retries=CHUNK_RETRIES if args.retries is None else args.retries,
                               echo=lambda text: print(text, file=sys.stderr))
    for line in report.lines():
        print(line, file=sys.stderr)
    from .runners import outputs_of

    result = chunked_result(scene, plan, outputs_of(parts), {
        "backend": engine.name, "wall_time": time.perf_counter() - start,
        "retried_chunks": ", ".join(map(str, sorted(report.retried)))})
    return result, parts_dir


def _write_outputs(result: Result, h5: Path, wav: Path | None, wav_pascals: bool) -> None:
    from .audio import peak_gain, write_wav

    stacked = result.stacked()
    if not stacked.any():
        print("wavesolve: warning: every listener is silent: nothing in the scene sounds within its duration "
              "(no object with a shader acting then); the WAV is silence", file=sys.stderr)
    if wav_pascals:
        gain = 1.0
        result.metadata["wav_units"] = "Pa"
    else:
        gain = peak_gain(stacked)
        result.metadata["wav_units"] = "full scale"
    result.metadata["wav_gain"] = gain
    result.save(h5)
    if wav is not None:
        write_wav(wav, stacked * gain, result.sample_rate)
    written = f"{h5} and {wav}" if wav is not None else f"{h5}"
    print(f"wrote {written} ({len(result.names)} channel(s): {', '.join(result.names)}; "
          f"gain {gain:.4g} per Pa) in {result.metadata['wall_time']:.1f} s")


def _cmd_run_chunk(args: argparse.Namespace) -> int:
    from .chunks import plan_chunks, run_chunk
    from .runners import make_part
    from .scene import load_scene

    scene = load_scene(args.scene)
    problem = _output_problem([args.output], [args.scene])
    if problem:
        return _fail(problem, EXIT_BAD_INPUT)
    plan = plan_chunks(scene, args.of)
    if not 0 <= args.chunk < plan.n_chunks:
        return _fail(f"--chunk {args.chunk} is out of range: the plan has chunks 0 … {plan.n_chunks - 1}",
                     EXIT_BAD_INPUT)
    out = run_chunk(scene, plan, args.chunk, backend=args.backend, progress=False if args.no_progress else None)
    make_part(scene, plan, out).save(args.output)
    runs = ([f"steps {out.start_step} … {out.start_step + out.data.shape[2]}"] if out.data.shape[2] else []) + [
        f"box of '{name}': steps {box.start_step} … {box.start_step + box.data.shape[1]}" for name, box in out.boxes.items()]
    print(f"wrote {args.output} (chunk {args.chunk} of {plan.n_chunks}, {'; '.join(runs) or 'silent: no step run'}, "
          f"stopped: {out.stop}) in {out.wall_time:.1f} s")
    return 0


def _cmd_stitch(args: argparse.Namespace) -> int:
    from .api import chunked_result
    from .runners import load_parts, outputs_of

    problem = _output_problem([args.output] + ([args.wav] if args.wav else []))
    if problem:
        return _fail(problem, EXIT_BAD_INPUT)
    scene, plan, parts = load_parts(args.parts)
    result = chunked_result(scene, plan, outputs_of(parts), {"wall_time": sum(p.wall_time for p in parts),
                                                             "backend": "parts"})
    _write_outputs(result, args.output, args.wav, args.wav_pascals)
    return 0


def _duration(seconds: float) -> str:
    """A wall time for people: 12.3 s, 4 min 05 s, 2 h 07 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _cmd_info(args: argparse.Namespace) -> int:
    from .plan import estimate
    from .scene import load_scene
    from .travelling import fixed_box_runs

    scene = load_scene(args.scene)
    est = estimate(scene, backend=args.backend)
    g = scene.grid
    print(f"scene        {scene.path}")
    print(f"grid         {est.shape[0]} x {est.shape[1]} x {est.shape[2]} cells = {est.cells / 1e6:.2f} M "
          f"(h = {g.h * 1e3:g} mm, absorbing layer {g.layer} cells)")
    print(f"time step    {g.dt * 1e6:.4g} µs (step rate {est.step_rate / 1e3:.4g} kHz, Courant {est.courant:.4f})")
    print(f"steps        {est.steps} for {scene.duration:g} s")
    travelling = f" fixed, {len(scene.travellers)} travelling" if scene.travellers else ""
    print(f"objects      {len(scene.objects)}{travelling}; listeners {len(scene.listeners)}")
    largest = "the largest box the run makes, " if len(est.runs) > 1 or scene.travellers else ""
    print(f"memory       {est.memory_bytes / 2**20:.1f} MiB ({largest}{scene.config.simulation.precision}); "
          f"{est.available_bytes / 2**20:.1f} MiB available{'' if est.fits else ': too large to run here'}")
    print(f"estimate     {_duration(est.seconds)} on this machine ({est.backend}), "
          f"{est.seconds / scene.duration:.3g} s of compute per s of audio")
    for run in est.runs:
        how = (f"{run.sampled_steps} steps timed" if run.sampled_steps else
               "field update only, at a free-field grid's rate: too large to build here")
        skipped = est.steps - run.steps
        start = f" (from step {skipped}: none sounds before)" if skipped else ""
        print(f"  {run.label:<11} {' x '.join(map(str, run.shape))} cells: {run.steps} steps{start} x "
              f"{run.seconds_per_step * 1e3:.3g} ms + {run.setup_seconds:.1f} s set-up ({how})")
    if not est.runs:
        why = ("no shader sounds during the scene" if any(o.shaders for o in scene.objects)
               else "no object has a shader")
        print(f"  nothing to run: {why} (the result is silence)")
    elif not fixed_box_runs(scene):
        print("  fixed box   not run: it holds no object with a shader")
    far = [lis.name for lis in scene.listeners if lis.far]
    if far:
        print(f"far field    {', '.join(far)} (estimated from rays in the box)")
    for spec in scene.slices:
        times = ", ".join(f"{k * g.dt * 1e3:.4g}" for k in spec.steps)
        if spec.follows is None:
            print(f"slice        '{spec.name}': {'xyz'[spec.axis]} = {spec.position(g):.4g} m, "
                  f"{spec.shape[0]} x {spec.shape[1]} cells at {times} ms")
        else:
            print(f"slice        '{spec.name}': moves with the box of '{spec.follows}', {'xyz'[spec.axis]} = "
                  f"{spec.offset:+.4g} m from the point it follows, at {times} ms")
    if args.chunks is not None:
        from .chunks import plan_chunks

        plan = plan_chunks(scene, args.chunks)
        windows = ", ".join(f"{plan.window(k)[0] * g.dt * 1e3:.4g}–{plan.window(k)[1] * g.dt * 1e3:.4g}"
                            for k in range(plan.n_chunks))
        print(f"chunks       {plan.n_chunks} ({plan.mode}): windows {windows} ms; each runs on until its energy "
              f"falls below {plan.energy_threshold:g} of its peak (at most {plan.tail_cap} steps)")
        if est.runs:
            from .plan import chunked_bound

            steps, seconds = chunked_bound(est, plan)
            print(f"  compute at most {_duration(seconds)} over the chunks ({steps} steps a box, against {est.steps} "
                  f"in one run), shared by the workers that run them")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_result
    from .result import Result

    if not args.result.is_file():
        return _fail(f"result file '{args.result}' does not exist", EXIT_BAD_INPUT)
    try:
        result = Result.load(args.result)
    except (OSError, KeyError) as exc:
        return _fail(f"'{args.result}' is not a wavesolve result file ({exc})", EXIT_BAD_INPUT)
    out_dir = args.out_dir or args.result.parent
    if out_dir.exists() and not out_dir.is_dir():
        return _fail(f"-o '{out_dir}' is a file; give a directory for the plots", EXIT_BAD_INPUT)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"cannot make the plot directory '{out_dir}' ({exc.strerror}); choose another", EXIT_BAD_INPUT)
    problem = _output_problem([out_dir / f"{args.result.stem}.png"])
    if problem:
        return _fail(problem, EXIT_BAD_INPUT)
    for path in plot_result(result, out_dir, args.result.stem):
        print(f"wrote {path}")
    return 0


def _cmd_modal(args: argparse.Namespace) -> int:
    import json

    from .fem import modal_analysis
    from .materials import parse_material
    from .meshes import load_mesh_file

    if not args.mesh.is_file():
        return _fail(f"mesh file '{args.mesh}' does not exist", EXIT_BAD_INPUT)
    problem = _output_problem([args.output], [args.mesh])
    if problem:
        return _fail(problem, EXIT_BAD_INPUT)
    text = args.material.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return _fail(f"--material: not valid JSON ({exc})", EXIT_BAD_INPUT)
    else:
        value = text
    material = parse_material(value, "command line", "--material")
    try:
        mesh = load_mesh_file(args.mesh, args.scale)
    except Exception as exc:  # trimesh raises many types for unreadable files
        return _fail(f"cannot read mesh '{args.mesh}': {exc}", EXIT_BAD_INPUT)
    if args.shell:
        return _shell_modes(args, mesh, material)
    if args.thickness is not None or args.closed_mesh is not None or args.acoustic_thickness is not None:
        return _fail("--thickness, --closed-mesh and --acoustic-thickness need --shell", EXIT_BAD_INPUT)
    if not mesh.is_watertight:
        return _fail(f"mesh '{args.mesh}' is not closed (watertight); modal analysis needs a solid", EXIT_BAD_INPUT)
    try:
        modes = modal_analysis(mesh, material, resolution=args.resolution, max_frequency=args.max_frequency,
                               count=args.count, cache=not args.no_cache)
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    return _report_modes(args, modes)


def _report_modes(args: argparse.Namespace, modes) -> int:
    from .fem import cache_dir

    modes.save(args.output)
    f = modes.frequencies
    span = f"{f[0]:.1f} … {f[-1]:.1f} Hz" if len(f) else "none"
    print(f"wrote {args.output}: {len(f)} modes ({span}), shapes on {modes.shapes.shape[0]} vertices, "
          f"{int(modes.attrs.get('elements', 0))} elements; cache {cache_dir()}")
    return 0


def _shell_modes(args: argparse.Namespace, mid, material) -> int:
    """``modal --shell``: thin-shell modes of a mid-surface, optionally on a thickened closed mesh."""
    from .shell_fem import shell_modal_analysis
    from .shell_mesh import thicken, transfer_shapes

    if args.thickness is None or not args.thickness > 0:
        return _fail("--shell needs --thickness T (m, > 0): the physical thickness of the shell", EXIT_BAD_INPUT)
    if args.resolution is not None:
        return _fail("--resolution is for voxel elements; a shell uses the mid-surface's own triangles", EXIT_BAD_INPUT)
    if (args.acoustic_thickness is None) != (args.closed_mesh is None):
        return _fail("--closed-mesh and --acoustic-thickness go together", EXIT_BAD_INPUT)
    if args.acoustic_thickness is not None and not args.acoustic_thickness > 0:
        return _fail("--acoustic-thickness must be positive (about one grid cell or more)", EXIT_BAD_INPUT)
    try:
        modes = shell_modal_analysis(mid, material, args.thickness, max_frequency=args.max_frequency,
                                     count=args.count, cache=not args.no_cache)
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    if args.closed_mesh is not None:
        from .files import atomic_path
        from .modes import ModeSet, mesh_hash

        closed, _ = thicken(mid, args.acoustic_thickness)
        shapes = transfer_shapes(mid, modes.shapes, closed.vertices)
        attrs = dict(modes.attrs, vertices_hash=mesh_hash(closed.vertices, closed.faces), surface="closed mesh",
                     acoustic_thickness=args.acoustic_thickness)
        modes = ModeSet(modes.frequencies, modes.damping, shapes, attrs)
        with atomic_path(args.closed_mesh) as tmp:
            closed.export(tmp, file_type=args.closed_mesh.suffix.lstrip(".").lower() or "obj")
        print(f"wrote {args.closed_mesh}: closed mesh {args.acoustic_thickness:g} m thick, "
              f"{len(closed.vertices)} vertices (use it as the object's mesh, scale 1)")
    return _report_modes(args, modes)


def _cmd_simulate_physics(args: argparse.Namespace) -> int:
    import time

    from .physics import body_impacts, extract_events, extract_touches, load_setup, run_engine
    from .physics.rolling_forces import body_rolling
    from .physics.scene_writer import write_scene
    from .scene import load_scene

    setup = load_setup(args.setup)      # SceneError (exit 2) before anything runs
    if args.output.exists() and not args.output.is_dir():
        return _fail(f"output '{args.output}' exists and is not a directory; choose a directory", EXIT_BAD_INPUT)
    start = time.perf_counter()
    try:
        if args.from_logs:
            from .physics.bullet_logs import read_bullet_logs

            for path in args.from_logs:
                if not path.is_file():
                    return _fail(f"log file '{path}' does not exist", EXIT_BAD_INPUT)
            recording = read_bullet_logs(setup, *args.from_logs)
        else:
            logs = None
            if args.write_logs:
                args.output.mkdir(parents=True, exist_ok=True)
                logs = (args.output / "bullet_robot.log", args.output / "bullet_contacts.log")
            recording = run_engine(setup, logs=logs)
    except ImportError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    engine_time = time.perf_counter() - start
    events = extract_events(recording, min_speed=setup.config.physics.min_impact_speed)
    impacts = body_impacts(setup, recording, events)
    rolling = body_rolling(setup, recording, extract_touches(recording, events))
    written = write_scene(setup, recording, events, impacts, args.output, cache=not args.no_cache, rolling=rolling)
    scene = load_scene(written.scene)   # the scene must validate; a failure here is a bug worth reporting
    per_body = ", ".join(f"{name} {n} (modes {written.modes.get(name, 0)}"
                         + (f", rolling touches {written.rolling[name]})" if written.rolling.get(name) else ")")
                         for name, n in written.impacts.items())
    print(f"wrote {written.scene} ({len(written.files)} files): {len(recording.times)} states, "
          f"{len(events)} impacts; per object: {per_body}; grid {' x '.join(map(str, scene.grid.shape))}; "
          f"engine {engine_time:.1f} s, total {time.perf_counter() - start:.1f} s")
    if args.run:
        from .api import simulate

        result = simulate(scene, backend=args.backend, progress=None)
        _write_outputs(result, scene.output_hdf5, scene.output_wav, False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="wavesolve: %(message)s")
    try:
        return {"run": _cmd_run, "info": _cmd_info, "plot": _cmd_plot, "run-chunk": _cmd_run_chunk,
                "stitch": _cmd_stitch, "modal": _cmd_modal,
                "simulate-physics": _cmd_simulate_physics}[args.command](args)
    except SceneError as exc:          # several problems: each on its own "wavesolve: error:" line
        for problem in getattr(exc, "errors", [exc]):
            _fail(str(problem), EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except BackendError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except InstabilityError as exc:
        return _fail(str(exc), EXIT_UNSTABLE)
    except ChunkError as exc:
        return _fail(str(exc), EXIT_CHUNK_FAILED if isinstance(exc, ChunkFailed) else EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail("interrupted; no output written", 130)


if __name__ == "__main__":
    sys.exit(main())
