"""Running the chunks of a time-parallel plan: here, in local worker processes, or on Dask.

Every finished chunk is written at once, atomically, to a part file in a parts directory
(``part-KKKK-of-NNNN.h5``, format in :mod:`wavesolve.result`). A part carries the SHA-256 of the
scene text and the plan; a rerun with the same parts directory skips the chunks whose part is
there with the same key, so an interrupted run loses at most the chunks in flight.

Runners:
- serial (one worker): in this process, one chunk after the other;
- local (``workers`` > 1): one spawned process per chunk, at most ``workers`` at a time; worker
  slot i gets device ``devices[i % len(devices)]`` (exported as CUDA_VISIBLE_DEVICES before the
  chunk starts) — the hook for one GPU per worker. A worker that dies (killed, out of memory, a
  crash) is retried up to ``retries`` times and the run reports it; an error raised by the
  solver (bad scene, instability) is not retried and is raised here;
- Dask (``scheduler`` = "tcp://host:port"): chunks are submitted to an existing Dask distributed
  cluster; the workers need wavesolve installed and the scene's files (meshes, WAVs) at the same
  paths. Dask itself reschedules the chunks of a worker that dies
  (``distributed.scheduler.allowed-failures``); the results come back here and are written as
  parts.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Sequence

from .chunks import ChunkOutput, ChunkPlan, check_complete, run_chunk
from .constants import CHUNK_RETRIES
from .errors import ChunkError, ChunkFailed, InstabilityError, WavesolveError
from .result import ChunkPart
from .scene import Scene, parse_scene
from .version import __version__

log = logging.getLogger("wavesolve")

#: Test hook: "K" makes the first attempt of chunk K exit its worker process mid-chunk.
CRASH_ENV = "WAVESOLVE_TEST_CRASH_CHUNK"


@dataclass
class RunReport:
    """What a chunked run did: chunks computed, skipped (part already there), retried (with why)."""

    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    retried: dict[int, list[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        if self.skipped:
            out.append(f"skipped chunk(s) {', '.join(map(str, self.skipped))}: finished parts found")
        for k, why in sorted(self.retried.items()):
            out.append(f"retried chunk {k} ({'; '.join(why)})")
        return out


def part_path(parts_dir: str | Path, k: int, n: int) -> Path:
    """Path of chunk k's part file in ``parts_dir``."""
    return Path(parts_dir) / f"part-{k:04d}-of-{n:04d}.h5"


def make_part(scene: Scene, plan: ChunkPlan, out: ChunkOutput) -> ChunkPart:
    return ChunkPart(scene_text=scene.text, scene_path=str(scene.path), plan=plan.to_json(), key=plan.key(scene.text),
                     chunk=out.chunk, n_chunks=plan.n_chunks, start_step=out.start_step, probes=out.data,
                     stop=out.stop, wall_time=out.wall_time, version=__version__, slices=out.slices,
                     boxes=out.boxes)


def outputs_of(parts: Sequence[ChunkPart]) -> list[ChunkOutput]:
    """The chunk outputs stored in part files, for :func:`wavesolve.api.chunked_result`."""
    return [ChunkOutput(p.chunk, p.start_step, p.probes, p.stop, p.wall_time, slices=p.slices, boxes=p.boxes)
            for p in parts]


def run_chunks(scene: Scene, plan: ChunkPlan, parts_dir: str | Path, *, workers: int = 1,
               scheduler: str | None = None, backend: str = "auto", retries: int = CHUNK_RETRIES,
               devices: Sequence[int] | None = None, progress: bool | None = False,
               echo: Callable[[str], None] | None = None) -> tuple[list[ChunkPart], RunReport]:
    """Run every chunk of ``plan`` whose part is not yet in ``parts_dir``; return all parts and a report."""
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    key = plan.key(scene.text)
    report = RunReport()
    todo = []
    for k in range(plan.n_chunks):
        if ChunkPart.peek_key(part_path(parts_dir, k, plan.n_chunks)) == key:
            report.skipped.append(k)
        else:
            todo.append(k)
    say = echo or (lambda text: log.info("%s", text))
    if todo:
        if scheduler:
            _run_dask(scene, plan, todo, parts_dir, scheduler, backend, report, say)
        elif workers > 1:
            _run_local(scene, plan, todo, parts_dir, workers, backend, retries, devices, report, say)
        else:
            for k in todo:
                out = run_chunk(scene, plan, k, backend=backend, progress=progress)
                make_part(scene, plan, out).save(part_path(parts_dir, k, plan.n_chunks))
                report.computed.append(k)
                say(f"chunk {k + 1}/{plan.n_chunks} done ({out.wall_time:.1f} s, stopped: {out.stop})")
    parts = [ChunkPart.load(part_path(parts_dir, k, plan.n_chunks)) for k in range(plan.n_chunks)]
    return parts, report


def _job(scene: Scene, plan: ChunkPlan, k: int, backend: str, attempt: int, device: int | None,
         threads: int | None = None) -> dict:
    return {"scene_text": scene.text, "scene_path": str(scene.path), "plan": plan.to_json(), "chunk": k,
            "backend": backend, "attempt": attempt, "device": device, "threads": threads}


def compute_chunk(job: dict) -> ChunkPart:
    """Run one chunk job (a dict from ``_job``) in a worker and return its part (not yet saved)."""
    if job.get("device") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(job["device"])
    if job.get("threads"):
        # local workers share the machine's cores: N workers × all-core Numba threads oversubscribe
        # it (measured: 2 workers 2.6× slower than 1 on 2 cores); read by Numba at its import
        os.environ.setdefault("NUMBA_NUM_THREADS", str(job["threads"]))
    scene = parse_scene(job["scene_text"], job["scene_path"])
    plan = ChunkPlan.from_json(job["plan"])
    crash = os.environ.get(CRASH_ENV) == str(job["chunk"]) and job.get("attempt", 0) == 0

    def die_mid_chunk(group: int, steps: int) -> None:
        if steps >= 64:
            os._exit(17)  # a worker dying mid-chunk (tests)

    out = run_chunk(scene, plan, job["chunk"], backend=job["backend"], callback=die_mid_chunk if crash else None)
    return make_part(scene, plan, out)


def _local_main(job: dict, path: str, conn) -> None:
    """Body of a local worker process: compute, write the part, report success or a solver error."""
    try:
        compute_chunk(job).save(path)
        conn.send(("ok", "", ""))
    except WavesolveError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    finally:
        conn.close()


def _run_local(scene, plan, todo, parts_dir, workers, backend, retries, devices, report, say) -> None:
    from .backend import picks_gpu, resolve_backend

    if not picks_gpu(backend):
        # the chunks that run at once share this machine's memory: they must fit together, checked
        # here since the host promises memory it has not got (overcommit), so a worker's own check
        # passes however many run beside it. On a GPU each worker's check sees what the others
        # hold, and this process starts no GPU of its own.
        from .plan import check_memory

        check_memory(scene, resolve_backend(backend), copies=min(workers, len(todo)))
    ctx = mp.get_context("spawn")
    pending = deque(todo)
    attempts = dict.fromkeys(todo, 0)
    free = list(range(workers))
    running: dict = {}
    try:
        while pending or running:
            while pending and free:
                k = pending.popleft()
                slot = free.pop(0)
                device = devices[slot % len(devices)] if devices else None
                recv, send = ctx.Pipe(duplex=False)
                path = part_path(parts_dir, k, plan.n_chunks)
                proc = ctx.Process(target=_local_main, name=f"wavesolve-chunk-{k}",
                                   args=(_job(scene, plan, k, backend, attempts[k], device,
                                              max(1, (os.cpu_count() or 1) // workers)), str(path), send))
                proc.start()
                send.close()
                running[proc.sentinel] = (proc, k, slot, recv)
            for sentinel in wait(list(running)):
                proc, k, slot, recv = running.pop(sentinel)
                try:
                    message = recv.recv() if recv.poll() else None
                except EOFError:  # the worker died before it could say anything
                    message = None
                recv.close()
                proc.join()
                free.append(slot)
                if message and message[0] == "ok":
                    report.computed.append(k)
                    say(f"chunk {k + 1}/{plan.n_chunks} done")
                    continue
                if message and message[0] == "error":  # the solver's own error: the same on every retry
                    cls = InstabilityError if message[1] == "InstabilityError" else ChunkError
                    raise cls(f"chunk {k}: {message[2]}")
                attempts[k] += 1
                why = f"worker exited with status {proc.exitcode} on attempt {attempts[k]}"
                report.retried.setdefault(k, []).append(why)
                if attempts[k] > retries:
                    raise ChunkFailed(f"chunk {k} failed {attempts[k]} times (last: worker exited with status "
                                     f"{proc.exitcode}); finished chunks are kept in {parts_dir}, rerun to go on")
                say(f"retrying chunk {k}: {why}")
                pending.append(k)
    finally:
        for proc, *_ in running.values():
            proc.terminate()
            proc.join()


def _run_dask(scene, plan, todo, parts_dir, scheduler, backend, report, say) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:  # pragma: no cover - the dist extra is missing
        raise ChunkError("--scheduler needs Dask distributed: pip install 'wavesolve[dist]'") from None
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise ChunkError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        _refuse_threaded_workers(client)
        key = plan.key(scene.text)[:16]
        futures = {client.submit(compute_chunk, _job(scene, plan, k, backend, 0, None),
                                 key=f"wavesolve-{key}-chunk-{k}", pure=False): k for k in todo}
        for future in as_completed(futures):
            k = futures[future]
            part = future.result()
            part.save(part_path(parts_dir, k, plan.n_chunks))
            report.computed.append(k)
            say(f"chunk {k + 1}/{plan.n_chunks} done on Dask ({part.wall_time:.1f} s)")
    finally:
        client.close()


def _refuse_threaded_workers(client) -> None:
    """Refuse a Dask cluster whose workers run several threads: two chunks would then run at once
    in one process, and the compiled CPU kernels (Numba's threading layer, which for the
    workqueue layer aborts on concurrent use) and a worker's GPU are each made for one chunk at a time."""
    crowded = sorted((worker, n) for worker, n in client.nthreads().items() if n > 1)
    if crowded:
        worker, n = crowded[0]
        raise ChunkError(f"{len(crowded)} Dask worker(s) run several threads (e.g. {worker}: {n}); wavesolve runs "
                         "one chunk per worker process, and each chunk uses all of its cores. Start the workers "
                         "with --nthreads 1 (and --nworkers N for N per machine)")


def load_parts(paths: Sequence[str | Path]) -> tuple[Scene, ChunkPlan, list[ChunkPart]]:
    """Read part files that must form one complete run: returns (scene, plan, parts), the parts
    checked to hold each chunk of the plan once (stitch them with
    ``wavesolve.api.chunked_result(scene, plan, outputs_of(parts), ...)``). Raises ChunkError
    naming the offending file."""
    if not paths:
        raise ChunkError("no part files given")
    parts = []
    for path in paths:
        if not Path(path).is_file():
            raise ChunkError(f"part file '{path}' does not exist")
        try:
            parts.append(ChunkPart.load(path))
        except ValueError as exc:
            raise ChunkError(str(exc)) from None
    first = parts[0]
    for path, part in zip(paths, parts):
        if part.scene_text != first.scene_text:
            raise ChunkError(f"'{path}' belongs to a different scene than '{paths[0]}' "
                             f"({part.scene_path} vs {first.scene_path}); stitch parts of one run only")
        if part.key != first.key:
            raise ChunkError(f"'{path}' was made with a different chunk plan than '{paths[0]}' "
                             f"(chunk {part.chunk} of {part.n_chunks} vs of {first.n_chunks}); "
                             "rerun the chunks with one plan")
    plan = ChunkPlan.from_json(first.plan)
    try:
        check_complete(plan, [p.chunk for p in parts])
    except ChunkError as exc:
        raise ChunkError(f"{exc} (run them with: wavesolve run-chunk {first.scene_path} --chunk K "
                         f"--of {plan.n_chunks if plan.mode == 'uniform' else 'auto'})") from None
    try:
        scene = parse_scene(first.scene_text, first.scene_path)
    except WavesolveError as exc:
        raise ChunkError(f"the parts' scene no longer loads: {exc}") from None
    return scene, plan, parts
